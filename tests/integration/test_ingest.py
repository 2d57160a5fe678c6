"""Ingest: every example body is accepted, classified, and read back as sent."""

import json
import os
import random
import re
import sqlite3
import string
import unittest

from hrtest import DEFAULT_CONFIG, DaemonTest, dumps, fresh_id, payload, payload_json, \
    payload_names, sqlite_only

TAVUS = "tavus"
PAILFLOW = "pailflow"
AGENTHUMAN = "agenthuman"
DAILY = "daily"

# file -> (kind, provider, event_type, subtype, (scope, key) or None, occurred_at, occurred_at_raw)
# Daily: occurred_at is the payload's own time (meeting start_ts/end_ts, a participant's
# joined_at) or else event_ts; recording.started, transcripts, live streams but their
# errors and batch jobs name no room (no session).
EXPECTED = {
    "daily.batch-processor.error.json": (
        "daily.batch-processor.error", DAILY, 'batch-processor.error', None, None,
        '2024-02-26T19:16:41.100000Z', '1708975001.1'),
    "daily.batch-processor.job-finished.json": (
        "daily.batch-processor.job-finished", DAILY, 'batch-processor.job-finished', None, None,
        '2024-02-26T19:16:40.400000Z', '1708975000.4'),
    "daily.dialin.connected.json": (
        "daily.dialin.connected", DAILY, 'dialin.connected', None, ('room', 'my-dialin-room'),
        '2024-10-04T06:30:26.552000Z', '1728023426.552'),
    "daily.dialin.error.json": (
        "daily.dialin.error", DAILY, 'dialin.error', None, ('room', 'my-dialin-room'),
        '2024-10-04T06:33:20.100000Z', '1728023600.1'),
    "daily.dialin.stopped.json": (
        "daily.dialin.stopped", DAILY, 'dialin.stopped', None, ('room', 'my-dialin-room'),
        '2024-10-04T06:35:00.100000Z', '1728023700.1'),
    "daily.dialin.warning.json": (
        "daily.dialin.warning", DAILY, 'dialin.warning', None, ('room', 'my-dialin-room'),
        '2024-10-04T06:31:40.100000Z', '1728023500.1'),
    "daily.dialout.answered.json": (
        "daily.dialout.answered", DAILY, 'dialout.answered', None, ('room', 'my-dialout-room'),
        '2024-10-04T06:30:26.552000Z', '1728023426.552'),
    "daily.dialout.connected.json": (
        "daily.dialout.connected", DAILY, 'dialout.connected', None, ('room', 'my-dialout-room'),
        '2024-10-04T06:30:26.552000Z', '1728023426.552'),
    "daily.dialout.error.json": (
        "daily.dialout.error", DAILY, 'dialout.error', None, ('room', 'my-dialout-room'),
        '2024-10-04T06:30:27.900000Z', '1728023427.9'),
    "daily.dialout.stopped.json": (
        "daily.dialout.stopped", DAILY, 'dialout.stopped', None, ('room', 'my-dialout-room'),
        '2024-10-04T06:32:06.010000Z', '1728023526.01'),
    "daily.dialout.warning.json": (
        "daily.dialout.warning", DAILY, 'dialout.warning', None, ('room', 'my-dialout-room'),
        '2024-10-04T06:30:30.200000Z', '1728023430.2'),
    "daily.meeting.ended.json": (
        "daily.meeting.ended", DAILY, 'meeting.ended', None, ('room', 'sales-demo-7f3a'),
        '2024-02-26T19:01:37.520000Z', '1708974097.52'),
    "daily.meeting.started.json": (
        "daily.meeting.started", DAILY, 'meeting.started', None, ('room', 'sales-demo-7f3a'),
        '2024-02-26T18:31:19.960000Z', '1708972279.96'),
    "daily.participant.joined.json": (
        "daily.participant.joined", DAILY, 'participant.joined', None, ('room', 'sales-demo-7f3a'),
        '2024-02-26T18:31:19.961000Z', '1708972279.961'),
    "daily.participant.left.json": (
        "daily.participant.left", DAILY, 'participant.left', None, ('room', 'sales-demo-7f3a'),
        '2024-02-26T19:01:37.310000Z', '1708974097.31'),
    "daily.recording.error.json": (
        "daily.recording.error", DAILY, 'recording.error', None, ('room', 'sales-demo-7f3a'),
        '2023-08-15T18:30:00.400000Z', '1692124200.4'),
    "daily.recording.ready-to-download.json": (
        "daily.recording.ready-to-download", DAILY, 'recording.ready-to-download', None, ('room', 'Xcm97xRZ08b2dePKb78g'),
        '2023-08-15T18:29:52.000000Z', '1692124192'),
    "daily.recording.started.json": (
        "daily.recording.started", DAILY, 'recording.started', None, None,
        '2023-08-15T18:29:43.900000Z', '1692124183.9'),
    "daily.streaming.ended.json": (
        "daily.streaming.ended", DAILY, 'streaming.ended', None, None,
        '2024-02-26T18:43:20.300000Z', '1708973000.3'),
    "daily.streaming.error.json": (
        "daily.streaming.error", DAILY, 'streaming.error', None, ('room', 'sales-demo-7f3a'),
        '2024-02-26T18:38:20.300000Z', '1708972700.3'),
    "daily.streaming.started.json": (
        "daily.streaming.started", DAILY, 'streaming.started', None, None,
        '2024-02-26T18:35:00.300000Z', '1708972500.3'),
    "daily.streaming.updated.json": (
        "daily.streaming.updated", DAILY, 'streaming.updated', None, None,
        '2024-02-26T18:36:40.300000Z', '1708972600.3'),
    "daily.transcript.error.json": (
        "daily.transcript.error", DAILY, 'transcript.error', None, None,
        '2024-02-26T18:31:50.000000Z', '1708972310'),
    "daily.transcript.ready-to-download.json": (
        "daily.transcript.ready-to-download", DAILY, 'transcript.ready-to-download', None, None,
        '2024-02-26T19:03:20.800000Z', '1708974200.8'),
    "daily.transcript.started.json": (
        "daily.transcript.started", DAILY, 'transcript.started', None, None,
        '2024-02-26T18:31:40.200000Z', '1708972300.2'),
    "daily.unknown.meeting.paused.json": (
        "daily.unknown", DAILY, 'meeting.paused', None, ('room', 'sales-demo-7f3a'),
        '2024-02-26T18:43:20.200000Z', '1708973000.2'),
    "daily.waiting-participant.joined.json": (
        "daily.waiting-participant.joined", DAILY, 'waiting-participant.joined', None, ('room', 'sales-demo-7f3a'),
        '2024-02-26T18:33:20.000000Z', '1708972400'),
    "daily.waiting-participant.left.json": (
        "daily.waiting-participant.left", DAILY, 'waiting-participant.left', None, ('room', 'sales-demo-7f3a'),
        '2024-02-26T18:34:20.700000Z', '1708972460.7'),
    "agenthuman.session.created.json": (
        "agenthuman.session", AGENTHUMAN, None, "created",
        ("agenthuman", "sess_01H3Z8G9YR3K2N5M6P7Q8W4T"),
        "2024-01-15T10:30:00.000000Z", "2024-01-15T10:30:00Z"),
    "agenthuman.session.started.json": (
        "agenthuman.session", AGENTHUMAN, None, "started",
        ("agenthuman", "sess_01H3Z8G9YR3K2N5M6P7Q8W4T"),
        "2024-01-15T10:35:00.000000Z", "2024-01-15T10:35:00Z"),
    "agenthuman.session.ended.json": (
        "agenthuman.session", AGENTHUMAN, None, "ended",
        ("agenthuman", "sess_01H3Z8G9YR3K2N5M6P7Q8W4T"),
        "2024-01-15T11:20:00.000000Z", "2024-01-15T11:20:00Z"),
    "agenthuman.unknown.end_session_response.json": (
        "agenthuman.unknown", AGENTHUMAN, None, None,
        ("agenthuman", "sess_01H3Z8G9YR3K2N5M6P7Q8W4T"), None, None),
    "botplatform.unknown.bot_joined.json": (
        "pailflow.unknown", PAILFLOW, "bot_joined", None, ("room", "interview-7f3a2c"),
        "2026-01-12T17:20:01.004512Z", "2026-01-12T17:20:01.004512+00:00"),
    "botplatform.bot_join_failed.json": (
        "pailflow.bot_join_failed", PAILFLOW, "bot_join_failed", None, ("room", "room-name"),
        "2026-01-12T17:21:30.092034Z", "2026-01-12T17:21:30.092034+00:00"),
    "botplatform.session_complete.json": (
        "pailflow.session_complete", PAILFLOW, "session_complete", None,
        ("room", "interview-7f3a2c"), None, None),
    "botplatform.session_complete.insights_error.json": (
        "pailflow.session_complete", PAILFLOW, "session_complete", None,
        ("room", "interview-7f3a2c"), None, None),
    "tavus.conversation.application.perception_analysis.json": (
        "tavus.conversation.application.perception_analysis", TAVUS,
        "application.perception_analysis", None, ("conversation", "c4b6bacd1e935467"),
        "2025-07-11T06:51:37.591677Z", "2025-07-11T06:51:37.591677Z"),
    "tavus.conversation.application.perception_unavailable.json": (
        "tavus.conversation.application.perception_unavailable", TAVUS,
        "application.perception_unavailable", None, ("conversation", "c4b6bacd1e935467"),
        "2026-08-11T23:05:31.591677Z", "2026-08-11T23:05:31.591677Z"),
    "tavus.conversation.application.post_call_action_executed.json": (
        "tavus.conversation.application.post_call_action_executed", TAVUS,
        "application.post_call_action_executed", None, ("conversation", "c4b6bacd1e935467"),
        "2026-08-11T23:06:02.004512Z", "2026-08-11T23:06:02.004512Z"),
    "tavus.conversation.application.recording_copy_failed.json": (
        "tavus.conversation.application.recording_copy_failed", TAVUS,
        "application.recording_copy_failed", None, ("conversation", "c4b6bacd1e935467"),
        "2026-06-19T06:55:18.137386Z", "2026-06-19T06:55:18.137386Z"),
    "tavus.conversation.application.recording_ready.json": (
        "tavus.conversation.application.recording_ready", TAVUS,
        "application.recording_ready", None, ("conversation", "c4b6bacd1e935467"),
        "2025-06-19T06:55:18.137386Z", "2025-06-19T06:55:18.137386Z"),
    "tavus.conversation.application.recording_ready.storage_uri.json": (
        "tavus.conversation.application.recording_ready", TAVUS,
        "application.recording_ready", None, ("conversation", "c4b6bacd1e935467"),
        "2026-06-19T06:55:18.137386Z", "2026-06-19T06:55:18.137386Z"),
    "tavus.conversation.application.transcription_ready.json": (
        "tavus.conversation.application.transcription_ready", TAVUS,
        "application.transcription_ready", None, ("conversation", "c4b6bacd1e935467"),
        "2025-07-11T06:48:37.566057Z", "2025-07-11T06:48:37.566057Z"),
    "tavus.conversation.application.transcription_ready.extended.json": (
        "tavus.conversation.application.transcription_ready", TAVUS,
        "application.transcription_ready", None, ("conversation", "c4b6bacd1e935467"),
        "2026-08-11T23:05:01.120394Z", "2026-08-11T23:05:01.120394Z"),
    "tavus.conversation.application.transcription_ready.tool_calls.json": (
        "tavus.conversation.application.transcription_ready", TAVUS,
        "application.transcription_ready", None, ("conversation", "c4b6bacd1e935467"),
        "2026-08-11T23:05:01.120394Z", "2026-08-11T23:05:01.120394Z"),
    "tavus.conversation.system.pal_joined.json": (
        "tavus.conversation.system.replica_joined", TAVUS, "system.pal_joined", None,
        ("conversation", "c4b6bacd1e935467"),
        "2025-07-11T06:45:47.472000Z", "2025-07-11T06:45:47.472000Z"),
    "tavus.conversation.system.replica_joined.json": (
        "tavus.conversation.system.replica_joined", TAVUS, "system.replica_joined", None,
        ("conversation", "c4b6bacd1e935467"),
        "2025-07-11T06:45:47.472000Z", "2025-07-11T06:45:47.472000Z"),
    "tavus.conversation.system.shutdown.json": (
        "tavus.conversation.system.shutdown", TAVUS, "system.shutdown", None,
        ("conversation", "c4b6bacd1e935467"),
        "2025-07-11T06:48:37.564961Z", "2025-07-11T06:48:37.564961Z"),
    "tavus.objective.completed.json": (
        "tavus.objective.completed", TAVUS, "conversation.objective.completed", None,
        ("conversation", "c4b6bacd1e935467"), None, None),
    "tavus.replica.completed.json": (
        "tavus.replica_training", TAVUS, None, "completed", ("replica", "r8b3c1d2e4f5"),
        None, None),
    "tavus.replica.error.json": (
        "tavus.replica_training", TAVUS, None, "error", ("replica", "r8b3c1d2e4f5"),
        None, None),
    "tavus.video.completed.json": (
        "tavus.video", TAVUS, None, "completed", ("video", "1e30440cf9"),
        "2024-08-28T15:29:19.802670Z", "2024-08-28 15:29:19.802670"),
    "tavus.video.error.json": (
        "tavus.video", TAVUS, None, "error", ("video", "c9b85a6d36"),
        "2024-08-28T15:35:03.762392Z", "2024-08-28 15:35:03.762392"),
}

