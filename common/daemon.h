/* SPDX-License-Identifier: MIT */
/* Daemon plumbing shared by agent and relay: pidfile and systemd readiness
 * notifications. */
#ifndef REDIR_DAEMON_H
#define REDIR_DAEMON_H

/* Writes our pid to path, opened with O_NOFOLLOW: a symbolic link, FIFO,
 * device or hard-linked file at path is refused with a clear error, never
 * written through. A reader sees the old pid or the new one, never an empty
 * file. Returns 0, or -1 after logging why. */
int daemon_pidfile_write(const char *path);
void daemon_pidfile_remove(const char *path);

/* sd_notify(3) without libsystemd: a datagram to $NOTIFY_SOCKET, if set.
 * state is e.g. "READY=1", "RELOADING=1", "STOPPING=1". */
void daemon_notify(const char *state);

#endif
