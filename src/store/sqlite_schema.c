/*
 * sqlite_schema.c - the SQLite engine's schema and its migrations.
 *
 * The schema is versioned with PRAGMA user_version and only ever migrated
 * forward, one transaction per step, so a database written by any earlier
 * hookrelay opens, and one written by a later one is refused.
 */
#include <stdio.h>
#include <string.h>

#include "hr/event.h"
#include "hr/log.h"
#include "hr/schema.h"
#include "hr/store_sqlite.h"
#include "sqlite_int.h"

/* A high-water mark of store_state (schema 20) that only ever rises. */
#define HIGH_WATER_RAISED " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)"

/* Schema 18: a stored start is its instance's room's as the writer tells it. */
#define STORED_INSTANCE_HELD HR_SQL_ROOM_INSTANCE_HELD("events", "l.room")

/* Schema 21: a key past HR_KEY_MAX bytes (SQLite's length() of TEXT counts
 * characters, of a BLOB bytes), which names nothing (docs/events.md "Keys"). */
#define PAST(col) "length(CAST(" col " AS BLOB)) > 1024"
_Static_assert(HR_KEY_MAX == 1024, "schema 21 bounds stored keys as HR_KEY_MAX does");
/* The stored value of `col` as a new event would have it: NULL past the bound. */
#define BOUNDED(col) col " = CASE WHEN " PAST(col) " THEN NULL ELSE " col " END"
/* A facet g's (source, provider, kind, event type, subtype) is the event's. */
#define FACET_OF_EVENT                                                                             \
	"g.source = events.source AND g.provider = events.provider AND g.kind = events.kind"       \
	" AND g.event_type IS events.event_type AND g.subtype IS events.subtype"
#define LONG_FACETS "SELECT id FROM facets WHERE " PAST("event_type") " OR " PAST("subtype")
#define LONG_KEYS                                                                                  \
	PAST("session_key")                                                                        \
	" OR " PAST("event_type") " OR " PAST("subtype") " OR " PAST("room") " OR " PAST(          \
	    "meeting") " OR " PAST("recording") " OR " PAST("recording_instance") " OR " PAST("li" \
	                                                                                      "nk" \
	                                                                                      "ed" \
	                                                                                      "_r" \
	                                                                                      "oo" \
	                                                                                      "m")
#define KEYS_BOUNDED                                                                               \
	BOUNDED("session_key")                                                                     \
	", " BOUNDED("event_type") ", " BOUNDED("subtype") ", " BOUNDED("room") ", " BOUNDED(      \
	    "meeting") ", " BOUNDED("recording") ", " BOUNDED("recording_instance") ", " BOUNDED("linked_room")
#define SESSION_KEY_PAST                                                                           \
	"scope = CASE WHEN " PAST(                                                                 \
	    "session_key") " THEN NULL ELSE scope END, session_id = CASE"                          \
	                   " WHEN " PAST("session_key") " THEN NULL ELSE session_id END"
#define LONG_SESSIONS   "SELECT id FROM sessions WHERE " PAST("key")
#define LONG_QUERY_ROWS PAST("name") " OR " PAST("value")
#define LONG_ROOM_LINKS PAST("value") " OR " PAST("room")

