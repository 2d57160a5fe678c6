"""Deduplication: a repeated delivery is answered 200 with the first event's id and
"duplicate": true, and stores and forwards nothing.

The key is the webhook-id (or svix-id) header when present (never on an HMAC
source, whose signature does not cover it), else the one documented twin's key
(Tavus pal_joined / replica_joined), else the body's SHA-256; a source's `dedup`
setting can pick body, a header, or off. It is claimed inside the insert transaction, so
identical requests racing on many connections store one event.
"""

import base64
import concurrent.futures
import json
import hashlib
import hmac
import os
import threading
import time
import unittest

import hrtest
from hrtest import Daemon, DaemonTest, dumps, fresh_id, payload_json
from sink import Sink

SW_SECRET = "whsec_" + base64.b64encode(b"dedup-test-standard-webhooks-key").decode()

SOURCES = """
[source off]
dedup = off
[source body]
dedup = body
[source hdr]
dedup = header:X-Delivery-Id
[source short]
dedup_window = 1m
[source swoff]
auth = standard-webhooks
dedup = off
secret_file = {dir}/sw.secret
"""


def tavus(name, conv=None, **props):
    doc = payload_json(name)
    if conv is not None:
        doc["conversation_id"] = conv
    doc.setdefault("properties", {}).update(props)
    return doc


