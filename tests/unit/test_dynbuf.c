/*
 * tests/unit/test_dynbuf.c - the one growable buffer: it holds what it is
 * given up to its cap, refuses past it (whole, sticky, memory freed), and
 * is always NUL-terminated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hr/dynbuf.h"

static void
appends_grow_and_stay_terminated(void **state)
{
	struct hr_dynbuf b;
	char chunk[1000];
	size_t len;
	char *text;

	(void)state;
	memset(chunk, 'x', sizeof(chunk));
	hr_dynbuf_init(&b, 16, 1 << 20);
	assert_null(b.p);
	for (int i = 0; i < 100; i++)
		assert_int_equal(hr_dynbuf_add(&b, chunk, sizeof(chunk)), HR_OK);
	assert_int_equal(b.len, 100000);
	assert_true(b.cap > b.len && b.cap <= (1 << 20) + 1);
	assert_int_equal(b.p[b.len], '\0');
	assert_int_equal(hr_dynbuf_addf(&b, "-%d-%s", 42, "end"), HR_OK);
	assert_string_equal(b.p + 100000, "-42-end");
	text = hr_dynbuf_take(&b, &len);
	assert_int_equal(len, 100007);
	assert_int_equal(strlen(text), 100007);
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	free(text);
}

static void
exactly_the_cap_fits_one_more_byte_is_refused(void **state)
{
	struct hr_dynbuf b;
	size_t len;

	(void)state;
	hr_dynbuf_init(&b, 0, 10);
	assert_int_equal(hr_dynbuf_adds(&b, "0123456789"), HR_OK);
	assert_int_equal(b.len, 10);
	assert_true(b.cap <= 11); /* never more than the cap and its NUL */
	assert_int_equal(hr_dynbuf_add(&b, "x", 1), HR_ETOOBIG);
	/* refused whole: nothing held, and it sticks */
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(hr_dynbuf_add(&b, "y", 1), HR_ETOOBIG);
	assert_int_equal(hr_dynbuf_addf(&b, "%s", "z"), HR_ETOOBIG);
	assert_null(hr_dynbuf_take(&b, &len));
	assert_int_equal(len, 0);
	hr_dynbuf_free(&b); /* usable again */
	assert_int_equal(hr_dynbuf_adds(&b, "again"), HR_OK);
	assert_string_equal(b.p, "again");
	hr_dynbuf_free(&b);
}

static void
a_formatted_append_past_the_cap_is_refused_whole(void **state)
{
	struct hr_dynbuf b;

	(void)state;
	hr_dynbuf_init(&b, 0, 8);
	assert_int_equal(hr_dynbuf_addf(&b, "%d", 1234), HR_OK);
	assert_int_equal(hr_dynbuf_addf(&b, "%d", 56789), HR_ETOOBIG); /* not "5678" */
	assert_null(b.p);
	hr_dynbuf_free(&b);
}

static void
a_huge_length_does_not_wrap(void **state)
{
	struct hr_dynbuf b;

	(void)state;
	hr_dynbuf_init(&b, 0, 100);
	assert_int_equal(hr_dynbuf_adds(&b, "abc"), HR_OK);
	assert_int_equal(hr_dynbuf_add(&b, "", SIZE_MAX - 1), HR_ETOOBIG);
	hr_dynbuf_free(&b);
}

static void
shrink_keeps_a_prefix_only(void **state)
{
	struct hr_dynbuf b;

	(void)state;
	hr_dynbuf_init(&b, 0, 100);
	hr_dynbuf_shrink(&b, 0); /* nothing held: nothing to do */
	assert_int_equal(hr_dynbuf_adds(&b, "hello world"), HR_OK);
	hr_dynbuf_shrink(&b, 50); /* longer: ignored */
	assert_string_equal(b.p, "hello world");
	hr_dynbuf_shrink(&b, 5);
	assert_string_equal(b.p, "hello");
	assert_int_equal(b.len, 5);
	hr_dynbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(appends_grow_and_stay_terminated),
		cmocka_unit_test(exactly_the_cap_fits_one_more_byte_is_refused),
		cmocka_unit_test(a_formatted_append_past_the_cap_is_refused_whole),
		cmocka_unit_test(a_huge_length_does_not_wrap),
		cmocka_unit_test(shrink_keeps_a_prefix_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
