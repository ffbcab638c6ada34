#!/usr/bin/env bash
# Whole stacks for code without frame pointers: each workload profiled by
# stoke-agent (unwind tables in BPF) and by `perf record --call-graph dwarf`
# at the same time, at 499 Hz. For the test fixtures (gcc and clang, PIE
# and not, C++ with exceptions, Rust, a signal handler, a library loaded
# late) the share of stacks reaching the program's entry (_start, clone3)
# and each function's total share must be within 2 points of perf's (and,
# on a machine too busy for enough samples, the difference must also be
# beyond 3 standard errors to fail: two samplers of one process differ by
# chance, ~0.7 points at 10k samples); a
# recursion deeper than the frame limit must end every stack in a
# [truncated: depth_limit] frame with no junk frame; Debian's own python3,
# sqlite3, xz and perl must reach the entry in >= 95% of stacks.
# Environment: DURATION (10), FREQ (499), KEEP=1 keeps the work directory,
# ONLY="gcc-pie rust ..." runs those workloads only.
set -u
. "$(dirname "$0")/lib.sh"
need perf
need python3
need sqlite3
need xz
need perl
need rustc

DURATION=${DURATION:-10}
FREQ=${FREQ:-499}
CMP=$ROOT/tests/integration/perf_compare.py
work=$(mktemp -d /tmp/stoke-unwind.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
build_fixtures || { fail "building the fixtures"; summary test_unwind; exit 1; }
sysctl -qw kernel.perf_event_paranoid=-1 2>/dev/null || true

# profile NAME PID [DUMP]: the agent (--pid) and perf --call-graph dwarf on
# PID for DURATION seconds; leaves $work/NAME/{agent,perf.txt}.
profile() {
    local name=$1 pid=$2 dump=${3:-16384} d=$work/$1
    mkdir -p "$d/agent"
    "$AGENT" --pid "$pid" --output-dir "$d/agent" --duration "$DURATION" --frequency "$FREQ" \
        --metrics-addr off >"$d/agent.log" 2>&1 &
    local apid=$!
    perf record -q -e cpu-clock -F "$FREQ" --call-graph "dwarf,$dump" -p "$pid" \
        -o "$d/perf.data" -- sleep "$DURATION" >"$d/perf.log" 2>&1
    wait "$apid" || { fail "$name: agent exited $?: $(tail -2 "$d/agent.log")"; return 1; }
    perf script -i "$d/perf.data" >"$d/perf.txt" 2>/dev/null
    rm -f "$d/perf.data"
    grep -h "unwinding:" "$d/agent.log" | sed 's/.*msg="//; s/"$//; s/^/  /'
}

# compare NAME SERVICE perf_compare-args...: checks the recorded pair.
compare() {
    local name=$1 svc=$2 d=$work/$1
    shift 2
    local out
    out=$(python3 "$CMP" "$d/perf.txt" "$d/agent/$svc" --min-samples 300 --z-min 3 "$@" 2>&1)
    echo "$out" | sed 's/^/    /'
    local res
    res=$(echo "$out" | sed -n 's/^RESULT passed=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p')
    if [ -n "$res" ] && [ "${res#* }" = 0 ]; then
        pass "$name: whole stacks and totals as perf --call-graph dwarf"
    else
        fail "$name: see above"
    fi
}

# fixture NAME BINARY [ARGS...] -- perf_compare args
fixture() {
    local name=$1 bin=$2
    shift 2
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
    local args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    # it outlives the agent by far (a loaded machine slows the agent's start
    # and drain), and is stopped once the agent is done
    OTEL_SERVICE_NAME=unwind-$name "$FIXTURES/$bin" $((3 * DURATION + 30)) "${args[@]}" &
    local pid=$!
    pids+=("$pid")
    sleep 0.5
    echo "## $name ($bin)"
    if profile "$name" "$pid"; then
        # the symbolizer and the service name need the process alive at the drain
        if kill -0 "$pid" 2>/dev/null; then
            compare "$name" "unwind-$name" "$@"
        else
            wait "$pid"
            fail "$name: the fixture exited before the agent finished (status $?)"
        fi
    fi
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

ENTRY=(--entry _start,clone3)
C_FUNCS=(--inclusive -f sort_a -f sort_b -f cmp_items -f math_x -f math_y -f math_leaf -f work_w
    -f work_leaf -f run -f main)
fixture gcc-pie nofp_gcc -- "${ENTRY[@]}" "${C_FUNCS[@]}"
fixture clang-nopie nofp_clang_nopie -- "${ENTRY[@]}" "${C_FUNCS[@]}"
fixture cpp nofp_cpp -- "${ENTRY[@]}" --inclusive -f 'shapes::Engine::step' -f catcher \
    -f thrower -f run -f main
fixture rust nofp_rust -- "${ENTRY[@]}" --inclusive -f nofp_rust::level1 -f nofp_rust::level2 \
    -f nofp_rust::level3 -f nofp_rust::main
fixture signal nofp_signal -- "${ENTRY[@]}" --inclusive -f handler_work -f on_prof \
    -f main_work -f main
# the warm-up before the dlopen is left out of the shares: the agent starts
# sampling a little later than perf, and would see less of it
fixture dlopen nofp_dlopen "$FIXTURES/libnofp_plugin.so" -- "${ENTRY[@]}" --inclusive \
    -f plugin_hot -f plugin_leaf -f call_plugin -f main --drop warm_up
fixture deep nofp_deep -- --inclusive -f deep_leaf -f recurse \
    --expect-root '[truncated: depth_limit]' --root-min 95 \
    --only-frames '^(recurse|deep_leaf|\[truncated: depth_limit\]|[A-Za-z_0-9.]+)$'

# Every sample the kernel counted is written: a process with thousands of
# distinct stacks a second (the old stack-id maps lost 5% of its samples to
# collisions, silently), then the whole host with a process churn, at
# FREQ Hz. Written = the sum of the folded profiles of every service.
totals() {
    local name=$1 d=$work/totals-$1
    shift
    mkdir -p "$d/out"
    "$AGENT" "$@" --duration "$DURATION" --frequency "$FREQ" --output-dir "$d/out" \
        --metrics-addr off >"$d/agent.log" 2>&1
    local drained written lost
    drained=$(sed -n 's/.*msg="stopped after .*: \([0-9]*\) samples drained.*/\1/p' "$d/agent.log")
    written=$(cat "$d"/out/*/*.folded 2>/dev/null | awk '{s += $NF} END {print s + 0}')
    lost=$(sed -n 's/.* \([0-9]*\) samples under a lost-stack frame.*/\1/p' "$d/agent.log")
    echo "  $name: drained ${drained:-?}, written $written, under a lost-stack frame ${lost:-?}"
    check "$name: every drained sample written ($written of ${drained:-?})" \
        test -n "$drained" -a "$drained" -gt 1000 -a "$written" = "$drained"
}
if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" totals "* ]]; then
    echo "## totals"
    "$FIXTURES/many_stacks" $((3 * DURATION + 30)) &
    ms=$!
    pids+=("$ms")
    sleep 0.5
    totals many-stacks --pid "$ms"
    (while :; do /bin/true; done) &
    churn=$!
    pids+=("$churn")
    totals host
    kill "$churn" "$ms" 2>/dev/null
    wait "$churn" "$ms" 2>/dev/null
fi

# entry_range BINARY: NAME+0xLO-0xHI for the first 64 bytes at the ELF entry
# point of a stripped binary, whose _start has no symbol (perf_compare.py).
entry_range() {
    python3 - "$1" <<'PY'
import os, struct, sys
p = sys.argv[1]
with open(p, "rb") as f:
    h = f.read(64)
    entry, phoff = struct.unpack_from("<QQ", h, 24)
    phentsize, phnum = struct.unpack_from("<HH", h, 54)
    for i in range(phnum):
        f.seek(phoff + i * phentsize)
        typ, flags, off, vaddr, _, filesz = struct.unpack("<IIQQQQ", f.read(40))
        if typ == 1 and vaddr <= entry < vaddr + filesz:
            lo = entry - vaddr + off
            print("%s+0x%x-0x%x" % (os.path.basename(p), lo, lo + 64))
PY
}

# Debian's own binaries, stripped, no frame pointers: >= 95% reach the entry.
debian() {
    local name=$1
    shift
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return 0; fi
    echo "## $name (Debian's $1)"
    OTEL_SERVICE_NAME=unwind-$name "$@" >/dev/null 2>&1 &
    local pid=$!
    pids+=("$pid")
    sleep 1
    local exe
    exe=$(readlink -f "/proc/$pid/exe")
    # leaves are compared where both name the same code: in python3 the
    # agent's leaves are Python functions, perf's the eval loop
    local top=3
    [ "$name" = python3 ] && top=0
    profile "$name" "$pid" 32768 && compare "$name" "unwind-$name" \
        --entry "_start,clone3,$(entry_range "$exe")" --max-diff 100 --min-entry 95 \
        --top "$top" --min-share 2
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
T=$((3 * DURATION + 30)) # stopped once the agent is done
debian python3 /usr/bin/python3 -c "
import time
def fib(n): return n if n < 2 else fib(n - 1) + fib(n - 2)
def work(): return sum(fib(18) for _ in range(20))
end = time.time() + $T
while time.time() < end: work()"
debian sqlite3 sqlite3 :memory: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
    LIMIT 400000000) SELECT sum(x * x % 7) FROM c;"
head -c 64000000 /dev/urandom | base64 >"$work/xz.in"
debian xz xz -9 -T1 -c "$work/xz.in"
debian perl perl -e "my \$s = 0; my \$end = time + $T;
    while (time < \$end) { for my \$i (1 .. 100000) { \$s += \$i * \$i % 7 } } print \$s"

summary test_unwind
