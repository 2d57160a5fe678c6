/*
 * api_metrics.c - GET /metrics (Prometheus text format 0.0.4) and GET /readyz.
 *
 * /metrics reads each counter where it is kept: per source in the runtime
 * (a reload carries them over), per destination in the forwarder (a kept
 * destination keeps them), the writer's histograms in the store. Labels are
 * only configuration names, kind names, fixed status codes and outcome
 * words, so the number of series is bounded by the configuration. The page
 * is built in a buffer bounded by METRICS_MAX; nothing here locks a hot path.
 *
 * /readyz is for load balancers and so, like /healthz, outside the API's
 * access rule: 200 while the writer answers, the forwarder loop turns and
 * the disk has room; otherwise 503. Which checks failed, and the figures
 * behind them (free disk bytes, queue depth), only go to a client the API
 * itself would serve: a load balancer needs the status, not the details.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/api.h"
#include "hr/event.h"
#include "hr/forward.h"
#include "hr/http.h"
#include "hr/jarena.h"
#include "hr/log.h"
#include "hr/metrics.h"
#include "hr/outbox.h"
#include "hr/ratelimit.h"
#include "hr/store.h"
#include "hr/timefmt.h"
#include "api_int.h"

#define METRICS_MAX              (8 * 1024 * 1024)
#define METRICS_TYPE             "text/plain; version=0.0.4; charset=utf-8"
#define READY_WRITER_BUSY_US     (INT64_C(2) * 1000000)
#define READY_FORWARDER_STALE_US (INT64_C(5) * 1000000) /* the loop turns at least every second */
#define US                       1000000

/* ---- ingest ---- */

/* Bodies kept for GET /v1/rejections (a Daily source's answered 200 too). */
static unsigned long
kept_rejections(const struct hr_source_counters *c)
{
	unsigned long n = 0;

	for (size_t k = 0; k < HR_REQ_KIND_SLOTS; k++)
		n += atomic_load_explicit(&c->rejected[k], memory_order_relaxed);
	return n;
}

/* Requests answered 4xx. */
static unsigned long
refused_requests(const struct hr_source_counters *c)
{
	unsigned long n = 0;

	for (size_t k = 0; k < HR_REQ_KIND_SLOTS; k++)
		for (size_t s = 0; s < HR_REQ_STATUS_SLOTS; s++)
			if (hr_request_status_label(s)[0] == '4')
				n += atomic_load_explicit(
				    &c->requests.n[k][s], memory_order_relaxed);
	return n;
}

/*
 * Per-source counters, listed for every source at 0 too (a series born at its
 * first value gives increase() nothing: an alert missed the first refused
 * webhook, review R9): those struct hr_source_counters keeps as they are, and
 * sums of its tables (`count`).
 */
static const struct {
	const char *name, *help;
	size_t off; /* an atomic_ulong of struct hr_source_counters, without `count` */
	unsigned long (*count)(const struct hr_source_counters *);
	bool unknown; /* a sample for source _unknown too: no [source] has the name */
} source_counters[] = {
	{ "hookrelay_rejections_total",
	    "Refused bodies kept for GET /v1/rejections (400 not JSON, 413 over the JSON limits,"
	    " 422 invalid for their kind; on a Daily source answered 200).",
	    0, kept_rejections, false },
	{ "hookrelay_refused_total",
	    "Requests to POST /hooks/{source} answered 4xx: not stored as events (401, 404,"
	    " 413, 415, 422, 429...); source _unknown: no [source] has the name.",
	    0, refused_requests, true },
	{ "hookrelay_auth_failures_total",
	    "Requests to a source refused 401 because they did not authenticate.",
	    offsetof(struct hr_source_counters, auth_failures), NULL, false },
	{ "hookrelay_rate_limited_total", "Requests to a source refused 429 by its rate limit.",
	    offsetof(struct hr_source_counters, rate_limited), NULL, false },
	{ "hookrelay_duplicates_total",
	    "Webhooks answered 200 as duplicates of an event already stored (dedup).",
	    offsetof(struct hr_source_counters, duplicates), NULL, false },
	{ "hookrelay_probes_total",
	    "Daily verification probes ({\"test\":\"test\"}) answered 200 and not stored.",
	    offsetof(struct hr_source_counters, probes), NULL, false },
};

static unsigned long
source_counter(const struct hr_source_state *st, size_t c)
{
	if (source_counters[c].count != NULL)
		return source_counters[c].count(st->counters);
	return atomic_load((const atomic_ulong *)(const void *)((const char *)st->counters +
	    source_counters[c].off));
}

