/*
 * pg_due.c - what the PostgreSQL engine's forwarder asks for: the deliveries
 * due now, claimed for this node (an ordered destination's by the heads of its
 * sessions), and when the next one falls due (SQLite's: sqlite_due.c).
 *
 * Due deliveries are claimed, not just read: FOR UPDATE SKIP LOCKED picks rows
 * no other node is claiming at that instant, and the lease written with them
 * (locked_until) keeps them this node's until the attempt's record clears it
 * or the lease runs out (a dead node's rows are then due again for the others).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hr/log.h"
#include "hr/timefmt.h"
#include "pg_int.h"

/*
 * A row leased by a node is due for the others when its lease runs out. The
 * rows are read in the order of deliveries_due, NEXT_DUE_WINDOW at most: a row
 * past them is due no sooner than the last one's next_attempt_at, which stands
 * for them (sooner than the truth at worst: one poll more). The minimum over
 * every pending row, which no index gives, read the whole backlog after each
 * poll: 100,000 pending drained at 2,327 a second, three quarters of the time
 * in this query.
 */
#define NEXT_DUE_WINDOW "64"
/* The next due time still ahead of $2 (now), as `lease` (an expression of the
 * row `w`) says when a row's lease ends; one column, NULL when none is ahead. A
 * row due already (an ordered one behind its session's head) sets no timer (its
 * head's end wakes the loop): as the minimum it hid the head's retry, which then
 * waited for the idle poll, up to a second (as on SQLite, sqlite_due.c). */
#define NEXT_DUE(lease)                                                                            \
	"SELECT least(min(greatest(w.next_attempt_at, " lease ")) FILTER (WHERE"                   \
	" greatest(w.next_attempt_at, " lease ") > $2::bigint),"                                   \
	" CASE WHEN count(*) = " NEXT_DUE_WINDOW " THEN max(w.next_attempt_at) END) AS at"         \
	" FROM (SELECT id, next_attempt_at, locked_until FROM deliveries"                          \
	" WHERE destination = $1 AND status = 0 ORDER BY next_attempt_at LIMIT " NEXT_DUE_WINDOW   \
	") w"
/* With a claim (`u`, the rows it leased until $5), its answer carries the next
 * due time as a query made after it would read it, in the same round trip: a
 * poll was two, and the forwarder's thread waits for each (with the database 1
 * ms away, about 150 polls a second in a drain). The statement does not see
 * its own lease, so the rows it took count from $5. */
#define NEXT_DUE_AFTER_CLAIM                                                                       \
	" nd AS (" NEXT_DUE("CASE WHEN w.id IN (SELECT id FROM u) THEN $5::bigint"                 \
	                    " ELSE coalesce(w.locked_until, 0) END") ")"

/*
 * Claim up to $4 due deliveries of $1 for this node ($6) until $5: the rows
 * of `c`, which the claim's two statements choose. The claim and the lease are
 * one statement: one transaction, committed before any attempt starts.
 */
#define CLAIM_UPDATE                                                                               \
	" u AS (UPDATE deliveries SET locked_until = $5::bigint, locked_by = $6 FROM c"            \
	"  WHERE deliveries.id = c.id"                                                             \
	"  RETURNING deliveries.id, deliveries.attempts, deliveries.order_key,"                    \
	"  deliveries.event_seq, deliveries.next_attempt_at)"
#define CLAIM_ROWS                                                                                 \
	" SELECT u.id, u.attempts, u.order_key, e.id AS event_id, e.received_at, e.body,"          \
	" u.next_attempt_at AS due FROM u JOIN events e ON e.seq = u.event_seq"
/* Every claim's answer has a row: the next due time (NEXT_DUE_AFTER_CLAIM) comes
 * without a claimed row when nothing was claimed. */
#define CLAIM_LEASE                                                                                \
	CLAIM_UPDATE "," NEXT_DUE_AFTER_CLAIM " SELECT x.*, nd.at FROM nd LEFT JOIN (" CLAIM_ROWS  \
	             ") x ON true ORDER BY x.due, x.id"
#define CLAIM_DUE                                                                                  \
	" d.status = 0 AND d.next_attempt_at <= $2::bigint"                                        \
	" AND (d.locked_until IS NULL OR d.locked_until <= $2::bigint)"

