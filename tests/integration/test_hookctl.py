"""hookctl against a running daemon: every command as a table on a terminal and
as JSON Lines in a pipe, filters, `events show --curl` re-posting the exact
bytes, `events tail -f`, exit codes, NO_COLOR, and where the URL and token
come from."""

import json
import os
import pty
import resource
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unicodedata
import unittest

import hrtest
from hrtest import DEFAULT_CONFIG, SANITIZED, Daemon, dumps, fresh_id, payload, \
    payload_json, free_port, sanitizer_reports, sqlite_only
from sink import Sink

CTL = os.environ.get("HOOKCTL_BIN", "build/tools/hookctl")
TOKEN = "hookctl-t0ken-" + "9f8e7d6c5b4a3210"
ESC = "\x1b["

# A body no naive quoting survives: quotes, backslashes, printf and shell
# metacharacters, "EOF" lines in a string, tabs and CRs between tokens,
# non-ASCII text, leading blanks and a trailing newline.
TRICKY = (' \n{\t"q": "it\'s \\"quoted\\" \\\\ 100%% %s %d \\t $(touch /tmp/pwned) `id` $HOME !!",\r\n'
          '"eof": "\\nEOF\\n", "x": "\u00e9 \u65e5\u672c \\u00e9"}\n').encode()


