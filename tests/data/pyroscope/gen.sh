#!/usr/bin/env bash
# Regenerates the binary protobuf request bodies (*.bin) from their text form
# (*.textproto) with protoc, independent of Stoke's C code. The *.json files
# are the same requests in the protobuf JSON mapping, as a Connect client
# sends them. Times are fixed (the integration test imports its profiles at
# 1700000000000 ms), so the bodies are used as recorded.
set -eu
cd "$(dirname "$0")"
root=../../..
for t in *.textproto; do
    m=${t%.textproto}
    case $m in
    LabelNames | LabelValues) msg=types.v1.${m}Request; proto=pyroscope/types.proto ;;
    *) msg=querier.v1.${m}Request; proto=pyroscope/querier.proto ;;
    esac
    protoc --encode="$msg" -I "$root/proto" -I /usr/share/gocode/src/github.com/google/pprof/proto "$proto" <"$t" >"$m.bin"
done
