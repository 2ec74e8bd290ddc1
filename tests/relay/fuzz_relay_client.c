/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the agent side of the relay handshake fed anything,
 * whole and byte by byte, must agree and never overrun. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t secret[] = "fuzzing-secret-0123456789";

static int run(const uint8_t *data, size_t size, size_t step, size_t *total,
               struct relay_client *c)
{
    int rc = RELAY_HS_NEED_MORE;

    relay_client_init(c, "fuzz-agent", "vm1", secret, sizeof(secret) - 1,
                      size & 1);
    *total = 0;
    for (size_t off = 0; off < size && rc == RELAY_HS_NEED_MORE;) {
        size_t n = size - off < step ? size - off : step, used;
        rc = relay_client_feed(c, data + off, n, &used);
        if (used > n || c->out_len > RELAY_MSG_MAX)
            abort();
        relay_client_output_sent(c);
        *total += used;
        off += n;
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct relay_client a, b;
    size_t used_a, used_b;
    int ra = run(data, size, size ? size : 1, &used_a, &a);
    int rb = run(data, size, 1, &used_b, &b);

    if (ra != rb)
        abort();
    if (ra == RELAY_HS_DONE && (used_a != used_b || a.lz4 != b.lz4))
        abort();
    if (ra == RELAY_HS_REFUSED &&
        (strcmp(a.reason, b.reason) != 0 || strlen(a.reason) == 0))
        abort();
    relay_client_free(&a);
    relay_client_free(&b);
    return 0;
}
