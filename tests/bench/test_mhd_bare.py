"""bench/mhd_bare.c (hr_mhd_bare), the bare libmicrohttpd server of bench/ingest: it reads
the body and answers 200 on a kept-alive connection, also when every request is suspended
and resumed from its second thread, and in hookrelay's MHD configuration; --answer-early
answers before the body is read, which costs the connection; --receiver stores every
body before its 200 and refuses one that is not JSON."""

import contextlib
import http.client
import os
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from hrtest import free_port  # noqa: E402

BIN = os.environ.get("HR_MHD_BARE_BIN", "build/hr_mhd_bare")
PAYLOAD = os.path.join(os.environ.get("HR_PAYLOADS_DIR", "tests/payloads"),
                       "tavus.conversation.application.transcription_ready.json")


class Bare:
    def __init__(self, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([BIN, "--port", str(self.port), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != f"listening on 127.0.0.1:{self.port}":
            self.proc.kill()
            raise AssertionError(f"hr_mhd_bare {args}: {line!r} {self.proc.stderr.read()}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, err


class MhdBareTest(unittest.TestCase):
    def setUp(self):
        with open(PAYLOAD, "rb") as f:
            self.body = f.read()

    def exchange(self, server, n, chunked=False):
        """n POSTs on one connection; returns [(status, body, connection header)] and
        whether the socket stayed the same."""
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        out, socks = [], set()
        try:
            for _ in range(n):
                if chunked:
                    c.request("POST", "/hooks/default", iter([self.body[:100], self.body[100:]]),
                              {"Content-Type": "application/json"}, encode_chunked=True)
                else:
                    c.request("POST", "/hooks/default", self.body,
                              {"Content-Type": "application/json"})
                socks.add(c.sock.getsockname())
                r = c.getresponse()
                out.append((r.status, r.read(), r.getheader("Connection")))
        finally:
            c.close()
        return out, len(socks) == 1

    def check_variant(self, *args):
        s = Bare(*args)
        try:
            answers, same = self.exchange(s, 20)
            chunked, _ = self.exchange(s, 3, chunked=True)
        finally:
            rc, err = s.stop()
        self.assertEqual(rc, 0, err)
        self.assertNotIn("ERROR", err)
        for status, body, _ in answers + chunked:
            self.assertEqual((status, body), (200, b'{"ok":true}'), args)
        self.assertTrue(same, f"{args}: the connection was not kept alive")

    def test_bare(self):
        self.check_variant()

    def test_suspend_resume(self):
        self.check_variant("--suspend")

    def test_hookrelay_options(self):
        self.check_variant("--hookrelay")
        self.check_variant("--hookrelay", "--suspend")

    def test_two_threads_and_other_thread_models(self):
        self.check_variant("--threads", "2", "--suspend")
        self.check_variant("--poll", "select")
        self.check_variant("--poll", "per-connection")

    def burst(self, server, n):
        """n connections opened, then a request sent on each, as wrk starts; how many are
        answered within 5 s."""
        req = (b"POST /hooks/default HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(self.body) + self.body)
        socks, answered = [], 0
        sel = selectors.DefaultSelector()
        try:
            for _ in range(n):
                socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            for s in socks:
                s.sendall(req)
                sel.register(s, selectors.EVENT_READ)
            deadline = time.monotonic() + 5
            while answered < n and time.monotonic() < deadline:
                for key, _ in sel.select(timeout=0.5):
                    sel.unregister(key.fileobj)
                    if key.fileobj.recv(4096).startswith(b"HTTP/1.1 200"):
                        answered += 1
        finally:
            sel.close()
            for s in socks:
                s.close()
        return answered

    def test_hookrelays_configuration_answers_a_burst_of_connections(self):
        # hookrelay runs MHD's poll() loop: libmicrohttpd 0.9.75's epoll loop leaves
        # requests unanswered once more than 128 connections are busy (src/http/http_conn.c),
        # and --hookrelay ran it, so bench/ingest's mhd-hr rows were that stall's.
        for args in (["--hookrelay"], ["--hookrelay", "--suspend"], ["--poll", "poll"]):
            s = Bare(*args)
            try:
                got = self.burst(s, 256)
            finally:
                rc, err = s.stop()
            self.assertEqual(rc, 0, err)
            self.assertEqual(got, 256, args)

    def test_a_short_body_is_not_answered_200(self):
        s = Bare("--suspend")
        try:
            with socket.create_connection(("127.0.0.1", s.port), timeout=3) as sock:
                sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
                sock.shutdown(socket.SHUT_WR)  # five bytes short
                data = b""
                try:  # MHD closes the connection, or keeps waiting for the rest: no answer
                    while chunk := sock.recv(4096):
                        data += chunk
                except TimeoutError:
                    pass
        finally:
            rc, err = s.stop()
        self.assertEqual(rc, 0, err)
        self.assertNotIn(b" 200 ", data.split(b"\r\n", 1)[0])

    def test_answer_early_loses_keep_alive(self):
        s = Bare("--answer-early")
        try:
            answers, same = self.exchange(s, 5)
        finally:
            rc, err = s.stop()
        self.assertEqual(rc, 0, err)
        for status, _, connection in answers:
            self.assertEqual(status, 200)
            self.assertEqual((connection or "").lower(), "close")
        self.assertFalse(same)

    def test_the_receiver_stores_each_body_before_its_200(self):
        d = tempfile.mkdtemp(prefix="hrbare-")
        self.addCleanup(shutil.rmtree, d, True)
        db = os.path.join(d, "db")
        s = Bare("--hookrelay", "--receiver", db)
        try:
            answers, same = self.exchange(s, 20)
            chunked, _ = self.exchange(s, 3, chunked=True)
            c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=20)
            c.request("POST", "/hooks/default", b'{"cut": ', {"Content-Type": "application/json"})
            bad = c.getresponse()
            bad.read()
            c.close()
            # Answered after its COMMIT: read while the server still runs.
            with contextlib.closing(sqlite3.connect(db)) as conn:
                rows = conn.execute("SELECT body FROM e ORDER BY id").fetchall()
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            rc, err = s.stop()
        self.assertEqual(rc, 0, err)
        self.assertTrue(same)
        for status, body, _ in answers + chunked:
            self.assertEqual((status, body), (200, b'{"ok":true}'))
        self.assertEqual(bad.status, 400)
        self.assertEqual(len(rows), 23)
        self.assertEqual({r[0] for r in rows}, {self.body})
        self.assertEqual(mode, "wal")

    def test_suspend_with_a_thread_per_connection_is_refused(self):
        out = subprocess.run([BIN, "--port", str(free_port()), "--poll", "per-connection",
                              "--suspend"], capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 2)
        self.assertIn("usage", out.stderr)


if __name__ == "__main__":
    unittest.main()
