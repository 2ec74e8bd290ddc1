/* SPDX-License-Identifier: MIT */
/* A serial target's tty as a CUSE character device the relay serves on
 * its one libuv loop: QEMU's tcsetattr, TIOCMSET and TCSBRK arrive here as
 * they are (every setting, modem line and BREAK), the guest's bytes both
 * ways through bounded buffers (its stream toward the agent in batches),
 * poll() through FUSE poll notifications. */
#define FUSE_USE_VERSION 35

#include <cuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cuse_keep.h"
#include "cuse_tty.h"
#include "fdstore.h"
#include "log.h"
#include "net_pace.h"
#include "serial_tty_backend.h"

#define CUSE_DEVICE "/dev/cuse"
/* Toward the guest: what waits for its reads. Like a UART driver's
 * receive buffer; the agent's connection is not read while it is full. */
#define INPUT_MAX (64 * 1024)
/* Reads and writes a caller may block in at once (each one an open
 * FUSE request); more fail with EAGAIN rather than pile up. */
#define HELD_MAX CUSE_KEEP_HELD /* each noted for a restart (cuse_keep.c) */
/* The guest's stream, handed on in batches of at most this much while
 * the port still sends the batch before (see give_output); net_pace
 * starts no rest after a batch this big (its PACE_BATCH). */
#define BATCH_MAX 1024
/* Requests handled per wakeup before other handles get the loop. */
#define REQUESTS_PER_WAKEUP 64
/* The device's name under /dev (DEVNAME= for the kernel): the directory
 * and a target's name. */
#define DEVNAME_DIR "redir-relay"
#define DEVNAME_MAX (sizeof(DEVNAME_DIR) + SERIAL_TTY_NAME_MAX)

struct held { /* a blocking read or write waiting for data or room */
    struct serial_tty *tty;
    fuse_req_t req;
    size_t size, done;
    uint64_t unique; /* noted for a restarted relay, 0 if not */
    uint8_t *data; /* a write's bytes (copied: the request buffer is reused) */
    struct held *next;
};

struct opener {                 /* one open file: its handle and poll handle */
    uint64_t fh;                /* ours, for the kernel: fi->fh */
    uint64_t kh;                /* the kernel's poll handle, 0 if none */
    struct fuse_pollhandle *ph; /* libfuse's, holding kh */
    struct opener *next;
};

struct serial_tty {
    uv_loop_t *loop;
    const struct serial_tty_events *ev;
    void *owner;
    char name[SERIAL_TTY_NAME_MAX];
    char path[SERIAL_TTY_PATH_MAX];
    char devname[DEVNAME_MAX];
    struct fuse_session *se;
    struct fuse_buf fbuf;
    uv_poll_t poll;
    uv_timer_t brk_timer;
    struct cuse_tty *tty;
    struct cuse_keep *keep; /* the device and state across restarts */
    uint64_t next_fh;       /* the next open file's handle */
    struct opener *openers;
    struct held *reads, *writes;
    unsigned held;
    bool linked;
    bool inited; /* the kernel's device exists (CUSE_INIT answered) and,
                  * when kept, still has its node */
    bool kept;   /* an earlier run's device, taken back at start */
    bool full;   /* the guest was told there is no room (poll, EAGAIN) */
    struct net_pace *pace; /* when the guest's stream is handed on */
    size_t batched;        /* bytes in batch, not handed on yet */
    size_t req_len;        /* of the request being served, in fbuf */
    uint8_t batch[BATCH_MAX];
    uint8_t in[INPUT_MAX];
    size_t head, tail; /* [head, tail): for the guest's reads */
};

