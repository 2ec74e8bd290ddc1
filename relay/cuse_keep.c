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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdstore.h"
#include "log.h"

/* /dev/cuse: misc major 10, minor 203 (Documentation/admin-guide/
 * devices.txt). A stored fd that is anything else is not taken. */
#define CUSE_MAJOR 10
#define CUSE_MINOR 203
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
/* Names this layout of the memfd: another build's is not read. */
#define SAVED_MAGIC 0x4b435552u /* "RUCK" */
/* How long a removed device may take to go (systemd closing its copy)
 * before a new one of the same name is made anyway. */
#define BARRIER_MS 1000
/* The memfd cannot change size: a mapping of it never faults (SIGBUS). */
#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

struct saved_tty {
    uint64_t applied; /* the request served when saved: its effect is in */
    uint64_t next_fh;
    uint64_t kh[CUSE_KEEP_POLLERS];
    uint32_t tty_len;
    uint8_t tty[CUSE_TTY_STATE_MAX];
};

/* What the memfd holds, mapped shared: stores into it outlive a crash
 * (systemd holds the memfd) and cost no system call. A crash can come
 * between any two instructions: the tty state is written to the slot not
 * in use and then published by seq, and every field a run reads back is
 * valid at every point of an update. */
struct saved {
    uint32_t magic, size;
    uint64_t last_unique; /* the last request read (an even id) */
    uint32_t last_opcode;
    uint32_t serving;              /* last_unique is not answered yet */
    uint64_t held[CUSE_KEEP_HELD]; /* requests answered later, 0: free */
    uint64_t seq;                  /* st[seq & 1] is the state */
    struct saved_tty st[2];
};

struct cuse_keep {
    char target[FDSTORE_NAME_MAX + 1];
    char dev_name[FDSTORE_NAME_MAX + 1], state_name[FDSTORE_NAME_MAX + 1];
    int state_fd;
    int dev_fd;           /* once resumed: for the answers and wakeups */
    bool took;            /* an earlier run's entries were there */
    bool stored;          /* systemd holds a copy of this run's device */
    uint64_t release_cut; /* the close the earlier run died serving, or 0 */
    struct saved *map;    /* the memfd, NULL when nothing is kept */
};

/* The order of stores into the map is the order a successor sees. */
#define PUBLISH() atomic_signal_fence(memory_order_seq_cst)

static void drop_state(struct cuse_keep *k)
{
    if (k->map)
        munmap(k->map, sizeof(*k->map));
    if (k->state_fd >= 0)
        close(k->state_fd);
    k->map = NULL;
    k->state_fd = -1;
}

/* The memfd mapped, if it is one of this build's: sealed at its size. */
static struct saved *map_state(int fd, bool fresh)
{
    struct stat st;
    struct saved *p;

    if (fd < 0 || fstat(fd, &st) < 0 ||
        st.st_size != (off_t)sizeof(struct saved) ||
        (fcntl(fd, F_GET_SEALS) & SEALS) != SEALS)
        return NULL;
    p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (fresh) {
        p->magic = SAVED_MAGIC;
        p->size = sizeof(*p);
    } else if (p->magic != SAVED_MAGIC || p->size != sizeof(*p)) {
        munmap(p, sizeof(*p));
        return NULL;
    }
    return p;
}

/* The stored device fd, if it is /dev/cuse's. */
static int take_device(struct cuse_keep *k)
{
    int fd = fdstore_take(k->dev_name);
    struct stat st;

    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
        st.st_rdev != makedev(CUSE_MAJOR, CUSE_MINOR)) {
        log_warn("target %s: the fd kept as %s is not /dev/cuse's: a new "
                 "device",
                 k->target, k->dev_name);
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK); /* the same open file: be sure */
    return fd;
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
    k->dev_fd = -1;
    k->state_fd = fdstore_take(k->state_name);
    k->took = k->state_fd >= 0;
    *dev_fd = take_device(k);
    k->took |= *dev_fd >= 0;
    if (*dev_fd >= 0) {
        k->stored = true;
        k->map = map_state(k->state_fd, false);
    }
    if (!k->map)
        drop_state(k); /* a state without its device is nobody's */
    return k;
}

