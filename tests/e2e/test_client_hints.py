# SPDX-License-Identifier: MIT
"""End-to-end: a client talking the wrong protocol gets a hint, not a riddle (issue #8): a
secure client whose handshake comes back byte for byte from a plain server suggests
`-P plain`; a lab-dh client that gets no PEM key in time says the server is not lab-dh."""

from harness import SechoTest, TempHome, run_client


class ClientHintTest(SechoTest):
    PROTO = "plain"

    def setUp(self):
        self.srv = self.start_server()
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def test_secure_against_plain_suggests_plain(self):
        cp = run_client(self.home, self.srv.port, "--accept-new", "--timeout", "2",
                        input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"sent our secure handshake back byte for byte", cp.stderr)
        self.assertIn(b"try -P plain", cp.stderr)

    def test_lab_dh_against_plain_says_not_lab_dh(self):
        cp = run_client(self.home, self.srv.port, "-P", "lab-dh", "--timeout", "0.5",
                        input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"the server is not speaking lab-dh", cp.stderr)


if __name__ == "__main__":
    import unittest
    unittest.main()
