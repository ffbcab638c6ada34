#!/usr/bin/env python3
"""A small S3 look-alike on 127.0.0.1 for tests/integration/test_store_s3.sh.

Unlike s3rver it checks every AWS SigV4 signature the way S3 does (the
canonical URI is recomputed from the decoded path, the query is re-sorted and
re-encoded, the payload hash must match the body), so a key that Stoke
encodes differently from what curl signs fails here. Keys whose path holds
one of the words below misbehave on purpose:

  flaky/      500 twice, then normal          slowdown/  503 SlowDown once
  broken/     500 always                      denied/    403 AccessDenied
  missing/    404 NoSuchKey                   badreq/    400 InvalidArgument
  slow/       answers after 2 s               reset/     TCP reset always
  resetonce/  TCP reset once, then normal     whoami     the verified access key

Prints the port on stdout, then serves until killed. Python 3 stdlib only.
"""
import hashlib
import hmac
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

SECRETS = {"AKFAKE": "fake-secret", "AKENV": "env-secret", "AKFILE": "file-secret",
           "AKOTHER": "other-secret"}
objects = {}
counts = {}
lock = threading.Lock()


def enc(s, safe):
    return urllib.parse.quote(s, safe=safe)


def sign_key(secret, date, region):
    k = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=None, head=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def error(self, status, code, head=False):
        body = ("<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>fake</Message></Error>"
                % code).encode()
        self.reply(status, body, {"Content-Type": "application/xml"}, head)

    def verify(self, body):
        """Returns the access key, or None after answering 403."""
        auth = self.headers.get("Authorization", "")
        try:
            algo, rest = auth.split(" ", 1)
            parts = dict(p.strip().split("=", 1) for p in rest.split(","))
            ak, date, region, service, term = parts["Credential"].split("/")
            signed = parts["SignedHeaders"].split(";")
        except (ValueError, KeyError):
            self.error(403, "AccessDenied")
            return None
        secret = SECRETS.get(ak)
        if algo != "AWS4-HMAC-SHA256" or service != "s3" or secret is None:
            self.error(403, "InvalidAccessKeyId")
            return None
        payload = self.headers.get("x-amz-content-sha256")
        if payload is None or "host" not in signed or "x-amz-date" not in signed:
            self.error(400, "InvalidRequest")
            return None
        if payload != hashlib.sha256(body).hexdigest():
            self.error(400, "XAmzContentSHA256Mismatch")
            return None
        raw_path, _, raw_query = self.path.partition("?")
        uri = enc(urllib.parse.unquote(raw_path), "/~")
        q = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
        query = "&".join(sorted("%s=%s" % (enc(k, "~"), enc(v, "~")) for k, v in q))
        canon_headers = "".join("%s:%s\n" % (h, " ".join((self.headers.get(h) or "").split()))
                                for h in signed)
        creq = "\n".join([self.command, uri, query, canon_headers, ";".join(signed), payload])
        amzdate = self.headers.get("x-amz-date", "")
        sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, "/".join([date, region, "s3", term]),
                         hashlib.sha256(creq.encode()).hexdigest()])
        want = hmac.new(sign_key(secret, date, region), sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, parts.get("Signature", "")):
            sys.stderr.write("fake_s3: signature mismatch; canonical request was:\n%s\n" % creq)
            self.error(403, "SignatureDoesNotMatch")
            return None
        if "x-amz-security-token" in self.headers and "x-amz-security-token" not in signed:
            self.error(403, "AccessDenied")  # an unsigned token is not accepted
            return None
        return ak

    def misbehave(self, path, head):
        with lock:
            n = counts[path] = counts.get(path, 0) + 1
        if "/reset/" in path or ("/resetonce/" in path and n == 1):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return True
        if "/slow/" in path:
            time.sleep(2)
        if ("/flaky/" in path and n <= 2) or "/broken/" in path:
            self.error(500, "InternalError", head)
        elif "/slowdown/" in path and n == 1:
            self.error(503, "SlowDown", head)
        elif "/denied/" in path:
            self.error(403, "AccessDenied", head)
        elif "/missing/" in path:
            self.error(404, "NoSuchKey", head)
        elif "/badreq/" in path:
            self.error(400, "InvalidArgument", head)
        else:
            return False
        return True

    def handle_one(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        head = self.command == "HEAD"
        ak = self.verify(body)
        if ak is None:
            return
        raw_path, _, raw_query = self.path.partition("?")
        path = urllib.parse.unquote(raw_path)
        host = (self.headers.get("Host") or "").split(":")[0]
        if host.endswith(".localhost"):  # virtual-hosted style
            bucket, key = host[:-len(".localhost")], path.lstrip("/")
        else:
            bucket, _, key = path.lstrip("/").partition("/")
        if self.misbehave(path, head):
            return
        if key.endswith("/whoami"):
            who = ak + ("+token" if "x-amz-security-token" in self.headers else "")
            return self.reply(200, who.encode(), head=head)
        if self.command == "GET" and not key:
            return self.list(bucket, dict(urllib.parse.parse_qsl(raw_query,
                                                                 keep_blank_values=True)))
        k = bucket + "/" + key
        if self.command == "PUT":
            # S3's conditional write: If-None-Match: * creates only.
            with lock:
                exists = k in objects
                if not (exists and self.headers.get("If-None-Match") == "*"):
                    objects[k] = body
            if exists and self.headers.get("If-None-Match") == "*":
                return self.error(412, "PreconditionFailed")
            return self.reply(200, headers={"ETag": '"x"'})
        if self.command == "DELETE":
            with lock:
                objects.pop(k, None)
            return self.reply(204)
        with lock:
            data = objects.get(k)
        if data is None:
            return self.error(404, "NoSuchKey", head)
        rng = self.headers.get("Range")
        if rng and not head:
            a, _, b = rng[len("bytes="):].partition("-")
            a = int(a)
            b = min(int(b), len(data) - 1) if b else len(data) - 1
            if a >= len(data):
                return self.error(416, "InvalidRange")
            return self.reply(206, data[a:b + 1])
        self.reply(200, data, head=head)

    def list(self, bucket, q):
        prefix = bucket + "/" + q.get("prefix", "")
        start = q.get("continuation-token", "")
        maxk = int(q.get("max-keys", "1000"))
        with lock:
            keys = sorted(k for k in objects if k.startswith(prefix) and k > bucket + "/" + start)
        page, more = keys[:maxk], len(keys) > maxk
        out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult>"]
        out.append("<IsTruncated>%s</IsTruncated>" % ("true" if more else "false"))
        for k in page:
            out.append("<Contents><Key>%s</Key><Size>%d</Size></Contents>"
                       % (escape(k.split("/", 1)[1]), len(objects.get(k, b""))))
        if more:
            out.append("<NextContinuationToken>%s</NextContinuationToken>"
                       % escape(page[-1].split("/", 1)[1]))
        out.append("</ListBucketResult>")
        self.reply(200, "".join(out).encode(), {"Content-Type": "application/xml"})

    do_GET = do_PUT = do_HEAD = do_DELETE = handle_one


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
