#!/usr/bin/env bash
# Grafana's Profiles Drilldown app and Pyroscope data source against
# stoke-query (docs/api.md), on a fleet written by `stoke-query generate`.
# Requests are shaped as they send them: Connect JSON as Grafana's data
# source proxy forwards it (Content-Type: application/json and
# X-Grafana-Org-Id, no Connect-Protocol-Version), and binary protobuf with
# Connect-Protocol-Version: 1 encoded and decoded by protoc from the
# upstream-compatible protos, never by Stoke's code. Checked: every call
# answers 200 and the numbers agree — Series lists every (service, profile
# type), GetProfileStats brackets the generated hour, TREE, PPROF and DOT
# totals equal the flame graph's, render-diff's ticks equal the two renders,
# SelectSeries grouped by two labels sums to the flame graph total — and
# what stays unsupported answers 4xx/501.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}
PPROF_PROTO_DIR=$(dirname "${PPROF_PROTO:-/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto}")

need curl
need python3
need protoc
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_drilldown; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

H0=$(( ($(date +%s) / 3600 - 2) * 3600000 ))
"$QUERY" generate --store "$work/s" --hosts 3 --services 2 --hours 1 --flush 300 --start "$H0" \
    "$CORPUS/go-cpu.pb.gz" "$CORPUS/go-alloc-space-delta.pb.gz" >"$work/gen.log" 2>&1 ||
    { fail "generate: $(cat "$work/gen.log")"; summary test_drilldown; exit 1; }

"$QUERY" --store "$work/s" --listen 127.0.0.1:0 >/dev/null 2>"$work/q.log" &
pid=$!
for _ in $(seq 50); do
    port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$work/q.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { fail "stoke-query did not start: $(cat "$work/q.log")"; summary test_drilldown; exit 1; }

# One python driver: it prints "ok ..." / "FAIL ..." lines, counted below.
python3 - "http://127.0.0.1:$port" "$H0" "$ROOT/proto" "$PPROF_PROTO_DIR" "$ROOT/tests/integration" \
    >"$work/out" 2>&1 <<'PY'
import base64, json, re, subprocess, sys, urllib.error, urllib.parse, urllib.request
URL, H0, PROTO, PPROF = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
START, END = H0, H0 + 3600000
PT = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
sys.path.insert(0, sys.argv[5])
from connect_client import Client, PROXY, ok, bad, check
C = Client(URL, PROTO, PPROF)
http, cj, protoc, cp = C.http, C.cj, C.protoc, C.cp

# ---- what the app calls on load ---------------------------------------------
stats = cj("GetProfileStats", {})
if stats:
    o, n = int(stats.get("oldestProfileTime", 0)), int(stats.get("newestProfileTime", 0))
    check(stats.get("dataIngested") is True and START <= o <= n < END,
          "GetProfileStats: dataIngested, oldest %d and newest %d inside the generated hour" % (o, n))
txt = cp("GetProfileStats", "types.v1.GetProfileStatsRequest", "", "types.v1.GetProfileStatsResponse")
if txt:
    check("data_ingested: true" in txt and str(stats and stats.get("newestProfileTime")) in txt,
          "GetProfileStats (proto) agrees")

types = [t["ID"] for t in (cj("ProfileTypes", {"start": START, "end": END}) or {}).get("profileTypes", [])]
svcs = (cj("LabelValues", {"name": "service_name", "start": START, "end": END}) or {}).get("names", [])
check(len(types) == 6 and len(svcs) == 2, "ProfileTypes (%d) and services (%d) of the generated fleet" % (len(types), len(svcs)))
# Which (service, type) pairs hold data, asked of render (another code path).
def ticks(q, start=START, end=END):
    st, b = http("GET", "/pyroscope/render?" + urllib.parse.urlencode(
        {"query": q, "from": start, "until": end, "format": "json", "max-nodes": 16384}), None, PROXY)
    return json.loads(b)["flamebearer"]["numTicks"] if st == 200 else None
