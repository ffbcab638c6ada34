#!/usr/bin/env bash
# The four accuracy fixtures, each profiled by stoke-agent and by perf record
# at the same time and compared per function (±2 percentage points), plus
# symbolization, demangling, inlined frames, build-id debug files and kernel
# frames. Each run prints "FIXTURE: N passed, N failed".
set -u
T=$(dirname "$0")
# 499 Hz for 20 s gives ~20k samples per fixture: the standard error of a
# share difference is then ~0.5 points, so the ±2 point check is ~4 sigma
# and does not flake; at 99 Hz it would be ~1.1 points (2 sigma).
export FREQ=${FREQ:-499} DURATION=${DURATION:-20}
rc=0
$T/test_accuracy.sh hot_c acc-hot-c -f work_a -f work_b -f work_c --min-symbolized 99 || rc=1
$T/test_accuracy.sh hot_cpp acc-hot-cpp -f 'stoke::Matrix::multiply(int)' \
    -f 'stoke::Accumulator<double>::sum' -f stoke::Hasher::digest \
    --collapse-inlined mix_step --expect-frame mix_step --expect-min 5 --min-symbolized 99 || rc=1
$T/test_accuracy.sh hot_stripped acc-hot-stripped -f stripped_hot_x -f stripped_hot_y \
    --min-symbolized 99 || rc=1
$T/test_accuracy.sh hot_syscall acc-hot-syscall -f read_zero || rc=1
exit $rc
