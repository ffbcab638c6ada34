#!/usr/bin/env bash
# Individual profiles and heatmaps (docs/api.md) on a fleet written by
# `stoke-query generate`: the native JSON API, and Pyroscope's query API as
# Grafana sends it (Connect JSON through the proxy's headers, and binary
# protobuf with Connect-Protocol-Version: 1 encoded and decoded by protoc
# from the upstream-compatible protos). Checked: every call answers 200;
# /api/v1/profiles counts every (host, window) and lists them under a
# default limit; the heatmap's counts sum to that number (native and
# SelectHeatmap) and each cell's exemplar is its largest profile; each
# SelectSeries exemplar is its step's largest profile and its value equals
# the flame graph total of that profile queried by id (native,
# SelectMergeStacktraces, SelectMergeProfile); a cell's merged flame graph
# totals its profiles; ids and values are unchanged by `stoke-query compact`;
# unknown ids answer 404 naming the id, a heatmap of more than 11,000 slots
# 400. Then headless Chromium opens the page's heatmap, clicks a cell and
# its exemplar, and saves screenshots in $OUT (default
# build/test-output/test_individual).
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}
PPROF_PROTO_DIR=$(dirname "${PPROF_PROTO:-/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto}")
OUT=${OUT:-$ROOT/build/test-output/test_individual}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
PLAYWRIGHT_DIR=${PLAYWRIGHT_DIR:-$ROOT/build/web-test}

need curl
need python3
need protoc
need node
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_individual; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

start_worker() {
    : >"$work/q.log" # emptied first: a reused log must not show the last port
    "$QUERY" --store "$work/s" --listen 127.0.0.1:0 --web-dir "$ROOT/query/web" >/dev/null 2>"$work/q.log" &
    pid=$!
    port=
    for _ in $(seq 50); do
        port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$work/q.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { fail "stoke-query did not start: $(cat "$work/q.log")"; summary test_individual; exit 1; }
}
stop_worker() {
    kill -TERM "$pid"
    wait "$pid"
    check "SIGTERM stops the worker with status 0" [ $? -eq 0 ]
    pid=
}
count_driver() {
    while read -r status rest; do
        case $status in ok) pass "$rest" ;; FAIL) fail "$rest" ;; *) fail "driver: $status $rest" ;; esac
    done <"$1"
    grep -q . "$1" || fail "the driver printed nothing"
}

H0=$(( ($(date +%s) / 3600 - 2) * 3600000 ))
"$QUERY" generate --store "$work/s" --hosts 3 --services 2 --hours 1 --flush 300 --start "$H0" \
    "$CORPUS/go-cpu.pb.gz" "$CORPUS/go-alloc-space-delta.pb.gz" >"$work/gen.log" 2>&1 ||
    { fail "generate: $(cat "$work/gen.log")"; summary test_individual; exit 1; }

# One python driver, run before and after compaction: it prints "ok ..." /
# "FAIL ..." lines; "before" saves the profiles it saw, "after" compares.
cat >"$work/driver.py" <<'PY'
import json, re, sys, urllib.parse
URL, H0, PROTO, PPROF, PHASE, SAVE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
START, END = H0, H0 + 3600000
PT = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SEL = '{service_name="svc-00"}'
UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
sys.path.insert(0, sys.argv[7])
from connect_client import Client, ok, bad, check
C = Client(URL, PROTO, PPROF)
http, cj, protoc, cp = C.http, C.cj, C.protoc, C.cp

def get(path, **params):
    st, b = http("GET", path + "?" + urllib.parse.urlencode(params))
    if st != 200:
        bad("GET %s %s answered %d: %s" % (path, params, st, b[:200]))
        return None
    return json.loads(b)

def flame_total(**params):
    f = get("/api/v1/flamegraph", **params)
    return f["total"] if f else None

