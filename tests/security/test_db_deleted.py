"""Issue 11 item 6: a database deleted under a running daemon (docs/security.md, "### 6.").

After `rm` of the database files every POST used to get 200, and all of those events
were gone after a restart. The writer now checks after each commit that the file
(and its -wal) is still the one it opened, by device and inode: once it is not,
every write fails, ingest answers 503 until a restart, and /healthz and /readyz
say why.
"""

import os
import shutil
import sqlite3
import unittest

from hrtest import DaemonTest, Daemon


class DeletedDatabaseTest(DaemonTest):

    def rejected_total(self):
        status, _, text = self.d.request("GET", "/metrics")
        self.assertEqual(status, 200)
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
                   if line.startswith("hookrelay_rejected_total{"))

    def assert_refused_until_restart(self):
        for i in range(5):
            self.assertProblem(self.d.post({"event": "after", "n": i}), 503, "storage-unavailable")
        # A body that would be refused (400, 422) cannot be kept either: not the 4xx, which
        # says it was kept (for GET /v1/rejections), but the same 503; and not counted.
        rejected = self.rejected_total()
        self.assertProblem(self.d.post(b"{"), 503, "storage-unavailable")
        self.assertProblem(self.d.post({"event": "session_complete", "room_name": 7}), 503,
                           "storage-unavailable")
        self.assertEqual(self.rejected_total(), rejected)
        status, doc = self.d.get_json("/healthz")
        self.assertEqual(status, 503, doc)
        self.assertEqual(doc["database"], "gone")
        self.assertIn("deleted or replaced", doc["database_detail"])
        self.assertNotIn(self.d.db, doc["database_detail"])  # /healthz answers anyone
        status, doc = self.d.get_json("/readyz")
        self.assertEqual(status, 503, doc)
        self.assertIn("database", doc["failed"])
        self.assertEqual(doc["checks"]["database"]["state"], "gone")
        self.assertIn("was deleted or replaced", self.d.log())  # written before the answer
        # The disk is still there: its check asks the directory, not the file that went
        # (a review found "disk" failed, hookrelay_disk_free_bytes gone and a warning
        # logged per probe).
        self.assertNotIn("disk", doc["failed"])
        for _ in range(3):
            self.d.get_json("/readyz")
        self.assertNotIn("statvfs", self.d.log())
        status, _, text = self.d.request("GET", "/metrics")
        self.assertIn("hookrelay_disk_free_bytes ", text.decode())

    def test_rm_of_the_database_files_answers_503_until_a_restart(self):
        before = self.post_ok({"event": "before"})["id"]
        # Counted while the store works (the check below is not of a metric stuck at 0).
        self.assertProblem(self.d.post(b"{"), 400, "malformed-json")
        self.assertEqual(self.rejected_total(), 1)
        for suffix in ("", "-wal", "-shm"):
            os.unlink(self.d.db + suffix)
        self.assert_refused_until_restart()
        # Nothing acknowledged is missing after a restart (the database is new).
        self.assertEqual(self.d.stop(), 0, self.d.log())
        self.d.start()
        self.assertEqual(self.d.request("GET", "/v1/events/" + before)[0], 404)
        self.assertEqual(self.get_ok("/v1/events")["events"], [])
        self.assertHealthy()

    def test_a_file_moved_over_the_database_answers_503(self):
        self.post_ok({"event": "before"})
        other = os.path.join(self.d.dir, "other.db")
        sqlite3.connect(other).close()
        os.replace(other, self.d.db)
        self.assert_refused_until_restart()

    def test_rm_of_the_wal_alone_answers_503(self):
        self.post_ok({"event": "before"})
        os.unlink(self.d.db + "-wal")
        self.assert_refused_until_restart()


if __name__ == "__main__":
    unittest.main(verbosity=2)
