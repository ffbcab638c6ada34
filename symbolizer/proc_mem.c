/* SPDX-License-Identifier: Apache-2.0 */
/* proc_mem — another process's memory. See proc_mem.h. */
#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "symbolizer/proc_mem.h"

int sym_proc_read(uint32_t pid, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = {.iov_base = buf, .iov_len = len};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
    ssize_t n = process_vm_readv((pid_t)pid, &local, 1, &remote, 1, 0);

    if (n == (ssize_t)len)
        return 0;
    return n < 0 && errno == ESRCH ? -ESRCH : -EFAULT;
}

int sym_proc_read_cb(void *ctx, uint64_t addr, void *buf, size_t len)
{
    return sym_proc_read(*(const uint32_t *)ctx, addr, buf, len);
}
