/* SPDX-License-Identifier: MIT */
/* The device side of a serial port: opening (and reopening) the tty or
 * printer, moving bytes between it and buffers its port lends it, and
 * noticing when it vanishes. */
#ifndef REDIR_SERIAL_DEVICE_H
#define REDIR_SERIAL_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "serial_config.h"

struct serial_device;

/* How the device side asks its port for buffers and reports. */
struct serial_device_ops {
    /* Where the next read lands. *len 0: not now (the port calls
     * serial_device_update() when there is room); *buf NULL: read and
     * drop (nobody listens). */
    void (*read_room)(void *ctx, uint8_t **buf, size_t *len);
    void (*read_done)(void *ctx, uint8_t *buf, size_t n);
    /* What to write now (*len 0: nothing), and how much the device took. */
    void (*write_data)(void *ctx, const uint8_t **data, size_t *len);
    void (*write_done)(void *ctx, size_t n);
    /* Opened (at start, or again after it vanished): fd is ready for the
     * port's settings. */
    void (*on_open)(void *ctx, int fd);
    /* It vanished (read/write errors, a hang-up); reopened later. */
    void (*on_lost)(void *ctx, const char *why);
};

/* A reload replaced the config with an equal one at cfg: read it from now
 * on (the old one is freed next). */
void serial_device_rebind(struct serial_device *d,
                          const struct serial_port_config *cfg);

struct serial_device *serial_device_new(uv_loop_t *loop,
                                        const struct serial_port_config *cfg,
                                        const char *label,
                                        const struct serial_device_ops *ops,
                                        void *ctx);

/* Tries the path now, and every SERIAL_DEVICE_RETRY_MS while missing. */
void serial_device_open(struct serial_device *d);

/* Watches for what can be done now: reading while the port has room,
 * writing while it has data. Called after every change of its buffers. */
void serial_device_update(struct serial_device *d);

/* Writes what the port has for the device now. */
void serial_device_write(struct serial_device *d);

/* Closes the device and frees d once its handles are closed; on_freed(arg)
 * then. flush_output drops what the device has not sent (a stop must not
 * wait for a flow-controlled line). */
void serial_device_free(struct serial_device *d, bool flush_output,
                        void (*on_freed)(void *arg), void *arg);

/* The open fd, or -1 while the device is missing. */
int serial_device_fd(const struct serial_device *d);

/* TIOCMGET works on it (a real UART or adapter, not a pty). */
bool serial_device_has_modem_lines(const struct serial_device *d);

#endif
