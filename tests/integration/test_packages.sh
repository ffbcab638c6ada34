#!/bin/bash
# Packages end to end: builds the .deb/.rpm (scripts/packages.sh), installs
# the debs, runs the INSTALLED agent with the installed config, then as the
# `stoke` user with exactly the capabilities of the installed unit, verifies
# the installed units, lints both formats, checks the rpm file lists, and
# removes/purges cleanly. Installs packages on this machine: run as root.
# Under CI=true lintian, rpmbuild, rpmlint and python3-yaml are required.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "test_packages: needs root (dpkg -i)" >&2; exit 1; }
for t in dpkg-deb dpkg-shlibdeps setpriv systemd-analyze; do need "$t"; done
optional() { # optional CMD: required under CI, else skipped with a note
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "${CI:-}" = true ]; then fail "$1 is required under CI"; else echo "  skip $1 checks: not installed"; fi
    return 1
}

PKGS=$ROOT/build/packages
TMP=$(mktemp -d /tmp/stoke-pkg.XXXXXX)
chmod 0755 "$TMP"
BURN=
cleanup() {
    [ -n "$BURN" ] && kill "$BURN" 2>/dev/null
    dpkg -P stoke-agent stoke-query >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

echo "== build"
check "scripts/packages.sh builds the packages" "$ROOT/scripts/packages.sh" >/dev/null
VER=$("$ROOT/build/stoke-agent" --version | awk '{print $2}')
ADEB=$PKGS/stoke-agent_${VER}_amd64.deb
QDEB=$PKGS/stoke-query_${VER}_amd64.deb
check "stoke-agent .deb exists" test -s "$ADEB"
check "stoke-query .deb exists" test -s "$QDEB"
deps=$(dpkg-deb -f "$ADEB" Depends)
for lib in libbpf1 libdw1 libdebuginfod1 libelf1 libprotobuf-c1 libcurl4 libzstd1 zlib1g libmicrohttpd12; do
    check "stoke-agent Depends on $lib" grep -q "$lib" <<<"$deps"
done
check "stoke-query Depends on libcjson1" grep -q libcjson1 <<<"$(dpkg-deb -f "$QDEB" Depends)"
check "conffiles: agent.conf and credentials.env" \
    diff <(dpkg-deb -I "$ADEB" conffiles) <(printf '/etc/stoke/agent.conf\n/etc/stoke/credentials.env\n')
check "credentials.env is 0600 in the .deb" \
    grep -q -- '-rw------- root/root .*./etc/stoke/credentials.env' <<<"$(dpkg-deb -c "$ADEB")"

echo "== install"
dpkg -P stoke-agent stoke-query >/dev/null 2>&1 || true
if ! dpkg -i "$ADEB" "$QDEB" >"$TMP/dpkg.log" 2>&1; then
    apt-get -f install -y >>"$TMP/dpkg.log" 2>&1 || true
fi
check "dpkg -i installs both packages" \
    test "$(dpkg-query -W -f='${db:Status-Status}' stoke-agent stoke-query)" = installedinstalled
for f in /usr/bin/stoke-agent /usr/bin/stoke-query /etc/stoke/agent.conf /etc/stoke/credentials.env \
    /etc/default/stoke-query /lib/systemd/system/stoke-agent.service /lib/systemd/system/stoke-query.service \
    /usr/share/doc/stoke-agent/copyright /usr/share/doc/stoke-agent/changelog.gz \
    /usr/share/man/man1/stoke-agent.1.gz /usr/share/man/man1/stoke-query.1.gz; do
    check "installed $f" test -e "$f"
done
check "user stoke exists" getent passwd stoke
check "/var/lib/stoke is stoke:stoke 0750" test "$(stat -c '%U:%G %a' /var/lib/stoke)" = "stoke:stoke 750"
check "credentials.env is root 0600" test "$(stat -c '%U %a' /etc/stoke/credentials.env)" = "root 600"
check "the installed stoke-agent --version is $VER" grep -q "$VER" <<<"$(/usr/bin/stoke-agent --version)"

echo "== the installed agent, installed config, as root"
# something to sample even on an idle machine (killed by pid in cleanup)
timeout 60 sh -c 'while :; do :; done' &
BURN=$!
/usr/bin/stoke-agent --config /etc/stoke/agent.conf --store "$TMP/root-store" --duration 10 --flush 10 \
    --metrics-addr off --top=5 >"$TMP/root.out" 2>&1
check "agent exits 0" test $? = 0
[ -n "$(find "$TMP/root-store" -name '*.seg' 2>/dev/null)" ] || sed 's/^/    /' "$TMP/root.out"
check "agent wrote segments" test -n "$(find "$TMP/root-store" -name '*.seg' -size +0 2>/dev/null)"

echo "== as user stoke with only the unit's capabilities"
UNIT=/lib/systemd/system/stoke-agent.service
caps=$(sed -n 's/^AmbientCapabilities=//p' "$UNIT" | tr ' ' '\n' | sed 's/^CAP_//' | tr 'A-Z' 'a-z' | paste -sd, -)
bound=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr ' ' '\n' | sed 's/^CAP_//' | tr 'A-Z' 'a-z' | paste -sd, -)
check "unit: ambient set == bounding set" test "$caps" = "$bound"
check "unit: CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH granted" \
    grep -q 'bpf.*perfmon.*sys_ptrace.*dac_read_search' <<<"$caps"
