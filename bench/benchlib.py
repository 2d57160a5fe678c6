"""benchlib - shared pieces of the bench/ scripts: start hookrelay, nginx and adnanh/webhook
on free loopback ports, drive wrk, parse its output, read /metrics and /proc, describe the
machine, print a table. Standard library only.

Every server started here is stopped, and every directory made with tempdir() removed, when
the script exits: normally, on an exception, on Ctrl-C, or on SIGTERM/SIGHUP (turned into
SystemExit by cleanup_on_signals(), which the scripts call first)."""

import atexit
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("HOOKRELAY_BIN", os.path.join(ROOT, "build", "hookrelay"))
PAYLOADS = os.path.join(ROOT, "tests", "payloads")
TRANSCRIPTION_READY = os.path.join(PAYLOADS, "tavus.conversation.application.transcription_ready.json")

# ---- cleanup ----

_live = []      # servers not yet stopped
_tempdirs = []  # directories to remove at exit


def _cleanup():
    for server in list(reversed(_live)):
        try:
            server.stop()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"cleanup: {e}", file=sys.stderr)
    for d in _tempdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def cleanup_on_signals():
    """SIGTERM and SIGHUP exit through SystemExit, so finally blocks and atexit run."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)


def tempdir(prefix="hrbench-", dir=None):
    """A directory removed when the script exits."""
    d = tempfile.mkdtemp(prefix=prefix, dir=dir)
    _tempdirs.append(d)
    return d


def _stop_process(proc, sig, timeout):
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(cmd, package):
    if shutil.which(cmd) is None:
        raise SystemExit(f"{cmd} not found: apt-get install {package}")


def wait_port(port, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


# ---- servers ----

class Hookrelay:
    """`source_config` lines go into [source default]; `extra_config` follows it
    (more sections); `server_config` lines go into [server]. The database is self.db
    (or `db`, which is kept at stop()) until stop(). Per-address connection limits are
    off so that wrk may open hundreds of connections from 127.0.0.1.

    With watch_start, stderr is read until the "listening on" line: self.startup_s is
    the time from exec to that line (log level info is then forced).

    `wrapper` is a command the daemon runs under (bench/profile: valgrind), `env` extra
    environment variables for it."""

    def __init__(self, extra_config="", threads=1, source_config="", server_config="",
                 db=None, log_level="warning", watch_start=False, timeout=60.0, wrapper=(),
                 env=None, storage_config=""):
        if not os.access(BIN, os.X_OK):
            raise SystemExit(f"{BIN} not found: build it (docs/benchmarks.md) or set HOOKRELAY_BIN")
        self.dir = tempfile.mkdtemp(prefix="hrbench-")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "hookrelay.conf")
        self.db = db or os.path.join(self.dir, "hookrelay.db")
        self.startup_s = None
        if watch_start:
            log_level = "info"
        with open(self.conf, "w") as f:
            f.write(f"[server]\nlisten = 127.0.0.1:{self.port}\nthreads = {threads}\n"
                    f"max_connections = 4096\nmax_connections_per_ip = 0\n{server_config}"
                    f"[storage]\npath = {self.db}\n{storage_config}"
                    f"[log]\nlevel = {log_level}\n[source default]\nprovider = auto\n{source_config}"
                    f"\n{extra_config}")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([*wrapper, BIN, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE if watch_start else None, text=True,
                                     env=dict(os.environ, **env) if env else None)
        _live.append(self)
        try:
            if watch_start:
                self._watch(t0, timeout)
            wait_port(self.port, timeout=timeout, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    def _watch(self, t0, timeout):
        got = threading.Event()

        def reader():
            for line in self.proc.stderr:
                if not got.is_set() and "listening on" in line:
                    self.startup_s = time.monotonic() - t0
                    got.set()
                elif not line.startswith("<6>"):
                    sys.stderr.write(line)  # warnings and errors stay visible
            got.set()
        threading.Thread(target=reader, daemon=True).start()
        if not got.wait(timeout) or self.startup_s is None:
            raise RuntimeError("hookrelay did not log 'listening on'")

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path="/hooks/default"):
        return f"http://127.0.0.1:{self.port}{path}"

    def metrics(self):
        return read_metrics(self.url("/metrics"))

    def stop(self):
        if self in _live:
            _live.remove(self)
        _stop_process(self.proc, signal.SIGTERM, 60)
        shutil.rmtree(self.dir, ignore_errors=True)  # with the database unless `db` was given


class PgCluster:
    """A throwaway PostgreSQL cluster (tests/pg/pgcluster.py: Unix socket only, as `nobody`
    when root, durable commits), for hookrelay's postgresql backend; one database per
    createdb(). `pid` is the postmaster's: its process tree holds every backend."""

    def __init__(self):
        sys.path.insert(0, os.path.join(ROOT, "tests", "pg"))
        import pgcluster
        self._pg = pgcluster
        self.dir = tempfile.mkdtemp(prefix="hrbench-pg-", dir="/tmp")
        self._pg.start(self.dir)
        _live.append(self)
        self.n = 0
        self.relays = []

    @property
    def pid(self):
        with open(os.path.join(self.dir, "data", "postmaster.pid")) as f:
            return int(f.readline())

    def createdb(self):
        self.n += 1
        return self._pg.createdb(self.dir, f"bench{self.n}")

    def relayed(self, url, latency):
        """`url` (of createdb()) through a relay that delays each of the server's answers
        by `latency` seconds, like a network (tests/pg/pgrelay.py); stopped with the
        cluster."""
        import pgrelay
        relay = pgrelay.TcpRelay(os.path.join(self.dir, "sock", f".s.PGSQL.{self._pg.PORT}"),
                                 latency=latency)
        self.relays.append(relay)
        dbname = url.rsplit("dbname=", 1)[1]
        return f"host=127.0.0.1 port={relay.port} user={self._pg.SUPERUSER} dbname={dbname}"

    def stop(self):
        if self in _live:
            _live.remove(self)
        for relay in self.relays:
            relay.close()
        self._pg.stop(self.dir)


