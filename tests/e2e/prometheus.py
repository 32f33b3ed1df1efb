# SPDX-License-Identifier: MIT
"""A strict parser of the Prometheus text exposition format, version 0.0.4, and a tiny HTTP
client to scrape with (Python stdlib only), for the --metrics tests.

parse(text) checks every line against the format
(https://prometheus.io/docs/instrumenting/exposition_formats/) and raises PromError on the
first thing a Prometheus server would reject or misread:
  - the text is UTF-8 and ends with a line feed; lines are "# HELP NAME TEXT",
    "# TYPE NAME TYPE", other comments, or samples; no blank lines (the format ignores
    them, but secho writes none, so one is a bug);
  - metric and label names match [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]*
    (label names not starting with "__"); label values are double-quoted with only \\\\, \\"
    and \\n escapes; no label name twice in one sample;
  - a value is a Go float (NaN, +Inf, -Inf allowed), an optional timestamp an int64;
  - HELP and TYPE at most once per name, TYPE before the family's first sample, a known
    type; every sample of a family in one group; no two samples with the same name and
    labels; a counter's samples non-negative and not NaN; a histogram or summary only as
    its _bucket/_sum/_count (or quantile) samples.
It returns a Exposition: .types {family: type}, .help {family: text} and .samples, a list of
(name, {label: value}, float value).
"""

