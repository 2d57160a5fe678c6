/*
 * pg_int.h - what the PostgreSQL engine's files share: its state, bound
 * parameters and binary result columns. Only src/store/pg*.c include it;
 * nothing else in hookrelay names libpq.
 *
 *   pg_db.c       parameters, results, connections, the reader pool, health
 *   pg_schema.c   the schema and its forward-only migrations (advisory lock)
 *   pg_write.c    the writer's statements: one function per write
 *   pg_where.c    the reads' WHERE clause of numbered parameters, a keyset page
 *   pg_read.c     filtered, keyset-paged reads
 *   pg_due.c      the forwarder's claims of due deliveries (SKIP LOCKED)
 *   pg_prune.c    pruning passes, one node at a time (advisory lock)
 *   pg.c          open, close, LISTEN, leases of gone nodes, the table of operations
 *   pg_migrate.c  `hookrelay migrate`: a SQLite file into PostgreSQL
 */
#ifndef HR_PG_INT_H
#define HR_PG_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#include "agewalk.h"
#include "hr/cfg.h"
#include "hr/store_ops.h"
#include "hr/store_pg.h"

/* A libpq message as one log line (a newline ends it; DETAIL and HINT lines may
 * follow): the buffer lives to the end of the statement that logs it. */
#define PG_ONE_LINE(msg) hr_one_line((msg), (char[512]){ 0 }, 512)

/* Advisory lock keys (pg_advisory_lock): 'hrel' in the high half, what in the low. */
#define PG_LOCK_MIGRATE   INT64_C(0x6872656c00000001) /* schema migrations, at start */
#define PG_LOCK_EVENTS    INT64_C(0x6872656c00000002) /* event seq order = commit order */
#define PG_LOCK_RETENTION INT64_C(0x6872656c00000003) /* one pruning node at a time */
#define PG_LOCK_COUNTS    INT64_C(0x6872656c00000004) /* one node folds delivery counts */

/* NOTIFY channels: what another node committed. */
#define PG_CHANNEL_EVENTS     "hookrelay_events"
#define PG_CHANNEL_DELIVERIES "hookrelay_deliveries"

/* `agg`, an aggregate over the deliveries (`p`) of the event whose seq is
 * `seq` (an SQL expression), and whether any of them holds `cond`. The planner
 * cannot flatten it into a join, and the one condition an index can take is
 * event_seq, so it is a probe of deliveries_event whatever the statistics say.
 * As [NOT] EXISTS on statistics that knew few pending deliveries (tables never
 * analyzed, or analyzed before a burst), a probe for a pending delivery read
 * the pending ones through deliveries_due or deliveries_status once per event:
 * a replay of 15,000 events read 112 M index entries in 11 s, and pruning
 * passes past 15,000 held events 451 M (tests/pg/test_pg_plans.py). */
#define PG_OF_DELIVERIES(seq, agg) " (SELECT " agg " FROM deliveries p WHERE p.event_seq = " seq ")"
#define PG_ANY_DELIVERY(seq, cond)                                                                 \
	" coalesce(" PG_OF_DELIVERIES(seq, "bool_or(" cond ")") ", false)"

/* Parameters of one statement: text, or binary for bytea; NULL for SQL NULL. Each
 * has its type (text, int8, float8, bytea; NULL: left to the server), so one the
 * statement does not use needs no cast to be accepted. */
/* Room for every event filter at its documented bound (16 values of each repeatable
 * one, 8 kinds inline, 4 query.NAME pairs, the range and the cursor: under 100). */
#define PG_PARAMS_MAX 128
struct pg_params {
	Oid type[PG_PARAMS_MAX];
	const char *v[PG_PARAMS_MAX];
	int len[PG_PARAMS_MAX];
	int fmt[PG_PARAMS_MAX];
	char num[PG_PARAMS_MAX][24]; /* the text of numeric parameters */
	int n;
	bool overflow; /* more than PG_PARAMS_MAX: the statement is refused */
};

void pgp_text(struct pg_params *, const char *v);         /* borrowed until executed */
void pgp_text_or_null(struct pg_params *, const char *v); /* NULL: SQL NULL */
void pgp_int(struct pg_params *, int64_t v);
void pgp_double(struct pg_params *, double v);
void pgp_null(struct pg_params *);
void pgp_bytes(struct pg_params *, const void *v, size_t len); /* bytea, binary */

/* Statements prepared on one connection, by the address of their (static) text:
 * the writer's, which runs the same few thousands of times a second. */
