/* SPDX-License-Identifier: MIT */
/* The lz4 transport's framing: a byte stream cut into raw or LZ4 frames. */
#include "stream_codec.h"

#include <lz4.h>
#include <stdlib.h>
#include <string.h>

/*
 * Independent blocks, not LZ4 streaming. Measured with bench/lz4 (see its
 * README): keeping history across frames (LZ4_compress_fast_continue)
 * would cut the wire by 9 % on text and 1.4 % on a filesystem image
 * when data comes in 64 KiB calls, the size bulk transfers come in (12 to
 * 30 % in 4 KiB calls). But every frame would then depend on the 64 KiB
 * before it: the encoder must keep its input in a ring buffer next to its
 * LZ4_stream_t, and the decoder must keep the last 64 KiB it produced
 * (LZ4_decompress_safe_continue) -- about 300 KiB per session and
 * direction pair for as long as the session lives, against nothing
 * between frames here (a relay session takes ~3 KiB). With thousands of
 * sessions on one relay that is not worth a few percent; a streaming mode
 * could come later as another handshake capability.
 */

/* Backoff on data that does not compress (compressed files, encrypted
 * volumes). Trying is cheap on 64 KiB chunks (LZ4 gives up early) but
 * costs ~0.4 s of CPU per GiB in 4 KiB calls; backing off too eagerly
 * loses compression on mixed data (a filesystem image in 4 KiB calls:
 * 28 % more bytes with 4 misses / 256 KiB..16 MiB, 4 % with these). After
 * this many misses in a row stop trying for a while, then probe once;
 * each failed probe doubles the pause. */
#define BACKOFF_AFTER_MISSES 32
#define BACKOFF_MIN_BYTES (64u * 1024)
#define BACKOFF_MAX_BYTES (512u * 1024)

static void put_u24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
}

