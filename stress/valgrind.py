#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""valgrind memcheck over `secho client` and `secho keygen` (issue #10, `make stress`).

Runs, each under `valgrind --leak-check=full`, with zero errors and no definite leak as the
verdict (valgrind's exit status 99 on either):
  - client-plain:  `secho client -P plain` sends three lines to a plain server, gets three
                   echoes;
  - client-secure: `secho client -P secure --accept-new` does the Noise handshake with a
                   secure server (a fresh identity key is created) and echoes three lines;
  - client-plain-udp, client-secure-udp: the same over UDP;
  - keygen:        `secho keygen -o FILE` creates a key, `secho keygen -y -k FILE` reads it
                   back, `secho keygen -R HOST:PORT` edits a known_hosts file.
The servers run natively (tests/e2e/harness.py); only the client side is under valgrind.
Prints `PASS|FAIL valgrind-NAME -: FIGURE (BOUND)` per run, exits 1 on any FAIL. Takes about
half a minute; ctest runs it as stress.valgrind.

Usage: stress/valgrind.py [--secho build/secho] [--valgrind valgrind]
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

VG_FLAGS = ["--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite", "--track-origins=yes", "--num-callers=30"]

FAILS = []


def run_vg(vg, name, argv, env, stdin=b"", expect_out=None, timeout=120):
    log = os.path.join(env["XDG_CONFIG_HOME"], "vg-%s.log" % name)
    cmd = [vg] + VG_FLAGS + ["--log-file=" + log] + argv
    t0 = time.monotonic()
    try:
        cp = subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=timeout)
        rc, out, err = cp.returncode, cp.stdout, cp.stderr
    except subprocess.TimeoutExpired:
        rc, out, err = None, b"", b"timed out"
    took = time.monotonic() - t0
    text = open(log, errors="replace").read() if os.path.exists(log) else ""
    m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
    errors = int(m.group(1)) if m else -1
    m = re.search(r"definitely lost: ([\d,]+) bytes", text)
    definite = int(m.group(1).replace(",", "")) if m else 0
    out_ok = expect_out is None or out == expect_out
    ok = rc == 0 and errors == 0 and definite == 0 and out_ok
    line = "%s valgrind-%s -: exit %s, %s errors, %d B definitely lost, output %s in %.1f s " \
           "(exit 0, 0 errors, 0 B definitely lost)" % (
               "PASS" if ok else "FAIL", name, rc, errors, definite,
               "right" if out_ok else "WRONG", took)
    print(line, flush=True)
    if not ok:
        FAILS.append(name)
        sys.stdout.write(text[-6000:] + "\n" + err.decode(errors="replace")[-2000:] + "\n")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secho", default=os.path.join(ROOT, "build", "secho"))
    ap.add_argument("--valgrind", default="valgrind")
    a = ap.parse_args()
    binary = os.path.abspath(a.secho)
    os.environ["SECHO_BIN"] = binary
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import harness

    lines = b"first line\nsecond, longer line of the test\nthird\n"
    home = harness.TempHome()
    env = home.env()
    servers = []
    try:
        plain = harness.secho_server(proto="plain", home=home)
        servers.append(plain)
        run_vg(a.valgrind, "client-plain",
               [binary, "client", "-P", "plain", "-H", "127.0.0.1", "-p", str(plain.port)],
               env, lines, lines)
        secure = harness.secho_server("-k", home.file("server.key"), proto="secure",
                                      home=home)
        servers.append(secure)
        run_vg(a.valgrind, "client-secure",
               [binary, "client", "-P", "secure", "-H", "127.0.0.1", "-p", str(secure.port),
                "--accept-new", "-k", home.file("id.key"),
                "--known-hosts", home.file("known_hosts")],
               env, lines, lines)
        for proto in ("plain", "secure"):
            udp = harness.secho_server("-k", home.file("udp.key"), proto=proto,
                                       transport="udp", home=home) if proto == "secure" \
                else harness.secho_server(proto=proto, transport="udp", home=home)
            servers.append(udp)
            extra = ["--accept-new", "-k", home.file("id.key"),
                     "--known-hosts", home.file("known_hosts")] if proto == "secure" else []
            run_vg(a.valgrind, "client-%s-udp" % proto,
                   [binary, "client", "-P", proto, "-t", "udp", "-H", "127.0.0.1",
                    "-p", str(udp.port)] + extra, env, lines, lines)
        key = home.file("kg.key")
        run_vg(a.valgrind, "keygen", [binary, "keygen", "-o", key], env)
        run_vg(a.valgrind, "keygen-public", [binary, "keygen", "-y", "-k", key], env)
        run_vg(a.valgrind, "keygen-remove",
               [binary, "keygen", "-R", "127.0.0.1:%d" % secure.port,
                "--known-hosts", home.file("known_hosts")], env)
    finally:
        for s in servers:
            try:
                s.stop()
            finally:
                s.close()
        home.cleanup()
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
