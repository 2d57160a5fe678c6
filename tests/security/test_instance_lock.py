"""Issue 11 item 12: a second daemon on the same database (docs/security.md, "### 12.").

The instance lock used to be a `.lock` file next to the path given: a symlink or a
hard link to the database let a second daemon run on it (and the hard link corrupted
it). The lock is now on the database file itself, so any path to it meets the lock.
"""

import os
import sqlite3
import subprocess
import unittest

import hrtest
from hrtest import DaemonTest, DEFAULT_CONFIG

EX_CONFIG = 78


class InstanceLockTest(DaemonTest):

    def second_daemon(self, db):
        conf = os.path.join(self.d.dir, "second.conf")
        with open(conf, "w") as f:
            f.write(DEFAULT_CONFIG.format(db=db))
        return subprocess.run([hrtest.BIN, "-c", conf], capture_output=True, text=True, timeout=60)

    def test_every_path_to_the_database_meets_the_lock(self):
        self.post_ok({"event": "first"})
        links = {
            "symlink": lambda p: os.symlink(self.d.db, p),
            "hard link": lambda p: os.link(self.d.db, p),
            "same path": None,
        }
        for name, make in links.items():
            with self.subTest(name):
                path = self.d.db
                if make is not None:
                    path = os.path.join(self.d.dir, name.replace(" ", "_") + ".db")
                    make(path)
                r = self.second_daemon(path)
                self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
                self.assertIn("in use by another hookrelay", r.stderr)
                self.assertIn(path, r.stderr)
        # The first one goes on, undisturbed.
        self.post_ok({"event": "second"})
        self.assertHealthy()
        self.assertEqual(len(self.get_ok("/v1/events")["events"]), 2)


class NewerSchemaTest(DaemonTest):
    """A binary rolled back over a database a newer hookrelay migrated exits 78, as for
    a locked database: the unit's RestartPreventExitStatus=64 78 then stops, where a 1
    made systemd restart it into the same refusal until its start limit."""

    def test_a_database_from_a_newer_hookrelay_exits_78(self):
        db = os.path.join(self.d.dir, "newer.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA user_version = 1000")
        con.close()
        conf = os.path.join(self.d.dir, "rollback.conf")
        with open(conf, "w") as f:
            f.write(DEFAULT_CONFIG.format(db=db))
        r = subprocess.run([hrtest.BIN, "-c", conf], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        self.assertIn("is newer than this hookrelay", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
