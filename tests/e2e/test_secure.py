# SPDX-License-Identifier: MIT
"""secure over TCP, the negative side: tampered, truncated, oversized and garbage input,
stalled handshakes, client trust rules, admin-only shutdown and key files. Each bad
connection is closed (and logged) while the server goes on serving everyone else."""

import base64
import os
import socket
import stat
import struct
import subprocess
import threading
import time
import unittest

from cryptography.exceptions import InvalidTag

import noise_peer
from noise_peer import flip
from harness import BIN, SCALE, T, SechoTest, TempHome, deadline, each_model, run_client

NAME = "Noise_XX_25519_AESGCM_SHA256"


def wait_closed(sock, seconds=5):
    """Reads until the peer closes; returns True on EOF or reset, False on the deadline."""
    end = deadline(seconds)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


def good_exchange(testcase, port, msgs=(b"still serving",)):
    sock = noise_peer.make_socket(port, timeout=10 * SCALE)
    s = noise_peer.connect(sock, NAME)
    for m in msgs:
        s.send(m)
        testcase.assertEqual(s.recv(), m)
    s.close()


@each_model
class Tamper:
    """A flipped bit anywhere kills just that connection; the server logs auth_fail."""

    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def _tampered(self, srv, stage, bit, other):
        def tamper(st, data):
            return flip(data, bit) if st == stage else data

        sock = noise_peer.make_socket(srv.port, timeout=10 * SCALE)
        try:
            if stage == "m1":
                # Message 1 (e) carries no tag; the server cannot notice, but its message 2
                # is bound to the altered transcript, so the initiator rejects it.
                with self.assertRaises(InvalidTag):
                    noise_peer.connect(sock, NAME, tamper=tamper)
                sock.close()
                return False
            s = noise_peer.connect(sock, NAME, tamper=tamper)
            if stage == "rec":
                s.send(b"a record with a flipped bit")
            self.assertTrue(wait_closed(sock), "server kept a tampered connection open")
            return True
        finally:
            sock.close()
            # The connection opened before the bad one is still served.
            other.send(b"other %s %d" % (stage.encode(), bit))
            self.assertEqual(other.recv(), b"other %s %d" % (stage.encode(), bit))

    def test_flipped_bits(self):
        srv = self.start_server("--threads", "2", home=self.home)
        osock = noise_peer.make_socket(srv.port, timeout=10 * SCALE)
        other = noise_peer.connect(osock, NAME)
        expected = 0
        # First, middle and last bit of message 3 and of a record (the tag end),
        # plus bits of message 1 (caught by the client).
        for stage, bits in (
            ("m1", (0, 130, 255)),
            ("m3", (0, 300, 511)),
            ("rec", (0, 100, -1)),
        ):
            for bit in bits:
                with self.subTest(stage=stage, bit=bit):
                    if self._tampered(srv, stage, bit, other):
                        expected += 1
                        evs = srv.log.wait_for(event="auth_fail", count=expected)
                        self.assertEqual(evs[-1]["level"], "warn")
                        self.assertEqual(evs[-1]["error"], "authentication failed")
        good_exchange(self, srv.port)
        other.close()
        # No tampered record was ever accepted as a message.
        texts = [e.get("text", "") for e in srv.log.find(event="message")]
        self.assertNotIn("a record with a flipped bit", texts)


