# SPDX-License-Identifier: MIT
"""The one harness of the secho end-to-end tests (Python stdlib only).

The server fixture
  Every test class derives from SechoTest and starts servers with
      srv = self.start_server(*args)         # the real `secho server`
      srv = self.start_peer_server(program)  # a notebook_peers.py server
  A server runs in its own session (a signal aimed at the test runner's process group never
  reaches it) with -H 127.0.0.1 -p 0, a log file of its own (-l) and a config home of its own
  (XDG_CONFIG_HOME, or the TempHome passed as home=). Starting it waits for its first stdout
  line, `listening on HOST:PORT`, and fills in srv.port. srv.log reads the log file: find()
  and wait_for() match records by field (event="connect", conn=...) and/or a regex on the raw
  line; every wait polls against a deadline, nothing sleeps and hopes.
  When the test ends (a cleanup, after the test's sockets are closed) the server is stopped
  and checked: a secho server still running gets SIGTERM and must exit 0 within T(5) s with
  event=stop in its log; a server that already ended must have been ended by the test
  (wait_exit, kill or stop) and not by a crash; stderr must hold no sanitizer report. Then it
  is killed and reaped by its PID, whatever happened. srv.stop() does the same mid-test.
  A class-wide server (setUpClass) is started with cls.start_class_server() and checked when
  the class is done.

The model loop
  A test class whose tests must pass on every I/O model is written as a plain mixin (not a
  TestCase) and decorated with @each_model: it makes one SechoTest class per model in MODELS,
  named MIXIN_MODEL (PlainTcp_threads, PlainTcp_epoll, PlainTcp_reactors, and PlainTcp_uring
  when the binary has the io_uring model), with MODEL set.
  start_server() passes -m MODEL, and -P PROTO / -t TRANSPORT when the class sets those.
  Each (test, model) pair is thus its own test, with its own server, setUp and cleanups.

Environment:
  SECHO_BIN            the secho binary (default ../../build/secho, relative to here)
  SECHO_SANITIZER      "", "asan" or "tsan": under tsan only the threads and reactors models
                       run (epoll and uring alone add no threads to check); under any sanitizer every
                       deadline is scaled up (x3 unless SECHO_TIMEOUT_SCALE says otherwise)
  SECHO_TIMEOUT_SCALE  multiplies every deadline (default 1, 3 under a sanitizer)
  SECHO_VECTORS        the directory of the Noise test vectors

Timeouts given to the helpers here are nominal seconds, scaled with T() inside; only
Server.wait_exit takes seconds as they are (its callers often compute them from a start time).
"""

import fcntl
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(os.environ.get("SECHO_BIN") or os.path.join(HERE, "..", "..", "build", "secho"))
SANITIZER = os.environ.get("SECHO_SANITIZER", "").strip().lower()
_scale_env = os.environ.get("SECHO_TIMEOUT_SCALE", "").strip()
SCALE = float(_scale_env) if _scale_env else (3.0 if SANITIZER else 1.0)



