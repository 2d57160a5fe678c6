/* tests/unit/test_ratelimit.c - the per-source token bucket. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hr/ratelimit.h"

#define SEC INT64_C(1000000)

static void
burst_is_available_at_once_then_empty(void **state)
{
	struct hr_bucket b;
	int64_t wait;

	(void)state;
	hr_bucket_init(&b, 2.0, 3);
	for (int i = 0; i < 3; i++)
		assert_true(hr_bucket_take(&b, 100 * SEC, &wait));
	assert_false(hr_bucket_take(&b, 100 * SEC, &wait));
	assert_true(wait > 0 && wait <= SEC / 2 + 1); /* one token every 0.5 s */
	hr_bucket_destroy(&b);
}

static void
tokens_refill_at_the_rate(void **state)
{
	struct hr_bucket b;
	int64_t wait;

	(void)state;
	hr_bucket_init(&b, 2.0, 1);
	assert_true(hr_bucket_take(&b, 10 * SEC, &wait));
	assert_false(hr_bucket_take(&b, 10 * SEC + SEC / 4, &wait));
	assert_true(hr_bucket_take(&b, 10 * SEC + SEC / 2 + 1, &wait));
	hr_bucket_destroy(&b);
}

static void
refill_never_exceeds_the_burst(void **state)
{
	struct hr_bucket b;
	int64_t wait;
	int taken = 0;

	(void)state;
	hr_bucket_init(&b, 100.0, 5);
	assert_true(hr_bucket_take(&b, 1 * SEC, &wait));
	while (hr_bucket_take(&b, 3600 * SEC, &wait))
		taken++;
	assert_int_equal(taken, 5);
	hr_bucket_destroy(&b);
}

static void
rate_zero_is_unlimited(void **state)
{
	struct hr_bucket b;
	int64_t wait;

	(void)state;
	hr_bucket_init(&b, 0, 1);
	for (int i = 0; i < 10000; i++)
		assert_true(hr_bucket_take(&b, SEC, &wait));
	hr_bucket_destroy(&b);
}

/* A reload keeps the level the old rate earned up to the reload, not the level of
 * the last take: lowered after an idle while, the new rate refilled that while at
 * its own pace and refused webhooks the old one had room for (a review). */
static void
a_reconfigured_bucket_keeps_what_the_old_rate_earned_until_then(void **state)
{
	struct hr_bucket b;
	int64_t wait;

	(void)state;
	hr_bucket_init(&b, 1.0, 3);
	for (int i = 0; i < 3; i++)
		assert_true(hr_bucket_take(&b, 1 * SEC, &wait));
	hr_bucket_reconfigure(&b, 0.01, 3, 6 * SEC); /* 5 s idle at 1/s: full again */
	for (int i = 0; i < 3; i++)
		assert_true(hr_bucket_take(&b, 6 * SEC, &wait));
	assert_false(hr_bucket_take(&b, 6 * SEC, &wait));
	/* and raised, it earns nothing more for the time before */
	hr_bucket_reconfigure(&b, 100.0, 3, 6 * SEC + SEC / 100);
	assert_false(hr_bucket_take(&b, 6 * SEC + SEC / 100, &wait));
	/* a lower burst caps what it holds */
	hr_bucket_reconfigure(&b, 100.0, 1, 60 * SEC);
	assert_true(hr_bucket_take(&b, 60 * SEC, &wait));
	assert_false(hr_bucket_take(&b, 60 * SEC, &wait));
	hr_bucket_destroy(&b);
}

/*
 * A reload reconfigures a source's bucket (hr_app_swap_runtime, on the main
 * thread) while HTTP workers take from it: every read of the bucket's rate must
 * be under its lock (or atomic). hr_bucket_take() reads b->rate before it locks,
 * to let an unlimited source through; the reload writes it under the lock: a data
 * race, which ThreadSanitizer reports (build with -fsanitize=thread). Found by a
 * SIGHUP storm flipping `rate` while webhooks came in.
 */
struct reconfigurer {
	struct hr_bucket *b;
	int rounds;
};

static void *
reconfigure_loop(void *arg)
{
	struct reconfigurer *r = arg;

	for (int i = 0; i < r->rounds; i++)
		hr_bucket_reconfigure(r->b, i % 2 ? 0.0 : 1000.0, 20, (int64_t)(i + 1) * SEC);
	return NULL;
}

static void
a_reload_reconfigures_a_bucket_while_requests_take_from_it(void **state)
{
	struct hr_bucket b;
	struct reconfigurer r = { &b, 20000 };
	pthread_t t;
	int64_t wait;

	(void)state;
	hr_bucket_init(&b, 1000.0, 20);
	assert_int_equal(pthread_create(&t, NULL, reconfigure_loop, &r), 0);
	for (int i = 0; i < 20000; i++)
		(void)hr_bucket_take(&b, (int64_t)(i + 1) * SEC, &wait);
	pthread_join(t, NULL);
	hr_bucket_destroy(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_is_available_at_once_then_empty),
		cmocka_unit_test(tokens_refill_at_the_rate),
		cmocka_unit_test(refill_never_exceeds_the_burst),
		cmocka_unit_test(rate_zero_is_unlimited),
		cmocka_unit_test(a_reconfigured_bucket_keeps_what_the_old_rate_earned_until_then),
		cmocka_unit_test(a_reload_reconfigures_a_bucket_while_requests_take_from_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
