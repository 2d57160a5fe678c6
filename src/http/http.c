/*
 * http.c - libmicrohttpd glue: listener, per-request state, checks (the routes
 * are matched in http_route.c).
 *
 * MHD runs a pool of internal poll() threads, fed by our own acceptor
 * (http_conn.c says why not epoll). Per request, the first callback
 * allocates a struct hr_req and routes it; upload chunks go into a buffer
 * bounded by max_body (http_body.c); the final callback runs the route's
 * handler. Handlers that
 * wait for the writer suspend the connection and are called again once
 * resumed. Request state is freed only in the completion callback.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "hr/http.h"
#include "hr/log.h"
#include "hr/netaddr.h"
#include "hr/reqcheck.h"
#include "hr/sign.h"
#include "hr/timefmt.h"
#include "http_int.h"

/* jansson's own check (it makes strings of valid UTF-8 only), asked only when a
 * byte is not ASCII: every webhook's path segment passes here, without an
 * allocation. */
bool
hr_http_is_utf8(const char *s)
{
	json_t *j;

	for (const unsigned char *p = (const unsigned char *)s; *p < 0x80; p++)
		if (*p == '\0')
			return true;
	j = json_string(s);
	json_decref(j);
	return j != NULL;
}

/* The value a handler set for `name`, NULL when none. */
static const char *
reply_header(const struct hr_req *req, const char *name)
{
	for (size_t i = 0; i + 1 < req->nresp_headers; i += 2)
		if (strcasecmp(req->resp_headers[i], name) == 0)
			return req->resp_headers[i + 1];
	return NULL;
}

/* A stream answered on the read threads (hr_req_reply_stream()), queued now. */
static enum MHD_Result
send_stream(struct hr_req *req)
{
	enum MHD_Result ok =
	    MHD_queue_response(req->conn, (unsigned)req->resp_status, req->stream_resp);

	MHD_destroy_response(req->stream_resp);
	req->stream_resp = NULL;
	req->streaming = true;
	return ok;
}

static enum MHD_Result
send_reply(struct hr_req *req)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	if (req->stream_resp != NULL)
		return send_stream(req);
	resp =
	    MHD_create_response_from_buffer(req->resp_len, req->resp_body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		return MHD_NO;
	req->resp_body = NULL; /* the response owns it now */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->resp_type);
	/* Nothing the daemon answers is for a cache, unless its handler says so
	 * (the inspector's versioned files). */
	if (reply_header(req, MHD_HTTP_HEADER_CACHE_CONTROL) == NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	hr_req_add_origin_headers(req, resp);
	if (req->resp_status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->resp_allow);
	for (size_t i = 0; i + 1 < req->nresp_headers; i += 2)
		MHD_add_response_header(resp, req->resp_headers[i], req->resp_headers[i + 1]);
	if (req->resp_status == 401 && reply_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE) == NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	/* What follows a malformed request cannot be trusted to be a request; and
	 * while stopping, the client's next request should go to the next hookrelay. */
	if (req->resp_close || atomic_load(&req->app->stopping))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ok = MHD_queue_response(req->conn, (unsigned)req->resp_status, resp);
	MHD_destroy_response(resp);
	req->answered = ok == MHD_YES;
	return ok;
}

/* Is `token` (NULL: none configured) the request's bearer token? */
static bool
bears(struct hr_req *req, const char *token)
{
	const char *auth = hr_req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);

	return token != NULL && auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
	    hr_token_equal(auth + 7, token);
}

/* The bearer token, when [api] token_file is set: is it in the request? */
static bool
has_bearer(struct hr_req *req)
{
	return bears(req, req->rt->api_token);
}

/* [api] read_token_file's token: GET and HEAD only. */
static bool
has_read_bearer(struct hr_req *req)
{
	return bears(req, req->rt->api_read_token);
}

