"""PostgreSQL: the tests' databases are emptied and reused, not dropped and created.

Each daemon of the PostgreSQL run gets a database of its own (hrtest.pg_database); when
the daemon is done, hrtest empties it for the next one. Creating one costs the server
about 0.1 s of processor time, its schema more, and each test file starts tens of
daemons. The emptying deleted the tables in the order the catalogue listed them, so a
database that had stored an event failed on the sessions the events still referred to,
and was dropped: every such daemon paid for a new database (2026-12-07: test_auth made
25 databases for 36 daemons). These tests see a database that held an event, a delivery
and its attempt come back empty to the next daemon, its identities starting again at 1.

The tests' own SQL (the emptying, db_rows, pg_sql) goes through libpq on a connection
kept a database (hrtest's hrpg): a psql a call cost a process and a server backend,
over 1,100 a run. KeptConnectionTest sees one backend serve a database's emptying and
the next daemon's reads, nothing of one call (settings, an open or aborted transaction,
temporary tables) left to the next, the output psql printed, and a connection the
server ended replaced without a failed statement.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))

import hrpg  # noqa: E402
import hrtest  # noqa: E402
from hrtest import Daemon, db_rows, dumps, fresh_id, payload_json  # noqa: E402
from test_forward import dest_section, wait_until  # noqa: E402

# What a daemon writes with one webhook and a failed delivery of it. A delivery's count
# is in one of two tables: its change, until a writer folds it into the counts.
COUNTS = {table: "SELECT count(*) FROM " + table
          for table in ("events", "sessions", "dedup", "deliveries", "attempts")}
COUNTS["delivery counts"] = ("SELECT (SELECT count(*) FROM delivery_counts)"
                             " + (SELECT count(*) FROM delivery_count_changes)")


@unittest.skipIf(hrtest.BACKEND != "postgresql", "needs HR_TEST_BACKEND=postgresql")
class PoolTest(unittest.TestCase):

    def daemon(self):
        # A destination nobody listens on: the delivery fails and records its attempt.
        d = Daemon(hrtest.config_with(
            sections=dest_section("gone", "http://127.0.0.1:%d/" % hrtest.free_port(),
                                  retry_schedule="1h")))
        self.addCleanup(d.cleanup)
        return d.start()

    def database(self, d):
        with open(os.path.join(d.dir, "pg-database")) as f:
            return f.read().strip()

    def test_a_used_database_comes_back_empty(self):
        first = self.daemon()
        body = payload_json("tavus.conversation.application.transcription_ready.json")
        body["conversation_id"] = fresh_id("c")
        st, _, answer = first.post(dumps(body))
        self.assertEqual(st, 200, answer)
        self.assertTrue(wait_until(lambda: db_rows(first, "SELECT count(*) FROM attempts")[0][0] > 0),
                        first.log())
        for what, sql in COUNTS.items():
            self.assertGreater(db_rows(first, sql)[0][0], 0, what)
        name = self.database(first)
        first.cleanup()

        second = self.daemon()
        self.assertEqual(self.database(second), name, "the database was not reused")
        for what, sql in COUNTS.items():
            self.assertEqual(db_rows(second, sql)[0][0], 0, what)
        st, _, answer = second.post(dumps(body))
        self.assertEqual(st, 200, answer)
        self.assertIs(json.loads(answer)["duplicate"], False)  # the dedup keys went too
        self.assertEqual(db_rows(second, "SELECT min(seq) FROM events"), [(1,)])


@unittest.skipIf(hrtest.BACKEND != "postgresql", "needs HR_TEST_BACKEND=postgresql")
class KeptConnectionTest(unittest.TestCase):

    def test_one_backend_empties_a_database_and_reads_it_for_the_next_daemon(self):
        first = Daemon(hrtest.config_with())
        self.addCleanup(first.cleanup)
        first.start()
        reader = db_rows(first, "SELECT pg_backend_pid()")[0][0]
        self.assertEqual(db_rows(first, "SELECT pg_backend_pid()")[0][0], reader)
        first.cleanup()  # emptied for the next daemon
        second = Daemon(hrtest.config_with())
        self.addCleanup(second.cleanup)
        second.start()
        self.assertEqual(db_rows(second, "SELECT pg_backend_pid()")[0][0], reader,
                         "the emptying or the next read opened another backend")

    def test_nothing_of_a_call_is_left_to_the_next(self):
        # As when each call was a psql of its own (a review: the emptying's
        # session_replication_role = replica stayed on for the next daemon's test SQL).
        url = hrtest.PG_URL
        hrpg.query(url, "SET lock_timeout = '1s'; SET session_replication_role = replica;"
                        " CREATE TEMP TABLE t (x int)")
        self.assertEqual(hrpg.query(url, "SHOW lock_timeout; SHOW session_replication_role"),
                         "0\norigin\n")
        hrpg.query(url, "CREATE TEMP TABLE t (x int)")  # the first one went with its call
        with self.assertRaises(hrpg.PgError):
            hrpg.query(url, "BEGIN; SELECT 1 / 0")
        self.assertEqual(hrpg.query(url, "SELECT 1"), "1\n", "the aborted transaction stayed")
        pid = hrpg.query(url, "BEGIN; SELECT pg_backend_pid()").strip()
        state = subprocess.run([hrtest.PSQL, "-X", "-A", "-t", "-d", url, "-c",
                                "SELECT state FROM pg_stat_activity WHERE pid = " + pid],
                               check=True, capture_output=True, text=True, timeout=60)
        self.assertEqual(state.stdout.strip(), "idle", "a transaction left open")

    def test_a_reused_database_has_its_triggers_on_for_the_tests_sql(self):
        first = Daemon(hrtest.config_with())
        self.addCleanup(first.cleanup)
        first.start()
        first.cleanup()  # emptied as a replica would, for the next daemon
        second = Daemon(hrtest.config_with())
        self.addCleanup(second.cleanup)
        second.start()
        self.assertEqual(db_rows(second, "SELECT current_setting('session_replication_role')"),
                         [("origin",)])

    def test_a_urls_own_options_are_kept(self):
        url = hrtest.PG_URL + " options='-c work_mem=7MB' application_name=mine"
        self.addCleanup(hrpg.forget, url)
        self.assertEqual(hrpg.query(url, "SHOW work_mem; SHOW application_name"), "7MB\nmine\n")
        self.assertEqual(hrpg.query(hrtest.PG_URL, "SHOW statement_timeout"), "1min\n")

    def test_a_kept_connection_past_descriptor_1023_is_used(self):
        # The look for a kept connection's end was select(), which refuses a
        # descriptor past 1023 (ValueError on the second statement).
        hrtest.hold_descriptors(self, 1100)
        url = hrtest.PG_URL + " application_name=hrtest_fd"
        self.addCleanup(hrpg.forget, url)
        self.assertEqual([hrpg.query(url, "SELECT 1") for _ in range(2)], ["1\n"] * 2)

    def test_the_output_is_psqls(self):
        # Every result's rows (psql 15 prints them all), NULL empty, columns split by |.
        out = hrtest.pg_sql("SET lock_timeout = '1s'; SELECT 1, NULL, 'a b';"
                            " SELECT x FROM generate_series(2, 3) x; CREATE TEMP TABLE t (x int);"
                            " SELECT FROM generate_series(1, 2)")
        self.assertEqual(out, "1||a b\n2\n3\n")

    def test_a_failed_statement_raises_and_the_connection_goes_on(self):
        with self.assertRaisesRegex(hrpg.PgError, "division by zero"):
            hrtest.pg_sql("SELECT 1; SELECT 1 / 0")
        self.assertEqual(hrtest.pg_sql("SELECT 2"), "2\n")

    def test_a_connection_the_server_ended_is_replaced(self):
        # Ended from another backend, as DROP DATABASE WITH (FORCE) or a restart would:
        # the next statement runs on a new connection, and does not fail.
        before = hrtest.pg_sql("SELECT pg_backend_pid()").strip()
        subprocess.run([hrtest.PSQL, "-X", "-q", "-d", hrtest.PG_URL, "-c",
                        "SELECT pg_terminate_backend(%s, 5000)" % before],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
        after = hrtest.pg_sql("SELECT pg_backend_pid()").strip()
        self.assertNotEqual(after, before)
        self.assertNotEqual(after, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
