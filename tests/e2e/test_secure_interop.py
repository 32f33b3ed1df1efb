# SPDX-License-Identifier: MIT
"""secho/1 over TCP against an independent Noise XX implementation (noise_peer.py), both
ways, for all four suites and on every I/O model. The peer is first proven against the
published vectors, so the interop cannot pass with the same bug on both sides."""

import base64
import socket
import threading
import unittest

import noise_peer
from harness import SCALE, SechoTest, TempHome, each_model, run_client, vectors_dir

MESSAGES = [
    b"hello",
    "héllo wörld — ✓ 日本語 🙂".encode(),
    b"",
    bytes(range(256)),
    b"x" * 65519,  # the largest plaintext one record carries
    b"the end",
]


@each_model
class PythonClientToSechoServer:
    @classmethod
    def setUpClass(cls):
        # Prove the independent peer first (8 vectors: 4 suites x 2 files).
        n = noise_peer.check_vectors(vectors_dir())
        assert n == 8, n

    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def _exchange(self, server, name):
        priv, pub = noise_peer.new_static()
        sock = noise_peer.make_socket(server.port, timeout=10 * SCALE)
        s = noise_peer.connect(sock, name, priv)
        try:
            self.assertEqual(s.remote_static, server.public_key())
            for m in MESSAGES:
                s.send(m)
                self.assertEqual(s.recv(), m)
            s.send(b"exit")
            self.assertEqual(s.recv(), b"exit")
            # The server then closes the connection.
            self.assertEqual(sock.recv(1), b"")
            wire = bytes(s.wire.seen)
        finally:
            s.close()
        # The plaintext never crosses the wire.
        for m in MESSAGES + [b"exit"]:
            if len(m) >= 4:
                self.assertNotIn(m, wire)
        return pub

    def test_all_suites(self):
        srv = self.start_server("--threads", "2", home=self.home)
        for name in noise_peer.SUITES:
            with self.subTest(suite=name):
                pub = self._exchange(srv, name)
                key = base64.b64encode(pub).decode()
                srv.log.wait_for(lambda e, k=key: e.get("peer_key") == k, event="handshake")
        srv.log.wait_for(lambda e: e.get("reason") == "exit", event="disconnect", count=4)
        self.assertEqual(srv.log.find(event="auth_fail"), [])


class SechoClientToPythonServer(SechoTest):
    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(4)
        self.lsock.settimeout(20 * SCALE)
        self.addCleanup(self.lsock.close)
        self.port = self.lsock.getsockname()[1]
        self.priv, self.pub = noise_peer.new_static()

    def _serve_one(self, result):
        try:
            conn, _ = self.lsock.accept()
            conn.settimeout(20 * SCALE)
            s = noise_peer.accept(conn, self.priv)
            result["name"] = s.name
            result["client_static"] = s.remote_static
            got = []
            while True:
                try:
                    m = s.recv()
                except EOFError:
                    break
                got.append(m)
                s.send(m)
                if m == b"exit":
                    break
            result["got"] = got
            result["wire"] = bytes(s.wire.seen)
            s.close()
        except Exception as e:  # reported by the test thread
            result["error"] = repr(e)

    def test_all_suites(self):
        lines = ["hello", "héllo wörld — ✓ 日本語 🙂", "y" * 65519, "z" * 70000, "exit"]
        stdin = ("\n".join(lines) + "\n").encode()
        for name in noise_peer.SUITES:
            with self.subTest(suite=name):
                result = {}
                t = threading.Thread(target=self._serve_one, args=(result,))
                t.start()
                cp = run_client(
                    self.home,
                    self.port,
                    "-P",
                    "secure",
                    "--noise-name",
                    name,
                    "--server-key",
                    base64.b64encode(self.pub).decode(),
                    input=stdin,
                )
                t.join(30 * SCALE)
                self.assertFalse(t.is_alive())
                self.assertNotIn("error", result)
                self.assertEqual(cp.returncode, 0, cp.stderr)
                self.assertEqual(result["name"], name)
                # The 70000-byte line travels as two records (65519 + 4481).
                want = [l.encode() for l in lines[:3]] + [b"z" * 65519, b"z" * 4481, b"exit"]
                self.assertEqual(result["got"], want)
                out = cp.stdout.decode().split("\n")
                self.assertEqual(out[:3], lines[:3])
                # The two records' echoes are printed back as the one line that was typed.
                self.assertEqual(out[3:6], ["z" * 70000, "exit", ""])
                for m in want:
                    if len(m) >= 4:
                        self.assertNotIn(m, result["wire"])
                # The client's static key is its id.key, created on first use.
                self.assertEqual(len(result["client_static"]), 32)

    def test_default_suite_is_aesgcm_sha256(self):
        result = {}
        t = threading.Thread(target=self._serve_one, args=(result,))
        t.start()
        cp = run_client(
            self.home,
            self.port,
            "--server-key",
            base64.b64encode(self.pub).decode(),
            input=b"exit\n",
        )
        t.join(30 * SCALE)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(result.get("name"), "Noise_XX_25519_AESGCM_SHA256")


if __name__ == "__main__":
    unittest.main()
