#!/usr/bin/env python3
"""perf_compare.py - compare Stoke's folded stacks with a `perf` reference.

Part of Stoke's accuracy integration test (see README.md next to it).

Inputs:
  PERF_SCRIPT  text output of `perf script` for a recording made with
               `perf record -e cpu-clock -F HZ -g -p PID` (leaf-first frames).
  FOLDED       the agent's folded stacks for one service: a directory
               (every *.folded file in it is summed) or one or more files;
               lines are `root;...;leaf COUNT`.

For each compared function it computes the SELF share (samples whose leaf
frame is that function / all samples) in both, prints
`function perf% stoke% diff`, and fails if any |diff| > --max-diff
percentage points or a listed function is missing from either side.

Name normalisation (applied to both sides and to the names given on the
command line; see normalize()):
  * a trailing `+0x...` offset is dropped (perf prints `sym+0x1a`);
  * GCC clone suffixes are dropped: `.isra.N`, `.constprop.N`, `.part.N`,
    `.cold`, `.llvm.NNN` and demangled ` [clone ...]`;
  * a C++ parameter list (the last top-level `(...)`, plus any trailing
    ` const`/`&`/`&&`) and ABI tags `[abi:...]` are dropped, and all
    whitespace is removed, so `ns::C::f(int) const` == `ns::C::f`,
    and `T<double const*>` == `T<const double*>` is NOT attempted.
  * aliases (names of one address in a binary perf's frames point into,
    or in its debug file: `__GI___libc_malloc`, `__libc_malloc` and
    `malloc`) are one function: each becomes the first of its names, global
    before local, then by fewest leading underscores, then sorted, since
    two symbolizers may each pick a different one.
  A requested name matches a symbol when the normalised forms are equal.

Leaf frames that are not symbolised (`[unknown]`, or `<binary>+0x<off>` in
the agent's output) are counted as unsymbolised; --min-symbolized asserts
the agent's symbolised fraction.

Inlined frames: perf (without --inline) reports the physical function as
leaf while the agent's leaf may be an inlined helper. Either compare only
functions that are never inlined, or pass --collapse-inlined HELPER so that
agent leaf frames matching HELPER are folded into their caller before
comparing. --expect-frame NAME checks NAME appears (as a substring of the
normalised name) in at least --expect-min percent of the agent's samples.

Whole stacks (for code without frame pointers): --inclusive compares the
listed functions' TOTAL shares (samples with the function anywhere in the
stack) instead of their self shares; --entry NAME,NAME,... compares the
share of stacks whose outermost frame is one of those names (`_start`,
`clone3`: the stack reached the program's entry) within --max-diff, and
--min-entry asserts the agent's share. --expect-root NAME --root-min P
asserts that P%% of the agent's stacks have an outermost frame holding NAME
(e.g. `[truncated: depth_limit]`), and --only-frames RE that every frame of
those stacks matches RE (no junk frames).

The last line printed is `RESULT passed=P failed=F` (for test scripts).
Exit status: 0 when every check passed, 1 otherwise, 2 on bad input.
Python 3 standard library only.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
from collections import Counter

OFFSET_RE = re.compile(r"\+0x[0-9a-fA-F]+$")
RUST_HASH_RE = re.compile(r"::h[0-9a-f]{16}$")
CLONE_RE = re.compile(r"(\.(isra|constprop|part|cold|llvm|lto_priv)(\.\d+)*)+$")
DEMANGLED_CLONE_RE = re.compile(r"\s*\[clone [^\]]*\]")
ABI_RE = re.compile(r"\[abi:[^\]]*\]")
UNSYM_RE = re.compile(r"^(\[unknown\]|.*\+0x[0-9a-fA-F]+)$")
# perf script frame line: `<addr> <sym>+<off> (<dso>)`, sym may hold spaces.
FRAME_RE = re.compile(r"^\s+([0-9a-fA-F]+)\s+(.*?)\s*\((.*)\)\s*$")


def strip_params(name):
    """Drops a trailing C++ parameter list and cv/ref qualifiers."""
    s = name.rstrip()
    while True:
        t = re.sub(r"\s*(const|volatile|&&|&|noexcept)$", "", s)
        if t == s:
            break
        s = t
    if not s.endswith(")"):
        return s
    depth = 0
    for i in range(len(s) - 1, -1, -1):
        c = s[i]
        if c == ")":
            depth += 1
        elif c == "(":
            depth -= 1
            if depth == 0:
                # `(anonymous namespace)` is a scope, not a parameter list.
                if i == 0 or s[:i].endswith("operator"):
                    return s
                return s[:i]
    return s


def normalize(name):
    """Normalises a function name for comparison (see module doc)."""
    s = name.strip()
    if s == "[unknown]":
        return s
    s = OFFSET_RE.sub("", s)
    s = RUST_HASH_RE.sub("", s)
    s = DEMANGLED_CLONE_RE.sub("", s)
    s = CLONE_RE.sub("", s)
    s = ABI_RE.sub("", s)
    s = strip_params(s)
    s = re.sub(r"\s+", "", s)
    return ALIASES.get(s, s)


# name -> the name standing for all names of its address (see alias_map)
ALIASES = {}
READELF_SYM_RE = re.compile(r"^\s*\d+:\s+([0-9a-fA-F]+)\s+\d+\s+(?:FUNC|IFUNC)\s+(\S+)\s+\S+"
                            r"\s+\S+\s+(\S+)\s*$")


def debug_file(path):
    """The debug file of an ELF file by its build-id, or None."""
    try:
        out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Build ID:\s*([0-9a-f]{4,})", out)
    if not m:
        return None
    bid = m.group(1)
    p = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:])
    return p if os.path.isfile(p) else None


def alias_map(dsos):
    """Groups the function names of each file (and its debug file) by
    address; every name of a group maps to the group's first (see the
    module doc). Files readelf cannot read are left out."""
    aliases = {}
    for dso in sorted(dsos):
        if not dso.startswith("/") or not os.path.isfile(dso):
            continue
        files = [dso]
        dbg = debug_file(dso)
        if dbg:
            files.append(dbg)
        groups = {}
        for fp in files:
            try:
                out = subprocess.run(["readelf", "-sW", fp], capture_output=True, text=True,
                                     errors="replace", timeout=120).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            for line in out.splitlines():
                m = READELF_SYM_RE.match(line)
                if not m or int(m.group(1), 16) == 0:
                    continue
                name = m.group(3).split("@")[0]
                key = (m.group(2) == "LOCAL", len(name) - len(name.lstrip("_")), name)
                groups.setdefault(m.group(1), set()).add(key)
        for keys in groups.values():
            names = {k[2] for k in keys}
            if len(names) < 2:
                continue
            first = min(keys)[2]
            for n in names:
                aliases.setdefault(n, first)
    return aliases


def is_unsymbolized(frame):
    return bool(UNSYM_RE.match(frame.strip()))


def perf_frame_name(sym, dso):
    """Turns perf's `sym+off` into a frame name; unresolved -> [unknown]."""
    sym = sym.strip()
    if not sym or sym.startswith("[unknown]"):
        return "[unknown]"
    return OFFSET_RE.sub("", sym)