#define PG_PREPARED_MAX 48
struct pg_prepared {
	PGconn *conn; /* the connection they were prepared on; another one starts afresh */
	const char *sql[PG_PREPARED_MAX];
	unsigned n;
};

/* The slot of `sql` in `cache` on `c` (another connection starts the cache
 * afresh), and in `name` its statement's name: below cache->n, prepared; equal to
 * it, not yet (prepare it under `name`, then record it); PG_PREPARED_MAX, the
 * cache is full (run it unprepared, `name` unset). */
#define PG_NAME_LEN 16
unsigned pg_prepared_find(struct pg_prepared *, PGconn *c, const char *sql, char name[PG_NAME_LEN]);
/* pg_exec() through a statement prepared once per connection (parse and plan once).
 * `sql` must be a string that lives as long as the program (a literal). */
PGresult *pg_exec_prepared(
    struct pg_prepared *, PGconn *, const char *sql, const struct pg_params *);

/* The deadline of a statement sent now, for pg_next_result(): [storage]
 * statement_timeout from now (monotonic µs), 0 for none; the timeout is set by
 * pg_set_statement_timeout() (0: none, the default: `hookrelay migrate`). */
void pg_set_statement_timeout(int64_t us);
/* The server ends `c`'s session once idle in a transaction that long (pg_db.c):
 * set on every new connection and, after the migration, on the writer's. */
bool pg_set_idle_limit(PGconn *c);
int64_t pg_deadline(void);
/* PQgetResult() of the command sent on `c`, waiting at most until `*deadline_us`;
 * then the statement is cancelled (`*cancelled`, its result an error), and if the
 * server does not answer that either, the connection is shut down (CONNECTION_BAD).
 * `what` names the statement in the log. */
PGresult *pg_next_result(PGconn *c, int64_t *deadline_us, bool *cancelled, const char *what);
/* Did this thread's last pg_exec() / pg_exec_prepared() / pipe run out of time? */
bool pg_timed_out(void);
void pg_timed_out_clear(void);

/* A run of statements sent at once, their results read in the order sent
 * (pg_pipe.c). pg_pipe_send() as many as needed, pg_pipe_sync() to send them,
 * then pg_pipe_next() once per statement for its result (new; NULL when it
 * failed, was skipped after a failure, or was never sent), and pg_pipe_close()
 * once: HR_OK if every statement worked. Statements are prepared through
 * `cache` as by pg_exec_prepared(); `sql` must be a literal. A pipe whose
 * connection could not be used (sending failed) leaves it closed, to be replaced. */
struct pg_pipe {
	PGconn *c;
	struct pg_prepared *cache;
	struct pg_pipe_item *items; /* what was sent, in order (pg_pipe.c) */
	size_t n, cap, next;
	size_t unsynced; /* items sent since the last sync */
	int64_t deadline;
	bool cancelled;
	bool failed;     /* a statement failed or was not sent */
	bool broken;     /* the connection no longer follows the items */
	bool begin_lost; /* its BEGIN (pg_pipe_begin) found no connection: nothing ran */
};
bool pg_pipe_open(struct pg_pipe *, struct pg_prepared *cache, PGconn *c);
void pg_pipe_send(struct pg_pipe *, const char *sql, const struct pg_params *p);
/* Not prepared: planned for its tables as they are at each run (run_planned()). */
void pg_pipe_send_planned(struct pg_pipe *, const char *sql, const struct pg_params *p);
/* BEGIN as the pipe's first statement; its result is read (and dropped) before the next. */
void pg_pipe_begin(struct pg_pipe *);
/* SAVEPOINT, RELEASE...: read by the pipe, failing it if they fail. */
void pg_pipe_control(struct pg_pipe *, const char *sql);
bool pg_pipe_sync(struct pg_pipe *);
PGresult *pg_pipe_next(struct pg_pipe *);
bool pg_pipe_next_ok(struct pg_pipe *);           /* the next result worked; it is dropped */
bool pg_pipe_read_ok(struct pg_pipe *, size_t n); /* the next n worked */
int pg_pipe_close(struct pg_pipe *);

/* Run `sql` with `p` (NULL: none); binary results. NULL with the error logged
 * unless the result is PGRES_COMMAND_OK or PGRES_TUPLES_OK. */
PGresult *pg_exec(PGconn *, const char *sql, const struct pg_params *p);
/* Same, with the failure in `err` as HR_EDB. */
PGresult *pg_query(PGconn *, const char *sql, const struct pg_params *p, struct hr_error *err);

