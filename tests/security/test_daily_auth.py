"""Issue 16: the Daily source (docs/security.md "Daily").

- 16.1  Daily's verification probe {"test":"test"} is answered 200 without a valid
        signature (Daily may send it before the webhook's hmac is known). It must not
        become a way in: nothing but the exact probe skips the signature, and the probe
        is never stored, forwarded or kept as a rejection.
- 16.2  A captured signed Daily event replayed with a fresh delivery-id header (or the
        same event re-signed by Daily with a later event_ts) is the same event: the key
        is the envelope id inside the signed body, never a header on this source.
- 16.3  A captured signed request replayed after the tolerance is refused: the signed
        timestamp is in milliseconds (or seconds: up to 11 digits), stale in either.
- 16.4  The probe does not bypass allow_cidrs, and no secret reaches the log.
"""

import base64
import hashlib
import hmac
import os
import time
import unittest

import hrtest
from hrtest import Daemon, DaemonTest, dumps, fresh_id

SECRET = base64.b64encode(b"security-daily-webhook-hmac-0001").decode()

SOURCES = """
[source daily]
provider = daily
secret_file = {dir}/daily.secret
[source walled]
provider = daily
allow_cidrs = 192.0.2.0/24
secret_file = {dir}/daily.secret
[destination sink]
url = http://127.0.0.1:9/never
allow_private = true
"""


def signed(body, ts=None, secret=SECRET):
    ts = str(int(time.time() * 1000)) if ts is None else ts
    mac = hmac.new(base64.b64decode(secret), ts.encode() + b"." + body, hashlib.sha256)
    return {"X-Webhook-Timestamp": ts, "X-Webhook-Signature": base64.b64encode(mac.digest()).decode()}


class DailySecurityTest(DaemonTest):
    config = hrtest.config_with(sections=SOURCES)

    def setUp(self):
        self.d = Daemon(self.config)
        try:
            path = os.path.join(self.d.dir, "daily.secret")
            with open(path, "w") as f:
                f.write(SECRET + "\n")
            os.chmod(path, 0o600)
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def tearDown(self):
        log = self.d.log()
        super().tearDown()
        self.assertNotIn(SECRET, log)

    def stored(self):
        return self.d.paged("/v1/events", "events", limit=500)

    def test_16_1_only_the_exact_probe_skips_the_signature(self):
        attempts = [
            {"test": "test", "type": "meeting.started", "payload": {"room": "r"}},
            {"test": "test", "version": "1.0.0"},
            {"type": "meeting.started", "payload": {"test": "test"}, "id": "x", "event_ts": 1},
            [{"test": "test"}],
            {"test": "test", "test2": "test"},
        ]
        for doc in attempts:
            with self.subTest(body=doc):
                self.assertProblem(self.d.post(dumps(doc), "daily"), 401, "unauthorized")
        # Duplicate keys, a probe followed by more text, a padded body: not the probe.
        for raw in (b'{"test":"test","test":"x"}', b'{"test":"test"}{"type":"x"}',
                    b'{"test":"test"}' + b" " * 100):
            with self.subTest(raw=raw[:40]):
                got, _, _ = self.d.post(raw, "daily")
                self.assertIn(got, (400, 401))
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.d.paged("/v1/rejections", "rejections"), [])
        # The real probe: 200, and still nothing stored, nothing queued for the sink.
        self.assertOk(self.d.post(b'{"test":"test"}', "daily"))
        self.assertEqual(self.stored(), [])
        self.assertEqual(self.d.paged("/v1/deliveries", "deliveries"), [])

    def test_16_2_replays_with_fresh_headers_or_event_ts_are_one_event(self):
        doc = {"version": "1.0.0", "type": "participant.joined", "id": fresh_id("ptcpt-"),
               "payload": {"room": "r1", "session_id": "p1", "joined_at": time.time()},
               "event_ts": time.time()}
        body = dumps(doc)
        first = self.assertOk(self.d.post(body, "daily", headers=signed(body)))
        for i in range(3):
            h = signed(body)
            h.update({"webhook-id": "fresh-%d" % i, "svix-id": "fresh-%d" % i})
            again = self.assertOk(self.d.post(body, "daily", headers=h))
            self.assertTrue(again["duplicate"])
            self.assertEqual(again["id"], first["id"])
        resent = dumps(dict(doc, event_ts=doc["event_ts"] + 60))
        again = self.assertOk(self.d.post(resent, "daily", headers=signed(resent)))
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(len(self.stored()), 1)

    def test_16_3_a_captured_request_expires(self):
        body = dumps({"version": "1.0.0", "type": "meeting.started", "id": fresh_id("m-"),
                      "payload": {"room": "r2"}, "event_ts": time.time()})
        old = str(int(time.time() * 1000) - 10 * 60 * 1000)
        self.assertProblem(self.d.post(body, "daily", headers=signed(body, old)), 401)
        # In seconds (no source settles Daily's unit) it expires the same way.
        old_secs = str(int(time.time()) - 10 * 60)
        self.assertProblem(self.d.post(body, "daily", headers=signed(body, old_secs)), 401)
        self.assertEqual(self.stored(), [])

    def test_16_4_the_probe_does_not_pass_allow_cidrs(self):
        self.assertProblem(self.d.post(b'{"test":"test"}', "walled"), 401, "unauthorized")
        self.assertProblem(self.d.post(b'{"test":"test"}', "walled",
                                       headers=signed(b'{"test":"test"}')), 401)


if __name__ == "__main__":
    unittest.main()
