/* SPDX-License-Identifier: MIT */
/* What a serial target knows of the agent's port from its RFC 2217
 * notifications: its modem lines (unknown until the agent reports them)
 * and line errors, each change logged at info, but only so many lines a
 * while (a flapping line or a hostile agent cannot flood the log). */
#ifndef REDIR_SERIAL_TARGET_PORT_H
#define REDIR_SERIAL_TARGET_PORT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* NOTIFY-MODEMSTATE's line bits: CD, RI, DSR, CTS (the rest are deltas). */
#define SERIAL_PORT_MODEM_LINES 0xf0

struct serial_target_port;

/* The line errors NOTIFY-LINESTATE reports, in the metrics' order. */
enum serial_line_error_kind {
    SERIAL_LINE_BREAK,
    SERIAL_LINE_FRAMING,
    SERIAL_LINE_PARITY,
    SERIAL_LINE_OVERRUN,
    SERIAL_LINE_ERROR_KINDS
};

/* target names the log lines. NULL if out of memory. */
struct serial_target_port *serial_target_port_new(uv_loop_t *loop,
                                                  const char *target);

/* The agent's NOTIFY-MODEMSTATE value: a change of the lines is logged
 * (the first report of a session too). */
void serial_target_port_modem(struct serial_target_port *p, uint8_t state);

/* The agent's NOTIFY-LINESTATE value: new errors (break, framing,
 * parity, overrun) are logged. */
void serial_target_port_linestate(struct serial_target_port *p, uint8_t state);

/* The session ended: the port's state is unknown again. */
void serial_target_port_forget(struct serial_target_port *p);

/* The modem lines as RFC2217_MODEM_CD/RI/DSR/CTS bits, or -1 while the
 * agent has not reported them this session. */
int serial_target_port_modem_lines(const struct serial_target_port *p);

/* How many times the agent reported a new error of this kind since the
 * relay started (a report may stand for several errors between two of
 * the agent's polls of its port). */
uint64_t serial_target_port_errors(const struct serial_target_port *p,
                                   enum serial_line_error_kind kind);

/* Frees p (once its timer has closed; the loop must run on). */
void serial_target_port_free(struct serial_target_port *p);

#endif
