#!/usr/bin/env bash
# Latency of the individual-profile queries over 100 hosts x 24 h of one
# service (compacted, the corpus Go CPU profile replayed; 864,000 individual
# profiles): the heatmap (native and SelectHeatmap), SelectSeries with and
# without exemplars, the flame graph of the whole range for reference, and
# one profile by id. Each is run once cold (fresh worker: the object cache
# empty) and then 5 times warm; the median warm time is printed.
#
#   bench/individual.sh [HOSTS] [HOURS]     (default 100 24)
#
# Needs build/stoke-query, curl, python3. Writes the store under
# ${BENCH_TMP:-/tmp}/stoke-individual-bench (kept for reruns: delete it to
# regenerate).
set -eu
cd "$(dirname "$0")/.."
HOSTS=${1:-100}
HOURS=${2:-24}
Q=build/stoke-query
SRC=${BENCH_FLEET_SOURCE:-../shared/corpus/pprof/go-cpu.pb.gz}
[ -r "$SRC" ] || SRC=/work/shared/corpus/pprof/go-cpu.pb.gz
D=${BENCH_TMP:-/tmp}/stoke-individual-bench-$HOSTS-$HOURS
START=$(( (1700000000000 / 3600000) * 3600000 ))
END=$(( START + HOURS * 3600000 ))

if [ ! -d "$D/s" ]; then
    echo "generating $HOSTS hosts x $HOURS h (compacted) from $SRC ..." >&2
    $Q generate --store "$D/s" --hosts "$HOSTS" --services 1 --hours "$HOURS" --start "$START" \
        --compacted "$SRC" >&2
fi

pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null' EXIT
start() {
    $Q --store "$D/s" --listen 127.0.0.1:0 --query-timeout 120 >/dev/null 2>"$D/q.log" &
    pid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$D/q.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

PT=process_cpu:cpu:nanoseconds:cpu:nanoseconds
SEL='{service_name="svc-00"}'
J='Content-Type: application/json'
STEP_S=$(( HOURS * 3600 / 100 ))   # about 100 slots / points
# name | curl arguments (relative URL last)
cases() {
    cat <<EOF
flamegraph (whole range, reference)|/api/v1/flamegraph?query=$(python3 -c 'import urllib.parse,sys;print(urllib.parse.quote(sys.argv[1]))' "$SEL")&from=$START&until=$END
heatmap, native /api/v1/heatmap|/api/v1/heatmap?query=$(python3 -c 'import urllib.parse,sys;print(urllib.parse.quote(sys.argv[1]))' "$SEL")&from=$START&until=$END
SelectHeatmap with exemplars (Connect JSON)|-H|$J|--data-binary|{"profileTypeID":"$PT","labelSelector":"$(printf '%s' "$SEL" | sed 's/"/\\"/g')","start":$START,"end":$END,"step":$STEP_S,"queryType":"HEATMAP_QUERY_TYPE_INDIVIDUAL","exemplarType":"EXEMPLAR_TYPE_INDIVIDUAL"}|/querier.v1.QuerierService/SelectHeatmap
SelectSeries, no exemplars (Connect JSON)|-H|$J|--data-binary|{"profileTypeID":"$PT","labelSelector":"$(printf '%s' "$SEL" | sed 's/"/\\"/g')","start":$START,"end":$END,"step":$STEP_S}|/querier.v1.QuerierService/SelectSeries
SelectSeries with exemplars (Connect JSON)|-H|$J|--data-binary|{"profileTypeID":"$PT","labelSelector":"$(printf '%s' "$SEL" | sed 's/"/\\"/g')","start":$START,"end":$END,"step":$STEP_S,"exemplarType":"EXEMPLAR_TYPE_INDIVIDUAL"}|/querier.v1.QuerierService/SelectSeries
EOF
}

run() { # URL args...: prints seconds, fails on non-200
    local out code
    out=$(curl -s -o "$D/body" -w '%{http_code} %{time_total}' "${@:2}" "http://127.0.0.1:$port$1")
    code=${out% *}
    [ "$code" = 200 ] || { echo "HTTP $code: $(head -c 300 "$D/body")" >&2; exit 1; }
    echo "${out#* }"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-48s %10s %10s\n' "query ($HOSTS hosts x $HOURS h, compacted)" "cold s" "warm s"
while IFS='|' read -r name rest; do
    IFS='|' read -r -a args <<<"$rest"
    url=${args[${#args[@]}-1]}
    unset 'args[${#args[@]}-1]'
    start
    cold=$(run "$url" "${args[@]}")
    warm=$(for _ in 1 2 3 4 5; do run "$url" "${args[@]}"; done | median)
    if [ "$name" = "heatmap, native /api/v1/heatmap" ]; then
        count=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["count"])' "$D/body")
        id=$(python3 -c 'import json,sys;d=json.load(open(sys.argv[1]));print(max((c["exemplar"] for s in d["series"] for c in s["cells"]),key=lambda e:e["value"])["id"])' "$D/body")
    fi
    stop
    printf '%-48s %10s %10s\n' "$name" "$cold" "$warm"
done < <(cases)
echo "individual profiles in the range: $count" >&2
start
cold=$(run "/api/v1/flamegraph?profile_id=$id")
warm=$(for _ in 1 2 3 4 5; do run "/api/v1/flamegraph?profile_id=$id"; done | median)
stop
printf '%-48s %10s %10s\n' "one profile by id (/api/v1/flamegraph)" "$cold" "$warm"
