/*
 * sqlite_prune.c - the SQLite engine's pruning passes (the free pages given
 * back after one, and the size figures of /metrics: sqlite_size.c; max_size's
 * hold: sqlite_hold.c).
 *
 * The store's retention timer (retention.c) queues a pass every
 * prune_interval; it runs on the writer thread inside a batch transaction
 * like every other write, so there is still one writer. A pass changes at
 * most PASS_ROWS rows, takes retain rules up to AGE_STEPS and PASS_CHUNKS
 * chunks toward max_size, reads bounded windows (below) and runs each
 * statement prepared once, so it never holds the writer long; while it leaves
 * work behind it says so (`more`) and the next pass follows quickly.
 *
 * A pass, for each source with a retain: event rows older than twice it go with
 * their attempts and deliveries (and sessions left without events), once their
 * payload went; payloads older than retain become an empty body with pruned_at
 * set; rejected bodies older than retain go. The first two walk the source's
 * events a window at a time (agewalk.h: a backlog of a million pending events
 * once stalled ingest for over a second per pass). Then, while the pages in use
 * are over max_size: the oldest rejections, then the oldest payloads, then the
 * oldest rows, each source's found by a walk that goes on from pass to pass as
 * the age walks do. An event with a pending delivery is never touched, so a
 * delivery always finds its body. Last, up to VACUUM_PAGES free pages go back
 * (a database created without auto_vacuum=INCREMENTAL keeps them for reuse).
 */
#include <stdlib.h>
#include <string.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "sqlite_int.h"

#define PASS_ROWS    5000 /* rows one pass may change */
#define SIZE_CHUNK   16   /* rows between two looks at the size */
#define VACUUM_PAGES 2048 /* free pages given back per pass (8,192 took 83 ms) */
/* Chunks toward max_size a pass may take: sources whose events came interleaved
 * give chunks of one event each (a chunk goes up to the next source's oldest),
 * and 5,000 of them held the writer 0.25 s, a dozen statements each (R39). */
#define PASS_CHUNKS 250
/* The VM steps after which a pass takes no further age rule: the next pass begins
 * with it. A window of each rule's walk through a pending backlog, 30 sources,
 * was a pass of 6.9 million steps, 0.35-0.63 s (review R39); one window is some
 * 230,000. */
#define AGE_STEPS 500000

/* ---- SQL on the writer connection ---- */

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
	bool vacuum_left;
	bool scan_left;       /* an age walk stopped short of its cutoff */
	bool blocked;         /* max_size: a look cut short kept a chunk from what it found */
	int orphan_windows;   /* max_size: windows of dedup keys it may still look at */
	int64_t steps;        /* VM steps of its statements so far */
	int64_t page_size;    /* max_size: the database's, once read (0: not yet) */
	bool rejections_gone; /* max_size: none left that may go (none comes during a pass) */
	int64_t look_steps;   /* max_size: of its looks' */
	/* Its statements, each prepared once in the pass: a pass of one-row chunks
	 * prepared some 60,000, two thirds of its time (review R39). */
	struct hr_sqlite_stmts stmts;
};

/*
 * Run `sql` to its end, bound the same way for every statement; *changes: the rows
 * it changed, *first: the first column of its first row (left alone when it has
 * none). Either may be NULL.
 */
static int
step_all(struct pass *ps, const char *sql, const char *source, int64_t cutoff, int64_t limit,
    int64_t *changes, int64_t *first)
{
	sqlite3 *db = ps->b->wdb;
	sqlite3_stmt *st = hr_sqlite_stmts_get(&ps->stmts, db, sql);
	bool seen = false;
	int rc;

	if (st == NULL) {
		log_warnx("store: prune: %s: %s", sql, sqlite3_errmsg(db));
		return HR_EDB;
	}
	/* A slot a statement does not use (?3 when it uses ?4) may be bound all the same. */
	if (sqlite3_bind_parameter_count(st) >= 1)
		sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, cutoff);
	if (sqlite3_bind_parameter_count(st) >= 3)
		sqlite3_bind_int64(st, 3, ps->now);
	if (sqlite3_bind_parameter_count(st) >= 4)
		sqlite3_bind_int64(st, 4, limit);
	if (sqlite3_bind_parameter_count(st) >= 5)
		sqlite3_bind_int64(st, 5, ps->floor);
	if (sqlite3_bind_parameter_count(st) >= 6)
		sqlite3_bind_int64(st, 6, ps->upto_events);
	if (sqlite3_bind_parameter_count(st) >= 7)
		sqlite3_bind_int64(st, 7, ps->upto_rejections);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (first != NULL && !seen) {
			*first = sqlite3_column_int64(st, 0);
			seen = true;
		}
	if (changes != NULL)
		*changes = sqlite3_changes(db);
	if (rc != SQLITE_DONE)
		log_warnx("store: prune: %s: %s", sql, sqlite3_errmsg(db));
	sqlite3_reset(st); /* its end told to a profile hook first, then its steps counted */
	ps->steps += sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 1);
	hr_sqlite_stmts_done(&ps->stmts, st);
	return rc == SQLITE_DONE ? HR_OK : HR_EDB;
}

static int
run(struct pass *ps, const char *sql, const char *source, int64_t cutoff, int64_t limit,
    int64_t *changes)
{
	return step_all(ps, sql, source, cutoff, limit, changes, NULL);
}

/* By event (deliveries_event): the planner, without statistics, would walk every pending row. */
#define NOT_PENDING                                                                                \
	" AND NOT EXISTS (SELECT 1 FROM deliveries d INDEXED BY deliveries_event"                  \
	"  WHERE d.event_seq = e.seq AND d.status = 0)"

