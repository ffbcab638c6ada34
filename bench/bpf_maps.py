#!/usr/bin/env python3
"""bpf_maps.py - the BPF map memory of one running stoke-agent, as bpftool
reports it, sampled while the agent runs (bench/run.sh's unwinding stage).

Usage: bpf_maps.py --pid PID --json OUT [--interval S] [--bench-pid P]...
                   [--while-file F]

Every S seconds (2) until PID exits (or F, measure.py's --pid-file, is
removed: measure.py removes it before it stops the agent, whose teardown
empties unwind_files before it closes the tables), it takes the agent's maps: the map ids
of the agent's file descriptors (/proc/PID/fdinfo, `map_id:`), with their
`bytes_memlock` from one `bpftool -j map show`. The unwind tables are the
arrays named `stoke_uw_table` (one per binary, inside the `unwind_tables`
array of maps); every other map of the agent (counts_0/1, stacks_0/1,
unwind_procs, unwind_files, ...) is reported by name beside them.

For the snapshot with the most table bytes it also says which binary each
table is: `unwind_files` maps a file identity (inode, size) to a table
index, `unwind_tables` an index to the table's map id, and /proc/*/maps an
inode to a path. A table counts as the bench's when a process of the trees
under --bench-pid (or the agent itself) maps its binary, or did at an
earlier snapshot; the others are other work on the host (other users'
builds), some cached after their processes exited.

OUT (JSON): snapshots [{t, tables, table_bytes, other_bytes}], max (most
table bytes) and last (the same plus other maps by name; snapshots without
any map of the agent, before it made them or after it closed them, left
out), and binaries (path, bytes, entries, bench, bench_process: comm/pid of
a bench process that mapped it, mapped_now) for the max snapshot. A path is
remembered from earlier snapshots when no process maps the file any more. Python 3 standard library only; needs root
and bpftool.
"""
import argparse
import json
import os
import subprocess
import sys
import time

TABLE_NAME = "stoke_uw_table"


def bpftool(*args):
    out = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise OSError("bpftool %s: %s" % (" ".join(args), out.stderr.strip()[:200]))
    return json.loads(out.stdout or "null")


def agent_map_ids(pid):
    ids = set()
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                for line in f:
                    if line.startswith("map_id:"):
                        ids.add(int(line.split()[1]))
        except (OSError, ValueError):
            pass
    return ids


def le32(byte_strs):
    return sum(int(b, 16) << (8 * i) for i, b in enumerate(byte_strs[:4]))


def proc_files(name):
    """Yields (pid as a string, text of /proc/PID/NAME) for every process
    that is still there when it is read."""
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                with open("/proc/%s/%s" % (e, name)) as f:
                    yield e, f.read()
            except OSError:
                pass


def descendants(roots):
    """The pids of the process trees under roots (roots included)."""
    children = {}
    for e, s in proc_files("stat"):
        try:
            ppid = int(s[s.rindex(")") + 2:].split()[1])
        except (ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(e))
    out, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.add(p)
        todo.extend(children.get(p, []))
    return out


def mapped_files(bench):
    """{(inode, size): [path, "comm/pid" of a bench process mapping it, or
    None]} from the executable mappings in /proc/*/maps
    (each path's size read once: the bench host has one mount namespace)."""
    files, sizes = {}, {}
    for e, text in proc_files("maps"):
        for ln in text.splitlines():
            parts = ln.split(None, 5)
            # executable mappings only: the agent itself maps ELF and DWARF
            # files read-only while it reads them
            if len(parts) < 6 or "x" not in parts[1] or parts[4] == "0" or \
                    not parts[5].startswith("/"):
                continue
            path = parts[5].strip()
            if path.endswith(" (deleted)"):
                path = path[:-len(" (deleted)")]
            if path not in sizes:
                try:
                    sizes[path] = os.stat("/proc/%s/root%s" % (e, path)).st_size
                except OSError:
                    sizes[path] = None
            size = sizes[path]
            if size is None:
                continue
            k = (int(parts[4]), size)
            ent = files.setdefault(k, [path, None])
            if ent[1] is None and int(e) in bench:
                ent[1] = comm(e) + "/" + e
    return files


