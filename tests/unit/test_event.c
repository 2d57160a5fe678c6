/* test_event.c - hr_event_parse(): every kind, every quirk, hostile input. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hr/event.h"
#include "hr/kinds.h"
#include "hr/kinds_daily.h"
#include "hr/timefmt.h"

/* A valid timestamp's RFC 3339 text ("" if not valid); one buffer, for asserts. */
static const char *
norm_of(const struct hr_time *t)
{
	static char buf[32];
	const char *s = hr_time_norm(t, buf, sizeof(buf));

	return s != NULL ? s : "";
}

static const struct hr_json_limits limits = {
	.max_depth = 32,
	.max_object_keys = 256,
	.max_string = 1 << 20,
};

static char *
read_payload(const char *file, size_t *len)
{
	char path[512];
	char *buf;
	long n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", HR_PAYLOADS_DIR, file);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* Parse a payload file (must succeed) with the default limits. */
static void
parse_file(const char *file, enum hr_provider hint, struct hr_event *ev)
{
	struct hr_parse_error perr;
	size_t len;
	char *body = read_payload(file, &len);
	int rc = hr_event_parse(body, len, hint, &limits, ev, &perr);

	free(body);
	if (rc != HR_OK)
		fail_msg("%s: %s (%s %s)", file, perr.detail,
		    perr.nerrors ? perr.errors[0].pointer : "",
		    perr.nerrors ? perr.errors[0].detail : "");
}

static int
parse_text(const char *body, enum hr_provider hint, const struct hr_json_limits *lim,
    struct hr_event *ev, struct hr_parse_error *perr)
{
	return hr_event_parse(body, strlen(body), hint, lim, ev, perr);
}

/* Parse text that must succeed. */
static void
parse_ok(const char *body, struct hr_event *ev)
{
	struct hr_parse_error perr;

	if (parse_text(body, HR_PROVIDER_AUTO, &limits, ev, &perr) != HR_OK)
		fail_msg("%s (%s %s)", perr.detail, perr.nerrors ? perr.errors[0].pointer : "",
		    perr.nerrors ? perr.errors[0].detail : "");
}

static const char *
error_at(const struct hr_parse_error *perr, const char *pointer)
{
	for (size_t i = 0; i < perr->nerrors; i++)
		if (strcmp(perr->errors[i].pointer, pointer) == 0)
			return perr->errors[i].detail;
	return NULL;
}

static void
assert_cleared(const struct hr_event *ev)
{
	assert_null(ev->root);
	assert_null(ev->typed);
	assert_null(ev->desc);
	assert_int_equal(ev->kind, HR_KIND_UNKNOWN);
}

/* Replace the first `from` of a payload with `to`, then parse. */
static int
parse_edited(const char *file, const char *from, const char *to, struct hr_event *ev,
    struct hr_parse_error *perr)
{
	size_t len, flen = strlen(from), tlen = strlen(to);
	char *body = read_payload(file, &len);
	char *at = strstr(body, from);
	char *out;
	int rc;

	if (at == NULL)
		fail_msg("%s: no \"%s\" to edit", file, from);
	out = malloc(len - flen + tlen + 1);
	assert_non_null(out);
	memcpy(out, body, (size_t)(at - body));
	memcpy(out + (at - body), to, tlen);
	strcpy(out + (at - body) + tlen, at + flen);
	rc = hr_event_parse(out, strlen(out), HR_PROVIDER_AUTO, &limits, ev, perr);
	free(out);
	free(body);
	return rc;
}

/* ---- every example ---- */

/* Daily events that name no room: a recording's start, transcripts (they name
 * the meeting), live streams but their errors, batch jobs. */
static bool
names_no_room(enum hr_kind kind)
{
	static const enum hr_kind kinds[] = { HR_KIND_DAILY_RECORDING_STARTED,
		HR_KIND_DAILY_TRANSCRIPT_STARTED, HR_KIND_DAILY_TRANSCRIPT_READY,
		HR_KIND_DAILY_TRANSCRIPT_ERROR, HR_KIND_DAILY_STREAMING_STARTED,
		HR_KIND_DAILY_STREAMING_UPDATED, HR_KIND_DAILY_STREAMING_ENDED,
		HR_KIND_DAILY_BATCH_JOB_FINISHED, HR_KIND_DAILY_BATCH_ERROR };

	for (size_t i = 0; i < HR_ARRAY_LEN(kinds); i++)
		if (kinds[i] == kind)
			return true;
	return false;
}

static void
every_payload_parses_and_encodes(void **state)
{
	struct dirent *de;
	DIR *dir = opendir(HR_PAYLOADS_DIR);
	size_t files = 0;

	(void)state;
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		struct hr_event ev;
		size_t n = strlen(de->d_name);
		json_t *typed;

		if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		parse_file(de->d_name, HR_PROVIDER_AUTO, &ev);
		assert_int_not_equal(ev.kind, HR_KIND_UNKNOWN);
		assert_int_not_equal(ev.kind, HR_KIND_TAVUS_UNKNOWN);
		assert_non_null(ev.typed);
		if (ev.sum.session_key == NULL && !names_no_room(ev.kind))
			fail_msg("%s: no session key", de->d_name);
		assert_true(ev.sum.session_key == NULL || ev.sum.scope != HR_SCOPE_NONE);
		typed = hr_event_typed_json(&ev);
		if (typed == NULL)
			fail_msg("%s: typed JSON failed", de->d_name);
		json_decref(typed);
		hr_event_clear(&ev);
		files++;
	}
	closedir(dir);
	assert_true(files >= 22);
}

/* ---- Tavus video ---- */

static void
video_completed_decodes_and_normalises_its_timestamps(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_video *v;

	(void)state;
	parse_file("tavus.video.completed.json", HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_VIDEO);
	assert_int_equal(ev.provider, HR_PROVIDER_TAVUS);
	v = ev.typed;
	assert_string_equal(v->video_id.s, "1e30440cf9");
	assert_int_equal(v->status.code, HR_VIDEO_READY);
	assert_string_equal(v->generation_progress.s, "100/100");
	assert_string_equal(norm_of(&v->created_at.t), "2024-08-28T15:27:40.824457Z");
	assert_string_equal(hr_time_raw(&v->created_at.t), "2024-08-28 15:27:40.824457");
	assert_string_equal(v->data.script.s, "Hello this is a test to give examples of callbacks");
	assert_int_equal(v->download_url.st, HR_SET);
	assert_int_equal(v->error_details.st, HR_ABSENT);
	hr_event_clear(&ev);
}

static void
video_completed_summary_is_completed_and_ended(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_file("tavus.video.completed.json", HR_PROVIDER_AUTO, &ev);
	assert_null(ev.sum.event_type);
	assert_string_equal(ev.sum.subtype, "completed");
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	assert_int_equal(ev.sum.scope, HR_SCOPE_VIDEO);
	assert_string_equal(ev.sum.session_key, "1e30440cf9");
	assert_string_equal(norm_of(&ev.sum.occurred), "2024-08-28T15:29:19.802670Z");
	assert_null(ev.sum.error_type);
	hr_event_clear(&ev);
}

static void
video_error_keeps_explicit_nulls(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_video *v;
	json_t *typed;

	(void)state;
	parse_file("tavus.video.error.json", HR_PROVIDER_AUTO, &ev);
	v = ev.typed;
	assert_int_equal(v->download_url.st, HR_NULL);
	assert_int_equal(v->stream_url.st, HR_NULL);
	assert_int_equal(v->error_details.st, HR_NULL);
	assert_string_equal(ev.sum.subtype, "error");
	assert_int_equal(ev.sum.status, HR_SESS_FAILED);
	typed = hr_event_typed_json(&ev);
	assert_true(json_is_null(json_object_get(typed, "download_url")));
	assert_true(json_is_null(json_object_get(typed, "stream_url")));
	json_decref(typed);
	hr_event_clear(&ev);
}

static void
video_generation_progress_as_a_number_is_refused(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(
	    parse_edited("tavus.video.completed.json", "\"100/100\"", "100", &ev, &perr),
	    HR_EINVAL);
	assert_int_equal(perr.status, HR_EINVAL);
	assert_int_equal(perr.kind, HR_KIND_TAVUS_VIDEO);
	assert_string_equal(error_at(&perr, "/generation_progress"), "expected string, got number");
	assert_cleared(&ev);
}

static void
video_lifecycle_status_is_other_and_started(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_tavus_video *v;

	(void)state;
	assert_int_equal(
	    parse_edited("tavus.video.completed.json", "\"ready\"", "\"generating\"", &ev, &perr),
	    HR_OK);
	v = ev.typed;
	assert_int_equal(v->status.code, HR_VIDEO_GENERATING);
	assert_string_equal(ev.sum.subtype, "other");
	assert_int_equal(ev.sum.status, HR_SESS_STARTED);
	hr_event_clear(&ev);
}

static void
video_unknown_status_keeps_its_text(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_tavus_video *v;

	(void)state;
	assert_int_equal(
	    parse_edited("tavus.video.completed.json", "\"ready\"", "\"archived\"", &ev, &perr),
	    HR_OK);
	v = ev.typed;
	assert_int_equal(v->status.code, HR_ENUM_OTHER);
	assert_string_equal(v->status.s, "archived");
	assert_string_equal(ev.sum.subtype, "other");
	hr_event_clear(&ev);
}

/* ---- Tavus replica training ---- */

static void
replica_completed_is_completed_and_ended(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_replica_training *r;

	(void)state;
	parse_file("tavus.replica.completed.json", HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_REPLICA_TRAINING);
	r = ev.typed;
	assert_int_equal(r->status.code, HR_REPLICA_READY);
	assert_int_equal(r->error_message.st, HR_ABSENT);
	assert_string_equal(ev.sum.subtype, "completed");
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	assert_int_equal(ev.sum.scope, HR_SCOPE_REPLICA);
	assert_string_equal(ev.sum.session_key, "r8b3c1d2e4f5");
	assert_false(ev.sum.occurred.valid);
	hr_event_clear(&ev);
}

static void
replica_error_keeps_its_message(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_replica_training *r;

	(void)state;
	parse_file("tavus.replica.error.json", HR_PROVIDER_AUTO, &ev);
	r = ev.typed;
	assert_int_equal(r->status.code, HR_REPLICA_ERROR);
	assert_non_null(strstr(r->error_message.s, "minimum duration requirement"));
	assert_string_equal(ev.sum.subtype, "error");
	assert_int_equal(ev.sum.status, HR_SESS_FAILED);
	assert_null(ev.sum.error_type);
	hr_event_clear(&ev);
}

static void
replica_training_status_is_other(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok("{\"replica_id\":\"r1\",\"status\":\"training\"}", &ev);
	assert_string_equal(ev.sum.subtype, "other");
	assert_int_equal(ev.sum.status, HR_SESS_STARTED);
	hr_event_clear(&ev);
}

/* ---- Tavus conversation callbacks ---- */