class TamperTowardClient(SechoTest):
    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def test_flipped_bit_toward_client(self):
        """The secho client rejects a tampered message 2 or record and exits 1."""
        priv, pub = noise_peer.new_static()
        for stage in ("m2", "rec"):
            with self.subTest(stage=stage):
                lsock = socket.socket()
                lsock.bind(("127.0.0.1", 0))
                lsock.listen(1)
                lsock.settimeout(20 * SCALE)
                port = lsock.getsockname()[1]

                def serve():
                    try:
                        conn, _ = lsock.accept()
                    except OSError:
                        return
                    conn.settimeout(20 * SCALE)
                    try:
                        s = noise_peer.accept(
                            conn, priv, lambda st, d: flip(d, 77) if st == stage else d
                        )
                        s.send(s.recv())
                        wait_closed(conn, 20)
                    except Exception:
                        pass  # the client hung up on the tampered message
                    finally:
                        conn.close()

                t = threading.Thread(target=serve)
                t.start()
                cp = run_client(
                    self.home,
                    port,
                    "--server-key",
                    base64.b64encode(pub).decode(),
                    input=b"hello\nexit\n",
                )
                t.join(30 * SCALE)
                lsock.close()
                self.assertFalse(t.is_alive())
                self.assertEqual(cp.returncode, 1, cp)
                self.assertIn(b"authentication failed", cp.stderr)
                self.assertEqual(cp.stdout, b"")


class BadInput(SechoTest):
    @classmethod
    def setUpClass(cls):
        cls.home = TempHome()
        cls.addClassCleanup(cls.home.cleanup)
        cls.srv = cls.start_class_server("--handshake-timeout", "1", "--max-msg", "1000",
                                         home=cls.home)

    def setUp(self):
        self.srv.log.settle()
        self.sock = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10 * SCALE)
        self.addCleanup(self.sock.close)
        self.n_auth = len(self.srv.log.find(event="auth_fail"))

    def _closed_with(self, event, detail=None):
        self.assertTrue(wait_closed(self.sock), "connection left open")
        evs = self.srv.log.wait_for(event=event,
                                    count=1 + (self.n_auth if event == "auth_fail" else 0))
        if detail:
            self.assertIn(detail, evs[-1].get("detail", ""))
        good_exchange(self, self.srv.port)
        return evs[-1]

    def test_garbage_instead_of_preamble(self):
        self.sock.sendall(os.urandom(16) + b"\xff\xff" + os.urandom(200))
        ev = self._closed_with("auth_fail")
        self.assertEqual(ev["level"], "warn")

    def test_http_instead_of_preamble(self):
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self._closed_with("auth_fail", "preamble length")

    def test_unknown_protocol_name(self):
        self.sock.sendall(noise_peer.preamble("Noise_XX_25519_AESGCM_SHA512") + b"\0" * 34)
        self._closed_with("auth_fail", "Noise_XX_25519_AESGCM_SHA512")

    def test_oversized_handshake_length(self):
        self.sock.sendall(noise_peer.preamble(NAME) + b"\xff\xff" + b"\0" * 100)
        self._closed_with("auth_fail", "handshake message 1 has length 65535")

    def test_oversized_record_length(self):
        s = noise_peer.connect(self.sock, NAME)
        # --max-msg 1000: a record header announcing 1017 bytes of ciphertext is refused
        # before its body is read.
        s.wire.send(struct.pack(">H", 1000 + 16 + 1) + b"\0" * 10)
        self.assertTrue(wait_closed(self.sock))
        ev = self.srv.log.wait_for(lambda e: "exceeds the limit" in e.get("detail", ""),
                                   event="error")[-1]
        self.assertEqual(ev["error"], "message too long")
        good_exchange(self, self.srv.port)

    def test_short_record(self):
        s = noise_peer.connect(self.sock, NAME)
        s.wire.send_frame(b"\0" * 15)  # shorter than a tag
        self._closed_with("auth_fail", "shorter than a tag")

    def test_truncated_frame_then_close(self):
        s = noise_peer.connect(self.sock, NAME)
        rec = s.send_cs.encrypt(b"", b"truncated message")
        s.wire.send(struct.pack(">H", len(rec)) + rec[:10])
        self.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(wait_closed(self.sock))
        peer = "127.0.0.1:%d" % self.sock.getsockname()[1]
        ev = self.srv.log.wait_for(lambda e: e.get("peer") == peer, event="disconnect")[-1]
        self.assertIn(ev["reason"], ("eof", "error"))
        self.assertNotIn("truncated message", self.srv.log.text())
        good_exchange(self, self.srv.port)

    def test_truncated_handshake_then_close(self):
        self.sock.sendall(noise_peer.preamble(NAME) + b"\x00\x20" + b"\1" * 7)
        self.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(wait_closed(self.sock))
        good_exchange(self, self.srv.port)

    def test_stalled_handshake_times_out(self):
        t0 = time.monotonic()
        self.sock.sendall(noise_peer.preamble(NAME))
        self.assertTrue(wait_closed(self.sock, 5), "stalled handshake not closed")
        self.assertGreater(time.monotonic() - t0, 0.8)
        peer = "127.0.0.1:%d" % self.sock.getsockname()[1]
        ev = self.srv.log.wait_for(lambda e: e.get("peer") == peer, event="disconnect")[-1]
        self.assertEqual(ev["reason"], "timeout")
        good_exchange(self, self.srv.port)


