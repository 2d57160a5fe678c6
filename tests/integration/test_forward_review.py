"""Forwarding review (r41): routing, what is sent, replay and discard, each test a
defect found in review that fails on the code it was written against."""

import json
import time
import unittest

import hrtest
from hrtest import fresh_id, payload, with_backend
from test_forward import (BASE_CONFIG, ForwardBase, conversation_event, dest_section,
                          wait_until)


class DiscardInFlightTest(ForwardBase):

    def test_a_discarded_delivery_whose_attempt_then_fails_counts_that_attempt(self):
        """api.md: a delivery discarded while its attempt runs stays discarded when the
        attempt then fails, "the attempt in its log"; forwarding.md: `attempts` is the
        highest number in that log. The late record's update is skipped whole (the row is
        no longer pending), so the log shows attempt 1 and the delivery says 0."""
        s = self.sink("gated")
        s.gate.clear()
        keep = dest_section("keep", "http://127.0.0.1:9/keep", allow_private=True)
        d = self.daemon(keep + dest_section("gone", s.url + "/gone", allow_private=True,
                                            retry_schedule="1h", jitter=0))
        eid = self.post(d, payload("tavus.conversation.system.replica_joined.json"))
        s.wait_count(1)  # the attempt is in flight, held by the sink
        with open(d.config_path, "w") as f:  # "gone" removed while it runs
            f.write(with_backend((BASE_CONFIG + keep).format(db=d.db, dir=d.dir), d.dir))
        d.reload()
        self.assertEqual(self.api(d, "POST", "/v1/destinations/gone/discard"),
                         {"name": "gone", "discarded": 1})
        s.gated_answers = ["fail"]
        s.gate.set()
        dl = self.wait_attempts(d, eid, "gone", 1)
        self.assertEqual(dl["status"], "failed", dl)
        self.assertIn("discarded", dl["last_error"])
        self.assertEqual(dl["attempts_log"][0]["http_status"], 500, dl)
        self.assertEqual(dl["attempts"], 1, "the log has attempt 1: %r" % dl)


class ReplayAcrossReloadTest(ForwardBase):

    @hrtest.sqlite_only("PostgreSQL's hold (a lock on events) holds the request's read"
                        " of the event too, so the request never reaches the writer")
    def test_an_event_replay_is_not_queued_for_a_destination_a_reload_removed(self):
        """A destination's replay asks the configuration again on the writer and stops
        with 409 destination-removed when a reload removed the destination meanwhile
        ("without it, the replay queued its events for nobody"). POST
        /v1/events/{id}/replay?destination=NAME does not: checked against the
        configuration the request came with, it answers 202 {"deliveries": 1} and leaves
        a pending delivery that nobody sends, unnoticed."""
        s = self.sink()
        d = self.daemon(dest_section("slow", s.url + "/slow", allow_private=True))
        eid = self.post(d, payload("tavus.conversation.system.replica_joined.json"))
        self.wait_status(d, eid, "slow", "succeeded")
        with open(d.config_path) as f:
            config = f.read().replace("[destination slow]", "[destination other]")
        answers = self.behind_a_reload(d, "/v1/events/%s/replay?destination=slow" % eid,
                                       config)
        self.assertEqual(answers.get("event"), 200, d.log())
        status, _, body = answers["request"]
        pending = hrtest.db_rows(d, "SELECT count(*) FROM deliveries d JOIN events e ON"
                                    " e.seq = d.event_seq WHERE d.destination = 'slow' AND"
                                    " d.status = 0 AND e.id = '%s'" % eid)
        self.assertEqual((status, pending), (409, [(0,)]),
                         "answered %d %r; deliveries pending to the removed destination: %r"
                         % (status, body[:200], pending))


if __name__ == "__main__":
    unittest.main()