/* Forward-only migrations: entry i takes user_version i to i + 1. */
static const char *const migrations[] = {
	/* 1: events, sessions, rejections */
	"CREATE TABLE sessions ("
	"  id INTEGER PRIMARY KEY,"
	"  scope TEXT NOT NULL,"
	"  key TEXT NOT NULL,"
	"  provider TEXT NOT NULL,"
	"  status INTEGER NOT NULL," /* enum hr_session_status */
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  event_count INTEGER NOT NULL,"
	"  duration REAL,"
	"  shutdown_reason TEXT,"
	"  exit_reason TEXT,"
	"  error_type TEXT,"
	"  overall_score REAL,"
	"  UNIQUE (scope, key));"
	"CREATE INDEX sessions_key ON sessions (key);"
	"CREATE INDEX sessions_provider ON sessions (provider, id);"
	"CREATE INDEX sessions_status ON sessions (status, id);"
	"CREATE INDEX sessions_last_seen ON sessions (last_seen);"
	"CREATE TABLE events ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused: cursors, stream ids */
	"  id TEXT NOT NULL UNIQUE,"
	"  received_at INTEGER NOT NULL," /* microseconds since the epoch, UTC */
	"  source TEXT NOT NULL,"
	"  provider TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  event_type TEXT,"
	"  subtype TEXT,"
	"  scope TEXT,"
	"  session_key TEXT,"
	"  session_id INTEGER REFERENCES sessions (id),"
	"  occurred_at INTEGER,"
	"  occurred_raw TEXT,"
	"  remote_addr TEXT,"
	"  headers TEXT NOT NULL,"
	"  body BLOB NOT NULL);"
	"CREATE INDEX events_source ON events (source, seq);"
	"CREATE INDEX events_provider ON events (provider, seq);"
	"CREATE INDEX events_kind ON events (kind, seq);"
	"CREATE INDEX events_event_type ON events (event_type, seq);"
	"CREATE INDEX events_session_key ON events (session_key, seq);"
	"CREATE INDEX events_session_id ON events (session_id, occurred_at, seq);"
	"CREATE TABLE rejections ("
	"  seq INTEGER PRIMARY KEY,"
	"  id TEXT NOT NULL UNIQUE,"
	"  received_at INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  remote_addr TEXT,"
	"  kind TEXT,"
	"  http_status INTEGER NOT NULL,"
	"  problem TEXT NOT NULL,"
	"  headers TEXT NOT NULL,"
	"  body BLOB NOT NULL);"
	"CREATE INDEX rejections_source ON rejections (source, seq);"
	"CREATE INDEX rejections_received_at ON rejections (received_at);",

	/* 2: the transactional outbox: deliveries, their attempts, destination state */
	"CREATE TABLE deliveries ("
	"  id INTEGER PRIMARY KEY,"
	"  event_seq INTEGER NOT NULL REFERENCES events (seq),"
	"  destination TEXT NOT NULL,"
	"  order_key TEXT,"          /* scope:key for ordered destinations, else NULL */
	"  status INTEGER NOT NULL," /* enum hr_delivery_status */
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  created_at INTEGER NOT NULL,"
	"  updated_at INTEGER NOT NULL,"
	"  next_attempt_at INTEGER NOT NULL,"
	"  locked_until INTEGER,"
	"  last_status INTEGER,"
	"  last_error TEXT);"
	"CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE status = 0;"
	"CREATE INDEX deliveries_order ON deliveries (destination, order_key, id) WHERE status = 0;"
	"CREATE INDEX deliveries_event ON deliveries (event_seq);"
	"CREATE INDEX deliveries_dest_status ON deliveries (destination, status, id);"
	"CREATE INDEX deliveries_status ON deliveries (status, id);"
	"CREATE INDEX deliveries_created ON deliveries (created_at);"
	"CREATE TABLE attempts ("
	"  id INTEGER PRIMARY KEY,"
	"  delivery_id INTEGER NOT NULL REFERENCES deliveries (id),"
	"  number INTEGER NOT NULL,"
	"  started_at INTEGER NOT NULL,"
	"  duration_us INTEGER NOT NULL,"
	"  http_status INTEGER,"
	"  error TEXT,"
	"  response BLOB);"
	"CREATE INDEX attempts_delivery ON attempts (delivery_id, number);"
	"CREATE TABLE destinations ("
	"  name TEXT PRIMARY KEY,"
	"  disabled INTEGER NOT NULL DEFAULT 0,"
	"  disabled_reason TEXT,"
	"  disabled_at INTEGER);",

	/* 3: deduplication keys, kept for the source's dedup_window */
	"CREATE TABLE dedup ("
	"  source TEXT NOT NULL,"
	"  key TEXT NOT NULL,"
	"  event_id TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  PRIMARY KEY (source, key)) WITHOUT ROWID;"
	"CREATE INDEX dedup_expires ON dedup (expires_at);",

	/* 4: the data lifecycle (sqlite_prune.c): a pruned payload is an empty body
	 * with pruned_at set; the indexes find each source's oldest events, those
	 * still whole and all of them, without scanning the ones already handled. */
	"ALTER TABLE events ADD COLUMN pruned_at INTEGER;"
	"CREATE INDEX events_unpruned ON events (source, received_at) WHERE pruned_at IS NULL;"
	"CREATE INDEX events_source_age ON events (source, received_at);",

	/* 5: nothing a provider sends is thrown away (issue 10). Events keep the
	 * callback URL's query parameters (auth token removed), a JSON object, and
	 * event_query holds them again one row per value so that a filter on one
	 * (GET /v1/events?query.user_id=42) is an index probe, not a JSON scan.
	 * An event made from an accepted rejection keeps its validation problems.
	 * A rejection keeps its query too, and the event its acceptance made. */
	"ALTER TABLE events ADD COLUMN query TEXT;"
	"ALTER TABLE events ADD COLUMN problems TEXT;"
	"CREATE TABLE event_query ("
	"  name TEXT NOT NULL,"
	"  value TEXT NOT NULL,"
	"  event_seq INTEGER NOT NULL REFERENCES events (seq),"
	"  PRIMARY KEY (name, value, event_seq)) WITHOUT ROWID;"
	"CREATE INDEX event_query_event ON event_query (event_seq);"
	"ALTER TABLE rejections ADD COLUMN query TEXT;"
	"ALTER TABLE rejections ADD COLUMN accepted_event TEXT;",

	/* 6: one room, one timeline (issue 16, docs/api.md "Rooms"). An event
	 * keeps its own session and may link to a Daily room (`room`); `meeting`
	 * is the meeting of a reused room it names, `meeting_at` a time inside
	 * that meeting, `recording` the recording it is about, and `facts` the
	 * few fields a room's view shows (a participant's name...). Room-scoped
	 * events stored before are their room's already. */
	"ALTER TABLE events ADD COLUMN room TEXT;"
	"ALTER TABLE events ADD COLUMN meeting TEXT;"
	"ALTER TABLE events ADD COLUMN meeting_at INTEGER;"
	"ALTER TABLE events ADD COLUMN recording TEXT;"
	"ALTER TABLE events ADD COLUMN facts TEXT;"
	"UPDATE events SET room = session_key WHERE scope = 'room';"
	"CREATE INDEX events_room ON events (room, seq) WHERE room IS NOT NULL;"
	"CREATE INDEX events_meeting ON events (meeting) WHERE meeting IS NOT NULL;"
	"CREATE INDEX events_recording ON events (recording) WHERE recording IS NOT NULL;",

	/* 7: an index is kept only for a query that needs it (issue 17): each one
	 * is a B-tree insert per event and a WAL page per commit. No query reads
	 * sessions by last_seen (listings walk id order, a session's lookup sorts
	 * its one or few rows), and a lookup by key alone probes the (scope, key)
	 * unique index once per scope (sqlite_read.c), so both indexes go. */
	"DROP INDEX sessions_last_seen; DROP INDEX sessions_key;",

	/* 8: the room filter (sqlite_read.c where_room) asks for the meetings and
	 * recordings its room's events name; through events_room that read every
	 * event of the room from the table (440 ms for a room of 55k events in a
	 * 1M database, bench/scale). These answer it from the index alone, and
	 * cost an insert only to the events that name a room and a meeting or a
	 * recording (Daily's). */
	"CREATE INDEX events_room_meetings ON events (room, meeting)"
	"  WHERE room IS NOT NULL AND meeting IS NOT NULL;"
	"CREATE INDEX events_room_recordings ON events (room, recording)"
	"  WHERE room IS NOT NULL AND recording IS NOT NULL;",

	/* 9: a room's timeline (GET /v1/sessions/room:NAME) is its newest events
	 * by their own time, which no index held: the room's every event was read
	 * and sorted (180 ms for a room of 55k events in 1M, bench/scale).
	 * events_room_time gives them in that order. The meetings' and
	 * recordings' parts of a room's events are those that name no room (an
	 * event naming a room is on that room's timeline), so their indexes hold
	 * only these: the room's own events, which name its meetings too, are not
	 * read twice, and no longer pay for two indexes. */
	"CREATE INDEX events_room_time ON events (room, coalesce(occurred_at, received_at), seq)"
	"  WHERE room IS NOT NULL;"
	"DROP INDEX events_meeting; DROP INDEX events_recording;"
	"CREATE INDEX events_meeting ON events (meeting)"
	"  WHERE meeting IS NOT NULL AND room IS NULL;"
	"CREATE INDEX events_recording ON events (recording)"
	"  WHERE recording IS NOT NULL AND room IS NULL;",

	/* 10: the subtype filter (GET /v1/events?subtype=ended) walked the whole
	 * table newest first whenever few events matched: 475 ms for a subtype
	 * no event has, at 1M. Only the kinds that derive a subtype (sessions,
	 * videos, trainings: a fifth of bench/scale's events, none of the
	 * Tavus conversation callbacks') pay for it. */
	"CREATE INDEX events_subtype ON events (subtype, seq) WHERE subtype IS NOT NULL;",

	/* 11: a failed Daily recording's events share only its instance: the
	 * room's recording.error names the instance and no recording, the
	 * recording.started names both and no room. A room's events are also
	 * those that name no room but one of its recordings' instances, through
	 * these two indexes as the recordings' own (schemas 8 and 9). Events
	 * stored before have the instance in their room facts. */
	"ALTER TABLE events ADD COLUMN recording_instance TEXT;"
	"UPDATE events SET recording_instance = json_extract(facts, '$.instance_id')"
	"  WHERE kind IN ('daily.recording.started',"
	"  'daily.recording.ready-to-download', 'daily.recording.error') AND json_valid(facts);"
	"CREATE INDEX events_recording_instance ON events (recording_instance)"
	"  WHERE recording_instance IS NOT NULL AND room IS NULL;"
	"CREATE INDEX events_room_recording_instances ON events (room, recording_instance)"
	"  WHERE room IS NOT NULL AND recording_instance IS NOT NULL;",

	/* 12: a destination's deliveries by status, kept by triggers on every
	 * insert, change of status and delete: GET /v1/destinations and each
	 * /metrics scrape counted them whole, 41 ms per million rows and status,
	 * growing with the history retention keeps. */
	"CREATE TABLE delivery_counts ("
	"  destination TEXT NOT NULL, status INTEGER NOT NULL, n INTEGER NOT NULL,"
	"  PRIMARY KEY (destination, status)) WITHOUT ROWID;"
	"INSERT INTO delivery_counts SELECT destination, status, count(*) FROM deliveries"
	"  GROUP BY destination, status;"
	"CREATE TRIGGER deliveries_counted_in AFTER INSERT ON deliveries BEGIN"
	"  INSERT INTO delivery_counts VALUES (new.destination, new.status, 1)"
	"  ON CONFLICT (destination, status) DO UPDATE SET n = n + 1; END;"
	"CREATE TRIGGER deliveries_counted_moved AFTER UPDATE OF status ON deliveries"
	"  WHEN old.status <> new.status BEGIN"
	"  UPDATE delivery_counts SET n = n - 1 WHERE destination = old.destination"
	"  AND status = old.status;"
	"  INSERT INTO delivery_counts VALUES (new.destination, new.status, 1)"
	"  ON CONFLICT (destination, status) DO UPDATE SET n = n + 1; END;"
	"CREATE TRIGGER deliveries_counted_out AFTER DELETE ON deliveries BEGIN"
	"  UPDATE delivery_counts SET n = n - 1 WHERE destination = old.destination"
	"  AND status = old.status; END;",

	/* 13: an event's source, provider, kind, event type and subtype are its
	 * facet, one row of `facets` (a few tens in a deployment); one index on
	 * (facet, seq, received_at), made in 14, serves the listing filters on any
	 * of them (sqlite_read.c) where five indexes did, each a B-tree insert per
	 * event: a fifth of the writer's work (docs/benchmarks.md, thirteenth
	 * round). The session filter goes through the session's id
	 * (sqlite_read.c), and its key's index goes too; so does the index of
	 * every event's age, retention's rows walking events_pruned (14) instead.
	 * The stored events get their facet between 13 and 14 (fill_facets()). */
	"CREATE TABLE facets ("
	"  id INTEGER PRIMARY KEY,"
	"  source TEXT NOT NULL,"
	"  provider TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  event_type TEXT,"
	"  subtype TEXT);"
	"CREATE INDEX facets_tuple ON facets (source, provider, kind, event_type, subtype);"
	"INSERT INTO facets (source, provider, kind, event_type, subtype)"
	"  SELECT DISTINCT source, provider, kind, event_type, subtype FROM events;"
	"DROP INDEX events_source; DROP INDEX events_provider; DROP INDEX events_kind;"
	"DROP INDEX events_event_type; DROP INDEX events_subtype; DROP INDEX events_session_key;"
	"DROP INDEX events_source_age;"
	"ALTER TABLE events ADD COLUMN facet INTEGER;",

	/* 14: the facets' index, once every event has its facet: made after the
	 * rows were rewritten, it is built once rather than moved by each. received_at
	 * rides in it so that a union's walks check a time bound without reading
	 * each row (?source=tavus&since=1d at 1M: 2.3 -> 0.2 ms). */
	/* IF NOT EXISTS: step 13 made events_facet itself in a build of a day
	 * (hr_sqlite_check_indexes() then makes it this version's). */
	("CREATE INDEX IF NOT EXISTS events_facet ON events (facet, seq, received_at);"
	 /* Retention deletes the rows of events whose payload it pruned, oldest
	  * first (sqlite_prune.c): an event enters this index when its payload goes,
	  * not when it arrives, as it entered events_source_age. One step, two
	  * statements: the parentheses say the strings join on purpose. */
	 "CREATE INDEX IF NOT EXISTS events_pruned ON events (source, received_at) WHERE "
	 "pruned_at IS NOT NULL;"),

	/* 15: a room's status is its latest event's that says one, by the events'
	 * own times: Daily retries a webhook it could not deliver, and a retried
	 * meeting.ended of the meeting before set "ended" while the next one was
	 * under way. status_at is the time of the event that set it (rooms only;
	 * NULL: an event without a time of its own, or a row from before);
	 * status_by 1 when that event was Daily's, whose meetings then say the
	 * room's state (a bot's outcome, of a meeting before or of one bot, does
	 * not end or fail a room people are meeting in). */
	"ALTER TABLE sessions ADD COLUMN status_at INTEGER;"
	"ALTER TABLE sessions ADD COLUMN status_by INTEGER;",

	/* 16: what the writer must remember across a restart, by name: the
	 * [storage] max_size hold (sqlite_prune.c). Kept in memory only, a restart
	 * during a hold ended it, and the next pass deleted every event and
	 * rejection received during it (a review). */
	"CREATE TABLE store_state (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",

	/* 17: a refused body answered 200 (Daily's, hooks.c) was acknowledged: its
	 * sender will not send it again, so [storage] rejections_max leaves it
	 * (retain and max_size still apply). Rows kept before cannot be told apart
	 * and stay 0. The trim walks those counted by this index: through the
	 * table, it read every row's body to reach the column after it (155 ms a
	 * batch with 60,000 rows of 8 KB, 0.3 ms with it). */
	"ALTER TABLE rejections ADD COLUMN acknowledged INTEGER NOT NULL DEFAULT 0;"
	"CREATE INDEX rejections_unacknowledged ON rejections (seq) WHERE acknowledged = 0;",

	/* 18: a room's event_count and last_seen count the events on its timeline
	 * through a meeting, a recording or an instance alone (a Daily transcript
	 * names only its meeting), as they came (sqlite_rooms.c): the room each
	 * was last named with, and the room each such event was counted toward.
	 * Those stored before are counted now; those retention deleted cannot be.
	 * Daily's default instance links nothing (19; a review: an upgrade from 17
	 * counted every room's recording.started toward the room last named with it),
	 * nor does any instance but as the writer links it (HR_SQL_ROOM_INSTANCE_HELD:
	 * an app's own instance reused across rooms did the same). */
	"CREATE TABLE room_links ("
	"  kind INTEGER NOT NULL, value TEXT NOT NULL, room TEXT NOT NULL,"
	"  PRIMARY KEY (kind, value)) WITHOUT ROWID;"
	"ALTER TABLE events ADD COLUMN linked_room TEXT;"
	"INSERT OR IGNORE INTO room_links SELECT 1, meeting, room FROM events"
	"  WHERE room IS NOT NULL AND meeting IS NOT NULL ORDER BY seq DESC;"
	"INSERT OR IGNORE INTO room_links SELECT 2, recording, room FROM events"
	"  WHERE room IS NOT NULL AND recording IS NOT NULL ORDER BY seq DESC;"
	"INSERT OR IGNORE INTO room_links SELECT 3, recording_instance, room FROM events"
	"  WHERE room IS NOT NULL AND recording_instance IS NOT NULL AND recording IS NULL"
	"  AND recording_instance <> '" HR_DAILY_DEFAULT_INSTANCE "' ORDER BY seq DESC;"
	"UPDATE events SET linked_room = l.room FROM room_links l WHERE events.room IS NULL"
	"  AND l.kind = 1 AND l.value = events.meeting;"
	"UPDATE events SET linked_room = l.room FROM room_links l WHERE events.room IS NULL"
	"  AND events.linked_room IS NULL AND l.kind = 2 AND l.value = events.recording;"
	"UPDATE events SET linked_room = l.room FROM room_links l WHERE events.room IS NULL"
	"  AND events.linked_room IS NULL AND l.kind = 3 AND l.value = events.recording_instance"
	"  AND " STORED_INSTANCE_HELD ";"
	"UPDATE sessions SET event_count = event_count + c.n, first_seen = min(first_seen, c.lo),"
	"  last_seen = max(last_seen, c.hi) FROM (SELECT linked_room AS room, count(*) AS n,"
	"  min(received_at) AS lo, max(received_at) AS hi FROM events"
	"  WHERE linked_room IS NOT NULL GROUP BY linked_room) AS c"
	"  WHERE sessions.scope = 'room' AND sessions.key = c.room;",

	/* 19: Daily's default recording instance names no instance (hr/schema.h):
	 * rows stored before forget it and its room link goes, else every room
	 * that named it kept every room's recording.started on its timeline. The
	 * events counted toward a room through it stay counted. Each UPDATE has its
	 * index (events_recording_instance, events_room_recording_instances). */
	"UPDATE events SET recording_instance = NULL"
	"  WHERE recording_instance = '" HR_DAILY_DEFAULT_INSTANCE "' AND room IS NULL;"
	"UPDATE events SET recording_instance = NULL"
	"  WHERE recording_instance = '" HR_DAILY_DEFAULT_INSTANCE "' AND room IS NOT NULL;"
	"DELETE FROM room_links WHERE kind = 3 AND value = '" HR_DAILY_DEFAULT_INSTANCE "';",

	/* 20: rejections' seqs and sessions' ids are never reused (HR_SQL_NEXT_ID,
	 * sqlite_int.h): the highest each table held, in store_state, raised by
	 * every row inserted. Without AUTOINCREMENT, which only a rebuild of each
	 * table adds. Written to be run again (a test sets user_version back). */
	"INSERT INTO store_state (name, value) SELECT 'rejections_seq', seq FROM rejections"
	"  WHERE true ORDER BY seq DESC LIMIT 1" HIGH_WATER_RAISED ";"
	"INSERT INTO store_state (name, value) SELECT 'sessions_id', id FROM sessions"
	"  WHERE true ORDER BY id DESC LIMIT 1" HIGH_WATER_RAISED ";"
	"CREATE TRIGGER IF NOT EXISTS rejections_seq AFTER INSERT ON rejections BEGIN"
	"  INSERT INTO store_state (name, value) VALUES ('rejections_seq', NEW.seq)"
	"  " HIGH_WATER_RAISED "; END;"
	"CREATE TRIGGER IF NOT EXISTS sessions_id AFTER INSERT ON sessions BEGIN"
	"  INSERT INTO store_state (name, value) VALUES ('sessions_id', NEW.id)"
	"  " HIGH_WATER_RAISED "; END;",

	/* 21: a key past HR_KEY_MAX bytes names nothing (docs/events.md "Keys"),
	 * as PostgreSQL's indexes cannot hold it: rows stored before the bound get
	 * what a new event gets, or `hookrelay migrate` failed on them. Ordered
	 * deliveries lose the session in their order_key ("scope:key"; a scope has
	 * no ':'); the event its session (and scope) and every key past the bound,
	 * and the facet of the rest; the session, the query rows and the room links
	 * go. The event's `query`, payload and facts stay whole. One scan each of
	 * events, deliveries, sessions, event_query and room_links. */
	"UPDATE deliveries SET order_key = NULL WHERE order_key IS NOT NULL AND"
	"  length(CAST(order_key AS BLOB)) - instr(order_key, ':') > 1024;"
	"UPDATE events SET session_id = NULL, session_key = NULL, scope = NULL"
	"  WHERE session_id IN (" LONG_SESSIONS ");"
	"UPDATE events SET " SESSION_KEY_PAST ", " KEYS_BOUNDED " WHERE " LONG_KEYS ";"
	"INSERT INTO facets (source, provider, kind, event_type, subtype)"
	"  SELECT DISTINCT source, provider, kind, event_type, subtype FROM events"
	"  WHERE facet IN (" LONG_FACETS ") AND NOT EXISTS (SELECT 1 FROM facets g WHERE"
	"  " FACET_OF_EVENT ");"
	"UPDATE events SET facet = (SELECT g.id FROM facets g WHERE " FACET_OF_EVENT
	"  ORDER BY g.id LIMIT 1) WHERE facet IN (" LONG_FACETS ");"
	"DELETE FROM facets WHERE id IN (" LONG_FACETS ");"
	"DELETE FROM sessions WHERE id IN (" LONG_SESSIONS ");"
	"DELETE FROM event_query WHERE " LONG_QUERY_ROWS ";"
	"DELETE FROM room_links WHERE " LONG_ROOM_LINKS ";",
};

