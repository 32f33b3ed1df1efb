# SPDX-License-Identifier: MIT
"""End-to-end: behind a load balancer (issue #11): --proxy-protocol with --trusted-proxy.

On the wire, with raw sockets, on every model: PROXY v1 and v2 headers (a v2 one with TLVs,
sent in pieces), LOCAL, a trusted peer without a header, garbage and a header too late are
refused and logged while the server keeps serving; an untrusted peer is served as it is
unless it sends a header. Every protocol on every model, through a relay of the test's own
that opens each connection with a header (as HAProxy's send-proxy does), with the real
`secho client`. Then Debian's haproxy, started by the test on loopback with its own config,
in front of two plain and two secure servers: both backends of each pair serve traffic and
log the real client, and stopping one (the `shutdown` command, SIGTERM) leaves the service
answering through the other."""

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (BIN, HOST, SechoTest, T, TempHome, assert_closed_by_server, each_model,
                     peer_of, recv_exact, recv_until_closed, run_client, wait_until)

TRUST = ("--proxy-protocol", "--trusted-proxy", "127.0.0.1/32")
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
CLIENT_IP = "203.0.113.7"  # what the headers of the relay say (TEST-NET-3, never this host)


def v1_header(src, dst):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src[0], dst[0], src[1], dst[1])).encode()


def v2_header(src, dst, tlvs=b"", command=0x21):
    body = (socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) +
            struct.pack("!HH", src[1], dst[1]) + tlvs)
    return V2_SIG + bytes([command, 0x11]) + struct.pack("!H", len(body)) + body


# A few TLVs as HAProxy may send them: ALPN, a NOOP of length 0, a unique id, a custom one.
TLVS = (b"\x01\x00\x02h2" + b"\x04\x00\x00" + b"\x05\x00\x08" + b"id-12345" +
        b"\xe0\x00\x03abc")


def connect_records(srv, peer):
    return srv.log.find(event="connect", peer=peer)


class ProxyRelay:
    """A TCP relay on 127.0.0.1 that opens each connection it passes to the backend with a
    PROXY header naming the client as CLIENT_IP with the client's own port (as HAProxy's
    send-proxy would name the real client), optionally in pieces of `piece` bytes, then
    copies bytes both ways, passing each half-close on, until both directions are done.
    Closed (its threads told to stop and joined) by a cleanup of the test."""

    def __init__(self, tc, backend_port, version=2, piece=None):
        self.backend = (HOST, backend_port)
        self.version = version
        self.piece = piece
        self.outgoing = {}  # client port -> the relay's own port toward the backend
        self.stop = threading.Event()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()
        tc.addCleanup(self.close)

    def close(self):
        self.stop.set()
        for t in list(self.threads):
            t.join(T(10))
        self.lsock.close()

    def _accept(self):
        while not self.stop.is_set():
            r, _, _ = select.select([self.lsock], [], [], 0.05)
            if not r:
                continue
            c, addr = self.lsock.accept()
            t = threading.Thread(target=self._serve, args=(c, addr), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, c, addr):
        try:
            b = socket.create_connection(self.backend, timeout=T(5))
        except OSError:
            c.close()
            return
        b.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.outgoing[addr[1]] = b.getsockname()[1]
        src = (CLIENT_IP, addr[1])
        hdr = v2_header(src, self.backend, TLVS) if self.version == 2 else v1_header(src, self.backend)
        step = self.piece or len(hdr)
        try:
            for i in range(0, len(hdr), step):
                b.sendall(hdr[i:i + step])
                if self.piece:
                    time.sleep(0.002)  # makes separate reads likely; correct either way
            self._pump(c, b)
        except OSError:
            pass
        finally:
            c.close()
            b.close()

    def _pump(self, c, b):
        peer = {c: b, b: c}
        open_from = {c, b}
        while open_from and not self.stop.is_set():
            r, _, _ = select.select(list(open_from), [], [], 0.05)
            for s in r:
                data = s.recv(65536)
                if data:
                    peer[s].sendall(data)
                else:
                    open_from.discard(s)
                    try:
                        peer[s].shutdown(socket.SHUT_WR)
                    except OSError:
                        pass


