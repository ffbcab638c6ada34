#!/usr/bin/env python3
"""A kubelet's GET /pods for test_kubelet.sh, on python3's http.server.

fake_kubelet.py DIR: listens on 127.0.0.1 (a free port, written to
DIR/port), and on each request reads DIR/mode:
  ok       200 with DIR/pods.json
  garbage  200 with an HTML page (not JSON)
  forbid   403 with the Status the kubelet sends without RBAC
  big      200 with 3 MiB of JSON whitespace then a PodList (past a 2 MiB cap)
Each request's Authorization header is appended to DIR/requests.
"""
import http.server
import os
import sys

D = sys.argv[1]


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(D, "requests"), "a") as f:
            f.write("%s %s\n" % (self.path, self.headers.get("Authorization", "-")))
        mode = open(os.path.join(D, "mode")).read().strip()
        status, body = 200, b""
        if self.path != "/pods":
            status, body = 404, b"404 page not found\n"
        elif mode == "ok":
            body = open(os.path.join(D, "pods.json"), "rb").read()
        elif mode == "garbage":
            body = b"<html><body>Service Unavailable</body></html>\n"
        elif mode == "forbid":
            status = 403
            body = (b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
                    b'"message":"Forbidden (user=system:serviceaccount:stoke:stoke-agent, '
                    b'verb=get, resource=nodes, subresource=proxy)","reason":"Forbidden","code":403}')
        elif mode == "big":
            body = b" " * (3 << 20) + open(os.path.join(D, "pods.json"), "rb").read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *a):
        pass


s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
with open(os.path.join(D, "port.tmp"), "w") as f:
    f.write(str(s.server_address[1]))
os.rename(os.path.join(D, "port.tmp"), os.path.join(D, "port"))
s.serve_forever()
