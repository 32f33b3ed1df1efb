#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The hardening check itself: it passes a small C program built with every hardening flag and,
for each flag left out, fails naming exactly that feature, on programs built here with the C
compiler."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_hardening  # noqa: E402

CC = os.environ.get("CC") or shutil.which("cc") or "gcc"

# A local array (stack protector) and a copy of unknown length into it (FORTIFY: __strcpy_chk).
PROGRAM = """#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    char b[16];
    strcpy(b, argc > 1 ? argv[1] : "x");
    printf("%s\\n", b);
    return 0;
}
"""

HARD = {
    "pie": (["-fPIE"], ["-pie"]),
    "ssp": (["-fstack-protector-strong"], []),
    "fortify": (["-O2", "-D_FORTIFY_SOURCE=2"], []),
    "cet": (["-fcf-protection"], []),
    "relro": ([], ["-Wl,-z,relro"]),
    "now": ([], ["-Wl,-z,now"]),
}
# What each flag is replaced by when left out, so the compiler's defaults do not supply it.
SOFT = {
    "pie": (["-fno-PIE"], ["-no-pie"]),
    "ssp": (["-fno-stack-protector"], []),
    "fortify": (["-O2", "-U_FORTIFY_SOURCE"], []),
    "cet": (["-fcf-protection=none"], []),
    "relro": ([], ["-Wl,-z,norelro"]),
    "now": ([], ["-Wl,-z,lazy"]),
}


def is_x86_64():
    proc = subprocess.run([CC, "-dumpmachine"], capture_output=True, text=True, check=True)
    return proc.stdout.startswith("x86_64")


class HardeningCheck(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.src = os.path.join(self.tmp, "p.c")
        with open(self.src, "w") as f:
            f.write(PROGRAM)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def build(self, without=()):
        """Compiles and links the program with every flag but those in without; returns the
        program's path and its object's path."""
        cflags, ldflags = [], []
        for name in HARD:
            c, ld = (SOFT if name in without else HARD)[name]
            cflags += c
            ldflags += ld
        tag = "-".join(sorted(without)) or "all"
        obj = os.path.join(self.tmp, f"p-{tag}.o")
        exe = os.path.join(self.tmp, f"p-{tag}")
        subprocess.run([CC] + cflags + ["-c", "-o", obj, self.src], check=True)
        subprocess.run([CC] + ldflags + ["-o", exe, obj], check=True)
        return exe, obj

    def check(self, without=()):
        exe, obj = self.build(without)
        return check_hardening.check(exe, [obj], cc=CC)

    def test_fully_hardened_passes(self):
        self.assertEqual(self.check(), [])

    def test_each_missing_flag_is_named(self):
        expect = {
            "pie": "PIE:",
            "ssp": "stack protector:",
            "fortify": "FORTIFY:",
            "relro": "RELRO:",
            "now": "BIND_NOW:",
        }
        if is_x86_64():
            expect["cet"] = "CET:"
        for name, prefix in expect.items():
            with self.subTest(without=name):
                problems = self.check([name])
                self.assertTrue(problems, f"no problem found without {name}")
                self.assertTrue(all(p.startswith(prefix) for p in problems),
                                f"without {name}: {problems}")

    def test_unhardened_program_fails_on_everything(self):
        problems = self.check(list(HARD))
        for prefix in ("PIE:", "RELRO:", "BIND_NOW:", "stack protector:", "FORTIFY:"):
            self.assertTrue(any(p.startswith(prefix) for p in problems), (prefix, problems))
        if is_x86_64():
            self.assertTrue(any(p.startswith("CET:") for p in problems), problems)

    def test_main_exit_status_and_message(self):
        exe, obj = self.build(["ssp"])
        proc = subprocess.run([sys.executable, os.path.join(HERE, "check_hardening.py"),
                               "--cc", CC, exe, obj], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("missing stack protector: no __stack_chk_fail", proc.stdout)
        exe, obj = self.build()
        proc = subprocess.run([sys.executable, os.path.join(HERE, "check_hardening.py"),
                               "--cc", CC, exe, obj], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


if __name__ == "__main__":
    unittest.main()
