/* SPDX-License-Identifier: MIT */
/* One [serial.NAME] port: its device, its listener or dialer and its one
 * client, and the policy between them (who may connect, what a lost device
 * means, the line and modem outputs as clients set them). */
#include "serial_port.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "log.h"
#include "net_conn.h"
#include "net_listener.h"
#include "net_tls.h"
#include "serial_client.h"
#include "serial_device.h"
#include "serial_outputs.h"

#define LISTEN_BACKLOG 8 /* one client at a time; a few racing is plenty */
/* A connect-mode session that ran this long resets the backoff. */
#define SESSION_STABLE_MS 10000

struct serial_port {
    uv_loop_t *loop;
    const struct serial_port_config *cfg;
    char label[SERIAL_NAME_MAX + 300]; /* "[serial.NAME] DEV <-> ADDR" */
    bool stopping;
    unsigned live; /* timers, device and clients not yet freed */
    void (*on_stopped)(void *arg);
    void *stopped_arg;

    struct serial_device *dev;
    struct serial_outputs out; /* line and modem outputs; out.fd: device's */

    struct net_listener *listener;
    struct net_tls_ctx *tls;       /* tls = yes: server or client side */
    struct serial_client *client;  /* the one connected client */
    struct serial_client *dialing; /* connect mode: attempt in progress */
    uv_timer_t dial_timer;         /* connect mode: next attempt */
    struct backoff backoff;
    unsigned dial_failures;               /* in a row, for quieter logs */
    const struct serial_event_sink *sink; /* or NULL */
};

static void port_client_event(struct serial_port *p, struct serial_client *c,
                              bool connected, const char *why)
{
    if (p->sink && p->sink->on_client)
        p->sink->on_client(p->sink->ctx, p->cfg->name, serial_client_name(c),
                           connected, why, serial_client_bytes_in(c),
                           serial_client_bytes_out(c));
}

static const struct serial_client_ops port_client_ops;
static const struct serial_device_ops port_device_ops;

/* ---- lifetime ---- */

static void port_release(struct serial_port *p)
{
    if (--p->live > 0 || !p->stopping)
        return;
    void (*on_stopped)(void *) = p->on_stopped;
    void *arg = p->stopped_arg;
    free(p);
    on_stopped(arg);
}

static void on_handle_closed(uv_handle_t *handle)
{
    port_release(handle->data);
}

/* The device or a client is freed. */
static void on_released(void *arg) { port_release(arg); }

static void on_outputs_closed(uv_handle_t *handle)
{
    struct serial_outputs *o = handle->data;
    port_release(
        (struct serial_port *)((char *)o - offsetof(struct serial_port, out)));
}
static void on_client_freed(void *arg) { port_release(arg); }

static void port_timer_init(struct serial_port *p, uv_timer_t *timer)
{
    uv_timer_init(p->loop, timer);
    timer->data = p;
    p->live++;
}

struct serial_port *serial_port_new(uv_loop_t *loop,
                                    const struct serial_port_config *cfg,
                                    const struct serial_event_sink *sink)
{
    struct serial_port *p = calloc(1, sizeof(*p));
    char addr[HOSTPORT_HOST_MAX + 8];

    if (!p)
        return NULL;
    p->loop = loop;
    p->cfg = cfg;
    p->sink = sink;
    p->out.fd = -1;
    snprintf(p->label, sizeof(p->label), "[serial.%s] %s <-> %s", cfg->name,
             cfg->device, hostport_str(&cfg->addr, addr, sizeof(addr)));
    return p;
}

const struct serial_port_config *serial_port_config(const struct serial_port *p)
{
    return p->cfg;
}

void serial_port_rebind(struct serial_port *p,
                        const struct serial_port_config *cfg)
{
    p->cfg = cfg;
    p->out.cfg = cfg;
    /* everything that reads the port's config: the old one goes next */
    if (p->dev)
        serial_device_rebind(p->dev, cfg);
    if (p->client)
        serial_client_rebind(p->client, cfg);
    if (p->dialing)
        serial_client_rebind(p->dialing, cfg);
}

/* ---- clients ---- */

static void serial_port_dial(struct serial_port *p);

static void on_dial_timer(uv_timer_t *timer)
{
    struct serial_port *p = timer->data;

    /* with on_device_loss = close the peer is called once the device is
     * there: port_device_open() */
    if (p->out.fd >= 0 || p->cfg->on_device_loss == SERIAL_LOSS_KEEP)
        serial_port_dial(p);
}

