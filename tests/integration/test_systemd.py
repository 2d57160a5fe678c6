"""systemd integration: the unit files, the sandbox, sd_notify and socket activation.

- The installed layout (cmake --install into a DESTDIR): the unit's ExecStart and
  its -c file exist there, and the installed configuration keeps the database in
  the StateDirectory.
- `systemd-analyze verify` accepts hookrelay.service and hookrelay.socket without a
  word, and `systemd-analyze security --offline=yes` rates the service <= 2.0.
- Every system call the daemon makes (ingest, API, forwarding, watchdog, reload,
  stop; traced with strace as an unprivileged user) passes the unit's
  SystemCallFilter=, it opens only the socket families RestrictAddressFamilies=
  allows, and it never maps memory writable and executable.
- sd_notify, as systemd sees it: READY=1 once the port answers, STATUS= and
  WATCHDOG=1 every WatchdogSec/3, RELOADING=1 + MONOTONIC_USEC then READY=1 on
  SIGHUP (also when the new file is refused), STOPPING=1 on SIGTERM; every
  message from the main PID (NotifyAccess=main).
- Socket activation: the passed socket (fd 3) is served instead of [server] listen,
  and a restart with the socket held open refuses no connection and loses no
  acknowledged event.

No systemd needs to run: systemd-analyze works offline, and the test plays
systemd's part for notify and activation.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import hrtest
from hrtest import DEFAULT_CONFIG, Daemon, config_with, dumps, fresh_id, payload_json, \
    free_port, sanitizer_reports
from sink import Sink

SRC = os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(hrtest.BIN))
ANALYZE = shutil.which("systemd-analyze")
STRACE = shutil.which("strace")
MAX_EXPOSURE = 2.0
STATE_DB = "/var/lib/hookrelay/hookrelay.db"
TRANSCRIPTION_READY = "tavus.conversation.application.transcription_ready.json"
NO_ANALYZE = "systemd-analyze is not installed (Debian package systemd; scripts/test installs it)"


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout, **kw)


def unit_settings(path):
    """{key: [values]} of a unit file, in order; comments and sections dropped."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;[":
                continue
            k, _, v = line.partition("=")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def event_body(conversation_id=None):
    return dumps(dict(payload_json(TRANSCRIPTION_READY),
                      conversation_id=conversation_id or fresh_id("c")))


class Installed:
    """`cmake --install` of the build under test into a temporary DESTDIR, once."""
    root = None
    service = socket_unit = None

    @classmethod
    def get(cls, test):
        if cls.root is None:
            cmake = shutil.which("cmake")
            if cmake is None or not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
                test.skipTest("no cmake build directory at %s" % BUILD)
            root = tempfile.mkdtemp(prefix="hrtest-destdir-")
            r = run([cmake, "--install", BUILD], env=dict(os.environ, DESTDIR=root))
            if r.returncode != 0:
                shutil.rmtree(root, ignore_errors=True)
                raise AssertionError("cmake --install failed:\n" + r.stdout)
            cls.root = root
            for d, _, files in os.walk(root):
                if "hookrelay.service" in files:
                    cls.service = os.path.join(d, "hookrelay.service")
                if "hookrelay.socket" in files:
                    cls.socket_unit = os.path.join(d, "hookrelay.socket")
        return cls

    @classmethod
    def cleanup(cls):
        if cls.root is not None:
            shutil.rmtree(cls.root, ignore_errors=True)
            cls.root = None


def tearDownModule():
    Installed.cleanup()


