/*
 * tests/unit/test_jsontext.c - a body the daemon accepted stays JSON on the
 * way out: an integer past 64 bits reads (as a double) instead of failing the
 * whole text, \u0000 and half a surrogate pair read too, a sender's 3.1
 * prints as 3.1, and a stored body spliced into an
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
	json_decref(v);
}

/* The wide read takes every integer as a double: the rest of the text (a page of
 * hookctl's, other events' payloads on it) printed 7 as 7.0. Below 2^53 only
 * (2^53 + 1 reads as 2^53, which would pass for exact), and -0.0 keeps its sign. */
static void
the_other_integers_stay_integers(void **state)
{
	static const char text[] =
	    "{\"big\":123456789012345678901234,\"n\":[7,-3,9007199254740991],"
	    "\"x\":2.5,\"z\":-0.0,\"past\":9007199254740993}";
	json_t *v = hr_json_load_wide(text, strlen(text), 0, NULL);
	char *out;

	(void)state;
	assert_non_null(v);
	out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | hr_json_reals(v));
	assert_string_equal(out,
	    "{\"big\":1.2345678901234569e23,\"n\":[7,-3,9007199254740991],"
	    "\"past\":9007199254740992.0,\"x\":2.5,\"z\":-0.0}");
	free(out);
	json_decref(v);
	v = hr_json_load_wide("123456789012345678901234", 24, JSON_DECODE_ANY, NULL);
	assert_true(json_is_real(v));
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
	json_t *v =
	    json_pack("[f,f,f,f,{s:[f]}]", 3.1, 0.1, 1733419200.123456, 2700.0, "deep", 7.25);
	char *text = json_dumps(v, JSON_COMPACT | hr_json_reals(v));

	(void)state;
	assert_string_equal(text, "[3.1,0.1,1733419200.123456,2700.0,{\"deep\":[7.25]}]");
	free(text);
	json_decref(v);
}

/* 16 digits for all lost what needs 17 (0.1 + 0.2 as JavaScript prints it) or 16
 * (a 16-digit decimal 15 do not hold): a document takes what its numbers need. */
static void
every_double_reads_back_as_itself(void **state)
{
	const double need16 = 0.008526732452599511, need17 = 0.1 + 0.2;
	json_t *v = json_pack("[f,f]", 3.1, need16);
	char *text = json_dumps(v, JSON_COMPACT | hr_json_reals(v));
	json_t *back = json_loads(text, 0, NULL);

	(void)state;
	assert_true(json_real_value(json_array_get(back, 1)) == need16);
	free(text);
	json_decref(back);
	json_array_append_new(v, json_real(need17));
	text = json_dumps(v, JSON_COMPACT | hr_json_reals(v));
	back = json_loads(text, 0, NULL);
	assert_true(json_real_value(json_array_get(back, 2)) == need17);
	assert_true(json_real_value(json_array_get(back, 0)) == 3.1);
	free(text);
	json_decref(back);
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

/* The string value of `key` in `text` read wide; asserts it read. */
static json_t *
read_member(const char *text, const char *key, size_t flags)
{
	json_error_t je;
	json_t *v = hr_json_load_wide(text, strlen(text), flags, &je);
	json_t *m;

	assert_non_null(v);
	m = json_incref(json_object_get(v, key));
	json_decref(v);
	assert_non_null(m);
	return m;
}

/* PailFlow's json.dumps writes a NUL of a transcript as \u0000: a 400, final
 * to a sender that never retries. The value keeps it (and its length). */
static void
a_nul_in_a_value_is_kept(void **state)
{
	static const char text[] = "{\"t\":\"a\\u0000b\"}";
	json_error_t je;
	json_t *m;

	(void)state;
	assert_null(json_loadb(text, strlen(text), 0, &je)); /* jansson alone refuses it */
	m = read_member(text, "t", JSON_REJECT_DUPLICATES);
	assert_int_equal(json_string_length(m), 3);
	assert_memory_equal(json_string_value(m), "a\0b", 3);
	json_decref(m);
}

/* Half of a surrogate pair alone (an emoji cut by a sender counting UTF-16
 * units: JSON.stringify("\ud83d")) reads as U+FFFD; pairs and an escaped
 * backslash before a 'u' are left as they are. */
static void
a_lone_surrogate_reads_as_the_replacement_character(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "{\"t\":\"x\\ud83d\"}", "x\xEF\xBF\xBD" },
		{ "{\"t\":\"\\udc00y\"}", "\xEF\xBF\xBDy" },
		{ "{\"t\":\"\\ud83d\\u0041\"}",
		    "\xEF\xBF\xBD"
		    "A" },
		{ "{\"t\":\"\\ud83d\\ud83d\\ude00\"}", "\xEF\xBF\xBD\xF0\x9F\x98\x80" },
		{ "{\"t\":\"\\\\ud800\\ud800\"}", "\\ud800\xEF\xBF\xBD" },
		{ "{\"t\":\"\\\"\\ud800\"}", "\"\xEF\xBF\xBD" },
		{ "{\"k\\udfff\":1,\"t\":\"\\uDBFF\"}", "\xEF\xBF\xBD" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *m = read_member(cases[i].text, "t", JSON_REJECT_DUPLICATES);

		assert_string_equal(json_string_value(m), cases[i].want);
		json_decref(m);
	}
}

