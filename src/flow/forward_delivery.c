/*
 * forward_delivery.c - one delivery attempt's way, from the due row to the
 * record of its outcome: taken (owned here, leased in the store), in flight
 * on the multi handle, finished (classified: success, retry with its delay,
 * failure, gone), recorded through the writer, and freed once the record
 * committed, so that a row is never taken twice.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "forward_int.h"
#include "hr/log.h"
#include "hr/ratelimit.h"
#include "hr/timefmt.h"

#define SHARED_EVERY_US (INT64_C(1000000)) /* the state the nodes share, read this often */
/* From a probe's timeout to its outcome in the shared row: the loop wakes at
 * least once a second, and the poll then publishes it. */
#define PROBE_MARGIN_US (2 * SHARED_EVERY_US)

void
hr_fwd_transfer_free(struct transfer *t)
{
	if (t == NULL)
		return;
	if (t->easy != NULL) {
		curl_multi_remove_handle(t->fw->multi, t->easy);
		curl_easy_cleanup(t->easy);
	}
	curl_slist_free_all(t->headers);
	free(t->order_key);
	free(t->url);
	free(t->body);
	free(t);
}

/*
 * d's attempt of `row` still counts as running: in flight, or its record not
 * in the row read (its commit to come, or failed). One whose record the row
 * already counts (`attempts`) is over, its transfer only waiting to be freed,
 * and the row, due again at once (a retry_schedule step of 0s), is the next
 * attempt: kept as the running one, it stayed leased to this node with
 * nothing in flight for a whole lease (a review of PostgreSQL's claims).
 */
static bool
attempt_running(const struct dest *d, const struct hr_due_delivery *row)
{
	for (const struct transfer *t = d->owned; t != NULL; t = t->next)
		if (t->delivery_id == row->id && t->number > row->attempts)
			return true;
	return false;
}

/* Ordered: an attempt of d's for `key` is under way (or not yet freed). */
static bool
key_busy(const struct dest *d, const char *key)
{
	for (const struct transfer *t = d->owned; t != NULL; t = t->next)
		if (t->order_key != NULL && strcmp(key, t->order_key) == 0)
			return true;
	return false;
}

/*
 * ... for d, or for a destination of the same name that a reload removed and
 * the next one brought back: its attempts still run, and their rows are still
 * pending. `key` NULL: attempt_running(), else key_busy(). Only this thread
 * changes the retired list and the transfers, so no lock.
 */
static bool
busy_here(const struct hr_forwarder *fw, const struct dest *d, const struct hr_due_delivery *row,
    const char *key)
{
	if (key == NULL ? attempt_running(d, row) : key_busy(d, key))
		return true;
	for (const struct dest *r = fw->retired; r != NULL; r = r->next_retired)
		if (strcmp(r->cfg->name, d->cfg->name) == 0 &&
		    (key == NULL ? attempt_running(r, row) : key_busy(r, key)))
			return true;
	return false;
}

struct take {
	struct hr_forwarder *fw;
	struct dest *d;
	unsigned room;
	int64_t ids[1024];
	size_t nids;
};

static int
take_row(const struct hr_due_delivery *row, void *arg)
{
	struct take *tk = arg;
	const char *order_key = tk->d->cfg->ordered ? row->order_key : NULL;
	struct transfer *t;

	/* This node's own attempt, still running or its record not committed yet
	 * (past the lease: the writer could not commit). The claim that found it
	 * again renewed its lease: kept, not given back. Given back, it was free
	 * for any node, the record's claim guard dropped the record, and the
	 * webhook went again (a scale-out review). */
	if (busy_here(tk->fw, tk->d, row, NULL))
		return HR_OK;
	if (tk->room == 0 || (order_key != NULL && busy_here(tk->fw, tk->d, row, order_key)))
		return HR_EBUSY; /* not taken: a claiming store gives it back */
	if ((t = calloc(1, sizeof(*t))) == NULL || (t->body = malloc(row->body_len + 1)) == NULL ||
	    (row->order_key != NULL && (t->order_key = strdup(row->order_key)) == NULL)) {
		hr_fwd_transfer_free(t);
		return HR_EBUSY; /* try again on the next poll */
	}
	t->fw = tk->fw;
	t->d = tk->d;
	t->delivery_id = row->id;
	t->number = row->attempts + 1;
	t->received_us = row->received_us;
	snprintf(t->event_id, sizeof(t->event_id), "%s", row->event_id);
	memcpy(t->body, row->body, row->body_len);
	t->body_len = row->body_len;
	if (hr_fwd_request_setup(t) != HR_OK) {
		hr_fwd_transfer_free(t);
		return HR_EBUSY;
	}
	t->started_us = hr_time_now_us();
	curl_multi_add_handle(tk->fw->multi, t->easy);
	pthread_mutex_lock(&tk->fw->mu);
	t->next = tk->d->owned;
	tk->d->owned = t;
	tk->d->nowned++;
	pthread_mutex_unlock(&tk->fw->mu);
	tk->room--;
	if (tk->nids < HR_ARRAY_LEN(tk->ids))
		tk->ids[tk->nids++] = row->id;
	return HR_OK;
}

