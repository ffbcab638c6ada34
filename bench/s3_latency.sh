#!/usr/bin/env bash
# What one object-store request costs in time on a real S3-compatible server
# (issue #18, item 4): s3rver (build/node_modules, as the integration tests
# start it) on loopback holds the same small calibrated fleet as a directory
# store; build/stoke-bench-open-hour runs the same query on both, and the
# difference in wall time divided by the requests made is the added time per
# request of Stoke's own S3 client (libcurl, 2 decode threads). The AWS CLI's
# figure is one `aws s3api get-object` / `list-objects-v2` less the CLI's own
# start-up (`aws --version`), median of CLI_RUNS.
#
#   bench/s3_latency.sh                  prints one JSON line
#   S3_HOSTS=20 CLI_RUNS=10 REPS=3
set -eu
cd "$(dirname "$0")/.."
ROOT=$PWD
Q=build/stoke-query B=build/stoke-bench-open-hour
[ -x "$B" ] || make -s "$B"
S3RVER=$ROOT/build/node_modules/.bin/s3rver
[ -x "$S3RVER" ] || { echo "s3_latency: $S3RVER missing (npm install --prefix build s3rver@3)" >&2; exit 1; }
HOSTS=${S3_HOSTS:-20} RUNS=${CLI_RUNS:-10} REPS=${REPS:-3}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$tmp/s3"
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$tmp/s3" -a 127.0.0.1 -p "$port" --silent \
    --configure-bucket bench >"$tmp/s3rver.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
unset AWS_SESSION_TOKEN AWS_PROFILE
S=1767261600000
gen=(generate --model calibrated --hosts "$HOSTS" --services 10 --services-per-host 3 --rows 32
    --hours 1 --start $S)
$Q "${gen[@]}" --store "$tmp/dir" >/dev/null
$Q "${gen[@]}" --store s3://bench/fleet --s3-path-style >/dev/null
q=(--from $((S + 45 * 60000)) --until $((S + 3600000)) --selector '{service_name="svc-00"}' --reps "$REPS")
d=$("$B" --store "$tmp/dir" "${q[@]}")
s=$("$B" --store s3://bench/fleet "${q[@]}")
key=$(cd "$tmp/dir" && find . -type f | head -1 | sed 's|^\./||')
t() { # t CMD...: median wall ms of RUNS runs
    for _ in $(seq "$RUNS"); do
        a=$(date +%s%N); "$@" >/dev/null 2>&1; b=$(date +%s%N); echo $(((b - a) / 1000))
    done | sort -n | awk '{v[NR]=$1} END {printf "%.1f", v[int((NR+1)/2)]/1000}'
}
aws_() { aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"; }
cli0=$(t aws --version)
cliget=$(t aws_ s3api get-object --bucket bench --key "fleet/$key" "$tmp/got")
clilist=$(t aws_ s3api list-objects-v2 --bucket bench --prefix fleet/default/ --max-items 1000)
python3 - "$d" "$s" "$cli0" "$cliget" "$clilist" "$HOSTS" <<'PY'
import json, sys
d, s = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cli0, get, lst = (float(x) for x in sys.argv[3:6])
req = s["gets"] + s["lists"]
print(json.dumps({
    "hosts": int(sys.argv[6]), "query": "1 service, last 15 min",
    "dir": d, "s3": s, "requests": req,
    "added_ms_per_request": round((s["ms"] - d["ms"]) / max(1, req), 3),
    "aws_cli_startup_ms": cli0, "aws_cli_get_ms": round(get - cli0, 1),
    "aws_cli_list_ms": round(lst - cli0, 1)}))
PY
