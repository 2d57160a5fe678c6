/*
 * api_delivery.c - the forwarding side of the API: destinations, deliveries,
 * attempts, replay and enable.
 *
 * Replays and enables are writes, so they go through the writer like
 * everything else: the request is suspended until the write committed, and
 * only then answered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/api.h"
#include "hr/event.h"
#include "hr/forward.h"
#include "hr/http.h"
#include "hr/jsontext.h"
#include "hr/log.h"
#include "hr/outbox.h"
#include "hr/redact.h"
#include "hr/store.h"
#include "hr/timefmt.h"
#include "api_int.h"

#define MAX_REPLAY_DESTINATIONS 64

static json_t *
delivery_json(const struct hr_delivery_row *r)
{
	char id[32];
	json_t *o;

	snprintf(id, sizeof(id), "dlv_%lld", (long long)r->id);
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:o, s:o}", "id", id, "event_id", r->event_id,
	    "destination", r->destination, "status", r->status, "attempts", r->attempts,
	    "created_at", hr_api_time_json(r->created_us), "updated_at",
	    hr_api_time_json(r->updated_us));
	json_object_set_new(o, "next_attempt_at",
	    r->next_attempt_us ? hr_api_time_json(r->next_attempt_us) : json_null());
	json_object_set_new(
	    o, "last_status", r->last_status ? json_integer(r->last_status) : json_null());
	json_object_set_new(o, "last_error", hr_api_text_or_null(r->last_error));
	return o;
}

static int
append_delivery(const struct hr_delivery_row *r, void *arg)
{
	return json_array_append_new(arg, delivery_json(r)) == 0 ? HR_OK : HR_ENOMEM;
}

/*
 * An event's deliveries, each with the log of its attempts, are written as
 * text as the store reads them, onto a page of at most HR_API_PAYLOAD_PAGE
 * bytes (api_int.h, as GET /v1/events?include=payload). Attempts are not
 * capped (51 by the longest retry schedule, resends more, each with up to
 * 24 KiB of escaped answer): a tree of every delivery of 1,000, then its
 * text, once made one GET take the daemon's memory in proportion to what
 * was stored (200 deliveries of 51 binary answers: +500 MB, for 240 MB of
 * answer). A delivery goes whole on a page, or on the next.
 */
struct log_page {
	struct hr_api_text_page pg;
	size_t mark;   /* where the delivery being written begins */
	unsigned nlog; /* its attempts written */
	bool open;     /* its attempts_log is not closed yet */
};

/* The delivery written before is whole: its log and its object are closed. */
static void
close_delivery(struct log_page *lp)
{
	if (!lp->open)
		return;
	hr_dynbuf_adds(&lp->pg.out, "]}");
	lp->open = false;
	lp->pg.n++;
}

static int
append_delivery_with_log(const struct hr_delivery_row *r, void *arg)
{
	struct log_page *lp = arg;
	json_t *o = delivery_json(r);
	char *meta = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	size_t len = meta != NULL ? strlen(meta) : 0;

	json_decref(o);
	if (meta == NULL)
		return HR_ENOMEM;
	close_delivery(lp);
	if (!hr_api_text_page_fits(&lp->pg, len + 32)) {
		free(meta);
		return HR_ETOOBIG; /* the page ends before it; next_cursor resumes here */
	}
	lp->mark = lp->pg.out.len;
	hr_dynbuf_add(&lp->pg.out, ",", lp->pg.n > 0);
	hr_dynbuf_add(&lp->pg.out, meta, len - 1); /* the object stays open, for its log */
	hr_dynbuf_adds(&lp->pg.out, ",\"attempts_log\":[");
	free(meta);
	lp->nlog = 0;
	lp->open = true;
	return lp->pg.out.err != HR_OK ? HR_ENOMEM : HR_OK;
}

/* The bytes of the character a lead byte starts (1 for ASCII and for a byte
 * that starts none). */
static size_t
lead_len(unsigned char c)
{
	return c >= 0xF0 && c <= 0xF7 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 && c <= 0xDF ? 2 : 1;
}

/* Are p[1..n) continuation bytes, as in a character's start cut short? */
static bool
cut_short(const char *p, size_t n)
{
	for (size_t k = 1; k < n; k++)
		if (((unsigned char)p[k] & 0xC0) != 0x80)
			return false;
	return true;
}

/* Is p[0..len) one whole UTF-8 character? jansson judges. */
static bool
whole_char(const char *p, size_t len)
{
	json_t *j = json_stringn(p, len);

	json_decref(j);
	return j != NULL;
}

