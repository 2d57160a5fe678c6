/*
 * kinds_daily.h - the typed C structs of Daily.co's webhook events
 * (docs/events.md "Daily"), decoded by the tables of src/model/kinds_daily.c.
 *
 * Every event is the envelope {version, type, id, payload, event_ts}; the
 * kind is "daily." + type. Daily's reference marks every payload field
 * optional, and several families share one payload struct (a field a kind
 * does not send stays absent). Times are Unix seconds that may carry a
 * fraction or, in the dial-out examples, arrive as a string of digits
 * (HR_T_EPOCH); counts and durations are numbers (HR_T_NUM), since Daily
 * documents several as floats.
 */
#ifndef HR_KINDS_DAILY_H
#define HR_KINDS_DAILY_H

#include <stdbool.h>

#include "hr/schema.h"

/* The envelope every Daily struct embeds first, as `env`. */
struct hr_daily_envelope {
	struct hr_str version;    /* semantic version, "1.0.0" */
	struct hr_str type;       /* "meeting.started"; the kind is "daily." + type */
	struct hr_str id;         /* this event's id, kept across retries: the dedup key */
	struct hr_timev event_ts; /* when the webhook was sent (seconds) */
};

/* meeting.started, meeting.ended */
struct hr_daily_meeting_payload {
	enum hr_presence st;
	struct hr_timev start_ts;
	struct hr_timev end_ts; /* meeting.ended */
	struct hr_str meeting_id;
	struct hr_str room;
};

struct hr_daily_permissions {
	enum hr_presence st;
	struct hr_bool has_presence; /* JSON hasPresence */
	struct hr_jsonv can_send;    /* canSend: array of strings, or a boolean */
	struct hr_jsonv can_receive; /* canReceive: an object ({"base": true}) */
	struct hr_jsonv can_admin;   /* canAdmin: array of strings, or a boolean */
};

/* participant.* and waiting-participant.* */
struct hr_daily_participant_payload {
	enum hr_presence st;
	struct hr_timev joined_at;
	struct hr_num duration;   /* .left: seconds in the call */
	struct hr_str session_id; /* the participant's id in this meeting */
	struct hr_str room;
	struct hr_str user_id;
	struct hr_str user_name;
	struct hr_bool owner;
	struct hr_timev will_eject_at;
	struct hr_daily_permissions permissions;
};

/* recording.started, recording.ready-to-download, recording.error */
struct hr_daily_recording_payload {
	enum hr_presence st;
	struct hr_str recording_id; /* not in .error */
	struct hr_str room_name;    /* not in .started */
	struct hr_str action;       /* .started/.error */
	struct hr_jsonv layout;     /* .started */
	struct hr_str started_by;   /* .started: participant id */
	struct hr_str instance_id;  /* .started/.error */
	struct hr_timev start_ts;
	struct hr_str type;   /* .ready: cloud, cloud-audio-only, raw-tracks; open */
	struct hr_str status; /* .ready: finished */
	struct hr_num max_participants;
	struct hr_num duration;
	struct hr_str s3_key;
	struct hr_jsonv tracks;    /* raw-tracks: [{type, s3Key, size}], may be null */
	struct hr_str error_msg;   /* .error */
	struct hr_timev timestamp; /* .error */
};

/* transcript.started, transcript.ready-to-download, transcript.error */
struct hr_daily_transcript_payload {
	enum hr_presence st;
	struct hr_str id; /* the transcript's id */
	struct hr_str instance_id;
	struct hr_str room_id;        /* the room's id (not its name) */
	struct hr_str room_name;      /* sent by some versions; names the room */
	struct hr_str mtg_session_id; /* the meeting (Daily's meeting session) */
	struct hr_str status;
	struct hr_num duration;
	struct hr_jsonv info;       /* .started/.error: more about the transcription */
	struct hr_jsonv out_params; /* .ready: where the output is */
	struct hr_jsonv error;      /* .error */
};

/* streaming.* */
struct hr_daily_streaming_payload {
	enum hr_presence st;
	struct hr_timev timestamp;
	struct hr_str instance_id;
	struct hr_str domain_id;
	struct hr_jsonv layout;
	struct hr_str error_message; /* .error */
	struct hr_str room_name;     /* .error */
};

/* dialin.* and dialout.* */
struct hr_daily_dial_payload {
	enum hr_presence st;
	struct hr_timev timestamp; /* documented integer; a string in the examples */
	struct hr_str session_id;
	struct hr_str domain_id;
	struct hr_str room;
	struct hr_str sip_from;    /* dialin */
	struct hr_str user_id;     /* dialout, if given when dialing */
	struct hr_str destination; /* dialout: E.164 number or sip: URI */
	struct hr_str origin;      /* dialout */
	struct hr_str caller_id;   /* dialout */
};

/* batch-processor.job-finished, batch-processor.error: no room, no meeting */
struct hr_daily_batch_payload {
	enum hr_presence st;
	struct hr_str id; /* the job's id */
	struct hr_str preset;
	struct hr_str status;
	struct hr_jsonv input; /* {sourceType, uri | recordingId, language} */
	struct hr_jsonv output;
	struct hr_jsonv error;
};

#define HR_DAILY_EVENT(name)                                                                       \
	struct hr_daily_##name {                                                                   \
		enum hr_presence st;                                                               \
		struct hr_daily_envelope env;                                                      \
		struct hr_daily_##name##_payload payload;                                          \
	}
HR_DAILY_EVENT(meeting);
HR_DAILY_EVENT(participant);
HR_DAILY_EVENT(recording);
HR_DAILY_EVENT(transcript);
HR_DAILY_EVENT(streaming);
HR_DAILY_EVENT(dial);
HR_DAILY_EVENT(batch);
#undef HR_DAILY_EVENT

/* daily.unknown: a Daily envelope of a type we do not know; every member optional. */
struct hr_daily_unknown_payload { /* only the room keys every family uses */
	enum hr_presence st;
	struct hr_str room, room_name, meeting_id, mtg_session_id;
};

struct hr_daily_unknown {
	enum hr_presence st;
	struct hr_daily_envelope env;
	struct hr_daily_unknown_payload payload;
};

/* The descriptor of a Daily kind (HR_KIND_DAILY_*), NULL for any other. */
const struct hr_kind_desc *hr_daily_kind_desc(enum hr_kind);

/* Is `root` (borrowed) Daily's webhook verification probe, {"test":"test"}? */
bool hr_daily_is_probe(const json_t *root);

#endif
