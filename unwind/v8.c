/* SPDX-License-Identifier: Apache-2.0 */
/*
 * v8 — V8's layout from its post-mortem metadata. See v8.h.
 */
#include <errno.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unwind/elf_syms.h"
#include "unwind/v8.h"

#define MAX_META 4096 /* v8dbg_* symbols kept (node 20 has 531) */

struct meta {
    const char *name; /* after "v8dbg_" */
    int32_t value;
};

struct meta_set {
    struct meta *m;
    size_t n;
    uint32_t version[3];
    bool have_version;
};

static const char *const version_syms[3] = {
    "_ZN2v88internal7Version6major_E",
    "_ZN2v88internal7Version6minor_E",
    "_ZN2v88internal7Version6build_E",
};

struct v8_scan {
    Elf *elf;
    struct meta_set *ms;
    bool meta; /* the v8dbg_* ints too, not only the version */
};

/* Reads the 4-byte int a symbol names (0 from .bss: V8 emits its zero
 * constants there). */
static bool sym_int(Elf *elf, const GElf_Sym *sym, int32_t *out)
{
    return uw_elf_read_vaddr(elf, sym->st_value, out, sizeof(*out));
}

static int v8_take_sym(void *ctx, const char *name, const GElf_Sym *sym)
{
    struct v8_scan *c = ctx;
    struct meta_set *ms = c->ms;
    int32_t v;

    if (sym->st_size != 4)
        return 0;
    if (c->meta && name[0] == 'v' && strncmp(name, "v8dbg_", 6) == 0) {
        if (ms->n == MAX_META || !sym_int(c->elf, sym, &v))
            return 0;
        if (!ms->m && !(ms->m = calloc(MAX_META, sizeof(*ms->m))))
            return -ENOMEM;
        ms->m[ms->n++] = (struct meta){name + 6, v};
    } else if (name[0] == '_' && strncmp(name, "_ZN2v88internal7Version6", 24) == 0) {
        for (int k = 0; k < 3; k++)
            if (strcmp(name, version_syms[k]) == 0 && sym_int(c->elf, sym, &v) && v >= 0) {
                ms->version[k] = (uint32_t)v;
                ms->have_version |= k == 0;
            }
    }
    return 0;
}

/* Collects the v8dbg_* ints (when @meta) and the version from one symbol
 * table. */
static int scan(Elf *elf, Elf64_Word type, struct meta_set *ms, bool meta, bool mapped)
{
    struct v8_scan c = {.elf = elf, .ms = ms, .meta = meta};

    return uw_elf_syms(elf, type, mapped, v8_take_sym, &c);
}

/* The value of v8dbg_@name, exactly. */
static bool get(const struct meta_set *ms, const char *name, int32_t *out)
{
    for (size_t i = 0; i < ms->n; i++)
        if (strcmp(ms->m[i].name, name) == 0) {
            *out = ms->m[i].value;
            return true;
        }
    return false;
}

/* A field offset: v8dbg_class_@cls__@field__<any type>, the type suffix
 * being whatever this version's generator wrote. */
static bool field(const struct meta_set *ms, const char *cls, const char *fld, uint16_t *out)
{
    size_t lc = strlen(cls), lf = strlen(fld);

    for (size_t i = 0; i < ms->n; i++) {
        const char *s = ms->m[i].name;
        if (strncmp(s, "class_", 6) != 0 || strncmp(s + 6, cls, lc) != 0 ||
            strncmp(s + 6 + lc, "__", 2) != 0 || strncmp(s + 8 + lc, fld, lf) != 0 ||
            strncmp(s + 8 + lc + lf, "__", 2) != 0)
            continue;
        if (ms->m[i].value < 0 || ms->m[i].value > 0xffff)
            return false;
        *out = (uint16_t)ms->m[i].value;
        return true;
    }
    return false;
}

/* An instance type: v8dbg_type_@cls__<TYPE_NAME>. With several (String
 * classes have one per representation), the lowest and highest. */