def pprof_sum(raw, col):
    txt = protoc("decode", "perftools.profiles.Profile", raw).decode()
    s = 0
    for blk in re.findall(r"sample \{(.*?)\n\}", txt, re.S):
        vals = [int(v) for v in re.findall(r"\n  value: (-?\d+)", blk)]
        s += vals[col] if len(vals) > col else 0
    return s

# ---- the individual profiles of the range --------------------------------
lst = get("/api/v1/profiles", query=SEL, **{"from": START, "until": END, "limit": 10000})
profs = lst["profiles"] if lst else []
N = len(profs)
check(N == 3 * 12 * 6 and lst["count"] == N,
      "%s: /api/v1/profiles lists every (host, window): %d of 3 hosts x 72 windows" % (PHASE, N))
check(all(UUID7.match(p["id"]) for p in profs) and len({p["id"] for p in profs}) == N,
      "%s: ids are distinct UUIDv7s" % PHASE)
check(all(p["labels"].get("service_name") == "svc-00" and p["labels"].get("host_name") for p in profs),
      "%s: every profile has its service and host labels" % PHASE)
byid = {p["id"]: p for p in profs}

if PHASE == "after":
    before = json.load(open(SAVE))
    check(before == {i: p["value"] for i, p in byid.items()},
          "after compaction: the same %d ids with the same values" % len(before))
    for i in sorted(before)[:4]:
        t = flame_total(profile_id=i)
        check(t == before[i], "after compaction: flame graph of %s by id = %s (%s)" % (i, before[i], t))
    check(lst["stats"]["objects"] < 12, "after compaction the range reads %d objects (blocks)" % lst["stats"]["objects"])
    sys.exit(0)
json.dump({i: p["value"] for i, p in byid.items()}, open(SAVE, "w"))

d = get("/api/v1/profiles", query=SEL, **{"from": START, "until": END})
check(d and len(d["profiles"]) == 100 and d["limit"] == 100 and d["count"] == N,
      "default limit: 100 of %d listed, count says %d" % (N, d and d["count"]))
d = get("/api/v1/profiles", query=SEL, order="value", limit=1, **{"from": START, "until": END})
check(d and d["profiles"][0]["value"] == max(p["value"] for p in profs), "order=value lists the largest first")

# ---- heatmap: native ------------------------------------------------------
STEP = 300000
hm = get("/api/v1/heatmap", query=SEL, step=STEP, **{"from": START, "until": END})
cells = [c for s in (hm or {}).get("series", []) for c in s["cells"]]
total = sum(c["count"] for c in cells)
check(hm and total == N and hm["count"] == N, "heatmap counts sum to the %d profiles (%d)" % (N, total))
check(hm and hm["min"] == min(p["value"] for p in profs) and hm["max"] == max(p["value"] for p in profs)
      and len(hm["y_min"]) == 21, "heatmap y range is the profiles' min and max, 20 buckets")
def bucket(v, ymin):
    k = 0
    while k < 19 and ymin[k + 1] <= v:
        k += 1
    return k
