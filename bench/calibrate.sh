#!/usr/bin/env bash
# Calibrates the fleet generator (issue #18, item 1): runs build/stoke-agent
# on this host for CALIB_SECONDS (default 300) at 19 Hz, 10 s windows, 60 s
# flushes, into a directory store, while a varied load runs (gcc compiling,
# CPython, gzip/xz/bzip2, sqlite3, a JVM, node, a shell pipeline; whatever of
# them is installed), then measures the agent's output with
# bench/calibrate.py: distinct stacks, functions and label sets per
# host-hour, rows per host-hour, stack depth, skew (top 1%/10% stacks' share
# of samples) and churn between windows (share of a window's stacks not seen
# in the window before), and the store's objects and bytes per host-hour.
# Prints the figures and the `stoke-query generate --model` flags that
# reproduce them (docs/storage.md, "The calibrated fleet").
#
#   bench/calibrate.sh [OUT.json]        (needs root; default: build/bench/calibration.json)
#   CALIB_SECONDS=300 CALIB_KEEP=DIR (keep the agent's output there)
set -eu
cd "$(dirname "$0")/.."
SECS=${CALIB_SECONDS:-300}
OUTJSON=${1:-build/bench/calibration.json}
mkdir -p "$(dirname "$OUTJSON")"
[ -x build/stoke-agent ] || make -s all
dir=${CALIB_KEEP:-$(mktemp -d)}
[ -n "${CALIB_KEEP:-}" ] || trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/out" "$dir/store" "$dir/load"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; }
trap 'cleanup; [ -n "${CALIB_KEEP:-}" ] || rm -rf "$dir"' EXIT
end=$(($(date +%s) + SECS + 5))
loop() { # loop NAME CMD...: run CMD until the end, in its own process group
    setsid bash -c 'while [ $(date +%s) -lt '"$end"' ]; do '"$2"' >/dev/null 2>&1 || sleep 1; done' &
    pids+=($!)
}
L=$dir/load
command -v gcc >/dev/null && loop gcc "gcc -O2 -c -o $L/x.o query/engine/query.c -I. -Ibuild -Ibuild/proto -D_GNU_SOURCE; gcc -O1 -c -o $L/y.o codec/segment_read.c -I. -Ibuild -Ibuild/proto -D_GNU_SOURCE"
command -v python3 >/dev/null && loop py "/usr/bin/python3 -c 'import json,re,hashlib;d=[{\"k\":i,\"v\":str(i)*20} for i in range(200000)];s=json.dumps(d);json.loads(s);[hashlib.sha256(s[i:i+4096].encode()).hexdigest() for i in range(0,len(s),4096)];sorted(re.findall(r\"[0-9]+\",s[:2000000]))'"
head -c 30000000 /dev/urandom | base64 >"$L/blob" 2>/dev/null || true
command -v gzip >/dev/null && loop gz "gzip -6 -c $L/blob >/dev/null; xz -1 -T1 -c $L/blob | head -c 1 >/dev/null; bzip2 -c $L/blob | head -c 1000000 >/dev/null"
command -v sqlite3 >/dev/null && loop sql "rm -f $L/t.db; sqlite3 $L/t.db 'create table t(a integer, b text); with recursive c(x) as (select 1 union all select x+1 from c where x<300000) insert into t select x, hex(randomblob(16)) from c; create index i on t(b); select count(*), sum(a) from t where b like \"%AB%\"; select b from t order by b limit 5;'"
if command -v java >/dev/null; then
    cat >"$L/Busy.java" <<'J'
import java.util.*;
public class Busy {
    static long fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }
    public static void main(String[] a) {
        long end = System.currentTimeMillis() + 1000L * Long.parseLong(a[0]);
        Random r = new Random(1); long s = 0;
        while (System.currentTimeMillis() < end) {
            HashMap<String, Integer> m = new HashMap<>();
            for (int i = 0; i < 200000; i++) m.merge(Integer.toString(r.nextInt(50000)), 1, Integer::sum);
            ArrayList<Integer> l = new ArrayList<>(m.values()); Collections.sort(l);
            s += l.get(0) + fib(24) + String.join(",", m.keySet()).length();
        }
        System.out.println(s);
    }
}
J
    loop jvm "java -Xmx128m $L/Busy.java 60"
fi
command -v node >/dev/null && loop node "node bench/busy.js 30"
loop sh "{ find /usr/share -type f -name '*.gz' 2>/dev/null | head -400 | xargs -r zcat 2>/dev/null | sort | uniq -c | sort -rn | head -1; grep -r --include='*.h' -c static /usr/include; }"
sleep 3
echo "calibrate: agent ${SECS}s with ${#pids[@]} load loops, output in $dir" >&2
build/stoke-agent --frequency 19 --window 10 --flush 60 --duration "$SECS" --metrics-addr off \
    --host-name calib --output-dir "$dir/out" --store "$dir/store" --log-level warn
cleanup
python3 bench/calibrate.py --out-dir "$dir/out" --store "$dir/store" --seconds "$SECS" --json "$OUTJSON"
