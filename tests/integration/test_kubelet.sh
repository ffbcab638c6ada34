#!/usr/bin/env bash
# Service-name rule 3 (DESIGN.md §3) with the real agent and a stand-in
# kubelet (tests/integration/fake_kubelet.py, python3's http.server): a
# workload is put into a cgroup laid out as the kubelet's cgroupfs driver
# does (kubepods/besteffort/pod<uid>/<container id>; the systemd-slice
# layout on a cgroup v2 host), the fake kubelet's /pods lists that
# container in a pod, and the agent's profiles of it carry service_name
# <namespace>/<app.kubernetes.io/name> and the namespace, pod, container
# and pod_label_* labels (read back with `go tool pprof -raw`); the bearer
# token is sent. Then the kubelet answers garbage, 403, an oversized list,
# or nothing at all: each is counted in /metrics, the labels are absent,
# and the workload is still sampled under its executable's name.
set -u
. "$(dirname "$0")/lib.sh"
need go
need python3
need curl
[ "$(id -u)" -eq 0 ] || { echo "skipping: needs root (cgroups, eBPF)" >&2; exit 0; }
build_fixtures

work=$(mktemp -d)
srv= wl= cg=
cleanup() {
    [ -n "$wl" ] && kill "$wl" 2>/dev/null && wait "$wl" 2>/dev/null
    [ -n "$srv" ] && kill "$srv" 2>/dev/null
    # the leaf, then its parents up to kubepods[.slice] (rmdir leaves any
    # that a real kubelet's pods still use)
    local d=$cg
    while [ -n "$d" ] && [ "$d" != /sys/fs/cgroup ] && [ "$d" != /sys/fs/cgroup/pids ]; do
        rmdir "$d" 2>/dev/null
        d=$(dirname "$d")
    done
    rm -rf "$work"
}
trap cleanup EXIT

CID=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
UID_=$(python3 -c 'import uuid; print(uuid.uuid4())')
# The workload and its cgroup.
"$FIXTURES/hot_c" 600 >/dev/null & wl=$!
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    u=${UID_//-/_}
    cg=/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod$u.slice/cri-containerd-$CID.scope
else
    cg=/sys/fs/cgroup/pids/kubepods/besteffort/pod$UID_/$CID
fi
mkdir -p "$cg" && echo "$wl" >"$cg/cgroup.procs" ||
    { fail "cannot move the workload into $cg"; summary test_kubelet; exit 1; }
check "the workload's /proc/PID/cgroup names its container" grep -q "$CID" "/proc/$wl/cgroup"

python3 - "$work/pods.json" "$UID_" "$CID" <<'PY'
import json, sys
out, uid, cid = sys.argv[1:]
json.dump({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": [{
    "metadata": {"name": "api-5c9d7f8b6-kq2xw", "generateName": "api-5c9d7f8b6-", "namespace": "payments",
                 "uid": uid, "labels": {"app.kubernetes.io/name": "api", "team": "core",
                                        "pod-template-hash": "5c9d7f8b6"}},
    "spec": {"nodeName": "node-1", "containers": [{"name": "api-server", "image": "example/api:1.0"}]},
    "status": {"phase": "Running", "qosClass": "BestEffort", "podIP": "10.244.0.9",
               "containerStatuses": [{"name": "api-server", "ready": True, "restartCount": 0,
                                      "image": "example/api:1.0", "containerID": "containerd://" + cid,
                                      "state": {"running": {"startedAt": "2026-12-01T09:14:03Z"}}}]}}]},
          open(out, "w"))
PY
echo ok >"$work/mode"
echo "s3cr3t-token" >"$work/token"
python3 "$ROOT/tests/integration/fake_kubelet.py" "$work" & srv=$!
for _ in $(seq 50); do [ -f "$work/port" ] && break; sleep 0.1; done
KPORT=$(cat "$work/port" 2>/dev/null)
[ -n "$KPORT" ] || { fail "the fake kubelet did not start"; summary test_kubelet; exit 1; }

