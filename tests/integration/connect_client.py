"""What the Pyroscope-API test drivers (test_drilldown.sh, test_individual.sh)
share: "ok"/"FAIL" lines counted by the shell, HTTP calls to stoke-query,
Connect JSON as Grafana's data source proxy sends it, and binary protobuf
encoded and decoded by protoc from the upstream-compatible protos (never
by Stoke's own code).

    from connect_client import Client, ok, bad, check
    c = Client(url, proto_dir, pprof_proto_dir)
    c.cj("SelectSeries", {...})            # dict, or None (a FAIL line)
    c.cp("Series", "querier.v1.SeriesRequest", "start: 1", "querier.v1.SeriesResponse")
"""
import json
import subprocess
import urllib.error
import urllib.request

PROXY = {"Content-Type": "application/json", "X-Grafana-Org-Id": "1",
         "User-Agent": "Grafana/12.0.0", "X-Forwarded-For": "127.0.0.1"}


def ok(what):
    print("ok   " + what)


def bad(what):
    print("FAIL " + what)


def check(cond, what):
    ok(what) if cond else bad(what)


class Client:
    def __init__(self, url, proto, pprof):
        self.url, self.proto, self.pprof = url, proto, pprof

    def http(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def cj(self, method, body, want=200):
        """Connect JSON through the proxy's headers: the answer when its
        status is @want, else None and a FAIL line."""
        st, b = self.http("POST", "/querier.v1.QuerierService/" + method, json.dumps(body).encode(), PROXY)
        if st != want:
            bad("%s (json) answered %d%s: %s" % (method, st, "" if want == 200 else ", not %d" % want, b[:200]))
            return None
        return json.loads(b) if b else {}

    def protoc(self, mode, msg, data):
        if msg.startswith("perftools."):
            args = ["-I", self.pprof, "profile.proto"]
        else:
            proto = "pyroscope/types.proto" if msg.startswith("types.v1.") else "pyroscope/querier.proto"
            args = ["-I", self.proto, "-I", self.pprof, proto]
        return subprocess.run(["protoc", "--%s=%s" % (mode, msg)] + args,
                              input=data, capture_output=True, check=True).stdout

    def cp(self, method, req_msg, text, resp_msg, want=200):
        """Binary protobuf, protoc both ways: the decoded answer as text
        (an error answer's body as it is when @want is not 200), else None
        and a FAIL line."""
        body = self.protoc("encode", req_msg, text.encode())
        st, b = self.http("POST", "/querier.v1.QuerierService/" + method, body,
                          {"Content-Type": "application/proto", "Connect-Protocol-Version": "1"})
        if st != want:
            bad("%s (proto) answered %d%s: %s" % (method, st, "" if want == 200 else ", not %d" % want, b[:200]))
            return None
        return self.protoc("decode", resp_msg, b).decode() if want == 200 else b.decode()
