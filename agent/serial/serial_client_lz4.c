/* SPDX-License-Identifier: MIT */
/* A relay client's bytes with transport = lz4, once the relay agreed: the
 * RFC 2217 stream cut into stream_codec frames both ways, with the same
 * buffers and the same flow control as without lz4. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serial_client_int.h"

int serial_client__lz4_start(struct serial_client *c, const uint8_t *rest,
                             size_t len)
{
    c->wire = malloc(WIRE_SIZE);
    if (!c->wire)
        return -1;
    codec_encoder_init(&c->enc);
    codec_decoder_init(&c->dec);
    memcpy(c->wire, rest, len); /* len <= one read of to_tty <= WIRE_SIZE */
    c->wire_head = 0;
    c->wire_tail = len;
    c->lz4 = true;
    return 0;
}

void serial_client__lz4_free(struct serial_client *c)
{
    if (!c->lz4)
        return;
    codec_encoder_free(&c->enc);
    codec_decoder_free(&c->dec);
    free(c->wire);
    c->wire = NULL;
    c->lz4 = false;
}

/* ---- sending ---- */

static void release_frame(void *ctx, void *base, size_t len)
{
    free(base);
    serial_client__write_released(ctx, NULL, len); /* it only counts */
}

static void emit_frame(void *ctx, uint8_t *frame, size_t len)
{
    struct serial_client *c = ctx;

    c->writing++;
    net_conn_queue(c->conn, frame, len, release_frame, c);
}

/* The frames are copies, but ctl and to_net are consumed only when they
 * are written, as without lz4: the device is read no faster than the
 * relay takes its bytes. */
void serial_client__lz4_flush(struct serial_client *c)
{
    const uint8_t *data = c->to_net.data + c->to_net.head;
    int rc = 0;

    if (!c->writing_ctl && !c->writing_data)
        return;
    c->writing++; /* a frame written at once must not finish the write */
    if (c->writing_ctl)
        rc = codec_encode(&c->enc, c->ctl, c->writing_ctl, true, emit_frame, c);
    if (rc == 0 && c->writing_data)
        rc = codec_encode(&c->enc, data, c->writing_data, true, emit_frame, c);
    net_conn_flush(c->conn);
    if (rc < 0) /* a frame missing from the stream: the session is over */
        c->p.ops->on_gone(c->p.port, c, "out of memory for lz4 frames", false);
    serial_client__write_released(c, NULL, 0);
}

static void emit_last(void *ctx, uint8_t *frame, size_t len)
{
    struct serial_client *c = ctx;
    net_conn_queue(c->conn, frame, len, NULL, NULL); /* freed once written */
}

/* Out of memory, the tail is lost: the session is ending anyway. */
void serial_client__queue_last(struct serial_client *c, const uint8_t *p,
                               size_t n)
{
    if (c->lz4)
        codec_encode(&c->enc, p, n, true, emit_last, c);
    else
        net_conn_queue_copy(c->conn, p, n);
}

/* ---- receiving ---- */

static int deliver(void *ctx, const uint8_t *data, size_t len)
{
    struct serial_client *c = ctx;

    if (len > BUF_SIZE - c->undecoded_end) /* lz4_full() prevents it */
        return -1;
    memcpy(c->to_tty.data + c->undecoded_end, data, len);
    c->undecoded_end += len;
    return 0;
}

/* One frame per empty to_tty: it holds a whole decoded frame. */
static bool lz4_full(void *ctx)
{
    const struct serial_client *c = ctx;
    return c->undecoded_end > 0;
}

static bool input_ready(const struct serial_client *c)
{
    return serial_client__open(c) && c->wire_head != c->wire_tail &&
           c->to_tty.head == c->to_tty.tail && c->undecoded == c->undecoded_end;
}

/* The decoded bytes are telnet-decoded in place as if they had been read
 * there; the next frame waits until the device took them. */
void serial_client__lz4_input(struct serial_client *c)
{
    const struct codec_sink sink = {
        .deliver = deliver, .full = lz4_full, .ctx = c};
    char why[128];

    while (c->lz4 && input_ready(c)) {
        size_t used = 0;
        c->to_tty.head = c->to_tty.tail = 0;
        c->undecoded = c->undecoded_end = 0;
        if (codec_decode_to(&c->dec, c->wire + c->wire_head,
                            c->wire_tail - c->wire_head, &sink, &used) < 0) {
            snprintf(why, sizeof(why), "bad lz4 stream from the relay: %s",
                     c->dec.error ? c->dec.error : "frame too large");
            c->p.ops->on_gone(c->p.port, c, why, false);
            return;
        }
        c->wire_head += used;
        c->bytes_in += c->undecoded_end;
        if (c->wire_head == c->wire_tail)
            c->wire_head = c->wire_tail = 0;
        if (c->undecoded != c->undecoded_end)
            serial_client__pump_input(c);
    }
}
