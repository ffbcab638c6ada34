#!/usr/bin/env bash
# The container images of `make image` (scripts/image.sh), built here and
# run for real:
#   a. both OCI archives are built from Debian's packages (the root
#      filesystem cached under build/image/rootfs/: the first run goes to
#      the mirror, 5 min for both, later ones ~25 s); their config
#      (entrypoint, user) and layer (no shell, the binary, the CA bundle) are
#      read back from the archive; the agent's is at most 40 MiB compressed;
#   b. the Containerfiles of packaging/container/ install exactly the
#      packages of the libraries each binary is linked against;
#   c. podman runs the agent image with the DaemonSet's settings
#      (deploy/kubernetes/base/agent-daemonset.yaml): host PID namespace, all
#      capabilities dropped but BPF, PERFMON, SYS_PTRACE, DAC_READ_SEARCH
#      and SYSLOG, read-only root, /sys/kernel/btf and /sys/fs/cgroup
#      mounted read-only, no new privileges, a host directory for the store.
#      The process in the container is checked from the host (its CapEff,
#      its read-only /), and its segments of a process of this host
#      (tests/fixtures/hot_c, OTEL_SERVICE_NAME=image-hot) are read back by
#      build/stoke-query: the service, the host name and hot_c's functions;
#   d. podman runs the query image as user 65532 with no capabilities and a
#      read-only root over a copy of that store: GET / serves the page,
#      /api/v1/top names hot_c's functions.
# Where podman cannot run a container on this machine, the error is printed
# and c/d run the image's root filesystem (unpacked from the archive) under
# unshare --mount + capsh --chroot with the same capabilities instead.
# STOKE_IMAGE_RUNTIME=unshare forces that fallback.
source "$(dirname "$0")/lib.sh"
QUERY=$ROOT/build/stoke-query
SECS=${IMAGE_SECONDS:-20}

for t in mmdebstrap buildah podman runc capsh unshare curl python3 objdump; do need "$t"; done
if [ "$(id -u)" -ne 0 ]; then
    [ "${CI:-}" = true ] && { echo "test_image.sh needs root (mmdebstrap, buildah, BPF)" >&2; exit 1; }
    echo "skipping: test_image.sh needs root" >&2
    exit 0
fi

work=$(mktemp -d /tmp/stoke-image.XXXXXX)
chmod 0755 "$work" # the query image's user 65532 reads the store under it
# podman with its own storage (vfs: no overlayfs needed) under $work, and
# runc: crun 1.8 refuses a hybrid cgroup v1 + v2 host ("cgroups in hybrid
# mode not supported"), as this machine is
P=(podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs
    --cgroup-manager cgroupfs --events-backend file --runtime runc)
# podman raises RLIMIT_NOFILE and RLIMIT_NPROC to 1048576 and 4194304 in the
# container, which needs CAP_SYS_RESOURCE ("setrlimit RLIMIT_NOFILE:
# Operation not permitted" where the host lacks it); these limits need not
ULIMITS=(--ulimit "nofile=$(ulimit -n):$(ulimit -n)" --ulimit nproc=32768:32768)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    "${P[@]}" rm -f -a >/dev/null 2>&1
    "${P[@]}" system reset -f >/dev/null 2>&1
    if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- a. the archives ----------------------------------------------------------
make -s -C "$ROOT" all >/dev/null || { fail "make all"; summary test_image; exit 1; }
build_fixtures
start=$SECONDS
if "$ROOT/scripts/image.sh" >"$work/image.log" 2>&1; then
    pass "scripts/image.sh built both images in $((SECONDS - start)) s"
else
    fail "scripts/image.sh: $(tail -5 "$work/image.log")"
    summary test_image
    exit 1
fi
sed 's/^/       /' "$work/image.log" | grep 'image: build/' || true
VER=$("$ROOT/build/stoke-agent" --version | awk '{print $2}')
AGENT_TAR=$ROOT/build/stoke-agent.oci.tar
QUERY_TAR=$ROOT/build/stoke-query.oci.tar

