/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pprof reader: the input, gzip or raw, as a pprof message through
 * seg_pprof_check and seg_writer_add_pprof. The two must agree (what the
 * check rejects adds nothing, what it accepts or repairs is added), and
 * what was added must encode and decode, every line naming a function of
 * its section.
 */
#include <errno.h>
#include <stdlib.h>

#include "codec/segment.h"
#include "common/gzip.h"
#include "query/jobs/import.h"

static void check_written(struct seg_writer *w)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct seg_footer *f = NULL;
    if (seg_writer_finish(w, &buf, &len, &f))
        return; /* out of memory */
    for (size_t i = 0; i < f->nsections; i++) {
        const struct seg_section_info *in = &f->sections[i];
        struct seg_section *s = NULL;
        char err[256];
        if (in->offset > len || in->length > len - in->offset)
            abort();
        int r = seg_section_decode(buf + in->offset, in->length, in, &s, err, sizeof(err));
        if (r == -ENOMEM)
            continue;
        if (r)
            abort(); /* the writer wrote what its reader rejects */
        for (uint32_t l = 0; l < s->nlines; l++)
            if (s->lines[l].function >= s->nfunctions)
                abort();
        seg_section_free(s);
    }
    seg_footer_free(f);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *pb = NULL;
    size_t len = 0;
    if (gzip_decompress(data, size, IMPORT_MAX_BYTES, &pb, &len))
        return 0;
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, len, pb);
    free(pb);
    if (!p)
        return 0;
    char msg[256];
    int chk = seg_pprof_check(p, msg, sizeof(msg));
    struct seg_writer *w = seg_writer_new("t", "h");
    const struct seg_label labels[] = {{"service_name", "s"}, {"host_name", "h"}};
    int add = w ? seg_writer_add_pprof(w, "s", p, labels, 2, 1000) : -ENOMEM;
    if (chk != -ENOMEM && add != -ENOMEM && (chk < 0) != (add < 0))
        abort();
    if (add == 0)
        check_written(w);
    seg_writer_free(w);
    perftools__profiles__profile__free_unpacked(p, NULL);
    return 0;
}