def _uring_built():
    """Whether the binary has the io_uring model (`-m uring`): liburing was found when it
    was built, which `secho --version` says."""
    try:
        out = subprocess.run([BIN, "--version"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return b"io_uring: liburing" in out


URING_BUILT = _uring_built()
ALL_MODELS = ("threads", "epoll", "reactors") + (("uring",) if URING_BUILT else ())
# ThreadSanitizer runs only the models that are actually multi-threaded.
MODELS = ("threads", "reactors") if SANITIZER == "tsan" else ALL_MODELS
HOST = "127.0.0.1"

# The notebook peers need Debian's python3-cryptography.
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
PEERS = [PYTHON, os.path.join(HERE, "notebook_peers.py")]

SANITIZER_REPORT = re.compile(rb"ERROR: \w*Sanitizer|WARNING: ThreadSanitizer|runtime error:")


def T(seconds):
    """A deadline in seconds, scaled for slow (sanitizer, shared CI) machines."""
    return seconds * SCALE


def deadline(seconds):
    """The monotonic time T(seconds) from now."""
    return time.monotonic() + T(seconds)


def vectors_dir():
    return os.environ.get("SECHO_VECTORS") or os.path.join(HERE, "..", "vectors")


class _Budget:
    """A polling deadline that a jump of the clock cannot exhaust at once: each poll counts
    for at most MAX_STEP seconds of the budget (this VM's monotonic clock was seen to jump
    by seconds when the machine was paused, failing a wait the server had no time to
    satisfy). A truly slow iteration just makes the wait longer."""

    MAX_STEP = 0.5

    def __init__(self, seconds):
        self.left = seconds
        self.last = time.monotonic()

    def expired(self):
        now = time.monotonic()
        self.left -= min(max(now - self.last, 0.0), self.MAX_STEP)
        self.last = now
        return self.left <= 0


def wait_until(pred, timeout=10.0, what="condition", interval=0.02):
    """Polls pred() until it returns something truthy, which is returned; fails after
    T(timeout) s."""
    clock = _Budget(T(timeout))
    while True:
        v = pred()
        if v:
            return v
        if clock.expired():
            raise AssertionError("timed out after %.1f s waiting for %s" % (T(timeout), what))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# logfmt

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class LogfmtError(ValueError):
    pass


def _unescape(raw, line):
    """Decodes a quoted logfmt value body. \\xHH becomes the byte HH, \\u{HHHH} the UTF-8 of
    that code point (the C1 controls, line/paragraph separators and bidi controls); the result
    is a str in which bytes that are not valid UTF-8 are surrogate-escaped, so that
    value.encode("utf-8", "surrogateescape") gives back the exact bytes."""
    out = bytearray()
    i = 0
    data = raw.encode("utf-8", "surrogateescape")
    simple = {ord('"'): b'"', ord("\\"): b"\\", ord("t"): b"\t", ord("r"): b"\r", ord("n"): b"\n"}
    while i < len(data):
        c = data[i]
        if c != 0x5C:  # backslash
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(data):
            raise LogfmtError("dangling backslash in %r" % line)
        e = data[i + 1]
        if e in simple:
            out += simple[e]
            i += 2
        elif e == ord("x") and re.fullmatch(rb"[0-9A-Fa-f]{2}", data[i + 2:i + 4]):
            out.append(int(data[i + 2:i + 4], 16))
            i += 4
        elif e == ord("u") and re.match(rb"\{[0-9A-Fa-f]{4}\}", data[i + 2:i + 8]):
            out += chr(int(data[i + 3:i + 7], 16)).encode("utf-8")
            i += 8
        else:
            raise LogfmtError("bad escape \\%s in %r" % (chr(e), line))
    return out.decode("utf-8", "surrogateescape")


def parse_logfmt(line):
    """Parses one logfmt line (without its newline) into a dict. Strict: raises LogfmtError
    on anything that is not `key=value` pairs separated by single spaces, with values either
    bare (printable ASCII without space, `"` or `=`, as SPEC's log format says) or
    double-quoted with the escapes of SPEC.
    The raw line is kept under the key "_raw"."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "surrogateescape")
    rec = {"_raw": line}
    i, n = 0, len(line)
    if n == 0:
        raise LogfmtError("empty line")
    while i < n:
        m = _KEY_RE.match(line, i)
        if not m:
            raise LogfmtError("expected a key at %d in %r" % (i, line))
        key = m.group(0)
        i = m.end()
        if i >= n or line[i] != "=":
            raise LogfmtError("expected '=' after %r in %r" % (key, line))
        i += 1
        if i < n and line[i] == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            if j >= n:
                raise LogfmtError("unterminated quote in %r" % line)
            value = _unescape(line[i + 1:j], line)
            i = j + 1
        else:
            j = i
            while j < n and line[j] != " ":
                if line[j] in '"=' or not 0x20 < ord(line[j]) < 0x7f:
                    raise LogfmtError("bad byte in bare value in %r" % line)
                j += 1
            value = line[i:j]
            i = j
        if key in rec:
            raise LogfmtError("duplicate key %r in %r" % (key, line))
        rec[key] = value
        if i < n:
            if line[i] != " ":
                raise LogfmtError("expected a space at %d in %r" % (i, line))
            i += 1
            if i >= n:
                raise LogfmtError("trailing space in %r" % line)
    return rec


def text_bytes(rec):
    """The exact bytes of a record's text= value."""
    return rec["text"].encode("utf-8", "surrogateescape")


class ServerLog:
    """The server's log file, read by polling (the server writes it from its own thread).
    Only complete lines count. A record is the dict parse_logfmt makes of a line; find() and
    wait_for() select records whose fields equal `fields` (as strings), for which pred(record)
    holds, and whose raw line matches the regex `regex` (re.search)."""

    def __init__(self, path):
        self.path = path

    def raw_lines(self, path=None):
        """Complete lines (bytes, without newline) currently in the file."""
        try:
            with open(path or self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        return data[:end].split(b"\n")

    def records(self, path=None):
        return [parse_logfmt(l) for l in self.raw_lines(path)]

    def find(self, pred=None, regex=None, path=None, **fields):
        out = []
        for r in self.records(path):
            if (all(r.get(k) == str(v) for k, v in fields.items())
                    and (pred is None or pred(r))
                    and (regex is None or re.search(regex, r["_raw"]))):
                out.append(r)
        return out

    def wait_for(self, pred=None, count=1, timeout=10.0, regex=None, path=None, what=None,
                 **fields):
        """Waits until at least `count` records match; returns the matching records. Fails
        with the log's tail after T(timeout) s."""
        clock = _Budget(T(timeout))
        while True:
            found = self.find(pred, regex=regex, path=path, **fields)
            if len(found) >= count:
                return found
            if clock.expired():
                want = dict(fields)
                if regex is not None:
                    want["regex"] = regex
                raise AssertionError(
                    "log: wanted %d record(s) matching %s%s, found %d after %.1f s; log tail:\n%s"
                    % (count, want, " and " + what if what else "", len(found), T(timeout),
                       self.tail_text(30, path)))
            time.sleep(0.02)

    def settle(self, timeout=5.0):
        """Waits until every logged connect has its disconnect logged: the log is written
        asynchronously, so counts taken before this may miss an earlier test's lines."""
        clock = _Budget(T(timeout))
        while len(self.find(event="disconnect")) < len(self.find(event="connect")):
            if clock.expired():
                raise AssertionError("connections still open after %.1f s; log tail:\n%s"
                                     % (T(timeout), self.tail_text()))
            time.sleep(0.02)

    def text(self):
        """The whole file as text (partial last line included)."""
        try:
            with open(self.path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def tail_text(self, n=30, path=None):
        return b"\n".join(self.raw_lines(path)[-n:]).decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# /proc

def proc_fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def proc_cpu_seconds(pid):
    """User + system CPU time of a whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2:].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def non_loopback_ipv4():
    """One IPv4 address of this host that is not loopback, or None."""
    for _, name in socket.if_nameindex():
        if name == "lo":
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            req = struct.pack("256s", name.encode()[:15])
            res = fcntl.ioctl(s.fileno(), 0x8915, req)  # SIOCGIFADDR
            addr = socket.inet_ntoa(res[20:24])
            if not addr.startswith("127."):
                return addr
        except OSError:
            continue
        finally:
            s.close()
    return None


# ---------------------------------------------------------------------------------------------
# Config homes

class TempHome:
    """A temporary XDG_CONFIG_HOME (keys, known_hosts) and XDG_STATE_HOME (the client's
    history); cleanup() removes it."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="secho-e2e-home-")
        os.chmod(self.path, 0o700)

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def env(self):
        env = dict(os.environ)
        env["XDG_CONFIG_HOME"] = self.path
        env["XDG_STATE_HOME"] = self.path  # a client on a pty keeps its history here
        return env

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def key_file_public(path):
    """The raw public key of a PEM private key file, read with `cryptography`."""
    from cryptography.hazmat.primitives import serialization

    with open(path, "rb") as f:
        priv = serialization.load_pem_private_key(f.read(), password=None)
    return priv.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


# ---------------------------------------------------------------------------------------------
# The server fixture

class Server:
    """One server process (see the module docstring). Built by SechoTest.start_server /
    start_peer_server; `finish` is registered as the owner's cleanup."""

    def __init__(self, cmd, tmpdir, log_path=None, home=None, graceful=True, may_exit=False,
                 preexec_fn=None, ready_timeout=10.0):
        self.cmd = cmd
        self.tmpdir = tmpdir  # stderr, the log; removed by close()
        self.graceful = graceful  # a secho server: SIGTERM must stop it cleanly
        self.may_exit = may_exit  # it may end by itself without the test asking
        self.own_home = home is None
        self.home = home or TempHome()
        self.log_path = log_path
        self.log = ServerLog(log_path or os.devnull)
        self.key_path = self.home.file("secho", "server.key")
        if "-k" in cmd:
            self.key_path = cmd[cmd.index("-k") + 1]
        self.stderr_path = os.path.join(self.tmpdir, "stderr")
        self.exit_expected = False
        self.stopped = False
        self.closed = False
        env = self.home.env()
        if SANITIZER == "asan":
            env.setdefault("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=1")
            env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        elif SANITIZER == "tsan":
            env.setdefault("TSAN_OPTIONS", "halt_on_error=1:second_deadlock_stack=1")
        with open(self.stderr_path, "wb") as err:
            # Own session: a signal aimed at the test runner's process group never reaches
            # the server (a stray SIGTERM was twice seen stopping a server mid-test on this
            # VM); the cleanups still kill it.
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=err, preexec_fn=preexec_fn, env=env,
                                         start_new_session=True)
        self.pid = self.proc.pid
        try:
            self.port = self._wait_ready(T(ready_timeout))
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout):
        """Reads stdout up to its first line, which must be `listening on HOST:PORT` (the
        programs started here print nothing else there); returns PORT."""
        end = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("%r printed no readiness line within %.1f s; stderr:\n%s"
                                     % (self.cmd, timeout, self.stderr_text()))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                rc = self.proc.wait()
                raise AssertionError("%r exited (status %s) before it was ready; stderr:\n%s"
                                     % (self.cmd, rc, self.stderr_text()))
            buf += chunk
        line = buf.split(b"\n", 1)[0].decode("utf-8", "replace")
        m = re.fullmatch(r"listening on (\S+):(\d+)", line)
        if not m:
            raise AssertionError("unexpected readiness line %r from %r" % (line, self.cmd))
        port = int(m.group(2))
        if port == 0:
            raise AssertionError("readiness line shows port 0: %r" % line)
        self.ready_line = line
        return port

    # -- state and control

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, seconds):
        """Waits up to `seconds` (as given, not scaled) for the process to end; returns its
        status, or None if it is still running. The test now owns how it ended."""
        self.exit_expected = True
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL (by PID, only while the process is ours and unreaped) and reap."""
        self.exit_expected = True
        self._kill()

    def _kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def public_key(self):
        """The server's raw public key, read from its key file."""
        return key_file_public(self.key_path)

    # -- stop and check

    def stop(self):
        """Stops the server and checks how it went (see the module docstring); raises
        AssertionError with what went wrong. Only the first call does anything."""
        if self.stopped:
            return
        self.stopped = True
        problems = []
        if self.proc.poll() is None and self.graceful:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=T(5))
            except subprocess.TimeoutExpired:
                self._kill()
                problems.append("did not exit within %.1f s of SIGTERM (killed)" % T(5))
            else:
                if rc != 0:
                    problems.append("exited %s after SIGTERM" % rc)
                elif self.log_path and not self.log.find(event="stop"):
                    problems.append("exited 0 after SIGTERM without logging event=stop; "
                                    "log tail:\n" + self.log.tail_text())
        elif self.proc.poll() is None:
            self._kill()  # a peer: killed, it has nothing to report
        else:
            rc = self.proc.returncode
            if not (self.exit_expected or self.may_exit):
                problems.append("exited by itself (status %s) while the test ran" % rc)
            elif rc < 0 and -rc not in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                problems.append("died of signal %d" % -rc)
        try:
            with open(self.stderr_path, "rb") as f:
                if SANITIZER_REPORT.search(f.read()):
                    problems.append("sanitizer report on stderr")
        except FileNotFoundError:
            pass
        if problems:
            raise AssertionError("%s: %s; stderr:\n%s" % (" ".join(self.cmd[:3]),
                                                         "; ".join(problems),
                                                         self.stderr_text()[-8000:]))

    def close(self):
        """Kills and reaps the process (whatever happened) and removes its files."""
        if self.closed:
            return
        self.closed = True
        self._kill()
        self.proc.stdout.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        if self.own_home:
            self.home.cleanup()

    def finish(self):
        """The cleanup: stop and check, then always kill, reap and remove."""
        try:
            self.stop()
        finally:
            self.close()

    # -- /proc

    def fd_count(self):
        return proc_fd_count(self.pid)

    def rss_kb(self):
        return proc_rss_kb(self.pid)

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)


