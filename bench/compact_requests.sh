#!/usr/bin/env bash
# What one `stoke-query compact --continuous` pass asks the store: GETs,
# LISTs, PUTs and DELETEs per pass over one hour of a generated fleet
# (BENCHMARKS.md, "The open hour at 10,000 hosts"). The fleet is
# bench/fleet10k.sh's (`generate --model calibrated --services 100
# --services-per-host 3 --rows 32 --hours 1`, hour 2026-01-01T10) at HOSTS
# hosts (default 200). The passes, each a process with its own counts:
# the twelve level-1 passes of the hour (clock at each 5-minute span's end
# + 90 s grace), the level-2 pass once the hour closed (11:10 + 1 min), and
# one more with nothing new (11:12). Every pass looks back 48 hours
# (compact_opts.max_hours), as a replica does; one replica (its own id).
#
#   bench/compact_requests.sh [HOSTS]   Q=build/stoke-query (the binary to
#                                       measure)  FLEET_DIR=DIR (default
#                                       /tmp/compact-requests; the generated
#                                       fleet is kept there and copied for
#                                       each run)
set -eu
cd "$(dirname "$0")/.."
Q=${Q:-build/stoke-query}
[ -x "$Q" ] || make -s "$Q"
HOSTS=${1:-200}
dir=${FLEET_DIR:-/tmp/compact-requests}
S=1767261600000 # 2026-01-01T10:00Z
if [ ! -d "$dir/fleet-$HOSTS" ]; then
    mkdir -p "$dir"
    "$Q" generate --store "$dir/fleet-$HOSTS" --model calibrated --hosts "$HOSTS" --services 100 \
        --services-per-host 3 --rows 32 --hours 1 --start $S >/dev/null
fi
rm -rf "$dir/run"
cp -a "$dir/fleet-$HOSTS" "$dir/run"
pass() { # pass LABEL NOW
    "$Q" compact --store "$dir/run" --continuous --replica-id bench --span 300 --grace 90 \
        --every 3600 --passes 1 --now "$2" | awk -v l="$1" '
        /spans/ { split($0, a, " "); spans = a[5]; hours = a[2] }
        /store requests/ { printf "%-26s %6d GET %4d LIST %4d PUT %6d DELETE (%s hours, %s spans)\n",
                           l, $4, $6, $8, $10, hours, spans }'
}
for i in $(seq 1 12); do
    pass "level 1, span $((i - 1))" $((S + i * 300000 + 90000))
done
pass "level 2" $((S + 3600000 + 660000))
pass "nothing new" $((S + 3600000 + 720000))
