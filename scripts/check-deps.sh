#!/usr/bin/env bash
# `make test`: every tool the Makefiles, scripts/ and tests/ call must come
# from a package scripts/deps.sh installs; otherwise a fresh machine (CI)
# fails where a developer's, with the tool installed by hand, passes.
# The tools are read from the code, not listed again here:
#   need X, optional X, for t in X Y; do need "$t"   (tests' lib.sh, test_packages.sh)
#   command -v X                                      (a tool used when present)
#   CC ?= X, CLANG ?= X, ...                          (the Makefiles' tool variables)
# Each must have a COMMAND:PACKAGE entry in deps.sh's tools table, and the
# package must be in one of its groups. bench/ is left out: it compares
# with bpftrace and bcc when they are there.
# Usage: scripts/check-deps.sh [ROOT]. Prints "check-deps: ..." and exits 1
# naming each tool without a package.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

# Used only when present, never installed, with the reason.
not_installed=()

word='[A-Za-z0-9_.+-]+'
cmd_start='(^|[;&|({!]|\bif|\bthen|\bdo|\belse|\bwhile)\s*'
scripts=$(find tests scripts -name '*.sh' | sort)
# shellcheck disable=SC2086
used=$(
    {
        grep -hv '^\s*#' $scripts | grep -oP "${cmd_start}(need|optional)\s+\K\"?$word" | tr -d '"'
        # for t in A B C; do need "$t"
        grep -hv '^\s*#' $scripts |
            sed -nE 's/.*\bfor ([a-z_]+) in ([^;]+); do (need|optional) "?\$\1"?.*/\2/p' | tr ' ' '\n'
        grep -hv '^\s*#' $scripts | grep -oP "\bcommand -v \K$word"
        sed -nE "s/^(CC|CXX|CLANG|BPFTOOL|PROTOC_C|OBJCOPY|STRIP|AR)\s*[:?]?=\s*($word)\s*$/\2/p" \
            Makefile tests/fixtures/Makefile
    } | grep -v '^$' | sort -u
)
packages=$(scripts/deps.sh --packages build test lint packages)
table=$(scripts/deps.sh --tools)

bad=0 n=0
for t in $used; do
    n=$((n + 1))
    if printf '%s\n' "${not_installed[@]}" | grep -qx -- "$t"; then continue; fi
    pkg=$(awk -v t="$t" '$1 == t {print $2; exit}' <<<"$table")
    if [ -z "$pkg" ]; then
        echo "check-deps: '$t' is called ($(grep -rlw -- "$t" tests scripts Makefile | head -3 | paste -sd' ')) but scripts/deps.sh has no package for it: add $t:PACKAGE to its tools and PACKAGE to a group" >&2
        bad=$((bad + 1))
    elif ! grep -qx -- "$pkg" <<<"$packages"; then
        echo "check-deps: '$t' comes from package $pkg, which no group of scripts/deps.sh installs" >&2
        bad=$((bad + 1))
    fi
done
if [ "$bad" -gt 0 ]; then
    echo "check-deps: $bad of $n tools have no package in scripts/deps.sh"
    exit 1
fi
echo "check-deps: $n tools, each from a package scripts/deps.sh installs"
