#!/usr/bin/env bash
# The push exporters against small test receivers (otlp_receiver.py):
#  (a) the OTLP body decodes with protoc --decode_raw and with an independent
#      wire decoder (otlp_check.py) whose field numbers and wire types are the
#      opentelemetry-proto v1.10 specification's;
#  (b) its per-service totals and leaf functions equal the local pprof of the
#      same window (read by Google's Go parser, build/pprof_total);
#  (c) /ingest requests: query string, X-Scope-OrgID, basic auth, a gzip
#      pprof body with the local pprof's totals;
#  (d) 503/429 are retried, 413 and an unreachable endpoint are dropped and
#      counted in /metrics, sampling goes on, SIGTERM ends the agent cleanly.
set -u
. "$(dirname "$0")/lib.sh"
need python3
need protoc
need go
need curl
build_fixtures
T=$ROOT/tests/integration
"$T/check_pprof.sh" /nonexistent >/dev/null 2>&1 # builds build/pprof_total
PT=$ROOT/build/pprof_total
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

receiver() { # receiver DIR SCRIPT: starts it; the port is in DIR/port
    mkdir -p "$1"
    python3 "$T/otlp_receiver.py" "$1" "$2" >/dev/null 2>&1 & pids+=($!)
    for _ in $(seq 50); do [ -f "$1/port" ] && break; sleep 0.1; done
}
metric() { # metric FILE NAME EXPORTER
    sed -n "s/^$2{exporter=\"$3\"} //p" "$1"
}

echo "== OTLP and /ingest, with 503 and 429 first"
receiver "$work/otlp" 503,429,partial; po=$(cat "$work/otlp/port")
receiver "$work/pyro" ""; pp=$(cat "$work/pyro/port")
printf 'p\n' >"$work/pw"
"$FIXTURES/hot_c" 30 >/dev/null & pids+=($!)
mport=$((20000 + RANDOM % 20000))
"$AGENT" --output-dir "$work/local" --window 5 --frequency 99 --duration 22 \
    --metrics-addr "127.0.0.1:$mport" --host-name test-host \
    --otlp-endpoint "http://127.0.0.1:$po" --otlp-header X-Test=yes \
    --pyroscope-url "http://127.0.0.1:$pp/" --pyroscope-org-id tenant-1 \
    --pyroscope-basic-auth-user u --pyroscope-basic-auth-password-file "$work/pw" \
    2>"$work/agent.log" & agent=$!
sleep 20
curl -s "http://127.0.0.1:$mport/metrics" >"$work/metrics1"
wait $agent
rc=$?
check "agent exits 0" test $rc -eq 0
check "password never logged" bash -c "! grep -q 'dTpw\|: p$' '$work/agent.log'"

