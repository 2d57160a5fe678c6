/*
 * api.c - the read API: GET /v1/events, /v1/sessions, /healthz
 * (/v1/rejections: api_rejections.c).
 *
 * Query parameters are validated (a bad value is a 400 naming it), turned
 * into store filters, and rows become JSON with RFC 3339 UTC times. Pages
 * are newest first with an opaque `next_cursor`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/http.h"
#include "hr/log.h"
#include "hr/store.h"
#include "hr/timefmt.h"
#include "api_int.h"

#define TIMELINE_MAX 1000

/* ---- parameters ---- */

void
hr_api_bad_param(struct hr_req *req, const char *name, const char *why)
{
	char detail[300];

	snprintf(detail, sizeof(detail), "query parameter \"%s\": %s", name, why);
	hr_req_reply_problem(req, 400, "bad-parameter", "Bad query parameter", detail,
	    json_pack("{s:s}", "parameter", name));
}

/* RFC 3339 time, or a duration meaning that long before `now_us` ("15m"). */
int
hr_api_parse_time(const char *text, int64_t now_us, int64_t *out)
{
	struct hr_time t;
	int64_t ms;

	if (hr_time_parse_str(text, &t) == HR_OK && t.valid) {
		/* 0 means "no bound" to the store; nothing is stored at or before the epoch. */
		*out = t.us > 0 ? t.us : 1;
		return HR_OK;
	}
	if (hr_cfg_parse_duration_ms(text, &ms) == HR_OK) {
		/* Back past the epoch (or past what int64 holds): every stored event. */
		*out = ms < now_us / 1000 ? now_us - ms * 1000 : 1;
		return HR_OK;
	}
	return HR_EINVAL;
}

bool
hr_api_param_time(struct hr_req *req, const char *name, int64_t *out)
{
	const char *v = hr_req_query(req, name);

	*out = 0;
	if (v == NULL || hr_api_parse_time(v, hr_time_now_us(), out) == HR_OK)
		return true;
	hr_api_bad_param(req, name, "expected an RFC 3339 time or a duration such as 15m");
	return false;
}

int
hr_api_parse_uint(const char *text, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(text, &end, 10);
	if (*text == '\0' || *end != '\0' || errno != 0 || n < min || n > max)
		return HR_EINVAL;
	*out = n;
	return HR_OK;
}

bool
hr_api_param_uint(
    struct hr_req *req, const char *name, int64_t min, int64_t max, int64_t def, int64_t *out)
{
	const char *v = hr_req_query(req, name);
	char why[96];

	*out = def;
	if (v == NULL || hr_api_parse_uint(v, min, max, out) == HR_OK)
		return true;
	snprintf(why, sizeof(why), "expected an integer from %lld to %lld", (long long)min,
	    (long long)max);
	hr_api_bad_param(req, name, why);
	return false;
}

bool
hr_api_param_limit(struct hr_req *req, unsigned *out)
{
	int64_t n;

	if (!hr_api_param_uint(req, "limit", 1, MAX_LIMIT, DEFAULT_LIMIT, &n))
		return false;
	*out = (unsigned)n;
	return true;
}

bool
hr_api_param_cursor(struct hr_req *req, int64_t *out)
{
	return hr_api_param_uint(req, "cursor", 1, INT64_MAX, 0, out);
}

static bool
param_kind(struct hr_req *req, const char **out)
{
	*out = hr_req_query(req, "kind");
	if (*out == NULL || hr_kind_from_name(*out) >= 0)
		return true;
	hr_api_bad_param(req, "kind", "not a known kind (see docs/events.md)");
	return false;
}

static bool
param_provider(struct hr_req *req, const char **out)
{
	int p;

	*out = hr_req_query(req, "provider");
	if (*out == NULL)
		return true;
	p = hr_provider_from_name(*out);
	if (p > HR_PROVIDER_AUTO)
		return true;
	hr_api_bad_param(req, "provider", "expected tavus, pailflow or agenthuman");
	return false;
}

/* ---- rows as JSON ---- */

json_t *
hr_api_time_json(int64_t us)
{
	char buf[32];

	hr_time_format(us, buf, sizeof(buf));
	return json_string(buf);
}

json_t *
hr_api_text_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

json_t *
hr_api_cursor_json(int64_t cursor)
{
	char buf[24];

	if (cursor == 0)
		return json_null();
	snprintf(buf, sizeof(buf), "%lld", (long long)cursor);
	return json_string(buf);
}