/* Unordered ($3 false, unused): the first due rows, in the order of
 * deliveries_due, (destination, next_attempt_at), so that the scan stops at
 * the limit whatever the statistics say. Ordered by id too, which the index
 * does not hold, the plan on tables not yet analyzed read every due row and
 * sorted them, for each claim (100,000 pending drained at 1,477 a second, 5,024 now). */
static const char sql_claim[] =
    "WITH c AS (SELECT d.id FROM deliveries d WHERE d.destination = $1 AND" CLAIM_DUE
    "  AND $3::boolean IS NOT NULL"
    "  ORDER BY d.next_attempt_at LIMIT $4::integer FOR UPDATE OF d SKIP "
    "LOCKED)," CLAIM_LEASE;

/*
 * Ordered: a delivery waits while an older one of its key is pending, leased
 * or not, on any node, so a session's events go out one at a time, in order.
 * The candidates are the heads of the keys (each key's oldest pending
 * delivery, one probe of deliveries_order per key: a loose index scan) and
 * the due deliveries without a key (deliveries_order too, `IS NULL`, in its
 * order). The claim walked the due rows instead, testing each for an older
 * one of its key: behind a backlog of a few sessions nearly every row waits,
 * and each claim walked them all (20,000 pending in 100 sessions: 180 ms a
 * claim on analyzed tables, 565 ms on stale ones; 29 deliveries a second).
 *
 * Both lists are bounded (HR_DUE_KEYS keys, CLAIM_WINDOW rows without a key):
 * those past them wait for a later claim. The CLAIM_OLDEST oldest due rows
 * give their keys' heads too (a probe per key; a row without a key is its own),
 * so that the oldest goes first whatever its key. They gave only their keys,
 * from the oldest keyed rows: with few of those, that read every due row
 * without a key for each claim. The walk over the keys starts after $7, where the
 * node's last claim ended (hr_store_due_deliveries), and the result's first
 * row says where this one ended (`walked`, joined to no row when nothing was
 * claimed): with the first 1,000 keys all waiting for retries, and the rows
 * behind them the oldest due, a walk from the first key every time held every
 * later key back (test_pg_plans OrderedClaimRotates). The walk reads 1,000
 * keys, 7 ms a claim: stopping once it had twice the claim's limit of
 * heads free to take drained 100,000 in 1,000 sessions at 3,114 a second
 * rather than 1,190-2,146, but took the sessions in the order of their keys
 * whenever a retrying session held the oldest due rows (those behind its
 * first), so a session last by its key waited behind all the others
 * (test_pg_plans OrderedClaimStuck).
 *
 * Each part is written so that its index gives its order and its bound
 * whatever the statistics say, as on tables not yet analyzed: the rows
 * without a key in deliveries_order's order (by due time, the planner walked
 * deliveries_due instead, every keyed due row: 16 ms a claim at 100,000), the
 * oldest rows in deliveries_due's (by id too, it read and sorted every due
 * row: 29 ms). The candidates are read by id (`= ANY (ARRAY (...))`, without
 * the destination an index of it could take: as `IN`, on stale statistics the
 * planner walked the due rows and compared each with every candidate; and
 * `status + 0`, or the partial indexes' `status = 0` let it read a whole
 * index of the pending rows as a bitmap).
 */
#define CLAIM_WINDOW "1000"
#define CLAIM_OLDEST "64"
static const char sql_claim_ordered[] =
    "WITH RECURSIVE heads(order_key, id) AS ("
    "  (SELECT h.order_key, h.id FROM deliveries h WHERE $3::boolean AND h.destination = $1"
    "   AND h.status = 0 AND h.order_key > $7 ORDER BY h.order_key, h.id LIMIT 1)"
    "  UNION ALL"
    "  SELECT n.order_key, n.id FROM heads k CROSS JOIN LATERAL (SELECT h.order_key, h.id"
    "   FROM deliveries h WHERE h.destination = $1 AND h.status = 0"
    "   AND h.order_key > k.order_key ORDER BY h.order_key, h.id LIMIT 1) n),"
    " walked AS (SELECT max(k.order_key) AS last, count(*) AS n FROM (SELECT order_key"
    "  FROM heads LIMIT " HR_DUE_KEYS_SQL ") k),"
    " cand AS ((SELECT id FROM heads LIMIT " HR_DUE_KEYS_SQL ") UNION ALL"
    "  (SELECT d.id FROM deliveries d WHERE d.destination = $1 AND d.order_key IS NULL "
    "AND" CLAIM_DUE " ORDER BY d.order_key, d.id LIMIT " CLAIM_WINDOW ") UNION ALL"
    "  SELECT coalesce(f.id, o.id) FROM (SELECT d.id, d.order_key FROM deliveries d"
    "   WHERE d.destination = $1 AND" CLAIM_DUE " ORDER BY d.next_attempt_at"
    "   LIMIT " CLAIM_OLDEST ") o"
    "  LEFT JOIN LATERAL (SELECT h.id FROM deliveries h"
    "   WHERE h.destination = $1 AND h.order_key = o.order_key AND h.status = 0"
    "   ORDER BY h.id LIMIT 1) f ON true),"
    " c AS (SELECT d.id FROM deliveries d WHERE d.id = ANY (ARRAY (SELECT id FROM cand))"
    " AND d.status + 0 = 0 AND d.next_attempt_at <= $2::bigint"
    " AND (d.locked_until IS NULL OR d.locked_until <= $2::bigint)"
    " ORDER BY d.next_attempt_at, d.id LIMIT $4::integer FOR UPDATE OF d SKIP LOCKED)," CLAIM_UPDATE
    "," NEXT_DUE_AFTER_CLAIM " SELECT x.*, w.last, w.n, nd.at FROM walked w CROSS JOIN nd"
    " LEFT JOIN (" CLAIM_ROWS ") x ON true"
    " ORDER BY x.due, x.id";

