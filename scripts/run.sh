#!/usr/bin/env bash
# `make run`: profile this machine and show it. Starts one query worker on
# http://localhost:4040 and the agent writing segments into ./data (a
# directory object store): 5 s windows and 15 s flushes here, so the first
# flame graph shows up within half a minute (the production default is
# 10 s / 60 s). Ctrl-C stops both; the agent flushes its last window first
# and prints the machine's hottest functions.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "make run needs root (or CAP_BPF + CAP_PERFMON) to load the eBPF sampler" >&2
    exit 1
fi
mkdir -p data
build/stoke-query --store data --listen 127.0.0.1:4040 &
query=$!
trap 'kill $query 2>/dev/null; wait $query 2>/dev/null' EXIT
sleep 0.5
kill -0 $query 2>/dev/null || { echo "stoke-query did not start (is port 4040 taken?)" >&2; exit 1; }
cat <<TXT
Stoke is profiling every process on $(hostname) at 19 Hz.
  open http://localhost:4040 — the first profiles arrive within ~20 s
  segments: ./data/default/   self-metrics: http://127.0.0.1:9465/metrics
  Ctrl-C stops (and prints the top functions).
TXT
build/stoke-agent --store data --window 5 --flush 15 --top=25 "$@"
