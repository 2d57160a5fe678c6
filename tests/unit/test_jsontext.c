/*
 * tests/unit/test_jsontext.c - a body the daemon accepted stays JSON on the
 * way out: an integer past 64 bits reads (as a double) instead of failing the
 * whole text, a sender's 3.1 prints as 3.1, and a stored body spliced into an
 * answer keeps its own bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hr/jsontext.h"

static void
an_integer_past_64_bits_reads_as_a_double(void **state)
{
	static const char text[] = "{\"id\":123456789012345678901234,\"n\":7}";
	json_error_t je;
	json_t *v;

	(void)state;
	assert_null(json_loadb(text, strlen(text), 0, &je)); /* jansson alone refuses it */
	assert_non_null(v = hr_json_load_wide(text, strlen(text), 0, &je));
	assert_true(json_is_real(json_object_get(v, "id")));
	assert_true(json_real_value(json_object_get(v, "id")) > 1.2e23);
	assert_true(json_is_real(json_object_get(v, "n"))); /* the second read: all as doubles */
	json_decref(v);
}

static void
a_normal_text_keeps_its_integers(void **state)
{
	static const char text[] = "{\"n\":9007199254740993}";
	json_t *v = hr_json_load_wide(text, strlen(text), 0, NULL);

	(void)state;
	assert_non_null(v);
	assert_true(json_is_integer(json_object_get(v, "n")));
	assert_int_equal(json_integer_value(json_object_get(v, "n")), 9007199254740993LL);
	json_decref(v);
}

static void
a_number_past_a_double_still_fails(void **state)
{
	static const char text[] = "{\"n\":1e400}";
	json_error_t je;

	(void)state;
	assert_null(hr_json_load_wide(text, strlen(text), 0, &je));
	assert_int_equal(json_error_code(&je), json_error_numeric_overflow);
	assert_null(hr_json_load_wide("{", 1, 0, NULL)); /* and no error struct is fine */
}

static void
a_decimal_prints_as_written(void **state)
{
	json_t *v = json_pack("[f,f,f,f]", 3.1, 0.1, 1733419200.123456, 2700.0);
	char *text = json_dumps(v, JSON_COMPACT | HR_JSON_REALS);

	(void)state;
	assert_string_equal(text, "[3.1,0.1,1733419200.123456,2700.0]");
	free(text);
	json_decref(v);
}

static void
a_spliced_member_keeps_its_bytes(void **state)
{
	static const char raw[] = "{\"ratio\": 3.1, \"id\": 123456789012345678901234}";
	struct hr_dynbuf b;
	char *text;
	size_t len;

	(void)state;
	hr_dynbuf_init(&b, 0, 4096);
	assert_int_equal(
	    hr_json_splice(&b, "{\"id\":\"e1\"}", 11, "payload", raw, strlen(raw)), HR_OK);
	text = hr_dynbuf_take(&b, &len);
	assert_string_equal(
	    text, "{\"id\":\"e1\",\"payload\":{\"ratio\": 3.1, \"id\": 123456789012345678901234}}");
	free(text);

	assert_int_equal(hr_json_splice(&b, "{}", 2, "payload", "[1]", 3), HR_OK);
	text = hr_dynbuf_take(&b, &len);
	assert_string_equal(text, "{\"payload\":[1]}");
	free(text);
}

static void
a_splice_past_the_cap_fails_whole(void **state)
{
	struct hr_dynbuf b;
	size_t len;

	(void)state;
	hr_dynbuf_init(&b, 0, 16);
	assert_int_equal(
	    hr_json_splice(&b, "{\"id\":\"e1\"}", 11, "payload", "[1,2,3,4,5]", 11), HR_ETOOBIG);
	assert_null(hr_dynbuf_take(&b, &len));
	hr_dynbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_integer_past_64_bits_reads_as_a_double),
		cmocka_unit_test(a_normal_text_keeps_its_integers),
		cmocka_unit_test(a_number_past_a_double_still_fails),
		cmocka_unit_test(a_decimal_prints_as_written),
		cmocka_unit_test(a_spliced_member_keeps_its_bytes),
		cmocka_unit_test(a_splice_past_the_cap_fails_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
