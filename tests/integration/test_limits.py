"""Abuse limits: the per-source token bucket (429), connection caps, header and
body sizes (431, 413), and request_timeout against slow clients. The daemon
keeps serving others throughout and stays healthy afterwards.

Every wait is bounded; the whole file runs in about ten seconds.
"""

import http.client
import json
import os
import re
import select
import socket
import threading
import time
import unittest

from hrtest import Daemon, DaemonTest, config_with, dumps, fresh_id, metric_reaches, payload_json
from test_auth import SPEC_SECRET, WRONG_SW, sw_headers

TOKEN = "limits-token-3f9a0c2b7d"


def body_of():
    doc = payload_json("tavus.conversation.system.shutdown.json")
    doc["conversation_id"] = fresh_id("c")
    return dumps(doc)


def padded_json(total):
    head, tail = b'{"pad":"', b'"}'
    return head + b"x" * (total - len(head) - len(tail)) + tail


def post_head(path="/hooks/default", length=None, extra=b""):
    h = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
         b"Content-Type: application/json\r\n")
    if length is not None:
        h += b"Content-Length: %d\r\n" % length
    return h + extra


def connect(port, addr="127.0.0.1", timeout=5):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                    source_address=(addr, 0))


def http_conn(port, addr="127.0.0.1", timeout=5):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(addr, 0))


def get_status(conn, path="/healthz"):
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    return r.status


def wait_readable(sock, timeout):
    """Bytes the server sent within `timeout` (b"" for an orderly or reset close),
    or None if the socket stayed silent."""
    r, _, _ = select.select([sock], [], [], timeout)
    if not r:
        return None
    try:
        return sock.recv(65536)
    except (ConnectionResetError, socket.timeout):
        return b""


class LimitTest(DaemonTest):
    """One daemon per test; `files` are written to {dir} before it starts."""

    files = {}

    def setUp(self):
        self.d = Daemon(self.config)
        try:
            for name, text in self.files.items():
                with open(os.path.join(self.d.dir, name), "w") as f:
                    f.write(text)
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise


class RateLimitTest(LimitTest):
    config = config_with(sections="""
[source limited]
rate = 1
burst = 3
[source limited2]
rate = 1
burst = 3
[source guarded]
auth = token
secret_file = {dir}/t.secret
rate = 0.1
burst = 2
[source locked]
auth = token
secret_file = {dir}/t.secret
[source signed]
auth = standard-webhooks
secret_file = {dir}/sw.secret
rate = 0.1
burst = 2
""")
    files = {"t.secret": TOKEN + "\n", "sw.secret": SPEC_SECRET + "\n"}

    def drain(self, source, most=10):
        """POST until a 429: (requests accepted, seconds taken, the 429 answer)."""
        t0 = time.monotonic()
        for n in range(most):
            resp = self.d.post(body_of(), source)
            if resp[0] == 429:
                return n, time.monotonic() - t0, resp
            self.assertOk(resp, "%s request %d" % (source, n + 1))
        self.fail("%s: no 429 after %d requests" % (source, most))

    def test_token_bucket_burst_then_429_then_refill(self):
        n, took, resp = self.drain("limited")
        # A bucket of 3 refilled at 1/s: 3 when the burst takes under a second
        # (a loaded machine may take longer, and earn a token per second).
        self.assertGreaterEqual(n, 3)
        self.assertLessEqual(n, 3 + int(took))
        self.assertProblem(resp, 429, "rate-limited")
        retry = int(resp[1]["retry-after"])
        self.assertGreaterEqual(retry, 1)
        self.assertLessEqual(retry, 2)
        # Other sources have buckets of their own (and "default" has no rate).
        for i in range(3):
            self.post_ok(body_of(), "limited2")
        for i in range(5):
            self.post_ok(body_of(), "default")
        time.sleep(1.1)
        n2, took2, resp = self.drain("limited")
        self.assertGreaterEqual(n2, 1, "a token was earned in 1.1 s")
        self.assertLessEqual(n2, 2 + int(took2))
        self.assertProblem(resp, 429, "rate-limited")
        self.assertEqual(len(self.d.paged("/v1/events?source=limited", "events")), n + n2)
        self.assertHealthy()

    def test_refused_requests_spend_no_token_and_the_rate_is_checked_before_the_body(self):
        # A stranger who knows the URL once used up the provider's allowance (its
        # 401s spent tokens), and Tavus and PailFlow never retry a 429.
        for i in range(5):
            self.assertProblem(self.d.request("POST", "/hooks/guarded?token=wrong", body_of()),
                               401, "unauthorized")
        for i in range(2):
            self.assertOk(self.d.request("POST", "/hooks/guarded?token=" + TOKEN, body_of()))
        resp = self.d.request("POST", "/hooks/guarded?token=" + TOKEN, body_of())
        self.assertProblem(resp, 429, "rate-limited")
        self.assertGreaterEqual(int(resp[1]["retry-after"]), 1)
        # Answered on the headers alone: the declared megabyte is never sent (by a client
        # that asks first).
        status, hdrs, body = self.d.raw(post_head("/hooks/guarded?token=" + TOKEN, 1000000,
                                                  b"Expect: 100-continue\r\n") + b"\r\n",
                                        timeout=5)
        self.assertProblem((status, hdrs, body), 429, "rate-limited")
        self.assertIn("retry-after", hdrs)
        self.assertEqual(len(self.get_ok("/v1/events")["events"]), 2)
        # A signed source spends a token once the signature is checked.
        for i in range(5):
            body = body_of()
            self.assertProblem(self.d.post(body, "signed", sw_headers(WRONG_SW, body)), 401,
                               "unauthorized")
        for i in range(2):
            body = body_of()
            self.assertOk(self.d.post(body, "signed", sw_headers(SPEC_SECRET, body)))
        body = body_of()
        self.assertProblem(self.d.post(body, "signed", sw_headers(SPEC_SECRET, body)), 429,
                           "rate-limited")
        self.assertHealthy()


    def test_a_flood_of_refusals_is_logged_in_moderation(self):
        # One warning per refused request let anyone without credentials fill the
        # journal (whose rate limit then drops the daemon's other lines too).
        t0 = time.monotonic()
        for i in range(100):
            self.assertEqual(self.d.request("POST", "/hooks/locked?token=wrong", b"{}")[0], 401)
        took = time.monotonic() - t0
        lines = self.d.log().count("auth: source locked refused a request")
        self.assertGreaterEqual(lines, 20)
        self.assertLessEqual(lines, 20 + int(took) + 1)
        time.sleep(1.1)
        self.assertEqual(self.d.request("POST", "/hooks/locked?token=wrong", b"{}")[0], 401)
        deadline = time.monotonic() + 5
        while "refused requests were not logged (a flood)" not in self.d.log():
            self.assertLess(time.monotonic(), deadline, "no line counting the held ones")
            time.sleep(0.05)
        status, _, text = self.d.request("GET", "/metrics")
        self.assertIn(b'hookrelay_auth_failures_total{source="locked"} 101', text)

    def test_the_line_counting_held_refusals_is_the_one_security_md_shows(self):
        # docs/security.md ("What a refused request gets") tells operators which line
        # counts the auth refusals a flood held back, and which counter has them all.
        # Someone who alerts on, or greps for, that text must find it in the log.
        src = os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        with open(os.path.join(src, "docs", "security.md")) as f:
            doc = " ".join(f.read().split())
        m = re.search(r"saying how many were not logged \(`([^`]+)`; the counter `(\w+)` has them all",
                      doc)
        self.assertIsNotNone(m, "docs/security.md no longer shows the line")
        shown = m.group(1).replace("NAME", "locked")
        prefix = shown.split(" N ")[0]  # "auth: source locked:"
        for i in range(40):
            self.assertEqual(self.d.request("POST", "/hooks/locked?token=wrong", b"{}")[0], 401)
        time.sleep(1.1)
        self.assertEqual(self.d.request("POST", "/hooks/locked?token=wrong", b"{}")[0], 401)
        deadline = time.monotonic() + 5
        while "refused requests were not logged (a flood)" not in self.d.log():
            self.assertLess(time.monotonic(), deadline, "no line counting the held ones")
            time.sleep(0.05)
        held = [l for l in self.d.log().splitlines() if "refused requests were not logged" in l]
        self.assertTrue(any(prefix + " " in l for l in held),
                        "docs/security.md shows %r; the daemon wrote %r" % (shown, held))
        self.assertTrue(any(m.group(2) in l for l in held),
                        "docs/security.md names %s; the daemon's line: %r" % (m.group(2), held))

    def test_a_flood_on_one_source_hides_no_other_sources_lines(self):
        # One bucket for the whole process let a flood of bad tokens on one source
        # hide the 401s of another (a secret rotated on one side only), and the
        # count of the lines held back waited for a later line to say it.
        for i in range(60):
            self.assertEqual(self.d.request("POST", "/hooks/locked?token=wrong", b"{}")[0], 401)
        self.assertEqual(self.d.request("POST", "/hooks/guarded?token=wrong", b"{}")[0], 401)
        self.assertIn("auth: source guarded refused a request", self.d.log())
        deadline = time.monotonic() + 5
        while "ingest: source locked: " not in self.d.log():
            self.assertLess(time.monotonic(), deadline, "no line counting the held ones")
            time.sleep(0.05)
        self.assertRegex(self.d.log(), r"ingest: source locked: \d+ refused requests were not "
                                       r"logged \(a flood\)")
        self.assertNotIn("ingest: source guarded: ", self.d.log())


def metric(d, name):
    """A metric's value, asked from 127.0.0.9: 127.0.0.1 may be at its cap."""
    c = http_conn(d.port, "127.0.0.9")
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read()
    finally:
        c.close()
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("no %s in /metrics" % name)


