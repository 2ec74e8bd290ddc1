/* SPDX-License-Identifier: MIT */
/* Daemon plumbing shared by agent and relay: pidfile and systemd readiness
 * notifications. */
#ifndef REDIR_DAEMON_H
#define REDIR_DAEMON_H

#include <stddef.h>

/* Writes our pid to path, opened with O_NOFOLLOW: a symbolic link, FIFO,
 * device or hard-linked file at path is refused with a clear error, never
 * written through. A reader sees the old pid or the new one, never an empty
 * file. Returns 0, or -1 after logging why. */
int daemon_pidfile_write(const char *path);
void daemon_pidfile_remove(const char *path);

/* sd_notify(3) without libsystemd: a datagram to $NOTIFY_SOCKET, if set.
 * state is e.g. "READY=1", "RELOADING=1", "STOPPING=1". */
void daemon_notify(const char *state);

/* The most fds one notification carries: the fd store sends one per
 * message (each has its own FDNAME). */
#define DAEMON_NOTIFY_FDS_MAX 1

/* The same with fds attached (SCM_RIGHTS), e.g. "FDSTORE=1\nFDNAME=x".
 * Returns 0, -ENOTCONN when not run by systemd, or -errno. */
int daemon_notify_fds(const char *state, const int *fds, size_t n_fds);

#endif