/*
 * Rows claimed and not taken go back at once, so they are due again, here or
 * elsewhere. Given back on a connection that failed too, they stayed leased to
 * this node with nothing in flight for the whole lease (minutes), an ordered
 * destination's sessions behind them (a review): what could not go back is
 * owed, and goes at the next poll. By its lease's end: a row this node claimed
 * again since (a new lease) stays its own.
 */
static const char sql_give_back[] =
    "UPDATE deliveries SET locked_until = NULL, locked_by = NULL"
    " WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND locked_until = $3::bigint";
/*
 * A claim whose answer was lost (the connection gone after its COMMIT, or out
 * of time) may have leased rows: they are read again by their lease, as the
 * claim's answer would have had them, and taken, kept or given back as from
 * it. Given back blindly, a row whose attempt this node's claim had renewed
 * (forward_delivery.c, take_row) was free for any node while its attempt ran.
 * Read, they are leased anew, until $4: the lost claim's lease began before
 * the read (a reconnect, a lock waited for), and "a claim must outlive its
 * attempt" (cfg_reader.c). Sent under it, an attempt went with less than its
 * timeout of lease left, and past it another node claimed and sent the row too
 * (test_pg_faults). A row another node claimed since is not this lease's.
 */
static const char sql_claimed_again[] =
    "WITH u AS (UPDATE deliveries d SET locked_until = $4::bigint WHERE d.destination = $1"
    " AND d.status = 0 AND d.locked_by = $2 AND d.locked_until = $3::bigint"
    " RETURNING d.id, d.attempts, d.order_key, d.event_seq, d.next_attempt_at)"
    " SELECT u.id, u.attempts, u.order_key, e.id AS event_id, e.received_at, e.body,"
    " u.next_attempt_at AS due FROM u JOIN events e ON e.seq = u.event_seq"
    " ORDER BY u.next_attempt_at, u.id";

/* The rows `ids` (an array literal) of the lease ending at `until` given back;
 * false when that failed. */
static bool
give_back(struct hr_store_backend *pg, int64_t until, const char *ids)
{
	struct pg_params p = { .n = 0 };
	PGconn *c;
	PGresult *r;

	pgp_text(&p, ids);
	pgp_text(&p, pg->node);
	pgp_int(&p, until);
	c = hr_pg_reader_get(pg);
	r = pg_exec(c, sql_give_back, &p);
	hr_pg_reader_put(pg, c);
	PQclear(r);
	return r != NULL;
}

static void
owed_drop(struct hr_store_backend *pg, unsigned i)
{
	free(pg->owed[i].destination);
	free(pg->owed[i].ids);
	memmove(&pg->owed[i], &pg->owed[i + 1], (pg->nowed - i - 1) * sizeof(pg->owed[0]));
	pg->nowed--;
}

/* Remember a lease to give back (`ids` NULL: to read again). A full list drops
 * its oldest: those rows wait out their lease, as they all did before. */
