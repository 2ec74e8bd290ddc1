/* SPDX-License-Identifier: MIT */
/* A client's RFC 2217 Com Port Control session: its requests carried out on
 * the port and answered (clients wait for every answer), and modem/line
 * state notifications as its masks ask. */
#ifndef REDIR_SERIAL_COMPORT_H
#define REDIR_SERIAL_COMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rfc2217.h"
#include "serial_line.h"

/* What the port offers: its line and outputs, and the device's state. */
struct serial_comport_port_ops {
    const struct serial_line *(*line)(void *port);
    const struct serial_control *(*control)(void *port);
    /* applies what it can; the line in effect is read back for answers */
    void (*set_line)(void *port, const struct serial_line *want);
    void (*set_control)(void *port, enum rfc2217_control_target target,
                        const struct serial_control *ctl);
    /* the device's queues (RFC2217_PURGE_RX/TX/BOTH) */
    void (*purge)(void *port, uint8_t what);
    /* TIOCM_* bits, or -1 (missing device, no modem lines) */
    int (*modem_bits)(void *port);
    /* NOTIFY-LINESTATE bits (0 while the device is missing) */
    uint8_t (*linestate)(void *port);
};

/* What the client offers: a way back to the peer. */
struct serial_comport_client_ops {
    /* queues an answer; false if there is no room (it is dropped) */
    bool (*answer)(void *client, const uint8_t *bytes, size_t len);
    size_t (*answer_room)(void *client);
    void (*flush)(void *client);
    /* our buffers for the peer (RFC2217_PURGE_RX) or the device (TX) */
    void (*purge)(void *client, uint8_t what);
    /* poll serial_comport_poll() every SERIAL_STATUS_POLL_MS while on */
    void (*poll)(void *client, bool on);
};

struct serial_comport {
    bool active;    /* COM-PORT-OPTION agreed */
    bool suspended; /* FLOWCONTROL-SUSPEND: send nothing */
    uint8_t linestate_mask, modemstate_mask;
    uint8_t linestate, modemstate; /* last reported */
    const char *label;             /* the port's, for logs */
    const char *client;            /* the client's address */
    const char *port_name;         /* NAME of [serial.NAME] */
    const struct serial_comport_port_ops *port_ops;
    void *port;
    const struct serial_comport_client_ops *client_ops;
    void *client_ctx;
};

/* COM-PORT-OPTION was agreed: report the modem state, start polling. */
void serial_comport_start(struct serial_comport *cp);

/* Carries out one IAC SB COM-PORT-OPTION ... IAC SE from the client. */
void serial_comport_request(struct serial_comport *cp, const uint8_t *data,
                            size_t len);

/* The poll tick: notifications for what changed. */
void serial_comport_poll(struct serial_comport *cp);

/* The device vanished or came back: the modem lines follow. */
void serial_comport_device_changed(struct serial_comport *cp);

void serial_comport_stop(struct serial_comport *cp);

#endif
