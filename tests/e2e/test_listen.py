# SPDX-License-Identifier: MIT
"""End-to-end: where the server listens (issue #8).

A port that anyone already holds is refused on every model and transport, with exactly
`secho: cannot listen on HOST:PORT: Address already in use` and exit status 1, and the holder
goes on serving: the reactors' SO_REUSEPORT group never joins a socket someone else bound,
whether that is another secho (of any model or protocol) or a foreign socket that set
SO_REUSEPORT or SO_REUSEADDR itself.

`-H NAME` listens on every address NAME resolves to, all on one port (also with -p 0), and
the readiness line names the IPv4 one. These tests need `localhost` to name both 127.0.0.1
and ::1: when this machine's /etc/hosts does not, and the tests may give the server a
private mount namespace (root), the server sees a hosts file of the test's own; otherwise
they are skipped, as they are when the machine has no IPv6 loopback."""

import base64
import ctypes
import errno
import os
import select
import shutil
import socket
import subprocess
import tempfile
import unittest

from harness import ALL_MODELS, BIN, HOST, PYTHON, SechoTest, T, TempHome, each_model, recv_exact

IN_USE = "Address already in use"


def refused_line(host_port):
    return "secho: cannot listen on %s: %s" % (host_port, IN_USE)


def run_server(home, *args, timeout=10.0, preexec_fn=None):
    """Runs a `secho server ARGS` that is expected to give up at once. Returns the completed
    process; one that printed a readiness line instead is killed and reaped at once and comes
    back with returncode None and that line as its stdout."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([BIN, "server", "-l", os.devnull] + list(args),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                                env=home.env(), preexec_fn=preexec_fn)
        try:
            # The first line, or EOF when it exits; a server that hangs fails the wait.
            r, _, _ = select.select([proc.stdout], [], [], T(timeout))
            out = proc.stdout.readline() if r else b""
            rc = proc.wait(timeout=T(timeout)) if not out else None
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, rc, out, err.read())


def udp_echo(sock, data):
    sock.send(data)
    return sock.recv(65536)


def open_socket(tc, family, socktype, host, port):
    """A connected socket (TCP or UDP) to host:port, closed by a cleanup."""
    s = socket.socket(family, socktype)
    tc.addCleanup(s.close)
    s.settimeout(T(5))
    s.connect((host, port))
    return s


# ---------------------------------------------------------------------------------------------
# A hosts file for the server alone

_LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000


def private_hosts(path):
    """A preexec_fn that gives the child a mount namespace of its own in which `path` is
    /etc/hosts (nothing outside the child sees it)."""

    def pre():
        if _LIBC.unshare(CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare")
        if _LIBC.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
        if _LIBC.mount(path.encode(), b"/etc/hosts", None, MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), "mount --bind")

    return pre


def resolves(name, preexec_fn=None):
    """The set of addresses `name` resolves to, as a child process started with preexec_fn
    sees them (None when such a child cannot be started)."""
    code = ("import socket, sys\n"
            "try:\n"
            "    print(' '.join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 1)})))\n"
            "except OSError:\n"
            "    print()\n")
    try:
        cp = subprocess.run([PYTHON, "-c", code, name], capture_output=True, timeout=T(10),
                            preexec_fn=preexec_fn)
    except (subprocess.SubprocessError, OSError):
        return None
    if cp.returncode != 0:
        return None
    return set(cp.stdout.decode().split())


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        s.bind(("::1", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


class _Hosts:
    """Decides once how a server gets names that resolve as the tests need."""

    checked = False
    dir = None
    usable = False  # a private hosts file can be given to the server

    @classmethod
    def setup(cls):
        if cls.checked:
            return
        cls.checked = True
        cls.dir = tempfile.mkdtemp(prefix="secho-e2e-hosts-")
        path = os.path.join(cls.dir, "hosts")
        with open(path, "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost\n"
                    "127.0.0.1 secho-partly.test\n2001:db8::5ec0 secho-partly.test\n")
        got = resolves("secho-partly.test", private_hosts(path))
        cls.usable = got == {"127.0.0.1", "2001:db8::5ec0"}
        cls.path = path

    @classmethod
    def preexec(cls):
        return private_hosts(cls.path) if cls.usable else None


def tearDownModule():
    if _Hosts.dir:
        shutil.rmtree(_Hosts.dir, ignore_errors=True)


def localhost_preexec(tc):
    """The preexec_fn under which `localhost` names both 127.0.0.1 and ::1 for the server
    (None: it does so already), or skips the test."""
    if not have_ipv6_loopback():
        tc.skipTest("no IPv6 loopback on this machine")
    if {"127.0.0.1", "::1"} <= (resolves("localhost") or set()):
        return None
    _Hosts.setup()
    if not _Hosts.usable:
        tc.skipTest("localhost does not name ::1 here, and the server cannot be given a hosts "
                    "file of its own (needs root)")
    return _Hosts.preexec()


# ---------------------------------------------------------------------------------------------
# A held port

SOCKTYPE = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}


@each_model
class HeldPort:
    """A secho server of this model holds the port; a second one of any model or protocol,
    on the same transport, is refused; the first one still serves."""

    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def assert_refused(self, cp, port, host_port=None):
        err = cp.stderr.decode("utf-8", "replace")
        lines = err.splitlines()
        want = refused_line(host_port or "%s:%d" % (HOST, port))
        self.assertEqual(cp.returncode, 1, err)
        self.assertEqual(cp.stdout, b"", "a refused server printed a readiness line")
        self.assertTrue(lines and lines[-1] == want, "stderr %r does not end with %r"
                        % (err, want))

    def serves(self, srv, proto, transport):
        if proto == "plain":
            s = open_socket(self, socket.AF_INET, SOCKTYPE[transport], HOST, srv.port)
            if transport == "udp":
                self.assertEqual(udp_echo(s, b"still here"), b"still here")
            else:
                s.sendall(b"still here\n")
                self.assertEqual(recv_exact(s, 11), b"still here\n")
            return
        pin = base64.b64encode(srv.public_key()).decode()
        cp = subprocess.run([BIN, "client", "-H", HOST, "-p", str(srv.port), "-t", transport,
                             "--server-key", pin], input=b"still here\nexit\n",
                            capture_output=True, env=self.home.env(), timeout=T(20))
        self.assertEqual((cp.returncode, cp.stdout), (0, b"still here\nexit\n"), cp.stderr)

    def check(self, transport, proto):
        srv = self.start_server(proto=proto, transport=transport, home=self.home)
        for model in ALL_MODELS:
            for proto2 in ("plain", "secure"):
                with self.subTest(second_model=model, second_proto=proto2):
                    key = self.home.file("second-%s.key" % model)
                    extra = ["-k", key] if proto2 == "secure" else []
                    cp = run_server(self.home, "-H", HOST, "-p", str(srv.port), "-m", model,
                                    "-P", proto2, "-t", transport, *extra)
                    self.assert_refused(cp, srv.port)
        self.assertTrue(srv.alive())
        self.serves(srv, proto, transport)

    def test_tcp_plain_holder(self):
        self.check("tcp", "plain")

    def test_tcp_secure_holder(self):
        self.check("tcp", "secure")

    def test_udp_plain_holder(self):
        self.check("udp", "plain")

    def test_udp_secure_holder(self):
        self.check("udp", "secure")


class ForeignHolder(SechoTest):
    """A socket of another program holds the port, asking itself to share it (SO_REUSEPORT,
    or SO_REUSEADDR, which lets UDP sockets share a port): secho never joins it."""

    def hold(self, transport, reuseaddr, reuseport):
        s = socket.socket(socket.AF_INET, SOCKTYPE[transport])
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, reuseaddr)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, reuseport)
        s.bind((HOST, 0))
        if transport == "tcp":
            s.listen(16)
        return s, s.getsockname()[1]

    def test_refused_on_every_model(self):
        home = TempHome()
        self.addCleanup(home.cleanup)
        for transport in ("tcp", "udp"):
            for reuseaddr, reuseport in ((0, 0), (1, 0), (0, 1), (1, 1)):
                holder, port = self.hold(transport, reuseaddr, reuseport)
                for model in ALL_MODELS:
                    with self.subTest(transport=transport, reuseaddr=reuseaddr,
                                      reuseport=reuseport, model=model):
                        cp = run_server(home, "-H", HOST, "-p", str(port), "-m", model,
                                        "-P", "plain", "-t", transport)
                        self.assertEqual(cp.returncode, 1, cp.stderr)
                        self.assertEqual(cp.stdout, b"")
                        self.assertEqual(cp.stderr.decode().splitlines(),
                                         [refused_line("%s:%d" % (HOST, port))])
                # The holder still gets what is sent to the port: nobody joined it.
                c = open_socket(self, socket.AF_INET, SOCKTYPE[transport], HOST, port)
                if transport == "tcp":
                    holder.settimeout(T(5))
                    conn, _ = holder.accept()
                    conn.close()
                else:
                    c.send(b"x")
                    holder.settimeout(T(5))
                    self.assertEqual(holder.recv(16), b"x")


# ---------------------------------------------------------------------------------------------
# Every address of a name

@each_model
class EveryAddress:
    """`-H localhost` serves 127.0.0.1 and ::1 on one port, the readiness line naming the
    IPv4 address."""

    def start_localhost(self, transport, *args, host="localhost"):
        pre = localhost_preexec(self)
        return self.start_server(*args, proto="plain", transport=transport, host=host,
                                 preexec_fn=pre)

    def check(self, transport):
        srv = self.start_localhost(transport)
        self.assertEqual(srv.ready_line, "listening on 127.0.0.1:%d" % srv.port)
        recs = srv.log.wait_for(event="listening", count=2)
        # -p 0: the one port the first address got is the port of every address.
        self.assertEqual(sorted(r["addr"] for r in recs),
                         sorted(["127.0.0.1:%d" % srv.port, "[::1]:%d" % srv.port]))
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            s = open_socket(self, family, SOCKTYPE[transport], host, srv.port)
            msg = ("via %s\n" % host).encode()
            if transport == "udp":
                self.assertEqual(udp_echo(s, msg), msg)
            else:
                s.sendall(msg)
                self.assertEqual(recv_exact(s, len(msg)), msg)

    def test_tcp_on_every_address(self):
        self.check("tcp")

    def test_udp_on_every_address(self):
        self.check("udp")

    def test_client_reaches_ipv6(self):
        """The issue's case: `secho client -H ::1` reaches a server started with -H localhost."""
        srv = self.start_localhost("tcp")
        home = TempHome()
        self.addCleanup(home.cleanup)
        cp = subprocess.run([BIN, "client", "-P", "plain", "-H", "::1", "-p", str(srv.port)],
                            input=b"hello\n", capture_output=True, env=home.env(),
                            timeout=T(20))
        self.assertEqual((cp.returncode, cp.stdout), (0, b"hello\n"), cp.stderr)
        recs = srv.log.wait_for(event="connect")
        self.assertTrue(recs[0]["peer"].startswith("[::1]:"), recs[0])

    def test_port_held_on_second_address(self):
        """A fixed port free on 127.0.0.1 but held on ::1 is refused, naming [::1]."""
        pre = localhost_preexec(self)
        for transport in ("tcp", "udp"):
            with self.subTest(transport=transport):
                holder = socket.socket(socket.AF_INET6, SOCKTYPE[transport])
                self.addCleanup(holder.close)
                holder.bind(("::1", 0))
                if transport == "tcp":
                    holder.listen(4)
                port = holder.getsockname()[1]
                probe = socket.socket(socket.AF_INET, SOCKTYPE[transport])
                try:
                    probe.bind((HOST, port))
                except OSError as e:
                    if e.errno == errno.EADDRINUSE:
                        continue  # taken on IPv4 too: this case cannot be built here now
                    raise
                finally:
                    probe.close()
                home = TempHome()
                self.addCleanup(home.cleanup)
                cp = run_server(home, "-H", "localhost", "-p", str(port), "-m", self.MODEL,
                                "-P", "plain", "-t", transport, preexec_fn=pre)
                self.assertEqual(cp.returncode, 1, cp.stderr)
                self.assertEqual(cp.stdout, b"")
                self.assertEqual(cp.stderr.decode().splitlines(),
                                 [refused_line("[::1]:%d" % port)])


