/* test_schema.c - descriptor tables, the generic decoder/encoder, name lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hr/kinds.h"
#include "hr/schema.h"

/* A decoded body: the tree, the typed struct and what decoding reported. */
struct decoded {
	json_t *root;
	void *typed;
	const struct hr_schema *schema;
	struct hr_summary sum;
	struct hr_parse_error perr;
	int rc;
};

static void
decode(struct decoded *d, enum hr_kind kind, const char *body)
{
	json_error_t je;

	memset(d, 0, sizeof(*d));
	d->root = json_loads(body, JSON_DECODE_ANY, &je);
	if (d->root == NULL)
		fail_msg("bad test JSON: %s", je.text);
	d->schema = hr_kind_desc(kind)->schema;
	d->typed = calloc(1, d->schema->size);
	assert_non_null(d->typed);
	d->rc = hr_schema_decode(d->schema, d->root, "", d->typed, &d->sum, &d->perr);
}

/* A schema of one integer field, for what HR_T_INT does whatever kind uses it. */
struct counted {
	struct hr_int count;
};
static const struct hr_field counted_fields[] = {
	{ "count", HR_T_INT, offsetof(struct counted, count), HR_F_REQUIRED, HR_R_NONE, NULL,
	    NULL },
	{ NULL, 0, 0, 0, HR_R_NONE, NULL, NULL },
};
static const struct hr_schema counted_schema = { "counted", sizeof(struct counted), counted_fields,
	false };

static void
decode_counted(struct decoded *d, const char *body)
{
	json_error_t je;

	memset(d, 0, sizeof(*d));
	d->root = json_loads(body, JSON_DECODE_ANY, &je);
	if (d->root == NULL)
		fail_msg("bad test JSON: %s", je.text);
	d->schema = &counted_schema;
	d->typed = calloc(1, d->schema->size);
	assert_non_null(d->typed);
	d->rc = hr_schema_decode(d->schema, d->root, "", d->typed, &d->sum, &d->perr);
}

static void
release(struct decoded *d)
{
	hr_schema_clear(d->schema, d->typed);
	free(d->typed);
	json_decref(d->root);
}

/* The detail recorded for `pointer`, or NULL. */
static const char *
error_at(const struct hr_parse_error *perr, const char *pointer)
{
	for (size_t i = 0; i < perr->nerrors; i++)
		if (strcmp(perr->errors[i].pointer, pointer) == 0)
			return perr->errors[i].detail;
	return NULL;
}

#define assert_error(d, ptr, detail)                                                               \
	do {                                                                                       \
		const char *got_ = error_at(&(d)->perr, ptr);                                      \
		if (got_ == NULL)                                                                  \
			fail_msg("no error at %s", ptr);                                           \
		assert_string_equal(got_, detail);                                                 \
	} while (0)

#define JOIN_OK                                                                                    \
	"\"event_type\":\"bot_join_failed\",\"workflow_thread_id\":\"t1\","                        \
	"\"room_url\":\"https://x.daily.co/r\",\"error_type\":\"auth_error\","                     \
	"\"error_message\":\"m\",\"timestamp\":\"2026-01-12T17:21:30.092034+00:00\""

#define SESSION_OK                                                                                 \
	"\"event\":\"session_complete\",\"transcript_id\":null,\"room_id\":null,"                  \
	"\"room_name\":\"r\",\"duration_seconds\":5,\"transcript_text\":\"\",\"summary\":\"s\""

#define TRANSCRIPT_ENVELOPE                                                                        \
	"\"event_type\":\"application.transcription_ready\",\"message_type\":\"application\","     \
	"\"conversation_id\":\"c1\""

/* ---- kind and name tables ---- */

static void
every_kind_has_a_descriptor_named_and_indexed_by_itself(void **state)
{
	(void)state;
	for (int k = 0; k < HR_KIND_COUNT; k++) {
		const struct hr_kind_desc *d = hr_kind_desc((enum hr_kind)k);

		assert_non_null(d);
		assert_int_equal(d->kind, k);
		assert_non_null(d->name);
		assert_int_equal(hr_kind_from_name(d->name), k);
		assert_int_equal(hr_kind_provider((enum hr_kind)k), d->provider);
		if (k >= HR_KIND_TAVUS_UNKNOWN) {
			assert_non_null(d->schema);
			assert_int_equal(strncmp(d->schema->name, "hr_", 3), 0);
		}
	}
	assert_null(hr_kind_desc(HR_KIND_COUNT));
}

