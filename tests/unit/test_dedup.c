/* test_dedup.c - which key makes two webhooks the same event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>

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

/* The callback URL's kept query parameters of the next key_as(), as JSON (NULL: none). */
static const char *query;

/* The key of `body` under a source with `dedup` and `auth`, or "" when it has none. */
static void
key_as(const char *dedup, enum hr_auth_mode auth, const char *body, struct headers *hdrs,
    const char *forced, char *out)
{
	struct hr_source_cfg src = { .name = "s", .auth = auth };
	struct hr_parse_error pe;
	struct hr_event ev;

	snprintf(src.dedup, sizeof(src.dedup), "%s", dedup);
	assert_int_equal(
	    hr_event_parse(body, strlen(body), HR_PROVIDER_AUTO, &limits, &ev, &pe), HR_OK);
	if (!hr_dedup_key(&src, &ev, body, strlen(body), query, lookup, hdrs, forced, out))
		out[0] = '\0';
	hr_event_clear(&ev);
}

static void
key_of(const char *dedup, const char *body, struct headers *hdrs, const char *forced, char *out)
{
	key_as(dedup, HR_AUTH_NONE, body, hdrs, forced, out);
}

#define PAL                                                                                        \
	"{\"event_type\":\"system.pal_joined\",\"message_type\":\"system\","                       \
	"\"conversation_id\":\"c1\",\"timestamp\":\"2025-07-11T06:45:47.472000Z\","                \
	"\"properties\":{\"face_id\":\"r1\"}}"
#define REPLICA                                                                                    \
	"{\"message_type\":\"system\",\"event_type\":\"system.replica_joined\","                   \
	"\"timestamp\":\"2025-07-11T06:45:47.472000Z\","                                           \
	"\"conversation_id\":\"c1\",\"properties\":{\"replica_id\":\"r1\"}}"

/* The one twin a provider documents: "an identical payload", two names. */
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
	    "\"conversation_id\":\"c2\",\"timestamp\":\"2025-07-11T06:45:47.472000Z\","
	    "\"properties\":{\"face_id\":\"r1\"}}",
	    NULL, NULL, b);
	assert_string_not_equal(a, b);
}

/* Twins are one callback; a second join of the same conversation later is not. */
static void
a_later_join_of_the_same_conversation_is_another_key(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN], c[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", REPLICA, NULL, NULL, a);
	key_of("auto",
	    "{\"message_type\":\"system\",\"event_type\":\"system.replica_joined\","
	    "\"timestamp\":\"2025-07-11T07:01:02.000000Z\","
	    "\"conversation_id\":\"c1\",\"properties\":{\"replica_id\":\"r1\"}}",
	    NULL, NULL, b);
	key_of("auto",
	    "{\"message_type\":\"system\",\"event_type\":\"system.replica_joined\","
	    "\"timestamp\":\"2025-07-11T06:45:47.472000Z\","
	    "\"conversation_id\":\"c1\",\"properties\":{\"replica_id\":\"r2\"}}",
	    NULL, NULL, c);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, c);
}

/* Key order and blanks differ between the twins as sent; the canonical form does not. */
static void
twin_key_ignores_key_order_and_blanks(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", PAL, NULL, NULL, a);
	key_of("auto",
	    "{ \"properties\" : {\"face_id\":\"r1\"}, \"conversation_id\":\"c1\","
	    "\"timestamp\":\"2025-07-11T06:45:47.472000Z\",\"message_type\":\"system\","
	    "\"event_type\":\"system.replica_joined\" }",
	    NULL, NULL, b);
	assert_string_equal(a, b);
}

#define SESSION(room_id, transcript)                                                               \
	"{\"event\":\"session_complete\",\"transcript_id\":null,\"room_id\":\"" room_id "\","      \
	"\"room_name\":\"interview-7f3a2c\",\"duration_seconds\":null,\"transcript_text\":"        \
	"\"" transcript "\",\"summary\":\"s\"}"

