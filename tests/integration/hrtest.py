"""hrtest - start a hookrelay daemon for a test and talk to it over HTTP.

Only the Python standard library. Every daemon listens on 127.0.0.1 port 0
(the kernel picks a free port, read back from the "listening on" log line),
uses a database in a fresh temporary directory, and is stopped by PID.

One suite, two database engines: with HR_TEST_BACKEND=postgresql every daemon's
[storage] gets `backend = postgresql` and the url of a fresh database created in
the cluster HR_TEST_PG_URL names (tests/pg/pgcluster.py starts one; ctest runs
the integration tests a second time so, label `postgresql`). A daemon restarted
in the same directory finds the same database. A test of something only SQLite
has (the file, its lock, VACUUM INTO) says so with @sqlite_only(reason).

A database whose daemon is cleaned up is emptied (its rows deleted, identities restarted)
and handed to the next daemon of the same test process instead of being dropped:
creating and migrating one costs ~0.3 s, a few hundred times in a run. One a test wrote
to with its own SQL (db_exec, pg_sql) may no longer have the daemon's schema and is
dropped. The tests' own SQL goes through libpq on a kept connection a database (hrpg).
"""

import http.client
import json
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import weakref

import hrpg

BIN = os.environ.get("HOOKRELAY_BIN", "build/hookrelay")
BACKEND = os.environ.get("HR_TEST_BACKEND", "sqlite")
PG_URL = os.environ.get("HR_TEST_PG_URL", "")
PSQL = os.environ.get("HR_TEST_PSQL", "psql")
PAYLOADS = os.environ.get("HR_PAYLOADS_DIR", os.path.join(os.path.dirname(__file__), "..", "payloads"))
START_TIMEOUT = 20.0
# A kept connection idle this long is not used again (Daemon._kept_conn): under the
# shortest idle timeout a daemon can have (header_timeout = 1s).
KEPT_IDLE = 0.5


def _readable(fd):
    """Something to read on `fd` now. poll(), not select(), which refuses a descriptor
    past 1023 (a test holding many sockets open)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    return bool(p.poll(0))


def _sanitized_build():
    """CMake's HR_SANITIZE_BUILD; run by hand without it, whether the binary has
    AddressSanitizer in it."""
    v = os.environ.get("HR_SANITIZE_BUILD", "")
    if v:
        return v.upper() not in ("0", "OFF", "FALSE", "NO")
    try:
        with open(BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# How the daemon under test was built and run: a sanitizer build runs several times
# slower, and under valgrind (scripts/test --valgrind) ten times and more. A test's
# time bound scales with them.
SANITIZED = _sanitized_build()
VALGRIND = bool(os.environ.get("HR_VALGRIND"))

DEFAULT_CONFIG = """
[server]
listen = 127.0.0.1:0
[storage]
path = {db}
[source default]
provider = auto
[source tavus]
provider = tavus
[source pailflow]
provider = pailflow
"""


def sqlite_only(reason):
    """Skip a test or a class on another backend: `reason` says what only SQLite has."""
    return unittest.skipIf(BACKEND != "sqlite", "SQLite only: " + reason)


# Emptied databases ready for the next daemon of this process, and the databases a
# test changed with its own SQL (never reused: their schema may differ).
_PG_POOL = []
_PG_TOUCHED = set()


def _pg_dbname(url):
    names = re.findall(r"dbname=(\S+)", url or "")
    return names[-1] if names else None


def pg_sql(sql, url=None):
    """Run `sql` in the test cluster (its maintenance database unless `url`); returns the
    output, one row a line, columns split by |. A database named by `url` is not
    reused by a later daemon (the SQL may have changed its schema)."""
    if url:
        _PG_TOUCHED.add(_pg_dbname(url))
    return _psql(sql, url)


def _psql(sql, url=None):
    return hrpg.query(url or PG_URL, sql)


def pg_config(url):
    """A daemon's configuration on the PostgreSQL database `url` with an `auto` default
    source; it names its backend, so with_backend() leaves its [storage] alone."""
    return ("[server]\nlisten = 127.0.0.1:0\n[storage]\nbackend = postgresql\n"
            f"url = {url}\n[source default]\nprovider = auto\n")


def pg_database(workdir):
    """The url of the database of `workdir`, created the first time (the name is kept in
    the directory, so a restarted daemon finds its data)."""
    if not PG_URL:
        raise RuntimeError("HR_TEST_BACKEND=postgresql needs HR_TEST_PG_URL (tests/pg/pgcluster.py)")
    marker = os.path.join(workdir, "pg-database")
    if os.path.exists(marker):
        with open(marker) as f:
            name = f.read().strip()
    else:
        name = _PG_POOL.pop() if _PG_POOL else None
        if name is None:
            name = "hrtest_" + os.urandom(8).hex()
            _psql('CREATE DATABASE "%s"' % name)
        with open(marker, "w") as f:
            f.write(name)
    return PG_URL + " dbname=" + name  # the last dbname= wins


# Empties a database for reuse: ends what is left of its daemon's sessions (a killed
# daemon's backends may still hold its advisory locks), then deletes every row but the
# schema version's and restarts the identities (delivery and attempt ids start at 1).
# DELETE, not TRUNCATE: on tables this small it is several times faster. As a replica
# would, so that neither the foreign keys nor the triggers act: the tables go in the
# catalogue's order, and sessions before the events that name them failed, so every
# database that had stored an event was dropped (tests/pg/test_pool.py). Its activity
# counters are reset; its planner statistics are not: a test of plans changes its
# database (pg_sql with its url), which is then dropped, never reused. The identity
# columns are read from the catalogue itself: information_schema.columns cost each
# emptying ~11 ms more of the server's time (64 -> 53 ms, 32 of them the connection).
_PG_EMPTY = """SET LOCAL lock_timeout = '10s';
SET LOCAL session_replication_role = replica;
SELECT pg_stat_reset();
SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid();
DO $$ DECLARE t record; BEGIN
 FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public'
   AND tablename <> 'hookrelay_schema' LOOP
  EXECUTE format('DELETE FROM %I', t.tablename);
 END LOOP;
 FOR t IN SELECT c.relname AS table_name, a.attname AS column_name FROM pg_attribute a
   JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'public' AND a.attidentity <> '' AND NOT a.attisdropped LOOP
  PERFORM setval(pg_get_serial_sequence(quote_ident(t.table_name), t.column_name), 1, false);
 END LOOP;
