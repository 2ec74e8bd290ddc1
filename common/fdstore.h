/* SPDX-License-Identifier: MIT */
/* systemd's file descriptor store, without libsystemd: fds a service hands
 * to its manager to get them back when it is restarted, so that what they
 * stand for (a pty QEMU holds open) outlives the process. */
#ifndef REDIR_FDSTORE_H
#define REDIR_FDSTORE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest name of a stored set (systemd's FDNAME limit). */
#define FDSTORE_NAME_MAX 255

/* Reads the fds systemd passed back (LISTEN_PID, LISTEN_FDS,
 * LISTEN_FDNAMES) and removes those variables, so that no child inherits
 * them. Once, before anything is taken. */
void fdstore_init(void);

/* The fd passed back under name, or -1; each is handed out once and is
 * then the caller's (close-on-exec set). More fds under the same name are
 * stale copies: closed. */
int fdstore_take(const char *name);

/* Stores each fd under its name (FDSTORE=1): systemd keeps duplicates.
 * name must be printable ASCII without ':'. Returns 0, -ENOTCONN when not
 * run by systemd, or -errno (logged by the caller: a restart then loses
 * what the fds stand for, nothing else). */
int fdstore_put(const char *name, int fd);

/* Forgets name's fds in the store (FDSTOREREMOVE=1), as when what they
 * stand for is removed for good; not sent once fdstore_keep() was called. */
void fdstore_remove(const char *name);

/* The process is exiting (or failed to start) and will be restarted: what
 * it closes from now on stays in the store. */
void fdstore_keep(void);

/* Whether fdstore_keep was called: what an fd stands for outlives this
 * run (a device's callers should be told "try again", not "gone"). */
bool fdstore_keeping(void);

/* Waits (at most timeout_ms, blocking) until systemd has handled every
 * notification sent before (BARRIER=1, as sd_notify_barrier(3)): after an
 * fdstore_remove, its copies are closed then. 0, -ENOTCONN when not run
 * by systemd, or -errno (-ETIMEDOUT). */
int fdstore_barrier(int timeout_ms);

/* Closes the fds nobody took and removes them from the store (what they
 * stood for is gone from the configuration). Returns how many. */
size_t fdstore_drop_unclaimed(void);

#endif
