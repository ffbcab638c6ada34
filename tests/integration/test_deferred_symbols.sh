#!/usr/bin/env bash
# Deferred symbolization (issue #16 items 2 and 4): frames an agent could
# not name are stored with their build-id and file offset, and the query
# workers name them later from debug files uploaded to the store.
#   1. Two agents profile one stripped fixture (busy_libc: half its own
#      static functions, half libc) at once: A with no debug files (an
#      empty --debug-dir, debuginfod off), B with the fixture's and libc's
#      (a host with -dbg packages). Each writes segments to its own store.
#   2. A's worker shows most of the fixture's and libc's leaves unnamed.
#   3. `stoke-query debuginfo upload` of the two debug files (again: not
#      written twice; a file without a build-id refused); the same query
#      names >= 99% of the leaves that were unnamed, and the self shares
#      of every function equal B's (host-named) within sampling noise:
#      both agents sampled the same process over the same seconds
#      (tests/unit/test_dsym.c checks the names per address exactly).
#   4. The same names in /api/v1/flamegraph, /api/v1/pprof, the Pyroscope
#      API's SelectMergeStacktraces and /pyroscope/render.
#   5. HTTP upload on a worker with a token: 401 without it, 409 for a
#      build-id that is not the file's, 400 for bytes that are not ELF, 413
#      past --debuginfo-max-mb, 201 then 200 ("exists"); the names follow
#      at once (the upload forgets the worker's "not in the store").
#   7. Compacted (blocks carry function totals, docs/format.md §3.5): the
#      top table of a compacted copy equals the segments' exactly, named
#      where debug files were uploaded (the totals' unnamed frames send
#      the worker to the rows) and unnamed where none were.
#   6. debuginfod given to the worker: a real server (Debian's debuginfod)
#      with the two debug files names the leaves once its fetch lands; an
#      unreachable one and one that never answers are counted and timed
#      out, and queries answer meanwhile (unnamed, never blocked).
# Environment: KEEP=1 keeps the work directory.
set -u
. "$(dirname "$0")/lib.sh"
need python3
need curl
need gcc
need objcopy
need strip
need debuginfod
[ "$(id -u)" -eq 0 ] || { echo "test_deferred_symbols: needs root (BPF)"; exit 1; }

