#!/usr/bin/env python3
"""report.py - folds one `make bench` run (bench/run.sh's temporary
directory) into build/bench/results.json and a Markdown table
(build/bench/results.md, also printed). Python 3 standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import re

TOOLS = [("stoke", "stoke-agent"), ("perf", "perf record -a -g"),
         ("bpftrace", "bpftrace profile:hz"), ("bcc", "bcc profile")]
PROCS = ["bhot_c", "bhot_syscall"]
MIB = 1 << 20


def load(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def text(path, default=""):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def size(path):
    try:
        if os.path.isdir(path):
            return sum(os.path.getsize(os.path.join(d, f))
                       for d, _, fs in os.walk(path) for f in fs)
        return os.path.getsize(path)
    except OSError:
        return None


def num(rx, s, conv=float):
    m = re.search(rx, s)
    return conv(m.group(1)) if m else None


def machine():
    model = None
    for line in text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"kernel": platform.release(), "cpus": os.cpu_count(), "cpu_model": model,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "hostname": platform.node(), "loadavg_at_end": text("/proc/loadavg").split()[:3]}


def loadavg_at_start(d):
    return text(os.path.join(d, "loadavg.start")).split()


def stoke_log(log):
    line = [ln for ln in log.splitlines() if "stopped after" in ln]
    store = [ln for ln in log.splitlines() if "objects uploaded" in ln]
    s = line[-1] if line else ""
    st = store[-1] if store else ""
    return {
        "samples": num(r"(\d+) samples drained", s, int),
        "rows": num(r"drained in (\d+) rows", s, int),
        "windows": num(r"stopped after (\d+) windows", s, int),
        "agent_cpu_s_logged": num(r"agent CPU ([0-9.]+) s", s),
        "steady_cpu_pct_logged": num(r"steady state ([0-9.]+)% of a core", s),
        "peak_rss_mb_logged": num(r"peak RSS ([0-9.]+) MB", s),
        "bpf_ns_per_sample": num(r"BPF (\d+) ns/sample", s, int),
        "symbol_cache_hit_pct": num(r"hit rate ([0-9.]+)%", s),
        "store_objects": num(r"(\d+) objects uploaded", st, int),
        "store_bytes_logged": num(r"uploaded \((\d+) bytes\)", st, int),
        "log_line": s.strip(),
    }


def unwind_log(log):
    """The agent's own unwinding figures: its start line (which walker) and
    its "unwinding:" line (table walk only)."""
    start = [ln for ln in log.splitlines() if "user stacks by" in ln]
    line = [ln for ln in log.splitlines() if "unwinding:" in ln]
    u = line[-1] if line else ""
    r = {"walker": num(r"user stacks by ([a-z ]+)", start[-1], str) if start else None}
    if u:
        r.update({
            "frames_per_walk": num(r"([0-9.]+) user frames per walk", u),
            "frames_by_tables": num(r"\((\d+) by tables", u, int),
            "frames_by_frame_pointers": num(r"(\d+) by frame pointers", u, int),
            "walks_entry_pct": num(r"([0-9.]+)% of walks reached the entry", u),
            "walks_not_loaded_pct": num(r"([0-9.]+)% not loaded yet", u),
            "tables": num(r"(\d+) tables \(", u, int),
            "table_mb": num(r"\(([0-9.]+) MB in BPF maps\)", u),
            "processes": num(r"for (\d+) processes", u, int),
            "binaries_without_table": num(r"(\d+) binaries without one", u, int),
            "table_build_ms": num(r"([0-9.]+) ms\s+to build", u),
            "lost_stack_samples": num(r"(\d+) samples under a lost-stack frame", u, int),
            "unwinding_log_line": u.strip(),
        })
    return r


def unwinding(p, a, freq):
    """The unwinding stage: the agent with --unwind fp and --unwind auto on
    the mix plus node and python3 (bench/run.sh step 5), and the targets of
    GitHub issue #12."""
    modes = {}
    stacks = load(p("unwind_stacks.json"), {})
    for mode in ("fp", "auto"):
        name = "unwind_" + mode
        status = text(p(name + ".status"), "not run").strip()
        m = load(p(name + ".measure.json"), {})
        r = {"status": status, "command": m.get("command")}
        if status == "ok":
            log = text(p(name + ".err"))
            sl = stoke_log(log)
            sw = m.get("steady_wall_s")
            kb = lambda k: round(m[k] / 1024, 1) if m.get(k) else None  # noqa: E731
            r.update({
                "samples": sl["samples"], "bpf_ns_per_sample": sl["bpf_ns_per_sample"],
                "cpu_s": m.get("cpu_s"), "steady_cpu_s": m.get("steady_cpu_s"),
                "steady_cpu_pct_of_core": round(100 * m["steady_cpu_s"] / sw, 3) if sw else None,
                "startup_s": m.get("startup_s"), "peak_rss_mb": kb("peak_rss_kb"),
                "steady_rss_mb": kb("steady_rss_kb"), "steady_rss_max_mb": kb("steady_rss_max_kb"),
                "log_line": sl["log_line"]})
            r.update(unwind_log(log))
        maps = load(p(name + ".maps.json"))
        if maps and maps.get("max"):
            mx, last = maps["max"], maps["last"]
            r["bpf_maps"] = {
                "snapshots": len(maps["snapshots"]), "interval_s": maps["interval_s"],
                "table_maps": mx["tables"], "table_bytes": mx["table_bytes"],
                "table_bytes_last": last["table_bytes"],
                "bench_tables": mx.get("bench_tables"), "bench_table_bytes": mx.get("bench_table_bytes"),
                "other_maps": mx["other_maps"], "other_bytes": mx["other_bytes"],
                "other_bytes_last": last["other_bytes"], "others": mx["others"],
                "largest_tables": maps.get("binaries", [])[:8]}
        elif maps is not None or os.path.exists(p(name + ".maps.err")):
            r["bpf_maps"] = {"error": (maps or {}).get("error") or
                             text(p(name + ".maps.err")).strip()[-200:] or "no snapshot"}
        st = stacks.get(mode)
        if st:
            r["stacks"] = st
        modes[mode] = r
    fp, tb = modes["fp"], modes["auto"]
    res = {"seconds": a.unwind_seconds, "frequency_hz": freq,
           "workload": "the mix plus bench/busy.js (node, service bnode) and bench/busy.py "
                       "(/usr/bin/python3, service bpython3), no flags",
           "loadavg_start": text(p("unwind.loadavg.start")).split(),
           "loadavg_end": text(p("unwind.loadavg.end")).split(),
           "processes_on_host": int(text(p("unwind.procs"), "0").strip() or 0),
           "busy_status": {k: text(p(k + ".status")).strip() or "ran" for k in ("bnode", "bpython3")},
           "fp": fp, "tables": tb, "targets": {}}
    t = res["targets"]
    if fp.get("bpf_ns_per_sample") and tb.get("bpf_ns_per_sample") is not None:
        ratio = tb["bpf_ns_per_sample"] / fp["bpf_ns_per_sample"]
        t["bpf_ns_ratio"] = {"measured": round(ratio, 2), "target": "<= 2", "met": ratio <= 2}
    bm = tb.get("bpf_maps") or {}
    if bm.get("table_bytes") is not None:
        t["table_map_bytes"] = {"measured": bm["table_bytes"], "target": "<= 16 MiB",
                                "met": bm["table_bytes"] <= 16 * MIB}
        if bm.get("bench_table_bytes") is not None:
            t["table_map_bytes_bench_binaries"] = {
                "measured": bm["bench_table_bytes"], "target": "<= 16 MiB",
                "met": bm["bench_table_bytes"] <= 16 * MIB}
    if tb.get("steady_rss_mb") is not None:
        t["steady_rss_mb"] = {"measured": tb["steady_rss_mb"], "target": "<= 30",
                              "met": tb["steady_rss_mb"] <= 30}
    return res


