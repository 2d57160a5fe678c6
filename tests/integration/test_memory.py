"""Memory after large bodies: a large body's parsed tree lives in a big slot of the
arena (src/base/jarena.c). Its pages stay with the slot while large bodies keep
coming (so the next tree does not fault them in again), and go back to the
kernel once no large body has needed the slot for HR_JARENA_IDLE_US (10 s).

About 15 seconds: it waits for that idle time.
"""

import re
import time
import unittest

from hrtest import DaemonTest, dumps, fresh_id, payload_json, sqlite_only

# include/hr/jarena.h: 32 big slots of 64 MiB and 1,024 slots of 32 KiB, reserved
# as two mappings that the kernel may merge into one.
BIG_REGION_KB = 32 * 64 * 1024
SLOTS_KB = 1024 * 32
SMALL_KB = 512  # what the small slots of a few 1 KiB events hold, at most
BIG_KEEP_KB = 1024  # HR_JARENA_BIG_KEEP
IDLE_S = 10         # HR_JARENA_IDLE_US


def large_body():
    """A valid Tavus callback of about 1 MiB whose tree is several MiB: 60,000 strings
    (under the default limit of 100,000 JSON values)."""
    doc = payload_json("tavus.conversation.system.shutdown.json")
    doc["conversation_id"] = fresh_id("c")
    doc["properties"]["notes"] = ["n%015d" % i for i in range(60000)]
    return dumps(doc)


def arena_rss_kb(pid):
    """Resident kB of the mapping that holds the arena's big slots, found by its size
    in smaps (the small slots' mapping may be merged into it)."""
    size_kb, found = None, []
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if line.startswith("Size:"):
                size_kb = int(line.split()[1])
            elif line.startswith("Rss:") and size_kb in (BIG_REGION_KB, BIG_REGION_KB + SLOTS_KB):
                found.append(int(line.split()[1]))
    if len(found) != 1:
        raise AssertionError("%d mappings of the arena's size in smaps" % len(found))
    return found[0]


def held_metric(d):
    """hookrelay_tree_arena_held_bytes from /metrics: what the arena says it keeps."""
    status, _, body = d.request("GET", "/metrics")
    assert status == 200, status
    m = re.search(rb"^hookrelay_tree_arena_held_bytes (\d+)$", body, re.M)
    assert m, "no hookrelay_tree_arena_held_bytes in /metrics"
    return int(m.group(1))


@sqlite_only("the arena is the same with every engine; one run of its 10-s wait is enough")
class LargeTreeMemoryTest(DaemonTest):
    def test_a_large_trees_pages_stay_while_in_use_and_go_when_idle(self):
        pid = self.d.proc.pid
        self.assertLess(arena_rss_kb(pid), SMALL_KB)  # no large body yet
        self.assertEqual(held_metric(self.d), 0)
        for _ in range(2):
            self.post_ok(large_body())
        # Kept past HR_JARENA_BIG_KEEP: the second tree wrote the first one's pages.
        held = arena_rss_kb(pid)
        self.assertGreater(held, 3 * BIG_KEEP_KB)
        # The metric counts the bytes given out of the big slot (a page given out may
        # never have been written), smaps the pages in memory, small slots included.
        self.assertAlmostEqual(held_metric(self.d), held * 1024, delta=SMALL_KB * 1024)
        time.sleep(IDLE_S / 2)
        self.assertGreaterEqual(arena_rss_kb(pid), held)  # not idle for long enough yet
        deadline = time.monotonic() + IDLE_S + 10  # the main loop trims once a second
        while arena_rss_kb(pid) >= SMALL_KB and time.monotonic() < deadline:
            time.sleep(0.5)
        # All of it, HR_JARENA_BIG_KEEP's megabyte included.
        self.assertLess(arena_rss_kb(pid), SMALL_KB)
        self.assertEqual(held_metric(self.d), 0)
        self.assertHealthy()
        self.post_ok(large_body())  # a slot given back takes a tree again
        self.assertGreater(arena_rss_kb(pid), 3 * BIG_KEEP_KB)



def peak_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


@sqlite_only("the rows are written with SQLite's own client; the answer is built the same way "
             "on both engines")
class DeliveriesLogMemoryTest(DaemonTest):
    DELIVERIES = 200   # GET /v1/events/{id}/deliveries shows up to 1,000
    ATTEMPTS = 51      # retry_schedule takes up to 50 retries
    KEEP = 4096        # HR_RESPONSE_KEEP: the first 4 KiB of each answer are kept

    def test_an_events_delivery_log_is_answered_without_memory_in_proportion_to_it(self):
        # docs/operations.md, Memory: "What hookrelay holds grows with what is in
        # flight, not with what is stored", and api.md bounds a page with payloads to
        # 4 MiB. An event replayed to a destination that answers binary (each kept
        # answer 4 KiB of control bytes, 6 bytes each as \u00XX in JSON) has its whole
        # attempt log built as one tree and one text: 200 deliveries x 51 attempts here
        # (1,000 x 51 at most, and resends of an attempt are entries too) make an answer
        # of ~250 MB, and the daemon's peak memory grows by as much, for one GET.
        import sqlite3
        ack = self.post_ok(dumps(dict(payload_json("tavus.conversation.system.shutdown.json"),
                                      conversation_id=fresh_id("c"))))
        db = sqlite3.connect(self.d.db, timeout=10)
        try:
            with db:
                seq = db.execute("SELECT seq FROM events WHERE id = ?", (ack["id"],)).fetchone()[0]
                now = int(time.time() * 1e6)
                for _ in range(self.DELIVERIES):
                    cur = db.execute(
                        "INSERT INTO deliveries (event_seq, destination, status, attempts,"
                        " created_at, updated_at, next_attempt_at, last_status)"
                        " VALUES (?, 'binary', 2, ?, ?, ?, 0, 200)",
                        (seq, self.ATTEMPTS, now, now))
                    db.executemany(
                        "INSERT INTO attempts (delivery_id, number, started_at, duration_us,"
                        " http_status, response) VALUES (?, ?, ?, 1000, 500, ?)",
                        [(cur.lastrowid, n, now, b"\x01" * self.KEEP)
                         for n in range(1, self.ATTEMPTS + 1)])
        finally:
            db.close()
        pid = self.d.proc.pid
        before = peak_rss_kb(pid)
        status, _, body = self.d.request("GET", "/v1/events/%s/deliveries" % ack["id"])
        grew_mb = (peak_rss_kb(pid) - before) / 1024
        self.assertEqual(status, 200)
        self.assertLess(grew_mb, 64,
                        "one GET of an event's delivery log (%d MB of answer) grew the daemon's "
                        "peak memory by %d MB" % (len(body) >> 20, grew_mb))


if __name__ == "__main__":
    unittest.main()
