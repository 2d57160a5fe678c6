"""The read API: filters return exactly the matching events, keyset paging
returns each event once, and the bearer token guards /v1/."""

import http.client
import json
import os
import re
import socket
import subprocess
import time
import unittest
import urllib.parse

import hrtest
from hrtest import DEFAULT_CONFIG, Daemon, DaemonTest, dumps, fresh_id, payload, payload_json, \
    sanitizer_reports

TOKEN = "t0ken-" + "s3cr3t" * 5


def post_filter_events(d):
    """Posts events covering every filterable dimension to daemon d; returns the two
    conversation ids and the events as the API shows them, in the order posted."""
    conv_a, conv_b = fresh_id("c"), fresh_id("c")
    posts = []
    for conv in (conv_a, conv_b):
        for name in ("tavus.conversation.system.replica_joined.json",
                     "tavus.conversation.system.shutdown.json"):
            doc = payload_json(name)
            doc["conversation_id"] = conv
            posts.append(("default", dumps(doc)))
    doc = payload_json("tavus.conversation.system.shutdown.json")
    doc["conversation_id"] = conv_a
    posts.append(("tavus", dumps(doc)))
    posts.append(("tavus", payload("botplatform.session_complete.json")))  # tavus.unknown
    posts.append(("pailflow", payload("botplatform.session_complete.json")))
    posts.append(("pailflow", payload("botplatform.bot_join_failed.json")))
    posts.append(("default", payload("tavus.video.completed.json")))
    posts.append(("default", payload("tavus.replica.error.json")))
    posts.append(("default", payload("agenthuman.session.created.json")))
    posts.append(("default", b'{"something": "else"}'))
    # A room key that looks like a conversation key: scopes keep them apart.
    doc = payload_json("botplatform.session_complete.json")
    doc["room_name"] = conv_b
    posts.append(("default", dumps(doc)))
    events = []
    for source, body in posts:
        status, _, data = d.post(body, source)
        if status != 200:
            raise AssertionError("POST /hooks/%s: %d %r" % (source, status, data[:500]))
        status, ev = d.get_json("/v1/events/" + json.loads(data)["id"])
        if status != 200:
            raise AssertionError("GET /v1/events/...: %d %r" % (status, ev))
        events.append(ev)
    return conv_a, conv_b, events


class FilterChecks:
    """expect(): a query lists exactly the events of self.events it should."""

    def expect(self, query, pred):
        got = self.d.paged("/v1/events?" + query, "events", limit=500)
        want = [e["id"] for e in reversed(self.events) if pred(e)]
        self.assertEqual([e["id"] for e in got], want, query)
        return got


