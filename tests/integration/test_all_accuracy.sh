#!/usr/bin/env bash
# The four accuracy fixtures, each profiled by stoke-agent and by perf record
# at the same time and compared per function (±2 percentage points), plus
# symbolization, demangling, inlined frames, build-id debug files and kernel
# frames. Each run prints "FIXTURE: N passed, N failed".
set -u
T=$(dirname "$0")
rc=0
$T/test_accuracy.sh hot_c acc-hot-c -f work_a -f work_b -f work_c --min-symbolized 99 || rc=1
$T/test_accuracy.sh hot_cpp acc-hot-cpp -f 'stoke::Matrix::multiply(int)' \
    -f 'stoke::Accumulator<double>::sum' -f stoke::Hasher::digest \
    --collapse-inlined mix_step --expect-frame mix_step --expect-min 5 --min-symbolized 99 || rc=1
$T/test_accuracy.sh hot_stripped acc-hot-stripped -f stripped_hot_x -f stripped_hot_y \
    --min-symbolized 99 || rc=1
$T/test_accuracy.sh hot_syscall acc-hot-syscall -f rep_stos_alternative -f read_zero || rc=1
exit $rc
