/*
 * http_req.c - a request as its handler sees it: what it reads (method,
 * path parameters, headers, query, body, peer) and how it answers (a
 * buffer, JSON, a problem document, a stream), suspended or not.
 *
 * Answers are prepared here and queued by http.c once the handler returns
 * (send_reply), except a stream, which MHD pulls from the handler's reader
 * and so is queued at once. Nothing above the http layer sees struct
 * hr_req or libmicrohttpd: these calls are the whole of it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hr/http.h"
#include "hr/jsontext.h"
#include "http_int.h"

/* ---- what a handler reads ---- */

struct hr_app *
hr_req_app(const struct hr_req *req)
{
	return req->app;
}

struct hr_runtime *
hr_req_runtime(const struct hr_req *req)
{
	return req->rt;
}

const struct hr_cfg *
hr_req_cfg(const struct hr_req *req)
{
	return req->cfg;
}

const char *
hr_req_method(const struct hr_req *req)
{
	return req->method;
}

const char *
hr_req_url(const struct hr_req *req)
{
	return req->url;
}

const char *
hr_req_param(const struct hr_req *req, unsigned i)
{
	return i < HR_MAX_PARAMS && req->params[i] != NULL ? req->params[i] : "";
}

const struct sockaddr *
hr_req_peer(const struct hr_req *req)
{
	return req->remote;
}

const char *
hr_req_peer_text(const struct hr_req *req)
{
	return req->remote_text;
}

int64_t
hr_req_started_us(const struct hr_req *req)
{
	return req->started_us;
}

char *
hr_req_body(struct hr_req *req, size_t *len)
{
	*len = req->body.len;
	return req->body.p;
}

void
hr_req_body_shrink(struct hr_req *req, size_t len)
{
	hr_dynbuf_shrink(&req->body, len);
}

int
hr_req_socket(const struct hr_req *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	return ci != NULL ? ci->connect_fd : -1;
}

void
hr_req_set_ctx(struct hr_req *req, void *ctx, void (*ctx_free)(void *))
{
	req->ctx = ctx;
	req->ctx_free = ctx_free;
}

void *
hr_req_ctx(const struct hr_req *req)
{
	return req->ctx;
}

/*
 * RFC 9110: blanks around a field's value are not part of it. libmicrohttpd
 * 0.9.75 drops those before it and keeps those after it, so a signed
 * timestamp, a webhook-id or Basic credentials followed by a blank failed to
 * authenticate. A value that has some is copied without them once (rare:
 * kept with the request, and found again by the next lookup of the same
 * header); past HR_TRIMMED_MAX such headers, or without memory, the value is
 * returned as it came.
 */
const char *
hr_req_header(struct hr_req *req, const char *name)
{
	const char *v = NULL;
	size_t len = 0, n;
	char *copy;

	if (MHD_lookup_connection_value_n(
	        req->conn, MHD_HEADER_KIND, name, strlen(name), &v, &len) != MHD_YES ||
	    v == NULL)
		return NULL;
	for (n = len; n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'); n--)
		;
	if (n == len)
		return v;
	for (size_t i = 0; i < req->ntrimmed; i++)
		if (req->trimmed[i].value == v)
			return req->trimmed[i].copy;
	if (req->ntrimmed == HR_TRIMMED_MAX || (copy = strndup(v, n)) == NULL)
		return v;
	req->trimmed[req->ntrimmed].value = v;
	req->trimmed[req->ntrimmed++].copy = copy;
	return copy;
}

const char *
hr_req_query(struct hr_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_values {
	const char *name;
	const char **out;
	size_t max, n;
};

static enum MHD_Result
collect_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query_values *qv = cls;

	(void)kind;
	if (strcmp(key, qv->name) != 0)
		return MHD_YES;
	if (qv->n < qv->max)
		qv->out[qv->n] = value != NULL ? value : "";
	qv->n++;
	return MHD_YES;
}

size_t
hr_req_query_all(struct hr_req *req, const char *name, const char **out, size_t max)
{
	struct query_values qv = { name, out, max, 0 };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect_value, &qv);
	return qv.n;
}

struct header_visit {
	int (*cb)(void *, const char *, const char *);
	void *arg;
};