/* Issue 10: a reused Daily room, a second meeting, another transcript. The old
 * key (room_name + event) answered it "duplicate" and it was lost. */
static void
reused_room_session_complete_is_another_key(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("body", SESSION("5f0c8a3e", "first meeting"), NULL, NULL, a);
	key_of("body", SESSION("9a6f3d2e", "second meeting"), NULL, NULL, b);
	assert_string_not_equal(a, b);
}

/* Two quiet bot sessions in one reused room send the same bytes (the bot path
 * has no transcript or room id, no duration, an empty transcript), and PailFlow
 * never sends one twice: the bytes must not key it, or the second session is
 * answered "duplicate" and lost. dedup = body still keys them, as asked. */
static void
session_complete_bytes_key_nothing_in_auto(void **state)
{
	static const char quiet[] =
	    "{\"event\":\"session_complete\",\"transcript_id\":null,\"room_id\":null,"
	    "\"room_name\":\"lobby\",\"duration_seconds\":null,\"transcript_text\":\"\","
	    "\"summary\":\"Summary pending\",\"exit_reason\":\"idle_timeout\"}";
	struct headers id[] = { { "webhook-id", "msg_1" }, { NULL, NULL } };
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_of("auto", quiet, NULL, NULL, a);
	assert_string_equal(a, "");
	key_of("header:X-Delivery", quiet, NULL, NULL, a);
	assert_string_equal(a, "");
	key_of("body", quiet, NULL, NULL, a);
	assert_int_equal(strlen(a), 64);
	key_of("auto", quiet, id, NULL, b); /* a delivery id the sender names still keys */
	assert_int_equal(strlen(b), 64);
	assert_string_not_equal(a, b);
}

/* Whether `body` has a key under `dedup` on an unsigned source, without headers. */
static bool
has_key(const char *dedup, const char *body)
{
	char k[HR_DEDUP_KEY_LEN];

	key_of(dedup, body, NULL, NULL, k);
	assert_true(k[0] == '\0' || strlen(k) == 64);
	return k[0] != '\0';
}

/*
 * Review: two bots leaving one room send PailFlow's same bytes, and a Tavus
 * guardrail triggered twice may (no time in it): PailFlow never resends and
 * nothing is known of an unknown event's fields, so their bytes key nothing
 * (the second was answered "duplicate" and lost). An unknown Tavus event with a
 * timestamp is still keyed by its bytes; `dedup = body` keys them all.
 */
static void
unknown_events_whose_bytes_name_no_callback_are_all_stored(void **state)
{
	static const char bot_left[] = "{\"event\":\"bot_left\",\"room_name\":\"standup-1\"}";
	static const char guardrail[] =
	    "{\"conversation_id\":\"c1\",\"event_type\":\"conversation.guardrail.triggered\","
	    "\"message_type\":\"conversation\",\"properties\":{\"guardrail_name\":\"g\"}}";
	static const char timed[] =
	    "{\"conversation_id\":\"c1\",\"event_type\":\"conversation.guardrail.triggered\","
	    "\"timestamp\":\"2025-07-11T06:45:47.472000Z\",\"properties\":{}}";
	static const char blank[] =
	    "{\"conversation_id\":\"c1\",\"event_type\":\"conversation.guardrail.triggered\","
	    "\"timestamp\":\" \",\"properties\":{}}";
	(void)state;
	for (const char *const *b = (const char *const[]){ bot_left, guardrail, blank, NULL };
	     *b != NULL; b++) {
		assert_false(has_key("auto", *b));
		assert_true(has_key("body", *b));
	}
	assert_true(has_key("auto", timed));
}

/* The key of a body's bytes as versions before the query was part of it made
 * it: SHA-256 of "body", NUL, the bytes, NUL, in hex. */
