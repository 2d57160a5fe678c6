"""bench/forward's reading of the forwarder's poll counters: CPU per poll from the two
per-destination counters of /metrics, and no figure (NaN) when a run made no poll."""

import math
import unittest

import benchscript


class PollCostTest(unittest.TestCase):
    def setUp(self):
        self.forward = benchscript.load("forward")

    def test_cpu_per_poll_comes_from_the_sinks_counters(self):
        metrics = {
            'hookrelay_forwarder_polls_total{destination="sink"}': 400.0,
            'hookrelay_forwarder_poll_cpu_seconds_total{destination="sink"}': 0.02,
            'hookrelay_forwarder_polls_total{destination="other"}': 1.0,
        }
        cost = self.forward.poll_cost(metrics)
        self.assertEqual(cost["polls"], 400.0)
        self.assertAlmostEqual(cost["poll_us"], 50.0)

    def test_no_poll_gives_no_figure(self):
        cost = self.forward.poll_cost({})
        self.assertEqual(cost["polls"], 0)
        self.assertTrue(math.isnan(cost["poll_us"]))


if __name__ == "__main__":
    unittest.main()
