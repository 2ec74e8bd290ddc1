/* SPDX-License-Identifier: MIT */
/* A serial client's bytes: its buffers both ways, the socket read into one
 * in place (telnet decoded there), the device's data and telnet answers
 * written from the other, and the device side's view of both. */
#include <string.h>

#include "serial_client_int.h"
#include "telnet.h"

/* ---- sending: telnet answers first, then the device's data ---- */

static void on_write_done(struct serial_client *c);

void serial_client__write_released(void *ctx, void *base, size_t len)
{
    struct serial_client *c = ctx;
    (void)base;
    (void)len;
    if (--c->writing == 0)
        on_write_done(c);
}

bool serial_client__queue_ctl(struct serial_client *c, const uint8_t *bytes,
                              size_t len)
{
    if (len > CTL_SIZE - c->ctl_len)
        return false;
    memcpy(c->ctl + c->ctl_len, bytes, len);
    c->ctl_len += len;
    return true;
}

/* Puts everything pending in flight, as one writev: answers queued later
 * must not be mistaken for part of this write, hence the two counts.
 * Reached from the device side, the telnet session and write completions. */
void serial_client__flush(struct serial_client *c)
{
    bool suspended = c->telnet_on && c->telnet.comport.suspended;

    if (!serial_client__open(c) || c->writing || suspended)
        return;
    c->writing_ctl = c->ctl_len;
    c->writing_data = serial_client__buf_len(&c->to_net);
    if (c->lz4) {
        serial_client__lz4_flush(c);
        return;
    }
    if (c->writing_ctl) {
        c->writing++;
        net_conn_queue(c->conn, c->ctl, c->writing_ctl,
                       serial_client__write_released, c);
    }
    if (c->writing_data) {
        c->writing++;
        net_conn_queue(c->conn, c->to_net.data + c->to_net.head,
                       c->writing_data, serial_client__write_released, c);
    }
    if (c->writing)
        net_conn_flush(c->conn);
}

/* ctl answer bytes and data bytes left the buffers */
static void consume(struct serial_client *c, size_t ctl, size_t data)
{
    if (ctl) {
        memmove(c->ctl, c->ctl + ctl, c->ctl_len - ctl);
        c->ctl_len -= ctl;
    }
    c->to_net.head += data;
    c->bytes_out += data;
    if (c->to_net.head == c->to_net.tail)
        c->to_net.head = c->to_net.tail = 0;
}

/* ---- receiving ---- */

static size_t to_tty_room(const struct serial_client *c)
{
    return BUF_SIZE - serial_client__buf_len(&c->to_tty);
}

/* The peer finished sending: the session ends once the device took all
 * of it (a print job must not lose its tail). */
void serial_client__check_eof(struct serial_client *c)
{
    if (serial_client__open(c) && c->eof && c->to_tty.head == c->to_tty.tail &&
        c->undecoded == c->undecoded_end && c->wire_head == c->wire_tail)
        c->p.ops->on_gone(c->p.port, c, "closed by peer", true);
}

/* Reading stops while the device has a buffer's worth to take, or the
 * telnet decoder waits for room for its answers; with lz4, while frames
 * read wait to be decoded. */
void serial_client__update_read(struct serial_client *c)
{
    bool want = serial_client__open(c) && !c->eof &&
                !net_pace_resting(c->pace) &&
                (c->lz4 ? c->wire_head == c->wire_tail
                        : c->undecoded == c->undecoded_end &&
                              to_tty_room(c) >= NET_READ_MIN);

    if (want)
        net_conn_read_start(c->conn);
    else if (c->phase == CLIENT_OPEN)
        net_conn_read_stop(c->conn);
}

void serial_client__rested(void *arg)
{
    struct serial_client *c = arg;

    if (serial_client__open(c))
        serial_client__update_read(c);
}

/* Decodes the client's telnet input and sends the answers, until all is
 * decoded, or a write in flight will call back here once the answers
 * made room (the socket took everything: decode on at once). */
void serial_client__pump_input(struct serial_client *c)
{
    do {
        serial_telnet_input(&c->telnet, c->to_tty.data, &c->undecoded,
                            c->undecoded_end, &c->to_tty.tail);
        if (c->undecoded == c->undecoded_end)
            c->undecoded = c->undecoded_end = c->to_tty.tail;
        if (!serial_client__open(c))
            return;
        serial_client__flush(c);
    } while (c->undecoded != c->undecoded_end && !c->writing);
}

/* Called after new input (on_data) and on resume: lets the port take what
 * is queued for the tty, then re-decides whether to read the network. A
 * telnet command may have closed the client on the way. */
static void hand_to_device(struct serial_client *c)
{
    if (!serial_client__open(c))
        return;
    c->p.ops->to_device(c->p.port);
    if (serial_client__open(c))
        serial_client__update_read(c);
}

/* The relay's first bytes, which came with its answer
 * (serial_client__relay_data): decoded once the port took the client. */