# ---------------------------------------------------------------------------------------------
# The wire, raw sockets, plain

@each_model
class ProxyWire:
    PROTO = "plain"

    def setUp(self):
        self.srv = self.start_server(*TRUST)

    def proxied(self, header, payload=b"hello\n", piece=None):
        """A trusted connection opening with `header`; returns it once `payload` echoed."""
        s = self.connect(self.srv)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = header + payload
        step = piece or len(data)
        for i in range(0, len(data), step):
            s.sendall(data[i:i + step])
            if piece:
                time.sleep(0.002)  # makes separate reads likely; correct either way
        self.assertEqual(recv_exact(s, len(payload)), payload)
        return s

    def test_v1(self):
        s = self.proxied(v1_header(("192.0.2.44", 51000), ("192.0.2.1", 9090)))
        rec = self.srv.log.wait_for(event="connect", peer="192.0.2.44:51000")[0]
        self.assertEqual(rec["proxy"], peer_of(s))
        self.srv.log.wait_for(event="message", peer="192.0.2.44:51000", text="hello")
        s.sendall(b"exit\n")
        self.assertEqual(assert_closed_by_server(s), b"exit\n")
        self.srv.log.wait_for(event="disconnect", peer="192.0.2.44:51000", reason="exit")

    def test_v2_with_tlvs_in_pieces(self):
        s = self.proxied(v2_header(("198.51.100.9", 4242), ("192.0.2.1", 9090), TLVS),
                         b"split header\n", piece=3)
        rec = self.srv.log.wait_for(event="connect", peer="198.51.100.9:4242")[0]
        self.assertEqual(rec["proxy"], peer_of(s))
        self.srv.log.wait_for(event="message", peer="198.51.100.9:4242", text="split header")

    def test_v1_split_byte_by_byte(self):
        self.proxied(v1_header(("192.0.2.45", 1), ("192.0.2.1", 2)), b"x\n", piece=1)
        self.srv.log.wait_for(event="connect", peer="192.0.2.45:1")

    def test_local_keeps_the_proxy_as_peer(self):
        s = self.proxied(V2_SIG + b"\x20\x00\x00\x00")
        rec = self.srv.log.wait_for(event="connect", peer=peer_of(s))[0]
        self.assertEqual(rec["proxy"], peer_of(s))

    def refused(self, data, error):
        s = self.connect(self.srv)
        s.sendall(data)
        got, _ = recv_until_closed(s)
        self.assertEqual(got, b"")
        rec = self.srv.log.wait_for(event="denied", peer=peer_of(s), reason="proxy_header")[0]
        self.assertEqual(rec["level"], "warn")
        self.assertEqual(rec["error"], error)
        self.assertEqual(connect_records(self.srv, peer_of(s)), [])
        return s

    def still_serves(self):
        self.proxied(v1_header(("192.0.2.99", 7), ("192.0.2.1", 9090)), b"still here\n")
        self.srv.log.wait_for(event="connect", peer="192.0.2.99:7")

    def test_trusted_without_header_refused(self):
        self.refused(b"hello\n", "not a PROXY protocol header")
        self.still_serves()

    def test_garbage_refused(self):
        self.refused(b"\x16\x03\x01\x02\x00" + os.urandom(200), "not a PROXY protocol header")
        self.refused(V2_SIG + b"\x21\x11\x00\x05abcde", "PROXY v2 header too short for its addresses")
        self.refused(V2_SIG + b"\x21\x11\x00\x10" + b"\x00" * 12 + b"\x01\x00\x09x",
                     "PROXY v2 TLV runs past the header")
        self.refused(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "malformed PROXY v1 line")
        self.refused(b"PROXY UNKNOWN " + b"f" * 120 + b"\r\n", "PROXY v1 line longer than 107 bytes")
        self.still_serves()


@each_model
class ProxyTimeout:
    PROTO = "plain"

    def test_header_must_arrive_within_handshake_timeout(self):
        srv = self.start_server(*TRUST, "--handshake-timeout", "1")
        silent = self.connect(srv)
        partial = self.connect(srv)
        partial.sendall(b"PROXY TCP4 192.0.2.1 ")
        start = time.monotonic()
        for s in (silent, partial):
            self.assertEqual(recv_until_closed(s, timeout=5)[0], b"")
            rec = srv.log.wait_for(event="denied", peer=peer_of(s), reason="proxy_header")[0]
            self.assertEqual(rec["error"], "no PROXY header within the handshake timeout")
        self.assertGreaterEqual(time.monotonic() - start, 0.9)


