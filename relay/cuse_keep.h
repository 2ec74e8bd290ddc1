/* SPDX-License-Identifier: MIT */
/* A CUSE tty across relay restarts: its /dev/cuse fd and its tty state
 * kept in systemd's fd store, so that a restarted relay serves the same
 * kernel device and the file QEMU holds open goes on working. Without
 * systemd nothing is kept and every call past cuse_keep_store is a
 * no-op. */
#ifndef REDIR_CUSE_KEEP_H
#define REDIR_CUSE_KEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cuse_tty.h"

/* How many open files' pollers a restart wakes (QEMU holds one). */
#define CUSE_KEEP_POLLERS 8
/* Blocking reads and writes held at once (serial_cuse.c's HELD_MAX). */
#define CUSE_KEEP_HELD 16

struct fuse_session;
struct cuse_keep;

/* What an earlier run kept for target. *dev_fd: its /dev/cuse fd, or -1
 * when there is none (a new device then). NULL only out of memory. */
struct cuse_keep *cuse_keep_open(const char *target, int *dev_fd);

/* A new device's /dev/cuse fd and a new state, into the store (when
 * systemd runs the relay with one; else nothing is kept). */
void cuse_keep_store(struct cuse_keep *k, int dev_fd);

/* se was just made on the kept dev_fd: the kernel's device exists and its
 * CUSE_INIT was answered by the earlier run, so libfuse is told its init
 * is done (its init_done callback runs: the caller checks that it did).
 * The requests the earlier run died serving, holding or reading are
 * answered (with EINTR, or "ready" for a poll). */
void cuse_keep_resume(struct cuse_keep *k, struct fuse_session *se, int dev_fd);

/* Once the resumed device is known good: every poller the earlier run
 * knew is woken, to poll again and so reach this run, and the saved tty
 * state and next open file handle are loaded into tty and *next_fh (both
 * left as they were unless an earlier run of this build saved them:
 * returns whether it did). */
bool cuse_keep_load(struct cuse_keep *k, struct cuse_tty *tty,
                    uint64_t *next_fh);

/* Whether anything is kept (systemd holds the state): the calls below
 * do nothing otherwise. */
bool cuse_keep_saving(const struct cuse_keep *k);

/* Saves the state: the tty, the next open file handle, and the kernel's
 * poll handles of the open files (kh[n], 0 for none; at most
 * CUSE_KEEP_POLLERS). A copy into shared memory, no system call. */
void cuse_keep_save(struct cuse_keep *k, const struct cuse_tty *tty,
                    uint64_t next_fh, const uint64_t *kh, size_t n);

/* The request (req, len bytes as read from /dev/cuse) about to be served,
 * and that it was answered or held: if the relay dies in between, the
 * next run answers it (cuse_keep_resume), so that its caller does not
 * wait for ever. */
void cuse_keep_serving(struct cuse_keep *k, const void *req, size_t len);
void cuse_keep_served(struct cuse_keep *k);

/* The request being served is held for later (a blocking read or
 * write): returns its id for cuse_keep_unhold when it is answered (0:
 * not noted, then a crash leaves it unanswered). */
uint64_t cuse_keep_hold(struct cuse_keep *k);
void cuse_keep_unhold(struct cuse_keep *k, uint64_t unique);

/* The kernel's poll handle in a FUSE_POLL request (req, len bytes as
 * read from /dev/cuse), else 0: libfuse keeps it opaque, and a restarted
 * relay needs it to wake that poller (cuse_keep_load). */
uint64_t cuse_keep_poll_kh(const void *req, size_t len);

/* The device ended (the kernel dropped it): nothing of it is kept, so a
 * restarted relay makes a new one. */
void cuse_keep_forget(struct cuse_keep *k);

/* The target goes, after the caller closed its copy of the device fd:
 * its entries leave the store and systemd is waited for (at most 1 s), so
 * that the device is gone when this returns, unless the relay is exiting
 * to be restarted (fdstore_keep). Frees k. */
void cuse_keep_close(struct cuse_keep *k);

#endif
