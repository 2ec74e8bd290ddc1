/* SPDX-License-Identifier: MIT */
/* Unit tests of the lz4 stream codec: round trips in every split, and
 * corrupt, oversized and truncated frames. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/check.h"
#include "stream_codec.h"

struct sink { /* frames or decoded bytes, appended */
    uint8_t *data;
    size_t len, cap;
    size_t calls;
    int fail_after; /* deliver fails on this call (1-based), 0: never */
};

static void sink_add(struct sink *s, const uint8_t *data, size_t len)
{
    if (s->len + len > s->cap) {
        s->cap = (s->len + len) * 2;
        s->data = realloc(s->data, s->cap);
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
}

static void sink_free(struct sink *s)
{
    free(s->data);
    memset(s, 0, sizeof(*s));
}

static void emit(void *ctx, uint8_t *frame, size_t len)
{
    struct sink *s = ctx;
    s->calls++;
    sink_add(s, frame, len);
    free(frame);
}

static int deliver(void *ctx, const uint8_t *data, size_t len)
{
    struct sink *s = ctx;
    s->calls++;
    if (s->fail_after && (int)s->calls >= s->fail_after)
        return -1;
    sink_add(s, data, len);
    return 0;
}

static uint32_t rng = 12345;

static uint32_t next_rand(void)
{
    rng = rng * 1103515245u + 12345u;
    return rng >> 8;
}

static void fill_text(uint8_t *p, size_t len)
{
    static const char *words[] = {"usb ",     "redir ",    "bulk ",
                                  "packet\n", "endpoint ", "interface ",
                                  "relay "};
    size_t i = 0;
    while (i < len) {
        const char *w = words[next_rand() % 7];
        for (; *w && i < len; w++)
            p[i++] = (uint8_t)*w;
    }
}

static void fill_random(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)next_rand();
}

/* Encodes data, decodes it fed in pieces of `step` bytes (0: random
 * sizes), checks the result. */
static void round_trip(const char *what, const uint8_t *data, size_t len,
                       bool compress, size_t step)
{
    struct codec_encoder e;
    struct codec_decoder d;
    struct sink frames = {0}, out = {0};

    codec_encoder_init(&e);
    CHECK(codec_encode(&e, data, len, compress, emit, &frames) == 0, "%s",
          what);
    CHECK(e.bytes_in == len && e.bytes_out == frames.len,
          "%s: counters %llu/%llu", what, (unsigned long long)e.bytes_in,
          (unsigned long long)e.bytes_out);
    CHECK(e.frames_raw + e.frames_lz4 ==
              (len + CODEC_MAX_CHUNK - 1) / CODEC_MAX_CHUNK,
          "%s: %llu frames for %zu bytes", what,
          (unsigned long long)(e.frames_raw + e.frames_lz4), len);
    if (!compress)
        CHECK(e.frames_lz4 == 0, "%s: compressed though told not to", what);

    codec_decoder_init(&d);
    size_t off = 0;
    int rc = 0;
    while (off < frames.len && rc == 0) {
        size_t n = step ? step : 1 + next_rand() % 70000;
        n = n < frames.len - off ? n : frames.len - off;
        rc = codec_decode(&d, frames.data + off, n, deliver, &out);
        off += n;
    }
    CHECK(rc == 0 && !d.error, "%s: decode failed: %s", what,
          d.error ? d.error : "");
    CHECK(out.len == len && (len == 0 || memcmp(out.data, data, len) == 0),
          "%s (step %zu): decoded %zu bytes, wanted %zu", what, step, out.len,
          len);
    CHECK(d.frames_lz4 == e.frames_lz4 && d.frames_raw == e.frames_raw,
          "%s: frame counts differ", what);
    CHECK(d.frame == NULL, "%s: a frame stays buffered after the end", what);
    codec_decoder_free(&d);
    codec_encoder_free(&e);
    sink_free(&frames);
    sink_free(&out);
}

static void test_round_trips(void)
{
    static const size_t sizes[] = {0,     1,      255,    256,
                                   257,   4096,   65535,  65536,
                                   65537, 131072, 200000, 1 << 20};
    size_t max = 1 << 20;
    uint8_t *text = malloc(max), *rnd = malloc(max), *zeros = calloc(1, max),
            *mixed = malloc(max);

    fill_text(text, max);
    fill_random(rnd, max);
    for (size_t i = 0; i < max; i += 65536) { /* text, random, zeros... */
        size_t n = max - i < 65536 ? max - i : 65536;
        const uint8_t *src = (i / 65536) % 3 == 0   ? text
                             : (i / 65536) % 3 == 1 ? rnd
                                                    : zeros;
        memcpy(mixed + i, src + i, n);
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        round_trip("text", text, n, true, 0);
        round_trip("text raw", text, n, false, 0);
        round_trip("random", rnd, n, true, 0);
        round_trip("zeros", zeros, n, true, 0);
        round_trip("mixed", mixed, n, true, 0);
        round_trip("mixed, 4096-byte reads", mixed, n, true, 4096);
    }
    round_trip("text byte by byte", text, 200000, true, 1);
    round_trip("mixed byte by byte", mixed, 300000, true, 1);
    round_trip("random 3-byte reads", rnd, 100000, true, 3);
    free(text);
    free(rnd);
    free(zeros);
    free(mixed);
}

