#!/usr/bin/env bash
# Agent overhead next to `perf record -a -g`, one after the other on the same
# workload (both CPUs busy with build/fixtures/hot_c), at each frequency.
# Prints CPU-seconds (user+sys, from getrusage of the child), peak RSS, and
# for the agent its BPF time per sample (kernel.bpf_stats_enabled=1) and
# samples drained. Usage: scripts/overhead.sh [SECONDS] [FREQ...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}; shift || true

[ $# -gt 0 ] && freqs=("$@") || freqs=(19 99)
make -s -C tests/fixtures OUT="$PWD/build/fixtures" >/dev/null
old_stats=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
sysctl -qw kernel.bpf_stats_enabled=1 || true
tmp=$(mktemp -d)
trap 'sysctl -qw kernel.bpf_stats_enabled=$old_stats || true; rm -rf "$tmp"' EXIT

measure() { # prints "cpu_seconds peak_rss_kb" of the command
    python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.3f} {r.ru_maxrss}")
PY
}

printf '%-28s %8s %10s %12s %s\n' tool freq cpu_s peak_rss_mb notes
for f in "${freqs[@]}"; do
    build/fixtures/hot_c $((secs + 5)) >/dev/null & w=$!
    sleep 1
    read -r cpu rss < <(measure build/stoke-agent --output-dir "$tmp/out" --duration "$secs" \
        --frequency "$f" --metrics-addr off 2>"$tmp/agent.log")
    notes=$(sed -n 's/.*msg="stopped after \(.*\)"/\1/p' "$tmp/agent.log" | tail -1)
    printf '%-28s %8s %10s %12.1f %s\n' stoke-agent "$f" "$cpu" "$(awk "BEGIN{print $rss/1024}")" "$notes"
    wait $w
    build/fixtures/hot_c $((secs + 5)) >/dev/null & w=$!
    sleep 1
    read -r cpu rss < <(measure perf record -e cpu-clock -F "$f" -a -g -o "$tmp/perf.data" -- sleep "$secs")
    printf '%-28s %8s %10s %12.1f %s\n' "perf record -a -g" "$f" "$cpu" "$(awk "BEGIN{print $rss/1024}")" \
        "perf.data $(du -k "$tmp/perf.data" | cut -f1) KiB"
    wait $w
    rm -rf "$tmp/out" "$tmp/perf.data"
done
