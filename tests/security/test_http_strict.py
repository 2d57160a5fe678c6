"""Lax HTTP and paths (docs/security.md, defences 16, 20 and the path part of 21).

libmicrohttpd took a NUL or a CR inside a header value, no Host or two, a bare
LF as a line end, and a %00 in the path or query that cut the source or token
short: /hooks/tok/<token>%00junk authenticated. Paths were decoded before
routing, so /v1/%65vents reached the API past a proxy that denies /v1/, and
/hooks/default/.. was a webhook. Each is now a 400 problem, and the connection
is closed; well-formed requests are untouched.
"""

import json
import os
import socket
import time
import unittest

from hrtest import Daemon, DaemonTest, config_with, dumps, fresh_id, payload_json

TOKEN = "strict-token-7c1e9a0b5d3f"
CONFIG = config_with(sections="""
[source tok]
auth = token
secret_file = {dir}/tok.secret
""")


def read_answer(sock, timeout=3.0):
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep and b"content-length:" in head.lower():
            n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(body) >= n:
                break
    return data


class StrictTest(DaemonTest):
    def setUp(self):
        self.d = Daemon(CONFIG)
        try:
            with open(os.path.join(self.d.dir, "tok.secret"), "w") as f:
                f.write(TOKEN + "\n")
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def raw(self, data):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        try:
            s.sendall(data)
            return read_answer(s)
        finally:
            s.close()

    def body(self):
        return dumps(dict(payload_json("tavus.conversation.system.shutdown.json"),
                          conversation_id=fresh_id("c")))

    def post(self, target, extra=b"", host=None, version=b"HTTP/1.1", body=None):
        body = self.body() if body is None else body
        host = b"Host: 127.0.0.1:%d\r\n" % self.d.port if host is None else host
        return self.raw(b"POST " + target + b" " + version + b"\r\n" + host +
                        b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body) +
                        extra + b"\r\n" + body)

    def get(self, target, extra=b"", host=None):
        host = b"Host: 127.0.0.1:%d\r\n" % self.d.port if host is None else host
        return self.raw(b"GET " + target + b" HTTP/1.1\r\n" + host + extra + b"\r\n")

    def assertBad(self, got, what, header=None):
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 400"), "%s: %r" % (what, got[:300]))
        self.assertIn(b"application/problem+json", head.lower(), what)
        self.assertIn(b"connection: close", head.lower(), what)
        doc = json.loads(body)
        self.assertEqual(doc["type"], "urn:hookrelay:problem:bad-request", what)
        if header is not None:
            self.assertEqual(doc.get("header", "").lower(), header.lower(), what)
        return doc

    def assertStatus(self, got, status, what):
        self.assertTrue(got.startswith(b"HTTP/1.1 %d" % status), "%s: %r" % (what, got[:300]))

    def stored(self):
        return self.get_ok("/v1/events?limit=500")["events"]

    # ---- 16: header lines ----
    def test_nul_in_a_header_value(self):
        self.assertBad(self.post(b"/hooks/default", b"X-Note: a\x00b\r\n"), "NUL")
        self.assertBad(self.post(b"/hooks/default", b"X-Forwarded-For: 1.2.3.4\x00, 5.6.7.8\r\n"),
                       "NUL in X-Forwarded-For")

    def test_cr_in_a_header_value(self):
        self.assertBad(self.post(b"/hooks/default", b"X-Note: a\rb\r\n"), "CR", "X-Note")
        self.assertBad(self.post(b"/hooks/default", b"X-Note: a\x01b\r\n"), "control char")

    def test_host_missing_or_twice(self):
        self.assertBad(self.post(b"/hooks/default", host=b""), "no Host", "Host")
        self.assertBad(self.post(b"/hooks/default", host=b"", version=b"HTTP/1.0"),
                       "no Host, HTTP/1.0", "Host")
        two = b"Host: 127.0.0.1:%d\r\nHost: evil.example\r\n" % self.d.port
        self.assertBad(self.post(b"/hooks/default", host=two), "two Hosts", "Host")
        self.assertBad(self.post(b"/hooks/default", host=b"Host:\r\n"), "empty Host", "Host")

    def test_bare_lf(self):
        body = self.body()
        cases = {
            "after the request line": b"POST /hooks/default HTTP/1.1\nHost: x\r\n",
            "after a header": b"POST /hooks/default HTTP/1.1\r\nHost: x\nX-A: b\r\n",
            "hiding a header": b"POST /hooks/default HTTP/1.1\r\nHost: x\r\nX-A: b\nX-B: c\r\n",
        }
        for what, head in cases.items():
            with self.subTest(what=what):
                got = self.raw(head + b"Content-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n" % len(body) + body)
                self.assertBad(got, what)
        got = self.raw(b"POST /hooks/default HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                       b"\r\nContent-Length: %d\r\n\n" % len(body) + body)
        self.assertBad(got, "bare LF ending the header section")

    def test_obs_fold(self):
        self.assertBad(self.post(b"/hooks/default", b"X-Note: a\r\n b\r\n"), "obs-fold")

    def test_nothing_refused_was_stored(self):
        self.post(b"/hooks/default", b"X-Note: a\x00b\r\n")
        self.post(b"/hooks/default", b"X-Note: a\rb\r\n")
        self.assertEqual(self.stored(), [])

    # ---- 16: NUL in the target ----
    def test_encoded_nul_cuts_no_token(self):
        for target in (b"/hooks/tok/" + TOKEN.encode() + b"%00junk",
                       b"/hooks/tok?token=" + TOKEN.encode() + b"%00junk",
                       b"/hooks/tok%00x/" + TOKEN.encode()):
            with self.subTest(target=target):
                self.assertBad(self.post(target), target.decode())
        # raw NUL in the request line
        self.assertBad(self.post(b"/hooks/tok/" + TOKEN.encode() + b"\x00junk"), "raw NUL")
        self.assertEqual(self.stored(), [])
        # the token itself still works, in both forms
        self.assertStatus(self.post(b"/hooks/tok/" + TOKEN.encode()), 200, "path token")
        self.assertStatus(self.post(b"/hooks/tok?token=" + TOKEN.encode()), 200, "query token")

    # ---- 20 and 21: paths in normal form only ----
    def test_dot_segments(self):
        for target in (b"/hooks/default/..", b"/hooks/default/.", b"/hooks/./default",
                       b"/hooks/x/../default", b"/hooks/default/%2e%2e", b"/hooks/default/%2E"):
            with self.subTest(target=target):
                self.assertBad(self.post(target), target.decode())
        for target in (b"/v1/../v1/events", b"/hooks/../v1/events", b"/v1/./events"):
            with self.subTest(target=target):
                self.assertBad(self.get(target), target.decode())
        self.assertEqual(self.stored(), [])

    def test_encoded_unreserved_characters(self):
        for target in (b"/v1/%65vents", b"/v1/%65VENTS", b"/%76%31/events", b"/v1/events%2Fx",
                       b"/v1%2fevents"):
            with self.subTest(target=target):
                self.assertBad(self.get(target), target.decode())
        self.assertBad(self.post(b"/hooks/%64efault"), "/hooks/%64efault")

    def test_characters_that_need_encoding(self):
        for target in (b"/v1/events\\x", b"/v1/events\"", b"/v1/ev%zzents", b"/v1/ev%4",
                       b"*", b"http://127.0.0.1/v1/events"):
            with self.subTest(target=target):
                self.assertBad(self.get(target), target.decode())

    def test_well_formed_requests_are_untouched(self):
        # blanks around values, an empty value, a tab, case, a query with escapes
        extra = (b"x-note:   spaced out   \r\nX-Empty:\r\nX-Tab:\ta\tb\r\n"
                 b"user-agent: Tavus/1.0 (+https://tavus.io)\r\n")
        self.assertStatus(self.post(b"/hooks/default?user_id=42&x=%2F%20y", extra), 200, "post")
        self.assertStatus(self.get(b"/v1/events?limit=5"), 200, "get")
        self.assertStatus(self.get(b"/healthz", host=b"Host: localhost\r\n"), 200, "healthz")
        # reserved characters may be encoded in a path token segment
        self.assertStatus(self.post(b"/hooks/tok/" + TOKEN.encode()), 200, "token")
        self.assertStatus(self.post(b"/hooks/tok/%21" + TOKEN.encode()), 401, "other token")


if __name__ == "__main__":
    unittest.main()
