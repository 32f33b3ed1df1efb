# SPDX-License-Identifier: MIT
"""lab-dh and lab-fernet interop with the course notebook's Python programs (issue #4).

Python notebook clients -> secho server, on every I/O model: lab-dh over TCP, lab-fernet over
TCP and UDP. The DH client runs in its strict mode (exactly one recv(1024) per part, as the
notebook reads), which only works if secho paces its parts. Covered: several messages,
Unicode, a message at the size limit, `exit`, `shutdown` allowed and denied, the log.

secho client -> the notebook's own servers (DH threaded, Fernet selectors, Fernet UDP).

The notebook clients pause 50 ms between the parts they send (notebook_peers.PAUSE): the
notebook protocol has no framing, so that pause is the protocol itself, not a wait.
"""
import re
import subprocess
import unittest

from harness import BIN, HOST, PEERS, T, SechoTest, each_model

# lab-dh: the notebook reads a ciphertext with one recv(1024); CFB adds nothing.
DH_LIMIT = 1024
# lab-fernet: the largest message whose token (4*ceil((57 + 16*(n//16 + 1))/3)) fits one
# recv(1024).
FERNET_LIMIT = 703

MESSAGES = [
    "hello",
    "Привет, мир! Секретное сообщение",           # the notebook decodes UTF-8
    "ünïcödé — 你好 — 🙂 emoji",
    'quotes " and \\ backslash\tand a tab',       # log escaping
    "x",
]


def at_limit(n):
    """A message of exactly n UTF-8 bytes that starts with a 2-byte character."""
    return "Ω" + "x" * (n - 2)


def logfmt_text(s):
    """A message as SPEC's log `text="..."` value shows it (valid UTF-8 stays as is)."""
    out = []
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\t\r\n":
            out.append({"\t": "\\t", "\r": "\\r", "\n": "\\n"}[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return "".join(out)


TEXT_RE = re.compile(r'text="((?:[^"\\]|\\.)*)"')


def message_texts(srv):
    """The `text` of every event=message line, in order (still escaped)."""
    return [TEXT_RE.search(r["_raw"]).group(1) if TEXT_RE.search(r["_raw"]) else None
            for r in srv.log.find(regex=r"\bevent=message\b")]


def run(cmd, lines, timeout):
    """Runs a client with `lines` on stdin; subprocess.run kills and reaps it on timeout."""
    return subprocess.run(cmd, input="".join(line + "\n" for line in lines),
                          capture_output=True, text=True, timeout=T(timeout) + 5)


def notebook_client(program, port, lines, *extra, timeout=20):
    return run(PEERS + [program, "-H", HOST, "-p", str(port), "--lifetime",
                        str(T(timeout)), "--timeout", str(T(5)), *extra],
               lines, timeout)


def secho_client(proto, port, lines, *extra, timeout=20):
    return run([BIN, "client", "-P", proto, "-H", HOST, "-p", str(port),
                "--timeout", str(int(T(5))), *extra], lines, timeout)


class _Common:
    def check_session_log(self, srv, sent):
        """Every message sent shows up, in order, as event=message with its text."""
        srv.log.wait_for(regex=r"\bevent=message\b", count=len(sent))
        texts = message_texts(srv)
        self.assertEqual(len(texts), len(sent), srv.log.text())
        for got, msg in zip(texts, sent):
            raw = msg.encode()
            if len(raw) > 256:
                # The first 256 bytes, then truncated=1 (our limit messages are ASCII there).
                self.assertEqual(got, logfmt_text(raw[:256].decode()))
            else:
                self.assertEqual(got, logfmt_text(msg))
        big = [r for r in srv.log.find(regex=r"\bevent=message\b") if "truncated=1" in r["_raw"]]
        self.assertEqual(len(big), sum(1 for m in sent if len(m.encode()) > 256), srv.log.text())

    def check_warning(self, text):
        self.assertRegex(text, r"warning: lab-(dh|fernet)")
        self.assertIn("unauthenticated", text)
        self.assertIn("-P secure", text)


@each_model
class NotebookClientsToSecho(_Common):
    """The notebook's clients against `secho server`, every protocol/transport/model."""

    VARIANTS = {
        # name: (server args, notebook client program and args, size limit)
        "dh": (("-P", "lab-dh"), ("dh-client", "--mode", "strict"), DH_LIMIT),
        "fernet_tcp": (("-P", "lab-fernet"), ("fernet-client",), FERNET_LIMIT),
        "fernet_udp": (("-P", "lab-fernet", "-t", "udp"), ("fernet-udp-client",), FERNET_LIMIT),
    }

    def session(self, variant):
        """Messages, Unicode, the size limit and exit; then a denied shutdown; the server goes
        on serving a third client."""
        args, client, limit = self.VARIANTS[variant]
        srv = self.start_server(*args, "--allow-shutdown", "none")
        self.check_warning(srv.stderr_text())

        lines = MESSAGES + [at_limit(limit), "exit"]
        r = notebook_client(client[0], srv.port, lines, *client[1:])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), lines)
        # exit: the echo came back, then the connection closed / the UDP peer was forgotten.
        srv.log.wait_for(regex=r"\bevent=disconnect\b.* reason=exit\b")
        self.check_session_log(srv, lines)
        self.assertEqual(srv.log.find(regex=r"level=(warn|error)"), [], srv.log.text())

        # shutdown from loopback with --allow-shutdown none: refused, server goes on.
        r = notebook_client(client[0], srv.port, ["before", "shutdown"], *client[1:])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["before", "error: shutdown not permitted"])
        srv.log.wait_for(regex=r"level=warn event=denied\b.*command=shutdown")
        self.assertTrue(srv.alive())

        r = notebook_client(client[0], srv.port, ["still serving", "exit"], *client[1:])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["still serving", "exit"])
        srv.log.wait_for(regex=r"\bevent=disconnect\b.* reason=exit\b", count=2)
        self.assertNotIn("event=stop", srv.log.text())
        self.assertTrue(srv.alive())

    def shutdown(self, variant):
        """shutdown from loopback (the default --allow-shutdown): echoed, exit 0 within 2 s,
        event=stop logged."""
        args, client, _ = self.VARIANTS[variant]
        srv = self.start_server(*args)
        r = notebook_client(client[0], srv.port, ["last words", "shutdown"], *client[1:])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["last words", "shutdown"])
        # The client has the echo, so the server had the command: 2 s from now at most.
        self.assertEqual(srv.wait_exit(T(2)), 0, srv.stderr_text())
        log = srv.log.text()
        self.assertRegex(log, r'event=message\b.*text="shutdown"')
        self.assertRegex(log, r"\bevent=stop\b")
        self.assertEqual(srv.log.find(regex=r"level=(warn|error)"), [], log)