static bool
is_read(const struct hr_req *req)
{
	return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* Without a token, loopback clients only; a proxy on this host makes every
 * client look local, so a forwarded request is not a loopback client. */
static bool
local_client(struct hr_req *req)
{
	return hr_netaddr_is_loopback(req->remote) &&
	    hr_req_header(req, "X-Forwarded-For") == NULL &&
	    hr_req_header(req, "Forwarded") == NULL && hr_req_header(req, "X-Real-IP") == NULL;
}

/* Addressed to a name of ours: a page of another site cannot rebind its name here. */
static bool
host_ours(struct hr_req *req)
{
	return hr_reqcheck_host(hr_req_header(req, MHD_HTTP_HEADER_HOST),
	    (const struct sockaddr *)&req->http->bound_ss, &req->cfg->api_hosts);
}

bool
hr_req_api_authorised(struct hr_req *req)
{
	return host_ours(req) &&
	    (req->rt->api_token != NULL ? has_bearer(req) || (is_read(req) && has_read_bearer(req))
	                                : local_client(req));
}

static bool
is_json_type(const char *ct)
{
	size_t n;

	if (ct == NULL)
		return false;
	n = strcspn(ct, "; \t");
	return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/*
 * A browser sends a cross-site form POST with the user's network position,
 * and a page's fetch() with a foreign Origin. A state-changing request
 * therefore needs a type no form can send (JSON: anything else cross-site
 * needs a CORS preflight, which is never granted) or the bearer token no
 * other site has, and an Origin that is ours when there is one.
 */
static bool
csrf_safe(struct hr_req *req)
{
	const char *origin = hr_req_header(req, "Origin");

	if (is_read(req))
		return true;
	if (origin != NULL &&
	    !hr_reqcheck_origin(
	        origin, (const struct sockaddr *)&req->http->bound_ss, &req->cfg->api_hosts)) {
		hr_req_reply_problem(req, 403, "cross-origin", "Forbidden",
		    "the Origin of this request is not this daemon; see [api] allowed_hosts", NULL);
		return false;
	}
	if (is_json_type(hr_req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE)) || has_bearer(req))
		return true;
	hr_req_reply_problem(req, 415, "unsupported-media-type", "Unsupported Media Type",
	    "a state-changing API request needs Content-Type: application/json or a bearer token",
	    json_pack("{s:s}", "header", "Content-Type"));
	return false;
}

static bool
api_allowed(struct hr_req *req)
{
	if (!host_ours(req)) {
		hr_req_reply_problem(req, 421, "misdirected-request", "Misdirected Request",
		    "the Host header names no address or name of this daemon; see [api] "
		    "allowed_hosts",
		    json_pack("{s:s}", "header", "Host"));
		return false;
	}
	if (req->rt->api_token == NULL && !local_client(req)) {
		hr_req_reply_problem(req, 403, "forbidden", "Forbidden",
		    "the API answers loopback clients only unless [api] token_file is set", NULL);
		return false;
	}
	if (req->rt->api_token != NULL && !has_bearer(req) && has_read_bearer(req) &&
	    !is_read(req)) {
		hr_req_reply_problem(req, 403, "read-only-token", "Forbidden",
		    "this token ([api] read_token_file) may only read: GET and HEAD", NULL);
		return false;
	}
	if (req->rt->api_token != NULL && !has_bearer(req) && !has_read_bearer(req)) {
		hr_req_reply_problem(req, 401, "unauthorized", "Unauthorized",
		    "a valid bearer token is required", NULL);
		return false;
	}
	return true;
}

/*
 * A query a route cannot take whole is refused before its handler runs, so a
 * typo, a repeated single value (limit=1&limit=600) or a bare `?limit` never
 * silently changes what a request asks for.
 */
struct query_check {
	struct hr_req *req;
	const char *keys[HR_QUERY_ARGS];
	size_t n;
	const char *bad; /* the first parameter refused */
	const char *why;
};

static const struct hr_param *
param_find(const struct hr_param *table, const char *key)
{
	for (const struct hr_param *p = table; p->name != NULL; p++) {
		if ((p->flags & HR_PARAM_PREFIX) ? strncmp(key, p->name, strlen(p->name)) == 0 &&
		            key[strlen(p->name)] != '\0'
		                                 : strcmp(key, p->name) == 0)
			return p;
	}
	return NULL;
}

static enum MHD_Result
check_query_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query_check *qc = cls;

	(void)kind;
	if (!hr_http_is_utf8(key)) {
		/* Named in the answer, which is JSON: not the bytes themselves. */
		qc->why = "has a name that is not UTF-8";
		qc->bad = "?";
		return MHD_NO;
	}
	if (qc->n == HR_QUERY_ARGS) {
		qc->why = "is past the " HR_STRINGIFY(HR_QUERY_ARGS) " parameters a query may have";
	} else {
		const struct hr_param *p = param_find(qc->req->route->query, key);

		qc->keys[qc->n++] = key;
		if (p == NULL)
			qc->why = "is not a parameter of this route";
		else if ((value == NULL || value[0] == '\0') && !(p->flags & HR_PARAM_EMPTY))
			qc->why = "needs a value";
		else if (value != NULL && !hr_http_is_utf8(value))
			qc->why = "has a value that is not UTF-8"; /* no name or value matches it */
		else
			return MHD_YES;
	}
	qc->bad = key;
	return MHD_NO;
}

