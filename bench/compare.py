#!/usr/bin/env python3
"""compare.py - samples and per-function self-share agreement of the four
profilers' outputs from one `make bench` run (bench/run.sh).

Usage: compare.py --out JSON [--perf PERF_SCRIPT.txt] [--bpftrace OUT.txt]
                  [--bcc FOLDED.txt] [--stoke STOKE_OUTPUT_DIR]
                  [--proc COMM=FUNC,FUNC...]...

For each tool it counts all samples, idle samples (comm swapper/pid 0;
only perf -a and bpftrace count them), and for each workload process
(by comm; the agent's per-service folded files by service name) the self
share of each compared function: samples whose leaf frame is that function
/ samples of that process. A process given without functions is compared on
perf's top leaves of that process (>= 3% each, at most 3). Per tool and
process: max |share - perf's share| in percentage points over the compared
functions, with the 2-sigma sampling noise of that difference (binomial, both
sides), and the % of the process's samples whose leaf is symbolised (also
over all samples, idle excluded). Names are normalised as in
tests/integration/perf_compare.py (offsets, clone suffixes, C++ parameters).
Python 3 standard library only.
"""
import argparse
import glob
import json
import math
import os
import re
import sys
from collections import Counter, defaultdict

sys.dont_write_bytecode = True  # no __pycache__ in tests/integration
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from perf_compare import FRAME_RE, normalize, perf_frame_name  # noqa: E402

DEC_OFFSET_RE = re.compile(r"\+\d+$")
HEX_ADDR_RE = re.compile(r"^(0x)?[0-9a-fA-F]{6,}$")
UNSYM_RE = re.compile(r"^(\[unknown\]|.*\+0x[0-9a-fA-F]+)$")
PERF_HEADER_RE = re.compile(r"^\s*(.*?)\s+(\d+)(?:/(\d+))?\s+\[\d+\]")


def unsymbolized(frame):
    f = frame.strip()
    return not f or bool(UNSYM_RE.match(f)) or bool(HEX_ADDR_RE.match(f))


class Tally:
    """Leaf counts per comm/service; each sample is (comm, leaf, idle, n)."""

    def __init__(self):
        self.total = 0
        self.idle = 0
        self.unsym = 0
        self.leaves = defaultdict(Counter)  # comm -> normalised leaf -> n
        self.unsym_by = Counter()
        self.by = Counter()

    def add(self, comm, leaf, n, idle=False):
        self.total += n
        if idle:
            self.idle += n
            return
        self.by[comm] += n
        if unsymbolized(leaf):
            self.unsym += n
            self.unsym_by[comm] += n
            self.leaves[comm]["[unknown]"] += n
        else:
            self.leaves[comm][normalize(leaf)] += n


def read_perf(path):
    t = Tally()
    comm = pid = None
    frames = []

    def flush():
        if comm is not None:
            t.add(comm, frames[0] if frames else "[unknown]", 1, idle=(pid == 0))

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line[0] in " \t":
                m = FRAME_RE.match(line)
                if m and comm is not None:
                    frames.append(perf_frame_name(m.group(2), m.group(3)))
                continue
            flush()
            m = PERF_HEADER_RE.match(line)
            comm, pid, frames = (m.group(1), int(m.group(2)), []) if m else (None, None, [])
    flush()
    return t


def read_bpftrace(path):
    """`@[kstack, ustack, comm] = count()` as printed at exit."""
    t = Tally()
    end_re = re.compile(r"^(.*)\]: (\d+)$")
    block = None
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if block is None:
                if not line.startswith("@["):
                    continue
                block = []
                line = line[2:]
            m = end_re.match(line)
            if m:
                block.append(m.group(1))
                _bpftrace_entry(t, block, int(m.group(2)))
                block = None
            else:
                block.append(line)
    return t


def _bpftrace_entry(t, lines, n):
    # Frames are indented lines; other lines are ", " separators (kernel
    # stack, user stack) followed, on the last line, by the comm. Frame
    # names may hold ", " themselves (C++ templates), so split by lines.
    sections, comm = [[]], ""
    for ln in lines:
        if ln.startswith("    "):
            sections[-1].append(ln.strip())
            continue
        while ln.startswith(", ") or ln == ",":
            sections.append([])
            ln = ln[2:]
        comm = ln.strip() or comm
    kstack = sections[0]
    ustack = sections[1] if len(sections) > 2 else []
    leaf = (kstack or ustack or ["[unknown]"])[0]
    t.add(comm, DEC_OFFSET_RE.sub("", leaf), n, idle=comm.startswith("swapper/"))