static void
render_requests(struct hr_dynbuf *b, struct hr_req *req)
{
	const struct hr_cfg *cfg = hr_req_cfg(req);
	struct hr_label l[3] = { { "source", NULL }, { "kind", NULL }, { "status", NULL } };

	hr_metric_head(b, "hookrelay_requests_total", "counter",
	    "Answers to POST /hooks/{source} by source, event kind (none: not decoded) and HTTP"
	    " status; source _unknown: no [source] has the name.");
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct hr_source_state *st =
		    hr_runtime_source_state(hr_req_runtime(req), &cfg->sources[i]);

		l[0].value = cfg->sources[i].name;
		for (size_t k = 0; k < HR_REQ_KIND_SLOTS; k++) {
			for (size_t s = 0; s < HR_REQ_STATUS_SLOTS; s++) {
				unsigned long v = atomic_load_explicit(
				    &st->counters->requests.n[k][s], memory_order_relaxed);

				if (v == 0)
					continue;
				l[1].value = hr_request_kind_label(k);
				l[2].value = hr_request_status_label(s);
				hr_metric_sample(
				    b, "hookrelay_requests_total", l, 3, (int64_t)v, 1);
			}
		}
	}
	l[0].value = "_unknown";
	l[1].value = "none";
	l[2].value = "404";
	if (atomic_load(&hr_req_app(req)->metrics.unknown_source) >
	    0) /* "only series that occurred" */
		hr_metric_sample(b, "hookrelay_requests_total", l, 3,
		    (int64_t)atomic_load(&hr_req_app(req)->metrics.unknown_source), 1);
}

/* Refused bodies kept for GET /v1/rejections, by kind ("none": not JSON, a 400). */
static void
render_rejected(struct hr_dynbuf *b, struct hr_req *req)
{
	const struct hr_cfg *cfg = hr_req_cfg(req);
	struct hr_label l[2] = { { "source", NULL }, { "kind", NULL } };

	hr_metric_head(b, "hookrelay_rejected_total", "counter",
	    "Bodies refused (422 invalid for their kind; kind none: 400 not JSON, 413 over the"
	    " JSON limits) and kept for"
	    " GET /v1/rejections, by source and kind.");
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct hr_source_state *st =
		    hr_runtime_source_state(hr_req_runtime(req), &cfg->sources[i]);

		l[0].value = cfg->sources[i].name;
		for (size_t k = 0; k < HR_REQ_KIND_SLOTS; k++) {
			unsigned long v =
			    atomic_load_explicit(&st->counters->rejected[k], memory_order_relaxed);

			if (v == 0)
				continue;
			l[1].value = hr_request_kind_label(k);
			hr_metric_sample(b, "hookrelay_rejected_total", l, 2, (int64_t)v, 1);
		}
	}
}

/* Always listed, at 0 too: a series born at its first 503 gives rate() nothing. */
static void
render_not_stored(struct hr_dynbuf *b, struct hr_req *req)
{
	const struct hr_cfg *cfg = hr_req_cfg(req);
	struct hr_label l[2] = { { "source", NULL }, { "reason", NULL } };

	hr_metric_head(b, "hookrelay_ingest_not_stored_total", "counter",
	    "Webhooks answered 503 and not stored, by source and why: the write failed (storage),"
	    " [storage] queue_max (queue_full), hookrelay stopping (stopping). Tavus and PailFlow"
	    " do not retry: each is an event lost unless resent.");
	for (size_t i = 0; i < cfg->nsources; i++) {
		struct hr_source_state *st =
		    hr_runtime_source_state(hr_req_runtime(req), &cfg->sources[i]);

		l[0].value = cfg->sources[i].name;
		for (size_t r = 0; r < HR_NOT_STORED_REASONS; r++) {
			l[1].value = hr_not_stored_labels[r];
			hr_metric_sample(b, "hookrelay_ingest_not_stored_total", l, 2,
			    (int64_t)atomic_load(&st->counters->not_stored[r]), 1);
		}
	}
}

