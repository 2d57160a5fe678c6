"""`hookrelay backup FILE` while the daemon serves.

With four clients posting, the backup is a sound SQLite database
(PRAGMA integrity_check) holding every event acknowledged before it started,
and no request fails meanwhile. A backup onto an existing file fails with
exit status 1 and says why, leaving the file alone. Restoring (stop, put the
backup in place, start) serves the backed-up events.
"""

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

import hrtest
from hrtest import DEFAULT_CONFIG, Daemon, dumps, fresh_id, payload_json, sanitizer_reports

TRANSCRIPTION_READY = "tavus.conversation.application.transcription_ready.json"


def event_body():
    return dumps(dict(payload_json(TRANSCRIPTION_READY), conversation_id=fresh_id("c")))


def backup(d, dest):
    return subprocess.run([hrtest.BIN, "-c", d.config_path, "backup", dest], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


def read_db(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
    try:
        check = con.execute("PRAGMA integrity_check").fetchone()[0]
        ids = {r[0] for r in con.execute("SELECT id FROM events")}
    finally:
        con.close()
    return check, ids


@hrtest.sqlite_only("hookrelay --backup is VACUUM INTO of the database file; PostgreSQL is backed up with its own tools")
class BackupTest(unittest.TestCase):

    def setUp(self):
        self.d = Daemon(DEFAULT_CONFIG)
        try:
            self.d.start()
        except BaseException:
            self.d.cleanup()
            raise

    def tearDown(self):
        rc = self.d.stop()
        log = self.d.log()
        self.d.cleanup()
        self.assertEqual(rc, 0, "hookrelay did not exit cleanly:\n" + log)
        self.assertEqual(sanitizer_reports(log), [], log)

    def test_backup_while_posting_then_restore(self):
        d = self.d
        lock = threading.Lock()
        # acked: (time the request was sent, time its answer was read, id). An event
        # sent after the backup ended cannot be in it; one whose answer was read before
        # it started must be. (Read after it ended says nothing: a client kept from
        # the CPU reads late an answer sent before; once three of them on a busy CI.)
        acked, failed = [], []
        stop = threading.Event()

        def client():
            conn = d.conn(timeout=30)
            try:
                while not stop.is_set():
                    sent = time.monotonic()
                    status, _, data = d.post(event_body(), conn=conn)
                    with lock:
                        if status == 200:
                            acked.append((sent, time.monotonic(), json.loads(data)["id"]))
                        else:
                            failed.append((status, data[:200]))
            finally:
                conn.close()

        threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            deadline = time.monotonic() + 20
            while len(acked) < 300:
                self.assertLess(time.monotonic(), deadline, "the clients stalled")
                time.sleep(0.01)
            dest = os.path.join(d.dir, "backup.db")
            started = time.monotonic()
            r = backup(d, dest)
            finished = time.monotonic()
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(dest, r.stdout)
            time.sleep(0.2)  # the clients go on after the backup too
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(failed, [])

        check, ids = read_db(dest)
        self.assertEqual(check, "ok")
        before = [eid for _, read, eid in acked if read < started]
        after = [eid for sent, _, eid in acked if sent > finished]
        self.assertGreaterEqual(len(before), 300)
        self.assertEqual([eid for eid in before if eid not in ids], [],
                         "events acknowledged before the backup started are missing")
        self.assertTrue(after, "nothing was acknowledged after the backup")
        self.assertFalse(set(after) & ids, "the backup holds events acknowledged after it")

        # A second backup onto the same file: exit 1, a message, the file untouched.
        size = os.path.getsize(dest)
        r = backup(d, dest)
        self.assertEqual(r.returncode, 1, r)
        # As operations.md has it: the file is named (an ops review found it was not).
        self.assertIn("backup: %s: output file already exists" % dest, r.stderr)
        self.assertEqual(os.path.getsize(dest), size)
        self.assertEqual(read_db(dest), (check, ids))

        # Written whole or not at all: no temporary file is left, none is readable by
        # others (it holds every event), and a run that fails leaves nothing behind.
        self.assertEqual(sorted(f for f in os.listdir(d.dir) if f.startswith("backup.db")),
                         ["backup.db"])
        self.assertEqual(os.stat(dest).st_mode & 0o777, 0o600)
        r = subprocess.run([hrtest.BIN, "-c", d.config_path, "--db",
                            os.path.join(d.dir, "no-such.db"), "backup",
                            os.path.join(d.dir, "failed.db")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual([f for f in os.listdir(d.dir) if f.startswith("failed.db")], [])

        # Restore: stop, put the backup in place (without the old WAL), start.
        self.assertEqual(d.stop(), 0, d.log())
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(d.db + suffix):
                os.unlink(d.db + suffix)
        shutil.copy(dest, d.db)
        d.start()
        sample = before[:3] + before[-3:]
        for eid in sample:
            self.assertEqual(d.request("GET", "/v1/events/" + eid)[0], 200, eid)
        self.assertEqual(d.request("GET", "/v1/events/" + after[-1])[0], 404)
        self.assertEqual(d.post(event_body())[0], 200)


@hrtest.sqlite_only("the backup of an SQLite file")
class BackupCutShortTest(unittest.TestCase):
    """A backup that fails or is stopped leaves no file beside FILE: each such run of a
    cron job left FILE.XXXXXX (and its -journal), the size of the database (review R8)."""

    def setUp(self):
        self.d = Daemon(DEFAULT_CONFIG)
        self.d.start()
        for _ in range(20):
            self.assertEqual(self.d.post(event_body())[0], 200)
        self.assertEqual(self.d.stop(), 0, self.d.log())

    def tearDown(self):
        self.d.cleanup()

    def left(self, name):
        return sorted(f for f in os.listdir(self.d.dir) if f.startswith(name))

    def test_a_backup_that_fails_on_a_full_disk_leaves_nothing(self):
        def small_files():  # a full disk, as the copy sees it
            resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

        dest = os.path.join(self.d.dir, "full.db")
        r = subprocess.run([hrtest.BIN, "-c", self.d.config_path, "backup", dest],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                           preexec_fn=small_files)
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr.count(dest), 1, r.stderr)  # named once, not "FILE: FILE:"
        self.assertEqual(self.left("full.db"), [])

    def test_a_signal_the_caller_ignores_stays_ignored(self):
        # A backup run as a background job of a script (SIGINT ignored) was killed by
        # the terminal's Ctrl-C once the copy's handler took SIGINT over (review R11).
        con = sqlite3.connect(self.d.db, timeout=10)
        con.execute("PRAGMA locking_mode = EXCLUSIVE")
        con.execute("BEGIN EXCLUSIVE")
        dest = os.path.join(self.d.dir, "kept.db")
        p = subprocess.Popen([hrtest.BIN, "-c", self.d.config_path, "backup", dest],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        try:
            deadline = time.monotonic() + 10
            while not self.left("kept.db") and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.2)
            p.send_signal(signal.SIGINT)
            time.sleep(0.5)
            self.assertIsNone(p.poll(), "the ignored SIGINT ended the backup")
        finally:
            con.rollback()
            con.close()
        out, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(self.left("kept.db"), ["kept.db"])

    def test_a_backup_stopped_by_a_signal_leaves_nothing(self):
        # The database held by another connection: the copy waits to read it.
        con = sqlite3.connect(self.d.db, timeout=10)
        con.execute("PRAGMA locking_mode = EXCLUSIVE")
        con.execute("BEGIN EXCLUSIVE")
        try:
            dest = os.path.join(self.d.dir, "cut.db")
            p = subprocess.Popen([hrtest.BIN, "-c", self.d.config_path, "backup", dest],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            deadline = time.monotonic() + 10
            while not self.left("cut.db") and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(len(self.left("cut.db")), 1, "no temporary file to remove")
            time.sleep(0.2)
            p.send_signal(signal.SIGTERM)
            self.assertEqual(p.wait(timeout=20), -signal.SIGTERM)
            p.stdout.close()
            p.stderr.close()
        finally:
            con.rollback()
            con.close()
        self.assertEqual(self.left("cut.db"), [])


@hrtest.sqlite_only("the backup of an SQLite file")
@unittest.skipUnless(shutil.which("strace"), "strace is not installed (scripts/test installs it)")
class BackupSyncTest(unittest.TestCase):
    """SQLite's VACUUM INTO does not sync: "written" must mean on disk."""

    def test_the_backup_and_its_directory_are_synced_before_it_is_named(self):
        d = Daemon(DEFAULT_CONFIG)
        try:
            d.start()
            self.assertEqual(d.post(event_body())[0], 200)
            dest, trace = os.path.join(d.dir, "synced.db"), os.path.join(d.dir, "trace")
            r = subprocess.run([shutil.which("strace"), "-f", "-qq", "-y", "-o", trace,
                                "-e", "trace=fsync,fdatasync,link,linkat,rename,renameat,renameat2",
                                hrtest.BIN, "-c", d.config_path, "backup", dest],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                               # LeakSanitizer traces the process itself: not under strace
                               env=dict(os.environ, ASAN_OPTIONS=(os.environ.get(
                                   "ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")))
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(trace) as f:
                calls = [line.split(None, 1)[1] if line[0].isdigit() else line for line in f]
            named = [i for i, c in enumerate(calls) if "link" in c and "synced.db\"" in c]
            self.assertEqual(len(named), 1, calls)
            self.assertTrue(any(c.startswith(("fsync(", "fdatasync(")) and "synced.db." in c
                                for c in calls[:named[0]]), calls)  # the file, before its name
            self.assertTrue(any(c.startswith("fsync(") and c.split("<", 1)[1].startswith(d.dir + ">")
                                for c in calls[named[0]:]), calls)  # then its directory
            self.assertEqual(read_db(dest)[0], "ok")
        finally:
            self.assertEqual(d.stop(), 0, d.log())
            d.cleanup()

    def test_a_backup_whose_directory_sync_fails_leaves_nothing_named_file(self):
        # operations.md: "a run that fails or is cut short leaves nothing named FILE".
        # The directory's fsync after link() is made to fail (strace's fault injection:
        # the second fsync of the run, the first being the copy's own): the run exits 1,
        # and FILE must not be there, or the next run of a cron job that retries is
        # refused with "output file already exists" over a copy that was said to fail.
        d = Daemon(DEFAULT_CONFIG)
        try:
            d.start()
            self.assertEqual(d.post(event_body())[0], 200)
            dest = os.path.join(d.dir, "dirsync.db")
            r = subprocess.run([shutil.which("strace"), "-f", "-qq", "-y", "-o",
                                os.path.join(d.dir, "trace"), "-e", "trace=fsync,link,linkat",
                                "-e", "inject=fsync:error=EIO:when=2",
                                hrtest.BIN, "-c", d.config_path, "backup", dest],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, ASAN_OPTIONS=(os.environ.get(
                                   "ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")))
            with open(os.path.join(d.dir, "trace")) as f:
                trace = f.read()
            self.assertIn("(INJECTED)", trace)
            self.assertEqual(r.returncode, 1, (r.stderr, trace))
            self.assertEqual(sorted(f for f in os.listdir(d.dir) if f.startswith("dirsync.db")), [],
                             "a backup that exited 1 left FILE behind:\n" + trace)
        finally:
            self.assertEqual(d.stop(), 0, d.log())
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
