"""bench/profile end to end (50 events, under callgrind), and the checks that make it fail
loudly: a stage function that is not found, two stages counting the same function, a
window that is not the dump it should be. Needs valgrind; skipped under the sanitizers
(valgrind cannot run an ASan binary)."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import benchscript

ROOT = os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
PROFILE = os.path.join(ROOT, "bench", "profile")
EVENTS = 50


def load_profile_module():
    """bench/profile as a module, for its analyse() and STAGES."""
    return benchscript.load("profile")


@unittest.skipIf(os.environ.get("HR_SANITIZE_BUILD") in ("1", "ON", "TRUE"),
                 "valgrind cannot run a sanitizer build")
@unittest.skipIf(shutil.which("valgrind") is None, "valgrind is not installed")
class ProfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hrtest-profile-")
        cls.json = os.path.join(cls.dir, "profile.json")
        cls.keep = os.path.join(cls.dir, "keep")
        cls.out = subprocess.run(
            [sys.executable, PROFILE, "--requests", str(EVENTS), "--warmup", "20",
             "--connections", "1", "4", "--details", "--keep", cls.keep, "--json", cls.json],
            capture_output=True, text=True, timeout=600)
        cls.doc = None
        if os.path.exists(cls.json):
            with open(cls.json) as f:
                cls.doc = json.load(f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def window(self, label):
        return os.path.join(self.keep, f"callgrind.{label}.out")

    def test_runs_and_every_stage_adds_up_to_callgrinds_total(self):
        self.assertEqual(self.out.returncode, 0, self.out.stdout + self.out.stderr)
        mod = load_profile_module()
        for r in self.doc["results"]:
            a = r["analysis"]
            self.assertEqual(r["run"]["events"], EVENTS)
            self.assertEqual(a["problems"], [])
            self.assertEqual(set(a["stages"]), {name for name, _, _ in mod.STAGES})
            for name, cost in a["stages"].items():
                self.assertGreater(cost, 0, f"{r['label']}: stage {name}")
            self.assertAlmostEqual(sum(a["stages"].values()) + a["unattributed"], a["total"],
                                   delta=1e-6 * a["total"])
            self.assertGreaterEqual(a["unattributed"], 0)
            self.assertLess(a["unattributed"], 0.03 * a["total"])
            # An event costs hundreds of thousands of instructions; far less means the
            # window missed the events (triggers in the wrong place).
            self.assertGreater(a["total"], 100000, r["label"])
        one = self.doc["results"][0]
        self.assertEqual(one["connections"], 1)
        # One connection: every event waits for its own commit.
        self.assertAlmostEqual(one["run"]["jobs"] / one["run"]["commits"], 1.0, delta=0.2)
        self.assertIn("instructions/event", self.out.stdout)
        self.assertIn("json_loadb", self.out.stdout)
        # the heading names the bodies that were sent (it said 1014 B for --body-size too)
        self.assertIn(f"transcription_ready {os.path.getsize(mod.b.TRANSCRIPTION_READY)} B,",
                      self.out.stdout)

    def test_the_heading_names_the_body_size_asked_for(self):
        mod = load_profile_module()
        self.assertEqual(mod.body_label(1 << 20), "1 MiB")
        self.assertEqual(mod.body_label(64 << 10), "64 KiB")

    def test_total_is_callgrinds_totals_line(self):
        mod = load_profile_module()
        path = self.window("1conn")
        with open(path) as f:
            totals = [int(l.split()[1]) for l in f if l.startswith("totals:")]
        a = mod.analyse(path, EVENTS)
        self.assertEqual(len(totals), 1)
        self.assertAlmostEqual(a["total"], totals[0] / EVENTS)

    def test_a_function_not_found_fails_loudly(self):
        mod = load_profile_module()
        mod.STAGES = [(n, w, ["no_such_function" if t == "classify_and_decode" else t
                              for t in terms]) for n, w, terms in mod.STAGES]
        a = mod.analyse(self.window("1conn"), EVENTS)
        self.assertTrue(any("no_such_function not found" in p for p in a["problems"]),
                        a["problems"])

    def test_a_function_counted_twice_fails(self):
        mod = load_profile_module()
        mod.STAGES = mod.STAGES + [("again", "parse counted twice", ["hr_event_parse"])]
        a = mod.analyse(self.window("1conn"), EVENTS)
        self.assertTrue(any("more than the total" in p for p in a["problems"]), a["problems"])

    def test_a_stage_that_loses_a_function_fails_as_unattributed(self):
        mod = load_profile_module()
        mod.STAGES = [s for s in mod.STAGES if s[0] != "insert"]
        err = io.StringIO()
        argv = sys.argv
        sys.argv = ["profile", "--analyse", self.window("1conn"), "--events", str(EVENTS)]
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                rc = mod.main()
        finally:
            sys.argv = argv
        self.assertEqual(rc, 1, err.getvalue())
        self.assertIn("are in no stage", err.getvalue())

    def test_a_window_that_is_not_the_metrics_dump_is_refused(self):
        mod = load_profile_module()
        path = os.path.join(self.dir, "other.out")
        with open(self.window("1conn")) as src, open(path, "w") as dst:
            for line in src:
                dst.write(line.replace("--dump-before=get_metrics", "Program termination"))
        a = mod.analyse(path, EVENTS)
        self.assertTrue(any("is not the dump of get_metrics" in p for p in a["problems"]),
                        a["problems"])


if __name__ == "__main__":
    unittest.main()