/* A lease write and the ids it names, one allocation. */
struct lease_op {
	struct hr_store_op op;
	struct hr_lease lease;
	int64_t ids[];
};

static void
lease_done(struct hr_store_op *op, void *arg)
{
	(void)arg;
	free(op); /* the first member of struct lease_op */
}

/* Record the lease on taken rows; informational, so nothing waits for it. */
static void
record_lease(struct hr_forwarder *fw, const int64_t *ids, size_t n)
{
	struct lease_op *lo = malloc(sizeof(*lo) + n * sizeof(lo->ids[0]));

	if (lo == NULL)
		return;
	memset(lo, 0, sizeof(*lo));
	memcpy(lo->ids, ids, n * sizeof(*ids));
	lo->lease = (struct hr_lease){ lo->ids, n, hr_time_now_us() + LEASE_US };
	lo->op.done = lease_done;
	if (hr_store_lease(fw->store, &lo->lease, &lo->op) != HR_OK)
		free(lo);
}

/* May d send at all: not disabled, its stored state read (under fw->mu). */
static bool
sends(const struct dest *d)
{
	return !d->disabled && !d->state_unread;
}

/* How long a probe's claim holds the other nodes off: as long as the probe may
 * take, not only the cooldown. A probe that outlasted the cooldown (to a
 * destination that hangs until the timeout) let another node claim and send a
 * second one; its outcome publishes the real time (hr_breaker_update()). */
static int64_t
probe_hold(const struct dest *d, int64_t cooldown_us)
{
	int64_t hold = d->cfg->timeout_ms * 1000 + PROBE_MARGIN_US;

	return hold > cooldown_us ? hold : cooldown_us;
}

/* This node's breaker change for the others, and the probe's claim when its time
 * came; *probed: a claim was tried (then the shared state is read at once), *won:
 * this node sends the probe. */
static void
share_breaker(struct hr_forwarder *fw, struct dest *d, int64_t now, bool *probed, bool *won)
{
	struct breaker *b = &d->breaker;
	bool publish, outcome;
	int64_t until, cooldown, shared = 0;

	pthread_mutex_lock(&fw->mu);
	publish = b->publish;
	outcome = b->publish_outcome;
	until = b->publish_until_us;
	cooldown = b->cooldown_us;
	b->publish = false;
	/* Claimed only when the probe may go now (hr_breaker_room()): a claim made
	 * while an attempt begun before the breaker opened was still out moved the
	 * shared probe time on, and this node's own claim, when that attempt ended,
	 * lost to it: the probe went a whole cooldown late (review RF40). */
	*probed = sends(d) && hr_breaker_probe_due(b, hr_fwd_in_flight(fw, d), now);
	pthread_mutex_unlock(&fw->mu);
	if (publish &&
	    hr_store_breaker_publish(fw->store, d->cfg->name, until, cooldown, outcome) != HR_OK) {
		pthread_mutex_lock(&fw->mu);
		if (!b->publish) { /* nothing newer: again at the next poll */
			b->publish = true;
			b->publish_outcome = outcome;
			b->publish_until_us = until;
		}
		pthread_mutex_unlock(&fw->mu);
	}
	*won = false;
	if (*probed &&
	    hr_store_breaker_probe(
	        fw->store, d->cfg->name, now, now + probe_hold(d, cooldown), won, &shared) != HR_OK)
		*won = false; /* the database is away: no probe now */
	pthread_mutex_lock(&fw->mu);
	if (*won) /* its failure doubles the destination's cooldown */
		hr_breaker_adopt_cooldown(b, shared);
	else if (*probed)
		b->probe_at_us = now + b->cooldown_us; /* the winner's outcome comes with the row */
	pthread_mutex_unlock(&fw->mu);
}

static void write_state(struct hr_forwarder *, struct dest *, int64_t now);

