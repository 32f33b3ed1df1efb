# SPDX-License-Identifier: MIT
"""End-to-end: installing (issue #11). `cmake --install` (what `make install` runs) puts the
binary, the man page and the systemd units under PREFIX (within DESTDIR for packagers), with
a manifest; `make uninstall` removes exactly what it lists, so a DESTDIR that was empty is
empty again and whatever was there before stays. The installed units name the installed
binary and pass `systemd-analyze verify` and `systemd-analyze security --offline=true` with
an exposure of at most 1.0 (SAFE)."""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import BIN, T

BUILD = os.path.dirname(BIN)
SOURCE = os.environ.get("SECHO_SOURCE") or os.path.join(os.path.dirname(__file__), "..", "..")
CMAKE = shutil.which("cmake")
MAKE = shutil.which("make")
ANALYZE = shutil.which("systemd-analyze")
UNITS = ("secho.service", "secho.socket", "secho-metrics.socket")


def tree(root):
    """Every path under root, relative, directories with a trailing '/'."""
    out = set()
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        for name in dirs:
            out.add(os.path.normpath(os.path.join(rel, name)) + "/")
        for name in files:
            out.add(os.path.normpath(os.path.join(rel, name)))
    return out


class Install(unittest.TestCase):
    def setUp(self):
        if not CMAKE or not os.path.exists(os.path.join(BUILD, "cmake_install.cmake")):
            self.skipTest("no cmake, or %s is not a CMake build directory" % BUILD)
        self.dest = tempfile.mkdtemp(prefix="secho-e2e-destdir-")
        self.addCleanup(shutil.rmtree, self.dest, True)

    def run_ok(self, cmd, env=None):
        e = dict(os.environ)
        e.update(env or {})
        out = subprocess.run(cmd, capture_output=True, env=e, timeout=T(120))
        self.assertEqual(out.returncode, 0, "%r:\n%s%s" % (cmd, out.stdout.decode(),
                                                           out.stderr.decode()))
        return out

    def install(self, prefix, destdir=""):
        return self.run_ok([CMAKE, "--install", BUILD, "--prefix", prefix],
                           env={"DESTDIR": destdir})

    def uninstall(self, prefix, destdir=""):
        # The Makefile's target (it runs cmake -P cmake/uninstall.cmake and builds nothing).
        if MAKE:
            return self.run_ok([MAKE, "-s", "-C", SOURCE, "uninstall", "PREFIX=" + prefix,
                                "DESTDIR=" + destdir])
        return self.run_ok([CMAKE, "-DPREFIX=" + prefix, "-P",
                            os.path.join(SOURCE, "cmake", "uninstall.cmake")],
                           env={"DESTDIR": destdir})

    def test_destdir_install_and_uninstall_leaves_it_empty(self):
        self.install("/usr", self.dest)
        files = {p for p in tree(self.dest) if not p.endswith("/")}
        self.assertEqual(files, {
            "usr/bin/secho", "usr/share/man/man1/secho.1",
            "usr/lib/systemd/system/secho.service", "usr/lib/systemd/system/secho.socket",
            "usr/lib/systemd/system/secho-metrics.socket",
            "usr/share/secho/install_manifest.txt"})
        binary = os.path.join(self.dest, "usr/bin/secho")
        self.assertTrue(os.stat(binary).st_mode & stat.S_IXUSR)
        out = subprocess.run([binary, "--version"], capture_output=True, timeout=T(10))
        self.assertEqual(out.returncode, 0)
        with open(os.path.join(self.dest, "usr/lib/systemd/system/secho.service")) as f:
            unit = f.read()
        # ExecStart= names the binary where it will be, without DESTDIR.
        self.assertRegex(unit, r"(?m)^ExecStart=/usr/bin/secho server ")
        self.assertNotIn("@SECHO_BINDIR@", unit)
        self.assertNotIn(self.dest, unit)
        with open(os.path.join(self.dest, "usr/share/secho/install_manifest.txt")) as f:
            manifest = f.read().split()
        self.assertIn("/usr/bin/secho", manifest)
        self.assertIn("/usr/lib/systemd/system/", manifest)  # a directory it created
        self.assertFalse(any(self.dest in m for m in manifest))
        # Installing again changes nothing (and keeps the directories to remove).
        self.install("/usr", self.dest)
        with open(os.path.join(self.dest, "usr/share/secho/install_manifest.txt")) as f:
            self.assertEqual(sorted(f.read().split()), sorted(manifest))
        self.uninstall("/usr", self.dest)
        self.assertEqual(os.listdir(self.dest), [])

    def test_uninstall_keeps_what_was_there_before(self):
        for d in ("opt/x/bin", "opt/x/share/man/man1"):
            os.makedirs(os.path.join(self.dest, d))
        for f in ("opt/x/bin/other", "opt/x/share/man/man1/other.1"):
            with open(os.path.join(self.dest, f), "w") as fh:
                fh.write("not secho's\n")
        before = tree(self.dest)
        self.install("/opt/x", self.dest)
        self.assertIn("opt/x/bin/secho", tree(self.dest))
        self.uninstall("/opt/x", self.dest)
        self.assertEqual(tree(self.dest), before)

    def test_uninstall_without_an_install_fails(self):
        out = subprocess.run([CMAKE, "-DPREFIX=/nowhere", "-P",
                              os.path.join(SOURCE, "cmake", "uninstall.cmake")],
                             capture_output=True, env=dict(os.environ, DESTDIR=self.dest),
                             timeout=T(60))
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(b"No manifest", out.stderr)
        self.assertEqual(os.listdir(self.dest), [])