static enum MHD_Result
visit_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct header_visit *v = cls;

	(void)kind;
	return v->cb(v->arg, key, value != NULL ? value : "") == 0 ? MHD_YES : MHD_NO;
}

static enum MHD_Result
visit_query(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct header_visit *v = cls;

	(void)kind;
	return v->cb(v->arg, key, value) == 0 ? MHD_YES : MHD_NO;
}

void
hr_req_each_query(struct hr_req *req, int (*cb)(void *, const char *, const char *), void *arg)
{
	struct header_visit v = { cb, arg };

	MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, visit_query, &v);
}

void
hr_req_each_header(struct hr_req *req, int (*cb)(void *, const char *, const char *), void *arg)
{
	struct header_visit v = { cb, arg };

	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, visit_header, &v);
}

/* ---- answering ---- */

bool
hr_req_set_header(struct hr_req *req, const char *name, const char *value)
{
	char *n, *v;

	if (req->nresp_headers >= HR_ARRAY_LEN(req->resp_headers))
		return false;
	n = strdup(name);
	v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		return false;
	}
	req->resp_headers[req->nresp_headers++] = n;
	req->resp_headers[req->nresp_headers++] = v;
	return true;
}

bool
hr_req_answered(const struct hr_req *req)
{
	return req->answered;
}

int
hr_req_status(const struct hr_req *req)
{
	return req->replied ? req->resp_status : 0;
}

void
hr_req_reply_take(struct hr_req *req, int status, const char *content_type, char *body, size_t len)
{
	free(req->resp_body);
	req->resp_status = status;
	req->resp_type = content_type;
	req->resp_body = body;
	req->resp_len = len;
	req->replied = true;
}

void
hr_req_reply_json(struct hr_req *req, int status, json_t *doc)
{
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT | hr_json_reals(doc)) : NULL;

	json_decref(doc);
	if (text == NULL) {
		static const char oom[] = "{\"title\":\"out of memory\",\"status\":500}";

		hr_req_reply_take(req, 500, "application/problem+json", strdup(oom), strlen(oom));
		return;
	}
	hr_req_reply_take(req, status,
	    status >= 400 ? "application/problem+json" : "application/json", text, strlen(text));
}

void
hr_req_reply_report(struct hr_req *req, int status, json_t *doc)
{
	hr_req_reply_json(req, status, doc);
	if (status >= 400 && strcmp(req->resp_type, "application/problem+json") == 0)
		req->resp_type = "application/json";
}

void
hr_req_reply_problem(struct hr_req *req, int status, const char *slug, const char *title,
    const char *detail, json_t *extra)
{
	hr_req_reply_json(req, status, hr_req_problem(req, status, slug, title, detail, extra));
}

json_t *
hr_req_problem(struct hr_req *req, int status, const char *slug, const char *title,
    const char *detail, json_t *extra)
{
	json_t *doc = json_object();
	char type[128];

	snprintf(type, sizeof(type), "urn:hookrelay:problem:%s", slug);
	json_object_set_new(doc, "type", json_string(type));
	json_object_set_new(doc, "title", json_string(title));
	json_object_set_new(doc, "status", json_integer(status));
	if (detail != NULL)
		json_object_set_new(doc, "detail", json_string(detail));
	json_object_set_new(doc, "instance", hr_json_string_lossy(hr_http_shown_url(req)));
	if (extra != NULL)
		json_object_update(doc, extra);
	json_decref(extra);
	return doc;
}

/* ---- streams ---- */

struct stream_cb {
	hr_stream_read read;
	void *cls;
	void (*release)(void *);
};

/* MHD's content reader around the handler's. */
static ssize_t
stream_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct stream_cb *sc = cls;
	ssize_t n;

	(void)pos;
	n = sc->read(sc->cls, out, max);
	if (n == HR_STREAM_END)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void
stream_free(void *cls)
{
	struct stream_cb *sc = cls;

	if (sc->release != NULL)
		sc->release(sc->cls);
	free(sc);
}

/* A stored body is served as the type it was sent as; no browser may guess
 * another (text/html) from its bytes. The API's answers, streams included,
 * are for this origin. */
