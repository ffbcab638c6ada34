/* SPDX-License-Identifier: Apache-2.0 */
#include "exporter/profile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/file.h"
#include "common/gzip.h"
#include "common/intern.h"
#include "profile.pb-c.h"

/* Kernel addresses sit near the top of the address space; a limit of all-ones
 * keeps every Location.address inside its mapping with memory_start = 0, and
 * pprof's mapping merge (m1.Limit == m2.Start) never fires on it. */
#define MAPPING_LIMIT UINT64_MAX

struct pmapping {
    uint32_t file;     /* string id */
    uint32_t build_id; /* string id */
    uint8_t has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct plocation {
    uint32_t mapping; /* index into maps */
    uint32_t line_off;
    uint32_t nlines;
    uint64_t address;
};

struct pline {
    uint32_t function; /* index into funcs */
    uint32_t line;
};

struct profile {
    uint64_t start_ns, duration_ns, period_ns;
    uint64_t total;

    struct intern str;
    /* the well-known strings, interned up front so encoding never mutates */
    uint32_t s_samples, s_count, s_cpu, s_nanoseconds, s_comment;

    struct intern mapkey; /* [0, build_id] or [1, path] -> mapping index */
    struct pmapping *maps;
    size_t nmaps, maps_cap;

    struct intern funcs; /* [name, file] -> function index */

    struct intern lockey;  /* position or [mapping, addr lo, addr hi] -> location */
    struct intern addrkey; /* [mapping, addr lo, addr hi] -> addr_loc index */
    uint32_t *addr_loc;    /* location id (1-based) of each address seen */
    size_t naddr, addr_loc_cap;
    struct plocation *locs;
    size_t nlocs, locs_cap;
    struct pline *lines;
    size_t nlines, lines_cap;

    struct intern stacks;  /* pprof location ids, leaf first */
    struct intern lsets;   /* [name, value]... string ids */
    struct intern samples; /* [stack, lset] -> sample index */
    uint64_t *counts;
    size_t nsamples, counts_cap;

