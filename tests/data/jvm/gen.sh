#!/usr/bin/env bash
# Writes tests/data/jvm/jdk<N>.txt, the fixture of tests/unit/test_hotspot.c,
# from the machine's JDK: runs tests/fixtures/runtimes/JvmWork.java until its
# methods are compiled, captures their line number tables and debug
# information from the VM's memory (capture.c, needs root or ptrace rights),
# and appends javap's LineNumberTable of each method, the truth the test
# decodes the VM's compressed tables against. Run from the repository root
# after `make`: bash tests/data/jvm/gen.sh
set -euo pipefail
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
gcc -g -I. -Ibuild -D_GNU_SOURCE -o "$tmp/capture" tests/data/jvm/capture.c build/libstoke.a -lelf
javac -g -d "$tmp" tests/fixtures/runtimes/JvmWork.java
java -cp "$tmp" JvmWork 30 "$tmp/truth.json" &
pid=$!
sleep 6
libjvm=$(awk '/libjvm\.so/ {print $6; exit}' /proc/$pid/maps)
"$tmp/capture" "$pid" "$libjvm" JvmWork >"$tmp/cap.txt"
major=$(awk '/^jdk / {print $2}' "$tmp/cap.txt")
out=tests/data/jvm/jdk$major.txt
{
    cat "$tmp/cap.txt"
    # javap -l: "static long alpha(int);" then "line L: BCI" rows
    javap -l -p -cp "$tmp" JvmWork | awk '
        /^  [^ ].*;$/ { m = "<clinit>"; if (index($0, "(")) { split($0, a, "("); n = split(a[1], w, " "); m = w[n] } }
        /^ +line [0-9]+: [0-9]+$/ { sub(":", "", $2); print "line JvmWork." m, $3, $2 }'
} >"$out"
echo "wrote $out: $(grep -c '^nmethod' "$out") compiled methods, $(grep -c '^line' "$out") lines"
