"""bench/benchlib.py's reading of wrk's output: the figures bench/ingest tabulates, and
the stall check (req/s times the mean latency against the connections), which marks a
server that left requests unanswered instead of reporting its req/s as a ceiling."""

import os
import sys
import tempfile
import unittest

ROOT = os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import benchlib as b  # noqa: E402


def wrk_output(rps, mean_us, requests):
    """What wrk prints with wrk_post_script()'s done() lines (its own lines abridged)."""
    return (f"Running 5s test @ http://127.0.0.1:1/hooks/default\n"
            f"  {requests} requests in 5.00s, 1.00MB read\n"
            f"Requests/sec: {rps:10.2f}\nTransfer/sec:      1.00MB\n"
            f"LAT 2500 5650 7500 0\nMEAN {mean_us}\nREQ {requests} 0 0\n")


class ParseWrkTest(unittest.TestCase):
    def test_a_closed_loop_keeps_every_connection_busy(self):
        # 64 connections, 23,611 req/s at a mean of 2.7 ms: 64 requests in the server.
        r = b.parse_wrk(wrk_output(23611.0, 2710, 118055), 64)
        self.assertEqual((r["rps"], r["p50_ms"], r["p99_ms"], r["requests"]),
                         (23611.0, 2.5, 5.65, 118055))
        self.assertAlmostEqual(r["busy"], 63.99, places=1)
        self.assertFalse(b.stalled(r, 64))

    def test_requests_left_unanswered_are_a_stall(self):
        # libmicrohttpd's epoll loop with 256 connections: 28 req/s, each answered request
        # fast (1.8 ms), the others waiting: 0.05 connections busy on average.
        r = b.parse_wrk(wrk_output(28.31, 1810, 113), 256)
        self.assertLess(r["busy"], 1)
        self.assertTrue(b.stalled(r, 256))

    def test_an_output_without_the_mean_is_not_called_a_stall(self):
        out = wrk_output(1000.0, 1, 5000).replace("MEAN 1\n", "")
        r = b.parse_wrk(out, 64)
        self.assertNotIn("busy", r)
        self.assertFalse(b.stalled(r, 64))

    def test_the_script_prints_the_mean_latency(self):
        with tempfile.TemporaryDirectory() as d:
            with open(b.wrk_post_script(os.path.join(d, "body.json"), d)) as f:
                lua = f.read()
        self.assertIn('string.format("MEAN %d\\n", latency.mean)', lua)


if __name__ == "__main__":
    unittest.main()
