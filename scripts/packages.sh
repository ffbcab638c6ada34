#!/bin/bash
# Builds the binary packages of the prebuilt build/stoke-agent and
# build/stoke-query (run `make all` first):
#   build/packages/stoke-agent_VER_amd64.deb, stoke-query_VER_amd64.deb (dpkg-deb)
#   build/packages/stoke-agent-VER-1.x86_64.rpm, stoke-query-...    (rpmbuild)
# Both formats are made from one staged tree per package (build/packages/stage/PKG).
# Debian Depends come from dpkg-shlibdeps; RPM Requires from rpm's AutoReq (sonames).
# Environment: SKIP_RPM=1 skips the rpm; STOKE_VERSION overrides the version.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
OUT=$BUILD/packages
STAGE=$OUT/stage
DEB=$ROOT/packaging/deb
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
RPMARCH=x86_64
[ "$ARCH" = arm64 ] && RPMARCH=aarch64
MAINT="Stoke maintainers <maintainers@users.noreply.b-seed-cfbf746f.example>"

for b in stoke-agent stoke-query; do
    [ -x "$BUILD/$b" ] || { echo "packages.sh: $BUILD/$b is missing: run 'make all' first" >&2; exit 1; }
done
# `make packages` installs these first (scripts/deps.sh packages).
need() { command -v "$1" >/dev/null 2>&1 || { echo "packages.sh: $1 is missing: 'make packages' installs it (scripts/deps.sh packages)${2:-}" >&2; exit 1; }; }
for t in dpkg-deb strip objdump; do need "$t"; done
[ "${SKIP_RPM:-0}" = 1 ] || need rpmbuild ", or SKIP_RPM=1 builds the .deb only"
VER=${STOKE_VERSION:-$("$BUILD/stoke-agent" --version | awk '{print $2}')}
[[ $VER =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || { echo "packages.sh: bad version '$VER'" >&2; exit 1; }
# reproducible: the date of the last commit, else now
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
DATE=$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")

rm -rf "$STAGE" "$OUT"/*.deb "$OUT"/*.rpm "$OUT/rpmbuild"
mkdir -p "$STAGE"

stage_common() { # PKG BIN MANDESC
    local pkg=$1 bin=$2 desc=$3 d=$STAGE/$1
    install -d -m 0755 "$d/usr/bin" "$d/lib/systemd/system" "$d/usr/share/doc/$pkg" \
        "$d/usr/share/man/man1" "$d/DEBIAN"
    install -m 0755 "$BUILD/$bin" "$d/usr/bin/$bin"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$d/usr/bin/$bin"
    install -m 0644 "$ROOT/systemd/$bin.service" "$d/lib/systemd/system/$bin.service"
    install -m 0644 "$DEB/copyright" "$d/usr/share/doc/$pkg/copyright"
    sed -e "s/@VERSION@/$VER/" -e "s/@DATE@/$DATE/" "$DEB/changelog" |
        gzip -9n > "$d/usr/share/doc/$pkg/changelog.gz"
    if command -v help2man >/dev/null 2>&1; then
        help2man -N -s 1 -n "$desc" --version-string="$VER" --no-discard-stderr \
            -o "$d/usr/share/man/man1/$bin.1" "$BUILD/$bin" >/dev/null
    else # the --help text as a minimal man page
        { echo ".TH ${bin^^} 1 \"\" \"$VER\" \"Stoke\""
          echo ".SH NAME"; echo "$bin \\- $desc"
          echo ".SH DESCRIPTION"; echo ".nf"
          "$BUILD/$bin" --help 2>&1 | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./'
          echo ".fi"; } > "$d/usr/share/man/man1/$bin.1"
    fi
    gzip -9n "$d/usr/share/man/man1/$bin.1"
    # intended deviations (root-only credential files), with the reason in docs/install.md
    install -d -m 0755 "$d/usr/share/lintian/overrides"
    install -m 0644 "$DEB/$pkg/lintian-overrides" "$d/usr/share/lintian/overrides/$pkg"
    for s in postinst prerm postrm; do
        install -m 0755 "$DEB/$pkg/$s" "$d/DEBIAN/$s"
    done
}

# --- stoke-agent ---------------------------------------------------------
stage_common stoke-agent stoke-agent "continuous CPU profiler agent (eBPF)"
A=$STAGE/stoke-agent
install -d -m 0755 "$A/etc/stoke"
install -m 0644 "$DEB/agent.conf" "$A/etc/stoke/agent.conf"
install -m 0600 "$DEB/credentials.env" "$A/etc/stoke/credentials.env"
install -m 0644 "$ROOT/docs/configuration.md" "$A/usr/share/doc/stoke-agent/configuration.md"
printf '/etc/stoke/agent.conf\n/etc/stoke/credentials.env\n' > "$A/DEBIAN/conffiles"

# --- stoke-query ---------------------------------------------------------
stage_common stoke-query stoke-query "stateless query worker of the Stoke profiler"
Q=$STAGE/stoke-query
install -d -m 0755 "$Q/etc/default"
install -m 0600 "$DEB/stoke-query.default" "$Q/etc/default/stoke-query"
install -m 0644 "$ROOT/docs/api.md" "$Q/usr/share/doc/stoke-query/api.md"
printf '/etc/default/stoke-query\n' > "$Q/DEBIAN/conffiles"

# --- Debian control files --------------------------------------------------
shlibdeps() { # PKG BIN -> the shlibs:Depends value
    local t; t=$(mktemp -d)
    mkdir -p "$t/debian"
    printf 'Source: stoke\n\nPackage: %s\nArchitecture: %s\n' "$1" "$ARCH" > "$t/debian/control"
    mkdir -p "$t/debian/$1/usr/bin"
    cp "$STAGE/$1/usr/bin/$2" "$t/debian/$1/usr/bin/"
    (cd "$t" && dpkg-shlibdeps -O "-Tdebian/$1.substvars" "debian/$1/usr/bin/$2" 2>/dev/null) |
        sed -n 's/^shlibs:Depends=//p'
    rm -rf "$t"
}
control() { # PKG BIN SHORT LONG...
    local pkg=$1 bin=$2 short=$3 long=$4 deps
    deps=$(shlibdeps "$pkg" "$bin")
    if [ -z "$deps" ]; then # fallback: objdump NEEDED -> dpkg -S
        deps=$(objdump -p "$STAGE/$pkg/usr/bin/$bin" | awk '/NEEDED/{print $2}' |
            while read -r so; do dpkg -S "*/$so" 2>/dev/null | head -1 | cut -d: -f1; done |
            sort -u | paste -sd, | sed 's/,/, /g')
    fi
    local size; size=$(du -sk --exclude=DEBIAN "$STAGE/$pkg" | cut -f1)
    cat > "$STAGE/$pkg/DEBIAN/control" <<CTL
Package: $pkg
Version: $VER
Architecture: $ARCH
Maintainer: $MAINT
Installed-Size: $size
Depends: adduser, $deps
Section: admin
Priority: optional
Homepage: https://github.com/stoke/stoke
Description: $short
$long
CTL
}
control stoke-agent stoke-agent "continuous CPU profiler agent (eBPF sampler)" \
" Stoke samples the CPU stacks of every process on the host with eBPF,
 symbolizes them on the host (ELF, separate debug files, DWARF, kallsyms,
 JIT perf maps) and writes compact per-service profiles to a directory or
 S3-compatible object storage. Runs as the stoke user with CAP_BPF,
 CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH and CAP_SYSLOG.
 Needs Linux 5.8 or newer with BTF."
control stoke-query stoke-query "stateless query worker of the Stoke CPU profiler" \
" Serves the Stoke query API and web page (flame graphs, top functions, CPU
 charts per service) from the segments stoke-agent writes to a directory or
 S3-compatible object storage. Stateless: run as many as needed."

mkdir -p "$OUT"
for pkg in stoke-agent stoke-query; do
    find "$STAGE/$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$STAGE/$pkg" "$OUT/${pkg}_${VER}_${ARCH}.deb" >/dev/null
    echo "$OUT/${pkg}_${VER}_${ARCH}.deb"
done

# --- RPM ---------------------------------------------------------------------
if [ "${SKIP_RPM:-0}" = 1 ]; then exit 0; fi
TOP=$OUT/rpmbuild
mkdir -p "$TOP"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
rpmbuild -bb --quiet \
    --define "_topdir $TOP" \
    --define "stagedir $STAGE" \
    --define "stoke_version $VER" \
    --define "_build_id_links none" \
    --target "$RPMARCH" \
    "$ROOT/packaging/rpm/stoke.spec" >/dev/null
find "$TOP/RPMS" -name '*.rpm' -exec mv {} "$OUT/" \;
ls "$OUT"/*.rpm
