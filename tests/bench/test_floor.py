"""bench/hr_floor.c, the parts of bench/floor measured alone: every phase runs, the store
phase stores each write once under its own id in one session (group-committed), the bare
SQLite phase writes its rows, and a body that does not validate is refused."""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

BIN = os.environ.get("HR_FLOOR_BIN", "build/hr_floor")
PAYLOAD = os.path.join(os.environ.get("HR_PAYLOADS_DIR", "tests/payloads"),
                       "tavus.conversation.application.transcription_ready.json")
EVENTS, WARMUP = 300, 20


class FloorTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hrtest-floor-")
        self.db = os.path.join(self.dir, "floor.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_floor(self, body, *extra):
        return subprocess.run([BIN, "--body", body, "--db", self.db, "--events", str(EVENTS),
                               "--warmup", str(WARMUP), *extra],
                              capture_output=True, text=True, timeout=120)

    def test_every_phase_runs_and_the_store_keeps_every_write(self):
        p = self.run_floor(PAYLOAD, "--in-flight", "16")
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual((out["events"], out["in_flight"], out["body_bytes"]),
                         (EVENTS, 16, os.path.getsize(PAYLOAD)))
        for phase in ("jansson", "event", "sqlite", "store"):
            self.assertGreater(out[f"{phase}_cpu_ms_per_1k"], 0, phase)
        self.assertGreater(out["store_mean_batch"], 1)  # writes waited together

        with open(PAYLOAD, "rb") as f:
            body = f.read()
        db = sqlite3.connect(self.db)
        try:
            rows = db.execute("SELECT id, session_id, body FROM events").fetchall()
            sessions = db.execute("SELECT id, event_count FROM sessions").fetchall()
        finally:
            db.close()
        self.assertEqual(len(rows), EVENTS + WARMUP)
        self.assertEqual(len({r[0] for r in rows}), len(rows))  # one id each
        self.assertTrue(all(r[2] == body for r in rows))
        # One conversation: every event in its one session, which counted them all.
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0][1], EVENTS + WARMUP)
        self.assertEqual({r[1] for r in rows}, {sessions[0][0]})

        raw = sqlite3.connect(self.db + "-raw")
        try:
            n, = raw.execute("SELECT count(*) FROM e").fetchone()
        finally:
            raw.close()
        self.assertEqual(n, EVENTS + WARMUP)

    def test_a_body_that_does_not_validate_is_refused(self):
        bad = os.path.join(self.dir, "bad.json")
        with open(bad, "w") as f:
            f.write('{"event_type": ')
        p = self.run_floor(bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not parse and validate", p.stderr)
        self.assertEqual(p.stdout, "")


if __name__ == "__main__":
    unittest.main()