END $$"""


def pg_drop_database(workdir):
    """Done with the database of `workdir`: emptied for the next daemon, or dropped."""
    marker = os.path.join(workdir, "pg-database")
    if BACKEND == "postgresql" and os.path.exists(marker):
        with open(marker) as f:
            name = f.read().strip()
        os.unlink(marker)
        if name not in _PG_TOUCHED:
            try:
                _psql(_PG_EMPTY, PG_URL + " dbname=" + name)
                _PG_POOL.append(name)
                return
            except (hrpg.PgError, OSError):
                pass  # dropped below
        try:
            hrpg.forget(PG_URL + " dbname=" + name)
            _psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        except (hrpg.PgError, OSError):
            pass  # the cluster goes at the end of the run anyway


def db_rows(d, sql):
    """Rows of `sql` (no parameters: literals only) read from daemon d's database,
    either backend, as tuples of Python values (PostgreSQL's through row_to_json)."""
    if BACKEND == "postgresql" and os.path.exists(os.path.join(d.dir, "pg-database")):
        out = _psql("SELECT row_to_json(t) FROM (%s) t" % sql, pg_database(d.dir))
        return [tuple(json.loads(line).values()) for line in out.splitlines() if line]
    import sqlite3
    db = sqlite3.connect("file:%s?mode=ro" % d.db, uri=True, timeout=10)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def db_exec(d, sql):
    """Run a writing `sql` (literals only; several statements may be joined by ;) on
    daemon d's database, either backend."""
    if BACKEND == "postgresql" and os.path.exists(os.path.join(d.dir, "pg-database")):
        pg_sql(sql, pg_database(d.dir))
        return
    import sqlite3
    db = sqlite3.connect(d.db, timeout=10)
    try:
        with db:
            db.executescript(sql)
    finally:
        db.close()


# SQLite: back from schemas 13 and 14 (an event's facet, src/store/sqlite_schema.c), 15
# (a room's status time), 16 (the writer's state), 17 (an acknowledged rejection) and 18
# (a room's links) to 12, and 20 (the ids' high-water marks), for a test that opens an
# older database and sees it migrated forward.
SQLITE_UNDO_FACETS = (
    "DROP TRIGGER rejections_seq; DROP TRIGGER sessions_id;"
    "DROP TABLE room_links; ALTER TABLE events DROP COLUMN linked_room;"
    " DROP INDEX rejections_unacknowledged; ALTER TABLE rejections DROP COLUMN acknowledged;"
    " DROP TABLE store_state;"
    " ALTER TABLE sessions DROP COLUMN status_at; ALTER TABLE sessions DROP COLUMN status_by;"
    " DROP INDEX events_facet; ALTER TABLE events DROP COLUMN facet; DROP TABLE facets;"
    " CREATE INDEX events_source ON events (source, seq);"
    " CREATE INDEX events_provider ON events (provider, seq);"
    " CREATE INDEX events_kind ON events (kind, seq);"
    " CREATE INDEX events_event_type ON events (event_type, seq);"
    " CREATE INDEX events_subtype ON events (subtype, seq) WHERE subtype IS NOT NULL;"
    " CREATE INDEX events_session_key ON events (session_key, seq);"
    " DROP INDEX events_pruned; CREATE INDEX events_source_age ON events (source, received_at);")


def metric(d, name):
    """The value of daemon d's unlabelled metric `name` in /metrics (no API token)."""
    status, _, data = d.request("GET", "/metrics")
    if status != 200:
        raise AssertionError("GET /metrics: %d %r" % (status, data[:200]))
    m = re.search(r"^%s (\S+)$" % re.escape(name), data.decode(), re.M)
    if m is None:
        raise AssertionError("no %s in /metrics" % name)
    return float(m.group(1))


def metric_reaches(d, name, value, timeout=10):
    """Daemon d's unlabelled-or-labelled series `name` once it holds `value`, else what it
    holds after `timeout` seconds (None: not there). An answer is counted once its
    request is complete, on the thread that sent it, which a loaded machine may run after
    the client has read the answer: a counter read right after one may not hold it yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = metric(d, name)
        except AssertionError:
            got = None
        if got == value or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


class PgSession:
    """A psql session beside a daemon, inside a transaction: `sql` has run in it when
    this returns (the locks it took are held), until commit() or rollback(). Give
    close to addCleanup: it ends a session the test did not (a failed test's)."""

    def __init__(self, url, sql, timeout=20):
        self.name = "hrtest-session-" + os.urandom(4).hex()
        self.proc = subprocess.Popen([PSQL, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                     env=dict(os.environ, PGAPPNAME=self.name))
        # Its last statement done and the session idle in its transaction: every one
        # before ran ("idle in transaction" alone is true from BEGIN on).
        self.proc.stdin.write("BEGIN;\n" + sql + "\nSELECT pg_sleep(0);\n")
        self.proc.stdin.flush()
        done = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' AND state"
                " = 'idle in transaction' AND query LIKE 'SELECT pg_sleep(0)%%'" % self.name)
        deadline = time.monotonic() + timeout
        while _psql(done, url).strip() != "1":
            if self.proc.poll() is not None:
                raise AssertionError("the session's SQL failed: " + sql)
            if time.monotonic() > deadline:
                self.close()
                raise AssertionError("the session's SQL did not run in %ds: %s" % (timeout, sql))
            time.sleep(0.02)

    def end(self, command):
        if self.proc.stdin.closed:
            return
        self.proc.stdin.write(command + ";\n")
        self.proc.stdin.close()
        if self.proc.wait(20) != 0:
            raise AssertionError("psql failed at " + command)

    def commit(self):
        self.end("COMMIT")

    def rollback(self):
        self.end("ROLLBACK")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class WritesHeld:
    """Daemon d's writer held from outside until end(): on SQLite by the database's
    write lock (a batch waits at its BEGIN, up to the writer's 5-s busy timeout), on
    PostgreSQL by a lock on `events` (a batch waits at its first event). A write queued
    behind an event posted meanwhile waits with it, on either backend."""

    def __init__(self, d):
        self.d = d
        self.pg = BACKEND == "postgresql" and os.path.exists(os.path.join(d.dir, "pg-database"))
        if self.pg:
            self.url = pg_database(d.dir)
            self.holder = PgSession(self.url, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE;")
        else:
            import sqlite3
            # Waits out a transaction of the writer's own (a watchdog ping's comes
            # every second): with no wait, one under way failed the test (2026-12-05).
            self.lock = sqlite3.connect(d.db, timeout=10)
            self.lock.execute("BEGIN IMMEDIATE")

    def _wait_for(self, condition, timeout=10):
        sql = ("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
               "WHERE c.relname = 'events' AND " + condition)
        deadline = time.monotonic() + timeout
        while _psql(sql, self.url).strip() == "0":
            if time.monotonic() > deadline:
                waiting = _psql("SELECT left(query, 80) FROM pg_stat_activity WHERE"
                                " wait_event_type = 'Lock'", self.url)
                raise AssertionError("no lock on events where %s; waiting: %s"
                                     % (condition, waiting))
            time.sleep(0.02)

    def event_waits(self, timeout=10):
        """Until the writer waits with an event. On SQLite, until it waits in a batch
        (its age in /metrics): any batch waits there, a watchdog's ping too, and an event
        posted meanwhile then waits queued behind it."""
        if self.pg:
            # The writer (its dedup claim or its event's INSERT: only the writer
            # inserts), not any session waiting on `events`: the forwarder's poll
            # (deliveries joined to events) waited there too, before the event had left
            # the queue, and the next webhook then found the queue full (main39c).
            self._wait_for("NOT l.granted AND l.pid IN (SELECT pid FROM pg_stat_activity"
                           " WHERE query LIKE '%INSERT INTO%')", timeout)
            return
        deadline = time.monotonic() + timeout
        while metric(self.d, "hookrelay_writer_batch_age_seconds") <= 0:
            if time.monotonic() > deadline:
                raise AssertionError("the writer is not waiting in a batch")
            time.sleep(0.02)

    def end(self):
        if self.pg:
            self.holder.rollback()
        else:
            self.lock.rollback()
            self.lock.close()


def database_blobs(d):
    """Everything the daemon `d` stored, as {name: bytes}: SQLite's files (database,
    WAL), or a data-only pg_dump of its PostgreSQL database."""
    if BACKEND == "postgresql" and os.path.exists(os.path.join(d.dir, "pg-database")):
        url = pg_database(d.dir)
        dump = subprocess.run([os.environ.get("HR_TEST_PG_DUMP", "pg_dump"), "--data-only", "-d", url],
                              check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
        return {"pg_dump": dump.stdout}
    var, blobs = os.path.dirname(d.db), {}
    for name in os.listdir(var):
        with open(os.path.join(var, name), "rb") as f:
            blobs[name] = f.read()
    return blobs


def with_backend(config, workdir):
    """`config` (formatted) with its [storage] pointed at this run's backend."""
    if BACKEND != "postgresql" or re.search(r"^\s*backend\s*=", config, re.M):
        return config  # a test that names its backend keeps it
    url = pg_database(workdir)
    lines = "backend = postgresql\nurl = %s\n" % url
    if re.search(r"^\[storage\]\s*$", config, re.M):
        return re.sub(r"^\[storage\]\s*$", "[storage]\n" + lines.rstrip("\n"), config, count=1, flags=re.M)
    return config + "\n[storage]\n" + lines


def payload(name):
    with open(os.path.join(PAYLOADS, name), "rb") as f:
        return f.read()


def payload_names():
    return sorted(n for n in os.listdir(PAYLOADS) if n.endswith(".json"))


# Daemon(listen_fd=, pid_env=): argv = FD NAMES COMMAND...; runs COMMAND in this process.
_AS_SYSTEMD = """
import os, sys
fd, names, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
if fd >= 0:
    if fd != 3:
        os.dup2(fd, 3)
        os.close(fd)
    os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
for name in filter(None, names.split(",")):
    os.environ[name] = str(os.getpid())
os.execvp(argv[0], argv)
"""


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# The daemons started and not cleaned up yet: a failing test shows their logs.
_LIVE = weakref.WeakSet()


def _showing_daemon_logs(add):
    """TestResult.addFailure / addError, then the end of each live daemon's log on
    stderr (ctest --output-on-failure keeps it): a CI failure is then explained by what
    the daemon said, not only by the assertion. Python 3.11 reports a failure when it
    happens, before tearDown stops the daemons."""
    def wrapper(self, test, err):
        add(self, test, err)
        for d in list(_LIVE):
            try:
                log = d.log()
            except OSError:
                continue
            sys.stderr.write("\n---- %s: the end of the log of the daemon in %s\n%s\n"
                             % (test.id(), d.dir, log[-4000:]))
    return wrapper


unittest.TestResult.addFailure = _showing_daemon_logs(unittest.TestResult.addFailure)
unittest.TestResult.addError = _showing_daemon_logs(unittest.TestResult.addError)


class _Unclosed:
    """A file whose close() leaves it open: HTTPResponse closes its reader once an
    answer is read, and the next answer of the connection comes from the same one."""

    def __init__(self, f):
        self._f = f

    def __getattr__(self, name):
        return getattr(self._f, name)

    def close(self):
        pass


class Daemon:
    """A hookrelay process with its own config and database directory."""

    def __init__(self, config=DEFAULT_CONFIG, workdir=None, extra_args=(), env=None,
                 listen_fd=None, pid_env=(), wrapper=()):
        self.owns_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="hrtest-")
        self.db = os.path.join(self.dir, "var", "hookrelay.db")
        self.config_path = os.path.join(self.dir, "hookrelay.conf")
        self.config_text = with_backend(config.format(db=self.db, dir=self.dir), self.dir)
        with open(self.config_path, "w") as f:
            f.write(self.config_text)
        self.extra_args = list(extra_args)
        # Extra environment variables (e.g. CREDENTIALS_DIRECTORY); None as a value unsets one.
        self.env = dict(env or {})
        # As systemd starts a service: listen_fd (a listening socket of the test) becomes
        # fd 3 with LISTEN_FDS=1, and LISTEN_PID and each of pid_env (e.g. WATCHDOG_PID)
        # hold the daemon's own PID.
        self.listen_fd = listen_fd
        self.pid_env = list(pid_env)
        # A command the daemon's command line is handed to, which execs it (its pid stays).
        self.wrapper = list(wrapper)
        self.proc = None
        self.port = None
        # The daemon's stderr goes to a file, not a pipe: its write(2) of a line is
        # done before it sends the answer that follows the line, so a read of the file
        # once the answer is in holds the line. (A pipe read by a thread did not: the
        # line could still be on its way; test_forward's DaemonLogTest.)
        self.log_path = None
        self._log_from = 0  # clear_log(): what came before is not log()'s
        self._log_kept = None  # the file's bytes, kept by cleanup() for log()
        # request() without a connection of the caller's: one keep-alive connection a
        # thread, opened again when the daemon closed it (see _kept_conn).
        self._kept = threading.local()
        self._kept_all = []
        self._kept_lock = threading.Lock()

    def start(self):
        _LIVE.add(self)
        cmd = self.wrapper + [BIN, "-c", self.config_path] + self.extra_args
        if VALGRIND:
            cmd = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite,indirect"] + cmd
        if self.listen_fd is not None or self.pid_env:
            cmd = [sys.executable, "-c", _AS_SYSTEMD, str(-1 if self.listen_fd is None else self.listen_fd),
                   ",".join(self.pid_env)] + cmd
        env = dict(os.environ)
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        if self.log_path is None:
            # Not in self.dir, which another Daemon of the same workdir may remove.
            fd, self.log_path = tempfile.mkstemp(prefix="hrtest-stderr-", suffix=".log")
            os.close(fd)
            weakref.finalize(self, _unlink_quietly, self.log_path)
        started_at = os.path.getsize(self.log_path)  # a restart: this start's lines only
        with open(self.log_path, "ab") as err:  # O_APPEND: whole lines, in order
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=err, env=env,
                                         pass_fds=() if self.listen_fd is None else (self.listen_fd,))
        deadline = time.monotonic() + START_TIMEOUT * (5 if VALGRIND else 1)
        while True:
            m = re.search(r"listening on (?:\[[^\]]*\]|[^\s:]+):(\d+)",
                          self._read_log(started_at))
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hookrelay did not start:\n" + self.log())
            time.sleep(0.02)

    def _read_log(self, start):
        if self._log_kept is not None:  # after cleanup(), which removed the file
            return self._log_kept[start:].decode("utf-8", "replace")
        if self.log_path is None:
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")

    def log(self):
        """What the daemon wrote to stderr (each start's, in order), without the
        last newline."""
        text = self._read_log(self._log_from)
        return text[:-1] if text.endswith("\n") else text

    def clear_log(self):
        """From now on, log() holds only what comes after."""
        self._log_from = os.path.getsize(self.log_path) if self.log_path else 0

    def wait_log(self, text, timeout=10):
        """The log lines holding `text`, once there is one or after `timeout` seconds:
        for a line the daemon writes on its own time, not before an answer."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [l for l in self.log().splitlines() if text in l]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def reload(self, timeout=10):
        """SIGHUP, and wait until the log has one more "reload: " line (the swap's)."""
        before = self.log().count("reload: ")
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log().count("reload: ") == before:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("no reload in the log:\n" + self.log())
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop by PID; returns the exit status (negative for a signal)."""
        self.close_kept()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        _LIVE.discard(self)
        self.stop()
        if self.log_path is not None and self._log_kept is None:
            with open(self.log_path, "rb") as f:
                self._log_kept = f.read()
            _unlink_quietly(self.log_path)
        if self.owns_dir:
            pg_drop_database(self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP ----
    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def _kept_conn(self):
        """This thread's keep-alive connection to the daemon. A connection a request
        cost the suite about three times the request's processor time (2026-12-07:
        300 webhooks, 0.28 s of the sanitizer daemon's on a connection each, 0.08-0.11
        s on one). One the daemon closed (an idle connection's timeout, an answer's
        `Connection: close`, a restart) is not used again: before each request, a
        connection with something to read (its end) is replaced, and so is one idle for
        KEPT_IDLE: the daemon's sweep of idle connections (header_timeout, 1 s at the
        least) could close it between that look and the request (a review: 15 GETs of
        300 sent just at a sweep failed, RemoteDisconnected)."""
        with self._kept_lock:
            # A thread's connection ends with the thread: it would hold one of the
            # daemon's connections (max_connections_per_ip) until stop().
            for _, gone in [k for k in self._kept_all if not k[0].is_alive()]:
                gone.close()
            self._kept_all = [k for k in self._kept_all if k[0].is_alive()]
        c = getattr(self._kept, "conn", None)
        if c is not None and (c.port != self.port or time.monotonic() - c.hr_used > KEPT_IDLE or
                              (c.sock is not None and _readable(c.sock))):
            c.close()
            c = None
        if c is None:
            c = self._kept.conn = self.conn()
            with self._kept_lock:
                self._kept_all.append((threading.current_thread(), c))
        c.hr_used = time.monotonic()
        return c

    def close_kept(self):
        """Close the kept connections of every thread (before a stop or a restart, and
        for a test that needs the daemon to have none open)."""
        with self._kept_lock:
            kept, self._kept_all = self._kept_all, []
        for _, c in kept:
            c.close()
        self._kept = threading.local()

    def request(self, method, path, body=None, headers=None, conn=None):
        """Returns (status, headers dict lower-cased, body bytes). On `conn`, else on
        this thread's keep-alive connection (_kept_conn)."""
        own = conn is None
        c = conn or self._kept_conn()
        hdrs = dict(headers or {})
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        elif (method not in ("GET", "HEAD") and path.startswith("/v1/")
              and "Content-Type" not in hdrs):
            # As hookctl and the web inspector do: the API refuses a state-changing
            # request without a JSON type or a bearer token (CSRF, docs/security.md).
            hdrs["Content-Type"] = "application/json"
        hdrs = {k: v for k, v in hdrs.items() if v is not None}  # None: leave the header out
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            if own:
                c.hr_used = time.monotonic()  # idle from the end of its answer
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        except BaseException:
            if own:
                c.close()  # not in a state to be used again
            raise

    def post(self, body, source="default", headers=None, conn=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        return self.request("POST", "/hooks/" + source, body, headers, conn)

    def get_json(self, path, headers=None):
        status, hdrs, data = self.request("GET", path, headers=headers)
        return status, (json.loads(data) if data else None)

    def raw(self, data, timeout=10, method="POST"):
        """Send `data` (bytes: a whole hand-written request) on a fresh socket and
        read one response: (status, headers dict lower-cased, body bytes)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            if data:
                s.sendall(data)
            r = http.client.HTTPResponse(s, method=method)
            r.begin()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            s.close()

    def pipelined(self, data, methods, timeout=10):
        """Send `data` (several hand-written requests at once) on a fresh socket and
        read one response for each of `methods`: [(status, headers dict lower-cased,
        body bytes)]. One buffered reader for all of them: an HTTPResponse per answer,
        each with a reader of its own, loses what the first read ahead (an answer that
        came in the same segment), and its caller waits for an answer already read."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        reader = s.makefile("rb")

        class OneReader:  # what HTTPResponse takes for a socket: only makefile() is used
            def makefile(self, *args, **kwargs):
                return _Unclosed(reader)
        try:
            s.sendall(data)
            answers = []
            for method in methods:
                r = http.client.HTTPResponse(OneReader(), method=method)
                r.begin()
                body = r.read()
                answers.append((r.status, {k.lower(): v for k, v in r.getheaders()}, body))
            return answers
        finally:
            reader.close()
            s.close()

    def paged(self, path, member, limit=None, headers=None):
        """Every item of a paged listing, following next_cursor (bounded)."""
        items, cursor = [], None
        for _ in range(10000):
            sep = "&" if "?" in path else "?"
            q = path
            if limit is not None:
                q += sep + "limit=%d" % limit
                sep = "&"
            if cursor is not None:
                q += sep + "cursor=" + cursor
            status, doc = self.get_json(q, headers=headers)
            if status != 200:
                raise AssertionError("GET %s: %d %r" % (q, status, doc))
            items.extend(doc[member])
            cursor = doc["next_cursor"]
            if cursor is None:
                return items
        raise AssertionError("GET %s: paging did not end" % path)


def payload_json(name):
    return json.loads(payload(name))


def dumps(doc):
    return json.dumps(doc).encode()


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on now, for a test that must name
    its port before the daemon starts. Taken below the kernel's ephemeral range: a port
    from bind(0) is ephemeral, and until the daemon binds it any connect() or port-0
    listener of the suite's other processes could take it ("Address already in use",
    seen once in a full run)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    if low > 20000:
        for port in random.sample(range(10000, low), 100):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as s:  # no room below the range, or all taken: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_id(prefix="", n=15):
    """`prefix` + n random hex digits, e.g. a Tavus conversation_id fresh_id("c")."""
    return prefix + os.urandom(n).hex()[:n]


def config_with(server="", storage="", sections=""):
    """DEFAULT_CONFIG with extra [server] and [storage] lines and extra sections appended."""
    for anchor in ("listen = 127.0.0.1:0\n", "path = {db}\n"):
        assert anchor in DEFAULT_CONFIG, "config_with() needs %r in DEFAULT_CONFIG" % anchor
    cfg = DEFAULT_CONFIG.replace("listen = 127.0.0.1:0\n", "listen = 127.0.0.1:0\n" + server + "\n", 1)
    cfg = cfg.replace("path = {db}\n", "path = {db}\n" + storage + "\n", 1)
    return cfg + sections


def hold_descriptors(test, n):
    """Open `n` descriptors for the rest of `test` (the limit raised to 2048, or the
    test skipped where the hard limit is lower), so the next ones are numbered past
    them: select() refuses a descriptor past 1023."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        test.skipTest("the descriptor limit is %d" % hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
    test.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(n)]
    test.addCleanup(lambda: [os.close(fd) for fd in held])


def sanitizer_reports(log):
    """Lines that show a sanitizer found something."""
    return [l for l in log.splitlines()
            if "ERROR: AddressSanitizer" in l or "runtime error:" in l
            or "ERROR: LeakSanitizer" in l or "WARNING: ThreadSanitizer" in l]


class DaemonTest(unittest.TestCase):
    """A test case with one daemon started per test (self.d)."""

    config = DEFAULT_CONFIG

    # ---- assertions shared by the integration tests ----
    def assertProblem(self, resp, status, slug=None, msg=None):
        """`resp` is (status, headers, body): an RFC 9457 problem with `status`.
        Returns the problem document."""
        got, hdrs, body = resp
        ctx = "%s: %d %r" % (msg or "request", got, body[:500])
        self.assertEqual(got, status, ctx)
        self.assertTrue(hdrs.get("content-type", "").startswith("application/problem+json"),
                        "content type %r; %s" % (hdrs.get("content-type"), ctx))
        doc = json.loads(body)
        self.assertEqual(doc.get("status"), status, ctx)
        self.assertTrue(doc.get("type", "").startswith("urn:hookrelay:problem:"), ctx)
        if slug is not None:
            self.assertEqual(doc["type"], "urn:hookrelay:problem:" + slug, ctx)
        self.assertIn("title", doc, ctx)
        return doc

    def assertOk(self, resp, msg=None):
        """A 200 JSON answer; returns the decoded body."""
        got, hdrs, body = resp
        self.assertEqual(got, 200, "%s: %d %r" % (msg or "request", got, body[:500]))
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), hdrs)
        return json.loads(body)

    def assertHealthy(self, d=None):
        status, doc = (d or self.d).get_json("/healthz")
        self.assertEqual(status, 200, doc)
        self.assertEqual(doc["status"], "ok")

    def post_ok(self, body, source="default", d=None, headers=None):
        """POST a webhook that must be accepted; returns the answer document."""
        return self.assertOk((d or self.d).post(body, source, headers=headers), "POST /hooks/" + source)

    def get_ok(self, path, d=None, headers=None):
        return self.assertOk((d or self.d).request("GET", path, headers=headers), "GET " + path)

    def setUp(self):
        self.d = Daemon(self.config)
        try:
            self.d.start()
        except BaseException:
            self.d.cleanup()  # tearDown does not run when setUp fails
            raise

    def tearDown(self):
        rc = self.d.stop()
        log = self.d.log()
        self.d.cleanup()
        self.assertEqual(rc, 0, "hookrelay did not exit cleanly:\n" + log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)
        self.assertEqual(sanitizer_reports(log), [], log)


class SharedDaemonTest(DaemonTest):
    """A test class whose tests share one daemon (self.d), started once for the class:
    a sanitizer build's daemon takes ~0.35 s to start and stop alone and several times
    that beside the rest of CI's run, paid by every test of a DaemonTest.

    For tests that want the same configuration and no pristine database: each makes its
    own rows (fresh ids, keys, bodies) and reads back those alone, so the tests of a class
    pass in any order. log() holds the lines of the running test only. A test that needs
    a daemon of its own stays a DaemonTest: a restart, a database changed under the
    daemon, counts of every row, totals of /metrics or /healthz, what a daemon says once
    in its life, or a source's refusal lines past the burst its log allows (ratelimit.h:
    20, then 1 a second; the tests of a class together stay under it).

    After each test the daemon still runs and its lines hold no sanitizer report; after
    the class it exits cleanly (LeakSanitizer looks at its exit) and its whole log holds
    none. make_daemon() builds the class's Daemon, unstarted (secret files, env)."""

    @classmethod
    def make_daemon(cls):
        return Daemon(cls.config)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.d = cls.make_daemon()
        try:
            cls.d.start()
        except BaseException:
            cls.d.cleanup()  # tearDownClass does not run when setUpClass fails
            raise

    @classmethod
    def tearDownClass(cls):
        d = cls.d
        rc = d.stop()
        d._log_from = 0  # the whole log, every test's lines
        log = d.log()
        d.cleanup()
        super().tearDownClass()
        if rc != 0 or sanitizer_reports(log):
            raise AssertionError("hookrelay (shared by %s) did not exit cleanly (%r):\n%s"
                                 % (cls.__name__, rc, log))

    def setUp(self):
        if self.d.proc is None or self.d.proc.poll() is not None:
            raise AssertionError("the daemon of %s is gone:\n%s" % (type(self).__name__,
                                                                   self.d.log()))
        self.d.close_kept()  # no connection of an earlier test's
        self.d.clear_log()

    def tearDown(self):
        log = self.d.log()
        self.assertIsNone(self.d.proc.poll(), "hookrelay exited during the test:\n" + log)
        self.assertEqual(sanitizer_reports(log), [], log)
