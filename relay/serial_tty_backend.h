/* SPDX-License-Identifier: MIT */
/* The tty behind a serial target, whichever kind (a pty, or a CUSE device
 * the relay implements): what it tells the target, and what the target
 * asks of it. The target speaks RFC 2217; a backend speaks tty. */
#ifndef REDIR_SERIAL_TTY_BACKEND_H
#define REDIR_SERIAL_TTY_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "relay_proto.h"
#include "rfc2217.h"
#include "serial_line.h"

/* The path QEMU opens (a symbolic link to the tty), as PATH_MAX. */
#define SERIAL_TTY_PATH_MAX 4096
/* A target's name, for logs and the CUSE device's name. */
#define SERIAL_TTY_NAME_MAX (RELAY_TARGET_MAX + 1)

struct serial_tty;

/* What the guest's side did; owner is the target. */
struct serial_tty_events {
    /* the guest set its line; l holds what the backend can see */
    void (*line)(void *owner, const struct serial_line *l);
    /* DTR, RTS or BREAK (RFC2217_CTL_DTR/RTS/BREAK) on or off */
    void (*control)(void *owner, enum rfc2217_control_target what, bool on);
    /* the guest flushed a queue: RFC2217_PURGE_RX/TX/BOTH */
    void (*purge)(void *owner, uint8_t what);
    /* how much of the guest's output the target takes now (0: hold it;
     * SIZE_MAX: no agent, so all of it, to be dropped: nothing to pace) */
    size_t (*room)(void *owner);
    void (*data)(void *owner, const uint8_t *p, size_t n);
    /* serial_tty_write has room again */
    void (*writable)(void *owner);
};

/* What a backend sees of the guest's settings. */
enum {
    SERIAL_TTY_SEES_FRAMING = 1 << 0, /* data bits and parity */
    SERIAL_TTY_SEES_MODEM = 1 << 1,   /* DTR and RTS */
    SERIAL_TTY_SEES_BREAK = 1 << 2,
};

/* The guest's modem outputs, as TIOCM_DTR and TIOCM_RTS. */
enum {
    SERIAL_TTY_DTR = 0x002,
    SERIAL_TTY_RTS = 0x004,
};

struct serial_tty_backend {
    const char *kind; /* "pty", "cuse": for logs */
    unsigned sees;    /* SERIAL_TTY_SEES_* */
    /* Creates the tty and links path to it; NULL after logging why. */
    struct serial_tty *(*open)(uv_loop_t *loop, const char *target,
                               const char *path,
                               const struct serial_tty_events *ev, void *owner);
    /* Toward the guest: how many of n bytes it took (the rest later,
     * after ev->writable). */
    size_t (*write)(struct serial_tty *t, const uint8_t *p, size_t n);
    /* ev->room grew: the backend may hand out the guest's output again. */
    void (*resume)(struct serial_tty *t);
    /* The guest's current settings, as seen. */
    void (*line)(struct serial_tty *t, struct serial_line *l);
    /* The guest's DTR/RTS as RFC 2217 sees them, -1 when not seen. */
    int (*outputs)(struct serial_tty *t);
    /* The far port's NOTIFY-MODEMSTATE, for the guest's TIOCMGET. */
    void (*inputs)(struct serial_tty *t, uint8_t modemstate);
    /* Removes the link, frees t. */
    void (*close)(struct serial_tty *t);
    /* Whether t is the tty an earlier run of the relay made (the guest
     * may have written to it while no relay ran). */
    bool (*kept)(const struct serial_tty *t);
};

extern const struct serial_tty_backend serial_tty_pty;
extern const struct serial_tty_backend serial_tty_cuse;

/* Whether this machine can serve CUSE devices (/dev/cuse opens). */
bool serial_cuse_available(void);

#endif