/*
 * A disable (410) or enable of this node's is written until the store holds
 * it: a write the queue had no room for, or whose commit failed, left the old
 * state on disk (back after a restart) and, with several nodes, in the row
 * the others follow, which this node then took back too. The row is read back
 * once a second while the change is unsaved, and written again if it differs,
 * unless another node set it since: its later state is taken (an enable on
 * another node right after this node's 410 was overwritten; a review).
 */
static void
save_state(struct hr_forwarder *fw, struct dest *d, int64_t now)
{
	struct hr_error err = { .field = "" };
	struct hr_destination_row row;
	char reason[64];
	bool check, disabled;

	pthread_mutex_lock(&fw->mu);
	check = d->state_unsaved && now >= d->state_check_us;
	disabled = d->disabled;
	pthread_mutex_unlock(&fw->mu);
	if (!check)
		return;
	if (hr_store_destination(fw->store, d->cfg->name, &row, reason, sizeof(reason), &err) !=
	    HR_OK) {
		row.disabled = !disabled; /* not known: written again */
		row.disabled_us = 0;
	}
	pthread_mutex_lock(&fw->mu);
	if (d->disabled == disabled && row.disabled == disabled) {
		d->state_unsaved = false;
	} else if (d->disabled == disabled && row.disabled_us > d->state_set_us &&
	    hr_store_claims_deliveries(fw->store)) {
		/* Several nodes (one alone may have had its clock stepped back). */
		d->disabled = row.disabled;
		d->state_unsaved = false;
		log_info("forward: destination %s %s on another node", d->cfg->name,
		    row.disabled ? "disabled" : "enabled");
	} else if (d->disabled == disabled) {
		write_state(fw, d, now);
	}
	pthread_mutex_unlock(&fw->mu);
}

/*
 * Several nodes on one database: what this node's breaker did goes to the
 * others, and what theirs did (and a destination disabled or enabled on
 * another node) comes here, read at most every SHARED_EVERY_US. This node's
 * own disable or enable wins until the store holds it (save_state).
 * SQLite shares nothing: its state is this node's.
 */
static void
share_state(struct hr_forwarder *fw, struct dest *d, int64_t now)
{
	struct hr_destination_shared sh;
	bool probed = false, won = false;

	share_breaker(fw, d, now, &probed, &won);
	if ((!probed && now < d->shared_at_us + SHARED_EVERY_US) ||
	    hr_store_destination_shared(fw->store, d->cfg->name, &sh) != HR_OK)
		return;
	d->shared_at_us = now;
	pthread_mutex_lock(&fw->mu);
	if (!won) /* the row now says until this node's probe is over */
		hr_breaker_follow(
		    &d->breaker, d->cfg, sh.breaker_until_us, sh.breaker_cooldown_us, now);
	if (sh.disabled != d->disabled && !d->state_unsaved) {
		d->disabled = sh.disabled;
		log_info("forward: destination %s %s on another node", d->cfg->name,
		    sh.disabled ? "disabled" : "enabled");
	}
	pthread_mutex_unlock(&fw->mu);
}

/*
 * While the store cannot be read (PostgreSQL down) every poll of every
 * destination fails, once a second and at each commit: each failure was a
 * line, 3,600 an hour per destination. An outage is a state: said when it
 * begins, again every UNREAD_REPEAT_US while it lasts (with the count so far),
 * and once every destination's rows are read again, through a bucket of its
 * own (one destination whose reads come and go must not repeat it without end).
 */
#define UNREAD_REPEAT_US (INT64_C(60) * 1000000)
static struct hr_logflood read_again_log = HR_LOGFLOOD_INIT;

static void
say_unread(struct hr_forwarder *fw, struct dest *d, const char *why)
{
	int64_t mono = hr_time_mono_us();

	if (fw->unread_since_us == 0)
		fw->unread_since_us = mono;
	fw->unread_reads++;
	if (fw->unread_said_us != 0 && mono - fw->unread_said_us < UNREAD_REPEAT_US)
		return;
	if (fw->unread_said_us == 0)
		log_warnx(
		    "forward: destination %s: nothing is sent while the store cannot be read: %s",
		    d->cfg->name, why);
	else
		log_warnx("forward: nothing is sent while the store cannot be read, for %.0f s now "
		          "(%lu failed reads): %s",
		    (double)(mono - fw->unread_since_us) / 1e6, fw->unread_reads, why);
	fw->unread_said_us = mono;
}

/* A read that worked: the store answers again. (Waiting for every destination
 * that failed to read again hung the line on one that stopped polling, a
 * destination disabled meanwhile, and the next outage began "for 86400 s".) */
