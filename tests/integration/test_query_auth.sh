#!/usr/bin/env bash
# stoke-query --auth-token-file (docs/api.md, Authentication): corpus pprof
# files are imported into a directory store and served by a worker without
# auth and one with a token file of two tokens (CRLF line ends). Without a
# token, or with a wrong one, the API, the Connect API and /metrics answer
# 401 with WWW-Authenticate: Bearer; with either token (Bearer, or Basic with
# the token as password) the answers equal the worker without auth. /healthz
# and the page stay open. Two authenticated workers with --peers share a
# query (the peer serves /internal/v1/select, no peer errors), and no token
# appears in any worker's stderr. Bad token files stop the start.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}

need curl
need python3
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_query_auth; exit 1; }
[ -d "$CORPUS" ] || { fail "no corpus at $CORPUS"; summary test_query_auth; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
all() { # all 'CMD' 'CMD'...: every command (eval'd here) succeeds
    local c
    for c in "$@"; do eval "$c" || return 1; done
}

now_ms=$(($(date +%s) * 1000))
T=$((now_ms - 1800000))
FROM=$((now_ms - 3600000))
UNTIL=$((now_ms + 60000))

for f in go-cpu.pb.gz go-cpu-labels.pprof node-cpu.pb.gz; do
    "$QUERY" import --store "$work/store" --service "$f" --time "$T" "$CORPUS/$f" \
        >/dev/null 2>"$work/import.err" || fail "import $f: $(cat "$work/import.err")"
done

TOKEN1=tok1-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
TOKEN2=tok2-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
WRONG=wrong-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '  %s\r\n\r\n%s\r\n' "$TOKEN1" "$TOKEN2" >"$work/tokens"
chmod 600 "$work/tokens"

start_worker() { # start_worker LOG [args...]: sets $port (not in a subshell: $pids)
    local log=$1 i; shift
    port=
    : >"$log" # emptied first: a reused log must not show the last port
    "$QUERY" --store "$work/store" --listen 127.0.0.1:0 "$@" >/dev/null 2>"$log" &
    pids+=($!)
    for i in $(seq 50); do
        port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---- bad token files stop the start ------------------------------------------
: >"$work/empty"
for bad in "$work/empty" "$work/missing"; do
    timeout 10 "$QUERY" --store "$work/store" --listen 127.0.0.1:0 --auth-token-file "$bad" \
        >/dev/null 2>"$work/bad.log"
    rc=$?
    check "--auth-token-file $(basename "$bad"): exit 2 naming the file ($(head -c 120 "$work/bad.log"))" \
        all '[ $rc -eq 2 ]' 'grep -q "auth-token-file $bad" "$work/bad.log"'
done

start_worker "$work/open.log" ||
    { fail "stoke-query did not start: $(cat "$work/open.log")"; summary test_query_auth; exit 1; }
OPEN=http://127.0.0.1:$port
start_worker "$work/a.log" --auth-token-file "$work/tokens" ||
    { fail "stoke-query --auth-token-file did not start: $(cat "$work/a.log")"; summary test_query_auth; exit 1; }
porta=$port
A=http://127.0.0.1:$porta

req() { # req URL OUT [curl args]: prints the HTTP status; headers in OUT.h
    local url=$1 out=$2; shift 2
    curl -s -o "$out" -D "$out.h" -w '%{http_code}' -G "$url" --data-urlencode "from=$FROM" \
        --data-urlencode "until=$UNTIL" --data-urlencode 'query={}' -d limit=100000 "$@"
}
strip() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j.pop("stats",None); print(json.dumps(j, sort_keys=True))' "$1"; }

# ---- open paths ----------------------------------------------------------------
check "GET /healthz without a token: 200" [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/healthz")" = 200 ]
check "GET / (the page) without a token: 200 HTML" \
    all '[ "$(curl -s -o "$work/page" -w "%{http_code}" "$A/")" = 200 ]' 'grep -qi "<html" "$work/page"'

# ---- 401 without or with a wrong token -----------------------------------------
code=$(req "$A/api/v1/top" "$work/none.json")
check "no header: 401 ($code)" [ "$code" = 401 ]
check "no header: WWW-Authenticate: Bearer" grep -qi '^WWW-Authenticate: Bearer' "$work/none.json.h"
check "no header: JSON error body" python3 -c 'import json,sys; assert "error" in json.load(open(sys.argv[1]))' "$work/none.json"
code=$(req "$A/api/v1/top" "$work/wrong.json" -H "Authorization: Bearer $WRONG")
check "wrong Bearer token: 401 ($code)" [ "$code" = 401 ]
code=$(req "$A/api/v1/top" "$work/wrongb.json" -u "grafana:$WRONG")
check "Basic with a wrong password: 401 ($code)" [ "$code" = 401 ]
code=$(req "$A/api/v1/top" "$work/usr.json" -u "$TOKEN1:")
check "Basic with the token as user name: 401 ($code)" [ "$code" = 401 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$A/metrics")
check "/metrics without a token: 401 ($code)" [ "$code" = 401 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$A/pyroscope/render?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds%7B%7D")
check "/pyroscope/render without a token: 401 ($code)" [ "$code" = 401 ]
code=$(curl -s -o "$work/connect.json" -D "$work/connect.h" -w '%{http_code}' -X POST \
    -H 'Content-Type: application/json' -H 'Connect-Protocol-Version: 1' \
    --data-binary '{}' "$A/querier.v1.QuerierService/ProfileTypes")
check "Connect POST without a token: 401 ($code)" [ "$code" = 401 ]
check "Connect POST without a token: {\"code\":\"unauthenticated\"} ($(head -c 120 "$work/connect.json"))" \
    python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["code"] == "unauthenticated"' "$work/connect.json"
check "Connect POST without a token: WWW-Authenticate" grep -qi '^WWW-Authenticate: Bearer' "$work/connect.h"
# A large body without a token is refused, not buffered; the worker stays up.
head -c 3000000 /dev/zero | tr '\0' 'x' >"$work/big"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary @"$work/big" "$A/querier.v1.QuerierService/ProfileTypes")
check "Connect POST of 3 MB without a token: 401 ($code)" [ "$code" = 401 ]

# ---- the right token: the same answers as without auth ---------------------------
for ep in top flamegraph; do
    code=$(req "$OPEN/api/v1/$ep" "$work/open-$ep.json")
    [ "$code" = 200 ] || fail "worker without auth: /api/v1/$ep: $code"
    code=$(req "$A/api/v1/$ep" "$work/b1-$ep.json" -H "Authorization: Bearer $TOKEN1")
    check "Bearer (first token): /api/v1/$ep 200 ($code)" [ "$code" = 200 ]
    check "Bearer (first token): /api/v1/$ep body equals the worker without auth" \
        [ "$(strip "$work/open-$ep.json")" = "$(strip "$work/b1-$ep.json")" ]
done
code=$(req "$A/api/v1/top" "$work/b2.json" -H "Authorization: bearer $TOKEN2")
check "Bearer (second token, lower-case scheme): 200 ($code), same body" \
    all '[ "$code" = 200 ]' '[ "$(strip "$work/open-top.json")" = "$(strip "$work/b2.json")" ]'
code=$(req "$A/api/v1/top" "$work/basic.json" -u "grafana:$TOKEN2")
check "Basic with the token as password: 200 ($code), same body" \
    all '[ "$code" = 200 ]' '[ "$(strip "$work/open-top.json")" = "$(strip "$work/basic.json")" ]'
code=$(curl -s -o "$work/connect-ok.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN1" \
    -H 'Content-Type: application/json' -H 'Connect-Protocol-Version: 1' \
    --data-binary "{\"start\":\"$FROM\",\"end\":\"$UNTIL\"}" "$A/querier.v1.QuerierService/ProfileTypes")
check "Connect POST with the token: 200 ($code)" [ "$code" = 200 ]
check "/metrics with the token: 200" \
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN1" "$A/metrics")" = 200 ]

# ---- two authenticated workers with --peers ------------------------------------------
start_worker "$work/b.log" --auth-token-file "$work/tokens" --peers "127.0.0.1:$porta" ||
    fail "second worker did not start: $(cat "$work/b.log")"
B=http://127.0.0.1:$port
selects() { curl -s -H "Authorization: Bearer $TOKEN2" "$A/metrics" | sed -n 's/^stoke_query_requests_total{endpoint="select"} //p'; }
before=$(selects)
for ep in top flamegraph; do
    code=$(req "$B/api/v1/$ep" "$work/peer-$ep.json" -H "Authorization: Bearer $TOKEN2")
    check "peers: /api/v1/$ep 200 ($code), same body as one worker without auth" \
        all '[ "$code" = 200 ]' '[ "$(strip "$work/open-$ep.json")" = "$(strip "$work/peer-$ep.json")" ]'
done
after=$(selects)
check "peers: the peer answered /internal/v1/select ($before -> $after)" [ "${after:-0}" -ge $((${before:-0} + 2)) ]
peer_errors=$(curl -s -H "Authorization: Bearer $TOKEN1" "$B/metrics" | sed -n 's/^stoke_query_peer_errors_total //p')
check "peers: no peer errors ($peer_errors)" [ "$peer_errors" = 0 ]
check "peers: no warnings in the answer" python3 -c 'import json,sys; assert "warnings" not in json.load(open(sys.argv[1]))' "$work/peer-top.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary '{}' "$A/internal/v1/select")
check "/internal/v1/select without a token: 401 ($code)" [ "$code" = 401 ]

# ---- no token in the logs ------------------------------------------------------------
for log in "$work/a.log" "$work/b.log"; do
    check "$(basename "$log"): no token in stderr" \
        bash -c '! grep -qF -e "$1" -e "$2" -e "$3" "$4"' _ "$TOKEN1" "$TOKEN2" "$WRONG" "$log"
done
check "startup line says auth is on" grep -q 'token auth on' "$work/a.log"

summary test_query_auth