static void
render_per_address(struct hr_dynbuf *b, struct hr_http *http)
{
	struct hr_http_waits w = { 0, 0, 0 };

	if (http != NULL)
		hr_http_per_address(http, &w);
	const struct {
		const char *name, *type, *help;
		int64_t v;
	} m[] = {
		{ "hookrelay_connections_waiting", "gauge",
		    "Connections accepted past [server] max_connections_per_ip, waiting for one of "
		    "their address's to close.",
		    (int64_t)w.waiting },
		{ "hookrelay_connections_waited_total", "counter",
		    "Connections that had to wait past [server] max_connections_per_ip.",
		    (int64_t)w.waited },
		{ "hookrelay_connections_refused_total", "counter",
		    "Connections answered 503 while waiting past [server] max_connections_per_ip, "
		    "their request unread: after request_timeout or at max_connections.",
		    (int64_t)w.refused },
	};

	for (size_t i = 0; i < HR_ARRAY_LEN(m); i++) {
		hr_metric_head(b, m[i].name, m[i].type, m[i].help);
		hr_metric_sample(b, m[i].name, NULL, 0, m[i].v, 1);
	}
}

static void
render_ingest(struct hr_dynbuf *b, struct hr_req *req)
{
	const struct hr_cfg *cfg = hr_req_cfg(req);
	struct hr_http *http = atomic_load(&hr_req_app(req)->http);
	struct hr_hist_snap h;

	render_requests(b, req);
	render_not_stored(b, req);
	render_rejected(b, req);
	for (size_t c = 0; c < HR_ARRAY_LEN(source_counters); c++) {
		hr_metric_head(b, source_counters[c].name, "counter", source_counters[c].help);
		for (size_t i = 0; i < cfg->nsources; i++) {
			struct hr_label l = { "source", cfg->sources[i].name };

			hr_metric_sample(b, source_counters[c].name, &l, 1,
			    (int64_t)source_counter(
			        hr_runtime_source_state(hr_req_runtime(req), &cfg->sources[i]), c),
			    1);
		}
		if (source_counters[c].unknown)
			hr_metric_sample(b, source_counters[c].name,
			    &(struct hr_label){ "source", "_unknown" }, 1,
			    (int64_t)atomic_load(&hr_req_app(req)->metrics.unknown_source), 1);
	}
	hr_metric_head(b, "hookrelay_slow_clients_cut_off_total", "counter",
	    "Connections shut down for not sending their headers within [server] header_timeout "
	    "or their request within request_timeout.");
	hr_metric_sample(b, "hookrelay_slow_clients_cut_off_total", NULL, 0,
	    http != NULL ? (int64_t)hr_http_cut_off(http) : 0, 1);
	hr_metric_head(b, "hookrelay_connections_evicted_total", "counter",
	    "Connections shut down at [server] max_connections to admit a new one; each had not "
	    "sent a whole request.");
	hr_metric_sample(b, "hookrelay_connections_evicted_total", NULL, 0,
	    http != NULL ? (int64_t)hr_http_evicted(http) : 0, 1);
	render_per_address(b, http);
	hr_hist_snap(&hr_req_app(req)->metrics.ack_latency, &h);
	hr_metric_head(b, hr_hist_ack_latency.name, "histogram", hr_hist_ack_latency.help);
	hr_metric_histogram(b, &hr_hist_ack_latency, NULL, 0, &h);
}

/* ---- the store ---- */

static void
gauge(struct hr_dynbuf *b, const char *name, const char *help, int64_t v, int64_t scale)
{
	hr_metric_head(b, name, "gauge", help);
	hr_metric_sample(b, name, NULL, 0, v, scale);
}

static void
render_pruned(struct hr_dynbuf *b, struct hr_store *store)
{
	struct hr_prune_stats ps;

	hr_store_prune_stats(store, &ps);
	{
		const struct {
			const char *what;
			uint64_t n;
		} rows[] = { { "payloads", ps.payloads }, { "events", ps.events },
			{ "sessions", ps.sessions }, { "rejections", ps.rejections } };

		hr_metric_head(b, "hookrelay_pruned_total", "counter",
		    "What pruning passes removed: event payloads, event rows, sessions, rejected "
		    "bodies.");
		for (size_t i = 0; i < HR_ARRAY_LEN(rows); i++) {
			struct hr_label l = { "what", rows[i].what };

			hr_metric_sample(b, "hookrelay_pruned_total", &l, 1, (int64_t)rows[i].n, 1);
		}
	}
	hr_metric_head(b, "hookrelay_prune_passes_total", "counter",
	    "Pruning passes committed ([storage] prune_interval).");
	hr_metric_sample(b, "hookrelay_prune_passes_total", NULL, 0, (int64_t)ps.passes, 1);
	hr_metric_head(b, "hookrelay_rejections_dropped_total", "counter",
	    "Rejected bodies deleted to keep the newest [storage] rejections_max (not by age or"
	    " max_size: those are hookrelay_pruned_total{what=\"rejections\"}).");
	hr_metric_sample(
	    b, "hookrelay_rejections_dropped_total", NULL, 0, (int64_t)ps.rejections_dropped, 1);
}

