/*
 * pg_write.c - the PostgreSQL engine's writes: one function per operation,
 * on the writer's connection, inside the transaction the store's writer
 * thread opened (store_ops.h), committed once per batch with
 * synchronous_commit = on: only then may the HTTP layer answer 2xx. Events
 * are pg_events.c's, written a run at a time in a pipe (pg_pipe.c).
 *
 * Every node has such a writer, so what SQLite's single writer made atomic
 * is made so by the database here:
 *  - dedup keys are claimed with INSERT ... ON CONFLICT on their primary key,
 *    never looked up first; the loser of a race learns the winner's event id;
 *  - a transaction that stores events takes PG_LOCK_EVENTS (a transaction
 *    advisory lock) before its first one, so events.seq grows in commit order
 *    across nodes and a reader following seq (/v1/stream) never skips a late
 *    commit; under the same lock, session upserts and dedup claims of two
 *    nodes never deadlock, nor do they with a pruning pass, which takes it
 *    before the rows it deletes (pg_prune.c);
 *  - what other nodes must hear is NOTIFYed inside the transaction, which
 *    PostgreSQL delivers at commit (sent with the COMMIT, one round trip).
 * A connection lost anywhere fails the whole batch (503 for its requests: a
 * COMMIT whose answer never came is not known to be durable), and the next
 * batch reconnects, at most once a second.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/event.h"
#include "hr/log.h"
#include "hr/timefmt.h"
#include "pg_int.h"

#define RECONNECT_US (INT64_C(1000000))

/* The result of a statement the writer ran: a timeout is noted for the batch. */
static int
ran(struct hr_store_backend *b, PGresult *r, PGresult **out)
{
	b->timed_out_in_batch |= r == NULL && pg_timed_out();
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return r != NULL ? HR_OK : HR_EDB;
}

static PGconn *writer_conn(struct hr_store_backend *b);

/*
 * A statement with what is to go before it (the transaction's BEGIN, a
 * savepoint's SAVEPOINT or RELEASE): one round trip, where each had one of its
 * own. `sql` NULL: only what is pending (pg_writer_flush()). When the server
 * closed the connection after writer_conn() looked, nothing of the transaction
 * ran (the BEGIN found no connection), so a new connection takes it
 * (pg_writer_reopen()).
 */
static int
run_in_pipe(struct hr_store_backend *b, const char *sql, const struct pg_params *p, bool planned,
    PGresult **out)
{
	struct pg_pipe pp;
	PGresult *r = NULL;
	int rc = HR_EDB;

	for (int tries = 0; tries < 2; tries++) {
		if (pg_writer_pipe(b, &pp)) {
			if (sql != NULL && planned)
				pg_pipe_send_planned(&pp, sql, p);
			else if (sql != NULL)
				pg_pipe_send(&pp, sql, p);
			if (pg_pipe_sync(&pp) && sql != NULL)
				r = pg_pipe_next(&pp);
		}
		rc = pg_close_pipe(b, &pp);
		if (rc == HR_OK || !pg_writer_reopen(b, &pp))
			break;
		PQclear(r);
		r = NULL;
	}
	if (sql == NULL)
		return rc;
	if (rc != HR_OK) {
		PQclear(r);
		r = NULL;
	}
	return ran(b, r, out);
}

/* Anything to send before the next statement (pg_writer_pipe())? */
static bool
pending(const struct hr_store_backend *b)
{
	return b->begin_pending || b->savepoint_pending || b->release_pending;
}

int
pg_writer_run(
    struct hr_store_backend *b, const char *sql, const struct pg_params *p, PGresult **out)
{
	if (pending(b))
		return run_in_pipe(b, sql, p, false, out);
	return ran(b, pg_exec_prepared(&b->wprep, b->w, sql, p), out);
}

/* As run(), planned anew each time, for the size of its tables now: a prepared
 * statement keeps the plan of its first runs (a generic plan, after five) until
 * its tables are analyzed, and a table that is small then and large later gets
 * a plan for the small one. */
static int
run_planned(struct hr_store_backend *b, const char *sql, const struct pg_params *p, PGresult **out)
{
	if (pending(b))
		return run_in_pipe(b, sql, p, true, out);
	return ran(b, pg_exec(b->w, sql, p), out);
}

/*
 * The lowest seq the transaction's rejections took, in a setting of the
 * transaction (undone with it, and with a savepoint rolled back). A seq is taken
 * at the INSERT, not at the commit: another node's rejections taken after it and
 * committed before this batch's trim are newer by seq, and the trim, keeping the
 * newest by seq, deleted the rows of its own batch, answered 422 "kept" after the
 * commit (a review). The trim leaves every row from the floor up; a batch after
 * this one trims those it may.
 */
