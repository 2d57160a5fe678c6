"""A bench/ script as a module: they have no .py suffix, and the tests of tests/bench
read their tables and functions (bench/profile's STAGES, bench/drain's BACKLOGS)."""

import importlib.machinery
import importlib.util
import os
import sys

ROOT = os.environ.get("HR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def load(name):
    """bench/NAME, executed as the module hr_bench_NAME (benchlib importable)."""
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    loader = importlib.machinery.SourceFileLoader(
        "hr_bench_" + name, os.path.join(ROOT, "bench", name))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod
