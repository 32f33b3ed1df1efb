# SPDX-License-Identifier: MIT
# Shared by bench/run.sh and bench/concurrency.sh (sourced, not run): builds the peers,
# starts a server by name, measures it with `secho bench` while sampling the server's CPU
# time (bench/cputime.c), and appends one JSON line per measurement to $OUT/meta.jsonl.
#
# The caller sets: SECHO (absolute path), HERE (bench/), OUT (results directory), TMP
# (scratch directory), DURATION, WARMUP, SERVER_CPUS, LOAD_CPUS (taskset lists), and the
# array SERVER_EXTRA (added to every `secho server`); PEER_WORK, if set, is passed to the
# notebook's TCP servers (bench/peers/py_*.py: py:N or sha:KIB of work per read).

PID=
PORT=
PYTHON=${BENCH_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

lib_cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    PID=
    rm -rf "$TMP"
}

# Builds the C peers into $TMP; sets HAVE_UV, HAVE_NODE, HAVE_SOCAT (1 or 0).
build_peers() {
    local cc=${CC:-cc} flags=(-O2 -std=c17 -D_GNU_SOURCE -Wall -Wextra)
    "$cc" "${flags[@]}" -o "$TMP/echo_peer" "$HERE/echo_peer.c"
    "$cc" "${flags[@]}" -o "$TMP/floor" "$HERE/peers/floor.c"
    "$cc" "${flags[@]}" -o "$TMP/cputime" "$HERE/cputime.c"
    HAVE_UV=0
    if "$cc" "${flags[@]}" -o "$TMP/uv_echo" "$HERE/peers/uv_echo.c" -luv 2>"$TMP/uv.err"; then
        HAVE_UV=1
    else
        echo "bench: libuv peer not built (apt-get install libuv1-dev):" >&2
        head -3 "$TMP/uv.err" >&2
    fi
    HAVE_NODE=0
    command -v node >/dev/null && HAVE_NODE=1
    HAVE_SOCAT=0
    command -v socat >/dev/null && HAVE_SOCAT=1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
}

# Is the peer NAME available here?
have() {
    case $1 in
    libuv) [ "$HAVE_UV" = 1 ] ;;
    node) [ "$HAVE_NODE" = 1 ] ;;
    socat) [ "$HAVE_SOCAT" = 1 ] ;;
    secho-uring) "$SECHO" --version 2>/dev/null | grep -q '^io_uring: liburing' ;;
    *) return 0 ;;
    esac
}

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Sets the array CMD to the command line of server NAME for PROTO over TRANSPORT.
server_cmd() { # name proto transport
    local name=$1 proto=$2 tr=$3 pin=(taskset -c "$SERVER_CPUS")
    local secho=("${pin[@]}" "$SECHO" server -P "$proto" -t "$tr" -H 127.0.0.1 -p 0
        -l "$TMP/server.log")
    case $proto in
    secure) secho+=(-k "$TMP/server.key") ;;
    tls) secho+=(--cert "$TMP/tls.crt" -k "$TMP/tls.key") ;;
    esac
    case $name in
    secho-epoll) CMD=("${secho[@]}" -m epoll "${SERVER_EXTRA[@]}") ;;
    secho-reactors1) CMD=("${secho[@]}" -m reactors --threads 1 "${SERVER_EXTRA[@]}") ;;
    secho-reactors) CMD=("${secho[@]}" -m reactors "${SERVER_EXTRA[@]}") ;;
    secho-threads) CMD=("${secho[@]}" -m threads "${SERVER_EXTRA[@]}") ;;
    secho-uring) CMD=("${secho[@]}" -m uring "${SERVER_EXTRA[@]}") ;;
    # The one-datagram-per-call UDP path (recvfrom/sendto), against which batching is judged.
    secho-epoll-1dgram) CMD=(env SECHO_UDP_SINGLE=1 "${secho[@]}" -m epoll "${SERVER_EXTRA[@]}") ;;
    c-epoll) CMD=("${pin[@]}" "$TMP/echo_peer" "$tr") ;;
    libuv) CMD=("${pin[@]}" "$TMP/uv_echo" "$tr" 0) ;;
    node) CMD=("${pin[@]}" node "$HERE/peers/node_echo.js" "$tr" 0) ;;
    py-threaded) CMD=("${pin[@]}" env -u PYTHONUNBUFFERED "$PYTHON" "$HERE/peers/py_threaded.py" 0 ${PEER_WORK:+"$PEER_WORK"}) ;;
    py-selectors) CMD=("${pin[@]}" env -u PYTHONUNBUFFERED "$PYTHON" "$HERE/peers/py_selectors.py" 0 ${PEER_WORK:+"$PEER_WORK"}) ;;
    py-udp) CMD=("${pin[@]}" env -u PYTHONUNBUFFERED "$PYTHON" "$HERE/peers/py_udp.py" 0) ;;
    socat)
        PORT=$(free_port)
        if [ "$tr" = tcp ]; then
            CMD=("${pin[@]}" socat "TCP4-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork,backlog=1024" PIPE)
        else
            CMD=("${pin[@]}" socat "UDP4-RECVFROM:$PORT,bind=127.0.0.1,fork" PIPE)
        fi
        ;;
    *)
        echo "bench: unknown server $name" >&2
        exit 2
        ;;
    esac
}

# Waits until socat (which prints no readiness line) echoes on $PORT.
wait_socat() { # transport
    "$PYTHON" - "$1" "$PORT" <<'EOF'
import socket, sys, time
tr, port = sys.argv[1], int(sys.argv[2])
for _ in range(100):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tr == "tcp" else socket.SOCK_DGRAM)
        s.settimeout(0.2)
        s.connect(("127.0.0.1", port))
        s.send(b"probe\n")
        if s.recv(64) == b"probe\n":
            sys.exit(0)
    except OSError:
        time.sleep(0.05)
    finally:
        s.close()
