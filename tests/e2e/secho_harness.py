"""Shared helpers for the secho end-to-end tests (Python stdlib only).

Environment:
  SECHO_BIN            path of the secho binary (default ../../build/secho, relative to here)
  SECHO_SANITIZER      "", "asan" or "tsan": under tsan only the threads and reactors models
                       run; under any sanitizer deadlines are scaled up (x3 unless
                       SECHO_TIMEOUT_SCALE says otherwise)
  SECHO_TIMEOUT_SCALE  multiplies every deadline (default 1, 3 under a sanitizer)

Every wait in these tests is a poll against a deadline (no blind sleeps), and every server
started here is killed and reaped by a cleanup of the test that started it.
"""

import fcntl
import functools
import os
import re
import select
import signal
import socket
import struct
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(os.environ.get("SECHO_BIN") or os.path.join(HERE, "..", "..", "build", "secho"))
SANITIZER = os.environ.get("SECHO_SANITIZER", "").strip().lower()
_scale_env = os.environ.get("SECHO_TIMEOUT_SCALE", "").strip()
SCALE = float(_scale_env) if _scale_env else (3.0 if SANITIZER else 1.0)

ALL_MODELS = ("threads", "epoll", "reactors")
# TSan runs only the models that are actually multi-threaded.
MODELS = ("threads", "reactors") if SANITIZER == "tsan" else ALL_MODELS
HOST = "127.0.0.1"

SANITIZER_MARKERS = (
    b"ERROR: AddressSanitizer",
    b"ERROR: LeakSanitizer",
    b"WARNING: ThreadSanitizer",
    b"runtime error:",
)


def T(seconds):
    """A deadline in seconds, scaled for slow (sanitizer, shared CI) machines."""
    return seconds * SCALE


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


# ---------------------------------------------------------------------------------------------
# logfmt

_TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class LogfmtError(ValueError):
    pass


def _unescape(raw, line):
    """Decodes a quoted logfmt value body. \\xHH becomes the byte HH; the result is a str in
    which bytes that are not valid UTF-8 are surrogate-escaped, so that
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
        else:
            raise LogfmtError("bad escape \\%s in %r" % (chr(e), line))
    return out.decode("utf-8", "surrogateescape")


def parse_logfmt(line):
    """Parses one logfmt line (without its newline) into a dict. Strict: raises LogfmtError
    on anything that is not `key=value` pairs separated by single spaces, with values either
    bare (no space, quote or control byte) or double-quoted with the escapes of SPEC.
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
                if line[j] == '"' or ord(line[j]) < 0x20 or line[j] == "\x7f":
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
    """The server's log file, read by polling (the server writes it from its own thread)."""

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

    def find(self, pred=None, path=None, **fields):
        out = []
        for r in self.records(path):
            if all(r.get(k) == str(v) for k, v in fields.items()) and (pred is None or pred(r)):
                out.append(r)
        return out

    def wait_for(self, pred=None, count=1, timeout=10.0, path=None, what=None, **fields):
        """Waits until at least `count` records match `fields` (exact string values) and
        `pred`; returns the matching records. Fails with the log's tail otherwise."""
        clock = _Budget(T(timeout))
        while True:
            found = self.find(pred, path=path, **fields)
            if len(found) >= count:
                return found
            if clock.expired():
                tail = b"\n".join(self.raw_lines(path)[-30:]).decode("utf-8", "replace")
                raise AssertionError(
                    "log: wanted %d record(s) matching %s%s, found %d after %.1f s; log tail:\n%s"
                    % (count, fields, " and " + what if what else "", len(found), T(timeout), tail))
            time.sleep(0.02)

    def tail_text(self, n=30):
        return b"\n".join(self.raw_lines()[-n:]).decode("utf-8", "replace")


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
# The server process

def _track(tc, attr, obj):
    if not hasattr(tc, attr):
        setattr(tc, attr, [])
    getattr(tc, attr).append(obj)


class Server:
    """One `secho server` process, started with -p 0 and its own log file."""

    def __init__(self, tc, transport="tcp", model="reactors", args=(), proto="plain",
                 log_path=None, preexec_fn=None, host=HOST):
        self.tc = tc
        self.transport = transport
        self.model = model
        self.tmpdir = tempfile.mkdtemp(prefix="secho-e2e-")
        self.log_path = log_path or os.path.join(self.tmpdir, "server.log")
        self.log = ServerLog(self.log_path)
        self.stderr_path = os.path.join(self.tmpdir, "stderr")
        cmd = [BIN, "server", "-P", proto, "-H", host, "-p", "0", "-t", transport, "-m", model,
               "-l", self.log_path]
        cmd += list(args)
        self.cmd = cmd
        self._stderr = open(self.stderr_path, "wb")
        env = dict(os.environ)
        if SANITIZER == "asan":
            env.setdefault("ASAN_OPTIONS", "halt_on_error=1:detect_leaks=1")
            env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        elif SANITIZER == "tsan":
            env.setdefault("TSAN_OPTIONS", "halt_on_error=1:second_deadlock_stack=1")
        # Own session: a signal aimed at the test runner's process group never reaches
        # the server (a stray SIGTERM was twice seen stopping a server mid-test on this
        # VM); the cleanups still kill it.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, preexec_fn=preexec_fn, env=env,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.stopped_by_test = False
        self.checked = False
        tc.addCleanup(self._cleanup)
        _track(tc, "_secho_servers", self)
        self.port = self._wait_ready(T(10))

    # -- start and stop

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError("server %r printed no readiness line within %.1f s; "
                                     "stderr:\n%s" % (self.cmd, timeout, self.stderr_text()))
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                rc = self.proc.wait()
                raise AssertionError("server %r exited (status %s) before it was ready; "
                                     "stderr:\n%s" % (self.cmd, rc, self.stderr_text()))
            buf += chunk
        line = buf.split(b"\n", 1)[0].decode("utf-8", "replace")
        m = re.fullmatch(r"listening on (\S+):(\d+)", line)
        if not m:
            self.kill()
            raise AssertionError("unexpected readiness line %r" % line)
        port = int(m.group(2))
        if port == 0:
            raise AssertionError("readiness line shows port 0: %r" % line)
        self.ready_line = line
        return port

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Waits for the process to end; returns its status or None on timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def sanitizer_report(self):
        err = self.stderr_text().encode()
        for m in SANITIZER_MARKERS:
            if m in err:
                return self.stderr_text()
        return None

    def check_stop(self):
        """Stops the server gracefully (SIGTERM) unless the test already stopped it, and
        fails on a hang, a non-zero exit, a deadly signal or a sanitizer report. Runs at the
        end of every test body (see SechoTestCase), so an expectedFailure covers it."""
        if self.checked:
            return
        self.checked = True
        if self.proc.poll() is None and not self.stopped_by_test:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait_exit(T(5))
            if rc is None:
                self.kill()
                raise AssertionError("server did not exit within %.1f s of SIGTERM "
                                     "(killed); stderr:\n%s" % (T(5), self.stderr_text()))
            if rc != 0:
                raise AssertionError("server exited %s after SIGTERM; stderr:\n%s"
                                     % (rc, self.stderr_text()))
        else:
            self.kill()
        rc = self.proc.returncode
        if rc is not None and rc < 0 and -rc not in (signal.SIGKILL, signal.SIGTERM,
                                                     signal.SIGINT):
            raise AssertionError("server died of signal %d; stderr:\n%s"
                                 % (-rc, self.stderr_text()))
        rep = self.sanitizer_report()
        if rep:
            raise AssertionError("sanitizer report from the server:\n" + rep)

    def _cleanup(self):
        """Always kills and reaps the server (the checks ran in the test body)."""
        try:
            self.kill()
        finally:
            self.proc.stdout.close()
            self._stderr.close()

    # -- /proc

    def fd_count(self):
        return proc_fd_count(self.pid)

    def rss_kb(self):
        return proc_rss_kb(self.pid)

    def cpu_seconds(self):
        return proc_cpu_seconds(self.pid)


# ---------------------------------------------------------------------------------------------
# Sockets

def tcp_connect(tc, port, host=HOST, timeout=None, rcvbuf=None, sndbuf=None, source=None):
    """A TCP connection to the server, closed by a cleanup."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tc.addCleanup(s.close)
    _track(tc, "_secho_socks", s)
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
    _track(tc, "_secho_socks", s)
    s.settimeout(T(timeout or 5))
    s.connect((host, port))
    return s


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
    deadline = time.monotonic() + T(timeout)
    while len(data) < n:
        left = deadline - time.monotonic()
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
    deadline = time.monotonic() + T(timeout)
    while True:
        left = deadline - time.monotonic()
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
    deadline = time.monotonic() + T(timeout)
    sock.setblocking(False)
    try:
        while len(out) < len(data):
            left = deadline - time.monotonic()
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


def free_tcp_port_holder(tc):
    """A TCP socket bound to a free loopback port but not listening: connecting to that port
    is refused, and nobody else can take the port while the test runs."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tc.addCleanup(s.close)
    s.bind((HOST, 0))
    return s, s.getsockname()[1]


def wait_until(pred, timeout=10.0, what="condition", interval=0.02):
    clock = _Budget(T(timeout))
    while True:
        v = pred()
        if v:
            return v
        if clock.expired():
            raise AssertionError("timed out after %.1f s waiting for %s" % (T(timeout), what))
        time.sleep(interval)


def _with_stop_check(func):
    """Runs a test, then (in the test body, so that expectedFailure applies) closes its
    client sockets and stops and checks every server it started."""
    if getattr(func, "_secho_checked", False):
        return func

    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        result = func(self, *args, **kwargs)
        self.check_servers()
        return result

    wrapper._secho_checked = True
    return wrapper


class SechoTestCase(unittest.TestCase):
    """Base class: MODEL and TRANSPORT are set by the generated per-model classes. Every
    test method ends by stopping its servers with SIGTERM and checking they exit 0 with no
    sanitizer report."""

    MODEL = "reactors"
    TRANSPORT = "tcp"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in dir(cls):
            if name.startswith("test"):
                attr = getattr(cls, name)
                if callable(attr):
                    setattr(cls, name, _with_stop_check(attr))

    def check_servers(self):
        for s in getattr(self, "_secho_socks", []):
            s.close()
        for srv in getattr(self, "_secho_servers", []):
            srv.check_stop()

    def start_server(self, *args, model=None, transport=None, **kw):
        return Server(self, transport=transport or self.TRANSPORT, model=model or self.MODEL,
                      args=args, **kw)

    def connect(self, srv, **kw):
        return tcp_connect(self, srv.port, **kw)

    def conn_id(self, srv, sock, timeout=10.0):
        """The conn= id the server logged for our socket's connect event."""
        rec = srv.log.wait_for(event="connect", peer=peer_of(sock), timeout=timeout)[0]
        return rec["conn"]


def _expected_failure_copy(func):
    """unittest.expectedFailure on a copy, so the mixin's own method stays unmarked."""
    @functools.wraps(func)
    def wrapper(self, *args, **kwargs):
        return func(self, *args, **kwargs)
    wrapper._secho_checked = False
    return unittest.expectedFailure(wrapper)


def generate_model_classes(namespace, mixin, models=MODELS, transport="tcp", xfail=None):
    """Creates one TestCase class per model from a mixin of test methods, e.g.
    TestPlainTcp_threads. `xfail` maps a model to the names of tests expected to fail on
    it (each with a `# BUG:` comment where it is declared)."""
    base_name = mixin.__name__.replace("Mixin", "")
    for model in models:
        attrs = {"MODEL": model, "TRANSPORT": transport}
        for name in (xfail or {}).get(model, ()):
            attrs[name] = _expected_failure_copy(getattr(mixin, name))
        cls = type("%s_%s" % (base_name, model), (mixin, SechoTestCase), attrs)
        cls.__module__ = namespace["__name__"]
        namespace[cls.__name__] = cls