def secho_server(*args, proto=None, transport=None, model=None, host=HOST, home=None, log=True,
                 preexec_fn=None, ready_timeout=10.0):
    """Starts `secho server -H host -p 0 -l LOG [-P proto] [-t transport] [-m model] ARGS`.
    log=False logs to /dev/null (for load tests; srv.log then reads nothing)."""
    opts = (("-P", proto), ("-t", transport), ("-m", model))
    for opt, val in opts:
        if val is not None and opt in args:
            raise ValueError("%s given twice: %r and in %r" % (opt, val, args))
    tmpdir = tempfile.mkdtemp(prefix="secho-e2e-")
    log_path = os.path.join(tmpdir, "server.log") if log else None
    cmd = [BIN, "server", "-H", host, "-p", "0", "-l", log_path or os.devnull]
    for opt, val in opts:
        if val is not None:
            cmd += [opt, val]
    cmd += list(args)
    return Server(cmd, tmpdir, log_path=log_path, home=home, preexec_fn=preexec_fn,
                  ready_timeout=ready_timeout)


def peer_server(program, *extra, lifetime=60, may_exit=False):
    """Starts a notebook_peers.py server on 127.0.0.1 port 0; it ends itself after
    T(lifetime) s whatever happens."""
    cmd = PEERS + [program, "-H", HOST, "-p", "0", "--lifetime", str(T(lifetime)), *extra]
    return Server(cmd, tempfile.mkdtemp(prefix="secho-e2e-peer-"), graceful=False,
                  may_exit=may_exit)