/*
 * A recorded answer as a JSON string. It is the first bytes of whatever the
 * downstream sent: it may not be UTF-8, or be cut inside a character, and an
 * invalid string would make the whole document unencodable. A character cut
 * at the end is dropped, and each byte that is not part of a whole character
 * shows as '?'; the others stay as they are (a review found every non-ASCII
 * byte made '?' once any one was invalid, the cut character included). Only
 * an answer as long as what is kept may have been cut: a shorter one's last
 * bytes, not UTF-8, were dropped unseen (review RF40: "Gr\xf6\xdfe" shown "Gr").
 */
HR_STATIC json_t *
hr_api_response_json(const char *p, size_t n)
{
	json_t *j;
	char *copy;
	size_t i = 0, out = 0;
	bool cut = n >= HR_RESPONSE_KEEP;

	if (p == NULL)
		return json_null();
	if ((j = json_stringn(p, n)) != NULL)
		return j;
	if ((copy = malloc(n)) == NULL)
		return json_null();
	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		size_t len = lead_len(c);

		if (cut && c >= 0x80 && len > 1 && i + len > n && cut_short(p + i, n - i))
			break; /* the character the limit cut */
		/* Judged on what is left: past n lies whatever the store left there. */
		if (c < 0x80 || (len > 1 && len <= n - i && whole_char(p + i, len))) {
			memcpy(copy + out, p + i, c < 0x80 ? 1 : len);
			out += c < 0x80 ? 1 : len;
			i += c < 0x80 ? 1 : len;
		} else {
			copy[out++] = '?';
			i++;
		}
	}
	j = json_stringn(copy, out);
	free(copy);
	return j != NULL ? j : json_null();
}

static char *
attempt_text(const struct hr_attempt_row *a)
{
	json_t *o = json_pack("{s:i, s:o, s:f}", "number", a->number, "started_at",
	    hr_api_time_json(a->started_us), "duration_ms", (double)a->duration_us / 1000.0);
	char *text;

	if (o == NULL)
		return NULL;
	json_object_set_new(
	    o, "http_status", a->http_status ? json_integer(a->http_status) : json_null());
	json_object_set_new(o, "error", hr_api_text_or_null(a->error));
	json_object_set_new(o, "response", hr_api_response_json(a->response, a->response_len));
	text = json_dumps(o, JSON_COMPACT | hr_json_reals(o));
	json_decref(o);
	return text;
}

/* An attempt onto the log of the delivery being written; past the page's
 * budget, that delivery goes whole to the next page (the first stays whole
 * here, whatever its size). */
static int
append_attempt(const struct hr_attempt_row *a, void *arg)
{
	struct log_page *lp = arg;
	char *text = attempt_text(a);
	size_t len = text != NULL ? strlen(text) : 0;

	if (text == NULL)
		return HR_ENOMEM;
	if (!hr_api_text_page_fits(&lp->pg, len + 3)) {
		free(text);
		hr_dynbuf_shrink(&lp->pg.out, lp->mark);
		lp->open = false;
		return HR_ETOOBIG;
	}
	hr_dynbuf_add(&lp->pg.out, ",", lp->nlog > 0);
	hr_dynbuf_add(&lp->pg.out, text, len);
	free(text);
	lp->nlog++;
	return lp->pg.out.err != HR_OK ? HR_ENOMEM : HR_OK;
}

static bool
param_status(struct hr_req *req, int *out)
{
	const char *v = hr_req_query(req, "status");

	*out = -1;
	if (v == NULL)
		return true;
	if ((*out = hr_delivery_status_from_name(v)) >= 0)
		return true;
	hr_api_bad_param(req, "status", "expected pending, succeeded, failed or dead");
	return false;
}

/* A destination replay skips the events with a pending delivery to it (they are sent
 * already), so status=pending would pick only events it then skips: a 202 of nothing. */
static bool
param_replay_status(struct hr_req *req, int *out)
{
	if (!param_status(req, out))
		return false;
	if (*out != HR_DLV_PENDING)
		return true;
	hr_api_bad_param(req, "status",
	    "expected succeeded, failed or dead: a replay skips the events with a pending "
	    "delivery, which are sent already");
	return false;
}

static const struct hr_destination_cfg *
destination_or_404(struct hr_req *req, const char *name)
{
	const struct hr_destination_cfg *d = hr_cfg_destination(hr_req_cfg(req), name);

	if (d == NULL)
		hr_req_reply_problem(req, 404, "unknown-destination", "Unknown destination",
		    "no [destination] section of the configuration has this name", NULL);
	return d;
}

