/*
 * api_rejections.c - refused bodies: list, show, fetch raw, accept.
 *
 * Tavus and PailFlow never retry, so a body refused 422 (or 400, not JSON)
 * is kept (ingest.c) and an operator who has looked at it can still take it
 * in: POST /v1/rejections/{id}/accept stores it as an event of the kind it
 * was refused as, with the validation problems attached, and routes it to
 * destinations like any event. Accepting twice stores nothing new: the
 * writer checks and links the rejection in the event's own transaction.
 *
 * Listings never carry bodies: a page costs its rows' metadata however big
 * the bodies are; GET /v1/rejections/{id} fetches one body at a time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/api.h"
#include "hr/event.h"
#include "hr/jsontext.h"
#include "hr/http.h"
#include "hr/log.h"
#include "hr/outbox.h"
#include "hr/store.h"
#include "api_int.h"

/*
 * [{pointer, detail}] of a stored problem document: a 422's errors, or for
 * a 400 (not JSON) the one problem, at the root. New reference.
 */
static json_t *
problems_of(const char *problem_json)
{
	json_t *doc = json_loads(problem_json != NULL ? problem_json : "{}", JSON_ALLOW_NUL, NULL);
	json_t *errors = json_object_get(doc, "errors"), *out = json_array(), *e;
	const char *detail = json_string_value(json_object_get(doc, "detail"));
	size_t i;

	if (json_is_array(errors)) {
		json_array_foreach(errors, i, e)
		{
			json_array_append_new(out,
			    json_pack("{s:O?, s:O?}", "pointer", json_object_get(e, "pointer"),
			        "detail", json_object_get(e, "detail")));
		}
	} else {
		json_array_append_new(out,
		    json_pack("{s:s, s:s}", "pointer", "", "detail", detail != NULL ? detail : ""));
	}
	json_decref(doc);
	return out;
}

/* The members a listing shows; no body, no headers. */
static json_t *
rejection_json(const struct hr_rejection_row *r)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "received_at", hr_api_time_json(r->received_us));
	json_object_set_new(o, "source", json_string(r->source));
	json_object_set_new(o, "remote_addr", hr_api_text_or_null(r->remote_addr));
	json_object_set_new(o, "kind", hr_api_text_or_null(r->kind));
	json_object_set_new(o, "status", json_integer(r->http_status));
	json_object_set_new(o, "acknowledged", json_boolean(r->acknowledged));
	json_object_set_new(o, "problems", problems_of(r->problem_json));
	json_object_set_new(o, "body_bytes", json_integer((json_int_t)r->body_len));
	json_object_set_new(o, "accepted_event", hr_api_text_or_null(r->accepted_event));
	return o;
}

static int
append_rejection(const struct hr_rejection_row *r, void *arg)
{
	return json_array_append_new(arg, rejection_json(r)) == 0 ? HR_OK : HR_ENOMEM;
}

static const struct hr_param rejections_params[] = { { "source", 0 }, { "since", 0 },
	{ "limit", 0 }, { "cursor", 0 }, { NULL, 0 } };

static int
list_rejections(struct hr_req *req)
{
	struct hr_rejection_filter f = { .source = hr_req_query(req, "source") };
	struct hr_error err = { .field = "" };
	json_t *items;
	int64_t next;
	int rc;

	if (!hr_api_param_time(req, "since", &f.since_us) || !hr_api_param_limit(req, &f.limit) ||
	    !hr_api_param_cursor(req, &f.before_seq))
		return HR_OK;
	items = json_array();
	rc = hr_store_list_rejections(
	    hr_req_app(req)->store, &f, append_rejection, items, &next, &err);
	if (rc != HR_OK) {
		json_decref(items);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, hr_api_page_json(req, "rejections", items, next));
	return HR_OK;
}

struct rejection_detail {
	char *text; /* the answer */
	size_t len;
};

static int
fill_rejection_detail(const struct hr_rejection_row *r, void *arg)
{
	struct rejection_detail *d = arg;
	json_t *o = rejection_json(r);

	json_object_set_new(o, "problem", json_loads(r->problem_json, JSON_ALLOW_NUL, NULL));
	json_object_set_new(o, "headers", json_loads(r->headers_json, JSON_ALLOW_NUL, NULL));
	json_object_set_new(o, "query",
	    r->query_json != NULL ? json_loads(r->query_json, JSON_ALLOW_NUL, NULL)
	                          : json_object());
	/* Not JSON (a 400): null here, the bytes at /raw. */
	return hr_api_text_with_payload(o, r->body, r->body_len,
	    r->kind != NULL && hr_api_body_is_json(r->body, r->body_len), &d->text, &d->len);
}

