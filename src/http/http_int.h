/*
 * http_int.h - what the http*.c files share: the listener's and the
 * requests' state, which nothing above the http layer sees.
 *
 * http.c runs requests (MHD glue, routing, checks); http_req.c is what a
 * handler reads and how it answers; http_conn.c owns the
 * connection slots (the listening socket, the acceptor, deadlines and
 * eviction); http_strict.c decides whether a request is well-formed enough
 * to be routed at all. Only src/http*.c include this.
 */
#ifndef HR_HTTP_INT_H
#define HR_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "hr/dynbuf.h"
#include "hr/http.h"

/* Header values with blanks after them a request keeps trimmed copies of (hr_req_header). */
#define HR_TRIMMED_MAX 8
/* The sweeper cuts off connections past their timeouts this often. */
#define SWEEP_PERIOD_US (1000 * 1000)

/* One request, from its first callback to MHD's "completed" (http.h for what handlers see). */
struct hr_req {
	struct hr_app *app;
	struct hr_http *http;     /* the listener it came in on */
	struct hr_runtime *rt;    /* the configuration generation this request runs under */
	const struct hr_cfg *cfg; /* rt->cfg */
	const struct hr_route *route;
	const char *method;
	const char *url;
	char *instance; /* hr_http_shown_url(), made when first asked */
	struct {
		const char *value; /* as libmicrohttpd holds it */
		char *copy;        /* without its trailing blanks */
	} trimmed[HR_TRIMMED_MAX];
	size_t ntrimmed;
	const char *params[HR_MAX_PARAMS]; /* the route's {} segments, decoded (param_room) */
	const struct sockaddr *remote;
	char remote_text[64];
	int64_t started_us;
	/* the body, for routes that read one (owned, bounded by max_body) */
	struct hr_dynbuf body;
	bool body_too_big;
	size_t received; /* the body's bytes read so far, kept or dropped */
	/* an unauthenticated body (hr_req_budget_body): bytes held against the budget */
	bool budgeted, over_budget;
	size_t budget_held;
	/* handler state, freed with the request */
	void *ctx;
	void (*ctx_free)(void *);
	/* the connection and the answer being prepared */
	struct MHD_Connection *conn;
	bool suspended;
	bool counted;      /* in app->inflight, from its first suspension to its completion */
	bool receiving;    /* in app->receiving: begun, the whole request not in yet */
	bool before_close; /* begun before app->closing: it is one of those a stop finishes */
	int resp_status;
	char *resp_body;
	size_t resp_len;
	const char *resp_type;
	char resp_allow[64];
	char *resp_headers[2 * HR_REPLY_HEADERS]; /* name, value, ... (owned) */
	size_t nresp_headers;
	bool resp_close; /* close the connection after the answer */
	bool replied;
	bool answered;  /* the answer was queued to MHD (a drained refusal's, at the body's end) */
	bool framed;    /* well-formed, headers within bounds: its body's end can be found */
	bool streaming; /* hr_req_reply_stream() queued the answer itself */
	/* hr_req_reply_stream() on the read threads: queued by the worker once resumed */
	struct MHD_Response *stream_resp;
	/* On the read threads (http_reads.c): suspended by its worker, resumed when
	 * both its read thread and the writer it may have handed a write to let go. */
	bool on_reads;
	atomic_int holds;
	struct hr_req *read_next; /* queued for the read threads */
	/* ... or a stream's job there (hr_req_stream_job), instead of the handler */
	void (*read_job)(void *);
	void *read_job_arg;
	char param_room[]; /* strlen(url) + HR_MAX_PARAMS bytes (req_new) */
};

/* One open connection, from MHD's "started" to its "closed" notification. */
struct hr_conn {
	struct hr_conn *prev, *next;
	int fd;           /* MHD's; valid while the conn is on the list */
	int64_t since_us; /* monotonic: the wait for the current request began */
	bool headers_in;  /* the current request's line and headers are in */
	bool busy;        /* the whole request is in: processed or answered, exempt */
	bool evicted;     /* shut down to make room, not closed yet */
	/* the request being parsed, from MHD's URI callback (its worker thread only) */
	const char *target_end; /* where the raw target's C string ended */
	const char *target_why; /* hr_reqcheck_target() of it */
	char peer_text[64];     /* the client's address as text, formatted once ("" unknown) */
};