def unwinding_md(u):
    """Markdown lines for the unwinding stage."""
    fp, tb = u["fp"], u["tables"]
    L = ["### Unwinding: frame-pointer walk vs table walk", ""]
    L.append("The mix plus a CPU-busy node and Debian's python3 (bnode, bpython3; %d processes on "
             "the host), the agent once per walker, %g s each at %g Hz (BENCH_FREQ), one after "
             "the other. Load average (1/5/15 min) %s at the start, %s at the end." % (
                 u["processes_on_host"], u["seconds"], u["frequency_hz"],
                 "/".join(u["loadavg_start"]) or "?", "/".join(u["loadavg_end"]) or "?"))
    for k, v in u["busy_status"].items():
        if v != "ran":
            L.append("%s: %s." % (k, v))
    L.append("")
    if fp["status"] != "ok" or tb["status"] != "ok":
        L.append("--unwind fp: %s; --unwind auto: %s" % (fp["status"], tb["status"]))
        L.append("")

    def row(label, f, fmt_="%s"):
        cells = []
        for r in (fp, tb):
            try:
                v = f(r)
            except (KeyError, TypeError, ZeroDivisionError):
                v = None
            cells.append("-" if v is None else fmt_ % v)
        L.append("| %s | %s | %s |" % (label, cells[0], cells[1]))

    L.append("| | --unwind fp | --unwind auto (tables) |")
    L.append("|---|---:|---:|")
    row("walker (agent's start line)", lambda r: r.get("walker"))
    row("BPF ns per sample (bpf_stats run_time_ns / run_cnt)", lambda r: r["bpf_ns_per_sample"], "%d")
    row("samples", lambda r: r["samples"], "%d")
    row("agent CPU-s, start to exit", lambda r: r["cpu_s"], "%.3f")
    row("agent steady CPU, % of a core", lambda r: r["steady_cpu_pct_of_core"], "%.3f")
    row("agent start-up s (to sampling)", lambda r: r["startup_s"], "%.1f")
    row("agent peak RSS MB", lambda r: r["peak_rss_mb"], "%.1f")
    row("agent steady RSS MB (end / max of the steady state)",
        lambda r: "%.1f / %.1f" % (r["steady_rss_mb"], r["steady_rss_max_mb"]))
    for svc in ("bhot_c", "bhot_syscall", "bnode", "bpython3"):
        row("%s: user frames per sample; %% reaching the entry" % svc,
            lambda r, s=svc: "%.1f; %.1f%%" % (r["stacks"]["services"][s]["user_frames_per_sample"],
                                                r["stacks"]["services"][s]["entry_pct"]))
    row("all processes: user frames per sample; % reaching the entry; % truncated",
        lambda r: "%.1f; %.1f%%; %.1f%%" % (r["stacks"]["all"]["user_frames_per_sample"],
                                             r["stacks"]["all"]["entry_pct"],
                                             r["stacks"]["all"]["truncated_pct"]))
    row("agent's count: frames per walk; walks reaching the entry; not loaded yet",
        lambda r: "%.1f; %.1f%%; %.1f%%" % (r["frames_per_walk"], r["walks_entry_pct"],
                                             r["walks_not_loaded_pct"]))
    row("agent's count: tables, MiB; binaries without one; build ms",
        lambda r: "%d, %.1f MiB; %d; %.0f ms" % (r["tables"], r["table_mb"] * 1e6 / MIB,
                                                 r["binaries_without_table"], r["table_build_ms"]))
    row("bpftool: stoke_uw_table maps, bytes_memlock (max / last snapshot)",
        lambda r: "%d, %.1f / %.1f MiB" % (r["bpf_maps"]["table_maps"], r["bpf_maps"]["table_bytes"] / MIB,
                                           r["bpf_maps"]["table_bytes_last"] / MIB))
    row("… of which binaries the bench's processes map",
        lambda r: "%d, %.1f MiB" % (r["bpf_maps"]["bench_tables"], r["bpf_maps"]["bench_table_bytes"] / MIB))
    row("bpftool: the agent's other BPF maps, bytes_memlock",
        lambda r: "%d maps, %.1f MiB" % (r["bpf_maps"]["other_maps"], r["bpf_maps"]["other_bytes"] / MIB))
    L.append("")
    bm = tb.get("bpf_maps") or {}
    if bm.get("others"):
        L.append("Other maps (table walk run): " + ", ".join(
            "%s %.2f MiB" % (k, v["bytes"] / MIB)
            for k, v in sorted(bm["others"].items(), key=lambda kv: -kv[1]["bytes"])
            if v["bytes"] >= 50000) + ".")
    if bm.get("largest_tables"):
        L.append("Largest tables: " + ", ".join(
            "%s %.2f MiB%s" % (b["path"], b["bytes"] / MIB,
                               ("" if b["bench"] else " (not the bench's)") +
                               ("" if b.get("mapped_now", True) else " (no process maps it now)"))
            for b in bm["largest_tables"][:6]) + ".")
    if bm.get("error"):
        L.append("bpftool sampling: %s" % bm["error"])
    L.append("")
    t = u["targets"]
    L.append("Target (issue #12) | measured | met?")
    L.append("---|---:|---")

    def met(k):
        return ("**met**" if t[k]["met"] else "**not met**") if k in t else "not measured"
    L.append("table walk BPF ns per sample ≤ 2× the FP walk's | %s | %s" % (
        "%.2f× (%s / %s ns)" % (t["bpf_ns_ratio"]["measured"], tb.get("bpf_ns_per_sample"),
                                fp.get("bpf_ns_per_sample")) if "bpf_ns_ratio" in t else "-",
        met("bpf_ns_ratio")))
    L.append("tables ≤ 16 MiB of BPF map memory (bpftool bytes_memlock, max while running) | %s | %s" % (
        "%.1f MiB" % (bm["table_bytes"] / MIB) if "table_map_bytes" in t else "-", met("table_map_bytes")))
    if "table_map_bytes_bench_binaries" in t:
        L.append("… counting only binaries the bench's processes map | %.1f MiB | %s" % (
            bm["bench_table_bytes"] / MIB, met("table_map_bytes_bench_binaries")))
    L.append("agent steady RSS ≤ 30 MB (table walk) | %s | %s" % (
        "%.1f MB" % tb["steady_rss_mb"] if "steady_rss_mb" in t else "-", met("steady_rss_mb")))
    L.append("")
    for r, lab in ((fp, "fp"), (tb, "auto")):
        for k in ("log_line", "unwinding_log_line"):
            if r.get(k):
                L.append("Agent log (--unwind %s): `%s`" % (lab, r[k]))
                L.append("")
    return L


