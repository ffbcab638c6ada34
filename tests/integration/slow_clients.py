#!/usr/bin/env python3
"""Slow HTTP clients ("slowloris"), for test_query_limits.sh.

slow_clients.py HOST PORT N INTERVAL DURATION

Opens N connections to HOST:PORT; each sends "GET / HTTP/1.1\\r\\nHost: x\\r\\n"
and then one more header line every INTERVAL seconds (never the blank line
that ends the head), for DURATION seconds or until SIGTERM. Prints "opened
K" once all connections are up (K may be less than N when the server
refuses some), and at the end "closed C of K, first after S s" (C:
connections the server closed or reset; S: -1 when none was).
"""
import errno
import signal
import socket
import sys
import time

stop = False


def on_term(sig, frame):
    global stop
    stop = True


def main():
    host, port, n, interval, duration = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                         float(sys.argv[4]), float(sys.argv[5]))
    signal.signal(signal.SIGTERM, on_term)
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((host, port))
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    print("opened %d" % len(socks), flush=True)
    start = time.monotonic()
    next_line = start + interval
    closed = {}
    while time.monotonic() - start < duration and not stop:
        time.sleep(0.1)
        now = time.monotonic()
        send = now >= next_line
        if send:
            next_line += interval
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                if s.recv(1, socket.MSG_PEEK) == b"":
                    closed[i] = now - start
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = now - start
                continue
            if send:
                try:
                    s.send(b"X-Slow: %d\r\n" % int(now - start))
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        closed[i] = now - start
    print("closed %d of %d, first after %.1f s" %
          (len(closed), len(socks), min(closed.values()) if closed else -1), flush=True)
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
