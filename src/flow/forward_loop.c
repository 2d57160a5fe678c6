/*
 * forward_loop.c - the forwarder's thread: one libcurl multi loop.
 *
 * Connection reuse and keep-alive come from the multi handle's connection
 * cache. The loop wakes when the writer commits new delivery rows, when an
 * attempt's record committed, when the next pending row falls due, or when
 * an ordered destination's walk over its sessions is to go on; it applies a
 * reload, takes due rows (forward_delivery.c), drives the transfers and
 * reaps the finished ones. At stop it lets the running attempts finish for a
 * grace period.
 */
#include <curl/curl.h>

#include "forward_int.h"
#include "hr/timefmt.h"

static void
drain_messages(struct hr_forwarder *fw)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(fw->multi, &left)) != NULL)
		if (m->msg == CURLMSG_DONE)
			hr_fwd_delivery_finish(fw, m->easy_handle, m->data.result);
}

/*
 * An ordered destination's poll walks up to 1,000 sessions' heads from where
 * the last walk ended (store.h), and polls came only with news: rows committed
 * or an attempt ended (the writer's and the reaper's wake-ups), or once a
 * second. So after a burst, the sessions past the windows those polls had
 * read went at one window a second: 4,570 events of new sessions behind
 * 5,000 sessions waiting for their retries, 3,368 out a minute later. Now the
 * walk goes on by itself for WALK_ROUNDS_AFTER_NEWS rounds (from the first
 * key to the last) after the last news, so that a whole round began after it
 * (news may make a session's head due anywhere in the keys); then it waits
 * for news again. Each of those polls that nobody asked for waits
 * POLL_PAUSE_FACTOR times as long as the one before took, so they take at
 * most a quarter of the forwarder's time: time, not CPU, as for a claim
 * PostgreSQL's server walks the keys while this thread waits. Polls that news
 * asks for are not paused: pausing them slowed a drain of 100,000 in 1,000
 * sessions from 5,600 a second to 3,500 (each walk is then most of the
 * forwarder's work).
 */
#define POLL_PAUSE_FACTOR 3
/* The news may have come halfway through the first round. */
#define WALK_ROUNDS_AFTER_NEWS 2

/* Poll d, unless only the timer asks while its walk's pause runs; the time it
 * is to be polled again, or INT64_MAX. */
static int64_t
poll_dest(struct hr_forwarder *fw, struct dest *d, int64_t now, bool news)
{
	int64_t mono = hr_time_mono_us(), cpu, next = INT64_MAX;
	struct hr_fwd_polled p;

	if (news)
		d->walk_rounds = WALK_ROUNDS_AFTER_NEWS;
	if (!news && mono < d->poll_after_us)
		return now + (d->poll_after_us - mono);
	cpu = hr_time_thread_cpu_us();
	p = hr_fwd_delivery_poll(fw, d, now);
	cpu = hr_time_thread_cpu_us() - cpu;
	atomic_fetch_add_explicit(&d->metrics.polls, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(
	    &d->metrics.poll_cpu_us, (unsigned long long)cpu, memory_order_relaxed);
	if (p.came_round && d->walk_rounds > 0)
		d->walk_rounds--;
	d->poll_after_us = 0;
	if (d->cfg->ordered && !p.filled && d->walk_rounds > 0) {
		int64_t took = hr_time_mono_us() - mono;

		d->poll_after_us = mono + took + POLL_PAUSE_FACTOR * took;
		next = now + took + POLL_PAUSE_FACTOR * took;
	}
	/* A row already due was either taken (it stays pending while in
	 * flight) or could not be: no room, key busy, disabled, breaker
	 * open. Each of those ends with a wake-up (reap, enable, probe_at),
	 * so only a future due time sets the timer; else the loop spins. The
	 * same for the probe: only a poll of an enabled destination moves a
	 * probe time that has passed, and enabling one wakes the loop. */
	if (d->next_due_us > now && d->next_due_us < next)
		next = d->next_due_us;
	pthread_mutex_lock(&fw->mu);
	if (!d->disabled && d->breaker.state == HR_BREAKER_OPEN && d->breaker.probe_at_us > now &&
	    d->breaker.probe_at_us < next)
		next = d->breaker.probe_at_us;
	pthread_mutex_unlock(&fw->mu);
	return next;
}

/* `news`: the writer or a finished attempt asked for it. */
static int64_t
poll_all(struct hr_forwarder *fw, int64_t now, bool news)
{
	int64_t next = now + IDLE_POLL_US;

	hr_fwd_delivery_save_retired(fw, now);
	for (size_t i = 0; i < fw->ndests; i++) {
		int64_t at = poll_dest(fw, fw->dests[i], now, news);

		if (at < next)
			next = at;
	}
	return next;
}

static bool
dest_owns(const struct dest *d, bool with_writer_only)
{
	for (const struct transfer *t = d->owned; t != NULL; t = t->next)
		if (!with_writer_only || (t->submitted && !t->recorded))
			return true;
	return false;
}

/* Owned transfers; with `with_writer_only`, only those whose record the writer holds. */
static bool
anything_owned(struct hr_forwarder *fw, bool with_writer_only)
{
	bool any = !with_writer_only && fw->unsubmitted != NULL;

	pthread_mutex_lock(&fw->mu);
	for (size_t i = 0; i < fw->ndests && !any; i++)
		any = dest_owns(fw->dests[i], with_writer_only);
	for (struct dest *d = fw->retired; d != NULL && !any; d = d->next_retired)
		any = dest_owns(d, with_writer_only);
	pthread_mutex_unlock(&fw->mu);
	return any;
}

void *
hr_fwd_loop_main(void *arg)
{
	struct hr_forwarder *fw = arg;
	int64_t next_poll = 0, stop_deadline = 0;
	int running = 0;

	for (;;) {
		int64_t now = hr_time_now_us();
		long wait_ms;

		atomic_store(
		    &fw->last_loop_us, hr_time_mono_us()); /* a step of the clock is no stall */
		hr_fwd_apply_reload(fw);
		if (atomic_load(&fw->stopping)) {
			/* No new attempts; let the running ones finish and be recorded. */
			if (stop_deadline == 0)
				stop_deadline = now + STOP_GRACE_US;
			/* Past the grace period unanswered attempts are dropped (their rows
			 * stay pending), but a record the writer holds is waited for. */
			if (!anything_owned(fw, false) ||
			    (now > stop_deadline && !anything_owned(fw, true)))
				break;
		} else {
			bool news = atomic_exchange(&fw->poll_needed, false);

			if (news || now >= next_poll)
				next_poll = poll_all(fw, now, news);
		}
		curl_multi_perform(fw->multi, &running);
		drain_messages(fw);
		hr_fwd_delivery_resubmit(fw);
		hr_fwd_delivery_reap(fw);
		now = hr_time_now_us();
		wait_ms = next_poll > now ? (long)((next_poll - now + 999) / 1000) : 0;
		if (atomic_load(&fw->stopping))
			/* Nothing is polled any more (next_poll goes stale, poll_needed is
			 * never taken): wake every 10 ms for the attempts' answers and
			 * records, or curl's sockets sooner; once spun the CPU at 100 %
			 * for the whole grace period. */
			wait_ms = 10;
		else if (atomic_load(&fw->poll_needed))
			wait_ms = 0; /* slots were freed (reap) or rows committed: take more now */
		curl_multi_poll(fw->multi, NULL, 0, (int)(wait_ms > 1000 ? 1000 : wait_ms), NULL);
	}
	return NULL;
}