# inspect ARCHIVE DIR: prints "key value" lines of the image's config and
# layer, and unpacks the layer into DIR (for the fallback)
inspect() {
    python3 - "$1" "$2" <<'PY'
import json, sys, tarfile, io, os
arc, out = sys.argv[1], sys.argv[2]
t = tarfile.open(arc)
blob = lambda d: t.extractfile("blobs/" + d.replace(":", "/")).read()
index = json.loads(t.extractfile("index.json").read())
print("manifests", len(index["manifests"]))
man = json.loads(blob(index["manifests"][0]["digest"]))
cfg = json.loads(blob(man["config"]["digest"]))
print("user", cfg["config"].get("User", ""))
print("entrypoint", " ".join(cfg["config"].get("Entrypoint") or []))
print("layers", len(man["layers"]))
print("compressed", sum(l["size"] for l in man["layers"]))
print("mediatype", man["layers"][0]["mediaType"])
names = set()
for l in man["layers"]:
    lt = tarfile.open(fileobj=io.BytesIO(blob(l["digest"])))
    for m in lt.getmembers():
        names.add(m.name.lstrip("./"))
    lt.extractall(out, numeric_owner=True)
for f in ["bin/sh", "usr/bin/sh", "usr/bin/dash", "usr/bin/bash", "usr/bin/dpkg", "usr/bin/apt"]:
    print("has", f, f in names)
for f in ["usr/bin/stoke-agent", "usr/bin/stoke-query"]:
    print("has", f, f in names)
crt = os.path.join(out, "etc/ssl/certs/ca-certificates.crt")
print("certs", open(crt).read().count("BEGIN CERTIFICATE") if os.path.exists(crt) else 0)
PY
}
for img in agent query; do
    tar=$ROOT/build/stoke-$img.oci.tar
    if [ ! -s "$tar" ]; then fail "$tar missing"; continue; fi
    mkdir -p "$work/rootfs-$img"
    inspect "$tar" "$work/rootfs-$img" >"$work/$img.inspect" 2>"$work/$img.inspect.err" ||
        { fail "$img: cannot read the OCI archive: $(tail -2 "$work/$img.inspect.err")"; continue; }
    val() { awk -v k="$1" '$1 == k {$1 = ""; sub(/^ /, ""); print}' "$work/$img.inspect"; }
    check "$img: one manifest, one gzip layer ($(val mediatype))" \
        [ "$(val manifests)" = 1 ] && [ "$(val layers)" = 1 ] && [[ $(val mediatype) == *tar+gzip ]]
    check "$img: entrypoint /usr/bin/stoke-$img ($(val entrypoint))" [ "$(val entrypoint)" = "/usr/bin/stoke-$img" ]
    check "$img: holds the binary" grep -qx "has usr/bin/stoke-$img True" "$work/$img.inspect"
    check "$img: no shell, no dpkg, no apt" [ "$(grep -c '^has usr/bin/\(sh\|dash\|bash\|dpkg\|apt\) True' "$work/$img.inspect")" = 0 ]
    check "$img: the CA bundle for TLS to S3 ($(val certs) certificates)" [ "$(val certs)" -ge 100 ]
    size=$(val compressed)
    echo "       $img: $((size / 1024)) KiB compressed, $(du -sk "$work/rootfs-$img" | cut -f1) KiB unpacked"
done
check "agent: runs as root (the DaemonSet's runAsUser: 0; powers only from its caps) ($(awk '$1 == "user" {print $2}' "$work/agent.inspect"))" \
    grep -qx 'user 0:0' "$work/agent.inspect"
check "query: runs as 65532:65532, not root ($(awk '$1 == "user" {print $2}' "$work/query.inspect"))" \
    grep -qx 'user 65532:65532' "$work/query.inspect"
asize=$(awk '$1 == "compressed" {print $2}' "$work/agent.inspect")
check "agent image at most 40 MiB compressed ($((asize / 1024)) KiB)" [ "${asize:-99999999999}" -le $((40 * 1024 * 1024)) ]

