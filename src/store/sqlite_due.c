/*
 * sqlite_due.c - what the SQLite engine's forwarder asks for: the deliveries
 * due now (an ordered destination's by the heads of its sessions) and when
 * the next one falls due.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "hr/timefmt.h"
#include "sqlite_int.h"

static int next_due_after(
    struct hr_store_backend *, const char *destination, int64_t now_us, int64_t *out_us);

/* Longest due first: the order of the deliveries_due index, so the scan stops
 * after `limit` rows. ORDER BY d.id would sort (and join the body of) every due
 * row on each poll, which is O(backlog) per poll. */
static const char sql_due[] =
    "SELECT d.id, d.attempts, d.order_key, e.id, e.received_at, e.body"
    " FROM deliveries d JOIN events e ON e.seq = d.event_seq"
    " WHERE d.destination = ?1 AND d.status = 0 AND d.next_attempt_at <= ?2"
    " ORDER BY d.next_attempt_at, d.id LIMIT ?3";

/*
 * Ordered: a delivery waits while an older one of its key is pending, so a
 * session's events go out one at a time, in order. The candidates are:
 *  - the heads of HR_DUE_KEYS keys (each key's oldest pending delivery: one
 *    probe of deliveries_order per key, a loose index scan), from where the
 *    last poll's walk ended (?4, hr_store_due_deliveries), so that polls in
 *    turn see every key: from the first key each time, a thousand keys whose
 *    heads wait for retries, with the rows behind them the oldest due, held
 *    every later key back;
 *  - the first DUE_WINDOW due rows without a key, in deliveries_order's order
 *    (by id; by due time, every one of them was read and sorted for each poll:
 *    100,000 drained at 1,323 a second, 24,755 unordered);
 *  - the DUE_OLDEST oldest due rows, each by its key's head (a row without a
 *    key is its own), so that the oldest goes first whatever its key (only the
 *    oldest rows with a key did: with few of those, each poll read every row
 *    without one).
 * The query walked the due rows instead, testing each for an older one of
 * its key: behind a backlog of a few sessions, or after an outage (the heads
 * retried later than the rows behind them were due), nearly every row waits,
 * and each poll walked them all (100,000 pending: 80-110 ms a poll, for at
 * most the poll's limit of rows). The first row says how far the walk went
 * (`walked`), joined to no candidate when there is none. The candidates are
 * then read by id (CROSS JOIN: in that order, whatever the planner would
 * guess), and only those taken are joined to their event: joined before the
 * sort, every candidate's body was read and sorted, a third of the poll with
 * 1 KiB bodies (3.9 ms against 2.5 for 1,000 sessions). The same candidates as PostgreSQL's claim
 * (pg_due.c); the walk over 1,000 keys takes about 2 ms here, 7 ms there.
 */
#define DUE_WINDOW "1000"
#define DUE_OLDEST "64"
static const char sql_due_ordered[] =
    "WITH RECURSIVE heads(id, order_key) AS ("
    "  SELECT * FROM (SELECT h.id, h.order_key FROM deliveries h WHERE h.destination = ?1"
    "   AND h.status = 0 AND h.order_key > ?4 ORDER BY h.order_key, h.id LIMIT 1)"
    "  UNION ALL"
    "  SELECT n.id, n.order_key FROM heads k JOIN deliveries n ON n.id = (SELECT h.id"
    "   FROM deliveries h WHERE h.destination = ?1 AND h.status = 0"
    "   AND h.order_key > k.order_key ORDER BY h.order_key, h.id LIMIT 1)"
    "  LIMIT " HR_DUE_KEYS_SQL "),"
    " walked(last, n) AS MATERIALIZED (SELECT max(order_key), count(*) FROM heads),"
    " cand(id) AS (SELECT id FROM heads"
    "  UNION SELECT * FROM (SELECT d.id FROM deliveries d INDEXED BY deliveries_order"
    "   WHERE d.destination = ?1 AND d.status = 0 AND d.order_key IS NULL"
    "   AND d.next_attempt_at <= ?2 ORDER BY d.order_key, d.id LIMIT " DUE_WINDOW ")"
    "  UNION SELECT CASE WHEN o.order_key IS NULL THEN o.id ELSE (SELECT h.id FROM deliveries h"
    "   WHERE h.destination = ?1 AND h.status = 0 AND h.order_key = o.order_key"
    "   ORDER BY h.id LIMIT 1) END FROM (SELECT d.id, d.order_key FROM deliveries d"
    "   WHERE d.destination = ?1 AND d.status = 0 AND d.next_attempt_at <= ?2"
    "   ORDER BY d.next_attempt_at, d.id LIMIT " DUE_OLDEST ") o)"
    " SELECT x.id, x.attempts, x.order_key, e.id, e.received_at, e.body, x.due, w.last, w.n"
    " FROM walked w LEFT JOIN (SELECT d.id, d.attempts, d.order_key, d.event_seq,"
    "  d.next_attempt_at AS due FROM cand CROSS JOIN deliveries d ON d.id = cand.id"
    "  WHERE d.status = 0 AND d.next_attempt_at <= ?2 ORDER BY d.next_attempt_at, d.id"
    "  LIMIT ?3) x LEFT JOIN events e ON e.seq = x.event_seq ORDER BY x.due, x.id";

