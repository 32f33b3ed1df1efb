#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes bench/RESULTS.md from one bench/run.sh run directory (bench/results/STAMP/).

  report.py DIR           the report, in Markdown, on stdout
  report.py DIR --lists   DIR/compare/SCENARIO.list: per scenario, the saved `secho bench
                          --json` file of each target's median round, one path a line (for
                          `secho bench --compare ... --html`)

Figures: for every measurement run.sh sampled the server's CPU time (user+system of the
process tree, bench/cputime.c) twice inside bench's measured window;
CPU per echo = that CPU time / (echoes per second x window). Each figure is the median
over rounds; ratios are taken between medians of the same run. Standard library only.
"""
import json
import os
import statistics
import sys

OUT = sys.argv[1]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + "/"  # the tree's top
META = [json.loads(l) for l in open(os.path.join(OUT, "meta.jsonl")) if l.strip()]
MACHINE = json.load(open(os.path.join(OUT, "machine.json")))


def jsonl(name):
    path = os.path.join(OUT, name)
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []


FLOOR = jsonl("floor.jsonl")
SPEED = jsonl("openssl.jsonl")

for m in META:
    b = json.load(open(os.path.join(OUT, m["json"])))
    m["b"] = b
    echoes = b["msgs_per_s"] * m["window_s"]
    m["cpu_us"] = m["cpu_s"] * 1e6 / echoes if echoes > 0 else float("nan")
    m["cores"] = m["cpu_s"] / m["window_s"] if m["window_s"] > 0 else float("nan")

GROUPS = {}
for m in META:
    GROUPS.setdefault((m["scenario"], m["target"], m["proto"]), []).append(m)


def med(key, scenario, target, proto="plain"):
    runs = GROUPS.get((scenario, target, proto))
    if not runs:
        return None
    vals = [r[key] if key in r else r["b"][key] for r in runs]
    return statistics.median(vals)


def total(key, scenario, target, proto="plain"):
    return sum(r["b"].get(key, 0) for r in GROUPS.get((scenario, target, proto), []))


def per_round(key, scenario, target, proto="plain", fmt="{:.1f}"):
    runs = sorted(GROUPS.get((scenario, target, proto), []), key=lambda r: r["round"])
    return " / ".join(fmt.format(r[key] if key in r else r["b"][key]) for r in runs)


def median_round(scenario, target, proto):
    """The run whose CPU per echo is the median (the lower middle for an even count)."""
    runs = sorted(GROUPS[(scenario, target, proto)], key=lambda r: r["cpu_us"])
    return runs[(len(runs) - 1) // 2]


def fmed(rows, key, **match):
    vals = [r[key] for r in rows if all(r.get(k) == v for k, v in match.items())]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fx(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def targets_of(scenario, proto="plain"):
    seen = []
    for m in META:
        if m["scenario"] == scenario and m["proto"] == proto and m["target"] not in seen:
            seen.append(m["target"])
    return seen


SCENARIOS = []
for m in META:
    k = (m["scenario"], m["proto"])
    if k not in SCENARIOS:
        SCENARIOS.append(k)

if len(sys.argv) > 2 and sys.argv[2] == "--lists":
    os.makedirs(os.path.join(OUT, "compare"), exist_ok=True)
    by_scenario = {}
    for (scenario, target, proto) in GROUPS:
        by_scenario.setdefault(scenario, []).append(
            os.path.join(OUT, median_round(scenario, target, proto)["json"]))
    for scenario, files in by_scenario.items():
        with open(os.path.join(OUT, "compare", scenario + ".list"), "w") as f:
            f.write("".join(p + "\n" for p in files))
    sys.exit(0)

SECHO_MODELS = ["secho-epoll", "secho-reactors1", "secho-threads", "secho-uring"]
MEMORY = jsonl("memory.jsonl")
LABEL = {
    "secho-epoll": "secho `-m epoll`",
    "secho-reactors1": "secho `-m reactors --threads 1`",
    "secho-reactors": "secho `-m reactors`",
    "secho-threads": "secho `-m threads`",
    "secho-uring": "secho `-m uring`",
    "secho-epoll-1dgram": "secho `-m epoll`, one datagram per call (`SECHO_UDP_SINGLE=1`)",
    "c-epoll": "C epoll loop (bench/echo_peer.c)",
    "libuv": "libuv (peers/uv_echo.c)",
    "node": "Node.js `net`/`dgram` (peers/node_echo.js)",
    "py-selectors": "notebook selectors (peers/py_selectors.py)",
    "py-threaded": "notebook threaded (peers/py_threaded.py)",
    "py-udp": "notebook UDP (peers/py_udp.py)",
    "socat": "socat `fork PIPE`",
}
lines = []
out = lines.append
verdicts = []


def verdict(ok, text):
    if ok is None:
        verdicts.append(f"- **NOT MEASURED** — {text}")
    else:
        verdicts.append(f"- **{'MET' if ok else 'MISSED'}** — {text}")


mc = MACHINE
floor64 = fmed(FLOOR, "rw_cpu_us", size=64)
floor64w = fmed(FLOOR, "rw_us", size=64)
floor16 = fmed(FLOOR, "rw_cpu_us", size=16384)
floor16w = fmed(FLOOR, "rw_us", size=16384)
syscall = fmed(FLOOR, "syscall_us", size=64)
gcm = {s: fmed(SPEED, "bytes_per_s", what="aes-256-gcm", size=s) for s in (64, 16384)}
x25519 = fmed(SPEED, "ops_per_s", what="ecdhx25519")

out("# Benchmark results")
out("")
out(f"Written by `make bench` (bench/run.sh, then bench/report.py) from run `{mc['stamp']}`; "
    "raw data in `bench/results/" + mc["stamp"] + "/` (not committed).")
out("")
out("**The machine is a shared 2-core VM**: other jobs ran beside this one, so absolute figures "
    "move from minute to minute (load average " + mc["load_before"] + " before the run, "
    + mc.get("load_after", "?") + " after). Server CPU time per echo is less exposed to that "
    "than messages/s, and only ratios taken in this run, between medians of interleaved rounds, "
    "are meant to be read. Benchmarks are never test assertions.")
out("")
out("## Machine")
out("")
out("| | |")
out("|---|---|")
for k, label in (("model", "CPU"), ("cpus", "online CPUs"), ("lscpu", "lscpu"), ("kernel", "kernel"),
                 ("os", "OS"), ("secho", "secho"), ("cc", "compiler"), ("openssl", "OpenSSL"),
                 ("libuv", "libuv"), ("node", "Node.js"), ("python", "Python"), ("socat", "socat")):
    out(f"| {label} | {str(mc.get(k, '')).replace('|', '/').rstrip(';')} |")
out("")
out("## How it was run")
out("")
out(f"- Rounds: {mc['rounds']}; each round measures every target once, in the order of the tables "
    f"below, so noise hits one round of each rather than all of one. Each measurement: "
    f"{mc['warmup']} s warm-up, {mc['duration']} s measured. Whole run: {mc.get('elapsed_s', '?')} s.")
out(f"- Server pinned with `taskset -c {mc['server_cpus']}`, load (`secho bench`, one thread) with "
    f"`taskset -c {mc['load_cpus']}`. Each server is started fresh for each measurement and stopped after.")
out("- secho runs as shipped: message logging on, to a file (`-l FILE`)"
    + (f", plus `{mc['server_extra']}`" if mc["server_extra"] else "") + ". The peers log nothing "
    "(the notebook's servers print what the notebook prints, to a file).")
out("- The notebook's Python servers decode every read as UTF-8, so bench loads them with "
    "`--payload text` (printable ASCII lines); every other server gets `--payload random`.")
out("- Server CPU: user+system time of the server process and its live descendants (socat forks), "
    "read with `bench/cputime.c` (the process CPU clock, `clock_getcpuclockid`: the utime+stime of "
    "`/proc/PID/stat` to the nanosecond rather than in 10 ms ticks, exited threads included, plus the "
    "cutime+cstime of reaped children), sampled twice inside bench's measured window (bench is started "
    "with `--start-at T`, so the window is known: T+warm-up to T+warm-up+duration; samples 5 % in from "
    "each end). CPU/echo = CPU seconds ÷ (echoes/s × time between the samples).")
flagged = [m for m in META if m.get("sample_outside") or m.get("late_start")]
out(f"- Measurements where bench started late or a CPU sample fell outside bench's window (a starved "
    f"shell on the busy machine; their CPU/echo is less exact): {len(flagged)} of {len(META)}"
    + (": " + ", ".join(f"{m['scenario']}/{m['target']}/{m['proto']} r{m['round']}" for m in flagged[:20])
       + (" …" if len(flagged) > 20 else "") if flagged else "") + ".")
out("- Figures are medians over rounds; ratios are ratios of medians. `per round` columns show the spread.")
out("")
out("Commands (round 1, paths relative to the tree; `PORT` is the port the server printed, `T` the start time):")
out("")
out("```")
shown = set()
for m in sorted(META, key=lambda m: m["round"]):
    k = (m["scenario"], m["target"], m["proto"])
    if k in shown:
        continue
    shown.add(k)
    out(f"# {m['scenario']} / {m['target']} / {m['proto']}")
    out(m["server_cmd"].replace(ROOT, ""))
    out(m["load_cmd"].replace(f"-p {m['b']['port']}", "-p PORT").replace(ROOT, ""))
shown.clear()
out("```")
out("")
out("Scratch paths (`/tmp/secho-bench-run.*`) hold the built peers, the server's log, key and "
    "certificate; peers are built with `cc -O2 -std=c17` (`-luv` for uv_echo).")
out("")
out("## The floor and the crypto ceilings")
out("")
out("Measured on the server's CPU in every round (`bench/peers/floor.c`, `openssl speed`):")
out("")
out("| figure | median | per round |")
out("|---|---|---|")
rounds = lambda rows, key, **mt: " / ".join(f"{r[key]:.3f}" for r in rows if all(r.get(k) == v for k, v in mt.items()))
out(f"| `floor 64 100000`: one write + one read of 64 B, loopback TCP, one thread — CPU µs | {fx(floor64, 3)} | {rounds(FLOOR, 'rw_cpu_us', size=64)} |")
out(f"| same, wall µs | {fx(floor64w, 3)} | {rounds(FLOOR, 'rw_us', size=64)} |")
out(f"| `floor 16384 20000`: the same with 16 KiB — CPU µs | {fx(floor16, 3)} | {rounds(FLOOR, 'rw_cpu_us', size=16384)} |")
out(f"| same, wall µs | {fx(floor16w, 3)} | {rounds(FLOOR, 'rw_us', size=16384)} |")
out(f"| bare system call (`syscall(SYS_getppid)`), µs | {fx(syscall, 4)} | {rounds(FLOOR, 'syscall_us', size=64)} |")
for s in (64, 16384):
    if gcm[s]:
        out(f"| `openssl speed -evp aes-256-gcm -bytes {s}`: MB/s (µs per {s}-byte message) | "
            f"{gcm[s] / 1e6:.1f} ({s / gcm[s] * 1e6:.2f}) | "
            + " / ".join(f"{r['bytes_per_s'] / 1e6:.1f}" for r in SPEED if r.get('what') == 'aes-256-gcm' and r['size'] == s) + " |")
if x25519:
    out(f"| `openssl speed ecdhx25519`: X25519 ops/s | {x25519:.0f} | "
        + " / ".join(f"{r['ops_per_s']:.0f}" for r in SPEED if r.get('what') == 'ecdhx25519') + " |")
out("")
out("The floor is what no echo server can go below per message: one read and one write. Under "
    "contention the wall figure grows (the thread waits for its CPU) while the CPU figure does "
    "not, so server CPU per echo is read against the floor's CPU time.")
out("")


def table_tcp_udp(scenario, title, open_loop, offered, peers_for_ratio):
    tg = targets_of(scenario)
    if not tg:
        return
    out(f"## {title}")
    out("")
    hdr = "| server | payload | msgs/s |"
    if open_loop:
        hdr += " of offered |"
    hdr += " p99 µs | server CPU/echo µs (per round) |"
    for p in peers_for_ratio:
        hdr += f" CPU × {p} |"
    if "libuv" in peers_for_ratio:
        hdr += " p99 × libuv |"
    hdr += " server cores | late | errors |"
    out(hdr)
    out("|" + "---|" * (hdr.count("|") - 1))
    for t in tg:
        rate = med("msgs_per_s", scenario, t)
        row = f"| {LABEL.get(t, t)} | {median_round(scenario, t, 'plain')['b']['payload']} | {rate:.0f} |"
        if open_loop:
            row += f" {fx(ratio(rate, offered))} |"
        row += f" {med('p99_us', scenario, t):.0f} | {med('cpu_us', scenario, t):.2f} ({per_round('cpu_us', scenario, t)}) |"
        for p in peers_for_ratio:
            row += f" {fx(ratio(med('cpu_us', scenario, t), med('cpu_us', scenario, p)))} |"
        if "libuv" in peers_for_ratio:
            row += f" {fx(ratio(med('p99_us', scenario, t), med('p99_us', scenario, 'libuv')))} |"
        row += f" {med('cores', scenario, t):.2f} | {total('late', scenario, t)} | {total('errors', scenario, t)} |"
        out(row)
    out("")


rate = mc["rate"]
table_tcp_udp("tcp-open-64", f"Plain TCP, {mc['conns']} connections, 64 B, open loop at {rate} msgs/s",
              True, rate, ["node", "libuv"])
out("`of offered`: echoes/s ÷ the offered rate (below 1: the server did not keep up, and its CPU/echo is "
    "then at its own saturation). `server cores`: server CPU seconds per second of the window. "
    "`late`: messages that left over 1 ms after their due time, summed over rounds (the load generator's "
    "or the server's backlog). p99 counts from each message's due time.")
out("")
table_tcp_udp("tcp-closed-64", f"Plain TCP, {mc['conns']} connections, 64 B, closed loop (saturation)",
              False, None, ["node", "libuv"])
if GROUPS.get(("tcp-closed-64", "secho-epoll", "plain")):
    out("Against the floor (CPU/echo ÷ the floor's CPU µs per write+read of 64 B, "
        f"{fx(floor64, 3)} µs):")
    out("")
    out("| server | msgs/s | CPU/echo µs | × floor |")
    out("|---|---|---|---|")
    for t in targets_of("tcp-closed-64"):
        out(f"| {LABEL.get(t, t)} | {med('msgs_per_s', 'tcp-closed-64', t):.0f} | "
            f"{med('cpu_us', 'tcp-closed-64', t):.2f} | {fx(ratio(med('cpu_us', 'tcp-closed-64', t), floor64))} |")
    out("")
    out("Messages/s at saturation is capped by the load generator, one thread on one core doing the "
        "same system calls as the server plus verification; the server's CPU per echo is the figure.")
    out("")
table_tcp_udp("tcp-open-16k", f"Plain TCP, {mc['conns']} connections, 16 KiB, open loop at {mc['rate16k']} msgs/s",
              True, mc["rate16k"], ["node", "libuv"])
if GROUPS.get(("tcp-open-16k", "secho-epoll", "plain")) and floor16:
    out(f"Floor for 16 KiB: {floor16:.2f} CPU µs per write+read.")
    out("")

# Secure and TLS against plain.
crypto = [(s, p) for s, p in (("tcp-closed-64", "plain"), ("crypto-64", "secure"), ("crypto-64", "tls"),
                               ("crypto-16k", "plain"), ("crypto-16k", "secure"), ("crypto-16k", "tls"))]
if GROUPS.get(("crypto-64", "secho-epoll", "secure")) or GROUPS.get(("crypto-16k", "secho-epoll", "secure")):
    out(f"## Encrypted against plain (secho `-m epoll`, {mc['conns']} connections, closed loop)")
    out("")
    out("| size | proto | msgs/s (per round) | × plain | p99 µs | server CPU/echo µs | plain CPU ÷ this CPU | AES-GCM ceiling |")
    out("|---|---|---|---|---|---|---|---|")
    for s, p in crypto:
        if not GROUPS.get((s, "secho-epoll", p)):
            continue
        size = 64 if s.endswith("64") else 16384
        plain_s = "tcp-closed-64" if size == 64 else "crypto-16k"
        r = med("msgs_per_s", s, "secho-epoll", p)
        pr = med("msgs_per_s", plain_s, "secho-epoll", "plain")
        c = med("cpu_us", s, "secho-epoll", p)
        pc = med("cpu_us", plain_s, "secho-epoll", "plain")
        ceil = None
        if gcm.get(size) and pc:
            ceil = pc / (pc + 2 * size / gcm[size] * 1e6)
        out(f"| {size} | {p} | {r:.0f} ({per_round('msgs_per_s', s, 'secho-epoll', p, '{:.0f}')}) | {fx(ratio(r, pr))} | "
            f"{med('p99_us', s, 'secho-epoll', p):.0f} | {c:.2f} | {fx(ratio(pc, c))} | "
            f"{fx(ceil) if p != 'plain' else '–'} |")
    out("")
    out("`AES-GCM ceiling`: the ratio secure/plain could reach if the only extra work per echo were "
        "AES-256-GCM itself at `openssl speed`'s rate: plain CPU/echo ÷ (plain CPU/echo + 2 × the time "
        "to seal one message of that size), one open and one seal per echo on the server. "
        "`-P secure` is Noise_XX_25519_AESGCM_SHA256; `-P tls` is TLS 1.3 (OpenSSL's choice of suite, "
        "AES-256-GCM here), a P-256 certificate made for the run.")
    out("")

if any(k[0] == "handshakes" for k in GROUPS):
    out("## Handshakes (secho `-m epoll`, `secho bench --handshakes -c 16`)")
    out("")
    out("| proto | handshakes/s | p99 µs | server CPU per handshake µs | handshakes per server CPU-second | X25519 ops/s ÷ 4 | × X25519 ÷ 4 |")
    out("|---|---|---|---|---|---|---|")
    for p in ("secure", "tls"):
        if not GROUPS.get(("handshakes", "secho-epoll", p)):
            continue
        hs = med("msgs_per_s", "handshakes", "secho-epoll", p)
        c = med("cpu_us", "handshakes", "secho-epoll", p)
        per_cpu = 1e6 / c if c else None
        lim = x25519 / 4 if x25519 else None
        out(f"| {p} | {hs:.0f} | {med('p99_us', 'handshakes', 'secho-epoll', p):.0f} | {c:.0f} | "
            f"{fx(per_cpu, 0)} | {fx(lim, 0)} | {fx(ratio(per_cpu, lim))} |")
    out("")
    out("A Noise XX responder does one key generation and three DH operations, so one core allows at "
        "most X25519 ops/s ÷ 4 handshakes. The load generator does the initiator's share of the same "
        "work on the other core, so handshakes/s is bounded by it as much as by the server; the "
        "server's own cost, handshakes per CPU-second, is the figure held against the limit. TLS 1.3 "
        "with a P-256 certificate does an ECDSA signature and (by OpenSSL's default) an X25519 "
        "exchange; it is shown beside secure, not against the limit.")
    out("")

udp_peers = [p for p in ("c-epoll", "libuv", "node", "py-udp") if GROUPS.get(("udp-open-64", p, "plain"))]
table_tcp_udp("udp-open-64", f"Plain UDP, {mc['conns']} sockets, 64 B, open loop at {rate} msgs/s",
              True, rate, ["node", "libuv"])
table_tcp_udp("udp-closed-64", f"Plain UDP, {mc['conns']} sockets, 64 B, closed loop", False, None, ["node", "libuv"])
table_tcp_udp("udp-batch-64", f"Plain UDP, {mc['conns']} sockets, 64 B, closed loop, 8 datagrams in flight per "
              "socket (`--pipeline 8`: the batches fill)", False, None, [])
if GROUPS.get(("udp-closed-64", "socat", "plain")):
    out("socat over UDP (`UDP4-RECVFROM:PORT,fork PIPE`) forks a process for each datagram; it is measured "
        "closed loop only. UDP errors are datagrams whose echo did not come back within bench's 1 s timeout.")
    out("")

# Targets.
def cpu(s, t, p="plain"):
    return med("cpu_us", s, t, p)


def load_note(scenario, offered, *targets):
    """A warning when an open-loop run did not reach its offered rate for these targets."""
    got = {t: ratio(med("msgs_per_s", scenario, t), offered) for t in targets}
    short = {t: g for t, g in got.items() if g is not None and g < 0.9}
    if not short:
        return ""
    return ("; **offered rate not reached** (" + ", ".join(f"{t} {g:.2f}" for t, g in got.items() if g is not None)
            + " of offered; `late` shows whether the load generator or the server fell behind): "
            "not an equal-load comparison")


for m in SECHO_MODELS:
    if not GROUPS.get(("tcp-open-64", m, "plain")):
        continue
    c, n, u = cpu("tcp-open-64", m), cpu("tcp-open-64", "node"), cpu("tcp-open-64", "libuv")
    rn, ru = ratio(c, n), ratio(c, u)
    verdict(None if rn is None else rn <= 0.55,
            f"plain TCP 64 B, c={mc['conns']}, {rate} msgs/s open loop: {LABEL[m]} CPU/echo {fx(c)} µs = "
            f"{fx(rn)}× Node.js ({fx(n)} µs); target ≤ 0.55×" + load_note("tcp-open-64", rate, m, "node"))
    verdict(None if ru is None else ru <= 0.75,
            f"same: {LABEL[m]} CPU/echo {fx(ru)}× libuv ({fx(u)} µs); target ≤ 0.75×" + load_note("tcp-open-64", rate, m, "libuv"))
    p, pu = med("p99_us", "tcp-open-64", m), med("p99_us", "tcp-open-64", "libuv")
    rp = ratio(p, pu)
    verdict(None if rp is None else rp <= 0.5,
            f"same: {LABEL[m]} p99 {fx(p, 0)} µs = {fx(rp)}× libuv's ({fx(pu, 0)} µs); target ≤ 0.5×" + load_note("tcp-open-64", rate, m, "libuv"))
for m in SECHO_MODELS:
    if not GROUPS.get(("tcp-closed-64", m, "plain")):
        continue
    c = cpu("tcp-closed-64", m)
    rf = ratio(c, floor64)
    verdict(None if rf is None else rf <= 1.15,
            f"plain TCP 64 B at saturation (closed loop, {med('msgs_per_s', 'tcp-closed-64', m):.0f} msgs/s): "
            f"{LABEL[m]} CPU/echo {fx(c)} µs = {fx(rf)}× the read+write floor ({fx(floor64, 3)} CPU µs); target ≤ 1.15×")
for m in SECHO_MODELS:
    if not GROUPS.get(("tcp-open-16k", m, "plain")):
        continue
    c, n = cpu("tcp-open-16k", m), cpu("tcp-open-16k", "node")
    rn = ratio(c, n)
    verdict(None if rn is None else rn <= 0.6,
            f"plain TCP 16 KiB at {mc['rate16k']} msgs/s: {LABEL[m]} CPU/echo {fx(c)} µs = {fx(rn)}× Node.js "
            f"({fx(n)} µs); target ≤ 0.6×" + load_note("tcp-open-16k", mc["rate16k"], m, "node"))
for size, s, plain_s, goal in ((64, "crypto-64", "tcp-closed-64", 0.85), (16384, "crypto-16k", "crypto-16k", 0.7)):
    r, pr = med("msgs_per_s", s, "secho-epoll", "secure"), med("msgs_per_s", plain_s, "secho-epoll", "plain")
    if r is None or pr is None:
        continue
    rr = ratio(r, pr)
    c, pc = cpu(s, "secho-epoll", "secure"), cpu(plain_s, "secho-epoll")
    ceil = pc / (pc + 2 * size / gcm[size] * 1e6) if gcm.get(size) else None
    verdict(rr >= goal,
            f"secure (AESGCM) vs plain at {size} B, closed loop: {fx(rr)}× plain's msgs/s "
            f"(CPU/echo {fx(c)} vs {fx(pc)} µs: {fx(ratio(pc, c))}×; AES-GCM ceiling {fx(ceil)}×); target ≥ {goal}×")
    t = med("msgs_per_s", s, "secho-epoll", "tls")
    if t is not None:
        verdicts.append(f"- (no target) `-P tls` beside it at {size} B: {fx(ratio(t, pr))}× plain's msgs/s, "
                        f"{fx(ratio(t, r))}× secure's")
if GROUPS.get(("handshakes", "secho-epoll", "secure")):
    c = cpu("handshakes", "secho-epoll", "secure")
    per_cpu = 1e6 / c
    lim = x25519 / 4 if x25519 else None
    verdict(None if lim is None else per_cpu >= 0.5 * lim,
            f"handshakes: secure {med('msgs_per_s', 'handshakes', 'secho-epoll', 'secure'):.0f}/s, "
            f"{per_cpu:.0f} per server CPU-second = {fx(ratio(per_cpu, lim))}× X25519 ops/s ÷ 4 "
            f"({fx(lim, 0)} per core); target ≥ 0.5×")
for m in ("secho-epoll", "secho-reactors1"):
    if not GROUPS.get(("udp-closed-64", m, "plain")):
        continue
    peers = [p for p in targets_of("udp-closed-64") if not p.startswith("secho")]
    r = med("msgs_per_s", "udp-closed-64", m)
    best = max(peers, key=lambda p: med("msgs_per_s", "udp-closed-64", p)) if peers else None
    if best:
        rb = med("msgs_per_s", "udp-closed-64", best)
        verdict(r > rb, f"UDP 64 B closed loop: {LABEL[m]} {r:.0f} msgs/s vs the best peer, {LABEL[best]}, "
                        f"{rb:.0f} ({fx(ratio(r, rb))}×); target: ahead of every peer")
    if GROUPS.get(("udp-open-64", m, "plain")):
        c = cpu("udp-open-64", m)
        opeers = [p for p in targets_of("udp-open-64") if not p.startswith("secho")]
        cheapest = min(opeers, key=lambda p: cpu("udp-open-64", p)) if opeers else None
        if cheapest:
            cb = cpu("udp-open-64", cheapest)
            verdict(c < cb, f"UDP 64 B at {rate} msgs/s: {LABEL[m]} CPU/echo {fx(c)} µs vs the cheapest peer, "
                            f"{LABEL[cheapest]}, {fx(cb)} µs ({fx(ratio(c, cb))}×); target: ahead of every peer"
                    + load_note("udp-open-64", rate, m, cheapest))
if GROUPS.get(("udp-closed-64", "secho-epoll-1dgram", "plain")):
    b, o = med("msgs_per_s", "udp-closed-64", "secho-epoll"), med("msgs_per_s", "udp-closed-64", "secho-epoll-1dgram")
    rb = ratio(b, o)
    note = ""
    if GROUPS.get(("udp-open-64", "secho-epoll-1dgram", "plain")):
        note = (f"; at {rate} msgs/s offered CPU/datagram {fx(cpu('udp-open-64', 'secho-epoll'))} µs batched vs "
                f"{fx(cpu('udp-open-64', 'secho-epoll-1dgram'))} µs one per call "
                f"({fx(ratio(cpu('udp-open-64', 'secho-epoll-1dgram'), cpu('udp-open-64', 'secho-epoll')))}× cheaper)")
    if GROUPS.get(("udp-batch-64", "secho-epoll-1dgram", "plain")) and GROUPS.get(("udp-batch-64", "secho-epoll", "plain")):
        cb, co = cpu("udp-batch-64", "secho-epoll"), cpu("udp-batch-64", "secho-epoll-1dgram")
        note += (f"; with 8 datagrams in flight per socket (`--pipeline 8`) {fx(med('msgs_per_s', 'udp-batch-64', 'secho-epoll'), 0)} "
                 f"vs {fx(med('msgs_per_s', 'udp-batch-64', 'secho-epoll-1dgram'), 0)} msgs/s and CPU/datagram "
                 f"{fx(cb)} vs {fx(co)} µs ({fx(ratio(co, cb))}× cheaper): batching saves the system calls, "
                 f"not the kernel's work per datagram")
    verdict(None if rb is None else rb >= 1.5,
            f"UDP batching (recvmmsg/sendmmsg) vs one datagram per call (recvfrom/sendto), `-m epoll`, 64 B closed "
            f"loop: {fx(b, 0)} vs {fx(o, 0)} msgs/s = {fx(rb)}×{note}; target ≥ 1.5×")
else:
    verdicts.append("- **NOT MEASURED here** — UDP batching (recvmmsg/sendmmsg) ≥ 1.5× the one-datagram-per-call "
                    "path: the udp scenarios did not run.")
uring_rows = []
for sc in ("tcp-open-64", "tcp-closed-64", "tcp-open-16k", "udp-open-64", "udp-closed-64"):
    cu, ce = cpu(sc, "secho-uring"), cpu(sc, "secho-epoll")
    if cu is not None and ce is not None:
        uring_rows.append(f"{sc} {fx(ratio(cu, ce))}×")
if uring_rows:
    verdicts.append("- (no target) `-m uring` server CPU/echo ÷ `-m epoll`'s: " + ", ".join(uring_rows)
                    + " (below 1: io_uring is cheaper)")
for m in ("epoll", "reactors"):
    for p, goal in (("plain", 1024), ("secure", 2048)):
        rows = [r for r in MEMORY if r["model"] == m and r["proto"] == p]
        if not rows:
            continue
        r = rows[0]
        verdict(r["rss_per_conn_bytes"] <= goal,
                f"memory: `-m {m}` {p}, {r['conns']} idle connections"
                + (" after one echo each" if p == "plain" else " after the handshake and one echo each")
                + f": {r['rss_per_conn_bytes']} B of server RSS per connection (kernel socket memory aside); "
                f"target ≤ {goal} B")
if not MEMORY:
    verdicts.append("- **NOT MEASURED here** — memory per idle connection: the memory scenario did not run "
                    "(`bench/idle_rss.py`, see bench/README.md).")

tsec = ["## Issue 9's targets", "",
        "Each is a ratio of medians from this run (tables below). Where a target names \"secho\", every "
        "secho model measured is judged; the default model is `reactors` (one loop per online CPU).", ""]
tsec += verdicts + [""]
if MEMORY:
    out(f"## Memory per idle connection (`bench/idle_rss.py`, server on CPU {mc['server_cpus']})")
    out("")
    out("| model | proto | connections | RSS before KiB | RSS idle KiB | RSS per connection B | anon per connection B | "
        "RSS after all closed KiB | opened in s |")
    out("|---|---|---|---|---|---|---|---|---|")
    for r in MEMORY:
        out(f"| {r['model']} | {r['proto']} | {r['conns']} | {r['base_rss_kib']} | {r['idle_rss_kib']} | "
            f"{r['rss_per_conn_bytes']} | {r['anon_per_conn_bytes']} | {r['churn_rss_kib']} | {r['open_seconds']} |")
    out("")
    out("Each connection echoed one 64-byte message (secure: after the Noise XX handshake, driven by the "
        "independent Python peer tests/e2e/noise_peer.py) and then stayed idle; RSS is the server's VmRSS once "
        "it stopped moving. Kernel socket memory is not in a process's RSS. Command: `bench/idle_rss.py --secho "
        f"build/secho -m MODEL -P PROTO -n {MEMORY[0]['conns']} --taskset {mc['server_cpus']} --json`.")
    out("")
pages = sorted(f for f in os.listdir(os.path.join(OUT, "compare"))) if os.path.isdir(os.path.join(OUT, "compare")) else []
html = [p for p in pages if p.endswith(".html")]
out("## HTML comparison")
out("")
if html:
    out("Rendered by `secho bench --compare A.json B.json ... --html FILE` from each target's median round: "
        + ", ".join(f"`bench/results/{mc['stamp']}/compare/{h}`" for h in html) + ".")
else:
    out("Not rendered: this build's `secho bench` has no `--compare`. The lists of saved JSON files are in "
        f"`bench/results/{mc['stamp']}/compare/*.list`; bench/run.sh renders them once `--compare` exists:")
    out("")
    out("```")
    out("secho bench --compare $(cat bench/results/STAMP/compare/tcp-open-64.list) --html tcp-open-64.html")
    out("```")
out("")
open_short = []
for sc, offered in (("tcp-open-64", mc["rate"]), ("tcp-open-16k", mc["rate16k"]), ("udp-open-64", mc["rate"])):
    got = [ratio(med("msgs_per_s", sc, t), offered) for t in targets_of(sc)]
    got = [g for g in got if g is not None]
    if got and statistics.median(got) < 0.9:
        open_short.append(f"{sc} {statistics.median(got):.2f}")
if open_short:
    tsec[0:0] = ["**In this run the open-loop rates were not reached** (median share of the offered rate "
                 "echoed: " + ", ".join(open_short) + "). Where messages left late (`late`), the load "
                 "generator, one thread on a core the machine's other jobs also used, fell behind its "
                 "schedule: those open-loop rows compare servers at whatever load each got, not at equal load, "
                 "and their p99 is the generator's backlog. Closed-loop CPU per echo is the sounder figure "
                 "here.", ""]
intro_end = lines.index("## Machine")
lines[intro_end:intro_end] = tsec
print("\n".join(lines))
