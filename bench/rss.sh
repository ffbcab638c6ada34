#!/usr/bin/env bash
# bench/rss.sh - the agent's memory (DESIGN.md section 6: RSS <= 30 MB steady
# with 500 processes, and at peak under process churn and on a busy host).
#
#   sudo bench/rss.sh                      # every scenario, once, 60 s each
#   RSS_RUNS=2 RSS_SECONDS=60 bench/rss.sh churn19 churn99
#   AGENT=/tmp/old-stoke-agent bench/rss.sh   # measure another build
#
# Scenarios (each a fresh agent, --frequency HZ --window 10 --store DIR, as
# in production; debug files from the default /usr/lib/debug, so libc's
# DWARF is used where libc6-dbg is installed):
#   churn19, churn99  fork+exec of /bin/true as fast as 2 processes can
#                     (stoke-bench-workload --no-hot --churn-rate max
#                     --churners 2) plus a loop of short-lived programs
#                     (ls, sh|sed|tr, python3, perl, awk, sort, gzip, grep,
#                     date, id, uname, find, cat): the machine's fork+exec
#                     maximum, at 19 and 99 Hz
#   idle2000          the two hot fixtures, and 2000 `sleep` processes started
#                     while the agent runs (each is sampled as it starts, and
#                     stays: the per-process caches see 2000 processes), 19 Hz
#   procs500          make bench's mix: the hot fixtures, 500 idle processes
#                     and 100 fork+exec a second, 19 Hz
#   busy              a busy host: the hot fixtures, the loop of short-lived
#                     programs and a compile loop (cc -O2 of agent/*.c, two
#                     at a time), 19 Hz
# Each is measured by bench/measure.py: peak RSS (VmHWM while sampling, and
# with exit work), steady RSS (median of VmRSS polled every 0.5 s after the
# first window) and the host's fork rate while sampling. The agent's own
# summary line (peak RSS, DWARF opens) and its /metrics are kept.
#
# Writes build/bench/rss.json and build/bench/rss.md (one row per scenario,
# min-max over the runs) and prints the table. Needs root. KEEP=1 keeps the
# temporary directory. Takes RSS_RUNS x (scenarios x (RSS_SECONDS + ~10 s)).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${RSS_SECONDS:-60}
RUNS=${RSS_RUNS:-1}
WINDOW=10
OUT=$ROOT/build/bench
WL=$OUT/stoke-bench-workload
AGENT=${AGENT:-$ROOT/build/stoke-agent}
ALL="churn19 churn99 idle2000 procs500 busy"
SCEN=${*:-$ALL}

if [ "$(id -u)" != 0 ]; then
    echo "rss: needs root (BPF and perf events): sudo bench/rss.sh" >&2
    exit 1
fi
[ -x "$AGENT" ] || { echo "rss: $AGENT missing: make all" >&2; exit 1; }
[ -x "$WL" ] || make -s "$WL" >/dev/null || exit 1
make -s -C tests/fixtures OUT="$ROOT/build/fixtures" >/dev/null || exit 1
for s in $SCEN; do
    case " $ALL " in *" $s "*) ;; *) echo "rss: unknown scenario $s (one of: $ALL)" >&2; exit 2 ;; esac
