/*
 * store_writer.c - the one writer thread and its group commit.
 *
 * HTTP threads queue jobs; the writer takes up to batch_max of them, writes
 * each inside its own SAVEPOINT (one bad row fails alone) and COMMITs once.
 * With synchronous=FULL the fsync is the cost of a commit, so under load
 * many events share it: throughput comes from batching, not from weaker
 * durability. Only after COMMIT returns are the jobs' done() callbacks run,
 * which is when the HTTP layer may answer 2xx.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "store_int.h"

static const char *const writer_sql[WS_COUNT] = {
	[WS_BEGIN] = "BEGIN IMMEDIATE",
	[WS_COMMIT] = "COMMIT",
	[WS_ROLLBACK] = "ROLLBACK",
	[WS_SAVEPOINT] = "SAVEPOINT job",
	[WS_RELEASE] = "RELEASE job",
	[WS_ROLLBACK_TO] = "ROLLBACK TO job",
	/* A session's status only moves forward; ended/failed are final but the
	 * latest of the two wins (a retried bot can fail, then complete). */
	[WS_UPSERT_SESSION] =
	    "INSERT INTO sessions (scope, key, provider, status, first_seen, last_seen,"
	    " event_count, duration, shutdown_reason, exit_reason, error_type, overall_score)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1, ?6, ?7, ?8, ?9, ?10)"
	    " ON CONFLICT (scope, key) DO UPDATE SET"
	    "  status = CASE WHEN excluded.status >= 3 OR excluded.status > status"
	    "   THEN excluded.status ELSE status END,"
	    "  first_seen = min(first_seen, excluded.first_seen),"
	    "  last_seen = max(last_seen, excluded.last_seen),"
	    "  event_count = event_count + 1,"
	    "  duration = coalesce(excluded.duration, duration),"
	    "  shutdown_reason = coalesce(excluded.shutdown_reason, shutdown_reason),"
	    "  exit_reason = coalesce(excluded.exit_reason, exit_reason),"
	    "  error_type = coalesce(excluded.error_type, error_type),"
	    "  overall_score = coalesce(excluded.overall_score, overall_score)"
	    " RETURNING id",
	/* An event of another session linked to a room: the room's session
	 * exists and counts it, but its state and attributes are the room's own. */
	[WS_UPSERT_ROOM_LINK] =
	    "INSERT INTO sessions (scope, key, provider, status, first_seen, last_seen,"
	    " event_count) VALUES ('room', ?1, ?2, 1, ?3, ?3, 1)"
	    " ON CONFLICT (scope, key) DO UPDATE SET"
	    "  first_seen = min(first_seen, excluded.first_seen),"
	    "  last_seen = max(last_seen, excluded.last_seen),"
	    "  event_count = event_count + 1",
	[WS_INSERT_EVENT] =
	    "INSERT INTO events (id, received_at, source, provider, kind, event_type, subtype,"
	    " scope, session_key, session_id, occurred_at, occurred_raw, remote_addr, headers, "
	    "body, query, problems, room, meeting, meeting_at, recording, facts)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,"
	    " ?18, ?19, ?20, ?21, ?22)",
	[WS_INSERT_REJECTION] =
	    "INSERT INTO rejections (id, received_at, source, remote_addr, kind, http_status,"
	    " problem, headers, body, query) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[WS_TRIM_REJECTIONS] =
	    "DELETE FROM rejections WHERE seq <= (SELECT max(seq) FROM rejections) - ?1",
	[WS_INSERT_DELIVERY] =
	    "INSERT INTO deliveries (event_seq, destination, order_key, status, created_at,"
	    " updated_at, next_attempt_at) VALUES (?1, ?2, ?3, 0, ?4, ?4, ?4)",
	[WS_INSERT_ATTEMPT] = "INSERT INTO attempts (delivery_id, number, started_at, duration_us, "
	                      "http_status, error,"
	                      " response) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[WS_UPDATE_DELIVERY] = "UPDATE deliveries SET status = ?2, attempts = max(attempts, ?3),"
	                       " next_attempt_at = coalesce(?4, next_attempt_at), updated_at = ?5, "
	                       "locked_until = NULL,"
	                       " last_status = ?6, last_error = ?7 WHERE id = ?1",
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
	/* Events this destination had deliveries for, not already pending again. */
	[WS_REPLAY_DESTINATION] =
	    "INSERT INTO deliveries (event_seq, destination, order_key, status, created_at,"
	    " updated_at, next_attempt_at) SELECT e.seq, ?1, CASE WHEN ?5 AND e.session_key IS NOT"
	    " NULL THEN e.scope || ':' || e.session_key END, 0, ?6, ?6, "
	    "?6" REPLAY_DESTINATION_EVENTS " ORDER BY e.seq",
	[WS_DEDUP_FIND] =
	    "SELECT event_id FROM dedup WHERE source = ?1 AND key = ?2 AND expires_at > ?3",
	[WS_DEDUP_PUT] = "INSERT OR REPLACE INTO dedup (source, key, event_id, expires_at)"
	                 " VALUES (?1, ?2, ?3, ?4)",
	[WS_DEDUP_PRUNE] = "DELETE FROM dedup WHERE (source, key) IN"
	                   " (SELECT source, key FROM dedup WHERE expires_at <= ?1 LIMIT 1000)",
	/* ?a=1&a=1 is one row: the filter asks whether the value was there */
	[WS_INSERT_EVENT_QUERY] =
	    "INSERT OR IGNORE INTO event_query (name, value, event_seq) VALUES (?1, ?2, ?3)",
	[WS_ACCEPTED_EVENT] = "SELECT accepted_event FROM rejections WHERE id = ?1",
	[WS_SET_ACCEPTED] = "UPDATE rejections SET accepted_event = ?2 WHERE id = ?1",
};