ID_RE = re.compile(r"^evt_[0-9a-hjkmnp-tv-z]{26}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
EVENT_FIELDS = {"id", "received_at", "source", "provider", "kind", "event_type", "subtype",
                "session", "occurred_at", "occurred_at_raw", "query", "problems", "room"}
DETAIL_FIELDS = EVENT_FIELDS | {"remote_addr", "headers", "typed", "payload"}


class IngestTest(DaemonTest):
    # Classification is the concern here, not repeat recognition: several example
    # bodies share a natural key (e.g. pal_joined/replica_joined of one conversation),
    # and every one of them must be stored as sent.
    config = DEFAULT_CONFIG.replace("[source default]\nprovider = auto\n",
                                    "[source default]\nprovider = auto\ndedup = off\n", 1)

    def test_payload_catalogue_is_covered(self):
        self.assertEqual(sorted(EXPECTED), payload_names(),
                         "tests/payloads changed: update EXPECTED in test_ingest.py")

    def test_every_payload_is_accepted_and_read_back_exactly(self):
        for name in payload_names():
            with self.subTest(payload=name):
                kind, provider, event_type, subtype, sess, occ, occ_raw = EXPECTED[name]
                body = payload(name)
                ack = self.post_ok(body)
                self.assertRegex(ack["id"], ID_RE)
                self.assertEqual(ack["kind"], kind)
                self.assertIs(ack["duplicate"], False)

                ev = self.get_ok("/v1/events/" + ack["id"])
                self.assertEqual(set(ev), DETAIL_FIELDS)
                self.assertEqual(ev["id"], ack["id"])
                self.assertEqual(ev["kind"], kind)
                self.assertEqual(ev["source"], "default")
                self.assertEqual(ev["provider"], provider)
                self.assertEqual(ev["event_type"], event_type)
                self.assertEqual(ev["subtype"], subtype)
                self.assertEqual(ev["session"], None if sess is None else
                                 {"scope": sess[0], "key": sess[1], "id": sess[0] + ":" + sess[1]})
                self.assertEqual(ev["occurred_at"], occ)
                self.assertEqual(ev["occurred_at_raw"], occ_raw)
                self.assertRegex(ev["received_at"], TIME_RE)
                self.assertEqual(ev["payload"], json.loads(body))
                self.assertIsInstance(ev["typed"], dict, "a known kind has a typed view")
                self.assertEqual(ev["headers"].get("content-type"), "application/json")
                self.assertEqual(ev["headers"].get("content-length"), str(len(body)))
                self.assertTrue(ev["remote_addr"].startswith("127.0.0.1:"), ev["remote_addr"])

                status, hdrs, raw = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])
                self.assertEqual(status, 200)
                self.assertEqual(raw, body, "/raw must return the exact bytes received")

    def test_listing_shows_the_same_summary_as_the_detail(self):
        acks = {name: self.post_ok(payload(name)) for name in payload_names()}
        listed = {e["id"]: e for e in self.d.paged("/v1/events", "events", limit=500)}
        self.assertEqual(set(listed), {a["id"] for a in acks.values()})
        for name, ack in acks.items():
            with self.subTest(payload=name):
                row = listed[ack["id"]]
                self.assertEqual(set(row), EVENT_FIELDS)
                detail = self.get_ok("/v1/events/" + ack["id"])
                self.assertEqual({k: detail[k] for k in EVENT_FIELDS}, row)

    def test_occurred_at_is_normalised_to_utc_microseconds(self):
        cases = [
            # Tavus video: zone-less, space separated
            ("tavus.video.completed.json", "updated_at", "2024-08-28 15:29:19.802670",
             "2024-08-28T15:29:19.802670Z"),
            # PailFlow: +00:00 offset
            ("botplatform.bot_join_failed.json", "timestamp", "2026-01-12T17:21:30.092034+00:00",
             "2026-01-12T17:21:30.092034Z"),
            # a real offset is converted to UTC
            ("botplatform.bot_join_failed.json", "timestamp", "2026-01-12T19:21:30.5+02:00",
             "2026-01-12T17:21:30.500000Z"),
            # Tavus envelope, milliseconds only
            ("tavus.conversation.system.shutdown.json", "timestamp", "2025-07-11T06:48:37.5Z",
             "2025-07-11T06:48:37.500000Z"),
        ]
        for name, field, raw, norm in cases:
            with self.subTest(payload=name, raw=raw):
                doc = payload_json(name)
                doc[field] = raw
                ack = self.post_ok(dumps(doc))
                ev = self.get_ok("/v1/events/" + ack["id"])
                self.assertEqual(ev["occurred_at"], norm)
                self.assertEqual(ev["occurred_at_raw"], raw)

    def test_typed_view_normalises_nested_times_and_keeps_nulls(self):
        ack = self.post_ok(payload("tavus.conversation.application.transcription_ready.extended.json"))
        typed = self.get_ok("/v1/events/" + ack["id"])["typed"]
        items = typed["properties"]["transcript"]
        self.assertEqual(items[1]["timestamp"], {"raw": "2026-08-11T23:02:15.957838Z",
                                                 "utc": "2026-08-11T23:02:15.957838Z"})
        # An epoch float is a time too.
        self.assertEqual(items[2]["timestamp"], {"raw": "1786505572.3161497",
                                                 "utc": "2026-08-12T03:32:52.316150Z"})
        ack = self.post_ok(payload("tavus.video.error.json"))
        typed = self.get_ok("/v1/events/" + ack["id"])["typed"]
        self.assertIsNone(typed["download_url"])
        self.assertIsNone(typed["stream_url"])
        self.assertEqual(typed["created_at"], {"raw": "2024-08-28 15:32:53.058894",
                                               "utc": "2024-08-28T15:32:53.058894Z"})

    def test_unparseable_timestamp_is_kept_raw_not_refused(self):
        doc = payload_json("tavus.conversation.system.shutdown.json")
        doc["timestamp"] = "yesterday at noon"
        ack = self.post_ok(dumps(doc))
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["kind"], "tavus.conversation.system.shutdown")
        self.assertIsNone(ev["occurred_at"])
        self.assertEqual(ev["occurred_at_raw"], "yesterday at noon")

    def test_a_long_unparseable_timestamp_is_kept_whole(self):
        # events.md: a timestamp in a format hookrelay does not know is "kept as
        # received"; the typed view's raw is "<as received>". JavaScript's
        # Date.prototype.toString() (a relay forwarding in-call events) is 61 bytes.
        text = "Fri Jul 11 2025 06:45:47 GMT+0000 (Coordinated Universal Time)"
        doc = payload_json("tavus.conversation.system.shutdown.json")
        doc["timestamp"] = text
        ack = self.post_ok(dumps(doc))
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["kind"], "tavus.conversation.system.shutdown")
        self.assertEqual(ev["typed"]["timestamp"], {"raw": text, "utc": None})
        self.assertEqual(ev["occurred_at_raw"], text)

    def test_long_values_the_store_indexes_are_stored_as_any_other(self):
        # A sender's ids, an event type and the callback URL's query values are kept as
        # sent, whatever their length (max_string, max_header_size): none is cut or
        # refused. Several are indexed columns (a session's key, events' event_type and
        # room, event_query's value); each value here is 6,000 bytes that do not compress
        # (random hex). Providers do not retry a 503: an event the store cannot keep
        # because of a value's length is lost.
        def long(prefix=""):
            return prefix + os.urandom(3000).hex()

        doc = payload_json("tavus.conversation.system.shutdown.json")
        daily = payload_json("daily.meeting.started.json")
        daily["payload"]["room"] = long("room-")
        cases = {
            "session key": (dumps(dict(doc, conversation_id=long("c"))), "default"),
            "event type": (dumps(dict(doc, conversation_id=fresh_id("c"),
                                      event_type="system." + long())), "default"),
            "query value": (dumps(dict(doc, conversation_id=fresh_id("c"))),
                            "default?user_id=" + long()),
            "daily room": (dumps(daily), "default"),
        }
        answers = {name: self.d.post(body, source) for name, (body, source) in cases.items()}
        self.assertEqual({name: a[0] for name, a in answers.items()}, {name: 200 for name in cases})
        # Stored whole (a key past 1,024 bytes names no session: docs/events.md, "Keys").
        for name, (body, _) in cases.items():
            ack = json.loads(answers[name][2])
            raw = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])[2]
            self.assertEqual(raw, body.encode() if isinstance(body, str) else body, name)

    def test_pal_joined_and_replica_joined_are_one_kind_with_their_own_event_type(self):
        ids = {}
        for name, event_type in (("tavus.conversation.system.pal_joined.json", "system.pal_joined"),
                                 ("tavus.conversation.system.replica_joined.json",
                                  "system.replica_joined")):
            conv = fresh_id("c")  # one conversation each: no repeat of the other
            doc = payload_json(name)
            doc["conversation_id"] = conv
            ack = self.post_ok(dumps(doc))
            self.assertEqual(ack["kind"], "tavus.conversation.system.replica_joined")
            ev = self.get_ok("/v1/events/" + ack["id"])
            self.assertEqual(ev["kind"], "tavus.conversation.system.replica_joined")
            self.assertEqual(ev["event_type"], event_type)
            self.assertEqual(ev["session"]["id"], "conversation:" + conv)
            ids[event_type] = ack["id"]
        pal = self.get_ok("/v1/events/" + ids["system.pal_joined"])
        self.assertEqual(pal["typed"]["properties"].get("face_id"), "r79e1c033f")
        listed = self.get_ok("/v1/events?kind=tavus.conversation.system.replica_joined")
        self.assertEqual({e["id"] for e in listed["events"]}, set(ids.values()))

    def test_provider_pinned_source_only_classifies_its_provider(self):
        # A PailFlow body on a Tavus source is not decoded as PailFlow.
        ack = self.post_ok(payload("botplatform.session_complete.json"), source="tavus")
        self.assertEqual(ack["kind"], "tavus.unknown")
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["kind"], "tavus.unknown")
        self.assertEqual(ev["provider"], "tavus")
        self.assertEqual(ev["source"], "tavus")
        self.assertIsNone(ev["session"])
        raw = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])[2]
        self.assertEqual(raw, payload("botplatform.session_complete.json"))

        # A Tavus body on the Tavus source is stored normally.
        ack = self.post_ok(payload("tavus.conversation.system.shutdown.json"), source="tavus")
        self.assertEqual(ack["kind"], "tavus.conversation.system.shutdown")
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["provider"], "tavus")
        self.assertEqual(ev["source"], "tavus")
        self.assertEqual(ev["session"]["id"], "conversation:c4b6bacd1e935467")

        # And the other way round: a Tavus body on a PailFlow source is PailFlow's
        # unknown kind (the source says whose it is), stored, never refused.
        ack = self.post_ok(payload("tavus.video.completed.json"), source="pailflow")
        self.assertEqual(ack["kind"], "pailflow.unknown")
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["provider"], "pailflow")
        self.assertIsNone(ev["session"])

    def test_valid_json_of_no_known_kind_is_stored_as_unknown(self):
        for body in (b'{"hello": "world", "n": [1, 2, 3]}', b'[1, 2, 3]', b'"just a string"',
                     b'42', b'null', b'{"event_type": "nodots"}', b'{}'):
            with self.subTest(body=body):
                ack = self.post_ok(body)
                self.assertEqual(ack["kind"], "unknown")
                ev = self.get_ok("/v1/events/" + ack["id"])
                self.assertEqual(ev["kind"], "unknown")
                self.assertIsNone(ev["provider"])
                self.assertIsNone(ev["session"])
                self.assertIsNone(ev["typed"])
                self.assertEqual(ev["payload"], json.loads(body))
                raw = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])[2]
                self.assertEqual(raw, body)

    def test_unknown_dotted_event_type_is_tavus_unknown(self):
        body = dumps({"event_type": "guardrail.triggered", "message_type": "conversation",
                      "conversation_id": "cguard1", "properties": {"x": 1}})
        ack = self.post_ok(body)
        self.assertEqual(ack["kind"], "tavus.unknown")
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["provider"], "tavus")
        self.assertEqual(ev["event_type"], "guardrail.triggered")
        self.assertEqual(ev["session"]["id"], "conversation:cguard1")

    def test_raw_keeps_bytes_json_would_normalise(self):
        # Whitespace, key order, escapes, non-ASCII and number spelling survive.
        body = ('{ "zeta":1.50,  "event_type":"system.shutdown","message_type":"system",\n'
                '\t"conversation_id":"c\\u0041bc", "properties":{"shutdown_reason":"caf\u00e9 \\u2603"},'
                '"n":1E2 }\r\n').encode("utf-8")
        ack = self.post_ok(body)
        self.assertEqual(ack["kind"], "tavus.conversation.system.shutdown")
        status, hdrs, raw = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])
        self.assertEqual(status, 200)
        self.assertEqual(raw, body)
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["session"]["key"], "cAbc")

    def test_large_body_within_max_body_is_accepted(self):
        doc = payload_json("tavus.conversation.application.transcription_ready.json")
        doc["properties"]["transcript"][0]["content"] = "x" * (2 * 1024 * 1024)
        body = dumps(doc)
        ack = self.post_ok(body)
        self.assertEqual(ack["kind"], "tavus.conversation.application.transcription_ready")
        raw = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])[2]
        self.assertEqual(raw, body)

    def test_json_media_types_with_parameters_are_accepted(self):
        for ct in ("application/json; charset=utf-8", "APPLICATION/JSON",
                   "application/vnd.example+json"):
            with self.subTest(content_type=ct):
                ack = self.post_ok(dumps({"replica_id": fresh_id("r"), "status": "ready"}),
                                   headers={"Content-Type": ct})
                self.assertEqual(ack["kind"], "tavus.replica_training")

    def test_selected_request_headers_are_kept_without_credentials(self):
        ack = self.post_ok(payload("tavus.replica.completed.json"), headers={
            "User-Agent": "hrtest/1", "X-Request-Id": "req-42",
            "Authorization": "Bearer secret-secret-secret", "Cookie": "a=b"})
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["headers"].get("user-agent"), "hrtest/1")
        self.assertEqual(ev["headers"].get("x-request-id"), "req-42")
        self.assertNotIn("authorization", ev["headers"])
        self.assertNotIn("cookie", ev["headers"])

    def test_an_integer_past_64_bits_in_a_free_field_is_accepted(self):
        # PailFlow's insights are an LLM's JSON as Python wrote it: any integer. jansson
        # refuses one past 64 bits, and the 400 was final (PailFlow never retries).
        doc = payload_json("botplatform.session_complete.json")
        doc["insights"]["application_id"] = 10 ** 23 + 1
        body = dumps(doc)
        self.assertIn(b"100000000000000000000001", body)
        ack = self.post_ok(body, "pailflow")
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["kind"], "pailflow.session_complete")
        self.assertEqual(self.d.request("GET", "/v1/events/%s/raw" % ack["id"])[2], body)

    def test_nul_and_half_surrogate_escapes_are_stored_as_their_kind(self):
        # Valid JSON jansson refuses by default: \u0000 (Python's json.dumps writes a NUL
        # of a transcript so) and half of a surrogate pair (JSON.stringify of a string
        # cut in an emoji). Both were a 400, final to PailFlow and Tavus.
        pail = payload_json("botplatform.session_complete.json")
        pail["transcript_text"] = "Hi\x00 there \ud83d"
        tavus = payload_json("tavus.conversation.application.transcription_ready.json")
        tavus["conversation_id"] = fresh_id("c")
        tavus["properties"]["transcript"][1]["content"] = "cut \ud83d"
        tavus["properties"]["transcript"][1]["x\x00"] = "a key with a NUL \udc00"
        for doc, source, kind, session in (
                (pail, "pailflow", "pailflow.session_complete", "room:" + pail["room_name"]),
                (tavus, "default", "tavus.conversation.application.transcription_ready",
                 "conversation:" + tavus["conversation_id"])):
            body = json.dumps(doc).encode()  # ensure_ascii: the escapes as such
            self.assertTrue(b"\\u0000" in body or b"\\udc00" in body, body[:200])
            with self.subTest(kind=kind):
                ack = self.post_ok(body, source)
                ev = self.get_ok("/v1/events/" + ack["id"])
                self.assertEqual((ev["kind"], ev["session"]["id"]), (kind, session), ev)
                self.assertEqual(ev["payload"], doc)  # Python reads both escapes back
                self.assertEqual(self.d.request("GET", "/v1/events/%s/raw" % ack["id"])[2], body)
                status, _, raw = self.d.request("GET", "/v1/events?include=payload&session=" + session)
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(raw)["events"][0]["payload"], doc)
        self.assertEqual(self.get_ok("/v1/events/%s" % ack["id"])["typed"]["properties"]
                         ["transcript"][1]["content"], "cut \ufffd")

    def test_kinds_of_unverified_shape_take_properties_of_another_type(self):
        # SPEC marks these properties "shape unverified" (read in third-party code): a
        # property of another type than guessed was a 422, final to Tavus.
        for name, path, value in (
                ("post_call_action_executed", ["request", "body"], {"overall_band": 7}),
                ("post_call_action_executed", ["request"], '{"body": 1}'),
                ("recording_copy_failed", ["error_message"], {"code": "AccessDenied"}),
                ("perception_unavailable", ["reason"], {"code": 1})):
            doc = payload_json("tavus.conversation.application.%s.json" % name)
            doc["conversation_id"] = fresh_id("c")
            holder = doc["properties"]
            for key in path[:-1]:
                holder = holder[key]
            holder[path[-1]] = value
            with self.subTest(name=name, path=path):
                ack = self.post_ok(dumps(doc), "tavus")
                ev = self.get_ok("/v1/events/" + ack["id"])
                self.assertEqual(ev["kind"], "tavus.conversation.application." + name)
                self.assertEqual(ev["session"]["key"], doc["conversation_id"])
                self.assertEqual(ev["payload"], doc)
                typed = ev["typed"]["properties"]
                for key in path[:-1]:
                    typed = typed.get(key) or {}
                self.assertNotIn(path[-1], typed)  # left out of the typed view
        # The envelope is documented: its properties must be there, an object.
        for props in (None, "oops"):
            doc = payload_json("tavus.conversation.application.recording_copy_failed.json")
            if props is None:
                del doc["properties"]
            else:
                doc["properties"] = props
            with self.subTest(properties=props):
                self.assertEqual(self.d.post(dumps(doc), "tavus")[0], 422)
        # A documented shape is still held to its types.
        doc = payload_json("tavus.conversation.application.recording_ready.json")
        doc["properties"]["duration"] = "14"
        self.assertEqual(self.d.post(dumps(doc), "tavus")[0], 422)

    def test_the_api_shows_a_payload_as_the_sender_wrote_it(self):
        # The detail and include=payload carry the stored bytes: an integer past 64 bits
        # made the detail's payload null (jansson refused it a second time), and a 3.1 read
        # back through jansson prints 3.1000000000000001.
        doc = payload_json("botplatform.session_complete.json")
        doc["insights"]["application_id"] = 10 ** 23 + 1
        doc["insights"]["ratio"] = 3.1
        body = dumps(doc)
        ack = self.post_ok(body, "pailflow")
        for path in ("/v1/events/" + ack["id"], "/v1/events?include=payload&limit=1"):
            status, _, raw = self.d.request("GET", path)
            self.assertEqual(status, 200, raw[:300])
            self.assertIn(b'"payload":' + body, raw, path)
            self.assertIn(ack["id"].encode(), raw, path)
            json.loads(raw)
        # Numbers of the daemon's own documents print as a person wrote them.
        ah = payload_json("agenthuman.session.ended.json")
        ah["session_id"] = fresh_id("sess_")
        ah["duration"] = 12.3
        self.post_ok(dumps(ah))
        status, _, raw = self.d.request("GET", "/v1/sessions/agenthuman:" + ah["session_id"])
        self.assertEqual(status, 200, raw[:300])
        self.assertIn(b'"duration":12.3,', raw)
        # ... and each reads back as the same double, one that needs 17 digits too
        ah["session_id"] = fresh_id("sess_")
        ah["duration"] = 0.1 + 0.2
        self.post_ok(dumps(ah))
        status, _, raw = self.d.request("GET", "/v1/sessions/agenthuman:" + ah["session_id"])
        self.assertEqual(json.loads(raw)["duration"], 0.1 + 0.2, raw[:300])

    def test_a_repeated_header_is_kept_as_checked_its_first_value(self):
        # Auth and dedup read a header's first value; the kept headers showed the last,
        # naming another delivery id than the one the event was keyed on.
        body = payload("tavus.replica.completed.json")
        req = (b"POST /hooks/default HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               b"Content-Type: application/json\r\nWebhook-Id: msg_A\r\nWebhook-Id: msg_B\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body
        status, _, data = self.d.raw(req)
        self.assertEqual(status, 200, data)
        ev = self.get_ok("/v1/events/" + json.loads(data)["id"])
        self.assertEqual(ev["headers"]["webhook-id"], "msg_A")

    @sqlite_only("reads the stored text from the database file (hooks.c writes the same text "
                 "to either engine)")
    def test_kept_headers_are_stored_as_compact_sorted_json(self):
        # The stored text is what jansson's JSON_COMPACT | JSON_SORT_KEYS dump of the
        # kept headers gave: keys sorted, values escaped by jansson, a value that is
        # not UTF-8 (latin-1 from http.client) left out.
        ack = self.post_ok(payload("tavus.replica.completed.json"), headers={
            "X-Request-Id": "r\u00e9q", "User-Agent": 'ua "q" \\ /', "Webhook-Id": "msg_1",
            "X-Real-Ip": "192.0.2.7", "Authorization": "Bearer secret-secret-secret"})
        db = sqlite3.connect("file:%s?mode=ro" % self.d.db, uri=True, timeout=10)
        try:
            (text,) = db.execute("SELECT headers FROM events WHERE id = ?",
                                 (ack["id"],)).fetchone()
        finally:
            db.close()
        kept = json.loads(text)
        self.assertEqual(text, json.dumps(kept, sort_keys=True, separators=(",", ":"),
                                          ensure_ascii=False))
        self.assertEqual(kept["user-agent"], 'ua "q" \\ /')
        self.assertIn('"user-agent":"ua \\"q\\" \\\\ /"', text)
        self.assertEqual(kept["webhook-id"], "msg_1")
        self.assertEqual(kept["x-real-ip"], "192.0.2.7")
        self.assertNotIn("x-request-id", kept)
        self.assertNotIn("authorization", kept)
        self.assertEqual(list(kept)[:2], ["content-length", "content-type"])

    def test_unknown_event_id_is_404(self):
        self.assertProblem(self.d.request("GET", "/v1/events/evt_00000000000000000000000000"),
                           404, "not-found")
        self.assertProblem(self.d.request("GET", "/v1/events/evt_nope/raw"), 404, "not-found")


class TypedViewLimitsTest(DaemonTest):

    def test_lowering_the_json_limits_keeps_the_typed_view_of_events_stored(self):
        # api.md: GET /v1/events/{id} gives `typed`, null only once retention pruned the
        # payload. The view was the stored body parsed again under the limits in force:
        # an event accepted with a 2 KiB string lost its typed view (null, as if pruned)
        # once a reload lowered [server] max_string to 1 KiB, though the payload is there.
        doc = payload_json("tavus.conversation.application.transcription_ready.json")
        doc["conversation_id"] = fresh_id("c")
        doc["properties"]["transcript"] = [{"role": "user", "content": "x" * 2048}]
        ack = self.post_ok(dumps(doc))
        self.assertIsInstance(self.get_ok("/v1/events/" + ack["id"])["typed"], dict)
        with open(self.d.config_path, "w") as f:
            f.write(DEFAULT_CONFIG.replace("listen = 127.0.0.1:0\n",
                                           "listen = 127.0.0.1:0\nmax_string = 1KiB\n")
                    .format(db=self.d.db, dir=self.d.dir))
        self.d.reload()
        self.assertEqual(self.d.post(dumps(doc))[0], 413, "the lower limit is in force")
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertIsNotNone(ev["payload"])
        self.assertNotIn("pruned_at", ev)
        self.assertIsInstance(ev["typed"], dict, "the stored event's typed view went with the limit")


class LongValuesTest(DaemonTest):

    def test_long_key_values_and_query_values_within_the_limits_are_stored(self):
        # events.md: a body within the JSON limits (max_string: 8 MiB by default) is stored
        # as its kind, and api.md: a 503 means "not stored". The values hookrelay keeps in
        # its own indexed columns (a session key, an event type, a meeting, a callback
        # URL's query value) have no length limit of their own; on PostgreSQL a btree
        # entry past 2704 bytes fails the INSERT ("index row size ... exceeds btree
        # version 4 maximum 2704"), and the webhook was answered 503 and lost (Tavus and
        # PailFlow never retry). Random text: PostgreSQL compresses what repeats.
        rnd = random.Random(43)

        def text(n):
            return "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(n))

        shutdown = payload_json("tavus.conversation.system.shutdown.json")
        shutdown["conversation_id"] = "c" + text(3000)
        guardrail = payload_json("tavus.conversation.system.shutdown.json")
        guardrail["event_type"] = "guardrail." + text(3000)
        done = payload_json("botplatform.session_complete.json")
        done["room_id"] = text(3000)
        for name, doc, path in (("conversation_id", shutdown, "/hooks/default"),
                                ("event_type", guardrail, "/hooks/default"),
                                ("room_id", done, "/hooks/default"),
                                ("query value", payload_json("botplatform.session_complete.json"),
                                 "/hooks/default?state=" + text(3000))):
            with self.subTest(field=name):
                status, _, body = self.d.request("POST", path, dumps(doc))
                self.assertEqual(status, 200, body[:300])
                ev = self.get_ok("/v1/events/" + json.loads(body)["id"])
                self.assertEqual(ev["payload"], doc)

    def test_a_key_past_1024_bytes_names_nothing_on_either_engine(self):
        # events.md "Keys": a session key, an event type, a room, a meeting or a query
        # parameter longer than 1,024 bytes is not one hookrelay keeps (PostgreSQL's
        # indexes hold none past 2704 bytes, two of them side by side); the body is
        # stored whole anyway, and both engines answer alike. SQLite kept any length,
        # so its sessions and filters differed from PostgreSQL's.
        rnd = random.Random(1024)

        def text(n):
            return "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(n))

        for n, kept in ((1024, True), (1025, False)):
            with self.subTest(bytes=n):
                key, kind, meeting = "c" + text(n - 1), "g." + text(n - 2), text(n)
                shutdown = payload_json("tavus.conversation.system.shutdown.json")
                shutdown.update(conversation_id=key, event_type=kind)
                ev = self.get_ok("/v1/events/" + self.post_ok(dumps(shutdown))["id"])
                self.assertEqual(ev["session"] is not None, kept, str(ev["session"])[:80])
                self.assertEqual(ev["event_type"] == kind, kept, str(ev["event_type"])[:80])
                self.assertEqual(ev["event_type"] is None, not kept)
                found = self.get_ok("/v1/events?session=conversation:" + key)["events"]
                self.assertEqual([e["id"] for e in found], [ev["id"]] if kept else [])
                done = payload_json("botplatform.session_complete.json")
                done["room_id"] = meeting
                name, value = "n" + text(n - 1), text(n)
                status, _, body = self.d.request(
                    "POST", "/hooks/default?state=%s&%s=1" % (value, name), dumps(done))
                self.assertEqual(status, 200, body[:300])
                ev = self.get_ok("/v1/events/" + json.loads(body)["id"])
                self.assertEqual(ev["query"], {"state": value, name: "1"}, "kept whole")
                self.assertEqual(ev["room"]["meeting"] == meeting, kept, str(ev["room"])[:80])
                for q in ("query.state=" + value, "query.%s=1" % name):
                    found = self.get_ok("/v1/events?" + q)["events"]
                    self.assertEqual([e["id"] for e in found], [ev["id"]] if kept else [], q[:20])


if __name__ == "__main__":
    unittest.main()
