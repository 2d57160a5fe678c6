/*
 * sqlite_int.h - what the SQLite engine's files share: its state and the
 * SQL helpers. Only src/store/sqlite*.c include it; nothing else in
 * hookrelay names SQLite.
 *
 *   sqlite_db.c      connections, the reader pool, errors, the file's health
 *   sqlite_schema.c  the schema and its forward-only migrations
 *   sqlite_write.c   the writer's statements: one function per write
 *   sqlite_where.c   the reads' WHERE clause of bound parameters, a keyset page
 *   sqlite_read.c    filtered, keyset-paged reads
 *   sqlite_due.c     the forwarder's due deliveries and next due time
 *   sqlite_prune.c   pruning passes, their retain rules (sqlite_pass.h: a pass)
 *   sqlite_shrink.c  a pass's chunks toward max_size
 *   sqlite_stmts.c   statements a pruning pass keeps prepared
 *   sqlite_hold.c    max_size's hold on what came while deliveries are pending
 *   sqlite_size.c    the size figures, free pages given back
 *   sqlite_walbuf.c  the writer's VFS: a commit's WAL frames in one write
 *   sqlite.c         open, close, backup, and the table of operations
 */
#ifndef HR_SQLITE_INT_H
#define HR_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "hr/model.h"
#include "agewalk.h"
#include "hr/store_ops.h"

/* The writer's VFS (sqlite_walbuf.c): "unix", with a WAL's appends written
 * together when SQLite syncs. Registered once; SQLITE_OK or SQLite's code. */
#define HR_SQLITE_WALBUF_VFS "hookrelay-walbuf"
int hr_sqlite_walbuf_register(void);

/* The meetings and the recordings a room's events name, for the room filter
 * (events naming one of them are on the room's timeline); each read from its
 * index alone (schema 8), which test_store checks. Both bind the room twice. */
#define ROOM_MEETINGS            HR_SQL_ROOM_DISTINCT("meeting", "?")
#define ROOM_RECORDINGS          HR_SQL_ROOM_DISTINCT("recording", "?")
#define ROOM_RECORDING_INSTANCES HR_SQL_ROOM_DISTINCT("recording_instance", "?")

/* The events stored before a room's event named `column` ?1 with room ?2 first
 * that name it and no room, counted toward the room (sqlite_rooms.c): through
 * the column's index of events naming no room (schemas 9 and 11), which
 * test_store checks. */
#define ROOM_ADOPT(column)                                                                         \
	"UPDATE events SET linked_room = ?2 WHERE " column " = ?1 AND room IS NULL"                \
	" AND linked_room IS NULL RETURNING received_at"
/* The same for an instance: the events before the room's event (?3, its time)
 * whose recording no room names (HR_SQL_ROOM_INSTANCE_HELD). */
#define ROOM_ADOPT_INSTANCE                                                                        \
	"UPDATE events SET linked_room = ?2 WHERE recording_instance = ?1 AND room IS NULL"        \
	" AND linked_room IS NULL AND " HR_SQL_EVENT_AT(                                           \
	    "") " <= ?3 AND NOT EXISTS (SELECT 1"                                                  \
	        " FROM room_links k WHERE k.kind = 2 AND k.value = events.recording) RETURNING "   \
	        "received_at"

enum writer_stmt {
	WS_BEGIN,
	WS_COMMIT,
	WS_ROLLBACK,
	WS_SAVEPOINT,
	WS_RELEASE,
	WS_ROLLBACK_TO,
	WS_UPSERT_SESSION,
	WS_TOUCH_SESSION,
	WS_SESSION_ID,
	WS_UPSERT_ROOM_LINK,
	WS_INSERT_EVENT,
	WS_INSERT_REJECTION,
	WS_REJECTIONS_PAST_BOUND,
	WS_TRIM_REJECTIONS,
	WS_INSERT_DELIVERY,
	WS_INSERT_ATTEMPT,
	WS_UPDATE_DELIVERY,
	WS_LEASE,
	WS_SET_DESTINATION,
	WS_REPLAY_EVENT,
	WS_REPLAY_DESTINATION,
	WS_REPLAY_FIRST,
	WS_LAST_EVENT,
	WS_DISCARD,
	WS_DEDUP_FIND,
	WS_DEDUP_PUT,
	WS_DEDUP_PRUNE,
	WS_INSERT_EVENT_QUERY,
	WS_ACCEPTED_EVENT,
	WS_SET_ACCEPTED,
	WS_FACET_FIND,
	WS_FACET_ADD,
	WS_ROOM_OF_LINKS,
	WS_ROOM_LINK_ADD,
	WS_ROOM_ADOPT_MEETING,
	WS_ROOM_ADOPT_RECORDING,
	WS_ROOM_ADOPT_INSTANCE,
	WS_ROOM_COUNT_ADOPTED,
	WS_COUNT
};

