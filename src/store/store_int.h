/*
 * store_int.h - what the store's own files share (store.c, writer.c,
 * retention.c): the handle. The engines never see it; they see
 * store_ops.h only.
 */
#ifndef HR_STORE_INT_H
#define HR_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "hr/metrics.h"
#include "hr/store_ops.h"

/* struct hr_store_op.type: which typed call queued it. */
enum hr_op_type {
	HR_OP_EVENT,       /* in: struct hr_event_write */
	HR_OP_REJECTION,   /* in: struct hr_rejection_write */
	HR_OP_ACCEPT,      /* in: struct hr_accept_write */
	HR_OP_ATTEMPT,     /* in: struct hr_attempt */
	HR_OP_LEASE,       /* in: struct hr_lease */
	HR_OP_DESTINATION, /* in: struct hr_destination_state */
	HR_OP_REPLAY,      /* in: struct hr_replay */
	HR_OP_DISCARD,     /* in: struct hr_discard */
	HR_OP_PING,        /* nothing: proves the writer is alive (watchdog) */
	HR_OP_PRUNE,       /* in: struct hr_retention, out: struct hr_prune_result */
};

/* Called after a commit that stored new events; see hr_store_add_listener(). */
struct hr_store_listener {
	void (*fn)(void *);
	void *arg;
};

struct hr_retention_state; /* retention.c */

struct hr_store {
	const struct hr_store_ops *ops;
	struct hr_store_backend *b;
	struct hr_store_opts opts;

	/* the queue and the writer thread (writer.c) */
	pthread_t writer;
	bool writer_started;
	pthread_mutex_t mu; /* guards the queue, stopping, stats and listeners */
	/* Held while the commit hook runs and while it is changed: once
	 * hr_store_set_commit_hook() returns, the old hook is not running and will
	 * not run, so its argument may be freed. */
	pthread_mutex_t hook_mu;
	pthread_cond_t cv;
	struct hr_store_op *head, *tail;
	unsigned queued;
	unsigned pings_queued; /* of queued: pings, which stats do not count as writes */
	bool stopping;
	struct hr_store_stats stats;
	void (*commit_hook)(void *);
	void *commit_hook_arg;
	struct hr_store_listener listeners[HR_STORE_LISTENERS];
	unsigned nlisteners;
	/* the watchdog's ping (hr_store_writer_turns): out from its submit to its done() */
	struct hr_store_op ping;
	atomic_bool ping_out;
	int64_t ping_sent_us; /* monotonic; the asking thread's */
	/* writer thread only */
	const struct hr_event_write **run_in; /* a run of events for put_events, batch_max long */
	struct hr_store_result **run_res;
	const struct hr_attempt **run_attempts; /* a run of records for record_attempts */
	int64_t next_expire_us;                 /* when expired dedup keys are next removed */
	int64_t next_fold_us;     /* when delivery count changes are next folded (monotonic) */
	bool fold_wanted;         /* a fold of delivery counts, once next_fold_us comes */
	int64_t next_drop_log_us; /* when rejections_max may be logged again */
	unsigned long failing;    /* batches failed in a row: "writes commit again" when one does */
	struct hr_histogram batch_sizes, commit_durations;
	atomic_ullong rejections_dropped; /* by rejections_max */

	struct hr_retention_state *retention; /* NULL until configured */
};

/* writer.c */
int hr_store_writer_start(struct hr_store *, struct hr_error *);
/* Stop the writer once it committed everything queued. */
void hr_store_writer_stop(struct hr_store *);
/* Queue `op` as a write of `type`; see the typed calls in store.h. */
int hr_store_submit(struct hr_store *, int type, const void *in, void *out, struct hr_store_op *op);

/* Another node committed events / deliveries (the engine's `watch`): tell the
 * listeners and the commit hook as after a commit of our own. Any thread. */
void hr_store_remote_commit(void *store, bool events, bool deliveries);

/* retention.c: stop the passes (before the writer: a pass is a write). */
void hr_store_retention_stop(struct hr_store *);

#endif
