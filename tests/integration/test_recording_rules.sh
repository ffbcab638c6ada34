#!/usr/bin/env bash
# Metrics from profiles (docs/api.md, Recording rules): rules created over
# Connect (settings.v1.RecordingRulesService; JSON as Grafana's proxy sends
# it, and binary protobuf with Connect-Protocol-Version: 1 encoded by protoc
# from the upstream-compatible protos), evaluated by `stoke-query compact`
# over the flushes it merges, sent by remote-write to a REAL Prometheus
# (Debian's, --web.enable-remote-write-receiver, its own TSDB in a temporary
# directory) and read back through PromQL: per group, sum_over_time over
# the hour equals Stoke's /api/v1/series total for the same selection, and
# a function_name rule's equals /api/v1/top's total for that function (and
# the flame graph's). Also: one sample per flush interval at its start;
# bad rules answer 400 naming the field; a stale generation 409, an unknown
# id 404; with the receiver down the compaction still succeeds and the
# drops are counted, and so are samples the receiver refuses (400, not
# retried); the worker's /metrics shows the recorded series.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}

need curl
need python3
need protoc
need prometheus
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_recording_rules; exit 1; }

work=$(mktemp -d)
qpid=
ppid_=
cleanup() {
    [ -n "$qpid" ] && kill "$qpid" 2>/dev/null
    [ -n "$ppid_" ] && kill "$ppid_" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

H0=$(( ($(date +%s) / 3600 - 2) * 3600000 ))
"$QUERY" generate --store "$work/s" --hosts 3 --services 2 --hours 1 --flush 300 --start "$H0" \
    "$CORPUS/go-cpu.pb.gz" >"$work/gen.log" 2>&1 ||
    { fail "generate: $(cat "$work/gen.log")"; summary test_recording_rules; exit 1; }

"$QUERY" --store "$work/s" --listen 127.0.0.1:0 >/dev/null 2>"$work/q.log" &
qpid=$!
for _ in $(seq 50); do
    port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$work/q.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { fail "stoke-query did not start: $(cat "$work/q.log")"; summary test_recording_rules; exit 1; }

# A real Prometheus, scraping nothing, receiving remote writes.
pport=$(free_port)
echo 'scrape_configs: []' >"$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$pport" --web.enable-remote-write-receiver \
    >"$work/prom.log" 2>&1 &
ppid_=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$pport/-/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$pport/-/ready" >/dev/null ||
    { fail "prometheus did not start: $(tail -5 "$work/prom.log")"; summary test_recording_rules; exit 1; }

# Stage 1: the rules, over Connect; their ids and the function rule's name
# go to $work/rules.json for the later stages.
python3 - rules "http://127.0.0.1:$port" "$H0" "$ROOT/proto" "$work" >"$work/out1" 2>&1 <<'PY'
import json, subprocess, sys, urllib.error, urllib.parse, urllib.request
STAGE, URL, H0, PROTO, WORK = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
START, END = H0, H0 + 3600000
PT = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
SVC = "/settings.v1.RecordingRulesService/"
PROXY = {"Content-Type": "application/json", "X-Grafana-Org-Id": "1", "User-Agent": "Grafana/12.0.0"}

def ok(what): print("ok   " + what)
def bad(what): print("FAIL " + what)
def check(cond, what): ok(what) if cond else bad(what)

def http(method, path, body=None, headers=None):
    req = urllib.request.Request(URL + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

def cj(method, body):
    return http("POST", SVC + method, json.dumps(body).encode(), PROXY)

def protoc(mode, msg, data):
    return subprocess.run(["protoc", "--%s=%s" % (mode, msg), "-I", PROTO, "pyroscope/settings.proto"],
                          input=data, capture_output=True, check=True).stdout

def cp(method, req_msg, text, resp_msg):
    st, b = http("POST", SVC + method, protoc("encode", req_msg, text.encode()),
                 {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"})
    return st, (protoc("decode", resp_msg, b).decode() if st == 200 else b)

def get(path, **q):
    st, b = http("GET", path + "?" + urllib.parse.urlencode(q))
    return json.loads(b) if st == 200 else None

# ---- bad rules: 400 with a message naming what is wrong ---------------------
good = {"metricName": "profiles_recorded_x", "matchers": ['{__profile_type__="%s"}' % PT]}
for what, patch, word in [
        ("a metric name without the prefix", {"metricName": "cpu_total"}, "profiles_recorded_"),
        ("a metric name that is not one", {"metricName": "profiles_recorded_a-b"}, "metric_name"),
        ("a matcher that does not parse", {"matchers": ['{service_name="a"']}, "matchers[0]"),
        ("no __profile_type__", {"matchers": ['{service_name="a"}']}, "__profile_type__"),
        ("a regex __profile_type__", {"matchers": ['{__profile_type__=~"process_cpu.*"}']}, "__profile_type__"),
        ("a __profile_type__ that is no id", {"matchers": ['{__profile_type__="cpu"}']}, "profile type"),
        ("a bad group_by label", {"groupBy": ["service-name"]}, "group_by[0]"),
        ("an external label named __x", {"externalLabels": [{"name": "__x", "value": "1"}]}, "external_labels[0]"),
        ("an empty function name", {"stacktraceFilter": {"functionName": {"functionName": ""}}}, "function_name"),
        ("a bad id", {"id": "a/b"}, "id")]:
    st, b = cj("UpsertRecordingRule", dict(good, **patch))
    try:
        e = json.loads(b)
    except ValueError:
        e = {}
    check(st == 400 and e.get("code") == "invalid_argument" and word in e.get("message", ""),
          "%s: 400 invalid_argument naming %s (%d %s)" % (what, word, st, e.get("message")))
st, b = cp("UpsertRecordingRule", "settings.v1.UpsertRecordingRuleRequest",
           'metric_name: "nope" matchers: "{__profile_type__=\\"%s\\"}"' % PT, "settings.v1.UpsertRecordingRuleResponse")
check(st == 400 and b"profiles_recorded_" in b, "a bad rule in protobuf: 400 too (%d)" % st)
st, b = http("GET", SVC + "ListRecordingRules")
check(st == 405, "GET of a procedure: 405 (%d)" % st)
st, b = cj("NoSuchMethod", {})
check(st == 404, "an unknown procedure: 404 (%d)" % st)

# ---- the function for the function_name rule: one with a total well
# between a leaf's and the root's, found through /api/v1/top ----------------
top = get("/api/v1/top", query="{}", **{"from": START, "until": END, "limit": 1000})
fn = None
if top:
    cands = [f for f in top["functions"] if 0.05 * top["total"] < f["total"] < 0.5 * top["total"] and f["self"] < f["total"]]
    fn = cands[0]["name"] if cands else None
check(fn is not None, "a function for the function_name rule: %s" % fn)

# ---- the rules --------------------------------------------------------------
ids = {}
st, b = cj("UpsertRecordingRule", {"metricName": "profiles_recorded_cpu_nanoseconds",
                                   "matchers": ['{__profile_type__="%s"}' % PT],
                                   "groupBy": ["service_name"],
                                   "externalLabels": [{"name": "source", "value": "stoke"}]})
r = json.loads(b).get("rule", {}) if st == 200 else {}
check(st == 200 and r.get("id") and r.get("profileType") == PT and r.get("generation") == "1",
      "rule by service (JSON): created with a generated id, profile type and generation 1 (%d %s)" % (st, b[:200]))
ids["by_service"] = r.get("id")
st, txt = cp("UpsertRecordingRule", "settings.v1.UpsertRecordingRuleRequest",
             'id: "svc00-by-host" metric_name: "profiles_recorded_svc00_cpu" '
             'matchers: "{__profile_type__=\\"%s\\"}" matchers: "{service_name=\\"svc-00\\"}" '
             'group_by: "service_name" group_by: "host_name"' % PT,
             "settings.v1.UpsertRecordingRuleResponse")
check(st == 200 and 'id: "svc00-by-host"' in str(txt) and "generation: 1" in str(txt),
      "rule of svc-00 by host (protobuf, two matchers, two group_by labels): created (%d)" % st)
ids["by_host"] = "svc00-by-host"
if fn:
    st, b = cj("UpsertRecordingRule", {"id": "fn", "metricName": "profiles_recorded_fn_cpu",
                                       "matchers": ['{__profile_type__="%s"}' % PT], "groupBy": ["service_name"],
                                       "stacktraceFilter": {"functionName": {"functionName": fn, "metricType": "TOTAL"}}})
    check(st == 200, "function_name rule: created (%d %s)" % (st, b[:200]))
    ids["fn"] = "fn"
# edits: generation checks, get, delete, list
st, b = cj("UpsertRecordingRule", {"id": "tmp", "metricName": "profiles_recorded_tmp", "matchers": ['{__profile_type__="%s"}' % PT]})
check(st == 200, "a fourth rule: created")
st, b = cj("UpsertRecordingRule", {"id": "tmp", "metricName": "profiles_recorded_tmp2", "generation": "1", "matchers": ['{__profile_type__="%s"}' % PT]})
check(st == 200 and json.loads(b)["rule"]["generation"] == "2", "an edit at the stored generation: generation 2")
st, b = cj("UpsertRecordingRule", {"id": "tmp", "metricName": "profiles_recorded_tmp3", "generation": "1", "matchers": ['{__profile_type__="%s"}' % PT]})
check(st == 409 and json.loads(b)["code"] == "aborted", "an edit at a stale generation: 409 aborted (%d)" % st)
st, b = cj("GetRecordingRule", {"id": "tmp"})
check(st == 200 and json.loads(b)["rule"]["metricName"] == "profiles_recorded_tmp2", "Get: the edited rule")
st, txt = cp("GetRecordingRule", "settings.v1.GetRecordingRuleRequest", 'id: "svc00-by-host"', "settings.v1.GetRecordingRuleResponse")
check(st == 200 and "profiles_recorded_svc00_cpu" in str(txt), "Get (protobuf)")
st, b = cj("DeleteRecordingRule", {"id": "tmp"})
check(st == 200, "Delete: 200")
st, b = cj("GetRecordingRule", {"id": "tmp"})
check(st == 404 and "tmp" in json.loads(b)["message"], "Get of a deleted rule: 404 naming it (%d)" % st)
st, b = cj("DeleteRecordingRule", {"id": "tmp"})
check(st == 404, "Delete of an unknown rule: 404")
st, b = cj("ListRecordingRules", {})
names = sorted(r["metricName"] for r in json.loads(b).get("rules", [])) if st == 200 else []
check(len(names) == len(ids), "List: the %d rules (%s)" % (len(ids), names))
st, txt = cp("ListRecordingRules", "settings.v1.ListRecordingRulesRequest", "", "settings.v1.ListRecordingRulesResponse")
check(st == 200 and str(txt).count("metric_name") == len(ids), "List (protobuf): the same")
json.dump({"ids": ids, "fn": fn}, open(WORK + "/rules.json", "w"))
PY
cat "$work/out1"

# A copy of the store with the rules and nothing compacted: for the
# receiver-down case.
cp -r "$work/s" "$work/down"

# ---- receiver down: the compaction succeeds, the drops are counted ---------
dport=$(free_port)
t0=$(date +%s%N)
if "$QUERY" compact --store "$work/down" --remote-write-url "http://127.0.0.1:$dport/api/v1/write" \
    --remote-write-retries 3 >"$work/down.out" 2>&1; then
    pass "receiver down: compact exits 0"
else
    fail "receiver down: compact failed: $(cat "$work/down.out")"
fi
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q '^compact: 1 hours compacted' "$work/down.out" &&
    pass "receiver down: the hour is compacted all the same" ||
    fail "receiver down: $(head -1 "$work/down.out")"
nsamp=$(sed -n 's/.* \([0-9]*\) samples; remote write.*/\1/p' "$work/down.out")
dropped=$(sed -n 's/.*remote write: [0-9]* sent, \([0-9]*\) dropped, \([0-9]*\) requests, \([0-9]*\) retries.*/\1 \2 \3/p' "$work/down.out")
read -r d req ret <<<"$dropped"
[ -n "$nsamp" ] && [ "$nsamp" -gt 0 ] && [ "${d:-x}" = "$nsamp" ] && [ "${ret:-0}" -eq $(( 3 * req / 4 )) ] &&
    pass "receiver down: all $nsamp samples dropped and counted after $ret retries ($req requests, ${ms} ms with back-off)" ||
    fail "receiver down: samples $nsamp, dropped/requests/retries '$dropped': $(tail -1 "$work/down.out")"
grep -qx "stoke_recording_rules_samples_dropped_total $nsamp" "$work/down/default/recorded/latest.prom" 2>/dev/null &&
    pass "receiver down: stoke_recording_rules_samples_dropped_total $nsamp for /metrics" ||
    fail "receiver down: no drop counter in $work/down/default/recorded/latest.prom"

# ---- the real run -----------------------------------------------------------
"$QUERY" compact --store "$work/s" --remote-write-url "http://127.0.0.1:$pport/api/v1/write" \
    >"$work/compact.out" 2>&1 && pass "compact with --remote-write-url: exit 0" ||
    fail "compact: $(cat "$work/compact.out")"
cat "$work/compact.out" | sed 's/^/    /'
grep -q 'remote write: [1-9][0-9]* sent, 0 dropped' "$work/compact.out" &&
    pass "every sample sent, none dropped" || fail "remote write: $(tail -1 "$work/compact.out")"
# a second pass has nothing new: nothing evaluated twice
"$QUERY" compact --store "$work/s" --remote-write-url "http://127.0.0.1:$pport/api/v1/write" \
    >"$work/compact2.out" 2>&1
grep -q ', 0 flushes, .* 0 samples;' "$work/compact2.out" &&
    pass "a second pass evaluates nothing (no flush twice)" || fail "second pass: $(tail -1 "$work/compact2.out")"

python3 - check "http://127.0.0.1:$port" "$H0" "http://127.0.0.1:$pport" "$work" >"$work/out2" 2>&1 <<'PY'
import json, sys, urllib.error, urllib.parse, urllib.request
STAGE, URL, H0, PROM, WORK = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
START, END = H0, H0 + 3600000
R = json.load(open(WORK + "/rules.json"))

def ok(what): print("ok   " + what)
def bad(what): print("FAIL " + what)
def check(cond, what): ok(what) if cond else bad(what)

def get(base, path, **q):
    try:
        with urllib.request.urlopen(base + path + "?" + urllib.parse.urlencode(q), timeout=60) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        print("  %s%s: %d %s" % (base, path, e.code, e.read()[:200]))
        return None

def promql(q):
    # The hour's samples are at [START, END - 5 min]: a 1h range ending 1 ms
    # before END holds them all (2.x ranges include both ends).
    b = get(PROM, "/api/v1/query", query=q, time="%.3f" % ((END - 1) / 1000.0))
    d = json.loads(b) if b else {}
    return {tuple(sorted((k, v) for k, v in s["metric"].items() if k != "__name__")): s["value"][1]
            for s in d.get("data", {}).get("result", [])}

def stoke_series(query, group_by):
    b = get(URL, "/api/v1/series", query=query, group_by=group_by, step=3600000, **{"from": START, "until": END})
    out = {}
    for s in json.loads(b)["series"] if b else []:
        out[tuple(sorted(s["labels"].items()))] = sum(p[1] for p in s["points"])
    return out

# ---- per group: sum_over_time == /api/v1/series ----------------------------
got = promql("sum_over_time(profiles_recorded_cpu_nanoseconds[1h])")
want = stoke_series("{}", "service_name")
gotk = {tuple(kv for kv in k if kv[0] != "source"): int(float(v)) for k, v in got.items()}
check(len(want) == 2 and gotk == want,
      "by service: PromQL sum_over_time equals /api/v1/series per group: %s vs %s" % (gotk, want))
check(all(dict(k).get("source") == "stoke" for k in got), "external label source=\"stoke\" on every series")
got = promql("sum_over_time(profiles_recorded_svc00_cpu[1h])")
want = stoke_series('{service_name="svc-00"}', "host_name")
gotk = {tuple(kv for kv in k if kv[0] != "service_name"): int(float(v)) for k, v in got.items()}
check(len(want) == 3 and gotk == want and all(dict(k).get("service_name") == "svc-00" for k in got),
      "svc-00 by (service, host): sum_over_time equals /api/v1/series per group (%d groups): %s vs %s" % (len(want), gotk, want))

# ---- one sample per group and flush interval, at the interval's start ------
b = get(PROM, "/api/v1/query", query="profiles_recorded_cpu_nanoseconds[1h]", time="%.3f" % ((END - 1) / 1000.0))
res = json.loads(b)["data"]["result"] if b else []
ts = [sorted(int(round(float(t) * 1000)) for t, _ in s["values"]) for s in res]
# 5-minute flushes of six 50 s windows: samples at every minute of the hour,
# each counted in the minute it was taken
check(res and all(t == [START + k * 60000 for k in range(60)] for t in ts),
      "one sample per 1-minute interval (60), each at the interval's start: %s" % [len(t) for t in ts])

# ---- function_name: the samples whose stack holds the function -------------
fn = R.get("fn")
if fn:
    got = {dict(k)["service_name"]: int(float(v)) for k, v in promql("sum_over_time(profiles_recorded_fn_cpu[1h])").items()}
    want, fg = {}, {}
    for svc in ("svc-00", "svc-01"):
        top = json.loads(get(URL, "/api/v1/top", query='{service_name="%s"}' % svc, limit=100000, **{"from": START, "until": END}))
        want[svc] = sum(f["total"] for f in top["functions"] if f["name"] == fn)
        tree = json.loads(get(URL, "/api/v1/flamegraph", query='{service_name="%s"}' % svc, max_nodes=100000, **{"from": START, "until": END}))["tree"]
        # the flame graph's: totals of the outermost nodes named fn
        def walk(n):
            if n["name"] == fn:
                return n["total"]
            return sum(walk(c) for c in n.get("children", []))
        fg[svc] = walk(tree)
    total = {dict(k)["service_name"]: int(float(v)) for k, v in promql("sum_over_time(profiles_recorded_cpu_nanoseconds[1h])").items()}
    check(got == want and all(0 < got[s] < total[s] for s in got),
          "function_name %s: sum_over_time equals /api/v1/top's total per service, less than the whole: %s vs %s (of %s)" % (fn, got, want, total))
    check(got == fg, "function_name %s: equals the flame graph's outermost %s nodes too: %s" % (fn, fn, fg))

# ---- /metrics for pull ------------------------------------------------------
b = get(URL, "/metrics") or b""
lines = [l for l in b.decode().splitlines() if l.startswith("profiles_recorded_")]
last = {}
for s in res:
    k = tuple(sorted((a, v) for a, v in s["metric"].items() if a != "__name__"))
    t, v = max(s["values"], key=lambda p: p[0])
    last[k] = (int(float(v)), int(round(float(t) * 1000)))
ok_lines = 0
for l in lines:
    if l.startswith("profiles_recorded_cpu_nanoseconds{"):
        lab, v, t = l.rsplit(" ", 2)
        k = tuple(sorted(tuple(p.split("=", 1)) for p in lab[lab.index("{") + 1:-1].replace('"', "").split(",")))
        ok_lines += last.get(k) == (int(float(v)), int(t))
check(ok_lines == 2 and len(lines) == 2 + 3 + (2 if fn else 0),
      "/metrics: the newest sample of each recorded series, with its timestamp, as Prometheus has it (%d lines)" % len(lines))
check("# TYPE profiles_recorded_cpu_nanoseconds gauge" in b.decode() and
      "stoke_recording_rules_samples_dropped_total 0" in b.decode(), "/metrics: TYPE lines and the drop counter")
PY
cat "$work/out2"

# ---- the receiver refuses: a 4xx is not retried, its samples are counted --
# An hour two hours before the one Prometheus holds is out of its TSDB's
# bounds (docs/api.md, Recording rules).
"$QUERY" generate --store "$work/s" --hosts 1 --services 1 --hours 1 --flush 300 \
    --start $((H0 - 2 * 3600000)) "$CORPUS/go-cpu.pb.gz" >/dev/null 2>&1
"$QUERY" compact --store "$work/s" --remote-write-url "http://127.0.0.1:$pport/api/v1/write" \
    >"$work/compact3.out" 2>&1 && pass "receiver refusing: compact exits 0" ||
    fail "receiver refusing: $(cat "$work/compact3.out")"
grep -Eq 'remote write: 0 sent, ([1-9][0-9]*) dropped, 1 requests, 0 retries: .*HTTP 400' "$work/compact3.out" &&
    pass "receiver refusing: HTTP 400 not retried, every sample dropped and counted: $(sed -n 's/.*\(HTTP 400.*\)/\1/p' "$work/compact3.out")" ||
    fail "receiver refusing: $(tail -1 "$work/compact3.out")"
for f in "$work/out1" "$work/out2"; do
    while IFS= read -r line; do
        case $line in
        "ok   "*) pass "${line#ok   }" ;;
        "FAIL "*) fail "${line#FAIL }" ;;
        esac
    done <"$f"
done
grep -q '^Traceback' "$work/out1" "$work/out2" && fail "a python driver crashed"
summary test_recording_rules
