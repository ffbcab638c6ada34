/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzzes relabel rule parsing and application. Input lines: "R <spec>" adds
 * a rule, "name=value" adds a label; then the rules are applied and the
 * result checked (sorted, unique names), and the limiter run over it.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/label_limiter.h"
#include "common/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct relabel_rules *r;
    struct label_set ls = {0};
    struct label_limiter *l;
    char err[128];
    char *buf, *save = NULL;
    int nrules = 0;

    /* glibc regcomp is exponential on some patterns: keep inputs small so
     * the fuzzer explores the parser, not the regex engine. */
    if (size > 512)
        return 0;
    buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    r = relabel_rules_new();
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == 'R' && line[1] == ' ') {
            if (nrules++ >= 8)
                continue;
            int rc = relabel_rules_add(r, line + 2, err, sizeof(err));
            if (rc != 0 && (rc != -EINVAL || strnlen(err, sizeof(err)) == 0))
                abort();
        } else {
            char *eq = strchr(line, '=');
            if (eq) {
                *eq = '\0';
                label_set_put(&ls, line, eq + 1);
            }
        }
    }
    relabel_apply(r, &ls);
    for (size_t i = 1; i < ls.n; i++)
        if (strcmp(ls.v[i - 1].name, ls.v[i].name) >= 0)
            abort();
    l = label_limiter_new(2);
    label_limiter_apply(l, &ls);
    label_limiter_free(l);
    label_set_clear(&ls);
    relabel_rules_free(r);
    free(buf);
    return 0;
}