#define REJECTION_FLOOR     "hookrelay.rejection_floor"
#define REJECTION_FLOOR_NOW "nullif(current_setting('" REJECTION_FLOOR "', true), '')"

int
hr_pg_put_rejection(struct hr_store_backend *b, const struct hr_rejection_write *w)
{
	struct pg_params p = { .n = 0 };

	pgp_text(&p, w->req.id);
	pgp_int(&p, w->req.received_us);
	pgp_text(&p, w->req.source);
	pgp_text_or_null(&p, w->req.remote_addr);
	pgp_text_or_null(&p, w->kind_name);
	pgp_int(&p, w->http_status);
	pgp_text(&p, w->problem_json != NULL ? w->problem_json : "{}");
	pgp_text(&p, w->req.headers_json != NULL ? w->req.headers_json : "{}");
	pgp_bytes(&p, w->req.body, w->req.body_len);
	pgp_text_or_null(&p, w->req.query_json);
	pgp_text(&p, w->acknowledged ? "true" : "false");
	return pg_writer_run(b,
	    "INSERT INTO rejections (id, received_at, source, remote_addr, kind, http_status,"
	    " problem, headers, body, query, acknowledged) VALUES ($1, $2::bigint, $3, $4, $5,"
	    " $6::integer, $7, $8, $9, $10, $11::boolean) RETURNING set_config('" REJECTION_FLOOR
	    "', coalesce(" REJECTION_FLOOR_NOW ", seq::text), true)",
	    &p, NULL);
}

/* Its delivery may be gone, discarded while the attempt ran and pruned since:
 * the record is then done, not a failure to write again. */
static const char sql_insert_attempt[] =
    "INSERT INTO attempts (delivery_id, number, started_at, duration_us, http_status, error,"
    " response) SELECT $1::bigint, $2::integer, $3::bigint, $4::bigint, $5::integer, $6, $7"
    " WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = $1::bigint)";

/* The resends libcurl made before the last send, each logged under the attempt's number. */
static size_t
send_resends(struct pg_pipe *pp, const struct hr_attempt *a)
{
	for (int i = a->resends; i > 0; i--) {
		struct pg_params p = { .n = 0 };

		pgp_int(&p, a->delivery_id);
		pgp_int(&p, a->number);
		pgp_int(&p, a->started_us);
		pgp_int(&p, 0);
		pgp_null(&p);
		pgp_text(
		    &p, "the reused connection closed before any answer; sent again on a new one");
		pgp_null(&p);
		pg_pipe_send(pp, sql_insert_attempt, &p);
	}
	return a->resends > 0 ? (size_t)a->resends : 0;
}

/* The lease ends with the attempt's record: the row is free for any node again.
 * Returns how many statements were sent. */
static size_t
send_attempt(struct hr_store_backend *b, struct pg_pipe *pp, const struct hr_attempt *a)
{
	size_t sent = send_resends(pp, a);
	struct pg_params p = { .n = 0 };

	pgp_int(&p, a->delivery_id);
	pgp_int(&p, a->number);
	pgp_int(&p, a->started_us);
	pgp_int(&p, a->duration_us);
	if (a->http_status > 0)
		pgp_int(&p, a->http_status);
	else
		pgp_null(&p);
	pgp_text_or_null(&p, a->error);
	if (a->response != NULL)
		pgp_bytes(&p, a->response, a->response_len);
	else
		pgp_null(&p);
	pg_pipe_send(pp, sql_insert_attempt, &p);
	p.n = 0;
	pgp_int(&p, a->delivery_id);
	pgp_int(&p, (int)a->new_status);
	pgp_int(&p, a->number);
	if (a->new_status == HR_DLV_PENDING)
		pgp_int(&p, a->next_attempt_us);
	else
		pgp_null(&p);
	pgp_int(&p, a->started_us + a->duration_us);
	if (a->http_status > 0)
		pgp_int(&p, a->http_status);
	else
		pgp_null(&p);
	pgp_text_or_null(&p, a->error);
	pgp_text(&p, b->node);
	/* Only while the claim is this node's: a record late past its lease (the
	 * writer could not commit) must not undo what the node that claimed the
	 * row since did with it. A discard while the attempt ran ended the claim:
	 * the row stays discarded unless the attempt succeeded (the receiver has
	 * the webhook; HR_DLV_SUCCEEDED, 1; FAILED, 2). The attempt itself is
	 * logged all the same, and counted when it is the newest (a review). */
	pg_pipe_send(pp,
	    "UPDATE deliveries SET status = CASE WHEN locked_by = $8 OR $2::integer = 1"
	    " THEN $2::integer ELSE status END, attempts = greatest(attempts, $3::integer),"
	    " next_attempt_at = CASE WHEN locked_by = $8 OR $2::integer = 1"
	    " THEN coalesce($4::bigint, next_attempt_at) ELSE next_attempt_at END,"
	    " updated_at = $5::bigint, locked_until = NULL, locked_by = NULL,"
	    " last_status = $6::integer, last_error = CASE WHEN locked_by = $8 OR $2::integer = 1"
	    " THEN $7 ELSE last_error END"
	    " WHERE id = $1::bigint AND (locked_by = $8 OR (status = 2 AND locked_by IS NULL"
	    " AND ($2::integer = 1 OR $3::integer > attempts)))",
	    &p);
	return sent + 2;
}

