/*
 * sqlite_write.c - the SQLite engine's writes: one function per operation,
 * on the writer connection, inside the transaction the store's writer
 * thread opened (store_ops.h).
 *
 * Every statement is prepared once, persistent, and reset after each use.
 * A write that fails returns HR_EDB after logging the statement and
 * SQLite's message; the store rolls its transaction back and retries the
 * batch with a savepoint per write, so what a write reads is always its
 * input (never a result an earlier pass left behind).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/event.h"
#include "hr/log.h"
#include "hr/ratelimit.h"
#include "hr/store_sqlite.h"
#include "hr/timefmt.h"
#include "sqlite_int.h"

/* A room's status moves on with an event past created (it says something) that
 * is not older, by the events' own times, than the one that set it: Daily
 * retries what it could not deliver, and the meeting before's meeting.ended
 * came after the next meeting.started. An event without a time of its own
 * (PailFlow's session_complete) counts at when it came (hr_room_status_at()). Once Daily's events
 * set it (status_by 1), only they do (a bot's outcome is in its meeting's outcomes); a Daily event
 * older than a PailFlow status takes nothing over: a late retry of the meeting.started before a bot
 * ended the room made it started again. As on PostgreSQL. */
#define ROOM_STATUS_MOVES                                                                          \
	"excluded.status > 1 AND (excluded.status_by = 1 OR status_by IS NOT 1) AND"               \
	" (excluded.status_at IS NULL OR status_at IS NULL OR excluded.status_at >= status_at)"

