/*
 * kinds.c - the descriptor tables of every event kind (SPEC.md sections 2, 4-6).
 *
 * One `struct hr_schema` per struct of kinds.h and one `struct hr_kind_desc`
 * per enum hr_kind. The generic decoder (schema.c) reads these tables, and
 * every name lookup below walks them, so adding a field or a kind is a table
 * edit. Presence follows SPEC.md: "required" fields are HR_F_REQUIRED,
 * "expected"/"optional"/"cond." fields are optional, "nullable" is
 * HR_F_NULLABLE; unknown fields are ignored.
 */
#include <fnmatch.h>
#include <stddef.h>
#include <string.h>

#include "hr/kinds.h"
#include "hr/kinds_daily.h"
#include "hr/schema.h"

#include "kinds_int.h"

/* ---- open enums ---- */

static const struct hr_enum message_types[] = {
	{ "system", HR_TAVUS_MSG_SYSTEM },
	{ "application", HR_TAVUS_MSG_APPLICATION },
	{ "conversation", HR_TAVUS_MSG_CONVERSATION },
	{ NULL, 0 },
};

static const struct hr_enum video_statuses[] = {
	{ "ready", HR_VIDEO_READY },
	{ "error", HR_VIDEO_ERROR },
	{ "queued", HR_VIDEO_QUEUED },
	{ "generating", HR_VIDEO_GENERATING },
	{ "deleted", HR_VIDEO_DELETED },
	{ NULL, 0 },
};

static const struct hr_enum replica_statuses[] = {
	{ "ready", HR_REPLICA_READY },
	{ "error", HR_REPLICA_ERROR },
	{ "training", HR_REPLICA_TRAINING },
	{ NULL, 0 },
};

static const struct hr_enum transcript_roles[] = {
	{ "system", HR_TRANSCRIPT_SYSTEM },
	{ "user", HR_TRANSCRIPT_USER },
	{ "assistant", HR_TRANSCRIPT_ASSISTANT },
	{ "tool", HR_TRANSCRIPT_TOOL },
	{ NULL, 0 },
};

static const struct hr_enum tool_call_types[] = {
	{ "function", HR_TOOL_CALL_FUNCTION },
	{ NULL, 0 },
};

static const struct hr_enum storage_providers[] = {
	{ "s3", HR_STORAGE_S3 },
	{ "gcs", HR_STORAGE_GCS },
	{ "azure", HR_STORAGE_AZURE },
	{ NULL, 0 },
};

static const struct hr_enum perception_reasons[] = {
	{ "no_vision_history", HR_PERCEPTION_NO_VISION_HISTORY },
	{ NULL, 0 },
};

static const struct hr_enum post_call_statuses[] = {
	{ "success", HR_POST_CALL_SUCCESS },
	{ "error", HR_POST_CALL_ERROR },
	{ NULL, 0 },
};

static const struct hr_enum exit_reasons[] = {
	{ "participant_left", HR_EXIT_PARTICIPANT_LEFT },
	{ "stop_phrase", HR_EXIT_STOP_PHRASE },
	{ "force_leave", HR_EXIT_FORCE_LEAVE },
	{ "idle_timeout", HR_EXIT_IDLE_TIMEOUT },
	{ NULL, 0 },
};

static const struct hr_enum join_error_types[] = {
	{ "room_not_found", HR_JOIN_ROOM_NOT_FOUND },
	{ "auth_error", HR_JOIN_AUTH_ERROR },
	{ "unknown", HR_JOIN_UNKNOWN },
	{ NULL, 0 },
};

static const struct hr_enum ah_statuses[] = {
	{ "created", HR_AH_CREATED },
	{ "started", HR_AH_STARTED },
	{ "ended", HR_AH_ENDED },
	{ NULL, 0 },
};

static const struct hr_enum ah_session_types[] = {
	{ "webrtc_video", HR_AH_WEBRTC_VIDEO },
	{ NULL, 0 },
};

/* Discriminators (HR_T_CONST: choices[0] is the only accepted value). */
static const struct hr_enum const_session_complete[] = {
	{ "session_complete", 0 },
	{ NULL, 0 },
};

static const struct hr_enum const_bot_join_failed[] = {
	{ "bot_join_failed", 0 },
	{ NULL, 0 },
};

static const struct hr_enum const_objective_completed[] = {
	{ "conversation.objective.completed", 0 },
	{ NULL, 0 },
};

/* ---- Tavus video generation (SPEC 4.1) ---- */

#define T struct hr_tavus_video_data
static const struct hr_field video_data_fields[] = {
	F("script", HR_T_STR, T, script, 0, HR_R_NONE),
	END,
};
#undef T
static const struct hr_schema video_data_schema = { "hr_tavus_video_data",
	sizeof(struct hr_tavus_video_data), video_data_fields, false };