import math
import re
import socket
import time

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FLOAT = re.compile(r"[+-]?(?:Inf|inf|NaN|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_INT64 = re.compile(r"-?\d{1,19}")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class PromError(ValueError):
    pass


class Exposition:
    def __init__(self):
        self.types = {}
        self.help = {}
        self.samples = []

    def values(self, name, **labels):
        """The values of the samples called `name` whose labels include `labels`."""
        want = {k: str(v) for k, v in labels.items()}
        return [v for n, l, v in self.samples
                if n == name and all(l.get(k) == x for k, x in want.items())]

    def total(self, name, **labels):
        return sum(self.values(name, **labels))


def _family(name, types):
    """The family a sample belongs to: histogram/summary samples carry suffixes."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return name


def _parse_labels(line, i):
    """Parses {a="b",...} at line[i] == '{'; returns (labels, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = _LABEL.match(line, i)
        if not m:
            raise PromError("bad label name at %d in %r" % (i, line))
        name = m.group(0)
        if name.startswith("__"):
            raise PromError("reserved label name %r in %r" % (name, line))
        if name in labels:
            raise PromError("label %r twice in %r" % (name, line))
        i = m.end()
        if line[i:i + 2] != '="':
            raise PromError("expected '=\"' after label %r in %r" % (name, line))
        i += 2
        out = []
        while True:
            if i >= len(line):
                raise PromError("unterminated label value in %r" % line)
            c = line[i]
            if c == "\\":
                e = line[i + 1:i + 2]
                if e not in ("\\", '"', "n"):
                    raise PromError("bad escape \\%s in %r" % (e, line))
                out.append("\n" if e == "n" else e)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise PromError("raw line feed in a label value in %r" % line)
            else:
                out.append(c)
                i += 1
        labels[name] = "".join(out)
        if i < len(line) and line[i] == ",":
            i += 1
            continue
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        raise PromError("expected ',' or '}' at %d in %r" % (i, line))


def _parse_float(s, line):
    if not _FLOAT.fullmatch(s):
        raise PromError("bad value %r in %r" % (s, line))
    return float(s)


def parse(text):
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PromError("not UTF-8: %s" % e)
    if not text.endswith("\n"):
        raise PromError("the text does not end with a line feed")
    out = Exposition()
    seen_samples = set()
    family_done = set()  # families whose group of samples has ended
    current = None
    for line in text[:-1].split("\n"):
        if line == "":
            raise PromError("a blank line")
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not _NAME.fullmatch(name):
                    raise PromError("bad metric name in %r" % line)
                if parts[1] == "HELP":
                    if name in out.help:
                        raise PromError("HELP twice for %s" % name)
                    body = parts[3] if len(parts) > 3 else ""
                    if re.search(r"\\[^\\n]|\\$", body):
                        raise PromError("bad escape in HELP %r" % line)
                    out.help[name] = body
                else:
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise PromError("bad TYPE line %r" % line)
                    if name in out.types:
                        raise PromError("TYPE twice for %s" % name)
                    if any(_family(n, {name: parts[3]}) == name for n, _, _ in out.samples):
                        raise PromError("TYPE for %s after its samples" % name)
                    out.types[name] = parts[3]
            continue  # any other comment
        m = _NAME.match(line)
        if not m:
            raise PromError("bad sample line %r" % line)
        name = m.group(0)
        i = m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i)
        if i >= len(line) or line[i] != " ":
            raise PromError("expected a space before the value in %r" % line)
        rest = line[i + 1:].split(" ")
        if not 1 <= len(rest) <= 2 or "" in rest:
            raise PromError("expected VALUE [TIMESTAMP] in %r" % line)
        value = _parse_float(rest[0], line)
        if len(rest) == 2 and not _INT64.fullmatch(rest[1]):
            raise PromError("bad timestamp in %r" % line)
        fam = _family(name, out.types)
        ftype = out.types.get(fam, "untyped")
        if ftype == "histogram" and name == fam:
            raise PromError("histogram sample %r without _bucket/_sum/_count" % line)
        if ftype == "counter" and (math.isnan(value) or value < 0):
            raise PromError("counter %s is %r" % (name, value))
        if fam != current:
            if fam in family_done:
                raise PromError("samples of %s are not grouped together" % fam)
            if current is not None:
                family_done.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen_samples:
            raise PromError("duplicate sample %r" % line)
        seen_samples.add(key)
        out.samples.append((name, labels, value))
    return out


def http_get(port, path="/metrics", method="GET", host="127.0.0.1", raw=None, timeout=10.0):
    """Sends one request (or the bytes `raw`) and reads the answer until the server closes.
    Returns (status, {header-lowercase: value}, body bytes). Fails if the answer is not a
    well-formed HTTP/1.1 response with Connection: close and a Content-Length that matches."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        if raw is None:
            raw = ("%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: secho-e2e\r\n"
                   "Accept: text/plain\r\n\r\n" % (method, path, host, port)).encode()
        s.sendall(raw)
        data = bytearray()
        end = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.1, end - time.monotonic()))
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if time.monotonic() > end:
                raise AssertionError("answer not finished within %.1f s" % timeout)
    finally:
        s.close()
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError("no complete response head in %r" % bytes(data[:300]))
    lines = head.decode("latin-1").split("\r\n")
    m = re.fullmatch(r"HTTP/1\.1 (\d{3}) [^\r\n]+", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = {}
    for l in lines[1:]:
        k, colon, v = l.partition(":")
        if not colon or not re.fullmatch(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", k):
            raise AssertionError("bad header line %r" % l)
        if k.lower() in headers:
            raise AssertionError("header %s twice" % k)
        headers[k.lower()] = v.strip()
    if headers.get("connection") != "close":
        raise AssertionError("no Connection: close in %r" % headers)
    if "content-length" not in headers:
        raise AssertionError("no Content-Length in %r" % headers)
    want = int(headers["content-length"])
    if method != "HEAD" and len(body) != want:
        raise AssertionError("Content-Length %d but %d bytes of body" % (want, len(body)))
    if method == "HEAD" and body:
        raise AssertionError("a body after HEAD: %r" % body[:100])
    return int(m.group(1)), headers, body


def scrape(port, **kw):
    """GET /metrics, checked: 200, the format's content type, and a body that parses."""
    status, headers, body = http_get(port, **kw)
    if status != 200:
        raise AssertionError("GET /metrics answered %d: %r" % (status, body[:200]))
    ctype = headers.get("content-type", "")
    if not re.fullmatch(r"text/plain; version=0\.0\.4; charset=utf-8", ctype):
        raise AssertionError("content type %r" % ctype)
    return parse(body)
