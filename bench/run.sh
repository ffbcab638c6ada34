#!/usr/bin/env bash
# bench/run.sh - `make bench`: Stoke's figures next to perf, bpftrace and bcc
# (GitHub issue #6; targets in DESIGN.md section 6).
#
#   sudo make bench                     # or: bench/run.sh after `make all`
#   BENCH_SECONDS=60 BENCH_FREQ=19 BENCH_IDLE=500 BENCH_CHURN_RATE=100 make bench
#
# 1. Starts the workload mix (build/bench/stoke-bench-workload, bench/workload.c):
#    hot_c (2 CPU-bound threads, work_a/b/c at 50:30:20) as "bhot_c",
#    hot_syscall (2 threads reading /dev/zero) as "bhot_syscall", a process
#    churn of BENCH_CHURN_RATE fork+exec(/bin/true) per second and BENCH_IDLE
#    sleeping processes; both CPUs are busy the whole time.
# 2. Profiles it with each tool, one after the other, for BENCH_SECONDS of
#    sampling at BENCH_FREQ Hz (from the moment the tool has its perf events
#    open, so bcc's compile and the agent's BPF load are not sampling time):
#      stoke-agent  --frequency F --window 10 --store DIR (segments as in
#                   production; also --output-dir for the share comparison)
#      perf record -e cpu-clock -F F -a -g
#      bpftrace     profile:hz:F { @[kstack, ustack, comm] = count(); }
#      bcc profile  profile-bpfcc -F F -f (needs kernel headers: with no
#                   /lib/modules/$(uname -r)/build, Debian's linux-headers-amd64
#                   are merged into a temporary tree for BCC_KERNEL_SOURCE)
#    and measures each with bench/measure.py: CPU-seconds (user+sys of the
#    tool, its threads and children, start to exit; and the steady state
#    without start-up and exit work), peak RSS, output bytes, samples.
#    bench/compare.py computes per-function self-share agreement against perf
#    for the hot functions of bhot_c and bhot_syscall, and the % of samples
#    with a symbolised leaf.
# 3. Storage and query figures: scripts/storage_bench.sh (sources: the
#    agent's own profiles of this run; the query fleet: BENCH_FLEET_SOURCE),
#    and micro-benchmarks when the Makefile has a bench-micro target.
# 3b. The agent's memory: bench/rss.sh (churn at 19 and 99 Hz, 2000 idle
#    processes, 500 processes, a busy host; ~6 minutes; BENCH_RSS=0 skips).
# 3c. The receiver: bench/receive.sh (a corpus pprof pushed by 100
#    concurrent pushers via /ingest, OTLP/HTTP and OTLP/HTTP JSON to an
#    agent pinned to one core: profiles/s, MB/s, peak RSS; about a minute;
#    BENCH_RECEIVE=0 skips; written to build/bench/receive.txt).
# 4. The agent alone once more at BENCH_HF_FREQ (499) Hz for BENCH_HF_SECONDS
#    (45): the marginal CPU cost of one sample, fixed costs cancelled.
# 5. Unwinding (GitHub issue #12): the mix plus a CPU-busy node
#    (bench/busy.js) and Debian's /usr/bin/python3 (bench/busy.py), both with
#    no flags, services bnode and bpython3; the agent once with --unwind fp
#    (the kernel's frame-pointer walker) and once with --unwind auto (tables
#    from .eh_frame), each BENCH_UNWIND_SECONDS (60; 0 skips the stage) at
#    BENCH_FREQ Hz, measured as above. bench/bpf_maps.py samples the agent's
#    BPF maps with bpftool every 2 s (unwind tables, stoke_uw_table, apart
#    from the rest); bench/unwind_stacks.py counts user frames per sample and
#    stacks reaching the entry in each run's profiles.
# Note: the in-kernel sampling work (perf's callchain copy into its ring
# buffer, the BPF programs of the agent, bpftrace and bcc) runs in interrupt
# context and is charged to the interrupted task, not to the tool: CPU-s here
# is the tool process's own cost. The agent's BPF time per sample (from
# kernel.bpf_stats_enabled run_time_ns/run_cnt, in its final log line) is
# reported next to it.
# Writes build/bench/results.json and build/bench/results.md and prints the
# table. A tool that is missing or cannot run is reported as such, never
# skipped silently. Needs root (perf events, BPF). KEEP=1 keeps the
# temporary directory. Takes about 4 x BENCH_SECONDS + BENCH_HF_SECONDS +
# 2 x BENCH_UNWIND_SECONDS + 2-3 minutes (about 9 minutes by default).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECS=${BENCH_SECONDS:-60}
FREQ=${BENCH_FREQ:-19}
IDLE=${BENCH_IDLE:-500}
CHURN=${BENCH_CHURN_RATE:-100}
USECS=${BENCH_UNWIND_SECONDS:-60}
WINDOW=10
OUT=$ROOT/build/bench
WL=$OUT/stoke-bench-workload
AGENT=$ROOT/build/stoke-agent

