/* SPDX-License-Identifier: MIT */
/* A port's line settings and modem outputs as the config and its client want
 * them: applied to the device while it is there, kept as the wish while it
 * is not, re-applied when it returns; RFC 2217 requests act on them. */
#include "serial_outputs.h"

#include <errno.h>
#include <string.h>

#include "log.h"

/* A telnet IAC BRK holds the line in break this long, the classic
 * tcsendbreak() duration, without blocking the loop. */
#define BREAK_MS 250

void serial_outputs_init(struct serial_outputs *o, uv_loop_t *loop,
                         const struct serial_port_config *cfg,
                         const char *label)
{
    o->cfg = cfg;
    o->label = label;
    o->fd = -1;
    o->line = cfg->settings;
    o->control = (struct serial_control){.dtr = true, .rts = true};
    uv_timer_init(loop, &o->break_timer);
    o->break_timer.data = o;
}

void serial_outputs_close(struct serial_outputs *o, uv_close_cb closed)
{
    uv_close((uv_handle_t *)&o->break_timer, closed);
}

/* The line a client (or the config) wants; kept as the wish while the
 * device is missing and applied when it is back. Returns 0 or -errno
 * (the driver refused: the line in effect stays). A printer has no line:
 * a relay target's guest settings are answered, not applied. */
static int set_line(struct serial_outputs *o, const struct serial_line *l)
{
    char text[SERIAL_LINE_TEXT_MAX];

    if (o->fd >= 0 && o->cfg->kind != SERIAL_KIND_PRINTER) {
        int rc = serial_tty_set_line(o->fd, l);
        if (rc < 0) {
            log_warn("%s: %s refused %s: %s", o->label, o->cfg->device,
                     serial_line_str(l, text, sizeof(text)), strerror(-rc));
            return rc;
        }
    }
    o->line = *l;
    log_debug("%s: line %s", o->label, serial_line_str(l, text, sizeof(text)));
    return 0;
}

static int apply_output(struct serial_outputs *o,
                        enum rfc2217_control_target target, bool on)
{
    if (o->fd < 0 || o->cfg->kind == SERIAL_KIND_PRINTER)
        return 0;
    switch (target) {
    case RFC2217_CTL_DTR: return serial_tty_set_modem(o->fd, SERIAL_DTR, on);
    case RFC2217_CTL_RTS: return serial_tty_set_modem(o->fd, SERIAL_RTS, on);
    case RFC2217_CTL_BREAK: return serial_tty_break(o->fd, on);
    default: return 0;
    }
}

/* DTR, RTS or BREAK as ctl says. A device without the line (a pty, some
 * adapters: ENOTTY/EINVAL) takes the wish as set: there is nothing that
 * could contradict it, and clients wait for the value they asked for. */
static void set_control(struct serial_outputs *o,
                        enum rfc2217_control_target target,
                        const struct serial_control *ctl)
{
    bool on = target == RFC2217_CTL_DTR   ? ctl->dtr
              : target == RFC2217_CTL_RTS ? ctl->rts
                                          : ctl->brk;
    int rc = apply_output(o, target, on);

    if (rc < 0 && rc != -ENOTTY && rc != -EINVAL) {
        log_warn("%s: cannot set a modem output of %s: %s", o->label,
                 o->cfg->device, strerror(-rc));
        return;
    }
    if (rc < 0)
        log_debug("%s: %s has no such modem line", o->label, o->cfg->device);
    if (target == RFC2217_CTL_DTR)
        o->control.dtr = on;
    else if (target == RFC2217_CTL_RTS)
        o->control.rts = on;
    else if (target == RFC2217_CTL_BREAK)
        o->control.brk = on;
}

void serial_outputs_new_session(struct serial_outputs *o)
{
    struct serial_control fresh = {.dtr = true, .rts = true, .brk = false};

    if (o->cfg->kind != SERIAL_KIND_TTY)
        return;
    /* A relay target sends the guest's line and lines first thing: the
     * port keeps what it has until then. Resetting it meanwhile would
     * pulse DTR (an Arduino-like device resets) and change the framing
     * for some milliseconds at every reconnect or relay restart. */
    if (o->cfg->target[0]) {
        if (o->fd >= 0)
            serial_tty_flush(o->fd, SERIAL_FLUSH_INPUT);
        return;
    }
    if (!serial_line_equal(&o->line, &o->cfg->settings))
        set_line(o, &o->cfg->settings);
    if (!o->control.dtr)
        set_control(o, RFC2217_CTL_DTR, &fresh);
    if (!o->control.rts)
        set_control(o, RFC2217_CTL_RTS, &fresh);
    if (o->control.brk)
        set_control(o, RFC2217_CTL_BREAK, &fresh);
    if (o->fd >= 0)
        serial_tty_flush(o->fd, SERIAL_FLUSH_INPUT);
}

