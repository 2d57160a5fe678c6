/*
 * tests/unit/test_store.c - the store's writer over the SQLite engine: a
 * batch whose first pass fails is retried from its writes' inputs; the
 * schema keeps only the indexes a query needs; dedup keys are claimed in one
 * statement and still held for their window; a page of a big room, and its
 * timeline, read a page's worth of rows, not the room.
 */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "hr/event.h"
#include "hr/store.h"
#include "hr/store_sqlite.h"
#include "hr/timefmt.h"
/* The engine's own helpers: [storage] cache_size is applied by one of them. */
#include "../../src/store/sqlite_int.h"
#include "../../src/store/store_int.h"
#include "sqlprobe.h"
#include "tmpdir.h"

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
	char dir[256], path[272];
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

	/* tmpdir.h: the fills of the pruning tests synced 30,000-100,000 rows
	 * each to a busy disk. */
	tmp_template(f.dir, sizeof(f.dir), "hrstoreXXXXXX");
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
	char cmd[300];

	hr_store_close(f->store);
	hr_event_clear(&f->ev);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Queue `w` and hold the writer in its done() until release_writer(): what is
 * queued meanwhile goes in one batch. */
static void
hold_writer(struct fixture *f, struct hr_event_write *w, struct hr_store_op *op)
{
	op->arg = op;
	pthread_mutex_lock(&g.mu);
	g.hold = true;
	g.held = false; /* an earlier hold's: it would let this one go on at once */
	pthread_mutex_unlock(&g.mu);
	assert_int_equal(hr_store_put_event(f->store, w, op), HR_OK);
	pthread_mutex_lock(&g.mu);
	while (!g.held)
		pthread_cond_wait(&g.cv, &g.mu);
	pthread_mutex_unlock(&g.mu);
}

static void
release_writer(void)
{
	pthread_mutex_lock(&g.mu);
	g.hold = false;
	pthread_cond_broadcast(&g.cv);
	pthread_mutex_unlock(&g.mu);
}

/* hr_store_writer_turns(f, WITHIN), timed: it must answer at once (well under
 * WITHIN, which it once waited for); returns the answer. */
#define WITHIN_US 500000
static bool
turns_at_once(struct fixture *f)
{
	int64_t t0 = hr_time_mono_us();
	bool turns = hr_store_writer_turns(f->store, WITHIN_US);

	assert_true(hr_time_mono_us() - t0 < WITHIN_US / 2);
	return turns;
}

/*
 * The watchdog's question, asked by the main thread, which also takes the
 * signals: answered at once, stuck writer or not. An idle writer turns (it
 * answers the ping); a stuck one turns until the ping it has not answered is
 * older than the limit; once it moves again, it turns.
 */
static void
the_watchdogs_question_is_answered_at_once_and_finds_a_stuck_writer(void **state)
{
	struct fixture *f = *state;
	struct hr_event_write w;
	struct hr_store_op op;
	int before = g.done;

	assert_true(turns_at_once(f)); /* the ping is sent */
	usleep(100000);
	assert_true(turns_at_once(f)); /* and was answered */
	event_write(&w, &op, &f->ev, "evt_0000000000000000000000turns", NULL);
	hold_writer(f, &w, &op); /* stuck in a done() from now on */
	usleep(WITHIN_US + 100000);
	assert_true(turns_at_once(f)); /* its last batch is old, but the new ping is not */
	usleep(WITHIN_US + 100000);
	assert_false(turns_at_once(f)); /* the ping is unanswered past the limit */
	assert_false(turns_at_once(f));
	release_writer();
	wait_done(before + 1);
	usleep(100000);
	assert_true(turns_at_once(f));
}

/* The writes waiting for a batch, as /metrics and /readyz show them. */
static unsigned
queued_writes(struct fixture *f)
{
	struct hr_store_stats st;

	hr_store_stats(f->store, &st);
	return st.queued;
}

/*
 * The queue depth counts writes. The watchdog's ping, queued while the writer
 * is stuck, once counted as one: a queue of nothing read 1, and a test that
 * waited for its own write to be queued went on before it was.
 */
static void
the_watchdogs_ping_is_not_a_queued_write(void **state)
{
	struct fixture *f = *state;
	struct hr_event_write w, w2;
	struct hr_store_op op, op2;
	unsigned held, pinged, written;
	int before = g.done;

	event_write(&w, &op, &f->ev, "evt_0000000000000000000000queue", NULL);
	hold_writer(f, &w, &op);
	held = queued_writes(f);
	(void)hr_store_writer_turns(f->store, WITHIN_US); /* queues the ping */
	pinged = queued_writes(f);
	event_write(&w2, &op2, &f->ev, "evt_000000000000000000000queue2", NULL);
	assert_int_equal(hr_store_put_event(f->store, &w2, &op2), HR_OK);
	written = queued_writes(f);
	release_writer(); /* before any assertion: a failed one would leave it held */
	wait_done(before + 2);
	assert_int_equal(held, 0);
	assert_int_equal(pinged, 0);
	assert_int_equal(written, 1);
	assert_int_equal(op2.res.status, HR_OK);
	usleep(100000);
	assert_int_equal(queued_writes(f), 0);
	assert_true(turns_at_once(f)); /* the ping was taken with the write */
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
	hold_writer(f, &wblock, &oblock);

	event_write(&wa, &oa, &f->ev, "evt_taken", "k");
	event_write(&wb, &ob, &f->ev, "evt_b", "k");
	assert_int_equal(hr_store_put_event(f->store, &wa, &oa), HR_OK);
	assert_int_equal(hr_store_put_event(f->store, &wb, &ob), HR_OK);
	release_writer();
	wait_done(4);

	assert_int_equal(oa.res.status, HR_EDB);
	assert_int_equal(ob.res.status, HR_OK);
	assert_false(ob.res.duplicate);
	assert_string_equal(ob.res.id, "evt_b");
	assert_string_equal(wb.req.id, "evt_b"); /* the input is never written */

	/* The batch committed (b is stored): not a failed batch, and /readyz stays
	 * ready. Its first write's status alone once decided both, so one bad write
	 * at the head of a batch took the node out of its load balancer. */
	struct hr_store_stats st;
	hr_store_stats(f->store, &st);
	assert_int_equal(st.failed_batches, 0);
	assert_false(st.last_batch_failed);
	assert_false(st.last_write_failed);
}

/* Received `at` seconds after the test began (the writer expires keys and prunes
 * by the clock: times must be now's), with a 10-s dedup window; waits for the
 * write to be done, and returns its result. */
static struct hr_store_result
put(struct fixture *f, const char *id, const char *key, int at, int *ndone)
{
	static int64_t t0;
	struct hr_event_write w;
	struct hr_store_op op;

	if (t0 == 0)
		t0 = hr_time_now_us();
	event_write(&w, &op, &f->ev, id, key);
	w.req.received_us = t0 + (int64_t)at * 1000000;
	w.dedup_window_us = 10 * INT64_C(1000000);
	assert_int_equal(hr_store_put_event(f->store, &w, &op), HR_OK);
	wait_done(++*ndone);
	assert_int_equal(op.res.status, HR_OK);
	return op.res;
}

/* A key is held for its window (received + 10 s), then claimed by the next event. */
static void
a_dedup_key_is_held_for_its_window_then_claimed_again(void **state)
{
	struct fixture *f = *state;
	struct hr_store_result r;
	int n = g.done;

	r = put(f, "evt_1", "k", 0, &n);
	assert_false(r.duplicate);
	assert_string_equal(r.id, "evt_1");
	r = put(f, "evt_2", "k", 9, &n);
	assert_true(r.duplicate);
	assert_string_equal(r.id, "evt_1");
	r = put(f, "evt_3", "other", 9, &n);
	assert_false(r.duplicate);
	r = put(f, "evt_4", "k", 10, &n); /* expired at 10: evt_4 holds it until 20 */
	assert_false(r.duplicate);
	assert_string_equal(r.id, "evt_4");
	r = put(f, "evt_5", "k", 19, &n);
	assert_true(r.duplicate);
	assert_string_equal(r.id, "evt_4");
}

/* The writer tells the engine when a batch's last write may take the COMMIT
 * along (store_ops.h; PostgreSQL sends it in that write's round trip). */
static atomic_uint commits_offered;

static void
offer_counted(struct hr_store_backend *b)
{
	(void)b;
	atomic_fetch_add(&commits_offered, 1);
}

/* The store of `f` again, on `engine` (which outlives it). */
static void
reopen_on(struct fixture *f, const struct hr_store_ops *engine)
{
	struct hr_store_opts o = { .engine = engine, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };

	hr_store_close(f->store);
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
}

/* Only when nothing follows the run in its transaction: not in the first
 * batch, whose dedup keys' expiry comes after its writes. */
static void
a_batchs_last_run_is_offered_the_commit_when_nothing_follows_it(void **state)
{
	static struct hr_store_ops counting;
	struct fixture *f = *state;
	int n = g.done;

	counting = hr_store_sqlite;
	counting.commit_with_write = offer_counted;
	reopen_on(f, &counting);
	atomic_store(&commits_offered, 0);
	(void)put(f, "evt_1", "k1", 0, &n);
	assert_int_equal(atomic_load(&commits_offered), 0); /* the expiry followed */
	(void)put(f, "evt_2", "k2", 0, &n);
	assert_int_equal(atomic_load(&commits_offered), 1);
	(void)put(f, "evt_3", "k3", 0, &n);
	assert_int_equal(atomic_load(&commits_offered), 2);

	/* A watchdog's ping behind the write writes nothing: the COMMIT still goes. */
	struct hr_event_write wblock, w4;
	struct hr_store_op oblock, o4;

	event_write(&wblock, &oblock, &f->ev, "evt_blocker", NULL);
	hold_writer(f, &wblock, &oblock);
	assert_int_equal(atomic_load(&commits_offered), 3);
	event_write(&w4, &o4, &f->ev, "evt_4", NULL);
	assert_int_equal(hr_store_put_event(f->store, &w4, &o4), HR_OK);
	(void)hr_store_writer_turns(f->store, WITHIN_US); /* queues its ping */
	release_writer();
	wait_done(n + 2);
	assert_int_equal(o4.res.status, HR_OK);
	assert_int_equal(atomic_load(&commits_offered), 4);
	reopen_on(f, &hr_store_sqlite);
}

/* ---- a ping probes whether writes commit again (store_ops.h, probe_write) ---- */

static atomic_bool writes_fail;
static atomic_uint probes;

static int
put_events_failing(struct hr_store_backend *b, const struct hr_event_write *const *in,
    struct hr_store_result *const *res, size_t n)
{
	return atomic_load(&writes_fail) ? HR_EDB : hr_store_sqlite.put_events(b, in, res, n);
}

static int
probe_counted(struct hr_store_backend *b)
{
	atomic_fetch_add(&probes, 1);
	return atomic_load(&writes_fail) ? HR_EDB : hr_store_sqlite.probe_write(b);
}

/* Pings until the writer has done another batch (5 s at most). */
static void
ping_through(struct fixture *f)
{
	struct hr_store_stats st;
	uint64_t before;
	int64_t deadline = hr_time_mono_us() + 5000000;

	hr_store_stats(f->store, &st);
	before = st.batches;
	do {
		(void)hr_store_writer_turns(f->store, WITHIN_US);
		usleep(2000);
		hr_store_stats(f->store, &st);
	} while (st.batches == before && hr_time_mono_us() < deadline);
	assert_true(st.batches > before);
}

/* An operations review: after the database took no writes for a while, /readyz
 * stayed failed until the next pruning pass (a minute by default, up to a
 * day), as no webhook came to show that writes commit again, and a load
 * balancer that took the node out sends none. While the last write failed,
 * the watchdog's ping carries a write that changes nothing. */
static void
a_ping_probes_writes_while_they_fail(void **state)
{
	static struct hr_store_ops flaky;
	struct fixture *f = *state;
	struct hr_store_stats st;
	struct hr_event_write w;
	struct hr_store_op op;
	int n = g.done;

	flaky = hr_store_sqlite;
	flaky.put_events = put_events_failing;
	flaky.probe_write = probe_counted;
	reopen_on(f, &flaky);
	atomic_store(&probes, 0);
	ping_through(f);
	assert_int_equal(atomic_load(&probes), 0); /* writes commit: a ping writes nothing */

	atomic_store(&writes_fail, true);
	event_write(&w, &op, &f->ev, "evt_lost", NULL);
	assert_int_equal(hr_store_put_event(f->store, &w, &op), HR_OK);
	wait_done(++n);
	assert_int_equal(op.res.status, HR_EDB);
	hr_store_stats(f->store, &st);
	assert_true(st.last_write_failed);
	ping_through(f);
	assert_true(atomic_load(&probes) >= 1);
	hr_store_stats(f->store, &st);
	assert_true(st.last_write_failed); /* the probe failed too */

	atomic_store(&writes_fail, false);
	ping_through(f);
	hr_store_stats(f->store, &st);
	assert_false(st.last_write_failed); /* no webhook came, and the node is ready */
	assert_false(st.last_batch_failed);
	reopen_on(f, &hr_store_sqlite);
}

/* A pruning pass that fails as SQLite fails on a full disk or an I/O error in
 * the middle of a statement: the whole transaction is rolled back with it. */
static int
prune_losing_the_transaction(
    struct hr_store_backend *b, const struct hr_retention *policy, struct hr_prune_result *res)
{
	(void)policy;
	(void)res;
	(void)hr_store_sqlite.rollback(b);
	return HR_EDB;
}

/*
 * Review R2: the batch's webhooks were then written in autocommit, one by
 * one: a dedup key was committed without its event (its write failed after
 * it), the batch's COMMIT failed, the webhook was answered 503, and its
 * resend was told "duplicate" of an event never stored.
 */
static void
a_pass_that_ends_the_transaction_commits_no_write_of_its_batch(void **state)
{
	static struct hr_store_ops losing;
	static const struct hr_retention policy = { .interval_us = 1000000 };
	struct fixture *f = *state;
	struct hr_event_write wblock, w1;
	struct hr_store_op oblock, oprune, o1;
	struct hr_prune_result pres;
	int n = g.done;

	losing = hr_store_sqlite;
	losing.prune = prune_losing_the_transaction;
	reopen_on(f, &losing);
	event_write(&wblock, &oblock, &f->ev, "evt_blocker", NULL);
	hold_writer(f, &wblock, &oblock);
	memset(&oprune, 0, sizeof(oprune));
	oprune.done = on_done;
	assert_int_equal(hr_store_submit(f->store, HR_OP_PRUNE, &policy, &pres, &oprune), HR_OK);
	event_write(&w1, &o1, &f->ev, "evt_in_the_pass", "k-lost");
	w1.req.received_us = hr_time_now_us(); /* its key within its window */
	assert_int_equal(hr_store_put_event(f->store, &w1, &o1), HR_OK);
	release_writer();
	wait_done(n += 3);
	assert_int_not_equal(o1.res.status, HR_OK); /* its batch did not commit */
	reopen_on(f, &hr_store_sqlite);
	/* Not put(): its clock starts at its first call, which must stay the dedup test's. */
	event_write(&w1, &o1, &f->ev, "evt_again", "k-lost");
	w1.req.received_us = hr_time_now_us();
	n = g.done;
	assert_int_equal(hr_store_put_event(f->store, &w1, &o1), HR_OK);
	wait_done(n + 1);
	assert_int_equal(o1.res.status, HR_OK);
	assert_false(o1.res.duplicate); /* nothing of the first was kept */
	assert_string_equal(o1.res.id, "evt_again");
}

/* The names of the database's own indexes (not SQLite's automatic ones), sorted,
 * comma-separated, and its user_version. */
