#!/usr/bin/env bash
# test_accuracy.sh - Stoke accuracy test: agent vs perf on one fixture.
#
# Usage: tests/integration/test_accuracy.sh FIXTURE SERVICE [perf_compare options...]
#   e.g. tests/integration/test_accuracy.sh hot_c acc-hot-c -f work_a -f work_b -f work_c \
#            --min-symbolized 99
#
# Builds the fixtures if needed, starts build/fixtures/FIXTURE with
# OTEL_SERVICE_NAME=SERVICE, then records it for DURATION seconds at the
# same time with `perf record -e cpu-clock -F FREQ -g -p PID` and with
# build/stoke-agent, and compares the per-function self shares with
# perf_compare.py. Prints `N passed, N failed` last.
#
# Environment:
#   DURATION=20  FREQ=99       recording length (s) and sampling frequency
#   STOKE_AGENT=build/stoke-agent
#   AGENT_ARGS=""              extra agent options (e.g. "--pid PID" is not added by default)
#   STOKE_ACCURACY_SELFTEST=1  no agent: a second perf recording converted
#                              by perf_to_folded.py stands in for it (harness self-test)
#   KEEP=1                     keep the temporary directory
# Exit: 0 all checks passed, 1 a check failed, 2 agent missing / set-up error.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tests/integration"
FIXTURES="$ROOT/build/fixtures"
DURATION=${DURATION:-20}
FREQ=${FREQ:-99}
AGENT=${STOKE_AGENT:-$ROOT/build/stoke-agent}
SELFTEST=${STOKE_ACCURACY_SELFTEST:-0}

if [ $# -lt 2 ]; then
    sed -n '4,7p' "$0" >&2
    exit 2
fi
FIXTURE=$1
SERVICE=$2
shift 2

passed=0
failed=0
pass() {
    passed=$((passed + 1))
    echo "ok: $*"
}
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
}
finish() {
    echo "$FIXTURE: $passed passed, $failed failed"
    [ "$failed" -eq 0 ] && exit 0 || exit 1
}

if [ "$SELFTEST" != 1 ] && [ ! -x "$AGENT" ]; then
    echo "$AGENT does not exist yet: build the agent first (make all)" >&2
    echo "$FIXTURE: 0 passed, 0 failed (agent missing)"
    exit 2
fi
command -v perf >/dev/null || {
    echo "perf not installed (apt-get install linux-perf)" >&2
    exit 2
}

make -s -C "$ROOT/tests/fixtures" OUT="$FIXTURES" >/dev/null || {
    echo "building fixtures failed" >&2
    exit 2
}
[ -x "$FIXTURES/$FIXTURE" ] || {
    echo "no fixture $FIXTURES/$FIXTURE" >&2
    exit 2
}