static void
unknown_kind_has_no_schema_and_no_provider(void **state)
{
	(void)state;
	assert_null(hr_kind_desc(HR_KIND_UNKNOWN)->schema);
	assert_string_equal(hr_kind_name(HR_KIND_UNKNOWN), "unknown");
	assert_int_equal(hr_kind_provider(HR_KIND_UNKNOWN), HR_PROVIDER_AUTO);
}

static void
kind_names_are_the_public_strings(void **state)
{
	(void)state;
	assert_string_equal(
	    hr_kind_name(HR_KIND_TAVUS_REPLICA_JOINED), "tavus.conversation.system.replica_joined");
	assert_string_equal(hr_kind_name(HR_KIND_TAVUS_REPLICA_TRAINING), "tavus.replica_training");
	assert_string_equal(
	    hr_kind_name(HR_KIND_PAILFLOW_BOT_JOIN_FAILED), "pailflow.bot_join_failed");
	assert_int_equal(hr_kind_from_name("tavus.conversation.system.pal_joined"), -1);
	assert_int_equal(hr_kind_from_name(NULL), -1);
}

static void
provider_names_round_trip(void **state)
{
	(void)state;
	for (int p = HR_PROVIDER_AUTO; p <= HR_PROVIDER_AGENTHUMAN; p++)
		assert_int_equal(hr_provider_from_name(hr_provider_name((enum hr_provider)p)), p);
	assert_string_equal(hr_provider_name(HR_PROVIDER_PAILFLOW), "pailflow");
	assert_int_equal(hr_provider_from_name("botplatform"), -1);
}

static void
scope_names_are_empty_for_none(void **state)
{
	(void)state;
	assert_string_equal(hr_scope_name(HR_SCOPE_NONE), "");
	assert_string_equal(hr_scope_name(HR_SCOPE_CONVERSATION), "conversation");
	assert_string_equal(hr_scope_name(HR_SCOPE_AGENTHUMAN), "agenthuman");
}

static void
session_status_names_round_trip_and_none_is_null(void **state)
{
	(void)state;
	assert_null(hr_session_status_name(HR_SESS_NONE));
	for (int s = HR_SESS_CREATED; s <= HR_SESS_FAILED; s++)
		assert_int_equal(
		    hr_session_status_from_name(hr_session_status_name((enum hr_session_status)s)),
		    s);
	assert_int_equal(hr_session_status_from_name("running"), -1);
	assert_int_equal(hr_session_status_from_name(NULL), -1);
}

/* ---- JSON pointers ---- */

static void
pointer_escapes_tilde_and_slash(void **state)
{
	char buf[64] = "/a";
	size_t len = hr_jptr_push(buf, sizeof(buf), 2, "b/c~d");

	(void)state;
	assert_string_equal(buf, "/a/b~1c~0d");
	assert_int_equal(len, strlen(buf));
	buf[2] = '\0';
	assert_string_equal(buf, "/a");
}

static void
pointer_is_cut_short_on_whole_characters(void **state)
{
	char buf[7];
	size_t len;

	(void)state;
	buf[0] = '\0';
	len = hr_jptr_push(buf, sizeof(buf), 0, "abcd\xc3\xa9xyz");
	assert_string_equal(buf, "/abcd"); /* the 2-byte character would not fit */
	assert_int_equal(len, 5);
	len = hr_jptr_push(buf, sizeof(buf), len, "~~");
	assert_string_equal(buf, "/abcd/"); /* nor would "~0" */
	assert_int_equal(hr_jptr_push(buf, sizeof(buf), len, "q"), len);
	assert_string_equal(buf, "/abcd/");
}

/* ---- decoding: validation failures ---- */

static void
missing_required_field_is_named(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED, "{" JOIN_OK "}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_int_equal(d.perr.status, HR_EINVAL);
	assert_int_equal(d.perr.nerrors, 1);
	assert_error(&d, "/duration_seconds", "required field is missing");
	release(&d);
}

