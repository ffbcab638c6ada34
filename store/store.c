/* SPDX-License-Identifier: Apache-2.0 */
/* store: what a caller does with any store (store.h); store_open, which
 * picks the backend, is backend.c's. */
#include <stdlib.h>

#include "store/store.h"

void store_close(struct store *s)
{
    if (s)
        s->ops->free(s);
}

void store_list_free(struct store_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
    free(l->sizes);
    l->keys = NULL;
    l->sizes = NULL;
    l->n = 0;
}