want = {(s, t) for s in svcs for t in types if ticks(t + '{service_name="%s"}' % s)}
series = cj("Series", {"start": START, "end": END, "labelNames": ["service_name", "__profile_type__"], "matchers": []})
got = set()
for ls in (series or {}).get("labelsSet", []):
    d = {l["name"]: l["value"] for l in ls["labels"]}
    got.add((d.get("service_name"), d.get("__profile_type__")))
check(series is not None and want and got == want and len(series["labelsSet"]) == len(want),
      "Series lists every (service, profile type): %d of %d" % (len(got), len(want)))
txt = cp("Series", "querier.v1.SeriesRequest",
         'start: %d end: %d label_names: "service_name" label_names: "__profile_type__"' % (START, END),
         "querier.v1.SeriesResponse")
if txt:
    check(txt.count("labels_set") == len(want), "Series (proto) has the same %d label sets" % len(want))
cpu_svcs = sorted(s for s, t in want if t == PT)
svc = cpu_svcs[0] if cpu_svcs else svcs[0]
ntypes = len([t for s, t in want if s == svc])
full = cj("Series", {"start": START, "end": END, "matchers": ['{service_name="%s"}' % svc]})
if full:
    names = {l["name"] for ls in full["labelsSet"] for l in ls["labels"]}
    check({"service_name", "host_name", "__profile_type__", "__name__"} <= names and len(full["labelsSet"]) == 3 * ntypes,
          "Series without label_names: whole label sets, %d (3 hosts x %d types)" % (len(full["labelsSet"]), ntypes))
    # service_name and type labels are answered from the footers alone: the
    # same sets as the whole label sets give, projected
    fast = cj("Series", {"start": START, "end": END, "matchers": ['{service_name="%s"}' % svc],
                         "labelNames": ["service_name", "__profile_type__", "__type__"]})
    proj = set()
    for ls in full["labelsSet"]:
        d = {l["name"]: l["value"] for l in ls["labels"]}
        proj.add((d.get("service_name"), d.get("__profile_type__"), d.get("__type__")))
    gotf = set()
    for ls in (fast or {}).get("labelsSet", []):
        d = {l["name"]: l["value"] for l in ls["labels"]}
        gotf.add((d.get("service_name"), d.get("__profile_type__"), d.get("__type__")))
    check(fast is not None and gotf == proj and len(fast["labelsSet"]) == ntypes,
          "Series by service_name, __profile_type__, __type__ (from the footers) = the whole sets' projection (%d)" % len(gotf))

# Label names and values come from the footers when those answer exactly;
# a matcher on another label makes the engine read the sections: both
# answers must be the same.
slow_m = '{service_name=~".+", zz_absent!="x"}'
for mt in ([], ['{__profile_type__="%s"}' % PT]):
    fast_n = (cj("LabelNames", {"start": START, "end": END, "matchers": mt}) or {}).get("names")
    slow_n = (cj("LabelNames", {"start": START, "end": END,
                                "matchers": [slow_m.replace("{", "{" + mt[0][1:-1] + ", ") if mt else slow_m]}) or {}).get("names")
    same = fast_n is not None and fast_n == slow_n
    for nm in [n for n in (fast_n or []) if not n.startswith("__")]:
        fv = (cj("LabelValues", {"name": nm, "start": START, "end": END, "matchers": mt}) or {}).get("names")
        sv = (cj("LabelValues", {"name": nm, "start": START, "end": END,
                                 "matchers": [slow_m.replace("{", "{" + mt[0][1:-1] + ", ") if mt else slow_m]}) or {}).get("names")
        same = same and fv is not None and fv == sv
    check(same and len(fast_n) >= 3, "label names and every label's values: footers = sections (%s, %d names)" % (mt or "{}", len(fast_n or [])))

