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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_is_available_at_once_then_empty),
		cmocka_unit_test(tokens_refill_at_the_rate),
		cmocka_unit_test(refill_never_exceeds_the_burst),
		cmocka_unit_test(rate_zero_is_unlimited),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
