/*
 * writer_ping.c - is the writer thread alive? An empty write through its
 * queue: asked without waiting (the watchdog's, every tick) or waited for up
 * to a timeout (/readyz, the writer check).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "hr/timefmt.h"
#include "store_int.h"

/* A ping lives on the pinger's stack only while it waits; after a timeout it is
 * handed to the writer to free, so a late done() never touches a dead stack. */
struct ping {
	struct hr_store_op op;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done, abandoned;
	int status; /* the ping's transaction: HR_OK or HR_EDB */
};

static void
ping_free(struct ping *p)
{
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

static void
ping_done(struct hr_store_op *op, void *arg)
{
	struct ping *p = arg;
	bool abandoned;

	pthread_mutex_lock(&p->mu);
	p->done = true;
	p->status = op->res.status;
	abandoned = p->abandoned;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (abandoned)
		ping_free(p);
}

static void
watchdog_ping_done(struct hr_store_op *op, void *arg)
{
	struct hr_store *s = arg;

	atomic_store(&s->ping_out, false);
}

/*
 * Asked, not waited for: a thread that waited here for the ping would take
 * no signal meanwhile (the main thread: a SIGHUP held up for as long as the
 * writer is stuck). The ping only shows an idle writer turning; a writer
 * busy with a queue of slow batches shows it by finishing them.
 */
bool
hr_store_writer_turns(struct hr_store *s, int64_t within_us)
{
	int64_t now = hr_time_mono_us(), last_turn;

	if (!atomic_exchange(&s->ping_out, true)) {
		s->ping_sent_us = now;
		s->ping.done = watchdog_ping_done;
		s->ping.arg = s;
		if (hr_store_submit(s, HR_OP_PING, NULL, NULL, &s->ping) != HR_OK)
			atomic_store(&s->ping_out, false); /* full or stopping: the batches tell */
	}
	pthread_mutex_lock(&s->mu);
	last_turn = s->stats.last_commit_us;
	pthread_mutex_unlock(&s->mu);
	return now - last_turn < within_us ||
	    (atomic_load(&s->ping_out) && now - s->ping_sent_us < within_us);
}

int
hr_store_ping_writer(struct hr_store *s, int64_t timeout_us)
{
	struct ping *p = calloc(1, sizeof(*p));
	int64_t deadline = hr_time_now_us() + timeout_us;
	bool done = false, free_it = true;
	int status = HR_OK;
	struct timespec until;

	if (p == NULL)
		return HR_ENOMEM;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->op.done = ping_done;
	p->op.arg = p;
	if (hr_store_submit(s, HR_OP_PING, NULL, NULL, &p->op) != HR_OK)
		goto out;
	until.tv_sec = deadline / 1000000;
	until.tv_nsec = (deadline % 1000000) * 1000;
	pthread_mutex_lock(&p->mu);
	while (!p->done && pthread_cond_timedwait(&p->cv, &p->mu, &until) == 0)
		;
	done = p->done;
	status = p->status;
	if (!done) {
		p->abandoned = true; /* the writer frees it when it finally gets there */
		free_it = false;
	}
	pthread_mutex_unlock(&p->mu);
out:
	if (free_it)
		ping_free(p);
	return !done ? HR_EBUSY : status == HR_OK ? HR_OK : HR_EDB;
}