static int
schema_of(const char *path, char *names, size_t len)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int version = -1;

	names[0] = '\0';
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
	        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
	        " ORDER BY name",
	        -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t used = strlen(names);
		snprintf(names + used, len - used, "%s%s", used ? "," : "",
		    (const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return version;
}

/*
 * Every index costs each event a B-tree insert and each commit a WAL page, so
 * the schema holds the ones a query needs (the query is named beside each in
 * src/store/sqlite_schema.c) and no other. sessions_key and sessions_last_seen
 * served no query and went in version 7.
 */
static const char needed_indexes[] =
    "attempts_delivery,dedup_expires,deliveries_created,deliveries_dest_status,"
    "deliveries_due,deliveries_event,deliveries_order,deliveries_status,event_query_event,"
    "events_facet,events_meeting,events_pruned,events_recording,"
    "events_recording_instance,events_room,events_room_meetings,events_room_recording_instances,"
    "events_room_recordings,events_room_time,events_session_id,"
    "events_unpruned,facets_tuple,rejections_received_at,rejections_source,"
    "rejections_unacknowledged,sessions_provider,sessions_status";

/* A database of version 15: schemas 16 (store_state), 17 (an acknowledged
 * rejection), 18 (a room's links) and 20 (the ids' high-water marks) undone. */
#define UNDO_STORE_STATE                                                                           \
	"DROP TRIGGER rejections_seq; DROP TRIGGER sessions_id;"                                   \
	"DROP TABLE room_links; ALTER TABLE events DROP COLUMN linked_room;"                       \
	"DROP INDEX rejections_unacknowledged; ALTER TABLE rejections DROP COLUMN acknowledged;"   \
	"DROP TABLE store_state;"

/* A database of version 14: schema 15 (a room's status time) and 16 undone. */
#define UNDO_STATUS_AT                                                                             \
	UNDO_STORE_STATE                                                                           \
	"ALTER TABLE sessions DROP COLUMN status_at; ALTER TABLE sessions DROP COLUMN status_by;"

/* A database of version 12: schema 15 (a room's status time) and 13 and 14
 * (facets) undone, the seven indexes back. */
#define UNDO_FACETS                                                                                \
	UNDO_STATUS_AT                                                                             \
	"DROP INDEX events_facet; ALTER TABLE events DROP COLUMN facet; DROP TABLE facets;"        \
	"CREATE INDEX events_source ON events (source, seq);"                                      \
	"CREATE INDEX events_provider ON events (provider, seq);"                                  \
	"CREATE INDEX events_kind ON events (kind, seq);"                                          \
	"CREATE INDEX events_event_type ON events (event_type, seq);"                              \
	"CREATE INDEX events_subtype ON events (subtype, seq) WHERE subtype IS NOT NULL;"          \
	"CREATE INDEX events_session_key ON events (session_key, seq);"                            \
	"DROP INDEX events_pruned;"                                                                \
	"CREATE INDEX events_source_age ON events (source, received_at);"

static void
a_new_database_has_only_the_indexes_queries_need(void **state)
{
	struct fixture *f = *state;
	char names[2048];

	assert_int_equal(
	    schema_of(f->path, names, sizeof(names)), hr_store_sqlite_schema_version());
	assert_string_equal(names, needed_indexes);
}

/* A database of version 6 (the indexes made again, those of versions 8 to 11
 * and the counts of 12 gone, the version put back) loses them and gains those
 * of versions 8 to 12. */
static void
version_6_drops_the_indexes_no_query_needs(void **state)
{
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };
	sqlite3 *db = NULL;
	char names[2048];

	hr_store_close(f->store);
	f->store = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
	        UNDO_FACETS
	        "CREATE INDEX sessions_key ON sessions (key);"
	        "CREATE INDEX sessions_last_seen ON sessions (last_seen);"
	        "DROP INDEX events_room_meetings; DROP INDEX events_room_recordings;"
	        "DROP INDEX events_room_time; DROP INDEX events_subtype;"
	        "DROP INDEX events_recording_instance;"
	        "DROP INDEX events_room_recording_instances;"
	        "ALTER TABLE events DROP COLUMN recording_instance;"
	        "DROP TRIGGER deliveries_counted_in; DROP TRIGGER deliveries_counted_moved;"
	        "DROP TRIGGER deliveries_counted_out; DROP TABLE delivery_counts;"
	        "PRAGMA user_version=6;",
	        NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(schema_of(f->path, names, sizeof(names)), 6);
	assert_non_null(strstr(names, "sessions_key"));
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	assert_int_equal(
	    schema_of(f->path, names, sizeof(names)), hr_store_sqlite_schema_version());
	assert_string_equal(names, needed_indexes);
}

static void
exec_on(const char *path, const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

extern char **environ;

/*
 * A fixture's rows (tens of thousands, in SQL) put in by the sqlite3 shell, the
 * same library in a process of its own, not on a connection of this one: in
 * the sanitizer build each B-tree page split of such a fill is a malloc()
 * that AddressSanitizer's quarantine keeps from being used again, so the
 * fills touched ~2 GB of new memory a run (~550,000 page faults, over half of
 * the test's processor time; a page fault costs this virtual machine 20-35 us,
 * more on a busy host), none of it the store's code. What the store reads
 * back is the same file either way.
 */
static void
fill_on(const char *path, const char *sql)
{
	char *argv[] = { "sqlite3", "-bail", "-batch", "-init", "/dev/null", (char *)path,
		(char *)sql, NULL };
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status = -1;

	assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
	assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0), 0);
	assert_int_equal(posix_spawnp(&pid, "sqlite3", &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* The definition of index `name` in the file at `path`, as SQLite keeps it. */
static void
index_definition(const char *path, const char *name, char *out, size_t len)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_master WHERE name = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/*
 * Steps 13 and 14 were once edited in place: a database made by a build of
 * that day is at version 14 (here the latest) without events_pruned, with
 * events_source_age still there and events_facet of another definition. It
 * was taken as current: every pruning pass failed for want of the index. At
 * open its indexes are made this version's.
 */
static void
a_version_whose_indexes_are_not_its_own_is_mended(void **state)
{
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };
	char names[2048], def[256];

	hr_store_close(f->store);
	f->store = NULL;
	exec_on(f->path,
	    "DROP INDEX events_pruned; DROP INDEX events_facet;"
	    "CREATE INDEX events_facet ON events (facet, seq);"
	    "CREATE INDEX events_source_age ON events (source, received_at);");
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	assert_int_equal(
	    schema_of(f->path, names, sizeof(names)), hr_store_sqlite_schema_version());
	assert_string_equal(names, needed_indexes);
	index_definition(f->path, "events_facet", def, sizeof(def));
	assert_string_equal(def, "CREATE INDEX events_facet ON events (facet, seq, received_at)");
}

/* ... and one at version 13 that step 13 of that day gave events_facet already
 * refused to start: "index events_facet already exists". */
static void
a_version_13_with_the_facet_index_migrates(void **state)
{
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };
	char names[2048];

	hr_store_close(f->store);
	f->store = NULL;
	exec_on(f->path,
	    UNDO_STATUS_AT "DROP INDEX events_pruned;"
	                   "CREATE INDEX events_source_age ON events (source, received_at);"
	                   "PRAGMA user_version=13;");
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	assert_int_equal(
	    schema_of(f->path, names, sizeof(names)), hr_store_sqlite_schema_version());
	assert_string_equal(names, needed_indexes);
}

static void
assert_counts(struct hr_store *s, const char *name, int64_t pending, int64_t succeeded,
    int64_t failed, int64_t dead)
{
	struct hr_error err = { .field = "" };
	struct hr_destination_row row;

	assert_int_equal(hr_store_destination(s, name, &row, NULL, 0, &err), HR_OK);
	assert_int_equal(row.pending, pending);
	assert_int_equal(row.succeeded, succeeded);
	assert_int_equal(row.failed, failed);
	assert_int_equal(row.dead, dead);
}

/* The SQLite VM steps of the last read any connection of this process ran whose
 * text has `watched` in it: sqlite3_auto_extension puts the profile hook on the
 * store's connections. */
static long long read_steps = -1;
static const char *watched = " FROM events";
/* ... and the pages it asked the page cache for (overflow pages of bodies too), and
 * how many times that statement has run (a statement prepared anew: once). */
static long long read_pages = -1, read_runs = -1;
/* ... and the VM steps of every such statement since it was set to 0 (UPDATEs
 * too while watch_writes). */
static long long sum_steps;
static bool watch_writes;
/* The writer's savepoints released (each job's, and within a pruning pass). */
static long long releases;

/* Pages the connection asked for since the last call. */
static long long
pages_since(sqlite3 *db)
{
	int hit = 0, miss = 0, high = 0;

	sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_HIT, &hit, &high, 1);
	sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &miss, &high, 1);
	return (long long)hit + miss;
}

static int
on_profile(unsigned type, void *ctx, void *stmt, void *ns)
{
	const char *sql = sqlite3_sql(stmt);
	long long pages = pages_since(sqlite3_db_handle(stmt));

	(void)ctx;
	(void)ns;
	if (type == SQLITE_TRACE_PROFILE && sql != NULL && strcmp(sql, "RELEASE job") == 0)
		releases++;
	if (type == SQLITE_TRACE_PROFILE && sql != NULL &&
	    (strncmp(sql, "SELECT", 6) == 0 || strncmp(sql, "WITH", 4) == 0 ||
	        (watch_writes && strncmp(sql, "UPDATE", 6) == 0)) &&
	    strstr(sql, watched) != NULL) {
		read_steps = sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_VM_STEP, 0);
		sum_steps += read_steps;
		read_runs = sqlite3_stmt_status(stmt, SQLITE_STMTSTATUS_RUN, 0);
		read_pages = pages;
	}
	return 0;
}

static int
profile_connection(sqlite3 *db, char **err, const struct sqlite3_api_routines *api)
{
	(void)err;
	(void)api;
	return sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, on_profile, NULL);
}

static int collect_id(const struct hr_event_row *r, void *arg);

/* The ids `flt` lists, newest first, in `ids` (*next: the next page's cursor, when
 * not NULL); the VM steps its read took (on a store opened by fill_and_watch()). */
static long long
list_ids(struct fixture *f, const struct hr_event_filter *flt, char *ids, int64_t *next)
{
	struct hr_error err = { .field = "" };
	int64_t ignored;

	ids[0] = '\0';
	read_steps = -1;
	assert_int_equal(hr_store_list_events(
	                     f->store, flt, collect_id, ids, next != NULL ? next : &ignored, &err),
	    HR_OK);
	return read_steps;
}

/* The ids of the newest 50 events of `source`, newest first, in `ids`. */
static void
list_source(struct fixture *f, const char *source, char *ids)
{
	struct hr_event_filter flt = { .limit = 50 };

	flt.source.v[0] = source;
	flt.source.n = 1;
	(void)list_ids(f, &flt, ids, NULL);
}

/*
 * A batch: `a`, of a source no event had, makes its facet; then a write that
 * fails (its id is taken) rolls the pass back, the facet's row with it. The
 * retry must make the facet again, not give `a` the id the writer remembered
 * from the first pass: no row has it, and `a` was missing from its source's
 * listing.
 */
static void
a_facet_made_by_a_rolled_back_pass_is_made_again(void **state)
{
	struct fixture *f = *state;
	struct hr_event_write w0, wblock, wa, wfail, wb;
	struct hr_store_op o0, oblock, oa, ofail, ob;
	int before = g.done;
	char ids[256];

	event_write(&w0, &o0, &f->ev, "evt_taken", NULL);
	assert_int_equal(hr_store_put_event(f->store, &w0, &o0), HR_OK);
	wait_done(before + 1);
	event_write(&wblock, &oblock, &f->ev, "evt_blocker", NULL);
	hold_writer(f, &wblock, &oblock);
	event_write(&wa, &oa, &f->ev, "evt_a", NULL);
	wa.req.source = "fresh";
	event_write(&wfail, &ofail, &f->ev, "evt_taken", NULL);
	assert_int_equal(hr_store_put_event(f->store, &wa, &oa), HR_OK);
	assert_int_equal(hr_store_put_event(f->store, &wfail, &ofail), HR_OK);
	release_writer();
	wait_done(before + 4);
	assert_int_equal(oa.res.status, HR_OK);
	assert_int_equal(ofail.res.status, HR_EDB);

	/* And the next new facet is not taken for a's either. */
	event_write(&wb, &ob, &f->ev, "evt_b", NULL);
	wb.req.source = "later";
	assert_int_equal(hr_store_put_event(f->store, &wb, &ob), HR_OK);
	wait_done(before + 5);
	list_source(f, "fresh", ids);
	assert_string_equal(ids, "evt_a ");
	list_source(f, "later", ids);
	assert_string_equal(ids, "evt_b ");
	list_source(f, "s", ids);
	assert_string_equal(ids, "evt_blocker evt_taken ");
}

/*
 * Version 12 to 13: every event gets the facet of its columns, one facet per
 * distinct five (an absent event type or subtype is one value of its own),
 * and the listings find them through it.
 */
static void
version_12_gives_each_event_its_facet(void **state)
{
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };
	struct hr_event_filter flt = { .limit = 50 };
	char ids[256];

	hr_store_close(f->store);
	f->store = NULL;
	exec_on(f->path,
	    UNDO_FACETS
	    "PRAGMA user_version=12;"
	    "INSERT INTO events (id, received_at, source, provider, kind, event_type, subtype,"
	    " headers, body) VALUES"
	    " ('evt_1', 1, 'a', 'tavus', 'tavus.video', 'video.ready', NULL, '{}', X''),"
	    " ('evt_2', 2, 'a', 'tavus', 'tavus.video', 'video.ready', 'completed', '{}', X''),"
	    " ('evt_3', 3, 'b', 'tavus', 'tavus.video', 'video.ready', NULL, '{}', X''),"
	    " ('evt_4', 4, 'a', 'tavus', 'tavus.video', NULL, NULL, '{}', X''),"
	    " ('evt_5', 5, 'a', 'tavus', 'tavus.video', 'video.ready', NULL, '{}', X'');");
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	assert_int_equal(count_of(f->path, "SELECT count(*) FROM facets"), 4);
	assert_int_equal(count_of(f->path, "SELECT count(*) FROM events WHERE facet IS NULL"), 0);
	list_source(f, "a", ids);
	assert_string_equal(ids, "evt_5 evt_4 evt_2 evt_1 ");
	flt.event_type.v[0] = "video.ready";
	flt.event_type.n = 1;
	(void)list_ids(f, &flt, ids, NULL);
	assert_string_equal(ids, "evt_5 evt_3 evt_2 evt_1 ");
	flt.subtype.v[0] = "completed";
	flt.subtype.n = 1;
	(void)list_ids(f, &flt, ids, NULL);
	assert_string_equal(ids, "evt_2 ");
}

#define TWO_EVENTS                                                                                 \
	"INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"         \
	" VALUES (1, 'evt_1', 1, 's', '', 'k', '{}', x'7b7d'), (2, 'evt_2', 1, 's', '', 'k', "     \
	"'{}',"                                                                                    \
	" x'7b7d');"
#define DELIVERIES(dest, ev, n)                                                                    \
	"INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"          \
	" next_attempt_at) SELECT " #ev ", '" dest "', 0, 1, 1, 1 FROM"                            \
	" (WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < " #n ")"       \
	" SELECT i FROM c);"

/*
 * A destination's counts by status are kept by triggers, not counted at each
 * read (GET /v1/destinations, /metrics): they follow every insert, change of
 * status and delete, whoever makes it, and version 12 fills them from the rows
 * a database already has.
 */
