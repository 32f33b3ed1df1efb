# SPDX-License-Identifier: MIT
"""The notebook peers against each other (Python <-> Python), so that a failure in the
secho interop tests points at secho, not at the peers. Needs no secho binary."""
import subprocess
import sys
import unittest

from harness import PEERS, SechoTest

LINES = ["hello", "Привет, мир!", "x" * 700, "exit"]


def run_client(program, port, lines, *extra):
    return subprocess.run(PEERS + [program, "-p", port, "--lifetime", "20", *extra],
                          input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=30)


class NotebookPeers(SechoTest):
    def server(self, program):
        # These tests check what the peers print, as they always did: a server that ends by
        # itself (the UDP one does on `exit`) is no failure here.
        return self.start_peer_server(program, lifetime=30, may_exit=True)

    def check(self, server, client, *client_extra):
        srv = self.server(server)
        r = run_client(client, str(srv.port), LINES, *client_extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), LINES)

    def test_dh(self):
        # The notebook server sends its two PEMs back to back: read them robustly.
        self.check("dh-server", "dh-client", "--mode", "robust")

    def test_fernet_tcp(self):
        self.check("fernet-server", "fernet-client")

    def test_fernet_udp(self):
        self.check("fernet-udp-server", "fernet-udp-client")

    def test_fernet_tcp_wrong_key(self):
        # A token under another key: the notebook server logs the error and closes.
        srv = self.server("fernet-server")
        code = ("import socket,sys\n"
                "from cryptography.fernet import Fernet\n"
                "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=5)\n"
                "s.recv(1024)\n"
                "s.sendall(Fernet(Fernet.generate_key()).encrypt(b'x'))\n"
                "print(repr(s.recv(1024)))\n")
        r = subprocess.run([sys.executable, "-c", code, str(srv.port)], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.stdout.strip(), "b''", r.stderr)


if __name__ == "__main__":
    unittest.main()