static void
wrong_type_names_expected_and_received(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED, "{" JOIN_OK ",\"duration_seconds\":\"2s\"}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "/duration_seconds", "expected number, got string");
	release(&d);
	decode_counted(&d, "{\"count\":\"2\"}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "/count", "expected integer, got string");
	release(&d);
}

static void
integer_field_rejects_a_fraction(void **state)
{
	struct decoded d;

	(void)state;
	decode_counted(&d, "{\"count\":2.5}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "/count", "expected integer, got number with a fraction");
	release(&d);
}

static void
integer_field_accepts_a_whole_real(void **state)
{
	struct decoded d;
	const struct counted *t;

	(void)state;
	decode_counted(&d, "{\"count\":2.0}");
	assert_int_equal(d.rc, HR_OK);
	t = d.typed;
	assert_int_equal(t->count.st, HR_SET);
	assert_int_equal(t->count.v, 2);
	release(&d);
}

/* bot_join_failed's duration is a time the bot measured: a fraction is kept. It
 * was an integer field, and a join of 2.4 s was refused 422 (never retried). */
static void
join_duration_may_have_a_fraction(void **state)
{
	struct decoded d;
	const struct hr_pailflow_bot_join_failed *t;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED, "{" JOIN_OK ",\"duration_seconds\":2.4}");
	assert_int_equal(d.rc, HR_OK);
	t = d.typed;
	assert_int_equal(t->duration_seconds.st, HR_SET);
	assert_true(t->duration_seconds.v > 2.39 && t->duration_seconds.v < 2.41);
	assert_false(t->duration_seconds.is_int);
	release(&d);
}

static void
null_in_a_non_nullable_field_is_named(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED,
	    "{" JOIN_OK ",\"duration_seconds\":1,\"error_message\":null}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "/error_message", "null is not allowed (expected string)");
	release(&d);
}

static void
const_mismatch_names_the_expected_value(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_SESSION_COMPLETE,
	    "{" SESSION_OK ",\"event\":\"session_completed\"}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "/event", "expected \"session_complete\"");
	release(&d);
}

static void
nested_transcript_item_error_has_its_full_pointer(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY,
	    "{" TRANSCRIPT_ENVELOPE ",\"properties\":{\"transcript\":["
	    "{\"role\":\"system\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"},"
	    "{\"role\":7,\"content\":\"c\"}]}}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_int_equal(d.perr.nerrors, 1);
	assert_error(&d, "/properties/transcript/2/role", "expected string, got number");
	release(&d);
}

static void
transcript_item_that_is_not_an_object_is_named(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY,
	    "{" TRANSCRIPT_ENVELOPE ",\"properties\":{\"transcript\":[{\"role\":\"user\","
	    "\"content\":\"b\"},\"hello\",{\"content\":\"c\"}]}}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "/properties/transcript/1", "expected object, got string");
	assert_error(&d, "/properties/transcript/2/role", "required field is missing");
	release(&d);
}

/*
 * insights is an LLM's JSON: a value of another type inside it is left out of
 * the typed view, never a 422 (PailFlow never retries; the body keeps it).
 */
