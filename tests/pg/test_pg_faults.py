"""PostgreSQL faults (docs/scaling.md, "What breaks first"): the file has a cluster of
its own (tests/pg/pgcluster.py), so stopping it disturbs no other test, and each test
a database of its own.

- the database goes away: ingest answers 503 (never 200 for what is not committed),
  /readyz says why, and the node recovers by itself once the database is back;
- a COMMIT whose wait for a synchronous standby was cancelled (it succeeds with a
  WARNING) is answered 503, not 200;
- the writer's connection is lost in the middle of a transaction: that batch is
  answered 503, nothing of it is stored, and the next request is stored;
- a rejection trim that timed out on a row another session holds is undone alone (a
  savepoint): the batch commits and its rejection is answered 422 and kept;
- a rejection trim after another node committed newer rejections (seqs taken after
  the batch's own) leaves the batch's rejection: it was answered 422 and kept;
- connections the server closed while idle are replaced before a webhook or a read
  fails on them;
- an attempt recorded after another node took the delivery over leaves that node's
  claim and state alone;
- a host name of 48 characters or more (Kubernetes pods, cloud names) names the node
  (it became "node": every such node the same, each taking the others' claims for
  its own dead ones);
- a stop while the writer waits on the database (a lock held elsewhere): past the
  10-s drain the writes still queued are answered 503, the batch under way is waited
  for and answered once it commits, and the daemon exits 0 (it aborted: libmicrohttpd
  stopped with connections still suspended);
- a pruning pass and a replay of another node meet on one event (each played here
  by a psql session holding what the other holds): the replay waits for the pass and
  then delivers nothing, and the pass leaves the event the replay holds, so nobody is
  sent an empty body.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
sys.path.insert(0, os.path.dirname(__file__))

import hrpg  # noqa: E402
import hrtest  # noqa: E402
import pgcluster  # noqa: E402
from hrtest import Daemon, dumps, metric, payload_json, pg_config, sanitizer_reports  # noqa: E402
from pgrelay import TcpRelay  # noqa: E402
from sink import Sink  # noqa: E402

# Counting round trips behind the relay checks the protocol, which the sanitizers do
# not change; the batching code these tests drive runs under them in every other test
# here. Beside the plain run their time bounds were the ones that failed, and the
# sanitizer run spent ~25 s on them (review T43PG).
ROUND_TRIPS_PLAIN_ONLY = "counts round trips (the protocol): run in the plain build"
TRANSCRIPTION_READY = "tavus.conversation.application.transcription_ready.json"


def event(tag):
    return dumps(dict(payload_json(TRANSCRIPTION_READY), conversation_id="c" + tag + os.urandom(4).hex()))


def cluster_sql(cluster, sql, dbname="postgres"):
    """sql in a database of the cluster, as its superuser; psql's output (hrpg)."""
    return hrpg.query(pgcluster.url(cluster, dbname), sql)


def wait_until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


