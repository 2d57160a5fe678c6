/*
 * sqlite_pass.h - one pruning pass of the SQLite engine, shared by its two
 * halves: the retain rules (sqlite_prune.c, which runs the pass) and max_size
 * (sqlite_shrink.c). Private to those two files.
 */
#ifndef HR_SQLITE_PASS_H
#define HR_SQLITE_PASS_H

#include "sqlite_int.h"

/*
 * Every statement binds the same way, unused parameters aside: ?1 a source,
 * ?2 a received_at cutoff, ?3 now, ?4 a row limit, ?5 a received_at floor
 * (see sql_head_payload: where the oldest candidate is known to be), ?6 and ?7
 * the highest events.seq and rejections.seq that may go (a max_size hold's).
 */
struct pass {
	struct hr_store_backend *b;
	int64_t now;
	int64_t budget; /* rows this pass may still change */
	int64_t floor;  /* ?5: no candidate is older (a max_size chunk's source head), else 0 */
	int64_t upto_events, upto_rejections; /* ?6, ?7: INT64_MAX but under a hold */
	struct hr_prune_result res;
	struct hr_prune_result kept; /* res at the last hr_pass_keep(): what a failure leaves */
	bool vacuum_left;
	bool scan_left;       /* an age walk stopped short of its cutoff */
	bool blocked;         /* max_size: a look cut short kept a chunk from what it found */
	int orphan_windows;   /* max_size: windows of dedup keys it may still look at */
	int64_t keys_restart; /* max_size: where the dedup keys' look goes back to (0: the start) */
	int64_t steps;        /* VM steps of its statements so far */
	int64_t page_size;    /* max_size: the database's, once read (0: not yet) */
	bool rejections_gone; /* max_size: none left that may go (none comes during a pass) */
	int64_t look_steps;   /* max_size: of its looks' */
	/* Its statements, each prepared once in the pass: a pass of one-row chunks
	 * prepared some 60,000, two thirds of its time (review R39). */
	struct hr_sqlite_stmts stmts;
};

/* By event (deliveries_event): the planner, without statistics, would walk every pending row. */
#define NOT_PENDING                                                                                \
	" AND NOT EXISTS (SELECT 1 FROM deliveries d INDEXED BY deliveries_event"                  \
	"  WHERE d.event_seq = e.seq AND d.status = 0)"

/* sqlite_prune.c */
/*
 * Run `sql` to its end, bound the same way for every statement; *changes: the rows
 * it changed, *first: the first column of its first row (left alone when it has
 * none). Either may be NULL.
 */
int hr_pass_step(struct pass *, const char *sql, const char *source, int64_t cutoff, int64_t limit,
    int64_t *changes, int64_t *first);
int hr_pass_run(struct pass *, const char *sql, const char *source, int64_t cutoff, int64_t limit,
    int64_t *changes);
/* Delete the rows of `source` received before `cutoff` (at most `limit`). */
int hr_pass_delete_rows(
    struct pass *, const char *source, int64_t cutoff, int64_t limit, int64_t *done);
/* Prune the payloads of `source` received before `cutoff` (at most `limit`). */
int hr_pass_prune_payloads(
    struct pass *, const char *source, int64_t cutoff, int64_t limit, int64_t *done);
/* What the pass did so far stays with the batch, under a new savepoint. */
int hr_pass_keep(struct pass *);

/* sqlite_shrink.c */
/* `source`'s rows: its max_size walk of them starts no later than `from` (its
 * payloads went from there on, so its rows there may go). */
void hr_pass_walk_rows_from(struct hr_store_backend *, const char *source, int64_t from);
/* While the pages in use are over `max_size`: the oldest rejections, dedup keys
 * of events gone, payloads and rows, in chunks. */
int hr_pass_to_size(struct pass *, int64_t max_size, int64_t interval_us);

#endif
