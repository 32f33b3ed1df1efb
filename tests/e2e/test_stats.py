# SPDX-License-Identifier: MIT
"""End-to-end: --stats SEC writes event=stats (the totals) and event=stats_worker (one line
per worker of the model) every SEC, on every model and transport (issue #11, Visibility):
the lines parse as logfmt, the counters move exactly with the traffic, the workers add up to
the totals, and a last line with the run's totals comes just before event=stop."""

import os
import signal
import socket
import subprocess
import unittest

from harness import (BIN, SechoTest, T, each_model, echo_roundtrip, recv_until_closed,
                     udp_socket, wait_until)

KEYS = ["conns_open", "conns", "msgs", "bytes_in", "bytes_out", "handshakes", "auth_fail"] + \
    ["disconnects_" + r for r in ("exit", "eof", "reset", "timeout", "error", "shutdown",
                                  "evicted")] + \
    ["errors_" + k for k in ("proto", "recv", "handshake_timeout", "record_timeout",
                             "max_conns", "no_fds", "denied", "proxy")]


def groups(srv):
    """The stats lines in the log, as [(stats record, [stats_worker records])]: each
    event=stats line followed by the worker lines of the same report."""
    out = []
    for rec in srv.log.records():
        if rec["event"] == "stats":
            out.append((rec, []))
        elif rec["event"] == "stats_worker" and out:
            out[-1][1].append(rec)
    return out


class StatsMixin:
    PROTO = "plain"

    def workers(self):
        return os.cpu_count() if self.MODEL == "reactors" else 1

    def complete_groups(self, srv):
        n = self.workers()
        return [g for g in groups(srv) if len(g[1]) == n]

    def check_group(self, total, workers):
        """Every key is there and a bare number; the workers add up to the total."""
        self.assertEqual(total["level"], "info")
        self.assertEqual(int(total["workers"]), self.workers())
        float(total["uptime_s"])
        self.assertEqual([w["worker"] for w in workers], [str(i) for i in range(len(workers))])
        for key in KEYS:
            self.assertRegex(total[key], r"^\d+$", key)
            self.assertEqual(sum(int(w[key]) for w in workers), int(total[key]), key)

    def wait_stats(self, srv, **want):
        """Waits for a report whose totals are `want`; returns (total, workers)."""
        def ok():
            for total, workers in reversed(self.complete_groups(srv)):
                if all(total[k] == str(v) for k, v in want.items()):
                    return total, workers
            return None
        return wait_until(ok, timeout=10, what="a stats line with %r; log tail:\n%s"
                          % (want, srv.log.tail_text(5)))


@each_model
class StatsTcp(StatsMixin):
    def test_lines_every_interval(self):
        srv = self.start_server("--stats", "0.2")
        wait_until(lambda: len(self.complete_groups(srv)) >= 3, timeout=10,
                   what="three stats reports")
        for total, workers in self.complete_groups(srv):
            self.check_group(total, workers)
            self.assertEqual(total["conns"], "0")
        ups = [float(t["uptime_s"]) for t, _ in self.complete_groups(srv)]
        self.assertEqual(ups, sorted(ups))
        self.assertGreaterEqual(ups[1] - ups[0], 0.1)

    def test_counters_move_and_the_last_line_comes_before_stop(self):
        srv = self.start_server("--stats", "0.2")
        a, b = self.connect(srv), self.connect(srv)
        self.assertEqual(echo_roundtrip(a, b"abc\n"), b"abc\n")
        self.assertEqual(echo_roundtrip(b, b"de\nfg\n"), b"de\nfg\n")
        total, workers = self.wait_stats(srv, conns=2, conns_open=2, msgs=3, bytes_in=10,
                                         bytes_out=10)
        self.check_group(total, workers)
        b.sendall(b"exit\n")
        recv_until_closed(b)
        total, workers = self.wait_stats(srv, conns_open=1, msgs=4, disconnects_exit=1)
        self.check_group(total, workers)
        a.close()
        srv.log.wait_for(event="disconnect", count=2)
        srv.signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(T(5)), 0)
        srv.log.wait_for(event="stop")
        recs = srv.log.records()
        stop = max(i for i, r in enumerate(recs) if r["event"] == "stop")
        last = max(i for i, r in enumerate(recs) if r["event"] == "stats")
        self.assertEqual([r["event"] for r in recs[last + 1:stop]],
                         ["stats_worker"] * self.workers())
        final = recs[last]
        self.assertEqual((final["conns"], final["conns_open"], final["msgs"],
                          final["disconnects_exit"], final["disconnects_eof"]),
                         ("2", "0", "4", "1", "1"))
        self.check_group(final, recs[last + 1:stop])

    def test_no_stats_without_the_option(self):
        srv = self.start_server()
        s = self.connect(srv)
        self.assertEqual(echo_roundtrip(s, b"x\n"), b"x\n")
        s.close()
        srv.stop()
        self.assertFalse(srv.log.find(event="stats"))
        self.assertFalse(srv.log.find(event="stats_worker"))


@each_model
class StatsUdp(StatsMixin):
    TRANSPORT = "udp"

    def workers(self):
        # UDP on -m threads is served by one event loop.
        return os.cpu_count() if self.MODEL == "reactors" else 1

    def test_udp_sessions(self):
        srv = self.start_server("--stats", "0.2")
        s = udp_socket(self, srv.port)
        s.send(b"hello")
        self.assertEqual(s.recv(100), b"hello")
        s.send(b"exit")
        self.assertEqual(s.recv(100), b"exit")
        total, workers = self.wait_stats(srv, conns=1, conns_open=0, msgs=2, bytes_in=9,
                                         bytes_out=9, disconnects_exit=1)
        self.check_group(total, workers)


class StatsOptions(SechoTest):
    def test_bad_values_are_usage_errors(self):
        for v in ("0", "-1", "abc", "1e9", ""):
            with self.subTest(v=v):
                out = subprocess.run([BIN, "server", "-P", "plain", "-p", "0", "--stats", v],
                                     capture_output=True, timeout=T(10))
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(b"--stats", out.stderr)

    def test_threads_model_counts_every_connection_thread(self):
        srv = self.start_server("-P", "plain", "-m", "threads", "--stats", "0.2")
        socks = [self.connect(srv) for _ in range(5)]
        for i, s in enumerate(socks):
            self.assertEqual(echo_roundtrip(s, b"%d\n" % i), b"%d\n" % i)
        for s in socks[:3]:
            s.close()
        srv.log.wait_for(event="disconnect", count=3)

        def ok():
            for r in reversed(srv.log.find(event="stats")):
                if r["conns"] == "5" and r["conns_open"] == "2" and r["msgs"] == "5":
                    return r
            return None
        wait_until(ok, timeout=10, what="stats of five connection threads, three gone")


if __name__ == "__main__":
    unittest.main()
