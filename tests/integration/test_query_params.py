"""Callback URL parameters are kept (issue 10.5).

A user adds ?user_id=42 to the callback URL to correlate events (PailFlow's carry no
user id). The query string of POST /hooks/{source} is stored with the event as `query`
(name -> value, a repeated name -> array), shown by the API and hookctl, and filterable
with query.NAME=VALUE. The auth token (?token= or the path segment) is never stored,
logged or shown: the database file itself is searched for it.
"""

import glob
import json
import os
import subprocess
import unittest

import hrtest
from hrtest import Daemon, DaemonTest, dumps, fresh_id, payload, payload_json

HOOKCTL = os.environ.get("HOOKCTL_BIN", "build/tools/hookctl")
TOKEN = "tok-" + "9f3c2e71a5b84d06" * 2  # long and unique enough to grep for

SOURCES = """
[source tok]
auth = token
secret_file = {dir}/tok.secret
"""


class QueryTest(DaemonTest):

    config = hrtest.config_with(sections=SOURCES)

    def setUp(self):
        self.d = Daemon(self.config)
        try:
            with open(os.path.join(self.d.dir, "tok.secret"), "w") as f:
                f.write(TOKEN + "\n")
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def post_q(self, query, body=None, source="pailflow"):
        body = body if body is not None else dumps(
            dict(payload_json("botplatform.session_complete.json"), room_name=fresh_id("r-")))
        return self.assertOk(self.d.request("POST", "/hooks/%s?%s" % (source, query), body))

    def test_query_is_kept_repeated_names_become_arrays(self):
        ack = self.post_q("user_id=42&tag=a&tag=b&tag=c&flag&empty=&sp=a%20b%26c&utf=%C3%A9")
        ev = self.get_ok("/v1/events/" + ack["id"])
        want = {"user_id": "42", "tag": ["a", "b", "c"], "flag": "", "empty": "",
                "sp": "a b&c", "utf": "\u00e9"}
        self.assertEqual(ev["query"], want)
        listed = self.get_ok("/v1/events")["events"][0]
        self.assertEqual(listed["query"], want)
        # Without a query string: an empty object, never null.
        ack = self.post_ok(payload("tavus.conversation.system.shutdown.json"))
        self.assertEqual(self.get_ok("/v1/events/" + ack["id"])["query"], {})

    def test_filter_by_query_parameter(self):
        a = self.post_q("user_id=42")["id"]
        b = self.post_q("user_id=43&tag=x")["id"]
        c = self.post_q("user_id=42&tag=x&tag=y")["id"]
        self.post_q("other=42")

        def ids(q):
            return [e["id"] for e in self.d.paged("/v1/events?" + q, "events", limit=2)]

        self.assertEqual(ids("query.user_id=42"), [c, a])
        self.assertEqual(ids("query.tag=x"), [c, b])
        self.assertEqual(ids("query.tag=y"), [c], "any value of a repeated name matches")
        self.assertEqual(ids("query.tag=x&query.user_id=42"), [c], "filters combine")
        self.assertEqual(ids("query.user_id=42&source=pailflow&kind=pailflow.session_complete"),
                         [c, a])
        self.assertEqual(ids("query.user_id=44"), [])
        self.assertEqual(ids("query.user%5Fid=42"), [c, a], "names are decoded")

    def test_a_parameter_without_a_value_can_be_filtered_for(self):
        # Regression: ?flag is kept as "flag": "" but query.flag= was refused 400 "needs a
        # value", so such an event could not be found by it.
        a = self.post_q("flag")["id"]
        b = self.post_q("flag=")["id"]
        self.post_q("flag=1")
        self.post_q("other")

        def ids(q):
            return [e["id"] for e in self.d.paged("/v1/events?" + q, "events")]
        self.assertEqual(ids("query.flag="), [b, a])
        self.assertEqual(ids("query.flag"), [b, a])
        # Other parameters still need a value.
        doc = self.assertProblem(self.d.request("GET", "/v1/events?source="), 400,
                                 "bad-parameter")
        self.assertEqual(doc["parameter"], "source")

    def test_bad_query_filters_are_400_naming_the_parameter(self):
        for path, param in (("/v1/events?query.=1", "query."),
                            ("/v1/events?query=1", "query"),
                            ("/v1/events?query.a=1&query.b=1&query.c=1&query.d=1&query.e=1",
                             "query.e")):
            with self.subTest(path=path):
                doc = self.assertProblem(self.d.request("GET", path), 400, "bad-parameter")
                self.assertEqual(doc["parameter"], param)

    def test_too_many_parameters_are_refused_not_cut(self):
        q = "&".join("p%d=%d" % (i, i) for i in range(65))
        body = payload("tavus.replica.completed.json")
        self.assertProblem(self.d.request("POST", "/hooks/default?" + q, body), 400,
                           "too-many-parameters")
        # The body is kept all the same (a sender that never retries has no other copy),
        # without the parameters, and can be accepted.
        [rej] = self.get_ok("/v1/rejections")["rejections"]
        detail = self.get_ok("/v1/rejections/" + rej["id"])
        self.assertEqual((detail["status"], detail["query"]), (400, {}))
        self.assertEqual(detail["problem"]["type"], "urn:hookrelay:problem:too-many-parameters")
        self.assertEqual(self.d.request("GET", "/v1/rejections/%s/raw" % rej["id"])[2], body)
        st, _, out = self.d.request("POST", "/v1/rejections/%s/accept" % rej["id"], b"")
        self.assertEqual(st, 200, out)
        q = "&".join("p%d=%d" % (i, i) for i in range(64))
        ack = self.assertOk(self.d.request("POST", "/hooks/default?" + q, b"{}"))
        self.assertEqual(len(self.get_ok("/v1/events/" + ack["id"])["query"]), 64)

    def test_the_token_is_never_stored_logged_or_shown(self):
        body = dumps({"event_type": "bot_left", "room_url": "https://x.daily.co/r1"})
        a = self.post_q("token=%s&user_id=42" % TOKEN, body, source="tok")
        b = self.assertOk(self.d.request("POST", "/hooks/tok/%s?user_id=43" % TOKEN, body + b" "))
        # Parameter names are looked up without regard to case (libmicrohttpd), so ?Token=
        # authenticates as ?token= does: it must be dropped as well.
        c = self.post_q("Token=%s&user_id=46" % TOKEN, body + b"  ", source="tok")
        e = self.post_q("user_id=47&TOKEN=%s" % TOKEN, body + b"   ", source="tok")
        bad = dumps({"event": "session_complete", "room_name": 7})
        self.assertProblem(self.d.request("POST", "/hooks/tok?user_id=44&token=" + TOKEN, bad), 422)
        self.assertProblem(self.d.request("POST", "/hooks/tok/%s?user_id=45" % TOKEN, b"{"), 400)
        rej = self.get_ok("/v1/rejections")["rejections"]
        self.assertEqual(len(rej), 2)
        for r in rej:
            self.assertOk(self.d.request("POST", "/v1/rejections/%s/accept" % r["id"]))
        self.assertEqual(self.get_ok("/v1/events/" + a["id"])["query"], {"user_id": "42"})
        self.assertEqual(self.get_ok("/v1/events/" + b["id"])["query"], {"user_id": "43"})
        self.assertEqual(self.get_ok("/v1/events/" + c["id"])["query"], {"user_id": "46"})
        self.assertEqual(self.get_ok("/v1/events/" + e["id"])["query"], {"user_id": "47"})
        shown = [self.d.request("GET", p)[2] for p in (
            "/v1/events", "/v1/events/" + a["id"], "/v1/events/" + b["id"],
            "/v1/events/" + c["id"], "/v1/events/" + e["id"],
            "/v1/rejections", "/v1/rejections/" + rej[0]["id"], "/v1/rejections/" + rej[1]["id"],
            "/v1/sessions", "/v1/deliveries", "/metrics")]
        for text in shown:
            self.assertNotIn(TOKEN.encode(), text)
        # While running the committed events are in the -wal; after a clean stop, in the
        # database file. Neither may hold the token, nor any file next to them.
        self.assert_not_on_disk(want=(self.d.db, self.d.db + "-wal"))
        rc = self.d.stop(timeout=30)
        self.assertEqual(rc, 0)
        self.assertNotIn(TOKEN, self.d.log())
        self.assert_not_on_disk(want=(self.d.db,))
        self.d.start()  # for tearDown's clean stop

    def test_a_token_echoed_in_the_body_is_masked(self):
        # Tavus quotes the callback URL, token included, in webhook_url. The token must not
        # reach the database, the API or a destination from there either.
        doc = payload_json("tavus.conversation.system.shutdown.json")
        doc["conversation_id"] = fresh_id("c")
        doc["webhook_url"] = "https://hooks.example.com/hooks/tok?token=%s&user_id=42" % TOKEN
        a = self.post_q("token=%s&user_id=42" % TOKEN, dumps(doc), source="tok")
        doc["conversation_id"] = fresh_id("c")
        doc["webhook_url"] = "https://hooks.example.com/hooks/tok/" + TOKEN
        b = self.assertOk(self.d.request("POST", "/hooks/tok/" + TOKEN, dumps(doc)))
        got_a = self.get_ok("/v1/events/" + a["id"])
        self.assertEqual(got_a["payload"]["webhook_url"],
                         "https://hooks.example.com/hooks/tok?token=REDACTED&user_id=42")
        self.assertEqual(got_a["kind"], "tavus.conversation.system.shutdown")
        got_b = self.get_ok("/v1/events/" + b["id"])
        self.assertEqual(got_b["payload"]["webhook_url"],
                         "https://hooks.example.com/hooks/tok/REDACTED")
        raw = self.d.request("GET", "/v1/events/%s/raw" % b["id"])[2]
        self.assertNotIn(TOKEN.encode(), raw)
        self.assertEqual(json.loads(raw)["conversation_id"], doc["conversation_id"])
        self.assert_not_on_disk(want=(self.d.db, self.d.db + "-wal"))

    def assert_not_on_disk(self, want):
        if hrtest.BACKEND != "sqlite":  # all the database holds, as pg_dump writes it
            blobs = hrtest.database_blobs(self.d)
        else:
            files = glob.glob(self.d.db + "*")
            for path in want:
                self.assertIn(path, files)
                self.assertGreater(os.path.getsize(path), 0, path)
            blobs = {}
            for path in files:  # the database, its -wal and -shm, the lock
                with open(path, "rb") as f:
                    blobs[path] = f.read()
        everything = b""
        for path, data in blobs.items():
            self.assertFalse(TOKEN.encode() in data, "the token is in " + path)
            self.assertFalse(TOKEN[:16].encode() in data, "part of the token is in " + path)
            everything += data
        # The test would pass on empty files: the other parameters must be there.
        self.assertTrue(b'"user_id":"42"' in everything, "the kept query is not on disk")

    def test_hookctl_shows_and_filters_the_query(self):
        ack = self.post_q("user_id=42&tag=a&tag=b")
        self.post_q("user_id=7")
        url = "http://127.0.0.1:%d" % self.d.port
        p = subprocess.run([HOOKCTL, "--url", url, "--json", "events", "list", "--query",
                            "user_id=42"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual([r["id"] for r in rows], [ack["id"]])
        self.assertEqual(rows[0]["query"], {"user_id": "42", "tag": ["a", "b"]})
        p = subprocess.run([HOOKCTL, "--url", url, "--json", "events", "list", "-q", "nameonly"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("expected NAME=VALUE", p.stderr)


if __name__ == "__main__":
    unittest.main()