void serial_client__resume_input(struct serial_client *c)
{
    if (c->lz4 && serial_client__open(c)) {
        serial_client__lz4_input(c);
        hand_to_device(c);
        return;
    }
    if (!serial_client__open(c) || c->undecoded == c->undecoded_end)
        return;
    if (!c->telnet_on) {
        c->to_tty.tail = c->undecoded_end;
        c->undecoded = c->undecoded_end = c->to_tty.tail;
    } else {
        serial_client__pump_input(c);
    }
    hand_to_device(c);
}

void serial_client__on_alloc(void *owner, struct net_conn *conn, uv_buf_t *out)
{
    struct serial_client *c = owner;
    struct buf *b = &c->to_tty;
    (void)conn;

    if (c->lz4) { /* frames: into the wire buffer, once it is decoded */
        if (c->wire_head != c->wire_tail) {
            *out = uv_buf_init(NULL, 0);
            return;
        }
        c->wire_head = c->wire_tail = 0;
        *out = uv_buf_init((char *)c->wire, WIRE_SIZE);
        return;
    }
    if (c->undecoded != c->undecoded_end) {
        *out = uv_buf_init(NULL, 0); /* decoding waits: read later */
        return;
    }
    if (b->head == b->tail) {
        b->head = b->tail = 0;
    } else if (BUF_SIZE - b->tail < NET_READ_MIN) {
        memmove(b->data, b->data + b->head, serial_client__buf_len(b));
        b->tail -= b->head;
        b->head = 0;
    }
    c->undecoded = c->undecoded_end = b->tail;
    *out =
        uv_buf_init((char *)b->data + b->tail, (unsigned)(BUF_SIZE - b->tail));
}

void serial_client__on_data(void *owner, struct net_conn *conn,
                            const uint8_t *data, size_t n)
{
    struct serial_client *c = owner;
    (void)conn;
    (void)data; /* it landed at to_tty's tail (serial_client__on_alloc) */

    if (c->relay_hs) {
        serial_client__relay_data(c, n);
        return;
    }
    if (!serial_client__open(c))
        return;
    c->bytes_in += c->lz4 ? 0 : n; /* lz4: counted once decoded */
    serial_client__touch(c);
    if (c->pace) { /* a stream from the peer: read in batches */
        net_pace_line(c->pace, c->p.ops->comport->line(c->p.comport));
        net_pace_after(c->pace, n);
    }
    if (c->lz4) { /* it landed at the wire's tail */
        c->wire_tail += n;
        serial_client__lz4_input(c);
    } else if (!c->telnet_on) {
        c->to_tty.tail += n;
    } else {
        c->undecoded_end = c->undecoded + n;
        serial_client__pump_input(c);
    }
    hand_to_device(c);
}

static void on_write_done(struct serial_client *c)
{
    consume(c, c->writing_ctl, c->writing_data);
    if (!serial_client__open(c))
        return;
    serial_client__touch(c);
    if (c->undecoded != c->undecoded_end) { /* it waited for answer room */
        serial_client__pump_input(c);
        if (!serial_client__open(c))
            return;
        c->p.ops->to_device(c->p.port);
        if (!serial_client__open(c))
            return;
        serial_client__update_read(c);
    }
    if (c->lz4) { /* frames that waited for the answers' room */
        serial_client__lz4_input(c);
        hand_to_device(c);
        if (!serial_client__open(c))
            return;
    }
    serial_client__flush(c);
    /* the device may be read again: the buffer has room */
    c->p.ops->from_device_room(c->p.port);
    serial_client__check_eof(c);
}

/* ---- the device side ---- */

/* How much one read may bring: the free room, and the room that moving
 * pending bytes down would give (not while a write in flight points into
 * it); in telnet modes half, as every byte may be an IAC that doubles. */
void serial_client_device_room(struct serial_client *c, uint8_t **buf,
                               size_t *len)
{
    struct buf *b = &c->to_net;

    if (!c->writing && b->head > 0) { /* escaping needs the room in place */
        memmove(b->data, b->data + b->head, serial_client__buf_len(b));
        b->tail -= b->head;
        b->head = 0;
    }
    *buf = b->data + b->tail;
    *len = c->telnet_on ? (BUF_SIZE - b->tail) / 2 : BUF_SIZE - b->tail;
}

void serial_client_from_device(struct serial_client *c, uint8_t *buf, size_t n)
{
    if (c->telnet_on)
        n = telnet_escape_inplace(buf, n);
    c->to_net.tail += n;
    serial_client__touch(c);
    serial_client__flush(c);
}

void serial_client_device_data(struct serial_client *c, const uint8_t **data,
                               size_t *len)
{
    *data = c->to_tty.data + c->to_tty.head;
    *len = serial_client__buf_len(&c->to_tty);
}

void serial_client_to_device_done(struct serial_client *c, size_t n)
{
    c->to_tty.head += n;
    if (c->to_tty.head == c->to_tty.tail && c->undecoded == c->undecoded_end) {
        c->to_tty.head = c->to_tty.tail = 0;
        c->undecoded = c->undecoded_end = 0;
    }
    if (c->lz4) /* the next frame, once the last one is written */
        serial_client__lz4_input(c);
    serial_client__update_read(c);
    serial_client__check_eof(c);
}
