/* SPDX-License-Identifier: MIT */
/* Packet boundaries in one direction of a usbredir byte stream, without copying
 * it. */
#include "usbredir_stream.h"
#include "byteorder.h"

#include <string.h>
#include <usbredirproto.h>

#define HELLO_VERSION_LEN 64

void usbredir_stream_init(struct usbredir_stream *st)
{
    memset(st, 0, sizeof(*st));
    st->header_len = USBREDIR_HEADER_32;
    st->in_hello = true;
}

static void stream_packet_done(struct usbredir_stream *st)
{
    st->packets++;
    st->header_have = 0;
    if (st->in_hello) {
        uint32_t caps0 = st->hello_have >= HELLO_VERSION_LEN + 4
                             ? read_le32(st->hello_caps + HELLO_VERSION_LEN)
                             : 0;
        st->peer_64bit_ids = caps0 & (1u << usb_redir_cap_64bits_ids);
        st->in_hello = false;
    }
    st->header_len =
        st->peer_64bit_ids ? USBREDIR_HEADER_64 : USBREDIR_HEADER_32;
}

static int stream_header_done(struct usbredir_stream *st)
{
    uint32_t type = read_le32(st->header);
    uint32_t length = read_le32(st->header + 4);

    if (st->in_hello && type != usb_redir_hello) {
        st->error = "first packet is not a hello";
        return -1;
    }
    if (length > USBREDIR_MAX_PACKET) {
        st->error = "packet length over the usbredir maximum";
        return -1;
    }
    st->remaining = length;
    return 0;
}

int usbredir_stream_feed(struct usbredir_stream *st, const uint8_t *data,
                         size_t len)
{
    while (len && !st->error) {
        if (st->header_have < st->header_len) {
            size_t n = st->header_len - st->header_have;
            n = n < len ? n : len;
            memcpy(st->header + st->header_have, data, n);
            st->header_have += n;
            data += n;
            len -= n;
            if (st->header_have < st->header_len || stream_header_done(st) < 0)
                continue;
        } else {
            size_t n = st->remaining < len ? (size_t)st->remaining : len;
            if (st->in_hello && st->hello_have < sizeof(st->hello_caps)) {
                size_t keep = sizeof(st->hello_caps) - st->hello_have;
                keep = keep < n ? keep : n;
                memcpy(st->hello_caps + st->hello_have, data, keep);
                st->hello_have += keep;
            }
            st->remaining -= n;
            data += n;
            len -= n;
        }
        if (st->header_have == st->header_len && st->remaining == 0)
            stream_packet_done(st);
    }
    return st->error ? -1 : 0;
}