/* Binary result columns. NULL reads as NULL / 0 / false. */
bool pgc_null(const PGresult *, int row, int col);
const char *pgc_text(const PGresult *, int row, int col);
int64_t pgc_int(const PGresult *, int row, int col); /* int2, int4 or int8 */
double pgc_double(const PGresult *, int row, int col);
bool pgc_bool(const PGresult *, int row, int col);
size_t pgc_len(const PGresult *, int row, int col);

/* A lease this node's forwarder owes back (pg_due.c): the rows of a claim it did
 * not take (`ids`, an array literal; new) or, `ids` NULL, every row of a claim
 * whose answer it lost, for `destination` (new); `until`, the end the claim wrote. */
#define PG_OWED_MAX 16
struct pg_owed {
	char *destination, *ids;
	int64_t until;
};

struct hr_store_backend {
	char *url;
	int64_t lease_us;
	char node[128]; /* this node's name in deliveries.locked_by: host:pid:scope */

	/* writer thread only */
	PGconn *w;
	struct pg_prepared wprep;
	int64_t next_connect_us; /* a failed connect is not tried again before this */
	bool begin_pending;      /* BEGIN goes with the transaction's first statement(s) */
	bool commit_with_write;  /* ... and COMMIT with its last (store_ops.h) */
	bool savepoint_pending;  /* SAVEPOINT and RELEASE go with the next statement(s) */
	bool release_pending;
	bool savepoint_with_begin; /* the last pipe took the BEGIN and a SAVEPOINT along */
	bool committed;            /* that COMMIT answered: commit() has nothing to send */
	bool events_locked;        /* this transaction holds PG_LOCK_EVENTS */
	bool notify_events, notify_deliveries; /* NOTIFY at commit */
	bool lost_in_batch; /* the connection went, or a run's COMMIT failed: the batch fails whole
	                     */
	bool timed_out_in_batch;   /* a statement of this batch ran out of time: it fails whole */
	struct hr_age_walks walks; /* pruning by age: pg_prune.c */
	size_t age_rule_next;      /* the retain rule a pass begins with: pg_prune.c */

	/* forwarder thread only: leases to give back at its next poll (pg_due.c) */
	struct pg_owed owed[PG_OWED_MAX];
	unsigned nowed;

	/* read pool: readers_max slots, the first nreaders of them claimed (made, or
	 * being made by a thread without the lock); nfree of them in free_readers */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	PGconn **readers;
	unsigned readers_max, nreaders, nfree;
	PGconn **free_readers;

	/* LISTEN (hr_store_ops.watch) */
	pthread_t listener;
	bool listener_started;
	atomic_bool stopping;
	int wake_fd; /* eventfd: stopping, so the LISTEN thread's wait ends at once (-1: none) */
	hr_store_remote_fn remote;
	void *remote_arg;

	/* health */
	pthread_mutex_t hmu;
	struct hr_store_health health;
};

/* pg_db.c */
/* Connect with the daemon's session settings; NULL with `err` (may be NULL) set. */
PGconn *hr_pg_connect(struct hr_store_backend *, struct hr_error *err);
PGconn *hr_pg_connect_url(const char *url, struct hr_error *err);
/* Several statements without parameters (a migration step, LISTEN): the simple protocol. */
int hr_pg_exec_script(PGconn *, const char *sql, struct hr_error *err);
/* Is an idle connection still there? The server closes one it restarts or
 * times out (idle_session_timeout) with a message libpq reads only at the
 * next query, which then fails: read what is waiting first. */
bool hr_pg_conn_alive(PGconn *);
/* A read connection (made if none is free and the pool is not full; blocks while
 * all are in use; reconnects a broken one) and back. */
PGconn *hr_pg_reader_get(struct hr_store_backend *);
void hr_pg_reader_put(struct hr_store_backend *, PGconn *);
/* Record the database reachable (why NULL) or not (why). Any thread. */
void hr_pg_set_reachable(struct hr_store_backend *, const char *why);
void hr_pg_health(struct hr_store_backend *, struct hr_store_health *out);

/* pg_schema.c: create or migrate the schema, under the migration advisory lock. */
int hr_pg_migrate_schema(PGconn *, struct hr_error *err);
int hr_pg_schema_version(void);

