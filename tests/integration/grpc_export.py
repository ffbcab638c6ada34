#!/usr/bin/env python3
"""grpc_export.py ADDR [options] BODY... — sends each BODY (an encoded
ExportProfilesServiceRequest, e.g. what the agent's OTLP/HTTP exporter
posted; gunzipped first when it is gzip) to ADDR as a real gRPC client does: grpcio's generic unary call
opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export
over h2c (an insecure channel), bytes in and out. Prints one JSON line per
call: {"code": "OK", "details": ..., "rejected": N, "message": ...,
"retry_delay": S}: S is the google.rpc.RetryInfo's retry_delay in seconds
from the grpc-status-details-bin trailer (decoded by python3-protobuf:
Debian 12 has neither grpcio-status nor googleapis-common-protos, so
google.rpc.Status and RetryInfo are declared here from their .proto, with
protobuf's own Any and Duration), null without one.

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
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2
from google.protobuf import message_factory

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


def rpc_types():
    """google.rpc.Status and google.rpc.RetryInfo (google/rpc/status.proto,
    google/rpc/error_details.proto), built at run time over protobuf's own
    google.protobuf.Any and Duration."""
    pool = descriptor_pool.DescriptorPool()
    for m in (any_pb2, duration_pb2):
        fd = descriptor_pb2.FileDescriptorProto()
        m.DESCRIPTOR.CopyToProto(fd)
        pool.Add(fd)
    F = descriptor_pb2.FieldDescriptorProto
    fd = descriptor_pb2.FileDescriptorProto(
        name='google/rpc/stoke_test.proto', package='google.rpc', syntax='proto3',
        dependency=['google/protobuf/any.proto', 'google/protobuf/duration.proto'])
    st = fd.message_type.add(name='Status')
    st.field.add(name='code', number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    st.field.add(name='message', number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    st.field.add(name='details', number=3, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                 type_name='.google.protobuf.Any')
    ri = fd.message_type.add(name='RetryInfo')
    ri.field.add(name='retry_delay', number=1, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                 type_name='.google.protobuf.Duration')
    pool.Add(fd)
    get = getattr(message_factory, 'GetMessageClass', None) or \
        message_factory.MessageFactory(pool).GetPrototype
    return (get(pool.FindMessageTypeByName('google.rpc.Status')),
            get(pool.FindMessageTypeByName('google.rpc.RetryInfo')))


def retry_delay(err):
    """The RetryInfo delay (seconds) in an RpcError's grpc-status-details-bin, or None;
    the Status must repeat the call's code and message."""
    Status, RetryInfo = rpc_types()
    for k, v in err.trailing_metadata() or ():
        if k != 'grpc-status-details-bin':
            continue
        st = Status()
        st.ParseFromString(v)  # grpcio hands binary metadata over base64-decoded
        if st.code != err.code().value[0] or st.message != (err.details() or ''):
            raise SystemExit('grpc-status-details-bin: Status %d %r, call %s %r' %
                             (st.code, st.message, err.code(), err.details()))
        for d in st.details:
            if d.type_url == 'type.googleapis.com/google.rpc.RetryInfo':
                ri = RetryInfo()
                ri.ParseFromString(d.value)
                return ri.retry_delay.seconds + ri.retry_delay.nanos / 1e9
    return None


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
            print(json.dumps({'code': 'OK', 'details': '', 'rejected': rej, 'message': msg,
                              'retry_delay': None}))
        except grpc.RpcError as e:
            print(json.dumps({'code': e.code().name, 'details': e.details() or '',
                              'rejected': 0, 'message': '', 'retry_delay': retry_delay(e)}))
        sys.stdout.flush()


main()