sys.exit(1)
EOF
}

# Starts server NAME, waits until it is ready; sets PID, PORT and SERVER_LINE.
start_server() { # name proto transport
    server_cmd "$@"
    SERVER_LINE="${CMD[*]}"
    rm -f "$TMP/server.log"
    "${CMD[@]}" >"$TMP/ready" 2>"$TMP/server.err" &
    PID=$!
    if [ "$1" = socat ]; then
        wait_socat "$3" && return 0
    else
        for _ in $(seq 200); do
            if grep -q '^listening on ' "$TMP/ready" 2>/dev/null; then
                PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$TMP/ready" | head -1)
                return 0
            fi
            kill -0 "$PID" 2>/dev/null || break
            sleep 0.05
        done
    fi
    echo "bench: $1 did not start:" >&2
    head -20 "$TMP/server.err" >&2
    exit 1
}

stop_server() {
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
    rm -f "$TMP/server.log" "$TMP/ready"
}

# CPU time in nanoseconds of PID and its live descendants: each live thread's time on a
# CPU (the first field of /proc/PID/task/TID/schedstat, exact), plus the user+system time of
# children already reaped (cutime+cstime from /proc/PID/stat, in clock ticks). utime+stime
# alone would do for one process, but they are rounded to ticks per process, and a server
# that forks (socat: one process per connection, or per datagram) would lose a tick's
# rounding per child per sample.
# Sets TREE_CPU_NS, TREE_THREADS and TREE_RSS_KB for PID and its live descendants
# (bench/cputime.c: process CPU clocks, exact, exited threads and reaped children included).
sample_tree() { # pid
    read -r TREE_CPU_NS TREE_THREADS TREE_RSS_KB < <("$TMP/cputime" "$1")
}

sleep_until() { # unix time
    local d
    d=$(awk -v t="$1" -v n="$EPOCHREALTIME" 'BEGIN { d = t - n; printf "%.3f", (d > 0 ? d : 0) }')
    sleep "$d"
}

json_str() { # text -> a JSON string
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

# Runs secho bench against the running server, samples its CPU time over the measured
# window, saves bench's JSON to $OUT/json/ and appends a record to $OUT/meta.jsonl.
# Extra bench options follow the fixed arguments.
measure() { # round scenario target proto transport [bench options...]
    local round=$1 scenario=$2 target=$3 proto=$4 tr=$5
    shift 5
    local file="json/$scenario.$target.$proto.r$round.json"
    local delay=${START_DELAY:-0.4} t0 c0 c1 w0 w1 late=0 bpid
    t0=$(awk -v n="$EPOCHREALTIME" -v d="$delay" 'BEGIN { printf "%.3f", n + d }')
    local load=(taskset -c "$LOAD_CPUS" "$SECHO" bench -P "$proto" -t "$tr" -p "$PORT"
        -d "$DURATION" --warmup "$WARMUP" "$@")
    "${load[@]}" --start-at "$t0" --json="$OUT/$file" >/dev/null 2>"$TMP/bench.err" &
    bpid=$!
    # Samples inside bench's window (T+warm-up .. T+warm-up+duration), 5 % in from each end.
    local from to
    from=$(awk -v t="$t0" -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%.3f", t + w + d * 0.05 }')
    to=$(awk -v t="$t0" -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%.3f", t + w + d * 0.95 }')
    sleep_until "$from"
    w0=$EPOCHREALTIME
    sample_tree "$PID"
    c0=$TREE_CPU_NS
    sleep_until "$to"
    w1=$EPOCHREALTIME
    sample_tree "$PID"
    c1=$TREE_CPU_NS
    local w2=$EPOCHREALTIME
    # A sample that ran past the window's end (a starved shell) is flagged in the record.
    local outside
    outside=$(awk -v a="$w0" -v b="$w2" -v t="$t0" -v w="$WARMUP" -v d="$DURATION" \
        'BEGIN { print (a < t + w || b > t + w + d) ? 1 : 0 }')
    if ! wait "$bpid"; then
        echo "bench: secho bench against $target ($scenario) failed:" >&2
        cat "$TMP/bench.err" >&2
        exit 1
    fi
    grep -q 'after --start-at' "$TMP/bench.err" && late=1
    printf '{"round":%s,"scenario":"%s","target":"%s","proto":"%s","transport":"%s","cpu_s":%s,"window_s":%s,"rss_kb":%s,"threads":%s,"late_start":%s,"sample_outside":%s,"server_cmd":%s,"load_cmd":%s,"json":"%s"}\n' \
        "$round" "$scenario" "$target" "$proto" "$tr" \
        "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')" \
        "$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.4f", b - a }')" \
        "$TREE_RSS_KB" "$TREE_THREADS" "$late" "$outside" \
        "$(json_str "$SERVER_LINE")" "$(json_str "${load[*]} --start-at T --json=FILE")" \
        "$file" >>"$OUT/meta.jsonl"
    awk -v f="$OUT/$file" -v who="$scenario $target $proto" -v a="$c0" -v b="$c1" '
        BEGIN { getline l < f; match(l, /"msgs_per_s":[0-9.]+/); r = substr(l, RSTART + 13, RLENGTH - 13)
                match(l, /"p99_us":[0-9.]+/); p = substr(l, RSTART + 9, RLENGTH - 9)
                printf "  %-32s %9.0f msgs/s  p99 %8.1f us  server %.3f CPU-s\n", who, r, p, (b - a) / 1e9 }' >&2
}
