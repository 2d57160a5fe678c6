"""Chaos: another process holds the database's write lock longer than the daemon waits.

A Python sqlite3 connection runs BEGIN EXCLUSIVE on the daemon's database file and
holds it for HOLD seconds, longer than the writer's 5 s busy timeout (the daemon
is not changed for the test). Meanwhile clients keep posting:

- ingest answers 503 storage-unavailable (with Retry-After), never crashes, and
  no request waits much longer than the busy timeout. A request sent while the
  writer was idle waits one busy timeout; one queued behind a batch that is
  already waiting waits for that batch and then its own, so the bound for
  concurrent clients is two busy timeouts;
- /healthz answers at once (WAL readers are not blocked by a writer);
- once the lock is released, new requests get 200 promptly;
- afterwards every event answered 200 is stored, and none answered 503 is.
"""

import http.client
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from hrtest import Daemon, sanitizer_reports  # noqa: E402

CONNECTION_ERRORS = (ConnectionError, http.client.HTTPException, TimeoutError, OSError)
BUSY_TIMEOUT = 5.0   # the daemon's sqlite3_busy_timeout (src/store/sqlite_db.c)
HOLD = 7.0           # how long the other process keeps the write lock
SLACK = 1.5          # scheduling noise on a loaded 2-core machine
CLIENTS = 3

CONFIG = """
[server]
listen = 127.0.0.1:0
[storage]
path = {db}
[source default]
provider = auto
dedup = off
"""


class Answer:
    __slots__ = ("client", "nonce", "sent", "answered", "status", "what")

    def __init__(self, client, nonce, sent, answered, status, what):
        self.client, self.nonce, self.sent, self.answered = client, nonce, sent, answered
        self.status, self.what = status, what

    @property
    def latency(self):
        return self.answered - self.sent

    def __repr__(self):
        return "<client %d sent %+.2fs waited %.2fs: %d %s>" % (self.client, self.sent, self.latency,
                                                               self.status, self.what)


class DbLockedTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hrchaos-lock-")
        d = Daemon(CONFIG, workdir=self.dir)
        d.owns_dir = False
        self.d = d.start()
        self.locker = None

    def tearDown(self):
        if self.locker is not None:
            self.locker.close()
        if self.d is not None:
            self.d.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_write_lock_held_elsewhere(self):
        d = self.d
        status, _, data = d.post({"chaos": "db-locked", "nonce": "before"})
        self.assertEqual(status, 200, data)

        answers, odd, lock = [], [], threading.Lock()
        t0 = time.monotonic()
        released = threading.Event()
        release_at = [None]
        deadline = t0 + HOLD + 2 * BUSY_TIMEOUT + 20

        def client(c):
            conn = d.conn(timeout=60)
            seq = 0
            try:
                while time.monotonic() < deadline:
                    seq += 1
                    nonce = "c%d-%d-%s" % (c, seq, os.urandom(4).hex())
                    sent = time.monotonic() - t0
                    try:
                        status, hdrs, data = d.post({"chaos": "db-locked", "nonce": nonce}, conn=conn)
                    except CONNECTION_ERRORS as e:
                        with lock:
                            odd.append("client %d: %r" % (c, e))
                        return
                    answered = time.monotonic() - t0
                    doc = json.loads(data) if data.startswith(b"{") else {}
                    a = Answer(c, nonce, sent, answered, status, doc.get("id") if status == 200 else doc.get("type"))
                    with lock:
                        answers.append(a)
                    if status == 503 and (doc.get("type") != "urn:hookrelay:problem:storage-unavailable"
                                          or not hdrs.get("retry-after", "").isdigit()):
                        with lock:
                            odd.append("client %d: %r %r" % (c, a, hdrs))
                        return
                    if status not in (200, 503):
                        with lock:
                            odd.append("client %d: %r %r" % (c, a, data[:200]))
                        return
                    # Done once a request sent after the release was accepted.
                    if status == 200 and released.is_set() and sent > release_at[0]:
                        return
            finally:
                conn.close()

        locker = sqlite3.connect(d.db, timeout=10, isolation_level=None)
        self.locker = locker
        locker.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic() - t0
        threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        # While the lock is held: /healthz answers, and at once.
        health = []
        while time.monotonic() - t0 < locked_at + HOLD:
            s = time.monotonic()
            status, doc = d.get_json("/healthz")
            health.append((status, time.monotonic() - s))
            time.sleep(0.5)  # a probe every half second while the lock is held
        release_at[0] = time.monotonic() - t0
        locker.execute("ROLLBACK")
        locker.close()
        self.locker = None
        released.set()
        for t in threads:
            t.join(timeout=deadline - time.monotonic() + 30)
        self.assertFalse(any(t.is_alive() for t in threads), "clients hung")

        # Requests after the release are served promptly.
        after = []
        for i in range(10):
            s = time.monotonic()
            status, _, data = d.post({"chaos": "db-locked", "nonce": "after-%d" % i})
            after.append((status, time.monotonic() - s))
            if status == 200:
                answers.append(Answer(-1, "after-%d" % i, s - t0, time.monotonic() - t0, 200,
                                      json.loads(data)["id"]))

        in_lock = [a for a in answers if a.sent < release_at[0]]
        refused = [a for a in answers if a.status == 503]
        accepted = [a for a in answers if a.status == 200]
        first = min(answers, key=lambda a: a.answered)  # the first batch the writer tried
        worst = max(answers, key=lambda a: a.latency)
        print("db locked %.1fs..%.1fs: %d answers (%d sent during the lock), %d x 503, %d x 200; first "
              "answer after %.2fs (%d), worst %.2fs; /healthz worst %.3fs; after release worst %.3fs"
              % (locked_at, release_at[0], len(answers), len(in_lock), len(refused), len(accepted),
                 first.latency, first.status, worst.latency, max(h[1] for h in health),
                 max(a[1] for a in after)))
        self.assertEqual(odd, [], "answers other than 200 / 503 storage-unavailable")
        self.assertIsNone(d.proc.poll(), "the daemon died:\n" + d.log())
        self.assertTrue(all(s == 200 for s, _ in health), health)
        self.assertLess(max(h[1] for h in health), 1.0 + SLACK, "/healthz blocked by the write lock")
        # The first batch met an idle writer: it waited one busy timeout, then 503.
        self.assertEqual(first.status, 503, first)
        self.assertGreater(first.latency, BUSY_TIMEOUT - 0.5, first)
        self.assertLess(first.latency, BUSY_TIMEOUT + SLACK, first)
        # No request waits longer than its batch's busy timeout plus the one ahead of it.
        self.assertLess(worst.latency, 2 * BUSY_TIMEOUT + SLACK, worst)
        # Nothing can commit while the lock is held.
        early = [a for a in accepted if a.answered < release_at[0] - 0.05]
        self.assertEqual(early, [], "200 answered while another process held the write lock")
        self.assertEqual([s for s, _ in after], [200] * 10)
        self.assertLess(max(t for _, t in after), 1.0 + SLACK)

        rc = d.stop()
        log = d.log()
        self.d = None
        self.assertEqual(rc, 0, log)
        self.assertEqual(sanitizer_reports(log), [], log)
        con = sqlite3.connect("file:%s?mode=ro" % d.db, uri=True, timeout=10)
        try:
            stored = {json.loads(b)["nonce"]: i for i, b in con.execute("SELECT id, body FROM events")}
        finally:
            con.close()
        self.assertEqual([a for a in accepted if stored.get(a.nonce) != a.what], [], "acked but not stored")
        self.assertEqual([a for a in refused if a.nonce in stored], [], "answered 503 but stored")


if __name__ == "__main__":
    unittest.main()
