/*
 * pg_read.c - the PostgreSQL engine's reads: the same filters, pages and
 * rows as sqlite_read.c (the forwarder's claims of due deliveries: pg_due.c).
 *
 * Filters become a WHERE clause of numbered parameters (never interpolated
 * text); pages are keyset cursors on the bigint keys, newest first. Any node
 * answers for every event: rows come from the shared database, not from what
 * this node stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/event.h"
#include "hr/log.h"
#include "pg_int.h"

/* "scope:key" when scope is a known scope name, else a bare key. With
 * `by_scope` a bare key is looked for under every scope, so that the sessions'
 * (scope, key) index serves it (schema 3 dropped the index on key alone). */
static void
where_session_ref(struct hr_pgw *w, const char *ref, const char *scope_col, const char *key_col,
    bool by_scope, char *scope, size_t scope_len)
{
	const char *colon = strchr(ref, ':');

	if (colon != NULL && (size_t)(colon - ref) < scope_len) {
		memcpy(scope, ref, (size_t)(colon - ref));
		scope[colon - ref] = '\0';
		for (int sc = HR_SCOPE_NONE + 1; sc <= HR_SCOPE_AGENTHUMAN; sc++) {
			if (strcmp(scope, hr_scope_name((enum hr_scope)sc)) == 0) {
				hr_pgw_text(w, scope_col, scope);
				hr_pgw_text(w, key_col, colon + 1);
				return;
			}
		}
	}
	if (by_scope) {
		hr_pgw_and(w);
		hr_pgw_put(w, "scope IN (");
		for (int sc = HR_SCOPE_NONE + 1; sc <= HR_SCOPE_AGENTHUMAN; sc++) {
			hr_pgw_put(w, sc > HR_SCOPE_NONE + 1 ? ", " : "");
			hr_pgw_param(w, "");
			pgp_text(&w->p, hr_scope_name((enum hr_scope)sc));
		}
		hr_pgw_put(w, ")");
	}
	hr_pgw_text(w, key_col, ref);
}

#define EVENT_COLUMNS_NO_BODY                                                                      \
	"SELECT seq, id, received_at, source, provider, kind, event_type, subtype, scope,"         \
	" session_key, occurred_at, occurred_raw, remote_addr, headers, NULL::bytea, pruned_at,"   \
	" query, problems, room, meeting, meeting_at, recording, facts FROM events"
#define EVENT_COLUMNS                                                                              \
	"SELECT seq, id, received_at, source, provider, kind, event_type, subtype, scope,"         \
	" session_key, occurred_at, occurred_raw, remote_addr, headers, body, pruned_at,"          \
	" query, problems, room, meeting, meeting_at, recording, facts FROM events"

static void
event_row(const PGresult *r, int i, bool with_body, struct hr_event_row *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = pgc_int(r, i, 0);
	e->id = pgc_text(r, i, 1);
	e->received_us = pgc_int(r, i, 2);
	e->source = pgc_text(r, i, 3);
	e->provider = pgc_text(r, i, 4);
	e->kind = pgc_text(r, i, 5);
	e->event_type = pgc_text(r, i, 6);
	e->subtype = pgc_text(r, i, 7);
	e->scope = pgc_text(r, i, 8);
	e->session_key = pgc_text(r, i, 9);
	e->occurred_valid = !pgc_null(r, i, 10);
	e->occurred_us = pgc_int(r, i, 10);
	e->occurred_raw = pgc_text(r, i, 11);
	e->remote_addr = pgc_text(r, i, 12);
	e->headers_json = pgc_text(r, i, 13);
	e->pruned_us = pgc_int(r, i, 15);
	e->query_json = pgc_text(r, i, 16);
	e->problems_json = pgc_text(r, i, 17);
	e->room = pgc_text(r, i, 18);
	e->meeting = pgc_text(r, i, 19);
	e->meeting_at_valid = !pgc_null(r, i, 20);
	e->meeting_at_us = pgc_int(r, i, 20);
	e->recording = pgc_text(r, i, 21);
	e->facts_json = pgc_text(r, i, 22);
	if (with_body) {
		e->body = pgc_null(r, i, 14) ? "" : pgc_text(r, i, 14);
		e->body_len = pgc_len(r, i, 14);
	}
}

