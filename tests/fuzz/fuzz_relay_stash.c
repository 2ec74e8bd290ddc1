/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the relay's stash between an agent's lz4 stream and a
 * chardev that takes bytes only now and then. Whatever the cuts of the
 * reads and the moments the chardev is full, what reaches the chardev is
 * exactly what the agent framed, and the stash never holds more than one
 * read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_stash.h"
#include "stream_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define READ_MAX (64 * 1024) /* what one socket read brings at most */

struct chardev {
    uint8_t *got;
    size_t len, cap;
    uint32_t rng;      /* decides when it is full */
    unsigned full_per; /* full about one call in full_per */
};

static uint32_t next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int deliver(void *ctx, const uint8_t *d, size_t n)
{
    struct chardev *c = ctx;
    if (c->len + n > c->cap)
        abort(); /* more out than went in */
    memcpy(c->got + c->len, d, n);
    c->len += n;
    return 0;
}

/* The relay's way: decoded lz4 blocks given away whole. */
static int take(void *ctx, uint8_t *block, size_t n)
{
    int rc = deliver(ctx, block, n);
    free(block);
    return rc;
}

static bool full(void *ctx)
{
    struct chardev *c = ctx;
    return next(&c->rng) % c->full_per == 0;
}

/* The agent's side: frames of the input, as one byte stream. */
struct wire {
    uint8_t *b;
    size_t len, cap;
};

static void emit(void *ctx, uint8_t *frame, size_t n)
{
    struct wire *w = ctx;
    if (w->len + n <= w->cap) {
        memcpy(w->b + w->len, frame, n);
        w->len += n;
    }
    free(frame);
}

/* Byte 0: how often the chardev is full; byte 1: compress or not (bit 0),
 * lz4 blocks given away or delivered in place (bit 1); then the payload
 * the agent frames. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct codec_encoder enc;
    struct codec_decoder dec;
    struct relay_stash st = {0};
    struct wire w;
    struct chardev c = {.rng = 0x9e3779b9};

    if (size < 2)
        return 0;
    c.full_per = (unsigned)(data[0] % 8) + 2;
    bool compress = data[1] & 1;
    struct codec_sink sink = {deliver, full, &c, data[1] & 2 ? take : NULL};
    data += 2;
    size -= 2;
    w.cap = size * 2 + 64;
    w.b = malloc(w.cap);
    w.len = 0;
    c.cap = size;
    c.got = malloc(size + 1);
    codec_encoder_init(&enc);
    codec_decoder_init(&dec);
    codec_encode(&enc, data, size, compress, emit, &w);
    for (size_t off = 0; off < w.len;) {
        size_t n = next(&c.rng) % READ_MAX + 1;
        n = n < w.len - off ? n : w.len - off;
        enum relay_stash_result rc =
            relay_stash_feed(&st, &dec, w.b + off, n, &sink);
        off += n;
        while (rc == RELAY_STASH_KEPT) { /* reading stays off until drained */
            if (st.len - st.off > READ_MAX)
                abort();
            rc = relay_stash_resume(&st, &dec, &sink);
        }
        if (rc == RELAY_STASH_ERROR)
            abort(); /* our own frames are never corrupt */
    }
    if (c.len != size || memcmp(c.got, data, size) != 0)
        abort();
    relay_stash_free(&st);
    codec_decoder_free(&dec);
    codec_encoder_free(&enc);
    free(w.b);
    free(c.got);
    return 0;
}
