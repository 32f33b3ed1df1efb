#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The figures of docs/CONCURRENCY.md: thread per connection against one event loop against
# one loop per core, in C (secho -m threads | epoll | reactors) and in Python (the
# notebook's threaded and selectors servers), at 1, 50 and 500 connections, with work per
# message that is I/O-bound (a plain echo) or CPU-bound: -P secure with 16 KiB messages
# (AES-256-GCM over every byte, twice) beside plain 16 KiB for secho; for the notebook's
# servers, a pure-Python loop per read (py:5000, holds the GIL) or a SHA-256 of 256 KiB per
# read (sha:256, hashlib releases the GIL while it hashes), each about 0.2 ms, enough that
# the server, not the load, is the bottleneck at 50 connections.
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
    py-cpu) PROTO=plain SIZE=64 PEER_WORK=py:5000 SERVERS="py-threaded py-selectors" ;;
    py-sha) PROTO=plain SIZE=64 PEER_WORK=sha:256 SERVERS="py-threaded py-selectors" ;;
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

"$PYTHON" "$HERE/concurrency_table.py" "$OUT" "$ELAPSED" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/table.md"
echo "concurrency: ${ELAPSED} s; raw data in ${OUT#"$PWD"/}" >&2
