#!/usr/bin/env python3
"""Writes tests/data/jfr/small.jfr and small.labels.pb: a hand-built JDK
Flight Recorder chunk (the layout of docs/format.md, "JFR input") whose
every value is known, and the Pyroscope LabelsSnapshot beside it. Used by
tests/unit/test_jfr.c (exact values) and as fuzz_jfr's seed (copied to
tests/fuzz/corpus/fuzz_jfr/). Run from the repository root.

Content: stacks S1 = [App.fib:10, App.main:20], S2 = [App$$Lambda$14/
0x0000000800c03000.run, App.main:20], S3 = [java/lang/Object.wait,
App.lock:30]; execution samples 3x S1 (context 1), 2x S2 (context 2,
span 0xabc, span name string 4), 1x S1 sleeping (not CPU); allocations in
new TLABs on S1 of 100 and 200 bytes; a monitor enter on S3 of 5000 ticks
(ticks_per_second 2e9: 2500 ns); the "event" setting "cpu"."""
import struct


def uv(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def padded(n):  # the JDK's fixed 4-byte event sizes
    return bytes([(n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, ((n >> 14) & 0x7F) | 0x80,
                  (n >> 21) & 0x7F])


def jstr(s):
    b = s.encode()
    return b"\x03" + uv(len(b)) + b


def event(body):
    return padded(len(body) + 4) + body


# ---- metadata -------------------------------------------------------------
T = {"long": 1, "int": 2, "boolean": 3, "java.lang.String": 4, "jdk.types.Symbol": 10,
     "java.lang.Class": 11, "jdk.types.Method": 12, "jdk.types.StackFrame": 13,
     "jdk.types.StackTrace": 14, "jdk.types.ThreadState": 15, "jdk.ExecutionSample": 20,
     "jdk.ObjectAllocationInNewTLAB": 21, "jdk.JavaMonitorEnter": 22, "jdk.ActiveSetting": 23}
FIELDS = {
    "jdk.types.Symbol": [("string", "java.lang.String", 0, 0)],
    "java.lang.Class": [("name", "jdk.types.Symbol", 1, 0)],
    "jdk.types.Method": [("type", "java.lang.Class", 1, 0), ("name", "jdk.types.Symbol", 1, 0)],
    "jdk.types.StackFrame": [("method", "jdk.types.Method", 1, 0), ("lineNumber", "int", 0, 0)],
    "jdk.types.StackTrace": [("truncated", "boolean", 0, 0),
                             ("frames", "jdk.types.StackFrame", 0, 1)],
    "jdk.types.ThreadState": [("name", "java.lang.String", 0, 0)],
    "jdk.ExecutionSample": [("startTime", "long", 0, 0), ("stackTrace", "jdk.types.StackTrace", 1, 0),
                            ("state", "jdk.types.ThreadState", 1, 0), ("contextId", "long", 0, 0),
                            ("spanId", "long", 0, 0), ("spanName", "long", 0, 0)],
    "jdk.ObjectAllocationInNewTLAB": [("startTime", "long", 0, 0),
                                      ("stackTrace", "jdk.types.StackTrace", 1, 0),
                                      ("tlabSize", "long", 0, 0), ("contextId", "long", 0, 0)],
    "jdk.JavaMonitorEnter": [("startTime", "long", 0, 0), ("duration", "long", 0, 0),
                             ("stackTrace", "jdk.types.StackTrace", 1, 0)],
    "jdk.ActiveSetting": [("startTime", "long", 0, 0), ("name", "java.lang.String", 0, 0),
                          ("value", "java.lang.String", 0, 0)],
}
strings = []


def si(s):
    if s not in strings:
        strings.append(s)
    return strings.index(s)


def element(name, attrs, children):
    out = uv(si(name)) + uv(len(attrs))
    for k, v in attrs:
        out += uv(si(k)) + uv(si(v))
    return out + uv(len(children)) + b"".join(children)


classes = []
for name, tid in T.items():
    fields = [element("field", [("name", f), ("class", str(T[t]))] +
                      ([("constantPool", "true")] if cp else []) +
                      ([("dimension", "1")] if dim else []), [])
              for f, t, cp, dim in FIELDS.get(name, [])]
    sup = [("superType", "jdk.jfr.Event")] if tid >= 20 else []
    classes.append(element("class", [("name", name), ("id", str(tid))] + sup, fields))
root = element("root", [], [element("metadata", [], classes), element("region", [], [])])
meta_body = uv(0) + uv(0) + uv(0) + uv(1) + uv(len(strings)) + \
    b"".join(jstr(s) for s in strings) + root
meta = event(meta_body)

# ---- constant pools -------------------------------------------------------
symbols = {1: "App", 2: "fib", 3: "main", 4: "App$$Lambda$14/0x0000000800c03000", 5: "run",
           6: "java/lang/Object", 7: "wait", 8: "lock"}
klass = {1: 1, 2: 4, 3: 6}  # class id -> symbol
methods = {1: (1, 2), 2: (1, 3), 3: (2, 5), 4: (3, 7), 5: (1, 8)}  # id -> (class, name)
stacks = {1: [(1, 10), (2, 20)], 2: [(3, 0), (2, 20)], 3: [(4, 0), (5, 30)]}
states = {1: "STATE_RUNNABLE", 2: "STATE_SLEEPING"}


def pool(tname, entries):
    return uv(T[tname]) + uv(len(entries)) + b"".join(entries)


pools = [
    pool("jdk.types.Symbol", [uv(i) + jstr(s) for i, s in symbols.items()]),
    pool("java.lang.Class", [uv(i) + uv(s) for i, s in klass.items()]),
    pool("jdk.types.Method", [uv(i) + uv(c) + uv(n) for i, (c, n) in methods.items()]),
    pool("jdk.types.StackTrace", [uv(i) + b"\x00" + uv(len(fr)) +
                                  b"".join(uv(m) + uv(l) for m, l in fr)
                                  for i, fr in stacks.items()]),
    pool("jdk.types.ThreadState", [uv(i) + jstr(s) for i, s in states.items()]),
]
cp = event(uv(1) + uv(0) + uv(0) + uv(0) + b"\x01" + uv(len(pools)) + b"".join(pools))

# ---- events ---------------------------------------------------------------
evs = [event(uv(T["jdk.ActiveSetting"]) + uv(5) + jstr("event") + jstr("cpu"))]
for _ in range(3):
    evs.append(event(uv(T["jdk.ExecutionSample"]) + uv(7) + uv(1) + uv(1) + uv(1) + uv(0) + uv(0)))
for _ in range(2):
    evs.append(event(uv(T["jdk.ExecutionSample"]) + uv(8) + uv(2) + uv(1) + uv(2) + uv(0xABC) +
                     uv(4)))
evs.append(event(uv(T["jdk.ExecutionSample"]) + uv(9) + uv(1) + uv(2) + uv(1) + uv(0) + uv(0)))
for size in (100, 200):
    evs.append(event(uv(T["jdk.ObjectAllocationInNewTLAB"]) + uv(9) + uv(1) + uv(size) + uv(1)))
evs.append(event(uv(T["jdk.JavaMonitorEnter"]) + uv(9) + uv(5000) + uv(3)))
body = b"".join(evs)

meta_off = 68 + len(body)
cp_off = meta_off + len(meta)
size = cp_off + len(cp)
header = b"FLR\0" + struct.pack(">HHQQQQQQQI", 2, 0, size, cp_off, meta_off,
                                1700000000000000000, 1000000000, 0, 2000000000, 1)
open("tests/data/jfr/small.jfr", "wb").write(header + body + meta + cp)


# ---- labels: LabelsSnapshot {contexts: {1: {1: 2}, 2: {1: 3}}, strings} ------
def msg(field, payload):
    return uv(field << 3 | 2) + uv(len(payload)) + payload


def varint_field(field, v):
    return uv(field << 3) + uv(v)


def ctx(labels):
    return b"".join(msg(1, varint_field(1, k) + varint_field(2, v)) for k, v in labels.items())


lstrings = {1: "thread_name", 2: "worker-1", 3: "worker-2", 4: "GET /fib"}
snap = msg(1, varint_field(1, 1) + msg(2, ctx({1: 2}))) + \
    msg(1, varint_field(1, 2) + msg(2, ctx({1: 3}))) + \
    b"".join(msg(2, varint_field(1, k) + msg(2, v.encode())) for k, v in lstrings.items())
open("tests/data/jfr/small.labels.pb", "wb").write(snap)
