#!/usr/bin/env bash
# OTLP/gRPC both ways: the agent's exporter (--otlp-protocol grpc,
# exporter/http_push.h) and the receiver (--receive-grpc, ingest/grpc.h):
#  (a0) agent A samples a workload and exports OTLP/gRPC itself to agent
#      B's --receive-grpc: every call answered OK (nothing dropped or
#      retried), and stoke-query over B's store gives per-function totals
#      equal to A's segments and, for hot_c, to A's local pprof files; to
#      a receiver that wants a token A has not, every call is refused
#      UNAUTHENTICATED once and dropped (not retried), and counted; with
#      the token and a tenant as --otlp-header, accepted under the tenant;
#      A's exit line ("push: otlp N sent") counts every call B took;
#  (a) round trip with a real gRPC client: agent A samples a workload and
#      exports OTLP (HTTP) to a capturing receiver (otlp_receiver.py); each
#      captured ExportProfilesServiceRequest is sent by Debian's grpcio
#      (grpc_export.py: ProfilesService/Export over h2c, half of them with
#      grpc-encoding gzip) to agent B; stoke-query over B's store gives
#      per-function totals equal to A's segments, service by service, and
#      for hot_c equal to A's local pprof files (Google's Go parser);
#      partial success answers rejected_profiles and error_message;
#  (b) limits and bad input: auth (UNAUTHENTICATED), tenants from
#      x-scope-orgid, malformed protobuf, every profile bad, a message past
#      --receive-max-body-mb (RESOURCE_EXHAUSTED without RetryInfo), past
#      --receive-pending-mb (RESOURCE_EXHAUSTED with a RetryInfo of 1 s in
#      grpc-status-details-bin, decoded by python3-protobuf), a wrong content-type
#      (curl's HTTP/2: 415 + grpc-status 3), HTTP/1.1 and garbage frames
#      (GOAWAY or a close), idle connections that neither pin a core nor
#      block the HTTP receiver; nothing written for any of them, and
#      SIGTERM with connections open exits 0; the refusals grpc.c answers
#      itself (sizes, framing, content-type, method) counted in /metrics
#      as the HTTP side's are;
#  (c) figures: Export calls/s and MB/s, and the receiver's CPU per call.
set -u
. "$(dirname "$0")/lib.sh"
need curl
need go
need python3
# grpcio is Debian's (python3-grpcio): the system interpreter's module
PY=/usr/bin/python3
$PY -c 'import grpc' 2>/dev/null || { fail "python3-grpcio is not installed (scripts/deps.sh test)"; summary test_receive_grpc; exit 1; }
build_fixtures
T=$ROOT/tests/integration
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT
export GOCACHE=${GOCACHE:-$work/gocache}
(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$work/pprof_top" ./tests/integration/pprof_top) ||
    { fail "building pprof_top"; summary test_receive_grpc; exit 1; }

receiver() { # receiver NAME [agent args]: a receive-only agent; sets $gport $hport $rpid
    local name=$1 i; shift
    gport= hport=
    "$AGENT" --no-sampling --receive 127.0.0.1:0 --receive-grpc 127.0.0.1:0 --store "$work/$name" \
        --host-name "$name" --metrics-addr off --flush 10 "$@" 2>"$work/$name.log" &
    rpid=$!
    pids+=($rpid)
    for i in $(seq 50); do
        gport=$(sed -n 's/.*on grpc port \([0-9]*\).*/\1/p' "$work/$name.log")
        hport=$(sed -n 's/.*Pyroscope \/ingest on port \([0-9]*\).*/\1/p' "$work/$name.log")
        [ -n "$gport" ] && [ -n "$hport" ] && return 0
        sleep 0.1
    done
    return 1
}
now_ms=$(($(date +%s) * 1000))
FROM=$((now_ms - 3600000))
UNTIL=$((now_ms + 3600000))
CPU=process_cpu:cpu:nanoseconds:cpu:nanoseconds
EXPORT=/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export

# sender_equals_receiver A B: B's store answers what A's segments and A's local pprof files hold
# (sets $qb to B's worker)
sender_equals_receiver() {
    start_worker "$work/$1"; qa=$qport
    start_worker "$work/$2"; qb=$qport
    same_tops "$qa" "$qb" "$CPU"
    check "$2's per-function totals equal $1's segments ($n services, $bad differ)" \
        test "$n" -ge 1 -a "$bad" -eq 0
    same_as_local "$qb" "$work/local$1" hot_c "$CPU"
    check "hot_c on $2 equals $1's local pprof files, Go's parser ($out)" test $? -eq 0
}

echo "== (a0) agent A's own OTLP/gRPC exporter -> agent B's --receive-grpc"
receiver B0 || { fail "receiver B0 did not start: $(cat "$work/B0.log")"; summary test_receive_grpc; exit 1; }
gB0=$gport pidB0=$rpid
"$FIXTURES/hot_c" 18 >/dev/null & pids+=($!)
"$AGENT" --store "$work/A0" --output-dir "$work/localA0" --host-name A0 --window 5 --flush 10 \
    --frequency 99 --duration 15 --metrics-addr off --otlp-protocol grpc \
    --otlp-endpoint "http://127.0.0.1:$gB0" 2>"$work/A0.log"
rc=$?
check "agent A0 exits 0 ($(grep -v 'level=info' "$work/A0.log" | head -c 300))" test $rc -eq 0
push=$(grep -o 'push: otlp [0-9]* sent, [0-9]* dropped' "$work/A0.log")
sent=$(sed 's/push: otlp \([0-9]*\) sent.*/\1/' <<<"$push") dropped=$(sed 's/.* \([0-9]*\) dropped/\1/' <<<"$push")
check "A0 exported over gRPC, nothing dropped ($push)" test "${sent:-0}" -ge 2 -a "${dropped:-1}" -eq 0
sleep 1
kill -TERM "$pidB0"; wait "$pidB0"
check "receiver B0 exits 0 on SIGTERM" test $? -eq 0
rx=$(grep -h 'receiver:' "$work/B0.log")
echo "  $rx"
check "B0 answered every call 2xx ($rx)" grep -q ' 0 answered 4xx, 0 413, 0 429, 0 5xx' <<<"$rx"
# A0's exit line counts the last window's request too (read after it was sent)
nrx=$(sed -n 's/.*receiver: \([0-9]*\) requests.*/\1/p' <<<"$rx")
check "A0's exit line: sent ${sent:-absent} = the calls B0 took (${nrx:-absent})" test "${sent:-x}" = "${nrx:-y}"
sender_equals_receiver A0 B0
# a refusal that retrying cannot help: UNAUTHENTICATED, dropped after one attempt
printf 'tok-0\n' >"$work/tokens0"
mportR=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
receiver R --receive-auth-token-file "$work/tokens0" || { fail "receiver R did not start"; summary test_receive_grpc; exit 1; }
gR=$gport pidR=$rpid
# AR and AT sample a workload of their own: on a quiet machine a window
# with no samples sends nothing, and AT would have nothing to show
"$FIXTURES/hot_c" 25 >/dev/null & pidW=$!
pids+=($pidW)
"$AGENT" --store "$work/AR" --host-name AR --window 2 --flush 10 --frequency 49 --duration 12 \
    --metrics-addr "127.0.0.1:$mportR" --otlp-protocol grpc --otlp-endpoint "http://127.0.0.1:$gR" \
    2>"$work/AR.log" &
pidAR=$!
pids+=($pidAR)
# the counters are taken at each window: wait for two drops to show
for _ in $(seq 100); do
    curl -s "http://127.0.0.1:$mportR/metrics" >"$work/metricsAR.txt"
    grep -q '^stoke_export_requests_dropped_total{exporter="otlp"} [2-9]' "$work/metricsAR.txt" && break
    sleep 0.1
done
wait "$pidAR"
# the same with the token: --otlp-header lines go as metadata
"$AGENT" --store "$work/AT" --host-name AT --window 2 --flush 10 --frequency 49 --duration 5 \
    --metrics-addr off --otlp-protocol grpc --otlp-endpoint "http://127.0.0.1:$gR/" \
    --otlp-header "Authorization=Bearer tok-0" --otlp-header "X-Scope-OrgID=team-a" 2>"$work/AT.log"
push=$(grep -o 'push: otlp [0-9]* sent, [0-9]* dropped' "$work/AT.log")
kill "$pidW" 2>/dev/null
sleep 1
kill -TERM "$pidR"; wait "$pidR"
start_worker "$work/R"; qr=$qport
svcT=$(services_of "$qr" team-a)
check "with --otlp-header's token and tenant: accepted, stored under team-a ($push; ${svcT:0:60})" \
    bash -c "grep -q 'otlp [1-9][0-9]* sent, 0 dropped' <<<'$push' && [ -n '$svcT' ]"
m() { awk -v k="$1{exporter=\"otlp\"}" '$1 == k {print $2}' "$work/metricsAR.txt"; }
nf=$(m stoke_export_failed_attempts_total) nd=$(m stoke_export_requests_dropped_total) ns=$(m stoke_export_requests_sent_total)
check "UNAUTHENTICATED: each request tried once and dropped, none sent (failed ${nf:-absent}, dropped ${nd:-absent}, sent ${ns:-absent})" \
    test "${nd:-0}" -ge 2 -a "${nf:-0}" -eq "${nd:-0}" -a "${ns:-1}" -eq 0
check "the drop names the grpc-status and the receiver's message ($(grep -o 'dropped a request.*' "$work/AR.log" | head -1 | cut -c1-160))" \
    grep -q 'grpc-status 16 UNAUTHENTICATED: .*token' "$work/AR.log"

echo "== (a) agent A's OTLP requests sent by grpcio to agent B's --receive-grpc"
mkdir -p "$work/cap"
# every answer a second late: the last window's request is still on its
# way when the agent stops, so its exit line shows whether the counts were
# read after it was sent
python3 "$T/otlp_receiver.py" "$work/cap" "slow*" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 50); do [ -f "$work/cap/port" ] && break; sleep 0.1; done
"$FIXTURES/hot_c" 25 >/dev/null & pids+=($!)
"$AGENT" --store "$work/A" --output-dir "$work/localA" --host-name A --window 5 --flush 10 \
    --frequency 99 --duration 20 --metrics-addr off \
    --otlp-endpoint "http://127.0.0.1:$(cat "$work/cap/port")" 2>"$work/A.log"
