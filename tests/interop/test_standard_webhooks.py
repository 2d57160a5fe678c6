#!/usr/bin/env python3
"""tests/interop/test_standard_webhooks.py - hookrelay against the real Standard Webhooks
clients from npm, `standardwebhooks` and `svix` (exact versions in package-lock.json).

Inbound: a body signed by each library's Webhook.sign(), under each header family a
sender using it sends (webhook-*; svix-* and webhook-* for svix), is accepted by an
`auth = standard-webhooks` source whose secret file holds two secrets (rotation: either
signs); a tampered body, a stale or a future timestamp are refused 401.

Outbound: what a destination with a `whsec_` secret receives (captured by a sink on
127.0.0.1) verifies with each library's Webhook.verify(), on the raw bytes and on their
string; after a rotation (a second line in the secret file and a reload) each of the two
secrets verifies on its own, and once the old one is removed it no longer does.

The clients are installed at test time by `npm ci` from the committed lock file into
HR_INTEROP_NODE_DIR (<build>/interop), again only when package.json or the lock file
changed. Without node, npm or the registry the test is skipped (exit 77, which ctest
shows as skipped, with the reason), except under CI (CI=true), where it fails: CI must
not lose the check silently. Python standard library, hrtest and sink only.
"""

import base64
import fcntl
import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))  # run by hand without PYTHONPATH

import hrtest  # noqa: E402
from hrtest import Daemon, fresh_id, sanitizer_reports  # noqa: E402
from sink import Sink  # noqa: E402

NODE_DIR = os.path.abspath(os.environ.get("HR_INTEROP_NODE_DIR", os.path.join("build", "interop")))
LOCK_FILES = ("package.json", "package-lock.json")
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
SKIP = 77  # SKIP_RETURN_CODE in CMakeLists.txt
NPM_TIMEOUT = 45  # npm ci from the registry took ~1 s (2026-12-06); a dead network is refused sooner
NODE_TIMEOUT = 20
LIBRARIES = ("standardwebhooks", "svix")
# (library, header family) for every family a sender using the library sends.
SENDERS = (("standardwebhooks", "webhook"), ("svix", "svix"), ("svix", "webhook"))

# Svix's dashboard gives 24-byte keys (32 base64 characters, no padding); Standard Webhooks
# allows up to 64 (88 characters, "==" at the end).
SECRET_24 = "whsec_" + base64.b64encode(bytes(range(1, 25))).decode()
SECRET_64 = "whsec_" + base64.b64encode(hashlib.sha512(b"hookrelay interop").digest()).decode()
# As a dashboard may show it, without its base64 padding: both libraries take it, and
# hookrelay refused to start with it.
SECRET_32_UNPADDED = "whsec_" + base64.b64encode(bytes(range(32))).decode().rstrip("=")


def key_of(secret):
    """The key a whsec_ secret stands for, padded or not."""
    text = secret[6:]
    return base64.b64decode(text + "=" * (-len(text) % 4))


STRANGER = "whsec_" + base64.b64encode(b"a key neither side was given!!!!").decode()
SPEC = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
        b'{"test": 2432232314}', "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
# The npm messages of a network that is not there (not of a lock file that is wrong).
NETWORK_ERRORS = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|"
                            r"EHOSTUNREACH|ERR_SOCKET_TIMEOUT|network|proxy", re.I)


class Unavailable(Exception):
    """node, npm or the registry is missing: a skip outside CI, a failure in CI."""


def body(note):
    """A JSON body with UTF-8 beyond ASCII, as senders send: the libraries sign bytes."""
    return json.dumps({"type": "invoice.paid", "timestamp": "2026-12-06T10:00:00Z",
                       "data": {"id": fresh_id("inv_", 12), "amount": 4200,
                                "note": note + " café ☕ ünïcødé"}},
                      ensure_ascii=False).encode()


def big_body():
    """About 1 MiB of JSON, multi-byte characters all through: more than one buffer's
    worth on every path (reading, signing, sending, hashing)."""
    return json.dumps({"type": "export.ready", "data": {"id": fresh_id("exp_", 12),
                       "rows": ["%06d çà ☕ 𝄞 \\ \" \u2028" % i for i in range(40000)]}},
                      ensure_ascii=False).encode()