static struct serial_tty *req_tty(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ---- poll ---- */

static unsigned revents(struct serial_tty *t)
{
    bool room = t->ev->room(t->owner) != 0;

    t->full = !room; /* a poller waits for room: wake it when it comes */
    return (t->tail > t->head ? POLLIN | POLLRDNORM : 0) |
           (room ? POLLOUT | POLLWRNORM : 0);
}

static void notify_pollers(struct serial_tty *t)
{
    for (struct opener *o = t->openers; o; o = o->next)
        if (o->ph)
            fuse_lowlevel_notify_poll(o->ph);
}

/* The open file fh names, made if it is not known: a new one (open), or
 * one opened under an earlier run of the relay (its device kept across
 * the restart), met here first and adopted (poll). NULL only out of
 * memory. */
static struct opener *opener_of(struct serial_tty *t, uint64_t fh)
{
    struct opener *o;

    for (o = t->openers; o; o = o->next)
        if (o->fh == fh)
            return o;
    if (!(o = calloc(1, sizeof(*o))))
        return NULL;
    o->fh = fh;
    o->next = t->openers;
    t->openers = o;
    return o;
}

/* After anything that may change what a restarted relay needs: the tty,
 * the open files' poll handles (a copy into shared memory, under systemd
 * only). */
static void save_state(struct serial_tty *t)
{
    uint64_t kh[CUSE_KEEP_POLLERS];
    size_t n = 0;

    if (!cuse_keep_saving(t->keep))
        return;
    for (struct opener *o = t->openers; o && n < CUSE_KEEP_POLLERS; o = o->next)
        if (o->kh)
            kh[n++] = o->kh;
    cuse_keep_save(t->keep, t->tty, t->next_fh, kh, n);
}

static void cuse_poll(fuse_req_t req, struct fuse_file_info *fi,
                      struct fuse_pollhandle *ph)
{
    struct serial_tty *t = req_tty(req);
    struct opener *o = opener_of(t, fi->fh);

    if (ph && !o) {
        fuse_pollhandle_destroy(ph);
    } else if (ph) {
        if (o->ph)
            fuse_pollhandle_destroy(o->ph);
        o->ph = ph;
        uint64_t kh = cuse_keep_poll_kh(t->fbuf.mem, t->req_len);
        if (kh != o->kh) { /* a file's handle stays: QEMU polls it often */
            o->kh = kh;
            save_state(t);
        }
    }
    fuse_reply_poll(req, revents(t));
}

/* ---- held requests ---- */

static void unhold(struct held **list, struct held *h)
{
    for (struct held **p = list; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            break;
        }
    h->tty->held--;
    cuse_keep_unhold(h->tty->keep, h->unique);
    free(h->data);
    free(h);
}

static void on_interrupt(fuse_req_t req, void *data)
{
    struct held *h = data;
    struct serial_tty *t = h->tty;
    (void)req;

    /* a signal: a write returns what it got through, else EINTR */
    if (h->data && h->done)
        fuse_reply_write(h->req, h->done);
    else
        fuse_reply_err(h->req, EINTR);
    unhold(h->data ? &t->writes : &t->reads, h);
}

/* Queues req until data or room comes; a write's first done bytes were
 * taken already. The request may be answered (interrupted) at once. */
static void hold(struct serial_tty *t, struct held **list, fuse_req_t req,
                 size_t size, const char *data, size_t done)
{
    struct held *h = NULL;

    if (t->held < HELD_MAX && (h = calloc(1, sizeof(*h))) &&
        (!data || (h->data = malloc(size)))) {
        h->tty = t;
        h->req = req;
        h->unique = cuse_keep_hold(t->keep);
        h->size = size;
        h->done = done;
        if (data)
            memcpy(h->data, data, size);
        struct held **end = list;
        while (*end)
            end = &(*end)->next;
        *end = h;
        t->held++;
        fuse_req_interrupt_func(req, on_interrupt, h);
        return;
    }
    free(h);
    fuse_reply_err(req, EAGAIN);
}

/* ---- the guest reads: what the agent's port sent ---- */

static size_t take_input(struct serial_tty *t, fuse_req_t req, size_t size)
{
    size_t n = t->tail - t->head < size ? t->tail - t->head : size;

    fuse_reply_buf(req, (const char *)t->in + t->head, n);
    t->head += n;
    if (t->head == t->tail)
        t->head = t->tail = 0;
    return n;
}

/* Answers held reads. Tells the target there is room again unless it is
 * the target writing (ev->writable would re-enter its flush). */
static void serve_reads(struct serial_tty *t, bool tell)
{
    bool took = false;

    while (t->reads && t->tail > t->head) {
        struct held *h = t->reads;
        take_input(t, h->req, h->size);
        unhold(&t->reads, h);
        took = true;
    }
    if (took && tell)
        t->ev->writable(t->owner);
}

static void cuse_read(fuse_req_t req, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
    struct serial_tty *t = req_tty(req);
    (void)off;

    if (size == 0) {
        fuse_reply_buf(req, NULL, 0);
    } else if (t->tail > t->head && !t->reads) {
        take_input(t, req, size);
        t->ev->writable(t->owner);
    } else if (fi->flags & O_NONBLOCK) {
        fuse_reply_err(req, EAGAIN);
    } else {
        hold(t, &t->reads, req, size, NULL, 0);
    }
}

static size_t store_input(struct serial_tty *t, const uint8_t *p, size_t n)
{
    if (INPUT_MAX - t->tail < n && t->head) {
        memmove(t->in, t->in + t->head, t->tail - t->head);
        t->tail -= t->head;
        t->head = 0;
    }
    if (n > INPUT_MAX - t->tail)
        n = INPUT_MAX - t->tail;
    memcpy(t->in + t->tail, p, n);
    t->tail += n;
    return n;
}

/* From the target: stores what fits and answers held reads, again while
 * they make room (the target is not told of room it is filling now). */
static size_t tty_write(struct serial_tty *t, const uint8_t *p, size_t n)
{
    size_t done = 0, step;

    while (done < n && (step = store_input(t, p + done, n - done))) {
        done += step;
        if (!t->reads)
            break;
        serve_reads(t, false);
    }
    if (done)
        notify_pollers(t);
    return done;
}

/* ---- the guest writes: toward the agent's port ---- */

/* From give_output and flush_batch: bytes to the agent, and the line's
 * clock told they are on their way. */
static void hand_on(struct serial_tty *t, const uint8_t *p, size_t n)
{
    t->ev->data(t->owner, p, n);
    net_pace_after(t->pace, n);
}

/* The batch goes on now, ahead of whatever comes next, so the agent gets
 * the guest's bytes and its settings, modem lines and BREAK in the order
 * the guest made them. */
static void flush_batch(struct serial_tty *t)
{
    size_t n = t->batched;

    t->batched = 0;
    if (n)
        hand_on(t, t->batch, n);
}

static void on_rested(void *arg) { flush_batch(arg); }

/* QEMU's 16550 writes one byte per request, and a request must be
 * answered before QEMU (holding its big lock) goes on: it cannot be left
 * unread for a while as a pty is. So each is answered at once, but while
 * the port would still be sending the bytes handed on before (a stream;
 * common/net/net_pace.c), new ones wait in batch: one packet to the agent,
 * and one wakeup of the thin client, per batch instead of per byte. A lone
 * byte goes at once. Only what the session can take whole is batched: a
 * write cut short goes on at once, as unbatched, so the session fills up
 * and its drain wakes the held writes (tty_resume). With no agent (room
 * without limit) the bytes are dropped, not paced. */
static size_t give_output(struct serial_tty *t, const uint8_t *p, size_t n)
{
    size_t room = t->ev->room(t->owner);

    if (net_pace_resting(t->pace) && room != SIZE_MAX && t->batched <= room &&
        n <= room - t->batched && n <= BATCH_MAX - t->batched) {
        memcpy(t->batch + t->batched, p, n);
        t->batched += n;
        return n;
    }
    flush_batch(t);
    room = t->ev->room(t->owner);
    if (n > room) {
        n = room;
        t->full = true;
    }
    if (!n)
        return 0;
    if (room == SIZE_MAX)
        t->ev->data(t->owner, p, n);
    else
        hand_on(t, p, n);
    return n;
}

static void serve_writes(struct serial_tty *t)
{
    while (t->writes) {
        struct held *h = t->writes;
        h->done += give_output(t, h->data + h->done, h->size - h->done);
        if (h->done < h->size)
            return;
        fuse_reply_write(h->req, h->size);
        unhold(&t->writes, h);
    }
}

static void cuse_write(fuse_req_t req, const char *buf, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct serial_tty *t = req_tty(req);
    size_t n = 0;
    (void)off;

    if (!t->writes)
        n = give_output(t, (const uint8_t *)buf, size);
    if (n == size || (n && (fi->flags & O_NONBLOCK)))
        fuse_reply_write(req, n);
    else if (fi->flags & O_NONBLOCK)
        fuse_reply_err(req, EAGAIN);
    else /* it replies once the rest went too */
        hold(t, &t->writes, req, size, buf, n);
}

static void tty_resume(struct serial_tty *t)
{
    serve_writes(t);
    if (t->full && !t->writes && t->ev->room(t->owner)) {
        t->full = false;
        notify_pollers(t);
    }
}

/* ---- open and release ---- */

static void forward_outputs(struct serial_tty *t, int before)
{
    int now = cuse_tty_modem(t->tty);

    if ((before ^ now) & CUSE_TTY_DTR)
        t->ev->control(t->owner, RFC2217_CTL_DTR, now & CUSE_TTY_DTR);
    if ((before ^ now) & CUSE_TTY_RTS)
        t->ev->control(t->owner, RFC2217_CTL_RTS, now & CUSE_TTY_RTS);
}

static void cuse_open(fuse_req_t req, struct fuse_file_info *fi)
{
    struct serial_tty *t = req_tty(req);
    struct opener *o = opener_of(t, t->next_fh);
    int before = cuse_tty_modem(t->tty);
    int pid = (int)fuse_req_ctx(req)->pid; /* req is gone after the reply */

    if (!o) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    t->next_fh++;
    fi->fh = o->fh;
    fi->direct_io = 1;
    fi->nonseekable = 1;
    fuse_reply_open(req, fi);
    if (cuse_tty_opened(t->tty))
        forward_outputs(t, before);
    save_state(t);
    log_debug("target %s: %s opened (pid %d)", t->name, t->path, pid);
}

static void cuse_release(fuse_req_t req, struct fuse_file_info *fi)
{
    struct serial_tty *t = req_tty(req);
    struct opener *o = NULL;
    int before = cuse_tty_modem(t->tty);

    /* none for a file opened under an earlier run and never polled */
    for (struct opener **p = &t->openers; *p; p = &(*p)->next)
        if ((*p)->fh == fi->fh) {
            o = *p;
            *p = o->next;
            break;
        }
    if (o && o->ph)
        fuse_pollhandle_destroy(o->ph);
    free(o);
    fuse_reply_err(req, 0);
    flush_batch(t);
    if (cuse_tty_closed(t->tty)) /* HUPCL: the last close drops DTR/RTS */
        forward_outputs(t, before);
    save_state(t);
    log_debug("target %s: %s closed", t->name, t->path);
}

/* ---- ioctls ---- */

static void on_break_end(uv_timer_t *timer)
{
    struct serial_tty *t = timer->data;

    t->ev->control(t->owner, RFC2217_CTL_BREAK, false);
}

static void apply(struct serial_tty *t, unsigned cmd,
                  const struct cuse_tty_result *r, int modem_before)
{
    struct serial_line l;

    if (r->changed & CUSE_TTY_FLUSH_OUT)
        t->batched = 0; /* tcflush(TCOFLUSH): never sent, now never will */
    if (r->changed || cuse_tty_drains(cmd))
        flush_batch(t); /* the guest's bytes before what this sends */
    if (r->changed & CUSE_TTY_CHANGED_LINE) {
        cuse_tty_line(t->tty, &l);
        net_pace_line(t->pace, &l);
        t->ev->line(t->owner, &l);
    }
    if (r->changed & CUSE_TTY_CHANGED_MODEM)
        forward_outputs(t, modem_before);
    if (r->changed & (CUSE_TTY_BREAK_ON | CUSE_TTY_BREAK_TIMED)) {
        uv_timer_stop(&t->brk_timer);
        t->ev->control(t->owner, RFC2217_CTL_BREAK, true);
    }
    if (r->changed & CUSE_TTY_BREAK_TIMED)
        uv_timer_start(&t->brk_timer, on_break_end, r->break_ms, 0);
    if (r->changed & CUSE_TTY_BREAK_OFF) {
        uv_timer_stop(&t->brk_timer);
        t->ev->control(t->owner, RFC2217_CTL_BREAK, false);
    }
    if (r->changed & CUSE_TTY_FLUSH_IN)
        t->head = t->tail = 0;
    if (r->changed & (CUSE_TTY_FLUSH_IN | CUSE_TTY_FLUSH_OUT))
        t->ev->purge(
            t->owner,
            (r->changed & CUSE_TTY_FLUSH_IN ? RFC2217_PURGE_RX : 0) |
                (r->changed & CUSE_TTY_FLUSH_OUT ? RFC2217_PURGE_TX : 0));
    if (r->changed & CUSE_TTY_FLUSH_IN)
        t->ev->writable(t->owner);
}

/* tty ioctls are not _IOC-encoded: the kernel cannot know their argument
 * sizes, so the first call (unrestricted) asks for a retry naming them. */
static void cuse_ioctl(fuse_req_t req, int cmd, void *arg,
                       struct fuse_file_info *fi, unsigned flags,
                       const void *in, size_t in_len, size_t out_cap)
{
    struct serial_tty *t = req_tty(req);
    struct cuse_tty_call c = {
        .cmd = (unsigned)cmd,
        .arg = (uintptr_t)arg,
        .in = in,
        .in_len = in_len,
        .out_cap = out_cap,
        .input_queue = t->tail - t->head,
        .output_queue = t->batched,
    };
    struct cuse_tty_result r;
    int before = cuse_tty_modem(t->tty);
    (void)fi;

    cuse_tty_ioctl(t->tty, &c, &r);
    if (r.verdict == CUSE_TTY_ERROR) {
        fuse_reply_err(req, r.error);
    } else if (r.verdict == CUSE_TTY_RETRY) {
        struct iovec iov = {.iov_base = arg,
                            .iov_len = r.in_len ? r.in_len : r.out_len};
        if (!(flags & FUSE_IOCTL_UNRESTRICTED))
            fuse_reply_err(req, ENOTTY);
        else
            fuse_reply_ioctl_retry(req, r.in_len ? &iov : NULL,
                                   r.in_len ? 1 : 0, r.out_len ? &iov : NULL,
                                   r.out_len ? 1 : 0);
    } else {
        fuse_reply_ioctl(req, r.ret, r.out_len ? r.out : NULL, r.out_len);
        apply(t, c.cmd, &r, before);
        if (!cuse_tty_only_reads(c.cmd)) /* QEMU's TIOCMGET polls: no */
            save_state(t);
    }
}

/* ---- the device ---- */

/* path -> the device node, replaced atomically (QEMU may be opening it). */
static int link_path(struct serial_tty *t)
{
    char node[sizeof(t->devname) + 8], tmp[sizeof(t->path) + 8];

    snprintf(node, sizeof(node), "/dev/%s", t->devname);
    if (strcmp(node, t->path) == 0)
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.new", t->path);
    unlink(tmp);
    if (symlink(node, tmp) < 0 || rename(tmp, t->path) < 0) {
        int err = errno;
        unlink(tmp);
        return -err;
    }
    t->linked = true;
    return 0;
}

/* The kernel created the device (our CUSE_INIT reply went out). */
static void cuse_init_done(void *userdata)
{
    struct serial_tty *t = userdata;
    char node[sizeof(t->devname) + 8];
    struct stat st;

    snprintf(node, sizeof(node), "/dev/%s", t->devname);
    /* a kept device whose node is gone is not one QEMU holds any more */
    t->inited = !t->kept || (stat(node, &st) == 0 && S_ISCHR(st.st_mode));
    if (!t->inited)
        return;
    if (stat(node, &st) < 0 || !S_ISCHR(st.st_mode))
        log_warn("target %s: CUSE device %s: no node in /dev (%s); QEMU "
                 "will not find it at %s",
                 t->name, t->devname, strerror(errno), t->path);
    int rc = link_path(t);
    if (rc < 0)
        log_err("target %s: cannot link %s to %s: %s", t->name, t->path, node,
                strerror(-rc));
    else if (t->kept)
        log_info("target %s: serial tty %s (CUSE, kept across the restart) "
                 "linked at %s",
                 t->name, node, t->path);
    else
        log_info("target %s: serial tty %s (CUSE: every setting, modem "
                 "line and BREAK) linked at %s",
                 t->name, node, t->path);
}

static const struct cuse_lowlevel_ops cuse_ops = {
    .init_done = cuse_init_done,
    .open = cuse_open,
    .read = cuse_read,
    .write = cuse_write,
    .release = cuse_release,
    .ioctl = cuse_ioctl,
    .poll = cuse_poll,
};

static void on_session(uv_poll_t *h, int status, int events)
{
    struct serial_tty *t = h->data;
    (void)events;

    if (status < 0) {
        log_warn("target %s: %s: %s", t->name, CUSE_DEVICE,
                 uv_strerror(status));
        return;
    }
    for (int i = 0; i < REQUESTS_PER_WAKEUP; i++) {
        int n = fuse_session_receive_buf(t->se, &t->fbuf);
        if (n == -EAGAIN || n == -EINTR)
            return;
        if (n <= 0) { /* ENODEV: the kernel dropped the device */
            log_err("target %s: the CUSE device ended (%s); a reload or "
                    "restart makes a new one",
                    t->name, n < 0 ? strerror(-n) : "session closed");
            uv_poll_stop(&t->poll);
            cuse_keep_forget(t->keep); /* a restart must not take it back */
            return;
        }
        t->req_len = (size_t)n;
        cuse_keep_serving(t->keep, t->fbuf.mem, t->req_len);
        fuse_session_process_buf(t->se, &t->fbuf);
        cuse_keep_served(t->keep);
    }
}

/* A libfuse session on fd (a /dev/cuse fd, which it adopts). */
static int session_new(struct serial_tty *t, int fd)
{
    const char *info[] = {NULL};
    char devinfo[sizeof(t->devname) + 16];
    char *argv[] = {"redir-relay", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(1, argv);
    struct cuse_info ci = {.dev_info_argc = 1,
                           .dev_info_argv = info,
                           .flags = CUSE_UNRESTRICTED_IOCTL};
    char mnt[32];

    snprintf(devinfo, sizeof(devinfo), "DEVNAME=%s", t->devname);
    info[0] = devinfo;
    t->se = cuse_lowlevel_new(&args, &ci, &cuse_ops, t);
    fuse_opt_free_args(&args); /* the parse may have copied argv */
    if (!t->se) {
        close(fd);
        return -ENOMEM;
    }
    snprintf(mnt, sizeof(mnt), "/dev/fd/%d", fd);
    if (fuse_session_mount(t->se, mnt) < 0) { /* adopts fd */
        close(fd);
        return -EINVAL;
    }
    return 0;
}

/* The device an earlier run kept in systemd's fd store: served on from
 * where that run left it (the guest's settings, its open files). False
 * when it is not usable: a new one then. */
static bool session_resume(struct serial_tty *t, int fd)
{
    struct serial_line l;

    t->kept = true; /* for init_done's log */
    if (session_new(t, fd) == 0)
        cuse_keep_resume(t->keep, t->se, fd);
    if (t->inited) {
        if (!cuse_keep_load(t->keep, t->tty, &t->next_fh)) {
            /* the earlier run's handles are unknown: start beyond them */
            t->next_fh = (uint64_t)time(NULL) << 20;
            log_warn("target %s: the CUSE device was kept across the "
                     "restart, its settings were not: the guest's last "
                     "ones are lost until it sets them again",
                     t->name);
        }
        cuse_tty_line(t->tty, &l);
        if (t->pace)
            net_pace_line(t->pace, &l);
        return true;
    }
    log_warn("target %s: the CUSE device kept across the restart is not "
             "usable: a new one, QEMU must reopen %s",
             t->name, t->path);
    t->kept = false;
    if (t->se)
        fuse_session_destroy(t->se);
    t->se = NULL;
    return false;
}

static int session_open(struct serial_tty *t)
{
    int fd, rc;

    t->keep = cuse_keep_open(t->name, &fd);
    if (!t->keep)
        return -ENOMEM;
    if (fd < 0 || !session_resume(t, fd)) {
        fd = open(CUSE_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        rc = session_new(t, fd);
        if (rc < 0)
            return rc;
        cuse_keep_store(t->keep, fd);
    }
    rc = uv_poll_init(t->loop, &t->poll, fuse_session_fd(t->se));
    if (rc < 0)
        return rc;
    t->poll.data = t;
    return uv_poll_start(&t->poll, UV_READABLE, on_session);
}

/* Answers what waits (the device is going) and forgets the openers'
 * poll handles: nothing of libfuse's is left when the session goes. */
static void drop_requests(struct serial_tty *t)
{
    /* a device kept for the next run is not gone: its callers try again
     * (a write tells what it got through, as when interrupted) */
    int err = fdstore_keeping() ? EINTR : ENODEV;

    while (t->reads) {
        fuse_reply_err(t->reads->req, err);
        unhold(&t->reads, t->reads);
    }
    while (t->writes) {
        struct held *h = t->writes;
        if (err == EINTR && h->done)
            fuse_reply_write(h->req, h->done);
        else
            fuse_reply_err(h->req, err);
        unhold(&t->writes, h);
    }
    while (t->openers) {
        struct opener *o = t->openers;
        t->openers = o->next;
        if (o->ph)
            fuse_pollhandle_destroy(o->ph);
        free(o);
    }
}

static void tty_free(struct serial_tty *t)
{
    free(t->fbuf.mem);
    cuse_tty_free(t->tty);
    free(t);
}

static void on_timer_closed(uv_handle_t *h) { tty_free(h->data); }

static void on_poll_closed(uv_handle_t *h)
{
    struct serial_tty *t = h->data;

    uv_close((uv_handle_t *)&t->brk_timer, on_timer_closed);
}

/* The device goes at once (a reload may create one of the same name right
 * after): uv_close takes the fd out of the loop before the session
 * closes it, then only the handles' memory waits for their callbacks. */
static void tty_close(struct serial_tty *t)
{
    bool polled = t->poll.loop != NULL;

    uv_timer_stop(&t->brk_timer); /* the target is gone: no more events */
    net_pace_free(t->pace);       /* and nothing batched goes anywhere */
    t->pace = NULL;
    if (t->linked)
        unlink(t->path);
    if (polled)
        uv_close((uv_handle_t *)&t->poll, on_poll_closed);
    if (t->se) {
        drop_requests(t);
        fuse_session_destroy(t->se); /* closes /dev/cuse: the device goes, */
        t->se = NULL;                /* unless systemd keeps a copy */
    }
    cuse_keep_close(t->keep);
    t->keep = NULL;
    if (!polled)
        on_poll_closed((uv_handle_t *)&t->poll);
}

/* Out of memory for it, every write is handed on as it comes. */
static void pace_start(struct serial_tty *t)
{
    struct serial_line l;

    t->pace = net_pace_new(t->loop, t->name, on_rested, t);
    cuse_tty_line(t->tty, &l);
    net_pace_line(t->pace, &l);
}

static struct serial_tty *tty_open(uv_loop_t *loop, const char *target,
                                   const char *path,
                                   const struct serial_tty_events *ev,
                                   void *owner)
{
    struct serial_tty *t;

    /* the name becomes a path under /dev: "." and ".." would climb */
    if (target[0] == '.' || strchr(target, '/')) {
        log_err("target %s: a CUSE tty's name must not start with '.'", target);
        return NULL;
    }
    t = calloc(1, sizeof(*t));
    if (!t || !(t->tty = cuse_tty_new())) {
        log_err("target %s: out of memory", target);
        free(t);
        return NULL;
    }
    t->loop = loop;
    t->next_fh = 1; /* 0: no handle */
    t->ev = ev;
    t->owner = owner;
    snprintf(t->name, sizeof(t->name), "%s", target);
    snprintf(t->path, sizeof(t->path), "%s", path);
    snprintf(t->devname, sizeof(t->devname), DEVNAME_DIR "/%s", target);
    uv_timer_init(loop, &t->brk_timer);
    t->brk_timer.data = t;
    t->poll.data = t;
    pace_start(t);
    int rc = session_open(t);
    if (rc < 0) {
        log_err("target %s: cannot create the CUSE tty /dev/%s through %s: "
                "%s%s",
                target, t->devname, CUSE_DEVICE,
                strerror(rc < -4095 ? EINVAL : -rc),
                rc == -ENOENT   ? " (cuse.ko not loaded?); tty = auto falls "
                                  "back to a pty"
                : rc == -EACCES ? "; tty = auto falls back to a pty"
                                : "");
        tty_close(t);
        return NULL;
    }
    return t;
}

static void tty_line(struct serial_tty *t, struct serial_line *l)
{
    cuse_tty_line(t->tty, l);
}

static int tty_outputs(struct serial_tty *t)
{
    return cuse_tty_modem(t->tty) & (CUSE_TTY_DTR | CUSE_TTY_RTS);
}

static void tty_inputs(struct serial_tty *t, uint8_t modemstate)
{
    cuse_tty_set_inputs(
        t->tty, (modemstate & RFC2217_MODEM_CTS ? CUSE_TTY_CTS : 0) |
                    (modemstate & RFC2217_MODEM_DSR ? CUSE_TTY_DSR : 0) |
                    (modemstate & RFC2217_MODEM_CD ? CUSE_TTY_CD : 0) |
                    (modemstate & RFC2217_MODEM_RI ? CUSE_TTY_RI : 0));
}

bool serial_cuse_available(void)
{
    int fd = open(CUSE_DEVICE, O_RDWR | O_CLOEXEC);

    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* Under systemd, a device an earlier run kept (cuse_keep.c). */
static bool tty_kept(const struct serial_tty *t) { return t->kept; }

const struct serial_tty_backend serial_tty_cuse = {
    .kind = "cuse",
    .sees =
        SERIAL_TTY_SEES_FRAMING | SERIAL_TTY_SEES_MODEM | SERIAL_TTY_SEES_BREAK,
    .open = tty_open,
    .write = tty_write,
    .resume = tty_resume,
    .line = tty_line,
    .outputs = tty_outputs,
    .inputs = tty_inputs,
    .close = tty_close,
    .kept = tty_kept,
};