#define T struct hr_tavus_video
static const struct hr_field video_fields[] = {
	F("video_id", HR_T_STR, T, video_id, REQ, HR_R_SESSION_KEY),
	F("video_name", HR_T_STR, T, video_name, REQ, HR_R_NONE),
	FE("status", T, status, REQ, HR_R_SUBTYPE, video_statuses),
	F("status_details", HR_T_STR, T, status_details, REQ, HR_R_NONE),
	F("replica_id", HR_T_STR, T, replica_id, REQ, HR_R_NONE),
	F("created_at", HR_T_TIME, T, created_at, REQ, HR_R_NONE),
	F("updated_at", HR_T_TIME, T, updated_at, REQ, HR_R_OCCURRED),
	F("generation_progress", HR_T_STR, T, generation_progress, REQ, HR_R_NONE),
	FS("data", HR_T_OBJECT, T, data, 0, &video_data_schema),
	F("hosted_url", HR_T_STR, T, hosted_url, REQ, HR_R_NONE),
	F("download_url", HR_T_STR, T, download_url, REQ | NULLABLE, HR_R_NONE),
	F("stream_url", HR_T_STR, T, stream_url, REQ | NULLABLE, HR_R_NONE),
	F("error_details", HR_T_JSON, T, error_details, NULLABLE, HR_R_NONE),
	END,
};
#undef T
static const struct hr_schema video_schema = { "hr_tavus_video", sizeof(struct hr_tavus_video),
	video_fields, false };

/* ---- Tavus replica training (SPEC 4.2) ---- */

#define T struct hr_tavus_replica_training
static const struct hr_field replica_training_fields[] = {
	F("replica_id", HR_T_STR, T, replica_id, REQ, HR_R_SESSION_KEY),
	FE("status", T, status, REQ, HR_R_SUBTYPE, replica_statuses),
	F("error_message", HR_T_STR, T, error_message, 0, HR_R_NONE),
	END,
};
#undef T
static const struct hr_schema replica_training_schema = { "hr_tavus_replica_training",
	sizeof(struct hr_tavus_replica_training), replica_training_fields, false };

/* ---- Tavus conversation callbacks (SPEC 4.3, 4.4) ---- */

/* The envelope E of SPEC 2; `props` is the kind's properties schema. */
// clang-format off
#define ENVELOPE(T, props)                                                                  \
	F("event_type", HR_T_STR, T, env.event_type, REQ, HR_R_EVENT_TYPE),                 \
	FE("message_type", T, env.message_type, REQ, HR_R_NONE, message_types),             \
	F("conversation_id", HR_T_STR, T, env.conversation_id, REQ, HR_R_SESSION_KEY),      \
	F("webhook_url", HR_T_STR, T, env.webhook_url, 0, HR_R_NONE),                       \
	F("timestamp", HR_T_TIME, T, env.timestamp, 0, HR_R_OCCURRED),                      \
	FS("properties", HR_T_OBJECT, T, properties, REQ, props)
// clang-format on

/*
 * The schemas of conversation kind `struct hr_tavus_<name>`: the envelope
 * around `struct hr_tavus_<name>_props`, whose table is <name>_props_fields.
 * UNVERIFIED_KIND: a kind whose properties SPEC marks "shape unverified"
 * (read in third-party code, never documented): they are decoded leniently,
 * a property of another type than expected left out of the typed view, not a
 * 422 that Tavus, which never retries, takes as final for a guess of ours.
 */
