"""Reads of the API never hold webhooks up.

libmicrohttpd ties each connection to one of [server] threads workers. A handler that
read the store ran on its connection's worker, so while a read waited on the database
every other connection of that worker waited with it: with the default two workers,
two slow reads held every POST /hooks until they ended (2026-12-05, PostgreSQL, 200,000
deliveries: a dry-run replay count took 400 ms, and beside two of them in a loop the
webhooks' median answer went from 3 ms to 771 ms). The reads now run on threads of
their own (src/http/http_reads.c).

Reads made to wait here: a session outside the daemon holds `rejections` and
`deliveries` locked, so GET /v1/rejections and a dry-run replay's count (a POST, which
without dry_run hands a write over) wait in PostgreSQL, up to [storage]
statement_timeout; a webhook of a known kind that no destination takes reads and writes
neither table. PostgreSQL only: SQLite's readers never wait on a lock another
connection can hold.
"""

import http.client
import json
import signal
import threading
import time
import unittest

import hrtest
from hrtest import DaemonTest, payload

# Each on a connection of its own. libmicrohttpd gives a connection to the worker of
# its descriptor's number modulo [server] threads: two reads of each route, on
# connections opened one after the other, take both workers.
READS = [("GET", "/v1/rejections", {"rejections": [], "next_cursor": None})] * 2 + \
    [("POST", "/v1/destinations/crm/replay?dry_run=true", {"deliveries": 0, "dry_run": True})] * 2


def webhooks_timed(test, body, behind):
    """Ten webhooks posted to test.d one after the other, each on a connection of its
    own with a 10-s timeout; the seconds each took."""
    took = []
    for _ in range(10):
        started = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", test.d.port, timeout=10)
        try:
            c.request("POST", "/hooks/default", body, {"Content-Type": "application/json"})
            r = c.getresponse()
            test.assertEqual(r.status, 200, r.read())
            r.read()
        except TimeoutError:
            test.fail("a webhook waited 10 s behind " + behind)
        finally:
            c.close()
        took.append(time.monotonic() - started)
    return took


@unittest.skipIf(hrtest.BACKEND != "postgresql", "needs HR_TEST_BACKEND=postgresql")
class SlowReadsTest(DaemonTest):

    # A read waits on the lock for as long as the test holds it, not the default 10 s.
    config = hrtest.config_with(server="threads = 2", storage="statement_timeout = 60s",
                                sections="[destination crm]\nurl = http://127.0.0.1:9/\n"
                                         "match = agenthuman.unknown\n")

    def hold_tables(self):
        """A psql session that holds `rejections` and `deliveries` locked until it ends."""
        url = hrtest.pg_database(self.d.dir)
        holder = hrtest.PgSession(url, "LOCK TABLE rejections, deliveries IN ACCESS EXCLUSIVE"
                                       " MODE;")
        self.addCleanup(holder.close)
        return holder, url

    def locks(self, url, condition):
        return int(hrtest.pg_sql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid ="
                                 " l.relation WHERE c.relname IN ('rejections', 'deliveries')"
                                 " AND " + condition, url).strip())

    def read(self, method, path, out):
        c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=60)
        try:
            c.request(method, path, "{}" if method == "POST" else None,
                      {"Content-Type": "application/json"} if method == "POST" else {})
            r = c.getresponse()
            out.append((path, r.status, r.read()))
        finally:
            c.close()

    def reads_waiting(self, url, reads):
        """`reads` sent, each on a thread and a connection of its own, once two of them
        wait in PostgreSQL (one per read thread now; one per worker before). Returns
        the threads and the list their answers go to."""
        answers = []
        readers = [threading.Thread(target=self.read, args=(method, path, answers))
                   for method, path, _ in reads]
        for t in readers:
            t.start()
        deadline = time.monotonic() + 10
        while self.locks(url, "NOT l.granted") < 2:
            self.assertLess(time.monotonic(), deadline, "the reads are not waiting on the lock")
            time.sleep(0.05)
        return readers, answers

    def test_webhooks_are_answered_while_reads_wait_on_the_database(self):
        holder, url = self.hold_tables()
        readers, answers = self.reads_waiting(url, READS)
        body = payload("tavus.conversation.application.transcription_ready.json")
        took = webhooks_timed(self, body, "the reads")
        self.assertEqual(answers, [], "a read was answered while the lock was held")
        # Behind the reads, a webhook waits as long as the lock is held: until its client
        # gives up. A bound well above a commit's time on a busy machine, far below that.
        self.assertLess(max(took), 4.0, took)
        holder.rollback()
        for t in readers:
            t.join(30)
        self.assertEqual(sorted((p, s, json.loads(b)) for p, s, b in answers),
                         sorted((p, 200, doc) for _, p, doc in READS), answers)

    def test_a_stop_answers_the_reads_in_flight_first(self):
        # libmicrohttpd aborts the process when it stops with a connection still
        # suspended: a stop must wait for the reads the read threads hold.
        holder, url = self.hold_tables()
        readers, answers = self.reads_waiting(url, READS[:2])
        self.d.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        self.assertIsNone(self.d.proc.poll(), "the daemon stopped with reads in flight")
        holder.rollback()
        for t in readers:
            t.join(30)
        self.assertEqual(self.d.proc.wait(30), 0, self.d.log()[-2000:])
        self.assertEqual([(p, s, json.loads(b)) for p, s, b in answers],
                         [(p, 200, doc) for _, p, doc in READS[:2]], answers)



