# SPDX-License-Identifier: MIT
"""End-to-end: trusting a secure server as an ssh user expects (issue #8, SPEC "Trust
rules"): the first-contact question takes yes/y/no/n in any case, an added key is announced
with ssh's "Permanently added" line, a changed key names its file and the command that
removes it, and the identity key made on first use is announced once."""

import base64
import fcntl
import os
import pty
import select
import subprocess
import termios
import time

from harness import BIN, HOST, T, SechoTest, TempHome, run_client


def b64(raw):
    return base64.b64encode(raw)


def controlling_tty():
    """preexec_fn: a new session whose controlling terminal is stdin (the pty)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class ClientTrustTest(SechoTest):
    PROTO = "secure"

    def setUp(self):
        self.srv = self.start_server()
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)
        self.hostport = "%s:%d" % (HOST, self.srv.port)
        self.known = self.home.file("secho", "known_hosts")

    def test_accept_new_announces_key_and_identity_once(self):
        cp = run_client(self.home, self.srv.port, "--accept-new", input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"hi\n"), cp.stderr)
        added = (b"Warning: Permanently added '%s' (%s) to the list of known hosts (%s).\n"
                 % (self.hostport.encode(), b64(self.srv.public_key()), self.known.encode()))
        self.assertIn(added, cp.stderr)
        self.assertEqual(cp.stderr.count(b"created a new identity key in "), 1, cp.stderr)
        self.assertIn(self.home.file("secho", "id.key").encode(), cp.stderr)
        # Known now, the key exists: nothing is said the second time.
        cp = run_client(self.home, self.srv.port, "--accept-new", input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr), (0, b"hi\n", b""))

    def test_changed_key_names_file_and_removal(self):
        os.makedirs(os.path.dirname(self.known), mode=0o700, exist_ok=True)
        with open(self.known, "w") as f:
            f.write("# a comment\nother:1 %s\n%s %s\n"
                    % (b64(b"\x02" * 32).decode(), self.hostport, b64(b"\x01" * 32).decode()))
        os.chmod(self.known, 0o600)
        cp = run_client(self.home, self.srv.port, "--accept-new", input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"HAS CHANGED", cp.stderr)
        self.assertIn(b"%s:3 lists " % self.known.encode(), cp.stderr)
        self.assertIn(b"secho keygen -R %s --known-hosts %s"
                      % (self.hostport.encode(), self.known.encode()), cp.stderr)

    def ask(self, answers, delay=0.0, srv=None, then=b"exit\n", after=b""):
        """Runs the client on a pty, types each of answers after each question (delay s
        later), and `then` at the first prompt that follows `after`; returns (status,
        everything the terminal showed until it exited)."""
        master, slave = pty.openpty()
        srv = srv or self.srv
        p = subprocess.Popen([BIN, "client", "-p", str(srv.port)], stdin=slave,
                             stdout=slave, stderr=slave, preexec_fn=controlling_tty,
                             env=self.home.env())
        os.close(slave)
        self.addCleanup(os.close, master)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        seen = b""
        deadline = time.monotonic() + T(10)
        pending = list(answers)
        asked = 0
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                seen += chunk
            if seen.count(b"(yes/no)") > asked and pending:
                asked += 1
                time.sleep(delay)
                os.write(master, pending.pop(0) + b"\n")
            at = seen.find(after)
            if then and at >= 0 and b"secho> " in seen[at:]:
                os.write(master, then)
                then = b""
        rc = p.wait(timeout=T(10))
        return rc, seen

    def test_prompt_takes_capital_y(self):
        rc, seen = self.ask([b"maybe", b"Y"])
        self.assertEqual(rc, 0, seen)
        self.assertIn(b"Please type 'yes' or 'no'.", seen)
        self.assertIn(b"Permanently added '%s'" % self.hostport.encode(), seen)
        with open(self.known) as f:
            self.assertIn(self.hostport, f.read())

    def test_prompt_takes_n(self):
        rc, seen = self.ask([b"n"])
        self.assertEqual(rc, 1, seen)
        self.assertIn(b"not accepted", seen)
        self.assertFalse(os.path.exists(self.known) and os.path.getsize(self.known) > 0)


    def test_server_gave_up_while_asking_then_connects_again(self):
        # The server's handshake timeout passes while the question is open: after yes the
        # client says what happened and connects again, trusting the key now.
        srv = self.start_server("--handshake-timeout", "1")
        rc, seen = self.ask([b"yes"], delay=T(2.5), srv=srv, then=b"hi\nexit\n",
                            after=b"connecting again")
        self.assertEqual(rc, 0, seen)
        self.assertIn(b"gave up on the handshake while the question was open", seen)
        self.assertNotIn(b"closed by the server", seen)
        self.assertEqual(seen.count(b"(yes/no)"), 1, seen)
        # The terminal shows the typed line once and its echo once more.
        self.assertGreaterEqual(seen[seen.find(b"connecting again"):].count(b"hi\r\n"), 2,
                                seen)


if __name__ == "__main__":
    import unittest
    unittest.main()
