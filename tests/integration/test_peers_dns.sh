#!/usr/bin/env bash
# --peers-dns as a Kubernetes headless Service works, without a cluster: in
# a private mount namespace (unshare -m) /etc/hosts lists one name,
# stoke-peers.test, twice — 127.0.0.2 and 127.0.0.3, where two workers
# listen on the same port — as the cluster DNS answers one A record per
# ready pod. Each worker finds the other (not itself), a query to one is
# shared with the other (its select endpoint is called) and answers what a
# lone worker answers. Then the name resolves to the worker alone, then not
# at all: the worker answers alone, the empty answers and failures are
# counted in /metrics and each change is logged once.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}

need curl
need python3
need unshare
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_peers_dns; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
    [ "${CI:-}" = true ] && { echo "test_peers_dns needs root (unshare -m)" >&2; exit 1; }
    echo "skipping: needs root for a private /etc/hosts (unshare -m)" >&2; exit 0
fi
# Everything below runs with its own /etc/hosts: re-run in a new mount
# namespace whose mounts do not propagate back to the host's.
if [ -z "${STOKE_PEERS_NS:-}" ]; then
    exec unshare -m --propagation private env STOKE_PEERS_NS=1 bash "$0" "$@"
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    umount /etc/hosts /etc/host.conf 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

printf 'multi on\n' >"$work/host.conf"
printf '127.0.0.1 localhost\n127.0.0.2 stoke-peers.test\n127.0.0.3 stoke-peers.test\n' >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts && mount --bind "$work/host.conf" /etc/host.conf ||
    { fail "cannot bind-mount a private /etc/hosts"; summary test_peers_dns; exit 1; }
check "the name resolves to both workers' addresses" \
    [ "$(getent ahostsv4 stoke-peers.test | awk '{print $1}' | sort -u | tr '\n' ' ')" = "127.0.0.2 127.0.0.3 " ]

H0=$(( ($(date +%s) / 3600 - 2) * 3600000 ))
"$QUERY" generate --store "$work/s" --hosts 4 --services 3 --hours 1 --flush 300 --start "$H0" \
    "$CORPUS/go-cpu.pb.gz" >"$work/gen.log" 2>&1 ||
    { fail "generate: $(cat "$work/gen.log")"; summary test_peers_dns; exit 1; }
FROM=$((H0 - 3600000))
UNTIL=$((H0 + 7200000))

P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0)); print(s.getsockname()[1])')
start() { # start LOG ADDR [args...]: waits for "serving"
    local log=$1 addr=$2 i; shift 2
    "$QUERY" --store "$work/s" --listen "$addr" "$@" >/dev/null 2>"$log" &
    pids+=($!)
    for i in $(seq 50); do
        grep -q "serving" "$log" && return 0
        sleep 0.1
    done
    return 1
}
metric() { # metric ADDR NAME: its value
    curl -s "http://$1/metrics" | awk -v n="$2" '$1 == n {print $2}'
}
start "$work/a.log" "127.0.0.2:$P" --peers-dns stoke-peers.test --peers-dns-refresh 200ms ||
    { fail "worker a did not start: $(cat "$work/a.log")"; summary test_peers_dns; exit 1; }
start "$work/b.log" "127.0.0.3:$P" --peers-dns "stoke-peers.test:$P" --peers-dns-refresh 200ms ||
    { fail "worker b did not start: $(cat "$work/b.log")"; summary test_peers_dns; exit 1; }
start "$work/lone.log" "127.0.0.1:0" || fail "the lone worker did not start"
LONE=127.0.0.1:$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$work/lone.log")

check "a: one peer (b, itself left out)" [ "$(metric "127.0.0.2:$P" stoke_query_peers)" = 1 ]
check "a logged its peer" grep -q -- "--peers-dns stoke-peers.test: 1 peers" "$work/a.log"
check "b: one peer" [ "$(metric "127.0.0.3:$P" stoke_query_peers)" = 1 ]

strip() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j.pop("stats",None); print(json.dumps(j, sort_keys=True))' "$1"; }
top() { # top ADDR OUT
    curl -s -G "http://$1/api/v1/top" --data-urlencode "from=$FROM" --data-urlencode "until=$UNTIL" \
        --data-urlencode "query={}" --data-urlencode limit=100000 >"$2"
}
sel0=$(curl -s "http://127.0.0.3:$P/metrics" | awk '$1 == "stoke_query_requests_total{endpoint=\"select\"}" {print $2}')
top "127.0.0.2:$P" "$work/a.json"
top "$LONE" "$work/lone.json"
sel1=$(curl -s "http://127.0.0.3:$P/metrics" | awk '$1 == "stoke_query_requests_total{endpoint=\"select\"}" {print $2}')
check "a query to a calls b for its shard (b's select requests $sel0 -> $sel1)" [ "${sel1:-0}" -gt "${sel0:-0}" ]
check "the shared answer equals the lone worker's" [ "$(strip "$work/a.json")" = "$(strip "$work/lone.json")" ]
check "the answer is not empty" python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1])).get("total", 0) > 0 else 1)' "$work/a.json"

# The Service has only a: a answers alone. The bind mount is of the file:
# rewrite it in place (same inode).
printf '127.0.0.1 localhost\n127.0.0.2 stoke-peers.test\n' >"$work/hosts"
for _ in $(seq 50); do [ "$(metric "127.0.0.2:$P" stoke_query_peers)" = 0 ] && break; sleep 0.1; done
check "a: no peers once the name lists only itself" [ "$(metric "127.0.0.2:$P" stoke_query_peers)" = 0 ]
sleep 0.5 # a few more lookups with the same answer
check "a: empty answers counted" [ "$(metric "127.0.0.2:$P" stoke_query_peer_dns_empty_total)" -ge 2 ]
check "a: logged 'no other worker' once" [ "$(grep -c "no other worker found" "$work/a.log")" = 1 ]
top "127.0.0.2:$P" "$work/a2.json"
check "a alone answers the same" [ "$(strip "$work/a2.json")" = "$(strip "$work/lone.json")" ]

# The name is gone: lookups fail, a answers alone.
printf '127.0.0.1 localhost\n' >"$work/hosts"
for _ in $(seq 50); do [ "$(metric "127.0.0.2:$P" stoke_query_peer_dns_failures_total)" -ge 2 ] && break; sleep 0.1; done
check "a: failed lookups counted" [ "$(metric "127.0.0.2:$P" stoke_query_peer_dns_failures_total)" -ge 2 ]
check "a: logged 'lookup failing' once" [ "$(grep -c "lookup failing" "$work/a.log")" = 1 ]
top "127.0.0.2:$P" "$work/a3.json"
check "a answers alone while DNS fails" [ "$(strip "$work/a3.json")" = "$(strip "$work/lone.json")" ]
before=$(metric "127.0.0.3:$P" 'stoke_query_requests_total{endpoint="select"}')
check "b was not called while a is alone" [ "$before" = "$sel1" ]

# Bad --peers-dns: a clear error, exit 2.
"$QUERY" --store "$work/s" --listen 127.0.0.1:0 --peers-dns "name:99999" >/dev/null 2>"$work/bad.log"
rc=$?
check "--peers-dns name:99999 refused with status 2 ($rc)" [ "$rc" = 2 ]
check "the error names the expected form" grep -q "expected NAME\[:PORT\]" "$work/bad.log"

summary test_peers_dns
