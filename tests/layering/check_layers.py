#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails when the layer libraries reference each other upward or in a cycle.

Usage: check_layers.py [--nm NM] NAME=ARCHIVE [NAME=ARCHIVE ...]

The layers are given lowest first (base, crypto, proto, engine, server, cmd). Every symbol
an object leaves undefined must be defined by an object of the same layer or of a layer
below it, or come from outside the project (libc, OpenSSL). Inside the whole tree the
object-to-object graph must also be acyclic: two files that call each other are one module
in disguise. Reads symbols with `nm`, so it judges what the compiler really emitted, not
what the #include lines say.
"""
import argparse
import os
import subprocess
import sys


def read_archive(nm, path):
    """Returns {object: (defined set, undefined set)} for one static library."""
    out = subprocess.run([nm, "-A", "-P", path], check=True, capture_output=True,
                         text=True).stdout
    objs = {}
    for line in out.splitlines():
        # "archive[object.o]: symbol TYPE value size" (nm -A -P)
        head, _, rest = line.partition(": ")
        if not rest:
            continue
        obj = head[head.find("[") + 1:head.rfind("]")] if "[" in head else head
        parts = rest.split()
        if len(parts) < 2:
            continue
        sym, kind = parts[0], parts[1]
        d, u = objs.setdefault(obj, (set(), set()))
        if kind == "U":
            u.add(sym)
        elif kind.isupper() or kind in ("w", "v"):
            d.add(sym)
    return objs


def find_cycles(edges):
    """Tarjan's strongly connected components; returns the components of size > 1."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check(nm, layers):
    """layers: [(name, archive)], lowest first. Returns a list of problem sentences."""
    rank, where, objs = {}, {}, {}
    for i, (name, path) in enumerate(layers):
        rank[name] = i
        for obj, (d, u) in read_archive(nm, path).items():
            key = f"{name}/{obj}"
            objs[key] = (name, d, u)
            for sym in d:
                where.setdefault(sym, key)
    problems = []
    edges = {}
    for key, (layer, _, undefined) in sorted(objs.items()):
        for sym in sorted(undefined):
            target = where.get(sym)
            if target is None:
                continue  # libc, OpenSSL, the compiler's runtime
            tlayer = objs[target][0]
            if rank[tlayer] > rank[layer]:
                problems.append(f"upward reference: {key} uses {sym} from {target} "
                                f"({layer} may only use layers below it)")
            if target != key:
                edges.setdefault(key, set()).add(target)
    for comp in find_cycles(edges):
        problems.append("cycle between files: " + " <-> ".join(comp))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nm", default=os.environ.get("NM", "nm"))
    ap.add_argument("--allow-cycle", action="append", default=[], metavar="A.o,B.o",
                    help="a known cycle (object names, comma-separated) to report but pass")
    ap.add_argument("layers", nargs="+", metavar="NAME=ARCHIVE")
    a = ap.parse_args()
    layers = [tuple(x.split("=", 1)) for x in a.layers]
    problems = check(a.nm, layers)
    allowed = {tuple(sorted(c.split(","))) for c in a.allow_cycle}
    for p in [p for p in problems if p.startswith("cycle between files: ")]:
        names = tuple(sorted(n.split("/", 1)[1] for n in p.split(": ", 1)[1].split(" <-> ")))
        if names in allowed:
            print("layering: known, to be removed: " + p)
            problems.remove(p)
    for p in problems:
        print("layering: " + p)
    names = " -> ".join(n for n, _ in layers)
    if problems:
        print(f"layering: FAILED ({len(problems)} problems; allowed direction {names})")
        return 1
    print(f"layering: ok ({names}; no upward reference, no cycle)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