void
hr_req_add_origin_headers(const struct hr_req *req, struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* An API path no route has (a 404) is the API's too. */
	if ((req->route != NULL && (req->route->flags & HR_ROUTE_API)) ||
	    (req->route == NULL && req->url != NULL && strncmp(req->url, "/v1/", 4) == 0))
		MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

int
hr_req_reply_stream(struct hr_req *req, int status, const char *content_type, hr_stream_read read,
    void *cls, void (*release)(void *))
{
	struct stream_cb *sc;
	struct MHD_Response *resp = NULL;
	enum MHD_Result ok;

	if ((sc = malloc(sizeof(*sc))) == NULL) {
		if (release != NULL)
			release(cls);
		return HR_ENOMEM;
	}
	*sc = (struct stream_cb){ read, cls, release };
	/* From here on the response owns `sc`: destroying it releases `cls`. */
	if ((resp = MHD_create_response_from_callback(
	         MHD_SIZE_UNKNOWN, 4096, stream_reader, sc, stream_free)) == NULL) {
		stream_free(sc);
		return HR_ENOMEM;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	hr_req_add_origin_headers(req, resp);
	for (size_t i = 0; i + 1 < req->nresp_headers; i += 2)
		MHD_add_response_header(resp, req->resp_headers[i], req->resp_headers[i + 1]);
	/* libmicrohttpd 0.9.75 sends a chunked answer's last chunk ("0" CRLF CRLF) to a
	 * HEAD as well, where no body may follow the headers: a client that sent its
	 * next request on the connection read those bytes as the next answer's status
	 * line. The connection ends with the answer, so that none is sent there. */
	if (strcmp(req->method, "HEAD") == 0)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	/* Only a worker may queue an answer, from inside the handler: one on the read
	 * threads is queued by its worker once resumed (http.c, send_reply()). */
	if (req->on_reads) {
		req->stream_resp = resp;
	} else {
		ok = MHD_queue_response(req->conn, (unsigned)status, resp);
		MHD_destroy_response(resp);
		if (ok != MHD_YES)
			return HR_ENOMEM; /* not replied: the handler's failure is a 500 */
		/* Queued here, not by send_reply(): on_request() must not queue another. */
		req->streaming = true;
	}
	req->replied = true;
	req->resp_status = status;
	return HR_OK;
}

/*
 * A request that was suspended is counted in app->inflight until it
 * completes (on_completed), not only until it is resumed: shutdown waits for
 * the count to reach 0 before MHD_stop_daemon(), which must not find a
 * connection still suspended, and must not close one resumed whose answer
 * (a committed webhook's 200) is not yet queued. Count first, then check
 * `closing`: shutdown sets it before waiting, so either it waits for this
 * request or we see it.
 */
bool
hr_req_suspend(struct hr_req *req)
{
	bool first = !req->counted;

	if (first) {
		atomic_fetch_add(&req->app->inflight, 1);
		req->counted = true;
	}
	/* One begun before the server closes is among those a stop finishes: a
	 * webhook whose body was still arriving at SIGTERM was cut off unanswered (a
	 * review); one on an idle keep-alive connection was answered 503. */
	if ((atomic_load(&req->app->closing) && !req->before_close) ||
	    atomic_load(&req->app->sealed)) {
		if (first) {
			atomic_fetch_sub(&req->app->inflight, 1);
			req->counted = false;
		}
		return false;
	}
	if (req->on_reads) {
		/* Suspended already, by its worker; the write's completion lets go too. */
		atomic_fetch_add(&req->holds, 1);
		return true;
	}
	req->suspended = true;
	MHD_suspend_connection(req->conn);
	return true;
}

/* The request may be freed as soon as it is resumed: nothing of it is read after.
 * One on the read threads is resumed by the last of them to let go: a write
 * handed over may complete while the handler that queued it is still running. */
void
hr_req_resume(struct hr_req *req)
{
	if (req->on_reads && atomic_fetch_sub(&req->holds, 1) != 1)
		return;
	MHD_resume_connection(req->conn);
}

bool
hr_req_stream_job(struct hr_req *req, void (*job)(void *), void *arg)
{
	if (req->http->reads == NULL || req->on_reads || !hr_req_suspend(req))
		return false;
	req->read_job = job;
	req->read_job_arg = arg;
	hr_http_reads_queue_job(req->http, req);
	return true;
}
