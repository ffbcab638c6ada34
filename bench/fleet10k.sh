#!/usr/bin/env bash
# Issue #18, item 4: what the three reference queries cost on a fleet of
# HOSTS (default 10,000) simulated hosts, one hour in a directory store:
# GETs, LISTs, bytes got, objects and sections read and wall time on one
# worker (build/stoke-bench-open-hour: one engine, 2 decode threads, no
# cache; each query twice: the whole profile, as a flame graph needs, and
# the top table, which blocks answer from their function totals), on the
# open hour as `stoke-query compact --continuous` leaves it
# once caught up, and optionally (OPEN=1) on the raw segments before.
#
# The fleet: `stoke-query generate --model calibrated --services 100
# --services-per-host 3 --rows 32`: the calibrated host's diversity at a
# tenth of its rows (32 rows per 10 s window: a host at ~10% of two CPUs, as
# fleets average) and 3 services per host, 60 s flushes, written by JOBS
# processes. 10,000 hosts take 4.7 GB and ~15-18 min on the 2-core machine.
#
# Compaction: the level-1 passes a `compact --continuous` replica makes
# during the hour, one per span (SPAN seconds, default 300; grace 90 s),
# the clock (--now) set to each span's end + grace, so the hour
# (2026-01-01T10) is compacted as it would have been while open; the last
# pass leaves the whole hour in level-1 blocks, still open (level 2 waits
# --delay, 600 s, after the hour). Each pass prints its store requests; the
# sums and the wall time are reported.
#
#   bench/fleet10k.sh [HOSTS]     FLEET_DIR=DIR (default /tmp/fleet10k; kept
#                                 unless CLEAN=1; a store there is reused
#                                 as it is, compacted or not)
#   JOBS=8  OPEN=1 (also query the raw open hour first: 10+ min a query at
#   10,000 hosts)  SPAN=300  CLEAN=1 (delete FLEET_DIR at the end)
set -eu
cd "$(dirname "$0")/.."
Q=build/stoke-query B=build/stoke-bench-open-hour
if [ ! -x "$B" ] || [ ! -x "$Q" ]; then make -s "$Q" "$B"; fi
HOSTS=${1:-10000} JOBS=${JOBS:-8} SPAN=${SPAN:-300}
dir=${FLEET_DIR:-/tmp/fleet10k}
st=$dir/store
S=1767261600000 # 2026-01-01T10:00Z
mkdir -p "$dir"
if [ ! -d "$st" ]; then
    a=$(date +%s)
    per=$(((HOSTS + JOBS - 1) / JOBS))
    for i in $(seq 0 $((JOBS - 1))); do
        n=$((HOSTS - i * per < per ? HOSTS - i * per : per))
        [ "$n" -gt 0 ] || continue
        "$Q" generate --store "$st" --model calibrated --hosts "$n" --first-host $((i * per)) \
            --services 100 --services-per-host 3 --rows 32 --hours 1 --start $S >"$dir/gen$i.log" 2>&1 &
    done
    wait
    cat "$dir"/gen*.log
    echo "generate: $HOSTS hosts, $(($(date +%s) - a)) s, $(du -sh "$st" | cut -f1)"
fi
run() { # run LABEL ARGS...
    printf '%-40s ' "$1"
    shift
    "$B" --store "$st" "$@"
}
queries() { # each as the whole profile (a flame graph's input) and as the top table
    for m in profile top; do
        run "1 service, last 15 min ($1, $m)" --mode $m --from $((S + 45 * 60000)) \
            --until $((S + 3600000)) --selector '{service_name="svc-00"}'
        run "1 service, last 1 h ($1, $m)" --mode $m --from $S --until $((S + 3600000)) \
            --selector '{service_name="svc-00"}'
        run "whole fleet, last 1 h ($1, $m)" --mode $m --from $S --until $((S + 3600000))
    done
}
[ "${OPEN:-0}" = 1 ] && queries open
a=$(date +%s.%N)
for i in $(seq 1 $((3600 / SPAN))); do
    "$Q" compact --store "$st" --continuous --span "$SPAN" --grace 90 --every 3600 --passes 1 \
        --now $((S + i * SPAN * 1000 + 90000))
done >"$dir/compact.log"
wall=$(echo "$(date +%s.%N) - $a" | bc)
awk -v w="$wall" '/store requests/ { g += $4; l += $6; p += $8; d += $10 }
    /spans/ { n++ }
    END { printf "compact --continuous: %d passes, %.1f s, %d GET, %d LIST, %d PUT, %d DELETE\n",
          n, w, g, l, p, d }' "$dir/compact.log"
grep -h errors "$dir/compact.log" | grep -v ' 0 errors' || true
queries "level 1"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "${CLEAN:-0}" = 1 ] && rm -rf "$dir"
exit 0