/* A run of records in one round trip: a drain's batch holds one per delivery
 * attempted, and each waited for two answers in turn. */
static int
record_attempts_once(
    struct hr_store_backend *b, const struct hr_attempt *const *in, size_t n, struct pg_pipe *pp)
{
	struct pg_commit cm = { .sent = false };
	size_t sent = 0;

	if (!pg_writer_pipe(b, pp))
		return pg_close_pipe(b, pp);
	for (size_t i = 0; i < n; i++)
		sent += send_attempt(b, pp, in[i]);
	if (pg_commit_wanted(b)) /* a drain's batch is its records: one round trip */
		pg_commit_send(b, pp, &cm);
	if (pg_pipe_sync(pp) && pg_pipe_read_ok(pp, sent) && cm.sent)
		pg_commit_read(pp, &cm);
	return pg_commit_end(b, &cm, pg_close_pipe(b, pp));
}

int
hr_pg_record_attempts(struct hr_store_backend *b, const struct hr_attempt *const *in, size_t n)
{
	struct pg_pipe pp;
	int rc = record_attempts_once(b, in, n, &pp);

	if (rc != HR_OK && pg_writer_reopen(b, &pp))
		rc = record_attempts_once(b, in, n, &pp);
	return rc;
}

/* Deliveries were leased when claimed (hr_pg_due_deliveries, `claims`): nothing to add. */
int
hr_pg_lease(struct hr_store_backend *b, const struct hr_lease *l)
{
	(void)b;
	(void)l;
	return HR_OK;
}

/* store_ops.h, probe_write: a new version of the schema row, which the commit
 * must write to the server's WAL. */
int
hr_pg_probe_write(struct hr_store_backend *b)
{
	struct pg_params p = { .n = 0 };

	return pg_writer_run(b, "UPDATE hookrelay_schema SET version = version", &p, NULL);
}

int
hr_pg_set_destination(struct hr_store_backend *b, const struct hr_destination_state *d)
{
	struct pg_params p = { .n = 0 };

	pgp_text(&p, d->name);
	pgp_int(&p, d->disabled);
	pgp_text_or_null(&p, d->disabled ? d->reason : NULL);
	/* Enabled too: a node's read-back tells a later write of another's from its own
	 * write that did not land (forward_delivery.c, save_state). */
	pgp_int(&p, d->set_us);
	b->notify_deliveries = true; /* the other nodes' forwarders look again */
	/* The state set last wins, whatever write commits last: a 410's disable
	 * that waited in its node's writer (behind a batch held up) overwrote an
	 * enable another node had made since (a review). The node reads the row
	 * back and takes the later state (save_state). */
	return pg_writer_run(b,
	    "INSERT INTO destinations (name, disabled, disabled_reason, disabled_at)"
	    " VALUES ($1, $2::integer, $3, $4::bigint) ON CONFLICT (name) DO UPDATE SET"
	    " disabled = excluded.disabled, disabled_reason = excluded.disabled_reason,"
	    " disabled_at = excluded.disabled_at WHERE destinations.disabled_at IS NULL"
	    " OR destinations.disabled_at <= excluded.disabled_at",
	    &p, NULL);
}

/* The events a destination replay delivers again; the same rule as SQLite's
 * REPLAY_DESTINATION_EVENTS ($1 destination, $2/$3 received_at bounds, $4 status). */
#define PG_REPLAY_DESTINATION_EVENTS                                                               \
	" FROM events e WHERE e.seq IN (SELECT d.event_seq FROM deliveries d"                      \
	"  WHERE d.destination = $1 AND ($4::integer < 0 OR d.status = $4::integer))"              \
	" AND e.pruned_at IS NULL"                                                                 \
	" AND ($2::bigint = 0 OR e.received_at >= $2::bigint)"                                     \
	" AND ($3::bigint = 0 OR e.received_at < $3::bigint)"                                      \
	" AND NOT" PG_ANY_DELIVERY("e.seq", "p.destination = $1 AND p.status = 0")

const char hr_pg_replay_count_sql[] = "SELECT count(*)" PG_REPLAY_DESTINATION_EVENTS;