class FilterTest(FilterChecks, hrtest.SharedDaemonTest):
    """The events are posted once for the class, and its tests only read: every listing
    is of those events alone, as in a daemon of the test's own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.conv_a, cls.conv_b, cls.events = post_filter_events(cls.d)
        except BaseException:
            cls.tearDownClass()
            raise

    def tearDown(self):
        # Read only: the store still holds the class's events and nothing more.
        self.assertEqual([e["id"] for e in self.d.paged("/v1/events", "events", limit=500)],
                         [e["id"] for e in reversed(self.events)], "a test changed the store")
        super().tearDown()

    def test_each_filter_returns_exactly_the_matching_events(self):
        sources = {e["source"] for e in self.events}
        providers = {e["provider"] for e in self.events if e["provider"]}
        kinds = {e["kind"] for e in self.events}
        event_types = {e["event_type"] for e in self.events if e["event_type"]}
        self.assertEqual(sources, {"default", "tavus", "pailflow"})
        for v in sources:
            self.expect("source=" + v, lambda e: e["source"] == v)
        for v in providers:
            self.expect("provider=" + v, lambda e: e["provider"] == v)
        for v in kinds:
            self.expect("kind=" + v, lambda e: e["kind"] == v)
        for v in event_types:
            self.expect("event_type=" + v, lambda e: e["event_type"] == v)
        self.expect("source=nope", lambda e: False)
        self.expect("event_type=nope.nope", lambda e: False)
        self.expect("kind=tavus.objective.completed", lambda e: False)

    def test_filters_combine(self):
        self.expect("source=default&kind=tavus.conversation.system.shutdown",
                    lambda e: e["source"] == "default"
                    and e["kind"] == "tavus.conversation.system.shutdown")
        self.expect("provider=pailflow&source=pailflow",
                    lambda e: e["provider"] == "pailflow" and e["source"] == "pailflow")
        self.expect("provider=tavus&session=" + self.conv_a,
                    lambda e: e["provider"] == "tavus" and e["session"]
                    and e["session"]["key"] == self.conv_a)

    def test_repeated_filters_are_alternatives(self):
        # Once, kind=A&kind=B answered A's events only.
        a, b = "tavus.conversation.system.shutdown", "pailflow.session_complete"
        for q in ("kind=%s&kind=%s" % (a, b), "kind=%s&kind=%s" % (b, a)):
            self.expect(q, lambda e: e["kind"] in (a, b))
        self.expect("kind=%s&kind=%s" % (a, a), lambda e: e["kind"] == a)
        self.expect("source=tavus&source=pailflow", lambda e: e["source"] in ("tavus", "pailflow"))
        self.expect("provider=pailflow&provider=agenthuman",
                    lambda e: e["provider"] in ("pailflow", "agenthuman"))
        self.expect("event_type=system.shutdown&event_type=session_complete",
                    lambda e: e["event_type"] in ("system.shutdown", "session_complete"))
        # Different parameters still all apply.
        self.expect("kind=%s&kind=%s&source=default" % (a, b),
                    lambda e: e["kind"] in (a, b) and e["source"] == "default")

    def test_kind_and_source_globs(self):
        self.expect("kind=tavus.conversation.*",
                    lambda e: e["kind"].startswith("tavus.conversation."))
        self.expect("kind=*.session_complete", lambda e: e["kind"] == "pailflow.session_complete")
        self.expect("kind=tavus.*&kind=agenthuman.session",
                    lambda e: e["kind"].startswith("tavus.") or e["kind"] == "agenthuman.session")
        self.expect("kind=*", lambda e: True)
        self.expect("kind=tavus.vide?", lambda e: e["kind"] == "tavus.video")
        self.expect("source=tav*", lambda e: e["source"] == "tavus")
        self.expect("source=*l*", lambda e: e["source"] in ("default", "pailflow"))
        self.expect("source=?avus&source=default",
                    lambda e: e["source"] in ("tavus", "default"))
        self.expect("source=nope*", lambda e: False)
        # Long globs: PostgreSQL wrote each as a LIKE pattern in 160 bytes and answered
        # one that did not fit 400 with no parameter named, where SQLite answered
        # (review RA40). A run of * is one; more characters than a name has match none.
        self.expect("source=" + "*" * 200 + "tavus", lambda e: e["source"] == "tavus")
        self.expect("source=" + "*_" * 70 + "*", lambda e: False)
        self.expect("source=" + "?" * 64 + "*", lambda e: False)
        self.expect("source=" + "*" * 100 + "d?f*" + "*" * 100, lambda e: e["source"] == "default")
        for q, param in (("kind=tavus.nothing.*", "kind"), ("kind=[a-z]*", "kind"),
                         ("kind=tavus.video&kind=nope", "kind"), ("source=a/b", "source"),
                         ("source=%25", "source"), ("source=[ab]", "source"),
                         ("provider=tavus&provider=auto", "provider")):
            with self.subTest(q=q):
                doc = self.assertProblem(self.d.request("GET", "/v1/events?" + q), 400,
                                         "bad-parameter")
                self.assertEqual(doc["parameter"], param)

    def test_many_filters_with_every_kind_fit_one_query(self):
        # kind=* names every kind; on PostgreSQL each was a parameter of its own and, with
        # 16 event types and a time range, the query passed the 64 it may have: 400 with
        # no parameter named, where SQLite answered.
        first = self.events[0]
        q = "kind=*&" + "&".join("event_type=e%d" % i for i in range(15))
        q += "&event_type=" + first["event_type"] + "&source=*&"
        q += "&".join("source=s%d" % i for i in range(15))
        q += "&provider=" + first["provider"] + "&since=7d&until=2099-01-01T00:00:00Z"
        listed = self.get_ok("/v1/events?" + q)["events"]
        self.assertEqual({e["event_type"] for e in listed}, {first["event_type"]})

    def test_every_filter_at_its_bound_fits_one_query(self):
        # Each repeatable filter at 16 values, 8 exact kinds, 4 query.NAME filters and a
        # time range: within every documented bound, 66 parameters on PostgreSQL, which
        # refused past 64 ("too many conditions") where SQLite answered.
        first = self.events[0]
        q = ["source=s%d" % i for i in range(15)] + ["source=*"]
        q += ["event_type=e%d" % i for i in range(15)] + ["event_type=" + first["event_type"]]
        q += ["subtype=x%d" % i for i in range(16)]
        known = ["tavus.video", "tavus.replica_training", "tavus.objective.completed",
                 "tavus.unknown", "pailflow.session_complete", "pailflow.bot_join_failed",
                 "pailflow.unknown", "agenthuman.session"]
        q += ["kind=" + k for k in [k for k in known if k != first["kind"]][:7]]
        q += ["kind=" + first["kind"]]
        q += ["query.q%d=v" % i for i in range(4)]
        q += ["provider=" + first["provider"], "since=7d", "until=2099-01-01T00:00:00Z"]
        self.assertEqual(self.get_ok("/v1/events?" + "&".join(q))["events"], [])

    def test_a_parameter_that_is_not_utf8_is_refused_naming_it(self):
        # PostgreSQL refused the bytes as text and the API answered 503; SQLite found
        # nothing. Either way the answer's JSON lost its detail when it quoted them.
        for path, param in (("/v1/events?event_type=%FF", "event_type"),
                            ("/v1/events?query.x=a%C3", "query.x"),
                            ("/v1/rejections?source=%FE%FF", "source"),
                            ("/v1/deliveries?destination=%FF", "destination"),
                            ("/v1/sessions?provider=%FF", "provider"),
                            ("/v1/events?%FF=1", "?")):
            with self.subTest(path=path):
                doc = self.assertProblem(self.d.request("GET", path), 400, "bad-parameter")
                self.assertEqual(doc["parameter"], param)
                self.assertIn("UTF-8", doc["detail"])
        # In the path: no such resource (no name of one is anything but UTF-8).
        for path in ("/v1/events/evt_%FF", "/v1/events/evt_%FF/deliveries",
                     "/v1/sessions/x%FF", "/v1/rejections/rej_%FF"):
            with self.subTest(path=path):
                self.assertEqual(self.d.request("GET", path)[0], 404)

    def test_subtype_filter(self):
        subtypes = {e["subtype"] for e in self.events if e["subtype"]}
        self.assertGreaterEqual(subtypes, {"completed", "error", "created"})
        for v in subtypes:
            self.expect("subtype=" + v, lambda e: e["subtype"] == v)
        self.expect("subtype=error&subtype=created", lambda e: e["subtype"] in ("error", "created"))
        self.expect("kind=tavus.video&subtype=completed",
                    lambda e: e["kind"] == "tavus.video" and e["subtype"] == "completed")
        self.expect("subtype=nope", lambda e: False)

    def test_session_filter_by_scope_key_and_bare_key(self):
        def with_key(key, scope=None):
            return lambda e: (e["session"] is not None and e["session"]["key"] == key
                              and (scope is None or e["session"]["scope"] == scope))

        got = self.expect("session=conversation:" + self.conv_a, with_key(self.conv_a, "conversation"))
        self.assertEqual(len(got), 3)
        self.expect("session=" + self.conv_a, with_key(self.conv_a))
        # conv_b is both a conversation and a room: the scope tells them apart.
        got = self.expect("session=conversation:" + self.conv_b,
                          with_key(self.conv_b, "conversation"))
        self.assertEqual(len(got), 2)
        got = self.expect("session=room:" + self.conv_b, with_key(self.conv_b, "room"))
        self.assertEqual(len(got), 1)
        got = self.expect("session=" + self.conv_b, with_key(self.conv_b))
        self.assertEqual(len(got), 3)
        self.expect("session=room:room-name", with_key("room-name", "room"))
        self.expect("session=video:1e30440cf9", with_key("1e30440cf9", "video"))
        self.expect("session=conversation:room-name", lambda e: False)
        self.expect("session=nosuch", lambda e: False)

    def test_since_and_until_bound_received_at(self):
        times = [e["received_at"] for e in self.events]
        self.assertEqual(times, sorted(times))
        mid = times[len(times) // 2]
        q = urllib.parse.quote(mid)
        self.expect("since=" + q, lambda e: e["received_at"] >= mid)
        self.expect("until=" + q, lambda e: e["received_at"] < mid)
        self.expect("since=%s&until=%s" % (urllib.parse.quote(times[2]), q),
                    lambda e: times[2] <= e["received_at"] < mid)
        # An offset form of the same instant means the same thing.
        plus = mid[:-1] + "+00:00"
        self.expect("since=" + urllib.parse.quote(plus), lambda e: e["received_at"] >= mid)
        # Durations: "that long ago".
        self.expect("since=1h", lambda e: True)
        self.expect("until=1h", lambda e: False)
        time.sleep(0.3)
        self.expect("since=200ms", lambda e: False)
        self.expect("until=200ms", lambda e: True)
        self.expect("since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z", lambda e: True)
        # A duration has its unit: a bare number (epoch seconds, most likely) was read as
        # that many seconds ago, so since=<an hour ago, in epoch seconds> listed everything.
        for q in ("since=%d" % (time.time() - 3600), "until=1752216347", "since=1.5"):
            with self.subTest(q=q):
                doc = self.assertProblem(self.d.request("GET", "/v1/events?" + q), 400,
                                         "bad-parameter")
                self.assertEqual(doc["parameter"], q.split("=")[0])

    def test_until_the_epoch_excludes_everything(self):
        # 1970-01-01T00:00:00Z is 0 microseconds, which the store reads as "no bound";
        # the API maps it to the first microsecond instead.
        self.expect("until=1970-01-01T00:00:00Z", lambda e: False)


class FilterLimitTest(FilterChecks, DaemonTest):
    """A daemon of its own: the test posts 50 more events, which the listings of
    FilterTest would hold."""

    def setUp(self):
        super().setUp()
        self.conv_a, self.conv_b, self.events = post_filter_events(self.d)

    def test_limit_caps_a_page_and_default_is_50(self):
        page = self.get_ok("/v1/events?limit=3")
        self.assertEqual([e["id"] for e in page["events"]],
                         [e["id"] for e in reversed(self.events)][:3])
        self.assertIsNotNone(page["next_cursor"])
        for i in range(50):
            self.post_ok({"filler": i})
        page = self.get_ok("/v1/events")
        self.assertEqual(len(page["events"]), 50)
        self.assertIsNotNone(page["next_cursor"])


class IncludePayloadTest(DaemonTest):
    """include=payload: each listed event carries its payload; pages stop at 4 MiB."""
    BUDGET = 4 << 20

    def big_body(self, size):
        doc = payload_json("tavus.conversation.application.transcription_ready.json")
        doc["conversation_id"] = fresh_id("c")
        chunk = 1 << 20  # under [server] max_string
        doc["properties"]["transcript"] = [{"role": "user", "content": "x" * min(chunk, size - i)}
                                           for i in range(0, size, chunk)]
        return dumps(doc)

    def test_payloads_are_the_stored_bodies(self):
        bodies = [payload("tavus.conversation.system.shutdown.json"),
                  b'  {"spaced" : [1, 2.50, "\\u00e9"]}\n',
                  payload("botplatform.bot_join_failed.json"), b'[1, "two"]']
        ids = [self.post_ok(b)["id"] for b in bodies]
        plain = self.get_ok("/v1/events")
        status, hdrs, raw = self.d.request("GET", "/v1/events?include=payload")
        self.assertEqual(status, 200, raw)
        self.assertEqual(hdrs["content-type"], "application/json")
        doc = json.loads(raw)
        self.assertEqual(doc["next_cursor"], None)
        self.assertEqual([e["id"] for e in doc["events"]], list(reversed(ids)))
        for got, want, body in zip(doc["events"], plain["events"], reversed(bodies)):
            self.assertEqual(got.pop("payload"), json.loads(body))
            self.assertEqual(got, want)
        # Filters, limit and cursors work as without payloads.
        page = self.get_ok("/v1/events?include=payload&limit=2&kind=tavus.*&kind=unknown")
        self.assertEqual([e["id"] for e in page["events"]], [ids[3], ids[1]])
        self.assertEqual(page["next_cursor"] is None, False)
        rest = self.get_ok("/v1/events?include=payload&limit=2&kind=tavus.*&kind=unknown&cursor="
                           + page["next_cursor"])
        self.assertEqual([e["id"] for e in rest["events"]], [ids[0]])
        for q, param in (("include=payloads", "include"), ("include=", "include"),
                         ("include=payload&include=payload", "include")):
            doc = self.assertProblem(self.d.request("GET", "/v1/events?" + q), 400, "bad-parameter")
            self.assertEqual(doc["parameter"], param)

    def test_pages_stop_at_the_byte_budget(self):
        ids = [self.post_ok(self.big_body(900 * 1024))["id"] for _ in range(9)]
        seen, pages, cursor = [], 0, None
        while True:
            q = "/v1/events?include=payload&limit=500" + ("&cursor=" + cursor if cursor else "")
            status, _, raw = self.d.request("GET", q)
            self.assertEqual(status, 200, raw[:300])
            self.assertLessEqual(len(raw), self.BUDGET, "a page past the budget")
            doc = json.loads(raw)
            self.assertGreater(len(doc["events"]), 0)
            for e in doc["events"]:
                self.assertEqual(len(e["payload"]["properties"]["transcript"][0]["content"]),
                                 900 * 1024)
            seen += [e["id"] for e in doc["events"]]
            pages += 1
            cursor = doc["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, list(reversed(ids)))  # each once, newest first
        self.assertEqual(pages, 3)  # 4 + 4 + 1 events of ~0.9 MiB

    def test_a_page_holds_its_own_bytes_not_the_whole_result(self):
        # PostgreSQL's reader took the whole result of limit + 1 rows into memory, bodies
        # and all, and cut the page at 4 MiB only afterwards: 40 bodies of 0.9 MiB made a
        # 4-MiB page cost 36 MiB. It reads a row at a time now. (SQLite always did.)
        for _ in range(40):
            self.post_ok(self.big_body(900 * 1024))
        with open("/proc/%d/clear_refs" % self.d.proc.pid, "w") as f:
            f.write("5")  # the peak RSS starts again from here

        def peak_kib():
            with open("/proc/%d/status" % self.d.proc.pid) as f:
                return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))

        before = peak_kib()
        page = self.get_ok("/v1/events?include=payload&limit=500")
        grown = peak_kib() - before
        self.assertEqual(len(page["events"]), 4)
        self.assertLess(grown, 20 * 1024, "the page took %d KiB" % grown)

    def test_an_event_larger_than_the_budget_comes_alone(self):
        small = self.post_ok(payload("tavus.video.completed.json"))["id"]
        big = self.post_ok(self.big_body(5 << 20))["id"]
        first = self.get_ok("/v1/events?include=payload")
        self.assertEqual([e["id"] for e in first["events"]], [big])
        self.assertIsNotNone(first["next_cursor"])
        rest = self.get_ok("/v1/events?include=payload&cursor=" + first["next_cursor"])
        self.assertEqual([e["id"] for e in rest["events"]], [small])
        self.assertIsNone(rest["next_cursor"])


class PagingTest(DaemonTest):

    def test_keyset_paging_returns_every_event_once_newest_first(self):
        ids = []
        conn = self.d.conn()
        try:
            for i in range(120):
                doc = {"n": i, "pad": "x" * (i % 7)}
                ids.append(self.assertOk(self.d.post(doc, conn=conn))["id"])
        finally:
            conn.close()
        seen, cursor, sizes = [], None, []
        for page_no in range(10):
            path = "/v1/events?limit=50" + ("&cursor=" + cursor if cursor else "")
            page = self.get_ok(path)
            sizes.append(len(page["events"]))
            seen.extend(e["id"] for e in page["events"])
            cursor = page["next_cursor"]
            if page_no == 0:
                # Events arriving while a client pages do not shift its pages.
                for i in range(5):
                    self.post_ok({"late": i})
            if cursor is None:
                break
        self.assertIsNone(cursor)
        self.assertEqual(sizes, [50, 50, 20])
        self.assertEqual(seen, list(reversed(ids)))
        self.assertEqual(len(set(seen)), 120)

    def test_exact_multiple_of_limit_ends_with_null_cursor(self):
        for i in range(10):
            self.post_ok({"i": i})
        page = self.get_ok("/v1/events?limit=10")
        self.assertEqual(len(page["events"]), 10)
        self.assertIsNone(page["next_cursor"])
        page = self.get_ok("/v1/events?limit=5")
        self.assertIsNotNone(page["next_cursor"])
        page = self.get_ok("/v1/events?limit=5&cursor=" + page["next_cursor"])
        self.assertEqual(len(page["events"]), 5)
        self.assertIsNone(page["next_cursor"])

    def test_a_relative_since_means_the_same_bound_on_every_page(self):
        # since=5s was resolved again at every page: the bound moved forward while
        # a client paged, and the oldest events of the window, on the last page,
        # were left out (hookctl --all --since).
        # The first page is asked for well within 3 s of the oldest event (a loaded
        # machine has 3 s for three requests); the next one past 3 s of it, whatever
        # the machine: sleep() waits at least as long as it is told.
        first = self.post_ok({"n": "oldest"})["id"]
        rest = [self.post_ok({"n": i})["id"] for i in range(2)]
        seen, cursors = [], [None]
        for page_no in range(5):
            path = "/v1/events?limit=2&since=3s" + ("&cursor=" + cursors[-1] if cursors[-1] else "")
            page = self.get_ok(path)
            seen.extend(e["id"] for e in page["events"])
            cursors.append(page["next_cursor"])
            if cursors[-1] is None:
                break
            time.sleep(3.5)  # "3 s ago" now would leave the oldest out
        self.assertEqual(seen, list(reversed(rest)) + [first])
        for cursor in cursors[1:-1]:
            self.assertRegex(cursor, r"^[0-9]+-[0-9]+$")
        # The same for the sessions, the deliveries and the rejections.
        for path in ("/v1/sessions", "/v1/deliveries", "/v1/rejections"):
            with self.subTest(path=path):
                page = self.get_ok(path + "?limit=1&since=1h")
                self.assertIn("next_cursor", page)
        self.d.post(b'{"event":"session_complete"}')
        self.d.post(b'{"event":"session_complete"}')
        page = self.get_ok("/v1/rejections?limit=1&since=1h")
        self.assertRegex(page["next_cursor"], r"^[0-9]+-[0-9]+$")
        # An absolute bound needs nothing more: the cursor is the position alone.
        page = self.get_ok("/v1/events?limit=1&since=2000-01-01T00:00:00Z")
        self.assertRegex(page["next_cursor"], r"^[0-9]+$")
        for bad in ("5-", "-5", "5-x", "x", "5-5-5", "0"):
            with self.subTest(cursor=bad):
                self.assertProblem(self.d.request("GET", "/v1/events?cursor=" + bad),
                                   400, "bad-parameter")

    def test_empty_database_lists_nothing(self):
        self.assertEqual(self.get_ok("/v1/events"), {"events": [], "next_cursor": None})
        self.assertEqual(self.get_ok("/v1/sessions"), {"sessions": [], "next_cursor": None})
        self.assertEqual(self.get_ok("/v1/rejections"), {"rejections": [], "next_cursor": None})

    def test_post_to_the_api_is_405(self):
        for path in ("/v1/events", "/v1/sessions", "/v1/rejections", "/healthz"):
            with self.subTest(path=path):
                resp = self.d.request("POST", path, b"{}")
                doc = self.assertProblem(resp, 405, "method-not-allowed")
                self.assertEqual(resp[1].get("allow"), "GET, HEAD")  # HEAD is GET's
                # every problem says what happened in words, these two too
                self.assertEqual(doc["detail"],
                                 "POST is not a method of this path: the Allow header lists them")
        self.assertEqual(self.get_ok("/v1/events")["events"], [])
        doc = self.assertProblem(self.d.request("GET", "/v1/nothing"), 404, "not-found")
        self.assertIn("no route", doc["detail"])
        # a method of bytes past ASCII: the detail (not text, as it was) went missing
        doc = self.assertProblem(self.d.raw(b"G\xffT /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                            b"Connection: close\r\n\r\n", method="GET"),
                                 405, "method-not-allowed")
        self.assertEqual(doc["detail"],
                         "G?T is not a method of this path: the Allow header lists them")

    def test_healthz_reports_counters(self):
        self.post_ok(payload("tavus.replica.completed.json"))
        self.d.post(b'{"event":"session_complete"}')
        h = self.get_ok("/healthz")
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["database"], "ok")
        self.assertEqual(h["ingest"]["accepted"], 1)
        self.assertEqual(h["ingest"]["rejected"], 1)


class TokenTest(hrtest.SharedDaemonTest):
    """One daemon for the class: each test posts a body of its own."""
    config = DEFAULT_CONFIG + "[api]\ntoken_file = {dir}/token\n"

    @classmethod
    def make_daemon(cls):
        d = Daemon(cls.config)
        with open(os.path.join(d.dir, "token"), "w") as f:
            f.write(TOKEN + "  \n")
        return d

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        assert TOKEN not in cls.d.log(), "the token in the log"  # the whole log

    def replica_body(self):
        return dumps(dict(payload_json("tavus.replica.completed.json"), replica_id=fresh_id("r")))

    def test_api_requires_the_bearer_token(self):
        doc = dict(payload_json("tavus.replica.completed.json"), replica_id=fresh_id("r"))
        ack = self.post_ok(dumps(doc))  # webhooks need no token
        self.assertFalse(ack["duplicate"])
        for path in ("/v1/events", "/v1/events/" + ack["id"], "/v1/events/%s/raw" % ack["id"],
                     "/v1/sessions", "/v1/sessions/replica:" + doc["replica_id"], "/v1/rejections"):
            with self.subTest(path=path):
                resp = self.d.request("GET", path)
                self.assertProblem(resp, 401, "unauthorized")
                self.assertTrue(resp[1].get("www-authenticate", "").startswith("Bearer"), resp[1])
                for bad in ("Bearer wrong-token-wrong-token", "Bearer " + TOKEN[:-1],
                            "Bearer " + TOKEN + "x", "Basic " + TOKEN, TOKEN, "Bearer",
                            "Bearer  " + TOKEN):
                    resp = self.d.request("GET", path, headers={"Authorization": bad})
                    self.assertProblem(resp, 401, "unauthorized", bad)
                resp = self.d.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
                self.assertEqual(resp[0], 200, resp)

    def test_healthz_needs_no_token(self):
        self.assertHealthy()

    def test_token_does_not_leak_into_stored_headers(self):
        ack = self.post_ok(self.replica_body(), headers={"Authorization": "Bearer " + TOKEN})
        self.assertFalse(ack["duplicate"])  # the event of this request, not an earlier one
        ev = self.get_ok("/v1/events/" + ack["id"], headers={"Authorization": "Bearer " + TOKEN})
        self.assertNotIn("authorization", ev["headers"])
        self.assertNotIn(TOKEN, self.d.log())

    def test_short_token_is_a_configuration_error(self):
        d = Daemon(self.config)
        try:
            with open(os.path.join(d.dir, "token"), "w") as f:
                f.write("short\n")
            with self.assertRaises(RuntimeError):
                d.start()
            self.assertEqual(d.stop(), 78)
            self.assertEqual(sanitizer_reports(d.log()), [])
        finally:
            d.cleanup()


READ_TOKEN = "read-only-token-" + "9f3c1a7e" * 4


class ReadTokenTest(hrtest.SharedDaemonTest):
    """[api] read_token_file: a second token that may GET and HEAD only, for a scraper
    or a dashboard, so that its credentials cannot replay, accept or discard."""
    config = DEFAULT_CONFIG + ("[api]\ntoken_file = {dir}/token\n"
                               "read_token_file = {dir}/read-token\n")

    @classmethod
    def make_daemon(cls):
        d = Daemon(cls.config)
        for name, token in (("token", TOKEN), ("read-token", READ_TOKEN)):
            with open(os.path.join(d.dir, name), "w") as f:
                f.write(token + "\n")
        return d

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        assert READ_TOKEN not in cls.d.log(), "the read token in the log"

    def test_the_read_token_reads(self):
        ack = self.post_ok(dumps(dict(payload_json("tavus.replica.completed.json"),
                                      replica_id=fresh_id("r"))))
        read = {"Authorization": "Bearer " + READ_TOKEN}
        for path in ("/v1/events", "/v1/events/" + ack["id"], "/v1/sessions",
                     "/v1/rejections", "/v1/destinations", "/metrics"):
            with self.subTest(path=path):
                self.assertEqual(self.d.request("GET", path, headers=read)[0], 200)
                self.assertEqual(self.d.request("HEAD", path, headers=read)[0], 200)
        ready = json.loads(self.d.request("GET", "/readyz", headers=read)[2])
        self.assertIn("checks", ready)  # the details an API client sees

    def test_the_read_token_cannot_write(self):
        ack = self.post_ok(dumps(dict(payload_json("tavus.replica.completed.json"),
                                      replica_id=fresh_id("r"))))
        path = "/v1/events/%s/replay" % ack["id"]
        for token in (READ_TOKEN,):
            resp = self.d.request("POST", path, b"{}", headers={
                "Authorization": "Bearer " + token, "Content-Type": "application/json"})
            self.assertProblem(resp, 403, "read-only-token")
        # the full token still writes (no destination here: 409 or 202, never 401/403)
        status = self.d.request("POST", path, b"{}", headers={
            "Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})[0]
        self.assertNotIn(status, (401, 403))
        # a wrong token is no read token either
        self.assertProblem(self.d.request("GET", "/v1/events", headers={
            "Authorization": "Bearer " + READ_TOKEN + "x"}), 401, "unauthorized")

    def test_the_files_are_checked_together(self):
        for text, files, why in (
                (DEFAULT_CONFIG + "[api]\nread_token_file = {dir}/read-token\n",
                 {"read-token": READ_TOKEN}, "needs token_file"),
                (self.config, {"token": TOKEN, "read-token": TOKEN}, "of its own"),
                (self.config, {"token": TOKEN, "read-token": "short"}, "at least 16")):
            with self.subTest(why=why):
                d = Daemon(text)
                try:
                    for name, token in files.items():
                        with open(os.path.join(d.dir, name), "w") as f:
                            f.write(token + "\n")
                    r = subprocess.run([hrtest.BIN, "-t", "-c", d.config_path],
                                       capture_output=True, text=True, timeout=30)
                    self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
                    self.assertIn(why, r.stderr)
                    self.assertNotIn(TOKEN, r.stdout + r.stderr)
                finally:
                    d.cleanup()



def non_loopback_ipv4():
    """This host's address on its default route, or None (no packet is sent)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") or ip == "0.0.0.0" else ip


