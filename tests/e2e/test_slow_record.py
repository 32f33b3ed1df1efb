# SPDX-License-Identifier: MIT
"""--record-timeout (issue #10, slow-record slowloris): a peer that trickles a record a byte at
a time, each byte refreshing the idle timer, is disconnected with reason timeout once the
record is still incomplete record-timeout seconds after its first byte; a whole record in
time is served. plain has lines, not records: a line must end within the timeout of its first
byte or of its last KiB, so a trickle is cut while a stream without newlines flows."""

import select
import time
import unittest

from cryptography.fernet import Fernet

import noise_peer
from harness import T, each_model, peer_of, recv_exact, tcp_connect

TRICKLE_GAP = 0.4  # seconds between bytes: well inside the idle timeout, never a whole record


def fernet_token_len(n):
    return (57 + 16 * (n // 16 + 1) + 2) // 3 * 4


def trickle_until_closed(sock, data, limit):
    """Sends data a byte every TRICKLE_GAP s until the server closes; returns the seconds from
    the first byte to the close, or None if it never closed within `limit` seconds."""
    start = time.monotonic()
    for i in range(len(data)):
        try:
            sock.sendall(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
        readable, _, _ = select.select([sock], [], [], TRICKLE_GAP)
        if readable:
            try:
                if sock.recv(4096) == b"":
                    return time.monotonic() - start
            except ConnectionResetError:
                return time.monotonic() - start
        if time.monotonic() - start > limit:
            return None
    return None


@each_model
class SlowRecord:
    def test_fernet_trickled_token_times_out(self):
        srv = self.start_server("-P", "lab-fernet", "--record-timeout", "1")
        sock = tcp_connect(self, srv.port)
        f = Fernet(recv_exact(sock, 44))
        token = f.encrypt(b"a record that never completes in time")
        self.assertGreater(len(token) * TRICKLE_GAP, T(10))  # it could not finish in time
        took = trickle_until_closed(sock, token, T(10))
        self.assertIsNotNone(took, "a trickled token was never cut off")
        self.assertGreaterEqual(took, 0.9)
        peer = peer_of(sock)
        srv.log.wait_for(event="timeout", what="record", peer=peer)
        srv.log.wait_for(event="disconnect", reason="timeout", peer=peer)
        # A whole token, sent at once, is still served.
        sock2 = tcp_connect(self, srv.port)
        f2 = Fernet(recv_exact(sock2, 44))
        sock2.sendall(f2.encrypt(b"in time"))
        self.assertEqual(f2.decrypt(recv_exact(sock2, fernet_token_len(7))), b"in time")

    def test_secure_trickled_record_times_out(self):
        # The slowloris: after the handshake, announce a 65535-byte record, then
        # trickle its body a byte at a time; every byte refreshes the idle timer, none
        # completes the record.
        srv = self.start_server("-P", "secure", "--record-timeout", "1", "--idle-timeout", "30")
        sock = tcp_connect(self, srv.port)
        priv, _ = noise_peer.new_static()
        s = noise_peer.connect(sock, noise_peer.SUITES[0], priv)
        s.send(b"whole")  # a record in time is served
        self.assertEqual(s.recv(), b"whole")
        took = trickle_until_closed(sock, b"\xff\xff" + bytes(64), T(10))
        self.assertIsNotNone(took, "a trickled record was never cut off")
        self.assertGreaterEqual(took, 0.9)
        peer = peer_of(sock)
        srv.log.wait_for(event="timeout", what="record", peer=peer)
        srv.log.wait_for(event="disconnect", reason="timeout", peer=peer)

    def test_plain_trickled_line_times_out(self):
        # A plain line trickled a byte at a time: every byte is echoed as it comes, yet the
        # line never ends, so it is cut at the record timeout like a record.
        srv = self.start_server("-P", "plain", "--record-timeout", "1", "--idle-timeout", "30")
        sock = tcp_connect(self, srv.port)
        sock.sendall(b"a whole line in time\n")
        self.assertEqual(recv_exact(sock, 21), b"a whole line in time\n")
        start, took = time.monotonic(), None
        while took is None and time.monotonic() - start < T(10):
            try:
                sock.sendall(b"x")
                echo = sock.recv(1)  # each byte comes back at once
            except (BrokenPipeError, ConnectionResetError):
                echo = b""
            if echo == b"":
                took = time.monotonic() - start
            time.sleep(TRICKLE_GAP)
        self.assertIsNotNone(took, "a trickled line was never cut off")
        self.assertGreaterEqual(took, 0.9)
        peer = peer_of(sock)
        srv.log.wait_for(event="timeout", what="record", peer=peer)
        srv.log.wait_for(event="disconnect", reason="timeout", peer=peer)

    def test_plain_stream_without_newlines_flows(self):
        # RFC 862: a stream that never has a newline is echoed for as long as it flows at a
        # real rate (a KiB and more per record timeout), well past the record timeout.
        srv = self.start_server("-P", "plain", "--record-timeout", "1")
        sock = tcp_connect(self, srv.port)
        chunk = b"y" * 2048
        start = time.monotonic()
        while time.monotonic() - start < 2.5:
            sock.sendall(chunk)
            self.assertEqual(recv_exact(sock, len(chunk)), chunk)
            time.sleep(TRICKLE_GAP)
        sock.sendall(b"\n")
        self.assertEqual(recv_exact(sock, 1), b"\n")
        self.assertIsNone(srv.log.find(event="timeout", peer=peer_of(sock)) or None)

if __name__ == "__main__":
    unittest.main()
