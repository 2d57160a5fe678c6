/*
 * tests/unit/test_store_engines.c - every engine's table of operations is
 * whole, and the two engines differ where they must (store_ops.h): the
 * store calls each operation without looking, so a NULL one would be a
 * crash on the first request that needs it. And the writer's side of an
 * engine that folds its delivery counts (folds_counts).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hr/store.h"
#include "hr/store_pg.h"
#include "hr/store_sqlite.h"
#include "tmpdir.h"

/* The operations are the function pointers from `open` to the last member. */
static void
assert_whole(const struct hr_store_ops *o)
{
	const size_t first = offsetof(struct hr_store_ops, open);
	const size_t n = (sizeof(*o) - first) / sizeof(void (*)(void));

	for (size_t i = 0; i < n; i++) {
		void (*fn)(void);

		memcpy(&fn, (const char *)o + first + i * sizeof(fn), sizeof(fn));
		if (fn == NULL)
			fail_msg("%s: operation %zu of %zu is missing", o->name, i, n);
	}
}

static void
every_operation_is_there(void **state)
{
	(void)state;
	assert_whole(&hr_store_sqlite);
	assert_whole(&hr_store_pg);
}

/* [storage] backend names them as their tables do. */
static void
names_and_claims(void **state)
{
	(void)state;
	assert_string_equal(hr_store_sqlite.name, "sqlite");
	assert_string_equal(hr_store_pg.name, "postgresql");
	assert_false(hr_store_sqlite.claims);       /* one node: the forwarder leases */
	assert_true(hr_store_pg.claims);            /* several: SKIP LOCKED claims */
	assert_false(hr_store_sqlite.folds_counts); /* one writer: counts kept whole */
	assert_true(hr_store_pg.folds_counts);      /* several: changes appended, folded */
}

/* Opening PostgreSQL with nothing listening fails with a message, not a crash. */
static void
unreachable_database_fails_to_open(void **state)
{
	struct hr_store_opts o = { .engine = &hr_store_pg,
		.url = "host=/nonexistent-hookrelay-socket-dir connect_timeout=1" };
	struct hr_store *s = NULL;
	struct hr_error err = { .field = "" };

	(void)state;
	assert_int_equal(hr_store_open(&o, &s, &err), HR_EDB);
	assert_null(s);
	assert_non_null(strstr(err.msg, "cannot connect to postgresql"));
}

/* SQLite's engine made to fold its delivery counts with `fold`, on a store of
 * its own in a new directory. */
struct folding {
	struct hr_store_ops ops; /* the store points at it: it outlives the store */
	char dir[64], path[96];
	struct hr_store *s;
};

static void
folding_open(struct folding *f, int (*fold)(struct hr_store_backend *, unsigned, unsigned *))
{
	struct hr_store_opts o = { .engine = &f->ops, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };

	f->ops = hr_store_sqlite;
	f->ops.folds_counts = true;
	f->ops.fold_counts = fold;
	tmp_template(f->dir, sizeof(f->dir), "hrtest-fold-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/db", f->dir);
	assert_int_equal(hr_store_open(&o, &f->s, &err), HR_OK);
}

static void
folding_remove(struct folding *f)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

/* Poll every 10 ms, at most `ms`, until `n` is past `than`. */
static void
await_past(atomic_uint *n, unsigned than, int ms)
{
	for (int i = 0; i < ms / 10 && atomic_load(n) <= than; i++)
		usleep(10000);
}

/* An engine whose delivery counts always have a full fold left. */
static atomic_uint folds;

static int
endless_fold(struct hr_store_backend *b, unsigned max, unsigned *done)
{
	(void)b;
	atomic_fetch_add(&folds, 1);
	*done = max;
	return HR_OK;
}

struct closer {
	struct hr_store *s;
	atomic_bool closed;
};

static void *
close_store(void *arg)
{
	struct closer *c = arg;

	hr_store_close(c->s);
	atomic_store(&c->closed, true);
	return NULL;
}

/* The writer folds on while it is idle and changes are left, yielding to a
 * write and to a stop: before, a stop waited for the whole fold (a million
 * changes take seconds, past systemd's stop timeout for more). */
static void
the_idle_fold_yields_to_writes_and_to_a_stop(void **state)
{
	struct folding f;
	struct closer c = { .s = NULL };
	unsigned seen;
	pthread_t t;

	(void)state;
	folding_open(&f, endless_fold);
	c.s = f.s;
	await_past(&folds, 2, 10000); /* it folds from the start */
	assert_true(atomic_load(&folds) >= 3);
	/* A write goes through, and the fold goes on after it. */
	assert_int_equal(hr_store_ping_writer(c.s, 5000000), HR_OK);
	seen = atomic_load(&folds);
	await_past(&folds, seen, 10000);
	assert_true(atomic_load(&folds) > seen);
	/* A stop ends it, within 10 s (it never would, before). */
	assert_int_equal(pthread_create(&t, NULL, close_store, &c), 0);
	for (int i = 0; i < 1000 && !atomic_load(&c.closed); i++)
		usleep(10000);
	if (!atomic_load(&c.closed))
		fail_msg("the stop waited for a fold that never ends");
	pthread_join(t, NULL);
	folding_remove(&f);
}

/* An engine whose folds find less than a full batch: each is one call. */
static atomic_uint short_folds;

static int
short_fold(struct hr_store_backend *b, unsigned max, unsigned *done)
{
	(void)b;
	(void)max;
	atomic_fetch_add(&short_folds, 1);
	*done = 0;
	return HR_OK;
}

/* A batch's changes, too soon after a fold to fold with it, are folded once
 * the second is up, by the idle writer: before, they waited for the next
 * write, forever on an idle node. */
static void
a_batchs_changes_are_folded_without_another_write(void **state)
{
	struct folding f;

	(void)state;
	folding_open(&f, short_fold);
	await_past(&short_folds, 0, 5000); /* at start */
	assert_int_equal(atomic_load(&short_folds), 1);
	assert_int_equal(
	    hr_store_ping_writer(f.s, 5000000), HR_OK); /* a batch, within the second */
	assert_int_equal(atomic_load(&short_folds), 1);
	await_past(&short_folds, 1, 3000);
	assert_int_equal(atomic_load(&short_folds), 2); /* one more, and no more after it */
	usleep(1500000);
	assert_int_equal(atomic_load(&short_folds), 2);
	hr_store_close(f.s);
	folding_remove(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_operation_is_there),
		cmocka_unit_test(names_and_claims),
		cmocka_unit_test(unreachable_database_fails_to_open),
		cmocka_unit_test(the_idle_fold_yields_to_writes_and_to_a_stop),
		cmocka_unit_test(a_batchs_changes_are_folded_without_another_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
