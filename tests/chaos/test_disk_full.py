"""Chaos: the database's filesystem fills up, then space comes back.

Two ways to run out of space:

- RLIMIT_FSIZE (any user): the limit is put on the running daemon with
  prlimit(2), 6 MiB above its database files' current size (past a WAL
  checkpoint or two), so a write past it fails with EFBIG (the daemon must
  ignore SIGXFSZ, whose default action would kill it; the test checks). Space
  comes back by lifting the limit on the same process: no restart.
- a small tmpfs (root only, skipped otherwise): the database directory is a
  16 MiB tmpfs filled up with a ballast file (6 MiB left), so writes fail with
  ENOSPC; space comes back by deleting the ballast, again without a restart.

In both: clients post until they are answered 503 storage-unavailable; every
answer is 200 or that 503 (no crash, no dropped connection); /healthz still
answers; once there is space again new events get 200. Afterwards every event
answered 200 is in the database exactly once (also after a restart), and the
numbers of 503 answers whose event was stored anyway are printed.
"""

import http.client
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from hrtest import Daemon, sanitizer_reports  # noqa: E402
from sink import Sink  # noqa: E402

CONNECTION_ERRORS = (ConnectionError, http.client.HTTPException, TimeoutError, OSError)
THREADS = 4
PAD = "x" * 8000
FAILS_PER_THREAD = 3     # each client stops after this many 503 answers
POST_DEADLINE = 60.0     # ... or after this long: the disk never filling is a failure
MiB = 1024 * 1024

CONFIG = """
[server]
listen = 127.0.0.1:0
[storage]
path = {db}
[source default]
provider = auto
dedup = off
[destination sink]
url = %s/hook
allow_private = true
timeout = 5s
jitter = 0
retry_schedule = 100ms, 200ms, 500ms, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s, 1s
"""


def wait_until(fn, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s; last: %r" % (timeout, what, last))
        time.sleep(interval)


def db_files_size(db):
    return max((os.path.getsize(p) for p in (db, db + "-wal") if os.path.exists(p)), default=0)


def tmpfs_usable():
    """Why a tmpfs cannot be mounted here, or None when it can."""
    if os.geteuid() != 0:
        return "not root: no tmpfs mount (the RLIMIT_FSIZE test covers the full disk)"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount(8)"
    probe = tempfile.mkdtemp(prefix="hrchaos-probe-")
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                           capture_output=True, timeout=10)
        if r.returncode != 0:
            return "mount -t tmpfs refused: %s" % r.stderr.decode(errors="replace").strip()
        subprocess.run(["umount", probe], timeout=10)
        return None
    finally:
        os.rmdir(probe)


class DiskFullTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hrchaos-disk-")
        self.sink = Sink("ok", max_seconds=600)
        self.daemon = None
        self.mounted = None

    def tearDown(self):
        if self.daemon is not None:
            self.daemon.stop(signal.SIGKILL)
        self.sink.stop()
        if self.mounted:
            subprocess.run(["umount", "-l", self.mounted], timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self):
        d = Daemon(CONFIG % self.sink.url, workdir=self.dir)
        d.owns_dir = False
        self.daemon = d
        return d.start()

    def stop_clean(self, d):
        rc = d.stop()
        self.daemon = None
        self.assertEqual(rc, 0, "hookrelay did not exit cleanly:\n" + d.log())
        self.assertEqual(sanitizer_reports(d.log()), [], d.log())

    def post_until_full(self, d, results):
        """THREADS clients post distinct events until each saw FAILS_PER_THREAD 503s.
        `results` gets (nonce, status, id or problem type) per answer."""
        lock = threading.Lock()
        deadline = time.monotonic() + POST_DEADLINE
        odd = []

        def worker(t):
            conn = d.conn(timeout=30)
            fails = seq = 0
            try:
                while fails < FAILS_PER_THREAD and time.monotonic() < deadline:
                    seq += 1
                    nonce = "t%d-%d-%s" % (t, seq, os.urandom(6).hex())
                    body = json.dumps({"chaos": "disk-full", "nonce": nonce, "pad": PAD}).encode()
                    try:
                        status, hdrs, data = d.post(body, conn=conn)
                    except CONNECTION_ERRORS as e:
                        with lock:
                            odd.append("thread %d #%d: %r" % (t, seq, e))
                        return
                    if status == 200:
                        with lock:
                            results.append((nonce, 200, json.loads(data)["id"]))
                        continue
                    doc = json.loads(data) if data.startswith(b"{") else {}
                    with lock:
                        results.append((nonce, status, doc.get("type")))
                    if status != 503 or doc.get("type") != "urn:hookrelay:problem:storage-unavailable" \
                            or not hdrs.get("retry-after", "").isdigit():
                        with lock:
                            odd.append("thread %d #%d: %d %r %r" % (t, seq, status, hdrs, data[:200]))
                        return
                    fails += 1
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=POST_DEADLINE + 60)
        self.assertFalse(any(t.is_alive() for t in threads), "clients hung")
        self.assertEqual(odd, [], "every answer must be 200 or 503 storage-unavailable:\n" + d.log()[-3000:])
        self.assertIsNone(d.proc.poll(), "the daemon died:\n" + d.log())
        fails = sum(1 for r in results if r[1] != 200)
        self.assertGreaterEqual(fails, THREADS * FAILS_PER_THREAD,
                                "the disk never filled: %d answers" % len(results))

    def recovers(self, d, results):
        """Space is back: the next events are answered 200 without a restart."""
        def one():
            nonce = "after-%s" % os.urandom(6).hex()
            status, _, data = d.post({"chaos": "disk-full", "nonce": nonce})
            if status == 200:
                results.append((nonce, 200, json.loads(data)["id"]))
            return status == 200
        wait_until(one, 30, "a 200 after space came back", interval=0.2)
        for _ in range(20):
            self.assertTrue(one(), "space is back but an event was refused")

    def check_db(self, db, results, label):
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        try:
            counts = dict(con.execute("SELECT id, count(*) FROM events GROUP BY id"))
            nonces = {json.loads(b)["nonce"] for (b,) in con.execute("SELECT body FROM events")}
            check = con.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            con.close()
        self.assertEqual(check, "ok")
        acked = [r for r in results if r[1] == 200]
        refused = [r for r in results if r[1] != 200]
        lost = [r for r in acked if counts.get(r[2]) != 1 or r[0] not in nonces]
        stored_refused = [r for r in refused if r[0] in nonces]
        print("%s: %d answered 200, %d answered 503; %d events stored; %d acknowledged but not stored "
              "exactly once; %d refused but stored anyway" % (label, len(acked), len(refused), len(counts),
                                                             len(lost), len(stored_refused)))
        self.assertEqual(lost, [], "acknowledged events missing (or stored twice)")
        return counts

    def drain_and_check(self, d, results, label):
        def drained():
            status, doc = d.get_json("/v1/destinations/sink")
            return status == 200 and doc["pending"] == 0 and doc
        wait_until(drained, 60, "deliveries to drain")
        self.stop_clean(d)
        counts = self.check_db(d.db, results, label)
        # A restart on the same directory still has every acknowledged event.
        d = self.start()
        listed = {e["id"] for e in d.paged("/v1/events", "events", limit=500)}
        self.assertEqual({r[2] for r in results if r[1] == 200} - listed, set(), "lost at restart")
        self.assertEqual(listed, set(counts))
        self.stop_clean(d)
        delivered = {r.headers.get("webhook-id") for r in self.sink.received()}
        self.assertEqual(set(counts) - delivered, set(), "stored events never forwarded")

    def test_file_size_limit_then_lifted(self):
        d = self.start()
        d.post({"chaos": "disk-full", "nonce": "warm-up"})  # the WAL has its first frames
        with open("/proc/%d/status" % d.proc.pid) as f:
            ignored = int(f.read().split("SigIgn:")[1].split()[0], 16)
        self.assertTrue(ignored & (1 << (signal.SIGXFSZ - 1)),
                        "hookrelay does not ignore SIGXFSZ: a write past RLIMIT_FSIZE would kill it")
        limit = db_files_size(d.db) + 6 * MiB
        # Soft limit only: the hard one stays, so lifting it again needs no privilege.
        resource.prlimit(d.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        results = []
        self.post_until_full(d, results)
        # Every batch fails now: the store's warnings come in moderation (they were two
        # lines per failed request, thousands in seconds, which journald's rate limit
        # then dropped with the daemon's other lines).
        # The ingest's line for each webhook answered 503 has a bucket of its own.
        def store_lines():
            log = d.log()
            return log.count("<4>store: ") + log.count("<3>store: "), log.count("<3>ingest: ")

        before, t0 = store_lines(), time.monotonic()
        for i in range(200):
            nonce = "flood-%d-%s" % (i, os.urandom(4).hex())
            status, _, data = d.post({"chaos": "disk-full", "nonce": nonce})
            results.append((nonce, status, json.loads(data).get("id") if status == 200 else None))
        after, took = store_lines(), int(time.monotonic() - t0)
        self.assertLessEqual(after[0] - before[0], 2 * (20 + took + 2), d.log()[-2000:])
        self.assertLessEqual(after[1] - before[1], 20 + took + 2, d.log()[-2000:])
        self.assertGreater(after[1] - before[1], 0, "no line for the webhooks answered 503")
        time.sleep(1.1)  # a line again, saying how many were held back
        nonce = "flood-after-%s" % os.urandom(4).hex()
        status, _, data = d.post({"chaos": "disk-full", "nonce": nonce})
        results.append((nonce, status, json.loads(data).get("id") if status == 200 else None))
        wait_until(lambda: "failed batches were not logged (a flood)" in d.log(), 5,
                   "the count of the lines held back")
        status, doc = d.get_json("/healthz")
        self.assertEqual(status, 200, doc)  # reads do not need space
        # Webhooks get 503 now: not ready, though an empty transaction (the writer's
        # ping) still commits. (Not every one: once the WAL was checkpointed and
        # begins again from its start, a small write fits under the limit and
        # commits, and readiness follows the last write: the sanitizer run of a full
        # suite asked just after one. The next that fails makes it not ready again.)
        def not_ready():
            status, doc = d.get_json("/readyz")
            if status != 503:
                nonce = "flood-ready-%s" % os.urandom(4).hex()
                st, _, data = d.post({"chaos": "disk-full", "nonce": nonce})
                results.append((nonce, st, json.loads(data).get("id") if st == 200 else None))
                return None
            return doc
        doc = wait_until(not_ready, 10, "/readyz to answer 503")
        self.assertIn("writer", doc["failed"], doc)
        resource.prlimit(d.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        self.recovers(d, results)
        status, doc = d.get_json("/readyz")
        self.assertEqual(status, 200, doc)
        self.drain_and_check(d, results, "RLIMIT_FSIZE %d bytes" % limit)

    def test_tmpfs_full_then_space_freed(self):
        why = tmpfs_usable()
        if why:
            self.skipTest(why)
        var = os.path.join(self.dir, "var")
        os.makedirs(var)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0750", "tmpfs", var],
                           capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.mounted = var
        d = self.start()
        d.post({"chaos": "disk-full", "nonce": "warm-up"})
        st = os.statvfs(var)
        ballast = os.path.join(self.dir, "var", "ballast")
        with open(ballast, "wb") as f:  # leave about 6 MiB free: past a WAL checkpoint or two
            free = st.f_bavail * st.f_frsize
            f.write(b"\0" * max(0, free - 6 * MiB))
        results = []
        self.post_until_full(d, results)
        status, doc = d.get_json("/healthz")
        self.assertEqual(status, 200, doc)
        os.unlink(ballast)
        self.recovers(d, results)
        self.drain_and_check(d, results, "tmpfs 16 MiB, 6 MiB free")


if __name__ == "__main__":
    unittest.main()
