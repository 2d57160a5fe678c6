/*
 * pg_prune.c - the PostgreSQL engine's pruning pass, and its size figures.
 *
 * The store's retention timer (retention.c) runs on every node, but a
 * pass prunes only on the node that holds PG_LOCK_RETENTION, taken with
 * pg_try_advisory_xact_lock: the others skip their turn instead of queueing
 * behind it, and the lock goes with the pass's transaction. The rules are
 * SQLite's: for each source with a retain, event rows older than twice it go
 * with their attempts, deliveries and query rows (and sessions left without
 * events), payloads older than retain become an empty body with pruned_at set,
 * rejected bodies older than retain go; an event with a pending delivery is
 * never touched. At most PASS_ROWS rows a pass. There is no max_size here:
 * PostgreSQL gives space back through (auto)vacuum, not per deleted row, so a
 * size cap would delete everything; docs/scaling.md partitions by time instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "pg_int.h"

#define PASS_ROWS 5000
/* The time after which a pass takes no further retain rule; the next pass
 * begins with it, as SQLite's AGE_STEPS. The pass rides in its node's batch:
 * a window of each of 30 sources' walks through pending backlogs held that
 * node's webhooks 0.55 s (a review; 1.26 s while the pass also held the
 * cluster's event order lock). */
#define PASS_AGE_US 50000

/* A probe per event (PG_ANY_DELIVERY): a hash anti-join would read every
 * pending delivery of the database each pass (285 ms with 200,000 pending,
 * against 20 ms for a window's 10,000 probes). */
#define NOT_PENDING " AND NOT" PG_ANY_DELIVERY("e.seq", "p.status = 0")

/*
 * A pass asks whether a rule has rows to change without locking any, and takes
 * the event order lock (pg_lock_events()) only when it has, before it picks
 * and locks them: every other writer of events, sessions and rejections (an
 * ingest, a replay, an accept, Daily's link adoption) takes that lock first
 * too, so the lock order is the same everywhere. Rows locked before the lock
 * (a pass locked its picks and their sessions, then the batch's events took
 * the lock): another node's batch upserting the same session waited for the
 * pass and the pass for it, a deadlock, one failed, its events answered 503
 * (a review). The lock at the pass's start: a pass that walked 30 sources'
 * pending backlogs and pruned nothing held the cluster's ingest for over a
 * second (the next review). Under the lock the pick locks its rows with SKIP
 * LOCKED (a row another transaction holds, as a replay that took no lock of a
 * node of an older version, is left for a later pass) and, a statement of its
 * own, drops what was made pending meanwhile (sql_drop_pending). The set is
 * prune_set; $1 source, $2 received_at cutoff, $3 now, $4 row limit, $5
 * received_at floor (agewalk.h).
 */
static const char sql_prune_set[] =
    "CREATE TEMP TABLE IF NOT EXISTS prune_set (seq bigint PRIMARY KEY, session_id bigint,"
    " room text) ON COMMIT DELETE ROWS";
static const char sql_prune_sessions[] =
    "CREATE TEMP TABLE IF NOT EXISTS prune_sessions (id bigint PRIMARY KEY)"
    " ON COMMIT DELETE ROWS";

/* Rows of $1 received before $2 whose payload went, oldest first: as on SQLite
 * (events_pruned), an event still whole loses its payload first (a review: it
 * went whole, and the engines' counts differed). */
#define ROWS_WHERE                                                                                 \
	" FROM events e WHERE e.source = $1 AND e.received_at < $2::bigint AND"                    \
	" e.received_at >= $5::bigint AND e.pruned_at IS NOT NULL" NOT_PENDING
static const char sql_pick_rows[] =
    "INSERT INTO prune_set (seq, session_id, room) SELECT e.seq, e.session_id, e.room" ROWS_WHERE
    " ORDER BY e.received_at LIMIT $4::bigint FOR UPDATE OF e SKIP LOCKED";

/* Payloads of $1 received before $2, oldest first. */
#define PAYLOADS_WHERE                                                                             \
	" FROM events e WHERE e.source = $1 AND e.received_at < $2::bigint AND"                    \
	" e.received_at >= $5::bigint AND e.pruned_at IS NULL" NOT_PENDING
static const char sql_pick_payloads[] =
    "INSERT INTO prune_set (seq) SELECT e.seq" PAYLOADS_WHERE
    " ORDER BY e.received_at LIMIT $4::bigint FOR NO KEY UPDATE OF e SKIP LOCKED";

