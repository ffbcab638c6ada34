/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for query/serve/connect.c's request decoders: the first byte
 * picks a Pyroscope request message and the codec (JSON or protobuf), the
 * rest is the body. A body decodes or fails with a message; a decoded
 * message re-encodes to JSON and decodes again, and frees cleanly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope/querier.pb-c.h"
#include "query/serve/connect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ProtobufCMessageDescriptor *msgs[] = {
        &querier__v1__profile_types_request__descriptor,
        &types__v1__label_names_request__descriptor,
        &types__v1__label_values_request__descriptor,
        &querier__v1__select_merge_stacktraces_request__descriptor,
        &querier__v1__select_merge_profile_request__descriptor,
        &querier__v1__select_series_request__descriptor,
        &querier__v1__diff_request__descriptor,
        &querier__v1__series_request__descriptor,
    };
    const size_t nmsgs = sizeof(msgs) / sizeof(msgs[0]);
    ProtobufCMessage *m = NULL, *again = NULL;
    char err[512] = "";

    if (size < 1 || size > 65536)
        return 0;
    const ProtobufCMessageDescriptor *d = msgs[(data[0] >> 1) % nmsgs];
    enum connect_codec codec = data[0] & 1 ? CONNECT_PROTO : CONNECT_JSON;
    int rc = connect_decode(codec, d, data + 1, size - 1, &m, err, sizeof(err));
    if (rc) {
        if (!err[0])
            abort(); /* every rejection names its problem */
        return 0;
    }
    struct wbuf b = {0};
    connect_json_encode(m, &b);
    if (!b.err) {
        if (connect_json_decode(d, b.p, b.len, &again, err, sizeof(err)))
            abort(); /* our own JSON must decode */
        protobuf_c_message_free_unpacked(again, NULL);
    }
    free(b.p);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