struct hr_http {
	struct MHD_Daemon *mhd;
	struct hr_app *app;
	const struct hr_route *const *routes; /* main's tables, borrowed */
	size_t nroutes;
	char bound[80];                   /* "127.0.0.1:8080" */
	struct sockaddr_storage bound_ss; /* the listening socket's address */
	int64_t header_timeout_us;        /* request line and headers must be in by then */
	int64_t timeout_us;               /* the whole request */
	int64_t wait_us; /* past max_connections_per_ip: the longest wait before a 503 */
	unsigned max_conns;

	pthread_mutex_t mu;   /* conns, open, evicting */
	struct hr_conn conns; /* list head */
	unsigned open;        /* handed to MHD and not closed yet */
	unsigned evicting;    /* of those, shut down to make room */

	int listen_fd;
	bool own_listen;           /* we made it (else systemd's, which we never close) */
	int wake_fd;               /* eventfd: wakes the acceptor (a slot freed, or stop) */
	atomic_bool idle_acceptor; /* the acceptor waits for a slot: wake it on close */
	pthread_t sweeper, acceptor;
	bool sweeping, accepting;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	bool stop;
	atomic_bool refusing; /* quiesced: no new connections */
	atomic_ulong cut_off, evicted;
	int64_t fd_said_us;          /* the acceptor's last "out of file descriptors" (monotonic) */
	unsigned long fd_unsaid;     /* accept() failures for it since, not logged */
	atomic_size_t unverified;    /* bytes of bodies held before their sender is authenticated */
	struct hr_http_reads *reads; /* the threads HR_ROUTE_READS handlers run on */
	struct hr_peers *peers;      /* max_connections_per_ip (NULL: no limit) */
	atomic_llong handed_us; /* the last hand-over to MHD (monotonic), for hr_http_settled */
};

/* http_body.c */
/* Whether the request's route reads a body (only those keep one). */
bool hr_req_reads_body(const struct hr_req *);
/* An upload chunk kept, counted or dropped (see there). */
void hr_req_body_append(struct hr_req *, const char *data, size_t len);
/* A request refused on its headers: read and drop its body, answer at its end. */
bool hr_req_drains_before_answer(struct hr_req *);

/* http_conn.c */
int hr_http_listen(struct hr_http *, const struct hr_http_opts *, struct hr_error *) HR_WUR;
int hr_http_conns_start(struct hr_http *, struct hr_error *) HR_WUR;
/* Stop accepting (idempotent); our own listening socket is closed, systemd's kept. */
void hr_http_accept_stop(struct hr_http *);
/* hr_http_accept_stop(), and the sweeper joined. */
void hr_http_conns_stop(struct hr_http *);
void hr_http_on_connection(
    void *cls, struct MHD_Connection *, void **socket_context, enum MHD_ConnectionNotificationCode);
struct hr_conn *hr_http_conn_of(struct MHD_Connection *); /* NULL: untracked */
/* The connection's request line and headers are in (the first request callback). */
void hr_http_conn_headers_in(struct hr_http *, struct MHD_Connection *);
/* busy: the whole request is in; not busy: its answer is done, the next one starts. */
void hr_http_conn_busy(struct hr_http *, struct MHD_Connection *, bool busy);

/* http_peers.c: connections per client address, and those waiting past the
 * limit (see there). hr_peers_give_back any thread; the rest the acceptor's. */
struct hr_peers *hr_peers_new(unsigned limit, unsigned max_conns);
void hr_peers_free(struct hr_peers *); /* NULL is fine; the waiting ones are refused */
enum hr_peer_verdict {
	HR_PEER_IN,      /* counted: hand it over */
	HR_PEER_WAITS,   /* waiting: fd is the peers' now */
	HR_PEER_REFUSED, /* no memory: answered 503 and closed */
};
/* An accepted connection: in, or behind its address's waiting ones. */
enum hr_peer_verdict hr_peers_admit(
    struct hr_peers *, int fd, const struct sockaddr_storage *, socklen_t);
