"""hrpg - SQL on the test cluster from the test's own process, through libpq (ctypes).

A `psql -c` per statement cost a process and a new server backend every time (on the
CI machine ~35 ms of psql's processor time and ~26 ms of the server's, mostly page
faults; over 1,100 calls a full run, the emptying of each PostgreSQL test daemon's
database the most). Here one connection a conninfo string is kept and used again: the
emptying of a database and the next daemon's checks of it go through the same backend.

The output is what `psql -X -q -A -t` printed: the rows of every result of the string
(psql 15 prints them all), one a line, columns split by |, NULL as an empty string.

Only the Python standard library: libpq is the shared library psql itself runs on
(Debian's libpq5, which libpq-dev installs).
"""

import atexit
import ctypes
import ctypes.util
import re
import select
import threading

# PQresultStatus values (libpq-fe.h): ExecStatusType.
_TUPLES_OK = 2
_FAILED = {5, 7}  # PGRES_BAD_RESPONSE, PGRES_FATAL_ERROR
_CONNECTION_OK = 0
_IDLE = 0  # PQTRANS_IDLE: no transaction open
# A statement that hangs fails the test instead of holding it to ctest's limit (the
# psql calls had a 60-s timeout); a url's own options or name are kept.
_OPTIONS = (("options", "options='-c statement_timeout=60s'"),
            ("application_name", "application_name=hrtest"))


class PgError(Exception):
    """A statement or a connection failed; the message is the server's."""


_NOTICE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_quiet = _NOTICE(lambda arg, message: None)  # as psql's captured stderr: not shown
_lib = None
_conns = {}
_lock = threading.Lock()


def _libpq():
    global _lib
    if _lib is None:
        try:
            lib = ctypes.CDLL("libpq.so.5")
        except OSError:
            name = ctypes.util.find_library("pq")
            if name is None:
                raise
            lib = ctypes.CDLL(name)
        p, s, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        for name, res, args in (
                ("PQconnectdb", p, [s]), ("PQstatus", i, [p]), ("PQerrorMessage", s, [p]),
                ("PQfinish", None, [p]), ("PQsendQuery", i, [p, s]),
                ("PQgetResult", p, [p]), ("PQresultStatus", i, [p]),
                ("PQresultErrorMessage", s, [p]), ("PQntuples", i, [p]),
                ("PQnfields", i, [p]), ("PQgetvalue", ctypes.c_void_p, [p, i, i]),
                ("PQgetlength", i, [p, i, i]), ("PQclear", None, [p]),
                ("PQsocket", i, [p]), ("PQtransactionStatus", i, [p]),
                ("PQsetNoticeProcessor", p, [p, _NOTICE, p])):
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        _lib = lib
    return _lib


def _connect(lib, url):
    if "://" not in url:  # key=value pairs, not a URI: ours go after the url's
        url += "".join(" " + pair for key, pair in _OPTIONS
                       if not re.search(r"(^|\s)%s\s*=" % key, url))
    conn = lib.PQconnectdb(url.encode())
    if conn is None:
        raise PgError("libpq: out of memory")
    if lib.PQstatus(conn) != _CONNECTION_OK:
        message = (lib.PQerrorMessage(conn) or b"").decode(errors="replace").strip()
        lib.PQfinish(conn)
        raise PgError(message)
    lib.PQsetNoticeProcessor(conn, _quiet, None)
    return conn


def _alive(lib, conn):
    # An idle connection is sent nothing (no LISTEN here): anything to read is a
    # backend the server ended since (a DROP DATABASE WITH (FORCE), a restart), its
    # goodbye or its closed socket. libpq would see it only when the next statement
    # failed on it.
    sock = lib.PQsocket(conn)
    if sock < 0 or lib.PQstatus(conn) != _CONNECTION_OK:
        return False
    p = select.poll()  # not select(), which refuses a descriptor past 1023
    p.register(sock, select.POLLIN)
    return not p.poll(0)


def _forget(lib, url):
    conn = _conns.pop(url, None)
    if conn is not None:
        lib.PQfinish(conn)


def _rows(lib, res, out):
    if lib.PQnfields(res) == 0:
        return  # psql prints nothing for rows of no column
    for r in range(lib.PQntuples(res)):
        out.append("|".join(
            ctypes.string_at(lib.PQgetvalue(res, r, c), lib.PQgetlength(res, r, c)).decode()
            for c in range(lib.PQnfields(res))) + "\n")


def _run(lib, conn, sql, out):
    """Sends `sql`, reads every result; the first error's message, or None."""
    if not lib.PQsendQuery(conn, sql.encode()):
        return (lib.PQerrorMessage(conn) or b"").decode(errors="replace").strip()
    error = None
    while True:
        res = lib.PQgetResult(conn)
        if res is None:
            break
        status = lib.PQresultStatus(res)
        if status == _TUPLES_OK and out is not None:
            _rows(lib, res, out)
        elif status in _FAILED and error is None:
            error = (lib.PQresultErrorMessage(res) or b"").decode(errors="replace").strip()
        lib.PQclear(res)
    if error is None and lib.PQstatus(conn) != _CONNECTION_OK:
        error = (lib.PQerrorMessage(conn) or b"").decode(errors="replace").strip()
    return error


def query(url, sql):
    """Run `sql` (one or more statements, as one simple query: one transaction) on the
    database `url` (a conninfo string) names; returns psql's output, see above.

    Nothing of one call is left to the next, as when each was a psql of its own: a
    transaction the string left open (a BEGIN without COMMIT, or one a failed statement
    aborted) is rolled back, and the session's settings, temporary tables, locks and
    prepared statements are discarded (a review: the emptying's SET
    session_replication_role = replica stayed on for the next daemon's test SQL, and
    deliveries inserted by a test went uncounted by the triggers)."""
    with _lock:
        lib = _libpq()
        conn = _conns.get(url)
        if conn is not None and not _alive(lib, conn):
            _forget(lib, url)
            conn = None
        if conn is None:
            conn = _conns[url] = _connect(lib, url)
        out = []
        error = _run(lib, conn, sql, out)
        if lib.PQstatus(conn) == _CONNECTION_OK and lib.PQtransactionStatus(conn) != _IDLE:
            _run(lib, conn, "ROLLBACK", None)
        if lib.PQstatus(conn) != _CONNECTION_OK or _run(lib, conn, "DISCARD ALL", None):
            _forget(lib, url)
        if error is not None:
            raise PgError(error)
        return "".join(out)


def forget(url):
    """Ends the connection kept for `url`, if any: before its database is dropped."""
    with _lock:
        if _lib is not None:
            _forget(_lib, url)


@atexit.register
def close_all():
    """Ends every kept connection (with a goodbye, not a dropped socket)."""
    with _lock:
        if _lib is not None:
            for url in list(_conns):
                _forget(_lib, url)