def read_folded_lines(path, t, comm_from_first):
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            stack, _, count = line.rpartition(" ")
            try:
                n = int(count)
            except ValueError:
                continue
            frames = stack.split(";")
            comm = frames[0] if comm_from_first else comm_from_first_fallback(path)
            if comm_from_first:
                frames = frames[1:]
            leaf = frames[-1] if frames and frames[-1] else "[unknown]"
            t.add(comm, DEC_OFFSET_RE.sub("", leaf), n)


def comm_from_first_fallback(path):
    return os.path.basename(os.path.dirname(path))


def read_bcc(path):
    t = Tally()
    read_folded_lines(path, t, True)
    return t


def read_stoke(outdir):
    t = Tally()
    for fp in sorted(glob.glob(os.path.join(outdir, "*", "*.folded"))):
        read_folded_lines(fp, t, False)
    return t


def pct(n, d):
    return 100.0 * n / d if d else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--perf")
    ap.add_argument("--bpftrace")
    ap.add_argument("--bcc")
    ap.add_argument("--stoke")
    ap.add_argument("--proc", action="append", default=[],
                    help="COMM=FUNC,FUNC (functions optional: perf's top leaves)")
    a = ap.parse_args()

    readers = [("perf", a.perf, read_perf), ("bpftrace", a.bpftrace, read_bpftrace),
               ("bcc", a.bcc, read_bcc), ("stoke", a.stoke, read_stoke)]
    tallies = {}
    errors = {}
    for name, path, fn in readers:
        if not path:
            continue
        try:
            tallies[name] = fn(path)
        except (OSError, ValueError) as e:
            errors[name] = str(e)

    procs = []
    for spec in a.proc:
        comm, _, funcs = spec.partition("=")
        procs.append((comm, [f for f in funcs.split(",") if f]))

    perf = tallies.get("perf")
    res = {"errors": errors, "processes": {}, "tools": {}}
    for comm, funcs in procs:
        if not funcs and perf is not None:
            pl, pn = perf.leaves[comm], perf.by[comm]
            funcs = [k for k, v in pl.most_common() if k != "[unknown]" and pn
                     and 100.0 * v / pn >= 3.0][:3]
        res["processes"][comm] = [normalize(f) for f in funcs]

    for name, t in tallies.items():
        nonidle = t.total - t.idle
        tool = {"samples": t.total, "idle_samples": t.idle,
                "symbolized_pct_all": pct(nonidle - t.unsym, nonidle), "processes": {}}
        fx_n = fx_unsym = 0
        worst = None
        for comm, funcs in res["processes"].items():
            n = t.by[comm]
            fx_n += n
            fx_unsym += t.unsym_by[comm]
            shares = {f: pct(t.leaves[comm][f], n) for f in funcs}
            p = {"samples": n, "shares_pct": shares,
                 "symbolized_pct": pct(n - t.unsym_by[comm], n)}
            if perf is not None and name != "perf" and n and perf.by[comm]:
                pn = perf.by[comm]
                diffs = {}
                for f in funcs:
                    ps = pct(perf.leaves[comm][f], pn)
                    diffs[f] = shares[f] - ps
                if diffs:
                    f = max(diffs, key=lambda k: abs(diffs[k]))
                    q = perf.leaves[comm][f] / pn
                    p["max_diff_pp"] = round(abs(diffs[f]), 2)
                    p["max_diff_function"] = f
                    p["noise_2sigma_pp"] = round(
                        200 * math.sqrt(q * (1 - q) * (1.0 / n + 1.0 / pn)), 2)
                    worst = max(worst or 0, p["max_diff_pp"])
            tool["processes"][comm] = p
        tool["symbolized_pct"] = pct(fx_n - fx_unsym, fx_n)
        tool["share_max_diff_pp"] = worst
        res["tools"][name] = tool

    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    # Human-readable shares (perf first).
    for comm, funcs in res["processes"].items():
        print("%s: self share %% of the process's samples" % comm)
        print("  %-28s" % "function" + "".join("%10s" % n for n in res["tools"]))
        for fn in funcs:
            print("  %-28s" % fn[:28] + "".join(
                "%10s" % ("%.2f" % v if v is not None else "-")
                for v in (res["tools"][n]["processes"][comm]["shares_pct"][fn]
                          for n in res["tools"])))
        print("  %-28s" % "samples" + "".join(
            "%10d" % res["tools"][n]["processes"][comm]["samples"] for n in res["tools"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