int
hr_store_sqlite_schema_version(void)
{
	return (int)HR_ARRAY_LEN(migrations);
}

static int
schema_version(void)
{
	return (int)HR_ARRAY_LEN(migrations);
}

static int
user_version(sqlite3 *db, int *out, struct hr_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc = HR_EDB;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*out = sqlite3_column_int(st, 0);
		rc = HR_OK;
	} else {
		hr_sqlite_error(db, err, "user_version");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Rows a transaction of fill_facets() rewrites: ~45 MB of WAL at 0.9 KB a row. */
#define FACET_FILL_ROWS 50000

/*
 * Between versions 13 and 14: every stored event given its facet, in
 * transactions of FACET_FILL_ROWS rows by seq, so that the WAL holds one of
 * them rather than the whole table rewritten (1 M events: 1.1 GB of WAL as one
 * transaction). A start cut short here starts again at version 13 and goes
 * over the rows, rewriting those still without a facet.
 */
static int
fill_facets(sqlite3 *db, struct hr_error *err)
{
	sqlite3_stmt *st = NULL;
	int64_t last = 0, filled = 0;
	int rc = HR_OK;

	if (sqlite3_prepare_v2(db, "SELECT max(seq) FROM events", -1, &st, NULL) != SQLITE_OK)
		return hr_sqlite_error(db, err, "facets");
	if (sqlite3_step(st) == SQLITE_ROW)
		last = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db,
	        "UPDATE events SET facet = (SELECT f.id FROM facets f WHERE"
	        " f.source = events.source AND f.provider = events.provider AND"
	        " f.kind = events.kind AND f.event_type IS events.event_type AND"
	        " f.subtype IS events.subtype) WHERE seq > ?1 AND seq <= ?2 AND facet IS NULL",
	        -1, &st, NULL) != SQLITE_OK)
		return hr_sqlite_error(db, err, "facets");
	for (int64_t from = 0; rc == HR_OK && from < last; from += FACET_FILL_ROWS) {
		sqlite3_bind_int64(st, 1, from);
		sqlite3_bind_int64(st, 2, from + FACET_FILL_ROWS);
		if ((rc = hr_sqlite_exec(db, "BEGIN IMMEDIATE", err)) != HR_OK)
			break;
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = hr_sqlite_error(db, err, "facets");
		filled += sqlite3_changes(db);
		sqlite3_reset(st);
		if (rc == HR_OK)
			rc = hr_sqlite_exec(db, "COMMIT", err);
		if (rc != HR_OK)
			(void)hr_sqlite_exec(db, "ROLLBACK", NULL);
	}
	sqlite3_finalize(st);
	if (rc == HR_OK && filled > 0)
		log_info("store: gave %lld stored events their facet", (long long)filled);
	return rc;
}