/* A new memfd for the state, sealed, in the store. */
static void store_state(struct cuse_keep *k)
{
    k->state_fd = memfd_create(k->state_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (k->state_fd < 0 || ftruncate(k->state_fd, sizeof(struct saved)) < 0 ||
        fcntl(k->state_fd, F_ADD_SEALS, SEALS) < 0 ||
        !(k->map = map_state(k->state_fd, true)) ||
        fdstore_put(k->state_name, k->state_fd) < 0) {
        log_warn("target %s: cannot keep the CUSE tty's settings for a "
                 "restart (%s): a restarted relay serves the device with "
                 "defaults until the guest sets them again",
                 k->target, strerror(errno));
        drop_state(k);
    }
}

void cuse_keep_store(struct cuse_keep *k, int dev_fd)
{
    int rc;

    /* systemd keeps every fd sent under a name: the new device must not
     * join an unusable one */
    if (k->took) {
        fdstore_remove(k->dev_name);
        fdstore_remove(k->state_name);
        /* an unusable device systemd still holds keeps its name: gone
         * before ours registers (our CUSE_INIT reply is not sent yet) */
        fdstore_barrier(BARRIER_MS);
        k->took = false;
    }
    drop_state(k);
    rc = fdstore_put(k->dev_name, dev_fd);
    k->stored = rc == 0;
    if (rc == 0)
        store_state(k);
    else if (rc != -ENOTCONN)
        log_warn("target %s: systemd does not keep the CUSE device (%s; "
                 "FileDescriptorStoreMax= in the unit?): a restarted relay "
                 "makes a new one, QEMU must reopen it",
                 k->target, strerror(-rc));
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

/* A request an earlier run left unanswered when it died: its caller
 * (QEMU, holding its big lock) would wait for ever. Answered so that the
 * caller goes on: a poll with "ready" (it reads or writes, gets EAGAIN,
 * polls again), anything else with EINTR (QEMU's reads and writes retry
 * it). ENOENT: nobody waits for that one. Returns whether one did. */
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

    if (k->map->serving && last) {
        n += answer_left(k, last, k->map->last_opcode);
        if (k->map->last_opcode == FUSE_RELEASE)
            k->release_cut = last;
    }
    for (size_t i = 0; i < CUSE_KEEP_HELD; i++)
        if (k->map->held[i])
            n += answer_left(k, k->map->held[i], 0);
    for (uint64_t u = last + 2; last && u <= last + 2 * GAP_MAX; u += 2)
        n += answer_left(k, u, 0);
    memset(k->map->held, 0, sizeof(k->map->held));
    k->map->serving = 0;
    return n;
}

void cuse_keep_resume(struct cuse_keep *k, struct fuse_session *se, int dev_fd)
{
    unsigned left;

    fake_init(se);
    k->dev_fd = dev_fd;
    if (!k->map)
        return;
    left = answer_left_over(k);
    if (left)
        log_warn("target %s: the last run died with %u request%s of the "
                 "guest's side unanswered: answered now, so %s on",
                 k->target, left, left == 1 ? "" : "s",
                 left == 1 ? "its caller goes" : "their callers go");
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

bool cuse_keep_load(struct cuse_keep *k, struct cuse_tty *tty,
                    uint64_t *next_fh)
{
    struct saved_tty st;

    if (!k->map)
        return false;
    st = k->map->st[k->map->seq & 1]; /* a copy: the memfd is shared */
    for (size_t i = 0; i < CUSE_KEEP_POLLERS; i++)
        if (st.kh[i])
            wake_poller(k->dev_fd, st.kh[i]);
    if (!st.next_fh || st.tty_len > sizeof(st.tty) ||
        !cuse_tty_restore(tty, st.tty, st.tty_len))
        return false;
    *next_fh = st.next_fh;
    /* a close the state does not show yet: HUPCL must still count it, or
     * the guest's last close would leave DTR/RTS up */
    if (k->release_cut && st.applied != k->release_cut)
        cuse_tty_closed(tty);
    return true;
}

bool cuse_keep_saving(const struct cuse_keep *k) { return k && k->map; }

void cuse_keep_serving(struct cuse_keep *k, const void *req, size_t len)
{
    struct fuse_in_header h;

    if (!cuse_keep_saving(k) || !req || len < sizeof(h))
        return;
    memcpy(&h, req, sizeof(h));
    /* an interrupt names another request (its id | 1) and needs no answer */
    if (h.opcode == FUSE_INTERRUPT || (h.unique & 1))
        return;
    k->map->serving = 0; /* the three name one request, never a mix */
    PUBLISH();
    k->map->last_opcode = h.opcode;
    k->map->last_unique = h.unique;
    PUBLISH();
    k->map->serving = 1;
}

void cuse_keep_served(struct cuse_keep *k)
{
    if (cuse_keep_saving(k))
        k->map->serving = 0;
}

uint64_t cuse_keep_hold(struct cuse_keep *k)
{
    if (!cuse_keep_saving(k) || !k->map->serving)
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
    if (!cuse_keep_saving(k) || !unique)
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
    struct saved_tty *s;

    if (!cuse_keep_saving(k))
        return;
    s = &k->map->st[(k->map->seq + 1) & 1];
    memset(s, 0, sizeof(*s));
    s->applied = k->map->serving ? k->map->last_unique : 0;
    s->next_fh = next_fh;
    memcpy(s->kh, kh,
           (n < CUSE_KEEP_POLLERS ? n : CUSE_KEEP_POLLERS) * sizeof(*kh));
    s->tty_len = (uint32_t)cuse_tty_save(tty, s->tty, sizeof(s->tty));
    PUBLISH();
    k->map->seq++;
}

void cuse_keep_forget(struct cuse_keep *k)
{
    if (!k || !k->stored)
        return;
    fdstore_remove(k->dev_name);
    fdstore_remove(k->state_name);
    k->stored = false;
    drop_state(k);
}

void cuse_keep_close(struct cuse_keep *k)
{
    if (!k)
        return;
    if (k->stored && !fdstore_keeping()) {
        cuse_keep_forget(k);
        /* the caller closed its copy: once systemd closed its own the
         * device is gone, and one of the same name can be made (a
         * reload); the kernel refuses a name that is still taken */
        int rc = fdstore_barrier(BARRIER_MS);
        if (rc < 0 && rc != -ENOTCONN)
            log_warn("target %s: systemd did not confirm it let the CUSE "
                     "device go (%s)",
                     k->target, strerror(-rc));
    }
    drop_state(k);
    free(k);
}