done
mkdir -p "$OUT"
T=$(mktemp -d /tmp/stoke-rss.XXXXXX)
BG=()
cleanup_bg() {
    local p
    for p in "${BG[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    BG=()
}
cleanup() {
    cleanup_bg
    if [ "${KEEP:-0}" = 1 ]; then echo "rss: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Each background load runs in its own process group (setsid), so that it and
# everything it started can be stopped together.
bg() { setsid "$@" >>"$T/load.log" 2>&1 & BG+=($!); }

# Short-lived programs of several kinds, forever: new executables, new
# libraries and new service names all the time.
mix_loop() {
    while :; do
        ls -l /usr/bin >/dev/null
        sh -c 'echo x | sed s/x/y/ | tr y z' >/dev/null
        python3 -c 'import json; json.dumps(list(range(1000)))'
        perl -e 'my %h; $h{$_} = 1 for 1 .. 10000;'
        awk 'BEGIN { for (i = 0; i < 20000; i++) s += i }'
        sort /etc/services | uniq -c >/dev/null
        gzip -c /etc/services >/dev/null
        grep -c tcp /etc/services >/dev/null
        date >/dev/null
        id >/dev/null
        uname -a >/dev/null
        find /etc -maxdepth 2 -name '*.conf' >/dev/null 2>&1
        cat /proc/meminfo >/dev/null
    done
}
compile_loop() {
    local d=$1
    mkdir -p "$d"
    while :; do
        for f in "$ROOT"/agent/*.c; do
            cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT" -I"$ROOT/build" -c "$f" \
                -o "$d/$(basename "$f").o" 2>/dev/null &
            [ "$(jobs -rp | wc -l)" -ge 2 ] && wait -n
        done
        wait
    done
}
sleepers() {
    local i
    for ((i = 0; i < $1; i++)); do sleep 100000 & done
    wait
}
export -f mix_loop compile_loop sleepers
export ROOT

workload() {
    rm -f "$T/workload.stats"
    bg "$WL" --fixtures "$ROOT/build/fixtures" --dir "$T/bin" --stats "$T/workload.stats" \
        --seconds $((SECS + 400)) "$@"
}

start_load() {
    case $1 in
    churn19 | churn99)
        workload --no-hot --idle 0 --churn-rate max --churners 2
        bg bash -c mix_loop ;;
    idle2000)
        workload --idle 0 --churn-rate 0
        bg bash -c 'sleep 8; sleepers 2000' ;;
    procs500)
        workload --idle 500 --churn-rate 100 ;;
    busy)
        workload --idle 0 --churn-rate 0
        bg bash -c mix_loop
        bg bash -c "compile_loop $T/cc" ;;
    esac
}
freq_of() { case $1 in churn99) echo 99 ;; *) echo 19 ;; esac; }
# processes a scenario adds to the host before sampling starts
procs_of() { case $1 in procs500) echo 500 ;; *) echo 0 ;; esac; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nprocs() { find /proc -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l; }

for run in $(seq 1 "$RUNS"); do
    for s in $SCEN; do
        d=$T/$s.$run
        mkdir -p "$d"
        start_load "$s"
        sleep 5
        # a loaded machine forks slowly: wait (up to 3 minutes) until the
        # workload's idle processes are all up before sampling
        want=$(procs_of "$s")
        for _ in $(seq 1 180); do
            [ "$(cut -d' ' -f2 "$T/workload.stats" 2>/dev/null || echo 0)" -ge "$want" ] && break
            sleep 1
        done
        nprocs >"$d/procs"
        port=$(free_port)
        echo "rss: run $run/$RUNS: $s: $(cat "$d/procs") processes on the host," \
            "agent at $(freq_of "$s") Hz for $SECS s"
        # /metrics once the first windows are in (the agent's own peak figure)
        (sleep $((WINDOW * 3 + 5)); curl -s -m 5 "http://127.0.0.1:$port/metrics" >"$d/metrics") &
        python3 bench/measure.py --json "$d/measure.json" --seconds "$SECS" \
            --warmup $((WINDOW + 2)) --stderr "$d/agent.err" -- \
            "$AGENT" --frequency "$(freq_of "$s")" --window "$WINDOW" \
            --metrics-addr "127.0.0.1:$port" --store "$d/store"
        wait $! 2>/dev/null
        nprocs >"$d/procs.end"
        cleanup_bg
        python3 - "$d" "$s" "$run" <<'EOF'
import json, re, sys
d, s, run = sys.argv[1:]
m = json.load(open(d + "/measure.json"))
log = open(d + "/agent.err", errors="replace").read()
line = [x for x in log.splitlines() if "stopped after" in x]
line = line[-1] if line else ""
met = {}
try:
    for x in open(d + "/metrics"):
        if x.startswith("stoke_") and " " in x and not x.startswith("#"):
            k, v = x.split()[:2]
            met[k] = float(v)
except OSError:
    pass
def num(rx):
    r = re.search(rx, line)
    return float(r.group(1)) if r else None
res = {"scenario": s, "run": int(run),
       "processes": max(int(open(d + "/procs").read()), int(open(d + "/procs.end").read())),
       "peak_rss_mb": round(m.get("peak_rss_kb", 0) / 1024, 1),
       "sampling_peak_rss_mb": round(m.get("sampling_peak_rss_kb", 0) / 1024, 1),
       "steady_rss_mb": round(m.get("steady_rss_kb", 0) / 1024, 1),
       "steady_rss_max_mb": round(m.get("steady_rss_max_kb", 0) / 1024, 1),
       "host_forks_per_s": m.get("host_forks_per_s"),
       "agent_peak_rss_mb_logged": num(r"peak RSS ([0-9.]+) MB"),
       "samples": num(r"(\d+) samples drained"),
       "dwarf_opens": num(r"(\d+) DWARF opens"),
       "agent_cpu_s": m.get("cpu_s"), "exit_code": m.get("exit_code"),
       "error": m.get("error"), "metrics": met, "log_line": line.strip()}
json.dump(res, open(d + "/result.json", "w"), indent=1)
print("rss: %s: peak %.1f MB (sampling %.1f), steady %.1f MB (max %.1f), %s forks/s" % (
    s, res["peak_rss_mb"], res["sampling_peak_rss_mb"], res["steady_rss_mb"],
    res["steady_rss_max_mb"], res["host_forks_per_s"]))
EOF
    done
done

python3 - "$T" "$OUT/rss.json" "$OUT/rss.md" "$SECS" "$RUNS" "$AGENT" $SCEN <<'EOF'
import datetime, glob, json, os, sys
t, js, md, secs, runs, agent = sys.argv[1:7]
scen = sys.argv[7:]
rows = [json.load(open(f)) for f in sorted(glob.glob(t + "/*/result.json"))]
def rng(vals, f="%.1f"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    lo, hi = min(vals), max(vals)
    return f % lo if lo == hi else (f + "–" + f) % (lo, hi)
desc = {"churn19": "process churn (fork+exec maximum + short-lived mix), 19 Hz",
        "churn99": "process churn (fork+exec maximum + short-lived mix), 99 Hz",
        "idle2000": "2000 `sleep` processes started while sampling, 19 Hz",
        "procs500": "500 idle processes + make bench's mix, 19 Hz",
        "busy": "busy host: compile loop + short-lived mix, 19 Hz"}
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
out = ["Agent RSS, %s, %s s per scenario, %s run(s) (bench/rss.sh; %s):" % (date, secs, runs, agent), "",
       "| scenario | processes | host forks/s | peak RSS MB | steady RSS MB | target |",
       "| --- | ---: | ---: | ---: | ---: | --- |"]
for s in scen:
    r = [x for x in rows if x["scenario"] == s]
    if not r:
        continue
    peak = [x["peak_rss_mb"] for x in r]
    ok = max(peak) <= 30 and max(x["steady_rss_mb"] for x in r) <= 30
    out.append("| %s | %s | %s | %s | %s | ≤ 30 MB: %s |" % (
        desc[s], rng([x["processes"] for x in r], "%d"), rng([x["host_forks_per_s"] for x in r], "%.0f"),
        rng(peak), rng([x["steady_rss_mb"] for x in r]), "met" if ok else "**not met**"))
json.dump({"date": date, "seconds": float(secs), "runs": int(runs), "agent": agent,
           "loadavg_at_end": open("/proc/loadavg").read().split()[:3], "results": rows},
          open(js, "w"), indent=1)
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