def wait_streaming(port, timeout=15):
    """Until a client's connection to `port` is established, and a moment more for its
    request: `tail -f` prints only what is stored after its stream opened, and under a
    loaded machine hookctl may take longer than a fixed pause to get there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["ss", "-tnH", "state", "established", "( dport = :%d )" % port],
                             capture_output=True, text=True, timeout=10).stdout
        if out.strip():
            time.sleep(0.2)
            return
        time.sleep(0.05)
    raise AssertionError("no connection to port %d in %gs" % (port, timeout))


def wait_stream_opened(d, before, timeout=15):
    """Until daemon d (its log at debug level) has said more than `before` times that a
    stream opened: its line is written once the stream is registered, and the stream
    gets every event stored after it."""
    deadline = time.monotonic() + timeout
    while d.log().count("stream: opened by ") <= before:
        if time.monotonic() > deadline:
            raise AssertionError("no stream opened in %gs:\n%s" % (timeout, d.log()))
        time.sleep(0.02)


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
    # Chunks joined once at the end: `out += data` copied all read so far per read, and
    # LargeTableTest's ~800 reads of its 20,000 rows took ~5 s of this process's
    # processor time so.
    out = []
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
                out.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
    return b"".join(out).decode(errors="replace")


def json_lines(text):
    # "\n" ends a JSON line; splitlines() also splits at a U+2028 inside a string.
    return [json.loads(line) for line in text.split("\n") if line.strip()]


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
            (["sessions", "list"], "FIRST SEEN", lambda o: "event_count" in o),
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

    def test_json_output_keeps_a_payloads_numbers_as_the_sender_wrote_them(self):
        # Parsed and encoded again, 1e2 went out as 100, 0.1 as 0.10000000000000001
        # beside a number that needs 17 digits, and 9007199254740993 as
        # 9007199254740992.0: another value (a review). Piped, --json is the API's bytes.
        numbers = (b'"big":123456789012345678901234,"i":9007199254740993,"amount":0.1,'
                   b'"e":1e2,"third":0.30000000000000004')
        eid = self.post(b'{"n":"' + fresh_id().encode() + b'",' + numbers + b'}')
        rc, out, err = self.ctl.run("--url", self.url, "events", "show", eid)
        self.assertEqual(rc, 0, err)
        self.assertIn(numbers.decode(), out)
        self.assertEqual(json.loads(out)["deliveries"],
                         self.api("/v1/events/%s/deliveries" % eid)["deliveries"])
        rc, out, err = self.ctl.run("--url", self.url, "events", "list", "--payload",
                                    "--limit", "500")
        self.assertEqual(rc, 0, err)
        [line] = [l for l in out.splitlines() if eid in l]
        self.assertIn(numbers.decode(), line)
        self.assertEqual(json.loads(line)["id"], eid)
        # A refused body too (422: a PailFlow session_complete without its duration).
        doc = payload_json("botplatform.session_complete.json")
        del doc["duration_seconds"]
        body = dumps(doc)[:-1] + b"," + numbers + b"}"
        self.assertEqual(self.d.post(body, "pailflow")[0], 422)
        rid = self.api("/v1/rejections?limit=1")["rejections"][0]["id"]
        rc, out, err = self.ctl.run("--url", self.url, "rejections", "show", rid)
        self.assertEqual(rc, 0, err)
        self.assertIn(numbers.decode(), out)

    def test_events_show_in_json_has_the_deliveries_the_table_lists(self):
        eid = self.post(dumps({"n": fresh_id()}))
        deadline = time.monotonic() + 20
        while True:  # settled, so both reads see the same attempts
            deliveries = self.api("/v1/events/%s/deliveries" % eid)["deliveries"]
            if deliveries and all(d["status"] == "succeeded" for d in deliveries):
                break
            self.assertLess(time.monotonic(), deadline, deliveries)
            time.sleep(0.1)
        lines = self.run_ok("events", "show", eid)
        self.assertEqual(len(lines), 1, lines)
        self.assertEqual(lines[0].get("deliveries"), deliveries)
        self.assertEqual(deliveries[0]["destination"], "sink")
        del lines[0]["deliveries"]
        self.assertEqual(lines[0], self.api("/v1/events/" + eid))

    def test_events_show_has_every_page_of_a_long_delivery_log(self):
        # GET /v1/events/{id}/deliveries pages a long log by 4 MiB (api.md): `events
        # show` follows next_cursor, so it lists every delivery, not the first page's.
        eid = self.post(dumps({"n": fresh_id()}))
        deadline = time.monotonic() + 20
        while not all(d["status"] == "succeeded"
                      for d in self.api("/v1/events/%s/deliveries" % eid)["deliveries"]):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        zeros = ("decode(repeat('00', 4096), 'hex')" if hrtest.BACKEND == "postgresql"
                 else "zeroblob(4096)")
        # 8 dead deliveries more of 51 attempts with 4 KiB answers: ~10 MB of log.
        hrtest.db_exec(self.d, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                       " FROM n WHERE i < 8) INSERT INTO deliveries (event_seq, destination,"
                       " status, attempts, created_at, updated_at, next_attempt_at)"
                       " SELECT e.seq, 'sink', 3, 51, e.received_at, e.received_at, 0"
                       " FROM n, events e WHERE e.id = '%s'" % eid)
        hrtest.db_exec(self.d, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                       " FROM n WHERE i < 51) INSERT INTO attempts (delivery_id, number,"
                       " started_at, duration_us, http_status, response) SELECT dl.id, n.i,"
                       " dl.created_at, 1000, 500, %s FROM n, deliveries dl JOIN events e"
                       " ON e.seq = dl.event_seq WHERE e.id = '%s' AND dl.attempts = 51"
                       % (zeros, eid))
        pages, cursor = [], ""
        while True:
            doc = self.api("/v1/events/%s/deliveries%s" % (eid, cursor))
            pages.append(doc["deliveries"])
            if doc["next_cursor"] is None:
                break
            cursor = "?cursor=" + doc["next_cursor"]
        self.assertGreater(len(pages), 1)
        every = [x for page in pages for x in page]
        self.assertEqual(len(every), 9)
        lines = self.run_ok("events", "show", eid)
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0].get("deliveries"), every)
        table = self.tty_ok("events", "show", eid, env={"NO_COLOR": "1"})
        for x in every:
            self.assertRegex(table, r"\b%s\b" % x["id"])

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

    def test_repeated_glob_and_subtype_filters(self):
        def ids(*args):
            return [e["id"] for e in self.run_ok("events", "list", "--limit", "500", *args)]

        def api_ids(query):
            return [e["id"] for e in self.api("/v1/events?limit=500&" + query)["events"]]

        a, b = "tavus.conversation.system.shutdown", "pailflow.session_complete"
        both = ids("--kind", a, "--kind", b)
        self.assertEqual(both, api_ids("kind=%s&kind=%s" % (a, b)))
        # (Other tests of the class post too: what setUpClass posted is among them.)
        self.assertLessEqual({self.ids["tavus.conversation.system.shutdown.json"],
                              self.ids["pailflow"]}, set(both))
        self.assertNotIn(self.ids["agenthuman"], both)
        family = ids("--kind", "tavus.conversation.*")
        self.assertEqual(family, api_ids("kind=tavus.conversation.*"))
        self.assertLessEqual({self.ids["tavus.conversation.system.shutdown.json"],
                              self.ids["tavus.conversation.system.replica_joined.json"]},
                             set(family))
        self.assertNotIn(self.ids["pailflow"], family)
        self.assertEqual(ids("--source", "tav*", "--source", "pailflow"),
                         api_ids("source=tav*&source=pailflow"))
        created = ids("--subtype", "created")
        self.assertEqual(created, api_ids("subtype=created"))
        self.assertIn(self.ids["agenthuman"], created)
        self.assertNotIn(self.ids["pailflow"], created)
        self.assertEqual(ids("--event-type", "session_complete", "--event-type", "system.shutdown"),
                         api_ids("event_type=session_complete&event_type=system.shutdown"))
        # A single-valued option twice is refused, as the API refuses limit=1&limit=600.
        rc, out, err = self.ctl.run("--url", self.url, "events", "list", "-n", "1", "-n", "600")
        self.assertEqual(rc, 2, err)
        self.assertIn("--limit", err)
        rc, out, err = self.ctl.run("--url", self.url, "events", "list",
                                    *sum([["--kind", a]] * 17, []))
        self.assertEqual(rc, 2, err)
        # Filters past what a request URL holds (2 KiB) are refused, not cut short.
        rc, out, err = self.ctl.run("--url", self.url, "events", "list",
                                    "--session", "conversation:" + "c" * 3000)
        self.assertEqual((rc, out), (2, ""), err)
        self.assertIn("too long a URL", err)

    def test_payloads_with_the_listing(self):
        eid = self.ids["pailflow"]
        listed = {e["id"]: e for e in self.run_ok("events", "list", "--payload", "--all", "-n", "2")}
        self.assertEqual(set(listed), {e["id"] for e in self.api("/v1/events?limit=500")["events"]})
        status, _, raw = self.d.request("GET", "/v1/events/%s/raw" % eid)
        self.assertEqual(listed[eid]["payload"], json.loads(raw))
        out = self.tty_ok("events", "list", "--payload", "--kind", "pailflow.session_complete")
        self.assertIn(eid, out)
        # The payload, indented under its row (it was printed flush left), and no
        # empty table after the last one (there was).
        self.assertRegex(out, r'\n      "room_name": ')
        self.assertRegex(out, r'\n    \{')
        self.assertTrue(out.rstrip().endswith("}"), out[-200:])

    def test_a_payload_with_an_integer_past_64_bits(self):
        # jansson refuses such an integer: the whole page was "not JSON" and hookctl
        # printed nothing; and a 3.1 printed as 3.1000000000000001.
        doc = payload_json("tavus.conversation.system.shutdown.json")
        doc["conversation_id"] = fresh_id("c")
        doc["properties"]["big"] = 10 ** 23 + 1
        doc["properties"]["ratio"] = 3.1
        eid = self.post(dumps(doc), "raw")
        listed = {e["id"]: e for e in self.run_ok("events", "list", "--payload", "--all")}
        got = listed[eid]["payload"]["properties"]
        self.assertEqual(got["ratio"], 3.1)
        self.assertAlmostEqual(got["big"] / 1e23, 1.0)
        # ... and the other events of the page keep their integers (the wide read took
        # every integer as a double: 1234 printed 1234.0)
        other = listed[self.ids["pailflow"]]["payload"]
        self.assertEqual(type(other["duration_seconds"]), int, other)
        out = self.tty_ok("events", "show", eid)
        ratio = re.search(r'"ratio": (\S+)\n', out)
        self.assertTrue(ratio, out)
        self.assertEqual(float(ratio.group(1)), 3.1)  # the same double, whatever its digits

    def test_a_payload_with_nul_and_half_surrogate_escapes(self):
        # Valid JSON the daemon now stores; jansson alone refuses both escapes, which
        # made the whole page "not JSON" to hookctl.
        doc = payload_json("tavus.conversation.system.shutdown.json")
        doc["conversation_id"] = fresh_id("c")
        doc["properties"]["note"] = "a\x00b \ud83d"
        eid = self.post(dumps(doc), "raw")
        listed = {e["id"]: e for e in self.run_ok("events", "list", "--payload", "--all")}
        # Piped, the API's bytes: the sender's escapes as they came.
        self.assertEqual(listed[eid]["payload"]["properties"]["note"], "a\x00b \ud83d")
        self.assertIn(self.ids["pailflow"], listed)
        out = self.tty_ok("events", "show", eid)
        self.assertIn('"note": "a', out)

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

    def test_curl_command_reposts_the_callback_urls_query_too(self):
        # The query parameters of the callback URL are part of what the provider sent
        # (issue 10: a user's ?user_id=42, a per-objective ?objective=a) and of the
        # event the API shows; the command posted the body to /hooks/SOURCE without
        # them, so the event it makes has "query": {}.
        status, _, data = self.d.request("POST", "/hooks/raw?user_id=42&objective=a",
                                         body=dumps({"x": fresh_id()}),
                                         headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200, data)
        eid = json.loads(data)["id"]
        self.assertEqual(self.api("/v1/events/" + eid)["query"],
                         {"user_id": "42", "objective": "a"})
        rc, cmd, err = self.ctl.run("--url", self.url, "events", "show", eid, "--curl")
        self.assertEqual(rc, 0, err)
        p = subprocess.run(["sh"], input=cmd.encode(), capture_output=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stderr)
        again = json.loads(p.stdout)["id"]
        self.assertEqual(self.api("/v1/events/" + again)["query"],
                         {"user_id": "42", "objective": "a"}, cmd)

    # ---- events tail -f ----

    def test_tail_follow_prints_events_stored_after_it_started(self):
        conv = fresh_id("c")
        p = subprocess.Popen([CTL, "--url", self.url, "events", "tail", "-f", "--session", conv],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.ctl.env)
        try:
            wait_streaming(self.d.port)
            doc = payload_json("tavus.conversation.system.shutdown.json")
            doc["conversation_id"] = conv
            eid = self.post(dumps(doc), "tavus")
            r, _, _ = select.select([p.stdout], [], [], 10)
            self.assertTrue(r, "tail -f printed nothing")
            self.assertEqual(json.loads(p.stdout.readline())["id"], eid)
        finally:
            p.send_signal(signal.SIGINT)
            rc = p.wait(timeout=10)
            p.stdout.close()
            p.stderr.close()
        # ^C is how it stops: 0, as for `listen` (it ended by the signal: a review).
        self.assertEqual(rc, 0)

    def test_tail_follow_on_a_terminal_prints_rows(self):
        master, slave = pty.openpty()
        p = subprocess.Popen([CTL, "--url", self.url, "events", "tail", "-f", "-n", "1"],
                             stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL,
                             env=self.ctl.env)
        os.close(slave)
        try:
            wait_streaming(self.d.port)
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
            # /v1/rejections takes one exact source: a glob would list nothing, silently
            (["rejections", "list", "--source", "tav*"], 2, "an exact name, not a glob"),
            (["rejections", "list", "--source", "a", "--source", "b"], 2, "more than once"),
            # the global ones too: the last --url won, silently
            (["--url", "http://127.0.0.1:1", "events", "list"], 2, "--url is given more than once"),
            (["--token-file", "a", "--token-file", "b", "status"], 2,
             "--token-file is given more than once"),
            (["events", "list"] + ["--query=q%d=1" % i for i in range(5)], 2, "more than 4 times"),
            # /v1/sessions takes one provider: its help said "repeatable" and the API
            # refused the second (exit 1)
            (["sessions", "list", "--provider", "tavus", "--provider", "pailflow"], 2,
             "more than once"),
            # ... and names the command's own help, as every other usage error of a command
            (["events", "list", "--session", "a", "--session", "b"], 2,
             "more than once\nTry 'hookctl events list --help'."),
            # a limit the API would refuse is a usage error, not the daemon's 400
            (["events", "list", "-n", "abc"], 2, "integer from 1 to 500"),
            (["events", "list", "-n", "501"], 2, "integer from 1 to 500"),
            (["events", "tail", "-n", "0"], 2, "integer from 1 to 500"),
            (["sessions", "list", "-n", "-1"], 2, "integer from 1 to 500"),
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
        # A global option's repeat is refused after --help, as every other option's is.
        rc, out, err = self.ctl.run("--url", self.url, "--url", "http://127.0.0.1:1",
                                    "events", "list", "--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("usage: hookctl events list", out)
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
        rc, out, _ = self.ctl.run("rejections", "list", "--help")
        self.assertIn("(its exact name)", out)
        self.assertNotIn("glob", out)

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


    def test_bidi_controls_never_reach_the_terminal(self):
        # U+202E would show the rest of the row right to left: a crafted key could
        # make a row read as another.
        for ch in ("\u202e", "\u2066", "\u200f", "\u061c"):
            doc = payload_json("tavus.conversation.system.shutdown.json")
            doc["conversation_id"] = "c" + ch + fresh_id()
            self.post(dumps(doc), "raw")
        out = self.tty_ok("events", "list", "--source", "raw", env={"NO_COLOR": "1"})
        for ch in ("\u202e", "\u2066", "\u200f", "\u061c"):
            self.assertNotIn(ch, out)

    def test_line_and_paragraph_separators_never_reach_the_terminal(self):
        # U+2028 and U+2029 end a line as a newline does (terminals and the tools a
        # table is pasted into): a crafted key could start a row of its own.
        for ch in ("\u2028", "\u2029"):
            doc = payload_json("tavus.conversation.system.shutdown.json")
            doc["conversation_id"] = "c" + ch + fresh_id()
            self.post(dumps(doc), "raw")
        out = self.tty_ok("events", "list", "--source", "raw", env={"NO_COLOR": "1"})
        for ch in ("\u2028", "\u2029"):
            self.assertNotIn(ch, out)

    def test_wide_characters_keep_the_columns_aligned(self):
        # Same screen width, 16 columns each: CJK characters take two.
        tag = fresh_id()
        keys = ["w" + "\u754c" * 8 + tag, "w" + "x" * 16 + tag]
        for key in keys:
            doc = payload_json("tavus.conversation.system.shutdown.json")
            doc["conversation_id"] = key
            self.post(dumps(doc), "raw")
        # sessions list: the session's id is a column with others after it
        out = self.tty_ok("sessions", "list", "--provider", "tavus", "-n", "500",
                          env={"NO_COLOR": "1", "LC_ALL": "C.UTF-8"})

        def columns(text):
            return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

        starts = []
        for key in keys:
            line = next(ln for ln in out.splitlines() if key in ln)
            end = line.index(key) + len(key)
            nxt = end + len(line[end:]) - len(line[end:].lstrip(" "))
            starts.append(columns(line[:nxt]))
        self.assertEqual(starts[0], starts[1], out)

    def test_dotted_and_long_names_show_their_values(self):
        # A query or header name is a key, not a path: "user.id" is one name.
        long_name = "p" * 80
        eid = self.post(payload("botplatform.session_complete.json"),
                        "raw?user.id=42&%s=7" % long_name)
        out = self.tty_ok("events", "show", eid, env={"NO_COLOR": "1"})
        self.assertRegex(out, r"user\.id:?\s+42")
        self.assertRegex(out, long_name + r":?\s+7")

    def test_listen_needs_a_url(self):
        for args in ((), ("--forward-to", "ftp://127.0.0.1/x")):
            rc, out, err = self.ctl.run("--url", self.url, "listen", *args)
            self.assertEqual(rc, 2, err)
            self.assertIn("--forward-to", err)


class ProblemTextTest(unittest.TestCase):
    """A refusal's text reaches the terminal as cells do: a problem may quote what a
    sender wrote, so its controls and bidi characters never arrive raw."""

    def test_a_problem_never_drives_the_terminal(self):
        import http.server
        import threading
        problem = json.dumps({"type": "about:blank", "title": "Bad \x1b[31mthing",
                              "status": 400, "detail": "at \u202e\x07here",
                              "errors": [{"pointer": "/k\x1b]0;x", "detail": "d\x9b1m"}]}).encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(400)
                self.send_header("Content-Type", "application/problem+json")
                self.send_header("Content-Length", str(len(problem)))
                self.end_headers()
                self.wfile.write(problem)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ctl = Ctl()
        try:
            rc, out, err = ctl.run("--url", "http://127.0.0.1:%d" % server.server_address[1],
                                   "events", "list")
        finally:
            server.shutdown()
            server.server_close()
            ctl.cleanup()
        self.assertEqual(rc, 1, err)
        self.assertIn("HTTP 400: Bad ?[31mthing: at ??here", err)
        self.assertIn("/k?]0;x: d??1m", err)
        for ch in ("\x1b", "\x07", "\u202e", "\x9b"):
            self.assertNotIn(ch, err)


@sqlite_only("a database file deleted under the daemon")
class UnhealthyStatusTest(unittest.TestCase):
    """status when /healthz answers 503: the report is wanted most then."""

    def setUp(self):
        self.d = Daemon(DEFAULT_CONFIG + """
