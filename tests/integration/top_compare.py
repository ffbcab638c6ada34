#!/usr/bin/env python3
"""top_compare.py WANT GOT — compares two per-function answers: WANT is
pprof_top's JSON ({"total", "self": {name: v}, "cum": {name: v}}) or another
/api/v1/top answer; GOT is an /api/v1/top answer. Prints the number of
functions, or the first differences and exits 1."""
import json
import sys


def norm(j):
    if "functions" in j:
        return (j.get("total"), {f["name"]: f["self"] for f in j["functions"] if f["self"]},
                {f["name"]: f["total"] for f in j["functions"]})
    return j["total"], {k: v for k, v in j["self"].items() if v}, j["cum"]


wt, ws, wc = norm(json.load(open(sys.argv[1])))
gt, gs, gc = norm(json.load(open(sys.argv[2])))
errs = []
if wt != gt:
    errs.append("total %s != %s" % (gt, wt))
if set(wc) != set(gc):
    errs.append("functions differ: only got %s; only want %s" % (
        sorted(set(gc) - set(wc))[:3], sorted(set(wc) - set(gc))[:3]))
for n in sorted(set(wc) & set(gc)):
    if ws.get(n, 0) != gs.get(n, 0) or wc[n] != gc[n]:
        errs.append("%s: self %d/%d total %d/%d" % (n, gs.get(n, 0), ws.get(n, 0), gc[n], wc[n]))
        if len(errs) > 3:
            break
if errs or not wc:
    print("; ".join(errs) or "no functions")
    sys.exit(1)
print("%d functions, total %s" % (len(wc), wt))
