#!/usr/bin/env python3
"""perf_to_folded.py - convert `perf script` output to folded stacks.

Used to self-test Stoke's accuracy harness without the agent: a second
perf recording, converted to the agent's folded format (`root;...;leaf
COUNT`, one line per distinct stack), stands in for the agent's output.
Unresolved perf frames are written as `<dso basename>+0x<addr>`, the
agent's spelling of an unsymbolised frame.

With --inline, user frames of binaries found on disk are expanded into
their inlined frames with binutils `addr2line -i -f -C` (perf 6.1's own
--inline finds nothing for clang-built code here), giving the agent's
layout: inlined frames leafward of the function they are inlined into.

Usage: perf_to_folded.py PERF_SCRIPT_TXT [--pid PID] [--inline] > out.folded
Python 3 standard library only.
"""

import argparse
import os
import re
import subprocess
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from perf_compare import FRAME_RE, OFFSET_RE  # noqa: E402

ADDR_RE = re.compile(r"^0x[0-9a-fA-F]+$")


def inline_expand(frames_by_dso):
    """{dso: {addr}} -> {(dso, addr): [outer..inner names]} via addr2line."""
    out = {}
    for dso, addrs in frames_by_dso.items():
        if not os.path.isfile(dso):
            continue
        addrs = sorted(addrs)
        try:
            res = subprocess.run(["addr2line", "-i", "-f", "-C", "-a", "-e", dso]
                                 + ["0x%x" % a for a in addrs],
                                 capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            continue
        cur, names = None, []
        lines = res.stdout.splitlines()
        # Output per address: `0xADDR` then (function, file:line) pairs,
        # innermost inlined function first.
        i = 0
        while i < len(lines):
            if ADDR_RE.match(lines[i]):
                if cur is not None:
                    out[(dso, cur)] = list(reversed(names))
                cur, names = int(lines[i], 16), []
                i += 1
            else:
                names.append(lines[i])
                i += 2  # skip the file:line line
        if cur is not None:
            out[(dso, cur)] = list(reversed(names))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("perf_script")
    ap.add_argument("--pid", type=int, default=None)
    ap.add_argument("--inline", action="store_true", help="expand inlined frames")
    args = ap.parse_args()
    samples = []

    stacks = Counter()
    header, frames = None, []

    def flush():
        if header is None:
            return
        if args.pid is not None:
            if not any(p.split("/")[0] == str(args.pid) for p in header.split()[1:4]):
                return
        samples.append(list(reversed(frames)))

    with open(args.perf_script, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                flush()
                header, frames = None, []
            elif line[0] in " \t":
                m = FRAME_RE.match(line)
                if m and header is not None:
                    frames.append((m.group(1), m.group(2), m.group(3)))
            else:
                flush()
                header, frames = line, []
    flush()

    # Non-leaf frames are return addresses: look up addr-1 for inlining.
    inl = {}
    if args.inline:
        want = {}
        for fr in samples:
            for i, (addr, sym, dso) in enumerate(fr):
                if dso.startswith("/") and not sym.strip().startswith("[unknown]"):
                    want.setdefault(dso, set()).add(int(addr, 16) - (0 if i == len(fr) - 1 else 1))
        inl = inline_expand(want)
    for fr in samples:
        names = []
        for i, (addr, sym, dso) in enumerate(fr):
            sym = sym.strip()
            if not sym or sym.startswith("[unknown]"):
                names.append("%s+0x%s" % (os.path.basename(dso) or "unknown", addr))
                continue
            key = (dso, int(addr, 16) - (0 if i == len(fr) - 1 else 1))
            chain = inl.get(key)
            if chain and len(chain) > 1:
                # Physical function name from perf, inlined ones from addr2line.
                names.append(OFFSET_RE.sub("", sym).replace(";", ":"))
                names.extend(n.replace(";", ":") for n in chain[1:])
            else:
                names.append(OFFSET_RE.sub("", sym).replace(";", ":"))
        stacks[";".join(names) if names else "[unknown]"] += 1
    for stack, n in sorted(stacks.items()):
        print("%s %d" % (stack, n))


if __name__ == "__main__":
    main()
