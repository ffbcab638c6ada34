#!/usr/bin/env bash
# `make run`: profile this machine. Starts the agent writing per-service
# profiles (pprof + folded) into ./data every window, with its self-metrics on
# http://127.0.0.1:9465/metrics, until Ctrl-C; prints the machine's hottest
# functions when it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "make run needs root (or CAP_BPF + CAP_PERFMON) to load the eBPF sampler" >&2
    exit 1
fi
mkdir -p data
echo "Profiling every process on $(hostname) at 19 Hz; profiles land in ./data/<service>/ every 10 s."
echo "Self-metrics: http://127.0.0.1:9465/metrics — Ctrl-C stops and prints the top functions."
exec build/stoke-agent --output-dir data --top=25 "$@"
