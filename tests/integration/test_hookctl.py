"""hookctl against a running daemon: every command as a table on a terminal and
as JSON Lines in a pipe, filters, `events show --curl` re-posting the exact
bytes, `events tail -f`, exit codes, NO_COLOR, and where the URL and token
come from."""

import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from hrtest import DEFAULT_CONFIG, Daemon, dumps, fresh_id, payload, payload_json, \
    sanitizer_reports
from sink import Sink

CTL = os.environ.get("HOOKCTL_BIN", "build/tools/hookctl")
TOKEN = "hookctl-t0ken-" + "9f8e7d6c5b4a3210"
ESC = "\x1b["

# A body no naive quoting survives: quotes, backslashes, printf and shell
# metacharacters, "EOF" lines in a string, tabs and CRs between tokens,
# non-ASCII text, leading blanks and a trailing newline.
TRICKY = (' \n{\t"q": "it\'s \\"quoted\\" \\\\ 100%% %s %d \\t $(touch /tmp/pwned) `id` $HOME !!",\r\n'
          '"eof": "\\nEOF\\n", "x": "\u00e9 \u65e5\u672c \\u00e9"}\n').encode()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Ctl:
    """Runs hookctl with a clean environment: no config file unless a test writes one."""

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="hookctl-home-")
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("HOOKCTL_URL", "HOOKCTL_TOKEN", "NO_COLOR", "XDG_CONFIG_HOME")}
        self.env["HOME"] = self.home

    def cleanup(self):
        shutil.rmtree(self.home, ignore_errors=True)

    def environ(self, env):
        e = dict(self.env)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return e

    def run(self, *args, env=None, timeout=20):
        """Piped: (rc, stdout, stderr)."""
        p = subprocess.run([CTL] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                           env=self.environ(env), timeout=timeout)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def tty(self, *args, env=None, timeout=20):
        """Under a pseudo-terminal, so that stdout is a tty: (rc, stdout, stderr)."""
        master, slave = pty.openpty()
        with tempfile.TemporaryFile() as err:
            p = subprocess.Popen([CTL] + list(args), stdin=subprocess.DEVNULL, stdout=slave,
                                 stderr=err, env=self.environ(env))
            os.close(slave)
            out = read_pty(master, p, timeout)
            rc = p.wait(timeout=timeout)
            err.seek(0)
            return rc, out.replace("\r\n", "\n"), err.read().decode()