/* What runs before migration i (from version i), in transactions of its own:
 * work too large for the one transaction a migration is. */
static int (*const before_migration[])(sqlite3 *, struct hr_error *) = {
	[13] = fill_facets,
};

int
hr_sqlite_migrate(sqlite3 *db, bool *created_out, struct hr_error *err)
{
	char sql[64];
	int version, rc;
	bool created;

	*created_out = false;
	if ((rc = user_version(db, &version, err)) != HR_OK)
		return rc;
	created = version == 0;
	if (version > schema_version())
		return hr_error_set(err, HR_EINVAL, "user_version", /* no restart mends it */
		    "database schema %d is newer than this hookrelay (%d): run the newer hookrelay,"
		    " or restore the backup taken before the upgrade (operations.md)",
		    version, schema_version());
	/* A new database gives freed pages back to the file system (sqlite_prune.c).
	 * The header WAL mode already wrote says otherwise; an empty VACUUM rewrites it. */
	if (version == 0 &&
	    (rc = hr_sqlite_exec(db, "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;", err)) != HR_OK)
		return rc;
	for (; version < schema_version(); version++) {
		if (version < (int)HR_ARRAY_LEN(before_migration) && before_migration[version] &&
		    (rc = before_migration[version](db, err)) != HR_OK)
			return rc;
		if ((rc = hr_sqlite_exec(db, "BEGIN IMMEDIATE", err)) != HR_OK)
			return rc;
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", version + 1);
		if ((rc = hr_sqlite_exec(db, migrations[version], err)) != HR_OK ||
		    (rc = hr_sqlite_exec(db, sql, err)) != HR_OK ||
		    (rc = hr_sqlite_exec(db, "COMMIT", err)) != HR_OK) {
			(void)hr_sqlite_exec(db, "ROLLBACK", NULL);
			return rc;
		}
		/* A new database goes through every step: one line says so, not one a
		 * step, which read as an upgrade (operations.md, "Upgrade"). */
		if (!created)
			log_info("store: migrated schema to version %d", version + 1);
	}
	if (created)
		log_info("store: created the schema (version %d)", schema_version());
	*created_out = created;
	return HR_OK;
}