nreq=$(ls "$work/otlp"/*.json 2>/dev/null | wc -l)
check "OTLP requests retried after 503 and 429 ($nreq requests)" test "$nreq" -ge 4
check "OTLP path and headers" python3 -c "
import json,sys
j=json.load(open('$work/otlp/0000.json'))
h={k.lower():v for k,v in j['headers'].items()}
assert j['path']=='/v1development/profiles', j
assert h['content-type']=='application/x-protobuf' and h['content-encoding']=='gzip', h
assert h['x-test']=='yes', h"
check "partial success counted (stoke_export_profiles_rejected_total)" \
    test "$(metric "$work/metrics1" stoke_export_profiles_rejected_total otlp)" -ge 1
check "retries counted (stoke_export_failed_attempts_total)" \
    test "$(metric "$work/metrics1" stoke_export_failed_attempts_total otlp)" -ge 2

compared=0 bad=0 raw_ok=0 field_ok=0
for j in "$work/otlp"/*.json; do
    b=${j%.json}.body
    grep -q '"answer": "\(200\|partial\)"' "$j" || continue
    gunzip -c <"$b" >"$b.raw" || { fail "OTLP body is not gzip"; continue; }
    protoc --decode_raw <"$b.raw" >"$b.txt" && raw_ok=$((raw_ok + 1))
    python3 "$T/otlp_check.py" "$b.raw" "$work/otlp_totals" >"$b.check" && field_ok=$((field_ok + 1))
done
check "protoc --decode_raw reads every OTLP body ($raw_ok)" test "$raw_ok" -ge 3
check "field numbers and wire types as in the specification ($field_ok bodies)" test "$field_ok" -ge 3
cat "$(ls "$work"/otlp/*.check | head -1)" | cut -c1-400
grep -h '^otlp_check: [^0-9]' "$work"/otlp/*.check | grep -v profiles | sort -u | head
for t in "$work"/otlp_totals/*/*.totals; do
    svc=$(basename "$(dirname "$t")"); ts=$(basename "$t" .totals)
    f="$work/local/$svc/$ts.pb.gz"
    [ -f "$f" ] || continue
    if "$PT" "$f" | cmp -s - "$t"; then compared=$((compared + 1)); else
        bad=$((bad + 1)); echo "  differs: $svc/$ts"; diff <("$PT" "$f") "$t" | head -5; fi
done
check "OTLP totals and leaves equal the local pprof ($compared windows x services, $bad differ)" \
    test "$compared" -ge 3 -a "$bad" -eq 0
hot=$(ls "$work"/otlp_totals/hot_c/*.totals 2>/dev/null | head -1)
[ -n "$hot" ] && echo "  e.g. hot_c: $(head -1 "$hot"), $(sort -t$'\t' -k1,1 -rn "$hot" | grep leaf | head -1)"
check "resource attributes: service.name, host.name, process.executable.name" bash -c \
    "grep -q '^host.name=test-host' $work/otlp_totals/hot_c/*.resource && grep -q '^process.executable.name=hot_c' $work/otlp_totals/hot_c/*.resource"

# /ingest
ok=0 bad=0 hdr=0 n=0
for j in "$work/pyro"/*.json; do
    b=${j%.json}.body
    read -r name from until fmt org auth < <(python3 -c "
import json,urllib.parse as u
j=json.load(open('$j')); q=dict(u.parse_qsl(j['query'])); h={k.lower():v for k,v in j['headers'].items()}
print(q.get('name','-').replace(' ','_'), q.get('from','-'), q.get('until','-'), q.get('format','-'), h.get('x-scope-orgid','-'), h.get('authorization','-').replace(' ','_'))")
    n=$((n + 1))
    [ "$org" = tenant-1 ] && [ "$auth" = Basic_dTpw ] && [ "$fmt" = pprof ] && [ "$until" -gt "$from" ] && hdr=$((hdr + 1))
    case $name in hot_c\{*host_name=test-host*\}) ;; *) continue ;; esac
    gunzip -t <"$b" 2>/dev/null || { bad=$((bad + 1)); continue; }
    f=$(for l in "$work"/local/hot_c/*.pb.gz; do s=$(basename "$l" .pb.gz); [ $((s / 1000000000)) -eq "$from" ] && echo "$l"; done | head -1)
    [ -n "$f" ] || continue
    cp "$b" "$work/ingest.pb.gz"
    if cmp -s <("$PT" "$f") <("$PT" "$work/ingest.pb.gz"); then ok=$((ok + 1)); else bad=$((bad + 1)); fi
done
check "/ingest: name, from/until, format=pprof, X-Scope-OrgID, basic auth ($hdr of $n)" \
    test "$n" -ge 3 -a "$hdr" -eq "$n"
check "/ingest bodies are gzip pprof with the local totals ($ok windows, $bad differ)" \
    test "$ok" -ge 3 -a "$bad" -eq 0
python3 -c "import json,urllib.parse as u; print('  e.g. /ingest?' + u.unquote(json.load(open('$work/pyro/0000.json'))['query']))"

echo "== 413, garbage and an endpoint that is down"
receiver "$work/pyro2" 413,garbage,garbage,garbage,garbage,garbage,garbage; pk=$(cat "$work/pyro2/port")
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mport=$((20000 + RANDOM % 20000))
# A busy process of our own, so every 2 s window has samples to write even on
# an otherwise idle machine (windows without samples write no files).
"$FIXTURES/hot_c" 24 >/dev/null & pids+=($!)
"$AGENT" --output-dir "$work/local2" --window 2 --frequency 99 --metrics-addr "127.0.0.1:$mport" \
    --otlp-endpoint "http://127.0.0.1:$dead" --pyroscope-url "http://127.0.0.1:$pk" \
    --otlp-timeout 2 2>"$work/agent2.log" & agent=$!
sleep 21
# five attempts with jittered back-off can take ~17 s after a slow start-up: wait up to 40 s more
for _ in $(seq 40); do
    curl -s "http://127.0.0.1:$mport/metrics" >"$work/metrics2"
    [ "$(sed -n 's/^stoke_export_requests_dropped_total{exporter="otlp"} //p' "$work/metrics2")" -ge 1 ] 2>/dev/null && break
    sleep 1
done
kill -TERM $agent
wait $agent
rc=$?
check "agent with a dead endpoint exits 0 on SIGTERM" test $rc -eq 0
nwin=$(ls "$work"/local2/*/*.pb.gz 2>/dev/null | xargs -n1 basename 2>/dev/null | sort -u | wc -l)
# ~10 windows in 21 s; start-up (BPF load, kallsyms) may take one or two.
check "sampling went on: $nwin local windows in 21 s or more" test "$nwin" -ge 7
check "OTLP to a refused port: attempts failed and requests dropped, counted" bash -c \
    "[ \"\$(sed -n 's/^stoke_export_failed_attempts_total{exporter=\"otlp\"} //p' $work/metrics2)\" -ge 4 ] && [ \"\$(sed -n 's/^stoke_export_requests_dropped_total{exporter=\"otlp\"} //p' $work/metrics2)\" -ge 1 ]"
n413=$(grep -l '"answer": "413"' "$work"/pyro2/*.json | wc -l)
ngarb=$(grep -l '"answer": "garbage"' "$work"/pyro2/*.json | wc -l)
check "413 not retried, garbage retried ($n413, $ngarb requests)" test "$n413" -eq 1 -a "$ngarb" -ge 2
check "pyroscope drops counted" test "$(metric "$work/metrics2" stoke_export_requests_dropped_total pyroscope)" -ge 1
check "pyroscope delivers again after the garbage" test "$(metric "$work/metrics2" stoke_export_requests_sent_total pyroscope)" -ge 1
grep -E '^stoke_export_(requests|failed)' "$work/metrics2" | sed 's/^/  /'
summary test_exporters