static const char *const writer_sql[WS_COUNT] = {
	[WS_BEGIN] = "BEGIN IMMEDIATE",
	[WS_COMMIT] = "COMMIT",
	[WS_ROLLBACK] = "ROLLBACK",
	[WS_SAVEPOINT] = "SAVEPOINT job",
	[WS_RELEASE] = "RELEASE job",
	[WS_ROLLBACK_TO] = "ROLLBACK TO job",
	/* A session's status only moves forward; ended/failed are final but the
	 * latest of the two wins (a retried bot can fail, then complete). A room is
	 * reused by meeting after meeting: its latest event that says anything
	 * wins (ROOM_STATUS_MOVES), or a room whose first meeting ended stayed
	 * "ended" through every meeting after it. */
	[WS_UPSERT_SESSION] =
	    "INSERT INTO sessions (scope, key, provider, status, first_seen, last_seen,"
	    " event_count, duration, shutdown_reason, exit_reason, error_type, overall_score,"
	    " status_at, status_by, id) VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6, ?7, ?8, ?9, ?10,"
	    " ?11, ?12, " HR_SQL_NEXT_SESSION ")"
	    " ON CONFLICT (scope, key) DO UPDATE SET"
	    "  status = CASE WHEN scope = 'room' THEN CASE WHEN " ROOM_STATUS_MOVES
	    "   THEN excluded.status ELSE status END"
	    "   WHEN excluded.status >= 3 OR excluded.status > status"
	    "   THEN excluded.status ELSE status END,"
	    "  status_at = CASE WHEN scope = 'room' AND " ROOM_STATUS_MOVES
	    "   THEN coalesce(excluded.status_at, status_at) ELSE status_at END,"
	    "  status_by = CASE WHEN scope = 'room' AND " ROOM_STATUS_MOVES
	    "   THEN excluded.status_by ELSE status_by END,"
	    /* A room first made by a link (an AgentHuman session in it) has none of its
	     * own events yet: the first of them says whose room it is. */
	    "  provider = CASE WHEN scope = 'room' AND NOT EXISTS (SELECT 1 FROM events e"
	    "   INDEXED BY events_session_id WHERE e.session_id = sessions.id)"
	    "   THEN excluded.provider ELSE provider END,"
	    "  first_seen = min(first_seen, excluded.first_seen),"
	    "  last_seen = max(last_seen, excluded.last_seen),"
	    "  event_count = event_count + 1,"
	    "  duration = coalesce(excluded.duration, duration),"
	    "  shutdown_reason = coalesce(excluded.shutdown_reason, shutdown_reason),"
	    "  exit_reason = coalesce(excluded.exit_reason, exit_reason),"
	    "  error_type = coalesce(excluded.error_type, error_type),"
	    "  overall_score = coalesce(excluded.overall_score, overall_score)",
	/* The upsert's update where it would leave status and provider as they are:
	 * the session is not a room's (whose provider may change), and the event
	 * says nothing of its state (?9 = 0) or the state it already has. Naming no
	 * indexed column, it leaves the status and provider indexes alone, where the
	 * upsert deletes and inserts both entries. No row changed: the upsert. */
	[WS_TOUCH_SESSION] =
	    "UPDATE sessions SET first_seen = min(first_seen, ?3), last_seen = max(last_seen, ?3),"
	    " event_count = event_count + 1, duration = coalesce(?4, duration),"
	    " shutdown_reason = coalesce(?5, shutdown_reason),"
	    " exit_reason = coalesce(?6, exit_reason), error_type = coalesce(?7, error_type),"
	    " overall_score = coalesce(?8, overall_score)"
	    " WHERE scope = ?1 AND key = ?2 AND (?9 = 0 OR status = ?9)",
	/* The upsert's row, looked up again: a RETURNING clause would make SQLite
	 * buffer its output in an ephemeral table, opened, begun and closed for
	 * every event (~20k instructions, a sixth of the writer's work per event). */
	[WS_SESSION_ID] = "SELECT id FROM sessions WHERE scope = ?1 AND key = ?2",
	/* An event of another session linked to a room: the room's session
	 * exists and counts it, but its state and attributes are the room's own. */
	[WS_UPSERT_ROOM_LINK] =
	    "INSERT INTO sessions (scope, key, provider, status, first_seen, last_seen,"
	    " event_count, id) VALUES ('room', ?1, ?2, 1, ?3, ?3, 1, " HR_SQL_NEXT_SESSION ")"
	    " ON CONFLICT (scope, key) DO UPDATE SET"
	    "  first_seen = min(first_seen, excluded.first_seen),"
	    "  last_seen = max(last_seen, excluded.last_seen),"
	    "  event_count = event_count + 1",
	[WS_INSERT_EVENT] =
	    "INSERT INTO events (id, received_at, source, provider, kind, event_type, subtype,"
	    " scope, session_key, session_id, occurred_at, occurred_raw, remote_addr, headers, "
	    "body, query, problems, room, meeting, meeting_at, recording, facts,"
	    " recording_instance, facet, linked_room)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
	    " ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
	[WS_INSERT_REJECTION] =
	    "INSERT INTO rejections (id, received_at, source, remote_addr, kind, http_status,"
	    " problem, headers, body, query, acknowledged, seq)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, " HR_SQL_NEXT_REJECTION ")",
	/* Seqs have gaps (rejections pruned by age, per source; acknowledged ones,
	 * which are not counted): max(seq) - keep is a bound, not the cut. Past it,
	 * if anything is there, the cut is the (keep + 1)th newest of those counted. */
	[WS_REJECTIONS_PAST_BOUND] =
	    "SELECT 1 FROM rejections WHERE seq <= (SELECT max(seq) FROM rejections) - ?1 LIMIT 1",
	[WS_TRIM_REJECTIONS] =
	    "DELETE FROM rejections WHERE acknowledged = 0 AND seq <= (SELECT seq FROM rejections"
	    " WHERE acknowledged = 0 ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
	[WS_INSERT_DELIVERY] =
	    "INSERT INTO deliveries (event_seq, destination, order_key, status, created_at,"
	    " updated_at, next_attempt_at) VALUES (?1, ?2, ?3, 0, ?4, ?4, ?4)",
	/* Its delivery may be gone, discarded while the attempt ran and pruned
	 * since: the record is then done, not a failure to write again. */
	[WS_INSERT_ATTEMPT] = "INSERT INTO attempts (delivery_id, number, started_at, duration_us, "
	                      "http_status, error, response) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7"
	                      " WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ?1)",
	/* A delivery discarded while its attempt ran stays so, unless the attempt
	 * succeeded: the receiver has the webhook (HR_DLV_SUCCEEDED, 1; FAILED, 2).
	 * Its attempt counts all the same (a review: attempts 0 and no last_status
	 * beside attempt 1 in the log), as long as it is the newest one. */
	[WS_UPDATE_DELIVERY] =
	    "UPDATE deliveries SET status = CASE WHEN status = 0 OR ?2 = 1 THEN ?2 ELSE status END,"
	    " attempts = max(attempts, ?3), next_attempt_at = CASE WHEN status = 0 OR ?2 = 1"
	    " THEN coalesce(?4, next_attempt_at) ELSE next_attempt_at END, updated_at = ?5,"
	    " locked_until = NULL, last_status = ?6,"
	    " last_error = CASE WHEN status = 0 OR ?2 = 1 THEN ?7 ELSE last_error END"
	    " WHERE id = ?1 AND (status = 0 OR (status = 2 AND (?2 = 1 OR ?3 > attempts)))",
	[WS_LEASE] = "UPDATE deliveries SET locked_until = ?2 WHERE id = ?1 AND status = 0",
	[WS_SET_DESTINATION] =
	    "INSERT INTO destinations (name, disabled, disabled_reason, disabled_at)"
	    " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET disabled = "
	    "excluded.disabled,"
	    " disabled_reason = excluded.disabled_reason, disabled_at = excluded.disabled_at",
	[WS_REPLAY_EVENT] =
	    "INSERT INTO deliveries (event_seq, destination, order_key, status, created_at,"
	    " updated_at, next_attempt_at) SELECT seq, ?2, CASE WHEN ?3 AND session_key IS NOT NULL"
	    " THEN scope || ':' || session_key END, 0, ?4, ?4, ?4 FROM events WHERE id = ?1"
	    " AND pruned_at IS NULL", /* a pruned payload cannot be sent again */
	/* Events this destination had deliveries for, not already pending again
	 * (REPLAY_DESTINATION_EVENTS, walked by event here): the first ?8 (-1: all)
	 * of the events after ?7 up to ?9. */
	[WS_REPLAY_DESTINATION] =
	    "INSERT INTO deliveries (event_seq, destination, order_key, status, created_at,"
	    " updated_at, next_attempt_at) SELECT e.seq, ?1, CASE WHEN ?5 AND e.session_key IS NOT"
	    " NULL THEN e.scope || ':' || e.session_key END, 0, ?6, ?6, ?6 FROM events e"
	    " WHERE e.seq > ?7 AND e.seq <= ?9 AND EXISTS (SELECT 1 FROM deliveries d INDEXED BY"
	    " deliveries_event WHERE d.event_seq = e.seq AND d.destination = ?1 AND (?4 < 0 OR"
	    " d.status = ?4)) AND e.pruned_at IS NULL AND (?2 = 0 OR e.received_at >= ?2)"
	    " AND (?3 = 0 OR e.received_at < ?3) AND NOT EXISTS (SELECT 1 FROM deliveries p"
	    " INDEXED BY deliveries_event WHERE p.event_seq = e.seq AND p.destination = ?1 AND"
	    " p.status = 0) ORDER BY e.seq LIMIT ?8 RETURNING event_seq",
	[WS_REPLAY_FIRST] = "SELECT min(event_seq) FROM deliveries WHERE destination = ?1",
	[WS_LAST_EVENT] = "SELECT max(seq) FROM events",
	/* A chunk: the destination's pending rows after ?4, the first ?5 by id. */
	[WS_DISCARD] = "UPDATE deliveries SET status = 2, updated_at = ?2, locked_until = NULL,"
	               " last_error = ?3 WHERE id IN (SELECT id FROM deliveries INDEXED BY"
	               " deliveries_dest_status WHERE destination = ?1 AND status = 0 AND id > ?4"
	               " ORDER BY id LIMIT ?5) RETURNING id",
	[WS_DEDUP_FIND] =
	    "SELECT d.event_id, e.kind FROM dedup d LEFT JOIN events e ON e.id = d.event_id"
	    " WHERE d.source = ?1 AND d.key = ?2 AND d.expires_at > ?3",
	/* Claims the key unless it is held inside its window (?5: now): one probe of
	 * the primary key, and no change when the event is a duplicate. */
	[WS_DEDUP_PUT] = "INSERT INTO dedup (source, key, event_id, expires_at)"
	                 " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (source, key) DO UPDATE SET"
	                 " event_id = excluded.event_id, expires_at = excluded.expires_at"
	                 " WHERE expires_at <= ?5",
	[WS_DEDUP_PRUNE] = "DELETE FROM dedup WHERE (source, key) IN"
	                   " (SELECT source, key FROM dedup WHERE expires_at <= ?1 LIMIT ?2)",
	/* ?a=1&a=1 is one row: the filter asks whether the value was there */
	[WS_INSERT_EVENT_QUERY] =
	    "INSERT OR IGNORE INTO event_query (name, value, event_seq) VALUES (?1, ?2, ?3)",
	[WS_ACCEPTED_EVENT] = "SELECT accepted_event FROM rejections WHERE id = ?1",
	[WS_SET_ACCEPTED] = "UPDATE rejections SET accepted_event = ?2 WHERE id = ?1",
	/* sqlite_facets.c: a facet's id, and a new one (one writer: no race) */
	[WS_FACET_FIND] = "SELECT id FROM facets WHERE source = ?1 AND provider = ?2 AND kind = ?3"
	                  " AND event_type IS ?4 AND subtype IS ?5",
	[WS_FACET_ADD] = "INSERT INTO facets (source, provider, kind, event_type, subtype)"
	                 " VALUES (?1, ?2, ?3, ?4, ?5)",
	/* sqlite_rooms.c: a room's links, and its count of the events they bring */
	[WS_ROOM_OF_LINKS] = hr_sqlite_room_of_links_sql,
	[WS_ROOM_LINK_ADD] = hr_sqlite_room_link_add_sql,
	[WS_ROOM_ADOPT_MEETING] = ROOM_ADOPT("meeting"),
	[WS_ROOM_ADOPT_RECORDING] = ROOM_ADOPT("recording"),
	[WS_ROOM_ADOPT_INSTANCE] = ROOM_ADOPT_INSTANCE,
	[WS_ROOM_COUNT_ADOPTED] = hr_sqlite_room_count_adopted_sql,
};