# ---- b. the Containerfiles' package lists ---------------------------------------
needed_pkgs() { # BIN: the packages of its NEEDED libraries (as packages.sh does)
    objdump -p "$1" | awk '/NEEDED/{print $2}' | while read -r so; do
        for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu; do
            dpkg -S "$d/$so" 2>/dev/null && break
        done | head -1 | cut -d: -f1
    done | sort -u
}
for img in agent query; do
    cf=$ROOT/packaging/container/stoke-$img.Containerfile
    # the words of the apt-get install line, up to the next &&
    sed -n '/apt-get install/,/&&/p' "$cf" | tr ' \\' '\n\n' | grep -E '^lib|^zlib' | sort -u >"$work/cf-$img"
    needed_pkgs "$ROOT/build/stoke-$img" >"$work/need-$img"
    if diff "$work/need-$img" "$work/cf-$img" >"$work/cf-$img.diff"; then
        pass "$img: the Containerfile installs the packages of its NEEDED libraries ($(wc -l <"$work/cf-$img"))"
    else
        fail "$img: the Containerfile's packages differ from the binary's NEEDED (< needed, > Containerfile): $(tr '\n' ' ' <"$work/cf-$img.diff")"
    fi
    grep -q '^ARG BASE=debian:bookworm-slim$' "$cf" && pass "$img: Containerfile FROM debian:bookworm-slim" ||
        fail "$img: Containerfile is not FROM debian:bookworm-slim"
done

# ---- c. the agent, as the DaemonSet runs it ---------------------------------------
CAPS=(BPF PERFMON SYS_PTRACE DAC_READ_SEARCH SYSLOG)
# CAP_DAC_READ_SEARCH 2, SYS_PTRACE 19, SYSLOG 34, PERFMON 38, BPF 39
WANT_CAPEFF=000000c400080004
store=$work/store
mkdir -p "$store"
runtime=${STOKE_IMAGE_RUNTIME:-podman}
if [ "$runtime" = podman ]; then
    if ! "${P[@]}" load -q -i "$AGENT_TAR" >"$work/load.log" 2>&1 ||
        ! "${P[@]}" load -q -i "$QUERY_TAR" >>"$work/load.log" 2>&1; then
        echo "       podman load failed: $(tail -3 "$work/load.log")"
        runtime=unshare
    elif ! "${P[@]}" run --rm --network none "${ULIMITS[@]}" "localhost/stoke-agent:$VER" --version >"$work/probe.log" 2>&1; then
        echo "       podman cannot run a container here; the error:"
        sed 's/^/         /' "$work/probe.log"
        runtime=unshare
    fi
fi
[ "${CI:-}" = true ] && [ "$runtime" != podman ] && [ -z "${STOKE_IMAGE_RUNTIME:-}" ] &&
    echo "       (CI: the fallback is tested instead of podman)"
echo "       runtime: $runtime"

# run_agent ARGS...: the agent image with the DaemonSet's settings, in the
# foreground; its host PID is written to $work/agent.pid once it runs
run_agent() {
    if [ "$runtime" = podman ]; then
        "${P[@]}" run --rm --name stoke-agent-test --pid host --network host --read-only "${ULIMITS[@]}" \
            --cap-drop all $(printf -- '--cap-add %s ' "${CAPS[@]}") \
            --security-opt seccomp=unconfined --security-opt no-new-privileges \
            -v /sys/kernel/btf:/sys/kernel/btf:ro -v /sys/fs/cgroup:/sys/fs/cgroup:ro \
            -v "$store:/var/lib/stoke" --tmpfs /tmp --tmpfs /var/tmp \
            "localhost/stoke-agent:$VER" "$@" &
        local p=$! i
        for i in $(seq 100); do
            "${P[@]}" inspect -f '{{.State.Pid}}' stoke-agent-test 2>/dev/null | grep -v '^0$' >"$work/agent.pid" && break
            sleep 0.2
        done
        wait $p
    else
        # the same under unshare: a private mount namespace (the host's PID
        # namespace, as hostPID), the unpacked root bound read-only, /proc,
        # /dev, a read-only sysfs (as podman's), the BTF and cgroup trees
        # and the store bound in; capsh
        # chroots, empties the bounding set but for the five capabilities
        # and execs the agent as root (whose permitted set is then those)
        local R=$work/rootfs-agent drop
        drop=$(capsh --print | sed -n 's/^Bounding set =//p' | tr ',' '\n' |
            grep -vxiE "cap_($(printf '%s|' "${CAPS[@]}" | tr 'A-Z' 'a-z' | sed 's/|$//'))" | paste -sd,)
        mkdir -p "$R/proc" "$R/dev" "$R/sys" "$R/var/lib/stoke"
        unshare --mount --propagation private -- bash -c '
            R=$1 store=$2 drop=$3; shift 3
            mount --bind "$R" "$R" && mount -o remount,bind,ro "$R" &&
            mount --rbind /proc "$R/proc" && mount --rbind /dev "$R/dev" &&
            mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys" &&
            mount --bind -o ro /sys/kernel/btf "$R/sys/kernel/btf" &&
            mount --rbind /sys/fs/cgroup "$R/sys/fs/cgroup" &&
            mount --bind "$store" "$R/var/lib/stoke" &&
            mount -t tmpfs tmpfs "$R/tmp" && mount -t tmpfs tmpfs "$R/var/tmp" || exit 125
            echo $$ >"$R/../agent.pid"
            exec capsh --chroot="$R" --drop="$drop" --shell=/usr/bin/stoke-agent -- "$@"
        ' bash "$R" "$store" "$drop" "$@" &
        wait $!
    fi
}

