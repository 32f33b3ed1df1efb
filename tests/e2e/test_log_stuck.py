# SPDX-License-Identifier: MIT
"""End-to-end: a log sink that takes nothing does not keep a stopping server alive.

The server logs to stderr (the default), and stderr is a pipe that no one reads, as with
`subprocess.Popen(stderr=PIPE)` and a parent that never reads it. Message lines fill the
pipe until the log's writer thread blocks in write(2). SIGTERM must still end the server
with status 0 (the writer is given up on after LOG_CLOSE_WAIT_MS; the lines it could not
write are lost), on every model. Before the fix the server never exited."""

import os
import signal
import socket
import subprocess
import unittest

from harness import BIN, HOST, T, each_model, wait_until

LINE = b"x" * 200 + b"\n"
PIPE_FULL_LINES = 2000  # about 600 KB of message lines: ten times a 64 KiB pipe


def writer_blocked(pid):
    """True once a thread of pid sleeps in a pipe write (its wchan)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                if "pipe_write" in f.read():
                    return True
        except OSError:
            pass
    return False


@each_model
class StuckLogMixin:
    def test_sigterm_with_stderr_full(self):
        cmd = [BIN, "server", "-P", "plain", "-m", self.MODEL, "-H", HOST, "-p", "0"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            ready = proc.stdout.readline().decode()
            self.assertTrue(ready.startswith("listening on "), ready)
            port = int(ready.rsplit(":", 1)[1])
            with socket.create_connection((HOST, port), timeout=T(10)) as s:
                got = 0
                want = len(LINE) * PIPE_FULL_LINES
                for _ in range(PIPE_FULL_LINES):
                    s.sendall(LINE)
                    got += len(s.recv(65536))
                while got < want:
                    chunk = s.recv(65536)
                    self.assertTrue(chunk, "server closed before echoing everything")
                    got += len(chunk)
            wait_until(lambda: writer_blocked(proc.pid), timeout=T(10),
                       what="the log writer blocked on the full stderr pipe")
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=T(5))
            except subprocess.TimeoutExpired:
                self.fail("SIGTERM did not stop a server whose log could not be written")
            self.assertEqual(rc, 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


if __name__ == "__main__":
    unittest.main()
