/*
 * kinds.h - the typed C struct of every event kind (SPEC.md sections 4-6).
 *
 * hr_event_parse() decodes a body into the struct of its kind through the
 * kind's descriptor table (src/model/kinds.c); no kind has hand-written decoding.
 * Field names follow the JSON keys. Every struct a schema describes starts
 * with `enum hr_presence st`, which is how an embedded object (HR_T_OBJECT)
 * says whether it was absent, null or set.
 *
 * Open enums keep their text in `.s`; `.code` is one of the constants below
 * or HR_ENUM_OTHER for a value this build does not know.
 */
#ifndef HR_KINDS_H
#define HR_KINDS_H

#include "hr/schema.h"

#define HR_ENUM_OTHER (-1)

/* Tavus conversation envelope message_type */
enum hr_tavus_message_type {
	HR_TAVUS_MSG_SYSTEM = 0,
	HR_TAVUS_MSG_APPLICATION,
	HR_TAVUS_MSG_CONVERSATION,
};

/* Tavus video status (callbacks send ready/error; the API lifecycle has the rest) */
enum hr_tavus_video_status {
	HR_VIDEO_READY = 0,
	HR_VIDEO_ERROR,
	HR_VIDEO_QUEUED,
	HR_VIDEO_GENERATING,
	HR_VIDEO_DELETED,
};

/* Tavus replica training status */
enum hr_tavus_replica_status {
	HR_REPLICA_READY = 0,
	HR_REPLICA_ERROR,
	HR_REPLICA_TRAINING,
};

/* Tavus transcript item role */
enum hr_tavus_transcript_role {
	HR_TRANSCRIPT_SYSTEM = 0,
	HR_TRANSCRIPT_USER,
	HR_TRANSCRIPT_ASSISTANT,
	HR_TRANSCRIPT_TOOL, /* the answer to an assistant item's tool call */
};

/* Tavus transcript tool_calls[].type (OpenAI chat shape) */
enum hr_tavus_tool_call_type {
	HR_TOOL_CALL_FUNCTION = 0,
};

/* Tavus recording_ready storage_provider (values assumed, SPEC 4.4.4) */
enum hr_tavus_storage_provider {
	HR_STORAGE_S3 = 0,
	HR_STORAGE_GCS,
	HR_STORAGE_AZURE,
};

/* Tavus perception_unavailable reason */
enum hr_tavus_perception_reason {
	HR_PERCEPTION_NO_VISION_HISTORY = 0,
};

/* Tavus post_call_action_executed status */
enum hr_tavus_post_call_status {
	HR_POST_CALL_SUCCESS = 0,
	HR_POST_CALL_ERROR,
};

/* PailFlow session_complete exit_reason */
enum hr_pailflow_exit_reason {
	HR_EXIT_PARTICIPANT_LEFT = 0,
	HR_EXIT_STOP_PHRASE,
	HR_EXIT_FORCE_LEAVE,
	HR_EXIT_IDLE_TIMEOUT,
};

/* PailFlow bot_join_failed error_type; the literal "unknown" is not HR_ENUM_OTHER */
enum hr_pailflow_join_error {
	HR_JOIN_ROOM_NOT_FOUND = 0,
	HR_JOIN_AUTH_ERROR,
	HR_JOIN_UNKNOWN,
};

/* AgentHuman session status */
enum hr_agenthuman_status {
	HR_AH_CREATED = 0,
	HR_AH_STARTED,
	HR_AH_ENDED,
};

/* AgentHuman session_type */
enum hr_agenthuman_session_type {
	HR_AH_WEBRTC_VIDEO = 0,
};

/* ---- Tavus: video generation (flat body, no event field) ---- */

struct hr_tavus_video_data {
	enum hr_presence st;
	struct hr_str script;
};

struct hr_tavus_video {
	enum hr_presence st;
	struct hr_str video_id;
	struct hr_str video_name;
	struct hr_enumv status; /* enum hr_tavus_video_status */
	struct hr_str status_details;
	struct hr_str replica_id;
	struct hr_timev created_at;
	struct hr_timev updated_at;
	struct hr_str generation_progress; /* "100/100": a string, never a number */
	struct hr_tavus_video_data data;
	struct hr_str hosted_url;
	struct hr_str download_url; /* null on error */
	struct hr_str stream_url;   /* null on error */
	struct hr_jsonv error_details;
};

