#!/usr/bin/env bash
# The web page's service list, diff and function-details (sandwich) views
# in a real browser (playwright-core driving Debian's Chromium, as
# test_web.sh), on a fleet written by `stoke-query generate` from sources
# with a known change: svc-00's baseline hour spends ~6% of its CPU in
# `hot` and ~12% in `mark`, its comparison hour ~47% and ~1.5%. The page's
# numbers are checked against API answers it did not use for them
# (web/views.mjs): sparklines against one /api/v1/series per service, the
# diff's frames against /pyroscope/render-diff, callers and callees against
# /api/v1/top and SelectMergeStacktraces with a call site. Also: the views
# are linkable (their URL reopens them), fit 1280×800, make no request off
# the server and log nothing to the console.
#
# Screenshots go to build/web-screenshots/views-*.png.
# Deps: as test_web.sh (chromium; playwright-core in build/web-test).
set -u
. "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
need_browser
need python3
need curl
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_web_views; exit 1; }

echo "== web page views: services, diff, function details"
work=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# Sources: web/make_pprof.py's writer with this test's stacks (values in ns).
python3 - "$ROOT/tests/integration/web" "$work" <<'PY' || { fail "write the sources"; summary test_web_views; exit 1; }
import gzip, sys
sys.path.insert(0, sys.argv[1])
import make_pprof
S = 10_000_000
common = [("main;serve;handleA;parse;lex", 200 * S), ("main;serve;handleA;parse", 50 * S),
          ("main;serve;handleB;parse;alloc", 100 * S), ("main;serve;handleB;render", 300 * S)]
make_pprof.STACKS = {
    "base": common + [("main;gc;mark", 100 * S), ("main;serve;hot", 50 * S)],
    "cmp": common + [("main;gc;mark", 20 * S), ("main;serve;hot", 600 * S)],
    "other": [("main;worker;compress", 500 * S), ("main;worker;io", 200 * S)],
}
for name in make_pprof.STACKS:
    with gzip.open(sys.argv[2] + "/" + name + ".pb.gz", "wb") as f:
        f.write(make_pprof.build(name, 0))
PY
# svc-00 takes the first file's shape, svc-01 the second's: baseline hour
# H0 from base, comparison hour H0+1h from cmp; svc-01 the same both hours.
H0=$(( ($(date +%s) / 3600 - 3) * 3600000 ))
"$QUERY" generate --store "$work/s" --hosts 2 --services 2 --hours 1 --flush 300 --start "$H0" \
    "$work/base.pb.gz" "$work/other.pb.gz" >"$work/gen.log" 2>&1 &&
    "$QUERY" generate --store "$work/s" --hosts 2 --services 2 --hours 1 --flush 300 \
        --start $((H0 + 3600000)) "$work/cmp.pb.gz" "$work/other.pb.gz" >>"$work/gen.log" 2>&1
check "generate two hours of two services" test $? -eq 0 || { cat "$work/gen.log"; summary test_web_views; exit 1; }

"$QUERY" --store "$work/s" --listen 127.0.0.1:0 >/dev/null 2>"$work/q.log" &
pid=$!
port=
for _ in $(seq 50); do
    port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$work/q.log")
    [ -n "$port" ] && break
    sleep 0.1
done
check "stoke-query starts (the page embedded at build)" test -n "$port" || { cat "$work/q.log"; summary test_web_views; exit 1; }

shots=$ROOT/build/web-screenshots
rm -f "$shots"/views-*.png
out=$(BASE_URL=http://127.0.0.1:$port H0=$H0 CHROMIUM=$CHROMIUM PLAYWRIGHT_DIR=$PLAYWRIGHT_DIR SHOTS=$shots \
    timeout 180 node "$ROOT/tests/integration/web/views.mjs" 2>&1)
rc=$?
count_lines "$out"
check "browser test exits 0 (rc=$rc)" test "$rc" -eq 0
n=$(ls "$shots"/views-*.png 2>/dev/null | wc -l)
check "screenshots saved in build/web-screenshots ($n)" test "$n" -eq 3
summary test_web_views