void serial_outputs_end_session(struct serial_outputs *o)
{
    struct serial_control off = {0};

    if (o->control.brk)
        set_control(o, RFC2217_CTL_BREAK, &off);
}

void serial_outputs_attach(struct serial_outputs *o, int fd, bool modem_lines)
{
    char line[SERIAL_LINE_TEXT_MAX];

    o->fd = fd;
    o->modem_lines = modem_lines;
    if (o->cfg->kind == SERIAL_KIND_PRINTER)
        return;
    int rc = serial_tty_set_line(fd, &o->line);
    if (rc < 0)
        log_warn("%s: cannot set %s on %s: %s", o->label,
                 serial_line_str(&o->line, line, sizeof(line)), o->cfg->device,
                 strerror(-rc));
    /* open() raised DTR and RTS; lower what the client had lowered. */
    if (!o->control.dtr)
        serial_tty_set_modem(fd, SERIAL_DTR, false);
    if (!o->control.rts)
        serial_tty_set_modem(fd, SERIAL_RTS, false);
    o->control.brk = false;
    o->line_errors.valid = false; /* a new device counts from zero */
    serial_tty_flush(fd, SERIAL_FLUSH_INPUT);
}

void serial_outputs_detach(struct serial_outputs *o)
{
    o->fd = -1;
    o->modem_lines = false;
    o->control.brk = false;
    uv_timer_stop(&o->break_timer);
}

static void on_break_end(uv_timer_t *timer)
{
    struct serial_outputs *o = timer->data;

    if (o->fd >= 0 && !o->control.brk)
        serial_tty_break(o->fd, false);
}

/* Timed by the loop rather than tcsendbreak(), which would block it. */
void serial_outputs_telnet_break(struct serial_outputs *o)
{
    if (o->fd < 0 || o->cfg->kind != SERIAL_KIND_TTY)
        return;
    if (serial_tty_break(o->fd, true) == 0)
        uv_timer_start(&o->break_timer, on_break_end, BREAK_MS, 0);
}

/* ---- for the clients' RFC 2217 sessions ---- */

static const struct serial_line *comport_line(void *ctx)
{
    struct serial_outputs *o = ctx;
    return &o->line;
}

static const struct serial_control *comport_control(void *ctx)
{
    struct serial_outputs *o = ctx;
    return &o->control;
}

static void comport_set_line(void *ctx, const struct serial_line *want)
{
    set_line(ctx, want);
}

static void comport_set_control(void *ctx, enum rfc2217_control_target target,
                                const struct serial_control *ctl)
{
    set_control(ctx, target, ctl);
}

/* PURGE-DATA: the kernel's queues (the client drops its own buffers). */
static void comport_purge(void *ctx, uint8_t what)
{
    struct serial_outputs *o = ctx;

    if (o->fd < 0 || o->cfg->kind == SERIAL_KIND_PRINTER)
        return;
    if (what & RFC2217_PURGE_RX)
        serial_tty_flush(o->fd, SERIAL_FLUSH_INPUT);
    if (what & RFC2217_PURGE_TX)
        serial_tty_flush(o->fd, SERIAL_FLUSH_OUTPUT);
}

static int comport_modem_bits(void *ctx)
{
    struct serial_outputs *o = ctx;
    return o->fd >= 0 && o->modem_lines ? serial_tty_get_modem(o->fd) : -1;
}

static uint8_t comport_linestate(void *ctx)
{
    struct serial_outputs *o = ctx;
    return o->fd >= 0 && o->cfg->kind != SERIAL_KIND_PRINTER
               ? serial_tty_linestate(o->fd, &o->line_errors)
               : 0;
}

const struct serial_comport_port_ops serial_outputs_comport_ops = {
    .line = comport_line,
    .control = comport_control,
    .set_line = comport_set_line,
    .set_control = comport_set_control,
    .purge = comport_purge,
    .modem_bits = comport_modem_bits,
    .linestate = comport_linestate,
};
