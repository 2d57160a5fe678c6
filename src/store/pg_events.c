/*
 * pg_events.c - the PostgreSQL engine's event writes: a batch's run of events,
 * and an accepted rejection's event, in the writer's transaction.
 *
 * A run costs one round trip, not a few per event (pg_pipe.c): the event
 * order lock, the dedup claims and every row, each event's rows guarded by
 * its claim (WON), so the rows need not wait for the claims' answers; the
 * COMMIT too when nothing follows the run. So a row refers to what the same
 * run wrote before it by its keys (the session by scope and key, the event by
 * its id), not by ids read back. What two nodes writing at once rely on (pg_write.c): the lock is
 * taken before the first claim, so events.seq grows in commit order across nodes and claims and
 * session upserts of two nodes queue in one order.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/event.h"
#include "pg_int.h"

static const char sql_lock_events[] = "SELECT pg_advisory_xact_lock($1::bigint)";

int
pg_lock_events(struct hr_store_backend *b)
{
	struct pg_params p = { .n = 0 };

	if (b->events_locked)
		return HR_OK;
	pgp_int(&p, PG_LOCK_EVENTS);
	if (pg_writer_run(b, sql_lock_events, &p, NULL) != HR_OK)
		return HR_EDB;
	b->events_locked = true;
	return HR_OK;
}

/* The lock as the next statement of `pp`, unless the transaction holds it
 * already; true if sent: its result comes next (read_lock). */
static bool
send_lock(struct hr_store_backend *b, struct pg_pipe *pp)
{
	struct pg_params p = { .n = 0 };

	if (b->events_locked)
		return false;
	pgp_int(&p, PG_LOCK_EVENTS);
	pg_pipe_send(pp, sql_lock_events, &p);
	return true;
}

static bool
read_lock(struct hr_store_backend *b, struct pg_pipe *pp, bool sent)
{
	if (sent && !pg_pipe_next_ok(pp))
		return false;
	b->events_locked = true;
	return true;
}

/* An event with a dedup key is written only if it won its claim, sent before it
 * in the same pipe (send_claim): its rows go without waiting for the claims'
 * answers. The guard's parameters are the claim's source, key and event id
 * (pgp_claim). An event without a key has its statements without the guard,
 * an INSERT ... VALUES: INSERT ... SELECT ... WHERE cost the server a tenth
 * more per event. */
#define WON(s, k, id)                                                                              \
	" WHERE EXISTS (SELECT 1 FROM dedup WHERE source = " s " AND key = " k                     \
	" AND event_id = " id ")"

/* A session's status only moves forward; ended/failed are final but the latest
 * of the two wins (a retried bot can fail, then complete); a room's latest
 * event that says anything wins (meeting after meeting). As in SQLite. */
#define SESSION_INSERT                                                                             \
	"INSERT INTO sessions AS s (scope, key, provider, status, first_seen, last_seen,"          \
	" event_count, duration, shutdown_reason, exit_reason, error_type, overall_score,"         \
	" status_at, status_by)"
/* What any event says of its session: it was seen then, once more. */
#define SESSION_SEEN                                                                               \
	"  first_seen = least(s.first_seen, excluded.first_seen),"                                 \
	"  last_seen = greatest(s.last_seen, excluded.last_seen),"                                 \
	"  event_count = s.event_count + 1"
#define SESSION_VALUES                                                                             \
	"$1, $2, $3, $4::integer, $5::bigint, $5::bigint, 1, $6::double precision, $7, $8, $9,"    \
	" $10::double precision, $11::bigint, $12::integer"
/* A room's status moves on past created with an event that says more and is
 * not older, by the events' own times, than the one that set it (a Daily retry
 * of the meeting before's meeting.ended comes late), and once Daily's events set
 * it, only by theirs; a Daily event older than a PailFlow status takes nothing
 * over (a late retry of a meeting.started reopened a room its bot ended). A room
 * first made by a link has none of its own events yet: the first says whose room
 * it is. As in SQLite (sqlite_write.c). */
