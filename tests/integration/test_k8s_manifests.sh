#!/bin/bash
# deploy/kubernetes without a cluster. Each kustomization (base,
# overlays/s3, overlays/production) is rendered with `kubectl kustomize`
# (Debian's kubernetes-client: kustomize 2.0; kubectl 1.27+: 5.x) and every
# object is validated strictly against the Kubernetes OpenAPI schemas
# (tests/integration/k8s_schema.js on npm's kubernetes-models: types,
# enums, required and unknown fields; kubeconform is not packaged in Debian
# or npm), the checker shown to catch a wrong type and a misspelled field.
# Then structure: the DaemonSet has hostPID, the capability set of
# systemd/stoke-agent.service (not privileged), mounts matching volumes,
# NODE_NAME -> --host-name and NODE_IP -> --kubelet-url from the downward
# API, the S3 Secret via envFrom, resources and probes; RBAC grants get on
# the kubelet's nodes/proxy and nodes/pods only; the query workers find
# each other through the headless Service (--peers-dns names it, with its
# port, and $(POD_IP) is left out); the production overlay's resources,
# tolerations, replicas and PodDisruptionBudget.
source "$(dirname "$0")/lib.sh"
need python3
need kubectl
need node
if ! python3 -c 'import yaml' 2>/dev/null; then
    [ "${CI:-}" = true ] && { echo "missing python3-yaml" >&2; exit 1; }
    echo "skipping: python3-yaml is not installed" >&2; exit 0
fi
SCHEMA_MODULES=${STOKE_K8S_SCHEMA_DIR:-$ROOT/build/k8s-schema}/node_modules
if [ ! -d "$SCHEMA_MODULES/kubernetes-models" ]; then
    [ "${CI:-}" = true ] && { echo "missing kubernetes-models in $SCHEMA_MODULES (scripts/deps.sh test)" >&2; exit 1; }
    echo "skipping: npm's kubernetes-models is not installed (scripts/deps.sh test)" >&2; exit 0
fi
DIR=$ROOT/deploy/kubernetes
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tojson() { python3 -c 'import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))'; }
for k in base overlays/s3 overlays/production; do
    n=$(basename "$k")
    # 5.x warns that bases/patchesStrategicMerge/patchesJson6902 are
    # deprecated: they are what 2.0 reads too.
    kubectl kustomize "$DIR/$k" >"$work/$n.yaml" 2>"$work/$n.err"
    check "kubectl kustomize $k renders ($(grep -c '^kind:' "$work/$n.yaml") objects)" \
        bash -c "[ -s '$work/$n.yaml' ] && ! grep -v '^# Warning: .* is deprecated' '$work/$n.err' | grep -q ."
    count_lines "$(tojson <"$work/$n.yaml" | NODE_PATH=$SCHEMA_MODULES node "$ROOT/tests/integration/k8s_schema.js" "$k: ")"
