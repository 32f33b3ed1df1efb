#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The layering check itself: it passes a clean stack and fails an upward call and a cycle,
on real objects built here with the C compiler."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_layers  # noqa: E402

CC = os.environ.get("CC") or shutil.which("cc") or "gcc"


def archive(tmp, name, files):
    objs = []
    for fname, text in files.items():
        src = os.path.join(tmp, fname)
        with open(src, "w") as f:
            f.write(text)
        obj = src[:-2] + ".o"
        subprocess.run([CC, "-c", "-o", obj, src], check=True)
        objs.append(obj)
    path = os.path.join(tmp, f"lib{name}.a")
    subprocess.run(["ar", "rcs", path] + objs, check=True)
    return path


class LayeringCheck(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def stack(self, low_extra=""):
        low = archive(self.tmp, "low", {
            "low_a.c": "int low_b(void);\n" + low_extra + "int low_a(void) { return low_b(); }\n",
            "low_b.c": "int low_b(void) { return 1; }\n",
        })
        high = archive(self.tmp, "high", {
            "high_a.c": "int low_a(void);\nint high_a(void) { return low_a() + 1; }\n",
        })
        return [("low", low), ("high", high)]

    def test_clean_stack_passes(self):
        self.assertEqual(check_layers.check("nm", self.stack()), [])

    def test_upward_call_fails(self):
        problems = check_layers.check(
            "nm", self.stack("int high_a(void);\nint up(void) { return high_a(); }\n"))
        self.assertTrue(any(p.startswith("upward reference: low/low_a.o uses high_a")
                            for p in problems), problems)

    def test_cycle_between_files_fails(self):
        low = archive(self.tmp, "low", {
            "x.c": "int y(int);\nint x(void) { return y(0); }\n",
            "y.c": "int x(void);\nint y(int n) { return n ? x() : 1; }\n",
        })
        problems = check_layers.check("nm", [("low", low)])
        self.assertIn("cycle between files: low/x.o <-> low/y.o", problems)

    def test_libc_is_outside(self):
        low = archive(self.tmp, "low", {"p.c": "#include <string.h>\n"
                                         "size_t p(const char *s) { return strlen(s); }\n"})
        self.assertEqual(check_layers.check("nm", [("low", low)]), [])


if __name__ == "__main__":
    unittest.main()
