/* SPDX-License-Identifier: MIT */
/* What the files of a serial port share: its state and the serial_port__
 * functions one part calls in another. Not for other modules.
 * serial_port.c: its life, its device, start and stop, status;
 * serial_port_clients.c: its listener or dialer and its client. */
#ifndef REDIR_SERIAL_PORT_INT_H
#define REDIR_SERIAL_PORT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "backoff.h"
#include "serial_outputs.h"
#include "serial_port.h"

struct net_listener;
struct net_tls_ctx;
struct serial_client;
struct serial_device;

struct serial_port {
    uv_loop_t *loop;
    const struct serial_port_config *cfg;
    char label[SERIAL_NAME_MAX + 400]; /* "[serial.NAME] DEV <-> ADDR[/T]" */
    bool stopping;
    unsigned live; /* timers, device and clients not yet freed */
    void (*on_stopped)(void *arg);
    void *stopped_arg;

    struct serial_device *dev;
    struct serial_outputs out; /* line and modem outputs; out.fd: device's */

    struct net_listener *listener;
    struct net_tls_ctx *tls;       /* tls = yes: server or client side */
    struct serial_client *client;  /* the one connected client */
    struct serial_client *dialing; /* connect mode: attempt in progress */
    uv_timer_t dial_timer;         /* connect mode: next attempt */
    struct backoff backoff;
    unsigned dial_failures;               /* in a row, for quieter logs */
    const struct serial_event_sink *sink; /* or NULL */
};

/* serial_port.c: one of the port's parts (timer, device, client) is gone;
 * the last one frees a stopping port. */
void serial_port__release(struct serial_port *p);

/* serial_port_clients.c: connect mode: one attempt; the outcome comes
 * back through the client's ops. */
void serial_port__dial(struct serial_port *p);
/* serial_port_clients.c: ends the client's session: its peer left, failed,
 * idled, was replaced, or the device went away. graceful: what the device
 * said still goes out first. */
void serial_port__client_gone(struct serial_port *p, const char *why,
                              bool graceful);

#endif
