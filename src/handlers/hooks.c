/*
 * hooks.c - POST /hooks/{source}: check, hand to ingest, answer.
 *
 * Cheap refusals happen before the body is read (unknown source 404, wrong
 * content type 415, declared length over max_body 413). Parsing and
 * validation (ingest.h) run here on the HTTP thread; the writer thread only
 * writes.
 * The connection stays suspended until the event's transaction committed:
 * a 200 means the event is on disk. A body that is not JSON (400) or fails
 * its kind's validation (422) is written to the rejections table before it
 * is answered: Tavus and PailFlow never retry, so a refused body must stay
 * recoverable (POST /v1/rejections/{id}/accept).
 *
 * The callback URL's query parameters are kept with the event (users add
 * ?user_id=42 to correlate PailFlow events, which carry no user id), except
 * `token`: the auth token is never stored, logged or shown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hr/auth.h"
#include "hr/event.h"
#include "hr/dynbuf.h"
#include "hr/hooks.h"
#include "hr/ingest.h"
#include "hr/jsontext.h"
#include "hr/kinds_daily.h"
#include "hr/log.h"
#include "hr/netaddr.h"
#include "hr/ratelimit.h"
#include "hr/redact.h"
#include "hr/timefmt.h"

#include "hooks_headers.h"

/* Daily's verification probe is {"test":"test"}: a body longer than this is not it. */
#define PROBE_MAX 64

/* Query parameters kept with one event; more is refused (400), never cut. */
#define QUERY_PARAMS_MAX 64

/* Rejections, refused credentials and Daily's probes are logged one line each,
 * in moderation (ratelimit.h): the first two per source (their counters'), the
 * others process-wide; every request is still counted (and a rejection kept). */
static struct hr_logflood probe_log = HR_LOGFLOOD_INIT, unstored_log = HR_LOGFLOOD_INIT,
                          unknown_log = HR_LOGFLOOD_INIT;

static void
say_refusals_held(const char *source, unsigned long held)
{
	log_warnx("ingest: source %s: %lu refused requests were not logged (a flood); see "
	          "hookrelay_refused_total",
	    source, held);
}

static void
say_rejections_held(const char *source, unsigned long held)
{
	log_warnx("ingest: source %s: %lu rejections were not logged (a flood); see GET "
	          "/v1/rejections and hookrelay_rejected_total",
	    source, held);
}

void
hr_hooks_say_held(struct hr_runtime *rt)
{
	int64_t now = hr_time_mono_us();
	unsigned long held_unknown;

	for (size_t i = 0; i < rt->cfg->nsources; i++) {
		struct hr_source_counters *c = rt->sources[i].counters;
		unsigned long held;

		if ((held = hr_logflood_held(&c->refusal_log, now)) > 0)
			say_refusals_held(rt->cfg->sources[i].name, held);
		if ((held = hr_logflood_held(&c->reject_log, now)) > 0)
			say_rejections_held(rt->cfg->sources[i].name, held);
	}
	if ((held_unknown = hr_logflood_held(&unknown_log, now)) > 0)
		say_refusals_held("(unknown)", held_unknown);
}

struct hook {
	struct hr_req *req;
	const struct hr_source_cfg *source;
	struct hr_source_state *state;
	bool authenticated;
	/* Whose auth check let the request in (admit()): its own, or a reload's. */
	struct hr_runtime *admit_rt;           /* a reference; NULL: the request's own */
	const struct hr_source_cfg *admit_src; /* NULL: not admitted (yet) */
	const struct hr_secrets *admit_secrets;
	bool source_removed; /* by a reload while the request came in: counted as unknown */
	char client[64];     /* the client address auth settled on, for logs */
	struct hr_ingest g;  /* the webhook on its way into the store */
	char *headers_json;
	char *problem_json; /* a refused body's answer, kept with it */
	int reject_status;  /* its HTTP status; 0: not refused */
	size_t reject_slot; /* its kind's slot of state->rejected */
	json_t *query;      /* the kept query parameters; NULL: none */
	char *query_json;
};

/* /metrics: every answer, counted once the request is complete; no lock, no allocation. */
static void
count_answer(struct hook *in)
{
	struct hr_req *req = in->req;
	if (!hr_req_answered(req))
		return; /* the client went away first (before its body's end, for a refusal) */
	/* An unknown source, or one the configuration in force no longer has (the old
	 * one's counters go with it): one series, bounded. */
	if (in->source == NULL || in->source_removed) {
		atomic_fetch_add_explicit(
		    &hr_req_app(req)->metrics.unknown_source, 1, memory_order_relaxed);
		return;
	}
	if (in->state == NULL)
		return;
	hr_request_counts_add(
	    &in->state->counters->requests, hr_ingest_kind(&in->g), hr_req_status(req));
}

static void
hook_free(void *p)
{
	struct hook *in = p;

	count_answer(in);
	hr_runtime_release(in->admit_rt);
	hr_ingest_clear(&in->g);
	free(in->headers_json);
	free(in->problem_json);
	json_decref(in->query);
	free(in->query_json);
	free(in);
}

