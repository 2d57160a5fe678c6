"""Two hookrelay nodes on one PostgreSQL database (docs/scaling.md).

- load on both, kill -9 one mid-way: every acknowledged event is readable from the
  survivor and delivered at least once (the dead node's claimed deliveries after
  their lease runs out);
- any node serves what another stored; /v1/stream on one node sees the other's
  events (LISTEN/NOTIFY), sooner than any poll would;
- an ordered destination keeps a session's order when its events arrive on both;
- the circuit breaker is the destination's, not the node's: once it opened, one
  probe per cooldown reaches the destination, not one per node;
- a destination disabled by a 410 on one node is disabled on the other, and
  enabled on both by one POST .../enable;
- a destination's counts by status are the table's when both nodes write and fold them.

Runs with HR_TEST_BACKEND=postgresql and HR_TEST_PG_URL (ctest label postgresql).
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

import hrtest  # noqa: E402
from hrtest import Daemon, dumps, payload_json, sanitizer_reports  # noqa: E402
from sink import Sink  # noqa: E402
from test_forward import by_id, dest_section, wait_until  # noqa: E402

PG_LOCK_EVENTS = 0x6872656c00000002  # src/store/pg_int.h: event seq order = commit order
TRANSCRIPTION_READY = "tavus.conversation.application.transcription_ready.json"
SANITIZED = hrtest.SANITIZED

CONFIG = """
[server]
listen = 127.0.0.1:0
[storage]
path = {{db}}
lease = 4s
[source default]
provider = auto
{sections}
"""


def shared_dirs(n):
    """n working directories whose daemons share one new database."""
    dirs = [tempfile.mkdtemp(prefix="hrtest-node-") for _ in range(n)]
    url = hrtest.pg_database(dirs[0])
    with open(os.path.join(dirs[0], "pg-database")) as f:
        name = f.read()
    for d in dirs[1:]:
        with open(os.path.join(d, "pg-database"), "w") as f:
            f.write(name)
    return dirs, url


def disabled_metric(d):
    """hookrelay_destination_disabled of the node's only destination."""
    status, _, data = d.request("GET", "/metrics")
    for line in data.decode().splitlines():
        if line.startswith("hookrelay_destination_disabled{"):
            return int(float(line.rsplit(" ", 1)[1]))
    return None