static uint32_t get_u24(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

void codec_encoder_init(struct codec_encoder *e)
{
    memset(e, 0, sizeof(*e));
    e->backoff_bytes = BACKOFF_MIN_BYTES;
}

void codec_encoder_free(struct codec_encoder *e) { (void)e; }

/* True while backing off; counts len against the pause. */
static bool encoder_backing_off(struct codec_encoder *e, size_t len)
{
    if (e->skip_bytes == 0)
        return false;
    e->skip_bytes -= len < e->skip_bytes ? len : e->skip_bytes;
    return true;
}

static void encoder_note(struct codec_encoder *e, bool compressed)
{
    if (compressed) {
        e->misses = 0;
        e->backoff_bytes = BACKOFF_MIN_BYTES;
        return;
    }
    if (++e->misses < BACKOFF_AFTER_MISSES)
        return;
    e->skip_bytes = e->backoff_bytes;
    e->backoff_bytes *= 2;
    if (e->backoff_bytes > BACKOFF_MAX_BYTES)
        e->backoff_bytes = BACKOFF_MAX_BYTES;
    e->misses = BACKOFF_AFTER_MISSES - 1; /* the probe after it decides */
}

/* Compresses len bytes into frame (CODEC_LZ4_HEADER + len bytes); returns
 * the frame length, or 0 when the lz4 frame would not be smaller. */
static size_t encode_lz4(const uint8_t *data, size_t len, uint8_t *frame)
{
    /* Smaller than the raw frame or not at all: LZ4 gives up as soon as it
     * would exceed this, which also makes failing cheap. */
    int room = (int)len - (CODEC_LZ4_HEADER - CODEC_RAW_HEADER) - 1;
    int n = LZ4_compress_default(
        (const char *)data, (char *)frame + CODEC_LZ4_HEADER, (int)len, room);
    if (n <= 0)
        return 0;
    frame[0] = CODEC_KIND_LZ4;
    put_u24(frame + 1, (uint32_t)n);
    put_u24(frame + 4, (uint32_t)len);
    return CODEC_LZ4_HEADER + (size_t)n;
}

/* One chunk (1..CODEC_MAX_CHUNK bytes) into one malloc'ed frame. */
static uint8_t *encode_chunk(struct codec_encoder *e, const uint8_t *data,
                             size_t len, bool compress, size_t *frame_len)
{
    uint8_t *frame = malloc(CODEC_LZ4_HEADER + len); /* fits either kind */
    size_t n = 0;

    if (!frame)
        return NULL;
    if (compress && len >= CODEC_COMPRESS_MIN && !encoder_backing_off(e, len)) {
        n = encode_lz4(data, len, frame);
        encoder_note(e, n > 0);
    }
    if (n > 0) {
        e->frames_lz4++;
    } else {
        frame[0] = CODEC_KIND_RAW;
        put_u24(frame + 1, (uint32_t)len);
        memcpy(frame + CODEC_RAW_HEADER, data, len);
        n = CODEC_RAW_HEADER + len;
        e->frames_raw++;
    }
    *frame_len = n;
    return frame;
}

int codec_encode(struct codec_encoder *e, const uint8_t *data, size_t len,
                 bool compress,
                 void (*emit)(void *ctx, uint8_t *frame, size_t frame_len),
                 void *ctx)
{
    while (len > 0) {
        size_t chunk = len < CODEC_MAX_CHUNK ? len : CODEC_MAX_CHUNK;
        size_t frame_len;
        uint8_t *frame = encode_chunk(e, data, chunk, compress, &frame_len);

        if (!frame)
            return -1;
        e->bytes_in += chunk;
        e->bytes_out += frame_len;
        emit(ctx, frame, frame_len);
        data += chunk;
        len -= chunk;
    }
    return 0;
}

void codec_decoder_init(struct codec_decoder *d) { memset(d, 0, sizeof(*d)); }

void codec_decoder_free(struct codec_decoder *d)
{
    free(d->frame);
    d->frame = NULL;
}

static size_t decoder_header_len(const struct codec_decoder *d)
{
    if (d->header_have == 0)
        return 1; /* the kind byte decides */
    return d->header[0] == CODEC_KIND_LZ4 ? CODEC_LZ4_HEADER : CODEC_RAW_HEADER;
}

/* Checks a complete header; the limits hold before anything is
 * allocated for the frame. */
static int decoder_check_header(struct codec_decoder *d)
{
    d->payload_len = get_u24(d->header + 1);
    d->payload_have = 0;
    if (d->payload_len == 0) {
        d->error = "empty frame";
        return -1;
    }
    if (d->payload_len > CODEC_MAX_CHUNK) {
        d->error = "frame longer than the 64 KiB limit";
        return -1;
    }
    if (d->header[0] == CODEC_KIND_RAW)
        return 0;
    d->orig_len = get_u24(d->header + 4);
    if (d->orig_len > CODEC_MAX_CHUNK) {
        d->error = "lz4 frame decodes to more than the 64 KiB limit";
        return -1;
    }
    if (d->payload_len >= d->orig_len) {
        d->error = "lz4 frame not smaller than what it encodes";
        return -1;
    }
    return 0;
}

static size_t decode_header(struct codec_decoder *d, const uint8_t *data,
                            size_t len)
{
    size_t used = 0;

    while (used < len && d->header_have < decoder_header_len(d)) {
        d->header[d->header_have++] = data[used++];
        if (d->header_have == 1 && d->header[0] != CODEC_KIND_RAW &&
            d->header[0] != CODEC_KIND_LZ4) {
            d->error = "not a frame (unknown frame kind)";
            return used;
        }
    }
    if (d->header_have == decoder_header_len(d) && d->header_have > 1)
        decoder_check_header(d);
    return used;
}

static void decoder_frame_done(struct codec_decoder *d)
{
    d->header_have = 0;
    if (d->header[0] == CODEC_KIND_RAW)
        d->frames_raw++;
    else
        d->frames_lz4++;
}

/* Hands decoded bytes (a raw piece, or a whole lz4 block) to the caller. */
static int decoder_deliver(struct codec_decoder *d, const uint8_t *data,
                           size_t len, const struct codec_sink *sink)
{
    d->bytes_out += len;
    if (sink->deliver(sink->ctx, data, len) < 0) {
        d->stopped = true;
        return -1;
    }
    return 0;
}

/* A decoded block: given away when the sink takes blocks (a forwarder
 * queues it for its socket as it is), else delivered and freed. One
 * allocation of the block's own size per frame, nothing kept. */
static int decoder_hand_block(struct codec_decoder *d, uint8_t *block,
                              size_t len, const struct codec_sink *sink)
{
    if (!sink->take) {
        int rc = decoder_deliver(d, block, len, sink);
        free(block);
        return rc;
    }
    d->bytes_out += len;
    if (sink->take(sink->ctx, block, len) < 0) {
        d->stopped = true;
        return -1;
    }
    return 0;
}

/* Decompresses a whole lz4 payload and hands the block on. */
static int decode_block(struct codec_decoder *d, const uint8_t *src,
                        const struct codec_sink *sink)
{
    uint8_t *out = malloc(d->orig_len);

    if (!out) {
        d->error = "out of memory";
        return -1;
    }
    int n = LZ4_decompress_safe((const char *)src, (char *)out,
                                (int)d->payload_len, (int)d->orig_len);
    if (n < 0 || (uint32_t)n != d->orig_len) {
        free(out);
        d->error = "corrupt lz4 frame";
        return -1;
    }
    decoder_frame_done(d);
    return decoder_hand_block(d, out, d->orig_len, sink);
}

/* An lz4 payload: straight from the input when it is all there, else
 * gathered in d->frame. Sets *used. */
static int decode_lz4(struct codec_decoder *d, const uint8_t *data, size_t len,
                      size_t *used, const struct codec_sink *sink)
{
    size_t want = d->payload_len - d->payload_have;

    if (!d->frame && len >= want) {
        *used = want;
        return decode_block(d, data, sink);
    }
    if (!d->frame && !(d->frame = malloc(d->payload_len))) {
        d->error = "out of memory";
        return -1;
    }
    *used = len < want ? len : want;
    memcpy(d->frame + d->payload_have, data, *used);
    d->payload_have += (uint32_t)*used;
    if (d->payload_have < d->payload_len)
        return 0;
    int rc = decode_block(d, d->frame, sink);
    free(d->frame);
    d->frame = NULL;
    return rc;
}

/* A raw payload goes out as it arrives, nothing is buffered. */
static int decode_raw(struct codec_decoder *d, const uint8_t *data, size_t len,
                      size_t *used, const struct codec_sink *sink)
{
    size_t want = d->payload_len - d->payload_have;

    *used = len < want ? len : want;
    d->payload_have += (uint32_t)*used;
    if (d->payload_have == d->payload_len)
        decoder_frame_done(d);
    return decoder_deliver(d, data, *used, sink);
}

/* Between frames, a full sink stops the feed. */
static bool decoder_sink_full(const struct codec_decoder *d,
                              const struct codec_sink *sink)
{
    return d->header_have == 0 && sink->full && sink->full(sink->ctx);
}

int codec_decode_to(struct codec_decoder *d, const uint8_t *data, size_t len,
                    const struct codec_sink *sink, size_t *used)
{
    int rc = 0;

    *used = 0;
    if (d->error || d->stopped)
        return -1;
    while (*used < len && rc == 0 && !decoder_sink_full(d, sink)) {
        const uint8_t *p = data + *used;
        size_t left = len - *used, n = 0;
        if (d->header_have == 0 || d->header_have < decoder_header_len(d)) {
            n = decode_header(d, p, left);
            rc = d->error ? -1 : 0;
        } else if (d->header[0] == CODEC_KIND_RAW) {
            rc = decode_raw(d, p, left, &n, sink);
        } else {
            rc = decode_lz4(d, p, left, &n, sink);
        }
        *used += n;
    }
    d->bytes_in += *used;
    return rc;
}

int codec_decode(struct codec_decoder *d, const uint8_t *data, size_t len,
                 int (*deliver)(void *ctx, const uint8_t *data, size_t len),
                 void *ctx)
{
    const struct codec_sink sink = {deliver, NULL, ctx, NULL};
    size_t used;

    return codec_decode_to(d, data, len, &sink, &used);
}