static void
say_read_again(struct hr_forwarder *fw)
{
	int64_t mono = hr_time_mono_us();
	unsigned long held;

	if (fw->unread_since_us == 0)
		return;
	if (hr_logflood_take(&read_again_log, mono, &held)) {
		if (held > 0)
			log_info(
			    "forward: %lu returns of the store were not logged (a flood)", held);
		log_info("forward: the store is read again, after %lu failed reads in %.1f s",
		    fw->unread_reads, (double)(mono - fw->unread_since_us) / 1e6);
	}
	fw->unread_since_us = 0;
	fw->unread_said_us = 0;
	fw->unread_reads = 0;
}

/* Take the due rows tk has room for; *came_round: an ordered destination's walk
 * over its keys came to the last key (the next starts at the first), or failed;
 * *next_due: when the next row falls due, -1 when not known. */
static void
take_due(struct take *tk, int64_t now, bool claims, bool *came_round, int64_t *next_due)
{
	struct dest *d = tk->d;
	struct hr_error err = { .field = "" };

	if (hr_store_due_deliveries(tk->fw->store, d->cfg->name, now, d->cfg->ordered,
	        tk->room + (claims ? 0 : hr_fwd_in_flight(tk->fw, d)), &d->keys_window, take_row,
	        tk, next_due, &err) != HR_OK) {
		say_unread(tk->fw, d, err.msg);
		*came_round = true; /* no walk to go on with: the next news or second tries again */
		return;
	}
	say_read_again(tk->fw);
	*came_round = d->cfg->ordered && d->keys_window == NULL;
}

struct hr_fwd_polled
hr_fwd_delivery_poll(struct hr_forwarder *fw, struct dest *d, int64_t now)
{
	struct hr_error err = { .field = "" };
	struct take tk = { fw, d, 0, { 0 }, 0 };
	struct hr_fwd_polled out = { false, false };
	int64_t next_due = -1, looked;
	/* A store that claims (several nodes) never returns rows this node holds:
	 * ask for what there is room for, or the extra rows would sit leased. */
	bool claims = hr_store_claims_deliveries(fw->store);

	if (d->state_unread && hr_fwd_dest_read_state(fw, d, &err) == HR_OK)
		log_info("forward: destination %s: its state is read; it sends", d->cfg->name);
	save_state(fw, d, now);
	share_state(fw, d, now);
	pthread_mutex_lock(&fw->mu);
	tk.room = !sends(d) ? 0
	                    : hr_breaker_room(&d->breaker, d->cfg->name, d->cfg->max_in_flight,
	                          hr_fwd_in_flight(fw, d), now);
	pthread_mutex_unlock(&fw->mu);
	looked = hr_time_mono_us();
	if (tk.room > 0)
		take_due(&tk, now, claims, &out.came_round, &next_due);
	if (tk.nids > 0 && !claims) /* a claim is its own lease */
		record_lease(fw, tk.ids, tk.nids);
	/* Without room a due row waits for news, not for its time (an attempt's
	 * end, an enable, the breaker's probe time: forward_loop.c): nothing to
	 * ask, where a poll right after an attempt's record was a round trip. */
	if (tk.room > 0) {
		if (next_due < 0 && hr_store_next_due(fw->store, d->cfg->name, &next_due) != HR_OK)
			next_due = now + IDLE_POLL_US;
		d->next_due_us = next_due;
	}
	atomic_fetch_add_explicit(&d->metrics.poll_us,
	    (unsigned long long)(hr_time_mono_us() - looked), memory_order_relaxed);
	out.filled = tk.room == 0;
	return out;
}

/* Retry-After as seconds or an HTTP date; 0 when absent or unreadable. */
static int64_t
retry_after_us(CURL *e, int64_t now)
{
	struct curl_header *h = NULL;
	char *end;
	long long secs;
	time_t when;

	if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return 0;
	secs = strtoll(h->value, &end, 10);
	if (end != h->value && *end == '\0' && secs >= 0) /* capped: no overflow */
		return secs < INT64_MAX / 1000000 ? secs * 1000000 : INT64_MAX / 1000000 * 1000000;
	/* A date in seconds, compared before it is made microseconds: libcurl reads
	 * years up to 2^31, and past the year 292277 the product overflowed (a
	 * review: the header was then taken for absent, not clamped). */
	when = curl_getdate(h->value, NULL);
	if (when <= 0 || (int64_t)when <= now / 1000000)
		return 0;
	return (int64_t)when < INT64_MAX / 1000000 ? (int64_t)when * 1000000 - now
	                                           : INT64_MAX / 1000000 * 1000000;
}