/* At most one log line a minute about rejections the cap dropped (a flood of
 * 422s would otherwise log one per commit); the counter has every one. */
#define DROP_LOG_INTERVAL_US (INT64_C(60) * 1000000)

static int
step_done(struct hr_store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return HR_OK;
	log_warnx("store: %s: %s", sqlite3_sql(st), sqlite3_errmsg(s->wdb));
	hr_store_note_failure(s, s->wdb);
	return HR_EDB;
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

static int
upsert_session(struct hr_store *s, const struct hr_store_job *job, int64_t *session_id)
{
	const struct hr_summary *sum = &job->ev->sum;
	sqlite3_stmt *st = s->ws[WS_UPSERT_SESSION];
	int status = sum->status == HR_SESS_NONE ? HR_SESS_CREATED : (int)sum->status;
	int rc;

	bind_text(st, 1, hr_scope_name(sum->scope));
	bind_text(st, 2, sum->session_key);
	bind_text(st, 3, hr_provider_name(job->ev->provider));
	sqlite3_bind_int(st, 4, status);
	sqlite3_bind_int64(st, 5, job->received_us);
	bind_opt_double(st, 6, sum->has_duration, sum->duration);
	bind_text(st, 7, sum->shutdown_reason);
	bind_text(st, 8, sum->exit_reason);
	bind_text(st, 9, sum->error_type);
	bind_opt_double(st, 10, sum->has_score, sum->overall_score);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*session_id = sqlite3_column_int64(st, 0);
	return step_done(s, st) == HR_OK && rc == SQLITE_ROW ? HR_OK : HR_EDB;
}

/* The room's session, for an event that links to a room it is not scoped to. */
static int
upsert_room_link(struct hr_store *s, const struct hr_store_job *job)
{
	sqlite3_stmt *st = s->ws[WS_UPSERT_ROOM_LINK];

	bind_text(st, 1, job->ev->sum.room);
	bind_text(st, 2, hr_provider_name(job->ev->provider));
	sqlite3_bind_int64(st, 3, job->received_us);
	return step_done(s, st);
}

/* The room columns of the event row (WS_INSERT_EVENT ?18..?22). */
static void
bind_room(sqlite3_stmt *st, const struct hr_store_job *job)
{
	const struct hr_summary *sum = &job->ev->sum;

	bind_text(st, 18, sum->room);
	bind_text(st, 19, sum->meeting_id);
	if (sum->meeting_at.valid)
		sqlite3_bind_int64(st, 20, sum->meeting_at.us);
	bind_text(st, 21, sum->recording_id);
	bind_text(st, 22, job->facts_json);
}

/* The outbox: one row per matching destination, in the event's transaction. */
static int
insert_deliveries(struct hr_store *s, struct hr_store_job *job, int64_t event_seq)
{
	const struct hr_summary *sum = &job->ev->sum;
	sqlite3_stmt *st = s->ws[WS_INSERT_DELIVERY];
	char order_key[320] = "";

	if (sum->session_key != NULL && sum->scope != HR_SCOPE_NONE)
		snprintf(order_key, sizeof(order_key), "%s:%s", hr_scope_name(sum->scope),
		    sum->session_key);
	for (size_t i = 0; i < job->ndestinations; i++) {
		sqlite3_bind_int64(st, 1, event_seq);
		bind_text(st, 2, job->destinations[i]);
		bind_text(st, 3, job->ordered[i] && order_key[0] ? order_key : NULL);
		sqlite3_bind_int64(st, 4, job->received_us);
		if (step_done(s, st) != HR_OK)
			return HR_EDB;
	}
	job->count = (int64_t)job->ndestinations;
	return HR_OK;
}

/*
 * A key seen inside its window makes this a duplicate: the job takes the
 * first event's id and nothing is written. Otherwise the key is claimed.
 * The single writer makes find-then-put atomic, also within one batch.
 */
static int
claim_dedup_key(struct hr_store *s, struct hr_store_job *job)
{
	sqlite3_stmt *st = s->ws[WS_DEDUP_FIND];
	int rc;

	bind_text(st, 1, job->source);
	bind_text(st, 2, job->dedup_key);
	sqlite3_bind_int64(st, 3, job->received_us);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		snprintf(job->id, sizeof(job->id), "%s", (const char *)sqlite3_column_text(st, 0));
		job->duplicate = true;
	}
	if (step_done(s, st) != HR_OK)
		return HR_EDB;
	if (job->duplicate)
		return HR_OK;
	st = s->ws[WS_DEDUP_PUT];
	bind_text(st, 1, job->source);
	bind_text(st, 2, job->dedup_key);
	bind_text(st, 3, job->id);
	sqlite3_bind_int64(st, 4, job->received_us + job->dedup_window_us);
	return step_done(s, st);
}