def read_pty(master, proc, timeout):
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    return out.decode(errors="replace")


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class HookctlTest(unittest.TestCase):
    """One daemon (with a sink destination) for the whole class."""

    @classmethod
    def setUpClass(cls):
        cls.sink = Sink()
        cls.d = Daemon(DEFAULT_CONFIG + """
[source raw]
dedup = off
[destination sink]
url = %s/in
allow_private = true
retry_schedule = 1s
""" % cls.sink.url)
        cls.d.start()
        cls.url = "http://127.0.0.1:%d" % cls.d.port
        cls.ctl = Ctl()
        cls.conv = fresh_id("c")
        ids = {}
        for name in ("tavus.conversation.system.replica_joined.json",
                     "tavus.conversation.system.shutdown.json"):
            doc = payload_json(name)
            doc["conversation_id"] = cls.conv
            ids[name] = cls.post(dumps(doc), "tavus")
        ids["pailflow"] = cls.post(payload("botplatform.session_complete.json"), "pailflow")
        ids["agenthuman"] = cls.post(payload("agenthuman.session.created.json"), "default")
        cls.ids = ids
        cls.sink.wait_count(4)

    @classmethod
    def tearDownClass(cls):
        cls.ctl.cleanup()
        rc = cls.d.stop()
        log = cls.d.log()
        cls.d.cleanup()
        cls.sink.stop()
        assert rc == 0, "hookrelay did not exit cleanly:\n" + log
        assert sanitizer_reports(log) == [], log

    @classmethod
    def post(cls, body, source="default"):
        status, _, data = cls.d.post(body, source)
        assert status == 200, (status, data)
        return json.loads(data)["id"]

    def api(self, path):
        status, doc = self.d.get_json(path)
        self.assertEqual(status, 200, doc)
        return doc

    def run_ok(self, *args, env=None):
        rc, out, err = self.ctl.run("--url", self.url, *args, env=env)
        self.assertEqual(rc, 0, "%s: %s" % (args, err))
        self.assertEqual(err, "", args)
        self.assertNotIn(ESC, out)
        return json_lines(out)

    def tty_ok(self, *args, env=None):
        rc, out, err = self.ctl.tty("--url", self.url, *args, env=env)
        self.assertEqual(rc, 0, "%s: %s%s" % (args, out, err))
        self.assertNotIn("Traceback", err)
        return out

    # ---- every command, both ways ----

    def test_every_command_as_a_table_and_as_json_lines(self):
        eid = self.ids["tavus.conversation.system.shutdown.json"]
        session = "conversation:" + self.conv
        cases = [
            (["events", "list"], "RECEIVED", lambda o: "kind" in o),
            (["events", "show", eid], "payload", lambda o: o["id"] == eid and "payload" in o),
            (["events", "tail"], "KIND", lambda o: "received_at" in o),
            (["sessions", "list"], "LAST SEEN", lambda o: "event_count" in o),
            (["sessions", "show", session], "timeline", lambda o: o["id"] == session),
            (["deliveries", "list"], "DESTINATION", lambda o: o["destination"] == "sink"),
            (["destinations"], "BREAKER", lambda o: o["name"] == "sink"),
            (["status"], "destinations", lambda o: o["health"]["status"] == "ok"),
            (["replay", eid], "deliveries queued", lambda o: o["deliveries"] == 1),
            (["replay", "--destination", "sink", "--since", "1h"], "deliveries queued",
             lambda o: o["deliveries"] >= 0),
        ]
        for args, marker, check in cases:
            with self.subTest(" ".join(args)):
                out = self.tty_ok(*args)
                self.assertIn(marker, out)
                if args[0] != "replay":
                    self.assertIn(ESC + "1m", out)  # a bold header: colour on a terminal
                lines = self.run_ok(*args)
                self.assertTrue(lines, args)
                for o in lines:
                    self.assertTrue(check(o), (args, o))

    def test_table_rows_hold_the_listed_values(self):
        out = self.tty_ok("events", "list", "--session", self.conv)
        rows = [l for l in out.splitlines()[1:] if l.strip()]
        self.assertEqual(len(rows), 2, out)
        self.assertIn(self.ids["tavus.conversation.system.shutdown.json"], rows[0])
        self.assertIn("tavus.conversation.system.shutdown", rows[0])
        self.assertIn("conversation:" + self.conv, rows[1])
        out = self.tty_ok("events", "show", self.ids["pailflow"])
        self.assertIn("pailflow.session_complete", out)
        self.assertIn("content-type:", out)
        self.assertIn("sink", out)  # its delivery

    def test_json_lines_match_the_api(self):
        lines = self.run_ok("events", "list", "--limit", "500")
        self.assertEqual(lines, self.api("/v1/events?limit=500")["events"])
        self.assertEqual(self.run_ok("sessions", "show", self.conv)[0],
                         self.api("/v1/sessions/" + self.conv))
        tail = self.run_ok("events", "tail", "-n", "3")
        self.assertEqual([e["id"] for e in tail],
                         [e["id"] for e in reversed(self.api("/v1/events?limit=3")["events"])])

    # ---- filters ----

    def test_filters_go_to_the_api(self):
        def ids(*args):
            return [e["id"] for e in self.run_ok("events", "list", *args)]

        def api_ids(query):
            return [e["id"] for e in self.api("/v1/events?" + query)["events"]]

        self.assertEqual(ids("--source", "pailflow"), [self.ids["pailflow"]])
        self.assertEqual(ids("--provider", "agenthuman"), api_ids("provider=agenthuman"))
        self.assertEqual(ids("--kind", "tavus.conversation.system.shutdown", "--session",
                             self.conv), [self.ids["tavus.conversation.system.shutdown.json"]])
        self.assertEqual(ids("--event-type", "system.replica_joined", "--source", "tavus"),
                         [self.ids["tavus.conversation.system.replica_joined.json"]])
        self.assertEqual(ids("--since", "1h"), api_ids("since=1h"))
        self.assertEqual(ids("--until", "2000-01-01T00:00:00Z"), [])
        self.assertEqual(len(ids("--limit", "1")), 1)
        every = ids("--limit", "500")
        self.assertEqual(ids("--limit", "1", "--all"), every)
        self.assertEqual(ids("-n", "2", "--all", "--source", "tavus"), api_ids("source=tavus"))
        dl = self.run_ok("deliveries", "list", "--destination", "sink", "--status", "succeeded",
                         "--since", "1h")
        self.assertTrue(dl)
        self.assertTrue(all(d["status"] == "succeeded" and d["destination"] == "sink"
                            for d in dl))
        self.assertEqual(self.run_ok("deliveries", "list", "--destination", "nope"), [])
        ss = self.run_ok("sessions", "list", "--provider", "pailflow", "--status", "ended")
        self.assertEqual([s["provider"] for s in ss], ["pailflow"] * len(ss))
        self.assertTrue(ss)
        # A bad value is the API's 400: exit 1 with its detail.
        rc, out, err = self.ctl.run("--url", self.url, "events", "list", "--kind", "nope")
        self.assertEqual(rc, 1)
        self.assertIn("kind", err)
        self.assertEqual(out, "")

    # ---- events show --curl ----

    def test_curl_command_reposts_the_exact_body(self):
        eid = self.post(TRICKY, "raw")
        status, _, raw = self.d.request("GET", "/v1/events/%s/raw" % eid)
        self.assertEqual(raw, TRICKY)
        rc, cmd, err = self.ctl.run("--url", self.url, "events", "show", eid, "--curl")
        self.assertEqual(rc, 0, err)
        self.assertNotIn("\t", cmd)
        self.assertNotIn("\r", cmd)
        self.assertTrue(all(32 <= ord(ch) < 127 for ch in cmd.replace("\n", "")), cmd)
        for shell in ("bash", "sh"):
            with self.subTest(shell):
                p = subprocess.run([shell], input=cmd.encode(), capture_output=True, timeout=20)
                self.assertEqual(p.returncode, 0, p.stderr)
                ack = json.loads(p.stdout)
                self.assertFalse(ack["duplicate"])  # dedup = off: stored again
                self.assertNotEqual(ack["id"], eid)
                status, _, again = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])
                self.assertEqual(again, TRICKY)
        self.assertFalse(os.path.exists("/tmp/pwned"))

    # ---- events tail -f ----

    def test_tail_follow_prints_events_stored_after_it_started(self):
        conv = fresh_id("c")
        p = subprocess.Popen([CTL, "--url", self.url, "events", "tail", "-f", "--session", conv],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.ctl.env)
        try:
            time.sleep(0.3)
            doc = payload_json("tavus.conversation.system.shutdown.json")
            doc["conversation_id"] = conv
            eid = self.post(dumps(doc), "tavus")
            r, _, _ = select.select([p.stdout], [], [], 10)
            self.assertTrue(r, "tail -f printed nothing")
            self.assertEqual(json.loads(p.stdout.readline())["id"], eid)
        finally:
            p.send_signal(signal.SIGINT)
            p.wait(timeout=10)
            p.stdout.close()
            p.stderr.close()

    def test_tail_follow_on_a_terminal_prints_rows(self):
        master, slave = pty.openpty()
        p = subprocess.Popen([CTL, "--url", self.url, "events", "tail", "-f", "-n", "1"],
                             stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL,
                             env=self.ctl.env)
        os.close(slave)
        try:
            time.sleep(0.3)
            eid = self.post({"tail": fresh_id()}, "raw")
            out, deadline = b"", time.monotonic() + 10
            while eid.encode() not in out and time.monotonic() < deadline:
                if select.select([master], [], [], 0.2)[0]:
                    out += os.read(master, 65536)
            self.assertIn(eid.encode(), out)
            self.assertIn(b"RECEIVED", out)
        finally:
            p.kill()
            p.wait(timeout=10)
            os.close(master)

    # ---- exit codes, colour ----

    def test_exit_codes(self):
        cases = [
            (["bogus"], 2, "unknown command"),
            (["events"], 2, "expected one of list, show, tail"),
            (["sessions", "bogus"], 2, "expected one of list, show"),
            (["events", "list", "--frobnicate"], 2, "unknown option"),
            (["events", "list", "--curl"], 2, "not an option"),
            (["events", "show"], 2, "missing operand"),
            (["events", "show", "a", "b"], 2, "unexpected operand"),
            (["events", "list", "--limit"], 2, "needs a value"),
            (["replay"], 2, "EVENT_ID or --destination"),
            (["replay", "evt_x", "--since", "1h"], 2, "leave out EVENT_ID"),
            (["events", "show", "evt_00000000000000000000000000"], 1, "Not Found"),
            (["sessions", "show", "conversation:nope"], 1, "404"),
            (["replay", "--destination", "nope"], 1, "Unknown destination"),
        ]
        for args, want, msg in cases:
            with self.subTest(" ".join(args)):
                rc, out, err = self.ctl.run("--url", self.url, *args)
                self.assertEqual(rc, want, err)
                self.assertIn(msg, err)
                self.assertEqual(out, "")
        rc, out, err = self.ctl.run("--url", "http://127.0.0.1:%d" % free_port(), "status")
        self.assertEqual(rc, 3, err)
        self.assertIn("cannot connect", err)
        rc, out, err = self.ctl.run("--url", "ftp://127.0.0.1", "status")
        self.assertEqual(rc, 2, err)
        for args in (["--help"], ["events", "list", "--help"], ["--version"]):
            rc, out, err = self.ctl.run(*args)
            self.assertEqual((rc, err), (0, ""), args)
            self.assertTrue(out)
        rc, out, _ = self.ctl.run("replay", "--help")
        self.assertIn("--destination NAME", out)

    def test_no_color_is_honoured(self):
        out = self.tty_ok("sessions", "list")
        self.assertIn(ESC, out)
        out = self.tty_ok("sessions", "list", env={"NO_COLOR": "1"})
        self.assertNotIn(ESC, out)
        self.assertIn("LAST SEEN", out)  # still a table
        out = self.tty_ok("--json", "sessions", "list")
        self.assertNotIn(ESC, out)
        json_lines(out)

    def test_control_characters_never_reach_the_terminal(self):
        conv = "c\x1b]0;pwned\x07" + fresh_id()
        doc = payload_json("tavus.conversation.system.shutdown.json")
        doc["conversation_id"] = conv
        self.post(dumps(doc), "raw")
        out = self.tty_ok("events", "list", "--source", "raw", env={"NO_COLOR": "1"})
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\x07", out)