    uint32_t *scratch; /* label pairs being interned */
    size_t scratch_cap;
};

static int reserve(void **buf, size_t *cap, size_t need, size_t elem)
{
    size_t ncap;
    void *nb;

    if (need <= *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 64;
    if (ncap < need)
        ncap = need;
    if (ncap > SIZE_MAX / elem)
        return -ENOMEM;
    nb = realloc(*buf, ncap * elem);
    if (!nb)
        return -ENOMEM;
    *buf = nb;
    *cap = ncap;
    return 0;
}

struct profile *profile_new(const char *service_name, uint64_t start_ns, uint64_t duration_ns,
                            uint64_t period_ns)
{
    struct profile *p = calloc(1, sizeof(*p));
    char comment[512];

    if (!p)
        return NULL;
    p->start_ns = start_ns;
    p->duration_ns = duration_ns;
    p->period_ns = period_ns;
    if (intern_str(&p->str, "") != 0) /* pprof's string_table[0] */
        goto fail;
    snprintf(comment, sizeof(comment), "service_name=%s", service_name ? service_name : "");
    p->s_samples = intern_str(&p->str, "samples");
    p->s_count = intern_str(&p->str, "count");
    p->s_cpu = intern_str(&p->str, "cpu");
    p->s_nanoseconds = intern_str(&p->str, "nanoseconds");
    p->s_comment = intern_str(&p->str, comment);
    if (p->s_samples == INTERN_NONE || p->s_count == INTERN_NONE || p->s_cpu == INTERN_NONE ||
        p->s_nanoseconds == INTERN_NONE || p->s_comment == INTERN_NONE)
        goto fail;
    return p;
fail:
    profile_free(p);
    return NULL;
}

void profile_free(struct profile *p)
{
    if (!p)
        return;
    intern_free(&p->str);
    intern_free(&p->mapkey);
    intern_free(&p->funcs);
    intern_free(&p->lockey);
    intern_free(&p->addrkey);
    free(p->addr_loc);
    intern_free(&p->stacks);
    intern_free(&p->lsets);
    intern_free(&p->samples);
    free(p->maps);
    free(p->locs);
    free(p->lines);
    free(p->counts);
    free(p->scratch);
    free(p);
}

static uint32_t intern_mapping(struct profile *p, const struct sym_result *r)
{
    uint32_t key[2], id, file, build_id;

    file = intern_str(&p->str, r->mapping ? r->mapping : "");
    build_id = intern_str(&p->str, r->build_id ? r->build_id : "");
    if (file == INTERN_NONE || build_id == INTERN_NONE)
        return INTERN_NONE;
    /* reserved before interning, so a key never exists without its entry */
    if (reserve((void **)&p->maps, &p->maps_cap, p->mapkey.n + 1, sizeof(*p->maps)) < 0)
        return INTERN_NONE;
    /* keyed by build-id when there is one, so the same library mapped from
     * different paths (containers) is one mapping, as the header promises */
    key[0] = build_id ? 0 : 1;
    key[1] = build_id ? build_id : file;
    id = intern_seq(&p->mapkey, key, 2);
    if (id == INTERN_NONE)
        return INTERN_NONE;
    if (id == p->nmaps) {
        p->maps[id] = (struct pmapping){.file = file, .build_id = build_id};
        p->nmaps++;
    }
    return id;
}

/* Interns the frames of @r as lines; false on allocation failure (nothing
 * is then appended, and the location stays unresolved rather than partial). */
static bool intern_lines(struct profile *p, const struct sym_result *r, uint32_t nframes)
{
    uint32_t i;

    if (reserve((void **)&p->lines, &p->lines_cap, p->nlines + nframes, sizeof(*p->lines)) < 0)
        return false;
    for (i = 0; i < nframes; i++) {
        const struct sym_frame *f = &r->frames[i];
        uint32_t fk[2], fn;

        fk[0] = intern_str(&p->str, f->function ? f->function : "");
        fk[1] = intern_str(&p->str, f->file);
        if (fk[0] == INTERN_NONE || fk[1] == INTERN_NONE)
            return false;
        fn = intern_seq(&p->funcs, fk, 2);
        if (fn == INTERN_NONE)
            return false;
        p->lines[p->nlines + i] = (struct pline){.function = fn, .line = f->line};
    }
    return true;
}

static uint32_t new_location(struct profile *p, const struct sym_result *r, uint32_t mapping);

/* Every row repeats the addresses of earlier rows: an address seen before is
 * answered from addrkey without interning its frames again. */
uint32_t profile_location(struct profile *p, const struct sym_result *r)
{
    uint32_t mapping, akey[3], aid, loc;

    if (!r)
        return 0;
    mapping = intern_mapping(p, r);
    if (mapping == INTERN_NONE)
        return 0;
    if (reserve((void **)&p->addr_loc, &p->addr_loc_cap, p->addrkey.n + 1, sizeof(*p->addr_loc)) <
        0)
        return 0;
    akey[0] = mapping;
    akey[1] = (uint32_t)r->file_offset;
    akey[2] = (uint32_t)(r->file_offset >> 32);
    aid = intern_seq(&p->addrkey, akey, 3);
    if (aid == INTERN_NONE)
        return 0;
    if (aid == p->naddr)
        p->addr_loc[p->naddr++] = 0;
    else if (p->addr_loc[aid])
        return p->addr_loc[aid];       /* first answer wins: same code, same frames */
    loc = new_location(p, r, mapping); /* 0 (out of memory): tried again next time */
    p->addr_loc[aid] = loc;
    return loc;
}

static uint32_t new_location(struct profile *p, const struct sym_result *r, uint32_t mapping)
{
    uint32_t key[2 + 2 * SYM_MAX_FRAMES], id, i, nframes, nkey;
    struct pmapping *m;
    struct plocation *l;

    if (reserve((void **)&p->locs, &p->locs_cap, p->lockey.n + 1, sizeof(*p->locs)) < 0)
        return 0;
    nframes = r->nframes > SYM_MAX_FRAMES ? SYM_MAX_FRAMES : r->nframes;
    /*
     * A resolved frame is a source position, not an address: every address
     * of one line of one function (with the same inline chain) is the same
     * location, as in perf's and Pyroscope's views. Stacks that differed
     * only in addresses then merge, which is most of what a dictionary
     * costs for kernel frames. Unresolved frames keep their file offset so
     * they can be symbolized later. The frames are interned (appended
     * after p->nlines, not yet counted) to build the key.
     */
    if (nframes && intern_lines(p, r, nframes)) {
        key[0] = mapping;
        key[1] = UINT32_MAX; /* keys of 2 + 2n words; offset keys have 3 */
        for (i = 0; i < nframes; i++) {
            key[2 + 2 * i] = p->lines[p->nlines + i].function;
            key[3 + 2 * i] = p->lines[p->nlines + i].line;
        }
        nkey = 2 + 2 * nframes;
    } else {
        nframes = 0;
        key[0] = mapping;
        key[1] = (uint32_t)r->file_offset;
        key[2] = (uint32_t)(r->file_offset >> 32);
        nkey = 3;
    }
    id = intern_seq(&p->lockey, key, nkey);
    if (id == INTERN_NONE)
        return 0;
    if (id < p->nlocs)
        return id + 1;

    l = &p->locs[id];
    *l = (struct plocation){.mapping = mapping,
                            .address = nframes ? 0 : r->file_offset,
                            .line_off = (uint32_t)p->nlines,
                            .nlines = nframes};
    p->nlocs++;
    if (!nframes)
        return id + 1;
    p->nlines += nframes;

    m = &p->maps[mapping];
    m->has_functions = 1;
    if (nframes > 1)
        m->has_inline_frames = 1;
    for (i = 0; i < nframes; i++) {
        if (r->frames[i].file && r->frames[i].file[0])
            m->has_filenames = 1;
        if (r->frames[i].line)
            m->has_line_numbers = 1;
    }
    return id + 1;
}

int profile_add(struct profile *p, const uint32_t *locs, size_t nlocs,
                const struct label_set *labels, uint64_t count)
{
    uint32_t stack, lset, key[2], id;
    size_t i, n = labels ? labels->n : 0;

    if (count == 0)
        return 0; /* a zero row would be noise in pprof and absent in folded */
    for (i = 0; i < nlocs; i++)
        if (locs[i] == 0 || locs[i] > p->nlocs)
            return -EINVAL;
    stack = intern_seq(&p->stacks, locs, nlocs);
    if (stack == INTERN_NONE)
        return -ENOMEM;
    if (n > SIZE_MAX / 8 ||
        reserve((void **)&p->scratch, &p->scratch_cap, 2 * n, sizeof(*p->scratch)) < 0)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        p->scratch[2 * i] = intern_str(&p->str, labels->v[i].name);
        p->scratch[2 * i + 1] = intern_str(&p->str, labels->v[i].value);
        if (p->scratch[2 * i] == INTERN_NONE || p->scratch[2 * i + 1] == INTERN_NONE)
            return -ENOMEM;
    }
    lset = intern_seq(&p->lsets, p->scratch, 2 * n);
    if (lset == INTERN_NONE)
        return -ENOMEM;
    if (reserve((void **)&p->counts, &p->counts_cap, p->samples.n + 1, sizeof(*p->counts)) < 0)
        return -ENOMEM;
    key[0] = stack;
    key[1] = lset;
    id = intern_seq(&p->samples, key, 2);
    if (id == INTERN_NONE)
        return -ENOMEM;
    if (id == p->nsamples)
        p->counts[p->nsamples++] = count;
    else
        p->counts[id] += count;
    p->total += count;
    return 0;
}

uint64_t profile_total_samples(const struct profile *p)
{
    return p->total;
}

size_t profile_nsamples(const struct profile *p)
{
    return p->nsamples;
}

int profile_common_labels(const struct profile *p, struct label_set *out)
{
    const uint32_t *first = NULL;
    size_t nfirst = 0, i, j, k;
    bool *keep = NULL;

    if (p->nsamples == 0)
        return 0;
    for (i = 0; i < p->nsamples; i++) {
        size_t n, nl;
        const uint32_t *key = intern_seq_get(&p->samples, (uint32_t)i, &n);
        const uint32_t *ls = intern_seq_get(&p->lsets, key[1], &nl);

        if (i == 0) {
            first = ls;
            nfirst = nl / 2;
            keep = calloc(nfirst ? nfirst : 1, sizeof(*keep));
            if (!keep)
                return -ENOMEM;
            for (j = 0; j < nfirst; j++)
                keep[j] = true;
            continue;
        }
        /* interned ids: equal strings are equal ids, and intern_seq_get on
         * lsets stays valid since nothing is interned here */
        for (j = 0; j < nfirst; j++) {
            bool found = false;
            for (k = 0; k + 1 < nl && keep[j]; k += 2)
                if (ls[k] == first[2 * j] && ls[k + 1] == first[2 * j + 1])
                    found = true;
            if (!found)
                keep[j] = false;
        }
    }
    for (j = 0; j < nfirst; j++) {
        if (keep[j] && label_set_put(out, intern_str_get(&p->str, first[2 * j]),
                                     intern_str_get(&p->str, first[2 * j + 1])) != 0) {
            free(keep);
            return -ENOMEM;
        }
    }
    free(keep);
    return 0;
}

void profile_times(const struct profile *p, uint64_t *start_ns, uint64_t *duration_ns,
                   uint64_t *period_ns)
{
    *start_ns = p->start_ns;
    *duration_ns = p->duration_ns;
    *period_ns = p->period_ns;
}

/* ---- pprof -------------------------------------------------------------- */

/* Every message lives in a handful of flat arrays: one allocation per kind,
 * not per message, and one free. */
struct pprof_arrays {
    Perftools__Profiles__ValueType vt[3], *vtp[2];
    Perftools__Profiles__Mapping *maps, **mapsp;
    Perftools__Profiles__Function *funcs, **funcsp;
    Perftools__Profiles__Location *locs, **locsp;
    Perftools__Profiles__Line *lines, **linesp;
    Perftools__Profiles__Sample *samples, **samplesp;
    Perftools__Profiles__Label *labels, **labelsp;
    uint64_t *locids;
    int64_t *values;
    char **strings;
    int64_t comment[1];
};

static void pprof_arrays_free(struct pprof_arrays *a)
{
    free(a->maps);
    free(a->mapsp);
    free(a->funcs);
    free(a->funcsp);
    free(a->locs);
    free(a->locsp);
    free(a->lines);
    free(a->linesp);
    free(a->samples);
    free(a->samplesp);
    free(a->labels);
    free(a->labelsp);
    free(a->locids);
    free(a->values);
    free(a->strings);
}

/* calloc that is also fine with n == 0 (returns a non-NULL pointer). */
static void *xcalloc(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}

static int pprof_build(const struct profile *p, Perftools__Profiles__Profile *out,
                       struct pprof_arrays *a)
{
    Perftools__Profiles__Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
    size_t nfuncs = p->funcs.n, nlocids = 0, nlabels = 0, i, j;
    size_t li = 0, lbi = 0;

