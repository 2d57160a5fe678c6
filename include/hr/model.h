/*
 * model.h - the vocabulary every layer above the base speaks: providers,
 * event kinds (SPEC.md), session scopes and states, and their names.
 *
 * Plain enums and name lookups (kinds.c), no JSON library: what parses and
 * decodes a body is event.h's.
 */
#ifndef HR_MODEL_H
#define HR_MODEL_H

#include <stddef.h>
#include <stdint.h>

enum hr_provider {
	HR_PROVIDER_AUTO = 0, /* as a source setting: classify; as an event: none matched */
	HR_PROVIDER_TAVUS,
	HR_PROVIDER_PAILFLOW,
	HR_PROVIDER_AGENTHUMAN,
	HR_PROVIDER_DAILY, /* Daily.co room webhooks (kinds_daily.c) */
};

/* Append-only. Names (hr_kind_name) are the public kind strings of SPEC.md. */
enum hr_kind {
	HR_KIND_UNKNOWN = 0,
	HR_KIND_TAVUS_UNKNOWN,
	HR_KIND_TAVUS_VIDEO,
	HR_KIND_TAVUS_REPLICA_TRAINING,
	HR_KIND_TAVUS_REPLICA_JOINED,
	HR_KIND_TAVUS_SHUTDOWN,
	HR_KIND_TAVUS_TRANSCRIPTION_READY,
	HR_KIND_TAVUS_RECORDING_READY,
	HR_KIND_TAVUS_RECORDING_COPY_FAILED,
	HR_KIND_TAVUS_PERCEPTION_ANALYSIS,
	HR_KIND_TAVUS_PERCEPTION_UNAVAILABLE,
	HR_KIND_TAVUS_POST_CALL_ACTION_EXECUTED,
	HR_KIND_TAVUS_OBJECTIVE_COMPLETED,
	HR_KIND_PAILFLOW_SESSION_COMPLETE,
	HR_KIND_PAILFLOW_BOT_JOIN_FAILED,
	HR_KIND_AGENTHUMAN_SESSION,
	HR_KIND_PAILFLOW_UNKNOWN,   /* a PailFlow event name the seed does not document */
	HR_KIND_AGENTHUMAN_UNKNOWN, /* an AgentHuman body that is not a session object */
	/* Daily.co: "daily." + the envelope's `type` (kinds_daily.c) */
	HR_KIND_DAILY_UNKNOWN, /* a Daily envelope whose type we do not know */
	HR_KIND_DAILY_MEETING_STARTED,
	HR_KIND_DAILY_MEETING_ENDED,
	HR_KIND_DAILY_PARTICIPANT_JOINED,
	HR_KIND_DAILY_PARTICIPANT_LEFT,
	HR_KIND_DAILY_WAITING_PARTICIPANT_JOINED,
	HR_KIND_DAILY_WAITING_PARTICIPANT_LEFT,
	HR_KIND_DAILY_RECORDING_STARTED,
	HR_KIND_DAILY_RECORDING_READY,
	HR_KIND_DAILY_RECORDING_ERROR,
	HR_KIND_DAILY_TRANSCRIPT_STARTED,
	HR_KIND_DAILY_TRANSCRIPT_READY,
	HR_KIND_DAILY_TRANSCRIPT_ERROR,
	HR_KIND_DAILY_STREAMING_STARTED,
	HR_KIND_DAILY_STREAMING_UPDATED,
	HR_KIND_DAILY_STREAMING_ENDED,
	HR_KIND_DAILY_STREAMING_ERROR,
	HR_KIND_DAILY_DIALIN_CONNECTED,
	HR_KIND_DAILY_DIALIN_STOPPED,
	HR_KIND_DAILY_DIALIN_WARNING,
	HR_KIND_DAILY_DIALIN_ERROR,
	HR_KIND_DAILY_DIALOUT_CONNECTED,
	HR_KIND_DAILY_DIALOUT_ANSWERED,
	HR_KIND_DAILY_DIALOUT_STOPPED,
	HR_KIND_DAILY_DIALOUT_WARNING,
	HR_KIND_DAILY_DIALOUT_ERROR,
	HR_KIND_DAILY_BATCH_JOB_FINISHED,
	HR_KIND_DAILY_BATCH_ERROR,
	HR_KIND_COUNT
};

/* What a session key names; keys of different scopes never share a session. */
enum hr_scope {
	HR_SCOPE_NONE = 0,
	HR_SCOPE_CONVERSATION, /* Tavus conversation_id */
	HR_SCOPE_VIDEO,        /* Tavus video_id */
	HR_SCOPE_REPLICA,      /* Tavus replica_id (training) */
	HR_SCOPE_ROOM,       /* a Daily room's name: Daily, PailFlow room_name / room_url segment */
	HR_SCOPE_AGENTHUMAN, /* AgentHuman session_id */
};

/* Ordered: a session's status only moves forward, except ENDED<->FAILED (latest wins). */
enum hr_session_status {
	HR_SESS_NONE = 0, /* the event says nothing about the session's state */
	HR_SESS_CREATED,
	HR_SESS_STARTED,
	HR_SESS_ENDED,
	HR_SESS_FAILED,
};

/* Bounds checked while parsing; 0 means "no bound" only in tests. */
struct hr_json_limits {
	size_t max_depth;       /* nesting of arrays/objects */
	size_t max_object_keys; /* keys in any one object */
	size_t max_string;      /* bytes in any one string */
	size_t max_values;      /* values in the whole body (object keys are not values) */
};

const char *hr_kind_name(enum hr_kind);  /* "tavus.video", ... */
int hr_kind_from_name(const char *name); /* -1 when unknown */
/*
 * The known kinds (bit k: enum hr_kind k) that `pattern`, a kind name or an fnmatch(3)
 * glob of A-Z a-z 0-9 _ . - * ?, names; 0 for none, or for other characters. One rule
 * for a destination's `match` and the API's ?kind=: a pattern that names no kind is a
 * typo to refuse, not a filter that quietly matches nothing.
 */
uint64_t hr_kind_glob_set(const char *pattern);
/* The characters of a name glob (a kind's, a source's): a name's and the wildcards. */
#define HR_NAME_GLOB_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-*?"
enum hr_provider hr_kind_provider(enum hr_kind);
const char *hr_provider_name(enum hr_provider); /* "auto"/"tavus"/"pailflow"/"agenthuman"/"daily" */
int hr_provider_from_name(const char *name);    /* -1 when unknown */
const char *hr_scope_name(enum hr_scope);       /* "conversation", "video", ... "" for none */
const char *hr_session_status_name(enum hr_session_status); /* "created", ... NULL for none */
int hr_session_status_from_name(const char *);              /* -1 when unknown */

#endif
