#!/usr/bin/env bash
# Service names and labels as DESIGN.md §3 says: OTEL_SERVICE_NAME first, then
# service.name in OTEL_RESOURCE_ATTRIBUTES, then the executable name. Three
# copies of one workload run side by side under the real agent; the pprof
# labels are read back with `go tool pprof -raw` (an independent reader).
set -u
. "$(dirname "$0")/lib.sh"
need go
build_fixtures

echo "== service names and labels"
out=$(mktemp -d)
env OTEL_SERVICE_NAME=svc-otel "$FIXTURES/hot_c" 14 >/dev/null & p1=$!
env OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,service.name=svc%2Dattrs" \
    "$FIXTURES/hot_c" 14 >/dev/null & p2=$!
env -u OTEL_SERVICE_NAME -u OTEL_RESOURCE_ATTRIBUTES "$FIXTURES/hot_c" 14 >/dev/null & p3=$!
# both OTEL variables: OTEL_SERVICE_NAME wins
env OTEL_SERVICE_NAME=svc-both OTEL_RESOURCE_ATTRIBUTES=service.name=loser \
    "$FIXTURES/hot_c" 14 >/dev/null & p4=$!
sleep 1
"$AGENT" --output-dir "$out" --duration 10 --window 5 --frequency 49 --metrics-addr off \
    --host-name test-host 2>"$out/agent.log"
rc=$?
wait $p1 $p2 $p3 $p4
check "agent exits 0" test $rc -eq 0

for svc in svc-otel svc-attrs hot_c svc-both; do
    check "service directory $svc/ has profiles" bash -c "ls '$out/$svc'/*.pb.gz >/dev/null 2>&1"
done
check "no directory for the overridden name 'loser'" test ! -d "$out/loser"

raw() { (cd /tmp && go tool pprof -raw "$@" 2>/dev/null); }
for svc in svc-otel svc-attrs hot_c svc-both; do
    f=$(ls "$out/$svc"/*.pb.gz 2>/dev/null | head -1)
    [ -n "$f" ] || { fail "no pprof for $svc"; continue; }
    r=$(raw "$f")
    check "$svc: service_name label" grep -q "service_name:\[$svc\]" <<<"$r"
    check "$svc: host_name label" grep -q "host_name:\[test-host\]" <<<"$r"
    check "$svc: process_executable_name label" grep -q "process_executable_name:\[hot_c\]" <<<"$r"
done
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
