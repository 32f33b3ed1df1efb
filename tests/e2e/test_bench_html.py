# SPDX-License-Identifier: MIT
"""End-to-end tests for `secho bench --html` and `--compare`: real runs against a real server,
their pages rendered in headless Chromium (Debian's `chromium`), the picture checked not to be
blank and the numbers on it checked against the JSON."""
import collections
import html.parser
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import unittest
import zlib

from harness import BIN, SechoTest, T

LIMIT = 60  # seconds any one bench run may take
CHROMIUM = shutil.which("chromium")
NO_CHROMIUM = "Debian's chromium is not installed (apt-get install chromium); pages not rendered"
# The run page's figures, as data-key names on the page and members in the JSON.
TOP_KEYS = ["msgs_per_s", "mb_per_s", "msgs", "p50_us", "p90_us", "p99_us", "p999_us",
            "p9999_us", "max_us", "mean_us", "errors"]
FAIR_KEYS = ["min", "median", "max", "jain", "slowest_p99_us"]
COMPARED = ["msgs_per_s", "mb_per_s", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
            "errors"]
BLUE, RED = (0x1f, 0x77, 0xb4), (0xd6, 0x27, 0x28)  # the first two runs' colours


def bench(*args):
    return subprocess.run([BIN, "bench", *args], capture_output=True, text=True, timeout=LIMIT)


def raw_json(path):
    """The saved result with every number kept as the text it was printed as."""
    with open(path) as f:
        return json.loads(f.read(), parse_float=str, parse_int=str)


class Figures(html.parser.HTMLParser):
    """The text of every element with a data-key (and data-run), and every reference a page
    could fetch: src/href/xlink:href attributes, <script>, <link>, <img>, <iframe>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.values = {}  # (run or None, key) -> text
        self.refs = []
        self.tags = []
        self._open = []  # (tag, (run, key) or None)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "data", "poster"):
                self.refs.append("%s=%s" % (name, value))
        if tag in ("script", "link", "img", "iframe", "object", "embed"):
            self.refs.append("<%s>" % tag)
        key = (a.get("data-run"), a["data-key"]) if "data-key" in a else None
        if tag not in ("meta",):
            self._open.append((tag, key, []))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag != "meta":
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        while self._open:
            t, key, text = self._open.pop()
            if key:
                self.values[key] = "".join(text).strip()
            if self._open and key is None:
                self._open[-1][2].extend(text)
            if t == tag:
                break

    def handle_data(self, data):
        if self._open:
            self._open[-1][2].append(data)


def page_figures(text):
    p = Figures()
    p.feed(text)
    p.close()
    return p


def unfilter(f, line, prev, bpp):
    """Undoes one scanline's PNG filter (RFC 2083 section 6) in place."""
    n = len(line)
    if f == 1:
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xff
    elif f == 2:
        line[:] = bytes((x + y) & 0xff for x, y in zip(line, prev))
    elif f == 3:
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((a + prev[i]) >> 1)) & 0xff
    elif f == 4:
        for i in range(n):
            if i >= bpp:
                a, c = line[i - bpp], prev[i - bpp]
            else:
                a = c = 0
            b = prev[i]
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
    elif f != 0:
        raise ValueError("PNG filter %d" % f)