/* ---- GET ---- */

static const struct hr_param deliveries_params[] = { { "destination", 0 }, { "status", 0 },
	{ "since", 0 }, { "limit", 0 }, { "cursor", 0 }, { NULL, 0 } };

static int
list_deliveries(struct hr_req *req)
{
	struct hr_delivery_filter f = { .destination = hr_req_query(req, "destination") };
	struct hr_error err = { .field = "" };
	json_t *items;
	int64_t next;
	int rc;

	if (!param_status(req, &f.status) || !hr_api_param_time(req, "since", &f.since_us) ||
	    !hr_api_param_limit(req, &f.limit) || !hr_api_param_cursor(req, &f.before_id))
		return HR_OK;
	items = json_array();
	rc = hr_store_list_deliveries(
	    hr_req_app(req)->store, &f, append_delivery, items, &next, &err);
	if (rc != HR_OK) {
		json_decref(items);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(req, 200, hr_api_page_json(req, "deliveries", items, next));
	return HR_OK;
}

static const struct hr_param event_deliveries_params[] = { { "cursor", 0 }, { NULL, 0 } };

/* `{"event_id":ID,"deliveries":[` (new); NULL when the id is no text JSON
 * holds, which no stored event's is. */
static char *
log_head(const char *event_id)
{
	json_t *o = json_pack("{s:s}", "event_id", event_id);
	char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	struct hr_dynbuf b;
	size_t len;

	json_decref(o);
	if (text == NULL)
		return NULL;
	hr_dynbuf_init(&b, 0, SIZE_MAX / 2);
	hr_dynbuf_add(&b, text, strlen(text) - 1); /* the object stays open */
	hr_dynbuf_adds(&b, ",\"deliveries\":[");
	free(text);
	return hr_dynbuf_take(&b, &len);
}

/* GET /v1/events/{id}/deliveries[?cursor]: a page of the event's deliveries
 * with their attempts (docs/api.md). */
static int
event_deliveries(struct hr_req *req)
{
	struct hr_error err = { .field = "" };
	struct log_page lp = { .open = false };
	char *head;
	int64_t after, next;
	int rc;

	if (!hr_api_param_cursor(req, &after))
		return HR_OK;
	head = log_head(hr_req_param(req, 0));
	/* The page's first delivery always fits, whatever its size. */
	hr_api_text_page_init(&lp.pg, SIZE_MAX / 2, head != NULL ? head : "");
	rc = hr_store_event_deliveries(hr_req_app(req)->store, hr_req_param(req, 0), after,
	    append_delivery_with_log, append_attempt, &lp, &next, &err);
	if (rc == HR_OK && head == NULL)
		rc = hr_error_set(&err, HR_ENOMEM, "id", "cannot build the answer");
	free(head);
	if (rc != HR_OK) {
		hr_dynbuf_free(&lp.pg.out);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	close_delivery(&lp);
	hr_api_text_page_reply(req, &lp.pg, next);
	return HR_OK;
}

static json_t *
destination_json(
    struct hr_req *req, const struct hr_destination_cfg *c, struct hr_error *err, int *rc)
{
	struct hr_destination_row row;
	struct hr_dest_status live;
	char reason[128], url[sizeof(c->url)];
	int64_t now = hr_time_now_us();
	json_t *o;

	*rc = hr_store_destination(
	    hr_req_app(req)->store, c->name, &row, reason, sizeof(reason), err);
	if (*rc != HR_OK)
		return NULL;
	hr_forwarder_status(hr_req_app(req)->forwarder, c->name, &live);
	hr_redact_url(c->url, url, sizeof(url)); /* the API shows no credentials */
	o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:I, s:I, s:I, s:I, s:b}", "name", c->name,
	    "url", url, "state", row.disabled ? "disabled" : "active", "breaker",
	    hr_breaker_name(live.breaker), "in_flight", live.in_flight, "consecutive_failures",
	    live.consecutive_failures, "pending", (json_int_t)row.pending, "succeeded",
	    (json_int_t)row.succeeded, "failed", (json_int_t)row.failed, "dead",
	    (json_int_t)row.dead, "ordered", c->ordered);
	json_object_set_new(o, "oldest_pending_age_s",
	    row.oldest_pending_us ? json_real((double)(now - row.oldest_pending_us) / 1e6)
	                          : json_null());
	json_object_set_new(o, "disabled_reason", hr_api_text_or_null(row.disabled_reason));
	json_object_set_new(o, "next_probe_at",
	    live.probe_at_us ? hr_api_time_json(live.probe_at_us) : json_null());
	json_object_set_new(o, "last_error",
	    live.last_error_us ? hr_api_text_or_null(live.last_error) : json_null());
	json_object_set_new(o, "last_error_at",
	    live.last_error_us ? hr_api_time_json(live.last_error_us) : json_null());
	return o;
}