/*
 * The events a destination replay delivers again: those the destination had a
 * delivery for (?4: of this status, < 0 any), received in [?2, ?3) (0: open),
 * whose payload is kept and that have no delivery to it pending already (?1 is
 * the destination). The writer inserts from it, a dry run counts it.
 */
#define REPLAY_DESTINATION_EVENTS                                                                  \
	" FROM events e WHERE e.seq IN (SELECT d.event_seq FROM deliveries d"                      \
	"  WHERE d.destination = ?1 AND (?4 < 0 OR d.status = ?4)) AND e.pruned_at IS NULL"        \
	" AND (?2 = 0 OR e.received_at >= ?2) AND (?3 = 0 OR e.received_at < ?3)"                  \
	" AND NOT EXISTS (SELECT 1 FROM deliveries p INDEXED BY deliveries_event"                  \
	"  WHERE p.event_seq = e.seq AND p.destination = ?1 AND p.status = 0)"

/*
 * The id a new row of rejections (seq) or sessions (id) takes: one past every
 * id its table ever held, which store_state keeps (schema 20; its triggers
 * record each row inserted). A rowid is max + 1: once retention had deleted
 * the newest rows, new ones took their ids, and behind a cursor handed out
 * before, a client paging the listing took them for older rows (a review).
 */
#define HR_SQL_NEXT_ID(name)                                                                       \
	"(SELECT coalesce(max(value), 0) + 1 FROM store_state WHERE name = '" name "')"
#define HR_SQL_NEXT_REJECTION HR_SQL_NEXT_ID("rejections_seq")
#define HR_SQL_NEXT_SESSION   HR_SQL_NEXT_ID("sessions_id")

/*
 * Statements each reader keeps prepared: the forwarder's polls, which run after
 * every commit, took longer to prepare than to run (45 µs against 5 for the due
 * rows of an unordered destination, 586 against 183 for an ordered one's).
 */
enum hr_sqlite_kept { HR_KEPT_DUE, HR_KEPT_DUE_ORDERED, HR_KEPT_NEXT_DUE, HR_SQLITE_KEPT };

/* sqlite_facets.c: the writer's memory of the facets it met last. */
#define HR_SQLITE_FACETS_KEPT 64
struct hr_sqlite_facet {
	int64_t id;
	char *source, *provider, *kind, *event_type, *subtype;
};
struct hr_sqlite_facets {
	struct hr_sqlite_facet v[HR_SQLITE_FACETS_KEPT]; /* the last met first */
	size_t n;
	bool made; /* the open transaction added facets */
};
/* An event's facet; event_type and subtype may be NULL. */
struct hr_facet_key {
	const char *source, *provider, *kind, *event_type, *subtype;
};

/* The [storage] max_size hold (sqlite_shrink.c), kept in store_state (schema 16):
 * nothing received from at_us on (0: no hold) is pruned by size, nor anything
 * stored past the highest seqs of each table when it began (INT64_MAX: any). */
struct hr_sqlite_hold {
	int64_t at_us, events, rejections;
};

struct hr_store_backend {
	char *path;

