"""Chaos: a downstream that misbehaves at random, and every delivery still succeeds.

The sink follows a script of SCRIPT_LEN behaviours drawn from a seeded RNG (then
answers 200 for good):

  ok     200
  fail   500
  hang   reads the request and never answers: the destination's 1 s timeout fires
  reset  reads the request and resets the connection (SO_LINGER 0: a TCP RST)

EVENTS events are posted. Within a bounded time every delivery ends succeeded
(none dead: the retry schedule has 40 short steps, more than the script has
failures in a row for one delivery in practice); every request the sink got
belongs to an attempt the daemon recorded, in order and with the matching outcome
(200, 500, or an error for a hang or a reset), and no attempt is recorded that the
sink did not get; the daemon exits 0 on SIGTERM.

Known bug, kept visible as an expected failure: after a reset on a reused
keep-alive connection libcurl sends the POST again on a fresh connection inside
the same attempt, so the downstream gets requests the attempt log does not show
(test_every_request_the_sink_got_is_a_recorded_attempt).

The circuit breaker is set out of reach (breaker_failures = 1000): with a third
of all answers failing, ten failures in a row do happen, and an open breaker's
doubling cooldown would make the run time depend on luck rather than on the
delivery logic under test. HR_CHAOS_SEED fixes the script (the seed is printed).
"""

import collections
import http.server
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from hrtest import Daemon, sanitizer_reports  # noqa: E402

EVENTS = 200
SCRIPT_LEN = 300
WEIGHTS = {"ok": 40, "fail": 25, "hang": 15, "reset": 20}
DRAIN_TIMEOUT = 120.0

CONFIG = """
[server]
listen = 127.0.0.1:0
[storage]
path = {db}
[source default]
provider = auto
dedup = off
[destination chaos]
url = %s/hook
allow_private = true
timeout = 1s
connect_timeout = 1s
max_in_flight = 16
breaker_failures = 1000
retry_schedule = %s
"""
RETRY_SCHEDULE = ", ".join(["100ms", "200ms", "300ms", "400ms"] + ["500ms"] * 36)


class ChaosSink:
    """A downstream on 127.0.0.1 answering by script; records (webhook-id, behaviour, reused)
    per request, `reused` when it came on a connection that had carried one before."""

    def __init__(self, script, max_seconds=600):
        self.script = collections.deque(script)
        self.requests = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                reused = getattr(self, "served", 0) > 0  # not the connection's first request
                self.served = getattr(self, "served", 0) + 1
                with sink.lock:
                    what = sink.script.popleft() if sink.script else "ok"
                    sink.requests.append((self.headers.get("webhook-id"), what, reused))
                if what == "hang":
                    sink.stopping.wait(max_seconds)
                    self.close_connection = True
                elif what == "reset":
                    self.close_connection = True
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.rfile.close()
                    self.connection.close()  # the last reference: close(2) with linger 0 sends RST
                else:
                    status = 200 if what == "ok" else 500
                    body = b'{"ok":true}' if status == 200 else b'{"error":"chaos"}'
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            # socketserver's default listen backlog is 5: with 16 transfers in flight and
            # this thread slow to accept on a loaded box, the kernel dropped SYNs and the
            # daemon recorded 1 s connect timeouts the sink never saw. Room for every one.
            request_queue_size = 128

            def handle_error(self, request, address):
                pass  # the resets and the daemon's timeouts are the point

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.timer = threading.Timer(max_seconds, self.stop)
        self.timer.daemon = True
        self.timer.start()

    def received(self):
        with self.lock:
            return list(self.requests)

    def stop(self):
        self.stopping.set()
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()


def split_attempts(seen):
    """The sink's requests for one delivery (behaviour, reused) as the daemon's attempts: one
    each. libcurl sends a request again, once, on a fresh connection when a reused connection
    dies before any byte of the answer; forward_request.c counts the sends and logs the first as an
    attempt of its own, so every request the sink got is an attempt in the log."""
    return [[what] for what, _reused in seen]


