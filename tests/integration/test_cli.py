"""The command line: --version, --help, -t, --config-reference, exit statuses.

0 for success, 64 for bad usage, 78 (EX_CONFIG) for a bad configuration (with
FILE:LINE) and for a database another hookrelay holds.
"""

import base64
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import hrtest
from hrtest import DEFAULT_CONFIG, Daemon, sanitizer_reports

SRC = os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
EX_USAGE, EX_CONFIG = 64, 78


def hookrelay(*args, timeout=30):
    return subprocess.run([hrtest.BIN] + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def documented_keys():
    """{section: [keys]} from the tables of docs/configuration.md."""
    keys, section = {}, None
    with open(os.path.join(SRC, "docs", "configuration.md")) as f:
        for line in f:
            m = re.match(r"## \[([a-z]+)( NAME)?\]", line)
            if m:
                section = m.group(1)
                keys[section] = []
                continue
            m = re.match(r"\| `([a-z_0-9]+)` \|", line)
            if m and section:
                keys[section].append(m.group(1))
    return keys


class CliTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hrtest-cli-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, text, name="hookrelay.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text.format(db=os.path.join(self.dir, "var", "hookrelay.db"), dir=self.dir))
        return path

    def assertClean(self, r):
        self.assertEqual(sanitizer_reports(r.stderr), [], r.stderr)

    def test_version(self):
        r = hookrelay("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^hookrelay \d+\.\d+\.\d+(\+git\.\d+\.[0-9a-f]{7,})?\n$")
        self.assertClean(r)
        # Built from a git checkout, the version names the commit (cmake/version.cmake):
        # with the release alone, every build said 0.1.0 and every package was
        # hookrelay_0.1.0-1, so apt took a newer one for the one installed.
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if not shutil.which("git"):
            self.skipTest("git is not installed")
        head = subprocess.run(["git", "-C", src, "rev-parse", "--short=7", "HEAD"],
                              capture_output=True, text=True)
        if head.returncode != 0:
            self.skipTest("not a git checkout")
        self.assertTrue(r.stdout.strip().endswith("." + head.stdout.strip()),
                        "%r is not HEAD's build (%s): rebuild" % (r.stdout, head.stdout.strip()))

    def test_help_names_every_option_and_config_key(self):
        r = hookrelay("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for opt in ("--config", "--listen", "--db", "--log-level", "--check-config", "--version",
                    "--config-reference", "backup FILE", "SIGHUP", "78", "64"):
            self.assertIn(opt, r.stdout)
        keys = documented_keys()
        self.assertGreaterEqual(set(keys), {"server", "storage", "api", "log", "source", "destination"})
        # Each section's keys, in its block of the help.
        for section, names in keys.items():
            m = re.search(r"^\[%s( NAME)?\]\n((?:  .*\n)+)" % section, r.stdout, re.M)
            self.assertIsNotNone(m, "--help has no [%s] block" % section)
            listed = re.findall(r"^  ([a-z_0-9]+) ", m.group(2), re.M)
            self.assertEqual(listed, names, section)
        self.assertClean(r)

    def test_config_reference_is_the_committed_doc(self):
        r = hookrelay("--config-reference")
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(os.path.join(SRC, "docs", "configuration.md")) as f:
            self.assertEqual(r.stdout, f.read(), "regenerate: hookrelay --config-reference > "
                             "docs/configuration.md")

    def test_shipped_config_comments_show_the_defaults(self):
        # Its header says a commented-out line shows the default: one that shows
        # another value is taken for it when uncommented (allow_private = true once).
        ref = hookrelay("--config-reference").stdout
        defaults, section = {}, None
        for line in ref.splitlines():
            m = re.match(r"^## \[(\w+)", line)
            section = m.group(1) if m else section
            m = re.match(r"^\| `(\w+)` \| [^|]* \| ([^|]*) \|", line)
            if m and section:
                d = m.group(2).strip().strip("`")
                defaults[(section, m.group(1))] = "" if d == "(empty)" else d
        self.assertIn(("destination", "allow_private"), defaults)
        shown, section = 0, None
        with open(os.path.join(SRC, "config", "hookrelay.conf")) as f:
            for n, line in enumerate(f, 1):
                m = re.match(r"^#?\[(\w+)", line)
                section = m.group(1) if m else section
                m = re.match(r"^#(\w+) =(?: (.*))?$", line.rstrip("\n"))
                if not m or (section, m.group(1)) not in defaults:
                    continue
                want = defaults[(section, m.group(1))]
                if want != "(required)":
                    shown += 1
                    self.assertEqual(m.group(2) or "", want, "config/hookrelay.conf:%d" % n)
        self.assertGreater(shown, 40)

    def test_check_config(self):
        good = self.config(DEFAULT_CONFIG)
        r = hookrelay("-t", "-c", good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration ok", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "var")), "-t created the database")
        r = hookrelay("--check-config", "-c", good)
        self.assertEqual(r.returncode, 0, r.stderr)

        # The shipped dev config passes too (test_systemd checks the installed one).
        self.assertEqual(hookrelay("-t", "-c", os.path.join(SRC, "config", "hookrelay.conf")).returncode, 0)

        bad = [
            ("[server]\nlisten = 127.0.0.1:0\nlisten_on = 1\n", 3, "listen_on"),
            ("[server]\nlisten = 127.0.0.1:0\n[storage]\npath = {db}\nbatch_max = 0\n", 5, "batch_max"),
            ("[server]\nlisten = 127.0.0.1:0\n[nonsense]\n", 3, "nonsense"),
            ("[server]\nlisten = 127.0.0.1:0\nthis is not a key value line\n", 3, ""),
            ("[server]\nlisten = 127.0.0.1:0\n[destination d]\ntimeout = 5s\n", 3, "url"),
        ]
        for i, (text, line, word) in enumerate(bad):
            path = self.config(text, "bad%d.conf" % i)
            r = hookrelay("-t", "-c", path)
            self.assertEqual(r.returncode, EX_CONFIG, (text, r.stdout, r.stderr))
            self.assertIn("%s:%d:" % (path, line), r.stderr, text)
            self.assertIn(word, r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertClean(r)

        # pool and lease size the PostgreSQL engine: with SQLite, said, not refused
        path = self.config(DEFAULT_CONFIG + "[storage]\npool = 4\nlease = 1m\n", "pg_keys.conf")
        r = hookrelay("-t", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        for key in ("pool", "lease"):
            self.assertRegex(r.stderr, re.escape(path) + r":\d+: \[storage\] %s is for backend = "
                             "postgresql: with SQLite it has no effect" % key)

        # A replay of a signed request past dedup_window but within tolerance would be new.
        secret = os.path.join(self.dir, "sw.secret")
        with open(secret, "w") as f:
            f.write("whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" + "\n")
        os.chmod(secret, 0o600)
        sw = "[source sw]\nauth = standard-webhooks\nsecret_file = %s\ntolerance = 1h\n" % secret
        path = self.config(DEFAULT_CONFIG + sw + "dedup_window = 1m\n", "short_window.conf")
        r = hookrelay("-t", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, re.escape(path) + r":\d+: \[source sw\] dedup_window is shorter "
                         "than tolerance: a signed request sent again between the two is stored "
                         "as a new event")
        path = self.config(DEFAULT_CONFIG + sw + "dedup_window = 2h\n", "long_window.conf")
        r = hookrelay("-t", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("dedup_window", r.stderr)

        # A destination key past 64 bytes was "not whsec_<base64>" (review R4).
        for key, said in ((base64.b64encode(b"k" * 65).decode(), "a key longer than 64 bytes"),
                          ("k!", "a secret that is not whsec_<base64>")):
            with open(secret, "w") as f:
                f.write("whsec_" + key + "\n")
            path = self.config(DEFAULT_CONFIG + "[destination d]\nurl = http://127.0.0.1:9/\n"
                               "secret_file = %s\n" % secret, "long_key.conf")
            r = hookrelay("-t", "-c", path)
            self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
            self.assertIn(secret + ":1: [destination d] secret_file holds " + said, r.stderr)

        r = hookrelay("-t", "-c", os.path.join(self.dir, "missing.conf"))
        self.assertEqual(r.returncode, EX_CONFIG)
        self.assertIn("missing.conf", r.stderr)

    def test_the_open_source_warning_judges_the_listen_address_in_force(self):
        # `-t` checks what a start would run: with --listen the daemon listens there, not
        # on the file's address. The warning for a source anyone may post to (auth = none,
        # no allow_cidrs, on an address other machines reach) judged the file's [server]
        # listen, read before --listen replaced it: silent for a daemon that listens on
        # every address, and said for one --listen keeps on loopback.
        open_source = "[source open]\nprovider = auto\n"
        loopback = self.config("[server]\nlisten = 127.0.0.1:8080\n" + open_source, "loop.conf")
        r = hookrelay("-t", "--listen", "0.0.0.0:8080", "-c", loopback)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("[source open] takes events from anyone who can reach 0.0.0.0:8080",
                      r.stderr, "no warning for a source open on every address")
        public = self.config("[server]\nlisten = 0.0.0.0:8080\n" + open_source, "public.conf")
        r = hookrelay("-t", "--listen", "127.0.0.1:8080", "-c", public)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("takes events from anyone", r.stderr,
                         "a warning for an address --listen replaced")

    def test_bad_usage(self):
        # Each says what was wrong in a line or two and points at --help: the whole
        # help, key table included, used to bury the one line that mattered (an
        # operations review), and --log-level loud exited 78, not 64.
        good = self.config(DEFAULT_CONFIG)
        for args, said in ((["--no-such-option"], "no-such-option"), (["-c"], "requires"),
                           (["-c", good, "extra"], 'unknown command "extra"'),
                           (["-c", good, "backup"], "backup takes one FILE"),
                           (["-c", good, "backup", "a", "b"], "backup takes one FILE"),
                           (["-x"], "invalid option"),
                           (["-t", "-c", good, "--log-level", "loud"], "--log-level loud"),
                           # -t said ok, a start exited 1 (restarted by the unit): review R4
                           (["-t", "-c", good, "--listen", "bogus"], "--listen bogus"),
                           (["-c", good, "--listen", "127.0.0.1"], "--listen 127.0.0.1"),
                           (["migrate", "x"], "migrate takes no operand")):
            r = hookrelay(*args)
            self.assertEqual(r.returncode, EX_USAGE, (args, r.stderr))
            self.assertIn(said, r.stderr, args)
            self.assertIn("Try 'hookrelay --help'.", r.stderr, args)
            self.assertLessEqual(len(r.stderr.splitlines()), 2, r.stderr)
            self.assertEqual(r.stdout, "", args)
            self.assertClean(r)

    def test_check_config_reports_every_error(self):
        # hookrelay(8), -t: "Read the configuration, report every error as
        # FILE:LINE: reason". A file with two errors says only the first: fixed, the
        # next -t stops at the second (one round trip per error for whoever checks).
        path = self.config("[server]\nlisten = nope\n[storage]\npath = {db}\nbatch_max = 0\n"
                           "[source a]\nprovider = auto\n", "two_errors.conf")
        r = hookrelay("-t", "-c", path)
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        self.assertIn("%s:2:" % path, r.stderr)
        self.assertIn("%s:5:" % path, r.stderr, "only the first of two errors was reported")

    def test_check_config_reports_every_malformed_line(self):
        # hookrelay(8), -t: every error as FILE:LINE. A line whose inline comment
        # comes before its '=' is malformed to inih but not to read_line()'s own
        # check: only inih's first such line is said, at the end, out of file order.
        path = self.config("[server]\nlisten = 127.0.0.1:0\n[storage]\npath = {db}\n"
                           "[source a]\nauth = none\nfoo ; = bar\nbar ; = baz\n"
                           "[source b]\nauth = bogus\n", "inline_malformed.conf")
        r = hookrelay("-t", "-c", path)
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        lines = [ln for ln in r.stderr.splitlines() if path + ":" in ln]
        self.assertEqual([ln.split(path + ":")[1].split(":")[0] for ln in lines],
                         ["7", "8", "10"], r.stderr)

    def test_check_config_reports_every_secret_file_that_fails(self):
        # hookrelay(8), -t: every error, not the first. A start stops at the first
        # secret file it cannot read; -t named only that one too, so a file with four
        # took four rounds. Each is said, destinations first, then sources, then the
        # API's token files, and the status is still 78.
        missing = [os.path.join(self.dir, n) for n in ("d1", "d2", "s1", "s2", "tok", "rtok")]
        text = ("[server]\nlisten = 127.0.0.1:0\n[storage]\npath = {db}\n"
                "[api]\ntoken_file = %s\nread_token_file = %s\n"
                "[source a]\nauth = hmac\nsecret_file = %s\n[source open]\nauth = none\n"
                "[source c]\nauth = standard-webhooks\nsecret_file = %s\n"
                "[destination d]\nurl = http://example.com/d\nsecret_file = %s\n"
                "[destination e]\nurl = http://example.com/e\nsecret_file = %s\n"
                ) % (missing[4], missing[5], missing[2], missing[3], missing[0], missing[1])
        r = hookrelay("-t", "-c", self.config(text, "secrets.conf"))
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        said = [m for ln in r.stderr.splitlines() for m in missing if ln.find(m + ":") >= 0]
        self.assertEqual(said, missing, r.stderr)
        # A start still stops at the first (its error is the whole answer).
        r = hookrelay("-c", self.config(text, "secrets_start.conf"))
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        self.assertIn(missing[0], r.stderr)
        self.assertNotIn(missing[1], r.stderr)

    def test_an_unknown_config_reference_format_says_so(self):
        # hookrelay(8), EXIT STATUS 64: "Bad usage ... One line says which, and where
        # --help is." --config-reference=json exits 64 with nothing at all on stderr.
        r = hookrelay("--config-reference=json")
        self.assertEqual(r.returncode, EX_USAGE, r.stderr)
        self.assertIn("--config-reference", r.stderr)
        self.assertIn("Try 'hookrelay --help'.", r.stderr)
        self.assertEqual(r.stdout, "")

    def test_checks_that_would_never_run_or_always_fail_are_said(self):
        # Each loads (a warning, status 0), but the operator meant something else: a
        # timestamp header hmac_signed = body never reads; a destination URL whose
        # address the SSRF guard refuses (every attempt "blocked"); a connect_timeout
        # the attempt's timeout always cuts first (review R42CF).
        secret = os.path.join(self.dir, "hmac.secret")
        with open(secret, "w") as f:
            f.write("0123456789abcdef0123\n")
        os.chmod(secret, 0o600)
        text = DEFAULT_CONFIG + (
            "[source signed]\nauth = hmac\nsecret_file = %s\nhmac_timestamp_header = X-Ts\n"
            "[destination local]\nurl = http://127.0.0.1:9/in\n"
            "[destination v6]\nurl = http://[::1]:9/in\n"
            "[destination slow]\nurl = http://example.com/in\nconnect_timeout = 20s\n"
            "timeout = 10s\n"
            "[destination fine]\nurl = http://10.0.0.7/in\nallow_private = true\n") % secret
        path = self.config(text, "never_runs.conf")
        r = hookrelay("-t", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        for said in (r"\[source signed\] hmac_timestamp_header is not read with hmac_signed = body",
                     r"\[destination local\] url names 127\.0\.0\.1, which is refused without "
                     r"allow_private = true",
                     r"\[destination v6\] url names \[::1\], which is refused",
                     r"\[destination slow\] connect_timeout is longer than timeout"):
            self.assertRegex(r.stderr, re.escape(path) + r":\d+: " + said)
        self.assertNotIn("[destination fine]", r.stderr)
        self.assertClean(r)

    def test_a_destination_named_localhost_is_said_as_127_0_0_1_is(self):
        # docs/forwarding.md: "Every spelling that resolves to such an address is caught
        # the same way: `localhost`, `[::1]`, ..." (every attempt fails "blocked"), and -t
        # warns of a destination whose every attempt would fail (configuration.md).
        # 2130706433 and 0177.0.0.1 are said; localhost, which always names loopback
        # (RFC 6761, 6.3; libcurl answers it without the resolver), loads silently.
        text = DEFAULT_CONFIG + "[destination local]\nurl = http://localhost:9/in\n"
        path = self.config(text, "localhost_dest.conf")
        r = hookrelay("-t", "-c", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, re.escape(path) + r":\d+: \[destination local\] url names "
                         r"localhost, which is refused without allow_private = true")

    @hrtest.sqlite_only("hookrelay backup copies the SQLite file")
    def test_check_config_with_a_command_does_not_run_it(self):
        # -t is "read the configuration, report errors, exit" (--help, operations.md):
        # given with backup FILE it must only check (or refuse the mix, 64), never write
        # FILE; it wrote the backup and exited 0 as if -t were not there.
        d = Daemon(DEFAULT_CONFIG)
        try:
            d.start()
            self.assertEqual(d.stop(), 0, d.log())
            dest = os.path.join(self.dir, "copy.db")
            r = hookrelay("-t", "-c", d.config_path, "backup", dest)
            self.assertIn(r.returncode, (0, EX_USAGE), r.stdout + r.stderr)
            self.assertFalse(os.path.exists(dest), "-t wrote a backup: " + r.stdout + r.stderr)
            self.assertClean(r)
        finally:
            d.cleanup()

    def test_an_empty_db_override_is_refused_as_an_empty_path_is(self):
        # [storage] path = "" is refused ("must not be empty"), but --db "" replaced the
        # path after that check: -t said "configuration ok" and a start then failed
        # opening the database ("storage : : No such file or directory", exit 1, which
        # the unit restarts), as --listen bogus once did (review R4).
        good = self.config(DEFAULT_CONFIG)
        r = hookrelay("-t", "-c", good, "--db", "")
        self.assertIn(r.returncode, (EX_USAGE, EX_CONFIG), r.stdout + r.stderr)
        self.assertNotIn("configuration ok", r.stdout)
        self.assertClean(r)

    def test_a_section_name_no_request_can_reach_is_not_taken_silently(self):
        # A NAME is "1 to 63 characters of A-Z a-z 0-9 _ . -" (configuration.md), so
        # "." and ".." load; but every request whose path holds a dot segment is
        # answered 400 before routing (reqcheck.c): POST /hooks/.. refuses every
        # webhook (final for Tavus and PailFlow), and a [destination ..] disabled by a
        # 410 can never be enabled or discarded through /v1/destinations/../... Either
        # the file is refused, or the names work.
        text = ("[server]\nlisten = 127.0.0.1:0\n[storage]\npath = {db}\n"
                "[source ..]\nprovider = auto\n"
                "[destination ..]\nurl = http://127.0.0.1:9/\nallow_private = true\n")
        r = hookrelay("-t", "-c", self.config(text))
        if r.returncode != 0:
            self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
            self.assertIn("..", r.stderr)
            return
        d = Daemon(text)
        d.start()
        try:
            body = hrtest.dumps(dict(hrtest.payload_json(
                "tavus.conversation.application.transcription_ready.json"),
                conversation_id=hrtest.fresh_id("c")))
            status, _, data = d.post(body, "..")
            self.assertEqual(status, 200, "-t said ok, yet [source ..] refuses: %r" % data)
            status, _, data = d.request("GET", "/v1/destinations/..")
            self.assertEqual(status, 200, "[destination ..] is out of the API's reach: %r"
                             % data)
        finally:
            d.stop()
            d.cleanup()

    @hrtest.sqlite_only("the instance lock on the database file; PostgreSQL nodes share their database by design")
    def test_second_daemon_on_the_same_database(self):
        d = Daemon(DEFAULT_CONFIG)
        try:
            d.start()
            r = hookrelay("-c", d.config_path, "--listen", "127.0.0.1:0", timeout=60)
            self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
            self.assertIn("in use by another hookrelay", r.stderr)
            self.assertIn(d.db + " is in use", r.stderr)
            self.assertClean(r)
            # The first one is unaffected.
            self.assertEqual(d.request("GET", "/healthz")[0], 200)
            self.assertEqual(d.stop(), 0, d.log())
            # Once it is gone, the database is free again.
            d.start()
            self.assertEqual(d.request("GET", "/healthz")[0], 200)
        finally:
            rc = d.stop()
            log = d.log()
            d.cleanup()
        self.assertEqual(rc, 0, log)
        self.assertEqual(sanitizer_reports(log), [], log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
