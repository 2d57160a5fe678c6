/*
 * sqlite_shrink.c - the part of a pruning pass (sqlite_prune.c) that brings
 * the database back under [storage] max_size, on the writer thread inside the
 * pass's transaction.
 *
 * While the pages in use are over max_size, a chunk at a time (at most
 * SIZE_CHUNK rows, PASS_CHUNKS chunks a pass): the oldest rejections, then
 * dedup keys of events gone, then the oldest payloads, then the oldest rows,
 * each source's found by a walk that goes on from pass to pass as the age
 * walks do (agewalk.h). An event with a pending delivery is never touched, so
 * a delivery always finds its body; while such events keep the database over
 * the cap, the hold (sqlite_hold.c) keeps what came since from going.
 */
#include <stdlib.h>
#include <string.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "sqlite_pass.h"

#define SIZE_CHUNK 16 /* rows between two looks at the size */
/* Chunks toward max_size a pass may take: sources whose events came interleaved
 * give chunks of one event each (a chunk goes up to the next source's oldest),
 * and 5,000 of them held the writer 0.25 s, a dozen statements each (R39). */
#define PASS_CHUNKS 250

static const char sql_oldest_rejections[] =
    "DELETE FROM rejections WHERE seq IN (SELECT seq FROM rejections ORDER BY seq LIMIT ?4)";
/* Under a max_size hold (hr_pass_to_size): by age, on its index; in seq order the
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
/* Where the look goes back to after a chunk of rows (orphan_keys()): before the
 * window's first key whose event has no pending delivery, or past the window
 * when each one's has one (-1). The keys before it stay whatever the pass
 * deletes; a look from the oldest key read a destination's backlog's after
 * each chunk, 64 a chunk, and never came to those of the events it deleted
 * (R39). */
static const char sql_orphan_kept_until[] =
    "SELECT d.expires_at - 1 FROM (" ORPHAN_WINDOW ") d WHERE NOT EXISTS"
    " (SELECT 1 FROM events e, deliveries l INDEXED BY deliveries_event WHERE"
    " e.id = d.event_id AND l.event_seq = e.seq AND l.status = 0) LIMIT 1";
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

/* Bytes of the pages in use, as this transaction sees them. */
static const char sql_page_count[] = "PRAGMA page_count";
static const char sql_freelist_count[] = "PRAGMA freelist_count";
static const char sql_page_size[] = "PRAGMA page_size";

static int
used_bytes(struct pass *ps, int64_t *out)
{
	int64_t pages = 0, free_pages = 0;

	if (hr_pass_step(ps, sql_page_count, NULL, 0, 0, NULL, &pages) != HR_OK ||
	    hr_pass_step(ps, sql_freelist_count, NULL, 0, 0, NULL, &free_pages) != HR_OK ||
	    (ps->page_size == 0 &&
	        hr_pass_step(ps, sql_page_size, NULL, 0, 0, NULL, &ps->page_size) != HR_OK))
		return HR_EDB;
	*out = (pages - free_pages) * ps->page_size;
	return HR_OK;
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
 * (hr_pass_to_size).
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
void
hr_pass_walk_rows_from(struct hr_store_backend *b, const char *source, int64_t from)
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
			rc = hr_pass_step(ps, sql_look_end[kind], l->v[i], 0, span, NULL, &end);
		/* Nothing from the hold's start on may go: a look past it read what is
		 * kept, and under a hold whose seq bound leaves out what keeps coming in
		 * the walk never came to an end (a review). */
		if (end > hold)
			end = hold;
		if (end <= *floor)
			end = *floor + 1; /* a window's entries all of one instant: all of them */
		if (rc == HR_OK)
			rc = hr_pass_step(ps, head_sql[kind], l->v[i], end, 0, NULL, &found);
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
		rc = hr_pass_step(ps, sql_walk_past[kind], l->v[i], 0, 0, NULL, floor);
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
	int64_t end = 0, kept;
	int rc = HR_OK;

	*done = 0;
	while (rc == HR_OK && *done == 0 && ps->orphan_windows > 0) {
		bool at_restart = ps->b->orphan_after == ps->keys_restart;

		ps->floor = ps->b->orphan_after;
		rc = hr_pass_step(ps, sql_orphan_window_end, NULL, 0, limit, NULL, &end);
		kept = -1; /* (no row) */
		if (rc == HR_OK && at_restart)
			rc = hr_pass_step(ps, sql_orphan_kept_until, NULL, 0, 0, NULL, &kept);
		if (rc == HR_OK)
			rc = hr_pass_run(ps, sql_orphan_keys, NULL, 0, limit, done);
		if (rc == HR_OK && end == 0 && ps->b->orphan_after == 0)
			break; /* no key at all */
		if (rc == HR_OK && at_restart)
			ps->keys_restart = kept < 0 ? end : kept;
		ps->b->orphan_after = end;
		if (*done == 0)
			ps->orphan_windows--; /* a window without one: the pass's budget */
	}
	ps->floor = 0;
	return rc;
}

/* The oldest rejections received before `hold`; none: none is left that may go,
 * as none comes during a pass. */
static int
oldest_rejections(struct pass *ps, int64_t hold, int64_t limit, int64_t *done)
{
	const char *sql = hold == INT64_MAX ? sql_oldest_rejections : sql_oldest_rejections_before;
	int rc = hr_pass_run(ps, sql, NULL, hold, limit, done);

	ps->res.rejections += (uint64_t)*done;
	if (rc == HR_OK && *done == 0)
		ps->rejections_gone = true;
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
	    ((rc = oldest_rejections(ps, hold, limit, done)) != HR_OK || *done > 0))
		return rc;
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
		rc = first == HEAD_PAYLOAD
		    ? hr_pass_prune_payloads(ps, l->v[i], cutoff, limit, done)
		    : hr_pass_delete_rows(ps, l->v[i], cutoff, limit, done);
		*took = first;
	}
	/* The payloads it pruned are rows a later chunk may take. */
	if (i >= 0 && first == HEAD_PAYLOAD && *done > 0)
		hr_pass_walk_rows_from(ps->b, l->v[i], ps->floor);
	ps->floor = 0;
	if (i >= 0) /* this source's oldest candidates moved on */
		for (int k = 0; k < HEAD_KINDS; k++)
			l->look[k][i].known = false;
	return rc;
}

/*
 * A pass that took all it could, still over the cap: the hold begins while
 * deliveries are pending (hr_pass_to_size), and it is said, once for the cap
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
int
hr_pass_to_size(struct pass *ps, int64_t max_size, int64_t interval_us)
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
	ps->orphan_windows = ORPHAN_WINDOWS;
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
		if ((rc = hr_pass_keep(ps)) != HR_OK || (rc = used_bytes(ps, &used)) != HR_OK)
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
