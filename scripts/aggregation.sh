#!/usr/bin/env bash
# What the in-kernel aggregation buys: samples per distinct
# {pid, kernel stack, user stack} row per window, for each test workload
# alone and for a busy mixed host (the CPU fixtures + a compiler loop that
# churns processes + a syscall-heavy process). Usage: scripts/aggregation.sh [SEC]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
make -s -C tests/fixtures OUT="$PWD/build/fixtures" >/dev/null
run() { # LABEL FREQ: profile the whole machine for SEC, print samples per row
    local line
    # the "stopped after" line: an "unwinding:" line follows it with the table walker
    line=$(build/stoke-agent --duration "$secs" --frequency "$2" --metrics-addr off 2>&1 | grep "stopped after" | tail -1)
    printf '%-32s %4s Hz  %s\n' "$1" "$2" \
        "$(sed -n 's/.*samples drained in \([0-9]*\) rows (\([0-9.]*\) samples\/row).*/\2 samples per row (\1 rows)/p' <<<"$line")"
}
compile_loop() {
    local src
    src=$(mktemp --suffix=.c)
    cp tests/fixtures/hot_c.c "$src"
    while :; do gcc -O2 -c -I tests/fixtures "$src" -o /dev/null 2>/dev/null; done
}
for f in 19 99; do
    build/fixtures/hot_c $((secs + 2)) >/dev/null & sleep 0.5; run "hot_c (2 threads)" $f; wait
    build/fixtures/hot_cpp $((secs + 2)) >/dev/null & sleep 0.5; run "hot_cpp (inlined C++)" $f; wait
    build/fixtures/hot_syscall $((secs + 2)) >/dev/null & sleep 0.5; run "hot_syscall (kernel)" $f; wait
    build/fixtures/hot_c $((secs + 2)) >/dev/null & p1=$!
    build/fixtures/hot_syscall $((secs + 2)) >/dev/null & p2=$!
    compile_loop & p3=$!
    sleep 0.5; run "mixed: C + syscalls + gcc loop" $f
    kill $p3 2>/dev/null; pkill -P $p3 2>/dev/null || true; wait $p1 $p2 2>/dev/null || true
done
