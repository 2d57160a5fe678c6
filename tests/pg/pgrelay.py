"""pgrelay - a TCP relay in front of a PostgreSQL cluster's Unix socket, for the tests
and the benches: the daemon's connections through it are TCP connections of its own,
which the relay can stall, hang, hold up or delay like a network (Python's standard
library only)."""
import queue
import socket
import threading
import time


class TcpRelay:
    """127.0.0.1:port to the cluster's Unix socket (the cluster listens on no TCP port):
    the daemon's connections through it are TCP connections of its own."""

    def __init__(self, unix_path, stall_at=None, latency=0, lag_later=False):
        self.unix_path = unix_path
        self.stall_at = stall_at  # bytes from the daemon that stall() the relay at once
        self.latency = latency  # seconds the server's bytes take to the daemon (a network)
        # lag_later: the server's bytes go through the delaying pipe even at latency 0,
        # so that `latency` set later applies to the connections already open (a
        # daemon started at once, then measured behind the network: its start is
        # some fifty round trips).
        self.lag_later = lag_later
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.socks = []
        self.closed = False  # close(): a socket kept after it is ended at once
        self.socks_lock = threading.Lock()
        self.stalled = False
        self.hanging_new = False
        self.hung = 0  # connections taken by hang_new()
        self.delay = 0  # seconds a new connection waits before it is put through
        self.close_marker = None  # close_on()
        self.closed_on = 0  # connections close_on() closed
        self.answer_marker = None  # lose_answer_to()
        self.answers_lost = 0  # connections lose_answer_to() closed
        self.cut = set()  # server sides whose next answer is lost
        self.pairs = []  # (daemon side, server side) of each connection put through
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self):
        """From now on bytes are taken and dropped, both ways, on every connection,
        new ones too: a server that stopped answering behind a live network."""
        self.stalled = True

    def hang_new(self):
        """From now on new connections are taken and never answered (a server past
        its limit behind a slow network); those made before go on."""
        self.hanging_new = True

    def close_on(self, marker):
        """The next bytes from the daemon that hold `marker` are not passed on: their
        connection is closed instead, both ways (a server that closed it just before
        they came). Once."""
        self.close_marker = marker

    def lose_answer_to(self, marker, holding=b""):
        """The next bytes from the daemon that hold `marker` are passed on, and their
        connection is closed, both ways, as the server's answer comes: the statement
        ran (and committed, if it was alone), its answer never came. Once: for the
        first such statement whose answer holds `holding`."""
        self.answer_holding = holding
        self.answer_marker = marker

    def goodbye(self, then_close_after):
        """Every connection made so far gets a server's goodbye, as PostgreSQL sends it
        to a backend told to end (an ErrorResponse, FATAL 57P01), and is closed
        `then_close_after` seconds later: the end of a busy server's backend, whose
        process takes a moment to exit after its last words."""
        fields = b"".join(k + v + b"\0" for k, v in (
            (b"S", b"FATAL"), (b"V", b"FATAL"), (b"C", b"57P01"),
            (b"M", b"terminating connection due to administrator command")))
        body = fields + b"\0"
        message = b"E" + (len(body) + 4).to_bytes(4, "big") + body
        pairs = list(self.pairs)
        for daemon_side, _ in pairs:
            try:
                daemon_side.sendall(message)
            except OSError:
                pass

        def close():
            time.sleep(then_close_after)
            for pair in pairs:
                for x in pair:
                    try:
                        x.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        threading.Thread(target=close, daemon=True).start()

    def delay_new(self, seconds):
        """From now on a new connection is put through `seconds` after it came (a
        cancel request behind a slow network); those made before go on."""
        self.delay = seconds

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            # What the server says goes on at once, as on its own socket: with Nagle a
            # few bytes (a goodbye) waited up to 40 ms for the daemon's delayed ACK.
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._keep(c):
                return
            if self.stalled or self.hanging_new:
                self.hung += self.hanging_new
                threading.Thread(target=self._pipe, args=(c, None), daemon=True).start()
                continue
            threading.Thread(target=self._connect, args=(c, self.delay), daemon=True).start()

    def _connect(self, c, delay):
        time.sleep(delay)
        u = socket.socket(socket.AF_UNIX)
        if not self._keep(u):
            return
        u.connect(self.unix_path)
        self.pairs.append((c, u))
        for a, b, from_daemon in ((c, u, True), (u, c, False)):
            late = self.latency or self.lag_later
            pipe = self._late_pipe if late and not from_daemon else self._pipe
            threading.Thread(target=pipe, args=(a, b, from_daemon), daemon=True).start()

    def _late_pipe(self, a, b, from_daemon=False):
        """As _pipe, each chunk passed on `latency` seconds after it came, in order
        (what came meanwhile is not held up behind it: a link's delay, not its speed)."""
        chunks = queue.Queue()

        def send():
            while True:
                due, data = chunks.get()
                time.sleep(max(0.0, due - time.monotonic()))
                try:
                    if data is None:
                        b.shutdown(socket.SHUT_WR)
                        return
                    b.sendall(data)
                except OSError:
                    return
        threading.Thread(target=send, daemon=True).start()
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                chunks.put((time.monotonic() + self.latency, data))
        except OSError:
            pass
        chunks.put((time.monotonic() + self.latency, None))

    def _pipe(self, a, b, from_daemon=False):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                if from_daemon and self.stall_at is not None and self.stall_at in data:
                    self.stall()
                if from_daemon and self.close_marker is not None and self.close_marker in data:
                    self.close_marker = None
                    self.closed_on += 1
                    for x in (a, b):
                        try:
                            x.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    break
                if not from_daemon and a in self.cut and self.answer_holding not in data:
                    self.cut.discard(a)
                elif not from_daemon and a in self.cut:
                    self.answer_marker = None
                    self.answers_lost += 1
                    for x in (a, b):
                        try:
                            x.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                    break
                if from_daemon and self.answer_marker is not None and self.answer_marker in data:
                    self.cut.add(b)
                if b is not None and not self.stalled:
                    b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                if b is not None:
                    b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _keep(self, s):
        """Keeps s among the sockets close() ends; False, and s ended, once closed."""
        with self.socks_lock:
            if not self.closed:
                self.socks.append(s)
                return True
        _end(s)
        return False

    def close(self):
        """Stops listening and ends every connection, both ways: the daemon sees each
        one closed at once, and a new one refused."""
        with self.socks_lock:
            self.closed = True
            socks = list(self.socks)
        # Shut down, not only closed: a socket another thread of the relay waits on
        # (accept(), recv()) stayed open past close(), the listener taking new
        # connections and the connections passing nothing, and a daemon's statement
        # or new connection on them waited out its deadline (a stop after a stall
        # took 5 s more).
        _end(self.lsock)
        for x in socks:
            _end(x)


def _end(s):
    """Shuts s down both ways (which wakes a thread blocked on it), then closes it."""
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