/* A full disk fails every statement that writes: their lines in moderation
 * (ratelimit.h); the failure itself is always noted. */
static struct hr_logflood statement_failed_log = HR_LOGFLOOD_INIT;

void
hr_sqlite_log_failed(struct hr_store_backend *b, sqlite3_stmt *st)
{
	unsigned long held;

	if (hr_logflood_take(&statement_failed_log, hr_time_mono_us(), &held)) {
		/* The statement's head names what failed; its column list says nothing. */
		const char *sql = sqlite3_sql(st);
		size_t head = strcspn(sql, "(\n");
		int code = sqlite3_errcode(b->wdb);

		while (head > 0 && sql[head - 1] == ' ')
			head--;
		if (held > 0)
			log_warnx("store: %lu failed statements were not logged (a flood)", held);
		log_warnx("store: %s: %.*s: %s%s", b->path, (int)(head < 60 ? head : 60), sql,
		    sqlite3_errmsg(b->wdb),
		    code == SQLITE_BUSY       ? " (another process holds its write lock)"
		        : code == SQLITE_FULL ? " (free space on its file system)"
		                              : "");
	}
	hr_sqlite_note_failure(b, b->wdb);
}

/* One step of `st` for the integer it finds: *found whether a row came, *out
 * its first column (0 when none), either NULL when not wanted; reset after,
 * whatever happened; a failure logged. */
int
hr_sqlite_step_int(struct hr_store_backend *b, sqlite3_stmt *st, int64_t *out, bool *found)
{
	int rc = sqlite3_step(st);

	if (out != NULL)
		*out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (found != NULL)
		*found = rc == SQLITE_ROW;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return HR_OK;
	hr_sqlite_log_failed(b, st);
	return HR_EDB;
}

static int
step_done(struct hr_store_backend *b, sqlite3_stmt *st)
{
	return hr_sqlite_step_int(b, st, NULL, NULL);
}

int
hr_sqlite_step_done(struct hr_store_backend *b, sqlite3_stmt *st)
{
	return step_done(b, st);
}

