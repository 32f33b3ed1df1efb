#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`make stress`: secho under attack, every scenario with a verdict (issue #10).

Each scenario starts its own `secho server` on 127.0.0.1 (port 0, a log file of its own),
attacks it from this process over loopback, stops by itself and prints one line per model:

    PASS|FAIL SCENARIO MODEL: FIGURE (BOUND)

and a `SKIP` line where a scenario does not apply to a model (with the reason). The exit
status is 1 if any line is FAIL. stress/README.md lists the scenarios and their bounds.

Usage: stress/stress.py [--secho build/secho] [--scale full|small] [--models a,b]
                        [--only name,name] [--list]

--scale small is the reduced form that `make test` runs (ctest -L stress): the same
verdicts over small counts, well under three minutes on two cores. The servers, the log
parsing, the /proc readings and the Noise peer come from tests/e2e (harness.py,
noise_peer.py); the idle-RSS and shutdown measurements from bench/ (idle_rss.py,
shutdown_time.py); the UDP flood senders from tests/e2e (harness.py, test_log_flood.py).
"""

import argparse
import json
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
E2E = os.path.join(ROOT, "tests", "e2e")
BENCH = os.path.join(ROOT, "bench")

SUITE = "Noise_XX_25519_AESGCM_SHA256"
ALL_MODELS = ("threads", "epoll", "reactors")

# Counts per scale. "conns" is the 15,000 of the issue; the threads model (one thread and
# its stack per connection) is skipped above THREADS_MAX connections.
SCALES = {
    "full": dict(conns=15000, storm=6000, storm_batch=500, slow=1000, noread=300,
                 udp=40000, udp_legit=4, load_conns=64, load_s=3.0, idle_shutdown=15000,
                 bench_s=2.0, p99_factor=2.0),
    "small": dict(conns=400, storm=300, storm_batch=100, slow=40, noread=16,
                  udp=4000, udp_legit=2, load_conns=16, load_s=1.0, idle_shutdown=400,
                  bench_s=0.5, p99_factor=10.0),
}
THREADS_MAX = 2000

# Bounds (stress/README.md explains each).
RSS_PER_IDLE_PLAIN = 1024  # bytes per idle connection, loop models
RSS_PER_IDLE_SECURE = 2048
RSS_STORM_GROWTH = 0.10  # RSS after a reset storm within 10% of before
STORMS = 3  # identical reset storms in a row; the verdict is on the last
SLOW_TIMEOUT = 2  # --handshake-timeout / --record-timeout / --idle-timeout of slowloris
SLOW_SLACK = 1.5  # seconds past the timeout for the reclaim (timer tick, scheduling)
# Legitimate p99 during slowloris < 2x the baseline (the bound, full scale). The
# reduced form in make test measures half-second windows of sub-millisecond p99s on a shared
# CI machine, where 2x is noise (seen: x2.15 with the server idle at 0.1 CPU s/s), so there
# it only catches a server the attack starves (< 10x); the figure is printed either way.
ATTACK_WINDOWS = 3  # bench windows under attack (the smallest p99 counts)
NOREAD_PER_CONN = (512 + 160) * 1024  # SERVER_OUT_LIMIT + SERVER_IN_LIMIT (service.h)
# -m threads: each connection's thread also keeps its own pool of freed buffer storage
# (at most 128 KiB there, THREAD_POOL_BYTES in src/server/io_threads.c) and its stack and
# thread descriptor (64 KiB at most touched): stress/README.md, Findings.
NOREAD_PER_CONN_THREADS = NOREAD_PER_CONN + 128 * 1024 + 64 * 1024
NOREAD_BASE = 16 << 20  # plus this much once
EMFILE_NOFILE = 64
EMFILE_CPU = 0.05  # CPU seconds per wall second while out of descriptors
UDP_MAX_CONNS = 20000 - 64  # the server's default --max-conns under a 20000 fd limit
UDP_RSS_PER_PEER = 2048  # bytes of RSS per peer the table holds (at most --max-conns)
UDP_RSS_BASE = 8 << 20
# Log a flood from new sources may add, outright: secure rejects them before keeping any
# state (auth_fail is rate-limited); plain and lab-fernet serve each as a new peer, whose
# lines are rate-limited until it proves itself (src/engine/service.h).
UDP_LOG_BYTES = 256 << 10
# The flood's source addresses (all of 127/8 is loopback): each datagram comes from an
# (address, port) of its own, which one address's ephemeral ports cannot give 40,000 times.
UDP_SOURCES = ("127.0.0.1", "127.0.0.2")
SHUTDOWN_S = 2.0  # SPEC: exit 0 within 2 s of SIGTERM

RESULTS = []


def verdict(ok, scenario, model, figure, bound):
    line = "%s %s %s: %s (%s)" % ("PASS" if ok else "FAIL", scenario, model, figure, bound)
    RESULTS.append(ok)
    print(line, flush=True)
    return ok


def skip(scenario, model, why):
    print("SKIP %s %s: %s" % (scenario, model, why), flush=True)


def setup_imports(binary):
    os.environ["SECHO_BIN"] = binary
    for d in (E2E, BENCH):
        if d not in sys.path:
            sys.path.insert(0, d)
    global harness, noise_peer, idle_rss, shutdown_time, log_flood
    import harness  # noqa: E402  (tests/e2e: the server fixture, /proc readers, the log)
    import noise_peer  # noqa: E402  (tests/e2e: the independent Noise XX initiator)
    import idle_rss  # noqa: E402  (bench: settled RSS, plain/secure idle connections)
    import shutdown_time  # noqa: E402  (bench: SIGTERM with N idle connections)
    import test_log_flood as log_flood  # noqa: E402  (forged secure initiations)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Srv:
    """A secho server for one scenario (harness.secho_server), killed and removed by
    close(); the shutdown scenarios stop it themselves and judge how it went."""

    def __init__(self, model, proto, *args, transport=None, preexec_fn=None):
        self.home = harness.TempHome()
        if proto == "secure":
            args = ("-k", self.home.file("server.key")) + args
        self.s = harness.secho_server(*args, proto=proto, model=model, transport=transport,
                                      home=self.home, preexec_fn=preexec_fn,
                                      ready_timeout=20)
        self.port, self.pid, self.log = self.s.port, self.s.pid, self.s.log

    def rss(self):
        return idle_rss.settled(self.pid, timeout=5, quiet=0.3)["VmRSS"]

    def fds(self):
        return self.s.fd_count()

    def log_bytes(self):
        try:
            return os.path.getsize(self.s.log_path)
        except (OSError, TypeError):
            return 0

    def count(self, needle):
        with open(self.s.log_path, "rb") as f:
            return f.read().count(needle.encode())

    def close(self):
        try:
            self.s.close()
        finally:
            self.home.cleanup()


def wait_fds(srv, want, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        n = srv.fds()
        if n <= want:
            return n
        time.sleep(0.05)
    return srv.fds()


def reset_close(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def legit_echo(port, proto="plain", msg=b"legit\n"):
    """One fresh client, one echo; True if it came back."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            if proto == "plain":
                s.sendall(msg)
                return idle_rss.recv_exact(s, len(msg)) == msg
            sess = noise_peer.connect(s, SUITE)
            sess.send(msg)
            return sess.recv() == msg
        finally:
            s.close()
    except (OSError, ConnectionError, EOFError, AssertionError, ValueError):
        return False