def sw_headers(body, msg_id=None):
    msg_id = msg_id or fresh_id("msg_", 24)
    ts = str(int(time.time()))
    key = base64.b64decode(SW_SECRET[6:])
    mac = hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256)
    return {"webhook-id": msg_id, "webhook-timestamp": ts,
            "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode()}


class DedupBase(DaemonTest):

    config = hrtest.config_with(sections=SOURCES)

    def setUp(self):
        self.d = Daemon(self.config)
        try:
            with open(os.path.join(self.d.dir, "sw.secret"), "w") as f:
                f.write(SW_SECRET + "\n")
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def post(self, body, source="default", headers=None):
        if isinstance(body, (dict, list)):
            body = dumps(body)
        return self.post_ok(body, source, headers=headers)

    def first(self, body, source="default", headers=None):
        ack = self.post(body, source, headers)
        self.assertFalse(ack["duplicate"], ack)
        return ack

    def dup_of(self, ack, body, source="default", headers=None):
        again = self.post(body, source, headers)
        self.assertEqual(again, dict(ack, duplicate=True), "expected a duplicate of %s" % ack["id"])
        return again

    def count(self, source="default"):
        return len(self.d.paged("/v1/events?source=" + source, "events", limit=500))


class KindKeyTest(DedupBase):
    """Without a delivery id, a key may only merge the same callback: an exact resend,
    or the one twin a provider documents (Tavus pal_joined / replica_joined). Tavus and
    PailFlow never retry, so a body wrongly called a duplicate is lost for good."""

    def assert_resend_is_one_and_change_is_another(self, doc, change, source="default"):
        ack = self.first(doc, source)
        self.dup_of(ack, doc, source)
        changed = json.loads(json.dumps(doc))
        change(changed)
        self.assertNotEqual(changed, doc)
        other = self.first(changed, source)
        self.assertNotEqual(other["id"], ack["id"])
        return ack, other

    def test_reused_daily_room_is_two_events(self):
        # Issue 10: the same room_name, a second meeting (room_id, transcript) within the
        # window was answered "duplicate" and its transcript was never stored.
        room = fresh_id("room-")
        first = dict(payload_json("botplatform.session_complete.json"), room_name=room)
        second = dict(first, room_id="9a6f3d2e-1b0c-4c1e-8f6a-5f0c8a3e2b7d",
                      transcript_text="Bot: Welcome back!\nUser: Second interview today.",
                      duration_seconds=600)
        a = self.first(first, "pailflow")
        b = self.first(second, "pailflow")
        self.assertNotEqual(a["id"], b["id"])
        events = self.d.paged("/v1/events?source=pailflow", "events")
        self.assertEqual(len(events), 2)
        texts = {self.get_ok("/v1/events/" + e["id"])["payload"]["transcript_text"]
                 for e in events}
        self.assertEqual(texts, {first["transcript_text"], second["transcript_text"]})
        # Both are in the room's session.
        sess = self.get_ok("/v1/sessions/room:" + room)
        self.assertEqual(sess["event_count"], 2)

    def test_quiet_bot_sessions_of_one_room_with_the_same_bytes_are_two_events(self):
        # The bot path sends no transcript or room id and no duration; a bot that heard
        # nothing sends an empty transcript. Two such sessions of a reused room are the
        # same bytes, and PailFlow never sends a callback twice (SPEC 5.3): keyed by its
        # bytes, the second was answered "duplicate" and lost.
        room = fresh_id("lobby-")
        quiet = dumps({"event": "session_complete", "transcript_id": None, "room_id": None,
                       "room_name": room, "duration_seconds": None, "transcript_text": "",
                       "summary": "Summary pending", "exit_reason": "idle_timeout"})
        a = self.first(quiet, "pailflow")
        b = self.first(quiet, "pailflow")
        self.assertNotEqual(a["id"], b["id"])
        self.assertEqual(self.count("pailflow"), 2)
        self.assertEqual(self.get_ok("/v1/sessions/room:" + room)["event_count"], 2)
        # A source that asks for byte keys gets them.
        c = self.first(quiet, "body")
        self.dup_of(c, quiet, "body")

    def test_tavus_conversation_events_key_on_their_bytes(self):
        conv = fresh_id("c")

        def later(d):
            d["timestamp"] = "2030-01-01T00:00:00.000000Z"

        for name, change in (
                ("tavus.conversation.system.shutdown.json",
                 lambda d: d["properties"].update(shutdown_reason="max_call_duration reached")),
                ("tavus.conversation.application.transcription_ready.json",
                 lambda d: d["properties"]["transcript"].append({"role": "user",
                                                                 "content": "one more"})),
                ("tavus.conversation.application.recording_ready.json", later),
                ("tavus.conversation.application.recording_copy_failed.json", later),
                ("tavus.conversation.application.perception_analysis.json",
                 lambda d: d["properties"].update(analysis="another summary")),
                ("tavus.conversation.application.perception_unavailable.json", later),
                ("tavus.conversation.application.post_call_action_executed.json",
                 lambda d: d["properties"].update(status="error")),
                ("tavus.objective.completed.json",
                 lambda d: d["properties"].update(output_variables={"x": "y"}))):
            with self.subTest(payload=name):
                self.assert_resend_is_one_and_change_is_another(tavus(name, conv), change)
        self.assertEqual(self.count(), 16)

    def test_pal_joined_and_replica_joined_of_one_conversation_are_one_event(self):
        conv = fresh_id("c")
        pal = tavus("tavus.conversation.system.pal_joined.json", conv)
        replica = tavus("tavus.conversation.system.replica_joined.json", conv)
        ack = self.first(pal)
        self.assertEqual(ack["kind"], "tavus.conversation.system.replica_joined")
        self.dup_of(ack, replica)
        events = self.d.paged("/v1/events", "events")
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["event_type"], "system.pal_joined", "the first is kept")
        # Another conversation is another event, in either order.
        other = fresh_id("c")
        a = self.first(tavus("tavus.conversation.system.replica_joined.json", other))
        self.dup_of(a, tavus("tavus.conversation.system.pal_joined.json", other))
        self.assertEqual(self.count(), 2)

    def test_a_later_join_of_one_conversation_is_not_its_twin(self):
        conv = fresh_id("c")
        ack = self.first(tavus("tavus.conversation.system.replica_joined.json", conv))
        rejoin = tavus("tavus.conversation.system.pal_joined.json", conv)
        rejoin["timestamp"] = "2025-07-11T07:10:00.000000Z"
        self.assertNotEqual(self.first(rejoin)["id"], ack["id"])
        self.assertEqual(self.count(), 2)

    def test_pailflow_bot_join_failed_and_unknown_events(self):
        failed = dict(payload_json("botplatform.bot_join_failed.json"),
                      workflow_thread_id=fresh_id("wt-"))
        self.assert_resend_is_one_and_change_is_another(
            failed, lambda d: d.update(duration_seconds=3), "pailflow")
        # An event PailFlow may add: it never sends one twice, so the same bytes are two
        # events (two bots leaving one room); keyed by them, the second was lost.
        left = dumps({"event": "bot_left", "room_name": fresh_id("standup-")})
        a, b = self.first(left, "pailflow"), self.first(left, "pailflow")
        self.assertNotEqual(a["id"], b["id"])
        self.assertEqual(a["kind"], "pailflow.unknown")
        self.assertEqual(self.count("pailflow"), 4)

    def test_video_ready_and_error_are_two_events(self):
        vid = fresh_id("v", 10)
        ready = payload_json("tavus.video.completed.json")
        error = payload_json("tavus.video.error.json")
        ready["video_id"] = error["video_id"] = vid
        ack = self.first(ready)
        self.dup_of(ack, ready)
        self.first(error)
        self.first(dict(ready, updated_at="2024-08-28 16:00:00.000000"))
        self.assertEqual(self.count(), 3)

    def test_replica_training(self):
        rid = fresh_id("r", 12)
        done = dict(payload_json("tavus.replica.completed.json"), replica_id=rid)
        err = dict(payload_json("tavus.replica.error.json"), replica_id=rid)
        ack = self.first(done)
        self.dup_of(ack, done)
        self.first(err)
        self.first(dict(err, error_message="another reason"))
        self.assertEqual(self.count(), 3)

    def test_agenthuman_session_states_and_unknown_bodies(self):
        sid = "sess_" + fresh_id("", 26).upper()
        docs = [payload_json("agenthuman.session.%s.json" % s) for s in ("created", "started",
                                                                           "ended")]
        acks = []
        for doc in docs:
            doc["session_id"] = sid
            acks.append(self.first(doc))
        self.dup_of(acks[2], docs[2])
        # A relayed object whose metadata changed is another state of the session.
        self.first(dict(docs[2], metadata={"note": "re-sent"}))
        wrapped = payload_json("agenthuman.unknown.end_session_response.json")
        wrapped["session"]["session_id"] = sid
        self.assert_resend_is_one_and_change_is_another(
            wrapped, lambda d: d.update(message="again"))
        self.assertEqual(self.count(), 6)
        self.assertEqual(self.get_ok("/v1/sessions/agenthuman:" + sid)["event_count"], 6)

    def test_tavus_unknown_events(self):
        # A guardrail triggered twice in one call: no payload is published, and one
        # without a time sends the same bytes each time; the second was lost.
        doc = {"event_type": "conversation.guardrail.triggered", "message_type": "conversation",
               "conversation_id": fresh_id("c"), "properties": {"guardrail": "pii"}}
        a, b = self.first(doc, "tavus"), self.first(doc, "tavus")
        self.assertEqual(a["kind"], "tavus.unknown")
        self.assertNotEqual(a["id"], b["id"])
        # With a timestamp, the same bytes are a resend of one callback.
        timed = dict(doc, timestamp="2025-07-11T06:45:47.472000Z")
        self.assert_resend_is_one_and_change_is_another(
            timed, lambda d: d["properties"].update(guardrail="toxicity"), "tavus")
        self.assertEqual(self.count("tavus"), 4)

    def test_the_same_bytes_to_two_callback_urls_are_two_events(self):
        # Per-objective or per-guardrail callback URLs that differ in their query: the
        # same bytes to each were one key, the second answered "duplicate" and lost.
        body = dumps(tavus("tavus.conversation.system.shutdown.json", fresh_id("c")))
        post = lambda q: self.assertOk(self.d.request("POST", "/hooks/default" + q, body))
        a, b, none = post("?objective=a"), post("?objective=b"), post("")
        self.assertEqual(len({a["id"], b["id"], none["id"]}), 3)
        self.assertFalse(any(x["duplicate"] for x in (a, b, none)))
        again = post("?objective=a")
        self.assertEqual(again, dict(a, duplicate=True))
        self.dup_of(none, body)
        self.assertEqual(self.count(), 3)

    def test_unknown_bodies_dedupe_on_their_bytes(self):
        body = b'{"something": "else", "n": 1}'
        ack = self.first(body)
        self.dup_of(ack, body)
        self.first(b'{"something": "else",  "n": 1}')  # one more blank: other bytes
        self.first(b'{"something": "else", "n": 2}')
        self.assertEqual(self.count(), 3)

    def test_duplicates_are_per_source(self):
        doc = tavus("tavus.conversation.system.shutdown.json", fresh_id("c"))
        a = self.first(doc, "default")
        b = self.first(doc, "tavus")
        self.assertNotEqual(a["id"], b["id"])
        self.dup_of(b, doc, "tavus")


