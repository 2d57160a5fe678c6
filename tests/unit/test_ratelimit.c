/* tests/unit/test_ratelimit.c - the per-source token bucket. */
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_is_available_at_once_then_empty),
		cmocka_unit_test(tokens_refill_at_the_rate),
		cmocka_unit_test(refill_never_exceeds_the_burst),
		cmocka_unit_test(rate_zero_is_unlimited),
		cmocka_unit_test(a_reconfigured_bucket_keeps_what_the_old_rate_earned_until_then),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