struct event_ctx {
	hr_event_row_cb cb;
	void *arg;
	bool with_body;
};

static int
emit_event(const PGresult *r, int i, void *p)
{
	struct event_ctx *c = p;
	struct hr_event_row e;

	event_row(r, i, c->with_body, &e);
	return c->cb(&e, c->arg);
}

/*
 * A room's events by its name: events that name it (a room-scoped event's
 * room is its session key: event.c), and events that name no room but one of
 * the meetings or recordings of these. "$R" stands for the room's parameter.
 * = ANY(ARRAY(...)), not IN (SELECT ...): the lists are computed once and
 * each condition can be an index scan. With IN, the planner could not and
 * walked the whole table newest first, filtering: a room of one event took
 * 1,000 ms at 1 M events, now under 1 ms. Meetings' and recordings' parts are
 * few rows, gathered by their own index; ordered by seq they sort "seq + 0",
 * or the planner could walk events_pkey instead, through every event when the
 * room has none.
 */
static const struct room_part {
	const char *cond;
	const char *seq_order;
} room_parts[] = {
	{ "room = $R", "seq" },
	{ "meeting = ANY(ARRAY(" HR_SQL_ROOM_DISTINCT("meeting", "$R") ")) AND room IS NULL",
	    "seq + 0" },
	{ "recording = ANY(ARRAY(" HR_SQL_ROOM_DISTINCT("recording", "$R") ")) AND room IS NULL",
	    "seq + 0" },
	{ "recording_instance = ANY(ARRAY(" HR_SQL_ROOM_DISTINCT("recording_instance",
	      "$R") ")) AND room IS NULL AND " HR_SQL_ROOM_INSTANCE_HELD("events", "$R"),
	    "seq + 0" },
};

/* A part's condition with its "$R"s made parameter `param`. */
static void
put_room_part(struct hr_pgw *w, const struct room_part *part, int param)
{
	char num[16];
	const char *s = part->cond, *r;

	snprintf(num, sizeof(num), "$%d", param);
	while ((r = strstr(s, "$R")) != NULL) {
		char text[512];
		size_t n = (size_t)(r - s);

		if (n >= sizeof(text)) {
			w->overflow = true;
			return;
		}
		memcpy(text, s, n);
		text[n] = '\0';
		hr_pgw_put(w, text);
		hr_pgw_put(w, num);
		s = r + 2;
	}
	hr_pgw_put(w, s);
}

/* An event's place on a timeline: its own time, else when it was received. */
#define EVENT_TIME "coalesce(occurred_at, received_at)"

/*
 * The first n of a room's events, by seq or (`by_time`) by EVENT_TIME then
 * seq, in direction `dir`: the union of the room's conditions, each with the
 * other conditions (`w`, the room left out) and its own ORDER BY ... LIMIT n.
 * The room's part walks an index in that order (events_room, or
 * events_room_time) and stops at n. One OR of the conditions left the choice
 * to the planner, which walked events_pkey filtering every row whenever it
 * thought the room's events frequent (a page of a room of 55k events among
 * 1 M: 200 ms), and a timeline sorted the whole room (233 ms). `w` becomes
 * "WHERE seq IN (...)"; the room is one more parameter.
 */
static void
where_room_union(struct hr_pgw *w, const char *room, bool by_time, const char *dir, unsigned n)
{
	char others[sizeof(w->sql)], tail[128];
	int param = w->p.n + 1;

	memcpy(others, w->sql, w->len + 1);
	pgp_text(&w->p, room);
	w->len = 0;
	w->sql[0] = '\0';
	hr_pgw_put(w, " WHERE seq IN (");
	for (size_t i = 0; i < HR_ARRAY_LEN(room_parts); i++) {
		/* the other conditions again, then this part's own and its order */
		hr_pgw_put(
		    w, i == 0 ? "(SELECT seq FROM events" : " UNION ALL (SELECT seq FROM events");
		hr_pgw_put(w, others);
		hr_pgw_put(w, others[0] ? " AND " : " WHERE ");
		put_room_part(w, &room_parts[i], param);
		if (by_time)
			snprintf(tail, sizeof(tail),
			    " ORDER BY " EVENT_TIME " %s, seq %s LIMIT %u)", dir, dir, n);
		else
			snprintf(tail, sizeof(tail), " ORDER BY %s %s LIMIT %u)",
			    room_parts[i].seq_order, dir, n);
		hr_pgw_put(w, tail);
	}
	hr_pgw_put(w, ")");
}

