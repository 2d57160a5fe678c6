/*
 * tests/unit/test_forward_request.c - an attempt's request headers go out whole
 * or not at all. libcurl's allocations are made to fail one at a time
 * (curl_global_init_mem): whenever hr_fwd_request_setup() says it set the
 * request up, its headers hold every line, the signature's above all; when it
 * says it could not, nothing of it is left (LeakSanitizer, valgrind).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "hr/cfg.h"

#include "../../src/flow/forward_int.h"

/* The allocation that fails: the n-th from when it was armed (0: none). */
static long fail_at, calls;

static bool
this_one_fails(void)
{
	return fail_at > 0 && ++calls == fail_at;
}

static void *
t_malloc(size_t n)
{
	return this_one_fails() ? NULL : malloc(n);
}

static void *
t_realloc(void *p, size_t n)
{
	return this_one_fails() ? NULL : realloc(p, n);
}

static char *
t_strdup(const char *s)
{
	return this_one_fails() ? NULL : strdup(s);
}

static void *
t_calloc(size_t n, size_t size)
{
	return this_one_fails() ? NULL : calloc(n, size);
}

static int
setup(void **state)
{
	(void)state;
	return curl_global_init_mem(
	           CURL_GLOBAL_DEFAULT, t_malloc, free, t_realloc, t_strdup, t_calloc) == CURLE_OK
	    ? 0
	    : -1;
}

static int
teardown(void **state)
{
	(void)state;
	curl_global_cleanup();
	return 0;
}

static bool
has_line(const struct curl_slist *h, const char *prefix)
{
	for (; h != NULL; h = h->next)
		if (strncmp(h->data, prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

/*
 * A review (RF40): a failed append made the list NULL, its lines so far lost
 * (leaked), and the next append began a new list: the request could go out
 * without its webhook-id, its signature or its configured Authorization.
 */
static void
headers_go_out_whole_or_not_at_all(void **state)
{
	static char auth[] = "Authorization: Bearer t0k3n", extra[] = "X-Team: avatars";
	static char *lines[] = { auth, extra };
	static struct hr_destination_cfg c = { .name = "d",
		.url = "http://127.0.0.1:9/hook",
		.headers = { lines, 2 },
		.timeout_ms = 1000,
		.connect_timeout_ms = 1000 };
	static const char *const want[] = { "Content-Type: ", "User-Agent: ", "webhook-id: ",
		"webhook-timestamp: ", "webhook-signature: v1,",
		"Expect:", "Authorization: ", "X-Team: " };
	struct dest d = { .cfg = &c };
	char body[] = "{\"event_type\":\"system.shutdown\"}";
	int set_up = 0, refused = 0;

	(void)state;
	memset(d.keys.key[0], 'k', 32);
	d.keys.len[0] = 32;
	d.keys.n = 1;
	for (long n = 1; n <= 400; n++) {
		struct transfer *t = calloc(1, sizeof(*t));

		assert_non_null(t);
		t->d = &d;
		strcpy(t->event_id, "evt_2f6e3b1c");
		t->body = body;
		t->body_len = strlen(body);
		calls = 0;
		fail_at = n;
		if (hr_fwd_request_setup(t) == HR_OK) {
			fail_at = 0;
			set_up++;
			for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
				if (!has_line(t->headers, want[i]))
					fail_msg("allocation %ld failed: set up without \"%s\"", n,
					    want[i]);
		} else {
			fail_at = 0;
			refused++;
			assert_null(t->easy);
			assert_null(t->headers);
			assert_null(t->url);
		}
		t->body = NULL; /* the test's */
		curl_easy_cleanup(t->easy);
		t->easy = NULL;
		curl_slist_free_all(t->headers);
		free(t->url);
		free(t);
	}
	/* some allocations made it refuse, and past them all it was set up */
	assert_true(refused > 0);
	assert_true(set_up > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(headers_go_out_whole_or_not_at_all),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
