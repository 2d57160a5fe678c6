"""Inbound authentication: token, Standard Webhooks, HMAC and Basic sources,
allow_cidrs and trusted_proxies, and where secrets come from.

Every refusal is the same 401 problem (it never says which check failed),
stores nothing, and is logged with the source, the client address and the
reason. Secrets never show up in the log or in an API answer.
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import signal
import subprocess
import time
import unittest

import hrtest
from hrtest import Daemon, DaemonTest, database_blobs, dumps, fresh_id, payload, payload_json, \
    sanitizer_reports

# ---- the secrets every source of CONFIG uses (written to {dir} before start) ----
TOKEN_OLD = "tok-" + "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TOKEN_NEW = "tok-" + "a1b2c3d4e5f60718293a4b5c6d7e8f90"
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks test vector's
SW_OTHER = "whsec_" + base64.b64encode(b"hookrelay-rotated-secret-key-002").decode()
GH_SECRET = "gh-webhook-secret-It5-a-Long-One"
GH_OLD = "gh-webhook-secret-the-previous-1"
B64_SECRET = "sha512-shared-secret-8c1f0d"
STRIPE_SECRET = "whsec_stripe_style_secret_55aa"  # an opaque hmac key, not decoded
TAVUS_SECRET = "tavus-tool-hmac-secret-77d1"
BASIC_OLD = "hookrelay:pa55-word-old-4e1"
BASIC_NEW = "hookrelay:pa55-word-new-9b7"
CRED_TOKEN = "cred-dir-token-5d9a1c7e3b"

WRONG_SW = "whsec_" + base64.b64encode(b"not-the-secret-of-this-source!!").decode()

SECRET_FILES = {
    "tok.secret": "# current first, then the one being rotated out\n%s\n\n  %s  \n" % (TOKEN_NEW,
                                                                                        TOKEN_OLD),
    "sw.secret": "%s\n%s\n" % (SW_OTHER, SPEC_SECRET),
    "gh.secret": "%s\n%s\n" % (GH_SECRET, GH_OLD),
    "b64.secret": B64_SECRET + "\n",
    "stripe.secret": STRIPE_SECRET + "\n",
    "tavus.secret": TAVUS_SECRET + "\n",
    "basic.secret": "%s\n%s\n" % (BASIC_OLD, BASIC_NEW),
}

ALL_SECRETS = [TOKEN_OLD, TOKEN_NEW, SPEC_SECRET, SPEC_SECRET[6:], SW_OTHER, SW_OTHER[6:],
               GH_SECRET, GH_OLD, B64_SECRET, STRIPE_SECRET, TAVUS_SECRET, BASIC_OLD, BASIC_NEW,
               BASIC_OLD.split(":")[1], BASIC_NEW.split(":")[1],
               base64.b64encode(BASIC_OLD.encode()).decode(),
               base64.b64encode(BASIC_NEW.encode()).decode(), CRED_TOKEN]

SOURCES = """
[source tok]
auth = token
secret_file = {dir}/tok.secret
[source sw]
auth = standard-webhooks
secret_file = {dir}/sw.secret
[source gh]
auth = hmac
hmac_header = X-Hub-Signature-256
hmac_prefix = sha256=
secret_file = {dir}/gh.secret
[source b64]
auth = hmac
hmac_header = X-Signature
hmac_algorithm = sha512
hmac_encoding = base64
secret_file = {dir}/b64.secret
[source stripe]
auth = hmac
hmac_header = X-Signature
hmac_signed = timestamp.body
hmac_timestamp_header = X-Timestamp
secret_file = {dir}/stripe.secret
[source tavustool]
provider = tavus
auth = hmac
hmac_header = X-Tavus-Signature
hmac_algorithm = sha256
hmac_encoding = hex
secret_file = {dir}/tavus.secret
[source basic]
auth = basic
secret_file = {dir}/basic.secret
[source private]
allow_cidrs = 10.0.0.0/8
[source local2]
auth = token
secret_file = {dir}/tok.secret
allow_cidrs = 127.0.0.2, ::1
[source proxied]
allow_cidrs = 203.0.113.0/24
trusted_proxies = 127.0.0.1, 10.0.0.0/8
"""

CONFIG = hrtest.config_with(sections=SOURCES)
NO_CREDENTIALS_ENV = {"CREDENTIALS_DIRECTORY": None}
AUTH_LOG_RE = re.compile(r"auth: source (\S+) refused a request from (\S+) \(peer (\S+)\): (\S+)$")


# ---- signers (independent of the daemon: hashlib/hmac/base64 only) ----

def sw_key(secret):
    return base64.b64decode(secret[6:] if secret.startswith("whsec_") else secret, validate=True)


def sw_signature(secret, msg_id, ts, body):
    """Standard Webhooks: v1,base64(HMAC-SHA256(key, "<id>.<ts>.<body>"))."""
    signed = msg_id.encode() + b"." + str(ts).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(sw_key(secret), signed, hashlib.sha256).digest()).decode()


def sw_headers(secret, body, msg_id=None, ts=None, family="webhook"):
    msg_id = msg_id or fresh_id("msg_", 24)
    ts = int(time.time()) if ts is None else ts
    return {family + "-id": msg_id, family + "-timestamp": str(ts),
            family + "-signature": sw_signature(secret, msg_id, ts, body)}


def hmac_text(key, data, alg="sha256", enc="hex"):
    mac = hmac.new(key.encode(), data, getattr(hashlib, alg)).digest()
    return mac.hex() if enc == "hex" else base64.b64encode(mac).decode()


def basic(userpass):
    return "Basic " + base64.b64encode(userpass.encode()).decode()


def tavus_body(conv=None):
    """A Tavus conversation callback with a fresh conversation_id (and so a fresh dedup key)."""
    doc = payload_json("tavus.conversation.system.shutdown.json")
    doc["conversation_id"] = conv or fresh_id("c")
    doc["webhook_url"] = "https://hooks.example.com/hooks/tavus"
    return dumps(doc)


def write_secrets(d, files=SECRET_FILES):
    for name, text in files.items():
        path = os.path.join(d.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)


class AuthChecks:
    """The checks of the auth tests. events() and rejections() list what the running
    test made: those the daemon held when the test began (a shared daemon's, stored by
    the tests before it) are left out; a daemon of the test's own held none."""

    events_before = rejections_before = frozenset()

    # ---- assertions ----
    def accepted(self, resp, msg=None):
        doc = self.assertOk(resp, msg)
        self.assertTrue(doc["id"].startswith("evt_"), doc)
        self.assertFalse(doc["duplicate"], doc)
        return doc

    def refused(self, resp, msg=None):
        """A 401 problem that does not say which check failed: every refusal in a test
        carries the same type, title and detail."""
        doc = self.assertProblem(resp, 401, "unauthorized", msg)
        self.assertEqual(set(doc) - {"instance"}, {"type", "title", "status", "detail"}, doc)
        got = (doc["type"], doc["title"], doc["detail"])
        for p in self.problems:
            self.assertEqual(got, p, "%s: the 401 differs from an earlier one" % msg)
        self.problems.append(got)
        text = (doc["title"] + " " + doc["detail"]).lower()
        for word in ("stale", "future", "timestamp", "signature", "missing", "token", "address",
                     "password", "secret", "cidr", "expired"):
            self.assertNotIn(word, text, "%s: the 401 says why: %s" % (msg, doc))
        return doc

    def events(self, source):
        """The test's events of `source`, newest first."""
        return [e for e in self.d.paged("/v1/events?source=" + source, "events", limit=500)
                if e["id"] not in self.events_before]

    def rejections(self, query=""):
        """The test's rejections, newest first."""
        return [r for r in self.get_ok("/v1/rejections?limit=500" + query)["rejections"]
                if r["id"] not in self.rejections_before]

    def assertStored(self, source, n, msg=None):
        self.assertEqual(len(self.events(source)), n, msg or source)

    def auth_log(self, n, timeout=5.0):
        """The first `n` auth refusal log lines as (source, client, peer, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [AUTH_LOG_RE.search(l) for l in self.d.log().splitlines()]
            got = [m.groups() for m in lines if m]
            if len(got) >= n or time.monotonic() > deadline:
                return got

    def assertRefusalsLogged(self, source, reasons):
        got = self.auth_log(len(reasons))
        self.assertEqual([g[3] for g in got if g[0] == source], reasons, self.d.log())
        for src, client, peer, _ in got:
            self.assertTrue(client.startswith("127.0.0.1") or client.startswith("203.0.113.")
                            or client.startswith("198.51.100.") or client.startswith("127.0.0.2"),
                            client)
            self.assertTrue(peer.startswith("127.0.0."), peer)


class AuthTestBase(AuthChecks, DaemonTest):
    """One daemon per test with every source of CONFIG and its secret files."""

    config = CONFIG
    env = NO_CREDENTIALS_ENV
    files = SECRET_FILES

    def setUp(self):
        self.d = Daemon(self.config, env=self.env)
        try:
            write_secrets(self.d, self.files)
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise
        self.problems = []

    def tearDown(self):
        super().tearDown()
        log = self.d.log()  # kept in memory after the stop
        for secret in ALL_SECRETS:
            self.assertNotIn(secret, log, "a secret in the log")


class SharedAuthTest(AuthChecks, hrtest.SharedDaemonTest):
    """One daemon for the class with every source of CONFIG and its secret files. Each
    test posts bodies of its own (fresh conversation ids, webhook ids, timestamps) and
    counts only what it stored (events(), rejections()), its refusal lines in its own
    part of the log (log())."""

    config = CONFIG

    @classmethod
    def make_daemon(cls):
        d = Daemon(cls.config, env=NO_CREDENTIALS_ENV)
        write_secrets(d)
        return d

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        log = cls.d.log()  # the whole log, kept in memory after the stop
        for secret in ALL_SECRETS:
            assert secret not in log, "a secret in the log of %s" % cls.__name__

    def setUp(self):
        super().setUp()
        self.problems = []
        self.events_before = {e["id"] for e in self.d.paged("/v1/events", "events", limit=500)}
        self.rejections_before = {r["id"] for r in self.d.paged("/v1/rejections", "rejections",
                                                                limit=500)}

    def tearDown(self):
        super().tearDown()
        log = self.d.log()
        for secret in ALL_SECRETS:
            self.assertNotIn(secret, log, "a secret in the log")


class TokenTest(SharedAuthTest):

    def test_query_and_path_token_accepted_wrong_or_missing_refused(self):
        ok = [self.accepted(self.d.request("POST", "/hooks/tok?token=" + TOKEN_NEW, tavus_body()),
                            "query token"),
              self.accepted(self.d.request("POST", "/hooks/tok/" + TOKEN_NEW, tavus_body()),
                            "path token")]
        body = tavus_body()
        bad = [
            ("wrong query token", "/hooks/tok?token=" + TOKEN_NEW[:-1] + "x"),
            ("wrong path token", "/hooks/tok/" + TOKEN_NEW + "x"),
            ("token prefix", "/hooks/tok?token=" + TOKEN_NEW[:10]),
            ("missing token", "/hooks/tok"),
            ("empty token", "/hooks/tok?token="),
            ("token of another parameter", "/hooks/tok?secret=" + TOKEN_NEW),
        ]
        for what, path in bad:
            with self.subTest(what):
                self.refused(self.d.request("POST", path, body), what)
        # A bearer header does not count: only the URL carries the token.
        self.refused(self.d.request("POST", "/hooks/tok", body,
                                    {"Authorization": "Bearer " + TOKEN_NEW}), "bearer header")
        self.assertStored("tok", 2)
        self.assertEqual(self.rejections(), [])
        self.assertRefusalsLogged("tok", ["bad_credentials", "bad_credentials", "bad_credentials",
                                          "missing", "missing", "missing", "missing"])
        # A refused body claimed no dedup key: the same body with the token is a new event.
        again = self.accepted(self.d.request("POST", "/hooks/tok?token=" + TOKEN_NEW, body))
        self.assertNotIn(again["id"], [a["id"] for a in ok])

    def test_token_is_checked_before_the_body_is_read(self):
        # A wrong token is refused on the headers alone: a declared 1 MB body never sent
        # by a client that asks first (without Expect the body is read and dropped, and
        # the answer goes at its end: docs/security.md).
        status, hdrs, body = self.d.raw(
            b"POST /hooks/tok?token=nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n", timeout=5)
        self.refused((status, hdrs, body), "early refusal")

    def test_rotation_old_and_new_token_both_accepted(self):
        for token in (TOKEN_OLD, TOKEN_NEW):
            with self.subTest(token=token[:8]):
                self.accepted(self.d.request("POST", "/hooks/tok?token=" + token, tavus_body()))
                self.accepted(self.d.request("POST", "/hooks/tok/" + token, tavus_body()))
        self.assertStored("tok", 4)

    def test_path_token_is_not_echoed_in_problem_answers(self):
        # 400 and 422 answers name the request in "instance"; both bodies are kept for
        # /v1/rejections. None of it may carry the path token.
        st = self.d.request("POST", "/hooks/tok/" + TOKEN_NEW, b"{broken")
        doc = self.assertProblem(st, 400, "malformed-json")
        self.assertEqual(doc["instance"], "/hooks/tok")
        bad = payload_json("botplatform.session_complete.json")
        bad["room_name"] = None
        doc = self.assertProblem(self.d.request("POST", "/hooks/tok/" + TOKEN_NEW, dumps(bad)),
                                 422, "invalid-payload")
        self.assertEqual(doc["instance"], "/hooks/tok")
        doc = self.refused(self.d.request("POST", "/hooks/tok/" + TOKEN_OLD + "zz", dumps(bad)))
        self.assertNotIn(TOKEN_OLD, json.dumps(doc))
        rej = self.rejections()
        self.assertEqual(len(rej), 2)
        self.assertNotIn(TOKEN_NEW, json.dumps(rej))
        for r in rej:
            self.assertNotIn(TOKEN_NEW, json.dumps(self.get_ok("/v1/rejections/" + r["id"])))
        # Answers made before the route is known (a wrong method, a header line too
        # large, a malformed header) named the whole URL, token included.
        for method, headers in (("GET", {}), ("PUT", {}), ("POST", {"X-Big": "x" * 20000}),
                                ("POST", {"Bad Name": "1"})):
            with self.subTest(method=method, headers=list(headers)):
                status, _, data = self.d.request(method, "/hooks/tok/" + TOKEN_NEW, b"{}",
                                                 headers)
                self.assertIn(status, (400, 405, 431), data)
                self.assertNotIn(TOKEN_NEW.encode(), data)
                self.assertEqual(json.loads(data)["instance"], "/hooks/tok", data)
        # A path token URL with a slash at its end is the source's route (a 404 is final
        # to Tavus and PailFlow); one with an empty segment is a 404, token not echoed.
        body = payload("tavus.replica.completed.json")
        self.assertOk(self.d.request("POST", "/hooks/tok/%s/" % TOKEN_NEW, body))
        for method, path, status in (("POST", "/hooks/tok//" + TOKEN_NEW, 404),
                                     ("POST", "/hooks/tok/%s/x" % TOKEN_NEW, 404),
                                     ("PUT", "/hooks/tok/%s/" % TOKEN_NEW, 405)):
            with self.subTest(method=method, path=path):
                got, _, data = self.d.request(method, path, b"{}")
                self.assertEqual(got, status, data)
                self.assertNotIn(TOKEN_NEW.encode(), data)
                self.assertEqual(json.loads(data)["instance"], "/hooks/tok", data)
        # Paths refused for their form before any route is looked for (a review).
        for target in ("/./hooks/tok/", "/x/../hooks/tok/", "hooks/tok/", "http:/hooks/tok/",
                       "/hooks\\tok\\"):
            with self.subTest(target=target):
                req = ("POST %s%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                       "\r\nContent-Length: 2\r\n\r\n{}" % (target, TOKEN_NEW)).encode()
                got, _, data = self.d.raw(req)
                self.assertIn(got, (400, 404), data)
                self.assertNotIn(TOKEN_NEW.encode(), data)
        # Paths no route takes for their slashes or case echoed the token whole (a review).
        for path, shown in (("//hooks/tok/" + TOKEN_NEW, "//hooks/tok"),
                            ("///hooks//tok///" + TOKEN_NEW, "///hooks//tok"),
                            ("/HOOKS/tok/" + TOKEN_NEW, "/HOOKS/tok")):
            with self.subTest(path=path):
                got, _, data = self.d.request("POST", path, b"{}")
                self.assertEqual(got, 404, data)
                self.assertNotIn(TOKEN_NEW.encode(), data)
                self.assertEqual(json.loads(data)["instance"], shown, data)
        # An absolute-form target is refused, and its token was echoed whole (a review).
        got, _, data = self.d.request(
            "POST", "http://127.0.0.1:%d/hooks/tok/%s" % (self.d.port, TOKEN_NEW), body)
        self.assertEqual(got, 400, data)
        self.assertNotIn(TOKEN_NEW.encode(), data)
        self.assertEqual(json.loads(data)["instance"], "/hooks/tok", data)


class LongPathTokenTest(AuthTestBase):
    """A token of 256 bytes or more (a secret file holds up to 64 KiB; nothing says a
    token must be short) works in the query but not as the last path segment: the
    route's {} segments are copied into 256-byte buffers (http.c, match_prefix), so
    /hooks/tok/<token> matches no route and is answered 404 not-found, final to Tavus
    and PailFlow, which never retry."""

    LONG_TOKEN = "long-" + "9c4e" * 75  # 305 URL-safe bytes
    files = dict(SECRET_FILES, **{"tok.secret": LONG_TOKEN + "\n"})

    def test_a_long_token_is_taken_in_the_path_as_in_the_query(self):
        self.accepted(self.d.request("POST", "/hooks/tok?token=" + self.LONG_TOKEN,
                                     tavus_body()), "query token")
        self.accepted(self.d.request("POST", "/hooks/tok/" + self.LONG_TOKEN, tavus_body()),
                      "path token")
        self.accepted(self.d.request("POST", "/hooks/tok/%s/" % self.LONG_TOKEN, tavus_body()),
                      "path token with a slash after it")
        self.assertStored("tok", 3)


class StandardWebhooksTest(SharedAuthTest):

    def test_python_signer_reproduces_the_spec_vector(self):
        self.assertEqual(
            sw_signature(SPEC_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                         b'{"test": 2432232314}'),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")

    def test_spec_vector_is_stale_and_fresh_requests_with_its_secret_pass(self):
        vector = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
                  "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
        self.refused(self.d.post(b'{"test": 2432232314}', "sw", vector), "2021 timestamp")
        body = b'{"test": 2432232314}'
        ack = self.accepted(self.d.post(body, "sw", sw_headers(SPEC_SECRET, body)))
        self.assertEqual(self.d.request("GET", "/v1/events/%s/raw" % ack["id"])[2], body)
        self.assertRefusalsLogged("sw", ["stale"])

    def test_blanks_after_a_header_value_are_not_part_of_it(self):
        # RFC 9110; libmicrohttpd keeps them: a signed timestamp, id or signature, or
        # Basic credentials, followed by a blank failed to authenticate.
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            with self.subTest(header=name):
                body = tavus_body()
                h = sw_headers(SPEC_SECRET, body)
                h[name] += " \t"
                ack = self.accepted(self.d.post(body, "sw", h))
                # The id is the dedup key as signed: the same request again is a duplicate.
                again = self.assertOk(self.d.post(body, "sw", dict(h, **{"webhook-id":
                                                                        h["webhook-id"].strip()})))
                self.assertEqual((again["id"], again["duplicate"]), (ack["id"], True))
        self.accepted(self.d.post(tavus_body(), "basic", {"Authorization": basic(BASIC_NEW) + " "}))
        # Every header so: each is looked up several times (checks before and after the
        # body, dedup); the trimmed copy is made once, so there are enough for all.
        body = tavus_body()
        h = {k: v + " " for k, v in sw_headers(SPEC_SECRET, body).items()}
        h.update({"Content-Type": "application/json ", "User-Agent": "hrtest ",
                  "X-Request-Id": "r1 "})
        ack = self.accepted(self.d.post(body, "sw", h))
        h = {k: v.strip() for k, v in h.items()}
        again = self.assertOk(self.d.post(body, "sw", h))
        self.assertEqual((again["id"], again["duplicate"]), (ack["id"], True))

    def test_webhook_and_svix_headers_accepted(self):
        for family in ("webhook", "svix"):
            with self.subTest(family=family):
                body = tavus_body()
                self.accepted(self.d.post(body, "sw", sw_headers(SPEC_SECRET, body, family=family)))
        self.assertStored("sw", 2)

    def test_every_failure_is_the_same_401_and_stores_nothing(self):
        # Offsets keep 30 s from the 300 s tolerance: a loaded (ASan) run takes seconds.
        body = tavus_body()
        now = int(time.time())
        good = sw_headers(SPEC_SECRET, body)
        cases = [
            ("wrong secret", sw_headers(WRONG_SW, body), body, "bad_signature"),
            ("stale timestamp", sw_headers(SPEC_SECRET, body, ts=now - 330), body, "stale"),
            ("future timestamp", sw_headers(SPEC_SECRET, body, ts=now + 330), body, "future"),
            ("tampered body", good, body.replace(b"system.shutdown", b"system.shutdowN"),
             "bad_signature"),
            ("missing signature", {k: v for k, v in good.items() if k != "webhook-signature"},
             body, "missing"),
            ("missing id", {k: v for k, v in good.items() if k != "webhook-id"}, body, "missing"),
            ("missing timestamp", {k: v for k, v in good.items() if k != "webhook-timestamp"},
             body, "missing"),
            ("no headers", {}, body, "missing"),
            ("timestamp not a number", dict(good, **{"webhook-timestamp": "%d.5" % now}), body,
             "bad_timestamp"),
            ("timestamp in milliseconds", sw_headers(SPEC_SECRET, body, ts=now * 1000), body,
             "bad_timestamp"),
            ("id changed after signing", dict(good, **{"webhook-id": "msg_other"}), body,
             "bad_signature"),
            ("timestamp changed after signing",
             dict(good, **{"webhook-timestamp": str(now - 1)}), body, "bad_signature"),
            ("unpadded base64", dict(good, **{"webhook-signature": good["webhook-signature"].rstrip("=")}),
             body, "bad_signature"),
            ("v2 only", dict(good, **{"webhook-signature": "v2," + good["webhook-signature"][3:]}),
             body, "bad_signature"),
            ("webhook-id with svix signature",
             {"webhook-id": good["webhook-id"], "svix-timestamp": good["webhook-timestamp"],
              "svix-signature": good["webhook-signature"]}, body, "missing"),
        ]
        for what, headers, sent, _ in cases:
            with self.subTest(what):
                self.refused(self.d.post(sent, "sw", headers), what)
        self.assertStored("sw", 0, "a refused request is not stored")
        self.assertEqual(self.rejections(), [])
        self.assertRefusalsLogged("sw", [c[3] for c in cases])
        # Within the tolerance on either side is fine; nothing above claimed the id.
        self.accepted(self.d.post(body, "sw", good))
        for skew in (-270, 270):
            b = tavus_body()
            self.accepted(self.d.post(b, "sw", sw_headers(SPEC_SECRET, b, ts=now + skew)),
                          "skew %d" % skew)
        self.assertStored("sw", 3)

    def test_rotation_each_secret_of_the_file_is_accepted(self):
        for secret in (SPEC_SECRET, SW_OTHER):
            body = tavus_body()
            self.accepted(self.d.post(body, "sw", sw_headers(secret, body)))
        self.assertStored("sw", 2)

    def test_several_signatures_in_one_header(self):
        body = tavus_body()
        h = sw_headers(SPEC_SECRET, body)
        wrong = sw_signature(WRONG_SW, h["webhook-id"], h["webhook-timestamp"], body)
        h["webhook-signature"] = "v1a,c29tZXRoaW5n %s v2,AAAA %s" % (wrong, h["webhook-signature"])
        self.accepted(self.d.post(body, "sw", h), "the good one last")
        body = tavus_body()
        h = sw_headers(SW_OTHER, body)
        wrong = sw_signature(WRONG_SW, h["webhook-id"], h["webhook-timestamp"], body)
        h["webhook-signature"] = "%s %s" % (h["webhook-signature"], wrong)
        self.accepted(self.d.post(body, "sw", h), "the good one first")
        body = tavus_body()
        h = sw_headers(WRONG_SW, body)
        h["webhook-signature"] += " " + sw_signature(WRONG_SW, "x", h["webhook-timestamp"], body)
        self.refused(self.d.post(body, "sw", h), "none matches")
        self.assertStored("sw", 2)

    def test_replayed_webhook_id_is_an_idempotent_duplicate(self):
        # DESIGN: a replay inside the window is answered like a retry (200, duplicate:
        # true, the first id) and changes nothing; honest senders retry with the same id.
        body = tavus_body()
        h = sw_headers(SPEC_SECRET, body)
        first = self.accepted(self.d.post(body, "sw", h))
        for what, headers in (("verbatim replay", h),
                              ("re-signed later", sw_headers(SPEC_SECRET, body,
                                                             msg_id=h["webhook-id"],
                                                             ts=int(time.time()) - 60)),
                              ("signed with the other secret",
                               sw_headers(SW_OTHER, body, msg_id=h["webhook-id"]))):
            with self.subTest(what):
                again = self.assertOk(self.d.post(body, "sw", headers), what)
                self.assertEqual(again, dict(first, duplicate=True), what)
        # Even a different body under the same id is the same delivery: the first stays.
        other = tavus_body()
        again = self.assertOk(self.d.post(other, "sw", sw_headers(SPEC_SECRET, other,
                                                                  msg_id=h["webhook-id"])))
        self.assertEqual(again["id"], first["id"])
        self.assertTrue(again["duplicate"])
        events = self.events("sw")
        self.assertEqual([e["id"] for e in events], [first["id"]])
        self.assertEqual(self.d.request("GET", "/v1/events/%s/raw" % first["id"])[2], body)
        # A replay with a bad signature is still a 401, not a duplicate.
        self.refused(self.d.post(body, "sw", dict(h, **{"webhook-signature": sw_signature(
            WRONG_SW, h["webhook-id"], h["webhook-timestamp"], body)})))
        # svix-id replays likewise.
        body = tavus_body()
        h = sw_headers(SPEC_SECRET, body, family="svix")
        first = self.accepted(self.d.post(body, "sw", h))
        self.assertEqual(self.assertOk(self.d.post(body, "sw", h)), dict(first, duplicate=True))
        self.assertStored("sw", 2)


class HmacTest(SharedAuthTest):

    def check_refusals(self, source, cases):
        """cases: (what, headers, body, logged reason); each is the same 401, none stored."""
        for what, headers, body, _ in cases:
            with self.subTest(source=source, case=what):
                self.refused(self.d.post(body, source, headers), "%s: %s" % (source, what))
        self.assertStored(source, 0, "%s: nothing stored" % source)
        self.assertRefusalsLogged(source, [c[3] for c in cases])

    def test_github_style_sha256_hex_with_prefix_over_body(self):
        def sign(body, key=GH_SECRET):
            return {"X-Hub-Signature-256": "sha256=" + hmac_text(key, body)}
        body = tavus_body()
        self.check_refusals("gh", [
            ("wrong secret", sign(body, "not-" + GH_SECRET), body, "bad_signature"),
            ("tampered body", sign(body), body.replace(b"shutdown", b"shutdowm"), "bad_signature"),
            ("missing header", {}, body, "missing"),
            ("empty header", {"X-Hub-Signature-256": ""}, body, "missing"),
            ("no prefix", {"X-Hub-Signature-256": hmac_text(GH_SECRET, body)}, body,
             "bad_signature"),
            ("sha1 instead", {"X-Hub-Signature-256": "sha256=" + hmac.new(
                GH_SECRET.encode(), body, hashlib.sha1).hexdigest()}, body, "bad_signature"),
            ("other header name", {"X-Hub-Signature": "sha256=" + hmac_text(GH_SECRET, body)},
             body, "missing"),
            ("truncated", {"X-Hub-Signature-256": "sha256=" + hmac_text(GH_SECRET, body)[:-2]},
             body, "bad_signature"),
        ])
        self.accepted(self.d.post(body, "gh", sign(body)))
        b = tavus_body()
        self.accepted(self.d.post(b, "gh", {"X-Hub-Signature-256":
                                            "sha256=" + hmac_text(GH_SECRET, b).upper()}),
                      "upper-case hex")
        b = tavus_body()
        self.accepted(self.d.post(b, "gh", sign(b, GH_OLD)), "rotation: the old secret")
        self.assertStored("gh", 3)

    def test_sha512_base64(self):
        def sign(body, key=B64_SECRET):
            return {"X-Signature": hmac_text(key, body, "sha512", "base64")}
        body = tavus_body()
        self.check_refusals("b64", [
            ("wrong secret", sign(body, B64_SECRET + "x"), body, "bad_signature"),
            ("tampered body", sign(body), body + b" ", "bad_signature"),
            ("missing header", {}, body, "missing"),
            ("sha256 instead", {"X-Signature": hmac_text(B64_SECRET, body, "sha256", "base64")},
             body, "bad_signature"),
            ("hex instead", {"X-Signature": hmac_text(B64_SECRET, body, "sha512", "hex")}, body,
             "bad_signature"),
        ])
        self.accepted(self.d.post(body, "b64", sign(body)))
        self.assertStored("b64", 1)

    def test_stripe_style_timestamp_dot_body(self):
        def sign(body, ts=None, key=STRIPE_SECRET):
            ts = str(int(time.time())) if ts is None else str(ts)
            return {"X-Timestamp": ts, "X-Signature": hmac_text(key, ts.encode() + b"." + body)}
        body = tavus_body()
        now = int(time.time())
        good = sign(body, now)
        self.check_refusals("stripe", [
            ("wrong secret", sign(body, now, "other"), body, "bad_signature"),
            ("stale timestamp", sign(body, now - 330), body, "stale"),
            ("future timestamp", sign(body, now + 330), body, "future"),
            ("tampered body", good, body[:-1] + b" }", "bad_signature"),
            ("missing signature", {"X-Timestamp": good["X-Timestamp"]}, body, "missing"),
            ("missing timestamp", {"X-Signature": good["X-Signature"]}, body, "missing"),
            ("timestamp changed after signing", dict(good, **{"X-Timestamp": str(now - 1)}),
             body, "bad_signature"),
            ("body alone signed", {"X-Timestamp": str(now),
                                   "X-Signature": hmac_text(STRIPE_SECRET, body)}, body,
             "bad_signature"),
            ("timestamp not a number", dict(good, **{"X-Timestamp": "soon"}), body,
             "bad_timestamp"),
        ])
        self.accepted(self.d.post(body, "stripe", good))
        b = tavus_body()
        self.accepted(self.d.post(b, "stripe", sign(b, now - 270)), "inside the tolerance")
        self.assertStored("stripe", 2)

    def test_a_replayed_session_complete_is_its_duplicate_where_a_timestamp_is_signed(self):
        # session_complete's bytes key nothing (two quiet sessions of a reused room send
        # the same bytes): a captured signed request was stored again at every replay.
        # A signed timestamp tells two sends apart; a body alone cannot.
        body = payload("botplatform.session_complete.json")
        now = int(time.time())
        signed = {"X-Timestamp": str(now),
                  "X-Signature": hmac_text(STRIPE_SECRET, str(now).encode() + b"." + body)}
        first = self.accepted(self.d.post(body, "stripe", signed))
        again = self.assertOk(self.d.post(body, "stripe", signed), "the same request again")
        self.assertEqual((again["id"], again["duplicate"]), (first["id"], True))
        later = {"X-Timestamp": str(now - 1),
                 "X-Signature": hmac_text(STRIPE_SECRET, str(now - 1).encode() + b"." + body)}
        self.accepted(self.d.post(body, "stripe", later), "another send of the same bytes")
        self.assertStored("stripe", 2)
        gh = {"X-Hub-Signature-256": "sha256=" + hmac_text(GH_SECRET, body)}
        self.accepted(self.d.post(body, "gh", gh))
        self.accepted(self.d.post(body, "gh", gh), "signed without a timestamp: stored")

    def test_tavus_tool_signature_sha256_hex_over_body(self):
        doc = payload_json("tavus.conversation.application.post_call_action_executed.json")
        doc["conversation_id"] = fresh_id("c")
        body = dumps(doc)
        sig = hmac_text(TAVUS_SECRET, body)
        self.refused(self.d.post(body, "tavustool", {"X-Tavus-Signature": hmac_text("x", body)}))
        self.refused(self.d.post(body, "tavustool", {}))
        ack = self.accepted(self.d.post(body, "tavustool", {"X-Tavus-Signature": sig}))
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["kind"], "tavus.conversation.application.post_call_action_executed")
        # The signature (not a secret) is kept with the event's headers.
        self.assertEqual(ev["headers"].get("x-tavus-signature"), sig)
        self.assertStored("tavustool", 1)


class BasicTest(SharedAuthTest):

    def test_basic_auth_rotation_and_refusals(self):
        for userpass in (BASIC_OLD, BASIC_NEW):
            self.accepted(self.d.post(tavus_body(), "basic", {"Authorization": basic(userpass)}))
        body = tavus_body()
        cases = [
            ("wrong password", {"Authorization": basic("hookrelay:wrong")}, "bad_credentials"),
            ("wrong user", {"Authorization": basic("root:" + BASIC_NEW.split(":")[1])},
             "bad_credentials"),
            ("missing header", {}, "missing"),
            ("bearer scheme", {"Authorization": "Bearer " + BASIC_NEW}, "missing"),
            ("unencoded", {"Authorization": "Basic " + BASIC_NEW}, "bad_credentials"),
            ("the password alone", {"Authorization": basic(BASIC_NEW.split(":")[1])},
             "bad_credentials"),
        ]
        for what, headers, _ in cases:
            with self.subTest(what):
                self.refused(self.d.post(body, "basic", headers), what)
        self.assertRefusalsLogged("basic", [c[2] for c in cases])
        self.accepted(self.d.post(body, "basic", {"Authorization": "basic " +
                                                  basic(BASIC_NEW).split(" ")[1]}),
                      "scheme in lower case")
        self.assertStored("basic", 3)
        ev = self.get_ok("/v1/events/" + self.events("basic")[0]["id"])
        self.assertNotIn("authorization", ev["headers"])


class ContentTypeTest(AuthTestBase):
    """A body of another media type, taken as JSON since its credentials were checked:
    said once a source in the daemon's life, so each test has a daemon of its own."""

    def test_a_signed_body_is_taken_whatever_its_content_type(self):
        # The media type guards against browsers' forms only; a checked signature is a
        # better proof, and Tavus and PailFlow never resend what a 415 refused. Was 415
        # before the body was read, so a valid signature lost the event.
        sign = lambda b: {"X-Hub-Signature-256": "sha256=" + hmac_text(GH_SECRET, b)}
        ids = []
        for ct in ("text/plain", "application/x-www-form-urlencoded", None):
            with self.subTest(content_type=ct):
                body = tavus_body()
                ids.append(self.accepted(self.d.post(body, "gh", dict(
                    sign(body), **{"Content-Type": ct})))["id"])
                self.refused(self.d.post(tavus_body(), "gh", {"Content-Type": ct}), ct)
        self.assertStored("gh", 3)
        ev = self.get_ok("/v1/events/" + ids[0])
        self.assertEqual(ev["headers"].get("content-type"), "text/plain")
        self.assertEqual(ev["kind"], "tavus.conversation.system.shutdown")
        # A body that is not JSON is kept as a rejection, as with JSON's type.
        bad = b"conversation_id=c1&event_type=system.shutdown"
        self.assertProblem(self.d.post(bad, "gh", dict(sign(bad), **{
            "Content-Type": "application/x-www-form-urlencoded"})), 400, "malformed-json")
        rej = self.rejections("&source=gh")
        self.assertEqual(len(rej), 1, rej)
        # Said once for the source, naming the type first seen.
        lines = [l for l in self.d.log().splitlines() if "taken as JSON" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("ingest: source gh sent a body with Content-Type text/plain; taken as "
                      "JSON since its credentials were checked", lines[0])

    def test_a_body_with_credentials_is_taken_whatever_its_content_type(self):
        # Token and Basic sources: the credential is checked on the headers, and
        # then the media type refuses nothing (was 415, the event lost).
        for ct in ("text/plain; charset=utf-8", None, "application/octet-stream"):
            with self.subTest(content_type=ct):
                self.accepted(self.d.post(tavus_body(), "basic", {
                    "Authorization": basic(BASIC_NEW), "Content-Type": ct}))
                self.accepted(self.d.request("POST", "/hooks/tok/" + TOKEN_NEW, tavus_body(),
                                             {"Content-Type": ct}))
                self.refused(self.d.post(tavus_body(), "basic", {
                    "Authorization": basic("hookrelay:wrong"), "Content-Type": ct}), ct)
        self.assertStored("basic", 3)
        self.assertStored("tok", 3)
        told = [l for l in self.d.log().splitlines() if "taken as JSON" in l]
        self.assertEqual(sorted(l.split("source ")[1].split(" ")[0] for l in told),
                         ["basic", "tok"], told)


class AddressTest(SharedAuthTest):

    def post_from(self, addr, source, body=None, path=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=10,
                                          source_address=(addr, 0))
        try:
            return self.d.request("POST", path or "/hooks/" + source, body or tavus_body(),
                                  headers, conn=conn)
        finally:
            conn.close()

    def test_allow_cidrs_refuses_other_addresses(self):
        self.refused(self.d.post(tavus_body(), "private"), "127.0.0.1 outside 10.0.0.0/8")
        # local2 allows 127.0.0.2 only, and also wants its token.
        path = "/hooks/local2?token=" + TOKEN_NEW
        self.refused(self.post_from("127.0.0.1", "local2", path=path), "right token, wrong address")
        self.refused(self.post_from("127.0.0.2", "local2", path="/hooks/local2?token=x"),
                     "right address, wrong token")
        self.accepted(self.post_from("127.0.0.2", "local2", path=path))
        self.assertStored("private", 0)
        self.assertStored("local2", 1)
        got = self.auth_log(3)
        self.assertEqual([(g[0], g[3]) for g in got],
                         [("private", "address"), ("local2", "address"),
                          ("local2", "bad_credentials")])
        self.assertTrue(got[2][1].startswith("127.0.0.2:"), got)

    def test_x_forwarded_for_counts_only_from_trusted_proxies(self):
        ok, no = [], []
        # From a trusted proxy (127.0.0.1): the right-most address that is not a proxy.
        for xff in ("203.0.113.9", "198.51.100.7, 203.0.113.9", "203.0.113.9, 10.1.2.3",
                    " 203.0.113.9 ,10.0.0.1 , 127.0.0.1"):
            ok.append(self.post_from("127.0.0.1", "proxied", headers={"X-Forwarded-For": xff}))
        for xff in (None, "198.51.100.7", "203.0.113.9, 198.51.100.7", "garbage",
                    "203.0.113.9:4711", ""):
            no.append(("xff %r" % xff,
                       self.post_from("127.0.0.1", "proxied", headers={"X-Forwarded-For": xff})))
        # Not from a trusted proxy: X-Forwarded-For is ignored, the peer is the client.
        no.append(("untrusted peer", self.post_from("127.0.0.2", "proxied",
                                                   headers={"X-Forwarded-For": "203.0.113.9"})))
        for i, resp in enumerate(ok):
            self.accepted(resp, "ok %d" % i)
        for what, resp in no:
            self.refused(resp, what)
        self.assertStored("proxied", len(ok))
        # Repeated X-Forwarded-For fields are one list, in order (RFC 9110 5.3).
        head = (b"POST /hooks/proxied HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n")
        body = tavus_body()
        self.refused(self.d.raw(head % len(body) + b"X-Forwarded-For: 203.0.113.9\r\n"
                                b"X-Forwarded-For: 198.51.100.7\r\n\r\n" + body), "spoofed first")
        self.accepted(self.d.raw(head % len(body) + b"X-Forwarded-For: 198.51.100.7\r\n"
                                 b"X-Forwarded-For: 203.0.113.9\r\n\r\n" + body),
                      "proxy's field last")
        self.assertStored("proxied", len(ok) + 1)
        # The log names the client X-Forwarded-For gave, and the TCP peer.
        got = [g for g in self.auth_log(len(no) + 1) if g[0] == "proxied"]
        self.assertIn("198.51.100.7", [g[1].rsplit(":", 1)[0] for g in got])
        self.assertTrue(all(g[2].startswith("127.0.0.") for g in got), got)

    def test_the_kept_x_forwarded_for_holds_the_address_auth_went_by(self):
        # A proxy that adds its own field (HAProxy's option forwardfor) after the one the
        # client wrote: auth reads both fields as one list and lets the request in for the
        # proxy's 203.0.113.9 (docs/security.md, allow_cidrs and trusted_proxies). The
        # event must not keep only the client's own field, 198.51.100.7, an address
        # allow_cidrs refuses: its stored provenance would be the one a sender chose,
        # and the address the request was let in for would be kept nowhere (remote_addr is
        # the proxy). RFC 9110 5.3: the fields are one list, "a, b".
        body = tavus_body()
        head = (b"POST /hooks/proxied HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n")
        doc = self.accepted(self.d.raw(head % len(body) + b"X-Forwarded-For: 198.51.100.7\r\n"
                                       b"X-Forwarded-For: 203.0.113.9\r\n\r\n" + body))
        kept = self.get_ok("/v1/events/" + doc["id"])["headers"].get("x-forwarded-for", "")
        self.assertIn("203.0.113.9", kept,
                      "the event keeps X-Forwarded-For %r: not the address auth let in" % kept)

    def test_the_kept_x_forwarded_for_keeps_every_field(self):
        # docs/security.md: X-Forwarded-For is "kept whole, joined with ', '". A field
        # that is not UTF-8 (a sender's bytes) is dropped from the list unseen: when it
        # is the first, the proxy's field alone is kept, shown as the whole list, and the
        # event says the request came straight from 203.0.113.9 with no client field.
        body = tavus_body()
        head = (b"POST /hooks/proxied HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n")
        doc = self.accepted(self.d.raw(head % len(body) + b"X-Forwarded-For: 198.51.100.\xc3\r\n"
                                       b"X-Forwarded-For: 203.0.113.9\r\n\r\n" + body))
        kept = self.get_ok("/v1/events/" + doc["id"])["headers"].get("x-forwarded-for", "")
        self.assertEqual(len(kept.split(",")), 2,
                         "the event keeps X-Forwarded-For %r: one of two fields" % kept)


class ReloadRotationTest(AuthTestBase):
    """Rotation without a restart: edit the secret file, then SIGHUP (systemctl reload)."""

    files = dict(SECRET_FILES, **{"tok.secret": TOKEN_OLD + "\n"})

    def reload(self, secret_text, outcome="reload: "):
        with open(os.path.join(self.d.dir, "tok.secret"), "w") as f:
            f.write(secret_text)
        before = self.d.log().count(outcome)
        self.d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.d.log().count(outcome) == before:
            self.assertIsNone(self.d.proc.poll(), "hookrelay died on SIGHUP:\n" + self.d.log())
            self.assertLess(time.monotonic(), deadline, "no %r in the log:\n%s" % (outcome,
                                                                                  self.d.log()))
            time.sleep(0.05)

    def post_with(self, token):
        return self.d.request("POST", "/hooks/tok/" + token, tavus_body())

    def test_add_then_retire_a_token_with_sighup(self):
        self.accepted(self.post_with(TOKEN_OLD))
        self.refused(self.post_with(TOKEN_NEW), "not yet added")
        self.reload("%s\n%s\n" % (TOKEN_NEW, TOKEN_OLD))
        self.accepted(self.post_with(TOKEN_NEW), "added")
        self.accepted(self.post_with(TOKEN_OLD), "still there")
        self.reload(TOKEN_NEW + "\n")
        self.refused(self.post_with(TOKEN_OLD), "retired")
        self.accepted(self.post_with(TOKEN_NEW))
        # A secret file that cannot be used refuses the reload; the running secrets stay.
        self.reload("# emptied by mistake\n", outcome="reload refused")
        self.accepted(self.post_with(TOKEN_NEW), "kept after a refused reload")
        self.refused(self.post_with(TOKEN_OLD))
        self.assertStored("tok", 5)


class CredentialsDirectoryTest(AuthTestBase):
    """secret_file empty: the secret is $CREDENTIALS_DIRECTORY/<source name> (LoadCredential=)."""

    config = hrtest.config_with(sections="""
[source tavus-cred]
auth = token
[source sw-cred]
auth = standard-webhooks
""")
    files = {}

    def setUp(self):
        self.creds = None
        d = Daemon(self.config)
        creds = os.path.join(d.dir, "credentials")
        os.makedirs(creds)
        with open(os.path.join(creds, "tavus-cred"), "w") as f:
            f.write(CRED_TOKEN + "\n")
        with open(os.path.join(creds, "sw-cred"), "w") as f:
            f.write(SW_OTHER + "\n")
        d.env = {"CREDENTIALS_DIRECTORY": creds}
        self.d = d
        try:
            d.start()
        except BaseException:
            d.cleanup()
            raise
        self.problems = []

    def test_secrets_come_from_the_credentials_directory(self):
        self.accepted(self.d.request("POST", "/hooks/tavus-cred/" + CRED_TOKEN, tavus_body()))
        self.accepted(self.d.request("POST", "/hooks/tavus-cred?token=" + CRED_TOKEN, tavus_body()))
        self.refused(self.d.request("POST", "/hooks/tavus-cred?token=" + TOKEN_NEW, tavus_body()))
        body = tavus_body()
        self.accepted(self.d.post(body, "sw-cred", sw_headers(SW_OTHER, body)))
        self.refused(self.d.post(body, "sw-cred", sw_headers(SPEC_SECRET, body)))
        self.assertStored("tavus-cred", 2)
        self.assertStored("sw-cred", 1)
        self.assertNotIn(CRED_TOKEN, self.d.log())


class StartupRefusalTest(unittest.TestCase):
    """A secret that cannot be loaded stops hookrelay with 78 (EX_CONFIG), naming the file
    and line but never the secret."""

    def run_daemon(self, sections, files, env=None):
        d = Daemon(hrtest.config_with(sections=sections))
        try:
            for name, text in files.items():
                with open(os.path.join(d.dir, name), "w") as f:
                    f.write(text)
            full = dict(os.environ)
            full.pop("CREDENTIALS_DIRECTORY", None)
            full.update(env or {})
            p = subprocess.run([hrtest.BIN, "-c", d.config_path], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=15, env=full)
            self.assertEqual(sanitizer_reports(p.stderr), [], p.stderr)
            return p.returncode, p.stderr
        finally:
            d.cleanup()

    def test_missing_secret_file_exits_78(self):
        rc, err = self.run_daemon("[source tok]\nauth = token\nsecret_file = {dir}/nope.secret\n", {})
        self.assertEqual(rc, 78, err)
        self.assertIn("nope.secret", err)
        self.assertIn("tok", err)

    def test_no_secret_file_and_no_credentials_directory_exits_78(self):
        rc, err = self.run_daemon("[source tok]\nauth = token\n", {})
        self.assertEqual(rc, 78, err)
        # Where a configuration's error is: its file and the auth line (the source's
        # name stood there, and FILE:LINE is what an operator's editor jumps to).
        self.assertRegex(err, r"<3>[^\n]*\.conf:\d+: \[source tok\] auth needs secret_file, or"
                              r" a credential tok in \$CREDENTIALS_DIRECTORY")

    def test_credentials_directory_without_the_source_file_exits_78(self):
        rc, err = self.run_daemon("[source tavuscb]\nauth = token\n", {},
                                  env={"CREDENTIALS_DIRECTORY": "/nonexistent-hr-creds"})
        self.assertEqual(rc, 78, err)
        self.assertIn("/nonexistent-hr-creds/tavuscb", err)

    def test_a_token_that_cannot_be_masked_is_warned_about(self):
        # A token of base64 characters (openssl rand -base64 32) authenticates, but Tavus
        # echoes its URL in webhook_url percent-encoded, where it cannot be masked: it was
        # stored and forwarded, and neither the start nor -t said a word.
        token = "cWCM+DoFc/7Kq2Vb9xT1pLm0Za4Rn8Ye3Uw5Hs6Gj0A="
        d = Daemon(hrtest.config_with(
            sections="[source tok]\nauth = token\nsecret_file = {dir}/tok.secret\n"))
        try:
            with open(os.path.join(d.dir, "tok.secret"), "w") as f:
                f.write(token + "\n")
            p = subprocess.run([hrtest.BIN, "-t", "-c", d.config_path], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=15)
        finally:
            d.cleanup()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("tok.secret:1: a token of other characters than A-Z a-z 0-9 - . _ ~ "
                      "cannot be masked", p.stderr)
        self.assertNotIn(token, p.stderr)
        self.assertNotIn(token[:12], p.stderr)

    def test_unfit_secret_lines_exit_78_without_echoing_them(self):
        cases = [
            ("standard-webhooks", "whsec_not*base64*at-all-SECRETTEXT1\n", "SECRETTEXT1",
             "s.secret:1"),
            ("standard-webhooks", "# comment\n%s\nwhsec_SECRETTEXT2\n" % SPEC_SECRET,
             "SECRETTEXT2", "s.secret:3"),
            ("basic", "SECRETTEXT3-no-colon\n", "SECRETTEXT3", "s.secret:1"),
            ("token", "# only a comment\n\n", None, "holds no secret"),
        ]
        for mode, text, secret, where in cases:
            with self.subTest(mode=mode, where=where):
                rc, err = self.run_daemon(
                    "[source s]\nauth = %s\nsecret_file = {dir}/s.secret\n" % mode,
                    {"s.secret": text})
                self.assertEqual(rc, 78, err)
                self.assertIn(where, err)
                if secret:
                    self.assertNotIn(secret, err)
                self.assertNotIn(SPEC_SECRET[6:], err)

    def test_auth_none_needs_no_secret(self):
        d = Daemon(hrtest.config_with(sections="[source open]\nauth = none\n"),
                   env=NO_CREDENTIALS_ENV)
        try:
            d.start()
            self.assertEqual(d.post(tavus_body(), "open")[0], 200)
        finally:
            rc = d.stop()
            d.cleanup()
        self.assertEqual(rc, 0)


class SecretHygieneTest(SharedAuthTest):
    """With debug logging, every mode's successes and failures: no secret in the log,
    in any API answer, or in the database files."""

    config = CONFIG.replace("[storage]", "[log]\nlevel = debug\n[storage]", 1)

    def exercise(self):
        d = self.d
        bad = payload_json("botplatform.session_complete.json")
        bad["room_name"] = None
        bad = dumps(bad)
        for token in (TOKEN_OLD, TOKEN_NEW):
            d.request("POST", "/hooks/tok?token=" + token, tavus_body())
            d.request("POST", "/hooks/tok/" + token, tavus_body())
            d.request("POST", "/hooks/tok/" + token, bad)                    # 422, kept
            d.request("POST", "/hooks/tok?token=" + token, bad)
            d.request("POST", "/hooks/tok/" + token, b"{nope")               # 400
            d.request("POST", "/hooks/tok/" + token + "x", tavus_body())     # 401
            d.request("POST", "/hooks/tok?token=" + token[:-1], tavus_body())
        for secret in (SPEC_SECRET, SW_OTHER):
            for family in ("webhook", "svix"):
                b = tavus_body()
                h = sw_headers(secret, b, family=family)
                d.post(b, "sw", h)
                d.post(b, "sw", h)                                           # duplicate
                d.post(b + b" ", "sw", h)                                    # 401
                d.post(bad, "sw", sw_headers(secret, bad, family=family))    # 422
        for key in (GH_SECRET, GH_OLD):
            b = tavus_body()
            d.post(b, "gh", {"X-Hub-Signature-256": "sha256=" + hmac_text(key, b)})
            d.post(bad, "gh", {"X-Hub-Signature-256": "sha256=" + hmac_text(key, bad)})
        b = tavus_body()
        d.post(b, "b64", {"X-Signature": hmac_text(B64_SECRET, b, "sha512", "base64")})
        ts = str(int(time.time()))
        d.post(b, "stripe", {"X-Timestamp": ts,
                             "X-Signature": hmac_text(STRIPE_SECRET, ts.encode() + b"." + b)})
        d.post(b, "tavustool", {"X-Tavus-Signature": hmac_text(TAVUS_SECRET, b)})
        for userpass in (BASIC_OLD, BASIC_NEW):
            d.post(tavus_body(), "basic", {"Authorization": basic(userpass)})
            d.post(bad, "basic", {"Authorization": basic(userpass)})
            d.post(tavus_body(), "basic", {"Authorization": basic(userpass + "x")})

    def api_answers(self):
        texts = []
        for path in ("/v1/events?limit=500", "/v1/rejections?limit=500", "/v1/sessions?limit=500",
                     "/healthz"):
            status, _, body = self.d.request("GET", path)
            self.assertEqual(status, 200, path)
            texts.append(body.decode())
        for ev in self.d.paged("/v1/events", "events", limit=500):
            for path in ("/v1/events/" + ev["id"], "/v1/events/%s/raw" % ev["id"]):
                status, _, body = self.d.request("GET", path)
                self.assertEqual(status, 200, path)
                texts.append(body.decode())
        return texts

    def test_no_secret_in_log_api_answers_or_database(self):
        self.exercise()
        self.assertGreaterEqual(len(self.events("tok")), 4)
        self.assertGreaterEqual(len(self.rejections()), 8)
        texts = self.api_answers()
        blobs = database_blobs(self.d)
        log = self.d.log()
        self.assertRegex(log, r"ingest: evt_\S+ stored as ", "debug lines were logged")
        for secret in ALL_SECRETS:
            with self.subTest(secret=secret[:6]):
                self.assertNotIn(secret, log, "a secret in the log")
                for t in texts:
                    self.assertNotIn(secret, t, "a secret in an API answer")
                for name, blob in blobs.items():
                    self.assertNotIn(secret.encode(), blob, "a secret in " + name)

    def test_a_signed_body_is_kept_as_signed_whatever_the_url_says(self):
        # Masking is for token sources. On a signed source a path segment or ?token=
        # proves nothing, and must not rewrite the verified bytes: a replay of a
        # captured request with a chosen segment would be a new, altered event.
        conv = fresh_id("c")
        body = tavus_body(conv)
        sig = {"X-Hub-Signature-256": "sha256=" + hmac_text(GH_SECRET, body)}
        ack = self.accepted(self.d.request("POST", "/hooks/gh/" + conv, body, sig))
        status, _, raw = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])
        self.assertEqual((status, raw), (200, body))
        for path in ("/hooks/gh/" + conv[:12], "/hooks/gh?token=" + conv, "/hooks/gh"):
            with self.subTest(path=path):
                status, _, data = self.d.request("POST", path, body, sig)
                self.assertEqual(status, 200, data)
                self.assertTrue(json.loads(data)["duplicate"], data)
        self.assertStored("gh", 1)

    def test_only_the_token_that_authenticated_is_masked(self):
        # A path segment beside a good ?token= (or a query token beside a good path
        # token) authenticates nothing: it used to be masked all the same, every
        # occurrence of that word in the sender's text replaced by REDACTED.
        doc = payload_json("tavus.conversation.application.transcription_ready.json")
        doc["conversation_id"] = fresh_id("c")
        doc["properties"]["transcript"][1]["content"] = "review our conversations-so-far"
        doc["webhook_url"] = "https://h/hooks/tok/conversations-so-far?token=" + TOKEN_NEW
        body = dumps(doc)
        ack = self.accepted(self.d.request(
            "POST", "/hooks/tok/conversations-so-far?token=" + TOKEN_NEW, body))
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["payload"]["properties"]["transcript"][1]["content"],
                         "review our conversations-so-far")
        self.assertEqual(ev["payload"]["webhook_url"],
                         "https://h/hooks/tok/conversations-so-far?token=REDACTED")
        doc["conversation_id"] = fresh_id("c")
        doc["webhook_url"] = "https://h/hooks/tok/%s?token=conversations-so-far" % TOKEN_OLD
        ack = self.accepted(self.d.request(
            "POST", "/hooks/tok/%s?token=conversations-so-far" % TOKEN_OLD, dumps(doc)))
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["payload"]["properties"]["transcript"][1]["content"],
                         "review our conversations-so-far")
        self.assertEqual(ev["payload"]["webhook_url"],
                         "https://h/hooks/tok/REDACTED?token=conversations-so-far")

    def test_a_token_the_sender_echoes_in_the_body_is_masked(self):
        # Tavus echoes the callback_url, token included, in webhook_url. The token is
        # never stored (issue 10.5): it is masked there, and the rest of the body stays.
        doc = payload_json("tavus.conversation.system.pal_joined.json")
        doc["conversation_id"] = fresh_id("c")
        doc["webhook_url"] = "https://hooks.example.com/hooks/tok/" + TOKEN_NEW
        ack = self.accepted(self.d.request("POST", "/hooks/tok/" + TOKEN_NEW, dumps(doc)))
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["payload"]["webhook_url"], "https://hooks.example.com/hooks/tok/REDACTED")
        self.assertEqual(ev["payload"]["conversation_id"], doc["conversation_id"])
        self.assertNotIn(TOKEN_NEW, self.d.log())


if __name__ == "__main__":
    unittest.main()