class UnavailableAddress(SechoTest):
    """An address of the name that this machine cannot serve (as ::1 is without IPv6) is
    skipped with a logged warning; the others are served."""

    def setUp(self):
        _Hosts.setup()
        if not _Hosts.usable:
            self.skipTest("the server cannot be given a hosts file of its own (needs root)")

    def test_skipped_with_a_warning(self):
        srv = self.start_server("-P", "plain", host="secho-partly.test",
                                preexec_fn=_Hosts.preexec())
        self.assertEqual(srv.ready_line, "listening on 127.0.0.1:%d" % srv.port)
        rec = srv.log.wait_for(event="error", action="skip_address")[0]
        self.assertEqual(rec["level"], "warn")
        self.assertEqual(rec["addr"], "[2001:db8::5ec0]:%d" % srv.port)
        s = open_socket(self, socket.AF_INET, socket.SOCK_STREAM, HOST, srv.port)
        s.sendall(b"ok\n")
        self.assertEqual(recv_exact(s, 3), b"ok\n")
        s.close()
        srv.stop()  # the whole log is written by now
        self.assertEqual([r["addr"] for r in srv.log.find(event="listening")],
                         ["127.0.0.1:%d" % srv.port])


class NothingToServe(SechoTest):
    def test_unavailable_only_address_is_fatal(self):
        """With no address left to serve, the skip becomes the error."""
        home = TempHome()
        self.addCleanup(home.cleanup)
        cp = run_server(home, "-H", "2001:db8::5ec0", "-p", "0", "-P", "plain")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertEqual(cp.stdout, b"")
        self.assertRegex(cp.stderr.decode(), r"^secho: cannot listen on \[2001:db8::5ec0\]:0: ")


if __name__ == "__main__":
    unittest.main()
