/*
 * store.h - the durable event log, whatever database engine holds it.
 *
 * Callers see typed writes, filters and rows, never SQL. The engine is a
 * table of operations (store_ops.h) chosen when the store is opened: SQLite
 * (store_sqlite.h) is one such table, and a second engine is a second table.
 * Writes go through one writer thread that commits many per transaction
 * (group commit); a write's `done` callback runs only after its transaction
 * is durable, and only then may the HTTP layer acknowledge it.
 */
#ifndef HR_STORE_H
#define HR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr/common.h"

struct hr_event;     /* event.h */
struct hr_store;     /* opaque */
struct hr_store_ops; /* store_ops.h: the engine */
struct json_t;       /* jansson's json_t */

struct hr_store_opts {
	const struct hr_store_ops *engine; /* e.g. &hr_store_sqlite (store_sqlite.h) */
	const char *path; /* SQLite: database file; its directory is created if missing */
	const char *url;  /* PostgreSQL: a libpq connection string or URI */
	int64_t lease_us; /* PostgreSQL: how long a node's claim on a delivery lasts */
	int64_t statement_timeout_us; /* PostgreSQL: the wait for one statement's answer; 0: none */
	unsigned batch_max;           /* writes per transaction */
	unsigned queue_max;           /* queued writes; past it a write says HR_EBUSY */
	unsigned rejections_max;      /* newest rejections kept */
	unsigned readers;             /* read connections in the pool */
	size_t cache_bytes;           /* SQLite: the writer's page cache; 0: 16 MiB */
};

/* True when hr_store_due_deliveries() claims the rows it returns (for this
 * node, until the attempt's record or the lease's end), so it never returns a
 * row this node already holds; false when it returns them all (one node). */
bool hr_store_claims_deliveries(const struct hr_store *);

/* Open (creating and migrating the schema) and start the writer thread. */
int hr_store_open(const struct hr_store_opts *, struct hr_store **out, struct hr_error *) HR_WUR;
/* Stop the writer after it committed every queued write; close. NULL is fine. */
void hr_store_close(struct hr_store *);

enum hr_delivery_status { HR_DLV_PENDING = 0, HR_DLV_SUCCEEDED, HR_DLV_FAILED, HR_DLV_DEAD };

const char *hr_delivery_status_name(enum hr_delivery_status);
int hr_delivery_status_from_name(const char *); /* -1 when unknown */

/* ---- writes ----
 *
 * Each write is one typed call: its input (borrowed until `done` runs) and a
 * struct hr_store_op of the caller's, which the store holds from the call
 * until `done`. `done` runs on the writer thread once the transaction that
 * holds the write committed (res.status HR_OK) or failed (HR_EDB); it must
 * be quick and must not call the store, and may free the op. A call answers
 * HR_OK (queued), HR_EBUSY (the queue is full) or HR_ECLOSED (the store is
 * stopping); on the last two `done` is never called.
 */

/* What a write did, valid in its done() callback. */
struct hr_store_result {
	int status;     /* HR_OK: durable; HR_EDB: nothing of it was kept */
	bool duplicate; /* event, accept: it was stored before; `id` names that event */
	bool stopped;   /* a destination's replay or discard, in chunks: stopped before one, as
	                   the configuration changed (still_configured, still_gone); count: what
	                   the chunks before did */
	int64_t count;  /* deliveries created (event, accept, replay) or discarded; accept: -1, no
	                   such rejection */
	char id[40];    /* event, accept: the id the event is stored under */
	char kind[64];  /* event duplicate: that event's kind ("" when unknown) */
};

struct hr_store_op {
	struct hr_store_result res;
	void (*done)(struct hr_store_op *, void *arg);
	void *arg;
	/* the store's, from the call to done() */
	int type;
	const void *in;
	void *out;
	struct hr_store_op *next;
	int64_t done_before; /* a replay in chunks: deliveries of the chunks committed, */
	int64_t chunk_after; /* the event the next chunk starts after, */
	int64_t chunk_next;  /* and where the chunk being written ends (-1: the last) */
	bool probe;          /* a ping that writes: the last write failed (writer.c) */
};

