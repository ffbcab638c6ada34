#!/usr/bin/env python3
"""calibrate.py - the diversity of one host's profiles, from the agent's
output (bench/calibrate.sh runs it): what `stoke-query generate --model`
must reproduce.

Usage: calibrate.py --out-dir DIR --store DIR --seconds S [--json OUT]

Reads every DIR/<service>/<window start ns>.pb.gz (the pprof of one
service's window, as the agent also encodes it into its store segments)
and the store's objects, and prints:
  windows, services            windows seen, services with samples
  rows_per_window              pprof samples (distinct stack x label set)
  rows_per_host_hour           rows over the run, scaled to an hour
  samples_per_row              sample weight per row
  stacks_run, functions_run, label_sets_run
                               distinct over the run (stack = service + frames)
  stacks_per_host_hour ...     the run's distinct counts extrapolated to an
                               hour: the first window's count, plus the mean
                               number of never-seen stacks per later window
                               times the windows of an hour
  depth_deciles                frames per row: 10th..100th percentiles
  top1_share, top10_share      share of samples in the hottest 1% / 10% of a
                               window's rows (mean over windows)
  zipf_s                       the exponent s that gives the measured top-1%
                               share with the generator's row weights
                               1 + extra * rank^-s / H (model_top10_share:
                               the top-10% share the model then gives)
  functions_run                distinct frames (unnamed ones by address;
                               named_functions_run: the named ones)
  churn_prev                   share of a window's stacks absent from the
                               window before (mean over windows 2..n)
  churn_new                    share of a window's stacks never seen before
  store_objects_per_host_hour, store_bytes_per_host_hour
"""
import argparse
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unwind_stacks import fields, ints  # noqa: E402
import gzip  # noqa: E402


