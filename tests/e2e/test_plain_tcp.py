# SPDX-License-Identifier: MIT
"""End-to-end: `secho server -P plain` over TCP, on every I/O model (issue #2)."""

import os
import random
import select
import signal
import socket
import threading
import time
import unittest

from harness import (T, assert_open, each_model, echo_roundtrip, non_loopback_ipv4, peer_of,
                     recv_exact, recv_until_closed, reset_close, tcp_connect, text_bytes,
                     wait_until)


def echo(sock, data, timeout=5.0):
    sock.sendall(data)
    return recv_exact(sock, len(data), timeout)


@each_model
class PlainTcp:
    PROTO = "plain"
    TRANSPORT = "tcp"

    # --- RFC 862 echo

    def test_bytes_echoed_before_newline(self):
        srv = self.start_server()
        s = self.connect(srv)
        s.sendall(b"abc")
        self.assertEqual(recv_exact(s, 3), b"abc")  # no newline was sent
        s.sendall(b"d")
        self.assertEqual(recv_exact(s, 1), b"d")
        self.assertEqual(echo(s, b"ef\n"), b"ef\n")
        rec = srv.log.wait_for(event="message", peer=peer_of(s))[0]
        self.assertEqual(rec["text"], "abcdef")

    def test_multiline(self):
        srv = self.start_server()
        s = self.connect(srv)
        data = b"one\ntwo\r\nthree\n\nfour\n"
        self.assertEqual(echo(s, data), data)
        recs = srv.log.wait_for(event="message", peer=peer_of(s), count=5)
        self.assertEqual([r["text"] for r in recs], ["one", "two", "three", "", "four"])

    def test_binary_blob_300k(self):
        srv = self.start_server()
        s = self.connect(srv)
        blob = random.Random(862).randbytes(300 * 1024)
        got = echo_roundtrip(s, blob, timeout=30)
        self.assertEqual(len(got), len(blob))
        self.assertTrue(got == blob, "300 KB blob came back altered")
        self.assertEqual(echo(s, b"after\n"), b"after\n")

    def test_concurrent_clients(self):
        srv = self.start_server()
        n = 50
        socks = [self.connect(srv) for _ in range(n)]
        payloads = [("client %02d " % i).encode() * (20 + i) + os.urandom(64).hex().encode() + b"\n"
                    for i in range(n)]
        errors = []

        def run(i):
            try:
                got = echo_roundtrip(socks[i], payloads[i] * 5, timeout=30)
                if got != payloads[i] * 5:
                    errors.append("client %d got %r" % (i, got[:80]))
            except Exception as e:  # reported below
                errors.append("client %d: %s" % (i, e))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(T(60))
        self.assertFalse(any(t.is_alive() for t in threads), "client threads hung")
        self.assertEqual(errors, [])
        peers = {r["peer"] for r in srv.log.wait_for(event="connect", count=n)}
        self.assertEqual(peers, {peer_of(s) for s in socks})

    # --- exit, half-close, resets

    def test_exit_closes_connection(self):
        srv = self.start_server()
        s = self.connect(srv)
        cid = self.conn_id(srv, s)
        data, how = recv_until_closed_after(s, b"hello\nexit\n")
        self.assertEqual(data, b"hello\nexit\n")
        self.assertEqual(how, "eof")
        s.close()
        srv.log.wait_for(event="disconnect", conn=cid, reason="exit")
        # The server goes on serving.
        s2 = self.connect(srv)
        self.assertEqual(echo(s2, b"still here\n"), b"still here\n")

    def test_exit_with_crlf(self):
        srv = self.start_server()
        s = self.connect(srv)
        data, _ = recv_until_closed_after(s, b"exit\r\n")
        self.assertEqual(data, b"exit\r\n")
        cid = self.conn_id(srv, s)
        s.close()
        srv.log.wait_for(event="disconnect", conn=cid, reason="exit")

    def test_exit_is_whole_line_only(self):
        srv = self.start_server()
        s = self.connect(srv)
        for line in (b"exit now\n", b" exit\n", b"EXIT\n", b"exitt\n"):
            self.assertEqual(echo(s, line), line)
        assert_open(s)

    def test_half_close_delivers_remaining_echo(self):
        srv = self.start_server()
        s = self.connect(srv)
        cid = self.conn_id(srv, s)
        payload = b"line one\n" + b"x" * 100000 + b"\nno newline at the end"
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        data, how = recv_until_closed(s, timeout=10)
        self.assertEqual(how, "eof")
        self.assertTrue(data == payload, "echo after half-close differs (%d of %d bytes)"
                        % (len(data), len(payload)))
        srv.log.wait_for(event="disconnect", conn=cid, reason="eof")

    def test_abrupt_resets_then_still_serving(self):
        srv = self.start_server()
        peers = []
        for i in range(50):
            s = self.connect(srv)
            peers.append(peer_of(s))
            s.sendall(b"mid-line %d" % i)
            recv_exact(s, len(b"mid-line %d" % i))
            s.sendall(b" more")  # a line still being received ...
            reset_close(s)  # ... when the client resets
        recs = srv.log.wait_for(event="disconnect",
                                pred=lambda r: r["peer"] in peers, count=50, timeout=20)
        self.assertEqual({r["reason"] for r in recs}, {"reset"},
                         "reasons logged for reset connections: %s"
                         % sorted(r["reason"] for r in recs))
        self.assertTrue(srv.alive())
        s = self.connect(srv)
        self.assertEqual(echo(s, b"after resets\n"), b"after resets\n")

    # --- shutdown

    def test_shutdown_from_loopback(self):
        srv = self.start_server()
        others = [self.connect(srv) for _ in range(3)]
        for o in others:
            self.assertEqual(echo(o, b"hi\n"), b"hi\n")
        others[0].sendall(b"a partial line")  # owed: echoed at once
        self.assertEqual(recv_exact(others[0], 14), b"a partial line")
        s = self.connect(srv)
        self.assertEqual(echo(s, b"before\n"), b"before\n")
        t0 = time.monotonic()
        s.sendall(b"shutdown\n")
        data, _ = recv_until_closed(s, timeout=5)
        self.assertEqual(data, b"shutdown\n")
        for o in others:
            self.assertEqual(recv_until_closed(o, timeout=5)[0], b"")
            o.close()
        s.close()
        rc = srv.wait_exit(max(0.0, t0 + T(2) - time.monotonic()) + 0.05)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, "server did not exit 0 within %.1f s of `shutdown` "
                         "(status %s, %.2f s)" % (T(2), rc, elapsed))
        srv.log.wait_for(event="stop", timeout=1)
        srv.log.wait_for(event="shutdown")
        self.assertEqual(srv.log.find(event="denied"), [])

    def test_shutdown_exits_even_if_a_client_never_closes(self):
        srv = self.start_server()
        stubborn = self.connect(srv)  # never reads, never closes
        self.assertEqual(echo(stubborn, b"hi\n"), b"hi\n")
        s = self.connect(srv)
        t0 = time.monotonic()
        s.sendall(b"shutdown\n")
        rc = srv.wait_exit(T(2))
        self.assertEqual(rc, 0, "no exit 0 within %.1f s (status %s)" % (T(2), rc))
        self.assertLess(time.monotonic() - t0, T(2) + 0.1)
        self.assertEqual(recv_until_closed(s, timeout=1)[0], b"shutdown\n")
        recv_until_closed(stubborn, timeout=1)
        srv.log.wait_for(event="stop", timeout=1)

    def test_shutdown_denied_with_none(self):
        srv = self.start_server("--allow-shutdown", "none")
        other = self.connect(srv)
        s = self.connect(srv)
        cid = self.conn_id(srv, s)
        expect = b"shutdown\nerror: shutdown not permitted\n"
        s.sendall(b"shutdown\n")
        self.assertEqual(recv_exact(s, len(expect)), expect)
        srv.log.wait_for(event="denied", conn=cid)
        self.assertEqual(echo(s, b"still serving\n"), b"still serving\n")
        self.assertEqual(echo(other, b"me too\n"), b"me too\n")
        self.assertTrue(srv.alive())
        self.assertEqual(srv.log.find(event="stop"), [])

    def test_shutdown_allowed_with_any(self):
        srv = self.start_server("--allow-shutdown", "any")
        s = self.connect(srv)
        t0 = time.monotonic()
        s.sendall(b"shutdown\n")
        self.assertEqual(recv_until_closed(s)[0], b"shutdown\n")
        s.close()
        rc = srv.wait_exit(max(0.0, t0 + T(2) - time.monotonic()) + 0.05)
        self.assertEqual(rc, 0)

    def test_shutdown_denied_from_non_loopback(self):
        addr = non_loopback_ipv4()
        if not addr:
            self.skipTest("no non-loopback IPv4 address on this host")
        srv = self.start_server(host="0.0.0.0")
        s = tcp_connect(self, srv.port, host=addr, source=addr)
        expect = b"shutdown\nerror: shutdown not permitted\n"
        s.sendall(b"shutdown\n")
        self.assertEqual(recv_exact(s, len(expect)), expect)
        srv.log.wait_for(event="denied", peer=peer_of(s))
        self.assertEqual(echo(s, b"ok\n"), b"ok\n")
        self.assertTrue(srv.alive())

    # --- signals

    def _signal_shutdown(self, sig, signame):
        srv = self.start_server()
        socks = [self.connect(srv) for _ in range(3)]
        for s in socks:
            self.assertEqual(echo(s, b"x\n"), b"x\n")
        socks[1].sendall(b"half a line")
        self.assertEqual(recv_exact(socks[1], 11), b"half a line")
        ids = [self.conn_id(srv, s) for s in socks]
        t0 = time.monotonic()
        srv.signal(sig)
        rc = srv.wait_exit(T(2))
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0, "no exit 0 within %.1f s of %s (status %s)" % (T(2), signame, rc))
        self.assertLess(elapsed, T(2) + 0.1)
        for s in socks:
            self.assertEqual(recv_until_closed(s, timeout=1)[0], b"")
        srv.log.wait_for(event="stop", timeout=1)
        srv.log.wait_for(event="signal", signal=signame, timeout=1)
        for cid in ids:
            srv.log.wait_for(event="disconnect", conn=cid, reason="shutdown", timeout=1)
        part = srv.log.wait_for(event="message", conn=ids[1], partial="1", timeout=1)
        self.assertEqual(part[0]["text"], "half a line")

    def test_sigterm(self):
        self._signal_shutdown(signal.SIGTERM, "SIGTERM")

    def test_sigint(self):
        self._signal_shutdown(signal.SIGINT, "SIGINT")

    def test_sighup_reopens_log(self):
        srv = self.start_server()
        srv.log.wait_for(event="listening")
        rotated = srv.log_path + ".1"
        os.rename(srv.log_path, rotated)
        srv.signal(signal.SIGHUP)
        # Until the server reopens, lines still go to the renamed file: probe until a
        # message lands in a new file at the original path.
        n = 0

        def reopened():
            nonlocal n
            n += 1
            s = self.connect(srv)
            self.assertEqual(echo(s, b"probe %d\n" % n), b"probe %d\n" % n)
            s.close()
            time.sleep(0.05)
            return os.path.exists(srv.log_path) and srv.log.find(event="message")

        wait_until(reopened, timeout=10, what="a new log file at %s" % srv.log_path,
                   interval=0.1)
        srv.log.wait_for(event="message", text="probe %d" % n)
        old = srv.log.records(rotated)
        self.assertTrue(any(r["event"] == "listening" for r in old))
        new = srv.log.records()
        self.assertFalse(any(r["event"] == "listening" for r in new))
        self.assertTrue(srv.alive())

    # --- log contents

    def test_log_connect_has_peer_and_timestamp(self):
        srv = self.start_server()
        lst = srv.log.wait_for(event="listening")[0]
        self.assertEqual(lst["level"], "info")
        s = self.connect(srv)
        rec = srv.log.wait_for(event="connect", peer=peer_of(s))[0]
        self.assertRegex(rec["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(rec["level"], "info")
        self.assertRegex(rec["conn"], r"^\d+$")
        self.assertTrue(rec["_raw"].startswith("ts=%s level=info event=connect " % rec["ts"]))
        s.sendall(b"hi\n")
        recv_exact(s, 3)
        msg = srv.log.wait_for(event="message", conn=rec["conn"])[0]
        self.assertEqual(msg["peer"], peer_of(s))
        self.assertEqual(msg["text"], "hi")
        self.assertEqual(msg["bytes"], "2")

    def test_log_escapes_message_text(self):
        srv = self.start_server()
        s = self.connect(srv)
        line = (b'q"uote back\\slash tab\tcr\rnul\x00bel\x07esc\x1bdel\x7f'
                b"bad\xff\xfe overlong\xc0\xaf surrogate\xed\xa0\x80 cut\xe2\x82"
                + " ok:é€😀".encode())
        self.assertEqual(echo(s, line + b"\n"), line + b"\n")
        rec = srv.log.wait_for(event="message", peer=peer_of(s))[0]
        self.assertEqual(text_bytes(rec), line)  # decodes back to exactly what was sent
        raw = rec["_raw"]
        for esc in ('\\"', "\\\\", "\\t", "\\r"):
            self.assertIn(esc, raw)
        for hh in ("00", "07", "1b", "7f", "ff", "fe", "c0", "af", "ed", "a0", "80", "e2", "82"):
            self.assertRegex(raw, r"(?i)\\x" + hh)
        self.assertIn(" ok:é€😀", raw)  # valid UTF-8 kept as is
        rawb = raw.encode("utf-8", "surrogateescape")
        rawb.decode("utf-8")  # the log line itself is valid UTF-8
        self.assertFalse(any(b < 0x20 or b == 0x7F for b in rawb), "control byte in %r" % raw)

    def test_log_cannot_be_forged(self):
        srv = self.start_server()
        s = self.connect(srv)
        forged = [
            b"x\nts=2030-01-01T00:00:00.000Z level=info event=stop conns=0\n",
            b"y\rts=2030-01-01T00:00:00.000Z level=info event=stop conns=0\n",
            b'z" event=stop forged="1\n',
            b"w\\\" event=stop forged=1\n",
            b"\x85ts=2030-01-01T00:00:00.000Z level=info event=stop\xe2\x80\xa8event=stop\n",
            # NEL, the paragraph separator, RLO and an isolate: valid UTF-8 that splitlines()
            # would break on or a viewer would show reordered.
            b"v\xc2\x85ts=2030-01-01T00:00:00.000Z event=stop\xe2\x80\xa9\xe2\x80\xaepots"
            b"\xe2\x81\xa6\xc2\x9f\n",
        ]
        for f in forged:
            self.assertEqual(echo(s, f), f)
        lines = [l.rstrip(b"\r") for l in b"".join(forged).split(b"\n")[:-1]]
        recs = srv.log.wait_for(event="message", peer=peer_of(s), count=len(lines))
        self.assertEqual([text_bytes(r) for r in recs], lines)
        self.assertIn("\\u{0085}ts=", recs[-1]["_raw"])
        self.assertIn("\\u{2029}\\u{202e}pots\\u{2066}\\u{009f}", recs[-1]["_raw"])
        # Not even a Unicode-aware reader sees more lines than the server wrote.
        text = srv.log.text()
        self.assertEqual(len(text.splitlines()), text.count("\n"), text)
        for r in srv.log.records():  # parse_logfmt is strict: each line is one record
            self.assertNotEqual(r["event"], "stop", r["_raw"])
            self.assertNotIn("forged", r)
            self.assertNotIn("conns", r)
            self.assertTrue(r["_raw"].startswith("ts="), r["_raw"])

    def test_no_log_messages(self):
        srv = self.start_server("--no-log-messages")
        s = self.connect(srv)
        self.assertEqual(echo(s, b"secret stuff\n"), b"secret stuff\n")
        s.sendall(b"partial secret")
        recv_exact(s, 14)
        s.close()
        recs = srv.log.wait_for(event="message", count=2)
        for r in recs:
            self.assertNotIn("text", r)
            self.assertIn("bytes", r)
        with open(srv.log_path, "rb") as f:
            self.assertNotIn(b"secret", f.read())

    def test_long_line_truncated_in_log(self):
        srv = self.start_server()
        s = self.connect(srv)
        exact = bytes(random.Random(1).choice(b"abcdefgh") for _ in range(256))
        long = b"L" * 300
        self.assertEqual(echo(s, exact + b"\n"), exact + b"\n")
        self.assertEqual(echo(s, long + b"\n"), long + b"\n")
        recs = srv.log.wait_for(event="message", peer=peer_of(s), count=2)
        self.assertEqual(text_bytes(recs[0]), exact)
        self.assertNotIn("truncated", recs[0])
        self.assertEqual(text_bytes(recs[1]), b"L" * 256)
        self.assertEqual(recs[1].get("truncated"), "1")
        self.assertEqual(recs[1]["bytes"], "300")

    def test_partial_last_line_logged_at_disconnect(self):
        srv = self.start_server()
        s = self.connect(srv)
        cid = self.conn_id(srv, s)
        s.sendall(b"complete\nno newline")
        recv_exact(s, len(b"complete\nno newline"))
        s.shutdown(socket.SHUT_WR)
        recv_until_closed(s)
        recs = srv.log.wait_for(event="message", conn=cid, count=2)
        self.assertEqual(recs[0]["text"], "complete")
        self.assertNotIn("partial", recs[0])
        self.assertEqual(recs[1]["text"], "no newline")
        self.assertEqual(recs[1].get("partial"), "1")
        srv.log.wait_for(event="disconnect", conn=cid, reason="eof")

    # --- limits

    def test_max_conns(self):
        srv = self.start_server("--max-conns", "2")
        a = self.connect(srv)
        b = self.connect(srv)
        self.assertEqual(echo(a, b"a\n"), b"a\n")
        self.assertEqual(echo(b, b"b\n"), b"b\n")
        c = self.connect(srv)
        self.assertEqual(recv_until_closed(c, timeout=5)[0], b"")  # refused: closed at once
        srv.log.wait_for(event="denied", peer=peer_of(c))
        self.assertEqual(echo(a, b"a2\n"), b"a2\n")
        a_id = self.conn_id(srv, a)
        a.close()
        srv.log.wait_for(event="disconnect", conn=a_id)

        # A slot is free again: the next connection is served (the count may drop just
        # after the disconnect line is written, so a refusal in that instant is retried).
        def served():
            d = self.connect(srv)
            d.sendall(b"d\n")
            try:
                return recv_exact(d, 2, timeout=2) == b"d\n"
            except (AssertionError, ConnectionResetError):  # refused in that instant
                return False

        wait_until(served, timeout=5, what="a connection accepted after one closed")
        self.assertEqual(echo(b, b"b2\n"), b"b2\n")

    def test_max_msg(self):
        # RFC 862: a line above --max-msg is echoed whole and the connection goes on; only
        # its log record is cut at the limit (truncated=1).
        srv = self.start_server("--max-msg", "100")
        s = self.connect(srv)
        ok = b"k" * 100 + b"\n"
        self.assertEqual(echo(s, ok), ok)  # exactly the limit: logged whole
        cid = self.conn_id(srv, s)
        long_line = b"m" * 150 + b"\n"
        self.assertEqual(echo(s, long_line), long_line)
        self.assertEqual(echo(s, b"fine\n"), b"fine\n")
        recs = srv.log.wait_for(event="message", conn=cid, count=3)
        self.assertEqual(recs[0]["text"], "k" * 100)
        self.assertNotIn("truncated", recs[0])
        self.assertEqual((recs[1]["text"], recs[1]["bytes"], recs[1].get("truncated")),
                         ("m" * 100, "150", "1"))
        self.assertEqual(recs[2]["text"], "fine")
        errs = srv.log.find(pred=lambda r: r["event"] in ("error", "auth_fail", "disconnect")
                            and r.get("conn") == cid)
        self.assertFalse(errs, "the long line ended the connection:\n" + srv.log.tail_text())

    def test_idle_timeout(self):
        srv = self.start_server("--idle-timeout", "1")
        silent = self.connect(srv)
        t0 = time.monotonic()
        cid = self.conn_id(srv, silent)
        data, _ = recv_until_closed(silent, timeout=6)
        self.assertEqual(data, b"")
        self.assertGreater(time.monotonic() - t0, 0.8)
        srv.log.wait_for(event="disconnect", conn=cid, reason="timeout")

    def test_idle_timeout_spares_active_client(self):
        # Messages every 0.3 s for longer than the timeout; the timeout leaves room for a
        # loaded machine's stalls (1 s was seen to pass between two echoes in CI).
        srv = self.start_server("--idle-timeout", "3")
        s = self.connect(srv)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            self.assertEqual(echo(s, b"ping\n"), b"ping\n")
            time.sleep(0.3)
        self.assertEqual(echo(s, b"alive\n"), b"alive\n")

    def test_client_that_never_reads(self):
        srv = self.start_server()
        rss0 = srv.rss_kb()
        # Small client buffers, so that the kernel on our side absorbs little of the echo.
        slow = self.connect(srv, rcvbuf=64 * 1024, sndbuf=64 * 1024)
        slow_id = self.conn_id(srv, slow)
        # Random bytes in lines of 1 KiB (the log stays small, lines stay under --max-msg).
        body = random.Random(4).randbytes(64 * 1024).replace(b"\n", b"N")
        chunk = b"".join(body[i:i + 1023] + b"\n" for i in range(0, 64 * 1023, 1023))
        # ~4 MB is what the issue suggests; up to 16 MB are offered so that kernel socket
        # buffers (which may grow to a few MB) cannot make a correct server look wrong.
        total = 16 * 1024 * 1024
        sent = 0
        slow.setblocking(False)
        last_progress = time.monotonic()
        deadline = time.monotonic() + T(30)
        # Send until the socket takes nothing for a whole second (the server stopped
        # reading) or everything went.
        while sent < total and time.monotonic() - last_progress < 1.0:
            self.assertLess(time.monotonic(), deadline)
            _, w, _ = select.select([], [slow], [], 0.1)
            if w:
                try:
                    # A partial send leaves the rest of the stream for the next one, so
                    # what was sent is always a prefix of the repeated chunk.
                    off = sent % len(chunk)
                    n = slow.send(chunk[off: off + min(len(chunk) - off, total - sent)])
                    sent += n
                    last_progress = time.monotonic()
                except BlockingIOError:
                    pass
        self.assertLess(sent, total, "the server kept reading 16 MB from a peer that never "
                        "reads; log events:\n"
                        + "\n".join(r["_raw"] for r in srv.log.records()
                                    if r["event"] != "message"))
        # The server's socket has unread input: it stopped reading (instead of, say,
        # discarding what it reads).
        self.assertGreater(server_rx_queue(srv.port, slow.getsockname()[1]), 0)
        self.assertEqual(srv.log.find(event="error"), [])
        # Meanwhile another client is served normally.
        other = self.connect(srv)
        for i in range(20):
            line = b"other %d\n" % i
            self.assertEqual(echo(other, line, timeout=2), line)
        rss1 = srv.rss_kb()
        self.assertLess(rss1 - rss0, 64 * 1024, "RSS grew from %d to %d kB" % (rss0, rss1))
        self.assertTrue(srv.alive())
        # Once the slow client reads, everything it sent comes back intact.
        slow.setblocking(True)
        expect = (chunk * (sent // len(chunk) + 1))[:sent]
        got = recv_exact(slow, sent, timeout=30)
        self.assertTrue(got == expect, "echo to the slow reader differs")
        assert_open(slow)
        self.assertEqual(srv.log.find(event="disconnect", conn=slow_id), [])

    def test_no_fd_leak(self):
        srv = self.start_server()
        base = srv.fd_count()  # nothing connected yet
        warm = self.connect(srv)
        self.assertEqual(echo(warm, b"warm\n"), b"warm\n")
        warm.close()
        srv.log.wait_for(event="disconnect", count=1)
        # The disconnect line may be written just before the socket is closed.
        wait_until(lambda: srv.fd_count() == base, timeout=5,
                   what="fd count back to %d after one connection" % base)
        rss0 = srv.rss_kb()
        peers = []
        for i in range(120):
            s = tcp_connect(self, srv.port)
            peers.append(peer_of(s))
            kind = i % 4
            if kind == 0:
                self.assertEqual(echo(s, b"cycle %d\n" % i), b"cycle %d\n" % i)
                s.close()
            elif kind == 1:
                s.sendall(b"exit\n")
                recv_until_closed(s)
                s.close()
            elif kind == 2:
                s.sendall(b"mid")
                recv_exact(s, 3)
                reset_close(s)
            else:
                s.close()  # connect, say nothing
        srv.log.wait_for(event="disconnect", pred=lambda r: r["peer"] in peers,
                         count=len(peers), timeout=20)
        wait_until(lambda: srv.fd_count() <= base, timeout=5,
                   what="fd count back to %d (now %d)" % (base, srv.fd_count()))
        self.assertEqual(srv.fd_count(), base)
        self.assertLess(srv.rss_kb() - rss0, 32 * 1024)


def server_rx_queue(server_port, client_port):
    """Bytes queued unread in the receive queue of the server's socket of one connection
    (from /proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, remote = parts[1], parts[2]
            if (int(local.split(":")[1], 16) == server_port
                    and int(remote.split(":")[1], 16) == client_port):
                return int(parts[4].split(":")[1], 16)
    raise AssertionError("no server socket for client port %d" % client_port)


def recv_until_closed_after(sock, data, timeout=5.0):
    sock.sendall(data)
    return recv_until_closed(sock, timeout)


if __name__ == "__main__":
    unittest.main()
