#!/usr/bin/env bash
# Compaction never changes what a query answers (DESIGN.md §7), with the
# real binaries. `stoke-query generate` writes two closed hours (8 hosts ×
# 4 services, real corpus profiles); for every profile type of each hour,
# /api/v1/top's total and skipped count are recorded before and after
# `stoke-query compact`, which must exit 0 and leave every one as it was:
#   1. one segment of the first hour damaged in its middle (a section
#      unreadable, the footer and the other sections fine): the segment
#      stays whole as it is, not half in the block and half outside;
#   2. a late profile and a garbage newer hour manifest in the second hour:
#      skipped with an error, the hour rebuilt, the garbage replaced.
# Then the Pyroscope API's flame graphs, the same before and after, read the
# blocks' call trees; the .NET corpus profile whose function ids are all 0 imports with a
# warning and named frames (self and total per function checked against a
# decoder of this script's own), and every other corpus profile imports without one.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}

need curl
need python3
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_compact; exit 1; }
[ -d "$CORPUS" ] || { fail "no corpus at $CORPUS"; summary test_compact; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
S=$work/store

now_s=$(date +%s)
H0=$(((now_s / 3600 - 5) * 3600 * 1000)) # two hours, both closed long ago
H1=$((H0 + 3600000))
hour_dir() { date -u -d "@$(($1 / 1000))" +%Y-%m-%d/%H; }

"$QUERY" generate --store "$S" --hosts 8 --services 4 --hours 2 --start "$H0" \
    "$CORPUS/go-cpu.pb.gz" "$CORPUS/node-heap.pb.gz" >"$work/gen.log" 2>&1 ||
    { fail "generate: $(cat "$work/gen.log")"; summary test_compact; exit 1; }

start_worker() { # start_worker STORE LOG [args...]: sets $URL
    local store=$1 log=$2 port=
    shift 2
    : >"$log" # emptied first: a reused log must not show the last port
    "$QUERY" --store "$store" --listen 127.0.0.1:0 "$@" >/dev/null 2>"$log" &
    pids+=($!)
    for _ in $(seq 50); do
        port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { fail "stoke-query did not start: $(cat "$log")"; summary test_compact; exit 1; }
    URL=http://127.0.0.1:$port
}
# No cache: every answer reads the store as it is now.
start_worker "$S" "$work/q.log" --cache-mb 0

# answers FILE: one line per hour and profile type: "hour type total skipped"
answers() {
    local h pt
    : >"$1"
    for h in $H0 $H1; do
        for pt in $(curl -s "$URL/api/v1/profile_types?from=$h&until=$((h + 3600000))" |
            python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["profile_types"]))'); do
            curl -s -G "$URL/api/v1/top" --data-urlencode "from=$h" \
                --data-urlencode "until=$((h + 3600000))" --data-urlencode "profile_type=$pt" \
                --data-urlencode limit=1 |
                python3 -c 'import json,sys; j=json.load(sys.stdin)
print(sys.argv[1], sys.argv[2], j["total"], j["stats"]["skipped"])' "$h" "$pt" >>"$1"
        done
    done
}
# same A B [totals]: the answers agree (only the totals with "totals")
same() {
    if [ "${3:-}" = totals ]; then
        diff <(cut -d' ' -f1-3 "$1") <(cut -d' ' -f1-3 "$2") >"$work/diff" 2>&1
    else
        diff "$1" "$2" >"$work/diff" 2>&1
    fi
}
total_of() { awk -v h="$2" '$1 == h { t += $3 } END { printf "%.0f\n", t }' "$1"; }
skipped_of() { awk -v h="$2" '$1 == h { s += $4 } END { printf "%.0f\n", s }' "$1"; }

# ---- 1. a segment readable in part ------------------------------------------
answers "$work/a0"
check "the generated hours answer ($(wc -l <"$work/a0") hour × type totals)" \
    [ "$(total_of "$work/a0" "$H0")" -gt 0 -a "$(total_of "$work/a0" "$H1")" -gt 0 ]