/* The filters of an event listing but the room, which where_room_union() adds
 * last, with or without other filters: PostgreSQL has statistics to plan each
 * part beside them (a room of 55k events and a source: 5.0 ms, bench note in
 * docs/benchmarks.md); `scope` holds a bound value. */
static void
where_event_match(struct hr_pgw *w, const struct hr_event_filter *f, char *scope, size_t len)
{
	hr_pgw_any(w, "source", &f->source, true);
	hr_pgw_any(w, "provider", &f->provider, false);
	hr_pgw_kinds(w, f->kinds);
	hr_pgw_any(w, "event_type", &f->event_type, false);
	hr_pgw_any(w, "subtype", &f->subtype, false);
	if (f->session != NULL)
		where_session_ref(w, f->session, "scope", "session_key", false, scope, len);
	if (f->nquery > HR_QUERY_FILTERS_MAX)
		w->overflow = true;
	for (size_t i = 0; i < f->nquery && i < HR_QUERY_FILTERS_MAX; i++) {
		hr_pgw_and(w);
		hr_pgw_put(w, "seq IN (SELECT event_seq FROM event_query WHERE name = ");
		hr_pgw_param(w, "");
		pgp_text(&w->p, f->query_names[i]);
		hr_pgw_put(w, " AND value = ");
		hr_pgw_param(w, "");
		pgp_text(&w->p, f->query_values[i]);
		hr_pgw_put(w, ")");
	}
}

/* Run a listing on a pooled connection and page through it. */
/* With `with_rows`, a row at a time: rows with bodies (hr_pgw_run_rows). */
static int
list(struct hr_store_backend *pg, const char *head, struct hr_pgw *w, const char *tail,
    unsigned limit, bool with_rows, hr_pgw_emit_fn emit, void *ctx, int64_t *next_cursor,
    struct hr_error *err)
{
	PGconn *c;
	PGresult *r;
	int rc;

	/* Refused before a connection is taken: the filter holds more than fits. */
	if (w->overflow || w->p.overflow)
		return hr_error_set(err, HR_EINVAL, "", "the query has too many conditions");
	c = hr_pg_reader_get(pg);
	if (with_rows) {
		rc = hr_pgw_run_rows(c, head, w, tail, limit, emit, ctx, next_cursor, err);
		hr_pg_reader_put(pg, c);
		return rc;
	}
	r = hr_pgw_run(c, head, w, tail, err);
	rc = r != NULL ? hr_pgw_run_page(r, limit, emit, ctx, next_cursor, err) : HR_EDB;

	PQclear(r);
	hr_pg_reader_put(pg, c);
	return rc;
}

int
hr_pg_list_events(struct hr_store_backend *pg, const struct hr_event_filter *f, hr_event_row_cb cb,
    void *arg, int64_t *next_cursor, struct hr_error *err)
{
	struct event_ctx ctx = { cb, arg, f->with_body };
	struct hr_pgw w = { .len = 0 };
	char tail[64], scope[32];
	where_event_match(&w, f, scope, sizeof(scope));
	hr_pgw_num(&w, "received_at", " >= ", f->since_us);
	hr_pgw_num(&w, "received_at", " < ", f->until_us);
	hr_pgw_num(&w, "seq", " < ", f->before_seq);
	if (f->room != NULL)
		where_room_union(&w, f->room, false, "DESC", f->limit + 1);
	snprintf(tail, sizeof(tail), " ORDER BY seq DESC LIMIT %u", f->limit + 1);
	return list(pg, f->with_body ? EVENT_COLUMNS : EVENT_COLUMNS_NO_BODY, &w, tail, f->limit,
	    f->with_body, emit_event, &ctx, next_cursor, err);
}