def read_png(path):
    """(width, height, Counter of (r, g, b) pixels) of an 8-bit RGB or RGBA PNG, decoded
    with zlib alone."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    width, height, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError("PNG kind %r not handled" % (ihdr,))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    pixels = collections.Counter()
    prev = bytearray(stride)
    for y in range(height):
        at = y * (stride + 1)
        line = bytearray(raw[at + 1:at + 1 + stride])
        unfilter(raw[at], line, prev, bpp)
        pixels.update(zip(line[0::bpp], line[1::bpp], line[2::bpp]))
        prev = line
    return width, height, pixels


def picture_stats(path):
    """(width, height, distinct colours, fraction not white, {colour: pixels near it})."""
    w, h, pixels = read_png(path)
    nonwhite = w * h - pixels.get((255, 255, 255), 0)
    near = {c: sum(k for px, k in pixels.items() if all(abs(px[i] - c[i]) <= 12 for i in range(3)))
            for c in (BLUE, RED)}
    return w, h, len(pixels), nonwhite / float(w * h), near


class Chromium:
    """Headless Chromium, one bounded call at a time, in its own session and profile; a call
    that overruns is killed by the process group it leads (its zygote and renderers), never
    by name."""

    def __init__(self, test):
        self.test = test
        self.profile = tempfile.mkdtemp(prefix="secho-chromium-")
        test.addCleanup(shutil.rmtree, self.profile, True)

    def run(self, *args):
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--user-data-dir=" + self.profile, *args]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=T(90))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            self.test.fail("chromium did not finish within %.0f s: %r" % (T(90), cmd))
        self.test.assertEqual(proc.returncode, 0, err.decode("utf-8", "replace")[-2000:])
        return out.decode("utf-8", "replace")

    def screenshot(self, page, png):
        self.run("--screenshot=" + png, "--window-size=1200,1600", "file://" + page)
        self.test.assertTrue(os.path.exists(png), "chromium wrote no screenshot")
        return picture_stats(png)

    def dom(self, page):
        return self.run("--dump-dom", "file://" + page)


class BenchHtmlTest(SechoTest):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="secho-html-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        srv = cls.start_class_server("-P", "plain", "-m", "epoll", log=False)
        cls.a_json, cls.a_html = cls.path("a.json"), cls.path("a.html")
        cls.b_json, cls.cmp_html = cls.path("b.json"), cls.path("compare.html")
        # A: closed loop, labelled with characters the page must escape; B: open loop.
        cls.a = bench("-P", "plain", "-p", str(srv.port), "-c", "4", "-d", "2", "--warmup",
                      "0.3", "--label", "epoll <A> & co", "--json=" + cls.a_json,
                      "--html", cls.a_html)
        cls.b = bench("-P", "plain", "-p", str(srv.port), "-c", "8", "-d", "1.5", "--warmup",
                      "0.3", "--rate", "3000", "--json=" + cls.b_json)
        cls.cmp = bench("--compare", cls.a_json, cls.b_json, "--html", cls.cmp_html)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.dir, name)

    def read(self, path):
        with open(path, encoding="utf-8") as f:
            return f.read()

    def check_self_contained(self, text, what):
        for bad in ("http:", "https:", "//", "<script", "<link", "url(", "@import",
                    "javascript:"):
            self.assertNotIn(bad, text, "%s refers to something outside itself" % what)
        for ref in page_figures(text).refs:
            self.assertTrue(ref.split("=", 1)[-1].startswith("data:"),
                            "%s fetches %s" % (what, ref))

    def check_run_figures(self, values, result, run=None):
        for key in TOP_KEYS:
            self.assertEqual(values.get((run, key)), result[key], key)
        for key in FAIR_KEYS:
            self.assertEqual(values.get((run, "fairness." + key)), result["fairness"][key], key)

    # -- the runs and their files

    def test_run_wrote_json_and_page(self):
        self.assertEqual(self.a.returncode, 0, self.a.stderr)
        self.assertEqual(self.b.returncode, 0, self.b.stderr)
        self.assertIn("msgs/s", self.a.stdout)  # the summary still goes to stdout
        a = json.loads(self.read(self.a_json))
        self.assertEqual(a["label"], "epoll <A> & co")
        self.assertGreater(a["msgs"], 0)
        # The per-second figures cover the window and add up to the run's messages.
        self.assertEqual(len(a["intervals"]), 2)
        self.assertEqual(sum(iv["msgs"] for iv in a["intervals"]), a["msgs"])
        b = json.loads(self.read(self.b_json))
        self.assertNotIn("label", b)
        self.assertEqual([iv["t"] for iv in b["intervals"]], [1.0, 1.5])

    def test_run_page_source(self):
        text = self.read(self.a_html)
        self.assertTrue(text.startswith("<!DOCTYPE html>"))
        self.check_self_contained(text, self.a_html)
        self.assertIn("<title>epoll &lt;A&gt; &amp; co</title>", text)
        self.assertEqual(text.count("<svg "), 3)
        self.check_run_figures(page_figures(text).values, raw_json(self.a_json))

    def test_compare_table(self):
        self.assertEqual(self.cmp.returncode, 0, self.cmp.stderr)
        a, b = raw_json(self.a_json), raw_json(self.b_json)
        lines = self.cmp.stdout.splitlines()
        self.assertIn("epoll <A> & co", lines[0])  # the label, else the file name
        self.assertIn("b.json", lines[0])
        row = next(l for l in lines if l.startswith("messages/s "))
        ratio = float(b["msgs_per_s"]) / float(a["msgs_per_s"])
        shown = ("%.2g" if 0 < ratio < 0.1 else "%.2f") % ratio  # two digits that count
        self.assertEqual(row.split(), ["messages/s", a["msgs_per_s"], b["msgs_per_s"],
                                       "(%sx)" % shown])
        self.assertTrue(any(l.startswith("late messages ") for l in lines))

    def test_compare_page_source(self):
        text = self.read(self.cmp_html)
        self.check_self_contained(text, self.cmp_html)
        values = page_figures(text).values
        for run, path in enumerate((self.a_json, self.b_json)):
            res = raw_json(path)
            for key in COMPARED:
                self.assertEqual(values.get((str(run), key)), res[key], (run, key))

    def test_compare_errors(self):
        bad = self.path("bad.json")
        with open(bad, "w") as f:
            f.write('{"schema":"secho-bench/1","msgs":')
        r = bench("--compare", self.a_json, bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("bad.json: not a secho bench result", r.stderr)
        self.assertEqual(r.stdout, "")
        r = bench("--compare", self.a_json, self.path("missing.json"), "--html", self.path("x.html"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot read", r.stderr)
        self.assertFalse(os.path.exists(self.path("x.html")))
        for args in (["--compare"], ["--compare", "--rate", "5", self.a_json],
                     ["--compare", "--json", self.a_json], ["--compare", "--merge", self.a_json],
                     ["--html", ""]):
            r = bench(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
        # The same file twice: its label names both columns; without labels, file names.
        r = bench("--compare", self.b_json, self.b_json)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("(1.00x)", r.stdout)

    def test_merge_page(self):
        page = self.path("merged.html")
        r = bench("--merge", self.a_json, self.a_json, "--html", page, "--label", "twice")
        self.assertEqual(r.returncode, 0, r.stderr)
        text = self.read(page)
        self.check_self_contained(text, page)
        self.assertIn("<title>twice</title>", text)
        a = json.loads(self.read(self.a_json))
        values = page_figures(text).values
        self.assertEqual(values[(None, "msgs")], str(2 * a["msgs"]))

    def test_interrupted_run(self):
        # Ctrl-C after the first second: the result and page cover what was measured, and
        # the JSON reads back (its last second is short).
        srv = self.start_server("-P", "plain", "-m", "epoll", log=False)
        res, page = self.path("int.json"), self.path("int.html")
        proc = subprocess.Popen([BIN, "bench", "-P", "plain", "-p", str(srv.port), "-c", "2",
                                 "-d", "30", "--warmup", "0", "--interval-json",
                                 "--json=" + res, "--html", page],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()  # bench writes it after the first second
            self.assertTrue(first.startswith('{"t":1.000'), first)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=T(20))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.assertEqual(proc.returncode, 0, err)
        saved = json.loads(self.read(res))
        self.assertLess(saved["duration"], 10)
        self.assertEqual(sum(iv["msgs"] for iv in saved["intervals"]), saved["msgs"])
        self.assertGreaterEqual(len(saved["intervals"]), 1)
        values = page_figures(self.read(page)).values
        self.assertEqual(values[(None, "msgs")], str(saved["msgs"]))
        r = bench("--compare", res, self.a_json)
        self.assertEqual(r.returncode, 0, r.stderr)

    # -- rendered

    @unittest.skipUnless(CHROMIUM, NO_CHROMIUM)
    def test_rendered_run_page(self):
        c = Chromium(self)
        w, h, colours, inked, near = c.screenshot(self.a_html, self.path("a.png"))
        self.assertEqual((w, h), (1200, 1600))
        self.assertGreater(colours, 50, "the picture has hardly any colours")
        self.assertGreater(inked, 0.02, "the picture is nearly all white")
        self.assertGreater(near[BLUE], 500, "no chart line drawn")
        dom = c.dom(self.a_html)
        self.check_self_contained(dom, "the rendered page")
        self.check_run_figures(page_figures(dom).values, raw_json(self.a_json))

    @unittest.skipUnless(CHROMIUM, NO_CHROMIUM)
    def test_rendered_compare_page(self):
        c = Chromium(self)
        _, _, colours, inked, near = c.screenshot(self.cmp_html, self.path("cmp.png"))
        self.assertGreater(colours, 50)
        self.assertGreater(inked, 0.02)
        self.assertGreater(near[BLUE], 500, "the first run's curves are not drawn")
        self.assertGreater(near[RED], 500, "the second run's curves are not drawn")
        dom = c.dom(self.cmp_html)
        self.check_self_contained(dom, "the rendered comparison")
        values = page_figures(dom).values
        a, b = raw_json(self.a_json), raw_json(self.b_json)
        for run, res in ((0, a), (1, b)):
            for key in COMPARED:
                self.assertEqual(values.get((str(run), key)), res[key], (run, key))

    @unittest.skipUnless(CHROMIUM, NO_CHROMIUM)
    def test_blank_page_is_seen_as_blank(self):
        # The picture check itself: an empty page fails it.
        blank = self.path("blank.html")
        with open(blank, "w") as f:
            f.write("<!DOCTYPE html><html><body></body></html>\n")
        _, _, colours, inked, near = Chromium(self).screenshot(blank, self.path("blank.png"))
        self.assertLessEqual(colours, 50)
        self.assertLess(inked, 0.02)
        self.assertEqual(near[BLUE], 0)


if __name__ == "__main__":
    unittest.main()
