/* SPDX-License-Identifier: MIT */
/* One network client of a serial port: its connection, its buffers both
 * ways (which the device side reads from and writes into in place), and
 * its telnet/RFC 2217 session. */
#include "serial_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net_conn.h"
#include "net_tcp.h"
#include "serial_telnet.h"
#include "telnet.h"

/* Per direction: what one read at full speed brings (ser2net's tuned
 * setting, and a 4 Mbaud line's worth of 160 ms), and the most a slow
 * peer can make us hold. */
#define BUF_SIZE (64 * 1024)
/* Telnet answers not yet sent. */
#define CTL_SIZE 4096
/* Reading the socket is not worth a system call for less room. */
#define NET_READ_MIN 4096
/* Modem and line state are polled for RFC 2217 notifications this often:
 * the lines change at human speed, and it costs one ioctl. */
#define STATUS_POLL_MS 250
/* Graceful closes get this long to hand over the last bytes: well inside
 * the agent's 2 s SIGTERM budget. */
#define CLOSE_LINGER_MS 500
/* connect mode: a dial that neither succeeds nor fails (packets dropped)
 * is given up after this, then retried with backoff. */
#define CONNECT_TIMEOUT_MS 10000

/* A client behind a dead network is noticed within ~25 s, and one that
 * stopped acknowledging within 30 s: serial clients reconnect and replace
 * their stale session (replace_client). */
static const struct net_tcp_keepalive serial_keepalive = {
    .idle_s = 10,
    .interval_s = 5,
    .count = 3,
    .user_timeout_ms = 30000,
};

/* A linear buffer: bytes [head, tail) are pending. */
struct buf {
    uint8_t *data;
    size_t head, tail;
};

enum client_phase {
    CLIENT_DIALING,
    CLIENT_OPEN,
    CLIENT_CLOSING,
};

struct serial_client {
    struct serial_client_params p;
    struct net_conn *conn;
    enum client_phase phase;
    bool started;     /* the port took it */
    bool eof;         /* the peer sent everything it will send */
    bool silent;      /* never handed out: its end is nobody's business */
    unsigned writing; /* buffers of the write in flight */
    size_t writing_ctl, writing_data;
    uv_timer_t idle_timer, poll_timer;
    int handles; /* timers not yet closed, and the connection */
    char name[NET_CONN_NAME_MAX];
    uint64_t since_ms, active_ms;
    uint64_t bytes_in, bytes_out;

    /* network -> device: [head, tail) decoded data for the device;
     * [undecoded, undecoded_end) raw telnet input not decoded yet */
    struct buf to_tty;
    size_t undecoded, undecoded_end;
    /* device -> network: data (telnet-escaped as needed) and, sent before
     * it, telnet answers */
    struct buf to_net;
    uint8_t ctl[CTL_SIZE];
    size_t ctl_len;

    bool telnet_on;
    struct serial_telnet telnet;
    uint8_t to_tty_mem[BUF_SIZE];
    uint8_t to_net_mem[BUF_SIZE];
};

static const struct net_conn_ops client_conn_ops;
static void client_flush(struct serial_client *c);
static void client_update_read(struct serial_client *c);

static size_t buf_len(const struct buf *b) { return b->tail - b->head; }

const char *serial_client_name(const struct serial_client *c)
{
    return c->name;
}

uint64_t serial_client_since_ms(const struct serial_client *c)
{
    return c->since_ms;
}

uint64_t serial_client_bytes_in(const struct serial_client *c)
{
    return c->bytes_in;
}

uint64_t serial_client_bytes_out(const struct serial_client *c)
{
    return c->bytes_out;
}

static bool client_open(const struct serial_client *c)
{
    return c->phase == CLIENT_OPEN && c->started;
}

static void client_touch(struct serial_client *c)
{
    c->active_ms = uv_now(c->p.loop);
}

/* ---- lifetime ---- */

static void client_release(struct serial_client *c)
{
    if (--c->handles > 0)
        return;
    void (*on_freed)(void *) = c->silent ? NULL : c->p.ops->on_freed;
    void *port = c->p.port;
    free(c);
    if (on_freed)
        on_freed(port);
}

static void on_timer_closed(uv_handle_t *handle)
{
    client_release(handle->data);
}