int
hr_pg_events_after(struct hr_store_backend *pg, const struct hr_event_filter *f, int64_t after_seq,
    hr_event_row_cb cb, void *arg, struct hr_error *err)
{
	struct event_ctx ctx = { cb, arg, f->with_body };
	struct hr_pgw w = { .len = 0 };
	char tail[64], scope[32];
	int64_t unused;
	where_event_match(&w, f, scope, sizeof(scope));
	hr_pgw_int_cond(&w, "seq", " > ", after_seq);
	if (f->room != NULL)
		where_room_union(&w, f->room, false, "ASC", f->limit);
	snprintf(tail, sizeof(tail), " ORDER BY seq ASC LIMIT %u", f->limit);
	return list(pg, f->with_body ? EVENT_COLUMNS : EVENT_COLUMNS_NO_BODY, &w, tail, f->limit,
	    f->with_body, emit_event, &ctx, &unused, err);
}

/* One row by its id: the callback, or HR_ENOTFOUND naming `what`. */
static int
get_one(struct hr_store_backend *pg, const char *head, const char *id, const char *what,
    hr_pgw_emit_fn emit, void *ctx, struct hr_error *err)
{
	struct hr_pgw w = { .len = 0 };
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r;
	int rc;

	hr_pgw_text(&w, "id", id);
	r = hr_pgw_run(c, head, &w, "", err);
	if (r == NULL)
		rc = HR_EDB;
	else if (PQntuples(r) == 0)
		rc = hr_error_set(err, HR_ENOTFOUND, "id", "no %s %s", what, id);
	else
		rc = emit(r, 0, ctx) == HR_OK ? HR_OK : HR_ENOMEM;
	PQclear(r);
	hr_pg_reader_put(pg, c);
	return rc;
}

int
hr_pg_get_event(struct hr_store_backend *pg, const char *id, hr_event_row_cb cb, void *arg,
    struct hr_error *err)
{
	struct event_ctx ctx = { cb, arg, true };

	return get_one(pg, EVENT_COLUMNS, id, "event", emit_event, &ctx, err);
}

#define SESSION_COLUMNS                                                                            \
	"SELECT id, scope, key, provider, status, first_seen, last_seen, event_count, duration,"   \
	" shutdown_reason, exit_reason, error_type, overall_score FROM sessions"

struct session_ctx {
	hr_session_row_cb cb;
	void *arg;
};

static int
emit_session(const PGresult *r, int i, void *p)
{
	struct session_ctx *c = p;
	struct hr_session_row s = {
		.id = pgc_int(r, i, 0),
		.scope = pgc_text(r, i, 1),
		.key = pgc_text(r, i, 2),
		.provider = pgc_text(r, i, 3),
		.status = hr_session_status_name((enum hr_session_status)pgc_int(r, i, 4)),
		.first_seen_us = pgc_int(r, i, 5),
		.last_seen_us = pgc_int(r, i, 6),
		.event_count = pgc_int(r, i, 7),
		.has_duration = !pgc_null(r, i, 8),
		.duration = pgc_double(r, i, 8),
		.shutdown_reason = pgc_text(r, i, 9),
		.exit_reason = pgc_text(r, i, 10),
		.error_type = pgc_text(r, i, 11),
		.has_score = !pgc_null(r, i, 12),
		.overall_score = pgc_double(r, i, 12),
	};

	return c->cb(&s, c->arg);
}

int
hr_pg_list_sessions(struct hr_store_backend *pg, const struct hr_session_filter *f,
    hr_session_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	struct session_ctx ctx = { cb, arg };
	struct hr_pgw w = { .len = 0 };
	char tail[64];
	int status = -1;

	if (f->status != NULL && (status = hr_session_status_from_name(f->status)) < 0)
		return hr_error_set(err, HR_EINVAL, "status", "unknown status %s", f->status);
	hr_pgw_text(&w, "provider", f->provider);
	if (status >= 0)
		hr_pgw_int_cond(&w, "status", " = ", status);
	hr_pgw_num(&w, "last_seen", " >= ", f->since_us);
	hr_pgw_num(&w, "id", " < ", f->before_id);
	snprintf(tail, sizeof(tail), " ORDER BY id DESC LIMIT %u", f->limit + 1);
	return list(
	    pg, SESSION_COLUMNS, &w, tail, f->limit, false, emit_session, &ctx, next_cursor, err);
}