static void
delivery_counts_follow_every_insert_change_and_delete(void **state)
{
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };

	exec_on(f->path, TWO_EVENTS DELIVERIES("crm", 1, 5) DELIVERIES("erp", 2, 2));
	assert_counts(f->store, "crm", 5, 0, 0, 0);
	exec_on(f->path,
	    "UPDATE deliveries SET status = 1 WHERE destination = 'crm' AND id <= 2;"
	    "UPDATE deliveries SET status = 3 WHERE destination = 'crm' AND id = 3;"
	    "UPDATE deliveries SET status = 0, attempts = 2 WHERE id = 4;");
	assert_counts(f->store, "crm", 2, 2, 0, 1);
	exec_on(f->path, "DELETE FROM deliveries WHERE id IN (1, 3);");
	assert_counts(f->store, "crm", 2, 1, 0, 0);
	assert_counts(f->store, "erp", 2, 0, 0, 0);
	assert_counts(f->store, "none", 0, 0, 0, 0);

	/* Version 11 with rows and no counts: the migration counts them. */
	hr_store_close(f->store);
	f->store = NULL;
	exec_on(f->path,
	    UNDO_FACETS "DROP TRIGGER deliveries_counted_in; DROP TRIGGER deliveries_counted_moved;"
	                "DROP TRIGGER deliveries_counted_out; DROP TABLE delivery_counts;"
	                "PRAGMA user_version=11;"
	                "UPDATE deliveries SET status = 2 WHERE destination = 'erp' AND id > 6;");
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	assert_counts(f->store, "crm", 2, 1, 0, 0);
	assert_counts(f->store, "erp", 1, 0, 1, 0);
	exec_on(f->path, DELIVERIES("erp", 2, 1));
	assert_counts(f->store, "erp", 2, 0, 1, 0);
	/* Read from the counts, not counted again (which took 41 ms per million rows). */
	exec_on(
	    f->path, "UPDATE delivery_counts SET n = 99 WHERE destination = 'erp' AND status = 2");
	assert_counts(f->store, "erp", 2, 0, 99, 0);
}

/* SQLite's plan for `sql`, its steps joined by " | ". */
static void
plan_of(const char *path, const char *sql, char *out, size_t len)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char q[1024];

	out[0] = '\0';
	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t used = strlen(out);
		snprintf(out + used, len - used, "%s%s", used ? " | " : "",
		    (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The room filter asks for the meetings and recordings of the room's events on
 * every page: through events_room that read each event of the room from the
 * table (440 ms for a room of 55k events, bench/scale); from an index alone. */
static void
the_room_filters_lookups_read_an_index_alone(void **state)
{
	struct fixture *f = *state;
	char plan[512];

	plan_of(f->path, ROOM_MEETINGS, plan, sizeof(plan));
	assert_non_null(strstr(plan, "USING COVERING INDEX events_room_meetings"));
	plan_of(f->path, ROOM_RECORDINGS, plan, sizeof(plan));
	assert_non_null(strstr(plan, "USING COVERING INDEX events_room_recordings"));
}

/* A room's event that names a meeting, a recording or an instance first counts
 * the events stored before that name it and no room (schema 18): through their
 * index, not a walk of every event on the writer. */
static void
a_rooms_new_link_finds_the_events_before_it_by_index(void **state)
{
	struct fixture *f = *state;
	char plan[1024];

	plan_of(f->path, ROOM_ADOPT("meeting"), plan, sizeof(plan));
	assert_non_null(strstr(plan, "USING INDEX events_meeting (meeting=?)"));
	plan_of(f->path, ROOM_ADOPT("recording"), plan, sizeof(plan));
	assert_non_null(strstr(plan, "USING INDEX events_recording (recording=?)"));
	plan_of(f->path, ROOM_ADOPT_INSTANCE, plan, sizeof(plan));
	assert_non_null(
	    strstr(plan, "USING INDEX events_recording_instance (recording_instance=?)"));
	/* and the room of an event's links, each checked by the room's index of them */
	plan_of(f->path, hr_sqlite_room_of_links_sql, plan, sizeof(plan));
	assert_non_null(strstr(plan, "USING COVERING INDEX events_room_meetings"));
	assert_non_null(strstr(plan, "USING COVERING INDEX events_room_recordings"));
	/* (an instance's check reads its few rows' recording and time too) */
	assert_non_null(strstr(
	    plan, "INDEX events_room_recording_instances (room=? AND recording_instance=?)"));
}

/* A listing of one room with limit 10: its ids in `ids`, its VM steps returned. */
static long long
list_room(struct fixture *f, const char *room, int64_t before, char *ids, int64_t *next)
{
	struct hr_event_filter flt = { .room = room, .before_seq = before, .limit = 10 };

	return list_ids(f, &flt, ids, next);
}

/* Rows inserted by hand have no facet: what the writer would have given them. */
#define FACETS_OF_NEW_ROWS                                                                         \
	"INSERT INTO facets (source, provider, kind, event_type, subtype)"                         \
	" SELECT DISTINCT source, provider, kind, event_type, subtype FROM events e"               \
	" WHERE facet IS NULL AND NOT EXISTS (SELECT 1 FROM facets f WHERE f.source = e.source"    \
	" AND f.provider = e.provider AND f.kind = e.kind AND f.event_type IS e.event_type"        \
	" AND f.subtype IS e.subtype);"                                                            \
	"UPDATE events SET facet = (SELECT f.id FROM facets f WHERE f.source = events.source"      \
	" AND f.provider = events.provider AND f.kind = events.kind"                               \
	" AND f.event_type IS events.event_type AND f.subtype IS events.subtype)"                  \
	" WHERE facet IS NULL;"

/* Rows straight in SQL, then the store opened again with the profile hook on its
 * connections (read_steps). */
static void
fill_and_watch(struct fixture *f, const char *sql)
{
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };
	size_t len = strlen(sql) + sizeof(";" FACETS_OF_NEW_ROWS);
	char *both = malloc(len);

	assert_non_null(both);
	snprintf(both, len, "%s;" FACETS_OF_NEW_ROWS, sql);
	fill_on(f->path, both);
	free(both);
	hr_store_close(f->store);
	assert_int_equal(sqlite3_auto_extension((void (*)(void))profile_connection), SQLITE_OK);
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
}

/*
 * Two rooms, "small" (events 1-30) and "big" (31-3030), every 101st event in
 * neither but in meeting m-40, which big's event 40 names (so they are big's),
 * and recording r-2 named by small's event 2 and by 3030 (so 3030 is small's
 * too). Big's other events are in meetings m-b0, m-b1 and m-b2, as a reused
 * Daily room's are. received_at is the seq; event 3000 happened last
 * (occurred_at 5000).
 */
static void
fill_rooms(struct fixture *f)
{
	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3030)"
	    " INSERT INTO events (id, received_at, occurred_at, source, provider, kind,"
	    " headers, body, room, meeting, recording) SELECT 'evt_' || i, i,"
	    " CASE WHEN i = 3000 THEN 5000 END, 's', 'agenthuman', 'agenthuman.session',"
	    " '{}', X'', CASE WHEN i % 101 = 0 THEN NULL"
	    " WHEN i <= 30 THEN 'small' ELSE 'big' END,"
	    " CASE WHEN i = 1 OR i = 40 THEN 'm-' || i WHEN i % 101 = 0 THEN 'm-40'"
	    " WHEN i > 30 THEN 'm-b' || (i % 3) END,"
	    " CASE WHEN i = 2 THEN 'r-2' WHEN i = 3030 THEN 'r-2' END FROM n;"
	    "INSERT INTO sessions (scope, key, provider, status, first_seen, last_seen,"
	    " event_count) VALUES ('room', 'big', 'daily', 1, 0, 0, 1),"
	    " ('room', 'small', 'daily', 1, 0, 0, 1);");
}

/*
 * Regression: a page of a room's events gathered and sorted the seqs of the
 * whole room (the room's conditions as one OR: 13.6 ms for a room of 55k
 * events in 1M, bench/scale). Now a page's worth of each condition's index,
 * counted in SQLite's VM steps: a room of 3,000 events costs what a room of
 * 30 does, and pages through the same events in the same order.
 */
static void
a_room_page_reads_a_page_not_the_room(void **state)
{
	struct fixture *f = *state;
	char ids[512];
	long long small, big;
	int64_t next = 0;

	fill_rooms(f);
	small = list_room(f, "small", 0, ids, &next);
	assert_string_equal(ids,
	    "evt_3030 evt_30 evt_29 evt_28 evt_27 evt_26 evt_25 evt_24 "
	    "evt_23 evt_22 ");
	big = list_room(f, "big", 0, ids, &next);
	assert_string_equal(ids,
	    "evt_3030 evt_3029 evt_3028 evt_3027 evt_3026 evt_3025 evt_3024 "
	    "evt_3023 evt_3022 evt_3021 ");
	assert_true(small > 0);
	assert_true(big < 2 * small);
	assert_true(big < 2000); /* 902; 45,301 as the OR, which walked the room */
	/* A page in the middle, from its cursor: the room's rows and m-40's, in seq order. */
	big = list_room(f, "big", 1516, ids, &next);
	assert_string_equal(ids,
	    "evt_1515 evt_1514 evt_1513 evt_1512 evt_1511 evt_1510 evt_1509 "
	    "evt_1508 evt_1507 evt_1506 ");
	assert_true(big < 2 * small && big < 2000);
	(void)list_room(f, "big", 1011, ids, &next);
	assert_string_equal(ids,
	    "evt_1010 evt_1009 evt_1008 evt_1007 evt_1006 evt_1005 evt_1004 "
	    "evt_1003 evt_1002 evt_1001 ");
	sqlite3_reset_auto_extension();
}

static int any_session(const struct hr_session_row *r, void *arg);

/* A room's timeline of at most 10 events: its ids in `ids`, its VM steps returned. */
static long long
room_timeline(struct fixture *f, const char *ref, char *ids, bool *truncated)
{
	struct hr_error err = { .field = "" };

	ids[0] = '\0';
	read_steps = -1;
	assert_int_equal(
	    hr_store_get_session(f->store, ref, any_session, collect_id, ids, 10, truncated, &err),
	    HR_OK);
	return read_steps;
}

/*
 * Regression: a room's timeline (its newest events by their own time) read
 * and sorted every event of the room (180 ms for a room of 55k events in 1M,
 * bench/scale): no index held that order. Now the room's part reads its
 * newest from events_room_time, and a room of 3,000 events costs what one of
 * 30 does.
 */
static void
a_room_timeline_reads_its_newest_not_the_room(void **state)
{
	struct fixture *f = *state;
	char ids[512];
	long long small, big;
	bool truncated = false;

	fill_rooms(f);
	small = room_timeline(f, "room:small", ids, &truncated);
	assert_string_equal(ids,
	    "evt_22 evt_23 evt_24 evt_25 evt_26 evt_27 evt_28 evt_29 "
	    "evt_30 evt_3030 ");
	assert_true(truncated);
	/* 3000 happened last; 3030 (m-40) is the big room's too */
	big = room_timeline(f, "room:big", ids, &truncated);
	assert_string_equal(ids,
	    "evt_3022 evt_3023 evt_3024 evt_3025 evt_3026 evt_3027 evt_3028 "
	    "evt_3029 evt_3030 evt_3000 ");
	assert_true(truncated);
	assert_true(small > 0);
	assert_true(big < 2 * small);
	assert_true(big < 6000); /* 3,021; walking 3,000 rows costs over 9,000 */
	sqlite3_reset_auto_extension();
}

/*
 * A start that stopped between versions 13 and 14 left events without their
 * facet (the fill goes 50,000 rows a transaction): the next start gives the
 * rest theirs, across more than one transaction, then makes the index.
 */
static void
a_facet_fill_cut_short_goes_on_at_the_next_start(void **state)
{
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };
	char names[2048], ids[256];

	hr_store_close(f->store);
	f->store = NULL;
	fill_on(f->path,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120000)"
	    " INSERT INTO events (id, received_at, source, provider, kind, headers, body)"
	    " SELECT 'evt_' || i, i, CASE WHEN i % 40000 THEN 's' ELSE 'rare' END, 'tavus',"
	    " 'tavus.unknown', '{}', X'' FROM n;" FACETS_OF_NEW_ROWS
	    "DROP INDEX events_facet; DROP INDEX events_pruned;"
	    "UPDATE events SET facet = NULL WHERE seq > 30000;" UNDO_STATUS_AT
	    "PRAGMA user_version=13;");
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	assert_int_equal(
	    schema_of(f->path, names, sizeof(names)), hr_store_sqlite_schema_version());
	assert_string_equal(names, needed_indexes);
	assert_int_equal(count_of(f->path, "SELECT count(*) FROM events WHERE facet IS NULL"), 0);
	list_source(f, "rare", ids);
	assert_string_equal(ids, "evt_120000 evt_80000 evt_40000 ");
}

/*
 * More facets match than a union takes (HR_FACET_PARTS): each row's facet is
 * checked on a walk of the seq order instead, and pages and the stream see
 * the same events as the union would, in order. Source s has 40 event types.
 */
static void
a_filter_matching_many_facets_pages_through_all_its_events(void **state)
{
	struct fixture *f = *state;
	struct hr_event_filter flt = { .limit = 30 };
	struct hr_error err = { .field = "" };
	char ids[4096], want[4096] = "", page[1024];
	int64_t next = 0;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)"
	    " INSERT INTO events (id, received_at, source, provider, kind, event_type, headers,"
	    " body) SELECT 'evt_' || i, i, CASE WHEN i % 2 THEN 's' ELSE 't' END, 'tavus',"
	    " 'tavus.unknown', 'e' || (i % 80), '{}', X'' FROM n");
	assert_true(
	    count_of(f->path, "SELECT count(*) FROM facets WHERE source = 's'") > HR_FACET_PARTS);
	for (int i = 199; i > 0; i -= 2) {
		snprintf(page, sizeof(page), "evt_%d ", i);
		strcat(want, page);
	}
	flt.source.v[0] = "s";
	flt.source.n = 1;
	ids[0] = '\0';
	do {
		flt.before_seq = next;
		(void)list_ids(f, &flt, page, &next);
		strcat(ids, page);
	} while (next != 0);
	assert_string_equal(ids, want);

	/* Two of s's event types and one of t's: a union of two facets. */
	flt.before_seq = 0;
	flt.event_type.v[0] = "e3";
	flt.event_type.v[1] = "e5";
	flt.event_type.v[2] = "e4";
	flt.event_type.n = 3;
	(void)list_ids(f, &flt, ids, NULL);
	assert_string_equal(ids, "evt_165 evt_163 evt_85 evt_83 evt_5 evt_3 ");
	ids[0] = '\0';
	flt.limit = 5;
	assert_int_equal(hr_store_events_after(f->store, &flt, 5, collect_id, ids, &err), HR_OK);
	assert_string_equal(ids, "evt_83 evt_85 evt_163 evt_165 ");
	sqlite3_reset_auto_extension();
}

#define TEXT_OF_(n) #n
#define TEXT_OF(n)  TEXT_OF_(n)

/*
 * The largest union, HR_FACET_PARTS facets, with every bound a part repeats
 * (since, until, cursor) and the largest page: it fits one query (the clause
 * and its binds have room for it), and reads exactly the events inside them.
 */
static void
the_largest_facet_union_fits_one_query(void **state)
{
	struct fixture *f = *state;
	struct hr_event_filter flt = { .limit = 500, .since_us = 11, .until_us = 90 };
	char ids[4096], want[4096] = "", one[32];
	int64_t next = 0;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)"
	    " INSERT INTO events (id, received_at, source, provider, kind, event_type, headers,"
	    " body) SELECT 'evt_' || i, i, 'u', 'tavus', 'tavus.unknown',"
	    " 'e' || (i % " TEXT_OF(HR_FACET_PARTS) "), '{}', X'' FROM n");
	assert_int_equal(count_of(f->path, "SELECT count(*) FROM facets"), HR_FACET_PARTS);
	flt.source.v[0] = "u";
	flt.source.n = 1;
	flt.before_seq = 80;
	for (int i = 79; i >= 11; i--) {
		snprintf(one, sizeof(one), "evt_%d ", i);
		strcat(want, one);
	}
	(void)list_ids(f, &flt, ids, &next);
	assert_string_equal(ids, want);
	assert_int_equal(next, 0);
	sqlite3_reset_auto_extension();
}

/* A listing of limit 10 by session reference: its ids in `ids`, its VM steps returned. */
static long long
list_session(struct fixture *f, const char *ref, char *ids)
{
	struct hr_event_filter flt = { .session = ref, .limit = 10 };

	return list_ids(f, &flt, ids, NULL);
}

