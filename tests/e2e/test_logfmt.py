# SPDX-License-Identifier: MIT
"""The server log is logfmt that standard tools read: a server is driven through every event it
can produce (plain and secure, TCP and UDP), and its whole log is checked line by line by a
strict checker here and by the npm `logfmt` parser, whose values must match exactly (base64
`peer_key=`/`key=` keep their `=` padding)."""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import (BIN, SechoTest, T, TempHome, key_file_public, parse_logfmt,
                     recv_until_closed, reset_close, run_client, tcp_connect, udp_socket)

LONG = b"0123456789ABCDEF" * 8  # longer than the servers' --max-msg 64
NPM_DIR = os.path.join(os.path.dirname(BIN), "npm")
# A bare value as SPEC defines it; a quoted one is `"` ... `"` with backslash escapes.
BARE = r'[!#-<>-~]+'
QUOTED = r'"(?:[^"\\]|\\.)*"'
PAIR_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_.\-]*=(?:%s|%s)' % (BARE, QUOTED))


def strict_pairs(line):
    """Splits one line into key=value pairs, each value a bare token or a properly quoted
    string, separated by single spaces, nothing left over; raises AssertionError otherwise."""
    pairs, i = [], 0
    while True:
        m = PAIR_RE.match(line, i)
        if not m:
            raise AssertionError("not logfmt at %d: %r" % (i, line))
        pairs.append(m.group(0))
        i = m.end()
        if i == len(line):
            return pairs
        if line[i] != " ":
            raise AssertionError("left over at %d: %r" % (i, line))
        i += 1


