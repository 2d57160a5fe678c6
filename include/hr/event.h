/*
 * event.h - one inbound webhook body, parsed, classified and decoded.
 *
 * hr_event_parse() is the whole validation path of an ingest request:
 * bounded JSON parse (jansson), classification (SPEC.md section 7), decode
 * through the kind's descriptor table into its typed struct, and the summary
 * the store indexes (kind, event_type, session key, occurred_at, session
 * attributes). It runs on the HTTP thread so the writer thread only writes.
 * The vocabulary (kinds, providers, scopes) is model.h's, for whoever names
 * a kind without parsing a body.
 */
#ifndef HR_EVENT_H
#define HR_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "hr/common.h"
#include "hr/model.h"
#include "hr/timefmt.h"

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
	 * recording events that name no room to the ones that do, and so does
	 * `recording_instance` (a failed recording's events share only it).
	 */
	const char *room;
	char room_buf[256]; /* storage for a derived room (a URL's last segment) */
	const char *meeting_id;
	struct hr_time meeting_at;
	const char *recording_id;
	const char *recording_instance;
};

/*
 * The longest key hookrelay keeps, in bytes (docs/events.md "Keys"): an event
 * type, a subtype, a session key, a room, a meeting, a recording, a recording's
 * instance, and a callback URL's query parameter (its name, its value) as
 * indexed. A longer one names nothing and the body is stored whole: PostgreSQL
 * refuses a btree entry past 2704 bytes, and its indexes hold two keys side by
 * side (a room and its meeting, a query name and its value), so the webhook was
 * answered 503 and lost; SQLite is held to the same bound so both engines
 * answer alike. A URL's last segment taken for a room or key is bounded
 * tighter still, by 255 bytes (key_buf, room_buf).
 */
#define HR_KEY_MAX 1024
bool hr_key_too_long(const char *text); /* NULL: false */
/* Is `item`, a value of query parameter `name`, one the store indexes (a string,
 * both within HR_KEY_MAX)? The event's query is kept whole either way. */
bool hr_query_indexed(const char *name, const json_t *item);

struct hr_kind_desc; /* schema.h */
struct hr_jarena;    /* jarena.h */

struct hr_event {
	enum hr_kind kind;
	enum hr_provider provider;
	const struct hr_kind_desc *desc; /* NULL for unknown kinds without a table */
	json_t *root;                    /* owned reference to the parsed body */
	struct hr_jarena *arena;         /* owned: the slot root is in (jarena.h), or NULL */
	void *typed;                     /* owned; the kind's struct, NULL if no table */
	struct hr_summary sum;
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
	size_t nfound;         /* HR_EINVAL: every failure found; errors[] has the first ones */
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
 * their normalisation); new reference that shares nothing with the event
 * (it may outlive it), NULL for kinds without a table. */
json_t *hr_event_typed_json(const struct hr_event *);

/*
 * The kind's room facts (struct hr_kind_desc.facts: a participant's name, a
 * recording's status...) as compact JSON text (new, free()), NULL when the
 * kind lists none or the body has none of them. A value whose JSON text is
 * longer than HR_FACT_MAX is left out: the whole body is kept anyway.
 */
#define HR_FACT_MAX 1024
/* The key ordered delivery goes by, "scope:session_key" whole (as a replay
 * builds it in SQL); *out NULL when the summary has none; free() it. It was
 * cut at 320 bytes at ingest only, so a replay's key differed and its
 * delivery went ahead of the pending ones it should have waited behind. */
int hr_summary_order_key(const struct hr_summary *sum, char **out);
char *hr_event_facts_json(const struct hr_event *);

#endif
