"""Daily.co as a provider (issue 16): auth = daily, the verification probe, typed
daily.<type> kinds, daily.unknown, dedup by the envelope id, and refusals answered 200.

Signatures are computed here with Python's hmac and base64, independently of the
daemon: X-Webhook-Signature = base64(HMAC-SHA256(base64decode(secret),
"<X-Webhook-Timestamp>.<raw body>")), the timestamp in milliseconds.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import time
import unittest

from hrtest import Daemon, DaemonTest, config_with, dumps, fresh_id, payload, payload_json

SECRET_NEW = base64.b64encode(b"daily-hmac-secret-current-000001").decode()
SECRET_OLD = base64.b64encode(b"daily-hmac-secret-rotated-out-02").decode()
NOT_OURS = base64.b64encode(b"some-other-domain-webhook-secret").decode()

DAILY_SOURCE = """
[source daily]
provider = daily
secret_file = {dir}/daily.secret
tolerance = 5m
"""
CONFIG = config_with(sections=DAILY_SOURCE)


def now_ms():
    return int(time.time() * 1000)


def sign(secret_b64, ts, body):
    """Daily's scheme, from its documentation and the issue (not from our code)."""
    mac = hmac.new(base64.b64decode(secret_b64), ts.encode() + b"." + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def daily_headers(body, secret=SECRET_NEW, ts=None):
    ts = str(now_ms()) if ts is None else ts
    return {"X-Webhook-Timestamp": ts, "X-Webhook-Signature": sign(secret, ts, body)}


def envelope(type_, payload_, event_id=None, event_ts=None):
    return {"version": "1.0.0", "type": type_, "id": event_id or fresh_id("evt-"),
            "payload": payload_, "event_ts": event_ts or time.time()}


class DailyTestBase(DaemonTest):
    config = CONFIG
    secrets = "%s\n# rotated out, still accepted\n%s\n" % (SECRET_NEW, SECRET_OLD)

    def setUp(self):
        self.d = Daemon(self.config)
        try:
            path = os.path.join(self.d.dir, "daily.secret")
            with open(path, "w") as f:
                f.write(self.secrets)
            os.chmod(path, 0o600)
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def post_daily(self, doc, secret=SECRET_NEW, ts=None, headers=None):
        body = doc if isinstance(doc, bytes) else dumps(doc)
        h = daily_headers(body, secret, ts)
        h.update(headers or {})
        return self.d.post(body, "daily", headers=h)

    def events(self):
        return self.d.paged("/v1/events?source=daily", "events", limit=500)

    def metric(self, name, source="daily"):
        status, _, body = self.d.request("GET", "/metrics")
        self.assertEqual(status, 200)
        m = re.search(r'^%s\{source="%s"\} (\d+)$' % (name, source), body.decode(), re.M)
        return int(m.group(1)) if m else None


class DailyAuthTest(DailyTestBase):

    def test_signed_events_are_accepted_with_either_secret(self):
        for secret in (SECRET_NEW, SECRET_OLD):
            with self.subTest(secret=secret[:6]):
                ack = self.assertOk(self.post_daily(payload_json("daily.meeting.started.json")
                                                    | {"id": fresh_id("met-")}, secret))
                self.assertEqual(ack["kind"], "daily.meeting.started")
                self.assertFalse(ack["duplicate"])
        self.assertEqual(len(self.events()), 2)

    def test_a_timestamp_in_seconds_signed_as_sent_is_accepted(self):
        # Daily's unit is taken to be milliseconds (issue 16), but no source settles
        # it: a fresh timestamp in seconds, signed as sent, must not lose every event.
        secs = str(int(time.time()))
        ack = self.assertOk(self.post_daily(payload_json("daily.meeting.started.json")
                                            | {"id": fresh_id("met-")}, ts=secs))
        self.assertEqual(ack["kind"], "daily.meeting.started")
        self.assertEqual(len(self.events()), 1)

    def test_common_verifier_mistakes_are_refused(self):
        body = dumps(envelope("meeting.started", {"room": "r", "meeting_id": "m", "start_ts": 1}))
        ts = str(now_ms())
        key = base64.b64decode(SECRET_NEW)
        mac = hmac.new(key, ts.encode() + b"." + body, hashlib.sha256)
        secs = str(int(time.time()))
        wrong = {
            "hex digest": (ts, mac.hexdigest()),
            "key not base64-decoded": (ts, base64.b64encode(
                hmac.new(SECRET_NEW.encode(), ts.encode() + b"." + body, hashlib.sha256)
                .digest()).decode()),
            "body only": (ts, base64.b64encode(
                hmac.new(key, body, hashlib.sha256).digest()).decode()),
            "signed in ms, sent in seconds": (secs, sign(SECRET_NEW, ts, body)),
            "stale": (str(now_ms() - 6 * 60 * 1000), None),
            "future": (str(now_ms() + 6 * 60 * 1000), None),
            "another secret": (ts, sign(NOT_OURS, ts, body)),
            "sha256= prefix": (ts, "sha256=" + sign(SECRET_NEW, ts, body)),
        }
        for what, (t, sig) in wrong.items():
            with self.subTest(mistake=what):
                sig = sig if sig is not None else sign(SECRET_NEW, t, body)
                resp = self.d.post(body, "daily", headers={"X-Webhook-Timestamp": t,
                                                           "X-Webhook-Signature": sig})
                self.assertProblem(resp, 401, "unauthorized", what)
        for headers in ({}, {"X-Webhook-Timestamp": ts},
                        {"X-Webhook-Signature": sign(SECRET_NEW, ts, body)}):
            self.assertProblem(self.d.post(body, "daily", headers=headers), 401, "unauthorized")
        # The same body, signed right, goes in: only the mistakes above were refused.
        self.assertOk(self.d.post(body, "daily", headers={"X-Webhook-Timestamp": ts,
                                                          "X-Webhook-Signature":
                                                          sign(SECRET_NEW, ts, body)}))
        self.assertEqual(len(self.events()), 1)
        self.assertGreaterEqual(self.metric("hookrelay_auth_failures_total"), len(wrong) + 3)

    def test_signature_headers_are_kept_with_the_event(self):
        body = payload("daily.dialout.connected.json")
        h = daily_headers(body)
        ack = self.assertOk(self.d.post(body, "daily", headers=h))
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["headers"]["x-webhook-timestamp"], h["X-Webhook-Timestamp"])
        self.assertEqual(ev["provider"], "daily")
        # The dial-out example sends its payload timestamp as a string of digits.
        self.assertEqual(ev["typed"]["payload"]["timestamp"]["utc"],
                         "2024-10-04T06:30:26.000000Z")