static void
bytes_key_as_before(const char *body, char out[HR_DEDUP_KEY_LEN])
{
	unsigned char md[32];
	size_t mdlen = 0, len = strlen(body);
	char *buf = malloc(len + 6);

	assert_non_null(buf);
	memcpy(buf, "body", 5);
	memcpy(buf + 5, body, len + 1);
	assert_int_equal(EVP_Q_digest(NULL, "SHA256", NULL, buf, len + 6, md, &mdlen), 1);
	for (size_t i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	free(buf);
}

/*
 * Review: the same bytes sent to two callback URLs that differ in their query
 * (a user's `?objective=a` and `?objective=b`) were one key, the second lost.
 * The kept parameters are part of every key made of what was sent; without
 * any, a key is what it was (keys claimed before an upgrade still match).
 */
static void
the_query_parameters_are_part_of_a_key_of_the_bytes(void **state)
{
	static const char shutdown[] =
	    "{\"event_type\":\"system.shutdown\",\"message_type\":\"system\","
	    "\"conversation_id\":\"c1\",\"properties\":{\"shutdown_reason\":\"r\"}}";
	char before[HR_DEDUP_KEY_LEN], none[HR_DEDUP_KEY_LEN], empty[HR_DEDUP_KEY_LEN],
	    a[HR_DEDUP_KEY_LEN], a2[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN],
	    twin_a[HR_DEDUP_KEY_LEN], twin_b[HR_DEDUP_KEY_LEN], body_a[HR_DEDUP_KEY_LEN];

	(void)state;
	bytes_key_as_before(shutdown, before);
	query = NULL;
	key_of("auto", shutdown, NULL, NULL, none);
	query = "{}";
	key_of("auto", shutdown, NULL, NULL, empty);
	query = "{\"objective\":\"a\"}";
	key_of("auto", shutdown, NULL, NULL, a);
	key_of("auto", shutdown, NULL, NULL, a2);
	key_of("auto", PAL, NULL, NULL, twin_a);
	key_of("body", shutdown, NULL, NULL, body_a);
	query = "{\"objective\":\"b\"}";
	key_of("auto", shutdown, NULL, NULL, b);
	key_of("auto", PAL, NULL, NULL, twin_b);
	query = NULL;
	assert_string_equal(none, before);
	assert_string_equal(none, empty);
	assert_string_equal(a, a2);
	assert_string_not_equal(a, b);
	assert_string_not_equal(a, none);
	assert_string_equal(a, body_a);
	assert_string_not_equal(twin_a, twin_b);
	/* A signature covers the body, not the query: a signed source's key leaves it
	 * out, so a replay with a parameter added is its duplicate (a review). */
	static const enum hr_auth_mode signed_modes[] = { HR_AUTH_HMAC, HR_AUTH_DAILY,
		HR_AUTH_STANDARD_WEBHOOKS };
	for (size_t i = 0; i < sizeof(signed_modes) / sizeof(signed_modes[0]); i++) {
		enum hr_auth_mode auth = signed_modes[i];

		query = "{\"x\":\"1\"}";
		key_as("auto", auth, shutdown, NULL, NULL, a);
		key_as("body", auth, shutdown, NULL, NULL, body_a);
		query = NULL;
		key_as("auto", auth, shutdown, NULL, NULL, b);
		assert_string_equal(a, b);
		assert_string_equal(body_a, b);
	}
}

#define VIDEO(status)                                                                              \
	"{\"video_id\":\"v1\",\"video_name\":\"n\",\"status\":\"" status "\","                     \
	"\"status_details\":\"d\",\"replica_id\":\"r\",\"created_at\":\"2024-08-28 15:27:40\","    \
	"\"updated_at\":\"2024-08-28 15:29:19\",\"generation_progress\":\"0/100\","                \
	"\"hosted_url\":\"h\",\"download_url\":null,\"stream_url\":null}"
#define SHUTDOWN(reason)                                                                           \
	"{\"event_type\":\"system.shutdown\",\"message_type\":\"system\","                         \
	"\"conversation_id\":\"c1\",\"properties\":{\"shutdown_reason\":\"" reason "\"}}"
#define AH(ended)                                                                                  \
	"{\"session_id\":\"sess_1\",\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\",\"url\":\"u\"}" \
	","                                                                                        \
	"\"session_type\":\"webrtc_video\",\"status\":\"ended\",\"started_at\":null,"              \
	"\"ended_at\":\"" ended "\",\"created_at\":\"2024-01-15T10:30:00Z\",\"metadata\":{}}"

/* Every kind but the twin: any difference in the body is another callback. */
static void
every_other_kind_keys_on_its_bytes(void **state)
{
	static const char *const pairs[][2] = {
		{ VIDEO("ready"), VIDEO("error") },
		{ SHUTDOWN("participant_left_timeout"), SHUTDOWN("max_call_duration reached") },
		{ AH("2024-01-15T11:20:00Z"), AH("2024-01-15T11:21:00Z") },
		{ "{\"event_type\":\"x.y\",\"conversation_id\":\"c1\",\"timestamp\":\"t\","
		  "\"properties\":{\"n\":1}}",
		    "{\"event_type\":\"x.y\",\"conversation_id\":\"c1\",\"timestamp\":\"t\","
		    "\"properties\":{\"n\":2}}" },
	};
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN], c[HR_DEDUP_KEY_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		key_of("auto", pairs[i][0], NULL, NULL, a);
		key_of("auto", pairs[i][1], NULL, NULL, b);
		key_of("body", pairs[i][0], NULL, NULL, c);
		assert_string_not_equal(a, b);
		assert_string_equal(a, c); /* auto without a header is the body's key */
	}
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

/* An empty or blank id header (or named header) keyed every later event of the
 * source on the same empty value: each a "duplicate" of the first, dropped. It
 * names nothing: the body keys the event, as without the header. */
static void
a_blank_id_header_keys_nothing(void **state)
{
	const char *names[] = { "webhook-id", "svix-id", "X-Delivery" };
	const char *blanks[] = { "", "   ", "\t" };
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN], body[HR_DEDUP_KEY_LEN];

	(void)state;
	for (size_t n = 0; n < 3; n++) {
		for (size_t v = 0; v < 3; v++) {
			struct headers h[] = { { names[n], blanks[v] }, { NULL, NULL } };
			const char *mode = n == 2 ? "header:X-Delivery" : "auto";

			key_of(mode, "{\"x\":1}", h, NULL, a);
			key_of(mode, "{\"x\":2}", h, NULL, b);
			key_of("body", "{\"x\":1}", NULL, NULL, body);
			assert_string_not_equal(a, b);
			assert_string_equal(a, body);
		}
	}
	/* A blank verified id forces nothing either. */
	key_of("auto", "{\"x\":1}", NULL, "", a);
	key_of("auto", "{\"x\":2}", NULL, "", b);
	assert_string_not_equal(a, b);
}

