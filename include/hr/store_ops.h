/*
 * store_ops.h - what a database engine implements for the store.
 *
 * The store (store.h) owns what every engine shares: the write queue, the
 * one writer thread and its group commit (a batch of writes per
 * transaction, and, when one write fails, the batch again with a savepoint
 * per write so that the others still commit), the listeners, statistics,
 * and the timer of the pruning passes. An engine owns its connections and
 * its schema, and does each operation below: SQLite's table is
 * hr_store_sqlite (src/store/sqlite*.c), PostgreSQL's hr_store_pg
 * (src/store/pg*.c). Each engine's files are the only ones that name its
 * library.
 *
 * Only the store and the engines include this header.
 *
 * Threads: `open`, `close` and `backup` run alone. The writer operations
 * run on the writer thread only, always between `begin` and `commit` or
 * `rollback`. The read operations run on any thread, concurrently: an
 * engine keeps a pool of connections (or whatever its library needs).
 * Strings and rows handed to a row callback are borrowed for that call.
 */
#ifndef HR_STORE_OPS_H
#define HR_STORE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hr/common.h"
#include "hr/model.h"
#include "hr/store.h"

struct hr_store_backend; /* an engine's own state, opaque to the store */

/* An ordered due_deliveries walks the heads of at most HR_DUE_KEYS order keys
 * from its window (hr_store_due_deliveries). */
#define HR_DUE_KEYS          1000
#define HR_DUE_KEYS_TEXT_(n) #n
#define HR_DUE_KEYS_TEXT(n)  HR_DUE_KEYS_TEXT_(n)
#define HR_DUE_KEYS_SQL      HR_DUE_KEYS_TEXT(HR_DUE_KEYS) /* for a LIMIT in SQL */
/* The walk saw `walked` keys, the last `last`: where the next one starts
 * (*window; NULL, the first key, once a walk ended before HR_DUE_KEYS).
 * `window` NULL: nothing to keep. */
void hr_due_window_next(char **window, const char *last, long long walked);

/*
 * One pruning pass's work (hr_store_ops.prune), counted once it committed. A
 * pass that failed gives what it kept before the failure, which its batch
 * commits all the same (SQLite keeps each rule's work as it goes): zeros where
 * it is undone whole (PostgreSQL), or when its batch did not commit (writer.c).
 */
struct hr_prune_result {
	uint64_t payloads, events, sessions, rejections, vacuumed;
	bool more; /* it stopped at its bound: the next pass should follow soon */
	/* A retain rule failed: its work alone was undone and the pass went on
	 * without it (a failure that ends the pass is its error instead). Logged
	 * and not counted as a pass, as a failed one. */
	bool failed;
};

/* Another process committed to the same database: new events, new or
 * changed deliveries (see hr_store_ops.watch). */
typedef void (*hr_store_remote_fn)(void *arg, bool events, bool deliveries);

struct hr_store_ops {
	const char *name; /* "sqlite": what [storage] backend would name */
	/* due_deliveries claims the rows it hands out, for this process until the
	 * attempt is recorded or the lease (hr_store_opts.lease_us) runs out, so it
	 * never hands out a row held here or by another node; a row the callback
	 * does not take (HR_EBUSY) is given back at once. false: it hands out every
	 * due row, and the forwarder leases what it takes (`lease`). */
	bool claims;
	/* The delivery counts are kept as changes that fold_counts folds into their
	 * totals (several writers); false: they are always whole, and the writer
	 * never calls fold_counts. */
	bool folds_counts;

	/* ---- life ---- */
	/* Open, create or migrate the schema, and make every lease of a previous
	 * run available again. Errors name what failed; HR_EBUSY: another
	 * hookrelay owns the database. */
	int (*open)(const struct hr_store_opts *, struct hr_store_backend **out, struct hr_error *);
	void (*close)(struct hr_store_backend *); /* NULL is fine */
	int (*backup)(const struct hr_store_opts *, const char *dest, struct hr_error *);
	/* Call `fn` (on a thread of the engine's) whenever another process committed
	 * to the same database, so listeners and the forwarder hear other nodes'
	 * work; once after open. SQLite: nothing to do, one process owns the file. */
	int (*watch)(
	    struct hr_store_backend *, hr_store_remote_fn fn, void *arg, struct hr_error *);

