/*
 * schema.h - descriptor tables for the typed event structs, and the one
 * generic decoder/encoder that reads them.
 *
 * Each event kind of SPEC.md is a `struct hr_kind_desc` whose `schema`
 * lists its fields: JSON key, type, offset into the kind's C struct
 * (kinds.h), presence flags and a role that feeds struct hr_summary. A new
 * field is one table line; no kind has hand-written decoding code.
 */
#ifndef HR_SCHEMA_H
#define HR_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr/event.h"

/* Presence of a decoded value: absent, JSON null, or a value. */
enum hr_presence { HR_ABSENT = 0, HR_NULL, HR_SET };

/* Strings are borrowed from the event's JSON tree. */
struct hr_str {
	enum hr_presence st;
	const char *s;
	size_t len;
};
struct hr_int {
	enum hr_presence st;
	int64_t v;
};
struct hr_num { /* accepts an integer or a real */
	enum hr_presence st;
	double v;
	bool is_int; /* the payload wrote an integer (8, not 8.0) */
	int64_t i;   /* that integer exactly: v rounds past 2^53 */
};
struct hr_bool {
	enum hr_presence st;
	bool v;
};
/* Open enum: a known value has its code, an unknown one code -1; text always kept. */
struct hr_enumv {
	enum hr_presence st;
	int code;
	const char *s;
	size_t len; /* of s, which may hold a NUL (\u0000) */
};
struct hr_timev {
	enum hr_presence st;
	struct hr_time t; /* t.valid false: the text did not parse (kept in t.raw) */
};
struct hr_jsonv { /* any JSON, borrowed from the tree */
	enum hr_presence st;
	json_t *v;
};
struct hr_list { /* array of sub-structs; items owned by the typed struct */
	enum hr_presence st;
	size_t n;
	void *items; /* n * sub->size bytes */
};

enum hr_ftype {
	HR_T_STR,         /* struct hr_str */
	HR_T_INT,         /* struct hr_int; a real with a fraction is a type error */
	HR_T_NUM,         /* struct hr_num */
	HR_T_BOOL,        /* struct hr_bool */
	HR_T_TIME,        /* struct hr_timev from a timestamp string */
	HR_T_TIME_ANY,    /* struct hr_timev from a timestamp string or epoch seconds */
	HR_T_ENUM,        /* struct hr_enumv; `choices` lists the known values */
	HR_T_CONST,       /* struct hr_str that must equal choices[0].name (discriminators) */
	HR_T_JSON,        /* struct hr_jsonv, any JSON type */
	HR_T_OBJECT,      /* embedded struct decoded by `sub`; the field's presence is its st */
	HR_T_ARRAY,       /* struct hr_list of objects decoded by `sub` */
	HR_T_STR_ARRAY,   /* struct hr_jsonv holding an array whose items must be strings */
	HR_T_JSON_OBJECT, /* struct hr_jsonv holding an object of any content */
	HR_T_EPOCH        /* struct hr_timev from Unix seconds: a number (maybe with a
	                     fraction), or a string of one (Daily's dial-out examples) */
};

#define HR_F_REQUIRED 0x1u /* absent is a validation error */
#define HR_F_NULLABLE 0x2u /* JSON null is a valid value */

/* Which struct hr_summary slot a field feeds (at any object depth, not in arrays). */
enum hr_role {
	HR_R_NONE = 0,
	HR_R_EVENT_TYPE,
	HR_R_SESSION_KEY,
	HR_R_SESSION_KEY_URL, /* last path segment of a URL (query, fragment, trailing / removed) */
	HR_R_OCCURRED,
	HR_R_SUBTYPE, /* raw status; the kind's status map turns it into subtype + state */
	HR_R_DURATION,
	HR_R_SHUTDOWN_REASON,
	HR_R_EXIT_REASON,
	HR_R_ERROR_TYPE,
	HR_R_SCORE,
	HR_R_STARTED_AT, /* AgentHuman: status derived from timestamps (seed 002) */
	HR_R_ENDED_AT,
	HR_R_ROOM,         /* a Daily room's name the event links to (it keeps its own session) */
	HR_R_ROOM_URL,     /* the same from a room URL's last path segment */
	HR_R_MEETING_ID,   /* the meeting of the room (Daily meeting_id, PailFlow room_id) */
	HR_R_MEETING_AT,   /* a time inside the meeting; default: the occurred time */
	HR_R_RECORDING_ID, /* the recording an event is about */
	/* the recording's instance: Daily's recording.error names only it, and
	 * recording.started it and the recording, without a room; but not Daily's
	 * default instance (HR_DAILY_DEFAULT_INSTANCE), which names none */
	HR_R_RECORDING_INSTANCE,
};

/*
 * The instanceId Daily gives every recording, transcription or live stream
 * started without one ("Default: c3df927c-...; reserved internally", Daily's
 * REST reference for recordings/start): one for every room of a domain and
 * every meeting of a room. As a room link it put other rooms' recordings on a
 * room's timeline, and as a recording's key it made one entry of all a room's
 * recordings (review RD40): an event naming it names no instance.
 */
#define HR_DAILY_DEFAULT_INSTANCE "c3df927c-f738-4471-a2b7-066fa7e95a6b"
/* Does recording instance `instance` (NULL: none) name one recording in one
 * room? Not Daily's default one. The summary's role and the room view both ask. */
bool hr_instance_names_one(const char *instance);

