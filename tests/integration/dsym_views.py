#!/usr/bin/env python3
"""dsym_views.py - self value per function from one of stoke-query's views,
for tests/integration/test_deferred_symbols.sh.

Usage:
  dsym_views.py selfs KIND FILE      prints {"name": self, ...} as JSON
      KIND: top (/api/v1/top JSON), flamebearer (/pyroscope/render JSON or
      SelectMergeStacktraces JSON: its "flamegraph"), pprof (gzip'd pprof of
      /api/v1/pprof: the self of each sample's leaf line)
  dsym_views.py unnamed SELFS.json MODULE...   prints the self of the
      names spelt MODULE+0x<hex>, and the total, as "UNNAMED TOTAL"
  dsym_views.py compare A.json B.json MAXDIFF MINSHARE
      the two agents' self shares: exits 1 when a function's share differs
      by more than MAXDIFF percentage points, or when a function with at
      least MINSHARE % in one is missing from the other; prints the table
Python 3 standard library only.
"""

import gzip
import json
import re
import sys


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return v, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v = b[i:i + n]
            i += n
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield f, wt, v


def packed(wt, v):
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def pprof_selfs(data):
    strings, funcs, locs, samples = [], {}, {}, []
    for f, wt, v in fields(data):
        if f == 6:
            strings.append(v.decode("utf-8", "replace"))
        elif f == 5:
            fid = name = 0
            for g, _, w in fields(v):
                if g == 1:
                    fid = w
                elif g == 2:
                    name = w
            funcs[fid] = name
        elif f == 4:
            lid, lines = 0, []
            for g, _, w in fields(v):
                if g == 1:
                    lid = w
                elif g == 4:
                    fn = 0
                    for h, _, x in fields(w):
                        if h == 1:
                            fn = x
                    lines.append(fn)
            locs[lid] = lines
        elif f == 2:
            ids, vals = [], []
            for g, w2, w in fields(v):
                if g == 1:
                    ids += packed(w2, w)
                elif g == 2:
                    vals += packed(w2, w)
            samples.append((ids, vals))
    out = {}
    for ids, vals in samples:
        if not ids or not vals or not locs.get(ids[0]):
            continue
        name = strings[funcs[locs[ids[0]][0]]]
        out[name] = out.get(name, 0) + vals[-1]
    return out


def flamebearer_selfs(d):
    fb = d.get("flamebearer") or d.get("flamegraph") or d
    names, out = fb["names"], {}
    for level in fb["levels"]:
        if isinstance(level, dict):  # Connect JSON: {"values": [...]}
            level = level.get("values", [])
        level = [int(x) for x in level]
        for k in range(0, len(level) - 3, 4):
            s, n = level[k + 2], names[level[k + 3]]
            if s:
                out[n] = out.get(n, 0) + s
    return out


def main():
    cmd = sys.argv[1]
    if cmd == "selfs":
        kind, path = sys.argv[2], sys.argv[3]
        raw = open(path, "rb").read()
        if kind == "top":
            out = {f["name"]: f["self"] for f in json.loads(raw)["functions"] if f["self"]}
        elif kind == "flamebearer":
            out = flamebearer_selfs(json.loads(raw))
        else:
            out = pprof_selfs(gzip.decompress(raw))
        json.dump(out, sys.stdout)
        print()
    elif cmd == "unnamed":
        selfs = json.load(open(sys.argv[2]))
        rx = re.compile(r"^(%s)\+0x[0-9a-f]+$" % "|".join(re.escape(m) for m in sys.argv[3:]))
        print(sum(v for k, v in selfs.items() if rx.match(k)), sum(selfs.values()))
    elif cmd == "compare":
        a, b = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
        maxdiff, minshare = float(sys.argv[4]), float(sys.argv[5])
        ta, tb = sum(a.values()) or 1, sum(b.values()) or 1
        bad = 0
        rows = sorted(set(a) | set(b), key=lambda n: -(a.get(n, 0) / ta + b.get(n, 0) / tb))
        for n in rows:
            sa, sb = 100.0 * a.get(n, 0) / ta, 100.0 * b.get(n, 0) / tb
            miss = (n not in a and sb >= minshare) or (n not in b and sa >= minshare)
            off = abs(sa - sb) > maxdiff or miss
            bad += off
            if off or max(sa, sb) >= 1:
                print("  %-40s %6.2f%% %6.2f%%%s" % (n[:40], sa, sb, "  <-- differs" if off else ""))
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
