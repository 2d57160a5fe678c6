"""GET /v1/stream: events stored after a client connected arrive as server-sent
events, with ids, in order; `after` and Last-Event-ID resume without gaps or
duplicates; filters hold; shutdown and vanishing clients leave the daemon
clean."""

import http.client
import json
import os
import socket
import time
import unittest

from hrtest import DEFAULT_CONFIG, VALGRIND, Daemon, DaemonTest, config_with, dumps, fresh_id, payload, \
    payload_json, sanitizer_reports

TOKEN = "stream-t0ken-" + "0123456789abcdef"


class SSE:
    """A /v1/stream client: read() returns the next event as (id, event, data)."""

    def __init__(self, d, query="", headers=None, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
        self.conn.request("GET", "/v1/stream" + query, headers=headers or {})
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}
        self.comments = []
        self.retry = None
        self.last_id = None  # as EventSource keeps it: from any frame, with data or not

    def read(self):
        """The next event; None at the end of the stream."""
        fields = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if "id" in fields:
                    self.last_id = int(fields["id"])
                if "data" in fields:
                    return int(fields["id"]), fields.get("event"), json.loads(fields["data"])
                fields = {}
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(": ")
            if name == "retry":
                self.retry = int(value)
            else:
                fields[name] = value

    def opening(self):
        """Read the opening frame (no data): its id, or None."""
        fields = {}
        while (line := self.resp.readline().decode().rstrip("\n")) != "":
            name, _, value = line.partition(": ")
            fields[name] = value
        self.retry = int(fields["retry"]) if "retry" in fields else None
        self.last_id = int(fields["id"]) if "id" in fields else None
        return self.last_id

    def events(self, n):
        got = []
        for _ in range(n):
            ev = self.read()
            if ev is None:
                break
            got.append(ev)
        return got

    def rest(self):
        """Everything up to the end of the stream (a clean chunked end, else raises)."""
        got = []
        while (ev := self.read()) is not None:
            got.append(ev)
        return got

    def abort(self):
        """Vanish without a word: RST instead of FIN."""
        sock = self.conn.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        self.conn.close()

    def close(self):
        self.conn.close()


def tavus(name, conv):
    doc = payload_json(name)
    doc["conversation_id"] = conv
    return dumps(doc)