# ---------------------------------------------------------------------------------------------
# Clients

def run_client(home, port, *args, input=b"", timeout=20):
    """Runs `secho client -H 127.0.0.1 -p PORT ARGS` to completion with stdin from `input`
    and XDG_CONFIG_HOME at `home`; subprocess.run kills and reaps it after T(timeout) s."""
    cmd = [BIN, "client", "-H", HOST, "-p", str(port)] + list(args)
    return subprocess.run(cmd, input=input, capture_output=True, env=home.env(),
                          timeout=T(timeout))


# ---------------------------------------------------------------------------------------------
# Sockets (each closed by a cleanup of the test that made it)

def tcp_connect(tc, port, host=HOST, timeout=None, rcvbuf=None, sndbuf=None, source=None):
    """A TCP connection to the server, closed by a cleanup."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tc.addCleanup(s.close)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    if source:
        s.bind((source, 0))
    s.settimeout(T(timeout or 5))
    s.connect((host, port))
    return s


def udp_socket(tc, port, host=HOST, timeout=None):
    """A UDP socket connected to the server (so ICMP errors are reported), closed by a cleanup."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tc.addCleanup(s.close)
    s.settimeout(T(timeout or 5))
    s.connect((host, port))
    return s


def udp_flood_source_ports(port, count, payload, batch=250, every=None, between=None,
                           host=HOST, distinct=None, sources=(HOST,)):
    """Sends `payload` once from each of `count` fresh UDP sockets (so as many source ports)
    to the server, `batch` sockets open at a time and closed once sent (the open-file limit
    stays far), never waiting: a datagram the kernel cannot take is lost, as UDP allows;
    between(sent) runs after every `every` datagrams. The kernel may give a closed socket's
    port to a later one, and to the server that is a second datagram from one peer. With
    `distinct` (True, or a set of the (address, port) pairs used so far, shared between
    calls and updated), every datagram comes from a source of its own: the sockets are bound
    to the `sources` addresses in turn (loopback ones: all of 127/8 is loopback), and one on
    a pair already used sends nothing and another is taken (so count must stay well below
    the ephemeral port range times the sources). Returns how many were sent."""
    used = set() if distinct is True else distinct
    sent = 0
    while sent < count:
        socks = []
        try:
            while len(socks) < batch and sent < count:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.setblocking(False)
                if used is not None:
                    s.bind((sources[len(socks) % len(sources)], 0))
                    addr = s.getsockname()
                    if addr in used:
                        continue
                    used.add(addr)
                try:
                    s.sendto(payload, (host, port))
                except (BlockingIOError, ConnectionRefusedError):
                    pass
                sent += 1
                if every and between and sent % every == 0:
                    between(sent)
        finally:
            for s in socks:
                s.close()
    return sent


