/* test_dedup.c - which key makes two webhooks the same event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hr/cfg.h"
#include "hr/dedup.h"
#include "hr/event.h"

static const struct hr_json_limits limits = { 32, 256, 1 << 20, 100000 };

struct headers {
	const char *name, *value;
};

static const char *
lookup(void *arg, const char *name)
{
	for (const struct headers *h = arg; h != NULL && h->name != NULL; h++)
		if (strcasecmp(h->name, name) == 0)
			return h->value;
	return NULL;
}

/* The key of `body` under a source with `dedup`, or "" when it has none. */
static void
key_of(const char *dedup, const char *body, struct headers *hdrs, const char *forced, char *out)
{
	struct hr_source_cfg src = { .name = "s" };
	struct hr_parse_error pe;
	struct hr_event ev;

	snprintf(src.dedup, sizeof(src.dedup), "%s", dedup);
	assert_int_equal(
	    hr_event_parse(body, strlen(body), HR_PROVIDER_AUTO, &limits, &ev, &pe), HR_OK);
	if (!hr_dedup_key(&src, &ev, body, strlen(body), lookup, hdrs, forced, out))
		out[0] = '\0';
	hr_event_clear(&ev);
}

#define PAL                                                                                        \
	"{\"event_type\":\"system.pal_joined\",\"message_type\":\"system\","                       \
	"\"conversation_id\":\"c1\",\"properties\":{\"face_id\":\"r1\"}}"
#define REPLICA                                                                                    \
	"{\"message_type\":\"system\",\"event_type\":\"system.replica_joined\","                   \
	"\"conversation_id\":\"c1\",\"properties\":{\"replica_id\":\"r1\"}}"

static void
pal_joined_and_replica_joined_share_a_key(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", PAL, NULL, NULL, a);
	key_of("auto", REPLICA, NULL, NULL, b);
	assert_int_equal(strlen(a), 64);
	assert_string_equal(a, b);
}

static void
another_conversation_has_another_key(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", PAL, NULL, NULL, a);
	key_of("auto",
	    "{\"event_type\":\"system.pal_joined\",\"message_type\":\"system\","
	    "\"conversation_id\":\"c2\",\"properties\":{}}",
	    NULL, NULL, b);
	assert_string_not_equal(a, b);
}

#define VIDEO(status)                                                                              \
	"{\"video_id\":\"v1\",\"video_name\":\"n\",\"status\":\"" status "\","                     \
	"\"status_details\":\"d\",\"replica_id\":\"r\",\"created_at\":\"2024-08-28 15:27:40\","    \
	"\"updated_at\":\"2024-08-28 15:29:19\",\"generation_progress\":\"0/100\","                \
	"\"hosted_url\":\"h\",\"download_url\":null,\"stream_url\":null}"
#define SESSION(summary)                                                                           \
	"{\"event\":\"session_complete\",\"transcript_id\":null,\"room_id\":null,"                 \
	"\"room_name\":\"r\",\"duration_seconds\":null,\"transcript_text\":\"\","                  \
	"\"summary\":\"" summary "\"}"

static void
video_status_is_part_of_the_natural_key(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", VIDEO("ready"), NULL, NULL, a);
	key_of("auto", VIDEO("error"), NULL, NULL, b);
	assert_string_not_equal(a, b);
}

static void
pailflow_room_and_event_make_the_key_whatever_the_transcript(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", SESSION("x"), NULL, NULL, a);
	key_of("auto", SESSION("y"), NULL, NULL, b);
	assert_string_equal(a, b);
}

static void
unknown_bodies_fall_back_to_the_body_hash(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN], c[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", "{\"x\":1}", NULL, NULL, a);
	key_of("auto", "{\"x\":1}", NULL, NULL, b);
	key_of("auto", "{\"x\":2}", NULL, NULL, c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
}

static void
webhook_id_header_wins_in_auto(void **state)
{
	struct headers h1[] = { { "webhook-id", "msg_1" }, { NULL, NULL } };
	struct headers h2[] = { { "webhook-id", "msg_2" }, { NULL, NULL } };
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", PAL, h1, NULL, a);
	key_of("auto", PAL, h2, NULL, b);
	assert_string_not_equal(a, b); /* same body, different ids: two events */
}

static void
named_header_mode_uses_that_header(void **state)
{
	struct headers h1[] = { { "X-Delivery", "d1" }, { NULL, NULL } };
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("header:X-Delivery", "{\"x\":1}", h1, NULL, a);
	key_of("header:X-Delivery", "{\"x\":2}", h1, NULL, b);
	assert_string_equal(a, b);
}

static void
body_mode_ignores_the_natural_key(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("body", PAL, NULL, NULL, a);
	key_of("body", REPLICA, NULL, NULL, b);
	assert_string_not_equal(a, b);
}

static void
off_has_no_key_unless_a_verified_id_is_forced(void **state)
{
	char a[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("off", PAL, NULL, NULL, a);
	assert_string_equal(a, "");
	key_of("off", PAL, NULL, "msg_1", a);
	assert_int_equal(strlen(a), 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pal_joined_and_replica_joined_share_a_key),
		cmocka_unit_test(another_conversation_has_another_key),
		cmocka_unit_test(video_status_is_part_of_the_natural_key),
		cmocka_unit_test(pailflow_room_and_event_make_the_key_whatever_the_transcript),
		cmocka_unit_test(unknown_bodies_fall_back_to_the_body_hash),
		cmocka_unit_test(webhook_id_header_wins_in_auto),
		cmocka_unit_test(named_header_mode_uses_that_header),
		cmocka_unit_test(body_mode_ignores_the_natural_key),
		cmocka_unit_test(off_has_no_key_unless_a_verified_id_is_forced),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