json_t *
hr_api_event_json(const struct hr_event_row *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "received_at", hr_api_time_json(r->received_us));
	json_object_set_new(o, "source", json_string(r->source));
	json_object_set_new(o, "provider", r->provider[0] ? json_string(r->provider) : json_null());
	json_object_set_new(o, "kind", json_string(r->kind));
	json_object_set_new(o, "event_type", hr_api_text_or_null(r->event_type));
	json_object_set_new(o, "subtype", hr_api_text_or_null(r->subtype));
	if (r->session_key != NULL)
		json_object_set_new(o, "session",
		    json_pack("{s:s, s:s, s:s++}", "scope", r->scope, "key", r->session_key, "id",
		        r->scope, ":", r->session_key));
	else
		json_object_set_new(o, "session", json_null());
	json_object_set_new(
	    o, "occurred_at", r->occurred_valid ? hr_api_time_json(r->occurred_us) : json_null());
	json_object_set_new(o, "occurred_at_raw", hr_api_text_or_null(r->occurred_raw));
	json_object_set_new(o, "query", hr_api_json_or(r->query_json, json_object()));
	json_object_set_new(o, "problems", hr_api_json_or(r->problems_json, json_null()));
	return o;
}

json_t *
hr_api_json_or(const char *text, json_t *fallback)
{
	json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;

	if (v == NULL)
		return fallback;
	json_decref(fallback);
	return v;
}

json_t *
hr_api_page_json(const char *member, json_t *items, int64_t cursor)
{
	return json_pack("{s:o, s:o}", member, items, "next_cursor", hr_api_cursor_json(cursor));
}

static int
append_event(const struct hr_event_row *r, void *arg)
{
	return json_array_append_new(arg, hr_api_event_json(r)) == 0 ? HR_OK : HR_ENOMEM;
}

void
hr_api_reply_store_error(struct hr_req *req, int rc, const struct hr_error *err)
{
	if (rc == HR_ENOTFOUND) {
		hr_req_reply_problem(req, 404, "not-found", "Not Found", err->msg, NULL);
		return;
	}
	if (rc == HR_EINVAL) {
		hr_api_bad_param(req, err->field, err->msg);
		return;
	}
	log_warnx("api: %s: %s", req->url, err->msg);
	hr_req_reply_problem(req, 503, "storage-unavailable", "Service Unavailable",
	    "the database could not answer", NULL);
}

/* ---- handlers ---- */

static const char *const events_params[] = { "source", "provider", "kind", "event_type", "session",
	"since", "until", "limit", "cursor", "query.", NULL };

struct query_filters {
	struct hr_req *req;
	struct hr_event_filter *f;
	const char *bad; /* the parameter that is refused */
	const char *why;
};

static int
take_query_filter(void *arg, const char *name, const char *value)
{
	struct query_filters *qf = arg;
	struct hr_event_filter *f = qf->f;

	if (strncmp(name, "query.", 6) != 0)
		return 0;
	if (f->nquery == HR_QUERY_FILTERS_MAX) {
		qf->bad = name;
		qf->why = "at most 4 query.NAME filters";
		return 1;
	}
	f->query_names[f->nquery] = name + 6;
	f->query_values[f->nquery++] = value != NULL ? value : "";
	return 0;
}

/* query.NAME=VALUE: events whose callback URL had NAME=VALUE (every filter must hold). */
bool
hr_api_param_query(struct hr_req *req, struct hr_event_filter *f)
{
	struct query_filters qf = { req, f, NULL, NULL };

	f->nquery = 0;
	hr_req_each_query(req, take_query_filter, &qf);
	if (qf.bad == NULL)
		return true;
	hr_api_bad_param(req, qf.bad, qf.why);
	return false;
}

static int
list_events(struct hr_req *req)
{
	struct hr_event_filter f = { .source = hr_req_query(req, "source"),
		.event_type = hr_req_query(req, "event_type"),
		.session = hr_req_query(req, "session") };
	struct hr_error err = { .field = "" };
	json_t *items;
	int64_t next;
	int rc;

	if (!param_provider(req, &f.provider) || !param_kind(req, &f.kind) ||
	    !hr_api_param_time(req, "since", &f.since_us) ||
	    !hr_api_param_time(req, "until", &f.until_us) || !hr_api_param_limit(req, &f.limit) ||
	    !hr_api_param_cursor(req, &f.before_seq) || !hr_api_param_query(req, &f))
		return HR_OK;
	items = json_array();
	rc = hr_store_list_events(req->app->store, &f, append_event, items, &next, &err);
	if (rc != HR_OK) {
		json_decref(items);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, hr_api_page_json("events", items, next));
	return HR_OK;
}