	/* the writer's: only the writer thread touches wdb and ws[] after open */
	sqlite3 *wdb;
	sqlite3_stmt *ws[WS_COUNT];
	bool gone;                      /* writer only: the file is not ours any more */
	bool warned_vacuum;             /* writer only (prune): said once */
	int64_t warned_cap;             /* writer only (prune): the max_size said unmet, 0: none */
	struct hr_sqlite_hold hold;     /* writer only (prune): sqlite_hold.c */
	bool hold_stale;                /* writer only: rolled back, read the hold again */
	_Atomic int64_t hold_shown_us;  /* hold.at_us, for /metrics (any thread) */
	int64_t orphan_after;           /* writer only (prune): the dedup keys' walk, from here */
	struct hr_age_walks walks;      /* writer only (prune): sqlite_prune.c */
	struct hr_age_walks size_walks; /* writer only (prune): max_size's, sqlite_shrink.c */
	int64_t size_walks_since_us;    /* writer only (prune): when they last started over */
	int64_t size_walks_pending;     /* writer only (prune): the oldest pending event then */
	bool size_walk_cut;             /* writer only (prune): one is in the middle of a window */
	bool size_walks_verified;       /* writer only (prune): looking again from the start */
	int64_t size_verify_pending;    /* writer only (prune): the oldest pending event then */
	int size_verify_rounds;         /* writer only (prune): looks again in a row */
	int64_t size_walk_high;         /* writer only: the highest place of the payload walks */
	size_t age_rule_next; /* writer only (prune): the retain rule a pass begins with */
	struct hr_sqlite_facets facets; /* writer only: sqlite_facets.c */
	int lock_fd;                    /* the database file itself, flock()ed */
	dev_t db_dev, wal_dev;          /* the files' identity at open ... */
	ino_t db_ino, wal_ino;          /* ... (wal_ino 0: not known) */
	char *wal_path;                 /* the -wal file SQLite uses */
	pthread_mutex_t health_mu;      /* guards health */
	struct hr_store_health health;  /* set once, kept until a restart */

	/* the readers': a pool of connections, one per concurrent reader */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	unsigned nreaders;
	sqlite3 **readers;
	unsigned nfree;
	sqlite3 **free_readers;
	sqlite3_stmt *(*kept)[HR_SQLITE_KEPT]; /* per reader: hr_sqlite_kept() */
};

/* sqlite_db.c */
/* Open one connection with the daemon's pragmas (the writer's or a reader's). */
int hr_sqlite_connect(const char *path, bool writer, sqlite3 **out, struct hr_error *);
int hr_sqlite_set_cache(sqlite3 *, size_t bytes, struct hr_error *); /* 0: 16 MiB */
/* Run `sql` (no rows wanted); HR_EDB with SQLite's message. */
int hr_sqlite_exec(sqlite3 *db, const char *sql, struct hr_error *);
/* Report a SQLite failure as HR_EDB with its message. */
int hr_sqlite_error(sqlite3 *db, struct hr_error *err, const char *what);
/* Borrow a read connection (blocks while all are in use) and give it back. */
sqlite3 *hr_sqlite_reader_get(struct hr_store_backend *);
void hr_sqlite_reader_put(struct hr_store_backend *, sqlite3 *);
int hr_sqlite_readers_open(struct hr_store_backend *, unsigned n, struct hr_error *);
void hr_sqlite_readers_close(struct hr_store_backend *);
/* Reader `db`'s statement `which` for `sql` (always the same text for a `which`),
 * prepared at its first use and kept; NULL on failure (SQLite's message on db).
 * Give it back with hr_sqlite_kept_done() before the reader. */
sqlite3_stmt *hr_sqlite_kept(
    struct hr_store_backend *, sqlite3 *db, enum hr_sqlite_kept which, const char *sql);
/* Reset and unbind a kept statement: its read transaction ends with it, or the
 * WAL could not be checkpointed past it. */
void hr_sqlite_kept_done(sqlite3_stmt *);
/* One daemon per database: flock() the file itself (HR_EBUSY when taken). */
int hr_sqlite_lock(struct hr_store_backend *, struct hr_error *);
/* Note the -wal file's identity, once the writer has it. */
int hr_sqlite_note_wal(struct hr_store_backend *, struct hr_error *);
/* Record that the database cannot be trusted until a restart (the first cause
 * wins; logged once). Any thread. */
void hr_sqlite_set_unhealthy(struct hr_store_backend *, enum hr_db_health, const char *detail);
/* After a failed statement on `db`: SQLite said the file is malformed? Then record it. */
void hr_sqlite_note_failure(struct hr_store_backend *, sqlite3 *db);
/* Is the database file still the one opened (same device and inode, -wal too)? If
 * not, record HR_DB_GONE and return false. Writer thread. */