/* ---- Tavus: replica training (flat body, no event field) ---- */

struct hr_tavus_replica_training {
	enum hr_presence st;
	struct hr_str replica_id;
	struct hr_enumv status; /* enum hr_tavus_replica_status */
	struct hr_str error_message;
};

/* ---- Tavus: conversation callbacks ---- */

/* The envelope every conversation-family struct embeds first, as `env`. */
struct hr_tavus_envelope {
	struct hr_str event_type;     /* as received: system.pal_joined stays pal_joined */
	struct hr_enumv message_type; /* enum hr_tavus_message_type */
	struct hr_str conversation_id;
	struct hr_str webhook_url;
	struct hr_timev timestamp;
};

struct hr_tavus_replica_joined_props {
	enum hr_presence st;
	struct hr_str replica_id; /* system.replica_joined */
	struct hr_str face_id;    /* system.pal_joined */
};

struct hr_tavus_replica_joined {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_replica_joined_props properties;
};

struct hr_tavus_shutdown_props {
	enum hr_presence st;
	struct hr_str replica_id;
	struct hr_str reason;          /* a fallback some senders use (SPEC 4.4.2) */
	struct hr_str shutdown_reason; /* free text */
};

struct hr_tavus_shutdown {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_shutdown_props properties;
};

/* An assistant item's tool call, as the OpenAI chat format Tavus passes through has it. */
struct hr_tavus_tool_function {
	enum hr_presence st;
	struct hr_str name;
	struct hr_jsonv arguments; /* as received: usually a string holding JSON */
};

struct hr_tavus_tool_call {
	enum hr_presence st;
	struct hr_str id;
	struct hr_enumv type; /* enum hr_tavus_tool_call_type */
	struct hr_tavus_tool_function function;
};

struct hr_tavus_transcript_item {
	enum hr_presence st;
	struct hr_enumv role;       /* enum hr_tavus_transcript_role */
	struct hr_jsonv content;    /* text; null with tool_calls; or content parts */
	struct hr_list tool_calls;  /* of struct hr_tavus_tool_call (assistant items) */
	struct hr_str tool_call_id; /* tool items: the call they answer */
	struct hr_str name;         /* tool items: the function's name, when sent */
	struct hr_timev timestamp;  /* ISO string or epoch seconds */
	struct hr_num seconds_from_start;
	struct hr_num duration;
	struct hr_str inference_id;
};

struct hr_tavus_transcription_ready_props {
	enum hr_presence st;
	struct hr_str replica_id;
	struct hr_list transcript; /* of struct hr_tavus_transcript_item */
};

struct hr_tavus_transcription_ready {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_transcription_ready_props properties;
};

struct hr_tavus_recording_ready_props {
	enum hr_presence st;
	struct hr_str bucket_name;
	struct hr_str s3_key;
	struct hr_num duration;
	struct hr_enumv storage_provider; /* enum hr_tavus_storage_provider */
	struct hr_str storage_uri;
};

struct hr_tavus_recording_ready {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_recording_ready_props properties;
};

struct hr_tavus_recording_copy_failed_props {
	enum hr_presence st;
	struct hr_str error_message;
};

struct hr_tavus_recording_copy_failed {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_recording_copy_failed_props properties;
};

struct hr_tavus_perception_analysis_props {
	enum hr_presence st;
	struct hr_str analysis;
};

struct hr_tavus_perception_analysis {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_perception_analysis_props properties;
};

struct hr_tavus_perception_unavailable_props {
	enum hr_presence st;
	struct hr_enumv reason; /* enum hr_tavus_perception_reason */
};

struct hr_tavus_perception_unavailable {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_perception_unavailable_props properties;
};

struct hr_tavus_post_call_request {
	enum hr_presence st;
	struct hr_str body; /* a string containing JSON */
};

struct hr_tavus_post_call_action_props {
	enum hr_presence st;
	struct hr_str tool_id;
	struct hr_str tool_name;
	struct hr_enumv status; /* enum hr_tavus_post_call_status */
	struct hr_tavus_post_call_request request;
	struct hr_jsonv response; /* any JSON */
};

struct hr_tavus_post_call_action {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_post_call_action_props properties;
};

struct hr_tavus_objective_props {
	enum hr_presence st;
	struct hr_str objective_name;
	struct hr_jsonv output_variables; /* values are strings or arrays: kept as JSON */
};