def open_stream(port, addr="127.0.0.1"):
    """A connection busy with GET /v1/stream: a request being answered, never cut off."""
    s = connect(port, addr)
    s.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
    got = wait_readable(s, 3.0)
    assert got and got.startswith(b"HTTP/1.1 200"), got
    return s


class ConnectionCapTest(LimitTest):
    config = config_with(server="max_connections_per_ip = 4")

    def test_a_connection_past_the_per_ip_cap_waits_its_turn(self):
        # Tavus and PailFlow never retry: a fifth connection from one address is
        # not refused (it used to be closed unanswered), it waits, unread, until
        # one of the address's four closes, and its event is stored.
        conns = [http_conn(self.d.port) for _ in range(4)]
        fifth = None
        try:
            for c in conns:
                self.assertEqual(get_status(c), 200)
            body = body_of()
            fifth = connect(self.d.port)
            fifth.sendall(post_head(length=len(body)) + b"\r\n" + body)
            self.assertIsNone(wait_readable(fifth, 0.5), "served past max_connections_per_ip")
            # Another address is not held to 127.0.0.1's count.
            other = http_conn(self.d.port, "127.0.0.2")
            self.assertEqual(get_status(other), 200)
            self.assertEqual(metric(self.d, "hookrelay_connections_waiting"), 1)
            self.assertEqual(metric(self.d, "hookrelay_connections_waited_total"), 1)
            other.close()
            for c in conns:  # the 4 keep working
                self.assertEqual(get_status(c), 200)
            self.assertIn("max_connections_per_ip: its next ones wait", self.d.log())
            conns.pop().close()
            got = wait_readable(fifth, 5.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 20"), got)
            event_id = json.loads(got.split(b"\r\n\r\n", 1)[1])["id"]
            c = http_conn(self.d.port, "127.0.0.9")  # 127.0.0.1 is at its cap
            try:
                self.assertEqual(get_status(c, "/v1/events/" + event_id), 200)
            finally:
                c.close()
            # It counts as one of the address's four now: a sixth waits in turn.
            sixth = connect(self.d.port)
            try:
                sixth.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertIsNone(wait_readable(sixth, 0.5), "a fifth open from one address")
                fifth.close()
                got = wait_readable(sixth, 5.0)
                self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
            finally:
                sixth.close()
            self.assertEqual(metric(self.d, "hookrelay_connections_refused_total"), 0)
        finally:
            for c in conns:
                c.close()
            if fifth is not None:
                fifth.close()
        self.assertHealthy()

    def test_a_waiting_connection_whose_client_half_closed_is_still_served(self):
        # A connection past max_connections_per_ip waits, unread; http_peers.c watches
        # it for EPOLLRDHUP and closes it at once as a client that "went away". A
        # client that sent its whole webhook and then shut down its sending side (RFC
        # 9112, 9.6) has not gone away: it waits for the answer. Its request is
        # dropped unread, never stored (Tavus and PailFlow never retry).
        conns = [http_conn(self.d.port) for _ in range(4)]
        fifth = None
        try:
            for c in conns:
                self.assertEqual(get_status(c), 200)
            marker = fresh_id("half")
            body = dumps({"marker": marker})
            fifth = connect(self.d.port)
            fifth.sendall(post_head(length=len(body)) + b"\r\n" + body)
            fifth.shutdown(socket.SHUT_WR)
            time.sleep(0.5)  # waiting, unread
            conns.pop().close()  # room for it
            time.sleep(1.0)
            other = http_conn(self.d.port, "127.0.0.9")
            try:
                other.request("GET", "/v1/events?limit=50", headers={"Host": "127.0.0.1"})
                events = json.loads(other.getresponse().read())["events"]
                stored = []
                for e in events:
                    other.request("GET", "/v1/events/%s/raw" % e["id"],
                                  headers={"Host": "127.0.0.1"})
                    if marker.encode() in other.getresponse().read():
                        stored.append(e["id"])
            finally:
                other.close()
            self.assertEqual(len(stored), 1, "the half-closed webhook was dropped unread")
        finally:
            for c in conns:
                c.close()
            if fifth is not None:
                fifth.close()


    def test_a_burst_from_one_address_is_stored_whole(self):
        # 40 webhooks at once from one address, four times the cap, each on its
        # own connection: every one is answered 2xx and stored, none refused.
        n = 40
        barrier = threading.Barrier(n)
        answers = [None] * n

        def send(i):
            c = http_conn(self.d.port, timeout=20)
            try:
                barrier.wait(5)
                c.request("POST", "/hooks/default", body_of(),
                          {"Content-Type": "application/json"})
                r = c.getresponse()
                answers[i] = (r.status, json.loads(r.read()).get("id"))
            except OSError as e:
                answers[i] = (None, repr(e))
            finally:
                c.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual([a for a in answers if a is None or a[0] not in (200, 201, 202)], [])
        self.assertEqual(len({a[1] for a in answers}), n)
        self.assertGreater(metric(self.d, "hookrelay_connections_waited_total"), 0)
        self.assertEqual(metric(self.d, "hookrelay_connections_refused_total"), 0)


class ConnectionCapIdleKeepAliveTest(LimitTest):
    # request_timeout lowered, header_timeout left at its default: "a longer value
    # counts as request_timeout" (configuration.md), so both are 2 s here.
    config = config_with(server="max_connections_per_ip = 1\nrequest_timeout = 2s")

    def test_a_webhook_waiting_behind_an_idle_keep_alive_connection_is_stored(self):
        # configuration.md, max_connections_per_ip: "each waits, unread, until one of
        # its address's closes (an idle keep-alive one after header_timeout), and after
        # request_timeout is answered 503". The address's one connection is idle (its
        # answer sent before the webhook's connection was even opened), so it goes
        # first and the webhook is served. The waiting connection's 503 is timed to the
        # microsecond while the idle close is checked once a second: the 503 came first
        # most times, a Tavus event lost for a connection that was doing nothing.
        answers = []
        for _ in range(2):
            idle = http_conn(self.d.port)
            waiting = None
            try:
                self.assertEqual(get_status(idle), 200)  # now idle, kept alive
                body = body_of()
                waiting = connect(self.d.port)
                waiting.sendall(post_head(length=len(body)) + b"\r\n" + body)
                got = wait_readable(waiting, 6.0)
                answers.append(got.split(b"\r\n", 1)[0] if got else got)
            finally:
                idle.close()
                if waiting is not None:
                    waiting.close()
            time.sleep(0.2)
        self.assertEqual(answers, [b"HTTP/1.1 200 OK"] * 2,
                         "a webhook waiting for an idle keep-alive connection of its address "
                         "was answered 503 (not stored)")

    def test_a_webhook_waiting_while_its_address_finishes_a_request_is_stored(self):
        # The other order: the address's one connection is in a request when the
        # webhook's connection comes, and idle (kept alive) once answered. Closed at
        # header_timeout counted from that answer, it went after the waiting one's
        # request_timeout: the 503 came first every time.
        answers = []
        for _ in range(2):
            first, waiting = connect(self.d.port), None
            try:
                body = body_of()
                first.sendall(post_head(length=len(body)) + b"\r\n" + body[:10])
                time.sleep(0.3)  # its headers are in: a request in progress
                waiting = connect(self.d.port)
                other = body_of()
                waiting.sendall(post_head(length=len(other)) + b"\r\n" + other)
                time.sleep(0.5)
                first.sendall(body[10:])
                got = wait_readable(first, 5.0)
                self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
                got = wait_readable(waiting, 6.0)
                answers.append(got.split(b"\r\n", 1)[0] if got else got)
            finally:
                first.close()
                if waiting is not None:
                    waiting.close()
            time.sleep(0.2)
        self.assertEqual(answers, [b"HTTP/1.1 200 OK"] * 2,
                         "a webhook waiting for its address's connection, idle once "
                         "answered, was answered 503 (not stored)")


class ConnectionCapPipelinedTest(LimitTest):
    config = config_with(server="max_connections_per_ip = 1\nrequest_timeout = 2s")

    def test_a_pipelined_webhook_behind_an_answered_one_is_answered_while_another_waits(self):
        # An idle keep-alive connection of an address with a connection waiting is closed
        # early (http_conn.c idle_past); one whose client pipelined its next request
        # (RFC 9112 9.3.2: the server answers them in order) is not idle: the second
        # webhook is already in, and closing the connection after the first answer
        # loses it (Tavus and PailFlow never retry).
        first, second = body_of(), body_of()
        conn = connect(self.d.port)
        waiting = None
        try:
            time.sleep(0.2)
            waiting = connect(self.d.port)  # the address's one slot is taken: it waits
            time.sleep(0.3)
            conn.sendall(post_head(length=len(first)) + b"\r\n" + first +
                         post_head(length=len(second)) + b"\r\n" + second)
            data, deadline = b"", time.monotonic() + 6
            while data.count(b"HTTP/1.1 ") < 2 and time.monotonic() < deadline:
                chunk = wait_readable(conn, deadline - time.monotonic())
                if not chunk:
                    break
                data += chunk
            self.assertEqual(re.findall(rb"HTTP/1\.1 \d{3} [A-Za-z ]*", data),
                             [b"HTTP/1.1 200 OK"] * 2,
                             "the pipelined webhook got no answer: " + repr(data[-300:]))
        finally:
            conn.close()
            if waiting is not None:
                waiting.close()


class ConnectionCapBegunRequestTest(LimitTest):
    config = config_with(server="max_connections_per_ip = 1\nrequest_timeout = 2s")

    def test_a_webhook_begun_on_a_kept_alive_connection_is_stored_when_another_starts_to_wait(self):
        # An idle keep-alive connection of an address is shut down when a connection of
        # the address starts to wait (http_conn.c close_idle_of), idle meaning "no request
        # line parsed since the last answer". A connection whose next request has begun
        # to arrive (its line not whole yet: a TCP segment of a slow or busy sender) is
        # not idle: closing it cuts a webhook off mid-request, never stored nor answered.
        conn = connect(self.d.port)
        waiting = None
        try:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = wait_readable(conn, 5.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
            body = body_of()
            request = post_head(length=len(body)) + b"\r\n" + body
            conn.sendall(request[:10])  # "POST /hook"
            time.sleep(0.1)
            waiting = connect(self.d.port)  # the address's one slot is taken: it waits
            time.sleep(0.3)
            try:
                conn.sendall(request[10:])
            except OSError:
                pass
            got = wait_readable(conn, 4.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"),
                            "the webhook begun before the wait got %r" % (got,))
        finally:
            conn.close()
            if waiting is not None:
                waiting.close()


class ConnectionCapIdleKeepAliveMixedFamiliesTest(LimitTest):
    # As ConnectionCapIdleKeepAliveTest, on a listener of both families (a socket handed
    # over as systemd does; IPv4 clients come as v4-mapped addresses), after an IPv6
    # client's connection waited once.
    config = config_with(server="max_connections_per_ip = 1\nrequest_timeout = 2s")

    def setUp(self):
        self.listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.listener.bind(("::", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.d = Daemon(self.config, listen_fd=self.listener.fileno())
        try:
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise
        self.d.port = self.port

    def tearDown(self):
        super().tearDown()
        self.listener.close()

    def idle_then_waiting(self, host):
        idle = http.client.HTTPConnection(host, self.d.port, timeout=5)
        waiting = None
        try:
            self.assertEqual(get_status(idle), 200)  # now idle, kept alive
            body = body_of()
            waiting = socket.create_connection((host, self.d.port), timeout=5)
            waiting.sendall(post_head(length=len(body)) + b"\r\n" + body)
            got = wait_readable(waiting, 6.0)
            return got.split(b"\r\n", 1)[0] if got else got
        finally:
            idle.close()
            if waiting is not None:
                waiting.close()
            time.sleep(0.2)

    def test_an_ipv4_webhook_waiting_behind_an_idle_connection_after_an_ipv6_one_is_stored(self):
        # configuration.md, max_connections_per_ip: an idle keep-alive connection of the
        # address goes first, so the waiting webhook is served. An early close of idle
        # connections (reverted) found them by their address's 16 bytes, of which an IPv4
        # address fills 4, comparing 12 bytes the acceptor's stack held (an IPv6 address
        # of the wait before): the IPv4 webhook was answered 503, every time.
        answers = []
        for _ in range(1):
            answers.append(self.idle_then_waiting("::1"))
            answers.append(self.idle_then_waiting("127.0.0.1"))
        self.assertEqual(answers, [b"HTTP/1.1 200 OK"] * 2,
                         "an IPv4 webhook waiting behind an idle keep-alive connection of its "
                         "address was answered 503 (not stored)")


class ConnectionCapTimeoutTest(LimitTest):
    config = config_with(server="max_connections_per_ip = 2\nrequest_timeout = 1s")

    def test_a_connection_that_waits_request_timeout_is_answered_503(self):
        # The address's two are streams, never cut off: the third waits
        # request_timeout, then learns that its request was not read.
        streams = [open_stream(self.d.port) for _ in range(2)]
        third = None
        try:
            body = body_of()
            third = connect(self.d.port)
            t0 = time.monotonic()
            third.sendall(post_head(length=len(body)) + b"\r\n" + body)
            got = wait_readable(third, 5.0)
            took = time.monotonic() - t0
            self.assertTrue(got and got.startswith(b"HTTP/1.1 503"), got)
            self.assertGreaterEqual(took, 0.9)
            head, doc = got.split(b"\r\n\r\n", 1)
            self.assertIn(b"Retry-After: 1", head)
            self.assertIn(b"Content-Type: application/problem+json", head)
            problem = json.loads(doc)
            self.assertEqual(problem["type"], "urn:hookrelay:problem:overloaded")
            self.assertIn("max_connections_per_ip", problem["detail"])
            self.assertEqual(wait_readable(third, 3.0), b"", "the connection was closed")
            self.assertEqual(metric(self.d, "hookrelay_connections_refused_total"), 1)
            self.assertEqual(metric(self.d, "hookrelay_connections_waiting"), 0)
        finally:
            for s in streams:
                s.close()
            if third is not None:
                third.close()
        self.assertHealthy()

    def test_the_waiting_connections_503_carries_the_headers_of_every_answer(self):
        # docs/api.md: "Every answer hookrelay makes carries Cache-Control: no-store
        # ... and X-Content-Type-Options: nosniff". The canned 503 of a connection that
        # waited past max_connections_per_ip (http_peers.c, send_503) has neither.
        streams = [open_stream(self.d.port) for _ in range(2)]
        third = None
        try:
            body = body_of()
            third = connect(self.d.port)
            third.sendall(post_head(length=len(body)) + b"\r\n" + body)
            got = wait_readable(third, 5.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 503"), got)
            head = got.split(b"\r\n\r\n", 1)[0].decode().lower()
            self.assertIn("cache-control: no-store", head)
            self.assertIn("x-content-type-options: nosniff", head)
        finally:
            for s in streams:
                s.close()
            if third is not None:
                third.close()

    def test_a_large_body_still_gets_its_503_not_a_reset(self):
        # The 503 is written before the body is read; the connection then reads
        # and drops what still comes, so that its close does not reset the
        # connection under a client still sending (which would lose the answer).
        streams = [open_stream(self.d.port) for _ in range(2)]
        third = None
        try:
            body = b'{"pad":"' + b"x" * (4 << 20) + b'"}'
            third = connect(self.d.port, timeout=10)
            third.sendall(post_head(length=len(body)) + b"\r\n" + body)
            got = wait_readable(third, 5.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 503"), got)
        finally:
            for s in streams:
                s.close()
            if third is not None:
                third.close()

    def test_clients_that_connect_and_leave_hold_nothing(self):
        # A waiting connection whose client closed is closed at once: a loop of
        # connect-and-close from one address must not pile up sockets and slots
        # until request_timeout.
        streams = [open_stream(self.d.port) for _ in range(2)]
        try:
            for _ in range(200):
                connect(self.d.port).close()
            deadline = time.monotonic() + 5
            while metric(self.d, "hookrelay_connections_waiting") > 0:
                self.assertLess(time.monotonic(), deadline, "waiting connections of gone clients")
                time.sleep(0.05)
            self.assertEqual(metric(self.d, "hookrelay_connections_refused_total"), 0)
        finally:
            for s in streams:
                s.close()
        self.assertHealthy()


class ConnectionCapStopTest(unittest.TestCase):
    def test_a_stop_serves_the_waiting_ones(self):
        # Their webhooks are in (unread): a stop serves them with the connections
        # already open, each answer closing its connection. They were answered 503
        # shutting-down, which Tavus and PailFlow do not retry (a review).
        d = Daemon(config_with(server="max_connections_per_ip = 2"))
        d.start()
        streams, third, rc = [], None, None
        try:
            streams = [open_stream(d.port) for _ in range(2)]
            body = body_of()
            third = connect(d.port)
            third.sendall(post_head(length=len(body)) + b"\r\n" + body)
            self.assertIsNone(wait_readable(third, 0.3))
            rc = d.stop()
            got = wait_readable(third, 5.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
            self.assertIn(b"\r\nConnection: close\r\n", got)
            self.assertIn("stopped: 1 accepted, 0 rejected, 0 failed", d.log())
        finally:
            for s in streams + [third]:
                if s is not None:
                    s.close()
            d.cleanup()
        self.assertEqual(rc, 0, d.log())


class ConnectionCapAtGlobalCapTest(LimitTest):
    config = config_with(server="max_connections = 3\nmax_connections_per_ip = 2")

    def test_at_max_connections_a_waiting_connection_goes_first(self):
        # 127.0.0.1 has its two open (streams) and a third waiting: all three
        # slots. A newcomer from another address takes the waiting one's slot.
        streams = [open_stream(self.d.port) for _ in range(2)]
        third = newcomer = None
        try:
            third = connect(self.d.port)
            third.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIsNone(wait_readable(third, 0.3))
            newcomer = connect(self.d.port, "127.0.0.2")
            newcomer.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = wait_readable(newcomer, 3.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
            got = wait_readable(third, 3.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 503"), got)
            self.assertIn(b"max_connections", got)
        finally:
            for s in streams + [third, newcomer]:
                if s is not None:
                    s.close()


class GlobalConnectionCapTest(LimitTest):
    config = config_with(server="max_connections = 4\nmax_connections_per_ip = 0")

    def test_global_cap_evicts_the_longest_idle_connection(self):
        conns = [http_conn(self.d.port, "127.0.0.%d" % (i + 2)) for i in range(4)]
        fifth = None
        try:
            for c in conns:
                self.assertEqual(get_status(c), 200)
                time.sleep(0.05)  # conns[0] has been idle longest
            # At the cap, a 5th client is served at once: the connection that has
            # waited longest without sending a request (conns[0]) makes room.
            fifth = connect(self.d.port, "127.0.0.6")
            fifth.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got = wait_readable(fifth, 3.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
            self.assertEqual(wait_readable(conns[0].sock, 3.0), b"", "conns[0] was not evicted")
            for c in conns[1:]:  # the others keep working
                self.assertEqual(get_status(c), 200)
        finally:
            for c in conns:
                c.close()
            if fifth is not None:
                fifth.close()
        self.assertHealthy()

    def test_global_cap_holds_the_next_connection_while_all_are_busy(self):
        # Streams are requests being answered: never evicted. With 4 of them open,
        # a 5th connection waits in the kernel's listen backlog, unanswered, until
        # one closes (not refused with an error).
        streams = []
        fifth = None
        try:
            for i in range(4):
                s = connect(self.d.port, "127.0.0.%d" % (i + 2))
                s.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % self.d.port)
                got = wait_readable(s, 3.0)
                self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
                streams.append(s)
            fifth = connect(self.d.port, "127.0.0.6")
            fifth.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIsNone(wait_readable(fifth, 1.0), "served beyond max_connections")
            streams.pop().close()
            got = wait_readable(fifth, 5.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
        finally:
            for s in streams:
                s.close()
            if fifth is not None:
                fifth.close()
        self.assertHealthy()


class HeaderSizeTest(LimitTest):
    config = config_with(server="max_header_size = 2KiB")

    def test_headers_over_the_limit_are_431(self):
        ok = self.d.request("GET", "/healthz", headers={"X-Pad": "a" * 1500})
        self.assertEqual(ok[0], 200)
        big = self.d.request("GET", "/healthz", headers={"X-Pad": "a" * 3000})
        self.assertProblem(big, 431, "headers-too-large")
        many = {"X-Pad-%02d" % i: "b" * 60 for i in range(40)}
        self.assertProblem(self.d.request("GET", "/healthz", headers=many), 431,
                           "headers-too-large")
        self.assertProblem(self.d.post(body_of(), headers={"X-Pad": "a" * 3000}), 431,
                           "headers-too-large")
        self.assertProblem(self.d.request("GET", "/healthz?q=" + "c" * 3000), 431,
                           "headers-too-large")
        self.assertEqual(self.get_ok("/v1/events")["events"], [])
        self.assertHealthy()

    def test_huge_headers_are_refused_without_harm(self):
        # Far past the limit MHD's per-connection memory pool runs out before our check:
        # still a 431 (MHD's own page), or a closed connection.
        for size in (64 * 1024, 1024 * 1024):
            with self.subTest(size=size):
                s = connect(self.d.port)
                try:
                    try:
                        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * size +
                                  b"\r\n\r\n")
                    except OSError:
                        pass
                    got = wait_readable(s, 5)
                    self.assertIsNotNone(got, "no answer to a huge header")
                    if got:
                        self.assertTrue(got.startswith(b"HTTP/1.1 431"), got[:100])
                finally:
                    s.close()
        self.assertHealthy()


class RaisedHeaderSizeTest(LimitTest):
    config = config_with(server="max_header_size = 64KiB")

    def test_a_header_within_a_raised_limit_is_accepted(self):
        # MHD's per-connection memory pool is sized from max_header_size, so a raised
        # limit is really reached (the default pool holds about 40 KiB).
        resp = self.d.request("GET", "/healthz", headers={"X-Pad": "a" * 48 * 1024})
        self.assertEqual(resp[0], 200, resp[2][:200])


class BodySizeTest(LimitTest):
    config = config_with(server="max_body = 4KiB")

    def test_bodies_over_max_body_are_413(self):
        self.post_ok(padded_json(4096))
        doc = self.assertProblem(self.d.post(padded_json(4097)), 413, "body-too-large")
        self.assertEqual(doc["title"], "Content Too Large")  # RFC 9110's, as the status line
        # A declared length over the limit is refused before a byte of body is sent (to a
        # client that asks first), and a body sent anyway is read and dropped, and
        # answered at its end: a client that writes it all before it reads got EPIPE.
        status, hdrs, body = self.d.raw(post_head(length=5000, extra=b"Expect: 100-continue\r\n")
                                        + b"\r\n", timeout=5)
        self.assertProblem((status, hdrs, body), 413, "body-too-large")
        status, hdrs, body = self.d.raw(post_head(length=5000) + b"\r\n" + b" " * 5000,
                                        timeout=5)
        self.assertProblem((status, hdrs, body), 413, "body-too-large")
        # Chunked: no length to check up front; refused once the body passes the limit.
        data = padded_json(6000)
        chunked = b"".join(b"%x\r\n" % len(data[i:i + 1000]) + data[i:i + 1000] + b"\r\n"
                           for i in range(0, len(data), 1000)) + b"0\r\n\r\n"
        status, hdrs, body = self.d.raw(post_head(extra=b"Transfer-Encoding: chunked\r\n") +
                                        b"\r\n" + chunked, timeout=10)
        self.assertProblem((status, hdrs, body), 413, "body-too-large")
        self.assertEqual(len(self.get_ok("/v1/events")["events"]), 1)
        self.assertHealthy()

    def test_a_chunked_body_over_max_body_in_one_chunk_is_413(self):
        # security.md: "A chunked body is read up to max_body and answered 413 once it
        # ends. A sender that goes on past twice max_body is disconnected." The same
        # 6000 bytes as above (under twice the 4 KiB), sent as one chunk as most clients
        # do, were cut off without an answer: the whole piece libmicrohttpd handed over,
        # the part under max_body too, was counted as dropped. Nothing counted it either
        # (hookrelay_refused_total, hookrelay_requests_total): a lost webhook unseen.
        data = padded_json(6000)
        chunked = b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n"
        try:
            answer = self.d.raw(post_head(extra=b"Transfer-Encoding: chunked\r\n") + b"\r\n" +
                                chunked, timeout=10)
        except (http.client.HTTPException, OSError) as e:
            self.fail("no answer to a chunked body of 6000 bytes (max_body = 4KiB): %r" % e)
        self.assertProblem(answer, 413, "body-too-large")
        self.assertEqual(metric_reaches(self.d, 'hookrelay_refused_total{source="default"}', 1), 1)


class DefaultBodyLimitsTest(LimitTest):
    """The default limits take any body under max_body whole: SPEC 8 says a PailFlow
    transcript_text can be large (1-5 MB), and PailFlow never retries, so a 413 for one
    long string in an 8 MiB body lost the session. max_string was 4 MiB."""

    def test_a_five_megabyte_transcript_in_one_string_is_stored(self):
        doc = payload_json("botplatform.session_complete.json")
        doc["room_name"] = fresh_id("room-")
        doc["transcript_text"] = "User: blah blah. " * (5 * 1024 * 1024 // 17)
        body = dumps(doc)
        self.assertGreater(len(body), 5 * 1024 * 1024)
        ack = self.post_ok(body, "default")
        stored = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(stored["payload"]["transcript_text"], doc["transcript_text"])


class SlowClientTest(LimitTest):
    config = config_with(server="request_timeout = 2s")
    TIMEOUT = 2.0
    CUT_BY = 4.0  # the sweeper looks once a second; some slack for a loaded machine

    def trickle(self, head, drip, results, name):
        """Send `head`, then one byte of `drip` every 0.3 s; record when the server
        closed the connection and what it sent."""
        try:
            self._trickle(head, drip, results, name)
        except Exception as e:  # reported by the test, not lost in the thread
            results[name] = ("error", repr(e).encode())

    def _trickle(self, head, drip, results, name):
        t0 = time.monotonic()
        s = connect(self.d.port, timeout=10)
        try:
            if head:
                s.sendall(head)
            for i in range(40):
                got = wait_readable(s, 0.3)
                if got is not None:
                    results[name] = (time.monotonic() - t0, got)
                    return
                try:
                    if drip:
                        s.sendall(drip[i % len(drip):i % len(drip) + 1])
                except OSError:
                    results[name] = (time.monotonic() - t0, b"")
                    return
            results[name] = (None, b"")
        finally:
            s.close()

    def idle_after_one_request(self, results, name):
        c = http_conn(self.d.port, timeout=10)
        try:
            status = get_status(c)
            if status != 200:
                results[name] = ("error", b"status %d" % status)
                return
            t0 = time.monotonic()
            got = wait_readable(c.sock, 8)
            results[name] = (time.monotonic() - t0 if got is not None else None, got or b"")
        except Exception as e:
            results[name] = ("error", repr(e).encode())
        finally:
            c.close()

    def test_slow_clients_are_cut_off_while_others_are_served(self):
        results = {}
        pad = b"X-Slow: " + b"s" * 200 + b"\r\n"
        jobs = [
            threading.Thread(target=self.trickle, args=(
                b"", b"POST /hooks/default HTTP/1.1\r\nHost: x\r\n" + pad, results, "headers")),
            threading.Thread(target=self.trickle, args=(
                post_head(length=500) + b"\r\n", padded_json(500), results, "body")),
            threading.Thread(target=self.trickle, args=(b"", b"", results, "silent")),
            threading.Thread(target=self.idle_after_one_request, args=(results, "keep-alive")),
        ]
        for j in jobs:
            j.start()
        served, t0 = 0, time.monotonic()
        while any(j.is_alive() for j in jobs) and time.monotonic() - t0 < 15:
            self.post_ok(body_of())
            self.assertEqual(self.d.request("GET", "/healthz")[0], 200)
            served += 1
            time.sleep(0.1)
        for j in jobs:
            j.join(15)
        self.assertGreaterEqual(served, 5, "normal clients kept being served")
        for name in ("headers", "body", "silent", "keep-alive"):
            with self.subTest(client=name):
                when, got = results.get(name, ("error", b"no result"))
                self.assertNotEqual(when, "error", "%s: %r" % (name, got))
                self.assertIsNotNone(when, "%s: never cut off" % name)
                self.assertEqual(got, b"", "%s: got an answer: %r" % (name, got[:100]))
                self.assertGreaterEqual(when, self.TIMEOUT - 0.5, name)
                self.assertLessEqual(when, self.CUT_BY, name)
        self.assertEqual(len(self.get_ok("/v1/events?limit=500")["events"]), served)
        self.assertHealthy()

    def test_a_slow_request_that_arrives_whole_in_time_is_served(self):
        body = body_of()
        s = connect(self.d.port, timeout=10)
        try:
            head = post_head(length=len(body)) + b"\r\n"
            for piece in (head[:20], head[20:], body[:50], body[50:]):
                s.sendall(piece)
                time.sleep(0.35)
            got = wait_readable(s, 5)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
        finally:
            s.close()
        self.assertEqual(len(self.get_ok("/v1/events")["events"]), 1)


if __name__ == "__main__":
    unittest.main()