#define ROOM_STATUS_MOVES                                                                          \
	"excluded.status > 1 AND (excluded.status_by = 1 OR s.status_by IS DISTINCT FROM 1) AND"   \
	" (excluded.status_at IS NULL OR s.status_at IS NULL OR excluded.status_at >= "            \
	"s.status_at)"
#define SESSION_UPSERT                                                                             \
	" ON CONFLICT (scope, key) DO UPDATE SET"                                                  \
	"  status = CASE WHEN s.scope = 'room' THEN CASE WHEN " ROOM_STATUS_MOVES                  \
	"   THEN excluded.status ELSE s.status END"                                                \
	"   WHEN excluded.status >= 3 OR excluded.status > s.status"                               \
	"   THEN excluded.status ELSE s.status END,"                                               \
	"  status_at = CASE WHEN s.scope = 'room' AND " ROOM_STATUS_MOVES                          \
	"   THEN coalesce(excluded.status_at, s.status_at) ELSE s.status_at END,"                  \
	"  status_by = CASE WHEN s.scope = 'room' AND " ROOM_STATUS_MOVES                          \
	"   THEN excluded.status_by ELSE s.status_by END,"                                         \
	"  provider = CASE WHEN s.scope = 'room' AND NOT EXISTS (SELECT 1 FROM events e"           \
	"   WHERE e.session_id = s.id) THEN excluded.provider ELSE s.provider END," SESSION_SEEN   \
	","                                                                                        \
	"  duration = coalesce(excluded.duration, s.duration),"                                    \
	"  shutdown_reason = coalesce(excluded.shutdown_reason, s.shutdown_reason),"               \
	"  exit_reason = coalesce(excluded.exit_reason, s.exit_reason),"                           \
	"  error_type = coalesce(excluded.error_type, s.error_type),"                              \
	"  overall_score = coalesce(excluded.overall_score, s.overall_score)"

/* [guarded]: for an event with a dedup key (WON). */
static const char *const sql_upsert_session[2] = {
	SESSION_INSERT " VALUES (" SESSION_VALUES ")" SESSION_UPSERT,
	SESSION_INSERT " SELECT " SESSION_VALUES WON("$13", "$14", "$15") SESSION_UPSERT,
};

/* The claim the guard (WON) looks for, when `claimed` (the caller sent it before
 * in the same pipe); true if so: the statement is the guarded one. A key alone
 * does not make it: a guard without its claim would drop the event's rows. */
static bool
pgp_claim(struct pg_params *p, const struct hr_event_write *w, bool claimed)
{
	if (!claimed || w->dedup_key == NULL)
		return false;
	pgp_text(p, w->req.source);
	pgp_text(p, w->dedup_key);
	pgp_text(p, w->req.id);
	return true;
}

static void
send_session(struct pg_pipe *pp, const struct hr_event_write *w, bool claimed)
{
	const struct hr_summary *sum = &w->ev->sum;
	struct pg_params p = { .n = 0 };
	int status = sum->status == HR_SESS_NONE ? HR_SESS_CREATED : (int)sum->status;

	pgp_text(&p, hr_scope_name(sum->scope));
	pgp_text(&p, sum->session_key);
	pgp_text(&p, hr_provider_name(w->ev->provider));
	pgp_int(&p, status);
	pgp_int(&p, w->req.received_us);
	if (sum->has_duration)
		pgp_double(&p, sum->duration);
	else
		pgp_null(&p);
	pgp_text_or_null(&p, sum->shutdown_reason);
	pgp_text_or_null(&p, sum->exit_reason);
	pgp_text_or_null(&p, sum->error_type);
	if (sum->has_score)
		pgp_double(&p, sum->overall_score);
	else
		pgp_null(&p);
	if (sum->scope == HR_SCOPE_ROOM && status > HR_SESS_CREATED)
		pgp_int(&p,
		    hr_room_status_at(sum->occurred.valid, sum->occurred.us, w->req.received_us));
	else
		pgp_null(&p);
	if (hr_room_status_by_daily(sum->scope == HR_SCOPE_ROOM, status, w->ev->provider))
		pgp_int(&p, 1);
	else
		pgp_null(&p);
	pg_pipe_send(pp, sql_upsert_session[pgp_claim(&p, w, claimed)], &p);
}

