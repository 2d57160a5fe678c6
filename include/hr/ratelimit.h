/* ratelimit.h - a token bucket, one per source. */
#ifndef HR_RATELIMIT_H
#define HR_RATELIMIT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct hr_bucket {
	pthread_mutex_t mu;
	double rate;  /* tokens per second; 0: unlimited */
	double burst; /* capacity */
	double tokens;
	int64_t last_us;
};

void hr_bucket_init(struct hr_bucket *, double rate, unsigned burst);
void hr_bucket_destroy(struct hr_bucket *);
/* Take one token at `now_us`; false when empty, with the wait until the next one. */
bool hr_bucket_take(struct hr_bucket *, int64_t now_us, int64_t *retry_after_us);

#endif
