#!/usr/bin/env bash
# One object per flush (issue #18, item 2), with the real binaries, on the
# directory store and on a real S3-compatible server (s3rver), each store
# listed by an independent reader (find; the AWS CLI):
#   a. `stoke-query generate` writes one object per flush: hosts × flushes
#      segments, nothing else;
#   b. the same fleet in the old layout (`generate --entries`, the hidden
#      flag: a manifest entry beside every segment, as agents wrote before)
#      answers /api/v1/top with the same totals, per service and in all;
#   c. a mixed store — that old layout (seed 1) and the new one (seed 2)
#      for the same hosts and flush starts in one hour — answers the sum
#      of the two, nothing counted twice; `stoke-query compact` merges it
#      into one block and one hour manifest (and its index), no segment or
#      entry left, and
#      answers the same.
source "$(dirname "$0")/lib.sh"
QUERY=${STOKE_QUERY:-$ROOT/build/stoke-query}
CORPUS=${STOKE_PPROF_CORPUS:-/work/shared/corpus/pprof}
S3RVER=$ROOT/build/node_modules/.bin/s3rver

need curl
need python3
need node
need aws
[ -x "$QUERY" ] || { fail "build/stoke-query is not built"; summary test_one_object; exit 1; }
[ -x "$S3RVER" ] || { fail "s3rver missing (scripts/deps.sh installs it)"; summary test_one_object; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

HOSTS=4
H0=$((($(date +%s) / 3600 - 3) * 3600 * 1000)) # one hour, closed
SRC=("$CORPUS/go-cpu.pb.gz")

port=$(free_port)
mkdir -p "$work/s3"
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$work/s3" -a 127.0.0.1 -p "$port" --silent \
    --configure-bucket stoke-one >"$work/s3rver.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.2; done
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
EP=http://127.0.0.1:$port

# KIND is dir or s3: the store URL of NAME, the extra options, its listing
url() { if [ "$KIND" = dir ]; then echo "$work/$1"; else echo "s3://stoke-one/$1"; fi; }
sopts() { [ "$KIND" = dir ] || echo "--s3-endpoint $EP --s3-path-style"; }
listing() { # listing NAME: the object keys, one a line
    if [ "$KIND" = dir ]; then
        (cd "$work/$1" 2>/dev/null && find . -type f | sed 's|^\./||' | sort)
    else
        aws --endpoint-url "$EP" s3 ls --recursive "s3://stoke-one/$1/" | awk '{print $4}' | sort
    fi
}
gen() { # gen NAME SEED [--entries]
    # shellcheck disable=SC2046
    "$QUERY" generate --store "$(url "$1")" $(sopts) --hosts $HOSTS --services 2 --hours 1 \
        --start "$H0" --seed "$2" ${3:-} "${SRC[@]}" >"$work/gen.log" 2>&1 ||
        fail "generate $1: $(cat "$work/gen.log")"
}
start_worker() { # start_worker NAME: sets $URL
    local log=$work/q-$KIND-$1.log p=
    # emptied here, not by the child's redirection: a worker started twice
    # under one name (mixed, before and after compaction) must not be
    # read the port its predecessor printed before the child truncates
    : >"$log"
    # shellcheck disable=SC2046
    "$QUERY" --store "$(url "$1")" $(sopts) --listen 127.0.0.1:0 --cache-mb 0 >/dev/null 2>"$log" &
    pids+=($!)
    WPID=$!
    # up to 30 s on a loaded machine
    for _ in $(seq 300); do
        p=$(sed -n 's/.* on port \([0-9]*\).*/\1/p' "$log" 2>/dev/null)
        [ -n "$p" ] && break
        sleep 0.1
    done
    [ -n "$p" ] || fail "$KIND: worker $1 did not start: $(tail -c 300 "$log")"
    URL=http://127.0.0.1:$p
}
# answers NAME: "selector total skipped" for the whole fleet and each service
answers() {
    start_worker "$1"
    local sel
    for sel in '{}' '{service_name="svc-00"}' '{service_name="svc-01"}'; do
        curl -s -G "$URL/api/v1/top" --data-urlencode "query=$sel" --data-urlencode "from=$H0" \
            --data-urlencode "until=$((H0 + 3600000))" --data-urlencode limit=1 |
            python3 -c 'import json,sys; j=json.load(sys.stdin)
print(sys.argv[1], j["total"], j["stats"]["skipped"])' "$sel"
    done
    kill "$WPID" 2>/dev/null
    wait "$WPID" 2>/dev/null
}
# sum A B: the per-selector totals of A and B added
sum() { paste -d' ' "$1" "$2" | awk '{printf "%s %.0f %.0f\n", $1, $2 + $5, $3 + $6}'; }

for KIND in dir s3; do
    echo "== $KIND store"
    # a. one object per flush
    gen new 1
    listing new >"$work/ls-new"
    flushes=$((HOSTS * 60))
    check "$KIND: generate wrote $flushes segments ($(grep -c '\.seg$' "$work/ls-new"))" \
        [ "$(grep -c '\.seg$' "$work/ls-new")" -eq $flushes ]
    check "$KIND: and nothing else ($(wc -l <"$work/ls-new") objects)" \
        [ "$(wc -l <"$work/ls-new")" -eq $flushes ]

    # b. the old layout answers the same
    gen old 1 --entries
    listing old >"$work/ls-old"
    check "$KIND: the old layout has an entry per segment ($(grep -c 'entries/.*\.man$' "$work/ls-old"))" \
        [ "$(grep -c 'entries/.*\.man$' "$work/ls-old")" -eq $flushes ]
    answers new >"$work/a-new"
    answers old >"$work/a-old"
    check "$KIND: the new layout answers, every service ($(tr '\n' ' ' <"$work/a-new"))" \
        [ "$(awk '$2 > 0 && $3 == 0' "$work/a-new" | wc -l)" -eq 3 ]
    if diff "$work/a-new" "$work/a-old" >"$work/diff"; then
        pass "$KIND: the old layout answers the same totals, whole fleet and per service"
    else
        fail "$KIND: old and new layouts differ: $(cat "$work/diff")"
    fi

    # c. a mixed store: the sum, then the same after compaction
    gen mixed 1 --entries
    gen mixed 2
    gen new2 2
    answers new2 >"$work/a-new2"
    sum "$work/a-old" "$work/a-new2" >"$work/a-sum"
    answers mixed >"$work/a-mixed"
    listing mixed >"$work/ls-mixed"
    check "$KIND: the mixed store holds both layouts ($(grep -c '\.seg$' "$work/ls-mixed") segments, $(grep -c '\.man$' "$work/ls-mixed") entries)" \
        [ "$(grep -c '\.seg$' "$work/ls-mixed")" -eq $((2 * flushes)) -a "$(grep -c '\.man$' "$work/ls-mixed")" -eq $flushes ]
    if diff "$work/a-sum" "$work/a-mixed" >"$work/diff"; then
        pass "$KIND: the mixed store answers the sum of its two layouts ($(head -1 "$work/a-mixed"))"
    else
        fail "$KIND: mixed store is not the sum: $(cat "$work/diff")"
    fi
    # shellcheck disable=SC2046
    "$QUERY" compact --store "$(url mixed)" $(sopts) >"$work/c.log" 2>&1
    rc=$?
    check "$KIND: compact exits 0 ($rc): $(tail -c 200 "$work/c.log")" [ "$rc" -eq 0 ]
    check "$KIND: compact merged every flush of both layouts" \
        grep -q "^compact: 1 hours compacted, 0 spans ($((2 * flushes)) flushes" "$work/c.log"
    listing mixed >"$work/ls-mixed2"
    check "$KIND: one block, one hour manifest and its index left ($(tr '\n' ' ' <"$work/ls-mixed2"))" \
        [ "$(grep -c '\.blk$' "$work/ls-mixed2")" -eq 1 -a "$(grep -c '/manifest/.*/hour-[0-9]*\.man$' "$work/ls-mixed2")" -eq 1 \
        -a "$(grep -c '/index/.*/hour-[0-9]*\.man$' "$work/ls-mixed2")" -eq 1 -a "$(wc -l <"$work/ls-mixed2")" -eq 3 ]
    answers mixed >"$work/a-mixed2"
    if diff "$work/a-sum" "$work/a-mixed2" >"$work/diff"; then
        pass "$KIND: after compaction the same sum"
    else
        fail "$KIND: compaction changed the mixed store's answers: $(cat "$work/diff")"
    fi
done
summary test_one_object
