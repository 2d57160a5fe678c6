/* test_classify.c - SPEC.md section 7, rule by rule, and every example payload. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hr/classify.h"

/* Classify the JSON text `body` under `hint`. */
static enum hr_kind
classify_text(const char *body, enum hr_provider hint)
{
	json_error_t je;
	json_t *root = json_loads(body, JSON_DECODE_ANY, &je);
	enum hr_kind kind;

	if (root == NULL)
		fail_msg("bad test JSON: %s", je.text);
	kind = hr_classify(root, hint);
	json_decref(root);
	return kind;
}

#define assert_kind(body, hint, want)                                                              \
	assert_string_equal(hr_kind_name(classify_text(body, hint)), hr_kind_name(want))

/*
 * The kind an example file must classify as, from its name. Files are named
 * <provider>.<kind...>[.<variant>].json; `botplatform` is PailFlow.
 */
static const struct {
	const char *prefix;
	const char *kind; /* NULL: the first `parts` dotted parts of the name */
	int parts;
} payload_names[] = {
	{ "agenthuman.session.", "agenthuman.session", 0 },
	{ "agenthuman.unknown.", "agenthuman.unknown", 0 },
	{ "botplatform.bot_join_failed.", "pailflow.bot_join_failed", 0 },
	{ "botplatform.session_complete.", "pailflow.session_complete", 0 },
	{ "botplatform.unknown.", "pailflow.unknown", 0 },
	{ "daily.unknown.", "daily.unknown", 0 },
	{ "daily.", NULL, 3 },
	{ "tavus.conversation.system.pal_joined.", "tavus.conversation.system.replica_joined", 0 },
	{ "tavus.conversation.", NULL, 4 },
	{ "tavus.objective.completed.", "tavus.objective.completed", 0 },
	{ "tavus.replica.", "tavus.replica_training", 0 },
	{ "tavus.video.", "tavus.video", 0 },
};

static int
expected_kind(const char *file)
{
	char name[256];
	char *p;
	int dots = 0;

	for (size_t i = 0; i < HR_ARRAY_LEN(payload_names); i++) {
		if (strncmp(file, payload_names[i].prefix, strlen(payload_names[i].prefix)) != 0)
			continue;
		if (payload_names[i].kind != NULL)
			return hr_kind_from_name(payload_names[i].kind);
		snprintf(name, sizeof(name), "%s", file);
		for (p = name; *p != '\0'; p++)
			if (*p == '.' && ++dots == payload_names[i].parts)
				*p = '\0';
		return hr_kind_from_name(name);
	}
	return -1;
}

static json_t *
load_payload(const char *file)
{
	char path[512];
	json_error_t je;
	json_t *root;

	snprintf(path, sizeof(path), "%s/%s", HR_PAYLOADS_DIR, file);
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL)
		fail_msg("%s: %s", file, je.text);
	return root;
}

static bool
is_payload(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return n > 5 && strcmp(de->d_name + n - 5, ".json") == 0;
}

static void
every_payload_file_classifies_as_its_name_says(void **state)
{
	bool seen[HR_KIND_COUNT] = { false };
	struct dirent *de;
	DIR *dir = opendir(HR_PAYLOADS_DIR);
	size_t files = 0;

	(void)state;
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		json_t *root;
		int want;

		if (!is_payload(de))
			continue;
		want = expected_kind(de->d_name);
		if (want < 0)
			fail_msg("%s: no expected kind for this file name", de->d_name);
		root = load_payload(de->d_name);
		if (hr_classify(root, HR_PROVIDER_AUTO) != (enum hr_kind)want)
			fail_msg("%s: classified %s, expected %s", de->d_name,
			    hr_kind_name(hr_classify(root, HR_PROVIDER_AUTO)),
			    hr_kind_name((enum hr_kind)want));
		seen[want] = true;
		files++;
		json_decref(root);
	}
	closedir(dir);
	assert_true(files >= 22);
	for (int k = HR_KIND_TAVUS_VIDEO; k < HR_KIND_COUNT; k++)
		if (!seen[k])
			fail_msg("no example payload for %s", hr_kind_name((enum hr_kind)k));
}

