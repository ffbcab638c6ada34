#!/usr/bin/env bash
# `make test-integration`: every integration test, one after another (they
# sample the whole machine, so they must not overlap). Each prints a line
# "NAME: N passed, N failed"; this script adds them up into the closing line.
set -u
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "integration tests need root (eBPF, perf)"; exit 1; }
sysctl -qw kernel.kptr_restrict=0 2>/dev/null || true
sysctl -qw kernel.perf_event_paranoid=-1 2>/dev/null || true

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {
    echo "### $*"
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -ne 0 ] && ! tail -1 "$log" | grep -q ' failed$'; then
        # the name as the closing sum reads it (no path): a script that
        # could not run, or died before its summary, counts as a failure
        echo "$(basename "$1" .sh): 0 passed, 1 failed" | tee -a "$log"
    fi
}

T=tests/integration
run $T/test_errors.sh
run $T/test_service_names.sh
run $T/test_kubelet.sh
run $T/test_agent_rss.sh
run $T/test_debuginfod.sh
run $T/test_deferred_symbols.sh
run $T/test_store_s3.sh
run $T/test_query_api.sh
run $T/test_peers_dns.sh
run $T/test_compact.sh
run $T/test_one_object.sh
run $T/test_compact_replicas.sh
run $T/test_pyroscope_api.sh
run $T/test_jfr.sh
run $T/test_drilldown.sh
run $T/test_individual.sh
run $T/test_recording_rules.sh
run $T/test_query_limits.sh
run $T/test_query_memory.sh
run $T/test_query_auth.sh
run $T/test_e2e_s3.sh
STOKE_QUERY_BIN=build/stoke-query run $T/test_web.sh
run $T/test_web_views.sh
run $T/test_exporters.sh
run $T/test_receive.sh
run $T/test_receive_grpc.sh
run $T/test_packages.sh
run $T/test_image.sh
run $T/test_k8s_manifests.sh
run $T/test_make_targets.sh
if [ -x $T/test_all_accuracy.sh ]; then run $T/test_all_accuracy.sh; fi
run $T/test_unwind.sh
run $T/test_runtimes.sh

passed=0; failed=0
while read -r p f; do passed=$((passed + p)); failed=$((failed + f)); done < <(
    sed -n 's/^[A-Za-z0-9_.-]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log")
echo "integration: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
