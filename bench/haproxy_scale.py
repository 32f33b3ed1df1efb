# SPDX-License-Identifier: MIT
"""Throughput of secho behind HAProxy: one backend versus two (docs/DEPLOY.md), next to the
same load straight at one server.

Usage: python3 bench/haproxy_scale.py path/to/secho [SECONDS] [ROUNDS] [-- BENCH ARGS...]
Default: 5 s measured per run, 3 rounds (each round runs direct, haproxy->1, haproxy->2 and
haproxy->1 with twice the reactors in turn, so that other load on the machine spreads over
all of them), bench -P plain -c 32 -s 128
--pipeline 4. Every process is started here on loopback (ports picked by the kernel;
haproxy serves a listener made here, `bind fd@N`) and stopped by its PID. Prints one line
per run and the median of each setup."""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile

binary = sys.argv[1]
rest = sys.argv[2:]
extra = []
if "--" in rest:
    extra = rest[rest.index("--") + 1:]
    rest = rest[:rest.index("--")]
seconds = rest[0] if rest else "5"
rounds = int(rest[1]) if len(rest) > 1 else 3
bench_args = extra or ["-P", "plain", "-c", "32", "-s", "128", "--pipeline", "4"]
tmp = tempfile.mkdtemp(prefix="secho-haproxy-bench-")
procs = []


def start_backend(*args):
    p = subprocess.Popen([binary, "server", "-P", "plain", "-p", "0", "-l", os.devnull,
                          "--no-log-messages", "--proxy-protocol", "--trusted-proxy", "127.0.0.1",
                          *args],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, XDG_CONFIG_HOME=tmp))
    procs.append(p)
    return int(p.stdout.readline().split(b":")[-1])


def start_direct():
    p = subprocess.Popen([binary, "server", "-P", "plain", "-p", "0", "-l", os.devnull,
                          "--no-log-messages"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, XDG_CONFIG_HOME=tmp))
    procs.append(p)
    return int(p.stdout.readline().split(b":")[-1])


def start_haproxy(ports):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(256)
    servers = "".join("    server b%d 127.0.0.1:%d send-proxy-v2\n" % (i, p)
                      for i, p in enumerate(ports))
    cfg = os.path.join(tmp, "haproxy-%d.cfg" % len(ports))
    with open(cfg, "w") as f:
        f.write("global\n    maxconn 1024\ndefaults\n    mode tcp\n    timeout connect 2s\n"
                "    timeout client 60s\n    timeout server 60s\nfrontend fe\n"
                "    bind fd@%d\n    default_backend be\nbackend be\n    balance roundrobin\n%s"
                % (ls.fileno(), servers))
    p = subprocess.Popen(["haproxy", "-db", "-f", cfg], pass_fds=[ls.fileno()],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    port = ls.getsockname()[1]
    ls.close()
    return port


def bench(port):
    out = subprocess.run([binary, "bench", "-p", str(port), "-d", seconds, "--json"] + bench_args,
                         capture_output=True, text=True, timeout=float(seconds) + 60)
    r = json.loads(out.stdout)
    return r


try:
    ncpu = os.cpu_count() or 1
    b1, b2 = start_backend(), start_backend()
    # One backend with as many reactors as the two have together: tells a gain of two
    # backends from a gain of more threads.
    b3 = start_backend("--threads", str(2 * ncpu))
    setups = [("direct, 1 server", start_direct()), ("haproxy -> 1 backend", start_haproxy([b1])),
              ("haproxy -> 2 backends", start_haproxy([b1, b2])),
              ("haproxy -> 1, %d reactors" % (2 * ncpu), start_haproxy([b3]))]
    results = {name: [] for name, _ in setups}
    print("bench %s, %s s per run, load average %s" % (" ".join(bench_args), seconds,
                                                        open("/proc/loadavg").read().split()[0]))
    for r in range(rounds):
        for name, port in setups:
            j = bench(port)
            results[name].append(j)
            print("  round %d  %-24s %9.0f msgs/s  p50 %6d us  p99 %6d us  errors %d"
                  % (r + 1, name, j["msgs_per_s"], j["p50_us"], j["p99_us"], j["errors"]))
    print("median of %d:" % rounds)
    for name, _ in setups:
        rs = results[name]
        print("  %-24s %9.0f msgs/s  p50 %6.0f us  p99 %6.0f us"
              % (name, statistics.median(x["msgs_per_s"] for x in rs),
                 statistics.median(x["p50_us"] for x in rs),
                 statistics.median(x["p99_us"] for x in rs)))
    print("load average after: %s" % open("/proc/loadavg").read().split()[0])
finally:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
