/*
 * http.h - the HTTP boundary: listener, request state, routing, answers.
 *
 * libmicrohttpd is the http layer's alone (src/http/): nothing above it
 * names it. Handlers see an opaque struct hr_req through the calls below:
 * its route parameters, query, headers and (for routes that take one) the
 * whole body, read under the size limit. A handler answers with
 * hr_req_reply*() (headers first with hr_req_set_header()), with a stream
 * (hr_req_reply_stream()), or, for work finished on another thread,
 * hr_req_suspend() now and hr_req_reply*() + hr_req_resume() later. The
 * route tables are the handlers' modules'; main hands them to
 * hr_http_start().
 */
#ifndef HR_HTTP_H
#define HR_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "hr/app.h"
#include "hr/common.h"

struct hr_http;
struct hr_req; /* opaque: the http layer's */
struct hr_route;

struct hr_http_opts {
	const char *listen; /* "127.0.0.1:8080" */
	int listen_fd;      /* >= 0: an already bound socket (systemd); listen is ignored */
	unsigned threads;
	unsigned max_connections;
	unsigned max_per_ip;    /* connections from one address; 0: no limit */
	size_t max_header_size; /* request line + headers; larger answer 431 */
	int64_t timeout_ms;     /* idle connections and slow requests are cut off after this */
	int64_t
	    header_timeout_ms; /* the request line and headers must be in by then (<= timeout) */
	/* The routes, table by table, each ending with { NULL }: the first match wins. */
	const struct hr_route *const *routes;
	size_t nroutes;
};

int hr_http_start(
    const struct hr_http_opts *, struct hr_app *, struct hr_http **out, struct hr_error *) HR_WUR;
/* The memory of each connection of a server started with this `max_header_size`:
 * past about this, a raised limit is libmicrohttpd's 431 until a restart. */
size_t hr_http_conn_memory(size_t max_header_size);
/* The bound address, e.g. to learn the port chosen for port 0. */
void hr_http_bound(struct hr_http *, char *buf, size_t len);
/* Stop accepting new connections; requests in progress go on, and those
 * waiting past max_connections_per_ip are handed over to be served. */
void hr_http_quiesce(struct hr_http *);
/* No connection was handed over in the last moment (whose request may not have
 * begun yet): a stop's drain waits for it too. NULL is fine. */
bool hr_http_settled(struct hr_http *);
void hr_http_stop(struct hr_http *); /* NULL is fine */
/* Connections shut down for not sending their request in time (slow clients). */
unsigned long hr_http_cut_off(struct hr_http *);
/* Connections shut down at max_connections to admit a new one (none had a request in). */
unsigned long hr_http_evicted(struct hr_http *);
/* Connections past [server] max_connections_per_ip: waiting now, ever, and
 * answered 503 without being read (waited request_timeout, at max_connections, stop). */
struct hr_http_waits {
	unsigned waiting;
	unsigned long waited, refused;
};
void hr_http_per_address(struct hr_http *, struct hr_http_waits *);

#define HR_MAX_PARAMS 2

/* ---- what a handler reads ---- */

struct hr_app *hr_req_app(const struct hr_req *);
/* The configuration generation this request runs under, and its config. */
struct hr_runtime *hr_req_runtime(const struct hr_req *);
const struct hr_cfg *hr_req_cfg(const struct hr_req *);
const char *hr_req_method(const struct hr_req *);
const char *hr_req_url(const struct hr_req *); /* the path as routed, without the query */
/* The i-th {} segment of the route, decoded; "" past the route's. */
const char *hr_req_param(const struct hr_req *, unsigned i);
const struct sockaddr *hr_req_peer(const struct hr_req *); /* the TCP peer; NULL: unknown */
const char *hr_req_peer_text(const struct hr_req *);       /* "127.0.0.1:41000" */
int64_t hr_req_started_us(const struct hr_req *);          /* headers in, wall clock */
/* The body (borrowed, NUL-terminated, edited in place by whoever must, e.g. to
 * mask a secret); NULL when none was sent. hr_req_body_shrink() after an edit
 * that made it shorter. */
