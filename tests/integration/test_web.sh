#!/usr/bin/env bash
# The web page of stoke-query (query/web/index.html) in a real browser:
# playwright-core (npm, pinned in tests/integration/web/package.json, installed
# into build/web-test) drives Debian's Chromium.
#
#   STOKE_QUERY_URL=http://127.0.0.1:4040  test against a running stoke-query
#                   (STOKE_WEB_KNOWN=1 if it holds the mock's known profile;
#                   STOKE_WEB_SERVICE, STOKE_WEB_FROM, STOKE_WEB_UNTIL pick the data)
#   STOKE_QUERY_BIN=build/stoke-query  start that worker on a temporary store
#                   loaded with the mock's known profile (web/make_pprof.py)
#   neither         start tests/integration/web/mock_server.py (canned API)
#
# Screenshots go to build/web-screenshots/*.png.
# Deps: apt-get install chromium; cp tests/integration/web/package.json build/web-test/ && npm install --prefix build/web-test
set -u
. "$(dirname "$0")/lib.sh"
need_browser
need python3

echo "== web page"
mock_pid=
cleanup() {
    [ -n "$mock_pid" ] && kill "$mock_pid" 2>/dev/null
    rm -f "${mock_out:-}"
    [ -n "${tmp:-}" ] && rm -rf "$tmp"
}
trap cleanup EXIT
if [ -n "${STOKE_QUERY_URL:-}" ]; then
    base=$STOKE_QUERY_URL
    known=${STOKE_WEB_KNOWN:-0}
    mock=0
elif [ -n "${STOKE_QUERY_BIN:-}" ]; then
    # the real worker on a temporary store holding the mock's known profile
    tmp=$(mktemp -d)
    mock_out=$tmp/log
    for svc in checkout search; do
        python3 "$ROOT/tests/integration/web/make_pprof.py" "$svc" "$tmp/$svc.pb.gz" &&
            "$STOKE_QUERY_BIN" import --store "$tmp/store" --service "$svc" "$tmp/$svc.pb.gz" >/dev/null
        check "import the known profile of $svc" test $? -eq 0
    done
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$STOKE_QUERY_BIN" --store "$tmp/store" --listen "127.0.0.1:$port" --web-dir "$ROOT/query/web" >"$mock_out" 2>&1 &
    mock_pid=$!
    base=http://127.0.0.1:$port
    for _ in $(seq 50); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    check "stoke-query starts" curl -fs "$base/healthz" -o /dev/null
    known=1
    mock=0
else
    mock_out=$(mktemp)
    python3 "$ROOT/tests/integration/web/mock_server.py" --port 0 >"$mock_out" 2>&1 &
    mock_pid=$!
    for _ in $(seq 50); do grep -q '^listening ' "$mock_out" && break; sleep 0.1; done
    base=$(sed -n 's/^listening //p' "$mock_out")
    check "mock server starts" test -n "$base"
    [ -n "$base" ] || { cat "$mock_out"; summary test_web; exit 1; }
    known=1
    mock=1
fi
echo "   page at $base"

shots=$ROOT/build/web-screenshots
rm -f "$shots"/[0-9]*.png  # its own; test_web_views.sh writes views-*.png
out=$(BASE_URL=$base KNOWN=$known MOCK=$mock CHROMIUM=$CHROMIUM PLAYWRIGHT_DIR=$PLAYWRIGHT_DIR \
    SHOTS=$shots WEB_SERVICE=${STOKE_WEB_SERVICE:-} WEB_FROM=${STOKE_WEB_FROM:-now-1h} \
    WEB_UNTIL=${STOKE_WEB_UNTIL:-now} timeout 180 node "$ROOT/tests/integration/web/test.mjs" 2>&1)
rc=$?
count_lines "$out"
check "browser test exits 0 (rc=$rc)" test "$rc" -eq 0
n=$(ls "$shots"/[0-9]*.png 2>/dev/null | wc -l)
check "screenshots saved in build/web-screenshots ($n)" test "$n" -ge 8

# The real worker again with --auth-token-file: the page asks for the token.
if [ -n "${STOKE_QUERY_BIN:-}" ] && [ -z "${STOKE_QUERY_URL:-}" ]; then
    token=web-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    printf '%s\n' "$token" >"$tmp/token"
    kill "$mock_pid" 2>/dev/null; wait "$mock_pid" 2>/dev/null
    "$STOKE_QUERY_BIN" --store "$tmp/store" --listen "127.0.0.1:$port" --web-dir "$ROOT/query/web" \
        --auth-token-file "$tmp/token" >"$mock_out" 2>&1 &
    mock_pid=$!
    for _ in $(seq 50); do curl -fs "$base/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
    check "stoke-query --auth-token-file starts" curl -fs "$base/healthz" -o /dev/null
    out=$(BASE_URL=$base TOKEN=$token CHROMIUM=$CHROMIUM PLAYWRIGHT_DIR=$PLAYWRIGHT_DIR \
        timeout 120 node "$ROOT/tests/integration/web/auth.mjs" 2>&1)
    rc=$?
    count_lines "$out"
    check "auth browser test exits 0 (rc=$rc)" test "$rc" -eq 0
fi
summary test_web