static void
insights_of_another_shape_are_left_out_not_refused(void **state)
{
	static const char *const odd[] = {
		"{\"strengths\":[\"a\",3],\"overall_score\":7}",
		"{\"strengths\":[{\"point\":\"clear\"}],\"overall_score\":7}",
		"{\"summary\":null,\"overall_score\":7,\"competency_scores\":[]}",
		("{\"overall_score\":7,\"question_assessments\":[{\"question\":\"q\","
		 "\"answer\":\"a\",\"score\":\"7\",\"notes\":null}]}"),
	};
	struct decoded d;
	const struct hr_pailflow_session_complete *t;
	char body[512];

	(void)state;
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		snprintf(body, sizeof(body), "{" SESSION_OK ",\"insights\":%s}", odd[i]);
		decode(&d, HR_KIND_PAILFLOW_SESSION_COMPLETE, body);
		assert_int_equal(d.rc, HR_OK);
		t = d.typed;
		assert_int_equal(t->insights.st, HR_SET);
		assert_true(t->insights.overall_score.v == 7); /* what does decode is kept */
		release(&d);
	}
	/* The question's score that is not a number: that one field is left out. */
	decode(&d, HR_KIND_PAILFLOW_SESSION_COMPLETE, body);
	t = d.typed;
	assert_int_equal(t->insights.question_assessments.n, 1);
	assert_int_equal(((const struct hr_pailflow_question_assessment *)
	                         t->insights.question_assessments.items)[0]
	                     .score.st,
	    HR_ABSENT);
	release(&d);
	/* insights itself of another type: left out; the session is kept. */
	decode(&d, HR_KIND_PAILFLOW_SESSION_COMPLETE, "{" SESSION_OK ",\"insights\":\"n/a\"}");
	assert_int_equal(d.rc, HR_OK);
	assert_int_equal(
	    ((const struct hr_pailflow_session_complete *)d.typed)->insights.st, HR_ABSENT);
	release(&d);
	/* The rest of the body is held to its types all the same. */
	decode(&d, HR_KIND_PAILFLOW_SESSION_COMPLETE,
	    "{\"event\":\"session_complete\",\"transcript_id\":null,\"room_id\":null,"
	    "\"room_name\":7,\"duration_seconds\":1,\"transcript_text\":\"\",\"summary\":\"\","
	    "\"insights\":{\"strengths\":[3]}}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_int_equal(d.perr.nerrors, 1);
	assert_error(&d, "/room_name", "expected string, got number");
	release(&d);
}

static void
missing_envelope_fields_are_all_reported(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_TAVUS_SHUTDOWN, "{\"event_type\":\"system.shutdown\"}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_int_equal(d.perr.nerrors, 3);
	assert_error(&d, "/message_type", "required field is missing");
	assert_error(&d, "/conversation_id", "required field is missing");
	assert_error(&d, "/properties", "required field is missing");
	release(&d);
}

static void
errors_stop_being_recorded_at_the_maximum(void **state)
{
	char body[2048];
	size_t len;
	struct decoded d;

	(void)state;
	len = (size_t)snprintf(
	    body, sizeof(body), "{" TRANSCRIPT_ENVELOPE ",\"properties\":{\"transcript\":[");
	for (int i = 0; i < 40; i++)
		len += (size_t)snprintf(body + len, sizeof(body) - len, "%s1", i ? "," : "");
	snprintf(body + len, sizeof(body) - len, "]}}");
	decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY, body);
	assert_int_equal(d.rc, HR_EINVAL);
	assert_int_equal(d.perr.nerrors, HR_VERRORS_MAX);
	assert_error(&d, "/properties/transcript/15", "expected object, got number");
	release(&d);
}

static void
top_level_that_is_not_an_object_is_a_type_error(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_TAVUS_VIDEO, "[1]");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "", "expected object, got array");
	release(&d);
}

static void
base_pointer_prefixes_every_error(void **state)
{
	json_t *root = json_loads("{\"replica_id\":1,\"status\":\"ready\"}", 0, NULL);
	struct hr_tavus_replica_training t = { 0 };
	struct hr_parse_error perr = { 0 };
	const struct hr_schema *s = hr_kind_desc(HR_KIND_TAVUS_REPLICA_TRAINING)->schema;

	(void)state;
	assert_int_equal(hr_schema_decode(s, root, "/items/0", &t, NULL, &perr), HR_EINVAL);
	assert_string_equal(perr.errors[0].pointer, "/items/0/replica_id");
	hr_schema_clear(s, &t);
	json_decref(root);
}

static void
errors_can_be_counted_without_a_report(void **state)
{
	json_t *root = json_loads("{\"replica_id\":1}", 0, NULL);
	struct hr_tavus_replica_training t = { 0 };
	const struct hr_schema *s = hr_kind_desc(HR_KIND_TAVUS_REPLICA_TRAINING)->schema;

	(void)state;
	assert_int_equal(hr_schema_decode(s, root, "", &t, NULL, NULL), HR_EINVAL);
	json_decref(root);
}

/* ---- decoding: values ---- */