/* The body, "" when none was sent. */
static const char *
request_body(struct hr_req *req, size_t *len)
{
	const char *body = hr_req_body(req, len);

	return body != NULL ? body : "";
}

static const char *
auth_header(void *arg, const char *name)
{
	struct hook *in = arg;

	return hr_req_header(in->req, name);
}

static void
auth_each_header(void *arg, int (*cb)(void *, const char *, const char *), void *cbarg)
{
	struct hook *in = arg;

	hr_req_each_header(in->req, cb, cbarg);
}

/* A path segment as a log may show it: bytes that are not printable ASCII as '?'. */
static void
shown_name(const char *name, char *out, size_t size)
{
	size_t i = 0;

	for (; name[i] != '\0' && i + 1 < size; i++)
		out[i] = name[i] > 0x20 && name[i] < 0x7f ? name[i] : '?';
	out[i] = '\0';
}

/*
 * A webhook refused on its headers (404, 413, 415, 429): Tavus and PailFlow
 * never retry, so each is an event lost, and none was logged (review R9; a
 * 401 was). Said in moderation, per source (an unknown one: process-wide).
 */
static void
refuse(struct hook *in, int status, const char *slug, const char *title, const char *detail)
{
	struct hr_logflood *flood =
	    in->state != NULL ? &in->state->counters->refusal_log : &unknown_log;
	char name[65];
	unsigned long held;

	if (hr_logflood_take(flood, hr_time_mono_us(), &held)) { /* a flood's are not shown */
		const char *given = hr_req_param(in->req, 0);

		shown_name(
		    given != NULL && given[0] != '\0' ? given : "(no route)", name, sizeof(name));
		if (held > 0) /* an unknown source's were any names' (review R11) */
			say_refusals_held(in->state != NULL ? name : "(unknown)", held);
		log_warnx("ingest: source %s refused a request from %s: %d, %s", name,
		    in->client[0] ? in->client : hr_req_peer_text(in->req), status, detail);
	}
	hr_req_reply_problem(in->req, status, slug, title, detail, NULL);
}

static bool
rate_allowed(struct hook *in)
{
	int64_t wait_us;
	char secs[24];

	/* Monotonic: a wall clock stepped back would stop the bucket refilling. */
	if (hr_bucket_take(&in->state->counters->bucket, hr_time_mono_us(), &wait_us))
		return true;
	atomic_fetch_add(&in->state->counters->rate_limited, 1);
	snprintf(secs, sizeof(secs), "%lld", (long long)((wait_us + 999999) / 1000000));
	(void)hr_req_set_header(in->req, "Retry-After", secs);
	refuse(in, 429, "rate-limited", "Too Many Requests",
	    "this source is over its configured rate; retry later");
	return false;
}

/* What auth reads of this request: its credentials, peer, headers and body. */
static struct hr_auth_req
auth_request(struct hook *in)
{
	struct hr_req *req = in->req;
	size_t len;
	const char *body = request_body(req, &len);

	return (struct hr_auth_req){
		.src = in->source,
		.secrets = in->state->secrets,
		.peer = hr_req_peer(req),
		.header = auth_header,
		.each_header = auth_each_header,
		.header_arg = in,
		.query_token = hr_req_query(req, "token"),
		.path_token = hr_req_param(req, 1)[0] ? hr_req_param(req, 1) : NULL,
		.body = body,
		.len = len,
		.now_ms = hr_time_now_us() / 1000,
	};
}

/*
 * The secrets a request's credentials are checked against: the current
 * configuration's. A request keeps the configuration it started under, and a
 * signature is checked once its body is in, up to request_timeout later: a
 * secret a reload had removed (a leaked one, revoked) was accepted then, on a
 * request begun before the reload (a review); so was an address allow_cidrs had
 * dropped. A source removed since refuses it with HR_ENOTFOUND (404, as a
 * request begun after the reload); one whose auth changed checks it by its new
 * mode: a body a reload to `auth = none` opened the source to was refused 401,
 * a webhook lost that both configurations let in (review R42CF).
 * *now: the runtime to release, or NULL.
 */
static int
current_auth(struct hook *in, struct hr_runtime **now, struct hr_auth_req *ar)
{
	struct hr_app *app = hr_req_app(in->req);
	const struct hr_source_cfg *src;

	*now = NULL;
	if (hr_app_runtime_is_current(app, hr_req_runtime(in->req)))
		return HR_OK;
	*now = hr_app_runtime(app);
	src = hr_cfg_source((*now)->cfg, in->source->name);
	if (src == NULL)
		return HR_ENOTFOUND;
	ar->src = src; /* its allow_cidrs and proxies too */
	ar->secrets = hr_runtime_source_state(*now, src)->secrets;
	return HR_OK;
}

/* A request to a source a reload removed while it came in: answered as one begun
 * after the reload, and counted as a request to an unknown source. */
static void
refuse_removed(struct hook *in)
{
	in->source_removed = true;
	refuse(in, 404, "unknown-source", "Unknown source",
	    "a reload while this request came in removed the [source] section of this name");
}

