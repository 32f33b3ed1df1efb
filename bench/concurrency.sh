#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The figures of docs/CONCURRENCY.md: thread per connection against one event loop against
# one loop per core, in C (secho -m threads | epoll | reactors) and in Python (the
# notebook's threaded and selectors servers), at 1, 50 and 500 connections, with work per
# message that is I/O-bound (a plain echo) or CPU-bound: -P secure with 16 KiB messages
# (AES-256-GCM over every byte, twice) beside plain 16 KiB for secho; for the notebook's
# servers, a pure-Python loop per read (py:1000, holds the GIL) or a SHA-256 of 32 KiB per
# read (sha:32, hashlib releases the GIL while it hashes).
#
# Unlike bench/run.sh the server is NOT pinned to one CPU: it may use both, so that a
# threaded or per-core server can show whether it runs on more than one core at a time.
# The load (`secho bench`, one thread) is pinned to CPU 1, so the server has CPU 0 to
# itself and shares CPU 1 with the load. Closed loop, one message in flight per connection.
#
# Usage: bench/concurrency.sh [path/to/secho]
# Environment: BENCH_DURATION [1.5] s measured, BENCH_WARMUP [0.5] s (1 s more at 500
#   connections, for the connects and handshakes), BENCH_ROUNDS [2] (median shown), BENCH_CONCURRENCY
#   ["1 50 500"], BENCH_WORK ["plain plain-16k secure-16k py-cpu py-sha"],
#   BENCH_SERVER_CPUS [0,1], BENCH_LOAD_CPUS [1]. Default run: about 6 minutes.
# Prints a Markdown table; raw data in bench/results/concurrency-STAMP/.
set -euo pipefail

SECHO=${1:-build/secho}
DURATION=${BENCH_DURATION:-1.5}
WARMUP0=${BENCH_WARMUP:-0.5}
ROUNDS=${BENCH_ROUNDS:-2}
CONCURRENCY=${BENCH_CONCURRENCY:-1 50 500}
WORK=${BENCH_WORK:-plain plain-16k secure-16k py-cpu py-sha}
SERVER_CPUS=${BENCH_SERVER_CPUS:-0,1}
LOAD_CPUS=${BENCH_LOAD_CPUS:-1}
SERVER_EXTRA=()
HERE=$(cd "$(dirname "$0")" && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$HERE/results/concurrency-$STAMP

[ -x "$SECHO" ] || { echo "bench/concurrency.sh: $SECHO is not an executable (run make first)" >&2; exit 2; }
SECHO=$(cd "$(dirname "$SECHO")" && pwd)/$(basename "$SECHO")
mkdir -p "$OUT/json"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/secho-bench-conc.XXXXXX")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
trap lib_cleanup EXIT
trap 'exit 130' INT TERM
build_peers
BEGIN=$EPOCHREALTIME

# Each kind of work: the protocol, the message size, the extra work per read given to the
# notebook's Python servers (PEER_WORK), and the servers that do it.
work_def() { # work -> sets PROTO SIZE PEER_WORK SERVERS
    PEER_WORK=
    case $1 in
    plain) PROTO=plain SIZE=64 SERVERS="secho-threads secho-epoll secho-reactors py-threaded py-selectors" ;;
    plain-16k) PROTO=plain SIZE=16384 SERVERS="secho-threads secho-epoll secho-reactors" ;;
    secure-16k) PROTO=secure SIZE=16384 SERVERS="secho-threads secho-epoll secho-reactors" ;;
    py-cpu) PROTO=plain SIZE=64 PEER_WORK=py:1000 SERVERS="py-threaded py-selectors" ;;
    py-sha) PROTO=plain SIZE=64 PEER_WORK=sha:32 SERVERS="py-threaded py-selectors" ;;
    *)
        echo "bench/concurrency.sh: unknown work $1" >&2
        exit 2 ;;
    esac
}

echo "concurrency: ${WORK} at ${CONCURRENCY} connections; ${DURATION} s, ${ROUNDS} rounds;" \
    "server on CPUs ${SERVER_CPUS}, load on CPU ${LOAD_CPUS}" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    for work in $WORK; do
        for c in $CONCURRENCY; do
            work_def "$work"
            for t in $SERVERS; do
                payload=random
                case $t in py-*) payload=text ;; esac
                WARMUP=$WARMUP0
                [ "$c" -ge 500 ] && WARMUP=$(awk -v w="$WARMUP0" 'BEGIN { print w + 1.5 }')
                START_DELAY=$(awk -v c="$c" 'BEGIN { printf "%.2f", 0.4 + c / 400 }')
                start_server "$t" "$PROTO" tcp
                measure "$round" "$work-c$c" "$t" "$PROTO" tcp -c "$c" -s "$SIZE" --payload "$payload" \
                    --timeout 20
                stop_server
            done
        done
    done
done
ELAPSED=$(awk -v a="$BEGIN" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')

"$PYTHON" - "$OUT" "$ELAPSED" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'EOF' | tee "$OUT/table.md"
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
        "py-cpu": "64 B + Python loop (GIL held)", "py-sha": "64 B + SHA-256 of 32 KiB (GIL released)"}
print(f"Closed loop, server on CPUs {rows[0]['server_cmd'].split()[2]}, load on one "
      f"thread; medians of {max(r['round'] for r in rows)} rounds; {elapsed} s; load average {load}.")
print()
print("| work | connections | server | msgs/s | p99 µs | server CPU/echo µs | server cores busy | threads | RSS MiB | errors |")
print("|---|---|---|---|---|---|---|---|---|---|")
med = lambda g, k: statistics.median(x[k] for x in g)
for (proto, conns, target), g in groups.items():
    print(f"| {work.get(proto, proto)} | {conns} | {name.get(target, target)} | {med(g, 'rate'):.0f} | {med(g, 'p99'):.0f} | "
          f"{med(g, 'cpu_us'):.1f} | {med(g, 'cores'):.2f} | {g[0]['threads']} | "
          f"{med(g, 'rss_kb') / 1024:.1f} | {sum(x['errors'] for x in g)} |")
EOF
echo "concurrency: ${ELAPSED} s; raw data in ${OUT#"$PWD"/}" >&2
