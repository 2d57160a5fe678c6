/*
 * kinds_daily.c - the descriptor tables of Daily.co's webhook events
 * (docs/events.md "Daily", from docs.daily.co/reference/rest-api/webhooks).
 *
 * Daily sends one envelope for every event and a payload per family. Its
 * reference marks every payload field optional, so only the envelope's
 * type, id and payload are required here, and payload fields accept null
 * (as absent): a Daily body refused for a field we were strict about would
 * count towards Daily's circuit breaker, which stops all delivery after
 * three failures. The roles put each event on its room's timeline: the room
 * is the session key, the meeting and the time inside it place the event
 * among the meetings of a reused room, and the facts are what a room's view
 * shows (rooms.c).
 */
#include <stdbool.h>
#include <string.h>

#include "hr/kinds_daily.h"
#include "hr/schema.h"

#include "kinds_int.h"

#define OPT NULLABLE /* documented optional: absent or null are both "not sent" */

/* ---- the envelope ---- */

// clang-format off
#define ENVELOPE(T, sub)                                                                       \
	F("version", HR_T_STR, T, env.version, 0, HR_R_NONE),                                  \
	F("type", HR_T_STR, T, env.type, REQ, HR_R_EVENT_TYPE),                                 \
	F("id", HR_T_STR, T, env.id, REQ, HR_R_NONE),                                          \
	F("event_ts", HR_T_EPOCH, T, env.event_ts, 0, HR_R_OCCURRED),                          \
	FS("payload", HR_T_OBJECT, T, payload, REQ, sub)
// clang-format on

/*
 * The schema `name##_schema` of struct hr_daily_<family> whose payload table
 * is `name##_payload_fields`. The envelope comes first: a payload time with
 * the OCCURRED role then wins over event_ts (when the webhook was sent).
 */
