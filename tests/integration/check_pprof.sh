#!/usr/bin/env bash
# check_pprof.sh DIR — checks every pprof file Stoke wrote against the folded
# file written beside it from the same profile.
#
# For each DIR/*.pb.gz and DIR/*/*.pb.gz with a STEM.folded beside it:
#   1. `go tool pprof -raw` must open it (the reference reader accepts it);
#   2. build/pprof_total, built from Google's Go profile package (not from
#      Stoke's C code), must report the same total samples and the same
#      samples per leaf function as the folded file (leaf = last ';' element).
# Prints "N passed, N failed"; exits non-zero when anything failed.
set -u

dir=${1:?usage: check_pprof.sh DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build}
reader=$build/pprof_total
src=$root/tests/integration/pprof_total

command -v go >/dev/null || { echo "check_pprof: go not found (apt-get install golang-go)" >&2; exit 2; }
[ -n "${HOME:-}" ] || export GOCACHE=${GOCACHE:-$build/gocache}

if [ ! -x "$reader" ] || [ "$src/main.go" -nt "$reader" ]; then
    mkdir -p "$build"
    (cd "$root" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$reader" ./tests/integration/pprof_total) || {
        echo "check_pprof: cannot build $reader (needs golang-github-google-pprof-dev)" >&2; exit 2; }
fi

# The folded file's view, in pprof_total's format. Counts may exceed 2^31:
# printed with %.0f, exact up to 2^53.
folded_view() {
    LC_ALL=C awk '
        NF == 0 { next }
        {
            n = $NF
            stack = substr($0, 1, length($0) - length(n) - 1)
            k = split(stack, f, ";")
            leaf[f[k]] += n
            total += n
        }
        END {
            printf "total %.0f\n", total
            for (l in leaf) if (leaf[l] != 0) printf "leaf %.0f\t%s\n", leaf[l], l
        }' "$1" | LC_ALL=C sort
}

passed=0; failed=0
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
shopt -s nullglob
for pb in "$dir"/*.pb.gz "$dir"/*/*.pb.gz; do
    folded=${pb%.pb.gz}.folded
    [ -f "$folded" ] || continue
    ok=1
    if ! go tool pprof -symbolize=none -raw "$pb" >"$tmp/raw" 2>"$tmp/raw.err"; then
        echo "FAIL $pb: go tool pprof cannot open it: $(head -3 "$tmp/raw.err")"; ok=0
    elif ! grep -q '^Samples:' "$tmp/raw"; then
        echo "FAIL $pb: go tool pprof -raw printed no samples section"; ok=0
    fi
    if ! "$reader" "$pb" 2>"$tmp/reader.err" | LC_ALL=C sort >"$tmp/pprof"; then
        echo "FAIL $pb: pprof_total: $(cat "$tmp/reader.err")"; ok=0
    elif [ ! -s "$tmp/pprof" ]; then
        echo "FAIL $pb: pprof_total printed nothing: $(cat "$tmp/reader.err")"; ok=0
    else
        folded_view "$folded" >"$tmp/folded"
        if ! diff -u "$tmp/folded" "$tmp/pprof" >"$tmp/diff"; then
            echo "FAIL $pb: totals differ from $folded (- folded, + pprof):"
            head -20 "$tmp/diff"; ok=0
        fi
    fi
    if [ $ok = 1 ]; then
        echo "ok   $pb ($(grep "^total" "$tmp/folded"))"
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "check_pprof: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
