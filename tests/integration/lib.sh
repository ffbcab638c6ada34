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
build_id() { # build_id FILE: its GNU build-id (hex), or nothing
    readelf -n "$1" 2>/dev/null | sed -n 's/.*Build ID: //p' | head -1
}
# stripped_busy_libc FX DEBUG: tests/fixtures/busy_libc.c built with -g and
# a build-id into FX, its debug file kept apart (objcopy --only-keep-debug)
# as DEBUG, FX stripped; sets FX_BID. 1 when it cannot be built.
stripped_busy_libc() {
    gcc -std=gnu11 -O1 -g -fno-omit-frame-pointer -Wl,--build-id=sha1 -o "$1" \
        "$ROOT/tests/fixtures/busy_libc.c" || return 1
    mkdir -p "$(dirname "$2")"
    objcopy --only-keep-debug "$1" "$2" && strip --strip-all "$1" || return 1
    FX_BID=$(build_id "$1")
}
# libc_debug NAME: sets LIBC_BID and LIBC_DEBUG, libc6-dbg's debug file for
# this machine's libc. Without one: fails under CI, else exits 0 (skips).
libc_debug() {
    local libc
    libc=$(awk '$6 ~ /\/libc\.so\.6$/ {print $6; exit}' /proc/self/maps)
    LIBC_BID=$(build_id "$libc")
    LIBC_DEBUG=/usr/lib/debug/.build-id/${LIBC_BID:0:2}/${LIBC_BID:2}.debug
    if [ -z "$LIBC_BID" ] || [ ! -r "$LIBC_DEBUG" ]; then
        if [ "${CI:-}" = true ]; then echo "missing libc's debug file (libc6-dbg): $LIBC_DEBUG" >&2; exit 1; fi
        echo "$1: skipping: no debug file for $libc (install libc6-dbg)" >&2
        exit 0
    fi
}

# start_query_worker LOG QUERY ARGS...: starts `QUERY ARGS... --listen
# 127.0.0.1:0` in the background, its stderr in LOG; sets $pid, and $port
# once it says it serves (5 s at most). Non-zero when it does not.
start_query_worker() {
    local log=$1 i; shift
    port=
    : >"$log" # emptied first: a reused log must not show the last port
    "$@" --listen 127.0.0.1:0 >/dev/null 2>"$log" &
    pid=$!
    for i in $(seq 50); do
        port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    return 1
}

# The receiver tests' query side (test_receive*.sh): a worker over a store
# and its answers. They use the caller's $pids (appended to), $FROM and
# $UNTIL (milliseconds).
start_worker() { # start_worker STORE: starts stoke-query; sets $qport
    local pid port rc
    start_query_worker "$1.query.log" "$ROOT/build/stoke-query" --store "$1"
    rc=$?
    pids+=($pid)
    qport=$port
    return $rc
}
services_of() { # services_of PORT [tenant]: the stored service names, sorted, one line
    curl -s -G "http://127.0.0.1:$1/api/v1/label_values" --data-urlencode name=service_name \
        --data-urlencode "from=$FROM" --data-urlencode "until=$UNTIL" ${2:+--data-urlencode "tenant=$2"} |
        python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin)["values"])))'
}
# same_tops PORT_A PORT_B PROFILE_TYPE: every service of worker A against
# worker B, per function (top_compare.py); sets $n (equal) and $bad (not),
# and prints what differs. Needs $work and $T.
same_tops() {
    local svc out
    n=0 bad=0
    for svc in $(services_of "$1"); do
        top_json "$1" "$svc" "$3" >"$work/a.json"
        top_json "$2" "$svc" "$3" >"$work/b.json"
        if out=$(python3 "$T/top_compare.py" "$work/a.json" "$work/b.json"); then n=$((n + 1)); else
            bad=$((bad + 1)); echo "  $svc: $out"; fi
    done
}
# same_as_local PORT DIR SERVICE PROFILE_TYPE: SERVICE's per-function totals
# on worker PORT against an agent's local pprof files of it
# (DIR/SERVICE/*.pb.gz, read by Google's parser, $work/pprof_top); sets
# $out (what top_compare.py says) and returns its status. Needs $work, $T.
same_as_local() {
    "$work/pprof_top" -type cpu -unit nanoseconds "$2/$3"/*.pb.gz >"$work/want.json"
    top_json "$1" "$3" "$4" >"$work/b.json"
    out=$(python3 "$T/top_compare.py" "$work/want.json" "$work/b.json")
}
top_json() { # top_json PORT SERVICE PROFILE_TYPE [tenant]: /api/v1/top of one service
    curl -s -G "http://127.0.0.1:$1/api/v1/top" --data-urlencode "from=$FROM" \
        --data-urlencode "until=$UNTIL" --data-urlencode "query={service_name=\"$2\"}" \
        --data-urlencode "profile_type=$3" --data-urlencode limit=100000 \
        ${4:+--data-urlencode "tenant=$4"}
}