/*
 * The session filter reads the session's events through its id (schema 13
 * dropped the index of session keys), and a room's session through the
 * room's index, newest first: conversation c-1 has 3 events among 6,000, room
 * "big" 3,000 room-scoped ones (a bot's conversation in it, c-2, is not its).
 */
static void
the_session_filter_reads_the_session_not_the_table(void **state)
{
	struct fixture *f = *state;
	char ids[512];

	fill_and_watch(f,
	    "INSERT INTO sessions (id, scope, key, provider, status, first_seen, last_seen,"
	    " event_count) VALUES (1, 'conversation', 'c-1', 'tavus', 1, 1, 1, 3),"
	    " (2, 'room', 'big', 'pailflow', 1, 1, 1, 3000),"
	    " (3, 'conversation', 'c-2', 'tavus', 1, 1, 1, 3000);"
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000)"
	    " INSERT INTO events (id, received_at, source, provider, kind, scope, session_key,"
	    " session_id, room, headers, body) SELECT 'evt_' || i, i, 's', 'tavus', 'k',"
	    " CASE WHEN i IN (7, 2000, 5999) THEN 'conversation' WHEN i % 2 THEN 'room'"
	    " ELSE 'conversation' END,"
	    " CASE WHEN i IN (7, 2000, 5999) THEN 'c-1' WHEN i % 2 THEN 'big' ELSE 'c-2' END,"
	    " CASE WHEN i IN (7, 2000, 5999) THEN 1 WHEN i % 2 THEN 2 ELSE 3 END,"
	    " CASE WHEN i IN (7, 2000, 5999) THEN NULL ELSE 'big' END, '{}', X'' FROM n");

	/* 6,000 and more steps walking the table, 12,000 sorting the room's */
	assert_true(list_session(f, "c-1", ids) < 1000);
	assert_string_equal(ids, "evt_5999 evt_2000 evt_7 ");
	assert_true(list_session(f, "conversation:c-1", ids) < 1000);
	assert_string_equal(ids, "evt_5999 evt_2000 evt_7 ");
	assert_true(list_session(f, "room:big", ids) < 1000);
	assert_string_equal(ids,
	    "evt_5997 evt_5995 evt_5993 evt_5991 evt_5989 evt_5987 evt_5985 "
	    "evt_5983 evt_5981 evt_5979 ");
	list_session(f, "big", ids); /* a bare key: every scope's session of that name */
	assert_string_equal(ids,
	    "evt_5997 evt_5995 evt_5993 evt_5991 evt_5989 evt_5987 evt_5985 "
	    "evt_5983 evt_5981 evt_5979 ");
	assert_true(list_session(f, "room:c-1", ids) < 1000);
	assert_string_equal(ids, "");
	sqlite3_reset_auto_extension();
}

/* A listing of limit 10 by subtype (and kind): its ids in `ids`, its VM steps returned. */
static long long
list_subtype(struct fixture *f, const char *subtype, uint64_t kinds, char *ids)
{
	struct hr_event_filter flt = { .kinds = kinds, .limit = 10 };

	flt.subtype.v[0] = subtype;
	flt.subtype.n = 1;
	return list_ids(f, &flt, ids, NULL);
}

/*
 * Regression: the subtype filter walked the whole table newest first when few
 * events matched (475 ms at 1M for a subtype no event has). It had its own
 * index from schema 10; since 13 it reads the walks of the facets it matches
 * (events_facet): 3,000 "started" sessions and 10 video errors, and a kind
 * with a subtype it never has matches no facet and reads no event.
 */
static void
the_subtype_filter_reads_an_index_not_the_table(void **state)
{
	struct fixture *f = *state;
	uint64_t video = UINT64_C(1) << HR_KIND_TAVUS_VIDEO;
	char ids[512];

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3010)"
	    " INSERT INTO events (id, received_at, source, provider, kind, subtype, headers,"
	    " body) SELECT 'evt_' || i, i, 's', 'tavus', CASE WHEN i % 300 = 0 THEN"
	    " 'tavus.video' ELSE 'agenthuman.session' END, CASE WHEN i % 300 = 0 THEN"
	    " 'error' ELSE 'started' END, '{}', X'' FROM n");

	/* no read, 370 steps, no read; 9,047 and 9,367 walking the table */
	assert_true(list_subtype(f, "none-has-it", 0, ids) < 1000);
	assert_string_equal(ids, "");
	assert_true(list_subtype(f, "error", 0, ids) < 1000);
	assert_string_equal(ids,
	    "evt_3000 evt_2700 evt_2400 evt_2100 evt_1800 evt_1500 "
	    "evt_1200 evt_900 evt_600 evt_300 ");
	assert_true(list_subtype(f, "started", video, ids) < 1000);
	assert_string_equal(ids, "");
	sqlite3_reset_auto_extension();
}

static int
collect_due(const struct hr_due_delivery *d, void *arg)
{
	char *ids = arg;
	size_t used = strlen(ids);

	snprintf(ids + used, 1024 - used, "%lld ", (long long)d->id);
	return HR_OK;
}

/* One poll of destination "o" at `now`, at most `limit`, from the first key: its ids
 * in `ids`; read_steps, read_pages and read_runs are then the poll's. */
static void
watched_poll(struct fixture *f, int64_t now, bool ordered, unsigned limit, char *ids)
{
	struct hr_error err = { .field = "" };

	ids[0] = '\0';
	read_steps = read_pages = read_runs = -1;
	watched = " FROM deliveries d";
	assert_int_equal(hr_store_due_deliveries(f->store, "o", now, ordered, limit, NULL,
	                     collect_due, ids, NULL, &err),
	    HR_OK);
	watched = " FROM events";
}

/*
 * Regression: an ordered destination's poll walked its due rows, testing each
 * for an older pending one of its key. After an outage the heads of the keys
 * were retried later than the rows behind them were due, so every poll walked
 * the whole backlog (100,000 pending: 80-110 ms a poll). 20,000 pending in 100
 * keys, the heads of the odd keys in backoff, those of the even keys due after
 * every row behind them, and ten rows without a key: the poll returns the ten,
 * then the fifty due heads, longest due first, and reads the heads, not the
 * backlog.
 */
static void
an_ordered_poll_reads_the_heads_not_the_backlog(void **state)
{
	struct fixture *f = *state;
	char ids[1024] = "", want[1024] = "";
	long long steps;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20010)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', x'7b7d' FROM n;"
	    "INSERT INTO deliveries (id, event_seq, destination, order_key, status, attempts,"
	    " created_at, updated_at, next_attempt_at) SELECT seq, seq, 'o',"
	    " CASE WHEN seq <= 20000 THEN 'c:k' || (seq % 100) END, 0,"
	    " CASE WHEN seq <= 100 THEN 1 ELSE 0 END, seq, seq,"
	    " CASE WHEN seq > 20000 THEN 25000 + seq WHEN seq > 100 THEN seq"
	    " WHEN seq % 2 = 1 THEN 1000000000000000 ELSE 50000 + seq END FROM events;");
	for (int i = 20001; i <= 20010; i++)
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%d ", i);
	for (int i = 2; i <= 100; i += 2)
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%d ", i);
	watched_poll(f, INT64_C(1000000000000), true, 64, ids);
	steps = read_steps;
	sqlite3_reset_auto_extension();
	assert_string_equal(ids, want);
	/* 23,186 steps; walking the due rows, 6,444,381 */
	assert_true(steps > 0 && steps < 50000);
}

/*
 * Regression: an ordered poll joined every candidate (up to 1,000 sessions'
 * heads and more) to its event before sorting them by due time, so each poll
 * read and sorted every candidate's body to take a few: a third of the poll
 * with 1 KiB bodies. 300 sessions, each with one due delivery of a 32 KiB body
 * (overflow pages): a poll of 3 reads the bodies of the 3 it takes, counted
 * in the pages it asks SQLite's page cache for.
 */
static void
an_ordered_poll_reads_the_bodies_of_the_rows_it_takes_alone(void **state)
{
	struct fixture *f = *state;
	char ids[1024] = "";
	long long pages;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', zeroblob(32768) FROM n;"
	    "INSERT INTO deliveries (id, event_seq, destination, order_key, status, attempts,"
	    " created_at, updated_at, next_attempt_at) SELECT seq, seq, 'o', 'c:k' || seq, 0, 0,"
	    " seq, seq, seq FROM events;");
	watched_poll(f, 10000, true, 3, ids);
	pages = read_pages;
	sqlite3_reset_auto_extension();
	assert_string_equal(ids, "1 2 3 ");
	/* 1,433 page reads (the walk over 300 keys is most of them); joined before
	 * the sort, 3,846 (eight overflow pages for each body) */
	assert_true(pages > 0 && pages < 2500);
}

static int64_t count_rows(struct fixture *, const char *sql);

/*
 * The forwarder's polls run after every commit, and preparing their statements
 * took longer than running them (45 µs against 5 for an unordered destination's
 * due rows, 586 against 183 for an ordered one's): each reader keeps them
 * prepared. Two polls of each kind run one statement twice, and between polls
 * it holds no read transaction: a TRUNCATE checkpoint still empties the WAL.
 */
static void
the_polls_statements_are_prepared_once_and_hold_nothing_between_polls(void **state)
{
	struct fixture *f = *state;
	char ids[1024] = "";
	int64_t next = 0;

	fill_and_watch(f,
	    "INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " VALUES (1, 'evt_1', 1, 's', 'tavus', 'k', '{}', x'7b7d');"
	    "INSERT INTO deliveries (id, event_seq, destination, order_key, status, attempts,"
	    " created_at, updated_at, next_attempt_at) VALUES (1, 1, 'o', 'c:k', 0, 0, 1, 1, 5);");
	for (int ordered = 0; ordered <= 1; ordered++) {
		for (int poll = 1; poll <= 2; poll++) {
			watched_poll(f, 10, ordered, 4, ids);
			assert_string_equal(ids, "1 ");
			assert_int_equal(read_runs, poll);
			assert_int_equal(hr_store_next_due(f->store, "o", &next), HR_OK);
			assert_int_equal(
			    next, 0); /* due already (at 5): a time past sets no timer */
			/* busy 0: a TRUNCATE checkpoint emptied the WAL */
			assert_int_equal(count_rows(f, "PRAGMA wal_checkpoint(TRUNCATE)"), 0);
		}
	}
	sqlite3_reset_auto_extension();
}

/* A poll says when the next row falls due, as hr_store_next_due() would after
 * it (a store that claims answers it with the claim, tests/pg): the next due
 * time still ahead of the poll's `now`, and with nothing ahead it is 0. The rows
 * it handed out are still pending here, due already: as the earliest, they hid
 * the next retry from the timer, which then waited for the idle poll (a
 * forwarding review: retries a second late while an attempt was out). */
static void
a_poll_answers_when_the_next_row_falls_due(void **state)
{
	struct fixture *f = *state;
	struct hr_error err = { .field = "" };
	char ids[1024] = "";
	int64_t next = -1;

	fill_and_watch(f,
	    "INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " VALUES (1, 'evt_1', 1, 's', 'tavus', 'k', '{}', x'7b7d');"
	    "INSERT INTO deliveries (id, event_seq, destination, status, attempts, created_at,"
	    " updated_at, next_attempt_at) VALUES (1, 1, 'o', 0, 0, 1, 1, 50),"
	    " (2, 1, 'o', 0, 0, 1, 1, 7), (3, 1, 'p', 0, 0, 1, 1, 3);");
	for (int ordered = 0; ordered <= 1; ordered++) {
		ids[0] = '\0';
		next = -1;
		assert_int_equal(hr_store_due_deliveries(f->store, "o", 10, ordered, 4, NULL,
		                     collect_due, ids, &next, &err),
		    HR_OK);
		assert_string_equal(ids, "2 ");
		assert_int_equal(next, 50); /* not 2's 7: it is in flight, due already */
	}
	assert_int_equal(hr_store_due_deliveries(
	                     f->store, "none", 10, false, 4, NULL, collect_due, ids, &next, &err),
	    HR_OK);
	assert_int_equal(next, 0);
	sqlite3_reset_auto_extension();
}

/* A first poll reads the heads of the first 1,000 keys: a key past them whose delivery
 * is the oldest due still goes first (its key is one of the oldest due rows'). */
static void
an_ordered_poll_takes_the_oldest_past_its_first_thousand_keys(void **state)
{
	struct fixture *f = *state;
	struct hr_error err = { .field = "" };
	char ids[1024] = "";

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1100)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', x'7b7d' FROM n;"
	    "INSERT INTO deliveries (id, event_seq, destination, order_key, status, attempts,"
	    " created_at, updated_at, next_attempt_at) SELECT seq, seq, 'o',"
	    " printf('c:k%04d', seq), 0, 0, seq, seq, 5000 - seq FROM events;");
	sqlite3_reset_auto_extension();
	assert_int_equal(hr_store_due_deliveries(
	                     f->store, "o", 10000, true, 3, NULL, collect_due, ids, NULL, &err),
	    HR_OK);
	assert_string_equal(ids, "1100 1099 1098 ");
}

/*
 * Regression: the deliveries without a key of an ordered destination (events
 * without a session, or every row stored before `ordered` was turned on) were
 * read whole and sorted by due time for each poll: 100,000 of them drained at
 * 1,323 a second, against 24,755 unordered. Now the first 1,000 due in
 * deliveries_order's order (by id), as PostgreSQL's claim takes them, and the
 * 64 oldest due rows themselves: 20,000 due, a poll of 3 reads about 1,064.
 */
static void
an_ordered_poll_reads_a_window_of_the_rows_without_a_key(void **state)
{
	struct fixture *f = *state;
	char ids[1024] = "";
	long long steps;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', x'7b7d' FROM n;"
	    "INSERT INTO deliveries (id, event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, seq, 'o', 0, seq, seq, 30000 - seq FROM events;");
	watched_poll(f, 100000, true, 3, ids);
	steps = read_steps;
	sqlite3_reset_auto_extension();
	/* the longest due: each of the 64 oldest due rows is a candidate (its own head) */
	assert_string_equal(ids, "20000 19999 19998 ");
	/* 46,062 steps; sorting every row without a key, 415,190 */
	assert_true(steps > 0 && steps < 100000);
}

/* One ordered poll of `f`'s destination "o" at 10,000, limit 3, from `window`. */
static void
poll_window(struct fixture *f, char **window, char *ids)
{
	struct hr_error err = { .field = "" };

	ids[0] = '\0';
	assert_int_equal(hr_store_due_deliveries(
	                     f->store, "o", 10000, true, 3, window, collect_due, ids, NULL, &err),
	    HR_OK);
}

/*
 * Regression: each poll walked the heads of the first 1,000 keys. With those
 * 1,000 sessions all waiting for a retry of their first delivery (a
 * destination failing for them, not for the others), and the rows behind
 * them the oldest due, a later session was never seen: its delivery waited
 * for their retries (hours), though the destination took it. Polls now walk
 * the keys in turn: the first sees the 1,000 waiting, the second the one after
 * them, and the third starts over.
 */
static void
ordered_polls_see_the_keys_past_a_thousand_waiting_ones(void **state)
{
	struct fixture *f = *state;
	char ids[1024], *window = NULL;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2001)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', x'7b7d' FROM n;"
	    /* 1..1000: the heads of k0000..k0999, retried far ahead; 1001..2000 behind them,
	     * due at 1..1000; 2001: the one delivery of k1000, due at 5000 */
	    "INSERT INTO deliveries (id, event_seq, destination, order_key, status, attempts,"
	    " created_at, updated_at, next_attempt_at) SELECT seq, seq, 'o',"
	    " printf('c:k%04d', CASE WHEN seq > 2000 THEN 1000 ELSE (seq - 1) % 1000 END), 0,"
	    " seq <= 1000, seq, seq, CASE WHEN seq > 2000 THEN 5000 WHEN seq > 1000 THEN seq - 1000"
	    " ELSE 1000000000 END FROM events;");
	sqlite3_reset_auto_extension();
	poll_window(f, &window, ids);
	assert_string_equal(ids, "");
	assert_non_null(window);
	assert_string_equal(window, "c:k0999");
	poll_window(f, &window, ids);
	assert_string_equal(ids, "2001 ");
	assert_null(window); /* the walk reached the last key */
	poll_window(f, &window, ids);
	assert_string_equal(ids, "");
	assert_string_equal(window, "c:k0999");
	free(window);
	/* Without a window every poll is the first. */
	poll_window(f, NULL, ids);
	poll_window(f, NULL, ids);
	assert_string_equal(ids, "");
}

