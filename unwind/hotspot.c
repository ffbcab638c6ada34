/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hotspot — HotSpot's introspection tables and code cache. See hotspot.h.
 */
#include <errno.h>
#include <gelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unwind/elf_syms.h"
#include "unwind/hotspot.h"

#define MAX_ENTRIES (1u << 16) /* entries of one table: real ones hold ~3000 */
#define MAX_STRIDE  256
#define MAX_NAME    64 /* names the reader looks for are shorter */
#define MAX_SIZE    (64u << 10)
#define PAGE        4096u
#define CACHE_PAGES 16

enum kind { K_SIZE, K_OFFSET, K_STATIC };

struct want {
    const char *type, *field; /* field NULL: the type's size */
    uint8_t id;
    uint8_t kind;
};

/* Several rows for one field: the names it had in the versions read. */
static const struct want wants[] = {
    {"ConstMethod", NULL, HS_SIZE_CONSTMETHOD, K_SIZE},
    {"ConstantPool", NULL, HS_SIZE_CONSTANTPOOL, K_SIZE},
    {"HeapBlock", NULL, HS_SIZE_HEAPBLOCK, K_SIZE},
    {"PcDesc", NULL, HS_SIZE_PCDESC, K_SIZE},
    {"nmethod", NULL, HS_SIZE_NMETHOD, K_SIZE},
    {"CodeBlob", "_name", HS_BLOB_NAME, K_OFFSET},
    {"CodeBlob", "_size", HS_BLOB_SIZE, K_OFFSET},
    {"CodeBlob", "_frame_complete_offset", HS_BLOB_FRAME_COMPLETE, K_OFFSET},
    {"CodeBlob", "_frame_size", HS_BLOB_FRAME_SIZE, K_OFFSET},
    {"CodeBlob", "_code_begin", HS_BLOB_CODE_BEGIN, K_OFFSET},
    {"CodeBlob", "_code_end", HS_BLOB_CODE_END, K_OFFSET},
    {"CompiledMethod", "_method", HS_CM_METHOD, K_OFFSET},
    {"CompiledMethod", "_scopes_data_begin", HS_CM_SCOPES_DATA, K_OFFSET},
    {"CompiledMethod", "_deopt_handler_begin", HS_CM_DEOPT, K_OFFSET},
    {"nmethod", "_compile_id", HS_NM_COMPILE_ID, K_OFFSET},
    {"nmethod", "_orig_pc_offset", HS_NM_ORIG_PC, K_OFFSET},
    {"nmethod", "_metadata_offset", HS_NM_METADATA, K_OFFSET},
    {"nmethod", "_scopes_pcs_offset", HS_NM_SCOPES_PCS, K_OFFSET},
    {"nmethod", "_dependencies_offset", HS_NM_DEPENDENCIES, K_OFFSET},
    {"Method", "_constMethod", HS_METHOD_CONST, K_OFFSET},
    {"ConstMethod", "_constants", HS_CONST_CONSTANTS, K_OFFSET},
    {"ConstMethod", "_flags", HS_CONST_FLAGS, K_OFFSET},
    {"ConstMethod", "_flags._flags", HS_CONST_FLAGS, K_OFFSET}, /* JDK 21 */
    {"ConstMethod", "_code_size", HS_CONST_CODE_SIZE, K_OFFSET},
    {"ConstMethod", "_name_index", HS_CONST_NAME, K_OFFSET},
    {"ConstMethod", "_signature_index", HS_CONST_SIGNATURE, K_OFFSET},
    {"ConstantPool", "_pool_holder", HS_CP_HOLDER, K_OFFSET},
    {"ConstantPool", "_source_file_name_index", HS_CP_SOURCE_FILE, K_OFFSET},
    {"InstanceKlass", "_source_file_name_index", HS_IK_SOURCE_FILE, K_OFFSET},
    {"Klass", "_name", HS_KLASS_NAME, K_OFFSET},
    {"Symbol", "_length", HS_SYMBOL_LENGTH, K_OFFSET},
    {"Symbol", "_length_and_refcount", HS_SYMBOL_LENREF, K_OFFSET},
    {"Symbol", "_body", HS_SYMBOL_BODY, K_OFFSET},
    {"PcDesc", "_pc_offset", HS_PCDESC_PC, K_OFFSET},
    {"PcDesc", "_scope_decode_offset", HS_PCDESC_SCOPE, K_OFFSET},
    {"CodeHeap", "_memory", HS_HEAP_MEMORY, K_OFFSET},
    {"CodeHeap", "_segmap", HS_HEAP_SEGMAP, K_OFFSET},
    {"CodeHeap", "_log2_segment_size", HS_HEAP_LOG2SEG, K_OFFSET},
    {"VirtualSpace", "_low_boundary", HS_VS_LOW, K_OFFSET},
    {"VirtualSpace", "_high_boundary", HS_VS_HIGH, K_OFFSET},
    {"GrowableArrayBase", "_len", HS_GA_LEN, K_OFFSET},
    {"GenericGrowableArray", "_len", HS_GA_LEN, K_OFFSET}, /* JDK 9-15 */
    {"GrowableArray<int>", "_data", HS_GA_DATA, K_OFFSET},
    {"StubQueue", "_stub_buffer", HS_SQ_BUFFER, K_OFFSET},
    {"StubQueue", "_buffer_limit", HS_SQ_LIMIT, K_OFFSET},
    {"CodeCache", "_heaps", HS_CC_HEAPS, K_STATIC},
    {"CodeCache", "_low_bound", HS_CC_LOW, K_STATIC},
    {"CodeCache", "_high_bound", HS_CC_HIGH, K_STATIC},
    {"AbstractInterpreter", "_code", HS_INTERP_CODE, K_STATIC},
    {"Abstract_VM_Version", "_vm_major_version", HS_VM_MAJOR, K_STATIC},
};