/* Whether a pick would find a row, asked before the lock; $1-$5 as the pick's. */
static const char sql_any_row[] = "SELECT 1" ROWS_WHERE " LIMIT 1";
static const char sql_any_payload[] = "SELECT 1" PAYLOADS_WHERE " LIMIT 1";

/* With the lock: what a replay made pending since the pick stays. */
static const char sql_drop_pending[] =
    "DELETE FROM prune_set s WHERE" PG_ANY_DELIVERY("s.seq", "p.status = 0");

/* Where the next window of a walk ends (no row: what is left is shorter). */
static const char *const sql_window_end[HR_AGE_KINDS] = {
	[HR_AGE_ROWS] =
	    "SELECT e.received_at FROM events e WHERE e.source = $1 AND"
	    " e.received_at < $2::bigint AND e.received_at >= $5::bigint AND"
	    " e.pruned_at IS NOT NULL ORDER BY e.received_at LIMIT 1 OFFSET " HR_AGE_WINDOW_TEXT,
	[HR_AGE_PAYLOADS] =
	    "SELECT e.received_at FROM events e WHERE e.source = $1 AND"
	    " e.received_at < $2::bigint AND e.received_at >= $5::bigint AND"
	    " e.pruned_at IS NULL ORDER BY e.received_at LIMIT 1 OFFSET " HR_AGE_WINDOW_TEXT,
};

/* $1 now. */
static const char sql_prune_payloads[] =
    "UPDATE events SET body = ''::bytea, pruned_at = $1::bigint"
    " WHERE seq IN (SELECT seq FROM prune_set)";

static const char *const sql_delete_set[] = {
	"DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq IN"
	" (SELECT seq FROM prune_set))",
	"DELETE FROM deliveries WHERE event_seq IN (SELECT seq FROM prune_set)",
	"DELETE FROM event_query WHERE event_seq IN (SELECT seq FROM prune_set)",
	"DELETE FROM events WHERE seq IN (SELECT seq FROM prune_set)",
	/* The sessions the deleted rows leave perhaps empty. No other node's
	 * writer is linking a new event to one (a room's, which no foreign key
	 * guards) meanwhile: it would hold the event order lock. One that comes
	 * later waits for this pass, and its upsert makes the session anew. */
	"INSERT INTO prune_sessions (id) SELECT id FROM sessions WHERE id IN (SELECT session_id"
	" FROM prune_set) OR (scope = 'room' AND key IN (SELECT room FROM prune_set))"
	" FOR UPDATE",
	"DELETE FROM sessions WHERE id IN (SELECT id FROM prune_sessions) AND NOT EXISTS"
	" (SELECT 1 FROM events e WHERE e.session_id = sessions.id) AND NOT (scope = 'room' AND"
	" EXISTS (SELECT 1 FROM events e WHERE e.room = sessions.key))",
	"DELETE FROM prune_sessions",
	"DELETE FROM prune_set",
};

#define SQL_DELETE_EVENTS   3 /* the index in sql_delete_set of the statements counted */
#define SQL_DELETE_SESSIONS 5

static const char sql_rejections[] =
    "DELETE FROM rejections WHERE seq IN (SELECT seq FROM rejections WHERE source = $1 AND"
    " received_at < $2::bigint ORDER BY seq LIMIT $4::bigint)";
/* Whether there is one to delete, asked before the lock is taken for it. */
static const char sql_any_rejection[] =
    "SELECT 1 FROM rejections WHERE source = $1 AND received_at < $2::bigint LIMIT 1";

struct pass {
	struct hr_store_backend *pg;
	PGconn *c;
	int64_t now, budget;
	int64_t floor; /* $5 */
	struct hr_prune_result *res;
	struct hr_age_walks *walks;
	bool walk_left; /* a walk stopped short of its cutoff */
};

/* Run `sql` (parameters as above: none, $1-$4 or $1-$5); *changes: rows it
 * changed, *first: the first column of its first row, if it has one. */
static int
run_to(struct pass *ps, const char *sql, int nparams, const char *source, int64_t cutoff,
    int64_t limit, int64_t *changes, int64_t *first)
{
	struct pg_params p = { .n = 0 };
	PGresult *r;

	if (nparams > 0) {
		pgp_text(&p, source);
		pgp_int(&p, cutoff);
		pgp_int(&p, ps->now);
		pgp_int(&p, limit);
	}
	if (nparams > 4)
		pgp_int(&p, ps->floor);
	if ((r = pg_exec(ps->c, sql, nparams > 0 ? &p : NULL)) == NULL)
		return HR_EDB;
	if (changes != NULL)
		*changes = strtoll(PQcmdTuples(r), NULL, 10);
	if (first != NULL && PQntuples(r) > 0)
		*first = pgc_int(r, 0, 0);
	PQclear(r);
	return HR_OK;
}