/* A destination's oldest pending delivery is the first created: one row read,
 * not every pending row of the destination (each /metrics scrape and each GET
 * of the destination asks). 2,000 delivered, then 1,000 pending. */
static void
the_oldest_pending_delivery_is_read_not_looked_for(void **state)
{
	struct fixture *f = *state;
	struct hr_error err = { .field = "" };
	struct hr_destination_row row;
	long long steps;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', x'7b7d' FROM n;"
	    "INSERT INTO deliveries (id, event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, seq, 'o', CASE WHEN seq > 2000 THEN 0 ELSE 1 END,"
	    " 100 + seq, seq, seq"
	    " FROM events;");
	watched = " FROM destinations WHERE name";
	read_steps = -1;
	assert_int_equal(hr_store_destination(f->store, "o", &row, NULL, 0, &err), HR_OK);
	steps = read_steps;
	watched = " FROM events";
	sqlite3_reset_auto_extension();
	assert_int_equal(row.oldest_pending_us, 2101);
	/* 114 steps; the minimum over the pending rows, 6,110 */
	assert_true(steps > 0 && steps < 1000);
}

static int
count_session(const struct hr_session_row *r, void *arg)
{
	assert_string_equal(r->scope, "conversation");
	assert_string_equal(r->key, "c-1");
	(*(int *)arg)++;
	return HR_OK;
}

static int
count_event(const struct hr_event_row *r, void *arg)
{
	(void)r;
	(*(int *)arg) += 100;
	return HR_OK;
}

/* Without sessions_key, a bare key still finds its session (scope IN every scope). */
static void
a_session_is_found_by_its_bare_key(void **state)
{
	struct fixture *f = *state;
	struct hr_error err = { .field = "" };
	int n = g.done, seen = 0;

	f->ev.sum.scope = HR_SCOPE_CONVERSATION;
	f->ev.sum.session_key = "c-1";
	(void)put(f, "evt_s1", NULL, 0, &n);
	(void)put(f, "evt_s2", NULL, 1, &n);
	f->ev.sum.session_key = NULL;
	assert_int_equal(hr_store_get_session(
	                     f->store, "c-1", count_session, count_event, &seen, 10, NULL, &err),
	    HR_OK);
	assert_int_equal(seen, 201);
	seen = 0;
	assert_int_equal(hr_store_get_session(f->store, "conversation:c-1", count_session,
	                     count_event, &seen, 10, NULL, &err),
	    HR_OK);
	assert_int_equal(seen, 201);
	assert_int_equal(hr_store_get_session(
	                     f->store, "c-2", count_session, count_event, &seen, 10, NULL, &err),
	    HR_ENOTFOUND);
}

static int
note_scope(const struct hr_session_row *r, void *arg)
{
	snprintf(arg, 32, "%s", r->scope);
	return HR_OK;
}

/* Two scopes' sessions of one key seen at the same instant: the bare key names
 * the one created last, on every read (a review: the pick was the plan's). */
static void
a_bare_key_tie_goes_to_the_newest_session(void **state)
{
	struct fixture *f = *state;
	struct hr_error err = { .field = "" };
	char scope[32] = "";
	int n = g.done;

	f->ev.sum.session_key = "tie-1";
	f->ev.sum.scope = HR_SCOPE_CONVERSATION;
	(void)put(f, "evt_t1", NULL, 0, &n);
	f->ev.sum.scope = HR_SCOPE_VIDEO;
	(void)put(f, "evt_t2", NULL, 0, &n);
	f->ev.sum.session_key = NULL;
	f->ev.sum.scope = HR_SCOPE_NONE;
	assert_int_equal(
	    hr_store_get_session(f->store, "tie-1", note_scope, count_event, &scope, 0, NULL, &err),
	    HR_OK);
	assert_string_equal(scope, "video");
}

static int
collect_id(const struct hr_event_row *r, void *arg)
{
	char *out = arg;

	strcat(out, r->id);
	strcat(out, " ");
	return HR_OK;
}

static int
any_session(const struct hr_session_row *r, void *arg)
{
	(void)r;
	(void)arg;
	return HR_OK;
}

/* Regression: a timeline longer than its cap showed its oldest events (a Daily
 * room reused for months showed its first meetings, never its latest), and
 * nothing said events were left out. Now the newest, in time order, and told. */
static void
a_long_timeline_shows_its_newest_events_and_says_so(void **state)
{
	static const int at[] = { 23, 21, 25, 22, 24 }; /* time order: t2 t4 t1 t5 t3 */
	struct fixture *f = *state;
	struct hr_error err = { .field = "" };
	char ids[256];
	bool truncated;
	int n = g.done;

	f->ev.sum.scope = HR_SCOPE_CONVERSATION;
	f->ev.sum.session_key = "c-tl";
	for (int i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "evt_t%d", i + 1);
		(void)put(f, id, NULL, at[i], &n);
	}
	f->ev.sum.session_key = NULL;
	ids[0] = '\0';
	assert_int_equal(hr_store_get_session(f->store, "conversation:c-tl", any_session,
	                     collect_id, ids, 3, &truncated, &err),
	    HR_OK);
	assert_string_equal(ids, "evt_t1 evt_t5 evt_t3 ");
	assert_true(truncated);
	for (unsigned max = 5; max <= 6; max++) {
		ids[0] = '\0';
		assert_int_equal(hr_store_get_session(f->store, "conversation:c-tl", any_session,
		                     collect_id, ids, max, &truncated, &err),
		    HR_OK);
		assert_string_equal(ids, "evt_t2 evt_t4 evt_t1 evt_t5 evt_t3 ");
		assert_false(truncated);
	}
}

/* Ids draw their random part from a per-thread pool of 64 ids' worth: past
 * several refills, and on two threads at once, every id is new and 26 digits. */
#define IDS 1000

static void *
make_ids(void *arg)
{
	char(*ids)[40] = arg;

	for (int i = 0; i < IDS; i++)
		hr_store_new_id("evt", ids[i], sizeof(ids[i]));
	return NULL;
}

static int
cmp_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
ids_are_unique_across_refills_and_threads(void **state)
{
	static char ids[2 * IDS][40];
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, make_ids, ids[IDS]), 0);
	make_ids(ids);
	assert_int_equal(pthread_join(t, NULL), 0);
	for (int i = 0; i < 2 * IDS; i++) {
		assert_int_equal(strlen(ids[i]), 4 + 26);
		assert_int_equal(strncmp(ids[i], "evt_", 4), 0);
	}
	qsort(ids, 2 * IDS, sizeof(ids[0]), cmp_id);
	for (int i = 1; i < 2 * IDS; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
}

static int
cache_pages_of(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int kib;

	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA cache_size", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	kib = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return kib;
}

/* [storage] cache_size is the writer's page cache, in KiB as SQLite counts a
 * negative cache_size; 0 (no option given to the store) means 16 MiB. */
static void
the_writer_cache_is_the_configured_size(void **state)
{
	struct fixture *f = *state;
	struct hr_error err = { 0 };
	sqlite3 *db = NULL;

	assert_int_equal(hr_sqlite_connect(f->path, true, &db, &err), HR_OK);
	assert_int_equal(hr_sqlite_set_cache(db, 3u << 20, &err), HR_OK);
	assert_int_equal(cache_pages_of(db), -3072);
	assert_int_equal(hr_sqlite_set_cache(db, 0, &err), HR_OK);
	assert_int_equal(cache_pages_of(db), -16384);
	sqlite3_close(db);
}

/*
 * A commit hook being replaced: the writer (or a node's notice) read the hook
 * under the queue's lock and called it after letting go, so the forwarder's
 * stop could clear it, join its thread and free what the hook was about to
 * wake. Now the call holds the hook's lock: once hr_store_set_commit_hook()
 * returns, the old hook has finished.
 */
struct slow_hook {
	atomic_int running, calls;
};

static void
slow_hook(void *arg)
{
	struct slow_hook *h = arg;

	atomic_store(&h->running, 1);
	atomic_fetch_add(&h->calls, 1);
	usleep(200 * 1000);
	atomic_store(&h->running, 0);
}

static void *
remote_commit(void *store)
{
	hr_store_remote_commit(store, false, true);
	return NULL;
}

static void
a_replaced_commit_hook_is_not_running_once_the_call_returns(void **state)
{
	struct fixture *f = *state;
	struct slow_hook h = { 0 };
	pthread_t th;

	hr_store_set_commit_hook(f->store, slow_hook, &h);
	assert_int_equal(pthread_create(&th, NULL, remote_commit, f->store), 0);
	while (atomic_load(&h.calls) == 0)
		usleep(1000);
	hr_store_set_commit_hook(f->store, NULL, NULL);
	assert_int_equal(atomic_load(&h.running), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	hr_store_remote_commit(f->store, false, true); /* no hook now */
	assert_int_equal(atomic_load(&h.calls), 1);
}

/* Rows of `sql` (one integer column) on a connection of the test's own. */
static int64_t
count_rows(struct fixture *f, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	/* Read-write, as the store's readers: a read-only connection maps no shared
	 * WAL index and reads the WAL file on its own, racing the writer. */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 10000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		fail_msg("%s: %s (%d)", sql, sqlite3_errmsg(db), sqlite3_extended_errcode(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* A database of version 19 (no high-water marks: schema 20 undone) keeps, once
 * migrated, the highest rejection seq and session id it held: the rows stored
 * after those are deleted take new ones, not theirs again. */
static void
version_19_counts_ids_on_from_the_highest_it_held(void **state)
{
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };

	hr_store_close(f->store);
	f->store = NULL;
	exec_on(f->path,
	    "INSERT INTO rejections (seq, id, received_at, source, http_status, problem, headers,"
	    " body) VALUES (7, 'rej_old', 1, 's', 422, 'p', '{}', '');"
	    "INSERT INTO sessions (id, scope, key, provider, status, first_seen, last_seen,"
	    " event_count) VALUES (9, 'conversation', 'old', 'tavus', 1, 1, 1, 1);"
	    "DROP TRIGGER rejections_seq; DROP TRIGGER sessions_id; DELETE FROM store_state;"
	    "PRAGMA user_version=19;");
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	exec_on(f->path,
	    "DELETE FROM rejections; DELETE FROM sessions;"
	    "INSERT INTO rejections (seq, id, received_at, source, http_status, problem, headers,"
	    " body) VALUES (" HR_SQL_NEXT_REJECTION ", 'rej_new', 2, 's', 422, 'p', '{}', '');"
	    "INSERT INTO sessions (id, scope, key, provider, status, first_seen, last_seen,"
	    " event_count) VALUES (" HR_SQL_NEXT_SESSION ", 'conversation', 'new', 'tavus', 1, 2,"
	    " 2, 1);");
	assert_int_equal(count_rows(f, "SELECT seq FROM rejections WHERE id = 'rej_new'"), 8);
	assert_int_equal(count_rows(f, "SELECT id FROM sessions WHERE key = 'new'"), 10);
}

/* Keys as an older hookrelay stored them (docs/events.md "Keys"): 3,000 bytes;
 * 600 characters of two bytes each, past the bound in bytes only; 1,024 bytes,
 * at the bound, kept. */
#define KEY_LONG "replace(hex(zeroblob(1500)), '0', 'k')"
#define KEY_WIDE "replace(hex(zeroblob(300)), '0', '\xc3\xa9')"
#define KEY_EDGE "replace(hex(zeroblob(512)), '0', 'e')"

/* A database of version 20 holding keys past 1,024 bytes (stored before the
 * bound) gets, once migrated, what a new event with them gets: no session,
 * scope, event type or room from them, a facet without them, no order_key;
 * their sessions, query rows and room links go. PostgreSQL's indexes refused
 * them: `hookrelay migrate` failed on such a file. */
static void
version_20_keys_past_the_bound_name_nothing(void **state)
{
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };

	hr_store_close(f->store);
	f->store = NULL;
	exec_on(f->path,
	    "INSERT INTO facets (id, source, provider, kind, event_type, subtype) VALUES"
	    " (901, 's', 'tavus', 'k', " KEY_LONG ", NULL), (902, 's', 'tavus', 'k', 'short',"
	    " NULL), (903, 's', 'daily', 'k', NULL, NULL);"
	    "INSERT INTO sessions (id, scope, key, provider, status, first_seen, last_seen,"
	    " event_count) VALUES (91, 'conversation', " KEY_LONG ", 'tavus', 1, 1, 1, 1),"
	    " (92, 'conversation', " KEY_EDGE ", 'tavus', 1, 1, 1, 1),"
	    " (93, 'room', " KEY_WIDE ", 'daily', 1, 1, 1, 1);"
	    "INSERT INTO events (seq, id, received_at, source, provider, kind, event_type, scope,"
	    " session_key, session_id, headers, body, facet, room, meeting) VALUES"
	    " (1, 'evt_long', 1, 's', 'tavus', 'k', " KEY_LONG ", 'conversation', " KEY_LONG ","
	    " 91, '{}', '', 901, NULL, NULL),"
	    " (2, 'evt_edge', 1, 's', 'tavus', 'k', 'short', 'conversation', " KEY_EDGE ", 92,"
	    " '{}', '', 902, NULL, NULL),"
	    " (3, 'evt_room', 1, 's', 'daily', 'k', NULL, 'room', " KEY_WIDE ", 93, '{}', '',"
	    " 903, " KEY_WIDE ", " KEY_WIDE ");"
	    "INSERT INTO deliveries (id, event_seq, destination, order_key, status, created_at,"
	    " updated_at, next_attempt_at) VALUES (1, 1, 'd', 'conversation:' || " KEY_LONG ","
	    " 0, 1, 1, 1), (2, 2, 'd', 'conversation:' || " KEY_EDGE ", 0, 1, 1, 1),"
	    " (3, 3, 'd', 'room:' || " KEY_WIDE ", 0, 1, 1, 1);"
	    "INSERT INTO event_query VALUES ('q', " KEY_LONG ", 1), (" KEY_WIDE ", 'v', 1),"
	    " ('q', 'v', 1);"
	    "INSERT INTO room_links VALUES (1, 'm1', " KEY_WIDE "), (2, " KEY_LONG ", 'r'),"
	    " (3, 'i', 'r');"
	    "PRAGMA user_version=20;");
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM events"), 3);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events e JOIN facets g ON g.id = e.facet"
	                     " WHERE e.seq = 1 AND e.event_type IS NULL AND e.scope IS NULL AND"
	                     " e.session_key IS NULL AND e.session_id IS NULL AND g.source = 's'"
	                     " AND g.provider = 'tavus' AND g.kind = 'k' AND g.event_type IS NULL"
	                     " AND g.subtype IS NULL"),
	    1);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events WHERE seq = 2 AND scope = 'conversation'"
	                     " AND session_id = 92 AND session_key = " KEY_EDGE " AND facet = 902"),
	    1);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events WHERE seq = 3 AND scope IS NULL AND"
	                     " session_key IS NULL AND session_id IS NULL AND room IS NULL AND"
	                     " meeting IS NULL AND facet = 903"),
	    1);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM facets WHERE length(CAST(event_type AS BLOB))"
	                     " > 1024"),
	    0);
	assert_int_equal(count_rows(f, "SELECT group_concat(id) FROM sessions"), 92);
	assert_int_equal(
	    count_rows(f, "SELECT group_concat(id) FROM deliveries WHERE order_key IS NOT NULL"),
	    2);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM deliveries"), 3);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM event_query WHERE name = 'q' AND"
	                     " value = 'v'"),
	    1);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM event_query"), 1);
	assert_int_equal(count_rows(f, "SELECT group_concat(kind) FROM room_links"), 3);
}