def warm_up(srv, proto, n=50):
    """Opens, echoes on and closes n connections, so that one-time costs (thread pools, the
    first handshake's tables, malloc arenas) are in the baseline, not in a per-connection
    figure."""
    fds = srv.fds()
    socks = []
    for _ in range(n):
        if proto == "plain":
            socks.append(idle_rss.open_plain(srv.port, 64))
        else:
            socks.append(idle_rss.open_secure(srv.port, 64, noise_peer, SUITE))
    for s in socks:
        s.close()
    return wait_fds(srv, fds)


# --------------------------------------------------------------------------------------------
# Secure connections in batches (many handshakes in flight at once).

def secure_batch(port, n, stage):
    """n connections brought to `stage`: "m2" (m1 sent, m2 read: the server holds a
    handshake), "est" (handshake done and one record echoed). Returns [(sock, session)]."""
    s_priv, _ = noise_peer.new_static()
    pre = noise_peer.preamble(SUITE)
    out = []
    pend = []
    for _ in range(n):
        s = idle_rss.dial(port)
        hs = noise_peer.HandshakeState(SUITE, True, noise_peer._prologue(pre), s_priv)
        m1 = hs.write_message()
        s.sendall(pre + struct.pack(">H", len(m1)) + m1)
        pend.append((s, hs))
    sessions = []
    for s, hs in pend:
        w = noise_peer.Wire(s)
        hs.read_message(w.recv_frame())
        if stage == "m2":
            out.append((s, None))
            continue
        w.send_frame(hs.write_message())
        sess = noise_peer.Session(w, hs)
        sess.send(b"x" * 64)
        sessions.append((s, sess))
    for s, sess in sessions:
        if sess.recv() != b"x" * 64:
            raise AssertionError("wrong echo")
        out.append((s, sess))
    return out


# --------------------------------------------------------------------------------------------
# 1. 15,000 concurrent connections, RSS per idle connection

def sc_conns(cfg, model, proto):
    name = "conns-%s" % proto
    n = cfg["conns"]
    if model == "threads" and n > THREADS_MAX:
        skip(name, model, "one thread per connection: %d threads is not what this model is "
             "for (runs at --scale small)" % n)
        return
    srv = Srv(model, proto, "--no-log-messages", "--idle-timeout", "0",
              "--handshake-timeout", "60", "--max-conns", str(n + 100))
    socks = []
    try:
        warm_up(srv, proto)
        base = srv.rss()
        bad = 0
        t0 = time.monotonic()
        if proto == "plain":
            for _ in range(n):
                try:
                    socks.append(idle_rss.open_plain(srv.port, 64))
                except (AssertionError, OSError, ConnectionError):
                    bad += 1
        else:
            while len(socks) + bad < n:
                k = min(200, n - len(socks) - bad)
                try:
                    socks += [s for s, _ in secure_batch(srv.port, k, "est")]
                except (AssertionError, OSError, ConnectionError, EOFError, ValueError):
                    bad += k
        took = time.monotonic() - t0
        idle = srv.rss()
        per = (idle - base) * 1024 / n
        ok_echo = bad == 0 and len(socks) == n
        if model == "threads":
            bound_txt = "all echoed; RSS reported, bounded on the loop models only"
            ok = ok_echo
        else:
            lim = RSS_PER_IDLE_PLAIN if proto == "plain" else RSS_PER_IDLE_SECURE
            bound_txt = "all echoed, <= %d B/conn" % lim
            ok = ok_echo and per <= lim
        verdict(ok, name, model, "%d/%d echoed in %.1f s, %.0f B RSS per idle conn"
                % (len(socks), n, took, per), bound_txt)
    finally:
        for s in socks:
            s.close()
        srv.close()


