/* test_redact.c - what may be shown of a configured URL (issue 11 item 14). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hr/redact.h"

static void
check(const char *url, const char *want)
{
	char out[2048];

	hr_redact_url(url, out, sizeof(out));
	assert_string_equal(out, want);
}

static void
userinfo_is_redacted(void **state)
{
	(void)state;
	check("https://alice:s3cret@example.com/hook", "https://REDACTED@example.com/hook");
	check("https://tok_123@example.com:8443/h", "https://REDACTED@example.com:8443/h");
	check("http://:pw@[::1]:9000/x", "http://REDACTED@[::1]:9000/x");
}

static void
every_query_value_is_redacted_and_names_stay(void **state)
{
	(void)state;
	check("https://example.com/h?token=abc", "https://example.com/h?token=REDACTED");
	check("https://example.com/h?a=1&sig=xyz&flag",
	    "https://example.com/h?a=REDACTED&sig=REDACTED&REDACTED");
	check(
	    "https://u:p@example.com/h?key=k#frag", "https://REDACTED@example.com/h?key=REDACTED");
}

static void
a_url_without_credentials_is_unchanged(void **state)
{
	(void)state;
	check("https://example.com/hooks/tavus", "https://example.com/hooks/tavus");
	check("http://127.0.0.1:8080/", "http://127.0.0.1:8080/");
}

static void
what_cannot_be_parsed_is_not_shown(void **state)
{
	(void)state;
	check("http://exa mple.com/?token=abc", "(a URL that cannot be shown)");
	check("", "(a URL that cannot be shown)");
}

static void
a_short_buffer_truncates(void **state)
{
	char out[12];

	(void)state;
	hr_redact_url("https://u:p@example.com/", out, sizeof(out));
	assert_string_equal(out, "https://RED");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(userinfo_is_redacted),
		cmocka_unit_test(every_query_value_is_redacted_and_names_stay),
		cmocka_unit_test(a_url_without_credentials_is_unchanged),
		cmocka_unit_test(what_cannot_be_parsed_is_not_shown),
		cmocka_unit_test(a_short_buffer_truncates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
