/* SPDX-License-Identifier: MIT */
/* What a serial target knows of the agent's port from its RFC 2217
 * notifications (modem lines, line errors), each change logged, at most
 * LOG_BURST lines per LOG_WINDOW_MS and the rest summed up after. */
#include "serial_target_port.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "relay_proto.h"
#include "rfc2217.h"

/* A real line changes at most every agent poll (250 ms); a flapping one
 * or an agent that floods notifications gets this many lines... */
#define LOG_BURST 5
/* ...per window, then one line when it ends: how many changes were held
 * back and the state they ended in. */
#define LOG_WINDOW_MS 10000
/* "CTS on DSR on CD off RI off", and the errors' names. */
#define TEXT_MAX 64

struct serial_target_port {
    uv_timer_t window; /* runs while a window is open */
    char target[RELAY_TARGET_MAX + 1];
    int modem;         /* RFC2217_MODEM_* line bits, -1: not reported */
    uint8_t linestate; /* the errors last reported */
    uint64_t errors[SERIAL_LINE_ERROR_KINDS]; /* reports, by kind */
    unsigned logged;                          /* lines logged in this window */
    unsigned held;                            /* changes not logged in it */
};

static const char *modem_text(int lines, char *buf, size_t len)
{
    if (lines < 0)
        return "unknown (no session)";
    snprintf(buf, len, "CTS %s DSR %s CD %s RI %s",
             lines & RFC2217_MODEM_CTS ? "on" : "off",
             lines & RFC2217_MODEM_DSR ? "on" : "off",
             lines & RFC2217_MODEM_CD ? "on" : "off",
             lines & RFC2217_MODEM_RI ? "on" : "off");
    return buf;
}

static const char *errors_text(uint8_t state, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s%s", state & RFC2217_LINE_BREAK ? " break" : "",
             state & RFC2217_LINE_FRAMING ? " framing" : "",
             state & RFC2217_LINE_PARITY ? " parity" : "",
             state & RFC2217_LINE_OVERRUN ? " overrun" : "");
    return buf;
}

/* The window ended with changes held back: one line for all of them,
 * which opens the next window (the flood may go on). */
static void on_window_end(uv_timer_t *timer)
{
    struct serial_target_port *p = timer->data;
    char text[TEXT_MAX];

    p->logged = 0;
    if (!p->held)
        return;
    log_info("target %s: the agent's port changed state %u more times in "
             "%d s (not logged one by one); port modem lines now %s",
             p->target, p->held, LOG_WINDOW_MS / 1000,
             modem_text(p->modem, text, sizeof(text)));
    p->held = 0;
    p->logged = 1;
    uv_timer_start(&p->window, on_window_end, LOG_WINDOW_MS, 0);
}

/* True if a change may be logged now; else it is counted for the
 * window's closing line. */
static bool may_log(struct serial_target_port *p)
{
    if (!uv_is_active((uv_handle_t *)&p->window)) {
        p->logged = 0;
        uv_timer_start(&p->window, on_window_end, LOG_WINDOW_MS, 0);
    }
    if (p->logged < LOG_BURST) {
        p->logged++;
        return true;
    }
    p->held++;
    return false;
}

void serial_target_port_modem(struct serial_target_port *p, uint8_t state)
{
    char text[TEXT_MAX];
    int lines = state & SERIAL_PORT_MODEM_LINES;

    if (lines == p->modem)
        return;
    p->modem = lines;
    if (may_log(p))
        log_info("target %s: port modem lines %s", p->target,
                 modem_text(lines, text, sizeof(text)));
}

void serial_target_port_linestate(struct serial_target_port *p, uint8_t state)
{
    char text[TEXT_MAX];
    uint8_t errors = state & RFC2217_LINE_ERRORS;

    static const uint8_t kind_bit[SERIAL_LINE_ERROR_KINDS] = {
        RFC2217_LINE_BREAK, RFC2217_LINE_FRAMING, RFC2217_LINE_PARITY,
        RFC2217_LINE_OVERRUN};

    if (errors == p->linestate)
        return;
    for (int k = 0; k < SERIAL_LINE_ERROR_KINDS; k++)
        if (errors & ~p->linestate & kind_bit[k]) /* a new report */
            p->errors[k]++;
    p->linestate = errors;
    if (errors && may_log(p))
        log_info("target %s: the agent's port reports line errors:%s",
                 p->target, errors_text(errors, text, sizeof(text)));
}

void serial_target_port_forget(struct serial_target_port *p)
{
    p->modem = -1;
    p->linestate = 0;
}

int serial_target_port_modem_lines(const struct serial_target_port *p)
{
    return p->modem;
}

uint64_t serial_target_port_errors(const struct serial_target_port *p,
                                   enum serial_line_error_kind kind)
{
    return p->errors[kind];
}

struct serial_target_port *serial_target_port_new(uv_loop_t *loop,
                                                  const char *target)
{
    struct serial_target_port *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    snprintf(p->target, sizeof(p->target), "%s", target);
    p->modem = -1;
    uv_timer_init(loop, &p->window);
    p->window.data = p;
    return p;
}

static void on_closed(uv_handle_t *handle) { free(handle->data); }

void serial_target_port_free(struct serial_target_port *p)
{
    if (p)
        uv_close((uv_handle_t *)&p->window, on_closed);
}