char *hr_req_body(struct hr_req *, size_t *len);
void hr_req_body_shrink(struct hr_req *, size_t len);
/* The connection's socket (to notice a client gone while suspended); -1: unknown. */
int hr_req_socket(const struct hr_req *);
/* Handler state, freed with `ctx_free` (may be NULL) when the request ends. */
void hr_req_set_ctx(struct hr_req *, void *ctx, void (*ctx_free)(void *));
void *hr_req_ctx(const struct hr_req *);

/* A handler returns HR_OK after replying or suspending; anything else is a 500. */
typedef int (*hr_handler)(struct hr_req *);

#define HR_ROUTE_API  0x1u /* behind the API's access rule (loopback or bearer token) */
#define HR_ROUTE_BODY 0x2u /* reads a request body */
#define HR_ROUTE_UI   0x4u /* the inspector's page: the API's rule while it has no token */
/* Its last {} may be a credential (/hooks/NAME/TOKEN): a problem's "instance"
 * leaves it out, whatever the method, and before the route is even found. */
#define HR_ROUTE_SECRET_TAIL 0x8u
/* Its handler reads the store (and may then hand a write over, or stream): it
 * runs on the http layer's read threads, not on the worker its connection
 * shares with webhooks (http_reads.c). */
#define HR_ROUTE_READS 0x10u
/* Also takes, after every route and the 405 check, each path of its method
 * under its pattern (which ends in '/') that no route takes: /hooks/ mistyped
 * is a webhook refused, counted and logged, not a bare 404 (a review). */
#define HR_ROUTE_UNDER 0x20u
/* An HTTP/1.0 request for it may come without a Host (HTTP/1.0 does not require
 * one): a load balancer's check, as HAProxy's `option httpchk` sends none. */
#define HR_ROUTE_ANY_HOST 0x40u

/*
 * A query parameter a route takes. http.c refuses, with 400 bad-parameter
 * naming it, a parameter the route does not list, one without a value (unless
 * HR_PARAM_EMPTY), and
 * one given twice unless HR_PARAM_MULTI, before the handler runs: a handler
 * reads a single-valued parameter with hr_req_query() and knows it is the
 * only one.
 */
#define HR_PARAM_MULTI                                                                             \
	0x1u                 /* may be repeated (at most HR_QUERY_VALUES each): any value matches  \
	                      */
#define HR_PARAM_PREFIX 0x2u /* `name` is a prefix taking a family ("query." for query.NAME) */
#define HR_PARAM_EMPTY  0x4u /* an empty value is a value (query.flag= matches ?flag) */
#define HR_QUERY_VALUES 16   /* values of one repeated parameter */
#define HR_QUERY_ARGS   128  /* parameters in one query string */

struct hr_param {
	const char *name;
	unsigned flags;
};

struct hr_route {
	const char *method;
	const char *pattern; /* "/v1/events/{}": each {} matches one segment */
	unsigned flags;
	hr_handler begin;  /* optional: after headers, before the body (may reply early) */
	hr_handler handle; /* once the whole body is in */
	const struct hr_param *query; /* accepted query parameters, { NULL } ends; NULL: any */
};

const char *hr_req_header(struct hr_req *, const char *name);
/* Would an HR_ROUTE_API route serve this request (Host, then token or loopback)? */
bool hr_req_api_authorised(struct hr_req *);
/* The value of a single-valued parameter (the first of a repeated one); NULL: absent. */
const char *hr_req_query(struct hr_req *, const char *name);
/* Every value of `name` in order, up to `max` of them into `out` (borrowed for the
 * request); returns how many there are. */
size_t hr_req_query_all(struct hr_req *, const char *name, const char **out, size_t max);
/* Visit every request header; stop early when cb returns non-zero. */
void hr_req_each_header(struct hr_req *, int (*cb)(void *, const char *, const char *), void *arg);
/* Visit every query parameter in order, repeated names each time, decoded;
 * a parameter without `=` has value NULL. Stop early when cb returns non-zero. */