_BODIES = tempfile.TemporaryDirectory(prefix="hrtest-interop-")  # removed at exit


def body_file(data):
    """A file holding `data` for the scripts (a command line argument holds 128 KiB)."""
    fd, path = tempfile.mkstemp(suffix=".json", dir=_BODIES.name)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _lock_digest():
    h = hashlib.sha256()
    for name in LOCK_FILES:
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def _installed(stamp, digest):
    try:
        with open(stamp) as f:
            if f.read().strip() != digest:
                return False
    except OSError:
        return False
    return all(os.path.isfile(os.path.join(NODE_DIR, "node_modules", lib, "package.json"))
               for lib in LIBRARIES)


def _npm_ci(npm):
    """npm ci into NODE_DIR from the committed lock file, unless what it installed last
    time came from the same package.json and lock file. Under a lock: two runs in one
    build directory do not install over each other."""
    os.makedirs(NODE_DIR, exist_ok=True)
    stamp, digest = os.path.join(NODE_DIR, "installed.sha256"), _lock_digest()
    with open(os.path.join(NODE_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(stamp, digest):
            return
        for name in LOCK_FILES:
            shutil.copyfile(os.path.join(HERE, name), os.path.join(NODE_DIR, name))
        if os.path.exists(stamp):
            os.unlink(stamp)
        cmd = [npm, "ci", "--prefix", NODE_DIR, "--no-audit", "--no-fund", "--prefer-offline",
               "--fetch-retries=1", "--fetch-timeout=15000", "--fetch-retry-mintimeout=1000",
               "--fetch-retry-maxtimeout=2000"]
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=NPM_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Unavailable("npm ci did not finish in %d s: is the npm registry reachable?"
                              % NPM_TIMEOUT)
        out = (p.stdout + p.stderr).strip()
        if p.returncode != 0:
            tail = "\n".join(out.splitlines()[-8:])
            if NETWORK_ERRORS.search(out):
                # The line naming the URL if there is one, else npm's error code.
                why = ([l for l in out.splitlines() if "reason:" in l]
                       + [l for l in out.splitlines() if re.search(r"\bcode E", l)])
                raise Unavailable("the npm registry is not reachable (npm ci: %s)"
                                  % (why[0].strip() if why else tail))
            raise AssertionError("npm ci failed (not the network: the lock file?):\n" + tail)
        with open(stamp, "w") as f:
            f.write(digest + "\n")


_READY = []


def ensure_clients():
    """node, npm and the libraries installed; raises Unavailable or AssertionError."""
    if _READY:
        return
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise Unavailable("%s not on PATH (scripts/deps.sh installs nodejs and npm)"
                          % " and ".join(n for n, p in (("node", node), ("npm", npm)) if not p))
    _npm_ci(npm)
    _READY.append(node)
    # The scripts are wired right: both libraries sign the specification's test vector.
    secret, msg_id, ts, data, want = SPEC
    for lib, headers in sign([secret], msg_id, ts, data).items():
        for fam, h in headers["families"].items():
            if h[fam + "-signature"] != want:
                raise AssertionError("%s signs the test vector as %r, not %r"
                                     % (lib, h[fam + "-signature"], want))


_SERVER = []


def node(script, args):
    """sign.js or verify.js with `args`, as run from a shell: (returncode, stdout, stderr).
    Asked of one serve.js for the whole file: a node a call cost ~200 ms of processor
    time, 35 times a run."""
    if not _SERVER or _SERVER[0].poll() is not None:
        env = dict(os.environ, HR_INTEROP_NODE_DIR=NODE_DIR)
        _SERVER[:] = [subprocess.Popen([_READY[0], os.path.join(HERE, "serve.js")], env=env,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)]
    server = _SERVER[0]
    server.stdin.write(json.dumps({"script": script[:-len(".js")], "args": args}) + "\n")
    server.stdin.flush()
    # One answer a request, and nothing else is written: nothing is left in the pipe's
    # buffer for select() not to see.
    if not select.select([server.stdout], [], [], NODE_TIMEOUT)[0]:
        server.kill()
        raise AssertionError("%s did not answer in %d s" % (script, NODE_TIMEOUT))
    line = server.stdout.readline()
    if not line:
        raise AssertionError("serve.js ended: exit %s" % server.wait())
    answer = json.loads(line)
    return subprocess.CompletedProcess(script, answer["status"], answer["stdout"],
                                       answer["stderr"])


def tearDownModule():
    for server in _SERVER:
        server.stdin.close()
        server.wait(NODE_TIMEOUT)


def sign(secrets, msg_id, ts, data, library=None):
    """{library: {"version": v, "families": {family: headers}}}, from each library's sign()."""
    args = [a for s in secrets for a in ("--secret", s)]
    args += ["--id", msg_id, "--timestamp", str(ts), "--body-file", body_file(data)]
    if library:
        args += ["--library", library]
    p = node("sign.js", args)
    if p.returncode != 0:
        raise AssertionError("sign.js: exit %d\n%s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def verify(secret, headers, data):
    """(exit status, {library: {"version", "ok", "error"}}) of each library's verify()."""
    p = node("verify.js", ["--secret", secret, "--headers", json.dumps(headers),
                           "--body-file", body_file(data)])
    if p.returncode not in (0, 1):
        raise AssertionError("verify.js: exit %d\n%s" % (p.returncode, p.stderr))
    return p.returncode, json.loads(p.stdout)


def setUpModule():
    try:
        ensure_clients()
    except Unavailable as e:
        if IN_CI:
            raise AssertionError("CI=%s: the interop test may not be skipped: %s"
                                 % (os.environ.get("CI"), e))
        raise unittest.SkipTest(str(e))


def write_secret(d, name, secrets):
    path = os.path.join(d.dir, name)
    with open(path, "w") as f:
        f.write("".join(s + "\n" for s in secrets))
    os.chmod(path, 0o600)


class InteropBase(unittest.TestCase):
    """One daemon for the class; it must exit 0 with no sanitizer report."""

    sections = ""
    secrets = {}

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(hrtest.config_with(sections=cls.sections))
        try:
            for name, lines in cls.secrets.items():
                write_secret(cls.d, name, lines)
            cls.d.start()
        except BaseException:
            cls.d.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        log = cls.d.log()
        cls.d.cleanup()
        if rc != 0 or sanitizer_reports(log):
            raise AssertionError("hookrelay exit %r:\n%s" % (rc, log))
        for s in (SECRET_24, SECRET_64, SECRET_24[6:], SECRET_64[6:], SECRET_32_UNPADDED[6:]):
            if s in log:
                raise AssertionError("a secret in the log")


class InboundTest(InteropBase):
    """Bodies signed by the real libraries, posted to a standard-webhooks source."""

    sections = "[source sw]\nauth = standard-webhooks\nsecret_file = {dir}/sw.secret\n"
    secrets = {"sw.secret": [SECRET_24, SECRET_64, SECRET_32_UNPADDED]}

    def post(self, data, headers):
        return self.d.post(data, "sw", dict(headers, **{"Content-Type": "application/json"}))

    def event_ids(self):
        return {e["id"] for e in self.d.paged("/v1/events?source=sw", "events", limit=100)}

    def assertAccepted(self, resp, what):
        status, _, answer = resp
        self.assertEqual(status, 200, "%s: hookrelay refused what the library signed: %d %r"
                         % (what, status, answer[:300]))
        ack = json.loads(answer)
        self.assertFalse(ack["duplicate"], what)
        return ack

    def assertRefused(self, resp, what):
        status, _, answer = resp
        self.assertEqual(status, 401, "%s: %d %r" % (what, status, answer[:300]))

    def test_each_library_and_family_with_either_secret_is_accepted_and_tampering_refused(self):
        before, accepted = self.event_ids(), []
        for secret in (SECRET_24, SECRET_64, SECRET_32_UNPADDED):
            for lib, fam in SENDERS:
                what = "%s, %s-* headers, %d-byte key" % (lib, fam, len(key_of(secret)))
                with self.subTest(what):
                    data = body(what)
                    signed = sign([secret], fresh_id("msg_", 24), int(time.time()), data, lib)
                    headers = signed[lib]["families"][fam]
                    tampered = data.replace(b"4200", b"4201")
                    self.assertRefused(self.post(tampered, headers), what + ", tampered body")
                    ack = self.assertAccepted(self.post(data, headers), what)
                    raw = self.d.request("GET", "/v1/events/%s/raw" % ack["id"])
                    self.assertEqual(raw[2], data, "stored as signed")
                    accepted.append(ack["id"])
        self.assertEqual(self.event_ids() - before, set(accepted), "refusals store nothing")

    def test_a_large_body_signed_by_each_library_is_accepted(self):
        data = big_body()
        self.assertGreater(len(data), 1 << 20)
        for lib, fam in SENDERS:
            with self.subTest(library=lib, family=fam):
                signed = sign([SECRET_64], fresh_id("msg_", 24), int(time.time()), data, lib)
                self.assertAccepted(self.post(data, signed[lib]["families"][fam]),
                                    "%s, %s-* headers, %d bytes" % (lib, fam, len(data)))

    def test_stale_and_future_timestamps_are_refused(self):
        # 60 s past the default 5 m tolerance on either side: a slow (ASan) run stays clear.
        now = int(time.time())
        for lib, fam in SENDERS:
            for skew in (-360, 360):
                what = "%s, %s-* headers, timestamp %+d s" % (lib, fam, skew)
                with self.subTest(what):
                    data = body(what)
                    signed = sign([SECRET_24], fresh_id("msg_", 24), now + skew, data, lib)
                    self.assertRefused(self.post(data, signed[lib]["families"][fam]), what)

    def test_a_sender_rotating_sends_both_signatures(self):
        # A sender mid-rotation signs with its old and new secrets, one v1 entry each.
        for lib, fam in SENDERS:
            with self.subTest(library=lib, family=fam):
                data = body("rotating sender")
                msg_id, now = fresh_id("msg_", 24), int(time.time())
                both = sign([STRANGER, SECRET_64], msg_id, now, data, lib)[lib]["families"][fam]
                self.assertEqual(len(both[fam + "-signature"].split(" ")), 2, both)
                only = sign([STRANGER], msg_id, now, data, lib)[lib]["families"][fam]
                self.assertRefused(self.post(data, only), "a secret hookrelay does not hold")
                self.assertAccepted(self.post(data, both), "the held secret second")


class OutboundTest(InteropBase):
    """What hookrelay sends a destination, verified by the real libraries."""

    @classmethod
    def setUpClass(cls):
        cls.sink = Sink(max_seconds=120)
        cls.sections = ("[destination out]\nurl = %s/hook?tenant=1\nallow_private = true\n"
                        "secret_file = {dir}/out.secret\n" % cls.sink.url)
        cls.secrets = {"out.secret": [SECRET_24]}
        try:
            super().setUpClass()
        except BaseException:
            cls.sink.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.sink.stop()
        super().tearDownClass()

    def rotate(self, secrets):
        """The destination's secret file now holds `secrets`, reloaded."""
        write_secret(self.d, "out.secret", secrets)
        self.d.reload()

    def forwarded(self, note, data=None):
        """POST a fresh body; (body, headers) of what the sink received for it."""
        data = data or body(note)
        status, _, answer = self.d.post(data, "default")
        self.assertEqual(status, 200, answer[:300])
        eid = json.loads(answer)["id"]
        got = self.sink.wait_for(lambda rs: any(r.headers.get("webhook-id") == eid for r in rs),
                                 timeout=20 * (4 if hrtest.SANITIZED else 1))
        r = next(r for r in got if r.headers.get("webhook-id") == eid)
        self.assertEqual(r.body, data, "forwarded byte for byte")
        return r.body, r.headers

    def assertVerifies(self, secret, headers, data, what):
        rc, verdicts = verify(secret, headers, data)
        self.assertEqual(sorted(verdicts), sorted(LIBRARIES))
        refused = {k: v for k, v in verdicts.items() if not v["ok"]}
        self.assertEqual((rc, refused), (0, {}),
                         "%s: a real client refused hookrelay's request\nheaders: %s\nbody: %r"
                         % (what, json.dumps(headers), data))

    def assertRefusedByAll(self, secret, headers, data, what):
        rc, verdicts = verify(secret, headers, data)
        self.assertEqual(rc, 1, what)
        self.assertEqual([k for k, v in verdicts.items() if v["ok"]], [], "%s: %r" % (what, verdicts))

    def test_one_secret_verifies_with_each_library(self):
        self.rotate([SECRET_24])
        data, headers = self.forwarded("one secret")
        self.assertEqual(len(headers["webhook-signature"].split(" ")), 1, headers)
        self.assertVerifies(SECRET_24, headers, data, "one secret")
        self.assertRefusedByAll(STRANGER, headers, data, "another secret")
        self.assertRefusedByAll(SECRET_24, headers, data.replace(b"4200", b"4201"), "tampered body")
        data, headers = self.forwarded("large", big_body())
        self.assertVerifies(SECRET_24, headers, data, "a body of %d bytes" % len(data))

    def test_rotation_each_secret_verifies_alone_then_the_old_one_stops(self):
        self.rotate([SECRET_24, SECRET_64])
        data, headers = self.forwarded("rotation")
        self.assertEqual(len(headers["webhook-signature"].split(" ")), 2, headers)
        for secret in (SECRET_24, SECRET_64):
            self.assertVerifies(secret, headers, data, "rotation, the %d-byte key"
                                % len(key_of(secret)))
        self.assertRefusedByAll(STRANGER, headers, data, "rotation, another secret")
        self.rotate([SECRET_64])
        data, headers = self.forwarded("rotation done")
        self.assertVerifies(SECRET_64, headers, data, "the new key alone")
        self.assertRefusedByAll(SECRET_24, headers, data, "the old key, removed")

    def test_a_secret_without_its_padding_signs(self):
        self.rotate([SECRET_32_UNPADDED])
        data, headers = self.forwarded("unpadded")
        self.assertVerifies(SECRET_32_UNPADDED, headers, data, "a secret without its padding")

    def test_an_accepted_body_that_is_not_json_is_signed_as_the_libraries_sign_it(self):
        """A body refused 400 (not JSON) and accepted (POST /v1/rejections/{id}/accept) is
        delivered like any event, byte for byte and signed (a review). Both libraries end
        verify() with JSON.parse of the payload, so their verify() refuses it whatever the
        signature (forwarding.md says so): what hookrelay owes is the signature each of
        them makes of those bytes with sign()."""
        self.rotate([SECRET_24])
        data = b'{"event_type": "system.shutdown", "conversation_id": "c1",'  # cut short
        status, _, answer = self.d.post(data, "default")
        self.assertEqual(status, 400, answer[:300])
        status, doc = self.d.get_json("/v1/rejections")
        self.assertEqual(status, 200)
        rid = next(r["id"] for r in doc["rejections"])
        status, _, answer = self.d.request("POST", "/v1/rejections/%s/accept" % rid)
        self.assertEqual(status, 200, answer[:300])
        eid = json.loads(answer)["id"]
        got = self.sink.wait_for(lambda rs: any(r.headers.get("webhook-id") == eid for r in rs),
                                 timeout=20 * (4 if hrtest.SANITIZED else 1))
        r = next(r for r in got if r.headers.get("webhook-id") == eid)
        self.assertEqual(r.body, data, "forwarded byte for byte")
        ts = int(r.headers["webhook-timestamp"])
        for lib, signed in sign([SECRET_24], eid, ts, data).items():
            with self.subTest(library=lib):
                self.assertEqual(signed["families"]["webhook"]["webhook-signature"],
                                 r.headers["webhook-signature"])


def main():
    try:
        ensure_clients()
    except Unavailable as e:
        if IN_CI:
            print("FAILED: CI=%s and the interop test cannot run: %s" % (os.environ.get("CI"), e),
                  file=sys.stderr)
            return 1
        print("SKIPPED: %s\n(CI=true makes this a failure)" % e, file=sys.stderr)
        return SKIP
    return 0 if unittest.main(exit=False).result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
