# SPDX-License-Identifier: MIT
"""End-to-end: socket activation without libsystemd (issue #11). The server takes the
sockets a service manager passes (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) instead of
binding, on every model, TCP and UDP; one named "metrics" serves --metrics.

Driven by Debian's systemd-socket-activate, which needs no running systemd: it binds the
sockets, waits for the first client and then execs the server with them. It needs fixed
ports: each is picked by binding port 0 and letting go, and the whole start is tried again
if someone took one meanwhile. Cases systemd-socket-activate cannot produce (a socket meant
for another process, a listener the test keeps across two servers) pass the socket
directly, through a shell that sets LISTEN_PID to its own pid and execs the server."""

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import prometheus
from harness import (BIN, HOST, SANITIZER, SANITIZER_REPORT, MODELS, SechoTest, ServerLog, T,
                     TempHome, each_model, echo_roundtrip, recv_until_closed, wait_until)

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Activated:
    """A server started with inherited sockets. `cmd` is run with stdout piped (the
    readiness line), stderr to a file, in a session of its own; stop() SIGTERMs it and
    checks it exits 0 having logged event=stop; close() kills and reaps it by PID."""

    def __init__(self, cmd, tmpdir, env=None, preexec_fn=None, close_fds=True):
        self.tmpdir = tmpdir
        self.log = ServerLog(os.path.join(tmpdir, "server.log"))
        self.stderr_path = os.path.join(tmpdir, "stderr")
        self.home = TempHome()
        e = self.home.env()
        e.update(env or {})
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, env=e, start_new_session=True,
                                         preexec_fn=preexec_fn, close_fds=close_fds)
        self.pid = self.proc.pid
        self.buf = b""
        self.stopped = False

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_stderr(self, regex, timeout=10):
        """Waits for `regex` in stderr; returns the match, or None if the process ended."""
        def found():
            m = re.search(regex, self.stderr_text())
            if m:
                return m
            if self.proc.poll() is not None:
                return "gone"
            return None
        m = wait_until(found, timeout=timeout, what="%r on stderr" % regex)
        return None if m == "gone" else m

    def readiness(self, timeout=10):
        """The readiness line (the first stdout line), waiting for it."""
        end = time.monotonic() + T(timeout)
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no readiness line; stderr:\n" + self.stderr_text())
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError("exited %s before it was ready; stderr:\n%s"
                                         % (self.proc.wait(), self.stderr_text()))
                self.buf += chunk
        return self.buf.split(b"\n", 1)[0].decode()

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=T(5))
            if rc != 0:
                raise AssertionError("exited %s after SIGTERM; stderr:\n%s"
                                     % (rc, self.stderr_text()))
            self.log.wait_for(event="stop", timeout=5)
        if SANITIZER_REPORT.search(self.stderr_text().encode()):
            raise AssertionError("sanitizer report:\n" + self.stderr_text())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.home.cleanup()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def finish(self):
        try:
            self.stop()
        finally:
            self.close()