/* Jittered delay before attempt number `next` (2 = first retry). */
static int64_t
delay_us(const struct hr_destination_cfg *c, int next)
{
	return hr_retry_delay_us(c->retry_schedule.ms[next - 2] * 1000, c->jitter_pct);
}

/*
 * 62 random bits from a generator of the calling thread's own (xorshift64*),
 * seeded from the kernel at its first draw. rand() was never seeded: every
 * node and every restart drew the same jitter, so retries that failed at the
 * same moment on several nodes came back at the same moment too.
 */
static uint64_t
jitter_bits(void)
{
	static _Thread_local uint64_t x;

	while (x == 0)
		if (getrandom(&x, sizeof(x), 0) != (ssize_t)sizeof(x))
			x = (uint64_t)hr_time_now_us() ^ (uint64_t)getpid() << 32;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	return (x * UINT64_C(2685821657736338717)) >> 2;
}

/*
 * Uniform over base +- jitter_pct %, whatever the base: a 10-hour step spreads
 * over +- 2 hours, which is more microseconds than an unsigned holds, so the
 * draw is 62 bits wide and the arithmetic 64. Jitter only spreads load; it
 * need not be unpredictable, only different from one process to the next.
 */
int64_t
hr_retry_delay_us(int64_t base_us, unsigned jitter_pct)
{
	int64_t spread = base_us * (int64_t)jitter_pct / 100; /* steps are at most 30 days */

	if (spread <= 0)
		return base_us;
	return base_us - spread + (int64_t)(jitter_bits() % (uint64_t)(2 * spread + 1));
}

/*
 * Refused by the guard: only when no address of the name was allowed. A name
 * with a private and a public address whose public one failed to connect is
 * an outage like any other, to be retried, not a final refusal.
 */
static bool
refused(const struct transfer *t)
{
	return t->blocked && !t->opened_allowed;
}

enum hr_fwd_outcome
hr_fwd_classify(const struct transfer *t, CURLcode rc, long status)
{
	if (refused(t))
		return HR_FWD_FAIL;
	if (rc != CURLE_OK)
		return HR_FWD_RETRY; /* DNS, connect, timeout, reset, partial answer */
	if (status >= 200 && status < 300)
		return HR_FWD_SUCCESS;
	if (status == 410)
		return HR_FWD_GONE;
	if (status >= 500 || status == 408 || status == 429)
		return HR_FWD_RETRY;
	if (status >= 400 && status < 500 && t->d->cfg->retry_4xx)
		return HR_FWD_RETRY;
	return HR_FWD_FAIL;
}

static void
attempt_done(struct hr_store_op *op, void *arg)
{
	struct transfer *t = arg;
	struct hr_forwarder *fw = t->fw;

	/* Once `recorded` is seen, hr_fwd_delivery_reap() may free t and a stop may free fw: wake
	 * before letting go of the lock, and do not touch t after. A record that did not
	 * commit keeps t (reap offers it again): freed, its row would be due at once and
	 * the request sent again, as often as the destination answers. */
	pthread_mutex_lock(&fw->mu);
	if (op->res.status == HR_OK)
		t->recorded = true;
	else
		t->record_failed = true;
	hr_forwarder_wake(fw);
	pthread_mutex_unlock(&fw->mu);
}

static void
submit_record(struct hr_forwarder *fw, struct transfer *t)
{
	t->op = (struct hr_store_op){ .done = attempt_done, .arg = t };
	if (hr_store_record_attempt(fw->store, &t->att, &t->op) == HR_OK) {
		t->submitted = true;
		return;
	}
	/* Queue full or stopping: keep it and offer it again on the next turn. */
	t->next_unsubmitted = fw->unsubmitted;
	fw->unsubmitted = t;
}

/*
 * A record the store could not commit (a full disk, a database gone) is
 * written again every RECORD_RETRY_US; meanwhile its row stays taken here, so
 * the request is not sent again. Past RECORD_KEEP_US (the lease a shared
 * store gives the row) it is let go: the row is pending still and its attempt
 * is made again. Caller holds fw->mu; the loop's thread.
 */
