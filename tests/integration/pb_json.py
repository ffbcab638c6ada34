#!/usr/bin/python3
"""pb_json.py DESCRIPTOR_SET MESSAGE IN OUT — a protobuf message (gzip or
not) of type MESSAGE rewritten in the protobuf JSON mapping by Google's own
implementation (python3-protobuf's json_format, not Stoke's code): for the
receiver's JSON tests. OTLP's exceptions are applied: enums as integers,
traceId, spanId and profileId as hex (json_format writes bytes as base64);
other bytes (a Connect PushRequest's rawProfile) stay base64. 64-bit
integers stay strings, as protojson writes them. DESCRIPTOR_SET is
`protoc --include_imports --descriptor_set_out` of the message's .proto.

Runs under Debian's /usr/bin/python3 (python3-protobuf).
"""
import base64
import gzip
import json
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

HEX = {'traceId', 'spanId', 'profileId'}


def hexify(v):
    if isinstance(v, dict):
        return {k: (base64.b64decode(x).hex() if k in HEX and isinstance(x, str) else hexify(x))
                for k, x in v.items()}
    if isinstance(v, list):
        return [hexify(x) for x in v]
    return v


def main():
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], 'rb').read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    cls = message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName(sys.argv[2]))
    body = open(sys.argv[3], 'rb').read()
    if body[:2] == b'\x1f\x8b':
        body = gzip.decompress(body)
    m = cls.FromString(body)
    d = json_format.MessageToDict(m, use_integers_for_enums=True)
    with open(sys.argv[4], 'w') as f:
        json.dump(hexify(d), f)


main()