static void
open_enum_keeps_an_unknown_value_with_code_minus_one(void **state)
{
	struct decoded d;
	const struct hr_pailflow_bot_join_failed *t;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED,
	    "{" JOIN_OK ",\"duration_seconds\":1,\"error_type\":\"rate_limited\"}");
	assert_int_equal(d.rc, HR_OK);
	t = d.typed;
	assert_int_equal(t->error_type.code, HR_ENUM_OTHER);
	assert_string_equal(t->error_type.s, "rate_limited");
	assert_string_equal(d.sum.error_type, "rate_limited");
	release(&d);
}

static void
open_enum_maps_a_known_value_to_its_code(void **state)
{
	struct decoded d;
	const struct hr_pailflow_bot_join_failed *t;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED, "{" JOIN_OK ",\"duration_seconds\":1}");
	t = d.typed;
	assert_int_equal(t->error_type.code, HR_JOIN_AUTH_ERROR);
	release(&d);
}

static void
unparseable_timestamp_is_kept_not_refused(void **state)
{
	struct decoded d;
	const struct hr_pailflow_bot_join_failed *t;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED,
	    "{" JOIN_OK ",\"duration_seconds\":1,\"timestamp\":\"Monday noon\"}");
	assert_int_equal(d.rc, HR_OK);
	t = d.typed;
	assert_int_equal(t->timestamp.st, HR_SET);
	assert_false(t->timestamp.t.valid);
	assert_string_equal(hr_time_raw(&t->timestamp.t), "Monday noon");
	release(&d);
}

static void
timestamp_of_the_wrong_json_type_is_an_error(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED,
	    "{" JOIN_OK ",\"duration_seconds\":1,\"timestamp\":1768238490}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "/timestamp", "expected string, got number");
	release(&d);
}

static void
transcript_timestamp_rejects_a_boolean(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY,
	    "{" TRANSCRIPT_ENVELOPE ",\"properties\":{\"transcript\":[{\"role\":\"user\","
	    "\"content\":\"b\",\"timestamp\":true}]}}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(
	    &d, "/properties/transcript/0/timestamp", "expected string or number, got boolean");
	release(&d);
}

static void
unknown_fields_are_ignored(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_TAVUS_REPLICA_TRAINING,
	    "{\"replica_id\":\"r1\",\"status\":\"ready\",\"name\":{\"x\":[1]},\"n\":3}");
	assert_int_equal(d.rc, HR_OK);
	release(&d);
}

/*
 * The decoder finds an object's fields by one pass over its keys (schema.c,
 * find_fields), and by a lookup per field when the object or the table is
 * larger than that pass suits. Either way a field is found by its whole name,
 * in any key order, among any other keys.
 */
static void
fields_are_found_by_their_whole_name_in_any_order(void **state)
{
	struct decoded d;
	const struct hr_tavus_transcription_ready *t;
	const struct hr_tavus_transcript_item *it;
	char big[2048];
	size_t n;

	(void)state;
	/* The third item has more keys than the pass takes: it is looked up. */
	n = (size_t)snprintf(big, sizeof(big), "{\"content\":\"z\"");
	for (int k = 0; k < 40; k++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, ",\"extra%d\":%d", k, k);
	snprintf(big + n, sizeof(big) - n, ",\"role\":\"tool\"}");
	{
		char body[4096];

		snprintf(body, sizeof(body),
		    "{\"properties\":{\"transcript\":["
		    "{\"content\":\"a\",\"rol\":\"x\",\"role\":\"user\",\"roles\":\"y\",\"\":1},"
		    "{\"contents\":\"no\",\"conten\":\"no\",\"role\":\"assistant\"},"
		    "%s]}," TRANSCRIPT_ENVELOPE "}",
		    big);
		decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY, body);
	}
	assert_int_equal(d.rc, HR_OK);
	t = d.typed;
	assert_string_equal(t->env.conversation_id.s, "c1");
	assert_int_equal(t->properties.transcript.n, 3);
	it = t->properties.transcript.items;
	assert_int_equal(it[0].role.code, HR_TRANSCRIPT_USER);
	assert_string_equal(json_string_value(it[0].content.v), "a");
	assert_int_equal(it[1].role.code, HR_TRANSCRIPT_ASSISTANT);
	assert_int_equal(it[1].content.st, HR_ABSENT); /* "contents", "conten" are not it */
	assert_int_equal(it[2].role.code, HR_TRANSCRIPT_TOOL);
	assert_string_equal(json_string_value(it[2].content.v), "z");
	release(&d);

	/* A key that only begins or ends like a required field does not supply it. */
	decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY,
	    "{" TRANSCRIPT_ENVELOPE ",\"properties\":{\"transcript\":["
	    "{\"roles\":\"user\",\"content\":\"a\"},{\"rol\":\"user\"}]}}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_int_equal(d.perr.nerrors, 2);
	assert_error(&d, "/properties/transcript/0/role", "required field is missing");
	assert_error(&d, "/properties/transcript/1/role", "required field is missing");
	release(&d);
}