def read_rows(path):
    """[(weight, (frame names root first), (label k=v, ...))] of one pprof."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    strings, functions, locations, samples = [], {}, {}, []
    for f, wt, v in fields(data):
        if f == 6:
            strings.append(v.decode("utf-8", "replace"))
        elif f == 2:
            locs, vals, labels = [], [], []
            for g, gwt, gv in fields(v):
                if g == 1:
                    locs += ints(gwt, gv)
                elif g == 2:
                    vals += ints(gwt, gv)
                elif g == 3:
                    d = {h: hv for h, _, hv in fields(gv)}
                    labels.append((d.get(1, 0), d.get(2, 0), d.get(3, 0)))
            samples.append((vals[0] if vals else 0, locs, labels))
        elif f == 5:
            d = {g: gv for g, _, gv in fields(v)}
            functions[d.get(1, 0)] = d.get(2, 0)
        elif f == 4:
            lid, fids, addr = 0, [], 0
            for g, _, gv in fields(v):
                if g == 1:
                    lid = gv
                elif g == 3:
                    addr = gv
                elif g == 4:
                    fids.append({h: hv for h, _, hv in fields(gv)}.get(1, 0))
            # an unnamed frame counts as its address
            locations[lid] = fids or [-1 - addr]

    def s(i):
        return strings[i] if 0 <= i < len(strings) else ""

    out = []
    for w, locs, labels in samples:
        frames = []
        for lid in reversed(locs):  # root first
            for fid in reversed(locations.get(lid, [0])):
                frames.append(s(functions.get(fid, 0)) if fid >= 0 else "0x%x" % (-1 - fid))
        lab = tuple(sorted("%s=%s" % (s(k), s(sv) if sv else n) for k, sv, n in labels
                           if s(k) not in ("host_name",)))
        out.append((w, tuple(frames), lab))
    return out


def pct(sorted_vals, q):
    if not sorted_vals:
        return 0
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def model_top(n, spr, s, share):
    """The hottest rows' share of samples (share: 0.01 for the top 1%) that
    `generate --model` gives n rows of spr samples each on average with
    exponent s: row r weighs 1 + n * (spr - 1) * r^-s / H."""
    w = [r ** -s for r in range(1, n + 1)]
    h = sum(w)
    w = [1 + n * (spr - 1) * x / h for x in w]
    return sum(w[:max(1, int(n * share))]) / sum(w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--json")
    a = ap.parse_args()

    windows = {}  # window start -> [(service, weight, frames, labels)]
    for path in glob.glob(os.path.join(a.out_dir, "*", "*.pb.gz")):
        svc = os.path.basename(os.path.dirname(path))
        t = os.path.basename(path).split(".")[0]
        for w, fr, lab in read_rows(path):
            windows.setdefault(t, []).append((svc, w, fr, lab))
    keys = sorted(windows)
    # the first and last windows are partial (the agent starts and stops)
    if len(keys) > 4:
        keys = keys[1:-1]
    if not keys:
        sys.exit("calibrate.py: no windows in %s" % a.out_dir)
    rows = [windows[k] for k in keys]
    window_s = (int(keys[-1]) - int(keys[0])) / 1e9 / max(1, len(keys) - 1) if len(keys) > 1 else 10
    n_rows = sum(len(r) for r in rows)
    samples = sum(w for r in rows for _, w, _, _ in r)
    span_h = len(keys) * window_s / 3600
    stacks, rowkeys, funcs, labsets, services = set(), set(), set(), set(), set()
    depths, top1, top10, churn_prev, churn_new, new_per_window = [], [], [], [], [], []
    prev = None
    for i, r in enumerate(rows):
        cur = set()
        ws = sorted((w for _, w, _, _ in r), reverse=True)
        tot = sum(ws) or 1
        top1.append(sum(ws[:max(1, len(ws) // 100)]) / tot)
        top10.append(sum(ws[:max(1, len(ws) // 10)]) / tot)
        for svc, w, fr, lab in r:
            cur.add((svc, fr, lab))
            stacks.add((svc, fr))
            depths.append(len(fr))
            funcs.update(fr)
            labsets.add((svc, lab))
            services.add(svc)
        new = len(cur - rowkeys)
        if i:
            new_per_window.append(new)
            churn_new.append(new / max(1, len(cur)))
            churn_prev.append(len(cur - prev) / max(1, len(cur)))
        rowkeys |= cur
        prev = cur
    depths.sort()
    wph = 3600 / window_s
    first = len(set((s, f, lab) for s, _, f, lab in rows[0]))
    mean_new = sum(new_per_window) / len(new_per_window) if new_per_window else 0
    rpw = n_rows / len(rows)
    spr = samples / max(1, n_rows)
    t1 = sum(top1) / len(top1)
    lo, hi = 0.0, 6.0
    for _ in range(40):  # the exponent that gives the measured top-1% share
        mid = (lo + hi) / 2
        if model_top(int(rpw), spr, mid, 0.01) < t1:
            lo = mid
        else:
            hi = mid
    objs = [os.path.getsize(p) for p in glob.glob(os.path.join(a.store, "**", "*"), recursive=True)
            if os.path.isfile(p)]
    res = {
        "seconds": a.seconds, "windows": len(rows), "window_s": round(window_s, 1),
        "services": len(services),
        "rows_per_window": round(rpw, 1),
        "rows_per_host_hour": round(n_rows / span_h),
        "samples_per_row": round(samples / max(1, n_rows), 3),
        "samples_per_host_hour": round(samples / span_h),
        "stacks_run": len(stacks), "rows_distinct_run": len(rowkeys),
        "functions_run": len(funcs),
        "named_functions_run": sum(1 for f in funcs if not f.startswith("0x")), "label_sets_run": len(labsets),
        "distinct_rows_per_host_hour": round(first + mean_new * (wph - 1)),
        "depth_deciles": [pct(depths, q / 10) for q in range(1, 10)] + [depths[-1]],
        "depth_mean": round(sum(depths) / len(depths), 1),
        "top1_share": round(sum(top1) / len(top1), 3),
        "top10_share": round(sum(top10) / len(top10), 3),
        "zipf_s": round((lo + hi) / 2, 3),
        "model_top10_share": round(model_top(int(rpw), spr, (lo + hi) / 2, 0.1), 3),
        "churn_prev": round(sum(churn_prev) / max(1, len(churn_prev)), 3),
        "churn_new": round(sum(churn_new) / max(1, len(churn_new)), 3),
        "store_objects_per_host_hour": round(len(objs) * 3600 / a.seconds, 1),
        "store_bytes_per_host_hour": round(sum(objs) * 3600 / a.seconds),
    }
    print(json.dumps(res, indent=1))
    # the constants of query/jobs/generate.c's calibrated model
    print("#define MODEL_ROWS %d\n#define MODEL_SAMPLES_PER_ROW %.3f\n#define MODEL_ZIPF %.3f\n"
          "#define MODEL_CHURN %.3f\n#define MODEL_CHURN_NEW %.3f\n#define MODEL_FUNCTIONS %d\n"
          "#define MODEL_LABEL_SETS %d\n#define MODEL_SERVICES_PER_HOST %d\n"
          "#define MODEL_DEPTH_DECILES %s" % (
              round(rpw), spr, res["zipf_s"], res["churn_prev"], res["churn_new"], res["named_functions_run"],
              max(1, round(len(labsets) / max(1, len(services)))), len(services),
              ", ".join(str(max(1, d)) for d in res["depth_deciles"])))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