/* pg_write.c */
int hr_pg_begin(struct hr_store_backend *);
int hr_pg_commit(struct hr_store_backend *);
void hr_pg_commit_with_write(struct hr_store_backend *);
void hr_pg_rollback(struct hr_store_backend *);
int hr_pg_savepoint(struct hr_store_backend *);
int hr_pg_release(struct hr_store_backend *, bool undo);
bool hr_pg_durable(struct hr_store_backend *);
bool hr_pg_in_transaction(struct hr_store_backend *);
int hr_pg_put_rejection(struct hr_store_backend *, const struct hr_rejection_write *);
/* A statement on the writer's connection, prepared once (pg_exec_prepared());
 * `out` (may be NULL) gets its result, new. A timeout is noted for the batch. */
int pg_writer_run(
    struct hr_store_backend *, const char *sql, const struct pg_params *p, PGresult **out);
/* A pipe on the writer's connection, with the transaction's BEGIN first when
 * nothing of the transaction was sent yet; false if it cannot be used (close it). */
bool pg_writer_pipe(struct hr_store_backend *, struct pg_pipe *);
/* What pg_writer_pipe() would send first, sent alone: before a statement run on
 * the writer's connection directly. */
int pg_writer_flush(struct hr_store_backend *);
/* pg_pipe_close() on the writer's pipe; a timeout is noted for the batch. */
int pg_close_pipe(struct hr_store_backend *, struct pg_pipe *);
/* The transaction's NOTIFYs and COMMIT in a pipe (pg_write.c): pg_commit_send()
 * before its sync, pg_commit_read() after the results before them were read,
 * pg_commit_end() with what pg_close_pipe() returned: HR_OK if it committed,
 * durably. A run that is the transaction's last sends them when
 * b->commit_with_write (pg_commit_wanted()). */
struct pg_commit {
	bool sent;
	size_t notifies; /* NOTIFYs sent before the COMMIT */
	char warning[200];
	PQnoticeReceiver before;
	PGresult *r; /* COMMIT's answer */
};
bool pg_commit_wanted(struct hr_store_backend *);
void pg_commit_send(struct hr_store_backend *, struct pg_pipe *, struct pg_commit *);
void pg_commit_read(struct pg_pipe *, struct pg_commit *);
int pg_commit_end(struct hr_store_backend *, struct pg_commit *, int rc);
/* After a closed pipe whose BEGIN found the connection gone (the server closed it
 * after the writer looked): nothing of the transaction ran, so it may start again
 * on a new connection. True if it may: send the same writes again. */
bool pg_writer_reopen(struct hr_store_backend *, const struct pg_pipe *);
int hr_pg_record_attempts(struct hr_store_backend *, const struct hr_attempt *const *in, size_t n);
int hr_pg_lease(struct hr_store_backend *, const struct hr_lease *);
int hr_pg_set_destination(struct hr_store_backend *, const struct hr_destination_state *);
int hr_pg_probe_write(struct hr_store_backend *);
int hr_pg_replay(
    struct hr_store_backend *, const struct hr_replay *, int64_t *created, int64_t *next_after);
int hr_pg_discard(
    struct hr_store_backend *, const struct hr_discard *, int64_t *discarded, int64_t *next_after);
int hr_pg_expire_dedup(struct hr_store_backend *, int64_t now_us, unsigned max, unsigned *done);
int hr_pg_trim_rejections(struct hr_store_backend *, unsigned keep, uint64_t *dropped);
int hr_pg_fold_counts(struct hr_store_backend *, unsigned max, unsigned *done);
/* SELECT count(*) of the events a destination replay would send again. */
extern const char hr_pg_replay_count_sql[];

/* pg_events.c */
int hr_pg_put_events(struct hr_store_backend *, const struct hr_event_write *const *in,
    struct hr_store_result *const *res, size_t n);
int hr_pg_accept_rejection(
    struct hr_store_backend *, const struct hr_accept_write *, struct hr_store_result *);
/* PG_LOCK_EVENTS for the writer's transaction, unless it holds it already. */
int pg_lock_events(struct hr_store_backend *);

/* pg_where.c */

/* A source or kind glob's LIKE pattern (pg_where.c glob_to_like()): a name's
 * characters, each escaped, with a % before, between and after them. */
#define PG_GLOB_SIZE (3 * HR_NAME_MAX + 2)

/* A WHERE clause under construction and its parameters, numbered in order. */
struct hr_pgw {
	char sql[8192];
	size_t len;
	bool overflow; /* a condition did not fit: hr_pgw_run() refuses the query */
	struct pg_params p;
	char globs[HR_MATCH_VALUES][PG_GLOB_SIZE]; /* GLOB patterns as LIKE patterns */
	unsigned nglobs;
	char kinds[4096]; /* the kind filter as one text[] literal: {a,b,...} */
};