/* A key may hold a NUL (json_object_setn); "count\0x" is not "count". */
static void
a_key_holding_a_nul_is_not_the_field_before_it(void **state)
{
	struct decoded d;
	json_t *obj = json_object();
	struct counted out;
	struct hr_parse_error perr;

	(void)state;
	memset(&out, 0, sizeof(out));
	memset(&perr, 0, sizeof(perr));
	assert_int_equal(json_object_setn_new(obj, "count\0x", 7, json_integer(5)), 0);
	assert_int_equal(hr_schema_decode(&counted_schema, obj, "", &out, NULL, &perr), HR_EINVAL);
	memset(&d, 0, sizeof(d));
	d.perr = perr;
	assert_error(&d, "/count", "required field is missing");
	assert_int_equal(json_object_setn_new(obj, "count", 5, json_integer(6)), 0);
	memset(&out, 0, sizeof(out));
	memset(&perr, 0, sizeof(perr));
	assert_int_equal(hr_schema_decode(&counted_schema, obj, "", &out, NULL, &perr), HR_OK);
	assert_int_equal(out.count.v, 6);
	json_decref(obj);
}

/* A table of more fields than the pass takes: every field is looked up. */
#define WIDE_FIELDS 40
struct wide {
	struct hr_int v[WIDE_FIELDS];
};

static void
a_table_wider_than_the_pass_is_looked_up_field_by_field(void **state)
{
	static char names[WIDE_FIELDS][8];
	struct hr_field fields[WIDE_FIELDS + 1];
	struct hr_schema schema = { "wide", sizeof(struct wide), fields, false };
	struct hr_parse_error perr;
	struct wide out;
	json_t *obj;
	json_error_t je;

	(void)state;
	memset(fields, 0, sizeof(fields));
	for (int i = 0; i < WIDE_FIELDS; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d", i);
		fields[i] = (struct hr_field){ names[i], HR_T_INT,
			offsetof(struct wide, v) + (size_t)i * sizeof(struct hr_int),
			i == 20 ? HR_F_REQUIRED : 0u, HR_R_NONE, NULL, NULL };
	}
	obj = json_loads("{\"f39\":39,\"f0\":0,\"f1\":\"one\",\"f3\":3}", 0, &je);
	assert_non_null(obj);
	memset(&out, 0, sizeof(out));
	memset(&perr, 0, sizeof(perr));
	assert_int_equal(hr_schema_decode(&schema, obj, "", &out, NULL, &perr), HR_EINVAL);
	assert_int_equal(out.v[39].st, HR_SET);
	assert_int_equal(out.v[39].v, 39);
	assert_int_equal(out.v[3].v, 3);
	assert_int_equal(out.v[0].st, HR_SET);
	assert_int_equal(out.v[2].st, HR_ABSENT);
	assert_int_equal(perr.nfound, 2); /* f1 is not an integer; f20 is missing */
	json_decref(obj);
}

static void
number_field_remembers_integer_or_real(void **state)
{
	struct decoded d;
	const struct hr_pailflow_session_complete *t;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_SESSION_COMPLETE,
	    "{" SESSION_OK ",\"insights\":{\"overall_score\":8.0}}");
	assert_int_equal(d.rc, HR_OK);
	t = d.typed;
	assert_false(t->insights.overall_score.is_int);
	assert_true(t->insights.overall_score.v == 8.0);
	assert_true(d.sum.has_score);
	release(&d);
}

