/*
 * tests/unit/test_store.c - the store's writer over the SQLite engine: a
 * batch whose first pass fails is retried from its writes' inputs.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hr/event.h"
#include "hr/store.h"
#include "hr/store_sqlite.h"

/* Writes done so far; the blocker's done() holds the writer thread until released,
 * so that the writes queued meanwhile are taken as one batch. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	bool hold, held;
} g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, false };

static void
on_done(struct hr_store_op *op, void *arg)
{
	(void)op;
	pthread_mutex_lock(&g.mu);
	if (arg != NULL) {
		g.held = true;
		pthread_cond_broadcast(&g.cv);
		while (g.hold)
			pthread_cond_wait(&g.cv, &g.mu);
	}
	g.done++;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
}

static void
wait_done(int n)
{
	pthread_mutex_lock(&g.mu);
	while (g.done < n)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
}

static void
event_write(struct hr_event_write *w, struct hr_store_op *op, const struct hr_event *ev,
    const char *id, const char *dedup_key)
{
	memset(w, 0, sizeof(*w));
	memset(op, 0, sizeof(*op));
	w->req = (struct hr_received){
		.id = id, .received_us = 1, .source = "s", .body = "{}", .body_len = 2
	};
	w->ev = ev;
	w->dedup_key = dedup_key;
	w->dedup_window_us = INT64_C(1000000000);
	op->done = on_done;
}

struct fixture {
	char dir[32], path[64];
	struct hr_store *store;
	struct hr_event ev;
};

static int
setup(void **state)
{
	static struct fixture f;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f.path, .readers = 1 };
	struct hr_json_limits lim = { 0 };
	struct hr_error err = { .field = "" };
	struct hr_parse_error pe;

	snprintf(f.dir, sizeof(f.dir), "/tmp/hrstoreXXXXXX");
	if (mkdtemp(f.dir) == NULL)
		return -1;
	snprintf(f.path, sizeof(f.path), "%s/db", f.dir);
	if (hr_store_open(&o, &f.store, &err) != HR_OK ||
	    hr_event_parse("{\"a\":1}", 7, HR_PROVIDER_AUTO, &lim, &f.ev, &pe) != HR_OK)
		return -1;
	*state = &f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[96];

	hr_store_close(f->store);
	hr_event_clear(&f->ev);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * A batch: `a` claims dedup key k, then fails (its id is taken); `b` has key k
 * too, so in the first pass it is a duplicate of `a`. The batch is retried
 * with a savepoint per write: `a` fails alone and `b`, no duplicate now, is
 * stored under its own id. It once was retried with the id the first pass
 * had rewritten it to (a's), and failed as well.
 */
static void
a_retried_write_keeps_its_own_id(void **state)
{
	struct fixture *f = *state;
	struct hr_event_write w0, wblock, wa, wb;
	struct hr_store_op o0, oblock, oa, ob;

	event_write(&w0, &o0, &f->ev, "evt_taken", NULL);
	assert_int_equal(hr_store_put_event(f->store, &w0, &o0), HR_OK);
	wait_done(1);
	assert_int_equal(o0.res.status, HR_OK);

	event_write(&wblock, &oblock, &f->ev, "evt_blocker", NULL);
	oblock.arg = &oblock;
	g.hold = true;
	assert_int_equal(hr_store_put_event(f->store, &wblock, &oblock), HR_OK);
	pthread_mutex_lock(&g.mu);
	while (!g.held)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);

	event_write(&wa, &oa, &f->ev, "evt_taken", "k");
	event_write(&wb, &ob, &f->ev, "evt_b", "k");
	assert_int_equal(hr_store_put_event(f->store, &wa, &oa), HR_OK);
	assert_int_equal(hr_store_put_event(f->store, &wb, &ob), HR_OK);
	pthread_mutex_lock(&g.mu);
	g.hold = false;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
	wait_done(4);

	assert_int_equal(oa.res.status, HR_EDB);
	assert_int_equal(ob.res.status, HR_OK);
	assert_false(ob.res.duplicate);
	assert_string_equal(ob.res.id, "evt_b");
	assert_string_equal(wb.req.id, "evt_b"); /* the input is never written */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_retried_write_keeps_its_own_id, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
