#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmark suite (`make bench`): secho's server beside peers written for the purpose
# (bench/peers/: libuv, Node.js, the notebook's Python servers, socat, a bare C epoll loop),
# all loaded the same way by `secho bench`, with the server pinned to one CPU and the load
# to the other. For every measurement the server's CPU time (user+system of the process
# and its children: bench/cputime.c) is sampled twice inside bench's measured window, so
# each server is judged by CPU time per echo, not only by msgs/s.
# Rounds interleave every target; the report takes the median round. bench/report.py
# then writes bench/RESULTS.md (machine, commands, figures, ratios, issue 9's targets).
#
# Usage: bench/run.sh [path/to/secho]
# Environment (defaults in brackets; the default run takes about 9 minutes):
#   BENCH_DURATION [2]   measured seconds per measurement
#   BENCH_WARMUP [0.5]   warm-up seconds before each
#   BENCH_ROUNDS [3]     rounds (every target once per round)
#   BENCH_RATE [40000]   open-loop rate, 64-byte messages (TCP and UDP)
#   BENCH_RATE_16K [5000] open-loop rate, 16 KiB messages
#   BENCH_CONNS [50]     connections (UDP: sockets)
#   BENCH_SCENARIOS      space-separated subset of: tcp-open-64 tcp-closed-64 tcp-open-16k
#                        crypto handshakes udp-open-64 udp-closed-64 udp-batch-64 memory
#                        (default all;
#                        memory runs in the first round only: bench/idle_rss.py, plain and
#                        secure on -m epoll and -m reactors, BENCH_IDLE_CONNS connections)
#   BENCH_IDLE_CONNS [15000]   idle connections held by the memory scenario
#   BENCH_SERVER_ARGS    extra `secho server` options (default none: message logging on,
#                        to a file, as shipped)
#   BENCH_SERVER_CPUS [0], BENCH_LOAD_CPUS [1]   taskset CPU lists
#   BENCH_RESULTS [bench/RESULTS.md]   where the report goes ("-" = stdout only)
#   BENCH_COMPARE_WITH [the secho measured]   the secho whose `bench --compare --html`
#                        renders the comparison pages
# Raw data: bench/results/STAMP/ (meta.jsonl, json/*.json from `secho bench --json`,
# floor.jsonl, openssl.jsonl, memory.jsonl, machine.json), not committed.
set -euo pipefail

SECHO=${1:-build/secho}
DURATION=${BENCH_DURATION:-2}
WARMUP=${BENCH_WARMUP:-0.5}
ROUNDS=${BENCH_ROUNDS:-3}
RATE=${BENCH_RATE:-40000}
RATE16K=${BENCH_RATE_16K:-5000}
CONNS=${BENCH_CONNS:-50}
SCENARIOS=${BENCH_SCENARIOS:-tcp-open-64 tcp-closed-64 tcp-open-16k crypto handshakes udp-open-64 udp-closed-64 udp-batch-64 memory}
IDLE_CONNS=${BENCH_IDLE_CONNS:-15000}
SERVER_CPUS=${BENCH_SERVER_CPUS:-0}
LOAD_CPUS=${BENCH_LOAD_CPUS:-1}
read -r -a SERVER_EXTRA <<<"${BENCH_SERVER_ARGS:-}"
HERE=$(cd "$(dirname "$0")" && pwd)
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$HERE/results/$STAMP
REPORT=${BENCH_RESULTS:-$HERE/RESULTS.md}

[ -x "$SECHO" ] || { echo "bench/run.sh: $SECHO is not an executable (run make first)" >&2; exit 2; }
SECHO=$(cd "$(dirname "$SECHO")" && pwd)/$(basename "$SECHO")
mkdir -p "$OUT/json"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/secho-bench-run.XXXXXX")
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
trap lib_cleanup EXIT
trap 'exit 130' INT TERM
build_peers
BEGIN=$EPOCHREALTIME

