#!/usr/bin/env python3
"""grpc_export.py ADDR [options] BODY... — sends each BODY (an encoded
ExportProfilesServiceRequest, e.g. what the agent's OTLP/HTTP exporter
posted; gunzipped first when it is gzip) to ADDR as a real gRPC client does: grpcio's generic unary call
opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export
over h2c (an insecure channel), bytes in and out. Prints one JSON line per
call: {"code": "OK", "details": ..., "rejected": N, "message": ...}.

  --gzip          compress the messages (grpc-encoding gzip)
  --token T       authorization: Bearer T
  --tenant T      x-scope-orgid: T
  --load N,C      instead: N calls, C in flight, all BODYs in turn; prints
                  {"calls", "ok", "seconds", "calls_per_s", "mb_per_s"}
"""
import gzip
import json
import os
import sys
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dsym_views import fields  # noqa: E402 (the protobuf wire reader the tests share)

METHOD = '/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export'


def partial(resp):
    """ExportProfilesServiceResponse.partial_success (field 1): rejected_profiles 1, error_message 2."""
    rej, msg = 0, ''
    for f, _, v in fields(resp):
        if f == 1:
            for g, _, w in fields(v):
                if g == 1:
                    rej = w
                elif g == 2:
                    msg = w.decode()
    return rej, msg


def main():
    args = sys.argv[1:]
    addr = args.pop(0)
    comp, md, load, bodies = grpc.Compression.NoCompression, [], None, []
    while args:
        a = args.pop(0)
        if a == '--gzip':
            comp = grpc.Compression.Gzip
        elif a == '--token':
            md.append(('authorization', 'Bearer ' + args.pop(0)))
        elif a == '--tenant':
            md.append(('x-scope-orgid', args.pop(0)))
        elif a == '--load':
            load = [int(x) for x in args.pop(0).split(',')]
        else:
            b = open(a, 'rb').read()
            bodies.append(gzip.decompress(b) if b[:2] == b'\x1f\x8b' else b)
    ch = grpc.insecure_channel(addr, options=[('grpc.max_send_message_length', 64 << 20),
                                              ('grpc.max_receive_message_length', 64 << 20)])
    export = ch.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
    if load:
        n, c = load
        t0 = time.monotonic()
        sent = ok = nbytes = 0
        inflight = []
        while sent < n or inflight:
            while sent < n and len(inflight) < c:
                b = bodies[sent % len(bodies)]
                inflight.append(export.future(b, metadata=md, compression=comp, timeout=60))
                nbytes += len(b)
                sent += 1
            f = inflight.pop(0)
            try:
                f.result()
                ok += 1
            except grpc.RpcError:
                pass
        dt = time.monotonic() - t0
        print(json.dumps({'calls': n, 'ok': ok, 'seconds': round(dt, 3),
                          'calls_per_s': round(n / dt, 1), 'mb_per_s': round(nbytes / dt / 1e6, 2)}))
        return
    for b in bodies:
        try:
            resp, call = export.with_call(b, metadata=md, compression=comp, timeout=30)
            rej, msg = partial(resp)
            print(json.dumps({'code': 'OK', 'details': '', 'rejected': rej, 'message': msg}))
        except grpc.RpcError as e:
            print(json.dumps({'code': e.code().name, 'details': e.details() or '',
                              'rejected': 0, 'message': ''}))
        sys.stdout.flush()


main()