static struct serial_client *client_new(const struct serial_client_params *p)
{
    struct serial_client *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->p = *p;
    uv_timer_init(p->loop, &c->idle_timer);
    uv_timer_init(p->loop, &c->poll_timer);
    c->idle_timer.data = c->poll_timer.data = c;
    c->handles = 3; /* two timers, the connection */
    c->to_tty.data = c->to_tty_mem;
    c->to_net.data = c->to_net_mem;
    return c;
}

static void client_setup_conn(struct serial_client *c, struct net_conn *conn)
{
    c->conn = conn;
    net_conn_set_owner(conn, &client_conn_ops, c);
    net_conn_set_keepalive(conn, &serial_keepalive);
    net_conn_set_linger(conn, CLOSE_LINGER_MS);
}

struct serial_client *serial_client_accept(const struct serial_client_params *p,
                                           struct net_conn *conn)
{
    struct serial_client *c = client_new(p);

    if (!c) {
        net_conn_close(conn, false);
        return NULL;
    }
    c->phase = CLIENT_OPEN;
    client_setup_conn(c, conn);
    snprintf(c->name, sizeof(c->name), "%s", net_conn_name(conn));
    return c;
}

struct serial_client *serial_client_dial(const struct serial_client_params *p)
{
    struct endpoint ep = {.tcp = p->cfg->addr};
    struct serial_client *c = client_new(p);

    if (!c)
        return NULL;
    c->phase = CLIENT_DIALING;
    endpoint_str(&ep, c->name, sizeof(c->name));
    c->conn =
        net_conn_connect(p->loop, &ep, CONNECT_TIMEOUT_MS, &client_conn_ops, c);
    if (!c->conn) {
        c->handles = 2;
        c->silent = true;
        uv_close((uv_handle_t *)&c->idle_timer, on_timer_closed);
        uv_close((uv_handle_t *)&c->poll_timer, on_timer_closed);
        return NULL;
    }
    client_setup_conn(c, c->conn);
    return c;
}

void serial_client_close(struct serial_client *c, bool graceful)
{
    if (c->phase == CLIENT_CLOSING)
        return;
    bool was_open = c->phase == CLIENT_OPEN;
    c->phase = CLIENT_CLOSING;
    if (c->telnet_on)
        serial_comport_stop(&c->telnet.comport);
    uv_close((uv_handle_t *)&c->idle_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->poll_timer, on_timer_closed);
    if (graceful && was_open) {
        /* what is not in flight yet goes out now; the connection lingers
         * briefly for it */
        size_t ctl = c->writing ? c->writing_ctl : 0;
        size_t data = c->writing ? c->writing_data : 0;
        if (c->ctl_len > ctl)
            net_conn_queue_copy(c->conn, c->ctl + ctl, c->ctl_len - ctl);
        if (buf_len(&c->to_net) > data)
            net_conn_queue_copy(c->conn, c->to_net.data + c->to_net.head + data,
                                buf_len(&c->to_net) - data);
    }
    net_conn_close(c->conn, graceful && was_open);
}

/* ---- sending: telnet answers first, then the device's data ---- */

static void on_write_done(struct serial_client *c);

static void release_ctl(void *ctx, void *base, size_t len)
{
    struct serial_client *c = ctx;
    (void)base;
    (void)len;
    if (--c->writing == 0)
        on_write_done(c);
}

