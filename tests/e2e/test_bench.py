# SPDX-License-Identifier: MIT
"""End-to-end tests for `secho bench` against the real server and against broken peers."""
import json
import socket
import subprocess
import threading
import time
import unittest

from harness import BIN, SechoTest

KEYS = ["msgs", "msgs_per_s", "mb_per_s", "p50_us", "p90_us", "p99_us", "p999_us", "errors",
        "connections", "size", "duration", "proto", "transport"]
LIMIT = 60  # seconds any one bench run may take


class FlippingPeer:
    """An echo server that gets one byte wrong in every chunk it sends back."""

    def __init__(self, udp=False):
        self.udp = udp
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.threads = []
        if not udp:
            self.sock.listen(16)
        t = threading.Thread(target=self.serve_udp if udp else self.accept_loop, daemon=True)
        t.start()
        self.threads.append(t)

    @staticmethod
    def flip(data):
        return bytes([data[0] ^ 0x01]) + data[1:]

    def serve_udp(self):
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except (socket.timeout, OSError):
                continue
            if data:
                self.sock.sendto(self.flip(data), peer)

    def accept_loop(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self.serve_tcp, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def serve_tcp(self, conn):
        conn.settimeout(0.2)
        with conn:
            while not self.stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(self.flip(data))
                except OSError:
                    return

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bench(*args):
    return subprocess.run([BIN, "bench", *args], capture_output=True, text=True, timeout=LIMIT)


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchTest(SechoTest):
    def server(self, *args):
        # No log: a load test's message lines would only slow the server down.
        return self.start_server(*args, log=False)

    def run_json(self, *args):
        r = bench(*args, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        result = json.loads(lines[0])
        for key in KEYS:
            self.assertIn(key, result)
        return result

    def test_plain_tcp(self):
        srv = self.server("-P", "plain", "-m", "epoll")
        res = self.run_json("-P", "plain", "-p", str(srv.port), "-c", "4", "-d", "1")
        self.assertGreater(res["msgs"], 0)
        self.assertEqual(res["errors"], 0)
        self.assertEqual(res["connections"], 4)
        self.assertEqual(res["proto"], "plain")
        self.assertEqual(res["transport"], "tcp")
        self.assertGreater(res["msgs_per_s"], 0)
        self.assertLessEqual(res["p50_us"], res["p90_us"])
        self.assertLessEqual(res["p90_us"], res["p99_us"])
        self.assertLessEqual(res["p99_us"], res["p999_us"])

    def test_plain_tcp_pipeline_threads_large(self):
        srv = self.server("-P", "plain", "-m", "reactors", "--threads", "2")
        res = self.run_json("-P", "plain", "-p", str(srv.port), "-c", "6", "-d", "1",
                            "--warmup", "0.2", "--pipeline", "8", "--threads", "2",
                            "-s", "70000")
        self.assertGreater(res["msgs"], 0)
        self.assertEqual(res["errors"], 0)
        self.assertEqual(res["size"], 70000)

    def test_plain_udp(self):
        srv = self.server("-P", "plain", "-t", "udp", "-m", "epoll")
        res = self.run_json("-P", "plain", "-t", "udp", "-p", str(srv.port), "-c", "4",
                            "-d", "1", "--pipeline", "2")
        self.assertGreater(res["msgs"], 0)
        self.assertEqual(res["errors"], 0)
        self.assertEqual(res["transport"], "udp")

    def test_summary_text(self):
        srv = self.server("-P", "plain", "-m", "epoll")
        r = bench("-P", "plain", "-p", str(srv.port), "-c", "2", "-d", "0.5",
                  "--warmup", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("msgs/s", "MB/s", "p50", "p90", "p99", "p99.9", "errors"):
            self.assertIn(word, r.stdout)
        self.assertEqual(r.stderr, "")  # not a terminal: no progress lines

    def test_wrong_echo_tcp(self):
        with FlippingPeer() as peer:
            res = self.run_json("-P", "plain", "-p", str(peer.port), "-c", "2", "-d", "1",
                                "--warmup", "0")
        self.assertGreater(res["errors"], 0)
        self.assertGreater(res["mismatch"], 0)
        self.assertEqual(res["msgs"], 0)

    def test_wrong_echo_udp(self):
        with FlippingPeer(udp=True) as peer:
            res = self.run_json("-P", "plain", "-t", "udp", "-p", str(peer.port), "-c", "2",
                                "-d", "1", "--warmup", "0")
        self.assertGreater(res["errors"], 0)
        self.assertEqual(res["msgs"], 0)

    def test_udp_loss_is_counted_not_a_hang(self):
        # A peer that answers only every other datagram: the rest count as lost.
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        stop = threading.Event()

        def serve():
            n = 0
            while not stop.is_set():
                try:
                    data, peer = sock.recvfrom(65536)
                except socket.timeout:
                    continue
                n += 1
                if n % 2:
                    sock.sendto(data, peer)

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            start = time.monotonic()
            res = self.run_json("-P", "plain", "-t", "udp", "-p", str(sock.getsockname()[1]),
                                "-c", "2", "-d", "1.5", "--warmup", "0", "--timeout", "0.2")
            self.assertLess(time.monotonic() - start, 10)
        finally:
            stop.set()
            t.join(timeout=5)
            sock.close()
        self.assertGreater(res["msgs"], 0)
        self.assertGreater(res["lost"], 0)
        self.assertGreater(res["errors"], 0)

    def test_unreachable_tcp(self):
        port = free_port()
        r = bench("-P", "plain", "-p", str(port), "-d", "1")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, rf"^secho: cannot connect to 127\.0\.0\.1:{port}: \S")
        self.assertEqual(r.stdout, "")

    def test_unreachable_udp(self):
        port = free_port(socket.SOCK_DGRAM)
        r = bench("-P", "plain", "-t", "udp", "-p", str(port), "-d", "1", "--warmup", "0")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, rf"secho: cannot connect to 127\.0\.0\.1:{port}: \S")

    def test_usage_errors(self):
        for args in (["-c", "0"], ["-s", "x"], ["-d", "-1"], ["--pipeline", "0"],
                     ["--bogus"], ["-t", "udp", "-P", "plain", "-s", "70000"], ["extra"]):
            r = bench("-P", "plain", *args)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("secho bench", r.stderr)

    def test_help(self):
        r = bench("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("--connections", "--size", "--duration", "--warmup", "--pipeline", "--json",
                    "--threads", "--timeout", "--server-key", "Examples"):
            self.assertIn(opt, r.stdout)


if __name__ == "__main__":
    unittest.main()