@unittest.skipIf(hrtest.BACKEND != "postgresql", "needs HR_TEST_BACKEND=postgresql")
class TwoNodes(unittest.TestCase):

    def setUp(self):
        self.sinks, self.daemons = [], []
        self.dirs, self.url = shared_dirs(2)

    def tearDown(self):
        for s in self.sinks:
            s.stop()
        for d in self.daemons:
            rc = d.stop()
            log = d.log()
            if rc is not None and rc != -9:
                self.assertEqual(rc, 0, "hookrelay did not exit cleanly:\n" + log)
            self.assertEqual(sanitizer_reports(log), [], log)
        hrtest.pg_drop_database(self.dirs[0])
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)

    def node(self, i, sections="", wrapper=(), lease="4s"):
        d = Daemon(CONFIG.format(sections=sections).replace("lease = 4s", "lease = " + lease),
                   workdir=self.dirs[i], wrapper=wrapper)
        self.daemons.append(d)
        return d.start()

    def sink(self, **kw):
        s = Sink(**kw)
        self.sinks.append(s)
        return s

    def test_kill_one_under_load(self):
        sink = self.sink()
        sections = dest_section("down", sink.url, allow_private=True, timeout="2s", connect_timeout="1s",
                                retry_schedule="200ms, 500ms, 1s, 1s, 1s, 1s, 1s, 1s")
        a, b = self.node(0, sections), self.node(1, sections)
        n = 150 if SANITIZED else 400
        acked, lock = [], threading.Lock()
        base = payload_json(TRANSCRIPTION_READY)
        killed = threading.Event()

        def worker(t, d):
            conn = None
            for i in range(t, n, 8):
                doc = dict(base, conversation_id="c%05d%s" % (i, "y" * 10))
                try:
                    if conn is None:
                        conn = d.conn(timeout=10)
                    status, _, data = d.post(dumps(doc), conn=conn)
                except OSError:  # the node is dead: that request was never acknowledged
                    conn = None
                    if killed.is_set() and d is a:
                        return
                    continue
                if status == 200:
                    with lock:
                        acked.append(json.loads(data)["id"])
                if t == 0 and i >= n // 3 and not killed.is_set():
                    a.kill9()  # mid-way, with attempts and writes in flight on it
                    killed.set()
            if conn is not None:
                conn.close()

        ts = [threading.Thread(target=worker, args=(t, a if t % 2 else b), daemon=True)
              for t in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertTrue(killed.is_set())
        self.assertGreater(len(acked), n // 2)
        # Every acknowledged event is readable from the survivor ...
        conn = b.conn()
        for eid in acked:
            status, _, _ = b.request("GET", "/v1/events/" + eid, conn=conn)
            self.assertEqual(status, 200, eid)
        conn.close()
        # ... and delivered at least once, the dead node's leases run out included.
        want = set(acked)
        sink.wait_for(lambda reqs: want <= set(by_id(reqs)), timeout=90)
        st, doc = b.get_json("/v1/destinations")
        self.assertEqual(st, 200, doc)

    def test_any_node_serves_and_streams(self):
        a, b = self.node(0), self.node(1)
        # A stream on b, then an event stored by a: b hears of it through NOTIFY.
        s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        s.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n" % b.port)
        head = s.recv(4096)
        self.assertIn(b" 200 ", head.split(b"\r\n")[0])
        time.sleep(0.3)
        t0 = time.monotonic()
        doc = dict(payload_json(TRANSCRIPTION_READY), conversation_id="cstream" + os.urandom(4).hex())
        eid = self.assertOk(a.post(dumps(doc)))["id"]
        got = b""
        while eid.encode() not in got and time.monotonic() - t0 < 10:
            got += s.recv(65536)
        s.close()
        self.assertIn(eid.encode(), got)
        self.assertLess(time.monotonic() - t0, 5.0)
        # b serves what a stored: the event, its session, and a rejection.
        st, ev = b.get_json("/v1/events/" + eid)
        self.assertEqual(st, 200, ev)
        st, sess = b.get_json("/v1/sessions/conversation:" + doc["conversation_id"])
        self.assertEqual(st, 200, sess)
        bad = dict(doc, properties={})  # a transcription_ready without its transcript
        st, _, body = a.post(dumps(bad))
        self.assertEqual(st, 422, body)
        rid = json.loads(body).get("rejection_id") or json.loads(body).get("id")
        st, rej = b.get_json("/v1/rejections?limit=5")
        self.assertEqual(st, 200, rej)
        self.assertEqual(len(rej["rejections"]), 1, rej)
        if rid:
            self.assertEqual(rej["rejections"][0]["id"], rid)

    def test_a_replay_waits_for_the_batch_another_node_is_writing(self):
        # Ingest allocates delivery ids under the events lock, so ids follow commit
        # order; a replay did not take it: its row could get a higher id, commit
        # first and go out, and then the lower one committed and went out too, both
        # of an ordered session in flight at once. Hold the lock as a node's batch
        # does: the replay must wait for it.
        sink = self.sink()
        a = self.node(0, dest_section("ordered", sink.url, allow_private=True, ordered=True,
                                       timeout="2s"))
        eid = self.assertOk(a.post(dumps(payload_json(TRANSCRIPTION_READY))))["id"]
        sink.wait_count(1)
        url = hrtest.pg_database(self.dirs[0])
        holder = hrtest.PgSession(url, "SELECT pg_advisory_xact_lock(%d);" % PG_LOCK_EVENTS)
        self.addCleanup(holder.close)
        answer = {}
        t = threading.Thread(target=lambda: answer.setdefault(
            "r", a.request("POST", "/v1/events/%s/replay" % eid)))
        t.start()
        # Until a session of the node waits on the lock (or the replay answered: it did
        # not wait), not a fixed 1.5 s: the wait is seen, not presumed from the time.
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND application_name = 'hookrelay' AND wait_event_type = 'Lock'")
        wait_until(lambda: not t.is_alive() or hrtest.pg_sql(waiting, url).strip() == "1",
                   20, "the replay to wait on the lock", 0.05)
        self.assertTrue(t.is_alive(), "the replay did not wait for the lock: %r" % answer)
        holder.commit()
        t.join(20)
        self.assertEqual(answer["r"][0], 202, answer)
        self.assertEqual(len(sink.wait_count(2)), 2)

    def test_ordered_across_nodes(self):
        sink = self.sink()
        sections = dest_section("ordered", sink.url, allow_private=True, ordered=True, timeout="2s")
        a, b = self.node(0, sections), self.node(1, sections)
        base = payload_json(TRANSCRIPTION_READY)
        ids = []
        for i in range(20):  # one session, alternately on both nodes
            doc = dict(base, conversation_id="cordered12345", hr_test_n=i)
            ids.append(self.assertOk((a if i % 2 else b).post(dumps(doc)))["id"])
        reqs = sink.wait_for(lambda r: set(ids) <= set(by_id(r)), timeout=60)
        seen = []
        for r in reqs:
            eid = r.headers.get("webhook-id")
            if eid not in seen:
                seen.append(eid)
        self.assertEqual(seen, ids)

    def test_both_nodes_count_the_deliveries_of_each_other(self):
        # Every delivery's insert and change of status is appended as a change of
        # the counts by whichever node writes it; both nodes fold them (one at a
        # time). Folded twice, or missed by a fold, a count would be off.
        sink = self.sink()
        sections = dest_section("counted", sink.url, allow_private=True, timeout="2s")
        nodes = [self.node(0, sections), self.node(1, sections)]
        base = payload_json(TRANSCRIPTION_READY)
        ids, lock = [], threading.Lock()

        def post(i):
            for n in range(60):
                doc = dict(base, conversation_id="ccounted%d%04d" % (i, n))
                eid = self.assertOk(nodes[i].post(dumps(doc)))["id"]
                with lock:
                    ids.append(eid)
        posters = [threading.Thread(target=post, args=(i,)) for i in range(2)]
        for t in posters:
            t.start()
        for t in posters:
            t.join(60)
        self.assertEqual(len(ids), 120)
        sink.wait_for(lambda r: set(ids) <= set(by_id(r)), timeout=60)

        def counts(d):
            status, doc = d.get_json("/v1/destinations/counted")
            self.assertEqual(status, 200, doc)
            return (doc["pending"], doc["succeeded"], doc["failed"], doc["dead"])
        # Succeeded once each, as the table says, on both nodes.
        wait_until(lambda: all(counts(d) == (0, 120, 0, 0) for d in nodes), timeout=30,
                   what="the counts", interval=0.2)
        table = hrtest.pg_sql("SELECT status, count(*) FROM deliveries GROUP BY status", self.url)
        self.assertEqual(table.split(), ["1|120"])
        wait_until(lambda: hrtest.pg_sql("SELECT count(*) FROM delivery_count_changes",
                                         self.url).strip() == "0", timeout=30, interval=0.2)
        self.assertEqual(hrtest.pg_sql("SELECT status, n FROM delivery_counts WHERE n <> 0",
                                       self.url).split(), ["1|120"])

    def test_one_breaker_for_both_nodes(self):
        sink = self.sink(behaviour="fail")  # every attempt a 500
        sections = dest_section("down", sink.url, allow_private=True, timeout="2s",
                                max_in_flight=1, breaker_failures=3, breaker_cooldown="2s",
                                retry_schedule=", ".join(["100ms"] * 40))
        a, b = self.node(0, sections), self.node(1, sections)
        body = payload_json(TRANSCRIPTION_READY)
        for i in range(6):  # work for both nodes' forwarders
            doc = dict(body, conversation_id="cbreaker%05d" % i)
            self.assertOk((a if i % 2 else b).post(dumps(doc)))
        sink.wait_for(lambda r: len(r) >= 3, timeout=30)
        # The breaker opened when the attempts stop: 1.5 s without one (a poll
        # reads the other node's breaker within a second).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            last = sink.received()[-1].at
            if time.monotonic() - last >= 1.5:
                break
            time.sleep(0.1)
        # One probe after the 2 s cooldown (it fails: the next one 4 s after it).
        # A breaker per node would send one probe per node. (The cooldown outlasts the
        # 1.5 s of quiet above; 3 s and a window to 8.5 s cost 3 s more.)
        time.sleep(max(0.0, last + 5.5 - time.monotonic()))
        probes = [r for r in sink.received() if last + 0.5 < r.at <= last + 5.5]
        self.assertEqual(len(probes), 1, ([round(r.at - last, 2) for r in probes], [round(r.at - last, 2) for r in sink.received()], a.log()[-3000:], b.log()[-3000:]))

    def test_a_failed_probe_doubles_the_cooldown_whichever_node_sent_it(self):
        # forwarding.md: a failed probe opens the breaker again with twice the
        # cooldown; scaling.md: the breaker is the destination's, not the node's. The
        # shared row holds only until when: the cooldown each failed probe doubled
        # stays on the node that sent it. When the other node wins the next probe it
        # claims it with its own cooldown (the base one) and doubles that: the
        # destination is probed at 0.5, 1, 2, then 1, 2 s again, not 0.5, 1, 2, 4, 8.
        sink = self.sink(behaviour="fail")
        sections = dest_section("down", sink.url, allow_private=True, timeout="2s",
                                max_in_flight=1, breaker_failures=1, breaker_cooldown="500ms",
                                retry_schedule=", ".join(["100ms"] * 40))
        a, b = self.node(0, sections), self.node(1, sections)
        body = payload_json(TRANSCRIPTION_READY)
        for i in range(4):  # work for both nodes' forwarders
            self.assertOk((a if i % 2 else b).post(dumps(dict(body, conversation_id="cbackoff%05d" % i))))
        time.sleep(14)  # one node alone: probes 0.5, 1.5, 3.5 and 7.5 s after the opening
        at = [r.at for r in sink.received()]
        gaps = [round(y - x, 2) for x, y in zip(at, at[1:])]
        # The attempts before each node's breaker opened come together (up to one a
        # node, scaling.md); the probes after them each wait twice the last wait.
        probes = [g for g in gaps if g >= 0.3]
        self.assertGreaterEqual(len(probes), 3, gaps)
        shrank = [(x, y) for x, y in zip(probes, probes[1:]) if y < 1.5 * x]
        self.assertEqual(shrank, [], "waits between probes: %s" % gaps)

    def test_the_other_node_waits_for_the_outcome_of_a_probe_that_outlasts_the_cooldown(self):
        # scaling.md: when the cooldown ends one node wins the probe and sends it, "the
        # others wait for its outcome". The winner's claim holds the shared row only
        # until now + cooldown: a probe to a destination that hangs outlasts it, and
        # the other node then claims and sends a probe of its own while the first is
        # still out (one node alone sends its probe alone and waits for it).
        sink = self.sink(behaviour="hang")
        sections = dest_section("hangs", sink.url, allow_private=True, timeout="3s",
                                max_in_flight=1, breaker_failures=1, breaker_cooldown="500ms",
                                retry_schedule=", ".join(["100ms"] * 40))
        a, b = self.node(0, sections, lease="8s"), self.node(1, sections, lease="8s")
        body = payload_json(TRANSCRIPTION_READY)
        for i in range(4):  # work for both nodes' forwarders
            self.assertOk((a if i % 2 else b).post(dumps(dict(body, conversation_id="chang%05d" % i))))
        # Each node's first attempt hangs until its 3-s timeout, then its breaker opens;
        # the probe goes half a second later and hangs 3 s too.
        sink.wait_for(lambda r: any(x.at - r[0].at >= 3.2 for x in r), timeout=20)
        at = sorted(r.at for r in sink.received())
        probe = [t for t in at if t - at[0] >= 3.2][0]
        time.sleep(max(0.0, probe + 2.8 - time.monotonic()))  # the probe is still out
        during = [round(r.at - at[0], 2) for r in sink.received() if probe < r.at < probe + 2.8]
        self.assertEqual(during, [], "requests (s from the first): %s"
                         % [round(r.at - at[0], 2) for r in sink.received()])

    def test_disabled_and_enabled_on_both_nodes(self):
        sink = self.sink(behaviour="gone")
        sections = dest_section("gone", sink.url, allow_private=True, timeout="2s",
                                retry_schedule="200ms", jitter=0)
        a, b = self.node(0, sections), self.node(1, sections)
        body = payload_json(TRANSCRIPTION_READY)
        self.assertOk(a.post(dumps(dict(body, conversation_id="cgone000001"))))
        sink.wait_for(lambda r: len(r) >= 1, timeout=30)
        # Both nodes learn it (a node reads the shared state every second).
        for d in (a, b):
            wait_until(lambda d=d: disabled_metric(d) == 1, 10, "disabled on both nodes")
        for i in range(4):  # work for both; neither may send it
            self.assertOk((a if i % 2 else b).post(dumps(dict(body, conversation_id="cgone%06d" % (i + 2)))))
        time.sleep(2)  # a negative: one 410 was enough for both nodes
        self.assertEqual(len(sink.received()), 1)
        sink.set("ok")
        status, _, data = b.request("POST", "/v1/destinations/gone/enable")
        self.assertEqual(status, 200, data)
        for d in (a, b):
            wait_until(lambda d=d: disabled_metric(d) == 0, 10, "enabled on both nodes")
        sink.wait_for(lambda r: len(r) >= 5, timeout=30)

    def test_an_enable_right_after_another_nodes_410_stands(self):
        # The node that got the 410 reads its write back a second later and writes it
        # again when the row differs: an enable on the other node in that second was
        # overwritten, though it answered "active" (a review). A state set since this
        # node's own write is taken now.
        sink = self.sink(behaviour="script")
        sink.script = ["gone"]
        sections = dest_section("s", sink.url, allow_private=True, timeout="2s")
        a, b = self.node(0, sections), self.node(1, sections)
        body = payload_json(TRANSCRIPTION_READY)
        self.assertOk(a.post(dumps(dict(body, conversation_id="cgone000001"))))
        wait_until(lambda: hrtest.db_rows(a, "SELECT disabled FROM destinations WHERE name = 's'")
                   == [(1,)], 10, "the 410's disable in the row", 0.005)
        gone, other = (a, b) if "410 Gone" in a.log() else (b, a)
        status, _, data = other.request("POST", "/v1/destinations/s/enable")
        self.assertEqual(status, 200, data)
        # Past the 410 node's read-back (a second after its write, at a poll): it
        # takes the later enable and says so, not a fixed 3 s. Had it written its
        # disable again, no line comes, and the row says so after 10 s.
        gone.wait_log("destination s enabled on another node", timeout=10)
        self.assertEqual(hrtest.db_rows(a, "SELECT disabled FROM destinations WHERE name = 's'"),
                         [(0,)], gone.log())
        for d in (a, b):
            self.assertEqual(disabled_metric(d), 0, d.log())

    def test_a_410_whose_write_commits_after_an_enable_elsewhere_leaves_it(self):
        # The node that got the 410 had its writer held up (a batch waiting on the
        # event order lock): its disable committed after the other node's enable and
        # overwrote it, older as it was; both nodes then said disabled (a review).
        sink = self.sink(behaviour="gated")
        sink.gate.clear()
        sink.gated_answers = ["gone"]
        # The held attempt waits for the gate through B's start: 2 s ran out before it
        # under the sanitizer run's load (no 410 came, 2026-12-07). A lease outlives it.
        sections = dest_section("s", sink.url, allow_private=True, timeout="30s", jitter=0)
        a = self.node(0, sections, lease="60s")
        body = payload_json(TRANSCRIPTION_READY)
        self.assertOk(a.post(dumps(dict(body, conversation_id="cheld000001"))))
        sink.wait_for(lambda r: len(r) >= 1, timeout=10)  # A's attempt, held
        b = self.node(1, sections, lease="60s")
        order = hrtest.PgSession(hrtest.pg_database(a.dir),
                                 "SELECT pg_advisory_xact_lock(%d);" % 0x6872656c00000002)
        self.addCleanup(order.close)
        posted = []
        post = threading.Thread(target=lambda: posted.append(
            a.post(dumps(dict(body, conversation_id="cheld000002")))[0]))
        post.start()
        time.sleep(0.3)  # A's writer waits on the lock with that event
        sink.gate.set()
        wait_until(lambda: "410 Gone" in a.log(), 5, "the 410 on A")
        status, _, data = b.request("POST", "/v1/destinations/s/enable")
        self.assertEqual(status, 200, data)
        order.commit()
        post.join(20)
        self.assertEqual(posted, [200])
        # A's disable committed (the row refused it) and A read the row back, a
        # second later at a poll: it takes B's enable and says so, not a fixed 3 s.
        # Had its disable overwritten the enable, the row agrees with A: no line,
        # and the row says so after 10 s.
        a.wait_log("destination s enabled on another node", timeout=10)
        self.assertEqual(hrtest.db_rows(a, "SELECT disabled FROM destinations WHERE name = 's'"),
                         [(0,)], a.log())
        for d in (a, b):
            wait_until(lambda d=d: disabled_metric(d) == 0, 5, "enabled on both nodes")

    def test_an_enable_stands_over_a_410_stamped_by_a_clock_ahead(self):
        # The row keeps only a state set no later than its own (d737f1c): an enable
        # stamped with this node's now, under a 410 another node's clock put ahead,
        # answered "active" and changed nothing; a second later the node took the
        # row's disable back (a review).
        sink = self.sink()
        sections = dest_section("s", sink.url, allow_private=True, timeout="2s")
        a = self.node(0, sections)
        body = payload_json(TRANSCRIPTION_READY)
        ahead = int(time.time() * 1e6) + 30 * 1000000
        hrtest.db_exec(a, "INSERT INTO destinations (name, disabled, disabled_reason, disabled_at)"
                          " VALUES ('s', 1, '410 Gone', %d) ON CONFLICT (name) DO UPDATE SET"
                          " disabled = 1, disabled_reason = '410 Gone', disabled_at = %d"
                          % (ahead, ahead))
        wait_until(lambda: disabled_metric(a) == 1, 10, "the 410 read from the row")
        status, _, data = a.request("POST", "/v1/destinations/s/enable")
        self.assertEqual(status, 200, data)
        time.sleep(2)  # past the node's read-back
        self.assertEqual(hrtest.db_rows(a, "SELECT disabled FROM destinations WHERE name = 's'"),
                         [(0,)], a.log())
        self.assertEqual(disabled_metric(a), 0, a.log())
        self.assertOk(a.post(dumps(dict(body, conversation_id="cahead00001"))))
        sink.wait_for(lambda r: len(r) >= 1, timeout=10)

    def test_a_start_releases_only_claims_of_its_own_pid_namespace(self):
        # A starting node releases the claims of dead processes of its host, found
        # by kill(pid, 0). It took every host:pid claim for its own host's: with
        # host networking, containers share the host name but not the PID
        # namespace, where a live node's pid is not found, so it released that
        # node's claims and sent its deliveries again. Claims now carry the boot
        # and PID namespace (host:pid:scope) and only its own scope's are released.
        sink = self.sink(behaviour="hang")
        sections = dest_section("d", sink.url, allow_private=True, timeout="2s")
        a = self.node(0, sections)
        body = payload_json(TRANSCRIPTION_READY)
        for i in range(2):
            self.assertOk(a.post(dumps(dict(body, conversation_id="cscope%06d" % i))))
        sink.wait_for(lambda r: len(r) >= 2, timeout=30)
        claims = hrtest.pg_sql("SELECT locked_by FROM deliveries", self.url).split()
        self.assertEqual(len(set(claims)), 1, claims)
        host, scope = claims[0].split(":")[0], claims[0].split(":")[-1]
        a.proc.kill()
        a.proc.wait()
        # Two claims of dead pids of this host: one of another PID namespace, one
        # of this one; both leased for a minute more.
        hrtest.pg_sql(
            "UPDATE deliveries SET locked_until = locked_until + 60000000, locked_by ="
            " CASE WHEN id = (SELECT min(id) FROM deliveries) THEN '%s:99999991:%s'"
            " ELSE '%s:99999992:%s' END" % (host, scope + "0", host, scope), self.url)
        b = self.node(1, sections)
        wait_until(lambda: "released the delivery claims of %s:99999992:%s" % (host, scope)
                   in b.log(), 10, "its own scope's dead claim released")
        self.assertNotIn("99999991", b.log())
        rows = hrtest.pg_sql("SELECT locked_by FROM deliveries ORDER BY id", self.url).split()
        self.assertEqual(rows[0], "%s:99999991:%s0" % (host, scope), rows)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"), "needs root and unshare")
    def test_a_node_restarted_without_proc_sys_releases_its_dead_claims(self):
        # The shipped unit has ProcSubset=pid, which hides /proc/sys and with it the
        # boot id: each start took a random scope, so a node restarted after a crash
        # never found its own dead claims, and their deliveries waited out the lease.
        hidden = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                  'mount -t proc -o subset=pid proc /proc && exec "$@"', "sh"]
        sink = self.sink(behaviour="hang")
        sections = dest_section("d", sink.url, allow_private=True, timeout="2s")
        a = self.node(0, sections, wrapper=hidden)
        self.assertOk(a.post(dumps(dict(payload_json(TRANSCRIPTION_READY),
                                        conversation_id="cprocsub00001"))))
        sink.wait_for(lambda r: len(r) >= 1, timeout=30)
        [claim] = hrtest.pg_sql("SELECT locked_by FROM deliveries", self.url).split()
        self.assertFalse(claim.split(":")[-1].startswith("r"), claim)  # not a random scope
        a.proc.kill()
        a.proc.wait()
        b = self.node(1, sections, wrapper=hidden)
        wait_until(lambda: "released the delivery claims of " + claim in b.log(), 10,
                   "the crashed node's claim released by its successor")

    # 10 s of load for a lock order, which is SQL's, not memory's: the plain run has it
    # (the suite's time is the sanitizer run's).
    @unittest.skipIf(hrtest.SANITIZED, "a lock-order stress test: run in the plain build")
    def test_a_pruning_pass_and_the_other_nodes_ingest_do_not_deadlock(self):
        # A pruning pass rides in its node's batch and runs first: it locks the old
        # events it picks and their sessions, and then the batch's events take the
        # event order lock. The other node's batch takes the event order lock first
        # and then upserts the same session (a long-lived one: a Daily room, a
        # conversation): each waits for the other. PostgreSQL breaks the cycle after
        # deadlock_timeout by failing one of them; the whole cluster's ingest waits
        # meanwhile, and a batch retried write by write that meets the next pass's
        # locks fails its event: answered 503 and not stored (Tavus does not retry).
        sections = "retain = 1s\n"
        cfg = ("prune_interval = 100ms\n", sections)
        nodes = []
        for i in range(2):
            d = Daemon(CONFIG.format(sections="").replace("lease = 4s", "lease = 4s\n" + cfg[0])
                       .replace("provider = auto\n", "provider = auto\n" + cfg[1]),
                       workdir=self.dirs[i])
            self.daemons.append(d)
            nodes.append(d.start())
        base = payload_json(TRANSCRIPTION_READY)
        answers, lock = [], threading.Lock()

        def post(t):
            d = nodes[t % 2]
            conn = d.conn(timeout=30)
            deadline = time.monotonic() + 10
            i = 0
            while time.monotonic() < deadline:
                i += 1  # one conversation: its events outlive 2 x retain and are pruned
                doc = dict(base, conversation_id="cprunedsession01", hr_test_n="%d-%d" % (t, i))
                status, _, _ = d.post(dumps(doc), conn=conn)
                with lock:
                    answers.append(status)
                time.sleep(0.01)
            conn.close()
        posters = [threading.Thread(target=post, args=(t,)) for t in range(8)]
        for t in posters:
            t.start()
        for t in posters:
            t.join(60)
        deadlocks = [line for d in nodes for line in d.log().splitlines()
                     if "deadlock detected" in line]
        not_stored = [s for s in answers if s != 200]
        self.assertEqual((len(deadlocks), not_stored), (0, []),
                         "%d answers; deadlocks:\n%s" % (len(answers), "\n".join(deadlocks[:3])))

    def assertOk(self, resp):
        status, _, body = resp
        self.assertEqual(status, 200, body)
        return json.loads(body)


if __name__ == "__main__":
    unittest.main()