#define ROOM_LINK_INSERT                                                                           \
	"INSERT INTO sessions AS s (scope, key, provider, status, first_seen, last_seen,"          \
	" event_count)"
#define ROOM_LINK_VALUES "'room', $1, $2, 1, $3::bigint, $3::bigint, 1"
#define ROOM_LINK_UPSERT " ON CONFLICT (scope, key) DO UPDATE SET" SESSION_SEEN
static const char *const sql_room_link[2] = {
	ROOM_LINK_INSERT " VALUES (" ROOM_LINK_VALUES ")" ROOM_LINK_UPSERT,
	ROOM_LINK_INSERT " SELECT " ROOM_LINK_VALUES WON("$4", "$5", "$6") ROOM_LINK_UPSERT,
};

/* The room's session, for an event that links to a room it is not scoped to. */
static void
send_room_link(struct pg_pipe *pp, const struct hr_event_write *w, bool claimed)
{
	struct pg_params p = { .n = 0 };

	pgp_text(&p, w->ev->sum.room);
	pgp_text(&p, hr_provider_name(w->ev->provider));
	pgp_int(&p, w->req.received_us);
	pg_pipe_send(pp, sql_room_link[pgp_claim(&p, w, claimed)], &p);
}

/*
 * A room counts the events on its timeline through a meeting, a recording or
 * an instance alone (a Daily transcript names only its meeting), as
 * sqlite_rooms.c tells: room_links keeps the room each was last named with,
 * events.linked_room the room such an event was counted toward, once. An event
 * that names no room but links is counted toward the room of its meeting, else
 * recording, else instance, while that room stores an event naming it (the
 * timeline's rule; an instance as HR_SQL_ROOM_INSTANCE_HELD says); each room's
 * event that names a link counts the events stored before it that name the
 * link and were counted nowhere. Each statement finds its event by id: none
 * when the event lost its claim (WON), and then it does nothing.
 */
static const char sql_count_linked[] =
    "WITH r AS (SELECT room FROM room_links l WHERE kind = 1 AND value = $2 AND EXISTS"
    " (SELECT 1 FROM events WHERE room = l.room AND meeting = l.value)"
    " UNION ALL SELECT room FROM room_links l WHERE kind = 2 AND value = $3 AND EXISTS"
    " (SELECT 1 FROM events WHERE room = l.room AND recording = l.value)"
    " UNION ALL SELECT room FROM room_links l WHERE kind = 3 AND value = $4 AND NOT EXISTS"
    " (SELECT 1 FROM room_links k WHERE k.kind = 2 AND k.value = $3) AND EXISTS"
    " (SELECT 1 FROM events o, events me WHERE me.id = $1 AND o.room = l.room"
    " AND o.recording_instance = l.value AND o.recording IS NULL"
    " AND " HR_SQL_EVENT_AT("o.") " >= " HR_SQL_EVENT_AT(
        "me.") ") LIMIT 1),"
               " e AS (UPDATE events SET linked_room = r.room FROM r WHERE events.id = $1"
               " RETURNING r.room, events.received_at)"
               " INSERT INTO sessions AS s (scope, key, provider, status, first_seen, last_seen,"
               " event_count) SELECT 'room', e.room, $5, 1, e.received_at, e.received_at, 1 FROM e"
               " ON CONFLICT (scope, key) DO UPDATE SET" SESSION_SEEN;

