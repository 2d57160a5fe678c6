/*
 * forward_loop.c - the forwarder's thread: one libcurl multi loop.
 *
 * Connection reuse and keep-alive come from the multi handle's connection
 * cache. The loop wakes when the writer commits new delivery rows, when an
 * attempt's record committed, or when the next pending row falls due; it
 * applies a reload, takes due rows (forward_delivery.c), drives the
 * transfers and reaps the finished ones. At stop it lets the running
 * attempts finish for a grace period.
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

static int64_t
poll_all(struct hr_forwarder *fw, int64_t now)
{
	int64_t next = now + IDLE_POLL_US;

	for (size_t i = 0; i < fw->ndests; i++) {
		struct dest *d = fw->dests[i];

		hr_fwd_delivery_poll(fw, d, now);
		/* A row already due was either taken (it stays pending while in
		 * flight) or could not be: no room, key busy, disabled, breaker
		 * open. Each of those ends with a wake-up (reap, enable, probe_at),
		 * so only a future due time sets the timer; else the loop spins. The
		 * same for the probe: only a poll of an enabled destination moves a
		 * probe time that has passed, and enabling one wakes the loop. */
		if (d->next_due_us > now && d->next_due_us < next)
			next = d->next_due_us;
		pthread_mutex_lock(&fw->mu);
		if (!d->disabled && d->breaker.state == HR_BREAKER_OPEN &&
		    d->breaker.probe_at_us > now && d->breaker.probe_at_us < next)
			next = d->breaker.probe_at_us;
		pthread_mutex_unlock(&fw->mu);
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
		} else if (atomic_exchange(&fw->poll_needed, false) || now >= next_poll) {
			next_poll = poll_all(fw, now);
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
