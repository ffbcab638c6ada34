/* SPDX-License-Identifier: Apache-2.0 */
#include "query/serve/debuginfo_api.h"

#include <errno.h>
#include <string.h>

#include "query/engine/plan.h"

bool debuginfo_path(const char *path)
{
    return strncmp(path, DEBUGINFO_PATH, strlen(DEBUGINFO_PATH)) == 0;
}

void debuginfo_route(const struct debuginfo_api *a, const char *method, const char *path,
                     const struct http_params *p, const uint8_t *body, size_t len,
                     struct http_response *out)
{
    const char *want = path + strlen(DEBUGINFO_PATH);
    const char *tenant = p && p->get(p->ctx, "tenant") ? p->get(p->ctx, "tenant") : a->tenant;
    char bid[41], err[512];
    bool existed;

    if (strcmp(method, "POST") != 0) {
        http_error_json(out, 405, "%s: method %s not allowed (use POST)", DEBUGINFO_PATH, method);
        return;
    }
    if (!dsym_build_id_valid(want)) {
        http_error_json(out, 400,
                        "build-id: '%.80s' is not a build-id (2 to 40 lowercase hex digits)", want);
        return;
    }
    if (!plan_tenant_valid(tenant)) {
        http_error_json(
            out, 400, "tenant: '%.64s' is not a valid tenant name ([A-Za-z0-9._-]{1,64})", tenant);
        return;
    }
    int rc = dsym_upload(a->store, tenant, body, len, want, a->max_bytes, bid, &existed, err,
                         sizeof(err));
    if (rc) {
        int status = rc == -EFBIG                       ? 413
                     : rc == -EXDEV                     ? 409
                     : rc == -ENOEXEC || rc == -ENODATA ? 400
                                                        : 500;
        http_error_json(out, status, "debug file: %s", err);
        return;
    }
    dsym_forget(a->dsym, tenant, bid);
    struct wbuf b = {0};
    wb_printf(&b, "{\"build_id\":\"%s\",\"tenant\":", bid);
    wb_json_str(&b, tenant);
    wb_printf(&b, ",\"status\":\"%s\",\"bytes\":%zu}\n", existed ? "exists" : "uploaded", len);
    http_respond(out, existed ? 200 : 201, "application/json", &b);
}