#define ADOPT(kind, column, also)                                                                  \
	"WITH n AS (INSERT INTO room_links (kind, value, room) SELECT " kind ", $2, $1"            \
	" WHERE EXISTS (SELECT 1 FROM events WHERE id = $3) ON CONFLICT (kind, value)"             \
	" DO UPDATE SET room = EXCLUDED.room WHERE room_links.room <> EXCLUDED.room),"             \
	" a AS (UPDATE events SET linked_room = $1 WHERE " column " = $2 AND room IS NULL"         \
	" AND linked_room IS NULL AND EXISTS (SELECT 1 FROM events WHERE id = $3)" also            \
	" RETURNING received_at)"                                                                  \
	" UPDATE sessions s SET event_count = s.event_count + c.n,"                                \
	" first_seen = least(s.first_seen, c.lo), last_seen = greatest(s.last_seen, c.hi)"         \
	" FROM (SELECT count(*) AS n, min(received_at) AS lo, max(received_at) AS hi FROM a) c"    \
	" WHERE c.n > 0 AND s.scope = 'room' AND s.key = $1"
static const char *const sql_adopt[3] = {
	ADOPT("1", "meeting", ""),
	ADOPT("2", "recording", ""),
	/* only the starts before the room's event whose recording no room names
	 * (HR_SQL_ROOM_INSTANCE_HELD) */
	ADOPT("3", "recording_instance",
	    " AND " HR_SQL_EVENT_AT("") " <= (SELECT " HR_SQL_EVENT_AT(
	        "") " FROM events WHERE id = $3)"
	            " AND NOT EXISTS (SELECT 1 FROM room_links k WHERE k.kind = 2"
	            " AND k.value = events.recording)"),
};

/* After the event row: its count toward a room it links to, or its links
 * with the room it names. Returns the statements sent. */
static size_t
send_room_counts(struct pg_pipe *pp, const struct hr_event_write *w)
{
	const struct hr_summary *sum = &w->ev->sum;
	const char *links[3] = { sum->meeting_id, sum->recording_id, sum->recording_instance };
	size_t sent = 0;

	if (links[0] == NULL && links[1] == NULL && links[2] == NULL)
		return 0;
	if (sum->room == NULL) {
		struct pg_params p = { .n = 0 };

		pgp_text(&p, w->req.id);
		for (size_t i = 0; i < 3; i++)
			pgp_text_or_null(&p, links[i]);
		pgp_text(&p, hr_provider_name(w->ev->provider));
		pg_pipe_send(pp, sql_count_linked, &p);
		return 1;
	}
	for (size_t i = 0; i < 3; i++) {
		struct pg_params p = { .n = 0 };

		/* an instance is linked by a room's event that names no recording */
		if (links[i] == NULL || (i == 2 && links[1] != NULL))
			continue;
		pgp_text(&p, sum->room);
		pgp_text(&p, links[i]);
		pgp_text(&p, w->req.id);
		pg_pipe_send(pp, sql_adopt[i], &p);
		sent++;
	}
	return sent;
}

/* One row per query value (hr_query_indexed): a filter on one is an index probe. */
static size_t
send_query(struct pg_pipe *pp, const json_t *query, const char *event_id)
{
	const char *name;
	size_t sent = 0;
	json_t *v;

	json_object_foreach((json_t *)query, name, v)
	{
		size_t n = json_is_array(v) ? json_array_size(v) : 1;

		for (size_t i = 0; i < n; i++) {
			json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
			struct pg_params p = { .n = 0 };

			if (!hr_query_indexed(name, item))
				continue;
			pgp_text(&p, name);
			pgp_text(&p, json_string_value(item));
			pgp_text(&p, event_id);
			/* ?a=1&a=1 is one row: the filter asks whether the value was there */
			pg_pipe_send(pp,
			    "INSERT INTO event_query (name, value, event_seq) SELECT $1, $2, seq"
			    " FROM events WHERE id = $3 ON CONFLICT DO NOTHING",
			    &p);
			sent++;
		}
	}
	return sent;
}

