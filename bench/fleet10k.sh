#!/usr/bin/env bash
# Issue #18, item 4: what the three reference queries cost on a fleet of
# HOSTS (default 10,000) simulated hosts, one hour in a directory store:
# GETs, LISTs, bytes got, objects and sections read and wall time on one
# worker (build/stoke-bench-open-hour: one engine, 2 decode threads, no
# cache), before and after `stoke-query compact`.
#
# The fleet: `stoke-query generate --model calibrated --services 100
# --services-per-host 3 --rows 32`: the calibrated host's diversity at a
# tenth of its rows (32 rows per 10 s window: a host at ~10% of two CPUs, as
# fleets average) and 3 services per host, 60 s flushes, written by JOBS
# processes. 10,000 hosts take 4.2 GB and ~18 min on the 2-core machine.
#
#   bench/fleet10k.sh [HOSTS]     FLEET_DIR=DIR (default build/fleet10k; kept)
#   JOBS=8 COMPACT=1: also run `stoke-query compact` and the queries again
#   (default 0: compaction looks back 48 hours, and the fleet's hour,
#   2026-01-01T10, is older, so it would compact nothing)
set -eu
cd "$(dirname "$0")/.."
Q=build/stoke-query B=build/stoke-bench-open-hour
[ -x "$B" ] || make -s "$B"
HOSTS=${1:-10000} JOBS=${JOBS:-8}
dir=${FLEET_DIR:-build/fleet10k}
st=$dir/store
S=1767261600000 # 2026-01-01T10:00Z
if [ ! -d "$st" ]; then
    per=$(((HOSTS + JOBS - 1) / JOBS))
    for i in $(seq 0 $((JOBS - 1))); do
        n=$((HOSTS - i * per < per ? HOSTS - i * per : per))
        [ "$n" -gt 0 ] || continue
        "$Q" generate --store "$st" --model calibrated --hosts "$n" --first-host $((i * per)) \
            --services 100 --services-per-host 3 --rows 32 --hours 1 --start $S >"$dir.gen$i.log" 2>&1 &
    done
    wait
    cat "$dir".gen*.log
fi
run() { # run LABEL ARGS...
    printf '%-34s ' "$1"
    shift
    "$B" --store "$st" "$@"
}
queries() {
    run "1 service, last 15 min ($1)" --from $((S + 45 * 60000)) --until $((S + 3600000)) \
        --selector '{service_name="svc-00"}'
    run "1 service, last 1 h ($1)" --from $S --until $((S + 3600000)) --selector '{service_name="svc-00"}'
    run "whole fleet, last 1 h ($1)" --from $S --until $((S + 3600000))
}
queries open
if [ "${COMPACT:-0}" = 1 ]; then
    a=$(date +%s)
    "$Q" compact --store "$st" >&2
    echo "compact: $(($(date +%s) - a)) s" >&2
    queries compacted
fi