static const char sql_prune_set[] =
    "CREATE TEMP TABLE IF NOT EXISTS prune_set (seq INTEGER PRIMARY KEY, session_id INTEGER,"
    " room TEXT)";

/* Payloads of ?1 received before ?2, oldest first. */
static const char sql_payloads[] =
    "UPDATE events SET body = X'', pruned_at = ?3 WHERE seq IN (SELECT e.seq FROM events e"
    " INDEXED BY events_unpruned WHERE e.source = ?1 AND e.received_at < ?2 AND"
    " e.received_at >= ?5 AND e.pruned_at IS NULL AND e.seq <= ?6" NOT_PENDING
    " ORDER BY e.received_at LIMIT ?4)";

/*
 * Rows of ?1 received before ?2, oldest first, into prune_set: among the
 * events whose payload is pruned (events_pruned, schema 14). A row goes after
 * its payload (when both fall due at once, once the walk comes back to it), so
 * no index of every event's age is needed for it: each event paid for one at
 * its insert (5k of the writer's 71k instructions per event).
 */
static const char sql_pick_rows[] =
    "INSERT INTO temp.prune_set (seq, session_id, room) SELECT e.seq, e.session_id, e.room"
    " FROM events e"
    " INDEXED BY events_pruned WHERE e.source = ?1 AND e.received_at < ?2 AND"
    " e.received_at >= ?5 AND e.pruned_at IS NOT NULL AND e.seq <= ?6" NOT_PENDING
    " ORDER BY e.received_at LIMIT ?4";

/* Children first: foreign keys are on. */
static const char *const sql_delete_set[] = {
	"DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq IN"
	" (SELECT seq FROM temp.prune_set))",
	"DELETE FROM deliveries WHERE event_seq IN (SELECT seq FROM temp.prune_set)",
	"DELETE FROM event_query WHERE event_seq IN (SELECT seq FROM temp.prune_set)",
	"DELETE FROM events WHERE seq IN (SELECT seq FROM temp.prune_set)",
	/* A room's session may hold only events linked to it (AgentHuman daily_room). */
	"DELETE FROM sessions WHERE (id IN (SELECT session_id FROM temp.prune_set) OR"
	" (scope = 'room' AND key IN (SELECT room FROM temp.prune_set))) AND NOT EXISTS"
	" (SELECT 1 FROM events e WHERE e.session_id = sessions.id) AND NOT (scope = 'room' AND"
	" EXISTS (SELECT 1 FROM events e WHERE e.room = sessions.key))",
	"DELETE FROM temp.prune_set",
};

/* Where the next window of an age walk ends: the received_at HR_AGE_WINDOW entries on
 * from ?5 in the statement's index, before ?2, without looking at deliveries (no
 * row: what is left before ?2 is shorter). */
static const char *const sql_window_end[HR_AGE_KINDS] = {
	[HR_AGE_ROWS] =
	    "SELECT e.received_at FROM events e INDEXED BY events_pruned WHERE"
	    " e.source = ?1 AND e.received_at < ?2 AND e.received_at >= ?5 AND"
	    " e.pruned_at IS NOT NULL ORDER BY e.received_at LIMIT 1 OFFSET " HR_AGE_WINDOW_TEXT,
	[HR_AGE_PAYLOADS] =
	    "SELECT e.received_at FROM events e INDEXED BY events_unpruned WHERE"
	    " e.source = ?1 AND e.received_at < ?2 AND e.received_at >= ?5 AND"
	    " e.pruned_at IS NULL ORDER BY e.received_at LIMIT 1 OFFSET " HR_AGE_WINDOW_TEXT,
};

static const char sql_rejections[] =
    "DELETE FROM rejections WHERE seq IN (SELECT seq FROM rejections WHERE source = ?1 AND"
    " received_at < ?2 ORDER BY seq LIMIT ?4)";

static const char sql_oldest_rejections[] =
    "DELETE FROM rejections WHERE seq IN (SELECT seq FROM rejections ORDER BY seq LIMIT ?4)";
/* Under a max_size hold (prune_to_size): by age, on its index; in seq order the
 * rejections received since the hold were read at every chunk. Committed up to
 * its start (?7): a request begun before it and stored after is as new. */
static const char sql_oldest_rejections_before[] =
    "DELETE FROM rejections WHERE seq IN (SELECT seq FROM rejections INDEXED BY"
    " rejections_received_at WHERE received_at < ?2 AND seq <= ?7 ORDER BY received_at"
    " LIMIT ?4)";

/*
 * Dedup keys whose event is gone, among the next 64 by expiry after ?5 (?4 is
 * not used: the walk is bounded by the 64, not by what it finds). Keys are kept
 * for their window whatever becomes of their event, and count toward max_size:
 * a review filled a 512 KiB cap with them, and every pass then deleted every
 * event, each answered 200 a second before, to make room for keys of events
 * already gone. A key of an event still stored stays (rows go oldest first,
 * but an event with a pending delivery stays whatever its age): the walk goes
 * on from where the last window ended, round the table (orphan_keys()).
 */
#define ORPHAN_WINDOW                                                                              \
	"SELECT source, key, event_id, expires_at FROM dedup INDEXED BY dedup_expires"             \
	" WHERE expires_at > ?5 ORDER BY expires_at LIMIT 64"
static const char sql_orphan_keys[] =
    "DELETE FROM dedup WHERE (source, key) IN (SELECT d.source, d.key FROM (" ORPHAN_WINDOW
    ") d WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = d.event_id))";
/* Where the window ends: the next one starts after it (0: none, the walk wraps). */
static const char sql_orphan_window_end[] =
    "SELECT coalesce(max(expires_at), 0) FROM (" ORPHAN_WINDOW ")";
