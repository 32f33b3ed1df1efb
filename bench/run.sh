#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark suite (`make bench`): secho's server in each I/O model, and a baseline peer
# measured in the same run, all loaded by `secho bench`. Prints a table with ratios
# against the peer and appends JSON lines to bench/results/.
#
# Usage: bench/run.sh [path/to/secho]
# Environment: BENCH_DURATION (s per measurement, default 2), BENCH_WARMUP (s, default
#   0.5), BENCH_ROUNDS (default 3; the table shows the median round),
#   BENCH_ARGS (extra secho bench options, default "-c 10 -s 64 --pipeline 1"),
#   BENCH_SERVER_ARGS (extra secho server options, default none),
#   BENCH_SOCAT=0 to skip the socat row.
set -euo pipefail

SECHO=${1:-build/secho}
DURATION=${BENCH_DURATION:-2}
WARMUP=${BENCH_WARMUP:-0.5}
ROUNDS=${BENCH_ROUNDS:-3}
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
    printf '  %-22s %s msgs/s\n' "$label/$transport" \
        "$(sed -n 's/.*"msgs_per_s":\([0-9.]*\).*/\1/p' <<<"$json")" >&2
}

echo "secho bench: ${LOAD[*]}, ${DURATION} s after ${WARMUP} s warm-up, ${ROUNDS} rounds," \
    "$(nproc) CPUs" >&2
# Rounds interleave the targets, so that a burst of noise on the shared machine hits one
# round of each rather than all of one target; the table takes the median round.
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
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
done

# The table: medians over the rounds, each row against the C peer over the same transport.
echo
awk '
function num(line, key,    m) {
    if (match(line, "\"" key "\":[^,}]*")) return substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0
    return 0
}
function str(line, key) {
    if (match(line, "\"" key "\":\"[^\"]*\"")) return substr(line, RSTART + length(key) + 4, RLENGTH - length(key) - 5)
    return ""
}
function median(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    k = str($0, "target") SUBSEP str($0, "transport")
    if (!(k in n)) { order[++rows] = k }
    i = ++n[k]
    rate[k, i] = num($0, "msgs_per_s"); mb[k, i] = num($0, "mb_per_s"); p99[k, i] = num($0, "p99_us")
    err[k] += num($0, "errors")
}
END {
    for (r = 1; r <= rows; r++) {
        k = order[r]
        for (i = 1; i <= n[k]; i++) { a[i] = rate[k, i] } ; mrate[k] = median(a, n[k])
        for (i = 1; i <= n[k]; i++) { a[i] = mb[k, i] } ; mmb[k] = median(a, n[k])
        for (i = 1; i <= n[k]; i++) { a[i] = p99[k, i] } ; mp99[k] = median(a, n[k])
    }
    printf "%-17s %-4s %11s %8s %9s %8s %7s %7s\n", "target", "xprt", "msgs/s", "MB/s", "p99 us", "x peer", "p99 x", "errors"
    for (x = 1; x <= 2; x++) {
        tr = x == 1 ? "tcp" : "udp"
        pk = "peer-c-epoll" SUBSEP tr
        for (r = 1; r <= rows; r++) {
            k = order[r]; split(k, parts, SUBSEP)
            if (parts[2] != tr) continue
            printf "%-17s %-4s %11.0f %8.2f %9.1f %8.2f %7.2f %7d\n", parts[1], tr, mrate[k], mmb[k], mp99[k],
                (mrate[pk] > 0 ? mrate[k] / mrate[pk] : 0), (mp99[pk] > 0 ? mp99[k] / mp99[pk] : 0), err[k]
        }
    }
}' "$OUT"
echo
echo "Medians of $ROUNDS rounds. x peer: msgs/s divided by peer-c-epoll's over the same"
echo "transport (higher is better); p99 x: p99 latency divided by the peer's (lower is"
echo "better); errors: summed over the rounds. Results: ${OUT#"$PWD"/}"
