/* SPDX-License-Identifier: MIT */
/* The serial and printer bridge: every [serial.NAME] port, tty <-> TCP, on the
 * agent's loop. */
#ifndef REDIR_SERIAL_BRIDGE_H
#define REDIR_SERIAL_BRIDGE_H

#include <stddef.h>
#include <uv.h>

#include "serial_config.h"
#include "serial_port.h"

struct serial_bridge;

/* Starts every port of sc (which must stay valid until replaced); a missing
 * device is not an error. Returns the bridge, or NULL after logging why
 * (a listen address taken: nothing is left open then). Ports tell sink
 * (NULL: nobody) of their clients. */
struct serial_bridge *serial_bridge_start(uv_loop_t *loop,
                                          const struct serial_config *sc,
                                          const struct serial_event_sink *sink);

/* A reload: ports whose section is unchanged keep running (their clients
 * untouched), changed ones restart, removed ones stop, new ones start.
 * sc replaces the config. */
void serial_bridge_reconfigure(struct serial_bridge *b,
                               const struct serial_config *sc);

/* Closes every client, device and listener; on_stopped(arg) runs once all
 * is closed, and the bridge is freed. */
void serial_bridge_stop(struct serial_bridge *b, void (*on_stopped)(void *arg),
                        void *arg);

/* Fills up to max entries; returns how many ports there are. */
size_t serial_bridge_status(const struct serial_bridge *b,
                            struct serial_port_status *out, size_t max);

#endif
