/* SPDX-License-Identifier: MIT */
/* One network client of a serial port: its lifetime, its connection's
 * events, and its telnet/RFC 2217 session (the bytes: serial_client_io.c). */
#include "serial_client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net_conn.h"
#include "net_tcp.h"
#include "serial_telnet.h"
#include "telnet.h"

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

static const struct net_conn_ops client_conn_ops;

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

/* ---- lifetime ---- */

static void client_release(struct serial_client *c)
{
    if (--c->handles > 0)
        return;
    serial_client__relay_free(c);
    serial_client__lz4_free(c);
    net_pace_free(c->pace);
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
    if (p->cfg->kind == SERIAL_KIND_TTY)
        c->pace = net_pace_new(p->loop, p->label, serial_client__rested, c);
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
    if (c->conn && p->tls &&
        net_conn_start_tls(c->conn, p->tls,
                           p->cfg->tls.peer_name ? p->cfg->tls.peer_name
                                                 : p->cfg->addr.host) < 0) {
        net_conn_set_owner(c->conn, NULL, NULL);
        net_conn_close(c->conn, false);
        c->conn = NULL;
    }
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
    net_pace_free(c->pace); /* no rest ends in a closing client */
    c->pace = NULL;
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
            serial_client__queue_last(c, c->ctl + ctl, c->ctl_len - ctl);
        if (serial_client__buf_len(&c->to_net) > data)
            serial_client__queue_last(c, c->to_net.data + c->to_net.head + data,
                                      serial_client__buf_len(&c->to_net) -
                                          data);
    }
    net_conn_close(c->conn, graceful && was_open);
}

/* ---- connection events ---- */

static void on_connected(void *owner, struct net_conn *conn, int status)
{
    struct serial_client *c = owner;
    if (c->phase != CLIENT_DIALING)
        return;
    if (status < 0) {
        const char *tls = net_conn_tls_error(conn);
        c->p.ops->on_dialed(c->p.port, c,
                            tls                      ? tls
                            : status == UV_ETIMEDOUT ? "timed out"
                                                     : uv_strerror(status));
        return;
    }
    if (c->p.cfg->target[0]) { /* the relay's handshake first */
        serial_client__relay_start(c);
        return;
    }
    c->phase = CLIENT_OPEN;
    c->p.ops->on_dialed(c->p.port, c, NULL);
}

static void on_gone(void *owner, struct net_conn *conn, int status)
{
    struct serial_client *c = owner;

    if (c->relay_hs && c->phase == CLIENT_DIALING) {
        /* TLS 1.3: the relay refuses our certificate after our side of
         * the handshake is done, so its alert arrives here */
        const char *tls = net_conn_tls_error(conn);
        serial_client__relay_free(c);
        c->p.ops->on_dialed(c->p.port, c,
                            tls                ? tls
                            : status == UV_EOF ? "the relay closed during "
                                                 "the handshake"
                                               : uv_strerror(status));
        return;
    }
    if (!serial_client__open(c))
        return;
    if (status == UV_EOF) {
        c->eof = true;
        serial_client__check_eof(c);
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
    .on_alloc = serial_client__on_alloc,
    .on_data = serial_client__on_data,
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
    return serial_client__queue_ctl(ctx, bytes, len);
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

static void comport_flush(void *ctx) { serial_client__flush(ctx); }

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
        .port = c->p.comport,
        .client_ops = &client_comport_ops,
        .client_ctx = c,
    };
    serial_telnet_start(&c->telnet, c->p.cfg->mode, &client_telnet_ops, c);
}

void serial_client_rebind(struct serial_client *c,
                          const struct serial_port_config *cfg)
{
    c->p.cfg = cfg;
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
    serial_client__update_read(c);
    serial_client__flush(c);
    serial_client__resume_input(c);
}

void serial_client_device_changed(struct serial_client *c)
{
    if (c->telnet_on)
        serial_comport_device_changed(&c->telnet.comport);
}
