/*
 * ratelimit.c - token buckets.
 *
 * A bucket holds up to `burst` tokens and refills at `rate` per second; a
 * request takes one. It is refilled lazily from the clock when used, so an
 * idle source costs nothing. A log flood is a bucket of lines.
 */
#include "hr/ratelimit.h"

void
hr_bucket_init(struct hr_bucket *b, double rate, unsigned burst)
{
	pthread_mutex_init(&b->mu, NULL);
	b->rate = rate;
	b->burst = burst > 0 ? burst : 1;
	b->tokens = b->burst;
	b->last_us = 0;
}

/* The tokens `b` has earned up to `now_us` at its rate, at most its burst. */
static void
refill(struct hr_bucket *b, int64_t now_us)
{
	if (b->last_us != 0 && now_us > b->last_us) {
		b->tokens += (double)(now_us - b->last_us) * b->rate / 1e6;
		if (b->tokens > b->burst)
			b->tokens = b->burst;
	}
	if (now_us > b->last_us)
		b->last_us = now_us;
}

void
hr_bucket_reconfigure(struct hr_bucket *b, double rate, unsigned burst, int64_t now_us)
{
	pthread_mutex_lock(&b->mu);
	/* Up to now at the old rate: the time since the last take was the old rate's,
	 * and the new one refilled it (a rate lowered after an idle while refused the
	 * webhooks the old rate had room for: events lost). */
	if (b->rate > 0)
		refill(b, now_us);
	b->rate = rate;
	b->burst = burst > 0 ? burst : 1;
	if (b->tokens > b->burst)
		b->tokens = b->burst;
	pthread_mutex_unlock(&b->mu);
}

void
hr_bucket_destroy(struct hr_bucket *b)
{
	pthread_mutex_destroy(&b->mu);
}

bool
hr_bucket_take(struct hr_bucket *b, int64_t now_us, int64_t *retry_after_us)
{
	bool ok;

	*retry_after_us = 0;
	if (atomic_load_explicit(&b->rate, memory_order_relaxed) <= 0)
		return true; /* unlimited: no lock */
	pthread_mutex_lock(&b->mu);
	refill(b, now_us);
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	else
		*retry_after_us = (int64_t)((1.0 - b->tokens) / b->rate * 1e6) + 1;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

void
hr_logflood_init(struct hr_logflood *f)
{
	hr_bucket_init(&f->bucket, 1.0, HR_LOGFLOOD_BURST);
	atomic_store(&f->held, 0);
}

void
hr_logflood_destroy(struct hr_logflood *f)
{
	hr_bucket_destroy(&f->bucket);
}

unsigned long
hr_logflood_held(struct hr_logflood *f, int64_t now_us)
{
	int64_t wait;

	if (atomic_load(&f->held) == 0 || !hr_bucket_take(&f->bucket, now_us, &wait))
		return 0;
	return atomic_exchange(&f->held, 0);
}

bool
hr_logflood_take(struct hr_logflood *f, int64_t now_us, unsigned long *held)
{
	int64_t wait;

	if (!hr_bucket_take(&f->bucket, now_us, &wait)) {
		atomic_fetch_add(&f->held, 1);
		return false;
	}
	*held = atomic_exchange(&f->held, 0);
	return true;
}