/* Issue 11.5: an HMAC covers the body, not an id header. Were the header the key,
 * a captured request with a fresh id would be stored again each time. */
static void
hmac_sources_key_on_the_body_never_on_a_header(void **state)
{
	struct headers h1[] = { { "webhook-id", "msg_1" }, { "svix-id", "s1" },
		{ "X-Delivery", "d1" }, { NULL, NULL } };
	struct headers h2[] = { { "webhook-id", "msg_2" }, { "svix-id", "s2" },
		{ "X-Delivery", "d2" }, { NULL, NULL } };
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN], c[HR_DEDUP_KEY_LEN];

	(void)state;
	for (int m = 0; m < 2; m++) {
		const char *mode = m == 0 ? "auto" : "header:X-Delivery";

		key_as(mode, HR_AUTH_HMAC, "{\"x\":1}", h1, NULL, a);
		key_as(mode, HR_AUTH_HMAC, "{\"x\":1}", h2, NULL, b);
		key_as("body", HR_AUTH_HMAC, "{\"x\":1}", NULL, NULL, c);
		assert_string_equal(a, b);
		assert_string_equal(a, c);
		key_as(mode, HR_AUTH_HMAC, "{\"x\":2}", h1, NULL, b);
		assert_string_not_equal(a, b); /* and one id over two bodies merges nothing */
	}
	key_as("auto", HR_AUTH_TOKEN, "{\"x\":1}", h1, NULL, a); /* unsigned: the header keys */
	key_as("auto", HR_AUTH_TOKEN, "{\"x\":2}", h1, NULL, b);
	assert_string_equal(a, b);
}

