/* SPDX-License-Identifier: MIT */
/* The pty behind a serial target, as system calls: creating it in raw
 * mode with EXTPROC and packet mode, and reading the line settings QEMU
 * applied to its slave. No libuv (whose header brings glibc's termios). */
#ifndef REDIR_SERIAL_PTY_H
#define REDIR_SERIAL_PTY_H

#include <stddef.h>

#include "serial_line.h"

/* A new pty: *master non-blocking in packet mode, *slave in raw mode
 * (8-bit clean) with EXTPROC, so that every tcsetattr on the slave wakes
 * the master with TIOCPKT_IOCTL. name gets the slave's path. Returns 0,
 * or -errno with nothing left open. */
int serial_pty_open(int *master, int *slave, char *name, size_t len);

/* A pty kept by systemd across a restart: checks that master is a pty's
 * master and slave its slave, and puts master back in non-blocking packet
 * mode (the slave keeps the settings QEMU gave it). name gets the slave's
 * path. Returns 0 or -errno; the caller closes both on failure. */
int serial_pty_adopt(int master, int slave, char *name, size_t len);

/* The slave's settings as the master sees them. Returns 0 or -errno. */
int serial_pty_line(int master, struct serial_line *l);

#endif