/* Which of auth.h's checks check_current() runs. */
enum auth_check {
	CHECK_HEADERS, /* hr_auth_precheck: what the headers alone can refuse */
	CHECK_ALL,     /* hr_auth_check */
	CHECK_PROBE,   /* hr_auth_check, unless the request authenticated already */
};

/* `ar` let the request in: what follows from that check (masking the URL token, the
 * verified webhook-id) follows its mode. `now`'s reference kept: `ar`'s are its. */
static void
admit(struct hook *in, struct hr_runtime *now, const struct hr_auth_req *ar)
{
	hr_runtime_release(in->admit_rt);
	in->admit_rt = now;
	in->admit_src = ar->src;
	in->admit_secrets = ar->secrets;
}

/*
 * `in`'s credentials checked against the configuration in force (current_auth):
 * an enum hr_auth_status, `out` filled as auth.h says; or -1 once the request
 * was refused 404, its source removed by a reload while it came in.
 */
static int
check_current(struct hook *in, enum auth_check check, struct hr_auth_out *out)
{
	struct hr_auth_req ar = auth_request(in);
	struct hr_runtime *now = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = current_auth(in, &now, &ar)) == HR_ENOTFOUND) {
		hr_runtime_release(now);
		refuse_removed(in);
		return -1;
	}
	if (check == CHECK_HEADERS)
		rc = hr_auth_precheck(&ar, out);
	else if (check == CHECK_PROBE && in->authenticated)
		rc = HR_AUTH_OK;
	else
		rc = hr_auth_check(&ar, out);
	if (rc == HR_AUTH_OK && check == CHECK_ALL) {
		admit(in, now, &ar);
		now = NULL; /* kept by admit() */
	}
	hr_runtime_release(now);
	return rc;
}

/*
 * The client is told only "401": which check failed goes to the log and the
 * counters. `before_body`: the signature modes' header-only checks
 * (hr_auth_precheck), so that a request that cannot pass is refused before
 * hookrelay reads and holds its body.
 */
static bool
authenticate(struct hook *in, bool before_body)
{
	struct hr_req *req = in->req;
	struct hr_auth_out out;
	unsigned long held;
	int rc;

	if ((rc = check_current(in, before_body ? CHECK_HEADERS : CHECK_ALL, &out)) < 0)
		return false;
	/* Without a proxy in front the client is the peer, whose text the request has. */
	if (out.client.ss_family != 0 &&
	    hr_netaddr_same((struct sockaddr *)&out.client, hr_req_peer(req)))
		snprintf(in->client, sizeof(in->client), "%s", hr_req_peer_text(req));
	else if (out.client.ss_family != 0)
		hr_netaddr_format((struct sockaddr *)&out.client, in->client, sizeof(in->client));
	if (rc == HR_AUTH_OK && before_body)
		return true;
	if (rc == HR_AUTH_OK) {
		hr_req_budget_release(req); /* its body is no stranger's any more */
		if (in->admit_src->auth == HR_AUTH_STANDARD_WEBHOOKS)
			in->g.in.webhook_id = out.webhook_id;
		in->authenticated = true;
		return true;
	}
	atomic_fetch_add(&in->state->counters->auth_failures, 1);
	if (hr_logflood_take(&in->state->counters->refusal_log, hr_time_mono_us(), &held)) {
		if (held > 0)
			say_refusals_held(in->source->name, held);
		log_warnx("auth: source %s refused a request from %s (peer %s): %s",
		    in->source->name, in->client[0] ? in->client : hr_req_peer_text(req),
		    hr_req_peer_text(req), hr_auth_status_str(rc));
	}
	/* tokens, signatures, addresses: no standard scheme but Basic */
	(void)hr_req_set_header(req, "WWW-Authenticate",
	    in->source->auth == HR_AUTH_BASIC ? "Basic realm=\"hookrelay\", charset=\"UTF-8\""
	                                      : "Webhook");
	hr_req_reply_problem(req, 401, "unauthorized", "Unauthorized",
	    "the request could not be authenticated for this source", NULL);
	return false;
}

