/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the OTLP/gRPC exporter reads from the network (exporter/http_push.c,
 * grpc mode): header and trailer lines (grpc-status, grpc-message
 * percent-decoded, grpc-encoding, grpc-status-details-bin's RetryInfo),
 * the call's code from them and an HTTP status, and the response body (the 5-byte prefix, gzip,
 * then the ExportProfilesServiceResponse). The input is lines up to a NUL byte, then the body.
 * Checks what the sender relies on: a code in range or -1 only without an answer, a verdict for
 * every code, a message NUL-terminated and free of control characters, a RetryInfo's delay within
 * its cap (and none without one), a message within the body (or the allocated plain copy), rejected
 * >= 0. The body is also read as a google.rpc.Status of its own, base64'd as
 * grpc-status-details-bin would carry it (so the protobuf decoder sees any bytes, not only
 * base64's).
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/base64.h"
#include "common/grpc_frame.h"
#include "exporter/http_push.h"
#include "exporter/otlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t hlen = nul ? (size_t)(nul - data) : size;
    const uint8_t *body = nul ? nul + 1 : data + size;
    size_t blen = (size_t)(data + size - body);
    struct grpc_answer a;

    grpc_answer_init(&a);
    for (size_t i = 0; i < hlen;) {
        const uint8_t *nl = memchr(data + i, '\n', hlen - i);
        size_t n = nl ? (size_t)(nl - (data + i)) + 1 : hlen - i;
        grpc_answer_header(&a, (const char *)data + i, n);
        i += n;
    }
    assert(memchr(a.message, '\0', sizeof(a.message)) != NULL);
    for (size_t i = 0; a.message[i]; i++)
        assert((unsigned char)a.message[i] >= 0x20 && a.message[i] != 0x7f);
    long status = size >= 2 ? (long)(data[size - 1] | data[size - 2] << 8) % 600 : 200;
    int code = grpc_answer_code(&a, status);
    assert(code >= -1 && code <= 999);
    assert(code != -1 || (a.code < 0 && status == 0));
    assert(a.retry_ms <= 60000 && (a.retry_info || a.retry_ms == 0));
    enum push_verdict v = grpc_push_classify(code, a.retry_info);
    assert(v == PUSH_DONE || v == PUSH_RETRY || v == PUSH_DROP);
    assert((v == PUSH_DONE) == (code == 0));

    if (blen <= GRPC_DETAILS_MAX / 4 * 3) {
        struct wbuf b64 = {0};
        unsigned ms = 12345;
        base64_encode(&b64, body, blen);
        if (!b64.err) {
            int rc = grpc_status_retry_ms(b64.s ? b64.s : "", b64.len, 1500, &ms);
            assert(rc == 0 || rc == -ENOENT || rc == -EBADMSG);
            assert(ms <= 1500 && (rc == 0 || ms == 0));
        }
        wb_free(&b64);
    }

    const uint8_t *msg;
    size_t len;
    uint8_t *plain;
    if (grpc_answer_message(&a, body, blen, &msg, &len, &plain) == 0) {
        if (plain)
            assert(msg == plain && len <= 64 * 1024);
        else
            assert(msg >= body && msg + len <= body + blen);
        int64_t rejected = -1;
        char m[64];
        if (otlp_response_parse(msg, len, &rejected, m, sizeof(m)) == 0)
            assert(rejected >= 0);
        free(plain);
    } else {
        assert(plain == NULL);
    }
    return 0;
}
