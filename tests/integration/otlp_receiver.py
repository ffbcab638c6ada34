#!/usr/bin/env python3
"""A test receiver for the push exporters: stores every POST (body, path,
query, headers) under DIR as NNNN.body + NNNN.json and answers 200, except
for the first requests, answered as the --script says (comma-separated:
200, 429, 503, 413, garbage = a non-HTTP reply and a closed connection,
badbody = 200 with a body that is not protobuf, partial = 200 with an OTLP
partial success of 1 rejected profile, slow = 200 after a second; a last
'slow*' answers every later request so too). Writes its port to DIR/port.
"""
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

out = sys.argv[1]
script = sys.argv[2].split(',') if len(sys.argv) > 2 and sys.argv[2] else []
lock = threading.Lock()
count = [0]

# ExportProfilesServiceResponse{partial_success{rejected_profiles:1, error_message:"test"}}
PARTIAL = bytes([0x0a, 0x08, 0x08, 0x01, 0x12, 0x04]) + b'test'


class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get('Content-Length', 0))
        body = self.rfile.read(n)
        with lock:
            i = count[0]
            count[0] += 1
        act = script[i] if i < len(script) else '200'
        if script and script[-1] == 'slow*' and i >= len(script) - 1:
            act = 'slow'
        if act == 'slow':
            time.sleep(1)
            act = '200'
        path, _, query = self.path.partition('?')
        base = os.path.join(out, '%04d' % i)
        with open(base + '.body', 'wb') as f:
            f.write(body)
        with open(base + '.json', 'w') as f:
            json.dump({'path': path, 'query': query, 'headers': dict(self.headers.items()),
                       'answer': act}, f)
        if act == 'garbage':
            self.wfile.write(b'\x00\x01 not http at all\r\n\r\n')
            self.close_connection = True
            return
        status, payload = 200, b''
        if act == 'badbody':
            payload = b'<html>oops</html>'
        elif act == 'partial':
            payload = PARTIAL
        elif act != '200':
            status = int(act)
        self.send_response(status)
        if status in (429, 503):
            self.send_header('Retry-After', '1')
        self.send_header('Content-Type', 'application/x-protobuf')
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


srv = ThreadingHTTPServer(('127.0.0.1', 0), H)
with open(os.path.join(out, 'port.tmp'), 'w') as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(out, 'port.tmp'), os.path.join(out, 'port'))
srv.serve_forever()