static bool
record_again(struct hr_forwarder *fw, struct transfer *t, int64_t now)
{
	t->record_failed = false;
	t->submitted = false;
	if (t->record_failed_us == 0) {
		t->record_failed_us = now;
		log_warnx("forward: the attempt of delivery %lld to %s could not be recorded:"
		          " written again every %llds, not sent again meanwhile",
		    (long long)t->delivery_id, t->d->cfg->name,
		    (long long)(RECORD_RETRY_US / 1000000));
	}
	if (now - t->record_failed_us > RECORD_KEEP_US) {
		log_warnx("forward: the attempt of delivery %lld to %s is still not recorded:"
		          " its row will be taken again",
		    (long long)t->delivery_id, t->d->cfg->name);
		return false;
	}
	t->record_at_us = now + RECORD_RETRY_US;
	t->next_unsubmitted = fw->unsubmitted;
	fw->unsubmitted = t;
	return true;
}

/* The write owns a copy of the name: a reload may free the config before the writer runs. */
struct disable_op {
	struct hr_store_op op;
	struct hr_destination_state state;
	char name[HR_NAME_MAX];
	char reason[64];
};

static void
disable_done(struct hr_store_op *op, void *arg)
{
	(void)arg;
	free(op); /* the first member of struct disable_op */
}

/* Write d's state (fw->mu held); read back at d->state_check_us. */
static void
write_state(struct hr_forwarder *fw, struct dest *d, int64_t now)
{
	struct disable_op *dop = calloc(1, sizeof(*dop));

	d->state_check_us = now + SHARED_EVERY_US;
	if (dop == NULL)
		return;
	snprintf(dop->name, sizeof(dop->name), "%s", d->cfg->name);
	snprintf(dop->reason, sizeof(dop->reason), "%s", d->state_reason);
	dop->state = (struct hr_destination_state){ dop->name, d->disabled,
		d->disabled ? dop->reason : NULL, d->state_set_us };
	dop->op.done = disable_done;
	if (hr_store_set_destination(fw->store, &dop->state, &dop->op) != HR_OK)
		free(dop); /* the queue is full: written again at the check */
}

void
hr_fwd_set_disabled(struct hr_forwarder *fw, struct dest *d, bool disabled, const char *reason)
{
	d->disabled = disabled;
	snprintf(d->state_reason, sizeof(d->state_reason), "%s", reason != NULL ? reason : "");
	d->state_unsaved = true;
	d->state_set_us = hr_time_now_us();
	write_state(fw, d, d->state_set_us);
}

static void
fill_attempt(struct transfer *t, CURLcode rc, long status, enum hr_fwd_outcome out, int64_t now)
{
	struct hr_attempt *a = &t->att;
	const struct hr_destination_cfg *c = t->d->cfg;

	a->delivery_id = t->delivery_id;
	/* Every send is logged, the resends under the attempt's own number: they
	 * went out within one attempt (libcurl tried other kept-alive connections,
	 * up to 5 more, each closed before any answer), and counted as attempts
	 * they spent the retry schedule: a review saw one attempt to a receiver
	 * that closes without answering make a delivery dead, and move the first
	 * retry of the default schedule from 5 s to 2 h. */
	a->resends = t->sends > 1 ? t->sends - 1 : 0;
	a->number = t->number;
	a->started_us = t->started_us;
	a->duration_us = now - t->started_us;
	a->http_status = rc == CURLE_OK ? (int)status : 0;
	a->response = t->response_len > 0 ? t->response : NULL;
	a->response_len = t->response_len;
	if (refused(t))
		a->error = t->why;
	else if (rc != CURLE_OK)
		a->error = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
	if (out == HR_FWD_SUCCESS) {
		a->new_status = HR_DLV_SUCCEEDED;
	} else if (out == HR_FWD_RETRY && (size_t)t->number <= c->retry_schedule.n) {
		int64_t step = delay_us(c, t->number + 1);
		int64_t asked = retry_after_us(t->easy, now);

		/* Retry-After is honoured within [next step, 2 x next step]. */
		if (asked > step)
			step = asked < 2 * step ? asked : 2 * step;
		a->new_status = HR_DLV_PENDING;
		a->next_attempt_us = now + step;
	} else {
		a->new_status = out == HR_FWD_RETRY ? HR_DLV_DEAD : HR_DLV_FAILED;
	}
}

/* /metrics: the attempt's outcome and times (atomics: /metrics reads them meanwhile). */
static void
count_attempt(struct transfer *t, enum hr_fwd_outcome out, int64_t now)
{
	struct hr_dest_metrics *m = &t->d->metrics;
	enum hr_attempt_outcome o = HR_OUTCOME_FAILED;

	if (refused(t))
		o = HR_OUTCOME_BLOCKED;
	else if (out == HR_FWD_GONE)
		o = HR_OUTCOME_GONE;
	else if (t->att.new_status == HR_DLV_SUCCEEDED)
		o = HR_OUTCOME_SUCCEEDED;
	else if (t->att.new_status == HR_DLV_PENDING)
		o = HR_OUTCOME_RETRIED;
	else if (t->att.new_status == HR_DLV_DEAD)
		o = HR_OUTCOME_DEAD;
	atomic_fetch_add_explicit(&m->outcomes[o], 1, memory_order_relaxed);
	hr_hist_observe(&m->attempt, &hr_hist_attempt_duration, now - t->started_us);
	if (o == HR_OUTCOME_SUCCEEDED)
		hr_hist_observe(&m->latency, &hr_hist_delivery_latency, now - t->received_us);
}