# Label queries as the app writes them: {__profile_type__="...", } (trailing comma).
m = ['{__profile_type__="%s", }' % PT]
ln = (cj("LabelNames", {"matchers": m, "start": START, "end": END}) or {}).get("names", [])
check("service_name" in ln and "host_name" in ln and "__profile_type__" in ln, "LabelNames with __profile_type__: %s" % ln)
hv = (cj("LabelValues", {"name": "host_name", "matchers": ['{__profile_type__="%s", service_name="%s"}' % (PT, cpu_svcs[0] if cpu_svcs else "")], "start": START, "end": END}) or {}).get("names", [])
check(len(hv) == 3, "LabelValues host_name with __profile_type__: %s" % hv)
nv = (cj("LabelValues", {"name": "service_name", "matchers": ['{__profile_type__="no:such:type:x:y"}'], "start": START, "end": END}) or {}).get("names", [])
check(nv == [], "a __profile_type__ without data: no values")
st, b = http("GET", "/pyroscope/label-values?label=__name__&from=%d&until=%d" % (START, END), None, PROXY)
check(st == 200 and sorted(json.loads(b)) == sorted(types), "/pyroscope/label-values?label=__name__ lists the profile type ids")

# ---- flame graph and its other formats --------------------------------------
sel = '{service_name="%s"}' % svc
base = {"profileTypeID": PT, "labelSelector": sel, "start": START, "end": END}
fg = cj("SelectMergeStacktraces", dict(base, maxNodes=16384))
F = int(fg["flamegraph"]["total"]) if fg else -1
check(F > 0, "SelectMergeStacktraces flame graph total %d" % F)
fut = cj("SelectMergeStacktraces", dict(base, maxNodes=16384, format="PROFILE_FORMAT_FROM_THE_FUTURE"))
check(fut and int(fut["flamegraph"]["total"]) == F, "an unknown format name is ignored (flame graph, as protojson's DiscardUnknown)")

def tree_total(b):  # Pyroscope's tree bytes: name len, name, self, children
    i, tot, nodes = 0, 0, 0
    def uv():
        nonlocal i
        v = s = 0
        while True:
            x = b[i]; i += 1
            v |= (x & 0x7f) << s; s += 7
            if x < 0x80: return v
    pending = 1
    while pending:
        pending -= 1
        n = uv(); i += n; tot += uv(); pending += uv(); nodes += 1
    assert i == len(b), "trailing bytes"
    return tot, nodes
tr = cj("SelectMergeStacktraces", dict(base, maxNodes=64, format="PROFILE_FORMAT_TREE"))
if tr:
    t, nodes = tree_total(base64.b64decode(tr["tree"]))
    check(t == F, "TREE (max 64 nodes): selfs sum to the flame graph total (%d = %d, %d nodes)" % (t, F, nodes))
txt = cp("SelectMergeStacktraces", "querier.v1.SelectMergeStacktracesRequest",
         'profile_typeID: "%s" label_selector: %s start: %d end: %d max_nodes: 64 format: PROFILE_FORMAT_TREE'
         % (PT, json.dumps(sel), START, END), "querier.v1.SelectMergeStacktracesResponse")
pp = cj("SelectMergeStacktraces", dict(base, format="PROFILE_FORMAT_PPROF"))
if pp:
    p = pp["pprof"]["profile"]; strs = p["stringTable"]
    col = [k for k, t in enumerate(p["sampleType"]) if strs[int(t["type"])] == "cpu"][0]
    s = sum(int(x["value"][col]) for x in p["sample"])
    check(s == F, "PPROF: the pprof's cpu samples sum to the flame graph total (%d)" % s)
dt = cj("SelectMergeStacktraces", dict(base, format="PROFILE_FORMAT_DOT"))
if dt:
    d = dt.get("dot", "")
    m_ = re.search(r"of (\d+) total", d)
    check(d.startswith("digraph") and m_ and int(m_.group(1)) == F and 0 < d.count(" [label=") <= 100,
          "DOT: a digraph of at most 100 nodes whose legend total is the flame graph's")

