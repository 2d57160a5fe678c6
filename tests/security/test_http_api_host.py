"""DNS rebinding and cross-site requests against the API; /readyz details
(docs/security.md, defences 9 and 20).

A web page on evil.example can rebind its name to 127.0.0.1: the browser then
sends `Host: evil.example` to the loopback-only API and lets the page read the
answer. And any page can make the browser POST a form to 127.0.0.1, which
triggered replays. The API now answers only Host names of its own (421
otherwise), and a state-changing request needs a JSON type or the bearer token
and an Origin of its own when there is one. /readyz shows its figures (free
disk bytes) only to a client the API would serve.
"""

import http.client
import json
import os
import unittest

from hrtest import Daemon, DaemonTest, config_with, fresh_id, payload_json

API_TOKEN = "api-token-for-host-tests-4b8e2f"
DEST = """
[destination nowhere]
url = http://127.0.0.1:9/
allow_private = true
retry_schedule = 1h
"""


class HostTest(DaemonTest):
    config = config_with(sections=DEST)

    def test_foreign_host_is_refused(self):
        for host in ("evil.example:%d" % self.d.port, "evil.example", "127.0.0.1.nip.io:%d" % self.d.port,
                     "localhost:1", "127.0.0.1:%d" % (self.d.port + 1), "api.example.net:8080"):
            with self.subTest(host=host):
                doc = self.assertProblem(self.d.request("GET", "/v1/events", headers={"Host": host}),
                                         421, "misdirected-request")
                self.assertEqual(doc["header"], "Host")
        self.assertProblem(self.d.request("GET", "/metrics", headers={"Host": "evil.example"}), 421)
        self.assertProblem(self.d.request("GET", "/v1/stream", headers={"Host": "evil.example"}), 421)

    def test_own_names_are_served(self):
        for host in ("127.0.0.1:%d" % self.d.port, "localhost:%d" % self.d.port,
                     "LOCALHOST:%d" % self.d.port, "[::1]:%d" % self.d.port, "127.0.0.1", "localhost"):
            with self.subTest(host=host):
                self.assertEqual(self.d.request("GET", "/v1/events", headers={"Host": host})[0], 200)

    def event(self):
        doc = dict(payload_json("tavus.conversation.system.shutdown.json"), conversation_id=fresh_id("c"))
        return self.post_ok(doc)["id"]

    def deliveries(self, eid):
        return len(self.get_ok("/v1/events/%s/deliveries" % eid)["deliveries"])

    def test_cross_site_form_post_triggers_nothing(self):
        eid = self.event()
        before = self.deliveries(eid)
        path = "/v1/events/%s/replay" % eid
        form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"}
        self.assertProblem(self.d.request("POST", path, b"a=b", headers=form), 403, "cross-origin")
        # No Origin (an old browser, a text/plain form): the type alone refuses it.
        for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x",
                      None):
            with self.subTest(ctype=ctype):
                doc = self.assertProblem(self.d.request("POST", path, b"a=b", headers={"Content-Type": ctype}),
                                         415, "unsupported-media-type")
                self.assertEqual(doc["header"], "Content-Type")
        # JSON from a foreign page is still refused by its Origin ("null": a sandboxed page).
        for origin in ("http://evil.example", "null", "http://127.0.0.1:%d" % (self.d.port + 1),
                       "https://evil.example", "file://"):
            with self.subTest(origin=origin):
                self.assertProblem(self.d.request("POST", path, b"{}", headers={"Origin": origin}), 403)
        self.assertEqual(self.deliveries(eid), before, "a refused request replayed the event")

    def test_same_origin_json_fetch_works(self):
        # What the web inspector at /ui does: fetch(), same origin, application/json.
        eid = self.event()
        path = "/v1/events/%s/replay" % eid
        for origin in ("http://127.0.0.1:%d" % self.d.port, "http://localhost:%d" % self.d.port, None):
            with self.subTest(origin=origin):
                st, _, body = self.d.request("POST", path, b"", headers={
                    "Content-Type": "application/json", "Origin": origin})
                self.assertEqual(st, 202, body)
                self.assertEqual(json.loads(body)["deliveries"], 1)

    def test_answers_forbid_sniffing_and_api_answers_other_origins(self):
        # A kept body is served as the type it came as; no browser may take it for
        # HTML, nor another site embed the API's answers.
        ack = json.loads(self.d.post(b'{"<b>html</b>": 1}')[2])
        for path in ("/v1/events", "/v1/events/%s/raw" % ack["id"]):
            status, hdrs, _ = self.d.request("GET", path)
            self.assertEqual(status, 200, path)
            self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", path)
            self.assertEqual(hdrs.get("cross-origin-resource-policy"), "same-origin", path)
        status, hdrs, _ = self.d.request("POST", "/hooks/nope", b"{}")
        self.assertEqual((status, hdrs.get("x-content-type-options")), (404, "nosniff"))
        status, hdrs, _ = self.d.request("GET", "/v1/nosuch")  # the API's, though no route
        self.assertEqual((status, hdrs.get("cross-origin-resource-policy")), (404, "same-origin"))
        # The event stream too: its answer is made apart from the others' (an API
        # review found it without either header).
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=5)
        try:
            conn.request("GET", "/v1/stream?backlog=0")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.getheader("content-type"), "text/event-stream")
            self.assertEqual(resp.getheader("x-content-type-options"), "nosniff")
            self.assertEqual(resp.getheader("cross-origin-resource-policy"), "same-origin")
        finally:
            conn.close()

    def test_readyz_details_for_api_clients_only(self):
        st, doc = self.d.get_json("/readyz")
        self.assertEqual(st, 200)
        self.assertIn("free_bytes", doc["checks"]["disk"])
        # Through a proxy (X-Forwarded-For), or under a foreign name: the status only.
        for headers in ({"X-Forwarded-For": "203.0.113.9"}, {"Host": "evil.example"}):
            with self.subTest(headers=headers):
                st, doc = self.d.get_json("/readyz", headers=headers)
                self.assertEqual(st, 200)
                self.assertEqual(doc, {"ready": True})

    def test_a_load_balancers_default_http10_check_is_answered(self):
        # docs/scaling.md: "A load balancer (nginx, HAProxy, a cloud one) in front of
        # the nodes, checking GET /readyz". HAProxy's `option httpchk GET /readyz` sends
        # an HTTP/1.0 request with no header at all, as HTTP/1.0 allows (RFC 9112
        # requires Host of HTTP/1.1 only). reqcheck.c refuses it 400 "no Host header":
        # every node is marked down, and the providers behind the balancer get its 503
        # (Tavus and PailFlow never retry).
        for path in ("/readyz", "/healthz"):
            with self.subTest(path=path):
                status, _, body = self.d.raw(("GET %s HTTP/1.0\r\n\r\n" % path).encode(),
                                             method="GET")
                self.assertEqual(status, 200, body)