static int
get_rejection(struct hr_req *req)
{
	struct hr_error err = { .field = "" };
	struct rejection_detail d = { NULL, 0 };
	int rc = hr_store_get_rejection(
	    hr_req_app(req)->store, hr_req_param(req, 0), fill_rejection_detail, &d, &err);

	if (rc != HR_OK) {
		free(d.text);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_take(req, 200, "application/json", d.text, d.len);
	return HR_OK;
}

static int
copy_raw(const struct hr_rejection_row *r, void *arg)
{
	struct hr_req *req = arg;
	char *copy = malloc(r->body_len + 1);

	if (copy == NULL)
		return HR_ENOMEM;
	memcpy(copy, r->body, r->body_len);
	hr_req_reply_take(req, 200,
	    r->kind != NULL ? "application/json" : "application/octet-stream", copy, r->body_len);
	return HR_OK;
}

/* The body exactly as received, byte for byte (JSON or not). */
static int
get_rejection_raw(struct hr_req *req)
{
	struct hr_error err = { .field = "" };
	int rc = hr_store_get_rejection(
	    hr_req_app(req)->store, hr_req_param(req, 0), copy_raw, req, &err);

	if (rc != HR_OK)
		hr_api_reply_store_error(req, rc, &err);
	return HR_OK;
}

/* ---- accept: a write, answered once committed ---- */

/* What the accept write borrows, owned here until the request ends. */
struct accept {
	struct hr_req *req;
	char id[40];
	struct hr_accept_write w;
	struct hr_store_op op;
	struct hr_event ev;
	char rejection_id[256]; /* a route parameter */
	char *source, *remote_addr, *headers_json, *query_json, *problems_json, *body;
	char *facts_json;
	size_t body_len;
	json_t *query;
	int64_t received_us;
	int kind;                /* enum hr_kind; -1 until the row is read */
	int http_status;         /* the refusal's */
	bool no_kind;            /* stored without one: not JSON, or refused before it was read */
	char accepted_event[64]; /* the event an earlier accept made; "": none */
	struct hr_runtime *routed_by; /* accept_route_now()'s, held: the names are its */
	const char *destinations[HR_MAX_DESTINATIONS];
	bool ordered[HR_MAX_DESTINATIONS];
};

static void
accept_free(void *p)
{
	struct accept *a = p;

	if (a == NULL)
		return;
	hr_event_clear(&a->ev);
	free(a->source);
	free(a->remote_addr);
	free(a->headers_json);
	free(a->query_json);
	free(a->problems_json);
	free(a->facts_json);
	free(a->body);
	json_decref(a->query);
	if (a->routed_by != NULL)
		hr_runtime_release(a->routed_by);
	free(a);
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

/* Copy what the event needs out of the row (its pointers die with the callback). */
static int
take_rejection(const struct hr_rejection_row *r, void *arg)
{
	struct accept *a = arg;
	json_t *problems = problems_of(r->problem_json);

	a->kind = r->kind != NULL ? hr_kind_from_name(r->kind) : HR_KIND_UNKNOWN;
	a->no_kind = r->kind == NULL;
	snprintf(a->accepted_event, sizeof(a->accepted_event), "%s",
	    r->accepted_event != NULL ? r->accepted_event : "");
	if (a->kind < 0)
		a->kind = HR_KIND_UNKNOWN; /* a kind a later build renamed: still kept */
	a->received_us = r->received_us;
	a->http_status = r->http_status;
	a->source = strdup(r->source);
	a->remote_addr = dup_or_null(r->remote_addr);
	a->headers_json = strdup(r->headers_json != NULL ? r->headers_json : "{}");
	a->query_json = dup_or_null(r->query_json);
	a->problems_json = problems != NULL ? json_dumps(problems, JSON_COMPACT) : NULL;
	json_decref(problems);
	a->body = malloc(r->body_len + 1);
	if (a->body != NULL)
		memcpy(a->body, r->body, r->body_len);
	a->body_len = r->body_len;
	if (a->source == NULL || a->headers_json == NULL || a->problems_json == NULL ||
	    a->body == NULL || (r->remote_addr != NULL && a->remote_addr == NULL) ||
	    (r->query_json != NULL && a->query_json == NULL))
		return HR_ENOMEM;
	return HR_OK;
}

static void
accept_done(struct hr_store_op *op, void *arg)
{
	struct accept *a = arg;
	struct hr_req *req = a->req;
	const struct hr_store_result *res = &op->res;

	if (res->status != HR_OK) {
		hr_req_reply_problem(req, 503, "storage-unavailable", "Service Unavailable",
		    "the event could not be stored; retry later", NULL);
	} else if (res->count < 0) {
		hr_req_reply_problem(req, 404, "not-found", "Not Found",
		    "the rejection was pruned before it could be accepted", NULL);
	} else {
		if (!res->duplicate)
			log_info("api: rejection %s accepted by %s as %s", a->rejection_id,
			    hr_req_peer_text(req), res->id);
		hr_req_reply_json(req, 200,
		    json_pack("{s:s, s:s, s:b}", "id", res->id, "kind",
		        hr_kind_name((enum hr_kind)a->kind), "created", !res->duplicate));
	}
	hr_req_resume(req);
}

/* On the writer's thread, right before the write: routed again under the
 * configuration in force. Routed when asked, a reload before the writer came
 * left a delivery to a destination it removed, which nobody sends, and none
 * to one it added (a review). The runtime is held until the request ends:
 * the names point into it. */
static void
accept_route_now(void *arg)
{
	struct accept *a = arg;
	struct hr_runtime *rt = hr_app_runtime(hr_req_app(a->req));

	a->w.event.ndestinations = hr_outbox_match(rt->cfg, a->source, hr_kind_name(a->ev.kind),
	    a->destinations, a->ordered, HR_MAX_DESTINATIONS);
	if (a->routed_by != NULL)
		hr_runtime_release(a->routed_by);
	a->routed_by = rt;
}

/* The event and its write, from the copied row; the writer decides if it is new. */
static int
prepare_accept(struct hr_req *req, struct accept *a)
{
	const struct hr_source_cfg *src = hr_cfg_source(hr_req_cfg(req), a->source);
	struct hr_event_write *w = &a->w.event;
	int rc;

	/* The source says whose an unknown body is, if it is still configured. */
	rc = hr_event_accept(a->body, a->body_len, (enum hr_kind)a->kind,
	    a->kind == HR_KIND_UNKNOWN && src != NULL ? src->provider : HR_PROVIDER_AUTO, &a->ev);
	if (rc != HR_OK)
		return rc;
	a->kind = (int)a->ev.kind;
	if (a->query_json != NULL &&
	    (a->query = json_loads(a->query_json, JSON_ALLOW_NUL, NULL)) == NULL)
		return HR_ENOMEM;
	hr_store_new_id("evt", a->id, sizeof(a->id));
	a->w.rejection_id = a->rejection_id;
	w->req = (struct hr_received){ .id = a->id,
		.received_us = a->received_us,
		.source = a->source,
		.remote_addr = a->remote_addr,
		.body = a->body,
		.body_len = a->body_len,
		.headers_json = a->headers_json,
		.query_json = a->query_json };
	w->query = (const struct json_t *)a->query;
	w->problems_json = a->problems_json;
	/* The event keeps when it came; its deliveries begin now (backdated, a week-old
	 * rejection made the backlog's age jump by a week). */
	w->routed_us = hr_time_now_us();
	w->facts_json = a->facts_json = hr_event_facts_json(&a->ev);
	w->ev = &a->ev;
	w->destinations = a->destinations;
	w->ordered = a->ordered;
	w->ndestinations = hr_outbox_match(hr_req_cfg(req), a->source, hr_kind_name(a->ev.kind),
	    a->destinations, a->ordered, HR_MAX_DESTINATIONS);
	a->w.route_now = accept_route_now;
	a->w.arg = a;
	a->op.done = accept_done;
	a->op.arg = a;
	return HR_OK;
}

/*
 * A body refused for the JSON limits (413) is parsed again under today's: still
 * over them, it is refused again, the detail naming the limit (raise it and
 * reload first); else it takes the kind it classifies as. So is one stored
 * without a kind (refused before it was read: too many query parameters),
 * which was accepted as unknown, without its session or its routes (a
 * review); one that is not JSON stays unknown. false: answered.
 */
static bool
within_limits(struct hr_req *req, struct accept *a)
{
	const struct hr_source_cfg *src = hr_cfg_source(hr_req_cfg(req), a->source);
	struct hr_parse_error pe;
	struct hr_event ev;
	int rc;

	if (a->http_status != 413 && !a->no_kind)
		return true;
	rc = hr_event_parse(a->body, a->body_len, src != NULL ? src->provider : HR_PROVIDER_AUTO,
	    &hr_req_runtime(req)->limits, &ev, &pe);
	if (rc == HR_ETOOBIG) {
		hr_req_reply_problem(req, 413, "json-limit", "Content Too Large", pe.detail, NULL);
		return false;
	}
	if (rc == HR_OK)
		a->kind = (int)ev.kind;
	else if (rc == HR_EINVAL)
		a->kind = (int)pe.kind;
	hr_event_clear(&ev);
	return true;
}

static int
take_kind(const struct hr_event_row *row, void *arg)
{
	snprintf(arg, 64, "%s", row->kind);
	return HR_OK;
}

/* Accepted before: its event, whatever the limits say now (a 413 accepted
 * under raised limits answered 413 again once they were set back: a review). */
static void
reply_accepted_before(struct hr_req *req, struct accept *a)
{
	struct hr_error err = { .field = "" };
	char kind[64] = "";
	int rc =
	    hr_store_get_event(hr_req_app(req)->store, a->accepted_event, take_kind, kind, &err);

	if (rc != HR_OK)
		hr_api_reply_store_error(req, rc, &err);
	else
		hr_req_reply_json(req, 200,
		    json_pack(
		        "{s:s, s:s, s:b}", "id", a->accepted_event, "kind", kind, "created", 0));
}

/* POST /v1/rejections/{id}/accept (any body is ignored): 200 {id, kind, created}. */
static int
accept_rejection(struct hr_req *req)
{
	struct hr_error err = { .field = "" };
	struct accept *a = calloc(1, sizeof(*a));
	int rc;

	if (a == NULL)
		return HR_ENOMEM;
	hr_req_set_ctx(req, a, accept_free);
	a->req = req;
	a->kind = -1;
	snprintf(a->rejection_id, sizeof(a->rejection_id), "%s", hr_req_param(req, 0));
	rc = hr_store_get_rejection(
	    hr_req_app(req)->store, hr_req_param(req, 0), take_rejection, a, &err);
	if (rc == HR_ENOTFOUND || (rc != HR_OK && rc != HR_ENOMEM)) {
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	if (rc != HR_OK)
		return rc;
	if (a->accepted_event[0] != '\0') {
		reply_accepted_before(req, a);
		return HR_OK;
	}
	if (!within_limits(req, a))
		return HR_OK;
	if ((rc = prepare_accept(req, a)) != HR_OK)
		return rc;
	if (!hr_req_suspend(req)) {
		hr_req_reply_problem(req, 503, "shutting-down", "Service Unavailable",
		    "hookrelay is shutting down", NULL);
		return HR_OK;
	}
	if (hr_store_accept_rejection(hr_req_app(req)->store, &a->w, &a->op) != HR_OK) {
		(void)hr_req_set_header(req, "Retry-After", "1");
		hr_req_reply_problem(req, 503, "overloaded", "Service Unavailable",
		    "the write queue is full; retry later", NULL);
		hr_req_resume(req);
	}
	return HR_OK;
}

static const struct hr_param no_params[] = { { NULL, 0 } };

const struct hr_route hr_rejection_routes[] = {
	{ "GET", "/v1/rejections", HR_ROUTE_API | HR_ROUTE_READS, NULL, list_rejections,
	    rejections_params },
	{ "GET", "/v1/rejections/{}", HR_ROUTE_API | HR_ROUTE_READS, NULL, get_rejection,
	    no_params },
	{ "GET", "/v1/rejections/{}/raw", HR_ROUTE_API | HR_ROUTE_READS, NULL, get_rejection_raw,
	    no_params },
	{ "POST", "/v1/rejections/{}/accept", HR_ROUTE_API | HR_ROUTE_READS, NULL, accept_rejection,
	    no_params },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
