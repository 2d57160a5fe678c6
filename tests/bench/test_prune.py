"""bench/prune: its store holds the pending backlog its help describes, stalls are
counted as it says, and a small run measures both servers."""

import os
import sqlite3
import subprocess
import sys
import unittest

import benchscript

ROOT = os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


class PruneTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.prune = benchscript.load("prune")

    def test_the_store_has_a_pending_delivery_for_each_event(self):
        path = os.path.join(self.prune.b.tempdir(), "seed.db")
        self.prune.seed(path, 300, 0)
        self.assertEqual(self.shape(path), (300, 300, 300))

    def test_sources_spread_the_backlog_evenly(self):
        path = os.path.join(self.prune.b.tempdir(), "seed.db")
        self.prune.seed(path, 300, 7)
        self.assertEqual(self.shape(path), (300, 300, 300))
        con = sqlite3.connect(path)
        try:
            per = con.execute("SELECT source, count(*) FROM events GROUP BY source").fetchall()
        finally:
            con.close()
        self.assertEqual(len(per), 7, per)
        self.assertTrue(all(n in (42, 43) for _, n in per), per)

    def test_no_pending_leaves_the_events_without_deliveries(self):
        path = os.path.join(self.prune.b.tempdir(), "seed.db")
        self.prune.seed(path, 300, 7, False)
        self.assertEqual(self.shape(path), (300, 0, 0))

    def shape(self, path):
        """Events, their pending deliveries to `gone`, and events with a delivery."""
        con = sqlite3.connect(path)
        try:
            return con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM"
                               " deliveries WHERE status = 0 AND destination = 'gone'),"
                               " (SELECT count(DISTINCT event_seq) FROM deliveries)").fetchone()
        finally:
            con.close()

    def test_stalls_near_each_other_count_once(self):
        # (latency s, start s): two slow answers 50 ms apart are one stall, one 0.5 s
        # later another; a slow one before `after` and fast ones are not counted.
        got = [(0.2, 1.0), (0.3, 2.0), (0.1, 2.05), (0.001, 2.1), (0.05, 2.5), (0.039, 3.0)]
        self.assertEqual(self.prune.stalls(got, 1.5), 2)
        self.assertEqual(self.prune.stalls(got, 0), 3)

    def test_a_small_run_measures_both_servers(self):
        out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "prune"), "--runs",
                              "1", "--events", "2000", "--seconds", "1.5", "--interval", "0.5"],
                             capture_output=True, text=True, timeout=240)
        self.assertEqual(out.returncode, 0, out.stderr[-2000:])
        rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()
                if line.startswith(("capped", "uncapped"))}
        self.assertEqual(set(rows), {"capped", "uncapped"}, out.stdout)
        for name, cells in rows.items():
            self.assertGreater(int(cells[1]), 50, out.stdout)  # answers
            self.assertGreater(float(cells[5]), 0, out.stdout)  # max ms
        self.assertEqual(rows["uncapped"][7], "1.0", out.stdout)


if __name__ == "__main__":
    unittest.main()
