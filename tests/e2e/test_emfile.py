# SPDX-License-Identifier: MIT
"""End-to-end: running out of file descriptors (EMFILE) on every model (issue #2).

The server runs with RLIMIT_NOFILE 64 and --max-conns far above it, and more connections
than it has descriptors are opened. It must not spin at 100% CPU on the listener that stays
readable, must log the error, and must recover once descriptors are free again."""

import resource
import time
import unittest

from harness import each_model, peer_of, recv_exact, tcp_connect, wait_until

NOFILE = 64
FLOOD = 120


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@each_model
class Emfile:
    PROTO = "plain"
    TRANSPORT = "tcp"

    def start_low_fd_server(self):
        return self.start_server("--max-conns", "1000", "--threads", "2",
                                 preexec_fn=low_fd_limit)

    def test_emfile_no_spin_logs_and_recovers(self):
        srv = self.start_low_fd_server()
        first = tcp_connect(self, srv.port)
        first.sendall(b"first\n")
        self.assertEqual(recv_exact(first, 6), b"first\n")

        # Flood: more connections than the server has descriptors. The kernel completes
        # the handshakes (backlog), so connect() succeeds even for those never accepted.
        flood = []
        for _ in range(FLOOD):
            flood.append(tcp_connect(self, srv.port))
        errors = srv.log.wait_for(
            pred=lambda r: r["event"] == "error" and "accept" in r.get("error", ""),
            timeout=10, what="an accept error (EMFILE) logged")
        self.assertIn("Too many open files", errors[0]["error"])

        # While the flood is held, the server must not busy-loop.
        time.sleep(0.2)
        cpu0, t0 = srv.cpu_seconds(), time.monotonic()
        time.sleep(1.0)
        cpu1, t1 = srv.cpu_seconds(), time.monotonic()
        used = cpu1 - cpu0
        self.assertLess(used, 0.3 * (t1 - t0),
                        "server burnt %.2f s of CPU in %.2f s while out of descriptors"
                        % (used, t1 - t0))
        self.assertTrue(srv.alive())
        # The connection accepted before the flood is still served.
        first.sendall(b"still\n")
        self.assertEqual(recv_exact(first, 6), b"still\n")

        # Release the flood: the server recovers and serves a new client.
        flood_peers = {peer_of(s) for s in flood}
        for s in flood:
            s.close()
        srv.log.wait_for(event="disconnect", pred=lambda r: r["peer"] in flood_peers,
                         count=1, timeout=10)

        def served():
            s = tcp_connect(self, srv.port)
            s.sendall(b"after\n")
            try:
                return recv_exact(s, 6, timeout=2) == b"after\n"
            except (AssertionError, ConnectionResetError):
                s.close()
                return False

        wait_until(served, timeout=15, what="a new client served after the flood",
                   interval=0.2)
        # And the descriptors of the flood are all given back.
        wait_until(lambda: srv.fd_count() < NOFILE - 8, timeout=10,
                   what="descriptors released (now %d)" % srv.fd_count())


if __name__ == "__main__":
    unittest.main()
