/*
 * api.c - the read API: GET /v1/events, /v1/sessions, /healthz
 * (/v1/rejections: api_rejections.c).
 *
 * Query parameters are validated (a bad value is a 400 naming it), turned
 * into store filters, and rows become JSON with RFC 3339 UTC times. Pages
 * are newest first with an opaque `next_cursor`.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/api.h"
#include "hr/event.h"
#include "hr/http.h"
#include "hr/jsontext.h"
#include "hr/log.h"
#include "hr/metrics.h"
#include "hr/ratelimit.h"
#include "hr/rooms.h"
#include "hr/store.h"
#include "hr/timefmt.h"
#include "api_int.h"

#define TIMELINE_MAX 1000

/* ---- parameters ---- */

void
hr_api_bad_param(struct hr_req *req, const char *name, const char *why)
{
	/* Room for a store error's whole field and message (struct hr_error: 127 + 255);
	 * a longer name of the client's own is cut here, and whole in "parameter". */
	char detail[sizeof("query parameter \"\": ") + 127 + 255];

	snprintf(detail, sizeof(detail), "query parameter \"%s\": %s", name, why);
	hr_req_reply_problem(req, 400, "bad-parameter", "Bad query parameter", detail,
	    json_pack("{s:s}", "parameter", name));
}

/*
 * Does a time name its zone (Z, or an offset after the time of day)? The
 * parser takes the zone-less form a provider sends ("2024-08-28 15:27:40",
 * UTC), but a client's zone-less time is most likely its local one: read as
 * UTC it moved the query's bound by the client's offset, silently.
 */
static bool
names_zone(const char *text)
{
	const char *clock = strpbrk(text, "Tt ");

	return clock != NULL && strpbrk(clock, "Zz+-") != NULL;
}

/* RFC 3339 time (with its zone), or a duration meaning that long before
 * `now_us` ("15m"). */
int
hr_api_parse_time(const char *text, int64_t now_us, int64_t *out)
{
	struct hr_time t;
	int64_t ms;

	if (hr_time_parse_str(text, &t) == HR_OK && t.valid) {
		if (!names_zone(text))
			return HR_EINVAL;
		/* 0 means "no bound" to the store; nothing is stored at or before the epoch. */
		*out = t.us > 0 ? t.us : 1;
		return HR_OK;
	}
	/* A duration has its unit: a bare number is most likely epoch seconds, which
	 * the configuration's parser would read as seconds ago, the whole log. */
	if (text[0] != '\0' && isalpha((unsigned char)text[strlen(text) - 1]) &&
	    hr_cfg_parse_duration_ms(text, &ms) == HR_OK) {
		/* Back past the epoch (or past what int64 holds): every stored event. */
		*out = ms < now_us / 1000 ? now_us - ms * 1000 : 1;
		return HR_OK;
	}
	return HR_EINVAL;
}

/*
 * A page's cursor is the keyset position of the next page, followed, when the
 * request gave `since` or `until` as a duration, by "-" and the time that
 * duration counts back from. The first page's "15m ago" is thus every page's:
 * resolved afresh at each page, the bound moved forward while a client read,
 * and the oldest events of the window, on the last pages, were left out.
 */
static bool
cursor_parts(const char *v, int64_t *position, int64_t *anchor_us)
{
	char head[24];
	const char *dash = strchr(v, '-');
	size_t n = dash != NULL ? (size_t)(dash - v) : strlen(v);

	*anchor_us = 0;
	if (n >= sizeof(head))
		return false;
	memcpy(head, v, n);
	head[n] = '\0';
	return hr_api_parse_uint(head, 1, INT64_MAX, position) == HR_OK &&
	    (dash == NULL || hr_api_parse_uint(dash + 1, 1, INT64_MAX, anchor_us) == HR_OK);
}

/* What a duration in `since`/`until` counts back from: the cursor's time, or
 * when this request's headers arrived. */
