#!/usr/bin/env python3
"""unwind_stacks.py - how deep and how whole the user stacks in an agent's
--output-dir are, per service: the same figures for the frame-pointer walk
and the table walk (bench/run.sh's unwinding stage).

Usage: unwind_stacks.py --json OUT [--entry NAME,...] [--service S]...
                        [--label LABEL=OUTPUT_DIR]...

Reads every OUTPUT_DIR/<service>/*.pb.gz (gzip pprof, as the agent writes
it) and counts, per service given (all services when none is) and over
all of them:
  samples       sample weight (idle excluded: the agent does not sample it)
  user_samples  samples with at least one user frame
  user_frames_per_sample
                physical user frames (locations outside [kernel.kallsyms]
                and the agent's own [stoke] marker frames) per user sample:
                what the BPF walker walked, inlined functions not counted
  entry_pct     % of user samples whose outermost user frame is an entry
                (--entry; default _start,clone3): the stack reached the
                program's entry, as tests/integration/perf_compare.py
                decides it
  truncated_pct % of user samples under a `[truncated: REASON]` frame, and
                the reasons

An outermost frame the agent left unresolved (no symbol: libc's clone3 has
none in libc.so.6 itself) is named by `addr2line -f` on its file and
address, which finds separate debug files (libc6-dbg) as gdb does; without
one it stays BINARY+0xOFFSET and does not count as an entry. The agent's
own runs in the bench do not read /usr/lib/debug, so that its memory is
what a host without -dbg packages sees.

A profile is decoded with a small protobuf reader of its own (field numbers
of profile.proto). Python 3 standard library and binutils' addr2line.
"""
import argparse
import glob
import gzip
import json
import os
import struct
import subprocess
import sys
from collections import Counter

sys.dont_write_bytecode = True  # no __pycache__ in tests/integration
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from perf_compare import is_entry  # noqa: E402

KERNEL_MAPPING = "[kernel.kallsyms]"
MARKER_MAPPING = "[stoke]"


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(b):
    """Yields (field number, wire type, value) of one message; value is an
    int (varint, fixed) or bytes (length-delimited)."""
    i, n = 0, len(b)
    while i < n:
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v, i = int.from_bytes(b[i:i + 8], "little"), i + 8
        elif wt == 2:
            ln, i = varint(b, i)
            v, i = b[i:i + ln], i + ln
        elif wt == 5:
            v, i = int.from_bytes(b[i:i + 4], "little"), i + 4
        else:
            raise ValueError("wire type %d" % wt)
        if i > n:
            raise ValueError("truncated message")
        yield f, wt, v


