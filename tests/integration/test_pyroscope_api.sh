#!/usr/bin/env bash
# stoke-query's Pyroscope API (docs/api.md) against recorded Grafana
# requests: corpus pprof files are imported at a fixed time so the recorded
# bodies in tests/data/pyroscope/ are posted exactly as they are, as JSON and
# as binary protobuf (Connect unary). Proto answers are decoded by protoc,
# pprof answers by Google's Go parser, JSON by python: never by Stoke's own
# code. Flame graph totals and per-function self values must equal
# /api/v1/top for the same selection; bad input must get Connect errors with
# the right code and status, and the worker must stay up.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}
DATA=$ROOT/tests/data/pyroscope
PT=process_cpu:cpu:nanoseconds:cpu:nanoseconds
SVC=go-cpu.pb.gz
SVC2=go-cpu-labels.pprof

need curl
need go
need python3
need protoc
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_pyroscope_api; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

(cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$work/gocache \
    go build -o "$work/pprof_top" ./tests/integration/pprof_top) ||
    { fail "building pprof_top"; summary test_pyroscope_api; exit 1; }

# The recorded bodies cover [1699996400000, 1700003600000).
for f in $SVC $SVC2 node-cpu.pb.gz; do
    "$QUERY" import --store "$work/store" --service "$f" --time 1700000000000 "$CORPUS/$f" \
        >/dev/null 2>"$work/import.err" || fail "import $f: $(cat "$work/import.err")"
done

"$QUERY" --store "$work/store" --listen 127.0.0.1:0 >/dev/null 2>"$work/q.log" &
pid=$!
for _ in $(seq 50); do
    port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$work/q.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { fail "stoke-query did not start: $(cat "$work/q.log")"; summary test_pyroscope_api; exit 1; }
URL=http://127.0.0.1:$port
SVCURL=$URL/querier.v1.QuerierService

post() { # post METHOD json|proto BODYFILE OUT: prints the HTTP status
    local ct=application/json
    [ "$2" = proto ] && ct=application/proto
    curl -s -o "$4" -w '%{http_code}' -X POST -H "Content-Type: $ct" \
        -H 'Connect-Protocol-Version: 1' --data-binary @"$3" "$SVCURL/$1"
}
decode() { # decode MESSAGE FILE: protoc's text form of a proto response
    local proto=pyroscope/querier.proto
    case $1 in types.v1.*) proto=pyroscope/types.proto ;; esac
    protoc --decode="$1" -I "$ROOT/proto" -I "$(dirname "${PPROF_PROTO:-/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto}")" "$proto" <"$2"
}

top() { # top SERVICE: /api/v1/top for the same selection
    curl -s -G "$URL/api/v1/top" --data-urlencode "query={service_name=\"$1\"}" \
        --data-urlencode "profile_type=$PT" -d from=1699996400000 -d until=1700003600000 \
        -d limit=100000
}
top $SVC >"$work/top.json"
top $SVC2 >"$work/top2.json"
total=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$work/top.json")
total2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["total"])' "$work/top2.json")
check "/api/v1/top has a total for $SVC ($total) and $SVC2 ($total2)" [ "${total:-0}" -gt 0 -a "${total2:-0}" -gt 0 ]

# Flame graph levels (from JSON or protoc text) against top: total, level
# shape, and every function's summed self.
cat >"$work/flame.py" <<'PY'
import json, re, sys
kind, path, topf = sys.argv[1], sys.argv[2], sys.argv[3]
top = json.load(open(topf))
if kind == "json":
    fg = json.load(open(path))["flamegraph"]
    names = fg["names"]
    levels = [[int(v) for v in l.get("values", [])] for l in fg["levels"]]
    total = int(fg["total"])
else:
    text = open(path).read()
    names = [json.loads(m) for m in re.findall(r'^\s*names: (".*")$', text, re.M)]
    levels = [[int(v) for v in re.findall(r'values: (-?\d+)', b)]
              for b in re.findall(r'levels \{(.*?)\}', text, re.S)]
    total = int(re.search(r'^\s*total: (\d+)', text, re.M).group(1))
errs = []
if total != top["total"]:
    errs.append("total %d != top %d" % (total, top["total"]))
selfs = {}
for d, l in enumerate(levels):
    if len(l) % 4:
        errs.append("level %d has %d values" % (d, len(l)))
    for i in range(0, len(l) - 3, 4):
        selfs[names[l[i + 3]]] = selfs.get(names[l[i + 3]], 0) + l[i + 2]
if levels and levels[0][1] != total:
    errs.append("root total %d" % levels[0][1])
want = {f["name"]: f["self"] for f in top["functions"] if f["self"]}
got = {k: v for k, v in selfs.items() if v}
if want != got:
    errs.append("self differs: %s" % sorted(set(want.items()) ^ set(got.items()))[:4])
if errs:
    print("; ".join(errs)); sys.exit(1)
best = max(want, key=lambda k: (want[k], k))
print("total %d, %d functions, top self %s=%d" % (total, len(want), best, want[best]))
PY

