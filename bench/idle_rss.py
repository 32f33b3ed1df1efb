#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Server memory per idle connection (issue 9 "Memory", issue 10 "Memory after churn").

Starts `secho server` on 127.0.0.1 (a port of its own), reads its RSS from
/proc/PID/status, opens N connections one after another, and on each echoes one message
(plain: one line; secure: the Noise XX handshake as initiator, then one record, with the
independent Python peer tests/e2e/noise_peer.py). The connections then stay open and
idle. Once the server's RSS has stopped moving, the script prints the RSS per connection
above the baseline taken before the first connection (kernel socket memory is not in a
process's RSS, so it is aside by construction). Then it closes every connection, waits for
the server to have closed its sockets, and prints the RSS left after that churn.

Usage: bench/idle_rss.py [--secho build/secho] [-m epoll|reactors|threads] [-P plain|secure]
                         [-n 15000] [--threads N] [--size 64] [--rounds 1] [--json]

The soft descriptor limit is raised to the hard one (both processes need N + a few) and
the server gets --max-conns N + 16. This is a measurement, never a test assertion; run it
on an otherwise quiet machine and repeat.
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))


def status(pid):
    """VmRSS, RssAnon (KiB) of pid."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(val.split()[0])
    return out


def settled(pid, timeout=10.0, quiet=0.5):
    """RSS once it has not changed for `quiet` seconds (the log writer and lazy frees
    finish), or the last reading after `timeout`."""
    end = time.monotonic() + timeout
    last = status(pid)
    since = time.monotonic()
    while time.monotonic() < end:
        time.sleep(0.1)
        cur = status(pid)
        if cur != last:
            last, since = cur, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf


def dial(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    # The secure client writes m3 and its record back to back: without this, Nagle holds
    # the record for the server's delayed ACK.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def open_plain(port, size):
    s = dial(port)
    line = b"x" * (size - 1) + b"\n"
    s.sendall(line)
    if recv_exact(s, len(line)) != line:
        raise AssertionError("wrong echo")
    return s


def open_secure(port, size, noise_peer, name):
    s = dial(port)
    sess = noise_peer.connect(s, name)
    msg = b"x" * size
    sess.send(msg)
    if sess.recv() != msg:
        raise AssertionError("wrong echo")
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secho", default=os.path.join(HERE, "..", "build", "secho"))
    ap.add_argument("-m", "--model", default="epoll")
    ap.add_argument("-P", "--proto", default="plain", choices=("plain", "secure"))
    ap.add_argument("-n", "--conns", type=int, default=15000)
    ap.add_argument("--threads", type=int, default=0, help="-m reactors: event loops")
    ap.add_argument("--size", type=int, default=64, help="bytes of the one message")
    ap.add_argument("--suite", default="Noise_XX_25519_AESGCM_SHA256")
    ap.add_argument("--taskset", default="", help="CPU list for the server, e.g. 0")
    ap.add_argument("--rounds", type=int, default=1,
                    help="open, idle and close all N times (does churn leave RSS growing?)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.conns + 64
    if hard != resource.RLIM_INFINITY and hard < need:
        sys.exit("idle_rss: the hard descriptor limit %d is below %d" % (hard, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    noise_peer = None
    if a.proto == "secure":
        import noise_peer as np_mod  # tests/e2e/noise_peer.py

        noise_peer = np_mod

    tmp = tempfile.mkdtemp(prefix="secho-idle-rss.")
    cmd = [a.secho, "server", "-P", a.proto, "-m", a.model, "-p", "0",
           "-l", os.path.join(tmp, "server.log"), "--no-log-messages",
           "--max-conns", str(a.conns + 16), "--idle-timeout", "0"]
    if a.proto == "secure":
        cmd += ["-k", os.path.join(tmp, "server.key"), "--handshake-timeout", "60"]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    if a.taskset:
        cmd = ["taskset", "-c", a.taskset] + cmd
    env = dict(os.environ, HOME=tmp)
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    socks = []
    try:
        line = srv.stdout.readline().decode()
        if not line.startswith("listening on "):
            sys.exit("idle_rss: server did not start: %r %s" % (line, srv.stderr.read().decode()))
        port = int(line.rsplit(":", 1)[1])
        pid = srv.pid
        if a.taskset:  # the pid is taskset's until it execs; it execs at once
            time.sleep(0.2)
        base = settled(pid)
        base_fds = fd_count(pid)
        waves = []
        for _ in range(a.rounds):
            t0 = time.monotonic()
            for _ in range(a.conns):
                if a.proto == "plain":
                    socks.append(open_plain(port, a.size))
                else:
                    socks.append(open_secure(port, a.size, noise_peer, a.suite))
            took = time.monotonic() - t0
            idle = settled(pid)
            for s in socks:
                s.close()
            socks = []
            end = time.monotonic() + 60
            while fd_count(pid) > base_fds and time.monotonic() < end:
                time.sleep(0.1)
            churn = settled(pid)
            waves.append((took, idle, churn))
    finally:
        for s in socks:
            s.close()
        srv.terminate()
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)

    n = a.conns
    for i, (took, idle, churn) in enumerate(waves):
        res = {
            "model": a.model, "proto": a.proto, "conns": n, "size": a.size,
            "threads": a.threads or None, "round": i + 1, "open_seconds": round(took, 2),
            "base_rss_kib": base["VmRSS"], "idle_rss_kib": idle["VmRSS"],
            "churn_rss_kib": churn["VmRSS"],
            "rss_per_conn_bytes": round((idle["VmRSS"] - base["VmRSS"]) * 1024 / n),
            "anon_per_conn_bytes": round((idle["RssAnon"] - base["RssAnon"]) * 1024 / n),
            "churn_above_base_kib": churn["VmRSS"] - base["VmRSS"],
        }
        if a.json:
            print(json.dumps(res))
        else:
            print("%-8s %-6s n=%d round %d: base %d KiB, idle %d KiB -> %d B/conn RSS "
                  "(%d B anon); after closing all %d KiB (+%d over base); opened in %.1fs"
                  % (a.model, a.proto, n, i + 1, base["VmRSS"], idle["VmRSS"],
                     res["rss_per_conn_bytes"], res["anon_per_conn_bytes"], churn["VmRSS"],
                     res["churn_above_base_kib"], took))

if __name__ == "__main__":
    main()
