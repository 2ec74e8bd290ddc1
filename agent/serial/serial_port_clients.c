/* SPDX-License-Identifier: MIT */
/* Inside a serial port: its network side. Listen mode accepts clients,
 * connect mode dials (with backoff); either way one client at a time, as
 * replace_client and on_device_loss allow, and what the client reports. */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "net_conn.h"
#include "net_listener.h"
#include "net_tls.h"
#include "serial_client.h"
#include "serial_device.h"
#include "serial_port_int.h"

#define LISTEN_BACKLOG 8 /* one client at a time; a few racing is plenty */
/* A connect-mode session that ran this long resets the backoff. */
#define SESSION_STABLE_MS 10000

static void port_client_event(struct serial_port *p, struct serial_client *c,
                              bool connected, const char *why)
{
    if (p->sink && p->sink->on_client)
        p->sink->on_client(p->sink->ctx, p->cfg->name, serial_client_name(c),
                           connected, why, serial_client_bytes_in(c),
                           serial_client_bytes_out(c));
}

static const struct serial_client_ops port_client_ops;
static void on_client_freed(void *arg) { serial_port__release(arg); }

static void on_dial_timer(uv_timer_t *timer)
{
    struct serial_port *p = timer->data;

    /* with on_device_loss = close the peer is called once the device is
     * there: port_device_open() */
    if (p->out.fd >= 0 || p->cfg->on_device_loss == SERIAL_LOSS_KEEP)
        serial_port__dial(p);
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
void serial_port__client_gone(struct serial_port *p, const char *why,
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
        serial_port__client_gone(p, why, false);
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
void serial_port__dial(struct serial_port *p)
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
        serial_port__client_gone(p, why, graceful);
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