@unittest.skipIf(hrtest.BACKEND != "postgresql", "needs HR_TEST_BACKEND=postgresql")
class Faults(unittest.TestCase):

    # A cluster of its own (a test stops it), one for the file: each test has a
    # database of its own. A cluster's start and stop cost ~6 s, a minute of CI's
    # budget when every test had its own.
    @classmethod
    def setUpClass(cls):
        # Where the suite keeps its files (scripts/test: in memory), unless that
        # path would not leave room for the socket's name (107 bytes).
        tmp = tempfile.gettempdir()
        cls.cluster = tempfile.mkdtemp(prefix="hrpg-", dir=tmp if len(tmp) < 50 else "/tmp")
        pgcluster.start(cls.cluster)
        try:
            cls.make_template()
        except BaseException:
            pgcluster.stop(cls.cluster)  # tearDownClass does not run when setUpClass fails
            raise

    # Each test's database is a copy of one whose schema a daemon made once (CREATE
    # DATABASE ... TEMPLATE): a daemon's first start on an empty database makes it, ~50 ms
    # of the server's processor time (a test's database, daemon and stop: 0.21 -> 0.15 s
    # in the plain build, 0.23 -> 0.18 s in the sanitizer one, 2026-12-07), 41 times in
    # each build's run. The copy holds what a new database holds once its daemon
    # started: the schema and its version's row; the tables a daemon writes start empty,
    # their identities at 1. The schema's own making is every other PostgreSQL test's.
    TEMPLATE = "hrfault_template"

    @classmethod
    def make_template(cls):
        cluster_sql(cls.cluster, 'CREATE DATABASE "%s"' % cls.TEMPLATE)
        d = Daemon(pg_config(pgcluster.url(cls.cluster, cls.TEMPLATE))).start()
        rc = d.stop()
        log = d.log()
        d.cleanup()
        if rc != 0 or sanitizer_reports(log):
            raise AssertionError("the template's daemon did not exit cleanly (%r):\n%s" % (rc, log))
        # Copied only with no session on it: its daemon's backends end a moment after
        # their connections (CREATE DATABASE would wait for them, up to 5 s, then fail).
        wait_until(lambda: cluster_sql(cls.cluster, "SELECT count(*) FROM pg_stat_activity"
                                       " WHERE datname = '%s'" % cls.TEMPLATE).strip() == "0",
                   20, "the template's sessions to end")

    @classmethod
    def tearDownClass(cls):
        pgcluster.stop(cls.cluster)

    def setUp(self):
        if pgcluster._pid(self.cluster) is None:  # a failed test left it stopped
            pgcluster.start(self.cluster)
        self.dbname = "hrfault_" + os.urandom(6).hex()
        cluster_sql(self.cluster, 'CREATE DATABASE "%s" TEMPLATE "%s"' % (self.dbname, self.TEMPLATE))
        self.url = pgcluster.url(self.cluster, self.dbname)
        self.d = None

    def empty_database(self):
        """This test's database made again without the template's schema: for a
        daemon that makes it as another role (the template's tables are the superuser's)."""
        hrpg.forget(pgcluster.url(self.cluster, self.dbname))
        cluster_sql(self.cluster, 'DROP DATABASE "%s" WITH (FORCE)' % self.dbname)
        cluster_sql(self.cluster, 'CREATE DATABASE "%s"' % self.dbname)

    def psql(self, sql):
        """sql in this test's database (pg_class and the tables are per database)."""
        return cluster_sql(self.cluster, sql, self.dbname)

    def tearDown(self):
        if self.d is not None:
            rc = self.d.stop()
            log = self.d.log()
            self.d.cleanup()
            self.assertEqual(rc, 0, "hookrelay did not exit cleanly:\n" + log)
            self.assertEqual(sanitizer_reports(log), [], log)
        hrpg.forget(pgcluster.url(self.cluster, self.dbname))  # self.url may be a relay's
        if pgcluster._pid(self.cluster) is not None:
            cluster_sql(self.cluster, 'DROP DATABASE "%s" WITH (FORCE)' % self.dbname)

    def daemon(self, storage="", source="", extra="", url=None, server=""):
        """A daemon on this test's database (through `url` if given: another role, a
        relay). It names its backend and url: hrtest leaves such a [storage] alone."""
        config = pg_config(url or self.url).replace("[source default]\n",
                                                    storage + "[source default]\n")
        config = config.replace("[storage]\n", server + "[storage]\n", 1)
        self.d = Daemon(config + source + extra)
        return self.d.start()

    def relay_url(self, relay, extra=""):
        """This test's database through `relay` (TCP), as the superuser."""
        return "host=127.0.0.1 port=%d user=%s dbname=%s %s" % (
            relay.port, pgcluster.SUPERUSER, self.dbname, extra)

    def holder(self, sql):
        """A psql session that has run `sql` in an open transaction (its locks held
        when this returns), until its commit()."""
        h = hrtest.PgSession(self.url, sql)
        self.addCleanup(h.close)
        return h

    def delivered(self, sink, eid):
        return [r for r in sink.received() if r.headers.get("webhook-id") == eid]

    # The daemon's sessions of this test's database waiting on a lock.
    WAITING = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
               " AND application_name = 'hookrelay' AND wait_event_type = 'Lock'")

    def test_unreachable_then_back(self):
        d = self.daemon()
        self.assertEqual(d.post(event("up"))[0], 200)
        pgcluster.stop(self.cluster, remove=False)
        status, hdrs, body = d.post(event("down"))
        self.assertEqual(status, 503, body)
        self.assertTrue(hdrs["content-type"].startswith("application/problem+json"), hdrs)
        st, doc = d.get_json("/readyz")
        self.assertEqual(st, 503, doc)
        self.assertFalse(doc["checks"]["database"]["ok"], doc)
        self.assertEqual(doc["checks"]["database"]["state"], "unreachable", doc)
        self.assertIn("postgresql", doc["checks"]["database"]["detail"], doc)
        st, doc = d.get_json("/healthz")
        self.assertEqual(st, 503, doc)
        # /healthz answers anyone: libpq's message named the server's socket path (or
        # host and port, and a refused login's user) there (review RU40).
        self.assertEqual(doc["database_detail"],
                         "postgresql cannot be reached (the log and /readyz say why)")
        pgcluster.start(self.cluster)
        # Back by itself: no restart, no signal, and no webhook needed to show it (the
        # load balancer that took the node out sends none): while the last write
        # failed, the once-a-second ping carries a write (the schema row's).
        wait_until(lambda: d.get_json("/readyz")[0] == 200, 30, "/readyz to answer 200 again")
        self.assertEqual(d.post(event("back"))[0], 200)
        st, doc = d.get_json("/v1/events?limit=10")
        self.assertEqual(st, 200, doc)
        keys = sorted(e["session"]["key"][:4] for e in doc["events"])
        self.assertNotIn("cdow", keys)  # the 503 one was never stored
        self.assertIn("cup", [k[:3] for k in keys])
        # libpq's messages end with a newline (and may add DETAIL lines): one line
        # each in the log, not a '?' where a newline was scrubbed.
        said = [l for l in d.log().splitlines() if l.startswith("<4>store: postgresql")]
        self.assertTrue(said, d.log())
        self.assertEqual([l for l in said if "?" in l], [], said)

    def test_a_commit_whose_standby_wait_was_cancelled_is_not_acknowledged(self):
        # With a synchronous standby, COMMIT waits for it; cancelling that wait (a
        # DBA, a script ending long queries) answers COMMIT with only a WARNING that
        # the transaction "might not have been replicated". The batch was answered
        # 200, promising a copy on the standby that did not exist.
        d = self.daemon()
        self.assertEqual(d.post(event("before"))[0], 200)

        def standby(names):
            cluster_sql(self.cluster, "ALTER SYSTEM SET synchronous_standby_names = '%s'" % names)
            cluster_sql(self.cluster, "SELECT pg_reload_conf()")
        standby("nostandby")
        try:  # reset before tearDown, whose DROP DATABASE would wait for ever
            time.sleep(0.5)  # every backend has read it
            answer = {}
            t = threading.Thread(target=lambda: answer.update(r=d.post(event("cancelled"))),
                                 daemon=True)
            t.start()
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
            wait_until(lambda: self.psql(waiting).strip() not in ("", "0"), 20, "a COMMIT waiting")
            self.psql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                      " WHERE wait_event = 'SyncRep'")
            cancelled = time.monotonic()
            t.join(20)
            answered = time.monotonic() - cancelled
            self.assertFalse(t.is_alive(), "no answer")
        finally:
            standby("")
        status, _, body = answer["r"]
        self.assertEqual(status, 503, body)
        self.assertIn("not known durable", d.log())
        # The COMMIT answered, so the transaction ended: nothing of the batch may be
        # written again (it may be on disk). A review found it written again one write
        # at a time (the event's INSERT refused by its unique id, an attempt's record
        # stored twice) and the new COMMIT waiting out statement_timeout (10 s) for the
        # standby a second time before the 503.
        self.assertLess(answered, 3.0, d.log())
        self.assertNotIn("duplicate key", d.log())
        wait_until(lambda: d.post(event("after"))[0] == 200, 20, "ingest to answer 200 again")

    def test_tcp_connections_notice_a_vanished_server_in_seconds(self):
        # Over TCP only connect_timeout was set: a server gone without a reset (a
        # failover that moved the address, a host that lost power) blocked the writer
        # until the kernel gave up, ~15 minutes without an answer to any webhook. The
        # connections now probe after 10 s idle (and give up on unacknowledged data
        # after 30 s): every TCP connection of the daemon has a keepalive timer of
        # seconds, not the system's 2 hours.
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT))
        self.addCleanup(relay.close)
        self.daemon(url=self.relay_url(relay))
        self.assertEqual(self.d.post(event("tcp"))[0], 200)
        out = subprocess.run(["ss", "-tnoH", "state", "established", "( dport = :%d )" % relay.port],
                             capture_output=True, text=True, check=True, timeout=10).stdout
        timers = re.findall(r"timer:\(keepalive,([^,]+),", out)
        self.assertGreaterEqual(len(timers), 2, out)  # the writer's and a reader's at least
        for t in timers:
            self.assertTrue(t.endswith("sec") or t.endswith("ms"), "keepalive in %s: %s" % (t, out))

    def test_connection_lost_mid_transaction(self):
        d = self.daemon()
        self.assertEqual(d.post(event("first"))[0], 200)
        # Hold the events table: the writer's next batch waits inside its transaction.
        holder = self.lock_events()
        answer = {}
        t = threading.Thread(target=lambda: answer.update(r=d.post(event("lost"))), daemon=True)
        t.start()
        # The writer now waits for the lock in the middle of its transaction: cut it off.
        pid = self.writer_waiting()
        # Six more queue meanwhile: the next batch takes them on a new connection, waits
        # for the lock too, and is cut off as well, six events' statements sent at once.
        more = {}
        threads = [threading.Thread(target=lambda i=i: more.update({i: d.post(event("six"))}),
                                    daemon=True) for i in range(6)]
        for m in threads:
            m.start()
        time.sleep(0.3)
        self.psql("SELECT pg_terminate_backend(%d)" % int(pid))
        t.join(30)
        status, _, body = answer["r"]
        self.assertEqual(status, 503, body)
        pid = self.writer_waiting()
        logged = len(d.log().splitlines())
        self.psql("SELECT pg_terminate_backend(%d)" % int(pid))
        for m in threads:
            m.join(30)
        self.assertEqual([more[i][0] for i in range(6)], [503] * 6, (more, d.log()))
        # The loss is told once, not once for each statement the batch had sent.
        told = [line for line in d.log().splitlines()[logged:] if "store: postgresql:" in line]
        self.assertLessEqual(len(told), 1, d.log())
        holder.commit()
        self.assertEqual(d.post(event("after"))[0], 200)
        st, doc = d.get_json("/v1/events?limit=10")
        self.assertEqual(st, 200, doc)
        keys = [e["session"]["key"][:5] for e in doc["events"]]
        self.assertEqual(sorted(keys), ["cafte", "cfirs"], doc)

    def writer_waiting(self):
        """The pid of the writer's backend once it waits for a lock."""
        return wait_until(lambda: self.psql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'hookrelay'"
            " AND wait_event_type = 'Lock'").strip(), 20, "the writer to wait")

    def test_connections_the_server_closed_while_idle_are_replaced(self):
        # A restart, a failover or idle_session_timeout closes hookrelay's idle
        # connections, which libpq learns only at their next query: the next webhook
        # and the next read are not the ones to fail.
        d = self.daemon()
        self.assertEqual(d.post(event("before"))[0], 200)
        self.assertEqual(d.get_json("/v1/events")[0], 200)
        for n in range(3):
            pids = self.psql("SELECT pid FROM pg_stat_activity WHERE application_name ="
                             " 'hookrelay'").split()
            self.assertTrue(pids)
            self.psql("SELECT pg_terminate_backend(pid) FROM unnest('{%s}'::int[]) pid"
                      % ",".join(pids))
            # Closed: gone from pg_stat_activity, their goodbye on the sockets (a
            # backend asked to end does so a moment later, a loaded one later still).
            wait_until(lambda: not set(pids) & set(self.psql(
                "SELECT pid FROM pg_stat_activity").split()), 20, "the backends to end")
            st, doc = d.get_json("/v1/events?limit=10")
            self.assertEqual(st, 200, doc)
            self.assertEqual(len(doc["events"]), n + 1, doc)
            status, _, body = d.post(event("after%d" % n))
            self.assertEqual(status, 200, body)

    def test_a_goodbye_whose_end_comes_late_still_retires_the_connection(self):
        # A backend told to end sends its last words at once and closes the socket when
        # its process exits, a moment later on a busy server. The check before each use
        # read the words but not yet the end, found the connection alive, and the read
        # or batch sent on it failed (503; seen on a loaded CI machine). Here the
        # relay says the goodbye and closes 100 ms later.
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT))
        self.addCleanup(relay.close)
        d = self.daemon(url=self.relay_url(relay))
        self.assertEqual(d.post(event("before"))[0], 200)
        self.assertEqual(d.get_json("/v1/events")[0], 200)
        for n in range(2):
            relay.goodbye(0.1)  # the words are there when it returns, the end is not
            time.sleep(0.02)
            st, doc = d.get_json("/v1/events?limit=10")
            self.assertEqual(st, 200, (doc, d.log()))
            self.assertEqual(len(doc["events"]), n + 1, doc)
            status, _, body = d.post(event("after%d" % n))
            self.assertEqual(status, 200, body.decode() + d.log())

    def test_a_replay_waits_for_a_pass_that_holds_its_event(self):
        sink = Sink()
        self.addCleanup(sink.stop)
        d = self.daemon(extra="[destination sink]\nurl = %s/hook\nallow_private = true\n" % sink.url)
        status, _, body = d.post(event("replay"))
        self.assertEqual(status, 200, body)
        eid = json.loads(body)["id"]
        wait_until(lambda: self.delivered(sink, eid), 20, "the first delivery")
        # A pass of another node has pruned the payload and not yet committed.
        h = self.holder("UPDATE events SET body = ''::bytea, pruned_at = 1 WHERE id = '%s';" % eid)
        answer = {}
        t = threading.Thread(target=lambda: answer.update(
            r=d.request("POST", "/v1/events/%s/replay" % eid, b"",
                        headers={"Content-Type": "application/json"})), daemon=True)
        t.start()
        # Until its reader waits on the row the pass holds (or it answered: it did not
        # wait), not a fixed 1.5 s: the wait is seen, not presumed from the time.
        wait_until(lambda: not t.is_alive() or self.psql(self.WAITING).strip() == "1", 20,
                   "the replay to wait on the event's row")
        self.assertTrue(t.is_alive(), "the replay did not wait for the pass: %r" % (answer,))
        h.commit()
        t.join(20)
        status, _, body = answer["r"]
        self.assertEqual(status, 202, body)
        self.assertEqual(json.loads(body)["deliveries"], 0, "a pruned payload was replayed")
        time.sleep(0.5)
        self.assertEqual(len(self.delivered(sink, eid)), 1)

    def test_a_pass_leaves_an_event_that_a_replay_holds(self):
        sink = Sink()
        self.addCleanup(sink.stop)
        # retain 1 s: past it, and past twice it (the rows' rule), within 2 s of the
        # hold. The replayed delivery's first attempt fails; its retry 1.5 s later (no
        # jitter), not the default 5 s, comes after the second of passes below.
        d = self.daemon(storage="prune_interval = 100ms\n", source="retain = 1s\n",
                        extra="[destination sink]\nurl = %s/hook\nallow_private = true\n"
                        "retry_schedule = 1500ms, 500ms, 500ms\njitter = 0\n" % sink.url)
        full = event("held")
        status, _, body = d.post(full)
        self.assertEqual(status, 200, body)
        eid = json.loads(body)["id"]
        wait_until(lambda: self.delivered(sink, eid), 20, "the first delivery")
        # A replay of another node has made a pending delivery and not yet committed;
        # meanwhile the event passes its retain and several passes run.
        sink.set("fail")
        h = self.holder(
            "INSERT INTO deliveries (event_seq, destination, status, created_at, updated_at,"
            " next_attempt_at) SELECT seq, 'sink', 0, 0, 0, 0 FROM events"
            " WHERE id = '%s' AND pruned_at IS NULL FOR SHARE;" % eid)
        # Held before the event's retain ran out (else the hold holds nothing, and the
        # replayed delivery never comes: a late hold says so here).
        self.assertEqual(self.psql("SELECT pruned_at IS NULL FROM events WHERE id = '%s'"
                                   % eid).strip(), "t", "held after the payload was pruned")
        time.sleep(2.0)  # past retain for a second and more: ten passes and more
        h.commit()
        time.sleep(1.0)  # more passes, the replayed delivery pending (the sink fails)
        sink.set("ok")
        got = wait_until(lambda: [r for r in self.delivered(sink, eid)[1:] if r.answered == "ok"],
                         30, "the replayed delivery")
        self.assertEqual(got[0].body, full, "the replayed delivery's body was pruned under it")

    def test_a_trim_that_timed_out_leaves_the_batch_alone(self):
        # A failed statement aborts a PostgreSQL transaction, and COMMIT of an
        # aborted one answers success with the tag ROLLBACK. The trim once ran bare
        # in the batch's transaction: its timeout rolled the batch back (503, and
        # before the tag was checked, a 422 "kept" that was not). It has a savepoint
        # of its own now: undone alone, the batch commits.
        self.url += " options='-c statement_timeout=1000'"
        d = self.daemon(storage="rejections_max = 1\n")
        bad = dumps({"event": "session_complete", "room_name": 7})
        status, _, body = d.post(bad)
        self.assertEqual(status, 422, body)
        first = self.psql("SELECT id FROM rejections").strip()
        # The next rejection's trim must delete the first, which this session holds.
        h = self.holder("SELECT id FROM rejections WHERE id = '%s' FOR UPDATE;" % first)
        status, _, body = d.post(bad)
        kept = self.psql("SELECT count(*) FROM rejections").strip()
        h.commit()
        self.assertEqual(status, 422, "answered %d, %s rows kept: %r" % (status, kept, body))
        self.assertEqual(kept, "2")  # the trim was undone, not the rejection
        self.assertNotIn("aborted by an earlier error", d.log())
        status, _, body = d.post(bad)  # and the next trim goes through
        self.assertEqual(status, 422, body)
        self.assertEqual(self.psql("SELECT count(*) FROM rejections").strip(), "1")

    def test_a_trim_leaves_its_own_rejection_behind_another_nodes_newer_ones(self):
        # A rejection's seq is taken at its INSERT, not at its commit: another node's
        # batch begun later and committed before this batch's trim holds higher seqs,
        # and the trim keeping the newest rejections_max by seq deleted the body this
        # batch had just stored, then answered 422 "kept" (a review). A trigger holds
        # the batch just after its row is inserted while the other node's rows commit.
        d = self.daemon(storage="rejections_max = 2\n")
        bad = dumps({"event": "session_complete", "room_name": 7})
        self.psql("CREATE FUNCTION pause() RETURNS trigger LANGUAGE plpgsql AS"
                  " $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$;"
                  " CREATE TRIGGER pause AFTER INSERT ON rejections FOR EACH ROW"
                  " WHEN (NEW.id NOT LIKE 'rej_other%') EXECUTE FUNCTION pause();")
        h = self.holder("SELECT pg_advisory_xact_lock(4242);")
        answer = {}
        t = threading.Thread(target=lambda: answer.update(r=d.post(bad)), daemon=True)
        t.start()
        self.writer_waiting()
        self.psql("INSERT INTO rejections (id, received_at, source, http_status, problem,"
                  " headers, body) SELECT 'rej_other' || i, 1, 'default', 422, '{}', '{}',"
                  " ''::bytea FROM generate_series(1, 3) i")
        h.commit()
        t.join(30)
        status, _, body = answer["r"]
        self.assertEqual(status, 422, body)
        mine = self.psql("SELECT count(*) FROM rejections WHERE id NOT LIKE 'rej_other%'")
        self.assertEqual(mine.strip(), "1", d.log())
        # The next trim, of a batch behind none, goes back to rejections_max.
        self.psql("DROP TRIGGER pause ON rejections")
        self.assertEqual(d.post(bad)[0], 422)
        self.assertEqual(self.psql("SELECT count(*) FROM rejections").strip(), "2")

    def test_a_connection_closed_just_before_a_batch_is_replaced(self):
        # The writer looks at its connection before each batch, but the server may close
        # it just after (idle_session_timeout, a restart): the batch's BEGIN then finds
        # no connection and nothing of the batch ran, so a new connection takes it. BEGIN
        # goes with the batch's first statements, which are sent again. Both for events
        # and for an attempt's record.
        sink = Sink("gated")
        sink.gate.clear()
        self.addCleanup(sink.stop)
        self.addCleanup(sink.gate.set)
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT))
        self.addCleanup(relay.close)
        d = self.daemon(url=self.relay_url(relay), extra=(
            "[destination sink]\nurl = %s/hook\nallow_private = true\n" % sink.url))
        self.assertEqual(d.post(event("first"))[0], 200)
        relay.close_on(b"BEGIN")
        status, _, body = d.post(event("second"))
        self.assertEqual(status, 200, body.decode() + d.log())
        self.assertEqual(relay.closed_on, 1, d.log())
        wait_until(lambda: len(sink.received()) >= 2, 20, "both deliveries on the wire")
        relay.close_on(b"BEGIN")
        sink.gate.set()  # their records' batch finds its connection closed
        wait_until(lambda: self.psql("SELECT count(*) FROM deliveries WHERE status = 1"
                                     ).strip() == "2", 20, "both attempts' records")
        self.assertEqual(relay.closed_on, 2, d.log())
        self.assertEqual(self.psql("SELECT count(*) FROM events").strip(), "2")
        self.assertEqual(self.psql("SELECT count(*) FROM attempts").strip(), "2")

    def test_a_claim_whose_answer_was_lost_gives_its_rows_back(self):
        # A claim is one statement, committed at once: its answer lost (the connection
        # gone after the COMMIT), its rows stayed leased to this node, nothing in
        # flight, for the whole lease (10 minutes here; an ordered destination's
        # sessions behind them). They go back at once, or at the next poll (a review).
        sink = Sink()
        self.addCleanup(sink.stop)
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT))
        self.addCleanup(relay.close)
        d = self.daemon(url=self.relay_url(relay), extra=(
            "[destination sink]\nurl = %s/hook\nallow_private = true\n" % sink.url))
        # The claim that leases the event's row (its answer holds its body), not an
        # idle poll's.
        relay.lose_answer_to(b"u AS (UPDATE deliveries SET locked_until", b"clost")
        status, _, body = d.post(event("lost"))
        self.assertEqual(status, 200, body)
        wait_until(lambda: relay.answers_lost, 20, "a claim's answer lost")
        wait_until(lambda: self.psql("SELECT count(*) FROM deliveries WHERE status = 1"
                                     ).strip() == "1", 20, "the delivery sent after all")
        self.assertEqual(len(sink.received()), 1)
        self.assertRegex(d.log(), r"1 deliveries of a claim whose answer was lost")

    def test_rows_read_again_after_a_lost_claim_are_sent_under_a_lease_that_outlives_the_attempt(self):
        # cfg_reader.c: "[storage] lease must be at least twice [destination] timeout: a
        # claim must outlive its attempt". A claim whose answer was lost has its rows
        # read again (pg_due.c claimed_again) under the lease the lost claim set, not
        # a new one: when reading them again waits on the database (here a reconnect
        # that takes 3 s of a 4-s lease), the attempt starts with 1 s of lease left
        # and a 2-s timeout, and past the lease any node claims the row and sends it a
        # second time while this one is still on the wire (scaling.md: the lease is
        # what keeps two nodes from sending one delivery at once).
        sink = Sink("gated")
        sink.gate.clear()
        self.addCleanup(sink.stop)
        self.addCleanup(sink.gate.set)
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT))
        self.addCleanup(relay.close)
        d = self.daemon(url=self.relay_url(relay), storage="lease = 4s\n", extra=(
            "[destination sink]\nurl = %s/hook\nallow_private = true\ntimeout = 2s\n"
            % sink.url))
        relay.lose_answer_to(b"u AS (UPDATE deliveries SET locked_until", b"cslow")
        relay.delay_new(3)  # the claim's connection is lost: its replacement takes 3 s
        status, _, body = d.post(event("slow"))
        self.assertEqual(status, 200, body)
        eid = json.loads(body)["id"]
        wait_until(lambda: relay.answers_lost, 20, "a claim's answer lost")
        wait_until(lambda: self.delivered(sink, eid), 20, "the attempt to be on the wire")
        self.assertRegex(d.log(), r"1 deliveries of a claim whose answer was lost")
        left_ms = float(self.psql(
            "SELECT (locked_until - extract(epoch FROM clock_timestamp()) * 1e6) / 1000"
            " FROM deliveries").strip())
        self.assertGreaterEqual(left_ms, 1500,
                                "the attempt (timeout 2 s) went with %d ms of its row's lease "
                                "left: another node may claim and send it meanwhile\n%s"
                                % (left_ms, d.log()[-1500:]))

    def test_a_late_attempt_record_leaves_another_nodes_claim_alone(self):
        sink = Sink("gated")
        sink.gate.clear()
        self.addCleanup(sink.stop)
        self.addCleanup(sink.gate.set)
        d = self.daemon(extra="[destination sink]\nurl = %s/hook\nallow_private = true\n" % sink.url)
        status, _, body = d.post(event("late"))
        self.assertEqual(status, 200, body)
        eid = json.loads(body)["id"]
        wait_until(lambda: self.delivered(sink, eid), 20, "the attempt to be on the wire")
        # Meanwhile this node's lease ran out and another node claimed the row.
        self.psql("UPDATE deliveries SET locked_by = 'other:1',"
                       " locked_until = 9000000000000000")
        sink.gate.set()  # this node's answer arrives, and its record with it
        wait_until(lambda: self.psql("SELECT count(*) FROM attempts").strip()
                   == "1", 20, "the attempt's record")
        row = self.psql("SELECT status, locked_by FROM deliveries").strip()
        self.assertEqual(row, "0|other:1", "the late record took over the row")

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"), "needs root and unshare(1)")
    def test_a_record_late_past_the_lease_keeps_its_claim_on_a_node_alone(self):
        # The record of an attempt that got 200 could not commit (attempts locked) for
        # longer than the lease: the node's own next claim found the row, gave it back
        # (its attempt was still its own), the record's claim guard then dropped the
        # record, and the webhook went a second time, with one node alone (a review).
        sink = Sink("ok")
        self.addCleanup(sink.stop)
        d = self.daemon(storage="lease = 2s\nstatement_timeout = 1s\n", extra=(
            "[destination sink]\nurl = %s/hook\nallow_private = true\ntimeout = 1s\n"
            % sink.url))
        held = self.holder("LOCK TABLE attempts IN ACCESS EXCLUSIVE MODE;")
        status, _, body = d.post(event("late"))
        self.assertEqual(status, 200, body)
        eid = json.loads(body)["id"]
        wait_until(lambda: self.delivered(sink, eid), 10, "the first send")
        # Past the lease, until the node's poll claims the row again (a poll a second),
        # not a fixed 5 s: the claim moves the row's lease, renewed (the fix) or given
        # back (NULL, the fault); nothing else writes it while the attempt is under way.
        lease = self.psql("SELECT locked_until FROM deliveries").strip()
        self.assertNotEqual(lease, "")
        wait_until(lambda: self.psql("SELECT locked_until FROM deliveries").strip() != lease,
                   20, "the node's poll to claim the row again past the lease")
        held.rollback()
        wait_until(lambda: self.psql("SELECT status FROM deliveries").strip() == "1", 20,
                   "the record")
        # A negative: nothing may send it again. A row given back goes again at the
        # next poll, before the record above; 1.5 s is a poll more.
        time.sleep(1.5)
        self.assertEqual(len(self.delivered(sink, eid)), 1, d.log())
        self.assertEqual(self.psql("SELECT count(*) FROM attempts").strip(), "1")

    def test_a_long_host_name_names_the_node(self):
        host = "hookrelay-" + "x" * 50  # 60 characters: a Kubernetes pod's may be 63
        wrapper = os.path.join(self.cluster, "hostnamed.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec unshare -u /bin/sh -c 'hostname %s && exec \"$0\" \"$@\"' %s \"$@\"\n"
                    % (host, os.path.abspath(hrtest.BIN)))
        os.chmod(wrapper, 0o755)
        sink = Sink("gated")
        sink.gate.clear()
        self.addCleanup(sink.stop)
        self.addCleanup(sink.gate.set)
        real, hrtest.BIN = hrtest.BIN, wrapper
        try:
            d = self.daemon(extra="[destination sink]\nurl = %s/hook\nallow_private = true\n" % sink.url)
        finally:
            hrtest.BIN = real
        status, _, body = d.post(event("host"))
        self.assertEqual(status, 200, body)
        wait_until(lambda: sink.received(), 20, "the claim")
        locked_by = self.psql("SELECT locked_by FROM deliveries").strip()
        # host:pid:scope, the scope the boot and the PID namespace (test_two_nodes).
        self.assertRegex(locked_by, r"^%s:%d:[0-9a-f]{8}-[0-9a-f]+$" % (host, d.proc.pid))
        sink.gate.set()
        wait_until(lambda: self.psql("SELECT count(*) FROM attempts").strip()
                   == "1", 20, "the attempt's record")

    def test_a_stop_waits_for_the_batch_under_way_and_fails_the_queue(self):
        # The batch waits out the stop's wait (2 s, not the default 10 s).
        d = self.daemon(storage="statement_timeout = 0\n", server="stop_timeout = 2s\n")
        h = self.holder("LOCK TABLE events IN ACCESS EXCLUSIVE MODE;")
        wait_until(lambda: self.psql(
                   "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                   " WHERE c.relname = 'events' AND l.mode = 'AccessExclusiveLock' AND l.granted"
                   ).strip() == "1", 20, "the lock on events")
        answers = {}

        def post(tag):
            answers[tag] = d.post(event(tag))

        first = threading.Thread(target=post, args=("first",), daemon=True)
        first.start()
        wait_until(lambda: self.psql(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hookrelay'"
                   " AND wait_event_type = 'Lock'").strip() == "1", 20, "the writer to wait")
        second = threading.Thread(target=post, args=("queued",), daemon=True)
        second.start()
        time.sleep(0.5)  # queued behind the batch under way
        stopped = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        second.join(30)
        self.assertFalse(second.is_alive())
        status, _, body = answers["queued"]
        self.assertEqual(status, 503, body)
        self.assertGreater(time.monotonic() - stopped, 1.9)  # after the wait, not before
        self.assertIsNone(d.proc.poll(), "it did not wait for the batch under way")
        h.commit()
        first.join(30)
        status, _, body = answers["first"]
        self.assertEqual(status, 200, body)
        self.assertEqual(d.proc.wait(30), 0, d.log())
        self.assertIn("queued writes failed", d.log())
        # The stop failed it, not the database (its reason, and its line, said so).
        self.assertRegex(d.log(), r"a webhook from default \(127\.0\.0\.1:\d+\) was answered 503"
                                  r" and not stored: hookrelay is stopping")

    def lock_events(self):
        return self.holder("LOCK TABLE events IN ACCESS EXCLUSIVE MODE;")

    def test_a_scrape_stops_reading_at_the_first_read_that_ran_out_of_time(self):
        # Each destination's row was read, one after another, each waiting up to
        # statement_timeout (and the cancel's grace): with the database not
        # answering, minutes for a scrape, which Prometheus gave up on, losing the
        # in-memory counters with the rest of the page (a metrics review).
        dests = "".join("[destination d%d]\nurl = http://127.0.0.1:9/d%d\nallow_private = true\n"
                        % (i, i) for i in range(6))
        d = self.daemon(storage="statement_timeout = 1s\n", extra=dests)
        self.assertEqual(d.request("GET", "/metrics")[0], 200)
        h = self.holder("LOCK TABLE deliveries IN ACCESS EXCLUSIVE MODE;")
        (status, _, body), took = self.timed(lambda: d.request("GET", "/metrics"))
        h.commit()
        self.assertEqual(status, 200, body[:300])
        self.assertIn(b"hookrelay_ingest_not_stored_total{", body)  # the counters are there
        self.assertNotIn(b"hookrelay_deliveries_pending{", body)  # not read: left out
        self.assertLess(took, 4.5, "%.1f s: a read a destination" % took)  # 6 x 1 s and more

    def timed(self, fn):
        """fn() in a thread: (its result, seconds), or a failure after 20 s."""
        out = {}

        def go():
            t0 = time.monotonic()
            out["r"] = fn()
            out["s"] = time.monotonic() - t0
        t = threading.Thread(target=go, daemon=True)
        t.start()
        t.join(20)
        self.assertFalse(t.is_alive(), "no answer in 20 s")
        return out["r"], out["s"]

    def test_a_statement_waiting_on_a_lock_is_cancelled_at_statement_timeout(self):
        # A statement waited as long as the server ran it: a lock held elsewhere kept
        # every webhook unanswered (and the writer stuck) until it was released.
        d = self.daemon(storage="statement_timeout = 1s\n")
        self.assertEqual(d.post(event("before"))[0], 200)
        h = self.lock_events()
        (status, hdrs, body), took = self.timed(lambda: d.post(event("locked")))
        self.assertEqual(status, 503, body)
        self.assertTrue(hdrs["content-type"].startswith("application/problem+json"), hdrs)
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 6)
        (st, doc), took = self.timed(lambda: d.get_json("/v1/events?limit=10"))
        self.assertEqual(st, 503, doc)  # a read waits no longer than a write
        self.assertLess(took, 6)
        self.assertIn("statement_timeout", d.log())
        self.assertIn("cancelling it", d.log())
        h.commit()
        # Cancelled, not lost: the same connections serve the next requests.
        self.assertEqual(d.post(event("after"))[0], 200)
        st, doc = d.get_json("/v1/events?limit=10")
        self.assertEqual(st, 200, doc)
        keys = sorted(e["session"]["key"][:5] for e in doc["events"])
        self.assertEqual(keys, ["cafte", "cbefo"], doc)
        self.assertNotIn("closing the connection", d.log())

    def six_behind_a_lock(self, d, first_event=True):
        """Six posts to `d` while events is locked, 50 ms apart (the first alone in a
        batch, the others queued behind it): each must be answered 503. Returns
        (status, seconds from the first post) for each. Without `first_event`, the
        daemon has stored no event before: its writer prepares its statements then."""
        if first_event:
            self.assertEqual(d.post(event("before"))[0], 200)
        return self.posted_behind(d, self.lock_events(),
                                  [event("locked%d" % i) for i in range(6)])

    def posted_behind(self, d, h, bodies, gap=0.05):
        """`bodies` posted to `d` `gap` seconds apart while holder `h` holds a lock
        (committed after): each must be answered 503. Returns (status, seconds from the
        first post) for each, in their order."""
        answers, started = [None] * len(bodies), time.monotonic()

        def post(i):
            r = d.post(bodies[i])
            answers[i] = (r[0], time.monotonic() - started)
        threads = [threading.Thread(target=post, args=(i,), daemon=True)
                   for i in range(len(bodies))]
        for t in threads:
            t.start()
            time.sleep(gap)
        for t in threads:
            t.join(30)
        h.commit()
        self.assertEqual([a and a[0] for a in answers], [503] * len(bodies), (answers, d.log()))
        return answers

    def wait_for_listen(self):
        """Until the daemon's LISTEN connection is there: its own thread makes it,
        after the daemon answers its first requests (a CI run under ASan counted the
        backends before it came)."""
        listening = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                     " AND query LIKE 'LISTEN %'")
        wait_until(lambda: self.psql(listening).strip() == "1", 20, "the LISTEN connection")

    def test_the_read_pool_grows_to_its_size_when_reads_wait(self):
        # A node opened its `pool` read connections at start, used or not: each a
        # backend on the server, a slot of its max_connections and, on this machine,
        # ~28 ms of the server's processor time to start (a quarter of the suite's
        # PostgreSQL time went to starting backends). It now opens one, and another
        # only when every one is in use, up to `pool`.
        d = self.daemon(storage="pool = 3\n", extra="[server]\nthreads = 4\n")

        def backends():
            return int(self.psql("SELECT count(*) FROM pg_stat_activity WHERE"
                                 " datname = current_database() AND application_name = 'hookrelay'"))
        self.assertEqual(d.post(event("before"))[0], 200)
        self.assertEqual(d.get_json("/v1/events?limit=10")[0], 200)
        self.wait_for_listen()
        self.assertEqual(backends(), 3, "the writer, one reader and LISTEN")
        h = self.lock_events()
        answers = []
        threads = [threading.Thread(target=lambda: answers.append(d.get_json("/v1/events")[0]),
                                    daemon=True) for _ in range(5)]
        for t in threads:
            t.start()
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND application_name = 'hookrelay' AND wait_event_type = 'Lock'")
        wait_until(lambda: self.psql(waiting).strip() == "3", 20, "three reads behind the lock")
        time.sleep(0.3)  # a request past the pool's size would be connecting by now
        self.assertEqual(backends(), 5, "the pool's 3, the writer and LISTEN")
        h.commit()
        for t in threads:
            t.join(20)
        self.assertEqual(answers, [200] * 5)
        self.assertEqual(backends(), 5)

    def test_a_read_connection_refused_fails_its_read_and_is_tried_again(self):
        # The server refuses a connection the pool makes when first needed (here a
        # role's connection limit; in production max_connections): that read fails
        # (503, the reason in the log) and the next read that needs it connects.
        role = "hrpool_" + os.urandom(4).hex()
        cluster_sql(self.cluster, 'CREATE ROLE "%s" LOGIN CONNECTION LIMIT 3' % role)
        self.addCleanup(lambda: cluster_sql(self.cluster, 'DROP ROLE IF EXISTS "%s"' % role))
        self.empty_database()  # the daemon makes the schema as the role
        cluster_sql(self.cluster, 'ALTER DATABASE "%s" OWNER TO "%s"' % (self.dbname, role))
        # The daemon connects as the role; the test's own sessions (the lock) as the
        # superuser, whom no limit counts.
        d = self.daemon(storage="pool = 2\n", extra="[server]\nthreads = 4\n",
                        url=self.url.replace("user=%s" % pgcluster.SUPERUSER, "user=" + role))
        self.assertEqual(d.post(event("before"))[0], 200)
        self.wait_for_listen()  # its connection counts against the role's limit

        def two_reads():
            h = self.lock_events()
            answers = []
            threads = [threading.Thread(target=lambda: answers.append(d.get_json("/v1/events")),
                                        daemon=True) for _ in range(2)]
            for t in threads:
                t.start()
            waiting = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock' AND usename = '%s'" % role)
            wait_until(lambda: self.psql(waiting).strip() == "1" and len(answers) == 1
                       or self.psql(waiting).strip() == "2", 20, "reads behind the lock")
            h.commit()
            for t in threads:
                t.join(20)
            return sorted(a[0] for a in answers)
        self.assertEqual(two_reads(), [200, 503])  # the writer, a reader, LISTEN: 3
        self.assertIn("a read connection to postgresql", d.log())
        self.assertEqual(d.get_json("/v1/events")[0], 200)  # the first reader
        # The refused one, tried again and refused again, says so too (only a new
        # connection's refusal was logged; a review counted 2 lines for 54 failures).
        said = d.log().count("a read connection to postgresql")
        self.assertEqual(two_reads(), [200, 503])
        self.assertGreater(d.log().count("a read connection to postgresql"), said, d.log())
        cluster_sql(self.cluster, 'ALTER ROLE "%s" CONNECTION LIMIT 4' % role)
        self.assertEqual(two_reads(), [200, 200])

    def test_a_read_takes_a_working_connection_before_one_that_failed(self):
        # The free read connections are taken from the top of a stack. One that
        # failed to connect, returned after a working one, was the next read's: it
        # reconnected (here for connect_timeout, 2 s) and failed again while the
        # working one sat free. One that is down now goes under those that are up.
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT))
        self.addCleanup(relay.close)
        d = self.daemon(storage="pool = 2\n", extra="[server]\nthreads = 4\n",
                        url=self.relay_url(relay, "connect_timeout=2"))
        self.assertEqual(d.post(event("before"))[0], 200)
        self.assertEqual(d.get_json("/v1/events")[0], 200)  # the reader made at start
        relay.hang_new()
        h = self.lock_events()
        answers = {}
        first = threading.Thread(target=lambda: answers.update(first=d.get_json("/v1/events")),
                                 daemon=True)
        first.start()  # the working reader, behind the lock
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND application_name = 'hookrelay' AND wait_event_type = 'Lock'")
        wait_until(lambda: self.psql(waiting).strip() == "1", 20, "a read behind the lock")
        second = threading.Thread(target=lambda: answers.update(second=d.get_json("/v1/events")),
                                  daemon=True)
        second.start()  # a second reader, whose connection hangs
        wait_until(lambda: relay.hung == 1, 20, "the second reader connecting")
        h.commit()
        first.join(20)
        second.join(20)  # its connection failed after the first read was done
        self.assertEqual(answers["first"][0], 200, answers)
        self.assertEqual(answers["second"][0], 503, answers)
        (status, _), took = self.timed(lambda: d.get_json("/v1/events"))
        self.assertEqual(status, 200)
        self.assertLess(took, 1.5)

    def test_a_batch_that_ran_out_of_time_is_not_retried_write_by_write(self):
        # A batch whose first transaction failed is retried one write at a time, so
        # that one bad write fails alone. After a statement ran out of time that
        # meant waiting the deadline again for every write: behind a lock, the last
        # of 6 requests was answered after about 2 + 5 deadlines instead of 2.
        d = self.daemon(storage="statement_timeout = 1s\n")
        answers = self.six_behind_a_lock(d)
        # With the log: once (2026-12-05, the plain run beside the sanitizer run) the
        # five queued behind the first were answered 5.1 s after it, not 1 s.
        self.assertLess(max(a[1] for a in answers), 4.5, (answers, d.log()))
        self.assertEqual(d.post(event("after"))[0], 200)

    def test_a_statement_prepared_behind_a_lock_still_counts_as_out_of_time(self):
        # The writer prepares a statement the first time it runs it on a connection
        # (a new node, a reconnect). Preparing an INSERT INTO events waits for a lock
        # on events as running it does. When that PREPARE ran out of time, the
        # statement was run unprepared to say why, which failed at once in the aborted
        # transaction and cleared "ran out of time": the batch was retried write by
        # write, each PREPARE waiting the deadline again.
        d = self.daemon(storage="statement_timeout = 1s\n")
        answers = self.six_behind_a_lock(d, first_event=False)
        self.assertLess(max(a[1] for a in answers), 4.5, (answers, d.log()))
        self.assertEqual(d.post(event("after"))[0], 200)

    def test_a_retry_write_by_write_stops_at_its_first_deadline(self):
        # A batch whose first pass failed on a bad write is retried write by write.
        # When a write of that retry ran out of time (a lock), each write after it
        # waited the deadline again: four writes behind a bad one were answered four
        # deadlines late. A write after one that ran out of time now fails at once:
        # what it would wait for is still held.
        d = self.daemon(storage="statement_timeout = 1s\n")
        self.psql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                  " IF NEW.key LIKE 'cbad%' THEN RAISE EXCEPTION 'a bad write'; END IF;"
                  " RETURN NEW; END $$;"
                  " CREATE TRIGGER refuse BEFORE INSERT ON sessions FOR EACH ROW"
                  " EXECUTE FUNCTION refuse();")

        def shared(n):  # events of one session: each updates its row
            return dumps(dict(payload_json(TRANSCRIPTION_READY), conversation_id="cshared",
                              n=n))
        self.assertEqual(d.post(shared(0))[0], 200)
        h = self.holder("SELECT 1 FROM sessions WHERE key = 'cshared' FOR UPDATE;")
        # The first waits alone for the session's row; the bad one (a new session the
        # trigger refuses at once) and four more of the locked session queue behind it
        # and make the next batch, the bad one first.
        answers = self.posted_behind(d, h, [shared(1), event("bad")] +
                                     [shared(i) for i in range(2, 6)])
        self.assertIn("a bad write", d.log())  # the first pass failed on it, not at the lock
        self.assertLess(max(a[1] for a in answers), 3.5, (answers, d.log()))
        self.assertEqual(d.post(shared(9))[0], 200)

    def test_a_pruning_pass_that_ran_out_of_time_fails_alone(self):
        # A pruning pass rides in a batch's transaction, first. When one of its
        # statements ran out of time, PostgreSQL aborted the whole transaction and
        # the batch went write by write, each write waiting the deadline again:
        # behind a lock, with a pass in every batch, 6 requests took 7 s and more
        # (CI saw the test above fail so once). A pass now has a savepoint of its
        # own: it fails alone, and the batch fails whole on its own first deadline.
        d = self.daemon(storage="statement_timeout = 1s\nprune_interval = 100ms\n",
                        source="retain = 1h\n")
        # Posts for 1.4 s, each batch failing after its deadline (1 s; 2 s with a
        # pass): a pass queued while a batch waits goes into the next batch with the
        # posts queued beside it, whichever batch the first pass fell into.
        self.assertEqual(d.post(event("before"))[0], 200)
        answers = self.posted_behind(d, self.lock_events(),
                                     [event("locked%d" % i) for i in range(8)], gap=0.2)
        # A batch that holds a pass: the pass runs out of time once, then the first
        # write does, and the batch fails whole. Before, the pass ran out of time twice
        # (the transaction, then the retry's) before any write did: 3 deadlines.
        # Which batch holds a pass depends on timing (seen: the first or the second),
        # and a batch may hold the pass alone: its pass fails, the batch commits, and
        # only the pass's own line ("a pruning pass failed", logged once its batch
        # ended) closes it in the log. Split on the batch's line only, such a batch's
        # timeout counted with the next batch's (a CI-like run, 2026-12-05: SELECT,
        # SELECT, INSERT), and with six posts 50 ms apart three runs of four here had
        # no batch holding the pass with writes at all (they passed on that mix-up).
        # Now each batch is told apart: in none may the pass run out of time twice,
        # and one that holds writes too (the posts go on long enough for one) must be
        # the pass's SELECT then one write's statement (the session's INSERT; since
        # the claims and rows go in one pipe, the claim: WITH, as it reads the events
        # the holder of a key names).
        log = d.log()
        batches = [re.findall(r"no answer within \[storage\] statement_timeout to (\w+)", b)
                   for b in re.split(r"a batch of writes failed to commit|a pruning pass failed",
                                     log)]
        with_writes = [b for b in batches if "SELECT" in b and len(b) > b.count("SELECT")]
        self.assertTrue(with_writes, log)
        for b in batches:
            self.assertLessEqual(b.count("SELECT"), 1, log)
        for b in with_writes:
            self.assertEqual(len(b), 2, log)
            self.assertEqual(b[0], "SELECT", log)
            self.assertIn(b[1], ("INSERT", "WITH"), log)
        # The last post (1.4 s) waits for the batch in progress, then fails in its own:
        # 1 or 2 s each, about 5 s at most (3.9-4.1 s here, ASan beside two busy shells too).
        # Before, a batch with a pass took 3 deadlines; the count above catches that.
        self.assertLess(max(a[1] for a in answers), 6.5, (answers, log))
        status, _, body = d.post(event("after"))
        self.assertEqual(status, 200, (body, d.log()))

    def test_a_commit_waiting_for_a_standby_is_cut_at_statement_timeout(self):
        # statement_timeout on the server does not reach this wait (PostgreSQL
        # disarms it before the commit record is flushed and waited for): only a
        # deadline of the daemon's own ends it.
        d = self.daemon(storage="statement_timeout = 1s\n")
        self.assertEqual(d.post(event("before"))[0], 200)

        def standby(names):
            cluster_sql(self.cluster, "ALTER SYSTEM SET synchronous_standby_names = '%s'" % names)
            cluster_sql(self.cluster, "SELECT pg_reload_conf()")
        standby("nostandby")
        try:
            time.sleep(0.5)  # every backend has read it
            (status, _, body), took = self.timed(lambda: d.post(event("waits")))
        finally:
            standby("")
        self.assertEqual(status, 503, body)
        self.assertLess(took, 6)
        self.assertIn("not known durable", d.log())
        wait_until(lambda: d.post(event("after"))[0] == 200, 20, "ingest to answer 200 again")

    def test_a_server_that_answers_nothing_loses_the_connection(self):
        # A backend that answers neither a statement nor its cancel (stopped here
        # with SIGSTOP): after the deadline and the cancel's grace (as long again,
        # 1 s to 5 s: 1 s here) the connection is shut down. Stopped before the batch's BEGIN, a new
        # connection takes the batch (BEGIN is all the old one was sent); stopped
        # in the middle of the transaction, the batch is answered 503.
        d = self.daemon(storage="statement_timeout = 1s\n")
        self.assertEqual(d.post(event("before"))[0], 200)
        stopped = []
        self.addCleanup(lambda: [self.cont(pid) for pid in stopped])

        def writers(which):
            return [int(p) for p in self.psql("SELECT pid FROM pg_stat_activity WHERE"
                    " application_name = 'hookrelay' AND " + which).split()]

        def stop_writer(which, pids=None):
            pids = pids or writers(which)
            self.assertEqual(len(pids), 1, pids)
            os.kill(pids[0], signal.SIGSTOP)
            stopped.append(pids[0])

        stop_writer("query = 'COMMIT'")  # idle after the batch it committed
        (status, _, body), took = self.timed(lambda: d.post(event("idle")))
        self.cont(stopped[-1])
        self.assertEqual(status, 200, body)
        self.assertGreaterEqual(took, 1.9)
        self.assertLess(took, 5)  # a fixed grace of 5 s took 6 s and more
        self.assertEqual(d.log().count("no answer to a cancel"), 1, d.log())

        h = self.lock_events()
        answer = {}
        t = threading.Thread(target=lambda: answer.update(r=d.post(event("mid"))), daemon=True)
        t.start()
        # Stopped as soon as it is seen waiting: its statement has 1 s before its
        # deadline, which a second look (another psql) once used up on a loaded machine.
        stop_writer(None, wait_until(lambda: writers("wait_event_type = 'Lock'"), 20,
                                     "the writer to wait"))
        t.join(20)
        self.assertFalse(t.is_alive(), "no answer in 20 s")
        self.cont(stopped[-1])
        h.commit()
        status, _, body = answer["r"]
        self.assertEqual(status, 503, body)
        self.assertEqual(d.log().count("no answer to a cancel"), 2, d.log())
        wait_until(lambda: d.post(event("after"))[0] == 200, 20, "ingest to answer 200 again")
        st, doc = d.get_json("/v1/events?limit=10")
        self.assertEqual(st, 200, doc)
        keys = sorted(e["session"]["key"][:5] for e in doc["events"])
        self.assertEqual(keys, ["cafte", "cbefo", "cidle"], doc)

    def test_a_node_cut_off_inside_a_transaction_lets_its_locks_go(self):
        # A node frozen or cut off while its writer was inside a transaction of several
        # round trips (a replay's chunk) held the event order lock for as long as it was
        # gone: every other node's ingest stopped (a review). The server now ends a
        # session idle in a transaction past statement_timeout. (2 s: the node is
        # frozen a moment after the cut, well before its own deadline and the
        # cancel's grace, 4 s, would close the connection and let the locks go.)
        self.frozen_in_a_transaction("statement_timeout = 2s\n", 6)

    def test_a_stricter_idle_limit_of_the_database_stays(self):
        # The limit was SET on every connection, replacing one the administrator gave
        # the database or the role (and with statement_timeout = 0, removing it).
        self.psql('ALTER DATABASE "%s" SET idle_in_transaction_session_timeout = \'1s\''
                  % self.dbname)
        # (statement_timeout 8 s, past `within`: the limit SET from it would hold the
        # locks too long. Not 30 s: a stop waited out a read the relay left without an
        # answer, as long, before TcpRelay.close() shut its connections down.)
        self.frozen_in_a_transaction("statement_timeout = 8s\n", 5)

    def frozen_in_a_transaction(self, storage, within):
        """A node whose replay is cut off at its last statement by the relay, and then
        frozen before it gives up on that statement: the server sees the transaction
        wait, the connection open. Its locks must go within `within` seconds."""
        sink = Sink("ok")
        self.addCleanup(sink.stop)
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT),
                         stall_at=b"SELECT coalesce(max(seq), 0) FROM events")
        self.addCleanup(relay.close)
        d = self.daemon(storage=storage, url=self.relay_url(relay), extra=(
            "[destination sink]\nurl = %s/hook\nallow_private = true\n" % sink.url))
        self.assertEqual(d.post(event("first"))[0], 200)
        wait_until(lambda: self.psql("SELECT count(*) FROM deliveries WHERE status = 1"
                                     ).strip() == "1", 20, "the delivery")
        threading.Thread(target=lambda: d.request(
            "POST", "/v1/destinations/sink/replay?status=succeeded"), daemon=True).start()
        idle = ("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted"
                " AND a.state = 'idle in transaction' AND a.pid <> pg_backend_pid()")
        # The relay stalled first: a replay seen idle between two of its statements
        # (CI-like runs, 1 in 10) went on once the node was frozen, its statements
        # already on their way, and committed: its locks went at once, and the test
        # passed whatever the server's limit.
        wait_until(lambda: relay.stalled and self.psql(idle).strip() == "1", 20,
                   "the replay cut off, locks held")
        os.kill(d.proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            wait_until(lambda: self.psql(idle).strip() == "0", within + 7, "the locks let go")
            self.assertLess(time.monotonic() - started, within)
        finally:
            os.kill(d.proc.pid, signal.SIGCONT)
        relay.close()  # its connections end: the stop need not wait out their deadlines

    def test_a_cancel_that_gets_no_answer_does_not_hold_the_writer(self):
        # libpq's PQcancel() connects to the server, sends the cancel and waits for
        # the server to close that connection, with no deadline: behind a network
        # that takes bytes and answers nothing (here a relay that drops them) the
        # writer waited in it for ever. The cancel now goes on a thread of its own.
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT))
        self.addCleanup(relay.close)
        # connect_timeout 2 s (libpq's least): the batch then tries a new connection,
        # which the stalled relay takes and never answers; with the daemon's 5 s the
        # 503 came 3 s later, what the test asserts unchanged.
        self.daemon(storage="statement_timeout = 1s\n",
                    url=self.relay_url(relay, "connect_timeout=2"))
        self.assertEqual(self.d.post(event("before"))[0], 200)
        relay.stall()
        (status, _, body), took = self.timed(lambda: self.d.post(event("stalled")))
        self.assertEqual(status, 503, body)
        self.assertLess(took, 12)
        self.assertIn("no answer to a cancel", self.d.log())  # written before the answer

    def test_a_late_cancel_does_not_land_on_the_next_statement(self):
        # A statement that runs out of time is cancelled from a thread of its own (the
        # test above). When the statement ended on its own first, the writer went on
        # and the cancel, still on its way, landed on whatever ran next on that
        # connection: here the next batch's first statement, waiting on a lock when
        # the cancel arrives 1 s late (statement_timeout 2 s: the cancel has 2 s; the
        # next batch waits on the lock within a few tenths of a second of the first's
        # answer).
        # That batch failed and went again write by write; a read, a replay chunk or a
        # commit waiting for a standby would have failed outright. The writer now
        # waits for its cancel to arrive before the connection runs anything else (one
        # that does not within the grace closes the connection).
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT))
        self.addCleanup(relay.close)
        d = self.daemon(storage="statement_timeout = 2s\n", url=self.relay_url(relay))
        self.assertEqual(d.post(event("before"))[0], 200)
        relay.delay_new(1.0)
        h = self.lock_events()
        first = []
        t = threading.Thread(target=lambda: first.append(d.post(event("first"))), daemon=True)
        t.start()
        d.wait_log("cancelling it", timeout=20)
        cancel_sent = time.monotonic()
        h.commit()  # the statement ends on its own, before its cancel arrives
        t.join(20)
        self.assertEqual([r[0] for r in first], [200], d.log())
        h = self.lock_events()
        then = []
        t = threading.Thread(target=lambda: then.append(d.post(event("then"))), daemon=True)
        t.start()
        wait_until(lambda: self.psql("SELECT count(*) FROM pg_locks WHERE NOT granted"
                                     " AND relation = 'events'::regclass").strip() == "1",
                   20, "the next batch to wait on the lock")
        time.sleep(max(0, cancel_sent + 1.5 - time.monotonic()))  # the cancel arrived
        h.commit()
        t.join(20)
        self.assertEqual([r[0] for r in then], [200], d.log())
        # Nothing was cancelled: the statement the cancel was for had ended.
        self.assertNotIn("canceling statement", d.log())

    def test_a_listen_that_gets_no_answer_does_not_hold_the_stop(self):
        # The LISTEN thread sent its LISTEN with a blocking PQexec(): when the server
        # stopped answering between the thread's connect and that answer (a start on a
        # loaded machine, the relay stalled by a test), the thread waited for ever and
        # a stop, which joins it, with it (CI: killed after 30 s). Here the relay
        # stalls on the LISTEN itself.
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT),
                         stall_at=b"LISTEN")
        self.addCleanup(relay.close)
        url = self.relay_url(relay)
        d = Daemon(pg_config(url).replace("[source default]\n",
                                          "statement_timeout = 1s\n[source default]\n")).start()
        self.addCleanup(d.cleanup)
        deadline = time.monotonic() + 10
        while not relay.stalled:
            self.assertLess(time.monotonic(), deadline, "the LISTEN never came")
            time.sleep(0.05)
        rc, took = self.timed(lambda: d.stop(timeout=15))
        self.assertEqual(rc, 0, d.log())
        self.assertLess(took, 12, d.log())

    def post_at_once(self, d, bodies, headers=None):
        """`bodies` posted to `d` together, each on a connection of its own opened
        before; returns (the statuses, seconds from the first post to the last answer)."""
        barrier = threading.Barrier(len(bodies), timeout=30)
        answers = [None] * len(bodies)
        stamps = []

        def post(i):
            conn = d.conn(timeout=30)
            try:
                conn.connect()
                barrier.wait()
                stamps.append(time.monotonic())
                answers[i] = d.post(bodies[i], headers=headers, conn=conn)[0]
                stamps.append(time.monotonic())
            finally:
                conn.close()
        threads = [threading.Thread(target=post, args=(i,), daemon=True)
                   for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return answers, max(stamps) - min(stamps)

    @unittest.skipIf(hrtest.SANITIZED, ROUND_TRIPS_PLAIN_ONLY)
    def test_a_batch_costs_a_few_round_trips_not_a_few_per_event(self):
        # The writer sent each statement once the one before had answered: three round
        # trips an event (the dedup claim, the session, the event row), all under the
        # event order lock. A database a millisecond away held a node, and with that
        # lock the whole cluster, to about 300 events a second. Here every answer of
        # the server comes 20 ms late: 40 events took 2.5-3 s, now a few batches of
        # four round trips each.
        d = self.relayed_daemon(0.02, source="")
        self.assertEqual(d.post(event("first"))[0], 200)  # its statements are prepared
        n = 40
        statuses, took = self.post_at_once(d, [event("b%d" % i) for i in range(n)])
        self.assertEqual(statuses, [200] * n, d.log())
        self.assertLess(took, 1.2, d.log())
        self.assertEqual(self.psql("SELECT count(*) FROM events").strip(), str(n + 1))
        self.assertEqual(self.psql("SELECT count(*) FROM sessions").strip(), str(n + 1))
        # Each event is linked to its session (read by key in the same run).
        self.assertEqual(self.psql("SELECT count(*) FROM events e JOIN sessions s ON"
                                   " s.id = e.session_id AND s.key = e.session_key").strip(),
                         str(n + 1))

    @unittest.skipIf(hrtest.SANITIZED, ROUND_TRIPS_PLAIN_ONLY)
    def test_a_batch_records_its_attempts_in_one_round_trip(self):
        # Each attempt's record was two statements, each waiting for the answer to the
        # one before: with the database 1 ms away a node drained 327 deliveries a
        # second. Here 48 answers of the destination come at once and every answer of
        # the server 20 ms late: their records took about 2 s, now a batch or two.
        sink = Sink("gated")
        sink.gate.clear()
        self.addCleanup(sink.stop)
        self.addCleanup(sink.gate.set)
        n = 48
        d = self.relayed_daemon(0.02, source="", extra=(
            "[destination sink]\nurl = %s/hook\nallow_private = true\nmax_in_flight = 64\n"
            % sink.url))
        statuses, _ = self.post_at_once(d, [event("a%d" % i) for i in range(n)])
        self.assertEqual(statuses, [200] * n, d.log())
        wait_until(lambda: len(sink.received()) >= n, 30, "every delivery on the wire")
        started = time.monotonic()
        sink.gate.set()
        wait_until(lambda: self.psql("SELECT count(*) FROM deliveries WHERE status = 1"
                                     ).strip() == str(n), 30, "every attempt's record")
        took = time.monotonic() - started
        self.assertLess(took, 1.2, d.log())
        self.assertEqual(self.psql("SELECT count(*) FROM attempts WHERE http_status = 200"
                                   ).strip(), str(n))

    @unittest.skipIf(hrtest.SANITIZED, ROUND_TRIPS_PLAIN_ONLY)
    def test_a_poll_costs_one_round_trip(self):
        # The forwarder's poll claimed the due rows, then asked in a statement of its
        # own when the next one falls due: two round trips, which its thread waits
        # for (with the database 1 ms away, about 150 polls a second in a drain). The
        # claim's answer now carries the next due time. An idle destination is
        # polled once a second, each poll a claim that finds nothing.
        latency = 0.1
        d = self.relayed_daemon(latency, source="", extra=(
            "[destination sink]\nurl = http://127.0.0.1:9/hook\nallow_private = true\n"))
        label = '{destination="sink"}'

        def looks():
            return (metric(d, "hookrelay_forwarder_polls_total" + label),
                    metric(d, "hookrelay_forwarder_poll_seconds_total" + label))
        wait_until(lambda: looks()[0] >= 2, 20, "the first polls")
        polls0, seconds0 = looks()
        wait_until(lambda: looks()[0] >= polls0 + 4, 20, "four more polls")
        polls1, seconds1 = looks()
        each = (seconds1 - seconds0) / (polls1 - polls0)
        self.assertGreater(each, 0.8 * latency, "a poll without a round trip?")
        # Under two (1.5 x failed once at 1.54 x beside the sanitizer suite, 2026-12-06).
        self.assertLess(each, 1.9 * latency, d.log())

    def relayed_daemon(self, latency, extra="", source="dedup = off\n"):
        """A daemon whose every answer from the server comes `latency` s late once it
        has started (its start, some fifty round trips, goes at the relay's pace)."""
        relay = TcpRelay(os.path.join(self.cluster, "sock", ".s.PGSQL.%d" % pgcluster.PORT),
                         lag_later=True)
        self.addCleanup(relay.close)
        d = self.daemon(url=self.relay_url(relay), source=source, extra=extra)
        relay.latency = latency
        return d

    @unittest.skipIf(hrtest.SANITIZED, ROUND_TRIPS_PLAIN_ONLY)
    def test_an_event_alone_is_stored_in_one_round_trip(self):
        # BEGIN, the event's rows and the COMMIT go in one pipe: the COMMIT had a
        # round trip of its own. Housekeeping due (the delivery counts' fold) still
        # takes a batch's COMMIT back; the fastest of a few posts has none.
        latency = 0.2
        d = self.relayed_daemon(latency)
        took = []
        for i in range(4):
            started = time.monotonic()
            self.assertEqual(d.post(event("one%d" % i))[0], 200, d.log())
            took.append(time.monotonic() - started)
        self.assertLess(min(took), 1.5 * latency, (took, d.log()))
        # and a round trip it is: the relay's delay applies to the daemon's connections
        # opened before it was set (relayed_daemon())
        self.assertGreater(min(took), 0.9 * latency, took)

    @unittest.skipIf(hrtest.SANITIZED, ROUND_TRIPS_PLAIN_ONLY)
    def test_a_deduplicated_event_is_stored_in_one_round_trip(self):
        # Its claim answered before its rows were sent (they depended on it): a round
        # trip more, and one more again for a duplicate's holder. Now the rows go with
        # the claim, written only if it won, and the claim's answer names the holder.
        latency = 0.2
        d = self.relayed_daemon(latency, source="")
        took, answers = [], []
        body = event("dedup")
        for _ in range(3):
            started = time.monotonic()
            status, _, data = d.post(body)
            took.append(time.monotonic() - started)
            self.assertEqual(status, 200, d.log())
            answers.append(json.loads(data))
        self.assertFalse(answers[0]["duplicate"], answers)
        self.assertEqual([a["duplicate"] for a in answers[1:]], [True, True], answers)
        self.assertEqual({a["id"] for a in answers}, {answers[0]["id"]}, answers)
        # One round trip, not two: under 2 x latency. (1.5 x failed once at 313 ms when
        # the sanitizer suite ran beside it, 2026-12-06; a second trip is 400 ms or more.)
        self.assertLess(min(took), 1.9 * latency, (took, d.log()))
        self.assertLess(min(took[1:]), 1.9 * latency, (took, d.log()))
        self.assertGreater(min(took), 0.9 * latency, took)  # a round trip, not none
        self.assertEqual(self.psql("SELECT count(*) FROM events").strip(), "1")
        self.assertEqual(self.psql("SELECT event_count FROM sessions").strip(), "1")

    def test_a_warning_of_a_row_is_not_taken_for_the_commits(self):
        # The COMMIT goes in the pipe of the batch's last rows, and a WARNING during
        # COMMIT fails the batch (a cancelled wait for a standby). The warning watch
        # was set before the rows' results were read, so a row's own WARNING (an
        # operator's audit trigger) answered the batch 503: an event lost to a
        # sender that does not retry.
        d = self.daemon(source="dedup = off\n")
        self.psql("CREATE FUNCTION hr_test_warn() RETURNS trigger LANGUAGE plpgsql AS"
                  " $$BEGIN RAISE WARNING 'audited'; RETURN NEW; END$$;"
                  " CREATE TRIGGER hr_test_warn BEFORE INSERT ON events"
                  " FOR EACH ROW EXECUTE FUNCTION hr_test_warn();")
        for i in range(3):
            status, _, body = d.post(event("warned%d" % i))
            self.assertEqual(status, 200, (body, d.log()))
        self.assertEqual(self.psql("SELECT count(*) FROM events").strip(), "3")
        self.assertNotIn("not known durable", d.log())

    @unittest.skipIf(hrtest.SANITIZED, ROUND_TRIPS_PLAIN_ONLY)
    def test_a_rejection_is_kept_in_a_few_round_trips(self):
        # A 422's body is kept (BEGIN and its row), the oldest rejections past
        # rejections_max are trimmed under a savepoint, then the COMMIT: BEGIN,
        # SAVEPOINT and RELEASE each had a round trip of their own, nine in all with
        # every answer 200 ms late (1.8 s a post); now they go with the statements.
        latency = 0.2
        d = self.relayed_daemon(latency)
        bad = payload_json(TRANSCRIPTION_READY)
        del bad["conversation_id"]
        took = []
        for i in range(3):
            started = time.monotonic()
            self.assertEqual(d.post(dumps(dict(bad, n=i)))[0], 422, d.log())
            took.append(time.monotonic() - started)
        self.assertLess(min(took), 5 * latency, (took, d.log()))
        self.assertEqual(self.psql("SELECT count(*) FROM rejections").strip(), "3")

    @unittest.skipIf(hrtest.SANITIZED, ROUND_TRIPS_PLAIN_ONLY)
    def test_a_drain_goes_at_two_round_trips_a_delivery(self):
        # With room for one delivery at a time, each waits for the record of the one
        # before (its BEGIN, rows and COMMIT: one round trip, where the COMMIT had
        # its own) and for the poll its commit asks for (the claim: one; the poll
        # at the attempt's end, without room, asked for the next due time: one more).
        # Once a second the shared destination state is read before a claim (a
        # round trip more for one delivery of two): the fastest gap is the measure.
        # A watchdog's ping batched behind a record kept its COMMIT from the
        # record's round trip: with that, every delivery took a second, each
        # meeting every once-a-second chore (CI saw 1.0 s, 1.0, 1.0, 0.79, 0.60).
        latency = 0.2
        sink = Sink()
        self.addCleanup(sink.stop)
        d = self.relayed_daemon(latency, extra=(
            "[destination sink]\nurl = %s/hook\nallow_private = true\nmax_in_flight = 1\n"
            % sink.url))
        n = 8
        statuses, _ = self.post_at_once(d, [event("q%d" % i) for i in range(n)])
        self.assertEqual(statuses, [200] * n, d.log())
        wait_until(lambda: len(sink.received()) >= n, 60, "every delivery")
        at = [r.at for r in sink.received()]
        gaps = [b - a for a, b in zip(at, at[1:])]
        self.assertLess(min(gaps), 3 * latency, (gaps, d.log()))
        self.assertGreater(min(gaps), 1.8 * latency, gaps)  # two round trips, not none

    def test_a_duplicate_of_an_event_of_its_own_batch_names_that_events_kind(self):
        # The claims of a batch go before any of its rows: a key claimed by an event
        # of the same batch has no row yet to read the kind from, and the answer must
        # still name the stored event's kind, not the duplicate's own.
        d = self.daemon(source="dedup = header:X-Delivery-Id\n")
        self.assertEqual(d.post(event("before"))[0], 200)
        h = self.lock_events()
        first = {}

        def post_blocked():
            first["r"] = d.post(event("blocked"))
        blocked = threading.Thread(target=post_blocked, daemon=True)
        blocked.start()  # its batch waits on the lock; the next two queue behind it
        wait_until(lambda: self.psql("SELECT count(*) FROM pg_locks WHERE NOT granted"
                                     " AND relation = 'events'::regclass").strip() == "1",
                   20, "the first batch to wait on the lock")
        shutdown = dumps(payload_json("tavus.conversation.system.shutdown.json"))
        answers = {}

        def post(name, body):
            answers[name] = d.post(body, headers={"X-Delivery-Id": "d-1"})
        a = threading.Thread(target=post, args=("a", shutdown), daemon=True)
        a.start()
        time.sleep(0.2)
        b = threading.Thread(target=post, args=("b", event("twin")), daemon=True)
        b.start()
        time.sleep(0.2)
        h.commit()
        for t in (blocked, a, b):
            t.join(20)
        self.assertEqual(first["r"][0], 200, d.log())
        docs = {k: json.loads(v[2]) for k, v in answers.items()}
        self.assertEqual([answers["a"][0], answers["b"][0]], [200, 200], docs)
        self.assertFalse(docs["a"]["duplicate"], docs)
        self.assertTrue(docs["b"]["duplicate"], docs)
        self.assertEqual(docs["b"]["id"], docs["a"]["id"], docs)
        self.assertEqual(docs["b"]["kind"], "tavus.conversation.system.shutdown", docs)
        self.assertEqual(self.psql("SELECT count(*) FROM events").strip(), "3")

    @staticmethod
    def cont(pid):
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass

if __name__ == "__main__":
    unittest.main()