def ints(wt, v):
    """A repeated integer field: packed (bytes) or one varint."""
    if wt != 2:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def load_segments(path):
    """[(p_offset, p_vaddr, p_filesz)] of an ELF64 file's PT_LOAD headers."""
    with open(path, "rb") as f:
        h = f.read(64)
        if len(h) < 64 or h[:4] != b"\x7fELF" or h[4] != 2:
            return []
        phoff, = struct.unpack_from("<Q", h, 32)
        phentsize, phnum = struct.unpack_from("<HH", h, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    segs = []
    for i in range(phnum):
        if len(ph) < (i + 1) * phentsize or phentsize < 56:
            break
        typ, _, off, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", ph, i * phentsize)
        if typ == 1:
            segs.append((off, vaddr, filesz))
    return segs


class Resolver:
    """Names unresolved frames (file, file offset) by addr2line, cached."""

    def __init__(self):
        self.cache = {}

    def name(self, path, off):
        key = (path, off)
        if key not in self.cache:
            self.cache[key] = self._resolve(path, off)
        return self.cache[key]

    def _resolve(self, path, off):
        fallback = "%s+0x%x" % (os.path.basename(path) or "[unknown]", off)
        try:
            for p_off, p_vaddr, filesz in load_segments(path):
                if p_off <= off < p_off + filesz:
                    out = subprocess.run(["addr2line", "-f", "-e", path, "0x%x" % (off - p_off + p_vaddr)],
                                         capture_output=True, text=True, timeout=30)
                    fn = out.stdout.split("\n", 1)[0].strip()
                    return fn if out.returncode == 0 and fn and fn != "??" else fallback
        except (OSError, struct.error, subprocess.TimeoutExpired):
            pass
        return fallback


def read_profile(path):
    """Yields (weight, [(mapping file, outermost function name, address)]
    leaf first) for each sample of one gzip pprof file."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    strings, mappings, functions, locations, samples = [], {}, {}, {}, []
    for f, wt, v in fields(data):
        if f == 6:
            strings.append(v.decode("utf-8", "replace"))
        elif f == 2:
            locs, vals = [], []
            for g, gwt, gv in fields(v):
                if g == 1:
                    locs += ints(gwt, gv)
                elif g == 2:
                    vals += ints(gwt, gv)
            samples.append((vals[0] if vals else 0, locs))
        elif f == 3:
            d = {g: gv for g, _, gv in fields(v)}
            mappings[d.get(1, 0)] = d.get(5, 0)
        elif f == 5:
            d = {g: gv for g, _, gv in fields(v)}
            functions[d.get(1, 0)] = d.get(2, 0)
        elif f == 4:
            lid = mid = addr = 0
            fid = None
            for g, _, gv in fields(v):
                if g == 1:
                    lid = gv
                elif g == 2:
                    mid = gv
                elif g == 3:
                    addr = gv
                elif g == 4:  # Line; the last one is the outermost (caller)
                    fid = {h: hv for h, _, hv in fields(gv)}.get(1, fid)
            locations[lid] = (mid, fid, addr)

    def s(i):
        return strings[i] if 0 <= i < len(strings) else ""

    names = {}
    for lid, (mid, fid, addr) in locations.items():
        names[lid] = (s(mappings.get(mid, 0)), s(functions.get(fid, 0)) if fid else "", addr)
    for w, locs in samples:
        yield w, [names.get(lid, ("", "", 0)) for lid in locs]


class Tally:
    def __init__(self, resolver):
        self.resolver = resolver
        self.samples = self.user_samples = self.frames = self.entry = self.truncated = 0
        self.reasons = Counter()
        self.roots = Counter()

    def add(self, w, frames, entry_names):
        self.samples += w
        user = [fr for fr in frames if fr[0] not in (KERNEL_MAPPING, MARKER_MAPPING)]
        marks = [fr[1] for fr in frames if fr[0] == MARKER_MAPPING]
        if not user:
            return
        self.user_samples += w
        self.frames += w * len(user)
        mapping, root, addr = user[-1]
        if not root:
            root = (self.resolver.name(mapping, addr) if mapping.startswith("/")
                    else "%s+0x%x" % (mapping or "[unknown]", addr))
        if is_entry(root, entry_names):
            self.entry += w
        else:
            self.roots[root] += w
        for m in marks:
            if m.startswith("[truncated: "):
                self.truncated += w
                self.reasons[m[len("[truncated: "):].rstrip("]")] += w

    def result(self):
        u = self.user_samples

        def pct(n):
            return round(100.0 * n / u, 2) if u else None
        return {"samples": self.samples, "user_samples": u,
                "user_frames_per_sample": round(self.frames / u, 2) if u else None,
                "entry_pct": pct(self.entry), "truncated_pct": pct(self.truncated),
                "truncated_by": dict(self.reasons.most_common()),
                "top_other_roots": dict(self.roots.most_common(3))}


def analyse(outdir, services, entry_names, resolver):
    per, total = {}, Tally(resolver)
    for path in sorted(glob.glob(os.path.join(outdir, "*", "*.pb.gz"))):
        svc = os.path.basename(os.path.dirname(path))
        t = per.setdefault(svc, Tally(resolver)) if (not services or svc in services) else None
        for w, frames in read_profile(path):
            total.add(w, frames, entry_names)
            if t is not None:
                t.add(w, frames, entry_names)
    res = {"all": total.result(), "services": {k: v.result() for k, v in sorted(per.items())}}
    for s in services:
        res["services"].setdefault(s, Tally(resolver).result())
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True)
    ap.add_argument("--entry", default="_start,clone3")
    ap.add_argument("--service", action="append", default=[])
    ap.add_argument("--label", action="append", default=[], help="LABEL=OUTPUT_DIR")
    a = ap.parse_args()
    names = [n for n in a.entry.split(",") if n]
    res = {"entry": names}
    resolver = Resolver()
    for spec in a.label:
        label, _, d = spec.partition("=")
        try:
            res[label] = analyse(d, a.service, names, resolver)
        except (OSError, ValueError, EOFError) as e:
            res[label] = {"error": str(e)}
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    for label in (s.partition("=")[0] for s in a.label):
        r = res[label]
        if "error" in r:
            print("%s: %s" % (label, r["error"]))
            continue
        for svc, v in list(r["services"].items()) + [("(all)", r["all"])]:
            print("%-6s %-16s %6d user samples, %5s user frames each, %6s%% reach the entry, "
                  "%6s%% truncated" % (label, svc, v["user_samples"], v["user_frames_per_sample"],
                                        v["entry_pct"], v["truncated_pct"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