static void
every_payload_file_classifies_the_same_under_its_provider_hint(void **state)
{
	struct dirent *de;
	DIR *dir = opendir(HR_PAYLOADS_DIR);

	(void)state;
	assert_non_null(dir);
	while ((de = readdir(dir)) != NULL) {
		json_t *root;
		enum hr_kind kind;

		if (!is_payload(de))
			continue;
		root = load_payload(de->d_name);
		kind = hr_classify(root, HR_PROVIDER_AUTO);
		assert_int_equal(hr_classify(root, hr_kind_provider(kind)), kind);
		json_decref(root);
	}
	closedir(dir);
}

static void
rule1_event_session_complete_wins_over_event_type(void **state)
{
	(void)state;
	assert_kind("{\"event\":\"session_complete\",\"event_type\":\"system.shutdown\"}",
	    HR_PROVIDER_AUTO, HR_KIND_PAILFLOW_SESSION_COMPLETE);
}

static void
rule1_other_event_values_do_not_match(void **state)
{
	(void)state;
	assert_kind("{\"event\":\"session_started\"}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule2_bot_join_failed_alone_matches(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"bot_join_failed\"}", HR_PROVIDER_AUTO,
	    HR_KIND_PAILFLOW_BOT_JOIN_FAILED);
}

/* Changed 2026-12-02: another dot-less name is an event we do not know, never a
 * malformed bot_join_failed (which would be refused 422 and lost). */
static void
rule2_dotless_event_type_with_workflow_thread_id_is_pailflow_unknown(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"bot_join_timeout\",\"workflow_thread_id\":\"t1\"}",
	    HR_PROVIDER_AUTO, HR_KIND_PAILFLOW_UNKNOWN);
}

static void
rule2_dotless_event_type_with_room_url_is_pailflow_unknown(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"bot_left\",\"room_url\":\"https://x.daily.co/r\"}",
	    HR_PROVIDER_AUTO, HR_KIND_PAILFLOW_UNKNOWN);
}

static void
rule2_other_event_with_a_room_is_pailflow_unknown(void **state)
{
	(void)state;
	assert_kind("{\"event\":\"session_started\",\"room_name\":\"r\"}", HR_PROVIDER_AUTO,
	    HR_KIND_PAILFLOW_UNKNOWN);
	assert_kind("{\"event\":\"recording_ready\",\"room_id\":\"u-1\"}", HR_PROVIDER_AUTO,
	    HR_KIND_PAILFLOW_UNKNOWN);
	assert_kind("{\"event\":\"x\",\"room_name\":null}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule2_bot_join_failed_with_missing_fields_is_still_bot_join_failed(void **state)
{
	(void)state; /* recognisably the documented kind: its struct decides (422) */
	assert_kind("{\"event_type\":\"bot_join_failed\",\"room_url\":5}", HR_PROVIDER_AUTO,
	    HR_KIND_PAILFLOW_BOT_JOIN_FAILED);
}

static void
rule2_dotless_event_type_without_pailflow_keys_is_unknown(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"bot_left\"}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule3_pal_joined_is_replica_joined(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"system.pal_joined\",\"conversation_id\":\"c1\"}",
	    HR_PROVIDER_AUTO, HR_KIND_TAVUS_REPLICA_JOINED);
}

static void
rule3_objective_completed_has_its_own_kind(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"conversation.objective.completed\"}", HR_PROVIDER_AUTO,
	    HR_KIND_TAVUS_OBJECTIVE_COMPLETED);
}

static void
rule3_unknown_dotted_names_are_tavus_unknown(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"conversation.guardrail.triggered\"}", HR_PROVIDER_AUTO,
	    HR_KIND_TAVUS_UNKNOWN);
	assert_kind("{\"event_type\":\"conversation.utterance\",\"message_type\":\"conversation\"}",
	    HR_PROVIDER_AUTO, HR_KIND_TAVUS_UNKNOWN);
	assert_kind(
	    "{\"event_type\":\"system.replica_present\"}", HR_PROVIDER_AUTO, HR_KIND_TAVUS_UNKNOWN);
}

