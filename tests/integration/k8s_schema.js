// Validates Kubernetes objects (a JSON array on stdin) against the
// Kubernetes OpenAPI schemas that the npm package kubernetes-models ships
// (its ajv-compiled validators, one per kind), strictly: besides types,
// enums and required fields, every field must be one the schema knows —
// kubeconform -strict's rule. The validators read exactly the properties
// their schema defines (maps such as labels are iterated whole), so each
// object is wrapped in a Proxy that records what was read; a key never
// read is a field the schema does not have (a typo such as
// `tolerations.effects` that the API server would drop silently).
// Prints "PASS what" / "FAIL what" lines (lib.sh count_lines).
// usage: node k8s_schema.js LABEL < objects.json   (NODE_PATH: node_modules)
"use strict";
const label = process.argv[2] || "";
const docs = JSON.parse(require("fs").readFileSync(0, "utf8"));
const path = require("path");
// The package exports its models, not its schemas: find them beside one.
const root = path.dirname(path.dirname(require.resolve("kubernetes-models/v1/Pod")));

function schemaName(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const g = group === "" ? "Core" : group.split(".")[0];
  const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
  return "IoK8sApi" + cap(g) + cap(version) + kind;
}

function track(obj, path, seen) {
  if (obj === null || typeof obj !== "object") return obj;
  const wrapped = Array.isArray(obj) ? obj.map((v, i) => track(v, path + "/" + i, seen)) : {};
  if (!Array.isArray(obj))
    for (const k of Object.keys(obj)) wrapped[k] = track(obj[k], path + "/" + k, seen);
  const keys = Array.isArray(obj) ? [] : Object.keys(obj);
  seen.push({ path, keys, read: new Set() });
  const rec = seen[seen.length - 1];
  return new Proxy(wrapped, {
    get(t, p, r) {
      if (typeof p === "string") rec.read.add(p);
      return Reflect.get(t, p, r);
    },
  });
}

let failures = 0;
for (const d of docs) {
  const what = `${label}${d.kind}/${(d.metadata || {}).name}`;
  let mod;
  try {
    mod = require(path.join(root, "_schemas", schemaName(d.apiVersion, d.kind) + ".js"));
  } catch (e) {
    console.log(`FAIL ${what}: no schema for ${d.apiVersion} ${d.kind}`);
    failures++;
    continue;
  }
  const seen = [];
  const ok = mod.validate(track(d, "", seen));
  const errs = (mod.validate.errors || []).map(
    (e) => `${e.instancePath} ${e.message || e.keyword + " " + JSON.stringify(e.params)}`);
  const unknown = [];
  for (const r of seen)
    for (const k of r.keys) if (!r.read.has(k)) unknown.push(`${r.path}/${k}`);
  if (ok && unknown.length === 0) {
    console.log(`PASS ${what} valid against ${d.apiVersion} ${d.kind} (strict)`);
  } else {
    console.log(`FAIL ${what}: ${errs.concat(unknown.map((u) => u + " is not a field")).join("; ")}`);
    failures++;
  }
}
process.exit(failures ? 1 : 0);
