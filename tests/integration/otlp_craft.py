#!/usr/bin/env python3
"""otlp_craft.py OUT KIND [ARGS] — writes a request body for the receiver
tests, encoded here field by field (no protobuf library).

KIND:
  partial  an OTLP ExportProfilesServiceRequest (opentelemetry-proto
           v1development) with two profiles of service otlp-py: one good
           (main;foo 100 and main 50 ns), one whose sample names stack 7
           (out of range)
  allbad   the same with only the bad one
  push PPROF SERVICE
           a Pyroscope push.v1.PushRequest: one series labelled
           __name__=process_cpu, service_name=SERVICE, env=push, with the
           file PPROF as its raw profile
"""
import struct
import sys
import time


def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, wire, payload):
    key = varint((num << 3) | wire)
    if wire == 0:
        return key + varint(payload)
    if wire == 1:
        return key + struct.pack("<Q", payload)
    return key + varint(len(payload)) + payload


def msg(*parts):
    return b"".join(parts)


def string_table(strings):
    return b"".join(field(5, 2, s.encode()) for s in strings)


def profile(stack_values, now_ns):
    vt = msg(field(1, 0, 1), field(2, 0, 2))  # cpu / nanoseconds
    samples = b"".join(
        field(2, 2, msg(field(1, 0, stack), field(4, 2, varint(v)))) for stack, v in stack_values)
    return msg(field(1, 2, vt), samples, field(3, 1, now_ns), field(4, 0, 10 ** 10),
               field(5, 2, vt), field(6, 0, 10 ** 7))


def push(out, pprof, service):
    labels = [("__name__", "process_cpu"), ("service_name", service), ("env", "push")]
    series = msg(b"".join(field(1, 2, msg(field(1, 2, k.encode()), field(2, 2, v.encode())))
                          for k, v in labels),
                 field(2, 2, msg(field(1, 2, open(pprof, "rb").read()), field(2, 2, b"id-1"))))
    open(out, "wb").write(field(1, 2, series))


def main():
    out, kind = sys.argv[1], sys.argv[2]
    if kind == "push":
        push(out, sys.argv[3], sys.argv[4])
        return
    now_ns = int(time.time()) * 10 ** 9
    strings = ["", "cpu", "nanoseconds", "main", "foo", "service.name", "otlp-py"]
    fns = [b"", msg(field(1, 0, 3)), msg(field(1, 0, 4))]
    locs = [b"", msg(field(3, 2, msg(field(1, 0, 1)))), msg(field(3, 2, msg(field(1, 0, 2))))]
    # stack 1: foo (leaf) <- main; stack 2: main
    stacks = [b"", msg(field(1, 2, varint(2) + varint(1))), msg(field(1, 2, varint(1)))]
    d = msg(b"".join(field(3, 2, f) for f in fns), b"".join(field(2, 2, l) for l in locs),
            string_table(strings), b"".join(field(7, 2, s) for s in stacks))
    good = profile([(1, 100), (2, 50)], now_ns)
    bad = profile([(7, 1)], now_ns)
    profs = [good, bad] if kind == "partial" else [bad]
    scope = msg(b"".join(field(2, 2, p) for p in profs))
    res = msg(field(1, 2, msg(field(1, 2, msg(field(1, 2, b"service.name"),
                                             field(2, 2, field(1, 2, b"otlp-py")))))),
              field(2, 2, scope))
    body = msg(field(1, 2, res), field(2, 2, d))
    open(out, "wb").write(body)


main()