class LoopbackOnlyTest(DaemonTest):
    """Without a token the API answers loopback clients only; webhooks and
    /healthz answer everyone."""
    config = DEFAULT_CONFIG.replace("listen = 127.0.0.1:0", "listen = 0.0.0.0:0")

    def setUp(self):
        self.ip = non_loopback_ipv4()
        if self.ip is None:
            self.skipTest("no non-loopback IPv4 address on this host")
        super().setUp()

    def remote(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection(self.ip, self.d.port, timeout=10)
        try:
            return self.d.request(method, path, body, headers, conn=c)
        finally:
            c.close()

    def test_api_refuses_non_loopback_clients_without_a_token(self):
        status, _, data = self.remote("POST", "/hooks/default", payload("tavus.replica.completed.json"))
        self.assertEqual(status, 200, data)
        eid = json.loads(data)["id"]
        ev = self.get_ok("/v1/events/" + eid)
        self.assertTrue(ev["remote_addr"].startswith(self.ip + ":"), ev["remote_addr"])
        for path in ("/v1/events", "/v1/events/" + eid, "/v1/sessions", "/v1/rejections"):
            with self.subTest(path=path):
                self.assertProblem(self.remote("GET", path), 403, "forbidden")
        self.assertEqual(self.remote("GET", "/healthz")[0], 200)


class ProxiedLoopbackTest(DaemonTest):
    """A proxy on the same host connects from loopback: a forwarded request must
    not count as a loopback client when the API has no token."""

    def test_forwarded_requests_are_not_loopback_clients(self):
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            with self.subTest(header=header):
                value = "for=203.0.113.7" if header == "Forwarded" else "203.0.113.7"
                self.assertProblem(self.d.request("GET", "/v1/events", headers={header: value}),
                                   403, "forbidden")
        self.assertEqual(self.d.request("GET", "/v1/events")[0], 200)
        self.assertEqual(self.d.request("GET", "/healthz", headers={"X-Forwarded-For": "203.0.113.7"})[0], 200)


if __name__ == "__main__":
    unittest.main()