if [ "$(id -u)" != 0 ]; then
    echo "bench: needs root (perf events and BPF for every profiler): sudo make bench" >&2
    exit 1
fi
for f in "$AGENT" "$WL" "$ROOT/build/stoke-query"; do
    [ -x "$f" ] || { echo "bench: $f missing: run 'make bench' (builds it)" >&2; exit 1; }
done
make -s -C tests/fixtures OUT="$ROOT/build/fixtures" >/dev/null || exit 1
mkdir -p "$OUT"
rm -f "$OUT/micro.json" "$OUT/results.json" "$OUT/results.md"
T=$(mktemp -d /tmp/stoke-bench.XXXXXX)
WPID=
MPID=
BUSY=()
old_stats=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo)
old_kptr=$(sysctl -n kernel.kptr_restrict 2>/dev/null || echo)
cleanup() {
    [ -n "$MPID" ] && kill "$MPID" 2>/dev/null # measure.py kills its tool on SIGTERM
    [ -n "$WPID" ] && kill "$WPID" 2>/dev/null # the workload kills its children
    for p in "${BUSY[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "$old_stats" ] && sysctl -qw kernel.bpf_stats_enabled="$old_stats" 2>/dev/null
    [ -n "$old_kptr" ] && sysctl -qw kernel.kptr_restrict="$old_kptr" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# The agent reports BPF run time per sample from the kernel's BPF stats;
# perf, bpftrace and bcc need kallsyms addresses.
sysctl -qw kernel.bpf_stats_enabled=1 2>/dev/null
sysctl -qw kernel.kptr_restrict=0 2>/dev/null
bench_start=$(date +%s)
cut -d' ' -f1-3 /proc/loadavg >"$T/loadavg.start"

# ---- workload ------------------------------------------------------------
budget=$((SECS * 4 + 2 * USECS + 600))
"$WL" --fixtures "$ROOT/build/fixtures" --dir "$T/bin" --idle "$IDLE" --churn-rate "$CHURN" \
    --stats "$T/workload.stats" --seconds "$budget" >"$T/workload.log" 2>&1 &
WPID=$!
sleep 3
kill -0 "$WPID" 2>/dev/null || { echo "bench: workload did not start: $(cat "$T/workload.log")" >&2; exit 1; }
nproc_host() { find /proc -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l; }
echo "bench: workload up: $(nproc_host) processes on the host, $(cut -d' ' -f2 "$T/workload.stats") idle;" \
    "$SECS s at $FREQ Hz per tool"
cp "$T/workload.stats.churn" "$T/churn.start" 2>/dev/null
nproc_host >"$T/procs.start"

# ---- one profiler ---------------------------------------------------------
# run_tool NAME CMD...: measures CMD with stdout in $T/NAME.out, stderr in
# $T/NAME.err, result in $T/NAME.measure.json; writes $T/NAME.status. With
# MAPS="PID..." set, bench/bpf_maps.py also samples CMD's BPF maps into
# $T/NAME.maps.json (tables mapped by the trees under PID... are the bench's).
run_tool() {
    local name=$1 watch= i
    shift
    echo "bench: $name ... ($(($(date +%s) - bench_start)) s)"
    python3 bench/measure.py --json "$T/$name.measure.json" --seconds "$SECS" --warmup "${WARMUP:-$((WINDOW + 2))}" \
        --stdout "$T/$name.out" --stderr "$T/$name.err" --pid-file "$T/$name.pid" -- "$@" &
    MPID=$!
    if [ -n "${MAPS:-}" ]; then
        for i in $(seq 100); do
            [ -s "$T/$name.pid" ] && break
            sleep 0.1
        done
        if [ -s "$T/$name.pid" ]; then
            python3 bench/bpf_maps.py --pid "$(cat "$T/$name.pid")" --while-file "$T/$name.pid" \
                --json "$T/$name.maps.json" $(printf -- '--bench-pid %s ' $MAPS) 2>"$T/$name.maps.err" &
            watch=$!
        fi
    fi
    wait "$MPID"
    local rc=$?
    MPID=
    [ -n "$watch" ] && wait "$watch" # it ends with the tool
    nproc_host >>"$T/procs.during"
    if [ $rc -ne 0 ]; then
        local why
        why=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error",""))' \
            "$T/$name.measure.json" 2>/dev/null)
        why="$why${why:+: }$(grep -v -i 'rlimit_memlock\|^$' "$T/$name.err" | tail -1 | cut -c1-200)"
        echo "not measurable here: $why" >"$T/$name.status"
        echo "bench: $name: not measurable here: $why"
    else
        echo ok >"$T/$name.status"
    fi
}
missing() { echo "not installed: $2" >"$T/$1.status"; echo "bench: $1 not installed"; }

# stoke-agent: segments into a store directory as in production.
mkdir -p "$T/stoke/out"
run_tool stoke "$AGENT" --frequency "$FREQ" --window "$WINDOW" --metrics-addr off \
    --store "$T/stoke/store" --output-dir "$T/stoke/out" --debug-dir "$ROOT/build/fixtures/debug"

# The marginal cost of one sample with warm caches: the agent again at
# BENCH_HF_FREQ Hz for BENCH_HF_SECONDS on the same workload. Fixed costs
# (per window, per new process) are the same in both runs, so the steady
# CPU difference over the sample-rate difference is the cost per sample.
# Its steady state starts after two windows: at 499 Hz the second drain
# still finds new addresses (cold symbolization is not a per-sample cost).
SECS_MAIN=$SECS
SECS=${BENCH_HF_SECONDS:-45}
WARMUP=$((2 * WINDOW + 2)) run_tool stoke_hf "$AGENT" --frequency "${BENCH_HF_FREQ:-499}" \
    --window "$WINDOW" --metrics-addr off --store "$T/stoke_hf/store"
SECS=$SECS_MAIN

# perf record -a -g (private build-id cache; perf script afterwards is
# post-processing, timed separately).
if command -v perf >/dev/null; then
    mkdir -p "$T/bid"
    run_tool perf perf --buildid-dir "$T/bid" record -q -e cpu-clock -F "$FREQ" -a -g \
        -o "$T/perf.data"
    if [ -s "$T/perf.data" ]; then
        TIMEFORMAT='%3U %3S'
        { time perf --buildid-dir "$T/bid" script --no-inline -i "$T/perf.data" \
            >"$T/perf.txt" 2>"$T/perf-script.err"; } 2>"$T/perf-script.time"
    fi
else
    missing perf "perf (apt-get install linux-perf)"
fi

# bpftrace: kernel and user stacks and comm, counted in the kernel.
if command -v bpftrace >/dev/null; then
    run_tool bpftrace bpftrace -e "profile:hz:$FREQ { @[kstack, ustack, comm] = count(); }"
else
    missing bpftrace "bpftrace (apt-get install bpftrace)"
fi

# bcc profile: folded output. bcc compiles its BPF C against kernel headers.
BCC=$(command -v profile-bpfcc || ls /usr/share/bcc/tools/profile 2>/dev/null || true)
if [ -n "$BCC" ]; then
    kdir=
    if [ ! -e "/lib/modules/$(uname -r)/build/include/linux/kconfig.h" ]; then
        # Debian splits headers into -common (sources) and -<flavour>
        # (generated, .config): merge one pair into a symlink tree.
        flav=$(ls -d /usr/src/linux-headers-*-amd64 /usr/src/linux-headers-*-arm64 2>/dev/null | sort -V | tail -1)
        common=${flav%-*}-common
        if [ -n "$flav" ] && [ -d "$common" ]; then
            kdir=$T/bcc-kernel-src
            mkdir -p "$kdir"
            cp -as "$common/." "$kdir/" && cp -asf --remove-destination "$flav/." "$kdir/"
            echo "$(basename "$flav") for kernel $(uname -r)" >"$T/bcc.headers"
        fi
    fi
    if [ -n "$kdir" ]; then
        run_tool bcc env BCC_KERNEL_SOURCE="$kdir" "$BCC" -F "$FREQ" -f
    else
        run_tool bcc "$BCC" -F "$FREQ" -f
    fi
else
    missing bcc "bcc profile (apt-get install bpfcc-tools)"
fi

# ---- unwinding: the frame-pointer walk against the table walk -------------
# Same workload, frequency and duration for both; a CPU-busy node and
# python3 join the mix for this stage only (the figures above stay
# comparable with earlier runs).
if [ "$USECS" -gt 0 ]; then
    life=$((2 * USECS + 180))
    if command -v node >/dev/null; then
        OTEL_SERVICE_NAME=bnode node bench/busy.js "$life" >/dev/null 2>"$T/bnode.err" &
        BUSY+=($!)
    else
        echo "not installed: node (apt-get install nodejs)" >"$T/bnode.status"
    fi
    if [ -x /usr/bin/python3 ]; then
        OTEL_SERVICE_NAME=bpython3 /usr/bin/python3 bench/busy.py "$life" >/dev/null 2>"$T/bpython3.err" &
        BUSY+=($!)
    else
        echo "not installed: /usr/bin/python3 (apt-get install python3)" >"$T/bpython3.status"
    fi
    sleep 2
    cut -d' ' -f1-3 /proc/loadavg >"$T/unwind.loadavg.start"
    nproc_host >"$T/unwind.procs"
    echo "bench: unwinding: mix + node + python3, $USECS s at $FREQ Hz per walker"
    for mode in fp auto; do
        name=unwind_$mode
        mkdir -p "$T/$name/out"
        SECS=$USECS MAPS="$WPID ${BUSY[*]}" run_tool "$name" "$AGENT" --unwind "$mode" --frequency "$FREQ" \
            --window "$WINDOW" --metrics-addr off --store "$T/$name/store" --output-dir "$T/$name/out" \
            --debug-dir "$ROOT/build/fixtures/debug"
    done
    cut -d' ' -f1-3 /proc/loadavg >"$T/unwind.loadavg.end"
    for p in "${BUSY[@]}"; do
        kill -0 "$p" 2>/dev/null ||
            echo "bench: a busy process ($p) ended early: $(cat "$T/bnode.err" "$T/bpython3.err" 2>/dev/null)"
        kill "$p" 2>/dev/null
    done
    [ ${#BUSY[@]} -gt 0 ] && wait "${BUSY[@]}" 2>/dev/null
    BUSY=()
    python3 bench/unwind_stacks.py --json "$T/unwind_stacks.json" --service bhot_c \
        --service bhot_syscall --service bnode --service bpython3 \
        --label fp="$T/unwind_fp/out" --label auto="$T/unwind_auto/out" >"$T/unwind_stacks.txt" 2>&1 ||
        echo "bench: unwind_stacks.py failed: $(tail -2 "$T/unwind_stacks.txt")"
fi

cp "$T/workload.stats.churn" "$T/churn.end" 2>/dev/null
cp "$T/workload.stats" "$T/workload.end" 2>/dev/null
kill "$WPID" 2>/dev/null
wait "$WPID" 2>/dev/null
WPID=

# ---- shares against perf ----------------------------------------------------
args=()
[ -s "$T/perf.txt" ] && args+=(--perf "$T/perf.txt")
[ "$(cat "$T/bpftrace.status" 2>/dev/null)" = ok ] && args+=(--bpftrace "$T/bpftrace.out")
[ "$(cat "$T/bcc.status" 2>/dev/null)" = ok ] && args+=(--bcc "$T/bcc.out")
[ "$(cat "$T/stoke.status" 2>/dev/null)" = ok ] && args+=(--stoke "$T/stoke/out")
python3 bench/compare.py --out "$T/compare.json" "${args[@]}" \
    --proc bhot_c=work_a,work_b,work_c --proc bhot_syscall= | tee "$T/compare.txt"

# ---- storage and query --------------------------------------------------------
# Sources: the largest profile of each of up to 8 services the agent wrote.
mapfile -t srcs < <(for d in "$T"/stoke/out/*/; do
    ls -S "$d"*.pb.gz 2>/dev/null | head -1; done | xargs -r ls -S | head -8)
echo "bench: storage and query ($(($(date +%s) - bench_start)) s; scripts/storage_bench.sh, ${#srcs[@]} source profiles) ..."
# The 100-host x 24 h query fleet: by default the calibrated model
# (`stoke-query generate --model calibrated`: the diversity the agent measured
# on a busy host, docs/storage.md; BENCH_FLEET_ROWS rows per host per 10 s
# window, default 321 as measured -- ~45 min to generate on the 2-core
# machine; 32 takes ~5). BENCH_FLEET_SOURCE=go-cpu replays the corpus Go CPU
# profile (one profile copied per host, ~10 s), =agent the agent's largest
# profile of this run, or give a FILE.pb.gz.
fleet=${BENCH_FLEET_SOURCE:-calibrated}
[ "$fleet" != go-cpu ] || fleet=../shared/corpus/pprof/go-cpu.pb.gz
if [ "$fleet" = agent ] || { [ "$fleet" != calibrated ] && [ ! -r "$fleet" ]; }; then fleet=${srcs[0]:-}; fi
STORAGE_FLEET_ROWS=${BENCH_FLEET_ROWS:-} STORAGE_FLEET_SOURCE=$fleet STORAGE_BENCH_JSON="$T/storage.json" scripts/storage_bench.sh 100 24 "${srcs[@]}" \
    >"$T/storage.txt" 2>&1 || echo "bench: storage_bench.sh failed: $(tail -2 "$T/storage.txt")"

# ---- micro-benchmarks (bench-micro target, when present) -----------------------
if grep -q "^bench-micro:" Makefile; then
    echo "bench: micro-benchmarks ... ($(($(date +%s) - bench_start)) s)"
    if ${MAKE:-make} -s build/stoke-bench-micro >"$T/micro-build.log" 2>&1 && [ -x build/stoke-bench-micro ]; then
        build/stoke-bench-micro --json "$OUT/micro.json" >"$T/micro.txt" 2>&1 ||
            echo "bench: stoke-bench-micro failed: $(tail -2 "$T/micro.txt")"
    else
        echo "bench: make bench-micro failed: $(tail -2 "$T/micro-build.log")"
    fi
fi
[ -s "$OUT/micro.json" ] && cp "$OUT/micro.json" "$T/micro.json"

# ---- agent memory (bench/rss.sh) --------------------------------------------
# Peak and steady RSS under process churn (19 and 99 Hz), with 2000 idle
# processes, with 500, and on a busy host: RSS_SECONDS (60) each, one run.
if [ "${BENCH_RSS:-1}" = 1 ]; then
    echo "bench: agent RSS scenarios, bench/rss.sh ... ($(($(date +%s) - bench_start)) s)"
    rm -f "$OUT/rss.json" "$OUT/rss.md"
    bench/rss.sh >"$T/rss.txt" 2>&1 || echo "bench: bench/rss.sh failed: $(tail -2 "$T/rss.txt")"
    [ -s "$OUT/rss.json" ] && cp "$OUT/rss.json" "$OUT/rss.md" "$T/"
fi

# ---- the receiver (bench/receive.sh) ------------------------------------------
if [ "${BENCH_RECEIVE:-1}" = 1 ]; then
    echo "bench: receiver throughput and memory, bench/receive.sh ... ($(($(date +%s) - bench_start)) s)"
    bench/receive.sh >"$OUT/receive.txt" 2>&1 || echo "bench: bench/receive.sh failed: $(tail -2 "$OUT/receive.txt")"
fi

python3 bench/report.py --dir "$T" --seconds "$SECS" --freq "$FREQ" --hf-freq "${BENCH_HF_FREQ:-499}" --idle "$IDLE" \
    --unwind-seconds "$USECS" \
    --churn-rate "$CHURN" --window "$WINDOW" --wall $(($(date +%s) - bench_start)) \
    --json "$OUT/results.json" --md "$OUT/results.md"
