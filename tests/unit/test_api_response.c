/*
 * tests/unit/test_api_response.c - the attempt log's `response` string is made
 * of the recorded answer's bytes alone: a character the answer ends inside is
 * judged on the bytes that were stored, never on what lies past them in
 * memory (the stores happen to put a NUL there; nothing promises it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/handlers/api_int.h"

/* hr_api_response_json() of `len` bytes; the text it made, compared with `want`. */
static void
assert_response(const char *p, size_t len, const char *want)
{
	json_t *j = hr_api_response_json(p, len);

	assert_non_null(j);
	assert_string_equal(json_string_value(j), want);
	json_decref(j);
}

static void
a_cut_character_is_not_completed_from_past_the_answer(void **state)
{
	/* The answer is "ok\xe2" (3 bytes); the two bytes after it would complete
	 * the character: they were read, and copied past the 3-byte buffer. */
	static const char mem[] = "ok\xe2\x82\xac";

	(void)state;
	assert_response(mem, 3, "ok?");
	assert_response(mem, 4, "ok??");
	assert_response(mem, 5, "ok\xe2\x82\xac");
	assert_response("ok\xf0\x9f\x98\x80", 5, "ok???"); /* a 4-byte character cut */
}

/*
 * An answer that ends right before a page no one may read: reading one byte
 * past it is a crash, whatever the store would have put there.
 */
static void
nothing_past_the_answer_is_read(void **state)
{
	static const char *tails[] = { "ok\xe2\x82", "ok\xe2", "ok\xf0", "ok\xf0\x9f\x98", "\xc3" };
	static const char *want[] = { "ok??", "ok?", "ok?", "ok???", "?" };
	long page = sysconf(_SC_PAGESIZE);
	char *mem = mmap(
	    NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	(void)state;
	assert_true(mem != MAP_FAILED);
	assert_int_equal(mprotect(mem + page, (size_t)page, PROT_NONE), 0);
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		size_t n = strlen(tails[i]);
		char *p = mem + page - n;

		memcpy(p, tails[i], n);
		assert_response(p, n, want[i]);
	}
	munmap(mem, 2 * (size_t)page);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_cut_character_is_not_completed_from_past_the_answer),
		cmocka_unit_test(nothing_past_the_answer_is_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
