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


if __name__ == "__main__":
    unittest.main()