/* One row per query value: a filter on a parameter is an index probe. */
static int
insert_query(struct hr_store *s, const json_t *query, int64_t event_seq)
{
	sqlite3_stmt *st = s->ws[WS_INSERT_EVENT_QUERY];
	const char *name;
	json_t *v, *item;
	size_t i;

	json_object_foreach((json_t *)query, name, v)
	{
		json_t *one[1] = { v };
		size_t n = json_is_array(v) ? json_array_size(v) : 1;

		for (i = 0; i < n; i++) {
			item = json_is_array(v) ? json_array_get(v, i) : one[0];
			if (!json_is_string(item))
				continue;
			bind_text(st, 1, name);
			bind_text(st, 2, json_string_value(item));
			sqlite3_bind_int64(st, 3, event_seq);
			if (step_done(s, st) != HR_OK)
				return HR_EDB;
		}
	}
	return HR_OK;
}

/* The event row, its session and its deliveries (no dedup: the caller's). */
static int
insert_event_row(struct hr_store *s, struct hr_store_job *job)
{
	const struct hr_event *ev = job->ev;
	const struct hr_summary *sum = &ev->sum;
	sqlite3_stmt *st = s->ws[WS_INSERT_EVENT];
	int64_t session_id = 0, seq;
	bool has_session = sum->session_key != NULL && sum->scope != HR_SCOPE_NONE;

	if (has_session && upsert_session(s, job, &session_id) != HR_OK)
		return HR_EDB;
	if (sum->room != NULL && sum->scope != HR_SCOPE_ROOM && upsert_room_link(s, job) != HR_OK)
		return HR_EDB;
	bind_text(st, 1, job->id);
	sqlite3_bind_int64(st, 2, job->received_us);
	bind_text(st, 3, job->source);
	bind_text(st, 4, ev->provider == HR_PROVIDER_AUTO ? "" : hr_provider_name(ev->provider));
	bind_text(st, 5, hr_kind_name(ev->kind));
	bind_text(st, 6, sum->event_type);
	bind_text(st, 7, sum->subtype);
	bind_text(st, 8, has_session ? hr_scope_name(sum->scope) : NULL);
	bind_text(st, 9, has_session ? sum->session_key : NULL);
	if (has_session)
		sqlite3_bind_int64(st, 10, session_id);
	if (sum->occurred.valid)
		sqlite3_bind_int64(st, 11, sum->occurred.us);
	bind_text(st, 12, sum->occurred.raw[0] != '\0' ? sum->occurred.raw : NULL);
	bind_text(st, 13, job->remote_addr);
	bind_text(st, 14, job->headers_json != NULL ? job->headers_json : "{}");
	sqlite3_bind_blob64(st, 15, job->body, job->body_len, SQLITE_STATIC);
	bind_text(st, 16, job->query_json);
	bind_text(st, 17, job->problems_json);
	bind_room(st, job);
	if (step_done(s, st) != HR_OK)
		return HR_EDB;
	seq = sqlite3_last_insert_rowid(s->wdb);
	if (job->query != NULL && insert_query(s, job->query, seq) != HR_OK)
		return HR_EDB;
	return insert_deliveries(s, job, seq);
}

