/* SPDX-License-Identifier: MIT */
/* A port's line settings and modem outputs as the config and its client want
 * them: applied to the device while it is there, kept as the wish while it
 * is not, re-applied when it returns; RFC 2217 requests act on them. */
#ifndef REDIR_SERIAL_OUTPUTS_H
#define REDIR_SERIAL_OUTPUTS_H

#include <stdbool.h>
#include <uv.h>

#include "rfc2217.h"
#include "serial_comport.h"
#include "serial_config.h"
#include "serial_line.h"
#include "serial_tty.h"

struct serial_outputs {
    const struct serial_port_config *cfg;
    const char *label;       /* the port's, for logs */
    int fd;                  /* the device's, -1 while missing */
    bool modem_lines;        /* the device has DTR/RTS/CTS... (not a pty) */
    struct serial_line line; /* in effect */
    struct serial_control control;        /* DTR/RTS/BREAK as last set */
    struct serial_tty_errors line_errors; /* counters at the last report */
    uv_timer_t break_timer;               /* ends an IAC BRK */
};

/* What RFC 2217 requests do, for a client's comport session (ctx: the
 * outputs). */
extern const struct serial_comport_port_ops serial_outputs_comport_ops;

/* The config's line, DTR and RTS up. The break timer is a handle: close it
 * with serial_outputs_close(). */
void serial_outputs_init(struct serial_outputs *o, uv_loop_t *loop,
                         const struct serial_port_config *cfg,
                         const char *label);
void serial_outputs_close(struct serial_outputs *o, uv_close_cb closed);

/* The device was opened: it gets the line and outputs as last wished for,
 * and its stale input is dropped. modem_lines: TIOCMGET works on it. */
void serial_outputs_attach(struct serial_outputs *o, int fd, bool modem_lines);
/* It vanished. */
void serial_outputs_detach(struct serial_outputs *o);

/* A new client starts from the config's line with DTR and RTS up, as if
 * the device had just been opened (a relay target's session: from what
 * the port has, until the relay's state comes); a client that left drops
 * BREAK. */
void serial_outputs_new_session(struct serial_outputs *o);
void serial_outputs_end_session(struct serial_outputs *o);

/* telnet IAC BRK: a break of SERIAL_BREAK_MS on the loop. */
void serial_outputs_telnet_break(struct serial_outputs *o);

#endif