class TokenTest(unittest.TestCase):
    """With [api] token_file: the token from --token-file, $HOOKCTL_TOKEN or the
    config file, in that order; the URL from --url, $HOOKCTL_URL or the config file."""

    def setUp(self):
        self.d = Daemon(DEFAULT_CONFIG + "[api]\ntoken_file = {dir}/token\n")
        with open(os.path.join(self.d.dir, "token"), "w") as f:
            f.write(TOKEN + "\n")
        self.d.start()
        self.url = "http://127.0.0.1:%d" % self.d.port
        self.ctl = Ctl()
        self.token_file = os.path.join(self.ctl.home, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "  \n")
        self.bad_file = os.path.join(self.ctl.home, "bad")
        with open(self.bad_file, "w") as f:
            f.write("not-the-token-at-all\n")

    def tearDown(self):
        self.ctl.cleanup()
        rc = self.d.stop()
        log = self.d.log()
        self.d.cleanup()
        self.assertEqual(rc, 0, log)
        self.assertEqual(sanitizer_reports(log), [], log)
        self.assertNotIn(TOKEN, log)

    def write_config(self, text, mode=0o600):
        path = os.path.join(self.ctl.home, ".config", "hookctl")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def rc(self, *args, env=None):
        rc, out, err = self.ctl.run(*args, "destinations", env=env)
        self.assertNotIn(TOKEN, out + err)
        return rc

    def test_without_a_token_the_api_refuses(self):
        rc, out, err = self.ctl.run("--url", self.url, "events", "list")
        self.assertEqual(rc, 1)
        self.assertIn("401", err)

    def test_token_from_file_env_or_config(self):
        self.assertEqual(self.rc("--url", self.url, "--token-file", self.token_file), 0)
        self.assertEqual(self.rc("--url", self.url, env={"HOOKCTL_TOKEN": TOKEN}), 0)
        self.write_config("# hookctl\nurl = %s\ntoken = %s\n" % (self.url, TOKEN))
        self.assertEqual(self.rc(), 0)  # URL and token from the config file

    def test_precedence_flag_then_env_then_config(self):
        self.write_config("url = http://127.0.0.1:%d\ntoken = wrong-wrong-wrong-wrong\n"
                          % free_port())
        env = {"HOOKCTL_URL": self.url, "HOOKCTL_TOKEN": TOKEN}
        self.assertEqual(self.rc(env=env), 0)  # env over config
        self.assertEqual(self.rc("--token-file", self.bad_file, env=env), 1)  # flag over env
        self.assertEqual(self.rc("--url", "http://127.0.0.1:%d" % free_port(), env=env), 3)
        self.assertEqual(self.rc(env={"HOOKCTL_URL": self.url}), 1)  # config's wrong token
        self.assertEqual(self.rc(env={"HOOKCTL_TOKEN": TOKEN}), 3)  # config's dead URL
        rc, _, err = self.ctl.run("--token-file", "/nonexistent/token", "status")
        self.assertEqual(rc, 2, err)

    def test_a_readable_config_with_a_token_is_warned_about(self):
        self.write_config("url = %s\ntoken = %s\n" % (self.url, TOKEN), mode=0o644)
        rc, _, err = self.ctl.run("destinations")
        self.assertEqual(rc, 0, err)
        self.assertIn("others can read it", err)
        self.write_config("this is not a config line\n")
        rc, _, err = self.ctl.run("destinations")
        self.assertEqual(rc, 2, err)