void hr_req_each_query(struct hr_req *, int (*cb)(void *, const char *, const char *), void *arg);

/* ---- answering ---- */

#define HR_REPLY_HEADERS 8 /* headers a handler may add to one answer */

/* Add a header to the answer (both strings copied); false past HR_REPLY_HEADERS
 * or out of memory. Retry-After, WWW-Authenticate (a 401 without one says
 * "Bearer", the API's scheme), the inspector's security headers... */
bool hr_req_set_header(struct hr_req *, const char *name, const char *value);
/* Whether the answer went to the client's connection: a refusal decided on the
 * headers waits for the body's end (http_body.c), which may never come. */
bool hr_req_answered(const struct hr_req *);
int hr_req_status(const struct hr_req *); /* the answer's status; 0 before replying */

/* Answer with `body` (taken, freed with the request). */
void hr_req_reply_take(
    struct hr_req *, int status, const char *content_type, char *body, size_t len);
/* Answer with a JSON document (reference stolen): application/json, or
 * application/problem+json from status 400 on. */
void hr_req_reply_json(struct hr_req *, int status, json_t *doc);
/* The same as application/json whatever the status: a status report, not a problem. */
void hr_req_reply_report(struct hr_req *, int status, json_t *doc);
/* RFC 9457 problem+json. `extra` (stolen, may be NULL) adds members such as errors[]. */
void hr_req_reply_problem(struct hr_req *, int status, const char *slug, const char *title,
    const char *detail, json_t *extra);
/* The document hr_req_reply_problem() would send, without sending it (new). */
json_t *hr_req_problem(struct hr_req *, int status, const char *slug, const char *title,
    const char *detail, json_t *extra);

/*
 * A chunked answer of unknown length, read from `read` as the client takes
 * it (server-sent events). `read` fills `out` with up to `max` bytes and
 * returns how many; HR_STREAM_END ends the answer, HR_STREAM_ERROR cuts the
 * connection, and 0 means nothing now: the reader has suspended the request
 * (hr_req_suspend()) and hr_req_resume() calls it again. `release` (may be
 * NULL) gets `cls` exactly once: when the answer is done with it, or when
 * this call fails. HR_OK once queued; the handler returns HR_OK then.
 */
#define HR_STREAM_END   ((ssize_t)-1)
#define HR_STREAM_ERROR ((ssize_t)-2)
typedef ssize_t (*hr_stream_read)(void *cls, char *out, size_t max);
int hr_req_reply_stream(struct hr_req *, int status, const char *content_type, hr_stream_read read,
    void *cls, void (*release)(void *)) HR_WUR;
/* From a stream's `read`: suspend the request, run `job(arg)` on the read threads
 * (http_reads.c; a store read there holds up no webhook), then resume it, and
 * `read` is called again; it returns 0 now. False (nothing suspended or run)
 * while shutting down: `read` does the work itself. */
bool hr_req_stream_job(struct hr_req *, void (*job)(void *), void *arg) HR_WUR;

/*
 * Count this request's body against [server] max_unverified_bodies, the
 * bytes held at once of bodies whose sender is not yet authenticated, as
 * its bytes arrive. False when `declared` (the Content-Length, 0 if none)
 * does not fit in what is free now: answer hr_req_reply_budget_full().
 * Released by hr_req_budget_release() (authenticated) or at the end.
 */
bool hr_req_budget_body(struct hr_req *, size_t declared) HR_WUR;
void hr_req_budget_release(struct hr_req *);
void hr_req_reply_budget_full(struct hr_req *); /* 503, Retry-After */

/* Suspend until hr_req_resume(); false while shutting down (answer 503 then). */
bool hr_req_suspend(struct hr_req *) HR_WUR;
void hr_req_resume(struct hr_req *); /* any thread; after replying */

#endif