def udp_echo_with_retries(sock, data, tries=6, wait=0.5):
    """The echo of data, sent up to `tries` times: during a flood the kernel may drop a
    datagram from a full socket buffer, as UDP allows; a locked-out peer gets none."""
    for _ in range(tries):
        sock.send(data)
        r, _, _ = select.select([sock], [], [], T(wait))
        while r:
            got = sock.recv(65536)
            if got == data:
                return got
            r, _, _ = select.select([sock], [], [], 0)
    raise AssertionError("no echo of %r after %d tries" % (data, tries))


def limited_totals(records):
    """(lines that are events, sum of the suppressed= counts) over the log records of a
    rate-limited kind: an event's own line has conn=; a summary line has only suppressed=
    (and peer= when it is per peer or host). Their sum is the number of events."""
    events = sum(1 for r in records if "conn" in r)
    suppressed = sum(int(r.get("suppressed", 0)) for r in records)
    return events, suppressed


def free_tcp_port_holder(tc):
    """A TCP socket bound to a free loopback port but not listening: connecting to that port
    is refused, and nobody else can take the port while the test runs."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tc.addCleanup(s.close)
    s.bind((HOST, 0))
    return s, s.getsockname()[1]


def peer_of(sock):
    """The peer= text the server logs for our socket."""
    host, port = sock.getsockname()[:2]
    return "%s:%d" % (host, port)


def reset_close(sock):
    """Closes with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def recv_exact(sock, n, timeout=5.0):
    """Reads exactly n bytes (or fails), within a deadline."""
    data = bytearray()
    end = time.monotonic() + T(timeout)
    while len(data) < n:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("got %d of %d bytes within %.1f s; last bytes %r"
                                 % (len(data), n, T(timeout), bytes(data[-80:])))
        sock.settimeout(left)
        try:
            chunk = sock.recv(min(n - len(data), 1 << 20))
        except socket.timeout:
            continue
        if not chunk:
            raise AssertionError("connection closed after %d of %d bytes; got %r"
                                 % (len(data), n, bytes(data[-200:])))
        data += chunk
    return bytes(data)


