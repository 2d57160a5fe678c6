"""Connection slots (docs/security.md, defences 10 and 18).

10. Idle sockets from many addresses filled max_connections, and a legitimate
    webhook waited in the listen backlog until request_timeout cut them (29.5 s).
    Now the connection that has waited longest without sending a whole request
    makes room for a new one, and headers must arrive within header_timeout.
18. A /v1/stream client that went away held its slot until the next keepalive
    write failed (up to 15 s). Now the close is noticed within a fraction of a
    second.

Every wait is bounded; the file runs in about ten seconds.
"""

import json
import select
import socket
import time
import unittest

from hrtest import Daemon, DaemonTest, config_with, dumps, fresh_id, payload_json

SHUTDOWN = payload_json("tavus.conversation.system.shutdown.json")


def connect(port, addr="127.0.0.1", timeout=5):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(addr, 0))


def answer_within(sock, timeout):
    """The first bytes the server sends within `timeout`; b"" on close, None if silent."""
    r, _, _ = select.select([sock], [], [], timeout)
    if not r:
        return None
    try:
        return sock.recv(65536)
    except (ConnectionResetError, socket.timeout):
        return b""


def webhook_request(port):
    doc = dict(SHUTDOWN, conversation_id=fresh_id("c"))
    body = dumps(doc)
    return (b"POST /hooks/default HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (port, len(body)) + body)


class SlotFloodTest(DaemonTest):
    # Small caps so that the flood fits a test: 2 addresses x 64 idle sockets > 100 slots.
    config = config_with(server="max_connections = 100\nmax_connections_per_ip = 64")

    def test_webhook_answered_within_a_second_while_slots_are_flooded(self):
        idle = []
        try:
            for addr in ("127.0.0.2", "127.0.0.3"):
                for _ in range(64):
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    s.bind((addr, 0))
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", self.d.port))
                    idle.append(s)
            time.sleep(0.5)  # the flood is in: 100 slots held, the rest in the backlog
            legit = connect(self.d.port, "127.0.0.4")
            try:
                start = time.monotonic()
                legit.sendall(webhook_request(self.d.port))
                got = answer_within(legit, 1.0)
                took = time.monotonic() - start
            finally:
                legit.close()
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"),
                            "no answer within 1 s while flooded: %r" % (got,))
            print("answered in %.3f s with %d idle sockets against 100 slots" % (took, len(idle)))
        finally:
            for s in idle:
                s.close()
        status, _, text = self.d.request("GET", "/metrics")
        self.assertEqual(status, 200)
        evicted = [l for l in text.decode().splitlines()
                   if l.startswith("hookrelay_connections_evicted_total ")]
        self.assertTrue(evicted and int(evicted[0].split()[1]) > 0, evicted)
        self.assertHealthy()


class DescriptorLimitTest(unittest.TestCase):
    """The file descriptor limit under max_connections (an interactive shell's 1,024
    against the default 1,024 connections): accept() failed with EMFILE before the
    cap, so nothing was evicted; the acceptor spun on one CPU and logged the failure
    ten million times in 14 s, and a webhook waited until header_timeout cut the
    idle connections."""

    def test_a_flood_past_the_descriptor_limit_evicts_as_at_the_cap(self):
        d = Daemon(config_with(server="max_connections_per_ip = 0"),
                   wrapper=["prlimit", "--nofile=300:300"])
        d.start()
        idle = []
        try:
            for n in range(400):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind(("127.0.0.%d" % (2 + n % 4), 0))
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", d.port))
                idle.append(s)
            time.sleep(1.0)
            legit = connect(d.port, "127.0.0.9")
            try:
                legit.sendall(webhook_request(d.port))
                got = answer_within(legit, 1.0)
            finally:
                legit.close()
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"),
                            "no answer within 1 s past the descriptor limit: %r" % (got,))
            self.assertLess(d.log().count("accept:"), 5, d.log()[-2000:])
            status, _, text = d.request("GET", "/metrics")
            self.assertEqual(status, 200)
            evicted = [l for l in text.decode().splitlines()
                       if l.startswith("hookrelay_connections_evicted_total ")]
            self.assertTrue(evicted and int(evicted[0].split()[1]) >= 400 - 150, evicted)
            self.assertIn("the file descriptor limit is 300: at most 150 connections", d.log())
        finally:
            for s in idle:
                s.close()
            rc = d.stop()
            log = d.log()
            d.cleanup()
        self.assertEqual(rc, 0, log)


class HeaderDeadlineTest(DaemonTest):
    config = config_with(server="header_timeout = 1s\nrequest_timeout = 30s")

    def test_headers_must_arrive_within_header_timeout(self):
        slow = connect(self.d.port)
        try:
            slow.sendall(b"POST /hooks/default HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            start = time.monotonic()
            got = answer_within(slow, 5.0)
            took = time.monotonic() - start
        finally:
            slow.close()
        self.assertEqual(got, b"", "a client without its headers after 1 s must be cut off")
        self.assertLess(took, 3.5, "cut off after %.1f s; header_timeout is 1 s" % took)

    def test_idle_keep_alive_goes_after_header_timeout(self):
        s = connect(self.d.port)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertTrue(answer_within(s, 3.0).startswith(b"HTTP/1.1 200"))
            start = time.monotonic()
            got = answer_within(s, 5.0)
            took = time.monotonic() - start
        finally:
            s.close()
        self.assertEqual(got, b"")
        self.assertLess(took, 3.5)

    def test_a_body_may_take_until_request_timeout(self):
        body = dumps(dict(SHUTDOWN, conversation_id=fresh_id("c")))
        s = connect(self.d.port)
        try:
            s.sendall(b"POST /hooks/default HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            for i in range(3):  # headers are in: 3 s of a slow body outlive header_timeout
                s.sendall(body[i:i + 1])
                self.assertIsNone(answer_within(s, 1.0), "cut off while the body was coming")
            s.sendall(body[3:])
            got = answer_within(s, 5.0)
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
        finally:
            s.close()


class ClosedStreamTest(DaemonTest):
    # Streams are requests being answered: they are never evicted, so with three
    # open a fourth connection waits for a slot.
    config = config_with(server="max_connections = 3\nmax_connections_per_ip = 0")

    def open_stream(self):
        s = connect(self.d.port)
        s.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % self.d.port)
        got = answer_within(s, 3.0)
        self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
        return s

    def test_a_closed_stream_frees_its_slot_at_once(self):
        streams = [self.open_stream() for _ in range(3)]
        waiting = None
        try:
            waiting = connect(self.d.port)
            waiting.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            self.assertIsNone(answer_within(waiting, 0.5), "served beyond max_connections")
            streams.pop().close()
            start = time.monotonic()
            got = answer_within(waiting, 5.0)
            took = time.monotonic() - start
            self.assertTrue(got and got.startswith(b"HTTP/1.1 200"), got)
            self.assertLess(took, 1.0, "the closed stream held its slot for %.1f s" % took)
        finally:
            for s in streams:
                s.close()
            if waiting is not None:
                waiting.close()


if __name__ == "__main__":
    unittest.main()
