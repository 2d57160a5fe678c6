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
    """Answers every POST with `status` after DELAY_S, so attempts stay in flight across
    reloads (a 503 makes the forwarder read its destination's retry schedule)."""

    def __init__(self, status=503):
        self.stopping = threading.Event()
        self.count = 0
        self.seen = []  # (path, webhook-id) of every request
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
                    sink.seen.append((self.path, self.headers.get("webhook-id")))
                sink.stopping.wait(DELAY_S)
                body = b'{"error":"slow"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128  # not socketserver's 5: a full backlog drops SYNs

            def handle_error(self, request, client_address):
                pass  # hookrelay gave up on an attempt (its timeout, a stop): expected

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.url = self.base + "/hook"
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


class ReloadStorm(unittest.TestCase):
    """A daemon whose only destination a test renames back and forth (no tests here)."""
    status = 503

    def setUp(self):
        self.sink = SlowSink(self.status)
        self.configs = [config("alpha", self.sink.base + "/alpha"),
                        config("beta", self.sink.base + "/beta")]
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

    def reload_storm(self):
        """Twenty reloads, alternating the files, while an event comes every 50 ms;
        returns once every attempt started meanwhile has ended."""
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
        return statuses


class ReloadWhileInFlightTest(ReloadStorm):

    def test_twenty_reloads_with_attempts_in_flight(self):
        statuses = self.reload_storm()
        self.assertIsNone(self.d.proc.poll(), "hookrelay died:\n" + self.d.log()[-6000:])
        self.assertEqual(sanitizer_reports(self.d.log()), [], self.d.log()[-6000:])
        self.assertTrue(statuses and set(statuses) == {200}, statuses[:20])
        # The removed destinations' attempts went while they drained (more than
        # one per reload), and every record names one of the two destinations.
        self.assertGreater(self.sink.received(), RELOADS)
        status, doc = self.d.get_json("/v1/destinations")
        self.assertEqual(status, 200, doc)
        self.assertEqual([x["name"] for x in doc["destinations"]], ["alpha"])


class RenamedBackWhileInFlightTest(ReloadStorm):
    """A destination removed by one reload and back by the next has its old attempts
    still in flight: the new one must not take the same delivery again meanwhile."""
    status = 200

    def test_a_delivery_in_flight_is_not_sent_twice(self):
        statuses = self.reload_storm()
        self.assertTrue(statuses and set(statuses) == {200}, statuses[:20])
        with self.sink.lock:
            seen = list(self.sink.seen)
        self.assertGreater(len(seen), RELOADS)
        twice = sorted({x for x in seen if seen.count(x) > 1})
        self.assertEqual(twice, [], "sent again while the first attempt was in flight")


if __name__ == "__main__":
    unittest.main(verbosity=2)