def comm(pid):
    try:
        with open("/proc/%s/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


def snapshot(pid, roots, known):
    """One look at the agent's maps; @known keeps what earlier looks learnt
    of each file identity (a table outlives the processes that mapped it)."""
    ids = agent_map_ids(pid)
    maps = [m for m in bpftool("map", "show") if m.get("id") in ids]
    tables = [m for m in maps if m.get("name") == TABLE_NAME]
    others = {}
    for m in maps:
        if m.get("name") != TABLE_NAME:
            o = others.setdefault(m.get("name") or "?", {"maps": 0, "bytes": 0, "max_entries": 0})
            o["maps"] += 1
            o["bytes"] += m.get("bytes_memlock", 0)
            o["max_entries"] += m.get("max_entries", 0)
    snap = {"tables": len(tables), "table_bytes": sum(m.get("bytes_memlock", 0) for m in tables),
            "other_maps": sum(o["maps"] for o in others.values()),
            "other_bytes": sum(o["bytes"] for o in others.values()), "others": others}
    byid = {m["id"]: m for m in tables}
    outer = [m for m in maps if m.get("name") == "unwind_tables"]
    files = [m for m in maps if m.get("name") == "unwind_files"]
    binaries = []
    if outer and files and tables:
        index_to_id = {le32(e["key"]): le32(e["value"])
                       for e in bpftool("map", "dump", "id", str(outer[0]["id"])) or []}
        on_host = mapped_files(descendants(set(roots) | {pid}))
        for k, (path, by) in on_host.items():
            old = known.get(k)
            known[k] = [path, by or (old[1] if old else None)]
        seen = set()
        for e in bpftool("map", "dump", "id", str(files[0]["id"])) or []:
            fm = e.get("formatted")
            if not fm:
                continue
            mid = index_to_id.get(fm["value"]["table"])
            if mid not in byid or mid in seen:
                continue
            seen.add(mid)
            k = (fm["key"]["ino"], fm["key"]["size"])
            path, by = known.get(k, ["(not seen mapped: inode %d)" % k[0], None])
            binaries.append({"path": path, "bytes": byid[mid].get("bytes_memlock", 0),
                             "entries": byid[mid].get("max_entries", 0), "bench": by is not None,
                             "bench_process": by, "mapped_now": k in on_host})
        for mid, m in byid.items():  # tables without a file entry
            if mid not in seen:
                binaries.append({"path": "(no unwind_files entry)",
                                 "bytes": m.get("bytes_memlock", 0),
                                 "entries": m.get("max_entries", 0), "bench": False})
        binaries.sort(key=lambda b: -b["bytes"])
        snap["bench_tables"] = sum(1 for b in binaries if b["bench"])
        snap["bench_table_bytes"] = sum(b["bytes"] for b in binaries if b["bench"])
    return snap, binaries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--interval", type=float, default=2)
    ap.add_argument("--bench-pid", type=int, action="append", default=[])
    ap.add_argument("--while-file")
    a = ap.parse_args()

    def running():
        return os.path.exists("/proc/%d" % a.pid) and (
            not a.while_file or os.path.exists(a.while_file))
    res = {"pid": a.pid, "interval_s": a.interval, "snapshots": []}
    t0 = time.monotonic()
    best = last = None
    known = {}
    while running():
        try:
            snap, binaries = snapshot(a.pid, a.bench_pid, known)
        except (OSError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
            if not running():
                break
            res["error"] = str(e)
            time.sleep(a.interval)
            continue
        if not running():
            break  # taken while the agent was stopping
        snap["t"] = round(time.monotonic() - t0, 1)
        res["snapshots"].append({k: v for k, v in snap.items() if k != "others"})
        if snap["tables"] + snap["other_maps"] == 0:
            time.sleep(a.interval)  # maps not made yet, or closed at exit
            continue
        last = snap
        if best is None or (snap["table_bytes"], snap["other_bytes"]) >= (
                best["table_bytes"], best["other_bytes"]):
            best = snap
            res["binaries"] = binaries
        time.sleep(a.interval)
    res["max"], res["last"] = best, last
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    return 0 if last else 1


if __name__ == "__main__":
    sys.exit(main())