def npm_logfmt():
    """The directory holding node_modules/logfmt, installed on demand into build/npm; None
    (with the reason) when node or npm is missing or the install fails."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None, "node or npm not installed"
    if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", "logfmt")):
        os.makedirs(NPM_DIR, exist_ok=True)
        cp = subprocess.run(["npm", "install", "--prefix", NPM_DIR, "--no-audit", "--no-fund",
                             "--no-save", "logfmt@1"], capture_output=True, timeout=300)
        if cp.returncode != 0:
            return None, "npm install logfmt@1 failed: %s" % cp.stderr.decode()[-500:]
    return NPM_DIR, None


NODE_PARSE = r"""
const logfmt = require('logfmt');
const lines = require('fs').readFileSync(0, 'utf8').split('\n').filter(l => l.length > 0);
process.stdout.write(JSON.stringify(lines.map(l => logfmt.parse(l))));
"""


class LogfmtTest(SechoTest):
    """One server per (proto, transport), each driven through the events it can produce."""

    def setUp(self):
        self.home = TempHome()
        self.addCleanup(self.home.cleanup)

    def _stop_and_read(self, srv):
        # SIGHUP: the log is reopened (same path here, nothing moved), then SIGTERM: stop.
        before = len(srv.log.raw_lines())
        srv.signal(signal.SIGHUP)
        srv.log.wait_for(event="reopen")
        self.assertGreater(len(srv.log.raw_lines()), before)
        srv.stop()
        return [l.decode("utf-8", "surrogateescape") for l in srv.log.raw_lines()]

    def _tcp_events(self, srv, secure):
        # connect + message (+ handshake) + disconnect reason=exit, by the real client.
        args = ["-P", "secure", "--accept-new"] if secure else ["-P", "plain"]
        cp = run_client(self.home, srv.port, *args,
                        input=b'hello "quoted" a=b\n' + LONG + b'\nshutdown\nexit\n')
        srv.log.wait_for(event="disconnect", reason="exit" if not secure else "error")
        if secure:
            # A record longer than --max-msg is an error (logged, the connection closed);
            # the client's exit status for it is not what this test is about.
            srv.log.wait_for(event="error")
            cp = run_client(self.home, srv.port, *args,
                            input=b'hello "quoted" a=b\nshutdown\nexit\n')
            srv.log.wait_for(event="disconnect", reason="exit")
        self.assertEqual(cp.returncode, 0, cp.stderr)
        # reason=eof: connect and close.
        s = tcp_connect(self, srv.port)
        s.close()
        # reason=reset.
        s = tcp_connect(self, srv.port)
        if not secure:
            s.sendall(b"partial line")
        srv.log.wait_for(event="connect", count=3)
        reset_close(s)
        srv.log.wait_for(event="disconnect", reason="reset")
        # reason=timeout: the idle timeout (plain) or the handshake timeout (secure).
        s = tcp_connect(self, srv.port)
        srv.log.wait_for(event="disconnect", reason="timeout", timeout=10)
        s.close()
        if secure:
            # A handshake message that is not one: auth_fail.
            s = tcp_connect(self, srv.port)
            s.sendall(b"\x00\x30" + b"x" * 48)
            recv_until_closed(s)
            srv.log.wait_for(event="auth_fail")
        # denied reason=max_conns: two held open, the third refused.
        held = [tcp_connect(self, srv.port), tcp_connect(self, srv.port)]
        n = len(srv.log.find(event="connect"))
        srv.log.wait_for(event="connect", count=n)
        time.sleep(0.1)
        extra = tcp_connect(self, srv.port)
        srv.log.wait_for(event="denied", reason="max_conns")
        for h in held + [extra]:
            h.close()

    def _udp_events(self, srv, secure):
        if secure:
            cp = run_client(self.home, srv.port, "-P", "secure", "-t", "udp", "--accept-new",
                            input=b'hello "quoted" a=b\nshutdown\nexit\n')
            self.assertEqual(cp.returncode, 0, cp.stderr)
            srv.log.wait_for(event="handshake")
            srv.log.wait_for(event="message", text="exit")
            s = udp_socket(self, srv.port)
            s.send(b"\x01" + b"z" * 40)  # not a handshake initiation
            s.send(b"\x04" + b"z" * 40)
            time.sleep(0.3)
            return
        s = udp_socket(self, srv.port)
        s.settimeout(T(5))
        s.send(b"hello world\n")
        self.assertEqual(s.recv(100), b"hello world\n")
        # bytes= counts the datagram, newline included; text is the line.
        srv.log.wait_for(event="message", text="hello world", bytes="12")
        s.send(b"shutdown")
        s.recv(100)
        srv.log.wait_for(event="denied")
        s.send(LONG)  # longer than --max-msg
        srv.log.wait_for(lambda r: r["event"] in ("error", "message"), count=3)
        s.send(b"exit")
        srv.log.wait_for(event="disconnect", reason="exit")

    def _check(self, lines, proto, transport, must):
        events = set()
        records = []
        for line in lines:
            strict_pairs(line)
            rec = parse_logfmt(line)
            records.append(rec)
            events.add(rec["event"])
        missing = set(must) - events
        self.assertFalse(missing, "%s/%s log lacks %s:\n%s" % (proto, transport, missing,
                                                                "\n".join(lines)))
        # Fields in one order: peer before conn wherever both are.
        for rec in records:
            raw = rec["_raw"]
            if "peer" in rec and "conn" in rec:
                self.assertLess(raw.index(" peer="), raw.index(" conn="), raw)
        npm, why = npm_logfmt()
        if npm is None:
            self.skipTest("no npm logfmt parser: %s (the strict checker passed)" % why)
        cp = subprocess.run(["node", "-e", NODE_PARSE], input="\n".join(lines).encode(
            "utf-8", "surrogateescape"), capture_output=True, cwd=npm, timeout=60)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        parsed = json.loads(cp.stdout)
        self.assertEqual(len(parsed), len(records))
        for rec, js in zip(records, parsed):
            want = {k: v for k, v in rec.items() if k != "_raw"}
            self.assertEqual(set(js), set(want), rec["_raw"])
            for k, v in want.items():
                # npm logfmt leaves backslash escapes other than \" as they are, and reads
                # true/false as booleans: compare the values it can give back exactly.
                if "\\" in rec["_raw"].split(" %s=" % k, 1)[-1].split(" ", 1)[0]:
                    continue
                got = js[k]
                got = {True: "true", False: "false"}.get(got, got) if isinstance(got, bool) \
                    else got
                self.assertEqual(got, v, "%s in %s" % (k, rec["_raw"]))
        return records

    def _run(self, proto, transport):
        args = ["-P", proto, "-t", transport, "--max-msg", "64", "--max-conns", "2",
                "--idle-timeout", "1"]
        if proto == "secure":
            args += ["--handshake-timeout", "1"]
        else:
            args += ["--allow-shutdown", "none"]
        srv = self.start_server(*args, home=self.home)
        if transport == "tcp":
            self._tcp_events(srv, proto == "secure")
        else:
            self._udp_events(srv, proto == "secure")
        lines = self._stop_and_read(srv)
        must = {"listening", "connect", "message", "disconnect", "reopen", "stop"}
        if proto == "secure":
            must |= {"identity", "handshake"}
        if transport == "tcp":
            must |= {"denied"}
        if proto == "secure" and transport == "tcp":
            must |= {"auth_fail", "error"}
        if proto == "plain":
            must |= {"denied"}
        records = self._check(lines, proto, transport, must)
        return srv, records

    def test_plain_tcp(self):
        _, recs = self._run("plain", "tcp")
        msgs = [r for r in recs if r["event"] == "message"]
        self.assertIn('hello "quoted" a=b', [r.get("text") for r in msgs])
        self.assertTrue([r for r in msgs if r.get("truncated") == "1"], msgs)
        reasons = {r.get("reason") for r in recs if r["event"] == "disconnect"}
        self.assertLessEqual({"exit", "eof", "reset", "timeout"}, reasons)

    def test_secure_tcp(self):
        srv, recs = self._run("secure", "tcp")
        pub = base64.b64encode(key_file_public(srv.key_path)).decode()
        ident = [r for r in recs if r["event"] == "identity"]
        self.assertEqual([r["key"] for r in ident], [pub])
        self.assertIn(' key="%s"' % pub, ident[0]["_raw"])  # base64 padding: quoted
        hs = [r for r in recs if r["event"] == "handshake"]
        self.assertTrue(hs and all(len(r["peer_key"]) == 44 for r in hs), hs)
        reasons = {r.get("reason") for r in recs if r["event"] == "disconnect"}
        self.assertLessEqual({"exit", "eof", "reset", "timeout"}, reasons)

    def test_plain_udp(self):
        _, recs = self._run("plain", "udp")
        self.assertTrue([r for r in recs if r["event"] == "message" and r["bytes"] == "12"])

    def test_secure_udp(self):
        srv, recs = self._run("secure", "udp")
        pub = base64.b64encode(key_file_public(srv.key_path)).decode()
        self.assertEqual([r["key"] for r in recs if r["event"] == "identity"], [pub])
        hs = [r for r in recs if r["event"] == "handshake"]
        self.assertTrue(hs and all(len(r["peer_key"]) == 44 for r in hs), hs)


if __name__ == "__main__":
    unittest.main()
