#!/usr/bin/env python3
"""otlp_check.py BODY OUTDIR — reads one gunzipped OTLP ExportProfilesServiceRequest
with its own protobuf wire decoder (nothing shared with Stoke's C code or
protobuf-c), checks every field number and wire type at every level against
the opentelemetry-proto v1.10 specification, checks the dictionary rules
(zero value at index 0, string_table[0] == "", indices in range), and
writes OUTDIR/<service.name>/<time_unix_nano>.totals per profile in
pprof_total's format (total samples = values / period; leaf = the first
line's function of a stack's first location). Prints a summary of the field
checks; exits 1 on any violation.
"""
import os, sys

VARINT, I64, LEN, I32 = 0, 1, 2, 5
# message -> field -> (allowed wire types, sub-message or None)
PACKED = (LEN, VARINT)
S = {
    'Request': {1: ((LEN,), 'ResourceProfiles'), 2: ((LEN,), 'Dictionary')},
    'Dictionary': {1: ((LEN,), 'Mapping'), 2: ((LEN,), 'Location'), 3: ((LEN,), 'Function'),
                   4: ((LEN,), 'Link'), 5: ((LEN,), None), 6: ((LEN,), 'KeyValueAndUnit'),
                   7: ((LEN,), 'Stack')},
    'ResourceProfiles': {1: ((LEN,), 'Resource'), 2: ((LEN,), 'ScopeProfiles'), 3: ((LEN,), None)},
    'Resource': {1: ((LEN,), 'KeyValue'), 2: ((VARINT,), None)},
    'KeyValue': {1: ((LEN,), None), 2: ((LEN,), 'AnyValue')},
    'AnyValue': {1: ((LEN,), None), 2: ((VARINT,), None), 3: ((VARINT,), None), 4: ((I64,), None),
                 5: ((LEN,), None), 6: ((LEN,), None), 7: ((LEN,), None)},
    'Scope': {1: ((LEN,), None), 2: ((LEN,), None), 3: ((LEN,), 'KeyValue'), 4: ((VARINT,), None)},
    'ScopeProfiles': {1: ((LEN,), 'Scope'), 2: ((LEN,), 'Profile'), 3: ((LEN,), None)},
    'Profile': {1: ((LEN,), 'ValueType'), 2: ((LEN,), 'Sample'), 3: ((I64,), None),
                4: ((VARINT,), None), 5: ((LEN,), 'ValueType'), 6: ((VARINT,), None),
                7: ((LEN,), None), 8: ((VARINT,), None), 9: ((LEN,), None), 10: ((LEN,), None),
                11: (PACKED, 'int')},
    'ValueType': {1: ((VARINT,), None), 2: ((VARINT,), None)},
    'Sample': {1: ((VARINT,), None), 2: (PACKED, 'int'), 3: ((VARINT,), None), 4: (PACKED, 'int'),
               5: ((LEN, I64), 'fixed64')},
    'Mapping': {1: ((VARINT,), None), 2: ((VARINT,), None), 3: ((VARINT,), None),
                4: ((VARINT,), None), 5: (PACKED, 'int')},
    'Stack': {1: (PACKED, 'int')},
    'Location': {1: ((VARINT,), None), 2: ((VARINT,), None), 3: ((LEN,), 'Line'), 4: (PACKED, 'int')},
    'Line': {1: ((VARINT,), None), 2: ((VARINT,), None), 3: ((VARINT,), None)},
    'Function': {1: ((VARINT,), None), 2: ((VARINT,), None), 3: ((VARINT,), None), 4: ((VARINT,), None)},
    'KeyValueAndUnit': {1: ((VARINT,), None), 2: ((LEN,), 'AnyValue'), 3: ((VARINT,), None)},
    'Link': {1: ((LEN,), None), 2: ((LEN,), None)},
}
errors = []
seen = {}  # (message, field, wire type) -> count


def varint(b, i):
    v = s = 0
    while True:
        if i >= len(b):
            raise ValueError('truncated varint')
        c = b[i]; i += 1
        v |= (c & 0x7f) << s; s += 7
        if not c & 0x80:
            return v, i


def signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def decode(b, msg):
    """-> {field: [value...]}; sub-messages decoded, packed ints expanded."""
    out, i = {}, 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == VARINT:
            v, i = varint(b, i)
        elif wt == I64:
            v = int.from_bytes(b[i:i + 8], 'little'); i += 8
        elif wt == I32:
            v = int.from_bytes(b[i:i + 4], 'little'); i += 4
        elif wt == LEN:
            n, i = varint(b, i)
            v = b[i:i + n]; i += n
            if len(v) != n:
                raise ValueError('truncated field')
        else:
            raise ValueError('%s: wire type %d' % (msg, wt))
        seen[(msg, f, wt)] = seen.get((msg, f, wt), 0) + 1
        spec = S[msg].get(f)
        if spec is None:
            errors.append('%s: field %d is not in the specification' % (msg, f)); continue
        wts, sub = spec
        if wt not in wts:
            errors.append('%s.%d: wire type %d, the specification says %s' % (msg, f, wt, wts)); continue
        vals = [v]
        if sub == 'int' and wt == LEN:
            vals, j = [], 0
            while j < len(v):
                x, j = varint(v, j); vals.append(signed(x))
        elif sub == 'fixed64' and wt == LEN:
            vals = [int.from_bytes(v[j:j + 8], 'little') for j in range(0, len(v), 8)]
        elif sub == 'int':
            vals = [signed(v)]
        elif sub:
            vals = [decode(v, sub)]
        elif wt == LEN and msg in ('Dictionary', 'KeyValue', 'AnyValue', 'Scope') and f in (1, 2, 5):
            vals = [v.decode('utf-8')] if not (msg == 'AnyValue' and f != 1) else [v]
        out.setdefault(f, []).extend(vals)
    return out


def one(m, f, d=0):
    return m.get(f, [d])[-1]


def main():
    body = open(sys.argv[1], 'rb').read()
    outdir = sys.argv[2]
    req = decode(body, 'Request')
    d = one(req, 2, {})
    st = d.get(5, [])
    if not st or st[0] != '':
        errors.append('string_table[0] is not ""')
    for f, name in ((1, 'mapping'), (2, 'location'), (3, 'function'), (4, 'link'), (6, 'attribute'), (7, 'stack')):
        if not d.get(f) or d[f][0] != {}:
            errors.append('%s_table[0] is not the zero value' % name)
    maps, locs, funcs, stacks = d.get(1, []), d.get(2, []), d.get(3, []), d.get(7, [])
    attrs = d.get(6, [])

    def s(i):
        if not 0 <= i < len(st):
            errors.append('string index %d out of range' % i); return ''
        return st[i]

    def leaf(stack):
        li = one(stack, 1, None) if False else stack.get(1, [])
        if not li:
            return '[unknown]'
        loc = locs[li[0]]
        lines = loc.get(3, [])
        if not lines:
            m = maps[one(loc, 1)]
            return '%s+0x%x' % (os.path.basename(s(one(m, 4))), one(loc, 2))
        name = s(one(funcs[one(lines[0], 1)], 1))
        return ''.join('_' if c == ';' or ord(c) < 0x20 else c for c in name)

    nprof = 0
    for rp in req.get(1, []):
        res = {}
        for kv in one(rp, 1, {}).get(1, []):
            av = one(kv, 2, {})
            res[one(kv, 1, '')] = av.get(1, av.get(3, [None]))[-1]
        svc = res.get('service.name')
        if not svc:
            errors.append('a ResourceProfiles without service.name')
            continue
        for sp in rp.get(2, []):
            for p in sp.get(2, []):
                nprof += 1
                vt, pt = one(p, 1, {}), one(p, 5, {})
                if (s(one(vt, 1)), s(one(vt, 2))) != ('cpu', 'nanoseconds'):
                    errors.append('sample_type is not cpu/nanoseconds')
                if (s(one(pt, 1)), s(one(pt, 2))) != ('cpu', 'nanoseconds'):
                    errors.append('period_type is not cpu/nanoseconds')
                period = one(p, 6)
                if period <= 0:
                    errors.append('period %d' % period); continue
                total, leaves = 0, {}
                for smp in p.get(2, []):
                    si = one(smp, 1)
                    if not 0 <= si < len(stacks):
                        errors.append('stack_index out of range'); continue
                    for ai in smp.get(2, []):
                        if not 0 < ai < len(attrs):
                            errors.append('attribute index out of range')
                    ns = sum(smp.get(4, []))
                    if ns % period:
                        errors.append('value %d is not a multiple of the period' % ns)
                    n = ns // period
                    total += n
                    name = leaf(stacks[si])
                    leaves[name] = leaves.get(name, 0) + n
                safe = ''.join(c if c.isalnum() or c in '-_.' else '_' for c in svc)
                os.makedirs(os.path.join(outdir, safe), exist_ok=True)
                with open(os.path.join(outdir, safe, '%d.totals' % one(p, 3)), 'w') as f:
                    f.write('total %d\n' % total)
                    for k in sorted(leaves):
                        if leaves[k]:
                            f.write('leaf %d\t%s\n' % (leaves[k], k))
                with open(os.path.join(outdir, safe, '%d.resource' % one(p, 3)), 'w') as f:
                    for k in sorted(res):
                        f.write('%s=%s\n' % (k, res[k]))
    print('otlp_check: %d profiles, %d distinct (message, field, wire type) seen: %s' % (
        nprof, len(seen), ' '.join('%s.%d/%d' % k for k in sorted(seen))))
    for e in sorted(set(errors)):
        print('otlp_check: ' + e)
    sys.exit(1 if errors or nprof == 0 else 0)


main()