seg=$(find "$S/default/segments/$(hour_dir "$H0")" -name '*.seg' | sort | head -1)
size=$(stat -c %s "$seg")
dd if=/dev/zero of="$seg" bs=1 seek=$((size / 2)) count=64 conv=notrunc status=none
answers "$work/a1"
check "damaged segment: some sections skipped ($(skipped_of "$work/a1" "$H0")), the rest still counted" \
    [ "$(skipped_of "$work/a1" "$H0")" -gt 0 -a "$(total_of "$work/a1" "$H0")" -gt 0 ]
"$QUERY" compact --store "$S" >"$work/c1.log" 2>&1
rc=$?
check "compact exits 0 ($rc): $(tail -c 300 "$work/c1.log")" [ "$rc" -eq 0 ]
check "compact reports the damaged segment as kept" grep -q "1 objects kept" "$work/c1.log"
check "both hours compacted" grep -q "^compact: 2 hours compacted" "$work/c1.log"
# what the run asked the store (the cost model's compaction requests)
check "compact reports its store requests (GETs, PUTs and DELETEs made)" \
    grep -qE "^compact: store requests: [1-9][0-9]* GET, [0-9]+ LIST, [1-9][0-9]* PUT, [1-9][0-9]* DELETE" "$work/c1.log"
answers "$work/a2"
if same "$work/a1" "$work/a2"; then
    pass "after compaction every total and skipped count is unchanged (hour $H0: $(total_of "$work/a2" "$H0"))"
else
    fail "compaction changed the answers: $(head -c 600 "$work/diff")"
fi
check "the damaged segment is still there" test -f "$seg"

# ---- 2. a garbage hour manifest ---------------------------------------------
mdir=$S/default/manifest/$(hour_dir "$H1")
check "hour $H1 has its first generation" test -f "$mdir/hour-000001.man"
"$QUERY" import --store "$S" --service late --host late-host --time $((H1 + 1800000)) \
    "$CORPUS/go-cpu.pb.gz" >/dev/null 2>"$work/imp.log" ||
    fail "import: $(cat "$work/imp.log")"
head -c 300 /dev/urandom >"$mdir/hour-000002.man"
answers "$work/b0"
check "queries skip the garbage manifest and read the generation before it and the late entry" \
    [ "$(skipped_of "$work/b0" "$H1")" -gt 0 -a "$(total_of "$work/b0" "$H1")" -gt "$(total_of "$work/a2" "$H1")" ]
"$QUERY" compact --store "$S" >"$work/c2.log" 2>&1
rc=$?
check "compact exits 0 despite the garbage manifest ($rc): $(tail -c 300 "$work/c2.log")" [ "$rc" -eq 0 ]
check "compact reports the garbage manifest as skipped" \
    grep -q "skipped: manifest .*/hour-000002.man" "$work/c2.log"
answers "$work/b1"
if same "$work/b0" "$work/b1" totals; then
    pass "after compaction every total is unchanged (hour $H1: $(total_of "$work/b1" "$H1"))"
else
    fail "compaction changed the totals: $(head -c 600 "$work/diff")"
fi
check "no manifest skipped any more" [ "$(skipped_of "$work/b1" "$H1")" -eq 0 ]
check "the garbage is replaced by generation 3" \
    [ -f "$mdir/hour-000003.man" -a ! -e "$mdir/hour-000002.man" -a ! -e "$mdir/hour-000001.man" ]
"$QUERY" compact --store "$S" >"$work/c3.log" 2>&1
rc=$?
answers "$work/b2"
if [ "$rc" -eq 0 ] && same "$work/b1" "$work/b2"; then
    pass "a third pass exits 0 and changes nothing"
else
    fail "a third pass: exit $rc, $(head -c 300 "$work/diff")"
fi

# ---- 3. function ids all 0 (.NET) -------------------------------------------
T=$((now_s * 1000 - 600000))
"$QUERY" import --store "$work/net" --service dotnet --time "$T" "$CORPUS/dotnet-cpu.pb.gz" \
    >/dev/null 2>"$work/net.log"
rc=$?
check "dotnet-cpu.pb.gz imports ($rc)" [ "$rc" -eq 0 ]
check "with a warning that says what was repaired: $(head -c 200 "$work/net.log")" \
    grep -q "warning: .*every function id is 0" "$work/net.log"
