#!/usr/bin/env bash
# `make lint`: formatting, clang-tidy and cppcheck over the project's C, and
# the include rules (scripts/check-includes.sh).
# The clang-tidy set leaves out checks that only flag style here (implicit
# widening of small products, sizeof of pointer arrays in realloc, memcmp
# used as a boolean); bugprone-* and the static analyzer stay.
set -uo pipefail
cd "$(dirname "$0")/.."
need() { command -v "$1" >/dev/null 2>&1 || { echo "lint: $1 is missing (scripts/deps.sh lint installs it)" >&2; exit 1; }; }
for t in git clang-format clang-tidy cppcheck; do need "$t"; done
files=$(git ls-files '*.c' '*.h' | grep -v '^bpf/' )
fail=0
echo "== clang-format"
for f in $files; do clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || { echo "needs formatting: $f"; fail=1; }; done
echo "== clang-tidy"
for f in $(echo "$files" | grep '\.c$' | grep -v '^tests/'); do
    clang-tidy --quiet "$f" -checks='-*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-narrowing-conversions,-bugprone-reserved-identifier,-bugprone-assignment-in-if-condition,-bugprone-implicit-widening-of-multiplication-result,-bugprone-sizeof-expression,-bugprone-suspicious-string-compare,-bugprone-misplaced-widening-cast,clang-analyzer-*,-clang-analyzer-security.insecureAPI.*,-clang-analyzer-optin.portability.UnixAPI' \
        -- -std=gnu11 -D_GNU_SOURCE -I. -Ibuild -Ibuild/proto 2>/dev/null | grep -E 'warning:|error:' |
        grep -v '^build/' && fail=1 # generated code (the BPF skeleton) is not ours to lint
done
echo "== cppcheck"
cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
    -I. -Ibuild -Ibuild/proto --suppress=missingIncludeSystem common agent symbolizer ingest exporter || fail=1
echo "== include rules"
scripts/check-includes.sh || fail=1
[ $fail -eq 0 ] && echo "lint: clean" || echo "lint: problems found"
exit $fail