/* Windows without a key of an event gone a pass looks at, at most (1,024 keys).
 * Each chunk looked at as many: a pass of a few hundred chunks read ~200,000
 * keys of events still stored and held ingest 0.8 s. */
#define ORPHAN_WINDOWS 16

/*
 * Per source, the received_at of the oldest payload / row a pass may take
 * (no row: none), at or after ?5: where the last look found it. Events with a
 * pending delivery are skipped one by one, so without that floor every chunk
 * of a pass walked past all of them again (a destination down for days: ~300
 * chunks times every pending event, on the writer).
 */
static const char sql_head_payload[] =
    "SELECT e.received_at FROM events e INDEXED BY"
    " events_unpruned WHERE e.source = ?1 AND e.received_at >= ?5 AND e.received_at < ?2"
    " AND e.pruned_at IS NULL AND e.seq <= ?6" NOT_PENDING " ORDER BY e.received_at LIMIT 1";
static const char sql_head_row[] =
    "SELECT e.received_at FROM events e INDEXED BY"
    " events_pruned WHERE e.source = ?1 AND e.received_at >= ?5 AND e.received_at < ?2"
    " AND e.pruned_at IS NOT NULL AND e.seq <= ?6" NOT_PENDING " ORDER BY e.received_at LIMIT 1";

/* The distinct sources of the events table, one probe of each age index per source:
 * an event is in one of them, whole or pruned. */
#define SOURCES_IN(index, cond)                                                                    \
	"SELECT name FROM (WITH RECURSIVE s(name) AS (SELECT (SELECT min(source) FROM events"      \
	" INDEXED BY " index " WHERE " cond ") UNION ALL SELECT (SELECT min(source) FROM events"   \
	" INDEXED BY " index " WHERE " cond " AND source > s.name) FROM s WHERE s.name IS NOT"     \
	" NULL) SELECT name FROM s WHERE name IS NOT NULL)"
static const char sql_sources[] =
    SOURCES_IN("events_unpruned", "pruned_at IS NULL") " UNION " SOURCES_IN(
        "events_pruned", "pruned_at IS NOT NULL") " ORDER BY name";

/* Delete the rows of `source` received before `cutoff` (at most `limit`). */
static int
delete_rows(struct pass *ps, const char *source, int64_t cutoff, int64_t limit, int64_t *done)
{
	int64_t n;
	int rc = run(ps, sql_pick_rows, source, cutoff, limit, done);

	for (size_t i = 0; rc == HR_OK && *done > 0 && i < HR_ARRAY_LEN(sql_delete_set); i++) {
		rc = run(ps, sql_delete_set[i], NULL, 0, 0, &n);
		if (i == 3 && n > 0) {
			ps->res.events += (uint64_t)n;
			/* their keys are now of events gone, and mostly the oldest to
			 * expire (rows go oldest first): the look for such keys starts
			 * there, with a window at least (under load they filled a cap,
			 * waiting for the look to come round the table) */
			ps->b->orphan_after = 0;
			ps->orphan_windows = ps->orphan_windows > 0 ? ps->orphan_windows : 1;
		} else if (i == 4)
			ps->res.sessions += (uint64_t)n;
	}
	return rc;
}

static int
prune_payloads(struct pass *ps, const char *source, int64_t cutoff, int64_t limit, int64_t *done)
{
	int rc = run(ps, sql_payloads, source, cutoff, limit, done);

	if (rc == HR_OK)
		ps->res.payloads += (uint64_t)*done;
	return rc;
}

static void walk_rows_from(struct hr_store_backend *, const char *source, int64_t from);

/*
 * One window of the walk (agewalk.h) of `source`'s events for `kind` received
 * before `cutoff`. The walk moves on only when the window was taken whole (the
 * budget not spent); a pass whose transaction then fails leaves candidates
 * behind it until the walk starts over.
 */
static int
age_window(struct pass *ps, int kind, const char *source, int64_t cutoff, int64_t *done)
{
	int64_t none = 0, found = cutoff, end,
	        *floor = hr_age_walk_floor(&ps->b->walks, source, kind);
	int rc;

	*done = 0;
	if (floor == NULL)
		floor = &none; /* out of memory: the whole walk in this pass, as it once was */
	ps->floor = *floor;
	rc = step_all(ps, sql_window_end[kind], source, cutoff, 0, NULL, &found);
	end = floor == &none ? cutoff : hr_age_window_end(*floor, found, cutoff);
	if (rc == HR_OK)
		rc = kind == HR_AGE_ROWS ? delete_rows(ps, source, end, ps->budget, done)
		                         : prune_payloads(ps, source, end, ps->budget, done);
	if (rc == HR_OK && kind == HR_AGE_PAYLOADS && *done > 0)
		walk_rows_from(ps->b, source, ps->floor);
	ps->floor = 0;
	if (rc == HR_OK && *done < ps->budget && hr_age_walk_on(floor, end, cutoff))
		ps->scan_left = true;
	return rc;
}

/* Rows at twice the age, then payloads, then rejections: each within the budget. */
static int
prune_by_age(struct pass *ps, const struct hr_retention_rule *r)
{
	int64_t n = 0;
	int rc = HR_OK;

	if (r->retain_us <= 0)
		return HR_OK;
	if (ps->budget > 0 &&
	    (rc = age_window(ps, HR_AGE_ROWS, r->source, ps->now - 2 * r->retain_us, &n)) == HR_OK)
		ps->budget -= n;
	if (rc == HR_OK && ps->budget > 0 &&
	    (rc = age_window(ps, HR_AGE_PAYLOADS, r->source, ps->now - r->retain_us, &n)) == HR_OK)
		ps->budget -= n;
	if (rc == HR_OK && ps->budget > 0 &&
	    (rc = run(ps, sql_rejections, r->source, ps->now - r->retain_us, ps->budget, &n)) ==
	        HR_OK) {
		ps->budget -= n;
		ps->res.rejections += (uint64_t)n;
	}
	return rc;
}