/* Compresses what pays, and only that. */
static void test_compress_policy(void)
{
    struct codec_encoder e;
    struct sink frames = {0};
    uint8_t buf[65536];

    codec_encoder_init(&e);
    memset(buf, 'a', sizeof(buf));
    codec_encode(&e, buf, CODEC_COMPRESS_MIN - 1, true, emit, &frames);
    CHECK(e.frames_raw == 1 && e.frames_lz4 == 0,
          "a chunk under the threshold was compressed");
    codec_encode(&e, buf, sizeof(buf), true, emit, &frames);
    CHECK(e.frames_lz4 == 1, "64 KiB of 'a' not compressed");
    CHECK(frames.len < 1000, "64 KiB of 'a' took %zu bytes", frames.len);

    /* Incompressible data: misses, then a backoff without trying. */
    codec_encoder_init(&e);
    fill_random(buf, sizeof(buf));
    int misses = 0;
    while (e.skip_bytes == 0 && misses < 100) {
        codec_encode(&e, buf, sizeof(buf), true, emit, &frames);
        misses++;
    }
    CHECK(e.frames_lz4 == 0 && e.skip_bytes > 0 && misses > 1,
          "no backoff after %d incompressible chunks", misses);
    uint64_t skip = e.skip_bytes;
    while (e.skip_bytes > 0)
        codec_encode(&e, buf, sizeof(buf), true, emit, &frames);
    codec_encode(&e, buf, sizeof(buf), true, emit, &frames); /* the probe */
    CHECK(e.skip_bytes == 2 * skip,
          "a failed probe did not double the backoff (%llu after %llu)",
          (unsigned long long)e.skip_bytes, (unsigned long long)skip);
    memset(buf, 'a', sizeof(buf));
    codec_encode(&e, buf, sizeof(buf), true, emit, &frames);
    CHECK(e.frames_lz4 == 0 && e.skip_bytes == 2 * skip - sizeof(buf),
          "compressed during the backoff");
    while (e.skip_bytes > 0)
        codec_encode(&e, buf, sizeof(buf), true, emit, &frames);
    codec_encode(&e, buf, sizeof(buf), true, emit, &frames);
    CHECK(e.frames_lz4 == 1, "no compression after the backoff ended");
    CHECK(e.misses == 0, "a success did not reset the misses");
    fill_random(buf, sizeof(buf));
    codec_encode(&e, buf, sizeof(buf), true, emit, &frames);
    CHECK(e.skip_bytes == 0, "one miss after a success backs off");
    sink_free(&frames);
}

/* Feeds bytes whole; returns codec_decode's result. */
static int decode_bytes(struct codec_decoder *d, const uint8_t *p, size_t len,
                        struct sink *out)
{
    codec_decoder_init(d);
    return codec_decode(d, p, len, deliver, out);
}

static void expect_corrupt(const char *what, const uint8_t *p, size_t len,
                           const char *error_part)
{
    struct codec_decoder d;
    struct sink out = {0};
    int rc = decode_bytes(&d, p, len, &out);

    CHECK(rc == -1 && d.error && strstr(d.error, error_part), "%s: rc %d, %s",
          what, rc, d.error ? d.error : "no error");
    CHECK(codec_decode(&d, p, len, deliver, &out) == -1,
          "%s: accepted input after an error", what);
    codec_decoder_free(&d);
    sink_free(&out);
}

