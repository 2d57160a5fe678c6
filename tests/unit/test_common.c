/*
 * tests/unit/test_common.c - hr_appendf: appends in a row into a fixed
 * buffer stay in it, say when they were cut, and never move past its end;
 * hr_scrub_controls: no character that breaks or reorders a line is left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* A log review: U+2028 reached the journal, a line break in web log viewers,
 * and the bidi controls, which reorder a line in a terminal. */
static void
line_separators_and_bidi_controls_are_scrubbed(void **state)
{
	static const char *const scrubbed[] = {
		"\xe2\x80\xa8", "\xe2\x80\xa9", /* U+2028, U+2029 */
		"\xe2\x80\x8e", "\xe2\x80\x8f", /* U+200E, U+200F */
		"\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad",
		"\xe2\x80\xae",                                                 /* U+202A-202E */
		"\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9", /* U+2066-2069 */
		"\xef\xbb\xbf",                                                 /* U+FEFF */
	};
	char mark[] = "a\xd8\x9c"
	              "b"; /* U+061C, two bytes */

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(scrubbed); i++) {
		char s[16];

		snprintf(s, sizeof(s), "a%sb", scrubbed[i]);
		hr_scrub_controls(s, strlen(s), true);
		assert_string_equal(s, "a???b");
	}
	hr_scrub_controls(mark, strlen(mark), true);
	assert_string_equal(mark, "a??b");
}

/* Their neighbours are text: U+2027, U+202F, U+2065, U+206A, U+20AC, U+FEFE,
 * U+061B. */
static void
their_neighbours_are_left_alone(void **state)
{
	char s[] = "\xe2\x80\xa7 \xe2\x80\xaf \xe2\x81\xa5 \xe2\x81\xaa \xe2\x82\xac \xef\xbb\xbe "
	           "\xd8\x9b caf\xc3\xa9";
	char want[sizeof(s)];

	(void)state;
	memcpy(want, s, sizeof(s));
	hr_scrub_controls(s, strlen(s), true);
	assert_string_equal(s, want);
}

/* Only the first n bytes are looked at: a character cut at n is not one. */
static void
a_character_cut_at_n_is_left_alone(void **state)
{
	char s[] = "ab\xe2\x80\xa8";

	(void)state;
	hr_scrub_controls(s, 4, true);
	assert_string_equal(s, "ab\xe2\x80\xa8");
}

/* libpq's messages: a newline at the end, DETAIL and HINT lines. */
static void
a_message_of_several_lines_is_one(void **state)
{
	char buf[128], small[12];

	(void)state;
	assert_string_equal(hr_one_line("ERROR:  duplicate key value\nDETAIL:  Key (id)=(1) exists."
	                                "\n",
	                        buf, sizeof(buf)),
	    "ERROR:  duplicate key value; DETAIL:  Key (id)=(1) exists.");
	assert_string_equal(hr_one_line("server closed the connection\n\n  \n", buf, sizeof(buf)),
	    "server closed the connection");
	assert_string_equal(hr_one_line("a \n  b", buf, sizeof(buf)), "a; b");
	assert_string_equal(hr_one_line("\nb", buf, sizeof(buf)), "b");
	assert_string_equal(hr_one_line(NULL, buf, sizeof(buf)), "");
	assert_string_equal(hr_one_line("abcdefghij\nklmnop", small, sizeof(small)), "abcdefghij");
	assert_string_equal(hr_one_line("abcdefgh\nklmnop", small, sizeof(small)), "abcdefgh; k");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(appends_in_a_row_are_clamped),
		cmocka_unit_test(a_length_past_the_end_is_clamped_first),
		cmocka_unit_test(line_separators_and_bidi_controls_are_scrubbed),
		cmocka_unit_test(their_neighbours_are_left_alone),
		cmocka_unit_test(a_character_cut_at_n_is_left_alone),
		cmocka_unit_test(a_message_of_several_lines_is_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