class HookrelayNodes:
    """`nodes` hookrelay daemons sharing one new database of `cluster` (backend =
    postgresql), each on its own port; the same arguments as Hookrelay otherwise."""

    def __init__(self, cluster, nodes=1, **kw):
        url = cluster.createdb()
        self.nodes = []
        try:
            for _ in range(nodes):
                self.nodes.append(Hookrelay(storage_config=f"backend = postgresql\nurl = {url}\n", **kw))
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self):
        return [n.pid for n in self.nodes]

    def stop(self):
        for n in self.nodes:
            n.stop()


class Nginx:
    """nginx answering `return 200` to every request: the HTTP ceiling on this machine."""

    def __init__(self, workers=1):
        need("nginx", "nginx-light")
        self.dir = tempfile.mkdtemp(prefix="hrbench-nginx-")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""worker_processes {workers};
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {self.dir};
  client_max_body_size 8m;
  server {{
    listen 127.0.0.1:{self.port};
    location / {{ client_body_buffer_size 2m; return 200 '{{"ok":true}}'; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir],
                                     stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _live.append(self)
        try:
            wait_port(self.port, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path="/hooks/default"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self in _live:
            _live.remove(self)
        _stop_process(self.proc, signal.SIGQUIT, 10)
        shutil.rmtree(self.dir, ignore_errors=True)


MHD_BARE = os.environ.get("HR_MHD_BARE_BIN", os.path.join(os.path.dirname(BIN), "hr_mhd_bare"))

# bench/mhd_bare.c configurations, by server name. "mhd" is the bare server (one
# internal epoll thread, MHD_USE_TURBO, reads the body, answers 200); "mhd-suspend" also
# suspends every request and resumes it from a second thread, as hookrelay's writer does.
# The "mhd-hr" ones run with hookrelay's own MHD flags and options (src/http/http.c); the others
# reproduce earlier measurements (docs/benchmarks.md, "The HTTP ceiling").
MHD_VARIANTS = {
    "mhd": [],
    "mhd-suspend": ["--suspend"],
    "mhd-hr": ["--hookrelay"],
    "mhd-hr-suspend": ["--hookrelay", "--suspend"],
    "mhd-2threads": ["--threads", "2"],
    "mhd-2threads-suspend": ["--threads", "2", "--suspend"],
    "mhd-select": ["--poll", "select"],
    "mhd-per-connection": ["--poll", "per-connection"],
    "mhd-early": ["--answer-early"],
    # The least durable receiver on the mandated stack: jansson's parse on the HTTP
    # thread, a one-table insert per body, a transaction per batch, 200 after COMMIT.
    "mhd-receiver": ["--hookrelay", "--receiver", "{db}"],
    "mhd-receiver-2threads": ["--hookrelay", "--receiver", "{db}", "--threads", "2"],
}


class MhdBare:
    """bench/mhd_bare.c (CMake target hr_mhd_bare, found next to hookrelay or at
    $HR_MHD_BARE_BIN): libmicrohttpd alone, reading the body and answering 200; `variant`
    is a key of MHD_VARIANTS."""

    def __init__(self, variant="mhd", threads=1):
        if not os.access(MHD_BARE, os.X_OK):
            raise SystemExit(f"{MHD_BARE} not found: cmake --build the tree of hookrelay with "
                             f"--target hr_mhd_bare, or set HR_MHD_BARE_BIN")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="hrbench-mhd-")  # --receiver's database
        args = [a.replace("{db}", os.path.join(self.dir, "db")) for a in MHD_VARIANTS[variant]]
        if threads > 1 and "--threads" not in args and "per-connection" not in args:
            args += ["--threads", str(threads)]
        self.proc = subprocess.Popen([MHD_BARE, "--port", str(self.port), *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        _live.append(self)
        try:
            wait_port(self.port, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path="/hooks/default"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self in _live:
            _live.remove(self)
        _stop_process(self.proc, signal.SIGTERM, 10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Webhook:
    """adnanh/webhook (Debian package `webhook`) with one hook, `default`, that runs
    /bin/true and answers 200 at once: include-command-output-in-response is false, so
    webhook starts the command in the background and does not wait for it. It still
    reads the whole body and parses it as JSON (Content-Type: application/json).
    `procs` sets GOMAXPROCS (Go threads running at once; default: every CPU)."""

    def __init__(self, procs=None):
        need("webhook", "webhook")
        self.dir = tempfile.mkdtemp(prefix="hrbench-webhook-")
        self.port = free_port()
        hooks = os.path.join(self.dir, "hooks.json")
        with open(hooks, "w") as f:
            json.dump([{"id": "default", "execute-command": "/bin/true",
                        "command-working-directory": self.dir,
                        "include-command-output-in-response": False,
                        "success-http-response-code": 200,
                        "response-message": '{"ok":true}',
                        "http-methods": ["POST"]}], f)
        self.proc = subprocess.Popen(["webhook", "-hooks", hooks, "-port", str(self.port),
                                      "-ip", "127.0.0.1"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, GOMAXPROCS=str(procs)) if procs else None)
        _live.append(self)
        try:
            wait_port(self.port, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def url(self, path="/hooks/default"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        if self in _live:
            _live.remove(self)
        _stop_process(self.proc, signal.SIGTERM, 10)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- wrk ----

def wrk_post_script(body_path, directory):
    """A wrk Lua script POSTing the file at body_path as JSON."""
    path = os.path.join(directory, "post.lua")
    with open(path, "w") as f:
        f.write(f"""wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body_path}", "rb")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  io.write(string.format("LAT %d %d %d %d\\n", latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), summary.errors.status + summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("MEAN %d\\n", latency.mean))
  io.write(string.format("REQ %d %d %d\\n", summary.requests, summary.errors.status,
    summary.errors.timeout))
end
""")
    return path


def run_wrk(url, script, connections, seconds, threads=1, timeout=None):
    """Returns parse_wrk()'s dict for `connections` kept-alive connections. `timeout`
    (seconds) is wrk's per-request timeout (its default: 2 s; a request over it is an
    error and is missing from the latency percentiles)."""
    need("wrk", "wrk")
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", script]
    if timeout is not None:
        cmd += ["--timeout", f"{timeout}s"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True,
                         timeout=seconds + 60 + (timeout or 0)).stdout
    return parse_wrk(out, connections)


def parse_wrk(out, connections):
    """wrk's output with wrk_post_script()'s lines -> dict rps, p50_ms, p99_ms, p999_ms,
    errors; requests (completed), non2xx, timeouts; and busy: how many of the
    `connections` had a request in the server on average (Little's law: req/s times the
    mean latency). In a closed loop that is all of them; far fewer means requests sat
    unanswered for most of the run (a server stall, as libmicrohttpd 0.9.75's epoll loop
    with more than 128 busy connections: docs/benchmarks.md), so req/s is then not what
    the server can do."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p99, p999, errors = (int(x) for x in re.search(r"LAT (\d+) (\d+) (\d+) (\d+)", out).groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    req = re.search(r"REQ (\d+) (\d+) (\d+)", out)
    mean = re.search(r"MEAN (\d+)", out)
    r = {"rps": rps, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "p999_ms": p999 / 1000,
         "errors": errors + (int(non2xx.group(1)) if non2xx else 0)}
    if req:
        r.update(requests=int(req.group(1)), non2xx=int(non2xx.group(1)) if non2xx else 0,
                 timeouts=int(req.group(3)))
    if mean:
        r["busy"] = min(float(connections), rps * int(mean.group(1)) / 1e6)
    return r


def stalled(r, connections):
    """Did fewer than half the connections have a request in the server (parse_wrk's busy)?"""
    return r.get("busy", connections) < connections / 2


# ---- /metrics ----

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def read_metrics(url, timeout=10):
    """Prometheus text -> {"name{labels}": value}."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def batch_delta(before, after):
    """Mean hookrelay_commit_batch_size and commits between two read_metrics() snapshots."""
    n = after.get("hookrelay_commit_batch_size_count", 0) - before.get("hookrelay_commit_batch_size_count", 0)
    s = after.get("hookrelay_commit_batch_size_sum", 0) - before.get("hookrelay_commit_batch_size_sum", 0)
    return {"commits": n, "jobs": s, "mean_batch": s / n if n else float("nan")}


def accepted_delta(before, after, source=None):
    """hookrelay_requests_total answered 200 between two snapshots (optionally one source)."""
    def total(m):
        return sum(v for k, v in m.items() if k.startswith("hookrelay_requests_total{")
                   and 'status="200"' in k and (source is None or f'source="{source}"' in k))
    return total(after) - total(before)


# ---- the database ----

class CommitWatch:
    """Polls max(events.seq) of a hookrelay database from a read-only connection every
    `interval` s while in a `with` block; max_gap_s is then the longest time no new event
    was committed (from the first commit seen to the end of the block). A stall of the
    daemon under load shows here when the load generator has nothing to report."""

    def __init__(self, db, interval=0.05):
        self.db, self.interval = db, interval
        self.max_gap_s = 0.0
        self._stop = threading.Event()

    def _run(self):
        import sqlite3
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5, check_same_thread=False)
        last, since = None, None
        try:
            while not self._stop.is_set():
                try:
                    n = con.execute("SELECT max(seq) FROM events").fetchone()[0]
                except sqlite3.Error:
                    n = last
                now = time.monotonic()
                if n != last:
                    if since is not None and last is not None:
                        self.max_gap_s = max(self.max_gap_s, now - since)
                    last, since = n, now
                elif since is not None and last is not None:
                    self.max_gap_s = max(self.max_gap_s, now - since)
                self._stop.wait(self.interval)
        finally:
            con.close()

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


# ---- /proc ----

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()  # fields from 3 (state) on


def process_tree(pid):
    """pid and its descendants (nginx's workers, webhook's commands)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(_stat_fields(d)[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid):
    """utime + stime of pid and its live descendants, plus the children pid has reaped
    (cutime + cstime), in seconds. Differences over a run are the CPU the run cost."""
    total = 0
    for i, p in enumerate(process_tree(pid)):
        try:
            f = _stat_fields(p)
        except OSError:
            continue
        total += int(f[11]) + int(f[12])  # utime, stime
        if i == 0:
            total += int(f[13]) + int(f[14])  # cutime, cstime
    return total / _TICK


def rss_kib(pid, tree=True):
    """{"rss": VmRSS, "hwm": VmHWM} in KiB, summed over the process tree when tree."""
    out = {"rss": 0, "hwm": 0}
    for p in (process_tree(pid) if tree else [pid]):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out["rss"] += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        out["hwm"] += int(line.split()[1])
        except OSError:
            pass
    return out


# ---- bodies ----

_TURNS = [
    ("user", "I have been working on a recommendation system for an online bookshop, mostly "
             "collaborative filtering with some content features mixed in."),
    ("assistant", "That sounds like a great project. What was the hardest part: the cold-start "
                  "problem, or evaluating the recommendations offline?"),
    ("user", "Definitely evaluation. Offline metrics looked good but click-through in the A/B "
             "test barely moved, so we had to rethink what we were optimising."),
    ("assistant", "That happens a lot. Did you end up changing the objective, or the way you "
                  "sampled negatives for training?"),
]


def transcription_ready_body(size):
    """A valid tavus transcription_ready body of exactly `size` bytes (at least the
    example's 1014), grown by adding transcript turns to the example; bytes."""
    with open(TRANSCRIPTION_READY) as f:
        doc = json.load(f)
    base = doc["properties"]["transcript"]

    def render(n, pad=0):
        turns = [dict(t) for t in base]
        for i in range(n):
            role, content = _TURNS[i % len(_TURNS)]
            turns.append({"role": role, "content": f"[{i}] {content}"})
        turns[-1]["content"] += "x" * pad
        doc["properties"]["transcript"] = turns
        return json.dumps(doc, indent=2).encode()

    smallest = len(render(0))
    if size < smallest:
        raise ValueError(f"a transcription_ready body is at least {smallest} bytes")
    per_turn = (len(render(8)) - smallest) / 8
    n, length = 0, smallest
    for _ in range(10):  # turns grow a little as their index does: converge on n
        step = int((size - length) / per_turn)
        if step == 0:
            break
        n = max(0, n + step)
        length = len(render(n))
    while n > 0 and len(render(n)) > size:
        n -= 1
    while len(render(n + 1)) <= size:
        n += 1
    text = render(n, size - len(render(n)))  # pad the last turn: ASCII, one byte each
    assert len(text) == size
    return text


def parse_size(s):
    """'1k', '64KiB', '1m', '1048576' -> bytes."""
    m = re.fullmatch(r"(\d+)\s*([kKmM]?)(i?[bB])?", s.strip())
    if not m:
        raise ValueError(f"bad size {s!r}")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]


def format_size(n):
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


# ---- the machine ----

def _first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def build_type(binary=None):
    """CMAKE_BUILD_TYPE of the build tree holding the binary, or '?'."""
    d = os.path.dirname(os.path.abspath(binary or BIN))
    for cache in (os.path.join(d, "CMakeCache.txt"), os.path.join(d, "..", "CMakeCache.txt")):
        try:
            with open(cache) as f:
                m = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", f.read(), re.M)
            # An empty cache entry: CMakeLists.txt picks RelWithDebInfo.
            return (m.group(1) or "RelWithDebInfo") if m else "?"
        except OSError:
            continue
    return "?"


def warn_debug_build(binary=None):
    bt = build_type(binary)
    if bt == "Debug":
        print(f"warning: {binary or BIN} is a Debug build (-O0): numbers will be low; build "
              f"one with cmake -S . -B build-bench && cmake --build build-bench and set "
              f"HOOKRELAY_BIN=build-bench/hookrelay", file=sys.stderr)
    return bt


def disk_of(path):
    """'vda (vendor 0x1af4, rotational=1, ext4, 252 GiB)': the block device holding path."""
    try:
        dev = os.stat(path).st_dev
        sysdir = os.path.realpath(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
        name = os.path.basename(sysdir)
        base = sysdir if os.path.exists(os.path.join(sysdir, "queue")) else os.path.dirname(sysdir)

        def read(*p):
            try:
                with open(os.path.join(base, *p)) as f:
                    return f.read().strip()
            except OSError:
                return ""
        model = read("device", "model") or (f"vendor {read('device', 'vendor')}"
                                            if read("device", "vendor") else "")
        fstype, best = "?", ""
        real = os.path.realpath(path)
        with open("/proc/mounts") as f:
            for line in f:
                mnt, fs = line.split()[1:3]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                    best, fstype = mnt, fs
        size = shutil.disk_usage(path).total / (1 << 30)
        return (f"{name} ({model + ', ' if model else ''}rotational={read('queue', 'rotational')}, "
                f"{fstype}, {size:.0f} GiB)")
    except OSError:
        return "?"


def machine(path=None):
    """A dict describing this machine and the tools' versions."""
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "disk": disk_of(path or tempfile.gettempdir()),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "hookrelay": _first_line([BIN, "--version"]) + f" ({build_type()} build)",
        "sqlite": _first_line(["sqlite3", "--version"]).split(" ")[0],
        "libs": " ".join(f"{lib} {_first_line(['pkg-config', '--modversion', lib])}"
                         for lib in ("libmicrohttpd", "jansson", "libcurl")),
        "wrk": _first_line(["wrk", "--version"]).split(" [")[0],
        "nginx": _first_line(["nginx", "-v"]),
        "webhook": _first_line(["webhook", "-version"]),
        "python": platform.python_version(),
    }


def print_machine(m, file=sys.stdout):
    print(f"machine: {m['nproc']} CPUs, {m['cpu']}, {m['ram_gib']} GiB RAM, kernel {m['kernel']}, "
          f"disk {m['disk']}; load average at start {m['load']}", file=file)
    print(f"versions: {m['hookrelay']}; sqlite {m['sqlite']}; {m['libs']}; {m['wrk']}; {m['nginx']}; "
          f"{m['webhook']}; python {m['python']}", file=file)


# ---- numbers and tables ----

def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    v = sorted(values)
    return v[max(1, math.ceil(p / 100 * len(v))) - 1]


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


def table(headers, rows, left=0):
    """Columns right-aligned, but the first `left` ones left-aligned."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i < left else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
