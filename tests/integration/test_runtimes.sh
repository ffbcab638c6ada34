#!/usr/bin/env bash
# Interpreted code by its own function names, with no flags: Debian's python3
# running a workload that times itself with the thread CPU clock
# (tests/fixtures/runtimes/py_work.py), profiled by stoke-agent at 499 Hz.
# >= 90% of the samples name the program's own functions, >= 90% of stacks
# are whole (<module> under _start), and each hot function's total share is
# within 3 points of the program's own timing (runtime_compare.py). Also a
# threaded program with a generator, whose worker thread is found by its
# thread state. PYTHONS="path ..." adds interpreters (e.g. pyenv's builds of
# 3.8-3.13) to the same checks. DURATION (10), KEEP=1.
set -u
. "$(dirname "$0")/lib.sh"
need python3

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

# profiled NAME WARMUP "COMPARE ARGS" CMD...: runs the self-timing workload
# CMD (its truth to $work/NAME/truth.json when it ends: it outlives the
# agent), profiles it from WARMUP seconds in for DURATION, and compares.
profiled() {
    local name=$1 warm=$2 cmpargs=$3 d=$work/$1
    shift 3
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
    # shellcheck disable=SC2086 # the arguments, one word each
    out=$(python3 "$CMP" "$d/out/rt-$name" "$d/truth.json" $cmpargs 2>&1)
    echo "$out" | sed 's/^/    /'
    if echo "$out" | grep -q '^RESULT passed=[0-9]* failed=0$'; then
        pass "$name: own functions named, whole stacks, shares as its own timing"
    else
        fail "$name: see above"
    fi
}

# python NAME INTERPRETER: the self-timing workload, compared.
python() {
    local name=$1 py=$2 d=$work/$1
    mkdir -p "$d"
    echo "## $name ($("$py" -c 'import sys; print(sys.version.split()[0])' 2>&1))"
    profiled "$name" 1 "--funcs alpha,beta,gamma,mix --own alpha,beta,gamma,mix,timed,main --entry <module>" \
        "$py" "$ROOT/tests/fixtures/runtimes/py_work.py" $((DURATION + 6)) "$d/truth.json"
}

python debian-python3 /usr/bin/python3
for py in ${PYTHONS:-}; do
    python "$(basename "$py")-$(basename "$(dirname "$(dirname "$py")")")" "$py"
done

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
folded() { cat "$work"/threads/rt-threads/*.folded 2>/dev/null; }
share() { folded | awk -v re="$1" '{n = $NF; t += n; if ($0 ~ re) h += n} END {printf "%.1f", t ? 100 * h / t : 0}'; }
gen=$(share ';worker;consume;[^ ]*produce')
main=$(share ';spin;')
echo "  worker;consume;produce in $gen% of samples, spin in $main%"
check "threads: the worker thread's generator stacks named ($gen% >= 30)" \
    awk -v v="$gen" 'BEGIN {exit !(v >= 30)}'
check "threads: the main thread's stacks named ($main% >= 30)" awk -v v="$main" 'BEGIN {exit !(v >= 30)}'
kill "$tp" 2>/dev/null
wait "$tp" 2>/dev/null

# Java: the JDK's own launcher, no flags. The agent starts once the JIT has
# compiled the loop (JVM_WARMUP seconds): the JIT's threads are then quiet,
# and the shares are the steady state's, as the program's own timing is
# mostly. Names come from the VM's tables: JvmWork.main under __clone3
# (the launcher runs main in a thread of its own).
jvm() {
    local d=$work/jvm warm=${JVM_WARMUP:-4}
    mkdir -p "$d/classes"
    echo "## jvm ($(java -version 2>&1 | head -1))"
    if ! javac -d "$d/classes" "$ROOT/tests/fixtures/runtimes/JvmWork.java" 2>"$d/javac.log"; then
        fail "jvm: javac failed: $(head -3 "$d/javac.log")"
        return
    fi
    local own=JvmWork.alpha,JvmWork.beta,JvmWork.gamma,JvmWork.mix
    profiled jvm "$warm" "--funcs $own --own $own,JvmWork.timed,JvmWork.main --entry JvmWork.main" \
        java -cp "$d/classes" JvmWork $((DURATION + warm + 5)) "$d/truth.json"
}

if command -v java >/dev/null && command -v javac >/dev/null; then
    jvm
else
    echo "SKIP jvm: no java/javac"
fi

summary test_runtimes
