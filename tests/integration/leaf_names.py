#!/usr/bin/env python3
"""leaf_names.py - how many of a workload's user-space leaves are named.

Reads the agent's folded files (`root;...;leaf COUNT`) and, for each
sample, takes its user leaf: the last frame that is not a kernel function
(names from /proc/kallsyms; the agent puts kernel frames leafward of the
user ones). A user leaf spelt `<module>+0x<offset>` for one of --module
is unnamed. Prints one JSON object: samples, unnamed, named_pct, and the
top unnamed leaves.

Usage: leaf_names.py --module busy_libc --module libc.so.6 FILE.folded...
Python 3 standard library only.
"""

import argparse
import json
import re
import sys
from collections import Counter


def kernel_names(path="/proc/kallsyms"):
    names = set()
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tTwW":
                    names.add(parts[2])
    except OSError:
        pass
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--module", action="append", required=True)
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    unnamed_re = re.compile(r"^(%s)\+0x[0-9a-f]+$" % "|".join(re.escape(m) for m in a.module))
    kern = kernel_names()
    total = unnamed = 0
    top = Counter()
    for path in a.files:
        with open(path) as f:
            for line in f:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if not stack or not count.isdigit():
                    continue
                n = int(count)
                frames = stack.split(";")
                leaf = None
                for fr in reversed(frames):
                    if unnamed_re.match(fr) or fr not in kern:
                        leaf = fr
                        break
                if leaf is None:
                    continue  # kernel only
                total += n
                if unnamed_re.match(leaf):
                    unnamed += n
                    top[leaf] += n
    pct = 100.0 * (total - unnamed) / total if total else 0.0
    json.dump({"samples": total, "unnamed": unnamed, "named_pct": round(pct, 2),
               "top_unnamed": top.most_common(5)}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
