/* SPDX-License-Identifier: MIT */
/* libFuzzer target: usbredir framing must not depend on how the bytes are
 * cut: the whole input and the same input in random pieces give the same
 * packets, the same error, the same state. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usbredir_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A small xorshift: the cuts follow from the input, so a crash replays. */
static uint32_t next_cut(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void same(const struct usbredir_stream *a,
                 const struct usbredir_stream *b)
{
    if (a->packets != b->packets || a->error != b->error ||
        a->remaining != b->remaining || a->header_have != b->header_have ||
        a->in_hello != b->in_hello || a->peer_64bit_ids != b->peer_64bit_ids)
        abort();
}

/* Bytes 0-3: the seed of the cuts; the rest: the stream. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct usbredir_stream whole, pieces, bytewise;
    uint32_t seed = 1;

    if (size < 4)
        return 0;
    memcpy(&seed, data, 4);
    seed |= 1;
    data += 4;
    size -= 4;
    usbredir_stream_init(&whole);
    usbredir_stream_init(&pieces);
    usbredir_stream_init(&bytewise);
    int rc = usbredir_stream_feed(&whole, data, size);
    int rc_pieces = 0;
    for (size_t off = 0; off < size;) {
        size_t n = next_cut(&seed) % 97 + 1;
        n = n < size - off ? n : size - off;
        if (usbredir_stream_feed(&pieces, data + off, n) < 0)
            rc_pieces = -1;
        off += n;
    }
    for (size_t i = 0; i < size && size < 4096; i++)
        usbredir_stream_feed(&bytewise, data + i, 1);
    if (rc != rc_pieces)
        abort();
    same(&whole, &pieces);
    if (size < 4096)
        same(&whole, &bytewise);
    return 0;
}
