/* test_timefmt.c - provider timestamp formats (SPEC.md section 8). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hr/timefmt.h"

/* Parse `in` and expect `norm`. */
static void
assert_norm(const char *in, const char *norm)
{
	struct hr_time t;
	char buf[32];

	assert_int_equal(hr_time_parse_str(in, &t), HR_OK);
	assert_true(t.valid);
	assert_string_equal(hr_time_norm(&t, buf, sizeof(buf)), norm);
	assert_string_equal(hr_time_raw(&t), in);
}

static void
assert_rejected(const char *in)
{
	struct hr_time t;
	char buf[32];

	assert_int_equal(hr_time_parse_str(in, &t), HR_EINVAL);
	assert_false(t.valid);
	assert_null(hr_time_norm(&t, buf, sizeof(buf)));
}

static void
tavus_conversation_iso_z_is_kept(void **state)
{
	struct hr_time t;

	(void)state;
	assert_norm("2025-07-11T06:45:47.472000Z", "2025-07-11T06:45:47.472000Z");
	assert_int_equal(hr_time_parse_str("2025-07-11T06:45:47.472000Z", &t), HR_OK);
	assert_true(t.us == INT64_C(1752216347472000));
}

static void
tavus_video_space_form_is_utc(void **state)
{
	(void)state;
	assert_norm("2024-08-28 15:27:40.824457", "2024-08-28T15:27:40.824457Z");
}

static void
pailflow_plus_zero_offset_becomes_z(void **state)
{
	(void)state;
	assert_norm("2026-01-12T17:21:30.092034+00:00", "2026-01-12T17:21:30.092034Z");
}

static void
agenthuman_whole_seconds_get_six_fraction_digits(void **state)
{
	(void)state;
	assert_norm("2024-01-15T10:30:00Z", "2024-01-15T10:30:00.000000Z");
}

static void
positive_offset_converts_to_utc(void **state)
{
	(void)state;
	assert_norm("2024-01-15T10:30:00+05:30", "2024-01-15T05:00:00.000000Z");
}

static void
negative_offset_crosses_midnight_and_year(void **state)
{
	(void)state;
	assert_norm("2024-12-31T22:00:00.25-03:00", "2025-01-01T01:00:00.250000Z");
}

static void
compact_and_hour_only_offsets_are_accepted(void **state)
{
	(void)state;
	assert_norm("2024-01-15T10:30:00+0530", "2024-01-15T05:00:00.000000Z");
	assert_norm("2024-01-15T10:30:00-02", "2024-01-15T12:30:00.000000Z");
}

static void
lowercase_separators_are_accepted(void **state)
{
	(void)state;
	assert_norm("2024-01-15t10:30:00z", "2024-01-15T10:30:00.000000Z");
}

static void
short_fraction_is_padded(void **state)
{
	(void)state;
	assert_norm("2024-01-15T10:30:00.5Z", "2024-01-15T10:30:00.500000Z");
}

static void
nanosecond_fraction_rounds_to_microseconds(void **state)
{
	(void)state;
	assert_norm("2024-01-15T10:30:00.123456500Z", "2024-01-15T10:30:00.123457Z");
	assert_norm("2024-01-15T10:30:00.1234564Z", "2024-01-15T10:30:00.123456Z");
}

static void
rounding_carries_into_the_next_second(void **state)
{
	(void)state;
	assert_norm("2024-12-31T23:59:59.9999999Z", "2025-01-01T00:00:00.000000Z");
}

static void
ten_fraction_digits_are_rejected(void **state)
{
	(void)state;
	assert_rejected("2024-01-15T10:30:00.1234567890Z");
	assert_rejected("2024-01-15T10:30:00.Z");
}

static void
month_and_day_ranges_are_checked(void **state)
{
	(void)state;
	assert_rejected("2024-13-01T00:00:00Z");
	assert_rejected("2024-00-01T00:00:00Z");
	assert_rejected("2024-01-32T00:00:00Z");
	assert_rejected("2024-04-31T00:00:00Z");
	assert_rejected("2024-02-30T00:00:00Z");
	assert_rejected("2024-01-00T00:00:00Z");
}

static void
february_29_follows_leap_years(void **state)
{
	(void)state;
	assert_norm("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000000Z");
	assert_norm("2000-02-29T00:00:00Z", "2000-02-29T00:00:00.000000Z");
	assert_rejected("2023-02-29T00:00:00Z");
	assert_rejected("1900-02-29T00:00:00Z");
}

static void
clock_ranges_are_checked(void **state)
{
	(void)state;
	assert_rejected("2024-01-15T24:00:00Z");
	assert_rejected("2024-01-15T10:60:00Z");
	assert_rejected("2024-01-15T10:30:61Z");
	assert_rejected("2024-01-15T10:30:00+24:00");
	assert_rejected("2024-01-15T10:30:00+05:60");
}

static void
leap_second_rolls_into_the_next_minute(void **state)
{
	(void)state;
	assert_norm("2016-12-31T23:59:60Z", "2017-01-01T00:00:00.000000Z");
}

