"""Issue 11 item 17: SSRF address ranges (docs/security.md, "### 17.").

A destination without allow_private is refused before connecting to loopback and
private blocks. These forms used to count as public: IPv4-compatible IPv6
(::a.b.c.d), 6to4 (2002::/16, embedding an IPv4 address), site-local fec0::/10,
local-use NAT64 64:ff9b:1::/48, and this host's own (non-loopback) addresses.
Every attempt to them now fails with "blocked: ..." and nothing connects.
"""

import json
import socket
import threading
import time
import unittest

from hrtest import Daemon, config_with, dumps, fresh_id, payload_json, sanitizer_reports
from sink import Sink


def host_address():
    """This host's address toward the outside (no packet is sent), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("8.8.8.8", 53))
        addr = s.getsockname()[0]
        return None if addr.startswith("127.") else addr
    except OSError:
        return None
    finally:
        s.close()


class SsrfRangesTest(unittest.TestCase):

    def setUp(self):
        self.sink = Sink()  # on 127.0.0.1: what the loopback forms would reach
        self.sink.server.handle_error = lambda request, address: None

    def tearDown(self):
        self.sink.stop()

    def test_embedded_and_deprecated_forms_and_own_addresses_are_blocked(self):
        port = self.sink.port
        urls = {
            "v4_compatible": "http://[::127.0.0.1]:%d/a" % port,
            "v4_compatible_public": "http://[::8.8.8.8]:%d/b" % port,
            "sixtofour_loopback": "http://[2002:7f00:1::1]:%d/c" % port,
            "sixtofour_metadata": "http://[2002:a9fe:a9fe::]:%d/d" % port,
            "site_local": "http://[fec0::1]:%d/e" % port,
            "local_nat64": "http://[64:ff9b:1::7f00:1]:%d/f" % port,
        }
        own = host_address()
        own_server = None
        if own is not None:
            # Something listening on the host's own address, counting connections.
            own_server = socket.socket()
            own_server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            own_server.bind((own, 0))
            own_server.listen(16)
            own_server.settimeout(0.05)
            urls["own_address"] = "http://%s:%d/g" % (own, own_server.getsockname()[1])
        accepted = []
        stop = threading.Event()

        def accept_loop():
            while own_server is not None and not stop.is_set():
                try:
                    c, addr = own_server.accept()
                    accepted.append(addr)
                    c.close()
                except socket.timeout:
                    continue
                except OSError:
                    return
        t = threading.Thread(target=accept_loop, daemon=True)
        t.start()
        sections = "".join("[destination %s]\nurl = %s\nconnect_timeout = 1s\n"
                           "retry_schedule = 1s\n" % (n, u) for n, u in urls.items())
        d = Daemon(config_with(sections=sections))
        try:
            d.start()
            status, _, data = d.post(dumps(payload_json("tavus.video.error.json")))
            self.assertEqual(status, 200, data)
            eid = json.loads(data)["id"]
            deadline = time.monotonic() + 20
            while True:
                status, doc = d.get_json("/v1/events/%s/deliveries" % eid)
                self.assertEqual(status, 200, doc)
                done = [x for x in doc["deliveries"] if x["attempts"] >= 1]
                if len(done) == len(urls):
                    break
                self.assertLess(time.monotonic(), deadline, doc)
                time.sleep(0.05)
            for x in doc["deliveries"]:
                with self.subTest(destination=x["destination"]):
                    self.assertEqual(x["status"], "failed", x)
                    self.assertTrue(x["last_error"].startswith("blocked: "), x)
                    self.assertIn("allow_private", x["last_error"])
            self.assertEqual(self.sink.received(), [])
            self.assertEqual(accepted, [], "something connected to this host's address")
        finally:
            stop.set()
            t.join(2)
            if own_server is not None:
                own_server.close()
            rc = d.stop()
            log = d.log()
            d.cleanup()
            self.assertEqual(rc, 0, log)
            self.assertEqual(sanitizer_reports(log), [], log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