/* One event again, to each of the named destinations. A pruning pass holds
 * the event order lock (pg_prune.c), which hr_pg_replay() takes first: the
 * replay waits for the pass and then sees the row pruned (no delivery of an
 * empty body) or gone; a pass that comes later finds the new pending
 * delivery. FOR SHARE keeps the row from going under the replay all the same. */
static int
pg_replay_event(
    struct hr_store_backend *b, const struct hr_replay *r, int64_t now, int64_t *created)
{
	for (size_t i = 0; i < r->ndestinations; i++) {
		struct pg_params p = { .n = 0 };
		PGresult *res;

		pgp_text(&p, r->event_id);
		pgp_text(&p, r->destinations[i]);
		pgp_text(&p, hr_replay_ordered(r, i) ? "t" : "f");
		pgp_int(&p, now);
		/* a pruned payload cannot be sent again */
		if (pg_writer_run(b,
		        "INSERT INTO deliveries (event_seq, destination, order_key, status,"
		        " created_at, updated_at, next_attempt_at) SELECT seq, $2, CASE WHEN"
		        " $3::boolean AND session_key IS NOT NULL THEN scope || ':' || session_key"
		        " END, 0, $4::bigint, $4::bigint, $4::bigint FROM events"
		        " WHERE id = $1 AND pruned_at IS NULL FOR SHARE",
		        &p, &res) != HR_OK)
			return HR_EDB;
		*created += strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	}
	return HR_OK;
}

/* A destination's replay, one chunk: PG_REPLAY_DESTINATION_EVENTS walked by
 * event, the first $8 of the events after $7 up to $9 (a window: at most that
 * many events probed a chunk, and PostgreSQL probes them all before it sorts);
 * planned at each chunk (a bulk statement: run_planned). Both tests of an event
 * are one probe of its deliveries (PG_OF_DELIVERIES): as a join, the status
 * test too could read the destination's deliveries once per event. NULL (no
 * delivery at all) is false. */
static const char sql_replay_chunk[] =
    "INSERT INTO deliveries (event_seq, destination, order_key, status, created_at,"
    " updated_at, next_attempt_at) SELECT e.seq, $1, CASE WHEN $5::boolean AND"
    " e.session_key IS NOT NULL THEN e.scope || ':' || e.session_key END, 0, $6::bigint,"
    " $6::bigint, $6::bigint FROM events e WHERE e.seq > $7::bigint AND e.seq <= $9::bigint"
    " AND e.pruned_at IS NULL AND ($2::bigint = 0 OR e.received_at >= $2::bigint)"
    " AND ($3::bigint = 0 OR e.received_at < $3::bigint) AND" PG_OF_DELIVERIES("e.seq",
        "bool_or(p.destination = $1 AND ($4::integer < 0 OR"
        " p.status = $4::integer)) AND NOT bool_or(p.destination = $1"
        " AND p.status = 0)") " ORDER BY e.seq LIMIT $8::bigint FOR SHARE OF e RETURNING event_seq";

/* The greatest of the ids a RETURNING gave (0: none). */
static int64_t
max_id(const PGresult *res)
{
	int64_t max = 0;

	for (int i = 0; i < PQntuples(res); i++)
		if (pgc_int(res, i, 0) > max)
			max = pgc_int(res, i, 0);
	return max;
}

/* The one integer `sql` finds (0: none, or NULL), with `arg` as $1 when given. */
static int
single_int(struct hr_store_backend *b, const char *sql, const char *arg, int64_t *out)
{
	struct pg_params p = { .n = 0 };
	PGresult *res;

	if (arg != NULL)
		pgp_text(&p, arg);
	if (pg_writer_run(b, sql, arg != NULL ? &p : NULL, &res) != HR_OK)
		return HR_EDB;
	*out = PQntuples(res) == 1 ? pgc_int(res, 0, 0) : 0;
	PQclear(res);
	return HR_OK;
}

static int
pg_replay_chunk(struct hr_store_backend *b, const struct hr_replay *r, int64_t now,
    int64_t *created, int64_t *next_after)
{
	int64_t after = r->after_seq, first = 0, end, last = 0, newest = 0;
	struct pg_params p = { .n = 0 };
	PGresult *res;

	if (r->limit > 0 && after == 0) {
		/* The first chunk starts at the destination's first event (sqlite_write.c). */
		if (single_int(b, "SELECT min(event_seq) FROM deliveries WHERE destination = $1",
		        r->destination, &first) != HR_OK)
			return HR_EDB;
		if (first == 0)
			return HR_OK; /* the destination never had a delivery */
		after = first - 1;
	}
	end = hr_replay_window_end(r, after);
	pgp_text(&p, r->destination);
	pgp_int(&p, r->since_us);
	pgp_int(&p, r->until_us);
	pgp_int(&p, r->status);
	pgp_text(&p, r->ordered ? "t" : "f");
	pgp_int(&p, now);
	pgp_int(&p, after);
	pgp_int(&p, r->limit > 0 ? r->limit : INT64_MAX);
	pgp_int(&p, end);
	if (run_planned(b, sql_replay_chunk, &p, &res) != HR_OK)
		return HR_EDB;
	*created = PQntuples(res);
	last = max_id(res);
	PQclear(res);
	if (single_int(b, "SELECT coalesce(max(seq), 0) FROM events", NULL, &newest) != HR_OK)
		return HR_EDB;
	*next_after = hr_replay_next_after(r, *created, last, end, newest);
	return HR_OK;
}

