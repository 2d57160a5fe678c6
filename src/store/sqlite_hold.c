/*
 * sqlite_hold.c - the SQLite engine's max_size hold (why there is one:
 * hr_pass_to_size() in sqlite_shrink.c): nothing received from its start on is
 * pruned by size while deliveries are pending. It follows the event of the
 * oldest pending delivery, ends when none is, and is kept in store_state
 * (schema 16) so that a restart does not end it.
 */
#include <stdatomic.h>
#include <stddef.h>

#include "hr/common.h"
#include "sqlite_int.h"

/* When the event of the oldest delivery still pending came (0: none pending): by
 * the lowest id on deliveries_status, one probe (a replayed old event's new row
 * counts as of its id: the hold then moves on a little early). */
static const char sql_oldest_pending[] =
    "SELECT coalesce((SELECT e.received_at FROM deliveries d INDEXED BY deliveries_status"
    " JOIN events e ON e.seq = d.event_seq WHERE d.status = 0 ORDER BY d.id LIMIT 1), 0)";

int
hr_sqlite_oldest_pending(struct hr_store_backend *b, int64_t *at_us)
{
	return hr_sqlite_query_int(b->wdb, sql_oldest_pending, NULL, 0, at_us);
}

/* store_state (schema 16), a value by name: the hold's rows. In memory only, a
 * hold ended at a restart, and the next pass took all received during it. */
static const char sql_state_get[] = "SELECT value FROM store_state WHERE name = ?1";
static const char sql_state_put[] =
    "INSERT INTO store_state (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET"
    " value = excluded.value";
static const char sql_state_drop[] = "DELETE FROM store_state WHERE name = ?1";
/* The highest seq of each table, from its rowid's B-tree (0: empty). */
static const char sql_last_event[] = "SELECT coalesce(max(seq), 0) FROM events";
static const char sql_last_rejection[] = "SELECT coalesce(max(seq), 0) FROM rejections";

/* The hold's rows of store_state, and what no row means. */
static const struct {
	const char *name;
	size_t off;
	int64_t none;
} hold_rows[] = {
	{ "size_hold_us", offsetof(struct hr_sqlite_hold, at_us), 0 },
	{ "size_hold_events", offsetof(struct hr_sqlite_hold, events), INT64_MAX },
	{ "size_hold_rejections", offsetof(struct hr_sqlite_hold, rejections), INT64_MAX },
};

static int64_t *
hold_field(struct hr_sqlite_hold *h, size_t i)
{
	return (int64_t *)(void *)((char *)h + hold_rows[i].off);
}

int
hr_sqlite_hold_load(struct hr_store_backend *b, struct hr_error *err)
{
	for (size_t i = 0; i < HR_ARRAY_LEN(hold_rows); i++)
		if (hr_sqlite_query_int(b->wdb, sql_state_get, hold_rows[i].name, hold_rows[i].none,
		        hold_field(&b->hold, i)) != HR_OK)
			return hr_sqlite_error(b->wdb, err, "store_state");
	b->hold_stale = false;
	atomic_store(&b->hold_shown_us, b->hold.at_us);
	hr_sqlite_size_walks_restart(b); /* at the start, or after a rollback of what a pass did */
	return HR_OK;
}

/* The hold becomes `h`, in the pass's transaction: a rollback of it leaves the
 * rows as they were, and the writer reads them again (hold_stale). */
static int
hold_set(struct hr_store_backend *b, struct hr_sqlite_hold h)
{
	int64_t ignored;
	int rc = HR_OK;

	if (h.at_us == b->hold.at_us && h.events == b->hold.events &&
	    h.rejections == b->hold.rejections)
		return HR_OK;
	b->hold = h;
	atomic_store(&b->hold_shown_us, h.at_us);
	for (size_t i = 0; rc == HR_OK && i < HR_ARRAY_LEN(hold_rows); i++) {
		int64_t *v = hold_field(&h, i);
		bool none = *v == hold_rows[i].none;

		rc = hr_sqlite_query_int2(b->wdb, none ? sql_state_drop : sql_state_put,
		    hold_rows[i].name, none ? NULL : v, 0, &ignored);
	}
	return rc;
}

/* No hold: everything stored may go. */
static const struct hr_sqlite_hold no_hold = { 0, INT64_MAX, INT64_MAX };

/*
 * Every pass, whatever the cap: the hold moves on to the event of the oldest
 * delivery still pending, and ends when none is. Nothing else ends it: a cap
 * taken off and set again, or raised past what is in use and lowered again,
 * ended it once, and the next pass took all received during it (a review).
 */
int
hr_sqlite_hold_follow(struct hr_store_backend *b)
{
	int64_t pending = 0;
	int rc;

	if (b->hold_stale && (rc = hr_sqlite_hold_load(b, NULL)) != HR_OK)
		return rc;
	if (b->hold.at_us == 0)
		return HR_OK;
	if ((rc = hr_sqlite_oldest_pending(b, &pending)) != HR_OK)
		return rc;
	if (pending == 0)
		return hold_set(b, no_hold); /* the deliveries that held it ended */
	/* What is older than the backlog's head may go, whenever it was stored before
	 * the move; what is stored after it is guarded as at a hold's start (a slow
	 * webhook begun before the new point and stored after the move was taken:
	 * review R10). */
	if (pending > b->hold.at_us)
		return hr_sqlite_hold_begin(b, pending);
	return HR_OK;
}

/*
 * A hold begins, or moves on, at `now`. A webhook whose request began before
 * it and was stored after (a slow body, or queued behind the pass) was
 * received before it, and the next pass took it: what is stored past the
 * highest seq of each table now is kept too, until the hold moves (reviews).
 */
int
hr_sqlite_hold_begin(struct hr_store_backend *b, int64_t now)
{
	struct hr_sqlite_hold h = { .at_us = now };
	int rc;

	if ((rc = hr_sqlite_query_int(b->wdb, sql_last_event, NULL, 0, &h.events)) != HR_OK ||
	    (rc = hr_sqlite_query_int(b->wdb, sql_last_rejection, NULL, 0, &h.rejections)) != HR_OK)
		return rc;
	return hold_set(b, h);
}