# ---- recorded requests, JSON and protobuf -----------------------------------
for enc in json proto; do
    ext=json; [ $enc = proto ] && ext=bin
    code=$(post SelectMergeStacktraces $enc "$DATA/SelectMergeStacktraces.$ext" "$work/smst.$enc")
    if [ $enc = proto ]; then
        decode querier.v1.SelectMergeStacktracesResponse "$work/smst.$enc" >"$work/smst.txt"
        in=$work/smst.txt; kind=text
    else
        in=$work/smst.$enc; kind=json
    fi
    if out=$(python3 "$work/flame.py" $kind "$in" "$work/top.json" 2>&1) && [ "$code" = 200 ]; then
        pass "SelectMergeStacktraces ($enc) equals /api/v1/top: $out"
    else
        fail "SelectMergeStacktraces ($enc) $code: $out"
    fi

    code=$(post ProfileTypes $enc "$DATA/ProfileTypes.$ext" "$work/pt.$enc")
    [ $enc = proto ] && decode querier.v1.ProfileTypesResponse "$work/pt.$enc" >"$work/pt.txt" || cp "$work/pt.$enc" "$work/pt.txt"
    check "ProfileTypes ($enc, $code) lists both process_cpu ids" \
        grep -q "$PT" "$work/pt.txt"
    check "ProfileTypes ($enc) lists process_cpu:samples:count:cpu:nanoseconds" \
        grep -q 'process_cpu:samples:count:cpu:nanoseconds' "$work/pt.txt"

    code=$(post LabelNames $enc "$DATA/LabelNames.$ext" "$work/ln.$enc")
    [ $enc = proto ] && decode types.v1.LabelNamesResponse "$work/ln.$enc" >"$work/ln.txt" || cp "$work/ln.$enc" "$work/ln.txt"
    check "LabelNames ($enc, $code) has service_name and __name__" \
        bash -c "grep -q '\"service_name\"' '$work/ln.txt' && grep -q '\"__name__\"' '$work/ln.txt'"

    code=$(post LabelValues $enc "$DATA/LabelValues.$ext" "$work/lv.$enc")
    [ $enc = proto ] && decode types.v1.LabelValuesResponse "$work/lv.$enc" >"$work/lv.txt" || cp "$work/lv.$enc" "$work/lv.txt"
    check "LabelValues service_name ($enc, $code) lists the imported services" \
        bash -c "grep -q '\"$SVC\"' '$work/lv.txt' && grep -q '\"$SVC2\"' '$work/lv.txt' && grep -q '\"node-cpu.pb.gz\"' '$work/lv.txt'"

    code=$(post SelectSeries $enc "$DATA/SelectSeries.$ext" "$work/ss.$enc")
    if [ $enc = proto ]; then
        decode querier.v1.SelectSeriesResponse "$work/ss.$enc" >"$work/ss.txt"
        sum=$(python3 -c 'import re,sys; print(int(sum(float(v) for v in re.findall(r"value: ([0-9.e+]+)", open(sys.argv[1]).read()))))' "$work/ss.txt")
    else
        sum=$(python3 -c '
import json,sys; j=json.load(open(sys.argv[1]))
assert all(l["name"] == "service_name" for s in j["series"] for l in s["labels"])
print(int(sum(p.get("value", 0) for s in j["series"] for p in s["points"])))' "$work/ss.$enc")
    fi
    check "SelectSeries ($enc, $code) points sum to the total ($sum = $total)" [ "$sum" = "$total" ]

    code=$(post SelectMergeProfile $enc "$DATA/SelectMergeProfile.$ext" "$work/smp.$enc")
    if [ $enc = proto ]; then
        got=$("$work/pprof_top" -type cpu -unit nanoseconds "$work/smp.$enc" 2>&1 |
            python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])' 2>&1)
        check "SelectMergeProfile (proto, $code) is a pprof Go reads with the same total ($got = $total)" [ "$got" = "$total" ]
    else
        got=$(python3 -c '
import json,sys; p=json.load(open(sys.argv[1]))
st=p["sampleType"]; s=p["stringTable"]
i=[k for k,t in enumerate(st) if s[int(t["type"])]=="cpu"][0]
print(sum(int(x["value"][i]) for x in p["sample"]))' "$work/smp.$enc" 2>&1)
        check "SelectMergeProfile (json, $code) Profile sums to the total ($got = $total)" [ "$got" = "$total" ]
    fi

    code=$(post Diff $enc "$DATA/Diff.$ext" "$work/diff.$enc")
    if [ $enc = proto ]; then
        decode querier.v1.DiffResponse "$work/diff.$enc" >"$work/diff.txt"
        lt=$(sed -n 's/^ *leftTicks: //p' "$work/diff.txt"); rt=$(sed -n 's/^ *rightTicks: //p' "$work/diff.txt")
    else
        read -r lt rt < <(python3 -c 'import json,sys; f=json.load(open(sys.argv[1]))["flamegraph"]; print(f["leftTicks"], f["rightTicks"])' "$work/diff.$enc")
    fi
    check "Diff ($enc, $code): leftTicks $lt = $total, rightTicks $rt = $total2" [ "$lt" = "$total" -a "$rt" = "$total2" ]
done

# ---- render -------------------------------------------------------------------
code=$(curl -s -o "$work/render.json" -w '%{http_code}' -G "$URL/pyroscope/render" \
    --data-urlencode "query=$PT{service_name=\"$SVC\"}" -d from=1699996400 -d until=1700003600 \
    -d format=json -d maxNodes=16384)
out=$(python3 - "$work/render.json" "$total" <<'PY' 2>&1
import json, sys
j = json.load(open(sys.argv[1])); total = int(sys.argv[2])
fb = j["flamebearer"]; names = fb["names"]; levels = fb["levels"]
assert j["version"] == 1 and j["metadata"]["format"] == "single", "header"
assert fb["numTicks"] == total, "numTicks %d != %d" % (fb["numTicks"], total)
assert len(levels[0]) == 4 and levels[0][1] == total, "root"
# Every node lies inside a node of the level above; selfs add up to the total.
spans = [(0, total)]
selfsum = 0
for l in levels:
    assert len(l) % 4 == 0, "level length"
    x = 0; cur = []
    for i in range(0, len(l), 4):
        d, t, s, n = l[i:i + 4]
        assert d >= 0 and 0 <= s <= t and 0 <= n < len(names), "node values"
        x += d
        assert any(a <= x and x + t <= b for a, b in spans), "node outside its parent"
        cur.append((x, x + t)); x += t; selfsum += s
    spans = cur
assert selfsum == total, "selfs %d" % selfsum
assert fb["maxSelf"] == max(l[i + 2] for l in levels[1:] for i in range(0, len(l), 4)), "maxSelf"
print("%d levels, %d names" % (len(levels), len(names)))
PY
)
check "render ($code): valid flamebearer, numTicks = $total ($out)" [ "$code" = 200 -a $? -eq 0 ]

# ---- bad input ------------------------------------------------------------------
bad() { # bad STATUS CODE DESCRIPTION curl-args...
    local want=$1 ccode=$2 what=$3; shift 3
    local got
    got=$(curl -s -o "$work/bad.json" -w '%{http_code}' "$@")
    if [ "$got" = "$want" ] && python3 -c '
import json,sys; j=json.load(open(sys.argv[1])); assert j["code"]==sys.argv[2] and j["message"]' \
        "$work/bad.json" "$ccode" 2>/dev/null; then
        pass "$what: $want $ccode ($(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["message"][:70])' "$work/bad.json"))"
    else
        fail "$what: got $got $(head -c 200 "$work/bad.json")"
    fi
}
J=(-X POST -H 'Content-Type: application/json' -H 'Connect-Protocol-Version: 1')
P=(-X POST -H 'Content-Type: application/proto' -H 'Connect-Protocol-Version: 1')
bad 415 unimplemented "wrong content type" -X POST -H 'Content-Type: text/plain' \
    --data-binary @"$DATA/ProfileTypes.json" "$SVCURL/ProfileTypes"
bad 400 invalid_argument "malformed JSON" "${J[@]}" --data-binary '{"start":' "$SVCURL/ProfileTypes"
bad 400 invalid_argument "JSON of the wrong type" "${J[@]}" --data-binary '{"start":{}}' "$SVCURL/ProfileTypes"
bad 400 invalid_argument "malformed protobuf" "${P[@]}" --data-binary $'\x0a\xff\xff' \
    "$SVCURL/SelectMergeStacktraces"
bad 400 invalid_argument "unknown profile type" "${J[@]}" \
    --data-binary '{"profileTypeID":"bogus","start":"1699996400000","end":"1700003600000"}' \
    "$SVCURL/SelectMergeStacktraces"
bad 400 invalid_argument "bad label selector" "${J[@]}" \
    --data-binary "{\"profileTypeID\":\"$PT\",\"labelSelector\":\"{service_name}\"}" \
    "$SVCURL/SelectMergeStacktraces"
bad 400 invalid_argument "start after end" "${J[@]}" --data-binary '{"start":"5","end":"1"}' \
    "$SVCURL/ProfileTypes"
bad 404 unimplemented "unknown method" "${J[@]}" --data-binary '{}' "$SVCURL/NoSuchMethod"
bad 501 unimplemented "known but unimplemented method" "${J[@]}" --data-binary '{}' \
    "$SVCURL/SelectMergeSpanProfile"
bad 429 resource_exhausted "oversized body (5 MiB)" "${P[@]}" \
    --data-binary @<(head -c 5242880 /dev/zero) "$SVCURL/SelectMergeStacktraces"
code=$(post SelectMergeStacktraces json "$DATA/SelectMergeStacktraces.json" "$work/again.json")
check "worker still answers after bad input ($code)" [ "$code" = 200 -a "$(curl -s "$URL/healthz")" = ok ]

kill -TERM "$pid"
wait "$pid"
check "SIGTERM stops the worker with status 0" [ $? -eq 0 ]
pid=
summary test_pyroscope_api
