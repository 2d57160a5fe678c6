"""Forwarding across a stop: after kill -9 with hundreds of deliveries pending and
attempts in flight, and after SIGTERM with attempts in flight, a restart on the
same directory delivers every acked event, and the attempt log holds every
attempt the daemon finished (attempts = recorded rows, numbered 1..n)."""

import json
import signal
import threading
import time
import unittest

from hrtest import dumps, payload_json
from test_forward import ForwardBase, cpu_seconds, dest_section, wait_until

TRANSCRIPTION_READY = "tavus.conversation.application.transcription_ready.json"


class RestartTest(ForwardBase):

    def post_many(self, d, n, threads=8):
        """Post n distinct events from `threads` keep-alive connections; their ids."""
        acked, errors, lock = [], [], threading.Lock()
        base = payload_json(TRANSCRIPTION_READY)

        def worker(t):
            conn = d.conn(timeout=30)
            try:
                for i in range(t, n, threads):
                    doc = dict(base, conversation_id="c%05d%s" % (i, "x" * 10))
                    status, _, data = d.post(dumps(doc), conn=conn)
                    with lock:
                        if status == 200:
                            acked.append(json.loads(data)["id"])
                        else:
                            errors.append((status, data[:200]))
            finally:
                conn.close()
        ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(acked), n)
        return acked

    def wait_drained(self, d, name, n, timeout):
        return wait_until(
            lambda: (lambda x: x if x["pending"] == 0 and x["succeeded"] == n else None)(
                self.destination(d, name)), timeout, "%d deliveries to %s to succeed" % (n, name),
            0.1)

    def logs(self, d, ids):
        """{event id: its one delivery}, through the API."""
        out = {}
        conn = d.conn()
        try:
            for eid in ids:
                status, _, data = d.request("GET", "/v1/events/%s/deliveries" % eid, conn=conn)
                self.assertEqual(status, 200)
                dls = json.loads(data)["deliveries"]
                self.assertEqual(len(dls), 1, dls)
                out[eid] = dls[0]
        finally:
            conn.close()
        return out

    def test_kill_9_with_500_pending_then_restart_delivers_all_and_logs_every_attempt(self):
        n, in_flight = 500, 16
        s = self.sink("fail")
        section = dest_section("down", s.url + "/down", allow_private=True,
                               max_in_flight=in_flight, breaker_failures=1000, jitter=0,
                               retry_schedule=", ".join(["1s"] * 20))
        d = self.daemon(section)
        ids = self.post_many(d, n)
        s.wait_count(300, timeout=30)  # first attempts under way (and failing)
        self.assertEqual(d.kill9(), -9)
        # Requests the dead node sent may still sit in the sink's socket buffers, read
        # after the kill: wait until nothing more arrives (bounded), so none of them is
        # answered "ok" and counted as a delivery of the restarted node.
        settle_until, last = time.monotonic() + 5.0, -1
        while time.monotonic() < settle_until and len(s.received()) != last:
            last = len(s.received())
            time.sleep(0.3)
        before = s.received()
        s.set("ok")

        d2 = self.daemon(section, workdir=d.dir)
        self.wait_drained(d2, "down", n, timeout=60)
        after = s.received()[len(before):]
        self.assertTrue(all(r.answered == "fail" for r in before))
        self.assertTrue(all(r.answered == "ok" for r in after))

        # At least once: every acked event reached the sink with a 200 (here exactly once).
        oks = [r.headers["webhook-id"] for r in after]
        self.assertEqual(sorted(oks), sorted(ids))

        # Every attempt finished before the kill is in the log; those the kill cut
        # short (at most max_in_flight) went again after the restart.
        logs = self.logs(d2, ids)
        fails_seen = {}
        for r in before:
            fails_seen[r.headers["webhook-id"]] = fails_seen.get(r.headers["webhook-id"], 0) + 1
        recorded_fails, cut = 0, 0
        for eid, dl in logs.items():
            self.assertEqual(dl["status"], "succeeded", dl)
            self.assertLogConsistent(dl)
            log = dl["attempts_log"]
            self.assertEqual(log[-1]["http_status"], 200, dl)
            self.assertTrue(all(a["http_status"] == 500 for a in log[:-1]), dl)
            seen, rec = fails_seen.get(eid, 0), len(log) - 1
            self.assertIn(seen - rec, (0, 1), "%s: %d failures at the sink, %d recorded"
                          % (eid, seen, rec))
            recorded_fails += rec
            cut += seen - rec
        self.assertEqual(recorded_fails + cut, len(before))
        self.assertLessEqual(cut, in_flight)
        self.assertGreaterEqual(recorded_fails, 300 - in_flight)

    def test_sigterm_with_attempts_in_flight_exits_0_records_them_and_loses_nothing(self):
        n = 10
        s = self.sink("hang")
        section = dest_section("slow", s.url + "/slow", allow_private=True, timeout="1s",
                               max_in_flight=4, breaker_failures=1000, jitter=0,
                               retry_schedule=", ".join(["0.5s"] * 10))
        d = self.daemon(section)
        ids = self.post_many(d, n, threads=2)
        s.wait_count(4)  # four attempts hang
        cpu = cpu_seconds(d)
        time.sleep(0.4)  # waiting for answers is not work: the forwarder sleeps
        self.assertLess(cpu_seconds(d) - cpu, 0.15)
        started = time.monotonic()
        self.stop_clean(d)
        # The stop waited for the attempts under way (they time out after 1 s) and
        # recorded them; it did not need the 5 s grace.
        self.assertLess(time.monotonic() - started, 4.5)
        before = s.received()
        s.set("ok")

        d2 = self.daemon(section, workdir=d.dir)
        self.wait_drained(d2, "slow", n, timeout=30)
        logs = self.logs(d2, ids)
        for eid, dl in logs.items():
            self.assertLogConsistent(dl)
            hung = sum(1 for r in before if r.headers["webhook-id"] == eid)
            log = dl["attempts_log"]
            self.assertEqual(len(log), hung + 1, "every attempt before the stop is recorded")
            for a in log[:-1]:
                self.assertIsNone(a["http_status"])
                self.assertIn("timed out", a["error"])
            self.assertEqual(log[-1]["http_status"], 200)
        self.assertGreaterEqual(sum(len(x["attempts_log"]) - 1 for x in logs.values()), 4)
        oks = sorted(r.headers["webhook-id"] for r in s.received()[len(before):])
        self.assertEqual(oks, sorted(ids))

    def test_sigterm_past_the_grace_period_leaves_the_attempt_pending_for_the_restart(self):
        s = self.sink("hang")
        section = dest_section("stuck", s.url + "/stuck", allow_private=True, timeout="60s",
                               jitter=0, retry_schedule="0.2s")
        d = self.daemon(section)
        eid = self.post(d, payload_json(TRANSCRIPTION_READY))
        s.wait_count(1)
        started = time.monotonic()
        # The grace period is a wait, not a spin: the forwarder once polled curl with
        # no timeout through all of it (100 % of a core for 5 s).
        cpu_before = cpu_seconds(d)
        d.proc.send_signal(signal.SIGTERM)
        time.sleep(2.5)
        spent = cpu_seconds(d) - cpu_before
        self.assertLess(spent, 0.5, "%.2f s of CPU in 2.5 s of the grace period" % spent)
        self.stop_clean(d)
        took = time.monotonic() - started
        self.assertGreaterEqual(took, 4.5, "in-flight attempts get a grace period")
        self.assertLess(took, 15)
        s.set("ok")
        d2 = self.daemon(section, workdir=d.dir)
        dl = self.wait_status(d2, eid, "stuck", "succeeded")
        # The abandoned attempt left no row, so the next one reuses its number.
        self.assertEqual(dl["attempts"], 1)
        self.assertLogConsistent(dl)
        self.assertEqual([r.headers["webhook-id"] for r in s.wait_count(2)], [eid, eid])


if __name__ == "__main__":
    unittest.main()
