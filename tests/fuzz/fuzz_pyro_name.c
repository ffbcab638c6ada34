/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pyroscope's name=app{k=v,...} (ingest/pyroscope_ingest.c): any text.
 * What is accepted has a non-empty service, service_name first, and label
 * names of [A-Za-z_][A-Za-z0-9_]*.
 */
#include <stdlib.h>
#include <string.h>

#include "ingest/pyroscope_ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ingest_batch b = {0};
    struct seg_label labels[PYRO_MAX_LABELS + 1];
    const char *service = NULL;
    size_t n = 0;
    char err[256];
    char *name = malloc(size + 1);

    if (!name)
        return 0;
    memcpy(name, data, size);
    name[size] = '\0';
    if (pyro_parse_name(&b, name, &service, labels, &n, err, sizeof(err)) == 0) {
        if (!service || !service[0] || n == 0 || n > PYRO_MAX_LABELS ||
            strcmp(labels[0].name, "service_name") || strcmp(labels[0].value, service))
            abort();
        for (size_t i = 1; i < n; i++)
            if (strspn(labels[i].name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
                                       "0123456789") != strlen(labels[i].name))
                abort();
    }
    free(name);
    ingest_batch_free(&b);
    return 0;
}
