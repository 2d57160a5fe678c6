"""benchlib - shared pieces of the bench/ scripts: start hookrelay and nginx on free
loopback ports, drive wrk, parse its output, print a table. Standard library only."""

import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("HOOKRELAY_BIN", os.path.join(ROOT, "build", "hookrelay"))
PAYLOADS = os.path.join(ROOT, "tests", "payloads")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(cmd, package):
    if shutil.which(cmd) is None:
        raise SystemExit(f"{cmd} not found: apt-get install {package}")


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Hookrelay:
    """`source_config` lines go into [source default]; `extra_config` follows it
    (more sections). The database is self.db until stop()."""

    def __init__(self, extra_config="", threads=1, source_config=""):
        self.dir = tempfile.mkdtemp(prefix="hrbench-")
        self.port = free_port()
        self.conf = os.path.join(self.dir, "hookrelay.conf")
        self.db = os.path.join(self.dir, "hookrelay.db")
        with open(self.conf, "w") as f:
            f.write(f"[server]\nlisten = 127.0.0.1:{self.port}\nthreads = {threads}\n"
                    f"max_connections = 4096\n[storage]\npath = {self.db}\n"
                    f"[log]\nlevel = warning\n[source default]\nprovider = auto\n{source_config}"
                    f"\n{extra_config}")
        self.proc = subprocess.Popen([BIN, "-c", self.conf], stdin=subprocess.DEVNULL)
        wait_port(self.port)

    def url(self, path="/hooks/default"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


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
        wait_port(self.port)

    def url(self, path="/hooks/default"):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


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
end
""")
    return path


def run_wrk(url, script, connections, seconds, threads=1):
    """Returns dict rps, p50_ms, p99_ms, p999_ms, errors."""
    need("wrk", "wrk")
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", script, url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50, p99, p999, errors = (int(x) for x in re.search(r"LAT (\d+) (\d+) (\d+) (\d+)", out).groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000, "p999_ms": p999 / 1000,
            "errors": errors + (int(non2xx.group(1)) if non2xx else 0)}


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    v = sorted(values)
    return v[max(1, math.ceil(p / 100 * len(v))) - 1]


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths)))