# The machine, once; the report prints it.
{
    printf '{"model":%s,' "$(json_str "$(lscpu | sed -n 's/^Model name: *//p' | head -1)")"
    printf '"cpus":%s,' "$(nproc)"
    printf '"lscpu":%s,' "$(json_str "$(lscpu | grep -E '^(CPU\(s\)|Thread|Core|Socket|Model name|CPU MHz|Hypervisor|L[123])' | tr '\n' ';')")"
    printf '"kernel":%s,' "$(json_str "$(uname -srm)")"
    printf '"os":%s,' "$(json_str "$(. /etc/os-release && echo "$PRETTY_NAME")")"
    printf '"secho":%s,' "$(json_str "$("$SECHO" --version 2>&1 | head -1)")"
    printf '"cc":%s,' "$(json_str "$(${CC:-cc} --version | head -1)")"
    printf '"openssl":%s,' "$(json_str "$(openssl version)")"
    printf '"libuv":%s,' "$(json_str "$(pkg-config --modversion libuv 2>/dev/null || echo none)")"
    printf '"node":%s,' "$(json_str "$(node --version 2>/dev/null || echo none)")"
    printf '"python":%s,' "$(json_str "$PYTHON $("$PYTHON" --version 2>&1)")"
    printf '"socat":%s,' "$(json_str "$(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/\1/p')")"
    printf '"load_before":%s,' "$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")"
    printf '"stamp":"%s","duration":%s,"warmup":%s,"rounds":%s,"rate":%s,"rate16k":%s,"conns":%s,' \
        "$STAMP" "$DURATION" "$WARMUP" "$ROUNDS" "$RATE" "$RATE16K" "$CONNS"
    printf '"server_cpus":"%s","load_cpus":"%s","server_extra":%s}\n' \
        "$SERVER_CPUS" "$LOAD_CPUS" "$(json_str "${SERVER_EXTRA[*]}")"
} >"$OUT/machine.json"

# The floor and the crypto ceilings, on the server's CPU, once per round.
floors() { # round
    taskset -c "$SERVER_CPUS" "$TMP/floor" 64 100000 | sed "s/^{/{\"round\":$1,/" >>"$OUT/floor.jsonl"
    taskset -c "$SERVER_CPUS" "$TMP/floor" 16384 20000 | sed "s/^{/{\"round\":$1,/" >>"$OUT/floor.jsonl"
    local size line
    for size in 64 16384; do
        line=$(taskset -c "$SERVER_CPUS" openssl speed -mr -seconds 1 -bytes "$size" -evp aes-256-gcm 2>/dev/null | grep '^+F:' | head -1)
        # +F:N:AES-256-GCM:BYTES_PER_S
        printf '{"round":%s,"what":"aes-256-gcm","size":%s,"bytes_per_s":%s}\n' "$1" "$size" \
            "$(cut -d: -f4 <<<"$line")" >>"$OUT/openssl.jsonl"
    done
    line=$(taskset -c "$SERVER_CPUS" openssl speed -mr -seconds 1 ecdhx25519 2>/dev/null | grep '^+F5:' | head -1)
    # +F5:N:253:OPS_PER_S:S_PER_OP
    printf '{"round":%s,"what":"ecdhx25519","ops_per_s":%s}\n' "$1" "$(cut -d: -f4 <<<"$line")" >>"$OUT/openssl.jsonl"
    echo "  floor and openssl speed: $(tail -2 "$OUT/floor.jsonl" | tr '\n' ' ')" >&2
}

payload_for() { case $1 in py-*) echo text ;; *) echo random ;; esac }

one() { # round scenario target proto transport [bench options...]
    local r=$1 s=$2 t=$3 p=$4 tr=$5
    shift 5
    have "$t" || return 0
    start_server "$t" "$p" "$tr"
    measure "$r" "$s" "$t" "$p" "$tr" --payload "$(payload_for "$t")" "$@"
    stop_server
}

TCP_PEERS=(secho-epoll secho-reactors1 secho-threads secho-uring c-epoll libuv node py-selectors py-threaded socat)
UDP_PEERS=(secho-epoll secho-epoll-1dgram secho-reactors1 secho-uring c-epoll libuv node py-udp)

