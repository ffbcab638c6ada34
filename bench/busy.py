"""bench/busy.py - a CPU-busy Python for `make bench`'s unwinding stage: a
plain loop run by Debian's /usr/bin/python3 with no flags (no perf
trampolines), so the interpreter's own C frames are what the walkers see.
Usage: /usr/bin/python3 bench/busy.py SECONDS"""
import sys
import time


def leaf(n):
    s = 0
    for i in range(n):
        s = (s + i * i) % 1000003
    return s


def middle(n):
    return leaf(n) + leaf(n >> 1)


end = time.monotonic() + float(sys.argv[1] if len(sys.argv) > 1 else 600)
while time.monotonic() < end:
    middle(20000)