static void test_corrupt(void)
{
    /* Each header alone fails: the limits are checked before anything
     * is allocated or read. */
    const uint8_t bad_kind[] = {0x00, 1, 0, 0, 'x'};
    const uint8_t empty_raw[] = {CODEC_KIND_RAW, 0, 0, 0};
    const uint8_t big_raw[] = {CODEC_KIND_RAW, 0x01, 0x00, 0x01};
    const uint8_t huge_raw[] = {CODEC_KIND_RAW, 0xff, 0xff, 0xff};
    const uint8_t big_orig[] = {CODEC_KIND_LZ4, 10, 0, 0, 0x01, 0x00, 0x01};
    const uint8_t not_smaller[] = {CODEC_KIND_LZ4, 10, 0, 0, 10, 0, 0};
    /* token: no literals, a match at offset 1 before any output */
    const uint8_t bad_block[] = {CODEC_KIND_LZ4, 4,    0,    0,   100, 0, 0,
                                 0x00,           0x01, 0x00, 0x00};

    expect_corrupt("unknown kind", bad_kind, sizeof(bad_kind), "kind");
    expect_corrupt("garbage text", (const uint8_t *)"GET / HTTP/1.0", 14,
                   "kind");
    expect_corrupt("empty frame", empty_raw, sizeof(empty_raw), "empty");
    expect_corrupt("raw over 64 KiB", big_raw, sizeof(big_raw), "longer");
    expect_corrupt("raw of 16 MiB", huge_raw, sizeof(huge_raw), "longer");
    expect_corrupt("lz4 decoding over 64 KiB", big_orig, sizeof(big_orig),
                   "more than");
    expect_corrupt("lz4 not smaller", not_smaller, sizeof(not_smaller),
                   "not smaller");
    expect_corrupt("bad lz4 block", bad_block, sizeof(bad_block), "corrupt");

    /* A real frame with its block cut short and the header patched to
     * match: the block ends inside a sequence. */
    struct codec_encoder e;
    struct sink frames = {0};
    uint8_t text[8192];
    fill_text(text, sizeof(text));
    codec_encoder_init(&e);
    codec_encode(&e, text, sizeof(text), true, emit, &frames);
    CHECK(frames.data[0] == CODEC_KIND_LZ4, "text not compressed");
    uint32_t plen = frames.data[1] | frames.data[2] << 8 | frames.data[3] << 16;
    frames.data[1] = (uint8_t)(plen / 2);
    frames.data[2] = (uint8_t)((plen / 2) >> 8);
    frames.data[3] = 0;
    expect_corrupt("lz4 block cut short", frames.data, 7 + plen / 2, "corrupt");
    sink_free(&frames);
}

static void test_truncated(void)
{
    struct codec_encoder e;
    struct codec_decoder d;
    struct sink frames = {0}, out = {0};
    uint8_t text[100000];

    fill_text(text, sizeof(text));
    codec_encoder_init(&e);
    codec_encode(&e, text, sizeof(text), true, emit, &frames);
    /* Cut inside the second frame: no error, only whole frames (and raw
     * pieces) delivered, the partial lz4 frame waits. */
    size_t cut = frames.len - 100;
    CHECK(decode_bytes(&d, frames.data, cut, &out) == 0 && !d.error,
          "truncated stream is an error: %s", d.error ? d.error : "");
    CHECK(out.len == 65536, "delivered %zu bytes of a cut stream", out.len);
    CHECK(d.frame != NULL, "the partial frame is not buffered");
    /* ...then garbage where the frame's bytes should be: the block or the
     * next header is invalid. */
    uint8_t garbage[200];
    memset(garbage, 0xEE, sizeof(garbage));
    CHECK(codec_decode(&d, garbage, sizeof(garbage), deliver, &out) == -1 &&
              d.error,
          "garbage after a cut was accepted");
    codec_decoder_free(&d);
    CHECK(d.frame == NULL, "decoder_free kept the frame");
    sink_free(&out);

    /* Cut at every byte of a small stream: never an error, never more
     * bytes than were sent. */
    for (size_t n = 0; n < 80 && n < frames.len; n++) {
        struct sink o = {0};
        CHECK(decode_bytes(&d, frames.data, n, &o) == 0 && !d.error,
              "cut at %zu: %s", n, d.error ? d.error : "");
        CHECK(o.len <= n, "cut at %zu: %zu bytes out", n, o.len);
        codec_decoder_free(&d);
        sink_free(&o);
    }
    sink_free(&frames);
}

static void test_deliver_fails(void)
{
    struct codec_encoder e;
    struct codec_decoder d;
    struct sink frames = {0}, out = {.fail_after = 2};
    uint8_t text[200000];

    fill_text(text, sizeof(text));
    codec_encoder_init(&e);
    codec_encode(&e, text, sizeof(text), true, emit, &frames);
    CHECK(decode_bytes(&d, frames.data, frames.len, &out) == -1 && !d.error,
          "a failing deliver did not stop decoding");
    CHECK(out.calls == 2, "deliver called %zu times", out.calls);
    CHECK(codec_decode(&d, frames.data, 1, deliver, &out) == -1,
          "decoder went on after deliver failed");
    codec_decoder_free(&d);
    sink_free(&frames);
    sink_free(&out);
}

/* A forwarding sink: lz4 blocks taken whole (owned, freed here: ASan
 * sees a leak or a double free), full after every `full_every` frames. */
struct fwd {
    struct sink out;
    size_t blocks, pieces, seen;
    size_t full_every; /* 0: never full */
    int take_fails;    /* take returns -1 on this block (1-based) */
};

