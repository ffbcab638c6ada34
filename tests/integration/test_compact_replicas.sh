#!/usr/bin/env bash
# Continuous, tiered compaction with two replicas (docs/format.md §13), with
# the real binaries, on a directory store and on s3rver (with S3's
# create-only PUT, tests/integration/s3rver_cond.js):
#   1. `stoke-query generate` writes an hour (new layout, and a second
#      generator the old layout of a segment + entry per flush: a mixed
#      store) while two `stoke-query compact --continuous` replicas run
#      level 1 on it, the clock (--now) 50 minutes into the hour. A
#      reference store written by the same generators is never compacted.
#      Per profile type, /api/v1/top's total over the hour equals the
#      reference's; the closed spans are blocks, the open span's flushes
#      segments; the replicas' merged flushes add up to the flushes of the
#      closed spans exactly (none merged twice, none lost).
#   2. Both replicas again, the hour closed (level 2): one block for the
#      hour, no segment or entry left, the totals still the reference's.
#   3. A plain s3rver (If-None-Match ignored on PUT): --continuous refuses
#      to start, saying why.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}
S3RVER=$ROOT/build/node_modules/.bin/s3rver

need curl
need python3
need node
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_compact_replicas; exit 1; }
[ -d "$CORPUS" ] || { fail "no corpus at $CORPUS"; summary test_compact_replicas; exit 1; }
[ -x "$S3RVER" ] || { fail "s3rver missing (scripts/deps.sh installs it)"; summary test_compact_replicas; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ -n "${KEEP:-}" ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

HOSTS=6
OLD_HOSTS=2
H=$((($(date +%s) / 3600 - 3) * 3600 * 1000))
NOW=$((H + 50 * 60000)) # spans 0-8 (minutes 0-44) closed with 60 s grace
CLOSED_FLUSHES=$(((HOSTS + OLD_HOSTS) * 45))
SRC=("$CORPUS/go-cpu.pb.gz" "$CORPUS/node-heap.pb.gz")

start_s3() { # start_s3 cond|plain: s3rver with or without S3's conditional PUT; sets EP
    local port d
    port=$(free_port)
    d=$work/s3-$port
    mkdir -p "$d"
    # the server itself in the background (not a function's subshell), so
    # cleanup's kill reaches it
    if [ "$1" = cond ]; then
        NODE_OPTIONS=--openssl-legacy-provider node "$ROOT/tests/integration/s3rver_cond.js" \
            "$d" "$port" stoke-rep >"$d.log" 2>&1 &
    else
        NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$d" -a 127.0.0.1 -p "$port" --silent \
            --configure-bucket stoke-rep >"$d.log" 2>&1 &
    fi
    pids+=($!)
    for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
    EP=http://127.0.0.1:$port
}
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true

# gen STORE-ARGS...: the two generators, one after the other
gen() {
    "$QUERY" generate "$@" --hosts "$HOSTS" --services 2 --hours 1 --start "$H" \
        --seed 7 "${SRC[@]}" >/dev/null &&
        "$QUERY" generate "$@" --hosts "$OLD_HOSTS" --services 2 --hours 1 \
            --start "$H" --seed 9 --entries "${SRC[@]}" >/dev/null
}

start_worker() { # start_worker LOG STORE-ARGS...: sets URL
    local log=$1 port=
    shift
    : >"$log" # emptied first: a reused log must not show the last port
    "$QUERY" "$@" --listen 127.0.0.1:0 --cache-mb 0 >/dev/null 2>"$log" &
    pids+=($!)
    for _ in $(seq 50); do
        port=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    URL=http://127.0.0.1:$port
}

# answers FILE: one line per profile type: "type total skipped"
answers() {
    local pt
    : >"$1"
    for pt in $(curl -s "$URL/api/v1/profile_types?from=$H&until=$((H + 3600000))" |
        python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)["profile_types"]))'); do
        curl -s -G "$URL/api/v1/top" --data-urlencode "from=$H" \
            --data-urlencode "until=$((H + 3600000))" --data-urlencode "profile_type=$pt" \
            --data-urlencode limit=1 |
            python3 -c 'import json,sys; j=json.load(sys.stdin)
print(sys.argv[1], j["total"], j["stats"]["skipped"])' "$pt" >>"$1"
    done
}

# The reference: never compacted.
gen --store "$work/ref" || { fail "generate the reference"; summary test_compact_replicas; exit 1; }
start_worker "$work/wref.log" --store "$work/ref"
answers "$work/ref.txt"
check "the reference answers ($(wc -l <"$work/ref.txt") profile types)" \
    [ "$(wc -l <"$work/ref.txt")" -ge 2 -a "$(awk '{t += $2} END {print (t > 0)}' "$work/ref.txt")" = 1 ]

# flushes_merged LOG...: the flushes all passes in the logs merged
flushes_merged() { cat "$@" | sed -n 's/.* spans (\([0-9]*\) flushes.*/\1/p' | awk '{t += $1} END {print t + 0}'; }
sum_of() { # sum_of WHAT LOG...: the figure before WHAT, added up
    local what=$1
    shift
    cat "$@" | sed -n "s/.* \([0-9]*\) $what.*/\1/p" | awk '{t += $1} END {print t + 0}'
}

for KIND in ${KINDS:-dir s3}; do
    if [ "$KIND" = dir ]; then
        ST=(--store "$work/store")
        segs() { find "$work/store/default/segments" -name '*.seg' 2>/dev/null | wc -l; }
        entries() { find "$work/store/default/manifest" -path '*entries*' -name '*.man' 2>/dev/null | wc -l; }
        blocks() { find "$work/store/default/blocks" -name "$1" 2>/dev/null | wc -l; }
    else
        start_s3 cond
        ST=(--store s3://stoke-rep/store --s3-endpoint "$EP" --s3-path-style)
        ls_s3() { python3 - "$EP" "$1" <<'PY'
import subprocess, sys
out = subprocess.run(["aws", "--endpoint-url", sys.argv[1], "s3", "ls", "--recursive",
                      "s3://stoke-rep/store/default/"], capture_output=True, text=True).stdout
import fnmatch
print(sum(1 for l in out.splitlines() if fnmatch.fnmatch(l.split()[-1], sys.argv[2])))
PY
        }
        segs() { ls_s3 '*/segments/*.seg'; }
        entries() { ls_s3 '*/entries/*.man'; }
        blocks() { ls_s3 "*/blocks/*/$1"; }
    fi
    # ---- 1. level 1 while the generators write --------------------------------
    gen "${ST[@]}" &
    genpid=$!
    for r in a b; do
        "$QUERY" compact "${ST[@]}" --continuous --every 1 --now "$NOW" --grace 60 \
            --replica-id "$KIND-$r" >"$work/$KIND-l1-$r.log" 2>&1 &
        pids+=($!)
        eval "c_$r=$!"
    done
    wait "$genpid"
    check "$KIND: the generators wrote while the replicas ran" [ $? -eq 0 ]
    # until the closed spans are merged (a minute at most), then two more
    # passes each
    for _ in $(seq 120); do [ "$(segs)" -le $(((HOSTS + OLD_HOSTS) * 15)) ] && break; sleep 0.5; done
    sleep 3
    kill "$c_a" "$c_b"
    wait "$c_a" "$c_b" 2>/dev/null
    fm=$(flushes_merged "$work/$KIND"-l1-*.log)
    check "$KIND level 1: the replicas merged $fm flushes, the $CLOSED_FLUSHES of the closed spans" \
        [ "$fm" -eq "$CLOSED_FLUSHES" ]
    for r in a b; do
        echo "    $KIND-$r: $(grep -c '^compact:' "$work/$KIND-l1-$r.log") passes," \
            "$(flushes_merged "$work/$KIND-l1-$r.log") flushes merged," \
            "$(sum_of 'hours leased elsewhere' "$work/$KIND-l1-$r.log") hours leased elsewhere," \
            "$(sum_of 'commits lost' "$work/$KIND-l1-$r.log") commits lost"
    done
    check "$KIND level 1: no errors" [ "$(sum_of errors "$work/$KIND"-l1-*.log)" -eq 0 ]
    check "$KIND level 1: nine span blocks or more ($(blocks '*-l1-*.blk'))" [ "$(blocks '*-l1-*.blk')" -ge 9 ]
    check "$KIND level 1: the open span's flushes stay ($(segs) segments, want $(((HOSTS + OLD_HOSTS) * 15)))" \
        [ "$(segs)" -eq $(((HOSTS + OLD_HOSTS) * 15)) ]
    start_worker "$work/w$KIND.log" "${ST[@]}"
    answers "$work/$KIND-l1.txt"
    check "$KIND level 1: every total is the reference's" diff "$work/ref.txt" "$work/$KIND-l1.txt"

    # ---- 2. level 2: the hour closed ------------------------------------------
    for r in a b; do
        "$QUERY" compact "${ST[@]}" --continuous --every 1 --now $((H + 2 * 3600000)) \
            --replica-id "$KIND-$r" >"$work/$KIND-l2-$r.log" 2>&1 &
        eval "c_$r=$!"
        pids+=($!)
    done
    for _ in $(seq 120); do [ "$(blocks '*.blk')" -eq 1 -a "$(segs)" -eq 0 ] && break; sleep 0.5; done
    sleep 2
    kill "$c_a" "$c_b"
    wait "$c_a" "$c_b" 2>/dev/null
    check "$KIND level 2: one hour compacted between the replicas" \
        [ "$(sum_of 'hours compacted' "$work/$KIND"-l2-*.log)" -eq 1 ]
    check "$KIND level 2: one block, no segment or entry left" \
        [ "$(blocks '*.blk')" -eq 1 -a "$(segs)" -eq 0 -a "$(entries)" -eq 0 ]
    answers "$work/$KIND-l2.txt"
    check "$KIND level 2: every total is the reference's" diff "$work/ref.txt" "$work/$KIND-l2.txt"
done

# ---- 3. a server that ignores If-None-Match --------------------------------------
start_s3 plain
"$QUERY" compact --store s3://stoke-rep/plain --s3-endpoint "$EP" --s3-path-style --continuous \
    >"$work/plain.log" 2>&1
rc=$?
said=$(grep -c "If-None-Match" "$work/plain.log")
check "plain s3rver: --continuous refuses it (exit $rc): $(head -c 200 "$work/plain.log")" \
    [ "$rc" -ne 0 -a "$said" -ge 1 ]

summary test_compact_replicas