class Trust(SechoTest):
    """Client trust rules end to end (SPEC "Client options")."""

    @classmethod
    def setUpClass(cls):
        cls.home = TempHome()
        cls.addClassCleanup(cls.home.cleanup)
        cls.srv = cls.start_class_server(home=cls.home)
        cls.pub = base64.b64encode(cls.srv.public_key()).decode()

    def setUp(self):
        self.srv.log.settle()
        # Each test gets its own client home (id.key, known_hosts).
        self.chome = TempHome()
        self.addCleanup(self.chome.cleanup)
        self.kh = self.chome.file("secho", "known_hosts")

    def _client(self, *args, input=b"secret line\nexit\n"):
        return run_client(self.chome, self.srv.port, *args, input=input)

    def _refused_line(self):
        # A text no other test sends: the log is written asynchronously, so an earlier
        # test's lines may land after a count taken here.
        return ("refused %s" % self.id()).encode()

    def _no_message_since(self, n_before):
        msgs = self.srv.log.find(event="message")
        text = self._refused_line().decode()
        self.assertFalse([m for m in msgs if m.get("text") == text], msgs[n_before:])

    def test_server_logs_its_public_key(self):
        ev = self.srv.log.wait_for(event="identity")[0]
        self.assertEqual(ev.get("key"), self.pub)
        self.assertEqual(ev.get("proto"), "secure")

    def test_unknown_key_refused_when_piped(self):
        n = len(self.srv.log.find(event="message"))
        cp = self._client(input=self._refused_line() + b"\nexit\n")
        self.assertEqual(cp.returncode, 1)
        self.assertIn(b"unknown server key " + self.pub.encode(), cp.stderr)
        self.assertIn(b"--accept-new", cp.stderr)
        self.assertEqual(cp.stdout, b"")
        self.assertFalse(os.path.exists(self.kh))
        # The refusal came after message 2; the handshake never completed on the server.
        self.srv.log.wait_for(event="disconnect", count=1)
        self._no_message_since(n)

    def test_accept_new_records_known_hosts(self):
        cp = self._client("--accept-new")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, b"secret line\nexit\n")
        with open(self.kh) as f:
            lines = [l.split() for l in f if l.strip() and not l.startswith("#")]
        self.assertIn(["127.0.0.1:%d" % self.srv.port, self.pub], lines)
        # Now known: works without --accept-new.
        cp = self._client()
        self.assertEqual(cp.returncode, 0, cp.stderr)

    def test_changed_key_refused_even_with_accept_new(self):
        _, other = noise_peer.new_static()
        os.makedirs(os.path.dirname(self.kh), exist_ok=True)
        with open(self.kh, "w") as f:
            f.write("127.0.0.1:%d %s\n" % (self.srv.port, base64.b64encode(other).decode()))
        n = len(self.srv.log.find(event="message"))
        cp = self._client("--accept-new", input=self._refused_line() + b"\nexit\n")
        self.assertEqual(cp.returncode, 1)
        self.assertIn(b"HAS CHANGED", cp.stderr)
        self.assertIn(self.pub.encode(), cp.stderr)
        self.assertEqual(cp.stdout, b"")
        self._no_message_since(n)

    def test_pin_wins(self):
        # A wrong pin is refused even with --accept-new...
        _, other = noise_peer.new_static()
        n = len(self.srv.log.find(event="message"))
        cp = self._client("--accept-new", "--server-key", base64.b64encode(other).decode(),
                          input=self._refused_line() + b"\nexit\n")
        self.assertEqual(cp.returncode, 1)
        self.assertIn(b"mismatch", cp.stderr)
        self._no_message_since(n)
        # ...and the right pin wins over a known_hosts line that disagrees.
        os.makedirs(os.path.dirname(self.kh), exist_ok=True)
        with open(self.kh, "w") as f:
            f.write("127.0.0.1:%d %s\n" % (self.srv.port, base64.b64encode(other).decode()))
        cp = self._client("--server-key", self.pub)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, b"secret line\nexit\n")

    def test_bad_pin_is_a_usage_problem(self):
        cp = self._client("--server-key", "not-a-key")
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn(b"--server-key", cp.stderr)


