#!/usr/bin/env bash
# stoke-query against the pprof corpus: every profile of
# /work/shared/corpus/pprof (or $STOKE_PPROF_CORPUS) is imported through the
# codec into a directory store; for each one and each of its sample types,
# /api/v1/top must give the total and the per-function self and total values
# that Google's own Go parser computes (tests/integration/pprof_top). Then:
# bad requests get 4xx naming the problem, the pprof export opens in
# `go tool pprof`, two workers with --peers answer like one, and SIGTERM
# stops the worker cleanly.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}

need curl
need go
need python3
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_query_api; exit 1; }
[ -d "$CORPUS" ] || { fail "no corpus at $CORPUS"; summary test_query_api; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$work/gocache \
    go build -o "$work/pprof_top" ./tests/integration/pprof_top) ||
    { fail "building pprof_top"; summary test_query_api; exit 1; }

now_ms=$(($(date +%s) * 1000))
T=$((now_ms - 1800000))
FROM=$((now_ms - 3600000))
UNTIL=$((now_ms + 60000))

# ---- import ----------------------------------------------------------------
declare -A files_of
for f in "$CORPUS"/*; do
    svc=$(basename "$f" | tr -c 'A-Za-z0-9._\n-' '_')
    if [ -d "$f" ]; then files=("$f"/*); else files=("$f"); fi
    # Go's parser is the reference: what it rejects cannot be compared, but
    # importing it must still end cleanly (imported or refused, no crash).
    if ! "$work/pprof_top" -type x -unit x "${files[@]}" >"$work/go.err" 2>&1 &&
        ! grep -q 'no sample type' "$work/go.err"; then
        "$QUERY" import --store "$work/store" --service "$svc" --time "$T" "${files[@]}" \
            >/dev/null 2>"$work/import.err"
        rc=$?
        check "import $svc (Go's parser rejects it: $(head -c 60 "$work/go.err" | tr '\n' ' ')): clean exit $rc" [ "$rc" -le 1 ]
        continue
    fi
    if "$QUERY" import --store "$work/store" --service "$svc" --time "$T" "${files[@]}" \
        >/dev/null 2>"$work/import.err"; then
        files_of[$svc]="${files[*]}"
    else
        fail "import $svc: $(cat "$work/import.err")"
    fi
done

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

start_worker "$work/q1.log" --web-dir "$ROOT/query/web" ||
    { fail "stoke-query did not start: $(cat "$work/q1.log")"; summary test_query_api; exit 1; }
port1=$port
URL=http://127.0.0.1:$port1

api() { # api PATH [curl -G args]
    local path=$1; shift
    curl -s -G "$URL$path" --data-urlencode "from=$FROM" --data-urlencode "until=$UNTIL" "$@"
}

# ---- top equals Go's numbers, per file and sample type ----------------------
compare=$work/compare.py
cat >"$compare" <<'PY'
import json, sys
want = json.load(open(sys.argv[1]))
got = json.load(open(sys.argv[2]))
errs = []
if got.get("total") != want["total"]:
    errs.append("total %s != %s" % (got.get("total"), want["total"]))
fns = {f["name"]: f for f in got.get("functions", [])}
names = set(want["self"]) | set(want["cum"])
if set(fns) != names:
    errs.append("functions differ: only stoke %s; only pprof %s" % (
        sorted(set(fns) - names)[:3], sorted(names - set(fns))[:3]))
for n in names & set(fns):
    if fns[n]["self"] != want["self"].get(n, 0) or fns[n]["total"] != want["cum"].get(n, 0):
        errs.append("%s: self %d/%d total %d/%d" % (n, fns[n]["self"], want["self"].get(n, 0),
                                                     fns[n]["total"], want["cum"].get(n, 0)))
        if len(errs) > 3:
            break
if errs:
    print("; ".join(errs))
    sys.exit(1)
print("%d functions" % len(names))
PY
for svc in $(printf '%s\n' "${!files_of[@]}" | sort); do
    read -r -a files <<<"${files_of[$svc]}"
    types=$(api /api/v1/profile_types --data-urlencode "query={service_name=\"$svc\"}" |
        python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["profile_types"]))')
    [ -n "$types" ] || { fail "$svc: no profile types"; continue; }
    for pt in $types; do
        IFS=: read -r _ typ unit _ _ <<<"$pt"
        "$work/pprof_top" -type "$typ" -unit "$unit" "${files[@]}" >"$work/want.json" 2>&1 ||
            { fail "$svc $pt: pprof_top: $(cat "$work/want.json")"; continue; }
        api /api/v1/top --data-urlencode "query={service_name=\"$svc\"}" \
            --data-urlencode "profile_type=$pt" --data-urlencode limit=100000 >"$work/got.json"
        if out=$(python3 "$compare" "$work/want.json" "$work/got.json" 2>&1); then
            pass "$svc $typ/$unit: top equals pprof ($out)"
        else
            fail "$svc $typ/$unit: $out"
        fi
    done
done

# ---- other views answer ---------------------------------------------------
svc=go-cpu.pb.gz
code=$(api /api/v1/flamegraph -o "$work/flame.json" -w '%{http_code}' \
    --data-urlencode "query={service_name=\"$svc\"}" --data-urlencode max_nodes=20)
check "flamegraph 200 with a tree" [ "$code" = 200 -a "$(python3 -c '
import json,sys; j=json.load(open(sys.argv[1])); print(j["tree"]["total"] == j["total"] > 0)' "$work/flame.json")" = True ]
code=$(api /api/v1/series -o "$work/series.json" -w '%{http_code}' --data-urlencode group_by=service_name)
check "series 200, one series per service" [ "$code" = 200 -a "$(python3 -c '
import json,sys; print(len(json.load(open(sys.argv[1]))["series"]))' "$work/series.json")" -ge 5 ]
code=$(api /api/v1/label_values -o "$work/lv.json" -w '%{http_code}' --data-urlencode name=service_name)
check "label_values lists the imported services ($code)" grep -q '"go-cpu.pb.gz"' "$work/lv.json"
api /api/v1/pprof --data-urlencode "query={service_name=\"$svc\"}" -o "$work/export.pb.gz"
(cd "$work" && go tool pprof -top -sample_index=cpu export.pb.gz >"$work/export.top" 2>&1)
want_total=$("$work/pprof_top" -type cpu -unit nanoseconds "$CORPUS/$svc" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
got_total=$("$work/pprof_top" -type cpu -unit nanoseconds "$work/export.pb.gz" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
check "pprof export opens in go tool pprof" grep -q 'flat%' "$work/export.top"
check "pprof export total equals the source ($want_total)" [ "$want_total" = "$got_total" ]
check "healthz" [ "$(curl -s "$URL/healthz")" = ok ]
check "metrics count requests" grep -q 'stoke_query_requests_total{endpoint="top"}' <(curl -s "$URL/metrics")
# the store's requests and bytes (what a query cost the object store)
m=$(curl -s "$URL/metrics")
gets=$(sed -n 's/^stoke_query_store_requests_total{op="get"} //p' <<<"$m")
lists=$(sed -n 's/^stoke_query_store_requests_total{op="list"} //p' <<<"$m")
got=$(sed -n 's/^stoke_query_store_bytes_got_total //p' <<<"$m")
check "metrics count the store's GETs ($gets), LISTs ($lists) and bytes ($got)" \
    test "${gets:-0}" -gt 0 -a "${lists:-0}" -gt 0 -a "${got:-0}" -gt 0
if [ -f "$ROOT/query/web/index.html" ]; then
    check "GET / serves the web page" [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")" = 200 ]
fi

# ---- bad requests -----------------------------------------------------------
bad() { # bad STATUS MESSAGE PATH [curl args]
    local want=$1 msg=$2 path=$3; shift 3
    local code
    code=$(curl -s -G -o "$work/bad.json" -w '%{http_code}' "$URL$path" "$@")
    if [ "$code" = "$want" ] && grep -q -- "$msg" "$work/bad.json"; then
        pass "$want $path: $msg"
    else
        fail "$path $*: got $code $(cat "$work/bad.json")"
    fi
}
bad 400 "query: expected '=', '!=', '=~' or '!~' after label name at offset 13" /api/v1/top \
    --data-urlencode 'query={service_name}' -d from=1 -d until=2
bad 400 "query: bad regex" /api/v1/top --data-urlencode 'query={a=~"(("}' -d from=1 -d until=2
bad 400 "too complex" /api/v1/top --data-urlencode 'query={a=~"((a{99}){99}){99}"}' -d from=1 -d until=2
bad 400 "profile_type: unknown profile type" /api/v1/top -d profile_type=bogus -d from=1 -d until=2
bad 400 "from: missing" /api/v1/top -d until=2
bad 400 "from: must be before until" /api/v1/top -d from=5 -d until=1
bad 400 "longer than 31 days" /api/v1/top -d from=now-32d -d until=now
bad 400 "from: not a number" /api/v1/top -d from=yesterday -d until=now
bad 400 "max_nodes: 0 is out of range" /api/v1/flamegraph -d from=1 -d until=2 -d max_nodes=0
bad 400 "max_nodes: 'many' is not an integer" /api/v1/flamegraph -d from=1 -d until=2 -d max_nodes=many
bad 400 "limit:" /api/v1/top -d from=1 -d until=2 -d limit=-1
bad 404 "no such endpoint" /api/v1/nothing
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/top")
check "405 for POST /api/v1/top" [ "$code" = 405 ]
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @<(head -c 100000 /dev/zero) \
    "$URL/internal/v1/select")
check "413 for an oversized POST body" [ "$code" = 413 ]
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/v1/top?query=$(head -c 131000 /dev/zero | tr '\0' a)")
# libmicrohttpd answers 431 or closes the connection (000) past its memory cap
check "oversized URL refused ($code), worker still healthy" \
    [ "$code" != 200 -a "$(curl -s "$URL/healthz")" = ok ]

# ---- two workers with peers answer like one ---------------------------------
start_worker "$work/q2.log" --peers "127.0.0.1:$port1" || fail "second worker did not start"
port2=$port
strip() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j.pop("stats",None); print(json.dumps(j, sort_keys=True))' "$1"; }
for q in '{}' '{service_name=~"go-.*"}'; do
    for ep in top flamegraph; do
        api /api/v1/$ep --data-urlencode "query=$q" --data-urlencode limit=100000 >"$work/one.json"
        curl -s -G "http://127.0.0.1:$port2/api/v1/$ep" --data-urlencode "from=$FROM" \
            --data-urlencode "until=$UNTIL" --data-urlencode "query=$q" \
            --data-urlencode limit=100000 >"$work/two.json"
        check "peers: $ep $q identical to one worker" [ "$(strip "$work/one.json")" = "$(strip "$work/two.json")" ]
    done
done

# ---- clean stop ---------------------------------------------------------------
kill -TERM "${pids[1]}"
wait "${pids[1]}"
check "SIGTERM stops the worker with status 0" [ $? -eq 0 ]

summary test_query_api