class StreamTest(DaemonTest):

    config = config_with(server="max_connections_per_ip = 0")

    def setUp(self):
        super().setUp()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        if self.d.proc is None:  # the test stopped it and checked its exit status
            log = self.d.log()
            self.d.cleanup()
            self.assertEqual(sanitizer_reports(log), [], log)
            return
        super().tearDown()

    def open(self, query="", headers=None, status=200):
        c = SSE(self.d, query, headers)
        self.clients.append(c)
        self.assertEqual(c.status, status, c.resp.read() if c.status != 200 else "")
        if status == 200:
            self.assertEqual(c.headers["content-type"], "text/event-stream")
            self.assertEqual(c.headers.get("cache-control"), "no-store")
        return c

    def post_n(self, n, source="default"):
        return [self.post_ok({"n": i, "nonce": fresh_id()}, source)["id"] for i in range(n)]

    def listed(self):
        """GET /v1/events, oldest first, by id."""
        return {e["id"]: e for e in self.d.paged("/v1/events", "events", limit=500)}

    def test_events_posted_after_connecting_arrive_in_order_with_ids(self):
        before = self.post_n(2)
        c = self.open()
        ids = self.post_n(5)
        got = c.events(5)
        self.assertEqual([data["id"] for _, _, data in got], ids)
        self.assertTrue(all(ev == "event" for _, ev, _ in got))
        seqs = [seq for seq, _, _ in got]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), 5)
        self.assertNotIn(before[-1], [data["id"] for _, _, data in got])
        self.assertEqual(c.retry, 3000)
        # Each data object is exactly what GET /v1/events lists.
        listed = self.listed()
        for _, _, data in got:
            self.assertEqual(data, listed[data["id"]])

    def test_include_headers_adds_each_events_kept_headers(self):
        # hookctl listen forwards the kept headers with the body: they come in the
        # frame, not from a GET /v1/events/{id} per event.
        c = self.open("?include=headers")
        sent = {"X-Request-Id": "req-" + fresh_id(), "User-Agent": "Tavus/1.0",
                "Authorization": "Bearer not-kept"}
        eid = self.post_ok({"n": 1, "nonce": fresh_id()}, headers=sent)["id"]
        [(_, _, data)] = c.events(1)
        self.assertEqual(data["id"], eid)
        detail = self.get_ok("/v1/events/" + eid)
        self.assertEqual(data["headers"], detail["headers"])
        self.assertEqual(data["headers"].get("x-request-id"), sent["X-Request-Id"])
        self.assertNotIn("authorization", data["headers"])
        listed = self.listed()[eid]
        self.assertEqual({k: v for k, v in data.items() if k != "headers"}, listed)

    def test_after_resumes_without_gaps_or_duplicates(self):
        c = self.open("?after=0")
        ids = self.post_n(6)
        got = c.events(6)
        self.assertEqual([d["id"] for _, _, d in got], ids)
        seqs = [s for s, _, _ in got]
        r = self.open("?after=%d" % seqs[1])
        self.assertEqual([d["id"] for _, _, d in r.events(4)], ids[2:])
        # Last-Event-ID (what a reconnecting EventSource sends) wins over the URL's after.
        r = self.open("?after=%d" % seqs[0], headers={"Last-Event-ID": str(seqs[3])})
        self.assertEqual([d["id"] for _, _, d in r.events(2)], ids[4:])

    def test_after_an_event_id_goes_on_from_a_listing(self):
        # The inspector lists a page, then opens the stream: with backlog=<a page>,
        # what passed a page between the two requests was in neither (a review:
        # 70 of 120 lost). After the newest event listed, nothing is lost.
        self.post_n(3)
        newest = self.get_ok("/v1/events?limit=2")["events"][0]["id"]
        ids = self.post_n(60)
        c = self.open("?after=" + newest)
        self.assertEqual([d["id"] for _, _, d in c.events(60)], ids)
        # With filters, only what matches; an id of no stored event is a 404.
        pf = self.post_n(2, "pailflow")
        c = self.open("?source=pailflow&after=" + newest)
        self.assertEqual([d["id"] for _, _, d in c.events(2)], pf)
        self.open("?after=evt_01m00000000000000000000000", status=404)

    def test_backlog_starts_with_the_newest_matching_events(self):
        tavus = self.post_n(4, "tavus")
        self.post_n(2, "pailflow")
        c = self.open("?source=tavus&backlog=3")
        later = self.post_n(1, "tavus")
        self.assertEqual([d["id"] for _, _, d in c.events(4)], tavus[1:] + later)
        c = self.open("?backlog=500&after=0&source=pailflow")  # after wins
        self.assertEqual(len(c.events(2)), 2)
        c = self.open("?source=nope&backlog=5")
        ids = self.post_n(1)
        c2 = self.open("?backlog=1")
        self.assertEqual(c2.read()[2]["id"], ids[0])

    def test_reconnecting_with_last_event_id_while_events_flow_loses_nothing(self):
        c = self.open()
        ids = self.post_n(4)
        got = c.events(2)
        c.abort()
        ids += self.post_n(4)  # stored while nobody listens
        r = self.open(headers={"Last-Event-ID": str(got[-1][0])})
        ids += self.post_n(2)
        got += r.events(8)
        self.assertEqual([d["id"] for _, _, d in got], ids)

    def test_a_client_cut_off_before_any_event_resumes_where_it_started(self):
        # A reload ends every stream; a client that had no event yet must still
        # resume from where it opened, not from the moment it comes back.
        self.post_n(2)
        c = self.open()
        start = c.opening()
        self.assertEqual(c.retry, 3000)
        self.assertIsNotNone(start, "the opening frame has no id")
        c.abort()
        ids = self.post_n(3)  # stored while nobody listens
        r = self.open(headers={"Last-Event-ID": str(start)})
        self.assertEqual([d["id"] for _, _, d in r.events(3)], ids)
        # A filtered stream's cursor is a position in the whole log all the same.
        c = self.open("?source=pailflow")
        start = c.opening()
        c.abort()
        ids = self.post_n(1, "pailflow")
        r = self.open("?source=pailflow", headers={"Last-Event-ID": str(start)})
        self.assertEqual([d["id"] for _, _, d in r.events(1)], ids)

    def test_a_position_past_the_log_goes_on_from_its_newest_event(self):
        # After a restore from a backup the log hands the same ids out again: a client
        # that saw ids past the restored newest must get what is stored next.
        self.post_n(2)
        for headers, query in (({"Last-Event-ID": str(10**12)}, ""), ({}, "?after=%d" % 10**12)):
            with self.subTest(query=query or "Last-Event-ID"):
                c = self.open(query, headers=headers)
                ids = self.post_n(2)
                self.assertEqual([d["id"] for _, _, d in c.events(2)], ids)

    def test_filters_pass_only_matching_events(self):
        conv_a, conv_b = fresh_id("c"), fresh_id("c")
        streams = {
            "source=tavus": lambda e: e["source"] == "tavus",
            "kind=tavus.conversation.system.shutdown":
                lambda e: e["kind"] == "tavus.conversation.system.shutdown",
            "provider=pailflow": lambda e: e["provider"] == "pailflow",
            "session=" + conv_a: lambda e: (e["session"] or {}).get("key") == conv_a,
            "session=conversation:" + conv_b: lambda e: (e["session"] or {}).get("id")
                == "conversation:" + conv_b,
            "event_type=system.replica_joined":
                lambda e: e["event_type"] == "system.replica_joined",
            "source=default&kind=unknown":
                lambda e: e["source"] == "default" and e["kind"] == "unknown",
            # Repeated parameters are alternatives; kind and source take globs.
            "kind=unknown&kind=pailflow.session_complete":
                lambda e: e["kind"] in ("unknown", "pailflow.session_complete"),
            "kind=tavus.conversation.system.*&source=tav*":
                lambda e: e["kind"].startswith("tavus.conversation.system.")
                and e["source"] == "tavus",
            "subtype=error&subtype=created": lambda e: e["subtype"] in ("error", "created"),
        }
        clients = {q: self.open("?" + q) for q in streams}
        posts = [("default", tavus("tavus.conversation.system.replica_joined.json", conv_a)),
                 ("tavus", tavus("tavus.conversation.system.shutdown.json", conv_b)),
                 ("pailflow", payload("botplatform.session_complete.json")),
                 ("default", tavus("tavus.conversation.system.shutdown.json", conv_a)),
                 ("default", b'{"something": "else"}'),
                 ("tavus", tavus("tavus.conversation.system.replica_joined.json", conv_b)),
                 ("default", payload("tavus.video.completed.json")),
                 ("default", payload("tavus.video.error.json")),
                 ("default", payload("agenthuman.session.created.json")),
                 ("default", payload("botplatform.bot_join_failed.json"))]
        for source, body in posts:
            self.post_ok(body, source)
        events = sorted(self.listed().values(), key=lambda e: e["received_at"])
        # A last event matching every filter ends each stream's expectations.
        for q, pred in streams.items():
            with self.subTest(q):
                want = [e["id"] for e in events if pred(e)]
                self.assertTrue(want, "the posts exercise " + q)
                got = clients[q].events(len(want))
                self.assertEqual([d["id"] for _, _, d in got], want)
        # Nothing else was queued: the next event each stream sees is one that matches.
        last = self.post_ok(tavus("tavus.conversation.system.shutdown.json", conv_a), "tavus")
        for q in ("source=tavus", "kind=tavus.conversation.system.shutdown",
                  "session=" + conv_a, "kind=tavus.conversation.system.*&source=tav*"):
            self.assertEqual(clients[q].read()[2]["id"], last["id"], q)

    def test_bad_parameters_are_refused(self):
        for query, param in (("?kind=no.such.kind", "kind"), ("?provider=acme", "provider"),
                             ("?after=-1", "after"), ("?after=x", "after"),
                             ("?backlog=501", "backlog"), ("?include=payload", "include"),
                             ("?limit=5", "limit")):
            with self.subTest(query):
                doc = self.assertProblem(self.d.request("GET", "/v1/stream" + query), 400,
                                         "bad-parameter")
                self.assertEqual(doc["parameter"], param)
        self.assertProblem(self.d.request("GET", "/v1/stream", headers={"Last-Event-ID": "abc"}),
                           400, "bad-parameter")
        self.assertProblem(self.d.request("POST", "/v1/stream", b"{}"), 405)

    def test_head_answers_the_headers_and_ends(self):
        status, hdrs, body = self.d.request("HEAD", "/v1/stream")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["content-type"], "text/event-stream")
        self.assertEqual(body, b"")
        self.assertHealthy()

    def test_a_request_after_a_head_on_one_connection_gets_its_own_answer(self):
        # libmicrohttpd sent the chunked body's last chunk after a HEAD's headers, and
        # a keep-alive client read "0" as the status line of its next answer (found
        # when the tests' requests began to share a connection). The HEAD's answer
        # now ends its connection, and the client opens another.
        c = self.d.conn()
        self.addCleanup(c.close)
        c.request("HEAD", "/v1/stream")
        r = c.getresponse()
        r.read()
        self.assertEqual((r.status, r.getheader("Connection")), (200, "close"))
        time.sleep(0.2)  # what followed the headers is in
        c.request("GET", "/healthz")
        r = c.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual(json.loads(r.read())["status"], "ok")

    def test_vanishing_clients_do_not_disturb_the_daemon(self):
        idle = self.open()           # suspended, waiting for events, when it goes
        busy = self.open("?after=0")  # reading when it goes
        self.post_n(3)
        busy.events(1)
        idle.abort()
        busy.abort()
        half = socket.create_connection(("127.0.0.1", self.d.port))
        half.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        half.close()
        ids = self.post_n(40)  # resumes the dead streams: their writes fail
        c = self.open()
        ids = self.post_n(3)
        self.assertEqual([d["id"] for _, _, d in c.events(3)], ids)
        self.assertHealthy()

    def test_the_daemon_stops_cleanly_with_streams_open(self):
        idle = self.open()
        reading = self.open("?after=0")
        ids = self.post_n(2)
        self.assertEqual([d["id"] for _, _, d in reading.events(2)], ids)
        self.assertEqual([d["id"] for _, _, d in idle.events(2)], ids)
        time.sleep(0.2)  # both suspended again
        t0 = time.monotonic()
        rc = self.d.stop()
        self.assertEqual(rc, 0, self.d.log())
        # Under memcheck the stop includes its leak check of the whole heap (5.2 s once).
        self.assertLess(time.monotonic() - t0, 15 if VALGRIND else 5)
        # Both streams end with a proper last chunk, not a reset connection.
        self.assertEqual(idle.rest(), [])
        self.assertEqual(reading.rest(), [])

    def test_streams_are_bounded(self):
        streams = [self.open() for _ in range(64)]
        self.assertProblem(self.d.request("GET", "/v1/stream"), 503, "overloaded")
        streams[0].abort()
        self.post_n(1)  # the dead stream notices on its next write
        deadline = time.monotonic() + 5
        while True:
            c = SSE(self.d)
            if c.status == 200 or time.monotonic() > deadline:
                break
            c.resp.read()
            c.close()
            time.sleep(0.05)
        self.clients.append(c)
        self.assertEqual(c.status, 200)


