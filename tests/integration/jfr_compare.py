#!/usr/bin/env python3
"""jfr_compare.py JFR_JSON TOP_JSON EVENT PER_SAMPLE

Checks a Stoke conversion against the JDK's own reading of the same file.
JFR_JSON is `jfr print --json --events EVENT rec.jfr`; TOP_JSON is
pprof_top's answer for the converted profile's count sample type. Per top
frame ("pkg.Class.method": both sides name the class by its internal name,
java/util/HashMap, compared with dots),
the JDK's event count must equal Stoke's self value / PER_SAMPLE (the
nanoseconds one CPU sample is worth, or 1 for counts). Execution samples in
STATE_SLEEPING are left out, as Pyroscope leaves them out of CPU; events
without a stack trace are left out (they have no frame). Prints PASS/FAIL
lines for lib.sh's count_lines.
"""
import collections
import json
import sys


def main():
    jfr_json, top_json, event, per = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with open(jfr_json) as f:
        events = json.load(f)["recording"]["events"]
    want = collections.Counter()
    for e in events:
        if e["type"] != event:
            continue
        v = e["values"]
        state = v.get("state")
        if event == "jdk.ExecutionSample" and state == "STATE_SLEEPING":
            continue
        st = v.get("stackTrace")
        if not st or not st.get("frames"):
            continue
        m = st["frames"][0]["method"]
        want[(m["type"]["name"] + "." + m["name"]).replace("/", ".")] += 1
    with open(top_json) as f:
        top = json.load(f)
    got = collections.Counter()
    for name, v in top["self"].items():
        if v % per:
            print("FAIL %s: %s self %d is not a multiple of %d" % (event, name, v, per))
        got[name.replace("/", ".")] += v // per
    n = sum(want.values())
    if n == 0:
        print("FAIL %s: the JDK printed no events with a stack" % event)
        return
    bad = [k for k in set(want) | set(got) if want[k] != got[k]]
    for k in sorted(bad)[:10]:
        print("       %s: jfr print %d, stoke %d" % (k, want[k], got[k]))
    if bad:
        print("FAIL %s: %d of %d top frames differ (%d events)" % (event, len(bad), len(want), n))
    else:
        print("PASS %s: %d events, %d top frames, each count equal to jfr print's"
              % (event, n, len(want)))
    for k, c in want.most_common(3):
        print("       %s %d" % (k, c))


main()