/* Fields a VM may lack: one of each pair is enough. */
#define OPTIONAL_FIELDS                                                                            \
    ((1ull << HS_CP_SOURCE_FILE) | (1ull << HS_IK_SOURCE_FILE) | (1ull << HS_SYMBOL_LENGTH) |      \
     (1ull << HS_SYMBOL_LENREF))

const char *hs_field_name(int f, char *buf, size_t len)
{
    snprintf(buf, len, "?");
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
        if (wants[i].id != f)
            continue;
        snprintf(buf, len, "%s%s%s", wants[i].type, wants[i].field ? "." : "",
                 wants[i].field ? wants[i].field : "");
        break;
    }
    return buf;
}

/* ---- the process's memory, a page at a time ------------------------------ */

/* The tables' strings lie together in libjvm's .rodata: a few cached pages
 * answer thousands of reads. */
struct mem {
    hs_read_fn rd;
    void *ctx;
    struct {
        uint64_t page; /* page number + 1; 0 = empty */
        uint8_t data[PAGE];
    } * slots;
};

static const uint8_t *mem_page(struct mem *m, uint64_t addr)
{
    uint64_t pg = addr / PAGE;
    size_t i = (size_t)(pg % CACHE_PAGES);

    if (m->slots[i].page != pg + 1) {
        if (m->rd(m->ctx, pg * PAGE, m->slots[i].data, PAGE) != 0) {
            m->slots[i].page = 0;
            return NULL;
        }
        m->slots[i].page = pg + 1;
    }
    return m->slots[i].data;
}

static int mem_read(struct mem *m, uint64_t addr, void *buf, size_t len)
{
    uint8_t *o = buf;

    while (len) {
        const uint8_t *p = mem_page(m, addr);
        size_t in = PAGE - (size_t)(addr % PAGE), n = len < in ? len : in;
        if (!p)
            return -EFAULT;
        memcpy(o, p + addr % PAGE, n);
        o += n;
        addr += n;
        len -= n;
    }
    return 0;
}

/* A NUL-terminated string of at most @cap - 1 bytes; false when it is
 * longer or unreadable (no name the reader wants is). */
static bool mem_str(struct mem *m, uint64_t addr, char *out, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        const uint8_t *p = mem_page(m, addr + i);
        if (!p)
            return false;
        out[i] = (char)p[(addr + i) % PAGE];
        if (!out[i])
            return true;
    }
    return false;
}

static int mem_u64(struct mem *m, uint64_t addr, uint64_t *out)
{
    return mem_read(m, addr, out, sizeof(*out));
}

/* ---- detection ------------------------------------------------------------ */

