"""One room, one timeline (issue 16 item 4): Daily, PailFlow and AgentHuman events about
one Daily room share the session room:<name>, and GET /v1/sessions/room:<name> tells the
meetings of a reused room apart, with participants, outcomes, recordings and transcripts."""

import json
import re
import time
import unittest

import hrtest
from hrtest import dumps, fresh_id, payload_json
from test_daily import DAILY_SOURCE, DailyTestBase, envelope
from test_hookctl import Ctl

T0 = 1750000000  # the first meeting's start, Unix seconds
# The instanceId Daily gives every recording started without one (HR_DAILY_DEFAULT_INSTANCE).
DEFAULT_INSTANCE = "c3df927c-f738-4471-a2b7-066fa7e95a6b"


def iso(secs):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".000000Z"


class RoomTimelineTest(DailyTestBase):

    def daily(self, type_, payload_, event_ts):
        ack = self.assertOk(self.post_daily(envelope(type_, payload_, event_ts=event_ts)))
        self.assertEqual(ack["kind"], "daily." + type_)
        return ack["id"]

    def pailflow_complete(self, room, meeting, score):
        doc = payload_json("botplatform.session_complete.json")
        doc.update(room_name=room, room_id=meeting, exit_reason="participant_left")
        doc["insights"]["overall_score"] = score
        return self.post_ok(dumps(doc), "pailflow")["id"]

    def pailflow_failed(self, room, secs):
        doc = payload_json("botplatform.bot_join_failed.json")
        doc.update(room_url="https://example.daily.co/%s?t=1" % room,
                   timestamp=iso(secs).replace(".000000Z", ".000000+00:00"))
        return self.post_ok(dumps(doc), "pailflow")["id"]

    def agenthuman_started(self, room, secs):
        doc = payload_json("agenthuman.session.started.json")
        doc.update(session_id=fresh_id("sess_"), started_at=iso(secs)[:19] + "Z",
                   daily_room={"url": "https://example.daily.co/" + room, "name": room,
                               "token": "meeting-token-not-a-secret-here"})
        ack = self.post_ok(dumps(doc), "default")
        return ack["id"], doc["session_id"]

    def test_a_reused_room_shows_its_meetings_across_providers(self):
        room, other = fresh_id("room-"), fresh_id("room-")
        m1, m2 = fresh_id("m1-"), fresh_id("m2-")
        ids = {}
        # Meeting 1: Daily's events, the PailFlow bot's result, a recording, a transcript.
        ids["started1"] = self.daily("meeting.started", {"meeting_id": m1, "room": room,
                                                         "start_ts": T0}, T0 + 0.2)
        ids["ada"] = self.daily("participant.joined", {
            "room": room, "session_id": "p-ada", "user_name": "Ada", "user_id": "u1",
            "joined_at": T0 + 1}, T0 + 1.1)
        ids["bot"] = self.daily("participant.joined", {
            "room": room, "session_id": "p-bot", "user_name": "PailFlow bot",
            "joined_at": T0 + 2}, T0 + 2.1)
        # recording.started names no room: it joins through its recording id.
        ids["rec_start"] = self.daily("recording.started", {
            "recording_id": "rec-1", "start_ts": T0 + 5, "instance_id": "i-1"}, T0 + 5.3)
        ids["bot_left"] = self.daily("participant.left", {
            "room": room, "session_id": "p-bot", "user_name": "PailFlow bot",
            "joined_at": T0 + 2, "duration": 598}, T0 + 600)
        ids["ended1"] = self.daily("meeting.ended", {"meeting_id": m1, "room": room,
                                                     "start_ts": T0, "end_ts": T0 + 610},
                                   T0 + 611)
        ids["rec_ready"] = self.daily("recording.ready-to-download", {
            "recording_id": "rec-1", "room_name": room, "start_ts": T0 + 5, "duration": 600,
            "status": "finished", "s3_key": "dom/%s/1" % room}, T0 + 700)
        # Transcripts name the meeting, not the room.
        ids["transcript"] = self.daily("transcript.ready-to-download", {
            "id": "tr-1", "room_id": "0d5e-room-uuid", "mtg_session_id": m1,
            "status": "finished"}, T0 + 720)
        ids["complete"] = self.pailflow_complete(room, m1, 8.5)
        # Meeting 2 of the same room: an avatar session, a person, a bot that failed.
        ids["started2"] = self.daily("meeting.started", {"meeting_id": m2, "room": room,
                                                         "start_ts": T0 + 3600}, T0 + 3600.1)
        ids["avatar"], sess = self.agenthuman_started(room, T0 + 3610)
        ids["bob"] = self.daily("participant.joined", {
            "room": room, "session_id": "p-bob", "user_name": "Bob", "joined_at": T0 + 3612},
            T0 + 3612.5)
        ids["failed"] = self.pailflow_failed(room, T0 + 3620)
        # Another room's events stay out.
        self.daily("meeting.started", {"meeting_id": fresh_id("m-"), "room": other,
                                       "start_ts": T0 + 10}, T0 + 10.2)

        s = self.get_ok("/v1/sessions/room:" + room)
        self.assertEqual(s["id"], "room:" + room)
        self.assertEqual(sorted(e["id"] for e in s["events"]), sorted(ids.values()))
        self.assertEqual(s["event_count"], len(ids),
                         "the room's session counts every event on its timeline: its own,"
                         " the linked sessions', the recording's start and the transcript")
        self.assertEqual(len(s["meetings"]), 2, s["meetings"])
        one, two = s["meetings"]

        self.assertEqual(one["meeting_id"], m1)
        self.assertEqual((one["started_at"], one["ended_at"]), (iso(T0), iso(T0 + 610)))
        self.assertEqual(one["duration"], 610.0)
        self.assertEqual(set(one["events"]), {ids[k] for k in (
            "started1", "ada", "bot", "rec_start", "bot_left", "ended1", "rec_ready",
            "transcript", "complete")})
        people = {p["participant_id"]: p for p in one["participants"]}
        self.assertEqual(set(people), {"p-ada", "p-bot"})
        self.assertEqual(people["p-bot"]["left_at"], iso(T0 + 600))
        self.assertEqual(people["p-bot"]["duration"], 598)
        self.assertIsNone(people["p-ada"]["left_at"])
        self.assertEqual(people["p-ada"]["user_name"], "Ada")
        [outcome] = one["outcomes"]
        self.assertEqual((outcome["kind"], outcome["state"]),
                         ("pailflow.session_complete", "completed"))
        self.assertEqual((outcome["exit_reason"], outcome["overall_score"]),
                         ("participant_left", 8.5))
        [rec] = one["recordings"]
        self.assertEqual((rec["recording_id"], rec["state"]), ("rec-1", "ready"))
        self.assertEqual(rec["events"], [ids["rec_start"], ids["rec_ready"]])
        [tr] = one["transcripts"]
        self.assertEqual((tr["transcript_id"], tr["state"]), ("tr-1", "ready"))

        self.assertEqual(two["meeting_id"], m2)
        self.assertIsNone(two["ended_at"])
        self.assertEqual(set(two["events"]), {ids[k] for k in (
            "started2", "avatar", "bob", "failed")})
        kinds = {o["kind"]: o for o in two["outcomes"]}
        self.assertEqual(set(kinds), {"agenthuman.session", "pailflow.bot_join_failed"})
        self.assertEqual(kinds["agenthuman.session"]["state"], "started")
        self.assertEqual(kinds["pailflow.bot_join_failed"]["state"], "failed")
        self.assertEqual([p["participant_id"] for p in two["participants"]], ["p-bob"])

        # The AgentHuman session keeps its own session, and its event says which room.
        mine = self.get_ok("/v1/sessions/agenthuman:" + sess)
        self.assertNotIn("meetings", mine)
        self.assertEqual([e["id"] for e in mine["events"]], [ids["avatar"]])
        self.assertEqual(mine["events"][0]["room"], {"name": room, "meeting": None})
        self.assertEqual(mine["status"], "started")
        # The listing filters still work on the room's own session key.
        listed = self.d.paged("/v1/events?session=room:" + room, "events")
        self.assertNotIn(ids["avatar"], [e["id"] for e in listed])
        # room= lists the room's timeline, linked sessions' events included, newest
        # first, and pages through it (it once had no listing: only the capped timeline).
        timeline = [e["id"] for e in self.get_ok("/v1/sessions/room:" + room)["events"]]
        by_room = [e["id"] for e in self.d.paged("/v1/events?room=" + room, "events", limit=2)]
        self.assertIn(ids["avatar"], by_room)
        self.assertEqual(sorted(by_room), sorted(timeline))
        everything = [e["id"] for e in self.d.paged("/v1/events", "events")]
        self.assertEqual(by_room, [i for i in everything if i in set(by_room)])  # same order
        other = self.d.paged("/v1/events?room=" + room + "&provider=agenthuman", "events")
        self.assertEqual([e["id"] for e in other], [ids["avatar"]])

    def test_two_recordings_under_dailys_default_instance_stay_two_entries(self):
        # Daily gives every recording started without an instanceId one default
        # instance, in every room and meeting (HR_DAILY_DEFAULT_INSTANCE). Keyed by it,
        # a room's two recordings were one entry, in the first meeting (review RD40).
        room = fresh_id("room-")
        m1, m2, rec1, rec2 = (fresh_id("m-"), fresh_id("m-"), fresh_id("rec-"),
                              fresh_id("rec-"))
        self.daily("meeting.started", {"meeting_id": m1, "room": room, "start_ts": T0}, T0 + 0.2)
        s1 = self.daily("recording.started", {"recording_id": rec1, "start_ts": T0 + 5,
                                              "instance_id": DEFAULT_INSTANCE}, T0 + 5.3)
        self.daily("meeting.ended", {"meeting_id": m1, "room": room, "start_ts": T0,
                                     "end_ts": T0 + 600}, T0 + 600.2)
        r1 = self.daily("recording.ready-to-download",
                        {"recording_id": rec1, "room_name": room, "start_ts": T0 + 5,
                         "status": "finished", "duration": 590}, T0 + 640)
        self.daily("meeting.started", {"meeting_id": m2, "room": room, "start_ts": T0 + 3600},
                   T0 + 3600.2)
        s2 = self.daily("recording.started", {"recording_id": rec2, "start_ts": T0 + 3605,
                                              "instance_id": DEFAULT_INSTANCE}, T0 + 3605.3)
        self.daily("meeting.ended", {"meeting_id": m2, "room": room, "start_ts": T0 + 3600,
                                     "end_ts": T0 + 4200}, T0 + 4200.2)
        r2 = self.daily("recording.ready-to-download",
                        {"recording_id": rec2, "room_name": room, "start_ts": T0 + 3605,
                         "status": "finished", "duration": 595}, T0 + 4240)
        meetings = self.get_ok("/v1/sessions/room:" + room)["meetings"]
        got = {m["meeting_id"]: [(r["recording_id"], r["events"]) for r in m["recordings"]]
               for m in meetings}
        self.assertEqual(got, {m1: [(rec1, [s1, r1])], m2: [(rec2, [s2, r2])]})

    def test_two_recordings_under_one_instance_of_the_apps_own_stay_two_entries(self):
        # An app that starts its recordings with an instanceId of its own may use it
        # again for the next recording (Daily's own default instance is used so, in
        # every room): one instance is a recording slot, not one recording. Each
        # recording is its own entry (api.md: "one per recording"), in the meeting its
        # start is in.
        room, inst = fresh_id("room-"), fresh_id("inst-")
        m1, m2 = fresh_id("m1-"), fresh_id("m2-")
        rec1, rec2, rec3 = fresh_id("rec-"), fresh_id("rec-"), fresh_id("rec-")
        self.daily("meeting.started", {"meeting_id": m1, "room": room, "start_ts": T0}, T0 + 0.2)
        s1 = self.daily("recording.started", {"recording_id": rec1, "start_ts": T0 + 5,
                                              "instance_id": inst}, T0 + 5.3)
        r1 = self.daily("recording.ready-to-download",
                        {"recording_id": rec1, "room_name": room, "start_ts": T0 + 5,
                         "status": "finished", "duration": 55}, T0 + 70)
        s2 = self.daily("recording.started", {"recording_id": rec2, "start_ts": T0 + 100,
                                              "instance_id": inst}, T0 + 100.3)
        r2 = self.daily("recording.ready-to-download",
                        {"recording_id": rec2, "room_name": room, "start_ts": T0 + 100,
                         "status": "finished", "duration": 100}, T0 + 210)
        self.daily("meeting.ended", {"meeting_id": m1, "room": room, "start_ts": T0,
                                     "end_ts": T0 + 300}, T0 + 300.2)
        self.daily("meeting.started", {"meeting_id": m2, "room": room, "start_ts": T0 + 3600},
                   T0 + 3600.2)
        s3 = self.daily("recording.started", {"recording_id": rec3, "start_ts": T0 + 3605,
                                              "instance_id": inst}, T0 + 3605.3)
        r3 = self.daily("recording.ready-to-download",
                        {"recording_id": rec3, "room_name": room, "start_ts": T0 + 3605,
                         "status": "finished", "duration": 30}, T0 + 3700)
        meetings = self.get_ok("/v1/sessions/room:" + room)["meetings"]
        got = {m["meeting_id"]: [(r["recording_id"], r["events"]) for r in m["recordings"]]
               for m in meetings}
        self.maxDiff = None
        self.assertEqual(got, {m1: [(rec1, [s1, r1]), (rec2, [s2, r2])],
                               m2: [(rec3, [s3, r3])]})

    def test_another_rooms_start_under_dailys_default_instance_stays_off_this_room(self):
        # Room A's recording.error names the room and the default instance; room B's
        # recording.started, later, names no room, its recording and the default
        # instance: linked by it, it was on A's timeline and counted there, and B
        # never counted it (review RD40).
        room_a, room_b, rec_b = fresh_id("room-a-"), fresh_id("room-b-"), fresh_id("rec-")
        self.daily("meeting.started", {"meeting_id": fresh_id("m-"), "room": room_a,
                                       "start_ts": T0}, T0 + 0.2)
        self.daily("recording.error", {"action": "cloud-recording-error", "error_msg": "x",
                                       "instance_id": DEFAULT_INSTANCE, "room_name": room_a,
                                       "timestamp": T0 + 60}, T0 + 60.4)
        a_before = self.get_ok("/v1/sessions/room:" + room_a)
        self.daily("meeting.started", {"meeting_id": fresh_id("m-"), "room": room_b,
                                       "start_ts": T0 + 7200}, T0 + 7200.2)
        start_b = self.daily("recording.started", {"recording_id": rec_b, "start_ts": T0 + 7205,
                                                   "instance_id": DEFAULT_INSTANCE},
                             T0 + 7205.3)
        ready_b = self.daily("recording.ready-to-download",
                             {"recording_id": rec_b, "room_name": room_b, "start_ts": T0 + 7205,
                              "status": "finished"}, T0 + 7800)
        a = self.get_ok("/v1/sessions/room:" + room_a)
        b = self.get_ok("/v1/sessions/room:" + room_b)
        self.assertNotIn(start_b, [e["id"] for e in a["events"]])
        self.assertEqual(a["event_count"], a_before["event_count"])
        self.assertNotIn(start_b, [e["id"] for e in
                                   self.d.paged("/v1/events?room=" + room_a, "events")])
        self.assertIn(start_b, [e["id"] for e in b["events"]])
        self.assertEqual(b["event_count"], 3)
        [rb] = b["meetings"][0]["recordings"]
        self.assertEqual(rb["events"], [start_b, ready_b])

    def test_another_rooms_start_under_an_instance_of_the_apps_own_stays_off_this_room(self):
        # The same as under Daily's default instance, with an instanceId the app gives
        # every recording it starts, in every room: room A's recording.error named it,
        # and room B's recording.started (no room; its recording and that instance) was
        # put on A's timeline and counted there, not in B.
        room_a, room_b, rec_b = fresh_id("room-a-"), fresh_id("room-b-"), fresh_id("rec-")
        inst = fresh_id("app-instance-")
        self.daily("meeting.started", {"meeting_id": fresh_id("m-"), "room": room_a,
                                       "start_ts": T0}, T0 + 0.2)
        self.daily("recording.error", {"action": "cloud-recording-error", "error_msg": "x",
                                       "instance_id": inst, "room_name": room_a,
                                       "timestamp": T0 + 60}, T0 + 60.4)
        a_before = self.get_ok("/v1/sessions/room:" + room_a)
        self.daily("meeting.started", {"meeting_id": fresh_id("m-"), "room": room_b,
                                       "start_ts": T0 + 7200}, T0 + 7200.2)
        start_b = self.daily("recording.started", {"recording_id": rec_b, "start_ts": T0 + 7205,
                                                   "instance_id": inst}, T0 + 7205.3)
        ready_b = self.daily("recording.ready-to-download",
                             {"recording_id": rec_b, "room_name": room_b, "start_ts": T0 + 7205,
                              "status": "finished"}, T0 + 7800)
        a = self.get_ok("/v1/sessions/room:" + room_a)
        b = self.get_ok("/v1/sessions/room:" + room_b)
        self.assertNotIn(start_b, [e["id"] for e in a["events"]])
        self.assertEqual(a["event_count"], a_before["event_count"])
        self.assertIn(start_b, [e["id"] for e in b["events"]])
        self.assertEqual(b["event_count"], 3)
        [rb] = b["meetings"][0]["recordings"]
        self.assertEqual(rb["events"], [start_b, ready_b])

    def test_a_failed_recording_is_one_entry_with_its_start(self):
        # recording.error names the room and the recording's instance, no recording;
        # recording.started the recording and the instance, no room. The start was
        # missing from the room, and the failure was an entry of its own.
        room, rec, inst = fresh_id("room-"), fresh_id("rec-"), fresh_id("inst-")
        ids = [self.daily("meeting.started", {"meeting_id": fresh_id("m-"), "room": room,
                                              "start_ts": T0}, T0 + 0.2),
               self.daily("recording.started", {"recording_id": rec, "start_ts": T0 + 5,
                                                "instance_id": inst}, T0 + 5.3),
               self.daily("recording.error", {"action": "cloud-recording-error",
                                              "error_msg": "Failed to upload the recording",
                                              "instance_id": inst, "room_name": room,
                                              "timestamp": T0 + 60}, T0 + 60.4)]
        # Another room's failed recording stays out.
        self.daily("recording.error", {"instance_id": fresh_id("inst-"), "room_name": fresh_id("room-"),
                                       "timestamp": T0 + 61}, T0 + 61.4)
        s = self.get_ok("/v1/sessions/room:" + room)
        self.assertEqual(sorted(e["id"] for e in s["events"]), sorted(ids))
        [meeting] = s["meetings"]
        [r] = meeting["recordings"]
        self.assertEqual((r["recording_id"], r["instance_id"], r["state"]), (rec, inst, "error"))
        self.assertEqual(r["error_msg"], "Failed to upload the recording")
        self.assertEqual(r["events"], ids[1:])
        listed = self.d.paged("/v1/events?room=" + room, "events")
        self.assertEqual(sorted(e["id"] for e in listed), sorted(ids))

    def test_a_recording_stays_one_entry_in_its_meeting_whatever_the_order(self):
        # A Daily review: a retried recording.started (stamped when it was sent again)
        # after its ready-to-download made two entries, or left a finished transcript
        # "started"; an upload that failed after the meeting ended fell into the group
        # of no meeting; a ready-to-download without a start_ts went to the next meeting.
        room = fresh_id("room-")
        m1, m2 = fresh_id("m1-"), fresh_id("m2-")
        rec, inst = fresh_id("rec-"), fresh_id("inst-")
        bad, bad_inst = fresh_id("rec-"), fresh_id("inst-")
        self.daily("meeting.started", {"meeting_id": m1, "room": room, "start_ts": T0}, T0 + 0.2)
        self.daily("recording.started", {"recording_id": bad, "instance_id": bad_inst,
                                         "start_ts": T0 + 3}, T0 + 3.2)
        self.daily("meeting.ended", {"meeting_id": m1, "room": room, "start_ts": T0,
                                     "end_ts": T0 + 120}, T0 + 121)
        ready = self.daily("recording.ready-to-download", {
            "recording_id": rec, "room_name": room, "start_ts": T0 + 5, "status": "finished"},
            T0 + 200)
        self.daily("recording.error", {"instance_id": bad_inst, "room_name": room,
                                       "error_msg": "Failed to upload the recording",
                                       "timestamp": T0 + 250}, T0 + 250.4)
        started = self.daily("recording.started", {"recording_id": rec, "instance_id": inst,
                                                   "start_ts": T0 + 5}, T0 + 300)  # a retry
        self.daily("transcript.ready-to-download", {"id": "tr-x", "mtg_session_id": m1,
                                                    "status": "finished"}, T0 + 130)
        self.daily("transcript.started", {"id": "tr-x", "mtg_session_id": m1}, T0 + 160)
        self.daily("meeting.started", {"meeting_id": m2, "room": room, "start_ts": T0 + 400},
                   T0 + 400.2)
        late = fresh_id("rec-")
        self.daily("recording.started", {"recording_id": late, "instance_id": fresh_id("inst-"),
                                         "start_ts": T0 + 60}, T0 + 60.2)
        self.daily("recording.ready-to-download", {"recording_id": late, "room_name": room,
                                                   "status": "finished"}, T0 + 410)
        s = self.get_ok("/v1/sessions/room:" + room)
        self.assertEqual([m["meeting_id"] for m in s["meetings"]], [m1, m2], s["meetings"])
        first, second = s["meetings"]
        recs = {r["recording_id"]: r for r in first["recordings"]}
        self.assertEqual(set(recs), {rec, bad, late}, first["recordings"])
        self.assertEqual(recs[rec]["state"], "ready")
        self.assertEqual(sorted(recs[rec]["events"]), sorted([ready, started]))
        self.assertEqual(recs[bad]["state"], "error")
        self.assertEqual(recs[late]["state"], "ready")
        self.assertEqual(second["recordings"], [])
        [t] = first["transcripts"]
        self.assertEqual((t["transcript_id"], t["state"]), ("tr-x", "ready"))

    def test_a_failed_recording_stored_before_the_link_is_linked_too(self):
        # Rows stored before the schema had the instance link get it from their room
        # facts when the new version opens the database.
        room, rec, inst = fresh_id("room-"), fresh_id("rec-"), fresh_id("inst-")
        ids = [self.daily("recording.started", {"recording_id": rec, "start_ts": T0 + 5,
                                                "instance_id": inst}, T0 + 5.3),
               self.daily("recording.error", {"instance_id": inst, "room_name": room,
                                              "timestamp": T0 + 60}, T0 + 60.4)]
        self.assertEqual(self.d.stop(), 0)
        if hrtest.BACKEND == "postgresql":
            older = "UPDATE hookrelay_schema SET version = 6"
        else:
            older = (hrtest.SQLITE_UNDO_FACETS +
                     " DROP TRIGGER deliveries_counted_in; DROP TRIGGER deliveries_counted_moved;"
                     " DROP TRIGGER deliveries_counted_out; DROP TABLE delivery_counts;"
                     " PRAGMA user_version = 10")
        hrtest.db_exec(self.d, "DROP INDEX events_recording_instance;"
                       " DROP INDEX events_room_recording_instances;"
                       " ALTER TABLE events DROP COLUMN recording_instance; " + older)
        self.d.start()
        [meeting] = self.get_ok("/v1/sessions/room:" + room)["meetings"]
        [r] = meeting["recordings"]
        self.assertEqual((r["recording_id"], r["state"], r["events"]), (rec, "error", ids))
        # The log says the upgrade step by step; a new database said so too, fourteen
        # lines that read as an upgrade (an operations review): now one line.
        # (PostgreSQL's tests start from a database made once for all of them.)
        if hrtest.BACKEND != "postgresql":
            log = self.d.log()
            self.assertEqual(len(re.findall(r"store: created the schema \(version \d+\)", log)),
                             1, log)
            self.assertNotIn("migrated schema to version 1\n", log)
            self.assertIn("store: migrated schema to version 11\n", log)

    def test_the_default_instance_of_rows_stored_before_is_forgotten(self):
        # Rows an earlier version stored keep Daily's default instance, and its room
        # link: every room that named it showed every room's recording.started.
        room_a, room_b = fresh_id("room-a-"), fresh_id("room-b-")
        err_a = self.daily("recording.error", {"instance_id": DEFAULT_INSTANCE,
                                               "room_name": room_a, "timestamp": T0 + 60},
                           T0 + 60.4)
        start_b = self.daily("recording.started", {"recording_id": fresh_id("rec-"),
                                                   "start_ts": T0 + 7205,
                                                   "instance_id": DEFAULT_INSTANCE},
                             T0 + 7205.3)
        self.assertEqual(self.d.stop(), 0)
        older = ("UPDATE hookrelay_schema SET version = 11" if hrtest.BACKEND == "postgresql"
                 else "PRAGMA user_version = 18")
        hrtest.db_exec(self.d, "UPDATE events SET recording_instance = '%s' WHERE id IN"
                       " ('%s', '%s'); INSERT INTO room_links VALUES (3, '%s', '%s'); %s"
                       % (DEFAULT_INSTANCE, err_a, start_b, DEFAULT_INSTANCE, room_a, older))
        self.d.start()
        self.assertEqual([e["id"] for e in self.room(room_a)["events"]], [err_a])
        self.assertEqual(hrtest.db_rows(self.d, "SELECT count(*) FROM room_links WHERE"
                                         " kind = 3 AND value = '%s'" % DEFAULT_INSTANCE),
                         [(0,)])

    def test_an_upgrade_from_17_counts_no_event_toward_a_room_through_the_default_instance(self):
        # A database of version 17 migrated to 19 in one start: step 18 links Daily's
        # default instance to the last room that named it and counts every other
        # room's recording.started that names it toward that room; step 19 then forgets
        # the link but keeps the count. The same events stored by this version count
        # nothing through it.
        room_a = fresh_id("room-a-")
        self.daily("recording.error", {"instance_id": DEFAULT_INSTANCE, "room_name": room_a,
                                       "timestamp": T0 + 60}, T0 + 60.4)
        starts = [self.daily("recording.started", {"recording_id": fresh_id("rec-"),
                                                   "start_ts": T0 + 7205 + i,
                                                   "instance_id": DEFAULT_INSTANCE},
                             T0 + 7205.3 + i) for i in range(3)]
        before = self.room(room_a)
        self.assertEqual(before["event_count"], 1, before)
        self.assertEqual(self.d.stop(), 0)
        # (PostgreSQL's schema 11 is SQLite's 18, and it fails alike.)
        older = ("DELETE FROM room_links; UPDATE events SET linked_room = NULL;"
                 " UPDATE hookrelay_schema SET version = 10" if hrtest.BACKEND == "postgresql"
                 else "DROP TABLE room_links; ALTER TABLE events DROP COLUMN linked_room;"
                      " PRAGMA user_version = 17")
        hrtest.db_exec(self.d, "UPDATE events SET recording_instance = '%s' WHERE kind IN"
                       " ('daily.recording.started', 'daily.recording.error'); %s"
                       % (DEFAULT_INSTANCE, older))
        self.d.start()
        after = self.room(room_a)
        self.assertEqual(after["event_count"], 1, after)
        self.assertEqual(after["last_seen"], before["last_seen"])
        self.assertEqual(hrtest.db_rows(self.d, "SELECT count(*) FROM events WHERE"
                                         " linked_room IS NOT NULL"), [(0,)], starts)

    def test_an_upgrade_from_17_counts_no_later_start_toward_a_room_through_an_apps_instance(self):
        # The same upgrade with an instanceId the app gives every recording, in every
        # room: step 18 linked the instance to room A, whose recording.error named it,
        # and counted other rooms' later recording.started under it toward A, which
        # this version does not do as they come.
        room_a, inst = fresh_id("room-a-"), fresh_id("app-instance-")
        self.daily("recording.error", {"instance_id": inst, "room_name": room_a,
                                       "timestamp": T0 + 60}, T0 + 60.4)
        starts = [self.daily("recording.started", {"recording_id": fresh_id("rec-"),
                                                   "start_ts": T0 + 7205 + i,
                                                   "instance_id": inst},
                             T0 + 7205.3 + i) for i in range(3)]
        before = self.room(room_a)
        self.assertEqual(before["event_count"], 1, before)
        self.assertEqual(self.d.stop(), 0)
        older = ("DELETE FROM room_links; UPDATE events SET linked_room = NULL;"
                 " UPDATE hookrelay_schema SET version = 10" if hrtest.BACKEND == "postgresql"
                 else "DROP TABLE room_links; ALTER TABLE events DROP COLUMN linked_room;"
                      " PRAGMA user_version = 17")
        hrtest.db_exec(self.d, older)
        self.d.start()
        after = self.room(room_a)
        self.assertEqual(after["event_count"], 1, after)
        self.assertEqual(after["event_count"], len(after["events"]))
        self.assertEqual(hrtest.db_rows(self.d, "SELECT count(*) FROM events WHERE"
                                         " linked_room IS NOT NULL"), [(0,)], starts)

    def room(self, room):
        return self.get_ok("/v1/sessions/room:" + room)

    def test_events_joined_through_a_link_alone_are_counted_once_whatever_the_order(self):
        # A transcript names only its meeting, a recording's start only its recording
        # and instance: on the room's timeline, they were not counted in its
        # event_count and last_seen, nor found by GET /v1/sessions?since=.
        room, meeting, rec, inst = (fresh_id("room-"), fresh_id("m-"), fresh_id("rec-"),
                                    fresh_id("inst-"))
        # Before the room names any of them: counted once one of its events does.
        early = self.daily("transcript.ready-to-download", {
            "id": fresh_id("tr-"), "room_id": "uuid", "mtg_session_id": meeting,
            "status": "finished"}, T0 + 1)
        rec_start = self.daily("recording.started", {"recording_id": rec, "start_ts": T0 + 5,
                                                     "instance_id": inst}, T0 + 5.3)
        started = self.daily("meeting.started", {"meeting_id": meeting, "room": room,
                                                 "start_ts": T0}, T0 + 0.2)
        s = self.room(room)
        self.assertEqual(s["event_count"], 2, s)
        # Named by the room in two ways (its recording, then its instance): once.
        self.daily("recording.ready-to-download", {
            "recording_id": rec, "room_name": room, "start_ts": T0 + 5, "duration": 60,
            "status": "finished", "s3_key": "k"}, T0 + 70)
        self.daily("recording.error", {"instance_id": inst, "room_name": room,
                                       "timestamp": T0 + 80}, T0 + 80.4)
        s = self.room(room)
        self.assertEqual(s["event_count"], 5, s)
        # After: counted as it comes, and it moves last_seen.
        before = s["last_seen"]
        doc = envelope("transcript.ready-to-download", {
            "id": fresh_id("tr-"), "room_id": "uuid", "mtg_session_id": meeting,
            "status": "finished"}, event_ts=T0 + 900)
        late = self.assertOk(self.post_daily(doc))["id"]
        self.assertTrue(self.assertOk(self.post_daily(doc))["duplicate"])  # not again
        s = self.room(room)
        self.assertEqual(s["event_count"], 6, s)
        self.assertEqual(s["event_count"], len(s["events"]), s["events"])
        self.assertEqual(s["last_seen"], self.get_ok("/v1/events/" + late)["received_at"])
        self.assertGreater(s["last_seen"], before)
        since = self.get_ok("/v1/sessions?since=" + s["last_seen"])["sessions"]
        self.assertEqual([x["id"] for x in since], ["room:" + room])
        self.assertEqual({early, rec_start, started} - {e["id"] for e in s["events"]}, set())

    def test_a_room_stored_before_the_count_of_its_links_counts_them_on_upgrade(self):
        room, meeting = fresh_id("room-"), fresh_id("m-")
        self.daily("meeting.started", {"meeting_id": meeting, "room": room, "start_ts": T0},
                   T0 + 0.2)
        for i in range(3):
            self.daily("transcript.ready-to-download", {
                "id": fresh_id("tr-"), "room_id": "uuid", "mtg_session_id": meeting,
                "status": "finished"}, T0 + 10 + i)
        self.assertEqual(self.room(room)["event_count"], 4)
        self.assertEqual(self.d.stop(), 0)
        # The database as the version before left it: the room counted its own event.
        if hrtest.BACKEND == "postgresql":
            older = "UPDATE hookrelay_schema SET version = 10"
        else:
            older = "PRAGMA user_version = 17"
        hrtest.db_exec(self.d, "UPDATE sessions SET event_count = 1 WHERE key = '%s';"
                       " DROP TABLE room_links; ALTER TABLE events DROP COLUMN linked_room; %s"
                       % (room, older))
        self.d.start()
        s = self.room(room)
        self.assertEqual(s["event_count"], 4, s)
        self.assertEqual(s["event_count"], len(s["events"]))
        # and what comes after the upgrade is counted as it comes
        self.daily("transcript.ready-to-download", {
            "id": fresh_id("tr-"), "room_id": "uuid", "mtg_session_id": meeting,
            "status": "finished"}, T0 + 20)
        self.assertEqual(self.room(room)["event_count"], 5)

    def test_a_reused_room_is_started_again_by_its_next_meeting(self):
        # A session's status only moves forward, ended being final; a room is reused
        # meeting after meeting, and stayed "ended" through every meeting after its
        # first. Its latest event that says anything wins.
        room = fresh_id("room-")

        def status():
            return self.get_ok("/v1/sessions/room:" + room)["status"]
        self.daily("meeting.started", {"meeting_id": "m1", "room": room, "start_ts": T0}, T0 + 1)
        self.daily("meeting.ended", {"meeting_id": "m1", "room": room, "start_ts": T0,
                                     "end_ts": T0 + 60}, T0 + 61)
        self.assertEqual(status(), "ended")
        self.daily("meeting.started", {"meeting_id": "m2", "room": room, "start_ts": T0 + 600},
                   T0 + 601)
        self.assertEqual(status(), "started")
        self.daily("participant.left", {"room": room, "session_id": "p", "joined_at": T0 + 602,
                                        "duration": 5}, T0 + 607)
        self.assertEqual(status(), "started")  # says nothing of the room's state
        # Daily retries a webhook it could not deliver: the first meeting's
        # meeting.ended, sent again while the second is under way, set "ended".
        self.daily("meeting.ended", {"meeting_id": "m1", "room": room, "start_ts": T0,
                                     "end_ts": T0 + 60}, T0 + 61)
        self.assertEqual(status(), "started", "a late retry of the meeting before")
        self.daily("meeting.ended", {"meeting_id": "m2", "room": room, "start_ts": T0 + 600,
                                     "end_ts": T0 + 660}, T0 + 661)
        self.assertEqual(status(), "ended")
        self.daily("meeting.started", {"meeting_id": "m2", "room": room, "start_ts": T0 + 600},
                   T0 + 601)
        self.assertEqual(status(), "ended", "a late retry of this meeting's start")

    def test_a_bots_outcome_does_not_end_a_meeting_people_are_in(self):
        # A simulated day of traffic: meeting A ended, B began with people inside, then
        # PailFlow's session_complete of A came (it is sent once its processing is done,
        # after A): the room read "ended"; a bot that then failed to join B made it
        # "failed". Once Daily's events say the room's state, only they do; the bots'
        # results are in their meetings' outcomes.
        room, a, b = fresh_id("room-"), fresh_id("mA-"), fresh_id("mB-")

        def status():
            return self.get_ok("/v1/sessions/room:" + room)["status"]
        self.daily("meeting.started", {"meeting_id": a, "room": room, "start_ts": T0}, T0 + 0.1)
        self.daily("meeting.ended", {"meeting_id": a, "room": room, "start_ts": T0,
                                     "end_ts": T0 + 600}, T0 + 600.5)
        self.daily("meeting.started", {"meeting_id": b, "room": room, "start_ts": T0 + 615},
                   T0 + 615.1)
        self.daily("participant.joined", {"room": room, "session_id": "p1", "user_name": "Ada",
                                          "joined_at": T0 + 615}, T0 + 615.2)
        self.assertEqual(status(), "started")
        done = self.pailflow_complete(room, a, 8)
        self.assertEqual(status(), "started", "A's outcome, after B began")
        failed = self.pailflow_failed(room, T0 + 630)
        self.assertEqual(status(), "started", "a bot that failed to join B")
        meetings = {m["meeting_id"]: m for m in self.get_ok("/v1/sessions/room:" + room)["meetings"]}
        self.assertEqual([o["events"] for o in meetings[a]["outcomes"]], [[done]])
        self.assertEqual([o["events"] for o in meetings[b]["outcomes"]], [[failed]])
        self.daily("meeting.ended", {"meeting_id": b, "room": room, "start_ts": T0 + 615,
                                     "end_ts": T0 + 900}, T0 + 900.5)
        self.assertEqual(status(), "ended")
        # A room PailFlow alone tells of still ends or fails with its bot.
        alone = fresh_id("room-")
        self.pailflow_failed(alone, T0 + 10)
        self.assertEqual(self.get_ok("/v1/sessions/room:" + alone)["status"], "failed")

    def test_a_late_retry_of_a_meetings_start_does_not_reopen_a_room_its_bot_ended(self):
        # api.md: a room's status is its latest event's "by the events' own times, not by
        # when they came: Daily retries a webhook it could not deliver". PailFlow's
        # session_complete counts at when it came; the meeting's meeting.started, stamped
        # ten minutes before it and delivered only now by a Daily retry, made the ended
        # room "started" again: a Daily event overrode PailFlow's status whatever its time
        # (ROOM_STATUS_MOVES: excluded.status_by = 1 AND status_by IS NOT 1).
        room, m = fresh_id("room-"), fresh_id("m-")
        now = time.time()
        self.pailflow_complete(room, m, 7)
        self.assertEqual(self.get_ok("/v1/sessions/room:" + room)["status"], "ended")
        self.daily("meeting.started", {"meeting_id": m, "room": room, "start_ts": now - 600},
                   now)
        self.assertEqual(self.get_ok("/v1/sessions/room:" + room)["status"], "ended",
                         "a retried start, older than the end, reopened the room")

    def test_an_event_stamped_ahead_does_not_hold_the_status(self):
        # A room's status follows its events' own times; an event stamped a day ahead
        # (a sender's clock) held it against every real event after it: the meeting's
        # end, and the meetings after, left the room "started".
        room = fresh_id("room-")
        now = time.time()

        def status():
            return self.get_ok("/v1/sessions/room:" + room)["status"]
        self.daily("meeting.started", {"meeting_id": "f1", "room": room,
                                       "start_ts": now + 86400}, now + 86400)
        self.assertEqual(status(), "started")
        self.daily("meeting.ended", {"meeting_id": "f1", "room": room, "start_ts": now,
                                     "end_ts": now + 1}, now + 1)
        self.assertEqual(status(), "ended")

    def test_hookctl_shows_the_meetings_of_a_room(self):
        room = fresh_id("room-")
        self.daily("meeting.started", {"meeting_id": "mtg-a", "room": room, "start_ts": T0},
                   T0 + 1)
        self.daily("participant.joined", {"room": room, "session_id": "p1", "joined_at": T0 + 2},
                   T0 + 2)
        # A knocker let in: a waiting-room entry and a participant, one person. A
        # knocker turned away was never in the meeting. Both were counted.
        self.daily("waiting-participant.joined", {"room": room, "session_id": "k1",
                                                  "joined_at": T0 + 3}, T0 + 3)
        self.daily("participant.joined", {"room": room, "session_id": "k1", "joined_at": T0 + 4},
                   T0 + 4)
        self.daily("waiting-participant.joined", {"room": room, "session_id": "k2",
                                                  "joined_at": T0 + 5}, T0 + 5)
        self.pailflow_complete(room, "mtg-a", 7)
        ctl = Ctl()
        try:
            env = {"HOOKCTL_URL": "http://127.0.0.1:%d" % self.d.port, "NO_COLOR": "1"}
            rc, out, err = ctl.tty("sessions", "show", "room:" + room, env=env)
            self.assertEqual(rc, 0, err)
            self.assertIn("meetings (1)", out)
            row = [l for l in out.splitlines() if l.startswith("mtg-a")]
            self.assertEqual(len(row), 1, out)
            self.assertEqual(row[0].split()[3:8], ["-", "2", "0", "0", "6"], row[0])  # not ended
            self.assertIn("pailflow.session_complete completed", row[0])
            rc, out, err = ctl.run("sessions", "show", "room:" + room, env=env)
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out)["meetings"][0]["meeting_id"], "mtg-a")
            # events list --room: the room's events, as GET /v1/events?room= lists them.
            rc, out, err = ctl.run("events", "list", "--room", room, env=env)
            self.assertEqual(rc, 0, err)
            self.assertEqual([json.loads(l)["id"] for l in out.splitlines()],
                             [e["id"] for e in self.d.paged("/v1/events?room=" + room, "events")])
            self.assertEqual(len(out.splitlines()), 6)
        finally:
            ctl.cleanup()

    def test_an_avatar_session_is_one_outcome_in_its_meeting(self):
        # Seed 002's own example: an AgentHuman session created at 10:30, started at
        # 10:35 (its avatar joins the Daily room then, and the meeting starts), ended
        # at 11:20. Each snapshot names its daily_room. api.md: one outcome entry per
        # session_id, state its latest status. The "created" snapshot, five minutes
        # before the meeting's start, made a second entry in the group of no meeting,
        # an avatar that seemingly never started.
        room, sid, m1 = fresh_id("room-"), fresh_id("sess_"), fresh_id("m-")

        def snapshot(status, started=None, ended=None):
            doc = payload_json("agenthuman.session.started.json")
            doc.update(session_id=sid, status=status, created_at=iso(T0 - 300)[:19] + "Z",
                       started_at=iso(started)[:19] + "Z" if started else None,
                       ended_at=iso(ended)[:19] + "Z" if ended else None,
                       daily_room={"url": "https://example.daily.co/" + room, "name": room,
                                   "token": "meeting-token-not-a-secret-here"})
            return self.post_ok(dumps(doc), "default")["id"]
        ids = [snapshot("created")]
        self.daily("meeting.started", {"meeting_id": m1, "room": room, "start_ts": T0}, T0 + 0.2)
        ids.append(snapshot("started", T0 + 2))
        self.daily("participant.joined", {"room": room, "session_id": "p1", "joined_at": T0 + 5},
                   T0 + 5.2)
        ids.append(snapshot("ended", T0 + 2, T0 + 600))
        self.daily("meeting.ended", {"meeting_id": m1, "room": room, "start_ts": T0,
                                     "end_ts": T0 + 605}, T0 + 606)
        meetings = self.get_ok("/v1/sessions/room:" + room)["meetings"]
        outcomes = [(m["meeting_id"], o["state"], o["events"]) for m in meetings
                    for o in m["outcomes"]]
        self.assertEqual(outcomes, [(m1, "ended", ids)], meetings)

    def test_a_room_known_only_from_a_linked_session_is_a_session(self):
        room = fresh_id("room-")
        eid, _ = self.agenthuman_started(room, T0)
        s = self.get_ok("/v1/sessions/room:" + room)
        self.assertEqual((s["event_count"], s["provider"]), (1, "agenthuman"))
        self.assertEqual([e["id"] for e in s["events"]], [eid])
        [meeting] = s["meetings"]
        self.assertIsNone(meeting["meeting_id"])
        self.assertEqual(meeting["outcomes"][0]["kind"], "agenthuman.session")

    def test_a_room_first_known_from_a_link_takes_the_provider_of_its_own_events(self):
        # An AgentHuman session linked to the room came first; the room's own events
        # are Daily's: the session is Daily's room, listed under provider=daily.
        room = fresh_id("room-")
        self.agenthuman_started(room, T0)
        self.daily("meeting.started", {"meeting_id": fresh_id("m-"), "room": room,
                                       "start_ts": T0 + 5}, T0 + 5.2)
        s = self.get_ok("/v1/sessions/room:" + room)
        self.assertEqual((s["provider"], s["event_count"]), ("daily", 2))
        listed = self.d.paged("/v1/sessions?provider=daily", "sessions", limit=500)
        self.assertIn("room:" + room, [x["id"] for x in listed])
        # Its own events decide it once: a later link does not take it back.
        self.agenthuman_started(room, T0 + 60)
        self.assertEqual(self.get_ok("/v1/sessions/room:" + room)["provider"], "daily")

    def test_a_linked_rooms_first_own_event_that_says_nothing_of_its_state_sets_it_too(self):
        # The same with an own event that carries no state (participant.left): the
        # room's row is then rewritten without a state change, which once took a
        # shorter path that leaves the provider alone.
        room = fresh_id("room-")
        self.agenthuman_started(room, T0)
        self.daily("participant.left", {"room": room, "session_id": "p-1", "user_name": "Ana",
                                        "joined_at": T0 + 2, "duration": 30}, T0 + 32)
        s = self.get_ok("/v1/sessions/room:" + room)
        self.assertEqual((s["provider"], s["status"], s["event_count"]), ("daily", "created", 2))