/* jansson's keys are C strings: a \u0000 there reads as U+FFFD. One in a value
 * of the same text is still kept. */
static void
a_nul_in_a_key_reads_as_the_replacement_character(void **state)
{
	static const char text[] = "{\"a\\u0000\" : \"b\\u0000\"}";
	json_t *m = read_member(text, "a\xEF\xBF\xBD", 0);

	(void)state;
	assert_int_equal(json_string_length(m), 2);
	json_decref(m);
}

/* Each refusal is met in turn: a lone surrogate and an integer past 64 bits in
 * one text. What is really malformed still fails, where it is. */
static void
mended_and_wide_together_and_malformed_still_fails(void **state)
{
	static const char both[] = "{\"n\":123456789012345678901234,\"t\":\"\\ud800\"}";
	static const char bad[] = "{\"t\":\"\\ud800\",\"u\":\"\\uZZZZ\"}";
	json_error_t je;
	json_t *v;

	(void)state;
	assert_non_null(v = hr_json_load_wide(both, strlen(both), 0, &je));
	assert_true(json_is_real(json_object_get(v, "n")));
	assert_string_equal(json_string_value(json_object_get(v, "t")), "\xEF\xBF\xBD");
	json_decref(v);
	assert_null(hr_json_load_wide(bad, strlen(bad), 0, &je));
	assert_int_equal(je.position, 22); /* at the malformed escape */
}

/* Control bytes where hex digits belong are no escape to mend: read as digits
 * (case folded with | 0x20), "\ud8" and two 0x10 bytes became a lone half,
 * mended, and a text that is not JSON was stored (a review). */
static void
control_bytes_are_no_hex_digits(void **state)
{
	static const char text[] = "{\"a\":\"\\ud800\",\"b\":\"\\ud8\x10\x10\"}";
	json_error_t je;

	(void)state;
	assert_null(hr_json_load_wide(text, strlen(text), 0, &je));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(an_integer_past_64_bits_reads_as_a_double),
		cmocka_unit_test(a_normal_text_keeps_its_integers),
		cmocka_unit_test(a_number_past_a_double_still_fails),
		cmocka_unit_test(the_other_integers_stay_integers),
		cmocka_unit_test(a_decimal_prints_as_written),
		cmocka_unit_test(every_double_reads_back_as_itself),
		cmocka_unit_test(a_spliced_member_keeps_its_bytes),
		cmocka_unit_test(a_splice_past_the_cap_fails_whole),
		cmocka_unit_test(a_nul_in_a_value_is_kept),
		cmocka_unit_test(a_lone_surrogate_reads_as_the_replacement_character),
		cmocka_unit_test(a_nul_in_a_key_reads_as_the_replacement_character),
		cmocka_unit_test(mended_and_wide_together_and_malformed_still_fails),
		cmocka_unit_test(control_bytes_are_no_hex_digits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
