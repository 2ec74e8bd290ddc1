/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the lz4 frame decoder, fed whole and in pieces; what
 * it decodes must encode and decode back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "stream_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
    uint8_t *buf;
    size_t len;
};

static int deliver(void *ctx, const uint8_t *data, size_t len)
{
    struct out *o = ctx;
    uint8_t *grown = realloc(o->buf, o->len + len);
    if (!grown)
        abort();
    memcpy(grown + o->len, data, len);
    o->buf = grown;
    o->len += len;
    return 0;
}

struct loop { /* encoder output straight into a decoder */
    struct codec_decoder d;
    struct out o;
};

static void emit(void *ctx, uint8_t *frame, size_t len)
{
    struct loop *l = ctx;
    if (codec_decode(&l->d, frame, len, deliver, &l->o) < 0)
        abort();
    free(frame);
}

static int decode(const uint8_t *data, size_t size, size_t step, struct out *o,
                  const char **error)
{
    struct codec_decoder d;
    int rc = 0;

    codec_decoder_init(&d);
    for (size_t off = 0; off < size && rc == 0; off += step) {
        size_t n = size - off < step ? size - off : step;
        rc = codec_decode(&d, data + off, n, deliver, o);
    }
    *error = d.error;
    codec_decoder_free(&d);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct out whole = {0}, split = {0};
    const char *e1, *e2;
    int r1 = decode(data, size, size ? size : 1, &whole, &e1);
    int r2 = decode(data, size, 7, &split, &e2);

    /* The split never changes the verdict or the bytes. */
    if (r1 != r2 || (e1 == NULL) != (e2 == NULL) || whole.len != split.len ||
        (whole.len && memcmp(whole.buf, split.buf, whole.len) != 0))
        abort();
    /* No frame expands beyond the limits. */
    if (whole.len > (size / CODEC_RAW_HEADER + 1) * CODEC_MAX_CHUNK)
        abort();
    /* Re-encoding what was decoded round-trips. */
    struct codec_encoder e;
    struct loop l = {.o = {0}};
    codec_encoder_init(&e);
    codec_decoder_init(&l.d);
    if (codec_encode(&e, whole.buf, whole.len, size & 1, emit, &l) < 0)
        abort();
    if (l.o.len != whole.len ||
        (whole.len && memcmp(l.o.buf, whole.buf, whole.len) != 0))
        abort();
    codec_decoder_free(&l.d);
    free(l.o.buf);
    free(whole.buf);
    free(split.buf);
    return 0;
}