class AllowedHostsTest(DaemonTest):
    """Behind a proxy that passes the client's Host: [api] allowed_hosts."""

    config = config_with(sections=DEST + "\n[api]\nallowed_hosts = hooks.example.com, api.example.net:8443\n")

    def test_configured_names(self):
        for host in ("hooks.example.com", "hooks.example.com:443", "HOOKS.example.com:8080",
                     "api.example.net:8443", "127.0.0.1:%d" % self.d.port):
            with self.subTest(host=host):
                self.assertEqual(self.d.request("GET", "/v1/events", headers={"Host": host})[0], 200)
        for host in ("api.example.net", "api.example.net:443", "evil.hooks.example.com"):
            with self.subTest(host=host):
                self.assertProblem(self.d.request("GET", "/v1/events", headers={"Host": host}), 421)
        doc = dict(payload_json("tavus.conversation.system.shutdown.json"), conversation_id=fresh_id("c"))
        eid = self.post_ok(doc)["id"]
        st, _, body = self.d.request("POST", "/v1/events/%s/replay" % eid, b"", headers={
            "Origin": "https://hooks.example.com", "Host": "hooks.example.com"})
        self.assertEqual(st, 202, body)

    def test_bad_names_are_a_config_error(self):
        d = Daemon(config_with(sections="[api]\nallowed_hosts = hooks example\n"))
        try:
            with self.assertRaises(RuntimeError):
                d.start()
            self.assertIn("allowed_hosts", d.log())
        finally:
            d.cleanup()


class TokenHostTest(DaemonTest):
    """With [api] token_file, the bearer token may stand for the JSON type; Host and
    Origin are checked all the same."""

    def setUp(self):
        self.d = Daemon(config_with(sections=DEST + "\n[api]\ntoken_file = {dir}/api.token\n"))
        try:
            with open(os.path.join(self.d.dir, "api.token"), "w") as f:
                f.write(API_TOKEN + "\n")
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def test_bearer_token(self):
        auth = {"Authorization": "Bearer " + API_TOKEN}
        doc = dict(payload_json("tavus.conversation.system.shutdown.json"), conversation_id=fresh_id("c"))
        eid = self.post_ok(doc)["id"]
        path = "/v1/events/%s/replay" % eid
        st, _, body = self.d.request("POST", path, b"", headers=dict(auth, **{"Content-Type": "text/plain"}))
        self.assertEqual(st, 202, body)
        self.assertProblem(self.d.request("POST", path, b"", headers=dict(auth, Origin="http://evil.example")),
                           403, "cross-origin")
        self.assertProblem(self.d.request("GET", "/v1/events", headers=dict(auth, Host="evil.example")), 421)
        self.assertProblem(self.d.request("GET", "/v1/events"), 401)
        st, doc = self.d.get_json("/readyz")
        self.assertEqual(doc, {"ready": True})  # no token: no details
        st, doc = self.d.get_json("/readyz", headers=auth)
        self.assertIn("checks", doc)


if __name__ == "__main__":
    unittest.main()
