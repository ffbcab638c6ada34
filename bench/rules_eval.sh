#!/usr/bin/env bash
# Recording rules' cost per flush (docs/architecture.md, Recording rules):
# a generated fleet (HOSTS hosts x SERVICES services, one hour, one segment
# per host per FLUSH seconds) compacted RUNS times with three rules (by
# service; by service and host over two services; a function_name filter)
# and RUNS times without, each from a fresh copy. Prints compaction's own
# "rules:" line (CPU time of the evaluation, the bytes compaction read for
# the block, which the rules reuse) and the wall time of both.
#   bench/rules_eval.sh [HOSTS SERVICES FLUSH RUNS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
Q=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}
HOSTS=${1:-20} SERVICES=${2:-4} FLUSH=${3:-60} RUNS=${4:-3}
PT=process_cpu:cpu:nanoseconds:cpu:nanoseconds
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

H0=$(( ($(date +%s) / 3600 - 3) * 3600000 ))
"$Q" generate --store "$work/base" --hosts "$HOSTS" --services "$SERVICES" --hours 1 \
    --flush "$FLUSH" --start "$H0" "$CORPUS/go-cpu.pb.gz" | tail -1
mkdir -p "$work/base/default/rules"
rule() { protoc --encode=settings.v1.RecordingRule -I "$ROOT/proto" pyroscope/settings.proto \
    <<<"$2" >"$work/base/default/rules/$1.rule"; }
rule by-svc "id: \"by-svc\" metric_name: \"profiles_recorded_cpu\" matchers: \"{__profile_type__=\\\"$PT\\\"}\" group_by: \"service_name\""
rule by-host "id: \"by-host\" metric_name: \"profiles_recorded_cpu_host\" matchers: \"{__profile_type__=\\\"$PT\\\", service_name=~\\\"svc-0[01]\\\"}\" group_by: \"service_name\" group_by: \"host_name\""
rule fn "id: \"fn\" metric_name: \"profiles_recorded_mpark\" matchers: \"{__profile_type__=\\\"$PT\\\"}\" group_by: \"service_name\" stacktrace_filter { function_name { function_name: \"runtime.mPark\" } }"
for i in $(seq "$RUNS"); do
    for mode in rules none; do
        rm -rf "$work/s"
        cp -r "$work/base" "$work/s"
        [ "$mode" = none ] && rm -rf "$work/s/default/rules"
        t0=$(date +%s%N)
        out=$("$Q" compact --store "$work/s")
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        echo "run $i $mode: compact ${ms} ms wall"
        grep '^rules:' <<<"$out" || true
    done
done
