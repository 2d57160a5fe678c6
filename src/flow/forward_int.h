/*
 * forward_int.h - what the forwarder's files share, and no one else sees:
 * the destination sets and destinations (forward.c), the breaker
 * (forward_breaker.c), one attempt's transfer (forward_delivery.c, its
 * request in forward_request.c) and the loop (forward_loop.c).
 *
 * Threads: only the loop's thread creates, changes and frees transfers and
 * the retired list; fw->mu guards what API threads read (the dests arrays,
 * a destination's status fields, `recorded`, `pending`).
 */
#ifndef HR_FORWARD_INT_H
#define HR_FORWARD_INT_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hr/forward.h"
#include "hr/ratelimit.h"

#define LEASE_US                (INT64_C(10) * 60 * 1000000) /* a taken row's lease */
#define IDLE_POLL_US            (INT64_C(1000000)) /* look at the store at least this often */
#define BREAKER_MAX_COOLDOWN_US (INT64_C(600) * 1000000)
#define STOP_GRACE_US           (INT64_C(5) * 1000000) /* in-flight attempts get this long at stop */
#define RECORD_RETRY_US         (INT64_C(1000000)) /* a record that failed is written again after */
#define RECORD_KEEP_US          LEASE_US /* ... for this long, then its row is taken again */
#define MAX_SECRETS             8        /* signatures per request; a 9th secret is refused */

struct dest;

/* The destinations of one configuration, copied out of it. */
/* A destination's signing keys (whsec_, decoded); none: unsigned. */
struct dkeys {
	unsigned char key[MAX_SECRETS][64];
	size_t len[MAX_SECRETS];
	size_t n;
};

struct dset {
	atomic_uint refs;
	struct hr_destination_cfg *v; /* owned, deep copies */
	struct dkeys *keys;           /* v[i]'s, read once when the set was made */
	size_t n;
};

/* One attempt, from taking the row to its record being committed. */
struct transfer {
	struct hr_forwarder *fw;
	struct dest *d;
	struct transfer *next; /* in d->owned */
	CURL *easy;
	struct curl_slist *headers;
	int64_t delivery_id;
	int number;
	char event_id[40];
	char *order_key;
	char *url; /* where it went: a reload may change the destination's meanwhile */
	char *body;
	size_t body_len;
	char response[HR_RESPONSE_KEEP];
	size_t response_len;
	bool blocked;        /* the guard refused an address (why) ... */
	bool opened_allowed; /* ... though another one of the name was tried */
	char why[256];
	char errbuf[CURL_ERROR_SIZE];
	int sends; /* request headers written: more than one when libcurl resent */
	int64_t started_us;
	struct hr_attempt att;
	struct hr_store_op op;
	struct transfer *next_unsubmitted; /* on fw->unsubmitted */
	bool submitted;                    /* its record is with the writer */
	bool recorded;                     /* ... and committed: it can be freed */
	bool record_failed;                /* ... or not: it is written again */
	int64_t record_at_us;              /* not before (after a failure) */
	int64_t record_failed_us;          /* its first failure, 0: none */

	int64_t received_us; /* the event's, for the delivery latency */
};

/* A destination's circuit breaker (forward_breaker.c). */
struct breaker {
	enum hr_breaker state;
	unsigned failures; /* consecutive */
	int64_t cooldown_us;
	int64_t probe_at_us;
	/* A change the other nodes must hear (hr_store_breaker_publish): open until
	 * publish_until_us, or closed (0). Set under fw->mu, sent at the next poll. */
	bool publish;
	bool publish_outcome; /* a probe's failure: its time replaces the claim's */
	int64_t publish_until_us;
};

struct dest {
	const struct hr_destination_cfg *cfg; /* in `set` */
	struct dset *set;                     /* a reference: cfg stays valid while d lives */
	struct dest *next_retired;            /* removed by a reload, draining */
	struct transfer *owned;
	unsigned nowned;
	bool disabled;
	bool state_unread;      /* its stored state could not be read yet: nothing is sent */
	bool state_unsaved;     /* this node changed `disabled`; the store may not hold it yet */
	int64_t state_check_us; /* when to read it back (save_state) */
	int64_t state_set_us;   /* when this node set it (wall clock, as stored) */
	char state_reason[64];  /* why it is disabled, as written */
	int64_t shared_at_us;   /* when the state the nodes share was last read */
	struct breaker breaker;
	struct hr_logflood final_log; /* its failed and dead deliveries' lines (ratelimit.h) */
	/* The newest failed attempt's error ("HTTP 500" when answered), for
	 * GET /v1/destinations: the deliveries that hold it may be far behind the
	 * newest, which wait for the breaker (the inspector showed none). */
	char last_error[160];
	int64_t last_error_us; /* 0: none since start */
	int64_t next_due_us;   /* 0: nothing pending known */
	char *keys_window;     /* ordered: where the next poll's walk over the keys starts */
	/* How the loop paces d's polls (forward_loop.c). */
	int64_t poll_after_us; /* CLOCK_MONOTONIC: its walk goes on, not before */
	unsigned walk_rounds;  /* rounds its walk still goes on by itself (ordered) */
	struct dkeys keys;
	struct hr_dest_metrics metrics; /* /metrics; a reload that keeps the dest keeps them */
};

