/*
 * sqlite_prune.c - the SQLite engine's pruning passes and their retain rules
 * (max_size's chunks: sqlite_shrink.c; its hold: sqlite_hold.c; the free pages
 * given back after a pass, and the size figures of /metrics: sqlite_size.c).
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
 * are over max_size, the oldest go first (sqlite_shrink.c). An event with a
 * pending delivery is never touched, so a delivery always finds its body.
 * Last, up to VACUUM_PAGES free pages go back (a database created without
 * auto_vacuum=INCREMENTAL keeps them for reuse).
 */
#include "hr/log.h"
#include "hr/timefmt.h"
#include "sqlite_pass.h"

#define PASS_ROWS    5000 /* rows one pass may change */
#define VACUUM_PAGES 2048 /* free pages given back per pass (8,192 took 83 ms) */
/* The VM steps after which a pass takes no further age rule: the next pass begins
 * with it. A window of each rule's walk through a pending backlog, 30 sources,
 * was a pass of 6.9 million steps, 0.35-0.63 s (review R39); one window is some
 * 230,000. */
#define AGE_STEPS 500000

/* ---- SQL on the writer connection ---- */

int
hr_pass_step(struct pass *ps, const char *sql, const char *source, int64_t cutoff, int64_t limit,
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

int
hr_pass_run(struct pass *ps, const char *sql, const char *source, int64_t cutoff, int64_t limit,
    int64_t *changes)
{
	return hr_pass_step(ps, sql, source, cutoff, limit, changes, NULL);
}

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

int
hr_pass_delete_rows(
    struct pass *ps, const char *source, int64_t cutoff, int64_t limit, int64_t *done)
{
	int64_t n;
	int rc = hr_pass_run(ps, sql_pick_rows, source, cutoff, limit, done);

	for (size_t i = 0; rc == HR_OK && *done > 0 && i < HR_ARRAY_LEN(sql_delete_set); i++) {
		rc = hr_pass_run(ps, sql_delete_set[i], NULL, 0, 0, &n);
		if (i == 3 && n > 0) {
			ps->res.events += (uint64_t)n;
			/* their keys are now of events gone, and mostly the oldest to
			 * expire (rows go oldest first): the look for such keys starts
			 * there, with a window at least (under load they filled a cap,
			 * waiting for the look to come round the table); past those of
			 * events a delivery keeps (sql_orphan_kept_until). */
			if (ps->b->orphan_after > ps->keys_restart)
				ps->b->orphan_after = ps->keys_restart;
			ps->orphan_windows = ps->orphan_windows > 0 ? ps->orphan_windows : 1;
		} else if (i == 4)
			ps->res.sessions += (uint64_t)n;
	}
	return rc;
}

int
hr_pass_prune_payloads(
    struct pass *ps, const char *source, int64_t cutoff, int64_t limit, int64_t *done)
{
	int rc = hr_pass_run(ps, sql_payloads, source, cutoff, limit, done);

	if (rc == HR_OK)
		ps->res.payloads += (uint64_t)*done;
	return rc;
}

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
	rc = hr_pass_step(ps, sql_window_end[kind], source, cutoff, 0, NULL, &found);
	end = floor == &none ? cutoff : hr_age_window_end(*floor, found, cutoff);
	if (rc == HR_OK)
		rc = kind == HR_AGE_ROWS
		    ? hr_pass_delete_rows(ps, source, end, ps->budget, done)
		    : hr_pass_prune_payloads(ps, source, end, ps->budget, done);
	if (rc == HR_OK && kind == HR_AGE_PAYLOADS && *done > 0)
		hr_pass_walk_rows_from(ps->b, source, ps->floor);
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
	    (rc = hr_pass_run(
	         ps, sql_rejections, r->source, ps->now - r->retain_us, ps->budget, &n)) == HR_OK) {
		ps->budget -= n;
		ps->res.rejections += (uint64_t)n;
	}
	return rc;
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
int
hr_pass_keep(struct pass *ps)
{
	int rc = hr_sqlite_release(ps->b, false);

	if (rc == HR_OK)
		ps->kept = ps->res;
	return rc == HR_OK ? hr_sqlite_savepoint(ps->b) : rc;
}

/* `r`'s walks' floors saved into `at`, or (`back`) set back to them. */
static void
rule_walks(struct pass *ps, const struct hr_retention_rule *r, int64_t at[HR_AGE_KINDS], bool back)
{
	for (int kind = 0; r->retain_us > 0 && kind < HR_AGE_KINDS; kind++) {
		int64_t *floor = hr_age_walk_floor(&ps->b->walks, r->source, kind);

		if (floor != NULL && back)
			*floor = at[kind];
		else if (floor != NULL)
			at[kind] = *floor;
	}
}

/*
 * The rules from b->age_rule_next on, within AGE_STEPS. A rule that fails is
 * undone alone (its walks back where they were) and the pass goes on without
 * it, the next one beginning after it: a rule failing on every pass (a trigger,
 * a corrupt page of its index) ended each pass there, the next began with it
 * again, and no rule after it, nor max_size, nor the vacuum ever ran. Fails
 * only when the transaction is lost (a full disk ends it).
 */
static int
prune_rules(struct pass *ps, const struct hr_retention *p)
{
	struct hr_store_backend *b = ps->b;
	size_t first = p->nrules > 0 ? b->age_rule_next % p->nrules : 0;
	int rc = HR_OK;

	for (size_t k = 0; rc == HR_OK && k < p->nrules; k++) {
		size_t i = (first + k) % p->nrules;
		int64_t walks[HR_AGE_KINDS] = { 0 };

		if (k > 0 && ps->steps >= AGE_STEPS) {
			b->age_rule_next = i; /* the rules after it go first next time */
			ps->scan_left = true;
			break;
		}
		rule_walks(ps, &p->rules[i], walks, false);
		if (prune_by_age(ps, &p->rules[i]) == HR_OK) {
			rc = hr_pass_keep(ps);
			continue;
		}
		rule_walks(ps, &p->rules[i], walks, true);
		ps->res = ps->kept; /* what the rule did is undone */
		ps->res.failed = ps->kept.failed = true;
		b->age_rule_next = (i + 1) % p->nrules;
		if ((rc = hr_sqlite_release(b, true)) == HR_OK &&
		    (rc = hr_sqlite_savepoint(b)) == HR_OK)
			rc = hr_pass_run(ps, sql_prune_set, NULL, 0, 0, NULL); /* undone if new */
	}
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
		.upto_rejections = INT64_MAX };
	int rc = hr_pass_run(&ps, sql_prune_set, NULL, 0, 0, NULL);

	if (rc == HR_OK)
		rc = prune_rules(&ps, p);
	if (rc == HR_OK)
		rc = hr_sqlite_hold_follow(b);
	if (rc == HR_OK && p->max_size > 0)
		rc = hr_pass_to_size(&ps, p->max_size, p->interval_us);
	if (rc == HR_OK)
		rc = hr_sqlite_give_back(b, VACUUM_PAGES, &ps.res.vacuumed, &ps.vacuum_left);
	hr_sqlite_stmts_free(&ps.stmts);
	/* Failed: what was kept before commits with the batch, and is counted. */
	*out = rc == HR_OK ? ps.res : ps.kept;
	out->more = rc == HR_OK && (ps.budget <= 0 || ps.vacuum_left || ps.scan_left);
	return rc;
}
