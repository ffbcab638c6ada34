#!/usr/bin/env bash
# bench/query_rss.sh - the query worker's memory under concurrent load
# (DESIGN.md section 6: RSS at 32 concurrent clients <= cache size + 128 MB;
# issue #18 item 5).
#
#   bench/query_rss.sh                         # 16 hosts x 2 services x 1 h
#   QRSS_SECONDS=30 QRSS_CLIENTS=32 bench/query_rss.sh
#   QUERY=/tmp/old/stoke-query bench/query_rss.sh -- --cache-mb 64
#   QRSS_STORE=DIR QRSS_RANGE_MS=86400000 bench/query_rss.sh   # another store
#
# QRSS_STORE names a directory holding the store in DIR/s and the start of
# its range (Unix ms) in DIR/h0; the queries cover QRSS_RANGE_MS from there
# (default one hour).
#
# Without QRSS_STORE it generates (once, kept in build/bench/qrss-store) a store of 960 objects:
# `stoke-query generate --hosts 16 --services 2 --hours 1` from the corpus's
# go-cpu and dotnet-cpu profiles. Starts one worker (arguments after `--` are
# passed to it), then runs wrk (QRSS_CLIENTS connections, 2 threads,
# QRSS_SECONDS) on /api/v1/top and then on /api/v1/flamegraph over the whole
# hour of every service, polling the worker's VmRSS every 0.2 s. Prints per
# phase: requests/s, latency p50/p99, non-2xx answers (429s and 422s), and
# the worker's RSS before, peak (VmHWM) and at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUERY=${QUERY:-$ROOT/build/stoke-query}
SECS=${QRSS_SECONDS:-20}
CLIENTS=${QRSS_CLIENTS:-32}
CORPUS=${CORPUS:-$ROOT/../shared/corpus/pprof}
[ -d "$CORPUS" ] || CORPUS=/work/shared/corpus/pprof
STORE=${QRSS_STORE:-$ROOT/build/bench/qrss-store}
[ "${1:-}" = -- ] && shift
command -v wrk >/dev/null || { echo "query_rss: wrk missing (apt-get install wrk)" >&2; exit 1; }
[ -x "$QUERY" ] || { echo "query_rss: $QUERY missing: make all" >&2; exit 1; }

if [ ! -s "$STORE/h0" ]; then
    rm -rf "$STORE"
    mkdir -p "$STORE"
    H0=$((($(date +%s) / 3600 - 2) * 3600000))
    "$QUERY" generate --store "$STORE/s" --hosts 16 --services 2 --hours 1 --start "$H0" \
        "$CORPUS/go-cpu.pb.gz" "$CORPUS/dotnet-cpu.pb.gz" >"$STORE/gen.log" 2>&1 ||
        { echo "query_rss: generate failed: $(tail -2 "$STORE/gen.log")" >&2; exit 1; }
    echo "$H0" >"$STORE/h0"
fi
H0=$(cat "$STORE/h0")
T=$(mktemp -d /tmp/stoke-qrss.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

"$QUERY" --store "$STORE/s" --listen 127.0.0.1:0 "$@" >/dev/null 2>"$T/q.log" &
pid=$!
for _ in $(seq 50); do
    port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$T/q.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "query_rss: worker did not start: $(cat "$T/q.log")" >&2; exit 1; }
echo "query_rss: $(find -L "$STORE/s" -type f | wc -l) objects, worker $* ($QUERY)"

rss() { awk -v k="$1" '$1 == k":" {print int($2 / 1024)}' /proc/$pid/status; }
poll() {
    while kill -0 "$pid" 2>/dev/null; do
        rss VmRSS >>"$T/rss.$1"
        sleep 0.2
    done
}
range="from=$H0&until=$((H0 + ${QRSS_RANGE_MS:-3600000}))"
for ep in top flamegraph; do
    before=$(rss VmRSS)
    poll "$ep" &
    pp=$!
    wrk -t2 -c"$CLIENTS" -d"${SECS}s" --timeout 60s --latency \
        "http://127.0.0.1:$port/api/v1/$ep?query=%7B%7D&$range" >"$T/wrk.$ep" 2>&1
    kill "$pp" 2>/dev/null
    wait "$pp" 2>/dev/null
    rps=$(awk '/Requests\/sec/ {print $2}' "$T/wrk.$ep")
    p50=$(awk '$1 == "50%" {print $2}' "$T/wrk.$ep")
    p99=$(awk '$1 == "99%" {print $2}' "$T/wrk.$ep")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$T/wrk.$ep")
    peak=$(sort -n "$T/rss.$ep" | tail -1)
    printf '%-10s %s clients %ss: %s req/s, p50 %s, p99 %s, non-2xx %s; RSS before %s MB, peak %s MB, end %s MB, VmHWM %s MB\n' \
        "$ep" "$CLIENTS" "$SECS" "$rps" "$p50" "$p99" "${non2xx:-0}" "$before" "$peak" "$(rss VmRSS)" "$(rss VmHWM)"
done
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^stoke_query_(busy|memory|cache_bytes)' | sed 's/^/  /'
