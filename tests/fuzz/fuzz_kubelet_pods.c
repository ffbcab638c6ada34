/* SPDX-License-Identifier: Apache-2.0 */
/* The kubelet's /pods answer (agent/kubelet.c): bytes from the network.
 * Checks what procinfo relies on: every pod has a uid, name and namespace
 * within bounds, every container id is 64 lower-case hex digits pointing
 * at a pod of the list, every pod gives labels and a "<ns>/<app>" name,
 * and nothing is returned on error. */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/kubelet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kube_pods *p = (struct kube_pods *)1;
    char err[256];
    int rc = kube_pods_parse((const char *)data, size, &p, err, sizeof(err));

    if (rc) {
        assert(p == NULL && (rc == -EINVAL || rc == -ENOMEM) && err[0]);
        return 0;
    }
    assert(p->npods <= KUBE_MAX_PODS);
    for (size_t i = 0; i < p->npods; i++) {
        const struct kube_pod *d = &p->pods[i];
        assert(strlen(d->uid) <= KUBE_MAX_VALUE && strlen(d->name) <= KUBE_MAX_VALUE &&
               strlen(d->ns) <= KUBE_MAX_VALUE && d->nlabels <= KUBE_MAX_POD_LABELS);
        struct label_set ls = {0};
        char *svc = NULL;
        const char *cn;
        assert(kube_pod_labels(d, NULL, &ls, &svc) == 0);
        assert(!d->app || (svc && strchr(svc, '/')));
        assert(kube_pods_find(p, NULL, d->uid, &cn) != NULL);
        free(svc);
        label_set_clear(&ls);
    }
    for (size_t i = 0; i < p->nctrs; i++) {
        assert(strlen(p->ctrs[i].id) == 64 && p->ctrs[i].pod < p->npods);
        for (size_t j = 0; j < 64; j++)
            assert(strchr("0123456789abcdef", p->ctrs[i].id[j]));
    }
    kube_pods_free(p);
    return 0;
}
