#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How long `secho server` takes to stop on SIGTERM while holding N idle connections.

For each model and each N: starts `secho server -P PROTO -m MODEL -p 0 -l FILE`, opens N
connections (secure: each completes the Noise XX handshake with the independent Python
initiator of tests/e2e/noise_peer.py; plain: a bare TCP connect), waits until the server has
logged every one (`handshake` for secure, `connect` for plain), sends SIGTERM and measures
the wall time until the process has exited. The connections stay idle and never answer the
server's FIN (the worst case: every one of them lingers until the drain deadline), unless
--close-on-eof, where a thread closes each socket as soon as the server's FIN arrives.

Printed per run: the time from SIGTERM to exit, the exit status, whether `event=stop` was
logged, the number of `disconnect` lines with reason=shutdown, and the log's own view
(signal -> last disconnect, signal -> stop, from the ts= fields). SPEC: exit 0 within 2 s.

Needs RLIMIT_NOFILE: the script raises its soft limit to the hard one (the server raises its
own the same way); N above the hard limit minus a margin is skipped. The threads model is
capped by its own limits (one thread each, 1 MiB stacks, the kernel's threads-max and
vm.max_map_count): a run that cannot open N there says so and goes on.

Usage: bench/shutdown_time.py [--bin build/secho] [--models threads,epoll,reactors]
                              [--counts 6000,15000] [--proto secure|plain] [--rounds 1]
                              [--close-on-eof] [--json]
"""

import argparse
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))

NAME = "Noise_XX_25519_AESGCM_SHA256"
BATCH = 200  # connections whose handshakes are in flight at once


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_server(binary, model, proto, tmp):
    log = os.path.join(tmp, "server.log")
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(tmp, "config"))
    args = [binary, "server", "-P", proto, "-m", model, "-H", "127.0.0.1", "-p", "0", "-l", log]
    if proto == "secure":
        args += ["-k", os.path.join(tmp, "server.key")]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True)
    line = p.stdout.readline().decode()
    m = re.match(r"listening on .*:(\d+)$", line.strip())
    if not m:
        p.kill()
        p.wait()
        raise RuntimeError("server did not start: %r %s" % (line, p.stderr.read().decode()))
    return p, int(m.group(1)), log


def count_events(log, event, extra=None):
    n = 0
    pat = (" event=%s " % event).encode()
    try:
        with open(log, "rb") as f:
            for line in f:
                if pat in line and (extra is None or extra in line):
                    n += 1
    except FileNotFoundError:
        pass
    return n


def wait_events(log, event, want, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        n = count_events(log, event)
        if n >= want:
            return n
        time.sleep(0.05)
    return count_events(log, event)


def open_plain(port, n):
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(s)
    return socks


def open_secure(port, n):
    import noise_peer

    s_priv, _ = noise_peer.new_static()
    pre = noise_peer.preamble(NAME)
    socks = []
    while len(socks) < n:
        batch = []
        for _ in range(min(BATCH, n - len(socks))):
            s = socket.create_connection(("127.0.0.1", port), timeout=20)
            hs = noise_peer.HandshakeState(NAME, True, noise_peer._prologue(pre), s_priv)
            m1 = hs.write_message()
            s.sendall(pre + struct.pack(">H", len(m1)) + m1)
            batch.append((s, hs))
        for s, hs in batch:
            w = noise_peer.Wire(s)
            hs.read_message(w.recv_frame())
            w.send_frame(hs.write_message())
            socks.append(s)
    return socks


def closer(socks, stop):
    """Closes each socket as soon as the server's FIN (or a reset) arrives."""
    ep = select.epoll()
    by_fd = {}
    for s in socks:
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        by_fd[s.fileno()] = s
    while by_fd and not stop.is_set():
        for fd, _ in ep.poll(0.05):
            s = by_fd.pop(fd, None)
            if s is not None:
                ep.unregister(fd)
                s.close()
    ep.close()


def log_ts(line):
    m = re.search(rb"ts=(\S+)", line)
    if not m:
        return None
    t = m.group(1).decode().rstrip("Z")
    day, clock = t.split("T")
    h, mi, s = clock.split(":")
    return int(h) * 3600 + int(mi) * 60 + float(s)


def log_view(log):
    sig = stop = last_disc = None
    disc = 0
    with open(log, "rb") as f:
        for line in f:
            if b" event=signal " in line:
                sig = log_ts(line)
            elif b" event=stop" in line:
                stop = log_ts(line)
            elif b" event=disconnect " in line and b"reason=shutdown" in line:
                disc += 1
                last_disc = log_ts(line)
    rel = lambda t: None if t is None or sig is None else round(t - sig, 3)
    return {"disconnect_shutdown": disc, "log_sig_to_last_disconnect_s": rel(last_disc),
            "log_sig_to_stop_s": rel(stop)}


def run_one(binary, model, proto, n, close_on_eof):
    tmp = tempfile.mkdtemp(prefix="secho-shutdown-")
    proc = None
    socks = []
    stop = threading.Event()
    th = None
    try:
        proc, port, log = start_server(binary, model, proto, tmp)
        t0 = time.monotonic()
        try:
            socks = (open_secure if proto == "secure" else open_plain)(port, n)
        except OSError as e:
            return {"model": model, "proto": proto, "n": n, "opened": len(socks),
                    "skipped": "could not open %d connections: %s" % (n, e)}
        ev = "handshake" if proto == "secure" else "connect"
        seen = wait_events(log, ev, n, 60)
        setup_s = time.monotonic() - t0
        if seen < n:
            return {"model": model, "proto": proto, "n": n, "opened": seen,
                    "skipped": "server logged %d of %d connections" % (seen, n)}
        if close_on_eof:
            th = threading.Thread(target=closer, args=(socks, stop), daemon=True)
            th.start()
        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        took = time.monotonic() - t1
        res = {"model": model, "proto": proto, "n": n, "setup_s": round(setup_s, 1),
               "exit_s": round(took, 3), "rc": rc,
               "stop_logged": count_events(log, "stop") == 1}
        res.update(log_view(log))
        res["log_bytes"] = os.path.getsize(log)
        return res
    finally:
        stop.set()
        if th:
            th.join()
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "build", "secho"))
    ap.add_argument("--models", default="threads,epoll,reactors")
    ap.add_argument("--counts", default="6000,15000")
    ap.add_argument("--proto", default="secure", choices=["secure", "plain"])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--close-on-eof", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    limit = raise_nofile()
    for r in range(a.rounds):
        for n in [int(x) for x in a.counts.split(",")]:
            for model in a.models.split(","):
                if n + 64 > limit:
                    res = {"model": model, "n": n, "skipped": "RLIMIT_NOFILE %d" % limit}
                else:
                    res = run_one(os.path.abspath(a.bin), model, a.proto, n, a.close_on_eof)
                res["round"] = r
                if a.json:
                    print(json.dumps(res), flush=True)
                elif "skipped" in res:
                    print("%-8s %-6s n=%-6d skipped: %s" % (model, a.proto, n, res["skipped"]),
                          flush=True)
                else:
                    print("%-8s %-6s n=%-6d exit %.3f s rc=%d stop=%s disconnects=%d "
                          "log: sig->last-disconnect %s s, sig->stop %s s (setup %.0f s)"
                          % (model, a.proto, n, res["exit_s"], res["rc"], res["stop_logged"],
                             res["disconnect_shutdown"], res["log_sig_to_last_disconnect_s"],
                             res["log_sig_to_stop_s"], res["setup_s"]), flush=True)


if __name__ == "__main__":
    main()