[destination crm]
url = http://127.0.0.1:9/hooks
allow_private = true
""").start()
        self.url = "http://127.0.0.1:%d" % self.d.port
        self.ctl = Ctl()

    def tearDown(self):
        self.ctl.cleanup()
        self.d.stop()
        log = self.d.log()
        self.d.cleanup()
        self.assertEqual(sanitizer_reports(log), [], log)

    def test_status_prints_the_report_of_an_unhealthy_daemon(self):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.d.db + suffix):
                os.unlink(self.d.db + suffix)
        self.assertEqual(self.d.post(payload("tavus.objective.completed.json"))[0], 503,
                         "the writer finds the file gone")
        status, health = self.d.get_json("/healthz")
        self.assertEqual((status, health["database"]), (503, "gone"), health)
        # It printed only "HTTP 503": a report has no problem title or detail to show.
        rc, out, err = self.ctl.run("--url", self.url, "status")
        self.assertEqual((rc, err), (1, ""), out)
        lines = json_lines(out)
        self.assertEqual(len(lines), 1, out)
        for key in ("status", "database", "database_detail"):
            self.assertEqual(lines[0]["health"].get(key), health[key], key)
        self.assertEqual([x["name"] for x in lines[0]["destinations"]], ["crm"])
        rc, out, err = self.ctl.tty("--url", self.url, "status", env={"NO_COLOR": "1"})
        self.assertEqual((rc, err), (1, ""), out)
        self.assertRegex(out, r"(?m)^status:\s+unavailable$")
        self.assertRegex(out, r"(?m)^database:\s+gone$")
        detail = re.escape(health["database_detail"])
        self.assertRegex(out, r"(?m)^database detail:\s+%s$" % detail)
        self.assertRegex(out, r"(?m)^crm\s")  # the destinations follow


class TokenTest(unittest.TestCase):
    """With [api] token_file: the token from --token-file, $HOOKCTL_TOKEN or the
    config file, in that order; the URL from --url, $HOOKCTL_URL or the config file."""

    # One daemon for the class: the tests only read through it, each with a home
    # (config file, token files) of its own; its log is checked for the token once.
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(DEFAULT_CONFIG + "[api]\ntoken_file = {dir}/token\n")
        with open(os.path.join(cls.d.dir, "token"), "w") as f:
            f.write(TOKEN + "\n")
        try:
            cls.d.start()
        except BaseException:
            cls.d.cleanup()  # tearDownClass does not run when setUpClass fails
            raise
        cls.url = "http://127.0.0.1:%d" % cls.d.port

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.log()
        cls.d.cleanup()
        assert rc == 0, "hookrelay did not exit cleanly:\n" + log
        assert sanitizer_reports(log) == [], log
        assert TOKEN not in log, log

    def setUp(self):
        self.ctl = Ctl()
        self.token_file = os.path.join(self.ctl.home, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "  \n")
        self.bad_file = os.path.join(self.ctl.home, "bad")
        with open(self.bad_file, "w") as f:
            f.write("not-the-token-at-all\n")

    def tearDown(self):
        self.ctl.cleanup()

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
        # Set but empty is unset: the config file's token, with the URL of --url too
        # (an empty HOOKCTL_TOKEN kept the config file unread: 401).
        self.write_config("token = %s\n" % TOKEN)
        self.assertEqual(self.rc("--url", self.url, env={"HOOKCTL_TOKEN": ""}), 0)
        rc, _, err = self.ctl.run("--token-file", "/nonexistent/token", "status")
        self.assertEqual(rc, 2, err)

    def test_an_empty_url_flag_is_a_usage_error(self):
        # --url "" (an unset variable, "$URL") went on to the config file's URL, past
        # $HOOKCTL_URL: a write such as a replay could reach another daemon.
        self.write_config("url = http://127.0.0.1:%d\ntoken = %s\n" % (free_port(), TOKEN))
        rc, out, err = self.ctl.run("--url", "", "destinations",
                                    env={"HOOKCTL_URL": self.url, "HOOKCTL_TOKEN": TOKEN})
        self.assertEqual(rc, 2, out + err)
        self.assertIn("--url needs a URL", err)

    def test_a_config_files_long_url_is_not_cut(self):
        # The config file's lines are read up to 64 KiB now (long tokens), but its url
        # is still held in 1,023 characters: a longer one is cut, silently, and hookctl
        # talks to the URL cut short, where --url with the same URL says "bad URL".
        long_url = "http://127.0.0.1:%d/%s" % (free_port(), "x" * 1100)
        rc, _, err = self.ctl.run("--url", long_url, "--token-file", self.token_file,
                                  "destinations")
        self.assertEqual(rc, 2, err)
        self.write_config("url = %s\n" % long_url)
        rc, _, err = self.ctl.run("--token-file", self.token_file, "destinations")
        self.assertEqual(rc, 2, "the config file's %d-character url was cut and used: %s"
                         % (len(long_url), err[:80]))

    def test_an_unreadable_config_file_is_named_with_its_error(self):
        # It was "PATH:0: expected `url = ...`": a line 0, and no word of why. A
        # write-only file refuses even root: /proc/sys/vm/drop_caches.
        path = os.path.join(self.ctl.home, ".config", "hookctl")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink("/proc/sys/vm/drop_caches", path)
        rc, _, err = self.ctl.run("--url", self.url, "destinations")
        self.assertEqual(rc, 2, err)
        self.assertIn("hookctl: %s: Permission denied" % path, err)
        self.assertNotIn(":0:", err)
        os.unlink(path)
        os.mkdir(path)  # opens, and every read fails
        rc, _, err = self.ctl.run("--url", self.url, "destinations")
        self.assertEqual(rc, 2, err)
        self.assertIn("hookctl: %s: Is a directory" % path, err)

    def test_a_readable_config_with_a_token_is_warned_about(self):
        self.write_config("url = %s\ntoken = %s\n" % (self.url, TOKEN), mode=0o644)
        rc, _, err = self.ctl.run("destinations")
        self.assertEqual(rc, 0, err)
        self.assertIn("others can read it", err)
        self.write_config("this is not a config line\n")
        rc, _, err = self.ctl.run("destinations")
        self.assertEqual(rc, 2, err)


class LongTokenTest(unittest.TestCase):
    """[api] token_file takes a token of any length (one line of up to 64 KiB; at least
    16 characters), and the daemon compares it whole. hookctl must send the token it
    read whole too: `openssl rand -hex 1024` is a valid token, which curl and the web
    inspector use, and a hookctl that cut it answered every command 401 with nothing to
    say why."""

    LONG = "hookctl-long-" + "0123456789abcdef" * 128  # 2061 characters

    def setUp(self):
        self.d = Daemon(DEFAULT_CONFIG + "[api]\ntoken_file = {dir}/token\n")
        with open(os.path.join(self.d.dir, "token"), "w") as f:
            f.write(self.LONG + "\n")
        os.chmod(os.path.join(self.d.dir, "token"), 0o600)
        self.d.start()
        self.ctl = Ctl()
        self.token_file = os.path.join(self.ctl.home, "token")
        with open(self.token_file, "w") as f:
            f.write(self.LONG + "\n")

    def tearDown(self):
        self.ctl.cleanup()
        self.d.stop()
        self.d.cleanup()

    def test_a_long_token_is_sent_whole(self):
        # The daemon takes it: the same request with the whole token in the header.
        status, _, _ = self.d.request("GET", "/v1/destinations",
                                      headers={"Authorization": "Bearer " + self.LONG})
        self.assertEqual(status, 200)
        url = "http://127.0.0.1:%d" % self.d.port
        for how, args, env in (("--token-file", ("--token-file", self.token_file), None),
                               ("$HOOKCTL_TOKEN", (), {"HOOKCTL_TOKEN": self.LONG})):
            with self.subTest(how):
                rc, out, err = self.ctl.run("--url", url, *args, "destinations", env=env)
                self.assertEqual(rc, 0, "hookctl with a %d-character token from %s: %s"
                                 % (len(self.LONG), how, err.strip()))

    def test_a_config_files_long_token_is_sent_whole(self):
        # inih's default line of 200 bytes split a long token's line and called its
        # second half a bad line; and the token was held in 1,023 characters.
        path = os.path.join(self.ctl.home, ".config", "hookctl")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("url = http://127.0.0.1:%d\ntoken = %s\n" % (self.d.port, self.LONG))
        os.chmod(path, 0o600)
        rc, out, err = self.ctl.run("destinations")
        self.assertEqual(rc, 0, err.strip())


class ReplayConfirmTest(unittest.TestCase):
    """replay --destination with no filter: says how many, queues only with --yes."""

    def setUp(self):
        self.sink = Sink()
        self.d = Daemon(DEFAULT_CONFIG + """