/* How long the writer's batch under way has been writing; 0 while it is idle. */
static int64_t
batch_age_us(const struct hr_store_stats *st)
{
	return st->busy_since_us != 0 ? hr_time_mono_us() - st->busy_since_us : 0;
}

/*
 * Whether the database answers reads, as far as the store knows: while it does
 * not (PostgreSQL away), a scrape leaves out what it would read there. Each
 * read could wait [storage] statement_timeout, and one a destination, one
 * after another, made a scrape take minutes: Prometheus gave up, and the whole
 * page, the in-memory counters with it, was lost when it was needed most.
 */
static bool
store_answers(struct hr_store *store)
{
	struct hr_store_health h;

	hr_store_health(store, &h);
	return h.state == HR_DB_OK;
}

/* The store's part of the page; false: a read of the database failed. */
static bool
render_store(struct hr_dynbuf *b, struct hr_store *store, bool read_db)
{
	bool read_ok = true;

	struct hr_hist_snap batch, commit;
	struct hr_store_stats st;
	struct hr_store_size sz;
	uint64_t disk = 0;

	hr_store_writer_histograms(store, &batch, &commit);
	hr_metric_head(
	    b, hr_hist_commit_batch_size.name, "histogram", hr_hist_commit_batch_size.help);
	hr_metric_histogram(b, &hr_hist_commit_batch_size, NULL, 0, &batch);
	hr_metric_head(b, hr_hist_commit_duration.name, "histogram", hr_hist_commit_duration.help);
	hr_metric_histogram(b, &hr_hist_commit_duration, NULL, 0, &commit);
	hr_store_stats(store, &st);
	gauge(b, "hookrelay_writer_queue_depth",
	    "Writes waiting for the writer ([storage] queue_max); the watchdog's pings are not "
	    "counted.",
	    st.queued, 1);
	/* The histograms see a batch when it ends: a stuck one shows only here. */
	gauge(b, "hookrelay_writer_batch_age_seconds",
	    "How long the batch under way has been writing; 0 while the writer is idle.",
	    batch_age_us(&st), US);
	if (read_db && (read_ok = hr_store_size(store, &sz) == HR_OK)) {
		gauge(b, "hookrelay_db_size_bytes",
		    "The database file's pages (page_count * page_size) plus its WAL file.",
		    sz.file_bytes + sz.wal_bytes, 1);
		gauge(b, "hookrelay_db_free_bytes",
		    "Of the database file, pages on the freelist (reused, or given back by "
		    "pruning).",
		    sz.free_bytes, 1);
		gauge(b, "hookrelay_storage_size_hold_timestamp_seconds",
		    "Since when nothing received is pruned by [storage] max_size, pending "
		    "deliveries holding the database over it; 0: no hold.",
		    sz.size_hold_us, US);
	}
	/* PostgreSQL: the database's disk is the server's (UINT64_MAX), not this node's. */
	if (hr_store_disk_free(store, &disk) == HR_OK && disk != UINT64_MAX)
		gauge(b, "hookrelay_disk_free_bytes",
		    "Space available on the database's file system ([storage] min_free_space).",
		    (int64_t)disk, 1);
	render_pruned(b, store);
	return read_ok;
}

/* ---- the forwarder ---- */

struct dest_view {
	const struct hr_dest_metrics_snap *m;
	bool have_row; /* the store answered */
	struct hr_destination_row row;
};

static void
render_outcomes(struct hr_dynbuf *b, const struct dest_view *v, size_t n)
{
	hr_metric_head(b, "hookrelay_deliveries_total", "counter",
	    "Delivery attempts by destination and outcome: succeeded, retried (another attempt is"
	    " scheduled), failed, dead (no retry left), gone (410), blocked (SSRF guard).");
	for (size_t i = 0; i < n; i++) {
		for (size_t o = 0; o < HR_OUTCOME_COUNT; o++) {
			struct hr_label l[2] = { { "destination", v[i].m->name },
				{ "outcome",
				    hr_attempt_outcome_name((enum hr_attempt_outcome)o) } };

			hr_metric_sample(
			    b, "hookrelay_deliveries_total", l, 2, (int64_t)v[i].m->outcomes[o], 1);
		}
	}
}