// clang-format off
#define DAILY_KIND(name, family)                                                               \
	static const struct hr_schema name##_payload_schema = { "hr_daily_" #family "_payload", \
		sizeof(struct hr_daily_##family##_payload), name##_payload_fields, false };        \
	static const struct hr_field name##_fields[] = {                                       \
		ENVELOPE(struct hr_daily_##family, &name##_payload_schema), END };             \
	static const struct hr_schema name##_schema = { "hr_daily_" #family,                   \
		sizeof(struct hr_daily_##family), name##_fields, false }
// clang-format on

/* ---- meeting.started / meeting.ended ---- */

#define P struct hr_daily_meeting_payload
static const struct hr_field meeting_started_payload_fields[] = {
	F("start_ts", HR_T_EPOCH, P, start_ts, OPT, HR_R_OCCURRED),
	F("meeting_id", HR_T_STR, P, meeting_id, OPT, HR_R_MEETING_ID),
	F("room", HR_T_STR, P, room, OPT, HR_R_SESSION_KEY),
	END,
};
static const struct hr_field meeting_ended_payload_fields[] = {
	F("start_ts", HR_T_EPOCH, P, start_ts, OPT, HR_R_MEETING_AT),
	F("end_ts", HR_T_EPOCH, P, end_ts, OPT, HR_R_OCCURRED),
	F("meeting_id", HR_T_STR, P, meeting_id, OPT, HR_R_MEETING_ID),
	F("room", HR_T_STR, P, room, OPT, HR_R_SESSION_KEY),
	END,
};
#undef P
DAILY_KIND(meeting_started, meeting);
DAILY_KIND(meeting_ended, meeting);

/* ---- participant.* / waiting-participant.* ---- */

/* Daily's JSON names are camelCase here (its example body; has_presence and the
 * like are daily-ruby's attribute names, not keys). */
#define P struct hr_daily_permissions
static const struct hr_field permissions_fields[] = {
	F("hasPresence", HR_T_BOOL, P, has_presence, OPT, HR_R_NONE),
	F("canSend", HR_T_JSON, P, can_send, OPT, HR_R_NONE),
	F("canReceive", HR_T_JSON, P, can_receive, OPT, HR_R_NONE),
	F("canAdmin", HR_T_JSON, P, can_admin, OPT, HR_R_NONE),
	END,
};
#undef P
static const struct hr_schema permissions_schema = { "hr_daily_permissions",
	sizeof(struct hr_daily_permissions), permissions_fields, false };

/* A participant joins at joined_at; it left when the webhook was sent (event_ts). */
// clang-format off
#define PARTICIPANT(joined_role)                                                               \
	F("joined_at", HR_T_EPOCH, P, joined_at, OPT, joined_role),                            \
	F("duration", HR_T_NUM, P, duration, OPT, HR_R_NONE),                                  \
	F("session_id", HR_T_STR, P, session_id, OPT, HR_R_NONE),                              \
	F("room", HR_T_STR, P, room, OPT, HR_R_SESSION_KEY),                                   \
	F("user_id", HR_T_STR, P, user_id, OPT, HR_R_NONE),                                    \
	F("user_name", HR_T_STR, P, user_name, OPT, HR_R_NONE),                                \
	F("owner", HR_T_BOOL, P, owner, OPT, HR_R_NONE),                                       \
	F("will_eject_at", HR_T_EPOCH, P, will_eject_at, OPT, HR_R_NONE),                      \
	FS("permissions", HR_T_OBJECT, P, permissions, OPT, &permissions_schema),              \
	END
// clang-format on
#define P struct hr_daily_participant_payload
static const struct hr_field participant_joined_payload_fields[] = { PARTICIPANT(HR_R_OCCURRED) };
static const struct hr_field participant_left_payload_fields[] = { PARTICIPANT(HR_R_MEETING_AT) };
#undef P
DAILY_KIND(participant_joined, participant);
DAILY_KIND(participant_left, participant);

/* ---- recording.* (one payload struct; each kind sends some of it) ---- */

#define P struct hr_daily_recording_payload
static const struct hr_field recording_payload_fields[] = {
	F("recording_id", HR_T_STR, P, recording_id, OPT, HR_R_RECORDING_ID),
	F("room_name", HR_T_STR, P, room_name, OPT, HR_R_SESSION_KEY),
	F("action", HR_T_STR, P, action, OPT, HR_R_NONE),
	F("layout", HR_T_JSON, P, layout, OPT, HR_R_NONE),
	F("started_by", HR_T_STR, P, started_by, OPT, HR_R_NONE),
	F("instance_id", HR_T_STR, P, instance_id, OPT, HR_R_RECORDING_INSTANCE),
	F("start_ts", HR_T_EPOCH, P, start_ts, OPT, HR_R_MEETING_AT),
	F("type", HR_T_STR, P, type, OPT, HR_R_NONE),
	F("status", HR_T_STR, P, status, OPT, HR_R_NONE),
	F("max_participants", HR_T_NUM, P, max_participants, OPT, HR_R_NONE),
	F("duration", HR_T_NUM, P, duration, OPT, HR_R_NONE),
	F("s3_key", HR_T_STR, P, s3_key, OPT, HR_R_NONE),
	F("tracks", HR_T_JSON, P, tracks, OPT, HR_R_NONE),
	F("error_msg", HR_T_STR, P, error_msg, OPT, HR_R_NONE),
	F("timestamp", HR_T_EPOCH, P, timestamp, OPT, HR_R_MEETING_AT),
	END,
};
#undef P
DAILY_KIND(recording, recording);

/* ---- transcript.*: the meeting is mtg_session_id; room_id is an id, not a name ---- */

#define P struct hr_daily_transcript_payload
static const struct hr_field transcript_payload_fields[] = {
	F("id", HR_T_STR, P, id, OPT, HR_R_NONE),
	F("instance_id", HR_T_STR, P, instance_id, OPT, HR_R_NONE),
	F("room_id", HR_T_STR, P, room_id, OPT, HR_R_NONE),
	F("room_name", HR_T_STR, P, room_name, OPT, HR_R_SESSION_KEY),
	F("mtg_session_id", HR_T_STR, P, mtg_session_id, OPT, HR_R_MEETING_ID),
	F("status", HR_T_STR, P, status, OPT, HR_R_NONE),
	F("duration", HR_T_NUM, P, duration, OPT, HR_R_NONE),
	F("info", HR_T_JSON, P, info, OPT, HR_R_NONE),
	F("out_params", HR_T_JSON, P, out_params, OPT, HR_R_NONE),
	F("error", HR_T_JSON, P, error, OPT, HR_R_NONE),
	END,
};
#undef P
DAILY_KIND(transcript, transcript);

/* ---- streaming.* ---- */

#define P struct hr_daily_streaming_payload
static const struct hr_field streaming_payload_fields[] = {
	F("timestamp", HR_T_EPOCH, P, timestamp, OPT, HR_R_MEETING_AT),
	F("instance_id", HR_T_STR, P, instance_id, OPT, HR_R_NONE),
	F("domain_id", HR_T_STR, P, domain_id, OPT, HR_R_NONE),
	F("layout", HR_T_JSON, P, layout, OPT, HR_R_NONE),
	F("error_message", HR_T_STR, P, error_message, OPT, HR_R_NONE),
	F("room_name", HR_T_STR, P, room_name, OPT, HR_R_SESSION_KEY),
	END,
};
#undef P
DAILY_KIND(streaming, streaming);

/* ---- dialin.* / dialout.* ---- */

#define P struct hr_daily_dial_payload
static const struct hr_field dial_payload_fields[] = {
	F("timestamp", HR_T_EPOCH, P, timestamp, OPT, HR_R_MEETING_AT),
	F("session_id", HR_T_STR, P, session_id, OPT, HR_R_NONE),
	F("domain_id", HR_T_STR, P, domain_id, OPT, HR_R_NONE),
	F("room", HR_T_STR, P, room, OPT, HR_R_SESSION_KEY),
	F("sip_from", HR_T_STR, P, sip_from, OPT, HR_R_NONE),
	F("user_id", HR_T_STR, P, user_id, OPT, HR_R_NONE),
	F("destination", HR_T_STR, P, destination, OPT, HR_R_NONE),
	F("origin", HR_T_STR, P, origin, OPT, HR_R_NONE),
	F("caller_id", HR_T_STR, P, caller_id, OPT, HR_R_NONE),
	END,
};
#undef P
DAILY_KIND(dial, dial);

/* ---- batch-processor.*: a job, not a room ---- */

#define P struct hr_daily_batch_payload
static const struct hr_field batch_payload_fields[] = {
	F("id", HR_T_STR, P, id, OPT, HR_R_NONE),
	F("preset", HR_T_STR, P, preset, OPT, HR_R_NONE),
	F("status", HR_T_STR, P, status, OPT, HR_R_NONE),
	F("input", HR_T_JSON, P, input, OPT, HR_R_NONE),
	F("output", HR_T_JSON, P, output, OPT, HR_R_NONE),
	F("error", HR_T_JSON, P, error, OPT, HR_R_NONE),
	END,
};
#undef P
DAILY_KIND(batch, batch);

/*
 * daily.unknown: a type we do not know yet. Lenient throughout; the payload
 * is read only for the room keys every family uses, so a new event type
 * still lands on its room's timeline (the whole payload stays in the body).
 */
#define P struct hr_daily_unknown_payload
static const struct hr_field unknown_payload_fields[] = {
	F("room", HR_T_STR, P, room, 0, HR_R_SESSION_KEY),
	F("room_name", HR_T_STR, P, room_name, 0, HR_R_SESSION_KEY),
	F("meeting_id", HR_T_STR, P, meeting_id, 0, HR_R_MEETING_ID),
	F("mtg_session_id", HR_T_STR, P, mtg_session_id, 0, HR_R_MEETING_ID),
	END,
};
#undef P
static const struct hr_schema unknown_payload_schema = { "hr_daily_unknown_payload",
	sizeof(struct hr_daily_unknown_payload), unknown_payload_fields, true };

#define T struct hr_daily_unknown
static const struct hr_field unknown_fields[] = {
	F("version", HR_T_STR, T, env.version, 0, HR_R_NONE),
	F("type", HR_T_STR, T, env.type, 0, HR_R_EVENT_TYPE),
	F("id", HR_T_STR, T, env.id, 0, HR_R_NONE),
	F("event_ts", HR_T_EPOCH, T, env.event_ts, 0, HR_R_OCCURRED),
	FS("payload", HR_T_OBJECT, T, payload, NULLABLE, &unknown_payload_schema),
	END,
};
#undef T
static const struct hr_schema unknown_schema = { "hr_daily_unknown",
	sizeof(struct hr_daily_unknown), unknown_fields, true };

/* ---- room facts: what a room's view shows of each event (rooms.c) ---- */

static const char *const participant_facts[] = { "/payload/session_id", "/payload/user_id",
	"/payload/user_name", "/payload/owner", "/payload/duration", NULL };
static const char *const recording_facts[] = { "/payload/status", "/payload/type",
	"/payload/duration", "/payload/s3_key", "/payload/max_participants", "/payload/error_msg",
	"/payload/instance_id", NULL };
static const char *const transcript_facts[] = { "/payload/id", "/payload/status",
	"/payload/duration", "/payload/error", "/payload/room_id", NULL };

/* ---- kinds, indexed from HR_KIND_DAILY_UNKNOWN ---- */

#define DAILY HR_PROVIDER_DAILY
#define ROOM  HR_SCOPE_ROOM

// clang-format off
#define KIND(k, name, schema, state, role, rstate, facts) \
	[k - HR_KIND_DAILY_UNKNOWN] = { k, name, DAILY, ROOM, schema, NULL, state, NULL, "id", \
		role, rstate, facts, HR_BYTES_KEYED }
// clang-format on

static const struct hr_kind_desc daily_kinds[HR_KIND_COUNT - HR_KIND_DAILY_UNKNOWN] = {
	KIND(HR_KIND_DAILY_UNKNOWN, "daily.unknown", &unknown_schema, HR_SESS_NONE, HR_ROOM_NONE,
	    NULL, NULL),
	KIND(HR_KIND_DAILY_MEETING_STARTED, "daily.meeting.started", &meeting_started_schema,
	    HR_SESS_STARTED, HR_ROOM_MEETING_START, "started", NULL),
	KIND(HR_KIND_DAILY_MEETING_ENDED, "daily.meeting.ended", &meeting_ended_schema,
	    HR_SESS_ENDED, HR_ROOM_MEETING_END, "ended", NULL),
	KIND(HR_KIND_DAILY_PARTICIPANT_JOINED, "daily.participant.joined",
	    &participant_joined_schema, HR_SESS_STARTED, HR_ROOM_PARTICIPANT, "joined",
	    participant_facts),
	KIND(HR_KIND_DAILY_PARTICIPANT_LEFT, "daily.participant.left", &participant_left_schema,
	    HR_SESS_NONE, HR_ROOM_PARTICIPANT, "left", participant_facts),
	KIND(HR_KIND_DAILY_WAITING_PARTICIPANT_JOINED, "daily.waiting-participant.joined",
	    &participant_joined_schema, HR_SESS_NONE, HR_ROOM_PARTICIPANT, "waiting",
	    participant_facts),
	KIND(HR_KIND_DAILY_WAITING_PARTICIPANT_LEFT, "daily.waiting-participant.left",
	    &participant_left_schema, HR_SESS_NONE, HR_ROOM_PARTICIPANT, "waiting-left",
	    participant_facts),
	KIND(HR_KIND_DAILY_RECORDING_STARTED, "daily.recording.started", &recording_schema,
	    HR_SESS_NONE, HR_ROOM_RECORDING, "started", recording_facts),
	KIND(HR_KIND_DAILY_RECORDING_READY, "daily.recording.ready-to-download", &recording_schema,
	    HR_SESS_NONE, HR_ROOM_RECORDING, "ready", recording_facts),
	KIND(HR_KIND_DAILY_RECORDING_ERROR, "daily.recording.error", &recording_schema,
	    HR_SESS_NONE, HR_ROOM_RECORDING, "error", recording_facts),
	KIND(HR_KIND_DAILY_TRANSCRIPT_STARTED, "daily.transcript.started", &transcript_schema,
	    HR_SESS_NONE, HR_ROOM_TRANSCRIPT, "started", transcript_facts),
	KIND(HR_KIND_DAILY_TRANSCRIPT_READY, "daily.transcript.ready-to-download",
	    &transcript_schema, HR_SESS_NONE, HR_ROOM_TRANSCRIPT, "ready", transcript_facts),
	KIND(HR_KIND_DAILY_TRANSCRIPT_ERROR, "daily.transcript.error", &transcript_schema,
	    HR_SESS_NONE, HR_ROOM_TRANSCRIPT, "error", transcript_facts),
	KIND(HR_KIND_DAILY_STREAMING_STARTED, "daily.streaming.started", &streaming_schema,
	    HR_SESS_NONE, HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_STREAMING_UPDATED, "daily.streaming.updated", &streaming_schema,
	    HR_SESS_NONE, HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_STREAMING_ENDED, "daily.streaming.ended", &streaming_schema,
	    HR_SESS_NONE, HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_STREAMING_ERROR, "daily.streaming.error", &streaming_schema,
	    HR_SESS_NONE, HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALIN_CONNECTED, "daily.dialin.connected", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALIN_STOPPED, "daily.dialin.stopped", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALIN_WARNING, "daily.dialin.warning", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALIN_ERROR, "daily.dialin.error", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALOUT_CONNECTED, "daily.dialout.connected", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALOUT_ANSWERED, "daily.dialout.answered", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALOUT_STOPPED, "daily.dialout.stopped", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALOUT_WARNING, "daily.dialout.warning", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_DIALOUT_ERROR, "daily.dialout.error", &dial_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_BATCH_JOB_FINISHED, "daily.batch-processor.job-finished", &batch_schema,
	    HR_SESS_NONE, HR_ROOM_NONE, NULL, NULL),
	KIND(HR_KIND_DAILY_BATCH_ERROR, "daily.batch-processor.error", &batch_schema, HR_SESS_NONE,
	    HR_ROOM_NONE, NULL, NULL),
};

const struct hr_kind_desc *
hr_daily_kind_desc(enum hr_kind kind)
{
	if (kind < HR_KIND_DAILY_UNKNOWN || kind >= HR_KIND_COUNT)
		return NULL;
	return &daily_kinds[kind - HR_KIND_DAILY_UNKNOWN];
}

bool
hr_daily_is_probe(const json_t *root)
{
	const char *v = json_string_value(json_object_get(root, "test"));

	return json_is_object(root) && json_object_size(root) == 1 && v != NULL &&
	    strcmp(v, "test") == 0;
}
