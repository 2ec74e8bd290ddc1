/* SPDX-License-Identifier: MIT */
/* A serial target's tty as a pty on the relay's loop: its slave linked at
 * the target's path for QEMU, the guest's settings read from the master
 * at each TIOCPKT_IOCTL wakeup (speed, stop bits, flow control: a pty
 * forces 8 bits without parity and has no modem lines or BREAK). Under
 * systemd both ends sit in the service's fd store, so a restarted relay
 * takes the same pty back and QEMU's open slave never notices. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fdstore.h"
#include "log.h"
#include "net_pace.h"
#include "serial_pty.h"
#include "serial_tty_backend.h"

/* One read of the guest's output (plus the packet-mode status byte). */
#define PTY_READ_MAX 16384

/* QEMU's 16550 writes the pty one byte per system call, far faster than
 * the line it models: read as soon as it was readable, the pty gave a few
 * bytes per wakeup and every hop behind it (relay, agent) woke as often,
 * which slowed QEMU itself to 0.51-0.70x of the rate it wrote the same
 * pty at with nothing behind it (bench/serial_relay/guest.py). So a
 * stream is read in batches (common/net/net_pace.c), at the pace of the
 * guest's line; a lone byte goes at once. */

struct serial_tty {
    uv_loop_t *loop;
    const struct serial_tty_events *ev;
    void *owner;
    char name[SERIAL_TTY_NAME_MAX];
    char path[SERIAL_TTY_PATH_MAX];
    int master, slave; /* slave kept open: QEMU closing it is no hang-up */
    uv_poll_t poll;
    int poll_events;
    struct net_pace *pace; /* the guest's stream read in batches */
    bool want_write;       /* write() came back short: wait for POLLOUT */
    bool kept;             /* taken back from systemd's fd store at start */
    uint8_t rbuf[PTY_READ_MAX + 1];
};

static void pty_update(struct serial_tty *t);

/* From on_poll (the pty is readable) and on_rested (a rest ended). */
static void pty_read(struct serial_tty *t)
{
    size_t room = t->ev->room(t->owner);
    size_t want = room < PTY_READ_MAX ? room : PTY_READ_MAX;
    ssize_t n = read(t->master, t->rbuf, want + 1);

    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO)
            log_warn("target %s: reading the pty: %s", t->name,
                     strerror(errno));
        return;
    }
    if (t->rbuf[0] != TIOCPKT_DATA) { /* a status byte alone */
        struct serial_line now;
        if ((t->rbuf[0] & TIOCPKT_IOCTL) &&
            serial_pty_line(t->master, &now) == 0) {
            net_pace_line(t->pace, &now);
            t->ev->line(t->owner, &now);
        }
        return;
    }
    if (n > 1) {
        t->ev->data(t->owner, t->rbuf + 1, (size_t)n - 1);
        net_pace_after(t->pace, (size_t)n - 1);
    }
}

/* A rest is over: read what came meanwhile at once (the pty is readable
 * if anything did; no loop turn spent waiting to be told). */
