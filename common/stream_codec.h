/* SPDX-License-Identifier: MIT */
/* The lz4 transport's framing: a byte stream cut into raw or LZ4 frames. */
#ifndef REDIR_STREAM_CODEC_H
#define REDIR_STREAM_CODEC_H

/*
 * Bytes on the wire, one frame after the other:
 *
 *   raw frame   0xB0  LEN:u24le  LEN bytes as they are
 *   lz4 frame   0xB1  LEN:u24le  ORIG:u24le  LEN bytes: one LZ4 block that
 *                                            decodes to ORIG bytes
 *
 * 1 <= LEN, ORIG <= CODEC_MAX_CHUNK, and an lz4 frame is smaller than what
 * it encodes (LEN < ORIG). Any other first byte is corrupt. Frames are
 * independent LZ4 blocks: no history is kept across frames (see
 * stream_codec.c for the measurements behind that), so neither side holds
 * memory between frames. There is no checksum: TCP has one, and the LZ4
 * decoder never reads or writes out of bounds whatever it is fed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* LZ4's match window: a bigger chunk compresses no better block by block,
 * and it bounds what the decoder buffers. */
#define CODEC_MAX_CHUNK (64u * 1024)
#define CODEC_RAW_HEADER 4 /* kind, u24 length */
#define CODEC_LZ4_HEADER 7 /* kind, u24 length, u24 original length */
#define CODEC_MAX_FRAME (CODEC_LZ4_HEADER + CODEC_MAX_CHUNK)
#define CODEC_KIND_RAW 0xB0
#define CODEC_KIND_LZ4 0xB1
/* Below this LZ4 finds too few matches to pay for its call and its three
 * extra header bytes; usbredir control packets are smaller. */
#define CODEC_COMPRESS_MIN 256

/* Frames data on the sending side. Holds no buffers: it can be
 * zero-initialized or copied freely between calls. */
struct codec_encoder {
    uint64_t skip_bytes;    /* backoff: input still sent raw untried */
    uint64_t backoff_bytes; /* length of the next backoff */
    unsigned misses;        /* chunks in a row that did not compress */
    /* counters */
    uint64_t bytes_in;  /* payload handed to codec_encode */
    uint64_t bytes_out; /* frame bytes emitted, headers included */
    uint64_t frames_raw, frames_lz4;
};

void codec_encoder_init(struct codec_encoder *e);
void codec_encoder_free(struct codec_encoder *e);

/* Frames len bytes (any size: split into several frames as needed) and
 * hands each frame, a malloc'ed buffer the callee owns, to
 * emit(ctx, frame, frame_len). compress=false forces raw frames
 * (isochronous devices). Compresses only when it pays: chunks of at least
 * CODEC_COMPRESS_MIN bytes, and only if the frame comes out smaller; after
 * repeated incompressible chunks it sends raw for a while without trying.
 * Returns 0, or -1 when out of memory (frames emitted so far stay sent). */
int codec_encode(struct codec_encoder *e, const uint8_t *data, size_t len,
                 bool compress,
                 void (*emit)(void *ctx, uint8_t *frame, size_t frame_len),
                 void *ctx);

/* Unframes data on the receiving side. */
struct codec_decoder {
    uint8_t header[CODEC_LZ4_HEADER];
    size_t header_have;
    uint32_t payload_len;  /* of the frame being read */
    uint32_t orig_len;     /* lz4 frames: decoded length */
    uint32_t payload_have; /* payload bytes consumed so far */
    uint8_t *frame;        /* lz4 payload split across feeds, else NULL */
    const char *error;     /* static text once the stream is corrupt */
    bool stopped;          /* deliver refused: fed no more */
    /* counters */
    uint64_t bytes_in;  /* frame bytes fed, headers included */
    uint64_t bytes_out; /* decoded bytes delivered */
    uint64_t frames_raw, frames_lz4;
};

void codec_decoder_init(struct codec_decoder *d);
void codec_decoder_free(struct codec_decoder *d);

/* Feeds received bytes (any split); calls deliver(ctx, data, len) with the
 * decoded bytes in order (data is valid only during the call; a raw frame
 * may come in several pieces). Returns 0; or -1 if deliver returned < 0
 * (decoding stops there, d->error stays NULL); or -1 with d->error (static
 * text) on a corrupt or oversized frame. After a -1 every call fails.
 * Bounded memory: at most one compressed frame is buffered between calls,
 * and one decoded block (at most CODEC_MAX_CHUNK) exists during a call. */
int codec_decode(struct codec_decoder *d, const uint8_t *data, size_t len,
                 int (*deliver)(void *ctx, const uint8_t *data, size_t len),
                 void *ctx);

/* Where codec_decode_to puts decoded bytes. */
struct codec_sink {
    /* Bytes valid during the call only (raw frames, maybe in pieces; lz4
     * blocks too when take is NULL). < 0: stop, as for codec_decode. */
    int (*deliver)(void *ctx, const uint8_t *data, size_t len);
    /* Optional: true when the sink takes no more for now. Looked at before
     * each frame: decoding stops at a frame boundary, so the sink gets at
     * most one frame (CODEC_MAX_CHUNK bytes) past the moment it is full. */
    bool (*full)(void *ctx);
    void *ctx;
    /* Optional: a whole decoded lz4 block, malloc'ed; the callee owns it
     * from the call on, whatever it returns (a forwarder queues it as it
     * is: no copy). < 0: stop. */
    int (*take)(void *ctx, uint8_t *block, size_t len);
};

/* codec_decode into a sink that may fill up: *used says how many of the
 * len bytes were consumed (len unless sink->full stopped it; the caller
 * feeds the rest later). Same return value and errors. */
int codec_decode_to(struct codec_decoder *d, const uint8_t *data, size_t len,
                    const struct codec_sink *sink, size_t *used);

#endif