static int64_t
polls_of(const struct hr_dest_metrics_snap *m)
{
	return (int64_t)m->polls;
}

static int64_t
poll_cpu_of(const struct hr_dest_metrics_snap *m)
{
	return (int64_t)m->poll_cpu_us;
}

static int64_t
poll_wall_of(const struct hr_dest_metrics_snap *m)
{
	return (int64_t)m->poll_us;
}

/* How much of the forwarder's thread looking for due deliveries takes (docs/forwarding.md). */
static const struct {
	const char *name, *help;
	int64_t (*value)(const struct hr_dest_metrics_snap *);
	int64_t scale;
} poll_counters[] = {
	{ "hookrelay_forwarder_polls_total",
	    "Times the forwarder looked in the store for a destination's due deliveries.", polls_of,
	    1 },
	{ "hookrelay_forwarder_poll_cpu_seconds_total",
	    "CPU time of the forwarder's thread in those polls; an ordered destination's poll "
	    "walks its sessions' heads, about 2 ms on SQLite.",
	    poll_cpu_of, US },
	{ "hookrelay_forwarder_poll_seconds_total",
	    "Wall-clock time of those looks, which the forwarder's thread waits for; on "
	    "PostgreSQL over a network mostly one round trip each.",
	    poll_wall_of, US },
};

static void
render_polls(struct hr_dynbuf *b, const struct dest_view *v, size_t n)
{
	for (size_t c = 0; c < HR_ARRAY_LEN(poll_counters); c++) {
		hr_metric_head(b, poll_counters[c].name, "counter", poll_counters[c].help);
		for (size_t i = 0; i < n; i++) {
			struct hr_label l = { "destination", v[i].m->name };

			hr_metric_sample(b, poll_counters[c].name, &l, 1,
			    poll_counters[c].value(v[i].m), poll_counters[c].scale);
		}
	}
}

static void
render_dest_histograms(struct hr_dynbuf *b, const struct dest_view *v, size_t n)
{
	hr_metric_head(
	    b, hr_hist_delivery_latency.name, "histogram", hr_hist_delivery_latency.help);
	for (size_t i = 0; i < n; i++) {
		struct hr_label l = { "destination", v[i].m->name };

		hr_metric_histogram(b, &hr_hist_delivery_latency, &l, 1, &v[i].m->latency);
	}
	hr_metric_head(
	    b, hr_hist_attempt_duration.name, "histogram", hr_hist_attempt_duration.help);
	for (size_t i = 0; i < n; i++) {
		struct hr_label l = { "destination", v[i].m->name };

		hr_metric_histogram(b, &hr_hist_attempt_duration, &l, 1, &v[i].m->attempt);
	}
}

static int64_t
pending_of(const struct dest_view *v, int64_t now)
{
	(void)now;
	return v->have_row ? v->row.pending : -1;
}

/* In µs: 0 when nothing is pending. */
static int64_t
oldest_age_of(const struct dest_view *v, int64_t now)
{
	if (!v->have_row)
		return -1;
	if (v->row.oldest_pending_us == 0 || now < v->row.oldest_pending_us)
		return 0;
	return now - v->row.oldest_pending_us;
}

/* In tenths: closed 0, half-open 0.5 (one probe may go), open 1. */
static int64_t
breaker_of(const struct dest_view *v, int64_t now)
{
	(void)now;
	return v->m->breaker == HR_BREAKER_OPEN     ? 10
	    : v->m->breaker == HR_BREAKER_HALF_OPEN ? 5
	                                            : 0;
}

static int64_t
disabled_of(const struct dest_view *v, int64_t now)
{
	(void)now;
	return v->m->disabled ? 1 : 0;
}

/* Gauges per destination: a value of the view, in units of 1/scale; < 0 leaves it out. */
static const struct {
	const char *name, *help;
	int64_t (*value)(const struct dest_view *, int64_t now);
	int64_t scale;
} dest_gauges[] = {
	{ "hookrelay_deliveries_pending", "Deliveries of a destination not yet finished.",
	    pending_of, 1 },
	{ "hookrelay_oldest_pending_age_seconds",
	    "Age of the oldest pending delivery of a destination; 0 when none is pending.",
	    oldest_age_of, US },
	{ "hookrelay_breaker_open",
	    "A destination's circuit breaker: 0 closed, 0.5 half-open (one probe), 1 open.",
	    breaker_of, 10 },
	{ "hookrelay_destination_disabled",
	    "1 while a destination is disabled (it answered 410 Gone) until enabled again.",
	    disabled_of, 1 },
};