static const struct {
    const char *name;
    size_t off;
} hs_syms_wanted[] = {
    {"gHotSpotVMStructs", offsetof(struct hs_syms, structs)},
    {"gHotSpotVMStructEntryArrayStride", offsetof(struct hs_syms, s_stride)},
    {"gHotSpotVMStructEntryTypeNameOffset", offsetof(struct hs_syms, s_type)},
    {"gHotSpotVMStructEntryFieldNameOffset", offsetof(struct hs_syms, s_field)},
    {"gHotSpotVMStructEntryIsStaticOffset", offsetof(struct hs_syms, s_static)},
    {"gHotSpotVMStructEntryOffsetOffset", offsetof(struct hs_syms, s_offset)},
    {"gHotSpotVMStructEntryAddressOffset", offsetof(struct hs_syms, s_address)},
    {"gHotSpotVMTypes", offsetof(struct hs_syms, types)},
    {"gHotSpotVMTypeEntryArrayStride", offsetof(struct hs_syms, t_stride)},
    {"gHotSpotVMTypeEntryTypeNameOffset", offsetof(struct hs_syms, t_type)},
    {"gHotSpotVMTypeEntrySizeOffset", offsetof(struct hs_syms, t_size)},
};
#define HS_NSYMS (sizeof(hs_syms_wanted) / sizeof(hs_syms_wanted[0]))

struct hs_scan {
    struct hs_syms *out;
    unsigned have; /* bit k: hs_syms_wanted[k] found */
};

static int hs_take_sym(void *ctx, const char *name, const GElf_Sym *sym)
{
    struct hs_scan *c = ctx;

    if (!sym->st_value || strncmp(name, "gHotSpotVM", 10) != 0)
        return 0;
    for (size_t k = 0; k < HS_NSYMS; k++) {
        if (strcmp(name, hs_syms_wanted[k].name) == 0) {
            memcpy((char *)c->out + hs_syms_wanted[k].off, &sym->st_value, sizeof(uint64_t));
            c->have |= 1u << k;
        }
    }
    return 0;
}

int hs_detect(Elf *elf, struct hs_syms *out, bool mapped)
{
    struct hs_scan c = {.out = out};

    memset(out, 0, sizeof(*out));
    uw_elf_syms(elf, SHT_DYNSYM, mapped, hs_take_sym, &c);
    return c.have == (1u << HS_NSYMS) - 1 ? 0 : -ENOENT;
}

/* ---- the introspection tables --------------------------------------------- */

static bool field_is(const char *got, const char *want)
{
    return want && strcmp(got, want) == 0;
}

/* Records an entry's value when the reader wants it. */
static void take(struct hs_vm *vm, const char *type, const char *field, enum kind kind,
                 uint64_t value)
{
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
        const struct want *w = &wants[i];
        if (w->kind != kind || strcmp(type, w->type) != 0 ||
            (kind == K_SIZE ? false : !field_is(field, w->field)))
            continue;
        vm->v[w->id] = value;
        vm->found |= 1ull << w->id;
    }
}

/* Reads @n members at @offs (each an offset within one entry) of the
 * stride variable and the offset variables, all uint64_t in the process. */
static int read_layout(struct mem *m, uint64_t bias, const uint64_t *syms, uint64_t *vals, int n)
{
    for (int i = 0; i < n; i++)
        if (mem_u64(m, bias + syms[i], &vals[i]) != 0)
            return -EFAULT;
    return 0;
}

/* Walks one table (@is_types: gHotSpotVMTypes) to its end marker. */
static int read_table(struct mem *m, struct hs_vm *vm, uint64_t bias, const struct hs_syms *sy,
                      bool is_types)
{
    uint64_t lay[6], base;
    uint8_t e[MAX_STRIDE];
    char type[MAX_NAME], field[MAX_NAME];
    int ret;

    if (is_types) {
        const uint64_t syms[] = {sy->t_stride, sy->t_type, sy->t_size};
        ret = read_layout(m, bias, syms, lay, 3);
    } else {
        const uint64_t syms[] = {sy->s_stride, sy->s_type,   sy->s_field,
                                 sy->s_static, sy->s_offset, sy->s_address};
        ret = read_layout(m, bias, syms, lay, 6);
    }
    if (ret)
        return ret;
    uint64_t stride = lay[0];
    if (stride < 16 || stride > MAX_STRIDE)
        return -EBADMSG;
    for (int i = 1; i < (is_types ? 3 : 6); i++)
        if (lay[i] > stride - 8) /* stride >= 16; a sum could wrap */
            return -EBADMSG;
    if (mem_u64(m, bias + (is_types ? sy->types : sy->structs), &base) != 0)
        return -EFAULT;
    if (!base)
        return -EBADMSG;
    for (uint32_t i = 0; i < MAX_ENTRIES; i++) {
        uint64_t tp, fp, val;
        if (mem_read(m, base + (uint64_t)i * stride, e, stride) != 0)
            return -EFAULT;
        memcpy(&tp, e + lay[1], 8);
        if (!tp)
            return 0; /* the end marker */
        if (!mem_str(m, tp, type, sizeof(type)))
            continue;
        if (is_types) {
            memcpy(&val, e + lay[2], 8);
            take(vm, type, NULL, K_SIZE, val);
            continue;
        }
        int32_t is_static;
        memcpy(&fp, e + lay[2], 8);
        memcpy(&is_static, e + lay[3], 4);
        if (!fp || !mem_str(m, fp, field, sizeof(field)))
            continue;
        if (is_static) {
            memcpy(&val, e + lay[5], 8);
            if (val < bias)
                continue; /* not in libjvm: not one of ours */
            take(vm, type, field, K_STATIC, val - bias);
        } else {
            memcpy(&val, e + lay[4], 8);
            take(vm, type, field, K_OFFSET, val);
        }
    }
    return -EBADMSG; /* no end marker */
}

