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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdstore.h"
#include "log.h"

/* A request id the kernel never issues (it counts up from 2 in steps of
 * 2): the reply to our own CUSE_INIT goes nowhere, and the kernel answers
 * it with ENOENT, which libfuse takes quietly (an interrupted request). */
#define RESUME_UNIQUE (UINT64_C(1) << 62)

/* Request ids after the last one a run noted that its successor answers:
 * a crash inside read() (the kernel handed the request over, the process
 * died before it could note it) loses one. An id the kernel has not
 * handed to anyone (still queued, or not issued yet) is refused with
 * ENOENT, so answering a few more is harmless. */
#define GAP_MAX 4

/* What the memfd holds, mapped shared: stores into it outlive a crash
 * (systemd holds the memfd) and cost no system call. Only this build
 * reads it back: the tty part carries its own layout tag. */
struct saved {
    uint64_t last_unique; /* the last request read */
    uint32_t last_opcode;
    uint32_t serving; /* last_unique is being served: not answered yet */
    uint64_t held[CUSE_KEEP_HELD]; /* requests answered later, 0: free */
    struct saved_tty {
        uint64_t next_fh;
        uint64_t kh[CUSE_KEEP_POLLERS];
        uint32_t tty_len;
        uint8_t tty[CUSE_TTY_STATE_MAX];
    } st;
};

struct cuse_keep {
    char target[FDSTORE_NAME_MAX + 1];
    char dev_name[FDSTORE_NAME_MAX + 1], state_name[FDSTORE_NAME_MAX + 1];
    int state_fd;
    bool took;         /* an earlier run's entries were there */
    struct saved *map; /* the memfd, NULL when nothing is kept */
    int dev_fd;        /* once resumed: for the answers */
};

/* The memfd mapped, or NULL (then nothing is saved). */
static struct saved *map_state(int fd)
{
    struct stat st;
    void *p;

    if (fd < 0 || fstat(fd, &st) < 0 ||
        st.st_size < (off_t)sizeof(struct saved))
        return NULL;
    p = mmap(NULL, sizeof(struct saved), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
             0);
    return p == MAP_FAILED ? NULL : p;
}

static void drop_state(struct cuse_keep *k)
{
    if (k->map)
        munmap(k->map, sizeof(*k->map));
    if (k->state_fd >= 0)
        close(k->state_fd);
    k->map = NULL;
    k->state_fd = -1;
}

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
    k->map = map_state(k->state_fd);
    k->dev_fd = -1;
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
    drop_state(k);
    k->state_fd = memfd_create(k->state_name, MFD_CLOEXEC);
    if (k->state_fd >= 0 && (ftruncate(k->state_fd, sizeof(struct saved)) < 0 ||
                             !(k->map = map_state(k->state_fd))))
        drop_state(k);
    rc = fdstore_put(k->dev_name, dev_fd);
    if (rc == 0 && k->state_fd >= 0)
        rc = fdstore_put(k->state_name, k->state_fd);
    if (rc < 0 && rc != -ENOTCONN)
        log_warn("target %s: systemd does not keep the CUSE device (%s; "
                 "FileDescriptorStoreMax= in the unit?): a restarted relay "
                 "makes a new one, QEMU must reopen it",
                 k->target, strerror(-rc));
    if (rc < 0)
        drop_state(k); /* nobody will read it back */
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

/* A request an earlier run left unanswered when it died: its caller
 * (QEMU, holding its big lock) would wait for ever. Answered so that the
 * caller goes on: a poll with "ready" (it reads or writes, gets EAGAIN,
 * polls again), anything else with EINTR (QEMU's reads and writes retry
 * it). ENOENT: nobody waits for that one. Returns whether one was. */