class Units(unittest.TestCase):
    """The installed units, checked by systemd itself (no running systemd needed)."""

    @classmethod
    def setUpClass(cls):
        if not ANALYZE or not CMAKE or not os.path.exists(os.path.join(BUILD,
                                                                       "cmake_install.cmake")):
            raise unittest.SkipTest("needs systemd-analyze (Debian: systemd) and cmake")
        cls.prefix = tempfile.mkdtemp(prefix="secho-e2e-prefix-")
        out = subprocess.run([CMAKE, "--install", BUILD, "--prefix", cls.prefix],
                             capture_output=True, env=dict(os.environ, DESTDIR=""),
                             timeout=T(120))
        if out.returncode != 0:
            shutil.rmtree(cls.prefix, True)
            raise AssertionError(out.stderr.decode())
        cls.unitdir = os.path.join(cls.prefix, "lib", "systemd", "system")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prefix, True)

    def analyze(self, *args):
        return subprocess.run([ANALYZE] + list(args), capture_output=True, text=True,
                              cwd=self.unitdir, timeout=T(60))

    def test_verify(self):
        out = self.analyze("verify", "--man=no", *["./" + u for u in UNITS])
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stderr.strip(), "", out.stderr)

    def test_security_exposure(self):
        out = self.analyze("security", "--offline=true", "--threshold=10", "./secho.service")
        m = re.search(r"Overall exposure level for secho\.service: (\d+\.\d+) (\w+)", out.stdout)
        self.assertTrue(m, out.stdout + out.stderr)
        score, level = float(m.group(1)), m.group(2)
        self.assertLessEqual(score, 1.0, out.stdout)
        self.assertIn(level, ("PERFECT", "SAFE"), out.stdout)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # The settings the sandbox rests on, as systemd reads them.
        for setting in ("DynamicUser=", "ProtectSystem=", "PrivateNetwork=", "NoNewPrivileges=",
                        "SystemCallFilter=~@privileged", "RestrictNamespaces=~user",
                        "MemoryDenyWriteExecute="):
            line = [l for l in out.stdout.splitlines() if setting in l]
            self.assertTrue(line and line[0].lstrip().startswith("✓"), (setting, line))


if __name__ == "__main__":
    unittest.main()