	/* ---- the writer's transaction ---- */
	int (*begin)(struct hr_store_backend *);
	/* HR_OK only once what the transaction wrote is durable (else it is rolled back). */
	int (*commit)(struct hr_store_backend *);
	/* The next write (a run of events or of attempt records, a fold of
	 * delivery counts alone) is the transaction's last. The engine may send the COMMIT with it,
	 * a round trip fewer over a network; the run's result then says whether all of it, COMMIT
	 * included, worked (failed: the transaction is still open, aborted, if its writes failed,
	 * and gone if the COMMIT did), and commit() only says that again. */
	void (*commit_with_write)(struct hr_store_backend *);
	void (*rollback)(struct hr_store_backend *);
	/* Around one write on the retry of a failed batch: `undo` rolls it back. */
	int (*savepoint)(struct hr_store_backend *);
	int (*release)(struct hr_store_backend *, bool undo);
	/* After a write failed: is the batch's transaction still open? Some
	 * failures end it (SQLite rolls the whole transaction back on a full disk
	 * or an I/O error), and a write after that would commit on its own. */
	bool (*in_transaction)(struct hr_store_backend *);
	/* After each batch, committed or not: would a restart still find what the
	 * writer writes? false fails every write of the batch (a deleted file). */
	bool (*durable)(struct hr_store_backend *);

	/* ---- the writes, one typed operation each, inside the transaction ---- */
	/* The ingest batch: `n` events in order, res[i] for in[i] (its status is the
	 * store's to set). Dedup is decided here, also between events of the batch:
	 * a key claimed earlier in its window makes res[i] a duplicate naming the
	 * first event. A failure fails the call; the store retries one at a time. */
	int (*put_events)(struct hr_store_backend *, const struct hr_event_write *const *in,
	    struct hr_store_result *const *res, size_t n);
	int (*put_rejection)(struct hr_store_backend *, const struct hr_rejection_write *);
	int (*accept_rejection)(
	    struct hr_store_backend *, const struct hr_accept_write *, struct hr_store_result *);
	/* A run of attempts' records, in[i] in order; as put_events, a failure fails
	 * the call and the store retries them one at a time. */
	int (*record_attempts)(
	    struct hr_store_backend *, const struct hr_attempt *const *in, size_t n);
	int (*lease)(struct hr_store_backend *, const struct hr_lease *);
	int (*set_destination)(struct hr_store_backend *, const struct hr_destination_state *);
	/* A destination's replay in chunks (r->limit > 0): *next_after, the event
	 * the next chunk starts after, or -1 when this one reached the last event. */
	int (*replay)(struct hr_store_backend *, const struct hr_replay *, int64_t *created,
	    int64_t *next_after);
	int (*discard)(struct hr_store_backend *, const struct hr_discard *, int64_t *discarded,
	    int64_t *next_after);
	/* Housekeeping in a batch's transaction: dedup keys expired at `now_us`, at
	 * most `max` of them; rejections past the newest `keep`. */
	int (*expire_dedup)(
	    struct hr_store_backend *, int64_t now_us, unsigned max, unsigned *done);
	int (*trim_rejections)(struct hr_store_backend *, unsigned keep, uint64_t *dropped);
	/* Up to `max` changes of the delivery counts folded into their totals
	 * (*done of them); see folds_counts. */
	int (*fold_counts)(struct hr_store_backend *, unsigned max, unsigned *done);
	/* A write that changes nothing yet reaches the disk at the commit (SQLite:
	 * the same user_version into the file's first page; PostgreSQL: a new
	 * version of the schema row). While the last write failed, the watchdog's
	 * ping carries one, so the writer sees the database take writes again
	 * with no webhook coming (/readyz stayed failed until the next prune). */
	int (*probe_write)(struct hr_store_backend *);
	/* One bounded pruning pass under `policy` (its interval is the store's). */
	int (*prune)(
	    struct hr_store_backend *, const struct hr_retention *policy, struct hr_prune_result *);

