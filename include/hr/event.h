/*
 * event.h - one inbound webhook body, parsed, classified and decoded.
 *
 * hr_event_parse() is the whole validation path of an ingest request:
 * bounded JSON parse (jansson), classification (SPEC.md section 7), decode
 * through the kind's descriptor table into its typed struct, and the summary
 * the store indexes (kind, event_type, session key, occurred_at, session
 * attributes). It runs on the HTTP thread so the writer thread only writes.
 */
#ifndef HR_EVENT_H
#define HR_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "hr/common.h"

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

/* A timestamp as received plus its RFC 3339 UTC normalisation. */
struct hr_time {
	bool valid;    /* false: absent, null or unparseable (raw kept if a string) */
	int64_t us;    /* microseconds since the Unix epoch, UTC */
	char norm[32]; /* "2025-07-11T06:45:47.472000Z" */
	char raw[48];  /* original text, or the number as printed; truncated if longer */
};

/*
 * What the store indexes and the API filters on. Pointers are borrowed from
 * the event's JSON tree (or point into key_buf) and live as long as the event.
 */
struct hr_summary {
	const char *event_type; /* event_type / event as received; NULL for flat bodies */
	const char *subtype;    /* video/replica: completed|error|other; agenthuman: status */
	enum hr_scope scope;
	const char *session_key;       /* correlation key (SPEC.md section 2); NULL if none */
	char key_buf[256];             /* storage for a derived key (room_url's last segment) */
	struct hr_time occurred;       /* the body's own time, if it has one */
	enum hr_session_status status; /* the state this event implies for its session */
	/* session attributes users ask about; NULL / has_* false when absent */
	bool has_duration;
	double duration;             /* seconds */
	const char *shutdown_reason; /* Tavus system.shutdown */
	const char *exit_reason;     /* PailFlow session_complete */
	const char *error_type;      /* PailFlow bot_join_failed error_type, Tavus error text */
	bool has_score;
	double overall_score; /* PailFlow insights.overall_score */
	/*
	 * One room, one timeline (docs/api.md "Rooms"). `room` is the Daily room
	 * the event is about: its session key when the scope is room, else a link
	 * (AgentHuman daily_room.name) while the event keeps its own session.
	 * `meeting_id` names one meeting of a reused room when the body says which
	 * (Daily meeting_id / mtg_session_id, PailFlow room_id); `meeting_at` is a
	 * time inside that meeting (a participant's joined_at, a recording's
	 * start), used to place events that name no meeting; `recording_id` links
	 * recording events that name no room to the ones that do.
	 */
	const char *room;
	char room_buf[256]; /* storage for a derived room (a URL's last segment) */
	const char *meeting_id;
	struct hr_time meeting_at;
	const char *recording_id;
};

struct hr_kind_desc; /* schema.h */

struct hr_event {
	enum hr_kind kind;
	enum hr_provider provider;
	const struct hr_kind_desc *desc; /* NULL for unknown kinds without a table */
	json_t *root;                    /* owned reference to the parsed body */
	void *typed;                     /* owned; the kind's struct, NULL if no table */
	struct hr_summary sum;
};

/* Bounds checked while parsing; 0 means "no bound" only in tests. */
struct hr_json_limits {
	size_t max_depth;       /* nesting of arrays/objects */
	size_t max_object_keys; /* keys in any one object */
	size_t max_string;      /* bytes in any one string */
	size_t max_values;      /* values in the whole body (object keys are not values) */
};

/* One validation failure of a known kind: a JSON pointer and why. */
struct hr_verror {
	char pointer[128];
	char detail[128];
};

#define HR_VERRORS_MAX 16

/* Why a body was refused; `status` says which HTTP answer it becomes. */
struct hr_parse_error {
	enum hr_status status; /* HR_EPARSE 400, HR_ETOOBIG 413, HR_EINVAL 422 */
	char detail[256];      /* human sentence; for 400 it names line/column/position */
	int line, column;      /* HR_EPARSE: where jansson stopped (1-based), else 0 */
	size_t position;       /* HR_EPARSE: byte offset */
	enum hr_kind kind;     /* HR_EINVAL: the kind whose validation failed */
	size_t nerrors;        /* HR_EINVAL: entries used in errors[] */
	struct hr_verror errors[HR_VERRORS_MAX];
};

/*
 * Parse `body` (borrowed, `len` bytes, need not be NUL-terminated) under
 * `lim`, classify it (restricted to `hint`'s rules unless HR_PROVIDER_AUTO)
 * and decode it. On HR_OK `out` owns its tree and typed struct; release with
 * hr_event_clear(). On failure `out` is left cleared and `perr` says why.
 * A valid JSON body of no known kind is HR_OK with kind unknown/tavus.unknown.
 */
int hr_event_parse(const char *body, size_t len, enum hr_provider hint,
    const struct hr_json_limits *lim, struct hr_event *out, struct hr_parse_error *perr) HR_WUR;
void hr_event_clear(struct hr_event *); /* NULL and cleared events are fine */

/*
 * The event a refused body becomes when an operator accepts it after all
 * (POST /v1/rejections/{id}/accept): of `kind` (as it was classified when
 * refused) under `provider` (HR_PROVIDER_AUTO: the kind's), its summary
 * filled from whatever fields do decode, and no typed struct (it does not
 * validate). A body that is not JSON is kind unknown without a tree.
 * HR_OK or HR_ENOMEM; release with hr_event_clear().
 */
int hr_event_accept(const char *body, size_t len, enum hr_kind kind, enum hr_provider provider,
    struct hr_event *out) HR_WUR;

/* The typed struct as JSON (field names as in the payload, timestamps with
 * their normalisation); new reference, NULL for kinds without a table. */
json_t *hr_event_typed_json(const struct hr_event *);

/*
 * The kind's room facts (struct hr_kind_desc.facts: a participant's name, a
 * recording's status...) as compact JSON text (new, free()), NULL when the
 * kind lists none or the body has none of them. A value whose JSON text is
 * longer than HR_FACT_MAX is left out: the whole body is kept anyway.
 */
#define HR_FACT_MAX 1024
char *hr_event_facts_json(const struct hr_event *);

const char *hr_kind_name(enum hr_kind);  /* "tavus.video", ... */
int hr_kind_from_name(const char *name); /* -1 when unknown */
enum hr_provider hr_kind_provider(enum hr_kind);
const char *hr_provider_name(enum hr_provider); /* "auto"/"tavus"/"pailflow"/"agenthuman"/"daily" */
int hr_provider_from_name(const char *name);    /* -1 when unknown */
const char *hr_scope_name(enum hr_scope);       /* "conversation", "video", ... "" for none */
const char *hr_session_status_name(enum hr_session_status); /* "created", ... NULL for none */
int hr_session_status_from_name(const char *);              /* -1 when unknown */

#endif