class DailyProbeTest(DailyTestBase):

    def test_probe_is_answered_200_never_stored_and_counted(self):
        probe = b'{"test":"test"}'
        # Daily may send it before the webhook's hmac is known here: unsigned is fine,
        # signed with a secret of ours is fine, signed with another one is fine too.
        for headers in ({}, daily_headers(probe), daily_headers(probe, NOT_OURS),
                        {"X-Webhook-Signature": "garbage", "X-Webhook-Timestamp": "1"}):
            start = time.monotonic()
            doc = self.assertOk(self.d.post(probe, "daily", headers=headers))
            self.assertLess(time.monotonic() - start, 2.0, "the probe must be answered fast")
            self.assertEqual(doc, {"probe": True})
        self.assertOk(self.d.post(b'{ "test" : "test" }\n', "daily"))
        self.assertEqual(self.events(), [])
        self.assertEqual(self.d.paged("/v1/rejections", "rejections"), [])
        self.assertEqual(self.metric("hookrelay_probes_total"), 5)
        self.assertEqual(self.metric("hookrelay_auth_failures_total"), 0)
        self.assertIn("answered Daily's verification probe", self.d.log())  # before the answer

    def test_anything_beside_the_probe_is_not_a_probe(self):
        for body in ({"test": "test", "type": "meeting.started"}, {"test": "other"},
                     {"test": ["test"]}, ["test"], {"Test": "test"}):
            with self.subTest(body=body):
                self.assertProblem(self.d.post(dumps(body), "daily"), 401, "unauthorized")
        # Signed, it is a body like any other: kept as daily.unknown.
        ack = self.assertOk(self.post_daily({"test": "test", "x": 1}))
        self.assertEqual(ack["kind"], "daily.unknown")
        # The probe is unsigned: only as JSON (a browser's form was answered 200).
        for ct in ("text/plain", "application/x-www-form-urlencoded", None):
            with self.subTest(content_type=ct):
                self.assertProblem(self.d.post(b'{"test":"test"}', "daily",
                                               headers={"Content-Type": ct}), 401)
        self.assertEqual(self.metric("hookrelay_probes_total"), 0)

    def test_probe_is_only_a_daily_sources_concern(self):
        # On the auto source it is an ordinary body, stored as unknown.
        ack = self.post_ok(b'{"test":"test"}', "default")
        self.assertEqual(ack["kind"], "unknown")


