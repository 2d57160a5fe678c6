/*
 * api_stream.c - GET /v1/stream: events as they are stored, as server-sent events.
 *
 * Each stream is a chunked answer (hr_req_reply_stream). Its reader sends the
 * events stored after the stream's cursor (filtered in SQL), oldest first,
 * read on the http layer's read threads (hr_req_stream_job: a read on the
 * connection's worker held up its webhooks while the database was slow; the
 * stream is opened there too, HR_ROUTE_READS);
 * with nothing to send it suspends its connection rather than spin. One hub
 * thread resumes waiting streams when the writer committed new events (a
 * store listener), when a stream's keepalive is due, and when the daemon is
 * stopping. A stream counts in app->inflight from start to end, so shutdown
 * waits for it: the hub resumes it, the reader sees `stopping` and ends the
 * chunked body, and only then does the count drop.
 *
 * A suspended connection is not watched by the HTTP server, so a client that goes away
 * would hold its slot until the next keepalive write fails (15 s). The hub
 * peeks at each waiting stream's socket on every round (at least every
 * STOP_POLL_US): an orderly close or a reset ends the stream at once.
 *
 * A reload ends every stream: its access was checked once, under the
 * configuration of its start, and a stream does not end by itself, so a
 * token taken out of token_file would go on being served. The client
 * reconnects (EventSource does, after `retry`) with Last-Event-ID and is
 * checked under the new configuration; nothing is missed or sent twice.
 *
 * The hub is process-wide state: route tables are static and have no init
 * hook, and the hub thread runs only while there are streams.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "hr/api.h"
#include "hr/dynbuf.h"
#include "hr/event.h"
#include "hr/jsontext.h"
#include "hr/http.h"
#include "hr/log.h"
#include "hr/store.h"
#include "hr/timefmt.h"
#include "api_int.h"

#define MAX_STREAMS  64
#define KEEPALIVE_US (15 * 1000000LL)
#define STOP_POLL_US (100 * 1000LL) /* how soon a waiting stream notices shutdown */
#define COALESCE_US  (10 * 1000LL)  /* see hub_due() */
#define BATCH        64             /* events read per turn of the reader */
#define RETRY_MS     3000

struct stream {
	struct stream *prev, *next; /* on the hub's list; under hub.mu */
	struct hr_req *req;         /* until the request completes */
	struct hr_app *app;
	const struct hr_runtime *rt; /* the request's generation (it holds the reference) */
	int fd;                      /* the connection's; MHD's, valid while suspended */
	atomic_bool gone;            /* the client closed: end with an error */
	struct hr_event_filter *f;   /* new (hr_api_event_filter_dup), with its strings */
	int64_t cursor;              /* seq of the last event sent */
	int64_t last_send_us;        /* monotonic; the reader's */
	bool ended;
	bool with_headers;  /* include=headers: each frame has the kept headers */
	bool full;          /* this turn's frames reached the page size */
	atomic_bool filled; /* fill_job() ran: fill_ok says how */
	bool fill_ok;
	struct hr_dynbuf buf; /* frames not yet handed to MHD, see append_frame() */
	size_t off;           /* ... of which this much was */
	/* under hub.mu */
	uint64_t seen_gen;    /* hub.gen when the reader last read the store */
	int64_t keepalive_at; /* monotonic, while waiting */
	bool waiting;         /* suspended by the reader */
	atomic_int refs;      /* the request and the response */
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	struct stream list;
	unsigned n;
	uint64_t gen; /* commits that stored events */
	bool running; /* the hub thread */
} hub = { .mu = PTHREAD_MUTEX_INITIALIZER };
static pthread_once_t hub_once = PTHREAD_ONCE_INIT;

static void
hub_init(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&hub.cv, &ca);
	pthread_condattr_destroy(&ca);
	hub.list.next = hub.list.prev = &hub.list;
}

/* The store listener: on the writer thread, after a commit that stored events. */
static void
hub_notify(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&hub.mu);
	hub.gen++;
	pthread_cond_signal(&hub.cv);
	pthread_mutex_unlock(&hub.mu);
}

/* New events wake a stream at most every COALESCE_US: under load each turn of
 * its reader sends many events instead of one query and one write per commit. */
static bool
hub_due(const struct stream *s, int64_t now, int64_t last_round)
{
	return atomic_load(&s->app->stopping) || now >= s->keepalive_at ||
	    (s->seen_gen != hub.gen && now >= last_round + COALESCE_US) ||
	    !hr_app_runtime_is_current(s->app, s->rt);
}

