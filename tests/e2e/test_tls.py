# SPDX-License-Identifier: MIT
"""End-to-end: -P tls (issue #11, SPEC "Wire protocols"), on every model, against the tools
everybody has: `openssl s_client`, `ncat --ssl`, `socat OPENSSL:`, and secho's own client
(trust on first use, pins, --ca) and bench. A self-signed certificate is made on first start
and kept; bad handshakes, a plain client on the TLS port and a TLS client on a plain port
are each refused and logged (the last by the client, with a clear error)."""

import base64
import hashlib
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import tempfile
import time

from harness import (BIN, HOST, T, TempHome, assert_closed_by_server, each_model, run_client,
                     wait_until)

OPENSSL = shutil.which("openssl")
NCAT = shutil.which("ncat")
SOCAT = shutil.which("socat")


def b64(raw):
    return base64.b64encode(raw).decode()


def cert_fingerprint(path):
    """The SHA-256 of a PEM certificate's DER, in base64 (as secho shows it)."""
    der = subprocess.run([OPENSSL, "x509", "-in", path, "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return b64(hashlib.sha256(der).digest())


class Tool:
    """A client program with pipes, killed and reaped by its PID when the test ends."""

    def __init__(self, tc, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.out = b""
        self.err = b""
        tc.addCleanup(self.close)

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def read_until(self, want, timeout=10.0):
        """Reads stdout until it holds `want`; returns all read so far."""
        end = time.monotonic() + T(timeout)
        fd = self.proc.stdout.fileno()
        while want not in self.out:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r within %.1f s; got %r; stderr: %r"
                                     % (want, T(timeout), self.out, self.stderr_now()))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError("stdout closed before %r; got %r; stderr: %r"
                                         % (want, self.out, self.stderr_now()))
                self.out += chunk
        return self.out

    def err_until(self, want, count=1, timeout=10.0):
        """Reads stderr until it holds `want` `count` times."""
        end = time.monotonic() + T(timeout)
        fd = self.proc.stderr.fileno()
        while self.err.count(want) < count:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on stderr within %.1f s; got %r"
                                     % (want, T(timeout), self.err))
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError("stderr closed before %r; got %r" % (want, self.err))
                self.err += chunk
        return self.err

    def stderr_now(self):
        fd = self.proc.stderr.fileno()
        data = b""
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
        return data

    def wait(self, timeout=10.0):
        return self.proc.wait(timeout=T(timeout))

    def close(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (BrokenPipeError, OSError):
                pass


def make_cert(directory, name, key_type="rsa:2048"):
    """A self-signed certificate for 127.0.0.1 and localhost made by openssl req; returns
    (cert, key) paths (key 0600)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", key_type, "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


@each_model
class Tls:
    PROTO = "tls"

    def setUp(self):
        for tool in (OPENSSL, NCAT, SOCAT):
            self.assertIsNotNone(tool, "openssl, ncat and socat are needed (Debian: openssl, "
                                       "ncat, socat)")
        self.tmp = tempfile.mkdtemp(prefix="secho-e2e-tls-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def server(self, *args, **kw):
        srv = self.start_server(*args, **kw)
        srv.cert = srv.home.file("secho", "server-tls.crt")
        srv.hostport = "%s:%d" % (HOST, srv.port)
        return srv

    def client(self, srv, *args, input=b"", timeout=20):
        return run_client(self.home, srv.port, "-P", "tls", *args, input=input,
                          timeout=timeout)

    # --- the certificate

    def test_self_signed_certificate_made_kept_and_logged(self):
        srv = self.server()
        key = srv.home.file("secho", "server-tls.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(srv.cert).st_mode), 0o644)
        fp = cert_fingerprint(srv.cert)
        ident = srv.log.wait_for(event="identity")[0]
        self.assertEqual((ident["proto"], ident["key"]), ("tls", fp))
        err = wait_until(lambda: "fingerprint" in srv.stderr_text() and srv.stderr_text(),
                         what="the fingerprint on stderr")
        self.assertIn("server certificate fingerprint %s (new self-signed certificate %s)"
                      % (fp, srv.cert), err)
        # The openssl form, to compare with `openssl x509 -fingerprint -sha256`.
        out = subprocess.run([OPENSSL, "x509", "-in", srv.cert, "-noout", "-fingerprint",
                              "-sha256"], check=True, capture_output=True, text=True).stdout
        self.assertIn(out.strip().split("=", 1)[1], err)
        # Kept: the next start uses the same pair, and says nothing of a new one.
        srv.stop()
        again = self.server(home=srv.home)
        self.assertEqual(again.log.wait_for(event="identity")[0]["key"], fp)
        wait_until(lambda: "fingerprint" in again.stderr_text(), what="the fingerprint")
        self.assertNotIn("new self-signed", again.stderr_text())

    def test_given_certificate_and_key(self):
        cert, key = make_cert(self.tmp, "given")
        srv = self.server("--cert", cert, "-k", key)
        self.assertEqual(srv.log.wait_for(event="identity")[0]["key"], cert_fingerprint(cert))
        self.assertFalse(os.path.exists(srv.cert))  # nothing self-signed made
        # openssl verifies it against itself as the CA, and so does secho's client.
        t = Tool(self, [OPENSSL, "s_client", "-quiet", "-verify_return_error", "-CAfile", cert,
                        "-verify_ip", "127.0.0.1", "-connect", srv.hostport])
        t.send(b"verified\n")
        t.read_until(b"verified\n")
        cp = self.client(srv, "--ca", cert, input=b"with ca\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"with ca\n"), cp.stderr)
        self.assertFalse(os.path.exists(self.home.file("secho", "known_hosts")))

    # --- the tools everybody has

    def test_openssl_s_client(self):
        srv = self.server()
        t = Tool(self, [OPENSSL, "s_client", "-quiet", "-connect", srv.hostport])
        t.send(b"hello tls\n")
        t.read_until(b"hello tls\n")
        t.send(b"no newline yet")
        t.read_until(b"no newline yet")  # a stream: echoed before the line ends
        t.send(b", now\nexit\n")
        t.read_until(b"exit\n")
        # The server ends with close_notify, on which s_client ends.
        self.assertEqual(t.wait(), 0)
        self.assertEqual(t.out, b"hello tls\nno newline yet, now\nexit\n")
        srv.log.wait_for(event="disconnect", reason="exit")
        texts = [r.get("text") for r in srv.log.find(event="message")]
        self.assertEqual(texts, ["hello tls", "no newline yet, now", "exit"])

    def test_openssl_key_update_both_ways(self):
        srv = self.server()
        # Without -quiet s_client takes commands: K sends a KeyUpdate that asks for one back.
        t = Tool(self, [OPENSSL, "s_client", "-connect", srv.hostport])
        t.send(b"before\n")
        t.read_until(b"before\n")
        # One read of s_client's is one command: the next line goes once it was done.
        t.send(b"K\n")
        t.err_until(b"KEYUPDATE\n")
        t.send(b"after\n")
        t.read_until(b"after\n")
        t.send(b"k\n")
        t.err_until(b"KEYUPDATE\n", count=2)
        t.send(b"later\n")
        t.read_until(b"later\n")
        srv.log.wait_for(event="message", text="later")
        self.assertEqual(srv.log.find(event="auth_fail"), [])
        self.assertEqual(srv.log.find(event="disconnect"), [])

    def test_ncat_ssl(self):
        srv = self.server()
        t = Tool(self, [NCAT, "--ssl", HOST, str(srv.port)])
        t.send(b"via ncat\n")
        t.read_until(b"via ncat\n")
        t.proc.stdin.close()
        self.assertEqual(t.wait(), 0)
        srv.log.wait_for(event="message", text="via ncat")
        srv.log.wait_for(event="disconnect", reason="eof")

    def test_socat_openssl(self):
        srv = self.server()
        cp = subprocess.run([SOCAT, "-t", str(T(5)), "-", "OPENSSL:%s,verify=0" % srv.hostport],
                            input=b"via socat\nsecond\n", capture_output=True, timeout=T(20))
        self.assertEqual((cp.returncode, cp.stdout), (0, b"via socat\nsecond\n"), cp.stderr)
        srv.log.wait_for(event="message", text="second")
        srv.log.wait_for(event="disconnect", reason="eof")

    # --- secho's client and bench

    def test_client_trust_on_first_use(self):
        srv = self.server()
        fp = cert_fingerprint(srv.cert)
        known = self.home.file("secho", "known_hosts")
        cp = self.client(srv, input=b"hi\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"unknown server certificate %s" % fp.encode(), cp.stderr)
        cp = self.client(srv, "--accept-new", input=b"hi\nexit\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"hi\nexit\n"), cp.stderr)
        self.assertIn(b"Warning: Permanently added '%s' (%s)" % (srv.hostport.encode(),
                                                                fp.encode()), cp.stderr)
        with open(known) as f:
            self.assertEqual(f.read(), "%s tls %s\n" % (srv.hostport, fp))
        cp = self.client(srv, input=b"again\n")
        self.assertEqual((cp.returncode, cp.stdout, cp.stderr), (0, b"again\n", b""))
        # A pin wins; a wrong one is refused even with --accept-new.
        cp = self.client(srv, "--server-key", fp, input=b"pinned\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"pinned\n"), cp.stderr)
        cp = self.client(srv, "--server-key", b64(b"\x07" * 32), "--accept-new", input=b"x\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"server certificate mismatch", cp.stderr)
        # Another certificate for the same HOST:PORT: refused, naming the line to remove.
        with open(known, "w") as f:
            f.write("%s tls %s\n" % (srv.hostport, b64(b"\x01" * 32)))
        cp = self.client(srv, "--accept-new", input=b"x\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"THE SERVER CERTIFICATE FOR %s HAS CHANGED" % srv.hostport.encode(),
                      cp.stderr)
        self.assertIn(b"%s:1 lists " % known.encode(), cp.stderr)
        # keygen -R forgets it; then it is new again.
        k = subprocess.run([BIN, "keygen", "-R", srv.hostport, "--known-hosts", known],
                           capture_output=True, timeout=T(10))
        self.assertEqual(k.returncode, 0, k.stderr)
        cp = self.client(srv, "--accept-new", input=b"x\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"x\n"), cp.stderr)

    def test_secure_and_tls_entries_side_by_side(self):
        tls = self.server()
        sec = self.start_server(proto="secure")
        known = self.home.file("secho", "known_hosts")
        os.makedirs(os.path.dirname(known), mode=0o700, exist_ok=True)
        # A secure line as every secho wrote it, for the tls server's own HOST:PORT and with
        # the bytes of its fingerprint: it vouches for no certificate.
        fp = base64.b64decode(cert_fingerprint(tls.cert))
        with open(known, "w") as f:
            f.write("# from an older secho\n%s %s\n" % (tls.hostport, b64(fp)))
        os.chmod(known, 0o600)
        cp = self.client(tls, input=b"x\n")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        self.assertIn(b"unknown server certificate", cp.stderr)
        cp = self.client(tls, "--accept-new", input=b"tls\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"tls\n"), cp.stderr)
        cp = run_client(self.home, sec.port, "-P", "secure", "--accept-new", input=b"secure\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"secure\n"), cp.stderr)
        with open(known) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[2], "%s tls %s" % (tls.hostport, b64(fp)))
        self.assertEqual(lines[3].split()[0], "%s:%d" % (HOST, sec.port))
        self.assertEqual(len(lines[3].split()), 2)  # secure's lines stay untagged
        # Both are known now: neither asks.
        cp = self.client(tls, input=b"a\n")
        self.assertEqual((cp.returncode, cp.stderr), (0, b""))
        cp = run_client(self.home, sec.port, "-P", "secure", input=b"b\n")
        self.assertEqual((cp.returncode, cp.stderr), (0, b""))

    def test_client_with_ca(self):
        srv = self.server()
        cp = self.client(srv, "--ca", srv.cert, input=b"ca\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"ca\n"), cp.stderr)
        self.assertFalse(os.path.exists(self.home.file("secho", "known_hosts")))
        other, _ = make_cert(self.tmp, "other", "ec:" + self.ec_params())
        cp = self.client(srv, "--ca", other, input=b"x\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"certificate verify failed", cp.stderr)
        # The client's alert tells the server why.
        rec = srv.log.wait_for(event="auth_fail")[0]
        self.assertIn("unknown ca", rec["detail"])

    def ec_params(self):
        path = os.path.join(self.tmp, "p256.pem")
        if not os.path.exists(path):
            subprocess.run([OPENSSL, "genpkey", "-genparam", "-algorithm", "EC", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-out", path], check=True,
                           capture_output=True)
        return path

    def test_client_long_line_and_shutdown(self):
        srv = self.server()
        line = b"x" * 100000
        cp = self.client(srv, "--accept-new", input=line + b"\nshutdown\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, line + b"\nshutdown\n"), cp.stderr)
        self.assertEqual(srv.wait_exit(T(5)), 0)
        srv.log.wait_for(event="stop")
        rec = srv.log.find(event="message")[0]
        self.assertEqual((rec["bytes"], rec.get("truncated")), ("100000", "1"))

    def test_bench(self):
        srv = self.server(log=False)
        for size in ("64", "16384"):
            r = subprocess.run([BIN, "bench", "-P", "tls", "-H", HOST, "-p", str(srv.port),
                                "-c", "2", "-d", "1", "-s", size, "--json"],
                               capture_output=True, text=True, timeout=T(30))
            self.assertEqual(r.returncode, 0, r.stderr)
            res = json.loads(r.stdout.splitlines()[0])
            self.assertGreater(res["msgs"], 0)
            self.assertEqual(res["errors"], 0)

    # --- what is refused

    def test_bad_handshakes_refused_and_logged(self):
        srv = self.server()
        # TLS 1.2 only: refused with protocol_version.
        cp = subprocess.run([OPENSSL, "s_client", "-tls1_2", "-connect", srv.hostport],
                            input=b"", capture_output=True, timeout=T(20))
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn(b"alert protocol version", cp.stderr)
        rec = srv.log.wait_for(event="auth_fail")[0]
        self.assertEqual(rec["level"], "warn")
        self.assertIn("unsupported protocol", rec["detail"])
        # A handshake record holding garbage.
        s = self.connect(srv)
        s.sendall(b"\x16\x03\x01\x00\x08garbage!")
        assert_closed_by_server(s)
        srv.log.wait_for(event="auth_fail", count=2)
        # A record longer than TLS allows: refused on its header alone.
        s = self.connect(srv)
        s.sendall(b"\x16\x03\x01\xff\xff")
        assert_closed_by_server(s)
        recs = srv.log.wait_for(event="auth_fail", count=3)
        self.assertIn("exceeds", recs[2]["detail"])
        # The server goes on.
        cp = self.client(srv, "--accept-new", input=b"still here\n")
        self.assertEqual((cp.returncode, cp.stdout), (0, b"still here\n"), cp.stderr)

    def test_plain_client_on_tls_port(self):
        srv = self.server()
        s = self.connect(srv)
        s.sendall(b"hello in clear\n")
        assert_closed_by_server(s)
        rec = srv.log.wait_for(event="auth_fail")[0]
        self.assertIn("not a TLS client", rec["detail"])
        self.assertIn("'h'", rec["detail"])
        self.assertEqual(srv.log.find(event="message"), [])

    def test_tls_client_on_plain_and_secure_ports(self):
        plain = self.start_server(proto="plain")
        cp = run_client(self.home, plain.port, "-P", "tls", "--accept-new", input=b"x\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"echo server that does not speak tls; try -P plain", cp.stderr)
        # openssl s_client says so too, in its own words.
        cp = subprocess.run([OPENSSL, "s_client", "-connect", "%s:%d" % (HOST, plain.port)],
                            input=b"", capture_output=True, timeout=T(20))
        self.assertNotEqual(cp.returncode, 0)
        sec = self.start_server(proto="secure")
        cp = run_client(self.home, sec.port, "-P", "tls", "--accept-new", input=b"x\n")
        self.assertEqual((cp.returncode, cp.stdout), (1, b""), cp.stderr)
        self.assertIn(b"%s:%d" % (HOST.encode(), sec.port), cp.stderr)
        rec = sec.log.wait_for(event="auth_fail")[0]
        self.assertIn("not a secho/1 client", rec["detail"])
        # And a secure client on the TLS port is refused by the TLS server.
        srv = self.server()
        cp = run_client(self.home, srv.port, "-P", "secure", "--accept-new", input=b"x\n")
        self.assertEqual(cp.returncode, 1, cp.stderr)
        rec = srv.log.wait_for(event="auth_fail")[0]
        self.assertIn("not a TLS client", rec["detail"])

    def test_options_of_other_protocols_refused(self):
        cp = subprocess.run([BIN, "server", "-P", "tls", "--cert", "x.crt"], capture_output=True,
                            timeout=T(10))
        self.assertEqual(cp.returncode, 2)
        self.assertIn(b"--cert and --key go together", cp.stderr)
        cp = subprocess.run([BIN, "server", "-P", "tls", "--admins", "a"], capture_output=True,
                            timeout=T(10))
        self.assertEqual(cp.returncode, 2)
        cp = subprocess.run([BIN, "server", "-P", "tls", "-t", "udp"], capture_output=True,
                            timeout=T(10))
        self.assertEqual(cp.returncode, 2)
        cp = subprocess.run([BIN, "client", "-P", "secure", "--ca", "x"], capture_output=True,
                            timeout=T(10))
        self.assertEqual(cp.returncode, 2)
        self.assertIn(b"--ca applies to -P tls only", cp.stderr)
        cp = subprocess.run([BIN, "client", "-P", "tls", "-k", "x"], capture_output=True,
                            timeout=T(10))
        self.assertEqual(cp.returncode, 2)