T=$(mktemp -d /tmp/stoke-dsym.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
QUERY=${STOKE_QUERY_BIN:-$ROOT/build/stoke-query} # a sanitizer build: STOKE_QUERY_BIN=build/san/stoke-query
V="python3 $ROOT/tests/integration/dsym_views.py"
export DEBUGINFOD_URLS= # no worker or agent asks a server unless told here

# ---- the fixture, stripped; its debug file and libc's ------------------
FX=$T/busy_libc
stripped_busy_libc "$FX" "$T/fx.debug" || { fail "building the fixture"; summary test_deferred_symbols; exit 1; }
fx_bid=$FX_BID
FXD=$T/dbg/.build-id/${fx_bid:0:2}/${fx_bid:2}.debug # as a debug root lays it out
mkdir -p "$T/empty" "$(dirname "$FXD")"
mv "$T/fx.debug" "$FXD"
check "fixture stripped, with a build-id" \
    test -n "$fx_bid" -a -z "$(readelf -S "$FX" | grep -E '\.symtab|\.debug_info')"
libc_debug test_deferred_symbols
libc_bid=$LIBC_BID
LIBCD=$LIBC_DEBUG

echo "== 1. two agents, one process: A without debug files, B with them"
"$FX" 30 >/dev/null &
fxpid=$!
pids+=("$fxpid")
sleep 0.5
agent() { # agent NAME DEBUG_DIRS
    "$AGENT" --pid "$fxpid" --frequency 499 --window 2 --flush 10 --duration 20 \
        --debug-dir "$2" --store "$T/s$1" --output-dir "$T/out$1" >/dev/null 2>"$T/agent$1.err"
}
agent A "$T/empty" &
a=$!
agent B "$T/dbg:/usr/lib/debug" &
b=$!
wait "$a"
ra=$?
wait "$b"
rb=$?
kill "$fxpid" 2>/dev/null
check "both agents exited 0" test "$ra" = 0 -a "$rb" = 0
check "both wrote segments" test -n "$(find "$T/sA" -name '*.seg')" -a -n "$(find "$T/sB" -name '*.seg')"
cp -r "$T/sA" "$T/sC" # for the HTTP upload (5.) and debuginfod (6.), before any upload
cp -r "$T/sA" "$T/sD"
cp -r "$T/sA" "$T/sH" # compacted without uploads (7.)

# worker NAME STORE [OPTIONS...]: starts stoke-query, sets PORT_<NAME>
worker() {
    local name=$1 store=$2 port
    shift 2
    port=$(free_port)
    "$QUERY" --store "$store" --listen "127.0.0.1:$port" "$@" >/dev/null 2>"$T/q$name.err" &
    pids+=($!)
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.1; done
    eval "PORT_$name=$port"
}
R="from=now-1h&until=now&query=%7Bservice_name%3D%22busy_libc%22%7D"
top() { # top PORT OUT [CURL ARGS...]: /api/v1/top into OUT, its selves into OUT.selfs
    local port=$1 out=$2
    shift 2
    curl -s "$@" "http://127.0.0.1:$port/api/v1/top?$R&limit=100000" >"$out" && $V selfs top "$out" >"$out.selfs"
}
unnamed() { $V unnamed "$1" busy_libc libc.so.6; }
pct() { python3 -c 'import sys; print(round(100.0 * float(sys.argv[1]) / float(sys.argv[2]), 2) if float(sys.argv[2]) else -1)' "$@"; }

worker A "$T/sA" --debuginfo-recheck 200ms
worker B "$T/sB"
echo "== 2. before any upload"
top "$PORT_A" "$T/a0.json"
read -r un0 tot0 < <(unnamed "$T/a0.json.selfs")
echo "  unnamed leaves: $un0 of $tot0 ($(pct "$un0" "$tot0")%)"
check "A's worker shows the fixture's and libc's leaves unnamed (>= 30% of the samples)" \
    python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(0 if b > 0 and a / b >= 0.3 else 1)' "$un0" "$tot0"
top "$PORT_B" "$T/b.json"
read -r unb totb < <(unnamed "$T/b.json.selfs")
check "B's (host-named) leaves are named (>= 99%)" \
    python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(0 if b > 0 and a / b <= 0.01 else 1)' "$unb" "$totb"

echo "== 3. stoke-query debuginfo upload"
"$QUERY" debuginfo upload --store "$T/sA" "$FXD" "$LIBCD" >"$T/up1.out" 2>"$T/up1.err"
rc=$?
cat "$T/up1.out" | sed 's/^/  /'
check "upload exit 0, both uploaded" test "$rc" = 0 -a "$(grep -c ' uploaded ' "$T/up1.out")" = 2
check "stored per tenant under their build-ids" \
    test -s "$T/sA/default/debuginfo/$fx_bid" -a -s "$T/sA/default/debuginfo/$libc_bid"
"$QUERY" debuginfo upload --store "$T/sA" "$LIBCD" >"$T/up2.out" 2>&1
check "uploading again writes nothing (exists)" \
    grep -q "^$libc_bid exists" "$T/up2.out"
objcopy --remove-section .note.gnu.build-id "$FXD" "$T/nobid.debug"
"$QUERY" debuginfo upload --store "$T/sA" "$T/nobid.debug" >"$T/up3.out" 2>&1
rc=$?
check "a file without a build-id refused, exit 1 ($(head -c 100 "$T/up3.out"))" \
    test "$rc" = 1 -a -n "$(grep 'without a GNU build-id' "$T/up3.out")"
sleep 0.3 # past --debuginfo-recheck: the store is asked again
top "$PORT_A" "$T/a1.json"
read -r un1 tot1 < <(unnamed "$T/a1.json.selfs")
named_pct=$(python3 -c 'import sys; a, b = map(float, sys.argv[1:]); print(round(100 * (1 - b / a), 2))' "$un0" "$un1")
echo "  unnamed leaves: $un1 of $tot1; $named_pct% of those unnamed before are named"
check ">= 99% of the leaves unnamed before are named" \
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 99 else 1)' "$named_pct"
check "same total as before the upload" test "$tot0" = "$tot1"
echo "  self share per function: deferred (A) | host-named (B)"
check "function self shares equal the host-named agent's (within 3 points; none >= 1% missing)" \
    $V compare "$T/a1.json.selfs" "$T/b.json.selfs" 3 1
check "the fixture's own hot function named (busy_own_hot)" \
    python3 -c 'import json,sys; d = json.load(open(sys.argv[1])); sys.exit(0 if d.get("busy_own_hot", 0) > 0 else 1)' "$T/a1.json.selfs"
