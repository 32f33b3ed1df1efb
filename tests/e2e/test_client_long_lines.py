# SPDX-License-Identifier: MIT
"""secho client: a line longer than one record goes out as several records and its echo
comes back as one line (SPEC: each line is one message, each echo one line)."""
import os
import random
import unittest

from harness import SechoTest, TempHome, run_client


class LongLines(SechoTest):
    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def _roundtrip(self, proto, length, *server_args):
        rnd = random.Random(length)
        alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
        long_line = "".join(rnd.choice(alphabet) for _ in range(length))
        text = (long_line + "\nshort\n" + long_line[: length // 3] + "\nexit\n").encode()
        srv = self.start_server("-P", proto, "-m", "epoll", *server_args, home=self.home)
        args = ["-P", proto] + (["--accept-new"] if proto == "secure" else [])
        cp = run_client(self.home, srv.port, *args, input=text)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, text)

    def test_secure_line_over_65519_bytes(self):
        self._roundtrip("secure", 200000)

    def test_lab_dh_line_over_1024_bytes(self):
        self._roundtrip("lab-dh", 3000)

    def test_lab_fernet_line_over_703_bytes(self):
        self._roundtrip("lab-fernet", 2000)

    # Each paced record holds one of the engine's few pause marks, so a line of more records
    # than those goes out in parts (it used to fail with "No buffer space available").
    def test_lab_fernet_line_of_many_records(self):
        self._roundtrip("lab-fernet", 50000)

    def test_lab_dh_line_of_many_records(self):
        self._roundtrip("lab-dh", 60000)


if __name__ == "__main__":
    unittest.main()
