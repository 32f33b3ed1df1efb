# SPDX-License-Identifier: MIT
# Log bytes under a UDP flood of bad-cookie secure initiations (issue #8's "log flood").
# Usage: python3 bench/log_flood.py path/to/secho epoll|reactors|threads
import sys, os, signal, subprocess, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import test_log_flood as tl
binary, model = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp()
log = os.path.join(tmp, "s.log")
p = subprocess.Popen([binary, "server", "-P", "secure", "-t", "udp", "-m", model, "-p", "0", "-l", log, "-k", os.path.join(tmp, "k")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, XDG_CONFIG_HOME=tmp))
port = int(p.stdout.readline().split(b":")[-1])
t = time.monotonic()
sent, ans = tl.flood(port, 200000, 30)
el = time.monotonic() - t
p.send_signal(signal.SIGTERM); p.wait()
lines = open(log, "rb").read().count(b"event=auth_fail")
print("%s %s: sent %d answered %d in %.1f s; log %d bytes, %d auth_fail lines" % (binary.split('/')[-2], model, sent, ans, el, os.path.getsize(log), lines))