/*
 * A write that fails in a way that ends the transaction (SQLite rolls all of
 * it back on a full disk or an I/O error): the writes after it in the batch
 * ran outside any transaction, each committing by itself, and the batch was
 * then answered as failed. A write must be kept exactly when it is answered
 * as kept. The database is made full with max_page_count on the writer's
 * connection, which a large body then needs pages past.
 */
static void
a_write_after_a_lost_transaction_is_not_committed_on_its_own(void **state)
{
	struct fixture *f = *state;
	static char big[256 * 1024];
	struct hr_event_write wblock, wbig, wsmall;
	struct hr_store_op oblock, obig, odest, osmall;
	struct hr_destination_state dest = { .name = "dst", .disabled = true, .reason = "t" };
	char sql[64];
	int n = g.done;

	event_write(&wblock, &oblock, &f->ev, "evt_block", NULL);
	hold_writer(f, &wblock, &oblock);
	/* The writer waits in the blocker's done(): its connection is idle. */
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld",
	    (long long)count_rows(f, "PRAGMA page_count") + 1);
	assert_int_equal(sqlite3_exec(f->store->b->wdb, sql, NULL, NULL, NULL), SQLITE_OK);

	memset(big, 'x', sizeof(big) - 1);
	event_write(&wbig, &obig, &f->ev, "evt_big", NULL);
	wbig.req.body = big;
	wbig.req.body_len = sizeof(big) - 1;
	memset(&odest, 0, sizeof(odest));
	odest.done = on_done;
	event_write(&wsmall, &osmall, &f->ev, "evt_small", NULL);
	assert_int_equal(hr_store_put_event(f->store, &wbig, &obig), HR_OK);
	assert_int_equal(hr_store_set_destination(f->store, &dest, &odest), HR_OK);
	assert_int_equal(hr_store_put_event(f->store, &wsmall, &osmall), HR_OK);
	release_writer();
	wait_done(n + 4);
	/* Counted once the writer is gone: only what it committed is in the files. */
	hr_store_close(f->store);
	f->store = NULL;

	assert_int_equal(obig.res.status, HR_EDB);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM events WHERE id = 'evt_big'"), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM destinations WHERE name = 'dst'"),
	    odest.res.status == HR_OK ? 1 : 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM events WHERE id = 'evt_small'"),
	    osmall.res.status == HR_OK ? 1 : 0);
}

/* Store rejection `id` of `source`, answered 200 if `acknowledged`; waits for it. */
static void
put_rejection_as(struct hr_store *store, const char *id, const char *source, bool acknowledged)
{
	struct hr_rejection_write w = { .req = { .id = id,
		                            .received_us = hr_time_now_us(),
		                            .source = source,
		                            .body = "{",
		                            .body_len = 1 },
		.http_status = 400,
		.problem_json = "{}",
		.acknowledged = acknowledged };
	struct hr_store_op op = { .done = on_done };
	int n = g.done;

	assert_int_equal(hr_store_put_rejection(store, &w, &op), HR_OK);
	wait_done(n + 1);
	assert_int_equal(op.res.status, HR_OK);
}

static void
put_rejection(struct hr_store *store, const char *id, const char *source)
{
	put_rejection_as(store, id, source, false);
}

/* The fixture's store opened again with `rejections_max` (the teardown closes it). */
static struct hr_store *
reopen_keeping_rejections(struct fixture *f, unsigned rejections_max)
{
	struct hr_store_opts o = { .engine = &hr_store_sqlite,
		.path = f->path,
		.readers = 1,
		.rejections_max = rejections_max };
	struct hr_error err = { .field = "" };

	hr_store_close(f->store);
	f->store = NULL;
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	return f->store;
}

/*
 * rejections_max keeps the newest N. The trim cut at max(seq) - N, as if seqs
 * had no gaps; rejections pruned by age (per source) leave gaps, and then a
 * source's only rejection went though far fewer than N were kept.
 */
static void
rejections_max_counts_rows_not_seq_numbers(void **state)
{
	struct fixture *f = *state;
	struct hr_store *store = reopen_keeping_rejections(f, 4);
	char sql[128];

	put_rejection(store, "rej_b1", "b");
	put_rejection(store, "rej_a1", "a");
	put_rejection(store, "rej_a2", "a");
	put_rejection(store, "rej_b2", "b");
	/* Source a's retain took its two (as a pruning pass would): seqs 1 and 4 left. */
	snprintf(sql, sizeof(sql), "DELETE FROM rejections WHERE source = 'a'");
	assert_int_equal(sqlite3_exec(store->b->wdb, sql, NULL, NULL, NULL), SQLITE_OK);
	put_rejection(store, "rej_a3", "a"); /* seq 5: three rows, under the four kept */
	assert_int_equal(count_rows(f, "SELECT count(*) FROM rejections"), 3);
	put_rejection(store, "rej_a4", "a");
	put_rejection(store, "rej_a5", "a");
	/* Five now: the oldest goes, the newest four stay. */
	assert_int_equal(count_rows(f, "SELECT count(*) FROM rejections WHERE id = 'rej_b1'"), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM rejections"), 4);
}

/*
 * The rejections a batch stores are kept whatever rejections_max says: their
 * 400/413/422 (or Daily's 200), sent after the commit, say the body is in
 * GET /v1/rejections. The trim ran after the batch's writes, in its own
 * transaction, so with rejections_max = 0 (or more rejections in one batch
 * than it) bodies were deleted before their "kept" answer went out.
 */
static void
rejections_just_stored_are_kept(void **state)
{
	struct fixture *f = *state;
	struct hr_store *store = reopen_keeping_rejections(f, 0);

	put_rejection(store, "rej_1", "a");
	assert_int_equal(count_rows(f, "SELECT count(*) FROM rejections WHERE id = 'rej_1'"), 1);
	put_rejection(store, "rej_2", "a"); /* the next batch: now rej_1 may go */
	assert_int_equal(count_rows(f, "SELECT count(*) FROM rejections WHERE id = 'rej_2'"), 1);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM rejections"), 1);
}

/*
 * A body refused but answered 200 (Daily's) was acknowledged: its sender will
 * not send it again, so rejections_max neither deletes it nor counts it. It
 * went with the oldest before, the sender told it was fine.
 */
static void
rejections_max_leaves_acknowledged_rejections(void **state)
{
	struct fixture *f = *state;
	struct hr_store *store = reopen_keeping_rejections(f, 1);

	put_rejection_as(store, "rej_d1", "daily", true);
	put_rejection(store, "rej_1", "a");
	put_rejection_as(store, "rej_d2", "daily", true);
	put_rejection(store, "rej_2", "a");
	put_rejection(store, "rej_3", "a");
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM rejections WHERE source = 'daily'"
	                     " AND acknowledged = 1"),
	    2);
	/* The newest one of those counted stays, and only it. */
	assert_int_equal(count_rows(f, "SELECT count(*) FROM rejections WHERE source = 'a'"), 1);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM rejections WHERE id = 'rej_3'"), 1);
}

/* One pruning pass with `cap` and `rules` and a prune_interval of `interval_us`, waited
 * for; what it did in `res`. */
static void
prune_pass_into(struct fixture *f, int64_t cap, const struct hr_retention_rule *rules, size_t n,
    int64_t interval_us, struct hr_prune_result *res)
{
	struct hr_retention r = {
		.interval_us = interval_us, .max_size = cap, .rules = rules, .nrules = n
	};
	struct hr_store_op op = { .done = on_done };
	int before = g.done;

	memset(res, 0, sizeof(*res));
	assert_int_equal(hr_store_submit(f->store, HR_OP_PRUNE, &r, res, &op), HR_OK);
	wait_done(before + 1);
	assert_int_equal(op.res.status, HR_OK);
}

static void
prune_pass_every(struct fixture *f, int64_t cap, const struct hr_retention_rule *rules, size_t n,
    int64_t interval_us)
{
	struct hr_prune_result res;

	prune_pass_into(f, cap, rules, n, interval_us, &res);
}

static void
prune_pass(struct fixture *f, int64_t cap, const struct hr_retention_rule *rules, size_t n)
{
	prune_pass_every(f, cap, rules, n, 1000000);
}

/*
 * Review R10: heads of max_size kept between passes, lowered by every age
 * pass to its walk's floor (0), had every pass look for the oldest candidate
 * from the start of a pending backlog again, cut short after two windows, and
 * prune nothing by size: the database grew past the cap for as long as a
 * source with a retain rule had traffic (that change was taken back; with
 * it, none of the 10,000 went here). Events without deliveries on either
 * side of a backlog of 60,000 go, while an age rule prunes every pass.
 */
static void
max_size_prunes_while_an_age_rule_prunes_every_pass(void **state)
{
	static const struct hr_retention_rule rule = { .source = "aged", .retain_us = 1000000 };
	struct fixture *f = *state;
	struct hr_store_opts o = { .engine = &hr_store_sqlite, .path = f->path, .readers = 1 };
	struct hr_error err = { .field = "" };
	struct hr_event_write w;
	struct hr_store_op op;
	char id[32];
	int n;

	hr_store_close(f->store);
	fill_on(f->path,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 70000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, CASE WHEN i <= 5000 OR i > 65000 THEN 'old' ELSE 'big' END,"
	    " 'tavus',"
	    " 'k', '{}', randomblob(300) FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE source = 'big';");
	assert_int_equal(hr_store_open(&o, &f->store, &err), HR_OK);
	for (int pass = 0; pass < 30; pass++) {
		snprintf(id, sizeof(id), "evt_aged_%d", pass);
		event_write(&w, &op, &f->ev, id, NULL);
		w.req.source = "aged";
		w.req.received_us = hr_time_now_us() - 5000000; /* past its retain at once */
		n = g.done; /* the pass's done counts too: wait for this write's own */
		assert_int_equal(hr_store_put_event(f->store, &w, &op), HR_OK);
		wait_done(n + 1);
		prune_pass(f, 1, &rule, 1);
		if (count_rows(f, "SELECT count(*) FROM events WHERE source = 'old'") == 0)
			break;
	}
	assert_int_equal(count_rows(f, "SELECT count(*) FROM events WHERE source = 'old'"), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM events WHERE source = 'big'"), 60000);
}

/* Passes under a cap of one byte until `left` counts none, `max` at most; the most VM
 * steps of the watched reads in one of them in *most. */
static int
passes_until_none(struct fixture *f, const char *left, int max, long long *most)
{
	int passes = 0;

	while (passes < max && count_rows(f, left) > 0) {
		sum_steps = 0;
		prune_pass(f, 1, NULL, 0);
		*most = sum_steps > *most ? sum_steps : *most;
		passes++;
	}
	return passes;
}

/*
 * Review R1: each pass over max_size looked for each source's oldest event it
 * could take from the start of the source, past every event with a pending
 * delivery (0.2-0.45 s of the writer a pass at 200,000). 100,000 pending
 * events of "big", then 200 of "late" without deliveries: each pass reads at
 * most a window of big's, the walk goes on from pass to pass until late's
 * payloads go, and once it is past the backlog a pass does not read it again.
 */
static void
a_size_pass_reads_a_window_of_a_backlog_not_all_of_it(void **state)
{
	struct fixture *f = *state;
	long long most = 0;
	int passes = 0;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100200)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, CASE WHEN i <= 100000 THEN 'big' ELSE 'late' END,"
	    " 'tavus', 'k', '{}', randomblob(300) FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE source = 'big';");
	watched = "FROM events e INDEXED BY events_unpruned";
	passes = passes_until_none(f,
	    "SELECT count(*) FROM events WHERE source = 'late' AND pruned_at IS NULL", 40, &most);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events WHERE source = 'late' AND"
	                     " pruned_at IS NULL"),
	    0);
	/* late's rows go; then a pass finds nothing, and looks again from the start
	 * (a window a pass) before it calls itself dry and the hold begins. */
	for (int i = 0; i < 30 &&
	     count_rows(f,
	         "SELECT count(*) FROM store_state WHERE name ="
	         " 'size_hold_us'") == 0;
	     i++) {
		sum_steps = 0;
		prune_pass(f, 1, NULL, 0);
		most = sum_steps > most ? sum_steps : most;
		passes++;
	}
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM store_state WHERE name = 'size_hold_us'"), 1);
	sum_steps = 0;
	prune_pass(f, 1, NULL, 0); /* held, nothing changed: the backlog is not read */
	print_message("passes %d, most steps %lld, then %lld\n", passes, most, sum_steps);
	assert_true(sum_steps < 20000);
	/* from the start each pass, ~1,900,000 steps a pass; now two windows at most */
	assert_true(most > 0 && most < 600000);
	/* 10 passes of at most 10,000 events each, and 10 more to look again */
	assert_true(passes > 1 && passes < 40);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events WHERE source = 'big' AND"
	                     " pruned_at IS NULL"),
	    100000);
	/* Nothing changed behind the walk: passes do not read the backlog again. An
	 * interval long enough that the walks' own restart by age (10 intervals since
	 * the last) cannot come: at 0.1 s it came whenever the passes above took over
	 * a second, as in the sanitizer build beside the rest of the suite (CI). */
	sum_steps = 0;
	prune_pass_every(f, 1, NULL, 0, INT64_C(60) * 1000000);
	assert_true(sum_steps < 20000);
	/* Behind it, the first 100 of big's deliveries end: the oldest pending event
	 * moved, the walk starts over at the next pass, and their events go. */
	exec_on(f->path, "UPDATE deliveries SET status = 1 WHERE event_seq <= 100");
	prune_pass_every(f, 1, NULL, 0, 100000);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events WHERE source = 'big' AND"
	                     " pruned_at IS NULL"),
	    99900);
	/* One inside the backlog ends: it goes once the walk starts over anyway, ten
	 * prune_intervals (here 100 ms) after it last did, and not before. */
	exec_on(f->path, "UPDATE deliveries SET status = 3 WHERE event_seq = 50000");
	prune_pass_every(f, 1, NULL, 0, 100000);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events WHERE seq = 50000 AND"
	                     " pruned_at IS NULL"),
	    1);
	usleep(1100000);
	for (int i = 0; i < 12 &&
	     count_rows(f,
	         "SELECT count(*) FROM events WHERE seq = 50000"
	         " AND pruned_at IS NULL") > 0;
	     i++)
		prune_pass_every(f, 1, NULL, 0, 100000);
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events WHERE seq = 50000 AND"
	                     " pruned_at IS NULL"),
	    0);
}

/*
 * Review RS: a look reads a window of each source's walk, so a pass read one
 * per source and kind, and twice over when it looked again from the start: 50
 * sources with 3,000 pending events each cost the first pass 7.79 M VM steps
 * (0.55-1.03 s of the writer), 2.2 times the pass that read every backlog from
 * the start. 20 sources with 1,500 pending each, interleaved, then 20 events
 * each without deliveries: no pass reads more than a few windows (it read
 * every backlog, twice: 1,480,973 steps), the walks go on from pass to pass,
 * and the late events' payloads go, oldest first, the pending ones' stay.
 */
static void
a_size_pass_reads_a_few_windows_across_all_sources(void **state)
{
	struct fixture *f = *state;
	long long most = 0;
	int passes = 0;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30400)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's' || (i % 20), 'tavus', 'k', '{}', randomblob(300)"
	    " FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE seq <= 30000;");
	watched = "FROM events e INDEXED BY events_unpruned";
	while (passes < 200 &&
	    count_rows(f, "SELECT count(*) FROM events WHERE seq > 30000 AND pruned_at IS NULL") >
	        0) {
		sum_steps = 0;
		prune_pass(f, 1, NULL, 0);
		most = sum_steps > most ? sum_steps : most;
		passes++;
		/* oldest first: no late payload went while an older one is kept */
		assert_int_equal(count_rows(f,
		                     "SELECT count(*) FROM events a JOIN events b ON b.seq > a.seq"
		                     " WHERE a.seq > 30000 AND b.seq > 30000 AND"
		                     " a.pruned_at IS NULL AND b.pruned_at IS NOT NULL"),
		    0);
	}
	print_message("passes %d, most steps %lld\n", passes, most);
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM events WHERE seq > 30000 AND pruned_at IS NULL"),
	    0);
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM events WHERE seq <= 30000 AND pruned_at IS NULL"),
	    30000);
	assert_true(most > 0 && most < 800000);
	assert_true(passes > 1 && passes < 200);
}