static void dial_later(struct serial_port *p, uint64_t session_ms)
{
    if (p->stopping || p->cfg->peer != SERIAL_PEER_CONNECT)
        return;
    if (session_ms >= SESSION_STABLE_MS)
        backoff_reset(&p->backoff);
    uv_timer_start(&p->dial_timer, on_dial_timer,
                   backoff_next(&p->backoff, (uint32_t)random()), 0);
}

/* Ends the client's session: its peer left, failed, idled, was replaced,
 * or the device went away. graceful: what the device said still goes out
 * first. */
static void port_client_gone(struct serial_port *p, const char *why,
                             bool graceful)
{
    struct serial_client *c = p->client;

    if (!c)
        return;
    p->client = NULL;
    uint64_t session_ms = uv_now(p->loop) - serial_client_since_ms(c);
    log_info("%s: client %s disconnected (%s) after %.1f s; %llu bytes "
             "from it, %llu to it",
             p->label, serial_client_name(c), why, (double)session_ms / 1000,
             (unsigned long long)serial_client_bytes_in(c),
             (unsigned long long)serial_client_bytes_out(c));
    port_client_event(p, c, false, why);
    serial_outputs_end_session(&p->out);
    serial_client_close(c, graceful);
    if (p->dev)
        serial_device_update(p->dev);
    dial_later(p, session_ms);
}

/* A listen-mode client accepted or a connect-mode dial that succeeded. */
static void port_client_ready(struct serial_port *p, struct serial_client *c)
{
    const struct serial_port_config *cfg = p->cfg;

    if (p->stopping) {
        serial_client_close(c, false);
        return;
    }
    if (p->client && !cfg->replace_client) {
        log_notice("%s: client %s refused: %s is connected "
                   "(replace_client = no)",
                   p->label, serial_client_name(c),
                   serial_client_name(p->client));
        serial_client_close(c, false);
        return;
    }
    if (p->out.fd < 0 && cfg->on_device_loss == SERIAL_LOSS_CLOSE) {
        log_notice("%s: client %s refused: %s is missing", p->label,
                   serial_client_name(c), cfg->device);
        serial_client_close(c, false);
        dial_later(p, 0);
        return;
    }
    if (p->client) {
        char why[NET_CONN_NAME_MAX + 16];
        snprintf(why, sizeof(why), "replaced by %s", serial_client_name(c));
        port_client_gone(p, why, false);
        uv_timer_stop(&p->dial_timer);
    }
    p->client = c;
    p->dial_failures = 0;
    log_info("%s: client %s connected", p->label, serial_client_name(c));
    port_client_event(p, c, true, "");
    serial_outputs_new_session(&p->out);
    serial_client_start(c);
    if (p->dev)
        serial_device_update(p->dev);
}

static struct serial_client_params client_params(struct serial_port *p)
{
    return (struct serial_client_params){
        .loop = p->loop,
        .cfg = p->cfg,
        .label = p->label,
        .ops = &port_client_ops,
        .port = p,
        .comport = &p->out,
        .tls = p->tls,
    };
}

static void on_accept(void *ctx, struct net_conn *conn)
{
    struct serial_port *p = ctx;
    struct serial_client_params cp = client_params(p);
    struct serial_client *c = serial_client_accept(&cp, conn);

    if (!c) {
        log_err("%s: out of memory for a client", p->label);
        return;
    }
    p->live++;
    port_client_ready(p, c);
}

/* The TLS context of a port with tls = yes. Returns 0, or -1 after
 * logging why (the port then does not start: no silent plaintext). */
static int port_make_tls(struct serial_port *p)
{
    char err[NET_TLS_ERR_MAX];

    if (!p->cfg->tls.enabled || p->tls)
        return 0;
    p->tls = net_tls_ctx_new(&p->cfg->tls, p->cfg->peer == SERIAL_PEER_LISTEN,
                             err, sizeof(err));
    if (!p->tls) {
        log_err("%s: TLS: %s", p->label, err);
        return -1;
    }
    return 0;
}