static void
replica_joined_and_pal_joined_are_one_kind_keeping_event_type(void **state)
{
	struct hr_event a, b;
	const struct hr_tavus_replica_joined *ta, *tb;

	(void)state;
	parse_file("tavus.conversation.system.replica_joined.json", HR_PROVIDER_AUTO, &a);
	parse_file("tavus.conversation.system.pal_joined.json", HR_PROVIDER_AUTO, &b);
	assert_int_equal(a.kind, HR_KIND_TAVUS_REPLICA_JOINED);
	assert_int_equal(b.kind, HR_KIND_TAVUS_REPLICA_JOINED);
	assert_string_equal(a.sum.event_type, "system.replica_joined");
	assert_string_equal(b.sum.event_type, "system.pal_joined");
	ta = a.typed;
	tb = b.typed;
	assert_string_equal(ta->properties.replica_id.s, "r79e1c033f");
	assert_int_equal(ta->properties.face_id.st, HR_ABSENT);
	assert_string_equal(tb->properties.face_id.s, "r79e1c033f");
	assert_int_equal(tb->env.message_type.code, HR_TAVUS_MSG_SYSTEM);
	assert_string_equal(a.sum.session_key, b.sum.session_key);
	assert_int_equal(a.sum.scope, HR_SCOPE_CONVERSATION);
	assert_int_equal(b.sum.status, HR_SESS_STARTED);
	assert_string_equal(norm_of(&b.sum.occurred), "2025-07-11T06:45:47.472000Z");
	hr_event_clear(&a);
	hr_event_clear(&b);
}

static void
shutdown_reports_its_reason_and_ends_the_session(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_file("tavus.conversation.system.shutdown.json", HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_SHUTDOWN);
	assert_string_equal(ev.sum.shutdown_reason, "participant_left_timeout");
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	assert_string_equal(ev.sum.session_key, "c4b6bacd1e935467");
	hr_event_clear(&ev);
}

/* SPEC 4.4.2: some senders put the reason in `reason`; shutdown_reason wins. */
static void
shutdown_reason_falls_back_to_reason(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_edited("tavus.conversation.system.shutdown.json",
	                     "\"shutdown_reason\"", "\"reason\"", &ev, &perr),
	    HR_OK);
	assert_string_equal(ev.sum.shutdown_reason, "participant_left_timeout");
	hr_event_clear(&ev);
	assert_int_equal(
	    parse_edited("tavus.conversation.system.shutdown.json",
	        "\"shutdown_reason\": \"participant_left_timeout\"",
	        "\"reason\": \"other\", \"shutdown_reason\": \"participant_left_timeout\"", &ev,
	        &perr),
	    HR_OK);
	assert_string_equal(ev.sum.shutdown_reason, "participant_left_timeout");
	hr_event_clear(&ev);
}

static void
transcription_ready_decodes_every_item(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_transcription_ready *t;
	const struct hr_tavus_transcript_item *items;

	(void)state;
	parse_file(
	    "tavus.conversation.application.transcription_ready.json", HR_PROVIDER_AUTO, &ev);
	t = ev.typed;
	assert_int_equal(t->properties.transcript.n, 5);
	items = t->properties.transcript.items;
	assert_int_equal(items[0].role.code, HR_TRANSCRIPT_SYSTEM);
	assert_int_equal(items[1].role.code, HR_TRANSCRIPT_USER);
	assert_int_equal(items[2].role.code, HR_TRANSCRIPT_ASSISTANT);
	assert_string_equal(json_string_value(items[1].content.v), "Hi.");
	assert_int_equal(items[1].timestamp.st, HR_ABSENT);
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	hr_event_clear(&ev);
}

static void
transcript_timestamps_accept_iso_and_epoch(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_transcription_ready *t;
	const struct hr_tavus_transcript_item *items;

	(void)state;
	parse_file("tavus.conversation.application.transcription_ready.extended.json",
	    HR_PROVIDER_AUTO, &ev);
	t = ev.typed;
	items = t->properties.transcript.items;
	assert_string_equal(norm_of(&items[1].timestamp.t), "2026-08-11T23:02:15.957838Z");
	assert_string_equal(norm_of(&items[2].timestamp.t), "2026-08-12T03:32:52.316150Z");
	assert_string_equal(hr_time_raw(&items[2].timestamp.t), "1786505572.3161497");
	assert_true(items[2].seconds_from_start.v == 4.2);
	assert_string_equal(items[2].inference_id.s, "4f1c2b7a-1d3e-4a5b-9c8d-0e1f2a3b4c5d");
	hr_event_clear(&ev);
}

static void
transcription_ready_without_transcript_is_refused(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_edited("tavus.conversation.application.transcription_ready.json",
	                     "\"transcript\"", "\"lines\"", &ev, &perr),
	    HR_EINVAL);
	assert_int_equal(perr.kind, HR_KIND_TAVUS_TRANSCRIPTION_READY);
	assert_string_equal(error_at(&perr, "/properties/transcript"), "required field is missing");
}

static void
transcript_item_error_is_named_by_its_index(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(
	    parse_edited("tavus.conversation.application.transcription_ready.json",
	        "\"content\": \"How's it going?\"",
	        "\"content\": \"How's it going?\", \"seconds_from_start\": \"soon\"", &ev, &perr),
	    HR_EINVAL);
	assert_string_equal(error_at(&perr, "/properties/transcript/2/seconds_from_start"),
	    "expected number, got string");
}

/* The example transcript with `from` edited to `to`, parsed (it must be); its items. */
static const struct hr_tavus_transcript_item *
transcript_edited(const char *from, const char *to, struct hr_event *ev)
{
	struct hr_parse_error perr;

	assert_int_equal(parse_edited("tavus.conversation.application.transcription_ready.json",
	                     from, to, ev, &perr),
	    HR_OK);
	return ((const struct hr_tavus_transcription_ready *)ev->typed)
	    ->properties.transcript.items;
}

/* SPEC 4.4.3: OpenAI chat shapes pass through. A review found two refused with
 * 422, the whole transcript lost: content as an array of parts (multimodal
 * messages), and a call of a custom tool, which carries `custom`, no `function`. */
static void
transcript_takes_content_parts_and_custom_tool_calls(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_tavus_transcript_item *items = transcript_edited(
	    "\"content\": \"Hi.\"", "\"content\": [{\"type\": \"text\", \"text\": \"Hi.\"}]", &ev);

	(void)state;
	assert_true(json_is_array(items[1].content.v));
	assert_string_equal(
	    json_string_value(json_object_get(json_array_get(items[1].content.v, 0), "text")),
	    "Hi.");
	hr_event_clear(&ev);
	assert_int_equal(
	    parse_edited("tavus.conversation.application.transcription_ready.tool_calls.json",
	        "\"type\": \"function\",\n            \"function\": {",
	        "\"type\": \"custom\",\n            \"custom\": {", &ev, &perr),
	    HR_OK);
	hr_event_clear(&ev);
}

/* null where a field may be left out is as if it were: a serialiser that
 * writes every optional member had a transcript refused for one item's
 * timestamp. A required field still takes null only where documented. */
static void
null_in_an_optional_field_is_as_if_left_out(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_tavus_transcript_item *items = transcript_edited("\"content\": \"Hi.\"",
	    "\"content\": \"Hi.\", \"timestamp\": null, \"seconds_from_start\": null, "
	    "\"duration\": null, \"inference_id\": null",
	    &ev);

	(void)state;
	assert_int_equal(items[1].timestamp.st, HR_NULL);
	assert_int_equal(items[1].duration.st, HR_NULL);
	hr_event_clear(&ev);
	assert_int_equal(
	    parse_edited("botplatform.session_complete.json", "\"exit_reason\": \"stop_phrase\"",
	        "\"exit_reason\": null", &ev, &perr),
	    HR_OK);
	hr_event_clear(&ev);
	assert_int_equal(
	    parse_edited("botplatform.session_complete.json", "\"room_name\": \"interview-7f3a2c\"",
	        "\"room_name\": null", &ev, &perr),
	    HR_EINVAL);
	assert_string_equal(error_at(&perr, "/room_name"), "null is not allowed (expected string)");
}

/* The OpenAI chat shape leaves content out of an item that calls a tool; a
 * transcript holding one is kept, the item without content. */
static void
transcript_item_may_leave_content_out(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_tavus_transcription_ready *t;

	(void)state;
	assert_int_equal(
	    parse_edited("tavus.conversation.application.transcription_ready.tool_calls.json",
	        "\"content\": null,", "", &ev, &perr),
	    HR_OK);
	t = ev.typed;
	assert_int_equal(
	    ((const struct hr_tavus_transcript_item *)t->properties.transcript.items)[2].content.st,
	    HR_ABSENT);
	hr_event_clear(&ev);
}

/* SPEC 4.4.3, changed 2026-12-02: OpenAI chat shapes pass through. One tool
 * call used to refuse the whole transcript (422), and Tavus never retries. */
static void
transcript_keeps_tool_calls_and_tool_answers(void **state)
{
	const struct hr_tavus_transcription_ready *t;
	const struct hr_tavus_transcript_item *items, *call, *answer;
	const struct hr_tavus_tool_call *tc;
	struct hr_event ev;

	(void)state;
	parse_file("tavus.conversation.application.transcription_ready.tool_calls.json",
	    HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_TRANSCRIPTION_READY);
	t = ev.typed;
	assert_int_equal(t->properties.transcript.n, 5);
	items = t->properties.transcript.items;
	call = &items[2];
	assert_int_equal(call->role.code, HR_TRANSCRIPT_ASSISTANT);
	assert_int_equal(call->content.st, HR_NULL);
	assert_int_equal(call->tool_calls.n, 1);
	tc = call->tool_calls.items;
	assert_string_equal(tc->id.s, "call_8f2c1a");
	assert_int_equal(tc->type.code, HR_TOOL_CALL_FUNCTION);
	assert_string_equal(tc->function.name.s, "check_availability");
	assert_true(json_is_string(tc->function.arguments.v)); /* as received: not re-parsed */
	assert_string_equal(json_string_value(tc->function.arguments.v),
	    "{\"party_size\": 2, \"time\": \"19:00\", \"day\": \"tomorrow\"}");
	answer = &items[3];
	assert_int_equal(answer->role.code, HR_TRANSCRIPT_TOOL);
	assert_string_equal(answer->tool_call_id.s, "call_8f2c1a");
	assert_string_equal(
	    json_string_value(answer->content.v), "{\"available\": true, \"table\": 12}");
	assert_int_equal(items[4].tool_calls.st, HR_ABSENT);
	hr_event_clear(&ev);
}

static void
typed_json_shows_tool_calls_as_received(void **state)
{
	struct hr_event ev;
	json_t *typed, *item, *fn;

	(void)state;
	parse_file("tavus.conversation.application.transcription_ready.tool_calls.json",
	    HR_PROVIDER_AUTO, &ev);
	typed = hr_event_typed_json(&ev);
	assert_non_null(typed);
	item =
	    json_array_get(json_object_get(json_object_get(typed, "properties"), "transcript"), 2);
	assert_true(json_is_null(json_object_get(item, "content")));
	fn = json_object_get(json_array_get(json_object_get(item, "tool_calls"), 0), "function");
	assert_string_equal(json_string_value(json_object_get(fn, "name")), "check_availability");
	assert_true(json_is_string(json_object_get(fn, "arguments")));
	item =
	    json_array_get(json_object_get(json_object_get(typed, "properties"), "transcript"), 3);
	assert_string_equal(json_string_value(json_object_get(item, "role")), "tool");
	assert_string_equal(
	    json_string_value(json_object_get(item, "tool_call_id")), "call_8f2c1a");
	json_decref(typed);
	hr_event_clear(&ev);
}

static void
tool_call_arguments_may_be_an_object(void **state)
{
	const struct hr_tavus_transcription_ready *t;
	const struct hr_tavus_tool_call *tc;
	struct hr_event ev;

	(void)state;
	parse_ok(
	    "{\"event_type\":\"application.transcription_ready\",\"message_type\":\"application\","
	    "\"conversation_id\":\"c1\",\"properties\":{\"transcript\":[{\"role\":\"assistant\","
	    "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
	    "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}}]}]}}",
	    &ev);
	t = ev.typed;
	tc = ((const struct hr_tavus_transcript_item *)t->properties.transcript.items)
	         ->tool_calls.items;
	assert_true(json_is_object(tc->function.arguments.v));
	hr_event_clear(&ev);
}