check "unit: no CAP_SYS_ADMIN" bash -c "! grep -q sys_admin <<<'$caps'"
plus=$(sed 's/^/+/; s/,/,+/g' <<<"$caps")
install -d -o stoke -g stoke "$TMP/caps-store"
setpriv --reuid=stoke --regid=stoke --init-groups --inh-caps=-all,"$plus" --ambient-caps=-all,"$plus" \
    --bounding-set=-all,"$plus" --no-new-privs \
    /usr/bin/stoke-agent --config /etc/stoke/agent.conf --store "$TMP/caps-store" --duration 10 --flush 10 \
    --metrics-addr off --top=5 >"$TMP/caps.out" 2>&1
check "agent as stoke with caps {$caps} exits 0" test $? = 0
check "  ...and wrote segments" test -n "$(find "$TMP/caps-store" -name '*.seg' -size +0 2>/dev/null)"
n=$(sed -n 's/^ *\([0-9]*\) samples in all.*/\1/p' "$TMP/caps.out")
check "  ...and profiled (${n:-0} samples)" test "${n:-0}" -gt 0
check "  ...segments are group-readable (a query worker running as stoke can read them)" \
    test -z "$(find "$TMP/caps-store" -type f ! -perm -g+r)"
setpriv --reuid=stoke --regid=stoke --init-groups --inh-caps=-all --ambient-caps=-all --bounding-set=-all \
    /usr/bin/stoke-agent --config /etc/stoke/agent.conf --store "$TMP/nocaps" --duration 2 \
    --metrics-addr off >"$TMP/nocaps.out" 2>&1
check "without the capabilities it refuses to start" test $? != 0
check "  ...naming the missing capability" grep -q "missing capability" "$TMP/nocaps.out"

kill "$BURN" 2>/dev/null; wait "$BURN" 2>/dev/null; BURN=

if command -v strace >/dev/null 2>&1; then
    strace -f -qq -o "$TMP/strace" /usr/bin/stoke-agent --config /etc/stoke/agent.conf \
        --store "$TMP/strace-store" --duration 3 --metrics-addr 127.0.0.1:0 >/dev/null 2>&1
    used=$(sed -n 's/^[0-9]* *\([a-z0-9_]*\)(.*/\1/p' "$TMP/strace" | sort -u)
    denied=$(sed -n 's/^SystemCallFilter=~//p' "$UNIT" | tr ' ' '\n' |
        while read -r g; do systemd-analyze syscall-filter "$g" | grep -v '^ *[#@]' | tr -d ' '; done | sort -u)
    bad=$(comm -12 <(echo "$used") <(echo "$denied") | paste -sd' ' -)
    check "no syscall the agent uses is denied by the unit's SystemCallFilter ${bad:+($bad)}" test -z "$bad"
fi

echo "== systemd units"
check "systemd-analyze verify the installed units" \
    systemd-analyze verify /lib/systemd/system/stoke-agent.service /lib/systemd/system/stoke-query.service