    for (i = 0; i < p->nsamples; i++) {
        size_t n;
        const uint32_t *k = intern_seq_get(&p->samples, (uint32_t)i, &n);
        size_t ns, nl;
        intern_seq_get(&p->stacks, k[0], &ns);
        intern_seq_get(&p->lsets, k[1], &nl);
        nlocids += ns;
        nlabels += nl / 2;
    }

    memset(a, 0, sizeof(*a));
    a->maps = xcalloc(p->nmaps, sizeof(*a->maps));
    a->mapsp = xcalloc(p->nmaps, sizeof(*a->mapsp));
    a->funcs = xcalloc(nfuncs, sizeof(*a->funcs));
    a->funcsp = xcalloc(nfuncs, sizeof(*a->funcsp));
    a->locs = xcalloc(p->nlocs, sizeof(*a->locs));
    a->locsp = xcalloc(p->nlocs, sizeof(*a->locsp));
    a->lines = xcalloc(p->nlines, sizeof(*a->lines));
    a->linesp = xcalloc(p->nlines, sizeof(*a->linesp));
    a->samples = xcalloc(p->nsamples, sizeof(*a->samples));
    a->samplesp = xcalloc(p->nsamples, sizeof(*a->samplesp));
    a->labels = xcalloc(nlabels, sizeof(*a->labels));
    a->labelsp = xcalloc(nlabels, sizeof(*a->labelsp));
    a->locids = xcalloc(nlocids, sizeof(*a->locids));
    a->values = xcalloc(2 * p->nsamples, sizeof(*a->values));
    a->strings = xcalloc(p->str.n, sizeof(*a->strings));
    if (!a->maps || !a->mapsp || !a->funcs || !a->funcsp || !a->locs || !a->locsp || !a->lines ||
        !a->linesp || !a->samples || !a->samplesp || !a->labels || !a->labelsp || !a->locids ||
        !a->values || !a->strings) {
        pprof_arrays_free(a);
        return -ENOMEM;
    }

