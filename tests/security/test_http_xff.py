"""allow_cidrs through X-Forwarded-For (docs/security.md, defence 2).

X-Forwarded-For fields were joined into a 1,024-byte buffer and silently cut:
a client part of exactly 1,023 bytes ending in an allowed address pushed out
the real client that the trusted proxy appended (on the same line or on a
second one), and the request was let in. Now every field is read whole, in
order, right to left; past HR_XFF_MAX (64) addresses the request is refused.
"""

import socket
import unittest

from hrtest import DaemonTest, config_with, dumps, fresh_id, payload_json

CONFIG = config_with(sections="""
[source guarded]
allow_cidrs = 10.0.0.0/8
trusted_proxies = 127.0.0.1
""")


class ForwardedForTest(DaemonTest):
    config = CONFIG

    def post(self, xff_lines):
        body = dumps(dict(payload_json("tavus.conversation.system.shutdown.json"),
                          conversation_id=fresh_id("c")))
        head = (b"POST /hooks/guarded HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n" % (self.d.port, len(body)))
        for line in xff_lines:
            head += b"X-Forwarded-For: " + line + b"\r\n"
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        try:
            s.sendall(head + b"\r\n" + body)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        return int(data.split(b" ", 2)[1])

    @staticmethod
    def spoof(length=1023, allowed=b"10.0.0.5"):
        """`length` bytes of client-written X-Forwarded-For ending in `allowed` (the
        left part is never read: the walk stops at the first address from the right)."""
        tail = b", " + allowed
        return b"x" * (length - len(tail)) + tail

    def test_a_long_client_part_hides_no_second_field(self):
        self.assertEqual(self.post([self.spoof(), b"203.0.113.7"]), 401)

    def test_a_long_client_part_hides_no_entry_on_the_same_line(self):
        self.assertEqual(self.post([self.spoof() + b", 203.0.113.7"]), 401)
        self.assertEqual(self.post([self.spoof(1022) + b", 203.0.113.7"]), 401)

    def test_too_many_entries_are_refused_not_cut(self):
        many = b", ".join(b"10.0.0.%d" % (i % 250 + 1) for i in range(65))
        self.assertEqual(self.post([many]), 401)

    def test_the_real_client_is_still_let_in(self):
        self.assertEqual(self.post([b"198.51.100.1, 10.0.0.5"]), 200)
        self.assertEqual(self.post([self.spoof(2000, b"203.0.113.7"), b"10.0.0.6"]), 200)
        self.assertEqual(self.post([b"203.0.113.7"]), 401)
        self.assertIn("refused a request from 203.0.113.7", self.d.log())  # before the 401


if __name__ == "__main__":
    unittest.main()
