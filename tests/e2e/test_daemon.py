# SPDX-License-Identifier: MIT
"""End-to-end: what a service manager expects of the server (issue #11): --pid-file
(written once listening, locked, removed at exit), the journal-aware log on stderr
(JOURNAL_STREAM: "<N>" priorities instead of time stamps), and sd_notify's READY=1 and
STOPPING=1 on $NOTIFY_SOCKET."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import (BIN, HOST, SechoTest, Server, T, TempHome, each_model, echo_roundtrip,
                     parse_logfmt, wait_until)


class EnvHome(TempHome):
    """A TempHome whose environment carries extra variables for the server."""

    def __init__(self, **extra):
        super().__init__()
        self.extra = extra

    def env(self):
        env = super().env()
        env.update(self.extra)
        return env


@each_model
class PidFile:
    PROTO = "plain"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="secho-e2e-pid-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "secho.pid")

    def test_written_when_ready_and_removed_at_exit(self):
        srv = self.start_server("--pid-file", self.path)
        # The readiness line came: the file already names the server.
        with open(self.path) as f:
            self.assertEqual(f.read(), "%d\n" % srv.pid)
        srv.stop()  # SIGTERM, exit 0
        self.assertFalse(os.path.exists(self.path))

    def test_a_second_server_is_refused_while_the_first_runs(self):
        srv = self.start_server("--pid-file", self.path)
        out = subprocess.run([BIN, "server", "-P", "plain", "-p", "0", "-l", os.devnull,
                              "--pid-file", self.path], capture_output=True, timeout=T(10))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"in use by process %d" % srv.pid, out.stderr)
        self.assertNotIn(b"listening on", out.stdout)
        # ...and the first one's file is untouched.
        with open(self.path) as f:
            self.assertEqual(f.read(), "%d\n" % srv.pid)
        s = self.connect(srv)
        self.assertEqual(echo_roundtrip(s, b"still here\n"), b"still here\n")

    def test_stale_file_is_taken_over_and_shutdown_removes_it(self):
        with open(self.path, "w") as f:
            f.write("999999999\n")  # a server that died without cleaning up
        srv = self.start_server("--pid-file", self.path)
        with open(self.path) as f:
            self.assertEqual(f.read(), "%d\n" % srv.pid)
        s = self.connect(srv)
        self.assertEqual(echo_roundtrip(s, b"shutdown\n"), b"shutdown\n")
        self.assertEqual(srv.wait_exit(T(5)), 0)
        self.assertFalse(os.path.exists(self.path))

    def test_symlink_is_refused(self):
        os.symlink(os.path.join(self.dir, "elsewhere"), self.path)
        out = subprocess.run([BIN, "server", "-P", "plain", "-p", "0", "--pid-file", self.path],
                             capture_output=True, timeout=T(10))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"symbolic link", out.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "elsewhere")))


class Journal(SechoTest):
    """Stderr is a file standing in for the journal's stream; JOURNAL_STREAM names it (or
    not)."""

    def start(self, journal):
        tmpdir = tempfile.mkdtemp(prefix="secho-e2e-journal-")
        stderr = os.path.join(tmpdir, "stderr")
        open(stderr, "wb").close()  # Server reopens it with "wb": the same inode
        st = os.stat(stderr)
        stream = "%d:%d" % (st.st_dev, st.st_ino) if journal else "%d:%d" % (st.st_dev,
                                                                             st.st_ino + 1)
        home = EnvHome(JOURNAL_STREAM=stream)
        srv = Server([BIN, "server", "-P", "plain", "-H", HOST, "-p", "0", "-l", "-",
                      "--allow-shutdown", "none"], tmpdir, home=home)
        self.addCleanup(home.cleanup)
        self.addCleanup(srv.finish)
        return srv

    def lines(self, srv, want):
        def ok():
            ls = [l for l in srv.stderr_text().split("\n") if l]
            return ls if any("event=%s" % want in l for l in ls) else None
        return wait_until(ok, timeout=10, what="event=%s on stderr" % want)

    def test_journal_lines_have_priorities_and_no_time_stamps(self):
        srv = self.start(journal=True)
        s = socket.create_connection((HOST, srv.port))
        self.addCleanup(s.close)
        s.sendall(b"hello\n")
        self.assertEqual(s.recv(100), b"hello\n")
        s.close()
        lines = self.lines(srv, "disconnect")
        for line in lines:
            m = re.fullmatch(r"<([0-7])>(.*)", line)
            self.assertTrue(m, "no priority prefix: %r" % line)
            rec = parse_logfmt(m.group(2))
            self.assertNotIn("ts", rec)
            self.assertEqual(m.group(1), {"debug": "7", "info": "6", "warn": "4",
                                          "error": "3"}[rec["level"]])
        events = [parse_logfmt(l[3:])["event"] for l in lines]
        self.assertIn("listening", events)
        self.assertIn("message", events)
        # A warning gets <4>: a refused shutdown is one.
        s = socket.create_connection((HOST, srv.port))
        self.addCleanup(s.close)
        s.sendall(b"shutdown\n")
        lines = self.lines(srv, "denied")
        self.assertTrue(any(l.startswith("<4>level=warn event=denied") for l in lines), lines)
        srv.signal(signal.SIGHUP)  # reopen: stderr has nothing to reopen, still logged
        lines = self.lines(srv, "reopen")
        self.assertTrue(any(l.startswith("<6>level=info event=reopen") for l in lines), lines)

    def test_another_stream_is_not_the_journal(self):
        srv = self.start(journal=False)
        lines = self.lines(srv, "listening")
        for line in lines:
            self.assertTrue(line.startswith("ts="), line)


class Notify(SechoTest):
    """$NOTIFY_SOCKET: READY=1 once listening (after the readiness line is printed),
    STOPPING=1 when it shuts down."""

    def socket_at(self, abstract):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        if abstract:
            name = "@secho-e2e-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
            s.bind("\0" + name[1:])
        else:
            d = tempfile.mkdtemp(prefix="secho-e2e-notify-")
            name = os.path.join(d, "notify")
            s.bind(name)
            self.addCleanup(os.rmdir, d)
            self.addCleanup(os.unlink, name)
        s.settimeout(T(10))
        return s, name

    def check(self, abstract):
        sock, name = self.socket_at(abstract)
        home = EnvHome(NOTIFY_SOCKET=name)
        self.addCleanup(home.cleanup)
        srv = self.start_server("-P", "plain", home=home)
        msg = sock.recv(4096).decode()
        self.assertEqual(msg, "READY=1\nSTATUS=listening on 127.0.0.1:%d" % srv.port)
        srv.stop()
        self.assertEqual(sock.recv(4096), b"STOPPING=1")

    def test_path(self):
        self.check(abstract=False)

    def test_abstract(self):
        self.check(abstract=True)


if __name__ == "__main__":
    unittest.main()
