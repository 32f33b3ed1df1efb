# SPDX-License-Identifier: MIT
"""Helpers for the e2e tests: start the real binary on 127.0.0.1 with -p 0, wait for its
readiness line and for log events (deadlines in seconds, scaled by SECHO_TIMEOUT_SCALE),
and always kill and reap it."""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time

BIN = os.environ.get("SECHO_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "secho"
)
SANITIZER = os.environ.get("SECHO_SANITIZER", "")
SCALE = float(os.environ.get("SECHO_TIMEOUT_SCALE") or (3 if SANITIZER else 1))
# ThreadSanitizer supports the models that use threads plus reactors; epoll alone adds
# nothing under it and is left out to keep the run short.
MODELS = ["threads", "reactors"] if SANITIZER == "tsan" else ["threads", "epoll", "reactors"]


def deadline(seconds):
    return time.monotonic() + seconds * SCALE


_LOGFMT = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_logfmt(line):
    out = {}
    for k, v in _LOGFMT.findall(line):
        if v.startswith('"'):
            v = v[1:-1]
        out[k] = v
    return out


class TempHome:
    """A temporary XDG_CONFIG_HOME (keys, known_hosts) removed at the end."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="secho-e2e-")
        os.chmod(self.path, 0o700)

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def env(self):
        env = dict(os.environ)
        env["XDG_CONFIG_HOME"] = self.path
        return env

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Server:
    """A running `secho server`. Use as a context manager; the process is always reaped."""

    def __init__(self, home, *args, ready_timeout=10):
        self.home = home
        self.log_path = home.file("server-%d.log" % id(self))
        cmd = [BIN, "server", "-H", "127.0.0.1", "-p", "0", "-l", self.log_path] + list(args)
        self.err_path = home.file("server-%d.err" % id(self))
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=home.env(),
            )
        self.port = None
        self.key_path = home.file("secho", "server.key")
        if "-k" in args:
            self.key_path = args[list(args).index("-k") + 1]
        self.banner = b""
        try:
            self._wait_ready(ready_timeout)
        except BaseException:
            self.kill()
            raise

    def _wait_ready(self, seconds):
        end = deadline(seconds)
        buf = b""
        fd = self.proc.stdout.fileno()
        while True:
            m = re.search(rb"listening on (\S+):(\d+)\n", buf)
            if m:
                self.port = int(m.group(2))
                self.banner = buf
                return
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("server not ready; stderr: %r" % self._stderr())
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(
                        "server exited before ready (rc %s): %r" % (self.proc.wait(), self._stderr())
                    )
                buf += chunk

    def _stderr(self):
        with open(self.err_path, "rb") as f:
            return f.read()

    def public_key(self):
        """The server's raw public key, read from its key file with `cryptography`."""
        return key_file_public(self.key_path)

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def events(self, name=None):
        evs = [parse_logfmt(line) for line in self.log_text().splitlines()]
        return [e for e in evs if name is None or e.get("event") == name]

    def settle(self, seconds=5):
        """Waits until every logged connect has its disconnect logged: the log is written
        asynchronously, so counts taken before this may miss an earlier test's lines."""
        end = deadline(seconds)
        while len(self.events("disconnect")) < len(self.events("connect")):
            if time.monotonic() > end:
                raise AssertionError("connections still open; log:\n%s" % self.log_text())
            time.sleep(0.02)

    def wait_event(self, name, pred=lambda e: True, seconds=5, count=1):
        """Waits until `count` events `name` matching pred are in the log; returns them."""
        end = deadline(seconds)
        while True:
            evs = [e for e in self.events(name) if pred(e)]
            if len(evs) >= count:
                return evs
            if time.monotonic() > end:
                raise AssertionError(
                    "no %d x event=%s within %s s; log:\n%s" % (count, name, seconds, self.log_text())
                )
            if self.proc.poll() is not None and not evs:
                raise AssertionError("server exited (rc %s); log:\n%s" % (self.proc.returncode, self.log_text()))
            time.sleep(0.02)

    def wait_exit(self, seconds):
        try:
            return self.proc.wait(timeout=seconds * SCALE)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()


def run_client(home, port, *args, input=b"", timeout=20, extra_env=None):
    """Runs `secho client` to completion with stdin from `input`."""
    env = home.env()
    if extra_env:
        env.update(extra_env)
    cmd = [BIN, "client", "-H", "127.0.0.1", "-p", str(port)] + list(args)
    return subprocess.run(
        cmd, input=input, capture_output=True, env=env, timeout=timeout * SCALE
    )


def vectors_dir():
    return os.environ.get("SECHO_VECTORS") or os.path.join(
        os.path.dirname(__file__), "..", "vectors"
    )


def key_file_public(path):
    from cryptography.hazmat.primitives import serialization

    with open(path, "rb") as f:
        priv = serialization.load_pem_private_key(f.read(), password=None)
    return priv.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