// clang-format off
#define CONVERSATION_KIND_(name, props_lenient)                                            \
	static const struct hr_schema name##_props_schema = { "hr_tavus_" #name "_props",  \
		sizeof(struct hr_tavus_##name##_props), name##_props_fields, props_lenient };     \
	static const struct hr_field name##_fields[] = {                                   \
		ENVELOPE(struct hr_tavus_##name, &name##_props_schema), END };             \
	static const struct hr_schema name##_schema = { "hr_tavus_" #name,                 \
		sizeof(struct hr_tavus_##name), name##_fields, false }
#define CONVERSATION_KIND(name) CONVERSATION_KIND_(name, false)
#define UNVERIFIED_KIND(name)   CONVERSATION_KIND_(name, true)
// clang-format on

#define P struct hr_tavus_replica_joined_props
static const struct hr_field replica_joined_props_fields[] = {
	F("replica_id", HR_T_STR, P, replica_id, 0, HR_R_NONE),
	F("face_id", HR_T_STR, P, face_id, 0, HR_R_NONE),
	END,
};
#undef P
CONVERSATION_KIND(replica_joined);

#define P struct hr_tavus_shutdown_props
static const struct hr_field shutdown_props_fields[] = {
	F("replica_id", HR_T_STR, P, replica_id, 0, HR_R_NONE),
	/* Third-party code falls back to `reason` (SPEC 4.4.2, undocumented): the
	 * summary's reason when shutdown_reason, decoded after it, is absent. */
	F("reason", HR_T_STR, P, reason, 0, HR_R_SHUTDOWN_REASON),
	F("shutdown_reason", HR_T_STR, P, shutdown_reason, 0, HR_R_SHUTDOWN_REASON),
	END,
};
#undef P
CONVERSATION_KIND(shutdown);

/*
 * Transcript items are OpenAI chat messages passed through (SPEC 4.4.3,
 * changed 2026-12-02): an assistant item that calls tools has content null
 * and tool_calls; the tool's answer is a `tool` item with tool_call_id.
 * Arguments are kept as received (a string holding JSON, usually): they are
 * the model's output and need not even be valid JSON.
 */
#define FN struct hr_tavus_tool_function
static const struct hr_field tool_function_fields[] = {
	F("name", HR_T_STR, FN, name, REQ, HR_R_NONE),
	F("arguments", HR_T_JSON, FN, arguments, NULLABLE, HR_R_NONE),
	END,
};
#undef FN
static const struct hr_schema tool_function_schema = { "hr_tavus_tool_function",
	sizeof(struct hr_tavus_tool_function), tool_function_fields, false };

#define TC struct hr_tavus_tool_call
static const struct hr_field tool_call_fields[] = {
	F("id", HR_T_STR, TC, id, 0, HR_R_NONE),
	FE("type", TC, type, 0, HR_R_NONE, tool_call_types),
	/* OpenAI's custom tools call with `custom` ({name, input}) instead */
	FS("function", HR_T_OBJECT, TC, function, 0, &tool_function_schema),
	END,
};
#undef TC
static const struct hr_schema tool_call_schema = { "hr_tavus_tool_call",
	sizeof(struct hr_tavus_tool_call), tool_call_fields, false };

#define I struct hr_tavus_transcript_item
static const struct hr_field transcript_item_fields[] = {
	FE("role", I, role, REQ, HR_R_NONE, transcript_roles),
	/* null or left out where the item carries tool_calls, and an array of
	 * content parts ({type: text, text}...) in OpenAI's multimodal chat shape:
	 * any JSON, never required, or one item would refuse the whole transcript. */
	F("content", HR_T_JSON, I, content, NULLABLE, HR_R_NONE),
	FS("tool_calls", HR_T_ARRAY, I, tool_calls, NULLABLE, &tool_call_schema),
	F("tool_call_id", HR_T_STR, I, tool_call_id, 0, HR_R_NONE),
	F("name", HR_T_STR, I, name, 0, HR_R_NONE),
	F("timestamp", HR_T_TIME_ANY, I, timestamp, 0, HR_R_NONE),
	F("seconds_from_start", HR_T_NUM, I, seconds_from_start, 0, HR_R_NONE),
	F("duration", HR_T_NUM, I, duration, 0, HR_R_NONE),
	F("inference_id", HR_T_STR, I, inference_id, 0, HR_R_NONE),
	END,
};
#undef I
static const struct hr_schema transcript_item_schema = { "hr_tavus_transcript_item",
	sizeof(struct hr_tavus_transcript_item), transcript_item_fields, false };

#define P struct hr_tavus_transcription_ready_props
static const struct hr_field transcription_ready_props_fields[] = {
	F("replica_id", HR_T_STR, P, replica_id, 0, HR_R_NONE),
	FS("transcript", HR_T_ARRAY, P, transcript, REQ, &transcript_item_schema),
	END,
};
#undef P
CONVERSATION_KIND(transcription_ready);

#define P struct hr_tavus_recording_ready_props
static const struct hr_field recording_ready_props_fields[] = {
	F("bucket_name", HR_T_STR, P, bucket_name, 0, HR_R_NONE),
	F("s3_key", HR_T_STR, P, s3_key, 0, HR_R_NONE),
	F("duration", HR_T_NUM, P, duration, 0, HR_R_NONE),
	FE("storage_provider", P, storage_provider, 0, HR_R_NONE, storage_providers),
	F("storage_uri", HR_T_STR, P, storage_uri, 0, HR_R_NONE),
	END,
};
#undef P
CONVERSATION_KIND(recording_ready);

#define P struct hr_tavus_recording_copy_failed_props
static const struct hr_field recording_copy_failed_props_fields[] = {
	F("error_message", HR_T_STR, P, error_message, 0, HR_R_NONE),
	END,
};
#undef P
UNVERIFIED_KIND(recording_copy_failed);

#define P struct hr_tavus_perception_analysis_props
static const struct hr_field perception_analysis_props_fields[] = {
	F("analysis", HR_T_STR, P, analysis, REQ, HR_R_NONE),
	END,
};
#undef P
CONVERSATION_KIND(perception_analysis);

#define P struct hr_tavus_perception_unavailable_props
static const struct hr_field perception_unavailable_props_fields[] = {
	FE("reason", P, reason, 0, HR_R_NONE, perception_reasons),
	END,
};
#undef P
UNVERIFIED_KIND(perception_unavailable);

#define R struct hr_tavus_post_call_request
static const struct hr_field post_call_request_fields[] = {
	F("body", HR_T_STR, R, body, 0, HR_R_NONE),
	END,
};
#undef R
static const struct hr_schema post_call_request_schema = { "hr_tavus_post_call_request",
	sizeof(struct hr_tavus_post_call_request), post_call_request_fields, false };

#define P struct hr_tavus_post_call_action_props
static const struct hr_field post_call_action_props_fields[] = {
	F("tool_id", HR_T_STR, P, tool_id, 0, HR_R_NONE),
	F("tool_name", HR_T_STR, P, tool_name, 0, HR_R_NONE),
	FE("status", P, status, 0, HR_R_NONE, post_call_statuses),
	FS("request", HR_T_OBJECT, P, request, 0, &post_call_request_schema),
	F("response", HR_T_JSON, P, response, NULLABLE, HR_R_NONE),
	END,
};
#undef P
UNVERIFIED_KIND(post_call_action);

/* ---- Tavus objective (SPEC 4.5): only event_type and conversation_id required ---- */

#define P struct hr_tavus_objective_props
static const struct hr_field objective_props_fields[] = {
	F("objective_name", HR_T_STR, P, objective_name, 0, HR_R_NONE),
	F("output_variables", HR_T_JSON_OBJECT, P, output_variables, 0, HR_R_NONE),
	END,
};
#undef P
static const struct hr_schema objective_props_schema = { "hr_tavus_objective_props",
	sizeof(struct hr_tavus_objective_props), objective_props_fields, false };

#define T struct hr_tavus_objective_completed
static const struct hr_field objective_fields[] = {
	{ "event_type", HR_T_CONST, offsetof(T, env.event_type), REQ, HR_R_EVENT_TYPE,
	    const_objective_completed, NULL },
	FE("message_type", T, env.message_type, 0, HR_R_NONE, message_types),
	F("conversation_id", HR_T_STR, T, env.conversation_id, REQ, HR_R_SESSION_KEY),
	F("webhook_url", HR_T_STR, T, env.webhook_url, 0, HR_R_NONE),
	F("timestamp", HR_T_TIME, T, env.timestamp, 0, HR_R_OCCURRED),
	FS("properties", HR_T_OBJECT, T, properties, 0, &objective_props_schema),
	FS("data", HR_T_OBJECT, T, data, 0, &objective_props_schema),
	END,
};
#undef T
static const struct hr_schema objective_schema = { "hr_tavus_objective_completed",
	sizeof(struct hr_tavus_objective_completed), objective_fields, false };

/*
 * tavus.unknown: whatever of the envelope is there. Nothing is required: with
 * a Tavus source hint every unmatched body lands here, and an event we do not
 * know yet must not be refused.
 */
#define T struct hr_tavus_unknown
static const struct hr_field tavus_unknown_fields[] = {
	F("event_type", HR_T_STR, T, env.event_type, 0, HR_R_EVENT_TYPE),
	FE("message_type", T, env.message_type, 0, HR_R_NONE, message_types),
	F("conversation_id", HR_T_STR, T, env.conversation_id, 0, HR_R_SESSION_KEY),
	F("webhook_url", HR_T_STR, T, env.webhook_url, 0, HR_R_NONE),
	F("timestamp", HR_T_TIME, T, env.timestamp, 0, HR_R_OCCURRED),
	F("properties", HR_T_JSON, T, properties, NULLABLE, HR_R_NONE),
	END,
};
#undef T
static const struct hr_schema tavus_unknown_schema = { "hr_tavus_unknown",
	sizeof(struct hr_tavus_unknown), tavus_unknown_fields, true };

/* ---- PailFlow (SPEC 5) ---- */

#define Q struct hr_pailflow_question_assessment
static const struct hr_field question_fields[] = {
	F("question", HR_T_STR, Q, question, 0, HR_R_NONE),
	F("answer", HR_T_STR, Q, answer, 0, HR_R_NONE),
	F("score", HR_T_NUM, Q, score, 0, HR_R_NONE),
	F("notes", HR_T_STR, Q, notes, 0, HR_R_NONE),
	END,
};
#undef Q
static const struct hr_schema question_schema = { "hr_pailflow_question_assessment",
	sizeof(struct hr_pailflow_question_assessment), question_fields, true };

#define N struct hr_pailflow_insights
static const struct hr_field insights_fields[] = {
	F("summary", HR_T_STR, N, summary, 0, HR_R_NONE),
	F("overall_score", HR_T_NUM, N, overall_score, 0, HR_R_SCORE),
	F("strengths", HR_T_STR_ARRAY, N, strengths, 0, HR_R_NONE),
	F("weaknesses", HR_T_STR_ARRAY, N, weaknesses, 0, HR_R_NONE),
	F("competency_scores", HR_T_JSON_OBJECT, N, competency_scores, 0, HR_R_NONE),
	FS("question_assessments", HR_T_ARRAY, N, question_assessments, 0, &question_schema),
	END,
};
#undef N
/*
 * Lenient: insights is an LLM's JSON (json.loads of its answer; a user's own
 * analysis_prompt sets its shape), and PailFlow checks only that strengths and
 * weaknesses are lists, not what they hold. A value of another type is left
 * out of the typed view; the session is never refused for it (PailFlow never
 * retries), and the body keeps it as sent.
 */
static const struct hr_schema insights_schema = { "hr_pailflow_insights",
	sizeof(struct hr_pailflow_insights), insights_fields, true };

#define T struct hr_pailflow_session_complete
static const struct hr_field session_complete_fields[] = {
	{ "event", HR_T_CONST, offsetof(T, event), REQ, HR_R_EVENT_TYPE, const_session_complete,
	    NULL },
	F("transcript_id", HR_T_STR, T, transcript_id, REQ | NULLABLE, HR_R_NONE),
	F("room_id", HR_T_STR, T, room_id, REQ | NULLABLE, HR_R_MEETING_ID), /* Daily meeting_id */
	/* room_url.split("/")[-1] in PailFlow: a query or fragment the URL had is cut
	 * off here, so the session is the room's that bot_join_failed names. */
	F("room_name", HR_T_STR, T, room_name, REQ, HR_R_SESSION_KEY_URL),
	/* SPEC says integer; PailFlow computes it as end_ts - start_ts of Daily's
	 * meeting.ended, whose timestamps carry fractions: a number, or a provider that
	 * never retries would have its session refused for 72.671 seconds. */
	F("duration_seconds", HR_T_NUM, T, duration_seconds, REQ | NULLABLE, HR_R_DURATION),
	F("transcript_text", HR_T_STR, T, transcript_text, REQ, HR_R_NONE),
	F("summary", HR_T_STR, T, summary, REQ, HR_R_NONE),
	FE("exit_reason", T, exit_reason, 0, HR_R_EXIT_REASON, exit_reasons),
	FS("insights", HR_T_OBJECT, T, insights, 0, &insights_schema),
	F("insights_error", HR_T_STR, T, insights_error, NULLABLE, HR_R_NONE),
	END,
};
#undef T
static const struct hr_schema session_complete_schema = { "hr_pailflow_session_complete",
	sizeof(struct hr_pailflow_session_complete), session_complete_fields, false };

#define T struct hr_pailflow_bot_join_failed
static const struct hr_field bot_join_failed_fields[] = {
	{ "event_type", HR_T_CONST, offsetof(T, event_type), REQ, HR_R_EVENT_TYPE,
	    const_bot_join_failed, NULL },
	F("workflow_thread_id", HR_T_STR, T, workflow_thread_id, REQ, HR_R_NONE),
	F("room_url", HR_T_STR, T, room_url, REQ, HR_R_SESSION_KEY_URL),
	FE("error_type", T, error_type, REQ, HR_R_ERROR_TYPE, join_error_types),
	F("error_message", HR_T_STR, T, error_message, REQ, HR_R_NONE),
	F("timestamp", HR_T_TIME, T, timestamp, REQ, HR_R_OCCURRED),
	/* SPEC and the seed's example say integer (2); it is a time the bot measured,
	 * in code the seed does not show: a number, as session_complete's, or a join
	 * that took 2.4 s would be refused, and PailFlow never retries. */
	F("duration_seconds", HR_T_NUM, T, duration_seconds, REQ, HR_R_NONE),
	END,
};
#undef T
static const struct hr_schema bot_join_failed_schema = { "hr_pailflow_bot_join_failed",
	sizeof(struct hr_pailflow_bot_join_failed), bot_join_failed_fields, false };

/*
 * pailflow.unknown (SPEC 7 rule 2, changed 2026-12-02): every key lenient.
 * room_url comes before room_name so that room_name, when both are sent,
 * is the correlation key (they name the same room).
 */
#define T struct hr_pailflow_unknown
static const struct hr_field pailflow_unknown_fields[] = {
	F("event", HR_T_STR, T, event, 0, HR_R_EVENT_TYPE),
	F("event_type", HR_T_STR, T, event_type, 0, HR_R_EVENT_TYPE),
	F("workflow_thread_id", HR_T_STR, T, workflow_thread_id, 0, HR_R_NONE),
	F("room_url", HR_T_STR, T, room_url, 0, HR_R_SESSION_KEY_URL),
	F("room_name", HR_T_STR, T, room_name, 0, HR_R_SESSION_KEY_URL),
	F("room_id", HR_T_STR, T, room_id, NULLABLE, HR_R_MEETING_ID),
	F("timestamp", HR_T_TIME, T, timestamp, 0, HR_R_OCCURRED),
	END,
};
#undef T
static const struct hr_schema pailflow_unknown_schema = { "hr_pailflow_unknown",
	sizeof(struct hr_pailflow_unknown), pailflow_unknown_fields, true };

/* ---- AgentHuman (SPEC 6.1, seed 002) ---- */

#define A struct hr_agenthuman_avatar
static const struct hr_field avatar_fields[] = {
	F("avatar_id", HR_T_STR, A, avatar_id, REQ, HR_R_NONE),
	F("name", HR_T_STR, A, name, REQ, HR_R_NONE),
	F("url", HR_T_STR, A, url, REQ, HR_R_NONE),
	END,
};
#undef A
static const struct hr_schema avatar_schema = { "hr_agenthuman_avatar",
	sizeof(struct hr_agenthuman_avatar), avatar_fields, false };

#define D struct hr_agenthuman_daily_room
static const struct hr_field daily_room_fields[] = {
	F("url", HR_T_STR, D, url, 0, HR_R_ROOM_URL), /* the name, when sent, wins */
	F("name", HR_T_STR, D, name, 0, HR_R_ROOM),
	F("token", HR_T_STR, D, token, 0, HR_R_NONE),
	F("exp", HR_T_JSON, D, exp, NULLABLE, HR_R_NONE),
	END,
};
#undef D
static const struct hr_schema daily_room_schema = { "hr_agenthuman_daily_room",
	sizeof(struct hr_agenthuman_daily_room), daily_room_fields, false };

/*
 * status, started_at and ended_at are optional: the seed derives status from
 * the timestamps (they win over a disagreeing status), and status stands in
 * when the timestamps are absent.
 */
#define T struct hr_agenthuman_session
static const struct hr_field agenthuman_fields[] = {
	F("session_id", HR_T_STR, T, session_id, REQ, HR_R_SESSION_KEY),
	FS("avatar", HR_T_OBJECT, T, avatar, REQ, &avatar_schema),
	FE("session_type", T, session_type, REQ, HR_R_NONE, ah_session_types),
	FE("status", T, status, 0, HR_R_SUBTYPE, ah_statuses),
	F("started_at", HR_T_TIME, T, started_at, NULLABLE, HR_R_STARTED_AT),
	F("ended_at", HR_T_TIME, T, ended_at, NULLABLE, HR_R_ENDED_AT),
	F("created_at", HR_T_TIME, T, created_at, REQ, HR_R_OCCURRED),
	F("expiration", HR_T_TIME, T, expiration, NULLABLE, HR_R_NONE),
	F("duration", HR_T_NUM, T, duration, NULLABLE, HR_R_DURATION),
	F("access_token", HR_T_STR, T, access_token, 0, HR_R_NONE),
	FS("daily_room", HR_T_OBJECT, T, daily_room, NULLABLE, &daily_room_schema),
	F("metadata", HR_T_JSON_OBJECT, T, metadata, REQ, HR_R_NONE),
	END,
};
#undef T
static const struct hr_schema agenthuman_schema = { "hr_agenthuman_session",
	sizeof(struct hr_agenthuman_session), agenthuman_fields, false };

/* agenthuman.unknown: lenient; a top-level session_id wins over a wrapped one. */
#define W struct hr_agenthuman_unknown_session
static const struct hr_field ah_unknown_session_fields[] = {
	F("session_id", HR_T_STR, W, session_id, 0, HR_R_SESSION_KEY),
	END,
};
#undef W
static const struct hr_schema ah_unknown_session_schema = { "hr_agenthuman_unknown_session",
	sizeof(struct hr_agenthuman_unknown_session), ah_unknown_session_fields, true };

#define T struct hr_agenthuman_unknown
static const struct hr_field agenthuman_unknown_fields[] = {
	F("event", HR_T_STR, T, event, 0, HR_R_EVENT_TYPE),
	F("event_type", HR_T_STR, T, event_type, 0, HR_R_EVENT_TYPE),
	FS("session", HR_T_OBJECT, T, session, NULLABLE, &ah_unknown_session_schema),
	F("session_id", HR_T_STR, T, session_id, 0, HR_R_SESSION_KEY),
	FE("status", T, status, 0, HR_R_NONE, ah_statuses),
	END,
};
#undef T
static const struct hr_schema agenthuman_unknown_schema = { "hr_agenthuman_unknown",
	sizeof(struct hr_agenthuman_unknown), agenthuman_unknown_fields, true };

/* ---- status maps: received status -> public subtype and implied session state ---- */

static const struct hr_status_map ready_error_map[] = {
	{ "ready", "completed", HR_SESS_ENDED },
	{ "error", "error", HR_SESS_FAILED },
	{ NULL, "other", HR_SESS_STARTED },
};

static const struct hr_status_map agenthuman_map[] = {
	{ "created", "created", HR_SESS_CREATED },
	{ "started", "started", HR_SESS_STARTED },
	{ "ended", "ended", HR_SESS_ENDED },
	{ NULL, NULL, HR_SESS_NONE },
};

/*
 * Deduplication (dedup.c, docs/security.md "Deduplication"). Tavus and
 * PailFlow never retry, so a body wrongly called a duplicate is lost for
 * good: every kind is keyed by its bytes (an exact resend), except the one
 * twin a provider documents, PailFlow's session_complete and unknown events,
 * whose bytes name no callback, and an unknown Tavus event without a time
 * (enum hr_bytes_key, schema.h). system.pal_joined and its legacy duplicate
 * system.replica_joined carry "an identical payload" but for the event name
 * and the replica's id, which pal_joined calls face_id.
 */
static const struct hr_dedup_twin replica_joined_twin = {
	.erase = { "event_type", NULL },
	.alias = { { "properties/face_id", "properties/replica_id" }, { NULL, NULL } },
};

/* ---- room facts (rooms.c): what a room's view shows of an outcome ---- */

static const char *const session_complete_facts[] = { "/exit_reason", "/insights/overall_score",
	"/duration_seconds", "/transcript_id", "/insights_error", NULL };
static const char *const bot_join_failed_facts[] = { "/error_type", "/error_message",
	"/workflow_thread_id", "/duration_seconds", NULL };
static const char *const agenthuman_facts[] = { "/session_id", "/status", "/duration",
	"/avatar/name", NULL };

/* ---- kinds, indexed by enum hr_kind (Daily's: kinds_daily.c) ---- */

#define TAVUS HR_PROVIDER_TAVUS
#define CONV  HR_SCOPE_CONVERSATION

static const struct hr_kind_desc kinds[HR_KIND_DAILY_UNKNOWN] = {
	[HR_KIND_UNKNOWN] = { HR_KIND_UNKNOWN, "unknown", HR_PROVIDER_AUTO, HR_SCOPE_NONE, NULL,
	    NULL, HR_SESS_NONE, NULL, NULL, HR_ROOM_NONE, NULL, NULL, HR_BYTES_KEYED },
	[HR_KIND_TAVUS_UNKNOWN] = { HR_KIND_TAVUS_UNKNOWN, "tavus.unknown", TAVUS, CONV,
	    &tavus_unknown_schema, NULL, HR_SESS_NONE, NULL, NULL, HR_ROOM_NONE, NULL, NULL,
	    HR_BYTES_KEYED_IF_TIMED },
	[HR_KIND_TAVUS_VIDEO] = { HR_KIND_TAVUS_VIDEO, "tavus.video", TAVUS, HR_SCOPE_VIDEO,
	    &video_schema, ready_error_map, HR_SESS_NONE, NULL, NULL, HR_ROOM_NONE, NULL, NULL,
	    HR_BYTES_KEYED },
	[HR_KIND_TAVUS_REPLICA_TRAINING] = { HR_KIND_TAVUS_REPLICA_TRAINING,
	    "tavus.replica_training", TAVUS, HR_SCOPE_REPLICA, &replica_training_schema,
	    ready_error_map, HR_SESS_NONE, NULL, NULL, HR_ROOM_NONE, NULL, NULL, HR_BYTES_KEYED },
	[HR_KIND_TAVUS_REPLICA_JOINED] = { HR_KIND_TAVUS_REPLICA_JOINED,
	    "tavus.conversation.system.replica_joined", TAVUS, CONV, &replica_joined_schema, NULL,
	    HR_SESS_STARTED, &replica_joined_twin, NULL, HR_ROOM_NONE, NULL, NULL, HR_BYTES_KEYED },
	[HR_KIND_TAVUS_SHUTDOWN] = { HR_KIND_TAVUS_SHUTDOWN, "tavus.conversation.system.shutdown",
	    TAVUS, CONV, &shutdown_schema, NULL, HR_SESS_ENDED, NULL, NULL, HR_ROOM_NONE, NULL,
	    NULL, HR_BYTES_KEYED },
	[HR_KIND_TAVUS_TRANSCRIPTION_READY] = { HR_KIND_TAVUS_TRANSCRIPTION_READY,
	    "tavus.conversation.application.transcription_ready", TAVUS, CONV,
	    &transcription_ready_schema, NULL, HR_SESS_ENDED, NULL, NULL, HR_ROOM_NONE, NULL, NULL,
	    HR_BYTES_KEYED },
	/* Recordings are written whenever storage finishes: no session state. */
	[HR_KIND_TAVUS_RECORDING_READY] = { HR_KIND_TAVUS_RECORDING_READY,
	    "tavus.conversation.application.recording_ready", TAVUS, CONV, &recording_ready_schema,
	    NULL, HR_SESS_NONE, NULL, NULL, HR_ROOM_NONE, NULL, NULL, HR_BYTES_KEYED },
	[HR_KIND_TAVUS_RECORDING_COPY_FAILED] = { HR_KIND_TAVUS_RECORDING_COPY_FAILED,
	    "tavus.conversation.application.recording_copy_failed", TAVUS, CONV,
	    &recording_copy_failed_schema, NULL, HR_SESS_NONE, NULL, NULL, HR_ROOM_NONE, NULL, NULL,
	    HR_BYTES_KEYED },
	[HR_KIND_TAVUS_PERCEPTION_ANALYSIS] = { HR_KIND_TAVUS_PERCEPTION_ANALYSIS,
	    "tavus.conversation.application.perception_analysis", TAVUS, CONV,
	    &perception_analysis_schema, NULL, HR_SESS_ENDED, NULL, NULL, HR_ROOM_NONE, NULL, NULL,
	    HR_BYTES_KEYED },
	[HR_KIND_TAVUS_PERCEPTION_UNAVAILABLE] = { HR_KIND_TAVUS_PERCEPTION_UNAVAILABLE,
	    "tavus.conversation.application.perception_unavailable", TAVUS, CONV,
	    &perception_unavailable_schema, NULL, HR_SESS_ENDED, NULL, NULL, HR_ROOM_NONE, NULL,
	    NULL, HR_BYTES_KEYED },
	[HR_KIND_TAVUS_POST_CALL_ACTION_EXECUTED] = { HR_KIND_TAVUS_POST_CALL_ACTION_EXECUTED,
	    "tavus.conversation.application.post_call_action_executed", TAVUS, CONV,
	    &post_call_action_schema, NULL, HR_SESS_ENDED, NULL, NULL, HR_ROOM_NONE, NULL, NULL,
	    HR_BYTES_KEYED },
	/* Objectives complete during the call. */
	[HR_KIND_TAVUS_OBJECTIVE_COMPLETED] = { HR_KIND_TAVUS_OBJECTIVE_COMPLETED,
	    "tavus.objective.completed", TAVUS, CONV, &objective_schema, NULL, HR_SESS_STARTED,
	    NULL, NULL, HR_ROOM_NONE, NULL, NULL, HR_BYTES_KEYED },
	[HR_KIND_PAILFLOW_SESSION_COMPLETE] = { HR_KIND_PAILFLOW_SESSION_COMPLETE,
	    "pailflow.session_complete", HR_PROVIDER_PAILFLOW, HR_SCOPE_ROOM,
	    &session_complete_schema, NULL, HR_SESS_ENDED, NULL, NULL, HR_ROOM_OUTCOME, "completed",
	    session_complete_facts, HR_BYTES_KEY_NOTHING },
	[HR_KIND_PAILFLOW_BOT_JOIN_FAILED] = { HR_KIND_PAILFLOW_BOT_JOIN_FAILED,
	    "pailflow.bot_join_failed", HR_PROVIDER_PAILFLOW, HR_SCOPE_ROOM,
	    &bot_join_failed_schema, NULL, HR_SESS_FAILED, NULL, NULL, HR_ROOM_OUTCOME, "failed",
	    bot_join_failed_facts, HR_BYTES_KEYED },
	[HR_KIND_AGENTHUMAN_SESSION] = { HR_KIND_AGENTHUMAN_SESSION, "agenthuman.session",
	    HR_PROVIDER_AGENTHUMAN, HR_SCOPE_AGENTHUMAN, &agenthuman_schema, agenthuman_map,
	    HR_SESS_NONE, NULL, NULL, HR_ROOM_OUTCOME, NULL, agenthuman_facts, HR_BYTES_KEYED },
	/* Unknown kinds say nothing about their session's state. */
	[HR_KIND_PAILFLOW_UNKNOWN] = { HR_KIND_PAILFLOW_UNKNOWN, "pailflow.unknown",
	    HR_PROVIDER_PAILFLOW, HR_SCOPE_ROOM, &pailflow_unknown_schema, NULL, HR_SESS_NONE, NULL,
	    NULL, HR_ROOM_NONE, NULL, NULL, HR_BYTES_KEY_NOTHING },
	[HR_KIND_AGENTHUMAN_UNKNOWN] = { HR_KIND_AGENTHUMAN_UNKNOWN, "agenthuman.unknown",
	    HR_PROVIDER_AGENTHUMAN, HR_SCOPE_AGENTHUMAN, &agenthuman_unknown_schema, NULL,
	    HR_SESS_NONE, NULL, NULL, HR_ROOM_NONE, NULL, NULL, HR_BYTES_KEYED },
};

/* ---- names ---- */

static const char *const provider_names[] = {
	[HR_PROVIDER_AUTO] = "auto",
	[HR_PROVIDER_TAVUS] = "tavus",
	[HR_PROVIDER_PAILFLOW] = "pailflow",
	[HR_PROVIDER_AGENTHUMAN] = "agenthuman",
	[HR_PROVIDER_DAILY] = "daily",
};

static const char *const scope_names[] = {
	[HR_SCOPE_NONE] = "",
	[HR_SCOPE_CONVERSATION] = "conversation",
	[HR_SCOPE_VIDEO] = "video",
	[HR_SCOPE_REPLICA] = "replica",
	[HR_SCOPE_ROOM] = "room",
	[HR_SCOPE_AGENTHUMAN] = "agenthuman",
};

static const char *const session_status_names[] = {
	[HR_SESS_NONE] = NULL,
	[HR_SESS_CREATED] = "created",
	[HR_SESS_STARTED] = "started",
	[HR_SESS_ENDED] = "ended",
	[HR_SESS_FAILED] = "failed",
};

/* Index of `name` in `names` (n entries, NULL entries skipped); -1 when absent. */
static int
name_index(const char *const *names, size_t n, const char *name)
{
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < n; i++)
		if (names[i] != NULL && strcmp(names[i], name) == 0)
			return (int)i;
	return -1;
}

const struct hr_kind_desc *
hr_kind_desc(enum hr_kind kind)
{
	if ((size_t)kind >= HR_KIND_COUNT)
		return NULL;
	if (kind >= HR_KIND_DAILY_UNKNOWN)
		return hr_daily_kind_desc(kind);
	return &kinds[kind];
}

const char *
hr_kind_name(enum hr_kind kind)
{
	const struct hr_kind_desc *d = hr_kind_desc(kind);

	return d != NULL ? d->name : NULL;
}

int
hr_kind_from_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < HR_KIND_COUNT; i++)
		if (strcmp(hr_kind_desc((enum hr_kind)i)->name, name) == 0)
			return (int)i;
	return -1;
}