/* The typed view: the stored body decoded again under its source's provider. */
static json_t *
typed_json(struct hr_req *req, const struct hr_event_row *r)
{
	struct hr_event ev;
	struct hr_parse_error pe;
	int hint = r->provider[0] ? hr_provider_from_name(r->provider) : HR_PROVIDER_AUTO;
	json_t *typed = NULL;

	memset(&pe, 0, sizeof(pe));
	if (hr_event_parse(r->body, r->body_len, hint < 0 ? HR_PROVIDER_AUTO : hint,
	        &req->rt->limits, &ev, &pe) == HR_OK) {
		typed = hr_event_typed_json(&ev);
		hr_event_clear(&ev);
	}
	return typed != NULL ? typed : json_null();
}

struct event_detail {
	struct hr_req *req;
	json_t *doc;
};

static int
fill_event_detail(const struct hr_event_row *r, void *arg)
{
	struct event_detail *d = arg;
	json_t *o = hr_api_event_json(r);
	json_t *payload = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);

	json_object_set_new(o, "remote_addr", hr_api_text_or_null(r->remote_addr));
	json_object_set_new(o, "headers", json_loads(r->headers_json, 0, NULL));
	if (r->pruned_us != 0) { /* retention took the body; the metadata stays */
		json_decref(payload);
		json_object_set_new(o, "typed", json_null());
		json_object_set_new(o, "payload", json_null());
		json_object_set_new(o, "pruned_at", hr_api_time_json(r->pruned_us));
		d->doc = o;
		return HR_OK;
	}
	json_object_set_new(o, "typed", typed_json(d->req, r));
	json_object_set_new(
	    o, "payload", payload != NULL ? payload : json_stringn(r->body, r->body_len));
	d->doc = o;
	return HR_OK;
}

static int
get_event(struct hr_req *req)
{
	struct event_detail d = { req, NULL };
	struct hr_error err = { .field = "" };
	int rc = hr_store_get_event(req->app->store, req->params[0], fill_event_detail, &d, &err);

	if (rc != HR_OK) {
		json_decref(d.doc);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, d.doc);
	return HR_OK;
}

static int
copy_raw_body(const struct hr_event_row *r, void *arg)
{
	struct hr_req *req = arg;
	char *copy;

	if (r->pruned_us != 0) {
		hr_req_reply_problem(req, 410, "payload-pruned", "Gone",
		    "the payload of this event was pruned by [source] retain or [storage] max_size",
		    NULL);
		return HR_OK;
	}
	if ((copy = malloc(r->body_len + 1)) == NULL)
		return HR_ENOMEM;
	memcpy(copy, r->body, r->body_len);
	hr_req_reply_take(req, 200, "application/json", copy, r->body_len);
	return HR_OK;
}

/* The body exactly as received, byte for byte. */
static int
get_event_raw(struct hr_req *req)
{
	struct hr_error err = { .field = "" };
	int rc = hr_store_get_event(req->app->store, req->params[0], copy_raw_body, req, &err);

	if (rc != HR_OK)
		hr_api_reply_store_error(req, rc, &err);
	return HR_OK;
}

static json_t *
session_json(const struct hr_session_row *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_pack("s++", r->scope, ":", r->key));
	json_object_set_new(o, "scope", json_string(r->scope));
	json_object_set_new(o, "key", json_string(r->key));
	json_object_set_new(o, "provider", json_string(r->provider));
	json_object_set_new(o, "status", hr_api_text_or_null(r->status));
	json_object_set_new(o, "first_seen", hr_api_time_json(r->first_seen_us));
	json_object_set_new(o, "last_seen", hr_api_time_json(r->last_seen_us));
	json_object_set_new(o, "event_count", json_integer(r->event_count));
	json_object_set_new(o, "duration", r->has_duration ? json_real(r->duration) : json_null());
	json_object_set_new(o, "shutdown_reason", hr_api_text_or_null(r->shutdown_reason));
	json_object_set_new(o, "exit_reason", hr_api_text_or_null(r->exit_reason));
	json_object_set_new(o, "error_type", hr_api_text_or_null(r->error_type));
	json_object_set_new(
	    o, "overall_score", r->has_score ? json_real(r->overall_score) : json_null());
	return o;
}