static int
insert_event(struct hr_store *s, struct hr_store_job *job)
{
	if (job->dedup_key != NULL && claim_dedup_key(s, job) != HR_OK)
		return HR_EDB;
	if (job->duplicate)
		return HR_OK;
	return insert_event_row(s, job);
}

/*
 * A rejection accepted: its event, once. The check and the insert share the
 * transaction and there is one writer, so two accepts racing store one event
 * and both learn its id.
 */
static int
accept_rejection(struct hr_store *s, struct hr_store_job *job)
{
	sqlite3_stmt *st = s->ws[WS_ACCEPTED_EVENT];
	int rc;

	bind_text(st, 1, job->rejection_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		job->count = -1; /* pruned since the caller read it */
	} else if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		snprintf(job->id, sizeof(job->id), "%s", (const char *)sqlite3_column_text(st, 0));
		job->duplicate = true;
	}
	if (step_done(s, st) != HR_OK)
		return HR_EDB;
	if (job->duplicate || job->count < 0)
		return HR_OK;
	if (insert_event_row(s, job) != HR_OK)
		return HR_EDB;
	st = s->ws[WS_SET_ACCEPTED];
	bind_text(st, 1, job->rejection_id);
	bind_text(st, 2, job->id);
	return step_done(s, st);
}

static int
insert_rejection(struct hr_store *s, struct hr_store_job *job)
{
	sqlite3_stmt *st = s->ws[WS_INSERT_REJECTION];

	bind_text(st, 1, job->id);
	sqlite3_bind_int64(st, 2, job->received_us);
	bind_text(st, 3, job->source);
	bind_text(st, 4, job->remote_addr);
	bind_text(st, 5, job->kind_name);
	sqlite3_bind_int(st, 6, job->http_status);
	bind_text(st, 7, job->problem_json != NULL ? job->problem_json : "{}");
	bind_text(st, 8, job->headers_json != NULL ? job->headers_json : "{}");
	sqlite3_bind_blob64(st, 9, job->body, job->body_len, SQLITE_STATIC);
	bind_text(st, 10, job->query_json);
	return step_done(s, st);
}