curl -s "http://127.0.0.1:$PORT_A/metrics" >"$T/mA"
check "files loaded and lookups counted in /metrics" \
    test "$(awk '$1 == "stoke_query_dsym_files_loaded_total" {print $2}' "$T/mA")" = 2

echo "== 4. every view and export"
curl -s "http://127.0.0.1:$PORT_A/api/v1/flamegraph?$R&max_nodes=100000" >"$T/fg.json"
check "flame graph: no unnamed node of the fixture's hot function's callers" \
    python3 -c '
import json, re, sys
t = json.load(open(sys.argv[1]))["tree"]
names = set()
def walk(n):
    names.add(n["name"])
    for c in n.get("children", []):
        walk(c)
walk(t)
sys.exit(0 if "busy_own_hot" in names and "main" in names else 1)' "$T/fg.json"
curl -s "http://127.0.0.1:$PORT_A/api/v1/pprof?$R" >"$T/a.pb.gz"
$V selfs pprof "$T/a.pb.gz" >"$T/pprof.selfs"
check "pprof: the same leaf selves as top" $V compare "$T/pprof.selfs" "$T/a1.json.selfs" 0.01 0.01
PT=process_cpu:cpu:nanoseconds:cpu:nanoseconds
now=$(date +%s%3N)
curl -s -X POST -H 'Content-Type: application/json' -H 'Connect-Protocol-Version: 1' \
    --data-binary "{\"profileTypeID\":\"$PT\",\"labelSelector\":\"{service_name=\\\"busy_libc\\\"}\",\"start\":\"$((now - 3600000))\",\"end\":\"$now\",\"maxNodes\":\"100000\"}" \
    "http://127.0.0.1:$PORT_A/querier.v1.QuerierService/SelectMergeStacktraces" >"$T/smst.json"
$V selfs flamebearer "$T/smst.json" >"$T/smst.selfs" 2>"$T/smst.err"
check "SelectMergeStacktraces: the same selves as top" $V compare "$T/smst.selfs" "$T/a1.json.selfs" 0.01 0.01
curl -s "http://127.0.0.1:$PORT_A/pyroscope/render?query=$PT%7Bservice_name%3D%22busy_libc%22%7D&from=now-1h&until=now&format=json&maxNodes=100000" >"$T/render.json"
$V selfs flamebearer "$T/render.json" >"$T/render.selfs" 2>"$T/render.err"
check "/pyroscope/render: the same selves as top" $V compare "$T/render.selfs" "$T/a1.json.selfs" 0.01 0.01

echo "== 5. POST /api/v1/debuginfo/<build-id>"
echo "s3cret-token" >"$T/token"
worker C "$T/sC" --auth-token-file "$T/token" --debuginfo-max-mb 8
U="http://127.0.0.1:$PORT_C/api/v1/debuginfo"
H=(-H "Authorization: Bearer s3cret-token")
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
check "no token: 401" test "$(code -X POST --data-binary @"$FXD" "$U/$fx_bid")" = 401
c=$(code "${H[@]}" -X POST --data-binary @"$FXD" "$U/$libc_bid")
check "a build-id that is not the file's: 409 ($(head -c 120 "$T/body"))" test "$c" = 409
c=$(code "${H[@]}" -X POST --data-binary 'not an ELF file at all, just some text bytes; more than sixty-four of them' "$U/$fx_bid")
check "not ELF: 400 ($(head -c 100 "$T/body"))" test "$c" = 400
head -c 1000 "$FXD" >"$T/trunc.debug"
c=$(code "${H[@]}" -X POST --data-binary @"$T/trunc.debug" "$U/$fx_bid")
check "a truncated ELF file: 400" test "$c" = 400
c=$(code "${H[@]}" -X POST --data-binary 'x' "$U/not-hex")
check "a malformed build-id: 400" test "$c" = 400
head -c $((9 << 20)) /dev/zero >"$T/big"
c=$(code "${H[@]}" -X POST --data-binary @"$T/big" "$U/$fx_bid")
check "9 MB past --debuginfo-max-mb 8: 413 ($(head -c 100 "$T/body"))" test "$c" = 413
check "nothing stored by the refused uploads" test ! -e "$T/sC/default/debuginfo"
top "$PORT_C" "$T/c0.json" "${H[@]}"
read -r unc0 _ < <(unnamed "$T/c0.json.selfs")
check "unnamed before the HTTP upload" test "$unc0" = "$un0"
c1=$(code "${H[@]}" -X POST --data-binary @"$FXD" "$U/$fx_bid")
c2=$(code "${H[@]}" -X POST --data-binary @"$LIBCD" "$U/$libc_bid")
c3=$(code "${H[@]}" -X POST --data-binary @"$LIBCD" "$U/$libc_bid")
check "uploads 201, 201, then 200 exists ($c1 $c2 $c3: $(head -c 100 "$T/body"))" \
    test "$c1 $c2 $c3" = "201 201 200" -a -n "$(grep '"exists"' "$T/body")"