class DownstreamChaosTest(unittest.TestCase):
    """One run (setUpClass), several properties of it."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hrchaos-down-")
        cls.sink = None
        cls.d = None
        try:
            cls.run_chaos()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.d is not None:
            cls.d.stop(signal.SIGKILL)
            cls.d = None
        if cls.sink is not None:
            cls.sink.stop()
            cls.sink = None
        shutil.rmtree(cls.dir, ignore_errors=True)

    @classmethod
    def run_chaos(cls):
        seed = int(os.environ.get("HR_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
        rng = random.Random(seed)
        script = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=SCRIPT_LEN)
        print("downstream chaos: seed %d, script %s" % (seed, dict(collections.Counter(script))))
        cls.sink = ChaosSink(script)
        d = Daemon(CONFIG % (cls.sink.url, RETRY_SCHEDULE), workdir=cls.dir)
        d.owns_dir = False
        cls.d = d.start()

        t0 = time.monotonic()
        acked, odd, lock = [], [], threading.Lock()

        def poster(t):
            conn = d.conn(timeout=30)
            try:
                for i in range(t, EVENTS, 2):
                    status, _, data = d.post({"chaos": "downstream", "n": i}, conn=conn)
                    with lock:
                        if status == 200:
                            acked.append(json.loads(data)["id"])
                        else:
                            odd.append((i, status, data[:200]))
            finally:
                conn.close()
        posters = [threading.Thread(target=poster, args=(t,), daemon=True) for t in range(2)]
        for t in posters:
            t.start()
        for t in posters:
            t.join(timeout=60)
        if any(t.is_alive() for t in posters) or odd or len(set(acked)) != EVENTS:
            raise AssertionError("posting failed: %d acked, %r" % (len(set(acked)), odd[:5]))

        deadline = time.monotonic() + DRAIN_TIMEOUT
        while True:
            status, dest = d.get_json("/v1/destinations/chaos")
            if status != 200:
                raise AssertionError("GET /v1/destinations/chaos: %d %r" % (status, dest))
            if dest["pending"] == 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError("deliveries still pending after %.0fs: %r" % (DRAIN_TIMEOUT, dest))
            time.sleep(0.1)
        cls.drained_after = time.monotonic() - t0
        s = time.monotonic()
        cls.rc = d.stop(timeout=60)
        cls.stop_took = time.monotonic() - s
        cls.log = d.log()
        cls.d = None
        cls.acked = acked

        con = sqlite3.connect("file:%s?mode=ro" % d.db, uri=True, timeout=10)
        try:
            rows = con.execute(
                "SELECT e.id, dl.status, dl.attempts, a.number, a.http_status, a.error"
                " FROM events e JOIN deliveries dl ON dl.event_seq = e.seq"
                " LEFT JOIN attempts a ON a.delivery_id = dl.id ORDER BY e.id, a.number").fetchall()
        finally:
            con.close()
        cls.status_of, cls.attempts_of, cls.recorded = {}, {}, collections.defaultdict(list)
        for eid, st, n, number, http_status, error in rows:
            cls.status_of[eid] = st
            cls.attempts_of[eid] = n
            if number is not None:
                cls.recorded[eid].append((number, http_status, error))
        cls.at_sink = collections.defaultdict(list)
        for wid, what, reused in cls.sink.received():
            cls.at_sink[wid].append((what, reused))

        total_recorded = sum(len(v) for v in cls.recorded.values())
        total_sink = sum(len(v) for v in cls.at_sink.values())
        resent = sum(len(a) - 1 for v in cls.at_sink.values() for a in split_attempts(v))
        by_status = collections.Counter(cls.status_of.values())
        most = max(len(v) for v in cls.recorded.values()) if cls.recorded else 0
        print("downstream chaos summary: %d events, deliveries by status %s, drained after %.1fs, "
              "stopped in %.1fs; %d requests at the sink %s, %d attempts recorded (%d requests sent "
              "again by libcurl inside an attempt), at most %d attempts for one delivery"
              % (len(acked), {["pending", "succeeded", "failed", "dead"][k]: v for k, v in by_status.items()},
                 cls.drained_after, cls.stop_took, total_sink,
                 dict(collections.Counter(w for v in cls.at_sink.values() for w, _ in v)),
                 total_recorded, resent, most))

    def test_every_delivery_succeeded_and_the_daemon_exits_0(self):
        self.assertEqual(self.rc, 0, "hookrelay did not exit 0:\n" + self.log)
        self.assertEqual(sanitizer_reports(self.log), [], self.log)
        self.assertLess(self.stop_took, 10.0)
        self.assertEqual(sorted(self.status_of), sorted(self.acked))
        self.assertEqual({e: s for e, s in self.status_of.items() if s != 1}, {},
                         "deliveries not succeeded (1 = succeeded, 3 = dead)")
        strangers = set(self.at_sink) - set(self.acked)
        self.assertEqual(strangers, set(), "the sink got requests for unknown events")

    def test_attempt_log_matches_what_the_sink_got(self):
        """Every recorded send is numbered by its attempt (1..n) with the outcome the sink gave it, and every
        request the sink got is one of them (a resend after a reset on a reused connection
        included)."""
        mismatched = {}
        for eid in self.acked:
            rec, seen = self.recorded.get(eid, []), split_attempts(self.at_sink.get(eid, []))
            # A send libcurl repeated within an attempt is an entry under its number.
            numbers = [r[0] for r in rec]
            numbers_ok = numbers == sorted(numbers) and \
                sorted(set(numbers)) == list(range(1, self.attempts_of[eid] + 1))
            outcomes_ok = len(rec) == len(seen) and all(
                (w[-1] == "ok" and h == 200) or (w[-1] == "fail" and h == 500) or
                (w[-1] in ("hang", "reset") and h is None and e) for (_, h, e), w in zip(rec, seen))
            if not (numbers_ok and outcomes_ok and seen and seen[-1][-1] == "ok"):
                mismatched[eid] = {"recorded": rec, "sink": self.at_sink.get(eid), "attempts": self.attempts_of[eid]}
        self.maxDiff = None
        self.assertEqual(mismatched, {}, "attempts recorded differ from what the sink got")

    def test_every_request_the_sink_got_is_a_recorded_attempt(self):
        """libcurl resends a POST on a fresh connection when a reused keep-alive connection
        is reset before any byte of the answer, inside one easy transfer; forward_request.c counts
        the sends and logs each as an attempt, so the log matches what the sink got."""
        self.assertEqual(sum(len(v) for v in self.at_sink.values()),
                         sum(len(v) for v in self.recorded.values()))


if __name__ == "__main__":
    unittest.main()
