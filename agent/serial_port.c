/* One serial port's policy: who may connect, what a lost device means for
 * the client, the line and modem outputs as clients set them, dialing out
 * again, and the port's start and stop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "serial_port.h"
#include "serial_tty.h"

static void on_port_handle_closed(uv_handle_t *handle)
{
    struct serial_port *p = handle->data;
    serial_bridge_release(p->bridge);
}

static void port_timer_init(struct serial_port *p, uv_timer_t *timer)
{
    uv_timer_init(p->loop, timer);
    timer->data = p;
    serial_bridge_hold(p->bridge);
}

static void port_close_handle(uv_handle_t *handle)
{
    if (!uv_is_closing(handle))
        uv_close(handle, on_port_handle_closed);
}

struct serial_client *serial_port_client(const struct serial_port *p)
{
    return p->client && p->client->phase == CLIENT_OPEN ? p->client : NULL;
}

static bool line_equal(const struct serial_line *a, const struct serial_line *b)
{
    return a->baud == b->baud && a->data_bits == b->data_bits &&
           a->parity == b->parity && a->stop == b->stop &&
           a->flow_out == b->flow_out && a->flow_in == b->flow_in;
}

/* ---- line and modem outputs ---- */

/* The line a client (or the config) wants; kept as the wish while the
 * device is missing and applied when it is back. Returns 0 or -errno
 * (the driver refused: the line in effect stays). Reached from RFC 2217
 * requests and from a new session's reset. */
int serial_port_set_line(struct serial_port *p, const struct serial_line *l)
{
    char text[SERIAL_LINE_TEXT_MAX];

    if (p->fd >= 0) {
        int rc = serial_tty_set_line(p->fd, l);
        if (rc < 0) {
            log_warn("%s: %s refused %s: %s", p->label, p->cfg->device,
                     serial_line_str(l, text, sizeof(text)), strerror(-rc));
            return rc;
        }
    }
    p->line = *l;
    log_debug("%s: line %s", p->label, serial_line_str(l, text, sizeof(text)));
    return 0;
}

static int apply_output(struct serial_port *p,
                        enum rfc2217_control_target target, bool on)
{
    if (p->fd < 0)
        return 0;
    switch (target) {
    case RFC2217_CTL_DTR: return serial_tty_set_modem(p->fd, SERIAL_DTR, on);
    case RFC2217_CTL_RTS: return serial_tty_set_modem(p->fd, SERIAL_RTS, on);
    case RFC2217_CTL_BREAK: return serial_tty_break(p->fd, on);
    default: return 0;
    }
}

/* DTR, RTS or BREAK as ctl says. A device without the line (a pty, some
 * adapters: ENOTTY/EINVAL) takes the wish as set: there is nothing that
 * could contradict it, and clients wait for the value they asked for. */
void serial_port_set_control(struct serial_port *p,
                             enum rfc2217_control_target target,
                             const struct serial_control *ctl)
{
    bool on = target == RFC2217_CTL_DTR   ? ctl->dtr
              : target == RFC2217_CTL_RTS ? ctl->rts
                                          : ctl->brk;
    int rc = apply_output(p, target, on);

    if (rc < 0 && rc != -ENOTTY && rc != -EINVAL) {
        log_warn("%s: cannot set a modem output of %s: %s", p->label,
                 p->cfg->device, strerror(-rc));
        return;
    }
    if (rc < 0)
        log_debug("%s: %s has no such modem line", p->label, p->cfg->device);
    if (target == RFC2217_CTL_DTR)
        p->control.dtr = on;
    else if (target == RFC2217_CTL_RTS)
        p->control.rts = on;
    else if (target == RFC2217_CTL_BREAK)
        p->control.brk = on;
}

static void on_break_end(uv_timer_t *timer)
{
    struct serial_port *p = timer->data;

    if (p->fd >= 0 && !p->control.brk)
        serial_tty_break(p->fd, false);
}

/* telnet IAC BRK: a break of SERIAL_BREAK_MS, timed by the loop rather
 * than tcsendbreak(), which would block it. */
void serial_port_telnet_break(struct serial_port *p)
{
    if (p->fd < 0 || p->cfg->kind != SERIAL_KIND_TTY)
        return;
    if (serial_tty_break(p->fd, true) == 0)
        uv_timer_start(&p->break_timer, on_break_end, SERIAL_BREAK_MS, 0);
}

