# SPDX-License-Identifier: MIT
"""The command line's edges: usage errors exit 2 with the subcommand's prefix and the --help
hint (getopt's own messages too), options of another protocol are refused by name, the
client's --timeout takes fractions, keygen -y / -R / -o, and secho --version."""

import base64
import os
import socket
import stat
import subprocess
import tempfile
import unittest

SECHO = os.environ.get("SECHO_BIN", "../../build/secho")
GOOD_KEY = base64.b64encode(bytes(range(32))).decode()


def read(path):
    with open(path) as f:
        return f.read()


def run(*args, stdin=None, env=None, timeout=20):
    return subprocess.run([SECHO, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=timeout)


class RefusedPort:
    """A port bound but not listening: connecting to it is refused at once, and no other
    process can take it while the test runs."""

    def __enter__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        return str(self.sock.getsockname()[1])

    def __exit__(self, *exc):
        self.sock.close()


class Server:
    """secho server on a free port; stopped by its PID."""

    def __init__(self, *args):
        self.args = args

    def __enter__(self):
        self.proc = subprocess.Popen([SECHO, "server", "-p", "0", "-l", os.devnull, *self.args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = line.rsplit(":", 1)[1].strip()
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


class UsageErrorTest(unittest.TestCase):
    def assertUsage(self, cmd, args, *words):
        r = run(cmd, *args)
        self.assertEqual(r.returncode, 2, f"secho {cmd} {' '.join(args)}: {r.stderr}")
        lines = r.stderr.splitlines()
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertTrue(lines[0].startswith(f"secho {cmd}: "), r.stderr)
        self.assertEqual(lines[1], f"Try 'secho {cmd} --help' for more information.")
        for w in words:
            self.assertIn(w, lines[0])
        self.assertEqual(r.stdout, "")
        return lines[0]

    def test_getopt_messages_carry_the_prefix(self):
        for cmd in ("server", "client", "bench", "keygen"):
            with self.subTest(cmd=cmd):
                self.assertUsage(cmd, ["--bogus"], "unrecognized option '--bogus'")
                self.assertUsage(cmd, ["-Z"], "invalid option -- 'Z'")
                self.assertUsage(cmd, ["--help=1"], "'--help' doesn't allow an argument")
        self.assertUsage("server", ["-p"], "option requires an argument -- 'p'")
        self.assertUsage("client", ["--port"], "option '--port' requires an argument")
        self.assertUsage("keygen", ["-o"], "option requires an argument -- 'o'")
        self.assertUsage("server", ["--max", "5"], "'--max' is ambiguous", "--max-conns",
                         "--max-msg")

    def test_bad_noise_name(self):
        for cmd in ("client", "bench"):
            with self.subTest(cmd=cmd):
                self.assertUsage(cmd, ["-p", "1", "--noise-name", "Noise_NN_25519_AESGCM_SHA256"],
                                 "--noise-name", "Noise_XX_25519_ChaChaPoly_BLAKE2b")

    def test_bad_server_key(self):
        # Wrong padding, short, prose, the URL alphabet, non-zero trailing bits, empty.
        bad = [GOOD_KEY[:-2] + "==", GOOD_KEY[:-1], "not a key", "-" + GOOD_KEY[1:],
               GOOD_KEY[:-2] + "9=", ""]
        self.assertTrue(GOOD_KEY.endswith("8="))
        for cmd in ("client", "bench"):
            for key in bad:
                with self.subTest(cmd=cmd, key=key):
                    self.assertUsage(cmd, ["-p", "1", "--server-key", key], "--server-key",
                                     "public key")

    def test_timeout_values(self):
        for arg in ("0", "abc", "1e9", "nan", "0.5s", "-1"):
            with self.subTest(arg=arg):
                self.assertUsage("client", ["-P", "plain", "--timeout", arg], "--timeout")

    def test_option_of_another_protocol(self):
        cases = [
            ("server", ["-P", "plain", "--admins", "F"], "--admins", "-P secure", "-P plain"),
            ("server", ["-P", "plain", "--dh-params", "F"], "--dh-params", "-P lab-dh"),
            ("server", ["-P", "lab-fernet", "--dh-params", "F"], "--dh-params", "-P lab-fernet"),
            ("server", ["-P", "secure", "--allow-shutdown", "any"], "--allow-shutdown",
             "plain, lab-dh, lab-fernet or tls", "not to -P secure"),
            ("server", ["--allow-shutdown", "none"], "--allow-shutdown"),  # default is secure
            ("server", ["-P", "plain", "-k", "F"], "--key", "-P secure"),
            ("server", ["-P", "lab-dh", "--key", "F"], "--key", "not to -P lab-dh"),
            ("client", ["-P", "plain", "-k", "F"], "--key", "-P secure"),
            ("client", ["-P", "plain", "--known-hosts", "F"], "--known-hosts"),
            ("client", ["-P", "lab-dh", "--server-key", GOOD_KEY], "--server-key"),
            ("client", ["-P", "plain", "--accept-new"], "--accept-new"),
            ("client", ["-P", "lab-fernet", "--noise-name", "Noise_XX_25519_AESGCM_SHA256"],
             "--noise-name", "-P secure"),
            ("bench", ["-P", "plain", "--server-key", GOOD_KEY], "--server-key", "-P secure"),
            ("bench", ["-P", "plain", "--noise-name", "Noise_XX_25519_AESGCM_SHA256"],
             "--noise-name"),
            ("server", ["-P", "plain", "-k", "F"], "--key", "-P secure or tls"),
            ("server", ["-P", "secure", "--cert", "F"], "--cert", "-P tls", "not to -P secure"),
            ("client", ["-P", "plain", "--ca", "F"], "--ca", "-P tls"),
            ("client", ["-P", "tls", "-k", "F"], "--key", "-P secure only", "not to -P tls"),
            ("client", ["-P", "tls", "--noise-name", "Noise_XX_25519_AESGCM_SHA256"],
             "--noise-name", "not to -P tls"),
        ]
        for cmd, args, *words in cases:
            with self.subTest(cmd=cmd, args=args):
                line = self.assertUsage(cmd, args, *words)
                self.assertIn("applies to", line)
        # The order of -P and the option does not matter.
        self.assertUsage("server", ["--admins", "F", "-P", "plain"], "--admins")


class AcceptedOptionsTest(unittest.TestCase):
    """The same options where they apply are not usage errors."""

    def test_client_timeout_fraction(self):
        with Server("-P", "plain") as s:
            r = run("client", "-P", "plain", "-p", s.port, "--timeout", "0.5", stdin="hi\nexit\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, "hi\nexit\n")

    def test_allow_shutdown_for_plain(self):
        with Server("-P", "plain", "--allow-shutdown", "none") as s:
            r = run("client", "-P", "plain", "-p", s.port, stdin="shutdown\nexit\n")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("shutdown not permitted", r.stdout)
            self.assertIsNone(s.proc.poll())

    def test_secure_options_reach_the_connection(self):
        # Valid values pass the usage checks and fail only at connecting (exit 1).
        with tempfile.TemporaryDirectory() as d, RefusedPort() as port:
            env = dict(os.environ, XDG_CONFIG_HOME=d)
            for cmd, extra in (("client", ["--accept-new"]), ("bench", ["-d", "0.2"])):
                with self.subTest(cmd=cmd):
                    r = run(cmd, "-P", "secure", "-p", port, "--server-key", GOOD_KEY,
                            "--noise-name", "Noise_XX_25519_ChaChaPoly_BLAKE2b", *extra,
                            stdin="", env=env)
                    self.assertEqual(r.returncode, 1, r.stderr)
                    self.assertIn("cannot connect", r.stderr)

    def test_dh_params_for_lab_dh(self):
        with tempfile.TemporaryDirectory() as d:
            missing = os.path.join(d, "none.pem")
            r = run("server", "-P", "lab-dh", "-p", "0", "--dh-params", missing)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("none.pem", r.stderr)


class KeygenTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(self.dir, "cfg"))

    def tearDown(self):
        self.tmp.cleanup()

    def keygen(self, *args):
        return run("keygen", *args, env=self.env)

    def test_public_key_of_a_key_file(self):
        path = os.path.join(self.dir, "k.key")
        made = self.keygen("-o", path)
        self.assertEqual(made.returncode, 0, made.stderr)
        for args in (["-y", "-k", path], ["--public", "--key", path]):
            with self.subTest(args=args):
                r = self.keygen(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, made.stdout)
        # The default file, as for the client.
        made = self.keygen()
        self.assertEqual(made.returncode, 0, made.stderr)
        r = self.keygen("-y")
        self.assertEqual((r.returncode, r.stdout), (0, made.stdout), r.stderr)

    def test_public_key_errors(self):
        r = self.keygen("-y", "-k", os.path.join(self.dir, "absent.key"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("absent.key", r.stderr)
        self.assertEqual(r.stdout, "")
        loose = os.path.join(self.dir, "loose.key")
        self.assertEqual(self.keygen("-o", loose).returncode, 0)
        os.chmod(loose, 0o644)
        r = self.keygen("-y", "-k", loose)
        self.assertEqual(r.returncode, 1)
        self.assertIn("chmod 600", r.stderr)
        r = self.keygen("-k", loose)  # -k without -y
        self.assertEqual(r.returncode, 2)
        r = self.keygen("-y", "-o", loose)
        self.assertEqual(r.returncode, 2)

    def test_output_directory_must_exist(self):
        path = os.path.join(self.dir, "missing", "k.key")
        r = self.keygen("-o", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("does not exist", r.stderr)
        self.assertFalse(os.path.exists(os.path.dirname(path)))
        # The default directory is created (0700), with the key 0600.
        r = self.keygen()
        self.assertEqual(r.returncode, 0, r.stderr)
        key = os.path.join(self.dir, "cfg", "secho", "id.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(key)).st_mode), 0o700)

    def write_known_hosts(self, text, mode=0o600):
        path = os.path.join(self.dir, "known_hosts")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_remove_known_host(self):
        k1 = GOOD_KEY
        k2 = base64.b64encode(bytes(range(100, 132))).decode()
        text = (f"# my servers\n127.0.0.1:9090 {k1}\nexample.org:9090 {k2}\n"
                f"127.0.0.1:9090 {k2}\n127.0.0.1:90900 {k1}\n[::1]:9090 {k1}\n")
        path = self.write_known_hosts(text)
        r = self.keygen("-R", "127.0.0.1:9090", "--known-hosts", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 lines", r.stdout)
        self.assertEqual(read(path), (f"# my servers\nexample.org:9090 {k2}\n"
                                      f"127.0.0.1:90900 {k1}\n[::1]:9090 {k1}\n"))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        # IPv6 as given with -H (no brackets) or as known_hosts spells it.
        r = self.keygen("-R", "::1:9090", "--known-hosts", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 line ", r.stdout)
        self.assertNotIn("[::1]", read(path))
        self.assertEqual(sorted(os.listdir(self.dir)), ["known_hosts"])

    def test_remove_not_found_is_said_and_exit_0(self):
        text = f"# nothing here\nother:1 {GOOD_KEY}\n"
        path = self.write_known_hosts(text)
        before = os.stat(path)
        r = self.keygen("-R", "127.0.0.1:9090", "--known-hosts", path)
        self.assertEqual(r.returncode, 0, r.stderr)  # as ssh-keygen -R
        self.assertIn("127.0.0.1:9090 not found in", r.stderr)
        self.assertEqual(os.stat(path).st_ino, before.st_ino)
        self.assertEqual(read(path), text)

    def test_remove_errors(self):
        r = self.keygen("-R", "h:1", "--known-hosts", os.path.join(self.dir, "absent"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read", r.stderr)
        for bad in ("hostonly", "h:", ":1", "h:port", "h:70000"):
            with self.subTest(arg=bad):
                r = self.keygen("-R", bad)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertTrue(r.stderr.startswith("secho keygen: "), r.stderr)
        self.assertEqual(self.keygen("--known-hosts", "F").returncode, 2)

    def test_remove_default_file(self):
        cfg = os.path.join(self.dir, "cfg", "secho")
        os.makedirs(cfg)
        path = os.path.join(cfg, "known_hosts")
        with open(path, "w") as f:
            f.write(f"h:1 {GOOD_KEY}\n")
        os.chmod(path, 0o600)
        r = self.keygen("-R", "h:1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read(path), "")


class VersionTest(unittest.TestCase):
    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r"^secho \d+\.\d+\.\d+$")
        self.assertTrue(any(l.startswith("OpenSSL 3.") for l in lines), r.stdout)
        self.assertTrue(any(l.startswith("build type ") and len(l) > len("build type ")
                            for l in lines), r.stdout)


class UringModelTest(unittest.TestCase):
    """-m uring exists exactly when --version says liburing was built in; otherwise it is a
    usage error that says so."""

    def test_built_in_or_refused_clearly(self):
        r = run("--version")
        lines = [l for l in r.stdout.splitlines() if l.startswith("io_uring: ")]
        self.assertEqual(len(lines), 1, r.stdout)
        if lines[0] == "io_uring: not built in":
            r = run("server", "-P", "plain", "-m", "uring", "-p", "0")
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertIn("model 'uring' is not built in", r.stderr)
        else:
            self.assertRegex(lines[0], r"^io_uring: liburing \d+\.\d+")

    def test_unknown_model_lists_uring(self):
        r = run("server", "-P", "plain", "-m", "kqueue", "-p", "0")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("unknown model 'kqueue' (use threads, epoll, reactors or uring)", r.stderr)


if __name__ == "__main__":
    unittest.main()