scenario() { # round name
    local r=$1 t
    case $2 in
    tcp-open-64)
        for t in "${TCP_PEERS[@]}"; do one "$r" "$2" "$t" plain tcp -c "$CONNS" -s 64 --rate "$RATE"; done ;;
    tcp-closed-64)
        for t in "${TCP_PEERS[@]}"; do one "$r" "$2" "$t" plain tcp -c "$CONNS" -s 64; done ;;
    tcp-open-16k)
        for t in secho-epoll secho-reactors1 secho-uring c-epoll libuv node; do
            one "$r" "$2" "$t" plain tcp -c "$CONNS" -s 16384 --rate "$RATE16K"
        done ;;
    crypto) # plain at 64 B is tcp-closed-64's secho-epoll row, in the same round
        one "$r" crypto-64 secho-epoll secure tcp -c "$CONNS" -s 64
        one "$r" crypto-64 secho-epoll tls tcp -c "$CONNS" -s 64
        one "$r" crypto-16k secho-epoll plain tcp -c "$CONNS" -s 16384
        one "$r" crypto-16k secho-epoll secure tcp -c "$CONNS" -s 16384
        one "$r" crypto-16k secho-epoll tls tcp -c "$CONNS" -s 16384 ;;
    handshakes)
        one "$r" handshakes secho-epoll secure tcp --handshakes -c 16
        one "$r" handshakes secho-epoll tls tcp --handshakes -c 16 ;;
    udp-open-64)
        for t in "${UDP_PEERS[@]}"; do one "$r" "$2" "$t" plain udp -c "$CONNS" -s 64 --rate "$RATE"; done ;;
    memory) # once: RSS per idle connection needs no rounds to be read, and takes a while
        [ "$r" = 1 ] || return 0
        local m p
        for m in epoll reactors; do
            for p in plain secure; do
                echo "  memory: $m $p, $IDLE_CONNS idle connections" >&2
                taskset -c "$LOAD_CPUS" "$PYTHON" "$HERE/idle_rss.py" --secho "$SECHO" -m "$m" -P "$p" \
                    -n "$IDLE_CONNS" --taskset "$SERVER_CPUS" --json >>"$OUT/memory.jsonl" ||
                    echo "  memory: $m $p failed" >&2
            done
        done ;;
    udp-batch-64) # 8 datagrams in flight per socket, so that recvmmsg batches fill
        for t in secho-epoll secho-epoll-1dgram c-epoll; do
            one "$r" "$2" "$t" plain udp -c "$CONNS" -s 64 --pipeline 8
        done ;;
    udp-closed-64) # socat forks a process per datagram: closed loop only
        for t in "${UDP_PEERS[@]}" socat; do one "$r" "$2" "$t" plain udp -c "$CONNS" -s 64; done ;;
    *)
        echo "bench/run.sh: unknown scenario $2" >&2
        exit 2 ;;
    esac
}

echo "bench: ${SCENARIOS}; ${DURATION} s after ${WARMUP} s warm-up, ${ROUNDS} rounds;" \
    "server on CPU ${SERVER_CPUS}, load on CPU ${LOAD_CPUS}; raw data in ${OUT#"$PWD"/}" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    floors "$round"
    for s in $SCENARIOS; do scenario "$round" "$s"; done
done
ELAPSED=$(awk -v a="$BEGIN" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
sed -i "s/}\$/,\"elapsed_s\":$ELAPSED,\"load_after\":$(json_str "$(cut -d' ' -f1-3 /proc/loadavg)")}/" "$OUT/machine.json"

"$PYTHON" "$HERE/report.py" "$OUT" --lists

# HTML comparison pages: report.py lists, per scenario, the saved JSON of each target's
# median round in $OUT/compare/SCENARIO.list. HOOK: rendered with `secho bench --compare
# --html FILE A.json B.json ...` when this secho has it (or BENCH_COMPARE_WITH, another
# secho binary, does); otherwise the lists stay for later.
COMPARE=${BENCH_COMPARE_WITH:-$SECHO}
# (The help is read whole first: `grep -q` in a pipe may exit before secho has written it
# all, and the SIGPIPE then fails the pipe under pipefail.)
COMPARE_HELP=$("$COMPARE" bench --help 2>&1 || true)
if grep -q -- '--compare' <<<"$COMPARE_HELP"; then
    for list in "$OUT"/compare/*.list; do
        [ -e "$list" ] || continue
        mapfile -t files <"$list"
        html=${list%.list}.html
        if "$COMPARE" bench --compare --html "$html" "${files[@]}" >/dev/null 2>"$TMP/compare.err"; then
            echo "bench: ${html#"$PWD"/}" >&2
        else
            echo "bench: secho bench --compare failed for $list:" >&2
            cat "$TMP/compare.err" >&2
        fi
    done
else
    echo "bench: this secho bench has no --compare; HTML pages not rendered (lists in ${OUT#"$PWD"/}/compare/)" >&2
fi

"$PYTHON" "$HERE/report.py" "$OUT" >"$OUT/RESULTS.md"
if [ "$REPORT" = - ]; then
    cat "$OUT/RESULTS.md"
else
    cp "$OUT/RESULTS.md" "$REPORT"
    echo "bench: wrote ${REPORT#"$PWD"/} (${ELAPSED} s)" >&2
fi