/* A handed-over connection closed; true: its address has one waiting that
 * may go in now (wake the acceptor for hr_peers_admit_ready). */
bool hr_peers_give_back(struct hr_peers *, const struct sockaddr *);
unsigned hr_peers_open(struct hr_peers *, const struct sockaddr *); /* counted now */
/* Bytes of sa's unauthenticated bodies (http_body.c): take `n` if the address
 * would hold at most `share`; give them back. Any thread. */
bool hr_peers_budget_take(struct hr_peers *, const struct sockaddr *, size_t n, size_t share);
void hr_peers_budget_give(struct hr_peers *, const struct sockaddr *, size_t n);
/* The waiting connections whose address has room now, oldest first: counted,
 * unlisted and given to `admit`. How many. */
unsigned hr_peers_admit_ready(struct hr_peers *,
    void (*admit)(void *, int fd, const struct sockaddr_storage *, socklen_t), void *);
/* At a stop (the acceptor joined): every waiting connection handed over, past
 * the limit, to be served with the others; the lingering ones closed. */
unsigned hr_peers_admit_all(struct hr_peers *,
    void (*admit)(void *, int fd, const struct sockaddr_storage *, socklen_t), void *);
/* An epoll descriptor, readable when a waiting connection's client went away
 * or a lingering one sent more: then hr_peers_events(), which returns how
 * many waiting ones it closed (their slots are free). */
int hr_peers_epoll_fd(const struct hr_peers *);
unsigned hr_peers_events(struct hr_peers *);
/* The next deadline (monotonic), of a waiting connection (timeout_us after it
 * came) or a lingering one; -1: none. */
int64_t hr_peers_next_deadline(struct hr_peers *, int64_t timeout_us);
/* Lingering ones past their time closed; waiting ones past timeout_us
 * answered 503: how many of those (their slots are free). */
unsigned hr_peers_expire(struct hr_peers *, int64_t now, int64_t timeout_us);
/* The oldest waiting one answered 503 (at max_connections; `linger` false:
 * closed at once, its descriptor wanted); false: none waits. */
bool hr_peers_drop_oldest(struct hr_peers *, bool linger);
unsigned hr_peers_refuse_all(struct hr_peers *); /* at a stop: how many */
unsigned hr_peers_waiting(struct hr_peers *);    /* these three: NULL is 0 */
unsigned long hr_peers_waited(struct hr_peers *);
unsigned long hr_peers_refused(struct hr_peers *);

/* http_reads.c: `n` threads that run the handlers of HR_ROUTE_READS routes. A
 * request is submitted suspended; its thread answers it and resumes it. */
int hr_http_reads_start(struct hr_http *, unsigned n, struct hr_error *) HR_WUR;
void hr_http_reads_submit(struct hr_http *, struct hr_req *);
void hr_http_reads_queue_job(struct hr_http *, struct hr_req *); /* req->read_job set */
void hr_http_reads_stop(struct hr_http *); /* after MHD stopped; NULL reads are fine */

/* The URL as an answer may show it (a problem's "instance"): without the last
 * segment where an HR_ROUTE_SECRET_TAIL route matches it. Valid for the request. */
const char *hr_http_shown_url(struct hr_req *);
/* http_route.c: the route for method+path, its {} segments set on `req`; else
 * NULL with *status 404, or 405 and the Allow list in req->resp_allow. */
const struct hr_route *hr_http_route_find(struct hr_req *, const char *path, int *status);
/* Does a route of the request's method with HR_ROUTE_ANY_HOST take `path`? */
bool hr_http_route_any_host(struct hr_req *, const char *path);
/* Is `s` UTF-8 (jansson's check, asked only past ASCII)? */
bool hr_http_is_utf8(const char *s);

/* nosniff on every answer, and Cross-Origin-Resource-Policy on the API's. */
void hr_req_add_origin_headers(const struct hr_req *, struct MHD_Response *);

#endif