static int
hook_begin(struct hr_req *req)
{
	const char *cl = hr_req_header(req, "Content-Length");
	struct hook *in;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return HR_ENOMEM;
	hr_req_set_ctx(req, in, hook_free);
	in->req = req;
	in->source = hr_cfg_source(hr_req_cfg(req), hr_req_param(req, 0));
	if (in->source == NULL) {
		refuse(in, 404, "unknown-source", "Unknown source",
		    "no [source] section of the configuration has this name");
		return HR_OK;
	}
	in->state = hr_runtime_source_state(hr_req_runtime(req), in->source);
	/* The bucket is spent only by requests that authenticated: a stranger who
	 * knows the URL must not use up the provider's allowance (Tavus and
	 * PailFlow never retry a 429). Signature modes spend it in hook_handle. */
	if (!hr_cfg_signs_body(in->source) && (!authenticate(in, false) || !rate_allowed(in)))
		return HR_OK;
	/* The media type is a barrier against browsers' forms only (no form can send
	 * JSON's type), needed where nothing else tells a provider from a page: a
	 * source without credentials. Where a credential is checked, a provider that
	 * labels its JSON otherwise (or not at all) is taken at its body: Tavus and
	 * PailFlow never resend what a 415 refused. */
	if (in->source->auth == HR_AUTH_NONE &&
	    !hr_hooks_is_json_type(hr_req_header(req, "Content-Type"))) {
		refuse(in, 415, "unsupported-media-type", "Unsupported Media Type",
		    "webhook bodies must be sent as Content-Type: application/json "
		    "(a source with auth = none takes no other)");
		return HR_OK;
	}
	/* A gzip body was a 400 "malformed JSON at line 1", which sent its sender
	 * looking for a broken payload: the coding is named now, and which one is
	 * taken (RFC 9110, 15.5.16). */
	if (!hr_hooks_is_identity_coding(hr_req_header(req, "Content-Encoding"))) {
		(void)hr_req_set_header(req, "Accept-Encoding", "identity");
		refuse(in, 415, "unsupported-media-type", "Unsupported Media Type",
		    "hookrelay does not decode a Content-Encoding (gzip, deflate...): "
		    "send the body uncompressed");
		return HR_OK;
	}
	if (cl != NULL && strtoull(cl, NULL, 10) > hr_req_cfg(req)->max_body) {
		refuse(in, 413, "body-too-large", "Content Too Large",
		    "the request body is larger than [server] max_body");
		return HR_OK;
	}
	/* The signature modes: what can be refused before the body is read, is. And
	 * a body only its signature can vouch for counts against the budget while read. */
	if (hr_cfg_signs_body(in->source) && authenticate(in, true) &&
	    !hr_req_budget_body(req, cl != NULL ? strtoull(cl, NULL, 10) : 0))
		hr_req_reply_budget_full(req);
	return HR_OK;
}

/* The 200 answer. Ids and kind names are plain ASCII: no JSON encoder needed on the hot path. */
static void
reply_accepted(struct hr_req *req, const char *id, const char *kind, bool duplicate)
{
	char *text = malloc(192);
	int n;

	if (text == NULL) {
		hr_req_reply_json(req, 200,
		    json_pack("{s:s, s:s, s:b}", "id", id, "kind", kind, "duplicate", duplicate));
		return;
	}
	n = snprintf(text, 192, "{\"id\":\"%s\",\"kind\":\"%s\",\"duplicate\":%s}", id, kind,
	    duplicate ? "true" : "false");
	hr_req_reply_take(req, 200, "application/json", text, (size_t)n);
}

/*
 * A webhook answered 503 without being stored (the write failed, the write
 * queue was full, or hookrelay was stopping): for a sender that never retries
 * (Tavus, PailFlow) an event lost. Counted (ingest.failed of /healthz, and per
 * source and reason on /metrics, whether or not the sender is still there to
 * read the answer) and said, at error level, in moderation. A refused body's
 * line follows its "rejected ... kept as" line, written before the write was
 * queued, and takes it back.
 */
static void
note_not_stored(struct hook *in, enum hr_not_stored reason)
{
	static const char *const why[HR_NOT_STORED_REASONS] = {
		"the store failed (see the store's lines)",
		"the write queue is full ([storage] queue_max)",
		"hookrelay is stopping",
	};
	unsigned long held;

	atomic_fetch_add(&hr_req_app(in->req)->failed, 1);
	atomic_fetch_add(&in->state->counters->not_stored[reason], 1);
	if (!hr_logflood_take(&unstored_log, hr_time_mono_us(), &held))
		return;
	if (held > 0)
		log_errx("ingest: %lu more webhooks answered 503 and not stored were not logged (a "
		         "flood)",
		    held);
	if (in->reject_status != 0)
		log_errx("ingest: the rejected body %s from %s (%s) was not kept after all: %s; "
		         "answered 503",
		    in->g.id, in->source->name, hr_req_peer_text(in->req), why[reason]);
	else /* what to ask the provider to send again (review R9: nothing named it) */
		log_errx("ingest: a webhook from %s (%s) was answered 503 and not stored: %s"
		         " (kind %s, session %s)",
		    in->source->name, hr_req_peer_text(in->req), why[reason],
		    hr_kind_name(in->g.ev.kind),
		    in->g.ev.sum.session_key != NULL ? in->g.ev.sum.session_key : "none");
}

/* Nothing of the request was kept: the store failed (`status`), or was
 * stopping (HR_ECLOSED: answered as a stop, not as a broken store; review R2). */
static void
reply_unavailable(struct hr_req *req, int status, const char *detail)
{
	bool stopping = status == HR_ECLOSED;

	(void)hr_req_set_header(req, "Retry-After", stopping ? "1" : "5");
	hr_req_reply_problem(req, 503, stopping ? "shutting-down" : "storage-unavailable",
	    "Service Unavailable", stopping ? "hookrelay is shutting down; retry" : detail, NULL);
}

