#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark suite (`make bench`): secho's server in each I/O model, and a baseline peer
# measured in the same run, all loaded by `secho bench`. Prints a table with ratios
# against the peer and appends JSON lines to bench/results/.
#
# Usage: bench/run.sh [path/to/secho]
# Environment: BENCH_DURATION (s, default 3), BENCH_WARMUP (s, default 1),
#   BENCH_ARGS (extra secho bench options, default "-c 10 -s 64 --pipeline 1"),
#   BENCH_SERVER_ARGS (extra secho server options, default none),
#   BENCH_SOCAT=0 to skip the socat row.
set -euo pipefail

SECHO=${1:-build/secho}
DURATION=${BENCH_DURATION:-3}
WARMUP=${BENCH_WARMUP:-1}
read -r -a LOAD <<<"${BENCH_ARGS:--c 10 -s 64 --pipeline 1}"
read -r -a SERVER_EXTRA <<<"${BENCH_SERVER_ARGS:-}"
HERE=$(cd "$(dirname "$0")" && pwd)
RESULTS=$HERE/results
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS/$STAMP.jsonl

[ -x "$SECHO" ] || { echo "bench/run.sh: $SECHO is not an executable (run make first)" >&2; exit 2; }
SECHO=$(cd "$(dirname "$SECHO")" && pwd)/$(basename "$SECHO")
mkdir -p "$RESULTS"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/secho-bench-run.XXXXXX")
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

${CC:-cc} -O2 -std=c17 -D_GNU_SOURCE -Wall -Wextra -o "$TMP/echo_peer" "$HERE/echo_peer.c"

# Starts "$@" in the background, waits for its "listening on HOST:PORT" line, sets PID/PORT.
start() {
    "$@" >"$TMP/ready" 2>"$TMP/server.err" &
    PID=$!
    for _ in $(seq 100); do
        if grep -q '^listening on ' "$TMP/ready" 2>/dev/null; then
            PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$TMP/ready" | head -1)
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench/run.sh: $1 did not start:" >&2
    cat "$TMP/server.err" >&2
    exit 1
}

stop() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
    rm -f "$TMP/server.log"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs secho bench against $PORT and appends its JSON, labelled, to $OUT.
measure() { # label transport
    local label=$1 transport=$2 json
    if ! json=$("$SECHO" bench -P plain -t "$transport" -p "$PORT" -d "$DURATION" \
        --warmup "$WARMUP" "${LOAD[@]}" --json); then
        echo "bench/run.sh: secho bench against $label failed" >&2
        exit 1
    fi
    echo "{\"run\":\"$STAMP\",\"target\":\"$label\",${json#\{}" >>"$OUT"
    printf '  %-22s done\n' "$label/$transport" >&2
}

field() { # json key
    sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"
}

echo "secho bench: ${LOAD[*]}, ${DURATION} s after ${WARMUP} s warm-up, $(nproc) CPUs" >&2
for transport in tcp udp; do
    for model in threads epoll reactors; do
        [ "$transport" = udp ] && [ "$model" = threads ] && continue
        start "$SECHO" server -P plain -t "$transport" -H 127.0.0.1 -p 0 -m "$model" \
            -l "$TMP/server.log" "${SERVER_EXTRA[@]}"
        measure "secho-$model" "$transport"
        stop
    done
    start "$TMP/echo_peer" "$transport"
    measure "peer-c-epoll" "$transport"
    stop
    if [ "$transport" = tcp ] && [ "${BENCH_SOCAT:-1}" != 0 ] && command -v socat >/dev/null; then
        PORT=$(free_port)
        socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,backlog=1024" PIPE 2>/dev/null &
        PID=$!
        for _ in $(seq 50); do
            (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
            sleep 0.1
        done
        measure "socat-fork-pipe" "$transport"
        stop
    fi
done

# The table: every row against the C peer measured over the same transport in this run.
echo
printf '%-17s %-4s %12s %9s %10s %10s %8s %9s\n' target xport 'msgs/s' 'MB/s' 'p99 us' \
    'x peer' 'p99 x' errors
for transport in tcp udp; do
    peer=$(grep "\"target\":\"peer-c-epoll\"" "$OUT" | grep "\"transport\":\"$transport\"" | tail -1)
    peer_rate=$(field "$peer" msgs_per_s)
    peer_p99=$(field "$peer" p99_us)
    grep "\"transport\":\"$transport\"" "$OUT" | grep "\"run\":\"$STAMP\"" | while read -r line; do
        rate=$(field "$line" msgs_per_s)
        p99=$(field "$line" p99_us)
        awk -v t="$(field "$line" target | tr -d '"')" -v x="$transport" -v r="$rate" \
            -v mb="$(field "$line" mb_per_s)" -v p="$p99" -v pr="$peer_rate" -v pp="$peer_p99" \
            -v e="$(field "$line" errors)" 'BEGIN {
                printf "%-17s %-4s %12.0f %9.2f %10.1f %10.2f %8.2f %9d\n", t, x, r, mb, p,
                    (pr > 0 ? r / pr : 0), (pp > 0 ? p / pp : 0), e }'
    done
done
echo
echo "x peer: msgs/s divided by peer-c-epoll's (higher is better); p99 x: p99 latency divided"
echo "by the peer's (lower is better). Results: ${OUT#"$PWD"/}"
