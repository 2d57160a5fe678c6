/*
 * metrics.h - counters and histograms for GET /metrics, and their rendering
 * in the Prometheus text format (version 0.0.4).
 *
 * Observing is lock-free and allocation-free: a few relaxed atomic adds,
 * so the ingest path can afford it on every request. Everything is zero
 * when zero-initialised; a histogram's bucket bounds live in a separate,
 * constant struct hr_hist_spec, so the same histogram type serves every
 * metric and an observation carries no pointers.
 *
 * Values are fixed-point integers: a histogram of seconds observes
 * microseconds (scale 1000000), a histogram of counts observes counts
 * (scale 1), and rendering prints value/scale exactly as a decimal.
 */
#ifndef HR_METRICS_H
#define HR_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr/dynbuf.h"

#define HR_HIST_MAX_BUCKETS 16

/* A histogram's name, help and finite bucket bounds (ascending, in its unit). */
struct hr_hist_spec {
	const char *name; /* "hookrelay_ack_latency_seconds" */
	const char *help;
	int64_t scale; /* units per 1 of the exposed value: 1000000 for seconds in µs */
	size_t nbounds;
	int64_t bounds[HR_HIST_MAX_BUCKETS];
};

/* Per-bucket (not cumulative) counts; the last slot is +Inf. */
struct hr_histogram {
	atomic_ullong buckets[HR_HIST_MAX_BUCKETS + 1];
	atomic_ullong sum; /* in units; a negative observation counts as 0 */
};

/* A copy taken for rendering: count is the sum of the buckets, so +Inf == _count. */
struct hr_hist_snap {
	uint64_t buckets[HR_HIST_MAX_BUCKETS + 1];
	uint64_t sum;
	uint64_t count;
};

void hr_hist_observe(struct hr_histogram *, const struct hr_hist_spec *, int64_t v);
void hr_hist_snap(const struct hr_histogram *, struct hr_hist_snap *out);

/* The histograms hookrelay keeps (metrics.c). */
extern const struct hr_hist_spec hr_hist_ack_latency;       /* µs */
extern const struct hr_hist_spec hr_hist_commit_batch_size; /* jobs */
extern const struct hr_hist_spec hr_hist_commit_duration;   /* µs */
extern const struct hr_hist_spec hr_hist_delivery_latency;  /* µs */
extern const struct hr_hist_spec hr_hist_attempt_duration;  /* µs */

/* What the HTTP side observes app-wide (struct hr_app). */
struct hr_app_metrics {
	struct hr_histogram ack_latency; /* headers read -> 2xx ready, accepted events */
	atomic_ulong unknown_source;     /* POST /hooks/NAME with no [source NAME]: 404 */
	int64_t start_us;                /* set before any thread starts */
	/* The last SIGHUP: swapped in (true), or refused and the running file stays.
	 * A refused reload was only in the log, and `systemctl reload` says ok either
	 * way; an operator who then switches a sender to a new secret gets 401s. */
	atomic_bool reload_ok;
	_Atomic int64_t reload_ok_us; /* Unix µs of the last good reload, else of the start */
};

/* One attempt's outcome, as a label of hookrelay_deliveries_total. */
enum hr_attempt_outcome {
	HR_OUTCOME_SUCCEEDED, /* 2xx */
	HR_OUTCOME_RETRIED,   /* failed, another attempt is scheduled */
	HR_OUTCOME_FAILED,    /* a 4xx that is not retried: the delivery failed */
	HR_OUTCOME_DEAD,      /* failed after the last retry */
	HR_OUTCOME_GONE,      /* 410: the destination is disabled */
	HR_OUTCOME_BLOCKED,   /* the SSRF guard refused the address */
	HR_OUTCOME_COUNT
};
const char *hr_attempt_outcome_name(enum hr_attempt_outcome);

/* Per destination, kept by the forwarder with the destination (across reloads). */
struct hr_dest_metrics {
	atomic_ullong outcomes[HR_OUTCOME_COUNT];
	struct hr_histogram latency; /* event received -> successful attempt ended */
	struct hr_histogram attempt; /* every attempt's duration */
	atomic_ullong polls;         /* looks at the store for due deliveries */
	atomic_ullong poll_cpu_us;   /* the forwarder thread's CPU in them */
	atomic_ullong poll_us;       /* their wall-clock time in the store's calls */
};

/* ---- rendering ---- */

struct hr_label {
	const char *name;
	const char *value; /* escaped when written */
};

/* value/scale as an exact decimal ("2.5" for 2500000/1000000); scale a power of 10. */
void hr_metric_value(int64_t value, int64_t scale, char *buf, size_t len);
/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void hr_metric_head(struct hr_dynbuf *, const char *name, const char *type, const char *help);
/* "name{labels} value/scale". */
void hr_metric_sample(struct hr_dynbuf *, const char *name, const struct hr_label *labels,
    size_t nlabels, int64_t value, int64_t scale);
/* _bucket{labels,le} (cumulative, then +Inf), _sum and _count of one histogram. */
void hr_metric_histogram(struct hr_dynbuf *, const struct hr_hist_spec *,
    const struct hr_label *labels, size_t nlabels, const struct hr_hist_snap *);

#endif
