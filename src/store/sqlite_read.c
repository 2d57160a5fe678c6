/*
 * sqlite_read.c - the SQLite engine's reads: filtered, keyset-paged listings.
 *
 * Filters become a WHERE clause of bound parameters (never interpolated
 * text). Pages are keyset cursors on the integer primary key, newest first,
 * so a page costs the same at row 10 as at row 10 million, and rows that
 * arrive while a client pages through do not shift what it sees.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/event.h"
#include "hr/log.h"
#include "sqlite_int.h"

#define EVENT_COLUMNS_NO_BODY                                                                      \
	"SELECT seq, id, received_at, source, provider, kind, event_type, subtype, scope,"         \
	" session_key, occurred_at, occurred_raw, remote_addr, headers, NULL, pruned_at,"          \
	" query, problems, room, meeting, meeting_at, recording, facts FROM events"
#define EVENT_COLUMNS                                                                              \
	"SELECT seq, id, received_at, source, provider, kind, event_type, subtype, scope,"         \
	" session_key, occurred_at, occurred_raw, remote_addr, headers, body, pruned_at,"          \
	" query, problems, room, meeting, meeting_at, recording, facts FROM events"

/* Listings select NULL for the body, so large payloads are not read from disk. */
static void
event_row(sqlite3_stmt *st, bool with_body, struct hr_event_row *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = sqlite3_column_int64(st, 0);
	r->id = hr_sqlite_text(st, 1);
	r->received_us = sqlite3_column_int64(st, 2);
	r->source = hr_sqlite_text(st, 3);
	r->provider = hr_sqlite_text(st, 4);
	r->kind = hr_sqlite_text(st, 5);
	r->event_type = hr_sqlite_text(st, 6);
	r->subtype = hr_sqlite_text(st, 7);
	r->scope = hr_sqlite_text(st, 8);
	r->session_key = hr_sqlite_text(st, 9);
	r->occurred_valid = sqlite3_column_type(st, 10) != SQLITE_NULL;
	r->occurred_us = sqlite3_column_int64(st, 10);
	r->occurred_raw = hr_sqlite_text(st, 11);
	r->remote_addr = hr_sqlite_text(st, 12);
	r->headers_json = hr_sqlite_text(st, 13);
	r->pruned_us = sqlite3_column_int64(st, 15); /* NULL reads as 0: not pruned */
	r->query_json = hr_sqlite_text(st, 16);
	r->problems_json = hr_sqlite_text(st, 17);
	r->room = hr_sqlite_text(st, 18);
	r->meeting = hr_sqlite_text(st, 19);
	r->meeting_at_valid = sqlite3_column_type(st, 20) != SQLITE_NULL;
	r->meeting_at_us = sqlite3_column_int64(st, 20);
	r->recording = hr_sqlite_text(st, 21);
	r->facts_json = hr_sqlite_text(st, 22);
	if (with_body) {
		r->body = sqlite3_column_blob(st, 14);
		r->body_len = (size_t)sqlite3_column_bytes(st, 14);
		if (r->body == NULL)
			r->body = "";
	}
}

/*
 * "scope:key" when scope is a known scope name, else a bare key. With
 * `by_scope`, a bare key is looked up as scope IN (every scope) AND key: still
 * a probe of the sessions' (scope, key) unique index, once per scope, rather
 * than a scan or an index of its own that every event would keep up to date.
 */
static void
where_session_ref(struct hr_sqlw *w, const char *ref, const char *scope_col, const char *key_col,
    bool by_scope, char *scope, size_t scope_len)
{
	const char *colon = strchr(ref, ':');

	if (colon != NULL && (size_t)(colon - ref) < scope_len) {
		memcpy(scope, ref, (size_t)(colon - ref));
		scope[colon - ref] = '\0';
		for (int sc = HR_SCOPE_NONE + 1; sc <= HR_SCOPE_AGENTHUMAN; sc++) {
			if (strcmp(scope, hr_scope_name((enum hr_scope)sc)) == 0) {
				hr_sqlw_add(w, scope_col, scope, 0);
				hr_sqlw_add(w, key_col, colon + 1, 0);
				return;
			}
		}
	}
	if (by_scope) {
		hr_sqlw_put(w, w->len == 0 ? " WHERE scope IN (" : " AND scope IN (");
		for (int sc = HR_SCOPE_NONE + 1; sc <= HR_SCOPE_AGENTHUMAN; sc++) {
			hr_sqlw_put(w, sc > HR_SCOPE_NONE + 1 ? ", ?" : "?");
			hr_sqlw_bind(w, hr_scope_name((enum hr_scope)sc), 0);
		}
		hr_sqlw_put(w, ")");
	}
	hr_sqlw_add(w, key_col, ref, 0);
}

/*
 * The events of a session by reference (where_session_ref()): through the
 * session's id and events_session_id, which timelines need anyway, where an
 * index of session keys cost each event one more entry (schema 13). A
 * session's events are few, gathered and sorted; a room's may be many (a
 * Daily room reused for months), so a room's session is read through the
 * room's own index, newest first: its events are those of its room that are
 * room-scoped (event.c gives them their key as their room).
 */
