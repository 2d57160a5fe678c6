#!/usr/bin/env python3
"""tests/style/test_scripts.py - scripts/test tests whatever configured its build
directories before: the README's order is scripts/run (which configures `build` without
tests, -DBUILD_TESTING=OFF, kept in CMake's cache) then scripts/test, whose plain run once
found no test in `build`, and ctest, finding none, passed.

Each build directory scripts/test configures is configured here the way scripts/run left
it, then with the arguments scripts/test gives it (configure only, no build): ctest must
list the suite, and every ctest call of the script must refuse to find no test.

And the suite's Python tests start the interpreter itself, and its PostgreSQL tests
psql itself (their commands and environments in the build directory, where ctest runs
this file)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

SRC = os.environ.get("HR_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
SCRIPT = os.path.join(SRC, "scripts", "test")


def configure(build, args):
    subprocess.run(["cmake", "-S", SRC, "-B", build] + args, check=True, timeout=120,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def ctest_lines(prefix):
    """The lines of the build directory's CTestTestfile.cmake files (cwd: the build
    directory) that start with `prefix`. Read, not asked of ctest: ctest run from here
    would write over the running suite's Testing/Temporary/LastTest.log."""
    for top, _, files in os.walk("."):
        if "CTestTestfile.cmake" in files:
            with open(os.path.join(top, "CTestTestfile.cmake")) as f:
                yield from (line for line in f if line.startswith(prefix))


class ScriptsTest(unittest.TestCase):

    def setUp(self):
        with open(SCRIPT) as f:
            self.text = f.read()

    def test_every_ctest_call_fails_without_tests(self):
        calls = re.findall(r"^[^#\n]*\bctest -[^\n]*", self.text, re.M)
        self.assertGreaterEqual(len(calls), 3, calls)
        for call in calls:
            self.assertIn("--no-tests=error", call)

    def test_a_build_configured_without_tests_gets_its_tests(self):
        builds = re.findall(r"^\s*hr_build (build[-\w]*) (.*)$", self.text, re.M)
        self.assertEqual(sorted(b for b, _ in builds), ["build", "build-asan", "build-valgrind"])
        plain = dict(builds)["build"].replace("$werror", "OFF").split()
        work = tempfile.mkdtemp(prefix="hrtest-scripts-")
        try:
            configure(work, ["-DBUILD_TESTING=OFF"])  # what scripts/run leaves
            configure(work, plain)
            out = subprocess.run(["ctest", "-N"], cwd=work, capture_output=True, text=True,
                                 timeout=60, check=True).stdout
            total = int(re.search(r"Total Tests: (\d+)", out).group(1))
            self.assertGreater(total, 50, out[-500:])
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def test_python_tests_start_the_interpreter_not_a_launcher(self):
        """A version manager's launcher first on PATH (a pyenv shim runs a dozen shell
        scripts, then Python) took 0.3 s of processor time per test, a minute of the
        suite's: each Python test's command names the interpreter itself. The commands
        are read from the build directory's CTestTestfile.cmake files (ctest, run from
        here, would write over the running suite's Testing/Temporary/LastTest.log)."""
        commands = [re.findall(r'"((?:[^"\\]|\\.)*)"', line)
                    for line in ctest_lines("add_test(")]
        pythons = {c[0] for c in commands if c and any(a.endswith(".py") for a in c[1:])}
        if not pythons:
            self.skipTest("run from a build directory (ctest runs it there)")
        for python in sorted(pythons):
            started = subprocess.run([python, "-c", "import sys; print(sys.executable)"],
                                     capture_output=True, text=True, timeout=60, check=True)
            self.assertEqual(started.stdout.strip(), python)

    def test_postgresql_tests_call_psql_itself_not_a_wrapper(self):
        """Debian's /usr/bin/psql and pg_dump are pg_wrapper, a Perl script that costs
        ~47 ms of processor time per call before psql starts; the PostgreSQL tests once
        called psql ~600 times a run (20 s of processor time; their statements go through
        libpq now, hrpg, but sessions and dumps are psql and pg_dump). Their environment names the
        server's own binaries, which must be programs, not scripts."""
        tools = set()
        for line in ctest_lines("set_tests_properties("):
            env = re.search(r'ENVIRONMENT "([^"]*)"', line)
            if env and "HR_TEST_BACKEND=postgresql" in env.group(1):
                names = dict(v.split("=", 1) for v in env.group(1).split(";") if "=" in v)
                self.assertIn("HR_TEST_PSQL", names, line[:120])
                self.assertIn("HR_TEST_PG_DUMP", names, line[:120])
                tools |= {names["HR_TEST_PSQL"], names["HR_TEST_PG_DUMP"]}
        if not tools:
            self.skipTest("run from a build directory with the PostgreSQL tests")
        for tool in sorted(tools):
            with open(tool, "rb") as f:
                self.assertEqual(f.read(4), b"\x7fELF", tool + " is not a program")


if __name__ == "__main__":
    unittest.main()
