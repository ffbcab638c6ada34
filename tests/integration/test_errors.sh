#!/usr/bin/env bash
# Start-up errors a user can meet: each must be a clear message and a
# non-zero exit, never a crash.
set -u
. "$(dirname "$0")/lib.sh"
need setpriv

echo "== start-up errors"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
    "$AGENT" --duration 1 --metrics-addr off 2>&1); rc=$?
check "unprivileged run exits 1" test $rc -eq 1
check "unprivileged run names the missing capability" grep -q "missing capability CAP_BPF" <<<"$out"

out=$("$AGENT" --frequency 5000 2>&1); rc=$?
check "--frequency 5000 is refused" test $rc -eq 2
check "the message gives the range" grep -q "from 1 to 1000" <<<"$out"

cfg=$(mktemp); printf 'frequency = 99\nwindow = soon\n' > "$cfg"
out=$("$AGENT" --config "$cfg" 2>&1); rc=$?
check "bad config file is refused" test $rc -eq 2
check "the message names file and line" grep -q "$cfg: line 2: window" <<<"$out"
rm -f "$cfg"

out=$("$AGENT" --config /nonexistent/agent.conf 2>&1); rc=$?
check "missing config file is refused" test $rc -eq 2
check "the message names the file" grep -q "cannot open config file /nonexistent/agent.conf" <<<"$out"

out=$("$AGENT" --relabel 'keep:service_name=(' --duration 1 --metrics-addr off 2>&1); rc=$?
check "bad relabel regex is refused" test $rc -eq 1
check "the message quotes the rule" grep -q "relabel rule 'keep:service_name=('" <<<"$out"

out=$("$AGENT" --help); rc=$?
check "--help exits 0 and lists --frequency" bash -c "[ $rc -eq 0 ] && grep -q -- '--frequency HZ' <<<\"\$0\"" "$out"

summary test_errors