kill "${pids[@]}" 2>/dev/null
wait 2>/dev/null
pids=()
start_worker "$work/net" "$work/q2.log"
pt=$(curl -s "$URL/api/v1/profile_types?from=$((T - 60000))&until=$((T + 60000))" |
    python3 -c 'import json,sys; print([t for t in json.load(sys.stdin)["profile_types"] if t.split(":")[1] == "cpu"][0])')
curl -s -G "$URL/api/v1/top" --data-urlencode "from=$((T - 60000))" \
    --data-urlencode "until=$((T + 60000))" --data-urlencode "profile_type=$pt" \
    --data-urlencode limit=1000 >"$work/net.json"
# The expected self per function, decoded here from the raw protobuf with
# the same rule (all ids 0: function_id k is the k-th function).
out=$(python3 - "$CORPUS/dotnet-cpu.pb.gz" "$work/net.json" "$pt" <<'PY'
import gzip, json, sys
raw = open(sys.argv[1], "rb").read()
if raw[:2] == b"\x1f\x8b":
    raw = gzip.decompress(raw)

def varint(b, i):
    r = s = 0
    while True:
        c = b[i]; i += 1; r |= (c & 0x7F) << s; s += 7
        if c < 0x80:
            return r, i

def fields(b):
    i = 0
    while i < len(b):
        k, i = varint(b, i)
        f, t = k >> 3, k & 7
        if t == 0:
            v, i = varint(b, i)
        elif t == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        elif t == 1:
            v = b[i:i + 8]; i += 8
        else:
            v = b[i:i + 4]; i += 4
        yield f, t, v

def packed(fs, num):
    out = []
    for f, t, v in fs:
        if f == num:
            if t == 2:
                i = 0
                while i < len(v):
                    x, i = varint(v, i); out.append(x)
            else:
                out.append(v)
    return out

top = list(fields(raw))
strs = [v.decode("utf-8", "replace") for f, t, v in top if f == 6]
funcs = [dict((f, v) for f, t, v in fields(v)) for f, t, v in top if f == 5]
assert all(fn.get(1, 0) == 0 for fn in funcs), "not the all-zero-ids profile"
types = [dict((f, v) for f, t, v in fields(v)) for f, t, v in top if f == 1]
want_type = sys.argv[3].split(":")[1:3]
col = [i for i, t in enumerate(types) if [strs[t.get(1, 0)], strs[t.get(2, 0)]] == want_type][0]
names_of = {}  # location id -> function names, innermost first
for f, t, v in top:
    if f == 4:
        fs = list(fields(v))
        lid = dict((a, b) for a, _, b in fs if a == 1).get(1)
        lines = [dict((a, b) for a, _, b in fields(lv)) for a, _, lv in fs if a == 4]
        names_of[lid] = [strs[funcs[ln[1] - 1].get(2, 0)] for ln in lines]
self_, total = {}, {}
for f, t, v in top:
    if f == 2:
        fs = list(fields(v))
        locs, vals = packed(fs, 1), packed(fs, 2)
        if not locs:
            continue
        n = names_of[locs[0]][0]
        self_[n] = self_.get(n, 0) + vals[col]
        for n in set(x for l in locs for x in names_of[l]):
            total[n] = total.get(n, 0) + vals[col]
self_ = {n: v for n, v in self_.items() if v}
total = {n: v for n, v in total.items() if v}
got = json.load(open(sys.argv[2]))
have_self = {fn["name"]: fn["self"] for fn in got["functions"] if fn["self"]}
have_total = {fn["name"]: fn["total"] for fn in got["functions"] if fn["total"]}
errs = []
if any(not fn["name"] for fn in got["functions"]):
    errs.append("an empty function name")
if have_self != self_:
    errs.append("self differs: stoke %s, expected %s" % (sorted(have_self.items())[:3], sorted(self_.items())[:3]))
if have_total != total:
    errs.append("total differs: only stoke %s, only expected %s" % (
        sorted(set(have_total.items()) - set(total.items()))[:3], sorted(set(total.items()) - set(have_total.items()))[:3]))
if errs:
    print("; ".join(errs)); sys.exit(1)
print("%d functions, leaf %s" % (len(total), max(self_, key=self_.get)))
PY
)
check "dotnet frames are named, self and total per function as decoded here ($out)" [ $? -eq 0 ]