    for (i = 0; i < p->str.n; i++)
        a->strings[i] = (char *)intern_str_get(&p->str, (uint32_t)i);

    for (i = 0; i < 3; i++)
        perftools__profiles__value_type__init(&a->vt[i]);
    a->vt[0].type = p->s_samples;
    a->vt[0].unit = p->s_count;
    a->vt[1].type = p->s_cpu;
    a->vt[1].unit = p->s_nanoseconds;
    a->vt[2] = a->vt[1]; /* period_type */
    a->vtp[0] = &a->vt[0];
    a->vtp[1] = &a->vt[1];

    for (i = 0; i < p->nmaps; i++) {
        Perftools__Profiles__Mapping *m = &a->maps[i];
        const struct pmapping *pm = &p->maps[i];

        perftools__profiles__mapping__init(m);
        m->id = i + 1;
        m->memory_start = 0;
        m->memory_limit = MAPPING_LIMIT;
        m->file_offset = 0;
        m->filename = pm->file;
        m->build_id = pm->build_id;
        m->has_functions = pm->has_functions;
        m->has_filenames = pm->has_filenames;
        m->has_line_numbers = pm->has_line_numbers;
        m->has_inline_frames = pm->has_inline_frames;
        a->mapsp[i] = m;
    }

    for (i = 0; i < nfuncs; i++) {
        Perftools__Profiles__Function *f = &a->funcs[i];
        size_t n;
        const uint32_t *k = intern_seq_get(&p->funcs, (uint32_t)i, &n);

        perftools__profiles__function__init(f);
        f->id = i + 1;
        f->name = k[0];
        f->system_name = k[0]; /* the symbolizer hands us demangled names only */
        f->filename = k[1];
        a->funcsp[i] = f;
    }