static void
tool_call_without_a_function_name_is_named_by_its_pointer(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(
	    parse_edited("tavus.conversation.application.transcription_ready.tool_calls.json",
	        "\"name\": \"check_availability\"", "\"nom\": 1", &ev, &perr),
	    HR_EINVAL);
	assert_string_equal(error_at(&perr, "/properties/transcript/2/tool_calls/0/function/name"),
	    "required field is missing");
	assert_int_equal(perr.nerrors, 1);
}

static void
recording_ready_legacy_and_storage_uri_shapes_decode(void **state)
{
	struct hr_event a, b;
	const struct hr_tavus_recording_ready *ta, *tb;

	(void)state;
	parse_file("tavus.conversation.application.recording_ready.json", HR_PROVIDER_AUTO, &a);
	parse_file("tavus.conversation.application.recording_ready.storage_uri.json",
	    HR_PROVIDER_AUTO, &b);
	ta = a.typed;
	tb = b.typed;
	assert_string_equal(ta->properties.s3_key.s, "c4b6bacd1e935467/1752216918137.mp4");
	assert_true(ta->properties.duration.is_int);
	assert_int_equal(ta->properties.storage_uri.st, HR_ABSENT);
	assert_int_equal(tb->properties.storage_provider.code, HR_STORAGE_S3);
	assert_string_equal(tb->properties.storage_uri.s,
	    "s3://my-cvi-recordings/c4b6bacd1e935467/1752216918137.mp4");
	assert_int_equal(a.sum.status, HR_SESS_NONE);
	assert_false(a.sum.has_duration);
	hr_event_clear(&a);
	hr_event_clear(&b);
}

static void
recording_copy_failed_keeps_its_error_message(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_recording_copy_failed *t;

	(void)state;
	parse_file(
	    "tavus.conversation.application.recording_copy_failed.json", HR_PROVIDER_AUTO, &ev);
	t = ev.typed;
	assert_string_equal(
	    t->properties.error_message.s, "unable to assume role with given parameters");
	assert_int_equal(ev.sum.status, HR_SESS_NONE);
	assert_null(ev.sum.error_type);
	hr_event_clear(&ev);
}

static void
perception_analysis_requires_its_analysis(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	parse_file(
	    "tavus.conversation.application.perception_analysis.json", HR_PROVIDER_AUTO, &ev);
	assert_non_null(
	    ((const struct hr_tavus_perception_analysis *)ev.typed)->properties.analysis.s);
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	hr_event_clear(&ev);
	assert_int_equal(parse_edited("tavus.conversation.application.perception_analysis.json",
	                     "\"analysis\"", "\"summary\"", &ev, &perr),
	    HR_EINVAL);
	assert_string_equal(error_at(&perr, "/properties/analysis"), "required field is missing");
}

static void
perception_unavailable_reason_is_an_open_enum(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_perception_unavailable *t;

	(void)state;
	parse_file(
	    "tavus.conversation.application.perception_unavailable.json", HR_PROVIDER_AUTO, &ev);
	t = ev.typed;
	assert_int_equal(t->properties.reason.code, HR_PERCEPTION_NO_VISION_HISTORY);
	hr_event_clear(&ev);
}

static void
post_call_action_keeps_request_body_as_text(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_post_call_action *t;

	(void)state;
	parse_file(
	    "tavus.conversation.application.post_call_action_executed.json", HR_PROVIDER_AUTO, &ev);
	t = ev.typed;
	assert_string_equal(t->properties.tool_name.s, "submit_interview_report");
	assert_int_equal(t->properties.status.code, HR_POST_CALL_SUCCESS);
	assert_non_null(strstr(t->properties.request.body.s, "overall_band"));
	assert_true(json_is_string(t->properties.response.v));
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	hr_event_clear(&ev);
}

static void
objective_completed_needs_no_timestamp(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_objective_completed *t;

	(void)state;
	parse_file("tavus.objective.completed.json", HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_OBJECTIVE_COMPLETED);
	t = ev.typed;
	assert_int_equal(t->env.message_type.code, HR_TAVUS_MSG_CONVERSATION);
	assert_string_equal(t->properties.objective_name.s, "greeting_and_qualification");
	assert_true(json_is_object(t->properties.output_variables.v));
	assert_int_equal(t->env.timestamp.st, HR_ABSENT);
	assert_false(ev.sum.occurred.valid);
	assert_string_equal(ev.sum.event_type, "conversation.objective.completed");
	assert_string_equal(ev.sum.session_key, "c4b6bacd1e935467");
	assert_int_equal(ev.sum.status, HR_SESS_STARTED);
	hr_event_clear(&ev);
}

static void
objective_completed_accepts_the_older_data_shape(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_objective_completed *t;

	(void)state;
	parse_ok("{\"event_type\":\"conversation.objective.completed\",\"conversation_id\":\"c1\","
	         "\"data\":{\"objective_name\":\"o\",\"output_variables\":{\"a\":[\"x\"]}}}",
	    &ev);
	t = ev.typed;
	assert_int_equal(t->properties.st, HR_ABSENT);
	assert_string_equal(t->data.objective_name.s, "o");
	hr_event_clear(&ev);
}

static void
guardrail_callback_is_tavus_unknown_with_its_conversation(void **state)
{
	struct hr_event ev;
	const struct hr_tavus_unknown *t;

	(void)state;
	parse_ok("{\"event_type\":\"conversation.guardrail.triggered\",\"message_type\":"
	         "\"conversation\",\"conversation_id\":\"c9\",\"timestamp\":"
	         "\"2026-01-01T00:00:00Z\",\"properties\":{\"guardrail\":\"x\"}}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_UNKNOWN);
	assert_int_equal(ev.provider, HR_PROVIDER_TAVUS);
	t = ev.typed;
	assert_non_null(t);
	assert_true(json_is_object(t->properties.v));
	assert_string_equal(ev.sum.event_type, "conversation.guardrail.triggered");
	assert_int_equal(ev.sum.scope, HR_SCOPE_CONVERSATION);
	assert_string_equal(ev.sum.session_key, "c9");
	assert_string_equal(norm_of(&ev.sum.occurred), "2026-01-01T00:00:00.000000Z");
	assert_int_equal(ev.sum.status, HR_SESS_NONE);
	hr_event_clear(&ev);
}

static void
tavus_unknown_without_conversation_has_no_scope(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok("{\"event_type\":\"future.thing\"}", &ev);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_UNKNOWN);
	assert_null(ev.sum.session_key);
	assert_int_equal(ev.sum.scope, HR_SCOPE_NONE);
	hr_event_clear(&ev);
}

static void
tavus_hint_accepts_a_body_without_event_type(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(
	    parse_text("{\"hello\":1}", HR_PROVIDER_TAVUS, &limits, &ev, &perr), HR_OK);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_UNKNOWN);
	assert_int_equal(ev.provider, HR_PROVIDER_TAVUS);
	assert_null(ev.sum.event_type);
	hr_event_clear(&ev);
}

/* ---- PailFlow ---- */

static void
session_complete_fills_the_summary(void **state)
{
	struct hr_event ev;
	const struct hr_pailflow_session_complete *t;

	(void)state;
	parse_file("botplatform.session_complete.json", HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.provider, HR_PROVIDER_PAILFLOW);
	t = ev.typed;
	assert_int_equal(t->transcript_id.st, HR_NULL);
	assert_int_equal(t->exit_reason.code, HR_EXIT_STOP_PHRASE);
	assert_true(t->insights.overall_score.is_int);
	assert_true(json_array_size(t->insights.strengths.v) == 2);
	assert_string_equal(ev.sum.event_type, "session_complete");
	assert_int_equal(ev.sum.scope, HR_SCOPE_ROOM);
	assert_string_equal(ev.sum.session_key, "interview-7f3a2c");
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	assert_true(ev.sum.has_duration);
	assert_true(ev.sum.duration == 1234.0);
	assert_true(ev.sum.has_score);
	assert_true(ev.sum.overall_score == 8.0);
	assert_string_equal(ev.sum.exit_reason, "stop_phrase");
	assert_false(ev.sum.occurred.valid);
	hr_event_clear(&ev);
}

static void
session_complete_accepts_a_float_score(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_pailflow_session_complete *t;

	(void)state;
	assert_int_equal(parse_edited("botplatform.session_complete.json", "\"overall_score\": 8",
	                     "\"overall_score\": 8.0", &ev, &perr),
	    HR_OK);
	t = ev.typed;
	assert_false(t->insights.overall_score.is_int);
	assert_true(ev.sum.overall_score == 8.0);
	hr_event_clear(&ev);
}

static void
session_complete_accepts_null_duration(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_pailflow_session_complete *t;

	(void)state;
	assert_int_equal(
	    parse_edited("botplatform.session_complete.json", "1234", "null", &ev, &perr), HR_OK);
	t = ev.typed;
	assert_int_equal(t->duration_seconds.st, HR_NULL);
	assert_false(ev.sum.has_duration);
	hr_event_clear(&ev);
}

/* PailFlow computes it from Daily's end_ts - start_ts, which carry fractions. */
static void
session_complete_accepts_a_fractional_duration(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_pailflow_session_complete *t;

	(void)state;
	assert_int_equal(
	    parse_edited("botplatform.session_complete.json", "1234", "72.671", &ev, &perr), HR_OK);
	t = ev.typed;
	assert_int_equal(t->duration_seconds.st, HR_SET);
	assert_true(t->duration_seconds.v > 72.67 && t->duration_seconds.v < 72.672);
	assert_true(ev.sum.has_duration);
	hr_event_clear(&ev);
}

/*
 * PailFlow's room_name is room_url.split("/")[-1] (main.py): a room URL with a
 * query (a meeting token) leaves it in the name. The session is the room's,
 * as bot_join_failed's room_url and Daily's own events give it.
 */
static void
session_complete_room_name_is_cut_at_a_query(void **state)
{
	static const char *const names[] = { "\"interview-7f3a2c?t=eyJhbGciOiJI\"",
		"\"interview-7f3a2c#x\"", "\"interview-7f3a2c\"" };
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(names); i++) {
		assert_int_equal(parse_edited("botplatform.session_complete.json",
		                     "\"interview-7f3a2c\"", names[i], &ev, &perr),
		    HR_OK);
		assert_string_equal(ev.sum.session_key, "interview-7f3a2c");
		hr_event_clear(&ev);
	}
	/* Nothing left of the name: no session, rather than an empty key. */
	assert_int_equal(parse_edited("botplatform.session_complete.json", "\"interview-7f3a2c\"",
	                     "\"?t=x\"", &ev, &perr),
	    HR_OK);
	assert_null(ev.sum.session_key);
	hr_event_clear(&ev);
}

static void
session_complete_without_duration_is_refused(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_edited("botplatform.session_complete.json",
	                     "\"duration_seconds\": 1234,", "", &ev, &perr),
	    HR_EINVAL);
	assert_string_equal(error_at(&perr, "/duration_seconds"), "required field is missing");
}

static void
session_complete_with_insights_error_omits_insights(void **state)
{
	struct hr_event ev;
	const struct hr_pailflow_session_complete *t;

	(void)state;
	parse_file("botplatform.session_complete.insights_error.json", HR_PROVIDER_AUTO, &ev);
	t = ev.typed;
	assert_int_equal(t->insights.st, HR_ABSENT);
	assert_int_equal(t->insights_error.st, HR_SET);
	assert_int_equal(t->room_id.st, HR_NULL);
	assert_false(ev.sum.has_score);
	hr_event_clear(&ev);
}

