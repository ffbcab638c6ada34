#!/usr/bin/env bash
# Query latency with deferred symbolization (docs/architecture.md):
# a flame graph of 1 service x HOSTS hosts x HOURS h, compacted, whose
# profiles an agent without debug files wrote (a stripped busy_libc: its
# own functions and libc's unnamed), before and after the debug files are
# uploaded; each case on a fresh worker (cold: object cache and deferred
# symbolization empty) and then again on the same worker (warm).
#   1. the source: the agent (empty --debug-dir) on the stripped fixture,
#      DSYM_SECONDS (10) at 99 Hz; its largest .pb.gz is replayed;
#   2. stoke-query generate --hosts HOSTS --services 1 --hours HOURS
#      --flush DSYM_FLUSH (600: one 10 s window in ten replayed, 5-6 M rows
#      at 100 x 24, the size of BENCHMARKS.md's query fleet) --compacted;
#   3. flame graph (max_nodes 1024) over the whole range: no debug files
#      (frames stay unnamed), then after `stoke-query debuginfo upload`
#      (cold, warm x DSYM_RUNS).
# Usage: bench/dsym.sh [HOSTS HOURS]   (default 100 24; needs root)
set -u
cd "$(dirname "$0")/.."
HOSTS=${1:-100}
HOURS=${2:-24}
RUNS=${DSYM_RUNS:-3}
T=$(mktemp -d /tmp/stoke-dsym-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
export DEBUGINFOD_URLS=
build_id() { readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: //p' | head -1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

FX=$T/busy_libc
gcc -std=gnu11 -O1 -g -fno-omit-frame-pointer -Wl,--build-id=sha1 -o "$FX" tests/fixtures/busy_libc.c
objcopy --only-keep-debug "$FX" "$T/busy_libc.debug"
strip --strip-all "$FX"
libc=$(awk '$6 ~ /\/libc\.so\.6$/ {print $6; exit}' /proc/self/maps)
lb=$(build_id "$libc")
LIBCD=/usr/lib/debug/.build-id/${lb:0:2}/${lb:2}.debug
[ -r "$LIBCD" ] || { echo "bench/dsym.sh: needs libc6-dbg ($LIBCD)" >&2; exit 1; }

mkdir -p "$T/empty"
"$FX" $((${DSYM_SECONDS:-10} + 5)) >/dev/null &
pids+=($!)
build/stoke-agent --pid "${pids[0]}" --frequency 99 --duration "${DSYM_SECONDS:-10}" --debug-dir "$T/empty" \
    --output-dir "$T/out" >/dev/null 2>"$T/agent.err" || { tail -3 "$T/agent.err"; exit 1; }
src=$(ls -S "$T"/out/busy_libc/*.pb.gz | head -1)
echo "source: $src ($(stat -c %s "$src") bytes)"

t0=$(date +%s.%N)
build/stoke-query generate --store "$T/s" --hosts "$HOSTS" --services 1 --hours "$HOURS" --compacted \
    --flush "${DSYM_FLUSH:-600}" \
    "$src" >"$T/gen.out" 2>&1 || { cat "$T/gen.out"; exit 1; }
echo "generate: $(tail -1 "$T/gen.out") ($(python3 -c "import time; print(round(time.time() - $t0, 1))") s)"

P=$(free_port)
worker() {
    build/stoke-query --store "$T/s" --listen "127.0.0.1:$P" --debuginfo-recheck 1ms >/dev/null 2>>"$T/q.err" &
    wpid=$!
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$P/healthz" && break; sleep 0.1; done
}
# q: the flame graph's time, and the unnamed share of its leaves
Q="from=0&until=now&max_nodes=1024&query=%7B%7D"
q() {
    local t
    t=$(curl -s -o "$T/fg.json" -w '%{time_total}' "http://127.0.0.1:$P/api/v1/flamegraph?$Q")
    python3 - "$T/fg.json" "$t" <<'EOF'
import json, re, sys
d = json.load(open(sys.argv[1]))
rx = re.compile(r"^(busy_libc|libc\.so\.6)\+0x[0-9a-f]+$")
un = tot = 0
def walk(n):
    global un, tot
    tot += n["self"]
    if rx.match(n["name"]):
        un += n["self"]
    for c in n.get("children", []):
        walk(c)
walk(d["tree"])
print("%.3f s (%.1f%% of the samples' leaves unnamed)" % (float(sys.argv[2]), 100.0 * un / max(tot, 1)))
EOF
}
metric() { curl -s "http://127.0.0.1:$P/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

q_range_days=$(((HOURS + 23) / 24 + 1))
Q="from=now-${q_range_days}d&until=now&max_nodes=1024&query=%7B%7D"
echo "flame graph, 1 service x $HOSTS hosts x $HOURS h, compacted, 1 worker (2 decode threads); load average $(cut -d' ' -f1-3 /proc/loadavg):"
worker
echo "  no debug files, cold:  $(q)"
for i in $(seq "$RUNS"); do echo "  no debug files, warm:  $(q)"; done
echo "    deferred lookups $(metric stoke_query_dsym_lookups_total), $(metric stoke_query_dsym_seconds_total) s in dsym_names"
kill "$wpid"
wait "$wpid" 2>/dev/null
build/stoke-query debuginfo upload --store "$T/s" "$T/busy_libc.debug" "$LIBCD" >/dev/null
worker
echo "  debug files uploaded, cold (worker just started): $(q)"
echo "    deferred lookups $(metric stoke_query_dsym_lookups_total), named $(metric stoke_query_dsym_named_total), cache hits $(metric stoke_query_dsym_cache_hits_total), files $(metric stoke_query_dsym_files_loaded_total), heap $(($(metric stoke_query_dsym_bytes_open) >> 20)) MB, $(metric stoke_query_dsym_seconds_total) s in dsym_names"
for i in $(seq "$RUNS"); do echo "  debug files uploaded, warm:  $(q)"; done
echo "    deferred lookups $(metric stoke_query_dsym_lookups_total), cache hits $(metric stoke_query_dsym_cache_hits_total), $(metric stoke_query_dsym_seconds_total) s in dsym_names (all queries of this worker)"
kill "$wpid"
wait "$wpid" 2>/dev/null