    for (i = 0; i < p->nlocs; i++) {
        Perftools__Profiles__Location *l = &a->locs[i];
        const struct plocation *pl = &p->locs[i];

        perftools__profiles__location__init(l);
        l->id = i + 1;
        l->mapping_id = pl->mapping + 1;
        l->address = pl->address;
        l->n_line = pl->nlines;
        l->line = &a->linesp[li];
        for (j = 0; j < pl->nlines; j++, li++) {
            const struct pline *ln = &p->lines[pl->line_off + j];
            perftools__profiles__line__init(&a->lines[li]);
            a->lines[li].function_id = ln->function + 1;
            a->lines[li].line = ln->line;
            a->linesp[li] = &a->lines[li];
        }
        a->locsp[i] = l;
    }

    nlocids = 0;
    for (i = 0; i < p->nsamples; i++) {
        Perftools__Profiles__Sample *s = &a->samples[i];
        size_t n, ns, nl;
        const uint32_t *k = intern_seq_get(&p->samples, (uint32_t)i, &n);
        const uint32_t *stack = intern_seq_get(&p->stacks, k[0], &ns);
        const uint32_t *lset = intern_seq_get(&p->lsets, k[1], &nl);

        perftools__profiles__sample__init(s);
        s->n_location_id = ns;
        s->location_id = &a->locids[nlocids];
        for (j = 0; j < ns; j++)
            a->locids[nlocids++] = stack[j];
        s->n_value = 2;
        s->value = &a->values[2 * i];
        s->value[0] = (int64_t)p->counts[i];
        s->value[1] = (int64_t)(p->counts[i] * p->period_ns);
        s->n_label = nl / 2;
        s->label = &a->labelsp[lbi];
        for (j = 0; j < nl / 2; j++, lbi++) {
            perftools__profiles__label__init(&a->labels[lbi]);
            a->labels[lbi].key = lset[2 * j];
            a->labels[lbi].str = lset[2 * j + 1];
            a->labelsp[lbi] = &a->labels[lbi];
        }
        a->samplesp[i] = s;
    }