# --------------------------------------------------------------------------------------------
# 2. Reset storms

def storm_round(srv, kind, k):
    """k connections brought mid-line, mid-handshake or mid-record at once, then reset."""
    if kind == "line":
        socks = []
        for _ in range(k):
            s = idle_rss.dial(srv.port)
            s.sendall(b"a line that never ends " * 40)
            socks.append(s)
    elif kind == "handshake":
        socks = [s for s, _ in secure_batch(srv.port, k, "m2")]
    else:
        socks = []
        for s, _sess in secure_batch(srv.port, k, "est"):
            s.sendall(struct.pack(">H", 65535) + os.urandom(3000))
            socks.append(s)
    for s in socks:
        reset_close(s)


def sc_reset(cfg, model, kind):
    name = "reset-%s" % kind
    proto = "plain" if kind == "line" else "secure"
    srv = Srv(model, proto, "--no-log-messages", "--handshake-timeout", "30")
    try:
        base_fds = warm_up(srv, proto)
        pristine = srv.rss()

        def storm():
            done, total = 0, cfg["storm"]
            while done < total:
                k = min(cfg["storm_batch"], total - done)
                storm_round(srv, kind, k)
                done += k
            return wait_fds(srv, base_fds)

        # The first storms set the high-water mark of what the server or its allocator
        # keeps on purpose (per-thread buffer pools, BUF_POOL_BYTES = 512 KiB each at most;
        # glibc's free lists in each thread's arena and, -m threads, its cache of thread
        # stacks): repeated storms plateau there (stress/README.md, Findings; -m reactors
        # after about 12,000 resets). The verdict is on the last of STORMS identical
        # storms: the server's RSS after it within 10% of its RSS before it. The readings
        # after each storm, from the pristine server on, are shown.
        series = [pristine]
        fds = base_fds
        for _ in range(STORMS):
            fds = storm()
            series.append(srv.rss())
        before, after = series[-2], series[-1]
        served = legit_echo(srv.port, proto)
        ok = fds <= base_fds and after <= before * (1 + RSS_STORM_GROWTH) and served
        verdict(ok, name, model, "%d x %d resets: fds %d -> %d; RSS before the last storm "
                "%d KiB, after %d KiB (%+.1f%%); KiB from pristine after each storm: %s; "
                "served after: %s"
                % (STORMS, cfg["storm"], base_fds, fds, before, after,
                   100.0 * (after - before) / before, " ".join(str(x) for x in series),
                   served),
                "fds back to baseline, RSS within +10% across the last storm, served")
    finally:
        srv.close()


# --------------------------------------------------------------------------------------------
# 3. Slowloris

# slowloris: where the server, the legitimate client and the attacker run. On a machine of
# two CPUs or more the server gets CPU 0 alone, and the legitimate client and the attacker
# share CPU 1, the attacker at SCHED_IDLE: a Python attacker polling a thousand sockets and
# making 500 Noise initiations a second uses most of a core, and unpinned it took CPU time
# from the server and the client alike, which showed in the client's p99 as if the server
# had been slowed by the attack. What is left is what the attack costs the server
# (STRESS_PIN=0: all unpinned, as before).
_CPUS = sorted(os.sched_getaffinity(0))
PIN = os.environ.get("STRESS_PIN", "1") != "0" and len(_CPUS) >= 2
SERVER_CPU, LOAD_CPU = (_CPUS[0], _CPUS[1]) if PIN else (None, None)


def pin_server():
    """preexec_fn of a pinned server (the child, before exec)."""
    if PIN:
        os.sched_setaffinity(0, {SERVER_CPU})


def pin_load():
    """preexec_fn of the legitimate client."""
    if PIN:
        os.sched_setaffinity(0, {LOAD_CPU})


def pin_attacker():
    """Called by the attacker's thread: its CPU, and only the time no one else wants."""
    if PIN:
        os.sched_setaffinity(0, {LOAD_CPU})  # 0: the calling thread (Linux)
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def bench_cmd(port, proto, seconds):
    """A legitimate open-loop client: secho bench, 4 connections, 2000 messages/s in total
    (latency counted from each message's due time, so a stalled server cannot hide)."""
    return [harness.BIN, "bench", "-P", proto, "-p", str(port), "-c", "4", "--rate", "2000",
            "-d", str(seconds), "--warmup", "0.3", "--json"]


def bench_p99(port, proto, seconds):
    """p99 (us) of one bench_cmd run, or None if it failed or saw errors."""
    try:
        cp = subprocess.run(bench_cmd(port, proto, seconds), capture_output=True, timeout=60,
                            preexec_fn=pin_load)
        res = json.loads(cp.stdout)
    except (subprocess.TimeoutExpired, ValueError):
        return None
    if res.get("errors") or res.get("mismatch") or res.get("conn_errors"):
        return None
    return float(res["p99_us"])