static int fwd_deliver(void *ctx, const uint8_t *data, size_t len)
{
    struct fwd *f = ctx;
    f->pieces++;
    f->seen++;
    sink_add(&f->out, data, len);
    return 0;
}

static int fwd_take(void *ctx, uint8_t *block, size_t len)
{
    struct fwd *f = ctx;
    f->blocks++;
    f->seen++;
    sink_add(&f->out, block, len);
    free(block);
    return f->take_fails && (int)f->blocks == f->take_fails ? -1 : 0;
}

static bool fwd_full(void *ctx)
{
    struct fwd *f = ctx;
    return f->full_every && f->seen >= f->full_every;
}

static void test_sink(void)
{
    struct codec_encoder e;
    struct codec_decoder d;
    struct sink frames = {0};
    static uint8_t data[300000];
    struct fwd f = {.full_every = 1};
    struct codec_sink sink = {fwd_deliver, fwd_full, &f, fwd_take};
    size_t off = 0, used, calls = 0;

    fill_text(data, 200000); /* lz4 frames, then raw ones */
    fill_random(data + 200000, 100000);
    codec_encoder_init(&e);
    codec_encode(&e, data, sizeof(data), true, emit, &frames);
    codec_decoder_init(&d);
    /* Full after each frame: every call hands on exactly one frame and
     * stops at its end; the rest is fed again, like the relay's stash. */
    while (off < frames.len) {
        f.seen = 0;
        CHECK(codec_decode_to(&d, frames.data + off, frames.len - off, &sink,
                              &used) == 0,
              "decode_to failed at %zu: %s", off, d.error ? d.error : "");
        CHECK(used > 0 && f.seen == 1, "call %zu: %zu bytes, %zu pieces", calls,
              used, f.seen);
        off += used;
        if (++calls > 10 || used == 0)
            break;
    }
    /* 5 chunks of 64 KiB: text in lz4 blocks, the random tail raw */
    CHECK(calls == 5 && f.blocks >= 3 && f.pieces >= 1,
          "%zu calls, %zu blocks taken, %zu raw pieces", calls, f.blocks,
          f.pieces);
    CHECK(f.out.len == sizeof(data) && !memcmp(f.out.data, data, sizeof(data)),
          "forwarded bytes differ");
    f.seen = 0;
    CHECK(codec_decode_to(&d, frames.data, 0, &sink, &used) == 0 && used == 0,
          "an empty feed consumed %zu", used);
    codec_decoder_free(&d);

    /* Full from the start: nothing consumed, nothing allocated. */
    codec_decoder_init(&d);
    f.seen = 1;
    CHECK(codec_decode_to(&d, frames.data, frames.len, &sink, &used) == 0 &&
              used == 0 && d.frame == NULL,
          "a full sink consumed %zu bytes", used);
    codec_decoder_free(&d);

    /* take refuses the second block: decoding stops, no error, no leak. */
    struct fwd g = {.take_fails = 2};
    struct codec_sink gs = {fwd_deliver, fwd_full, &g, fwd_take};
    codec_decoder_init(&d);
    CHECK(codec_decode_to(&d, frames.data, frames.len, &gs, &used) == -1 &&
              !d.error && g.blocks == 2,
          "take failing: rc, %zu blocks, %s", g.blocks, d.error ? d.error : "");
    CHECK(codec_decode_to(&d, frames.data, 1, &gs, &used) == -1,
          "decoder went on after take failed");
    codec_decoder_free(&d);

    /* Garbage and a truncated frame through the sink: refused / waiting
     * exactly as with codec_decode. */
    struct fwd h = {0};
    struct codec_sink hs = {fwd_deliver, fwd_full, &h, fwd_take};
    codec_decoder_init(&d);
    CHECK(codec_decode_to(&d, frames.data, frames.len / 2, &hs, &used) == 0 &&
              used == frames.len / 2 && d.frame != NULL,
          "a cut inside an lz4 frame: used %zu", used);
    CHECK(codec_decode_to(&d, (const uint8_t *)"\xEE\xEE\xEE", 3, &hs, &used) ==
              0,
          "3 bytes inside a frame's payload are not an error yet");
    codec_decoder_free(&d);
    codec_decoder_init(&d);
    CHECK(codec_decode_to(&d, (const uint8_t *)"GET / HTTP/1.0", 14, &hs,
                          &used) == -1 &&
              d.error && strstr(d.error, "kind"),
          "garbage through the sink: %s", d.error ? d.error : "accepted");
    codec_decoder_free(&d);
    sink_free(&f.out);
    sink_free(&g.out);
    sink_free(&h.out);
    sink_free(&frames);
}

int main(void)
{
    test_round_trips();
    test_compress_policy();
    test_corrupt();
    test_truncated();
    test_deliver_fails();
    test_sink();
    return check_summary();
}
