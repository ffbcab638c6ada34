# Shared helpers for the integration tests (sourced, not run).
# Each test counts its checks with pass/fail and ends with `summary`, which
# prints "NAME: N passed, N failed" and returns non-zero on failure.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
AGENT=$ROOT/build/stoke-agent
FIXTURES=$ROOT/build/fixtures
_passed=0
_failed=0

pass() { _passed=$((_passed + 1)); echo "  ok   $*"; }
fail() { _failed=$((_failed + 1)); echo "  FAIL $*"; }
check() { # check "description" command...
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
summary() {
    echo "$1: $_passed passed, $_failed failed"
    [ "$_failed" -eq 0 ]
}
need() { # need CMD: a missing tool fails under CI, skips the test elsewhere
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "${CI:-}" = true ]; then echo "missing required tool: $1" >&2; exit 1; fi
    echo "skipping: $1 is not installed" >&2; exit 0
}
build_fixtures() {
    make -s -C "$ROOT/tests/fixtures" OUT="$FIXTURES" >/dev/null
}