def fmt(v, f="%.2f", none="-"):
    return none if v is None else f % v


def main():
    ap = argparse.ArgumentParser()
    for a in ("--dir", "--json", "--md"):
        ap.add_argument(a, required=True)
    for a in ("--seconds", "--freq", "--hf-freq", "--idle", "--churn-rate", "--window", "--wall"):
        ap.add_argument(a, type=float, required=True)
    ap.add_argument("--unwind-seconds", type=float, default=0)
    a = ap.parse_args()
    d = a.dir
    p = lambda name: os.path.join(d, name)  # noqa: E731

    cmp_ = load(p("compare.json"), {"tools": {}, "processes": {}})
    # Workload.
    churn_s, churn_e = text(p("churn.start")).split(), text(p("churn.end")).split()
    churn_rate = None
    if len(churn_s) == 2 and len(churn_e) == 2 and float(churn_e[0]) > float(churn_s[0]):
        churn_rate = round((int(churn_e[1]) - int(churn_s[1])) /
                           (float(churn_e[0]) - float(churn_s[0])), 1)
    during = [int(x) for x in text(p("procs.during")).split()]
    wl_end = text(p("workload.end")).split()
    workload = {
        "processes_on_host_at_start": int(text(p("procs.start"), "0").strip() or 0),
        "processes_on_host_after_each_tool": during,
        "idle_processes_requested": int(a.idle),
        "idle_processes_alive_at_end": int(wl_end[1]) if len(wl_end) > 1 else None,
        "churn_rate_requested_per_s": a.churn_rate,
        "churn_rate_measured_per_s": churn_rate,
        "cpu_bound": "hot_c as bhot_c: 2 threads, work_a/work_b/work_c at 50:30:20",
        "syscall_heavy": "hot_syscall as bhot_syscall: 2 threads read()ing /dev/zero",
    }

    tools = {}
    for key, label in TOOLS:
        status = text(p(key + ".status"), "not run").strip()
        m = load(p(key + ".measure.json"), {})
        c = cmp_["tools"].get(key, {})
        t = {"tool": label, "status": status, "command": m.get("command")}
        if status == "ok":
            sw = m.get("steady_wall_s")
            t.update({
                "cpu_s": m.get("cpu_s"),
                "cpu_pct_of_core": round(100 * m["steady_cpu_s"] / sw, 3) if sw else None,
                "steady_cpu_s": m.get("steady_cpu_s"), "steady_wall_s": sw,
                "startup_s": m.get("startup_s"), "sampling_s": m.get("sampling_s"),
                "exit_s": m.get("exit_s"),
                "peak_rss_mb": round(m["peak_rss_kb"] / 1024, 1) if m.get("peak_rss_kb") else None,
                "samples": c.get("samples"), "idle_samples": c.get("idle_samples"),
                "symbolized_pct": c.get("symbolized_pct"),
                "symbolized_pct_all": c.get("symbolized_pct_all"),
                "share_max_diff_pp": c.get("share_max_diff_pp"),
                "processes": c.get("processes"),
            })
        tools[key] = t

    if tools["perf"]["status"] == "ok":
        tools["perf"]["output_bytes"] = size(p("perf.data"))
        pt = text(p("perf-script.time")).split()
        if len(pt) == 2:
            tools["perf"]["post_processing_cpu_s"] = round(float(pt[0]) + float(pt[1]), 3)
            tools["perf"]["post_processing"] = "perf script --no-inline (not in cpu_s)"
    for key in ("bpftrace", "bcc"):
        if tools[key]["status"] == "ok":
            tools[key]["output_bytes"] = size(p(key + ".out"))
    if tools["bcc"]["status"] == "ok" or os.path.exists(p("bcc.headers")):
        tools["bcc"]["kernel_headers"] = text(p("bcc.headers")).strip() or "running kernel's"
        warn = re.findall(r"WARNING: (\d+) stack traces could not be displayed", text(p("bcc.err")))
        tools["bcc"]["stacks_not_displayed"] = sum(int(x) for x in warn)

    st = tools["stoke"]
    if st["status"] == "ok":
        log = stoke_log(text(p("stoke.err")))
        st.update({k: v for k, v in log.items() if k != "samples"})
        st["folded_samples"] = st.get("samples")
        st["samples"] = log["samples"]
        st["output_bytes"] = size(p("stoke/store"))
        st["output"] = "segments in --store (uploaded bytes)"
        st["pprof_and_folded_bytes"] = size(p("stoke/out"))
        n, secs = st["samples"], st.get("sampling_s")
        if n:
            st["agent_cpu_us_per_sample"] = round(1e6 * st["cpu_s"] / n, 2)
            if st.get("steady_cpu_s") is not None and secs:
                # samples in the steady window, assuming a steady rate
                ns = n * st["steady_wall_s"] / secs
                st["agent_steady_cpu_us_per_sample"] = round(1e6 * st["steady_cpu_s"] / ns, 2)
            if st.get("bpf_ns_per_sample") is not None:
                st["end_to_end_us_per_sample"] = round(
                    st.get("agent_steady_cpu_us_per_sample", st["agent_cpu_us_per_sample"]) +
                    st["bpf_ns_per_sample"] / 1000.0, 2)
            if st["output_bytes"] is not None and secs:
                st["store_bytes_per_sample"] = round(st["output_bytes"] / n, 3)
                st["store_bytes_per_host_hour"] = round(st["output_bytes"] * 3600 / secs)
        if tools["perf"].get("cpu_s"):
            st["cpu_ratio_vs_perf"] = round(st["cpu_s"] / tools["perf"]["cpu_s"], 3)
            if tools["perf"].get("cpu_pct_of_core"):
                st["steady_cpu_ratio_vs_perf"] = round(
                    st["cpu_pct_of_core"] / tools["perf"]["cpu_pct_of_core"], 3)

    # Marginal cost per sample: the 19 Hz run against the high-frequency one.
    hf = load(p("stoke_hf.measure.json"), {})
    hflog = stoke_log(text(p("stoke_hf.err")))
    if (st["status"] == "ok" and text(p("stoke_hf.status")).strip() == "ok" and hflog["samples"]
            and hf.get("steady_wall_s") and hf.get("sampling_s") and st.get("steady_wall_s")):
        r1 = st["samples"] / st["sampling_s"]
        r2 = hflog["samples"] / hf["sampling_s"]
        c1 = st["steady_cpu_s"] / st["steady_wall_s"]
        c2 = hf["steady_cpu_s"] / hf["steady_wall_s"]
        st["high_frequency_run"] = {
            "frequency_hz": a.hf_freq, "samples": hflog["samples"],
            "samples_per_s": round(r2, 1), "steady_cpu_pct_of_core": round(100 * c2, 3),
            "peak_rss_mb": round(hf["peak_rss_kb"] / 1024, 1) if hf.get("peak_rss_kb") else None,
            "bpf_ns_per_sample": hflog["bpf_ns_per_sample"], "log_line": hflog["log_line"]}
        if r2 > r1:
            st["marginal_us_per_sample"] = round(1e6 * (c2 - c1) / (r2 - r1), 2)
            st["marginal_end_to_end_us_per_sample"] = round(
                st["marginal_us_per_sample"] + (hflog["bpf_ns_per_sample"] or 0) / 1000.0, 2)

    mach = machine()
    mach["loadavg_at_start"] = loadavg_at_start(d)
    res = {"machine": mach,
           "settings": {"seconds": a.seconds, "frequency_hz": a.freq, "window_s": a.window},
           "workload": workload, "tools": tools, "compared_functions": cmp_.get("processes"),
           "storage": load(p("storage.json")), "micro": load(p("micro.json")),
           "agent_rss": load(p("rss.json")), "bench_wall_s": a.wall}
    if a.unwind_seconds > 0:
        res["unwinding"] = unwinding(p, a, a.freq)

    # ---- Markdown --------------------------------------------------------
    mc = res["machine"]
    L = []
    L.append("## Stoke bench: %s, %s CPUs (%s), kernel %s" % (
        mc["date"], mc["cpus"], mc["cpu_model"], mc["kernel"]))
    L.append("")
    L.append("Load average (1/5/15 min): %s at the start, %s at the end." % (
        "/".join(mc["loadavg_at_start"]) or "?", "/".join(mc["loadavg_at_end"]) or "?"))
    L.append("")
    L.append("Workload: %d processes on the host (%s idle sleepers), churn %s/s measured "
             "(%g requested), bhot_c + bhot_syscall busy on all CPUs. Each tool: %g s of "
             "sampling at %g Hz, one after the other." % (
                 workload["processes_on_host_at_start"],
                 workload["idle_processes_alive_at_end"], fmt(churn_rate, "%.1f"),
                 a.churn_rate, a.seconds, a.freq))
    L.append("")
    L.append("| tool | CPU-s (start to exit) | steady CPU % of a core | start-up s | peak RSS MB "
             "| output bytes | samples (idle) | bhot_c max Δ vs perf pp (2σ) "
             "| bhot_syscall max Δ pp (2σ) | symbolized leaf % (fixtures / all) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, label in TOOLS:
        t = tools[key]
        if t["status"] != "ok":
            L.append("| %s | %s | | | | | | | | |" % (label, t["status"]))
            continue

        def dcell(proc):
            if key == "perf":
                return "(reference)"
            pr = (t.get("processes") or {}).get(proc) or {}
            if pr.get("max_diff_pp") is None:
                return "-"
            return "%.2f (%.2f) %s" % (pr["max_diff_pp"], pr["noise_2sigma_pp"],
                                       pr["max_diff_function"])
        L.append("| %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s / %s |" % (
            label, fmt(t["cpu_s"], "%.3f"), fmt(t["cpu_pct_of_core"], "%.3f"),
            fmt(t["startup_s"], "%.1f"), fmt(t["peak_rss_mb"], "%.1f"),
            fmt(t.get("output_bytes"), "%d"), fmt(t["samples"], "%d"),
            fmt(t["idle_samples"], "%d"), dcell("bhot_c"), dcell("bhot_syscall"),
            fmt(t["symbolized_pct"], "%.2f"), fmt(t["symbolized_pct_all"], "%.2f")))
    L.append("")
    if st["status"] == "ok":
        L.append("Agent (DESIGN.md §6) | measured | target")
        L.append("---|---:|---")
        L.append("steady CPU, %g Hz, all CPUs busy | %s%% of a core; %s× perf's | ≤ 1%%; ≤ 0.2× perf" % (
            a.freq, fmt(st.get("cpu_pct_of_core"), "%.3f"), fmt(st.get("steady_cpu_ratio_vs_perf"), "%.2f")))
        L.append("CPU-s start to exit vs perf | %s× | |" % fmt(st.get("cpu_ratio_vs_perf"), "%.2f"))
        L.append("CPU per sample: agent process (steady / start to exit) + BPF in kernel "
                 "| %s / %s µs + %s ns = %s µs | ≤ 5 µs" % (
                     fmt(st.get("agent_steady_cpu_us_per_sample")),
                     fmt(st.get("agent_cpu_us_per_sample")),
                     fmt(st.get("bpf_ns_per_sample"), "%d"), fmt(st.get("end_to_end_us_per_sample"))))
        hfr = st.get("high_frequency_run")
        if hfr:
            L.append("CPU per sample, marginal (%g Hz vs %g Hz runs, warm caches): agent process "
                     "+ BPF in kernel | %s µs + %s ns = %s µs | ≤ 5 µs" % (
                         a.freq, hfr["frequency_hz"], fmt(st.get("marginal_us_per_sample")),
                         fmt(hfr["bpf_ns_per_sample"], "%d"),
                         fmt(st.get("marginal_end_to_end_us_per_sample"))))
            L.append("steady CPU at %g Hz (%s samples/s) | %s%% of a core | " % (
                hfr["frequency_hz"], fmt(hfr["samples_per_s"], "%.0f"),
                fmt(hfr["steady_cpu_pct_of_core"], "%.3f")))
        if tools["perf"].get("post_processing_cpu_s") is not None and tools["perf"].get("cpu_s"):
            full = tools["perf"]["cpu_s"] + tools["perf"]["post_processing_cpu_s"]
            st["cpu_ratio_vs_perf_record_and_script"] = round(st["cpu_s"] / full, 3)
            L.append("CPU-s start to exit vs perf record + perf script (symbolized stacks, "
                     "what the agent delivers) | %.2f× | ≤ 0.2×" % (st["cpu_s"] / full))
        L.append("peak RSS, %d processes | %s MB | ≤ 30 MB" % (
            workload["processes_on_host_at_start"], fmt(st.get("peak_rss_mb"), "%.1f")))
        L.append("store bytes per host-hour (extrapolated, before compaction) | %s (%s B/sample) "
                 "| ≤ 0.5 MB; ≤ 2 B/sample" % (
                     fmt(st.get("store_bytes_per_host_hour"), "%d"),
                     fmt(st.get("store_bytes_per_sample"), "%.2f")))
        L.append("symbol cache hit rate | %s%% | |" % fmt(st.get("symbol_cache_hit_pct"), "%.1f"))
        L.append("")
        L.append("Agent log: `%s`" % st.get("log_line", ""))
        L.append("")
    if res.get("unwinding"):
        L.extend(unwinding_md(res["unwinding"]))
    if tools["perf"].get("post_processing_cpu_s") is not None:
        L.append("perf script post-processing (not in perf's CPU-s): %.3f CPU-s." %
                 tools["perf"]["post_processing_cpu_s"])
    if tools["bcc"].get("kernel_headers"):
        L.append("bcc compiled its BPF program against %s; %s stack traces not displayed." % (
            tools["bcc"]["kernel_headers"], tools["bcc"].get("stacks_not_displayed", 0)))
    L.append("")
    sto = res["storage"]
    if sto:
        o, q = sto["one_host_hour"], sto["query"]
        L.append("Storage (fleet generator, %d agent profiles of this run as sources) | before "
                 "compaction | after" % len(sto.get("sources", [])))
        L.append("---|---:|---:")
        L.append("objects per host-hour | %d | %d" % (o["objects_before"], o["objects_after"]))
        L.append("bytes per host-hour | %d | %d" % (o["bytes_before"], o["bytes_after"]))
        L.append("bytes per sample | %s | %s" % (fmt(o["bytes_per_sample_before"], "%.3f"),
                                                fmt(o["bytes_per_sample_after"], "%.3f")))
        L.append("")
        L.append("Query, 1 service × %d hosts × %d h (compacted; fleet replays %s) | cold s | warm s" % (
            q["hosts"], q["hours"], os.path.basename(sto.get("fleet_source") or "?")))
        L.append("---|---:|---:")
        for k, lab in (("flamegraph_1_worker", "flame graph, 1 worker"),
                       ("flamegraph_2_workers", "flame graph, 2 workers"),
                       ("top_1_worker", "top, 1 worker"), ("top_2_workers", "top, 2 workers"),
                       ("flamegraph_1_worker_1_thread", "flame graph, 1 worker × 1 thread"),
                       ("flamegraph_2_workers_1_thread", "flame graph, 2 workers × 1 thread")):
            if k in q:
                L.append("%s | %.3f | %.3f" % (lab, q[k]["cold_s"], q[k]["warm_s"]))
        if "flamegraph_1_worker_1_thread" in q:
            one, two = q["flamegraph_1_worker_1_thread"], q["flamegraph_2_workers_1_thread"]
            if two["cold_s"] > 0:
                q["speedup_2_workers_1_thread_cold"] = round(one["cold_s"] / two["cold_s"], 2)
                L.append("")
                L.append("Speed-up with a second worker (one decode thread each, so each has a "
                         "core): %.2f× cold, %.2f× warm." % (
                             one["cold_s"] / two["cold_s"],
                             one["warm_s"] / two["warm_s"] if two["warm_s"] > 0 else 0))
    else:
        L.append("Storage/query: not measured (scripts/storage_bench.sh failed)")
    L.append("")
    if res["micro"] is not None:
        L.append("Micro-benchmarks (build/stoke-bench-micro; JSON in build/bench/micro.json):")
        L.append("")
        L.append("```")
        L.append(text(p("micro.txt")).rstrip() or json.dumps(res["micro"], indent=1)[:4000])
        L.append("```")
    else:
        L.append("micro-benchmarks: not built")
    L.append("")
    # The agent's memory scenarios (bench/rss.sh writes the table itself).
    if res["agent_rss"] is not None:
        L.append(text(p("rss.md")).rstrip())
    else:
        L.append("agent RSS scenarios: not run (BENCH_RSS=0, or bench/rss.sh failed)")
    L.append("")
    L.append("bench wall time: %d s" % a.wall)
    # after the table: it adds derived figures (ratios, speed-up) to res
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    md = "\n".join(L) + "\n"
    with open(a.md, "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    main()