class ActivationHelpers:
    """Mixed into the test classes (a plain class, as @each_model wants)."""

    def server_args(self, tmpdir, *args):
        cmd = [BIN, "server", "-l", os.path.join(tmpdir, "server.log"), "-P", "plain"]
        if self.MODEL:
            cmd += ["-m", self.MODEL]
        return cmd + list(args)

    def activate(self, *args, listen=1, datagram=False, names=None, ok=True):
        """Starts systemd-socket-activate on `listen` free loopback ports with the server
        ARGS; returns (Activated, [ports]) once every socket is bound (the server itself
        starts on the first client)."""
        if not SOCKET_ACTIVATE:
            self.skipTest("systemd-socket-activate is not installed (Debian: systemd)")
        kind = socket.SOCK_DGRAM if datagram else socket.SOCK_STREAM
        for attempt in range(10):
            tmpdir = tempfile.mkdtemp(prefix="secho-e2e-act-")
            ports = [free_port(kind) for _ in range(listen)]
            cmd = [SOCKET_ACTIVATE] + (["--datagram"] if datagram else [])
            for p in ports:
                cmd += ["-l", "%s:%d" % (HOST, p)]
            if names:
                cmd += ["--fdname=" + ":".join(names)]
            cmd += self.server_args(tmpdir, *args)
            a = Activated(cmd, tmpdir)
            last = ports[-1]
            if a.wait_stderr(r"Listening on %s:%d as \d+\." % (re.escape(HOST), last)):
                self.addCleanup(a.finish if ok else a.close)
                return a, ports
            text = a.stderr_text()
            a.close()
            if "Address already in use" not in text:
                raise AssertionError("systemd-socket-activate failed:\n" + text)
        raise AssertionError("no free ports after 10 tries")

    def tcp(self, port):
        s = socket.create_connection((HOST, port), timeout=T(5))
        self.addCleanup(s.close)
        return s

    def udp(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(s.close)
        s.settimeout(T(5))
        s.connect((HOST, port))
        return s


@each_model
class ActivatedTcp(ActivationHelpers):
    def test_serves_the_inherited_listener(self):
        srv, (port,) = self.activate(names=["echo"])
        first = self.tcp(port)  # the first client starts the server
        first.sendall(b"first\n")
        self.assertEqual(srv.readiness(), "listening on 127.0.0.1:%d" % port)
        self.assertEqual(recv_exact(first, 6), b"first\n")
        rec = srv.log.wait_for(event="listening", transport="tcp")[0]
        self.assertEqual((rec["addr"], rec["fdname"], rec["model"]),
                         ("127.0.0.1:%d" % port, "echo", self.MODEL))
        socks = [self.tcp(port) for _ in range(8)]
        for i, s in enumerate(socks):
            data = b"client %d\n" % i * 100
            self.assertEqual(echo_roundtrip(s, data), data)
        for s in socks:
            s.close()
        srv.log.wait_for(event="disconnect", count=8)
        self.assertEqual(len(srv.log.find(event="connect")), 9)

    def test_metrics_socket_by_name(self):
        srv, (port, mport) = self.activate("--stats", "0.2", listen=2, names=["echo", "metrics"])
        s = self.tcp(port)
        s.sendall(b"hello\n")
        srv.readiness()
        self.assertEqual(recv_exact(s, 6), b"hello\n")
        rec = srv.log.wait_for(event="listening", service="metrics")[0]
        self.assertEqual((rec["addr"], rec["fdname"]), ("127.0.0.1:%d" % mport, "metrics"))

        def one_message():
            expo = prometheus.scrape(mport)
            return expo.total("secho_messages_total") == 1
        wait_until(one_message, timeout=10, what="the message counted on the metrics socket")
        # The metrics socket serves no echo, and the echo socket no metrics.
        srv.log.wait_for(event="listening", transport="tcp", proto="plain")
        self.assertEqual(len(srv.log.find(event="listening", transport="tcp", proto="plain")), 1)

    def test_datagram_socket_for_a_tcp_server_exits_1(self):
        srv, (port,) = self.activate(datagram=True, ok=False)
        self.udp(port).send(b"start")
        self.assertEqual(srv.proc.wait(timeout=T(10)), 1)
        self.assertIn("inherited socket 3: a datagram socket, but this server serves tcp",
                      srv.stderr_text())
        self.assertEqual(srv.buf, b"")


@each_model
class ActivatedUdp(ActivationHelpers):
    def test_serves_the_inherited_socket(self):
        srv, (port,) = self.activate("-t", "udp", datagram=True)
        s = self.udp(port)
        s.send(b"first")  # starts the server, and is served once it runs
        self.assertEqual(srv.readiness(), "listening on 127.0.0.1:%d" % port)
        self.assertEqual(s.recv(100), b"first")
        for i in range(5):
            s.send(b"dgram %d" % i)
            self.assertEqual(s.recv(100), b"dgram %d" % i)
        rec = srv.log.wait_for(event="listening", transport="udp")[0]
        self.assertEqual(rec["addr"], "127.0.0.1:%d" % port)
        srv.log.wait_for(event="message", count=6)

    def test_each_socket_has_one_worker(self):
        # Two inherited UDP sockets: with -m reactors each gets a reactor of its own, and
        # there are no more reactors than sockets, whatever --threads says.
        extra = ("--threads", "4") if self.MODEL == "reactors" else ()
        srv, ports = self.activate("-t", "udp", "--stats", "0.2", *extra, listen=2,
                                   datagram=True)
        a, b = self.udp(ports[0]), self.udp(ports[1])
        a.send(b"to a")
        srv.readiness()
        self.assertEqual(a.recv(100), b"to a")
        b.send(b"to b")
        self.assertEqual(b.recv(100), b"to b")
        want = "2" if self.MODEL == "reactors" else "1"
        rec = srv.log.wait_for(event="stats", pred=lambda r: r["msgs"] == "2")[0]
        self.assertEqual(rec["workers"], want)
        if self.MODEL == "reactors":
            per = srv.log.wait_for(event="stats_worker", count=2,
                                   pred=lambda r: r["msgs"] == "1")
            self.assertEqual({r["worker"] for r in per[-2:]}, {"0", "1"})


class ActivatedReactorsShareTcp(ActivationHelpers, SechoTest):
    MODEL = "reactors"

    def test_every_reactor_accepts_from_the_one_listener(self):
        srv, (port,) = self.activate("--threads", "3", "--stats", "0.2")
        s = self.tcp(port)
        s.sendall(b"x\n")
        srv.readiness()
        recv_exact(s, 2)
        # Three descriptors of one listener, one per reactor.
        srv.log.wait_for(event="listening", proto="plain")
        self.assertEqual(len(srv.log.find(event="listening", proto="plain")), 1)
        socks = [self.tcp(port) for _ in range(30)]
        for i, c in enumerate(socks):
            self.assertEqual(echo_roundtrip(c, b"%d\n" % i), b"%d\n" % i)
        rec = srv.log.wait_for(event="stats", pred=lambda r: r["conns"] == "31")[0]
        self.assertEqual(rec["workers"], "3")


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise AssertionError("closed after %r" % data)
        data += chunk
    return data


class Passed(SechoTest):
    """The listener is the test's own, passed as descriptor 3 through `sh`, which sets
    LISTEN_PID=$$ (its pid, which exec keeps) for the server it becomes."""

    def start(self, lsock, *args, pid="$$", names="echo"):
        tmpdir = tempfile.mkdtemp(prefix="secho-e2e-pass-")
        server = [BIN, "server", "-l", os.path.join(tmpdir, "server.log"), "-P", "plain",
                  "-p", "0"] + list(args)
        cmd = ["sh", "-c", 'LISTEN_PID=%s exec "$@"' % pid, "sh"] + server
        fd = lsock.fileno()

        def to_fd3():  # in the child, before exec: the listener at 3, inherited
            if fd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(fd, 3)
        srv = Activated(cmd, tmpdir, env={"LISTEN_FDS": "1", "LISTEN_FDNAMES": names},
                        preexec_fn=to_fd3, close_fds=False)
        self.addCleanup(srv.finish)
        return srv

    def listener(self):
        s = socket.socket()
        self.addCleanup(s.close)
        s.bind((HOST, 0))
        s.listen(16)
        return s, s.getsockname()[1]

    def test_sockets_meant_for_another_process_are_ignored(self):
        lsock, port = self.listener()
        srv = self.start(lsock, pid="1")
        line = srv.readiness()
        own = int(line.rsplit(":", 1)[1])
        self.assertNotEqual(own, port)  # it bound -p 0 itself
        s = self.tcp_to(own)
        self.assertEqual(echo_roundtrip(s, b"own\n"), b"own\n")

    def test_a_restart_loses_no_connection(self):
        # As systemd does: the listener outlives each server; a client that connects while
        # no server runs waits in the backlog and is served by the next one.
        lsock, port = self.listener()
        first = self.start(lsock)
        first.readiness()
        a = self.tcp_to(port)
        self.assertEqual(echo_roundtrip(a, b"one\n"), b"one\n")
        a.close()
        first.stop()
        waiting = self.tcp_to(port)  # no server now: queued by the kernel
        waiting.sendall(b"queued\n")
        second = self.start(lsock)
        second.readiness()
        self.assertEqual(recv_exact(waiting, 7), b"queued\n")

    def tcp_to(self, port):
        s = socket.create_connection((HOST, port), timeout=T(5))
        self.addCleanup(s.close)
        return s


if __name__ == "__main__":
    unittest.main()
