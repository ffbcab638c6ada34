#!/usr/bin/env python3
"""folded_top.py FILE... — folded stacks ("a;b;c N") as pprof_top's JSON:
total, self per leaf, cum per function (counted once per stack)."""
import json
import sys

total, self_, cum = 0, {}, {}
for path in sys.argv[1:]:
    for line in open(path):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        stack, n = line.rsplit(" ", 1)
        n = int(n)
        frames = stack.split(";")
        total += n
        self_[frames[-1]] = self_.get(frames[-1], 0) + n
        for f in set(frames):
            cum[f] = cum.get(f, 0) + n
print(json.dumps({"total": total, "self": self_, "cum": cum}))