class DailyEventsTest(DailyTestBase):

    def test_every_daily_example_is_stored_as_its_kind(self):
        names = sorted(n for n in os.listdir(os.environ.get("HR_PAYLOADS_DIR", ""))
                       if n.startswith("daily."))
        self.assertEqual(len(names), 28)
        for name in names:
            with self.subTest(payload=name):
                ack = self.assertOk(self.post_daily(payload(name)))
                want = "daily.unknown" if name.startswith("daily.unknown.") \
                    else name[:-len(".json")]
                self.assertEqual(ack["kind"], want)
        # provider=daily lists them (documented in api.md since it was found missing there).
        listed = self.d.paged("/v1/events?provider=daily", "events", limit=500)
        self.assertEqual(len(listed), len(names))
        self.assertEqual({e["provider"] for e in listed}, {"daily"})
        self.assertEqual(self.d.paged("/v1/events?provider=tavus", "events", limit=500), [])

    def test_unknown_type_is_stored_and_on_its_room(self):
        room = fresh_id("room-")
        ack = self.assertOk(self.post_daily(envelope("meeting.paused", {"room": room})))
        self.assertEqual(ack["kind"], "daily.unknown")
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["event_type"], "meeting.paused")
        self.assertEqual(ev["session"]["id"], "room:" + room)
        self.assertEqual(ev["room"], {"name": room, "meeting": None})

    def test_integers_may_arrive_as_floats(self):
        doc = envelope("recording.ready-to-download",
                       {"recording_id": "rec1", "room_name": "r", "start_ts": 1700000000.0,
                        "duration": 61.0, "max_participants": 2.0, "status": "finished"},
                       event_ts=1700000100.25)
        ack = self.assertOk(self.post_daily(doc))
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["typed"]["payload"]["duration"], 61.0)
        self.assertEqual(ev["occurred_at"], "2023-11-14T22:15:00.250000Z")

    def test_dedup_is_by_the_envelope_id(self):
        room = fresh_id("room-")
        first = envelope("participant.joined", {"room": room, "session_id": "p1",
                                                "joined_at": time.time()}, "ptcpt-join-1")
        a = self.assertOk(self.post_daily(first))
        # Daily's retry of the same event: same id, a later event_ts (other bytes).
        retry = dict(first, event_ts=first["event_ts"] + 30)
        b = self.assertOk(self.post_daily(retry))
        self.assertTrue(b["duplicate"])
        self.assertEqual(b["id"], a["id"])
        # Another event that happens to look the same but has its own id is kept.
        other = dict(first, id="ptcpt-join-2")
        c = self.assertOk(self.post_daily(other))
        self.assertFalse(c["duplicate"])
        # Two rooms' recordings ready in the same second, both under Daily's default
        # instance id, share their envelope id: the second was answered duplicate and
        # lost (review RD40). The id with its payload keys each; a retry of either is
        # still its duplicate.
        rid = "rec-rtd-c3df927c-f738-4471-a2b7-066fa7e95a6b-1692124192"
        recs = [envelope("recording.ready-to-download",
                         {"recording_id": fresh_id("rec-"), "room_name": fresh_id("room-"),
                          "start_ts": 1692124183, "status": "finished", "duration": 9},
                         rid, 1692124192.5) for _ in range(2)]
        acks = [self.assertOk(self.post_daily(r)) for r in recs]
        self.assertEqual([x["duplicate"] for x in acks], [False, False])
        again = self.assertOk(self.post_daily(dict(recs[1], event_ts=1692124250.0)))
        self.assertEqual((again["duplicate"], again["id"]), (True, acks[1]["id"]))
        self.assertEqual(len(self.events()), 4)
        self.assertEqual(self.metric("hookrelay_duplicates_total"), 2)

    def test_an_id_and_a_fact_with_a_nul_keep_their_whole_value(self):
        # A \u0000 is read since cff3802; the dedup key and the room's facts took the
        # value up to it: "evt-1\u0000a" and "evt-1\u0000b" were one event (the second
        # answered duplicate and lost), and a joined participant lost every fact.
        room = fresh_id("room-")
        t0 = time.time() - 60
        self.assertOk(self.post_daily(envelope(
            "meeting.started", {"meeting_id": fresh_id("m-"), "room": room, "start_ts": t0})))
        joined = self.assertOk(self.post_daily(envelope(
            "participant.joined", {"room": room, "session_id": "p-ada", "user_name": "Ada\x00",
                                   "user_id": "u1", "joined_at": t0 + 1}, "evt-1\x00a")))
        left = self.assertOk(self.post_daily(envelope(
            "participant.left", {"room": room, "session_id": "p-ada", "user_name": "Ada\x00",
                                 "user_id": "u1", "joined_at": t0 + 1, "duration": 3},
            "evt-1\x00b")))
        self.assertFalse(left["duplicate"], left)
        self.assertNotEqual(left["id"], joined["id"])
        people = self.get_ok("/v1/sessions/room:" + room)["meetings"][0]["participants"]
        self.assertEqual([(p["participant_id"], p["user_id"]) for p in people], [("p-ada", "u1")])

    def test_a_body_that_fails_its_kind_is_kept_and_answered_200(self):
        # Daily's circuit breaker turns three refusals into a FAILED webhook: a body our
        # validation refuses is kept as a rejection and Daily still gets its 200.
        doc = envelope("participant.joined", {"room": ["not", "a", "name"]})
        resp = self.post_daily(doc)
        got = self.assertOk(resp)
        self.assertTrue(got["rejected"])
        self.assertTrue(got["id"].startswith("rej_"), got)
        self.assertEqual(got["problem"]["status"], 422)
        self.assertEqual(got["problem"]["errors"][0]["pointer"], "/payload/room")
        rej = self.get_ok("/v1/rejections/" + got["id"])
        self.assertEqual(rej["kind"], "daily.participant.joined")
        self.assertEqual(self.events(), [])
        # ...and can be accepted later, as any rejection.
        acc = self.assertOk(self.d.request("POST", "/v1/rejections/%s/accept" % got["id"]))
        self.assertEqual(acc["kind"], "daily.participant.joined")
        # A missing id (the dedup key) is such a failure too.
        doc = envelope("meeting.started", {"room": "r"})
        del doc["id"]
        got = self.assertOk(self.post_daily(doc))
        self.assertEqual(got["problem"]["errors"][0]["pointer"], "/id")
        # Counted where an alert looks: it counted 422 answers, and Daily's are 200s (R9).
        deadline = time.monotonic() + 5
        while self.metric("hookrelay_rejections_total") != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(self.metric("hookrelay_rejections_total"), 2)


