"""bench/drain: each backlog is stored in the shape its help describes (read back from a
store hookrelay made), and a small run drains every one of them into nginx."""

import os
import shutil
import sqlite3
import subprocess
import sys
import time
import unittest

import benchscript

ROOT = os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DRAIN = os.path.join(ROOT, "bench", "drain")


@unittest.skipIf(shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"),
                 "nginx is not installed")
class DrainTest(unittest.TestCase):
    N, K = 40, 10

    @classmethod
    def setUpClass(cls):
        cls.drain = benchscript.load("drain")

    def stored(self, name):
        """The deliveries of backlog `name` as stored: (order_key, attempts, due in s)."""
        b = self.drain.b
        d = b.tempdir()
        db = os.path.join(d, "hookrelay.db")
        b.Hookrelay(db=db).stop()  # the schema
        now = time.time()
        self.drain.store(db, None, self.drain.backlog_sql(
            self.drain.BACKLOGS[name], self.N, self.K, "x'7b7d'"))
        con = sqlite3.connect(db)
        try:
            return [(key, attempts, due / 1e6 - now) for key, attempts, due in con.execute(
                "SELECT order_key, attempts, next_attempt_at FROM deliveries ORDER BY id")]
        finally:
            con.close()

    def test_each_backlog_has_its_shape(self):
        rows = self.stored("unordered")
        self.assertEqual(len(rows), self.N)
        self.assertEqual({(r[0], r[1]) for r in rows}, {(None, 0)})
        self.assertTrue(all(r[2] < -100 for r in rows))  # all due long ago, in id order
        self.assertEqual([r[2] for r in rows], sorted(r[2] for r in rows))

        rows = self.stored("ordered")
        self.assertEqual(len({r[0] for r in rows}), self.K)
        self.assertTrue(all(r[1] == 0 and r[2] < -100 for r in rows))

        rows = self.stored("outage")  # each session's first is retried 2 s ahead
        firsts, seen = [], set()
        for key, attempts, due in rows:
            if key not in seen:
                seen.add(key)
                firsts.append((attempts, due))
        self.assertEqual(len(firsts), self.K)
        self.assertTrue(all(a == 1 and 1 < due <= 2.5 for a, due in firsts), firsts)
        self.assertEqual(sum(1 for r in rows if r[2] > 0), self.K)

        rows = self.stored("keyless")
        self.assertEqual(len(rows), self.N)
        self.assertEqual({r[0] for r in rows}, {None})

        rows = self.stored("waiting")  # K heads an hour ahead, one due behind each; N more
        self.assertEqual(len(rows), 2 * self.K + self.N)
        waiting = [r for r in rows if r[2] > 3000]
        self.assertEqual(len(waiting), self.K)
        waiting_keys = {r[0] for r in waiting}
        behind = [r for r in rows if r[0] in waiting_keys and r[2] < 0]
        self.assertEqual(len(behind), self.K)
        new = [r for r in rows if r[0] not in waiting_keys]
        self.assertEqual(len(new), self.N)
        self.assertEqual(len({r[0] for r in new}), self.N // 4)
        # The new sessions' keys sort among the waiting ones', not after them all.
        keys = sorted(waiting_keys | {r[0] for r in new})
        self.assertLess(keys.index(new[0][0]), len(keys) - self.N // 4)

    def test_a_small_run_drains_every_backlog(self):
        out = subprocess.run([sys.executable, DRAIN, "--runs", "1", "--rows", "400",
                              "--sessions", "20", "--timeout", "60"],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        table = {line.split()[0]: line.split() for line in out.stdout.splitlines()
                 if line.strip() and line.split()[0] in self.drain.BACKLOGS}
        self.assertEqual(set(table), set(self.drain.BACKLOGS), out.stdout)
        for name, cols in table.items():
            self.assertGreater(float(cols[1]), 0, name)
            self.assertEqual(cols[3], "0", "%s left deliveries undrained:\n%s"
                             % (name, out.stdout))
        self.assertEqual(table["unordered"][4], "1.00")
        self.assertNotIn("warning", out.stderr)

    @unittest.skipUnless(os.path.isdir("/usr/lib/postgresql"), "PostgreSQL is not installed")
    def test_postgresql_behind_a_slow_link_drains_through_the_relay(self):
        out = subprocess.run([sys.executable, DRAIN, "--runs", "1", "--rows", "100",
                              "--backlogs", "unordered", "--backend", "postgresql",
                              "--pg-latency", "5", "--timeout", "60"],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("postgresql 5 ms away", out.stdout)
        row = [line.split() for line in out.stdout.splitlines()
               if line.split()[:1] == ["unordered"]]
        self.assertEqual(len(row), 1, out.stdout)
        self.assertGreater(float(row[0][1]), 0, out.stdout)
        self.assertEqual(row[0][3], "0", out.stdout)
        self.assertNotIn("warning", out.stderr)


if __name__ == "__main__":
    unittest.main()