[destination crm]
url = %s/in
allow_private = true
""" % self.sink.url).start()
        self.url = "http://127.0.0.1:%d" % self.d.port
        self.ctl = Ctl()
        for _ in range(3):
            status, _, body = self.d.post({"n": fresh_id()})
            self.assertEqual(status, 200, body)
        self.sink.wait_count(3)
        self.wait_settled()

    def tearDown(self):
        self.ctl.cleanup()
        rc = self.d.stop()
        log = self.d.log()
        self.d.cleanup()
        self.sink.stop()
        self.assertEqual(rc, 0, log)
        self.assertEqual(sanitizer_reports(log), [], log)

    def deliveries(self):
        status, doc = self.d.get_json("/v1/deliveries?destination=crm&limit=500")
        self.assertEqual(status, 200, doc)
        return doc["deliveries"]

    def wait_settled(self):
        deadline = time.monotonic() + 20
        while any(d["status"] == "pending" for d in self.deliveries()):
            self.assertLess(time.monotonic(), deadline, "deliveries still pending")
            time.sleep(0.05)

    def test_no_filter_queues_nothing_without_yes(self):
        rc, out, err = self.ctl.run("--url", self.url, "replay", "--destination", "crm")
        self.assertEqual(rc, 2, err)
        self.assertIn("would queue 3 deliveries to crm", err)
        self.assertIn("--yes", err)
        self.assertEqual(out, "")
        time.sleep(0.3)
        self.assertEqual(len(self.deliveries()), 3)
        self.assertEqual(len(self.sink.received()), 3)

    def test_yes_queues_them(self):
        rc, out, err = self.ctl.run("--url", self.url, "replay", "--destination", "crm", "--yes")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json_lines(out), [{"deliveries": 3}])
        self.sink.wait_count(6)
        self.assertEqual(len(self.deliveries()), 6)

    def test_a_filter_needs_no_confirmation(self):
        rc, out, err = self.ctl.run("--url", self.url, "replay", "--destination", "crm",
                                    "--since", "1h")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json_lines(out), [{"deliveries": 3}])
        self.sink.wait_count(6)

    def test_on_a_terminal_it_asks(self):
        for answer, queued in ((b"n\n", 0), (b"y\n", 3)):
            with self.subTest(answer=answer):
                master, slave = pty.openpty()
                p = subprocess.Popen([CTL, "--url", self.url, "replay", "--destination", "crm"],
                                     stdin=slave, stdout=slave, stderr=slave, env=self.ctl.env)
                os.close(slave)
                seen = b""
                deadline = time.monotonic() + 15
                while b"[y/N]" not in seen and time.monotonic() < deadline:
                    if select.select([master], [], [], 0.2)[0]:
                        seen += os.read(master, 4096)
                self.assertIn(b"3 deliveries. Queue them?", seen)
                before = len(self.deliveries())
                os.write(master, answer)
                out = read_pty(master, p, 15)
                rc = p.wait(timeout=15)
                self.assertEqual(rc, 0 if queued else 2, out)
                self.assertEqual(len(self.deliveries()), before + queued)
                if queued:
                    self.assertIn("3 deliveries queued", out)
                    self.wait_settled()

    def test_nothing_to_replay_is_not_an_error(self):
        rc, out, err = self.ctl.run("--url", self.url, "replay", "--destination", "crm",
                                    "--status", "dead")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json_lines(out), [{"deliveries": 0}])


class ListenTest(unittest.TestCase):
    """listen --forward-to: each new event's stored body and kept headers go to a
    local server, one line each; a daemon restart loses and repeats nothing."""

    def setUp(self):
        self.port = free_port()
        # At debug level: listen() waits for the line of its stream's opening.
        self.config = (DEFAULT_CONFIG.replace("127.0.0.1:0", "127.0.0.1:%d" % self.port)
                       + "[log]\nlevel = debug\n")
        self.d = Daemon(self.config).start()
        self.again = None
        self.local = Sink()
        self.ctl = Ctl()
        self.p = None

    def tearDown(self):
        if self.p is not None and self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=10)
        if self.p is not None:
            self.p.stdout.close()
            self.p.stderr.close()
        for d in (self.again, self.d):
            if d is not None and d.proc is not None:
                log = d.log()
                self.assertEqual(d.stop(), 0, log)
                self.assertEqual(sanitizer_reports(log), [], log)
        self.d.cleanup()
        self.local.stop()
        self.ctl.cleanup()

    def listen(self, *args, opened=True):
        """Starts listen and, if `opened`, waits until its stream is open (then it gets
        every event stored after)."""
        before = self.d.log().count("stream: opened by ")
        self.p = subprocess.Popen([CTL, "--url", "http://127.0.0.1:%d" % self.port, "listen",
                                   "--forward-to", self.local.url + "/dev/hook"] + list(args),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=self.ctl.env,
                                  bufsize=0)  # no read-ahead: next_line() selects on the pipe
        # It prints a line on stderr once it set out; the stream opens right after.
        self.assertTrue(select.select([self.p.stderr], [], [], 10)[0], "listen said nothing")
        self.assertIn(b"forwarding new events", self.p.stderr.readline())
        if opened:
            wait_stream_opened(self.d, before)

    def next_line(self):
        if not select.select([self.p.stdout], [], [], 20)[0]:
            self.p.kill()  # its stderr says where it was: reconnecting, refused, waiting
            self.fail("listen printed nothing; its stderr:\n" + self.p.stderr.read().decode())
        return json.loads(self.p.stdout.readline())

    def post(self, d, body, source="default", headers=None):
        status, _, data = d.post(body, source, headers=headers)
        self.assertEqual(status, 200, data)
        return json.loads(data)["id"]

    def open_streams(self, n):
        """n raw GET /v1/stream connections, each past its 200."""
        socks = []
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            c.sendall(b"GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      b"Accept: text/event-stream\r\n\r\n" % self.port)
            self.assertTrue(c.recv(64).startswith(b"HTTP/1.1 200"))
            socks.append(c)
        return socks

    def test_a_stream_refused_for_now_is_tried_again(self):
        # The daemon holds at most 64 streams and answers the 65th 503, as it does a
        # stream asked for while it shuts down for a restart: listen once took any
        # refusal as final and exited, so it stopped following across a slow restart.
        self.assertEqual(self.d.stop(), 0, self.d.log())
        self.d = Daemon(self.config.replace("[server]\n", "[server]\nmax_connections_per_ip = 100\n"),
                        workdir=self.d.dir).start()
        socks = self.open_streams(64)
        try:
            self.listen("--source", "default", opened=False)
            line = self.p.stderr.readline()
            # ... after the answer's Retry-After (5 s), not the stream's 3 s.
            self.assertIn(b"refused for now (503); reconnecting in 5.0 s", line)
            self.assertIsNone(self.p.poll(), "listen gave up on a 503")
        finally:
            for c in socks:
                c.close()
        # It tries again then and follows new events from then on: post once it is back
        # (its stream opened, 5 s after the 503: the 65th stream of the daemon's log, the
        # 64 it refused it for first), not a fixed 6.5 s later.
        wait_stream_opened(self.d, 64)
        self.assertIsNone(self.p.poll(), "listen gave up")
        eid = self.post(self.d, {"after": "busy", "nonce": fresh_id()})
        self.assertEqual(self.next_line()["id"], eid)

    def test_forwards_exact_bodies_and_kept_headers_across_a_restart(self):
        self.listen("--source", "default", "--source", "tavus")
        body = TRICKY
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Tavus/1.0",
                   "webhook-id": "msg_" + fresh_id(), "X-Request-Id": "req-1",
                   "Authorization": "Bearer not-kept", "Cookie": "a=b"}
        first = self.post(self.d, body, headers=headers)
        line = self.next_line()
        self.assertEqual((line["id"], line["status"], line["error"]), (first, 200, None))
        got = self.local.wait_count(1)[0]
        self.assertEqual(got.path, "/dev/hook")
        self.assertEqual(got.body, body)
        for name in ("content-type", "user-agent", "webhook-id", "x-request-id"):
            self.assertEqual(got.headers.get(name), headers[[k for k in headers
                                                             if k.lower() == name][0]], name)
        self.assertNotIn("authorization", got.headers)
        self.assertNotIn("cookie", got.headers)
        # Not in the filter: not forwarded.
        self.post(self.d, payload("botplatform.session_complete.json"), source="pailflow")
        second = self.post(self.d, payload("tavus.video.completed.json"), source="tavus")
        self.assertEqual(self.next_line()["id"], second)
        self.assertEqual(self.local.wait_count(2)[1].body, payload("tavus.video.completed.json"))

        # The daemon restarts; events stored before listen reconnects still come, once.
        self.assertEqual(self.d.stop(), 0, self.d.log())
        self.again = Daemon(self.config, workdir=self.d.dir).start()
        missed = [self.post(self.again, {"n": i, "nonce": fresh_id()}) for i in range(3)]
        self.assertEqual([self.next_line()["id"] for _ in missed], missed)
        later = self.post(self.again, {"later": True})
        self.assertEqual(self.next_line()["id"], later)
        bodies = [r.body for r in self.local.wait_count(6)]
        self.assertEqual(len(bodies), 6)
        self.assertEqual(bodies[5], b'{"later": true}')

        # A local server that fails is reported, not retried; one that is gone too.
        self.local.set("fail")
        failing = self.post(self.again, {"fails": True})
        line = self.next_line()
        self.assertEqual((line["id"], line["status"]), (failing, 500))
        self.local.set("ok")

        self.p.send_signal(signal.SIGINT)
        rc = self.p.wait(timeout=10)
        err = self.p.stderr.read().decode()
        self.assertEqual(rc, 0, err)
        self.assertIn("reconnecting", err)
        self.assertIn("6 events forwarded, 1 not accepted", err)
        self.assertEqual(len(self.local.received()), 7)

    def test_events_whose_bodies_it_could_not_fetch_come_again_after_a_restart(self):
        # Frames it had received but not yet handled when the daemon stopped: their
        # /raw fetches found no daemon, and listen moved past them, so the reconnect
        # resumed after them and they were never forwarded.
        self.local.set("gated")
        self.local.gate.clear()
        self.listen()
        ids = [self.post(self.d, {"n": i, "nonce": fresh_id()}) for i in range(3)]
        self.local.wait_count(1)  # the first one's POST waits at the gate
        time.sleep(0.3)           # the other frames are on the wire
        self.assertEqual(self.d.stop(), 0, self.d.log())
        self.local.gate.set()
        self.assertEqual(self.next_line()["id"], ids[0])
        time.sleep(0.5)  # it tries the next bodies and finds no daemon
        self.again = Daemon(self.config, workdir=self.d.dir).start()
        got = [self.next_line() for _ in ids[1:]]
        self.assertEqual([(x["id"], x["status"]) for x in got], [(i, 200) for i in ids[1:]])
        self.assertEqual([json.loads(r.body)["n"] for r in self.local.wait_count(3)], [0, 1, 2])

    def test_a_local_server_that_is_down_is_reported(self):
        self.local.stop()
        self.listen()
        eid = self.post(self.d, {"n": 1})
        line = self.next_line()
        self.assertEqual(line["id"], eid)
        self.assertIsNone(line["status"])
        self.assertTrue(line["error"])


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
            wait_streaming(port)
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

    def test_tail_follow_cut_off_before_any_event_misses_nothing(self):
        # A reload ends every stream; one that had no event yet resumes from the
        # position its opening frame gave, not from when it comes back 3 s later.
        d, ctl, p = Daemon(DEFAULT_CONFIG), Ctl(), None
        try:
            d.start()
            p = subprocess.Popen([CTL, "--url", "http://127.0.0.1:%d" % d.port, "events", "tail",
                                  "-f", "-n", "0"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ctl.env)
            # The stream is open and waiting: connected, and half a second more for its
            # opening frame (wait_streaming() gives it 0.2 s), not a second from the start.
            wait_streaming(d.port)
            time.sleep(0.3)
            deadline = time.monotonic() + 10
            before = d.log().count("reload: ")
            d.proc.send_signal(signal.SIGHUP)
            while d.log().count("reload: ") == before:
                self.assertLess(time.monotonic(), deadline, d.log())
                time.sleep(0.05)
            missed = json.loads(d.post({"n": 1})[2])["id"]  # while tail -f waits to retry
            self.assertTrue(select.select([p.stdout], [], [], 15)[0], "tail -f printed nothing")
            self.assertEqual(json.loads(p.stdout.readline())["id"], missed)
        finally:
            if p is not None:
                p.kill()
                p.wait(timeout=10)
                p.stdout.close()
                p.stderr.close()
            self.assertEqual(d.stop(), 0, d.log())
            d.cleanup()
            ctl.cleanup()


FILL = os.environ.get("HR_FILL_BIN", "build/hr_fill")
PAYLOADS_DIR = os.environ.get("HR_PAYLOADS_DIR",
                              os.path.join(os.path.dirname(__file__), "..", "payloads"))


@sqlite_only("hr_fill writes a SQLite file")
class LargeTableTest(unittest.TestCase):
    """`events list --all` on a terminal holds every page, then a 512-byte cell for
    each column of each row, before it prints anything (~6 KB an event: 120 MB for
    20,000, gigabytes for a real log)."""

    @unittest.skipIf(SANITIZED, "AddressSanitizer reserves more address space than the limit")
    def test_a_table_it_cannot_hold_is_an_error_not_an_empty_success(self):
        d = Daemon()
        ctl = Ctl()
        self.addCleanup(d.cleanup)
        self.addCleanup(ctl.cleanup)
        os.makedirs(os.path.dirname(d.db), exist_ok=True)
        subprocess.run([FILL, "--db", d.db, "--payloads", PAYLOADS_DIR, "--events", "20000",
                        "--quiet"], check=True, stdout=subprocess.DEVNULL, timeout=300)
        d.start()
        # 96 MiB of address space: every page is read (each 500 events of JSON), and
        # the table's cells (20,000 x 5 x 512 bytes) are not to be had.
        master, slave = pty.openpty()
        limit = 96 << 20
        with tempfile.TemporaryFile() as err:
            p = subprocess.Popen(
                [CTL, "--url", "http://127.0.0.1:%d" % d.port, "events", "list", "--all",
                 "-n", "500"], stdin=subprocess.DEVNULL, stdout=slave, stderr=err,
                env=ctl.environ({"NO_COLOR": "1"}),
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
            os.close(slave)
            out = read_pty(master, p, 120)
            rc = p.wait(timeout=120)
            err.seek(0)
            err = err.read().decode()
        rows = [line for line in out.splitlines() if line.startswith("20")]
        # Either the 20,000 rows, or a failure said and an exit status that is not 0:
        # it printed nothing at all, not even the header, and exited 0.
        if len(rows) != 20000:
            self.assertNotEqual(rc, 0, "no rows (%d of 20000), nothing on stderr (%r), exit 0"
                                % (len(rows), err))
            self.assertTrue(err.strip(), "exit %d without a word" % rc)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