struct hr_forwarder {
	struct dset *set; /* the destinations in use; a reference held */
	struct hr_store *store;
	CURLM *multi;
	pthread_t thread;
	pthread_mutex_t mu; /* see above */
	struct dest **dests;
	size_t ndests;
	struct dest *retired; /* removed by a reload; freed once their attempts ended */
	struct dset *pending; /* a reload waiting for the loop to apply it */
	atomic_bool poll_needed;
	atomic_bool stopping;
	atomic_llong last_loop_us;
	struct transfer *unsubmitted; /* finished, waiting for room in the writer queue */
	/* Reads of due deliveries fail since (CLOCK_MONOTONIC; 0: none does), this
	 * many so far: said once every destination's are read again. The loop's thread. */
	int64_t unread_since_us;
	int64_t unread_said_us; /* when it was last said (say_unread) */
	unsigned long unread_reads;
};

/* forward.c: destinations */
void hr_fwd_apply_reload(struct hr_forwarder *); /* the loop's thread */
void hr_fwd_dest_free(struct dest *);            /* takes */
/* Read d's stored state (disabled?) into it; on failure d->state_unread stays set. */
int hr_fwd_dest_read_state(struct hr_forwarder *, struct dest *, struct hr_error *);

/* forward_breaker.c; the caller holds fw->mu */
void hr_breaker_init(struct breaker *, const struct hr_destination_cfg *);
void hr_breaker_configure(struct breaker *, const struct hr_destination_cfg *); /* a reload */
/* Is the breaker open with its probe's time come and no attempt out, so that the
 * probe may go now? (hr_breaker_room() then lets it, and a shared store's claim
 * of it is made only then.) */
bool hr_breaker_probe_due(const struct breaker *, unsigned in_flight, int64_t now);
/* How many attempts may start now, of `max_in_flight` with `in_flight` running:
 * none while open, one probe once its time came (half-open). */
unsigned hr_breaker_room(
    struct breaker *, const char *name, unsigned max_in_flight, unsigned in_flight, int64_t now);
/* An attempt ended: `answered` (any HTTP answer but a retryable one) closes it;
 * else a failure counts, and enough of them open it. `last_error` (borrowed; the
 * destination's, bounded by its buffer) is the newest failure's, which the line
 * saying the breaker opened names. */
void hr_breaker_update(struct breaker *, const struct hr_destination_cfg *, bool answered,
    const char *last_error, int64_t now);
/* Enabled again by hand: closed, with the configured cooldown. */
void hr_breaker_reset(struct breaker *, const struct hr_destination_cfg *);
/* What the other nodes made of it (a shared store): open until `until_us` with
 * `cooldown_us`, or closed by one of them (0). */
void hr_breaker_follow(struct breaker *, const struct hr_destination_cfg *, int64_t until_us,
    int64_t cooldown_us, int64_t now);
/* The destination's cooldown, when longer than the node's (a shared store). */
void hr_breaker_adopt_cooldown(struct breaker *, int64_t cooldown_us);

/* forward_request.c: t's easy handle, headers and guard; HR_ENOMEM */
int hr_fwd_request_setup(struct transfer *);

/* forward_delivery.c: the loop's thread */
enum hr_fwd_outcome { HR_FWD_SUCCESS, HR_FWD_RETRY, HR_FWD_FAIL, HR_FWD_GONE };
/* What a finished attempt comes to, from its curl code and HTTP status. */
enum hr_fwd_outcome hr_fwd_classify(const struct transfer *, CURLcode, long status);
/* What a poll of a destination came to. */
struct hr_fwd_polled {
	bool filled;     /* it took all it had room for, or had none */
	bool came_round; /* ordered: its walk reached the last key (the next starts over) */
};
/* Take d's due rows. */
struct hr_fwd_polled hr_fwd_delivery_poll(struct hr_forwarder *, struct dest *, int64_t now);
void hr_fwd_delivery_finish(struct hr_forwarder *, CURL *, CURLcode);
void hr_fwd_delivery_resubmit(struct hr_forwarder *);
void hr_fwd_delivery_reap(struct hr_forwarder *);
void hr_fwd_delivery_save_retired(struct hr_forwarder *, int64_t now);
void hr_fwd_transfer_free(struct transfer *);
/* Disable or enable `d` and record it; the caller holds fw->mu. */
void hr_fwd_set_disabled(struct hr_forwarder *, struct dest *, bool disabled, const char *reason);
/* The destination of that name configured now, NULL: none. Caller holds fw->mu. */
struct dest *hr_fwd_find_dest(struct hr_forwarder *, const char *name);
/* d's attempts under way, with those of removed copies of its name still running
 * (forward.c); the caller holds fw->mu or is the loop's thread. */
unsigned hr_fwd_in_flight(const struct hr_forwarder *, const struct dest *);

/* forward_loop.c */
void *hr_fwd_loop_main(void *forwarder);

#endif
