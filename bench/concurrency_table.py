#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The table of bench/concurrency.sh (docs/CONCURRENCY.md) from its run directory.

Usage: concurrency_table.py DIR ELAPSED_S NCPU "LOADAVG"   (Markdown on stdout)
"""
import json, os, statistics, sys
out, elapsed, ncpu, load = sys.argv[1:5]
rows = [json.loads(l) for l in open(os.path.join(out, "meta.jsonl"))]
groups = {}
for r in rows:
    b = json.load(open(os.path.join(out, r["json"])))
    r["rate"], r["p99"] = b["msgs_per_s"], b["p99_us"]
    r["errors"] = b["errors"]
    r["conns"] = b["connections"]
    r["cpu_us"] = r["cpu_s"] * 1e6 / (b["msgs_per_s"] * r["window_s"]) if b["msgs_per_s"] else float("nan")
    r["cores"] = r["cpu_s"] / r["window_s"]
    r["work"] = r["scenario"].rsplit("-c", 1)[0]
    groups.setdefault((r["work"], r["conns"], r["target"]), []).append(r)
name = {"secho-threads": "C: secho -m threads (thread per connection)",
        "secho-epoll": "C: secho -m epoll (one loop)",
        "secho-reactors": f"C: secho -m reactors ({ncpu} loops, one per core)",
        "py-threaded": "Python: notebook threaded (thread per connection)",
        "py-selectors": "Python: notebook selectors (one loop)",
}
work = {"plain": "plain 64 B", "plain-16k": "plain 16 KiB", "secure-16k": "secure 16 KiB",
        "py-cpu": "64 B + Python loop (GIL held)", "py-sha": "64 B + SHA-256 of 256 KiB (GIL released)"}
print(f"Closed loop, server on CPUs {rows[0]['server_cmd'].split()[2]}, load on one "
      f"thread; medians of {max(r['round'] for r in rows)} rounds; {elapsed} s; load average {load}.")
print()
print("| work | connections | server | msgs/s | p99 µs | server CPU/echo µs | server cores busy | threads | RSS MiB | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
med = lambda g, k: statistics.median(x[k] for x in g)
for (proto, conns, target), g in groups.items():
    flag = "*" if any(x.get("sample_outside") or x.get("late_start") for x in g) else ""
    print(f"| {work.get(proto, proto)} | {conns} | {name.get(target, target)} | {med(g, 'rate'):.0f} | {med(g, 'p99'):.0f} | "
          f"{med(g, 'cpu_us'):.1f}{flag} | {med(g, 'cores'):.2f} | {max(x['threads'] for x in g)} | "
          f"{med(g, 'rss_kb') / 1024:.1f} | {sum(x['errors'] for x in g)} |")
print()
print("`server cores busy`: server CPU seconds per second (2.00 = both cores). `threads`: the server's "
      "threads at the end of the window (the most over rounds). `*`: in some round bench started late or "
      "a CPU sample fell outside bench's window, so that CPU/echo is less exact.")