/* The newest `max` events of a timeline, oldest first: the newest max + 1 are
 * selected and put in time order; the oldest is left out when there are more
 * than `max`. A room's are chosen by where_room_union(). */
#define TIMELINE_HEAD "SELECT * FROM (" EVENT_COLUMNS_NO_BODY
#define TIMELINE_TAIL                                                                              \
	" ORDER BY " EVENT_TIME " DESC, seq DESC LIMIT %u) AS t ORDER BY " EVENT_TIME ", seq"

/* A read of several statements in one snapshot (each statement has its own
 * under READ COMMITTED). */
static int
snapshot_begin(PGconn *c, struct hr_error *err)
{
	return hr_pg_exec_script(c, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", err);
}

/* The snapshot ends, after a failure too: the connection goes back idle. */
static void
snapshot_end(PGconn *c)
{
	PGTransactionStatusType t = PQtransactionStatus(c);

	if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR)
		PQclear(PQexec(c, "ROLLBACK"));
}

static int
session_events(PGconn *c, int64_t session_id, const char *room, hr_event_row_cb ecb, void *arg,
    unsigned max, bool *truncated, struct hr_error *err)
{
	struct event_ctx ctx = { ecb, arg, false };
	struct hr_pgw w = { .len = 0 };
	char tail[sizeof(TIMELINE_TAIL) + 16];
	PGresult *r;
	int rc = HR_OK;

	if (room != NULL) {
		where_room_union(&w, room, true, "DESC", max + 1);
	} else {
		hr_pgw_int_cond(&w, "session_id", " = ", session_id);
	}
	snprintf(tail, sizeof(tail), TIMELINE_TAIL, max + 1);
	if ((r = hr_pgw_run(c, TIMELINE_HEAD, &w, tail, err)) == NULL)
		return HR_EDB;
	*truncated = (unsigned)PQntuples(r) > max;
	for (int i = *truncated ? 1 : 0; rc == HR_OK && i < PQntuples(r); i++)
		if (emit_event(r, i, &ctx) != HR_OK)
			rc = hr_error_set(err, HR_ENOMEM, "row", "cannot build the answer");
	PQclear(r);
	return rc;
}

int
hr_pg_get_session(struct hr_store_backend *pg, const char *ref, hr_session_row_cb scb,
    hr_event_row_cb ecb, void *arg, unsigned max_events, bool *truncated, struct hr_error *err)
{
	struct session_ctx ctx = { scb, arg };
	struct hr_pgw w = { .len = 0 };
	char scope[32];
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r;
	int64_t id = 0;
	char *room = NULL;
	int rc;

	where_session_ref(&w, ref, "scope", "key", true, scope, sizeof(scope));
	/* One snapshot for the row and its timeline: else an event committed in
	 * between is on the timeline but not in the row's event_count and last_seen. */
	r = snapshot_begin(c, err) == HR_OK
	    ? hr_pgw_run(c, SESSION_COLUMNS, &w, " ORDER BY last_seen DESC, id DESC LIMIT 1", err)
	    : NULL;
	if (r == NULL) {
		rc = HR_EDB;
	} else if (PQntuples(r) == 0) {
		rc = hr_error_set(err, HR_ENOTFOUND, "session", "no session %s", ref);
	} else {
		id = pgc_int(r, 0, 0);
		if (strcmp(pgc_text(r, 0, 1), "room") == 0 &&
		    (room = strdup(pgc_text(r, 0, 2))) == NULL)
			rc = hr_error_set(err, HR_ENOMEM, "session", "out of memory");
		else
			rc = emit_session(r, 0, &ctx) == HR_OK ? HR_OK : HR_ENOMEM;
	}
	PQclear(r);
	if (rc == HR_OK)
		rc = session_events(c, id, room, ecb, arg, max_events, truncated, err);
	snapshot_end(c);
	free(room);
	hr_pg_reader_put(pg, c);
	return rc;
}

struct rejection_ctx {
	hr_rejection_row_cb cb;
	void *arg;
	bool with_body;
};

