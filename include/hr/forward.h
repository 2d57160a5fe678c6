/*
 * forward.h - the delivery worker: a libcurl multi loop in its own thread.
 *
 * It takes due delivery rows from the store, POSTs each event's body to its
 * destination with Standard Webhooks headers, and records every attempt
 * through the writer. State that matters survives a restart because it is
 * in the database; what lives here is transient (in-flight transfers,
 * circuit breakers).
 */
#ifndef HR_FORWARD_H
#define HR_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "hr/cfg.h"
#include "hr/common.h"
#include "hr/metrics.h"
#include "hr/store.h"

struct hr_forwarder;

/* Bytes of each answer a destination sends that its attempt records: a longer
 * one is cut there, maybe inside a character. */
#define HR_RESPONSE_KEEP 4096

/* Start with the `n` destinations `dests` (borrowed: the forwarder keeps copies of
 * them, never the configuration they come from). */
int hr_forwarder_start(const struct hr_destination_cfg *dests, size_t n, struct hr_store *,
    struct hr_forwarder **out, struct hr_error *) HR_WUR;
/* Switch to these destinations (borrowed; a reload): added ones start, changed ones
 * take their new settings, removed ones finish what is in flight and go. Any thread.
 * Their secret files are read here, once; one that cannot be read refuses the whole
 * switch (HR_EINVAL and friends, `err` filled) and the destinations stay as they were. */
int hr_forwarder_reload(struct hr_forwarder *, const struct hr_destination_cfg *dests, size_t n,
    struct hr_error *err) HR_WUR;
/* Load every destination's secrets as a start would, and forget them: a start and a
 * reload stop at the first that fails (`every` NULL); hookrelay -t goes on, each
 * error given to hr_log_hold_error(err, every, ...). */
int hr_forwarder_check(
    const struct hr_destination_cfg *dests, size_t n, size_t *every, struct hr_error *err) HR_WUR;
/* Finish in-flight attempts (bounded), record them, stop. NULL is fine. */
void hr_forwarder_stop(struct hr_forwarder *);
/* Look at the store now (new rows committed); any thread. */
void hr_forwarder_wake(void *forwarder);

enum hr_breaker { HR_BREAKER_CLOSED, HR_BREAKER_OPEN, HR_BREAKER_HALF_OPEN };
const char *hr_breaker_name(enum hr_breaker);

struct hr_dest_status {
	bool known;
	bool disabled;
	enum hr_breaker breaker;
	unsigned in_flight;
	unsigned consecutive_failures;
	int64_t probe_at_us;   /* breaker open: when the next probe may go */
	char last_error[160];  /* the newest failed attempt's error, "HTTP 500" if answered */
	int64_t last_error_us; /* 0: none since this node started */
};

/* The live state of a destination (known false if no such destination). */
void hr_forwarder_status(struct hr_forwarder *, const char *name, struct hr_dest_status *out);
/* Re-enable a destination that a 410 disabled. HR_ENOTFOUND if no such destination. */
int hr_forwarder_enable(struct hr_forwarder *, const char *name) HR_WUR;
/* The delay before a retry: `base_us` moved by up to `jitter_pct` % either way, drawn
 * uniformly over that whole range. */
int64_t hr_retry_delay_us(int64_t base_us, unsigned jitter_pct);
/* Heartbeat for health checks: when the loop last ran (monotonic, hr_time_mono_us). */
int64_t hr_forwarder_last_loop_us(struct hr_forwarder *);

/* A destination's live state and metrics, copied for /metrics. */
struct hr_dest_metrics_snap {
	char name[HR_NAME_MAX];
	bool disabled;
	enum hr_breaker breaker;
	uint64_t outcomes[HR_OUTCOME_COUNT]; /* attempts by enum hr_attempt_outcome */
	struct hr_hist_snap latency, attempt;
	uint64_t polls, poll_cpu_us, poll_us;
};

/* Copy up to `max` destinations' metrics into `out`; returns how many. Any thread. */
size_t hr_forwarder_metrics(struct hr_forwarder *, struct hr_dest_metrics_snap *out, size_t max);

#endif