/* ---- the indexes of this version ---- */

/*
 * Indexes an earlier step made and a later one dropped: none of them is read by
 * this version, and each would cost every event a B-tree insert.
 */
static const char *const dropped_indexes[] = {
	"sessions_key",
	"sessions_last_seen",
	"events_received_at",
	"events_source",
	"events_provider",
	"events_kind",
	"events_event_type",
	"events_subtype",
	"events_session_key",
	"events_source_age",
};

/* `sql` with every run of blanks as one space: the same index, whatever the text's lines. */
static void
squeeze(const char *sql, char *out, size_t size)
{
	size_t n = 0;

	for (bool blank = false; *sql != '\0' && n + 1 < size; sql++) {
		if (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r') {
			blank = true;
			continue;
		}
		if (blank && n > 0 && n + 2 < size)
			out[n++] = ' ';
		blank = false;
		out[n++] = *sql;
	}
	out[n] = '\0';
}

/* The index `name`'s definition in `db`, squeezed; "" when there is none. */
static int
index_sql(sqlite3 *db, const char *name, char *out, size_t size, struct hr_error *err)
{
	sqlite3_stmt *st = NULL;
	int rc;

	out[0] = '\0';
	if (sqlite3_prepare_v2(db,
	        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1", -1, &st,
	        NULL) != SQLITE_OK)
		return hr_sqlite_error(db, err, "indexes");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		squeeze((const char *)sqlite3_column_text(st, 0), out, size);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? HR_OK : hr_sqlite_error(db, err, "indexes");
}

