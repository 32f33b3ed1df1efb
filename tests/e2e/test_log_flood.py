# SPDX-License-Identifier: MIT
"""End-to-end: a flood of forged datagrams cannot fill the disk through the log (issue #10),
on every model.

200,000 secure initiations with a bad (non-zero, wrong) cookie from 256 source ports (or as
many as go in a few seconds) used to write one `auth_fail` line each: 22 MB at 2 MB/s. Now
repeated events are rate-limited per peer and overall, and what is left out is counted in
`suppressed=N` fields: the log grows by a bounded number of bytes, the lines written plus
the suppressed counts are exactly the datagrams the server handled, and a legitimate client
is served and logged meanwhile.

Likewise a UDP peer's lines before it proves itself (plain: its second datagram; lab-fernet:
its first valid token): one datagram from each of 20,000 source ports used to write 20,000
connect lines (and, for plain, as many message lines), 2.5 MB. Now the log grows by less than
256 KiB, the connect lines plus their suppressed counts are the sessions the server counted,
and a client that comes afterwards is served and, once proven, logged.

The sender keeps a bounded number of datagrams in flight and counts the server's answers
(each bad-cookie initiation is answered with a cookie reply), so that no datagram is lost to
a full socket buffer and the server's count can be checked exactly; if some were lost
anyway (UDP allows it), the check becomes answered <= counted <= sent."""

import os
import select
import socket
import struct
import threading
import time
import unittest

from harness import (T, TempHome, each_model, limited_totals, peer_of, run_client,
                     udp_echo_with_retries, udp_flood_source_ports, udp_socket)

TARGET = 200000
SECONDS = 4.0  # the flood stops after this long (scaled) even if TARGET was not reached
SOURCES = 256
WINDOW = 64  # datagrams in flight at once: far below what a socket buffer holds
# The log's limits (src/base/log.h): overall LOG_LIMIT_BURST at once, then one line per
# LOG_LIMIT_INTERVAL_MS; summaries every LOG_LIMIT_FLUSH_MS, one per kind and per peer whose
# own limit lifted.
BURST = 50
PER_SECOND = 10
LINE_MAX = 200  # bytes of one auth_fail line, generously (they are about 110)


def bad_cookie_initiation(sender):
    """A well-formed 56-byte initiation (suite 0) whose cookie is non-zero and wrong."""
    return (bytes([1, 0, 0, 0]) + struct.pack(">I", sender) + b"\x5a" * 16
            + os.urandom(32))


def flood(port, target, seconds):
    """Sends bad-cookie initiations from SOURCES sockets, at most WINDOW unanswered at once,
    until `target` were sent or `seconds` passed. Returns (sent, answered)."""
    socks = []
    ep = select.epoll()
    try:
        for _ in range(SOURCES):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
            socks.append(s)
            ep.register(s.fileno(), select.EPOLLIN)
        by_fd = {s.fileno(): s for s in socks}
        pkts = [bad_cookie_initiation(i) for i in range(SOURCES)]
        sent = answered = inflight = 0
        end = time.monotonic() + seconds
        while sent < target and time.monotonic() < end:
            while inflight < WINDOW and sent < target:
                i = sent % SOURCES
                socks[i].sendto(pkts[i], ("127.0.0.1", port))
                sent += 1
                inflight += 1
            events = ep.poll(T(1))
            if not events:
                inflight = 0  # lost (UDP may): go on; the check then uses bounds
            for fd, _ in events:
                while True:
                    try:
                        data = by_fd[fd].recv(64)
                    except BlockingIOError:
                        break
                    if len(data) == 24 and data[0] == 3:  # a cookie reply
                        answered += 1
                        inflight -= 1
        # The last answers.
        quiet_until = time.monotonic() + T(1)
        while answered < sent and time.monotonic() < quiet_until:
            for fd, _ in ep.poll(0.1):
                while True:
                    try:
                        data = by_fd[fd].recv(64)
                    except BlockingIOError:
                        break
                    if len(data) == 24 and data[0] == 3:
                        answered += 1
        return sent, answered
    finally:
        ep.close()
        for s in socks:
            s.close()