def _add_variant_tests():
    for variant in NotebookClientsToSecho.VARIANTS:
        def session(self, v=variant):
            self.session(v)

        def shutdown(self, v=variant):
            self.shutdown(v)
        setattr(NotebookClientsToSecho, f"test_{variant}_session", session)
        setattr(NotebookClientsToSecho, f"test_{variant}_shutdown", shutdown)


_add_variant_tests()


class SechoClientToNotebookServers(_Common, SechoTest):
    """`secho client` against the notebook's own servers: stdout holds exactly the echoes."""

    def check(self, program, proto, limit, *client_args):
        srv = self.start_peer_server(program)
        lines = MESSAGES + [at_limit(limit), "exit"]
        r = secho_client(proto, srv.port, lines, *client_args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "".join(m + "\n" for m in lines))
        self.check_warning(r.stderr)
        return srv

    def test_dh_threaded_server(self):
        srv = self.check("dh-server", "lab-dh", DH_LIMIT)
        # The notebook's handler thread ends on exit; the server goes on accepting.
        self.assertTrue(srv.alive())

    def test_fernet_selectors_server(self):
        self.check("fernet-server", "lab-fernet", FERNET_LIMIT)

    def test_fernet_udp_server(self):
        srv = self.check("fernet-udp-server", "lab-fernet", FERNET_LIMIT, "-t", "udp")
        # The notebook's UDP server closes itself on exit.
        self.assertEqual(srv.wait_exit(T(5)), 0, srv.stderr_text())

    def test_dh_threaded_server_shutdown(self):
        # The notebook's DH server ends the process on shutdown (notebook_peers: os._exit(0)).
        srv = self.start_peer_server("dh-server")
        r = secho_client("lab-dh", srv.port, ["one", "shutdown"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "one\nshutdown\n")
        self.assertEqual(srv.wait_exit(T(5)), 0, srv.stderr_text())


if __name__ == "__main__":
    unittest.main()
