#!/usr/bin/env python3
"""cost_model.py - the monthly object-store bill of a Stoke fleet from the
measured inputs bench/cost.sh writes, next to Pyroscope 2.0's write shape
(docs/storage.md, "What a month costs").

Usage: cost_model.py COST.json [--md]

Prices: S3 Standard, us-east-1, as listed on 2026-12-06: PUT/COPY/POST/LIST
$0.005 per 1,000, GET $0.0004 per 1,000, storage $0.023 per GB-month (first
50 TB), DELETE free. A month is 730 hours.

Stoke, per host: one PUT per flush (one object per flush); compaction once
an hour reads what the hour holds (its GETs measured per host-hour: one
per object, the segment read whole) and writes blocks and
manifests (PUTs per block: the measured fleet's, plus one per 256 MB kept);
LISTs: one per 1,000 keys of the hour; storage: what compaction keeps, per
retained month. Queries are not billed here (a query's GETs are
in BENCHMARKS.md, "The open hour at 10,000 hosts").

Pyroscope 2.0: agents push to distributors (no object-store request);
segment writers write one object per shard every 0.5 s
(segment-writer's default segment duration) and record it in the Raft
metastore (no object-store request); compaction workers read each segment
once and write L1 blocks. Assumed: one shard per 2 MB/s of the fleet's
profile bytes (as measured for Stoke's per-host uploads), at least 2 (the
minimum of segment writers the deployment docs name), every shard busy
every 0.5 s; compaction: 1 GET per segment plus 1 PUT per 100 segments;
storage: the same bytes as Stoke's compacted blocks. Not counted for
either: compute (Pyroscope's distributors, segment writers and 3-5
metastore nodes; Stoke's agents already run), data transfer, queries.
"""
import json
import math
import sys

PUT, GET, LIST, GB_MONTH = 0.005 / 1000, 0.0004 / 1000, 0.005 / 1000, 0.023
HOURS = 730
FLEETS = (1000, 10000, 100000)
SHARD_BYTES_S = 2e6


def stoke(r, hosts):
    hh = hosts * HOURS
    puts = hh * r["objects_per_host_hour"]
    cget = hh * r["compact_get_per_host_hour"]
    # compaction's PUTs are per block, not per host: the measured fleet's
    # blocks, and one more per 256 MB kept
    cput = HOURS * (r["compact_put_per_host_hour"] * r["hosts"] +
                    hosts * r["kept_bytes_per_host_hour"] / 256e6)
    # a LIST page holds 1,000 keys: the hour's listing grows with its objects
    clist = HOURS * max(r["compact_list_per_hour"], hosts * r["objects_per_host_hour"] / 1000)
    store = hh * r["kept_bytes_per_host_hour"] / 1e9
    return {"put": puts * PUT, "compaction": cget * GET + cput * PUT + clist * LIST,
            "storage": store * GB_MONTH, "puts_per_s": puts / HOURS / 3600}


def pyroscope(r, hosts):
    bps = hosts * r["bytes_per_host_hour"] / 3600
    shards = max(2, math.ceil(bps / SHARD_BYTES_S))
    segs = shards * 2 * HOURS * 3600
    store = hosts * HOURS * r["kept_bytes_per_host_hour"] / 1e9
    return {"put": segs * PUT, "compaction": segs * GET + segs / 100 * PUT,
            "storage": store * GB_MONTH, "puts_per_s": shards * 2, "shards": shards}


def money(x):
    return "$%s" % format(round(x), ",") if x >= 10 else "$%.2f" % x


def main():
    rows = json.load(open(sys.argv[1]))
    print("| shape | flush | bytes/host-hour | hosts | PUT/s | PUTs | compaction (measured) "
          "| storage (per retained month) | total |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        for n in FLEETS:
            c = stoke(r, n)
            tot = c["put"] + c["compaction"] + c["storage"]
            print("| Stoke, %s | %d s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["shape"], r["flush_s"], format(round(r["bytes_per_host_hour"]), ","), format(n, ","),
                format(round(c["puts_per_s"]), ","), money(c["put"]), money(c["compaction"]),
                money(c["storage"]), money(tot)))
    for shape in ("busy", "light"):
        r = next(x for x in rows if x["shape"] == shape and x["flush_s"] == 60)
        for n in FLEETS:
            c = pyroscope(r, n)
            tot = c["put"] + c["compaction"] + c["storage"]
            print("| Pyroscope 2.0, %s (%d shards) | 0.5 s | %s | %s | %s | %s | %s | %s | %s |" % (
                shape, c["shards"], format(round(r["bytes_per_host_hour"]), ","), format(n, ","),
                format(round(c["puts_per_s"]), ","), money(c["put"]), money(c["compaction"]),
                money(c["storage"]), money(tot)))


if __name__ == "__main__":
    main()
