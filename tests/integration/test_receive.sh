#!/usr/bin/env bash
# The agent's receiver (--receive, ingest/receiver.h):
#  (a) OTLP round trip: agent A samples a workload and exports OTLP/HTTP to
#      agent B (--no-sampling --receive); stoke-query over B's store gives
#      per-function totals equal to A's own segments, service by service,
#      and for hot_c equal to A's local pprof files (read by Google's Go
#      parser, tests/integration/pprof_top);
#  (a2) OTLP/HTTP JSON: A's OTLP requests, captured, sent again as protobuf
#      and in the JSON encoding (written by Google's protobuf library,
#      tests/integration/pb_json.py) to two tenants of one receiver: the
#      stored per-function totals are identical;
#  (b) corpus pprof pushed to /ingest as the Go SDK does (multipart, part
#      "profile") and raw: per-function values equal the file's, every type;
#  (c) folded stacks (A's own .folded files) round-trip;
#  (d) limits and bad input: 413, 429 + Retry-After, 401, X-Scope-OrgID,
#      malformed protobuf or JSON, gzip, content types, names, formats -> the right
#      4xx naming the problem, and nothing written for them;
#  (e) figures: throughput on one core and RSS under 100 concurrent pushers.
set -u
. "$(dirname "$0")/lib.sh"
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}
need curl
need go
need python3
need protoc
need /usr/bin/python3 # Debian's, with python3-protobuf (pb_json.py)
[ -d "$CORPUS" ] || { fail "no corpus at $CORPUS"; summary test_receive; exit 1; }
build_fixtures
T=$ROOT/tests/integration
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT
export GOCACHE=${GOCACHE:-$work/gocache}
(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$work/pprof_top" ./tests/integration/pprof_top &&
    GO111MODULE=off go build -o "$work/push_load" ./tests/integration/push_load) ||
    { fail "building the Go helpers"; summary test_receive; exit 1; }

receiver() { # receiver NAME [agent args]: starts a receive-only agent; sets $rport $rpid
    local name=$1 i; shift
    rport=
    "$AGENT" --no-sampling --receive 127.0.0.1:0 --store "$work/$name" --host-name "$name" \
        --metrics-addr off --flush 10 "$@" 2>"$work/$name.log" &
    rpid=$!
    pids+=($rpid)
    for i in $(seq 50); do
        rport=$(sed -n 's/.*on port \([0-9]*\).*/\1/p' "$work/$name.log")
        [ -n "$rport" ] && return 0
        sleep 0.1
    done
    return 1
}
now_ms=$(($(date +%s) * 1000))
FROM=$((now_ms - 3600000))
UNTIL=$((now_ms + 3600000))
CPU=process_cpu:cpu:nanoseconds:cpu:nanoseconds

echo "== (a) OTLP/HTTP: agent A -> agent B's receiver"
receiver B || { fail "receiver B did not start: $(cat "$work/B.log")"; summary test_receive; exit 1; }
portB=$rport pidB=$rpid
"$FIXTURES/hot_c" 25 >/dev/null & pids+=($!)
"$AGENT" --store "$work/A" --output-dir "$work/localA" --host-name A --window 5 --flush 10 \
    --frequency 99 --duration 20 --metrics-addr off \
    --otlp-endpoint "http://127.0.0.1:$portB" 2>"$work/A.log"
check "agent A exits 0" test $? -eq 0
sleep 1
kill -TERM "$pidB"; wait "$pidB"
check "receiver B exits 0 on SIGTERM" test $? -eq 0
grep -h 'receiver:' "$work/B.log" | sed 's/^/  /'
check "B wrote segments under its own host" bash -c "ls $work/B/default/segments/*/*/B/*.seg >/dev/null"
start_worker "$work/A"; qa=$qport
start_worker "$work/B"; qb=$qport
same_tops "$qa" "$qb" "$CPU"
check "B's per-function totals equal A's segments ($n services, $bad differ)" \
    test "$n" -ge 1 -a "$bad" -eq 0