/*
 * Review R39: once the budget of a pass's looks was spent, every other source
 * was still looked at, LOOK_NEAR entries each (1,500 sources: 135 ms a pass).
 * 600 sources of 100 pending events each, then one event each without a
 * delivery: a source not looked at yet waits for a later pass once the budget
 * is spent, and every late payload goes all the same.
 */
static void
a_pass_looks_at_as_many_sources_as_its_budget_takes(void **state)
{
	struct fixture *f = *state;
	long long most = 0;
	int passes = 0;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60600)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's' || (i % 600), 'tavus', 'k', '{}', randomblob(20)"
	    " FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE seq <= 60000;");
	watched = "FROM events e INDEXED BY events_unpruned";
	passes = passes_until_none(
	    f, "SELECT count(*) FROM events WHERE seq > 60000 AND pruned_at IS NULL", 100, &most);
	print_message("passes %d, most steps %lld\n", passes, most);
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM events WHERE seq > 60000 AND pruned_at IS NULL"),
	    0);
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM events WHERE seq <= 60000 AND pruned_at IS NULL"),
	    60000);
	assert_true(most > 0 && most < 500000);
}

/* The first column of `sql`'s statement from `k`, stepped once. */
static int64_t
kept_value(struct hr_sqlite_stmts *k, sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = hr_sqlite_stmts_get(k, db, sql);
	int64_t v;

	assert_non_null(st);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	hr_sqlite_stmts_done(k, st);
	return v;
}

/* A pass's kept statements are found by their text's address: a buffer written
 * again at the same address got the statement of what it held before. */
static void
a_kept_statement_is_the_one_its_text_says(void **state)
{
	struct hr_sqlite_stmts k = { .n = 0 };
	char sql[32] = "SELECT 1";
	sqlite3 *db = NULL;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(kept_value(&k, db, sql), 1);
	assert_int_equal(kept_value(&k, db, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT 2");
	assert_int_equal(kept_value(&k, db, sql), 2);
	hr_sqlite_stmts_free(&k);
	sqlite3_close(db);
}

/*
 * Review R39: 50 sources whose events came interleaved, none pending, under a
 * cap of one byte. A chunk goes up to the next source's oldest event, so each
 * took one event, and a pass took 5,000 of them (4.2 s): every statement was
 * prepared anew (two thirds of the time), and each ended by walking the
 * in-memory journal of everything the pass had changed under the writer's
 * savepoint (the rest, growing with the pass). A pass takes 250 chunks, runs
 * each statement prepared once, and keeps what it did after each chunk.
 */
static void
a_pass_of_one_event_chunks_is_bounded_and_prepares_once(void **state)
{
	struct fixture *f = *state;
	struct hr_prune_result res;
	long long before;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's' || (i % 50), 'tavus', 'k', '{}', randomblob(300)"
	    " FROM n;");
	watched = "UPDATE events SET body";
	watch_writes = true;
	read_runs = -1;
	before = releases;
	prune_pass_into(f, 1, NULL, 0, 1000000, &res);
	watch_writes = false;
	print_message("payloads %llu, events %llu, runs %lld, releases %lld\n",
	    (unsigned long long)res.payloads, (unsigned long long)res.events, read_runs,
	    releases - before);
	assert_true(res.more);
	assert_true(res.payloads + res.events > 100 && res.payloads + res.events <= 250);
	/* the payload UPDATE, one row each time, prepared once in the pass */
	assert_true(read_runs >= 100);
	assert_true(releases - before > 100);
	/* oldest first all the same: from the oldest event left whole on, every event
	 * is there, and whole */
	assert_int_equal(count_rows(f,
	                     "SELECT 10001 - w.low - count(*) FROM events e, (SELECT min(seq) AS"
	                     " low FROM events WHERE pruned_at IS NULL) w WHERE e.seq >= w.low"
	                     " AND e.pruned_at IS NULL"),
	    0);
}

/*
 * Review R39: each retain rule reads a window of its walk a pass, so rules of
 * many sources, each behind a pending backlog older than retain, made a pass
 * read a window for each (30 sources: 6.9 million steps, 0.35-0.63 s). A pass
 * takes no further rule past a budget of steps, and the next pass begins with
 * the rule it left: 8 sources of 10,500 pending events, then 10 events each
 * without deliveries. No pass reads more than a few windows (it read all
 * eight, 320,208 steps of its payload walks; now 120,078), and every source's
 * 10 payloads go.
 */
static void
retain_rules_of_many_backlogs_share_a_pass(void **state)
{
	static struct hr_retention_rule rules[8];
	static char names[8][4];
	struct fixture *f = *state;
	struct hr_prune_result res;
	long long most = 0;
	int passes = 0;

	for (int i = 0; i < 8; i++) {
		snprintf(names[i], sizeof(names[i]), "s%d", i);
		rules[i] = (struct hr_retention_rule){ .source = names[i], .retain_us = 1000000 };
	}
	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 84080)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's' || (i % 8), 'tavus', 'k', '{}', randomblob(20)"
	    " FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE seq <= 84000;");
	watched = " FROM events e INDEXED BY events_unpruned";
	do {
		sum_steps = 0;
		prune_pass_into(f, 0, rules, 8, 1000000, &res);
		most = sum_steps > most ? sum_steps : most;
		passes++;
	} while (passes < 60 &&
	    count_rows(f, "SELECT count(*) FROM events WHERE seq > 84000 AND pruned_at IS NULL") >
	        0);
	print_message("passes %d, most steps %lld\n", passes, most);
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM events WHERE seq > 84000 AND pruned_at IS NULL"),
	    0);
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM events WHERE seq <= 84000 AND pruned_at IS NULL"),
	    84000);
	assert_true(passes > 2);
	assert_true(most > 0 && most < 250000);
}

/* The VM steps of the reads whose text has `what` in one pass under a cap of one
 * byte, on a store opened by fill_and_watch() (whose hook it then takes off). */
static long long
steps_of_a_pass(struct fixture *f, const char *what)
{
	watched = what;
	sum_steps = 0;
	prune_pass(f, 1, NULL, 0);
	watched = " FROM events";
	sqlite3_reset_auto_extension();
	return sum_steps;
}

/*
 * Each chunk of a max_size pass looked for dedup keys of events gone among up
 * to 1,024 keys: a pass of some 300 chunks read ~300,000 keys of events still
 * stored (0.8 s of the writer with 200,000 stored). 20,000 events, each with
 * its key, those of the newest expiring first: a pass looks at 1,024 keys at
 * most, and still prunes its 5,000 rows.
 */
static void
a_size_pass_looks_for_keys_of_events_gone_a_bounded_number_of_times(void **state)
{
	struct fixture *f = *state;
	long long steps;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', randomblob(100) FROM n;"
	    "INSERT INTO dedup (source, key, event_id, expires_at) SELECT 's', 'k' || seq, id,"
	    " 1000000000000000 - seq FROM events;");
	steps = steps_of_a_pass(f, "FROM dedup INDEXED BY dedup_expires");
	print_message("key look steps %lld\n", steps);
	assert_true(count_rows(f, "SELECT count(*) FROM events") < 20000);
	/* 3,399,711 steps before; 16 windows of 64 keys, and one more after each
	 * chunk of rows (whose keys here expire last), 168,560 */
	assert_true(steps > 0 && steps < 400000);
}

/* Bytes of the pages in use, as max_size counts them. */
static int64_t
used_pages_bytes(struct fixture *f)
{
	return count_rows(f,
	           "SELECT (SELECT page_count FROM pragma_page_count()) -"
	           " (SELECT freelist_count FROM pragma_freelist_count())") *
	    count_rows(f, "PRAGMA page_size");
}

/* Rows straight in SQL, then the store opened again. */
static void
fill_and_reopen(struct fixture *f, const char *sql)
{
	hr_store_close(f->store);
	f->store = NULL;
	fill_on(f->path, sql);
	reopen_on(f, &hr_store_sqlite);
}

/*
 * Review: a pass whose walks had gone past events that could go now (their
 * deliveries ended behind the walk) took nothing, called itself dry, and the
 * hold began: what came after it was never pruned, and the database stayed
 * over the cap for good. Source a: 100 events pending to x; b: 20 without
 * deliveries; c: 10 pending to "down". After the first pass, x delivers all
 * of a's, and c's backlog grows: the next pass takes a's payloads, no hold.
 */
static void
a_walk_past_events_that_may_go_does_not_begin_the_hold(void **state)
{
	struct fixture *f = *state;
	int64_t cap;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 130)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, CASE WHEN i <= 100 THEN 'a' WHEN i <= 120 THEN 'b'"
	    " ELSE 'c' END, 'tavus', 'k', '{}', randomblob(8000) FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, CASE WHEN source = 'a' THEN 'x' ELSE 'down' END, 0,"
	    " 1, 1, 1 FROM events WHERE source IN ('a', 'c');");
	cap = used_pages_bytes(f) - 8 * 8192;
	prune_pass(f, cap, NULL, 0);
	exec_on(f->path,
	    "UPDATE deliveries SET status = 1 WHERE destination = 'x';"
	    "WITH RECURSIVE n(i) AS (SELECT 131 UNION ALL SELECT i + 1 FROM n WHERE i < 190)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 'c', 'tavus', 'k', '{}', randomblob(8000) FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE seq > 130;");
	for (int i = 0; i < 5; i++)
		prune_pass(f, cap, NULL, 0);
	/* a's payloads went (0 of 100 before), no hold began (it did), b's events stay */
	assert_true(count_rows(f,
	                "SELECT count(*) FROM events WHERE source = 'a' AND"
	                " pruned_at IS NOT NULL") > 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM store_state"), 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM events WHERE source = 'b'"), 20);
	assert_true(used_pages_bytes(f) <= cap);
}

/*
 * Review: while a walk inside a backlog kept the payloads of other sources
 * waiting behind its window (oldest first), a pass took rows instead: whole
 * events newer than those payloads. big: 30,000 pending; c: 200 payloads of
 * 8 KB after them; b: 200 rows whose payloads went, newer still. c's payloads
 * go to meet the cap; b's rows stay (all 200 went at the first pass).
 */
static void
rows_wait_for_older_payloads_behind_a_walk(void **state)
{
	struct fixture *f = *state;
	int64_t cap;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30400)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body,"
	    " pruned_at) SELECT i, 'evt_' || i, CASE WHEN i <= 30200 THEN i ELSE 20000 + i END,"
	    " CASE WHEN i <= 30000 THEN 'big' WHEN i <= 30200 THEN 'c' ELSE 'b' END, 'tavus',"
	    " 'k', '{}', CASE WHEN i > 30000 AND i <= 30200 THEN randomblob(8000) ELSE X'' END,"
	    " CASE WHEN i > 30200 THEN 1 END FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE source = 'big';");
	cap = used_pages_bytes(f) - 50 * 8192;
	for (int i = 0; i < 10 && used_pages_bytes(f) > cap; i++)
		prune_pass(f, cap, NULL, 0);
	assert_true(used_pages_bytes(f) <= cap);
	assert_true(count_rows(f,
	                "SELECT count(*) FROM events WHERE source = 'c' AND"
	                " pruned_at IS NOT NULL") >= 50);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM events WHERE source = 'b'"), 200);
}

/*
 * Review: the walks started over each time the hold moved on, and it moves
 * whenever the oldest pending delivery ends: with one ending and one event
 * coming in between every two passes, a walk inside a backlog of 25,000 never
 * left its first window, every pass said more was left and took nothing (0 of
 * b's 500 payloads in 40 passes).
 */
static void
a_hold_that_moves_every_pass_lets_the_walks_go_on(void **state)
{
	struct fixture *f = *state;
	char sql[512];
	int64_t cap;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(v) AS (SELECT 25501 UNION ALL SELECT v + 1 FROM n WHERE v < 25700)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT v, 'evt_' || v, 30000 + v - 25500, 'a', 'tavus', 'k', '{}', X'' FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'slow', 0, 1, 1, 1 FROM events WHERE source = 'a';"
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25500)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, CASE WHEN i <= 25000 THEN i ELSE 1000 + i END,"
	    " CASE WHEN i <= 25000 THEN 'r' ELSE 'b' END, 'tavus', 'k', '{}',"
	    " CASE WHEN i <= 25000 THEN X'' ELSE randomblob(8000) END FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'x', 0, 1, 1, 1 FROM events WHERE source = 'r';"
	    "INSERT INTO store_state (name, value) VALUES ('size_hold_us', 30001),"
	    " ('size_hold_events', 25700), ('size_hold_rejections', 0);");
	cap = used_pages_bytes(f) - 100 * 8192;
	for (int i = 0; i < 40 && used_pages_bytes(f) > cap; i++) {
		snprintf(sql, sizeof(sql),
		    "UPDATE deliveries SET status = 1 WHERE id = (SELECT min(id) FROM deliveries"
		    " WHERE destination = 'slow' AND status = 0);"
		    "INSERT INTO events (seq, id, received_at, source, provider, kind, headers, "
		    "body)"
		    " VALUES (%d, 'evt_new_%d', %d, 'n', 'tavus', 'k', '{}', X'');",
		    30000 + i, i, 40000 + i);
		exec_on(f->path, sql);
		prune_pass(f, cap, NULL, 0);
	}
	assert_true(count_rows(f,
	                "SELECT count(*) FROM events WHERE source = 'b' AND"
	                " pruned_at IS NOT NULL") >= 100);
	assert_true(used_pages_bytes(f) <= cap);
}

/*
 * Review: each look read a whole window's end (10,000 index entries) before
 * it looked for the candidate, mostly the first entry: a pass without any
 * backlog took twice as long as before the walks. 60,000 events without
 * deliveries under a cap of 1 byte: a pass's looks read near their candidates.
 */
static void
a_pass_without_a_backlog_reads_near_its_candidates(void **state)
{
	struct fixture *f = *state;
	long long steps;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', randomblob(200) FROM n;");
	steps = steps_of_a_pass(f, "FROM events e INDEXED BY events_unpruned");
	print_message("look steps %lld\n", steps);
	/* payloads pruned, or gone with their rows (a chunk of rows follows each of
	 * payloads that freed no page) */
	assert_true(count_rows(f,
	                "SELECT 60000 - count(*) + total(pruned_at IS NOT NULL) FROM events") > 0);
	assert_true(steps > 0 && steps < 1000000);
}

/*
 * Review: a chunk's own statement went on past its few candidates to the next
 * source's, through a whole backlog (1.9 M VM steps in one UPDATE): it stops
 * where its look's window did. big: 5 without deliveries, then 100,000
 * pending; late: 200 after them.
 */
static void
a_chunk_stops_where_its_look_did(void **state)
{
	struct fixture *f = *state;
	long long steps;

	fill_and_watch(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100205)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, CASE WHEN i <= 100005 THEN 'big' ELSE 'late' END,"
	    " 'tavus', 'k', '{}', randomblob(100) FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE source = 'big'"
	    " AND seq > 5;");
	watch_writes = true;
	steps = steps_of_a_pass(f, "UPDATE events SET body = X''");
	watch_writes = false;
	print_message("chunk steps %lld\n", steps);
	/* the five went, their payloads and then their rows */
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM events WHERE seq <= 5 AND pruned_at IS NULL"), 0);
	/* 1,900,418 before */
	assert_true(steps > 0 && steps < 100000);
}