static void
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void
bind_opt_double(sqlite3_stmt *st, int i, bool has, double v)
{
	if (has)
		sqlite3_bind_double(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

/* ---- the transaction ---- */

int
hr_sqlite_writer_prepare(struct hr_store_backend *b, struct hr_error *err)
{
	for (int i = 0; i < WS_COUNT; i++)
		if (sqlite3_prepare_v3(b->wdb, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		        &b->ws[i], NULL) != SQLITE_OK)
			return hr_sqlite_error(b->wdb, err, writer_sql[i]);
	return HR_OK;
}

void
hr_sqlite_writer_finalize(struct hr_store_backend *b)
{
	for (int i = 0; i < WS_COUNT; i++) {
		sqlite3_finalize(b->ws[i]);
		b->ws[i] = NULL;
	}
}

/* Once the file is gone, writing to it only loses what is written. */
int
hr_sqlite_begin(struct hr_store_backend *b)
{
	return b->gone ? HR_EDB : step_done(b, b->ws[WS_BEGIN]);
}

int
hr_sqlite_commit(struct hr_store_backend *b)
{
	if (step_done(b, b->ws[WS_COMMIT]) == HR_OK) {
		hr_sqlite_facets_committed(b);
		return HR_OK;
	}
	hr_sqlite_rollback(b);
	return HR_EDB;
}

void
hr_sqlite_rollback(struct hr_store_backend *b)
{
	if (!sqlite3_get_autocommit(b->wdb))
		(void)step_done(b, b->ws[WS_ROLLBACK]);
	hr_sqlite_facets_rolled_back(b, true);
	b->hold_stale = true; /* a pruning pass may have moved it */
}

bool
hr_sqlite_in_transaction(struct hr_store_backend *b)
{
	return !sqlite3_get_autocommit(b->wdb);
}

int
hr_sqlite_savepoint(struct hr_store_backend *b)
{
	return step_done(b, b->ws[WS_SAVEPOINT]);
}

int
hr_sqlite_release(struct hr_store_backend *b, bool undo)
{
	if (undo) {
		(void)step_done(b, b->ws[WS_ROLLBACK_TO]);
		hr_sqlite_facets_rolled_back(b, false);
		b->hold_stale = true;
	}
	return step_done(b, b->ws[WS_RELEASE]);
}

/* Committed into a file that was deleted or replaced meanwhile: durable
 * nowhere a restart would look. Checked after the commit, so a deletion
 * before it cannot slip through; from then on every write fails. */
bool
hr_sqlite_durable(struct hr_store_backend *b)
{
	if (!b->gone && !hr_sqlite_file_is_ours(b))
		b->gone = true;
	return !b->gone;
}

/* ---- events ---- */

/* A session's attributes an event may carry, as ?i..?i+4 (both statements). */
static void
bind_session_attrs(sqlite3_stmt *st, int i, const struct hr_summary *sum)
{
	bind_opt_double(st, i, sum->has_duration, sum->duration);
	bind_text(st, i + 1, sum->shutdown_reason);
	bind_text(st, i + 2, sum->exit_reason);
	bind_text(st, i + 3, sum->error_type);
	bind_opt_double(st, i + 4, sum->has_score, sum->overall_score);
}

/* The session's row when neither its status nor its provider changes (see
 * WS_TOUCH_SESSION); *touched: it did, else the upsert is to run. */
static int
touch_session(struct hr_store_backend *b, const struct hr_event_write *w, bool *touched)
{
	const struct hr_summary *sum = &w->ev->sum;
	sqlite3_stmt *st = b->ws[WS_TOUCH_SESSION];

	*touched = false;
	if (sum->scope == HR_SCOPE_ROOM)
		return HR_OK;
	bind_text(st, 1, hr_scope_name(sum->scope));
	bind_text(st, 2, sum->session_key);
	sqlite3_bind_int64(st, 3, w->req.received_us);
	bind_session_attrs(st, 4, sum);
	sqlite3_bind_int(st, 9, (int)sum->status);
	if (step_done(b, st) != HR_OK)
		return HR_EDB;
	*touched = sqlite3_changes(b->wdb) > 0;
	return HR_OK;
}

static int
upsert_session(struct hr_store_backend *b, const struct hr_event_write *w, int64_t *session_id)
{
	const struct hr_summary *sum = &w->ev->sum;
	sqlite3_stmt *st = b->ws[WS_UPSERT_SESSION];
	int status = sum->status == HR_SESS_NONE ? HR_SESS_CREATED : (int)sum->status;
	bool touched, found;

	if (touch_session(b, w, &touched) != HR_OK)
		return HR_EDB;
	if (!touched) {
		bind_text(st, 1, hr_scope_name(sum->scope));
		bind_text(st, 2, sum->session_key);
		bind_text(st, 3, hr_provider_name(w->ev->provider));
		sqlite3_bind_int(st, 4, status);
		sqlite3_bind_int64(st, 5, w->req.received_us);
		bind_session_attrs(st, 6, sum);
		if (sum->scope == HR_SCOPE_ROOM && status > HR_SESS_CREATED)
			sqlite3_bind_int64(st, 11,
			    hr_room_status_at(
			        sum->occurred.valid, sum->occurred.us, w->req.received_us));
		else
			sqlite3_bind_null(st, 11);
		if (hr_room_status_by_daily(sum->scope == HR_SCOPE_ROOM, status, w->ev->provider))
			sqlite3_bind_int(st, 12, 1);
		else
			sqlite3_bind_null(st, 12);
		if (step_done(b, st) != HR_OK)
			return HR_EDB;
	}
	st = b->ws[WS_SESSION_ID];
	bind_text(st, 1, hr_scope_name(sum->scope));
	bind_text(st, 2, sum->session_key);
	/* One step: the (scope, key) row is unique, and a second only found its end. */
	if (hr_sqlite_step_int(b, st, session_id, &found) != HR_OK || !found)
		return HR_EDB;
	return HR_OK;
}

/* The room's session, for an event that links to a room it is not scoped to:
 * one it names, or one it is on the timeline of through a meeting, a recording
 * or an instance alone (sqlite_rooms.c). */
static int
upsert_room_link(struct hr_store_backend *b, const char *room, const struct hr_event_write *w)
{
	sqlite3_stmt *st = b->ws[WS_UPSERT_ROOM_LINK];

	bind_text(st, 1, room);
	bind_text(st, 2, hr_provider_name(w->ev->provider));
	sqlite3_bind_int64(st, 3, w->req.received_us);
	return step_done(b, st);
}

/* The room columns of the event row (WS_INSERT_EVENT ?18..?23). */
static void
bind_room(sqlite3_stmt *st, const struct hr_event_write *w)
{
	const struct hr_summary *sum = &w->ev->sum;

	bind_text(st, 18, sum->room);
	bind_text(st, 19, sum->meeting_id);
	if (sum->meeting_at.valid)
		sqlite3_bind_int64(st, 20, sum->meeting_at.us);
	bind_text(st, 21, sum->recording_id);
	bind_text(st, 22, w->facts_json);
	bind_text(st, 23, sum->recording_instance);
}

/* The outbox: one row per matching destination, in the event's transaction. */
static int
insert_deliveries(struct hr_store_backend *b, const struct hr_event_write *w, int64_t event_seq,
    struct hr_store_result *r)
{
	sqlite3_stmt *st = b->ws[WS_INSERT_DELIVERY];
	char *order_key = NULL;
	int rc = w->ndestinations > 0 ? hr_summary_order_key(&w->ev->sum, &order_key) : HR_OK;

	for (size_t i = 0; i < w->ndestinations && rc == HR_OK; i++) {
		sqlite3_bind_int64(st, 1, event_seq);
		bind_text(st, 2, w->destinations[i]);
		bind_text(st, 3, w->ordered[i] ? order_key : NULL);
		sqlite3_bind_int64(st, 4, w->routed_us != 0 ? w->routed_us : w->req.received_us);
		if (step_done(b, st) != HR_OK)
			rc = HR_EDB;
	}
	free(order_key);
	if (rc != HR_OK)
		return rc;
	r->count = (int64_t)w->ndestinations;
	return HR_OK;
}

/*
 * A key seen inside its window makes this a duplicate: the result names the
 * first event and nothing is written. Otherwise the key is claimed for the
 * write's own id. The claim is tried first, and only a duplicate (no row
 * changed) reads whose the key is. The single writer makes the claim and the
 * read atomic, also within one batch.
 */
static int
claim_dedup_key(
    struct hr_store_backend *b, const struct hr_event_write *w, struct hr_store_result *r)
{
	sqlite3_stmt *st = b->ws[WS_DEDUP_PUT];
	int rc;

	bind_text(st, 1, w->req.source);
	bind_text(st, 2, w->dedup_key);
	bind_text(st, 3, w->req.id);
	sqlite3_bind_int64(st, 4, w->req.received_us + w->dedup_window_us);
	sqlite3_bind_int64(st, 5, w->req.received_us);
	if (step_done(b, st) != HR_OK)
		return HR_EDB;
	if (sqlite3_changes(b->wdb) > 0)
		return HR_OK;
	st = b->ws[WS_DEDUP_FIND];
	bind_text(st, 1, w->req.source);
	bind_text(st, 2, w->dedup_key);
	sqlite3_bind_int64(st, 3, w->req.received_us);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *kind = hr_sqlite_text(st, 1);

		snprintf(r->id, sizeof(r->id), "%s", hr_sqlite_text(st, 0));
		snprintf(r->kind, sizeof(r->kind), "%s", kind != NULL ? kind : "");
		r->duplicate = true;
	}
	if (step_done(b, st) != HR_OK)
		return HR_EDB;
	if (r->duplicate)
		return HR_OK;
	/* Held and unexpired, or the claim would have changed it. */
	log_warnx("store: dedup key of %s neither claimed nor held", w->req.source);
	return HR_EDB;
}

/* One row per query value (hr_query_indexed): a filter on one is an index probe. */
static int
insert_query(struct hr_store_backend *b, const json_t *query, int64_t event_seq)
{
	sqlite3_stmt *st = b->ws[WS_INSERT_EVENT_QUERY];
	const char *name;
	json_t *v, *item;
	size_t i;

	json_object_foreach((json_t *)query, name, v)
	{
		json_t *one[1] = { v };
		size_t n = json_is_array(v) ? json_array_size(v) : 1;

		for (i = 0; i < n; i++) {
			item = json_is_array(v) ? json_array_get(v, i) : one[0];
			if (!hr_query_indexed(name, item))
				continue;
			bind_text(st, 1, name);
			bind_text(st, 2, json_string_value(item));
			sqlite3_bind_int64(st, 3, event_seq);
			if (step_done(b, st) != HR_OK)
				return HR_EDB;
		}
	}
	return HR_OK;
}

/* The facet of an event: the values of its columns ?3..?7. */
static struct hr_facet_key
facet_key(const struct hr_event_write *w)
{
	const struct hr_event *ev = w->ev;

	return (struct hr_facet_key){
		.source = w->req.source,
		.provider = ev->provider == HR_PROVIDER_AUTO ? "" : hr_provider_name(ev->provider),
		.kind = hr_kind_name(ev->kind),
		.event_type = ev->sum.event_type,
		.subtype = ev->sum.subtype,
	};
}

/* The columns of the event row itself (WS_INSERT_EVENT ?1..?17, then the room's
 * and ?24, its facet). */
static void
bind_event(sqlite3_stmt *st, const struct hr_event_write *w, const struct hr_facet_key *k,
    bool has_session, int64_t session_id)
{
	const struct hr_summary *sum = &w->ev->sum;

	bind_text(st, 1, w->req.id);
	sqlite3_bind_int64(st, 2, w->req.received_us);
	bind_text(st, 3, k->source);
	bind_text(st, 4, k->provider);
	bind_text(st, 5, k->kind);
	bind_text(st, 6, k->event_type);
	bind_text(st, 7, k->subtype);
	bind_text(st, 8, has_session ? hr_scope_name(sum->scope) : NULL);
	bind_text(st, 9, has_session ? sum->session_key : NULL);
	if (has_session)
		sqlite3_bind_int64(st, 10, session_id);
	if (sum->occurred.valid)
		sqlite3_bind_int64(st, 11, sum->occurred.us);
	bind_text(
	    st, 12, hr_time_raw(&sum->occurred)[0] != '\0' ? hr_time_raw(&sum->occurred) : NULL);
	bind_text(st, 13, w->req.remote_addr);
	bind_text(st, 14, w->req.headers_json != NULL ? w->req.headers_json : "{}");
	sqlite3_bind_blob64(st, 15, w->req.body, w->req.body_len, SQLITE_STATIC);
	bind_text(st, 16, w->req.query_json);
	bind_text(st, 17, w->problems_json);
	bind_room(st, w);
}

/* The event row, its session and its deliveries (no dedup: the caller's). */
static int
insert_event_row(
    struct hr_store_backend *b, const struct hr_event_write *w, struct hr_store_result *r)
{
	const struct hr_summary *sum = &w->ev->sum;
	const struct hr_facet_key key = facet_key(w);
	sqlite3_stmt *st = b->ws[WS_INSERT_EVENT];
	int64_t session_id = 0, seq, facet;
	bool has_session = sum->session_key != NULL && sum->scope != HR_SCOPE_NONE;
	char *linked = NULL;
	int rc;

	/* An accepted rejection keeps its refusal's time, a slow request its start:
	 * its source's max_size walk may be past it (sqlite_shrink.c). */
	if (w->req.received_us < b->size_walk_high)
		hr_sqlite_size_walk_back(b, w->req.source, w->req.received_us);
	if (has_session && upsert_session(b, w, &session_id) != HR_OK)
		return HR_EDB;
	if (sum->room != NULL && sum->scope != HR_SCOPE_ROOM &&
	    upsert_room_link(b, sum->room, w) != HR_OK)
		return HR_EDB;
	if (hr_sqlite_room_of_links(b, sum, w->req.received_us, &linked) != HR_OK)
		return HR_EDB;
	rc = linked != NULL ? upsert_room_link(b, linked, w) : HR_OK;
	if (rc == HR_OK)
		rc = hr_sqlite_facet_of(b, &key, &facet);
	if (rc == HR_OK) {
		bind_event(st, w, &key, has_session, session_id);
		sqlite3_bind_int64(st, 24, facet);
		bind_text(st, 25, linked);
		rc = step_done(b, st);
	}
	free(linked);
	if (rc != HR_OK)
		return HR_EDB;
	seq = sqlite3_last_insert_rowid(b->wdb);
	if (hr_sqlite_room_links_add(b, sum, w->req.received_us) != HR_OK)
		return HR_EDB;
	if (w->query != NULL && insert_query(b, (const json_t *)w->query, seq) != HR_OK)
		return HR_EDB;
	return insert_deliveries(b, w, seq, r);
}

static int
insert_event(struct hr_store_backend *b, const struct hr_event_write *w, struct hr_store_result *r)
{
	snprintf(r->id, sizeof(r->id), "%s", w->req.id);
	if (w->dedup_key != NULL && claim_dedup_key(b, w, r) != HR_OK)
		return HR_EDB;
	if (r->duplicate)
		return HR_OK;
	return insert_event_row(b, w, r);
}

/* SQLite gains nothing from a multi-row insert: the statements are prepared, so
 * the batch is a loop; the transaction around it is what is shared. */
int
hr_sqlite_put_events(struct hr_store_backend *b, const struct hr_event_write *const *in,
    struct hr_store_result *const *res, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (insert_event(b, in[i], res[i]) != HR_OK)
			return HR_EDB;
	return HR_OK;
}

/*
 * A rejection accepted: its event, once. The check and the insert share the
 * transaction and there is one writer, so two accepts racing store one event
 * and both learn its id.
 */
int
hr_sqlite_accept_rejection(
    struct hr_store_backend *b, const struct hr_accept_write *a, struct hr_store_result *r)
{
	sqlite3_stmt *st = b->ws[WS_ACCEPTED_EVENT];
	int rc;

	snprintf(r->id, sizeof(r->id), "%s", a->event.req.id);
	bind_text(st, 1, a->rejection_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r->count = -1; /* pruned since the caller read it */
	} else if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		snprintf(r->id, sizeof(r->id), "%s", hr_sqlite_text(st, 0));
		r->duplicate = true;
	}
	if (step_done(b, st) != HR_OK)
		return HR_EDB;
	if (r->duplicate || r->count < 0)
		return HR_OK;
	if (insert_event_row(b, &a->event, r) != HR_OK)
		return HR_EDB;
	st = b->ws[WS_SET_ACCEPTED];
	bind_text(st, 1, a->rejection_id);
	bind_text(st, 2, a->event.req.id);
	return step_done(b, st);
}

