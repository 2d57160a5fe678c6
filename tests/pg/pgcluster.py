#!/usr/bin/env python3
"""pgcluster - a throwaway PostgreSQL cluster for the tests and the benches.

Debian's postgresql-15 binaries (/usr/lib/postgresql/15/bin), initdb in a temporary
directory, a Unix socket only (listen_addresses = '', so no TCP port is opened), stopped
by the postmaster's PID. PostgreSQL refuses to run as root, and the suite runs as root
in CI: then the cluster runs as an unprivileged system user (`nobody` unless
HR_PG_USER names another), through runuser. Local connections are `trust`: the socket
lives in a directory only that user and root can enter.

    pgcluster.py start DIR   start a cluster in DIR (created); prints its conninfo
    pgcluster.py stop DIR    stop it by PID and remove DIR
    pgcluster.py url DIR     print the conninfo of the cluster in DIR
    pgcluster.py createdb DIR NAME   create database NAME; prints its conninfo

Python's standard library only; the Python API (start/stop/createdb) is the same.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time

PORT = 5432  # names the socket file only: no TCP listener
SUPERUSER = "hookrelay"


def bindir():
    env = os.environ.get("HR_PG_BINDIR")
    if env:
        return env
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries: apt-get install postgresql-15")
    return os.path.dirname(found[-1])


def _as_user():
    """The user the cluster runs as: None for ourselves, else a pwd entry."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(os.environ.get("HR_PG_USER", "nobody"))


def _run(argv, user, **kw):
    if user is not None:
        argv = ["runuser", "-u", user.pw_name, "--"] + argv
    return subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, **kw)


def url(d, dbname="postgres"):
    return f"host={os.path.join(d, 'sock')} port={PORT} user={SUPERUSER} dbname={dbname}"


def _pid(d):
    try:
        with open(os.path.join(d, "data", "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def start(d):
    """Create and start a cluster in directory d; returns its conninfo."""
    user = _as_user()
    os.makedirs(d, mode=0o700, exist_ok=True)
    data, sock = os.path.join(d, "data"), os.path.join(d, "sock")
    os.makedirs(sock, mode=0o700, exist_ok=True)
    if user is not None:
        for p in (d, sock):
            os.chown(p, user.pw_uid, user.pw_gid)
    b = bindir()
    if not os.path.exists(os.path.join(data, "PG_VERSION")):
        _run([os.path.join(b, "initdb"), "-D", data, "-U", SUPERUSER, "--auth=trust",
              "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"], user,
             stdout=subprocess.DEVNULL)
    # Durable commits as in production (fsync, synchronous_commit on): the tests check
    # what a 200 promises. Enough connections for several nodes with their pools.
    opts = (f"-c listen_addresses='' -c unix_socket_directories='{sock}' -p {PORT}"
            " -c max_connections=200 -c synchronous_commit=on -c fsync=on")
    _run([os.path.join(b, "pg_ctl"), "-D", data, "-l", os.path.join(d, "postgres.log"),
          "-o", opts, "-w", "-t", "60", "start"], user, stdout=subprocess.DEVNULL)
    return url(d)


def stop(d, remove=True):
    """Stop the cluster in d by its postmaster's PID (fast shutdown), then remove d."""
    pid = _pid(d)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGINT)  # fast shutdown: roll back sessions, checkpoint
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGQUIT)
        except ProcessLookupError:
            pass
    if remove:
        shutil.rmtree(d, ignore_errors=True)


def psql(d, sql, dbname="postgres"):
    """Run sql through psql as the superuser; returns its output (unaligned, no header)."""
    p = subprocess.run([os.path.join(bindir(), "psql"), "-X", "-q", "-A", "-t", "-v",
                        "ON_ERROR_STOP=1", "-d", url(d, dbname), "-c", sql],
                       check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return p.stdout


def createdb(d, name):
    psql(d, f'CREATE DATABASE "{name}"')
    return url(d, name)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, d = argv[1], os.path.abspath(argv[2])
    if cmd == "start":
        print(start(d))
    elif cmd == "stop":
        stop(d)
    elif cmd == "url":
        print(url(d))
    elif cmd == "createdb" and len(argv) == 4:
        print(createdb(d, argv[3]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
