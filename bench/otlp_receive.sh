#!/usr/bin/env bash
# OTLP receiving, gRPC (--receive-grpc) against HTTP (--receive): the
# receiver's CPU per Export call for the same body, a fresh receive-only
# agent per run, flushes out of the way (--flush 3600). The body is agent
# A's largest OTLP request of a 12 s run sampling hot_c (every service of
# the host in one ExportProfilesServiceRequest), and otlp_craft.py's tiny
# one. gRPC: grpcio (python3-grpcio), 16 calls in flight on one channel;
# HTTP: one keep-alive connection. Needs root (agent A samples).
#   bench/otlp_receive.sh
set -u
cd "$(dirname "$0")/.."
T=tests/integration; W=$(mktemp -d); PY=/usr/bin/python3
mkdir -p $W/cap
python3 $T/otlp_receiver.py $W/cap "" >/dev/null 2>&1 & cap=$!
for _ in $(seq 50); do [ -f $W/cap/port ] && break; sleep 0.1; done
build/fixtures/hot_c 14 >/dev/null & hot=$!
build/stoke-agent --store $W/A --host-name A --window 5 --flush 10 --frequency 99 --duration 12 \
  --metrics-addr off --otlp-endpoint http://127.0.0.1:$(cat $W/cap/port) 2>$W/A.log
kill $cap $hot 2>/dev/null; wait 2>/dev/null
body=$(ls -S $W/cap/*.body | head -1)
python3 -c "import gzip,sys; b=open(sys.argv[1],'rb').read(); open(sys.argv[2],'wb').write(gzip.decompress(b) if b[:2]==b'\x1f\x8b' else b)" $body $W/req.pb
python3 $T/otlp_craft.py $W/small.pb partial
tck=$(getconf CLK_TCK)
run() { # run PROTO FILE N
  build/stoke-agent --no-sampling --receive 127.0.0.1:0 --receive-grpc 127.0.0.1:0 --store $W/E$RANDOM --host-name E \
    --metrics-addr off --flush 3600 --receive-pending-mb 256 --buffer-mb 512 2>$W/E.log & pid=$!
  sleep 0.5
  g=$(sed -n 's/.*on grpc port \([0-9]*\).*/\1/p' $W/E.log); h=$(sed -n 's/.*Pyroscope \/ingest on port \([0-9]*\).*/\1/p' $W/E.log)
  c0=$(awk '{print $14 + $15}' /proc/$pid/stat); t0=$(date +%s%N)
  if [ $1 = gRPC ]; then $PY $T/grpc_export.py 127.0.0.1:$g --load $3,16 $W/$2 >/dev/null
  else python3 - $h $W/$2 $3 <<'PY'
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = open(path, 'rb').read()
c = http.client.HTTPConnection('127.0.0.1', port)
for _ in range(n):
    c.request('POST', '/v1development/profiles', body, {'Content-Type': 'application/x-protobuf'})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  fi
  c1=$(awk '{print $14 + $15}' /proc/$pid/stat); t1=$(date +%s%N)
  kill -TERM $pid; wait $pid
  sz=$(stat -c %s $W/$2)
  python3 -c "c=($c1-$c0)/$tck; w=($t1-$t0)/1e9; print('%-4s %-8s %6d B x %4d: receiver %.2f CPU-s = %5.0f calls/CPU-s, %5.1f MB/s per core (wall %.1f s, %.0f calls/s)' % ('$1', '$2', $sz, $3, c, $3/c, $3*$sz/c/1e6, w, $3/w))"
}
for rep in 1 2; do
  run HTTP req.pb 300; run gRPC req.pb 300
  run HTTP small.pb 3000; run gRPC small.pb 3000
done
rm -rf $W
