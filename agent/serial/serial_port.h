/* SPDX-License-Identifier: MIT */
/* One [serial.NAME] port: its device, its listener or dialer and its one
 * client, and the policy between them (who may connect, what a lost device
 * means, the line and modem outputs as clients set them). */
#ifndef REDIR_SERIAL_PORT_H
#define REDIR_SERIAL_PORT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "rfc2217.h"
#include "serial_config.h"

struct serial_port;

/* What "status" shows of a port. */
struct serial_port_status {
    const char *name, *device, *mode, *kind;
    bool device_open;
    const char *client; /* its address, or NULL */
    char line[48];      /* "9600 8N1" */
    bool dtr, rts;
    uint64_t bytes_in, bytes_out; /* of the current client */
};

/* What ports tell the agent, for the events stream (members may be NULL).
 * why: "" on connect; how the session ended on disconnect. */
struct serial_event_sink {
    void (*on_client)(void *ctx, const char *port, const char *client,
                      bool connected, const char *why, uint64_t bytes_in,
                      uint64_t bytes_out);
    void *ctx;
};

/* A port for cfg (which must stay valid while the port runs); sink (NULL:
 * none) must outlive it. Nothing is opened yet. NULL if out of memory. */
struct serial_port *serial_port_new(uv_loop_t *loop,
                                    const struct serial_port_config *cfg,
                                    const struct serial_event_sink *sink);

/* Listen mode: binds and listens. Returns 0, or -1 after logging why. */
int serial_port_listen(struct serial_port *p);

/* Opens the device (or waits for it) and, in connect mode, dials. */
void serial_port_start(struct serial_port *p);

/* Closes the client (its last bytes first, briefly), the device and the
 * listener; on_stopped(arg) runs once everything is closed, and the port
 * is freed. */
void serial_port_stop(struct serial_port *p, void (*on_stopped)(void *arg),
                      void *arg);

/* A reload with the same settings under a new config: only the pointer
 * changes. */
void serial_port_rebind(struct serial_port *p,
                        const struct serial_port_config *cfg);

const struct serial_port_config *
serial_port_config(const struct serial_port *p);

void serial_port_status(const struct serial_port *p,
                        struct serial_port_status *out);

#endif
