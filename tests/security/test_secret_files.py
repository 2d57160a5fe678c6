"""Issue 13: one reader for every file of secrets (docs/security.md, "### 23.").

A destination's secret_file was read by its own loop that silently stopped at its
eighth secret: a ninth, rotated in, never signed anything and nothing said so. The
API token was the first line of token_file, a `# comment` included, and hookctl read
--token-file with a copy of that loop. Now one reader serves [source] and
[destination] secret_file, [api] token_file and hookctl: the same format everywhere
(one secret a line, blanks and CR trimmed, blank and # lines skipped), and a limit
refuses, naming the file, the line and the limit, instead of dropping.
"""

import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

import hrtest

EX_CONFIG = 78
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "tok-0123456789abcdef-secret"


def check(path):
    return subprocess.run([hrtest.BIN, "-t", "-c", path], capture_output=True, timeout=60)


class SecretFilesTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hrtest-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def config(self, body):
        return self.write("hookrelay.conf", "[server]\nlisten = 127.0.0.1:0\n[storage]\npath = %s\n%s"
                          % (os.path.join(self.dir, "var", "hr.db"), body), 0o644)

    def destination(self, nsecrets):
        secret = self.write("dst.secret", "# rotation\n" + (WHSEC + "\n") * nsecrets)
        return secret, self.config("[source s]\n[destination d]\nurl = https://example.com/h\n"
                                   "secret_file = %s\n" % secret)

    def test_a_destination_secret_past_the_eighth_is_refused_not_dropped(self):
        secret, path = self.destination(8)
        r = check(path)
        self.assertEqual(r.returncode, 0, r.stderr)
        secret, path = self.destination(9)
        r = check(path)
        self.assertEqual(r.returncode, EX_CONFIG, r.stdout)
        err = r.stderr.decode()
        self.assertIn("%s:10: [destination d] secret_file %s: more than 8 secrets"
                      % (secret, secret), err)
        self.assertNotIn(WHSEC[6:], err)
        # A start refuses it the same way (it used to sign with the first eight).
        r = subprocess.run([hrtest.BIN, "-c", path], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        self.assertIn("more than 8 secrets", r.stderr.decode())

    def test_a_source_secret_past_the_sixteenth_is_refused(self):
        secret = self.write("src.secret", "".join("secret-%02d\n" % i for i in range(17)))
        r = check(self.config("[source s]\nauth = token\nsecret_file = %s\n" % secret))
        self.assertEqual(r.returncode, EX_CONFIG, r.stdout)
        self.assertIn("%s:17: [source s] more than 16 secrets" % secret, r.stderr.decode())

    def test_an_api_token_file_holds_one_token(self):
        token = self.write("api.token", TOKEN + "\nsecond-token-0123456789\n")
        r = check(self.config("[api]\ntoken_file = %s\n[source s]\n" % token))
        self.assertEqual(r.returncode, EX_CONFIG, r.stdout)
        err = r.stderr.decode()
        self.assertIn("%s:2: [api] token_file %s: more than 1 secret" % (token, token), err)
        self.assertNotIn(TOKEN, err)


class TokenFileFormatTest(hrtest.DaemonTest):
    """A token file with a comment and CRLF line ends: the daemon and hookctl read the
    token, not the comment (the daemon used to take `# ...` as the token)."""

    def setUp(self):
        self.d = hrtest.Daemon(hrtest.DEFAULT_CONFIG + "[api]\ntoken_file = {dir}/token\n")
        self.token_file = os.path.join(self.d.dir, "token")
        with open(self.token_file, "w", newline="") as f:
            f.write("# the API token, rotated 2026-12-01\r\n\r\n  %s \r\n" % TOKEN)
        self.d.start()

    def test_the_daemon_and_hookctl_read_the_token_alike(self):
        url = "http://127.0.0.1:%d/v1/events" % self.d.port
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + TOKEN})
        with urllib.request.urlopen(req, timeout=30) as resp:
            self.assertEqual(resp.status, 200)
        home = tempfile.mkdtemp(prefix="hrtest-home-")
        try:
            r = subprocess.run(
                [os.environ["HOOKCTL_BIN"], "--url", "http://127.0.0.1:%d" % self.d.port,
                 "--token-file", self.token_file, "destinations"],
                capture_output=True, timeout=60, env={"HOME": home, "PATH": os.environ["PATH"]})
        finally:
            shutil.rmtree(home, ignore_errors=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(TOKEN, (r.stdout + r.stderr).decode())


if __name__ == "__main__":
    unittest.main()