/* What an event is on its room's timeline (rooms.c). */
enum hr_room_role {
	HR_ROOM_NONE = 0,
	HR_ROOM_MEETING_START,
	HR_ROOM_MEETING_END,
	HR_ROOM_PARTICIPANT, /* joined / left, with room_state "joined" or "left" */
	HR_ROOM_RECORDING,   /* room_state: started, ready, error */
	HR_ROOM_TRANSCRIPT,  /* room_state: started, ready, error */
	HR_ROOM_OUTCOME,     /* a bot's or an avatar session's result (PailFlow, AgentHuman) */
};

struct hr_enum {
	const char *name;
	int code;
};

struct hr_schema;

struct hr_field {
	const char *json; /* key in the payload */
	enum hr_ftype type;
	size_t off; /* offsetof into the struct `schema` describes */
	unsigned flags;
	enum hr_role role;
	const struct hr_enum *choices; /* HR_T_ENUM / HR_T_CONST, NULL-terminated */
	const struct hr_schema *sub;   /* HR_T_OBJECT / HR_T_ARRAY */
};

struct hr_schema {
	const char *name; /* C struct name, for messages */
	size_t size;
	const struct hr_field *fields; /* terminated by a { NULL } entry */
	/* Unknown kinds: a field that is missing or does not decode is left
	 * absent instead of failing the body. Nothing about a body we do not
	 * know is grounds to refuse it; what does decode still correlates it.
	 * As a field's sub-schema: that field (free-form content of a known
	 * kind) is decoded so, whatever the rest of its body is held to. */
	bool lenient;
};

/*
 * Where two bodies of a kind with the same bytes may still be two callbacks
 * (nothing in them names one: no id, no time), and the provider never sends
 * one twice, the bytes key nothing and every copy is stored: a duplicate kept
 * loses nothing, a callback called a duplicate is lost (Tavus and PailFlow
 * never resend).
 */
enum hr_bytes_key {
	HR_BYTES_KEYED,          /* the same bytes are one callback */
	HR_BYTES_KEY_NOTHING,    /* PailFlow's: two quiet bot sessions of a reused room, or two
	                            unknown events, send the same bytes; it never resends */
	HR_BYTES_KEYED_IF_TIMED, /* only with a top-level "timestamp": an unknown Tavus
	                            event without one (a guardrail triggered twice) */
};

/* Received status value -> public subtype and the session state it implies. */
struct hr_status_map {
	const char *value; /* NULL terminates; the terminator's subtype/state are the default
	                      (a NULL default subtype keeps the value as received) */
	const char *subtype;
	enum hr_session_status state;
};

struct hr_kind_desc {
	enum hr_kind kind;
	const char *name; /* "tavus.conversation.system.shutdown" */
	enum hr_provider provider;
	enum hr_scope scope;
	const struct hr_schema *schema;         /* NULL: no typed struct (unknown kinds) */
	const struct hr_status_map *status_map; /* NULL: state is `state` below */
	enum hr_session_status state;           /* implied session state without a map */
	/* NULL: two bodies of this kind are the same callback only when their
	 * bytes are (the key is the body's SHA-256). Else the kind has a twin the
	 * provider documents, and this says how the twins differ (dedup.c). */
	const struct hr_dedup_twin *dedup_twin;
	/* A top-level member holding a delivery id the provider gives each
	 * event and keeps across its retries (Daily's envelope `id`); NULL: none. */
	const char *dedup_id;
	/* Rooms (rooms.c): what the event is on its room's timeline, the state it
	 * reports ("joined", "ready"...; NULL: the event's subtype), and the JSON
	 * pointers whose values it keeps as facts (named by their last segment,
	 * NULL-terminated; NULL: none). */
	enum hr_room_role room_role;
	const char *room_state;
	const char *const *facts;
	/* Whether the same bytes are the same callback with `dedup = auto` (dedup.c). */
	enum hr_bytes_key bytes_key;
};

/*
 * Twins: one callback the provider sends twice under two spellings (Tavus
 * system.pal_joined and its legacy system.replica_joined, "an identical
 * payload"). The key hashes the canonical body (sorted keys, no blanks)
 * after erasing the paths the spellings differ in and renaming the aliased
 * members, so the twins meet and any other difference keeps bodies apart.
 */
#define HR_TWIN_PATHS 4
struct hr_dedup_twin {
	const char *erase[HR_TWIN_PATHS];    /* slash-separated paths; NULL ends the list */
	const char *alias[HR_TWIN_PATHS][2]; /* {path, renamed to}; NULL ends the list */
};

/* The descriptor of a kind; never NULL for a valid kind. */
const struct hr_kind_desc *hr_kind_desc(enum hr_kind);

/*
 * Decode object `obj` (borrowed) into `out` (schema->size bytes, zeroed by
 * the caller), recording each failure with its JSON pointer under `base`
 * ("" for the root). Fields with roles fill `sum` (NULL skips that).
 * Returns HR_OK or HR_EINVAL (see errs: errors[] gets the first failures, and
 * nfound grows by all of them); out must be cleared either way.
 */
int hr_schema_decode(const struct hr_schema *schema, json_t *obj, const char *base, void *out,
    struct hr_summary *sum, struct hr_parse_error *errs);
/* Free what decoding allocated inside `typed` (arrays); NULL is fine. */
void hr_schema_clear(const struct hr_schema *schema, void *typed);
/* The decoded struct as a JSON object; new reference. */
json_t *hr_schema_encode(const struct hr_schema *schema, const void *typed);

/*
 * Append one RFC 6901 reference token ("/" + `seg` with ~ as ~0, / as ~1)
 * to the NUL-terminated pointer in `buf` (`size` bytes, `len` used). Returns
 * the new length; a pointer that does not fit is cut short, never overrun.
 * Undo with buf[old_len] = '\0'.
 */
size_t hr_jptr_push(char *buf, size_t size, size_t len, const char *seg);

#endif