static int64_t
relative_to(struct hr_req *req)
{
	const char *v = hr_req_query(req, "cursor");
	int64_t position, anchor = 0;

	if (v != NULL && cursor_parts(v, &position, &anchor) && anchor > 0)
		return anchor;
	return hr_req_started_us(req);
}

static bool
is_duration(const char *v)
{
	struct hr_time t;

	return v != NULL && !(hr_time_parse_str(v, &t) == HR_OK && t.valid);
}

bool
hr_api_param_time(struct hr_req *req, const char *name, int64_t *out)
{
	const char *v = hr_req_query(req, name);

	*out = 0;
	if (v == NULL || hr_api_parse_time(v, relative_to(req), out) == HR_OK)
		return true;
	hr_api_bad_param(req, name,
	    "expected an RFC 3339 time with its zone (Z or +HH:MM) or a duration such as 15m");
	return false;
}

/* Decimal digits only: strtoll() alone would also take " 5" (limit=%205) and "+5". */
int
hr_api_parse_uint(const char *text, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long n;

	if (text[0] == '\0' || strspn(text, "0123456789") != strlen(text))
		return HR_EINVAL;
	errno = 0;
	n = strtoll(text, &end, 10);
	if (*end != '\0' || errno != 0 || n < min || n > max)
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
	const char *v = hr_req_query(req, "cursor");
	int64_t anchor;

	*out = 0;
	if (v == NULL || cursor_parts(v, out, &anchor))
		return true;
	hr_api_bad_param(req, "cursor", "expected the next_cursor of the page before");
	return false;
}

/* ---- the event filter of GET /v1/events and /v1/stream ---- */

_Static_assert(HR_MATCH_VALUES == HR_QUERY_VALUES, "a filter holds every value a query may repeat");
_Static_assert(HR_KIND_COUNT <= 64, "hr_event_filter.kinds is a 64-bit set");

/* Every value of a repeatable parameter into `m` (http.c bounds their number). */
static void
param_values(struct hr_req *req, const char *name, struct hr_match *m)
{
	size_t n = hr_req_query_all(req, name, m->v, HR_MATCH_VALUES);

	m->n = (unsigned)(n < HR_MATCH_VALUES ? n : HR_MATCH_VALUES);
}

/* Kind names and globs, as the set of known kinds they name: a name or glob that names
 * none is refused, not matched to nothing (hr_kind_glob_set(), as a destination's `match`). */
static bool
param_kinds(struct hr_req *req, uint64_t *out)
{
	struct hr_match m;

	*out = 0;
	param_values(req, "kind", &m);
	for (unsigned i = 0; i < m.n; i++) {
		uint64_t these = hr_kind_glob_set(m.v[i]);

		if (these == 0) {
			hr_api_bad_param(req, "kind",
			    strpbrk(m.v[i], "*?") != NULL
			        ? "the glob matches no known kind (see docs/events.md)"
			        : "not a known kind (see docs/events.md)");
			return false;
		}
		*out |= these;
	}
	return true;
}

static bool
param_sources(struct hr_req *req, struct hr_match *m)
{
	param_values(req, "source", m);
	for (unsigned i = 0; i < m->n; i++) {
		if (m->v[i][strspn(m->v[i], HR_NAME_GLOB_CHARS)] != '\0') {
			hr_api_bad_param(req, "source",
			    "expected a source name or a glob of one (A-Z a-z 0-9 _ . - and * ?)");
			return false;
		}
	}
	return true;
}

static bool
param_provider(struct hr_req *req, const char **out)
{
	*out = hr_req_query(req, "provider");
	if (*out == NULL || hr_provider_from_name(*out) > HR_PROVIDER_AUTO)
		return true;
	hr_api_bad_param(req, "provider", "expected tavus, pailflow, agenthuman or daily");
	return false;
}

