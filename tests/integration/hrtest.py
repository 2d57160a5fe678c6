"""hrtest - start a hookrelay daemon for a test and talk to it over HTTP.

Only the Python standard library. Every daemon listens on 127.0.0.1 port 0
(the kernel picks a free port, read back from the "listening on" log line),
uses a database in a fresh temporary directory, and is stopped by PID.
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

BIN = os.environ.get("HOOKRELAY_BIN", "build/hookrelay")
PAYLOADS = os.environ.get("HR_PAYLOADS_DIR", os.path.join(os.path.dirname(__file__), "..", "payloads"))
START_TIMEOUT = 20.0

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


def payload(name):
    with open(os.path.join(PAYLOADS, name), "rb") as f:
        return f.read()


def payload_names():
    return sorted(n for n in os.listdir(PAYLOADS) if n.endswith(".json"))


class Daemon:
    """A hookrelay process with its own config and database directory."""

    def __init__(self, config=DEFAULT_CONFIG, workdir=None, extra_args=()):
        self.owns_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="hrtest-")
        self.db = os.path.join(self.dir, "var", "hookrelay.db")
        self.config_path = os.path.join(self.dir, "hookrelay.conf")
        with open(self.config_path, "w") as f:
            f.write(config.format(db=self.db, dir=self.dir))
        self.extra_args = list(extra_args)
        self.proc = None
        self.port = None
        self.log_lines = []
        self._log_lock = threading.Lock()

    def start(self):
        cmd = [BIN, "-c", self.config_path] + self.extra_args
        if os.environ.get("HR_VALGRIND"):
            cmd = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leaked-kinds=definite,indirect"] + cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        found = threading.Event()

        def pump():
            for line in self.proc.stderr:
                with self._log_lock:
                    self.log_lines.append(line.rstrip("\n"))
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
                if m and not found.is_set():
                    self.port = int(m.group(1))
                    found.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        deadline = time.monotonic() + START_TIMEOUT * (5 if os.environ.get("HR_VALGRIND") else 1)
        while not found.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hookrelay did not start:\n" + self.log())
        return self

    def log(self):
        with self._log_lock:
            return "\n".join(self.log_lines)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stop by PID; returns the exit status (negative for a signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._pump.join(timeout=5)
        self.proc = None
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- HTTP ----
    def conn(self, timeout=30):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        """Returns (status, headers dict lower-cased, body bytes)."""
        own = conn is None
        c = conn or self.conn()
        hdrs = dict(headers or {})
        if body is not None and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/json"
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            if own:
                c.close()

    def post(self, body, source="default", headers=None, conn=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        return self.request("POST", "/hooks/" + source, body, headers, conn)

    def get_json(self, path):
        status, hdrs, data = self.request("GET", path)
        return status, (json.loads(data) if data else None)


class DaemonTest(unittest.TestCase):
    """A test case with one daemon started per test (self.d)."""

    config = DEFAULT_CONFIG

    def setUp(self):
        self.d = Daemon(self.config).start()

    def tearDown(self):
        rc = self.d.stop()
        log = self.d.log()
        self.d.cleanup()
        self.assertEqual(rc, 0, "hookrelay did not exit cleanly:\n" + log)
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)
