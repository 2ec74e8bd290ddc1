/* SPDX-License-Identifier: MIT */
/* A serial target's tty: a pty whose slave QEMU opens with -chardev
 * serial,path=..., the guest's line settings read from it as QEMU applies
 * them, and an RFC 2217 client toward the agent that carries both. */
#ifndef REDIR_SERIAL_TARGET_H
#define REDIR_SERIAL_TARGET_H

#include <stdbool.h>
#include <uv.h>

#include "relay_config.h"
#include "serial_line.h"
#include "serial_target_port.h"

struct net_conn;
struct serial_target;

/* Creates the pty and links cfg->pty_path to its slave (replacing a link
 * a previous run left). NULL after logging why. */
struct serial_target *serial_target_open(uv_loop_t *loop,
                                         const struct relay_target_config *cfg);

/* An agent's session starts: returns the connection that stands for
 * QEMU's chardev (the pump reads and writes it like a socket chardev),
 * its first bytes the RFC 2217 negotiation and the guest's current line
 * settings. NULL if out of memory. The session ends by closing it. */
struct net_conn *serial_target_attach(struct serial_target *st);

/* Removes the link and frees st (its connection to a session, if any,
 * ends). */
void serial_target_close(struct serial_target *st);

/* The path QEMU opens, for logs. */
const char *serial_target_path(const struct serial_target *st);

/* For the metrics: the target as it stands. */
struct serial_target_status {
    bool attached;           /* an agent's session carries the port */
    struct serial_line line; /* the guest's settings, as the tty shows */
    bool framing_seen;       /* line's data bits and parity are real (not
                                on a pty, which hides them) */
    int modem; /* the agent's port's RFC2217_MODEM_CD/RI/DSR/CTS bits, -1
                  until it reports them in this session */
    /* line error reports since the start: break, framing, parity, overrun
     * (serial_target_port.h's order) */
    uint64_t line_errors[SERIAL_LINE_ERROR_KINDS];
};
void serial_target_status(const struct serial_target *st,
                          struct serial_target_status *out);

#endif