static int
record_attempt(struct hr_store *s, struct hr_store_job *job)
{
	const struct hr_attempt *a = job->attempt;
	sqlite3_stmt *st = s->ws[WS_INSERT_ATTEMPT];

	for (int i = a->resends; i > 0; i--) {
		sqlite3_bind_int64(st, 1, a->delivery_id);
		sqlite3_bind_int(st, 2, a->number - i);
		sqlite3_bind_int64(st, 3, a->started_us);
		sqlite3_bind_int64(st, 4, 0);
		bind_text(st, 6,
		    "the reused connection closed before any answer; sent again on a new one");
		if (step_done(s, st) != HR_OK)
			return HR_EDB;
	}
	sqlite3_bind_int64(st, 1, a->delivery_id);
	sqlite3_bind_int(st, 2, a->number);
	sqlite3_bind_int64(st, 3, a->started_us);
	sqlite3_bind_int64(st, 4, a->duration_us);
	if (a->http_status > 0)
		sqlite3_bind_int(st, 5, a->http_status);
	bind_text(st, 6, a->error);
	if (a->response != NULL)
		sqlite3_bind_blob64(st, 7, a->response, a->response_len, SQLITE_STATIC);
	if (step_done(s, st) != HR_OK)
		return HR_EDB;
	st = s->ws[WS_UPDATE_DELIVERY];
	sqlite3_bind_int64(st, 1, a->delivery_id);
	sqlite3_bind_int(st, 2, (int)a->new_status);
	sqlite3_bind_int(st, 3, a->number);
	if (a->new_status == HR_DLV_PENDING)
		sqlite3_bind_int64(st, 4, a->next_attempt_us);
	sqlite3_bind_int64(st, 5, a->started_us + a->duration_us);
	if (a->http_status > 0)
		sqlite3_bind_int(st, 6, a->http_status);
	bind_text(st, 7, a->error);
	return step_done(s, st);
}

static int
lease(struct hr_store *s, struct hr_store_job *job)
{
	sqlite3_stmt *st = s->ws[WS_LEASE];

	for (size_t i = 0; i < job->nlease; i++) {
		sqlite3_bind_int64(st, 1, job->lease_ids[i]);
		sqlite3_bind_int64(st, 2, job->lease_until_us);
		if (step_done(s, st) != HR_OK)
			return HR_EDB;
	}
	return HR_OK;
}

static int
set_destination(struct hr_store *s, struct hr_store_job *job)
{
	sqlite3_stmt *st = s->ws[WS_SET_DESTINATION];

	bind_text(st, 1, job->destination);
	sqlite3_bind_int(st, 2, job->disabled);
	bind_text(st, 3, job->disabled ? job->reason : NULL);
	if (job->disabled)
		sqlite3_bind_int64(st, 4, hr_time_now_us());
	return step_done(s, st);
}

static int
replay(struct hr_store *s, struct hr_store_job *job)
{
	const struct hr_replay *r = job->replay;
	int64_t now = hr_time_now_us();
	sqlite3_stmt *st;

	job->count = 0;
	if (r->event_id != NULL) {
		st = s->ws[WS_REPLAY_EVENT];
		for (size_t i = 0; i < r->ndestinations; i++) {
			bind_text(st, 1, r->event_id);
			bind_text(st, 2, r->destinations[i]);
			sqlite3_bind_int(st, 3, r->ordered);
			sqlite3_bind_int64(st, 4, now);
			if (step_done(s, st) != HR_OK)
				return HR_EDB;
			job->count += sqlite3_changes(s->wdb);
		}
		return HR_OK;
	}
	st = s->ws[WS_REPLAY_DESTINATION];
	bind_text(st, 1, r->destination);
	sqlite3_bind_int64(st, 2, r->since_us);
	sqlite3_bind_int64(st, 3, r->until_us);
	sqlite3_bind_int(st, 4, r->status);
	sqlite3_bind_int(st, 5, r->ordered);
	sqlite3_bind_int64(st, 6, now);
	if (step_done(s, st) != HR_OK)
		return HR_EDB;
	job->count = sqlite3_changes(s->wdb);
	return HR_OK;
}

static int
ping(struct hr_store *s, struct hr_store_job *job)
{
	(void)s;
	(void)job;
	return HR_OK;
}