/* A request as it is kept, with the event or the rejection it became. */
struct hr_received {
	const char *id; /* "evt_..." / "rej_..." (hr_store_new_id) */
	int64_t received_us;
	const char *source;
	const char *remote_addr;
	const char *body; /* raw bytes exactly as received */
	size_t body_len;
	const char *headers_json; /* selected request headers, a JSON object */
	/* The callback URL's query parameters without the auth token: a JSON object
	 * (name -> string, or array of strings when repeated) as text; NULL: none. */
	const char *query_json;
};

/* An accepted event, its session, and a delivery row per destination, in one
 * transaction. It is stored under req.id unless it is a duplicate. */
struct hr_event_write {
	struct hr_received req;
	const struct json_t *query; /* req.query_json as a JSON object, which the engine indexes */
	const char *facts_json;     /* the event's room facts (hr_event_facts_json); NULL: none */
	const struct hr_event *ev;
	const char *const *destinations; /* a delivery row for each */
	const bool *ordered;             /* per destination: ordered delivery */
	size_t ndestinations;
	const char *dedup_key;     /* NULL: never a duplicate; else unique per source ... */
	int64_t dedup_window_us;   /* ... for this long */
	const char *problems_json; /* an accepted rejection's validation errors; NULL: none */
	int64_t routed_us; /* the deliveries' creation (an accepted rejection: now); 0: req's */
};

/* A body refused with 400 or 422, kept for inspection (GET /v1/rejections). */
struct hr_rejection_write {
	struct hr_received req;
	const char *kind_name; /* NULL: the body is not JSON */
	int http_status;
	const char *problem_json; /* the problem+json answer sent */
	bool acknowledged;        /* answered 200 all the same (Daily): rejections_max leaves it */
};

/* A rejection stored as an event after all: the event (no dedup key) is stored
 * only if rejection `rejection_id` has none yet; else res.id is the one it has
 * and res.duplicate is set. res.count -1: the rejection is gone. */
struct hr_accept_write {
	struct hr_event_write event;
	const char *rejection_id;
	/* Called on the writer's thread right before the write (NULL: not called):
	 * routes the event again under the configuration in force (a reload since
	 * the request may have removed a destination or added one). */
	void (*route_now)(void *arg);
	void *arg;
};

/* The outcome of one delivery attempt, and what it does to the delivery. */
struct hr_attempt {
	int64_t delivery_id;
	int number; /* 1 for the first attempt */
	int64_t started_us, duration_us;
	int http_status;      /* 0: no HTTP answer */
	const char *error;    /* curl error or refusal reason; NULL on an HTTP answer */
	const char *response; /* first bytes of the answer body */
	size_t response_len;
	enum hr_delivery_status new_status;
	int64_t next_attempt_us; /* with HR_DLV_PENDING */
	/* Sends before the last one that never got an answer: libcurl resends a
	 * request when a reused connection dies before any answer byte, on another
	 * (up to 5 times). Each is logged, under the attempt's number: the retry
	 * schedule counts attempts, not sends. */
	int resends;
};

/* Deliveries taken by the forwarder, until `until_us`. */
struct hr_lease {
	const int64_t *ids;
	size_t n;
	int64_t until_us;
};

/* A destination disabled (410 Gone) or enabled again. */
struct hr_destination_state {
	const char *name;
	bool disabled;
	const char *reason; /* with disabled */
	int64_t set_us;     /* when it was set (stored as disabled_at, enabled or not) */
};

/* Re-deliver: one event to the named destinations, or a destination's past events. */
struct hr_replay {
	const char *event_id;            /* one event ... */
	const char *const *destinations; /* ... to these */
	size_t ndestinations;
	const char *destination;    /* or: every event this destination had ... */
	int64_t since_us, until_us; /* ... received in [since, until) (0: open) ... */
	int status;                 /* ... whose delivery has this status (-1: any) */
	bool ordered;               /* the destination delivers in session order */
	const bool *ordered_each;   /* one event: per destination (NULL: `ordered` for each) */
	/* The writer's, for a destination's replay: it goes in chunks, one
	 * transaction each, of at most `limit` events (0: the whole replay at
	 * once) among the `window` events after the event `after_seq`. */
	int64_t after_seq, limit, window;
	/* Asked on the writer's thread before each chunk, or before one event's
	 * rows (NULL: not asked): false ends the replay there (a reload removed a
	 * destination of it meanwhile). */
	bool (*still_configured)(void *arg);
	void *arg;
};