/* Repeated parameters: only HR_PARAM_MULTI ones, and at most HR_QUERY_VALUES times. */
static void
check_repeats(struct query_check *qc)
{
	for (size_t i = 0; i < qc->n && qc->bad == NULL; i++) {
		const struct hr_param *p = param_find(qc->req->route->query, qc->keys[i]);
		size_t count = 0;

		for (size_t j = 0; j < qc->n; j++)
			count += strcmp(qc->keys[i], qc->keys[j]) == 0;
		if (count > 1 && !(p->flags & HR_PARAM_MULTI))
			qc->why = "takes one value and is given more than once";
		else if (count > HR_QUERY_VALUES)
			qc->why = "is given more than " HR_STRINGIFY(HR_QUERY_VALUES) " times";
		else
			continue;
		qc->bad = qc->keys[i];
	}
}

static bool
query_allowed(struct hr_req *req)
{
	struct query_check qc = { .req = req };
	char detail[300];

	if (req->route->query == NULL)
		return true; /* the route takes any query (a webhook URL may carry a token) */
	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, check_query_arg, &qc);
	if (qc.bad == NULL)
		check_repeats(&qc);
	if (qc.bad == NULL)
		return true;
	snprintf(detail, sizeof(detail), "query parameter \"%.200s\" %s", qc.bad, qc.why);
	hr_req_reply_problem(req, 400, "bad-parameter", "Bad query parameter", detail,
	    json_pack("{s:s}", "parameter", qc.bad));
	return false;
}

/*
 * The body buffer's first allocation: the declared Content-Length when it is
 * smaller than 16 KiB (a small body takes only its size), else 16 KiB, and
 * doubling from there as bytes arrive. Never more than 16 KiB on a declared
 * length alone: a sender that declares 8 MiB and sends one byte must not make
 * the daemon hold 8 MiB for it (sizing the buffer from the header saved a
 * 1 MiB body six reallocs, 0.07 % of its cost, not worth that).
 */
#define BODY_FIRST_MAX 16384

static size_t
body_first_size(struct MHD_Connection *conn, size_t max_body)
{
	const char *cl =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long n;
	char *end;

	if (cl == NULL || *cl < '0' || *cl > '9')
		return BODY_FIRST_MAX;
	errno = 0;
	n = strtoull(cl, &end, 10);
	if (errno != 0 || *end != '\0' || n == 0 || n >= BODY_FIRST_MAX || n > max_body)
		return BODY_FIRST_MAX;
	return (size_t)n + 1; /* and the NUL */
}