static void
rule3_dotted_event_type_beats_pailflow_keys(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"system.shutdown\",\"room_url\":\"https://x/r\"}",
	    HR_PROVIDER_AUTO, HR_KIND_TAVUS_SHUTDOWN);
}

static void
rule3_non_string_event_type_does_not_match(void **state)
{
	(void)state;
	assert_kind(
	    "{\"event_type\":5,\"conversation_id\":\"c1\"}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule4_video_comes_before_replica_training(void **state)
{
	(void)state;
	assert_kind("{\"video_id\":\"v1\",\"replica_id\":\"r1\",\"status\":\"ready\","
	            "\"hosted_url\":\"https://videos.tavus.io/video/v1\"}",
	    HR_PROVIDER_AUTO, HR_KIND_TAVUS_VIDEO);
}

static void
rule4_video_needs_hosted_url_or_generation_progress(void **state)
{
	(void)state;
	assert_kind("{\"video_id\":\"v1\",\"generation_progress\":\"0/100\"}", HR_PROVIDER_AUTO,
	    HR_KIND_TAVUS_VIDEO);
	assert_kind("{\"video_id\":\"v1\"}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule4_video_with_an_event_field_is_not_video(void **state)
{
	(void)state;
	assert_kind("{\"event\":\"x\",\"video_id\":\"v1\",\"hosted_url\":\"h\"}", HR_PROVIDER_AUTO,
	    HR_KIND_UNKNOWN);
}

static void
null_event_type_counts_as_absent(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":null,\"video_id\":\"v1\",\"hosted_url\":\"h\"}",
	    HR_PROVIDER_AUTO, HR_KIND_TAVUS_VIDEO);
}

static void
rule5_replica_with_conversation_id_is_not_training(void **state)
{
	(void)state;
	assert_kind("{\"replica_id\":\"r1\",\"status\":\"ready\"}", HR_PROVIDER_AUTO,
	    HR_KIND_TAVUS_REPLICA_TRAINING);
	assert_kind("{\"replica_id\":\"r1\",\"status\":\"ready\",\"conversation_id\":\"c1\"}",
	    HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule5_replica_needs_status(void **state)
{
	(void)state;
	assert_kind("{\"replica_id\":\"r1\"}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule6_agenthuman_needs_sess_prefix_and_session_type(void **state)
{
	(void)state;
	assert_kind("{\"session_id\":\"sess_1\",\"session_type\":\"webrtc_video\"}",
	    HR_PROVIDER_AUTO, HR_KIND_AGENTHUMAN_SESSION);
	assert_kind("{\"session_id\":\"s_1\",\"session_type\":\"webrtc_video\"}", HR_PROVIDER_AUTO,
	    HR_KIND_UNKNOWN);
}

static void
rule6_sess_id_without_the_session_object_is_agenthuman_unknown(void **state)
{
	(void)state;
	assert_kind("{\"session_id\":\"sess_1\"}", HR_PROVIDER_AUTO, HR_KIND_AGENTHUMAN_UNKNOWN);
	assert_kind("{\"event\":\"session.ended\",\"session_id\":\"sess_1\"}", HR_PROVIDER_AUTO,
	    HR_KIND_AGENTHUMAN_UNKNOWN);
	assert_kind("{\"session_id\":7}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule6_wrapped_agenthuman_response_is_agenthuman_unknown(void **state)
{
	(void)state;
	assert_kind("{\"success\":true,\"session\":{\"session_id\":\"sess_1\","
	            "\"session_type\":\"webrtc_video\"}}",
	    HR_PROVIDER_AUTO, HR_KIND_AGENTHUMAN_UNKNOWN);
	assert_kind("{\"success\":true,\"session\":\"sess_1\"}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
rule7_empty_object_is_unknown(void **state)
{
	(void)state;
	assert_kind("{}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
non_object_top_level_is_unknown_whatever_the_hint(void **state)
{
	(void)state;
	assert_kind("[1,2]", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
	assert_kind("\"text\"", HR_PROVIDER_TAVUS, HR_KIND_UNKNOWN);
	assert_kind("42", HR_PROVIDER_PAILFLOW, HR_KIND_UNKNOWN);
}

static void
tavus_hint_falls_back_to_tavus_unknown(void **state)
{
	(void)state;
	assert_kind("{\"event\":\"session_complete\"}", HR_PROVIDER_TAVUS, HR_KIND_TAVUS_UNKNOWN);
	assert_kind("{}", HR_PROVIDER_TAVUS, HR_KIND_TAVUS_UNKNOWN);
}

static void
tavus_hint_skips_pailflow_rules(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"bot_join_failed\",\"replica_id\":\"r\",\"status\":\"s\"}",
	    HR_PROVIDER_TAVUS, HR_KIND_TAVUS_UNKNOWN);
}

static void
pailflow_hint_runs_only_rules_1_and_2(void **state)
{
	(void)state;
	assert_kind(
	    "{\"event_type\":\"system.shutdown\"}", HR_PROVIDER_PAILFLOW, HR_KIND_PAILFLOW_UNKNOWN);
	assert_kind("{\"event_type\":\"bot_join_failed\"}", HR_PROVIDER_PAILFLOW,
	    HR_KIND_PAILFLOW_BOT_JOIN_FAILED);
}

static void
agenthuman_hint_runs_only_rule_6(void **state)
{
	(void)state;
	assert_kind("{\"replica_id\":\"r1\",\"status\":\"ready\"}", HR_PROVIDER_AGENTHUMAN,
	    HR_KIND_AGENTHUMAN_UNKNOWN);
	assert_kind("{\"session_id\":\"sess_1\",\"session_type\":\"x\"}", HR_PROVIDER_AGENTHUMAN,
	    HR_KIND_AGENTHUMAN_SESSION);
}

/* A source's provider is known: whatever it sends is that provider's, at worst its unknown. */
static void
every_provider_hint_falls_back_to_its_unknown_kind(void **state)
{
	(void)state;
	assert_kind("{\"note\":1}", HR_PROVIDER_TAVUS, HR_KIND_TAVUS_UNKNOWN);
	assert_kind("{\"note\":1}", HR_PROVIDER_PAILFLOW, HR_KIND_PAILFLOW_UNKNOWN);
	assert_kind("{\"note\":1}", HR_PROVIDER_AGENTHUMAN, HR_KIND_AGENTHUMAN_UNKNOWN);
	assert_kind("{\"note\":1}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

/* ---- Daily.co: "daily." + the envelope's type ---- */

#define DAILY_ENV(type)                                                                            \
	"{\"version\":\"1.0.0\",\"type\":\"" type "\",\"id\":\"x-1\",\"payload\":{},\"event_ts\":" \
	"1}"

static void
daily_envelope_type_selects_its_kind(void **state)
{
	(void)state;
	assert_kind(DAILY_ENV("meeting.started"), HR_PROVIDER_AUTO, HR_KIND_DAILY_MEETING_STARTED);
	assert_kind(DAILY_ENV("recording.ready-to-download"), HR_PROVIDER_AUTO,
	    HR_KIND_DAILY_RECORDING_READY);
	assert_kind(
	    DAILY_ENV("batch-processor.error"), HR_PROVIDER_DAILY, HR_KIND_DAILY_BATCH_ERROR);
}

static void
daily_type_we_do_not_know_is_daily_unknown(void **state)
{
	(void)state;
	assert_kind(DAILY_ENV("meeting.paused"), HR_PROVIDER_AUTO, HR_KIND_DAILY_UNKNOWN);
	/* "daily." + "unknown" must not be looked up as a type: it has no dot. */
	assert_kind(DAILY_ENV("unknown"), HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
dotted_type_without_the_envelope_is_not_daily(void **state)
{
	(void)state;
	/* No payload object, or neither version nor event_ts: not Daily's envelope. */
	assert_kind("{\"type\":\"meeting.started\",\"payload\":\"x\",\"event_ts\":1}",
	    HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
	assert_kind(
	    "{\"type\":\"meeting.started\",\"payload\":{}}", HR_PROVIDER_AUTO, HR_KIND_UNKNOWN);
}

static void
daily_hint_keeps_other_bodies_as_daily_unknown(void **state)
{
	(void)state;
	assert_kind("{\"event_type\":\"system.shutdown\",\"conversation_id\":\"c1\"}",
	    HR_PROVIDER_DAILY, HR_KIND_DAILY_UNKNOWN);
	assert_kind("{\"test\":\"test\"}", HR_PROVIDER_DAILY, HR_KIND_DAILY_UNKNOWN);
	/* and other providers' hints never select a Daily kind */
	assert_kind(DAILY_ENV("meeting.started"), HR_PROVIDER_TAVUS, HR_KIND_TAVUS_UNKNOWN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_payload_file_classifies_as_its_name_says),
		cmocka_unit_test(every_payload_file_classifies_the_same_under_its_provider_hint),
		cmocka_unit_test(rule1_event_session_complete_wins_over_event_type),
		cmocka_unit_test(rule1_other_event_values_do_not_match),
		cmocka_unit_test(rule2_bot_join_failed_alone_matches),
		cmocka_unit_test(
		    rule2_dotless_event_type_with_workflow_thread_id_is_pailflow_unknown),
		cmocka_unit_test(rule2_dotless_event_type_with_room_url_is_pailflow_unknown),
		cmocka_unit_test(rule2_other_event_with_a_room_is_pailflow_unknown),
		cmocka_unit_test(
		    rule2_bot_join_failed_with_missing_fields_is_still_bot_join_failed),
		cmocka_unit_test(rule2_dotless_event_type_without_pailflow_keys_is_unknown),
		cmocka_unit_test(rule3_pal_joined_is_replica_joined),
		cmocka_unit_test(rule3_objective_completed_has_its_own_kind),
		cmocka_unit_test(rule3_unknown_dotted_names_are_tavus_unknown),
		cmocka_unit_test(rule3_dotted_event_type_beats_pailflow_keys),
		cmocka_unit_test(rule3_non_string_event_type_does_not_match),
		cmocka_unit_test(rule4_video_comes_before_replica_training),
		cmocka_unit_test(rule4_video_needs_hosted_url_or_generation_progress),
		cmocka_unit_test(rule4_video_with_an_event_field_is_not_video),
		cmocka_unit_test(null_event_type_counts_as_absent),
		cmocka_unit_test(rule5_replica_with_conversation_id_is_not_training),
		cmocka_unit_test(rule5_replica_needs_status),
		cmocka_unit_test(rule6_agenthuman_needs_sess_prefix_and_session_type),
		cmocka_unit_test(rule6_sess_id_without_the_session_object_is_agenthuman_unknown),
		cmocka_unit_test(rule6_wrapped_agenthuman_response_is_agenthuman_unknown),
		cmocka_unit_test(rule7_empty_object_is_unknown),
		cmocka_unit_test(non_object_top_level_is_unknown_whatever_the_hint),
		cmocka_unit_test(tavus_hint_falls_back_to_tavus_unknown),
		cmocka_unit_test(tavus_hint_skips_pailflow_rules),
		cmocka_unit_test(pailflow_hint_runs_only_rules_1_and_2),
		cmocka_unit_test(agenthuman_hint_runs_only_rule_6),
		cmocka_unit_test(every_provider_hint_falls_back_to_its_unknown_kind),
		cmocka_unit_test(daily_envelope_type_selects_its_kind),
		cmocka_unit_test(daily_type_we_do_not_know_is_daily_unknown),
		cmocka_unit_test(dotted_type_without_the_envelope_is_not_daily),
		cmocka_unit_test(daily_hint_keeps_other_bodies_as_daily_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