static bool type_range(const struct meta_set *ms, const char *cls, uint16_t *lo, uint16_t *hi)
{
    size_t lc = strlen(cls);
    bool found = false;

    for (size_t i = 0; i < ms->n; i++) {
        const char *s = ms->m[i].name;
        int32_t v = ms->m[i].value;
        if (strncmp(s, "type_", 5) != 0 || strncmp(s + 5, cls, lc) != 0 ||
            strncmp(s + 5 + lc, "__", 2) != 0 || v < 0 || v > 0xffff)
            continue;
        if (!found || v < *lo)
            *lo = (uint16_t)v;
        if (!found || v > *hi)
            *hi = (uint16_t)v;
        found = true;
    }
    return found;
}

static bool type_of(const struct meta_set *ms, const char *cls, uint16_t *out)
{
    uint16_t hi;
    return type_range(ms, cls, out, &hi);
}

static bool u16_of(const struct meta_set *ms, const char *name, uint16_t *out)
{
    int32_t v;
    if (!get(ms, name, &v) || v < 0 || v > 0xffff)
        return false;
    *out = (uint16_t)v;
    return true;
}

/* The frame offsets the walker reads are small negative numbers. */
static bool fp_off(const struct meta_set *ms, const char *name, int16_t *out)
{
    int32_t v;
    if (!get(ms, name, &v) || v < -256 || v >= 0 || v % 8)
        return false;
    *out = (int16_t)v;
    return true;
}