class Slow:
    """One slow connection. For "record" it is made (handshake and one echo) ahead of time,
    so that the attack itself costs the attacker no handshakes; start() begins the slow
    part: "handshake" connects and trickles preamble + m1, "record" announces a 65535-byte
    record and trickles its body, "line" trickles a line that never ends. A byte a second."""

    def __init__(self, port, form):
        self.port, self.form = port, form
        self.sock = secure_batch(port, 1, "est")[0][0] if form == "record" else None
        self.start = self.last = self.closed_at = None
        self.sent = 0

    def begin(self):
        if self.form == "handshake":
            self.sock = idle_rss.dial(self.port)
            pre = noise_peer.preamble(SUITE)
            hs = noise_peer.HandshakeState(SUITE, True, noise_peer._prologue(pre), None)
            m1 = hs.write_message()
            self.data = pre + struct.pack(">H", len(m1)) + m1
        elif self.form == "record":
            self.sock.sendall(struct.pack(">H", 65535))
            self.data = os.urandom(65535)
        else:
            self.sock = idle_rss.dial(self.port)
            self.data = b"a line that never ends " * 100
        self.sock.setblocking(False)
        self.start = time.monotonic()  # the timeout runs from here
        self.last = None
        self.tick(True)

    def tick(self, sending):
        """Reads (and drops) what came; sends the next byte if a second has passed; notes
        the server's close. False once closed."""
        if self.closed_at is not None:
            return False
        now = time.monotonic()
        try:
            while True:
                if not self.sock.recv(65536):
                    self.closed_at = now
                    return False
        except BlockingIOError:
            pass
        except OSError:
            self.closed_at = now
            return False
        if sending and self.sent < len(self.data) and (self.last is None or
                                                       now - self.last >= 1.0):
            try:
                self.sock.send(self.data[self.sent:self.sent + 1])
                self.sent += 1
                self.last = now
            except BlockingIOError:
                pass
            except OSError:
                self.closed_at = now
                return False
        return True

    def reclaim_s(self):
        """How long the server took: from the start (handshake, record) or from the last
        byte (line: --idle-timeout)."""
        return self.closed_at - (self.last if self.form == "line" else self.start)