static int
append_session(const struct hr_session_row *r, void *arg)
{
	return json_array_append_new(arg, session_json(r)) == 0 ? HR_OK : HR_ENOMEM;
}

static const char *const sessions_params[] = { "provider", "status", "since", "limit", "cursor",
	NULL };

static int
list_sessions(struct hr_req *req)
{
	struct hr_session_filter f = { .status = hr_req_query(req, "status") };
	struct hr_error err = { .field = "" };
	json_t *items;
	int64_t next;
	int rc;

	if (!param_provider(req, &f.provider) || !hr_api_param_time(req, "since", &f.since_us) ||
	    !hr_api_param_limit(req, &f.limit) || !hr_api_param_cursor(req, &f.before_id))
		return HR_OK;
	if (f.status != NULL && hr_session_status_from_name(f.status) <= HR_SESS_NONE) {
		hr_api_bad_param(req, "status", "expected created, started, ended or failed");
		return HR_OK;
	}
	items = json_array();
	rc = hr_store_list_sessions(req->app->store, &f, append_session, items, &next, &err);
	if (rc != HR_OK) {
		json_decref(items);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, hr_api_page_json("sessions", items, next));
	return HR_OK;
}

static int
set_session(const struct hr_session_row *r, void *arg)
{
	json_t *doc = arg;
	json_t *s = session_json(r);

	json_object_update(doc, s);
	json_decref(s);
	return HR_OK;
}

static int
append_timeline_event(const struct hr_event_row *r, void *arg)
{
	return append_event(r, json_object_get(arg, "events"));
}

static int
get_session(struct hr_req *req)
{
	struct hr_error err = { .field = "" };
	json_t *doc = json_pack("{s:[]}", "events");
	int rc = hr_store_get_session(req->app->store, req->params[0], set_session,
	    append_timeline_event, doc, TIMELINE_MAX, &err);

	if (rc != HR_OK) {
		json_decref(doc);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, doc);
	return HR_OK;
}

/*
 * Liveness plus the facts an operator checks first. The database is ok only
 * when a read works and the writer found nothing wrong with the file: a file
 * deleted under the daemon or reported malformed answers 503 here as ingest does.
 */
static int
healthz(struct hr_req *req)
{
	struct hr_store_stats st;
	struct hr_store_health h;
	bool reachable = hr_store_ping(req->app->store) == HR_OK;
	bool db_ok;
	json_t *doc;

	hr_store_health(req->app->store, &h);
	db_ok = reachable && h.state == HR_DB_OK;
	hr_store_stats(req->app->store, &st);
	doc = json_pack("{s:s, s:s, s:s, s:{s:i, s:I, s:I}, s:{s:I, s:I, s:I}}", "status",
	    db_ok ? "ok" : "unavailable", "version", HR_VERSION_STRING, "database",
	    h.state != HR_DB_OK ? hr_db_health_name(h.state)
	        : reachable     ? "ok"
	                        : "unreachable",
	    "writer", "queued", st.queued, "batches", (json_int_t)st.batches, "jobs",
	    (json_int_t)st.jobs, "ingest", "accepted", (json_int_t)atomic_load(&req->app->accepted),
	    "rejected", (json_int_t)atomic_load(&req->app->rejected), "failed",
	    (json_int_t)atomic_load(&req->app->failed));
	if (h.state != HR_DB_OK)
		json_object_set_new(doc, "database_detail", json_string(h.detail));
	hr_req_reply_json(req, db_ok ? 200 : 503, doc);
	if (!db_ok)
		req->resp_type = "application/json";
	return HR_OK;
}

static const char *const no_params[] = { NULL };

const struct hr_route hr_api_routes[] = {
	{ "GET", "/v1/events", HR_ROUTE_API, NULL, list_events, events_params },
	{ "GET", "/v1/events/{}", HR_ROUTE_API, NULL, get_event, no_params },
	{ "GET", "/v1/events/{}/raw", HR_ROUTE_API, NULL, get_event_raw, no_params },
	{ "GET", "/v1/sessions", HR_ROUTE_API, NULL, list_sessions, sessions_params },
	{ "GET", "/v1/sessions/{}", HR_ROUTE_API, NULL, get_session, no_params },
	{ "GET", "/healthz", 0, NULL, healthz, no_params },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