class UnitFilesTest(unittest.TestCase):

    def setUp(self):
        self.inst = Installed.get(self)
        self.assertIsNotNone(self.inst.service, "cmake --install wrote no hookrelay.service")
        self.assertIsNotNone(self.inst.socket_unit, "cmake --install wrote no hookrelay.socket")
        self.settings = unit_settings(self.inst.service)
        self.exec_start = self.settings["ExecStart"][0].split()

    def in_root(self, path):
        return os.path.join(self.inst.root, path.lstrip("/"))

    def test_installed_layout_and_configuration(self):
        binary, args = self.exec_start[0], self.exec_start[1:]
        self.assertTrue(os.access(self.in_root(binary), os.X_OK), "ExecStart %s not installed" % binary)
        self.assertEqual(args[0], "-c")
        conf = self.in_root(args[1])
        self.assertTrue(os.path.isfile(conf), "ExecStart's configuration %s not installed" % args[1])
        with open(conf) as f:
            text = f.read()
        self.assertRegex(text, r"\n\[storage\]\n(?:#.*\n|\n)*path = %s\n" % re.escape(STATE_DB))
        r = run([hrtest.BIN, "-t", "-c", conf])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(os.path.dirname(self.inst.service), os.path.dirname(self.inst.socket_unit))
        docs = [os.path.join(d, f) for d, _, fs in os.walk(self.inst.root) for f in fs
                if f == "operations.md"]
        self.assertEqual(len(docs), 1, "docs/operations.md not installed")
        # The Documentation= link points at it.
        self.assertIn("file://" + docs[0][len(self.inst.root):], self.settings["Documentation"])

    def test_service_settings(self):
        s = self.settings
        want = {"Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30s",
                "Restart": "on-failure", "DynamicUser": "yes", "StateDirectory": "hookrelay",
                "ConfigurationDirectory": "hookrelay", "ExecReload": "/bin/kill -HUP $MAINPID",
                "PrivateUsers": "yes", "UMask": "0077", "CapabilityBoundingSet": "",
                "AmbientCapabilities": "", "ProtectSystem": "strict", "MemoryDenyWriteExecute": "yes",
                "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX AF_NETLINK",
                "LimitCORE": "0"}  # a core file would hold every secret
        for k, v in want.items():
            self.assertEqual(s.get(k), [v], k)
        self.assertEqual(s["SystemCallFilter"], ["@system-service", "~@privileged @resources"])
        sock = unit_settings(self.inst.socket_unit)
        self.assertEqual(sock["ListenStream"], ["127.0.0.1:8080"])
        self.assertEqual(sock["Service"], ["hookrelay.service"])

    @unittest.skipUnless(ANALYZE, NO_ANALYZE)
    def test_systemd_analyze_verify(self):
        # verify wants ExecStart= to exist on this system: point it into the DESTDIR.
        with tempfile.TemporaryDirectory(prefix="hrtest-units-") as d:
            with open(self.inst.service) as f:
                text = f.read()
            binary = self.exec_start[0]
            self.assertEqual(text.count("ExecStart=" + binary + " "), 1)
            with open(os.path.join(d, "hookrelay.service"), "w") as f:
                f.write(text.replace("ExecStart=" + binary, "ExecStart=" + self.in_root(binary)))
            shutil.copy(self.inst.socket_unit, d)
            r = run([ANALYZE, "verify", "hookrelay.service", "hookrelay.socket"], cwd=d)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout.strip(), "", "systemd-analyze verify complained")

    @unittest.skipUnless(ANALYZE, NO_ANALYZE)
    def test_systemd_analyze_security_score(self):
        r = run([ANALYZE, "security", "--offline=yes", "--no-pager", self.inst.service])
        self.assertEqual(r.returncode, 0, r.stdout)
        m = re.search(r"Overall exposure level for hookrelay\.service:\s*([0-9]+\.[0-9]+)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        score = float(m.group(1))
        print("systemd-analyze security --offline=yes hookrelay.service: %.1f" % score)
        self.assertLessEqual(score, MAX_EXPOSURE, r.stdout)
        # docs/operations.md quotes the figure.
        with open(os.path.join(SRC, "docs", "operations.md")) as f:
            self.assertIn("%.1f" % score, f.read(), "docs/operations.md does not quote %.1f" % score)


def syscall_groups():
    """{"@group": [members]} from `systemd-analyze syscall-filter`."""
    out = run([ANALYZE, "syscall-filter", "--no-pager"]).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        s = line.strip()
        if not line.startswith(" "):
            cur = s if s.startswith("@") else None
            if cur:
                groups[cur] = []
        elif cur and s and not s.startswith("#"):
            groups[cur].append(s)
    return groups


def expand(groups, name):
    if not name.startswith("@"):
        return {name}
    out = set()
    for member in groups[name]:
        out |= expand(groups, member)
    return out


class SandboxTest(unittest.TestCase):
    """What the daemon asks of the kernel fits the unit's sandbox."""

    @unittest.skipUnless(ANALYZE, NO_ANALYZE)
    @unittest.skipUnless(STRACE, "strace is not installed (scripts/test installs it)")
    def test_system_calls_fit_the_filter(self):
        filters = unit_settings(os.path.join(SRC, "config", "hookrelay.service.in"))["SystemCallFilter"]
        groups = syscall_groups()
        allowed = set()
        for f in filters:
            names = set().union(*(expand(groups, n) for n in f.lstrip("~").split()))
            allowed = allowed - names if f.startswith("~") else allowed | names

        work = tempfile.mkdtemp(prefix="hrtest-strace-")
        sink = Sink()
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            notify.bind(os.path.join(work, "notify"))
            cfg = config_with(sections="""
[destination by_ip]
url = {url}/ip
allow_private = true
[destination by_name]
url = http://localhost:{port}/name
allow_private = true
""".format(url=sink.url, port=sink.port))
            d = Daemon(cfg, workdir=work)  # writes the file; used for its HTTP helpers only
            conf = d.config_path
            trace = os.path.join(work, "trace")
            cmd = [STRACE, "-f", "-qq", "-o", trace, hrtest.BIN, "-c", conf]
            if os.geteuid() == 0:
                # The service runs as a dynamic, unprivileged user (as root, SQLite
                # would fchown() its files, which the filter forbids).
                os.chown(work, 65534, 65534)
                os.chown(os.path.join(work, "notify"), 65534, 65534)
                cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd
            env = dict(os.environ, NOTIFY_SOCKET=os.path.join(work, "notify"),
                       WATCHDOG_USEC="3000000")
            env.pop("WATCHDOG_PID", None)
            # LeakSanitizer cannot run under ptrace.
            env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, env=env)
            lines = []
            port = None
            deadline = time.monotonic() + 30
            for line in proc.stderr:
                lines.append(line)
                m = re.search(r"listening on [^\s:]+:(\d+)", line)
                if m:
                    port = int(m.group(1))
                    break
                if time.monotonic() > deadline:
                    break
            pump = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
            pump.start()
            if port is None:
                proc.kill()
                proc.wait()
                if "ptrace" in "".join(lines) or "PTRACE" in "".join(lines):
                    self.skipTest("strace cannot trace here: " + "".join(lines)[-300:])
                self.fail("hookrelay did not start under strace:\n" + "".join(lines))
            d.port = port
            # Ingest, duplicates, rejections, the API, forwarding by address and by name.
            for i in range(5):
                self.assertEqual(d.post(event_body())[0], 200)
            self.assertEqual(d.post(event_body("c-same"))[0], 200)
            self.assertEqual(d.post(event_body("c-same"))[0], 200)
            self.assertEqual(d.post(b"{not json")[0], 400)
            self.assertEqual(d.request("GET", "/v1/events?limit=3")[0], 200)
            self.assertEqual(d.request("GET", "/healthz")[0], 200)
            sink.wait_count(12, timeout=20)
            time.sleep(1.3)  # a watchdog tick (every WatchdogSec/3)
            pid = self.child_of(proc.pid)
            os.kill(pid, signal.SIGHUP)
            time.sleep(0.5)
            os.kill(pid, signal.SIGTERM)
            self.assertEqual(proc.wait(30), 0, "".join(lines))
            pump.join(5)
            proc.stderr.close()
            with open(trace) as f:
                text = f.read()
            notify.setblocking(False)
            notified = set()
            while True:
                try:
                    notified |= set(notify.recv(4096).decode().split("\n"))
                except BlockingIOError:
                    break
            self.assertLessEqual({"READY=1", "WATCHDOG=1", "RELOADING=1", "STOPPING=1"}, notified)
        finally:
            sink.stop()
            notify.close()
            shutil.rmtree(work, ignore_errors=True)
        self.assertEqual(sanitizer_reports("".join(lines)), [])

        used = set(re.findall(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)", text, re.M))
        # The HTTP workers run poll() loops (src/http/http_conn.c says why not epoll).
        self.assertTrue(used & {"poll", "ppoll"}, "the trace missed the HTTP threads")
        if hrtest.BACKEND == "sqlite":  # the instance lock on the database file
            self.assertIn("flock", used)
        self.assertEqual(sorted(used - allowed), [],
                         "system calls SystemCallFilter= would kill the service for")
        families = set(re.findall(r"^\d+\s+socket(?:pair)?\((AF_[A-Z0-9]+)", text, re.M))
        self.assertLessEqual(families, {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}, families)
        wx = re.findall(r"^\d+\s+(?:mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC.*$", text, re.M)
        wx += re.findall(r"^\d+\s+(?:mmap|mprotect|pkey_mprotect)\(.*PROT_EXEC\|PROT_WRITE.*$", text, re.M)
        self.assertEqual(wx, [], "writable and executable mappings (MemoryDenyWriteExecute=)")

    @staticmethod
    def child_of(pid):
        """The hookrelay that strace (`pid`) started."""
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return int(f.read().split()[0])


# RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX as systemd makes it, for the
# process this execs (argv[1:]): a seccomp filter under which socket() of any other
# family fails with EAFNOSUPPORT (x86-64; elsewhere it execs unfiltered).
_RESTRICT_FAMILIES = r"""
import ctypes, os, struct, sys
def insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)
LD, JEQ, RET = 0x20, 0x15, 0x06
prog = b"".join([
    insn(LD, 0, 0, 4),                   # arch
    insn(JEQ, 0, 7, 0xC000003E),         # x86-64, else allow
    insn(LD, 0, 0, 0),                   # nr
    insn(JEQ, 0, 5, 41),                 # socket(), else allow
    insn(LD, 0, 0, 16),                  # args[0]: the family
    insn(JEQ, 3, 0, 1),                  # AF_UNIX
    insn(JEQ, 2, 0, 2),                  # AF_INET
    insn(JEQ, 1, 0, 10),                 # AF_INET6
    insn(RET, 0, 0, 0x00050000 | 97),    # EAFNOSUPPORT
    insn(RET, 0, 0, 0x7FFF0000),         # allow
])
if os.uname().machine == "x86_64":
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("HxxxxxxQ", len(prog) // 8, ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    libc = ctypes.CDLL(None, use_errno=True)
    ul = ctypes.c_ulong
    if (libc.prctl(38, ul(1), ul(0), ul(0), ul(0)) != 0 or
            libc.prctl(22, ul(2), ul(ctypes.addressof(fbuf)), ul(0), ul(0)) != 0):
        sys.exit("seccomp: %s" % os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"),
                     "needs root for a network namespace of its own (unshare -n, ip)")
@unittest.skipUnless(os.uname().machine == "x86_64", "the seccomp filter is x86-64's")
class SandboxGuardTest(unittest.TestCase):
    """forwarding.md, the SSRF guard: with allow_private = false (the default) an attempt
    to "an address of this host" is blocked (`blocked: 93.184.216.7 is an address of
    this host`), since it reaches the host's loopback-only services. The guard learns
    the host's addresses with getifaddrs(), which asks the kernel over an AF_NETLINK
    socket; the shipped unit's RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX makes
    that socket() fail, getifaddrs() fails, the guard's list stays empty and every
    address of the host is let through. The daemon runs in a network namespace where
    8.8.4.4 is its own (on its loopback interface), serving a socket passed as systemd does."""

    def run_daemon(self, restricted):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        setup = "ip link set lo up && ip addr add 8.8.4.4/32 dev lo && exec \"$@\""
        wrapper = ["unshare", "-n", "sh", "-c", setup, "sh"]
        if restricted:
            wrapper += [sys.executable, "-c", _RESTRICT_FAMILIES]
        d = Daemon(DEFAULT_CONFIG + "[destination own]\nurl = http://8.8.4.4:9/x\n",
                   listen_fd=listener.fileno(), wrapper=wrapper)
        try:
            d.start()
            self.assertEqual(d.post(event_body())[0], 200)
            deadline, err = time.monotonic() + 15, None
            while err is None and time.monotonic() < deadline:
                rows = d.get_json("/v1/deliveries")[1]["deliveries"]
                err = rows[0].get("last_error") if rows else None
                time.sleep(0.1)
            return err, d.log()
        finally:
            d.stop()
            d.cleanup()
            listener.close()

    def test_the_guard_knows_the_hosts_own_addresses_under_the_units_families(self):
        err, log = self.run_daemon(restricted=False)  # the guard as it works by hand
        self.assertIsNotNone(err, log)
        self.assertIn("blocked: 8.8.4.4 is an address of this host", err, log)
        err, log = self.run_daemon(restricted=True)  # under RestrictAddressFamilies=
        self.assertIsNotNone(err, log)
        self.assertIn("blocked: 8.8.4.4 is an address of this host", err,
                      "under the unit's RestrictAddressFamilies= the SSRF guard let an "
                      "attempt go to an address of this host:\n" + log)


class Notifications:
    """An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path, on_ready=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.1)
        self.path = path
        self.on_ready = on_ready
        self.msgs = []  # (monotonic seconds, sender pid, {key: value})
        self.cond = threading.Condition()
        self.stopping = False
        self.ready_check = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        ucred = struct.calcsize("3i")
        while not self.stopping:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(ucred))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:ucred])[0]
            fields = dict(l.partition("=")[::2] for l in data.decode().split("\n") if l)
            if fields.get("READY") == "1" and self.on_ready is not None and self.ready_check is None:
                self.ready_check = self.on_ready()  # before anything else is read
            with self.cond:
                self.msgs.append((time.monotonic(), pid, fields))
                self.cond.notify_all()

    def wait(self, pred, timeout=20, what="a notification"):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, (_, _, m) in enumerate(self.msgs):
                    if pred(i, m):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s in %ss; got %r" % (what, timeout,
                                                                   [m for _, _, m in self.msgs]))
                self.cond.wait(min(left, 0.1))

    def all(self):
        with self.cond:
            return list(self.msgs)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