/* The outbox: one row per matching destination, in the event's transaction. */
static size_t
send_deliveries(struct hr_store_backend *b, struct pg_pipe *pp, const struct hr_event_write *w,
    struct hr_store_result *r)
{
	char *order_key = NULL;
	size_t i;

	if (w->ndestinations == 0)
		return 0;
	if (hr_summary_order_key(&w->ev->sum, &order_key) != HR_OK) {
		pp->failed = true;
		return 0;
	}
	for (i = 0; i < w->ndestinations; i++) {
		struct pg_params p = { .n = 0 };

		pgp_text(&p, w->req.id);
		pgp_text(&p, w->destinations[i]);
		pgp_text_or_null(&p, w->ordered[i] ? order_key : NULL);
		pgp_int(&p, w->routed_us != 0 ? w->routed_us : w->req.received_us);
		pg_pipe_send(pp,
		    "INSERT INTO deliveries (event_seq, destination, order_key, status,"
		    " created_at, updated_at, next_attempt_at) SELECT seq, $2, $3, 0,"
		    " $4::bigint, $4::bigint, $4::bigint FROM events WHERE id = $1",
		    &p);
	}
	free(order_key);
	r->count = (int64_t)w->ndestinations;
	b->notify_deliveries = true;
	return i;
}

/* session_id: the session the same run upserted just before, by its key. Its
 * query values and deliveries read its seq by its id: none when it lost its
 * claim. */
#define EVENT_INSERT                                                                               \
	"INSERT INTO events (id, received_at, source, provider, kind, event_type, subtype,"        \
	" scope, session_key, session_id, occurred_at, occurred_raw, remote_addr, headers,"        \
	" body, query, problems, room, meeting, meeting_at, recording, facts, recording_instance)"
#define EVENT_VALUES                                                                               \
	"$1, $2::bigint, $3, $4, $5, $6, $7, $8, $9,"                                              \
	" (SELECT id FROM sessions WHERE scope = $8 AND key = $9), $10::bigint, $11, $12, $13,"    \
	" $14, $15, $16, $17, $18, $19::bigint, $20, $21, $22"
static const char *const sql_insert_event[2] = {
	EVENT_INSERT " VALUES (" EVENT_VALUES ")",
	EVENT_INSERT " SELECT " EVENT_VALUES WON("$23", "$24", "$25"),
};

/* The event row, its session and its deliveries into `pp`; with `claimed`,
 * written only if the event won the claim sent before them; returns how many
 * statements were sent, each a result to read. */
static size_t
send_event_row(struct hr_store_backend *b, struct pg_pipe *pp, const struct hr_event_write *w,
    struct hr_store_result *res, bool claimed)
{
	const struct hr_event *ev = w->ev;
	const struct hr_summary *sum = &ev->sum;
	bool has_session = sum->session_key != NULL && sum->scope != HR_SCOPE_NONE;
	struct pg_params p = { .n = 0 };
	size_t sent = 1;

