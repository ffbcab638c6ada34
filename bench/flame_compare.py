#!/usr/bin/env python3
"""flame_compare.py - two /api/v1/flamegraph answers compared node by node
(by path from the root): typically `exact=true`'s (rows) against the
default's (call trees where blocks have them, docs/format.md §3.6).
Prints the node counts, the largest difference of a node present in both,
and the largest nodes only one of them shows.

Usage: flame_compare.py EXACT.json OTHER.json
"""
import json, sys
def flat(fn):
    d=json.load(open(fn)); out={}
    def walk(n,path):
        p=path+(n['name'],)
        out[p]=(n['total'],n['self'])
        for c in n.get('children',[]): walk(c,p)
    walk(d['tree'],())
    return d,out
a,A=flat(sys.argv[1]); b,B=flat(sys.argv[2])
err=b.get('call_tree_sections') and b.get('max_error') or b['stats'].get('max_error')
print("exact nodes",len(A),"summ nodes",len(B),"total",a['total'],b['total'],"max_error",err)
common=[p for p in A if p in B and p[-1]!='other']
md=max((abs(A[p][0]-B[p][0]),p) for p in common)
print("common",len(common),"max |dtotal|",md[0], "rel to total %.3g"%(md[0]/a['total']))
mds=max((abs(A[p][1]-B[p][1]),p) for p in common)
print("max |dself|",mds[0])
onlyA=[p for p in A if p not in B]; onlyB=[p for p in B if p not in A]
print("only exact",len(onlyA),"only summ",len(onlyB))
print("largest only-exact",sorted((A[p][0],p[-1]) for p in onlyA)[-3:])
print("largest only-summ",sorted((B[p][0],p[-1]) for p in onlyB)[-3:])
print("smallest shown exact", min(v[0] for v in A.values()))
