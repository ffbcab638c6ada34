#!/usr/bin/env python3
"""Writes the mock server's known profile of one service as a gzip pprof
(sample types samples/count + cpu/nanoseconds, period 10 ms), so a real
stoke-query can be loaded with the same data:

    make_pprof.py checkout OUT.pb.gz [TIME_MS]
    stoke-query import --store DIR --service checkout OUT.pb.gz
"""
import gzip
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mock_server import STACKS  # noqa: E402


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def f_varint(field, v):
    return key(field, 0) + varint(v)


def f_bytes(field, b):
    return key(field, 2) + varint(len(b)) + b


def packed(field, vals):
    return f_bytes(field, b"".join(varint(v) for v in vals))


def build(service, time_ms):
    strings = [""]

    def s(x):
        if x not in strings:
            strings.append(x)
        return strings.index(x)

    out = bytearray()
    for t, u in (("samples", "count"), ("cpu", "nanoseconds")):
        out += f_bytes(1, f_varint(1, s(t)) + f_varint(2, s(u)))
    funcs = {}
    for stack, ns in STACKS[service]:
        ids = []
        for name in reversed(stack.split(";")):  # leaf first
            if name not in funcs:
                funcs[name] = len(funcs) + 1
            ids.append(funcs[name])
        out += f_bytes(2, packed(1, ids) + packed(2, [ns // 10_000_000, ns]))
    out += f_bytes(3, f_varint(1, 1) + f_varint(2, 0x400000) + f_varint(3, 0x800000) + f_varint(5, s("/usr/bin/" + service)))
    for name, fid in funcs.items():
        line = f_varint(1, fid) + f_varint(2, 1)
        out += f_bytes(4, f_varint(1, fid) + f_varint(2, 1) + f_varint(3, 0x400000 + 16 * fid) + f_bytes(4, line))
    for name, fid in funcs.items():
        out += f_bytes(5, f_varint(1, fid) + f_varint(2, s(name)) + f_varint(3, s(name)) + f_varint(4, s(service + ".c")))
    for x in list(strings):
        pass
    tail = bytearray()
    tail += f_varint(9, time_ms * 1_000_000) + f_varint(10, 10 * 1_000_000_000)
    tail += f_bytes(11, f_varint(1, s("cpu")) + f_varint(2, s("nanoseconds"))) + f_varint(12, 10_000_000)
    for x in strings:
        out += f_bytes(6, x.encode())
    return bytes(out + tail)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    t = int(sys.argv[3]) if len(sys.argv) > 3 else int(time.time() * 1000) - 120_000
    with gzip.open(sys.argv[2], "wb") as f:
        f.write(build(sys.argv[1], t))
