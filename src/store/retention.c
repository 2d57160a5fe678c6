/*
 * retention.c - the data lifecycle's timer, for any engine.
 *
 * A small thread wakes every prune_interval, queues one pruning pass as a
 * write (the engine's `prune`, store_ops.h), and waits for it: the pass
 * runs on the writer thread inside a batch transaction like every other
 * write, so there is still one writer. A pass is bounded by the engine;
 * while it says it left work behind, the next one follows after SOON_US.
 * A reload hands a new policy over, taken between two passes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "store_int.h"

#define SOON_US             (INT64_C(50) * 1000) /* the next pass, while work is left */
#define DEFAULT_INTERVAL_US (INT64_C(60) * 1000000)

/* A copy of a struct hr_retention with its strings, the input of a pass. */
struct policy {
	struct hr_retention r; /* r.rules points at rules[] */
	struct hr_retention_rule rules[];
};

struct hr_retention_state {
	struct hr_store *store;
	pthread_t thread;
	pthread_mutex_t mu; /* all below but the pass's result and the counters */
	pthread_cond_t cv;  /* CLOCK_MONOTONIC */
	bool stop, op_done;
	struct policy *current; /* the pass in flight reads it; swapped only between passes */
	struct policy *pending; /* set by a reload, taken before the next pass */
	struct hr_store_op op;
	struct hr_prune_result last; /* the writer's while the pass runs; read after done */
	/* totals, for /metrics */
	atomic_ullong passes, payloads, events, sessions, rejections, vacuumed;
};

/* ---- the policy ---- */

static void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->r.nrules; i++)
		free((char *)p->rules[i].source);
	free(p);
}

static struct policy *
policy_new(const struct hr_retention *in)
{
	struct policy *p = calloc(1, sizeof(*p) + in->nrules * sizeof(p->rules[0]));

	if (p == NULL)
		return NULL;
	p->r.interval_us = in->interval_us > 0 ? in->interval_us : DEFAULT_INTERVAL_US;
	p->r.max_size = in->max_size;
	p->r.rules = p->rules;
	for (; p->r.nrules < in->nrules; p->r.nrules++) {
		p->rules[p->r.nrules].retain_us = in->rules[p->r.nrules].retain_us;
		if ((p->rules[p->r.nrules].source = strdup(in->rules[p->r.nrules].source)) ==
		    NULL) {
			policy_free(p);
			return NULL;
		}
	}
	return p;
}

/* ---- the timer thread ---- */

/* Writer thread, after the commit: count what became durable, wake the timer. */
static void
prune_done(struct hr_store_op *op, void *arg)
{
	struct hr_retention_state *r = arg;
	const struct hr_prune_result *p = &r->last;

	/* A failed pass's figures too: what it kept before the failure is gone
	 * all the same (hr_prune_result), and went uncounted. */
	atomic_fetch_add(&r->payloads, p->payloads);
	atomic_fetch_add(&r->events, p->events);
	atomic_fetch_add(&r->sessions, p->sessions);
	atomic_fetch_add(&r->rejections, p->rejections);
	atomic_fetch_add(&r->vacuumed, p->vacuumed);
	if (p->payloads + p->events + p->rejections + p->vacuumed > 0)
		log_info("store: pruned %llu payloads, %llu events, %llu sessions, %llu"
		         " rejections; %llu free pages given back",
		    (unsigned long long)p->payloads, (unsigned long long)p->events,
		    (unsigned long long)p->sessions, (unsigned long long)p->rejections,
		    (unsigned long long)p->vacuumed);
	if (op->res.status == HR_OK && !p->failed) {
		atomic_fetch_add(&r->passes, 1);
	} else {
		r->last.more = false;
		log_warnx("store: a pruning pass failed; the next one tries again");
	}
	pthread_mutex_lock(&r->mu);
	r->op_done = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

static void
wait_until(struct hr_retention_state *r, int64_t mono_us)
{
	struct timespec ts = { (time_t)(mono_us / 1000000), (long)(mono_us % 1000000) * 1000 };

	pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

/* Queue one pass and wait for it (mu held, released while waiting); true: more to do. */
static bool
run_pass(struct hr_retention_state *r)
{
	int rc;

	memset(&r->op, 0, sizeof(r->op));
	memset(&r->last, 0, sizeof(r->last));
	r->op.done = prune_done;
	r->op.arg = r;
	r->op_done = false;
	pthread_mutex_unlock(&r->mu);
	rc = hr_store_submit(r->store, HR_OP_PRUNE, &r->current->r, &r->last, &r->op);
	pthread_mutex_lock(&r->mu);
	if (rc != HR_OK)
		return false; /* the queue is full or the store stops: try at the next turn */
	while (!r->op_done)
		pthread_cond_wait(&r->cv, &r->mu);
	return r->last.more;
}

static void *
retention_main(void *arg)
{
	struct hr_retention_state *r = arg;
	int64_t next = hr_time_mono_us() + r->current->r.interval_us;

	pthread_mutex_lock(&r->mu);
	while (!r->stop) {
		int64_t now = hr_time_mono_us();

		if (r->pending != NULL) { /* a reload: its interval counts from now at most */
			policy_free(r->current);
			r->current = r->pending;
			r->pending = NULL;
			if (next > now + r->current->r.interval_us)
				next = now + r->current->r.interval_us;
		}
		if (now < next) {
			wait_until(r, next);
			continue;
		}
		next = run_pass(r) ? hr_time_mono_us() + SOON_US
		                   : hr_time_mono_us() + r->current->r.interval_us;
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static struct hr_retention_state *
state_new(struct hr_store *s, struct policy *p)
{
	struct hr_retention_state *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;

	if (r == NULL)
		return NULL;
	r->store = s;
	r->current = p;
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	return r;
}

static void
state_free(struct hr_retention_state *r)
{
	policy_free(r->current);
	policy_free(r->pending);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

int
hr_store_set_retention(struct hr_store *s, const struct hr_retention *in)
{
	struct policy *p = policy_new(in);
	struct hr_retention_state *r;

	if (p == NULL)
		return HR_ENOMEM;
	if ((r = s->retention) != NULL) {
		pthread_mutex_lock(&r->mu);
		policy_free(r->pending);
		r->pending = p;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
		return HR_OK;
	}
	if ((r = state_new(s, p)) == NULL) {
		policy_free(p);
		return HR_ENOMEM;
	}
	if (pthread_create(&r->thread, NULL, retention_main, r) != 0) {
		state_free(r);
		return HR_ENOMEM;
	}
	s->retention = r;
	return HR_OK;
}

void
hr_store_retention_stop(struct hr_store *s)
{
	struct hr_retention_state *r = s->retention;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL); /* a pass in flight finishes: the writer still runs */
	s->retention = NULL;
	state_free(r);
}

void
hr_store_prune_stats(struct hr_store *s, struct hr_prune_stats *out)
{
	struct hr_retention_state *r = s->retention;

	memset(out, 0, sizeof(*out));
	out->rejections_dropped = atomic_load(&s->rejections_dropped);
	if (r == NULL)
		return;
	out->passes = atomic_load(&r->passes);
	out->payloads = atomic_load(&r->payloads);
	out->events = atomic_load(&r->events);
	out->sessions = atomic_load(&r->sessions);
	out->rejections = atomic_load(&r->rejections);
	out->vacuumed_pages = atomic_load(&r->vacuumed);
}