/* RFC 2217 PURGE-DATA: our buffers and the kernel's. */
void serial_port_purge(struct serial_port *p, uint8_t what)
{
    struct serial_client *c = serial_port_client(p);
    bool printer = p->cfg->kind == SERIAL_KIND_PRINTER;

    if (what & RFC2217_PURGE_RX) {
        if (p->fd >= 0 && !printer)
            serial_tty_flush(p->fd, SERIAL_FLUSH_INPUT);
        if (c)
            serial_net_purge_output(c);
    }
    if (what & RFC2217_PURGE_TX) {
        if (p->fd >= 0 && !printer)
            serial_tty_flush(p->fd, SERIAL_FLUSH_OUTPUT);
        if (c)
            c->to_tty.head = c->to_tty.tail;
    }
}

/* A new session starts from the config's line with DTR and RTS up, as if
 * the device had just been opened; what the device said before is not
 * for this client. */
static void session_reset(struct serial_port *p)
{
    struct serial_control fresh = {.dtr = true, .rts = true, .brk = false};

    if (p->cfg->kind != SERIAL_KIND_TTY)
        return;
    if (!line_equal(&p->line, &p->cfg->settings))
        serial_port_set_line(p, &p->cfg->settings);
    if (!p->control.dtr)
        serial_port_set_control(p, RFC2217_CTL_DTR, &fresh);
    if (!p->control.rts)
        serial_port_set_control(p, RFC2217_CTL_RTS, &fresh);
    if (p->control.brk)
        serial_port_set_control(p, RFC2217_CTL_BREAK, &fresh);
    if (p->fd >= 0)
        serial_tty_flush(p->fd, SERIAL_FLUSH_INPUT);
}

/* ---- clients ---- */

static void on_dial_timer(uv_timer_t *timer)
{
    struct serial_port *p = timer->data;

    /* with on_device_loss = close the peer is called once the device is
     * there: serial_port_device_back() */
    if (p->fd >= 0 || p->cfg->on_device_loss == SERIAL_LOSS_KEEP)
        serial_net_dial(p);
}

static void dial_later(struct serial_port *p, uint64_t session_ms)
{
    if (p->stopping || p->cfg->peer != SERIAL_PEER_CONNECT)
        return;
    if (session_ms >= SERIAL_SESSION_STABLE_MS)
        backoff_reset(&p->backoff);
    uv_timer_start(&p->dial_timer, on_dial_timer,
                   backoff_next(&p->backoff, (uint32_t)random()), 0);
}

/* A listen-mode client accepted or a connect-mode dial that succeeded. */
void serial_port_client_ready(struct serial_port *p, struct serial_client *c)
{
    const struct serial_port_config *cfg = p->cfg;

    if (p->stopping) {
        serial_net_close(c, false);
        return;
    }
    if (p->client && !cfg->replace_client) {
        log_notice("%s: client %s refused: %s is connected "
                   "(replace_client = no)",
                   p->label, c->name, p->client->name);
        serial_net_close(c, false);
        return;
    }
    if (p->fd < 0 && cfg->on_device_loss == SERIAL_LOSS_CLOSE) {
        log_notice("%s: client %s refused: %s is missing", p->label, c->name,
                   cfg->device);
        serial_net_close(c, false);
        dial_later(p, 0);
        return;
    }
    if (p->client) {
        char why[sizeof(c->name) + 16];
        snprintf(why, sizeof(why), "replaced by %s", c->name);
        serial_port_client_gone(p, why, false);
        uv_timer_stop(&p->dial_timer);
    }
    p->client = c;
    c->port = p;
    p->dial_failures = 0;
    log_info("%s: client %s connected", p->label, c->name);
    session_reset(p);
    serial_net_start(c, cfg->idle_timeout_s);
    if (cfg->mode != SERIAL_MODE_RAW)
        serial_telnet_start(c);
    serial_net_flush(c);
    serial_device_update(p);
}

/* Ends the client's session: its peer left, failed, idled, was replaced,
 * or the device went away. graceful: what the device said still goes
 * out first. */
