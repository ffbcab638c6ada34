#!/usr/bin/env bash
# bench/receive.sh - the receiver's figures (GitHub issue #17): throughput on
# one core and the agent's memory under a burst of concurrent pushers.
#
#   bench/receive.sh                           # after `make all`
#   RX_PPROF=go-cpu.pb.gz RX_REQUESTS=3000 RX_PUSHERS=100 bench/receive.sh
#   AGENT=/tmp/old-stoke-agent bench/receive.sh
#
# One corpus pprof (RX_PPROF, go-heap.pb.gz: 39 KB gzip, 4 sample types) is
# pushed RX_REQUESTS (2000) times by RX_PUSHERS (100) concurrent keep-alive
# pushers (tests/integration/push_load) in three encodings of the same
# profile, each to a fresh `stoke-agent --no-sampling --receive` pinned to
# CPU 0 (taskset; the pushers run on the other CPUs):
#   ingest     POST /ingest?format=pprof, the file as it is (gzip pprof)
#   otlp       POST /v1development/profiles, the profile as an OTLP
#              ExportProfilesServiceRequest (bench/pprof_otlp.py: one Profile
#              per sample type), gzip'd (Content-Encoding: gzip)
#   otlp_json  the same request in OTLP's JSON encoding
#              (tests/integration/pb_json.py), gzip'd
# For each: profiles/s (requests answered 200 per second of the burst: each
# carries the one corpus profile), MB/s of request bodies as sent, the
# profile messages the agent wrote (its /metrics
# stoke_receiver_profiles_written_total: OTLP has one per sample type), the
# agent's CPU seconds (user + system, /proc/PID/stat: parsing, checking,
# segment encoding and the store writes), the same throughput per CPU
# second of the agent (profiles/cpu-s, MB/cpu-s: what one core does when
# nothing else wants it; the wall-clock figures depend on the machine's
# load), its RSS at start and its peak (VmHWM) after the burst, and the
# answers by status. Needs Go (push_load), protoc and Debian's
# /usr/bin/python3 with python3-protobuf (scripts/deps.sh test).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
AGENT=${AGENT:-$ROOT/build/stoke-agent}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}
PPROF=${RX_PPROF:-go-heap.pb.gz}
N=${RX_REQUESTS:-2000} C=${RX_PUSHERS:-100}
PPROF_PROTO=${PPROF_PROTO:-/usr/share/gocode/src/github.com/google/pprof/proto/profile.proto}
ncpu=$(nproc)
work=$(mktemp -d)
apid=
cleanup() { [ -n "$apid" ] && kill "$apid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

export GOCACHE=${GOCACHE:-$work/gocache}
(cd "$ROOT" && GO111MODULE=off go build -o "$work/push_load" ./tests/integration/push_load)
protoc -I "$(dirname "$PPROF_PROTO")" --include_imports --descriptor_set_out="$work/pprof.fds" \
    "$(basename "$PPROF_PROTO")"
protoc -I "$ROOT/proto" --include_imports --descriptor_set_out="$work/otlp.fds" \
    "$ROOT/proto/otlp/profiles_service.proto"
/usr/bin/python3 "$ROOT/bench/pprof_otlp.py" "$work/pprof.fds" "$work/otlp.fds" "$CORPUS/$PPROF" \
    bench-otlp "$work/req.pb"
/usr/bin/python3 "$ROOT/tests/integration/pb_json.py" "$work/otlp.fds" \
    opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest \
    "$work/req.pb" "$work/req.json"
gzip -c "$work/req.pb" >"$work/req.pb.gz"
gzip -c "$work/req.json" >"$work/req.json.gz"
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
metric() { curl -s "http://127.0.0.1:$mport/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }

echo "receiver: $(basename "$AGENT") pinned to CPU 0, pushers on CPUs 1-$((ncpu - 1)); $C pushers, $N requests"
echo "body: $PPROF ($(stat -c %s "$CORPUS/$PPROF") B gzip pprof; OTLP $(stat -c %s "$work/req.pb.gz") B gzip," \
    "$(stat -c %s "$work/req.pb") B; JSON $(stat -c %s "$work/req.json.gz") B gzip, $(stat -c %s "$work/req.json") B)"
printf '%-10s %10s %6s %8s %6s %14s %9s %6s %7s  %s\n' protocol profiles/s MB/s written cpu-s profiles/cpu-s MB/cpu-s "rss MB" "peak MB" answers
for proto in ingest otlp otlp_json; do
    rm -rf "$work/store" "$work/agent.log"
    taskset -c 0 "$AGENT" --no-sampling --receive 127.0.0.1:0 --store "$work/store" --host-name bench \
        --metrics-addr "127.0.0.1:$mport" --flush 10 2>"$work/agent.log" &
    apid=$!
    port=
    for _ in $(seq 100); do
        port=$(sed -n 's/.*on port \([0-9]*\).*/\1/p' "$work/agent.log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "bench/receive.sh: the agent did not start: $(tail -2 "$work/agent.log")" >&2; exit 1; }
    rss0=$(awk '/VmRSS/ {print $2}' "/proc/$apid/status")
    case $proto in
    ingest) args=(-url "http://127.0.0.1:$port/ingest?name=bench-ingest&format=pprof" -body "$CORPUS/$PPROF") ;;
    otlp) args=(-url "http://127.0.0.1:$port/v1development/profiles" -body "$work/req.pb.gz"
        -H "Content-Type: application/x-protobuf" -H "Content-Encoding: gzip") ;;
    otlp_json) args=(-url "http://127.0.0.1:$port/v1development/profiles" -body "$work/req.json.gz"
        -H "Content-Type: application/json" -H "Content-Encoding: gzip") ;;
    esac
    out=$(taskset -c "1-$((ncpu - 1))" "$work/push_load" "${args[@]}" -c "$C" -n "$N")
    written=$(metric stoke_receiver_profiles_written_total)
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$apid/status")
    cpu=$(cpu_s "$apid")
    req_s=$(sed -n 's/.*s: \([0-9]*\) ok\/s.*/\1/p' <<<"$out")
    mb_s=$(sed -n 's/.*, \([0-9.]*\) MB\/s.*/\1/p' <<<"$out")
    ok=$(sed -n 's/.* 200:\([0-9]*\).*/\1/p' <<<"$out")
    bytes=$(stat -c %s "${args[3]}")
    printf '%-10s %10s %6s %8s %6s %14.0f %9.1f %6.1f %7.1f  %s\n' "$proto" "$req_s" "$mb_s" "${written:-?}" "$cpu" \
        "$(awk -v n="${ok:-0}" -v c="$cpu" 'BEGIN {print (c > 0 ? n / c : 0)}')" \
        "$(awk -v n="${ok:-0}" -v b="$bytes" -v c="$cpu" 'BEGIN {print (c > 0 ? n * b / c / 1e6 : 0)}')" \
        "$(awk -v k="$rss0" 'BEGIN {print k / 1024}')" "$(awk -v k="$hwm" 'BEGIN {print k / 1024}')" \
        "${out##*answers }"
    kill -TERM "$apid"
    wait "$apid" || true
    apid=
done