typedef int (*job_writer)(struct hr_store *, struct hr_store_job *);

static const job_writer job_writers[] = {
	[HR_JOB_EVENT] = insert_event,
	[HR_JOB_REJECTION] = insert_rejection,
	[HR_JOB_ATTEMPT] = record_attempt,
	[HR_JOB_LEASE] = lease,
	[HR_JOB_DESTINATION] = set_destination,
	[HR_JOB_REPLAY] = replay,
	[HR_JOB_PING] = ping,
	[HR_JOB_PRUNE] = hr_store_prune,
	[HR_JOB_ACCEPT] = accept_rejection,
};

static int
write_job(struct hr_store *s, struct hr_store_job *job)
{
	int rc;

	if (step_done(s, s->ws[WS_SAVEPOINT]) != HR_OK)
		return HR_EDB;
	rc = job_writers[job->type](s, job);
	if (rc != HR_OK)
		(void)step_done(s, s->ws[WS_ROLLBACK_TO]);
	if (step_done(s, s->ws[WS_RELEASE]) != HR_OK)
		return HR_EDB;
	return rc;
}

/* Does this job give the forwarder something new to do once committed? */
static bool
wakes_forwarder(const struct hr_store_job *j)
{
	return j->status == HR_OK &&
	    ((j->type == HR_JOB_EVENT && j->ndestinations > 0 && !j->duplicate) ||
	        (j->type == HR_JOB_ACCEPT && j->ndestinations > 0 && j->count > 0) ||
	        (j->type == HR_JOB_REPLAY && j->count > 0) || j->type == HR_JOB_DESTINATION);
}

/* Write and commit one batch; every job's status says how it ended. Returns
 * true when it committed and the forwarder has new work. */
/* Write every job; with `savepoints` each on its own, so one failure fails alone. */
static bool
write_all(struct hr_store *s, struct hr_store_job *batch, bool savepoints)
{
	bool all_ok = true;

	for (struct hr_store_job *j = batch; j != NULL; j = j->next) {
		j->duplicate = false;
		j->count = 0;
		j->status = savepoints ? write_job(s, j) : job_writers[j->type](s, j);
		all_ok &= j->status == HR_OK;
	}
	return all_ok;
}

/* Keep the newest rejections_max rejections; say so when older ones go. */
static void
trim_rejections(struct hr_store *s)
{
	uint64_t n, total;
	int64_t now;

	sqlite3_bind_int64(s->ws[WS_TRIM_REJECTIONS], 1, s->opts.rejections_max);
	if (step_done(s, s->ws[WS_TRIM_REJECTIONS]) != HR_OK ||
	    (n = (uint64_t)sqlite3_changes(s->wdb)) == 0)
		return;
	total = atomic_fetch_add(&s->rejections_dropped, n) + n;
	now = hr_time_mono_us();
	if (now >= s->next_drop_log_us) {
		log_warnx("store: [storage] rejections_max (%u) dropped the oldest rejected bodies;"
		          " %llu so far (hookrelay_rejections_dropped_total)",
		    s->opts.rejections_max, (unsigned long long)total);
		s->next_drop_log_us = now + DROP_LOG_INTERVAL_US;
	}
}

