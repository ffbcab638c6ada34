#!/usr/bin/env bash
# `make check-includes` (run by `make lint` and `make test`): the include
# rules of docs/architecture.md ("Layers and include rules").
#
# 1. Stages include downward only:
#      bpf -> agent -> symbolizer -> unwind -> exporter -> codec, store -> common
#      agent -> ingest -> exporter (the receiver: bodies in, segments out)
#      query/serve -> query/engine -> codec, store -> common
#      query/jobs -> query/engine; query/main.c -> query/*
#    A directory includes itself and what is below it; common/ includes
#    nothing else of the repository. Two exceptions: bpf/profile.h, the
#    structs shared with the BPF program (libbpf-tools' shape), which the
#    user-space code that fills its maps (agent/, unwind/) includes; and
#    the symbolizer's two headers the query workers name frames with
#    (deferred symbolization): symbolizer/offline.h and
#    symbolizer/debuginfod.h, which query/* may include, and no other.
# 2. No two modules (a .c and its .h) include each other.
# Headers that are not files of the repository (system, generated
# protobuf and skeleton headers) are not checked.
set -uo pipefail
cd "$(dirname "$0")/.."

# The layer of a path, into $L: its directory, query/ split by role.
layer() {
    case $1 in
    query/engine/* | query/serve/* | query/jobs/*) L=${1%/*} ;;
    *) L=${1%%/*} ;;
    esac
}

declare -A may=(
    [common]="common"
    [codec]="codec common"
    [store]="store common"
    [exporter]="exporter codec store common"
    [symbolizer]="symbolizer unwind exporter codec store common"
    [unwind]="unwind exporter codec store common"
    [agent]="agent unwind symbolizer ingest exporter codec store common"
    [ingest]="ingest exporter codec store common"
    [bpf]="bpf"
    [query/engine]="query/engine codec store common"
    [query/serve]="query/serve query/engine codec store common"
    [query/jobs]="query/jobs query/engine codec store common"
    [query]="query query/engine query/serve query/jobs codec store common"
)
abi="bpf/profile.h"
abi_users="agent unwind"
dsym_hdrs="symbolizer/offline.h symbolizer/debuginfod.h"
dsym_users="query query/engine query/serve query/jobs"

fail=0
bad() { echo "check-includes: $*"; fail=1; }

# The issue's own check (#13).
if out=$(grep -rn --include='*.[ch]' '#include "\(agent\|symbolizer\)/' exporter query codec store |
    grep -v '^query/[^:]*:[0-9]*:#include "symbolizer/\(offline\|debuginfod\)\.h"'); then
    bad "exporter/, query/, codec/ and store/ include agent/ or symbolizer/ (query/ only offline.h, debuginfod.h):"
    echo "$out"
fi

edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
files=$(find common codec store exporter ingest symbolizer unwind agent bpf query -name '*.[ch]' | sort)
for f in $files; do
    layer "$f"
    [ -n "${may[$L]:-}" ] || bad "$f: no rule for its directory $L/"
done
# One pass over every include line: "FILE:#include "INC"..."
while IFS= read -r line; do
    f=${line%%:*}
    inc=${line#*\"}
    inc=${inc%%\"*}
    [ -f "$inc" ] || continue # system or generated
    layer "$f"
    lf=$L
    layer "$inc"
    li=$L
    [ -n "${may[$lf]:-}" ] || continue
    if [ "$inc" = "$abi" ] && [[ " $abi_users " == *" $lf "* ]]; then
        :
    elif [[ " $dsym_hdrs " == *" $inc "* ]] && [[ " $dsym_users " == *" $lf "* ]]; then
        :
    elif [[ " ${may[$lf]} " != *" $li "* ]]; then
        bad "$f includes $inc: $lf/ may include only ${may[$lf]}"
    fi
    [ "${f%.*}" = "${inc%.*}" ] || echo "${f%.*} ${inc%.*}" >>"$edges"
done < <(grep -H '^#include "' $files)
sort -u "$edges" -o "$edges"
while read -r a b; do
    if grep -qx "$b $a" "$edges" && [[ "$a" < "$b" ]]; then
        bad "$a and $b include each other"
    fi
done <"$edges"

[ $fail -eq 0 ] && echo "check-includes: layers and include rules hold"
exit $fail