bool
hr_api_is_configured(const char *name, void *ctx)
{
	struct hr_req *req = ((struct hr_unconfigured_ctx *)ctx)->req;

	return hr_cfg_destination(hr_req_cfg(req), name) != NULL;
}

static int
unconfigured_json(const struct hr_destination_row *row, void *arg)
{
	json_t *items = ((struct hr_unconfigured_ctx *)arg)->out;

	return json_array_append_new(items,
	           json_pack("{s:s, s:I, s:f}", "name", row->name, "pending",
	               (json_int_t)row->pending, "oldest_pending_age_s",
	               (double)(hr_time_now_us() - row->oldest_pending_us) / 1e6)) == 0
	    ? HR_OK
	    : HR_ENOMEM;
}

static int
list_destinations(struct hr_req *req)
{
	const struct hr_cfg *cfg = hr_req_cfg(req);
	struct hr_error err = { .field = "" };
	json_t *items = json_array(), *unconfigured = json_array();
	struct hr_unconfigured_ctx u = { req, unconfigured };
	int rc = HR_OK;

	for (size_t i = 0; i < cfg->ndestinations && rc == HR_OK; i++) {
		json_t *o = destination_json(req, &cfg->destinations[i], &err, &rc);

		if (o != NULL)
			json_array_append_new(items, o);
	}
	if (rc == HR_OK)
		rc = hr_store_unconfigured_destinations(
		    hr_req_app(req)->store, hr_api_is_configured, unconfigured_json, &u, &err);
	if (rc != HR_OK) {
		json_decref(items);
		json_decref(unconfigured);
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	hr_req_reply_json(
	    req, 200, json_pack("{s:o, s:o}", "destinations", items, "unconfigured", unconfigured));
	return HR_OK;
}

static int
get_destination(struct hr_req *req)
{
	const struct hr_destination_cfg *c = destination_or_404(req, hr_req_param(req, 0));
	struct hr_error err = { .field = "" };
	json_t *o;
	int rc;

	if (c == NULL)
		return HR_OK;
	if ((o = destination_json(req, c, &err, &rc)) == NULL)
		hr_api_reply_store_error(req, rc, &err);
	else
		hr_req_reply_json(req, 200, o);
	return HR_OK;
}

/* ---- replay: a write, answered once committed ---- */

struct replay {
	struct hr_req *req;
	struct hr_store_op op;
	struct hr_replay r;
	const char *names[MAX_REPLAY_DESTINATIONS];
	bool ordered[MAX_REPLAY_DESTINATIONS];
	char event_id[40];
	char source[HR_NAME_MAX];
	char kind[96];
};

/* 503: a write failed. A destination's replay or discard goes in chunks: those
 * committed before stay (`done` deliveries), and the same request again does
 * the rest. */
static void
reply_write_failed(struct hr_req *req, const char *what, const char *verb, int64_t done)
{
	char detail[256];

	if (done > 0)
		snprintf(detail, sizeof(detail),
		    "%s whole: the %lld deliveries %s by its chunks committed before stay so, and "
		    "the same request again does the rest",
		    what, (long long)done, verb);
	else
		snprintf(detail, sizeof(detail), "%s; nothing changed", what);
	hr_req_reply_problem(req, 503, "storage-unavailable", "Service Unavailable", detail, NULL);
}

/* A reload removed the destination between two chunks: the replay stopped, and
 * what it queued before waits for a destination of that name again. */
static void
reply_removed(struct replay *rp, int64_t queued)
{
	char detail[2 * HR_NAME_MAX + 256];

	if (rp->r.destination == NULL) { /* one event's: nothing was queued */
		hr_req_reply_problem(rp->req, 409, "destination-removed", "Conflict",
		    "a reload removed a destination of this replay before its deliveries were "
		    "queued: none was; ask again for the destinations configured now",
		    json_pack("{s:I}", "deliveries", (json_int_t)0));
		return;
	}

	log_info("api: the replay of %s's deliveries by %s stopped after %lld: a reload "
	         "removed the destination",
	    rp->r.destination, hr_req_peer_text(rp->req), (long long)queued);
	snprintf(detail, sizeof(detail),
	    "a reload removed [destination %s] while the replay went on: it stopped, and the "
	    "%lld deliveries it queued before wait unsent (discard them with POST "
	    "/v1/destinations/%s/discard)",
	    rp->r.destination, (long long)queued, rp->r.destination);
	hr_req_reply_problem(rp->req, 409, "destination-removed", "Conflict", detail,
	    json_pack("{s:I}", "deliveries", (json_int_t)queued));
}

static void
replay_done(struct hr_store_op *op, void *arg)
{
	struct replay *rp = arg;

	if (op->res.status == HR_OK && op->res.stopped) {
		reply_removed(rp, op->res.count);
	} else if (op->res.status == HR_OK) {
		log_info("api: replay by %s created %lld deliveries", hr_req_peer_text(rp->req),
		    (long long)op->res.count);
		hr_req_reply_json(
		    rp->req, 202, json_pack("{s:I}", "deliveries", (json_int_t)op->res.count));
	} else {
		reply_write_failed(rp->req, "the replay could not be stored", "queued",
		    rp->r.destination != NULL ? op->res.count : 0);
	}
	hr_req_resume(rp->req);
}

/* A write's request waits (suspended) for its commit; false: answered 503 already. */
static bool
suspend_for_write(struct hr_req *req)
{
	if (hr_req_suspend(req))
		return true;
	hr_req_reply_problem(
	    req, 503, "shutting-down", "Service Unavailable", "hookrelay is shutting down", NULL);
	return false;
}

/* The write could not be queued: answered, and the suspended request resumed. */
static void
answer_queue_full(struct hr_req *req)
{
	(void)hr_req_set_header(req, "Retry-After", "1");
	hr_req_reply_problem(req, 503, "overloaded", "Service Unavailable",
	    "the write queue is full; retry later", NULL);
	hr_req_resume(req);
}

static int
submit_replay(struct hr_req *req, struct replay *rp)
{
	rp->req = req;
	rp->op.done = replay_done;
	rp->op.arg = rp;
	if (suspend_for_write(req) &&
	    hr_store_replay(hr_req_app(req)->store, &rp->r, &rp->op) != HR_OK)
		answer_queue_full(req);
	return HR_OK;
}

/* ---- enable: the state stored first, then the forwarder told, then answered ---- */

struct enable {
	struct hr_req *req;
	struct hr_store_op op;
	struct hr_destination_state state;
	char name[HR_NAME_MAX];
};

/* On the writer's thread, after the commit: an answer of 200 is the state on disk,
 * so a crash right after it does not bring the destination back disabled. */
static void
enable_done(struct hr_store_op *op, void *arg)
{
	struct enable *en = arg;
	struct hr_req *req = en->req;
	int rc = HR_OK;

	if (op->res.status != HR_OK) {
		hr_req_reply_problem(req, 503, "storage-unavailable", "Service Unavailable",
		    "the destination's state could not be stored; it is unchanged", NULL);
	} else if ((rc = hr_forwarder_enable(hr_req_app(req)->forwarder, en->name)) ==
	    HR_ENOTFOUND) {
		/* A reload removed it while the write waited: a 503 "retry" for a
		 * forwarder that runs, after a write that was committed (a review). */
		hr_req_reply_problem(req, 409, "destination-removed", "Conflict",
		    "a reload removed the destination while its state was stored: a destination "
		    "of this name configured again starts active",
		    NULL);
	} else if (rc != HR_OK) {
		hr_req_reply_problem(req, 503, "forwarder-unavailable", "Service Unavailable",
		    "the forwarder is not running", NULL);
	} else {
		log_info("api: destination %s enabled by %s", en->name, hr_req_peer_text(req));
		hr_req_reply_json(
		    req, 200, json_pack("{s:s, s:s}", "name", en->name, "state", "active"));
	}
	hr_req_resume(req);
}

/*
 * An operator's enable is the state set last: stamped after the stored one.
 * Several nodes keep only a state set no later than the row's (pg_write.c),
 * and a 410 from a node whose clock runs ahead is stamped after this node's
 * now: the enable answered "active" and changed nothing (a review).
 */
static int64_t
enable_stamp(struct hr_req *req, const char *name)
{
	struct hr_destination_row row;
	struct hr_error err = { .field = "" };
	char reason[64];
	int64_t now = hr_time_now_us();

	if (hr_store_destination(
	        hr_req_app(req)->store, name, &row, reason, sizeof(reason), &err) == HR_OK &&
	    row.disabled_us >= now)
		return row.disabled_us + 1;
	return now;
}

static int
enable_destination(struct hr_req *req)
{
	struct enable *en;

	if (destination_or_404(req, hr_req_param(req, 0)) == NULL)
		return HR_OK;
	if ((en = calloc(1, sizeof(*en))) == NULL)
		return HR_ENOMEM;
	hr_req_set_ctx(req, en, free);
	snprintf(en->name, sizeof(en->name), "%s", hr_req_param(req, 0));
	en->req = req;
	en->state =
	    (struct hr_destination_state){ en->name, false, NULL, enable_stamp(req, en->name) };
	en->op.done = enable_done;
	en->op.arg = en;
	if (suspend_for_write(req) &&
	    hr_store_set_destination(hr_req_app(req)->store, &en->state, &en->op) != HR_OK)
		answer_queue_full(req);
	return HR_OK;
}

static struct replay *
replay_new(struct hr_req *req)
{
	struct replay *rp = calloc(1, sizeof(*rp));

	if (rp != NULL) {
		hr_req_set_ctx(req, rp, free);
		rp->r.status = -1;
	}
	return rp;
}

static int
remember_event(const struct hr_event_row *row, void *arg)
{
	struct replay *rp = arg;

	snprintf(rp->event_id, sizeof(rp->event_id), "%s", row->id);
	snprintf(rp->source, sizeof(rp->source), "%s", row->source);
	snprintf(rp->kind, sizeof(rp->kind), "%s", row->kind);
	return HR_OK;
}

static const struct hr_param event_replay_params[] = { { "destination", 0 }, { NULL, 0 } };

/* On the writer's thread: is every destination the request named or matched
 * still configured? A reload since may have removed one, and a delivery queued
 * for it waits for nobody while the answer says 202 (a review). */
static bool
event_replay_still_configured(void *arg)
{
	struct replay *rp = arg;
	struct hr_runtime *rt = hr_app_runtime(hr_req_app(rp->req));
	bool configured = true;

	for (size_t i = 0; configured && i < rp->r.ndestinations; i++)
		configured = hr_cfg_destination(rt->cfg, rp->names[i]) != NULL;
	hr_runtime_release(rt);
	return configured;
}

/* POST /v1/events/{id}/replay[?destination=NAME]: to one, or to every matching destination. */
static int
replay_event(struct hr_req *req)
{
	const char *only = hr_req_query(req, "destination");
	const struct hr_destination_cfg *one = NULL;
	struct hr_error err = { .field = "" };
	struct replay *rp = replay_new(req);
	int rc;

	if (rp == NULL)
		return HR_ENOMEM;
	if (only != NULL && (one = destination_or_404(req, only)) == NULL)
		return HR_OK;
	rc = hr_store_get_event(
	    hr_req_app(req)->store, hr_req_param(req, 0), remember_event, rp, &err);
	if (rc != HR_OK) {
		hr_api_reply_store_error(req, rc, &err);
		return HR_OK;
	}
	rp->r.event_id = rp->event_id;
	rp->r.destinations = rp->names;
	rp->r.still_configured = event_replay_still_configured;
	rp->r.arg = rp;
	if (one != NULL) {
		rp->names[0] = one->name;
		rp->r.ndestinations = 1;
		rp->r.ordered = one->ordered;
	} else {
		rp->r.ndestinations = hr_outbox_match(hr_req_cfg(req), rp->source, rp->kind,
		    rp->names, rp->ordered, MAX_REPLAY_DESTINATIONS);
		rp->r.ordered_each =
		    rp->ordered; /* once one flag for all: any ordered made all so */
	}
	return submit_replay(req, rp);
}

static const struct hr_param destination_replay_params[] = { { "since", 0 }, { "until", 0 },
	{ "status", 0 }, { "dry_run", 0 }, { NULL, 0 } };

static bool
param_dry_run(struct hr_req *req, bool *out)
{
	const char *v = hr_req_query(req, "dry_run");

	*out = v != NULL && strcmp(v, "true") == 0;
	if (v == NULL || *out || strcmp(v, "false") == 0)
		return true;
	hr_api_bad_param(req, "dry_run", "expected true or false");
	return false;
}

/* dry_run=true: how many deliveries the replay would create, and nothing else
 * (hookctl asks before a replay of a destination's whole history). */
static int
count_replay(struct hr_req *req, const struct hr_replay *r)
{
	struct hr_error err = { .field = "" };
	int64_t n;
	int rc = hr_store_replay_count(hr_req_app(req)->store, r, &n, &err);

	if (rc != HR_OK)
		hr_api_reply_store_error(req, rc, &err);
	else
		hr_req_reply_json(
		    req, 200, json_pack("{s:I, s:b}", "deliveries", (json_int_t)n, "dry_run", 1));
	return HR_OK;
}

/* On the writer's thread, before each chunk: the request checked the
 * configuration it came with, and a reload may have removed the destination. */
static bool
replay_still_configured(void *arg)
{
	struct replay *rp = arg;
	struct hr_runtime *rt = hr_app_runtime(hr_req_app(rp->req));
	bool configured = hr_cfg_destination(rt->cfg, rp->r.destination) != NULL;

	hr_runtime_release(rt);
	return configured;
}

/* POST /v1/destinations/{name}/replay?since&until&status[&dry_run]: every such event again. */
static int
replay_destination(struct hr_req *req)
{
	const struct hr_destination_cfg *c = destination_or_404(req, hr_req_param(req, 0));
	struct replay *rp;
	bool dry_run;

	if (c == NULL)
		return HR_OK;
	if ((rp = replay_new(req)) == NULL)
		return HR_ENOMEM;
	if (!hr_api_param_time(req, "since", &rp->r.since_us) ||
	    !hr_api_param_time(req, "until", &rp->r.until_us) ||
	    !param_replay_status(req, &rp->r.status) || !param_dry_run(req, &dry_run))
		return HR_OK;
	rp->r.destination = c->name;
	rp->r.ordered = c->ordered;
	if (dry_run) /* what there is now: the bound below would only cost it its plan */
		return count_replay(req, &rp->r);
	/* The events received before it was asked for: its chunks go on while
	 * webhooks come, and one delivered meanwhile, not pending when a later
	 * chunk reached it, was queued a second time (a review). Not for the dry
	 * run's count: on PostgreSQL the bound made its plan read the
	 * destination's deliveries once per event (18 M index entries for 6,000). */
	if (rp->r.until_us == 0)
		rp->r.until_us = hr_req_started_us(req);
	rp->r.still_configured = replay_still_configured;
	rp->r.arg = rp;
	return submit_replay(req, rp);
}

/* ---- discard: the pending deliveries of a destination that is gone ---- */

struct discard {
	struct hr_req *req;
	struct hr_store_op op;
	struct hr_discard d;
	char name[HR_NAME_MAX];
	char reason[2 * HR_NAME_MAX + 96];
};

/* `discarded`: by the chunks before a reload configured it again (-1: refused
 * when the request came). */
static void
reply_configured(struct hr_req *req, int64_t discarded)
{
	char detail[256];

	if (discarded < 0) {
		hr_req_reply_problem(req, 409, "destination-configured", "Conflict",
		    "the configuration has this destination, which sends its deliveries: only "
		    "those of a destination removed from the configuration can be discarded",
		    NULL);
		return;
	}
	snprintf(detail, sizeof(detail),
	    "a reload configured this destination again while the discard went on: it stopped "
	    "after %lld, and the destination sends the deliveries left",
	    (long long)discarded);
	hr_req_reply_problem(req, 409, "destination-configured", "Conflict", detail,
	    json_pack("{s:I}", "discarded", (json_int_t)discarded));
}

/* On the writer thread: the request checked the configuration it came with,
 * and a reload may have brought the destination back since. */
static bool
discard_still_gone(void *arg)
{
	struct discard *dc = arg;
	struct hr_runtime *rt = hr_app_runtime(hr_req_app(dc->req));
	bool gone = hr_cfg_destination(rt->cfg, dc->name) == NULL;

	hr_runtime_release(rt);
	return gone;
}

static void
discard_done(struct hr_store_op *op, void *arg)
{
	struct discard *dc = arg;
	struct hr_req *req = dc->req;

	if (op->res.status != HR_OK) {
		reply_write_failed(
		    req, "the deliveries could not be discarded", "discarded", op->res.count);
	} else if (op->res.stopped) {
		log_info("api: the discard of %s's deliveries by %s stopped after %lld: a reload "
		         "configured it again",
		    dc->name, hr_req_peer_text(req), (long long)op->res.count);
		reply_configured(req, op->res.count);
	} else {
		log_info("api: %lld pending deliveries to %s discarded by %s",
		    (long long)op->res.count, dc->name, hr_req_peer_text(req));
		hr_req_reply_json(req, 200,
		    json_pack(
		        "{s:s, s:I}", "name", dc->name, "discarded", (json_int_t)op->res.count));
	}
	hr_req_resume(req);
}

/* dry_run=true: how many are pending, and nothing else. */
static int
count_discard(struct hr_req *req, const char *name)
{
	struct hr_error err = { .field = "" };
	struct hr_destination_row row;
	int rc = hr_store_destination(hr_req_app(req)->store, name, &row, NULL, 0, &err);

	if (rc != HR_OK)
		hr_api_reply_store_error(req, rc, &err);
	else
		hr_req_reply_json(req, 200,
		    json_pack("{s:s, s:I, s:b}", "name", name, "discarded", (json_int_t)row.pending,
		        "dry_run", 1));
	return HR_OK;
}

/*
 * POST /v1/destinations/{name}/discard[?dry_run]: the pending deliveries of a
 * destination the configuration no longer has become failed, so that its
 * events are pruned as any others and nothing stays listed as unsent. Only
 * such a destination's: a configured one's are being sent (disable or remove
 * it first). Their events stay; a replay can send them again.
 */
static int
discard_destination(struct hr_req *req)
{
	const char *name = hr_req_param(req, 0);
	struct discard *dc;
	bool dry_run;

	/* The query first, as every route checks it before it acts (api.md). */
	if (!param_dry_run(req, &dry_run))
		return HR_OK;
	/* Longer than any destination's: its copy below would name another. */
	if (strlen(name) >= HR_NAME_MAX) {
		hr_req_reply_problem(req, 404, "unknown-destination", "Unknown destination",
		    "no destination has a name this long", NULL);
		return HR_OK;
	}
	if (hr_cfg_destination(hr_req_cfg(req), name) != NULL) {
		reply_configured(req, -1);
		return HR_OK;
	}
	if (dry_run)
		return count_discard(req, name);
	if ((dc = calloc(1, sizeof(*dc))) == NULL)
		return HR_ENOMEM;
	hr_req_set_ctx(req, dc, free);
	snprintf(dc->name, sizeof(dc->name), "%s", name);
	snprintf(dc->reason, sizeof(dc->reason),
	    "discarded: the configuration has no [destination %s] (POST "
	    "/v1/destinations/%s/discard)",
	    dc->name, dc->name);
	dc->req = req;
	dc->d = (struct hr_discard){ .destination = dc->name,
		.reason = dc->reason,
		.now_us = hr_time_now_us(),
		.still_gone = discard_still_gone,
		.arg = dc };
	dc->op.done = discard_done;
	dc->op.arg = dc;
	if (suspend_for_write(req) &&
	    hr_store_discard(hr_req_app(req)->store, &dc->d, &dc->op) != HR_OK)
		answer_queue_full(req);
	return HR_OK;
}

static const struct hr_param dry_run_params[] = { { "dry_run", 0 }, { NULL, 0 } };
static const struct hr_param no_params[] = { { NULL, 0 } };

const struct hr_route hr_delivery_routes[] = {
	{ "GET", "/v1/destinations", HR_ROUTE_API | HR_ROUTE_READS, NULL, list_destinations,
	    no_params },
	{ "GET", "/v1/destinations/{}", HR_ROUTE_API | HR_ROUTE_READS, NULL, get_destination,
	    no_params },
	{ "POST", "/v1/destinations/{}/enable", HR_ROUTE_API | HR_ROUTE_READS, NULL,
	    enable_destination, no_params },
	{ "POST", "/v1/destinations/{}/replay", HR_ROUTE_API | HR_ROUTE_READS, NULL,
	    replay_destination, destination_replay_params },
	{ "POST", "/v1/destinations/{}/discard", HR_ROUTE_API | HR_ROUTE_READS, NULL,
	    discard_destination, dry_run_params },
	{ "GET", "/v1/deliveries", HR_ROUTE_API | HR_ROUTE_READS, NULL, list_deliveries,
	    deliveries_params },
	{ "GET", "/v1/events/{}/deliveries", HR_ROUTE_API | HR_ROUTE_READS, NULL, event_deliveries,
	    event_deliveries_params },
	{ "POST", "/v1/events/{}/replay", HR_ROUTE_API | HR_ROUTE_READS, NULL, replay_event,
	    event_replay_params },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