done
# The schema check catches what it should: a string port, a misspelled field.
bad=$(python3 - "$work/s3.yaml" <<'PY'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ds = next(d for d in docs if d["kind"] == "DaemonSet")
a = json.loads(json.dumps(ds)); a["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "9465"
b = json.loads(json.dumps(ds)); b["spec"]["template"]["spec"]["tolerations"][0]["effects"] = "NoSchedule"
print(json.dumps([a, b]))
PY
)
out=$(NODE_PATH=$SCHEMA_MODULES node "$ROOT/tests/integration/k8s_schema.js" "mutant: " <<<"$bad")
check "schema check refuses a string containerPort" grep -q "FAIL.*containerPort type.*integer" <<<"$out"
check "schema check refuses a misspelled field (tolerations[0].effects)" grep -q "FAIL.*tolerations/0/effects is not a field" <<<"$out"

out=$(python3 - "$work/s3.yaml" "$ROOT/systemd/stoke-agent.service" "$work/production.yaml" <<'PY'
import glob, os, re, sys, yaml
rendered, unit, prod = sys.argv[1], sys.argv[2], sys.argv[3]
docs = [("overlays/s3", doc) for doc in yaml.safe_load_all(open(rendered)) if doc]
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
    ok(env.get("NODE_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.hostIP",
       "DaemonSet: NODE_IP (the node's address) from the downward API")
    ok("--kubelet-url=https://$(NODE_IP):10250" in c.get("args", []),
       "DaemonSet: --kubelet-url=https://$(NODE_IP):10250 (this node's kubelet)")
    ok(not ps.get("automountServiceAccountToken") is False, "DaemonSet: the ServiceAccount token is mounted (the kubelet's bearer token)")
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
    heads = [x for x in find("Service") if x["spec"].get("clusterIP") == "None"]
    ok(len(heads) == 1, "headless Service for --peers-dns")
    pd = [a.split("=", 1)[1] for a in c["args"] if a.startswith("--peers-dns=")]
    ok(bool(heads) and len(pd) == 1 and pd[0].split(":")[0] == heads[0]["metadata"]["name"] and
       int(pd[0].split(":")[1]) in [p["port"] for p in heads[0]["spec"]["ports"]],
       f"Deployment: --peers-dns names the headless Service and its port ({pd})")
    listen = [a for a in c["args"] if a.startswith("--listen=")]
    ok(bool(listen) and listen[0].endswith(":4040") and any(p["containerPort"] == 4040 for p in c["ports"]),
       "Deployment: listens on the port the peers are called on")
    env = {e["name"]: e for e in c.get("env", [])}
    ok(env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP" and
       "--peers-self=$(POD_IP)" in c["args"], "Deployment: --peers-self=$(POD_IP) from the downward API")
cr = find("ClusterRole", "stoke-agent")
ok(bool(cr) and len(cr[0]["rules"]) == 1 and set(cr[0]["rules"][0]["resources"]) == {"nodes/proxy", "nodes/pods"} and
   cr[0]["rules"][0]["verbs"] == ["get"] and cr[0]["rules"][0]["apiGroups"] == [""],
   "ClusterRole: get on the kubelet's nodes/proxy and nodes/pods only (read-only)")
crb = find("ClusterRoleBinding", "stoke-agent")
ok(bool(crb) and crb[0]["roleRef"]["name"] == "stoke-agent" and
   any(s["kind"] == "ServiceAccount" and s["name"] == "stoke-agent" for s in crb[0]["subjects"]) and bool(find("ServiceAccount", "stoke-agent")),
   "ClusterRoleBinding binds the ServiceAccount")
secrets = find("Secret", "stoke-s3")
ok(bool(secrets) and {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(secrets[0].get("stringData", {})),
   "overlays/s3: Secret stoke-s3 with the AWS_* keys")
ok(any(a == "--store=s3://stoke-profiles/fleet" for a in dep[0]["spec"]["template"]["spec"]["containers"][0]["args"]) and
   "store = s3://stoke-profiles/fleet" in cm[0]["data"]["agent.conf"], "overlays/s3: agent and workers use the same bucket and prefix")

# overlays/production
pdocs = [d for d in yaml.safe_load_all(open(prod)) if d]
pf = lambda k: [x for x in pdocs if x["kind"] == k]
pds = pf("DaemonSet")[0]["spec"]["template"]["spec"]
ok(pds["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}, "production: agent limits 500m/256Mi")
ok(all(t.get("key") for t in pds["tolerations"]) and pds.get("nodeSelector") == {"kubernetes.io/os": "linux"},
   "production: named tolerations only (no blanket Exists), Linux nodes")
pdep = pf("Deployment")[0]
ok(pdep["spec"]["replicas"] == 3 and pdep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "4Gi",
   "production: 3 workers with 4Gi limits")
ok(any(a.startswith("--peers-dns=") for a in pdep["spec"]["template"]["spec"]["containers"][0]["args"]),
   "production: the base's args survive the patches (--peers-dns)")
pdb = pf("PodDisruptionBudget")
ok(len(pdb) == 1 and pdb[0]["spec"]["selector"]["matchLabels"].items() <= pdep["spec"]["template"]["metadata"]["labels"].items()
   and pdb[0]["spec"]["minAvailable"] < pdep["spec"]["replicas"], "production: PodDisruptionBudget selects the workers, leaves room to drain")
ok(all(x["metadata"].get("namespace") == "stoke" for x in pdocs if x["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding")),
   "production: every namespaced object in stoke")
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