/* One attempt; the outcome reaches on_client_dialed(). */
static void serial_port_dial(struct serial_port *p)
{
    struct serial_client_params cp = client_params(p);

    if (p->dialing || p->client || p->stopping)
        return;
    if (port_make_tls(p) < 0) { /* never dial in the clear instead */
        dial_later(p, 0);
        return;
    }
    cp.tls = p->tls;
    p->dialing = serial_client_dial(&cp);
    if (!p->dialing) {
        log_notice("%s: cannot connect: out of memory; retrying", p->label);
        dial_later(p, 0);
        return;
    }
    p->live++;
}

static void on_client_dialed(void *port, struct serial_client *c,
                             const char *why)
{
    struct serial_port *p = port;

    p->dialing = NULL;
    if (!why) {
        port_client_ready(p, c);
        return;
    }
    serial_client_close(c, false);
    /* one line when the peer goes away, not one per attempt */
    if (p->dial_failures++ == 0)
        log_notice("%s: cannot connect: %s; retrying", p->label, why);
    else
        log_debug("%s: cannot connect: %s (attempt %u)", p->label, why,
                  p->dial_failures);
    dial_later(p, 0);
}

static void on_client_gone(void *port, struct serial_client *c, const char *why,
                           bool graceful)
{
    struct serial_port *p = port;

    if (p->client == c)
        port_client_gone(p, why, graceful);
}

static void on_client_to_device(void *port)
{
    struct serial_port *p = port;
    if (p->dev)
        serial_device_write(p->dev);
}

static void on_client_room(void *port)
{
    struct serial_port *p = port;
    if (p->dev)
        serial_device_update(p->dev);
}

static void on_client_break(void *port)
{
    struct serial_port *p = port;
    serial_outputs_telnet_break(&p->out);
}

static const struct serial_client_ops port_client_ops = {
    .on_dialed = on_client_dialed,
    .on_gone = on_client_gone,
    .to_device = on_client_to_device,
    .from_device_room = on_client_room,
    .telnet_break = on_client_break,
    .on_freed = on_client_freed,
    .comport = &serial_outputs_comport_ops,
};

/* ---- the device ---- */

static void dev_read_room(void *ctx, uint8_t **buf, size_t *len)
{
    struct serial_port *p = ctx;

    if (!p->client) {
        *buf = NULL;
        *len = 0;
        return;
    }
    serial_client_device_room(p->client, buf, len);
}

static void dev_read_done(void *ctx, uint8_t *buf, size_t n)
{
    struct serial_port *p = ctx;
    if (p->client)
        serial_client_from_device(p->client, buf, n);
}

static void dev_write_data(void *ctx, const uint8_t **data, size_t *len)
{
    struct serial_port *p = ctx;

    *len = 0;
    if (p->client)
        serial_client_device_data(p->client, data, len);
}

static void dev_write_done(void *ctx, size_t n)
{
    struct serial_port *p = ctx;
    if (p->client)
        serial_client_to_device_done(p->client, n);
}

/* Opened, at start-up or again after it vanished. */
static void dev_open(void *ctx, int fd)
{
    struct serial_port *p = ctx;
    char line[SERIAL_LINE_TEXT_MAX];

    serial_outputs_attach(&p->out, fd, serial_device_has_modem_lines(p->dev));
    if (p->cfg->kind == SERIAL_KIND_PRINTER)
        log_info("%s: %s opened (printer, write-only)", p->label,
                 p->cfg->device);
    else
        log_info("%s: %s opened (%s)", p->label, p->cfg->device,
                 serial_line_str(&p->out.line, line, sizeof(line)));
    if (p->client) {
        serial_client_device_changed(p->client);
        serial_device_write(p->dev); /* what the client sent meanwhile */
    } else if (p->cfg->peer == SERIAL_PEER_CONNECT && !p->dialing &&
               !uv_is_active((uv_handle_t *)&p->dial_timer)) {
        serial_port_dial(p);
    }
}

/* The device vanished: the client is told as on_device_loss says. */
static void dev_lost(void *ctx, const char *why)
{
    struct serial_port *p = ctx;
    struct serial_client *c = p->client;

    serial_outputs_detach(&p->out);
    log_notice("%s: %s vanished (%s); reopening it when it is back", p->label,
               p->cfg->device, why);
    if (c && p->cfg->on_device_loss == SERIAL_LOSS_CLOSE) {
        port_client_gone(p, "device vanished", true);
    } else if (c) {
        log_info("%s: client %s kept while %s is away", p->label,
                 serial_client_name(c), p->cfg->device);
        serial_client_device_changed(c);
    }
}