#define REJECTION_COLUMNS                                                                          \
	"SELECT seq, id, received_at, source, remote_addr, kind, http_status, problem, headers,"   \
	" query, accepted_event, octet_length(body)::bigint, acknowledged::int, %s FROM "          \
	"rejections"

static int
emit_rejection(const PGresult *r, int i, void *p)
{
	struct rejection_ctx *c = p;
	struct hr_rejection_row j = {
		.seq = pgc_int(r, i, 0),
		.id = pgc_text(r, i, 1),
		.received_us = pgc_int(r, i, 2),
		.source = pgc_text(r, i, 3),
		.remote_addr = pgc_text(r, i, 4),
		.kind = pgc_text(r, i, 5),
		.http_status = (int)pgc_int(r, i, 6),
		.problem_json = pgc_text(r, i, 7),
		.headers_json = pgc_text(r, i, 8),
		.query_json = pgc_text(r, i, 9),
		.accepted_event = pgc_text(r, i, 10),
		.body_len = (size_t)pgc_int(r, i, 11),
		.acknowledged = pgc_int(r, i, 12) != 0,
	};

	if (c->with_body) {
		j.body = pgc_null(r, i, 13) ? "" : pgc_text(r, i, 13);
		j.body_len = pgc_len(r, i, 13);
	}
	return c->cb(&j, c->arg);
}

int
hr_pg_list_rejections(struct hr_store_backend *pg, const struct hr_rejection_filter *f,
    hr_rejection_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	struct rejection_ctx ctx = { cb, arg, false };
	struct hr_pgw w = { .len = 0 };
	char tail[64], head[256];

	hr_pgw_text(&w, "source", f->source);
	hr_pgw_num(&w, "received_at", " >= ", f->since_us);
	hr_pgw_num(&w, "seq", " < ", f->before_seq);
	snprintf(tail, sizeof(tail), " ORDER BY seq DESC LIMIT %u", f->limit + 1);
	snprintf(head, sizeof(head), REJECTION_COLUMNS, "NULL::bytea");
	return list(pg, head, &w, tail, f->limit, false, emit_rejection, &ctx, next_cursor, err);
}

int
hr_pg_get_rejection(struct hr_store_backend *pg, const char *id, hr_rejection_row_cb cb, void *arg,
    struct hr_error *err)
{
	struct rejection_ctx ctx = { cb, arg, true };
	char head[256];

	snprintf(head, sizeof(head), REJECTION_COLUMNS, "body");
	return get_one(pg, head, id, "rejection", emit_rejection, &ctx, err);
}

/* ---- deliveries ---- */

int
hr_pg_pending_destinations(
    struct hr_store_backend *pg, hr_name_cb cb, void *arg, struct hr_error *err)
{
	struct pg_params p = { .n = 0 };
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r = pg_query(c, HR_SQL_PENDING_DESTINATIONS(""), &p, err);
	int rc = HR_OK;

	hr_pg_reader_put(pg, c);
	if (r == NULL)
		return HR_EDB;
	for (int i = 0; rc == HR_OK && i < PQntuples(r); i++)
		rc = cb(pgc_text(r, i, 0), arg);
	PQclear(r);
	return rc;
}

/*
 * The oldest pending delivery is the first created: the pending one with the
 * smallest id, one entry of deliveries_dest_status. min(created_at) read every
 * pending row of the destination (3,000 pending: 6,001 index entries for the
 * two reads of a start), for each /metrics scrape and each GET of the
 * destination. Written `status <= 0 ORDER BY status, id` (no status is
 * negative) so that only that index gives the order: as `status = 0 ORDER BY
 * id`, the planner read the pending rows through a partial index and sorted
 * them (tables not analyzed), or walked the primary key through every
 * delivered row older than the first pending one (analyzed: 50,000 entries).
 */