static int layout(const struct meta_set *ms, struct v8_layout *o)
{
    int32_t tagged = 0, ptr = 0, smi_shift = 0, heap_tag = 0, heap_mask = 0, smi_mask = 0, v;
    uint16_t lo, hi;

    memset(o, 0, sizeof(*o));
    if (ms->have_version)
        o->version =
            V8_VERSION(ms->version[0] & 0xff, ms->version[1] & 0xff, ms->version[2] & 0xffff);
    /* every Node.js release: 8-byte tagged values, Smis in the upper half */
    if (!get(ms, "TaggedSize", &tagged) || !get(ms, "SystemPointerSize", &ptr) ||
        !get(ms, "SmiShiftSize", &smi_shift) || !get(ms, "HeapObjectTag", &heap_tag) ||
        !get(ms, "HeapObjectTagMask", &heap_mask) || !get(ms, "SmiTagMask", &smi_mask) ||
        tagged != 8 || ptr != 8 || smi_shift != 31 || heap_tag != 1 || heap_mask != 3 ||
        smi_mask != 1 || (get(ms, "SmiTag", &v) && v != 0))
        return -ENOTSUP;

    struct v8_proc *b = &o->bpf;
    if (!fp_off(ms, "off_fp_context", &b->fp_context) ||
        !fp_off(ms, "off_fp_function", &b->fp_function) ||
        !field(ms, "Map", "instance_type", &b->map_type) ||
        !field(ms, "JSFunction", "shared", &b->func_shared) ||
        !type_of(ms, "JSFunction", &b->type_func_lo))
        return -ENOTSUP;
    if (!field(ms, "HeapObject", "map", &b->obj_map))
        b->obj_map = 0; /* the first word of every heap object */
    /* JSFunction's subclasses (class, Promise, RegExp, Array and typed
     * array constructors) follow its own type: 16 in V8 11.3, where
     * JS_FUNCTION_TYPE..JS_CLASS_CONSTRUCTOR_TYPE is 2066..2081. Newer
     * metadata says where the range ends. */
    int32_t first, last;
    if (get(ms, "FirstJSFunctionType", &first) && get(ms, "LastJSFunctionType", &last) &&
        first > 0 && first <= last && last <= 0xffff) {
        b->type_func_lo = (uint16_t)first;
        b->type_func_hi = (uint16_t)last;
    } else {
        b->type_func_hi = b->type_func_lo + 17; /* room for the ones added since */
    }

    if (!type_of(ms, "SharedFunctionInfo", &o->type_sfi) ||
        !type_of(ms, "ScopeInfo", &o->type_scope_info) || !type_of(ms, "Script", &o->type_script) ||
        !type_of(ms, "FixedArray", &o->type_fixed_array) ||
        !u16_of(ms, "FirstNonstringType", &o->first_nonstring) ||
        !u16_of(ms, "StringRepresentationMask", &o->str_repr_mask) ||
        !u16_of(ms, "StringEncodingMask", &o->str_enc_mask) ||
        !u16_of(ms, "OneByteStringTag", &o->str_one_byte) ||
        !u16_of(ms, "ConsStringTag", &o->str_cons) || !u16_of(ms, "ThinStringTag", &o->str_thin) ||
        !u16_of(ms, "SlicedStringTag", &o->str_sliced))
        return -ENOTSUP;
    if (!u16_of(ms, "SeqStringTag", &o->str_seq))
        o->str_seq = 0;
    o->type_uncompiled_lo = 1;
    o->type_uncompiled_hi = 0;
    if (type_range(ms, "UncompiledDataWithoutPreparseData", &lo, &hi)) {
        /* the four UncompiledData* classes are consecutive */
        uint16_t lo2, hi2;
        o->type_uncompiled_lo = lo;
        o->type_uncompiled_hi = hi;
        if (type_range(ms, "UncompiledDataWithPreparseData", &lo2, &hi2)) {
            o->type_uncompiled_lo = lo2 < lo ? lo2 : lo;
            o->type_uncompiled_hi = hi2 > hi ? hi2 : hi;
        }
        if (type_range(ms, "UncompiledDataWithoutPreparseDataWithJob", &lo2, &hi2) && hi2 >= lo2)
            o->type_uncompiled_hi = hi2 > o->type_uncompiled_hi ? hi2 : o->type_uncompiled_hi;
        if (type_range(ms, "UncompiledDataWithPreparseDataAndJob", &lo2, &hi2) && hi2 >= lo2)
            o->type_uncompiled_hi = hi2 > o->type_uncompiled_hi ? hi2 : o->type_uncompiled_hi;
    }

    if (!field(ms, "SharedFunctionInfo", "name_or_scope_info", &o->sfi_name) ||
        (!field(ms, "SharedFunctionInfo", "script_or_debug_info", &o->sfi_script) &&
         !field(ms, "SharedFunctionInfo", "script", &o->sfi_script)) ||
        !field(ms, "Script", "name", &o->script_name) ||
        !field(ms, "String", "length", &o->str_length) ||
        !field(ms, "SeqOneByteString", "chars", &o->seq_one_chars) ||
        !field(ms, "SeqTwoByteString", "chars", &o->seq_two_chars) ||
        !field(ms, "ConsString", "first", &o->cons_first) ||
        !field(ms, "ConsString", "second", &o->cons_second) ||
        !field(ms, "ThinString", "actual", &o->thin_actual) ||
        !field(ms, "SlicedString", "parent", &o->sliced_parent) ||
        !field(ms, "SlicedString", "offset", &o->sliced_offset) ||
        !field(ms, "FixedArrayBase", "length", &o->fixed_length) ||
        !field(ms, "FixedArray", "data", &o->fixed_data))
        return -ENOTSUP;
    /* what only the line needs: missing, the frame is named without one */
    if (!field(ms, "SharedFunctionInfo", "function_data", &o->sfi_data))
        o->sfi_data = 8; /* the first field, in every version */
    if (!field(ms, "Script", "source", &o->script_source))
        o->script_source = o->script_name >= 8 ? o->script_name - 8 : 0; /* before the name */
    if (!field(ms, "Script", "line_ends", &o->script_line_ends))
        o->script_line_ends = 0;
    if (!field(ms, "UncompiledData", "inferred_name", &o->uncompiled_name) ||
        !field(ms, "UncompiledData", "start_position", &o->uncompiled_start))
        o->type_uncompiled_lo = 1, o->type_uncompiled_hi = 0;
    return 0;
}

int v8_detect(Elf *elf, struct v8_layout *out, bool mapped)
{
    struct meta_set ms = {0};
    int ret;

    ret = scan(elf, SHT_DYNSYM, &ms, true, mapped);
    /* node exports its metadata; a build that does not has it in .symtab */
    if (ret == 0 && (ms.n == 0 || !ms.have_version))
        ret = scan(elf, SHT_SYMTAB, &ms, ms.n == 0, mapped);
    if (ret == 0)
        ret = ms.n ? layout(&ms, out) : -ENOENT;
    free(ms.m);
    return ret;
}