static bool
write_batch(struct hr_store *s, struct hr_store_job *batch)
{
	bool rejections = false, wake = false;
	/* Once the file is gone, writing to it only loses what is written. */
	bool ok = !s->gone && step_done(s, s->ws[WS_BEGIN]) == HR_OK;

	/* Jobs almost never fail, so the batch first goes without a savepoint per
	 * job (two statements fewer each). If one fails, nothing of the attempt is
	 * kept: it runs again with savepoints, so the others still commit. */
	if (ok && !write_all(s, batch, false)) {
		(void)step_done(s, s->ws[WS_ROLLBACK]);
		ok = step_done(s, s->ws[WS_BEGIN]) == HR_OK;
		if (ok)
			(void)write_all(s, batch, true);
	}
	for (struct hr_store_job *j = batch; j != NULL; j = j->next) {
		if (!ok)
			j->status = HR_EDB;
		rejections |= j->type == HR_JOB_REJECTION && j->status == HR_OK;
		wake |= wakes_forwarder(j);
	}
	if (ok && hr_time_now_us() >= s->next_prune_us) {
		/* Expired keys go a thousand at a time, so a batch never waits long for it. */
		sqlite3_bind_int64(s->ws[WS_DEDUP_PRUNE], 1, hr_time_now_us());
		(void)step_done(s, s->ws[WS_DEDUP_PRUNE]);
		s->next_prune_us =
		    hr_time_now_us() + (sqlite3_changes(s->wdb) == 1000 ? 1000000 : 60000000);
	}
	if (ok && rejections)
		trim_rejections(s);
	if (ok && step_done(s, s->ws[WS_COMMIT]) != HR_OK) {
		/* Nothing of this batch is durable: no job may be acknowledged. */
		ok = false;
		if (!sqlite3_get_autocommit(s->wdb))
			(void)step_done(s, s->ws[WS_ROLLBACK]);
		for (struct hr_store_job *j = batch; j != NULL; j = j->next)
			j->status = HR_EDB;
	}
	/* Committed into a file that was deleted or replaced meanwhile: durable
	 * nowhere a restart would look, so nothing of it is acknowledged. Checked
	 * after the commit, so a deletion before it cannot slip through. */
	if (!s->gone && !hr_store_file_is_ours(s))
		s->gone = true;
	if (s->gone) {
		ok = false;
		wake = false;
		for (struct hr_store_job *j = batch; j != NULL; j = j->next)
			j->status = HR_EDB;
	}
	if (!ok)
		log_warnx("store: a batch of jobs failed to commit");
	return ok && wake;
}

static struct hr_store_job *
take_batch(struct hr_store *s, unsigned *n)
{
	struct hr_store_job *head, *last;

	pthread_mutex_lock(&s->mu);
	while (s->head == NULL && !s->stopping)
		pthread_cond_wait(&s->cv, &s->mu);
	head = s->head;
	last = head;
	*n = head != NULL;
	while (last != NULL && last->next != NULL && *n < s->opts.batch_max) {
		last = last->next;
		(*n)++;
	}
	if (last != NULL) {
		s->head = last->next;
		if (s->head == NULL)
			s->tail = NULL;
		last->next = NULL;
		s->queued -= *n;
	}
	pthread_mutex_unlock(&s->mu);
	return head;
}

/* Did this committed batch store a new event (for the listeners)? */
static bool
stored_events(const struct hr_store_job *batch)
{
	for (const struct hr_store_job *j = batch; j != NULL; j = j->next)
		if ((j->type == HR_JOB_EVENT || (j->type == HR_JOB_ACCEPT && j->count >= 0)) &&
		    j->status == HR_OK && !j->duplicate)
			return true;
	return false;
}

/* Tell the listeners once the events are durable and visible to readers. */
static void
notify_listeners(struct hr_store *s)
{
	struct hr_store_listener copy[HR_STORE_LISTENERS];
	unsigned n;

	pthread_mutex_lock(&s->mu);
	n = s->nlisteners;
	memcpy(copy, s->listeners, sizeof(copy));
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < n; i++)
		copy[i].fn(copy[i].arg);
}

static void *
writer_main(void *arg)
{
	struct hr_store *s = arg;
	struct hr_store_job *batch, *next;
	unsigned n;

	while ((batch = take_batch(s, &n)) != NULL) {
		int64_t started = hr_time_mono_us();
		bool wake = write_batch(s, batch);
		bool failed = batch->status == HR_EDB;
		void (*hook)(void *);
		void *hook_arg;

		hr_hist_observe(&s->batch_sizes, &hr_hist_commit_batch_size, n);
		hr_hist_observe(
		    &s->commit_durations, &hr_hist_commit_duration, hr_time_mono_us() - started);

		pthread_mutex_lock(&s->mu);
		s->stats.batches++;
		s->stats.jobs += n;
		s->stats.failed_batches += failed;
		s->stats.last_commit_us = hr_time_now_us();
		hook = s->commit_hook;
		hook_arg = s->commit_hook_arg;
		pthread_mutex_unlock(&s->mu);
		if (wake && hook != NULL)
			hook(hook_arg);
		if (stored_events(batch))
			notify_listeners(s);
		for (; batch != NULL; batch = next) {
			next = batch->next; /* done() may free the job */
			batch->next = NULL;
			batch->done(batch, batch->arg);
		}
	}
	return NULL;
}

