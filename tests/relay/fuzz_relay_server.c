/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the relay side of the handshake fed anything, whole
 * and byte by byte: same verdict, a refusal always queued, fields
 * always within their sets. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run(const uint8_t *data, size_t size, size_t step,
               struct relay_server *s)
{
    int rc = RELAY_HS_NEED_MORE;

    if (relay_server_init(s, RELAY_CAP_LZ4) < 0)
        abort();
    relay_server_output_sent(s);
    for (size_t off = 0; off < size && rc == RELAY_HS_NEED_MORE;) {
        size_t n = size - off < step ? size - off : step, used;
        rc = relay_server_feed(s, data + off, n, &used);
        if (used > n)
            abort();
        off += n;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t secret[] = "fuzzing-secret-0123456789";
    struct relay_server a, b;
    int ra = run(data, size, size ? size : 1, &a);
    int rb = run(data, size, 1, &b);

    if (ra != rb)
        abort();
    if (ra == RELAY_HS_ERROR && (a.out_len == 0 || a.status != b.status))
        abort();
    if (ra == RELAY_HS_AUTH) {
        if (strcmp(a.agent_id, b.agent_id) || strcmp(a.target, b.target) ||
            !a.agent_id[0] || !a.target[0])
            abort();
        /* the nonce is random: no fuzzed MAC can be right */
        if (relay_server_verify(&a, secret, sizeof(secret) - 1))
            abort();
        relay_server_result(&a, RELAY_OK, NULL);
        if (a.caps & ~(uint32_t)RELAY_CAP_LZ4)
            abort();
    }
    return 0;
}
