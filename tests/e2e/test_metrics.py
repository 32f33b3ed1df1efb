# SPDX-License-Identifier: MIT
"""End-to-end: --metrics serves the server's counters in the Prometheus text format on every
model (issue #11, Visibility): every line of every scrape parses with a strict parser of the
format (prometheus.py), the counters move exactly with the traffic, and the tiny HTTP
responder answers only GET/HEAD /metrics, bounds what it reads and how long it waits, and
closes every connection after one answer."""

import os
import socket
import subprocess
import time
import unittest

import prometheus
from harness import (BIN, HOST, SechoTest, T, TempHome, deadline, each_model, echo_roundtrip,
                     free_tcp_port_holder, recv_until_closed, run_client, udp_socket, wait_until)

FAMILIES = {
    "secho_connections_total": "counter",
    "secho_connections_closed_total": "counter",
    "secho_connections_open": "gauge",
    "secho_messages_total": "counter",
    "secho_received_bytes_total": "counter",
    "secho_sent_bytes_total": "counter",
    "secho_handshakes_total": "counter",
    "secho_auth_failures_total": "counter",
    "secho_disconnects_total": "counter",
    "secho_errors_total": "counter",
    "secho_build_info": "gauge",
    "secho_workers": "gauge",
    "secho_start_time_seconds": "gauge",
}


def metrics_port(srv):
    rec = srv.log.wait_for(event="listening", service="metrics")[0]
    return int(rec["addr"].rsplit(":", 1)[1])


def counters(port):
    """One scrape, reduced to {family: total over workers and labels} plus the parse."""
    expo = prometheus.scrape(port)
    totals = {}
    for name, labels, value in expo.samples:
        totals[name] = totals.get(name, 0) + value
    return totals, expo


class MetricsMixin:
    PROTO = "plain"

    def start(self, *args, **kw):
        srv = self.start_server("--metrics", "127.0.0.1:0", *args, **kw)
        return srv, metrics_port(srv)

    def wait_counts(self, port, want, what="counters"):
        """Scrapes until every family in `want` has the value given (the workers count
        before they answer, but a send may be counted just after the peer saw its bytes)."""
        seen = {}

        def ok():
            totals, _ = counters(port)
            seen.clear()
            seen.update(totals)
            return all(totals.get(k) == v for k, v in want.items())

        try:
            wait_until(ok, timeout=10, what=what)
        except AssertionError:
            raise AssertionError("%s: wanted %r, last scrape %r" % (
                what, want, {k: seen.get(k) for k in want}))
        return seen


