# SPDX-License-Identifier: MIT
"""End-to-end: a known_hosts or --admins file that others may write is refused, as ssh's
StrictModes does (issue #10, SPEC "Trust rules"): the server exits 1 at start naming the
file, the client exits 1 before sending anything."""

import os
import subprocess

from harness import BIN, HOST, T, SechoTest, TempHome, run_client


class StrictModesTest(SechoTest):
    PROTO = "secure"

    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)
        self.admin_key = self.home.file("admin.key")
        out = subprocess.run([BIN, "keygen", "-o", self.admin_key], capture_output=True,
                             check=True).stdout
        self.admins = self.home.file("admins")
        with open(self.admins, "w") as f:
            f.write("%s\n" % out.split()[-1].decode())

    def test_server_refuses_admins_file_others_may_write(self):
        os.chmod(self.admins, 0o666)
        cp = subprocess.run([BIN, "server", "-P", "secure", "-H", HOST, "-p", "0",
                             "--admins", self.admins], stdin=subprocess.DEVNULL,
                            capture_output=True, env=self.home.env(), timeout=T(10))
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertEqual(cp.stdout, b"")
        self.assertIn(self.admins.encode(), cp.stderr)
        self.assertIn(b"chmod go-w", cp.stderr)
        # The same file, no longer writable by others, is taken.
        os.chmod(self.admins, 0o644)
        self.start_server("--admins", self.admins, home=self.home)

    def test_client_refuses_known_hosts_others_may_write(self):
        srv = self.start_server()
        known = self.home.file("secho", "known_hosts")
        cp = run_client(self.home, srv.port, "--accept-new", input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"hi\n"), cp.stderr)
        os.chmod(known, 0o666)
        cp = run_client(self.home, srv.port, "--accept-new", input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(known.encode(), cp.stderr)
        self.assertIn(b"chmod go-w", cp.stderr)
        srv.log.wait_for(event="connect")
        self.assertFalse(srv.log.find(event="recv"), srv.log.tail_text())
        os.chmod(known, 0o600)
        cp = run_client(self.home, srv.port, "--accept-new", input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr), (0, b"hi\n", b""))


if __name__ == "__main__":
    import unittest

    unittest.main()