# Function details: the app's SelectMergeProfile JSON (snake_case names,
# stackTraceSelector.call_site root first) keeps the stacks under that call
# site: its total is that flame graph node's total.
def nodes(fgj):
    names = fgj["names"]; out = []
    for d, l in enumerate(fgj["levels"]):
        v = [int(x) for x in l.get("values", [])]; x = 0
        for i in range(0, len(v), 4):
            x += v[i]
            out.append((d, x, v[i + 1], v[i + 2], names[v[i + 3]])); x += v[i + 1]
    return out
if fg:
    ns = nodes(fg["flamegraph"])
    d1 = [n for n in ns if n[0] == 1][0]
    d2 = [n for n in ns if n[0] == 2 and d1[1] <= n[1] and n[1] + n[2] <= d1[1] + d1[2]][0]
    for site in ([d1], [d1, d2]):
        body = {"profile_typeID": PT, "label_selector": sel, "start": START, "end": END,
                "stackTraceSelector": {"call_site": [{"name": n[4]} for n in site]}, "maxNodes": 16384}
        prof = cj("SelectMergeProfile", body)
        smst = cj("SelectMergeStacktraces", dict(base, maxNodes=16384, stackTraceSelector=body["stackTraceSelector"]))
        if prof is not None and smst is not None:
            strs = prof["stringTable"]
            col = [k for k, t in enumerate(prof["sampleType"]) if strs[int(t["type"])] == "cpu"][0]
            tot = sum(int(x["value"][col]) for x in prof.get("sample", []))
            check(tot == site[-1][2] == int(smst["flamegraph"]["total"]) and tot < F,
                  "stack_trace_selector call_site %s: pprof and flame graph total %d = the node's" % ([n[4] for n in site], tot))
    nothing = cj("SelectMergeStacktraces", dict(base, stackTraceSelector={"callSite": [{"name": "no-such-function"}]}))
    check(nothing is not None and int(nothing["flamegraph"].get("total", 0)) == 0, "a call site that matches nothing: total 0")

# ---- render and render-diff ---------------------------------------------------
# The Drilldown diff view: one service, the first and the second half hour.
MID = START + 1800000
lq = rq = PT + sel
L, R = ticks(lq, START, MID), ticks(rq, MID, END)
st, b = http("GET", "/pyroscope/render-diff?" + urllib.parse.urlencode(
    {"leftQuery": lq, "leftFrom": START, "leftUntil": MID, "rightQuery": rq,
     "rightFrom": MID, "rightUntil": END, "max-nodes": 16384}), None, PROXY)
if st == 200:
    j = json.loads(b)
    check(j["metadata"]["format"] == "double" and j["leftTicks"] == L and j["rightTicks"] == R and
          L > 0 and R > 0 and L + R == F and j["flamebearer"]["numTicks"] == L + R,
          "render-diff: leftTicks %s and rightTicks %s equal the two renders" % (j["leftTicks"], j["rightTicks"]))
else:
    bad("render-diff answered %d: %s" % (st, b[:200]))
st, b = http("GET", "/pyroscope/render?" + urllib.parse.urlencode(
    {"query": lq, "from": START, "until": END, "format": "dot"}), None, PROXY)
check(st == 200 and b.startswith(b"digraph"), "render format=dot answers a DOT graph")

# ---- SelectSeries grouped by two labels -------------------------------------
ss = cj("SelectSeries", {"profileTypeID": PT, "labelSelector": "{}", "start": START, "end": END,
                         "groupBy": ["service_name", "host_name"], "step": 300})
if ss:
    ok2 = all([l["name"] for l in s_["labels"]] == ["service_name", "host_name"] for s_ in ss["series"])
    tot = sum(p_["value"] for s_ in ss["series"] for p_ in s_["points"] if s_["labels"][0]["value"] == svc)
    check(ok2 and len(ss["series"]) == 3 * len(cpu_svcs) and int(tot) == F,
          "SelectSeries group_by service_name,host_name: %d series, %s's sum = %d" % (len(ss["series"]), svc, int(tot)))
