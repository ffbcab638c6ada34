#!/usr/bin/env bash
# What a query of the open hour costs the object store, per store layout
# (issue #18, item 2): `stoke-query generate` writes one hour of HOSTS hosts
# (2 services, 60 s flushes, the corpus go-cpu profile) twice — the old
# layout (--entries: a manifest entry beside every segment) and one object
# per flush — into directory stores, and build/stoke-bench-open-hour runs
# "1 service, last 15 min" and "all services, last 1 h" on each with no
# cache, printing GETs, LISTs and bytes read from the store, the objects
# and sections the plan read, the answer's total and the wall time.
#
#   bench/open_hour.sh [HOSTS...]        (default: 100 1000)
#   OPEN_HOUR_DIR=DIR keeps the stores there (default: a temp dir, removed)
#   STOKE_QUERY / STOKE_BENCH_OPEN_HOUR: other binaries (e.g. an older build)
set -eu
cd "$(dirname "$0")/.."
Q=${STOKE_QUERY:-build/stoke-query}
B=${STOKE_BENCH_OPEN_HOUR:-build/stoke-bench-open-hour}
SRC=${OPEN_HOUR_SOURCE:-../shared/corpus/pprof/go-cpu.pb.gz}
[ -r "$SRC" ] || SRC=/work/shared/corpus/pprof/go-cpu.pb.gz
[ -x "$B" ] || make -s "$B"
dir=${OPEN_HOUR_DIR:-$(mktemp -d)}
[ -n "${OPEN_HOUR_DIR:-}" ] || trap 'rm -rf "$dir"' EXIT
S=1767261600000 # 2026-01-01T10:00Z: the "open" hour (nothing compacts it here)
[ $# -gt 0 ] || set -- 100 1000
for hosts in "$@"; do
    for layout in old new; do
        st=$dir/$layout$hosts
        if [ ! -d "$st" ]; then
            "$Q" generate --store "$st" --hosts "$hosts" --services 2 --hours 1 --start $S \
                $([ $layout = old ] && echo --entries) "$SRC" >&2
        fi
        printf '%5s hosts %s layout, 1 service last 15 min: ' "$hosts" $layout
        "$B" --store "$st" --from $((S + 45 * 60000)) --until $((S + 3600000)) \
            --selector '{service_name="svc-00"}'
        printf '%5s hosts %s layout, all services last 1 h:  ' "$hosts" $layout
        "$B" --store "$st" --from $S --until $((S + 3600000))
    done
done