@each_model
class Admins:
    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)
        self.admin_key = self.home.file("admin.key")
        out = subprocess.run(
            [BIN, "keygen", "-o", self.admin_key], capture_output=True, check=True
        ).stdout
        self.admin_pub = out.split()[-1].decode()
        self.admins = self.home.file("admins")
        with open(self.admins, "w") as f:
            f.write("# operators\n%s\n" % self.admin_pub)

    def test_non_admin_denied_then_admin_shuts_down(self):
        srv = self.start_server("--admins", self.admins, home=self.home)
        pin = base64.b64encode(srv.public_key()).decode()
        cp = run_client(
            self.home, srv.port, "--server-key", pin, input=b"shutdown\nafter\nexit\n"
        )
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, b"error: shutdown not permitted\nafter\nexit\n")
        srv.log.wait_for(event="denied")
        self.assertIsNone(srv.proc.poll())
        cp = run_client(
            self.home,
            srv.port,
            "--server-key",
            pin,
            "-k",
            self.admin_key,
            input=b"shutdown\n",
        )
        t0 = time.monotonic()
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, b"shutdown\n")
        self.assertEqual(srv.wait_exit(T(2)), 0)
        self.assertLess(time.monotonic() - t0, 2 * SCALE)
        srv.log.wait_for(event="stop")


class KeyFiles(SechoTest):
    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def test_server_key_created_0600_and_too_open_refused(self):
        srv = self.start_server(home=self.home)
        mode = stat.S_IMODE(os.stat(srv.key_path).st_mode)
        self.assertEqual(mode, 0o600)
        pub = srv.public_key()
        # The client's id.key too.
        cp = run_client(
            self.home, srv.port, "--server-key", base64.b64encode(pub).decode(), input=b"exit\n"
        )
        self.assertEqual(cp.returncode, 0, cp.stderr)
        srv.stop()
        id_key = self.home.file("secho", "id.key")
        self.assertEqual(stat.S_IMODE(os.stat(id_key).st_mode), 0o600)
        os.chmod(srv.key_path, 0o644)
        proc = subprocess.run(
            [BIN, "server", "-p", "0"],
            capture_output=True,
            env=self.home.env(),
            timeout=10 * SCALE,
        )
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"chmod 600", proc.stderr)
        self.assertNotIn(b"listening", proc.stdout)

    def test_keygen_openssl_pubout(self):
        path = self.home.file("k.pem")
        out = subprocess.run([BIN, "keygen", "-o", path], capture_output=True, check=True)
        printed = base64.b64decode(out.stdout.split()[-1])
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        der = subprocess.run(
            ["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
            capture_output=True,
            check=True,
        ).stdout
        self.assertEqual(der[-32:], printed)
        pem = subprocess.run(
            ["openssl", "pkey", "-in", path, "-pubout"], capture_output=True, check=True
        ).stdout
        self.assertTrue(pem.startswith(b"-----BEGIN PUBLIC KEY-----"))


if __name__ == "__main__":
    unittest.main()