static void
owe(struct hr_store_backend *pg, const char *destination, int64_t until, const char *ids)
{
	struct pg_owed *o;

	if (pg->nowed == PG_OWED_MAX) {
		log_warnx("forward: destination %s: deliveries this node could not give back stay"
		          " leased to it until their lease ends",
		    pg->owed[0].destination);
		owed_drop(pg, 0);
	}
	o = &pg->owed[pg->nowed];
	o->until = until;
	o->destination = strdup(destination);
	o->ids = ids != NULL ? strdup(ids) : NULL;
	if (o->destination == NULL || (ids != NULL && o->ids == NULL)) {
		free(o->destination);
		free(o->ids);
		return;
	}
	pg->nowed++;
}

static bool take_claimed(struct hr_store_backend *, const char *destination, int64_t until,
    PGresult *, hr_due_cb, void *arg, int *rc);

/*
 * The rows of `destination`'s lease ending at `until` read again, leased anew
 * until *renewed, and handed to `cb` as from their claim; false when the read
 * failed. *renewed is then 0 unless its answer was lost (the connection gone
 * after it was sent): its rows may be under either lease. A statement never
 * sent, or refused, leased nothing, and a database down for minutes would
 * otherwise fill the owed list with a lease a poll. *gave: some went back.
 */
static bool
claimed_again(struct hr_store_backend *pg, const char *destination, int64_t until, hr_due_cb cb,
    void *arg, bool *gave, int *rc, int64_t *renewed)
{
	struct pg_params p = { .n = 0 };
	PGconn *c = hr_pg_reader_get(pg); /* first: a reconnect may take a while */
	bool up = PQstatus(c) == CONNECTION_OK;
	PGresult *r = NULL;

	*renewed = hr_time_now_us() + pg->lease_us;
	pgp_text(&p, destination);
	pgp_text(&p, pg->node);
	pgp_int(&p, until);
	pgp_int(&p, *renewed);
	if (up)
		r = pg_exec(c, sql_claimed_again, &p);
	if (r == NULL && (!up || PQstatus(c) == CONNECTION_OK))
		*renewed = 0;
	hr_pg_reader_put(pg, c);
	if (r == NULL)
		return false;
	if (PQntuples(r) > 0)
		log_info("forward: destination %s: %d deliveries of a claim whose answer was lost"
		         " read again",
		    destination, PQntuples(r));
	*gave |= take_claimed(pg, destination, *renewed, r, cb, arg, rc);
	PQclear(r);
	return true;
}

/* What is owed, given back (and `destination`'s lost claims read again through
 * `cb`); true when something went back or was read (it is due again). A lease
 * past its end is no longer this node's. The first failure ends the round: the
 * database is not answering. */
static bool
pay_owed(struct hr_store_backend *pg, const char *destination, int64_t now_us, hr_due_cb cb,
    void *arg, int *rc)
{
	bool paid = false;
	int64_t renewed;

	for (unsigned i = 0; i < pg->nowed && *rc == HR_OK;) {
		struct pg_owed *o = &pg->owed[i];
		bool mine = strcmp(o->destination, destination) == 0, live = o->until > now_us;

		if (live && o->ids == NULL && !mine) {
			i++; /* its destination's own poll reads it */
			continue;
		}
		if (live && o->ids != NULL && !give_back(pg, o->until, o->ids))
			return paid;
		if (live && o->ids == NULL &&
		    !claimed_again(pg, destination, o->until, cb, arg, &paid, rc, &renewed)) {
			/* After `o`'s last use: owe() may move the list. */
			if (renewed != 0)
				owe(pg, destination, renewed, NULL);
			return paid;
		}
		paid |= live;
		owed_drop(pg, i);
	}
	return paid;
}

void
hr_pg_owed_free(struct hr_store_backend *pg)
{
	while (pg->nowed > 0)
		owed_drop(pg, pg->nowed - 1);
}

/* Append `id` to the array literal; false when it does not fit. Two bytes stay
 * for "}\0". */
static bool
back_add(char *buf, size_t size, size_t *n, int64_t id)
{
	int w = snprintf(buf + *n, size - 2 - *n, "%s%lld", *n > 1 ? "," : "", (long long)id);

	if (w < 0 || (size_t)w >= size - 2 - *n) {
		buf[*n] = '\0';
		return false;
	}
	*n += (size_t)w;
	return true;
}

/* The array literal `ids` (`n` bytes so far) closed and given back (or owed). */
static void
back_send(struct hr_store_backend *pg, const char *destination, int64_t until, char *ids, size_t n)
{
	ids[n] = '}';
	ids[n + 1] = '\0';
	if (!give_back(pg, until, ids))
		owe(pg, destination, until, ids);
}