/* Whether the replay's i-th destination delivers in session order. */
static inline bool
hr_replay_ordered(const struct hr_replay *r, size_t i)
{
	return r->ordered_each != NULL ? r->ordered_each[i] : r->ordered;
}

/*
 * Give up a destination's pending deliveries: each becomes failed with
 * `reason` as its last error, at the time of its chunk. For a destination
 * the configuration no longer has, whose deliveries nobody sends and whose
 * events retention must otherwise keep whole; res.count: how many.
 *
 * The writer goes in chunks, a transaction each, as for a replay. Before
 * each, in its transaction, it asks `still_gone` (may be NULL): false (the
 * destination is configured again, by a reload since the request checked)
 * stops the discard there (res.stopped). Asked there, the answer is ordered
 * with the writes: an event stored with the destination back was queued
 * after it.
 */
struct hr_discard {
	const char *destination;
	const char *reason;
	int64_t now_us;
	bool (*still_gone)(void *arg);
	void *arg;
	/* The writer's: a chunk takes at most `limit` rows (0: all) of id > after_id. */
	int64_t after_id, limit;
};

int hr_store_put_event(
    struct hr_store *, const struct hr_event_write *, struct hr_store_op *) HR_WUR;
int hr_store_put_rejection(
    struct hr_store *, const struct hr_rejection_write *, struct hr_store_op *) HR_WUR;
int hr_store_accept_rejection(
    struct hr_store *, const struct hr_accept_write *, struct hr_store_op *) HR_WUR;
int hr_store_record_attempt(
    struct hr_store *, const struct hr_attempt *, struct hr_store_op *) HR_WUR;
int hr_store_lease(struct hr_store *, const struct hr_lease *, struct hr_store_op *) HR_WUR;
int hr_store_set_destination(
    struct hr_store *, const struct hr_destination_state *, struct hr_store_op *) HR_WUR;
int hr_store_replay(struct hr_store *, const struct hr_replay *, struct hr_store_op *) HR_WUR;
int hr_store_discard(struct hr_store *, const struct hr_discard *, struct hr_store_op *) HR_WUR;

/* A new id "<prefix>_<26 chars>": 48-bit millisecond time + 80 random bits,
 * Crockford base32, so ids sort by creation time. buf >= 32 bytes. */
void hr_store_new_id(const char *prefix, char *buf, size_t len);

/* Called on the writer thread after each commit that created deliveries (the forwarder's
 * wake-up). Once this returns, the hook set before is not running and never runs again. */
void hr_store_set_commit_hook(struct hr_store *, void (*fn)(void *), void *arg);

/*
 * Also called on the writer thread, after each commit that stored new events
 * (duplicates do not count); for watchers such as GET /v1/stream. Up to
 * HR_STORE_LISTENERS; adding one already there is a no-op, past the limit
 * HR_EBUSY. `fn` must be quick and must not call the store. They go with the store.
 */
#define HR_STORE_LISTENERS 4
int hr_store_add_listener(struct hr_store *, void (*fn)(void *), void *arg) HR_WUR;

/* Writer statistics for health and metrics. */
struct hr_store_stats {
	uint64_t batches;
	uint64_t jobs;
	uint64_t failed_batches;
	unsigned queued;    /* writes waiting for a batch (the watchdog's pings are not counted) */
	unsigned queue_max; /* the bound: at it, a write says HR_EBUSY (ingest answers 503) */
	bool queue_full;    /* the queue is at its bound, pings counted, as the writes see it */
	int64_t last_commit_us; /* monotonic: the writer's last batch ended (failed or not) */
	int64_t busy_since_us;  /* monotonic: when the batch under way began; 0: none */
	bool last_write_failed; /* the newest batch that wrote (not only pings) failed */
	bool last_batch_failed; /* the newest batch, pings alone included, failed */
};
void hr_store_stats(struct hr_store *, struct hr_store_stats *out);
/* Fail every write still queued (not yet in a batch): each one's done() runs, on
 * the calling thread, with HR_EDB. The writer goes on with the batch it holds.
 * For a stop that cannot wait any longer; returns how many there were. */
unsigned hr_store_fail_queued(struct hr_store *);

/* ---- reads ---- */

