"""sink - a downstream HTTP server on 127.0.0.1 for forwarding tests and benchmarks.

It records every request (time, path, headers, body) and answers according to a
behaviour that a test can change while it runs:

  ok            200
  fail          500
  retry_after   429 with Retry-After: <retry_after> seconds
  gone          410
  bad_request   400
  unauthorized  401
  hang          reads the request, never answers (until the test stops the sink)
  close         reads the request and closes the connection without an answer
  script        pops the next behaviour from `script` (then falls back to `behaviour`)
  gated         holds the request until `gate` is set, then answers as the next of
                `gated_answers` says (200 when it is empty; "late:B": B after 0.5 s)

Standard library only; every socket has a timeout and the server stops itself
after `max_seconds`.
"""

import http.server
import socket
import threading
import time


class Request:
    # headers: lower-cased name -> value (the last of a repeated one); names: every
    # header name as sent, lower-cased, repeats included.
    __slots__ = ("at", "path", "headers", "body", "answered", "names")

    def __init__(self, at, path, headers, body, answered, names=()):
        self.at, self.path, self.headers, self.body, self.answered = at, path, headers, body, answered
        self.names = list(names)


class Sink:
    def __init__(self, behaviour="ok", retry_after=1, max_seconds=300):
        self.behaviour = behaviour
        self.retry_after = retry_after
        self.script = []
        self.requests = []
        self.gate = threading.Event()  # "gated": answer once it is set
        self.gate.set()
        self.gated_answers = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self._stopping = threading.Event()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30
            # Headers and body are written separately: without this, Nagle holds
            # every answer back ~40 ms and the sink caps near 300 requests/s.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                what = sink._next_behaviour()
                with sink.cond:
                    sink.requests.append(Request(time.monotonic(), self.path,
                                                 {k.lower(): v for k, v in self.headers.items()},
                                                 body, what, [k.lower() for k in self.headers.keys()]))
                    sink.cond.notify_all()
                if what == "gated":
                    sink.gate.wait(60)
                    with sink.lock:
                        what = sink.gated_answers.pop(0) if sink.gated_answers else "ok"
                    if what.startswith("late:"):
                        time.sleep(0.5)
                        what = what[5:]
                if what == "hang":
                    sink._stopping.wait(120)
                    self.close_connection = True
                    return
                if what == "close":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                status = {"ok": 200, "fail": 500, "retry_after": 429, "gone": 410,
                          "bad_request": 400, "unauthorized": 401}.get(what, 200)
                payload = b'{"received":true}' if status == 200 else b'{"error":"' + what.encode() + b'"}'
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", str(sink.retry_after))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128  # not socketserver's 5: a full backlog drops SYNs

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        self._timer = threading.Timer(max_seconds, self.stop)
        self._timer.daemon = True
        self._timer.start()

    def _next_behaviour(self):
        with self.lock:
            if self.behaviour == "script" and self.script:
                return self.script.pop(0)
            return self.behaviour if self.behaviour != "script" else "ok"

    def set(self, behaviour):
        with self.lock:
            self.behaviour = behaviour

    def received(self):
        with self.lock:
            return list(self.requests)

    def wait_for(self, predicate, timeout=20.0):
        """Wait until predicate(list of requests) is true; returns the list."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.requests):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink: condition not met in {timeout}s; got {len(self.requests)} requests")
                self.cond.wait(min(left, 0.2))
            return list(self.requests)

    def wait_count(self, n, timeout=20.0):
        return self.wait_for(lambda r: len(r) >= n, timeout)

    def stop(self):
        self._stopping.set()
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()
