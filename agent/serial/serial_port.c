/* SPDX-License-Identifier: MIT */
/* One [serial.NAME] port: its device, its listener or dialer and its one
 * client, and the policy between them (who may connect, what a lost device
 * means, the line and modem outputs as clients set them). This file: the
 * port's life, its device and what the device reports, start and stop,
 * status; the network side is in serial_port_clients.c. */
#include "serial_port.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "net_listener.h"
#include "net_tls.h"
#include "serial_client.h"
#include "serial_device.h"
#include "serial_port_int.h"

static const struct serial_device_ops port_device_ops;

/* ---- lifetime ---- */

void serial_port__release(struct serial_port *p)
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
    serial_port__release(handle->data);
}

/* The device is freed (a client: on_client_freed). */
static void on_released(void *arg) { serial_port__release(arg); }

static void on_outputs_closed(uv_handle_t *handle)
{
    struct serial_outputs *o = handle->data;
    serial_port__release(
        (struct serial_port *)((char *)o - offsetof(struct serial_port, out)));
}

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
    /* a relay target is named too: one relay serves many ports */
    snprintf(p->label, sizeof(p->label), "[serial.%s] %s <-> %s%s%s", cfg->name,
             cfg->device, hostport_str(&cfg->addr, addr, sizeof(addr)),
             cfg->target[0] ? "/" : "", cfg->target);
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
        serial_port__dial(p);
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
        serial_port__client_gone(p, "device vanished", true);
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
        serial_port__dial(p);
}

void serial_port_stop(struct serial_port *p, void (*on_stopped)(void *arg),
                      void *arg)
{
    p->stopping = true;
    p->on_stopped = on_stopped;
    p->stopped_arg = arg;
    p->live++; /* no finish while the parts are being stopped */
    serial_port__client_gone(p, "agent stopping", true);
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
    serial_port__release(p);
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