static void
roles_inside_arrays_do_not_feed_the_summary(void **state)
{
	struct decoded d;

	(void)state;
	decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY,
	    "{" TRANSCRIPT_ENVELOPE ",\"properties\":{\"transcript\":[{\"role\":\"user\","
	    "\"content\":\"b\",\"timestamp\":\"2026-08-11T23:02:15.957838Z\"}]}}");
	assert_int_equal(d.rc, HR_OK);
	assert_false(d.sum.occurred.valid);
	assert_string_equal(d.sum.session_key, "c1");
	release(&d);
}

static void
empty_array_decodes_to_no_items(void **state)
{
	struct decoded d;
	const struct hr_tavus_transcription_ready *t;

	(void)state;
	decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY,
	    "{" TRANSCRIPT_ENVELOPE ",\"properties\":{\"transcript\":[]}}");
	assert_int_equal(d.rc, HR_OK);
	t = d.typed;
	assert_int_equal(t->properties.transcript.st, HR_SET);
	assert_int_equal(t->properties.transcript.n, 0);
	assert_null(t->properties.transcript.items);
	release(&d);
}

static void
clear_frees_arrays_and_forgets_them(void **state)
{
	struct decoded d;
	const struct hr_tavus_transcription_ready *t;

	(void)state;
	decode(&d, HR_KIND_TAVUS_TRANSCRIPTION_READY,
	    "{" TRANSCRIPT_ENVELOPE ",\"properties\":{\"transcript\":["
	    "{\"role\":\"user\",\"content\":\"a\"},{\"role\":7,\"content\":\"b\"}]}}");
	assert_int_equal(d.rc, HR_EINVAL);
	assert_error(&d, "/properties/transcript/1/role", "expected string, got number");
	t = d.typed;
	assert_int_equal(t->properties.transcript.n, 2);
	hr_schema_clear(d.schema, d.typed);
	assert_int_equal(t->properties.transcript.n, 0);
	assert_null(t->properties.transcript.items);
	release(&d);
}

static void
clear_accepts_null(void **state)
{
	(void)state;
	hr_schema_clear(NULL, NULL);
	hr_schema_clear(hr_kind_desc(HR_KIND_TAVUS_VIDEO)->schema, NULL);
}

/* ---- encoding ---- */

static void
encode_emits_set_and_null_and_omits_absent(void **state)
{
	struct decoded d;
	json_t *out;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_SESSION_COMPLETE, "{" SESSION_OK ",\"extra\":1}");
	assert_int_equal(d.rc, HR_OK);
	out = hr_schema_encode(d.schema, d.typed);
	assert_non_null(out);
	assert_true(json_is_null(json_object_get(out, "transcript_id")));
	assert_string_equal(json_string_value(json_object_get(out, "room_name")), "r");
	assert_int_equal(json_integer_value(json_object_get(out, "duration_seconds")), 5);
	assert_null(json_object_get(out, "insights"));
	assert_null(json_object_get(out, "exit_reason"));
	assert_null(json_object_get(out, "extra"));
	json_decref(out);
	release(&d);
}

static void
encode_writes_timestamps_as_raw_and_utc(void **state)
{
	struct decoded d;
	json_t *out, *ts;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED, "{" JOIN_OK ",\"duration_seconds\":1}");
	out = hr_schema_encode(d.schema, d.typed);
	ts = json_object_get(out, "timestamp");
	assert_string_equal(
	    json_string_value(json_object_get(ts, "raw")), "2026-01-12T17:21:30.092034+00:00");
	assert_string_equal(
	    json_string_value(json_object_get(ts, "utc")), "2026-01-12T17:21:30.092034Z");
	assert_string_equal(json_string_value(json_object_get(out, "error_type")), "auth_error");
	json_decref(out);
	release(&d);
}

static void
encode_writes_null_utc_for_an_unparsed_timestamp(void **state)
{
	struct decoded d;
	json_t *out, *ts;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_BOT_JOIN_FAILED,
	    "{" JOIN_OK ",\"duration_seconds\":1,\"timestamp\":\"later\"}");
	out = hr_schema_encode(d.schema, d.typed);
	ts = json_object_get(out, "timestamp");
	assert_string_equal(json_string_value(json_object_get(ts, "raw")), "later");
	assert_true(json_is_null(json_object_get(ts, "utc")));
	json_decref(out);
	release(&d);
}