/* Envelope presence differs: only event_type and conversation_id are required. */
struct hr_tavus_objective_completed {
	enum hr_presence st;
	struct hr_tavus_envelope env;
	struct hr_tavus_objective_props properties;
	struct hr_tavus_objective_props data; /* older format: the same fields under `data` */
};

/* tavus.unknown: guardrails, forwarded in-call events, future callbacks. */
struct hr_tavus_unknown {
	enum hr_presence st;
	struct hr_tavus_envelope env; /* every member optional */
	struct hr_jsonv properties;
};

/* ---- PailFlow ---- */

struct hr_pailflow_question_assessment {
	enum hr_presence st;
	struct hr_str question;
	struct hr_str answer;
	struct hr_num score;
	struct hr_str notes;
};

struct hr_pailflow_insights {
	enum hr_presence st;
	struct hr_str summary;
	struct hr_num overall_score; /* 8 or 8.0 */
	struct hr_jsonv strengths;   /* array of strings */
	struct hr_jsonv weaknesses;  /* array of strings */
	struct hr_jsonv competency_scores;
	struct hr_list question_assessments; /* of struct hr_pailflow_question_assessment */
};

struct hr_pailflow_session_complete {
	enum hr_presence st;
	struct hr_str event;         /* const "session_complete" */
	struct hr_str transcript_id; /* null on the bot path */
	struct hr_str room_id;
	struct hr_str room_name;
	struct hr_num
	    duration_seconds; /* may be null; end_ts - start_ts of Daily's, a fraction too */
	struct hr_str transcript_text;
	struct hr_str summary;
	struct hr_enumv exit_reason;          /* enum hr_pailflow_exit_reason */
	struct hr_pailflow_insights insights; /* omitted when insight generation is off or failed */
	struct hr_str insights_error;
};

struct hr_pailflow_bot_join_failed {
	enum hr_presence st;
	struct hr_str event_type; /* const "bot_join_failed"; other names are pailflow.unknown */
	struct hr_str workflow_thread_id;
	struct hr_str room_url;
	struct hr_enumv error_type; /* enum hr_pailflow_join_error */
	struct hr_str error_message;
	struct hr_timev timestamp;      /* "+00:00" offset */
	struct hr_num duration_seconds; /* seconds; a fraction too (SPEC: integer) */
};

/*
 * pailflow.unknown: an event name seed 000 does not document (bot_joined,
 * bot_left...). Whatever of PailFlow's keys is there correlates it by room.
 */
struct hr_pailflow_unknown {
	enum hr_presence st;
	struct hr_str event;      /* the session_complete family's key ... */
	struct hr_str event_type; /* ... or the bot_join_failed family's */
	struct hr_str workflow_thread_id;
	struct hr_str room_url;
	struct hr_str room_name;
	struct hr_str room_id;
	struct hr_timev timestamp;
};

/* ---- AgentHuman ---- */

struct hr_agenthuman_avatar {
	enum hr_presence st;
	struct hr_str avatar_id;
	struct hr_str name;
	struct hr_str url;
};

struct hr_agenthuman_daily_room {
	enum hr_presence st;
	struct hr_str url;
	struct hr_str name;
	struct hr_str token;
	struct hr_jsonv exp; /* type not stated by the vendor */
};

struct hr_agenthuman_session {
	enum hr_presence st;
	struct hr_str session_id;
	struct hr_agenthuman_avatar avatar;
	struct hr_enumv session_type; /* enum hr_agenthuman_session_type */
	struct hr_enumv status;       /* as received; the summary derives it from the timestamps */
	struct hr_timev started_at;
	struct hr_timev ended_at;
	struct hr_timev created_at;
	struct hr_timev expiration;
	struct hr_num duration;
	struct hr_str access_token;
	struct hr_agenthuman_daily_room daily_room;
	struct hr_jsonv metadata;
};

/* agenthuman.unknown: a sess_ id without the session object around it (a
 * wrapped REST answer, a future webhook). */
struct hr_agenthuman_unknown_session {
	enum hr_presence st;
	struct hr_str session_id;
};

struct hr_agenthuman_unknown {
	enum hr_presence st;
	struct hr_str event;
	struct hr_str event_type;
	struct hr_agenthuman_unknown_session session; /* {success, session{...}} answers */
	struct hr_str session_id;
	struct hr_enumv status; /* enum hr_agenthuman_status */
};

#endif