@each_model
class ProxyUntrusted:
    """127.0.0.1 is not a trusted proxy here: it is served as it is, unless it sends a header."""
    PROTO = "plain"

    def setUp(self):
        self.srv = self.start_server("--proxy-protocol", "--trusted-proxy", "10.0.0.0/8",
                                     "192.0.2.0/24,2001:db8::/32")

    def test_direct_client_served(self):
        s = self.connect(self.srv)
        s.sendall(b"hello\n")
        self.assertEqual(recv_exact(s, 6), b"hello\n")
        rec = self.srv.log.wait_for(event="connect", peer=peer_of(s))[0]
        self.assertNotIn("proxy", rec)
        # A line that only starts like the signature waits for the byte that tells, then goes.
        s.sendall(b"PROX")
        s.sendall(b"IMA\n")
        self.assertEqual(recv_exact(s, 8), b"PROXIMA\n")

    def test_first_bytes_that_might_be_a_signature(self):
        s = self.connect(self.srv)
        s.sendall(b"PROXY\n")  # "PROXY" and Enter: no signature ("PROXY " has a space)
        self.assertEqual(recv_exact(s, 6), b"PROXY\n")

    def test_header_refused(self):
        for hdr in (v1_header(("192.0.2.1", 1), ("192.0.2.2", 2)),
                    v2_header(("192.0.2.1", 1), ("192.0.2.2", 2)), V2_SIG + b"\x20\x00\x00\x00"):
            with self.subTest(hdr=hdr[:8]):
                s = self.connect(self.srv)
                s.sendall(hdr + b"hello\n")
                self.assertEqual(recv_until_closed(s)[0], b"")
                rec = self.srv.log.wait_for(event="denied", peer=peer_of(s),
                                            reason="untrusted_proxy")[0]
                self.assertEqual(rec["level"], "warn")
                self.srv.log.wait_for(event="disconnect", peer=peer_of(s), reason="error")
        self.test_direct_client_served()


class ProxyUsage(unittest.TestCase):
    def usage(self, *args):
        cp = subprocess.run([BIN, "server", "-p", "0", *args], capture_output=True, text=True,
                            timeout=T(10))
        self.assertEqual(cp.returncode, 2, cp.stderr)
        self.assertEqual(cp.stdout, "")
        return cp.stderr

    def test_usage_errors(self):
        self.assertIn("--proxy-protocol needs --trusted-proxy", self.usage("--proxy-protocol"))
        self.assertIn("--proxy-protocol applies to -t tcp only",
                      self.usage("-P", "plain", "-t", "udp", *TRUST))
        self.assertIn("--trusted-proxy applies only with --proxy-protocol",
                      self.usage("--trusted-proxy", "127.0.0.1"))
        for bad in ("10.0.0.0/33", "example.com", "10.0.0.1/", "1.2.3"):
            with self.subTest(bad=bad):
                self.assertIn("invalid --trusted-proxy '%s'" % bad,
                              self.usage("--proxy-protocol", "--trusted-proxy", "::1", bad))


# ---------------------------------------------------------------------------------------------
# Every protocol, every model, with the real client through a relay that sends the header