/* `db`'s index `name` made as `sql` (this version's), if it is not so already. */
static int
check_index(sqlite3 *db, const char *name, const char *sql, struct hr_error *err)
{
	char want[1024], have[1024], drop[128];
	int rc;

	squeeze(sql, want, sizeof(want));
	if ((rc = index_sql(db, name, have, sizeof(have), err)) != HR_OK || strcmp(have, want) == 0)
		return rc;
	snprintf(drop, sizeof(drop), "DROP INDEX IF EXISTS \"%s\"", name);
	if ((rc = hr_sqlite_exec(db, drop, err)) == HR_OK &&
	    (rc = hr_sqlite_exec(db, sql, err)) == HR_OK)
		log_warnx("store: index %s %s; it is now this version's", name,
		    have[0] == '\0' ? "was missing" : "was another version's");
	return rc;
}

/*
 * Two steps were once edited in place (13 and 14, within a day): a database
 * made in between was at a version whose indexes were not that version's. One
 * then refused to migrate (events_facet there already), one never pruned
 * (events_pruned missing: every pass failed, and /readyz said the database
 * took no writes). The version number cannot tell, so the indexes are held
 * against those of a new database, made in memory by the same steps. Not for
 * a database this process just created: it was made by those steps, and the
 * reference costs a start ~3,000 page faults in the sanitizer build, a third
 * of a test daemon's start and stop (2026-12-07).
 */