static void
render_dest_gauges(struct hr_dynbuf *b, const struct dest_view *v, size_t n)
{
	int64_t now = hr_time_now_us();

	for (size_t g = 0; g < HR_ARRAY_LEN(dest_gauges); g++) {
		hr_metric_head(b, dest_gauges[g].name, "gauge", dest_gauges[g].help);
		for (size_t i = 0; i < n; i++) {
			struct hr_label l = { "destination", v[i].m->name };
			int64_t value = dest_gauges[g].value(&v[i], now);

			if (value >= 0)
				hr_metric_sample(
				    b, dest_gauges[g].name, &l, 1, value, dest_gauges[g].scale);
		}
	}
}

/* A scrape reads the store for each destination: while the database is away
 * each scrape logged a line per destination. One bucket (ratelimit.h). */
static struct hr_logflood read_failed_log = HR_LOGFLOOD_INIT;

static void
log_read_failed(const char *what, const struct hr_error *err)
{
	unsigned long held;

	if (!hr_logflood_take(&read_failed_log, hr_time_mono_us(), &held))
		return;
	if (held > 0)
		log_warnx("metrics: %lu failed reads were not logged (a flood)", held);
	log_warnx("metrics: %s: %s", what, err->msg);
}

static int
unconfigured_sample(const struct hr_destination_row *row, void *arg)
{
	struct hr_label l = { "destination", row->name };

	hr_metric_sample(((struct hr_unconfigured_ctx *)arg)->out,
	    "hookrelay_deliveries_unconfigured", &l, 1, row->pending, 1);
	return HR_OK;
}

/* Pending deliveries nobody sends: their destination is no longer configured
 * (docs/forwarding.md). Alerting on it finds them before retention, which keeps
 * their events whole, fills the disk. */
static void
render_unconfigured(struct hr_dynbuf *b, struct hr_req *req, bool read_db)
{
	struct hr_unconfigured_ctx u = { req, b };
	struct hr_error err = { .field = "" };

	hr_metric_head(b, "hookrelay_deliveries_unconfigured", "gauge",
	    "Pending deliveries of a destination the configuration no longer has: not sent.");
	if (read_db &&
	    hr_store_unconfigured_destinations(hr_req_app(req)->store, hr_api_is_configured,
	        unconfigured_sample, &u, &err) != HR_OK)
		log_read_failed("the destinations of pending deliveries", &err);
}

/* `read_db`: the database answers; after one of its reads fails, the others are
 * left out of this scrape (each would wait as long). */
static int
render_forwarder(struct hr_dynbuf *b, struct hr_req *req, bool read_db)
{
	struct hr_dest_metrics_snap *snaps = calloc(HR_MAX_DESTINATIONS, sizeof(*snaps));
	struct dest_view *v = calloc(HR_MAX_DESTINATIONS, sizeof(*v));
	struct hr_error err = { .field = "" };
	size_t n;
	int rc = HR_ENOMEM;

	if (snaps == NULL || v == NULL)
		goto out;
	n = hr_forwarder_metrics(hr_req_app(req)->forwarder, snaps, HR_MAX_DESTINATIONS);
	for (size_t i = 0; i < n; i++) {
		v[i].m = &snaps[i];
		/* The row's name and reason point into snaps[i] and the stack: used here only. */
		v[i].have_row = read_db &&
		    hr_store_destination(
		        hr_req_app(req)->store, snaps[i].name, &v[i].row, NULL, 0, &err) == HR_OK;
		if (read_db && !v[i].have_row) {
			char what[HR_NAME_MAX + 64];

			snprintf(what, sizeof(what),
			    "destination %s (and the rest of this scrape's reads)", snaps[i].name);
			log_read_failed(what, &err);
			read_db = false;
		}
	}
	render_outcomes(b, v, n);
	render_dest_histograms(b, v, n);
	render_polls(b, v, n);
	render_dest_gauges(b, v, n);
	render_unconfigured(b, req, read_db);
	rc = HR_OK;
out:
	free(v);
	free(snaps);
	return rc;
}

/* ---- the process ---- */

