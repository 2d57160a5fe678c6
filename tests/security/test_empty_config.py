"""Issue 11 item 7: an empty or half-written configuration (docs/security.md, "### 7.").

An empty or comment-only file used to be a valid configuration without sources: a
reload took every /hooks endpoint off the air (404) and `hookrelay -t` called it ok.
Such a file is refused now, by a reload (the running configuration stays), by `-t`
and at start (exit 78).
"""

import os
import signal
import subprocess
import time
import unittest

import hrtest
from hrtest import DaemonTest

EX_CONFIG = 78

NO_SOURCE = [
    ("empty", ""),
    ("comments only", "# hookrelay.conf\n; being written by configuration management\n\n"),
    ("sections without a source", "[server]\nlisten = 127.0.0.1:0\n[storage]\npath = {db}\n"),
]


class EmptyConfigTest(DaemonTest):

    def write_config(self, text):
        with open(self.d.config_path, "w") as f:
            f.write(text.format(db=self.d.db))

    def refused_lines(self):
        return [l for l in self.d.log().splitlines() if "reload refused" in l]

    def test_a_reload_without_a_source_is_refused_and_the_sources_stay(self):
        self.assertEqual(self.d.post({"event": "before"})[0], 200)
        for name, text in NO_SOURCE:
            with self.subTest(name):
                before = len(self.refused_lines())
                self.write_config(text)
                self.d.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 20
                while len(self.refused_lines()) <= before:
                    self.assertLess(time.monotonic(), deadline, "no refusal:\n" + self.d.log())
                    time.sleep(0.02)
                line = self.refused_lines()[-1]
                self.assertIn(self.d.config_path, line)
                self.assertIn("no [source NAME] section", line)
                # Every source of the running configuration still answers.
                for source in ("default", "tavus", "pailflow"):
                    self.assertNotEqual(self.d.post({"event": "after"}, source)[0], 404, source)
                self.assertEqual(self.d.post({"event": "after"})[0], 200)

    def test_check_config_and_start_refuse_a_file_without_a_source(self):
        for name, text in NO_SOURCE:
            with self.subTest(name):
                path = os.path.join(self.d.dir, "nosource.conf")
                with open(path, "w") as f:
                    f.write(text.format(db=os.path.join(self.d.dir, "other.db")))
                r = subprocess.run([hrtest.BIN, "-t", "-c", path], capture_output=True, text=True,
                                   timeout=60)
                self.assertEqual(r.returncode, EX_CONFIG, (r.stdout, r.stderr))
                self.assertIn(path, r.stderr)
                self.assertIn("no [source NAME] section", r.stderr)
                self.assertNotIn("configuration ok", r.stdout)
                r = subprocess.run([hrtest.BIN, "-c", path, "--listen", "127.0.0.1:0"],
                                   capture_output=True, text=True, timeout=60)
                self.assertEqual(r.returncode, EX_CONFIG, (r.stdout, r.stderr))
                self.assertIn("no [source NAME] section", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