top "$PORT_C" "$T/c1.json" "${H[@]}"
read -r unc1 _ < <(unnamed "$T/c1.json.selfs")
check "named at once after the HTTP upload (unnamed $unc0 -> $unc1, as the CLI's $un1)" test "$unc1" = "$un1"
curl -s -X POST -H 'Content-Type: application/json' -H 'Connect-Protocol-Version: 1' "${H[@]}" \
    --data-binary "{\"profileTypeID\":\"$PT\",\"labelSelector\":\"{service_name=\\\"busy_libc\\\"}\",\"start\":\"$((now - 3600000))\",\"end\":\"$now\",\"maxNodes\":\"100000\"}" \
    "http://127.0.0.1:$PORT_C/querier.v1.QuerierService/SelectMergeStacktraces" >"$T/smstc.json"
$V selfs flamebearer "$T/smstc.json" >"$T/smstc.selfs" 2>/dev/null
check "Pyroscope API after the HTTP upload: the CLI upload's selves" \
    $V compare "$T/smstc.selfs" "$T/a1.json.selfs" 0.01 0.01

echo "== 6. debuginfod given to the worker"
mkdir -p "$T/srv"
cp "$FXD" "$T/srv/fx.debug"
cp "$LIBCD" "$T/srv/libc.debug"
SPORT=$(free_port)
debuginfod -p "$SPORT" -F -d "$T/db.sqlite" -t 0 -g 0 "$T/srv" >"$T/debuginfod.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do
    curl -s -m 2 "http://127.0.0.1:$SPORT/metrics" | grep -q 'scanned_files_total{source="file"} [2-9]' && break
    sleep 0.5
done
worker D "$T/sD" --debuginfod-urls "http://127.0.0.1:$SPORT" --debuginfod-cache-dir "$T/dcache" \
    --debuginfo-recheck 100ms
ok=0
for i in $(seq 40); do
    top "$PORT_D" "$T/d.json"
    read -r und _ < <(unnamed "$T/d.json.selfs")
    [ "$und" = "$un1" ] && ok=1 && break
    sleep 0.25
done
echo "  named as after the upload after $i queries"
check "leaves named from debuginfod (unnamed $und, as after the upload $un1)" test "$ok" = 1
curl -s "http://127.0.0.1:$PORT_D/metrics" >"$T/mD"
check "two debug files fetched from debuginfod, once each" \
    test "$(awk '$1 == "stoke_query_debuginfod_fetched_total" {print $2}' "$T/mD")" = 2 \
    -a "$(awk '$1 == "stoke_query_dsym_debuginfod_files_total" {print $2}' "$T/mD")" = 2
# unreachable (a closed port) and hanging (accepts, never answers) servers
DEAD=$(free_port)
HPORT=$(free_port)
python3 -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' "$HPORT" &
pids+=($!)
cp -r "$T/sC" "$T/sE"
rm -rf "$T/sE/default/debuginfo" "$T/sF"
cp -r "$T/sE" "$T/sF"
worker E "$T/sE" --debuginfod-urls "http://127.0.0.1:$DEAD" --debuginfod-cache-dir "$T/ecache" \
    --debuginfo-recheck 100ms
worker F "$T/sF" --debuginfod-urls "http://127.0.0.1:$HPORT" --debuginfod-cache-dir "$T/fcache" \
    --debuginfod-timeout 1 --debuginfo-recheck 100ms
slowest=0
for _ in $(seq 12); do
    for p in "$PORT_E" "$PORT_F"; do
        s=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$p/api/v1/top?$R")
        slowest=$(python3 -c 'import sys; print(max(map(float, sys.argv[1:])))' "$slowest" "$s")
    done
    sleep 0.25