/* A stored event; every pointer is borrowed for the callback's duration. */
struct hr_event_row {
	int64_t seq;
	const char *id;
	int64_t received_us;
	const char *source;
	const char *provider; /* "" when no provider matched */
	const char *kind;
	const char *event_type; /* NULL when the body has none */
	const char *subtype;
	const char *scope;
	const char *session_key;
	int64_t occurred_us; /* valid when occurred_raw != NULL && occurred_valid */
	bool occurred_valid;
	const char *occurred_raw;
	const char *remote_addr;
	const char *headers_json;
	const char *query_json;    /* NULL: no query parameters */
	const char *problems_json; /* NULL unless made from an accepted rejection */
	const char *body;          /* only filled when asked for */
	size_t body_len;
	int64_t pruned_us; /* when the payload was pruned (body is then ""); 0: it was not */
	/* Rooms (docs/api.md): the Daily room the event is about or linked to, the
	 * meeting it names, a time inside that meeting, the recording it is about,
	 * and its room facts (JSON text); NULL / meeting_at_valid false: none. */
	const char *room;
	const char *meeting;
	bool meeting_at_valid;
	int64_t meeting_at_us;
	const char *recording;
	const char *facts_json;
};

/* Values of one field, any of which matches (OR); n == 0: no condition. */
#define HR_MATCH_VALUES 16
struct hr_match {
	const char *v[HR_MATCH_VALUES];
	unsigned n;
};

struct hr_event_filter {
	struct hr_match source;                        /* names, or globs with * and ? */
	struct hr_match provider, event_type, subtype; /* exact values */
	uint64_t kinds;      /* bit (1 << enum hr_kind) of each kind wanted; 0: any */
	const char *session; /* NULL: any */
	/* NULL: any; else the events of this Daily room's timeline, as GET
	 * /v1/sessions/room:NAME gathers them (linked sessions' events included) */
	const char *room;
	/* query.NAME=VALUE: the event's callback URL had NAME=VALUE (one of them
	 * when NAME was repeated); all given must hold */
	const char *query_names[HR_QUERY_FILTERS_MAX], *query_values[HR_QUERY_FILTERS_MAX];
	size_t nquery;
	int64_t since_us, until_us; /* received_at bounds; 0: none; until is exclusive */
	int64_t before_seq;         /* keyset cursor: rows with seq < before_seq; 0: none */
	unsigned limit;
	bool with_body;
};

/*
 * A row callback answers HR_OK to go on. In a paged listing it may answer
 * HR_ETOOBIG to end the page before this row (not for the first row): the
 * listing then succeeds and *next_cursor continues with this row.
 */
typedef int (*hr_event_row_cb)(const struct hr_event_row *, void *arg);

/* Newest first. *next_cursor is the cursor for the next page, 0 at the end.
 * HR_EINVAL when the filter holds more conditions than one query can bind. */
int hr_store_list_events(struct hr_store *, const struct hr_event_filter *, hr_event_row_cb,
    void *arg, int64_t *next_cursor, struct hr_error *) HR_WUR;
/* Events with seq > after_seq, oldest first, at most f->limit, matching f's source,
 * provider, kinds, event_type, subtype and session (its time bounds and cursor are ignored). */
int hr_store_events_after(struct hr_store *, const struct hr_event_filter *, int64_t after_seq,
    hr_event_row_cb, void *arg, struct hr_error *) HR_WUR;
/* HR_ENOTFOUND when there is no such id. The row includes the body. */
int hr_store_get_event(
    struct hr_store *, const char *id, hr_event_row_cb, void *arg, struct hr_error *) HR_WUR;

struct hr_session_row {
	int64_t id;
	const char *scope;
	const char *key;
	const char *provider;
	const char *status;
	int64_t first_seen_us, last_seen_us;
	int64_t event_count;
	bool has_duration;
	double duration;
	const char *shutdown_reason, *exit_reason, *error_type;
	bool has_score;
	double overall_score;
};

struct hr_session_filter {
	const char *provider, *status; /* NULL: any */
	int64_t since_us;              /* last_seen >= since; 0: none */
	int64_t before_id;             /* keyset cursor */
	unsigned limit;
};

typedef int (*hr_session_row_cb)(const struct hr_session_row *, void *arg);

/* Newest session first. */
int hr_store_list_sessions(struct hr_store *, const struct hr_session_filter *, hr_session_row_cb,
    void *arg, int64_t *next_cursor, struct hr_error *) HR_WUR;