static void
where_event_session(struct hr_sqlw *w, const char *ref, char *scope, size_t len)
{
	static const char room_prefix[] = "room:";
	struct hr_sqlw sessions = { .len = 0 };

	if (strncmp(ref, room_prefix, sizeof(room_prefix) - 1) == 0) {
		hr_sqlw_add(w, "room = ?", ref + sizeof(room_prefix) - 1, 0);
		hr_sqlw_put(w, " AND +scope = 'room'");
		return;
	}
	where_session_ref(&sessions, ref, "scope = ?", "key = ?", true, scope, len);
	hr_sqlw_splice(w, "session_id IN (SELECT id FROM sessions", &sessions, ")");
}

/*
 * A room's events by its name: events that name it (a room-scoped event's
 * room is its session key: event.c, and schema 6 for older rows), and events
 * that name no room but one of the meetings, recordings or recording
 * instances of these (an instance as HR_SQL_ROOM_INSTANCE_HELD says). Each
 * condition has its index (events_room, events_meeting, events_recording,
 * events_recording_instance).
 */
static const struct room_part {
	const char *cond;
	int binds; /* of the room */
} room_parts[HR_SQLW_ROOM_PARTS] = {
	{ "room = ?", 1 },
	{ "meeting IN (" ROOM_MEETINGS ") AND room IS NULL", 2 },
	{ "recording IN (" ROOM_RECORDINGS ") AND room IS NULL", 2 },
	{ "recording_instance IN (" ROOM_RECORDING_INSTANCES
	  ") AND room IS NULL AND " HR_SQL_ROOM_INSTANCE_HELD("events", "?"),
	    3 },
};

static void
bind_room(struct hr_sqlw *w, const struct room_part *part, const char *room)
{
	for (int i = 0; i < part->binds; i++)
		hr_sqlw_bind(w, room, 0);
}

/* The room's conditions as one OR: the room= filter beside others (room_union()). */
static void
where_room(struct hr_sqlw *w, const char *room)
{
	hr_sqlw_put(w, w->len == 0 ? " WHERE (" : " AND (");
	for (size_t i = 0; i < HR_ARRAY_LEN(room_parts); i++) {
		hr_sqlw_put(w, i == 0 ? "(" : " OR (");
		hr_sqlw_put(w, room_parts[i].cond);
		hr_sqlw_put(w, ")");
		bind_room(w, &room_parts[i], room);
	}
	hr_sqlw_put(w, ")");
}

/*
 * A page of events is chosen by seq alone, then its rows are read: when the
 * filter's rows must be sorted (an OR of indexes), the sort holds seqs, not
 * whole rows. HEAD follows the columns; TAIL follows the page's ORDER BY ...
 * LIMIT and is followed by its direction.
 */
#define PAGE_OF_SEQS_HEAD " WHERE seq IN (SELECT seq FROM events"
#define PAGE_OF_SEQS_TAIL ") ORDER BY seq"

/* An event's place on a timeline: its own time, else when it was received. */
#define EVENT_TIME "coalesce(occurred_at, received_at)"

/*
 * The first n events in `order` of a union of parts: each part's condition
 * (put_part() writes it and binds its values) with the other conditions and
 * its own ORDER BY ... LIMIT n, so that a part reads n entries of its index
 * in that order and the parts without one sort their few rows. As one OR or
 * IN, every matching event was gathered and sorted (a room of 55k events in
 * 1M: a page 13.6 ms, a timeline 180 ms, bench/scale). `w` holds the other
 * conditions and becomes " WHERE seq IN (...)", their binds repeated in each
 * part.
 */
static void
where_union(struct hr_sqlw *w, size_t nparts,
    void (*put_part)(struct hr_sqlw *, size_t, const void *), const void *arg, const char *order,
    unsigned n)
{
	struct hr_sqlw others = *w;
	char part[128];

	w->len = 0;
	w->n = 0;
	hr_sqlw_put(w, " WHERE seq IN (");
	for (size_t i = 0; i < nparts; i++) {
		hr_sqlw_put(w,
		    i == 0 ? "SELECT seq FROM (SELECT seq FROM events"
		           : " UNION ALL SELECT seq FROM (SELECT seq FROM events");
		hr_sqlw_put(w, others.sql);
		for (int b = 0; b < others.n; b++)
			hr_sqlw_bind(w, others.binds[b].text, others.binds[b].num);
		hr_sqlw_put(w, others.len > 0 ? " AND " : " WHERE ");
		put_part(w, i, arg);
		snprintf(part, sizeof(part), " ORDER BY %s LIMIT %u)", order, n);
		hr_sqlw_put(w, part);
	}
	hr_sqlw_put(w, ")");
}

/* A room's parts (room_parts[]): events_room for seq, events_room_time for
 * EVENT_TIME, and the meetings' and recordings' few rows. pg_read.c builds
 * the same union. */
static void
put_room_part(struct hr_sqlw *w, size_t i, const void *room)
{
	hr_sqlw_put(w, room_parts[i].cond);
	bind_room(w, &room_parts[i], room);
}