	if (has_session) {
		send_session(pp, w, claimed);
		sent++;
	}
	if (sum->room != NULL && sum->scope != HR_SCOPE_ROOM) {
		send_room_link(pp, w, claimed);
		sent++;
	}
	pgp_text(&p, w->req.id);
	pgp_int(&p, w->req.received_us);
	pgp_text(&p, w->req.source);
	pgp_text(&p, ev->provider == HR_PROVIDER_AUTO ? "" : hr_provider_name(ev->provider));
	pgp_text(&p, hr_kind_name(ev->kind));
	pgp_text_or_null(&p, sum->event_type);
	pgp_text_or_null(&p, sum->subtype);
	pgp_text_or_null(&p, has_session ? hr_scope_name(sum->scope) : NULL);
	pgp_text_or_null(&p, has_session ? sum->session_key : NULL);
	if (sum->occurred.valid)
		pgp_int(&p, sum->occurred.us);
	else
		pgp_null(&p);
	pgp_text_or_null(
	    &p, hr_time_raw(&sum->occurred)[0] != '\0' ? hr_time_raw(&sum->occurred) : NULL);
	pgp_text_or_null(&p, w->req.remote_addr);
	pgp_text(&p, w->req.headers_json != NULL ? w->req.headers_json : "{}");
	pgp_bytes(&p, w->req.body, w->req.body_len);
	pgp_text_or_null(&p, w->req.query_json);
	pgp_text_or_null(&p, w->problems_json);
	pgp_text_or_null(&p, sum->room);
	pgp_text_or_null(&p, sum->meeting_id);
	if (sum->meeting_at.valid)
		pgp_int(&p, sum->meeting_at.us);
	else
		pgp_null(&p);
	pgp_text_or_null(&p, sum->recording_id);
	pgp_text_or_null(&p, w->facts_json);
	pgp_text_or_null(&p, sum->recording_instance);
	pg_pipe_send(pp, sql_insert_event[pgp_claim(&p, w, claimed)], &p);
	b->notify_events = true;
	sent += send_room_counts(pp, w);
	if (w->query != NULL)
		sent += send_query(pp, (const json_t *)w->query, w->req.id);
	return sent + send_deliveries(b, pp, w, res);
}

/*
 * Claim the key, or learn that an event inside the window has it: then the
 * write is a duplicate naming that event and nothing is written (its rows'
 * guard, WON). The primary key decides, also between two nodes; an expired
 * claim is taken over in the same statement. The answer is one row: the
 * event holding the key, whether it is this one, and the holder's kind when
 * its row is stored (an event of the same run has none yet: read_claim()).
 * The holder was a statement of its own after the claims' answers, a round
 * trip more for a run with a duplicate.
 */
static void
send_claim(struct pg_pipe *pp, const struct hr_event_write *w)
{
	struct pg_params p = { .n = 0 };

	pgp_text(&p, w->req.source);
	pgp_text(&p, w->dedup_key);
	pgp_text(&p, w->req.id);
	pgp_int(&p, w->req.received_us + w->dedup_window_us);
	pgp_int(&p, w->req.received_us);
	pg_pipe_send(pp,
	    "WITH c AS (INSERT INTO dedup AS d (source, key, event_id, expires_at)"
	    " VALUES ($1, $2, $3, $4::bigint) ON CONFLICT (source, key) DO UPDATE"
	    " SET event_id = excluded.event_id, expires_at = excluded.expires_at"
	    " WHERE d.expires_at <= $5::bigint RETURNING event_id)"
	    " SELECT event_id, true, NULL::text FROM c UNION ALL"
	    " SELECT d.event_id, false, e.kind FROM dedup d LEFT JOIN events e ON e.id = d.event_id"
	    " WHERE d.source = $1 AND d.key = $2 AND NOT EXISTS (SELECT 1 FROM c)",
	    &p);
}

/* A claim's answer: a duplicate names the key's holder, stored before or of this
 * run (not written yet: its kind is the run's). */
static bool
read_claim(struct pg_pipe *pp, const struct hr_event_write *const *in, size_t n,
    struct hr_store_result *res)
{
	PGresult *r = pg_pipe_next(pp);
	bool found = r != NULL && PQntuples(r) == 1;

	if (found && !pgc_bool(r, 0, 1)) {
		const char *kind = pgc_null(r, 0, 2) ? NULL : pgc_text(r, 0, 2);

		res->duplicate = true;
		res->count = 0; /* no delivery of its own */
		snprintf(res->id, sizeof(res->id), "%s", pgc_text(r, 0, 0));
		for (size_t j = 0; kind == NULL && j < n; j++)
			if (strcmp(in[j]->req.id, res->id) == 0)
				kind = hr_kind_name(in[j]->ev->kind);
		snprintf(res->kind, sizeof(res->kind), "%s", kind != NULL ? kind : "");
	} else if (!found) {
		pp->failed = true;
	}
	PQclear(r);
	return found;
}