/* `ref` is "scope:key" or a bare key (the most recent session with it).
 * Calls `scb` once, then `ecb` for the newest `max_events` events in time
 * order; *truncated (may be NULL) says whether older ones were left out.
 * A room's timeline (scope room) holds the events of its session, the events
 * of other sessions linked to the room (AgentHuman daily_room), and events
 * that name no room but one of its meetings or recordings (Daily transcripts,
 * recording.started). */
int hr_store_get_session(struct hr_store *, const char *ref, hr_session_row_cb scb,
    hr_event_row_cb ecb, void *arg, unsigned max_events, bool *truncated, struct hr_error *) HR_WUR;

struct hr_rejection_row {
	int64_t seq;
	const char *id;
	int64_t received_us;
	const char *source;
	const char *remote_addr;
	const char *kind; /* NULL: the body was not JSON */
	int http_status;
	const char *problem_json;
	const char *headers_json;
	const char *query_json;     /* NULL: none */
	const char *accepted_event; /* the event accepting it made; NULL: not accepted */
	bool acknowledged;          /* answered 200 (hr_rejection_write) */
	size_t body_len;            /* always */
	const char *body;           /* hr_store_get_rejection() only; else NULL */
};

struct hr_rejection_filter {
	const char *source; /* NULL: any */
	int64_t since_us;
	int64_t before_seq;
	unsigned limit;
};

typedef int (*hr_rejection_row_cb)(const struct hr_rejection_row *, void *arg);

/* Newest first, without bodies: a page costs its rows' metadata, whatever the
 * bodies weigh (they are fetched one at a time with hr_store_get_rejection). */
int hr_store_list_rejections(struct hr_store *, const struct hr_rejection_filter *,
    hr_rejection_row_cb, void *arg, int64_t *next_cursor, struct hr_error *) HR_WUR;
/* One rejection with its body; HR_ENOTFOUND when there is no such id. */
int hr_store_get_rejection(
    struct hr_store *, const char *id, hr_rejection_row_cb, void *arg, struct hr_error *) HR_WUR;

/* ---- deliveries ---- */

/* A delivery ready to be attempted; pointers borrowed for the callback. */
struct hr_due_delivery {
	int64_t id;
	int attempts; /* made so far */
	const char *order_key;
	const char *event_id;
	int64_t received_us;
	const char *body;
	size_t body_len;
};

/* HR_OK: the row was taken, or is the caller's already (its attempt still under
 * way: a claiming store's claim renewed its lease); HR_EBUSY: it was not (no room,
 * its order key is busy here), and a claiming store gives it back at once;
 * anything else ends the listing. */
typedef int (*hr_due_cb)(const struct hr_due_delivery *, void *arg);

/* Pending deliveries of `destination` due at `now_us`, longest due first, at most
 * `limit`. With `ordered`, only the first pending delivery of each order key: of
 * 1,000 keys in the keys' order, of the keys of the 64 oldest due rows, and of the
 * due rows without a key, the first 1,000 (the others wait for a later call).
 * The 1,000 keys start after `*window` (NULL: at the first key), and `*window` is
 * then set (malloc'd, the old one freed) to where the next call's keys start:
 * NULL once these reached the last key. Calls that pass the same `window` in turn
 * so see every key, where the first 1,000 could all be waiting for retries and
 * hold the others back. `window` NULL: always the first 1,000. `next_due_us`
 * (NULL: not wanted) is then set as hr_store_next_due() would answer after the
 * call, the rows it handed out included (a store that claims counts them due
 * when their lease ends, and answers with the claim, in its round trip), or to
 * -1 when the call could not tell (it failed, or that part did). */
int hr_store_due_deliveries(struct hr_store *, const char *destination, int64_t now_us,
    bool ordered, unsigned limit, char **window, hr_due_cb, void *arg, int64_t *next_due_us,
    struct hr_error *) HR_WUR;
/* Earliest next_attempt_at of a pending delivery of `destination` that is still
 * ahead (a row due already is in flight or waits for a wake-up, forward_loop.c;
 * PostgreSQL counts a claimed row due when its lease ends); 0 when none. */
int hr_store_next_due(struct hr_store *, const char *destination, int64_t *out_us) HR_WUR;