/* Issue 11.11: ids were cut to 255 bytes, and two ids sharing a prefix collided. */
static void
long_verified_ids_are_hashed_whole(void **state)
{
	char id1[1024], id2[1024], a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	memset(id1, 'm', sizeof(id1) - 1);
	id1[sizeof(id1) - 1] = '\0';
	memcpy(id2, id1, sizeof(id1));
	id2[sizeof(id2) - 2] = 'n'; /* differs in the last byte only */
	key_of("auto", "{\"x\":1}", NULL, id1, a);
	key_of("auto", "{\"x\":1}", NULL, id2, b);
	assert_string_not_equal(a, b);
	key_of("auto", "{\"x\":2}", NULL, id1, b);
	assert_string_equal(a, b);
}

static void
body_mode_ignores_the_twin(void **state)
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

/* ---- Daily: the envelope id, in the signed body ---- */

#define DAILY_JOIN(id, ts)                                                                         \
	"{\"version\":\"1.0.0\",\"type\":\"participant.joined\",\"id\":\"" id "\","                \
	"\"payload\":{\"room\":\"r\",\"session_id\":\"p1\",\"joined_at\":1700000000},"             \
	"\"event_ts\":" ts "}"

static void
daily_retry_with_a_later_event_ts_is_the_same_event(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_as("auto", HR_AUTH_DAILY, DAILY_JOIN("ptcpt-1", "1700000000.5"), NULL, NULL, a);
	key_as("auto", HR_AUTH_DAILY, DAILY_JOIN("ptcpt-1", "1700000031.2"), NULL, NULL, b);
	assert_string_equal(a, b);
}

static void
daily_events_with_their_own_ids_are_two_events(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	/* Same bytes but for the id: two events. */
	key_as("auto", HR_AUTH_DAILY, DAILY_JOIN("ptcpt-1", "1700000000.5"), NULL, NULL, a);
	key_as("auto", HR_AUTH_DAILY, DAILY_JOIN("ptcpt-2", "1700000000.5"), NULL, NULL, b);
	assert_string_not_equal(a, b);
}

/*
 * Daily's recording, transcript and streaming ids are the type, the instance id
 * and the second ("rec-rtd-c3df927c-...-1692124192"), and a recording started
 * without an instanceId has Daily's default, one UUID for every room of the
 * domain: two rooms' recordings ready in the same second have one envelope id.
 * Keyed by the id alone, the second was answered "duplicate" and lost (review
 * RD40). The key is the id with the payload it names: a retry keeps both.
 */
#define DAILY_RTD(room, rec, ts)                                                                   \
	"{\"version\":\"1.0.0\",\"type\":\"recording.ready-to-download\","                         \
	"\"id\":\"rec-rtd-c3df927c-f738-4471-a2b7-066fa7e95a6b-1692124192\",\"payload\":{"         \
	"\"recording_id\":\"" rec "\",\"room_name\":\"" room "\",\"start_ts\":1692124183,"         \
	"\"status\":\"finished\",\"duration\":9},\"event_ts\":" ts "}"

