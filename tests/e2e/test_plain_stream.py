# SPDX-License-Identifier: MIT
"""End-to-end: plain TCP is RFC 862 for binary streams of any length (issue #8): bytes with no
newline, and lines far above --max-msg, are echoed in full and in order on every model; such a
line is logged truncated and is never a command."""

import random
import socket
import unittest

from harness import assert_open, each_model, echo_roundtrip, recv_until_closed, text_bytes

MIB = 1 << 20


def newline_free(n, seed):
    """n random bytes with every newline replaced, so the whole stream is one line; the last
    is a letter, so that no \\r before a newline we add shortens the logged line."""
    return random.Random(seed).randbytes(n - 1).replace(b"\n", b"N") + b"Z"


@each_model
class PlainStream:
    PROTO = "plain"
    TRANSPORT = "tcp"

    def test_4mib_without_newline(self):
        # Four times the default --max-msg (1 MiB), as `nc < file` or an echo benchmark sends.
        srv = self.start_server()
        s = self.connect(srv)
        cid = self.conn_id(srv, s)
        blob = newline_free(4 * MIB, 862)
        got = echo_roundtrip(s, blob, timeout=60)
        self.assertEqual(len(got), len(blob))
        self.assertTrue(got == blob, "the 4 MiB stream came back altered")
        s.shutdown(socket.SHUT_WR)
        rest, how = recv_until_closed(s, timeout=10)
        self.assertEqual((rest, how), (b"", "eof"))
        srv.log.wait_for(event="disconnect", conn=cid, reason="eof")
        recs = srv.log.find(event="message", conn=cid)
        self.assertEqual(len(recs), 1, srv.log.tail_text())
        rec = recs[0]
        self.assertEqual((rec["bytes"], rec.get("truncated"), rec.get("partial")),
                         (str(len(blob)), "1", "1"))
        self.assertEqual(text_bytes(rec), blob[:256])
        errs = srv.log.find(pred=lambda r: r["event"] in ("error", "auth_fail"))
        self.assertFalse(errs, srv.log.tail_text())

    def test_long_lines_keep_flowing(self):
        # Lines of 2 MiB and 3 MiB between short ones: each logged once, truncated, and the
        # connection goes on.
        srv = self.start_server()
        s = self.connect(srv)
        cid = self.conn_id(srv, s)
        a = newline_free(2 * MIB, 1) + b"\n"
        b = newline_free(3 * MIB, 2) + b"\r\n"
        data = b"one\n" + a + b"two\n" + b + b"three\n"
        self.assertTrue(echo_roundtrip(s, data, timeout=60) == data, "the stream came back altered")
        recs = srv.log.wait_for(event="message", conn=cid, count=5)
        self.assertEqual([r["bytes"] for r in recs],
                         ["3", str(2 * MIB), "3", str(3 * MIB), "5"])
        self.assertEqual([r.get("truncated") for r in recs], [None, "1", None, "1", None])
        self.assertEqual(text_bytes(recs[1]), a[:256])
        self.assertEqual(text_bytes(recs[3]), b[:256])
        assert_open(s)
        s.sendall(b"exit\n")
        self.assertEqual(recv_until_closed(s, timeout=10), (b"exit\n", "eof"))
        srv.log.wait_for(event="disconnect", conn=cid, reason="exit")

    def test_long_line_starting_with_exit_is_no_command(self):
        srv = self.start_server()
        s = self.connect(srv)
        cid = self.conn_id(srv, s)
        line = b"exit" + newline_free(MIB + 10, 3) + b"\n"
        self.assertTrue(echo_roundtrip(s, line, timeout=30) == line)
        rec = srv.log.wait_for(event="message", conn=cid)[0]
        self.assertEqual((rec["bytes"], rec.get("truncated")), (str(len(line) - 1), "1"))
        self.assertTrue(text_bytes(rec).startswith(b"exit"))
        assert_open(s)
        self.assertEqual(echo_roundtrip(s, b"still here\n"), b"still here\n")
        self.assertFalse(srv.log.find(event="disconnect", conn=cid), srv.log.tail_text())

    def test_small_max_msg(self):
        # Under --max-msg 3 even `exit` is longer than a message may be: echoed, logged cut
        # at 3 bytes, and no command. `shutdown` alike, so the server keeps running.
        srv = self.start_server("--max-msg", "3", "--allow-shutdown", "any")
        s = self.connect(srv)
        cid = self.conn_id(srv, s)
        data = b"exit\nshutdown\nabc\n"
        self.assertEqual(echo_roundtrip(s, data), data)
        recs = srv.log.wait_for(event="message", conn=cid, count=3)
        self.assertEqual([(r["text"], r["bytes"], r.get("truncated")) for r in recs],
                         [("exi", "4", "1"), ("shu", "8", "1"), ("abc", "3", None)])
        assert_open(s)
        self.assertFalse(srv.log.find(event="shutdown"), srv.log.tail_text())
        self.assertFalse(srv.log.find(event="disconnect", conn=cid), srv.log.tail_text())


if __name__ == "__main__":
    unittest.main()
