/* SPDX-License-Identifier: MIT */
/* A serial target's tty: a pty whose slave QEMU opens with -chardev
 * serial,path=..., the guest's line settings read from it as QEMU applies
 * them, and an RFC 2217 client toward the agent that carries both. */
#ifndef REDIR_SERIAL_TARGET_H
#define REDIR_SERIAL_TARGET_H

#include <uv.h>

#include "relay_config.h"

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

#endif