    prof.n_sample_type = 2;
    prof.sample_type = a->vtp;
    prof.n_sample = p->nsamples;
    prof.sample = a->samplesp;
    prof.n_mapping = p->nmaps;
    prof.mapping = a->mapsp;
    prof.n_location = p->nlocs;
    prof.location = a->locsp;
    prof.n_function = nfuncs;
    prof.function = a->funcsp;
    prof.n_string_table = p->str.n;
    prof.string_table = a->strings;
    prof.time_nanos = (int64_t)p->start_ns;
    prof.duration_nanos = (int64_t)p->duration_ns;
    prof.period_type = &a->vt[2];
    prof.period = (int64_t)p->period_ns;
    a->comment[0] = p->s_comment;
    prof.n_comment = 1;
    prof.comment = a->comment;
    prof.default_sample_type = p->s_cpu;
    *out = prof;
    return 0;
}

struct profile_pprof {
    Perftools__Profiles__Profile msg;
    struct pprof_arrays a;
};

const Perftools__Profiles__Profile *profile_pprof_msg(const struct profile_pprof *pp)
{
    return &pp->msg;
}

int profile_to_pprof(const struct profile *p, struct profile_pprof **out)
{
    struct profile_pprof *pp = calloc(1, sizeof(*pp));
    int err;

    *out = NULL;
    if (!pp)
        return -ENOMEM;
    err = pprof_build(p, &pp->msg, &pp->a);
    if (err < 0) {
        free(pp);
        return err;
    }
    *out = pp;
    return 0;
}

void profile_pprof_free(struct profile_pprof *pp)
{
    if (!pp)
        return;
    pprof_arrays_free(&pp->a);
    free(pp);
}

int profile_encode_pprof_gz(const struct profile *p, uint8_t **out, size_t *outlen)
{
    Perftools__Profiles__Profile prof;
    struct pprof_arrays a;
    uint8_t *raw = NULL;
    size_t rawlen;
    int err;

    *out = NULL;
    *outlen = 0;
    err = pprof_build(p, &prof, &a);
    if (err < 0)
        return err;
    rawlen = perftools__profiles__profile__get_packed_size(&prof);
    raw = malloc(rawlen ? rawlen : 1);
    if (!raw) {
        err = -ENOMEM;
        goto out;
    }
    if (perftools__profiles__profile__pack(&prof, raw) != rawlen) {
        err = -EIO; /* protobuf-c disagreeing with itself: a library bug */
        goto out;
    }

    err = gzip_compress(raw, rawlen, out, outlen);
out:
    free(raw);
    pprof_arrays_free(&a);
    return err;
}

/* ---- files -------------------------------------------------------------- */

int profile_write_pprof_gz(const struct profile *p, const char *path)
{
    uint8_t *buf;
    size_t len;
    int err = profile_encode_pprof_gz(p, &buf, &len);

    if (err < 0)
        return err;
    err = write_file_atomic(path, buf, len, 0644);
    free(buf);
    return err;
}

/* ---- folded ------------------------------------------------------------- */

/* ';' separates frames and '\n' lines: a name must contain neither, and
 * other control characters only confuse flamegraph tools. */
static void sb_put_name(struct wbuf *s, const char *name)
{
    size_t start = s->len, i;

    wb_bytes(s, name, strlen(name));
    if (s->err)
        return;
    for (i = start; i < s->len; i++)
        if (s->s[i] == ';' || (unsigned char)s->s[i] < 0x20)
            s->s[i] = '_';
}

static void sb_put_location(struct wbuf *s, const struct profile *p, uint32_t loc_id)
{
    const struct plocation *l = &p->locs[loc_id - 1];
    char tmp[32];
    uint32_t j;

    if (l->nlines == 0) {
        const char *path = intern_str_get(&p->str, p->maps[l->mapping].file);
        const char *base = strrchr(path, '/');

        sb_put_name(s, base ? base + 1 : path);
        snprintf(tmp, sizeof(tmp), "+0x%" PRIx64, l->address);
        wb_bytes(s, tmp, strlen(tmp));
        return;
    }
    /* root first: the physical function (last line) before what it inlines */
    for (j = l->nlines; j-- > 0;) {
        const struct pline *ln = &p->lines[l->line_off + j];
        size_t n;
        const uint32_t *fk = intern_seq_get(&p->funcs, ln->function, &n);

        sb_put_name(s, intern_str_get(&p->str, fk[0]));
        if (j)
            wb_bytes(s, ";", 1);
    }
}

struct fline {
    size_t off;
    uint64_t count;
};

static int fline_cmp(const void *a, const void *b, void *base)
{
    const struct fline *x = a, *y = b;
    return strcmp((const char *)base + x->off, (const char *)base + y->off);
}

/* Renders the folded text into a malloc'd buffer. 0 or -ENOMEM. */
static int folded_render(const struct profile *p, char **out, size_t *outlen)
{
    struct wbuf frames = {0}, text = {0};
    struct fline *fl = NULL;
    uint64_t *per_stack;
    size_t nfl = 0, i, j;
    char tmp[32];

    per_stack = xcalloc(p->stacks.n, sizeof(*per_stack));
    if (!per_stack)
        return -ENOMEM;
    /* labels do not appear in folded output: rows differing only in labels
     * fold into one line */
    for (i = 0; i < p->nsamples; i++) {
        size_t n;
        const uint32_t *k = intern_seq_get(&p->samples, (uint32_t)i, &n);
        per_stack[k[0]] += p->counts[i];
    }
    fl = xcalloc(p->stacks.n, sizeof(*fl));
    if (!fl)
        goto oom;
    for (i = 0; i < p->stacks.n; i++) {
        size_t ns;
        const uint32_t *st;

        if (!per_stack[i])
            continue;
        st = intern_seq_get(&p->stacks, (uint32_t)i, &ns);
        fl[nfl].off = frames.len;
        fl[nfl].count = per_stack[i];
        nfl++;
        if (ns == 0)
            wb_bytes(&frames, "[unknown]", 9);
        for (j = ns; j-- > 0;) {
            sb_put_location(&frames, p, st[j]);
            if (j)
                wb_bytes(&frames, ";", 1);
        }
        wb_bytes(&frames, "", 1); /* keep the NUL: lines are sorted with strcmp */
        if (frames.err)
            goto oom;
    }
    if (nfl)
        qsort_r(fl, nfl, sizeof(*fl), fline_cmp, frames.s);
    for (i = 0; i < nfl; i = j) {
        uint64_t c = fl[i].count;

        /* distinct stacks can print alike (same names in two mappings) */
        for (j = i + 1; j < nfl && strcmp(frames.s + fl[i].off, frames.s + fl[j].off) == 0; j++)
            c += fl[j].count;
        wb_bytes(&text, frames.s + fl[i].off, strlen(frames.s + fl[i].off));
        snprintf(tmp, sizeof(tmp), " %" PRIu64 "\n", c);
        wb_bytes(&text, tmp, strlen(tmp));
    }
    if (text.err)
        goto oom;
    free(frames.p);
    free(fl);
    free(per_stack);
    *out = text.s;
    *outlen = text.len;
    return 0;
oom:
    free(text.p);
    free(frames.p);
    free(fl);
    free(per_stack);
    return -ENOMEM;
}

int profile_write_folded(const struct profile *p, const char *path)
{
    char *buf;
    size_t len;
    int err = folded_render(p, &buf, &len);

    if (err < 0)
        return err;
    err = write_file_atomic(path, buf ? buf : "", len, 0644);
    free(buf);
    return err;
}
