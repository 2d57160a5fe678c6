/*
 * tests/unit/test_chunks.c - a destination's replay and discard go in chunks,
 * a transaction each, and ask before each chunk whether the configuration
 * still wants them (a reload may have removed the destination, or brought it
 * back): when not, they stop there, and what the chunks before did stays.
 * The writer's rule, the same over both engines: shown on SQLite.
 */
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
#include <sqlite3.h>

#include "hr/store.h"
#include "hr/store_sqlite.h"
#include "sqlprobe.h"
#include "tmpdir.h"

/* 12,000 events, each once delivered to crm, and pending to gone: three chunks. */
#define ROWS 12000
#define ROWS_SQL                                                                                   \
	"WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < 12000)"          \
	" INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"        \
	" SELECT i, 'evt_' || i, i, 's', '', 'k', '{}', x'7b7d' FROM g;"                           \
	"INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"          \
	" next_attempt_at) SELECT seq, 'crm', 1, 1, 1, 1 FROM events;"                             \
	"INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"          \
	" next_attempt_at) SELECT seq, 'gone', 0, 1, 1, 1 FROM events;"

struct fixture {
	char dir[64], path[96];
	struct hr_store *store;
};

/* How many more chunks the configuration says yes to (still_wanted). */
static atomic_int yes_left;
static atomic_int asked;

static bool
still_wanted(void *arg)
{
	(void)arg;
	atomic_fetch_add(&asked, 1);
	return atomic_fetch_sub(&yes_left, 1) > 0;
}

static atomic_int ops_done;

static void
on_done(struct hr_store_op *op, void *arg)
{
	(void)op;
	(void)arg;
	atomic_fetch_add(&ops_done, 1);
}

static void
wait_done(int n)
{
	for (int i = 0; i < 30000 && atomic_load(&ops_done) < n; i++)
		usleep(1000);
	assert_true(atomic_load(&ops_done) >= n);
}

static int
setup(void **state)
{
	static struct fixture f;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f.path, .readers = 1 };
	struct hr_error err = { .field = "" };
	sqlite3 *db = NULL;
	int rc;

	tmp_template(f.dir, sizeof(f.dir), "hrchunkXXXXXX");
	if (mkdtemp(f.dir) == NULL)
		return -1;
	snprintf(f.path, sizeof(f.path), "%s/db", f.dir);
	if (hr_store_open(&o, &f.store, &err) != HR_OK || sqlite3_open(f.path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, ROWS_SQL, NULL, NULL, NULL);
	sqlite3_close(db);
	*state = &f;
	return rc == SQLITE_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	hr_store_close(f->store);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Run `submit` with the configuration saying yes `yes` times; its result. */
static struct hr_store_result
run_op(int yes, int (*submit)(struct hr_store *, struct hr_store_op *), struct hr_store *s)
{
	struct hr_store_op op = { .done = on_done };
	int n = atomic_load(&ops_done);

	atomic_store(&yes_left, yes);
	atomic_store(&asked, 0);
	assert_int_equal(submit(s, &op), HR_OK);
	wait_done(n + 1);
	assert_int_equal(op.res.status, HR_OK);
	return op.res;
}

static int
submit_discard(struct hr_store *s, struct hr_store_op *op)
{
	static const struct hr_discard d = {
		.destination = "gone", .reason = "gone", .now_us = 1, .still_gone = still_wanted
	};

	return hr_store_discard(s, &d, op);
}

static int
submit_replay(struct hr_store *s, struct hr_store_op *op)
{
	static const struct hr_replay r = {
		.destination = "crm", .status = 1, .still_configured = still_wanted
	};

	return hr_store_replay(s, &r, op);
}

static void
a_discard_stops_at_the_chunk_before_which_the_destination_came_back(void **state)
{
	struct fixture *f = *state;
	struct hr_store_result res = run_op(2, submit_discard, f->store);

	assert_true(res.stopped);
	assert_int_equal(res.count, 10000);
	assert_int_equal(atomic_load(&asked), 3);
	assert_int_equal(count_of(f->path,
	                     "SELECT count(DISTINCT updated_at) FROM deliveries"
	                     " WHERE destination = 'gone' AND status = 2"),
	    2);
	assert_int_equal(
	    count_of(f->path, "SELECT count(*) FROM deliveries WHERE status = 0"), ROWS - 10000);

	/* Again with the destination gone all along: the rest, in one more chunk. */
	res = run_op(100, submit_discard, f->store);
	assert_false(res.stopped);
	assert_int_equal(res.count, ROWS - 10000);
	assert_int_equal(count_of(f->path, "SELECT count(*) FROM deliveries WHERE status = 0"), 0);
}

static void
a_replay_stops_at_the_chunk_before_which_the_destination_was_removed(void **state)
{
	struct fixture *f = *state;
	struct hr_store_result res;

	/* Those pending to gone are not crm's: a replay of crm's queues each event. */
	res = run_op(1, submit_replay, f->store);
	assert_true(res.stopped);
	assert_int_equal(res.count, 5000);
	assert_int_equal(atomic_load(&asked), 2);
	assert_int_equal(count_of(f->path,
	                     "SELECT count(*) FROM deliveries"
	                     " WHERE destination = 'crm' AND status = 0"),
	    5000);

	/* Again, configured all along: the rest, the events queued before skipped. */
	res = run_op(100, submit_replay, f->store);
	assert_false(res.stopped);
	assert_int_equal(res.count, ROWS - 5000);
	assert_int_equal(count_of(f->path,
	                     "SELECT count(*) FROM deliveries"
	                     " WHERE destination = 'crm' AND status = 0"),
	    ROWS);
}

/* A chunk that fails rolls back alone: the answer counts the chunks before. */
static void
a_failed_chunk_keeps_the_chunks_before(void **state)
{
	struct fixture *f = *state;
	struct hr_store_op op = { .done = on_done };
	int n = atomic_load(&ops_done);
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                     "CREATE TRIGGER second_chunk_fails BEFORE UPDATE OF status ON "
	                     "deliveries WHEN old.destination = 'gone' AND old.event_seq = 5001 "
	                     "BEGIN SELECT RAISE(ABORT, 'the second chunk fails'); END;",
	                     NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	atomic_store(&yes_left, 100);
	assert_int_equal(submit_discard(f->store, &op), HR_OK);
	wait_done(n + 1);
	assert_int_not_equal(op.res.status, HR_OK);
	assert_int_equal(op.res.count, 5000);
	assert_int_equal(
	    count_of(f->path, "SELECT count(*) FROM deliveries WHERE status = 2"), 5000);
}

static void
a_removal_before_the_first_chunk_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct hr_store_result res = run_op(0, submit_replay, f->store);

	assert_true(res.stopped);
	assert_int_equal(res.count, 0);
	res = run_op(0, submit_discard, f->store);
	assert_true(res.stopped);
	assert_int_equal(res.count, 0);
	assert_int_equal(
	    count_of(f->path, "SELECT count(*) FROM deliveries WHERE status = 0"), ROWS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    a_discard_stops_at_the_chunk_before_which_the_destination_came_back, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_replay_stops_at_the_chunk_before_which_the_destination_was_removed, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_removal_before_the_first_chunk_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_failed_chunk_keeps_the_chunks_before, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