def recv_until_closed(sock, timeout=5.0, limit=64 << 20):
    """Reads until the server closes the connection (EOF or reset) within a deadline.
    Returns (data, how) with how "eof" or "reset"; fails if it stays open."""
    data = bytearray()
    end = time.monotonic() + T(timeout)
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError("connection still open after %.1f s (read %d bytes: %r)"
                                 % (T(timeout), len(data), bytes(data[-200:])))
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk
        if len(data) > limit:
            raise AssertionError("more than %d bytes before close" % limit)


def assert_closed_by_server(sock, timeout=5.0):
    """Fails unless the server closes the connection within the deadline; returns the bytes
    that came before the close."""
    return recv_until_closed(sock, timeout)[0]


def assert_open(sock, quiet=0.2):
    """Fails if the connection is closed or has data pending within `quiet` seconds."""
    r, _, _ = select.select([sock], [], [], quiet)
    if r:
        sock.setblocking(False)
        try:
            data = sock.recv(65536, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            data = None
        except ConnectionResetError:
            raise AssertionError("connection was reset")
        finally:
            sock.setblocking(True)
        if data == b"":
            raise AssertionError("connection was closed by the server")
        if data:
            raise AssertionError("unexpected data %r" % data[:200])


def echo_roundtrip(sock, data, timeout=20.0):
    """Sends `data` while reading the echo concurrently (the server stops reading from a peer
    that does not read), returns all the bytes echoed once len(data) came back."""
    out = bytearray()
    sent = 0
    end = time.monotonic() + T(timeout)
    sock.setblocking(False)
    try:
        while len(out) < len(data):
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("echo incomplete after %.1f s: sent %d/%d, received %d"
                                     % (T(timeout), sent, len(data), len(out)))
            w = [sock] if sent < len(data) else []
            r, w, _ = select.select([sock], w, [], min(left, 0.5))
            if w:
                try:
                    sent += sock.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
            if r:
                try:
                    chunk = sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise AssertionError("closed after %d of %d echoed bytes" % (len(out), len(data)))
                out += chunk
    finally:
        sock.setblocking(True)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Test classes and the model loop

class SechoTest(unittest.TestCase):
    """Base of every e2e test class. PROTO, TRANSPORT and MODEL (None: not passed) are the
    -P, -t and -m that start_server() gives the server; @each_model sets MODEL."""

    PROTO = None
    TRANSPORT = None
    MODEL = None

    @classmethod
    def _server(cls, args, kw):
        kw.setdefault("proto", cls.PROTO)
        kw.setdefault("transport", cls.TRANSPORT)
        kw.setdefault("model", cls.MODEL)
        return secho_server(*args, **kw)

    def start_server(self, *args, **kw):
        """A `secho server` for this test (keywords: see secho_server), stopped and checked
        when the test ends."""
        srv = self._server(args, kw)
        self.addCleanup(srv.finish)
        return srv

    @classmethod
    def start_class_server(cls, *args, **kw):
        """A `secho server` shared by the class's tests (from setUpClass), stopped and
        checked once they are all done."""
        srv = cls._server(args, kw)
        cls.addClassCleanup(srv.finish)
        return srv

    def start_peer_server(self, program, *extra, lifetime=60, may_exit=False):
        """A notebook_peers.py server for this test, killed when the test ends; it must not
        have ended by itself meanwhile unless may_exit."""
        srv = peer_server(program, *extra, lifetime=lifetime, may_exit=may_exit)
        self.addCleanup(srv.finish)
        return srv

    def connect(self, srv, **kw):
        return tcp_connect(self, srv.port, **kw)

    def conn_id(self, srv, sock, timeout=10.0):
        """The conn= id the server logged for our socket's connect event."""
        rec = srv.log.wait_for(event="connect", peer=peer_of(sock), timeout=timeout)[0]
        return rec["conn"]


def each_model(mixin):
    """Class decorator: makes one SechoTest class per model in MODELS from the mixin `mixin`
    (a plain class holding the tests, not a TestCase), named MIXIN_MODEL, with MODEL set, in
    the mixin's module. The mixin itself is returned unchanged (unittest does not collect it)."""
    if issubclass(mixin, unittest.TestCase):
        raise TypeError("@each_model takes a mixin, not a TestCase: %s" % mixin.__name__)
    module = sys.modules[mixin.__module__]
    for model in MODELS:
        name = "%s_%s" % (mixin.__name__, model)
        cls = type(name, (mixin, SechoTest),
                   {"MODEL": model, "__module__": mixin.__module__, "__qualname__": name})
        setattr(module, name, cls)
    return mixin