static void
where_room_union(struct hr_sqlw *w, const char *room, const char *order, unsigned n)
{
	where_union(w, HR_ARRAY_LEN(room_parts), put_room_part, room, order, n);
}

/* A facet's part: its entries of events_facet. */
static void
put_facet_part(struct hr_sqlw *w, size_t i, const void *ids)
{
	hr_sqlw_put(w, "facet = ?");
	hr_sqlw_bind(w, NULL, ((const struct hr_facet_ids *)ids)->v[i]);
}

struct event_ctx {
	hr_event_row_cb cb;
	void *arg;
	bool with_body;
};

static int
emit_event(sqlite3_stmt *st, void *p)
{
	struct event_ctx *c = p;
	struct hr_event_row r;

	event_row(st, c->with_body, &r);
	return c->cb(&r, c->arg);
}

/* A filter on the event's place (session, room, query value): the short walk
 * among the filters, by the index of its own. */
static bool
names_a_place(const struct hr_event_filter *f)
{
	return f->session != NULL || f->room != NULL || f->nquery > 0;
}

/*
 * A page filtered by a room alone (its seq and time bounds aside) is
 * where_room_union()'s: each part reads n entries of its own index (a
 * room of 55k events in 1M: 22.6 -> 1.6 ms). With other filters, the OR: the
 * parts would each walk their room index checking the rest, where one of the
 * others' indexes may be the short walk, and SQLite, without statistics,
 * cannot tell (the same room and one kind: 124 ms as a union, 0.4 ms as an OR).
 */
static bool
room_union(const struct hr_event_filter *f)
{
	return f->room != NULL && !hr_sqlite_names_facets(f) && f->session == NULL &&
	    f->nquery == 0;
}

/*
 * How a listing meets its filters on the facet's columns (source, provider,
 * kind, event type, subtype; schema 13):
 * - ANY: there are none;
 * - NONE: no facet matches, so no event does;
 * - UNION: a union of the matching facets' walks of events_facet, each n
 *   entries long, when no filter on a place is the shorter walk;
 * - IN: a check of each row's facet, beside a place's walk, or when too many
 *   facets match for a union (the events then are most of the table, and the
 *   seq order finds a page soon).
 */
enum facet_plan { FACETS_ANY, FACETS_NONE, FACETS_UNION, FACETS_IN };

static int
plan_facets(sqlite3 *db, const struct hr_event_filter *f, struct hr_facet_ids *ids,
    enum facet_plan *plan, struct hr_error *err)
{
	int rc;

	*plan = FACETS_ANY;
	if (!hr_sqlite_names_facets(f))
		return HR_OK;
	/* One snapshot for the facets and the events (end_read()): else an event of
	 * a facet made in between could be missed by a page, and for good by a
	 * stream that goes on after the later events it did see. */
	if ((rc = hr_sqlite_exec(db, "BEGIN", err)) != HR_OK)
		return rc;
	if ((rc = hr_sqlite_facets_matching(db, f, ids, err)) != HR_OK)
		return rc;
	if (ids->n == 0)
		*plan = FACETS_NONE;
	else if (ids->many || names_a_place(f))
		*plan = FACETS_IN;
	else
		*plan = FACETS_UNION;
	return HR_OK;
}

/* The statement done, the snapshot plan_facets() took ends. */
static void
end_read(sqlite3 *db, sqlite3_stmt *st)
{
	sqlite3_finalize(st);
	if (!sqlite3_get_autocommit(db))
		(void)hr_sqlite_exec(db, "COMMIT", NULL);
}

/* The equality filters of an event listing, the unions aside; `scope` holds a
 * bound value. */
static void
where_event_match(struct hr_sqlw *w, const struct hr_event_filter *f, enum facet_plan plan,
    char *scope, size_t len)
{
	if (plan == FACETS_IN)
		hr_sqlite_where_facets_in(w, f);
	if (f->session != NULL)
		where_event_session(w, f->session, scope, len);
	if (f->room != NULL && !room_union(f))
		where_room(w, f->room);
	if (f->nquery > HR_QUERY_FILTERS_MAX)
		w->overflow = true;
	for (size_t i = 0; i < f->nquery && i < HR_QUERY_FILTERS_MAX; i++) {
		/* Two binds: name, then value. */
		hr_sqlw_add(w,
		    "seq IN (SELECT event_seq FROM event_query WHERE name = ? AND value = ?)",
		    f->query_names[i], 0);
		hr_sqlw_bind(w, f->query_values[i], 0);
	}
}

/*
 * A page of `n` events matching `w` in seq order `dir` ("DESC", "ASC"): a
 * union of walks (room_union(), FACETS_UNION), else chosen by seq alone and
 * then read (PAGE_OF_SEQS_*).
 */