int
hr_sqlite_due_deliveries(struct hr_store_backend *b, const char *destination, int64_t now_us,
    bool ordered, unsigned limit, char **window, hr_due_cb cb, void *arg, int64_t *next_due_us,
    struct hr_error *err)
{
	sqlite3 *db = hr_sqlite_reader_get(b);
	sqlite3_stmt *st = ordered ? hr_sqlite_kept(b, db, HR_KEPT_DUE_ORDERED, sql_due_ordered)
	                           : hr_sqlite_kept(b, db, HR_KEPT_DUE, sql_due);
	int rc = HR_OK, step;
	bool first = true;

	if (st == NULL) {
		rc = hr_sqlite_error(db, err, "due deliveries");
		goto out;
	}
	sqlite3_bind_text(st, 1, destination, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now_us);
	sqlite3_bind_int(st, 3, (int)limit);
	if (ordered) /* every key sorts after '' */
		sqlite3_bind_text(
		    st, 4, window != NULL && *window != NULL ? *window : "", -1, SQLITE_TRANSIENT);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct hr_due_delivery d = {
			.id = sqlite3_column_int64(st, 0),
			.attempts = sqlite3_column_int(st, 1),
			.order_key = hr_sqlite_text(st, 2),
			.event_id = hr_sqlite_text(st, 3),
			.received_us = sqlite3_column_int64(st, 4),
			.body = sqlite3_column_blob(st, 5),
			.body_len = (size_t)sqlite3_column_bytes(st, 5),
		};

		if (ordered && first)
			hr_due_window_next(
			    window, hr_sqlite_text(st, 7), sqlite3_column_int64(st, 8));
		first = false;
		if (sqlite3_column_type(st, 0) == SQLITE_NULL) /* the walk's row, no candidate */
			continue;
		if (d.body == NULL)
			d.body = "";
		if ((rc = cb(&d, arg)) == HR_EBUSY)
			rc = HR_OK; /* not taken: nothing was claimed here */
		if (rc != HR_OK)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = hr_sqlite_error(db, err, "due deliveries");
out:
	if (st != NULL)
		hr_sqlite_kept_done(st);
	hr_sqlite_reader_put(b, db);
	/* In this process: no round trip to save, so the query of its own. */
	if (rc == HR_OK && next_due_us != NULL &&
	    next_due_after(b, destination, now_us, next_due_us) != HR_OK)
		*next_due_us = -1;
	return rc;
}

/*
 * The next due time still ahead. A row due already is in flight (its pending
 * row stays due while it is), or waits behind its session's head, or for room:
 * each of those ends with a wake-up (forward_loop.c), and a time past sets no
 * timer. As the minimum of all, such a row hid the retry due 0.2 s later, and
 * the retry waited for the idle poll, up to a second (a forwarding review).
 */
static int
next_due_after(struct hr_store_backend *b, const char *destination, int64_t now_us, int64_t *out_us)
{
	static const char sql[] =
	    "SELECT min(next_attempt_at) FROM deliveries WHERE destination = ?1"
	    " AND status = 0 AND next_attempt_at > ?2";
	sqlite3 *db = hr_sqlite_reader_get(b);
	sqlite3_stmt *st = hr_sqlite_kept(b, db, HR_KEPT_NEXT_DUE, sql);
	int rc = HR_EDB;

	*out_us = 0;
	if (st != NULL) {
		sqlite3_bind_text(st, 1, destination, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, now_us);
		if (sqlite3_step(st) == SQLITE_ROW) {
			*out_us = sqlite3_column_int64(st, 0);
			rc = HR_OK;
		}
		hr_sqlite_kept_done(st);
	}
	hr_sqlite_reader_put(b, db);
	return rc;
}

int
hr_sqlite_next_due(struct hr_store_backend *b, const char *destination, int64_t *out_us)
{
	return next_due_after(b, destination, hr_time_now_us(), out_us);
}