static void
daily_events_sharing_an_id_with_other_payloads_are_two_events(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN], c[HR_DEDUP_KEY_LEN];

	(void)state;
	key_as("auto", HR_AUTH_DAILY, DAILY_RTD("room-a", "rec-1", "1692124192.1"), NULL, NULL, a);
	key_as("auto", HR_AUTH_DAILY, DAILY_RTD("room-b", "rec-2", "1692124192.4"), NULL, NULL, b);
	assert_string_not_equal(a, b);
	/* the retry of the first, a later event_ts and its keys in another order */
	key_as("auto", HR_AUTH_DAILY,
	    "{\"event_ts\":1692124250.0,\"version\":\"1.0.0\",\"type\":"
	    "\"recording.ready-to-download\",\"id\":"
	    "\"rec-rtd-c3df927c-f738-4471-a2b7-066fa7e95a6b-1692124192\",\"payload\":{"
	    "\"duration\":9,\"status\":\"finished\",\"start_ts\":1692124183,"
	    "\"room_name\":\"room-a\",\"recording_id\":\"rec-1\"}}",
	    NULL, NULL, c);
	assert_string_equal(a, c);
}

static void
daily_sources_ignore_delivery_id_headers(void **state)
{
	struct headers h1[] = { { "webhook-id", "fresh-1" }, { NULL, NULL } };
	struct headers h2[] = { { "webhook-id", "fresh-2" }, { "X-Id", "x" }, { NULL, NULL } };
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_as("auto", HR_AUTH_DAILY, DAILY_JOIN("ptcpt-1", "1"), h1, NULL, a);
	key_as("header:X-Id", HR_AUTH_DAILY, DAILY_JOIN("ptcpt-1", "1"), h2, NULL, b);
	assert_string_equal(a, b);
}

static void
daily_id_is_not_a_body_hash_nor_another_providers_key(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];
	const char *body = DAILY_JOIN("ptcpt-1", "1");

	(void)state;
	key_as("auto", HR_AUTH_DAILY, body, NULL, NULL, a);
	key_as("body", HR_AUTH_DAILY, body, NULL, NULL, b);
	assert_string_not_equal(a, b);
	/* dedup = off keys nothing */
	key_as("off", HR_AUTH_DAILY, body, NULL, NULL, b);
	assert_string_equal(b, "");
}

static void
daily_id_keys_only_where_a_signature_covers_it(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	/* Unsigned: anyone could claim a genuine event's id first, so the bytes key it. */
	key_as("auto", HR_AUTH_NONE, DAILY_JOIN("ptcpt-1", "1"), NULL, NULL, a);
	key_as("auto", HR_AUTH_NONE, DAILY_JOIN("ptcpt-1", "2"), NULL, NULL, b);
	assert_string_not_equal(a, b);
	key_as("auto", HR_AUTH_TOKEN, DAILY_JOIN("ptcpt-1", "1"), NULL, NULL, a);
	key_as("auto", HR_AUTH_TOKEN, DAILY_JOIN("ptcpt-1", "2"), NULL, NULL, b);
	assert_string_not_equal(a, b);
	/* An HMAC over the body covers it too. */
	key_as("auto", HR_AUTH_HMAC, DAILY_JOIN("ptcpt-1", "1"), NULL, NULL, a);
	key_as("auto", HR_AUTH_HMAC, DAILY_JOIN("ptcpt-1", "2"), NULL, NULL, b);
	assert_string_equal(a, b);
}

static void
daily_unknown_without_an_id_keys_on_its_bytes(void **state)
{
	char a[HR_DEDUP_KEY_LEN], b[HR_DEDUP_KEY_LEN];

	(void)state;
	key_as("auto", HR_AUTH_DAILY,
	    "{\"version\":\"1.0.0\",\"type\":\"x.y\",\"payload\":{},\"event_ts\":1}", NULL, NULL,
	    a);
	key_as("auto", HR_AUTH_DAILY,
	    "{\"version\":\"1.0.0\",\"type\":\"x.y\",\"payload\":{},\"event_ts\":2}", NULL, NULL,
	    b);
	assert_string_not_equal(a, b);
}