static void on_rested(void *arg)
{
    struct serial_tty *t = arg;

    if (t->ev->room(t->owner))
        pty_read(t);
    pty_update(t);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct serial_tty *t = h->data;

    if (status < 0) {
        log_warn("target %s: the pty: %s", t->name, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE) {
        t->want_write = false;
        t->ev->writable(t->owner);
    }
    if (events & UV_READABLE)
        pty_read(t);
    pty_update(t);
}

/* Reads the guest unless the target is backed up (a status byte waits in
 * the pty meanwhile: nothing is lost). */
static void pty_update(struct serial_tty *t)
{
    int events =
        (!net_pace_resting(t->pace) && t->ev->room(t->owner) ? UV_READABLE
                                                             : 0) |
        (t->want_write ? UV_WRITABLE : 0);

    if (events != t->poll_events) {
        uv_poll_start(&t->poll, events, on_poll);
        t->poll_events = events;
    }
}

static size_t pty_write(struct serial_tty *t, const uint8_t *p, size_t n)
{
    ssize_t w = n ? write(t->master, p, n) : 0;

    if (w < 0)
        w = 0;
    if ((size_t)w < n) {
        t->want_write = true;
        pty_update(t);
    }
    return (size_t)w;
}

static void pty_resume(struct serial_tty *t) { pty_update(t); }

static void pty_line(struct serial_tty *t, struct serial_line *l)
{
    if (serial_pty_line(t->master, l) < 0)
        serial_line_default(l);
}

static int pty_outputs(struct serial_tty *t)
{
    (void)t;
    return -1;
}

static void pty_inputs(struct serial_tty *t, uint8_t modemstate)
{
    (void)t;
    (void)modemstate;
}

static void on_poll_closed(uv_handle_t *h)
{
    struct serial_tty *t = h->data;

    close(t->master);
    close(t->slave);
    free(t);
}

/* The fd store's names of the target's two ends. */
static void store_names(const char *target, char (*m)[FDSTORE_NAME_MAX + 1],
                        char (*s)[FDSTORE_NAME_MAX + 1])
{
    snprintf(*m, sizeof(*m), "pty-master.%s", target);
    snprintf(*s, sizeof(*s), "pty-slave.%s", target);
}

static void pty_close(struct serial_tty *t)
{
    char m[FDSTORE_NAME_MAX + 1], s[FDSTORE_NAME_MAX + 1];

    /* a removed target's pty goes (unless the relay is exiting: then the
     * store keeps it for the next run); the link goes either way, as a
     * stale one could name another program's pty later */
    store_names(t->name, &m, &s);
    fdstore_remove(m);
    fdstore_remove(s);
    unlink(t->path);
    net_pace_free(t->pace);
    uv_close((uv_handle_t *)&t->poll, on_poll_closed);
}

/* path -> the slave, replaced atomically (QEMU may be opening it). */
static int pty_link(struct serial_tty *t, const char *slave_name)
{
    char tmp[sizeof(t->path) + 8];

    snprintf(tmp, sizeof(tmp), "%s.new", t->path);
    unlink(tmp);
    if (symlink(slave_name, tmp) < 0 || rename(tmp, t->path) < 0) {
        int err = errno;
        unlink(tmp);
        return -err;
    }
    return 0;
}

/* The pty an earlier run of the relay kept in systemd's fd store, if it is
 * still one: 1 when adopted, 0 when there is none. */
static int pty_adopt(struct serial_tty *t, char *name, size_t len)
{
    char m[FDSTORE_NAME_MAX + 1], s[FDSTORE_NAME_MAX + 1];
    int rc;

    store_names(t->name, &m, &s);
    t->master = fdstore_take(m);
    t->slave = fdstore_take(s);
    if (t->master < 0 && t->slave < 0)
        return 0;
    rc = t->master >= 0 && t->slave >= 0
             ? serial_pty_adopt(t->master, t->slave, name, len)
             : -ENOENT;
    if (rc == 0)
        return 1;
    log_warn("target %s: the pty kept across the restart is not usable "
             "(%s): a new one, QEMU must reopen %s",
             t->name, strerror(-rc), t->path);
    if (t->master >= 0)
        close(t->master);
    if (t->slave >= 0)
        close(t->slave);
    t->master = t->slave = -1;
    fdstore_remove(m); /* systemd keeps every fd sent under a name: the */
    fdstore_remove(s); /* new pair must not join the unusable one */
    return 0;
}

/* Both ends into the fd store, when systemd runs the relay with one. */
static void pty_store(struct serial_tty *t)
{
    char m[FDSTORE_NAME_MAX + 1], s[FDSTORE_NAME_MAX + 1];
    int rc;

    store_names(t->name, &m, &s);
    rc = fdstore_put(m, t->master);
    if (rc == 0)
        rc = fdstore_put(s, t->slave);
    if (rc < 0 && rc != -ENOTCONN)
        log_warn("target %s: systemd does not keep the pty (%s; "
                 "FileDescriptorStoreMax= in the unit?): a restarted relay "
                 "makes a new one, QEMU must reopen %s",
                 t->name, strerror(-rc), t->path);
}

/* The pty: the one kept across a restart, else a new one. */
static int pty_get(struct serial_tty *t, char *name, size_t len, bool *kept)
{
    int rc;

    *kept = pty_adopt(t, name, len) == 1;
    if (*kept)
        return 0;
    rc = serial_pty_open(&t->master, &t->slave, name, len);
    if (rc == 0)
        pty_store(t);
    return rc;
}

/* Out of memory for it, the pty is read as it comes. */
static void pty_pace_start(struct serial_tty *t)
{
    struct serial_line l;

    t->pace = net_pace_new(t->loop, t->name, on_rested, t);
    if (t->pace && serial_pty_line(t->master, &l) == 0)
        net_pace_line(t->pace, &l);
}

static struct serial_tty *pty_open(uv_loop_t *loop, const char *target,
                                   const char *path,
                                   const struct serial_tty_events *ev,
                                   void *owner)
{
    struct serial_tty *t = calloc(1, sizeof(*t));
    char name[64];
    if (!t) {
        log_err("target %s: out of memory", target);
        return NULL;
    }
    *t = (struct serial_tty){.loop = loop, .ev = ev, .owner = owner};
    snprintf(t->name, sizeof(t->name), "%s", target);
    snprintf(t->path, sizeof(t->path), "%s", path);
    int rc = pty_get(t, name, sizeof(name), &t->kept);
    if (rc == 0)
        rc = pty_link(t, name);
    if (rc == 0)
        rc = uv_poll_init(loop, &t->poll, t->master);
    if (rc < 0) {
        log_err("target %s: cannot create the pty at %s: %s", target, path,
                rc < -4095 ? uv_strerror(rc) : strerror(-rc));
        if (t->master >= 0)
            close(t->master);
        if (t->slave >= 0)
            close(t->slave);
        free(t);
        return NULL;
    }
    t->poll.data = t;
    pty_pace_start(t);
    log_info("target %s: serial pty %s%s linked at %s", target, name,
             t->kept ? " (kept across the restart: QEMU's open file stays "
                       "valid)"
                     : "",
             path);
    log_notice("target %s: %s is a pty: the guest's speed, stop bits and "
               "flow control reach the agent; its data bits, parity, modem "
               "lines (DTR/RTS) and BREAK do not (the pty driver forces 8 "
               "bits without parity and has no modem lines): the agent's "
               "port keeps its configured framing",
               target, path);
    pty_update(t);
    return t;
}

static bool pty_kept(const struct serial_tty *t) { return t->kept; }

const struct serial_tty_backend serial_tty_pty = {
    .kind = "pty",
    .sees = 0,
    .open = pty_open,
    .write = pty_write,
    .resume = pty_resume,
    .line = pty_line,
    .outputs = pty_outputs,
    .inputs = pty_inputs,
    .close = pty_close,
    .kept = pty_kept,
};
