#!/usr/bin/env bash
# stoke-query's limits (docs/api.md, Limits) against real workers on a
# generated store, as a client or an attacker would meet them:
#  - overflowing time ranges (native API, render, Connect, peer queries) get
#    400 naming the parameter within a second, and the worker stays idle
#    and stops at once on SIGTERM;
#  - 5000 query parameters get a 4xx, not a closed connection;
#  - a corrupt segment shows as X-Stoke-Skipped on native, Connect and
#    render answers;
#  - 300 slow clients (one header line a second) do not keep a normal curl
#    from its answer (latency printed), with the default limits and with a
#    small --max-connections; --read-timeout cuts them however they trickle;
#  - a client that goes away mid-query frees the query (its peer request
#    is dropped, no thread left waiting); --query-timeout and Connect's
#    Connect-Timeout-Ms end a query with 504; SIGTERM does not wait for one.
# Queries are made to last by a peer that never answers.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}

need curl
need python3
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_query_limits; exit 1; }
[ -d "$CORPUS" ] || { fail "no corpus at $CORPUS"; summary test_query_limits; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

"$QUERY" generate --store "$work/store" --hosts 2 --services 2 --hours 2 \
    "$CORPUS/go-cpu.pb.gz" "$CORPUS/node-cpu.pb.gz" >/dev/null ||
    { fail "generate"; summary test_query_limits; exit 1; }
now=$(($(date +%s) * 1000))
FROM=$((now - 3 * 3600000))
PT=process_cpu:cpu:nanoseconds:cpu:nanoseconds

start_worker() { # start_worker NAME [args...]: sets $port and $pid
    local log=$work/$1.log i; shift
    port=
    : >"$log" # emptied first: a reused log must not show the last port
    "$QUERY" --store "$work/store" --listen 127.0.0.1:0 "$@" >/dev/null 2>"$log" &
    pid=$!
    pids+=("$pid")
    for i in $(seq 50); do
        port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && return 0
        sleep 0.1
    done
    return 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
# stops PID with SIGTERM; true when it exits within $2 seconds
stops_within() {
    local p=$1 s=$2 i
    kill -TERM "$p"
    for i in $(seq $((s * 10))); do
        kill -0 "$p" 2>/dev/null || { wait "$p"; return 0; }
        sleep 0.1
    done
    return 1
}
# all CMD1... -- CMD2... [-- ...]: every command succeeds
all() {
    local cmd=()
    while [ $# -gt 0 ]; do
        if [ "$1" = -- ]; then "${cmd[@]}" || return 1; cmd=(); else cmd+=("$1"); fi
        shift
    done
    "${cmd[@]}"
}
between() { [ -n "$1" ] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
contains() { [[ $1 == *"$2"* ]]; }
all_200() { ! grep -qv '^200 ' "$1"; }
ms() { awk -v s="$1" 'BEGIN {printf "%d", s * 1000}'; }

# ---- overflowing ranges -------------------------------------------------
start_worker a --cache-mb 0 || { fail "stoke-query did not start: $(cat "$work/a.log")"; summary test_query_limits; exit 1; }
A=http://127.0.0.1:$port
pid_a=$pid
expect400() { # expect400 WHAT PARAM curl-args...: 400 naming PARAM within a second
    local what=$1 param=$2 out code; shift 2
    out=$(curl -s -g -m 1 -w '\n%{http_code} %{time_total}' "$@")
    code=$(tail -1 <<<"$out" | cut -d' ' -f1)
    if [ "$code" = 400 ] && head -n -1 <<<"$out" | grep -q "\"[^\"]*$param: "; then
        pass "$what: 400 naming $param in $(tail -1 <<<"$out" | cut -d' ' -f2) s"
    else
        fail "$what: want 400 naming $param within 1 s, got: $(tr '\n' ' ' <<<"$out" | head -c 300)"
    fi
}
expect400 "top, ±9e18" from "$A/api/v1/top?from=-9000000000000000000&until=9000000000000000000"
expect400 "top, int64 min/max" from \
    "$A/api/v1/top?from=-9223372036854775808&until=9223372036854775807"
expect400 "top, until int64 max" until "$A/api/v1/top?from=0&until=9223372036854775807"
expect400 "render, int64 min/max" from \
    "$A/pyroscope/render?query=$PT{}&from=-9223372036854775808&until=9223372036854775807"
expect400 "Connect SelectMergeStacktraces, ±9e18" start -H 'Content-Type: application/json' \
    -d "{\"profileTypeID\":\"$PT\",\"labelSelector\":\"{}\",\"start\":\"-9000000000000000000\",\"end\":\"9000000000000000000\"}" \
    "$A/querier.v1.QuerierService/SelectMergeStacktraces"
expect400 "peer select, from -9.2e18" from -H 'Content-Type: application/json' \
    -d '{"tenant":"default","query":"{}","from":-9.2e18,"until":9.2e18,"mode":0,"shard":0,"nshards":1}' \
    "$A/internal/v1/select"
expect400 "peer select, until 1e300" until \
    -d '{"tenant":"default","query":"{}","from":0,"until":1e300,"mode":0,"shard":0,"nshards":1}' \
    "$A/internal/v1/select"
c0=$(cpu_ticks "$pid_a")
sleep 1
c1=$(cpu_ticks "$pid_a")
check "worker idle after them ($((c1 - c0)) CPU ticks in 1 s)" [ $((c1 - c0)) -le 10 ]

# ---- thousands of parameters ------------------------------------------------
params=$(seq -f 'p%g=1' 0 4999 | paste -sd'&')
code=$(curl -s -o "$work/out" -m 5 -w '%{http_code}' "$A/api/v1/top?$params")
check "5000 parameters (38 KB): $code $(head -c 80 "$work/out")" [ "${code:0:1}" = 4 ]
params=$(yes a | head -5000 | paste -sd'&')
code=$(curl -s -o "$work/out" -m 5 -w '%{http_code}' "$A/api/v1/top?$params")
check "5000 parameters (10 KB): $code $(head -c 80 "$work/out")" \
    all [ "$code" = 400 ] -- grep -q '5000 parameters' "$work/out"

# ---- skipped segments in every answer ---------------------------------------
seg=$(find "$work/store/default/segments" -type f -name '*.seg' | sort | head -1)
truncate -s 16 "$seg" # every section of it now ends past the end
skipped_hdr() { sed -n 's/^X-Stoke-Skipped: \([0-9]*\)\r$/\1/Ip' "$1"; }
curl -s -D "$work/h" -o "$work/b" "$A/api/v1/top?from=$FROM&until=$now"
n=$(skipped_hdr "$work/h")
check "native API: X-Stoke-Skipped: ${n:-absent}, stats.skipped $(grep -o '"skipped":[0-9]*' "$work/b")" \
    all [ "${n:-0}" -ge 1 ] -- grep -q "\"skipped\":$n}" "$work/b"
curl -s -D "$work/h" -o "$work/b" -H 'Content-Type: application/json' \
    -d "{\"profileTypeID\":\"$PT\",\"labelSelector\":\"{}\",\"start\":\"$FROM\",\"end\":\"$now\"}" \
    "$A/querier.v1.QuerierService/SelectMergeStacktraces"
n=$(skipped_hdr "$work/h")
check "Connect: X-Stoke-Skipped: ${n:-absent}" [ "${n:-0}" -ge 1 ]
curl -s -g -D "$work/h" -o "$work/b" "$A/pyroscope/render?query=$PT{}&from=$FROM&until=$now"
n=$(skipped_hdr "$work/h")
check "render: X-Stoke-Skipped: ${n:-absent}, stats.skipped $(grep -o '"skipped":[0-9]*' "$work/b")" \
    all [ "${n:-0}" -ge 1 ] -- grep -q "\"skipped\":$n}" "$work/b"

# ---- slow clients -------------------------------------------------------------
slow() { # slow PORT N INTERVAL DURATION: in the background, output in $work/slow.out
    python3 "$ROOT/tests/integration/slow_clients.py" 127.0.0.1 "$1" "$2" "$3" "$4" \
        >"$work/slow.out" &
    slow_pid=$!
    pids+=("$slow_pid")
    local i
    for i in $(seq 100); do grep -q opened "$work/slow.out" && return 0; sleep 0.1; done
    return 1
}
end_slow() { kill -TERM "$slow_pid"; wait "$slow_pid"; }
timed() { # timed URL...: "code seconds" of a normal curl; 3 s at most
    curl -s -o /dev/null -m 3 -w '%{http_code} %{time_total}\n' "$@"
}
normal_requests() { # normal_requests URL N: N × (/healthz, a 3-hour top) into $work/lat
    local i
    : >"$work/lat"
    for i in $(seq "$2"); do
        timed "$1/healthz" >>"$work/lat"
        timed "$1/api/v1/top?from=$FROM&until=$now" >>"$work/lat"
    done
}
latencies() { # latencies FILE: "median M ms, max X ms" of column 2; all 200?
    sort -n -k2 "$1" | awk '{t[NR] = $2 * 1000; if ($1 != 200) bad++}
        END {printf "median %.0f ms, max %.0f ms%s", t[int((NR + 1) / 2)], t[NR], bad ? ", " bad " not 200" : ""}'
}
# Default limits: 300 slow clients are held (the read timeout is 10 s) and
# normal requests meanwhile are answered at once.
slow "${A##*:}" 300 1 60
normal_requests "$A" 10
reading=$(curl -s -m 3 "$A/metrics" | sed -n 's/^stoke_query_connections_reading //p')
lat=$(latencies "$work/lat")
check "defaults, 300 slow clients held ($reading reading): normal requests $lat" \
    all [ "${reading:-0}" -ge 300 ] -- all_200 "$work/lat"
echo "  latency of a normal request while 300 slow clients hold connections: $lat"
end_slow
check "defaults: no slow client cut meanwhile ($(tail -1 "$work/slow.out"))" \
    grep -q '^closed 0 of 300' "$work/slow.out"

# A read deadline that trickling does not extend.
start_worker b --read-timeout 1s || fail "worker b did not start"
slow "$port" 300 0.3 2.5
out=$(timed "http://127.0.0.1:$port/healthz")
check "--read-timeout 1s, 300 clients trickling a line per 0.3 s: normal request $out" \
    [ "${out%% *}" = 200 ]
wait "$slow_pid"
first=$(sed -n 's/^closed 300 of 300, first after \([0-9.]*\) s/\1/p' "$work/slow.out")
check "--read-timeout 1s: $(tail -1 "$work/slow.out")" \
    between "$(ms "${first:-0}")" 900 2000
stops_within "$pid" 2 || fail "worker b did not stop"

# Fewer slots than slow clients: the oldest reader makes room.
start_worker c --max-connections 32 || fail "worker c did not start"
C=http://127.0.0.1:$port
slow "$port" 300 1 60
normal_requests "$C" 5
evicted=$(curl -s -m 3 "$C/metrics" | sed -n 's/^stoke_query_connections_cut_total{reason="evicted"} //p')
check "--max-connections 32, 300 slow clients ($evicted evicted): normal requests $(latencies "$work/lat")" \
    all [ "${evicted:-0}" -ge 200 ] -- all_200 "$work/lat"
end_slow
stops_within "$pid" 2 || fail "worker c did not stop"

# ---- queries that outlive their client, deadline or worker --------------------
# A peer that reads requests and never answers keeps a query waiting.
cat >"$work/blackhole.py" <<'PY'
import socket, sys, threading, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
def hold(c):
    t0 = time.monotonic()
    print("open", flush=True)
    while c.recv(65536):
        pass
    print("closed after %.1f s" % (time.monotonic() - t0), flush=True)
while True:
    c, _ = s.accept()
    threading.Thread(target=hold, args=(c,), daemon=True).start()
PY
python3 "$work/blackhole.py" >"$work/bh.out" &
pids+=($!)
for i in $(seq 50); do bh=$(head -1 "$work/bh.out"); [ -n "$bh" ] && break; sleep 0.1; done
count() { grep -c "^$1" "$work/bh.out"; }

start_worker d --peers "127.0.0.1:$bh" || fail "worker d did not start"
D=http://127.0.0.1:$port
pid_d=$pid
sleep 0.3
t_idle=$(threads "$pid_d")
curl -s -o /dev/null -m 1 "$D/api/v1/top?from=$FROM&until=$now"
opened=$(count open)
for i in $(seq 30); do [ "$(count closed)" -ge 1 ] && break; sleep 0.1; done
sleep 0.2
c0=$(cpu_ticks "$pid_d")
sleep 1
c1=$(cpu_ticks "$pid_d")
check "client gone after 1 s: its query dropped its peer request ($(grep closed "$work/bh.out" | head -1))" \
    all [ "$opened" -ge 1 ] -- [ "$(count closed)" -ge 1 ]
check "client gone: threads back to $t_idle (now $(threads "$pid_d")), $((c1 - c0)) CPU ticks in 1 s" \
    all [ "$(threads "$pid_d")" -le "$t_idle" ] -- [ $((c1 - c0)) -le 10 ]
# SIGTERM with a query in flight.
curl -s -o /dev/null -m 20 "$D/api/v1/top?from=$FROM&until=$now" &
curl_pid=$!
for i in $(seq 30); do [ "$(count open)" -gt "$opened" ] && break; sleep 0.1; done
t0=$(date +%s%N)
if stops_within "$pid_d" 3; then
    pass "SIGTERM with a query waiting on a peer: stopped in $((($(date +%s%N) - t0) / 1000000)) ms"
else
    fail "SIGTERM with a query waiting on a peer: still running after 3 s"
fi
wait "$curl_pid" 2>/dev/null

start_worker e --peers "127.0.0.1:$bh" --query-timeout 1500ms || fail "worker e did not start"
E=http://127.0.0.1:$port
out=$(curl -s -m 10 -w ' %{http_code} %{time_total}' "$E/api/v1/top?from=$FROM&until=$now" | tr -d '\n')
t=$(ms "${out##* }")
check "--query-timeout 1500ms: $out" \
    all contains "$out" ' 504 ' -- between "$t" 1400 3000
out=$(curl -s -m 10 -w ' %{http_code} %{time_total}' -H 'Content-Type: application/json' \
    -H 'Connect-Timeout-Ms: 300' \
    -d "{\"profileTypeID\":\"$PT\",\"labelSelector\":\"{}\",\"start\":\"$FROM\",\"end\":\"$now\"}" \
    "$E/querier.v1.QuerierService/SelectMergeStacktraces" | tr -d '\n')
t=$(ms "${out##* }")
check "Connect-Timeout-Ms 300: $out" \
    all contains "$out" deadline_exceeded -- contains "$out" ' 504 ' -- between "$t" 250 1500
stops_within "$pid" 3 || fail "worker e did not stop"

# ---- the first worker, after all this, stops at once --------------------------
t0=$(date +%s%N)
if stops_within "$pid_a" 2; then
    pass "SIGTERM: worker a stopped in $((($(date +%s%N) - t0) / 1000000)) ms"
else
    fail "SIGTERM: worker a still running after 2 s"
fi

summary test_query_limits
