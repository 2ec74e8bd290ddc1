/* SPDX-License-Identifier: MIT */
/* One network client of a serial port: its connection, its buffers both
 * ways (which the device side reads from and writes into in place), and
 * its telnet/RFC 2217 session. */
#ifndef REDIR_SERIAL_CLIENT_H
#define REDIR_SERIAL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "serial_comport.h"
#include "serial_config.h"

struct net_tls_ctx;

struct net_conn;
struct serial_client;

/* What a client tells its port. */
struct serial_client_ops {
    /* connect mode: the dial succeeded (0) or failed (why) */
    void (*on_dialed)(void *port, struct serial_client *c, const char *why);
    /* the session is over: the peer left or failed (why), or idled;
     * graceful: what the device said still goes out first */
    void (*on_gone)(void *port, struct serial_client *c, const char *why,
                    bool graceful);
    /* bytes for the device arrived */
    void (*to_device)(void *port);
    /* the device's data went out: its buffer has room again */
    void (*from_device_room)(void *port);
    /* telnet IAC BRK */
    void (*telnet_break)(void *port);
    /* the client's memory is gone (after serial_client_close) */
    void (*on_freed)(void *port);
    /* what RFC 2217 requests do to the port */
    const struct serial_comport_port_ops *comport;
};

struct serial_client_params {
    uv_loop_t *loop;
    const struct serial_port_config *cfg;
    const char *label; /* the port's, for logs */
    const struct serial_client_ops *ops;
    void *port;
    void *comport;           /* ctx of ops->comport */
    struct net_tls_ctx *tls; /* dialing with TLS; NULL: plaintext */
};

/* A client for an accepted connection, or one dialing cfg's address; the
 * session starts at serial_client_start(). NULL if out of memory (an
 * accepted connection is closed then). */
struct serial_client *serial_client_accept(const struct serial_client_params *p,
                                           struct net_conn *c);
struct serial_client *serial_client_dial(const struct serial_client_params *p);

/* A reload replaced the port's config with an equal one at cfg: read it
 * from now on (the old one is freed next). */
void serial_client_rebind(struct serial_client *c,
                          const struct serial_port_config *cfg);

/* The port took the client: the telnet session starts, bytes move. */
void serial_client_start(struct serial_client *c);

/* Ends the connection; the port has let go of it and hears nothing more.
 * graceful: pending data goes out first (briefly). Frees itself. */
void serial_client_close(struct serial_client *c, bool graceful);

/* ---- the device side's view of the client's buffers ---- */

/* Room for bytes from the device (in place; telnet modes leave room for
 * escaping), and how many landed there. */
void serial_client_device_room(struct serial_client *c, uint8_t **buf,
                               size_t *len);
void serial_client_from_device(struct serial_client *c, uint8_t *buf, size_t n);
/* Bytes for the device, and how many it took. */
void serial_client_device_data(struct serial_client *c, const uint8_t **data,
                               size_t *len);
void serial_client_to_device_done(struct serial_client *c, size_t n);

/* The device vanished or came back (RFC 2217 modem state follows). */
void serial_client_device_changed(struct serial_client *c);

const char *serial_client_name(const struct serial_client *c);
uint64_t serial_client_since_ms(const struct serial_client *c);
uint64_t serial_client_bytes_in(const struct serial_client *c);
uint64_t serial_client_bytes_out(const struct serial_client *c);

#endif
