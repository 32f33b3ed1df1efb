# SPDX-License-Identifier: MIT
"""End-to-end: `secho client -P plain` (piped, interactive on a pty, refused, server gone,
usage errors) over TCP and UDP, against the real server (issue #2, SPEC "Client
behaviour")."""

import os
import pty
import select
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import BIN, MODELS, T, SechoTest, free_tcp_port_holder

CLIENT_MODEL = "reactors" if "reactors" in MODELS else MODELS[0]


def client_env():
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="secho-e2e-cfg-")
    env["XDG_STATE_HOME"] = env["XDG_CONFIG_HOME"]  # the pty tests keep history there
    return env


def run_secho(args, input=b"", timeout=10.0):
    """Runs `secho ARGS` to completion; returns (status, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    try:
        p = subprocess.run([BIN] + list(args), input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=T(timeout), env=client_env())
    except subprocess.TimeoutExpired as e:
        raise AssertionError("secho %s hung for %.1f s (stdout %r, stderr %r)"
                             % (" ".join(args), T(timeout), (e.stdout or b"")[-200:],
                                (e.stderr or b"")[-200:]))
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def read_until(fd, pred, timeout, buf=b""):
    """Reads from fd until pred(buf) holds; returns buf. Fails on deadline or EOF."""
    deadline = time.monotonic() + T(timeout)
    while not pred(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out after %.1f s; got %r" % (T(timeout), buf[-300:]))
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the pty's other side is closed
            chunk = b""
        if not chunk:
            raise AssertionError("EOF before the expected output; got %r" % buf[-300:])
        buf += chunk
    return buf


class ClientTcpTest(SechoTest):
    PROTO = "plain"
    TRANSPORT = "tcp"
    MODEL = CLIENT_MODEL

    def client(self, srv, *extra, input=b"", timeout=10.0):
        return run_secho(["client", "-P", "plain", "-p", str(srv.port)] + list(extra),
                         input=input, timeout=timeout)

    def test_piped_prints_only_echoes(self):
        srv = self.start_server()
        rc, out, err, _ = self.client(srv, input=b"hello\nworld\n\n  spaced  \n")
        self.assertEqual((rc, out, err), (0, b"hello\nworld\n\n  spaced  \n", b""))
        srv.log.wait_for(event="disconnect", reason="eof")

    def test_last_line_without_newline(self):
        srv = self.start_server()
        rc, out, err, _ = self.client(srv, input=b"x\ny")
        self.assertEqual((rc, out, err), (0, b"x\ny\n", b""))

    def test_exit_stops_and_closes(self):
        srv = self.start_server()
        rc, out, err, _ = self.client(srv, input=b"a\nexit\nnot sent\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, b"")
        # Whether the echo of `exit` itself is printed is not fixed by SPEC; nothing after
        # it is sent.
        self.assertIn(out, (b"a\n", b"a\nexit\n"))
        srv.log.wait_for(event="disconnect", reason="exit")
        self.assertEqual(srv.log.find(event="message", text="not sent"), [])

    def test_owed_echoes_arrive_before_exit(self):
        srv = self.start_server()
        data = b"".join(b"line %06d %s\n" % (i, b"z" * (i % 97)) for i in range(20000))
        data += b"L" * 300000 + b"\n"  # and one long line
        rc, out, err, _ = self.client(srv, input=data, timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out), len(data))
        self.assertTrue(out == data, "echoes differ from the input")
        self.assertEqual(err, b"")

    def test_shutdown_through_client(self):
        srv = self.start_server()
        rc, out, err, _ = self.client(srv, input=b"shutdown\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(srv.wait_exit(T(3)), 0)

    def test_cannot_connect(self):
        _, port = free_tcp_port_holder(self)  # bound, not listening: connections refused
        rc, out, err, secs = run_secho(["client", "-P", "plain", "-p", str(port)],
                                       input=b"hello\n")
        self.assertEqual(rc, 1)
        self.assertEqual(out, b"")
        self.assertTrue(err.startswith(b"secho: cannot connect to 127.0.0.1:%d: " % port), err)
        self.assertLess(secs, T(5))

    def test_server_goes_away(self):
        srv = self.start_server()
        p = subprocess.Popen([BIN, "client", "-P", "plain", "-p", str(srv.port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=client_env())
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(),
                                 p.stdin.close(), p.stdout.close(), p.stderr.close()))
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        self.assertEqual(read_until(p.stdout.fileno(), lambda b: b"\n" in b, 5), b"hello\n")
        # The client now waits on stdin (we hold the pipe open) when the server dies.
        t0 = time.monotonic()
        srv.kill()
        try:
            rc = p.wait(timeout=T(2))
        except subprocess.TimeoutExpired:
            rc = None
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 1, "client did not exit 1 within %.1f s of the server's death"
                         % T(2))
        self.assertLess(elapsed, T(2))
        err = p.stderr.read()
        self.assertTrue(err.startswith(b"secho: "), err)

    def test_interactive_on_a_terminal(self):
        srv = self.start_server()
        master, slave = pty.openpty()
        p = subprocess.Popen([BIN, "client", "-P", "plain", "-p", str(srv.port)],
                             stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                             env=client_env())
        os.close(slave)
        self.addCleanup(os.close, master)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
        # A prompt appears before anything is typed.
        time_limit = 5
        prompt = read_until(master, lambda b: len(b) > 0, time_limit)
        time.sleep(0.1)
        r, _, _ = select.select([master], [], [], 0)
        if r:
            prompt += os.read(master, 4096)
        self.assertTrue(prompt.strip(), "no prompt")
        token = b"tok-e2e-4711"
        os.write(master, token + b"\n")
        # The terminal echoes what we type once; the server's echo is the second copy, and
        # then the prompt comes back.
        out = read_until(master, lambda b: b.count(token) >= 2 and b.rstrip().endswith(
            prompt.strip()), time_limit)
        self.assertGreaterEqual(out.count(token), 2)
        os.write(master, b"exit\n")
        try:
            rc = p.wait(timeout=T(5))
        except subprocess.TimeoutExpired:
            rc = None
        self.assertEqual(rc, 0)


class ClientUdpTest(SechoTest):
    PROTO = "plain"
    TRANSPORT = "udp"
    MODEL = CLIENT_MODEL

    def test_udp_echo_per_line(self):
        srv = self.start_server()
        rc, out, err, _ = run_secho(["client", "-P", "plain", "-t", "udp", "-p", str(srv.port)],
                                    input=b"one\ntwo\nthree\n")
        self.assertEqual((rc, out, err), (0, b"one\ntwo\nthree\n", b""))
        self.assertEqual(len(srv.log.wait_for(event="message", count=3)), 3)

    def test_udp_no_server_listening(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now: the kernel answers port unreachable
        rc, out, err, secs = run_secho(["client", "-P", "plain", "-t", "udp", "-p", str(port),
                                        "--timeout", "1"], input=b"a\nb\n", timeout=10)
        self.assertEqual(rc, 1)
        self.assertEqual(out, b"")
        self.assertTrue(err.startswith(b"secho: "), err)
        self.assertLess(secs, T(2 * 1 + 3))

    def test_udp_server_that_drops(self):
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives, never answers
        self.addCleanup(sink.close)
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        rc, out, err, secs = run_secho(["client", "-P", "plain", "-t", "udp", "-p", str(port),
                                        "--timeout", "1"], input=b"a\nb\n", timeout=15)
        self.assertEqual(rc, 1)
        self.assertEqual(out, b"")
        self.assertTrue(err.startswith(b"secho: "), err)
        self.assertGreaterEqual(secs, 0.9)
        self.assertLess(secs, T(2 * 1 + 3))
        # Both lines were sent.
        sink.settimeout(T(1))
        self.assertEqual(sink.recv(100), b"a")
        self.assertEqual(sink.recv(100), b"b")


class UsageTest(SechoTest):
    def assert_usage_error(self, *args):
        rc, out, err, _ = run_secho(list(args))
        self.assertEqual(rc, 2, "secho %s exited %s; stderr %r" % (" ".join(args), rc, err))
        self.assertTrue(err, "no message on stderr for secho %s" % " ".join(args))

    def test_client_usage_errors(self):
        for args in (["--port", "abc"], ["-p", "70000"], ["--bogus"], ["-P", "nope"],
                     ["-t", "sctp"], ["--timeout", "x"], ["extra-argument"]):
            with self.subTest(args=args):
                self.assert_usage_error("client", "-P", "plain", *args)

    def test_server_usage_errors(self):
        for args in (["--port", "abc"], ["--bogus"], ["-P", "nope"], ["-m", "forks"],
                     ["--allow-shutdown", "sometimes"], ["--max-conns", "-1"],
                     ["--threads", "0"], ["extra-argument"]):
            with self.subTest(args=args):
                self.assert_usage_error("server", "-P", "plain", "-p", "0", *args)

    def test_unknown_command(self):
        self.assert_usage_error("frobnicate")
        self.assert_usage_error()

    def test_help(self):
        for sub, opts in (("client", (b"--port", b"--timeout", b"--proto")),
                          ("server", (b"--port", b"--model", b"--max-conns", b"--allow-shutdown",
                                      b"--idle-timeout", b"--no-log-messages"))):
            with self.subTest(sub=sub):
                rc, out, err, _ = run_secho([sub, "--help"])
                self.assertEqual(rc, 0)
                for o in opts:
                    self.assertIn(o, out)
        rc, out, _, _ = run_secho(["--help"])
        self.assertEqual(rc, 0)
        self.assertIn(b"server", out)
        self.assertIn(b"client", out)

    def test_version(self):
        rc, out, err, _ = run_secho(["--version"])
        self.assertEqual(rc, 0)
        self.assertRegex(out.decode(), r"^secho \d+\.\d+")


if __name__ == "__main__":
    unittest.main()
