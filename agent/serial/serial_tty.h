/* SPDX-License-Identifier: MIT */
/* The serial device's system calls: open, termios2, modem lines, break,
 * flush, and which errors mean the device is gone. No libuv, no state. */
#ifndef REDIR_SERIAL_TTY_H
#define REDIR_SERIAL_TTY_H

#include <stdbool.h>
#include <stdint.h>

#include "rfc2217.h"
#include "serial_line.h"

enum serial_flush {
    SERIAL_FLUSH_INPUT,  /* received, not yet read */
    SERIAL_FLUSH_OUTPUT, /* written, not yet sent */
    SERIAL_FLUSH_BOTH,
};

/* Opens path non-blocking. A tty is opened read/write, exclusive
 * (TIOCEXCL: a modem prober opening it too would eat our bytes) and not as
 * controlling terminal; a printer write-only. Returns the fd or -errno
 * (-ENOTTY if a tty was asked for and path is something else). */
int serial_tty_open(const char *path, bool printer);

/* Before closing a tty opened here: gives up its exclusivity. */
void serial_tty_release(int fd);

/* Applies l (raw mode). Returns 0 or -errno. */
int serial_tty_set_line(int fd, const struct serial_line *l);

enum serial_modem_output {
    SERIAL_DTR,
    SERIAL_RTS,
};

/* Raises or lowers DTR or RTS. Returns 0 or -errno; -ENOTTY/-EINVAL: the
 * device has no such line (ptys, some adapters). */
int serial_tty_set_modem(int fd, enum serial_modem_output line, bool on);

/* Current TIOCM_* bits, or -errno. */
int serial_tty_get_modem(int fd);

/* Starts (on) or ends a break condition. Returns 0 or -errno. */
int serial_tty_break(int fd, bool on);

int serial_tty_flush(int fd, enum serial_flush which);

/* The line error counters (TIOCGICOUNT) as last seen. */
struct serial_tty_errors {
    bool valid; /* false: nothing seen yet (or no counters) */
    int frame, parity, brk, overrun;
};

/* NOTIFY-LINESTATE bits: data ready, transmitter empty, and the line
 * errors (break, framing, parity, overrun) counted since *seen, which is
 * updated. Drivers without counters (ptys) report no errors. */
uint8_t serial_tty_linestate(int fd, struct serial_tty_errors *seen);

/* True if errno err from read/write/ioctl means the device went away
 * (unplugged adapter, closed pty master, printer powered off). */
bool serial_tty_gone(int err);

/* True if poll(2) reports a hang-up or error on fd right now. */
bool serial_tty_hung_up(int fd);

#endif