check "agent A exits 0" test $? -eq 0
bodies=("$work"/cap/*.body)
check "A's OTLP requests captured (${#bodies[@]})" test "${#bodies[@]}" -ge 2
push=$(grep -o 'push: otlp [0-9]* sent' "$work/A.log")
check "A's exit line counts the last request, answered late ($push; ${#bodies[@]} captured)" \
    test "$push" = "push: otlp ${#bodies[@]} sent"
receiver B || { fail "receiver B did not start: $(cat "$work/B.log")"; summary test_receive_grpc; exit 1; }
gB=$gport pidB=$rpid
half=$((${#bodies[@]} / 2))
$PY "$T/grpc_export.py" "127.0.0.1:$gB" "${bodies[@]:0:$half}" >"$work/a.out" 2>&1
$PY "$T/grpc_export.py" "127.0.0.1:$gB" --gzip "${bodies[@]:$half}" >>"$work/a.out" 2>&1
n_ok=$(grep -c '"code": "OK", "details": "", "rejected": 0' "$work/a.out")
check "every Export call answered OK with no partial success ($n_ok of ${#bodies[@]}; $(grep -v '"OK"' "$work/a.out" | head -c 200))" \
    test "$n_ok" -eq "${#bodies[@]}"
python3 "$T/otlp_craft.py" "$work/partial.pb" partial
$PY "$T/grpc_export.py" "127.0.0.1:$gB" "$work/partial.pb" >"$work/p.out" 2>&1
check "partial success: OK, rejected_profiles 1, error_message names the problem ($(head -c 160 "$work/p.out"))" \
    grep -q '"code": "OK".*"rejected": 1, "message": ".*stack_index 7' "$work/p.out"
sleep 1
kill -TERM "$pidB"; wait "$pidB"
check "receiver B exits 0 on SIGTERM" test $? -eq 0
grep -h 'receiver:' "$work/B.log" | sed 's/^/  /'
sender_equals_receiver A B
top_json "$qb" otlp-py "$CPU" >"$work/got.json"
check "partial success: the good profile is stored (main;foo 100, main 50)" python3 -c "
import json; j=json.load(open('$work/got.json')); f={x['name']:(x['self'],x['total']) for x in j['functions']}
assert j['total'] == 150 and f == {'foo': (100, 100), 'main': (50, 150)}, j"

echo "== (b) limits and bad input"
printf 'tok-1\n' >"$work/tokens"
mportD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
receiver D --receive-max-body-mb 1 --receive-auth-token-file "$work/tokens" --metrics-addr "127.0.0.1:$mportD" ||
    { fail "receiver D did not start"; summary test_receive_grpc; exit 1; }
gD=$gport hD=$hport pidD=$rpid
G=127.0.0.1:$gD
rpc() { # rpc WANT_CODE WANT_TEXT DESCRIPTION grpc_export-args...
    local want=$1 text=$2 what=$3 out; shift 3
    out=$($PY "$T/grpc_export.py" "$G" "$@" 2>&1 | tail -1)
    last=$out
    if grep -q "\"code\": \"$want\"" <<<"$out" && grep -q -- "$text" <<<"$out"; then
        pass "$what: $want ($(cut -c1-110 <<<"$out"))"
    else
        fail "$what: want $want with '$text', got: $out"
    fi
}
python3 "$T/otlp_craft.py" "$work/allbad.pb" allbad
good=${bodies[0]}
printf 'not a protobuf message at all \377\377\377' >"$work/junk"
head -c 1500000 /dev/urandom >"$work/big"
rpc UNAUTHENTICATED "bearer token" "no token" "$work/partial.pb"
rpc UNAUTHENTICATED "bearer token" "a wrong token" --token nope "$work/partial.pb"
rpc OK '"rejected": 1' "the token" --token tok-1 "$work/partial.pb"
rpc INVALID_ARGUMENT "X-Scope-OrgID" "bad tenant" --token tok-1 --tenant ../etc "$work/partial.pb"
rpc OK "" "tenant t-1" --token tok-1 --tenant t-1 "$good"
rpc INVALID_ARGUMENT "ExportProfilesServiceRequest" "malformed protobuf" --token tok-1 "$work/junk"
rpc INVALID_ARGUMENT "every profile rejected" "every profile bad" --token tok-1 "$work/allbad.pb"
rpc RESOURCE_EXHAUSTED "larger than 1048576" "message past --receive-max-body-mb" --token tok-1 "$work/big"
check "too large: no RetryInfo in grpc-status-details-bin (final; $(grep -o '"retry_delay": [^}]*' <<<"$last"))" \
    grep -q '"retry_delay": null' <<<"$last"
rpc RESOURCE_EXHAUSTED "larger than 1048576" "the same, gzip" --token tok-1 --gzip "$work/big"
printf '\0\0\0\0\3abc' >"$work/framed"
code=$(curl -s --max-time 10 --http2-prior-knowledge -o /dev/null -D "$work/hdr" -w '%{http_code}' \
    -H 'Content-Type: application/json' -H 'Authorization: Bearer tok-1' \
    --data-binary @"$work/framed" "http://$G$EXPORT")
check "wrong content-type: HTTP 415 with grpc-status 3 ($(tr -d '\r' <"$work/hdr" | grep -i grpc- | tr '\n' ' '))" \
    bash -c "[ '$code' = 415 ] && grep -qi '^grpc-status: 3' '$work/hdr'"
code=$(curl -s --max-time 10 --http2-prior-knowledge -o /dev/null -D "$work/hdr" -w '%{http_code}' \
    -H 'Content-Type: application/grpc' --data-binary @"$work/framed" "http://$G/other.Service/Call")
check "another method: grpc-status 12 ($(tr -d '\r' <"$work/hdr" | grep -i grpc-status))" \
    grep -qi '^grpc-status: 12' "$work/hdr"
# garbage: HTTP/1.1 on the gRPC port, a broken frame after the preface,
# random bytes; each connection is closed (after a GOAWAY where HTTP/2 got
# that far), and the server goes on serving
python3 - "$gD" >"$work/garbage.out" <<'EOF'
import os, socket, sys
port = int(sys.argv[1])
def send(data):
    s = socket.create_connection(('127.0.0.1', port), timeout=5)
    s.sendall(data)
    got = b''
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except socket.timeout:
        return 'open after 5 s'
    # frames after the server's: type 7 is GOAWAY
    i, types = 0, []
    while i + 9 <= len(got):
        n = int.from_bytes(got[i:i + 3], 'big')
        types.append(got[i + 3])
        i += 9 + n
    return 'closed%s' % (' after GOAWAY' if 7 in types else '')
preface = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
print('http1', send(b'POST /v1development/profiles HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc'))
print('badframe', send(preface + bytes([0, 0, 4, 0x9, 0, 0, 0, 0, 1]) + b'junk'))
print('random', send(os.urandom(4096)))
EOF
check "HTTP/1.1 on the gRPC port: closed ($(grep http1 "$work/garbage.out"))" grep -q '^http1 closed' "$work/garbage.out"
check "a broken frame after the preface: GOAWAY, closed ($(grep badframe "$work/garbage.out"))" \
    grep -q '^badframe closed after GOAWAY' "$work/garbage.out"
check "random bytes: closed ($(grep random "$work/garbage.out"))" grep -q '^random closed' "$work/garbage.out"
# 100 idle connections (50 silent, 50 stopped after the preface) for 3 s:
# the receiver's CPU stays near zero and both servers answer meanwhile
python3 - "$gD" 100 4 >"$work/idle.out" 2>&1 <<'EOF' &
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for i in range(n):
    s = socket.create_connection(('127.0.0.1', port))
    if i % 2:
        s.sendall(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
    socks.append(s)
print('open', len(socks), flush=True)
time.sleep(secs)
EOF
idle=$!
sleep 0.5
cpu0=$(awk '{print $14 + $15}' /proc/$pidD/stat)
t0=$(date +%s%N)
code=$(curl -s -o "$work/ans" -w '%{http_code}' -H 'Authorization: Bearer tok-1' \
    --data-binary $'a;b 1\n' "http://127.0.0.1:$hD/ingest?name=http-while-idle&format=folded")
check "HTTP /ingest answers while 100 gRPC connections idle: $code" test "$code" = 200
rpc OK "" "gRPC answers while 100 connections idle" --token tok-1 "$good"
sleep 2
cpu1=$(awk '{print $14 + $15}' /proc/$pidD/stat)
t1=$(date +%s%N)
wait $idle
ticks=$(getconf CLK_TCK)
cpu_ms=$(((cpu1 - cpu0) * 1000 / ticks))
check "100 idle connections do not pin a core (receiver CPU ${cpu_ms} ms over $(((t1 - t0) / 1000000)) ms, $(head -1 "$work/idle.out"))" \
    test "$cpu_ms" -lt 500
# the calls that reached the receiver are counted as protocol otlp_grpc
curl -s "http://127.0.0.1:$mportD/metrics" >"$work/metrics.txt"
ok2=$(awk '$1 == "stoke_receiver_requests_total{protocol=\"otlp_grpc\",code=\"2xx\"}" {print $2}' "$work/metrics.txt")
bad4=$(awk '$1 == "stoke_receiver_requests_total{protocol=\"otlp_grpc\",code=\"4xx\"}" {print $2}' "$work/metrics.txt")
otlp=$(awk '$1 == "stoke_receiver_requests_total{protocol=\"otlp\",code=\"2xx\"}" {print $2}' "$work/metrics.txt")
check "/metrics counts gRPC calls as otlp_grpc (2xx ${ok2:-absent}, 4xx ${bad4:-absent}; otlp 2xx ${otlp:-absent})" \
    test "${ok2:-0}" -ge 2 -a "${bad4:-0}" -ge 3 -a "${otlp:-0}" -eq 0
# the refusals grpc.c answers itself count as the HTTP side's do: the two
# messages past the cap (too_large), the content-type and the unknown
# method (bad_input, with the handler's three: bad tenant, malformed,
# every profile bad); 4xx: those and the two UNAUTHENTICATED
rej() { awk -v k="stoke_receiver_rejected_total{reason=\"$1\"}" '$1 == k {print $2}' "$work/metrics.txt"; }
tl=$(rej too_large) bi=$(rej bad_input) un=$(rej unauthorized)
check "gRPC refusals before the handler are counted (too_large ${tl:-absent}, bad_input ${bi:-absent}, unauthorized ${un:-absent}, otlp_grpc 4xx ${bad4:-absent})" \
    test "${tl:-0}" -eq 2 -a "${bi:-0}" -eq 5 -a "${un:-0}" -eq 2 -a "${bad4:-0}" -eq 9
# SIGTERM while connections are open: a clean exit
python3 -c "
import socket, time
s = [socket.create_connection(('127.0.0.1', $gD)) for _ in range(5)]
time.sleep(30)" & holder=$!
pids+=($holder)
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$pidD"; wait "$pidD"
rc=$? t1=$(date +%s%N)
check "SIGTERM with gRPC connections open: exit 0 in $(((t1 - t0) / 1000000)) ms" \
    bash -c "[ $rc = 0 ] && [ $(((t1 - t0) / 1000000)) -lt 5000 ]"
kill "$holder" 2>/dev/null
start_worker "$work/D"; qd=$qport
svcD=$(services_of "$qd")
svcT=$(services_of "$qd" t-1)
check "x-scope-orgid t-1 stored under its own tenant ($svcT)" test -n "$svcT"
# the default tenant: the partial request's good profile, the HTTP push and
# A's first request (the one t-1 got too); nothing of the refused calls
check "only the accepted calls were written (default tenant: $svcD)" python3 -c "
got = set('$svcD'.split()); want = {'otlp-py', 'http-while-idle'} | set('$svcT'.split())
assert got == want, (got, want)"

# busy (the pending budget, 1 MiB, full with one message of 1.5 MB under a
# 4 MiB body limit): RESOURCE_EXHAUSTED with a google.rpc.Status whose
# RetryInfo says 1 s (the HTTP side's Retry-After), as grpcio hands the
# trailer over and python3-protobuf decodes it
receiver F --receive-pending-mb 1 --receive-max-body-mb 4 || { fail "receiver F did not start"; summary test_receive_grpc; exit 1; }
G=127.0.0.1:$gport
rpc RESOURCE_EXHAUSTED "retry later" "busy: past --receive-pending-mb" "$work/big"
check "busy: grpc-status-details-bin's Status repeats the answer, RetryInfo retry_delay 1 s ($(grep -o '"retry_delay": [^}]*' <<<"$last"))" \
    grep -q '"retry_delay": 1.0' <<<"$last"
kill -TERM "$rpid"; wait "$rpid"

echo "== (c) figures: Export calls on one receiver core"
receiver E --receive-pending-mb 256 --buffer-mb 512 || { fail "receiver E did not start"; summary test_receive_grpc; exit 1; }
pidE=$rpid
# a typical request: A's largest window (the agent's own OTLP, gunzipped)
load=$(ls -S "${bodies[@]}" | head -1)
bytes=$($PY -c "import gzip,sys; b=open(sys.argv[1],'rb').read(); print(len(gzip.decompress(b) if b[:2]==b'\x1f\x8b' else b))" "$load")
cpu0=$(awk '{print $14 + $15}' /proc/$pidE/stat)
out=$($PY "$T/grpc_export.py" "127.0.0.1:$gport" --load "${GRPC_LOAD:-200},16" "$load")
cpu1=$(awk '{print $14 + $15}' /proc/$pidE/stat)
calls=$(python3 -c "import json; print(json.loads('$out')['calls'])")
cpu_s=$(python3 -c "print(($cpu1 - $cpu0) / $(getconf CLK_TCK))")
echo "  $bytes-byte request (A's largest window), 16 in flight: $out"
python3 -c "c=$calls; s=$cpu_s; b=$bytes
print('  receiver CPU %.2f s for %d calls: %.0f calls per CPU-second, %.1f MB/s of requests per core' % (s, c, c / s, c * b / s / 1e6))" 2>/dev/null ||
    echo "  receiver CPU $cpu_s s for $calls calls"
check "every load call answered OK" python3 -c "import json; j=json.loads('$out'); assert j['ok'] == j['calls'], j"
kill -TERM "$pidE"; wait "$pidE"
summary test_receive_grpc
