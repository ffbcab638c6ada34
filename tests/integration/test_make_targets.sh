#!/usr/bin/env bash
# What a new user meets with the make targets on a fresh machine:
#   - scripts/check-deps.sh (make test) fails when a tool the tests call has
#     no package in scripts/deps.sh;
#   - scripts/deps.sh waits for another apt/dpkg (unattended-upgrades on a
#     new cloud VM) instead of failing, and says so;
#   - make packages installs rpmbuild when it is missing and builds the .rpm;
#   - make run (scripts/run.sh) ends cleanly on Ctrl-C: the agent flushes,
#     both processes stop, exit 0 and no "make: *** ... Error".
# Removes and reinstalls two packages (help2man, rpm) on this machine, from
# .debs it first puts in apt's cache, so the machine ends as it began even
# offline. Run as root.
set -u
. "$(dirname "$0")/lib.sh"
need python3

[ "$(id -u)" -eq 0 ] || { echo "test_make_targets: needs root (apt, dpkg)" >&2; exit 1; }
tmp=$(mktemp -d)
holder=
restore=
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null && wait "$holder" 2>/dev/null
    for p in $(pgrep -f -- "--store $tmp/data"); do kill -KILL "$p" 2>/dev/null; done
    for p in $restore; do
        dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed ||
            dpkg -i /var/cache/apt/archives/"${p}"_*.deb >/dev/null 2>&1 ||
            apt-get install -y -qq "$p" >/dev/null 2>&1
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
not_installed() { ! installed "$1"; }
# remove_for_test PKG [DPKG-OPTION...]: removes PKG, to be restored on
# exit; its .deb is fetched into apt's cache first. Fails when it cannot be.
remove_for_test() {
    apt-get install --reinstall --download-only -y -qq "$1" >/dev/null 2>&1 || return 1
    restore="$restore $1"
    dpkg -r "${@:2}" "$1" >/dev/null 2>&1
}
cannot_fetch() {
    if [ "${CI:-}" = true ]; then fail "cannot fetch $1: no package archive"; else echo "  skip: cannot fetch $1"; fi
}
# hold_locks SECONDS FILE...: holds apt's fcntl locks from another process,
# as a running apt would (flock(1) would not: apt takes fcntl locks).
hold_locks() {
    python3 -c '
import fcntl, sys, time
held = [open(p, "a") for p in sys.argv[2:]]
for f in held:
    fcntl.lockf(f, fcntl.LOCK_EX)
print("holding", flush=True)
time.sleep(float(sys.argv[1]))
' "$@" >"$tmp/holder.out" 2>&1 &
    holder=$!
    for _ in $(seq 300); do
        grep -q holding "$tmp/holder.out" && return 0
        sleep 0.1
    done
    return 1
}
release_locks() { kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null; holder=; }

echo "== make run: Ctrl-C is a clean stop"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# interrupt LOG TARGET CMD...: runs CMD in a process group of its own, as a
# terminal runs its foreground job, and once the agent samples sends SIGINT
# to TARGET: "group" (Ctrl-C: every process of the group) or "leader"
# (the command alone), or SIGTERM to the leader ("term"). Sets $rc ("hung"
# when it is still running 60 s later; then killed).
interrupt() {
    local log=$1 target=$2 pid
    shift 2
    rm -rf "$tmp/data"
    # a busy process, so the windows hold samples on an idle machine too
    # (19 Hz over 2 s of idle CPUs may give none, and then no segment)
    timeout 30 sh -c 'while :; do :; done' &
    burner=$!
    set -m
    # SIGINT at its default, as a terminal's job has it: a test run from a
    # background job (no job control) inherits it ignored, and then make
    # and run.sh could not see Ctrl-C at all (bash cannot trap a signal
    # ignored on entry)
    STOKE_DATA=$tmp/data STOKE_LISTEN=127.0.0.1:$port env --default-signal=INT "$@" >"$log" 2>&1 &
    pid=$!
    set +m
    for _ in $(seq 1800); do
        grep -q 'sampling .* CPUs' "$log" && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
    done
    sleep 2
    case $target in
    group) kill -INT -- -$pid ;;
    leader) kill -INT $pid ;;
    term) kill -TERM $pid ;;
    esac
    for _ in $(seq 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
    if kill -0 $pid 2>/dev/null; then
        kill -KILL -- -$pid 2>/dev/null
        wait $pid 2>/dev/null
        rc=hung
    else
        wait $pid
        rc=$?
    fi
    kill $burner 2>/dev/null
    wait $burner 2>/dev/null
}
leftovers() { pgrep -f -- "--store $tmp/data" | paste -sd' '; }
clean_stop() { # LOG: the agent flushed, run.sh said so, and nothing is left running
    check "... the agent flushed its last window" grep -q 'stopped after [0-9]* windows' "$1"
    check "... and wrote segments" test -n "$(find "$tmp/data" -name '*.seg' 2>/dev/null)"
    check "... run.sh said it stopped" grep -q '^Stoke stopped' "$1"
    check "... no stoke process left ($(leftovers))" test -z "$(leftovers)"
    grep -q '^Stoke stopped' "$1" || sed 's/^/    /' "$1" | grep -v '^ *[0-9]' | tail -5
}
interrupt "$tmp/make-run.log" group make -s -C "$ROOT" run "ARGS=--metrics-addr off"
# make passes the SIGINT on after its recipe ends: 130, silently, when the
# recipe ended well; a failed recipe makes it print "*** [...] Error N"
check "make run + Ctrl-C: make ends as interrupted, not failed (status $rc)" test "$rc" = 130
check "... no 'make: *** ... Error' line" bash -c "! grep -qE '\*\*\*' '$tmp/make-run.log'"
clean_stop "$tmp/make-run.log"
interrupt "$tmp/run1.log" group "$ROOT/scripts/run.sh" --metrics-addr off
check "scripts/run.sh + Ctrl-C exits 0 ($rc)" test "$rc" = 0
clean_stop "$tmp/run1.log"
interrupt "$tmp/run2.log" leader "$ROOT/scripts/run.sh" --metrics-addr off
check "scripts/run.sh + SIGINT to it alone exits 0 ($rc)" test "$rc" = 0
clean_stop "$tmp/run2.log"
interrupt "$tmp/run3.log" term "$ROOT/scripts/run.sh" --metrics-addr off
check "scripts/run.sh + SIGTERM exits 0 ($rc)" test "$rc" = 0
clean_stop "$tmp/run3.log"