/* Writer thread: the event's transaction committed (or failed); answer now. */
static void
event_done(struct hr_ingest *g, const struct hr_store_result *res, void *arg)
{
	struct hook *in = arg;
	struct hr_req *req = in->req;

	if (res->status == HR_OK) {
		hr_hist_observe(&hr_req_app(req)->metrics.ack_latency, &hr_hist_ack_latency,
		    hr_time_now_us() - hr_req_started_us(req));
		atomic_fetch_add(
		    res->duplicate ? &in->state->counters->duplicates : &hr_req_app(req)->accepted,
		    1);
		/* A duplicate names the kind stored under its id: a sender reusing a
		 * webhook-id for another body was told the new body's kind. */
		reply_accepted(req, res->id,
		    res->duplicate && res->kind[0] != '\0' ? res->kind : hr_kind_name(g->ev.kind),
		    res->duplicate);
		log_debug("ingest: %s %s as %s from %s", res->id,
		    res->duplicate ? "was a duplicate of an event stored" : "stored",
		    hr_kind_name(g->ev.kind), in->source->name);
	} else {
		note_not_stored(
		    in, res->status == HR_ECLOSED ? HR_NOT_STORED_STOPPING : HR_NOT_STORED_STORAGE);
		reply_unavailable(req, res->status,
		    "the event could not be stored; it was not accepted, retry later");
	}
	hr_req_resume(req);
}

/*
 * Daily's circuit breaker puts a webhook in FAILED after three refused
 * deliveries, and then nothing more arrives until it is re-posted: a body
 * refused by our validation would stop every later event. It is kept as a
 * rejection all the same (GET /v1/rejections, a warning, the metric) and
 * answered 200 with the problem inside; acknowledged so, it is out of
 * [storage] rejections_max's reach (its sender will not send it again).
 */
static bool
acknowledges_rejections(const struct hr_source_cfg *src)
{
	return src->provider == HR_PROVIDER_DAILY;
}

/* `problem` (the JSON text) is taken. */
static void
reply_daily_rejected(struct hr_req *req, const char *id, char *problem)
{
	json_t *doc = json_pack("{s:s, s:b, s:o?}", "id", id, "rejected", 1, "problem",
	    json_loads(problem, JSON_ALLOW_NUL, NULL));

	free(problem);
	hr_req_reply_json(req, 200, doc);
}

/*
 * Writer thread: the refused body is kept; answer with the problem prepared
 * earlier. If it could not be kept, the 400/422 would say it was (api.md:
 * "kept for GET /v1/rejections") and a sender retrying on 5xx only would not
 * send it again: the answer is the store's 503, as for an event.
 */
static void
rejection_done(struct hr_ingest *g, const struct hr_store_result *res, void *arg)
{
	struct hook *in = arg;
	struct hr_req *req = in->req;
	char *text = in->problem_json;

	in->problem_json = NULL;
	if (res->status != HR_OK) {
		note_not_stored(
		    in, res->status == HR_ECLOSED ? HR_NOT_STORED_STOPPING : HR_NOT_STORED_STORAGE);
		free(text);
		reply_unavailable(req, res->status,
		    "the refused body could not be kept; it was not accepted, retry later");
		hr_req_resume(req);
		return;
	}
	atomic_fetch_add(&hr_req_app(req)->rejected, 1);
	atomic_fetch_add(&in->state->counters->rejected[in->reject_slot], 1);
	if (acknowledges_rejections(in->source))
		reply_daily_rejected(req, g->id, text);
	else
		hr_req_reply_take(
		    req, in->reject_status, "application/problem+json", text, strlen(text));
	hr_req_resume(req);
}

static const char *
dedup_header(void *arg, const char *name)
{
	return hr_req_header(arg, name);
}

/* What an event and a rejection both keep of the request, and what ingest reads. */
static void
keep_request(struct hook *in)
{
	struct hr_req *req = in->req;
	struct hr_received *r = &in->g.in.req;

	in->g.in.cfg = hr_req_cfg(req);
	in->g.in.source = in->source;
	in->g.in.limits = &hr_req_runtime(req)->limits;
	in->g.in.query = in->query;
	in->g.in.header = dedup_header;
	in->g.in.header_arg = req;
	in->g.arg = in;
	r->received_us = hr_req_started_us(req);
	r->source = in->source->name;
	r->remote_addr = hr_req_peer_text(req);
	r->body = request_body(req, &r->body_len);
	r->headers_json = in->headers_json = hr_hooks_headers_json(req);
	r->query_json = in->query_json;
}

/* Suspend, then queue (the event, or the refused body of `kind` when
 * in->reject_status is set): the writer may finish before this thread
 * returns, so nothing reads `in` after a write was queued. */
