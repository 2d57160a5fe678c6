/* tests/unit/test_agewalk.c - where the pruning walks by age have come to (src/store/agewalk.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "../../src/store/agewalk.h"

static void
each_source_and_kind_has_its_own_floor_from_the_start(void **state)
{
	struct hr_age_walks w = { 0 };

	(void)state;
	/* A pointer lasts until a source is added: each is read before the next call. */
	assert_int_equal(*hr_age_walk_floor(&w, "a", HR_AGE_ROWS), 0);
	assert_int_equal(*hr_age_walk_floor(&w, "a", HR_AGE_PAYLOADS), 0);
	assert_int_equal(*hr_age_walk_floor(&w, "b", HR_AGE_ROWS), 0);
	*hr_age_walk_floor(&w, "a", HR_AGE_ROWS) = 42;
	*hr_age_walk_floor(&w, "b", HR_AGE_PAYLOADS) = 7;
	/* Found again by name, however many were added since. */
	for (int i = 0; i < 40; i++) {
		char name[16];

		snprintf(name, sizeof(name), "s%d", i);
		assert_non_null(hr_age_walk_floor(&w, name, HR_AGE_ROWS));
	}
	assert_int_equal(*hr_age_walk_floor(&w, "a", HR_AGE_ROWS), 42);
	assert_int_equal(*hr_age_walk_floor(&w, "a", HR_AGE_PAYLOADS), 0);
	assert_int_equal(*hr_age_walk_floor(&w, "b", HR_AGE_PAYLOADS), 7);
	assert_int_equal(w.n, 42);
	hr_age_walks_free(&w);
	assert_int_equal(w.n, 0);
}

static void
a_window_ends_at_the_entry_found_or_the_cutoff(void **state)
{
	(void)state;
	assert_int_equal(hr_age_window_end(100, 500, 1000), 500);
	assert_int_equal(hr_age_window_end(100, 5000, 1000), 1000); /* the cutoff bounds it */
	assert_int_equal(hr_age_window_end(100, 1000, 1000), 1000);
	/* A window's entries all of the floor's instant: past them, never stuck. */
	assert_int_equal(hr_age_window_end(100, 100, 1000), 101);
	assert_int_equal(hr_age_window_end(0, 0, 1000), 1);
}

static void
a_walk_goes_on_until_the_cutoff_then_starts_over(void **state)
{
	int64_t floor = 0;

	(void)state;
	assert_true(hr_age_walk_on(&floor, 500, 1000));
	assert_int_equal(floor, 500);
	assert_true(hr_age_walk_on(&floor, 999, 1000));
	assert_int_equal(floor, 999);
	assert_false(hr_age_walk_on(&floor, 1000, 1000));
	assert_int_equal(floor, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_source_and_kind_has_its_own_floor_from_the_start),
		cmocka_unit_test(a_window_ends_at_the_entry_found_or_the_cutoff),
		cmocka_unit_test(a_walk_goes_on_until_the_cutoff_then_starts_over),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