installed_running() { local p; for p in /proc/[0-9]*; do
    case $(readlink "$p/exe" 2>/dev/null) in /usr/bin/stoke-agent|/usr/bin/stoke-query) return 0;; esac; done; return 1; }
check "postinst started nothing (systemd is not PID 1 here)" bash -c "$(declare -f installed_running); ! installed_running"

echo "== lint"
if optional lintian; then
    lintian "$ADEB" "$QDEB" >"$TMP/lintian" 2>&1
    check "lintian: no errors $(grep -c '^E:' "$TMP/lintian") $(grep -m1 '^E:' "$TMP/lintian")" \
        bash -c "! grep -q '^E:' '$TMP/lintian'"
fi

echo "== rpm"
if optional rpmbuild; then
    ARPM=$(ls "$PKGS"/stoke-agent-"$VER"-*.x86_64.rpm 2>/dev/null | head -1)
    QRPM=$(ls "$PKGS"/stoke-query-"$VER"-*.x86_64.rpm 2>/dev/null | head -1)
    check "stoke-agent .rpm exists" test -s "$ARPM"
    check "stoke-query .rpm exists" test -s "$QRPM"
    la=$(rpm -qlp "$ARPM" 2>/dev/null)
    for f in /usr/bin/stoke-agent /etc/stoke/agent.conf /etc/stoke/credentials.env \
        /usr/lib/systemd/system/stoke-agent.service /var/lib/stoke /usr/share/man/man1/stoke-agent.1.gz; do
        check "rpm -qlp stoke-agent lists $f" grep -qx "$f" <<<"$la"
    done
    lq=$(rpm -qlp "$QRPM" 2>/dev/null)
    for f in /usr/bin/stoke-query /etc/sysconfig/stoke-query /usr/lib/systemd/system/stoke-query.service; do
        check "rpm -qlp stoke-query lists $f" grep -qx "$f" <<<"$lq"
    done
    check "rpm: config(noreplace) on agent.conf and credentials.env" \
        test "$(rpm -qp --configfiles "$ARPM" 2>/dev/null | sort | paste -sd' ')" = "/etc/stoke/agent.conf /etc/stoke/credentials.env"
    check "rpm: Requires libbpf.so.1 (AutoReq)" grep -q '^libbpf.so.1()(64bit)' <<<"$(rpm -qp --requires "$ARPM" 2>/dev/null)"
    check "rpm: no Debian-only CURL_OPENSSL_4 requirement" \
        bash -c "! rpm -qp --requires '$ARPM' '$QRPM' 2>/dev/null | grep -q CURL_OPENSSL"
    if optional rpmlint; then
        rpmlint -c "$ROOT/packaging/rpm/rpmlint.toml" "$ARPM" "$QRPM" >"$TMP/rpmlint" 2>&1
        check "rpmlint: 0 errors ($(grep -o '[0-9]* errors' "$TMP/rpmlint"))" grep -q ' 0 errors' "$TMP/rpmlint"
    fi
fi

echo "== remove and purge"
dpkg -r stoke-agent stoke-query >"$TMP/rm.log" 2>&1
check "dpkg -r succeeds" test $? = 0
check "no binaries left in /usr/bin" bash -c '! ls /usr/bin/stoke-* 2>/dev/null | grep -q .'
check "no units left in /lib/systemd/system" bash -c '! ls /lib/systemd/system/stoke-* 2>/dev/null | grep -q .'
check "conffiles kept after remove" test -f /etc/stoke/agent.conf
dpkg -P stoke-agent stoke-query >"$TMP/purge.log" 2>&1
check "dpkg -P succeeds" test $? = 0
check "/etc/stoke gone after purge" test ! -e /etc/stoke
check "/etc/default/stoke-query gone after purge" test ! -e /etc/default/stoke-query
check "/var/lib/stoke gone after purge" test ! -e /var/lib/stoke
check "no enablement symlinks left" \
    bash -c '! find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled -name "stoke-*" 2>/dev/null | grep -q .'
check "dpkg forgot both packages" bash -c '! dpkg-query -W stoke-agent stoke-query >/dev/null 2>&1'

# the Kubernetes manifests have their own script in run.sh: test_k8s_manifests.sh
summary test_packages