/* ---- max_size ---- */

/* Bytes of the pages in use, as this transaction sees them. */
static const char sql_page_count[] = "PRAGMA page_count";
static const char sql_freelist_count[] = "PRAGMA freelist_count";
static const char sql_page_size[] = "PRAGMA page_size";

static int
used_bytes(struct pass *ps, int64_t *out)
{
	int64_t pages = 0, free_pages = 0;

	if (step_all(ps, sql_page_count, NULL, 0, 0, NULL, &pages) != HR_OK ||
	    step_all(ps, sql_freelist_count, NULL, 0, 0, NULL, &free_pages) != HR_OK ||
	    (ps->page_size == 0 &&
	        step_all(ps, sql_page_size, NULL, 0, 0, NULL, &ps->page_size) != HR_OK))
		return HR_EDB;
	*out = (pages - free_pages) * ps->page_size;
	return HR_OK;
}

/*
 * What the pass did so far stays with the batch, under a new savepoint. The
 * pass runs under the writer's savepoint for its job, whose in-memory journal
 * grows with every page it changes, and SQLite walks that journal from its
 * start at the end of every statement: a pass of 5,000 one-row chunks took
 * 4.2 s, each statement 0.15 ms at its start and 6 ms at its end (review R39).
 * A failure later undoes the chunk it came in only; what went before is
 * pruned all the same, and the hold and the walks are read again or start
 * over (hr_sqlite_release()).
 */
static int
keep_so_far(struct pass *ps)
{
	int rc = hr_sqlite_release(ps->b, false);

	return rc == HR_OK ? hr_sqlite_savepoint(ps->b) : rc;
}

/* What a max_size chunk takes: payloads first, then rows. */
enum head_kind { HEAD_PAYLOAD, HEAD_ROW, HEAD_KINDS };

static const char *const head_sql[HEAD_KINDS] = { sql_head_payload, sql_head_row };

/*
 * Every source of the events table, with where its oldest candidate of each
 * kind is, looked up once per pass and again only for the source a chunk took
 * from: within the pass's transaction nothing else changes them.
 *
 * A look starts where the source's walk (b->size_walks) came to and reads at
 * most HR_AGE_WINDOW index entries. Events with a pending delivery are skipped
 * one by one and stay at the head of a source's order while their destination
 * is down: a look from the start each pass read every one of them, on the
 * writer (0.2-0.45 s a pass at 200,000: review R1). A look that finds a
 * candidate leaves the walk there; one that reads its window without finding
 * any is cut short, and the walk goes on from the window's end at the next
 * look; one that reaches the end of the index finds none, and the walk waits
 * past the end for what comes next. So a pass's looks cost LOOK_STEPS and a
 * window, and then LOOK_NEAR entries a look of the sources already looked at,
 * however long the backlogs and however many the sources;
 * an event whose delivery ended after the walk went past it is found when the
 * walk starts over (hr_sqlite_size_walks_restart()).
 */
struct look {
	int64_t head; /* the oldest candidate (INT64_MAX: none); `cut`: none before it */
	int64_t end;  /* where the look's window ended: a chunk goes no further */
	bool known;   /* looked at in this pass since the source's last chunk */
	bool cut;     /* the window ended first: a candidate may be at or after head */
	bool seen;    /* looked at in this pass at all */
};

struct sources {
	char **v;
	size_t n, cap;
	struct look *look[HEAD_KINDS];
};

/* Past the last entry of a look's index: where a walk that found none waits. */
static const char *const sql_walk_past[HEAD_KINDS] = {
	[HEAD_PAYLOAD] = "SELECT coalesce(max(e.received_at), -1) + 1 FROM events e INDEXED BY"
	                 " events_unpruned WHERE e.source = ?1 AND e.pruned_at IS NULL",
	[HEAD_ROW] = "SELECT coalesce(max(e.received_at), -1) + 1 FROM events e INDEXED BY"
	             " events_pruned WHERE e.source = ?1 AND e.pruned_at IS NOT NULL",
};

/* Where a look that reads ?4 index entries from ?5 ends (no row: it reaches the end). */
static const char *const sql_look_end[HEAD_KINDS] = {
	[HEAD_PAYLOAD] = "SELECT e.received_at FROM events e INDEXED BY events_unpruned WHERE"
	                 " e.source = ?1 AND e.received_at >= ?5 AND e.pruned_at IS NULL"
	                 " ORDER BY e.received_at LIMIT 1 OFFSET ?4",
	[HEAD_ROW] = "SELECT e.received_at FROM events e INDEXED BY events_pruned WHERE"
	             " e.source = ?1 AND e.received_at >= ?5 AND e.pruned_at IS NOT NULL"
	             " ORDER BY e.received_at LIMIT 1 OFFSET ?4",
};
#define LOOK_NEAR 64
/* The VM steps after which a pass's looks read LOOK_NEAR entries only, across
 * sources and kinds (about two windows of one backlog, some 40 ms): a window
 * each read every short backlog of many sources, and again when the pass
 * looked again from the start (50 sources with 3,000 pending: 0.55-1.03 s, a
 * review). Each walk goes on from where its look stopped at the next pass, and
 * a look cut short keeps the others' candidates after it for later, so what
 * goes is still the oldest. */
#define LOOK_STEPS 300000