/*
 * Review: under a hold, events stored after it are no candidates, and a walk
 * read them a window per pass, cut short; no walk started over while one was
 * cut, so with more than a window of them coming in between passes, events
 * whose deliveries ended behind the walks were never pruned (0 of 15,000 in
 * 12 passes, the database 20 MB over the cap). A look now stops at the hold.
 */
static void
a_walk_does_not_read_what_the_hold_keeps(void **state)
{
	struct fixture *f = *state;
	int next = 80001;
	char sql[512];
	int64_t cap;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 80000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, CASE WHEN i <= 20000 THEN i ELSE 100000 + i END,"
	    " CASE WHEN i <= 20000 THEN 'a' ELSE 'b' END, 'tavus', 'k', '{}',"
	    " CASE WHEN i <= 20000 THEN randomblob(300) ELSE X'' END FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE source = 'a';"
	    "INSERT INTO store_state (name, value) VALUES ('size_hold_us', 50000),"
	    " ('size_hold_events', 20000), ('size_hold_rejections', 0);");
	cap = used_pages_bytes(f) - 2000000;
	for (int i = 0; i < 2; i++)
		prune_pass_every(f, cap, NULL, 0, 10000);
	exec_on(f->path, "UPDATE deliveries SET status = 1 WHERE event_seq <= 15000");
	for (int i = 0; i < 12 &&
	     count_rows(f,
	         "SELECT 20000 - count(*) + total(pruned_at IS NOT NULL) FROM events"
	         " WHERE source = 'a'") == 0;
	     i++) {
		usleep(150000);
		snprintf(sql, sizeof(sql),
		    "WITH RECURSIVE n(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM n WHERE i < %d)"
		    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers,"
		    " body) SELECT i, 'evt_' || i, 100000 + i, 'b', 'tavus', 'k', '{}', X'' FROM "
		    "n;",
		    next, next + 11999);
		exec_on(f->path, sql);
		next += 12000;
		prune_pass_every(f, cap, NULL, 0, 10000);
	}
	/* pruned, or gone with their rows */
	assert_true(count_rows(f,
	                "SELECT 20000 - count(*) + total(pruned_at IS NOT NULL) FROM events"
	                " WHERE source = 'a'") > 0);
}

/*
 * Review: an event stored with a received_at behind the walks (an accepted
 * rejection keeps its refusal's time) waited for them to start over, up to
 * ten prune_intervals, while newer payloads went. Stored through the store,
 * it goes first at the next pass.
 */
static void
an_event_stored_behind_the_walks_goes_first(void **state)
{
	struct fixture *f = *state;
	struct hr_event_write w;
	struct hr_store_op op;
	int64_t cap;
	int n;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, 1000 + i, 's', 'tavus', 'k', '{}', randomblob(8000) FROM n;");
	cap = used_pages_bytes(f) - 20 * 8192;
	prune_pass(f, cap, NULL, 0);
	event_write(&w, &op, &f->ev, "evt_old", NULL);
	w.req.received_us = 5;
	n = g.done;
	assert_int_equal(hr_store_put_event(f->store, &w, &op), HR_OK);
	wait_done(n + 1);
	exec_on(f->path,
	    "WITH RECURSIVE n(i) AS (SELECT 402 UNION ALL SELECT i + 1 FROM n WHERE i < 431)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, 2000 + i, 's', 'tavus', 'k', '{}', randomblob(8000) FROM n;");
	prune_pass(f, cap, NULL, 0);
	assert_int_equal(
	    count_rows(f, "SELECT count(*) FROM events WHERE id = 'evt_old' AND pruned_at IS NULL"),
	    0);
}

/*
 * Review R39: once pruning payloads freed no page, rows went first, the oldest
 * rows of any source, past older events whose payloads were still there: y's
 * 2,000 events (received 1..2000, 100-byte bodies) stayed whole while 608 of
 * x's newer ones (received 100001.., payloads pruned by an age rule) went. A
 * row goes only when no older payload may go; the older payloads go first.
 */
static void
rows_do_not_go_before_older_payloads(void **state)
{
	struct fixture *f = *state;
	int64_t cap;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body,"
	    " pruned_at) SELECT i, 'evt_' || i, CASE WHEN i <= 2000 THEN i ELSE 98000 + i END,"
	    " CASE WHEN i <= 2000 THEN 'y' ELSE 'x' END, 'tavus', 'k', '{}',"
	    " CASE WHEN i <= 2000 THEN randomblob(100) ELSE X'' END,"
	    " CASE WHEN i <= 2000 THEN NULL ELSE 5 END FROM n;");
	cap = used_pages_bytes(f) - 16 * 4096;
	for (int i = 0; i < 5; i++)
		prune_pass(f, cap, NULL, 0);
	/* something went, and no x event (newer) while a y event (older) is whole */
	assert_true(count_rows(f, "SELECT count(*) FROM events") < 4000);
	if (count_rows(f, "SELECT count(*) FROM events WHERE source = 'x'") < 2000)
		assert_int_equal(count_rows(f,
		                     "SELECT count(*) FROM events WHERE source = 'y'"
		                     " AND pruned_at IS NULL"),
		    0);
	/* and among y's, oldest first: from the oldest left whole on, all are there */
	assert_int_equal(count_rows(f,
	                     "SELECT 2001 - w.low - count(*) FROM events e, (SELECT"
	                     " coalesce(min(seq), 2001) AS low FROM events WHERE pruned_at IS NULL)"
	                     " w WHERE e.seq >= w.low AND e.seq <= 2000 AND e.pruned_at IS NULL"),
	    0);
}

/*
 * Review R39: a late event was compared with the lowest walk of all sources, so
 * one behind its own source's walk but not behind another source's went
 * unnoticed, and its source's newer events went first. a: 6,000 events
 * received 1..6000; b: 2,000 received 20001..22000; a pass leaves a's walk
 * inside a's and b's at 20001. b's event received at 9000 is stored then: it
 * goes before any of b's newer ones.
 */
static void
a_late_event_goes_before_the_newer_ones_of_its_source(void **state)
{
	struct fixture *f = *state;
	struct hr_event_write w;
	struct hr_store_op op;
	int n;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, CASE WHEN i <= 6000 THEN i ELSE 14000 + i END,"
	    " CASE WHEN i <= 6000 THEN 'a' ELSE 'b' END, 'tavus', 'k', '{}', randomblob(3000)"
	    " FROM n;");
	prune_pass(f, 1, NULL, 0);
	assert_true(count_rows(f,
	                "SELECT count(*) FROM events WHERE source = 'a' AND"
	                " pruned_at IS NULL AND received_at < 9000") > 0);
	event_write(&w, &op, &f->ev, "evt_late", NULL);
	w.req.source = "b";
	w.req.received_us = 9000;
	n = g.done;
	assert_int_equal(hr_store_put_event(f->store, &w, &op), HR_OK);
	wait_done(n + 1);
	for (int i = 0; i < 20 &&
	     count_rows(f,
	         "SELECT count(*) FROM events WHERE id = 'evt_late' AND"
	         " pruned_at IS NULL") == 1;
	     i++) {
		prune_pass(f, 1, NULL, 0);
		/* none of b's newer events went while the late one is whole */
		if (count_rows(f,
		        "SELECT count(*) FROM events WHERE id = 'evt_late' AND"
		        " pruned_at IS NULL") == 1)
			assert_int_equal(count_rows(f,
			                     "SELECT count(*) FROM events WHERE source = 'b'"
			                     " AND received_at > 20000 AND pruned_at IS NULL"),
			    2000);
	}
	assert_int_equal(count_rows(f,
	                     "SELECT count(*) FROM events WHERE id = 'evt_late' AND"
	                     " pruned_at IS NULL"),
	    0);
}

/*
 * Review: deliveries that ended while a pass looked again from the start, behind
 * it, were not seen when it came to the end, and the hold began though their
 * events could go (and then kept what came after). 30,000 pending; the first
 * 1,000 are delivered during the look again: they go before any hold begins.
 */
static void
deliveries_ended_during_a_look_again_are_seen_before_the_hold(void **state)
{
	struct fixture *f = *state;
	int64_t cap, pruned = -1;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 'a', 'tavus', 'k', '{}', randomblob(300) FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events;");
	cap = used_pages_bytes(f) - 50 * 8192;
	for (int i = 1; i <= 20; i++) {
		prune_pass(f, cap, NULL, 0);
		if (i == 4)
			exec_on(
			    f->path, "UPDATE deliveries SET status = 1 WHERE event_seq <= 1000");
		if (count_rows(f, "SELECT count(*) FROM store_state") > 0) {
			pruned = count_rows(f,
			             "SELECT count(*) FROM events WHERE seq <= 1000 AND"
			             " pruned_at IS NOT NULL") +
			    count_rows(f, "SELECT 1000 - count(*) FROM events WHERE seq <= 1000");
			break;
		}
	}
	/* 0 of them before the hold began, before */
	assert_true(pruned > 0 || used_pages_bytes(f) <= cap);
}

/*
 * Keys of the events a pass deleted are the oldest to expire, behind the look
 * for keys of events gone, which had spent its windows on keys of stored events
 * at the first chunk: they waited for the look to come round the table (under
 * load, the sanitizer build, they filled test_retention's 512 KiB cap). 5,000
 * events with their keys under a cap of one byte: after a pass, none of the
 * keys of events it deleted is left but those of its last chunks.
 */
static void
keys_of_events_a_pass_deleted_go_in_the_same_pass(void **state)
{
	struct fixture *f = *state;
	int64_t left;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i, 's', 'tavus', 'k', '{}', randomblob(100) FROM n;"
	    "INSERT INTO dedup (source, key, event_id, expires_at) SELECT 's', 'k' || seq, id,"
	    " 1000000000000000 + seq FROM events;");
	prune_pass(f, 1, NULL, 0);
	left = count_rows(f,
	    "SELECT count(*) FROM dedup d WHERE NOT EXISTS"
	    " (SELECT 1 FROM events e WHERE e.id = d.event_id)");
	print_message("keys of events gone left %lld of %lld events gone\n", (long long)left,
	    (long long)(5000 - count_rows(f, "SELECT count(*) FROM events")));
	assert_true(count_rows(f, "SELECT count(*) FROM events") < 5000);
	assert_true(left <= 64);
}

/*
 * R39 finding 6: after each chunk of rows the look for keys of events gone went
 * back to the oldest keys. A destination down keeps its backlog's events, and
 * their keys, the oldest to expire: each look read the backlog's keys again,
 * 1,024 of them a pass at most, and the keys of the events the pass deleted,
 * behind them, stayed while later chunks deleted more events to make room for
 * them (2,000 of 2,000 left). After a chunk the look goes back to the first key
 * whose event no delivery keeps, no further. 3,000 events pending to a
 * destination down, then 5,000 without deliveries, each with its key (a window
 * of 1,000 s): after a pass, none of the keys of events it deleted is left but
 * those of its last chunk.
 */
static void
the_key_look_after_a_chunk_skips_a_pending_backlog(void **state)
{
	struct fixture *f = *state;
	int64_t left, gone;

	fill_and_reopen(f,
	    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8000)"
	    " INSERT INTO events (seq, id, received_at, source, provider, kind, headers, body)"
	    " SELECT i, 'evt_' || i, i * 1000, 's', 'tavus', 'k', '{}', randomblob(100) FROM n;"
	    "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
	    " next_attempt_at) SELECT seq, 'down', 0, 1, 1, 1 FROM events WHERE seq <= 3000;"
	    "INSERT INTO dedup (source, key, event_id, expires_at) SELECT 's', 'k' || seq, id,"
	    " received_at + 1000000000 FROM events;");
	prune_pass(f, 1, NULL, 0);
	gone = 8000 - count_rows(f, "SELECT count(*) FROM events");
	left = count_rows(f,
	    "SELECT count(*) FROM dedup d WHERE NOT EXISTS"
	    " (SELECT 1 FROM events e WHERE e.id = d.event_id)");
	print_message("keys of events gone left %lld of %lld events gone\n", (long long)left,
	    (long long)gone);
	assert_true(gone > 0);
	assert_int_equal(count_rows(f, "SELECT count(*) FROM events WHERE seq <= 3000"), 3000);
	assert_true(left <= 16);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(a_retried_write_keeps_its_own_id, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_pass_that_ends_the_transaction_commits_no_write_of_its_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_facet_made_by_a_rolled_back_pass_is_made_again, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    version_12_gives_each_event_its_facet, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_facet_fill_cut_short_goes_on_at_the_next_start, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_filter_matching_many_facets_pages_through_all_its_events, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_largest_facet_union_fits_one_query, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_watchdogs_ping_is_not_a_queued_write, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_dedup_key_is_held_for_its_window_then_claimed_again, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_new_database_has_only_the_indexes_queries_need, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    version_6_drops_the_indexes_no_query_needs, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_version_whose_indexes_are_not_its_own_is_mended, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_version_13_with_the_facet_index_migrates, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    version_19_counts_ids_on_from_the_highest_it_held, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    version_20_keys_past_the_bound_name_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_room_filters_lookups_read_an_index_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_rooms_new_link_finds_the_events_before_it_by_index, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_room_page_reads_a_page_not_the_room, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_room_timeline_reads_its_newest_not_the_room, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_subtype_filter_reads_an_index_not_the_table, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_session_is_found_by_its_bare_key, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_bare_key_tie_goes_to_the_newest_session, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_session_filter_reads_the_session_not_the_table, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    an_ordered_poll_reads_the_heads_not_the_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    an_ordered_poll_reads_the_bodies_of_the_rows_it_takes_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_batchs_last_run_is_offered_the_commit_when_nothing_follows_it, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_ping_probes_writes_while_they_fail, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_polls_statements_are_prepared_once_and_hold_nothing_between_polls, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_poll_answers_when_the_next_row_falls_due, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    an_ordered_poll_takes_the_oldest_past_its_first_thousand_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    ordered_polls_see_the_keys_past_a_thousand_waiting_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    an_ordered_poll_reads_a_window_of_the_rows_without_a_key, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_oldest_pending_delivery_is_read_not_looked_for, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_long_timeline_shows_its_newest_events_and_says_so, setup, teardown),
		cmocka_unit_test(ids_are_unique_across_refills_and_threads),
		cmocka_unit_test_setup_teardown(
		    the_writer_cache_is_the_configured_size, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_replaced_commit_hook_is_not_running_once_the_call_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_write_after_a_lost_transaction_is_not_committed_on_its_own, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    rejections_max_counts_rows_not_seq_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    rejections_max_leaves_acknowledged_rejections, setup, teardown),
		cmocka_unit_test_setup_teardown(rejections_just_stored_are_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    max_size_prunes_while_an_age_rule_prunes_every_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_size_pass_reads_a_window_of_a_backlog_not_all_of_it, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_size_pass_reads_a_few_windows_across_all_sources, setup, teardown),
		cmocka_unit_test(a_kept_statement_is_the_one_its_text_says),
		cmocka_unit_test_setup_teardown(
		    a_pass_of_one_event_chunks_is_bounded_and_prepares_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_pass_looks_at_as_many_sources_as_its_budget_takes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    retain_rules_of_many_backlogs_share_a_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_key_look_after_a_chunk_skips_a_pending_backlog, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_size_pass_looks_for_keys_of_events_gone_a_bounded_number_of_times, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    a_walk_past_events_that_may_go_does_not_begin_the_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    rows_wait_for_older_payloads_behind_a_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_hold_that_moves_every_pass_lets_the_walks_go_on, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_pass_without_a_backlog_reads_near_its_candidates, setup, teardown),
		cmocka_unit_test_setup_teardown(a_chunk_stops_where_its_look_did, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_walk_does_not_read_what_the_hold_keeps, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    an_event_stored_behind_the_walks_goes_first, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_late_event_goes_before_the_newer_ones_of_its_source, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    rows_do_not_go_before_older_payloads, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    deliveries_ended_during_a_look_again_are_seen_before_the_hold, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    keys_of_events_a_pass_deleted_go_in_the_same_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    the_watchdogs_question_is_answered_at_once_and_finds_a_stuck_writer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    delivery_counts_follow_every_insert_change_and_delete, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
