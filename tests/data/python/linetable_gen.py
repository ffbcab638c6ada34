"""Writes the line tables of a few functions and the line each bytecode
offset belongs to, as this interpreter says (co_lines, or dis.findlinestarts
before 3.10): the fixture tests/unit/test_python.c decodes the tables with
Stoke's own decoder and compares. Run with each interpreter:
    python3.X tests/data/python/linetable_gen.py > tests/data/python/linetable-3.X.txt
Format: one code object per block: "code NAME FIRSTLINENO HEX" then
"at BYTEOFFSET LINE" lines (-1: no line)."""
import dis
import sys


def sample(n):
    total = 0
    for i in range(n):
        if i % 3 == 0:
            total += (i *
                      2)
        elif i % 5:
            total -= i
        else:
            total = (total
                     + sum([j for j in range(i)])
                     - 1)
    try:
        total //= n
    except ZeroDivisionError:
        total = -1
    return total


class Shape:
    def area(self, w, h):
        f = lambda x: x * w
        return f(h) + \
            w


def codes(co):
    yield co
    for c in co.co_consts:
        if hasattr(c, "co_code"):
            yield from codes(c)


def lines(co):
    out = {}
    if sys.version_info >= (3, 10):
        for start, end, line in co.co_lines():
            for b in range(start, end, 2):
                out[b] = line if line is not None else -1
    else:
        starts = list(dis.findlinestarts(co))
        for b in range(0, len(co.co_code), 2):
            line = -1
            for off, ln in starts:
                if off <= b:
                    line = ln
            out[b] = line
    return out


def table(co):
    return co.co_linetable if sys.version_info >= (3, 10) else co.co_lnotab


for top in (sample.__code__, Shape.area.__code__):
    for co in codes(top):
        print("code %s %d %s" % (co.co_name, co.co_firstlineno, table(co).hex()))
        for b, line in sorted(lines(co).items()):
            print("at %d %d" % (b, line))
