#!/usr/bin/env bash
# The agent's memory under process churn (DESIGN.md section 6: RSS <= 30 MB
# steady, and at peak under churn and on a busy host).
#
# For 32 s the host forks and execs /bin/true as fast as two processes can,
# and runs a loop of short-lived programs (python3, perl, sh, sed, awk, sort,
# gzip...), while the agent samples at 99 Hz with 5 s windows, symbolizing
# with libc's separate DWARF (libc6-dbg: 10 MB of compressed sections, the
# largest part of what the agent used to hold). Checks:
#   - peak RSS while sampling (VmHWM, polled; and the agent's own
#     stoke_peak_rss_bytes) <= 36 MB. Before the fix of issue #11 item 8 this
#     run peaked at 47 MB (38 MB with --symbol-cache-mb 12); after it, at
#     22-25 MB on this 2-core VM, loaded by other builds or not. The bound
#     sits between the two with margin on either side: the 30 MB target
#     itself is too close to a loaded host's peaks to be a reliable
#     pass/fail line, and bench/rss.sh reports it instead.
#   - steady RSS (median after the first two windows) <= 30 MB (was 39,
#     now 19);
#   - the symbol caches stay within their cap (stoke_symbol_cache_bytes <=
#     1.25 x the default --symbol-cache-mb of 12, the most one window may
#     hold);
#   - DWARF is really in use: libc's compressed sections were inflated into a
#     scratch file (stoke_dwarf_scratch_bytes > 0), not the heap
#     (stoke_dwarf_heap_inflated_total = 0), and lookups were resolved.
set -u
. "$(dirname "$0")/lib.sh"
need python3
need curl
[ "$(id -u)" -eq 0 ] || { echo "test_agent_rss: needs root (BPF)"; exit 1; }
build_fixtures
make -s -C "$ROOT" build/bench/stoke-bench-workload >/dev/null || exit 1

libc=$(awk '$6 ~ /\/libc\.so\.6$/ {print $6; exit}' /proc/self/maps)
bid=$(readelf -n "$libc" 2>/dev/null | sed -n 's/.*Build ID: //p' | head -1)
dbg=/usr/lib/debug/.build-id/${bid:0:2}/${bid:2}.debug
if [ -z "$bid" ] || [ ! -r "$dbg" ]; then
    if [ "${CI:-}" = true ]; then echo "missing libc's debug file (libc6-dbg): $dbg" >&2; exit 1; fi
    echo "skipping: no debug file for $libc (install libc6-dbg)" >&2
    exit 0
fi

SECS=32
CAP_MB=12 # --symbol-cache-mb's default
BOUND_PEAK_MB=36
BOUND_STEADY_MB=30
T=$(mktemp -d)
WPID=
MIXPID=
cleanup() {
    [ -n "$MIXPID" ] && kill -- "-$MIXPID" 2>/dev/null
    [ -n "$WPID" ] && kill "$WPID" 2>/dev/null
    wait 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

echo "== agent RSS under process churn ($SECS s at 99 Hz, libc DWARF from $dbg)"
"$ROOT/build/bench/stoke-bench-workload" --fixtures "$FIXTURES" --dir "$T/bin" --idle 0 --no-hot \
    --churn-rate max --churners 2 --seconds $((SECS + 30)) >/dev/null 2>&1 &
WPID=$!
setsid bash -c 'while :; do
    python3 -c "import json; json.dumps(list(range(1000)))"
    perl -e "my %h; \$h{\$_} = 1 for 1 .. 10000;"
    sh -c "echo x | sed s/x/y/ | tr y z" >/dev/null
    awk "BEGIN { for (i = 0; i < 20000; i++) s += i }"
    sort /etc/services | uniq -c >/dev/null
    gzip -c /etc/services >/dev/null
    ls -l /usr/bin >/dev/null
done' >/dev/null 2>&1 &
MIXPID=$!
sleep 2
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# /metrics every 2 s while the agent runs; the last page after a drain is kept
(while sleep 2; do
    curl -s -m 2 "http://127.0.0.1:$port/metrics" >"$T/metrics.new" 2>/dev/null || continue
    grep -q '^stoke_windows_total [1-9]' "$T/metrics.new" && mv "$T/metrics.new" "$T/metrics"
done) &
SCRAPER=$!
python3 "$ROOT/bench/measure.py" --json "$T/measure.json" --seconds "$SECS" --warmup 11 \
    --stderr "$T/agent.err" -- "$AGENT" --frequency 99 --window 5 \
    --metrics-addr "127.0.0.1:$port" --store "$T/store"
rc=$?
kill "$SCRAPER" 2>/dev/null
wait "$SCRAPER" 2>/dev/null
touch "$T/metrics"

val() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], 0))' \
    "$T/measure.json" "$1"; }
metric() { awk -v m="$1" '$1 == m {printf "%d\n", $2; f = 1} END {if (!f) print -1}' "$T/metrics"; }
peak_kb=$(val sampling_peak_rss_kb)
steady_kb=$(val steady_rss_kb)
forks=$(val host_forks_per_s)
echo "  peak $((peak_kb / 1024)) MB, steady $((steady_kb / 1024)) MB, $forks forks/s on the host"
grep -o 'peak RSS.*' "$T/agent.err" | head -1 | sed 's/^/  agent: /'

check "agent ran and exited 0" test "$rc" -eq 0 -a "$(val exit_code)" = 0
check "peak RSS while sampling <= $BOUND_PEAK_MB MB" test "$peak_kb" -gt 0 -a \
    "$peak_kb" -le $((BOUND_PEAK_MB * 1024))
check "steady RSS <= $BOUND_STEADY_MB MB" test "$steady_kb" -gt 0 -a \
    "$steady_kb" -le $((BOUND_STEADY_MB * 1024))
check "/metrics reports a peak RSS <= $BOUND_PEAK_MB MB" test "$(metric stoke_peak_rss_bytes)" -gt 0 -a \
    "$(metric stoke_peak_rss_bytes)" -le $((BOUND_PEAK_MB << 20))
check "symbol caches within 1.25 x their $CAP_MB MB cap" \
    test "$(metric stoke_symbol_cache_bytes)" -ge 0 -a \
    "$(metric stoke_symbol_cache_bytes)" -le $((CAP_MB * 5 << 18))
check "libc's DWARF inflated into a scratch file, not the heap" \
    test "$(metric stoke_dwarf_scratch_bytes)" -gt 0 -a "$(metric stoke_dwarf_heap_inflated_total)" = 0
check "addresses resolved" test "$(metric stoke_symbol_resolved_total)" -gt 1000
check "DWARF opened" grep -q ' [1-9][0-9]* DWARF opens' "$T/agent.err"
summary test_agent_rss
