/* ratelimit.h - a token bucket, one per source; and log lines a flood repeats, in moderation. */
#ifndef HR_RATELIMIT_H
#define HR_RATELIMIT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct hr_bucket {
	pthread_mutex_t mu;
	/* tokens per second; 0: unlimited. Atomic: hr_bucket_take() reads it before
	 * the lock, while a reload's hr_bucket_reconfigure() may write it (a data
	 * race, review RR40; ThreadSanitizer). */
	_Atomic double rate;
	double burst; /* capacity */
	double tokens;
	int64_t last_us;
};

void hr_bucket_init(struct hr_bucket *, double rate, unsigned burst);
/* A reload's new rate and burst for `b`, in force from `now_us`: it keeps its level,
 * refilled up to then at its old rate, at most the new burst. A reload refilled every
 * source's burst, and one that lowered a flooded source's rate handed the flood a
 * fresh burst (reviews R4, R11). */
void hr_bucket_reconfigure(struct hr_bucket *b, double rate, unsigned burst, int64_t now_us);
void hr_bucket_destroy(struct hr_bucket *);
/* Take one token at `now_us`; false when empty, with the wait until the next one. */
bool hr_bucket_take(struct hr_bucket *, int64_t now_us, int64_t *retry_after_us);

/*
 * Lines a flood could repeat without end (refused requests, rejections, failed
 * batches) must not fill the journal, whose rate limit would then drop the
 * daemon's other lines too: HR_LOGFLOOD_BURST of a kind at once, then one a
 * second; the lines held back are counted, and the next one logged says how
 * many (or, if none comes, hr_logflood_held() at a timer's tick). One struct
 * per kind of line: process-wide (HR_LOGFLOOD_INIT), or one per source, so
 * that a flood on one does not hide another's lines (hr_logflood_init).
 */
#define HR_LOGFLOOD_BURST 20
struct hr_logflood {
	struct hr_bucket bucket;
	atomic_ulong held;
};
#define HR_LOGFLOOD_INIT                                                                           \
	{                                                                                          \
		{ PTHREAD_MUTEX_INITIALIZER, 1.0, HR_LOGFLOOD_BURST, HR_LOGFLOOD_BURST, 0 }, 0     \
	}
/* May a line be logged at `now_us` (a monotonic clock: a wall clock stepped back
 * would stop the refill)? *held: the lines of this kind not logged before it. */
bool hr_logflood_take(struct hr_logflood *, int64_t now_us, unsigned long *held);
/* The lines held back since the last one logged, when a line may be logged now to
 * say so; 0: none held, or not now. */
unsigned long hr_logflood_held(struct hr_logflood *, int64_t now_us);
void hr_logflood_init(struct hr_logflood *);
void hr_logflood_destroy(struct hr_logflood *);

#endif