static struct hr_req *
req_new(struct hr_http *h, struct MHD_Connection *conn, const char *url, const char *method)
{
	const union MHD_ConnectionInfo *ci;
	/* with room for the route's {} segments, which are parts of the URL (a
	 * path token as long as max_header_size lets it be) */
	struct hr_req *req = calloc(1, sizeof(*req) + strlen(url) + HR_MAX_PARAMS);

	if (req == NULL)
		return NULL;
	req->app = h->app;
	req->http = h;
	req->rt = hr_app_runtime(h->app);
	req->cfg = req->rt->cfg;
	req->conn = conn;
	req->url = url;
	req->method = method;
	req->started_us = hr_time_now_us();
	hr_dynbuf_init(&req->body, body_first_size(conn, req->cfg->max_body), req->cfg->max_body);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	req->remote = ci != NULL ? ci->client_addr : NULL;
	if (req->remote != NULL) {
		const struct hr_conn *c = hr_http_conn_of(conn);

		/* one size on both sides: the copy never reads past the connection's */
		_Static_assert(sizeof(req->remote_text) == sizeof(c->peer_text),
		    "a request's peer text is its connection's");
		if (c != NULL && c->peer_text[0] != '\0')
			memcpy(req->remote_text, c->peer_text, sizeof(req->remote_text));
		else
			hr_netaddr_format(req->remote, req->remote_text, sizeof(req->remote_text));
	}
	return req;
}

static int
add_header_size(void *arg, const char *name, const char *value)
{
	*(size_t *)arg += strlen(name) + strlen(value) + 4; /* ": " and CRLF */
	return 0;
}

/* MHD hands the query string over as arguments, not as part of req->url. */
static enum MHD_Result
add_argument_size(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	*(size_t *)cls += strlen(key) + (value != NULL ? strlen(value) : 0) + 2; /* ? or &, = */
	return MHD_YES;
}

/* Request line and headers within max_header_size, else 431. */
static bool
headers_fit(struct hr_req *req)
{
	size_t total = strlen(req->method) + strlen(req->url) + 12;

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, add_argument_size, &total);
	hr_req_each_header(req, add_header_size, &total);
	if (total <= req->cfg->max_header_size)
		return true;
	hr_req_reply_problem(req, 431, "headers-too-large", "Request Header Fields Too Large",
	    "the request line and headers are larger than [server] max_header_size", NULL);
	return false;
}

/*
 * MHD's URI callback, on the raw request target before MHD splits off the
 * query and decodes it in place: what hr_reqcheck_target() thinks of it, and
 * where its C string ends (right before the HTTP version, unless a NUL in
 * the target cut it short).
 */
static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	struct hr_conn *c = hr_http_conn_of(mc);

	(void)cls;
	if (c != NULL) {
		c->target_end = uri + strlen(uri);
		c->target_why = hr_reqcheck_target(uri);
	}
	return NULL; /* *req_cls stays NULL: on_request() sees its first call */
}

/* Framing, line syntax and the target (reqcheck.h); else 400 and close. */
static bool
request_wellformed(struct hr_req *req, const char *version)
{
	struct hr_conn *c = hr_http_conn_of(req->conn);
	const char *why, *field = NULL;

	if (c == NULL) { /* untracked (out of memory): nothing to judge it by */
		hr_req_reply_problem(req, 503, "overloaded", "Service Unavailable", NULL, NULL);
		req->resp_close = true;
		return false;
	}
	why = hr_reqcheck_headers(req->conn, version,
	    strcmp(version, "HTTP/1.0") == 0 && hr_http_route_any_host(req, req->url), &field);
	if (why == NULL && version != c->target_end + 1)
		why = "the request target holds a NUL";
	if (why == NULL)
		why = c->target_why;
	if (why == NULL)
		return true;
	log_debug("http: refused a malformed request from %s: %s", req->remote_text, why);
	req->resp_close = true;
	hr_req_reply_problem(req, 400, "bad-request", "Bad Request", why,
	    field != NULL ? json_pack("{s:s}", "header", field) : NULL);
	return false;
}

