#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages Stoke needs, or prints the exact
# apt-get line when not root. Usage: scripts/deps.sh build [test]
set -euo pipefail

build_pkgs=(make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev libdw-dev
    libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libzstd-dev zlib1g-dev
    libmicrohttpd-dev libcjson-dev libiberty-dev golang-github-google-pprof-dev)
test_pkgs=(libcmocka-dev libclang-rt-14-dev linux-perf golang-go g++ binutils elfutils
    procps python3 curl awscli nodejs npm util-linux chromium
    dpkg-dev lintian rpm rpmlint python3-yaml help2man strace
    # test_agent_rss.sh and make bench: libc's separate DWARF (10 MB of
    # compressed sections), the heaviest thing the symbolizer opens
    libc6-dbg
    # make bench: bcc's profile compiles its BPF C against kernel headers;
    # with none for the running kernel, bench/run.sh points BCC_KERNEL_SOURCE
    # at Debian's (merged -common + -<arch> trees).
    "linux-headers-$(dpkg --print-architecture 2>/dev/null || echo amd64)")

want=("${build_pkgs[@]}")
for arg in "$@"; do
    [ "$arg" = test ] && want+=("${test_pkgs[@]}")
done

# npm test tools, project-local under build/ (never global): s3rver, the
# S3-compatible server of the store tests, and playwright-core, which drives
# Debian's chromium in the web page test.
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
}

missing=()
for p in "${want[@]}"; do
    # bpftool lives in linux-tools-common on Ubuntu, in bpftool on Debian.
    if [ "$p" = bpftool ] && command -v bpftool >/dev/null 2>&1; then continue; fi
    if [ "$p" = linux-perf ] && command -v perf >/dev/null 2>&1 && perf --version >/dev/null 2>&1; then continue; fi
    # A Node.js from elsewhere (the image's own) is as good as Debian's.
    if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
    if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
want_npm=false
for arg in "$@"; do [ "$arg" = test ] && want_npm=true; done
if [ ${#missing[@]} -eq 0 ]; then
    $want_npm && npm_deps
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "Stoke needs these packages; run as root:" >&2
    echo "  apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
$want_npm && npm_deps
exit 0
