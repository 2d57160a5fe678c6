/*
 * http_body.c - a request's body: kept within max_body, counted against the
 * budget of unauthenticated bodies while its signature is unchecked, or read
 * and dropped when the request was refused on its headers.
 *
 * Nothing here allocates for a declared length: the buffer grows with the
 * bytes that arrive (dynbuf.h), and a refused or oversized body is dropped as
 * it comes.
 */
#include <stdint.h>
#include <stdlib.h>

#include "hr/http.h"
#include "http_int.h"

static size_t
budget_cap(const struct hr_req *req)
{
	size_t cap = req->cfg->max_unverified_bodies;

	return cap < req->cfg->max_body ? req->cfg->max_body : cap; /* one body always fits */
}

/*
 * Once the budget is half used, one client address holds at most a quarter
 * of it (a body of max_body always fits): an unauthenticated sender alone
 * shut every signed source out for as long as it held the budget, answering
 * their webhooks 503, which Tavus and PailFlow do not retry. Below half, no
 * share applies: a provider sending several large bodies at once from one
 * address is not refused while most of the budget is free (a review). Each
 * address's bytes are counted throughout, so the share holds from the moment
 * the pressure starts. Behind a reverse proxy every client is the proxy, where
 * max_connections_per_ip is 0 and no share applies.
 */
static size_t
budget_share(const struct hr_req *req)
{
	size_t share = budget_cap(req) / 4;

	return share < req->cfg->max_body ? req->cfg->max_body : share;
}

static bool
budget_take(struct hr_req *req, size_t n)
{
	atomic_size_t *held = &req->http->unverified;
	size_t cap = budget_cap(req), cur = atomic_load(held);
	struct hr_peers *peers = req->http->peers;

	bool pressed = cur > cap / 2 || n > cap / 2 - cur;

	if (peers != NULL &&
	    !hr_peers_budget_take(peers, req->remote, n, pressed ? budget_share(req) : SIZE_MAX))
		return false;
	do {
		if (n > cap || cur > cap - n) {
			if (peers != NULL)
				hr_peers_budget_give(peers, req->remote, n);
			return false;
		}
	} while (!atomic_compare_exchange_weak(held, &cur, cur + n));
	req->budget_held += n;
	return true;
}

/*
 * The budget counts bytes received, not bytes declared: a Content-Length
 * costs its sender nothing, so a few connections sending headers alone
 * would otherwise hold the whole budget and shut every signed source out
 * (a review did it with four). A declared length that does not fit in what
 * is free now is still refused before its body is read.
 */
bool
hr_req_budget_body(struct hr_req *req, size_t declared)
{
	size_t cap = budget_cap(req), cur = atomic_load(&req->http->unverified);

	req->budgeted = true;
	return declared <= cap && cur <= cap - declared;
}

void
hr_req_budget_release(struct hr_req *req)
{
	if (req->budget_held > 0) {
		atomic_fetch_sub(&req->http->unverified, req->budget_held);
		if (req->http->peers != NULL)
			hr_peers_budget_give(req->http->peers, req->remote, req->budget_held);
	}
	req->budget_held = 0;
	req->budgeted = false;
}

void
hr_req_reply_budget_full(struct hr_req *req)
{
	(void)hr_req_set_header(req, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	req->resp_close = true; /* the body is not read */
	hr_req_reply_problem(req, 503, "overloaded", "Service Unavailable",
	    "too many request bodies from unauthenticated senders (from this address, or in "
	    "all) are being received; retry later ([server] max_unverified_bodies)",
	    NULL);
}

bool
hr_req_reads_body(const struct hr_req *req)
{
	return req->route != NULL && (req->route->flags & HR_ROUTE_BODY) != 0;
}

/*
 * Append an upload chunk; past max_body stop keeping it (answered 413 at the
 * end). A route that reads no body keeps none: a GET /healthz with a body
 * would otherwise hold max_body from anyone until the request ends.
 */
void
hr_req_body_append(struct hr_req *req, const char *data, size_t len)
{
	/* All of it, kept or not: http.c reads a refused body up to twice max_body
	 * in all. Counted from the chunk that went over instead, a body short of
	 * that by up to a chunk was cut off without its 413 (a review). */
	req->received += len;
	if (req->body_too_big || req->over_budget || req->replied || !hr_req_reads_body(req))
		return;
	/* Each chunk of a body counts as it arrives (hr_req_budget_body). */
	if (req->budgeted && req->body.len + len > req->budget_held &&
	    !budget_take(req, req->body.len + len - req->budget_held)) {
		req->over_budget = true;
		hr_dynbuf_free(&req->body);
		hr_req_budget_release(req); /* its bytes are let go now, not at the end */
		return;
	}
	/* past max_body, or out of memory: refuse, do not crash */
	if (hr_dynbuf_add(&req->body, data, len) != HR_OK)
		req->body_too_big = true;
}

/*
 * A refusal decided on the headers (401, 404, 413, 415, 429) went out at once
 * and the connection closed while the body was still coming: a client that
 * writes the whole body before it reads (Python's http.client and urllib,
 * Node's fetch) got EPIPE or a reset instead of the answer (a review with real
 * clients), and one that retries network errors sent it again. Such a body is
 * read and dropped, up to twice max_body as an oversized chunked body is, and
 * the answer goes at its end, on a connection kept alive (and is counted only
 * if that end comes); so is a refusal of a request without a body. A client
 * that sent an `Expect` (100-continue) gets the
 * answer at once and sends no body; a body
 * past that bound, or a refusal that must not read one (the unverified budget
 * full), is answered at once as before.
 */
bool
hr_req_drains_before_answer(struct hr_req *req)
{
	const char *cl = hr_req_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *expect = hr_req_header(req, MHD_HTTP_HEADER_EXPECT);

	/* Any Expect: MHD sends no 100 Continue for one that is not exactly that,
	 * and its client would wait for it. */
	if (!req->framed || req->resp_close || expect != NULL)
		return false;
	/* No body (none declared, or a length of 0): its end comes at once. Queued in
	 * the first call, the answer closed the connection (libmicrohttpd 0.9.75
	 * does), and requests pipelined behind it went unanswered (review R3). */
	if (cl != NULL)
		return strtoull(cl, NULL, 10) <= 2 * (unsigned long long)req->cfg->max_body;
	return true;
}
