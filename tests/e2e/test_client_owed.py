# SPDX-License-Identifier: MIT
"""End-to-end: the client accounts for every echo it is owed (issue #8, SPEC "Client
behaviour"): a server that closes before delivering them, or never answers, makes the client
say how many never arrived and exit 1; a refused `shutdown` in plain TCP leaves every later
echo printed."""

import os
import pty
import select
import socket
import subprocess
import threading
import time

from harness import BIN, HOST, T, SechoTest, TempHome, run_client


class FakeServer:
    """A one-connection TCP server on 127.0.0.1 port 0 run by a thread: handler(sock) is
    called with the accepted socket, which is closed when it returns."""

    def __init__(self, tc, handler):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tc.addCleanup(self.lsock.close)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(4)
        self.lsock.settimeout(T(20))
        self.port = self.lsock.getsockname()[1]
        self.handler = handler
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        tc.addCleanup(self.thread.join, T(20))

    def _run(self):
        try:
            conn, _ = self.lsock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(T(20))
            try:
                self.handler(conn)
            except OSError:
                pass


def read_until(sock, marker):
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class Relay:
    """A TCP relay from 127.0.0.1 port 0 to a server; flip(index, data) may change each
    client-to-server frame of the secure TCP layout (2-byte big-endian length, then the
    bytes; frame 0 is the preamble, 1 and 2 the client's handshake messages)."""

    def __init__(self, tc, port, flip):
        self.inner = FakeServer(tc, self._relay)
        self.port = self.inner.port
        self.target = port
        self.flip = flip

    def _relay(self, client):
        up = socket.create_connection((HOST, self.target), timeout=T(20))
        with up:
            back = threading.Thread(target=self._back, args=(up, client), daemon=True)
            back.start()
            buf, index = b"", 0
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    up.shutdown(socket.SHUT_WR)
                    break
                buf += chunk
                while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                    n = 2 + int.from_bytes(buf[:2], "big")
                    frame, buf = buf[:n], buf[n:]
                    try:
                        up.sendall(self.flip(index, frame))
                    except OSError:
                        pass
                    index += 1
            back.join(T(20))

    @staticmethod
    def _back(up, client):
        try:
            while True:
                chunk = up.recv(65536)
                if not chunk:
                    break
                client.sendall(chunk)
        except OSError:
            pass
        try:
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class ClientOwedTest(SechoTest):
    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def test_plain_server_closes_before_last_echo(self):
        # The server reads everything up to `exit`, echoes only the first line and closes.
        def handler(sock):
            read_until(sock, b"exit\n")
            sock.sendall(b"short\n")

        fake = FakeServer(self, handler)
        cp = run_client(self.home, fake.port, "-P", "plain",
                        input=b"short\n0123456789ABCDEF\nexit\n")
        self.assertEqual(cp.stdout, b"short\n")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn(b"22 echo bytes never arrived: the server closed the connection",
                      cp.stderr)

    def test_plain_server_closes_at_end_of_input(self):
        def handler(sock):
            read_until(sock, b"b\n")
            sock.sendall(b"a\n")

        fake = FakeServer(self, handler)
        cp = run_client(self.home, fake.port, "-P", "plain", input=b"a\nb\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b"a\n"), cp.stderr)
        self.assertIn(b"2 echo bytes never arrived", cp.stderr)

    def test_plain_server_silent_past_timeout(self):
        # The server never answers and stays: --timeout passes, the client reports it.
        done = threading.Event()

        def handler(sock):
            read_until(sock, b"exit\n")
            done.wait(T(15))

        fake = FakeServer(self, handler)
        self.addCleanup(done.set)
        cp = run_client(self.home, fake.port, "-P", "plain", "--timeout", "0.5",
                        input=b"a\nexit\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"gave up waiting for 7 echo bytes after 0.5 s", cp.stderr)

    def test_secure_record_forged_in_transit(self):
        # The second message's record is changed on its way: the server closes (auth_fail)
        # and the client owes the echoes of it and of `exit`.
        srv = self.start_server(proto="secure")

        def flip(index, frame):
            if index == 4:
                return frame[:-1] + bytes([frame[-1] ^ 1])
            return frame

        relay = Relay(self, srv.port, flip)
        cp = run_client(self.home, relay.port, "--accept-new", input=b"one\ntwo\nexit\n")
        self.assertEqual(cp.stdout, b"one\n")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn(b"2 echoes never arrived: the server closed the connection", cp.stderr)
        srv.log.wait_for(event="disconnect", reason="error")

    def test_secure_all_echoes_through_relay(self):
        # The same relay without forging: exit 0 and nothing on stderr but the trust note.
        srv = self.start_server(proto="secure")
        relay = Relay(self, srv.port, lambda index, frame: frame)
        cp = run_client(self.home, relay.port, "--accept-new", input=b"one\ntwo\nexit\n")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertIn(cp.stdout, (b"one\ntwo\n", b"one\ntwo\nexit\n"))
        self.assertNotIn(b"never arrived", cp.stderr)

    def test_plain_refused_shutdown_keeps_every_echo(self):
        srv = self.start_server("--allow-shutdown", "none", proto="plain")
        cp = run_client(self.home, srv.port, "-P", "plain",
                        input=b"shutdown\na\nb\nexit\n")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout,
                         b"shutdown\nerror: shutdown not permitted\na\nb\nexit\n")
        self.assertEqual(cp.stderr, b"")
        srv.log.wait_for(event="denied")
        srv.log.wait_for(event="disconnect", reason="exit")

    def test_plain_accepted_shutdown_exits_0(self):
        srv = self.start_server("--allow-shutdown", "any", proto="plain")
        cp = run_client(self.home, srv.port, "-P", "plain", input=b"a\nshutdown\nnot sent\n")
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr), (0, b"a\nshutdown\n", b""))
        self.assertEqual(srv.wait_exit(T(3)), 0)
        self.assertEqual(srv.log.find(event="message", text="not sent"), [])


    def test_notice_starts_a_fresh_line_on_a_terminal(self):
        # The server closes while the prompt waits for input: the notice is on a line of
        # its own, not glued to the prompt.
        def handler(sock):
            time.sleep(0.5)

        fake = FakeServer(self, handler)
        master, slave = pty.openpty()
        p = subprocess.Popen([BIN, "client", "-P", "plain", "-H", HOST, "-p", str(fake.port)],
                             stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                             env=self.home.env())
        os.close(slave)
        self.addCleanup(os.close, master)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        seen = b""
        deadline = time.monotonic() + T(10)
        while b"closed by the server" not in seen and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
        self.assertEqual(p.wait(timeout=T(10)), 1, seen)
        self.assertIn(b"secho> ", seen)
        self.assertNotIn(b"secho> secho:", seen)
        self.assertRegex(seen, rb"secho> \r?\n+secho: [^\n]*connection closed by the server")


if __name__ == "__main__":
    import unittest
    unittest.main()