int
hr_store_writer_start(struct hr_store *s, struct hr_error *err)
{
	for (int i = 0; i < WS_COUNT; i++)
		if (sqlite3_prepare_v3(s->wdb, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		        &s->ws[i], NULL) != SQLITE_OK)
			return hr_store_db_error(s->wdb, err, writer_sql[i]);
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0)
		return hr_error_set(err, HR_ENOMEM, "writer", "cannot start the writer thread");
	s->writer_started = true;
	return HR_OK;
}

void
hr_store_writer_stop(struct hr_store *s)
{
	if (s->writer_started) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->writer, NULL); /* it drains the queue first */
		s->writer_started = false;
	}
	for (int i = 0; i < WS_COUNT; i++) {
		sqlite3_finalize(s->ws[i]);
		s->ws[i] = NULL;
	}
}

int
hr_store_add_listener(struct hr_store *s, void (*fn)(void *), void *arg)
{
	int rc = HR_EBUSY;

	pthread_mutex_lock(&s->mu);
	for (unsigned i = 0; i < s->nlisteners; i++)
		if (s->listeners[i].fn == fn && s->listeners[i].arg == arg)
			rc = HR_OK;
	if (rc != HR_OK && s->nlisteners < HR_STORE_LISTENERS) {
		s->listeners[s->nlisteners].fn = fn;
		s->listeners[s->nlisteners++].arg = arg;
		rc = HR_OK;
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int
hr_store_submit(struct hr_store *s, struct hr_store_job *job)
{
	int rc = HR_OK;

	job->next = NULL;
	job->status = HR_EDB;
	job->duplicate = false;
	job->count = 0;
	pthread_mutex_lock(&s->mu);
	if (s->stopping)
		rc = HR_ECLOSED;
	else if (s->queued >= s->opts.queue_max)
		rc = HR_EBUSY;
	if (rc == HR_OK) {
		if (s->tail != NULL)
			s->tail->next = job;
		else
			s->head = job;
		s->tail = job;
		s->queued++;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

/* A ping lives on the pinger's stack only while it waits; after a timeout it is
 * handed to the writer to free, so a late done() never touches a dead stack. */
struct ping {
	struct hr_store_job job;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, abandoned;
};

static void
ping_done(struct hr_store_job *job, void *arg)
{
	struct ping *p = arg;
	bool abandoned;

	(void)job;
	pthread_mutex_lock(&p->mu);
	p->done = true;
	abandoned = p->abandoned;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (abandoned) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
	}
}

int
hr_store_ping_writer(struct hr_store *s, int64_t timeout_us)
{
	struct ping *p = calloc(1, sizeof(*p));
	int64_t deadline = hr_time_now_us() + timeout_us;
	bool done, free_it = true;
	struct timespec until;

	if (p == NULL)
		return HR_ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->job.type = HR_JOB_PING;
	p->job.done = ping_done;
	p->job.arg = p;
	if (hr_store_submit(s, &p->job) != HR_OK) {
		done = false;
		goto out;
	}
	until.tv_sec = deadline / 1000000;
	until.tv_nsec = (deadline % 1000000) * 1000;
	pthread_mutex_lock(&p->mu);
	while (!p->done && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
		;
	done = p->done;
	if (!done) {
		p->abandoned = true; /* the writer frees it when it finally gets there */
		free_it = false;
	}
	pthread_mutex_unlock(&p->mu);
out:
	if (free_it) {
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
	}
	return done ? HR_OK : HR_EBUSY;
}