static void
malformed_text_is_rejected(void **state)
{
	(void)state;
	assert_rejected("");
	assert_rejected("yesterday");
	assert_rejected("2024-01-15");
	assert_rejected("2024-01-15T10:30Z");
	assert_rejected("2024-1-15T10:30:00Z");
	assert_rejected("2024-01-15T10:30:00Z ");
	assert_rejected("2024-01-15T10:30:00ZZ");
	assert_rejected("2024-01-15T10:30:00+05:");
	assert_rejected("2024-01-15X10:30:00Z");
	assert_rejected("0000-01-01T00:00:00Z");
}

static void
unparsed_text_is_kept_raw(void **state)
{
	struct hr_time t;

	(void)state;
	assert_int_equal(hr_time_parse_str("Tue, 15 Jan 2024 10:30:00 GMT", &t), HR_EINVAL);
	assert_false(t.valid);
	assert_string_equal(hr_time_raw(&t), "Tue, 15 Jan 2024 10:30:00 GMT");
}

/* Kept whole: a fixed 48-byte copy cut JavaScript's Date text (a review). */
static void
a_long_raw_is_kept_whole(void **state)
{
	static const char in[] = "Mon Jan 15 2024 10:30:00 GMT+0000 (Coordinated Universal Time)";
	struct hr_time t;

	(void)state;
	assert_int_equal(hr_time_parse_str(in, &t), HR_EINVAL);
	assert_string_equal(hr_time_raw(&t), in);
}

static void
epoch_float_rounds_to_the_nearest_microsecond(void **state)
{
	struct hr_time t;
	char buf[32];

	(void)state;
	assert_int_equal(hr_time_parse_epoch(1786505572.3161497, &t), HR_OK);
	assert_true(t.valid);
	assert_string_equal(hr_time_norm(&t, buf, sizeof(buf)), "2026-08-12T03:32:52.316150Z");
	assert_string_equal(hr_time_raw(&t), "1786505572.3161497");
}

static void
epoch_integer_prints_without_fraction(void **state)
{
	struct hr_time t;
	char buf[32];

	(void)state;
	assert_int_equal(hr_time_parse_epoch(1704067200, &t), HR_OK);
	assert_string_equal(hr_time_norm(&t, buf, sizeof(buf)), "2024-01-01T00:00:00.000000Z");
	assert_string_equal(hr_time_raw(&t), "1704067200");
}

static void
negative_epoch_counts_back_from_1970(void **state)
{
	struct hr_time t;
	char buf[32];

	(void)state;
	assert_int_equal(hr_time_parse_epoch(-0.5, &t), HR_OK);
	assert_string_equal(hr_time_norm(&t, buf, sizeof(buf)), "1969-12-31T23:59:59.500000Z");
	assert_true(t.us == -500000);
}

static void
epoch_out_of_range_is_rejected(void **state)
{
	struct hr_time t;

	(void)state;
	assert_int_equal(hr_time_parse_epoch(1e300, &t), HR_EINVAL);
	assert_false(t.valid);
	assert_string_equal(hr_time_raw(&t), "1e+300");
	assert_int_equal(hr_time_parse_epoch(NAN, &t), HR_EINVAL);
	assert_int_equal(hr_time_parse_epoch(INFINITY, &t), HR_EINVAL);
	assert_int_equal(hr_time_parse_epoch(-1e12, &t), HR_EINVAL);
}

static void
format_of_zero_is_the_epoch(void **state)
{
	char buf[32];

	(void)state;
	hr_time_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
	hr_time_format(-1, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
}

static void
now_is_after_2024(void **state)
{
	(void)state;
	assert_true(hr_time_now_us() > INT64_C(1704067200000000));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tavus_conversation_iso_z_is_kept),
		cmocka_unit_test(tavus_video_space_form_is_utc),
		cmocka_unit_test(pailflow_plus_zero_offset_becomes_z),
		cmocka_unit_test(agenthuman_whole_seconds_get_six_fraction_digits),
		cmocka_unit_test(positive_offset_converts_to_utc),
		cmocka_unit_test(negative_offset_crosses_midnight_and_year),
		cmocka_unit_test(compact_and_hour_only_offsets_are_accepted),
		cmocka_unit_test(lowercase_separators_are_accepted),
		cmocka_unit_test(short_fraction_is_padded),
		cmocka_unit_test(nanosecond_fraction_rounds_to_microseconds),
		cmocka_unit_test(rounding_carries_into_the_next_second),
		cmocka_unit_test(ten_fraction_digits_are_rejected),
		cmocka_unit_test(month_and_day_ranges_are_checked),
		cmocka_unit_test(february_29_follows_leap_years),
		cmocka_unit_test(clock_ranges_are_checked),
		cmocka_unit_test(leap_second_rolls_into_the_next_minute),
		cmocka_unit_test(malformed_text_is_rejected),
		cmocka_unit_test(unparsed_text_is_kept_raw),
		cmocka_unit_test(a_long_raw_is_kept_whole),
		cmocka_unit_test(epoch_float_rounds_to_the_nearest_microsecond),
		cmocka_unit_test(epoch_integer_prints_without_fraction),
		cmocka_unit_test(negative_epoch_counts_back_from_1970),
		cmocka_unit_test(epoch_out_of_range_is_rejected),
		cmocka_unit_test(format_of_zero_is_the_epoch),
		cmocka_unit_test(now_is_after_2024),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