@each_model
class LogFlood:
    PROTO = "secure"
    TRANSPORT = "udp"

    def test_forged_bad_cookies(self):
        home = TempHome()
        self.addCleanup(home.cleanup)
        srv = self.start_server(home=home)
        before = os.path.getsize(srv.log.path)
        client = {}

        def legit():
            client["cp"] = run_client(home, srv.port, "-P", "secure", "-t", "udp",
                                      "--accept-new", "--timeout", "5",
                                      input=b"hello during the flood\nexit\n", timeout=30)

        # A legitimate client talks while the flood runs.
        th = threading.Timer(T(SECONDS) / 3, legit)
        th.start()
        t0 = time.monotonic()
        sent, answered = flood(srv.port, TARGET, T(SECONDS))
        th.join()
        elapsed = time.monotonic() - t0
        cp = client["cp"]
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, b"hello during the flood\nexit\n")
        srv.log.wait_for(event="message", text="hello during the flood")
        # The writer reports the counts by itself, about once a second, while it runs.
        srv.log.wait_for(event="auth_fail", pred=lambda r: "suppressed" in r and "peer" not in r,
                         timeout=5, what="a periodic aggregated auth_fail suppressed= line")
        # The server writes what it still counts before `stop`: stop it, then count.
        srv.stop()
        grown = os.path.getsize(srv.log.path) - before
        recs = srv.log.find(event="auth_fail")
        events, suppressed = limited_totals(recs)
        print("\n%s: %d forged datagrams (%d answered) in %.1f s: log +%d bytes, "
              "%d auth_fail lines, suppressed=%d" % (self.MODEL, sent, answered, elapsed,
                                                     grown, len(recs), suppressed))
        # Meaningful once the flood is many times what the limits let through (a few hundred
        # lines); a loaded 2-core machine sends 10,000 or more, a quiet one 200,000.
        self.assertGreater(sent, 5000, "the flood was too slow to mean anything")
        if answered == sent:
            self.assertEqual(events + suppressed, sent)
        else:
            self.assertGreaterEqual(events + suppressed, answered)
            self.assertLessEqual(events + suppressed, sent)
        self.assertGreater(suppressed, 0)
        # Bounded: the overall allowance over the run, plus about one summary a second per
        # kind and per peer whose own limit lifted (at most the sources), plus the client's
        # own lines, and the few lines of start and stop.
        seconds = elapsed + 3
        lines = BURST + PER_SECOND * seconds + 2 * seconds + 100
        self.assertLess(len(recs), BURST + PER_SECOND * seconds + 2 * seconds + SOURCES)
        self.assertLess(grown, LINE_MAX * (lines + SOURCES),
                        "the log grew by %d bytes for %d datagrams" % (grown, sent))
        # Without the limit, every datagram would have been a line.
        self.assertLess(grown, sent * 10)


# New UDP peers: every new source port is a new peer session, and its lines (connect, the
# first message, denied, handshake, disconnect) are limited until the peer proves itself
# (src/engine/service.h: 64 per host and kind at once, then 4 a second; 256 in all at once,
# then 20 a second).
PORTS = 20000
LOG_BOUND = 256 * 1024  # bytes the log may grow by for the whole run


def stats_conns(srv):
    """The sessions the server counted: conns= of its last event=stats line (with --stats,
    the run's totals are written at stop)."""
    return int(srv.log.find(event="stats")[-1]["conns"])


@each_model
class UdpPeerFlood:
    TRANSPORT = "udp"

    def flood(self, proto):
        """A server for `proto` flooded with one datagram from each of PORTS source ports;
        returns (server, log size before, seconds the flood took)."""
        srv = self.start_server("-P", proto, "--stats", "3600", "--max-conns", "4000")
        before = os.path.getsize(srv.log.path)
        t0 = time.monotonic()
        self.assertEqual(udp_flood_source_ports(srv.port, PORTS, b"key", distinct=True), PORTS)
        return srv, before, time.monotonic() - t0

    def check_bounded(self, srv, before, elapsed):
        """After srv.stop(): the log grew by less than LOG_BOUND, and every session the
        server counted is a connect line or counted in a connect suppressed= field."""
        grown = os.path.getsize(srv.log.path) - before
        conns = stats_conns(srv)
        lines, suppressed = limited_totals(srv.log.find(event="connect"))
        print("\n%s: %d source ports in %.1f s: %d sessions, log +%d bytes, %d connect lines, "
              "suppressed=%d" % (self.MODEL, PORTS, elapsed, conns, grown, lines, suppressed))
        self.assertGreater(conns, PORTS // 4, "too few datagrams arrived to mean anything")
        self.assertLess(grown, LOG_BOUND, "the log grew by %d bytes for %d sessions"
                        % (grown, conns))
        self.assertEqual(lines + suppressed, conns)
        self.assertGreater(suppressed, 0)

    def test_plain_source_ports(self):
        srv, before, elapsed = self.flood("plain")
        # A client that comes afterwards is served; its second datagram proves it, and from
        # there on its lines are written as they come.
        c = udp_socket(self, srv.port)
        for text in (b"hello 1", b"hello 2"):
            self.assertEqual(udp_echo_with_retries(c, text), text)
        srv.log.wait_for(event="message", peer=peer_of(c), text="hello 2")
        srv.stop()
        self.check_bounded(srv, before, elapsed)
        self.assertEqual(len(srv.log.find(event="disconnect", peer=peer_of(c),
                                          reason="shutdown")), 1)

    def test_lab_fernet_source_ports(self):
        srv, before, elapsed = self.flood("lab-fernet")
        # A client that comes afterwards gets its key and its echoes; its first valid token
        # proves it, and from there on its lines are written as they come.
        home = TempHome()
        self.addCleanup(home.cleanup)
        cp = run_client(home, srv.port, "-P", "lab-fernet", "-t", "udp", "--timeout", "5",
                        input=b"hello fernet\nexit\n")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, b"hello fernet\nexit\n")
        rec = srv.log.wait_for(event="message", text="hello fernet")[0]
        srv.log.wait_for(event="disconnect", peer=rec["peer"], reason="exit")
        srv.stop()
        self.check_bounded(srv, before, elapsed)


if __name__ == "__main__":
    unittest.main()
