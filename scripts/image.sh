#!/bin/bash
# Builds the container images of the prebuilt build/stoke-agent and
# build/stoke-query (run `make all` first) on this machine, with no registry:
#   build/stoke-agent.oci.tar, build/stoke-query.oci.tar   (OCI archives)
# Each image is one layer: a root filesystem of Debian's packages holding the
# runtime libraries its binary needs and nothing else (no shell, no dpkg, no
# apt), the CA bundle for TLS to S3, /etc/passwd and the binary, stripped.
#  1. The packages: every library `ldd` lists for the binary (the whole
#     closure), mapped to its package through dpkg's file lists, plus
#     ca-certificates.
#  2. The root filesystem: `mmdebstrap --variant=extract` of those packages
#     (and their dependencies) from the Debian mirror, without docs, man
#     pages and locales, both images' side by side. It is cached under
#     build/image/rootfs/ keyed by the sha256 of the suite, the sources, the
#     options and the package list: a second `make image` with the same
#     libraries does not go to the mirror.
#  3. A copy of it trimmed (stage(): no programs, no apt/dpkg leftovers, no
#     gconv) with the CA bundle, /etc/passwd and the stripped binary added.
#  4. The image: `buildah` from scratch (its own storage under build/image/,
#     vfs driver: no overlayfs needed), that tree added, the image config
#     set (entrypoint, user, ports, labels), committed as an oci-archive
#     with gzip layers and --timestamp SOURCE_DATE_EPOCH (the created date;
#     the archives are not byte-for-byte reproducible).
# packaging/container/*.Containerfile build the same images FROM
# debian:bookworm-slim for those who build with a registry.
# Environment: STOKE_DEBIAN_MIRROR (default http://deb.debian.org/debian),
# STOKE_DEBIAN_SECURITY (default http://deb.debian.org/debian-security),
# STOKE_VERSION (image tag, default the agent's --version),
# IMAGES="agent query" (which to build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
WORK=$BUILD/image
SUITE=bookworm
MIRROR=${STOKE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${STOKE_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
SOURCES=("deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main"
    "deb $SECURITY $SUITE-security main")
# The query worker's user (distroless' "nonroot"; deploy/kubernetes/base/query.yaml)
NONROOT=65532

need() { command -v "$1" >/dev/null 2>&1 || { echo "image.sh: $1 is missing: 'make image' installs it (scripts/deps.sh image)" >&2; exit 1; }; }
for t in mmdebstrap buildah dpkg ldd strip sha256sum; do need "$t"; done
for b in stoke-agent stoke-query; do
    [ -x "$BUILD/$b" ] || { echo "image.sh: $BUILD/$b is missing: run 'make all' first" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "image.sh: run as root (mmdebstrap and buildah write root-owned trees)" >&2; exit 1; }
VER=${STOKE_VERSION:-$("$BUILD/stoke-agent" --version | awk '{print $2}')}
[[ $VER =~ ^[0-9][A-Za-z0-9._-]*$ ]] || { echo "image.sh: bad version '$VER'" >&2; exit 1; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}

# packages BIN: the Debian packages of the libraries BIN loads, one a line.
# ldd prints the /lib paths of a merged-/usr system that dpkg may know as
# /usr/lib (or the reverse): each path is looked up as both (not by file
# name alone: libc6-i386 ships a lib32/libm.so.6 too), in dpkg's file lists
# at once (`dpkg -S` takes a second a path).
packages() {
    local so found line path pkg sos
    declare -A pkg_of=()
    mapfile -t sos < <(ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
    while read -r line; do # /var/lib/dpkg/info/PKG[:ARCH].list:PATH
        path=${line#*.list:}
        pkg=${line%%.list:*}
        pkg=${pkg##*/}
        pkg=${pkg%%:*}
        pkg_of[$path]=$pkg
        case $path in /usr/*) pkg_of[${path#/usr}]=$pkg ;; *) pkg_of[/usr$path]=$pkg ;; esac
    done < <(for so in "${sos[@]}"; do echo "$so"; case $so in /usr/*) echo "${so#/usr}" ;; *) echo "/usr$so" ;; esac; done |
        grep -HxF -f - /var/lib/dpkg/info/*.list)
    for so in "${sos[@]}"; do
        found=${pkg_of[$so]:-}
        if [ -z "$found" ]; then
            echo "image.sh: no Debian package holds $so (needed by $1)" >&2
            found='!missing'
        fi
        echo "$found"
    done | sort -u
}

# What mmdebstrap is told, besides the suite, the sources and the packages
# (all of it the cache key): extract only (no maintainer scripts, no dpkg
# database), without the documentation.
MMDEBSTRAP_OPTS=(--quiet --mode=root --variant=extract
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/info/*')

# rootfs NAME PKGS...: prints the path of the cached mmdebstrap tree
rootfs() {
    local name=$1 key dir tmp
    shift
    key=$(printf '%s\n' "$SUITE" "${SOURCES[@]}" "${MMDEBSTRAP_OPTS[@]}" "$@" | sha256sum | cut -c1-16)
    dir=$WORK/rootfs/$name-$key
    if [ -d "$dir" ]; then
        echo "image: $name: root filesystem cached ($dir)" >&2
        echo "$dir"
        return
    fi
    echo "image: $name: mmdebstrap $SUITE: $*" >&2
    rm -rf "$WORK/rootfs/$name"-*
    mkdir -p "$WORK/rootfs"
    tmp=$WORK/rootfs/.$name.tmp
    rm -rf "$tmp"
    mmdebstrap "${MMDEBSTRAP_OPTS[@]}" --include="$(IFS=,; echo "$*")" "$SUITE" "$tmp" "${SOURCES[@]}" >&2
    mv "$tmp" "$dir"
    echo "$dir"
}

# stage TREE DIR: DIR is a copy of the mmdebstrap TREE holding what the
# program needs and no more, with the files an image needs added
stage() {
    local t=$2
    rm -rf "$t"
    cp -a "$1" "$t"
    # what extract leaves of apt and dpkg, and the packages' programs
    # (openssl, p11-kit's, ...): the image runs one program, ours; glibc's
    # iconv modules (8 MB): nothing converts character sets
    rm -rf "$t"/var/cache/apt "$t"/var/lib/apt "$t"/var/lib/dpkg "$t"/var/log/* "$t"/etc/apt \
        "$t"/usr/share/doc "$t"/usr/share/man "$t"/usr/share/locale "$t"/usr/share/lintian \
        "$t"/usr/share/info "$t"/dev/* "$t"/usr/bin "$t"/usr/sbin "$t"/bin "$t"/sbin \
        "$t"/usr/lib/x86_64-linux-gnu/gconv "$t"/usr/lib/aarch64-linux-gnu/gconv
    # the bundle update-ca-certificates would write (extract runs no
    # maintainer scripts): every certificate ca-certificates ships
    mkdir -p "$t/etc/ssl/certs" "$t/usr/bin"
    find "$t/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat \
        >"$t/etc/ssl/certs/ca-certificates.crt"
    rm -rf "$t/usr/share/ca-certificates"
    printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/usr/sbin/nologin\n' \
        "$NONROOT" "$NONROOT" >"$t/etc/passwd"
    printf 'root:x:0:\nnonroot:x:%s:\n' "$NONROOT" >"$t/etc/group"
    printf 'hosts: files dns\n' >"$t/etc/nsswitch.conf"
    install -d -m 1777 "$t/tmp" "$t/var/tmp"
    install -d -m 0755 "$t/root" "$t/etc/stoke" "$t/var/lib/stoke" "$t/proc" "$t/sys" "$t/dev"
    install -d -m 0755 -o "$NONROOT" -g "$NONROOT" "$t/home/nonroot" "$t/var/cache/stoke-query"
}

# image NAME BIN USER PORT: build/NAME.oci.tar (its tree fetched first)
image() {
    local name=$1 bin=$2 user=$3 port=$4 pkgs tree dir ctr out
    mapfile -t pkgs <"$WORK/$name.pkgs"
    tree=$(cat "$WORK/$name.tree")
    dir=$WORK/$name.root
    stage "$tree" "$dir"
    install -m 0755 "$BUILD/$bin" "$dir/usr/bin/$bin"
    strip --strip-unneeded --remove-section=.comment "$dir/usr/bin/$bin"
    out=$BUILD/$name.oci.tar
    ctr=$("${BUILDAH[@]}" from --quiet scratch)
    "${BUILDAH[@]}" add --quiet "$ctr" "$dir" /
    "${BUILDAH[@]}" config --entrypoint "[\"/usr/bin/$bin\"]" --cmd '' --user "$user" \
        --workingdir / --port "$port/tcp" --os linux --arch "$(dpkg --print-architecture)" \
        --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --label org.opencontainers.image.title="$name" \
        --label org.opencontainers.image.version="$VER" \
        --label org.opencontainers.image.description="Stoke $name ($SUITE packages: ${pkgs[*]})" \
        --label org.opencontainers.image.licenses=Apache-2.0 \
        --created-by "scripts/image.sh (mmdebstrap $SUITE + buildah)" "$ctr"
    rm -f "$out"
    "${BUILDAH[@]}" commit --quiet --format oci --disable-compression=false --timestamp "$SOURCE_DATE_EPOCH" --rm "$ctr" \
        "oci-archive:$out:localhost/$name:$VER" >/dev/null
    echo "image: $out ($(du -k "$out" | cut -f1) KiB compressed; $(du -sk "$dir" | cut -f1) KiB unpacked, of which the binary $(du -k "$dir/usr/bin/$bin" | cut -f1) KiB)"
}

mkdir -p "$WORK"
BUILDAH=(buildah --root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs)
"${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true # what a run cut short left
names=()
for i in ${IMAGES:-agent query}; do
    case $i in
    agent | query) names+=("stoke-$i") ;;
    *) echo "image.sh: unknown image '$i' (agent, query)" >&2; exit 1 ;;
    esac
done
# The trees are fetched side by side (mmdebstrap waits on the mirror, not
# the CPU: a cold `make image` takes one fetch's time, not two).
fetchers=()
for n in "${names[@]}"; do
    packages "$BUILD/$n" >"$WORK/$n.pkgs"
    if grep -qx '!missing' "$WORK/$n.pkgs"; then exit 1; fi
    mapfile -t pkgs <"$WORK/$n.pkgs"
    rootfs "$n" ca-certificates "${pkgs[@]}" >"$WORK/$n.tree" &
    fetchers+=($!)
done
for p in "${fetchers[@]}"; do
    wait "$p" || { echo "image.sh: mmdebstrap failed (above)" >&2; exit 1; }
done
for n in "${names[@]}"; do
    case $n in
    stoke-agent) image stoke-agent stoke-agent 0:0 9465 ;;
    stoke-query) image stoke-query stoke-query "$NONROOT:$NONROOT" 4040 ;;
    esac
done