static void
session_complete_accepts_null_insights_error(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const struct hr_pailflow_session_complete *t;

	(void)state;
	assert_int_equal(
	    parse_edited("botplatform.session_complete.insights_error.json",
	        "\"Error processing insights for this call: OpenAI request timed out\"", "null",
	        &ev, &perr),
	    HR_OK);
	t = ev.typed;
	assert_int_equal(t->insights_error.st, HR_NULL);
	hr_event_clear(&ev);
}

static void
bot_join_failed_keys_on_the_room_url_segment(void **state)
{
	struct hr_event ev;
	const struct hr_pailflow_bot_join_failed *t;

	(void)state;
	parse_file("botplatform.bot_join_failed.json", HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.kind, HR_KIND_PAILFLOW_BOT_JOIN_FAILED);
	t = ev.typed;
	assert_int_equal(t->error_type.code, HR_JOIN_ROOM_NOT_FOUND);
	assert_int_equal(t->duration_seconds.v, 2);
	assert_string_equal(ev.sum.event_type, "bot_join_failed");
	assert_int_equal(ev.sum.scope, HR_SCOPE_ROOM);
	assert_string_equal(ev.sum.session_key, "room-name");
	assert_string_equal(norm_of(&ev.sum.occurred), "2026-01-12T17:21:30.092034Z");
	assert_int_equal(ev.sum.status, HR_SESS_FAILED);
	assert_string_equal(ev.sum.error_type, "room_not_found");
	assert_false(ev.sum.has_duration);
	hr_event_clear(&ev);
}

/* The session key bot_join_failed derives from `url`. */
static void
assert_room_key(const char *url, const char *key)
{
	char from[] = "\"https://lunchpaillabs.daily.co/room-name\"";
	char to[256];
	struct hr_event ev;
	struct hr_parse_error perr;

	snprintf(to, sizeof(to), "\"%s\"", url);
	assert_int_equal(
	    parse_edited("botplatform.bot_join_failed.json", from, to, &ev, &perr), HR_OK);
	if (key == NULL) {
		assert_null(ev.sum.session_key);
		assert_int_equal(ev.sum.scope, HR_SCOPE_NONE);
	} else {
		assert_string_equal(ev.sum.session_key, key);
	}
	hr_event_clear(&ev);
}

static void
room_url_key_drops_query_fragment_and_trailing_slash(void **state)
{
	(void)state;
	assert_room_key("https://x.daily.co/my-room?t=abc", "my-room");
	assert_room_key("https://x.daily.co/my-room#frag", "my-room");
	assert_room_key("https://x.daily.co/my-room/", "my-room");
	assert_room_key("https://x.daily.co/rooms/my-room//?t=1#f", "my-room");
	assert_room_key("my-room", "my-room");
}

static void
room_url_without_a_path_has_no_key(void **state)
{
	(void)state;
	assert_room_key("https://x.daily.co", NULL);
	assert_room_key("https://x.daily.co/?room=a/b", NULL);
}

/* SPEC 7 rule 2, changed 2026-12-02: another name is an event we do not know, kept. */
static void
bot_join_failed_variant_is_pailflow_unknown_keyed_by_room(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_edited("botplatform.bot_join_failed.json", "\"bot_join_failed\"",
	                     "\"bot_join_timeout\"", &ev, &perr),
	    HR_OK);
	assert_int_equal(ev.kind, HR_KIND_PAILFLOW_UNKNOWN);
	assert_int_equal(ev.provider, HR_PROVIDER_PAILFLOW);
	assert_string_equal(ev.sum.event_type, "bot_join_timeout");
	assert_int_equal(ev.sum.scope, HR_SCOPE_ROOM);
	assert_string_equal(ev.sum.session_key, "room-name");
	assert_int_equal(ev.sum.status, HR_SESS_NONE);
	assert_true(ev.sum.occurred.valid);
	hr_event_clear(&ev);
}

static void
pailflow_unknown_prefers_room_name_and_refuses_nothing(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok("{\"event\":\"session_started\",\"room_name\":\"interview-1\","
	         "\"room_url\":\"https://x.daily.co/other\",\"timestamp\":3}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_PAILFLOW_UNKNOWN);
	assert_string_equal(ev.sum.event_type, "session_started");
	assert_string_equal(ev.sum.session_key, "interview-1");
	assert_false(ev.sum.occurred.valid); /* a number where a time was expected: ignored */
	hr_event_clear(&ev);
	/* Wrong types everywhere: still stored, just not correlated. */
	parse_ok("{\"event_type\":\"bot_left\",\"workflow_thread_id\":[1],\"room_url\":{},"
	         "\"room_name\":false}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_PAILFLOW_UNKNOWN);
	assert_null(ev.sum.session_key);
	assert_int_equal(ev.sum.scope, HR_SCOPE_NONE);
	hr_event_clear(&ev);
}

/*
 * docs/events.md, pailflow.unknown: "key = room_name (up to a ? or #), else the
 * last path segment of room_url". PailFlow's room_name is room_url.split("/")[-1]:
 * a room URL given with a slash at its end makes it "". Such a name gives no
 * key, and the room_url the body also carries must then correlate the event.
 */
static void
pailflow_unknown_falls_back_to_room_url_when_room_name_gives_no_key(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok("{\"event\":\"bot_left\",\"room_name\":\"\","
	         "\"room_url\":\"https://x.daily.co/interview-1/\"}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_PAILFLOW_UNKNOWN);
	assert_non_null(ev.sum.session_key);
	assert_string_equal(ev.sum.session_key, "interview-1");
	assert_int_equal(ev.sum.scope, HR_SCOPE_ROOM);
	hr_event_clear(&ev);
}

static void
agenthuman_unknown_correlates_a_wrapped_session(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_file("agenthuman.unknown.end_session_response.json", HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.kind, HR_KIND_AGENTHUMAN_UNKNOWN);
	assert_int_equal(ev.sum.scope, HR_SCOPE_AGENTHUMAN);
	assert_string_equal(ev.sum.session_key, "sess_01H3Z8G9YR3K2N5M6P7Q8W4T");
	hr_event_clear(&ev);
	parse_ok("{\"event\":\"session.ended\",\"session_id\":\"sess_A\","
	         "\"session\":{\"session_id\":\"sess_B\"},\"status\":7}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_AGENTHUMAN_UNKNOWN);
	assert_string_equal(ev.sum.session_key, "sess_A"); /* the top-level id wins */
	assert_string_equal(ev.sum.event_type, "session.ended");
	hr_event_clear(&ev);
}

/* With a Tavus source every unmatched body is tavus.unknown: a wrong type in it
 * used to be a 422, and the body was lost. */
static void
tavus_unknown_refuses_nothing(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_text("{\"conversation_id\":5,\"timestamp\":[],\"message_type\":1}",
	                     HR_PROVIDER_TAVUS, &limits, &ev, &perr),
	    HR_OK);
	assert_int_equal(ev.kind, HR_KIND_TAVUS_UNKNOWN);
	assert_null(ev.sum.session_key);
	hr_event_clear(&ev);
	assert_int_equal(parse_text("{\"event_type\":\"conversation.guardrail.triggered\","
	                            "\"conversation_id\":\"c9\",\"properties\":\"text\"}",
	                     HR_PROVIDER_AUTO, &limits, &ev, &perr),
	    HR_OK);
	assert_string_equal(ev.sum.session_key, "c9");
	hr_event_clear(&ev);
}

/* ---- AgentHuman ---- */

static void
agenthuman_created_started_ended_follow_the_seed(void **state)
{
	static const struct {
		const char *file, *subtype, *occurred;
		enum hr_session_status status;
	} cases[] = {
		{ "agenthuman.session.created.json", "created", "2024-01-15T10:30:00.000000Z",
		    HR_SESS_CREATED },
		{ "agenthuman.session.started.json", "started", "2024-01-15T10:35:00.000000Z",
		    HR_SESS_STARTED },
		{ "agenthuman.session.ended.json", "ended", "2024-01-15T11:20:00.000000Z",
		    HR_SESS_ENDED },
	};

	(void)state;
	for (size_t i = 0; i < HR_ARRAY_LEN(cases); i++) {
		struct hr_event ev;

		parse_file(cases[i].file, HR_PROVIDER_AUTO, &ev);
		assert_int_equal(ev.kind, HR_KIND_AGENTHUMAN_SESSION);
		assert_null(ev.sum.event_type);
		assert_string_equal(ev.sum.subtype, cases[i].subtype);
		assert_int_equal(ev.sum.status, cases[i].status);
		assert_string_equal(norm_of(&ev.sum.occurred), cases[i].occurred);
		assert_int_equal(ev.sum.scope, HR_SCOPE_AGENTHUMAN);
		assert_string_equal(ev.sum.session_key, "sess_01H3Z8G9YR3K2N5M6P7Q8W4T");
		hr_event_clear(&ev);
	}
}

static void
agenthuman_ended_decodes_room_and_duration(void **state)
{
	struct hr_event ev;
	const struct hr_agenthuman_session *t;

	(void)state;
	parse_file("agenthuman.session.ended.json", HR_PROVIDER_AUTO, &ev);
	t = ev.typed;
	assert_string_equal(t->avatar.avatar_id.s, "avat_01H3Z8G9YR3K2N5M6P7Q8W4T");
	assert_int_equal(t->session_type.code, HR_AH_WEBRTC_VIDEO);
	assert_string_equal(t->daily_room.name.s, "example-room-name");
	assert_true(json_is_object(t->metadata.v));
	assert_true(ev.sum.has_duration);
	assert_true(ev.sum.duration == 2700.0);
	hr_event_clear(&ev);
}

/*
 * docs/events.md, agenthuman.session: "daily_room.name (else the last path
 * segment of daily_room.url) links the event to that room's timeline". An empty
 * name names no room: the URL's room is the link, not a room called "".
 */
static void
agenthuman_empty_room_name_falls_back_to_the_room_url(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok("{\"session_id\":\"sess_1\",\"session_type\":\"webrtc_video\","
	         "\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\",\"url\":\"u\"},"
	         "\"created_at\":\"2024-01-15T10:30:00Z\",\"metadata\":{},"
	         "\"daily_room\":{\"url\":\"https://agenthuman.daily.co/example-room-name\","
	         "\"name\":\"\"}}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_AGENTHUMAN_SESSION);
	assert_non_null(ev.sum.room);
	assert_string_equal(ev.sum.room, "example-room-name");
	hr_event_clear(&ev);
}

/*
 * docs/events.md "Keys": a key longer than 1,024 bytes names nothing (PostgreSQL's
 * indexes refuse an entry past 2704 bytes, and the webhook was answered 503 and
 * lost); as an empty one, it leaves what another field gave. So on every path:
 * a decoded body, a body of no known kind, an accepted rejection.
 */
static void
keys_past_1024_bytes_name_nothing(void **state)
{
	char *big = malloc(1026), *body = malloc(4096);
	struct hr_event ev;

	(void)state;
	assert_non_null(big);
	assert_non_null(body);
	memcpy(big, "sess_", 5); /* an AgentHuman id */
	memset(big + 5, 'k', 1020);
	big[1025] = '\0';
	snprintf(body, 4096,
	    "{\"session_id\":\"%s\",\"session_type\":\"webrtc_video\",\"status\":\"%s\","
	    "\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\",\"url\":\"u\"},"
	    "\"created_at\":\"2024-01-15T10:30:00Z\",\"metadata\":{},"
	    "\"daily_room\":{\"url\":\"https://agenthuman.daily.co/example-room-name\","
	    "\"name\":\"%s\"}}",
	    big, "started", big);
	parse_ok(body, &ev);
	assert_int_equal(ev.kind, HR_KIND_AGENTHUMAN_SESSION);
	assert_null(ev.sum.session_key);
	assert_int_equal(ev.sum.scope, HR_SCOPE_NONE);
	assert_string_equal(ev.sum.room, "example-room-name");
	hr_event_clear(&ev);
	snprintf(body, 4096, "{\"event_type\":\"%s\",\"x\":1}", big);
	parse_ok(body, &ev);
	assert_null(ev.sum.event_type);
	hr_event_clear(&ev);
	snprintf(body, 4096, "{\"conversation_id\":\"%s\",\"event_type\":\"%s\"}", big, big);
	assert_int_equal(
	    hr_event_accept(body, strlen(body), HR_KIND_TAVUS_SHUTDOWN, HR_PROVIDER_AUTO, &ev),
	    HR_OK);
	assert_null(ev.sum.session_key);
	assert_null(ev.sum.event_type);
	hr_event_clear(&ev);
	big[1024] = '\0'; /* 1,024 bytes: kept */
	snprintf(body, 4096, "{\"event_type\":\"%s\",\"x\":1}", big);
	parse_ok(body, &ev);
	assert_non_null(ev.sum.event_type);
	assert_int_equal(strlen(ev.sum.event_type), 1024);
	hr_event_clear(&ev);
	free(body);
	free(big);
}

static void
agenthuman_created_has_null_duration_and_token(void **state)
{
	struct hr_event ev;
	const struct hr_agenthuman_session *t;

	(void)state;
	parse_file("agenthuman.session.created.json", HR_PROVIDER_AUTO, &ev);
	t = ev.typed;
	assert_int_equal(t->duration.st, HR_NULL);
	assert_int_equal(t->started_at.st, HR_NULL);
	assert_int_equal(t->daily_room.st, HR_ABSENT);
	assert_string_equal(t->access_token.s, "access_token_xxxxxxxxxxxxx");
	assert_false(ev.sum.has_duration);
	hr_event_clear(&ev);
}

static void
agenthuman_status_is_derived_when_missing(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_edited("agenthuman.session.started.json", "\"status\": \"started\",",
	                     "", &ev, &perr),
	    HR_OK);
	assert_int_equal(((const struct hr_agenthuman_session *)ev.typed)->status.st, HR_ABSENT);
	assert_string_equal(ev.sum.subtype, "started");
	assert_int_equal(ev.sum.status, HR_SESS_STARTED);
	hr_event_clear(&ev);
}

static void
agenthuman_timestamps_win_over_a_disagreeing_status(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_edited("agenthuman.session.ended.json", "\"status\": \"ended\"",
	                     "\"status\": \"started\"", &ev, &perr),
	    HR_OK);
	assert_string_equal(((const struct hr_agenthuman_session *)ev.typed)->status.s, "started");
	assert_string_equal(ev.sum.subtype, "ended");
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	hr_event_clear(&ev);
}

static void
agenthuman_status_stands_without_timestamps(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok(
	    "{\"session_id\":\"sess_1\",\"session_type\":\"webrtc_video\",\"status\":\"ended\","
	    "\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\",\"url\":\"u\"},"
	    "\"created_at\":\"2024-01-15T10:30:00Z\",\"metadata\":{}}",
	    &ev);
	assert_string_equal(ev.sum.subtype, "ended");
	assert_int_equal(ev.sum.status, HR_SESS_ENDED);
	assert_string_equal(norm_of(&ev.sum.occurred), "2024-01-15T10:30:00.000000Z");
	hr_event_clear(&ev);
}

static void
agenthuman_unknown_status_is_kept_with_no_state(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok(
	    "{\"session_id\":\"sess_1\",\"session_type\":\"webrtc_audio\",\"status\":\"paused\","
	    "\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\",\"url\":\"u\"},"
	    "\"created_at\":\"2024-01-15T10:30:00Z\",\"metadata\":{}}",
	    &ev);
	assert_string_equal(ev.sum.subtype, "paused");
	assert_int_equal(ev.sum.status, HR_SESS_NONE);
	assert_int_equal(
	    ((const struct hr_agenthuman_session *)ev.typed)->session_type.code, HR_ENUM_OTHER);
	hr_event_clear(&ev);
}

static void
agenthuman_avatar_field_error_is_nested(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_edited("agenthuman.session.created.json",
	                     "\"name\": \"Professional Avatar\"", "\"name\": 5", &ev, &perr),
	    HR_EINVAL);
	assert_string_equal(error_at(&perr, "/avatar/name"), "expected string, got number");
}

static void
agenthuman_metadata_must_be_an_object(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(
	    parse_edited("agenthuman.session.created.json",
	        "\"user_name\": \"John Doe\",\n    \"session_purpose\": \"Customer Support\"",
	        "\"x\": 1", &ev, &perr),
	    HR_OK);
	hr_event_clear(&ev);
	assert_int_equal(parse_text("{\"session_id\":\"sess_1\",\"session_type\":\"w\","
	                            "\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\",\"url\":\"u\"},"
	                            "\"created_at\":\"2024-01-15T10:30:00Z\",\"metadata\":[]}",
	                     HR_PROVIDER_AUTO, &limits, &ev, &perr),
	    HR_EINVAL);
	assert_string_equal(error_at(&perr, "/metadata"), "expected object, got array");
}

/* ---- unknown bodies and providers ---- */

static void
unknown_body_is_kept_without_a_typed_struct(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok("{\"event\":\"order.created\",\"id\":1}", &ev);
	assert_int_equal(ev.kind, HR_KIND_UNKNOWN);
	assert_int_equal(ev.provider, HR_PROVIDER_AUTO);
	assert_non_null(ev.root);
	assert_null(ev.typed);
	assert_null(hr_event_typed_json(&ev));
	assert_string_equal(ev.sum.event_type, "order.created");
	assert_int_equal(ev.sum.scope, HR_SCOPE_NONE);
	assert_int_equal(ev.sum.status, HR_SESS_NONE);
	hr_event_clear(&ev);
}

static void
non_object_body_is_unknown_and_raw(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_text("[1,2,3]", HR_PROVIDER_TAVUS, &limits, &ev, &perr), HR_OK);
	assert_int_equal(ev.kind, HR_KIND_UNKNOWN);
	assert_int_equal(ev.provider, HR_PROVIDER_TAVUS);
	assert_true(json_is_array(ev.root));
	assert_null(ev.sum.event_type);
	hr_event_clear(&ev);
}