TMP=$(mktemp -d /tmp/stoke-accuracy.XXXXXX)
FPID=
APID=
KPTR_OLD=
cleanup() {
    for p in $APID $FPID; do
        kill "$p" 2>/dev/null
    done
    wait 2>/dev/null
    if [ -n "$KPTR_OLD" ]; then
        echo "$KPTR_OLD" >/proc/sys/kernel/kptr_restrict
    fi
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Kernel symbols for perf: kptr_restrict must be 0 (restored on exit).
k=$(cat /proc/sys/kernel/kptr_restrict 2>/dev/null || echo 0)
if [ "$k" != 0 ]; then
    if echo 0 >/proc/sys/kernel/kptr_restrict 2>/dev/null; then
        KPTR_OLD=$k
    else
        echo "warning: kernel.kptr_restrict=$k and not settable: perf has no kernel symbols" >&2
    fi
fi

# The fixture outlives both recordings.
OTEL_SERVICE_NAME="$SERVICE" "$FIXTURES/$FIXTURE" $((DURATION + 8)) &
FPID=$!
sleep 1
if kill -0 "$FPID" 2>/dev/null; then pass "fixture $FIXTURE running (pid $FPID)"; else
    fail "fixture $FIXTURE did not start"
    finish
fi

OUTDIR="$TMP/agent"
BID="$TMP/buildid" # private perf build-id cache (not ~/.debug)
mkdir -p "$OUTDIR" "$BID"
if [ "$SELFTEST" = 1 ]; then
    perf --buildid-dir "$BID" record -q -e cpu-clock -F "$FREQ" -g -p "$FPID" \
        -o "$TMP/agent.perf.data" \
        -- sleep "$DURATION" >"$TMP/agent.log" 2>&1 &
    APID=$!
else
    # shellcheck disable=SC2086
    "$AGENT" --output-dir "$OUTDIR" --duration "$DURATION" --frequency "$FREQ" \
        --debug-dir "$FIXTURES/debug" ${AGENT_ARGS:-} >"$TMP/agent.log" 2>&1 &
    APID=$!
fi
perf --buildid-dir "$BID" record -q -e cpu-clock -F "$FREQ" -g -p "$FPID" -o "$TMP/perf.data" \
    -- sleep "$DURATION" >"$TMP/perf.log" 2>&1
prc=$?
wait "$APID"
arc=$?
APID=
if [ $prc -eq 0 ]; then pass "perf record"; else
    fail "perf record exited $prc: $(tail -3 "$TMP/perf.log")"
fi
if [ $arc -eq 0 ]; then pass "agent exited 0"; else
    fail "agent exited $arc; last log lines:"
    tail -5 "$TMP/agent.log"
fi

# Let perf find symbols of stripped fixtures through their debug files:
# in the private build-id cache filled by perf record, each debug file is
# placed as `<cache entry>/debug`.
if [ -d "$FIXTURES/debug/.build-id" ]; then
    for dbg in "$FIXTURES"/debug/.build-id/*/*.debug; do
        [ -e "$dbg" ] || continue
        id=$(basename "$(dirname "$dbg")")$(basename "$dbg" .debug)
        link="$BID/.build-id/${id:0:2}/${id:2}"
        [ -e "$link" ] && cp "$dbg" "$(readlink -f "$link")/debug"
    done
fi
perf --buildid-dir "$BID" script --no-inline -i "$TMP/perf.data" >"$TMP/perf.txt" 2>"$TMP/perf-script.log"
if [ -s "$TMP/perf.txt" ]; then pass "perf script"; else
    fail "perf script produced nothing: $(tail -3 "$TMP/perf-script.log")"
fi

if [ "$SELFTEST" = 1 ]; then
    mkdir -p "$OUTDIR/$SERVICE"
    perf --buildid-dir "$BID" script --no-inline -i "$TMP/agent.perf.data" \
        >"$TMP/agent.perf.txt" 2>/dev/null
    python3 "$HERE/perf_to_folded.py" --inline "$TMP/agent.perf.txt" >"$OUTDIR/$SERVICE/0.folded"
fi

if ls "$OUTDIR/$SERVICE"/*.folded >/dev/null 2>&1; then
    pass "agent wrote $(ls "$OUTDIR/$SERVICE"/*.folded | wc -l) folded file(s) for $SERVICE"
else
    fail "no $OUTDIR/$SERVICE/*.folded (agent output: $(ls "$OUTDIR" | head -5 | tr '\n' ' '))"
    finish
fi
if [ "$SELFTEST" != 1 ]; then
    if ls "$OUTDIR/$SERVICE"/*.pb.gz >/dev/null 2>&1; then pass "agent wrote pprof for $SERVICE"; else
        fail "no $OUTDIR/$SERVICE/*.pb.gz"
    fi
fi

python3 "$HERE/perf_compare.py" "$TMP/perf.txt" "$OUTDIR/$SERVICE" "$@" | tee "$TMP/compare.txt"
res=$(sed -n 's/^RESULT passed=\([0-9]*\) failed=\([0-9]*\)$/\1 \2/p' "$TMP/compare.txt")
if [ -n "$res" ]; then
    passed=$((passed + ${res% *}))
    failed=$((failed + ${res#* }))
else
    fail "perf_compare.py did not run"
fi
finish