/* ---- rejections, deliveries, destinations ---- */

int
hr_sqlite_put_rejection(struct hr_store_backend *b, const struct hr_rejection_write *w)
{
	sqlite3_stmt *st = b->ws[WS_INSERT_REJECTION];

	bind_text(st, 1, w->req.id);
	sqlite3_bind_int64(st, 2, w->req.received_us);
	bind_text(st, 3, w->req.source);
	bind_text(st, 4, w->req.remote_addr);
	bind_text(st, 5, w->kind_name);
	sqlite3_bind_int(st, 6, w->http_status);
	bind_text(st, 7, w->problem_json != NULL ? w->problem_json : "{}");
	bind_text(st, 8, w->req.headers_json != NULL ? w->req.headers_json : "{}");
	sqlite3_bind_blob64(st, 9, w->req.body, w->req.body_len, SQLITE_STATIC);
	bind_text(st, 10, w->req.query_json);
	sqlite3_bind_int(st, 11, w->acknowledged);
	return step_done(b, st);
}

/* The sends libcurl repeated on its own within the attempt, each logged under the
 * attempt's number as a send that got no answer. */
static int
record_resends(struct hr_store_backend *b, const struct hr_attempt *a)
{
	sqlite3_stmt *st = b->ws[WS_INSERT_ATTEMPT];

	for (int i = a->resends; i > 0; i--) {
		sqlite3_bind_int64(st, 1, a->delivery_id);
		sqlite3_bind_int(st, 2, a->number);
		sqlite3_bind_int64(st, 3, a->started_us);
		sqlite3_bind_int64(st, 4, 0);
		bind_text(st, 6,
		    "the reused connection closed before any answer; sent again on a new one");
		if (step_done(b, st) != HR_OK)
			return HR_EDB;
	}
	return HR_OK;
}