class RoomRetentionTest(DailyTestBase):
    config = hrtest.config_with(storage="prune_interval = 100ms",
                                sections=DAILY_SOURCE + "retain = 3s\n")
    daily = RoomTimelineTest.daily

    def room_gone(self, room):
        deadline = time.monotonic() + 20
        while self.d.request("GET", "/v1/sessions/room:" + room)[0] != 404:
            self.assertLess(time.monotonic(), deadline, "the room's retention")
            time.sleep(0.1)

    def test_an_event_counted_nowhere_is_counted_when_its_room_names_its_meeting_again(self):
        # A transcript that came while its meeting's room events were gone was counted
        # nowhere (right: no room's timeline had it); the room's next event naming the
        # meeting put it on the timeline, but only a link named for the first time
        # counted the events before it, and this one was named before: 1 != 2.
        room, meeting = fresh_id("room-"), fresh_id("m-")
        self.daily("meeting.started", {"meeting_id": meeting, "room": room, "start_ts": T0},
                   T0 + 0.2)
        self.room_gone(room)
        transcript = self.daily("transcript.ready-to-download", {
            "id": fresh_id("tr-"), "room_id": "uuid", "mtg_session_id": meeting,
            "status": "finished"}, T0 + 900)
        self.daily("meeting.ended", {"meeting_id": meeting, "room": room, "start_ts": T0,
                                     "duration": 900}, T0 + 901)
        s = self.get_ok("/v1/sessions/room:" + room)
        self.assertIn(transcript, [e["id"] for e in s["events"]])
        self.assertEqual(s["event_count"], len(s["events"]), s["events"])

    def test_a_meeting_named_in_two_rooms_is_counted_in_one_that_still_names_it(self):
        # Not Daily's way, but what the page says: on both timelines, counted in one.
        # The first room's event gone, the link still named it, and the transcript
        # (on the second's timeline) was counted nowhere.
        first, second, meeting = fresh_id("room-"), fresh_id("room-"), fresh_id("m-")
        gone = self.daily("meeting.started", {"meeting_id": meeting, "room": first,
                                              "start_ts": T0}, T0)
        self.daily("meeting.started", {"meeting_id": meeting, "room": second,
                                       "start_ts": T0 + 1}, T0 + 1)
        hrtest.db_exec(self.d, "DELETE FROM events WHERE id = '%s'" % gone)
        transcript = self.daily("transcript.ready-to-download", {
            "id": fresh_id("tr-"), "room_id": "uuid", "mtg_session_id": meeting,
            "status": "finished"}, T0 + 900)
        s = self.get_ok("/v1/sessions/room:" + second)
        self.assertIn(transcript, [e["id"] for e in s["events"]])
        self.assertEqual(s["event_count"], len(s["events"]), s["events"])

    def test_a_late_transcript_of_a_meeting_retention_took_does_not_bring_its_room_back(self):
        # The room's links outlive its events: a transcript of a meeting whose events
        # retention deleted found the room by its meeting, made its session again
        # (event_count 1, an empty timeline, listed by ?since=), and that session,
        # its one event naming no room, was never pruned.
        room, meeting = fresh_id("room-"), fresh_id("m-")
        self.daily("meeting.started", {"meeting_id": meeting, "room": room, "start_ts": T0},
                   T0 + 0.2)
        self.assertEqual(self.d.request("GET", "/v1/sessions/room:" + room)[0], 200)
        self.room_gone(room)
        self.daily("transcript.ready-to-download", {
            "id": fresh_id("tr-"), "room_id": "uuid", "mtg_session_id": meeting,
            "status": "finished"}, T0 + 900)
        self.assertEqual(self.d.request("GET", "/v1/sessions/room:" + room)[0], 404)


if __name__ == "__main__":
    unittest.main()
