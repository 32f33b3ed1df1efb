#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reads a linked ELF program with readelf and fails, naming each one, on any missing hardening:
PIE, full RELRO (GNU_RELRO + BIND_NOW), the stack protector, _FORTIFY_SOURCE and CET branch
protection (-fcf-protection).

Usage: check_hardening.py [--readelf R] [--cc CC] BINARY [OBJECT_OR_ARCHIVE ...]

CET: the linker marks the program IBT/SHSTK only if every input object is marked, including the
C library's start files. Where those start files are not marked (Debian 12's glibc is built
without CET) no program can carry the note, so the check then requires it on each of the
program's own objects given after BINARY, and says so. Exit 0 when all is present, 1 with one
line per missing item, 2 on a usage or readelf error."""
import argparse
import re
import subprocess
import sys

CET = ("IBT", "SHSTK")


def readelf(tool, flags, path):
    """readelf's output for one file, or raises RuntimeError with its message."""
    proc = subprocess.run([tool, "-W"] + flags + [path], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} {' '.join(flags)} {path}: {proc.stderr.strip()}")
    return proc.stdout


def cet_features(notes):
    """The CET features named in readelf -n output (per file, or per archive member)."""
    found = set()
    for m in re.finditer(r"x86 feature(?:s)?: ([^\n]*)", notes):
        found.update(f.strip() for f in m.group(1).split(","))
    return found


def members_without_cet(tool, path):
    """Names of the objects in one object file or archive that lack IBT or SHSTK."""
    out = readelf(tool, ["-n"], path)
    # readelf prints "File: lib.a(member.o)" before each archive member; a lone object has none.
    parts = re.split(r"^File: (.*)$", out, flags=re.M)
    if len(parts) == 1:
        return [] if set(CET) <= cet_features(out) else [path]
    missing = []
    for name, text in zip(parts[1::2], parts[2::2]):
        if not set(CET) <= cet_features(text):
            missing.append(name.strip())
    return missing


def start_file_has_cet(tool, cc):
    """Whether the C library's start file for PIE programs is CET-marked (None: not found)."""
    if not cc:
        return None
    try:
        proc = subprocess.run([cc, "-print-file-name=Scrt1.o"], capture_output=True, text=True)
    except OSError:
        return None
    path = proc.stdout.strip()
    if proc.returncode != 0 or "/" not in path:
        return None
    return set(CET) <= cet_features(readelf(tool, ["-n"], path))


def check(binary, objects=(), tool="readelf", cc=None, info=None):
    """One line per missing hardening feature of binary; [] when it has them all. Lines saying
    how a feature was found, where that is not plain, are appended to info if given."""
    problems = []
    header = readelf(tool, ["-h"], binary)
    dynamic = readelf(tool, ["-d"], binary)
    segments = readelf(tool, ["-l"], binary)
    dynsyms = readelf(tool, ["--dyn-syms"], binary)
    notes = readelf(tool, ["-n"], binary)

    if not re.search(r"^\s*Type:\s+DYN\b", header, re.M) or not re.search(
            r"\(FLAGS_1\).*\bPIE\b", dynamic):
        problems.append("PIE: not a position-independent executable (Type DYN, FLAGS_1 PIE)")
    if "GNU_RELRO" not in segments:
        problems.append("RELRO: no GNU_RELRO segment (-Wl,-z,relro)")
    if not (re.search(r"\(FLAGS\).*\bBIND_NOW\b", dynamic)
            or re.search(r"\(FLAGS_1\).*\bNOW\b", dynamic)):
        problems.append("BIND_NOW: neither FLAGS BIND_NOW nor FLAGS_1 NOW (-Wl,-z,now)")
    # "Num: Value Size Type Bind Vis Ndx Name[@version] [(n)]": the name is the eighth field.
    symbols = {line.split()[7].split("@")[0] for line in dynsyms.splitlines()
               if re.match(r"\s*\d+:", line) and len(line.split()) >= 8}
    if "__stack_chk_fail" not in symbols:
        problems.append("stack protector: no __stack_chk_fail (-fstack-protector-strong)")
    fortified = sorted(s for s in symbols if re.fullmatch(r"__\w+_chk", s)
                       and s not in ("__stack_chk_fail", "__stack_chk_guard"))
    if not fortified:
        problems.append("FORTIFY: no __*_chk libc function (-D_FORTIFY_SOURCE=2 at -O1 or more)")

    if re.search(r"^\s*Machine:.*X86-64", header, re.M):
        if not set(CET) <= cet_features(notes):
            start = start_file_has_cet(tool, cc)
            if start is not False:
                problems.append("CET: .note.gnu.property lacks x86 feature IBT, SHSTK"
                                " (-fcf-protection)")
            elif not objects:
                problems.append("CET: the C library's start files are not CET-marked, so"
                                " the program's own objects must be given to check")
            else:
                if info is not None:
                    info.append("CET checked on the program's objects: the C library's start"
                                " files are not CET-marked, so the linked program cannot be")
                for path in objects:
                    for name in members_without_cet(tool, path):
                        problems.append(f"CET: {name} lacks x86 feature IBT, SHSTK"
                                        " (-fcf-protection)")
    return problems


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--readelf", default="readelf")
    ap.add_argument("--cc", default=None, help="the C compiler, to find its start files")
    ap.add_argument("binary")
    ap.add_argument("objects", nargs="*", help="the program's own objects or archives")
    args = ap.parse_args(argv)
    try:
        info = []
        problems = check(args.binary, args.objects, args.readelf, args.cc, info)
    except (OSError, RuntimeError) as e:
        print(f"check_hardening: {e}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"{args.binary}: missing {p}")
    if problems:
        return 1
    for line in info:
        print(f"{args.binary}: {line}")
    print(f"{args.binary}: PIE, full RELRO, stack protector, FORTIFY, CET all present")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