static bool
param_providers(struct hr_req *req, struct hr_match *m)
{
	param_values(req, "provider", m);
	for (unsigned i = 0; i < m->n; i++) {
		if (hr_provider_from_name(m->v[i]) <= HR_PROVIDER_AUTO) {
			hr_api_bad_param(
			    req, "provider", "expected tavus, pailflow, agenthuman or daily");
			return false;
		}
	}
	return true;
}

bool
hr_api_param_event_filter(struct hr_req *req, struct hr_event_filter *f)
{
	if (!param_sources(req, &f->source) || !param_providers(req, &f->provider) ||
	    !param_kinds(req, &f->kinds))
		return false;
	param_values(req, "event_type", &f->event_type);
	param_values(req, "subtype", &f->subtype);
	f->session = hr_req_query(req, "session");
	f->room = hr_req_query(req, "room");
	return hr_api_param_query(req, f);
}

/* The strings of `f`'s multi-valued fields, for copying. */
#define FILTER_MATCHES(f)                                                                          \
	{                                                                                          \
		&(f)->source, &(f)->provider, &(f)->event_type, &(f)->subtype                      \
	}

static const char *
copy_text(char **p, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = *p;

	memcpy(d, s, n);
	*p += n;
	return d;
}

struct hr_event_filter *
hr_api_event_filter_dup(const struct hr_event_filter *f)
{
	const struct hr_match *const from[] = FILTER_MATCHES(f);
	size_t size = sizeof(*f) + (f->session != NULL ? strlen(f->session) + 1 : 0) +
	    (f->room != NULL ? strlen(f->room) + 1 : 0);

	for (size_t i = 0; i < f->nquery; i++)
		size += strlen(f->query_names[i]) + strlen(f->query_values[i]) + 2;
	struct hr_event_filter *c;
	char *p;

	for (size_t k = 0; k < HR_ARRAY_LEN(from); k++)
		for (unsigned i = 0; i < from[k]->n; i++)
			size += strlen(from[k]->v[i]) + 1;
	if ((c = malloc(size)) == NULL)
		return NULL;
	*c = *f;
	p = (char *)(c + 1); /* the strings follow the struct in the same block */
	{
		struct hr_match *const to[] = FILTER_MATCHES(c);

		for (size_t k = 0; k < HR_ARRAY_LEN(to); k++)
			for (unsigned i = 0; i < to[k]->n; i++)
				to[k]->v[i] = copy_text(&p, to[k]->v[i]);
	}
	if (f->session != NULL)
		c->session = copy_text(&p, f->session);
	if (f->room != NULL)
		c->room = copy_text(&p, f->room);
	for (size_t i = 0; i < f->nquery; i++) {
		c->query_names[i] = copy_text(&p, f->query_names[i]);
		c->query_values[i] = copy_text(&p, f->query_values[i]);
	}
	return c;
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
hr_api_cursor_json(struct hr_req *req, int64_t cursor)
{
	char buf[48];

	if (cursor == 0)
		return json_null();
	if (is_duration(hr_req_query(req, "since")) || is_duration(hr_req_query(req, "until")))
		snprintf(
		    buf, sizeof(buf), "%lld-%lld", (long long)cursor, (long long)relative_to(req));
	else
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
	/* The Daily room it is about or linked to, and the meeting it names. */
	json_object_set_new(o, "room",
	    r->room != NULL || r->meeting != NULL
	        ? json_pack("{s:s?, s:s?}", "name", r->room, "meeting", r->meeting)
	        : json_null());
	return o;
}

json_t *
hr_api_json_or(const char *text, json_t *fallback)
{
	json_t *v = text != NULL ? json_loads(text, JSON_ALLOW_NUL, NULL) : NULL;

	if (v == NULL)
		return fallback;
	json_decref(fallback);
	return v;
}

json_t *
hr_api_page_json(struct hr_req *req, const char *member, json_t *items, int64_t cursor)
{
	return json_pack(
	    "{s:o, s:o}", member, items, "next_cursor", hr_api_cursor_json(req, cursor));
}

static int
append_event(const struct hr_event_row *r, void *arg)
{
	return json_array_append_new(arg, hr_api_event_json(r)) == 0 ? HR_OK : HR_ENOMEM;
}

/* While the database is away every read fails, and a client that polls (the
 * inspector, a dashboard, a script) made each a line: one bucket (ratelimit.h). */
static struct hr_logflood store_error_log = HR_LOGFLOOD_INIT;

static void
log_store_error(struct hr_req *req, const struct hr_error *err)
{
	unsigned long held;

	if (!hr_logflood_take(&store_error_log, hr_time_mono_us(), &held))
		return;
	if (held > 0)
		log_warnx(
		    "api: %lu requests the database could not answer were not logged (a flood)",
		    held);
	log_warnx("api: %s: %s", hr_req_url(req), err->msg);
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
	log_store_error(req, err);
	hr_req_reply_problem(req, 503, "storage-unavailable", "Service Unavailable",
	    "the database could not answer", NULL);
}

/* ---- handlers ---- */

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

static const struct hr_param events_params[] = { HR_API_EVENT_FILTER_PARAMS, { "since", 0 },
	{ "until", 0 }, { "limit", 0 }, { "cursor", 0 }, { "include", 0 }, { NULL, 0 } };

/* ---- pages written as text (api_int.h) ---- */

void
hr_api_text_page_init(struct hr_api_text_page *pg, size_t max, const char *head)
{
	pg->n = 0;
	hr_dynbuf_init(&pg->out, 0, max);
	hr_dynbuf_adds(&pg->out, head);
}

bool
hr_api_text_page_fits(const struct hr_api_text_page *pg, size_t more)
{
	return pg->n == 0 || pg->out.len + more <= HR_API_PAYLOAD_PAGE;
}

void
hr_api_text_page_reply(struct hr_req *req, struct hr_api_text_page *pg, int64_t next)
{
	json_t *cursor = hr_api_cursor_json(req, next);
	char *text, *cursor_text = json_dumps(cursor, JSON_ENCODE_ANY);
	size_t len;

	json_decref(cursor);
	hr_dynbuf_adds(&pg->out, "],\"next_cursor\":");
	if (cursor_text != NULL)
		hr_dynbuf_adds(&pg->out, cursor_text);
	hr_dynbuf_add(&pg->out, "}", 1);
	free(cursor_text);
	if (cursor_text == NULL || (text = hr_dynbuf_take(&pg->out, &len)) == NULL) {
		hr_dynbuf_free(&pg->out);
		hr_req_reply_problem(
		    req, 500, "internal", "Internal Server Error", "cannot build the answer", NULL);
		return;
	}
	hr_req_reply_take(req, 200, "application/json", text, len);
}

/*
 * include=payload: each event of the page carries its stored body. The body
 * goes into the answer as the bytes it is (it is the JSON a request brought
 * in, parsed when it was accepted), not parsed into a tree again, so a page
 * costs memory in proportion to its bytes, and the page stops at a byte
 * budget rather than at `limit` when the payloads are large.
 */
bool
hr_api_body_is_json(const char *body, size_t len)
{
	json_t *v = hr_json_load_wide(body, len, JSON_DECODE_ANY, NULL);
	bool ok = v != NULL;

	json_decref(v);
	return ok;
}

int
hr_api_text_with_payload(
    json_t *o, const char *body, size_t len, bool body_is_json, char **text, size_t *text_len)
{
	struct hr_dynbuf b;
	char *meta;

	if (!body_is_json)
		json_object_set_new(o, "payload", json_null());
	meta = json_dumps(o, JSON_COMPACT | hr_json_reals(o));
	json_decref(o);
	if (meta == NULL)
		return HR_ENOMEM;
	if (!body_is_json) {
		*text = meta;
		*text_len = strlen(meta);
		return HR_OK;
	}
	hr_dynbuf_init(&b, strlen(meta) + len + 16, SIZE_MAX / 2);
	hr_json_splice(&b, meta, strlen(meta), "payload", body, len);
	free(meta);
	return (*text = hr_dynbuf_take(&b, text_len)) != NULL ? HR_OK : HR_ENOMEM;
}

/*
 * Whether an event's stored body goes out as `payload`, its own bytes
 * (numbers as the sender wrote them), or is null. An event's body parsed at
 * ingest; only one made from an accepted 400 rejection can hold a body that
 * is not JSON (cut short, not UTF-8): its bytes are at .../raw, as a
 * rejection's are.
 */
static bool
payload_is_json(const struct hr_event_row *r)
{
	if (r->pruned_us != 0)
		return false;
	return r->problems_json == NULL || hr_api_body_is_json(r->body, r->body_len);
}

static int
append_event_with_payload(const struct hr_event_row *r, void *arg)
{
	struct hr_api_text_page *pg = arg;
	json_t *o = hr_api_event_json(r);
	bool spliced = payload_is_json(r);
	char *meta;
	size_t len;

	if (!spliced)
		json_object_set_new(o, "payload", json_null());
	if (r->pruned_us != 0)
		json_object_set_new(o, "pruned_at", hr_api_time_json(r->pruned_us));
	meta = json_dumps(o, JSON_COMPACT | hr_json_reals(o));
	json_decref(o);
	if (meta == NULL)
		return HR_ENOMEM;
	len = strlen(meta);
	if (!hr_api_text_page_fits(pg, len + r->body_len + 16)) {
		free(meta);
		return HR_ETOOBIG; /* the page ends before this event; the cursor resumes here */
	}
	hr_dynbuf_add(&pg->out, ",", pg->n > 0);
	if (spliced)
		hr_json_splice(&pg->out, meta, len, "payload", r->body, r->body_len);
	else
		hr_dynbuf_add(&pg->out, meta, len);
	free(meta);
	pg->n++;
	return pg->out.err != HR_OK ? HR_ENOMEM : HR_OK;
}

static void
list_events_with_payload(struct hr_req *req, struct hr_event_filter *f)
{
	struct hr_error err = { .field = "" };
	struct hr_api_text_page pg;
	int64_t next;
	int rc;

	/* One event always fits, whatever its size: up to max_body of body, and
	 * fields taken from it. */
	hr_api_text_page_init(
	    &pg, HR_API_PAYLOAD_PAGE + 2 * hr_req_cfg(req)->max_body + 65536, "{\"events\":[");
	f->with_body = true;
	rc = hr_store_list_events(
	    hr_req_app(req)->store, f, append_event_with_payload, &pg, &next, &err);
	if (rc != HR_OK) {
		hr_dynbuf_free(&pg.out);
		hr_api_reply_store_error(req, rc, &err);
		return;
	}
	hr_api_text_page_reply(req, &pg, next);
}

static int
list_events(struct hr_req *req)
{
	struct hr_event_filter f = { .limit = DEFAULT_LIMIT };
	struct hr_error err = { .field = "" };
	const char *include = hr_req_query(req, "include");
	json_t *items;
	int64_t next;
	int rc;

	if (!hr_api_param_event_filter(req, &f) || !hr_api_param_time(req, "since", &f.since_us) ||
	    !hr_api_param_time(req, "until", &f.until_us) || !hr_api_param_limit(req, &f.limit) ||
	    !hr_api_param_cursor(req, &f.before_seq))
		return HR_OK;
	if (include != NULL && strcmp(include, "payload") != 0) {
		hr_api_bad_param(req, "include", "expected payload");
		return HR_OK;
	}
	if (include != NULL) {
		list_events_with_payload(req, &f);
		return HR_OK;
	}
	items = json_array();
	rc = hr_store_list_events(hr_req_app(req)->store, &f, append_event, items, &next, &err);
	if (rc != HR_OK) {
		json_decref(items);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, hr_api_page_json(req, "events", items, next));
	return HR_OK;
}

/*
 * The typed view: the stored body decoded again under its source's provider,
 * within the largest JSON limits any configuration allows: the body was
 * accepted under the limits of its day, and a reload that lowered them since
 * made its view null, as if retention had pruned it.
 */
static json_t *
typed_json(const struct hr_event_row *r)
{
	const struct hr_json_limits lim = hr_cfg_json_limits_max();
	struct hr_event ev;
	struct hr_parse_error pe;
	int hint = r->provider[0] ? hr_provider_from_name(r->provider) : HR_PROVIDER_AUTO;
	json_t *typed = NULL;

	memset(&pe, 0, sizeof(pe));
	if (hr_event_parse(r->body, r->body_len, hint < 0 ? HR_PROVIDER_AUTO : hint, &lim, &ev,
	        &pe) == HR_OK) {
		typed = hr_event_typed_json(&ev);
		hr_event_clear(&ev);
	}
	return typed != NULL ? typed : json_null();
}

struct event_detail {
	char *text; /* the answer */
	size_t len;
};

static int
fill_event_detail(const struct hr_event_row *r, void *arg)
{
	struct event_detail *d = arg;
	json_t *o = hr_api_event_json(r);

	json_object_set_new(o, "remote_addr", hr_api_text_or_null(r->remote_addr));
	json_object_set_new(o, "headers", json_loads(r->headers_json, JSON_ALLOW_NUL, NULL));
	/* Retention may have taken the body; the metadata stays. An event stored by
	 * an accept (it has `problems`) has no typed view (api.md), though a body
	 * refused for its query parameters, or a 413 within today's limits, would
	 * decode whole: a view of it reads as a body that was accepted as it came. */
	json_object_set_new(o, "typed",
	    r->pruned_us != 0 || r->problems_json != NULL ? json_null() : typed_json(r));
	if (r->pruned_us != 0)
		json_object_set_new(o, "pruned_at", hr_api_time_json(r->pruned_us));
	return hr_api_text_with_payload(
	    o, r->body, r->body_len, payload_is_json(r), &d->text, &d->len);
}

static int
get_event(struct hr_req *req)
{
	struct event_detail d = { NULL, 0 };
	struct hr_error err = { .field = "" };
	int rc = hr_store_get_event(
	    hr_req_app(req)->store, hr_req_param(req, 0), fill_event_detail, &d, &err);

	if (rc != HR_OK) {
		free(d.text);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_take(req, 200, "application/json", d.text, d.len);
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
	/* Not JSON (an event accepted from a 400): served as its rejection's /raw serves it. */
	hr_req_reply_take(req, 200,
	    payload_is_json(r) ? "application/json" : "application/octet-stream", copy,
	    r->body_len);
	return HR_OK;
}

/* The body exactly as received, byte for byte (JSON or not). */
static int
get_event_raw(struct hr_req *req)
{
	struct hr_error err = { .field = "" };
	int rc = hr_store_get_event(
	    hr_req_app(req)->store, hr_req_param(req, 0), copy_raw_body, req, &err);

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

static const struct hr_param sessions_params[] = { { "provider", 0 }, { "status", 0 },
	{ "since", 0 }, { "limit", 0 }, { "cursor", 0 }, { NULL, 0 } };

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
	rc = hr_store_list_sessions(hr_req_app(req)->store, &f, append_session, items, &next, &err);
	if (rc != HR_OK) {
		json_decref(items);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, hr_api_page_json(req, "sessions", items, next));
	return HR_OK;
}

/* GET /v1/sessions/{id}: the session, its timeline, and for a room its meetings. */
struct session_doc {
	json_t *doc;
	struct hr_rooms *rooms; /* scope room only */
};

static int
set_session(const struct hr_session_row *r, void *arg)
{
	struct session_doc *sd = arg;
	json_t *s = session_json(r);

	json_object_update(sd->doc, s);
	json_decref(s);
	if (strcmp(r->scope, "room") == 0 && (sd->rooms = hr_rooms_new(TIMELINE_MAX)) == NULL)
		return HR_ENOMEM;
	return HR_OK;
}

static int
append_timeline_event(const struct hr_event_row *r, void *arg)
{
	struct session_doc *sd = arg;

	if (sd->rooms != NULL && hr_rooms_add(sd->rooms, r) != HR_OK)
		return HR_ENOMEM;
	return append_event(r, json_object_get(sd->doc, "events"));
}

static int
get_session(struct hr_req *req)
{
	struct hr_error err = { .field = "" };
	struct session_doc sd = { json_pack("{s:[]}", "events"), NULL };
	json_t *meetings;
	bool truncated = false;
	int rc = hr_store_get_session(hr_req_app(req)->store, hr_req_param(req, 0), set_session,
	    append_timeline_event, &sd, TIMELINE_MAX, &truncated, &err);

	if (rc == HR_OK)
		json_object_set_new(sd.doc, "events_truncated", json_boolean(truncated));
	if (rc == HR_OK && sd.rooms != NULL) {
		meetings = hr_rooms_meetings_json(sd.rooms);
		if (meetings == NULL || json_object_set_new(sd.doc, "meetings", meetings) != 0)
			rc = hr_error_set(&err, HR_ENOMEM, "meetings", "cannot build the answer");
	}
	hr_rooms_free(sd.rooms);
	if (rc != HR_OK) {
		json_decref(sd.doc);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, sd.doc);
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
	bool reachable = hr_store_ping(hr_req_app(req)->store) == HR_OK;
	bool db_ok;
	json_t *doc;

	hr_store_health(hr_req_app(req)->store, &h);
	db_ok = reachable && h.state == HR_DB_OK;
	hr_store_stats(hr_req_app(req)->store, &st);
	doc = json_pack("{s:s, s:s, s:s, s:{s:i, s:I, s:I}, s:{s:I, s:I, s:I}}", "status",
	    db_ok ? "ok" : "unavailable", "version", HR_VERSION_STRING, "database",
	    h.state != HR_DB_OK ? hr_db_health_name(h.state)
	        : reachable     ? "ok"
	                        : "unreachable",
	    "writer", "queued", st.queued, "batches", (json_int_t)st.batches, "jobs",
	    (json_int_t)st.jobs, "ingest", "accepted",
	    (json_int_t)atomic_load(&hr_req_app(req)->accepted), "rejected",
	    (json_int_t)atomic_load(&hr_req_app(req)->rejected), "failed",
	    (json_int_t)atomic_load(&hr_req_app(req)->failed));
	/* Anyone may read /healthz: libpq's message names the server (its socket
	 * path, host and port, the user a login failed for; review RU40), as the
	 * file's name is kept out of SQLite's details. /readyz and the log say it. */
	if (h.state != HR_DB_OK)
		json_object_set_new(doc, "database_detail",
		    json_string(h.state == HR_DB_UNREACHABLE
		            ? "postgresql cannot be reached (the log and /readyz say why)"
		            : h.detail));
	hr_req_reply_report(req, db_ok ? 200 : 503, doc);
	return HR_OK;
}

static const struct hr_param no_params[] = { { NULL, 0 } };

const struct hr_route hr_api_routes[] = {
	{ "GET", "/v1/events", HR_ROUTE_API | HR_ROUTE_READS, NULL, list_events, events_params },
	{ "GET", "/v1/events/{}", HR_ROUTE_API | HR_ROUTE_READS, NULL, get_event, no_params },
	{ "GET", "/v1/events/{}/raw", HR_ROUTE_API | HR_ROUTE_READS, NULL, get_event_raw,
	    no_params },
	{ "GET", "/v1/sessions", HR_ROUTE_API | HR_ROUTE_READS, NULL, list_sessions,
	    sessions_params },
	{ "GET", "/v1/sessions/{}", HR_ROUTE_API | HR_ROUTE_READS, NULL, get_session, no_params },
	{ "GET", "/healthz", HR_ROUTE_READS | HR_ROUTE_ANY_HOST, NULL, healthz, no_params },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