/* What the attempt came to: the answer's HTTP status, else the error (libcurl's,
 * or the SSRF guard's). */
static const char *
attempt_reason(const struct transfer *t, char *buf, size_t size)
{
	if (t->att.error != NULL)
		return t->att.error;
	snprintf(buf, size, "HTTP %d", t->att.http_status);
	return buf;
}

/*
 * A failed or dead delivery is final: it is not sent again unless replayed, so
 * the operator must hear of it whatever the level (a 401 was logged at debug
 * only: a log review). Both say the same things the same way: destination,
 * event, delivery, the attempt and why, and the remedy. A bucket per
 * destination (ratelimit.h): a receiver refusing every delivery must not fill
 * the journal, nor hide another destination's lines; the API and
 * hookrelay_deliveries_total keep the count.
 */
static void
log_final(const struct transfer *t, const char *reason)
{
	bool dead = t->att.new_status == HR_DLV_DEAD;
	unsigned long held;

	if (!hr_logflood_take(&t->d->final_log, hr_time_mono_us(), &held))
		return;
	if (held > 0)
		log_warnx(
		    "forward: destination %s: %lu failed or dead deliveries were not logged (a"
		    " flood); see hookctl deliveries list --destination %s --status failed (or"
		    " dead) and hookrelay_deliveries_total",
		    t->d->cfg->name, held, t->d->cfg->name);
	log_warnx("forward: delivery %lld of %s to %s: %s at attempt %d (%s): %s; replay: hookctl"
	          " replay %s --destination %s",
	    (long long)t->delivery_id, t->event_id, t->d->cfg->name, dead ? "dead" : "failed",
	    t->number, dead ? "final: no retry left" : "final: not retried", reason, t->event_id,
	    t->d->cfg->name);
}

/* Every attempt at debug; the final failures at warning (log_final). */
static void
log_outcome(const struct transfer *t, const char *reason, int64_t now)
{
	if (t->att.new_status == HR_DLV_FAILED || t->att.new_status == HR_DLV_DEAD)
		log_final(t, reason);
	else if (t->att.new_status == HR_DLV_PENDING)
		log_debug(
		    "forward: delivery %lld of %s to %s: attempt %d: %s; next attempt in %.1f s",
		    (long long)t->delivery_id, t->event_id, t->d->cfg->name, t->number, reason,
		    (double)(t->att.next_attempt_us - now) / 1e6);
	else
		log_debug("forward: delivery %lld of %s to %s: attempt %d: %s; succeeded",
		    (long long)t->delivery_id, t->event_id, t->d->cfg->name, t->number, reason);
}

/*
 * The destination whose state (its breaker, a 410's disabling, the last error
 * shown) an attempt's answer speaks for: the one of its name configured now,
 * while it sends to the URL the attempt went to. A reload that removed the
 * name and configured it again made a new one: a 410 disabled the removed
 * copy, and the new one went on sending (until a restart read the state). A
 * reload that changed the URL: an answer of the old URL says nothing of the
 * new one (a 410 from the receiver being replaced disabled its successor).
 * With none of its name configured, its own (a 410 is kept for the name).
 * NULL: none. Caller holds fw->mu.
 */
static struct dest *
state_dest(struct hr_forwarder *fw, const struct transfer *t)
{
	struct dest *d = hr_fwd_find_dest(fw, t->d->cfg->name);

	if (d == NULL)
		return t->d;
	return strcmp(d->cfg->url, t->url) == 0 ? d : NULL;
}