struct hr_destination_row {
	const char *name;
	bool disabled;
	const char *disabled_reason;
	int64_t disabled_us; /* when the state was set, enabled or not (0: not known) */
	int64_t pending;
	int64_t oldest_pending_us; /* created_at of the oldest pending; 0: none */
	int64_t succeeded, failed, dead;
};

/*
 * What the nodes of one database share about a destination, read by each
 * node's forwarder at its polls (cheap: one row, no counts). SQLite has one
 * node, so nothing is shared: HR_ENOTFOUND, and the forwarder's own state is
 * the truth.
 */
struct hr_destination_shared {
	bool disabled;
	int64_t disabled_us;      /* when the state was set (0: never set, or before 2026-12) */
	int64_t breaker_until_us; /* its circuit breaker is open until then; 0: closed */
	/* The cooldown of its open breaker, doubled by each failed probe whichever
	 * node sent it; 0: none shared (closed, or from before 2026-12). */
	int64_t breaker_cooldown_us;
};
int hr_store_destination_shared(
    struct hr_store *, const char *name, struct hr_destination_shared *out) HR_WUR;
/* This node's breaker for the others: open until `until_us` with `cooldown_us`,
 * or closed (0). An opening leaves a later time of the row's (another node's
 * probe is out); the `outcome` of this node's probe, or a closing, replaces it. */
int hr_store_breaker_publish(struct hr_store *, const char *name, int64_t until_us,
    int64_t cooldown_us, bool outcome) HR_WUR;
/* The one probe of an open breaker, for all nodes: *won when this node is to send
 * it (the others then wait until `until_us`, or now + the shared cooldown if
 * later); *cooldown_us: the shared cooldown (0: none). SQLite: always won, 0. */
int hr_store_breaker_probe(struct hr_store *, const char *name, int64_t now_us, int64_t until_us,
    bool *won, int64_t *cooldown_us) HR_WUR;

/* For the engines: each destination name with a pending delivery, in name order. */
typedef int (*hr_name_cb)(const char *name, void *arg);

/*
 * A delivery row names its destination, and the pending rows of a destination
 * the configuration no longer has stay pending, sent by nobody: `cb` gets the
 * row of each name with pending deliveries that `configured` (given `arg` too)
 * says is not configured. Names in order; a callback's error stops the walk.
 */
typedef int (*hr_destination_row_cb)(const struct hr_destination_row *, void *arg);
int hr_store_unconfigured_destinations(struct hr_store *,
    bool (*configured)(const char *name, void *arg), hr_destination_row_cb, void *arg,
    struct hr_error *) HR_WUR;

/* Persistent state and counts of one destination (zeros when it has no rows). */
int hr_store_destination(struct hr_store *, const char *name, struct hr_destination_row *out,
    char *reason_buf, size_t reason_len, struct hr_error *) HR_WUR;

struct hr_delivery_row {
	int64_t id;
	const char *event_id;
	const char *destination;
	const char *status;
	int attempts;
	int64_t created_us, updated_us;
	int64_t next_attempt_us; /* pending only */
	int last_status;
	const char *last_error;
};

struct hr_attempt_row {
	int64_t delivery_id;
	int number;
	int64_t started_us, duration_us;
	int http_status;
	const char *error;
	const char *response;
	size_t response_len;
};

struct hr_delivery_filter {
	const char *destination; /* NULL: any */
	int status;              /* -1: any */
	int64_t since_us;        /* created_at >= since */
	int64_t before_id;
	unsigned limit;
};

typedef int (*hr_delivery_row_cb)(const struct hr_delivery_row *, void *arg);
typedef int (*hr_attempt_row_cb)(const struct hr_attempt_row *, void *arg);

int hr_store_list_deliveries(struct hr_store *, const struct hr_delivery_filter *,
    hr_delivery_row_cb, void *arg, int64_t *next_cursor, struct hr_error *) HR_WUR;
/*
 * The deliveries of an event with their attempts (acb after each delivery's
 * dcb), oldest first, of the newest 1,000; those with an id above `after_id`
 * (0: from the first). HR_ENOTFOUND when there is no such event. Either
 * callback may answer HR_ETOOBIG to end the page before this delivery (not in
 * the first delivery): the read then succeeds and *next_cursor (0: there is
 * no more) is the `after_id` that continues with it.
 */
