/* SPDX-License-Identifier: MIT */
/* Packet boundaries in one direction of a usbredir byte stream, without copying
 * it. */
#ifndef REDIR_USBREDIR_STREAM_H
#define REDIR_USBREDIR_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USBREDIR_HEADER_32 12 /* type, length, 32-bit id */
#define USBREDIR_HEADER_64 16 /* type, length, 64-bit id */
/* usbredirparser refuses packets larger than this; so do we. */
#define USBREDIR_MAX_PACKET (128u * 1024 * 1024)

/* Walks the packets a peer sends. The first packet is its hello (always
 * with a 12-byte header); whether later headers carry 64-bit ids depends on
 * both hellos, and ours (usbredirhost's) always offers them. */
struct usbredir_stream {
    uint8_t header[USBREDIR_HEADER_64];
    size_t header_have;
    size_t header_len;  /* of the packet being read */
    uint64_t remaining; /* payload bytes still to skip */
    bool in_hello;      /* reading the hello's payload */
    uint8_t hello_caps[4 + 64];
    size_t hello_have; /* hello payload bytes kept (version + caps[0]) */
    bool peer_64bit_ids;
    uint64_t packets;  /* complete packets seen */
    const char *error; /* set once the stream is not usbredir */
};

void usbredir_stream_init(struct usbredir_stream *st);

/* Consumes len bytes. Returns 0, or -1 once the stream is malformed. */
int usbredir_stream_feed(struct usbredir_stream *st, const uint8_t *data,
                         size_t len);

#endif