static void
render_process(struct hr_dynbuf *b, struct hr_req *req)
{
	struct hr_label l = { "version", HR_VERSION_STRING };

	hr_metric_head(b, "hookrelay_build_info", "gauge", "1, labelled with the version running.");
	hr_metric_sample(b, "hookrelay_build_info", &l, 1, 1, 1);
	gauge(b, "hookrelay_start_time_seconds", "When the daemon started, in Unix time.",
	    hr_req_app(req)->metrics.start_us, US);
	gauge(b, "hookrelay_config_last_reload_successful",
	    "1 when the last SIGHUP swapped its file in (or none came), 0 when it was refused "
	    "and the configuration before it still runs (the log says why).",
	    atomic_load(&hr_req_app(req)->metrics.reload_ok), 1);
	gauge(b, "hookrelay_config_last_reload_success_timestamp_seconds",
	    "When the configuration running was read: the last good reload, else the start, in "
	    "Unix time.",
	    atomic_load(&hr_req_app(req)->metrics.reload_ok_us), US);
	gauge(b, "hookrelay_tree_arena_held_bytes",
	    "Memory the parse arena keeps for the next large bodies' trees (past each slot's "
	    "first MiB the kernel may take it when short of memory); given back after 10 s "
	    "without a large body.",
	    (int64_t)hr_jarena_held(), 1);
}

static void render_readiness(struct hr_dynbuf *, struct hr_req *);

static int
get_metrics(struct hr_req *req)
{
	struct hr_dynbuf b;
	char *text;
	size_t len = 0;
	bool read_db;

	hr_dynbuf_init(&b, 0, METRICS_MAX);
	render_ingest(&b, req);
	read_db = store_answers(hr_req_app(req)->store);
	read_db = render_store(&b, hr_req_app(req)->store, read_db) && read_db;
	if (render_forwarder(&b, req, read_db) != HR_OK) {
		hr_dynbuf_free(&b);
		return HR_ENOMEM;
	}
	render_process(&b, req);
	render_readiness(&b, req);
	if ((text = hr_dynbuf_take(&b, &len)) == NULL) {
		log_warnx(
		    "metrics: the page is larger than %d bytes or memory ran out", METRICS_MAX);
		return HR_ENOMEM;
	}
	hr_req_reply_take(req, 200, METRICS_TYPE, text, len);
	return HR_OK;
}

/* ---- readiness ---- */

static bool
check_running(struct hr_req *req, json_t *detail)
{
	bool stopping = atomic_load(&hr_req_app(req)->stopping);

	if (stopping)
		json_object_set_new(
		    detail, "detail", json_string("stopping: finishing the requests in flight"));
	return !stopping;
}

/*
 * The writer's queue has room, it is not stuck in one batch for 2 s or more,
 * and the newest batch committed, as did the newest that wrote. A full queue
 * answers every webhook 503 until the writer takes some (Tavus and PailFlow
 * do not retry): a load balancer should send them elsewhere meanwhile. A node
 * whose every webhook gets 503
 * (a file system gone read-only, I/O errors; on PostgreSQL a server gone away,
 * which the main loop's ping finds every second) is not ready, though an empty
 * transaction still commits on a read-only disk. Read from the writer's
 * figures, never waited for: a probe must not hold an HTTP thread while the
 * writer is slow, nor queue work for it.
 */
static bool
check_writer(struct hr_req *req, json_t *detail)
{
	struct hr_store_stats st;
	int64_t busy_us;

	hr_store_stats(hr_req_app(req)->store, &st);
	busy_us = batch_age_us(&st);
	json_object_set_new(detail, "queued", json_integer(st.queued));
	if (st.queue_full)
		json_object_set_new(detail, "detail",
		    json_sprintf("the write queue is full ([storage] queue_max = %u): webhooks are"
		                 " answered 503",
		        st.queue_max));
	else if (busy_us >= READY_WRITER_BUSY_US)
		json_object_set_new(detail, "detail",
		    json_sprintf(
		        "the writer has been in one batch for %.1fs", (double)busy_us / US));
	else if (st.last_write_failed || st.last_batch_failed)
		json_object_set_new(detail, "detail",
		    json_string("the last write failed: the database takes no writes"));
	return !st.queue_full && busy_us < READY_WRITER_BUSY_US && !st.last_write_failed &&
	    !st.last_batch_failed;
}

/* The writer found the file deleted, replaced or malformed: not ready until a restart. */
static bool
check_database(struct hr_req *req, json_t *detail)
{
	struct hr_store_health h;

	hr_store_health(hr_req_app(req)->store, &h);
	json_object_set_new(detail, "state", json_string(hr_db_health_name(h.state)));
	if (h.state != HR_DB_OK)
		json_object_set_new(detail, "detail", json_string(h.detail));
	return h.state == HR_DB_OK;
}

