/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hotspot — what the walker and the symbolizer need to know about a HotSpot
 * JVM, read from the VM's own introspection tables.
 *
 * Owns: the detection of libjvm.so (it exports gHotSpotVMStructs and
 * gHotSpotVMTypes, the tables the Serviceability Agent reads: every field
 * offset, type size and static address the VM publishes), the reading of
 * those tables from a live process into struct hs_vm (once per libjvm
 * build: offsets and sizes are the build's, statics are kept as ELF
 * vaddrs), and of one process's code cache (its code heaps, segment maps
 * and the template interpreter) into the walker's struct jvm_proc.
 *
 * The tables describe the JVM's C++ classes by name, so one reader serves
 * JDK 11 to 22 (the fields a version renamed are looked up under each of
 * their names). JDK 23 moved code blob fields to offsets and split nmethod
 * data out; those builds are refused (-ENOTSUP). Everything read comes
 * from the profiled process and is untrusted: sizes, offsets and counts
 * are bounded, strings capped, a table without its end marker rejected.
 */
#ifndef STOKE_UNWIND_HOTSPOT_H
#define STOKE_UNWIND_HOTSPOT_H

#include <libelf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>
#include "bpf/profile.h"

/* The symbols of the introspection tables (ELF vaddrs of libjvm.so). The
 * first two hold pointers to the arrays; the others are variables holding
 * an entry's stride and its members' offsets. */
struct hs_syms {
    uint64_t structs, s_stride, s_type, s_field, s_static, s_offset, s_address;
    uint64_t types, t_stride, t_type, t_size;
};

/* Looks for the tables' symbols in @elf's .dynsym. 0, or -ENOENT when
 * @elf is not a libjvm. @mapped as for uw_elf_syms. */
int hs_detect(Elf *elf, struct hs_syms *out, bool mapped);

/* What the reader needs from the VM, by name. */
enum hs_field {
    /* type sizes */
    HS_SIZE_CONSTMETHOD,
    HS_SIZE_CONSTANTPOOL,
    HS_SIZE_HEAPBLOCK,
    HS_SIZE_PCDESC,
    HS_SIZE_NMETHOD,
    /* field offsets */
    HS_BLOB_NAME,
    HS_BLOB_SIZE,
    HS_BLOB_FRAME_COMPLETE,
    HS_BLOB_FRAME_SIZE,
    HS_BLOB_CODE_BEGIN,
    HS_BLOB_CODE_END,
    HS_CM_METHOD,
    HS_CM_SCOPES_DATA,
    HS_CM_DEOPT,
    HS_NM_COMPILE_ID,
    HS_NM_ORIG_PC,
    HS_NM_METADATA,
    HS_NM_SCOPES_PCS,
    HS_NM_DEPENDENCIES,
    HS_METHOD_CONST,
    HS_CONST_CONSTANTS,
    HS_CONST_FLAGS,
    HS_CONST_CODE_SIZE,
    HS_CONST_NAME,
    HS_CONST_SIGNATURE,
    HS_CP_HOLDER,
    HS_CP_SOURCE_FILE, /* JDK 15+ (ConstantPool), before on InstanceKlass */
    HS_IK_SOURCE_FILE,
    HS_KLASS_NAME,
    HS_SYMBOL_LENGTH, /* u2 _length, or JDK 11's u4 _length_and_refcount */
    HS_SYMBOL_LENREF,
    HS_SYMBOL_BODY,
    HS_PCDESC_PC,
    HS_PCDESC_SCOPE,
    HS_HEAP_MEMORY,
    HS_HEAP_SEGMAP,
    HS_HEAP_LOG2SEG,
    HS_VS_LOW,
    HS_VS_HIGH,
    HS_GA_LEN,
    HS_GA_DATA,
    HS_SQ_BUFFER,
    HS_SQ_LIMIT,
    /* statics: ELF vaddrs in libjvm.so */
    HS_CC_HEAPS,
    HS_CC_LOW,
    HS_CC_HIGH,
    HS_INTERP_CODE,
    HS_VM_MAJOR,
    HS_NFIELDS,
};

/* One libjvm build, as its tables describe it. */
struct hs_vm {
    uint64_t v[HS_NFIELDS];
    uint64_t found;       /* bit per enum hs_field */
    unsigned major;       /* the JDK's feature version (11, 17, 21, ...) */
    unsigned u5_excluded; /* UNSIGNED5's excluded bytes: 1 from JDK 20, else 0 */
};

static inline uint64_t hs_get(const struct hs_vm *vm, enum hs_field f)
{
    return vm->v[f];
}

static inline int hs_has(const struct hs_vm *vm, enum hs_field f)
{
    return (int)((vm->found >> f) & 1);
}

/* Reads @len bytes of the process at @addr: 0, or a negative errno. */
typedef int (*hs_read_fn)(void *ctx, uint64_t addr, void *buf, size_t len);

/*
 * Reads the introspection tables of the libjvm.so loaded at @bias
 * (address - ELF vaddr) in a process, through @rd. Returns 0, -ENOTSUP for
 * a VM whose tables lack what the reader needs (*@missing: the first field
 * not found, or HS_NFIELDS for a version the reader refuses), -EFAULT when
 * the tables cannot be read, -EBADMSG when they make no sense.
 */
int hs_read_vm(const struct hs_syms *sy, uint64_t bias, hs_read_fn rd, void *ctx, struct hs_vm *out,
               int *missing);

/*
 * Reads one process's code cache: the code heaps with their segment maps,
 * the bounds of the cache and of the template interpreter, into @out with
 * the offsets the walker needs. 0, -EAGAIN when the VM has not set up its
 * code cache yet (a JVM starting), -EFAULT or -EBADMSG.
 */
int hs_read_proc(const struct hs_vm *vm, uint64_t bias, hs_read_fn rd, void *ctx,
                 struct jvm_proc *out);

/* The name of a field for messages: "CodeBlob._name", ...; @buf returned. */
const char *hs_field_name(int f, char *buf, size_t len);

#endif
