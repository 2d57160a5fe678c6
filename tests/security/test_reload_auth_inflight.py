"""A reload while a webhook's body is on its way (docs/security.md, "Where secrets
come from", Rotation): "a request to a source the reload gave another `auth`" is
refused 401, and "a request to a source the reload removed is answered 404
`unknown-source`, as one begun after the reload is".

Both held only for the signature modes. A request to an `auth = none` (or token,
basic) source was marked authenticated on its headers (hooks.c hook_begin) and
hook_handle never looked at the configuration in force again: an operator who
closed an open source (auth = none -> hmac), or removed it, by a reload still had
the bodies that were on their way stored, for up to request_timeout after the
reload, without any credential (review RS40).
"""

import hashlib
import hmac
import http.client
import json
import os
import socket
import time
import unittest

import hrtest
from hrtest import Daemon, dumps, fresh_id, payload_json

SECRET = "reload-closes-this-source-0123456789abcdef"

OPEN = """
[source open]
provider = auto
"""

CLOSED = """
[source open]
provider = auto
auth = hmac
hmac_header = X-Signature
secret_file = {dir}/open.secret
"""

FENCED = """
[source open]
provider = auto
allow_cidrs = 10.0.0.0/8
"""

TOKENED = """
[source open]
provider = auto
auth = token
secret_file = {dir}/%s
"""

REMOVED = """
[source other]
provider = auto
"""


def body():
    return dumps(dict(payload_json("tavus.conversation.system.shutdown.json"),
                      conversation_id=fresh_id("c")))


