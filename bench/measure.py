#!/usr/bin/env python3
"""measure.py - run one profiler for a fixed sampling time and measure it.

Usage: measure.py --json OUT --seconds D [--stdout F] [--stderr F]
                  [--ready-timeout S] [--warmup S] [--pid-file F] -- COMMAND...

Starts COMMAND, waits until it has a perf_event file descriptor open (every
profiler here samples through perf events: that is the moment sampling
starts, after bcc's compile or the agent's BPF load), lets it sample for D
seconds (--pid-file: COMMAND's pid is written there when it starts, for a
tool that watches it, and the file is removed just before the SIGINT, so
that the watcher does not sample the exit), then sends SIGINT (all four tools stop and write their output on
SIGINT) and waits for it to exit. Writes OUT (JSON):

  cpu_s          user+sys CPU-seconds of COMMAND and all its threads and
                 reaped children, start to exit (getrusage RUSAGE_CHILDREN of
                 this wrapper, whose only child is COMMAND)
  steady_cpu_s, steady_wall_s
                 CPU (threads' /proc/PID/task/*/schedstat run time, ns, plus
                 cutime+cstime from /proc/PID/stat) between
                 ready+warmup and the SIGINT: the steady state, without
                 start-up (compile, BPF load) and exit work (printing maps)
  startup_s      start to ready; sampling_s ready to SIGINT; exit_s SIGINT to exit
  peak_rss_kb    max of polled VmHWM and ru_maxrss
  steady_rss_kb  median of VmRSS polled (every 0.5 s) from ready+warmup to the
                 SIGINT; steady_rss_max_kb their maximum
  sampling_peak_rss_kb  VmHWM just before the SIGINT (without exit work)
  host_forks_per_s  processes created on the host per second while sampling
                 (the "processes" counter of /proc/stat)
  exit_code

Python 3 standard library only.
"""
import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def has_perf_event(pid):
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:[perf_event]":
                    return True
            except OSError:
                pass
    except OSError:
        pass
    return False


def proc_cpu(pid):
    """CPU seconds of pid: the sum of its threads' schedstat run time (ns
    precision; utime/stime in /proc/PID/stat are 10 ms ticks, too coarse for
    perf's steady state), plus cutime+cstime of reaped children; falls back
    to utime+stime+cutime+cstime."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        ns = 0
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                ns += int(f.read().split()[0])
        return ns / 1e9 + sum(int(x) for x in fields[13:15]) / CLK_TCK
    except (OSError, ValueError, IndexError):
        pass
    return proc_cpu_ticks(pid)


def proc_cpu_ticks(pid):
    """utime+stime+cutime+cstime of pid in seconds, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    # fields[0] is field 3 (state): utime..cstime are fields 14..17.
    return sum(int(x) for x in fields[11:15]) / CLK_TCK


def vm_kb(pid, field="VmHWM"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def host_forks():
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("processes "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--stdout", default=os.devnull)
    ap.add_argument("--stderr", default=os.devnull)
    ap.add_argument("--ready-timeout", type=float, default=180)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--pid-file")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")

    res = {"command": cmd}
    t0 = time.monotonic()
    with open(a.stdout, "wb") as out, open(a.stderr, "wb") as err:
        # A background job of a non-interactive shell inherits SIGINT
        # ignored; Python (bcc) then installs no KeyboardInterrupt handler.
        p = subprocess.Popen(cmd, stdout=out, stderr=err, preexec_fn=lambda: (
            signal.signal(signal.SIGINT, signal.SIG_DFL),
            signal.signal(signal.SIGQUIT, signal.SIG_DFL)))

    if a.pid_file:
        with open(a.pid_file + ".tmp", "w") as f:
            f.write("%d\n" % p.pid)
        os.rename(a.pid_file + ".tmp", a.pid_file)

    def stop(*_):
        p.kill()
        sys.exit(1)

    signal.signal(signal.SIGTERM, stop)
    hwm = 0
    ready = None
    while p.poll() is None and time.monotonic() - t0 < a.ready_timeout:
        if has_perf_event(p.pid):
            ready = time.monotonic()
            break
        time.sleep(0.05)
    if ready is None:
        res["error"] = ("exited %s before sampling" % p.returncode if p.poll() is not None
                        else "no perf event after %.0f s" % a.ready_timeout)
        if p.poll() is None:
            p.kill()
            p.wait()
    else:
        res["startup_s"] = round(ready - t0, 3)
        end = ready + a.seconds
        cpu_a = t_a = None
        rss = []
        forks_a = host_forks()
        while p.poll() is None and time.monotonic() < end:
            hwm = max(hwm, vm_kb(p.pid))
            if cpu_a is None and time.monotonic() >= ready + a.warmup:
                cpu_a, t_a = proc_cpu(p.pid), time.monotonic()
            if cpu_a is not None:
                rss.append(vm_kb(p.pid, "VmRSS"))
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
        cpu_b, t_b = proc_cpu(p.pid), time.monotonic()
        forks_b = host_forks()
        hwm = max(hwm, vm_kb(p.pid))
        res["sampling_peak_rss_kb"] = hwm
        rss = sorted(x for x in rss if x)
        if rss:
            res["steady_rss_kb"] = rss[len(rss) // 2]
            res["steady_rss_max_kb"] = rss[-1]
        if cpu_a is not None and cpu_b is not None:
            res["steady_cpu_s"] = round(cpu_b - cpu_a, 3)
            res["steady_wall_s"] = round(t_b - t_a, 3)
        res["sampling_s"] = round(t_b - ready, 3)
        if forks_a is not None and forks_b is not None and t_b > ready:
            res["host_forks_per_s"] = round((forks_b - forks_a) / (t_b - ready), 1)
        if a.pid_file:
            try:
                os.unlink(a.pid_file)
            except OSError:
                pass
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        while p.poll() is None:
            hwm = max(hwm, vm_kb(p.pid))
            if time.monotonic() - t_b > 120:
                p.kill()
                res["error"] = "killed: no exit 120 s after SIGINT"
            time.sleep(0.05)
        res["exit_s"] = round(time.monotonic() - t_b, 3)
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu_s"] = round(r.ru_utime + r.ru_stime, 3)
    res["peak_rss_kb"] = max(hwm, r.ru_maxrss)
    res["exit_code"] = p.returncode
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    return 0 if "error" not in res else 1


if __name__ == "__main__":
    sys.exit(main())