static void
sources_free(struct sources *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	for (int k = 0; k < HEAD_KINDS; k++)
		free(l->look[k]);
	memset(l, 0, sizeof(*l));
}

static int
sources_add(struct sources *l, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **grown = realloc(l->v, cap * sizeof(*grown));

		if (grown == NULL)
			return HR_ENOMEM;
		l->v = grown;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(name)) == NULL)
		return HR_ENOMEM;
	l->n++;
	return HR_OK;
}

static int
list_sources(sqlite3 *db, struct sources *out)
{
	sqlite3_stmt *st = NULL;
	int rc = HR_OK, step;

	if (sqlite3_prepare_v2(db, sql_sources, -1, &st, NULL) != SQLITE_OK)
		return HR_EDB;
	while (rc == HR_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
		rc = sources_add(out, hr_sqlite_text(st, 0));
	if (rc == HR_OK && step != SQLITE_DONE)
		rc = HR_EDB;
	sqlite3_finalize(st);
	for (int k = 0; rc == HR_OK && k < HEAD_KINDS; k++)
		if ((out->look[k] = calloc(out->n + 1, sizeof(struct look))) == NULL)
			rc = HR_ENOMEM;
	return rc;
}

/*
 * The walks start over when a transaction rolls back (the rows of a chunk
 * rolled back), and, when none is in the middle of a window (walks_due()),
 * once the event of the oldest pending delivery changed since they last did
 * (the head of a backlog was delivered, died or was discarded: its events may
 * go; the hold moves with it) or WALK_RESTART prune_intervals went by (any
 * other event a walk went past that may go now: a delivery ended inside a
 * backlog, an event stored late by a slow request). Starting over every
 * prune_interval read each backlog again, in windows 50 ms apart, with nothing
 * changed in it; starting over at each move of the hold kept a walk inside a
 * backlog from ever leaving its first window (a review). A pass that finds
 * nothing to take looks again from the start before it calls itself dry
 * (prune_to_size).
 */
#define WALK_RESTART  10
#define WALK_STUCK_US (INT64_C(600) * 1000000)

void
hr_sqlite_size_walks_restart(struct hr_store_backend *b)
{
	hr_age_walks_free(&b->size_walks);
	b->size_walks_since_us = hr_time_mono_us();
	b->size_walk_cut = false;
	b->size_walks_verified = false;
	b->size_walk_high = 0;
}

void
hr_sqlite_size_walk_back(struct hr_store_backend *b, const char *source, int64_t at_us)
{
	int64_t *floor = hr_age_walk_floor(&b->size_walks, source, HEAD_PAYLOAD);

	if (floor == NULL) /* out of memory: every walk from the start */
		hr_sqlite_size_walks_restart(b);
	else if (*floor > at_us)
		*floor = at_us;
}

static int
walks_due(struct hr_store_backend *b, int64_t interval_us)
{
	int64_t pending = 0, age = hr_time_mono_us() - b->size_walks_since_us;
	int rc;

	/* In the middle of a window for this long, something keeps a walk from its
	 * end: start over all the same (no window is that long otherwise). */
	if (b->size_walk_cut && age >= 2 * WALK_RESTART * interval_us && age >= WALK_STUCK_US) {
		hr_sqlite_size_walks_restart(b);
		return HR_OK;
	}
	if (b->size_walk_cut)
		return HR_OK;
	if ((rc = hr_sqlite_oldest_pending(b, &pending)) != HR_OK)
		return rc;
	if (pending != b->size_walks_pending || age >= WALK_RESTART * interval_us)
		hr_sqlite_size_walks_restart(b);
	b->size_walks_pending = pending;
	return HR_OK;
}

/* `source`'s rows: its walk of them starts no later than `from` (its payloads
 * went from there on, so its rows there may go). */
static void
walk_rows_from(struct hr_store_backend *b, const char *source, int64_t from)
{
	int64_t *floor = hr_age_walk_floor(&b->size_walks, source, HEAD_ROW);

	if (floor != NULL && *floor > from)
		*floor = from;
}

/*
 * A pass found nothing more it may take, with no hold yet: once (*n = -1) the
 * walks start over and look again from the start; dry (*n = 0) when they came
 * to the end again with the oldest pending delivery as it was, or after
 * VERIFY_ROUNDS looks in a row (deliveries ending all along: the hold begins,
 * and what they free is still taken, oldest first, by later passes).
 */
#define VERIFY_ROUNDS 3

static int look_again(struct hr_store_backend *b, struct sources *l, int64_t *n);

/* Every source to be looked at again, from where its walks are. */
static void
sources_unknown(struct sources *l)
{
	for (int k = 0; k < HEAD_KINDS; k++)
		memset(l->look[k], 0, l->n * sizeof(struct look));
}

static int
look_again(struct hr_store_backend *b, struct sources *l, int64_t *n)
{
	int64_t pending = 0;
	int rc;

	if ((rc = hr_sqlite_oldest_pending(b, &pending)) != HR_OK)
		return rc;
	*n = 0;
	if (b->size_walks_verified &&
	    (pending == b->size_verify_pending || b->size_verify_rounds >= VERIFY_ROUNDS)) {
		b->size_verify_rounds = 0;
		return HR_OK;
	}
	hr_sqlite_size_walks_restart(b);
	b->size_walks_verified = true;
	b->size_verify_pending = pending;
	b->size_verify_rounds++;
	sources_unknown(l);
	*n = -1;
	return HR_OK;
}

/* Whether a walk is in the middle of a window, as far as this pass looked. */
static void
walks_cut_note(struct hr_store_backend *b, const struct sources *l)
{
	bool looked = false, cut = false;

	for (int k = 0; k < HEAD_KINDS; k++)
		for (size_t i = 0; i < l->n; i++)
			if (l->look[k][i].known || l->look[k][i].cut) {
				looked = true;
				cut = cut || l->look[k][i].cut;
			}
	if (looked)
		b->size_walk_cut = cut;
	/* a new event is unpruned: only a payload walk can be past it */
	b->size_walk_high = hr_age_walks_highest(&b->size_walks, HEAD_PAYLOAD);
}

/*
 * Source i's oldest candidate of `kind`, within one window of its walk: the
 * first LOOK_NEAR entries, then (none there) HR_AGE_WINDOW. The candidate is
 * mostly the first entry; a whole window's end, found first, was most of a
 * pass without a backlog (a review: twice the time of a pass before).
 */
static int
look_once(struct pass *ps, struct sources *l, enum head_kind kind, size_t i, int64_t hold)
{
	int64_t none = 0, *floor = hr_age_walk_floor(&ps->b->size_walks, l->v[i], kind);
	int64_t end = hold, found = INT64_MAX, steps = ps->steps;
	struct look *lk = &l->look[kind][i];
	int rc = HR_OK;

	if (floor == NULL)
		floor = &none; /* out of memory: the whole source, as it once was */
	if (ps->look_steps >= LOOK_STEPS && !lk->seen && floor != &none && *floor < hold) {
		/* The budget is spent: a source not looked at yet waits for a later pass,
		 * and nothing after where its walk is goes before it (1,500 sources each
		 * read LOOK_NEAR entries a pass, 135 ms: review R39). Those looked at go
		 * on, LOOK_NEAR entries a look, chunk after chunk. */
		lk->known = lk->cut = true;
		lk->head = lk->end = *floor;
		return HR_OK;
	}
	lk->seen = true;
	ps->floor = *floor;
	for (int span = LOOK_NEAR; *floor < hold && rc == HR_OK; span = HR_AGE_WINDOW) {
		end = INT64_MAX;
		if (floor != &none)
			rc = step_all(ps, sql_look_end[kind], l->v[i], 0, span, NULL, &end);
		/* Nothing from the hold's start on may go: a look past it read what is
		 * kept, and under a hold whose seq bound leaves out what keeps coming in
		 * the walk never came to an end (a review). */
		if (end > hold)
			end = hold;
		if (end <= *floor)
			end = *floor + 1; /* a window's entries all of one instant: all of them */
		if (rc == HR_OK)
			rc = step_all(ps, head_sql[kind], l->v[i], end, 0, NULL, &found);
		if (found != INT64_MAX || end >= hold || span == HR_AGE_WINDOW ||
		    ps->look_steps + ps->steps - steps >= LOOK_STEPS)
			break;
	}
	ps->look_steps += ps->steps - steps;
	ps->floor = 0;
	if (rc != HR_OK)
		return rc;
	lk->known = true;
	lk->cut = found == INT64_MAX && end < hold;
	lk->head = lk->cut ? end : found;
	lk->end = end;
	/* On to what it found, or past the window; to the hold's start, or past the
	 * end, after none till there: a walk back to the start each time read a
	 * backlog again and again, and held back the other sources' candidates
	 * behind it meanwhile. */
	if (found == INT64_MAX && !lk->cut && hold != INT64_MAX)
		*floor = hold > *floor ? hold : *floor;
	else if (found == INT64_MAX && !lk->cut && floor != &none)
		rc = step_all(ps, sql_walk_past[kind], l->v[i], 0, 0, NULL, floor);
	else
		*floor = lk->cut ? end : found;
	return rc;
}

/*
 * The source whose oldest candidate of `kind` received before `hold` is the
 * oldest of all, and how far a chunk of it may go: up to the next source's
 * oldest, so the chunk is the oldest across sources too. A source whose look
 * was cut short may have one at its window's end: nothing after that is taken
 * from the others either (*blocked). -1 when no source has one it may take;
 * HR_EDB in *rc when a lookup failed.
 */
static ssize_t
oldest_source(struct pass *ps, struct sources *l, enum head_kind kind, int64_t hold,
    int64_t *cutoff, bool *blocked, int *rc)
{
	int64_t best = INT64_MAX, second = INT64_MAX;
	ssize_t found = -1;
	bool cut = false;

	for (size_t i = 0; i < l->n; i++) {
		struct look *lk = &l->look[kind][i];

		if (!lk->known && (*rc = look_once(ps, l, kind, i, hold)) != HR_OK)
			return -1;
		if (lk->head >= hold)
			continue; /* none it may take */
		if (lk->cut) {
			second = lk->head < second ? lk->head : second;
			cut = true;
		} else if (lk->head < best) {
			second = best < second ? best : second;
			best = lk->head;
			found = (ssize_t)i;
		} else if (lk->head < second) {
			second = lk->head;
		}
	}
	*cutoff = second == INT64_MAX ? INT64_MAX : second + 1;
	*blocked = cut && (found < 0 || best >= *cutoff);
	return *blocked ? -1 : found;
}

/* Where the oldest payload that may go is, or a payload walk cut short before it
 * (INT64_MAX: none before `hold`). */
static int64_t
oldest_payload(struct pass *ps, struct sources *l, int64_t hold, int *rc)
{
	int64_t oldest = INT64_MAX;

	for (size_t i = 0; i < l->n; i++) {
		struct look *lk = &l->look[HEAD_PAYLOAD][i];

		if (!lk->known && (*rc = look_once(ps, l, HEAD_PAYLOAD, i, hold)) != HR_OK)
			return INT64_MAX;
		if (lk->head < hold && lk->head < oldest)
			oldest = lk->head;
	}
	return oldest;
}

/* Dedup keys of events gone, a window at a time from the last walk's end;
 * *done: how many went. */
static int
orphan_keys(struct pass *ps, int64_t limit, int64_t *done)
{
	int64_t end = 0;
	int rc = HR_OK;

	*done = 0;
	while (rc == HR_OK && *done == 0 && ps->orphan_windows > 0) {
		ps->floor = ps->b->orphan_after;
		rc = step_all(ps, sql_orphan_window_end, NULL, 0, limit, NULL, &end);
		if (rc == HR_OK)
			rc = run(ps, sql_orphan_keys, NULL, 0, limit, done);
		if (rc == HR_OK && end == 0 && ps->b->orphan_after == 0)
			break; /* no key at all */
		ps->b->orphan_after = end;
		if (*done == 0)
			ps->orphan_windows--; /* a window without one: the pass's budget */
	}
	ps->floor = 0;
	return rc;
}

/*
 * One chunk toward max_size: rejections, else dedup keys of events gone, else
 * payloads, else rows; `*took` says which it took. `rows_first`: the last
 * payloads pruned freed no page (bodies under a page share theirs), so the
 * oldest pruned rows go before newer payloads: else every payload, the newest
 * event's too, went before any row (a review saw events answered 200 a second
 * before served without their payload). Nothing received at or after `hold`.
 */
static int
shrink_chunk(struct pass *ps, struct sources *l, bool rows_first, int64_t hold,
    enum head_kind *took, int64_t *done)
{
	int64_t limit = ps->budget < SIZE_CHUNK ? ps->budget : SIZE_CHUNK, cutoff;
	enum head_kind first = rows_first ? HEAD_ROW : HEAD_PAYLOAD;
	bool blocked = false, other_blocked = false;
	int rc = HR_OK;
	ssize_t i;

	*done = 0;
	*took = HEAD_KINDS;
	if (!ps->rejections_gone &&
	    ((rc = run(ps, hold == INT64_MAX ? sql_oldest_rejections : sql_oldest_rejections_before,
	          NULL, hold, limit, done)) != HR_OK ||
	        *done > 0)) {
		ps->res.rejections += (uint64_t)*done;
		return rc;
	}
	ps->rejections_gone = true;
	if ((rc = orphan_keys(ps, limit, done)) != HR_OK || *done > 0)
		return rc;
	i = oldest_source(ps, l, first, hold, &cutoff, &blocked, &rc);
	/* Rows first, but not a newer event's row before an older event's payload,
	 * nor past a payload walk cut short: old payloads too small to free a page
	 * kept their events whole while newer events went, rows and all (R39).
	 * The older payloads go first then, and their rows at the next chunk. */
	if (rc == HR_OK && rows_first && i >= 0) {
		int64_t pay = oldest_payload(ps, l, hold, &rc);

		if (rc == HR_OK && pay <= l->look[HEAD_ROW][i].head) {
			first = HEAD_PAYLOAD;
			i = oldest_source(ps, l, first, hold, &cutoff, &blocked, &rc);
		} else if (rc == HR_OK && cutoff > pay) {
			cutoff = pay;
		}
	}
	/* None of the first kind: the other; but not past a walk still inside a
	 * backlog (a review saw newer events' rows go while older payloads waited). */
	if (rc == HR_OK && i < 0 && !blocked) {
		first = first == HEAD_ROW ? HEAD_PAYLOAD : HEAD_ROW;
		i = oldest_source(ps, l, first, hold, &cutoff, &other_blocked, &rc);
	}
	ps->blocked = rc == HR_OK && i < 0 && (blocked || other_blocked);
	if (i >= 0 && cutoff > hold)
		cutoff = hold;
	/* Not past the window its look read: the chunk's own statement walked the
	 * rest of a backlog after the few candidates before it (a review). */
	if (i >= 0 && cutoff > l->look[first][i].end)
		cutoff = l->look[first][i].end;
	if (i >= 0) {
		ps->floor = l->look[first][i].head;
		rc = first == HEAD_PAYLOAD ? prune_payloads(ps, l->v[i], cutoff, limit, done)
		                           : delete_rows(ps, l->v[i], cutoff, limit, done);
		*took = first;
	}
	/* The payloads it pruned are rows a later chunk may take. */
	if (i >= 0 && first == HEAD_PAYLOAD && *done > 0)
		walk_rows_from(ps->b, l->v[i], ps->floor);
	ps->floor = 0;
	if (i >= 0) /* this source's oldest candidates moved on */
		for (int k = 0; k < HEAD_KINDS; k++)
			l->look[k][i].known = false;
	return rc;
}

/*
 * A pass that took all it could, still over the cap: the hold begins while
 * deliveries are pending (prune_to_size), and it is said, once for the cap
 * until a pass ends under it. It was said again each time a hold ended, and a
 * cap under what the database takes empty, with a destination working, said
 * it at every delivery, as if pending deliveries held it (a review).
 */
static int
ran_dry(struct pass *ps, int64_t max_size, int64_t used, bool held)
{
	struct hr_store_backend *b = ps->b;
	int64_t pending = held;
	int rc = HR_OK;

	if (!held && (rc = hr_sqlite_oldest_pending(b, &pending)) == HR_OK && pending > 0)
		rc = hr_sqlite_hold_begin(b, ps->now);
	if (rc != HR_OK || b->warned_cap == max_size)
		return rc;
	if (pending > 0)
		log_warnx("store: the database is over [storage] max_size (%lld bytes in use) and"
		          " nothing more may be pruned: what is left is events with pending"
		          " deliveries and the dedup keys of events still stored; while those"
		          " deliveries are pending, nothing received from %s on is pruned by size",
		    (long long)used, held ? "the hold's start" : "now");
	else /* every event without a pending delivery is a candidate: none is left */
		log_warnx("store: [storage] max_size (%lld bytes) is under what the database"
		          " takes with no event stored (%lld bytes in use): it cannot be met;"
		          " raise it",
		    (long long)max_size, (long long)used);
	b->warned_cap = max_size;
	return rc;
}

/*
 * max_size prunes the oldest first. When a pass took all it could and the
 * database is still over the cap while events with pending deliveries hold it
 * (a destination down longer than retain), every later pass took whatever came
 * since, within a pass of its 200 or its 422, and freed next to nothing:
 * rejections that were a refused sender's only copy, events of sources whose
 * destinations work (a review). From such a pass on, nothing received at or
 * after its start is pruned by size (b->hold.at_us), nor anything stored after
 * it or after its last move (hr_sqlite_hold_begin); what came before it still is,
 * as its deliveries end. As the pending deliveries end (dead, a
 * discard, the destination back) the hold moves on to the event of the oldest
 * still pending: what is older than the backlog's head may go, oldest first,
 * and what came since it is kept. (Ending the hold when the deliveries pending
 * at its start had ended, or as soon as a held pass took anything, let the next
 * pass take everything come since while newer deliveries still held the cap:
 * reviews.) It ends only when nothing is pending (hr_sqlite_hold_follow): not when a pass
 * ends under the cap, nor when the cap is changed or taken off, each of which
 * once let a later pass take all received during it. It begins only while
 * deliveries are pending: a cap nothing pending holds is met as it asks. The
 * database keeps it (store_state), so a restart does not end it either.
 */
static int
prune_to_size(struct pass *ps, int64_t max_size, int64_t interval_us)
{
	struct hr_store_backend *b = ps->b;
	struct sources l = { 0 };
	int64_t used, before, n;
	int64_t hold = b->hold.at_us > 0 ? b->hold.at_us : INT64_MAX;
	bool rows_first = false;
	enum head_kind took;
	int rc;

	if ((rc = used_bytes(ps, &used)) != HR_OK || used <= max_size) {
		if (rc == HR_OK) {
			b->warned_cap = 0; /* over it again later: said again */
			b->size_walks_verified = false;
			b->size_verify_rounds = 0;
		}
		return rc;
	}
	if ((rc = walks_due(b, interval_us)) != HR_OK || (rc = list_sources(b->wdb, &l)) != HR_OK)
		goto out;
	ps->upto_events = b->hold.events;
	ps->upto_rejections = b->hold.rejections;
	for (int chunks = 0; ps->budget > 0 && used > max_size; chunks++) {
		if (chunks == PASS_CHUNKS) {
			ps->scan_left = true; /* the next pass goes on at once */
			break;
		}
		if ((rc = shrink_chunk(ps, &l, rows_first, hold, &took, &n)) != HR_OK)
			break;
		if (n == 0 && ps->blocked) {
			ps->scan_left = true; /* not dry: the next pass reads the next window */
			break;
		}
		/* Dry as far as the walks see: but one may have gone past events that
		 * may go now, and a hold begun for nothing keeps what comes after it (a
		 * review). Before a hold, look again from the start (look_again()). */
		if (n == 0 && hold == INT64_MAX && (rc = look_again(b, &l, &n)) != HR_OK)
			break;
		if (n < 0)
			continue;
		if (n == 0) {
			rc = ran_dry(ps, max_size, used, hold != INT64_MAX);
			break;
		}
		ps->budget -= n;
		before = used;
		if ((rc = keep_so_far(ps)) != HR_OK || (rc = used_bytes(ps, &used)) != HR_OK)
			break;
		if (took == HEAD_PAYLOAD)
			rows_first = used >= before;
	}
	if (used <= max_size)
		b->warned_cap = 0;
	walks_cut_note(b, &l);
out:
	ps->upto_events = ps->upto_rejections = INT64_MAX;
	sources_free(&l);
	return rc;
}

/* One bounded pass, inside the batch's transaction. */
int
hr_sqlite_prune(
    struct hr_store_backend *b, const struct hr_retention *p, struct hr_prune_result *out)
{
	struct pass ps = { .b = b,
		.now = hr_time_now_us(),
		.budget = PASS_ROWS,
		.upto_events = INT64_MAX,
		.upto_rejections = INT64_MAX,
		.orphan_windows = ORPHAN_WINDOWS };
	size_t first = p->nrules > 0 ? b->age_rule_next % p->nrules : 0;
	int rc = run(&ps, sql_prune_set, NULL, 0, 0, NULL);

	for (size_t k = 0; rc == HR_OK && k < p->nrules; k++) {
		size_t i = (first + k) % p->nrules;

		if (k > 0 && ps.steps >= AGE_STEPS) {
			b->age_rule_next = i; /* the rules after it go first next time */
			ps.scan_left = true;
			break;
		}
		if ((rc = prune_by_age(&ps, &p->rules[i])) == HR_OK)
			rc = keep_so_far(&ps);
	}
	if (rc == HR_OK)
		rc = hr_sqlite_hold_follow(b);
	if (rc == HR_OK && p->max_size > 0)
		rc = prune_to_size(&ps, p->max_size, p->interval_us);
	if (rc == HR_OK)
		rc = hr_sqlite_give_back(b, VACUUM_PAGES, &ps.res.vacuumed, &ps.vacuum_left);
	hr_sqlite_stmts_free(&ps.stmts);
	*out = rc == HR_OK ? ps.res : (struct hr_prune_result){ 0 };
	out->more = rc == HR_OK && (ps.budget <= 0 || ps.vacuum_left || ps.scan_left);
	return rc;
}