class ReloadWhileUnsignedBodyInFlightTest(unittest.TestCase):

    def setUp(self):
        self.d = Daemon(hrtest.config_with(sections=OPEN))
        self.addCleanup(self.d.cleanup)
        with open(os.path.join(self.d.dir, "open.secret"), "w") as f:
            f.write(SECRET + "\n")
        os.chmod(os.path.join(self.d.dir, "open.secret"), 0o600)
        self.d.start()

    def begin(self, data, target=b"/hooks/open", headers=b""):
        """Headers and half the body; the rest comes after the reload."""
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=30)
        self.addCleanup(s.close)
        s.sendall(b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + headers + b"Content-Length: %d\r\n\r\n" % len(data) + data[:10])
        time.sleep(0.3)  # its headers are in
        return s

    def finish(self, s, data):
        s.sendall(data[10:])
        r = http.client.HTTPResponse(s)
        r.begin()
        return r.status, r.read()

    def rewrite(self, sections):
        with open(self.d.config_path, "w") as f:
            f.write(hrtest.config_with(sections=sections).format(db=self.d.db, dir=self.d.dir))
        self.d.reload()

    def stored(self):
        return len(self.d.paged("/v1/events?source=open", "events", limit=500))

    def test_auth_none_closed_by_reload_refuses_a_body_begun_before(self):
        data = body()
        s = self.begin(data)
        self.rewrite(CLOSED)
        self.assertIn("reload: ", self.d.log())
        # After the reload the same unsigned request is refused at once.
        self.assertEqual(self.d.post(body(), "open")[0], 401)
        status, answer = self.finish(s, data)
        self.assertEqual(status, 401,
                         "an unsigned body begun under auth = none was stored after a reload "
                         "made the source auth = hmac: %d %s" % (status, answer[:120]))
        self.assertEqual(self.stored(), 0)

    def test_allow_cidrs_added_by_reload_refuses_a_body_begun_before(self):
        # The code's own comment (hooks.c current_auth) counts "an address allow_cidrs
        # had dropped" among what a request begun before a reload must not get past.
        data = body()
        s = self.begin(data)
        self.rewrite(FENCED)
        self.assertEqual(self.d.post(body(), "open")[0], 401)  # 127.0.0.1 is outside now
        status, answer = self.finish(s, data)
        self.assertEqual(status, 401,
                         "a body from outside the allow_cidrs a reload set was stored: %d %s"
                         % (status, answer[:120]))

    def test_auth_none_source_removed_by_reload_answers_404_to_a_body_begun_before(self):
        data = body()
        s = self.begin(data)
        self.rewrite(REMOVED)
        self.assertEqual(self.d.post(body(), "open")[0], 404)
        status, answer = self.finish(s, data)
        self.assertEqual(status, 404,
                         "a body begun before a reload removed its (auth = none) source was "
                         "answered %d %s" % (status, answer[:120]))

    def test_a_reload_that_keeps_the_source_as_it_was_stores_the_body(self):
        # Checked again against the new configuration, the request passes as before.
        data = body()
        s = self.begin(data)
        self.rewrite(OPEN)
        status, answer = self.finish(s, data)
        self.assertEqual(status, 200, answer[:200])
        self.assertEqual(self.stored(), 1)

    def test_a_token_retired_by_reload_refuses_a_body_begun_before(self):
        old, new = "old-token-0123456789abcdef", "new-token-0123456789abcdef"
        for name, token in (("old.secret", old), ("new.secret", new)):
            with open(os.path.join(self.d.dir, name), "w") as f:
                f.write(token + "\n")
            os.chmod(os.path.join(self.d.dir, name), 0o600)
        self.rewrite(TOKENED % "old.secret")
        data = body()
        s = self.begin(data, b"/hooks/open?token=" + old.encode())
        self.rewrite(TOKENED % "new.secret")
        status, answer = self.finish(s, data)
        self.assertEqual(status, 401, "a body whose token a reload retired was answered %d %s"
                         % (status, answer[:120]))
        self.assertEqual(self.stored(), 0)

    def test_a_reload_that_opens_the_source_stores_the_body_begun_before(self):
        # The man page (hookrelay(8), SIGHUP): "Requests in flight finish under the
        # configuration they started with". The check against the new configuration
        # is there so that a retired credential lets nothing more in; here the body
        # carries the valid token of the old configuration, and the new one (auth =
        # none) takes any body: both would store it. It was refused 401 because the
        # source's auth mode differs (hooks.c current_auth), final for Tavus and
        # PailFlow: an event lost for a reload that only opened the source.
        token = "kept-token-0123456789abcdef"
        with open(os.path.join(self.d.dir, "kept.secret"), "w") as f:
            f.write(token + "\n")
        os.chmod(os.path.join(self.d.dir, "kept.secret"), 0o600)
        self.rewrite(TOKENED % "kept.secret")
        data = body()
        s = self.begin(data, b"/hooks/open?token=" + token.encode())
        self.rewrite(OPEN)
        self.assertEqual(self.d.post(body(), "open")[0], 200)  # anyone may post now
        status, answer = self.finish(s, data)
        self.assertEqual(status, 200, "a body with a valid token, begun before a reload that "
                         "opened its source (auth = token -> none), was answered %d %s"
                         % (status, answer[:160]))

    def test_a_token_echoed_in_a_body_begun_before_a_reload_to_auth_token_is_masked(self):
        # A reload makes the open source `auth = token` while a body is on its way;
        # the request carries the new token (its URL was updated with the reload) and
        # Tavus echoes that URL in webhook_url. The body is checked against the
        # configuration in force (a token source) and stored; the token is a
        # credential of that configuration and must be masked, as in a body begun
        # after the reload (docs/security.md: the URL token is never stored).
        token = "fresh-token-0123456789abcdef"
        with open(os.path.join(self.d.dir, "tok.secret"), "w") as f:
            f.write(token + "\n")
        os.chmod(os.path.join(self.d.dir, "tok.secret"), 0o600)
        doc = dict(payload_json("tavus.conversation.system.shutdown.json"),
                   conversation_id=fresh_id("c"))
        doc["webhook_url"] = "https://hooks.example.com/hooks/open?token=" + token
        data = dumps(doc)
        s = self.begin(data, b"/hooks/open?token=" + token.encode())
        self.rewrite(TOKENED % "tok.secret")
        status, answer = self.finish(s, data)
        self.assertEqual(status, 200, answer[:200])
        ev = self.d.get_json("/v1/events/" + json.loads(answer)["id"])[1]
        self.assertEqual(ev["payload"]["webhook_url"],
                         "https://hooks.example.com/hooks/open?token=REDACTED",
                         "the token of the configuration in force, echoed in a body begun "
                         "under auth = none, was stored in clear")

    def test_a_signed_body_begun_under_auth_token_before_a_reload_to_hmac_is_kept_as_signed(self):
        # The other way round: begun with ?token= under auth = token, checked after a
        # reload to auth = hmac by its signature, which covers the body as sent. The
        # old mode's masking would blank the token the body quotes and store bytes
        # other than the ones signed; under hmac a URL token is no credential, and a
        # body whose signature was checked is kept byte for byte (hooks.c mask_tokens).
        token = "old-token-0123456789abcdef"
        with open(os.path.join(self.d.dir, "tok.secret"), "w") as f:
            f.write(token + "\n")
        os.chmod(os.path.join(self.d.dir, "tok.secret"), 0o600)
        self.rewrite(TOKENED % "tok.secret")
        doc = dict(payload_json("tavus.conversation.system.shutdown.json"),
                   conversation_id=fresh_id("c"))
        doc["webhook_url"] = "https://hooks.example.com/hooks/open?token=" + token
        data = dumps(doc)
        sig = hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
        s = self.begin(data, b"/hooks/open?token=" + token.encode(),
                       b"X-Signature: " + sig.encode() + b"\r\n")
        self.rewrite(CLOSED)
        status, answer = self.finish(s, data)
        self.assertEqual(status, 200, answer[:200])
        ev = self.d.get_json("/v1/events/" + json.loads(answer)["id"])[1]
        self.assertEqual(ev["payload"]["webhook_url"], doc["webhook_url"],
                         "a body whose hmac signature was checked was stored changed: masked "
                         "as the auth = token of the configuration it began under")


if __name__ == "__main__":
    unittest.main()