static int
run(struct pass *ps, const char *sql, int nparams, const char *source, int64_t cutoff,
    int64_t limit, int64_t *changes)
{
	return run_to(ps, sql, nparams, source, cutoff, limit, changes, NULL);
}

/* If `any` finds a row: the event order lock, up to the budget's rows with
 * `sql` locked into prune_set, and the set without those pending since (see
 * above); *picked: rows kept. */
static int
pick(struct pass *ps, const char *any, const char *sql, const char *source, int64_t cutoff,
    int64_t *picked)
{
	int64_t found = 0, dropped = 0;
	int rc;

	*picked = 0;
	rc = run_to(ps, any, 5, source, cutoff, ps->budget, NULL, &found);
	if (rc != HR_OK || found != 1)
		return rc;
	if (pg_lock_events(ps->pg) != HR_OK)
		return HR_EDB;
	if ((rc = run(ps, sql, 5, source, cutoff, ps->budget, picked)) != HR_OK || *picked == 0)
		return rc;
	rc = run(ps, sql_drop_pending, 0, NULL, 0, 0, &dropped);
	*picked -= dropped;
	return rc;
}

static int
delete_rows(struct pass *ps, const char *source, int64_t cutoff, int64_t *done)
{
	int64_t n = 0;
	int rc = pick(ps, sql_any_row, sql_pick_rows, source, cutoff, done);

	for (size_t i = 0; rc == HR_OK && *done > 0 && i < HR_ARRAY_LEN(sql_delete_set); i++) {
		rc = run(ps, sql_delete_set[i], 0, NULL, 0, 0, &n);
		if (i == SQL_DELETE_EVENTS)
			ps->res->events += (uint64_t)n;
		else if (i == SQL_DELETE_SESSIONS)
			ps->res->sessions += (uint64_t)n;
	}
	return rc;
}

static int
prune_payloads(struct pass *ps, const char *source, int64_t cutoff, int64_t *done)
{
	struct pg_params p = { .n = 0 };
	int rc = pick(ps, sql_any_payload, sql_pick_payloads, source, cutoff, done);
	PGresult *r;

	if (rc != HR_OK || *done == 0)
		return rc;
	pgp_int(&p, ps->now);
	if ((r = pg_exec(ps->c, sql_prune_payloads, &p)) == NULL)
		return HR_EDB;
	ps->res->payloads += (uint64_t)strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return run(ps, "DELETE FROM prune_set", 0, NULL, 0, 0, NULL);
}

/* One window of the walk (agewalk.h) of `source`'s events for `kind` received
 * before `cutoff`; on only when the window was taken whole. */
static int
age_window(struct pass *ps, int kind, const char *source, int64_t cutoff, int64_t *done)
{
	int64_t none = 0, found = cutoff, end, *floor = hr_age_walk_floor(ps->walks, source, kind);
	int rc;

	*done = 0;
	if (floor == NULL)
		floor = &none; /* out of memory: the whole walk in this pass */
	ps->floor = *floor;
	rc = run_to(ps, sql_window_end[kind], 5, source, cutoff, 0, NULL, &found);
	end = floor == &none ? cutoff : hr_age_window_end(*floor, found, cutoff);
	if (rc == HR_OK)
		rc = kind == HR_AGE_ROWS ? delete_rows(ps, source, end, done)
		                         : prune_payloads(ps, source, end, done);
	ps->floor = 0;
	if (rc == HR_OK && *done < ps->budget && hr_age_walk_on(floor, end, cutoff))
		ps->walk_left = true;
	return rc;
}

static int
prune_rule(struct pass *ps, const struct hr_retention_rule *r)
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
	if (rc != HR_OK || ps->budget <= 0)
		return rc;
	n = 0;
	rc = run_to(ps, sql_any_rejection, 2, r->source, ps->now - r->retain_us, 0, NULL, &n);
	if (rc == HR_OK && n == 1 && (rc = pg_lock_events(ps->pg)) == HR_OK &&
	    (rc = run(ps, sql_rejections, 4, r->source, ps->now - r->retain_us, ps->budget, &n)) ==
	        HR_OK) {
		ps->budget -= n;
		ps->res->rejections += (uint64_t)n;
	}
	return rc;
}

/* `r`'s walks' floors saved into `at`, or (`back`) set back to them. */
static void
rule_walks(struct pass *ps, const struct hr_retention_rule *r, int64_t at[HR_AGE_KINDS], bool back)
{
	for (int kind = 0; r->retain_us > 0 && kind < HR_AGE_KINDS; kind++) {
		int64_t *floor = hr_age_walk_floor(ps->walks, r->source, kind);

		if (floor != NULL && back)
			*floor = at[kind];
		else if (floor != NULL)
			at[kind] = *floor;
	}
}