@each_model
class MetricsTcp(MetricsMixin):
    def test_every_line_parses_and_names_every_worker(self):
        srv, port = self.start()
        totals, expo = counters(port)
        for family, kind in FAMILIES.items():
            self.assertEqual(expo.types.get(family), kind, family)
            self.assertTrue(expo.help.get(family), "no HELP for %s" % family)
        workers = int(expo.values("secho_workers")[0])
        want_workers = 1 if self.MODEL != "reactors" else os.cpu_count()
        self.assertEqual(workers, want_workers)
        names = {l["worker"] for n, l, _ in expo.samples if n == "secho_messages_total"}
        self.assertEqual(names, {str(i) for i in range(workers)})
        info = expo.samples[[n for n, _, _ in expo.samples].index("secho_build_info")][1]
        self.assertEqual((info["proto"], info["transport"], info["model"]),
                         ("plain", "tcp", self.MODEL))
        self.assertEqual(sorted(l["reason"] for n, l, _ in expo.samples
                                if n == "secho_disconnects_total" and l["worker"] == "0"),
                         sorted(["exit", "eof", "reset", "timeout", "error", "shutdown",
                                 "evicted"]))
        start = expo.values("secho_start_time_seconds")[0]
        self.assertLess(abs(start - time.time()), 60)
        self.assertEqual(totals["secho_connections_total"], 0)

    def test_counters_move_with_traffic(self):
        srv, port = self.start()
        socks = [self.connect(srv) for _ in range(3)]
        sent = 0
        for i, s in enumerate(socks):
            data = b"line %d\n" % i * (i + 1)
            self.assertEqual(echo_roundtrip(s, data), data)
            sent += len(data)
        msgs = 1 + 2 + 3
        got = self.wait_counts(port, {
            "secho_connections_total": 3, "secho_connections_open": 3,
            "secho_messages_total": msgs, "secho_received_bytes_total": sent,
            "secho_sent_bytes_total": sent}, "after three connections")
        self.assertEqual(got["secho_disconnects_total"], 0)
        # exit closes one, EOF another; the third stays open.
        socks[0].sendall(b"exit\n")
        recv_until_closed(socks[0])
        socks[1].shutdown(socket.SHUT_WR)
        recv_until_closed(socks[1])
        _, expo = counters(port)
        self.wait_counts(port, {
            "secho_connections_total": 3, "secho_connections_open": 1,
            "secho_connections_closed_total": 2, "secho_messages_total": msgs + 1,
            "secho_received_bytes_total": sent + 5, "secho_sent_bytes_total": sent + 5},
            "after exit and EOF")
        _, expo = counters(port)
        self.assertEqual(expo.total("secho_disconnects_total", reason="exit"), 1)
        self.assertEqual(expo.total("secho_disconnects_total", reason="eof"), 1)
        # Per worker, open = total - closed, and the workers add up to the totals.
        for w in range(int(expo.values("secho_workers")[0])):
            self.assertEqual(expo.total("secho_connections_open", worker=w),
                             expo.total("secho_connections_total", worker=w)
                             - expo.total("secho_connections_closed_total", worker=w))

    def test_denied_shutdown_and_max_conns_are_errors(self):
        srv, port = self.start("--allow-shutdown", "none", "--max-conns", "1")
        a = self.connect(srv)
        # plain echoes the bytes, then says no
        self.assertTrue(echo_roundtrip(a, b"shutdown\n").startswith(b"shutdown\n"))
        b = self.connect(srv)
        recv_until_closed(b)  # refused: --max-conns 1
        srv.log.wait_for(event="denied", reason="max_conns")
        self.wait_counts(port, {"secho_errors_total": 2}, "two errors")
        _, expo = counters(port)
        self.assertEqual(expo.total("secho_errors_total", kind="denied"), 1)
        self.assertEqual(expo.total("secho_errors_total", kind="max_conns"), 1)

    def test_http_answers(self):
        srv, port = self.start()
        status, headers, body = prometheus.http_get(port, "/")
        self.assertEqual(status, 404)
        self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(prometheus.http_get(port, "/metrics/x")[0], 404)
        status, headers, _ = prometheus.http_get(port, method="POST")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD")
        self.assertEqual(prometheus.http_get(port, method="DELETE")[0], 405)
        status, headers, body = prometheus.http_get(port, method="HEAD")
        self.assertEqual(status, 200)
        self.assertGreater(int(headers["content-length"]), 100)
        self.assertEqual(prometheus.http_get(port, "/metrics?name[]=x")[0], 200)
        bad = [b"GET /metrics\r\n\r\n", b"GET /metrics HTTP/1.1\r\n\r\n",  # no Host
               b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\r\n\r\n",
               b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"]
        for raw in bad:
            with self.subTest(raw=raw):
                self.assertEqual(prometheus.http_get(port, raw=raw)[0], 400)
        self.assertEqual(prometheus.http_get(port, raw=b"GET /metrics HTTP/2.0\r\n\r\n")[0], 505)
        self.assertEqual(prometheus.http_get(
            port, raw=b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )[0], 501)
        big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 5000 + b"\r\n\r\n"
        self.assertEqual(prometheus.http_get(port, raw=big)[0], 431)
        # HTTP/1.0, and a second request behind the first: one answer, then close.
        status, _, body = prometheus.http_get(
            port, raw=b"GET /metrics HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n")
        self.assertEqual(status, 200)
        prometheus.parse(body)
        srv.log.wait_for(event="error", service="metrics", status="431")
        self.assertTrue(srv.alive())
        prometheus.scrape(port)

    def test_slow_request_is_cut_off_and_others_are_served(self):
        srv, port = self.start()
        slow = socket.create_connection((HOST, port))
        self.addCleanup(slow.close)
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes
        prometheus.scrape(port)  # meanwhile, a whole scrape is answered
        t0 = time.monotonic()
        data, _ = recv_until_closed(slow, timeout=10)
        self.assertEqual(data, b"")
        self.assertGreater(time.monotonic() - t0, 2.0)  # the bound is 5 s from accept
        srv.log.wait_for(event="timeout", service="metrics")

    def test_concurrent_scrapes_are_bounded(self):
        srv, port = self.start()
        idle = []
        for _ in range(8):
            s = socket.create_connection((HOST, port))
            self.addCleanup(s.close)
            idle.append(s)
        srv.log.wait_for(event="listening", service="metrics")

        def busy():
            status = prometheus.http_get(port)[0]
            return status == 503
        wait_until(busy, timeout=10, what="a 503 while 8 scrapes are open")
        srv.log.wait_for(event="denied", service="metrics")
        for s in idle:
            s.close()
        wait_until(lambda: prometheus.http_get(port)[0] == 200, timeout=10,
                   what="a scrape once the others are gone")


@each_model
class MetricsUdp(MetricsMixin):
    TRANSPORT = "udp"

    def test_datagrams_and_sessions(self):
        srv, port = self.start()
        a, b = udp_socket(self, srv.port), udp_socket(self, srv.port)
        for s, data in ((a, b"one"), (a, b"two\n"), (b, b"three")):
            s.send(data)
            self.assertEqual(s.recv(100), data)
        a.send(b"exit")
        self.assertEqual(a.recv(100), b"exit")
        self.wait_counts(port, {
            "secho_connections_total": 2, "secho_connections_open": 1,
            "secho_messages_total": 4, "secho_received_bytes_total": 3 + 4 + 5 + 4,
            "secho_sent_bytes_total": 3 + 4 + 5 + 4}, "after UDP traffic")
        _, expo = counters(port)
        self.assertEqual(expo.values("secho_build_info")[0], 1)
        self.assertEqual(expo.total("secho_disconnects_total", reason="exit"), 1)


@each_model
class MetricsSecure(MetricsMixin):
    PROTO = "secure"

    def test_handshakes_and_auth_failures(self):
        home = TempHome()
        self.addCleanup(home.cleanup)
        srv, port = self.start(home=home)
        for i in range(2):
            out = run_client(home, srv.port, "--accept-new", input=b"hi %d\n" % i)
            self.assertEqual(out.returncode, 0, out.stderr)
        bad = self.connect(srv)
        bad.sendall(b"\x00\x05hello")  # not a Noise protocol name
        recv_until_closed(bad)
        self.wait_counts(port, {"secho_handshakes_total": 2, "secho_messages_total": 2,
                                "secho_connections_total": 3, "secho_connections_open": 0},
                         "after two clients and a bad one")
        _, expo = counters(port)
        self.assertGreaterEqual(expo.total("secho_auth_failures_total"), 1)


class MetricsOptions(SechoTest):
    def test_bad_spec_is_a_usage_error(self):
        for spec in ("9100", "localhost", ":9100", "::1:9100", "[::1]9100", "h:99999", "h:x"):
            with self.subTest(spec=spec):
                out = subprocess.run([BIN, "server", "-P", "plain", "-p", "0", "--metrics", spec],
                                     capture_output=True, timeout=T(10))
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(b"--metrics", out.stderr)

    def test_port_in_use_exits_1(self):
        holder, port = free_tcp_port_holder(self)
        holder.listen(1)
        out = subprocess.run([BIN, "server", "-P", "plain", "-p", "0", "-l", os.devnull,
                              "--metrics", "127.0.0.1:%d" % port],
                             capture_output=True, timeout=T(10))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"cannot listen on 127.0.0.1:%d: Address already in use" % port,
                      out.stderr)
        self.assertNotIn(b"listening on", out.stdout)

    def test_ipv6_loopback(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6")
        try:
            s = socket.socket(socket.AF_INET6)
            s.bind(("::1", 0))
            s.close()
        except OSError:
            self.skipTest("no IPv6 loopback")
        srv = self.start_server("-P", "plain", "--metrics", "[::1]:0")
        rec = srv.log.wait_for(event="listening", service="metrics")[0]
        self.assertTrue(rec["addr"].startswith("[::1]:"), rec)
        port = int(rec["addr"].rsplit(":", 1)[1])
        prometheus.scrape(port, host="::1")


if __name__ == "__main__":
    unittest.main()
