#!/usr/bin/env python3
"""runtime_compare.py - an interpreted program's profile against its own timing.

Usage: runtime_compare.py FOLDED_DIR TRUTH.json --funcs a,b --own a,b,main
                          --entry '<module>' [--max-diff 3]
FOLDED_DIR holds the agent's folded stacks of the program's service; TRUTH
is what the program measured with its thread CPU clock: {function: share of
its CPU}. Checks, printing `RESULT passed=P failed=F` last:
  * >= 90% of samples carry one of the program's own functions (--own);
  * >= 90% of stacks are whole: they hold the runtime's entry frame
    (--entry, e.g. <module> for a script) under a native _start/clone3;
  * each --funcs function's total (inclusive) share is within --max-diff
    points of the truth."""
import argparse
import glob
import json
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("folded")
    ap.add_argument("truth")
    ap.add_argument("--funcs", required=True)
    ap.add_argument("--own", required=True)
    ap.add_argument("--entry", required=True)
    ap.add_argument("--max-diff", type=float, default=3.0)
    ap.add_argument("--min", type=float, default=90.0)
    args = ap.parse_args(argv)

    samples = []
    for path in sorted(glob.glob(os.path.join(args.folded, "*.folded"))):
        with open(path) as f:
            for line in f:
                stack, _, n = line.rstrip("\n").rpartition(" ")
                if stack and n.isdigit():
                    samples.append((stack.split(";"), int(n)))
    with open(args.truth) as f:
        truth = json.load(f)
    total = sum(n for _, n in samples)
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        print(("ok   " if ok else "FAIL ") + what)
        if ok:
            passed += 1
        else:
            failed += 1

    check(total >= 300, "%d samples (>= 300)" % total)
    own = set(args.own.split(","))
    named = sum(n for st, n in samples if own & set(st))
    whole = sum(n for st, n in samples
                if st and st[0].lstrip("_") in ("start", "clone3") and args.entry in st)
    pct = lambda x: 100.0 * x / total if total else 0.0
    check(pct(named) >= args.min, "%.1f%% of samples name the program's own functions" % pct(named))
    check(pct(whole) >= args.min, "%.1f%% of stacks whole (%s under _start/clone3)" %
          (pct(whole), args.entry))
    print("%-12s %8s %8s %7s" % ("total of", "truth%", "stoke%", "diff"))
    for fn in args.funcs.split(","):
        got = pct(sum(n for st, n in samples if fn in st))
        want = 100.0 * truth.get(fn, 0.0)
        print("%-12s %8.2f %8.2f %+7.2f" % (fn, want, got, got - want))
        check(abs(got - want) <= args.max_diff,
              "%s within %.1f points of its own timing" % (fn, args.max_diff))
    print("RESULT passed=%d failed=%d" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