bool hr_sqlite_file_is_ours(struct hr_store_backend *);
void hr_sqlite_health(struct hr_store_backend *, struct hr_store_health *out);
int hr_sqlite_ping(struct hr_store_backend *);
/* The first column of the first row of `sql` (?1 bound to `text` if given), or `def`. */
int hr_sqlite_query_int(sqlite3 *db, const char *sql, const char *text, int64_t def, int64_t *out);
/* The same with ?2 bound to *num (NULL: not bound). */
int hr_sqlite_query_int2(
    sqlite3 *db, const char *sql, const char *text, const int64_t *num, int64_t def, int64_t *out);

/* sqlite_schema.c: create or migrate forward, and the indexes checked; every lease
 * made available again. */
int hr_sqlite_migrate(sqlite3 *db, bool *created, struct hr_error *);
/* After the migrations of a database not just created: the indexes are this version's
 * (made, remade, or dropped). One just created has this version's by construction. */
int hr_sqlite_check_indexes(sqlite3 *db, struct hr_error *);
int hr_sqlite_release_leases(sqlite3 *db, struct hr_error *);

/* sqlite_write.c */
int hr_sqlite_writer_prepare(struct hr_store_backend *, struct hr_error *);
void hr_sqlite_writer_finalize(struct hr_store_backend *);
int hr_sqlite_begin(struct hr_store_backend *);
int hr_sqlite_commit(struct hr_store_backend *);
void hr_sqlite_rollback(struct hr_store_backend *);
int hr_sqlite_savepoint(struct hr_store_backend *);
int hr_sqlite_release(struct hr_store_backend *, bool undo);
bool hr_sqlite_durable(struct hr_store_backend *);
bool hr_sqlite_in_transaction(struct hr_store_backend *);
int hr_sqlite_put_events(struct hr_store_backend *, const struct hr_event_write *const *in,
    struct hr_store_result *const *res, size_t n);
int hr_sqlite_put_rejection(struct hr_store_backend *, const struct hr_rejection_write *);
int hr_sqlite_accept_rejection(
    struct hr_store_backend *, const struct hr_accept_write *, struct hr_store_result *);
int hr_sqlite_record_attempts(
    struct hr_store_backend *, const struct hr_attempt *const *in, size_t n);
int hr_sqlite_lease(struct hr_store_backend *, const struct hr_lease *);
int hr_sqlite_set_destination(struct hr_store_backend *, const struct hr_destination_state *);
int hr_sqlite_probe_write(struct hr_store_backend *);
int hr_sqlite_replay(
    struct hr_store_backend *, const struct hr_replay *, int64_t *created, int64_t *next_after);
int hr_sqlite_discard(
    struct hr_store_backend *, const struct hr_discard *, int64_t *discarded, int64_t *next_after);
int hr_sqlite_expire_dedup(struct hr_store_backend *, int64_t now_us, unsigned max, unsigned *done);
int hr_sqlite_trim_rejections(struct hr_store_backend *, unsigned keep, uint64_t *dropped);
int hr_sqlite_fold_counts(struct hr_store_backend *, unsigned max, unsigned *done);

/* Step a writer statement once and reset it; a failure logged, HR_EDB.
 * _int: also the integer its row holds (*found: a row came; either may be NULL). */
int hr_sqlite_step_done(struct hr_store_backend *, sqlite3_stmt *);
int hr_sqlite_step_int(struct hr_store_backend *, sqlite3_stmt *, int64_t *out, bool *found);
/* A writer statement's failure: logged (in moderation) and noted. */
void hr_sqlite_log_failed(struct hr_store_backend *, sqlite3_stmt *);

/* sqlite_facets.c: the writer's facet ids (schema 13). The transaction's end
 * is told: a rolled-back one may take ids the memory holds with it. */
int hr_sqlite_facet_of(struct hr_store_backend *, const struct hr_facet_key *, int64_t *id);
void hr_sqlite_facets_committed(struct hr_store_backend *);
void hr_sqlite_facets_rolled_back(struct hr_store_backend *, bool whole);
void hr_sqlite_facets_free(struct hr_store_backend *);

/* sqlite_rooms.c: a room's count of the events on its timeline through a
 * meeting, a recording or an instance alone (schema 18). _of: the room such an
 * event is counted toward (*room malloc'd, NULL: none yet); _links_add: after a
 * room's event row, its links, counting the events that came before them. */
struct hr_summary;
extern const char hr_sqlite_room_of_links_sql[], hr_sqlite_room_link_add_sql[],
    hr_sqlite_room_count_adopted_sql[];