txt = cp("SelectSeries", "querier.v1.SelectSeriesRequest",
         'profile_typeID: "%s" label_selector: "{}" start: %d end: %d group_by: "service_name" group_by: "host_name" step: 300'
         % (PT, START, END), "querier.v1.SelectSeriesResponse")
if txt:
    check(txt.count("series {") == 3 * len(cpu_svcs), "SelectSeries (proto) with two group_by labels: %d series" % txt.count("series {"))

# ---- bad input ----------------------------------------------------------------
def want(status, code, method, body, what):
    st, b = http("POST", "/querier.v1.QuerierService/" + method, json.dumps(body).encode(), PROXY)
    try:
        j = json.loads(b)
    except ValueError:
        j = {}
    check(st == status and j.get("code") == code, "%s: %d %s (%s)" % (what, st, j.get("code"), j.get("message", "")[:70]))
want(501, "unimplemented", "SelectMergeStacktraces", dict(base, spanSelector=["9a517183f26a089d"]), "span_selector")
want(501, "unimplemented", "SelectMergeStacktraces", dict(base, traceIdSelector=["7c9e66797425440de944be07fc1f90ae"]), "trace_id_selector")
want(400, "invalid_argument", "SelectMergeStacktraces", dict(base, spanSelector=["a"], traceIdSelector=["b"]), "span and trace selectors together")
want(501, "unimplemented", "SelectMergeProfile", dict(base, traceIdSelector=["7c9e66797425440de944be07fc1f90ae"]), "SelectMergeProfile trace_id_selector")
want(400, "invalid_argument", "Series", {"labelNames": ["bad-name"]}, "Series with a bad label name")
want(400, "invalid_argument", "SelectSeries", {"profileTypeID": PT, "groupBy": ["ok", "1bad"]}, "group_by with a bad label name")
want(501, "unimplemented", "SelectMergeSpanProfile", {}, "SelectMergeSpanProfile")
want(501, "unimplemented", "SelectMergeStacktraces", dict(base, stackTraceSelector={"goPgo": {"keepLocations": 2}}), "stack_trace_selector.go_pgo")
want(501, "unimplemented", "SelectSeries", {"profileTypeID": PT, "stackTraceSelector": {"callSite": [{"name": "main"}]}}, "SelectSeries with a call site")
for q, what in [({"leftQuery": lq, "rightQuery": "memory:alloc_space:bytes:space:bytes{}"}, "profile types differ"),
                ({"rightQuery": rq}, "leftQuery missing"),
                ({"leftQuery": lq, "rightQuery": rq, "leftFrom": "x"}, "bad leftFrom")]:
    st, b = http("GET", "/pyroscope/render-diff?" + urllib.parse.urlencode(q))
    check(st == 400 and "error" in json.loads(b), "render-diff, %s: %d" % (what, st))
st, b = http("GET", "/pyroscope/label-values")
check(st == 400, "label-values without label: %d" % st)
# A tenant named by X-Scope-OrgID must be a valid one, on every Connect service.
for svc_path in ("/querier.v1.QuerierService/ProfileTypes", "/settings.v1.RecordingRulesService/ListRecordingRules"):
    st, b = http("POST", svc_path, b"{}", dict(PROXY, **{"X-Scope-OrgID": "../other"}))
    try:
        j = json.loads(b)
    except ValueError:
        j = {}
    check(st == 400 and j.get("code") == "invalid_argument" and "X-Scope-OrgID" in j.get("message", ""),
          "%s with X-Scope-OrgID '../other': %d %s" % (svc_path, st, j.get("code")))
st, b = http("GET", "/healthz")
check(st == 200, "worker still up")
PY
while read -r status rest; do
    case $status in ok) pass "$rest" ;; FAIL) fail "$rest" ;; *) fail "driver: $status $rest" ;; esac
done <"$work/out"
grep -q . "$work/out" || fail "the driver printed nothing"

kill -TERM "$pid"
wait "$pid"
check "SIGTERM stops the worker with status 0" [ $? -eq 0 ]
pid=
summary test_drilldown