/* First callback: well-formed, route, access rules, then the route's early checks. */
static void
req_begin(struct hr_req *req, const char *version)
{
	int status;

	if (!request_wellformed(req, version) || !headers_fit(req))
		return;
	req->framed = true;

	req->route = hr_http_route_find(req, req->url, &status);
	if (req->route == NULL) {
		char detail[96];

		if (status == 405) {
			char method[33];
			size_t n = 0;

			/* MHD does not hold a method to HTTP's token characters: a byte past
			 * ASCII (half a UTF-8 sequence, cut) would make the detail not text */
			for (; req->method[n] != '\0' && n + 1 < sizeof(method); n++)
				method[n] = (unsigned char)req->method[n] > 0x20 &&
				        (unsigned char)req->method[n] < 0x7f
				    ? req->method[n]
				    : '?';
			method[n] = '\0';
			snprintf(detail, sizeof(detail),
			    "%s is not a method of this path: the Allow header lists them", method);
			hr_req_reply_problem(
			    req, 405, "method-not-allowed", "Method Not Allowed", detail, NULL);
		} else {
			hr_req_reply_problem(req, 404, "not-found", "Not Found",
			    "no route of hookrelay has this path (docs/api.md lists them)", NULL);
		}
		return;
	}
	if ((req->route->flags & HR_ROUTE_API) && !api_allowed(req))
		return;
	/* With a token the page holds nothing to protect: /v1 asks the token. */
	if ((req->route->flags & HR_ROUTE_UI) && req->rt->api_token == NULL && !api_allowed(req))
		return;
	/* A bad parameter changes nothing and says nothing private: named first. */
	if (!query_allowed(req) || ((req->route->flags & HR_ROUTE_API) && !csrf_safe(req)))
		return;
	if (req->route->begin != NULL && req->route->begin(req) != HR_OK && !req->replied)
		hr_req_reply_problem(req, 500, "internal", "Internal Server Error", NULL, NULL);
}

/* The whole request is in: answer it, or hand it on (suspended). */
static enum MHD_Result
whole_request(struct hr_http *h, struct hr_req *req)
{
	if (req->replied)
		return send_reply(req);
	if (req->body_too_big) {
		hr_req_reply_problem(req, 413, "body-too-large", "Content Too Large",
		    "the request body is larger than [server] max_body", NULL);
		return send_reply(req);
	}
	if (req->over_budget) {
		hr_req_reply_budget_full(req);
		return send_reply(req);
	}
	/* A read goes to the read threads (answered there, then resumed); while
	 * stopping, when nothing may be suspended any more, it runs here. */
	if ((req->route->flags & HR_ROUTE_READS) && hr_req_suspend(req)) {
		hr_http_reads_submit(h, req);
		return MHD_YES;
	}
	if (req->route->handle(req) != HR_OK && !req->replied)
		hr_req_reply_problem(req, 500, "internal", "Internal Server Error", NULL, NULL);
	if (req->suspended || req->streaming)
		return MHD_YES;
	return send_reply(req);
}

