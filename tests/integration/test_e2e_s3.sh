#!/usr/bin/env bash
# End to end through a real S3-compatible server: the agent profiles two
# fixtures for E2E_SECONDS (default 120) straight into s3rver, writing its
# local pprof files too; the AWS CLI lists what landed; stoke-query, pointed
# at the bucket, answers /api/v1/top with exactly the per-function sample
# counts of the agent's own pprof windows (read by Google's Go pprof parser,
# not by Stoke's code); then `stoke-query compact` merges the hour and the
# answers must be identical, from fewer objects.
set -u
. "$(dirname "$0")/lib.sh"
need python3
need node
need aws
need curl
need go
build_fixtures

SECS=${E2E_SECONDS:-120}
S3RVER=$ROOT/build/node_modules/.bin/s3rver
QUERY=$ROOT/build/stoke-query
[ -x "$S3RVER" ] || { fail "s3rver missing (scripts/deps.sh build test installs it)"; summary test_e2e_s3; exit 1; }
[ -x "$QUERY" ] || { fail "build/stoke-query missing"; summary test_e2e_s3; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

echo "== end to end: agent → s3rver → stoke-query (${SECS} s)"
port=$(free_port)
mkdir -p "$tmp/s3"
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$tmp/s3" -a 127.0.0.1 -p "$port" --silent \
    --configure-bucket stoke-e2e >"$tmp/s3rver.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
EP=http://127.0.0.1:$port
STORE=s3://stoke-e2e/fleet

OTEL_SERVICE_NAME=e2e-c "$FIXTURES/hot_c" $((SECS + 3)) >/dev/null & pids+=($!)
OTEL_SERVICE_NAME=e2e-cpp "$FIXTURES/hot_cpp" $((SECS + 3)) >/dev/null & pids+=($!)
sleep 0.5
from_ms=$(($(date +%s%3N) - 1000))
"$AGENT" --store "$STORE" --s3-endpoint "$EP" --flush 30 --output-dir "$tmp/local" \
    --duration "$SECS" --metrics-addr off --host-name e2e-host 2>"$tmp/agent.log"
rc=$?
until_ms=$(($(date +%s%3N) + 1000))
check "agent exits 0" test $rc -eq 0
check "agent uploaded with no failed attempt" grep -q "0 dropped (0 samples), 0 failed attempts" "$tmp/agent.log"
tail -1 "$tmp/agent.log"

aws --endpoint-url "$EP" s3 ls --recursive s3://stoke-e2e/fleet/ >"$tmp/ls.txt" 2>&1
nseg=$(grep -c '\.seg$' "$tmp/ls.txt")
nman=$(grep -c 'entries/.*\.man$' "$tmp/ls.txt")
check "the AWS CLI lists segments ($nseg)" test "$nseg" -ge $((SECS / 30))
check "one object per flush: segments alone, no manifest entry ($nman)" test "$nman" -eq 0
check "nothing but segments written ($(wc -l <"$tmp/ls.txt") objects)" test "$(wc -l <"$tmp/ls.txt")" -eq "$nseg"

qport=$(free_port)
"$QUERY" --store "$STORE" --s3-endpoint "$EP" --s3-path-style --listen "127.0.0.1:$qport" \
    >"$tmp/query.log" 2>&1 &
qpid=$!
pids+=($qpid)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$qport/healthz" && break; sleep 0.2; done

[ -x "$ROOT/build/pprof_total" ] ||
    (cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o build/pprof_total ./tests/integration/pprof_total)

# expected: leaf function → samples, summed over the agent's local windows
expected() {
    "$ROOT/build/pprof_total" "$tmp/local/$1"/*.pb.gz |
        awk -F'\t' '{split($1, a, " ")}
             a[1] == "total" {t += a[2]}
             a[1] == "leaf" {s[$2] += a[2]}
             END {printf "total\t%d\n", t; for (k in s) printf "%s\t%d\n", k, s[k]}' | sort
}
# actual: the query API's answer, samples/count profile type
actual() {
    curl -s -G "http://127.0.0.1:$qport/api/v1/top" \
        --data-urlencode "query={service_name=\"$1\"}" \
        --data-urlencode "profile_type=process_cpu:samples:count:cpu:nanoseconds" \
        --data-urlencode "from=$from_ms" --data-urlencode "until=$until_ms" \
        --data-urlencode "limit=100000" >"$tmp/top.json"
    python3 - "$tmp/top.json" <<'PY' | sort
import json, sys
d = json.load(open(sys.argv[1]))
print(f"total\t{d['total']}")
for f in d["functions"]:
    if f["self"]:
        print(f"{f['name']}\t{f['self']}")
PY
}

compare() { # SERVICE LABEL
    expected "$1" >"$tmp/exp.txt"
    actual "$1" >"$tmp/act.txt" 2>"$tmp/act.err"
    if diff -u "$tmp/exp.txt" "$tmp/act.txt" >"$tmp/diff.txt"; then
        pass "$2: $1 top functions equal the agent's pprof windows ($(grep "^total" "$tmp/exp.txt" | cut -f2) samples, $(grep -vc "^total" "$tmp/exp.txt") functions)"
    else
        fail "$2: $1 top functions differ from the agent's pprof windows"
        head -20 "$tmp/diff.txt"
        cat "$tmp/act.err" 2>/dev/null | head -3
    fi
}
compare e2e-c "before compaction"
compare e2e-cpp "before compaction"

"$QUERY" compact --store "$STORE" --s3-endpoint "$EP" --s3-path-style --open-hours \
    >"$tmp/compact.log" 2>&1
check "stoke-query compact exits 0" test $? -eq 0
cat "$tmp/compact.log" | tail -2
aws --endpoint-url "$EP" s3 ls --recursive s3://stoke-e2e/fleet/ >"$tmp/ls2.txt" 2>&1
check "after compaction: blocks written" grep -q '/blocks/.*\.blk$' "$tmp/ls2.txt"
check "after compaction: no small segments left" test "$(grep -c '\.seg$' "$tmp/ls2.txt")" -eq 0
check "after compaction: an hour manifest" grep -q '/hour-[0-9]*\.man$' "$tmp/ls2.txt"
check "fewer objects after compaction ($(wc -l <"$tmp/ls.txt") → $(wc -l <"$tmp/ls2.txt"))" \
    test "$(wc -l <"$tmp/ls2.txt")" -lt "$(wc -l <"$tmp/ls.txt")"

# a fresh worker (cold cache) must give the same answers
kill $qpid 2>/dev/null; wait $qpid 2>/dev/null
"$QUERY" --store "$STORE" --s3-endpoint "$EP" --s3-path-style --listen "127.0.0.1:$qport" \
    >"$tmp/query2.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$qport/healthz" && break; sleep 0.2; done
compare e2e-c "after compaction"
compare e2e-cpp "after compaction"

bytes=$(awk '{s += $3} END {print s}' "$tmp/ls.txt")
bytes2=$(awk '{s += $3} END {print s}' "$tmp/ls2.txt")
echo "  figures: $nseg segments + $nman entries = $bytes bytes before, $(wc -l <"$tmp/ls2.txt") objects = $bytes2 bytes after compaction"
summary test_e2e_s3