static bool
check_forwarder(struct hr_req *req, json_t *detail)
{
	int64_t last = hr_forwarder_last_loop_us(hr_req_app(req)->forwarder);
	int64_t age = hr_time_mono_us() - last;

	json_object_set_new(detail, "last_loop_age_s", json_real((double)age / US));
	return age < READY_FORWARDER_STALE_US;
}

static bool
check_disk(struct hr_req *req, json_t *detail)
{
	uint64_t free_bytes = 0;
	size_t min = hr_req_cfg(req)->min_free_space;

	if (hr_store_disk_free(hr_req_app(req)->store, &free_bytes) != HR_OK) {
		json_object_set_new(detail, "detail", json_string("statvfs failed"));
		return min == 0;
	}
	if (free_bytes == UINT64_MAX) { /* PostgreSQL: the database's disk is the server's */
		json_object_set_new(detail, "detail",
		    json_string("the database is not on this node's disk (backend = postgresql)"));
		return true;
	}
	json_object_set_new(detail, "free_bytes", json_integer((json_int_t)free_bytes));
	json_object_set_new(detail, "min_free_space", json_integer((json_int_t)min));
	return min == 0 || free_bytes >= min;
}

static const struct {
	const char *name;
	bool (*check)(struct hr_req *, json_t *detail);
} ready_checks[] = {
	{ "running", check_running },
	{ "writer", check_writer },
	{ "database", check_database },
	{ "forwarder", check_forwarder },
	{ "disk", check_disk },
};

/*
 * /readyz's checks as gauges: a database gone, corrupt or taking no writes, a
 * writer stuck, was said in the log and by /readyz only, and the alert on
 * webhooks not stored fires after the first one lost (Tavus and PailFlow do
 * not retry; a review). The checks read the writer's figures, never wait.
 */
static void
render_readiness(struct hr_dynbuf *b, struct hr_req *req)
{
	bool ready = true, ok[HR_ARRAY_LEN(ready_checks)];

	for (size_t i = 0; i < HR_ARRAY_LEN(ready_checks); i++) {
		json_t *detail = json_object();

		ok[i] = ready_checks[i].check(req, detail);
		json_decref(detail);
		ready &= ok[i];
	}
	gauge(b, "hookrelay_ready", "1 while GET /readyz answers 200, else 0.", ready, 1);
	hr_metric_head(b, "hookrelay_ready_check", "gauge",
	    "Each check of GET /readyz: 1 when it holds, 0 when not (docs/operations.md, "
	    "Readiness).");
	for (size_t i = 0; i < HR_ARRAY_LEN(ready_checks); i++) {
		struct hr_label l = { "check", ready_checks[i].name };

		hr_metric_sample(b, "hookrelay_ready_check", &l, 1, ok[i], 1);
	}
}

static int
readyz(struct hr_req *req)
{
	json_t *checks = json_object(), *failed = json_array();
	bool ready = true;

	for (size_t i = 0; i < HR_ARRAY_LEN(ready_checks); i++) {
		json_t *detail = json_object();
		bool ok = ready_checks[i].check(req, detail);

		json_object_set_new(detail, "ok", json_boolean(ok));
		json_object_set_new(checks, ready_checks[i].name, detail);
		if (!ok)
			json_array_append_new(failed, json_string(ready_checks[i].name));
		ready &= ok;
	}
	/* A status document, not a problem, whatever the status. */
	if (hr_req_api_authorised(req)) {
		hr_req_reply_report(req, ready ? 200 : 503,
		    json_pack(
		        "{s:b, s:o, s:o}", "ready", ready, "checks", checks, "failed", failed));
	} else {
		json_decref(checks);
		json_decref(failed);
		hr_req_reply_report(req, ready ? 200 : 503, json_pack("{s:b}", "ready", ready));
	}
	return HR_OK;
}

static const struct hr_param no_params[] = { { NULL, 0 } };

const struct hr_route hr_metrics_routes[] = {
	{ "GET", "/metrics", HR_ROUTE_API | HR_ROUTE_READS, NULL, get_metrics, no_params },
	{ "GET", "/readyz", HR_ROUTE_ANY_HOST, NULL, readyz, no_params },
	{ NULL, NULL, 0, NULL, NULL, NULL },
};