def sc_slowloris(cfg, model, form):
    name = "slowloris-%s" % form
    proto = "plain" if form == "line" else "secure"
    opt = {"handshake": "--handshake-timeout", "record": "--record-timeout",
           "line": "--idle-timeout"}[form]
    srv = Srv(model, proto, "--no-log-messages", opt, str(SLOW_TIMEOUT), preexec_fn=pin_server)
    pool = []
    try:
        base_fds = warm_up(srv, proto, 10)
        before = bench_p99(srv.port, proto, cfg["bench_s"])
        m = cfg["slow"]
        # Secure records: enough connections made ahead to keep m of them slow through the
        # measured windows (each lasts about SLOW_TIMEOUT s). The other forms connect when
        # they start, so they are made as needed.
        windows = ATTACK_WINDOWS * (cfg["bench_s"] + 0.3) + 1.0
        if form == "record":
            pool = [Slow(srv.port, form)
                    for _ in range(int(m * (1 + 1.5 * windows / SLOW_TIMEOUT)) + m)]
        waiting = list(pool)
        active = []
        state = {"sustain": True, "sending": True, "peak": 0, "dry": False}

        def next_slow():
            if waiting:
                return waiting.pop(0)
            if form == "record":
                state["dry"] = True
                return None
            c = Slow(srv.port, form)
            pool.append(c)
            return c

        def attacker():
            # Keeps m connections slow while sustain holds (a reclaimed one is replaced at
            # once), then lets the last ones be reclaimed; ends when all are closed or after
            # a bound.
            # New slow connections start at most m/20 per 50 ms tick, so that the first m
            # are spread over a second and each sends at a phase of its own, as connections
            # opened over time do (m bytes at the same instant would be m messages at once:
            # a flood, not a slowloris).
            pin_attacker()
            end = None
            per_tick = max(1, (m + 19) // 20)
            while True:
                now = time.monotonic()
                live = []
                for c in active:
                    if c.tick(state["sending"]):
                        live.append(c)
                active[:] = live
                n_new = 0
                while state["sustain"] and len(active) < m and n_new < per_tick:
                    c = next_slow()
                    if c is None:
                        break
                    c.begin()
                    active.append(c)
                    n_new += 1
                state["peak"] = max(state["peak"], len(active))
                if not state["sustain"]:
                    end = end or now + SLOW_TIMEOUT + SLOW_SLACK + 5
                    if not active or now > end:
                        return
                time.sleep(0.05)

        th = threading.Thread(target=attacker, daemon=True)
        th.start()
        # The attack is in place once m are slow at once (or after 10 s: an attacker that
        # cannot hold m at once, the count it held is shown).
        fill_end = time.monotonic() + 10
        while state["peak"] < m and th.is_alive() and time.monotonic() < fill_end:
            time.sleep(0.05)
        cpu0, w0 = srv.s.cpu_seconds(), time.monotonic()
        during = [bench_p99(srv.port, proto, cfg["bench_s"]) for _ in range(ATTACK_WINDOWS)]
        cpu = (srv.s.cpu_seconds() - cpu0) / (time.monotonic() - w0)
        exhausted = state["dry"]
        stopped_at = time.monotonic()
        state["sustain"] = False
        state["sending"] = False
        th.join()
        for c in waiting:  # made ahead of time and never used: not the server's to reclaim
            if c.sock is not None:
                c.sock.close()
                c.sock = None
        started = [c for c in pool if c.start is not None]
        closed = [c for c in started if c.closed_at is not None]
        worst = max((c.reclaim_s() for c in closed), default=float("inf"))
        # The line form trickled through both windows: none may have been cut meanwhile
        # (plain holds nothing back, so it has nothing to time out while bytes flow).
        cut = sum(1 for c in closed if form == "line" and c.closed_at < stopped_at)
        fds = wait_fds(srv, base_fds)
        after = bench_p99(srv.port, proto, cfg["bench_s"])
        # The reference is the larger of the readings before and after the attack, the
        # attack's figure the smallest of its windows: a stall of a shared machine in one
        # window fails neither way, a server slowed down by the attack shows in all.
        ref = max(x for x in (before, after) if x is not None) if (before or after) else None
        att = min(x for x in during if x is not None) if any(during) else None
        p99_ok = ref is not None and att is not None and att < cfg["p99_factor"] * ref
        ok = (len(closed) == len(started) and worst <= SLOW_TIMEOUT + SLOW_SLACK and p99_ok
              and fds <= base_fds and not exhausted and cut == 0)
        verdict(ok, name, model,
                "%d slow at once (of %d wanted; %d in all), %d/%d reclaimed, worst %.2f s "
                "after %s; "
                "legit p99 %s us under attack vs %s us without (x%s), server CPU %.2f s/s "
                "under attack; fds back %d -> %d%s"
                % (state["peak"], m, len(started), len(closed), len(started), worst,
                   "the last byte" if form == "line" else "the first",
                   "%.0f" % att if att else "-", "%.0f" % ref if ref else "-",
                   "%.2f" % (att / ref) if att and ref else "-", cpu, base_fds, fds,
                   (", pool ran dry" if exhausted else "")
                   + (", %d cut while bytes flowed" % cut if form == "line" else "")),
                "all within %s %d s + %.1f s, p99 < %.0fx, fds back"
                % (opt, SLOW_TIMEOUT, SLOW_SLACK, cfg["p99_factor"]))
    finally:
        for c in pool:
            if c.sock is not None:
                c.sock.close()
        srv.close()


# --------------------------------------------------------------------------------------------
# 4. Clients that never read

def sc_noread(cfg, model, proto):
    name = "never-read-%s" % proto
    m = cfg["noread"]
    srv = Srv(model, proto, "--no-log-messages", "--idle-timeout", "0")
    socks = []
    try:
        base_fds = warm_up(srv, proto, 10)
        base = srv.rss()
        chunk = b"y" * 4095 + b"\n"
        sent = 0
        for _ in range(m):
            if proto == "plain":
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
                s.connect(("127.0.0.1", srv.port))
                sess = None
            else:
                s, sess = secure_batch(srv.port, 1, "est")[0]
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            s.setblocking(False)
            socks.append((s, sess))
        # Each client sends until the server stops reading from it (about 4 MiB here: the
        # kernel's buffers on both sides, then the server's own up to SERVER_OUT_HIGH),
        # 16 MiB at most, and never reads.
        budget = {s.fileno(): 16 << 20 for s, _ in socks}
        payload = {}
        for s, sess in socks:
            if sess is None:
                payload[s.fileno()] = chunk * 4
            else:
                frames = b""
                for _ in range(4):
                    frames += struct.pack(">H", 16384 + 16) + sess.send_cs.encrypt(b"", b"z" * 16384)
                payload[s.fileno()] = frames
        # Secure records carry nonces: a resent frame would fail authentication, so each
        # secure client sends fresh records (encrypted as it goes) until the server stops
        # reading from it.
        end = time.monotonic() + 20
        quiet_since = time.monotonic()
        pos = {s.fileno(): 0 for s, _ in socks}
        while time.monotonic() < end and time.monotonic() - quiet_since < 1.0:
            progressed = False
            for s, sess in socks:
                fd = s.fileno()
                if budget[fd] <= 0:
                    continue
                data = payload[fd]
                try:
                    n = s.send(data[pos[fd]:])
                except BlockingIOError:
                    continue
                except OSError:
                    budget[fd] = 0
                    continue
                progressed = True
                sent += n
                budget[fd] -= n
                pos[fd] += n
                if pos[fd] >= len(data):
                    pos[fd] = 0
                    if sess is not None:
                        frames = b""
                        for _ in range(4):
                            frames += (struct.pack(">H", 16384 + 16)
                                       + sess.send_cs.encrypt(b"", b"z" * 16384))
                        payload[fd] = frames
            if progressed:
                quiet_since = time.monotonic()
            else:
                time.sleep(0.05)
        held = srv.rss()
        growth = (held - base) * 1024
        per_conn = NOREAD_PER_CONN_THREADS if model == "threads" else NOREAD_PER_CONN
        bound = m * per_conn + NOREAD_BASE
        served = legit_echo(srv.port, proto)
        alive = srv.s.alive()
        for s, _ in socks:
            s.close()
        socks = []
        fds = wait_fds(srv, base_fds)
        ok = growth <= bound and served and alive and fds <= base_fds
        verdict(ok, name, model, "%d clients sent %.0f MiB each and read nothing: RSS %d -> %d KiB "
                "(+%.0f KiB/client), new client served: %s, fds back %d -> %d"
                % (m, sent / m / 2**20, base, held, growth / 1024 / m, served, base_fds, fds),
                "<= %d x %d KiB + %d MiB, served, fds back"
                % (m, per_conn >> 10, NOREAD_BASE >> 20))
    finally:
        for s, _ in socks:
            s.close()
        srv.close()


# --------------------------------------------------------------------------------------------
# 5. Descriptor exhaustion

def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (EMFILE_NOFILE, EMFILE_NOFILE))