@unittest.skipIf(hrtest.BACKEND != "postgresql", "needs HR_TEST_BACKEND=postgresql")
class SlowStreamsTest(DaemonTest):
    """A stream's reader ran on its connection's worker, and read the store there each
    time events were stored: two streams waiting on the database held every webhook of
    both workers. Their reads now go to the read threads (hr_req_stream_job). Here the
    streams filter on a query parameter, so their reads wait on `event_query`, which a
    session outside holds locked; a webhook without query parameters does not touch it."""

    config = hrtest.config_with(server="threads = 2", storage="statement_timeout = 60s")

    def test_webhooks_are_answered_while_streams_wait_on_the_database(self):
        url = hrtest.pg_database(self.d.dir)
        body = payload("tavus.conversation.application.transcription_ready.json")
        holder = hrtest.PgSession(url, "LOCK TABLE event_query IN ACCESS EXCLUSIVE MODE;")
        try:
            self.streams_wait_and_webhooks_pass(url, holder, body)
        finally:  # before tearDown's stop, which waits for the streams' reads
            holder.rollback()

    def waiting(self, url):
        """Statements waiting for a lock on event_query."""
        return int(hrtest.pg_sql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON"
                                 " c.oid = l.relation WHERE c.relname = 'event_query'"
                                 " AND NOT l.granted", url).strip())

    def streams_wait_and_webhooks_pass(self, url, holder, body):
        # Two streams, a connection each (one per worker): each sends its first bytes,
        # then reads the store, and waits there.
        streams = []
        for _ in range(2):
            c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
            c.request("GET", "/v1/stream?query.user_id=42")
            r = c.getresponse()
            self.assertEqual(r.status, 200)
            self.assertTrue(r.readline().startswith(b"retry: "))
            streams.append((c, r))
        self.addCleanup(lambda: [c.close() for c, _ in streams])
        deadline = time.monotonic() + 10
        while self.waiting(url) < 2:
            self.assertLess(time.monotonic(), deadline, "the streams do not wait on the lock")
            time.sleep(0.05)
        took = webhooks_timed(self, body, "the streams")
        self.assertLess(max(took), 4.0, took)
        holder.rollback()
        # The streams go on: an event with the parameter reaches both (another event
        # than those above, which it would be a duplicate of).
        status, _, data = self.d.request(
            "POST", "/hooks/default?user_id=42",
            payload("tavus.conversation.system.replica_joined.json"))
        self.assertEqual(status, 200, data)
        eid = json.loads(data)["id"]
        for _, r in streams:
            data = None
            for _ in range(10):  # the opening frame's id, maybe a keepalive, then the event
                line = r.readline()
                if line.startswith(b"data: "):
                    data = json.loads(line[6:])
                    break
            self.assertEqual(data and data["id"], eid)


    def test_webhooks_are_answered_while_streams_wait_to_open(self):
        # Where a stream starts (here its last 5 matching events back) is read when it
        # opens, by its handler: on the read threads too.
        url = hrtest.pg_database(self.d.dir)
        holder = hrtest.PgSession(url, "LOCK TABLE event_query IN ACCESS EXCLUSIVE MODE;")
        opened = []

        def open_stream():
            c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=30)
            self.addCleanup(c.close)
            c.request("GET", "/v1/stream?query.user_id=42&backlog=5")
            r = c.getresponse()
            opened.append((r.status, r.readline()))
        openers = [threading.Thread(target=open_stream, daemon=True) for _ in range(2)]
        try:
            for t in openers:
                t.start()
            deadline = time.monotonic() + 10
            while self.waiting(url) < 2:
                self.assertLess(time.monotonic(), deadline, "the streams do not wait to open")
                time.sleep(0.05)
            took = webhooks_timed(
                self, payload("tavus.conversation.application.transcription_ready.json"),
                "the streams")
            self.assertEqual(opened, [])
        finally:
            holder.rollback()
        for t in openers:
            t.join(30)
        self.assertLess(max(took), 4.0, took)
        self.assertEqual(opened, [(200, b"retry: 3000\n")] * 2)


if __name__ == "__main__":
    unittest.main()