static void
hint_is_the_provider_even_for_unknown(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_text("{\"event_type\":\"system.shutdown\"}", HR_PROVIDER_PAILFLOW,
	                     &limits, &ev, &perr),
	    HR_OK);
	assert_int_equal(ev.kind, HR_KIND_PAILFLOW_UNKNOWN);
	assert_int_equal(ev.provider, HR_PROVIDER_PAILFLOW);
	hr_event_clear(&ev);
}

static void
typed_json_keeps_received_event_type_and_normalises_time(void **state)
{
	struct hr_event ev;
	json_t *typed;

	(void)state;
	parse_file("tavus.conversation.system.pal_joined.json", HR_PROVIDER_AUTO, &ev);
	typed = hr_event_typed_json(&ev);
	assert_string_equal(
	    json_string_value(json_object_get(typed, "event_type")), "system.pal_joined");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(typed, "timestamp"), "utc")),
	    "2025-07-11T06:45:47.472000Z");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(typed, "properties"), "face_id")),
	    "r79e1c033f");
	json_decref(typed);
	hr_event_clear(&ev);
}

/*
 * docs/events.md: a field that was present is shown with its value, and only a
 * body with an integer past 64 bits is read with doubles ("the typed view shows a
 * rounded number for the larger ones"). An integer that fits 64 bits, in a body
 * with none larger, is shown as sent: 2^53 + 1 is not 2^53.
 */