/* Has the client of a suspended stream closed its end (or reset it)? */
static bool
peer_gone(int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/*
 * Resume the waiting streams that have something to do, outside the lock.
 * A suspended request cannot complete, so it stays valid until resumed.
 */
static void *
hub_main(void *arg)
{
	struct hr_req *wake[MAX_STREAMS];
	int64_t last_round = 0;

	(void)arg;
	pthread_mutex_lock(&hub.mu);
	while (hub.n > 0) {
		int64_t now = hr_time_mono_us(), next = now + STOP_POLL_US;
		size_t n = 0;
		struct timespec ts;

		for (struct stream *s = hub.list.next; s != &hub.list; s = s->next) {
			if (!s->waiting)
				continue;
			if (s->fd >= 0 && peer_gone(s->fd)) {
				atomic_store(&s->gone, true);
				s->waiting = false;
				wake[n++] = s->req;
			} else if (hub_due(s, now, last_round)) {
				s->waiting = false;
				wake[n++] = s->req;
			} else if (s->seen_gen != hub.gen && last_round + COALESCE_US < next) {
				next = last_round + COALESCE_US;
			} else if (s->keepalive_at < next) {
				next = s->keepalive_at;
			}
		}
		if (n > 0) {
			last_round = now;
			pthread_mutex_unlock(&hub.mu);
			for (size_t i = 0; i < n; i++)
				hr_req_resume(wake[i]);
			pthread_mutex_lock(&hub.mu);
			continue;
		}
		ts.tv_sec = next / 1000000;
		ts.tv_nsec = (next % 1000000) * 1000;
		pthread_cond_timedwait(&hub.cv, &hub.mu, &ts);
	}
	hub.running = false;
	pthread_mutex_unlock(&hub.mu);
	return NULL;
}

static bool
hub_start(void)
{
	pthread_attr_t attr;
	pthread_t t;
	bool ok;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ok = pthread_create(&t, &attr, hub_main, NULL) == 0;
	pthread_attr_destroy(&attr);
	return ok;
}

/* ---- one stream ---- */

static void
stream_free(struct stream *s)
{
	free(s->f);
	hr_dynbuf_free(&s->buf);
	free(s);
}

/* MHD's free callback for the response, and the request's end. */
static void
stream_release(void *p)
{
	struct stream *s = p;

	if (atomic_fetch_sub(&s->refs, 1) == 1)
		stream_free(s);
}

/*
 * One SSE frame per event; compact JSON has no newline, so one data line.
 * A turn's frames are bounded like a page of events (HR_API_PAYLOAD_PAGE):
 * a frame that would take a buffer holding others past it waits for the
 * next turn (the cursor stays before it), and one frame alone always fits
 * (stream_new() sets the cap), so nothing is dropped and nothing grows
 * without a limit.
 */
static int
append_frame(const struct hr_event_row *r, void *arg)
{
	struct stream *s = arg;
	json_t *o;
	char *text;
	int rc;

	if (s->full)
		return HR_OK;
	o = hr_api_event_json(r);
	if (s->with_headers)
		json_object_set_new(
		    o, "headers", json_loads(r->headers_json, JSON_ALLOW_NUL, NULL));
	text = json_dumps(o, JSON_COMPACT | hr_json_reals(o));
	json_decref(o);
	if (text == NULL)
		return HR_ENOMEM;
	if (s->buf.len > 0 && s->buf.len + strlen(text) + 64 > HR_API_PAYLOAD_PAGE) {
		s->full = true; /* the rest next turn */
		free(text);
		return HR_OK;
	}
	rc = hr_dynbuf_addf(
	    &s->buf, "id: %lld\nevent: event\ndata: %s\n\n", (long long)r->seq, text);
	free(text);
	if (rc != HR_OK)
		return rc;
	s->cursor = r->seq;
	return HR_OK;
}

/* Frames for what was stored since the cursor, or a keepalive when one is due. */
static bool
stream_fill(struct stream *s)
{
	struct hr_error err = { .field = "" };
	int64_t now = hr_time_mono_us();

	hr_dynbuf_shrink(&s->buf, 0);
	s->off = 0;
	s->full = false;
	if (atomic_load(&s->app->stopping) || !hr_app_runtime_is_current(s->app, s->rt)) {
		s->ended = true;
		return true;
	}
	pthread_mutex_lock(&hub.mu);
	s->seen_gen = hub.gen; /* a commit after this read makes hub_due() true */
	pthread_mutex_unlock(&hub.mu);
	if (hr_store_events_after(s->app->store, s->f, s->cursor, append_frame, s, &err) != HR_OK) {
		log_warnx("stream: %s: %s", hr_req_peer_text(s->req), err.msg);
		return false; /* the client resumes from the last id it got */
	}
	if (s->buf.len == 0 && now - s->last_send_us >= KEEPALIVE_US &&
	    hr_dynbuf_adds(&s->buf, ": keepalive\n\n") != HR_OK)
		return false;
	if (s->buf.len > 0)
		s->last_send_us = now;
	return true;
}

/* On a read thread, the connection suspended: stream_read() runs again after. */
static void
fill_job(void *arg)
{
	struct stream *s = arg;

	s->fill_ok = stream_fill(s);
	atomic_store(&s->filled, true);
}

/*
 * Whether stream_fill() ran; false when it runs now on a read thread (the
 * reader returns 0 and is called again after): a store read on the worker
 * would hold up every webhook of the worker while the database is slow.
 */
static bool
filled(struct stream *s, bool *ok)
{
	if (atomic_exchange(&s->filled, false)) {
		*ok = s->fill_ok;
		return true;
	}
	if (hr_req_stream_job(s->req, fill_job, s))
		return false;
	*ok = stream_fill(s); /* stopping: the stream ends, with no read */
	return true;
}

enum wait { WAIT_SUSPENDED, WAIT_AGAIN, WAIT_END };

/* Suspend unless events came in meanwhile; checked under the hub's lock so
 * that neither a commit nor shutdown is missed. */
static enum wait
stream_wait(struct stream *s)
{
	enum wait w = WAIT_SUSPENDED;

	pthread_mutex_lock(&hub.mu);
	if (atomic_load(&s->app->stopping)) {
		w = WAIT_END;
	} else if (s->seen_gen != hub.gen) {
		w = WAIT_AGAIN;
	} else if (!hr_req_suspend(s->req)) {
		w = WAIT_END;
	} else {
		s->waiting = true;
		s->keepalive_at = s->last_send_us + KEEPALIVE_US;
	}
	pthread_mutex_unlock(&hub.mu);
	return w;
}

/* The answer's reader: 0 only after suspending, so it is never polled. */
static ssize_t
stream_read(void *cls, char *out, size_t max)
{
	struct stream *s = cls;
	bool ok;

	if (atomic_load(&s->gone))
		return HR_STREAM_ERROR;
	for (;;) {
		if (s->off < s->buf.len) {
			size_t n = s->buf.len - s->off < max ? s->buf.len - s->off : max;

			memcpy(out, s->buf.p + s->off, n);
			s->off += n;
			return (ssize_t)n;
		}
		if (s->ended)
			return HR_STREAM_END;
		if (!filled(s, &ok))
			return 0;
		if (!ok)
			return HR_STREAM_ERROR;
		if (s->buf.len > 0 || s->ended)
			continue;
		switch (stream_wait(s)) {
		case WAIT_SUSPENDED:
			return 0;
		case WAIT_END:
			s->ended = true;
			break;
		case WAIT_AGAIN:
			break;
		}
	}
}

/* The request completed (or was cut off): leave the hub, then the count. */
static void
stream_close(void *p)
{
	struct stream *s = p;
	struct hr_app *app = s->app;

	pthread_mutex_lock(&hub.mu);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	hub.n--;
	s->req = NULL;
	pthread_cond_signal(&hub.cv); /* the last one ends the hub thread */
	pthread_mutex_unlock(&hub.mu);
	stream_release(s);
	atomic_fetch_sub(&app->inflight, 1); /* shutdown may go on from here */
}

enum refusal { REFUSE_NONE, REFUSE_STOPPING, REFUSE_FULL, REFUSE_INTERNAL };

/* Join the hub; counted in app->inflight from here to stream_close(). */
static enum refusal
stream_register(struct stream *s)
{
	enum refusal why = REFUSE_NONE;

	atomic_fetch_add(&s->app->inflight, 1);
	pthread_once(&hub_once, hub_init);
	pthread_mutex_lock(&hub.mu);
	if (atomic_load(&s->app->stopping))
		why = REFUSE_STOPPING;
	else if (hub.n >= MAX_STREAMS)
		why = REFUSE_FULL;
	else if (hr_store_add_listener(s->app->store, hub_notify, NULL) != HR_OK)
		why = REFUSE_INTERNAL;
	else if (!hub.running && !hub_start())
		why = REFUSE_INTERNAL;
	if (why == REFUSE_NONE) {
		hub.running = true;
		s->next = &hub.list;
		s->prev = hub.list.prev;
		hub.list.prev->next = s;
		hub.list.prev = s;
		hub.n++;
	}
	pthread_mutex_unlock(&hub.mu);
	if (why != REFUSE_NONE)
		atomic_fetch_sub(&s->app->inflight, 1);
	return why;
}

static void
reply_refusal(struct hr_req *req, enum refusal why)
{
	if (why == REFUSE_STOPPING) {
		hr_req_reply_problem(req, 503, "shutting-down", "Service Unavailable",
		    "hookrelay is shutting down", NULL);
		return;
	}
	(void)hr_req_set_header(req, "Retry-After", "5");
	hr_req_reply_problem(req, 503, "overloaded", "Service Unavailable",
	    why == REFUSE_FULL ? "too many open streams; retry later" : "cannot start a stream",
	    NULL);
}

/* ---- parameters ---- */

static bool
param_filter(struct hr_req *req, struct hr_event_filter *f)
{
	f->limit = BATCH;
	return hr_api_param_event_filter(req, f);
}

/* Rows come newest first: the last one seen is the oldest. */
static int
note_seq(const struct hr_event_row *r, void *arg)
{
	*(int64_t *)arg = r->seq;
	return HR_OK;
}

/* The seq of the `n`th newest event matching `f` (of the oldest if fewer); 0: none. */
static bool
nth_newest_seq(struct hr_req *req, const struct hr_event_filter *f, int64_t n, int64_t *out)
{
	struct hr_event_filter q = *f;
	struct hr_error err = { .field = "" };
	int64_t next;
	int rc;

	*out = 0;
	q.limit = (unsigned)n;
	rc = hr_store_list_events(hr_req_app(req)->store, &q, note_seq, out, &next, &err);
	if (rc != HR_OK)
		hr_api_reply_store_error(req, rc, &err);
	return rc == HR_OK;
}

/*
 * A position past the newest event is one the log never had, or had before a
 * restore from a backup (which hands the same ids out again): the stream goes
 * on from the newest event, so what is stored next is sent, not skipped.
 */
static bool
not_past_the_log(struct hr_req *req, int64_t *cursor)
{
	struct hr_event_filter none = { .limit = 1 };
	int64_t newest;

	if (!nth_newest_seq(req, &none, 1, &newest))
		return false;
	if (*cursor > newest)
		*cursor = newest;
	return true;
}

/*
 * `after` as an event id: the stream starts after that event. A client that
 * listed the newest events first (the inspector) goes on from the newest it
 * shows: with `backlog` one page long, more than a page stored between its
 * two requests was in neither (a review). Gone (pruned), it is a 404.
 */
static bool
after_event(struct hr_req *req, const char *id, int64_t *out)
{
	struct hr_error err = { .field = "" };
	int rc;

	*out = -1;
	rc = hr_store_get_event(hr_req_app(req)->store, id, note_seq, out, &err);
	if (rc == HR_ENOTFOUND) {
		hr_req_reply_problem(req, 404, "not-found", "Not Found",
		    "`after` names no stored event", json_pack("{s:s}", "parameter", "after"));
		return false;
	}
	if (rc != HR_OK)
		hr_api_reply_store_error(req, rc, &err);
	return rc == HR_OK;
}

/*
 * Where to start: Last-Event-ID (a reconnecting EventSource sends the last id
 * it got, newer than the `after` of its URL), else `after` (a position, or an
 * event id), else `backlog` matching events back, else now.
 */
static bool
param_cursor(struct hr_req *req, const struct hr_event_filter *f, int64_t *out)
{
	const char *last = hr_req_header(req, "Last-Event-ID"), *after;
	struct hr_event_filter none = { .limit = 1 };
	int64_t backlog;
	char *end;

	*out = 0;
	if (last != NULL) {
		errno = 0;
		*out = strtoll(last, &end, 10);
		if (*last >= '0' && *last <= '9' && *end == '\0' && errno == 0)
			return not_past_the_log(req, out);
		hr_req_reply_problem(req, 400, "bad-parameter", "Bad Last-Event-ID",
		    "the Last-Event-ID header must be an event id this stream sent",
		    json_pack("{s:s}", "parameter", "Last-Event-ID"));
		return false;
	}
	after = hr_req_query(req, "after");
	if (after != NULL && strncmp(after, "evt_", 4) == 0) {
		if (!after_event(req, after, out))
			return false;
	} else if (!hr_api_param_uint(req, "after", 0, INT64_MAX, -1, out)) {
		return false;
	}
	if (!hr_api_param_uint(req, "backlog", 0, MAX_LIMIT, 0, &backlog))
		return false;
	if (*out >= 0)
		return not_past_the_log(req, out);
	if (backlog == 0)
		return nth_newest_seq(req, &none, 1, out); /* from now on */
	if (!nth_newest_seq(req, f, backlog, out))
		return false;
	*out = *out > 0 ? *out - 1 : 0;
	return true;
}

static struct stream *
stream_new(struct hr_req *req, const struct hr_event_filter *f, int64_t cursor)
{
	struct stream *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->req = req;
	s->app = hr_req_app(req);
	s->rt = hr_req_runtime(req);
	s->fd = hr_req_socket(req);
	s->f =
	    hr_api_event_filter_dup(f); /* the strings are the request's: copied, they outlive it */
	s->cursor = cursor;
	s->last_send_us = hr_time_mono_us();
	atomic_init(&s->refs, 1);
	/* A page of frames and one more of any size: see append_frame(). */
	hr_dynbuf_init(&s->buf, 0, HR_API_PAYLOAD_PAGE + 2 * hr_req_cfg(req)->max_body + 65536);
	/*
	 * The first bytes go out at once: the client sees the stream open. They
	 * carry the cursor as the event id, so a client that reconnects before any
	 * event came (a reload ends every stream) resumes from here, not from "now".
	 */
	if (s->f == NULL ||
	    hr_dynbuf_addf(&s->buf, "retry: %d\nid: %lld\n\n", RETRY_MS, (long long)cursor) !=
	        HR_OK) {
		stream_free(s);
		return NULL;
	}
	return s;
}

/* The stream as a chunked answer; the answer holds a reference of its own. */
static bool
queue_stream(struct hr_req *req, struct stream *s)
{
	atomic_fetch_add(&s->refs, 1); /* the answer's, dropped by stream_release() */
	(void)hr_req_set_header(req, "X-Accel-Buffering", "no"); /* nginx: pass each frame on */
	return hr_req_reply_stream(req, 200, "text/event-stream", stream_read, s, stream_release) ==
	    HR_OK;
}

static const struct hr_param stream_params[] = { HR_API_EVENT_FILTER_PARAMS, { "after", 0 },
	{ "backlog", 0 }, { "include", 0 }, { NULL, 0 } };

/* include=headers: each frame also has the request headers kept with its event
 * (hookctl listen forwards them with the body, one request per event fewer). */
static bool
param_include(struct hr_req *req, bool *with_headers)
{
	const char *include = hr_req_query(req, "include");

	*with_headers = include != NULL && strcmp(include, "headers") == 0;
	if (include != NULL && !*with_headers) {
		hr_api_bad_param(req, "include", "expected headers");
		return false;
	}
	return true;
}

static int
open_stream(struct hr_req *req)
{
	struct hr_event_filter f = { .limit = BATCH };
	struct stream *s;
	enum refusal why;
	int64_t cursor;
	bool with_headers;

	if (!param_filter(req, &f) || !param_include(req, &with_headers) ||
	    !param_cursor(req, &f, &cursor))
		return HR_OK;
	if ((s = stream_new(req, &f, cursor)) == NULL)
		return HR_ENOMEM;
	s->with_headers = with_headers;
	if ((why = stream_register(s)) != REFUSE_NONE) {
		stream_free(s);
		reply_refusal(req, why);
		return HR_OK;
	}
	hr_req_set_ctx(req, s, stream_close); /* from here on the request's end closes it */
	if (!queue_stream(req, s))
		return HR_ENOMEM;
	log_debug("stream: opened by %s after seq %lld", hr_req_peer_text(req), (long long)cursor);
	return HR_OK;
}

const struct hr_route hr_stream_routes[] = {
	{ "GET", "/v1/stream", HR_ROUTE_API | HR_ROUTE_READS, NULL, open_stream, stream_params },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
