#!/usr/bin/env python3
"""A stand-in for stoke-query (docs/api.md) for the web page test.

Serves query/web/index.html at / and canned JSON for the API with a known
profile. Service "checkout" (10 s of CPU):

    main -> handle_request -> parse_json 40% (json_lex 30%)
                              compress   35% (deflate_slow 30%, longest_match 20%)
                              db_query   25% (kernel: ... __x64_sys_read 20%)

Service "search" (4 s) answers with a warning (a skipped segment). Any other
service has no data. Selectors are parsed the way the real server does
(enough of it): a malformed one gets 400 {"error": "query: ..."}.

Usage: mock_server.py [--port N] [--index PATH]; prints "listening URL".
GET /mock/requests lists the API requests received (path + parameters).
"""
import argparse
import json
import os
import re
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

S = 1_000_000_000
STACKS = {
    "checkout": [
        ("main;handle_request;parse_json", 1 * S),
        ("main;handle_request;parse_json;json_lex", 3 * S),
        ("main;handle_request;compress", S // 2),
        ("main;handle_request;compress;deflate_slow", 1 * S),
        ("main;handle_request;compress;deflate_slow;longest_match", 2 * S),
        ("main;handle_request;db_query", S // 2),
        ("main;handle_request;db_query;entry_SYSCALL_64_after_hwframe;do_syscall_64;__x64_sys_read", 2 * S),
    ],
    "search": [
        ("main;search_index;score_docs", 2400 * S // 1000),
        ("main;search_index;tokenize", 1200 * S // 1000),
        ("main;search_index;std::vector<int, std::allocator<int> >::push_back(int const&)", 400 * S // 1000),
    ],
}
WARNINGS = {"search": ["segment default/search/2024-01-01T00-00-00Z-1.seg: crc mismatch"]}
TYPES = ["process_cpu:cpu:nanoseconds:cpu:nanoseconds", "process_cpu:samples:count:cpu:nanoseconds"]
REQUESTS = []


class BadRequest(Exception):
    pass


def parse_selector(q):
    """Returns [(label, op, value)]; raises BadRequest like the real parser."""
    i, n = 0, len(q)

    def ws():
        nonlocal i
        while i < n and q[i] in " \t\n":
            i += 1

    ws()
    if i >= n or q[i] != "{":
        raise BadRequest(f"query: expected '{{' at offset {i}")
    i += 1
    out = []
    ws()
    if i < n and q[i] == "}":
        i += 1
    else:
        while True:
            ws()
            m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(q, i)
            if not m:
                raise BadRequest(f"query: expected a label name at offset {i}")
            name, i = m.group(0), m.end()
            ws()
            op = next((o for o in ("=~", "!~", "!=", "=") if q.startswith(o, i)), None)
            if not op:
                raise BadRequest(f"query: expected '=', '!=', '=~' or '!~' after label name at offset {i}")
            i += len(op)
            ws()
            if i >= n or q[i] != '"':
                raise BadRequest(f"query: expected a double-quoted value at offset {i}")
            i += 1
            val = ""
            while True:
                if i >= n:
                    raise BadRequest(f"query: unterminated string at offset {i}")
                c = q[i]
                if c == "\\" and i + 1 < n:
                    val += {"n": "\n"}.get(q[i + 1], q[i + 1])
                    i += 2
                    continue
                i += 1
                if c == '"':
                    break
                val += c
            if op in ("=~", "!~"):
                try:
                    re.compile(val)
                except re.error as e:
                    raise BadRequest(f"query: bad regex for {name}: {e}")
            out.append((name, op, val))
            ws()
            if i < n and q[i] == ",":
                i += 1
                continue
            if i < n and q[i] == "}":
                i += 1
                break
            raise BadRequest(f"query: expected ',' or '}}' at offset {i}")
    ws()
    if i != n:
        raise BadRequest(f"query: unexpected text after '}}' at offset {i}")
    return out


def matches(matchers, labels):
    for name, op, val in matchers:
        have = labels.get(name, "")
        ok = {"=": have == val, "!=": have != val,
              "=~": re.fullmatch(val, have) is not None, "!~": re.fullmatch(val, have) is None}[op]
        if not ok:
            return False
    return True


def parse_time(s, name, now):
    if s is None or s == "":
        raise BadRequest(f"{name}: missing")
    if re.fullmatch(r"\d+", s):
        return int(s)
    if s == "now":
        return now
    m = re.fullmatch(r"now-(\d+)([smhd])", s)
    if m:
        return now - int(m.group(1)) * {"s": 1000, "m": 60000, "h": 3600000, "d": 86400000}[m.group(2)]
    raise BadRequest(f"{name}: expected Unix milliseconds or now-N[smhd], got '{s}'")


def select(p):
    now = int(time.time() * 1000)
    frm = parse_time(p.get("from"), "from", now)
    until = parse_time(p.get("until"), "until", now)
    if frm >= until:
        raise BadRequest("from: must be before until")
    if until - frm > 31 * 86400000:
        raise BadRequest("from, until: at most 31 days apart")
    ptype = p.get("profile_type") or TYPES[0]
    if ptype not in TYPES:
        raise BadRequest(f"profile_type: unknown profile type '{ptype}'")
    matchers = parse_selector(p.get("query", "{}"))
    stacks, warnings = [], []
    for svc, st in STACKS.items():
        if matches(matchers, {"service_name": svc}):
            scale = (lambda v: v // 10_000_000) if "samples" in ptype else (lambda v: v)
            stacks += [(s.split(";"), scale(v)) for s, v in st]
            warnings += WARNINGS.get(svc, [])
    return stacks, warnings, frm, until


def flamegraph(stacks):
    root = {"name": "total", "self": 0, "total": 0, "children": []}
    for frames, v in stacks:
        node = root
        node["total"] += v
        for f in frames:
            child = next((c for c in node["children"] if c["name"] == f), None)
            if child is None:
                child = {"name": f, "self": 0, "total": 0, "children": []}
                node["children"].append(child)
            node = child
            node["total"] += v
        node["self"] += v

    def sort(n):
        n["children"].sort(key=lambda c: (-c["total"], c["name"]))
        for c in n["children"]:
            sort(c)
    sort(root)
    return root


def top(stacks, limit):
    fs = {}
    for frames, v in stacks:
        for f in set(frames):
            fs.setdefault(f, {"name": f, "self": 0, "total": 0})["total"] += v
        fs[frames[-1]]["self"] += v
    out = sorted(fs.values(), key=lambda f: (-f["self"], -f["total"], f["name"]))
    return out[:limit]


def stats(n):
    return {"objects": 3 * n, "sections": 5 * n, "bytes_read": 48_213 * n, "cache_hits": n, "skipped": 0}


class Handler(BaseHTTPRequestHandler):
    index = None

    def log_message(self, fmt, *args):
        if os.environ.get("MOCK_VERBOSE"):
            sys.stderr.write("mock: " + fmt % args + "\n")

    def send(self, code, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        u = urlparse(self.path)
        p = {k: v[-1] for k, v in parse_qs(u.query, keep_blank_values=True).items()}
        if u.path in ("/", "/index.html"):
            with open(self.index, "rb") as f:
                return self.send(200, f.read(), "text/html; charset=utf-8")
        if u.path == "/healthz":
            return self.send(200, b"ok\n", "text/plain")
        if u.path == "/mock/requests":
            return self.send(200, {"requests": REQUESTS})
        if not u.path.startswith("/api/v1/"):
            return self.send(404, {"error": f"{u.path}: no such endpoint"})
        REQUESTS.append({"path": u.path, "params": p})
        delay = float(os.environ.get("MOCK_DELAY_MS", "0"))
        if delay:
            time.sleep(delay / 1000)
        try:
            self.api(u.path, p)
        except BadRequest as e:
            self.send(400, {"error": str(e)})

    def api(self, path, p):
        if path == "/api/v1/profile_types":
            return self.send(200, {"profile_types": TYPES, "stats": stats(0)})
        if path == "/api/v1/label_names":
            select(p)
            return self.send(200, {"names": ["host_name", "service_name"], "stats": stats(1)})
        if path == "/api/v1/label_values":
            if not p.get("name"):
                raise BadRequest("name: missing")
            _, _, _, _ = select(p)
            matchers = parse_selector(p.get("query", "{}"))
            vals = sorted(s for s in STACKS if matches(matchers, {"service_name": s}))
            if p["name"] != "service_name":
                vals = ["host-a"] if p["name"] == "host_name" else []
            return self.send(200, {"values": vals, "stats": stats(1)})
        stacks, warnings, frm, until = select(p)
        total = sum(v for _, v in stacks)
        extra = {"stats": stats(len(stacks))}
        if warnings:
            extra["warnings"] = warnings
        if path == "/api/v1/flamegraph":
            return self.send(200, {"total": total, "tree": flamegraph(stacks), **extra})
        if path == "/api/v1/top":
            limit = int(p.get("limit") or 100)
            return self.send(200, {"total": total, "functions": top(stacks, limit), **extra})
        if path == "/api/v1/series":
            step = int(p.get("step") or max(1000, -(-(until - frm) // 100 // 1000) * 1000))
            npts = min(11000, max(1, (until - frm) // step))
            pts = []
            if total:
                weights = [1.0 + 0.6 * ((i * 7919) % 13) / 13 + (0.8 if npts // 2 <= i < npts * 2 // 3 else 0) for i in range(npts)]
                ws = sum(weights)
                t0 = frm - frm % step
                pts = [[t0 + i * step, int(total * w / ws)] for i, w in enumerate(weights) if i % 17 != 5]
            series = [{"labels": {}, "points": pts}] if pts else []
            return self.send(200, {"series": series, **extra})
        raise BadRequest(f"{path}: not mocked")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--index", default=os.path.join(os.path.dirname(__file__), "../../../query/web/index.html"))
    a = ap.parse_args()
    Handler.index = os.path.abspath(a.index)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"listening http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
