"""Request smuggling (docs/security.md, defence 8).

A reverse proxy on this host forwards only /hooks/ and adds X-Forwarded-For,
so the read API (loopback clients only) is out of reach through it. But when
the proxy and hookrelay disagree on where a request ends, the bytes the proxy
took for a body reach hookrelay as a second request, without X-Forwarded-For:
a loopback client, served the API. libmicrohttpd read by Transfer-Encoding
when Content-Length was there too, by the first of two Content-Lengths, and
took "Transfer-Encoding :" for another header. Each such request is now
answered 400 and its connection closed, so nothing after it is read.

Each case plays the proxy with a raw socket: it sends what a proxy that reads
the other way would forward as one request.
"""

import json
import socket
import time
import unittest

from hrtest import DaemonTest, dumps, fresh_id, payload_json


def read_all(sock, timeout=3.0):
    """Everything the server sends until it closes (or `timeout` of silence)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


class SmugglingTest(DaemonTest):
    def setUp(self):
        super().setUp()
        doc = dict(payload_json("tavus.conversation.system.shutdown.json"),
                   conversation_id=fresh_id("c"))
        self.assertEqual(self.d.post(doc)[0], 200)  # an event the smuggled GET would list

    def smuggled_get(self):
        return (b"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % self.d.port)

    def send_as_proxy(self, head, body):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        try:
            s.sendall(head + body)
            return read_all(s)
        finally:
            s.close()

    def assertRefusedAlone(self, got, what):
        answers = got.count(b"HTTP/1.1 ")
        self.assertEqual(answers, 1, "%s: %d answers: %r" % (what, answers, got[:600]))
        head, _, body = got.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 400"), "%s: %r" % (what, got[:300]))
        self.assertIn(b"connection: close", head.lower(), what)
        self.assertIn(b"application/problem+json", head.lower(), what)
        self.assertNotIn(b'"events"', got, "%s: the smuggled request reached the API" % what)
        return json.loads(body)

    def proxy_head(self, framing):
        return (b"POST /hooks/default HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                b"X-Forwarded-For: 203.0.113.9\r\nContent-Type: application/json\r\n"
                % self.d.port + framing + b"\r\n")

    def test_content_length_and_transfer_encoding(self):
        body = b"0\r\n\r\n" + self.smuggled_get()
        head = self.proxy_head(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(body))
        doc = self.assertRefusedAlone(self.send_as_proxy(head, body), "CL + TE")
        self.assertEqual(doc["header"], "Transfer-Encoding")

    def test_two_different_content_lengths(self):
        body = self.smuggled_get()
        head = self.proxy_head(b"Content-Length: 0\r\nContent-Length: %d\r\n" % len(body))
        doc = self.assertRefusedAlone(self.send_as_proxy(head, body), "CL 0 + CL n")
        self.assertEqual(doc["header"].lower(), "content-length")

    def test_transfer_encoding_with_a_blank_before_the_colon(self):
        body = b"0\r\n\r\n" + self.smuggled_get()
        head = self.proxy_head(b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n")
        self.assertRefusedAlone(self.send_as_proxy(head, body), "Transfer-Encoding :")

    def test_other_transfer_encodings(self):
        for te in (b"gzip, chunked", b"chunked, identity", b"identity", b"xchunked"):
            with self.subTest(te=te):
                body = b"0\r\n\r\n" + self.smuggled_get()
                head = self.proxy_head(b"Transfer-Encoding: " + te + b"\r\n")
                self.assertRefusedAlone(self.send_as_proxy(head, body), te.decode())

    def test_two_transfer_encoding_fields(self):
        body = b"0\r\n\r\n" + self.smuggled_get()
        head = self.proxy_head(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")
        self.assertRefusedAlone(self.send_as_proxy(head, body), "TE twice")

    def test_transfer_encoding_in_http_1_0(self):
        body = b"0\r\n\r\n" + self.smuggled_get()
        head = self.proxy_head(b"Transfer-Encoding: chunked\r\n").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
        got = self.send_as_proxy(head, body)
        self.assertTrue(got.startswith(b"HTTP/1.1 400"), got[:200])
        self.assertNotIn(b'"events"', got)

    def test_content_length_not_a_number(self):
        for cl in (b"+5", b"5, 5", b" 0x5", b"5 5"):
            with self.subTest(cl=cl):
                head = self.proxy_head(b"Content-Length: " + cl + b"\r\n")
                got = self.send_as_proxy(head, b"{}\r\n")
                self.assertTrue(got.startswith(b"HTTP/1.1 400"), got[:200])

    def test_well_framed_requests_still_pass(self):
        # Identical repeated Content-Lengths are one length; chunked alone is fine.
        doc = dumps(dict(payload_json("tavus.conversation.system.shutdown.json"),
                         conversation_id=fresh_id("c")))
        head = self.proxy_head(b"Content-Length: %d\r\nContent-Length: %d\r\nConnection: close\r\n"
                               % (len(doc), len(doc)))
        got = self.send_as_proxy(head, doc)
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:300])
        doc2 = dumps(dict(payload_json("tavus.conversation.system.shutdown.json"),
                          conversation_id=fresh_id("c")))
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(doc2), doc2)
        got = self.send_as_proxy(
            self.proxy_head(b"Transfer-Encoding: chunked\r\nConnection: close\r\n"), chunked)
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:300])


if __name__ == "__main__":
    unittest.main()
