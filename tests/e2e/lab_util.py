# SPDX-License-Identifier: MIT
"""Small helpers for the lab-protocol e2e tests (test_lab_*.py): start a server (secho or a
notebook peer) on port 0 and wait for its `listening on HOST:PORT` line, wait for log lines
with a deadline, run clients, and kill+reap everything through the test's addCleanup.

Every deadline is in seconds and multiplied by SECHO_TIMEOUT_SCALE (default 1, or 3 when
SECHO_SANITIZER is set). Waiting polls files every 10 ms until the deadline: no blind sleeps.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SECHO_BIN = os.environ.get("SECHO_BIN") or os.path.join(HERE, "..", "..", "build", "secho")
SANITIZER = os.environ.get("SECHO_SANITIZER", "")
SCALE = float(os.environ.get("SECHO_TIMEOUT_SCALE") or (3 if SANITIZER else 1))
# The notebook peers need Debian's python3-cryptography.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PEERS = [PYTHON, os.path.join(HERE, "notebook_peers.py")]
LOOPBACK = "127.0.0.1"


def scaled(seconds):
    return seconds * SCALE


def models():
    """I/O models to cover; under TSan only threads and reactors (see tests.cmake)."""
    return ("threads", "reactors") if SANITIZER == "tsan" else ("threads", "epoll", "reactors")


def wait_until(pred, timeout, what):
    """Polls pred() until it returns something truthy; fails after scaled(timeout) s."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {scaled(timeout):.1f} s waiting for {what}")
        time.sleep(0.01)


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


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


class Proc:
    """A server process started with its stdout/stderr in temp files. It must print
    `listening on HOST:PORT`; kill+reap is registered with test.addCleanup."""

    def __init__(self, test, cmd, ready_timeout=10):
        self.dir = tempfile.mkdtemp(prefix="secho-lab-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        self.out_path = os.path.join(self.dir, "stdout")
        self.err_path = os.path.join(self.dir, "stderr")
        self.cmd = cmd
        self.exit_expected = False
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        test.addCleanup(self.kill)

        def ready():
            m = re.search(r"^listening on (\S+):(\d+)$", self.stdout(), re.M)
            if m:
                return m
            if self.proc.poll() is not None:
                raise AssertionError(f"{cmd[:3]} exited {self.proc.returncode} before "
                                     f"listening: {self.stderr()}")
            return None

        m = wait_until(ready, ready_timeout, f"'listening on' from {' '.join(cmd[:3])}")
        self.host, self.port = m.group(1), int(m.group(2))

    def stdout(self):
        return read_text(self.out_path)

    def stderr(self):
        return read_text(self.err_path)

    def tail(self):
        return ""

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout):
        """Return code once the process has exited; fails after scaled(timeout) s."""
        self.exit_expected = True
        try:
            return self.proc.wait(timeout=scaled(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{' '.join(self.cmd[:3])} still running after "
                                 f"{scaled(timeout):.1f} s") from None

    def kill(self):
        died = self.proc.poll()
        if died is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        # A server that went away unasked fails the test, with what it left behind.
        if died is not None and not self.exit_expected:
            raise AssertionError(f"{' '.join(self.cmd[:3])} exited by itself ({died}); "
                                 f"stderr:\n{self.stderr()[-4000:]}\n{self.tail()}")
        # A sanitizer report fails the test even if the process went on (or was killed).
        if SANITIZER and re.search(r"ERROR: \w+Sanitizer|WARNING: ThreadSanitizer",
                                   self.stderr()):
            raise AssertionError(f"{SANITIZER} report from {self.cmd[0]}:\n{self.stderr()}")


class SechoServer(Proc):
    """`secho server ARGS -p 0 -l LOG`; the log is a temp file."""

    def __init__(self, test, *args):
        self.log_path = None
        tmp = tempfile.mkdtemp(prefix="secho-lablog-")
        test.addCleanup(shutil.rmtree, tmp, True)
        self.log_path = os.path.join(tmp, "server.log")
        super().__init__(test, [SECHO_BIN, "server", *args, "-H", LOOPBACK, "-p", "0",
                                "-l", self.log_path])

    def tail(self):
        return "log:\n" + self.log()[-3000:]

    def log(self):
        return read_text(self.log_path) if os.path.exists(self.log_path) else ""

    def log_lines(self, pattern):
        return [ln for ln in self.log().splitlines() if re.search(pattern, ln)]

    def wait_log(self, pattern, count=1, timeout=5):
        """The log lines matching regex `pattern`, once there are at least `count`."""
        return wait_until(lambda: (lambda ls: ls if len(ls) >= count else None)(
            self.log_lines(pattern)), timeout,
            f"{count} log line(s) matching {pattern!r}; log:\n{self.log()}")

    def message_texts(self):
        """The `text` of every event=message line, in order (still escaped)."""
        return [TEXT_RE.search(ln).group(1) if TEXT_RE.search(ln) else None
                for ln in self.log_lines(r"\bevent=message\b")]


def notebook_server(test, program, *extra, lifetime=60):
    return Proc(test, PEERS + [program, "-H", LOOPBACK, "-p", "0",
                               "--lifetime", str(scaled(lifetime)), *extra])


def run(cmd, lines, timeout):
    """Runs a client with `lines` on stdin; subprocess.run kills and reaps it on timeout."""
    return subprocess.run(cmd, input="".join(line + "\n" for line in lines),
                          capture_output=True, text=True, timeout=scaled(timeout) + 5)


def notebook_client(program, port, lines, *extra, timeout=20):
    return run(PEERS + [program, "-H", LOOPBACK, "-p", str(port), "--lifetime",
                        str(scaled(timeout)), "--timeout", str(scaled(5)), *extra],
               lines, timeout)


def secho_client(proto, port, lines, *extra, timeout=20):
    return run([SECHO_BIN, "client", "-P", proto, "-H", LOOPBACK, "-p", str(port),
                "--timeout", str(int(scaled(5))), *extra], lines, timeout)
