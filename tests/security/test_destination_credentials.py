"""Issue 11 item 14: credentials in destination URLs (docs/security.md, "### 14.").

GET /v1/destinations used to show each destination URL whole, with its userinfo
and query (`?token=...`). The API (and hookctl, which shows what it answers) now
shows the URL with the user name, the password, every query value and a token in the
path replaced by REDACTED; the log never had them and still has not, even at debug level. The
downstream still gets the real URL.
"""

import json
import time
import unittest

from hrtest import Daemon, config_with, dumps, payload_json, sanitizer_reports
from sink import Sink

PATH_TOKEN = "aB3dE5gH7jK9mN1pQ3sT5vX7"  # as Slack's /services/T../B../TOKEN
# Each with a character no event id has (ids are Crockford base32: no i, l, o, u, _),
# or long enough: "k3y" once turned up inside a random id.
SECRETS = ("alice", "s3cret", "t0ps3cret", "my_k3y", PATH_TOKEN)


class DestinationCredentialsTest(unittest.TestCase):

    def test_urls_are_shown_without_credentials(self):
        sink = Sink()
        url = ("http://alice:s3cret@127.0.0.1:%d/h/%s?token=t0ps3cret&api_key=my_k3y&v=2#frag"
               % (sink.port, PATH_TOKEN))
        d = Daemon(config_with(sections="[destination crm]\nurl = %s\nallow_private = true\n" % url),
                   extra_args=["--log-level", "debug"])
        try:
            d.start()
            status, _, data = d.post(dumps(payload_json("tavus.video.error.json")))
            self.assertEqual(status, 200, data)
            eid = json.loads(data)["id"]
            got = sink.wait_count(1)
            # The downstream is called with the real URL.
            self.assertEqual(got[0].path, "/h/%s?token=t0ps3cret&api_key=my_k3y&v=2" % PATH_TOKEN)
            self.assertTrue(got[0].headers["authorization"].startswith("Basic "))
            shown = ("http://REDACTED@127.0.0.1:%d/h/REDACTED?token=REDACTED&api_key=REDACTED"
                     "&v=REDACTED" % sink.port)
            for path in ("/v1/destinations", "/v1/destinations/crm",
                         "/v1/events/%s/deliveries" % eid, "/metrics"):
                status, _, body = d.request("GET", path)
                self.assertEqual(status, 200, (path, body[:300]))
                text = body.decode()
                for secret in SECRETS:
                    self.assertNotIn(secret, text, path)
            status, doc = d.get_json("/v1/destinations")
            self.assertEqual(doc["destinations"][0]["url"], shown)
            status, doc = d.get_json("/v1/destinations/crm")
            self.assertEqual(doc["url"], shown)
        finally:
            rc = d.stop()
            log = d.log()
            d.cleanup()
            sink.stop()
        self.assertEqual(rc, 0, log)
        self.assertEqual(sanitizer_reports(log), [], log)
        for secret in SECRETS:
            self.assertNotIn(secret, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