static int
prepare_page(sqlite3 *db, const struct hr_event_filter *f, enum facet_plan plan,
    const struct hr_facet_ids *ids, struct hr_sqlw *w, const char *dir, unsigned n,
    sqlite3_stmt **st, struct hr_error *err)
{
	char order[16], tail[64];

	if (room_union(f) || plan == FACETS_UNION) {
		snprintf(order, sizeof(order), "seq %s", dir);
		if (plan == FACETS_UNION)
			where_union(w, ids->n, put_facet_part, ids, order, n);
		else
			where_room_union(w, f->room, order, n);
		snprintf(tail, sizeof(tail), " ORDER BY %s LIMIT %u", order, n);
		return hr_sqlw_prepare(
		    db, f->with_body ? EVENT_COLUMNS : EVENT_COLUMNS_NO_BODY, w, tail, st, err);
	}
	snprintf(
	    tail, sizeof(tail), " ORDER BY seq %s LIMIT %u" PAGE_OF_SEQS_TAIL " %s", dir, n, dir);
	return hr_sqlw_prepare(db,
	    f->with_body ? EVENT_COLUMNS PAGE_OF_SEQS_HEAD
	                 : EVENT_COLUMNS_NO_BODY PAGE_OF_SEQS_HEAD,
	    w, tail, st, err);
}

