"""What the forwarder tells an operator, at the default log level: a delivery that
ends failed or dead is a warning naming it, why and the remedy, in moderation; a
breaker that opens says the last error and its cooldown in seconds; a store that
cannot be read is said in moderation while it lasts, and once when it is back (the
API's and /metrics' failed reads in moderation too). A log review found the failed
delivery at debug only, the breaker without a reason, and the read failure once per
destination and poll for as long as the database was away.
"""

import re
import time
import unittest

import hrtest
from hrtest import Daemon, free_port, payload, sqlite_only
from test_forward import BASE_CONFIG, ForwardBase, conversation_event, dest_section, wait_until

SHUTDOWN = "tavus.conversation.system.shutdown.json"
BURST = 20  # include/hr/ratelimit.h, HR_LOGFLOOD_BURST


def delivery_number(dl):
    return int(dl["id"][len("dlv_"):])


class FinalDeliveryLogTest(ForwardBase):

    def test_a_final_failure_is_a_warning_naming_it_why_and_the_remedy(self):
        refusing, down = self.sink("unauthorized"), self.sink("fail")
        d = self.daemon(
            dest_section("refusing", refusing.url + "/r", allow_private=True)
            + dest_section("down", down.url + "/d", allow_private=True,
                           retry_schedule="0.1s", jitter=0)
            + dest_section("private", "http://127.0.0.1:%d/p" % free_port()))
        eid = self.post(d, payload(SHUTDOWN))
        final = {x["destination"]: x for x in self.wait_final(d, [eid])[eid]}
        self.assertEqual([final[n]["status"] for n in ("refusing", "down", "private")],
                         ["failed", "dead", "failed"])
        lines = d.log().splitlines()
        remedy = "; replay: hookctl replay %s --destination " % eid
        self.assertIn("<4>forward: delivery %d of %s to refusing: failed at attempt 1 (final: not"
                      " retried): HTTP 401%srefusing"
                      % (delivery_number(final["refusing"]), eid, remedy), lines)
        self.assertIn("<4>forward: delivery %d of %s to down: dead at attempt 2 (final: no retry"
                      " left): HTTP 500%sdown" % (delivery_number(final["down"]), eid, remedy),
                      lines)
        blocked = re.compile(r"<4>forward: delivery %d of %s to private: failed at attempt 1 "
                             r"\(final: not retried\): blocked: 127\.0\.0\.1 [^;]*%s$"
                             % (delivery_number(final["private"]), eid,
                                re.escape(remedy + "private")))
        self.assertTrue(any(blocked.match(l) for l in lines), lines)

    def test_every_attempt_says_its_status_at_debug(self):
        s = self.sink("script")
        s.script = ["fail"]
        d = Daemon(BASE_CONFIG + dest_section("flaky", s.url + "/f", allow_private=True,
                                              retry_schedule="0.1s", jitter=0),
                   extra_args=["--log-level", "debug"])
        self.daemons.append(d)
        d.start()
        eid = self.post(d, payload(SHUTDOWN))
        n = delivery_number(self.wait_status(d, eid, "flaky", "succeeded"))
        prefix = "<7>forward: delivery %d of %s to flaky: " % (n, eid)
        lines = [l[len(prefix):] for l in d.log().splitlines() if l.startswith(prefix)]
        self.assertEqual(len(lines), 2, lines)
        self.assertRegex(lines[0], r"^attempt 1: HTTP 500; next attempt in 0\.\d s$")
        self.assertEqual(lines[1], "attempt 2: HTTP 200; succeeded")

    def test_a_flood_of_final_failures_is_logged_in_moderation_and_counted(self):
        s = self.sink("unauthorized")
        d = self.daemon(dest_section("refusing", s.url + "/r", allow_private=True,
                                     max_in_flight=16, match="tavus.*")
                        + dest_section("other", s.url + "/o", allow_private=True,
                                       match="agenthuman.*"))
        n = 2 * BURST + 10
        events = [self.post(d, conversation_event(SHUTDOWN, "c%d" % i)) for i in range(n)]
        self.wait_final(d, events, timeout=60)
        # Another destination's failure is said, though "refusing" has no token left
        # (one bucket for the process hid it).
        other = self.post(d, payload("agenthuman.session.ended.json"))
        self.wait_final(d, [other])
        self.assertIn(" of %s to other: failed at attempt 1 " % other, d.log())
        time.sleep(1.1)  # a token again: the next failure is logged, with the count held
        events.append(self.post(d, payload(SHUTDOWN)))
        self.wait_final(d, events[-1:])
        log = d.log()
        logged = [l for l in log.splitlines() if " to refusing: failed at attempt 1 " in l]
        held = [int(x) for x in re.findall(
            r"^<4>forward: destination refusing: (\d+) failed or dead deliveries were not "
            r"logged \(a flood\)", log, re.M)]
        self.assertGreaterEqual(len(logged), BURST)
        self.assertLess(len(logged), n, "no line was held back")
        self.assertTrue(held, "the lines held back were not counted")
        self.assertEqual(len(logged) + sum(held), n + 1, "a failure was neither logged nor counted")
        self.assertIn(events[-1], logged[-1])