static int
submit(struct hook *in, const char *kind)
{
	struct hr_req *req = in->req;
	struct hr_store *store = hr_req_app(req)->store;
	bool suspended = hr_req_suspend(req);
	int rc;

	if (!suspended)
		rc = HR_ECLOSED;
	else if (in->reject_status == 0)
		rc = hr_ingest_store(&in->g, store);
	else
		rc = hr_ingest_keep_rejection(&in->g, store, kind, in->reject_status,
		    in->problem_json, acknowledges_rejections(in->source));
	if (rc == HR_OK)
		return HR_OK;
	note_not_stored(in, rc == HR_EBUSY ? HR_NOT_STORED_QUEUE_FULL : HR_NOT_STORED_STOPPING);
	(void)hr_req_set_header(req, "Retry-After", "1");
	hr_req_reply_problem(req, 503, rc == HR_EBUSY ? "overloaded" : "shutting-down",
	    "Service Unavailable",
	    rc == HR_EBUSY ? "the write queue is full; retry later" : "hookrelay is shutting down",
	    NULL);
	if (suspended)
		hr_req_resume(req);
	return HR_OK;
}

static json_t *
verrors_json(const struct hr_parse_error *pe)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < pe->nerrors; i++)
		json_array_append_new(arr,
		    json_pack("{s:s, s:s}", "pointer", pe->errors[i].pointer, "detail",
		        pe->errors[i].detail));
	return arr;
}

/* One warning per rejection, unless a flood is on (see probe_log). */
static void
log_rejection(struct hook *in, const char *what, const char *pointer, const char *detail)
{
	unsigned long held;

	if (!hr_logflood_take(&in->state->counters->reject_log, hr_time_mono_us(), &held))
		return;
	if (held > 0)
		say_rejections_held(in->source->name, held);
	log_warnx("ingest: rejected %s from %s (%s), kept as %s: %s%s%s", what, in->source->name,
	    hr_req_peer_text(in->req), in->g.id, pointer, pointer[0] ? " " : "", detail);
}

/*
 * Keep a refused body (its problem document is `doc`, taken) and answer
 * with that document once it is on disk. `kind` is NULL for a body that is
 * not JSON.
 */
static int
keep_rejection(struct hook *in, int status, const char *kind, json_t *doc, const char *what,
    const char *pointer, const char *why)
{
	in->problem_json = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (in->problem_json == NULL)
		return HR_ENOMEM;
	/* Counted once it is kept (rejection_done). */
	in->reject_slot = kind != NULL ? (size_t)hr_kind_from_name(kind) : HR_REQ_KIND_SLOTS - 1;
	/* Its id now, so that the warning can name it before the write is queued. */
	hr_store_new_id("rej", in->g.id, sizeof(in->g.id));
	in->reject_status = status;
	in->g.done = rejection_done;
	log_rejection(in, what, pointer, why);
	return submit(in, kind);
}

static int
reject_invalid(struct hook *in, const struct hr_parse_error *pe)
{
	const char *kind = hr_kind_name(pe->kind);
	char detail[300], what[160];
	json_t *extra = json_pack("{s:s, s:o}", "kind", kind, "errors", verrors_json(pe));

	snprintf(
	    detail, sizeof(detail), "the body is a %s event whose fields do not validate", kind);
	snprintf(what, sizeof(what), "a %s body", kind);
	/* The list holds the first HR_VERRORS_MAX; say how many there were, never drop silently. */
	if (extra != NULL && pe->nfound > pe->nerrors)
		json_object_set_new(extra, "errors_total", json_integer((json_int_t)pe->nfound));
	return keep_rejection(in, 422, kind,
	    hr_req_problem(in->req, 422, "invalid-payload", "Unprocessable Content", detail, extra),
	    what, pe->nerrors > 0 ? pe->errors[0].pointer : "",
	    pe->nerrors > 0 ? pe->errors[0].detail : "");
}

/* Malformed JSON is kept too (400): it may still be the only copy of a callback. */
static int
reject_malformed(struct hook *in, const struct hr_parse_error *pe)
{
	return keep_rejection(in, 400, NULL,
	    hr_req_problem(in->req, 400, "malformed-json", "Bad Request", pe->detail,
	        json_pack("{s:i, s:i, s:I}", "line", pe->line, "column", pe->column, "position",
	            (json_int_t)pe->position)),
	    "a body that is not JSON", "", pe->detail);
}

/* A body over the JSON limits (max_values, max_depth, ...) is kept too (413):
 * within max_body it is held anyway, and it may be the only copy. */
static int
reject_over_limits(struct hook *in, const struct hr_parse_error *pe)
{
	return keep_rejection(in, 413, NULL,
	    hr_req_problem(in->req, 413, "json-limit", "Content Too Large", pe->detail, NULL),
	    "a body over the JSON limits", "", pe->detail);
}

struct query_build {
	json_t *obj;
	size_t n;
	bool failed;
};

