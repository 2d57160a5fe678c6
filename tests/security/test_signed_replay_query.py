"""A captured signed request, replayed with query parameters added (docs/security.md,
"5. Dedup keys a signature does not cover", and "22. ... captured Daily requests").

The signature covers the body (and a timestamp), never the callback URL's query: so
a signed source leaves the query out of the dedup key, and a replay with a parameter
added is the duplicate of the first, storing nothing. But a replay with more than 64
parameters never reaches dedup: hooks.c hook_handle keeps it as a rejection
(reject_too_many_parameters) before any key is computed, and a rejection claims no
key. Each replay of one genuine signed request stores one more body. On a
provider = daily source each is answered 200 and is "acknowledged", outside
[storage] rejections_max: replays within tolerance pile up without bound; on an
auth = hmac (body) source, whose requests never go stale, they can be replayed at
any time and push genuine rejections out past rejections_max.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import unittest

import hrtest
from hrtest import Daemon, fresh_id

DAILY_HMAC = base64.b64encode(b"daily-replay-test-key-0123456789ab").decode()
GH_SECRET = "gh-replay-test-secret-0123456789abcdef"

SOURCES = """
[source dly]
provider = daily
secret_file = {dir}/dly.secret
[source gh]
auth = hmac
hmac_header = X-Hub-Signature-256
hmac_prefix = sha256=
secret_file = {dir}/gh.secret
"""

MANY = "?" + "&".join("p%d=1" % i for i in range(65))


def daily_body():
    return json.dumps({"version": "1.0.0", "type": "meeting.started", "id": fresh_id("met-sta-"),
                       "payload": {"room": "r1", "meeting_id": fresh_id("m"),
                                   "start_ts": 1718000000},
                       "event_ts": 1718000000.1}).encode()


def daily_headers(body):
    ts = str(int(time.time() * 1000))
    mac = hmac.new(base64.b64decode(DAILY_HMAC), ts.encode() + b"." + body, hashlib.sha256)
    return {"X-Webhook-Timestamp": ts, "X-Webhook-Signature": base64.b64encode(mac.digest()).decode()}


class SignedReplayWithQueryTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(hrtest.config_with(sections=SOURCES))
        for name, text in (("dly.secret", DAILY_HMAC), ("gh.secret", GH_SECRET)):
            path = os.path.join(cls.d.dir, name)
            with open(path, "w") as f:
                f.write(text + "\n")
            os.chmod(path, 0o600)
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def rejections(self, source):
        status, doc = self.d.get_json("/v1/rejections?limit=500&source=" + source)
        self.assertEqual(status, 200, doc)
        return doc["rejections"]

    def test_a_daily_request_replayed_with_many_parameters_stores_nothing(self):
        body = daily_body()
        headers = daily_headers(body)
        status, _, answer = self.d.post(body, "dly", headers)
        self.assertEqual(status, 200, answer)
        self.assertFalse(json.loads(answer)["duplicate"])
        # The same captured request, with a parameter added: a duplicate, as documented.
        status, _, answer = self.d.post(body, "dly?x=1", headers)
        self.assertEqual((status, json.loads(answer).get("duplicate")), (200, True), answer)
        # The same again, with 65 parameters: each replay is stored anew.
        answers = [self.d.post(body, "dly" + MANY, headers) for _ in range(5)]
        kept = self.rejections("dly")
        self.assertEqual(len(kept), 0,
                         "5 replays of one signed Daily request (65 query parameters) stored %d "
                         "rejections, answered %s" % (len(kept), sorted({a[0] for a in answers})))

    def test_an_hmac_request_replayed_with_many_parameters_stores_nothing(self):
        body = json.dumps({"event": "replayed", "id": fresh_id("e")}).encode()
        sig = "sha256=" + hmac.new(GH_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": sig}
        self.assertEqual(self.d.post(body, "gh", headers)[0], 200)
        self.assertEqual(json.loads(self.d.post(body, "gh?x=1", headers)[2])["duplicate"], True)
        answers = [self.d.post(body, "gh" + MANY, headers)[0] for _ in range(5)]
        kept = self.rejections("gh")
        self.assertEqual(len(kept), 0,
                         "5 replays of one signed request (65 query parameters) stored %d "
                         "rejections (answers %s)" % (len(kept), answers))


if __name__ == "__main__":
    unittest.main()