class FreePortTest(unittest.TestCase):
    def test_a_named_port_is_not_one_the_kernel_hands_out(self):
        # NotifyTest names its daemon's port before the start. A port from bind(0) is in
        # the kernel's ephemeral range, where another process of the suite took it
        # before the daemon bound it ("cannot listen on 127.0.0.1:46089: Address already
        # in use", the sanitizer run of a full suite on 2026-12-05).
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        if low <= 20000:
            self.skipTest("no room below the ephemeral range (%d-%d)" % (low, high))
        ports = {free_port() for _ in range(20)}
        self.assertTrue(all(10000 <= p < low for p in ports), (sorted(ports), low))


class NotifyTest(unittest.TestCase):
    # WatchdogSec=3s: pings every second. (Below about 2 s the daemon misses pings
    # while idle: it wants the forwarder loop to have turned within WatchdogSec/2,
    # and that loop wakes only once a second when there is nothing to do.)
    WATCHDOG_USEC = 3000000

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hrtest-notify-")
        self.port = free_port()

        def port_answers():
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                c.request("GET", "/healthz")
                return c.getresponse().status
            except OSError as e:
                return repr(e)
            finally:
                c.close()

        self.n = Notifications(os.path.join(self.dir, "notify"), on_ready=port_answers)
        self.d = Daemon(DEFAULT_CONFIG, workdir=self.dir,
                        extra_args=["--listen", "127.0.0.1:%d" % self.port],
                        env={"NOTIFY_SOCKET": self.n.path, "WATCHDOG_USEC": str(self.WATCHDOG_USEC)},
                        pid_env=["WATCHDOG_PID"])

    def tearDown(self):
        self.d.stop()
        self.n.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_ready_status_watchdog_reload_stopping(self):
        d, n = self.d, self.n
        d.start()
        pid = d.proc.pid
        i_ready = n.wait(lambda i, m: m.get("READY") == "1", what="READY=1")
        # Before it only requests for more time while the database opens (a schema
        # migration may outlast TimeoutStartSec=): at least one, sent at once.
        before = [m for _, _, m in n.all()[:i_ready]]
        self.assertGreaterEqual(len(before), 1, "no EXTEND_TIMEOUT_USEC before READY=1")
        for m in before:
            self.assertEqual(m.get("EXTEND_TIMEOUT_USEC"), "30000000", n.all())
            self.assertEqual(m.get("STATUS"), "starting: opening the database", n.all())
        self.assertEqual(n.ready_check, 200, "the port did not answer when READY=1 came")
        # ... with the counts: systemctl status said "starting" until the first tick.
        self.assertRegex(n.all()[i_ready][2].get("STATUS", ""),
                         r"^0 accepted, 0 rejected, 0 failed; \d+ queued for the writer$")

        self.assertEqual(d.post(event_body())[0], 200)
        n.wait(lambda i, m: re.match(r"1 accepted, 0 rejected, 0 failed; \d+ queued",
                                     m.get("STATUS", "")), what="STATUS= with 1 accepted")

        # WATCHDOG=1 every WatchdogSec/3: never a gap of WatchdogSec.
        first = n.wait(lambda i, m: m.get("WATCHDOG") == "1", what="WATCHDOG=1")
        n.wait(lambda i, m: i > first and sum(1 for _, _, x in n.msgs[first:i + 1]
                                             if x.get("WATCHDOG") == "1") >= 4,
               what="4 WATCHDOG=1")
        times = [t for t, _, m in n.all() if m.get("WATCHDOG") == "1"]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertLess(max(gaps), self.WATCHDOG_USEC / 1e6, gaps)

        # SIGHUP: RELOADING=1 with the monotonic clock in the same message, then READY=1.
        for good in (True, False):
            if not good:
                with open(d.config_path, "a") as f:
                    f.write("[server\n")
            mark = len(n.all())
            d.proc.send_signal(signal.SIGHUP)
            at = time.monotonic()
            i = n.wait(lambda i, m: i >= mark and m.get("RELOADING") == "1", what="RELOADING=1")
            usec = int(n.all()[i][2]["MONOTONIC_USEC"])
            self.assertLess(abs(usec / 1e6 - at), 5.0, "MONOTONIC_USEC is not CLOCK_MONOTONIC")
            j = n.wait(lambda j, m: j > i and m.get("READY") == "1",
                       what="READY=1 after RELOADING=1")
            # ... saying at once whether the reload was refused, not at the next tick
            self.assertEqual("; the last reload was refused" in n.all()[j][2].get("STATUS", ""),
                             not good, n.all()[j])
        deadline = time.monotonic() + 10  # the log comes through a pipe, maybe later
        while "reload refused" not in d.log():
            self.assertLess(time.monotonic(), deadline, d.log())
            time.sleep(0.02)
        # systemctl reload says ok either way: systemctl status says the reload was refused.
        n.wait(lambda i, m: "; the last reload was refused (see the log)" in m.get("STATUS", ""),
               what="STATUS= saying the reload was refused")

        self.assertEqual(d.stop(), 0, d.log())
        # The process is gone and its datagrams are all in the socket: the reading
        # thread may not have taken the last ones yet (missed once, the sanitizer run
        # of a full suite on a loaded machine).
        n.wait(lambda i, m: m.get("STOPPING") == "1", timeout=5, what="STOPPING=1")
        time.sleep(0.3)  # any line after it, which must not be
        msgs = n.all()
        i_stop = [k for k, (_, _, m) in enumerate(msgs) if m.get("STOPPING") == "1"]
        self.assertEqual(len(i_stop), 1, msgs)
        self.assertEqual([m for _, _, m in msgs[i_stop[0] + 1:]], [])
        # NotifyAccess=main: systemd takes only what the main PID sends.
        self.assertEqual({p for _, p, _ in msgs}, {pid})
        self.assertEqual(sanitizer_reports(d.log()), [])

    def test_reloads_more_often_than_the_tick_still_feed_the_watchdog(self):
        # A SIGHUP every 0.6 s, under the 1-s tick (WatchdogSec/3): each one restarted
        # the tick's wait, so no WATCHDOG=1 went out while they came and systemd
        # would have killed a healthy daemon after WatchdogSec.
        d, n = self.d, self.n
        d.start()
        n.wait(lambda i, m: m.get("WATCHDOG") == "1", what="WATCHDOG=1")
        start = time.monotonic()
        while time.monotonic() - start < 6:
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.6)
        times = [t for t, _, m in n.all() if m.get("WATCHDOG") == "1" and t >= start]
        self.assertGreaterEqual(len(times), 3, n.all())
        gaps = [b - a for a, b in zip([start] + times, times + [time.monotonic()])]
        self.assertLess(max(gaps), self.WATCHDOG_USEC / 1e6, gaps)
        self.assertEqual(d.stop(), 0, d.log())

    def test_a_stopped_process_is_no_stuck_part(self):
        # SIGSTOP for longer than WatchdogSec/2, then SIGCONT: the first tick after it
        # found the forwarder's loop as old as the stop, logged "forwarder not
        # responding" and left the ping out, though nothing was stuck.
        d, n = self.d, self.n
        d.start()
        n.wait(lambda i, m: m.get("WATCHDOG") == "1", what="WATCHDOG=1")
        d.proc.send_signal(signal.SIGSTOP)
        time.sleep(4)
        mark = len(n.all())
        d.proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        n.wait(lambda i, m: i >= mark and m.get("WATCHDOG") == "1", what="WATCHDOG=1 after SIGCONT")
        self.assertLess(time.monotonic() - resumed, 1.5)
        time.sleep(2.5)  # two more ticks
        self.assertNotIn("not responding", d.log())
        self.assertIn("watchdog: the process did not run for", d.log())
        self.assertEqual(d.stop(), 0, d.log())

    def test_a_stuck_writer_stops_the_watchdog_and_a_reload_still_comes(self):
        # A batch waiting on the database for over WatchdogSec/2: no WATCHDOG=1 (systemd
        # would restart the daemon), while SIGHUP is still taken at once; the writer
        # moving again brings the pings back.
        d, n = self.d, self.n
        d.start()
        n.wait(lambda i, m: m.get("WATCHDOG") == "1", what="WATCHDOG=1")
        held = hrtest.WritesHeld(d)
        answers = []
        try:
            poster = threading.Thread(target=lambda: answers.append(d.post(event_body())[0]),
                                      daemon=True)
            poster.start()
            stuck = time.monotonic()
            said = d.wait_log("watchdog: writer not responding", timeout=4.3)  # SQLite's 5 s
            self.assertTrue(said, d.log())
            self.assertGreater(time.monotonic() - stuck, 1.5)
            mark = len(n.all())
            d.proc.send_signal(signal.SIGHUP)
            n.wait(lambda i, m: i >= mark and m.get("RELOADING") == "1", timeout=1.0,
                   what="RELOADING=1 at once")
            # A tick more, still stuck: said once, not at every tick (a line a second
            # for as long as it lasted, before).
            time.sleep(max(0.0, min(stuck + 4.7, time.monotonic() + 1.6) - time.monotonic()))
        finally:
            held.end()
        poster.join(20)
        self.assertEqual(answers, [200])
        self.assertTrue(d.wait_log("watchdog: writer responding again after"), d.log())
        self.assertEqual(len(d.wait_log("watchdog: writer not responding")), 1, d.log())
        since = time.monotonic()
        n.wait(lambda i, m: i > mark and m.get("WATCHDOG") == "1", what="WATCHDOG=1 again")
        self.assertLess(time.monotonic() - since, self.WATCHDOG_USEC / 1e6)
        self.assertEqual(d.stop(), 0, d.log())

    def test_from_main_pid_and_silent_without_watchdog_pid_match(self):
        # A WATCHDOG_PID that is not ours: the watchdog is someone else's, no fast ticks.
        self.d.pid_env = []
        self.d.env["WATCHDOG_PID"] = "1"
        self.d.start()
        pid = self.d.proc.pid
        self.n.wait(lambda i, m: m.get("READY") == "1", what="READY=1")
        time.sleep(0.7)
        self.assertEqual(self.d.stop(), 0, self.d.log())
        msgs = self.n.all()
        self.assertEqual({p for _, p, _ in msgs}, {pid}, "messages from another PID")
        # Without an own watchdog the status tick is 1 s: at most one tick in 0.7 s.
        self.assertLessEqual(sum(1 for _, _, m in msgs if "STATUS" in m and "READY" not in m), 1,
                             msgs)