	/* ---- reads, any thread; as the hr_store_* calls of the same names (store.h) ---- */
	int (*list_events)(struct hr_store_backend *, const struct hr_event_filter *,
	    hr_event_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
	int (*events_after)(struct hr_store_backend *, const struct hr_event_filter *,
	    int64_t after_seq, hr_event_row_cb, void *arg, struct hr_error *);
	int (*get_event)(
	    struct hr_store_backend *, const char *id, hr_event_row_cb, void *, struct hr_error *);
	int (*list_sessions)(struct hr_store_backend *, const struct hr_session_filter *,
	    hr_session_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
	int (*get_session)(struct hr_store_backend *, const char *ref, hr_session_row_cb,
	    hr_event_row_cb, void *arg, unsigned max_events, bool *truncated, struct hr_error *);
	int (*list_rejections)(struct hr_store_backend *, const struct hr_rejection_filter *,
	    hr_rejection_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
	int (*get_rejection)(struct hr_store_backend *, const char *id, hr_rejection_row_cb,
	    void *arg, struct hr_error *);
	int (*due_deliveries)(struct hr_store_backend *, const char *destination, int64_t now_us,
	    bool ordered, unsigned limit, char **window, hr_due_cb, void *arg, int64_t *next_due_us,
	    struct hr_error *);
	int (*next_due)(struct hr_store_backend *, const char *destination, int64_t *out_us);
	int (*destination)(struct hr_store_backend *, const char *name,
	    struct hr_destination_row *out, char *reason_buf, size_t reason_len, struct hr_error *);
	int (*pending_destinations)(
	    struct hr_store_backend *, hr_name_cb, void *arg, struct hr_error *);
	int (*list_deliveries)(struct hr_store_backend *, const struct hr_delivery_filter *,
	    hr_delivery_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
	int (*event_deliveries)(struct hr_store_backend *, const char *event_id, int64_t after_id,
	    hr_delivery_row_cb, hr_attempt_row_cb, void *arg, int64_t *next_cursor,
	    struct hr_error *);
	/* The destination state every node shares (store.h); SQLite: HR_ENOTFOUND,
	 * a no-op and always won, one node being the whole truth. */
	int (*destination_shared)(
	    struct hr_store_backend *, const char *name, struct hr_destination_shared *out);
	int (*breaker_publish)(struct hr_store_backend *, const char *name, int64_t until_us,
	    int64_t cooldown_us, bool outcome);
	int (*breaker_probe)(struct hr_store_backend *, const char *name, int64_t now_us,
	    int64_t until_us, bool *won, int64_t *cooldown_us);
	int (*replay_count)(
	    struct hr_store_backend *, const struct hr_replay *, int64_t *count, struct hr_error *);

	/* ---- health and size, any thread ---- */
	int (*ping)(struct hr_store_backend *);
	void (*health)(struct hr_store_backend *, struct hr_store_health *out);
	int (*size)(struct hr_store_backend *, struct hr_store_size *out);
	int (*disk_free)(struct hr_store_backend *, uint64_t *out);
};

/*
 * SQL both engines use: the distinct values of `col` among a room's events,
 * `param` the room's placeholder (written twice). Each value is one probe of
 * a (room, col) index, the next one greater than the last (a loose index
 * scan): every event of a reused Daily room names a meeting, and reading all
 * their entries cost each page of a big room the whole room.
 */
/* The destinations with a pending delivery, one probe of the pending rows'
 * (destination, next_attempt_at) index each: the loose scan again. `hint`:
 * SQLite, which keeps no statistics, would take the (status, id) index and read
 * every pending row per probe. */
#define HR_SQL_PENDING_DESTINATIONS(hint)                                                          \
	"WITH RECURSIVE d(v) AS (SELECT min(destination) FROM deliveries" hint " WHERE status = 0" \
	" UNION ALL SELECT (SELECT min(destination) FROM deliveries" hint " WHERE status = 0"      \
	" AND destination > d.v) FROM d WHERE d.v IS NOT NULL) SELECT v FROM d WHERE v IS NOT "    \
	"NULL"

/* An event's time inside its meeting (`t`: its table's name and a dot, or ""),
 * the time rooms.c places it by: meeting_at, else its own, else its arrival. */
#define HR_SQL_EVENT_AT(t) "coalesce(" t "meeting_at, " t "occurred_at, " t "received_at)"

/*
 * Does the recording instance of `ev` (an events row's table name or alias),
 * an event naming no room, bring it to room `param`'s timeline? An instance is a recording slot an
 * app may give every recording it starts, in every room, like Daily's default one: another room's
 * recording.started under it was put on the timeline of the room whose recording.error named it,
 * and counted there. So only a room's event that names the instance and no recording (a failed
 * recording's error) brings the starts under it that came before it (the recording it failed is one
 * of them), and a start whose recording a room names is that room's alone (room_links kind 2: the
 * writer links a recording named with a room).
 */
#define HR_SQL_ROOM_INSTANCE_HELD(ev, param)                                                       \
	"NOT EXISTS (SELECT 1 FROM room_links k WHERE k.kind = 2 AND k.value = " ev ".recording)"  \
	" AND EXISTS (SELECT 1 FROM events o WHERE o.room = " param                                \
	" AND o.recording_instance = " ev ".recording_instance AND o.recording IS NULL "           \
	"AND " HR_SQL_EVENT_AT("o.") " >= " HR_SQL_EVENT_AT(ev ".") ")"

#define HR_SQL_ROOM_DISTINCT(col, param)                                                           \
	"WITH RECURSIVE d(v) AS (SELECT min(" col ") FROM events WHERE room = " param " AND " col  \
	" IS NOT NULL UNION ALL SELECT (SELECT min(" col ") FROM events WHERE room = " param       \
	" AND " col " > d.v) FROM d WHERE d.v IS NOT NULL) SELECT v FROM d WHERE v IS NOT NULL"

/* The time a room's status is set at (sessions.status_at), the same on either
 * engine: the event's own time, but never past when it came, so that an event
 * stamped ahead (a sender's clock, a unit wrong by a factor) cannot hold the
 * status against every real event after it. */
static inline int64_t
hr_room_status_time(int64_t occurred_us, int64_t received_us)
{
	return occurred_us < received_us ? occurred_us : received_us;
}

/* The same for an event's summary: one without a time of its own (PailFlow's
 * session_complete) counts at when it came. Left without one, the room kept
 * the time of the status before, and a bot failure stamped before the
 * session_complete came, arriving after it, failed the ended room (a review). */
static inline int64_t
hr_room_status_at(bool has_time, int64_t occurred_us, int64_t received_us)
{
	return has_time ? hr_room_status_time(occurred_us, received_us) : received_us;
}

/* Whether an event sets a room's status as Daily's (sessions.status_by 1):
 * Daily's meetings then say the room's state, whatever a bot's outcome says. */
static inline bool
hr_room_status_by_daily(bool room, int status, enum hr_provider provider)
{
	return room && status > HR_SESS_CREATED && provider == HR_PROVIDER_DAILY;
}

/* A destination's replay in chunks (the `replay` op), the same walk on either
 * engine: a chunk after the event `after` takes events up to this one, */
static inline int64_t
hr_replay_window_end(const struct hr_replay *r, int64_t after)
{
	return r->limit > 0 && r->window > 0 && after < INT64_MAX - r->window ? after + r->window
	                                                                      : INT64_MAX;
}

/* A discard's next chunk starts after the last row this one took, when it took
 * `limit` (-1: the discard is done). */
static inline int64_t
hr_discard_next_after(const struct hr_discard *d, int64_t discarded, int64_t last)
{
	return d->limit > 0 && discarded == d->limit ? last : -1;
}

/* and the next chunk starts after the last event this one took when it took
 * `limit` (more may follow in the window), else after the window, unless the
 * window reached `newest`, the last event stored (-1: the replay is done). */
static inline int64_t
hr_replay_next_after(
    const struct hr_replay *r, int64_t created, int64_t last, int64_t end, int64_t newest)
{
	if (r->limit <= 0)
		return -1;
	if (created == r->limit)
		return last;
	return end < newest ? end : -1;
}

#endif
