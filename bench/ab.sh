#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Before/after comparison of two secho builds (a refactoring must not slow the data path):
# both servers in turn on CPU 0, loaded by the same `secho bench` on CPU 1, rounds
# interleaved so that noise on a shared machine hits both alike. Reports messages/s and the
# server's CPU time per echo (its process CPU clock: utime+stime, exact, divided by echoes), medians
# over the rounds, and the ratio B/A.
#
# Usage: bench/ab.sh OLD_SECHO NEW_SECHO
# Environment: AB_ROUNDS (default 5), AB_DURATION (s, default 3), AB_MODELS (default
#   "epoll reactors threads"), AB_PROTOS (default "plain secure"),
#   AB_ARGS (load options, default "-c 50 -s 64"), AB_TRANSPORT (tcp or udp, default tcp),
#   AB_LOG_MESSAGES=1 (log each message's text, as shipped; default --no-log-messages).
set -euo pipefail

A=$(readlink -f "$1")
B=$(readlink -f "$2")
ROUNDS=${AB_ROUNDS:-5}
DURATION=${AB_DURATION:-3}
read -r -a MODELS <<<"${AB_MODELS:-epoll reactors threads}"
read -r -a PROTOS <<<"${AB_PROTOS:-plain secure}"
read -r -a LOAD <<<"${AB_ARGS:--c 50 -s 64}"
XPRT=${AB_TRANSPORT:-tcp}
NOTEXT=(--no-log-messages)
[ "${AB_LOG_MESSAGES:-0}" = 1 ] && NOTEXT=()
TMP=$(mktemp -d "${TMPDIR:-/tmp}/secho-ab.XXXXXX")
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
# Server CPU from the process CPU clock (bench/cputime.c: nanoseconds, every thread), not
# /proc/PID/stat's clock ticks, which sample who runs at each tick and blur a 1-2% change.
HERE=$(dirname "$(readlink -f "$0")")
"${CC:-cc}" -O2 -o "$TMP/cputime" "$HERE/cputime.c"

start() { # binary model proto
    local key=()
    [ "$3" = secure ] && key=(-k "$TMP/server.key")
    taskset -c 0 "$1" server -P "$3" -t "$XPRT" -m "$2" --threads 1 -p 0 "${key[@]}" \
        -l "$TMP/server.log" "${NOTEXT[@]}" >"$TMP/ready" 2>"$TMP/err" &
    PID=$!
    for _ in $(seq 200); do
        PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$TMP/ready" 2>/dev/null | head -1)
        [ -n "$PORT" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "bench/ab.sh: $1 did not start:" >&2
    cat "$TMP/err" >&2
    exit 1
}

cpu_ns() { "$TMP/cputime" "$1" | cut -d' ' -f1; }

measure() { # label
    local before after json msgs rate
    before=$(cpu_ns "$PID")
    json=$(taskset -c 1 "$B" bench -P "$PROTO" -t "$XPRT" -p "$PORT" -d "$DURATION" --warmup 0.5 \
        "${LOAD[@]}" --json)
    after=$(cpu_ns "$PID")
    # The run's totals are the first "msgs" and "msgs_per_s" (the per-second intervals
    # that follow repeat both names).
    msgs=$(grep -o '"msgs":[0-9]*' <<<"$json" | head -1 | cut -d: -f2)
    rate=$(grep -o '"msgs_per_s":[0-9.]*' <<<"$json" | head -1 | cut -d: -f2)
    # Warm-up echoes cost CPU too but are not counted in msgs: the figure is an upper bound
    # that is the same for both builds.
    awk -v l="$1" -v r="$rate" -v t=$((after - before)) -v m="$msgs" \
        'BEGIN { printf "%s %s %.3f\n", l, r, (m > 0 ? t / 1e3 / m : 0) }' >>"$TMP/rows"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
}

echo "bench/ab.sh: A=$A B=$B; ${LOAD[*]}, ${DURATION} s, $ROUNDS rounds; server on CPU 0, load on CPU 1" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    for PROTO in "${PROTOS[@]}"; do
        for model in "${MODELS[@]}"; do
            for side in A B; do
                bin=$A
                [ $side = B ] && bin=$B
                start "$bin" "$model" "$PROTO"
                measure "$PROTO/$model/$side"
            done
        done
    done
done

awk '
function median(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ split($1, p, "/"); k = p[1] "/" p[2]; s = p[3]; if (!(k in seen)) { seen[k] = 1; order[++rows] = k }
  i = ++n[k, s]; rate[k, s, i] = $2; cpu[k, s, i] = $3 }
END {
    printf "%-18s %10s %10s %7s %10s %10s %7s\n", "proto/model", "A msgs/s", "B msgs/s", "B/A", "A us/echo", "B us/echo", "B/A"
    for (r = 1; r <= rows; r++) {
        k = order[r]
        for (x = 1; x <= 2; x++) {
            s = x == 1 ? "A" : "B"
            for (i = 1; i <= n[k, s]; i++) { a[i] = rate[k, s, i] }; mr[s] = median(a, n[k, s])
            for (i = 1; i <= n[k, s]; i++) { a[i] = cpu[k, s, i] }; mc[s] = median(a, n[k, s])
        }
        printf "%-18s %10.0f %10.0f %7.3f %10.2f %10.2f %7.3f\n", k, mr["A"], mr["B"],
            (mr["A"] > 0 ? mr["B"] / mr["A"] : 0), mc["A"], mc["B"], (mc["A"] > 0 ? mc["B"] / mc["A"] : 0)
    }
}' "$TMP/rows"
echo "Medians of $ROUNDS rounds; msgs/s higher is better, us/echo (server CPU per echo) lower is better."