# run_agent NAME URL [args]: 8 s of sampling the workload; /metrics is
# scraped at the end of each window into $work/NAME.metrics (the last kept).
run_agent() {
    local name=$1 url=$2; shift 2
    local mport
    mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    mkdir -p "$work/$name"
    "$AGENT" --pid "$wl" --output-dir "$work/$name" --duration 8 --window 2 --frequency 49 \
        --metrics-addr "127.0.0.1:$mport" --host-name node-1 --kubelet-url "$url" \
        --kubelet-refresh 1 --kubelet-timeout 2 "$@" 2>"$work/$name.log" &
    local ap=$!
    while kill -0 "$ap" 2>/dev/null; do
        curl -s "http://127.0.0.1:$mport/metrics" >"$work/$name.m.tmp" 2>/dev/null &&
            [ -s "$work/$name.m.tmp" ] && mv "$work/$name.m.tmp" "$work/$name.metrics"
        sleep 1
    done
    wait "$ap"
}
metric() { awk -v n="$2" '$1 == n {print $2}' "$work/$1.metrics" 2>/dev/null; }
raw() { (cd /tmp && go tool pprof -raw "$@" 2>/dev/null); }
last_pprof() { ls "$work/$1/$2"/*.pb.gz 2>/dev/null | tail -1; }

# ---- the kubelet answers: the pod's name and labels ------------------------
run_agent ok "http://127.0.0.1:$KPORT" --kubelet-token-file "$work/token"
check "agent exits 0" [ $? -eq 0 ]
f=$(last_pprof ok payments_api)
if [ -n "$f" ]; then
    r=$(raw "$f")
    check "service_name payments/api (namespace/app.kubernetes.io/name)" grep -q "service_name:\[payments/api\]" <<<"$r"
    check "namespace label" grep -q "namespace:\[payments\]" <<<"$r"
    check "pod label" grep -q "pod:\[api-5c9d7f8b6-kq2xw\]" <<<"$r"
    check "container label" grep -q "container:\[api-server\]" <<<"$r"
    check "pod_label_team label" grep -q "pod_label_team:\[core\]" <<<"$r"
    check "no pod-template-hash label" bash -c "! grep -q pod_template_hash <<<'$r'"
    check "container_id label kept" grep -q "container_id:\[$CID\]" <<<"$r"
    check "the workload's own frames are there (hot_c's hot function)" grep -q "burn\|hot" <<<"$r"
else
    fail "no profile under payments_api/ ($(ls "$work/ok" | paste -sd' '); log: $(tail -3 "$work/ok.log"))"
fi
check "the bearer token was sent" grep -q "^/pods Bearer s3cr3t-token$" "$work/requests"
check "refreshed: several requests in 8 s ($(wc -l <"$work/requests"))" [ "$(wc -l <"$work/requests")" -ge 3 ]
check "stoke_kubelet_up 1" [ "$(metric ok stoke_kubelet_up)" = 1 ]
check "stoke_kubelet_pods 1" [ "$(metric ok stoke_kubelet_pods)" = 1 ]
check "no fetch or parse errors" [ "$(metric ok stoke_kubelet_fetch_errors_total)" = 0 -a "$(metric ok stoke_kubelet_parse_errors_total)" = 0 ]

# ---- bad kubelets: counted, no pod labels, sampling goes on ------------------
bad() { # bad NAME URL METRIC LOGTEXT [agent args]
    local name=$1 url=$2 m=$3 text=$4
    shift 4
    run_agent "$name" "$url" "$@"
    check "$name: agent exits 0" [ $? -eq 0 ]
    local f
    f=$(last_pprof "$name" hot_c)
    check "$name: the workload is still sampled, named by its executable" [ -n "$f" ]
    check "$name: no directory for the pod's service" [ ! -d "$work/$name/payments_api" ]
    [ -n "$f" ] && check "$name: no namespace label" bash -c "! (cd /tmp && go tool pprof -raw '$f' 2>/dev/null) | grep -q 'namespace:'"
    check "$name: $m counted ($(metric "$name" "$m"))" [ "$(metric "$name" "$m")" -ge 2 ]
    check "$name: stoke_kubelet_up 0" [ "$(metric "$name" stoke_kubelet_up)" = 0 ]
    check "$name: logged once, saying '$text'" [ "$(grep -c "kubelet .*$text" "$work/$name.log")" = 1 ]
}
echo garbage >"$work/mode"
bad garbage "http://127.0.0.1:$KPORT" stoke_kubelet_parse_errors_total "answer is not JSON"
echo forbid >"$work/mode"
bad forbidden "http://127.0.0.1:$KPORT" stoke_kubelet_fetch_errors_total "HTTP 403 (the token's RBAC"
echo big >"$work/mode"
bad oversized "http://127.0.0.1:$KPORT" stoke_kubelet_fetch_errors_total "larger than --kubelet-max-mb" --kubelet-max-mb 2
DEAD=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bad unreachable "http://127.0.0.1:$DEAD" stoke_kubelet_fetch_errors_total "connect"

summary test_kubelet
