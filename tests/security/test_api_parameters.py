"""21. Strict parameters and paths (docs/security.md).

Once, the API answered what it could make of a query: `limit=1&limit=600` used one of
the two, `limit=%205` and `limit=+5` were read as 5, a bare `?limit` was no limit, and
`GET /v1/events/<unknown>/deliveries` answered 200 with no deliveries, so a typo in an
event id looked like an event nobody was sent. Now every /v1 route refuses what it
cannot take whole: a 400 `bad-parameter` problem naming the parameter, or a 404.
"""

import json
import unittest

from hrtest import DaemonTest, config_with, payload

SINK = "http://127.0.0.1:9/never"  # a destination that is configured, never reached here

# Every /v1 route (and /metrics) with one parameter it takes, if it takes any.
ROUTES = [
    ("GET", "/v1/events", "limit=5"),
    ("GET", "/v1/events/{id}", None),
    ("GET", "/v1/events/{id}/raw", None),
    ("GET", "/v1/events/{id}/deliveries", None),
    ("POST", "/v1/events/{id}/replay", "destination=crm"),
    ("GET", "/v1/sessions", "limit=5"),
    ("GET", "/v1/sessions/{session}", None),
    ("GET", "/v1/rejections", "limit=5"),
    ("GET", "/v1/deliveries", "limit=5"),
    ("GET", "/v1/destinations", None),
    ("GET", "/v1/destinations/crm", None),
    ("POST", "/v1/destinations/crm/enable", None),
    ("POST", "/v1/destinations/crm/replay", "status=dead"),
    ("GET", "/v1/stream", "backlog=1"),
    ("GET", "/metrics", None),
]


class StrictParametersTest(DaemonTest):
    config = config_with(sections="[destination crm]\nurl = %s\nallow_private = true\n"
                                  "retry_schedule = 1h\n" % SINK)

    def setUp(self):
        super().setUp()
        ack = self.post_ok(payload("tavus.conversation.system.shutdown.json"))
        self.event_id = ack["id"]
        self.session = self.get_ok("/v1/events/" + self.event_id)["session"]["id"]

    def path(self, template):
        return template.replace("{id}", self.event_id).replace("{session}", self.session)

    def answer(self, method, path):
        """(status, headers, body); only the status of a 200 (a stream never ends)."""
        c = self.d.conn(timeout=10)
        try:
            # A POST carries the JSON type, as hookctl does (the API's CSRF rule, defence 9).
            c.request(method, path, headers={} if method in ("GET", "HEAD")
                      else {"Content-Type": "application/json"})
            r = c.getresponse()
            body = r.read() if r.status != 200 else b""
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            c.close()

    def refused(self, method, path, parameter):
        doc = self.assertProblem(self.answer(method, path), 400, "bad-parameter",
                                 "%s %s" % (method, path))
        self.assertEqual(doc["parameter"], parameter, path)
        return doc

    def test_unknown_event_deliveries_is_404(self):
        self.assertProblem(self.d.request("GET", "/v1/events/evt_nope/deliveries"), 404,
                           "not-found")
        self.assertProblem(self.d.request("GET", "/v1/events/%s0/deliveries" % self.event_id),
                           404, "not-found")
        # A known event with no delivery is still a 200 with an empty list.
        ack = self.post_ok(payload("tavus.video.completed.json"), source="tavus")
        doc = self.get_ok("/v1/events/%s/deliveries" % ack["id"])
        self.assertEqual(doc["event_id"], ack["id"])
        self.assertIsInstance(doc["deliveries"], list)

    def test_repeated_limit_is_refused(self):
        for route in ("/v1/events", "/v1/sessions", "/v1/rejections", "/v1/deliveries"):
            for q in ("limit=1&limit=600", "limit=600&limit=1", "limit=5&limit=5"):
                doc = self.refused("GET", route + "?" + q, "limit")
                self.assertIn("more than once", doc["detail"])

    def test_limit_with_a_sign_or_blanks_is_refused(self):
        for q in ("limit=%205", "limit=+5", "limit=%2B5", "limit=5%20", "limit=%095",
                  "limit=0x5", "limit=5.0", "limit=-0"):
            with self.subTest(q=q):
                self.refused("GET", "/v1/events?" + q, "limit")
        for q in ("cursor=+1", "cursor=%201"):
            self.refused("GET", "/v1/events?" + q, "cursor")
        self.refused("GET", "/v1/stream?after=+0", "after")
        self.refused("GET", "/v1/stream?backlog=%201", "backlog")
        self.assertEqual(len(self.get_ok("/v1/events?limit=5")["events"]), 1)
        self.assertEqual(len(self.get_ok("/v1/events?limit=05")["events"]), 1)

    def test_parameter_without_a_value_is_refused(self):
        for q in ("limit", "limit=", "kind", "source=", "since"):
            with self.subTest(q=q):
                doc = self.refused("GET", "/v1/events?" + q, q.rstrip("="))
                self.assertIn("needs a value", doc["detail"])

    def test_every_route_refuses_unknown_and_repeated_parameters(self):
        for method, template, good in ROUTES:
            path = self.path(template)
            with self.subTest(route=template):
                self.refused(method, path + "?limitt=5", "limitt")
                if good is not None:
                    name = good.split("=")[0]
                    self.refused(method, "%s?%s&%s" % (path, good, good), name)

    def test_repeatable_filters_are_bounded(self):
        kinds = "&".join(["kind=tavus.video"] * 16)
        self.get_ok("/v1/events?" + kinds)
        doc = self.refused("GET", "/v1/events?" + kinds + "&kind=tavus.video", "kind")
        self.assertIn("more than 16", doc["detail"])
        many = "&".join("source=s%d" % i for i in range(200))
        self.assertProblem(self.d.request("GET", "/v1/events?" + many), 400, "bad-parameter")

    def test_dry_run_takes_true_or_false(self):
        self.refused("POST", "/v1/destinations/crm/replay?dry_run=yes", "dry_run")
        status, _, body = self.d.request("POST", "/v1/destinations/crm/replay?dry_run=true")
        self.assertEqual(status, 200, body)
        # The event's delivery is still pending (the destination is unreachable), so a
        # replay would skip it (test_hookctl.py counts a replay that would queue some).
        self.assertEqual(json.loads(body), {"deliveries": 0, "dry_run": True})
        self.assertEqual(len(self.get_ok("/v1/deliveries?destination=crm")["deliveries"]), 1)

    def test_a_destination_replay_refuses_status_pending(self):
        # A replay skips the events with a pending delivery to the destination, so
        # status=pending picked only events it then skipped: a 202 that queued nothing.
        for q in ("status=pending", "status=pending&dry_run=true"):
            with self.subTest(q=q):
                doc = self.refused("POST", "/v1/destinations/crm/replay?" + q, "status")
                self.assertIn("expected succeeded, failed or dead", doc["detail"])
        # GET /v1/deliveries still lists the pending ones.
        self.assertEqual(len(self.get_ok("/v1/deliveries?destination=crm&status=pending")
                             ["deliveries"]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