int
hr_sqlite_list_events(struct hr_store_backend *b, const struct hr_event_filter *f,
    hr_event_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	struct event_ctx ctx = { cb, arg, f->with_body };
	struct hr_sqlw w = { .len = 0 };
	struct hr_facet_ids ids;
	enum facet_plan plan;
	char scope[32];
	sqlite3_stmt *st = NULL;
	sqlite3 *db = hr_sqlite_reader_get(b);
	int rc;

	*next_cursor = 0;
	rc = plan_facets(db, f, &ids, &plan, err);
	if (rc != HR_OK || plan == FACETS_NONE)
		goto out;
	where_event_match(&w, f, plan, scope, sizeof(scope));
	/* Unary + keeps the time bounds off the indexes: walking the seq order from
	 * the newest row and stopping after `limit` beats collecting every row
	 * since `since` and sorting them, which is what the planner picks otherwise. */
	hr_sqlw_num(&w, "+received_at >= ?", f->since_us);
	hr_sqlw_num(&w, "+received_at < ?", f->until_us);
	hr_sqlw_num(&w, "seq < ?", f->before_seq);
	rc = prepare_page(db, f, plan, &ids, &w, "DESC", f->limit + 1, &st, err);
	if (rc == HR_OK)
		rc = hr_sqlw_run_page(db, st, f->limit, emit_event, &ctx, next_cursor, err);
out:
	end_read(db, st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

int
hr_sqlite_events_after(struct hr_store_backend *b, const struct hr_event_filter *f,
    int64_t after_seq, hr_event_row_cb cb, void *arg, struct hr_error *err)
{
	struct event_ctx ctx = { cb, arg, f->with_body };
	struct hr_sqlw w = { .len = 0 };
	struct hr_facet_ids ids;
	enum facet_plan plan;
	char scope[32];
	sqlite3_stmt *st = NULL;
	sqlite3 *db = hr_sqlite_reader_get(b);
	int rc, step = SQLITE_DONE;

	rc = plan_facets(db, f, &ids, &plan, err);
	if (rc != HR_OK || plan == FACETS_NONE)
		goto out;
	where_event_match(&w, f, plan, scope, sizeof(scope));
	hr_sqlw_add(&w, "seq > ?", NULL, after_seq);
	rc = prepare_page(db, f, plan, &ids, &w, "ASC", f->limit, &st, err);
	while (rc == HR_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
		if (emit_event(st, &ctx) != HR_OK)
			rc = hr_error_set(err, HR_ENOMEM, "row", "cannot build the answer");
	if (rc == HR_OK && step != SQLITE_DONE)
		rc = hr_sqlite_error(db, err, "query");
out:
	end_read(db, st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

int
hr_sqlite_get_event(
    struct hr_store_backend *b, const char *id, hr_event_row_cb cb, void *arg, struct hr_error *err)
{
	struct event_ctx ctx = { cb, arg, true };
	struct hr_sqlw w = { .len = 0 };
	sqlite3_stmt *st = NULL;
	sqlite3 *db = hr_sqlite_reader_get(b);
	int rc = hr_sqlw_prepare(db, EVENT_COLUMNS, &w, " WHERE id = ?1", &st, err);

	if (rc == HR_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			rc = emit_event(st, &ctx) == HR_OK ? HR_OK : HR_ENOMEM;
		else if (rc == SQLITE_DONE)
			rc = hr_error_set(err, HR_ENOTFOUND, "id", "no event %s", id);
		else
			rc = hr_sqlite_error(db, err, "query");
	}
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

#define SESSION_COLUMNS                                                                            \
	"SELECT id, scope, key, provider, status, first_seen, last_seen, event_count, duration,"   \
	" shutdown_reason, exit_reason, error_type, overall_score FROM sessions"

struct session_ctx {
	hr_session_row_cb cb;
	void *arg;
};

static int
emit_session(sqlite3_stmt *st, void *p)
{
	struct session_ctx *c = p;
	struct hr_session_row r = {
		.id = sqlite3_column_int64(st, 0),
		.scope = hr_sqlite_text(st, 1),
		.key = hr_sqlite_text(st, 2),
		.provider = hr_sqlite_text(st, 3),
		.status = hr_session_status_name((enum hr_session_status)sqlite3_column_int(st, 4)),
		.first_seen_us = sqlite3_column_int64(st, 5),
		.last_seen_us = sqlite3_column_int64(st, 6),
		.event_count = sqlite3_column_int64(st, 7),
		.has_duration = sqlite3_column_type(st, 8) != SQLITE_NULL,
		.duration = sqlite3_column_double(st, 8),
		.shutdown_reason = hr_sqlite_text(st, 9),
		.exit_reason = hr_sqlite_text(st, 10),
		.error_type = hr_sqlite_text(st, 11),
		.has_score = sqlite3_column_type(st, 12) != SQLITE_NULL,
		.overall_score = sqlite3_column_double(st, 12),
	};

	return c->cb(&r, c->arg);
}

int
hr_sqlite_list_sessions(struct hr_store_backend *b, const struct hr_session_filter *f,
    hr_session_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	struct session_ctx ctx = { cb, arg };
	struct hr_sqlw w = { .len = 0 };
	char tail[64];
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc, status = -1;

	if (f->status != NULL && (status = hr_session_status_from_name(f->status)) < 0)
		return hr_error_set(err, HR_EINVAL, "status", "unknown status %s", f->status);
	hr_sqlw_text(&w, "provider = ?", f->provider);
	if (status >= 0)
		hr_sqlw_add(&w, "status = ?", NULL, status);
	hr_sqlw_num(&w, "+last_seen >= ?", f->since_us); /* walk id order; see list_events */
	hr_sqlw_num(&w, "id < ?", f->before_id);
	snprintf(tail, sizeof(tail), " ORDER BY id DESC LIMIT %u", f->limit + 1);
	db = hr_sqlite_reader_get(b);
	rc = hr_sqlw_prepare(db, SESSION_COLUMNS, &w, tail, &st, err);
	if (rc == HR_OK)
		rc = hr_sqlw_run_page(db, st, f->limit, emit_session, &ctx, next_cursor, err);
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

/*
 * The newest `max` events of a timeline, oldest first: the newest max + 1 are
 * selected, then put in time order with their count, and the oldest is left
 * out when there are more than `max` (see skip_extra()). As for a page, they
 * are chosen by their seqs and times alone, then read: a session's with
 * TIMELINE_NEWEST over its index, a room's with where_room_union().
 */
#define TIMELINE_HEAD      "SELECT *, count(*) OVER () FROM (" EVENT_COLUMNS_NO_BODY
#define TIMELINE_NEWEST    " ORDER BY " EVENT_TIME " DESC, seq DESC LIMIT %u"
#define TIMELINE_TAIL      TIMELINE_NEWEST ") AS t ORDER BY " EVENT_TIME ", seq"
#define TIMELINE_COUNT_COL 23 /* after the event columns */

struct timeline_ctx {
	struct event_ctx ev;
	unsigned max;
	bool first_seen;
	bool *truncated;
};

static int
skip_extra(sqlite3_stmt *st, void *p)
{
	struct timeline_ctx *t = p;
	bool first = !t->first_seen;

	t->first_seen = true;
	if (first && sqlite3_column_int64(st, TIMELINE_COUNT_COL) > (int64_t)t->max) {
		*t->truncated = true; /* the oldest of max + 1: older ones exist */
		return HR_OK;
	}
	return emit_event(st, &t->ev);
}

static int
session_events(sqlite3 *db, int64_t session_id, const char *room, hr_event_row_cb ecb, void *arg,
    unsigned max, bool *truncated, struct hr_error *err)
{
	struct timeline_ctx ctx = { { ecb, arg, false }, max, false, truncated };
	struct hr_sqlw w = { .len = 0 };
	char tail[sizeof(TIMELINE_TAIL) + 16];
	sqlite3_stmt *st = NULL;
	int64_t unused;
	int rc;

	if (room != NULL) {
		where_room_union(&w, room, EVENT_TIME " DESC, seq DESC", max + 1);
	} else {
		hr_sqlw_add(
		    &w, "seq IN (SELECT seq FROM events WHERE session_id = ?", NULL, session_id);
		snprintf(tail, sizeof(tail), TIMELINE_NEWEST ")", max + 1);
		hr_sqlw_put(&w, tail);
	}
	*truncated = false;
	snprintf(tail, sizeof(tail), TIMELINE_TAIL, max + 1);
	rc = hr_sqlw_prepare(db, TIMELINE_HEAD, &w, tail, &st, err);
	if (rc == HR_OK)
		rc = hr_sqlw_run_page(db, st, max + 1, skip_extra, &ctx, &unused, err);
	sqlite3_finalize(st);
	return rc;
}

int
hr_sqlite_get_session(struct hr_store_backend *b, const char *ref, hr_session_row_cb scb,
    hr_event_row_cb ecb, void *arg, unsigned max_events, bool *truncated, struct hr_error *err)
{
	struct session_ctx ctx = { scb, arg };
	struct hr_sqlw w = { .len = 0 };
	char scope[32];
	sqlite3_stmt *st = NULL;
	sqlite3 *db = hr_sqlite_reader_get(b);
	int64_t id = 0;
	char *room = NULL;
	int rc;

	where_session_ref(&w, ref, "scope = ?", "key = ?", true, scope, sizeof(scope));
	/* One snapshot for the row and its timeline (end_read()): else an event
	 * committed in between is on the timeline but not in the row's
	 * event_count and last_seen. */
	rc = hr_sqlite_exec(db, "BEGIN", err);
	if (rc == HR_OK)
		rc = hr_sqlw_prepare(
		    db, SESSION_COLUMNS, &w, " ORDER BY last_seen DESC, id DESC LIMIT 1", &st, err);
	if (rc == HR_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			id = sqlite3_column_int64(st, 0);
			if (strcmp(hr_sqlite_text(st, 1), "room") == 0 &&
			    (room = strdup(hr_sqlite_text(st, 2))) == NULL)
				rc = hr_error_set(err, HR_ENOMEM, "session", "out of memory");
			else
				rc = emit_session(st, &ctx) == HR_OK ? HR_OK : HR_ENOMEM;
		} else if (rc == SQLITE_DONE) {
			rc = hr_error_set(err, HR_ENOTFOUND, "session", "no session %s", ref);
		} else {
			rc = hr_sqlite_error(db, err, "query");
		}
	}
	sqlite3_finalize(st);
	if (rc == HR_OK)
		rc = session_events(db, id, room, ecb, arg, max_events, truncated, err);
	end_read(db, NULL);
	free(room);
	hr_sqlite_reader_put(b, db);
	return rc;
}

struct rejection_ctx {
	hr_rejection_row_cb cb;
	void *arg;
	bool with_body;
};

/* length(body) reads the blob's size from its header, not the blob. */
#define REJECTION_COLUMNS                                                                          \
	"SELECT seq, id, received_at, source, remote_addr, kind, http_status, problem, headers,"   \
	" query, accepted_event, length(body), acknowledged, %s FROM rejections"

static int
emit_rejection(sqlite3_stmt *st, void *p)
{
	struct rejection_ctx *c = p;
	struct hr_rejection_row r = {
		.seq = sqlite3_column_int64(st, 0),
		.id = hr_sqlite_text(st, 1),
		.received_us = sqlite3_column_int64(st, 2),
		.source = hr_sqlite_text(st, 3),
		.remote_addr = hr_sqlite_text(st, 4),
		.kind = hr_sqlite_text(st, 5),
		.http_status = sqlite3_column_int(st, 6),
		.problem_json = hr_sqlite_text(st, 7),
		.headers_json = hr_sqlite_text(st, 8),
		.query_json = hr_sqlite_text(st, 9),
		.accepted_event = hr_sqlite_text(st, 10),
		.body_len = (size_t)sqlite3_column_int64(st, 11),
		.acknowledged = sqlite3_column_int(st, 12) != 0,
	};

	if (c->with_body) {
		r.body = sqlite3_column_blob(st, 13);
		r.body_len = (size_t)sqlite3_column_bytes(st, 13);
		if (r.body == NULL)
			r.body = "";
	}
	return c->cb(&r, c->arg);
}

int
hr_sqlite_list_rejections(struct hr_store_backend *b, const struct hr_rejection_filter *f,
    hr_rejection_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	struct rejection_ctx ctx = { cb, arg, false };
	struct hr_sqlw w = { .len = 0 };
	char tail[64], head[256];
	sqlite3_stmt *st = NULL;
	sqlite3 *db;
	int rc;

	hr_sqlw_text(&w, "source = ?", f->source);
	hr_sqlw_num(&w, "+received_at >= ?", f->since_us); /* walk seq order; see list_events */
	hr_sqlw_num(&w, "seq < ?", f->before_seq);
	snprintf(tail, sizeof(tail), " ORDER BY seq DESC LIMIT %u", f->limit + 1);
	snprintf(head, sizeof(head), REJECTION_COLUMNS, "NULL");
	db = hr_sqlite_reader_get(b);
	rc = hr_sqlw_prepare(db, head, &w, tail, &st, err);
	if (rc == HR_OK)
		rc = hr_sqlw_run_page(db, st, f->limit, emit_rejection, &ctx, next_cursor, err);
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

int
hr_sqlite_get_rejection(struct hr_store_backend *b, const char *id, hr_rejection_row_cb cb,
    void *arg, struct hr_error *err)
{
	struct rejection_ctx ctx = { cb, arg, true };
	char head[256];
	sqlite3_stmt *st = NULL;
	sqlite3 *db = hr_sqlite_reader_get(b);
	int rc;

	snprintf(head, sizeof(head), REJECTION_COLUMNS, "body");
	rc = hr_sqlw_prepare(db, head, NULL, " WHERE id = ?1", &st, err);
	if (rc == HR_OK) {
		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			rc = emit_rejection(st, &ctx) == HR_OK ? HR_OK : HR_ENOMEM;
		else if (rc == SQLITE_DONE)
			rc = hr_error_set(err, HR_ENOTFOUND, "id", "no rejection %s", id);
		else
			rc = hr_sqlite_error(db, err, "query");
	}
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

/* ---- deliveries ---- */

/* The oldest pending delivery is the first created: the pending one with the
 * smallest id, one entry of deliveries_dest_status. min(created_at) read every
 * pending row of the destination, for each /metrics scrape and each GET of it. */
int
hr_sqlite_destination(struct hr_store_backend *b, const char *name, struct hr_destination_row *out,
    char *reason_buf, size_t reason_len, struct hr_error *err)
{
	static const char sql[] =
	    "SELECT (SELECT disabled FROM destinations WHERE name = ?1),"
	    " (SELECT disabled_reason FROM destinations WHERE name = ?1),"
	    " (SELECT disabled_at FROM destinations WHERE name = ?1),"
	    " (SELECT n FROM delivery_counts WHERE destination = ?1 AND status = 0),"
	    " (SELECT created_at FROM deliveries WHERE destination = ?1 AND status = 0"
	    " ORDER BY id LIMIT 1),"
	    " (SELECT n FROM delivery_counts WHERE destination = ?1 AND status = 1),"
	    " (SELECT n FROM delivery_counts WHERE destination = ?1 AND status = 2),"
	    " (SELECT n FROM delivery_counts WHERE destination = ?1 AND status = 3)";
	sqlite3_stmt *st = NULL;
	sqlite3 *db = hr_sqlite_reader_get(b);
	int rc = HR_OK;

	memset(out, 0, sizeof(*out));
	out->name = name;
	if (reason_len > 0)
		reason_buf[0] = '\0';
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = hr_sqlite_error(db, err, "destination");
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = hr_sqlite_error(db, err, "destination");
		goto out;
	}
	out->disabled = sqlite3_column_int(st, 0) != 0;
	if (hr_sqlite_text(st, 1) != NULL && reason_len > 0) {
		snprintf(reason_buf, reason_len, "%s", hr_sqlite_text(st, 1));
		out->disabled_reason = reason_buf;
	}
	out->disabled_us = sqlite3_column_int64(st, 2);
	out->pending = sqlite3_column_int64(st, 3);
	out->oldest_pending_us = sqlite3_column_int64(st, 4);
	out->succeeded = sqlite3_column_int64(st, 5);
	out->failed = sqlite3_column_int64(st, 6);
	out->dead = sqlite3_column_int64(st, 7);
out:
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

int
hr_sqlite_pending_destinations(
    struct hr_store_backend *b, hr_name_cb cb, void *arg, struct hr_error *err)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = hr_sqlite_reader_get(b);
	int rc = HR_OK, step = SQLITE_ROW;

	if (sqlite3_prepare_v2(db, HR_SQL_PENDING_DESTINATIONS(" INDEXED BY deliveries_due"), -1,
	        &st, NULL) != SQLITE_OK) {
		rc = hr_sqlite_error(db, err, "destinations");
		goto out;
	}
	while (rc == HR_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
		rc = cb(hr_sqlite_text(st, 0), arg);
	if (rc == HR_OK && step != SQLITE_DONE)
		rc = hr_sqlite_error(db, err, "destinations");
out:
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, db);
	return rc;
}

#define DELIVERY_COLUMNS                                                                           \
	"SELECT d.id, e.id, d.destination, d.status, d.attempts, d.created_at, d.updated_at,"      \
	" d.next_attempt_at, d.last_status, d.last_error FROM deliveries d"                        \
	" JOIN events e ON e.seq = d.event_seq"

struct delivery_ctx {
	hr_delivery_row_cb dcb;
	hr_attempt_row_cb acb;
	void *arg;
	sqlite3 *db;
	struct hr_error *err;
};

static int
attempts_of(struct delivery_ctx *c, int64_t delivery_id)
{
	static const char sql[] =
	    "SELECT delivery_id, number, started_at, duration_us, http_status, error, response"
	    " FROM attempts WHERE delivery_id = ?1 ORDER BY number, id";
	sqlite3_stmt *st = NULL;
	int rc = HR_OK, step;

	if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
		return hr_sqlite_error(c->db, c->err, "attempts");
	sqlite3_bind_int64(st, 1, delivery_id);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct hr_attempt_row a = {
			.delivery_id = sqlite3_column_int64(st, 0),
			.number = sqlite3_column_int(st, 1),
			.started_us = sqlite3_column_int64(st, 2),
			.duration_us = sqlite3_column_int64(st, 3),
			.http_status = sqlite3_column_int(st, 4),
			.error = hr_sqlite_text(st, 5),
			.response = sqlite3_column_blob(st, 6),
			.response_len = (size_t)sqlite3_column_bytes(st, 6),
		};

		if ((rc = c->acb(&a, c->arg)) != HR_OK)
			break;
	}
	if (rc == HR_OK && step != SQLITE_DONE)
		rc = hr_sqlite_error(c->db, c->err, "attempts");
	sqlite3_finalize(st);
	return rc;
}

static int
emit_delivery(sqlite3_stmt *st, void *p)
{
	struct delivery_ctx *c = p;
	enum hr_delivery_status status = (enum hr_delivery_status)sqlite3_column_int(st, 3);
	struct hr_delivery_row r = {
		.id = sqlite3_column_int64(st, 0),
		.event_id = hr_sqlite_text(st, 1),
		.destination = hr_sqlite_text(st, 2),
		.status = hr_delivery_status_name(status),
		.attempts = sqlite3_column_int(st, 4),
		.created_us = sqlite3_column_int64(st, 5),
		.updated_us = sqlite3_column_int64(st, 6),
		.next_attempt_us = status == HR_DLV_PENDING ? sqlite3_column_int64(st, 7) : 0,
		.last_status = sqlite3_column_int(st, 8),
		.last_error = hr_sqlite_text(st, 9),
	};
	int rc = c->dcb(&r, c->arg);

	if (rc == HR_OK && c->acb != NULL)
		rc = attempts_of(c, r.id);
	return rc;
}

int
hr_sqlite_list_deliveries(struct hr_store_backend *b, const struct hr_delivery_filter *f,
    hr_delivery_row_cb cb, void *arg, int64_t *next_cursor, struct hr_error *err)
{
	struct delivery_ctx ctx = { cb, NULL, arg, NULL, err };
	struct hr_sqlw w = { .len = 0 };
	char tail[64];
	sqlite3_stmt *st = NULL;
	int rc;

	hr_sqlw_text(&w, "d.destination = ?", f->destination);
	if (f->status >= 0)
		hr_sqlw_add(&w, "d.status = ?", NULL, f->status);
	hr_sqlw_num(&w, "+d.created_at >= ?", f->since_us); /* walk id order; see list_events */
	hr_sqlw_num(&w, "d.id < ?", f->before_id);
	snprintf(tail, sizeof(tail), " ORDER BY d.id DESC LIMIT %u", f->limit + 1);
	ctx.db = hr_sqlite_reader_get(b);
	rc = hr_sqlw_prepare(ctx.db, DELIVERY_COLUMNS, &w, tail, &st, err);
	if (rc == HR_OK)
		rc = hr_sqlw_run_page(ctx.db, st, f->limit, emit_delivery, &ctx, next_cursor, err);
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, ctx.db);
	return rc;
}

/* No deliveries and no event are different answers (200 [] and 404). */
static int
event_exists(sqlite3 *db, const char *id, struct hr_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM events WHERE id = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return hr_sqlite_error(db, err, "query");
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = HR_OK;
	else if (rc == SQLITE_DONE)
		rc = hr_error_set(err, HR_ENOTFOUND, "id", "no event %s", id);
	else
		rc = hr_sqlite_error(db, err, "query");
	sqlite3_finalize(st);
	return rc;
}

int
hr_sqlite_event_deliveries(struct hr_store_backend *b, const char *event_id, int64_t after_id,
    hr_delivery_row_cb dcb, hr_attempt_row_cb acb, void *arg, int64_t *next_cursor,
    struct hr_error *err)
{
	struct delivery_ctx ctx = { dcb, acb, arg, NULL, err };
	struct hr_sqlw w = { .len = 0 };
	sqlite3_stmt *st = NULL;
	int rc;

	hr_sqlw_add(&w, "e.id = ?", event_id, 0);
	/* The newest 1,000, oldest first (ORDER BY d.id LIMIT once gave the oldest:
	 * an event replayed past 1,000 deliveries hid its latest attempts). */
	hr_sqlw_add(&w,
	    "d.id >= coalesce((SELECT id FROM deliveries WHERE event_seq = e.seq"
	    " ORDER BY id DESC LIMIT 1 OFFSET ?), 0)",
	    NULL, 999);
	hr_sqlw_num(&w, "d.id > ?", after_id); /* the page before ended there */
	ctx.db = hr_sqlite_reader_get(b);
	/* One snapshot: an event pruned between the two reads is a 404, not 200 []. */
	rc = hr_sqlite_exec(ctx.db, "BEGIN", err);
	if (rc == HR_OK)
		rc = event_exists(ctx.db, event_id, err);
	if (rc == HR_OK)
		rc = hr_sqlw_prepare(
		    ctx.db, DELIVERY_COLUMNS, &w, " ORDER BY d.id LIMIT 1001", &st, err);
	if (rc == HR_OK)
		rc = hr_sqlw_run_page(ctx.db, st, 1000, emit_delivery, &ctx, next_cursor, err);
	end_read(ctx.db, st);
	hr_sqlite_reader_put(b, ctx.db);
	return rc;
}

int
hr_sqlite_replay_count(
    struct hr_store_backend *b, const struct hr_replay *r, int64_t *count, struct hr_error *err)
{
	sqlite3 *db = hr_sqlite_reader_get(b);
	sqlite3_stmt *st = NULL;
	int rc;

	*count = 0;
	if (sqlite3_prepare_v2(db, "SELECT count(*)" REPLAY_DESTINATION_EVENTS, -1, &st, NULL) !=
	    SQLITE_OK) {
		rc = hr_sqlite_error(db, err, "query");
		goto out;
	}
	sqlite3_bind_text(st, 1, r->destination, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, r->since_us);
	sqlite3_bind_int64(st, 3, r->until_us);
	sqlite3_bind_int(st, 4, r->status);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = hr_sqlite_error(db, err, "query");
		goto out;
	}
	*count = sqlite3_column_int64(st, 0);
	rc = HR_OK;
out:
	sqlite3_finalize(st);
	hr_sqlite_reader_put(b, db);
	return rc;
}
