"""The web inspector's HTTP side (src/handlers/ui.c): the page at /ui and every deep link,
its embedded files, its security headers, and the API's access rule applied to it.
What the page does in a browser is tests/browser/test_inspector.py."""

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from hrtest import DEFAULT_CONFIG, Daemon, DaemonTest, payload

TOKEN = "ui-token-0123456789abcdef0123456789"
SOURCE_UI = os.path.join(os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")), "ui")

DEEP_LINKS = ("/ui", "/ui/", "/ui/events", "/ui/events/evt_01m806f1v54zvn580hb7jwg3ca",
              "/ui/sessions", "/ui/sessions/conversation:c4b6bacd1e935467", "/ui/rejections",
              "/ui/rejections/rej_01m806f1v54zvn580hb7jwg3ca", "/ui/destinations")


# The live tail's loop (ui/events.js liveTail) run in node against a scripted server:
# the page's modules as they are, liveTail exported from a copy, a few DOM calls stubbed.
LIVE_TAIL_DRIVER = r"""
class Node {}
class El extends Node {
	constructor(tag) { super(); this.tag = tag; this.children = []; this.attrs = {};
		this.dataset = {}; this.textContent = '';
		this.classList = { toggle() {}, add() {}, remove() {} }; }
	setAttribute(k, v) { this.attrs[k] = v; }
	appendChild(c) { this.children.push(c); return c; }
	append(...c) { this.children.push(...c); }
	prepend(...c) { this.children.unshift(...c); }
	remove() {}
	replaceChildren() { this.children = []; }
	addEventListener() {}
	querySelectorAll() { return []; }
	closest() { return null; }
	get rows() { return this.children; }
	get lastElementChild() { return this.children[this.children.length - 1]; }
}
globalThis.Node = Node;
globalThis.document = { createElement: (t) => new El(t), createElementNS: (n, t) => new El(t),
	createTextNode: (t) => ({ text: t }), addEventListener() {} };
globalThis.sessionStorage = { getItem: () => null };
globalThis.window = { dispatchEvent() {} };
const base = process.argv[2];
const realFetch = globalThis.fetch;
globalThis.fetch = (path, opts) => realFetch(base + path, opts);
const { liveTail } = await import('./events.js');
const view = { tbody: new El('tbody'), bar: new El('div'), note: new El('div'), onTrim() {} };
liveTail({ signal: new AbortController().signal }, {}, 'evt_listed_newest', new Set(), view);
"""


class ScriptedStream:
    """A /v1/stream server: the first request gets its answer's head and then the
    connection drops before any byte of the body; later ones are recorded and held."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.requests = []
        self.second = threading.Event()
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.sock.getsockname()[1]

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = c.recv(4096)
                if not chunk:
                    break
                head += chunk
            self.requests.append(head.decode("latin-1"))
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                      b"Cache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n")
            if len(self.requests) == 1:
                time.sleep(0.3)  # the page has seen the stream open
                c.close()        # cut off before the opening frame (id: N) came
            else:
                self.conns.append(c)
                self.second.set()

    def stop(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def csp_directives(value):
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


class UiTest(DaemonTest):
    def assertSecurityHeaders(self, hdrs, what, cache="no-store"):
        csp = csp_directives(hdrs.get("content-security-policy", ""))
        self.assertEqual(csp.get("default-src"), ["'none'"], what)
        self.assertEqual(csp.get("script-src"), ["'self'"], what)
        self.assertEqual(csp.get("style-src"), ["'self'"], what)
        self.assertEqual(csp.get("connect-src"), ["'self'"], what)
        self.assertEqual(csp.get("frame-ancestors"), ["'none'"], what)
        self.assertEqual(csp.get("base-uri"), ["'none'"], what)
        self.assertEqual(csp.get("require-trusted-types-for"), ["'script'"], what)
        for words in csp.values():
            for w in words:
                self.assertNotIn(w, ("'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:"), what)
        self.assertEqual(hdrs.get("x-content-type-options"), "nosniff", what)
        self.assertEqual(hdrs.get("referrer-policy"), "no-referrer", what)
        self.assertEqual(hdrs.get("x-frame-options"), "DENY", what)
        self.assertEqual(hdrs.get("cache-control"), cache, what)

    def page_assets(self):
        """The page's /ui/assets/VERSION/ prefix, checked, and the files it names."""
        _, _, page = self.d.request("GET", "/ui")
        refs = re.findall(rb'(?:src|href)="(/ui/assets/[^"]+)"', page)
        self.assertGreaterEqual(len(refs), 3)
        prefixes = {r.rsplit(b"/", 1)[0] for r in refs}
        self.assertEqual(len(prefixes), 1, refs)
        prefix = prefixes.pop().decode() + "/"
        self.assertRegex(prefix, r"^/ui/assets/[0-9a-f]{16}/$")
        return prefix, [r.decode() for r in refs]

    def test_every_deep_link_answers_the_page(self):
        prefix, _ = self.page_assets()
        with open(os.path.join(SOURCE_UI, "index.html"), "rb") as f:
            page = f.read().replace(b"/ui/assets/", prefix.encode())
        for path in DEEP_LINKS:
            with self.subTest(path=path):
                status, hdrs, body = self.d.request("GET", path)
                self.assertEqual(status, 200, body[:300])
                self.assertEqual(hdrs["content-type"], "text/html; charset=utf-8")
                self.assertEqual(body, page)
                self.assertSecurityHeaders(hdrs, path)
        status, hdrs, body = self.d.request("HEAD", "/ui/events")
        self.assertEqual((status, body), (200, b""))
        self.assertSecurityHeaders(hdrs, "HEAD /ui/events")

    def test_assets_are_served_with_their_type(self):
        types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8"}
        names = sorted(os.listdir(SOURCE_UI))
        self.assertIn("app.js", names)
        for name in names:
            with self.subTest(name=name):
                status, hdrs, body = self.d.request("GET", "/ui/assets/" + name)
                self.assertEqual(status, 200)
                with open(os.path.join(SOURCE_UI, name), "rb") as f:
                    self.assertEqual(body, f.read())
                self.assertEqual(hdrs["content-type"], types[os.path.splitext(name)[1]])
                self.assertSecurityHeaders(hdrs, name)

    def test_every_asset_the_page_names_exists(self):
        prefix, refs = self.page_assets()
        _, _, app = self.d.request("GET", prefix + "app.js")
        refs += [prefix + m[2:].decode() for m in re.findall(rb"from '(\./[a-z]+\.js)'", app)]
        for ref in set(refs):
            with self.subTest(ref=ref):
                self.assertEqual(self.d.request("GET", ref)[0], 200)

    def test_versioned_files_are_kept_by_browsers_and_only_they(self):
        """Under the page's version every file is cacheable for good; the page, the
        unversioned files and another version's are not (an upgrade is seen at once)."""
        prefix, _ = self.page_assets()
        for name in sorted(os.listdir(SOURCE_UI)):
            with self.subTest(name=name):
                status, hdrs, body = self.d.request("GET", prefix + name)
                self.assertEqual(status, 200)
                with open(os.path.join(SOURCE_UI, name), "rb") as f:
                    self.assertEqual(body, f.read())
                self.assertSecurityHeaders(hdrs, name, cache="public, max-age=31536000, immutable")
        for path in ("/ui", "/ui/events/evt_x", "/ui/assets/app.js"):
            with self.subTest(path=path):
                self.assertEqual(self.d.request("GET", path)[1]["cache-control"], "no-store")
        other = "/ui/assets/%016x/app.js" % (int(prefix.split("/")[3], 16) ^ 1)
        for path in (other, prefix + "nope.js", prefix + "app.js/x", "/ui/assets/v/app.js"):
            with self.subTest(path=path):
                resp = self.d.request("GET", path)
                self.assertProblem(resp, 404, "not-found")
                self.assertEqual(resp[1]["cache-control"], "no-store")
        self.assertEqual(self.d.request("GET", "/v1/events")[1]["cache-control"], "no-store")

    def test_unknown_paths_and_files_are_404(self):
        for path in ("/ui/assets/nope.js", "/ui/assets/", "/ui/assets", "/ui/events/a/b",
                     "/ui/nope", "/uix", "/ui/assets/app.jsx"):
            with self.subTest(path=path):
                self.assertProblem(self.d.request("GET", path), 404, "not-found")
        # Paths not in normal form never reach a route (security.md, defence 20).
        for path in ("/ui/assets/..%2fCMakeLists.txt", "/ui/assets/%2e%2e", "/ui/assets/../x"):
            with self.subTest(path=path):
                self.assertProblem(self.d.request("GET", path), 400, "bad-request")

    def test_page_is_read_only(self):
        self.assertProblem(self.d.request("POST", "/ui/events", b"{}"), 405, "method-not-allowed")
        self.assertProblem(self.d.request("DELETE", "/ui/assets/app.js"), 405)

    def test_filters_go_in_the_query_and_typos_are_refused(self):
        status, _, _ = self.d.request("GET", "/ui/events?kind=tavus.video&provider=tavus&since=15m")
        self.assertEqual(status, 200)
        self.assertEqual(self.d.request("GET", "/ui/sessions?status=ended")[0], 200)
        doc = self.assertProblem(self.d.request("GET", "/ui/events?knid=tavus.video"), 400, "bad-parameter")
        self.assertEqual(doc["parameter"], "knid")
        self.assertProblem(self.d.request("GET", "/ui/destinations?x=1"), 400, "bad-parameter")

    def test_every_filter_a_view_links_to_is_accepted(self):
        # The Events view keeps its FILTERS in the address, and other views link to it
        # (a room's page to /ui/events?room=NAME): a reload or a bookmark must load.
        with open(os.path.join(SOURCE_UI, "events.js")) as f:
            filters = re.search(r"const FILTERS = \[([^\]]*)\]", f.read()).group(1)
        names = re.findall(r"'(\w+)'", filters)
        self.assertIn("room", names)
        values = {"since": "15m", "until": "2026-01-01T00:00:00Z", "provider": "tavus"}
        for name in names:
            with self.subTest(filter=name):
                status, _, body = self.d.request(
                    "GET", "/ui/events?%s=%s" % (name, values.get(name, "x")))
                self.assertEqual(status, 200, body[:200])
        linked = set()
        for js in os.listdir(SOURCE_UI):
            if js.endswith(".js"):
                with open(os.path.join(SOURCE_UI, js)) as f:
                    linked |= set(re.findall(r"/ui/events\?(\w+)=", f.read()))
        self.assertLessEqual(linked, set(names))

    def test_without_a_token_only_loopback_clients_get_the_page(self):
        # A proxy on this host makes every client look local: forwarded is not local.
        for hdr in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"},
                    {"X-Real-IP": "203.0.113.9"}):
            for path in ("/ui", "/ui/events/evt_x", "/ui/assets/app.js"):
                with self.subTest(path=path, hdr=hdr):
                    self.assertProblem(self.d.request("GET", path, headers=hdr), 403, "forbidden")