static bool client_queue_ctl(struct serial_client *c, const uint8_t *bytes,
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
static void client_flush(struct serial_client *c)
{
    bool suspended = c->telnet_on && c->telnet.comport.suspended;

    if (!client_open(c) || c->writing || suspended)
        return;
    c->writing_ctl = c->ctl_len;
    c->writing_data = buf_len(&c->to_net);
    if (c->writing_ctl) {
        c->writing++;
        net_conn_queue(c->conn, c->ctl, c->writing_ctl, release_ctl, c);
    }
    if (c->writing_data) {
        c->writing++;
        net_conn_queue(c->conn, c->to_net.data + c->to_net.head,
                       c->writing_data, release_ctl, c);
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
    return BUF_SIZE - buf_len(&c->to_tty);
}

/* The peer finished sending: the session ends once the device took all
 * of it (a print job must not lose its tail). */
static void client_check_eof(struct serial_client *c)
{
    if (client_open(c) && c->eof && c->to_tty.head == c->to_tty.tail &&
        c->undecoded == c->undecoded_end)
        c->p.ops->on_gone(c->p.port, c, "closed by peer", true);
}

/* Reading stops while the device has a buffer's worth to take, or the
 * telnet decoder waits for room for its answers. */
static void client_update_read(struct serial_client *c)
{
    bool want = client_open(c) && !c->eof && c->undecoded == c->undecoded_end &&
                to_tty_room(c) >= NET_READ_MIN;

    if (want)
        net_conn_read_start(c->conn);
    else if (c->phase == CLIENT_OPEN)
        net_conn_read_stop(c->conn);
}

/* Decodes the client's telnet input and sends the answers, until all is
 * decoded, or a write in flight will call back here once the answers
 * made room (the socket took everything: decode on at once). */
static void pump_input(struct serial_client *c)
{
    do {
        serial_telnet_input(&c->telnet, c->to_tty.data, &c->undecoded,
                            c->undecoded_end, &c->to_tty.tail);
        if (c->undecoded == c->undecoded_end)
            c->undecoded = c->undecoded_end = c->to_tty.tail;
        if (!client_open(c))
            return;
        client_flush(c);
    } while (c->undecoded != c->undecoded_end && !c->writing);
}

static void on_alloc(void *owner, struct net_conn *conn, uv_buf_t *out)
{
    struct serial_client *c = owner;
    struct buf *b = &c->to_tty;
    (void)conn;

    if (c->undecoded != c->undecoded_end) {
        *out = uv_buf_init(NULL, 0); /* decoding waits: read later */
        return;
    }
    if (b->head == b->tail) {
        b->head = b->tail = 0;
    } else if (BUF_SIZE - b->tail < NET_READ_MIN) {
        memmove(b->data, b->data + b->head, buf_len(b));
        b->tail -= b->head;
        b->head = 0;
    }
    c->undecoded = c->undecoded_end = b->tail;
    *out =
        uv_buf_init((char *)b->data + b->tail, (unsigned)(BUF_SIZE - b->tail));
}

static void on_data(void *owner, struct net_conn *conn, const uint8_t *data,
                    size_t n)
{
    struct serial_client *c = owner;
    (void)conn;
    (void)data; /* it landed at to_tty's tail (on_alloc) */

    if (!client_open(c))
        return;
    c->bytes_in += n;
    client_touch(c);
    if (!c->telnet_on) {
        c->to_tty.tail += n;
    } else {
        c->undecoded_end = c->undecoded + n;
        pump_input(c);
        if (!client_open(c))
            return;
    }
    c->p.ops->to_device(c->p.port);
    if (client_open(c))
        client_update_read(c);
}

static void on_write_done(struct serial_client *c)
{
    consume(c, c->writing_ctl, c->writing_data);
    if (!client_open(c))
        return;
    client_touch(c);
    if (c->undecoded != c->undecoded_end) { /* it waited for answer room */
        pump_input(c);
        if (!client_open(c))
            return;
        c->p.ops->to_device(c->p.port);
        if (!client_open(c))
            return;
        client_update_read(c);
    }
    client_flush(c);
    /* the device may be read again: the buffer has room */
    c->p.ops->from_device_room(c->p.port);
    client_check_eof(c);
}

/* ---- connection events ---- */

static void on_connected(void *owner, struct net_conn *conn, int status)
{
    struct serial_client *c = owner;
    (void)conn;

    if (c->phase != CLIENT_DIALING)
        return;
    if (status < 0) {
        c->p.ops->on_dialed(c->p.port, c,
                            status == UV_ETIMEDOUT ? "timed out"
                                                   : uv_strerror(status));
        return;
    }
    c->phase = CLIENT_OPEN;
    c->p.ops->on_dialed(c->p.port, c, NULL);
}

static void on_gone(void *owner, struct net_conn *conn, int status)
{
    struct serial_client *c = owner;
    (void)conn;

    if (!client_open(c))
        return;
    if (status == UV_EOF) {
        c->eof = true;
        client_check_eof(c);
        return;
    }
    c->p.ops->on_gone(c->p.port, c, uv_strerror(status), false);
}

static void on_conn_closed(void *owner, struct net_conn *conn)
{
    (void)conn;
    client_release(owner);
}

static const struct net_conn_ops client_conn_ops = {
    .on_connected = on_connected,
    .on_alloc = on_alloc,
    .on_data = on_data,
    .on_gone = on_gone,
    .on_closed = on_conn_closed,
};

/* ---- the session ---- */

static void on_idle_check(uv_timer_t *timer)
{
    struct serial_client *c = timer->data;
    uint64_t limit = (uint64_t)c->p.cfg->idle_timeout_s * 1000;
    uint64_t quiet = uv_now(c->p.loop) - c->active_ms;
    char why[64];

    if (quiet < limit) {
        uv_timer_start(&c->idle_timer, on_idle_check, limit - quiet, 0);
        return;
    }
    snprintf(why, sizeof(why), "idle for %u s", c->p.cfg->idle_timeout_s);
    c->p.ops->on_gone(c->p.port, c, why, true);
}

static bool telnet_answer(void *ctx, const uint8_t *bytes, size_t len)
{
    return client_queue_ctl(ctx, bytes, len);
}

static size_t telnet_answer_room(void *ctx)
{
    struct serial_client *c = ctx;
    return CTL_SIZE - c->ctl_len;
}

static void telnet_brk(void *ctx)
{
    struct serial_client *c = ctx;
    c->p.ops->telnet_break(c->p.port);
}

static const struct serial_telnet_ops client_telnet_ops = {
    .answer = telnet_answer,
    .answer_room = telnet_answer_room,
    .brk = telnet_brk,
};

static void comport_flush(void *ctx) { client_flush(ctx); }

/* PURGE-DATA: RX drops what the device said that was not sent yet (what
 * is in flight is the kernel's by now); TX what the device did not take. */
static void comport_purge(void *ctx, uint8_t what)
{
    struct serial_client *c = ctx;

    if (what & RFC2217_PURGE_RX)
        c->to_net.tail = c->to_net.head + (c->writing ? c->writing_data : 0);
    if (what & RFC2217_PURGE_TX)
        c->to_tty.head = c->to_tty.tail;
}

static void on_status_poll(uv_timer_t *timer)
{
    struct serial_client *c = timer->data;
    serial_comport_poll(&c->telnet.comport);
}

static void comport_poll(void *ctx, bool on)
{
    struct serial_client *c = ctx;

    if (!on || c->phase != CLIENT_OPEN)
        uv_timer_stop(&c->poll_timer);
    else if (!uv_is_active((uv_handle_t *)&c->poll_timer))
        uv_timer_start(&c->poll_timer, on_status_poll, STATUS_POLL_MS,
                       STATUS_POLL_MS);
}

static const struct serial_comport_client_ops client_comport_ops = {
    .answer = telnet_answer,
    .answer_room = telnet_answer_room,
    .flush = comport_flush,
    .purge = comport_purge,
    .poll = comport_poll,
};

static void client_start_telnet(struct serial_client *c)
{
    struct serial_comport *cp = &c->telnet.comport;

    c->telnet_on = true;
    c->telnet.label = c->p.label;
    c->telnet.client = c->name;
    *cp = (struct serial_comport){
        .label = c->p.label,
        .client = c->name,
        .port_name = c->p.cfg->name,
        .port_ops = c->p.ops->comport,
        .port = c->p.port,
        .client_ops = &client_comport_ops,
        .client_ctx = c,
    };
    serial_telnet_start(&c->telnet, c->p.cfg->mode, &client_telnet_ops, c);
}

void serial_client_start(struct serial_client *c)
{
    c->started = true;
    c->since_ms = c->active_ms = uv_now(c->p.loop);
    if (c->p.cfg->idle_timeout_s)
        uv_timer_start(&c->idle_timer, on_idle_check,
                       (uint64_t)c->p.cfg->idle_timeout_s * 1000, 0);
    if (c->p.cfg->mode != SERIAL_MODE_RAW)
        client_start_telnet(c);
    client_update_read(c);
    client_flush(c);
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
        memmove(b->data, b->data + b->head, buf_len(b));
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
    client_touch(c);
    client_flush(c);
}

void serial_client_device_data(struct serial_client *c, const uint8_t **data,
                               size_t *len)
{
    *data = c->to_tty.data + c->to_tty.head;
    *len = buf_len(&c->to_tty);
}

void serial_client_to_device_done(struct serial_client *c, size_t n)
{
    c->to_tty.head += n;
    if (c->to_tty.head == c->to_tty.tail && c->undecoded == c->undecoded_end) {
        c->to_tty.head = c->to_tty.tail = 0;
        c->undecoded = c->undecoded_end = 0;
    }
    client_update_read(c);
    client_check_eof(c);
}

void serial_client_device_changed(struct serial_client *c)
{
    if (c->telnet_on)
        serial_comport_device_changed(&c->telnet.comport);
}