int hr_sqlite_room_of_links(
    struct hr_store_backend *, const struct hr_summary *, int64_t received_us, char **room);
int hr_sqlite_room_links_add(
    struct hr_store_backend *, const struct hr_summary *, int64_t received_us);

/* sqlite_where.c: the reads' WHERE clause of bound parameters, and a keyset page */

/* A room's events are a union of this many parts (sqlite_read.c), each repeating
 * the other conditions' binds. */
#define HR_SQLW_ROOM_PARTS 4
/* Enough for every multi-valued event filter at its fullest (4 x HR_MATCH_VALUES,
 * every kind), the query.NAME filters and the single ones, in each part of a
 * room's union; past it the query is refused, never cut short. */
#define HR_SQLW_BINDS                                                                              \
	(HR_SQLW_ROOM_PARTS * (4 * HR_MATCH_VALUES + HR_KIND_COUNT + 2 * HR_QUERY_FILTERS_MAX + 16))

/* A WHERE clause under construction and the values it binds, in order. */
struct hr_sqlw {
	char sql[8192];
	size_t len;
	int n;
	bool overflow; /* a condition did not fit: hr_sqlw_prepare() refuses the query */
	struct {
		const char *text; /* NULL: num */
		int64_t num;
	} binds[HR_SQLW_BINDS];
};

void hr_sqlw_put(struct hr_sqlw *, const char *text);
void hr_sqlw_bind(struct hr_sqlw *, const char *text, int64_t num);
/* One condition with one `?`, ANDed to the others; _text and _num add nothing
 * for NULL and 0. */
void hr_sqlw_add(struct hr_sqlw *, const char *cond, const char *text, int64_t num);
void hr_sqlw_text(struct hr_sqlw *, const char *cond, const char *v);
void hr_sqlw_num(struct hr_sqlw *, const char *cond, int64_t v);
void hr_sqlw_any(struct hr_sqlw *, const char *col, const struct hr_match *, bool globs);
void hr_sqlw_kinds(struct hr_sqlw *, uint64_t kinds);
/* A subquery ANDed: `head`, the conditions of `sub`, `tail`, with sub's binds. */
void hr_sqlw_splice(
    struct hr_sqlw *, const char *head, const struct hr_sqlw *sub, const char *tail);
/* head, the clause (w may be NULL), tail, prepared with its values bound; HR_EINVAL
 * when a condition did not fit. */
int hr_sqlw_prepare(sqlite3 *db, const char *head, const struct hr_sqlw *w, const char *tail,
    sqlite3_stmt **st, struct hr_error *);
/* Steps a page of `limit` rows, column 0 its key; *next_cursor is the last key
 * emitted when there are more (one more row is fetched to know), else 0. */
int hr_sqlw_run_page(sqlite3 *db, sqlite3_stmt *st, unsigned limit,
    int (*emit)(sqlite3_stmt *, void *), void *ctx, int64_t *next_cursor, struct hr_error *);

/* sqlite_facets.c, the readers' side: the facets a listing's filter matches. A
 * union of more walks than this would read more entries than scanning a
 * table that most events match (sqlite_read.c). */
#define HR_FACET_PARTS 32
struct hr_facet_ids {
	int64_t v[HR_FACET_PARTS];
	size_t n;
	bool many; /* more matched than v holds */
};
bool hr_sqlite_names_facets(const struct hr_event_filter *);
int hr_sqlite_facets_matching(
    sqlite3 *db, const struct hr_event_filter *, struct hr_facet_ids *, struct hr_error *);
/* AND +facet IN (the facets the filter matches): a check of each row, no walk. */
void hr_sqlite_where_facets_in(struct hr_sqlw *, const struct hr_event_filter *);

/* A text column as C text (NULL for NULL), valid until the next step. */
static inline const char *
hr_sqlite_text(sqlite3_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st, col);
}

/* sqlite_due.c */
int hr_sqlite_due_deliveries(struct hr_store_backend *, const char *destination, int64_t now_us,
    bool ordered, unsigned limit, char **window, hr_due_cb, void *arg, int64_t *next_due_us,
    struct hr_error *);
int hr_sqlite_next_due(struct hr_store_backend *, const char *destination, int64_t *out_us);