def sc_emfile(cfg, model):
    name = "fd-exhaustion"
    srv = Srv(model, "plain", "--no-log-messages", "--max-conns", "1000", "--threads", "2",
              preexec_fn=low_nofile)
    hogs = []
    try:
        base_fds = srv.fds()
        for _ in range(EMFILE_NOFILE * 3):
            hogs.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
        srv.log.wait_for(pred=lambda r: r["event"] == "error" and "accept" in r.get("error", ""),
                         timeout=10, what="the accept error (EMFILE) logged")
        time.sleep(0.2)  # the hogs' accepts are done; now measure a quiet second
        cpu0, t0 = srv.s.cpu_seconds(), time.monotonic()
        time.sleep(1.0)
        rate = (srv.s.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        for s in hogs:
            s.close()
        hogs = []
        end = time.monotonic() + 15
        served = False
        while time.monotonic() < end and not served:
            served = legit_echo(srv.port, "plain")
            if not served:
                time.sleep(0.2)
        fds = wait_fds(srv, base_fds)
        ok = rate <= EMFILE_CPU and served and fds <= base_fds
        verdict(ok, name, model, "RLIMIT_NOFILE %d, %d hogs: %.3f CPU s/s while exhausted, "
                "served after: %s, fds %d -> %d"
                % (EMFILE_NOFILE, EMFILE_NOFILE * 3, rate, served, base_fds, fds),
                "<= %.2f CPU s/s, served, fds back" % EMFILE_CPU)
    except AssertionError as e:
        verdict(False, name, model, str(e).splitlines()[0], "EMFILE logged")
    finally:
        for s in hogs:
            s.close()
        srv.close()


# --------------------------------------------------------------------------------------------
# 6. UDP floods

def run_udp_client(srv, proto, text, tries=3):
    """A new legitimate peer (`secho client -t udp`, a fresh source port) sends `text`;
    True if it got its echo. Plain and lab-fernet clients do not retransmit (SPEC), and
    during a flood the kernel may drop a datagram from the server's full socket buffer, as
    UDP allows: up to `tries` clients are run, each a new peer. A locked-out peer gets
    nothing however often it tries."""
    for _ in range(tries):
        if _udp_client_once(srv, proto, text):
            return True
    return False


def _udp_client_once(srv, proto, text):
    cmd = [harness.BIN, "client", "-H", "127.0.0.1", "-p", str(srv.port), "-P", proto,
           "-t", "udp", "--timeout", "3"]
    if proto == "secure":
        cmd.append("--accept-new")
    try:
        cp = subprocess.run(cmd, input=text, capture_output=True, env=srv.home.env(),
                            timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return cp.returncode == 0 and cp.stdout.startswith(text.split(b"\n")[0])


def sc_udp(cfg, model, proto, kind):
    name = "udp-%s-%s" % (proto, kind)
    srv = Srv(model, proto, "--no-log-messages", transport="udp")
    try:
        # A first legitimate exchange: one-time costs in the baseline.
        run_udp_client(srv, proto, b"warm\nexit\n")
        base = srv.rss()
        log0 = srv.log_bytes()
        n = cfg["udp"]
        if kind == "forged-init":
            payloads = [log_flood.bad_cookie_initiation(i) for i in range(64)]
        elif kind == "garbage":
            payloads = [os.urandom(1 + (i * 37) % 900) for i in range(64)]
        else:  # "key-requests" (lab-fernet: peers that take a key and never speak again)
            payloads = [b"key"]
        served = []
        every = max(1, n // cfg["udp_legit"])
        i = [0]

        def between(_sent):
            served.append(run_udp_client(srv, proto, b"legit during the flood %d\nexit\n"
                                         % len(served)))

        sent = 0
        used = set()
        t0 = time.monotonic()
        while sent < n:
            k = min(every, n - sent)
            p = payloads[i[0] % len(payloads)]
            i[0] += 1
            # Each datagram from a fresh socket and a source of its own.
            flood_t = threading.Thread(target=harness.udp_flood_source_ports,
                                       args=(srv.port, k, p),
                                       kwargs=dict(distinct=used, sources=UDP_SOURCES))
            flood_t.start()
            between(sent)
            flood_t.join()
            sent += k
        took = time.monotonic() - t0
        after_ok = run_udp_client(srv, proto, b"a new peer after\nexit\n")
        grown = (srv.rss() - base) * 1024
        logged = srv.log_bytes() - log0
        rss_bound = min(n, UDP_MAX_CONNS) * UDP_RSS_PER_PEER + UDP_RSS_BASE
        # Bounded outright: secure rejects the flood before keeping any state (cookies;
        # auth_fail is rate-limited), plain and lab-fernet serve each source as a new peer
        # whose lines are rate-limited until it proves itself.
        log_bound = UDP_LOG_BYTES
        log_txt = "log <= +%d KiB" % (UDP_LOG_BYTES >> 10)
        ok = all(served) and after_ok and grown <= rss_bound and logged <= log_bound
        verdict(ok, name, model, "%d datagrams from %d sources in %.1f s: legit served "
                "%d/%d during, after: %s; RSS +%d KiB, log +%d KiB (%.0f B/datagram)"
                % (n, n, took, sum(served), len(served), after_ok, grown >> 10, logged >> 10,
                   logged / n),
                "all served, RSS <= %d B x min(N, --max-conns) + %d MiB, %s"
                % (UDP_RSS_PER_PEER, UDP_RSS_BASE >> 20, log_txt))
    finally:
        srv.close()


# --------------------------------------------------------------------------------------------
# 7. Graceful shutdown

class Loader:
    """`conns` clients that keep the server busy (each keeps up to 32 KiB in flight) and
    check what comes back: plain, the echo must be a prefix of what was sent; secure, every
    record must authenticate and hold the next message sent. A connection ends with eof
    (the server's clean close), reset, or a wrong byte."""

    def __init__(self, port, proto, conns):
        self.proto = proto
        self.ep = select.epoll()
        self.c = {}
        if proto == "plain":
            for _ in range(conns):
                s = idle_rss.dial(port)
                self._add(s, None)
        else:
            for s, sess in secure_batch(port, conns, "est"):
                self._add(s, sess)

    def _add(self, s, sess):
        s.setblocking(False)
        st = {"s": s, "sess": sess, "sent": bytearray(), "got": 0, "inbuf": bytearray(),
              "out": bytearray(), "end": None, "msgs": [], "seq": 0}
        self.c[s.fileno()] = st
        self.ep.register(s.fileno(), select.EPOLLIN | select.EPOLLOUT)

    def _fill(self, st):
        while len(st["out"]) < 8192 and (len(st["sent"]) - st["got"]) < 32768:
            msg = b"%08d echo under load %s\n" % (st["seq"], b"." * 30)
            st["seq"] += 1
            if st["sess"] is None:
                st["sent"] += msg
                st["out"] += msg
            else:
                st["msgs"].append(msg)
                st["sent"] += msg
                st["out"] += struct.pack(">H", len(msg) + 16) + \
                    st["sess"].send_cs.encrypt(b"", msg)

    def _read(self, st):
        try:
            data = st["s"].recv(65536)
        except BlockingIOError:
            return
        except ConnectionResetError:
            st["end"] = "reset"
            return
        if not data:
            st["end"] = "eof"
            return
        if st["sess"] is None:
            g = st["got"]
            if bytes(st["sent"][g:g + len(data)]) != data:
                st["end"] = "wrong"
            st["got"] += len(data)
            return
        st["inbuf"] += data
        while len(st["inbuf"]) >= 2:
            (n,) = struct.unpack(">H", st["inbuf"][:2])
            if len(st["inbuf"]) < 2 + n:
                break
            body = bytes(st["inbuf"][2:2 + n])
            del st["inbuf"][:2 + n]
            try:
                msg = st["sess"].recv_cs.decrypt(b"", body)
            except Exception:  # noqa: BLE001  (an authentication failure is a wrong byte)
                st["end"] = "wrong"
                return
            if not st["msgs"] or st["msgs"].pop(0) != msg:
                st["end"] = "wrong"
                return
            st["got"] += len(msg)

    def run(self, until, stop_sending=None):
        """Pumps until `until()` or every connection ended."""
        while not until() and any(st["end"] is None for st in self.c.values()):
            for fd, ev in self.ep.poll(0.05):
                st = self.c[fd]
                if st["end"] is not None:
                    continue
                if ev & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    self._read(st)
                if st["end"] is None and ev & select.EPOLLOUT and not (stop_sending and
                                                                       stop_sending()):
                    self._fill(st)
                    try:
                        n = st["s"].send(st["out"])
                        del st["out"][:n]
                    except BlockingIOError:
                        pass
                    except OSError:
                        st["end"] = "reset"
                if st["end"] is not None:
                    self.ep.unregister(fd)

    def close(self):
        for st in self.c.values():
            st["s"].close()
        self.ep.close()


def sc_shutdown_load(cfg, model, proto):
    name = "shutdown-load-%s" % proto
    srv = Srv(model, proto, "--no-log-messages")
    ld = None
    try:
        ld = Loader(srv.port, proto, cfg["load_conns"])
        t0 = time.monotonic()
        ld.run(lambda: time.monotonic() - t0 > cfg["load_s"])
        echoed = sum(st["got"] for st in ld.c.values())
        # SIGTERM while every connection has echoes in flight; keep reading what comes.
        srv.s.signal(signal.SIGTERM)
        t1 = time.monotonic()
        rc = [None, None]

        def waiter():
            rc[0] = srv.s.wait_exit(30)
            rc[1] = time.monotonic() - t1
        w = threading.Thread(target=waiter)
        w.start()
        ld.run(lambda: rc[0] is not None and time.monotonic() - t1 > 0.5)
        w.join()
        took = rc[1]
        ends = {}
        for st in ld.c.values():
            ends[st["end"] or "open"] = ends.get(st["end"] or "open", 0) + 1
        stop = srv.count(" event=stop") == 1
        ok = (rc[0] == 0 and stop and took <= SHUTDOWN_S and ends.get("wrong", 0) == 0
              and ends.get("eof", 0) == len(ld.c))
        verdict(ok, name, model, "%d conns, %.1f MB echoed before SIGTERM; exit %s in %.2f s, "
                "stop logged: %s; ends %s"
                % (len(ld.c), echoed / 1e6, rc[0], took, stop,
                   " ".join("%s=%d" % kv for kv in sorted(ends.items()))),
                "rc 0 within %.0f s, event=stop, every echo right, every conn ended by a "
                "clean close (eof)" % SHUTDOWN_S)
    finally:
        if ld:
            ld.close()
        srv.close()


def sc_shutdown_idle(cfg, model, proto):
    name = "shutdown-idle-%s" % proto
    n = cfg["idle_shutdown"]
    if model == "threads" and n > THREADS_MAX:
        skip(name, model, "one thread per connection: %d threads is not what this model is "
             "for (runs at --scale small)" % n)
        return
    res = shutdown_time.run_one(harness.BIN, model, proto, n, False)
    if "skipped" in res:
        verdict(False, name, model, res["skipped"], "%d idle connections" % n)
        return
    ok = res["rc"] == 0 and res["stop_logged"] and res["exit_s"] <= SHUTDOWN_S
    verdict(ok, name, model, "%d idle conns (they never answer the FIN): exit %d in %.2f s, "
            "stop logged: %s, %d disconnect reason=shutdown"
            % (n, res["rc"], res["exit_s"], res["stop_logged"], res["disconnect_shutdown"]),
            "rc 0 within %.0f s, event=stop" % SHUTDOWN_S)


# --------------------------------------------------------------------------------------------

def scenarios(models):
    """(name, model, function, args) in the order they run, heaviest one at a time."""
    out = []
    for proto in ("plain", "secure"):
        for m in models:
            out.append(("conns-" + proto, m, sc_conns, (proto,)))
    for kind in ("line", "handshake", "record"):
        for m in models:
            out.append(("reset-" + kind, m, sc_reset, (kind,)))
    for form in ("handshake", "record", "line"):
        for m in models:
            out.append(("slowloris-" + form, m, sc_slowloris, (form,)))
    for proto in ("plain", "secure"):
        for m in models:
            out.append(("never-read-" + proto, m, sc_noread, (proto,)))
    for m in models:
        out.append(("fd-exhaustion", m, sc_emfile, ()))
    for proto, kind in (("plain", "garbage"), ("lab-fernet", "garbage"),
                        ("lab-fernet", "key-requests"), ("secure", "forged-init"),
                        ("secure", "garbage")):
        for m in models:
            out.append(("udp-%s-%s" % (proto, kind), m, sc_udp, (proto, kind)))
    for proto in ("plain", "secure"):
        for m in models:
            out.append(("shutdown-load-" + proto, m, sc_shutdown_load, (proto,)))
    for proto in ("plain", "secure"):
        for m in models:
            out.append(("shutdown-idle-" + proto, m, sc_shutdown_idle, (proto,)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secho", default=os.path.join(ROOT, "build", "secho"))
    ap.add_argument("--scale", default=os.environ.get("STRESS_SCALE", "full"),
                    choices=sorted(SCALES))
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--only", default="", help="comma-separated scenario names or prefixes")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--timing", action="store_true", help="print each scenario's seconds")
    a = ap.parse_args()
    # SIGTERM (ctest's timeout, a Ctrl-C'd make) unwinds, so every server is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    setup_imports(os.path.abspath(a.secho))
    limit = raise_nofile()
    cfg = SCALES[a.scale]
    models = [m for m in a.models.split(",") if m]
    todo = scenarios(models)
    if a.only:
        pref = [p for p in a.only.split(",") if p]
        todo = [t for t in todo if any(t[0] == p or t[0].startswith(p) for p in pref)]
    if a.list:
        for name, m, _, _ in todo:
            print(name, m)
        return 0
    need = max(cfg["conns"], cfg["idle_shutdown"]) + 200
    if limit < need:
        print("stress: RLIMIT_NOFILE %d is below the %d this scale needs" % (limit, need))
        return 1
    t0 = time.monotonic()
    for name, m, fn, args in todo:
        t1 = time.monotonic()
        try:
            fn(cfg, m, *args)
        except Exception as e:  # noqa: BLE001  (a scenario that crashes is a FAIL, not a stop)
            verdict(False, name, m, "scenario raised %s: %s"
                    % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""), "no error")
        if a.timing:
            print("  %s %s took %.1f s" % (name, m, time.monotonic() - t1), flush=True)
    fails = RESULTS.count(False)
    print("stress (%s): %d PASS, %d FAIL in %.0f s" % (a.scale, RESULTS.count(True), fails,
                                                       time.monotonic() - t0), flush=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