/* Offsets must lie within their type, types be of sane sizes. */
static bool sane(const struct hs_vm *vm)
{
    for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++) {
        const struct want *w = &wants[i];
        if (w->kind != K_STATIC && hs_has(vm, w->id) && vm->v[w->id] >= MAX_SIZE)
            return false;
    }
    if (vm->v[HS_SIZE_CONSTMETHOD] == 0 || vm->v[HS_SIZE_CONSTANTPOOL] == 0 ||
        vm->v[HS_SIZE_PCDESC] < 8 || vm->v[HS_PCDESC_PC] + 4 > vm->v[HS_SIZE_PCDESC] ||
        vm->v[HS_PCDESC_SCOPE] + 4 > vm->v[HS_SIZE_PCDESC] ||
        vm->v[HS_NM_COMPILE_ID] + 4 > vm->v[HS_SIZE_NMETHOD])
        return false;
    return true;
}

int hs_read_vm(const struct hs_syms *sy, uint64_t bias, hs_read_fn rd, void *ctx, struct hs_vm *out,
               int *missing)
{
    struct mem m = {.rd = rd, .ctx = ctx};
    int32_t major = 0;
    int ret;

    memset(out, 0, sizeof(*out));
    if (missing)
        *missing = -1;
    m.slots = calloc(CACHE_PAGES, sizeof(*m.slots));
    if (!m.slots)
        return -ENOMEM;
    ret = read_table(&m, out, bias, sy, true);
    if (!ret)
        ret = read_table(&m, out, bias, sy, false);
    if (!ret && hs_has(out, HS_VM_MAJOR))
        ret = mem_read(&m, bias + out->v[HS_VM_MAJOR], &major, sizeof(major));
    free(m.slots);
    if (ret)
        return ret;
    for (int f = 0; f < HS_NFIELDS; f++) {
        if (!hs_has(out, f) && !((OPTIONAL_FIELDS >> f) & 1)) {
            if (missing)
                *missing = f;
            return -ENOTSUP;
        }
    }
    if ((!hs_has(out, HS_CP_SOURCE_FILE) && !hs_has(out, HS_IK_SOURCE_FILE)) ||
        (!hs_has(out, HS_SYMBOL_LENGTH) && !hs_has(out, HS_SYMBOL_LENREF))) {
        if (missing)
            *missing = hs_has(out, HS_SYMBOL_LENREF) || hs_has(out, HS_SYMBOL_LENGTH)
                           ? HS_CP_SOURCE_FILE
                           : HS_SYMBOL_LENGTH;
        return -ENOTSUP;
    }
    if (!hs_has(out, HS_SYMBOL_LENGTH)) {
        /* JDK 11: u4 length << 16 | refcount, little-endian */
        out->v[HS_SYMBOL_LENGTH] = out->v[HS_SYMBOL_LENREF] + 2;
        out->found |= 1ull << HS_SYMBOL_LENGTH;
    }
    if (major < 9 || major > 22) {
        /* 23 made code blob fields offsets and moved nmethod data out */
        if (missing)
            *missing = HS_NFIELDS;
        out->major = major > 0 ? (unsigned)major : 0;
        return -ENOTSUP;
    }
    out->major = (unsigned)major;
    out->u5_excluded = major >= 20 ? 1 : 0;
    return sane(out) ? 0 : -EBADMSG;
}

/* ---- one process's code cache --------------------------------------------- */

/* @out: a uint64_t or a __u64 */
static int rd_u64(hs_read_fn rd, void *ctx, uint64_t addr, void *out)
{
    return rd(ctx, addr, out, 8);
}

static int rd_i32(hs_read_fn rd, void *ctx, uint64_t addr, int32_t *out)
{
    return rd(ctx, addr, out, sizeof(*out));
}

int hs_read_proc(const struct hs_vm *vm, uint64_t bias, hs_read_fn rd, void *ctx,
                 struct jvm_proc *out)
{
    const uint64_t *v = vm->v;
    uint64_t heaps, data, q, buf;
    int32_t len, limit, shift = 0;