/* name -> value; a repeated name -> array of its values in order. */
static int
add_query_param(void *arg, const char *name, const char *value)
{
	struct query_build *qb = arg;
	json_t *v, *old, *key;

	/* The auth token: never stored, logged or shown. Any case: libmicrohttpd finds
	 * ?Token= when auth asks for "token", so it authenticates as well. */
	if (strcasecmp(name, "token") == 0)
		return 0;
	if (++qb->n > QUERY_PARAMS_MAX)
		return 1;
	key = hr_json_string_lossy(name);
	v = hr_json_string_lossy(value != NULL ? value : "");
	if (key == NULL || v == NULL) {
		json_decref(key);
		json_decref(v);
		qb->failed = true;
		return 1;
	}
	old = json_object_get(qb->obj, json_string_value(key));
	if (old == NULL)
		qb->failed |= json_object_set_new(qb->obj, json_string_value(key), v) != 0;
	else if (json_is_array(old))
		qb->failed |= json_array_append_new(old, v) != 0;
	else
		qb->failed |= json_object_set_new(qb->obj, json_string_value(key),
		                  json_pack("[O, o]", old, v)) != 0;
	json_decref(key);
	return qb->failed;
}

/* The query parameters the event keeps: HR_OK, HR_ETOOBIG (more than
 * QUERY_PARAMS_MAX: none kept) or HR_ENOMEM. */
static int
keep_query(struct hook *in)
{
	struct query_build qb = { json_object(), 0, false };

	if (qb.obj == NULL)
		return HR_ENOMEM;
	hr_req_each_query(in->req, add_query_param, &qb);
	if (qb.n > QUERY_PARAMS_MAX || qb.failed || json_object_size(qb.obj) == 0) {
		json_decref(qb.obj);
		return qb.n > QUERY_PARAMS_MAX ? HR_ETOOBIG : qb.failed ? HR_ENOMEM : HR_OK;
	}
	in->query_json = json_dumps(qb.obj, JSON_COMPACT | JSON_SORT_KEYS);
	in->query = qb.obj;
	return in->query_json != NULL ? HR_OK : HR_ENOMEM;
}

/* A callback URL with more query parameters than are kept: the body is kept
 * anyway (400, like a malformed one), without them; it may be the only copy. */
static int
reject_too_many_parameters(struct hook *in)
{
	char detail[160];

	snprintf(detail, sizeof(detail), "the callback URL has more than %d query parameters",
	    QUERY_PARAMS_MAX);
	return keep_rejection(in, 400, NULL,
	    hr_req_problem(in->req, 400, "too-many-parameters", "Bad Request", detail, NULL),
	    "a callback URL with too many query parameters", "", detail);
}

/* Is this request Daily's verification probe, to a Daily source? Unsigned, so
 * JSON's type only: a browser's form is no probe (answered 200, it was once the
 * barrier of step 5 stopped applying to signed sources; a review). */
static bool
is_daily_probe(const struct hook *in)
{
	size_t len;
	const char *body = hr_req_body(in->req, &len);
	json_t *root;
	bool probe;

	if (in->source->provider != HR_PROVIDER_DAILY || body == NULL || len > PROBE_MAX ||
	    !hr_hooks_is_json_type(hr_req_header(in->req, "Content-Type")))
		return false;
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	probe = hr_daily_is_probe(root);
	json_decref(root);
	return probe;
}

/*
 * Daily POSTs {"test":"test"} when a webhook is created or updated and fails
 * the API call unless it gets a 200 quickly. If Daily provisioned the hmac,
 * this source cannot know it yet, so the probe is answered 200 signed or
 * not: it is never stored, so it opens no way in for anything else. The
 * source's address rule still holds. Counted in hookrelay_probes_total. A
 * probe to a source a reload removed while it came in is answered 404.
 */
static int
answer_probe(struct hook *in)
{
	struct hr_req *req = in->req;
	struct hr_auth_out out;
	unsigned long held;
	int rc;

	/* Against the configuration in force, as authenticate() checks: a source a
	 * reload removed while the probe came in is not there to verify. */
	if ((rc = check_current(in, CHECK_PROBE, &out)) < 0)
		return HR_OK;
	if (rc == HR_AUTH_EADDR) {
		(void)authenticate(in, false); /* refused as any request from there is */
		return HR_OK;
	}
	atomic_fetch_add(&in->state->counters->probes, 1);
	if (hr_logflood_take(&probe_log, hr_time_mono_us(), &held)) {
		if (held > 0)
			log_info("ingest: %lu probes were not logged (a flood); see"
			         " hookrelay_probes_total",
			    held);
		log_info("ingest: source %s answered Daily's verification probe from %s (%s)",
		    in->source->name, hr_req_peer_text(req),
		    rc == HR_AUTH_OK ? "authenticated" : "not authenticated");
	}
	hr_req_reply_json(req, 200, json_pack("{s:b}", "probe", 1));
	return HR_OK;
}

/*
 * The URL token is never stored: not from the query (keep_query drops it) and
 * not from the body either, where a sender may quote the URL it was given
 * (Tavus echoes the callback URL in webhook_url). Masked before anything reads
 * the body, so the stored, deduplicated, forwarded and rejected bytes agree.
 * Only on a token source, and only a value that is one of its secrets: elsewhere
 * a URL token is no credential, and a body whose signature was checked is kept
 * byte for byte (else a replay with a chosen path segment would blank part of
 * it and pass dedup as a new event); a path segment or query token that did
 * not authenticate (/hooks/NAME/conversations?token=SECRET) is a word of the
 * sender's, not to be blanked out of its text. Source and secrets are those
 * whose check let the request in (admit()): a reload's, whose token must not be
 * stored (none -> token) or whose signature covers the bytes as sent (token -> hmac).
 */
