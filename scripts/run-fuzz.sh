#!/usr/bin/env bash
# Runs each libFuzzer target in DIR for SECONDS, seeded from tests/fuzz/corpus/<name>
# when that folder exists. Prints "fuzz: N passed, N failed".
set -u
dir=$1; secs=$2
passed=0; failed=0
for f in "$dir"/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    work=$(mktemp -d)
    seeds=()
    [ -d "tests/fuzz/corpus/$name" ] && seeds+=("tests/fuzz/corpus/$name")
    if "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
        "$work" "${seeds[@]}" >"$work.log" 2>&1; then
        passed=$((passed + 1)); echo "fuzz $name: ok"
    else
        failed=$((failed + 1)); echo "fuzz $name: FAILED"; tail -40 "$work.log"
    fi
    rm -rf "$work" "$work.log"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
