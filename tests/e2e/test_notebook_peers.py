# SPDX-License-Identifier: MIT
"""The notebook peers against each other (Python <-> Python), so that a failure in the
secho interop tests points at secho, not at the peers. Needs no secho binary."""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = [sys.executable, os.path.join(HERE, "notebook_peers.py")]
LINES = ["hello", "Привет, мир!", "x" * 700, "exit"]


class Server:
    def __init__(self, program, *extra):
        self.proc = subprocess.Popen(PEERS + [program, "-p", "0", "--lifetime", "30", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.close()
            raise RuntimeError(f"{program} did not start: {line!r}")
        self.port = line.rsplit(":", 1)[1].strip()

    def close(self):
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()


def run_client(program, port, lines, *extra):
    return subprocess.run(PEERS + [program, "-p", port, "--lifetime", "20", *extra],
                          input="\n".join(lines) + "\n", capture_output=True, text=True,
                          timeout=30)


class NotebookPeers(unittest.TestCase):
    def check(self, server, client, *client_extra):
        srv = Server(server)
        try:
            r = run_client(client, srv.port, LINES, *client_extra)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.splitlines(), LINES)
        finally:
            srv.close()

    def test_dh(self):
        # The notebook server sends its two PEMs back to back: read them robustly.
        self.check("dh-server", "dh-client", "--mode", "robust")

    def test_fernet_tcp(self):
        self.check("fernet-server", "fernet-client")

    def test_fernet_udp(self):
        self.check("fernet-udp-server", "fernet-udp-client")

    def test_fernet_tcp_wrong_key(self):
        # A token under another key: the notebook server logs the error and closes.
        srv = Server("fernet-server")
        try:
            code = ("import socket,sys\n"
                    "from cryptography.fernet import Fernet\n"
                    "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=5)\n"
                    "s.recv(1024)\n"
                    "s.sendall(Fernet(Fernet.generate_key()).encrypt(b'x'))\n"
                    "print(repr(s.recv(1024)))\n")
            r = subprocess.run([sys.executable, "-c", code, srv.port], capture_output=True,
                               text=True, timeout=20)
            self.assertEqual(r.stdout.strip(), "b''", r.stderr)
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main()