int
hr_pg_replay(
    struct hr_store_backend *b, const struct hr_replay *r, int64_t *created, int64_t *next_after)
{
	int64_t now = hr_time_now_us();

	*created = 0;
	*next_after = -1;
	/* Delivery ids in commit order, as ingest takes them: a replay that took
	 * its id while another node's batch held a lower one uncommitted went out
	 * first, and then both of an ordered session's deliveries were in flight. */
	if (pg_lock_events(b) != HR_OK)
		return HR_EDB;
	if (r->event_id != NULL) {
		if (pg_replay_event(b, r, now, created) != HR_OK)
			return HR_EDB;
	} else if (pg_replay_chunk(b, r, now, created, next_after) != HR_OK) {
		return HR_EDB;
	}
	if (*created > 0)
		b->notify_deliveries = true;
	return HR_OK;
}

/* A destination's pending deliveries given up (the API lets only one the
 * configuration no longer has be). */
int
hr_pg_discard(
    struct hr_store_backend *b, const struct hr_discard *d, int64_t *discarded, int64_t *next_after)
{
	struct pg_params p = { .n = 0 };
	PGresult *res;
	int64_t last = 0;

	pgp_text(&p, d->destination);
	pgp_int(&p, d->now_us);
	pgp_text(&p, d->reason);
	pgp_int(&p, d->after_id);
	pgp_int(&p, d->limit > 0 ? d->limit : INT64_MAX);
	/* A chunk: the destination's pending rows after $4, the first $5 by id
	 * (deliveries_dest_status, in order); planned each time, as a bulk one. */
	if (run_planned(b,
	        "UPDATE deliveries SET status = 2, updated_at = $2::bigint, locked_until = NULL,"
	        " locked_by = NULL, last_error = $3 WHERE id IN (SELECT id FROM deliveries"
	        " WHERE destination = $1 AND status = 0 AND id > $4::bigint ORDER BY id"
	        " LIMIT $5::bigint) RETURNING id",
	        &p, &res) != HR_OK)
		return HR_EDB;
	*discarded = PQntuples(res);
	last = max_id(res);
	PQclear(res);
	*next_after = hr_discard_next_after(d, *discarded, last);
	if (*discarded > 0)
		b->notify_deliveries = true;
	return HR_OK;
}

/* Keep the newest `keep` rejections but those acknowledged, which it leaves (the
 * store logs and counts what went), and those of this transaction (REJECTION_FLOOR). */
int
hr_pg_trim_rejections(struct hr_store_backend *b, unsigned keep, uint64_t *dropped)
{
	struct pg_params p = { .n = 0 };
	PGresult *r;

	*dropped = 0;
	pgp_int(&p, keep);
	if (pg_writer_run(b,
	        "DELETE FROM rejections WHERE seq IN (SELECT seq FROM rejections"
	        " WHERE NOT acknowledged ORDER BY seq DESC OFFSET $1::bigint)"
	        " AND (" REJECTION_FLOOR_NOW " IS NULL OR seq < " REJECTION_FLOOR_NOW "::bigint)",
	        &p, &r) != HR_OK)
		return HR_EDB;
	*dropped = strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return HR_OK;
}

