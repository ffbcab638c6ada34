#!/usr/bin/env bash
# Runs every cmocka unit-test binary given and prints one closing line
# "unit: N passed, N failed" summing the test cases of all of them.
set -u
dir=$1; shift
passed=0; failed=0; bad_bins=()
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [ $rc -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
        # crashed or sanitizer abort: count the binary as one failure
        failed=$((failed + 1)); bad_bins+=("$bin")
    fi
done
[ ${#bad_bins[@]} -gt 0 ] && echo "binaries that aborted: ${bad_bins[*]}"
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