/* OpenSSL's allocations, made to fail on demand (installed before its first one). */
static bool ossl_fail;

static void *
ossl_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return ossl_fail ? NULL : malloc(n);
}

static void *
ossl_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return ossl_fail ? NULL : realloc(p, n);
}

static void
ossl_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

/*
 * No key when the digest cannot be made. It came back empty and was used all
 * the same: every event keyed then shared the empty key, each one after the
 * first answered "duplicate" and not stored. Without a key it is stored.
 */
static void
no_digest_means_no_key_not_an_empty_one(void **state)
{
	struct hr_source_cfg src = { .name = "s", .auth = HR_AUTH_NONE };
	const char *bodies[] = { "{\"a\":1}", "{\"a\":2}" };
	char out[HR_DEDUP_KEY_LEN];

	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		snprintf(src.dedup, sizeof(src.dedup), "%s", mode == 0 ? "body" : "auto");
		for (size_t i = 0; i < 2; i++) {
			struct hr_parse_error pe;
			struct hr_event ev;
			bool keyed;

			assert_int_equal(hr_event_parse(bodies[i], strlen(bodies[i]),
			                     HR_PROVIDER_AUTO, &limits, &ev, &pe),
			    HR_OK);
			ossl_fail = true;
			keyed = hr_dedup_key(
			    &src, &ev, bodies[i], strlen(bodies[i]), NULL, lookup, NULL, NULL, out);
			ossl_fail = false;
			assert_false(keyed);
			assert_true(hr_dedup_key(&src, &ev, bodies[i], strlen(bodies[i]), NULL,
			    lookup, NULL, NULL, out));
			assert_int_equal(strlen(out), 64);
			hr_event_clear(&ev);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pal_joined_and_replica_joined_share_a_key),
		cmocka_unit_test(another_conversation_has_another_key),
		cmocka_unit_test(a_later_join_of_the_same_conversation_is_another_key),
		cmocka_unit_test(twin_key_ignores_key_order_and_blanks),
		cmocka_unit_test(reused_room_session_complete_is_another_key),
		cmocka_unit_test(session_complete_bytes_key_nothing_in_auto),
		cmocka_unit_test(unknown_events_whose_bytes_name_no_callback_are_all_stored),
		cmocka_unit_test(the_query_parameters_are_part_of_a_key_of_the_bytes),
		cmocka_unit_test(every_other_kind_keys_on_its_bytes),
		cmocka_unit_test(unknown_bodies_fall_back_to_the_body_hash),
		cmocka_unit_test(webhook_id_header_wins_in_auto),
		cmocka_unit_test(named_header_mode_uses_that_header),
		cmocka_unit_test(a_blank_id_header_keys_nothing),
		cmocka_unit_test(hmac_sources_key_on_the_body_never_on_a_header),
		cmocka_unit_test(long_verified_ids_are_hashed_whole),
		cmocka_unit_test(body_mode_ignores_the_twin),
		cmocka_unit_test(off_has_no_key_unless_a_verified_id_is_forced),
		cmocka_unit_test(daily_retry_with_a_later_event_ts_is_the_same_event),
		cmocka_unit_test(daily_events_sharing_an_id_with_other_payloads_are_two_events),
		cmocka_unit_test(daily_events_with_their_own_ids_are_two_events),
		cmocka_unit_test(daily_sources_ignore_delivery_id_headers),
		cmocka_unit_test(daily_id_is_not_a_body_hash_nor_another_providers_key),
		cmocka_unit_test(daily_id_keys_only_where_a_signature_covers_it),
		cmocka_unit_test(daily_unknown_without_an_id_keys_on_its_bytes),
		cmocka_unit_test(no_digest_means_no_key_not_an_empty_one), /* after the fetch */
	};

	/* Before OpenSSL's first allocation, or it refuses. */
	if (!CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free))
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
