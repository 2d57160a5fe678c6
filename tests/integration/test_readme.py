"""README.md, run: every command in it is exercised here or checked against the test
that exercises it, and every configuration snippet is used.

The README's fenced blocks are read in order:

- `sh` blocks: each command either runs here against a daemon, with the machine's paths
  moved into a temporary directory (`/etc/hookrelay` -> TMP/etc/hookrelay, `sudo`
  dropped, `127.0.0.1:8080` -> the test daemon's port, hookctl pointed at it), or plays
  systemd's part (`systemctl enable --now` / `restart hookrelay` start or restart the
  daemon on the edited configuration, with LoadCredential= copies in
  $CREDENTIALS_DIRECTORY), or is one that cannot run here and is checked instead
  (`cmake ... package`, `apt install`: tests/packaging/test_package.py runs the same;
  `systemctl status`, `journalctl`: the units exist and pass systemd-analyze there).
  A command that fits none of these fails the test: a new README command needs a check.
  `# {...}` lines after a command are its expected answer: the kind it names must be in
  what the command printed.
- `ini` blocks: `[source ...]` sections replace `[source default]` of the installed
  configuration, lines without a section go into each `[source]`, `[server]` lines into
  `[server]`, and a `[Service]` block is a drop-in, checked with systemd-analyze verify.
- `json` blocks: the provider requests; their callback URLs name a configured source.
- `nginx` and `caddy` blocks run for real (when installed, as scripts/deps.sh does) in
  front of the daemon, with a self-signed or internal certificate: a webhook posted
  through TLS is stored with the forwarded client address, /v1/ is not reachable.
"""

import configparser
import fnmatch
import io
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import http.client

import hrtest
from hrtest import Daemon, free_port, sanitizer_reports

