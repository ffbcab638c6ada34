#!/usr/bin/env bash
# Service names and labels as DESIGN.md §3 says: OTEL_SERVICE_NAME first, then
# service.name in OTEL_RESOURCE_ATTRIBUTES, then the executable name. Copies
# of one workload run side by side under the real agent, one of them from a
# sealed memfd (memfd_create + fexecve: its executable is no file); the pprof
# labels are read back with `go tool pprof -raw` (an independent reader).
set -u
. "$(dirname "$0")/lib.sh"
need go
need python3
build_fixtures

echo "== service names and labels"
out=$(mktemp -d)
# Each workload outlives the agent (killed after it): one that exits before
# the first drain would be named by its comm alone, environment unread.
# The same program run from a sealed memfd, as argv[0] "memfd-hot" (first:
# python may take seconds to start on a busy machine).
python3 -c '
import fcntl, os, sys
fd = os.memfd_create("sealed-91173221a7ea", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
data = memoryview(open(sys.argv[1], "rb").read())
while data:
    data = data[os.write(fd, data):]
fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
os.execve(fd, ["memfd-hot", "30"], {})
' "$FIXTURES/hot_c" >/dev/null & p5=$!
for _ in $(seq 300); do readlink /proc/$p5/exe | grep -q '^/memfd:' && break; sleep 0.1; done
env OTEL_SERVICE_NAME=svc-otel "$FIXTURES/hot_c" 30 >/dev/null & p1=$!
env OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,service.name=svc%2Dattrs" \
    "$FIXTURES/hot_c" 30 >/dev/null & p2=$!
env -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES "$FIXTURES/hot_c" 30 >/dev/null & p3=$!
# both OTEL variables: OTEL_SERVICE_NAME wins
env OTEL_SERVICE_NAME=svc-both OTEL_RESOURCE_ATTRIBUTES=service.name=loser \
    "$FIXTURES/hot_c" 30 >/dev/null & p4=$!
# the agent reads a process once: start it after every exec is done
for _ in $(seq 100); do
    [ "$(cat /proc/{$p1,$p2,$p3,$p4}/comm 2>/dev/null | sort -u)" = hot_c ] && break
    sleep 0.1
done
memfd_exe=$(readlink /proc/$p5/exe)
"$AGENT" --output-dir "$out" --duration 10 --window 5 --frequency 49 --metrics-addr off \
    --host-name test-host 2>"$out/agent.log"
rc=$?
kill $p1 $p2 $p3 $p4 $p5 2>/dev/null
wait $p1 $p2 $p3 $p4 $p5 2>/dev/null
check "agent exits 0" test $rc -eq 0
check "the memfd workload ran from its memfd ($memfd_exe)" grep -q '^/memfd:sealed-' <<<"$memfd_exe"

for svc in svc-otel svc-attrs hot_c svc-both memfd-hot; do
    check "service directory $svc/ has profiles" bash -c "ls '$out/$svc'/*.pb.gz >/dev/null 2>&1"
done
check "no directory for the overridden name 'loser'" test ! -d "$out/loser"
# (service "memfd:sealed-..." would be directory memfd_sealed-...)
check "no service named after a memfd ($(cd "$out" && ls -d memfd[:_]* 2>/dev/null | paste -sd' '))" \
    bash -c "! ls -d '$out'/memfd[:_]* >/dev/null 2>&1"

raw() { (cd /tmp && go tool pprof -raw "$@" 2>/dev/null); }
for svc in svc-otel svc-attrs hot_c svc-both; do
    f=$(ls "$out/$svc"/*.pb.gz 2>/dev/null | head -1)
    [ -n "$f" ] || { fail "no pprof for $svc"; continue; }
    r=$(raw "$f")
    check "$svc: service_name label" grep -q "service_name:\[$svc\]" <<<"$r"
    check "$svc: host_name label" grep -q "host_name:\[test-host\]" <<<"$r"
    check "$svc: process_executable_name label" grep -q "process_executable_name:\[hot_c\]" <<<"$r"
done
f=$(ls "$out/memfd-hot"/*.pb.gz 2>/dev/null | head -1)
if [ -n "$f" ]; then
    check "memfd-hot: process_executable_name label" \
        grep -q "process_executable_name:\[memfd-hot\]" <<<"$(raw "$f")"
else
    fail "no pprof for memfd-hot"
fi
# Every pprof opens in go tool pprof with the totals of the folded file beside it.
check "pprof files agree with folded files (go tool pprof + Go reader)" \
    "$ROOT/tests/integration/check_pprof.sh" "$out"
rm -rf "$out"

# Process churn: processes that live 20 ms have exited before the drain
# reads /proc. They must still be named (by the name the BPF program
# remembers), not lumped into "unknown".
echo "== short-lived processes"
out=$(mktemp -d)
cp "$FIXTURES/hot_c" "$out/churn_c"
"$AGENT" --output-dir "$out/prof" --duration 8 --window 4 --frequency 99 --metrics-addr off \
    2>"$out/agent.log" & ap=$!
sleep 1
end=$((SECONDS + 6))
while [ $SECONDS -lt $end ]; do "$out/churn_c" 0.02 >/dev/null; done
wait $ap
check "agent exits 0 under process churn" test $? -eq 0
# The .folded files hold the same counts as the pprof (check_pprof.sh).
folded_sum() { cat "$@" 2>/dev/null | awk '{n += $NF} END {print n + 0}'; }
churn=$(folded_sum "$out"/prof/churn_c/*.folded)
unknown=$(folded_sum "$out"/prof/unknown/*.folded)
echo "  churn_c samples: $churn, unknown: $unknown"
# 6 s of one busy CPU at 99 Hz is ~590 samples; fork/exec time is not ours.
check "short-lived processes are named by their executable ($churn samples)" test "$churn" -ge 200
check "few samples left as 'unknown' ($unknown vs $churn)" test $((unknown * 10)) -le "$churn"
f=$(ls "$out"/prof/churn_c/*.pb.gz 2>/dev/null | head -1)
if [ -n "$f" ]; then
    check "churn_c: process_executable_name label" \
        bash -c "cd /tmp && go tool pprof -raw '$f' 2>/dev/null | grep -q 'process_executable_name:\[churn_c\]'"
else
    fail "no pprof for churn_c"
fi
rm -rf "$out"
summary test_service_names