echo "== check-deps: every tool the tests call has a package"
out=$("$ROOT/scripts/check-deps.sh" 2>&1); rc=$?
check "check-deps passes on this tree ($out)" test $rc -eq 0
mkdir -p "$tmp/tree"
cp -r "$ROOT/Makefile" "$ROOT/scripts" "$tmp/tree/"
mkdir -p "$tmp/tree/tests/fixtures" "$tmp/tree/tests/integration"
cp "$ROOT/tests/fixtures/Makefile" "$tmp/tree/tests/fixtures/"
cp "$ROOT"/tests/integration/*.sh "$tmp/tree/tests/integration/"
printf 'need frobnicate\n' >"$tmp/tree/tests/integration/test_new.sh"
out=$("$tmp/tree/scripts/check-deps.sh" "$tmp/tree" 2>&1); rc=$?
check "a test that needs a tool deps.sh lacks fails check-deps" test $rc -ne 0
check "... naming the tool" grep -qF "'frobnicate' is called (tests/integration/test_new.sh" <<<"$out"
sed -i 's/ protobuf-compiler//' "$tmp/tree/scripts/deps.sh"
printf 'need protoc\n' >"$tmp/tree/tests/integration/test_new.sh"
out=$("$tmp/tree/scripts/check-deps.sh" "$tmp/tree" 2>&1); rc=$?
check "protoc with protobuf-compiler in no group fails check-deps" test $rc -ne 0
check "... naming the package" grep -q "'protoc' comes from package protobuf-compiler" <<<"$out"

echo "== deps.sh waits for another apt"
pkg=help2man # in a group of deps.sh, small, nothing depends on it
if ! remove_for_test $pkg; then
    cannot_fetch $pkg
    summary test_make_targets
    exit
fi
check "$pkg removed for the test" not_installed $pkg
locks=(/var/lib/dpkg/lock-frontend /var/lib/apt/lists/lock)

# the lock is never released: deps.sh gives up after its timeout, clearly
check "locks held" hold_locks 600 "${locks[@]}"
t0=$SECONDS
STOKE_APT_LOCK_TIMEOUT=4 "$ROOT/scripts/deps.sh" build test >"$tmp/deps1.log" 2>&1
rc=$?
check "deps.sh gives up when the lock stays held (exit $rc, $((SECONDS - t0)) s)" \
    test $rc -ne 0 -a $((SECONDS - t0)) -lt 60
check "... saying who holds it" grep -q "waiting for another package manager to finish: .* (pid $holder) holds /var/lib/dpkg/lock-frontend" "$tmp/deps1.log"
check "... and that it gave up" grep -q "gave up after 4 s" "$tmp/deps1.log"
check "... with $pkg still missing" not_installed $pkg
release_locks

# the lock is released after a while: deps.sh waits, then installs
check "locks held" hold_locks 600 "${locks[@]}"
"$ROOT/scripts/deps.sh" build test >"$tmp/deps2.log" 2>&1 &
deps=$!
for _ in $(seq 600); do grep -q 'waiting for another' "$tmp/deps2.log" && break; sleep 0.1; done
sleep 3
check "deps.sh says it is waiting" grep -q "deps: waiting for another package manager to finish: .* (pid $holder)" "$tmp/deps2.log"
check "deps.sh is still waiting 3 s later" kill -0 $deps
release_locks
t0=$SECONDS
while kill -0 $deps 2>/dev/null && [ $((SECONDS - t0)) -lt 600 ]; do sleep 0.5; done
wait $deps
rc=$?
check "deps.sh goes on once the lock is free and exits 0 ($rc)" test $rc -eq 0
check "... saying so" grep -q "the package manager is free, going on" "$tmp/deps2.log"
check "... and installs $pkg" installed $pkg
[ $rc -eq 0 ] || sed 's/^/    /' "$tmp/deps2.log"

echo "== make packages on a machine without rpmbuild"
# rpmlint depends on rpm: removed the way a fresh machine lacks it
if remove_for_test rpm --force-depends; then
    check "rpm removed for the test" not_installed rpm
    "$ROOT/scripts/packages.sh" >"$tmp/pk0.log" 2>&1
    rc=$?
    check "scripts/packages.sh alone stops without rpmbuild (exit $rc)" test $rc -ne 0
    check "... saying what installs it" grep -q "rpmbuild is missing: 'make packages' installs it" "$tmp/pk0.log"
    rm -f "$ROOT"/build/packages/*.rpm
    make -s -C "$ROOT" packages >"$tmp/pk.log" 2>&1
    rc=$?
    check "make packages exits 0 ($rc)" test $rc -eq 0
    check "make packages installed rpm" installed rpm
    n=$(ls "$ROOT"/build/packages/*.rpm 2>/dev/null | wc -l)
    check "make packages built the two .rpm ($n)" test "$n" -eq 2
    [ "$n" -eq 2 ] || sed 's/^/    /' "$tmp/pk.log"
else
    cannot_fetch rpm
fi

summary test_make_targets