SRC = os.path.abspath(os.environ.get("HR_SOURCE_DIR",
                                     os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.path.dirname(os.path.abspath(hrtest.BIN))
CTL = os.path.abspath(os.environ.get("HOOKCTL_BIN", os.path.join(BUILD, "tools", "hookctl")))
README = os.path.join(SRC, "README.md")
ANALYZE = shutil.which("systemd-analyze")
NGINX = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
CADDY = shutil.which("caddy")
OPENSSL = shutil.which("openssl")


def readme_blocks():
    """[(section, lang, text)] in order; section is the latest ## or ### heading."""
    out, section, lang, buf = [], "", None, None
    with open(README) as f:
        for line in f:
            if buf is None and line.startswith("#"):
                section = line.strip("# \n")
            elif line.startswith("```"):
                if buf is None:
                    lang, buf = line[3:].strip(), []
                else:
                    out.append((section, lang, "".join(buf)))
                    buf = None
            elif buf is not None:
                buf.append(line)
    return out


def sh_commands(text):
    """[(command, [expected-output comment lines])], continuation lines joined."""
    cmds, cur = [], ""
    for line in text.splitlines():
        if cur:
            cur += " " + line.strip()
        elif line.startswith("#"):
            if cmds:
                cmds[-1][1].append(line[1:].strip())
            continue
        elif line.strip():
            cur = line.strip()
        if cur.endswith("\\"):
            cur = cur[:-1].rstrip()
            continue
        if cur:
            cmds.append((re.sub(r"\s+# .*$", "", cur), []))
            cur = ""
    return cmds


# Commands that cannot run here, each with what checks it instead.
def check_script(test, cmd):
    path = os.path.join(SRC, cmd)
    test.assertTrue(os.access(path, os.X_OK), cmd)
    if cmd == "scripts/run":
        with open(path) as f:  # it runs the configuration the Quick start test runs
            test.assertIn("exec build/hookrelay -c config/hookrelay.conf", f.read())


def check_packaging(test, cmd):
    with open(os.path.join(SRC, "tests", "packaging", "test_package.py")) as f:
        pkg_test = f.read()
    for arg in cmd.split()[1:]:
        if arg.startswith("-D") or arg in ("package",):
            test.assertIn('"%s"' % arg, pkg_test, "test_package.py does not run %r" % cmd)


def check_apt_install(test, cmd):
    with open(os.path.join(SRC, "packaging", "deb.cmake")) as f:
        text = f.read()
    test.assertIn("CPACK_DEBIAN_FILE_NAME DEB-DEFAULT", text)  # name_version-release_arch.deb
    pattern = cmd.split()[-1].replace("./build/", "")
    test.assertTrue(fnmatch.fnmatch("hookrelay_0.1.0-1_amd64.deb", pattern), pattern)


def check_unit_command(test, cmd):
    for unit in re.findall(r"\bhookrelay(?:\.socket|\.service)?\b", cmd.split(None, 2)[-1]):
        name = unit if "." in unit else unit + ".service"
        test.assertTrue(os.path.exists(os.path.join(SRC, "config", name))
                        or os.path.exists(os.path.join(SRC, "config", name + ".in")), name)


RULES = [
    # (pattern, what to do)
    (r"^(curl|hookctl) ", "run"),
    (r"^TOKEN=\$\(sudo cat /etc/hookrelay/credentials/[a-z]+\)$", "run"),
    # Connect Daily: a body signed as Daily signs, with openssl (an independent check of
    # auth = daily: the daemon must accept what openssl computes)
    (r"^KEY=\$\(sudo base64 -d /etc/hookrelay/credentials/daily \| od -An -tx1 \| tr ", "run"),
    (r"^BODY='\{.*\}'$", "run"),
    (r"^TS=\$\(date \+%s%3N\)$", "run"),
    (r"^SIG=\$\(printf '%s\.%s' \"\$TS\" \"\$BODY\" \| openssl dgst -sha256 -mac HMAC ", "run"),
    (r"^sudo sh -c 'umask 077; mkdir -p /etc/hookrelay/credentials; ", "run"),
    (r"^sudo CREDENTIALS_DIRECTORY=/etc/hookrelay/credentials hookrelay -t -c "
     r"/etc/hookrelay/hookrelay.conf$", "run"),
    (r"^sudo systemctl enable --now hookrelay$", "start"),
    (r"^sudo systemctl restart hookrelay$", "start"),
    (r"^scripts/(run|test)$", check_script),
    (r"^cmake -S \. -B build ", check_packaging),
    (r"^cmake --build build --target package$", check_packaging),
    (r"^sudo apt install \./build/hookrelay_\S+\.deb$", check_apt_install),
    (r"^(systemctl status|journalctl -u|sudo systemctl edit) hookrelay", check_unit_command),
]


def rule_for(cmd):
    for pattern, action in RULES:
        if re.search(pattern, cmd):
            return action
    return None


class ReadmeTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hrtest-readme-")
        self.daemons = []
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for d in self.daemons:
            log = d.log()
            rc = d.stop()
            d.cleanup()
            self.assertIn(rc, (0, None), log)
            self.assertEqual(sanitizer_reports(log), [], log)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- running commands ----
    def shell(self, cmds, port):
        """Run `cmds` in one bash (so TOKEN=... carries over); returns each one's output."""
        etc = os.path.join(self.tmp, "etc")
        script = ["set -e"]
        for i, cmd in enumerate(cmds):
            c = cmd.replace("/etc/hookrelay", etc + "/hookrelay").replace("127.0.0.1:8080",
                                                                         "127.0.0.1:%d" % port)
            c = re.sub(r"(^|\$\(|; )sudo ", r"\1", c)
            script += ["printf '\\n@@%d@@\\n'" % i, c]
        env = dict(os.environ, PATH=os.pathsep.join([BUILD, os.path.dirname(CTL),
                                                      os.environ.get("PATH", "")]),
                   HOOKCTL_URL="http://127.0.0.1:%d" % port, HOME=self.tmp, NO_COLOR="1")
        env.pop("HOOKCTL_TOKEN", None)
        r = subprocess.run(["bash", "-c", "\n".join(script) + "\n"], cwd=SRC, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, "README commands failed:\n%s\n%s\n%s"
                         % ("\n".join(cmds), r.stdout, r.stderr))
        parts = re.split(r"\n@@(\d+)@@\n", r.stdout)
        return {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}

    def expect(self, cmd, comments, output):
        for c in comments:
            m = re.search(r'"kind":\s*"([^"]+)"', c)
            if m:
                self.assertIn('"kind":"%s"' % m.group(1), output.replace(" ", ""),
                              "%s\nprinted:\n%s" % (cmd, output))

    def run_blocks(self, blocks, port, on_start, on_block=None):
        """The sh blocks' commands in order, the other blocks to on_block(lang, text) where
        they come; returns (command, output) of the commands that ran."""
        ran = []
        for _, lang, text in blocks:
            if lang != "sh":
                if on_block is not None:
                    on_block(lang, text)
                continue
            pending = []

            def flush():
                if pending:
                    outs = self.shell([c for c, _ in pending], port)
                    for i, (c, comments) in enumerate(pending):
                        self.expect(c, comments, outs.get(i, ""))
                        ran.append((c, outs.get(i, "")))
                    pending.clear()

            for cmd, comments in sh_commands(text):
                action = rule_for(cmd)
                self.assertIsNotNone(action, "README command with no test: " + cmd)
                if action == "run":
                    pending.append((cmd, comments))
                elif action == "start":
                    flush()
                    on_start()
                else:
                    action(self, cmd)
            flush()
        return ran

    # ---- the tests ----
    def test_every_command_has_a_check(self):
        cmds = [c for _, lang, text in readme_blocks() if lang == "sh" for c, _ in sh_commands(text)]
        self.assertGreater(len(cmds), 10)
        self.assertEqual([c for c in cmds if rule_for(c) is None], [])
        langs = {lang for _, lang, _ in readme_blocks()}
        self.assertLessEqual(langs, {"sh", "ini", "json", "nginx", "caddy", ""}, langs)

    def test_quick_start(self):
        blocks = [b for b in readme_blocks() if b[0] == "Quick start"]
        with open(os.path.join(SRC, "config", "hookrelay.conf")) as f:
            conf = f.read().replace("{", "{{").replace("}", "}}")
        self.assertIn("listen = 127.0.0.1:8080", conf)
        self.assertIn("path = var/hookrelay.db", conf)
        port = free_port()
        d = Daemon(conf.replace("listen = 127.0.0.1:8080", "listen = 127.0.0.1:%d" % port)
                   .replace("path = var/hookrelay.db", "path = {db}"))
        self.daemons.append(d)
        d.start()
        ran = self.run_blocks(blocks, port, on_start=lambda: self.fail("no start here"))
        outputs = dict(ran)
        listed = [c for c in outputs if "/v1/events?limit=5" in c]
        self.assertEqual(len(listed), 1)
        self.assertEqual(len(json.loads(outputs[listed[0]])["events"]), 1)
        session = [c for c in outputs if "/v1/sessions/" in c]
        self.assertEqual(json.loads(outputs[session[0]])["event_count"], 1)

    def edit_config(self, path, text):
        """Apply one README ini block to the configuration file at `path`, as its text
        says to: [source] sections replace [source default], lines without a section go
        into each [source], other sections are merged; a [Service] block is the drop-in."""
        if text.lstrip().startswith("[Service]"):
            self.credentials += re.findall(r"^LoadCredential=(\w+):(\S+)$", text, re.M)
            self.dropins.append(text)
            return
        cp = configparser.ConfigParser(interpolation=None, strict=True, comment_prefixes=("#",),
                                       inline_comment_prefixes=None)
        cp.optionxform = str
        with open(path) as f:
            cp.read_file(f)
        if not text.lstrip().startswith("["):  # "in each [source]"
            for line in text.splitlines():
                if "=" in line:
                    k, v = line.split("=", 1)
                    for sec in cp.sections():
                        if sec.startswith("source "):
                            cp.set(sec, k.strip(), v.strip())
        else:
            add = configparser.ConfigParser(interpolation=None, strict=True)
            add.optionxform = str
            add.read_string(text)
            for sec in add.sections():
                if sec.startswith("source "):
                    cp.remove_section("source default")
                if not cp.has_section(sec):
                    cp.add_section(sec)
                for k, v in add.items(sec):
                    cp.set(sec, k, v)
        with open(path, "w") as f:
            cp.write(f)

    def test_production_path(self):
        sections = ("Run as a service", "Connect a provider", "Connect Tavus", "Connect PailFlow",
                    "Connect Daily", "Behind a TLS proxy")
        blocks = [b for b in readme_blocks() if b[0] in sections]
        self.assertEqual({b[0] for b in blocks}, set(sections))
        self.dropins, self.credentials = [], []
        port = free_port()
        etc = os.path.join(self.tmp, "etc", "hookrelay")
        os.makedirs(etc)
        conf_path = os.path.join(etc, "hookrelay.conf")
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        shutil.copy(os.path.join(BUILD, "config", "hookrelay.conf"), conf_path)
        creds = os.path.join(self.tmp, "run-credentials")

        def start():
            """systemd's part: (re)start on the file as the README has edited it so far,
            with a copy of each LoadCredential= file in $CREDENTIALS_DIRECTORY."""
            for d in self.daemons:
                self.assertEqual(d.stop(), 0, d.log())
            shutil.rmtree(creds, ignore_errors=True)
            os.makedirs(creds)
            for name, path in self.credentials:
                shutil.copy(path.replace("/etc/hookrelay", etc), os.path.join(creds, name))
            with open(conf_path) as f:
                text = f.read().replace("{", "{{").replace("}", "}}")
            self.assertIn("listen = 127.0.0.1:8080", text)
            self.assertIn("path = /var/lib/hookrelay/hookrelay.db", text)
            text = text.replace("listen = 127.0.0.1:8080", "listen = 127.0.0.1:%d" % port) \
                       .replace("path = /var/lib/hookrelay/hookrelay.db", "path = {db}")
            d = Daemon(text, workdir=state, env={"CREDENTIALS_DIRECTORY": creds})
            self.daemons[:] = [d]
            d.start()

        def on_block(lang, text):
            if lang == "ini":
                self.edit_config(conf_path, text)

        ran = self.run_blocks(blocks, port, start, on_block)
        d = self.daemons[0]
        with open(conf_path) as f:
            final_conf = f.read()
        # Where it ended up: the two provider sources with tokens, behind a proxy.
        self.assertIn("[source tavus]", final_conf)
        self.assertIn("trusted_proxies = 127.0.0.1, ::1", final_conf)
        self.assertIn("max_connections_per_ip = 0", final_conf)
        self.assertNotIn("[source default]", final_conf)
        self.assertEqual(sorted(n for n, _ in self.credentials), ["daily", "pailflow", "tavus"])
        self.assertTrue(any(" hookrelay -t " in c for c, _ in ran), [c for c, _ in ran])
        outputs = [o for _, o in ran]
        self.assertTrue(any('"status":"ok"' in o.replace(" ", "") for o in outputs), "healthz")
        self.assertTrue(any('"event_count":1' in o.replace(" ", "") for o in outputs),
                        "hookctl sessions show")
        # The tokens are what the sources check: without one, 401.
        self.assertEqual(d.post(b'{"event_type":"system.shutdown"}', "tavus")[0], 401)
        self.assertEqual(d.post(b'{"event": "session_complete"}', "pailflow")[0], 401)
        # Daily's signed event went in, and the probe was answered without storing anything.
        self.assertTrue(any('"probe":true' in o.replace(" ", "") for o in outputs), "probe")
        self.assertEqual(d.post(b'{"version":"1.0.0","type":"meeting.ended","id":"x",'
                                b'"payload":{},"event_ts":1}', "daily")[0], 401)
        # The provider requests' callback URLs name a configured source, in token form;
        # Daily's webhook (it signs, so no token) names a provider = daily source.
        for section, lang, text in blocks:
            if lang == "json" and "eventTypes" in text:
                doc = json.loads(text)
                m = re.fullmatch(r"https://hooks\.example\.com/hooks/(\w+)", doc["url"])
                self.assertIsNotNone(m, doc["url"])
                self.assertIn("[source %s]\nprovider = daily" % m.group(1), final_conf)
                self.assertEqual(doc["hmac"], "<SECRET>")
            elif lang == "json":
                doc = json.loads(text)
                url = doc.get("callback_url") or doc.get("webhook_callback_url")
                m = re.fullmatch(r"https://hooks\.example\.com/hooks/(\w+)/<TOKEN>", url or "")
                self.assertIsNotNone(m, url)
                self.assertIn("[source %s]" % m.group(1), final_conf)
                self.assertIn(m.group(1), section.lower())
        self.check_dropins()
        self.through_proxies(blocks, d, port)

    def check_dropins(self):
        self.assertEqual(len(self.dropins), 2)  # Connect a provider's, then Connect Daily's
        if not ANALYZE:
            return
        unit = os.path.join(BUILD, "config", "hookrelay.service")
        with tempfile.TemporaryDirectory(prefix="hrtest-units-") as u:
            with open(unit) as f:
                text = f.read()
            exec_start = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
            with open(os.path.join(u, "hookrelay.service"), "w") as f:
                f.write(text.replace("ExecStart=" + exec_start, "ExecStart=" + hrtest.BIN))
            shutil.copy(os.path.join(SRC, "config", "hookrelay.socket"), u)
            os.makedirs(os.path.join(u, "hookrelay.service.d"))
            with open(os.path.join(u, "hookrelay.service.d", "override.conf"), "w") as f:
                f.write("\n".join(self.dropins))
            r = subprocess.run([ANALYZE, "verify", "hookrelay.service"], cwd=u, capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    # ---- the proxies, for real ----
    def certificate(self):
        cert, key = os.path.join(self.tmp, "cert.pem"), os.path.join(self.tmp, "key.pem")
        r = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=hooks.example.com", "-keyout", key, "-out", cert],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return cert, key

    def https(self, port, method, path, body=None, timeout=20):
        """A request to the proxy as a client of hooks.example.com sends it (SNI, Host);
        the certificate is the test's own, so it is not verified."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        while True:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                raw = socket.create_connection(("127.0.0.1", port), timeout=10)
                c.sock = ctx.wrap_socket(raw, server_hostname="hooks.example.com")
                c.request(method, path, body=body, headers={
                    "Host": "hooks.example.com", "Content-Type": "application/json"})
                r = c.getresponse()
                return r.status, r.read()
            except (ConnectionError, ssl.SSLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
            finally:
                c.close()

    def proxied_post(self, port, d):
        with open(os.path.join(self.tmp, "etc", "hookrelay", "credentials", "tavus")) as f:
            token = f.read().strip()
        body = json.dumps({"event_type": "system.shutdown", "message_type": "system",
                           "conversation_id": "c" + os.urandom(7).hex(),
                           "properties": {"shutdown_reason": "participant_left_timeout"}})
        status, data = self.https(port, "POST", "/hooks/tavus/" + token, body.encode())
        self.assertEqual(status, 200, data)
        ev = self.get_event(d, json.loads(data)["id"])
        self.assertEqual(ev["headers"].get("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(self.https(port, "GET", "/v1/events")[0], 404)
        self.assertEqual(self.https(port, "GET", "/metrics")[0], 404)
        self.assertEqual(self.https(port, "GET", "/healthz")[0], 200)
        # A wrong token through the proxy is still the source's 401.
        self.assertEqual(self.https(port, "POST", "/hooks/tavus/nope", body.encode())[0], 401)

    def get_event(self, d, eid):
        status, doc = d.get_json("/v1/events/" + eid)
        self.assertEqual(status, 200, doc)
        return doc

    def through_proxies(self, blocks, d, port):
        snippets = {lang: text for _, lang, text in blocks if lang in ("nginx", "caddy")}
        self.assertEqual(set(snippets), {"nginx", "caddy"})
        # Kept-alive upstream connections must go idle for less than hookrelay's
        # header_timeout (10s), which closes them: nginx's default is 60s, and a POST
        # sent on a connection hookrelay just closed is a 502 that Tavus and PailFlow
        # never retry (an operations review found the example without it).
        upstream = re.search(r"upstream hookrelay \{(.*?)\}", snippets["nginx"], re.S).group(1)
        if re.search(r"\bkeepalive \d+;", upstream):
            idle = re.search(r"\bkeepalive_timeout (\d+)s;", upstream)
            self.assertIsNotNone(idle, upstream)
            self.assertLess(int(idle.group(1)), 10, upstream)
        # scripts/deps.sh installs both; a machine without them still checks the rest.
        if NGINX and OPENSSL:
            self.nginx(snippets["nginx"], d, port)
            print("nginx: a webhook went through the README's server block")
        else:
            print("nginx or openssl is not installed: the nginx snippet was not run")
        if CADDY:
            self.caddy(snippets["caddy"], d, port)
            print("caddy: a webhook went through the README's site block")
        else:
            print("caddy is not installed: the Caddyfile was not run")

    def nginx(self, snippet, d, port):
        cert, key = self.certificate()
        tls_port = free_port()
        root = os.path.join(self.tmp, "nginx")
        os.makedirs(root)
        os.chmod(root, 0o777)
        text = (snippet.replace("/etc/letsencrypt/live/hooks.example.com/fullchain.pem", cert)
                .replace("/etc/letsencrypt/live/hooks.example.com/privkey.pem", key)
                .replace("listen 443 ", "listen 127.0.0.1:%d " % tls_port)
                .replace("127.0.0.1:8080", "127.0.0.1:%d" % port))
        self.assertIn(cert, text)
        self.assertIn("127.0.0.1:%d " % tls_port, text)
        conf = os.path.join(root, "nginx.conf")
        with open(conf, "w") as f:
            f.write("daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log stderr;\n"
                    "events { worker_connections 64; }\nhttp {\naccess_log off;\n" % root)
            for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
                f.write("%s_temp_path %s/%s;\n" % (t, root, t))
            f.write(text + "\n}\n")
        self.behind(tls_port, d, [NGINX, "-p", root, "-e", "stderr", "-c", conf], {})

    def behind(self, tls_port, d, cmd, env):
        """Run the proxy `cmd` while the webhook goes through it; its log if it fails."""
        log = os.path.join(self.tmp, "proxy.log")
        with open(log, "w") as err:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                 env=dict(os.environ, **env), cwd=self.tmp)
        self.procs.append(p)
        try:
            self.proxied_post(tls_port, d)
        except BaseException:
            with open(log) as f:
                print("---- %s:\n%s" % (cmd[0], f.read()[-4000:]))
            raise
        finally:
            p.terminate()
            p.wait(timeout=10)

    def caddy(self, snippet, d, port):
        # Its port is picked free and bound later by caddy: another process can take it in
        # between (the ephemeral range is shared by every test), so that is tried again.
        # Loopback only, and no HTTP->HTTPS redirect (one port fewer to race for).
        for attempt in range(3):
            tls_port = free_port()
            root = os.path.join(self.tmp, "caddy%d" % attempt)
            os.makedirs(root)
            text = snippet.replace("127.0.0.1:8080", "127.0.0.1:%d" % port)
            self.assertTrue(text.startswith("hooks.example.com {"), text)
            # Local certificates instead of ACME, and a port of our own; the site block as written.
            glob_opts = ("{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n"
                         "\tdefault_bind 127.0.0.1\n\tauto_https disable_redirects\n"
                         "\thttps_port %d\n\tstorage file_system %s\n}\n" % (tls_port, root))
            path = os.path.join(root, "Caddyfile")
            with open(path, "w") as f:
                f.write(glob_opts + text)
            try:
                self.behind(tls_port, d, [CADDY, "run", "--config", path, "--adapter", "caddyfile"],
                            dict(HOME=root, XDG_DATA_HOME=root, XDG_CONFIG_HOME=root))
                return
            except OSError:
                with open(os.path.join(self.tmp, "proxy.log")) as f:
                    taken = "address already in use" in f.read()
                if not taken or attempt == 2:
                    raise
                print("caddy: port %d was taken meanwhile; again on another" % tls_port)

if __name__ == "__main__":
    unittest.main(verbosity=2)