int
hr_sqlite_check_indexes(sqlite3 *db, struct hr_error *err)
{
	sqlite3 *ref = NULL;
	sqlite3_stmt *st = NULL;
	int rc = HR_OK;

	if (sqlite3_open(":memory:", &ref) != SQLITE_OK) {
		sqlite3_close(ref);
		return hr_error_set(err, HR_ENOMEM, "indexes", "cannot open a database in memory");
	}
	for (size_t i = 0; rc == HR_OK && i < HR_ARRAY_LEN(migrations); i++)
		rc = hr_sqlite_exec(ref, migrations[i], err);
	if (rc == HR_OK && (rc = hr_sqlite_exec(db, "BEGIN IMMEDIATE", err)) == HR_OK) {
		if (sqlite3_prepare_v2(ref,
		        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT "
		        "NULL",
		        -1, &st, NULL) != SQLITE_OK)
			rc = hr_sqlite_error(ref, err, "indexes");
		while (rc == HR_OK && sqlite3_step(st) == SQLITE_ROW)
			rc = check_index(db, (const char *)sqlite3_column_text(st, 0),
			    (const char *)sqlite3_column_text(st, 1), err);
		sqlite3_finalize(st);
		for (size_t i = 0; rc == HR_OK && i < HR_ARRAY_LEN(dropped_indexes); i++) {
			char have[16], drop[128];

			if ((rc = index_sql(db, dropped_indexes[i], have, sizeof(have), err)) !=
			        HR_OK ||
			    have[0] == '\0')
				continue;
			snprintf(drop, sizeof(drop), "DROP INDEX \"%s\"", dropped_indexes[i]);
			if ((rc = hr_sqlite_exec(db, drop, err)) == HR_OK)
				log_warnx("store: index %s is no longer this version's: dropped",
				    dropped_indexes[i]);
		}
		if (rc == HR_OK)
			rc = hr_sqlite_exec(db, "COMMIT", err);
		else
			(void)hr_sqlite_exec(db, "ROLLBACK", NULL);
	}
	sqlite3_close(ref);
	return rc;
}

/*
 * Leases name the forwarder that took a delivery. One daemon owns a database
 * (the instance lock), so at start every lease belongs to a process that is
 * gone, and all of them are expired at once.
 */
int
hr_sqlite_release_leases(sqlite3 *db, struct hr_error *err)
{
	return hr_sqlite_exec(
	    db, "UPDATE deliveries SET locked_until = NULL WHERE locked_until IS NOT NULL", err);
}
