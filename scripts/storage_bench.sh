#!/usr/bin/env bash
# Storage and query figures from the fleet generator (DESIGN.md §6):
#  1. bytes per sample and per host-hour, objects per host-hour, before and
#     after compaction: 1 host x 1 hour generated from SOURCE pprofs as
#     agents write it (a segment + an entry per 60 s flush), then compacted;
#  2. query latency of one service's flame graph and top over 100 hosts x
#     24 h (compacted), with 1 worker and with 2 (--peers), cold and warm.
#     STORAGE_FLEET_SOURCE: a pprof to replay, or `calibrated` (no file:
#     `stoke-query generate --model calibrated`, every host's windows drawn
#     from what bench/calibrate.sh measured on a busy host, docs/storage.md;
#     STORAGE_FLEET_ROWS rows per host per 10 s window, default the
#     calibrated 321 -- 100 x 24 h of them is ~277 M rows and takes ~45 min
#     to generate on the 2-core machine; 32 is a host at a tenth of that).
# Usage: scripts/storage_bench.sh [HOSTS] [HOURS] [SOURCE.pb.gz...]
# The default source is the agent's own output when build/bench-profiles
# holds some (scripts/overhead.sh leaves none; `stoke-agent --output-dir
# build/bench-profiles` makes them), else the corpus Go CPU profile.
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-100}; hours=${2:-24}; shift 2 2>/dev/null || shift $#
srcs=("$@")
if [ ${#srcs[@]} -eq 0 ]; then
    if ls build/bench-profiles/*/*.pb.gz >/dev/null 2>&1; then
        mapfile -t srcs < <(ls build/bench-profiles/*/*.pb.gz | head -8)
    else
        srcs=(../shared/corpus/pprof/go-cpu.pb.gz)
    fi
fi
Q=build/stoke-query
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; rm -rf "$tmp"' EXIT
start=$(( ($(date +%s) / 3600 - hours - 1) * 3600000 ))

echo "== 1 host x 1 hour, ${#srcs[@]} source profile(s) as services, 60 s flushes"
$Q generate --store "$tmp/one" --hosts 1 --services ${#srcs[@]} --hours 1 --start $start "${srcs[@]}" |
    tee "$tmp/gen1.txt"
objs_before=$(find "$tmp/one" -type f | wc -l)
bytes_before=$(find "$tmp/one" -type f -printf "%s\n" | awk "{s += \$1} END {print s}")
$Q compact --store "$tmp/one" --delay 0 | grep "hours compacted"
objs_after=$(find "$tmp/one" -type f | wc -l)
bytes_after=$(find "$tmp/one" -type f -printf "%s\n" | awk "{s += \$1} END {print s}")
samples=$(sed -n 's/.* \([0-9]*\) samples in .*/\1/p' "$tmp/gen1.txt")
printf '%-34s %12s %12s\n' "" before after
printf '%-34s %12s %12s\n' "objects per host-hour" "$objs_before" "$objs_after"
printf '%-34s %12s %12s\n' "bytes per host-hour" "$bytes_before" "$bytes_after"
awk -v s="$samples" -v b="$bytes_before" -v a="$bytes_after" \
    'BEGIN {printf "%-34s %12.3f %12.3f\n", "bytes per sample (" s " samples)", b / s, a / s}'

echo "== 1 service x $hosts hosts x $hours h, compacted (generated in one go)"
fleet_src=${STORAGE_FLEET_SOURCE:-${srcs[0]}}
mem_args=()
if [ "$fleet_src" = calibrated ]; then
    fleet_args=(--model calibrated)
    [ -z "${STORAGE_FLEET_ROWS:-}" ] || fleet_args+=(--rows "$STORAGE_FLEET_ROWS")
    fleet_src="calibrated model, ${STORAGE_FLEET_ROWS:-321} rows per host-window"
    # its day holds millions of distinct stacks: gigabytes per query, far
    # above the default budgets (BENCHMARKS.md, "At calibrated diversity")
    mem_args=(--query-memory-limit 8G --total-query-memory-limit 8G)
else
    fleet_args=("$fleet_src")
fi
$Q generate --store "$tmp/fleet" --hosts "$hosts" --services 1 --hours "$hours" --compacted \
    --start $start "${fleet_args[@]}" | tail -1
from=$start; until=$((start + hours * 3600000))
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
p1=$(port); p2=$(port)
# Workers are started, stopped and started again on the same ports: wait
# for the stopped ones to exit (their port free) and for the new ones to
# answer /healthz (a fixed 0.5 s was seen to be too short on a loaded
# machine: curl got no answer at all).
stop() { kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; pids=(); }
ready() { # ready PORT...
    local p
    for p in "$@"; do
        for _ in $(seq 300); do
            curl -s -o /dev/null "http://127.0.0.1:$p/healthz" && break
            sleep 0.1
        done
    done
}
$Q --store "$tmp/fleet" --listen 127.0.0.1:$p1 "${mem_args[@]}" >/dev/null 2>&1 & pids+=($!)
ready $p1
q() { # PORT ENDPOINT → seconds; an answer other than 200 stops the bench
    local r
    r=$(curl -s -o "$tmp/out.json" -w '%{http_code} %{time_total}' -G "http://127.0.0.1:$1/api/v1/$2" \
        --data-urlencode 'query={service_name="svc-00"}' --data-urlencode "from=$from" \
        --data-urlencode "until=$until")
    if [ "${r%% *}" != 200 ]; then
        echo "storage_bench: $2 answered ${r%% *}: $(head -c 300 "$tmp/out.json")" >&2
        return 1
    fi
    echo "${r#* }"
}
printf '%-34s %10s %10s\n' "query (1 service, ${hosts}x${hours}h)" cold warm
c=$(q $p1 flamegraph); w=$(q $p1 flamegraph)
printf '%-34s %9.3fs %9.3fs\n' "flame graph, 1 worker" "$c" "$w"
fg1="$c $w"
c=$(q $p1 top); w=$(q $p1 top)
printf '%-34s %9.3fs %9.3fs\n' "top, 1 worker" "$c" "$w"
top1="$c $w"
grep -o '"stats":{[^}]*}' "$tmp/out.json" || true
stop
$Q --store "$tmp/fleet" --listen 127.0.0.1:$p2 "${mem_args[@]}" >/dev/null 2>&1 & pids+=($!)
$Q --store "$tmp/fleet" --listen 127.0.0.1:$p1 --peers 127.0.0.1:$p2 "${mem_args[@]}" >/dev/null 2>&1 & pids+=($!)
ready $p2 $p1
c=$(q $p1 flamegraph); w=$(q $p1 flamegraph)
printf '%-34s %9.3fs %9.3fs\n' "flame graph, 2 workers" "$c" "$w"
fg2="$c $w"
c=$(q $p1 top); w=$(q $p1 top)
printf '%-34s %9.3fs %9.3fs\n' "top, 2 workers" "$c" "$w"
top2="$c $w"
# Speed-up with workers on this 2-core machine: each worker limited to one
# decode thread, so a second worker has a core of its own to add.
stop
$Q --store "$tmp/fleet" --listen 127.0.0.1:$p1 --threads 1 "${mem_args[@]}" >/dev/null 2>&1 & pids+=($!)
ready $p1
c=$(q $p1 flamegraph); w=$(q $p1 flamegraph)
printf '%-34s %9.3fs %9.3fs\n' "flame graph, 1 worker x 1 thread" "$c" "$w"
fg1t="$c $w"
stop
$Q --store "$tmp/fleet" --listen 127.0.0.1:$p2 --threads 1 "${mem_args[@]}" >/dev/null 2>&1 & pids+=($!)
$Q --store "$tmp/fleet" --listen 127.0.0.1:$p1 --threads 1 --peers 127.0.0.1:$p2 "${mem_args[@]}" >/dev/null 2>&1 & pids+=($!)
ready $p2 $p1
c=$(q $p1 flamegraph); w=$(q $p1 flamegraph)
printf '%-34s %9.3fs %9.3fs\n' "flame graph, 2 workers x 1 thread" "$c" "$w"
fg2t="$c $w"
if [ -n "${STORAGE_BENCH_JSON:-}" ]; then
    python3 - "$STORAGE_BENCH_JSON" "$hosts" "$hours" "$samples" "$objs_before" "$objs_after" \
        "$bytes_before" "$bytes_after" "$fg1" "$top1" "$fg2" "$top2" "$fg1t" "$fg2t" "$fleet_src" "${srcs[@]}" <<'PY'
import json, sys
a = sys.argv[1:]
lat = lambda s: dict(zip(("cold_s", "warm_s"), map(float, s.split())))
s, ob, oa, bb, ba = (int(x) for x in a[3:8])
json.dump({
    "one_host_hour": {"samples": s, "objects_before": ob, "objects_after": oa,
                      "bytes_before": bb, "bytes_after": ba,
                      "bytes_per_sample_before": round(bb / s, 3) if s else None,
                      "bytes_per_sample_after": round(ba / s, 3) if s else None},
    "query": {"hosts": int(a[1]), "hours": int(a[2]), "service": "svc-00",
              "flamegraph_1_worker": lat(a[8]), "top_1_worker": lat(a[9]),
              "flamegraph_2_workers": lat(a[10]), "top_2_workers": lat(a[11]),
              "flamegraph_1_worker_1_thread": lat(a[12]),
              "flamegraph_2_workers_1_thread": lat(a[13])},
    "fleet_source": a[14],
    "sources": a[15:],
}, open(a[0], "w"), indent=1)
PY
fi
