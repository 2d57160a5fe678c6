#!/usr/bin/env python3
"""tests/style/test_layers.py - the includes of src/, include/hr/ and tools/ point only
down the layers of scripts/check-layers (docs/hacking.md), and the check finds an
include that points up or sideways, a file the table does not know or outside its
layer's folder, and a foreign
library's header outside the module that owns it."""
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.environ.get("HR_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check-layers")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          timeout=60)


class CheckLayers(unittest.TestCase):
    def tree(self, files):
        """A throwaway tree of {path: text}; check-layers' result on it."""
        with tempfile.TemporaryDirectory() as d:
            for path, text in files.items():
                os.makedirs(os.path.dirname(os.path.join(d, path)), exist_ok=True)
                with open(os.path.join(d, path), "w") as f:
                    f.write(text)
            return run("--root", d)

    def test_the_tree_points_only_down(self):
        r = run()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_down_and_within_a_module_pass(self):
        r = self.tree({"include/hr/store.h": '#include "hr/common.h"\n',
                       "src/store/writer.c": '#include "hr/store.h"\n#include "store_int.h"\n',
                       "src/store/store_int.h": '#include "hr/log.h"\n',
                       "src/handlers/api.c": '#include "hr/store.h"\n#include <jansson.h>\n'})
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_an_include_that_points_up_fails(self):
        r = self.tree({"src/base/timefmt.c": '#include "hr/timefmt.h"\n#include "hr/event.h"\n'})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('src/base/timefmt.c:2: "hr/event.h" points up', r.stdout)

    def test_sideways_fails_unless_allowed(self):
        r = self.tree({"src/flow/forward.c": '#include "hr/ingest.h"\n',
                       "src/flow/ingest.c": '#include "hr/outbox.h"\n'})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('"hr/ingest.h" points sideways: forward', r.stdout)
        self.assertNotIn("src/flow/ingest.c", r.stdout)  # ingest -> outbox is allowed

    def test_the_store_front_may_not_include_its_engine(self):
        r = self.tree({"src/store/store.c": '#include "hr/store_sqlite.h"\n',
                       "src/store/sqlite.c": '#include "hr/store_ops.h"\n'})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("store (store) may not include sqlite (store)", r.stdout)
        self.assertNotIn("src/store/sqlite.c", r.stdout)

    def test_a_file_the_table_does_not_know_fails(self):
        r = self.tree({"src/newthing.c": '#include "hr/common.h"\n'})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("src/newthing.c: in no module", r.stdout)

    def test_a_source_outside_its_layers_folder_fails(self):
        r = self.tree({"src/model/log.c": '#include "hr/log.h"\n',
                       "src/base/timefmt.c": '#include "hr/timefmt.h"\n',
                       "src/main.c": '#include "hr/http.h"\n'})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("src/model/log.c: log is in the base layer: it belongs in src/base/",
                      r.stdout)
        self.assertNotIn("timefmt", r.stdout)
        self.assertNotIn("main.c", r.stdout)

    def test_foreign_headers_stay_with_their_owners(self):
        r = self.tree({"src/handlers/api_stream.c": "#include <microhttpd.h>\n",
                       "src/store/writer.c": "#include <sqlite3.h>\n",
                       "src/http/http.c": "#include <microhttpd.h>\n"})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("src/handlers/api_stream.c:1: <microhttpd.h> belongs to http only", r.stdout)
        self.assertIn("src/store/writer.c:1: <sqlite3.h> belongs to migrate, sqlite only", r.stdout)
        self.assertNotIn("src/http/http.c", r.stdout)

    def test_tools_may_use_base_code_only(self):
        r = self.tree({"tools/hookctl.c": '#include "hr/dynbuf.h"\n#include "hr/store.h"\n'})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertNotIn("dynbuf", r.stdout)
        self.assertIn('"hr/store.h" points outside base/common', r.stdout)


if __name__ == "__main__":
    unittest.main()