static int
record_attempt(struct hr_store_backend *b, const struct hr_attempt *a)
{
	sqlite3_stmt *st = b->ws[WS_INSERT_ATTEMPT];

	if (record_resends(b, a) != HR_OK)
		return HR_EDB;
	sqlite3_bind_int64(st, 1, a->delivery_id);
	sqlite3_bind_int(st, 2, a->number);
	sqlite3_bind_int64(st, 3, a->started_us);
	sqlite3_bind_int64(st, 4, a->duration_us);
	if (a->http_status > 0)
		sqlite3_bind_int(st, 5, a->http_status);
	bind_text(st, 6, a->error);
	if (a->response != NULL)
		sqlite3_bind_blob64(st, 7, a->response, a->response_len, SQLITE_STATIC);
	if (step_done(b, st) != HR_OK)
		return HR_EDB;
	st = b->ws[WS_UPDATE_DELIVERY];
	sqlite3_bind_int64(st, 1, a->delivery_id);
	sqlite3_bind_int(st, 2, (int)a->new_status);
	sqlite3_bind_int(st, 3, a->number);
	if (a->new_status == HR_DLV_PENDING)
		sqlite3_bind_int64(st, 4, a->next_attempt_us);
	sqlite3_bind_int64(st, 5, a->started_us + a->duration_us);
	if (a->http_status > 0)
		sqlite3_bind_int(st, 6, a->http_status);
	bind_text(st, 7, a->error);
	return step_done(b, st);
}

int
hr_sqlite_record_attempts(struct hr_store_backend *b, const struct hr_attempt *const *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (record_attempt(b, in[i]) != HR_OK)
			return HR_EDB;
	return HR_OK;
}

int
hr_sqlite_lease(struct hr_store_backend *b, const struct hr_lease *l)
{
	sqlite3_stmt *st = b->ws[WS_LEASE];

	for (size_t i = 0; i < l->n; i++) {
		sqlite3_bind_int64(st, 1, l->ids[i]);
		sqlite3_bind_int64(st, 2, l->until_us);
		if (step_done(b, st) != HR_OK)
			return HR_EDB;
	}
	return HR_OK;
}

/*
 * store_ops.h, probe_write: the file's first page written again with the
 * user_version it holds. Only while writes fail, so prepared each time. That
 * page fits where an event's do not: on a nearly full disk (the WAL reused,
 * not grown) it committed while every webhook was answered 503, and the log
 * said "writes commit again" after each (review R9). It passes only with 1 MiB
 * free on the file system too, room for a batch of webhooks of usual sizes
 * (4 MiB kept a small volume with room failed; a webhook that commits clears
 * the failure whatever the room).
 */
#define PROBE_ROOM (UINT64_C(1) << 20)
int
hr_sqlite_probe_write(struct hr_store_backend *b)
{
	char sql[48];
	uint64_t room = UINT64_MAX;

	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", hr_store_sqlite_schema_version());
	if (hr_sqlite_exec(b->wdb, sql, NULL) != HR_OK)
		return HR_EDB;
	return hr_sqlite_disk_free(b, &room) == HR_OK && room < PROBE_ROOM ? HR_EDB : HR_OK;
}

int
hr_sqlite_set_destination(struct hr_store_backend *b, const struct hr_destination_state *d)
{
	sqlite3_stmt *st = b->ws[WS_SET_DESTINATION];

	bind_text(st, 1, d->name);
	sqlite3_bind_int(st, 2, d->disabled);
	bind_text(st, 3, d->disabled ? d->reason : NULL);
	/* Enabled too: a node's read-back tells a later write of another's from its own
	 * write that did not land (forward_delivery.c, save_state). */
	sqlite3_bind_int64(st, 4, d->set_us);
	return step_done(b, st);
}