class FollowReconnectTest(unittest.TestCase):
    """tail -f outlives a daemon restart: it reconnects with Last-Event-ID."""

    def test_tail_follow_reconnects_without_repeating_or_losing_events(self):
        port = free_port()
        config = DEFAULT_CONFIG.replace("127.0.0.1:0", "127.0.0.1:%d" % port)
        d, again, ctl, p = Daemon(config), None, Ctl(), None

        def next_id():
            self.assertTrue(select.select([p.stdout], [], [], 15)[0], "tail -f printed nothing")
            return json.loads(p.stdout.readline())["id"]

        try:
            d.start()
            p = subprocess.Popen([CTL, "--url", "http://127.0.0.1:%d" % port, "events", "tail",
                                  "-f", "-n", "0"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ctl.env)
            time.sleep(0.3)
            first = json.loads(d.post({"n": 1})[2])["id"]
            self.assertEqual(next_id(), first)
            self.assertEqual(d.stop(), 0, d.log())
            again = Daemon(config, workdir=d.dir).start()  # same port, same database
            missed = json.loads(again.post({"n": 2})[2])["id"]  # while tail -f waits to retry
            self.assertEqual(next_id(), missed)
            later = json.loads(again.post({"n": 3})[2])["id"]
            self.assertEqual(next_id(), later)
        finally:
            if p is not None:
                p.kill()
                p.wait(timeout=10)
                err = p.stderr.read().decode()
                p.stdout.close()
                p.stderr.close()
            if again is not None:
                self.assertEqual(again.stop(), 0, again.log())
                again.cleanup()
            d.cleanup()
            ctl.cleanup()
        self.assertIn("reconnecting", err)


if __name__ == "__main__":
    unittest.main()