class ModeTest(DedupBase):

    def test_dedup_off_stores_every_copy(self):
        doc = tavus("tavus.conversation.system.shutdown.json", fresh_id("c"))
        ids = {self.first(doc, "off")["id"] for _ in range(3)}
        self.assertEqual(len(ids), 3)
        # Not even a webhook-id makes a repeat when dedup is off (and the source unsigned).
        h = {"webhook-id": "msg_same"}
        self.first(b'{"a": 1}', "off", h)
        self.first(b'{"a": 1}', "off", h)
        self.assertEqual(self.count("off"), 5)

    def test_dedup_body_compares_bytes_only(self):
        conv = fresh_id("c")
        pal = dumps(tavus("tavus.conversation.system.pal_joined.json", conv))
        ack = self.first(pal, "body")
        self.dup_of(ack, pal, "body")
        # The natural key would call these repeats; body mode does not.
        self.first(dumps(tavus("tavus.conversation.system.replica_joined.json", conv)), "body")
        self.first(pal + b"\n", "body")
        # Nor does a webhook-id make a repeat of different bytes in body mode.
        self.first(b'{"x": 1}', "body", {"webhook-id": "msg_1"})
        self.first(b'{"x": 2}', "body", {"webhook-id": "msg_1"})
        self.assertEqual(self.count("body"), 5)

    def test_dedup_header(self):
        a = self.first(b'{"x": 1}', "hdr", {"X-Delivery-Id": "d-1"})
        self.dup_of(a, b'{"x": 2}', "hdr", {"X-Delivery-Id": "d-1"})
        self.dup_of(a, b'{"x": 3}', "hdr", {"x-delivery-id": "d-1"})  # names are case-blind
        self.first(b'{"x": 1}', "hdr", {"X-Delivery-Id": "d-2"})      # same bytes, new id
        # Without the header: as auto (webhook-id, else the twin key, else the body).
        conv = fresh_id("c")
        doc = tavus("tavus.conversation.system.shutdown.json", conv)
        b = self.first(doc, "hdr")
        self.dup_of(b, doc, "hdr")
        self.first(tavus("tavus.conversation.system.shutdown.json", conv, x=1), "hdr")
        self.assertEqual(self.count("hdr"), 4)

    def test_webhook_id_header_in_auto_mode(self):
        a = self.first(b'{"n": 1}', headers={"webhook-id": "msg_A"})
        self.dup_of(a, b'{"n": 2}', headers={"webhook-id": "msg_A"})
        b = self.first(b'{"n": 1}', headers={"svix-id": "msg_B"})
        self.dup_of(b, b'{"n": 3}', headers={"svix-id": "msg_B"})
        # The id beats the natural key: two ids, one conversation -> two events.
        doc = tavus("tavus.conversation.system.shutdown.json", fresh_id("c"))
        self.first(doc, headers={"webhook-id": "msg_C"})
        self.first(doc, headers={"webhook-id": "msg_D"})
        self.assertEqual(self.count(), 4)
        # A body of another kind under a stored id: the answer names the stored
        # event's kind (dup_of compares the whole answer), not the new body's.
        e = self.first(tavus("tavus.conversation.system.shutdown.json", fresh_id("c")),
                       headers={"webhook-id": "msg_E"})
        self.dup_of(e, b'{"n": 5}', headers={"webhook-id": "msg_E"})

    def test_verified_webhook_id_is_the_key_even_with_dedup_off(self):
        body = b'{"n": 1}'
        h = sw_headers(body)
        a = self.first(body, "swoff", h)
        self.dup_of(a, body, "swoff", sw_headers(body, h["webhook-id"]))
        other = b'{"n": 2}'
        self.dup_of(a, other, "swoff", sw_headers(other, h["webhook-id"]))
        # A new id with the same body is a new event (dedup = off: bytes do not count).
        self.first(body, "swoff", sw_headers(body))
        self.assertEqual(self.count("swoff"), 2)


