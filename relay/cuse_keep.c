/* SPDX-License-Identifier: MIT */
/* A CUSE tty kept across relay restarts (see cuse_keep.h): the /dev/cuse
 * fd and a memfd of the tty's state in systemd's fd store, and what a
 * restarted relay must tell libfuse and the kernel to go on serving it. */
#define FUSE_USE_VERSION 35

#include "cuse_keep.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdstore.h"
#include "log.h"

/* A request id the kernel never issues (it counts up from 2 in steps of
 * 2): the reply to our own CUSE_INIT goes nowhere, and the kernel answers
 * it with ENOENT, which libfuse takes quietly (an interrupted request). */
#define RESUME_UNIQUE (UINT64_C(1) << 62)

/* What the memfd holds, written whole at offset 0. Only this build reads
 * it back: the tty part carries its own layout tag. */
struct saved {
    uint64_t next_fh;
    uint64_t kh[CUSE_KEEP_POLLERS];
    uint32_t tty_len;
    uint8_t tty[CUSE_TTY_STATE_MAX];
};

struct cuse_keep {
    char target[FDSTORE_NAME_MAX + 1];
    char dev_name[FDSTORE_NAME_MAX + 1], state_name[FDSTORE_NAME_MAX + 1];
    int state_fd;
    bool took;         /* an earlier run's entries were there */
    struct saved last; /* what the memfd holds now */
};

struct cuse_keep *cuse_keep_open(const char *target, int *dev_fd)
{
    struct cuse_keep *k = calloc(1, sizeof(*k));

    *dev_fd = -1;
    if (!k)
        return NULL;
    snprintf(k->target, sizeof(k->target), "%s", target);
    snprintf(k->dev_name, sizeof(k->dev_name), "cuse.%s", target);
    snprintf(k->state_name, sizeof(k->state_name), "cuse-state.%s", target);
    *dev_fd = fdstore_take(k->dev_name);
    k->state_fd = fdstore_take(k->state_name);
    k->took = *dev_fd >= 0 || k->state_fd >= 0;
    if (*dev_fd >= 0) /* the same open file: O_NONBLOCK survives, but */
        fcntl(*dev_fd, F_SETFL, O_RDWR | O_NONBLOCK); /* be sure */
    return k;
}

void cuse_keep_store(struct cuse_keep *k, int dev_fd)
{
    int rc;

    /* systemd keeps every fd sent under a name: the new device must not
     * join an unusable one */
    if (k->took) {
        fdstore_remove(k->dev_name);
        fdstore_remove(k->state_name);
        k->took = false;
    }
    if (k->state_fd >= 0)
        close(k->state_fd);
    memset(&k->last, 0, sizeof(k->last));
    k->state_fd = memfd_create(k->state_name, MFD_CLOEXEC);
    rc = fdstore_put(k->dev_name, dev_fd);
    if (rc == 0 && k->state_fd >= 0)
        rc = fdstore_put(k->state_name, k->state_fd);
    if (rc < 0 && rc != -ENOTCONN)
        log_warn("target %s: systemd does not keep the CUSE device (%s; "
                 "FileDescriptorStoreMax= in the unit?): a restarted relay "
                 "makes a new one, QEMU must reopen it",
                 k->target, strerror(-rc));
    if (rc < 0 && k->state_fd >= 0) { /* nobody will read it back */
        close(k->state_fd);
        k->state_fd = -1;
    }
}

/* libfuse only serves requests after a CUSE_INIT: it gets one, made
 * here, with the protocol version this build knows. */
static void fake_init(struct fuse_session *se)
{
    struct {
        struct fuse_in_header h;
        struct fuse_init_in in; /* what libfuse reads it as */
    } msg;
    struct fuse_buf buf = {.size = sizeof(msg), .mem = &msg};

    memset(&msg, 0, sizeof(msg));
    msg.h.len = sizeof(msg);
    msg.h.opcode = CUSE_INIT;
    msg.h.unique = RESUME_UNIQUE;
    msg.in.major = FUSE_KERNEL_VERSION;
    msg.in.minor = FUSE_KERNEL_MINOR_VERSION;
    fuse_session_process_buf(se, &buf);
}

/* A poller of the earlier run waits for a wakeup naming its kernel poll
 * handle, which only that run's libfuse knew: sent here as the kernel's
 * FUSE_NOTIFY_POLL, it polls again and so reaches this run. */
static void wake_poller(int dev_fd, uint64_t kh)
{
    struct fuse_out_header h = {.error = FUSE_NOTIFY_POLL};
    struct fuse_notify_poll_wakeup_out w = {.kh = kh};
    struct iovec iov[2] = {{&h, sizeof(h)}, {&w, sizeof(w)}};

    h.len = sizeof(h) + sizeof(w);
    if (writev(dev_fd, iov, 2) < 0)
        log_debug("CUSE poll wakeup %llu: %s", (unsigned long long)kh,
                  strerror(errno));
}

bool cuse_keep_resume(struct cuse_keep *k, struct fuse_session *se, int dev_fd,
                      struct cuse_tty *tty, uint64_t *next_fh)
{
    struct saved s;
    bool loaded;

    fake_init(se);
    loaded = k->state_fd >= 0 &&
             pread(k->state_fd, &s, sizeof(s), 0) == (ssize_t)sizeof(s) &&
             s.tty_len <= sizeof(s.tty) &&
             cuse_tty_restore(tty, s.tty, s.tty_len);
    if (!loaded)
        return false;
    *next_fh = s.next_fh;
    k->last = s;
    for (size_t i = 0; i < CUSE_KEEP_POLLERS; i++)
        if (s.kh[i])
            wake_poller(dev_fd, s.kh[i]);
    return true;
}

uint64_t cuse_keep_poll_kh(const void *req, size_t len)
{
    struct fuse_in_header h;
    struct fuse_poll_in in;

    if (!req || len < sizeof(h) + sizeof(in))
        return 0;
    memcpy(&h, req, sizeof(h));
    if (h.opcode != FUSE_POLL)
        return 0;
    memcpy(&in, (const uint8_t *)req + sizeof(h), sizeof(in));
    return in.kh;
}

void cuse_keep_save(struct cuse_keep *k, const struct cuse_tty *tty,
                    uint64_t next_fh, const uint64_t *kh, size_t n)
{
    struct saved s;

    if (k->state_fd < 0)
        return;
    memset(&s, 0, sizeof(s));
    s.next_fh = next_fh;
    memcpy(s.kh, kh,
           (n < CUSE_KEEP_POLLERS ? n : CUSE_KEEP_POLLERS) * sizeof(*kh));
    s.tty_len = (uint32_t)cuse_tty_save(tty, s.tty, sizeof(s.tty));
    if (memcmp(&s, &k->last, sizeof(s)) == 0)
        return; /* the common case: a TIOCMGET, a poll */
    if (pwrite(k->state_fd, &s, sizeof(s), 0) != (ssize_t)sizeof(s)) {
        log_warn("target %s: saving the CUSE tty's state: %s; a restarted "
                 "relay will not know the guest's settings",
                 k->target, strerror(errno));
        return;
    }
    k->last = s;
}

void cuse_keep_close(struct cuse_keep *k)
{
    if (!k)
        return;
    fdstore_remove(k->dev_name);
    fdstore_remove(k->state_name);
    if (k->state_fd >= 0)
        close(k->state_fd);
    free(k);
}
