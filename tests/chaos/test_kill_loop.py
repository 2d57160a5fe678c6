"""Chaos: kill -9 at random moments under load, many times over, with forwarding on.

ROUNDS times: start hookrelay on the same directory (a sink as the destination,
a short retry schedule), drive load from 4 client threads that record every id
answered 200, and kill -9 after a random 0.2-1.5 s. A last clean run lets the
forwarder drain (bounded). Then every acknowledged id is in the database exactly
once and reached the sink at least once (webhook-id header), and every stored
event (acknowledged or not: a kill can land between COMMIT and the answer) was
delivered. A summary line gives the numbers.

HR_CHAOS_SEED fixes the random delays (the seed is printed); HR_CHAOS_ROUNDS
overrides the number of rounds. Under AddressSanitizer (HR_SANITIZE_BUILD=1 from
CMake, or the binary links ASan) the rounds are halved: the daemon is several
times slower to start and to serve there, and half the rounds still put kills
in every phase (start, load, forwarding).
"""

import collections
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import hrtest  # noqa: E402
from hrtest import Daemon, sanitizer_reports  # noqa: E402
from sink import Sink  # noqa: E402

CONNECTION_ERRORS = (ConnectionError, http.client.HTTPException, TimeoutError, OSError)


SANITIZED = hrtest.SANITIZED
ROUNDS = int(os.environ.get("HR_CHAOS_ROUNDS") or (10 if SANITIZED else 20))
THREADS = 4
PACE = 0.02  # seconds between one thread's posts: ~150 events a second, which the forwarder keeps up with
DRAIN_TIMEOUT = 120.0 if SANITIZED else 60.0

CONFIG = """
[server]
listen = 127.0.0.1:0
[storage]
path = {db}
[source default]
provider = auto
dedup = off
[destination sink]
url = %s/hook
allow_private = true
timeout = 5s
jitter = 0
retry_schedule = 100ms, 200ms, 300ms, 500ms, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s
"""


def wait_until(fn, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s; last: %r" % (timeout, what, last))
        time.sleep(interval)


class KillLoopTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hrchaos-kill-")
        self.sink = Sink("ok", max_seconds=900)
        self.sink.server.handle_error = lambda request, address: None  # resets by kill -9 are the point
        self.daemon = None

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.stop(signal.SIGKILL)
        self.sink.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self):
        d = Daemon(CONFIG % self.sink.url, workdir=self.dir)
        d.owns_dir = False
        self.daemon = d
        return d.start()

    def load(self, d, rnd, acked, odd, lock, stop):
        """THREADS posting threads; each records the ids answered 200 until `stop`."""

        def worker(t):
            conn = d.conn(timeout=30)
            seq = 0
            try:
                while not stop.is_set():
                    seq += 1
                    body = json.dumps({"chaos": "kill-loop", "round": rnd, "thread": t, "seq": seq,
                                       "nonce": os.urandom(8).hex()}).encode()
                    try:
                        status, _, data = d.post(body, conn=conn)
                    except CONNECTION_ERRORS:
                        conn.close()
                        if stop.is_set():
                            return
                        time.sleep(0.01)  # the daemon is going away: try again until told to stop
                        conn = d.conn(timeout=30)
                        continue
                    if status != 200:
                        with lock:
                            odd.append("round %d thread %d: %d %r" % (rnd, t, status, data[:200]))
                        return
                    with lock:
                        acked.append(json.loads(data)["id"])
                    stop.wait(PACE)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
        for t in threads:
            t.start()
        return threads

    def test_kill_9_at_random_moments(self):
        seed = int(os.environ.get("HR_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
        rng = random.Random(seed)
        print("kill loop: seed %d, %d rounds%s" % (seed, ROUNDS, " (sanitizer build)" if SANITIZED else ""))
        acked, odd, lock = [], [], threading.Lock()
        t0 = time.monotonic()
        for rnd in range(ROUNDS):
            d = self.start()
            before = len(acked)
            stop = threading.Event()
            threads = self.load(d, rnd, acked, odd, lock, stop)
            time.sleep(rng.uniform(0.2, 1.5))  # the random moment of the kill
            rc = d.kill9()
            self.daemon = None
            stop.set()
            for t in threads:
                t.join(timeout=60)
            self.assertFalse(any(t.is_alive() for t in threads), "round %d: clients hung" % rnd)
            self.assertEqual(rc, -signal.SIGKILL, "round %d: the daemon died before the kill:\n%s"
                             % (rnd, d.log()))
            self.assertEqual(sanitizer_reports(d.log()), [], d.log())
            self.assertEqual(odd, [], "clients must see 200 or a connection error")
            print("  round %2d: %4d acked, %4d delivered so far" % (rnd, len(acked) - before,
                                                                    len(self.sink.received())))
        self.assertEqual(len(acked), len(set(acked)), "an id was acknowledged twice")
        self.assertGreater(len(acked), ROUNDS * 5, "hardly any traffic got through")

        # The last run is clean: the forwarder drains, then SIGTERM.
        d = self.start()

        def drained():
            status, doc = d.get_json("/v1/destinations/sink")
            return status == 200 and doc["pending"] == 0 and doc
        dest = wait_until(drained, DRAIN_TIMEOUT, "pending deliveries to drain")
        rc = d.stop()
        self.daemon = None
        self.assertEqual(rc, 0, "the last run did not exit cleanly:\n" + d.log())
        self.assertEqual(sanitizer_reports(d.log()), [], d.log())

        con = sqlite3.connect("file:%s?mode=ro" % d.db, uri=True, timeout=10)
        try:
            counts = dict(con.execute("SELECT id, count(*) FROM events GROUP BY id"))
            status_of = dict(con.execute(
                "SELECT e.id, group_concat(d.status) FROM events e"
                " LEFT JOIN deliveries d ON d.event_seq = e.seq GROUP BY e.id"))
            check = con.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            con.close()
        self.assertEqual(check, "ok")

        at_sink = collections.Counter(r.headers.get("webhook-id") for r in self.sink.received())
        missing = [i for i in acked if i not in counts]
        twice = {i: n for i, n in counts.items() if n != 1}
        undelivered = [i for i in acked if at_sink[i] == 0]
        stored_undelivered = [i for i in counts if at_sink[i] == 0]
        not_succeeded = {i: s for i, s in status_of.items() if s != "1"}
        sink_dups = sum(1 for n in at_sink.values() if n > 1)
        strangers = [i for i in at_sink if i not in counts]
        print("kill loop summary: seed %d, %d rounds in %.1fs: acked %d, stored %d (%d stored but "
              "never acked), delivered %d distinct ids in %d requests, %d ids delivered more than once"
              "; destination: %s" % (seed, ROUNDS, time.monotonic() - t0, len(acked), len(counts),
                                     len(set(counts) - set(acked)), len(at_sink),
                                     sum(at_sink.values()), sink_dups,
                                     {k: dest[k] for k in ("succeeded", "failed", "dead", "pending")}))
        self.assertEqual(missing, [], "acknowledged events lost")
        self.assertEqual(twice, {}, "events stored more than once")
        self.assertEqual(undelivered, [], "acknowledged events never reached the sink")
        self.assertEqual(stored_undelivered, [], "stored events never reached the sink")
        self.assertEqual(not_succeeded, {}, "deliveries not succeeded (status per event)")
        self.assertEqual(strangers, [], "the sink got ids that are not stored events")


if __name__ == "__main__":
    unittest.main()