int hr_store_event_deliveries(struct hr_store *, const char *event_id, int64_t after_id,
    hr_delivery_row_cb dcb, hr_attempt_row_cb acb, void *arg, int64_t *next_cursor,
    struct hr_error *) HR_WUR;

/* How many deliveries the destination replay `r` (r->destination set) would
 * create now; nothing is written. */
int hr_store_replay_count(
    struct hr_store *, const struct hr_replay *r, int64_t *count, struct hr_error *) HR_WUR;

/* Send the writer a no-op write and wait up to `timeout_us` for it: HR_OK, HR_EBUSY
 * (not answered in time, or the queue is full) or HR_EDB (its transaction failed). */
int hr_store_ping_writer(struct hr_store *, int64_t timeout_us) HR_WUR;
/* Whether the writer turned within `within_us`: it finished a batch, or the
 * no-op write this sends when none is out is younger than that. Answers at
 * once; one thread asks (the watchdog's). */
bool hr_store_writer_turns(struct hr_store *, int64_t within_us);

/*
 * Copy the database `o` names (o->engine, o->path; no store need be open) to
 * `dest`, which must not exist: a consistent snapshot taken through a read
 * transaction, so a running daemon keeps serving meanwhile (SQLite: VACUUM
 * INTO, a compact copy that opens as is).
 */
int hr_store_backup(const struct hr_store_opts *o, const char *dest, struct hr_error *) HR_WUR;

/* Cheap liveness probe of a read connection: HR_OK or HR_EDB. */
int hr_store_ping(struct hr_store *) HR_WUR;

/*
 * What the writer found wrong with the database file, for /healthz and /readyz.
 * Both states last until a restart: GONE, the file was deleted or replaced (its
 * device and inode changed), and every write fails since nothing written would be
 * found again; CORRUPT, SQLite reported the file malformed. UNREACHABLE (PostgreSQL):
 * the database cannot be reached; it clears by itself once a connection works again.
 */
enum hr_db_health { HR_DB_OK, HR_DB_GONE, HR_DB_CORRUPT, HR_DB_UNREACHABLE };
struct hr_store_health {
	enum hr_db_health state;
	char detail[200]; /* a sentence for operators; "" when OK */
};
void hr_store_health(struct hr_store *, struct hr_store_health *out);
const char *hr_db_health_name(enum hr_db_health); /* "ok", "gone", "corrupt", "unreachable" */

/* ---- data lifecycle and size (retention.c) ---- */

struct hr_retention_rule {
	const char *source; /* events of this source ... */
	int64_t retain_us;  /* ... lose their payload at this age, their row at twice it; 0: kept */
};

/* What the pruning passes do; events of sources without a rule are pruned only by max_size. */
struct hr_retention {
	int64_t interval_us; /* between passes */
	int64_t max_size;    /* bytes of pages in use; 0: no cap */
	const struct hr_retention_rule *rules;
	size_t nrules;
};

/* Use `r` (copied) from the next pass on; the first call starts the passes. Any thread. */
int hr_store_set_retention(struct hr_store *, const struct hr_retention *r) HR_WUR;

struct hr_store_size {
	int64_t file_bytes;   /* page_count * page_size */
	int64_t free_bytes;   /* of which on the freelist */
	int64_t wal_bytes;    /* the -wal file */
	bool incremental;     /* auto_vacuum = INCREMENTAL: free pages can be given back */
	int64_t size_hold_us; /* max_size's hold (SQLite): what came since is kept; 0: none */
};
int hr_store_size(struct hr_store *, struct hr_store_size *out) HR_WUR;
/* Bytes available to us on the database's file system (statvfs); UINT64_MAX when
 * the database is not on this machine's disk (PostgreSQL: watched on its server). */
int hr_store_disk_free(struct hr_store *, uint64_t *out) HR_WUR;

struct hr_prune_stats {
	uint64_t passes, payloads, events, rejections, sessions, vacuumed_pages;
	uint64_t rejections_dropped; /* by [storage] rejections_max, not by age or size */
};
void hr_store_prune_stats(struct hr_store *, struct hr_prune_stats *out);

/* The writer's histograms (metrics.h): jobs per commit and commit durations. */
struct hr_hist_snap;
void hr_store_writer_histograms(
    struct hr_store *, struct hr_hist_snap *batch_sizes, struct hr_hist_snap *commit_durations);

#endif