def parse_perf_script(path, pid=None, dsos=None):
    """Yields (stack_root_first, weight) per sample of a perf script dump;
    adds the files its frames point into to the set @dsos."""
    with open(path, "r", errors="replace") as f:
        header = None
        frames = []
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if header is not None:
                    yield from _emit(header, frames, pid)
                header, frames = None, []
                continue
            if line[0] in " \t":
                m = FRAME_RE.match(line)
                if m and header is not None:
                    frames.append(perf_frame_name(m.group(2), m.group(3)))
                    if dsos is not None:
                        dsos.add(m.group(3))
                continue
            if header is not None:
                yield from _emit(header, frames, pid)
            header, frames = line, []
        if header is not None:
            yield from _emit(header, frames, pid)


def _emit(header, frames, pid):
    if pid is not None:
        parts = header.split()
        # `comm PID[/TID] [cpu] time: period event:`; comm may hold spaces.
        if not any(p.split("/")[0] == str(pid) for p in parts[1:4]):
            return
    if not frames:
        frames = ["[unknown]"]
    yield list(reversed(frames)), 1


def parse_folded(paths):
    """Yields (stack_root_first, count) from folded files/directories."""
    files = []
    for p in paths:
        if os.path.isdir(p):
            files.extend(sorted(glob.glob(os.path.join(p, "*.folded"))))
        else:
            files.append(p)
    if not files:
        raise FileNotFoundError("no .folded files in %s" % " ".join(paths))
    for fp in files:
        with open(fp, "r", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                stack, _, count = line.rpartition(" ")
                try:
                    n = int(count)
                except ValueError:
                    continue
                yield stack.split(";"), n


def self_shares(samples, collapse=()):
    """Returns (Counter normalised leaf -> weight, total, unsymbolised)."""
    leaf = Counter()
    total = unsym = 0
    collapse_n = [normalize(c) for c in collapse]
    for stack, n in samples:
        frames = list(stack)
        while len(frames) > 1 and any(c in normalize(frames[-1]) for c in collapse_n):
            frames.pop()
        top = frames[-1] if frames else "[unknown]"
        total += n
        if is_unsymbolized(top):
            unsym += n
            leaf["[unknown]"] += n
        else:
            leaf[normalize(top)] += n
    return leaf, total, unsym


def total_shares(samples, names):
    """Returns {normalised name: weight of samples holding it anywhere}, total."""
    want = {normalize(n) for n in names}
    got = Counter()
    total = 0
    for stack, n in samples:
        total += n
        for k in want & {normalize(fr) for fr in stack}:
            got[k] += n
    return got, total


def is_entry(frame, names):
    """True when frame is one of names (`__clone3` is `clone3`), or, for a
    name BINARY+0xLO-0xHI, an unsymbolised address of BINARY in [LO, HI)
    (the entry point of a stripped binary)."""
    f = frame.strip()
    for n in names:
        m = re.match(r"^(.*)\+0x([0-9a-fA-F]+)-0x([0-9a-fA-F]+)$", n)
        if m:
            fm = re.match(r"^(.*)\+0x([0-9a-fA-F]+)$", f)
            if fm and os.path.basename(fm.group(1)) == m.group(1) and \
                    int(m.group(2), 16) <= int(fm.group(2), 16) < int(m.group(3), 16):
                return True
        elif normalize(f).lstrip("_") == normalize(n).lstrip("_"):
            return True
    return False


def root_share(samples, names):
    """Weight of samples whose outermost frame is an entry, total."""
    hit = total = 0
    for stack, n in samples:
        total += n
        if stack and is_entry(stack[0], names):
            hit += n
    return hit, total


def frame_presence(samples, name):
    """Weight of samples with a frame whose normalised name contains name."""
    want = normalize(name)
    hit = total = 0
    for stack, n in samples:
        total += n
        if any(want in normalize(fr) for fr in stack):
            hit += n
    return hit, total


def pct(n, total):
    return 100.0 * n / total if total else 0.0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("perf_script", help="perf script output (text)")
    ap.add_argument("folded", nargs="+", help="agent folded dir or files")
    ap.add_argument("-f", "--function", action="append", default=[],
                    help="function to compare (repeatable); default: perf's top N")
    ap.add_argument("--top", type=int, default=5, help="perf's top N when no -f (5)")
    ap.add_argument("--min-share", type=float, default=3.0,
                    help="with --top, skip functions under this perf%% (3.0)")
    ap.add_argument("--max-diff", type=float, default=2.0,
                    help="allowed |perf%% - stoke%%| in points (2.0)")
    ap.add_argument("--min-symbolized", type=float, default=None,
                    help="minimum %% of agent samples with a symbolised leaf")
    ap.add_argument("--collapse-inlined", action="append", default=[],
                    help="fold agent leaf frames matching NAME into their caller")
    ap.add_argument("--expect-frame", action="append", default=[],
                    help="NAME must appear in the agent's stacks (repeatable)")
    ap.add_argument("--expect-min", type=float, default=1.0,
                    help="min %% of agent samples holding an --expect-frame (1.0)")
    ap.add_argument("--pid", type=int, default=None,
                    help="only count perf samples of this PID")
    ap.add_argument("--min-samples", type=int, default=200,
                    help="minimum samples on each side (200)")
    ap.add_argument("--z-min", type=float, default=None,
                    help="a share differing by more than --max-diff fails only when the "
                         "difference is also this many standard errors (two independent "
                         "samplings of one process; guards short runs on a busy machine)")
    ap.add_argument("--drop", action="append", default=[],
                    help="leave out samples holding this frame, on both sides (a phase "
                         "of the workload the two recorders may have covered differently)")
    ap.add_argument("--inclusive", action="store_true",
                    help="compare total (inclusive) shares of the -f functions")
    ap.add_argument("--entry", default=None,
                    help="comma-separated outermost frames that mean 'reached the entry'")
    ap.add_argument("--min-entry", type=float, default=None,
                    help="minimum %% of agent stacks reaching --entry")
    ap.add_argument("--expect-root", default=None,
                    help="NAME held by the outermost frame of --root-min %% of agent stacks")
    ap.add_argument("--root-min", type=float, default=90.0)
    ap.add_argument("--only-frames", default=None,
                    help="regex every frame of the --expect-root stacks must match")
    args = ap.parse_args(argv)

    try:
        dsos = set()
        perf_samples = list(parse_perf_script(args.perf_script, args.pid, dsos))
        agent_samples = list(parse_folded(args.folded))
    except OSError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    ALIASES.update(alias_map(dsos))
    if args.drop:
        drop = {normalize(d) for d in args.drop}
        perf_samples = [(st, n) for st, n in perf_samples
                        if not drop & {normalize(f) for f in st}]
        agent_samples = [(st, n) for st, n in agent_samples
                         if not drop & {normalize(f) for f in st}]

    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL: %s" % what)

    p_leaf, p_total, p_unsym = self_shares(perf_samples)
    a_leaf, a_total, a_unsym = self_shares(agent_samples, args.collapse_inlined)
    print("samples: perf %d, stoke %d" % (p_total, a_total))
    check(p_total >= args.min_samples, "perf has %d samples (< %d)" % (p_total, args.min_samples))
    check(a_total >= args.min_samples,
          "stoke has %d samples (< %d)" % (a_total, args.min_samples))

    if args.function:
        funcs = [(f, normalize(f)) for f in args.function]
    else:
        funcs = [(k, k) for k, v in p_leaf.most_common()
                 if k != "[unknown]" and pct(v, p_total) >= args.min_share][:args.top]

    if args.inclusive:
        p_cmp, _ = total_shares(perf_samples, [k for _, k in funcs])
        a_cmp, _ = total_shares(agent_samples, [k for _, k in funcs])
    else:
        p_cmp, a_cmp = p_leaf, a_leaf
    width = max([len(f) for f, _ in funcs] + [24])
    print("%-*s %8s %8s %7s" % (width, "total of" if args.inclusive else "function", "perf%",
                                "stoke%", "diff"))
    def significant(diff, pp, ap_, pn, an):
        """|diff| in points is beyond what sampling noise explains (--z-min)."""
        if args.z_min is None or pn == 0 or an == 0:
            return True
        p = (pp * pn + ap_ * an) / (100.0 * (pn + an))
        se = 100.0 * (p * (1 - p) * (1.0 / pn + 1.0 / an)) ** 0.5
        return se == 0 or abs(diff) / se >= args.z_min

    for shown, key in funcs:
        pp, ap_ = pct(p_cmp.get(key, 0), p_total), pct(a_cmp.get(key, 0), a_total)
        diff = ap_ - pp
        bad = abs(diff) > args.max_diff and significant(diff, pp, ap_, p_total, a_total)
        missing = key not in p_cmp or key not in a_cmp
        print("%-*s %8.2f %8.2f %+7.2f%s" % (width, shown, pp, ap_, diff,
                                             "  MISSING" if missing else ("  FAIL" if bad else "")))
        where = " and ".join(n for n, d in (("perf", p_cmp), ("stoke", a_cmp)) if key not in d)
        check(not missing, "%s missing from %s" % (shown, where))
        check(not bad, "%s differs by %+.2f points (> %.2f)" % (shown, diff, args.max_diff))

    # Informational: the remaining top leaves on both sides.
    others = [k for k, _ in (p_leaf + a_leaf).most_common(12) if k not in dict(funcs).values()]
    if others:
        print("-- other leaves --")
        for k in others[:8]:
            print("%-*s %8.2f %8.2f" % (width, k, pct(p_leaf.get(k, 0), p_total),
                                        pct(a_leaf.get(k, 0), a_total)))

    sym = 100.0 - pct(a_unsym, a_total)
    print("symbolized leaf: perf %.2f%%, stoke %.2f%%" % (100.0 - pct(p_unsym, p_total), sym))
    if args.min_symbolized is not None:
        check(sym >= args.min_symbolized,
              "stoke symbolized %.2f%% < %.2f%%" % (sym, args.min_symbolized))

    for name in args.expect_frame:
        hit, tot = frame_presence(agent_samples, name)
        print("frame %s: in %.2f%% of stoke samples" % (name, pct(hit, tot)))
        check(pct(hit, tot) >= args.expect_min,
              "frame %s in %.2f%% of stoke samples (< %.2f%%)" % (name, pct(hit, tot),
                                                                 args.expect_min))

    if args.entry:
        names = [n for n in args.entry.split(",") if n]
        ph, pt = root_share(perf_samples, names)
        ah, at = root_share(agent_samples, names)
        diff = pct(ah, at) - pct(ph, pt)
        print("stacks reaching %s: perf %.2f%%, stoke %.2f%% (%+.2f)" % (
            "/".join(names), pct(ph, pt), pct(ah, at), diff))
        check(abs(diff) <= args.max_diff or not significant(diff, pct(ph, pt), pct(ah, at), pt, at),
              "stacks reaching the entry differ by %+.2f points (> %.2f)" % (diff, args.max_diff))
        if args.min_entry is not None:
            check(pct(ah, at) >= args.min_entry,
                  "stoke: %.2f%% of stacks reach the entry (< %.2f%%)" % (pct(ah, at),
                                                                          args.min_entry))
        roots = Counter()
        for stack, n in agent_samples:
            if stack and not is_entry(stack[0], names):
                roots[stack[0]] += n
        for r, n in roots.most_common(5):
            print("  stoke root %-40s %6.2f%%" % (r, pct(n, at)))

    if args.expect_root:
        hit = total = 0
        junk = Counter()
        frame_re = re.compile(args.only_frames) if args.only_frames else None
        for stack, n in agent_samples:
            total += n
            if stack and args.expect_root in stack[0]:
                hit += n
                if frame_re:
                    for fr in stack[1:]:
                        if not frame_re.search(fr):
                            junk[fr] += n
        print("stacks rooted at %s: %.2f%%" % (args.expect_root, pct(hit, total)))
        check(pct(hit, total) >= args.root_min, "%.2f%% of stoke stacks rooted at %s (< %.2f%%)" % (
            pct(hit, total), args.expect_root, args.root_min))
        if frame_re:
            for fr, n in junk.most_common(5):
                print("  unexpected frame %s in %d samples" % (fr, n))
            check(not junk, "frames outside /%s/ in stacks rooted at %s" % (args.only_frames,
                                                                          args.expect_root))

    print("RESULT passed=%d failed=%d" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
