"""Issue 11 item 19: what `hookrelay -t` reports (docs/security.md, "### 19.").

`-t` used to stay silent on a secret file every user may read, on
`trusted_proxies = 0.0.0.0/0` (every client chooses its own X-Forwarded-For address),
and on `url = http:///x` (libcurl reads host "x"); a NUL byte in the file was reported
as an over-long line. Now the first two are warnings naming FILE:LINE (the file still
loads), the URL is an error, and the NUL byte is named as such.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import hrtest

EX_CONFIG = 78


def check(path):
    return subprocess.run([hrtest.BIN, "-t", "-c", path], capture_output=True, timeout=60)


class CheckConfigTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hrtest-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, data, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chmod(path, mode)
        return path

    def config(self, body):
        return self.write("hookrelay.conf", "[server]\nlisten = 127.0.0.1:0\n[storage]\npath = %s\n%s"
                          % (os.path.join(self.dir, "var", "hr.db"), body), 0o644)

    def assertWarns(self, r, line, *words):
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        self.assertIn("configuration ok", r.stdout.decode())
        hits = [l for l in err.splitlines() if l.startswith("<4>") and (":%d: " % line) in l
                and all(w in l for w in words)]
        self.assertEqual(len(hits), 1, err)

    def test_secret_files_every_user_may_read_are_named(self):
        src = self.write("src.secret", "0123456789abcdef0123\n", 0o644)
        dst = self.write("dst.secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", 0o604)
        api = self.write("api.token", "0123456789abcdef0123\n", 0o666)
        path = self.config("[api]\ntoken_file = %s\n[source s]\nauth = token\nsecret_file = %s\n"
                           "[destination d]\nurl = https://example.com/h\nsecret_file = %s\n"
                           % (api, src, dst))
        r = check(path)
        self.assertWarns(r, 6, "[api]", "token_file", api, "0666")
        self.assertWarns(r, 9, "[source s]", "secret_file", src, "0644")
        self.assertWarns(r, 12, "[destination d]", "secret_file", dst, "0604")
        # Readable by the owner and its group only: nothing to say.
        for f in (src, dst, api):
            os.chmod(f, 0o640)
        r = check(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")

    def test_trusted_proxies_that_trust_everyone_are_named(self):
        for block in ("0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96", "128.0.0.0/1"):
            with self.subTest(block):
                path = self.config("[source s]\nallow_cidrs = 203.0.113.0/24\n"
                                   "trusted_proxies = 127.0.0.1, %s\n" % block)
                self.assertWarns(check(path), 7, "trusted_proxies", block, "X-Forwarded-For")
        r = check(self.config("[source s]\ntrusted_proxies = 10.0.0.0/8, 2001:db8::/32, ::1\n"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")

    def test_a_source_open_to_anyone_on_a_public_listener_is_named(self):
        # A security review: auth = none, no allow_cidrs, listen on every address:
        # anyone who finds the URL stores and forwards events, and -t said ok.
        db = os.path.join(self.dir, "var", "hr.db")
        for listen in ("0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"):
            with self.subTest(listen):
                path = self.write("open.conf", "[server]\nlisten = %s\n[storage]\npath = %s\n"
                                  "[source tavus]\nprovider = tavus\n" % (listen, db))
                self.assertWarns(check(path), 5, "[source tavus]", "anyone", "allow_cidrs")
        # Loopback (a proxy in front), an allow list, or a credential: nothing to say.
        tok = self.write("tok.secret", "0123456789abcdef0123\n")
        for listen, extra in (("127.0.0.1:0", ""), ("[::1]:0", ""),
                              ("0.0.0.0:0", "allow_cidrs = 10.0.0.0/8\n"),
                              ("0.0.0.0:0", "auth = token\nsecret_file = %s\n" % tok)):
            with self.subTest(listen=listen, extra=extra):
                path = self.write("ok.conf", "[server]\nlisten = %s\n[storage]\npath = %s\n"
                                  "[source tavus]\n%s" % (listen, db, extra))
                r = check(path)
                self.assertEqual((r.returncode, r.stderr), (0, b""), r.stderr)

    def test_a_short_source_secret_is_named(self):
        # A security review: a 2-character URL token and a 1-byte HMAC key loaded
        # without a word, where a short [api] token is refused.
        cases = (("token", "ab\n", {}),
                 ("hmac", "short-key\n", {"hmac_header": "X-Sig"}),
                 ("standard-webhooks", "whsec_QQ==\n", {}),
                 ("basic", "user:pw\n", {}))
        for auth, secret, extra in cases:
            with self.subTest(auth):
                f = self.write("s.secret", "# rotated in\n" + secret)
                lines = "".join("%s = %s\n" % kv for kv in extra.items())
                path = self.config("[source s]\nauth = %s\nsecret_file = %s\n%s"
                                   % (auth, f, lines))
                r = check(path)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 0, err)
                hits = [l for l in err.splitlines()
                        if l.startswith("<4>%s:2: " % f) and "can be guessed" in l]
                self.assertEqual(len(hits), 1, err)
                # never the secret itself (looked for with the file's path taken out:
                # a temporary directory named hrtest-abwztuyd held "ab" once)
                self.assertNotIn(secret.strip(), err.replace(f, "FILE"))
        f = self.write("s.secret", "0123456789abcdef\n")  # 16 bytes: enough
        r = check(self.config("[source s]\nauth = token\nsecret_file = %s\n" % f))
        self.assertEqual((r.returncode, r.stderr), (0, b""), r.stderr)

    def test_a_dedup_header_on_a_daily_source_says_how_its_events_are_keyed(self):
        # A Daily review: the warning said Daily's events were keyed by their body;
        # they are keyed by Daily's envelope id (security.md, "The key").
        secret = self.write("daily.secret", "c2VjcmV0LWtleS1mb3ItZGFpbHktdGVzdHM=\n")
        r = check(self.config("[source d]\nprovider = daily\nsecret_file = %s\n"
                              "dedup = header:X-Webhook-Id\n" % secret))
        err = r.stderr.decode()
        self.assertEqual(r.returncode, 0, err)
        self.assertIn("dedup = header:X-Webhook-Id is ignored with auth = daily", err)
        self.assertIn("keyed by Daily's envelope id", err)

    def test_a_sqlite_only_setting_under_postgresql_is_named(self):
        pg = ("[storage]\nbackend = postgresql\nurl = postgresql:///hr?host=/nonexistent\n"
              "%s[source s]\n")
        path = self.write("pg.conf", pg % "cache_size = 64MiB\n")
        self.assertWarns(check(path), 4, "cache_size", "postgresql")
        r = check(self.write("pg2.conf", pg % ""))  # not set: nothing to say
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")

    def test_a_url_without_a_host_is_an_error(self):
        for url in ("http:///x", "https:///hook", "http:/x", "http://user:pw@/x"):
            with self.subTest(url):
                path = self.config("[source s]\n[destination d]\nurl = %s\n" % url)
                r = check(path)
                self.assertEqual(r.returncode, EX_CONFIG, r.stdout)
                self.assertIn(("%s:7: url:" % path).encode(), r.stderr)
                self.assertNotIn(b"pw@", r.stderr)

    def test_destination_secret_files_are_read_as_a_start_reads_them(self):
        # Emptied or left with comments only (a rotation gone wrong), the destination
        # once sent every request unsigned without a word; bare base64 was taken too.
        for name, text in (("missing", None), ("not whsec", "not-a-secret\n"), ("empty", ""),
                           ("comments only", "# rotated\n\n"),
                           ("no whsec_ prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n")):
            with self.subTest(name):
                secret = os.path.join(self.dir, "dst.secret")
                if os.path.exists(secret):
                    os.unlink(secret)
                if text is not None:
                    self.write("dst.secret", text)
                path = self.config("[source s]\n[destination d]\nurl = https://example.com/h\n"
                                   "secret_file = %s\n" % secret)
                r = check(path)
                self.assertEqual(r.returncode, EX_CONFIG, r.stdout)
                self.assertIn(b"[destination d]", r.stderr)
                self.assertIn(secret.encode(), r.stderr)
                self.assertNotIn(b"not-a-secret", r.stderr)

    def test_a_header_hookrelay_sets_cannot_be_configured(self):
        # A second Content-Length or webhook-signature made the request ambiguous: sent
        # twice, a receiver could read the wrong one or answer 400 (final).
        for line in ("Content-Length: 5", "webhook-signature: v1,xyz", "HOST: example.org",
                     "Webhook-Id: msg_1", "Transfer-Encoding: chunked"):
            with self.subTest(line):
                path = self.config("[source s]\n[destination d]\nurl = https://example.com/h\n"
                                   "header = %s\n" % line)
                r = check(path)
                self.assertEqual(r.returncode, EX_CONFIG, r.stdout)
                self.assertIn(b"is set by hookrelay and cannot be configured", r.stderr)
        path = self.config("[source s]\n[destination d]\nurl = https://example.com/h\n"
                           "header = User-Agent: acme/1\nheader = Content-Type: "
                           "application/cloudevents+json\n")
        r = check(path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_nul_byte_is_named_not_called_a_long_line(self):
        path = self.write("nul.conf", b"[source s]\nprovider = tav\0us\n", 0o644)
        r = check(path)
        self.assertEqual(r.returncode, EX_CONFIG, r.stdout)
        self.assertIn(("%s:2: a NUL byte at column 15" % path).encode(), r.stderr)
        self.assertNotIn(b"longer than", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
