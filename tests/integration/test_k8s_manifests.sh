#!/bin/bash
# Structural checks of deploy/kubernetes/*.yaml without a cluster (kubeconform
# is not packaged in Debian 12): every document parses and has
# apiVersion/kind/metadata.name; the DaemonSet has hostPID, the capability set
# of systemd/stoke-agent.service (not privileged), mounts matching volumes,
# NODE_NAME -> --host-name, the S3 Secret via envFrom, resources and probes;
# the Deployment has 2 replicas and /healthz probes; RBAC and Services agree.
# `kubectl kustomize` is run too when kubectl is installed.
source "$(dirname "$0")/lib.sh"
need python3
if ! python3 -c 'import yaml' 2>/dev/null; then
    [ "${CI:-}" = true ] && { echo "missing python3-yaml" >&2; exit 1; }
    echo "skipping: python3-yaml is not installed" >&2; exit 0
fi
DIR=$ROOT/deploy/kubernetes

if command -v kubectl >/dev/null 2>&1; then
    check "kubectl kustomize deploy/kubernetes renders" bash -c "kubectl kustomize '$DIR' >/dev/null"
fi

out=$(python3 - "$DIR" "$ROOT/systemd/stoke-agent.service" <<'PY'
import glob, os, re, sys, yaml
d, unit = sys.argv[1], sys.argv[2]
docs = []
for f in sorted(glob.glob(os.path.join(d, "*.yaml"))):
    if os.path.basename(f) == "kustomization.yaml": continue  # not an API object
    for doc in yaml.safe_load_all(open(f)):
        if doc: docs.append((os.path.basename(f), doc))
def ok(cond, what): print(("PASS " if cond else "FAIL ") + what)
def find(kind, name=None):
    return [x for _, x in docs if x.get("kind") == kind and (name is None or x["metadata"]["name"] == name)]
for f, x in docs:
    ok(bool(x.get("apiVersion")) and bool(x.get("kind")) and bool((x.get("metadata") or {}).get("name")),
       f"{f}: {x.get('kind')} has apiVersion, kind, metadata.name")

def pod_checks(w, name):
    spec = w["spec"]; t = spec["template"]
    ok(spec["selector"]["matchLabels"].items() <= t["metadata"]["labels"].items(), f"{name}: selector matches the pod labels")
    ps = t["spec"]; vols = {v["name"] for v in ps.get("volumes", [])}
    for c in ps["containers"]:
        mounts = [m["name"] for m in c.get("volumeMounts", [])]
        ok(set(mounts) <= vols, f"{name}: every volumeMount has a volume ({sorted(set(mounts) - vols) or 'ok'})")
        ok(vols <= set(mounts), f"{name}: every volume is mounted")
        r = c.get("resources", {})
        ok({"cpu", "memory"} <= set(r.get("requests", {})) and {"cpu", "memory"} <= set(r.get("limits", {})),
           f"{name}: cpu/memory requests and limits")
        for p in ("readinessProbe", "livenessProbe"):
            ok(c.get(p, {}).get("httpGet", {}).get("path") == "/healthz", f"{name}: {p} on /healthz")
            port = c.get(p, {}).get("httpGet", {}).get("port")
            ok(port in [pp.get("name") for pp in c.get("ports", [])] + [pp["containerPort"] for pp in c.get("ports", [])],
               f"{name}: {p} port {port} is a container port")
        ok(any(e.get("secretRef", {}).get("name") for e in c.get("envFrom", [])), f"{name}: S3 credentials via envFrom secretRef")
        for e in c.get("envFrom", []):
            s = e.get("secretRef", {}).get("name")
            if s: ok(bool(find("Secret", s)), f"{name}: Secret {s} is defined (example)")
    return ps

ds = find("DaemonSet", "stoke-agent")
ok(len(ds) == 1, "DaemonSet stoke-agent exists")
if ds:
    ps = pod_checks(ds[0], "DaemonSet")
    c = ps["containers"][0]; sc = c.get("securityContext", {})
    ok(ps.get("hostPID") is True, "DaemonSet: hostPID: true")
    ok(not ps.get("hostNetwork"), "DaemonSet: no hostNetwork")
    ok(sc.get("privileged") is not True, "DaemonSet: not privileged")
    ok(sc.get("allowPrivilegeEscalation") is False, "DaemonSet: allowPrivilegeEscalation: false")
    want = set(re.search(r"^AmbientCapabilities=(.*)$", open(unit).read(), re.M).group(1).replace("CAP_", "").split())
    add = set(sc.get("capabilities", {}).get("add", []))
    ok(add == want, f"DaemonSet: capabilities.add == the systemd unit's set {sorted(want)}")
    ok("SYS_ADMIN" not in add, "DaemonSet: no SYS_ADMIN")
    ok(sc.get("capabilities", {}).get("drop") == ["ALL"], "DaemonSet: drops ALL other capabilities")
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for p in ("/sys/kernel/btf", "/sys/fs/cgroup", "/usr/lib/debug"):
        ok(mounts.get(p, {}).get("readOnly") is True, f"DaemonSet: {p} mounted read-only")
    ok("/var/lib/stoke" in mounts and not mounts["/var/lib/stoke"].get("readOnly"), "DaemonSet: /var/lib/stoke writable (spill)")
    hp = {v["name"]: v.get("hostPath", {}).get("path") for v in ps["volumes"]}
    ok(hp.get(mounts.get("/var/lib/stoke", {}).get("name")) == "/var/lib/stoke", "DaemonSet: spill is hostPath /var/lib/stoke")
    ok("/sys/kernel/debug" not in mounts, "DaemonSet: /sys/kernel/debug not mounted")
    env = {e["name"]: e for e in c.get("env", [])}
    ok(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
       "DaemonSet: NODE_NAME from the downward API")
    ok("--host-name=$(NODE_NAME)" in c.get("args", []), "DaemonSet: --host-name=$(NODE_NAME)")
    ok(ps.get("serviceAccountName") == "stoke-agent", "DaemonSet: serviceAccountName stoke-agent")
    cfgvol = [v for v in ps["volumes"] if v.get("configMap")]
    ok(len(cfgvol) == 1 and find("ConfigMap", cfgvol[0]["configMap"]["name"]), "DaemonSet: config from a defined ConfigMap")
    ok(mounts.get("/etc/stoke", {}).get("name") == (cfgvol[0]["name"] if cfgvol else None) and "--config=/etc/stoke/agent.conf" in c["args"],
       "DaemonSet: --config points into the ConfigMap mount")
    lim = c["resources"]["limits"]
    ok(lim["memory"] == "128Mi" and lim["cpu"] == "200m", "DaemonSet: limits 200m/128Mi")
cm = find("ConfigMap", "stoke-agent")
if cm:
    conf = cm[0]["data"]["agent.conf"]
    names = [re.split(r"\s*=", l.strip(), 1)[0] for l in conf.splitlines() if l.strip() and not l.strip().startswith("#")]
    print("NAMES " + " ".join(names))
dep = find("Deployment", "stoke-query")
ok(len(dep) == 1, "Deployment stoke-query exists")
if dep:
    ok(dep[0]["spec"]["replicas"] == 2, "Deployment: 2 replicas")
    ps = pod_checks(dep[0], "Deployment")
    c = ps["containers"][0]
    ok(not c.get("securityContext", {}).get("capabilities", {}).get("add"), "Deployment: no added capabilities")
    ok(ps.get("securityContext", {}).get("runAsNonRoot") is True, "Deployment: runAsNonRoot")
    ok(any(a.startswith("--store=") for a in c["args"]), "Deployment: --store given")
    lbl = dep[0]["spec"]["template"]["metadata"]["labels"]
    for s in find("Service"):
        ok(s["spec"]["selector"].items() <= lbl.items(), f"Service {s['metadata']['name']} selects the query pods")
        ok(all(p["targetPort"] in ("http", 4040) for p in s["spec"]["ports"]), f"Service {s['metadata']['name']}: targetPort is the http port")
    ok(any(s["spec"].get("clusterIP") == "None" for s in find("Service")), "headless Service for --peers")
cr = find("ClusterRole", "stoke-agent")
ok(bool(cr) and any({"pods", "nodes"} <= set(r["resources"]) and set(r["verbs"]) == {"get", "list", "watch"} for r in cr[0]["rules"]),
   "ClusterRole: get/list/watch pods and nodes only")
crb = find("ClusterRoleBinding", "stoke-agent")
ok(bool(crb) and crb[0]["roleRef"]["name"] == "stoke-agent" and
   any(s["kind"] == "ServiceAccount" and s["name"] == "stoke-agent" for s in crb[0]["subjects"]) and bool(find("ServiceAccount", "stoke-agent")),
   "ClusterRoleBinding binds the ServiceAccount")
PY
)
while IFS= read -r line; do
    case $line in
        PASS*) pass "${line#PASS }" ;;
        FAIL*) fail "${line#FAIL }" ;;
        NAMES*) for n in ${line#NAMES }; do
                    check "ConfigMap agent.conf option '$n' exists in stoke-agent --help" \
                        grep -q -- "--$n\b" <<<"$("$AGENT" --help)"
                done ;;
    esac
done <<<"$out"
[ -n "$out" ] || fail "the python checker produced no output"

summary test_k8s_manifests
