#!/usr/bin/env bash
# The object-store cost model's inputs and table (issue #18, item 6;
# docs/storage.md, "What a month costs"): for flush intervals of 30, 60 and
# 300 s, one hour of two host shapes written by `stoke-query generate
# --model calibrated` into directory stores -- "busy" (the calibrated
# host itself: 321 rows per 10 s window, 103 services; 2 hosts) and
# "light" (32 rows, 3 services of 100; 20 hosts: the shape of
# bench/fleet10k.sh) -- then `stoke-query compact` on each. Measured: objects
# (= PUTs) and bytes per host-hour as the agents write them, and the
# compaction's GETs, LISTs, PUTs and bytes kept per host-hour.
# bench/cost_model.py turns them into a monthly bill for 1k, 10k and 100k
# hosts at S3 Standard prices, next to Pyroscope 2.0's write shape.
#
#   bench/cost.sh [OUT.json]     (default build/bench/cost.json; the table on stdout)
set -eu
cd "$(dirname "$0")/.."
Q=build/stoke-query
[ -x "$Q" ] || make -s all
out=${1:-build/bench/cost.json}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
S=$((($(date +%s) / 3600 - 3) * 3600000)) # an hour compaction looks at (the last 48)
rows=()
for shape in busy light; do
    if [ $shape = busy ]; then args=(--hosts 2 --services 200); hosts=2
    else args=(--hosts 20 --services 100 --services-per-host 3 --rows 32); hosts=20; fi
    for flush in 30 60 300; do
        st=$tmp/$shape$flush
        g=$("$Q" generate --store "$st" --model calibrated "${args[@]}" --hours 1 --flush $flush --start $S)
        c=$("$Q" compact --store "$st")
        kept=$(find "$st" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
        rows+=("$(python3 - "$shape" "$flush" "$hosts" "$kept" "$g" "$c" <<'PY'
import json, re, sys
shape, flush, hosts, kept, g, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
m = re.search(r"generate: (\d+) objects, (\d+) bytes .* (\d+) samples in (\d+) rows", g)
r = re.search(r"store requests: (\d+) GET, (\d+) LIST, (\d+) PUT, (\d+) DELETE; (\d+) bytes got", c)
if not m or not r:
    sys.exit("cost.sh: cannot read %r / %r" % (g, c))
print(json.dumps({"shape": shape, "flush_s": flush, "hosts": hosts,
    "objects_per_host_hour": int(m[1]) / hosts, "bytes_per_host_hour": int(m[2]) / hosts,
    "samples_per_host_hour": int(m[3]) / hosts,
    "compact_get_per_host_hour": int(r[1]) / hosts, "compact_list_per_hour": int(r[2]),
    "compact_put_per_host_hour": int(r[3]) / hosts, "compact_delete_per_host_hour": int(r[4]) / hosts,
    "compact_bytes_got_per_host_hour": int(r[5]) / hosts,
    "kept_bytes_per_host_hour": kept / hosts}))
PY
)")
        echo "${rows[-1]}" >&2
    done
done
printf '%s\n' "${rows[@]}" | python3 -c 'import json,sys; print(json.dumps([json.loads(l) for l in sys.stdin], indent=1))' >"$out"
python3 bench/cost_model.py "$out"