/* The whole request is in (or it ended): no longer one shutdown waits to receive. */
static void
req_received(struct hr_req *req)
{
	if (req->receiving) {
		req->receiving = false;
		atomic_fetch_sub(&req->app->receiving, 1);
	}
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct hr_http *h = cls;
	struct hr_req *req = *req_cls;
	enum MHD_Result ok;

	if (req == NULL) {
		hr_http_conn_headers_in(h, conn); /* the body has until request_timeout */
		if ((req = req_new(h, conn, url, method)) == NULL)
			return MHD_NO;
		*req_cls = req;
		/* Counted before `closing` is read, as hr_req_suspend() counts: shutdown
		 * sets it before it waits, so either it waits for this one or we see it. */
		atomic_fetch_add(&req->app->receiving, 1);
		req->receiving = true;
		req->before_close = !atomic_load(&req->app->closing);
		req_begin(req, version);
		if (!req->replied)
			return MHD_YES; /* the body comes; answered at its end */
		if (hr_req_drains_before_answer(req)) {
			/* Dropped as it comes, and answered at its end; a stop does not wait
			 * for it (nothing of it is kept): a client that stalled it held every
			 * stop for [server] stop_timeout. */
			req_received(req);
			return MHD_YES;
		}
		hr_http_conn_busy(h, conn, true);
		return send_reply(req);
	}
	if (*upload_data_size != 0) {
		hr_req_body_append(req, upload_data, *upload_data_size);
		*upload_data_size = 0;
		/* MHD cannot answer in the middle of an upload: an oversized chunked body
		 * (or one over the unverified budget, or refused on its headers) is read
		 * and dropped up to twice max_body in all, a body to a route that reads
		 * none up to max_body, answered at its end; a sender that goes on past
		 * that is disconnected. */
		if (!req->replied && !hr_req_reads_body(req) && req->received > req->cfg->max_body)
			return MHD_NO;
		if (req->received > 2 * req->cfg->max_body)
			return MHD_NO;
		return MHD_YES;
	}
	if (req->suspended) {
		/* resumed: the handler replied from the writer's completion or the read
		 * threads (and the connection was marked busy when the request came in
		 * whole). Every hold is let go: a stream's later suspensions are its own. */
		req->suspended = false;
		req->on_reads = false;
		return req->replied ? send_reply(req) : MHD_NO;
	}
	hr_http_conn_busy(h, conn, true); /* the whole request is in */
	ok = whole_request(h, req);
	/* After its answer is queued or it is suspended (counted in app->inflight):
	 * shutdown never finds it in neither count. This worker handles the
	 * connection's resumption, so `req` is still ours here. */
	req_received(req);
	return ok;
}

static void
on_completed(
    void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	struct hr_http *h = cls;
	struct hr_req *req = *req_cls;

	(void)toe;
	hr_http_conn_busy(h, conn, false);
	if (req == NULL)
		return;
	hr_req_budget_release(req);
	if (req->stream_resp != NULL) /* never queued: its reader's state let go */
		MHD_destroy_response(req->stream_resp);
	if (req->ctx_free != NULL)
		req->ctx_free(req->ctx);
	hr_dynbuf_free(&req->body);
	free(req->resp_body);
	free(req->instance);
	for (size_t i = 0; i < req->ntrimmed; i++)
		free(req->trimmed[i].copy);
	for (size_t i = 0; i < req->nresp_headers; i++)
		free(req->resp_headers[i]);
	hr_runtime_release(req->rt);
	req_received(req); /* cut off before it was whole */
	if (req->counted)  /* answered (or cut off): shutdown may go on (hr_req_suspend) */
		atomic_fetch_sub(&req->app->inflight, 1);
	free(req);
	*req_cls = NULL;
}

static void mhd_log(void *, const char *, va_list) __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	log_debug("http: %s", line);
}

static void
http_free(struct hr_http *h)
{
	if (h->wake_fd >= 0)
		close(h->wake_fd);
	if (h->own_listen && h->listen_fd >= 0)
		close(h->listen_fd);
	hr_peers_free(h->peers);
	pthread_mutex_destroy(&h->mu);
	pthread_mutex_destroy(&h->stop_mu);
	pthread_cond_destroy(&h->stop_cv);
	free(h);
}

/*
 * MHD keeps a request's line, headers and read buffer in one memory pool
 * per connection, so its size bounds what a client can make us hold before
 * headers_fit() sees them. Room for twice the limit plus a read buffer keeps
 * the precise 431 ours.
 */
size_t
hr_http_conn_memory(size_t max_header_size)
{
	return 2 * (max_header_size ? max_header_size : 16384) + 8192;
}

