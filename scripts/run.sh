#!/usr/bin/env bash
# `make run`: profile this machine and show it. Starts one query worker on
# http://localhost:4040 and the agent writing segments into ./data (a
# directory object store): 5 s windows and 15 s flushes here, so the first
# flame graph shows up within half a minute (the production default is
# 10 s / 60 s). Ctrl-C stops both: the agent flushes its last window first
# and prints the machine's hottest functions, and the run ends with exit 0.
# Arguments go to the agent (`make run ARGS="--frequency 99"`); STOKE_DATA
# and STOKE_LISTEN move the store (./data) and the worker (127.0.0.1:4040).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "make run needs root (or CAP_BPF + CAP_PERFMON) to load the eBPF sampler" >&2
    exit 1
fi
data=${STOKE_DATA:-data}
listen=${STOKE_LISTEN:-127.0.0.1:4040}
mkdir -p "$data" || exit 1

# Ctrl-C reaches every process of the terminal's foreground group (make,
# this script, the agent, the worker); a SIGINT or SIGTERM to this script
# alone is passed on to the agent. Either way the agent flushes and exits,
# then the worker is stopped.
query= agent= stopping=false
on_stop() {
    stopping=true
    if [ -n "$agent" ]; then kill -INT "$agent" 2>/dev/null; fi
}
trap on_stop INT TERM
stop_query() {
    if [ -n "$query" ]; then
        kill -TERM "$query" 2>/dev/null
        wait "$query" 2>/dev/null
        query=
    fi
}
trap stop_query EXIT
# wait_for PID: its exit status, through the trapped signals that end a
# wait early (status > 128 with the process still running).
wait_for() {
    local rc r
    wait "$1"
    rc=$?
    while [ $rc -gt 128 ]; do
        wait "$1"
        r=$?
        [ $r -eq 127 ] && break # reaped already: rc was its own status
        rc=$r
    done
    return $rc
}

build/stoke-query --store "$data" --listen "$listen" &
query=$!
sleep 0.5
if ! kill -0 "$query" 2>/dev/null; then
    query=
    echo "stoke-query did not start (is ${listen##*:} taken?)" >&2
    exit 1
fi
$stopping && exit 0
cat <<TXT
Stoke is profiling every process on $(hostname) at 19 Hz.
  open http://${listen/127.0.0.1/localhost} — the first profiles arrive within ~20 s
  segments: $data/default/   self-metrics: http://127.0.0.1:9465/metrics
  Ctrl-C stops (and prints the top functions).
TXT
build/stoke-agent --store "$data" --window 5 --flush 15 --top=25 "$@" &
agent=$!
$stopping && kill -INT "$agent" 2>/dev/null
wait_for "$agent"
rc=$?
agent=
stop_query
if [ $rc -ne 0 ]; then
    echo "stoke-agent stopped with status $rc" >&2
    exit $rc
fi
echo "Stoke stopped. The profiles stay in $data/: build/stoke-query --store $data serves them again."
exit 0
