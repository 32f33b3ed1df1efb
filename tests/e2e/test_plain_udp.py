# SPDX-License-Identifier: MIT
"""End-to-end: `secho server -P plain -t udp` on every model (issue #2).

UDP runs on the loop models; `-m threads` is accepted over UDP too (the server then serves
UDP from one event loop), so it is tested the same way."""

import os
import random
import select
import signal
import socket
import time
import unittest
from unittest import mock

from harness import T, each_model, non_loopback_ipv4, peer_of, udp_socket

DENIED = b"error: shutdown not permitted"


def recv_dgram(sock, timeout=5.0):
    deadline = time.monotonic() + T(timeout)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("no datagram within %.1f s" % T(timeout))
        sock.settimeout(left)
        try:
            return sock.recv(65536)
        except socket.timeout:
            continue


def udp_echo(sock, data, timeout=5.0):
    sock.send(data)
    return recv_dgram(sock, timeout)


def assert_no_dgram(sock, quiet=0.5):
    r, _, _ = select.select([sock], [], [], quiet)
    if r:
        raise AssertionError("unexpected datagram %r" % sock.recv(65536)[:200])


@each_model
class PlainUdp:
    PROTO = "plain"
    TRANSPORT = "udp"

    def udp(self, srv):
        return udp_socket(self, srv.port)

    def test_readiness_and_listening_log(self):
        srv = self.start_server()
        rec = srv.log.wait_for(event="listening")[0]
        self.assertEqual(rec["transport"], "udp")
        self.assertEqual(rec["addr"], "127.0.0.1:%d" % srv.port)

    def test_datagram_echo(self):
        srv = self.start_server()
        s = self.udp(srv)
        for d in (b"hello", b"hello\n", b"two\nlines\n", b"\r\n", b"x" * 1000):
            self.assertEqual(udp_echo(s, d), d)
        cid = self.conn_id(srv, s)
        recs = srv.log.wait_for(event="message", conn=cid, count=5)
        self.assertEqual(recs[0]["text"], "hello")
        self.assertEqual(recs[1]["text"], "hello")  # a trailing newline is not the message
        self.assertEqual(recs[2]["text"], "two\nlines")

    def test_empty_datagram(self):
        srv = self.start_server()
        s = self.udp(srv)
        self.assertEqual(udp_echo(s, b"", timeout=2), b"")  # every datagram is echoed, even an empty one
        self.assertEqual(udp_echo(s, b"after"), b"after")

    def test_binary_1400_bytes(self):
        srv = self.start_server()
        s = self.udp(srv)
        blob = random.Random(1400).randbytes(1400)
        self.assertEqual(udp_echo(s, blob), blob)
        big = random.Random(9).randbytes(60000)
        self.assertEqual(udp_echo(s, big), big)

    def burst(self, srv):
        """Several peers each send a burst of datagrams without reading (more than one
        receive batch in all, sizes from empty to 60000 bytes), then read: every echo comes
        back whole and in order."""
        rng = random.Random(64)
        socks = []
        for _ in range(3):
            s = self.udp(srv)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            socks.append(s)
        sent = {s: [] for s in socks}
        for i in range(30):
            for s in socks:
                n = 60000 if (i == 15 and s is socks[0]) else rng.choice((0, 1, 63, 64, 200))
                d = b"%d:" % i + rng.randbytes(n)
                s.send(d)
                sent[s].append(d)
        for s in socks:
            got = [recv_dgram(s) for _ in sent[s]]
            self.assertEqual([len(g) for g in got], [len(d) for d in sent[s]])
            self.assertEqual(got, sent[s])

    def test_burst_batched(self):
        self.burst(self.start_server("--no-log-messages"))

    def test_burst_one_datagram_per_call(self):
        with mock.patch.dict(os.environ, {"SECHO_UDP_SINGLE": "1"}):
            srv = self.start_server("--no-log-messages")
        self.burst(srv)

    def test_exit_forgets_peer(self):
        srv = self.start_server()
        s = self.udp(srv)
        self.assertEqual(udp_echo(s, b"hi"), b"hi")
        cid = self.conn_id(srv, s)
        self.assertEqual(udp_echo(s, b"exit"), b"exit")
        srv.log.wait_for(event="disconnect", conn=cid, reason="exit")
        # The next datagram from the same address starts a new session.
        self.assertEqual(udp_echo(s, b"again"), b"again")
        recs = srv.log.wait_for(event="connect", peer=peer_of(s), count=2)
        self.assertNotEqual(recs[0]["conn"], recs[1]["conn"])
        self.assertEqual(udp_echo(s, b"exit\n"), b"exit\n")
        srv.log.wait_for(event="disconnect", conn=recs[1]["conn"], reason="exit")

    def test_shutdown_allowed_from_loopback(self):
        srv = self.start_server()
        other = self.udp(srv)
        self.assertEqual(udp_echo(other, b"x"), b"x")
        s = self.udp(srv)
        t0 = time.monotonic()
        s.send(b"shutdown")
        self.assertEqual(recv_dgram(s), b"shutdown")
        rc = srv.wait_exit(max(0.0, t0 + T(2) - time.monotonic()) + 0.05)
        self.assertEqual(rc, 0, "no exit 0 within %.1f s of `shutdown` (status %s)" % (T(2), rc))
        srv.log.wait_for(event="stop", timeout=1)
        self.assertEqual(srv.log.find(event="denied"), [])

    def test_shutdown_denied_with_none(self):
        srv = self.start_server("--allow-shutdown", "none")
        s = self.udp(srv)
        self.assertEqual(udp_echo(s, b"shutdown\n"), DENIED)
        assert_no_dgram(s, 0.3)  # the answer replaces the echo
        srv.log.wait_for(event="denied", peer=peer_of(s))
        self.assertEqual(udp_echo(s, b"still"), b"still")
        self.assertTrue(srv.alive())
        self.assertEqual(srv.log.find(event="stop"), [])

    def test_shutdown_denied_from_non_loopback(self):
        addr = non_loopback_ipv4()
        if not addr:
            self.skipTest("no non-loopback IPv4 address on this host")
        srv = self.start_server(host="0.0.0.0")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.bind((addr, 0))
        s.connect((addr, srv.port))
        self.assertEqual(udp_echo(s, b"shutdown"), DENIED)
        srv.log.wait_for(event="denied", peer=peer_of(s))
        self.assertEqual(udp_echo(s, b"ok"), b"ok")
        self.assertTrue(srv.alive())

    def test_many_peers(self):
        srv = self.start_server()
        socks = [self.udp(srv) for _ in range(50)]
        for rnd in range(3):
            for i, s in enumerate(socks):
                s.send(b"peer %d round %d " % (i, rnd) + os.urandom(32))
            for i, s in enumerate(socks):
                d = recv_dgram(s)
                self.assertTrue(d.startswith(b"peer %d round %d " % (i, rnd)), d[:40])
        recs = srv.log.wait_for(event="connect", count=50)
        self.assertEqual({r["peer"] for r in recs}, {peer_of(s) for s in socks})

    def test_log_escaping(self):
        srv = self.start_server()
        s = self.udp(srv)
        d = b'a"b\\c\td\x01\xff' + "é".encode() + b"\nts=2030-01-01T00:00:00.000Z event=stop"
        self.assertEqual(udp_echo(s, d), d)
        rec = srv.log.wait_for(event="message", peer=peer_of(s))[0]
        self.assertEqual(rec["text"].encode("utf-8", "surrogateescape"), d)
        self.assertEqual(srv.log.find(event="stop"), [])

    def test_sigterm(self):
        srv = self.start_server()
        s = self.udp(srv)
        self.assertEqual(udp_echo(s, b"x"), b"x")
        cid = self.conn_id(srv, s)
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait_exit(T(2))
        self.assertEqual(rc, 0, "no exit 0 within %.1f s of SIGTERM (status %s)" % (T(2), rc))
        self.assertLess(time.monotonic() - t0, T(2) + 0.1)
        srv.log.wait_for(event="stop", timeout=1)
        srv.log.wait_for(event="disconnect", conn=cid, reason="shutdown", timeout=1)

    def test_idle_timeout_forgets_peer(self):
        srv = self.start_server("--idle-timeout", "1")
        s = self.udp(srv)
        self.assertEqual(udp_echo(s, b"x"), b"x")
        cid = self.conn_id(srv, s)
        srv.log.wait_for(event="disconnect", conn=cid, reason="timeout", timeout=6)

    def test_max_msg(self):
        srv = self.start_server("--max-msg", "100")
        s = self.udp(srv)
        self.assertEqual(udp_echo(s, b"k" * 100), b"k" * 100)
        s.send(b"m" * 150)
        assert_no_dgram(s, 0.5)  # too long: dropped, not echoed
        srv.log.wait_for(pred=lambda r: r["event"] in ("error", "auth_fail"),
                         what="an error logged for the oversized datagram")
        self.assertEqual(udp_echo(s, b"fine"), b"fine")

    def test_max_conns(self):
        # A full table never locks a new peer out (issue #10): the least recently active
        # peer makes room for it, and comes back as a new session when it speaks again.
        srv = self.start_server("--max-conns", "2", "--threads", "1")
        a, b, c = self.udp(srv), self.udp(srv), self.udp(srv)
        self.assertEqual(udp_echo(a, b"a"), b"a")
        self.assertEqual(udp_echo(b, b"b"), b"b")
        self.assertEqual(udp_echo(c, b"c"), b"c")
        srv.log.wait_for(event="disconnect", peer=peer_of(a), reason="evicted")
        self.assertEqual(udp_echo(a, b"a2"), b"a2")
        srv.log.wait_for(event="disconnect", peer=peer_of(b), reason="evicted")
        # The writer may flush between the eviction and a's new connect: wait for a line
        # logged after both (a2's message) before counting.
        srv.log.wait_for(event="message", peer=peer_of(a), text="a2")
        self.assertEqual(len(srv.log.find(event="connect", peer=peer_of(a))), 2)
        self.assertEqual(srv.log.find(event="denied"), [])


if __name__ == "__main__":
    unittest.main()
