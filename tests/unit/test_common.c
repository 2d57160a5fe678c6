/*
 * tests/unit/test_common.c - hr_appendf: appends in a row into a fixed
 * buffer stay in it, say when they were cut, and never move past its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hr/common.h"

static void
appends_in_a_row_are_clamped(void **state)
{
	char buf[8];
	size_t len = 0;

	(void)state;
	assert_true(hr_appendf(buf, sizeof(buf), &len, "%s", "abc"));
	assert_int_equal(len, 3);
	assert_false(hr_appendf(buf, sizeof(buf), &len, "%s", "defghij")); /* cut */
	assert_int_equal(len, 7);
	assert_string_equal(buf, "abcdefg");
	/* a further append neither writes past the end nor moves len on */
	assert_false(hr_appendf(buf, sizeof(buf), &len, "%d", 12345));
	assert_int_equal(len, 7);
	assert_string_equal(buf, "abcdefg");
}

static void
a_length_past_the_end_is_clamped_first(void **state)
{
	char buf[4] = "xyz";
	size_t len = 100; /* as `len += snprintf(...)` used to leave it */

	(void)state;
	assert_false(hr_appendf(buf, sizeof(buf), &len, "more"));
	assert_int_equal(len, 3);
	assert_string_equal(buf, "xyz");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(appends_in_a_row_are_clamped),
		cmocka_unit_test(a_length_past_the_end_is_clamped_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