/* sqlite_read.c */
int hr_sqlite_list_events(struct hr_store_backend *, const struct hr_event_filter *,
    hr_event_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
int hr_sqlite_events_after(struct hr_store_backend *, const struct hr_event_filter *,
    int64_t after_seq, hr_event_row_cb, void *arg, struct hr_error *);
int hr_sqlite_get_event(
    struct hr_store_backend *, const char *id, hr_event_row_cb, void *arg, struct hr_error *);
int hr_sqlite_list_sessions(struct hr_store_backend *, const struct hr_session_filter *,
    hr_session_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
int hr_sqlite_get_session(struct hr_store_backend *, const char *ref, hr_session_row_cb scb,
    hr_event_row_cb ecb, void *arg, unsigned max_events, bool *truncated, struct hr_error *);
int hr_sqlite_list_rejections(struct hr_store_backend *, const struct hr_rejection_filter *,
    hr_rejection_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
int hr_sqlite_get_rejection(
    struct hr_store_backend *, const char *id, hr_rejection_row_cb, void *arg, struct hr_error *);
int hr_sqlite_pending_destinations(
    struct hr_store_backend *, hr_name_cb, void *arg, struct hr_error *);
int hr_sqlite_destination(struct hr_store_backend *, const char *name,
    struct hr_destination_row *out, char *reason_buf, size_t reason_len, struct hr_error *);
int hr_sqlite_list_deliveries(struct hr_store_backend *, const struct hr_delivery_filter *,
    hr_delivery_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
int hr_sqlite_event_deliveries(struct hr_store_backend *, const char *event_id, int64_t after_id,
    hr_delivery_row_cb dcb, hr_attempt_row_cb acb, void *arg, int64_t *next_cursor,
    struct hr_error *);
int hr_sqlite_replay_count(
    struct hr_store_backend *, const struct hr_replay *, int64_t *count, struct hr_error *);

/* sqlite_stmts.c: statements prepared once for a run of many (a pruning pass), found
 * by their text (its address first: the texts are constants). */
#define HR_SQLITE_STMTS 48
struct hr_sqlite_stmts {
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} v[HR_SQLITE_STMTS];
	int n;
};
/* `sql`'s statement, prepared at its first use (NULL: SQLite's error, on `db`). */
sqlite3_stmt *hr_sqlite_stmts_get(struct hr_sqlite_stmts *, sqlite3 *db, const char *sql);
/* Done with `st`, run to its end and reset: kept, or finalized when there was no room. */
void hr_sqlite_stmts_done(struct hr_sqlite_stmts *, sqlite3_stmt *st);
void hr_sqlite_stmts_free(struct hr_sqlite_stmts *);

/* sqlite_prune.c */
int hr_sqlite_prune(
    struct hr_store_backend *, const struct hr_retention *, struct hr_prune_result *);

/* sqlite_shrink.c */
/* max_size's walks start over from the start of every source. */
void hr_sqlite_size_walks_restart(struct hr_store_backend *);
/* An event of `source` received at `at_us` is stored: that source's walk of
 * payloads goes back to it if it was past it (writer only). */
void hr_sqlite_size_walk_back(struct hr_store_backend *, const char *source, int64_t at_us);

/* sqlite_hold.c: the max_size hold */
/* The hold as the database keeps it (schema 16), at open and after a rollback;
 * the walks start over. */
int hr_sqlite_hold_load(struct hr_store_backend *, struct hr_error *);
/* When the event of the oldest pending delivery came (0: none is pending). */
int hr_sqlite_oldest_pending(struct hr_store_backend *, int64_t *at_us);
/* Each pass: the hold moves on to the oldest pending delivery's event, or ends. */
int hr_sqlite_hold_follow(struct hr_store_backend *);
/* The hold begins, or moves on, at `now_us`, in the pass's transaction. */
int hr_sqlite_hold_begin(struct hr_store_backend *, int64_t now_us);

/* sqlite_size.c: up to `pages` free pages back to the file system (PRAGMA
 * incremental_vacuum), in the writer's transaction; *given: how many, *left:
 * some are left. A database without auto_vacuum=INCREMENTAL is said once. */
int hr_sqlite_give_back(struct hr_store_backend *, int pages, uint64_t *given, bool *left);
int hr_sqlite_size(struct hr_store_backend *, struct hr_store_size *out);
int hr_sqlite_disk_free(struct hr_store_backend *, uint64_t *out);

#endif