class StreamTokenTest(DaemonTest):

    config = DEFAULT_CONFIG + "[api]\ntoken_file = {dir}/token\n"

    def setUp(self):
        self.d = Daemon(self.config)
        with open(os.path.join(self.d.dir, "token"), "w") as f:
            f.write(TOKEN + "\n")
        self.d.start()

    def test_the_stream_needs_the_bearer_token(self):
        self.assertProblem(self.d.request("GET", "/v1/stream"), 401, "unauthorized")
        c = SSE(self.d, headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(c.status, 200)
        ack = self.post_ok({"n": 1})
        self.assertEqual(c.read()[2]["id"], ack["id"])
        c.close()

    def test_a_reload_ends_the_streams_a_replaced_token_opened(self):
        # Access is checked when a stream starts; it never ends by itself. A reload
        # ends it, so a token taken out of token_file stops being served, and the
        # client resumes under the new configuration without a gap.
        old = SSE(self.d, headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(old.status, 200)
        first = self.post_ok({"n": 1})
        first_seq, _, data = old.read()
        self.assertEqual(data["id"], first["id"])
        new_token = TOKEN[::-1]
        with open(os.path.join(self.d.dir, "token"), "w") as f:
            f.write(new_token + "\n")
        self.d.reload()
        started = time.monotonic()
        self.assertEqual(old.rest(), [], "the old token's stream went on")
        self.assertLess(time.monotonic() - started, 5)  # not at a keepalive 15 s later
        old.close()
        second = self.post_ok({"n": 2})
        refused = SSE(self.d, headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(refused.status, 401)
        refused.close()
        resumed = SSE(self.d, headers={"Authorization": "Bearer " + new_token,
                                       "Last-Event-ID": str(first_seq)})
        self.assertEqual(resumed.status, 200)
        self.assertEqual(resumed.read()[2]["id"], second["id"])
        resumed.close()


if __name__ == "__main__":
    unittest.main()