_Static_assert(HR_KIND_COUNT <= 64, "hr_kind_glob_set() answers a 64-bit set");

uint64_t
hr_kind_glob_set(const char *pattern)
{
	uint64_t set = 0;

	if (pattern == NULL || pattern[strspn(pattern, HR_NAME_GLOB_CHARS)] != '\0')
		return 0;
	for (int k = 0; k < HR_KIND_COUNT; k++)
		if (fnmatch(pattern, hr_kind_name((enum hr_kind)k), 0) == 0)
			set |= UINT64_C(1) << k;
	return set;
}

enum hr_provider
hr_kind_provider(enum hr_kind kind)
{
	const struct hr_kind_desc *d = hr_kind_desc(kind);

	return d != NULL ? d->provider : HR_PROVIDER_AUTO;
}

const char *
hr_provider_name(enum hr_provider p)
{
	if ((size_t)p >= HR_ARRAY_LEN(provider_names))
		return NULL;
	return provider_names[p];
}

int
hr_provider_from_name(const char *name)
{
	return name_index(provider_names, HR_ARRAY_LEN(provider_names), name);
}

const char *
hr_scope_name(enum hr_scope scope)
{
	if ((size_t)scope >= HR_ARRAY_LEN(scope_names))
		return "";
	return scope_names[scope];
}

const char *
hr_session_status_name(enum hr_session_status st)
{
	if ((size_t)st >= HR_ARRAY_LEN(session_status_names))
		return NULL;
	return session_status_names[st];
}

int
hr_session_status_from_name(const char *name)
{
	return name_index(session_status_names, HR_ARRAY_LEN(session_status_names), name);
}