void hr_pgw_put(struct hr_pgw *, const char *text);
/* "$N" for the next parameter, with a cast ("" for none). */
void hr_pgw_param(struct hr_pgw *, const char *cast);
/* " WHERE " first, " AND " after. */
void hr_pgw_and(struct hr_pgw *);
/* `col op $N` ANDed to the others; _text and _num add nothing for NULL and 0. */
void hr_pgw_text_cond(struct hr_pgw *, const char *col, const char *op, const char *v);
void hr_pgw_int_cond(struct hr_pgw *, const char *col, const char *op, int64_t v);
void hr_pgw_text(struct hr_pgw *, const char *col, const char *v);
void hr_pgw_num(struct hr_pgw *, const char *col, const char *op, int64_t v);
void hr_pgw_any(struct hr_pgw *, const char *col, const struct hr_match *, bool globs);
void hr_pgw_kinds(struct hr_pgw *, uint64_t kinds);
/* head, the clause, tail, run with its parameters; NULL (err set) on failure,
 * HR_EINVAL when a condition did not fit. */
PGresult *hr_pgw_run(
    PGconn *c, const char *head, struct hr_pgw *w, const char *tail, struct hr_error *err);
typedef int (*hr_pgw_emit_fn)(const PGresult *, int row, void *ctx);
/* Emits a page of at most `limit` rows of `r`, column 0 its key (r holds one
 * more when a next page exists: *next_cursor is then the last key emitted). */
/* The query and its page a row at a time, for rows that carry bodies. */
int hr_pgw_run_rows(PGconn *, const char *head, struct hr_pgw *, const char *tail, unsigned limit,
    hr_pgw_emit_fn emit, void *ctx, int64_t *next_cursor, struct hr_error *err);
int hr_pgw_run_page(const PGresult *r, unsigned limit, hr_pgw_emit_fn emit, void *ctx,
    int64_t *next_cursor, struct hr_error *err);

/* pg_due.c */
int hr_pg_due_deliveries(struct hr_store_backend *, const char *destination, int64_t now_us,
    bool ordered, unsigned limit, char **window, hr_due_cb, void *arg, int64_t *next_due_us,
    struct hr_error *);
int hr_pg_next_due(struct hr_store_backend *, const char *destination, int64_t *out_us);
/* What is still owed at close (release_own_leases gave it back): forgotten. */
void hr_pg_owed_free(struct hr_store_backend *);

/* pg_read.c */
int hr_pg_list_events(struct hr_store_backend *, const struct hr_event_filter *, hr_event_row_cb,
    void *arg, int64_t *next_cursor, struct hr_error *);
int hr_pg_events_after(struct hr_store_backend *, const struct hr_event_filter *, int64_t after_seq,
    hr_event_row_cb, void *arg, struct hr_error *);
int hr_pg_get_event(
    struct hr_store_backend *, const char *id, hr_event_row_cb, void *arg, struct hr_error *);
int hr_pg_list_sessions(struct hr_store_backend *, const struct hr_session_filter *,
    hr_session_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
int hr_pg_get_session(struct hr_store_backend *, const char *ref, hr_session_row_cb,
    hr_event_row_cb, void *arg, unsigned max_events, bool *truncated, struct hr_error *);
int hr_pg_list_rejections(struct hr_store_backend *, const struct hr_rejection_filter *,
    hr_rejection_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
int hr_pg_get_rejection(
    struct hr_store_backend *, const char *id, hr_rejection_row_cb, void *arg, struct hr_error *);
int hr_pg_pending_destinations(struct hr_store_backend *, hr_name_cb, void *arg, struct hr_error *);
int hr_pg_destination(struct hr_store_backend *, const char *name, struct hr_destination_row *out,
    char *reason_buf, size_t reason_len, struct hr_error *);
int hr_pg_list_deliveries(struct hr_store_backend *, const struct hr_delivery_filter *,
    hr_delivery_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
int hr_pg_event_deliveries(struct hr_store_backend *, const char *event_id, int64_t after_id,
    hr_delivery_row_cb, hr_attempt_row_cb, void *arg, int64_t *next_cursor, struct hr_error *);
int hr_pg_replay_count(
    struct hr_store_backend *, const struct hr_replay *, int64_t *count, struct hr_error *);

/* pg_prune.c: one bounded pass by age, on one node at a time (an advisory lock). */
int hr_pg_prune(struct hr_store_backend *, const struct hr_retention *, struct hr_prune_result *);

#endif