/* The one integer `ws` finds (0: none, or NULL), with `arg` as ?1 when given. */
static int
single_int(struct hr_store_backend *b, int ws, const char *arg, int64_t *out)
{
	sqlite3_stmt *st = b->ws[ws];

	if (arg != NULL)
		bind_text(st, 1, arg);
	return hr_sqlite_step_int(b, st, out, NULL);
}

/* Run `st`, which returns an id per row it changed: *n of them, *max the
 * greatest. Reset after, whatever the outcome. */
static int
step_ids(struct hr_store_backend *b, sqlite3_stmt *st, int64_t *n, int64_t *max)
{
	int rc;

	*n = *max = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);

		(*n)++;
		if (id > *max)
			*max = id;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return HR_OK;
	hr_sqlite_log_failed(b, st);
	return HR_EDB;
}

/* A destination's replay, one chunk (hr_sqlite_replay). */
static int
replay_chunk(struct hr_store_backend *b, const struct hr_replay *r, int64_t now, int64_t *created,
    int64_t *next_after)
{
	int64_t after = r->after_seq, first = 0, end, last = 0, newest = 0;
	sqlite3_stmt *st;
	int rc;

	if (r->limit > 0 && after == 0) {
		/* The first chunk starts at the destination's first event, not at the
		 * first event stored: a walk through windows of other events, each a
		 * commit, would come first. */
		if ((rc = single_int(b, WS_REPLAY_FIRST, r->destination, &first)) != HR_OK)
			return rc;
		if (first == 0) {
			*next_after = -1; /* the destination never had a delivery */
			return HR_OK;
		}
		after = first - 1;
	}
	end = hr_replay_window_end(r, after);
	st = b->ws[WS_REPLAY_DESTINATION];
	bind_text(st, 1, r->destination);
	sqlite3_bind_int64(st, 2, r->since_us);
	sqlite3_bind_int64(st, 3, r->until_us);
	sqlite3_bind_int(st, 4, r->status);
	sqlite3_bind_int(st, 5, r->ordered);
	sqlite3_bind_int64(st, 6, now);
	sqlite3_bind_int64(st, 7, after);
	sqlite3_bind_int64(st, 8, r->limit > 0 ? r->limit : -1);
	sqlite3_bind_int64(st, 9, end);
	if ((rc = step_ids(b, st, created, &last)) != HR_OK)
		return rc;
	if ((rc = single_int(b, WS_LAST_EVENT, NULL, &newest)) != HR_OK)
		return rc;
	*next_after = hr_replay_next_after(r, *created, last, end, newest);
	return HR_OK;
}

int
hr_sqlite_replay(
    struct hr_store_backend *b, const struct hr_replay *r, int64_t *created, int64_t *next_after)
{
	int64_t now = hr_time_now_us();
	sqlite3_stmt *st;

	*created = 0;
	*next_after = -1;
	if (r->event_id != NULL) {
		st = b->ws[WS_REPLAY_EVENT];
		for (size_t i = 0; i < r->ndestinations; i++) {
			bind_text(st, 1, r->event_id);
			bind_text(st, 2, r->destinations[i]);
			sqlite3_bind_int(st, 3, hr_replay_ordered(r, i));
			sqlite3_bind_int64(st, 4, now);
			if (step_done(b, st) != HR_OK)
				return HR_EDB;
			*created += sqlite3_changes(b->wdb);
		}
		return HR_OK;
	}
	return replay_chunk(b, r, now, created, next_after);
}

int
hr_sqlite_discard(
    struct hr_store_backend *b, const struct hr_discard *d, int64_t *discarded, int64_t *next_after)
{
	sqlite3_stmt *st = b->ws[WS_DISCARD];
	int64_t last;

	bind_text(st, 1, d->destination);
	sqlite3_bind_int64(st, 2, d->now_us);
	bind_text(st, 3, d->reason);
	sqlite3_bind_int64(st, 4, d->after_id);
	sqlite3_bind_int64(st, 5, d->limit > 0 ? d->limit : -1);
	if (step_ids(b, st, discarded, &last) != HR_OK)
		return HR_EDB;
	*next_after = hr_discard_next_after(d, *discarded, last);
	return HR_OK;
}

/* ---- housekeeping ---- */

/* Nothing to fold: one writer keeps the counts whole (schema 12's triggers). */
int
hr_sqlite_fold_counts(struct hr_store_backend *b, unsigned max, unsigned *done)
{
	(void)b;
	(void)max;
	*done = 0;
	return HR_OK;
}

int
hr_sqlite_expire_dedup(struct hr_store_backend *b, int64_t now_us, unsigned max, unsigned *done)
{
	sqlite3_stmt *st = b->ws[WS_DEDUP_PRUNE];
	int rc;

	sqlite3_bind_int64(st, 1, now_us);
	sqlite3_bind_int64(st, 2, max);
	rc = step_done(b, st);
	*done = rc == HR_OK ? (unsigned)sqlite3_changes(b->wdb) : 0;
	return rc;
}

int
hr_sqlite_trim_rejections(struct hr_store_backend *b, unsigned keep, uint64_t *dropped)
{
	sqlite3_stmt *st = b->ws[WS_REJECTIONS_PAST_BOUND];
	int rc;

	*dropped = 0;
	sqlite3_bind_int64(st, 1, keep);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return HR_OK; /* at most `keep` rows: nothing to walk */
	if (rc != SQLITE_ROW) {
		hr_sqlite_log_failed(b, st);
		return HR_EDB;
	}
	st = b->ws[WS_TRIM_REJECTIONS];
	sqlite3_bind_int64(st, 1, keep);
	rc = step_done(b, st);
	*dropped = rc == HR_OK ? (uint64_t)sqlite3_changes(b->wdb) : 0;
	return rc;
}
