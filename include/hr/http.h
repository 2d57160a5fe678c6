/*
 * http.h - libmicrohttpd glue: listener, request state, routing, answers.
 *
 * Handlers see a struct hr_req: its route parameters, query, headers and
 * (for routes that take one) the whole body, read under the size limit.
 * A handler answers with hr_req_reply*() or, for work finished on another
 * thread, hr_req_suspend() now and hr_req_reply*() + hr_req_resume() later.
 */
#ifndef HR_HTTP_H
#define HR_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hr/app.h"
#include "hr/common.h"
#include "hr/event.h"

struct hr_http;
struct hr_req;

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
};

int hr_http_start(
    const struct hr_http_opts *, struct hr_app *, struct hr_http **out, struct hr_error *) HR_WUR;
/* The bound address, e.g. to learn the port chosen for port 0. */
void hr_http_bound(struct hr_http *, char *buf, size_t len);
/* Stop accepting new connections; requests in progress go on. */
void hr_http_quiesce(struct hr_http *);
void hr_http_stop(struct hr_http *); /* NULL is fine */
/* Connections shut down for not sending their request in time (slow clients). */
unsigned long hr_http_cut_off(struct hr_http *);
/* Connections shut down at max_connections to admit a new one (none had a request in). */
unsigned long hr_http_evicted(struct hr_http *);

#define HR_MAX_PARAMS 2

/* ---- for handlers ---- */
struct hr_req {
	struct hr_app *app;
	struct hr_http *http;     /* the listener it came in on */
	struct hr_runtime *rt;    /* the configuration generation this request runs under */
	const struct hr_cfg *cfg; /* rt->cfg */
	const struct hr_route *route;
	const char *method;
	const char *url;
	char params[HR_MAX_PARAMS][256]; /* the {} segments of the route, decoded */
	const struct sockaddr *remote;
	char remote_text[64];
	int64_t started_us;
	/* the body, for routes that read one (owned, bounded by max_body) */
	char *body;
	size_t body_len, body_cap;
	bool body_too_big;
	size_t discarded; /* bytes dropped after the body went over max_body */
	/* an unauthenticated body (hr_req_budget_body): bytes held against the budget */
	bool budgeted, over_budget;
	size_t budget_held;
	/* handler state, freed with the request */
	void *ctx;
	void (*ctx_free)(void *);
	/* internal: connection and the answer being prepared */
	void *conn;
	bool suspended;
	int resp_status;
	char *resp_body;
	size_t resp_len;
	const char *resp_type;
	char resp_retry_after[16];
	char resp_allow[64];
	const char *resp_www_auth;       /* WWW-Authenticate of a 401; NULL: "Bearer" (the API's) */
	const char *const *resp_headers; /* more headers: name, value, ..., NULL (static) */
	bool resp_close;                 /* close the connection after the answer */
	bool replied;
};

/* A handler returns HR_OK after replying or suspending; anything else is a 500. */
typedef int (*hr_handler)(struct hr_req *);

#define HR_ROUTE_API  0x1u /* behind the API's access rule (loopback or bearer token) */
#define HR_ROUTE_BODY 0x2u /* reads a request body */
#define HR_ROUTE_UI   0x4u /* the inspector's page: the API's rule while it has no token */

/*
 * A query parameter a route takes. http.c refuses, with 400 bad-parameter
 * naming it, a parameter the route does not list, one without a value, and
 * one given twice unless HR_PARAM_MULTI, before the handler runs: a handler
 * reads a single-valued parameter with hr_req_query() and knows it is the
 * only one.
 */
#define HR_PARAM_MULTI                                                                             \
	0x1u                 /* may be repeated (at most HR_QUERY_VALUES each): any value matches  \
	                      */
#define HR_PARAM_PREFIX 0x2u /* `name` is a prefix taking a family ("query." for query.NAME) */
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

/* Answer with `body` (taken, freed with the request). */
void hr_req_reply_take(
    struct hr_req *, int status, const char *content_type, char *body, size_t len);
/* Answer with a JSON document (reference stolen). */
void hr_req_reply_json(struct hr_req *, int status, json_t *doc);
/* RFC 9457 problem+json. `extra` (stolen, may be NULL) adds members such as errors[]. */
void hr_req_reply_problem(struct hr_req *, int status, const char *slug, const char *title,
    const char *detail, json_t *extra);
/* The document hr_req_reply_problem() would send, without sending it (new). */
json_t *hr_req_problem(struct hr_req *, int status, const char *slug, const char *title,
    const char *detail, json_t *extra);

/*
 * Count this request's body against [server] max_unverified_bodies, the
 * bytes held at once of bodies whose sender is not yet authenticated:
 * `declared` (the Content-Length, 0 if none) now, more as a chunked body
 * grows. False when it does not fit: answer hr_req_reply_budget_full().
 * Released by hr_req_budget_release() (authenticated) or at the end.
 */
bool hr_req_budget_body(struct hr_req *, size_t declared) HR_WUR;
void hr_req_budget_release(struct hr_req *);
void hr_req_reply_budget_full(struct hr_req *); /* 503, Retry-After */

/* Suspend until hr_req_resume(); false while shutting down (answer 503 then). */
bool hr_req_suspend(struct hr_req *) HR_WUR;
void hr_req_resume(struct hr_req *); /* any thread; after replying */

/* The route tables of the modules that serve them. */
extern const struct hr_route hr_ingest_routes[];
extern const struct hr_route hr_api_routes[];
extern const struct hr_route hr_rejection_routes[];
extern const struct hr_route hr_delivery_routes[];
extern const struct hr_route hr_stream_routes[];
extern const struct hr_route hr_metrics_routes[];
extern const struct hr_route hr_ui_routes[];

#endif