    memset(out, 0, sizeof(*out));
    if (rd_u64(rd, ctx, bias + v[HS_CC_HEAPS], &heaps) != 0)
        return -EFAULT;
    if (!heaps)
        return -EAGAIN;
    if (rd_i32(rd, ctx, heaps + v[HS_GA_LEN], &len) != 0 ||
        rd_u64(rd, ctx, heaps + v[HS_GA_DATA], &data) != 0)
        return -EFAULT;
    if (len <= 0 || !data)
        return -EAGAIN;
    if (len > STOKE_JVM_MAX_HEAPS)
        return -EBADMSG;
    if (rd_u64(rd, ctx, bias + v[HS_CC_LOW], &out->code_lo) != 0 ||
        rd_u64(rd, ctx, bias + v[HS_CC_HIGH], &out->code_hi) != 0)
        return -EFAULT;
    if (!out->code_lo || out->code_hi <= out->code_lo)
        return -EAGAIN;
    for (int i = 0; i < len; i++) {
        uint64_t hp;
        struct jvm_heap *h = &out->heaps[i];
        int32_t sh;
        if (rd_u64(rd, ctx, data + 8 * (uint64_t)i, &hp) != 0 || !hp ||
            rd_u64(rd, ctx, hp + v[HS_HEAP_MEMORY] + v[HS_VS_LOW], &h->lo) != 0 ||
            rd_u64(rd, ctx, hp + v[HS_HEAP_MEMORY] + v[HS_VS_HIGH], &h->hi) != 0 ||
            rd_u64(rd, ctx, hp + v[HS_HEAP_SEGMAP] + v[HS_VS_LOW], &h->segmap) != 0 ||
            rd_i32(rd, ctx, hp + v[HS_HEAP_LOG2SEG], &sh) != 0)
            return -EFAULT;
        if (!h->lo || !h->segmap)
            return -EAGAIN;
        if (h->hi <= h->lo || h->lo < out->code_lo || h->hi > out->code_hi || sh < 4 || sh > 16 ||
            (i > 0 && sh != shift))
            return -EBADMSG;
        shift = sh;
    }
    if (rd_u64(rd, ctx, bias + v[HS_INTERP_CODE], &q) != 0)
        return -EFAULT;
    if (!q)
        return -EAGAIN;
    if (rd_u64(rd, ctx, q + v[HS_SQ_BUFFER], &buf) != 0 ||
        rd_i32(rd, ctx, q + v[HS_SQ_LIMIT], &limit) != 0)
        return -EFAULT;
    if (!buf || limit <= 0)
        return -EAGAIN;
    out->interp_lo = buf;
    out->interp_hi = buf + (uint64_t)limit;
    if (out->interp_lo < out->code_lo || out->interp_hi > out->code_hi)
        return -EBADMSG;
    out->nheaps = (uint8_t)len;
    out->segment_shift = (uint8_t)shift;
    /* the walker reads these from a blob header of STOKE_JVM_HDR bytes */
    if (v[HS_BLOB_NAME] > STOKE_JVM_HDR - 8 || v[HS_BLOB_FRAME_COMPLETE] > STOKE_JVM_HDR - 4 ||
        v[HS_BLOB_FRAME_SIZE] > STOKE_JVM_HDR - 4 || v[HS_BLOB_CODE_BEGIN] > STOKE_JVM_HDR - 8 ||
        v[HS_CM_DEOPT] > STOKE_JVM_HDR - 8 || v[HS_SIZE_HEAPBLOCK] > 255)
        return -EBADMSG;
    out->heapblock_size = (uint8_t)v[HS_SIZE_HEAPBLOCK];
    out->blob_name = (uint16_t)v[HS_BLOB_NAME];
    out->blob_frame_complete = (uint16_t)v[HS_BLOB_FRAME_COMPLETE];
    out->blob_frame_size = (uint16_t)v[HS_BLOB_FRAME_SIZE];
    out->blob_code_begin = (uint16_t)v[HS_BLOB_CODE_BEGIN];
    out->nm_deopt_handler = (uint16_t)v[HS_CM_DEOPT];
    out->nm_compile_id = (uint16_t)v[HS_NM_COMPILE_ID];
    out->nm_orig_pc_offset = (uint16_t)v[HS_NM_ORIG_PC];
    out->method_const = (uint16_t)v[HS_METHOD_CONST];
    out->const_size = (uint16_t)v[HS_SIZE_CONSTMETHOD];
    return 0;
}