class UiTokenTest(DaemonTest):
    config = DEFAULT_CONFIG + "[api]\ntoken_file = {dir}/token\n"

    def setUp(self):
        self.d = Daemon(self.config)
        with open(os.path.join(self.d.dir, "token"), "w") as f:
            f.write(TOKEN + "\n")
        self.d.start()

    def test_with_a_token_the_page_loads_and_the_data_needs_the_token(self):
        ack = self.post_ok(payload("tavus.replica.completed.json"))
        remote = {"X-Forwarded-For": "203.0.113.9"}
        for path in ("/ui", "/ui/events/" + ack["id"], "/ui/assets/api.js"):
            with self.subTest(path=path):
                # A browser navigation carries no bearer header: the page must load...
                self.assertEqual(self.d.request("GET", path, headers=remote)[0], 200)
        # ...and hold no data: what it shows comes from /v1, which asks for the token.
        for path in ("/v1/events", "/v1/events/" + ack["id"], "/v1/stream"):
            with self.subTest(path=path):
                self.assertProblem(self.d.request("GET", path, headers=remote), 401, "unauthorized")
        status, _, body = self.d.request("GET", "/v1/events", headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(status, 200)
        self.assertIn(ack["id"].encode(), body)
        _, _, page = self.d.request("GET", "/ui")
        self.assertNotIn(TOKEN.encode(), page)
        self.assertNotIn(ack["id"].encode(), page)


class LiveTailReconnectTest(unittest.TestCase):

    def test_a_stream_cut_before_its_opening_frame_resumes_after_the_listed_events(self):
        # ui/events.js: the tail opens with ?after=<newest listed> and marks the stream
        # opened (first = false) on stream()'s 'open', which api.js yields as soon as the
        # answer's head came, before the opening frame that gives the stream's position.
        # Cut off in between, it reconnected with neither `after` nor Last-Event-ID: a
        # stream that starts with what is stored after it opens (api.md), so every
        # event stored between the list and the reconnect (3 s at least) was missed.
        node = shutil.which("node")
        if not node:
            self.skipTest("node is not on PATH")
        tmp = tempfile.mkdtemp(prefix="hrtest-tail-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name in ("api.js", "dom.js"):
            shutil.copy(os.path.join(SOURCE_UI, name), tmp)
        with open(os.path.join(SOURCE_UI, "events.js")) as f, \
                open(os.path.join(tmp, "events.js"), "w") as out:
            out.write(f.read() + "\nexport { liveTail };\n")
        with open(os.path.join(tmp, "driver.mjs"), "w") as f:
            f.write(LIVE_TAIL_DRIVER)
        server = ScriptedStream()
        self.addCleanup(server.stop)
        p = subprocess.Popen([node, "driver.mjs", server.url], cwd=tmp, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            came = server.second.wait(15)
        finally:
            p.kill()
            out = p.communicate()[0].decode(errors="replace")
        self.assertTrue(came, "no reconnect; node said:\n" + out + "\n" + "\n".join(server.requests))
        first_line = server.requests[0].split("\r\n")[0]
        self.assertIn("after=evt_listed_newest", first_line)
        again = server.requests[1]
        resumes = "after=evt_listed_newest" in again.split("\r\n")[0] or \
            re.search(r"(?im)^last-event-id:", again) is not None
        self.assertTrue(resumes, "the reconnect starts at 'now', after the events stored"
                        " meanwhile:\n" + again)


if __name__ == "__main__":
    unittest.main()
