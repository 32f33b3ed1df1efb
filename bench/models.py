#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Server CPU per echo, messages/s and p99 of several I/O models of one secho build, side by
side: each server in turn pinned to CPU 0, loaded by `secho bench` pinned to CPU 1, the
models interleaved within every round so that noise on a shared machine hits them alike.

CPU per echo is the server's run time (every thread's, from /proc/PID/task/*/schedstat, in
nanoseconds) over the bench's measured window, divided by the echoes counted in it. With
--syscalls a separate, shorter pass per model runs the same load under `strace -c -f`
(which slows the server: only the counts mean anything) and reports system calls and
waits (epoll_wait / io_uring_enter: each a possible sleep and wake-up) per echo.

A model may carry environment settings for its server: `epoll:SECHO_UDP_SINGLE=1` is the
epoll model with UDP's one-datagram-per-call path (compare it with `epoll` over
--transport udp).

Usage: bench/models.py [--bin build/secho] [--models uring,epoll,reactors]
                       [--loads closed,40000] [--rounds 3] [--duration 3] [--syscalls]
                       [--transport tcp] [--args "-c 50 -s 64"] [--server-args "..."]
"""

import argparse
import glob
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

WAITS = ("epoll_wait", "epoll_pwait", "io_uring_enter")


def run_ns(pid):
    """Run time of every thread of pid so far, in ns."""
    total = 0
    for path in glob.glob("/proc/%d/task/*/schedstat" % pid):
        try:
            with open(path) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # a thread that just ended
    return total


class Server:
    def __init__(self, binary, spec, transport, extra, tmp):
        model, *settings = spec.split(":")
        env = dict(os.environ)
        env.update(kv.split("=", 1) for kv in settings)
        self.log = os.path.join(tmp, "server-%s.log" % model)
        cmd = ["taskset", "-c", "0", binary, "server", "-P", "plain", "-t", transport,
               "-m", model, "--threads", "1", "-p", "0", "-l", self.log, "--no-log-messages",
               *extra]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"listening on .*:(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            raise SystemExit("bench/models.py: %s did not start: %s %s"
                             % (model, line, self.proc.stderr.read().decode()))
        self.port = int(m.group(1))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def bench(binary, port, transport, load, duration, warmup, args):
    cmd = ["taskset", "-c", "1", binary, "bench", "-P", "plain", "-t", transport, "-p",
           str(port), "-d", str(duration), "--warmup", str(warmup), "--json", *args]
    if load != "closed":
        cmd += ["--rate", load]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE)


def measure(opts, model, load, tmp):
    srv = Server(opts.bin, model, opts.transport, shlex.split(opts.server_args), tmp)
    try:
        b = bench(opts.bin, srv.port, opts.transport, load, opts.duration, opts.warmup,
                  shlex.split(opts.args))
        time.sleep(opts.warmup + 0.05)
        t0 = run_ns(srv.proc.pid)
        time.sleep(opts.duration - 0.1)
        t1 = run_ns(srv.proc.pid)
        out = json.loads(b.communicate()[0])
        # The window read here is 0.05 s shorter than the bench's at each end; the echoes
        # are scaled to it.
        msgs = out["msgs"] * (opts.duration - 0.1) / opts.duration
        return {"rate": out["msgs_per_s"], "p99": out["p99_us"],
                "us_per_echo": (t1 - t0) / 1e3 / msgs if msgs else 0.0,
                "errors": out["errors"], "late": out.get("late", 0)}
    finally:
        srv.stop()


def syscalls(opts, model, load, tmp):
    srv = Server(opts.bin, model, opts.transport, shlex.split(opts.server_args), tmp)
    out_path = os.path.join(tmp, "strace.txt")
    try:
        st = subprocess.Popen(["strace", "-c", "-f", "-o", out_path, "-p", str(srv.proc.pid)],
                              stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        b = bench(opts.bin, srv.port, opts.transport, load, 2, 0.2, shlex.split(opts.args))
        res = json.loads(b.communicate()[0])
        st.terminate()
        st.wait(timeout=10)
    finally:
        srv.stop()
    # Echoes during the whole traced time: the measured ones plus the warm-up's share.
    echoes = res["msgs"] * 2.2 / 2
    calls = {}
    with open(out_path) as f:
        for line in f:
            p = line.split()
            if len(p) >= 5 and p[0][0].isdigit() and not line.startswith("100.00"):
                name = p[-1]
                calls[name] = int(p[3])
    total = sum(calls.values())
    waits = sum(v for k, v in calls.items() if k in WAITS)
    top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
    return total / echoes, waits / echoes, ", ".join("%s %.2f" % (k, v / echoes) for k, v in top)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="build/secho")
    ap.add_argument("--models", default="uring,epoll,reactors")
    ap.add_argument("--loads", default="closed,40000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--transport", default="tcp")
    ap.add_argument("--args", default="-c 50 -s 64")
    ap.add_argument("--server-args", default="")
    ap.add_argument("--syscalls", action="store_true")
    opts = ap.parse_args()
    opts.bin = os.path.abspath(opts.bin)
    models = opts.models.split(",")
    loads = opts.loads.split(",")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="secho-models-") as tmp:
        print("bench/models.py: %s; plain/%s %s, %s s, %d rounds; server CPU 0, load CPU 1"
              % (opts.bin, opts.transport, opts.args, opts.duration, opts.rounds),
              file=sys.stderr)
        for r in range(opts.rounds):
            print("round %d/%d" % (r + 1, opts.rounds), file=sys.stderr)
            for load in loads:
                for model in models:
                    rows.setdefault((load, model), []).append(measure(opts, model, load, tmp))
        w = max(9, max(len(m) for m in models))
        print("%-8s %-*s %10s %10s %10s %8s %8s" % ("load", w, "model", "msgs/s", "us/echo",
                                                    "x first", "p99 us", "errors"))
        for load in loads:
            base = None
            for model in models:
                rs = rows[(load, model)]
                rate = statistics.median(x["rate"] for x in rs)
                cpu = statistics.median(x["us_per_echo"] for x in rs)
                p99 = statistics.median(x["p99"] for x in rs)
                base = base or cpu
                print("%-8s %-*s %10.0f %10.2f %10.3f %8.0f %8d"
                      % (load, w, model, rate, cpu, cpu / base, p99, sum(x["errors"] for x in rs)))
        if opts.syscalls:
            print("\nsystem calls per echo under strace -c -f (2 s each; strace slows the server)")
            for load in loads:
                for model in models:
                    total, waits, top = syscalls(opts, model, load, tmp)
                    print("%-8s %-*s %6.2f calls, %5.2f waits per echo: %s"
                          % (load, w, model, total, waits, top))
    print("Medians of %d rounds; us/echo = server CPU (all threads) per echo, lower is better;"
          " x first = us/echo relative to the first model." % opts.rounds)


if __name__ == "__main__":
    main()