# a process of this host for it to profile, running until the agent is done
# (podman may take 20 s to start it on a busy machine, the agent seconds
# more to load its tables)
OTEL_SERVICE_NAME=image-hot "$FIXTURES/hot_c" 600 >/dev/null &
hot=$!
pids+=($hot)
from_ms=$(($(date +%s%3N) - 1000))
run_agent --store /var/lib/stoke/store --flush 10 --window 5 --frequency 99 --duration "$SECS" \
    --metrics-addr off --host-name image-test >"$work/agent.out" 2>"$work/agent.log" &
apid=$!
# from the host: the containerised agent's capabilities and its root
apid_host=
for _ in $(seq 100); do
    apid_host=$(cat "$work/agent.pid" 2>/dev/null)
    [ -n "$apid_host" ] && [ "$(cat "/proc/$apid_host/comm" 2>/dev/null)" = stoke-agent ] && break
    sleep 0.2
done
if [ -n "$apid_host" ] && [ -r "/proc/$apid_host/status" ]; then
    capeff=$(awk '/^CapEff/{print $2}' "/proc/$apid_host/status")
    capbnd=$(awk '/^CapBnd/{print $2}' "/proc/$apid_host/status")
    check "agent: effective capabilities exactly ${CAPS[*]} ($capeff)" [ "$capeff" = "$WANT_CAPEFF" ]
    check "agent: bounding set no larger ($capbnd)" [ "$capbnd" = "$WANT_CAPEFF" ]
    check "agent: runs as uid 0 in the host's PID namespace" \
        [ "$(awk '/^Uid/{print $2}' "/proc/$apid_host/status")" = 0 ] && [ "$(readlink "/proc/$apid_host/ns/pid")" = "$(readlink /proc/self/ns/pid)" ]
    check "agent: its / is read-only" awk '$5 == "/" && $6 ~ /(^|,)ro(,|$)/ {f = 1} END {exit !f}' "/proc/$apid_host/mountinfo"
else
    fail "agent: did not start: $(tail -3 "$work/agent.log")"
fi
wait $apid
rc=$?
kill $hot 2>/dev/null
until_ms=$(($(date +%s%3N) + 1000))
check "agent exits 0 after --duration $SECS (rc $rc)" [ "$rc" -eq 0 ]
tail -1 "$work/agent.log" | sed 's/^/       /'
nseg=$(find "$store/store" -name '*.seg' 2>/dev/null | wc -l)
check "agent wrote segments into the host directory ($nseg)" [ "$nseg" -ge 1 ]

