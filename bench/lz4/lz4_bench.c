/* SPDX-License-Identifier: MIT */
/* Benchmark of the lz4 stream codec on one file: bytes on the wire,
 * encode/decode throughput and CPU per GiB, and what LZ4 streaming (history
 * across frames) would save. Prints "key value" lines for run.py. */
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stream_codec.h"

#define MIN_SECONDS 0.7 /* each measurement repeats for at least this */
#define READ_SIZE 65536 /* a socket read on the decoding side */

struct wire {
    uint8_t *data;
    size_t len, cap;
    bool keep; /* first pass keeps the frames; later ones only count */
};

static double now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void emit(void *ctx, uint8_t *frame, size_t len)
{
    struct wire *w = ctx;
    if (w->keep) {
        if (w->len + len > w->cap) {
            w->cap = (w->len + len) * 2;
            w->data = realloc(w->data, w->cap);
        }
        memcpy(w->data + w->len, frame, len);
    }
    w->len += len;
    free(frame);
}

static int deliver(void *ctx, const uint8_t *data, size_t len)
{
    size_t *sum = ctx;
    *sum += len + data[0]; /* touch it, as a socket write would */
    return 0;
}

/* Encodes the file in calls of `call` bytes (how the agent hands over
 * usbredir packets); returns wall seconds and CPU seconds per pass. */
static void encode_passes(const uint8_t *in, size_t len, size_t call,
                          struct wire *w, double *wall, double *cpu,
                          struct codec_encoder *stats)
{
    int passes = 0;
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);

    do {
        struct codec_encoder e;
        codec_encoder_init(&e);
        w->keep = passes == 0;
        w->len = 0;
        for (size_t off = 0; off < len; off += call) {
            size_t n = len - off < call ? len - off : call;
            if (codec_encode(&e, in + off, n, true, emit, w) < 0)
                exit(1);
        }
        *stats = e;
        passes++;
    } while (now(CLOCK_MONOTONIC) - t0 < MIN_SECONDS);
    *wall = (now(CLOCK_MONOTONIC) - t0) / passes;
    *cpu = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / passes;
}

static void decode_passes(const struct wire *w, size_t expect, double *wall,
                          double *cpu)
{
    int passes = 0;
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);

    do {
        struct codec_decoder d;
        size_t sum = 0;
        codec_decoder_init(&d);
        for (size_t off = 0; off < w->len; off += READ_SIZE) {
            size_t n = w->len - off < READ_SIZE ? w->len - off : READ_SIZE;
            if (codec_decode(&d, w->data + off, n, deliver, &sum) < 0) {
                fprintf(stderr, "decode: %s\n", d.error);
                exit(1);
            }
        }
        if (d.bytes_out != expect) {
            fprintf(stderr, "decoded %llu of %zu bytes\n",
                    (unsigned long long)d.bytes_out, expect);
            exit(1);
        }
        codec_decoder_free(&d);
        passes++;
    } while (now(CLOCK_MONOTONIC) - t0 < MIN_SECONDS);
    *wall = (now(CLOCK_MONOTONIC) - t0) / passes;
    *cpu = (now(CLOCK_PROCESS_CPUTIME_ID) - c0) / passes;
}

/* LZ4 streaming over the file in place: history of the previous 64 KiB
 * kept across chunks; the same 7/4-byte frame headers counted. Gives the
 * best case for streaming (no ring-buffer copy). */
static size_t streaming_wire(const uint8_t *in, size_t len, size_t chunk)
{
    LZ4_stream_t *s = LZ4_createStream();
    char *dst = malloc((size_t)LZ4_compressBound((int)chunk));
    size_t out = 0;

    for (size_t off = 0; off < len; off += chunk) {
        int n = (int)(len - off < chunk ? len - off : chunk);
        int c = LZ4_compress_fast_continue(s, (const char *)in + off, dst, n,
                                           LZ4_compressBound(n), 1);
        out += c > 0 && c < n - 3 ? (size_t)c + CODEC_LZ4_HEADER
                                  : (size_t)n + CODEC_RAW_HEADER;
    }
    LZ4_freeStream(s);
    free(dst);
    return out;
}

static void report(const char *label, size_t call, const uint8_t *in,
                   size_t len)
{
    struct wire w = {0};
    struct codec_encoder stats;
    double enc_wall, enc_cpu, dec_wall, dec_cpu;
    double gib = (double)len / (1 << 30);

    encode_passes(in, len, call, &w, &enc_wall, &enc_cpu, &stats);
    w.len = (size_t)stats.bytes_out;
    decode_passes(&w, len, &dec_wall, &dec_cpu);
    printf("%s.wire %zu\n", label, w.len);
    printf("%s.frames_lz4 %llu\n", label, (unsigned long long)stats.frames_lz4);
    printf("%s.frames_raw %llu\n", label, (unsigned long long)stats.frames_raw);
    printf("%s.encode_mbs %.1f\n", label, (double)len / enc_wall / 1e6);
    printf("%s.decode_mbs %.1f\n", label, (double)len / dec_wall / 1e6);
    printf("%s.encode_cpu_s_per_gib %.3f\n", label, enc_cpu / gib);
    printf("%s.decode_cpu_s_per_gib %.3f\n", label, dec_cpu / gib);
    free(w.data);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: lz4_bench FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    size_t len = (size_t)ftell(f);
    rewind(f);
    uint8_t *in = malloc(len);
    if (!in || fread(in, 1, len, f) != len)
        return 1;
    fclose(f);

    printf("size %zu\n", len);
    report("codec64k", CODEC_MAX_CHUNK, in, len);
    report("codec4k", 4096, in, len);
    printf("stream64k.wire %zu\n", streaming_wire(in, len, 65536));
    printf("stream4k.wire %zu\n", streaming_wire(in, len, 4096));
    printf("stream512.wire %zu\n", streaming_wire(in, len, 512));
    free(in);
    return 0;
}