class BreakerLogTest(ForwardBase):

    def test_the_breaker_opening_names_the_last_error_and_the_cooldown_in_seconds(self):
        s = self.sink("fail")
        d = self.daemon(
            dest_section("answering", s.url + "/a", allow_private=True, breaker_failures=2,
                         breaker_cooldown="1500ms", max_in_flight=1, retry_schedule="0.1s",
                         jitter=0)
            + dest_section("closed", "http://127.0.0.1:%d/c" % free_port(), allow_private=True,
                           breaker_failures=2, breaker_cooldown="2s", max_in_flight=1,
                           retry_schedule="0.1s", jitter=0))
        self.post(d, payload(SHUTDOWN))
        answering = d.wait_log("forward: destination answering: breaker open")
        closed = d.wait_log("forward: destination closed: breaker open")
        self.assertEqual(answering, ["<4>forward: destination answering: breaker open after 2"
                                     " consecutive failures, the last: HTTP 500; next probe in"
                                     " 1.5 s"])
        self.assertEqual(len(closed), 1, closed)
        self.assertRegex(closed[0], r"^<4>forward: destination closed: breaker open after 2"
                                    r" consecutive failures, the last: [^;]*127\.0\.0\.1[^;]*;"
                                    r" next probe in 2 s$")


@sqlite_only("a table renamed under the daemon fails its reads; PostgreSQL's prepared"
             " statements follow the rename")
class StoreReadLogTest(ForwardBase):
    """The deliveries table renamed away: every read of it fails until it is back."""

    def reads_fail(self, d):
        hrtest.db_exec(d, "ALTER TABLE deliveries RENAME TO deliveries_away")
        return time.monotonic()

    def reads_work(self, d):
        hrtest.db_exec(d, "ALTER TABLE deliveries_away RENAME TO deliveries")

    def test_the_forwarders_failed_reads_are_held_and_their_end_said_once(self):
        s = self.sink("ok")
        names = ["d%02d" % i for i in range(30)]
        d = self.daemon("".join(dest_section(n, s.url + "/" + n, allow_private=True)
                                for n in names))
        began = self.reads_fail(d)
        time.sleep(3)  # each destination polls once a second: about 90 failed reads
        self.reads_work(d)
        took = time.monotonic() - began
        failed = [l for l in d.log().splitlines()
                  if l.startswith("<4>forward: ") and "no such table: deliveries" in l]
        # An outage is said when it begins, then once a minute: not once a second
        # per destination (and not 20 at once then one a second either).
        self.assertEqual(len(failed), 1, failed)
        back = wait_until(lambda: d.wait_log("the store is read again", 0), 10, "the return")
        time.sleep(0.5)  # time for a second one, which must not come
        for line in failed:
            self.assertRegex(line, r"^<4>forward: destination d\d\d: nothing is sent while the"
                                   r" store cannot be read: due deliveries: no such table")
        self.assertEqual(len(d.wait_log("the store is read again", 0)), 1, "said once")
        m = re.fullmatch(r"<6>forward: the store is read again, after (\d+) failed reads in"
                         r" \d+\.\d s", back[0])
        self.assertIsNotNone(m, back)
        self.assertGreater(int(m.group(1)), len(failed), "nothing was held back")
        eid = self.post(d, payload(SHUTDOWN))  # and the deliveries flow again
        self.assertEqual({x["status"] for x in self.wait_final(d, [eid])[eid]}, {"succeeded"})

    def test_the_apis_failed_reads_are_held(self):
        d = self.daemon(dest_section("one", "http://127.0.0.1:9/x", allow_private=True))
        began = self.reads_fail(d)
        try:
            for _ in range(2 * BURST):
                self.assertEqual(d.request("GET", "/v1/deliveries")[0], 503)
        finally:
            self.reads_work(d)
        took = time.monotonic() - began
        failed = d.wait_log("<4>api: /v1/deliveries: ", 0)
        self.assertLessEqual(len(failed), BURST + took + 1, "not held back")

    def test_the_metrics_failed_reads_are_held(self):
        names = ["d%02d" % i for i in range(30)]
        d = self.daemon("".join(dest_section(n, "http://127.0.0.1:9/" + n, allow_private=True)
                                for n in names))
        began = self.reads_fail(d)
        try:
            for _ in range(3):
                self.assertEqual(d.request("GET", "/metrics")[0], 200)
        finally:
            self.reads_work(d)
        failed = d.wait_log("<4>metrics: ", 0)
        # One failed read ends the scrape's reads of the database: each could wait
        # statement_timeout (PostgreSQL away), one a destination made a scrape take
        # minutes. Three scrapes, one line each (it was 20, the flood's bucket).
        self.assertEqual(len(failed), 3, failed)


if __name__ == "__main__":
    unittest.main()
