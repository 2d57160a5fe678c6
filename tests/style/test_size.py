#!/usr/bin/env python3
"""tests/style/test_size.py - scripts/check-size holds for src/ and tools/, and it
finds what it is meant to find (a function of 61 lines, a file of 1,001)."""
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("HR_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check-size")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=60)


def function(name, body_lines):
    body = "".join("\tx += %d; /* { \" } */ s = \"}{\";\n" % i for i in range(body_lines))
    return f"static int\n{name}(int x)\n{{\n{body}\treturn x;\n}}\n"


class CheckSize(unittest.TestCase):
    def check(self, text):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "t.c")
            with open(path, "w") as f:
                f.write(text)
            return run(path)

    def test_the_tree_is_within_the_limits(self):
        r = run()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_a_function_of_61_lines_is_found(self):
        # 60 statements and the return: 61 lines between the braces.
        r = self.check(function("too_long", 60) + function("fine", 59))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("too_long() has 61 lines", r.stdout)
        self.assertNotIn("fine()", r.stdout)

    def test_60_lines_pass(self):
        r = self.check(function("just_fits", 59))
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_tables_and_braces_in_literals_are_not_functions(self):
        table = "static const int t[] = {\n" + "\t1,\n" * 80 + "};\n"
        r = self.check(table + "struct s {\n" + "\tint a;\n" * 70 + "};\n" +
                       function("quoted", 3))
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_a_file_of_1001_lines_is_found(self):
        r = self.check("/* x */\n" * 1001)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("1001 lines (at most 1000)", r.stdout)


if __name__ == "__main__":
    unittest.main()