exp = {}
for p in profs:
    key = ((p["timestamp"] - START) // STEP * STEP + START, bucket(p["value"], hm["y_min"]))
    exp.setdefault(key, []).append(p)
good = all(len(exp.get((c["t"], c["b"]), [])) == c["count"] and
           c["exemplar"]["value"] == max(p["value"] for p in exp[(c["t"], c["b"])]) and
           c["exemplar"]["id"] in byid for c in cells) and len(exp) == len(cells)
check(good, "each of %d cells counts its profiles and its exemplar is the largest" % len(cells))
# a cell's profiles merged: the flame graph of its slot and value range
c = max(cells, key=lambda c: c["count"])
lo = hm["y_min"][c["b"]]
hi = hm["y_min"][c["b"] + 1] + (1 if c["b"] == 19 else 0)
t = flame_total(query=SEL, value_min=lo, value_max=hi, **{"from": c["t"], "until": c["t"] + STEP})
want = sum(p["value"] for p in exp[(c["t"], c["b"])])
check(t == want, "a cell's merged flame graph totals its %d profiles (%s = %s)" % (c["count"], t, want))
st, b = http("GET", "/api/v1/heatmap?" + urllib.parse.urlencode({"query": SEL, "from": START, "until": END, "step": 100}))
check(st == 400 and b"11000" in b, "native heatmap of 36,000 slots: %d %s" % (st, b[:80]))

# ---- SelectHeatmap: Connect JSON and protobuf ---------------------------------
hreq = {"profileTypeID": PT, "labelSelector": SEL, "start": START, "end": END, "step": 300,
        "queryType": "HEATMAP_QUERY_TYPE_INDIVIDUAL", "exemplarType": "EXEMPLAR_TYPE_INDIVIDUAL"}
r = cj("SelectHeatmap", hreq)
if r is not None:
    slots = [s for ser in r.get("series", []) for s in ser.get("slots", [])]
    total = sum(sum(s.get("counts", [])) for s in slots)
    check(total == N, "SelectHeatmap (json): counts sum to %d (%d)" % (N, total))
    exs = [e for s in slots for e in s.get("exemplars", [])]
    check(len(exs) == len(cells) and all(int(e["value"]) == byid[e["profileId"]]["value"] for e in exs),
          "SelectHeatmap (json): one exemplar per cell, each a listed profile with its value")
    check(all(int(s["timestamp"]) % STEP == 0 and len(s["yMin"]) == 20 for s in slots),
          "SelectHeatmap (json): slots stamped with their right edge, 20 y_min each")
txt = cp("SelectHeatmap", "querier.v1.SelectHeatmapRequest",
         'profile_typeID: "%s" label_selector: %s start: %d end: %d step: 300 query_type: HEATMAP_QUERY_TYPE_INDIVIDUAL'
         % (PT, json.dumps(SEL), START, END), "querier.v1.SelectHeatmapResponse")
if txt is not None:
    total = sum(int(v) for v in re.findall(r"counts: (\d+)", txt))
    check(total == N and "exemplars" not in txt, "SelectHeatmap (proto): counts sum to %d (%d), no exemplars unasked" % (N, total))
cj("SelectHeatmap", dict(hreq, step=0.1), want=400)
ok("SelectHeatmap of 36,000 slots answers 400")
cj("SelectHeatmap", dict(hreq, queryType="HEATMAP_QUERY_TYPE_SPAN"), want=501)
ok("SelectHeatmap of spans answers 501")

# ---- SelectSeries exemplars ---------------------------------------------------
sreq = {"profileTypeID": PT, "labelSelector": SEL, "start": START, "end": END, "step": 600,
        "groupBy": ["service_name"], "exemplarType": "EXEMPLAR_TYPE_INDIVIDUAL"}
r = cj("SelectSeries", sreq)
pts = [p for s in (r or {}).get("series", []) for p in s.get("points", [])]
check(len(pts) == 6 and all(len(p.get("exemplars", [])) == 1 for p in pts),
      "SelectSeries (json): 6 points, one exemplar each")
good = True
for p in pts:
    t0 = int(p["timestamp"])
    inside = [q for q in profs if t0 <= q["timestamp"] < t0 + 600000]
    e = p["exemplars"][0]
    good &= int(e["value"]) == max(q["value"] for q in inside) and abs(p["value"] - sum(q["value"] for q in inside)) < 1
    good &= all(l["name"] != "service_name" for l in e.get("labels", []))
check(good, "SelectSeries (json): each exemplar is its step's largest profile; the point sums them")
for p in pts[:3]:
    e = p["exemplars"][0]
    v = int(e["value"])
    t = flame_total(profile_id=e["profileId"])
    check(t == v, "exemplar %s: native flame graph by id totals its value %d (%s)" % (e["profileId"], v, t))
    f = cj("SelectMergeStacktraces", {"profileTypeID": PT, "labelSelector": "{}", "start": START, "end": END,
                                      "profileIdSelector": [e["profileId"]]})
    check(f and int(f["flamegraph"]["total"]) == v, "exemplar %s: SelectMergeStacktraces (json) by id totals %d" % (e["profileId"], v))
    txt = cp("SelectMergeStacktraces", "querier.v1.SelectMergeStacktracesRequest",
             'profile_typeID: "%s" label_selector: "{}" profile_id_selector: "%s"' % (PT, e["profileId"]),
             "querier.v1.SelectMergeStacktracesResponse")
    check(txt and re.search(r"\n  total: %d\n" % v, txt), "exemplar %s: SelectMergeStacktraces (proto, no range) totals %d" % (e["profileId"], v))
    body = protoc("encode", "querier.v1.SelectMergeProfileRequest",
                  ('profile_typeID: "%s" label_selector: "{}" start: %d end: %d profile_id_selector: "%s"'
                   % (PT, START, END, e["profileId"])).encode())
    st, raw = http("POST", "/querier.v1.QuerierService/SelectMergeProfile", body,
                   {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"})
    check(st == 200 and pprof_sum(raw, 0) == v, "exemplar %s: SelectMergeProfile (proto) pprof sums to %d" % (e["profileId"], v))
txt = cp("SelectSeries", "querier.v1.SelectSeriesRequest",
         'profile_typeID: "%s" label_selector: %s start: %d end: %d step: 600 exemplar_type: EXEMPLAR_TYPE_INDIVIDUAL'
         % (PT, json.dumps(SEL), START, END), "querier.v1.SelectSeriesResponse")
check(txt and txt.count("exemplars {") == 6 and all(i in byid for i in re.findall(r'profile_id: "([^"]+)"', txt)),
      "SelectSeries (proto): six exemplars, each a listed profile")
r = cj("SelectSeries", dict(sreq, exemplarType="EXEMPLAR_TYPE_NONE"))
check(r and not any("exemplars" in p for s in r["series"] for p in s["points"]), "SelectSeries without exemplars has none")

# several ids at once
ids = sorted(byid)[:3]
t = flame_total(profile_id=",".join(ids))
check(t == sum(byid[i]["value"] for i in ids), "flame graph of 3 ids totals their values")
top = get("/api/v1/top", profile_id=",".join(ids))
check(top and top["total"] == t, "top of the same 3 ids agrees")
f = cj("SelectMergeStacktraces", {"profileTypeID": PT, "labelSelector": "{}", "start": START, "end": END,
                                  "profileIdSelector": ids})
check(f and int(f["flamegraph"]["total"]) == t, "SelectMergeStacktraces of 3 ids totals their values")
st, raw = http("GET", "/api/v1/pprof?" + urllib.parse.urlencode({"profile_id": ids[0]}))
check(st == 200, "pprof of one id: %d" % st)

# ---- unknown ids: 404 naming the id; malformed: 400 ----------------------------
unknown = ids[0][:-1] + ("0" if ids[0][-1] != "0" else "1")
for path in ("/api/v1/flamegraph", "/api/v1/top", "/api/v1/pprof"):
    st, b = http("GET", path + "?" + urllib.parse.urlencode({"profile_id": ids[0] + "," + unknown}))
    check(st == 404 and unknown.encode() in b, "%s with an unknown id: %d naming it" % (path, st))
v4 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
st, b = http("GET", "/api/v1/flamegraph?profile_id=" + v4)
check(st == 404 and v4.encode() in b, "a UUID Stoke never writes: %d naming it" % st)
st, b = http("GET", "/api/v1/flamegraph?profile_id=not-an-id")
check(st == 400, "a malformed id: %d" % st)
for path in ("/api/v1/profiles", "/api/v1/heatmap"):  # ids are not theirs (and are freed: ASan)
    st, b = http("GET", path + "?" + urllib.parse.urlencode({"profile_id": ids[0] + ",zz", "from": START, "until": END}))
    check(st == 400, "%s refuses a bad profile_id list: %d" % (path, st))
    st, b = http("GET", path + "?" + urllib.parse.urlencode({"profile_id": ids[0], "from": START, "until": END}))
    check(st == 400 and b"not a parameter" in b, "%s refuses profile_id: %d" % (path, st))
r = cj("SelectMergeStacktraces", {"profileTypeID": PT, "labelSelector": "{}", "start": START, "end": END,
                                  "profileIdSelector": [unknown]}, want=404)
check(r and r.get("code") == "not_found" and unknown in r.get("message", ""), "SelectMergeStacktraces (json), unknown id: 404 not_found naming it")
txt = cp("SelectMergeProfile", "querier.v1.SelectMergeProfileRequest",
         'profile_typeID: "%s" label_selector: "{}" profile_id_selector: "%s"' % (PT, unknown),
         "querier.v1.SelectMergeProfileRequest", want=404)
check(txt and unknown in txt, "SelectMergeProfile (proto), unknown id: 404 naming it")
cj("SelectMergeStacktraces", {"profileTypeID": PT, "profileIdSelector": ["zz"]}, want=400)
ok("SelectMergeStacktraces with a malformed id: 400")
st, b = http("GET", "/healthz")
check(st == 200, "worker still up")
PY

start_worker
python3 "$work/driver.py" "http://127.0.0.1:$port" "$H0" "$ROOT/proto" "$PPROF_PROTO_DIR" before "$work/ids.json" "$ROOT/tests/integration" \
    >"$work/out1" 2>&1
count_driver "$work/out1"

# ---- the page: heatmap, a cell, its exemplar (headless Chromium) ----------------
mkdir -p "$OUT"
rm -f "$OUT"/*.png
if [ ! -x "$CHROMIUM" ] || [ ! -f "$PLAYWRIGHT_DIR/node_modules/playwright-core/package.json" ]; then
    if [ "${CI:-}" = true ]; then
        fail "chromium ($CHROMIUM) or playwright-core ($PLAYWRIGHT_DIR) missing"
    else
        echo "skipping the browser part: chromium or playwright-core missing (see test_web.sh)" >&2
    fi
else
    out=$(BASE_URL="http://127.0.0.1:$port" FROM=$H0 UNTIL=$((H0 + 3600000)) SHOTS="$OUT" CHROMIUM=$CHROMIUM \
        PLAYWRIGHT_DIR=$PLAYWRIGHT_DIR timeout 180 node "$ROOT/tests/integration/web/heatmap.mjs" 2>&1)
    rc=$?
    while IFS= read -r line; do
        case $line in
            "PASS "*) pass "${line#PASS }" ;;
            "FAIL "*) fail "${line#FAIL }" ;;
            *) [ -n "$line" ] && echo "       $line" ;;
        esac
    done <<<"$out"
    check "browser test exits 0 (rc=$rc)" test "$rc" -eq 0
    n=$(ls "$OUT"/*.png 2>/dev/null | wc -l)
    check "screenshots saved in $OUT ($n)" test "$n" -ge 3
fi
stop_worker

# ---- compaction keeps every id --------------------------------------------------
"$QUERY" compact --store "$work/s" >"$work/c.log" 2>&1
check "compact exits 0: $(tail -c 200 "$work/c.log")" [ $? -eq 0 ]
check "compact compacted the hour" grep -q "1 hours compacted" "$work/c.log"
start_worker
python3 "$work/driver.py" "http://127.0.0.1:$port" "$H0" "$ROOT/proto" "$PPROF_PROTO_DIR" after "$work/ids.json" "$ROOT/tests/integration" \
    >"$work/out2" 2>&1
count_driver "$work/out2"
stop_worker
summary test_individual