static int
sql_only(struct pass *ps, const char *sql)
{
	return run(ps, sql, 0, NULL, 0, 0, NULL);
}

/*
 * Rule `i` under the savepoint prune_rule, which moves past it once it changed
 * something. A rule that fails is undone alone (its walks back where they
 * were, the event order lock gone with it: pg_lock_events() takes it again)
 * and the pass goes on without it, the next one beginning after it: a rule
 * failing on every pass (a statement timeout, a corrupt index) ended each pass
 * there, undone whole, the next began with it again, and no rule after it
 * ever ran. Fails only when the savepoint does (the transaction is lost).
 */
static int
rule_under_savepoint(struct pass *ps, const struct hr_retention *policy, size_t i, bool *locked)
{
	const struct hr_retention_rule *r = &policy->rules[i];
	struct hr_prune_result kept = *ps->res;
	int64_t walks[HR_AGE_KINDS] = { 0 }, budget = ps->budget;
	bool was_locked = ps->pg->events_locked;

	rule_walks(ps, r, walks, false);
	if (prune_rule(ps, r) != HR_OK) {
		rule_walks(ps, r, walks, true);
		*ps->res = kept;
		ps->res->failed = true;
		ps->pg->events_locked = *locked;
		ps->pg->age_rule_next = (i + 1) % policy->nrules;
		return sql_only(ps, "ROLLBACK TO SAVEPOINT prune_rule");
	}
	/* Every row it changed is counted in the budget. */
	if (ps->budget == budget && ps->pg->events_locked == was_locked)
		return HR_OK; /* nothing to lose: the savepoint stays where it is */
	*locked = ps->pg->events_locked;
	if (sql_only(ps, "RELEASE SAVEPOINT prune_rule") != HR_OK)
		return HR_EDB;
	return sql_only(ps, "SAVEPOINT prune_rule");
}

/* The rules from pg->age_rule_next on, for PASS_AGE_US after `started`. */
static int
prune_rules(struct pass *ps, const struct hr_retention *policy, int64_t started)
{
	size_t first = policy->nrules > 0 ? ps->pg->age_rule_next % policy->nrules : 0;
	bool locked = ps->pg->events_locked; /* at the savepoint */
	int rc = sql_only(ps, "SAVEPOINT prune_rule");

	for (size_t k = 0; rc == HR_OK && k < policy->nrules; k++) {
		size_t i = (first + k) % policy->nrules;

		if (k > 0 && hr_time_mono_us() - started >= PASS_AGE_US) {
			ps->pg->age_rule_next = i; /* the rules after it go first next time */
			ps->walk_left = true;
			break;
		}
		rc = rule_under_savepoint(ps, policy, i, &locked);
	}
	return rc == HR_OK ? sql_only(ps, "RELEASE SAVEPOINT prune_rule") : rc;
}

int
hr_pg_prune(
    struct hr_store_backend *pg, const struct hr_retention *policy, struct hr_prune_result *out)
{
	struct pass ps = { .pg = pg,
		.c = pg->w,
		.now = hr_time_now_us(),
		.budget = PASS_ROWS,
		.res = out,
		.walks = &pg->walks };
	struct pg_params p = { .n = 0 };
	int64_t started = hr_time_mono_us();
	PGresult *r;
	bool mine;
	int rc = HR_OK;

	memset(out, 0, sizeof(*out));
	/* Its statements go to the connection itself: the BEGIN and SAVEPOINT first. */
	if (pg_writer_flush(pg) != HR_OK)
		return HR_EDB;
	pgp_int(&p, PG_LOCK_RETENTION);
	if ((r = pg_exec(pg->w, "SELECT pg_try_advisory_xact_lock($1::bigint)", &p)) == NULL)
		return HR_EDB;
	mine = pgc_bool(r, 0, 0);
	PQclear(r);
	if (!mine)
		return HR_OK; /* another node prunes now; this one's next turn may */
	if ((rc = sql_only(&ps, sql_prune_set)) != HR_OK ||
	    (rc = sql_only(&ps, sql_prune_sessions)) != HR_OK)
		return rc;
	rc = prune_rules(&ps, policy, started);
	/* A failure undoes the pass whole (writer.c, write_alone()): none of it counts. */
	if (rc != HR_OK)
		memset(out, 0, sizeof(*out));
	out->more = rc == HR_OK && (ps.budget <= 0 || ps.walk_left);
	return rc;
}
