/*
 * forward_breaker.c - a destination's circuit breaker.
 *
 * A destination that keeps failing (breaker_failures in a row) is left
 * alone for a cooldown, then tried with one probe; a probe that fails
 * doubles the cooldown (up to ten minutes), any answer closes it. Without
 * it a dead destination would hold max_in_flight attempts and their
 * timeouts all the time, and recover only as fast as its retry schedule.
 */
#include "forward_int.h"
#include "hr/log.h"

static const char *const breaker_names[] = { "closed", "open", "half-open" };

/* A cooldown for the log, in seconds as the configuration gives it ("30s"), to
 * the millisecond: 30, 0.3, 600. */
static double
seconds(int64_t us)
{
	return (double)(us / 1000) / 1000.0;
}

const char *
hr_breaker_name(enum hr_breaker b)
{
	return breaker_names[b];
}

void
hr_breaker_init(struct breaker *b, const struct hr_destination_cfg *c)
{
	b->state = HR_BREAKER_CLOSED;
	b->failures = 0;
	b->cooldown_us = c->breaker_cooldown_ms * 1000;
	b->probe_at_us = 0;
}

/* A reload's settings for a kept destination: a closed breaker's cooldown is
 * the new one (it was the old until the breaker next closed: a review reloaded
 * 10m to 2s and the next opening still waited 10 minutes); an open one keeps
 * its state and next probe, its cooldown at least the new one. */
void
hr_breaker_configure(struct breaker *b, const struct hr_destination_cfg *c)
{
	int64_t base = c->breaker_cooldown_ms * 1000;

	if (b->state == HR_BREAKER_CLOSED || b->cooldown_us < base)
		b->cooldown_us = base;
}

bool
hr_breaker_probe_due(const struct breaker *b, unsigned in_flight, int64_t now)
{
	/* The probe goes alone: an attempt that began before the breaker opened
	 * and is still out would leave it no room, and its failure would be taken
	 * for the probe's, doubling the cooldown with no probe sent (a review).
	 * Its end wakes the loop, and the probe goes then. */
	return b->state == HR_BREAKER_OPEN && now >= b->probe_at_us && in_flight == 0;
}

unsigned
hr_breaker_room(
    struct breaker *b, const char *name, unsigned max_in_flight, unsigned in_flight, int64_t now)
{
	unsigned max = max_in_flight;

	if (b->state == HR_BREAKER_OPEN) {
		if (!hr_breaker_probe_due(b, in_flight, now))
			return 0;
		b->state = HR_BREAKER_HALF_OPEN; /* one probe */
		log_info("forward: destination %s: breaker half-open, probing", name);
	}
	if (b->state == HR_BREAKER_HALF_OPEN)
		max = 1;
	return in_flight < max ? max - in_flight : 0;
}

/* Doubled from the larger of the node's and the destination's (a shared store):
 * the probe that failed last may have been another node's. */
void
hr_breaker_adopt_cooldown(struct breaker *b, int64_t cooldown_us)
{
	if (cooldown_us > b->cooldown_us)
		b->cooldown_us =
		    cooldown_us < BREAKER_MAX_COOLDOWN_US ? cooldown_us : BREAKER_MAX_COOLDOWN_US;
}

void
hr_breaker_update(struct breaker *b, const struct hr_destination_cfg *c, bool answered,
    const char *last_error, int64_t now)
{
	if (answered) { /* the destination is up */
		if (b->state != HR_BREAKER_CLOSED) {
			log_info("forward: destination %s: breaker closed", c->name);
			b->publish = true;
			b->publish_until_us = 0;
		}
		b->state = HR_BREAKER_CLOSED;
		b->failures = 0;
		b->cooldown_us = c->breaker_cooldown_ms * 1000;
		return;
	}
	b->failures++;
	if (b->state == HR_BREAKER_HALF_OPEN) {
		b->cooldown_us = b->cooldown_us * 2 < BREAKER_MAX_COOLDOWN_US
		    ? b->cooldown_us * 2
		    : BREAKER_MAX_COOLDOWN_US;
	} else if (b->state == HR_BREAKER_OPEN || b->failures < c->breaker_failures) {
		return;
	}
	b->publish_outcome = b->state == HR_BREAKER_HALF_OPEN; /* else an opening */
	b->state = HR_BREAKER_OPEN;
	b->probe_at_us = now + b->cooldown_us;
	b->publish = true;
	b->publish_until_us = b->probe_at_us;
	/* The last error says why (a refused connection, a 503, a timeout) without a
	 * look at the API; the log scrubs it. */
	log_warnx("forward: destination %s: breaker open after %u consecutive failures, the "
	          "last: %s; next probe in %.6g s",
	    c->name, b->failures, last_error != NULL && last_error[0] ? last_error : "unknown",
	    seconds(b->cooldown_us));
}

void
hr_breaker_reset(struct breaker *b, const struct hr_destination_cfg *c)
{
	b->state = HR_BREAKER_CLOSED;
	b->failures = 0;
	b->cooldown_us = c->breaker_cooldown_ms * 1000; /* as a probe that succeeds */
	b->publish = true;
	b->publish_until_us = 0;
}

/*
 * With several nodes the breaker is the destination's, not the node's: a node
 * whose breaker opens says until when, the others stop too; one node sends the
 * probe (hr_store_breaker_probe) and the others wait for its outcome; any
 * node that gets an answer closes it for all.
 */
void
hr_breaker_follow(struct breaker *b, const struct hr_destination_cfg *c, int64_t until_us,
    int64_t cooldown_us, int64_t now)
{
	if (until_us != 0 && b->state != HR_BREAKER_CLOSED)
		hr_breaker_adopt_cooldown(b, cooldown_us);
	if (until_us > now && b->state == HR_BREAKER_CLOSED) {
		hr_breaker_adopt_cooldown(b, cooldown_us);
		b->state = HR_BREAKER_OPEN;
		b->probe_at_us = until_us;
		log_info("forward: destination %s: breaker opened by another node; next probe in"
		         " %.6g s",
		    c->name, seconds(until_us - now));
	} else if (until_us > now && b->state == HR_BREAKER_OPEN &&
	    (until_us > b->probe_at_us || !b->publish)) {
		/* Another node probes (its claim lasts as long as the probe may), or
		 * its probe failed: then the row's time is sooner than the claim's,
		 * and the next probe is due then. Only this node's own opening, not
		 * yet published, keeps its time when it is the later. */
		b->probe_at_us = until_us;
	} else if (until_us == 0 && b->state != HR_BREAKER_CLOSED && !b->publish) {
		b->state = HR_BREAKER_CLOSED;
		b->failures = 0;
		b->cooldown_us = c->breaker_cooldown_ms * 1000;
		log_info("forward: destination %s: breaker closed by another node", c->name);
	}
}