int
hr_pg_destination(struct hr_store_backend *pg, const char *name, struct hr_destination_row *out,
    char *reason_buf, size_t reason_len, struct hr_error *err)
{
	static const char sql[] =
	    "SELECT (SELECT disabled FROM destinations WHERE name = $1),"
	    " (SELECT disabled_reason FROM destinations WHERE name = $1),"
	    " (SELECT disabled_at FROM destinations WHERE name = $1),"
	    " coalesce(sum(n) FILTER (WHERE status = 0), 0)::bigint,"
	    " (SELECT created_at FROM deliveries WHERE destination = $1 AND status <= 0"
	    " ORDER BY status, id LIMIT 1),"
	    " coalesce(sum(n) FILTER (WHERE status = 1), 0)::bigint,"
	    " coalesce(sum(n) FILTER (WHERE status = 2), 0)::bigint,"
	    " coalesce(sum(n) FILTER (WHERE status = 3), 0)::bigint"
	    /* the totals and the changes not yet folded into them (schema 8) */
	    " FROM (SELECT status, n FROM delivery_counts WHERE destination = $1"
	    " UNION ALL SELECT status, n FROM delivery_count_changes WHERE destination = $1) u";
	struct pg_params p = { .n = 0 };
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r;

	memset(out, 0, sizeof(*out));
	out->name = name;
	if (reason_len > 0)
		reason_buf[0] = '\0';
	pgp_text(&p, name);
	r = pg_query(c, sql, &p, err);
	hr_pg_reader_put(pg, c);
	if (r == NULL)
		return HR_EDB;
	out->disabled = pgc_int(r, 0, 0) != 0;
	if (pgc_text(r, 0, 1) != NULL && reason_len > 0) {
		snprintf(reason_buf, reason_len, "%s", pgc_text(r, 0, 1));
		out->disabled_reason = reason_buf;
	}
	out->disabled_us = pgc_int(r, 0, 2);
	out->pending = pgc_int(r, 0, 3);
	out->oldest_pending_us = pgc_int(r, 0, 4);
	out->succeeded = pgc_int(r, 0, 5);
	out->failed = pgc_int(r, 0, 6);
	out->dead = pgc_int(r, 0, 7);
	PQclear(r);
	return HR_OK;
}

#define DELIVERY_COLUMNS                                                                           \
	"SELECT d.id, e.id, d.destination, d.status, d.attempts, d.created_at, d.updated_at,"      \
	" d.next_attempt_at, d.last_status, d.last_error FROM deliveries d"                        \
	" JOIN events e ON e.seq = d.event_seq"

struct delivery_ctx {
	hr_delivery_row_cb dcb;
	hr_attempt_row_cb acb;
	void *arg;
	PGconn *c;
	struct hr_error *err;
};

static int
attempts_of(struct delivery_ctx *c, int64_t delivery_id)
{
	struct pg_params p = { .n = 0 };
	PGresult *r;
	int rc = HR_OK;

	pgp_int(&p, delivery_id);
	r = pg_query(c->c,
	    "SELECT delivery_id, number, started_at, duration_us, http_status, error, response"
	    " FROM attempts WHERE delivery_id = $1::bigint ORDER BY number, id",
	    &p, c->err);
	if (r == NULL)
		return HR_EDB;
	for (int i = 0; i < PQntuples(r) && rc == HR_OK; i++) {
		struct hr_attempt_row a = {
			.delivery_id = pgc_int(r, i, 0),
			.number = (int)pgc_int(r, i, 1),
			.started_us = pgc_int(r, i, 2),
			.duration_us = pgc_int(r, i, 3),
			.http_status = (int)pgc_int(r, i, 4),
			.error = pgc_text(r, i, 5),
			.response = pgc_text(r, i, 6),
			.response_len = pgc_len(r, i, 6),
		};

		rc = c->acb(&a, c->arg);
	}
	PQclear(r);
	return rc;
}

static int
emit_delivery(const PGresult *r, int i, void *p)
{
	struct delivery_ctx *c = p;
	enum hr_delivery_status status = (enum hr_delivery_status)pgc_int(r, i, 3);
	struct hr_delivery_row d = {
		.id = pgc_int(r, i, 0),
		.event_id = pgc_text(r, i, 1),
		.destination = pgc_text(r, i, 2),
		.status = hr_delivery_status_name(status),
		.attempts = (int)pgc_int(r, i, 4),
		.created_us = pgc_int(r, i, 5),
		.updated_us = pgc_int(r, i, 6),
		.next_attempt_us = status == HR_DLV_PENDING ? pgc_int(r, i, 7) : 0,
		.last_status = (int)pgc_int(r, i, 8),
		.last_error = pgc_text(r, i, 9),
	};
	int rc = c->dcb(&d, c->arg);

	if (rc == HR_OK && c->acb != NULL)
		rc = attempts_of(c, d.id);
	return rc;
}

