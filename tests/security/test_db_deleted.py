"""Issue 11 item 6: a database deleted under a running daemon (docs/security.md, "### 6.").

After `rm` of the database files every POST used to get 200, and all of those events
were gone after a restart. The writer now checks after each commit that the file
(and its -wal) is still the one it opened, by device and inode: once it is not,
every write fails, ingest answers 503 until a restart, and /healthz and /readyz
say why.
"""

import json
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


class BlockedDirectoryTest(unittest.TestCase):
    """The identity check tells "deleted or replaced" (operations.md: "the file's device
    and inode, or its -wal's, changed, or its last name is gone") by stat() of the path.
    Any error of that stat() counts as gone, for good: a database directory whose mode
    is changed for a moment (a mistaken chmod, corrected at once) left the file, its
    name and its inode as they were, yet every webhook after it was answered 503 until a
    restart, and Tavus and PailFlow do not send them again. The daemon runs as a user
    that is not root (root passes any mode)."""

    def test_a_moment_without_search_permission_on_the_directory_is_not_a_database_gone(self):
        wrapper = []
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                self.skipTest("running as root without setpriv to run the daemon as another user")
            wrapper = [shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"]
        d = Daemon(wrapper=wrapper)
        try:
            if wrapper:
                for root, _, files in os.walk(d.dir):
                    os.chown(root, 65534, 65534)
                    for name in files:
                        os.chown(os.path.join(root, name), 65534, 65534)
            d.start()
            self.assertEqual(d.post(json.dumps({"event": "before"}))[0], 200)
            var = os.path.dirname(d.db)
            mode = os.stat(var).st_mode & 0o7777
            os.chmod(var, 0)
            try:
                d.post(json.dumps({"event": "while the directory is closed"}))
            finally:
                os.chmod(var, mode)
            # The same file, the same name, the same inode: nothing was deleted or replaced.
            answers = [d.post(json.dumps({"event": "after", "n": i}))[0] for i in range(3)]
            status, doc = d.get_json("/readyz")
            self.assertEqual(answers, [200, 200, 200],
                             "webhooks refused after the directory's mode was put back: %r" % (doc,))
            self.assertEqual(doc["checks"]["database"]["state"], "ok", doc)
        finally:
            d.stop()
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