/* The claim's rows to `cb`; those it could not take (HR_EBUSY) given back. True
 * when some were. */
static bool
take_claimed(struct hr_store_backend *pg, const char *destination, int64_t until, PGresult *r,
    hr_due_cb cb, void *arg, int *rc)
{
	char back[1024] = "{";
	size_t nback = 1;
	bool gave = false;

	for (int i = 0; i < PQntuples(r) && *rc == HR_OK; i++) {
		struct hr_due_delivery d = {
			.id = pgc_int(r, i, 0),
			.attempts = (int)pgc_int(r, i, 1),
			.order_key = pgc_text(r, i, 2),
			.event_id = pgc_text(r, i, 3),
			.received_us = pgc_int(r, i, 4),
			.body = pgc_null(r, i, 5) ? "" : pgc_text(r, i, 5),
			.body_len = pgc_len(r, i, 5),
		};

		if (pgc_null(r, i, 0)) /* the walk's row: nothing was claimed */
			continue;
		if ((*rc = cb(&d, arg)) != HR_EBUSY)
			continue;
		*rc = HR_OK;
		gave = true;
		/* A full list goes back now and a new one begins. */
		if (!back_add(back, sizeof(back), &nback, d.id)) {
			back_send(pg, destination, until, back, nback);
			nback = 1;
			(void)back_add(back, sizeof(back), &nback, d.id);
		}
	}
	if (nback > 1)
		back_send(pg, destination, until, back, nback);
	return gave;
}

int
hr_pg_due_deliveries(struct hr_store_backend *pg, const char *destination, int64_t now_us,
    bool ordered, unsigned limit, char **window, hr_due_cb cb, void *arg, int64_t *next_due_us,
    struct hr_error *err)
{
	struct pg_params p = { .n = 0 };
	int64_t until = now_us + pg->lease_us, renewed;
	bool gave;
	PGconn *c;
	PGresult *r;
	int rc = HR_OK;

	if (limit == 0)
		return HR_OK;
	gave = pay_owed(pg, destination, now_us, cb, arg, &rc);
	if (rc != HR_OK)
		return rc;
	pgp_text(&p, destination);
	pgp_int(&p, now_us);
	pgp_text(&p, ordered ? "t" : "f");
	pgp_int(&p, limit);
	pgp_int(&p, until);
	pgp_text(&p, pg->node);
	if (ordered) /* every key sorts after '' */
		pgp_text(&p, window != NULL && *window != NULL ? *window : "");
	c = hr_pg_reader_get(pg);
	r = pg_query(c, ordered ? sql_claim_ordered : sql_claim, &p, err);
	hr_pg_reader_put(pg, c);
	if (r == NULL) {
		if (!claimed_again(pg, destination, until, cb, arg, &gave, &rc, &renewed)) {
			owe(pg, destination, until, NULL);
			if (renewed != 0)
				owe(pg, destination, renewed, NULL);
			return HR_EDB;
		}
		if (next_due_us != NULL)
			*next_due_us = now_us; /* the claim's own answer, lost, said when */
		return rc;
	}
	if (ordered && PQntuples(r) > 0)
		hr_due_window_next(
		    window, pgc_null(r, 0, 7) ? NULL : pgc_text(r, 0, 7), pgc_int(r, 0, 8));
	if (next_due_us != NULL && PQntuples(r) > 0) /* NULL: nothing pending, 0 */
		*next_due_us = pgc_int(r, 0, ordered ? 9 : 7);
	gave |= take_claimed(pg, destination, until, r, cb, arg, &rc);
	PQclear(r);
	if (gave && next_due_us != NULL && *next_due_us > now_us)
		*next_due_us = now_us; /* they are due again */
	return rc;
}

int
hr_pg_next_due(struct hr_store_backend *pg, const char *destination, int64_t *out_us)
{
	struct pg_params p = { .n = 0 };
	PGconn *c = hr_pg_reader_get(pg);
	PGresult *r;

	*out_us = 0;
	pgp_text(&p, destination);
	pgp_int(&p, hr_time_now_us());
	r = pg_exec(c, NEXT_DUE("coalesce(w.locked_until, 0)"), &p);
	hr_pg_reader_put(pg, c);
	if (r == NULL)
		return HR_EDB;
	if (PQntuples(r) == 1)
		*out_us = pgc_int(r, 0, 0);
	PQclear(r);
	return HR_OK;
}