static struct hr_http *
http_new(const struct hr_http_opts *o, struct hr_app *app)
{
	pthread_condattr_t cattr;
	struct hr_http *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->app = app;
	h->listen_fd = h->wake_fd = -1;
	h->timeout_us = o->timeout_ms * 1000;
	h->header_timeout_us = o->header_timeout_ms > 0 && o->header_timeout_ms < o->timeout_ms
	    ? o->header_timeout_ms * 1000
	    : h->timeout_us;
	/* A connection waiting for its address's slot is answered 503 only once one
	 * of the address's connections must have gone: a request under way ends
	 * within request_timeout (or is cut off), and, idle, the connection is closed
	 * header_timeout later, by a sweeper that looks once a second and whose close
	 * takes a moment to reach the acceptor. A 503 at request_timeout came before
	 * the idle close whenever request_timeout <= header_timeout (or the request
	 * ended late): the webhook waiting behind a connection doing nothing, lost. */
	h->wait_us = h->timeout_us + h->header_timeout_us + SWEEP_PERIOD_US + 250 * 1000;
	h->max_conns = o->max_connections > 0 ? o->max_connections : 1;
	h->conns.next = h->conns.prev = &h->conns;
	if (o->max_per_ip > 0 && (h->peers = hr_peers_new(o->max_per_ip, h->max_conns)) == NULL) {
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->stop_mu, NULL);
	/* Deadlines and the sweeper's tick run on the monotonic clock: a wall clock
	 * stepped back must not stall the slow-client cut-off. */
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&h->stop_cv, &cattr);
	pthread_condattr_destroy(&cattr);
	return h;
}

/*
 * MHD runs its poll() loop on `threads` workers and never listens itself:
 * http_conn.c accepts and hands connections over (see there for why). The
 * caps on connections are http_conn.c's too (http_peers.c the one per
 * address); MHD's own is set above it, so that MHD never drops a connection
 * the acceptor admitted (its workers each get a share of its limit and are
 * picked by descriptor number).
 */
int
hr_http_start(
    const struct hr_http_opts *o, struct hr_app *app, struct hr_http **out, struct hr_error *err)
{
	/* ITC: resuming a suspended connection, or a new one, wakes its worker. */
	unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_NO_LISTEN_SOCKET |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	unsigned timeout_s = (unsigned)((o->timeout_ms + 999) / 1000);
	unsigned threads = o->threads > 0 ? o->threads : 1;
	struct hr_http *h;
	int rc;

	*out = NULL;
	if ((h = http_new(o, app)) == NULL)
		return HR_ENOMEM;
	h->routes = o->routes;
	h->nroutes = o->nroutes;
	if ((rc = hr_http_listen(h, o, err)) != HR_OK) {
		http_free(h);
		return rc;
	}
	if ((rc = hr_http_reads_start(h, threads, err)) != HR_OK) {
		http_free(h);
		return rc;
	}
	h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
	    mhd_log, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
	    threads * (h->max_conns + 64), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    hr_http_conn_memory(o->max_header_size), MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION,
	    hr_http_on_connection, h, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_END);
	if (h->mhd == NULL) {
		hr_http_reads_stop(h);
		http_free(h);
		return hr_error_set(err, HR_EINVAL, "listen", "cannot start the HTTP server");
	}
	if ((rc = hr_http_conns_start(h, err)) != HR_OK) {
		hr_http_conns_stop(h);
		MHD_stop_daemon(h->mhd);
		hr_http_reads_stop(h);
		http_free(h);
		return rc;
	}
	*out = h;
	return HR_OK;
}

void
hr_http_bound(struct hr_http *h, char *buf, size_t len)
{
	snprintf(buf, len, "%s", h->bound);
}

void
hr_http_quiesce(struct hr_http *h)
{
	hr_http_accept_stop(h);
}

void
hr_http_stop(struct hr_http *h)
{
	if (h == NULL)
		return;
	hr_http_conns_stop(h);
	MHD_stop_daemon(h->mhd);
	hr_http_reads_stop(h);
	http_free(h);
}

unsigned long
hr_http_cut_off(struct hr_http *h)
{
	return atomic_load(&h->cut_off);
}

unsigned long
hr_http_evicted(struct hr_http *h)
{
	return atomic_load(&h->evicted);
}

void
hr_http_per_address(struct hr_http *h, struct hr_http_waits *out)
{
	out->waiting = hr_peers_waiting(h->peers);
	out->waited = hr_peers_waited(h->peers);
	out->refused = hr_peers_refused(h->peers);
}