@each_model
class ProxyEveryProtocol:
    def through_relay(self, proto, *client_args, version=2, piece=None):
        srv = self.start_server(*TRUST, proto=proto)
        relay = ProxyRelay(self, srv.port, version=version, piece=piece)
        home = TempHome()
        self.addCleanup(home.cleanup)
        cp = run_client(home, relay.port, "-P", proto, *client_args,
                        input=b"hello %s\nexit\n" % proto.encode())
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, b"hello %s\nexit\n" % proto.encode())
        (cport, oport), = relay.outgoing.items()
        peer = "%s:%d" % (CLIENT_IP, cport)
        rec = srv.log.wait_for(event="connect", peer=peer)[0]
        self.assertEqual(rec["proxy"], "%s:%d" % (HOST, oport))
        srv.log.wait_for(event="message", peer=peer, text="hello %s" % proto)
        srv.log.wait_for(event="disconnect", peer=peer)
        return srv, peer

    def test_plain(self):
        self.through_relay("plain", version=1, piece=1)

    def test_secure(self):
        srv, peer = self.through_relay("secure", "--accept-new", piece=5)
        srv.log.wait_for(event="handshake", peer=peer)

    def test_tls(self):
        self.through_relay("tls", "--accept-new", version=1)

    def test_lab_dh(self):
        # The server speaks first: its parameters must go to the client, after the header.
        self.through_relay("lab-dh", piece=7)

    def test_lab_fernet(self):
        self.through_relay("lab-fernet")


# ---------------------------------------------------------------------------------------------
# Debian's haproxy in front of two plain and two secure servers

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy")
                                      else None)

HAPROXY_CFG = """\
global
    maxconn 256
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch 1
frontend fe_plain
    bind fd@{plain_fd}
    default_backend be_plain
frontend fe_secure
    bind fd@{secure_fd}
    default_backend be_secure
backend be_plain
    balance roundrobin
    server p1 127.0.0.1:{p1} send-proxy-v2 check inter 300ms fall 1 rise 2
    server p2 127.0.0.1:{p2} send-proxy-v2 check inter 300ms fall 1 rise 2
backend be_secure
    balance roundrobin
    server s1 127.0.0.1:{s1} send-proxy-v2 check inter 300ms fall 1 rise 2
    server s2 127.0.0.1:{s2} send-proxy-v2 check inter 300ms fall 1 rise 2
"""