done
top "$PORT_E" "$T/e.json"
top "$PORT_F" "$T/f.json"
read -r une _ < <(unnamed "$T/e.json.selfs")
read -r unf _ < <(unnamed "$T/f.json.selfs")
curl -s "http://127.0.0.1:$PORT_E/metrics" >"$T/mE"
curl -s "http://127.0.0.1:$PORT_F/metrics" >"$T/mF"
fails() { awk -v r="stoke_query_debuginfod_failures_total{reason=\"$2\"}" '$1 == r {print $2}' "$1"; }
check "unreachable server: answers unnamed, failures counted ($(fails "$T/mE" unreachable) unreachable)" \
    test "$une" = "$un0" -a "$(fails "$T/mE" unreachable)" -ge 1
check "hanging server: answers unnamed, the fetch timed out and counted ($(fails "$T/mF" timeout) timeouts)" \
    test "$unf" = "$un0" -a "$(fails "$T/mF" timeout)" -ge 1
check "no query waited on the servers (slowest of 24: $slowest s, the timeout 1 s)" \
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 0.9 else 1)' "$slowest"
check "workers still up" curl -sf -o /dev/null "http://127.0.0.1:$PORT_F/healthz"
check "no worker reported a sanitizer error or a crash" \
    test -z "$(grep -l -E 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer|Segmentation' "$T"/q*.err)"

echo "== 7. compacted stores: function totals and deferred names"
cp -r "$T/sA" "$T/sG" # with both uploads
"$QUERY" compact --store "$T/sG" --open-hours --delay 0 >"$T/cG.out" 2>&1
rg=$?
"$QUERY" compact --store "$T/sH" --open-hours --delay 0 >"$T/cH.out" 2>&1
rh=$?
check "compaction exit 0, every segment merged into blocks" \
    test "$rg" = 0 -a "$rh" = 0 -a -z "$(find "$T/sG" "$T/sH" -name '*.seg')" \
    -a -n "$(find "$T/sG" -name '*.blk')" -a -n "$(find "$T/sH" -name '*.blk')"
worker G "$T/sG"
worker H "$T/sH"
top "$PORT_G" "$T/g.json"
top "$PORT_H" "$T/h.json"
check "compacted, debug files uploaded: the same named top table as the segments'" \
    cmp -s "$T/g.json.selfs" "$T/a1.json.selfs"
check "compacted, no debug files: the same unnamed top table as the segments'" \
    cmp -s "$T/h.json.selfs" "$T/a0.json.selfs"
# Flame graphs: blocks carry call trees (§3.6), read only where no debug
# file would name their frames; either way the same tree as the rows give.
for w in G H; do
    eval "port=\$PORT_$w"
    curl -s "http://127.0.0.1:$port/api/v1/flamegraph?$R" >"$T/fg$w.json"
    curl -s "http://127.0.0.1:$port/api/v1/flamegraph?$R&trees=false" >"$T/fg$w.rows.json"
    curl -s "http://127.0.0.1:$port/api/v1/flamegraph?$R&exact=true" >"$T/fg$w.exact.json"
done
fgcheck() { # fgcheck FILE EXACT WANT_TREES WANT_NAMED
    python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
names = set()
def walk(n):
    names.add(n["name"])
    for c in n.get("children", []):
        walk(c)
walk(a["tree"])
trees = a["stats"].get("call_tree_sections", 0)
ok = (a["tree"] == b["tree"] and "call_tree_sections" not in b["stats"]
      and (trees > 0) == (sys.argv[3] == "1") and ("busy_own_hot" in names) == (sys.argv[4] == "1"))
sys.exit(0 if ok else 1)' "$@"
}
check "compacted, debug files uploaded: the flame graph from rows, named" \
    fgcheck "$T/fgG.json" "$T/fgG.rows.json" 0 1
check "compacted, no debug files: the flame graph from call trees, as the rows give it" \
    fgcheck "$T/fgH.json" "$T/fgH.rows.json" 1 0
# exact=true: from the trees only when proved (max_error 0), and then the rows' graph
check "compacted, no debug files, exact=true: the rows' graph, from trees proved exact ($(grep -o '"stats":{[^}]*}' "$T/fgH.exact.json"))" \
    python3 -c '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
s = a["stats"]
sys.exit(0 if a["tree"] == b["tree"] and s.get("call_tree_sections", 0) > 0 and s["max_error"] == 0 else 1)' \
    "$T/fgH.exact.json" "$T/fgH.rows.json"

summary test_deferred_symbols