static void
mask_tokens(struct hook *in)
{
	struct hr_req *req = in->req;
	const char *given[2] = { hr_req_query(req, "token"), hr_req_param(req, 1) };
	size_t len;
	char *body = hr_req_body(req, &len);

	if (body == NULL || in->admit_src == NULL || in->admit_src->auth != HR_AUTH_TOKEN)
		return;
	for (size_t i = 0; i < 2; i++)
		if (hr_auth_is_secret(in->admit_secrets, given[i]))
			(void)hr_redact_secret(body, &len, given[i]);
	hr_req_body_shrink(req, len);
}

/*
 * An authenticated body is taken whatever its Content-Type (hook_begin); the
 * operator hears once per source that its sender labels JSON otherwise, since a
 * proxy or client in between may be what changed it.
 */
static void
note_media_type(struct hook *in)
{
	const char *ct = hr_req_header(in->req, "Content-Type");
	char shown[65];

	if (in->source->auth == HR_AUTH_NONE || hr_hooks_is_json_type(ct) ||
	    atomic_exchange(&in->state->counters->told_media_type, true))
		return; /* auth = none: hook_begin refused any other type */
	shown_name(ct != NULL ? ct : "(none)", shown, sizeof(shown));
	log_warnx("ingest: source %s sent a body with Content-Type %s; taken as JSON since its "
	          "credentials were checked (said once per source)",
	    in->source->name, shown);
}

/* A POST under /hooks/ that no route takes ("/hooks/NAME//TOKEN", a segment
 * after the token): a webhook refused, counted with the unknown sources and
 * logged, as any other 404 of ingest (a review: a bare router 404, seen by no
 * counter, alert or log line). */
static int
hook_unrouted(struct hr_req *req)
{
	struct hook *in;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return HR_ENOMEM;
	hr_req_set_ctx(req, in, hook_free);
	in->req = req;
	refuse(in, 404, "not-found", "Not Found",
	    "no route of hookrelay has this path: a webhook goes to /hooks/NAME or "
	    "/hooks/NAME/TOKEN (docs/api.md)");
	return HR_OK;
}

static int
hook_handle(struct hr_req *req)
{
	struct hook *in = hr_req_ctx(req);
	struct hr_parse_error pe;
	int rc;

	if (is_daily_probe(in))
		return answer_probe(in);
	if (!in->authenticated) {
		if (!authenticate(in, false) || !rate_allowed(in))
			return HR_OK;
	} else if (!hr_app_runtime_is_current(hr_req_app(req), hr_req_runtime(req)) &&
	    !authenticate(in, false)) {
		/* Checked on its headers, then a reload while its body came: checked
		 * again against the configuration in force, as a signature is. An
		 * open source a reload locked down, an address its allow_cidrs
		 * dropped, a token it revoked, a source it removed: each was stored
		 * up to request_timeout later (review RS40). */
		return HR_OK;
	}
	note_media_type(in);
	mask_tokens(in);
	if ((rc = keep_query(in)) == HR_ENOMEM)
		return rc;
	keep_request(in);
	/* On a source that signs the body, the query is no part of what was signed
	 * nor of the dedup key: kept as a rejection, which claims no key, each replay
	 * of a captured request with 65 parameters was stored again, answered 200 on
	 * a Daily source (review RS40). There the event is taken without them. */
	if (rc == HR_ETOOBIG && !hr_cfg_signs_body(in->source))
		return reject_too_many_parameters(in);
	rc = hr_ingest_decode(&in->g, &pe);
	if (rc == HR_EINVAL)
		return reject_invalid(in, &pe);
	if (rc == HR_EPARSE)
		return reject_malformed(in, &pe);
	if (rc == HR_ETOOBIG)
		return reject_over_limits(in, &pe);
	if (rc != HR_OK)
		return rc;
	in->g.done = event_done;
	return submit(in, NULL);
}

const struct hr_route hr_hooks_routes[] = {
	{ "POST", "/hooks/{}", HR_ROUTE_BODY, hook_begin, hook_handle, NULL },
	/* A callback URL pasted with a slash at its end: a 404 is final to a sender
	 * that never retries. */
	{ "POST", "/hooks/{}/", HR_ROUTE_BODY, hook_begin, hook_handle, NULL },
	/* The secret token as the last path segment, for senders that drop query strings;
	 * with a slash at its end too. */
	{ "POST", "/hooks/{}/{}", HR_ROUTE_BODY | HR_ROUTE_SECRET_TAIL, hook_begin, hook_handle,
	    NULL },
	{ "POST", "/hooks/{}/{}/", HR_ROUTE_BODY | HR_ROUTE_SECRET_TAIL, hook_begin, hook_handle,
	    NULL },
	{ "POST", "/hooks/", HR_ROUTE_UNDER, hook_unrouted, NULL, NULL },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