static void
typed_json_keeps_a_64_bit_integer_of_a_number_field(void **state)
{
	struct hr_event ev;
	json_t *typed;

	(void)state;
	parse_ok("{\"session_id\":\"sess_1\",\"session_type\":\"webrtc_video\","
	         "\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\",\"url\":\"u\"},"
	         "\"created_at\":\"2024-01-15T10:30:00Z\",\"metadata\":{},"
	         "\"duration\":9007199254740993}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_AGENTHUMAN_SESSION);
	typed = hr_event_typed_json(&ev);
	assert_non_null(typed);
	assert_true(json_is_integer(json_object_get(typed, "duration")));
	assert_int_equal(
	    json_integer_value(json_object_get(typed, "duration")), (json_int_t)9007199254740993LL);
	json_decref(typed);
	hr_event_clear(&ev);
}

/*
 * docs/events.md, Parse: a \u0000 is read, "which the typed view keeps in a
 * value". An open enum's value is a value: shown as received, whole, and not
 * taken for the known value its text begins with.
 */
static void
typed_json_keeps_a_nul_in_an_enum_value(void **state)
{
	static const char sent[] = "stop_phrase\0 and more";
	struct hr_event ev;
	const struct hr_pailflow_session_complete *t;
	json_t *typed, *v;

	(void)state;
	parse_ok("{\"event\":\"session_complete\",\"transcript_id\":null,\"room_id\":null,"
	         "\"room_name\":\"r\",\"duration_seconds\":null,\"transcript_text\":\"\","
	         "\"summary\":\"s\",\"exit_reason\":\"stop_phrase\\u0000 and more\"}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_PAILFLOW_SESSION_COMPLETE);
	typed = hr_event_typed_json(&ev);
	assert_non_null(typed);
	v = json_object_get(typed, "exit_reason");
	assert_int_equal(json_string_length(v), sizeof(sent) - 1);
	assert_memory_equal(json_string_value(v), sent, sizeof(sent) - 1);
	json_decref(typed);
	t = ev.typed;
	assert_int_equal(t->exit_reason.code, -1); /* not the known stop_phrase */
	hr_event_clear(&ev);
}

static void
clear_accepts_null_and_cleared_events(void **state)
{
	struct hr_event ev;

	(void)state;
	hr_event_clear(NULL);
	memset(&ev, 0, sizeof(ev));
	hr_event_clear(&ev);
	parse_ok("{}", &ev);
	hr_event_clear(&ev);
	hr_event_clear(&ev);
	assert_null(hr_event_typed_json(NULL));
}

/* ---- malformed JSON (400) ---- */

static void
assert_malformed(const char *body, size_t len, const char *detail_part)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	assert_int_equal(
	    hr_event_parse(body, len, HR_PROVIDER_AUTO, &limits, &ev, &perr), HR_EPARSE);
	assert_int_equal(perr.status, HR_EPARSE);
	assert_true(perr.line >= 1);
	assert_non_null(strstr(perr.detail, "line "));
	if (strstr(perr.detail, detail_part) == NULL)
		fail_msg("detail \"%s\" lacks \"%s\"", perr.detail, detail_part);
	assert_cleared(&ev);
}

static void
empty_body_is_malformed(void **state)
{
	(void)state;
	assert_malformed("", 0, "malformed JSON");
	assert_malformed(NULL, 0, "malformed JSON");
}

static void
truncated_body_is_malformed(void **state)
{
	const char *body = "{\"event\":\"session_complete\",\"room_name\":\"r";

	(void)state;
	assert_malformed(body, strlen(body), "malformed JSON");
}

static void
trailing_garbage_is_malformed(void **state)
{
	(void)state;
	assert_malformed("{} x", 4, "end of file expected");
	assert_malformed("{}{}", 4, "end of file expected");
}

/* jansson's error quotes the bytes where it stopped; the detail goes to the log and
 * to terminals (hookctl rejections show): no control character may be in it. */
static void
a_malformed_bodys_control_bytes_are_not_in_the_detail(void **state)
{
	static const char *const bodies[] = { "[\"\\\033", "[\"\\\016", "[\"\\\n",
		("[\"\xc2\x9b" /* a C1 CSI; "2J" apart, or the escape takes the 2 */
		 "2J"),
		"\033[2J" };

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct hr_event ev;
		struct hr_parse_error perr;

		assert_int_equal(hr_event_parse(bodies[i], strlen(bodies[i]), HR_PROVIDER_AUTO,
		                     &limits, &ev, &perr),
		    HR_EPARSE);
		for (const unsigned char *p = (const unsigned char *)perr.detail; *p; p++)
			if (*p < 0x20 || *p == 0x7f ||
			    (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
				fail_msg(
				    "body %zu: control byte 0x%02x in \"%s\"", i, *p, perr.detail);
		assert_non_null(strstr(perr.detail, "malformed JSON"));
	}
}

static void
duplicate_keys_are_malformed(void **state)
{
	const char *body =
	    "{\"event_type\":\"system.shutdown\",\"event_type\":\"bot_join_failed\"}";

	(void)state;
	assert_malformed(body, strlen(body), "duplicate");
}

static void
huge_exponent_is_malformed(void **state)
{
	(void)state;
	assert_malformed("{\"duration\":1e400}", 18, "overflow");
	assert_malformed("[1, 99999999999999999999, 1e400]", 32, "overflow");
}

/* RFC 8259 sets no range: an integer past 64 bits (in a free-form field) is read
 * as a double, not refused; a 400 is final to Tavus and PailFlow. */
static void
an_integer_past_64_bits_is_read_as_a_number(void **state)
{
	const char body[] = "{\"insights\":{\"application_id\":123456789012345678901234}}";
	struct hr_event ev;
	struct hr_parse_error perr;
	json_t *id;

	(void)state;
	assert_int_equal(
	    hr_event_parse(body, strlen(body), HR_PROVIDER_AUTO, &limits, &ev, &perr), HR_OK);
	id = json_object_get(json_object_get(ev.root, "insights"), "application_id");
	assert_true(json_is_real(id));
	assert_true(json_real_value(id) > 1.2e23 && json_real_value(id) < 1.3e23);
	hr_event_clear(&ev);
}

static void
invalid_utf8_is_malformed(void **state)
{
	const char body[] = "{\"name\":\"caf\xc3\x28\"}";

	(void)state;
	assert_malformed(body, sizeof(body) - 1, "decode byte");
	assert_malformed("\xff{}", 3, "decode byte");
}

static void
escaped_nul_and_half_surrogates_are_read(void **state)
{
	const char *body = "{\"name\":\"a\\u0000b\",\"k\\u0000\":\"\\ud83d\"}";
	struct hr_event ev;

	(void)state;
	parse_ok(body, &ev);
	assert_int_equal(json_string_length(json_object_get(ev.root, "name")), 3);
	assert_string_equal(
	    json_string_value(json_object_get(ev.root, "k\xEF\xBF\xBD")), "\xEF\xBF\xBD");
	hr_event_clear(&ev);
}

static void
raw_nul_byte_is_malformed(void **state)
{
	const char body[] = "{\"a\":1}\0";

	(void)state;
	assert_malformed(body, sizeof(body) - 1, "malformed JSON");
}

static void
error_position_points_at_the_problem(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const char *body = "{\n  \"a\": 1,\n  \"b\": tru\n}";

	(void)state;
	assert_int_equal(parse_text(body, HR_PROVIDER_AUTO, &limits, &ev, &perr), HR_EPARSE);
	assert_int_equal(perr.line, 3);
	assert_true(perr.column > 0);
	assert_true(perr.position > 10);
}

/* ---- limits (413) ---- */

static char *
nested(size_t depth, const char *open, const char *close)
{
	size_t lo = strlen(open), lc = strlen(close);
	char *s = malloc(depth * (lo + lc) + 1);
	char *p = s;

	assert_non_null(s);
	for (size_t i = 0; i < depth; i++, p += lo)
		memcpy(p, open, lo);
	for (size_t i = 0; i < depth; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return s;
}

static void
depth_limit_names_the_deepest_allowed_pointer(void **state)
{
	struct hr_json_limits lim = { .max_depth = 3 };
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(
	    parse_text("{\"a\":[{\"b\":1}]}", HR_PROVIDER_AUTO, &lim, &ev, &perr), HR_OK);
	hr_event_clear(&ev);
	assert_int_equal(
	    parse_text("{\"a\":[{\"b\":[]}]}", HR_PROVIDER_AUTO, &lim, &ev, &perr), HR_ETOOBIG);
	assert_int_equal(perr.status, HR_ETOOBIG);
	assert_string_equal(perr.detail, "JSON nested deeper than 3 levels at \"/a/0/b\"");
	assert_cleared(&ev);
}

/* Issue 11 item 3: the value count runs before jansson builds anything. */
static void
value_limit(const char *body, size_t max, const char *detail)
{
	struct hr_json_limits lim = { .max_values = max };
	struct hr_event ev;
	struct hr_parse_error perr;
	int rc = parse_text(body, HR_PROVIDER_AUTO, &lim, &ev, &perr);

	if (detail == NULL) {
		if (rc != HR_OK)
			fail_msg("%s: %s", body, perr.detail);
		hr_event_clear(&ev);
		return;
	}
	assert_int_equal(rc, HR_ETOOBIG);
	assert_int_equal(perr.status, HR_ETOOBIG);
	assert_string_equal(perr.detail, detail);
	assert_cleared(&ev);
}

static void
value_limit_counts_every_value_but_keys(void **state)
{
	(void)state;
	value_limit("[{},{},{}]", 4, NULL);
	value_limit("[{},{},{}]", 3, "more than 3 JSON values at \"/2\"");
	value_limit("{\"a\":1,\"b\":[true,null,\"x\"]}", 6, NULL);
	value_limit("{\"a\":1,\"b\":[true,null,\"x\"]}", 5, "more than 5 JSON values at \"/b/2\"");
	value_limit("  {\"a\" : 1 , \"b\"\n:\t2}", 3, NULL);
	value_limit("-1.5e3", 1, NULL);
	value_limit("[-1.5e3,2]", 2, "more than 2 JSON values at \"/1\"");
}

static void
value_limit_reads_strings_whole(void **state)
{
	(void)state;
	/* Quotes, brackets and colons inside strings are text, not structure. */
	value_limit("[\"a\\\"b\",\"[{:,}]\",\"\\\\\"]", 4, NULL);
	value_limit("[\"a\\\"b\",\"[{:,}]\",\"\\\\\"]", 3, "more than 3 JSON values at \"/2\"");
	value_limit("{\"k\\\":\":{\"x\":[0]}}", 2, "more than 2 JSON values at \"/k\":/x\"");
	/* A run of backslashes before a quote: odd escapes it, even ends the string. */
	value_limit("[\"a\\\\\\\"[1,2]\",3]", 3, NULL);
	value_limit("[\"a\\\\\\\"[1,2]\",3]", 2, "more than 2 JSON values at \"/1\"");
	value_limit("[\"a\\\\\\\\\",[1,2]]", 5, NULL);
	value_limit("[\"a\\\\\\\\\",[1,2]]", 4, "more than 4 JSON values at \"/1/1\"");
	/* A scalar run ends at the first byte that is not one of it. */
	value_limit("[true,-2]", 2, "more than 2 JSON values at \"/1\"");
}

static void
value_limit_pointer_escapes_and_decodes_keys(void **state)
{
	(void)state;
	value_limit(
	    "{\"a~b\":{\"c/d\":[1,2,3]}}", 5, "more than 5 JSON values at \"/a~0b/c~1d/2\"");
	value_limit("{\"\\u00e9\":[1,2]}", 3, "more than 3 JSON values at \"/\u00e9/1\"");
	/* Decoded as the body is (hr_json_load_wide): a half surrogate pair read as
	 * U+FFFD; as jansson alone reads it, the segment was empty. */
	value_limit("{\"a\\ud800\":[1,2]}", 3, "more than 3 JSON values at \"/a\uFFFD/1\"");
}

static void
value_limit_is_met_before_the_parser(void **state)
{
	struct hr_json_limits lim = { .max_values = 100 };
	struct hr_event ev;
	struct hr_parse_error perr;
	size_t n = 1000000;
	char *body = malloc(3 * n + 2), *p = body;

	(void)state;
	assert_non_null(body);
	*p++ = '[';
	for (size_t i = 0; i < n; i++, p += 3)
		memcpy(p, i ? ",{}" : "{} ", 3);
	*p++ = ']';
	/* Malformed after the limit: the count answers, not jansson. */
	assert_int_equal(
	    hr_event_parse(body, (size_t)(p - body), HR_PROVIDER_AUTO, &lim, &ev, &perr),
	    HR_ETOOBIG);
	assert_string_equal(perr.detail, "more than 100 JSON values at \"/99\"");
	free(body);
	/* A malformed body within the limit is still jansson's 400. */
	assert_int_equal(parse_text("[1,2", HR_PROVIDER_AUTO, &lim, &ev, &perr), HR_EPARSE);
	/* Colons after values do not make the count go down. */
	assert_int_equal(parse_text("[{},{},{}]::::", HR_PROVIDER_AUTO,
	                     &(struct hr_json_limits){ .max_values = 3 }, &ev, &perr),
	    HR_ETOOBIG);
}

/*
 * A body of no more bytes than the limit is not counted (each value starts at a
 * byte of its own); one byte more and it is, up to a value on every byte.
 */
static void
value_limit_counts_every_body_longer_than_the_limit(void **state)
{
	(void)state;
	value_limit("[[[[", 3, "more than 3 JSON values at \"/0/0/0\"");
	value_limit("[0,[]]", 3, NULL);
	value_limit("{\"a\":[[[]]]}", 3, "more than 3 JSON values at \"/a/0/0\"");
}

/* Deeper than the pointer stack: the pointer names the deepest ancestor it has. */
static void
value_limit_pointer_of_a_deep_value_names_an_ancestor(void **state)
{
	char body[256] = "", want[256] = "more than 40 JSON values at \"";

	(void)state;
	for (int i = 0; i < 40; i++)
		strcat(body, "[");
	strcat(body, "1");
	for (int i = 0; i < 40; i++)
		strcat(body, "]");
	for (int i = 0; i < 32; i++)
		strcat(want, "/0");
	strcat(want, "\"");
	value_limit(body, 40, want);
	value_limit(body, 41, NULL);
}

/* The detail of `body` refused 413 under `lim` (valid until the next call). */
static const char *
over_limit(struct hr_json_limits lim, const char *body)
{
	static struct hr_parse_error perr;
	struct hr_event ev;

	assert_int_equal(parse_text(body, HR_PROVIDER_AUTO, &lim, &ev, &perr), HR_ETOOBIG);
	return perr.detail;
}

static void
key_count_limit_names_the_object(void **state)
{
	(void)state;
	assert_string_equal(over_limit((struct hr_json_limits){ .max_object_keys = 2 },
	                        "{\"x\":{\"a~b\":{\"a\":1,\"b\":2,\"c\":3}}}"),
	    "object has more than 2 keys at \"/x/a~0b\"");
}

static void
string_limit_names_the_string(void **state)
{
	(void)state;
	assert_string_equal(over_limit((struct hr_json_limits){ .max_string = 4 },
	                        "{\"a/b\":[\"ok\",\"toolong\"]}"),
	    "string longer than 4 bytes at \"/a~1b/1\"");
}

static void
string_limit_applies_to_keys(void **state)
{
	(void)state;
	assert_string_equal(
	    over_limit((struct hr_json_limits){ .max_string = 4 }, "{\"k\":{\"longkey\":1}}"),
	    "object key longer than 4 bytes at \"/k/longkey\"");
}

/* The depth limit's pointer (64 levels of "/0") is longer than the detail can
 * hold. It was cut inside a segment ("/0/0/.../0/"), a pointer to a key that does
 * not exist: whole segments are dropped from the inner end, and the detail says
 * "under" the ancestor it names. */
static void
a_pointer_too_long_names_an_ancestor_in_whole_segments(void **state)
{
	char *arrays = nested(70, "[", "]");
	char body[512], expected_prefix[512] = "/a";
	const char *ptr, *end;

	(void)state;
	snprintf(body, sizeof(body), "{\"a\":%s}", arrays);
	free(arrays);
	ptr = strstr(over_limit((struct hr_json_limits){ .max_depth = 64 }, body), " under \"");
	assert_non_null(ptr);
	ptr += strlen(" under \"");
	end = strchr(ptr, '"');
	assert_non_null(end);
	assert_true(end - ptr > 100);                /* as much as fits... */
	assert_true(strncmp(end - 2, "/0", 2) == 0); /* ...in whole segments */
	for (size_t i = 0; i < 64; i++)
		strcat(expected_prefix, "/0");
	assert_int_equal(strncmp(ptr, expected_prefix, (size_t)(end - ptr)), 0);
}

/* A segment that alone does not fit leaves its parent named. */
static void
a_key_too_long_for_the_pointer_leaves_its_parent(void **state)
{
	char key[201], body[512];

	(void)state;
	memset(key, 'k', 200);
	key[200] = '\0';
	snprintf(body, sizeof(body), "{\"p\":{\"%s\":\"toolong\"}}", key);
	assert_string_equal(over_limit((struct hr_json_limits){ .max_string = 4 }, body),
	    "object key longer than 4 bytes under \"/p\"");
}

/* The detail is logged and shown by hookctl: a key of the sender's must not
 * bring a newline (a forged log line with its own "<3>") or an ESC into it. */
static void
a_limit_detail_carries_no_control_characters(void **state)
{
	(void)state;
	assert_string_equal(over_limit((struct hr_json_limits){ .max_object_keys = 1 },
	                        "{\"x\\n<3>FORGED \\u001b[31m\":{\"a\":1,\"b\":2}}"),
	    "object has more than 1 keys at \"/x?<3>FORGED ?[31m\"");
}

static void
limits_of_zero_and_null_bound_nothing(void **state)
{
	struct hr_json_limits none = { 0 };
	struct hr_event ev;
	struct hr_parse_error perr;
	char *body = nested(500, "[", "]");

	(void)state;
	assert_int_equal(parse_text(body, HR_PROVIDER_AUTO, &none, &ev, &perr), HR_OK);
	hr_event_clear(&ev);
	assert_int_equal(parse_text(body, HR_PROVIDER_AUTO, NULL, &ev, &perr), HR_OK);
	hr_event_clear(&ev);
	free(body);
}

static void
ten_thousand_nested_arrays_are_refused_cleanly(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	char *body = nested(10000, "[", "]");

	(void)state;
	assert_int_equal(parse_text(body, HR_PROVIDER_AUTO, &limits, &ev, &perr), HR_ETOOBIG);
	assert_non_null(strstr(perr.detail, "nesting"));
	assert_cleared(&ev);
	assert_int_equal(parse_text(body, HR_PROVIDER_AUTO, NULL, &ev, &perr), HR_ETOOBIG);
	free(body);
}

static void
ten_thousand_nested_objects_are_refused_cleanly(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	char *body = nested(10000, "{\"a\":", "}");

	(void)state;
	assert_int_equal(parse_text(body, HR_PROVIDER_AUTO, &limits, &ev, &perr), HR_ETOOBIG);
	free(body);
}

static void
deep_nesting_under_the_parser_limit_meets_ours(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	char *body = nested(1000, "[", "]");

	(void)state;
	assert_int_equal(parse_text(body, HR_PROVIDER_AUTO, &limits, &ev, &perr), HR_ETOOBIG);
	assert_non_null(strstr(perr.detail, "deeper than 32 levels"));
	free(body);
}

static void
null_error_report_is_allowed(void **state)
{
	struct hr_event ev;

	(void)state;
	assert_int_equal(hr_event_parse("{", 1, HR_PROVIDER_AUTO, &limits, &ev, NULL), HR_EPARSE);
	assert_int_equal(hr_event_parse("{\"replica_id\":\"r\",\"status\":5}", 29, HR_PROVIDER_AUTO,
	                     &limits, &ev, NULL),
	    HR_EINVAL);
	assert_cleared(&ev);
}

/* ---- Daily ---- */

static void
daily_meeting_started_is_the_room_and_its_meeting(void **state)
{
	struct hr_event ev;
	const struct hr_daily_meeting *m;

	(void)state;
	parse_file("daily.meeting.started.json", HR_PROVIDER_DAILY, &ev);
	assert_int_equal(ev.kind, HR_KIND_DAILY_MEETING_STARTED);
	assert_int_equal(ev.provider, HR_PROVIDER_DAILY);
	m = ev.typed;
	assert_string_equal(m->env.type.s, "meeting.started");
	assert_string_equal(m->payload.room.s, "sales-demo-7f3a");
	assert_int_equal(ev.sum.scope, HR_SCOPE_ROOM);
	assert_string_equal(ev.sum.session_key, "sales-demo-7f3a");
	assert_string_equal(ev.sum.room, "sales-demo-7f3a");
	assert_string_equal(ev.sum.meeting_id, "9b3c1b7e-1f0a-4a6e-9d3b-2f5c8e7a1d40");
	/* start_ts (a float) is when it happened, not event_ts (when the webhook was sent) */
	assert_string_equal(norm_of(&ev.sum.occurred), "2024-02-26T18:31:19.960000Z");
	assert_int_equal(ev.sum.status, HR_SESS_STARTED);
	hr_event_clear(&ev);
}

/* A payload time that does not parse (start_ts in milliseconds) leaves the
 * envelope's event_ts as the time; it blanked it (a review). */
static void
daily_payload_time_that_does_not_parse_keeps_event_ts(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;

	(void)state;
	assert_int_equal(parse_edited("daily.meeting.started.json", "\"start_ts\": 1708972279.96",
	                     "\"start_ts\": 1708972279960", &ev, &perr),
	    HR_OK);
	assert_true(ev.sum.occurred.valid);
	assert_string_equal(norm_of(&ev.sum.occurred), "2024-02-26T18:31:20.117000Z");
	hr_event_clear(&ev);
}

static void
daily_participant_left_happened_when_sent_and_joined_earlier(void **state)
{
	struct hr_event ev;
	char *facts;

	(void)state;
	parse_file("daily.participant.left.json", HR_PROVIDER_AUTO, &ev);
	assert_int_equal(ev.kind, HR_KIND_DAILY_PARTICIPANT_LEFT);
	assert_string_equal(
	    norm_of(&ev.sum.occurred), "2024-02-26T19:01:37.310000Z"); /* event_ts */
	assert_string_equal(
	    norm_of(&ev.sum.meeting_at), "2024-02-26T18:31:19.961000Z"); /* joined_at */
	assert_null(ev.sum.meeting_id);
	facts = hr_event_facts_json(&ev);
	assert_string_equal(facts,
	    "{\"duration\":1817,\"owner\":false,\"session_id\":"
	    "\"6497c79b-f326-4942-aef8-c36a29140ad1\",\"user_id\":"
	    "\"u-4d1f7c2a\",\"user_name\":\"Ada Lovelace\"}");
	free(facts);
	hr_event_clear(&ev);
}

/* Daily's own example body (its participant.joined reference): the permissions'
 * keys are camelCase. The table read has_presence, can_send, can_admin (daily-ruby's
 * attribute names), so the typed view's permissions were always empty. */
static void
daily_permissions_are_read_by_their_json_names(void **state)
{
	struct hr_event ev;
	const struct hr_daily_permissions *p;

	(void)state;
	parse_ok("{\"version\":\"1.0.0\",\"type\":\"participant.joined\","
	         "\"id\":\"ptcpt-join-6497c79b-1708972279961\",\"payload\":{\"room\":\"test\","
	         "\"user_id\":\"6497c79b\",\"user_name\":\"testuser\",\"session_id\":\"0c0d2dda\","
	         "\"joined_at\":1708972279.96,\"will_eject_at\":1708972299.541,\"owner\":false,"
	         "\"permissions\":{\"hasPresence\":true,\"canSend\":true,"
	         "\"canReceive\":{\"base\":true},\"canAdmin\":false}},"
	         "\"event_ts\":1708972279.961}",
	    &ev);
	assert_int_equal(ev.kind, HR_KIND_DAILY_PARTICIPANT_JOINED);
	p = &((const struct hr_daily_participant *)ev.typed)->payload.permissions;
	assert_int_equal(p->st, HR_SET);
	assert_int_equal(p->has_presence.st, HR_SET);
	assert_true(p->has_presence.v);
	assert_int_equal(p->can_send.st, HR_SET);
	assert_true(json_is_true(p->can_send.v));
	assert_int_equal(p->can_receive.st, HR_SET);
	assert_true(json_is_true(json_object_get(p->can_receive.v, "base")));
	assert_int_equal(p->can_admin.st, HR_SET);
	assert_true(json_is_false(p->can_admin.v));
	hr_event_clear(&ev);
}

static void
daily_epoch_is_a_number_or_a_string_of_digits(void **state)
{
	struct hr_event ev;
	const struct hr_daily_dial *d;

	(void)state;
	parse_file("daily.dialout.connected.json", HR_PROVIDER_AUTO, &ev);
	d = ev.typed;
	assert_true(d->payload.timestamp.t.valid);
	assert_string_equal(hr_time_raw(&d->payload.timestamp.t), "1728023426");
	assert_string_equal(norm_of(&d->payload.timestamp.t), "2024-10-04T06:30:26.000000Z");
	assert_string_equal(norm_of(&ev.sum.meeting_at), "2024-10-04T06:30:26.000000Z");
	hr_event_clear(&ev);
	/* a string that is no number is kept as text, not refused */
	parse_ok("{\"version\":\"1.0.0\",\"type\":\"dialout.stopped\",\"id\":\"x\",\"payload\":"
	         "{\"room\":\"r\",\"timestamp\":\"soon\"},\"event_ts\":1}",
	    &ev);
	d = ev.typed;
	assert_false(d->payload.timestamp.t.valid);
	assert_string_equal(hr_time_raw(&d->payload.timestamp.t), "soon");
	hr_event_clear(&ev);
}

static void
daily_payload_nulls_are_absent_and_wrong_types_are_named(void **state)
{
	struct hr_event ev;
	struct hr_parse_error perr;
	const char *bad = "{\"version\":\"1.0.0\",\"type\":\"participant.joined\",\"id\":\"x\","
	                  "\"payload\":{\"room\":7,\"joined_at\":\"x\",\"duration\":\"9\"},"
	                  "\"event_ts\":1}";

	(void)state;
	parse_ok("{\"version\":\"1.0.0\",\"type\":\"participant.joined\",\"id\":\"x\",\"payload\":"
	         "{\"room\":\"r\",\"user_id\":null,\"user_name\":null,\"joined_at\":1.5},"
	         "\"event_ts\":2}",
	    &ev);
	assert_int_equal(
	    ((const struct hr_daily_participant *)ev.typed)->payload.user_id.st, HR_NULL);
	hr_event_clear(&ev);
	assert_int_equal(parse_text(bad, HR_PROVIDER_DAILY, &limits, &ev, &perr), HR_EINVAL);
	assert_int_equal(perr.kind, HR_KIND_DAILY_PARTICIPANT_JOINED);
	assert_int_equal(perr.nerrors, 2);
	/* joined_at "x" is a timestamp text we cannot read: kept, not refused */
	assert_string_equal(perr.errors[0].pointer, "/payload/duration");
	assert_string_equal(perr.errors[1].pointer, "/payload/room");
}

static void
agenthuman_daily_room_links_the_room_and_keeps_its_session(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_ok("{\"session_id\":\"sess_1\",\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\","
	         "\"url\":\"u\"},\"session_type\":\"webrtc_video\",\"created_at\":"
	         "\"2024-01-15T10:30:00Z\",\"metadata\":{},\"daily_room\":{\"url\":"
	         "\"https://x.daily.co/from-url\",\"name\":\"the-room\",\"token\":\"t\"}}",
	    &ev);
	assert_int_equal(ev.sum.scope, HR_SCOPE_AGENTHUMAN);
	assert_string_equal(ev.sum.session_key, "sess_1");
	assert_string_equal(ev.sum.room, "the-room");
	hr_event_clear(&ev);
	/* without a name, the URL's last segment */
	parse_ok("{\"session_id\":\"sess_1\",\"avatar\":{\"avatar_id\":\"a\",\"name\":\"n\","
	         "\"url\":\"u\"},\"session_type\":\"webrtc_video\",\"created_at\":"
	         "\"2024-01-15T10:30:00Z\",\"metadata\":{},\"daily_room\":{\"url\":"
	         "\"https://x.daily.co/from-url/?t=1\"}}",
	    &ev);
	assert_string_equal(ev.sum.room, "from-url");
	hr_event_clear(&ev);
}

static void
pailflow_room_id_is_the_meeting(void **state)
{
	struct hr_event ev;

	(void)state;
	parse_file("botplatform.session_complete.json", HR_PROVIDER_AUTO, &ev);
	assert_string_equal(ev.sum.room, ev.sum.session_key);
	assert_non_null(ev.sum.meeting_id);
	hr_event_clear(&ev);
}

static void
probe_is_exactly_one_test_member(void **state)
{
	static const struct {
		const char *text;
		bool probe;
	} cases[] = {
		{ "{\"test\":\"test\"}", true },
		{ "{ \"test\" : \"test\" }", true },
		{ "{\"test\":\"test\",\"x\":1}", false },
		{ "{\"test\":\"Test\"}", false },
		{ "{\"test\":1}", false },
		{ "[\"test\"]", false },
		{ "{}", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = json_loads(cases[i].text, JSON_DECODE_ANY, NULL);

		assert_int_equal(hr_daily_is_probe(j), cases[i].probe);
		json_decref(j);
	}
	assert_false(hr_daily_is_probe(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_payload_parses_and_encodes),
		cmocka_unit_test(daily_meeting_started_is_the_room_and_its_meeting),
		cmocka_unit_test(daily_payload_time_that_does_not_parse_keeps_event_ts),
		cmocka_unit_test(daily_participant_left_happened_when_sent_and_joined_earlier),
		cmocka_unit_test(daily_permissions_are_read_by_their_json_names),
		cmocka_unit_test(daily_epoch_is_a_number_or_a_string_of_digits),
		cmocka_unit_test(daily_payload_nulls_are_absent_and_wrong_types_are_named),
		cmocka_unit_test(agenthuman_daily_room_links_the_room_and_keeps_its_session),
		cmocka_unit_test(pailflow_room_id_is_the_meeting),
		cmocka_unit_test(probe_is_exactly_one_test_member),
		cmocka_unit_test(video_completed_decodes_and_normalises_its_timestamps),
		cmocka_unit_test(video_completed_summary_is_completed_and_ended),
		cmocka_unit_test(video_error_keeps_explicit_nulls),
		cmocka_unit_test(video_generation_progress_as_a_number_is_refused),
		cmocka_unit_test(video_lifecycle_status_is_other_and_started),
		cmocka_unit_test(video_unknown_status_keeps_its_text),
		cmocka_unit_test(replica_completed_is_completed_and_ended),
		cmocka_unit_test(replica_error_keeps_its_message),
		cmocka_unit_test(replica_training_status_is_other),
		cmocka_unit_test(replica_joined_and_pal_joined_are_one_kind_keeping_event_type),
		cmocka_unit_test(shutdown_reports_its_reason_and_ends_the_session),
		cmocka_unit_test(shutdown_reason_falls_back_to_reason),
		cmocka_unit_test(transcription_ready_decodes_every_item),
		cmocka_unit_test(transcript_timestamps_accept_iso_and_epoch),
		cmocka_unit_test(transcription_ready_without_transcript_is_refused),
		cmocka_unit_test(transcript_item_error_is_named_by_its_index),
		cmocka_unit_test(transcript_takes_content_parts_and_custom_tool_calls),
		cmocka_unit_test(null_in_an_optional_field_is_as_if_left_out),
		cmocka_unit_test(transcript_keeps_tool_calls_and_tool_answers),
		cmocka_unit_test(transcript_item_may_leave_content_out),
		cmocka_unit_test(typed_json_shows_tool_calls_as_received),
		cmocka_unit_test(tool_call_arguments_may_be_an_object),
		cmocka_unit_test(tool_call_without_a_function_name_is_named_by_its_pointer),
		cmocka_unit_test(recording_ready_legacy_and_storage_uri_shapes_decode),
		cmocka_unit_test(recording_copy_failed_keeps_its_error_message),
		cmocka_unit_test(perception_analysis_requires_its_analysis),
		cmocka_unit_test(perception_unavailable_reason_is_an_open_enum),
		cmocka_unit_test(post_call_action_keeps_request_body_as_text),
		cmocka_unit_test(objective_completed_needs_no_timestamp),
		cmocka_unit_test(objective_completed_accepts_the_older_data_shape),
		cmocka_unit_test(guardrail_callback_is_tavus_unknown_with_its_conversation),
		cmocka_unit_test(tavus_unknown_without_conversation_has_no_scope),
		cmocka_unit_test(tavus_hint_accepts_a_body_without_event_type),
		cmocka_unit_test(session_complete_fills_the_summary),
		cmocka_unit_test(session_complete_accepts_a_float_score),
		cmocka_unit_test(session_complete_accepts_null_duration),
		cmocka_unit_test(session_complete_accepts_a_fractional_duration),
		cmocka_unit_test(session_complete_room_name_is_cut_at_a_query),
		cmocka_unit_test(session_complete_without_duration_is_refused),
		cmocka_unit_test(session_complete_with_insights_error_omits_insights),
		cmocka_unit_test(session_complete_accepts_null_insights_error),
		cmocka_unit_test(bot_join_failed_keys_on_the_room_url_segment),
		cmocka_unit_test(room_url_key_drops_query_fragment_and_trailing_slash),
		cmocka_unit_test(room_url_without_a_path_has_no_key),
		cmocka_unit_test(bot_join_failed_variant_is_pailflow_unknown_keyed_by_room),
		cmocka_unit_test(pailflow_unknown_prefers_room_name_and_refuses_nothing),
		cmocka_unit_test(
		    pailflow_unknown_falls_back_to_room_url_when_room_name_gives_no_key),
		cmocka_unit_test(agenthuman_unknown_correlates_a_wrapped_session),
		cmocka_unit_test(tavus_unknown_refuses_nothing),
		cmocka_unit_test(agenthuman_created_started_ended_follow_the_seed),
		cmocka_unit_test(agenthuman_ended_decodes_room_and_duration),
		cmocka_unit_test(agenthuman_empty_room_name_falls_back_to_the_room_url),
		cmocka_unit_test(keys_past_1024_bytes_name_nothing),
		cmocka_unit_test(agenthuman_created_has_null_duration_and_token),
		cmocka_unit_test(agenthuman_status_is_derived_when_missing),
		cmocka_unit_test(agenthuman_timestamps_win_over_a_disagreeing_status),
		cmocka_unit_test(agenthuman_status_stands_without_timestamps),
		cmocka_unit_test(agenthuman_unknown_status_is_kept_with_no_state),
		cmocka_unit_test(agenthuman_avatar_field_error_is_nested),
		cmocka_unit_test(agenthuman_metadata_must_be_an_object),
		cmocka_unit_test(unknown_body_is_kept_without_a_typed_struct),
		cmocka_unit_test(non_object_body_is_unknown_and_raw),
		cmocka_unit_test(hint_is_the_provider_even_for_unknown),
		cmocka_unit_test(typed_json_keeps_received_event_type_and_normalises_time),
		cmocka_unit_test(typed_json_keeps_a_64_bit_integer_of_a_number_field),
		cmocka_unit_test(typed_json_keeps_a_nul_in_an_enum_value),
		cmocka_unit_test(clear_accepts_null_and_cleared_events),
		cmocka_unit_test(empty_body_is_malformed),
		cmocka_unit_test(truncated_body_is_malformed),
		cmocka_unit_test(trailing_garbage_is_malformed),
		cmocka_unit_test(duplicate_keys_are_malformed),
		cmocka_unit_test(a_malformed_bodys_control_bytes_are_not_in_the_detail),
		cmocka_unit_test(huge_exponent_is_malformed),
		cmocka_unit_test(an_integer_past_64_bits_is_read_as_a_number),
		cmocka_unit_test(invalid_utf8_is_malformed),
		cmocka_unit_test(escaped_nul_and_half_surrogates_are_read),
		cmocka_unit_test(raw_nul_byte_is_malformed),
		cmocka_unit_test(error_position_points_at_the_problem),
		cmocka_unit_test(depth_limit_names_the_deepest_allowed_pointer),
		cmocka_unit_test(value_limit_counts_every_value_but_keys),
		cmocka_unit_test(value_limit_reads_strings_whole),
		cmocka_unit_test(value_limit_pointer_escapes_and_decodes_keys),
		cmocka_unit_test(value_limit_is_met_before_the_parser),
		cmocka_unit_test(value_limit_counts_every_body_longer_than_the_limit),
		cmocka_unit_test(value_limit_pointer_of_a_deep_value_names_an_ancestor),
		cmocka_unit_test(key_count_limit_names_the_object),
		cmocka_unit_test(string_limit_names_the_string),
		cmocka_unit_test(string_limit_applies_to_keys),
		cmocka_unit_test(a_pointer_too_long_names_an_ancestor_in_whole_segments),
		cmocka_unit_test(a_key_too_long_for_the_pointer_leaves_its_parent),
		cmocka_unit_test(a_limit_detail_carries_no_control_characters),
		cmocka_unit_test(limits_of_zero_and_null_bound_nothing),
		cmocka_unit_test(ten_thousand_nested_arrays_are_refused_cleanly),
		cmocka_unit_test(ten_thousand_nested_objects_are_refused_cleanly),
		cmocka_unit_test(deep_nesting_under_the_parser_limit_meets_ours),
		cmocka_unit_test(null_error_report_is_allowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