void
hr_fwd_delivery_finish(struct hr_forwarder *fw, CURL *e, CURLcode rc)
{
	struct transfer *t = NULL;
	struct dest *sd;
	int64_t now = hr_time_now_us();
	long status = 0;
	enum hr_fwd_outcome out;
	char buf[32];
	const char *reason;

	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&t);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	out = hr_fwd_classify(t, rc, status);
	fill_attempt(t, rc, status, out, now);
	count_attempt(t, out, now);
	reason = attempt_reason(t, buf, sizeof(buf));
	pthread_mutex_lock(&fw->mu);
	if ((sd = state_dest(fw, t)) != NULL) {
		if (out != HR_FWD_SUCCESS) {
			snprintf(sd->last_error, sizeof(sd->last_error), "%s", reason);
			sd->last_error_us = now;
		}
		hr_breaker_update(&sd->breaker, sd->cfg, out != HR_FWD_RETRY, sd->last_error, now);
		if (out == HR_FWD_GONE && !sd->disabled) {
			hr_fwd_set_disabled(fw, sd, true, "410 Gone");
			log_warnx("forward: destination %s answered 410 Gone: disabled until "
			          "enabled again",
			    sd->cfg->name);
		}
	}
	pthread_mutex_unlock(&fw->mu);
	log_outcome(t, reason, now);
	curl_multi_remove_handle(fw->multi, e);
	curl_easy_cleanup(e);
	t->easy = NULL;
	submit_record(fw, t);
}

/* Free one destination's transfers whose record committed; offer again those
 * whose record failed. Caller holds fw->mu. */
static void
reap_dest(struct hr_forwarder *fw, struct dest *d, int64_t now)
{
	struct transfer **pp = &d->owned;

	while (*pp != NULL) {
		struct transfer *t = *pp;

		bool done = t->recorded;

		if (t->record_failed)
			done = !record_again(fw, t, now);
		if (!done) {
			pp = &t->next;
			continue;
		}
		*pp = t->next;
		d->nowned--;
		hr_fwd_transfer_free(t);
		atomic_store(&fw->poll_needed, true);
	}
}

/* Is a destination of d's name configured (d retired)? Under fw->mu. */
static bool
configured_again(const struct hr_forwarder *fw, const struct dest *d)
{
	for (size_t i = 0; i < fw->ndests; i++)
		if (strcmp(fw->dests[i]->cfg->name, d->cfg->name) == 0)
			return true;
	return false;
}

/*
 * A retired copy's disable (a 410 to one of its last attempts) is saved as a
 * live destination's is, and the copy is not freed before: freed with its
 * write dropped (the writer's queue full), the 410 was forgotten, and the
 * name configured again later sent to the URL that had answered Gone (a
 * review). Once the name is configured again its new copy has taken the
 * state over (adopt_retired_state) and saves it: this one stops, or it would
 * undo an enable of the new one. Only this thread changes the retired list.
 */
void
hr_fwd_delivery_save_retired(struct hr_forwarder *fw, int64_t now)
{
	for (struct dest *r = fw->retired; r != NULL; r = r->next_retired) {
		bool save;

		pthread_mutex_lock(&fw->mu);
		if (r->state_unsaved && configured_again(fw, r))
			r->state_unsaved = false;
		save = r->state_unsaved;
		pthread_mutex_unlock(&fw->mu);
		if (save)
			save_state(fw, r, now);
	}
}

/* Free transfers whose record committed (their rows may be taken again), and
 * retired destinations with nothing left in flight and their state saved. */
void
hr_fwd_delivery_reap(struct hr_forwarder *fw)
{
	int64_t now = hr_time_now_us();

	pthread_mutex_lock(&fw->mu);
	for (size_t i = 0; i < fw->ndests; i++)
		reap_dest(fw, fw->dests[i], now);
	for (struct dest **rp = &fw->retired; *rp != NULL;) {
		struct dest *d = *rp;

		reap_dest(fw, d, now);
		if (d->nowned > 0 || d->state_unsaved) {
			rp = &d->next_retired;
			continue;
		}
		*rp = d->next_retired;
		hr_fwd_dest_free(d);
	}
	pthread_mutex_unlock(&fw->mu);
}

/* Offer the writer the records that found its queue full, and those whose
 * write failed once their wait is over. */
void
hr_fwd_delivery_resubmit(struct hr_forwarder *fw)
{
	int64_t now = hr_time_now_us();
	struct transfer *t = fw->unsubmitted, *waiting = NULL;

	fw->unsubmitted = NULL;
	while (t != NULL) {
		struct transfer *next = t->next_unsubmitted;

		if (t->record_at_us > now) {
			t->next_unsubmitted = waiting;
			waiting = t;
		} else {
			submit_record(fw, t);
		}
		t = next;
	}
	while (waiting != NULL) {
		struct transfer *next = waiting->next_unsubmitted;

		waiting->next_unsubmitted = fw->unsubmitted;
		fw->unsubmitted = waiting;
		waiting = next;
	}
}