class SocketActivationTest(unittest.TestCase):

    def setUp(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        # [server] listen names a port that is taken: binding it would fail.
        self.taken = socket.socket()
        self.taken.bind(("127.0.0.1", 0))
        self.taken.listen(1)
        self.config = DEFAULT_CONFIG.replace(
            "listen = 127.0.0.1:0", "listen = 127.0.0.1:%d" % self.taken.getsockname()[1])
        self.daemons = []

    def tearDown(self):
        for d in reversed(self.daemons):
            d.stop()
            d.cleanup()
        self.listener.close()
        self.taken.close()

    def daemon(self, workdir=None):
        d = Daemon(self.config, workdir=workdir, listen_fd=self.listener.fileno())
        self.daemons.append(d)
        return d.start()

    def test_serves_the_passed_socket(self):
        d = self.daemon()
        self.assertEqual(d.port, self.port)
        self.assertIn("(socket from systemd)", d.log())
        status, _, data = d.post(event_body())
        self.assertEqual(status, 200, data)
        eid = json.loads(data)["id"]
        self.assertEqual(d.request("GET", "/v1/events/" + eid)[0], 200)
        self.assertEqual(d.stop(), 0, d.log())
        # The daemon closed its copy only: the socket still takes connections.
        with socket.create_connection(("127.0.0.1", self.port), timeout=5):
            pass

    def test_a_socket_that_is_not_tcp_stops_the_start_with_78(self):
        # A review: a Unix socket (ListenStream=/run/x.sock) or a datagram socket
        # (ListenDatagram=) in hookrelay.socket exited 1, and the unit restarted it
        # in a loop; 78 is a RestartPreventExitStatus, as for any bad configuration.
        path = os.path.join(tempfile.mkdtemp(prefix="hrtest-unix-"), "s")
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(path)
        unix.listen(1)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        try:
            for what, sock in (("unix", unix), ("datagram", udp)):
                with self.subTest(socket=what):
                    d = Daemon(self.config, listen_fd=sock.fileno())
                    self.daemons.append(d)
                    with self.assertRaises(RuntimeError):
                        d.start()
                    self.assertEqual(d.proc.wait(timeout=10), 78, d.log())
                    self.assertIn("not a TCP/IP", d.log())
        finally:
            unix.close()
            udp.close()
            shutil.rmtree(os.path.dirname(path), ignore_errors=True)

    def test_a_reload_says_listen_is_systemds(self):
        # With the socket unit a restart keeps systemd's socket too: "at the next
        # restart" would be wrong.
        d = self.daemon()
        try:
            with open(d.config_path) as f:
                text = f.read()
            with open(d.config_path, "w") as f:
                f.write(re.sub(r"^listen = .*$", "listen = 127.0.0.1:1", text, count=1, flags=re.M))
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "reload: " not in d.log():
                self.assertLess(time.monotonic(), deadline, d.log())
                time.sleep(0.05)
            self.assertIn("reload: [server] listen changed, but the listening socket is "
                          "systemd's: change ListenStream= in hookrelay.socket instead", d.log())
            self.assertNotIn("listen changed; it takes effect", d.log())
        finally:
            self.assertEqual(d.stop(), 0, d.log())

    def test_restart_refuses_no_connection_and_loses_no_acked_event(self):
        """`systemctl restart` with hookrelay.socket: the socket stays open in systemd
        (here: in the test) while one daemon stops and the next starts."""
        d1 = self.daemon()
        stop = threading.Event()
        lock = threading.Lock()
        acked, refused, other = [], [], []  # other: (started, answer or error)

        def client():
            while not stop.is_set():
                started = time.monotonic()
                try:
                    c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    try:
                        c.request("POST", "/hooks/default", body=event_body(),
                                  headers={"Content-Type": "application/json"})
                        r = c.getresponse()
                        data = r.read()
                    finally:
                        c.close()
                except ConnectionRefusedError as e:
                    with lock:
                        refused.append(repr(e))
                    continue
                except (OSError, http.client.HTTPException) as e:
                    with lock:
                        other.append((started, repr(e)))
                    continue
                with lock:
                    if r.status == 200:
                        acked.append((started, time.monotonic(), json.loads(data)["id"]))
                    else:
                        other.append((started, r.status))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        self.assertEqual(d1.stop(), 0, d1.log())
        gap_from = time.monotonic()
        time.sleep(0.3)  # no daemon: connections wait in the backlog
        gap_to = time.monotonic()
        d2 = self.daemon(workdir=d1.dir)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(40)

        self.assertEqual(refused, [], "connections refused")
        # Requests under way while the old daemon stopped may be answered 503 or
        # cut (a provider retries both); none sent after it exited may fail.
        self.assertEqual([o for o in other if o[0] >= gap_from], [])
        self.assertEqual({o[1] for o in other} - {503, "BrokenPipeError(32, 'Broken pipe')",
                                                  "ConnectionResetError(104, 'Connection reset by peer')",
                                                  "RemoteDisconnected('Remote end closed connection without response')"},
                         set(), other)
        waited = [eid for t0, t1, eid in acked if t0 < gap_to and t1 > gap_to]
        self.assertTrue(waited, "no request waited in the backlog while no daemon ran")

        self.assertEqual(d2.stop(), 0, d2.log())
        stored = {r[0] for r in hrtest.db_rows(d2, "SELECT id FROM events")}
        self.assertEqual([eid for _, _, eid in acked if eid not in stored], [], "acked, not stored")
        print("restart: %d acked, %d waited in the backlog, %d cut or 503 while stopping: %r"
              % (len(acked), len(waited), len(other), other))
        for d in (d1, d2):
            self.assertEqual(sanitizer_reports(d.log()), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
