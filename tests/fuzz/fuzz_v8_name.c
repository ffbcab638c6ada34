/* SPDX-License-Identifier: Apache-2.0 */
/*
 * V8 functions named from untrusted process memory: the input is a memory
 * image at BASE (the rest of the address space unreadable), its first two
 * bytes say where in it the SharedFunctionInfo starts (in 8-byte units),
 * and the layout is node 20's (tests/data/v8/node-v20.fixture). Named
 * twice, in two generations (the second checks the cached entry again).
 * Must never read outside the image, loop, or leak.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "symbolizer/v8.h"

#define BASE 0x7f0000000000ull

struct image {
    const uint8_t *data;
    size_t len;
};

static int image_read(void *ctx, uint64_t addr, void *buf, size_t len)
{
    const struct image *im = ctx;

    if (addr < BASE || addr - BASE > im->len || len > im->len - (addr - BASE))
        return -EFAULT;
    memcpy(buf, im->data + (addr - BASE), len);
    return 0;
}

static const struct v8_layout node20 = {
    .version = V8_VERSION(11, 3, 244),
    .bpf = {.fp_context = -8,
            .fp_function = -16,
            .obj_map = 0,
            .map_type = 12,
            .func_shared = 24,
            .type_func_lo = 2066,
            .type_func_hi = 2083},
    .type_sfi = 262,
    .type_scope_info = 261,
    .type_script = 167,
    .type_fixed_array = 175,
    .first_nonstring = 128,
    .type_uncompiled_lo = 220,
    .type_uncompiled_hi = 223,
    .str_repr_mask = 7,
    .str_enc_mask = 8,
    .str_one_byte = 8,
    .str_seq = 0,
    .str_cons = 1,
    .str_thin = 5,
    .str_sliced = 3,
    .sfi_data = 8,
    .sfi_name = 16,
    .sfi_script = 32,
    .script_name = 16,
    .script_source = 8,
    .script_line_ends = 56,
    .str_length = 12,
    .seq_one_chars = 16,
    .seq_two_chars = 16,
    .cons_first = 16,
    .cons_second = 24,
    .thin_actual = 16,
    .sliced_parent = 16,
    .sliced_offset = 24,
    .fixed_length = 8,
    .fixed_data = 16,
    .uncompiled_name = 8,
    .uncompiled_start = 16,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct image im = {.data = data + 2, .len = size - 2};
    struct sym_v8mem mem = {.read = image_read, .ctx = &im};
    uint64_t sfi = BASE + 8 * (uint64_t)(data[0] | data[1] << 8);
    struct sym_v8cache *c = NULL;
    struct sym_v8name n;
    size_t bytes = 0;

    for (uint64_t gen = 1; gen <= 2; gen++)
        if (sym_v8_name(&c, &node20, &mem, gen, STOKE_V8_FRAME(sfi, 0), &n, &bytes) == 0 &&
            (!n.function || !n.function[0] || n.line < 0))
            abort(); /* a name is never empty, a line never negative */
    sym_v8cache_free(c);
    return 0;
}
