"""Issue 11 item 1: reloads while deliveries are in flight (docs/security.md, "### 1.").

The forwarder used to keep at most 16 older configurations for destinations a reload
removed while an attempt to them was still running; the 17th reload freed one that
those attempts still read (use after free: ASan aborts, a release build reads freed
memory). Twenty reloads, alternating two files whose only destination changes its
name, while an event arrives every 50 ms and the downstream answers 503 after 3 s,
must leave the daemon running, every attempt recorded under the right destination,
and the sanitizers quiet.
"""

import http.server
import json
import os
import signal
import threading
import time
import unittest

from hrtest import Daemon, config_with, dumps, fresh_id, payload_json, sanitizer_reports

DELAY_S = 3.0
RELOADS = 20


class SlowSink:
    """Answers every POST with 503 after DELAY_S, so attempts stay in flight across reloads
    and each outcome makes the forwarder read its destination's retry schedule."""

    def __init__(self):
        self.stopping = threading.Event()
        self.count = 0
        self.lock = threading.Lock()
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
                with sink.lock:
                    sink.count += 1
                sink.stopping.wait(DELAY_S)
                body = b'{"error":"slow"}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass  # hookrelay gave up on an attempt (its timeout, a stop): expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def received(self):
        with self.lock:
            return self.count

    def stop(self):
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def config(name, url):
    # Each name gets its own retry schedule, so reading a freed one shows.
    return config_with(server="", sections="""
[destination %s]
url = %s
allow_private = true
timeout = 10s
retry_schedule = 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s
max_in_flight = 64
""" % (name, url))


class ReloadWhileInFlightTest(unittest.TestCase):

    def setUp(self):
        self.sink = SlowSink()
        self.configs = [config("alpha", self.sink.url), config("beta", self.sink.url)]
        # A release build reading freed memory reads these bytes instead of the
        # configuration (glibc fills freed chunks with them): a crash, not luck.
        self.d = Daemon(self.configs[0], env={"MALLOC_PERTURB_": "165"},
                        extra_args=["--log-level", "info"])
        try:
            self.d.start()
        except BaseException:
            self.d.cleanup()
            self.sink.stop()
            raise

    def tearDown(self):
        rc = self.d.stop()
        log = self.d.log()
        self.d.cleanup()
        self.sink.stop()
        self.assertEqual(rc, 0, "hookrelay did not exit cleanly:\n" + log[-6000:])
        self.assertEqual(sanitizer_reports(log), [], log[-6000:])

    def write_config(self, text):
        with open(self.d.config_path, "w") as f:
            f.write(text.format(db=self.d.db, dir=self.d.dir))

    def log_count(self, needle):
        return sum(1 for l in self.d.log().splitlines() if needle in l)

    def test_twenty_reloads_with_attempts_in_flight(self):
        stop = threading.Event()
        statuses = []

        def post_every_50ms():
            while not stop.is_set():
                body = dumps(dict(payload_json("tavus.conversation.application.transcription_ready.json"),
                                  conversation_id=fresh_id("c")))
                try:
                    statuses.append(self.d.post(body)[0])
                except OSError as e:
                    statuses.append(repr(e))
                stop.wait(0.05)

        poster = threading.Thread(target=post_every_50ms, daemon=True)
        poster.start()
        try:
            deadline = time.monotonic() + 20
            while self.sink.received() == 0:
                self.assertLess(time.monotonic(), deadline, "nothing reached the sink")
                time.sleep(0.02)
            for i in range(1, RELOADS + 1):
                before = self.log_count("destination(s) after reload")
                self.write_config(self.configs[i % 2])
                self.d.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 20
                while self.log_count("destination(s) after reload") <= before:
                    self.assertIsNone(self.d.proc.poll(), "hookrelay died:\n" + self.d.log()[-6000:])
                    self.assertLess(time.monotonic(), deadline, "reload %d not applied" % i)
                    time.sleep(0.01)
                time.sleep(0.1)  # a few events reach the new destination
            # Every attempt started before and between the reloads ends now.
            time.sleep(DELAY_S + 2)
        finally:
            stop.set()
            poster.join(10)
        self.assertIsNone(self.d.proc.poll(), "hookrelay died:\n" + self.d.log()[-6000:])
        self.assertEqual(sanitizer_reports(self.d.log()), [], self.d.log()[-6000:])
        self.assertTrue(statuses and set(statuses) == {200}, statuses[:20])
        # The removed destinations' attempts went while they drained (more than
        # one per reload), and every record names one of the two destinations.
        self.assertGreater(self.sink.received(), RELOADS)
        status, doc = self.d.get_json("/v1/destinations")
        self.assertEqual(status, 200, doc)
        self.assertEqual([x["name"] for x in doc["destinations"]], ["alpha"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
