/* SPDX-License-Identifier: Apache-2.0 */
/*
 * capture — writes the fixture tests/unit/test_hotspot.c reads, from a
 * running JVM: for every compiled method (nmethod) of the classes named
 * by a prefix, its method's compressed line number table and its debug
 * information (PcDescs, scope data, the metadata's method names), as the
 * VM holds them in memory. tests/data/jvm/gen.sh builds and runs it.
 * Usage: capture PID LIBJVM_PATH CLASS_PREFIX
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "symbolizer/hotspot.h"
#include "symbolizer/proc_mem.h"

static uint32_t pid;

static uint64_t u64(uint64_t a)
{
    uint64_t v = 0;
    sym_proc_read(pid, a, &v, 8);
    return v;
}

static uint32_t u32(uint64_t a)
{
    uint32_t v = 0;
    sym_proc_read(pid, a, &v, 4);
    return v;
}

static uint16_t u16(uint64_t a)
{
    uint16_t v = 0;
    sym_proc_read(pid, a, &v, 2);
    return v;
}

static void symbol(const struct hs_vm *vm, uint64_t sym, char *out, size_t cap)
{
    uint16_t len = u16(sym + hs_get(vm, HS_SYMBOL_LENGTH));
    if (len >= cap)
        len = (uint16_t)(cap - 1);
    out[0] = '\0';
    if (sym && sym_proc_read(pid, sym + hs_get(vm, HS_SYMBOL_BODY), out, len) == 0)
        out[len] = '\0';
    for (char *c = out; *c; c++)
        if (*c == '/')
            *c = '.';
}

/* "Class.method" of a Method*, and its line table's address. */
static void method_name(const struct hs_vm *vm, uint64_t m, char *out, size_t cap, uint64_t *lt)
{
    uint64_t cm = u64(m + hs_get(vm, HS_METHOD_CONST)),
             cp = u64(cm + hs_get(vm, HS_CONST_CONSTANTS));
    char cls[256], name[256];
    symbol(vm, u64(u64(cp + hs_get(vm, HS_CP_HOLDER)) + hs_get(vm, HS_KLASS_NAME)), cls,
           sizeof(cls));
    uint16_t ni = u16(cm + hs_get(vm, HS_CONST_NAME));
    symbol(vm, u64(cp + hs_get(vm, HS_SIZE_CONSTANTPOOL) + 8ull * ni), name, sizeof(name));
    snprintf(out, cap, "%s.%s", cls, name);
    *lt = (u16(cm + hs_get(vm, HS_CONST_FLAGS)) & 1)
              ? cm + hs_get(vm, HS_SIZE_CONSTMETHOD) + u16(cm + hs_get(vm, HS_CONST_CODE_SIZE))
              : 0;
}

static void hex(const char *tag, uint64_t a, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    if (!b || sym_proc_read(pid, a, b, n) != 0)
        n = 0;
    printf("%s ", tag);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    printf("\n");
    free(b);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    pid = (uint32_t)atoi(argv[1]);
    elf_version(EV_CURRENT);
    int fd = open(argv[2], O_RDONLY);
    Elf *e = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    struct hs_syms sy;
    if (!e || hs_detect(e, &sy, false) != 0)
        return 1;
    /* the load bias: the first mapping of the file, at offset 0 */
    char path[64], line[512];
    uint64_t bias = 0;
    snprintf(path, sizeof(path), "/proc/%u/maps", pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strstr(line, argv[2]) && !bias)
            bias = strtoull(line, NULL, 16);
    if (f)
        fclose(f);
    struct hs_vm vm;
    struct jvm_proc jp;
    int missing;
    if (hs_read_vm(&sy, bias, sym_proc_read_cb, &pid, &vm, &missing) != 0 ||
        hs_read_proc(&vm, bias, sym_proc_read_cb, &pid, &jp) != 0)
        return 1;
    printf("jdk %u\n", vm.major);
    for (int h = 0; h < jp.nheaps; h++) {
        uint64_t lo = jp.heaps[h].lo, nseg = (jp.heaps[h].hi - lo) >> jp.segment_shift;
        for (uint64_t seg = 0; seg < nseg;) {
            uint64_t blk = lo + (seg << jp.segment_shift), len = u64(blk);
            uint8_t used = (uint8_t)u32(blk + 8);
            if (!len)
                break; /* past what the heap has used */
            seg += len;
            uint64_t blob = blk + jp.heapblock_size;
            char bname[16] = "", mname[512];
            sym_proc_read(pid, u64(blob + hs_get(&vm, HS_BLOB_NAME)), bname, 7);
            if (!used || strcmp(bname, "nmethod") != 0)
                continue;
            uint64_t lt, m = u64(blob + hs_get(&vm, HS_CM_METHOD));
            method_name(&vm, m, mname, sizeof(mname), &lt);
            if (strncmp(mname, argv[3], strlen(argv[3])) != 0)
                continue;
            uint64_t scopes = u64(blob + hs_get(&vm, HS_CM_SCOPES_DATA));
            uint64_t meta = blob + u32(blob + hs_get(&vm, HS_NM_METADATA));
            uint64_t pcs = blob + u32(blob + hs_get(&vm, HS_NM_SCOPES_PCS));
            uint64_t deps = blob + u32(blob + hs_get(&vm, HS_NM_DEPENDENCIES));
            printf("nmethod %s\n", mname);
            hex("scopes", scopes, pcs - scopes);
            for (uint64_t p = pcs; p < deps; p += hs_get(&vm, HS_SIZE_PCDESC))
                printf("pc %d %d\n", (int32_t)u32(p + hs_get(&vm, HS_PCDESC_PC)),
                       (int32_t)u32(p + hs_get(&vm, HS_PCDESC_SCOPE)));
            for (uint64_t k = 0; meta + 8 * k < scopes; k++) {
                uint64_t mk = u64(meta + 8 * k), lt2;
                char mn[512];
                method_name(&vm, mk, mn, sizeof(mn), &lt2);
                printf("meta %llu %s\n", (unsigned long long)k + 1, mn);
                if (strncmp(mn, argv[3], strlen(argv[3])) == 0 && lt2)
                    hex(mn, lt2, 64); /* a table is shorter: the test reads to its 0 */
            }
        }
    }
    return 0;
}