@unittest.skipUnless(HAPROXY, "haproxy is not installed (Debian package haproxy)")
class Haproxy(SechoTest):
    def setUp(self):
        self.p1 = self.start_server(*TRUST, proto="plain", model="reactors")
        self.p2 = self.start_server(*TRUST, proto="plain", model="epoll")
        # One service, one key: both secure backends share the key file, so a client that
        # pinned the service's key meets it on either.
        self.keydir = tempfile.mkdtemp(prefix="secho-e2e-haproxy-")
        self.addCleanup(shutil.rmtree, self.keydir, True)
        key = os.path.join(self.keydir, "server.key")
        self.s1 = self.start_server(*TRUST, "-k", key, proto="secure", model="threads")
        self.s2 = self.start_server(*TRUST, "-k", key, proto="secure", model="reactors")
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)
        self.start_haproxy()

    def start_haproxy(self):
        # haproxy serves listeners the test made on free ports (bind fd@N): no port to guess.
        ls = []
        for _ in range(2):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(s.close)
            s.bind((HOST, 0))
            s.listen(64)
            ls.append(s)
        self.plain_port, self.secure_port = (s.getsockname()[1] for s in ls)
        cfg = os.path.join(self.keydir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG.format(plain_fd=ls[0].fileno(), secure_fd=ls[1].fileno(),
                                       p1=self.p1.port, p2=self.p2.port, s1=self.s1.port,
                                       s2=self.s2.port))
        self.hap_err = os.path.join(self.keydir, "haproxy.err")
        with open(self.hap_err, "wb") as err:
            # -db: in the foreground, no daemon, no pid file; its own session.
            self.hap = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdin=subprocess.DEVNULL,
                                        stdout=err, stderr=err, pass_fds=[s.fileno() for s in ls],
                                        start_new_session=True)
        self.addCleanup(self.stop_haproxy)
        for s in ls:
            s.close()  # haproxy holds them now: when it stops, nobody listens there
        # Ready: every backend has seen haproxy's health check (a LOCAL header).
        for srv in (self.p1, self.p2, self.s1, self.s2):
            srv.log.wait_for(event="connect", pred=lambda r: "proxy" in r, timeout=10,
                             what="haproxy's health check; haproxy said:\n" + self.hap_text())

    def hap_text(self):
        try:
            with open(self.hap_err, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def stop_haproxy(self):
        if self.hap.poll() is None:
            self.hap.send_signal(signal.SIGTERM)  # by PID: only the one this test started
            try:
                self.hap.wait(timeout=T(5))
            except subprocess.TimeoutExpired:
                self.hap.kill()
                self.hap.wait(timeout=T(5))
        self.assertIsNotNone(self.hap.returncode)

    def plain_session(self, text=b"hello"):
        """One plain client through haproxy; returns its own address as the log shows it."""
        s = socket.create_connection((HOST, self.plain_port), timeout=T(5))
        self.addCleanup(s.close)
        s.sendall(text + b"\nexit\n")
        self.assertEqual(recv_exact(s, len(text) + 6), text + b"\nexit\n")
        recv_until_closed(s)
        return peer_of(s)

    def secure_session(self):
        cp = run_client(self.home, self.secure_port, "--accept-new", input=b"hello secure\nexit\n")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stdout, b"hello secure\nexit\n")

    def served(self, srv, peers):
        """The peers of `peers` that srv logged a connect for, each checked: the real client
        (127.0.0.1 with its own port) as peer=, haproxy's own address as proxy=."""
        out = set()
        for p in peers:
            for rec in connect_records(srv, p):
                self.assertTrue(rec["proxy"].startswith("127.0.0.1:"), rec)
                self.assertNotEqual(rec["proxy"], p, rec)
                out.add(p)
        return out

    def proxied_clients(self, srv):
        """The connect records of srv that came through haproxy for a client (not its own
        health checks, whose peer is haproxy itself)."""
        return [r for r in srv.log.find(event="connect") if "proxy" in r and r["proxy"] != r["peer"]]

    def test_both_backends_real_clients_and_failover(self):
        # Plain: round robin spreads six clients over both; each logs the real client.
        peers = [self.plain_session(b"hello %d" % i) for i in range(6)]
        for p in peers:
            wait_until(lambda p=p: connect_records(self.p1, p) or connect_records(self.p2, p),
                       what="a backend logging %s" % p)
        on1, on2 = self.served(self.p1, peers), self.served(self.p2, peers)
        self.assertTrue(on1 and on2, "one backend got all: %s / %s" % (on1, on2))
        self.assertEqual(on1 | on2, set(peers))
        for p in peers:
            srv = self.p1 if p in on1 else self.p2
            srv.log.wait_for(event="message", peer=p, regex=r'text="hello \d"')

        # Secure: four clients (one known_hosts entry for the service), both backends.
        for _ in range(4):
            self.secure_session()
        for srv in (self.s1, self.s2):
            recs = wait_until(lambda srv=srv: self.proxied_clients(srv), what="a secure client")
            for r in recs:
                self.assertRegex(r["peer"], r"^127\.0\.0\.1:\d+$")
                srv.log.wait_for(event="handshake", peer=r["peer"])

        # `shutdown` through haproxy stops the plain backend it reaches (the client is on
        # loopback, as the header says); the service goes on through the other.
        s = socket.create_connection((HOST, self.plain_port), timeout=T(5))
        self.addCleanup(s.close)
        s.sendall(b"shutdown\n")
        self.assertEqual(recv_exact(s, 9), b"shutdown\n")
        who = peer_of(s)
        victim = wait_until(lambda: next((v for v in (self.p1, self.p2) if not v.alive()), None),
                            what="a plain backend to stop")
        survivor = self.p2 if victim is self.p1 else self.p1
        self.assertEqual(victim.wait_exit(T(5)), 0)
        victim.log.wait_for(event="shutdown", peer=who)
        after = [self.plain_session(b"after %d" % i) for i in range(4)]
        for p in after:
            survivor.log.wait_for(event="message", peer=p, regex=r'text="after \d"')
        self.assertTrue(survivor.alive())

        # A rolling restart of a secure backend: SIGTERM drains it; clients go on.
        self.s1.signal(signal.SIGTERM)
        self.assertEqual(self.s1.wait_exit(T(5)), 0)
        self.s1.log.wait_for(event="stop")
        before = len(self.proxied_clients(self.s2))
        for _ in range(3):
            self.secure_session()
        wait_until(lambda: len(self.proxied_clients(self.s2)) >= before + 3,
                   what="the secure survivor serving all three")


if __name__ == "__main__":
    unittest.main()
