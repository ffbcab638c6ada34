/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "common/intern.h"
#include "query/engine/footers.h"
#include "query/engine/selector.h"

static const struct seg_label_summary *summary_of(const struct seg_section_info *si,
                                                  const char *name)
{
    for (size_t i = 0; i < si->nlabels; i++)
        if (strcmp(si->labels[i].name, name) == 0)
            return &si->labels[i];
    return NULL;
}

/* Does the summary of @name hold nothing but @value (or is it absent)? */
static bool only_value(const struct seg_section_info *si, const char *name, const char *value)
{
    const struct seg_label_summary *l = summary_of(si, name);
    if (!l)
        return true;
    if (l->values_truncated || !value)
        return false;
    for (size_t i = 0; i < l->nvalues; i++)
        if (strcmp(l->values[i], value) != 0)
            return false;
    return true;
}

/* Are @name's values read from the answer (or only that it exists)? */
static bool wanted(const struct query *q, const char *name)
{
    return !q->labels_of || (q->labels_of[0] && strcmp(q->labels_of, name) == 0);
}

static int add_pair(struct mprof *res, const char *name, const char *value)
{
    uint32_t a = intern_strn(&res->str, name, strlen(name));
    uint32_t b = intern_strn(&res->str, value, strlen(value));
    return a == MPROF_NONE || b == MPROF_NONE || mprof_pair(res, a, b) ? -ENOMEM : 0;
}

int footers_labels(const struct plan *plan, const struct query *q, struct mprof *res)
{
    if (q->mode != Q_LABELS)
        return -EAGAIN;
    for (size_t i = 0; q->sel && i < q->sel->n; i++)
        if (strcmp(q->sel->m[i].name, "service_name") != 0)
            return -EAGAIN;
    /* Pass 1: can every section's summary answer? */
    for (size_t i = 0; i < plan->n; i++) {
        const struct seg_section_info *si = plan->items[i].info;
        for (size_t k = 0; k < si->nlabels; k++)
            if (si->labels[k].values_truncated && wanted(q, si->labels[k].name))
                return -EAGAIN;
        if (!only_value(si, "service_name", si->service) ||
            !only_value(si, "host_name", plan->items[i].host))
            return -EAGAIN;
    }
    /* Pass 2: the pairs of the sections whose service matches. */
    for (size_t i = 0; i < plan->n; i++) {
        const struct seg_section_info *si = plan->items[i].info;
        const char *host = plan->items[i].host;
        const char *sn[1] = {"service_name"}, *sv[1] = {si->service};
        if (si->nsamples == 0 || (q->sel && !selector_match_labels(q->sel, sn, sv, 1)))
            continue;
        int rc = 0;
        for (size_t k = 0; !rc && k < si->nlabels; k++)
            for (size_t v = 0; !rc && v < si->labels[k].nvalues; v++)
                if (si->labels[k].values[v][0] && (wanted(q, si->labels[k].name) || v == 0))
                    rc = add_pair(res, si->labels[k].name, si->labels[k].values[v]);
        if (!rc && si->service && si->service[0])
            rc = add_pair(res, "service_name", si->service);
        if (!rc && host && host[0])
            rc = add_pair(res, "host_name", host);
        if (rc)
            return rc;
    }
    return 0;
}
