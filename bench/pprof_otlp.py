#!/usr/bin/python3
"""pprof_otlp.py PPROF_FDS OTLP_FDS PPROF SERVICE OUT — a pprof file (gzip or
not) as one OTLP ExportProfilesServiceRequest (opentelemetry-proto
v1development), one Profile per sample type, for bench/receive.sh: the
same profile pushed to /ingest and to /v1development/profiles.

PPROF_FDS and OTLP_FDS are `protoc --include_imports --descriptor_set_out`
of pprof's profile.proto and proto/otlp/profiles_service.proto. Runs under
Debian's /usr/bin/python3 (python3-protobuf).
"""
import gzip
import sys

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def classes(fds_path, *names):
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(fds_path, 'rb').read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    fac = message_factory.MessageFactory(pool)
    return [fac.GetPrototype(pool.FindMessageTypeByName(n)) for n in names]


def main():
    pfds, ofds, path, service, out = sys.argv[1:6]
    Profile, = classes(pfds, 'perftools.profiles.Profile')
    Req, = classes(ofds, 'opentelemetry.proto.collector.profiles.v1development.ExportProfilesServiceRequest')
    data = open(path, 'rb').read()
    if data[:2] == b'\x1f\x8b':
        data = gzip.decompress(data)
    p = Profile.FromString(data)
    req = Req()
    d = req.dictionary
    d.string_table.extend(p.string_table)
    d.mapping_table.add()
    d.function_table.add()
    d.location_table.add()
    d.stack_table.add()
    mi = {}
    for m in p.mapping:
        mi[m.id] = len(d.mapping_table)
        d.mapping_table.add(memory_start=m.memory_start, memory_limit=m.memory_limit,
                                 file_offset=m.file_offset, filename_strindex=m.filename)
    fi = {}
    for f in p.function:
        fi[f.id] = len(d.function_table)
        d.function_table.add(name_strindex=f.name, system_name_strindex=f.system_name,
                             filename_strindex=f.filename, start_line=f.start_line)
    li = {}
    for l in p.location:
        li[l.id] = len(d.location_table)
        ol = d.location_table.add(mapping_index=mi.get(l.mapping_id, 0), address=l.address)
        for ln in l.line:
            ol.lines.add(function_index=fi[ln.function_id], line=ln.line)
    stacks = {}
    rp = req.resource_profiles.add()
    kv = rp.resource.attributes.add(key='service.name')
    kv.value.string_value = service
    sp = rp.scope_profiles.add()
    for t, st in enumerate(p.sample_type):
        op = sp.profiles.add(time_unix_nano=p.time_nanos, duration_nano=p.duration_nanos,
                             period=p.period)
        op.sample_type.type_strindex, op.sample_type.unit_strindex = st.type, st.unit
        op.period_type.type_strindex = p.period_type.type
        op.period_type.unit_strindex = p.period_type.unit
        for s in p.sample:
            key = tuple(s.location_id)
            if key not in stacks:
                stacks[key] = len(d.stack_table)
                d.stack_table.add(location_indices=[li[x] for x in key])
            op.samples.add(stack_index=stacks[key], values=[s.value[t]])
    open(out, 'wb').write(req.SerializeToString())


main()
