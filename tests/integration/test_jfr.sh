#!/usr/bin/env bash
# codec/jfr on a recording the JDK itself makes: OpenJDK 17's java runs
# tests/fixtures/runtimes/JfrWork.java (CPU in three methods, a contended
# monitor, parks, allocations) with -XX:StartFlightRecording (the JDK's
# "profile" settings), tests/integration/jfr2pprof converts the file, and
# Google's pprof parser (pprof_top) reads the profiles back. Per top frame,
# the CPU profile's samples (value / 1e7 ns at the default 100 Hz) equal
# `jfr print --json --events jdk.ExecutionSample`, and the mutex (contentions)
# and block profiles equal jdk.JavaMonitorEnter's and jdk.ThreadPark's
# events. The same recording pushed to a receiving agent
# (POST /ingest?format=jfr) and read back with stoke-query's /api/v1/top
# gives the same per-top-frame counts. A truncated copy of the file is
# refused with an error naming it.
# SECONDS_RUN (6), KEEP=1 keeps the work directory.
set -u
. "$(dirname "$0")/lib.sh"
need java
need javac
need jfr
need python3
need go
need gcc
need curl

work=$(mktemp -d)
cleanup() { [ "${KEEP:-}" = 1 ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

[ -f "$ROOT/build/libstoke.a" ] || { fail "build/libstoke.a missing (make all)"; summary test_jfr; exit 1; }
gcc -std=gnu11 -O2 -D_GNU_SOURCE -I"$ROOT" -I"$ROOT/build" -I"$ROOT/build/proto" \
    -o "$work/jfr2pprof" "$ROOT/tests/integration/jfr2pprof.c" "$ROOT/build/libstoke.a" \
    -lprotobuf-c -lz -lzstd 2>"$work/cc.log" ||
    { fail "building jfr2pprof: $(cat "$work/cc.log")"; summary test_jfr; exit 1; }
(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$work/gocache \
    go build -o "$work/pprof_top" ./tests/integration/pprof_top) ||
    { fail "building pprof_top"; summary test_jfr; exit 1; }
javac -d "$work/classes" "$ROOT/tests/fixtures/runtimes/JfrWork.java" 2>"$work/javac.log" ||
    { fail "javac: $(cat "$work/javac.log")"; summary test_jfr; exit 1; }

rec=$work/rec.jfr
java -XX:StartFlightRecording=filename="$rec",settings=profile -cp "$work/classes" JfrWork \
    "${SECONDS_RUN:-6}" >"$work/java.log" 2>&1 ||
    { fail "java: $(tail -5 "$work/java.log")"; summary test_jfr; exit 1; }
check "the JDK wrote a recording" test -s "$rec"

mkdir -p "$work/out"
if "$work/jfr2pprof" "$work/out" "$rec" >"$work/conv.txt" 2>"$work/conv.err"; then
    pass "converted: $(tr '\n' ' ' <"$work/conv.txt")"
else
    fail "jfr2pprof: $(cat "$work/conv.err")"
    summary test_jfr
    exit 1
fi

compare() { # EVENT PROFILE_FILE TYPE UNIT PER_SAMPLE
    local ev=$1 file=$work/out/$2.pb.gz
    if [ ! -f "$file" ]; then
        fail "$ev: no $2 profile"
        return
    fi
    jfr print --json --events "$ev" "$rec" >"$work/$ev.json" 2>"$work/jfr.err" ||
        { fail "jfr print $ev: $(cat "$work/jfr.err")"; return; }
    "$work/pprof_top" -type "$3" -unit "$4" "$file" >"$work/$ev.top" 2>"$work/top.err" ||
        { fail "pprof_top $2: $(cat "$work/top.err")"; return; }
    count_lines "$(python3 "$ROOT/tests/integration/jfr_compare.py" "$work/$ev.json" \
        "$work/$ev.top" "$ev" "$5")"
}
compare jdk.ExecutionSample process_cpu_cpu_nanoseconds_cpu_nanoseconds cpu nanoseconds 10000000
compare jdk.JavaMonitorEnter mutex_contentions_count_mutex_count contentions count 1
compare jdk.ThreadPark block_contentions_count_block_count contentions count 1

# The same recording through the receiver: stored, then read back by stoke-query.
"$ROOT/build/stoke-agent" --no-sampling --receive 127.0.0.1:0 --store "$work/store" --host-name jfr \
    --metrics-addr off --flush 10 2>"$work/agent.log" &
apid=$!
for _ in $(seq 50); do
    rport=$(sed -n 's/.*on port \([0-9]*\).*/\1/p' "$work/agent.log")
    [ -n "$rport" ] && break
    sleep 0.1
done
code=$(curl -s -o "$work/ans" -w '%{http_code}' --data-binary @"$rec" \
    "http://127.0.0.1:$rport/ingest?name=jdkrec&format=jfr&spyName=javaspy")
check "the recording pushed to /ingest?format=jfr: 200 ($(head -c 100 "$work/ans"))" test "$code" = 200
kill -TERM "$apid"
wait "$apid"
"$ROOT/build/stoke-query" --store "$work/store" --listen 127.0.0.1:0 >/dev/null 2>"$work/query.log" &
qpid=$!
for _ in $(seq 50); do
    qport=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$work/query.log")
    [ -n "$qport" ] && break
    sleep 0.1
done
now_ms=$(($(date +%s) * 1000))
stored() { # EVENT PROFILE_TYPE PER_SAMPLE: the receiver's copy against jfr print
    curl -s -G "http://127.0.0.1:$qport/api/v1/top" --data-urlencode "from=$((now_ms - 3600000))" \
        --data-urlencode "until=$((now_ms + 3600000))" --data-urlencode 'query={service_name="jdkrec"}' \
        --data-urlencode "profile_type=$2" --data-urlencode limit=100000 |
        python3 -c 'import json,sys; j=json.load(sys.stdin); json.dump({"self": {f["name"]: f["self"] for f in j["functions"]}}, sys.stdout)' \
            >"$work/stored-$1.top"
    count_lines "$(python3 "$ROOT/tests/integration/jfr_compare.py" "$work/$1.json" \
        "$work/stored-$1.top" "$1" "$3" | sed 's/^\(PASS\|FAIL\) /\1 via the receiver and stoke-query: /')"
}
stored jdk.ExecutionSample process_cpu:cpu:nanoseconds:cpu:nanoseconds 10000000
stored jdk.JavaMonitorEnter mutex:contentions:count:mutex:count 1
stored jdk.ThreadPark block:contentions:count:block:count 1
kill "$qpid"
wait "$qpid" 2>/dev/null

# A truncated recording: refused, with a message, nothing written.
size=$(stat -c %s "$rec")
head -c $((size / 2)) "$rec" >"$work/half.jfr"
mkdir -p "$work/out2"
if "$work/jfr2pprof" "$work/out2" "$work/half.jfr" >/dev/null 2>"$work/half.err"; then
    fail "a recording cut in half was converted"
else
    check "a recording cut in half is refused: $(cat "$work/half.err")" \
        grep -q "truncated" "$work/half.err"
fi
check "nothing written for the truncated recording" test -z "$(ls "$work/out2")"

summary test_jfr
