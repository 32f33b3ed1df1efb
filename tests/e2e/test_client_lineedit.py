# SPDX-License-Identifier: MIT
"""End-to-end: the interactive client's line editing and history (libedit builds), on a pty:
edited lines reach the server as edited, Up recalls, history is kept per protocol."""

import os
import pty
import select
import stat
import subprocess
import shutil
import tempfile
import termios
import time
import unittest

from harness import BIN, T, SechoTest

PROMPT = b"secho> "


def line_editing():
    out = subprocess.run([BIN, "--version"], stdout=subprocess.PIPE, check=True).stdout
    return b"line editing: libedit" in out


class Terminal:
    """`secho client ARGS` on a pty, with its own config and state homes."""

    def __init__(self, test, port, *args, history=None):
        self.state = tempfile.mkdtemp(prefix="secho-e2e-state-")
        test.addCleanup(shutil.rmtree, self.state, True)
        if history is not None:  # written before the client starts, so it loads it
            os.makedirs(os.path.dirname(self.history()), 0o700)
            with open(self.history(), "w") as f:
                f.write(history)
        env = dict(os.environ, TERM="xterm", XDG_CONFIG_HOME=self.state,
                   XDG_STATE_HOME=self.state)
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen([BIN, "client", "-p", str(port)] + list(args), stdin=slave,
                                  stdout=slave, stderr=slave, start_new_session=True, env=env)
        os.close(slave)
        test.addCleanup(os.close, self.master)
        test.addCleanup(lambda: (self.p.poll() is None and self.p.kill(), self.p.wait()))
        self.out = b""

    def history(self):
        return os.path.join(self.state, "secho", "history")

    def wait_prompt(self, count):
        """Reads until the prompt was shown count times in all."""
        deadline = time.monotonic() + T(10)
        while self.out.count(PROMPT) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no prompt #%d; got %r" % (count, self.out[-300:]))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError("EOF; got %r" % self.out[-300:])
                self.out += chunk

    def type(self, data):
        os.write(self.master, data)

    def exit(self):
        self.type(b"exit\r")
        try:
            return self.p.wait(timeout=T(5))
        except subprocess.TimeoutExpired:
            return None


class LineEditTest(SechoTest):
    PROTO = "plain"

    def test_version_names_the_line_editor(self):
        out = subprocess.run([BIN, "--version"], stdout=subprocess.PIPE, check=True).stdout
        self.assertRegex(out.decode(), r"(?m)^line editing: (libedit|none)$")

    @unittest.skipUnless(line_editing(), "built without libedit")
    def test_edit_keys_recall_and_history(self):
        srv = self.start_server()
        term = Terminal(self, srv.port, "-P", "plain")
        term.wait_prompt(1)
        # hel, Left, X, Ctrl-A, Y, Enter: the line sent is the edited one.
        term.type(b"hel\x1b[DX\x01Y\r")
        srv.log.wait_for(event="message", text="YheXl")
        term.wait_prompt(2)
        # Up recalls it.
        term.type(b"\x1b[A\r")
        srv.log.wait_for(event="message", text="YheXl", count=2)
        term.wait_prompt(3)
        # Keys are read raw while a line is edited, never echoed by the terminal as typed.
        self.assertNotIn(b"^[", term.out)
        self.assertEqual(term.exit(), 0, term.out)
        # The client gave the terminal back as it found it.
        self.assertTrue(termios.tcgetattr(term.master)[3] & termios.ECHO)
        srv.log.wait_for(event="message", text="exit")  # the log is written asynchronously
        texts = [r.get("text") for r in srv.log.records() if r.get("event") == "message"]
        self.assertEqual(texts, ["YheXl", "YheXl", "exit"])
        with open(term.history(), "rb") as f:
            self.assertEqual(f.read(), b"YheXl\nYheXl\nexit\n")
        self.assertEqual(stat.S_IMODE(os.stat(term.history()).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(term.history())).st_mode), 0o700)

    @unittest.skipUnless(line_editing(), "built without libedit")
    def test_history_is_loaded(self):
        srv = self.start_server()
        term = Terminal(self, srv.port, "-P", "plain", history="from-before\n")
        term.wait_prompt(1)
        term.type(b"\x1b[A\r")
        srv.log.wait_for(event="message", text="from-before")
        term.wait_prompt(2)
        self.assertEqual(term.exit(), 0, term.out)

    @unittest.skipUnless(line_editing(), "built without libedit")
    def test_udp_lines_are_edited_too(self):
        srv = self.start_server(transport="udp")
        term = Terminal(self, srv.port, "-P", "plain", "-t", "udp")
        term.wait_prompt(1)
        term.type(b"ab\x1b[DX\r")
        srv.log.wait_for(event="message", text="aXb")
        term.wait_prompt(2)
        self.assertEqual(term.exit(), 0, term.out)

    def test_piped_input_writes_no_history(self):
        srv = self.start_server()
        state = tempfile.mkdtemp(prefix="secho-e2e-state-")
        self.addCleanup(shutil.rmtree, state, True)
        env = dict(os.environ, XDG_CONFIG_HOME=state, XDG_STATE_HOME=state)
        cp = subprocess.run([BIN, "client", "-P", "plain", "-p", str(srv.port)],
                            input=b"piped\n", stdout=subprocess.PIPE, env=env, timeout=T(10))
        self.assertEqual(cp.returncode, 0)
        self.assertEqual(cp.stdout, b"piped\n")
        self.assertFalse(os.path.exists(os.path.join(state, "secho", "history")))


class SecureHistoryTest(SechoTest):
    PROTO = "secure"

    @unittest.skipUnless(line_editing(), "built without libedit")
    def test_secure_keeps_no_history_unless_asked(self):
        srv = self.start_server()
        term = Terminal(self, srv.port, "--accept-new")
        term.wait_prompt(1)
        term.type(b"secret-text\r")
        srv.log.wait_for(event="message", text="secret-text")
        term.wait_prompt(2)
        self.assertEqual(term.exit(), 0, term.out)
        self.assertFalse(os.path.exists(term.history()))

        term = Terminal(self, srv.port, "--accept-new", "--history")
        term.wait_prompt(1)
        term.type(b"kept-text\r")
        srv.log.wait_for(event="message", text="kept-text")
        term.wait_prompt(2)
        self.assertEqual(term.exit(), 0, term.out)
        with open(term.history(), "rb") as f:
            self.assertEqual(f.read(), b"kept-text\nexit\n")


if __name__ == "__main__":
    unittest.main()