static const struct serial_device_ops port_device_ops = {
    .read_room = dev_read_room,
    .read_done = dev_read_done,
    .write_data = dev_write_data,
    .write_done = dev_write_done,
    .on_open = dev_open,
    .on_lost = dev_lost,
};

/* ---- start and stop ---- */

int serial_port_listen(struct serial_port *p)
{
    struct endpoint ep = {.tcp = p->cfg->addr};
    char why[ENDPOINT_STR_MAX + 128];
    struct net_guard g;

    if (port_make_tls(p) < 0)
        return -1;
    p->listener = net_listener_open(p->loop, &ep, LISTEN_BACKLOG, 0, on_accept,
                                    p, why, sizeof(why));
    if (!p->listener) {
        log_err("%s: %s", p->label, why);
        return -1;
    }
    snprintf(why, sizeof(why), "[serial.%s] listener", p->cfg->name);
    net_guard_init(&g, why);
    g.allow_any = p->cfg->allow_any || p->cfg->allow.n == 0;
    g.allow = p->cfg->allow;
    g.tls = p->tls;
    if (p->cfg->tls.peer_name)
        snprintf(g.peer_glob, sizeof(g.peer_glob), "%s", p->cfg->tls.peer_name);
    net_listener_set_guard(p->listener, &g);
    return 0;
}

void serial_port_start(struct serial_port *p)
{
    const struct serial_port_config *cfg = p->cfg;

    backoff_init(&p->backoff, cfg->reconnect_min_ms, cfg->reconnect_max_ms);
    serial_outputs_init(&p->out, p->loop, cfg, p->label);
    p->live++; /* its break timer */
    port_timer_init(p, &p->dial_timer);
    log_info("%s: %s, %s%s", p->label,
             cfg->kind == SERIAL_KIND_PRINTER ? "printer" : "tty",
             serial_mode_name(cfg->mode),
             cfg->peer == SERIAL_PEER_LISTEN ? ", listening" : ", dialing out");
    p->dev = serial_device_new(p->loop, cfg, p->label, &port_device_ops, p);
    if (!p->dev) {
        log_err("%s: out of memory", p->label);
        return;
    }
    p->live++;
    serial_device_open(p->dev);
    if (cfg->peer == SERIAL_PEER_CONNECT && !p->dialing &&
        cfg->on_device_loss == SERIAL_LOSS_KEEP)
        serial_port_dial(p);
}

void serial_port_stop(struct serial_port *p, void (*on_stopped)(void *arg),
                      void *arg)
{
    p->stopping = true;
    p->on_stopped = on_stopped;
    p->stopped_arg = arg;
    p->live++; /* no finish while the parts are being stopped */
    port_client_gone(p, "agent stopping", true);
    if (p->dialing) {
        struct serial_client *c = p->dialing;
        p->dialing = NULL;
        serial_client_close(c, false);
    }
    if (p->dev) {
        serial_device_free(p->dev, true, on_released, p);
        p->dev = NULL;
        serial_outputs_detach(&p->out);
    }
    if (p->listener)
        net_listener_close(p->listener);
    p->listener = NULL;
    net_tls_ctx_unref(p->tls); /* connections hold their own reference */
    p->tls = NULL;
    if (p->out.break_timer.data)
        serial_outputs_close(&p->out, on_outputs_closed);
    if (p->dial_timer.data)
        uv_close((uv_handle_t *)&p->dial_timer, on_handle_closed);
    port_release(p);
}

void serial_port_status(const struct serial_port *p,
                        struct serial_port_status *out)
{
    *out = (struct serial_port_status){
        .name = p->cfg->name,
        .device = p->cfg->device,
        .mode = serial_mode_name(p->cfg->mode),
        .kind = p->cfg->kind == SERIAL_KIND_PRINTER ? "printer" : "tty",
        .device_open = p->out.fd >= 0,
        .client = p->client ? serial_client_name(p->client) : NULL,
        .dtr = p->out.control.dtr,
        .rts = p->out.control.rts,
        .bytes_in = p->client ? serial_client_bytes_in(p->client) : 0,
        .bytes_out = p->client ? serial_client_bytes_out(p->client) : 0,
    };
    serial_line_str(&p->out.line, out->line, sizeof(out->line));
}
