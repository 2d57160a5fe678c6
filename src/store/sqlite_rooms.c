/*
 * sqlite_rooms.c - what a room's session counts of the events on its
 * timeline through a meeting, a recording or a recording's instance alone
 * (docs/api.md "Rooms"), in the SQLite engine; pg_events.c does the same.
 *
 * Such an event names no room (a Daily transcript names only its
 * mtg_session_id): it is on the timeline of the room whose own events name
 * its meeting (sqlite_read.c room_parts), and its room's event_count and
 * last_seen left it out. room_links (schema 18) keeps the room each meeting,
 * recording and instance was last named with, so that the writer tells an
 * event's room as it comes; events.linked_room is the room it was counted
 * toward. An event may come before the one that names its meeting with the
 * room: each such one counts those stored before it that nothing counted.
 * Either way an event is counted once: toward the room of its meeting, else
 * of its recording, else of its instance (HR_SQL_ROOM_INSTANCE_HELD: only a
 * room's event naming it and no recording links an instance, and brings only
 * the starts before it whose recording no room names).
 */
#include <stdlib.h>
#include <string.h>

#include "hr/event.h"
#include "sqlite_int.h"

/* The writer's statements (sqlite_write.c prepares them): the room a meeting
 * (kind 1), a recording (2) or an instance (3) was last named with, while
 * the room still stores an event naming it (the timeline's rule, through the
 * (room, link) indexes of schemas 8 and 11: a late transcript of a meeting
 * retention took does not bring its room back; an instance only as
 * HR_SQL_ROOM_INSTANCE_HELD says, ?4 the event's time); a link named; and a room's
 * count of the events stored before that name it and were counted nowhere
 * (ROOM_ADOPT, sqlite_int.h, finds them). */
const char hr_sqlite_room_of_links_sql[] =
    "SELECT room FROM room_links l WHERE kind = 1 AND value = ?1 AND EXISTS (SELECT 1 FROM"
    " events WHERE room = l.room AND meeting = l.value) UNION ALL SELECT room FROM room_links l"
    " WHERE kind = 2 AND value = ?2 AND EXISTS (SELECT 1 FROM events WHERE room = l.room"
    " AND recording = l.value) UNION ALL SELECT room FROM room_links l WHERE kind = 3 AND"
    " value = ?3 AND NOT EXISTS (SELECT 1 FROM room_links k WHERE k.kind = 2 AND k.value = ?2)"
    " AND EXISTS (SELECT 1 FROM events o WHERE o.room = l.room AND o.recording_instance ="
    " l.value AND o.recording IS NULL AND " HR_SQL_EVENT_AT("o.") " >= ?4) LIMIT 1";
const char hr_sqlite_room_link_add_sql[] =
    "INSERT INTO room_links (kind, value, room) VALUES (?1, ?2, ?3) ON CONFLICT (kind, value)"
    " DO UPDATE SET room = excluded.room WHERE room <> excluded.room";
const char hr_sqlite_room_count_adopted_sql[] =
    "UPDATE sessions SET event_count = event_count + ?2, first_seen = min(first_seen, ?3),"
    " last_seen = max(last_seen, ?4) WHERE scope = 'room' AND key = ?1";

/* A link's kind in room_links, and the statement that counts the events
 * stored before it toward its room. */
struct link {
	int kind;
	const char *value;
	int ws_adopt;
};

/* The links of `sum`; `naming`: those a room's event names. An instance is
 * linked only by one that names no recording (HR_SQL_ROOM_INSTANCE_HELD). */
static size_t
links_of(const struct hr_summary *sum, bool naming, struct link out[3])
{
	const struct link all[3] = {
		{ 1, sum->meeting_id, WS_ROOM_ADOPT_MEETING },
		{ 2, sum->recording_id, WS_ROOM_ADOPT_RECORDING },
		{ 3, sum->recording_instance, WS_ROOM_ADOPT_INSTANCE },
	};
	size_t n = 0;

	for (size_t i = 0; i < 3; i++)
		if (all[i].value != NULL && !(naming && i == 2 && sum->recording_id != NULL))
			out[n++] = all[i];
	return n;
}

/* The event's time as HR_SQL_EVENT_AT reads it once stored. */
static int64_t
event_at(const struct hr_summary *sum, int64_t received_us)
{
	return sum->meeting_at.valid ? sum->meeting_at.us
	    : sum->occurred.valid    ? sum->occurred.us
	                             : received_us;
}

int
hr_sqlite_room_of_links(
    struct hr_store_backend *b, const struct hr_summary *sum, int64_t received_us, char **room)
{
	sqlite3_stmt *st = b->ws[WS_ROOM_OF_LINKS];
	struct link links[3];
	size_t n = sum->room == NULL ? links_of(sum, false, links) : 0;
	int rc;

	*room = NULL;
	if (n == 0)
		return HR_OK;
	/* ?kind is the link's value; those the event lacks stay NULL (cleared after
	 * each use), which no row matches */
	for (size_t i = 0; i < n; i++)
		sqlite3_bind_text(st, links[i].kind, links[i].value, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, event_at(sum, received_us));
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*room = strdup((const char *)sqlite3_column_text(st, 0));
		rc = *room != NULL ? SQLITE_DONE : SQLITE_NOMEM;
	}
	if (rc != SQLITE_DONE)
		hr_sqlite_log_failed(b, st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? HR_OK : HR_EDB;
}

/* The events stored before that name `l` and no room and that nothing counted,
 * counted toward `room` now; `named_at`: the time of the room's event (an instance
 * brings only the starts before it, ROOM_ADOPT_INSTANCE). */
static int
adopt(struct hr_store_backend *b, const struct link *l, const char *room, int64_t named_at)
{
	sqlite3_stmt *st = b->ws[l->ws_adopt];
	int64_t n = 0, first = INT64_MAX, last = INT64_MIN;
	int rc;

	sqlite3_bind_text(st, 1, l->value, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, room, -1, SQLITE_STATIC);
	if (l->kind == 3)
		sqlite3_bind_int64(st, 3, named_at);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t at = sqlite3_column_int64(st, 0);

		n++;
		first = at < first ? at : first;
		last = at > last ? at : last;
	}
	if (rc != SQLITE_DONE)
		hr_sqlite_log_failed(b, st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return HR_EDB;
	if (n == 0)
		return HR_OK;
	st = b->ws[WS_ROOM_COUNT_ADOPTED];
	sqlite3_bind_text(st, 1, room, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, n);
	sqlite3_bind_int64(st, 3, first);
	sqlite3_bind_int64(st, 4, last);
	return hr_sqlite_step_done(b, st);
}

int
hr_sqlite_room_links_add(
    struct hr_store_backend *b, const struct hr_summary *sum, int64_t received_us)
{
	sqlite3_stmt *st = b->ws[WS_ROOM_LINK_ADD];
	struct link links[3];
	size_t n = sum->room != NULL ? links_of(sum, true, links) : 0;

	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int(st, 1, links[i].kind);
		sqlite3_bind_text(st, 2, links[i].value, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, sum->room, -1, SQLITE_STATIC);
		/* Every time, not only when the link is new: an event of a meeting whose room
		 * events retention took was counted nowhere, and the room's next event naming
		 * the meeting puts it on the timeline again. Its index holds the few events
		 * of the link that name no room. */
		if (hr_sqlite_step_done(b, st) != HR_OK ||
		    adopt(b, &links[i], sum->room, event_at(sum, received_us)) != HR_OK)
			return HR_EDB;
	}
	return HR_OK;
}