/*
 * A rejection accepted: its event, once. FOR UPDATE holds the rejection row,
 * so of two accepts racing, on one node or two, the second waits and then
 * finds the first one's event.
 */
int
hr_pg_accept_rejection(
    struct hr_store_backend *b, const struct hr_accept_write *a, struct hr_store_result *res)
{
	struct pg_params p = { .n = 0 };
	struct pg_pipe pp;
	size_t rows;
	PGresult *r;

	snprintf(res->id, sizeof(res->id), "%s", a->event.req.id);
	if (pg_lock_events(b) != HR_OK)
		return HR_EDB;
	pgp_text(&p, a->rejection_id);
	if (pg_writer_run(b, "SELECT accepted_event FROM rejections WHERE id = $1 FOR UPDATE", &p,
	        &r) != HR_OK)
		return HR_EDB;
	if (PQntuples(r) == 0) {
		res->count = -1; /* pruned since the caller read it */
	} else if (!pgc_null(r, 0, 0)) {
		snprintf(res->id, sizeof(res->id), "%s", pgc_text(r, 0, 0));
		res->duplicate = true;
	}
	PQclear(r);
	if (res->duplicate || res->count < 0)
		return HR_OK;
	if (!pg_writer_pipe(b, &pp))
		return pg_close_pipe(b, &pp);
	rows = send_event_row(b, &pp, &a->event, res, false); /* accepted: no claim */
	pgp_text(&p, a->event.req.id);
	pg_pipe_send(&pp, "UPDATE rejections SET accepted_event = $2 WHERE id = $1", &p);
	if (pg_pipe_sync(&pp))
		pg_pipe_read_ok(&pp, rows + 1);
	return pg_close_pipe(b, &pp);
}

static int
put_events_once(struct hr_store_backend *b, const struct hr_event_write *const *in,
    struct hr_store_result *const *res, size_t n, struct pg_pipe *pp)
{
	struct pg_commit cm = { .sent = false };
	size_t rows = 0, i;
	bool lock, ok;

	for (i = 0; i < n; i++) {
		memset(res[i], 0, sizeof(*res[i]));
		snprintf(res[i]->id, sizeof(res[i]->id), "%s", in[i]->req.id);
	}
	if (!pg_writer_pipe(b, pp))
		return pg_close_pipe(b, pp);
	/* The lock first: claims and inserts of two nodes queue in one order. Then
	 * every claim and every row, each event's guarded by its claim, and the
	 * COMMIT when it may go along: one round trip for the run. */
	lock = send_lock(b, pp);
	for (i = 0; i < n; i++)
		if (in[i]->dedup_key != NULL)
			send_claim(pp, in[i]);
	for (i = 0; i < n; i++)
		rows += send_event_row(b, pp, in[i], res[i], in[i]->dedup_key != NULL);
	if (pg_commit_wanted(b))
		pg_commit_send(b, pp, &cm);
	ok = pg_pipe_sync(pp) && read_lock(b, pp, lock);
	for (i = 0; ok && i < n; i++)
		ok = in[i]->dedup_key == NULL || read_claim(pp, in, n, res[i]);
	if (ok && pg_pipe_read_ok(pp, rows) && cm.sent)
		pg_commit_read(pp, &cm);
	return pg_commit_end(b, &cm, pg_close_pipe(b, pp));
}

int
hr_pg_put_events(struct hr_store_backend *b, const struct hr_event_write *const *in,
    struct hr_store_result *const *res, size_t n)
{
	struct pg_pipe pp;
	int rc = put_events_once(b, in, res, n, &pp);

	if (rc != HR_OK && pg_writer_reopen(b, &pp))
		rc = put_events_once(b, in, res, n, &pp);
	return rc;
}