/* SKIP LOCKED: two nodes expiring at once each take other keys, never wait. */
int
hr_pg_expire_dedup(struct hr_store_backend *b, int64_t now_us, unsigned max, unsigned *done)
{
	struct pg_params p = { .n = 0 };
	PGresult *r;

	*done = 0;
	pgp_int(&p, now_us);
	pgp_int(&p, max);
	if (pg_writer_run(b,
	        "DELETE FROM dedup WHERE (source, key) IN (SELECT source, key FROM dedup"
	        " WHERE expires_at <= $1::bigint LIMIT $2::bigint FOR UPDATE SKIP LOCKED)",
	        &p, &r) != HR_OK)
		return HR_EDB;
	*done = (unsigned)strtoul(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return HR_OK;
}

/*
 * The delivery counts' changes (schema 8) folded into their totals, `max` at
 * most. One node at a time: the others skip their turn rather than wait on the
 * totals' rows until this batch commits (the lock, taken in the statement's
 * first step, InitPlan: a statement of its own was a round trip more). The
 * totals are written in one order, so nothing else taking them can deadlock
 * with this. A fold alone (writer.c) takes its COMMIT along: one round trip.
 *
 * The changes go by ctid, planned at each fold: a TID scan once there are a
 * few thousand, a sequential scan below. Prepared, the fold kept the plan made
 * while a node's folds found a few changes each (its steady state), and a burst
 * (a discard, replay or prune of 100,000 deliveries) then tested every change
 * left against the fold's 4,096 ctids, each fold: 100,000 took 21.6 s instead
 * of under a second, on the writer (tests/pg/test_pg_plans.py CountFoldPlan).
 */
int
hr_pg_fold_counts(struct hr_store_backend *b, unsigned max, unsigned *done)
{
	struct pg_params p = { .n = 0 };
	struct pg_commit cm = { .sent = false };
	struct pg_pipe pp;
	PGresult *r = NULL;
	int rc;

	*done = 0;
	pgp_int(&p, max);
	pgp_int(&p, PG_LOCK_COUNTS);
	if (!pg_writer_pipe(b, &pp))
		return pg_close_pipe(b, &pp);
	pg_pipe_send_planned(&pp,
	    "WITH mine AS MATERIALIZED (SELECT pg_try_advisory_xact_lock($2::bigint) AS yes),"
	    " moved AS (DELETE FROM delivery_count_changes WHERE ctid = ANY (ARRAY ("
	    "SELECT ctid FROM delivery_count_changes WHERE (SELECT yes FROM mine)"
	    " LIMIT $1::bigint)) RETURNING destination, status, n),"
	    " folded AS (INSERT INTO delivery_counts AS c (destination, status, n)"
	    " SELECT destination, status, sum(n) FROM moved GROUP BY destination, status"
	    " ORDER BY destination, status"
	    " ON CONFLICT (destination, status) DO UPDATE SET n = c.n + excluded.n)"
	    " SELECT count(*) FROM moved",
	    &p);
	if (pg_commit_wanted(b))
		pg_commit_send(b, &pp, &cm);
	if (pg_pipe_sync(&pp) && (r = pg_pipe_next(&pp)) != NULL && cm.sent)
		pg_commit_read(&pp, &cm);
	rc = pg_commit_end(b, &cm, pg_close_pipe(b, &pp));
	if (r != NULL)
		*done = (unsigned)pgc_int(r, 0, 0);
	PQclear(r);
	return rc;
}

bool
pg_writer_pipe(struct hr_store_backend *b, struct pg_pipe *pp)
{
	if (!pg_pipe_open(pp, &b->wprep, b->w))
		return false;
	b->savepoint_with_begin = b->begin_pending && b->savepoint_pending;
	if (b->begin_pending) {
		b->begin_pending = false;
		pg_pipe_begin(pp);
	}
	if (b->release_pending) {
		b->release_pending = false;
		pg_pipe_control(pp, "RELEASE SAVEPOINT job");
	}
	if (b->savepoint_pending) {
		b->savepoint_pending = false;
		pg_pipe_control(pp, "SAVEPOINT job");
	}
	return true;
}

/* What is pending sent alone, for a statement that does not go through
 * pg_writer_run() (a pruning pass's, on the connection itself). */
int
pg_writer_flush(struct hr_store_backend *b)
{
	return pending(b) ? run_in_pipe(b, NULL, NULL, false, NULL) : HR_OK;
}

bool
pg_writer_reopen(struct hr_store_backend *b, const struct pg_pipe *pp)
{
	if (!pp->begin_lost || writer_conn(b) == NULL)
		return false;
	b->begin_pending = true;
	b->savepoint_pending = b->savepoint_with_begin; /* lost with it */
	b->events_locked = false;
	b->notify_events = b->notify_deliveries = false;
	b->timed_out_in_batch = false; /* that pipe's, on the connection given up */
	return true;
}

/* Closes `pp`; a failure that ran out of time is the batch's. */
int
pg_close_pipe(struct hr_store_backend *b, struct pg_pipe *pp)
{
	int rc = pg_pipe_close(pp);

	b->timed_out_in_batch |= rc != HR_OK && pg_timed_out();
	return rc;
}

/* ---- the transaction ---- */

/* The writer's connection, reconnected when lost (at most once a second). */
static PGconn *
writer_conn(struct hr_store_backend *b)
{
	struct hr_error err = { .field = "" };

	if (b->w != NULL && hr_pg_conn_alive(b->w))
		return b->w;
	PQfinish(b->w);
	b->w = NULL;
	if (hr_time_mono_us() < b->next_connect_us)
		return NULL;
	if ((b->w = hr_pg_connect(b, &err)) == NULL) {
		b->next_connect_us = hr_time_mono_us() + RECONNECT_US;
		hr_pg_set_reachable(b, err.msg);
		return NULL;
	}
	/* Nothing is prepared on a new connection, though malloc may hand it the
	 * address of the one just freed, by which the cache knows its connection. */
	b->wprep = (struct pg_prepared){ .conn = b->w };
	hr_pg_set_reachable(b, NULL);
	return b->w;
}

/* After a failure: a connection that is gone makes the database unreachable. */
static void
note_lost(struct hr_store_backend *b)
{
	if (b->w != NULL && PQstatus(b->w) != CONNECTION_OK)
		hr_pg_set_reachable(b, PQerrorMessage(b->w));
}

/*
 * The store begins a second transaction for a batch whose first one failed,
 * to retry its writes one by one. When the first failed because the
 * connection was lost, the batch fails whole instead (503 for its requests):
 * no reconnecting within a batch, as a write that waited on the lost
 * connection may be waiting on something that is still there. So it does when
 * a statement ran out of [storage] statement_timeout: what it waited for (a
 * lock, a standby) is not one write's fault, and each retry would wait as long
 * again, a batch of 50 taking 50 times the deadline.
 */
int
hr_pg_begin(struct hr_store_backend *b)
{
	b->events_locked = false;
	b->notify_events = b->notify_deliveries = false;
	b->commit_with_write = b->committed = false;
	b->savepoint_pending = b->release_pending = false;
	if (b->lost_in_batch || b->timed_out_in_batch || writer_conn(b) == NULL)
		return HR_EDB;
	/* Sent with the transaction's first statements: a round trip fewer. */
	b->begin_pending = true;
	return HR_OK;
}

/* A WARNING during COMMIT, kept for commit_tx(). */
static void
commit_warning(void *arg, const PGresult *res)
{
	char *warning = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (sev != NULL && strcmp(sev, "WARNING") == 0 && warning[0] == '\0')
		snprintf(warning, 200, "%s", msg != NULL ? msg : "(no message)");
}

bool
pg_commit_wanted(struct hr_store_backend *b)
{
	return b->commit_with_write && !b->committed;
}

void
pg_commit_send(struct hr_store_backend *b, struct pg_pipe *pp, struct pg_commit *cm)
{
	*cm = (struct pg_commit){ .sent = true };
	if (pp->failed || b->w == NULL)
		return;
	if (b->release_pending) { /* the last housekeeping step's */
		b->release_pending = false;
		pg_pipe_control(pp, "RELEASE SAVEPOINT job");
	}
	b->savepoint_pending = false; /* nothing ran under it */
	/* NOTIFY is sent at commit, and only if it commits: with it, no round trip. */
	if (b->notify_events)
		pg_pipe_send(pp, "SELECT pg_notify('" PG_CHANNEL_EVENTS "', '')", NULL);
	if (b->notify_deliveries)
		pg_pipe_send(pp, "SELECT pg_notify('" PG_CHANNEL_DELIVERIES "', '')", NULL);
	cm->notifies = (size_t)b->notify_events + b->notify_deliveries;
	pg_pipe_send(pp, "COMMIT", NULL);
}

void
pg_commit_read(struct pg_pipe *pp, struct pg_commit *cm)
{
	/* From here: a warning of a statement sent before (a run's row) is not the
	 * COMMIT's, and its notices came before its result, already read. */
	cm->before = PQsetNoticeReceiver(pp->c, commit_warning, cm->warning);
	if (pg_pipe_read_ok(pp, cm->notifies))
		cm->r = pg_pipe_next(pp);
}

int
pg_commit_end(struct hr_store_backend *b, struct pg_commit *cm, int rc)
{
	if (!cm->sent)
		return rc;
	if (b->w != NULL && cm->before != NULL)
		PQsetNoticeReceiver(b->w, cm->before, NULL);
	if (rc == HR_OK && (cm->r == NULL || strcmp(PQcmdStatus(cm->r), "COMMIT") != 0)) {
		log_warnx("store: the transaction was aborted by an earlier error: rolled back");
		rc = HR_EDB;
	} else if (rc == HR_OK && cm->warning[0] != '\0') {
		log_warnx(
		    "store: COMMIT warned \"%s\": the batch is not known durable, answered 503",
		    cm->warning);
		rc = HR_EDB;
	}
	/* A COMMIT that answered ended the transaction, whatever it said: nothing of the
	 * batch may be written again in another (it may be on disk), so it fails whole. */
	if (cm->r != NULL && rc != HR_OK)
		b->lost_in_batch = true;
	b->committed = rc == HR_OK;
	PQclear(cm->r);
	cm->r = NULL;
	return rc;
}

/*
 * Did COMMIT commit, durably? In a transaction a failed statement aborted (one
 * whose error the writer lets pass, such as expiring dedup keys), PostgreSQL
 * answers COMMIT with success and the tag ROLLBACK. And a COMMIT whose wait
 * for a synchronous standby was cancelled (pg_cancel_backend, a script ending
 * long queries) answers COMMIT too, with only a WARNING that the transaction
 * "might not have been replicated": the 2xx would promise a copy on the
 * standby that may not exist. Any WARNING during COMMIT fails the batch (503:
 * the sender sends again; a deduplicated source takes it as a duplicate).
 */
static int
commit_tx(struct hr_store_backend *b)
{
	struct pg_commit cm;
	struct pg_pipe pp;

	if (b->committed) /* with the transaction's last write, which said how it went */
		return HR_OK;
	if (b->begin_pending) { /* nothing was written: nothing to commit */
		b->begin_pending = false;
		return HR_OK;
	}
	if (!pg_pipe_open(&pp, &b->wprep, b->w))
		return pg_close_pipe(b, &pp);
	pg_commit_send(b, &pp, &cm);
	if (pg_pipe_sync(&pp))
		pg_commit_read(&pp, &cm);
	return pg_commit_end(b, &cm, pg_close_pipe(b, &pp));
}

/* Through pg_exec(), so with its deadline: a server may stop answering at any time. */
static void
rollback(struct hr_store_backend *b)
{
	if (b->w != NULL && PQstatus(b->w) == CONNECTION_OK)
		PQclear(pg_exec(b->w, "ROLLBACK", NULL));
}

/* HR_OK only once COMMIT answered: a COMMIT whose answer was lost is not known durable. */
/* The batch's last write takes the COMMIT (store_ops.h): over a network the
 * writer's last round trip was the COMMIT's alone, and a batch holds the
 * event order lock from its first statement to its COMMIT. */
void
hr_pg_commit_with_write(struct hr_store_backend *b)
{
	b->commit_with_write = true;
}

int
hr_pg_commit(struct hr_store_backend *b)
{
	int rc = commit_tx(b);

	b->commit_with_write = b->committed = false;
	if (rc == HR_OK)
		return HR_OK;
	rollback(b);
	note_lost(b);
	return HR_EDB;
}

void
hr_pg_rollback(struct hr_store_backend *b)
{
	b->commit_with_write = b->committed = false;
	b->savepoint_pending = b->release_pending = false;
	if (b->begin_pending) /* nothing was sent: nothing to undo */
		b->begin_pending = false;
	else
		rollback(b);
	/* Kept if set: a run's COMMIT that answered with a failure or a warning ended
	 * the transaction, and the batch may be on disk; the writer's retry one write
	 * at a time must find begin() refused. Overwritten here, it wrote the batch
	 * again (a duplicate attempt record) and waited a second statement_timeout. */
	b->lost_in_batch = b->lost_in_batch || b->w == NULL || PQstatus(b->w) != CONNECTION_OK;
	note_lost(b);
}

/* In a transaction, failed or not (a failed one is undone to its savepoint). */
bool
hr_pg_in_transaction(struct hr_store_backend *b)
{
	PGTransactionStatusType st;

	if (b->begin_pending)
		return true; /* begun, and nothing of it sent yet */
	if (b->w == NULL || PQstatus(b->w) != CONNECTION_OK)
		return false;
	st = PQtransactionStatus(b->w);
	return st == PQTRANS_INTRANS || st == PQTRANS_INERROR;
}

/* A write after one that ran out of time in this batch fails at once: what that
 * one waited for (a lock, a standby) is most likely still held, and each write of a
 * batch retried write by write would wait the whole deadline again. */
/* SAVEPOINT and RELEASE go with the statements after them (pg_writer_pipe()):
 * a write's savepoint on the retry of a failed batch, and each housekeeping
 * step's, were three round trips around its own. */
int
hr_pg_savepoint(struct hr_store_backend *b)
{
	if (b->timed_out_in_batch)
		return HR_EDB;
	b->savepoint_pending = true;
	return HR_OK;
}

int
hr_pg_release(struct hr_store_backend *b, bool undo)
{
	if (b->savepoint_pending) { /* nothing ran under it */
		b->savepoint_pending = false;
		return HR_OK;
	}
	if (undo) {
		/* Locks taken since the savepoint go with it: PG_LOCK_EVENTS is taken again. */
		b->events_locked = false;
		if (pg_writer_run(b, "ROLLBACK TO SAVEPOINT job", NULL, NULL) != HR_OK)
			return HR_EDB;
	}
	b->release_pending = true;
	return HR_OK;
}

/* A COMMIT that answered is on the server's disk; nothing of ours to look at.
 * Called after every batch: the next one may reconnect. */
bool
hr_pg_durable(struct hr_store_backend *b)
{
	b->lost_in_batch = b->timed_out_in_batch = false;
	return true;
}