int
hr_pg_list_deliveries(struct hr_store_backend *pg, const struct hr_delivery_filter *f,
    hr_delivery_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	struct delivery_ctx ctx = { cb, NULL, arg, NULL, err };
	struct hr_pgw w = { .len = 0 };
	char tail[64];

	hr_pgw_text(&w, "d.destination", f->destination);
	if (f->status >= 0)
		hr_pgw_int_cond(&w, "d.status", " = ", f->status);
	hr_pgw_num(&w, "d.created_at", " >= ", f->since_us);
	hr_pgw_num(&w, "d.id", " < ", f->before_id);
	snprintf(tail, sizeof(tail), " ORDER BY d.id DESC LIMIT %u", f->limit + 1);
	return list(
	    pg, DELIVERY_COLUMNS, &w, tail, f->limit, false, emit_delivery, &ctx, next_cursor, err);
}

int
hr_pg_event_deliveries(struct hr_store_backend *pg, const char *event_id, int64_t after_id,
    hr_delivery_row_cb dcb, hr_attempt_row_cb acb, void *arg, int64_t *next_cursor,
    struct hr_error *err)
{
	struct delivery_ctx ctx = { dcb, acb, arg, NULL, err };
	struct hr_pgw w = { .len = 0 };
	struct pg_params p = { .n = 0 };
	PGresult *r;
	int rc;

	*next_cursor = 0;
	ctx.c = hr_pg_reader_get(pg);
	/* No deliveries and no event are different answers (200 [] and 404), read
	 * in one snapshot: an event pruned in between is a 404. */
	pgp_text(&p, event_id);
	r = snapshot_begin(ctx.c, err) == HR_OK
	    ? pg_query(ctx.c, "SELECT 1 FROM events WHERE id = $1", &p, err)
	    : NULL;
	rc = r == NULL          ? HR_EDB
	    : PQntuples(r) == 0 ? hr_error_set(err, HR_ENOTFOUND, "id", "no event %s", event_id)
	                        : HR_OK;
	PQclear(r);
	if (rc == HR_OK) {
		hr_pgw_text(&w, "e.id", event_id);
		/* The newest 1,000, oldest first. */
		hr_pgw_and(&w);
		hr_pgw_put(&w,
		    "d.id >= coalesce((SELECT id FROM deliveries WHERE event_seq ="
		    " e.seq ORDER BY id DESC LIMIT 1 OFFSET ");
		hr_pgw_param(&w, "::bigint");
		pgp_int(&w.p, 999);
		hr_pgw_put(&w, "), 0)");
		hr_pgw_num(&w, "d.id", " > ", after_id); /* the page before ended there */
		r = hr_pgw_run(ctx.c, DELIVERY_COLUMNS, &w, " ORDER BY d.id LIMIT 1001", err);
		rc = r != NULL ? hr_pgw_run_page(r, 1000, emit_delivery, &ctx, next_cursor, err)
		               : HR_EDB;
		PQclear(r);
	}
	snapshot_end(ctx.c);
	hr_pg_reader_put(pg, ctx.c);
	return rc;
}

int
hr_pg_replay_count(
    struct hr_store_backend *pg, const struct hr_replay *rp, int64_t *count, struct hr_error *err)
{
	struct pg_params p = { .n = 0 };
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r;

	*count = 0;
	pgp_text(&p, rp->destination);
	pgp_int(&p, rp->since_us);
	pgp_int(&p, rp->until_us);
	pgp_int(&p, rp->status);
	r = pg_query(c, hr_pg_replay_count_sql, &p, err);
	hr_pg_reader_put(pg, c);
	if (r == NULL)
		return HR_EDB;
	*count = pgc_int(r, 0, 0);
	PQclear(r);
	return HR_OK;
}