# read back by build/stoke-query on the host
qport=$(free_port)
"$QUERY" --store "$store/store" --listen "127.0.0.1:$qport" >/dev/null 2>"$work/q.log" &
pids+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$qport/healthz" && break; sleep 0.2; done
top() { # PORT: hot_c's service's top functions, "name self" lines
    curl -s -G "http://127.0.0.1:$1/api/v1/top" --data-urlencode 'query={service_name="image-hot",host_name="image-test"}' \
        --data-urlencode "from=$from_ms" --data-urlencode "until=$until_ms" --data-urlencode limit=50 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print("total", d["total"]); [print(f["name"], f["self"]) for f in d["functions"]]' 2>&1
}
top "$qport" >"$work/top-host"
total=$(awk '$1 == "total" {print $2}' "$work/top-host")
check "build/stoke-query reads the image's segments: service image-hot on host image-test, $total samples" [ "${total:-0}" -gt 0 ]
if [ "$(grep -cE '^work_[abc] [1-9]' "$work/top-host")" = 3 ]; then
    pass "hot_c's functions named: $(grep -E '^work_' "$work/top-host" | paste -sd,)"
else
    fail "hot_c's functions named (work_a, work_b, work_c): $(head -6 "$work/top-host" | paste -sd,)"
fi

# ---- d. the query image over that store -------------------------------------------
# stoke-query opens a directory store only where it may write (store_dir.c:
# access W_OK): a copy of the agent's store, owned by the image's user
qport2=$(free_port)
cp -a "$store/store" "$work/qstore"
chown -R 65532:65532 "$work/qstore"
if [ "$runtime" = podman ]; then
    "${P[@]}" run -d --name stoke-query-test --network host --read-only --cap-drop all "${ULIMITS[@]}" \
        --security-opt no-new-privileges -v "$work/qstore:/store" --tmpfs /var/cache/stoke-query \
        "localhost/stoke-query:$VER" --store /store --listen "127.0.0.1:$qport2" >"$work/qc.id" 2>"$work/qc.log"
    qpid=$("${P[@]}" inspect -f '{{.State.Pid}}' stoke-query-test 2>/dev/null)
else
    R=$work/rootfs-query
    mkdir -p "$R/proc" "$R/dev" "$R/store"
    unshare --mount --propagation private -- bash -c '
        R=$1 store=$2; shift 2
        mount --bind "$R" "$R" && mount -o remount,bind,ro "$R" && mount --rbind /proc "$R/proc" &&
        mount --rbind /dev "$R/dev" && mount --bind "$store" "$R/store" || exit 125
        exec capsh --chroot="$R" --user=nonroot --shell=/usr/bin/stoke-query -- "$@"
    ' bash "$R" "$work/qstore" --store /store --listen "127.0.0.1:$qport2" >/dev/null 2>"$work/qc.log" &
    pids+=($!)
    sleep 0.5
    qpid=$(pgrep -n -x stoke-query -P $! 2>/dev/null || pgrep -n -f "listen 127.0.0.1:$qport2")
fi
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$qport2/healthz" && break; sleep 0.2; done
code=$(curl -s -o "$work/page.html" -w '%{http_code}' "http://127.0.0.1:$qport2/")
check "query image: GET / serves the page ($code, $(wc -c <"$work/page.html") bytes)" \
    [ "$code" = 200 ] && grep -qi '<html' "$work/page.html"
top "$qport2" >"$work/top-image"
check "query image: /api/v1/top answers as the host's stoke-query ($(awk '$1 == "total" {print $2}' "$work/top-image") samples)" \
    cmp -s "$work/top-host" "$work/top-image"
if [ -n "$qpid" ] && [ -r "/proc/$qpid/status" ]; then
    check "query image: runs as uid 65532 ($(awk '/^Uid/{print $2}' "/proc/$qpid/status"))" \
        [ "$(awk '/^Uid/{print $2}' "/proc/$qpid/status")" = 65532 ]
    check "query image: no capabilities ($(awk '/^CapEff/{print $2}' "/proc/$qpid/status"))" \
        [ "$(awk '/^CapEff/{print $2}' "/proc/$qpid/status")" = 0000000000000000 ]
else
    fail "query image: did not start: $(tail -3 "$work/qc.log")"
fi
[ "$runtime" = podman ] && "${P[@]}" stop -t 5 stoke-query-test >/dev/null 2>&1

summary test_image