void serial_port_client_gone(struct serial_port *p, const char *why,
                             bool graceful)
{
    struct serial_client *c = p->client;
    struct serial_control off = {0};

    if (!c)
        return;
    p->client = NULL;
    uint64_t session_ms = uv_now(p->loop) - c->since_ms;
    log_info("%s: client %s disconnected (%s) after %.1f s; %llu bytes "
             "from it, %llu to it",
             p->label, c->name, why, (double)session_ms / 1000,
             (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
    serial_rfc2217_stop(p);
    if (p->control.brk)
        serial_port_set_control(p, RFC2217_CTL_BREAK, &off);
    serial_net_close(c, graceful);
    serial_device_update(p);
    dial_later(p, session_ms);
}

/* A dial that failed at any step (resolving, connecting, timeout). */
void serial_port_dial_failed(struct serial_port *p, const char *why)
{
    /* one line when the peer goes away, not one per attempt */
    if (p->dial_failures++ == 0)
        log_notice("%s: cannot connect: %s; retrying", p->label, why);
    else
        log_debug("%s: cannot connect: %s (attempt %u)", p->label, why,
                  p->dial_failures);
    dial_later(p, 0);
}

/* ---- the device ---- */

/* The device side saw the device go (read/write errors, POLLERR, a
 * hang-up): the client is told as on_device_loss says. */
void serial_port_device_lost(struct serial_port *p, const char *why)
{
    struct serial_client *c = serial_port_client(p);

    log_notice("%s: %s vanished (%s); reopening it when it is back", p->label,
               p->cfg->device, why);
    p->control.brk = false;
    if (c && p->cfg->on_device_loss == SERIAL_LOSS_CLOSE) {
        serial_port_client_gone(p, "device vanished", true);
    } else if (c) {
        log_info("%s: client %s kept while %s is away", p->label, c->name,
                 p->cfg->device);
        serial_rfc2217_device_changed(p);
    }
}

/* Opened, at start-up or again after it vanished. */
void serial_port_device_back(struct serial_port *p)
{
    struct serial_client *c = serial_port_client(p);
    char line[SERIAL_LINE_TEXT_MAX];

    if (p->cfg->kind == SERIAL_KIND_PRINTER)
        log_info("%s: %s opened (printer, write-only)", p->label,
                 p->cfg->device);
    else
        log_info("%s: %s opened (%s)", p->label, p->cfg->device,
                 serial_line_str(&p->line, line, sizeof(line)));
    if (c) {
        serial_rfc2217_device_changed(p);
        serial_device_write(p); /* what the client sent meanwhile */
    } else if (p->cfg->peer == SERIAL_PEER_CONNECT && !p->dialing &&
               !uv_is_active((uv_handle_t *)&p->dial_timer)) {
        serial_net_dial(p);
    }
}

/* ---- start and stop ---- */

void serial_port_start(struct serial_port *p, struct serial_bridge *b,
                       uv_loop_t *loop, const struct serial_port_config *cfg,
                       int listen_fd)
{
    p->bridge = b;
    p->loop = loop;
    p->cfg = cfg;
    p->line = cfg->settings;
    p->control = (struct serial_control){.dtr = true, .rts = true};
    backoff_init(&p->backoff, cfg->reconnect_min_ms, cfg->reconnect_max_ms);
    serial_device_init(p);
    port_timer_init(p, &p->break_timer);
    port_timer_init(p, &p->status_timer);
    port_timer_init(p, &p->dial_timer);
    if (cfg->peer == SERIAL_PEER_LISTEN)
        serial_net_listen(p, listen_fd); /* logs why not */
    log_info("%s: %s, %s%s", p->label,
             cfg->kind == SERIAL_KIND_PRINTER ? "printer" : "tty",
             serial_mode_name(cfg->mode),
             cfg->peer == SERIAL_PEER_LISTEN ? ", listening" : ", dialing out");
    serial_device_open(p);
    if (cfg->peer == SERIAL_PEER_CONNECT && !p->dialing &&
        cfg->on_device_loss == SERIAL_LOSS_KEEP)
        serial_net_dial(p);
}

/* Makes the "[serial.NAME] DEVICE <-> HOST:PORT" every log line starts
 * with. */
void serial_port_label(struct serial_port *p,
                       const struct serial_port_config *cfg)
{
    char addr[HOSTPORT_HOST_MAX + 8];

    snprintf(p->label, sizeof(p->label), "[serial.%s] %s <-> %s", cfg->name,
             cfg->device, hostport_str(&cfg->addr, addr, sizeof(addr)));
}

void serial_port_stop(struct serial_port *p)
{
    p->stopping = true;
    serial_port_client_gone(p, "agent stopping", true);
    if (p->dialing) {
        struct serial_client *c = p->dialing;
        p->dialing = NULL;
        serial_net_close(c, false);
    }
    serial_device_close(p, true);
    port_close_handle((uv_handle_t *)&p->retry_timer);
    port_close_handle((uv_handle_t *)&p->break_timer);
    port_close_handle((uv_handle_t *)&p->status_timer);
    port_close_handle((uv_handle_t *)&p->dial_timer);
    if (p->listener_init)
        port_close_handle((uv_handle_t *)&p->listener);
}