class WindowTest(DedupBase):

    def dedup_rows(self):
        return hrtest.db_rows(self.d, "SELECT source, key, event_id, expires_at FROM dedup")

    def test_keys_are_kept_for_the_window_and_an_expired_key_does_not_block(self):
        body = b'{"window": "test"}'
        t0 = time.time()
        a = self.first(body, "short")
        d = self.first(body, "default")
        rows = {r[0]: r for r in self.dedup_rows()}
        self.assertEqual(rows["short"][2], a["id"])
        self.assertAlmostEqual(rows["short"][3] / 1e6, t0 + 60, delta=5)
        self.assertAlmostEqual(rows["default"][3] / 1e6, t0 + 7 * 86400, delta=5)
        self.dup_of(a, body, "short")
        # Waiting out even a minute is too slow for a test: age the key instead.
        hrtest.db_exec(self.d, "UPDATE dedup SET expires_at = %d WHERE source = 'short'"
                       % int((time.time() - 1) * 1e6))
        b = self.first(body, "short")
        self.assertNotEqual(b["id"], a["id"])
        self.dup_of(b, body, "short")          # the key now names the new event
        self.dup_of(d, body, "default")        # other sources keep theirs
        self.assertEqual(self.count("short"), 2)


class DeliveryTest(DedupBase):
    """A duplicate creates no deliveries."""

    def setUp(self):
        self.sink = Sink(max_seconds=120)
        # 50 connections at once from 127.0.0.1: keep the per-address cap out of the way.
        self.config = hrtest.config_with(server="max_connections_per_ip = 0", sections=SOURCES + """
[destination down]
url = %s/in
allow_private = true
""" % self.sink.url)
        try:
            super().setUp()
        except BaseException:
            self.sink.stop()
            raise

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.sink.stop()

    def deliveries(self):
        return self.d.paged("/v1/deliveries", "deliveries", limit=500)

    def test_a_duplicate_is_neither_stored_nor_forwarded(self):
        conv = fresh_id("c")
        a = self.first(tavus("tavus.conversation.system.pal_joined.json", conv))
        self.dup_of(a, tavus("tavus.conversation.system.replica_joined.json", conv))
        self.dup_of(a, tavus("tavus.conversation.system.pal_joined.json", conv))
        body = b'{"n": 1}'
        h = sw_headers(body)
        b = self.first(body, "swoff", h)
        self.dup_of(b, body, "swoff", h)
        self.assertEqual(len(self.deliveries()), 2)
        got = self.sink.wait_count(2, timeout=20)
        time.sleep(0.5)
        got = self.sink.received()
        self.assertEqual(len(got), 2, [r.body[:80] for r in got])
        self.assertEqual(sorted(r.headers.get("webhook-id") for r in got), sorted([a["id"], b["id"]]))

    def test_fifty_identical_requests_at_once_store_and_forward_one_event(self):
        doc = tavus("tavus.conversation.system.shutdown.json", fresh_id("c"))
        body = dumps(doc)
        n = 50
        barrier = threading.Barrier(n, timeout=30)

        def fire(_):
            conn = self.d.conn(timeout=30)
            try:
                conn.connect()
                barrier.wait()
                return self.d.post(body, conn=conn)
            finally:
                conn.close()

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            answers = list(pool.map(fire, range(n)))
        docs = [self.assertOk(a) for a in answers]
        self.assertEqual(len({d["id"] for d in docs}), 1, docs)
        self.assertEqual(sum(1 for d in docs if not d["duplicate"]), 1, docs)
        self.assertEqual(self.count(), 1)
        self.assertEqual(len(self.deliveries()), 1)
        self.sink.wait_count(1, timeout=20)
        time.sleep(0.5)
        self.assertEqual(len(self.sink.received()), 1)


if __name__ == "__main__":
    unittest.main()