# ---- 4. the Pyroscope API's flame graphs over compacted hours -----------------
# SelectMergeStacktraces (flame graph and tree bytes) and /pyroscope/render
# answer the same before and after compaction; after it they read the
# blocks' call trees (proved exact: views.h view_flame_proved), a fraction
# of the bytes the rows take (/api/v1/flamegraph?trees=false)
P=$work/pyro
"$QUERY" generate --store "$P" --hosts 4 --services 1 --hours 1 --start "$H0" \
    "$CORPUS/go-cpu.pb.gz" >"$work/genp.log" 2>&1 || fail "generate: $(cat "$work/genp.log")"
PT=process_cpu:cpu:nanoseconds:cpu:nanoseconds
pyro() { # pyro OUT: the three answers of the worker at $URL; in $rd the bytes
    # the two SelectMergeStacktraces read (render's timeline reads rows)
    local b0 b1 f
    b0=$(curl -s "$URL/metrics" | awk '$1 == "stoke_query_bytes_read_total" {print $2}')
    for f in FLAMEGRAPH TREE; do
        curl -s -H 'Content-Type: application/json' -d "{\"profileTypeID\":\"$PT\",\"labelSelector\":\"{}\",\"start\":\"$H0\",\"end\":\"$((H0 + 3600000))\",\"format\":\"PROFILE_FORMAT_$f\"}" \
            "$URL/querier.v1.QuerierService/SelectMergeStacktraces" >"$1.$f"
    done
    b1=$(curl -s "$URL/metrics" | awk '$1 == "stoke_query_bytes_read_total" {print $2}')
    rd=$((b1 - b0))
    curl -s -G "$URL/pyroscope/render" --data-urlencode "query=$PT{}" \
        --data-urlencode "from=$((H0 / 1000))" --data-urlencode "until=$((H0 / 1000 + 3600))" \
        --data-urlencode format=json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(json.dumps(j["flamebearer"]))' >"$1.render"
}
start_worker "$P" "$work/qp0.log" --cache-mb 0
pyro "$work/p0"
"$QUERY" compact --store "$P" >"$work/cp.log" 2>&1 || fail "compact: $(cat "$work/cp.log")"
start_worker "$P" "$work/qp1.log" --cache-mb 0
pyro "$work/p1"
rows=$(curl -s -G "$URL/api/v1/flamegraph" --data-urlencode "from=$H0" \
    --data-urlencode "until=$((H0 + 3600000))" --data-urlencode trees=false |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["bytes_read"])')
check "Pyroscope flame graph, tree bytes and render: the same before and after compaction ($(stat -c %s "$work/p1.FLAMEGRAPH") bytes)" \
    bash -c "grep -q '\"levels\"' '$work/p1.FLAMEGRAPH' && grep -q '\"tree\"' '$work/p1.TREE' &&
        cmp -s '$work/p0.FLAMEGRAPH' '$work/p1.FLAMEGRAPH' && cmp -s '$work/p0.TREE' '$work/p1.TREE' &&
        cmp -s '$work/p0.render' '$work/p1.render'"
check "...from the blocks' call trees: $rd bytes read for two SelectMergeStacktraces, the rows $rows for one" \
    [ "${rd:-0}" -gt 0 -a "${rd:-0}" -lt "${rows:-0}" ]

for f in "$CORPUS"/*; do
    if [ -d "$f" ]; then files=("$f"/*); else files=("$f"); fi
    [ "$(basename "$f")" = dotnet-cpu.pb.gz ] && continue
    "$QUERY" import --store "$work/all" --service x --time "$T" "${files[@]}" \
        >/dev/null 2>"$work/one.log"
    rc=$?
    check "$(basename "$f") imports without a warning ($rc)" [ "$rc" -eq 0 -a ! -s "$work/one.log" ]
done

summary test_compact
