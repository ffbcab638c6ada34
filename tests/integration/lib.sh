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
need_browser() { # Chromium and playwright-core for the page tests: sets CHROMIUM, PLAYWRIGHT_DIR
    need node
    CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
    PLAYWRIGHT_DIR=${PLAYWRIGHT_DIR:-$ROOT/build/web-test}
    if [ ! -x "$CHROMIUM" ]; then
        [ "${CI:-}" = true ] && { echo "missing required tool: chromium ($CHROMIUM)" >&2; exit 1; }
        echo "skipping: chromium is not installed (apt-get install chromium)" >&2; exit 0
    fi
    if [ ! -f "$PLAYWRIGHT_DIR/node_modules/playwright-core/package.json" ]; then
        [ "${CI:-}" = true ] && { echo "missing required tool: playwright-core in $PLAYWRIGHT_DIR" >&2; exit 1; }
        echo "skipping: playwright-core is not installed (cp tests/integration/web/package.json build/web-test/ && npm install --prefix build/web-test)" >&2
        exit 0
    fi
}
count_lines() { # count_lines "$out": a driver's "PASS what" / "FAIL what" lines as checks
    local line
    while IFS= read -r line; do
        case $line in
            "PASS "*) pass "${line#PASS }" ;;
            "FAIL "*) fail "${line#FAIL }" ;;
            *) [ -n "$line" ] && echo "       $line" ;;
        esac
    done <<<"$1"
}
build_fixtures() {
    make -s -C "$ROOT/tests/fixtures" OUT="$FIXTURES" >/dev/null
}