"$work/pprof_top" -type cpu -unit nanoseconds "$work"/localA/hot_c/*.pb.gz >"$work/want.json"
top_json "$qb" hot_c "$CPU" >"$work/b.json"
out=$(python3 "$T/top_compare.py" "$work/want.json" "$work/b.json")
check "hot_c on B equals A's local pprof files, Go's parser ($out)" test $? -eq 0

echo "== (a2) OTLP/HTTP JSON: the same requests as protobuf and as JSON"
protoc -I "$ROOT/proto" --include_imports --descriptor_set_out="$work/otlp.fds" \
    "$ROOT/proto/otlp/profiles_service.proto"
protoc -I "$ROOT/proto" --include_imports --descriptor_set_out="$work/push.fds" \
    "$ROOT/proto/pyroscope/push.proto"
OTLP_REQ=opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest
mkdir -p "$work/cap"
python3 "$T/otlp_receiver.py" "$work/cap" >/dev/null 2>&1 & pids+=($!)
for i in $(seq 50); do [ -f "$work/cap/port" ] && break; sleep 0.1; done
"$FIXTURES/hot_c" 8 >/dev/null & pids+=($!)
"$AGENT" --store "$work/A2" --host-name A2 --window 2 --flush 10 --frequency 99 --duration 6 \
    --metrics-addr off --otlp-endpoint "http://127.0.0.1:$(cat "$work/cap/port")" 2>"$work/A2.log"
check "agent A2 exports to the capturing receiver" bash -c "ls $work/cap/0000.body >/dev/null"
receiver F || { fail "receiver F did not start"; summary test_receive; exit 1; }
portF=$rport pidF=$rpid
nb=0 bad=0
for body in "$work"/cap/*.body; do
    ce=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('headers',{}).get('Content-Encoding',''))" "${body%.body}.json")
    /usr/bin/python3 "$T/pb_json.py" "$work/otlp.fds" "$OTLP_REQ" "$body" "$body.js"
    c1=$(curl -s -o "$work/ans1" -w '%{http_code}' -H "X-Scope-OrgID: pb" -H "Content-Type: application/x-protobuf" \
        ${ce:+-H "Content-Encoding: $ce"} --data-binary @"$body" "http://127.0.0.1:$portF/v1development/profiles")
    # every other one (the first) gzip'd: JSON and Content-Encoding together
    if [ $((nb % 2)) = 0 ]; then gzip -c "$body.js" >"$body.jsz"; z=(-H "Content-Encoding: gzip" --data-binary @"$body.jsz");
    else z=(--data-binary @"$body.js"); fi
    c2=$(curl -s -o "$work/ans2" -D "$work/hdr2" -w '%{http_code}' -H "X-Scope-OrgID: js" \
        -H "Content-Type: application/json" "${z[@]}" "http://127.0.0.1:$portF/v1development/profiles")
    if [ "$c1" = 200 ] && [ "$c2" = 200 ] && grep -qi '^Content-Type: application/json' "$work/hdr2" &&
        python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$work/ans2"; then nb=$((nb + 1)); else
        bad=$((bad + 1)); echo "  $(basename "$body"): protobuf $c1, JSON $c2 $(head -c 200 "$work/ans2")"; fi
done
check "A's $nb OTLP requests: 200 as protobuf and as JSON (a JSON answer), $bad not" test "$nb" -ge 1 -a "$bad" -eq 0
sleep 1
kill -TERM "$pidF"; wait "$pidF"
start_worker "$work/F"; qf=$qport
spb=$(services_of "$qf" pb) sjs=$(services_of "$qf" js)
check "the same services stored from protobuf and JSON ($spb)" test -n "$spb" -a "$spb" = "$sjs"
n=0 bad=0
for svc in $spb; do
    top_json "$qf" "$svc" "$CPU" pb >"$work/pb.json"
    top_json "$qf" "$svc" "$CPU" js >"$work/js.json"
    if out=$(python3 "$T/top_compare.py" "$work/pb.json" "$work/js.json") &&
        python3 -c "import json,sys; a,b=(json.load(open(f)) for f in sys.argv[1:]); assert a['total']==b['total']>0" \
            "$work/pb.json" "$work/js.json"; then n=$((n + 1)); else
        bad=$((bad + 1)); echo "  $svc: $out"; fi
done
check "per-function totals from JSON equal those from protobuf ($n services, $bad differ)" \
    test "$n" -ge 1 -a "$bad" -eq 0

echo "== (b) corpus pprof as the Go SDK pushes it (multipart) and raw"
receiver C || { fail "receiver C did not start"; summary test_receive; exit 1; }
portC=$rport pidC=$rpid
T0=$(($(date +%s) - 600))
for f in go-cpu.pb.gz go-heap.pb.gz python-pyspy.pb.gz node-cpu.pb.gz node-heap.pb.gz go-cpu-labels.pprof; do
    [ -f "$CORPUS/$f" ] || { fail "$f: not in the corpus"; continue; }
    s=${f%%.*}
    code=$(curl -s -o "$work/ans" -w '%{http_code}' \
        -F "profile=@$CORPUS/$f;filename=profile.pprof;type=application/octet-stream" \
        "http://127.0.0.1:$portC/ingest?name=mp-$s.cpu%7Benv%3Dtest%7D&from=$T0&until=$((T0 + 10))&spyName=gospy&sampleRate=100")
    check "multipart $f: 200 ($(head -c 100 "$work/ans"))" test "$code" = 200
    code=$(curl -s -o "$work/ans" -w '%{http_code}' --data-binary "@$CORPUS/$f" \
        "http://127.0.0.1:$portC/ingest?name=raw-$s&format=pprof&from=$T0")
    check "raw $f: 200 ($(head -c 100 "$work/ans"))" test "$code" = 200
done

# JFR as Pyroscope's Java agent sends it (multipart jfr + labels parts) and raw
JFRC=${STOKE_JFR_CORPUS:-$(dirname "$CORPUS")/jfr}
[ -f "$JFRC/dump1.jfr.gz" ] || fail "no JFR corpus at $JFRC"
code=$(curl -s -o "$work/ans" -w '%{http_code}' -F "jfr=@$JFRC/dump1.jfr.gz;filename=jfr" \
    -F "labels=@$JFRC/dump1.labels.pb.gz;filename=labels" \
    "http://127.0.0.1:$portC/ingest?name=jfr-dump1&format=jfr&from=$T0&until=$((T0 + 10))&spyName=javaspy")
check "JFR multipart dump1 (jfr + labels): 200 ($(head -c 100 "$work/ans"))" test "$code" = 200
code=$(curl -s -o "$work/ans" -w '%{http_code}' --data-binary "@$JFRC/kafka-cpu-lock-alloc.jfr.gz" \
    "http://127.0.0.1:$portC/ingest?name=jfr-kafka&format=jfr&from=$T0")
check "JFR raw kafka-cpu-lock-alloc: 200 ($(head -c 100 "$work/ans"))" test "$code" = 200

# Connect Push stores a profile at its pprof's time: A's own recent windows
pushed=$(ls "$work"/localA/hot_c/*.pb.gz | head -2)
for f in $pushed; do
    python3 "$T/otlp_craft.py" "$work/push.pb" push "$f" push-hot
    code=$(curl -s -o "$work/ans" -w '%{http_code}' -H "Content-Type: application/proto" \
        --data-binary @"$work/push.pb" "http://127.0.0.1:$portC/push.v1.PusherService/Push")
    check "Connect Push of A's $(basename "$f"): 200 ($(head -c 100 "$work/ans"))" test "$code" = 200
    python3 "$T/otlp_craft.py" "$work/push.pb" push "$f" push-hot-json
    /usr/bin/python3 "$T/pb_json.py" "$work/push.fds" push.v1.PushRequest "$work/push.pb" "$work/push.js"
    code=$(curl -s -o "$work/ans" -w '%{http_code}' -H "Content-Type: application/json" \
        --data-binary @"$work/push.js" "http://127.0.0.1:$portC/push.v1.PusherService/Push")
    check "Connect Push in JSON of A's $(basename "$f"): 200 {} ($(head -c 100 "$work/ans"))" \
        bash -c "[ $code = 200 ] && [ \"\$(cat $work/ans)\" = '{}' ]"
done

echo "== (c) folded"
cat "$work"/localA/hot_c/*.folded >"$work/hot.folded"
code=$(curl -s -o "$work/ans" -w '%{http_code}' --data-binary "@$work/hot.folded" \
    "http://127.0.0.1:$portC/ingest?name=folded-rt%7Bk%3Dv%7D&format=folded&sampleRate=99&from=$T0")
check "folded: 200 ($(head -c 100 "$work/ans"))" test "$code" = 200
printf 'a;b;c 3\r\na;b 2\n\nx 1\n' >"$work/small.folded"
code=$(curl -s -o "$work/ans" -w '%{http_code}' --data-binary "@$work/small.folded" \
    "http://127.0.0.1:$portC/ingest?name=folded-small&format=collapsed&from=$T0")
check "collapsed with CRLF and a blank line: 200" test "$code" = 200
sleep 1
kill -TERM "$pidC"; wait "$pidC"
start_worker "$work/C"; qc=$qport
for f in go-cpu.pb.gz go-heap.pb.gz python-pyspy.pb.gz node-cpu.pb.gz node-heap.pb.gz go-cpu-labels.pprof; do
    s=${f%%.*}
    for kind in mp raw; do
        types=$(curl -s -G "http://127.0.0.1:$qc/api/v1/profile_types" --data-urlencode "from=$FROM" \
            --data-urlencode "until=$UNTIL" --data-urlencode "query={service_name=\"$kind-$s\"}" |
            python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["profile_types"]))')
        [ -n "$types" ] || { fail "$kind-$s: no profile types"; continue; }
        ok=0 bad=0 msg=
        for pt in $types; do
            IFS=: read -r _ typ unit _ _ <<<"$pt"
            "$work/pprof_top" -type "$typ" -unit "$unit" "$CORPUS/$f" >"$work/want.json" 2>&1
            top_json "$qc" "$kind-$s" "$pt" >"$work/got.json"
            if m=$(python3 "$T/top_compare.py" "$work/want.json" "$work/got.json"); then ok=$((ok + 1)); else
                bad=$((bad + 1)); msg="$msg $typ: $m"; fi
        done
        check "$kind $f: every type's per-function values equal the file's ($ok types, $bad differ$msg)" \
            test "$ok" -ge 1 -a "$bad" -eq 0
    done
done
# JFR: each type's per-function values equal Pyroscope's own conversion
# (the expected file of the empty label set holds the whole profile)
for c in "jfr-dump1 dump1 process_cpu:cpu:nanoseconds:cpu:nanoseconds" \
    "jfr-kafka kafka-cpu-lock-alloc process_cpu:cpu:nanoseconds:cpu:nanoseconds" \
    "jfr-kafka kafka-cpu-lock-alloc memory:alloc_in_new_tlab_bytes:bytes:space:bytes" \
    "jfr-kafka kafka-cpu-lock-alloc memory:alloc_in_new_tlab_objects:count:space:bytes"; do
    read -r svc src pt <<<"$c"
    want_file="$JFRC/expected/$src.jfr.gz.${pt//:/_}.17241709254077376921.pb.gz"
    IFS=: read -r _ typ unit _ _ <<<"$pt"
    "$work/pprof_top" -type "$typ" -unit "$unit" "$want_file" >"$work/want.json" 2>&1
    top_json "$qc" "$svc" "$pt" >"$work/got.json"
    out=$(python3 "$T/top_compare.py" "$work/want.json" "$work/got.json")
    check "JFR $src $pt: per-function values equal Pyroscope's conversion ($out)" test $? -eq 0
done
curl -s -G "http://127.0.0.1:$qc/api/v1/label_values" --data-urlencode name=pyroscope_spy \
    --data-urlencode "from=$FROM" --data-urlencode "until=$UNTIL" >"$work/lv.json"
check "JFR: spyName became pyroscope_spy" grep -q '"javaspy"' "$work/lv.json"

for svc in push-hot push-hot-json; do
    ok=0 bad=0 msg=
    for pt in process_cpu:samples:count:cpu:nanoseconds "$CPU"; do
        IFS=: read -r _ typ unit _ _ <<<"$pt"
        "$work/pprof_top" -type "$typ" -unit "$unit" $pushed >"$work/want.json" 2>&1
        top_json "$qc" $svc "$pt" >"$work/got.json"
        if m=$(python3 "$T/top_compare.py" "$work/want.json" "$work/got.json"); then ok=$((ok + 1)); else
            bad=$((bad + 1)); msg="$msg $typ: $m"; fi
    done
    check "Connect Push ($svc): per-function values equal the pushed files ($ok types, $bad differ$msg)" \
        test "$ok" -eq 2 -a "$bad" -eq 0
done
curl -s -G "http://127.0.0.1:$qc/api/v1/label_values" --data-urlencode name=env \
    --data-urlencode "from=$FROM" --data-urlencode "until=$UNTIL" >"$work/lv.json"
check "name{env=test} became a label" grep -q '"test"' "$work/lv.json"
curl -s -G "http://127.0.0.1:$qc/api/v1/label_values" --data-urlencode name=pyroscope_spy \
    --data-urlencode "from=$FROM" --data-urlencode "until=$UNTIL" >"$work/lv.json"
check "spyName became pyroscope_spy" grep -q '"gospy"' "$work/lv.json"
python3 "$T/folded_top.py" "$work/hot.folded" >"$work/want.json"
top_json "$qc" folded-rt process_cpu:samples:count:cpu:nanoseconds >"$work/got.json"
out=$(python3 "$T/top_compare.py" "$work/want.json" "$work/got.json")
check "folded round trip: samples per function equal the file's ($out)" test $? -eq 0
python3 "$T/folded_top.py" "$work/small.folded" >"$work/want.json"
top_json "$qc" folded-small process_cpu:samples:count:cpu:nanoseconds >"$work/got.json"
out=$(python3 "$T/top_compare.py" "$work/want.json" "$work/got.json")
check "collapsed: samples per function equal ($out)" test $? -eq 0
top_json "$qc" folded-small "$CPU" >"$work/got.json"
check "folded cpu nanoseconds = samples x 1e9/sampleRate (100 Hz default)" python3 -c "
import json; assert json.load(open('$work/got.json'))['total'] == 6 * 10**7"

echo "== (d) limits and bad input"
printf 'tok-1\n' >"$work/tokens"
mportD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
receiver D --receive-max-body-mb 1 --receive-pending-mb 1 --receive-auth-token-file "$work/tokens" \
    --metrics-addr "127.0.0.1:$mportD" || { fail "receiver D did not start"; summary test_receive; exit 1; }
portD=$rport pidD=$rpid
for i in $(seq 50); do curl -sf "http://127.0.0.1:$mportD/metrics" >"$work/m0.txt" && break; sleep 0.1; done
U=http://127.0.0.1:$portD
AUTH=(-H "Authorization: Bearer tok-1")
req() { # req WANT_CODE WANT_TEXT DESCRIPTION curl-args...: checks the code and the message
    local want=$1 text=$2 what=$3 code; shift 3
    code=$(curl -s -o "$work/ans" -D "$work/hdr" -w '%{http_code}' "$@")
    if [ "$code" = "$want" ] && grep -aq -- "$text" "$work/ans" "$work/hdr"; then
        pass "$what: $code ($(tr -d '\r\0-\010' <"$work/ans" | head -c 90 | tr '\n' ' '))"
    else
        fail "$what: want $want with '$text', got $code: $(head -c 200 "$work/ans")"
    fi
}
python3 -c "import sys; sys.stdout.write('main;x 1\n' * 150000)" >"$work/big.folded"   # 1.35 MB
python3 -c "import sys; sys.stdout.write('main;y 1\n' * 100000)" >"$work/half.folded"  # 0.9 MB
python3 "$T/otlp_craft.py" "$work/partial.pb" partial
python3 "$T/otlp_craft.py" "$work/allbad.pb" allbad
printf 'not a protobuf message at all \377\377\377' >"$work/junk"
gzip -c "$CORPUS/go-cpu.pb.gz" >/dev/null
req 401 "bearer token" "no token" --data-binary @"$work/small.folded" "$U/ingest?name=a"
req 401 "bearer token" "a wrong token" -H "Authorization: Bearer nope" --data-binary @"$work/small.folded" "$U/ingest?name=a"
req 200 "" "the token (Bearer)" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?name=authed&from=$T0"
req 200 "" "the token as basic-auth password" -u "any:tok-1" --data-binary @"$work/small.folded" "$U/ingest?name=authed2&from=$T0"
req 413 "larger than" "body past --receive-max-body-mb" "${AUTH[@]}" --data-binary @"$work/big.folded" "$U/ingest?name=big"
req 413 "larger than" "chunked body past the cap" "${AUTH[@]}" -H "Transfer-Encoding: chunked" --data-binary @"$work/big.folded" "$U/ingest?name=big"
# one slow push holds most of the pending budget; the next one is told to retry
curl -s -o /dev/null "${AUTH[@]}" --limit-rate 100k --data-binary @"$work/half.folded" \
    "$U/ingest?name=slow&from=$T0" & slow=$!
sleep 3
# curl asks for 100-continue and waits for it (30 s, not 1 s, on a loaded machine): refused at the head
req 429 "retry later" "pending bytes past --receive-pending-mb" "${AUTH[@]}" --expect100-timeout 30 \
    --data-binary @"$work/half.folded" "$U/ingest?name=second"
check "429 carries Retry-After" grep -qi '^Retry-After: [0-9]' "$work/hdr"
# a client that sends its body at once still reads the 429 (the body is drained, not reset)
req 429 "retry later" "pending bytes past --receive-pending-mb, no 100-continue" "${AUTH[@]}" -H "Expect:" \
    --data-binary @"$work/half.folded" "$U/ingest?name=third"
check "429 without 100-continue carries Retry-After" grep -qi '^Retry-After: [0-9]' "$work/hdr"
wait $slow
req 400 "X-Scope-OrgID" "bad tenant" "${AUTH[@]}" -H "X-Scope-OrgID: ../etc" --data-binary @"$work/small.folded" "$U/ingest?name=t"
req 200 "" "tenant t-1" "${AUTH[@]}" -H "X-Scope-OrgID: t-1" --data-binary @"$work/small.folded" "$U/ingest?name=tenanted&from=$T0"
req 400 "ExportProfilesServiceRequest" "OTLP: malformed protobuf" "${AUTH[@]}" -H "Content-Type: application/x-protobuf" --data-binary @"$work/junk" "$U/v1development/profiles"
req 400 "gzip" "OTLP: Content-Encoding gzip, body not gzip" "${AUTH[@]}" -H "Content-Type: application/x-protobuf" -H "Content-Encoding: gzip" --data-binary @"$work/partial.pb" "$U/v1development/profiles"
req 415 "application/json" "OTLP: a text/plain body" "${AUTH[@]}" -H "Content-Type: text/plain" --data-binary '{}' "$U/v1development/profiles"
/usr/bin/python3 "$T/pb_json.py" "$work/otlp.fds" "$OTLP_REQ" "$work/partial.pb" "$work/partial.js"
# a good first profile and a bad field in the second: refused whole, nothing written
python3 -c "import json,sys; j=json.load(open(sys.argv[1])); r=j['resourceProfiles'][0]
r['resource']['attributes'][0]['value']['stringValue']='json-bad'
r['scopeProfiles'][0]['profiles'][1]['period']='soon'; json.dump(j, open(sys.argv[2],'w'))" \
    "$work/partial.js" "$work/badfield.js"
req 400 "period: 'soon' is not an integer" "OTLP JSON: a field of the wrong type" "${AUTH[@]}" -H "Content-Type: application/json" --data-binary @"$work/badfield.js" "$U/v1development/profiles"
check "OTLP JSON error: a JSON google.rpc.Status (code 3)" grep -q '"code":3,' "$work/ans"
head -c 300 "$work/partial.js" >"$work/trunc.js"
req 400 "not valid JSON (at byte" "OTLP JSON: truncated" "${AUTH[@]}" -H "Content-Type: application/json" --data-binary @"$work/trunc.js" "$U/v1development/profiles"
req 400 "expected an array" "OTLP JSON: resourceProfiles an object" "${AUTH[@]}" -H "Content-Type: application/json" --data-binary '{"resourceProfiles":{}}' "$U/v1development/profiles"
req 400 "not hex" "OTLP JSON: profileId not hex" "${AUTH[@]}" -H "Content-Type: application/json" --data-binary '{"resourceProfiles":[{"scopeProfiles":[{"profiles":[{"profileId":"zz"}]}]}]}' "$U/v1development/profiles"
python3 -c "import sys; sys.stdout.write('{\"a\":[' + '0,' * 1100000 + '0]}')" >"$work/many.js"
gzip -f "$work/many.js"
req 413 "JSON values" "OTLP JSON: more values than the decoder takes (gzip)" "${AUTH[@]}" -H "Content-Type: application/json" -H "Content-Encoding: gzip" --data-binary @"$work/many.js.gz" "$U/v1development/profiles"
python3 -c "import json,sys; j=json.load(open(sys.argv[1]))
j['resourceProfiles'][0]['resource']['attributes'][0]['value']['stringValue']='otlp-json'
j['unknownField']={'x':[1]}; json.dump(j, open(sys.argv[2],'w'))" "$work/partial.js" "$work/good.js"
req 200 '"rejectedProfiles":"1"' "OTLP JSON partial success (an unknown field ignored)" "${AUTH[@]}" -H "Content-Type: application/json; charset=utf-8" --data-binary @"$work/good.js" "$U/v1development/profiles"
req 415 "Content-Type" "OTLP: no content type" "${AUTH[@]}" -H "Content-Type:" --data-binary @"$work/partial.pb" "$U/v1development/profiles"
req 415 "Content-Encoding" "OTLP: Content-Encoding br" "${AUTH[@]}" -H "Content-Type: application/x-protobuf" -H "Content-Encoding: br" --data-binary @"$work/partial.pb" "$U/v1development/profiles"
req 400 "every profile rejected" "OTLP: every profile bad" "${AUTH[@]}" -H "Content-Type: application/x-protobuf" --data-binary @"$work/allbad.pb" "$U/v1development/profiles"
gzip -c "$work/partial.pb" >"$work/partial.pb.gz"
code=$(curl -s -o "$work/ans" -w '%{http_code}' "${AUTH[@]}" -H "Content-Type: application/x-protobuf" \
    -H "Content-Encoding: gzip" --data-binary @"$work/partial.pb.gz" "$U/v1development/profiles")
protoc --decode_raw <"$work/ans" >"$work/ans.txt" 2>&1
check "OTLP partial success (gzip): 200, rejected_profiles 1 and a message ($(tr '\n' ' ' <"$work/ans.txt" | head -c 120))" \
    bash -c "[ $code = 200 ] && grep -q '1: 1' '$work/ans.txt' && grep -q 'stack_index 7' '$work/ans.txt'"
req 400 "jfr: " "format=jfr: not a recording" "${AUTH[@]}" --data-binary @"$work/junk" "$U/ingest?name=j&format=jfr"
head -c 20000 "$JFRC/kafka-cpu.jfr.gz" | gzip -dc 2>/dev/null | head -c 30000 >"$work/jfr-trunc"
req 400 "jfr: " "format=jfr: a truncated recording" "${AUTH[@]}" --data-binary @"$work/jfr-trunc" "$U/ingest?name=j&format=jfr"
req 400 "no 'jfr' part" "format=jfr: multipart without a jfr part" "${AUTH[@]}" -F "labels=@$work/small.folded" "$U/ingest?name=j&format=jfr"
req 415 "supported" "format=trie" "${AUTH[@]}" --data-binary @"$work/junk" "$U/ingest?name=j&format=trie"
req 400 "not a profile.proto" "pprof: garbage" "${AUTH[@]}" --data-binary @"$work/junk" "$U/ingest?name=j&format=pprof"
head -c 300 "$CORPUS/go-cpu.pb.gz" >"$work/trunc.gz"
req 400 "gzip" "pprof: truncated gzip" "${AUTH[@]}" --data-binary @"$work/trunc.gz" "$U/ingest?name=j&format=pprof"
req 400 "name: required" "no name" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?format=folded"
req 400 "no application name" "name without application" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?name=%7Ba%3Db%7D"
req 400 "bad label name" "bad label name" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?name=app%7B1a%3Db%7D"
req 400 "must end" "unclosed labels" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?name=app%7Ba%3Db"
req 400 "__name__" "__name__ label" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?name=app%7B__name__%3Db%7D"
req 400 "from" "from not a number" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?name=app&from=yesterday"
req 400 "until" "until before from" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?name=app&from=2000&until=1000"
req 400 "sampleRate" "sampleRate 0" "${AUTH[@]}" --data-binary @"$work/small.folded" "$U/ingest?name=app&sampleRate=0"
req 400 "line 2" "folded: bad count" "${AUTH[@]}" --data-binary $'a;b 1\na;b x\n' "$U/ingest?name=app&format=folded"
req 400 "empty frame" "folded: empty frame" "${AUTH[@]}" --data-binary $'a;;b 1\n' "$U/ingest?name=app&format=folded"
req 400 "no 'profile' part" "multipart without a profile part" "${AUTH[@]}" -F "other=@$work/small.folded" "$U/ingest?name=app"
req 400 "boundary" "multipart without a boundary" "${AUTH[@]}" -H "Content-Type: multipart/form-data" --data-binary @"$work/small.folded" "$U/ingest?name=app&format=pprof"
printf -- '--XX\r\nContent-Disposition: form-data; name="profile"\r\n\r\nabc' >"$work/mp-trunc"
req 400 "truncated" "multipart truncated" "${AUTH[@]}" -H "Content-Type: multipart/form-data; boundary=XX" --data-binary @"$work/mp-trunc" "$U/ingest?name=app&format=pprof"
req 405 "POST" "GET /ingest" "${AUTH[@]}" "$U/ingest?name=app"
req 404 "not found" "unknown path" "${AUTH[@]}" --data-binary x "$U/nope"
req 400 "PushRequest" "Connect Push: malformed protobuf" "${AUTH[@]}" -H "Content-Type: application/proto" --data-binary @"$work/junk" "$U/push.v1.PusherService/Push"
check "Connect error body: {code, message}" grep -q '"code":"invalid_argument"' "$work/ans"
req 415 "application/json" "Connect Push: text/plain" "${AUTH[@]}" -H "Content-Type: text/plain" --data-binary '{}' "$U/push.v1.PusherService/Push"
req 400 "raw_profile: not base64" "Connect Push JSON: rawProfile not base64" "${AUTH[@]}" -H "Content-Type: application/json" --data-binary '{"series":[{"labels":[{"name":"service_name","value":"pj"}],"samples":[{"rawProfile":"%%%"}]}]}' "$U/push.v1.PusherService/Push"
check "Connect JSON error body: {code, message}" grep -q '"code":"invalid_argument"' "$work/ans"
python3 "$T/otlp_craft.py" "$work/push-nosvc.pb" push "$CORPUS/go-cpu.pb.gz" ""
req 400 "no service_name" "Connect Push without service_name" "${AUTH[@]}" -H "Content-Type: application/proto" --data-binary @"$work/push-nosvc.pb" "$U/push.v1.PusherService/Push"
# the receiver's counters in /metrics moved with the requests above
curl -s "http://127.0.0.1:$mportD/metrics" >"$work/m1.txt"
mval() { awk -v m="$2" '$1 == m {print $2}' "$1"; }
mcheck() { # mcheck SERIES OP VALUE: SERIES in the scrape at the end; it was 0 (or absent) at the start
    local a b
    a=$(mval "$work/m0.txt" "$1") b=$(mval "$work/m1.txt" "$1")
    check "/metrics $1 moved: ${a:-absent} -> ${b:-absent} ($2 $3)" test "${a:-0}" = 0 -a "${b:-0}" "$2" "$3"
}
mcheck 'stoke_receiver_requests_total{protocol="otlp_json",code="4xx"}' -eq 5
mcheck 'stoke_receiver_requests_total{protocol="otlp_json",code="2xx"}' -eq 1
mcheck 'stoke_receiver_requests_total{protocol="push_json",code="4xx"}' -eq 1
mcheck 'stoke_receiver_requests_total{protocol="ingest",code="2xx"}' -eq 4
mcheck 'stoke_receiver_requests_total{protocol="other",code="4xx"}' -eq 1
mcheck 'stoke_receiver_rejected_total{reason="unauthorized"}' -eq 2
mcheck 'stoke_receiver_rejected_total{reason="too_large"}' -eq 3
mcheck 'stoke_receiver_rejected_total{reason="busy"}' -ge 1
mcheck 'stoke_receiver_rejected_total{reason="bad_input"}' -ge 30
mcheck 'stoke_receiver_bytes_total{protocol="ingest"}' -gt 900000
mcheck 'stoke_receiver_profiles_written_total' -eq 6
mcheck 'stoke_receiver_samples_written_total' -gt 0
mcheck 'stoke_receiver_profiles_rejected_total' -eq 2
mcheck 'stoke_receiver_tenant_requests_total{tenant="t-1"}' -eq 1
mcheck 'stoke_receiver_tenant_profiles_total{tenant="default"}' -eq 5
sleep 1
kill -TERM "$pidD"; wait "$pidD"
start_worker "$work/D"; qd=$qport
curl -s -G "http://127.0.0.1:$qd/api/v1/label_values" --data-urlencode name=service_name \
    --data-urlencode "from=$FROM" --data-urlencode "until=$UNTIL" >"$work/lv.json"
check "only the accepted pushes were written (default tenant: $(tr -d '\n' <"$work/lv.json" | head -c 150))" python3 -c "
import json; v=sorted(json.load(open('$work/lv.json'))['values']); assert v == ['authed', 'authed2', 'otlp-json', 'otlp-py', 'slow'], v"
curl -s -G "http://127.0.0.1:$qd/api/v1/label_values" --data-urlencode name=service_name \
    --data-urlencode "from=$FROM" --data-urlencode "until=$UNTIL" --data-urlencode tenant=t-1 >"$work/lv.json"
check "X-Scope-OrgID t-1 stored under its own tenant" python3 -c "
import json; v=json.load(open('$work/lv.json'))['values']; assert v == ['tenanted'], v"
for svc in otlp-py otlp-json; do
    top_json "$qd" $svc "$CPU" >"$work/got.json"
    check "OTLP partial success ($svc): the good profile is stored (main;foo 100, main 50)" python3 -c "
import json; j=json.load(open('$work/got.json')); f={x['name']:(x['self'],x['total']) for x in j['functions']}
assert j['total'] == 150 and f == {'foo': (100, 100), 'main': (50, 150)}, j"
done

echo "== (e) figures: one core, 100 concurrent pushers"
receiver E --receive-pending-mb 256 --buffer-mb 512 || { fail "receiver E did not start"; summary test_receive; exit 1; }
portE=$rport pidE=$rpid
cp "$CORPUS/go-cpu.pb.gz" "$work/body.pb.gz"
rss0=$(awk '/VmRSS/ {print $2}' /proc/$pidE/status)
out=$("$work/push_load" -url "http://127.0.0.1:$portE/ingest?name=load&format=pprof" \
    -body "$work/body.pb.gz" -c 100 -n 3000)
echo "  pprof (go-cpu.pb.gz) via /ingest: $out"
check "100 concurrent pprof pushers all answered 200" bash -c "grep -q 'answers 200:3000\$' <<<'$out'"
gzip -c "$work/partial.pb" >/dev/null
ls "$work"/localA/hot_c/*.pb.gz >/dev/null 2>&1
out=$("$work/push_load" -url "http://127.0.0.1:$portE/ingest?name=loadf&format=folded" \
    -body "$work/hot.folded" -c 100 -n 3000)
echo "  folded ($(wc -c <"$work/hot.folded") bytes) via /ingest: $out"
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pidE/status)
echo "  receiver RSS: $((rss0 / 1024)) MB at start, peak $((hwm / 1024)) MB under the bursts"
check "receiver peak RSS under 100 pushers stays bounded (< 200 MB: $((hwm / 1024)) MB)" test "$hwm" -lt 204800
kill -TERM "$pidE"; wait "$pidE"
summary test_receive
