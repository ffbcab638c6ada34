#!/usr/bin/env python3
"""Writes tests/fuzz/corpus/fuzz_hotspot_vm/seed: a memory image holding a
whole, valid set of HotSpot introspection tables (every type and field
unwind/hotspot.c looks up, JDK 17) and a code cache with one heap, for
fuzz_hotspot_vm to start from. Run from the repository root."""
import re
import struct

BASE = 0x10000
src = open("unwind/hotspot.c").read()
wants = re.findall(r'\{"([^"]+)", (NULL|"[^"]+"), (HS_\w+), (K_\w+)\}', src)
img = bytearray(0x8000)
strings = {}
str_at = 0x6000


def s(text):
    global str_at
    if text not in strings:
        strings[text] = BASE + str_at
        img[str_at:str_at + len(text) + 1] = text.encode() + b"\0"
        str_at += len(text) + 1
    return strings[text]


def w64(off, v):
    struct.pack_into("<Q", img, off, v)


def w32(off, v):
    struct.pack_into("<i", img, off, v)


# layout variables at 0..80; the arrays at 0x100 (types) and 0x1000 (structs)
types_at, structs_at, statics_at = 0x100, 0x1000, 0x4000
w64(0, BASE + structs_at)  # gHotSpotVMStructs: the array's address
for k, v in enumerate([48, 0, 8, 16, 24, 32]):
    w64(8 * (k + 1), v)     # stride, type, field, static, offset, address
w64(56, BASE + types_at)   # gHotSpotVMTypes
for k, v in enumerate([24, 0, 8]):
    w64(64 + 8 * k, v)      # stride, type, size
sizes = {"ConstMethod": 48, "ConstantPool": 64, "HeapBlock": 16, "PcDesc": 16, "nmethod": 256}
t = types_at
for name, size in sizes.items():
    w64(t, s(name)); w64(t + 8, size); t += 24
statics = {"CodeCache._heaps": 0x4000, "CodeCache._low_bound": 0x4008,
           "CodeCache._high_bound": 0x4010, "AbstractInterpreter._code": 0x4018,
           "Abstract_VM_Version._vm_major_version": 0x4020}
e, off = structs_at, 0
seen = set()
for typ, field, hid, kind in wants:
    if kind == "K_SIZE" or hid in seen or typ in ("Symbol",) and field == '"_length_and_refcount"':
        continue
    if hid in ("HS_IK_SOURCE_FILE",):
        continue
    seen.add(hid)
    f = field.strip('"')
    w64(e, s(typ)); w64(e + 8, s(f))
    if kind == "K_STATIC":
        w32(e + 16, 1); w64(e + 32, BASE + statics[typ + "." + f])
    else:
        off = {"CodeBlob._name": 0, "CodeBlob._size": 8, "CodeBlob._code_begin": 16,
               "CodeBlob._frame_complete_offset": 24, "CodeBlob._frame_size": 28,
               "CompiledMethod._deopt_handler_begin": 40, "nmethod._compile_id": 64,
               "PcDesc._pc_offset": 0, "PcDesc._scope_decode_offset": 4,
               "CodeHeap._memory": 0, "CodeHeap._segmap": 16, "CodeHeap._log2_segment_size": 40,
               "VirtualSpace._low_boundary": 0, "VirtualSpace._high_boundary": 8,
               "GrowableArrayBase._len": 0, "GrowableArray<int>._data": 8,
               "StubQueue._stub_buffer": 0, "StubQueue._buffer_limit": 8,
               "Symbol._length": 0, "Symbol._body": 6}.get(typ + "." + f, 48)
        w64(e + 24, off)
    e += 48
# the statics: a code cache of one heap [0x5000, 0x5800), segmap at 0x5800
heap_lo, heap_hi = BASE + 0x5000, BASE + 0x5800
w64(0x4000, BASE + 0x4100)            # _heaps -> GrowableArray
w32(0x4100, 1); w64(0x4108, BASE + 0x4200)
w64(0x4200, BASE + 0x4300)            # CodeHeap*
w64(0x4300, heap_lo); w64(0x4308, heap_hi); w64(0x4310, BASE + 0x5800); w32(0x4328, 6)
w64(0x4008, heap_lo); w64(0x4010, heap_hi)
w64(0x4018, BASE + 0x4400)            # the interpreter's StubQueue
w64(0x4400, heap_lo); w32(0x4408, 0x100)
w32(0x4020, 17)
open("tests/fuzz/corpus/fuzz_hotspot_vm/seed", "wb").write(bytes(img))
