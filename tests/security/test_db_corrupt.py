"""Issue 11 item 13: health of a corrupted database (docs/security.md, "### 13.").

With a damaged page (here the dedup table's root, which every ingest reads), every
POST answered 503 while /healthz and /readyz said ok. Once SQLite reports the file
malformed, both now answer 503 and say "corrupt", until a restart.
"""

import os
import sqlite3
import unittest

from hrtest import DaemonTest


class CorruptDatabaseTest(DaemonTest):

    def test_health_says_corrupt_when_ingest_cannot_store(self):
        for i in range(20):
            self.post_ok({"event": "before", "n": i})
        self.assertEqual(self.d.stop(), 0, self.d.log())
        db = sqlite3.connect(self.d.db)
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'dedup'").fetchone()[0]
        db.close()
        with open(self.d.db, "r+b") as f:
            f.seek((root - 1) * page_size)
            f.write(b"\xa5" * page_size)
        self.d.start()
        for i in range(3):
            self.assertProblem(self.d.post({"event": "after", "n": i}), 503, "storage-unavailable")
        status, doc = self.d.get_json("/healthz")
        self.assertEqual(status, 503, doc)
        self.assertEqual(doc["status"], "unavailable")
        self.assertEqual(doc["database"], "corrupt")
        self.assertIn("damaged", doc["database_detail"])
        status, doc = self.d.get_json("/readyz")
        self.assertEqual(status, 503, doc)
        self.assertIn("database", doc["failed"])
        self.assertEqual(doc["checks"]["database"]["state"], "corrupt")


    def test_health_says_corrupt_when_an_api_read_finds_the_file_damaged(self):
        # api.md: /healthz answers 503 "corrupt" once "SQLite reported it damaged";
        # operations.md: "once SQLite reports the file damaged (database disk image is
        # malformed), /healthz and /readyz answer 503". Only the writer's errors (and
        # the ping's read of sqlite_master) were looked at: a damaged page of old
        # events, which no ingest touches, made every read of it fail while both
        # said ok.
        ids = [self.post_ok({"event": "before", "n": i, "pad": "x" * 1500})["id"]
               for i in range(60)]
        self.assertEqual(self.d.stop(), 0, self.d.log())
        db = sqlite3.connect(self.d.db)
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        leaves = [r[0] for r in db.execute(
            "SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf'"
            " ORDER BY pageno")]
        db.close()
        self.assertGreater(len(leaves), 4, leaves)
        with open(self.d.db, "r+b") as f:  # the first leaf: the oldest events' rows
            f.seek((leaves[0] - 1) * page_size)
            f.write(b"\xa5" * page_size)
        self.d.start()
        status, _, body = self.d.request("GET", "/v1/events/" + ids[0])
        self.assertGreaterEqual(status, 500, body[:300])
        status, doc = self.d.get_json("/healthz")
        self.assertEqual(doc.get("database"), "corrupt", (status, doc))
        self.assertEqual(status, 503, doc)


if __name__ == "__main__":
    unittest.main(verbosity=2)