static void
encode_keeps_integer_and_real_scores_apart(void **state)
{
	struct decoded d;
	json_t *out;

	(void)state;
	decode(&d, HR_KIND_PAILFLOW_SESSION_COMPLETE,
	    "{" SESSION_OK ",\"insights\":{\"overall_score\":8,\"strengths\":[\"a\"],"
	    "\"question_assessments\":[{\"score\":2.5}]}}");
	out = hr_schema_encode(d.schema, d.typed);
	assert_true(
	    json_is_integer(json_object_get(json_object_get(out, "insights"), "overall_score")));
	assert_true(json_equal(json_object_get(json_object_get(out, "insights"), "strengths"),
	    json_object_get(json_object_get(d.root, "insights"), "strengths")));
	assert_true(
	    json_real_value(json_object_get(
	        json_array_get(
	            json_object_get(json_object_get(out, "insights"), "question_assessments"), 0),
	        "score")) == 2.5);
	json_decref(out);
	release(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_kind_has_a_descriptor_named_and_indexed_by_itself),
		cmocka_unit_test(unknown_kind_has_no_schema_and_no_provider),
		cmocka_unit_test(kind_names_are_the_public_strings),
		cmocka_unit_test(provider_names_round_trip),
		cmocka_unit_test(scope_names_are_empty_for_none),
		cmocka_unit_test(session_status_names_round_trip_and_none_is_null),
		cmocka_unit_test(pointer_escapes_tilde_and_slash),
		cmocka_unit_test(pointer_is_cut_short_on_whole_characters),
		cmocka_unit_test(missing_required_field_is_named),
		cmocka_unit_test(wrong_type_names_expected_and_received),
		cmocka_unit_test(integer_field_rejects_a_fraction),
		cmocka_unit_test(integer_field_accepts_a_whole_real),
		cmocka_unit_test(join_duration_may_have_a_fraction),
		cmocka_unit_test(null_in_a_non_nullable_field_is_named),
		cmocka_unit_test(const_mismatch_names_the_expected_value),
		cmocka_unit_test(nested_transcript_item_error_has_its_full_pointer),
		cmocka_unit_test(transcript_item_that_is_not_an_object_is_named),
		cmocka_unit_test(insights_of_another_shape_are_left_out_not_refused),
		cmocka_unit_test(missing_envelope_fields_are_all_reported),
		cmocka_unit_test(errors_stop_being_recorded_at_the_maximum),
		cmocka_unit_test(top_level_that_is_not_an_object_is_a_type_error),
		cmocka_unit_test(base_pointer_prefixes_every_error),
		cmocka_unit_test(errors_can_be_counted_without_a_report),
		cmocka_unit_test(open_enum_keeps_an_unknown_value_with_code_minus_one),
		cmocka_unit_test(open_enum_maps_a_known_value_to_its_code),
		cmocka_unit_test(unparseable_timestamp_is_kept_not_refused),
		cmocka_unit_test(timestamp_of_the_wrong_json_type_is_an_error),
		cmocka_unit_test(transcript_timestamp_rejects_a_boolean),
		cmocka_unit_test(unknown_fields_are_ignored),
		cmocka_unit_test(fields_are_found_by_their_whole_name_in_any_order),
		cmocka_unit_test(a_key_holding_a_nul_is_not_the_field_before_it),
		cmocka_unit_test(a_table_wider_than_the_pass_is_looked_up_field_by_field),
		cmocka_unit_test(number_field_remembers_integer_or_real),
		cmocka_unit_test(roles_inside_arrays_do_not_feed_the_summary),
		cmocka_unit_test(empty_array_decodes_to_no_items),
		cmocka_unit_test(clear_frees_arrays_and_forgets_them),
		cmocka_unit_test(clear_accepts_null),
		cmocka_unit_test(encode_emits_set_and_null_and_omits_absent),
		cmocka_unit_test(encode_writes_timestamps_as_raw_and_utc),
		cmocka_unit_test(encode_writes_null_utc_for_an_unparsed_timestamp),
		cmocka_unit_test(encode_keeps_integer_and_real_scores_apart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