class DailyRejectionsBoundTest(DailyTestBase):
    config = config_with(storage="rejections_max = 1", sections=DAILY_SOURCE)

    def test_rejections_max_leaves_the_bodies_daily_was_told_were_fine(self):
        # Answered 200, a refused Daily body will never come again: rejections_max
        # deleted it with the oldest all the same, Daily none the wiser (trust round).
        daily_ids = []
        for i in range(3):
            got = self.assertOk(self.post_daily(envelope("participant.joined", {"room": [i]})))
            daily_ids.append(got["id"])
            doc = payload_json("botplatform.session_complete.json")
            doc["room_name"] = i  # wrong type: 422
            status, _, body = self.d.post(dumps(doc), "pailflow")
            self.assertEqual(status, 422, body)
        kept = self.d.paged("/v1/rejections", "rejections")
        self.assertEqual(sorted(r["id"] for r in kept if r["source"] == "daily"),
                         sorted(daily_ids))
        self.assertTrue(all(r["acknowledged"] for r in kept if r["source"] == "daily"), kept)
        self.assertTrue(self.get_ok("/v1/rejections/" + daily_ids[0])["acknowledged"])
        # Of the others, the newest (rejections_max = 1), answered 422: not acknowledged.
        others = [r for r in kept if r["source"] == "pailflow"]
        self.assertEqual(len(others), 1, kept)
        self.assertFalse(others[0]["acknowledged"])
        self.assertEqual(self.get_ok("/v1/rejections/" + others[0]["id"])["payload"]["room_name"], 2)
        status, _, text = self.d.request("GET", "/metrics")
        self.assertIn(b"\nhookrelay_rejections_dropped_total 2\n", text)


class DailyAuthDefaultTest(unittest.TestCase):

    def test_provider_daily_defaults_to_auth_daily(self):
        d = Daemon(config_with(sections="[source d]\nprovider = daily\n"),
                   env={"CREDENTIALS_DIRECTORY": None})
        try:
            with self.assertRaises(RuntimeError) as cm:  # no secret: it will not start
                d.start()
            self.assertIn("secret_file", str(cm.exception))
        finally:
            d.stop()
            d.cleanup()

    def test_provider_daily_with_auth_none_is_warned_about(self):
        d = Daemon(config_with(sections="[source d]\nprovider = daily\nauth = none\n"))
        try:
            d.start()
            self.assertIn("provider = daily without auth = daily", d.log())
        finally:
            self.assertEqual(d.stop(), 0)
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
