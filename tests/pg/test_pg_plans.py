"""PostgreSQL: a room's page and timeline read a room's events through indexes.

`GET /v1/events?room=NAME` on PostgreSQL once walked the whole events table newest
first (a backward scan of events_pkey, filtering every row): its meetings and
recordings were `IN (SELECT ...)` inside an OR, which the planner cannot turn into
index scans. At 1 M events a room of one event took 1,000 ms. A room's timeline
(`GET /v1/sessions/room:NAME`, its newest 1,000 events by their own time) read and
sorted every event of the room, and those of its meetings again (233 ms for a room of
55k events). A cluster of its own gets 20,000 events of four rooms straight in SQL, and
one event of a small room; the tests assert, from PostgreSQL's own counters, how many
index entries each request read, and what it found. A subtype filter walked the table
too when few events had it.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
sys.path.insert(0, os.path.dirname(__file__))

import hrtest  # noqa: E402
from hrtest import DaemonTest, pg_database, pg_sql  # noqa: E402

FILL = """
INSERT INTO events (id, received_at, source, provider, kind, headers, body, scope,
                    session_key, room, meeting)
SELECT 'evt_fill' || g, 1700000000000000 + g, 'default', 'daily', 'daily.participant.joined',
       '{}', '\\x7b7d', 'room', 'busy-' || (g % 4), 'busy-' || (g % 4), 'mtg-' || (g % 400)
FROM generate_series(1, 20000) AS g;
INSERT INTO sessions (scope, key, provider, status, first_seen, last_seen, event_count)
VALUES ('room', 'busy-3', 'daily', 1, 1700000000000000, 1700000000020000, 5000);
INSERT INTO events (id, received_at, source, provider, kind, headers, body, scope,
                    session_key, room)
VALUES ('evt_small', 1600000000000000, 'default', 'daily', 'daily.participant.joined', '{}',
        '\\x7b7d', 'room', 'small-room', 'small-room');
ANALYZE events;
"""


@unittest.skipIf(hrtest.BACKEND != "postgresql", "needs HR_TEST_BACKEND=postgresql")
class RoomFilterPlan(DaemonTest):
    """The daemon on a database of its own on the run's cluster, so that the index
    counters are its own (pg_stat_user_indexes is per database)."""

    def setUp(self):
        super().setUp()
        self.url = pg_database(self.d.dir)
        pg_sql(FILL, self.url)

    def counters(self):
        """(entries of events_pkey read, scans of any index of events, entries of any)."""
        row = pg_sql("SELECT sum(idx_tup_read) FILTER (WHERE indexrelname = 'events_pkey'),"
                     " sum(idx_scan), sum(idx_tup_read) FROM pg_stat_user_indexes"
                     " WHERE relname = 'events'", self.url)
        return tuple(int(x) for x in row.strip().split("|"))

    def read(self, path):
        """GET `path` (200); (its document, (events_pkey entries read, index entries
        read)) once the request's index scans show in the counters."""
        before = self.counters()
        status, body = self.d.get_json(path)
        self.assertEqual(status, 200, body)
        # A backend's counters reach pg_stat_* at the end of its next transaction a
        # second later, or about ten seconds after it goes idle: a request that reads
        # no events (a session that does not exist) gives the reader a transaction.
        deadline, after = time.monotonic() + 15, before
        while after[1] == before[1] and time.monotonic() < deadline:
            time.sleep(0.4)
            self.d.get_json("/v1/sessions/none:none")
            after = self.counters()
        self.assertNotEqual(after[1], before[1], "no index scan counted")
        return body, (after[0] - before[0], after[2] - before[2])

    def test_a_small_rooms_page_reads_no_entry_of_the_primary_key(self):
        body, (pkey, _) = self.read("/v1/events?room=small-room&limit=50")
        self.assertEqual([e["id"] for e in body["events"]], ["evt_small"])
        # Before the fix: about 20,000 (every event, newest first, filtered).
        self.assertLess(pkey, 100, "the room page walked events_pkey")

    def test_a_subtype_no_event_has_reads_no_entry_of_the_primary_key(self):
        body, (pkey, _) = self.read("/v1/events?subtype=ended&limit=50")
        self.assertEqual(body["events"], [])
        # Before schema 6: every event, newest first, filtered.
        self.assertLess(pkey, 100, "the subtype filter walked events_pkey")

    def test_a_big_rooms_timeline_reads_its_newest_events_not_the_room(self):
        body, (_, entries) = self.read("/v1/sessions/room:busy-3")
        # busy-3: events 3, 7, ..., 19999 in 100 meetings; the newest 1,000, oldest first
        self.assertEqual([e["id"] for e in body["events"]],
                         ["evt_fill%d" % g for g in range(3, 20000, 4)][-1000:])
        self.assertTrue(body["events_truncated"])
        # Before: the room's 5,000 entries of events_room, sorted, and 5,000 of
        # events_room_meetings and of events_meeting for its meetings' events. Now
        # 1,001 of events_room_time and a probe per meeting.
        self.assertLess(entries, 1500, "the timeline read the whole room")


if __name__ == "__main__":
    unittest.main()
