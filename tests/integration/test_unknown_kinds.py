"""Unknown is stored, never refused; transcripts as they really are (issue 10.2, 10.3).

Providers add event types without notice and Tavus and PailFlow never retry: a body
that is recognisably a provider's but names an event the seeds do not document is
stored with 200 as that provider's unknown kind, correlated to its session where it
carries a key, and forwarded like any event. 422 stays for a body that is recognisably
a documented kind and fails that kind's struct.
"""

import time
import unittest

import hrtest
from hrtest import DaemonTest, dumps, fresh_id, payload, payload_json
from sink import Sink


class UnknownKindsTest(DaemonTest):

    def setUp(self):
        self.sink = Sink(max_seconds=120)
        self.other = Sink(max_seconds=120)
        self.config = hrtest.config_with(sections="""
[destination all]
url = %s/all
allow_private = true
[destination unknown_only]
url = %s/unknown
allow_private = true
match = pailflow.unknown, agenthuman.unknown
""" % (self.sink.url, self.other.url))
        try:
            super().setUp()
        except BaseException:
            self.sink.stop()
            self.other.stop()
            raise

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.sink.stop()
            self.other.stop()

    def test_new_pailflow_events_are_stored_correlated_and_forwarded(self):
        room = fresh_id("interview-")
        done = dict(payload_json("botplatform.session_complete.json"), room_name=room)
        joined = {"event_type": "bot_joined", "workflow_thread_id": fresh_id("wt-"),
                  "room_url": "https://lunchpaillabs.daily.co/%s?t=1" % room,
                  "timestamp": "2026-01-12T17:20:01.004512+00:00"}
        left = {"event": "bot_left", "room_name": room, "reason": "stop_phrase"}
        acks = [self.post_ok(dumps(joined), "pailflow"), self.post_ok(dumps(done), "pailflow"),
                self.post_ok(dumps(left), "default")]
        self.assertEqual([a["kind"] for a in acks],
                         ["pailflow.unknown", "pailflow.session_complete", "pailflow.unknown"])
        ev = self.get_ok("/v1/events/" + acks[0]["id"])
        self.assertEqual(ev["provider"], "pailflow")
        self.assertEqual(ev["event_type"], "bot_joined")
        self.assertEqual(ev["session"]["id"], "room:" + room)
        self.assertEqual(ev["occurred_at"], "2026-01-12T17:20:01.004512Z")
        self.assertIsInstance(ev["typed"], dict)
        self.assertEqual(self.get_ok("/v1/events/" + acks[2]["id"])["event_type"], "bot_left")
        sess = self.get_ok("/v1/sessions/room:" + room)
        self.assertEqual(sess["event_count"], 3)
        self.assertEqual(sess["status"], "ended", "an unknown event does not move the state back")
        got = self.sink.wait_count(3, timeout=20)
        self.assertEqual(sorted(r.headers["webhook-id"] for r in got),
                         sorted(a["id"] for a in acks))
        got = self.other.wait_count(2, timeout=20)
        time.sleep(0.3)
        self.assertEqual(sorted(r.headers["webhook-id"] for r in self.other.received()),
                         sorted([acks[0]["id"], acks[2]["id"]]), "kind globs see the new kinds")

    def test_documented_kinds_are_still_validated(self):
        failed = payload_json("botplatform.bot_join_failed.json")
        del failed["workflow_thread_id"]
        prob = self.assertProblem(self.d.post(dumps(failed), "pailflow"), 422, "invalid-payload")
        self.assertEqual(prob["kind"], "pailflow.bot_join_failed")
        self.assertEqual([e["pointer"] for e in prob["errors"]], ["/workflow_thread_id"])
        # The same body under another name is an event we do not know: kept.
        failed["event_type"] = "bot_join_retrying"
        self.assertEqual(self.post_ok(dumps(failed), "pailflow")["kind"], "pailflow.unknown")

    def test_provider_unknown_kinds_refuse_no_shape(self):
        # With a provider's source, whatever does not match is that provider's unknown kind,
        # and a wrong type in it is not a reason to refuse (it was a 422, and lost).
        for source, body, kind in (
                ("tavus", {"conversation_id": 5, "timestamp": [], "message_type": 1},
                 "tavus.unknown"),
                ("tavus", {"event_type": "conversation.guardrail.triggered",
                           "conversation_id": "c1", "properties": "free text"}, "tavus.unknown"),
                ("pailflow", {"note": "no event name at all", "room_name": 12}, "pailflow.unknown"),
                ("default", {"success": True, "session": {"session_id": "sess_X", "status": 3}},
                 "agenthuman.unknown")):
            with self.subTest(body=body):
                ack = self.post_ok(dumps(body), source)
                self.assertEqual(ack["kind"], kind)
                self.assertEqual(self.get_ok("/v1/events/" + ack["id"])["payload"], body)

    def test_agenthuman_wrapped_answer_joins_its_session(self):
        sid = "sess_" + fresh_id("", 26).upper()
        ended = dict(payload_json("agenthuman.session.ended.json"), session_id=sid)
        wrapped = payload_json("agenthuman.unknown.end_session_response.json")
        wrapped["session"]["session_id"] = sid
        self.post_ok(dumps(ended))
        ack = self.post_ok(dumps(wrapped))
        self.assertEqual(ack["kind"], "agenthuman.unknown")
        ev = self.get_ok("/v1/events/" + ack["id"])
        self.assertEqual(ev["provider"], "agenthuman")
        self.assertEqual(ev["session"]["id"], "agenthuman:" + sid)
        self.assertEqual(self.get_ok("/v1/sessions/agenthuman:" + sid)["event_count"], 2)

    def test_transcript_with_tool_calls_is_stored_typed_and_forwarded(self):
        name = "tavus.conversation.application.transcription_ready.tool_calls.json"
        doc = payload_json(name)
        doc["conversation_id"] = fresh_id("c")
        ack = self.post_ok(dumps(doc), "tavus")
        self.assertEqual(ack["kind"], "tavus.conversation.application.transcription_ready")
        ev = self.get_ok("/v1/events/" + ack["id"])
        items = ev["typed"]["properties"]["transcript"]
        self.assertIsNone(items[2]["content"])
        self.assertEqual(items[2]["tool_calls"], [{
            "id": "call_8f2c1a", "type": "function",
            "function": {"name": "check_availability",
                         "arguments": doc["properties"]["transcript"][2]["tool_calls"][0]
                         ["function"]["arguments"]}}])
        self.assertEqual((items[3]["role"], items[3]["tool_call_id"]), ("tool", "call_8f2c1a"))
        self.assertEqual(ev["payload"], doc)
        self.assertEqual(self.get_ok("/v1/sessions/conversation:" + doc["conversation_id"])
                         ["status"], "ended")
        got = self.sink.wait_count(1, timeout=20)
        self.assertEqual(got[0].body, dumps(doc))
        # A tool call without a function name is a transcript that fails its struct.
        doc["conversation_id"] = fresh_id("c")
        del doc["properties"]["transcript"][2]["tool_calls"][0]["function"]["name"]
        prob = self.assertProblem(self.d.post(dumps(doc), "tavus"), 422, "invalid-payload")
        self.assertEqual([e["pointer"] for e in prob["errors"]],
                         ["/properties/transcript/2/tool_calls/0/function/name"])


if __name__ == "__main__":
    unittest.main()
