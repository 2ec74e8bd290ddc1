/* SPDX-License-Identifier: MIT */
/* A client's telnet session (telnet and rfc2217 modes): the options we
 * offer, its input decoded in place, negotiations and commands answered.
 * Com Port Control subnegotiations go on to its comport session. */
#ifndef REDIR_SERIAL_TELNET_H
#define REDIR_SERIAL_TELNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serial_comport.h"
#include "serial_config.h"
#include "telnet.h"

struct serial_telnet_ops {
    /* queues an answer; false if there is no room (it is dropped) */
    bool (*answer)(void *client, const uint8_t *bytes, size_t len);
    size_t (*answer_room)(void *client);
    /* IAC BRK: a break on the line */
    void (*brk)(void *client);
};

/* Telnet answers wait while less than this room is free: the longest
 * single answer, a signature, needs under 200 bytes. */
#define SERIAL_TELNET_ANSWER_ROOM 256

struct serial_telnet {
    enum serial_mode mode;
    struct telnet_decoder decoder;
    struct telnet_options options;
    struct serial_comport comport;
    const char *label, *client; /* for logs */
    const struct serial_telnet_ops *ops;
    void *ctx;
};

/* Offers our options (the comport fields must be filled in by the caller
 * before any input). */
void serial_telnet_start(struct serial_telnet *t, enum serial_mode mode,
                         const struct serial_telnet_ops *ops, void *ctx);

/* Decodes buf[*from, to) in place: data lands at buf[*tail] onwards,
 * commands are answered. Stops early, leaving the rest, while answers
 * have no room (the socket is backed up); a suspended client's answers
 * are dropped instead, or its RESUME would never be read. */
void serial_telnet_input(struct serial_telnet *t, uint8_t *buf, size_t *from,
                         size_t to, size_t *tail);

#endif
