"""hookrelay migrate --from sqlite:PATH --to postgresql:URL (docs/scaling.md, "Moving up").

A SQLite database with events, sessions, query rows, rejections (one accepted),
deliveries and attempts is copied into a new PostgreSQL database: the output names the
counts of both sides and the checksums, which match; a node on PostgreSQL then serves
the same answers as the SQLite node did. A copy that stopped half-way (the newest rows
missing on the PostgreSQL side) is resumed by running it again, and nothing is copied
twice. A running daemon's file is refused.
"""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

import hrtest  # noqa: E402
from hrtest import Daemon, dumps, payload_json, sanitizer_reports  # noqa: E402
from sink import Sink  # noqa: E402
from test_forward import dest_section, wait_until  # noqa: E402
from test_stream import SSE  # noqa: E402

SQLITE_CONFIG = """
[server]
listen = 127.0.0.1:0
[storage]
backend = sqlite
path = {{db}}
[source default]
provider = auto
{sections}
"""


ANSWERS = ("/v1/events?limit=100", "/v1/sessions?limit=100", "/v1/rejections?limit=100",
           "/v1/deliveries?limit=100")


@unittest.skipIf(hrtest.BACKEND != "postgresql", "needs HR_TEST_BACKEND=postgresql")
class Migrate(unittest.TestCase):

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="hrtest-migrate-")
        self.url = hrtest.pg_database(self.work)
        self.sink = Sink()
        self.daemons = []

    def tearDown(self):
        self.sink.stop()
        for d in self.daemons:
            rc = d.stop()
            self.assertIn(rc, (0, None), d.log())  # None: the test stopped it already
            self.assertEqual(sanitizer_reports(d.log()), [])
            d.cleanup()
        hrtest.pg_drop_database(self.work)
        shutil.rmtree(self.work, ignore_errors=True)

    def migrate(self, *args):
        return subprocess.run([hrtest.BIN, "migrate", *args], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)

    def answers(self, d):
        out = {}
        for path in ANSWERS:
            st, doc = d.get_json(path)
            self.assertEqual(st, 200, doc)
            out[path] = doc
        for ev in out["/v1/events?limit=100"]["events"]:
            st, doc = d.get_json("/v1/events/%s/deliveries" % ev["id"])
            self.assertEqual(st, 200, doc)
            out[ev["id"]] = doc
        return out

    def fill_sqlite(self):
        d = Daemon(SQLITE_CONFIG.format(sections=dest_section("sink", self.sink.url, allow_private=True)))
        self.daemons.append(d)
        d.start()
        base = payload_json("tavus.conversation.application.transcription_ready.json")
        for i in range(40):
            doc = dict(base, conversation_id="cmig%03d" % (i % 7), hr_test_n=i)
            st, _, body = d.request("POST", "/hooks/default?user_id=%d" % (i % 3), dumps(doc))
            self.assertEqual(st, 200, body)
        bad = dict(base, properties={})
        for _ in range(3):
            self.assertEqual(d.post(dumps(bad))[0], 422)
        rid = d.get_json("/v1/rejections")[1]["rejections"][0]["id"]
        st, _, body = d.request("POST", "/v1/rejections/%s/accept" % rid, b"")
        self.assertEqual(st, 200, body)
        wait_until(lambda: len(self.sink.received()) >= 41, 30, "deliveries")
        wait_until(lambda: d.get_json("/v1/destinations")[1]["destinations"][0]["pending"] == 0, 30,
                   "no delivery pending")
        # One as a Daily source keeps a body it answered 200 (schema 17): the flag
        # crosses over too (rejections_max leaves such a row).
        # And a room's link (schema 18) with an event counted toward it through it.
        with sqlite3.connect(d.db, timeout=10) as db:
            db.execute("UPDATE rejections SET acknowledged = 1 WHERE seq ="
                       " (SELECT min(seq) FROM rejections WHERE accepted_event IS NULL)")
            db.execute("INSERT INTO room_links VALUES (1, 'm-migrated', 'room-migrated')")
            db.execute("UPDATE events SET linked_room = 'room-migrated' WHERE seq = 5")
        db.close()
        before = self.answers(d)
        self.assertEqual(sum(r["acknowledged"] for r in
                             before["/v1/rejections?limit=100"]["rejections"]), 1)
        self.assertEqual(d.stop(), 0)
        return d, before

    def test_copy_verify_serve_resume(self):
        src, before = self.fill_sqlite()
        # A running daemon's file is refused.
        src.start()
        r = self.migrate("--from", "sqlite:" + src.db, "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("in use by a running hookrelay", r.stderr)
        self.assertEqual(src.stop(), 0)

        r = self.migrate("--from", "sqlite:" + src.db, "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rows = re.findall(r"verify: (\w+) +(\d+) rows in sqlite, +(\d+) in postgresql", r.stdout)
        self.assertEqual(len(rows), 9, r.stdout)
        for table, a, b in rows:
            self.assertEqual(a, b, table)
        got = {t: int(a) for t, a, _ in rows}
        self.assertEqual(got["room_links"], 1)
        self.assertEqual(hrtest.pg_sql("SELECT kind, value, room FROM room_links", self.url
                                       ).split(), ["1|m-migrated|room-migrated"])
        self.assertEqual(hrtest.pg_sql("SELECT seq FROM events WHERE linked_room IS NOT NULL",
                                       self.url).split(), ["5"])
        self.assertEqual(got["events"], 41)
        self.assertEqual(got["rejections"], 3)
        self.assertEqual(got["deliveries"], 41)
        self.assertGreaterEqual(got["attempts"], 41)
        self.assertEqual(got["sessions"], 8)  # 7, and the accepted rejection's
        sums = re.findall(r"verify: (\w+) +sha256 ([0-9a-f]{64}) \((sqlite|postgresql)\)", r.stdout)
        self.assertEqual(len(sums), 4, r.stdout)
        self.assertEqual(sums[0][1], sums[1][1])
        self.assertEqual(sums[2][1], sums[3][1])
        self.assertIn("every count and checksum matches", r.stdout)

        # A node on PostgreSQL answers as the SQLite node did; new rows get new ids.
        d = Daemon(hrtest.pg_config(self.url))
        self.daemons.append(d)
        d.start()
        self.assertEqual(self.answers(d), before)
        doc = dict(payload_json("tavus.conversation.application.transcription_ready.json"),
                   conversation_id="cafter")
        st, _, body = d.post(dumps(doc))
        self.assertEqual(st, 200, body)
        self.assertEqual(d.get_json("/v1/events?limit=1")[1]["events"][0]["id"], json.loads(body)["id"])
        self.assertEqual(d.stop(), 0)

        # Stopped half-way: the newest events (seq > 26, the node's own one with them)
        # and what hangs on them never arrived. A copy goes table by table in key order,
        # so what a stop leaves of each table is a prefix: attempts are numbered in the
        # order they were made, not by event (deliveries run side by side), so every
        # attempt from the first one of those events on goes, whatever its event.
        hrtest.pg_sql("DELETE FROM attempts WHERE id >= (SELECT min(a.id) FROM attempts a JOIN"
                      " deliveries d ON d.id = a.delivery_id WHERE d.event_seq > 26);"
                      " DELETE FROM deliveries WHERE event_seq > 26;"
                      " DELETE FROM event_query WHERE event_seq > 26; DELETE FROM events WHERE seq > 26",
                      self.url)
        r = self.migrate("--from", "sqlite:" + src.db, "--to", "postgresql:" + self.url)
        rows = {t: (int(a), int(b)) for t, a, b in re.findall(
            r"verify: (\w+) +(\d+) rows in sqlite, +(\d+) in postgresql", r.stdout)}
        copied = dict(re.findall(r"migrate: (\w+): (\d+) rows read and written", r.stdout))
        self.assertEqual(int(copied["events"]), 41 - 26 + 1, r.stdout)  # from the last one kept
        for table in ("events", "event_query", "deliveries", "attempts", "rejections"):
            self.assertEqual(rows[table][0], rows[table][1], table + ":\n" + r.stdout)
        sums = re.findall(r"verify: (\w+) +sha256 ([0-9a-f]{64})", r.stdout)
        self.assertEqual(sums[0][1], sums[1][1], r.stdout)
        self.assertEqual(sums[2][1], sums[3][1], r.stdout)
        # What the PostgreSQL node added on its own (a session, a dedup key) is not in
        # SQLite: said so, and the exit status says it.
        self.assertEqual(rows["sessions"], (8, 9), r.stdout)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("DIFFERENT", r.stdout)
        hrtest.pg_sql("DELETE FROM sessions WHERE key = 'cafter'; DELETE FROM dedup WHERE"
                      " event_id NOT IN (SELECT id FROM events)", self.url)
        r = self.migrate("--from", "sqlite:" + src.db, "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("DIFFERENT", r.stdout)

    def test_a_target_a_node_already_stored_in_is_refused(self):
        # A review started a node on the new database first (scaling.md: "whichever
        # node starts first" creates the schema), then migrated: the copy went on from
        # the node's largest keys, skipped SQLite's rows under them, dropped the rows
        # whose keys the node's held, and its verify could never match.
        src, _ = self.fill_sqlite()
        d = Daemon(hrtest.pg_config(self.url))
        self.daemons.append(d)
        d.start()
        doc = dict(payload_json("tavus.conversation.application.transcription_ready.json"),
                   conversation_id="cnode")
        self.assertEqual(d.post(dumps(doc))[0], 200)
        self.assertEqual(d.stop(), 0)
        r = self.migrate("--from", "sqlite:" + src.db, "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("migrate into a new, empty database", r.stderr)
        self.assertNotIn("rows read and written", r.stdout)
        self.assertEqual(hrtest.pg_sql("SELECT count(*) FROM events", self.url).strip(), "1")

    def test_new_events_are_numbered_past_every_one_sqlite_handed_out(self):
        # Retention took every event: only SQLite's high-water mark is left of the seqs
        # that stream clients (Last-Event-ID) and stored cursors hold.
        d = Daemon("[server]\nlisten = 127.0.0.1:0\n[storage]\nbackend = sqlite\npath = {db}\n"
                   "prune_interval = 100ms\n[source default]\nprovider = auto\nretain = 1s\n")
        self.daemons.append(d)
        d.start()
        base = payload_json("tavus.conversation.application.transcription_ready.json")
        for i in range(5):
            self.assertEqual(d.post(dumps(dict(base, conversation_id="cgone%d" % i)))[0], 200)
        wait_until(lambda: d.get_json("/v1/events")[1]["events"] == [], 30, "every event pruned")
        self.assertEqual(d.stop(), 0)
        with sqlite3.connect(d.db) as db:
            self.assertEqual(db.execute("SELECT count(*) FROM events").fetchone()[0], 0)
            handed_out = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()[0]
        self.assertEqual(handed_out, 5)
        # Deliveries of a stopped SQLite node carry no lease onto PostgreSQL (see below).
        r = self.migrate("--from", "sqlite:" + d.db, "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        pg = Daemon(hrtest.pg_config(self.url))
        self.daemons.append(pg)
        pg.start()
        stream = SSE(pg, headers={"Last-Event-ID": str(handed_out)})
        self.assertEqual(stream.status, 200)
        stream.opening()
        st, _, body = pg.post(dumps(dict(base, conversation_id="cnew")))
        self.assertEqual(st, 200, body)
        seq, _, doc = stream.read()
        stream.close()
        self.assertEqual(doc["id"], json.loads(body)["id"])
        self.assertGreater(seq, handed_out)
        self.assertEqual(pg.stop(), 0)
        # Run again (a resumed copy): the sequence never goes back.
        r = self.migrate("--from", "sqlite:" + d.db, "--to", "postgresql:" + self.url)
        self.assertIn("events: 0 rows read", r.stdout)
        self.assertEqual(hrtest.pg_sql("SELECT pg_sequence_last_value(pg_get_serial_sequence('events', 'seq')::regclass)", self.url).strip(),
                         str(seq))

    def test_new_rejections_and_sessions_are_numbered_past_every_one_sqlite_handed_out(self):
        # As events' seqs: SQLite keeps the highest rejection seq and session id it ever
        # handed out (store_state, schema 20), so a listing's cursor kept by a client
        # never has rows of later seqs behind it. Retention took every row here; the
        # PostgreSQL identities must go on past those marks, not restart under them.
        d = Daemon("[server]\nlisten = 127.0.0.1:0\n[storage]\nbackend = sqlite\npath = {db}\n"
                   "prune_interval = 100ms\n[source default]\nprovider = auto\nretain = 1s\n")
        self.daemons.append(d)
        d.start()
        base = payload_json("tavus.conversation.application.transcription_ready.json")
        for i in range(3):
            self.assertEqual(d.post(dumps(dict(base, conversation_id="cold%d" % i)))[0], 200)
            self.assertEqual(d.post(dumps(dict(base, conversation_id="cbad%d" % i,
                                               properties={})))[0], 422)
        wait_until(lambda: d.get_json("/v1/rejections")[1]["rejections"] == [] and
                   d.get_json("/v1/sessions")[1]["sessions"] == [], 30,
                   "every rejection and session pruned")
        self.assertEqual(d.stop(), 0)
        with sqlite3.connect(d.db) as db:
            marks = dict(db.execute("SELECT name, value FROM store_state WHERE name IN"
                                    " ('rejections_seq', 'sessions_id')").fetchall())
        db.close()
        self.assertEqual(marks, {"rejections_seq": 3, "sessions_id": 3})
        r = self.migrate("--from", "sqlite:" + d.db, "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        pg = Daemon(hrtest.pg_config(self.url))
        self.daemons.append(pg)
        pg.start()
        self.assertEqual(pg.post(dumps(dict(base, conversation_id="cnew")))[0], 200)
        self.assertEqual(pg.post(dumps(dict(base, conversation_id="cnewbad", properties={})))[0],
                         422)
        # A client that paged the listings on SQLite holds cursor "3" (its last page ended
        # there): what comes after the move is newer, never behind that cursor.
        behind = {"rejections": [r["id"] for r in
                                 pg.get_json("/v1/rejections?cursor=3")[1]["rejections"]],
                  "sessions": [r["id"] for r in pg.get_json("/v1/sessions?cursor=3")[1]["sessions"]],
                  "new rejection's seq": int(hrtest.pg_sql("SELECT max(seq) FROM rejections",
                                                            self.url)),
                  "new session's id": int(hrtest.pg_sql("SELECT max(id) FROM sessions", self.url))}
        self.assertEqual(behind, {"rejections": [], "sessions": [],
                                  "new rejection's seq": max(4, behind["new rejection's seq"]),
                                  "new session's id": max(4, behind["new session's id"])})

    def test_a_sqlite_file_holding_keys_past_1024_bytes_is_copied(self):
        # events.md "Keys": a key past 1,024 bytes names nothing, because PostgreSQL's
        # btree indexes refuse an entry past 2704 bytes. A SQLite file written before that
        # bound (SQLite kept any length) holds such keys in sessions, events and
        # event_query; scaling.md's "Moving up" copies it to PostgreSQL, which must not
        # fail on them ("index row size ... exceeds btree version 4 maximum 2704").
        import random
        import string
        d = Daemon(SQLITE_CONFIG.format(sections=""))
        self.daemons.append(d)
        d.start()
        base = payload_json("tavus.conversation.application.transcription_ready.json")
        st, _, body = d.request("POST", "/hooks/default?state=s1",
                                dumps(dict(base, conversation_id="clong")))
        self.assertEqual(st, 200, body)
        self.assertEqual(d.stop(), 0)
        rnd = random.Random(2704)
        long_key = "c" + "".join(rnd.choice(string.ascii_letters + string.digits)
                                 for _ in range(3000))
        with sqlite3.connect(d.db) as db:  # as an older hookrelay stored it
            db.execute("UPDATE sessions SET key = ? WHERE key = 'clong'", (long_key,))
            db.execute("UPDATE events SET session_key = ? WHERE session_key = 'clong'",
                       (long_key,))
            # ... at its schema (20): migrate copies a file of this hookrelay's schema,
            # which its start gives it (scaling.md, "Moving the history").
            db.execute("PRAGMA user_version = 20")
        db.close()
        d.start()
        self.assertEqual(d.stop(), 0)
        r = self.migrate("--from", "sqlite:" + d.db, "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr)[-2000:])
        self.assertEqual(hrtest.pg_sql("SELECT count(*) FROM events", self.url).strip(), "1")
        # The key named nothing, as it would in a new event (events.md "Keys").
        self.assertEqual(hrtest.pg_sql("SELECT count(*) FROM events WHERE session_key IS NULL"
                                       " AND session_id IS NULL", self.url).strip(), "1")
        self.assertEqual(hrtest.pg_sql("SELECT count(*) FROM sessions", self.url).strip(), "0")

    def test_a_lease_in_the_sqlite_file_is_not_carried_over(self):
        src, _ = self.fill_sqlite()
        with sqlite3.connect(src.db) as db:
            db.execute("UPDATE deliveries SET locked_until = 9999999999999999")
        r = self.migrate("--from", "sqlite:" + src.db, "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(hrtest.pg_sql("SELECT count(*) FROM deliveries WHERE locked_until IS NOT NULL",
                                       self.url).strip(), "0")

    def test_usage(self):
        r = self.migrate("--from", "/x.db", "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 64)
        r = self.migrate("--from", "sqlite:/nonexistent.db", "--to", "postgresql:" + self.url)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent.db", r.stderr)


if __name__ == "__main__":
    unittest.main()
