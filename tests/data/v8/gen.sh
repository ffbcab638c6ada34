#!/usr/bin/env bash
# Writes tests/data/v8/node-vMAJOR.fixture with this machine's node: the
# functions of fixture.js named by the agent's namer in a live node process
# (build/tests/test_v8 --capture records every read it makes), next to the
# names and lines V8 itself gives them (FIXTURE_TRUTH=1: its stack-trace
# API). Fails when the two disagree. Run from the repository's root after
# `make build/tests/test_v8`.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
node=${NODE:-node}
major=$("$node" -p 'process.versions.node.split(".")[0]')
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
FIXTURE_TRUTH=1 "$node" "$here/fixture.js" >"$tmp/truth"
"$node" --allow-natives-syntax "$here/fixture.js" >"$tmp/print" &
pid=$!
for _ in $(seq 50); do
    [ "$(grep -c '^ - shared_info' "$tmp/print")" -ge "$(wc -l <"$tmp/truth")" ] && break
    sleep 0.1
done
grep '^ - shared_info' "$tmp/print" | sed 's/.*shared_info: \(0x[0-9a-f]*\).*/\1/' >"$tmp/sfis"
[ "$(wc -l <"$tmp/sfis")" -eq "$(wc -l <"$tmp/truth")" ] || { echo "gen.sh: $(wc -l <"$tmp/sfis") functions printed, $(wc -l <"$tmp/truth") expected" >&2; exit 1; }
paste -d'|' "$tmp/sfis" "$tmp/truth" | build/tests/test_v8 --capture $pid >"$tmp/fixture"
mv "$tmp/fixture" "$here/node-v$major.fixture"
echo "wrote $here/node-v$major.fixture ($(grep -c '^frame' "$here/node-v$major.fixture") functions)"