static bool answer_left(const struct cuse_keep *k, uint64_t unique,
                        uint32_t opcode)
{
    struct fuse_out_header h = {.unique = unique};
    struct fuse_poll_out po = {.revents = POLLIN | POLLOUT};
    struct iovec iov[2] = {{&h, sizeof(h)}, {&po, sizeof(po)}};
    int n = opcode == FUSE_POLL ? 2 : 1;

    if (n == 1)
        h.error = -EINTR;
    h.len = (uint32_t)(sizeof(h) + (n == 2 ? sizeof(po) : 0));
    if (writev(k->dev_fd, iov, n) >= 0)
        return true;
    if (errno != ENOENT)
        log_warn("target %s: answering a request the last run left: %s",
                 k->target, strerror(errno));
    return false;
}

/* The requests an earlier run read and never answered: the one it was
 * serving, the ones it held (blocking reads and writes), one it died
 * reading. Called before this run reads any: only the earlier run's are
 * handed out and waiting for an answer then. */
static unsigned answer_left_over(struct cuse_keep *k)
{
    uint64_t last = k->map->last_unique;
    unsigned n = 0;

    if (k->map->serving && last)
        n += answer_left(k, last, k->map->last_opcode);
    for (size_t i = 0; i < CUSE_KEEP_HELD; i++)
        if (k->map->held[i])
            n += answer_left(k, k->map->held[i], 0);
    for (uint64_t u = last + 2; last && u <= last + 2 * GAP_MAX; u += 2)
        n += answer_left(k, u, 0);
    memset(k->map->held, 0, sizeof(k->map->held));
    k->map->serving = 0;
    return n;
}

bool cuse_keep_resume(struct cuse_keep *k, struct fuse_session *se, int dev_fd,
                      struct cuse_tty *tty, uint64_t *next_fh)
{
    struct saved_tty st;
    unsigned left;

    fake_init(se);
    k->dev_fd = dev_fd;
    if (!k->map)
        return false;
    left = answer_left_over(k);
    if (left)
        log_warn("target %s: the last run died with %u request%s of the "
                 "guest's side unanswered: answered now, so %s on",
                 k->target, left, left == 1 ? "" : "s",
                 left == 1 ? "its caller goes" : "their callers go");
    st = k->map->st; /* a copy: another process could write the memfd */
    if (st.tty_len > sizeof(st.tty) ||
        !cuse_tty_restore(tty, st.tty, st.tty_len))
        return false;
    *next_fh = st.next_fh;
    for (size_t i = 0; i < CUSE_KEEP_POLLERS; i++)
        if (st.kh[i])
            wake_poller(dev_fd, st.kh[i]);
    return true;
}

void cuse_keep_serving(struct cuse_keep *k, const void *req, size_t len)
{
    struct fuse_in_header h;

    if (!k || !k->map)
        return;
    if (!req || len < sizeof(h)) {
        k->map->serving = 0;
        return;
    }
    memcpy(&h, req, sizeof(h));
    k->map->serving = 0; /* the three name one request, never a mix */
    k->map->last_opcode = h.opcode;
    k->map->last_unique = h.unique;
    k->map->serving = 1;
}

uint64_t cuse_keep_hold(struct cuse_keep *k)
{
    if (!k || !k->map)
        return 0;
    for (size_t i = 0; i < CUSE_KEEP_HELD; i++)
        if (!k->map->held[i]) {
            k->map->held[i] = k->map->last_unique;
            return k->map->last_unique;
        }
    return 0;
}

void cuse_keep_unhold(struct cuse_keep *k, uint64_t unique)
{
    if (!k || !k->map || !unique)
        return;
    for (size_t i = 0; i < CUSE_KEEP_HELD; i++)
        if (k->map->held[i] == unique)
            k->map->held[i] = 0;
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
    struct saved_tty s;

    if (!k->map)
        return;
    memset(&s, 0, sizeof(s));
    s.next_fh = next_fh;
    memcpy(s.kh, kh,
           (n < CUSE_KEEP_POLLERS ? n : CUSE_KEEP_POLLERS) * sizeof(*kh));
    s.tty_len = (uint32_t)cuse_tty_save(tty, s.tty, sizeof(s.tty));
    k->map->st = s;
}

void cuse_keep_close(struct cuse_keep *k)
{
    if (!k)
        return;
    fdstore_remove(k->dev_name);
    fdstore_remove(k->state_name);
    drop_state(k);
    free(k);
}
