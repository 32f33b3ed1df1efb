# SPDX-License-Identifier: MIT
"""End-to-end: SIGTERM with thousands of idle connections (issue #10), on every model.

2,000 idle connections (secure: each with its Noise handshake done by the independent
initiator of noise_peer.py; plain: bare TCP) that never answer the server's FIN. SIGTERM
must end the server with status 0 and `event=stop conns=0`, after a `disconnect
reason=shutdown` line for every connection, and every connection must see the server's
orderly close (EOF, not a reset). The time is printed, and asserted only against a bound
looser than SPEC's 2 s (the machine is shared); bench/shutdown_time.py measures it at 6,000
and 15,000 connections."""

import resource
import select
import signal
import socket
import struct
import time
import unittest

import noise_peer
from harness import T, deadline, each_model

COUNT = 2000
NAME = "Noise_XX_25519_AESGCM_SHA256"
BATCH = 200  # handshakes in flight at once


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need and hard >= need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= need


def open_secure(tc, port, n):
    s_priv, _ = noise_peer.new_static()
    pre = noise_peer.preamble(NAME)
    socks = []
    while len(socks) < n:
        batch = []
        for _ in range(min(BATCH, n - len(socks))):
            s = socket.create_connection(("127.0.0.1", port), timeout=T(20))
            tc.addCleanup(s.close)
            hs = noise_peer.HandshakeState(NAME, True, noise_peer._prologue(pre), s_priv)
            m1 = hs.write_message()
            s.sendall(pre + struct.pack(">H", len(m1)) + m1)
            batch.append((s, hs))
        for s, hs in batch:
            w = noise_peer.Wire(s)
            hs.read_message(w.recv_frame())
            w.send_frame(hs.write_message())
            socks.append(s)
    return socks


def open_plain(tc, port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=T(20))
        tc.addCleanup(s.close)
        socks.append(s)
    return socks


def closed_in_order(sock, timeout):
    """True if the peer closed the connection with a FIN (recv returns b"")."""
    p = select.poll()  # descriptors here pass select()'s 1024
    p.register(sock, select.POLLIN)
    if not p.poll(timeout * 1000):
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return False


@each_model
class ShutdownMany:
    def setUp(self):
        if not raise_nofile(COUNT + 200):
            self.skipTest("RLIMIT_NOFILE below %d" % (COUNT + 200))

    def _check(self, proto, opener, ready_event):
        # 2,000 handshakes in batches take long on a loaded machine under TSan: this test is
        # about shutdown, so no connection may time out while the others are being opened.
        srv = self.start_server("-P", proto, "--handshake-timeout", str(int(T(60))))
        socks = opener(self, srv.port, COUNT)
        srv.log.wait_for(event=ready_event, count=COUNT, timeout=T(60))
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        rc = srv.wait_exit(T(10))
        took = time.monotonic() - t0
        print("\n%s %s: %d idle connections, exit %.3f s after SIGTERM" % (self.MODEL, proto,
                                                                          COUNT, took))
        self.assertEqual(rc, 0, srv.stderr_text()[-4000:])
        # SPEC: 2 s. Asserted with room for a loaded, shared machine.
        self.assertLess(took, T(4))
        stop = srv.log.find(event="stop")
        self.assertEqual(len(stop), 1, srv.log.tail_text())
        self.assertEqual(stop[0]["conns"], "0")
        self.assertEqual(len(srv.log.find(event="disconnect", reason="shutdown")), COUNT)
        self.assertEqual(len(srv.log.find(event="disconnect")), COUNT)
        # Every connection was closed in order (a FIN each; a reset would destroy what a
        # client had not read yet).
        end = deadline(5)
        bad = sum(1 for s in socks if not closed_in_order(s, max(0.0, end - time.monotonic())))
        self.assertEqual(bad, 0, "%d of %d connections not closed with a FIN" % (bad, COUNT))

    def test_secure_idle(self):
        self._check("secure", open_secure, "handshake")

    def test_plain_idle(self):
        self._check("plain", open_plain, "connect")


if __name__ == "__main__":
    unittest.main()
