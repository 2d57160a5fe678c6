/*
 * app.h - what request handlers share: the store, the forwarder, and the
 * current configuration generation (struct hr_runtime).
 *
 * A request takes a reference to the runtime when it starts and keeps that
 * one to its end, so a SIGHUP reload swaps the configuration atomically:
 * requests in flight finish under the old one, new ones see the new one.
 */
#ifndef HR_APP_H
#define HR_APP_H

#include <pthread.h>
#include <stdatomic.h>

#include "hr/cfg.h"
#include "hr/metrics.h"
#include "hr/ratelimit.h"
#include "hr/reqcounts.h"
#include "hr/store.h"

struct hr_forwarder;
struct hr_http;
struct hr_secrets;

/*
 * A source's counters for /metrics. Every generation that has the source
 * shares one block (by name), so a request that started before a reload and
 * ends after it still counts, and no scrape sees a counter go down.
 */
/* Why a webhook was answered 503 and not stored (hookrelay_ingest_not_stored_total). */
enum hr_not_stored {
	HR_NOT_STORED_STORAGE,    /* the write failed */
	HR_NOT_STORED_QUEUE_FULL, /* [storage] queue_max */
	HR_NOT_STORED_STOPPING,   /* hookrelay was stopping */
	HR_NOT_STORED_REASONS
};
extern const char *const hr_not_stored_labels[HR_NOT_STORED_REASONS];

struct hr_source_counters {
	atomic_uint refs;
	atomic_ulong auth_failures, rate_limited, duplicates;
	atomic_ulong probes; /* Daily verification probes answered 200, never stored */
	/* A body taken though its Content-Type was not JSON's: said once per source. */
	atomic_bool told_media_type;
	struct hr_request_counts requests; /* answers by kind and status */
	/* Bodies refused (422, and 400 malformed JSON: slot "none") and kept for
	 * GET /v1/rejections, by kind slot (hr_request_kind_label) */
	atomic_ulong rejected[HR_REQ_KIND_SLOTS];
	/* Webhooks answered 503 and not stored, by why (enum hr_not_stored): counted
	 * whether or not the sender was still there to read the answer. */
	atomic_ulong not_stored[HR_NOT_STORED_REASONS];
	/* Refused requests' and rejections' log lines, in moderation per source: a
	 * flood on one must not hide another's (a rotated secret's 401s). */
	struct hr_logflood refusal_log, reject_log;
	/* rate and burst: one bucket for every configuration a request may have begun
	 * under (a reload gives it its new rate and burst once it is in force), so a
	 * request whose body comes after a reload takes from the same tokens as one
	 * begun after it: with a bucket per configuration, each reload let a source's
	 * bodies on their way through past the new bucket (a review). */
	struct hr_bucket bucket;
};

/* Per [source]: what ingest needs beyond its configuration. */
struct hr_source_state {
	struct hr_secrets *secrets;          /* owned */
	struct hr_source_counters *counters; /* one reference held; its bucket too */
};

/* One configuration generation, reference counted. */
struct hr_runtime {
	atomic_uint refs;
	struct hr_cfg *cfg;              /* owned */
	struct hr_source_state *sources; /* owned; parallel to cfg->sources */
	char *api_token;                 /* owned; NULL: the API answers loopback clients only */
	char *api_read_token;            /* owned; NULL: none; may GET and HEAD only */
	struct hr_json_limits limits;
};

/*
 * Build a runtime from `cfg` (taken, even on failure): load every source's
 * secrets and the API token. A source that `prev` (may be NULL) also has
 * shares its counters, so a reload neither resets them nor loses a count.
 * A start and a reload stop at the first secret that fails (`every` NULL);
 * hookrelay -t goes on, each error given to hr_log_hold_error(err, every, ...).
 */
int hr_runtime_new(struct hr_cfg *cfg, const struct hr_runtime *prev, size_t *every,
    struct hr_runtime **out, struct hr_error *err) HR_WUR;
struct hr_runtime *hr_runtime_ref(struct hr_runtime *);
void hr_runtime_release(struct hr_runtime *); /* NULL is fine; frees at the last reference */
/* The state of a source of this runtime's config. */
struct hr_source_state *hr_runtime_source_state(struct hr_runtime *, const struct hr_source_cfg *);

struct hr_app {
	struct hr_store *store;         /* borrowed */
	struct hr_forwarder *forwarder; /* borrowed */
	pthread_mutex_t rt_mu;          /* guards rt */
	struct hr_runtime *rt;          /* the current generation; one reference held */
	atomic_uint inflight;           /* requests suspended, waiting for another thread */
	atomic_uint receiving;          /* requests begun, their body not all in yet */
	/* Shutdown, in two steps. `stopping`: no new connection; a request on one
	 * already open is still served, and its answer closes the connection (an
	 * idle keep-alive connection's next webhook was answered 503, which Tavus
	 * and PailFlow do not retry). `closing`, once those are done: no new
	 * suspensions (503) but of requests begun before it. `sealed`, once those
	 * are done too: none at all, so that no body completing late suspends its
	 * connection while the HTTP server stops (libmicrohttpd aborts then). */
	atomic_bool stopping, closing, sealed;
	atomic_ulong accepted, rejected, failed;
	_Atomic(struct hr_http *) http; /* borrowed; set once listening (its /metrics counters) */
	struct hr_app_metrics metrics;
};

/* A new reference to the current runtime. */
struct hr_runtime *hr_app_runtime(struct hr_app *);
/* Is `rt` still the current runtime (no reload since)? */
bool hr_app_runtime_is_current(struct hr_app *, const struct hr_runtime *rt);
/* Make `rt` (its reference taken) current; the previous one is released. */
void hr_app_swap_runtime(struct hr_app *, struct hr_runtime *rt);

#endif
