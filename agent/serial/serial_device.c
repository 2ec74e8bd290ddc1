/* SPDX-License-Identifier: MIT */
/* The device side of a serial port: opening (and reopening) the tty or
 * printer, moving bytes between it and buffers its port lends it, and
 * noticing when it vanishes. */
#include "serial_device.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "serial_tty.h"

/* How often a missing device's path is tried: an unplug-replug takes a
 * human a second, udev a few hundred milliseconds. */
#define DEVICE_RETRY_MS 500
/* A printer whose driver cannot be polled (parport lp) is retried this
 * often while it is busy. */
#define PRINTER_RETRY_MS 20
/* Reading the device is not worth a system call for less room than this. */
#define TTY_READ_MIN 256
/* Read and dropped while nobody listens: whatever a device says then is
 * stale by the time someone does. */
#define DISCARD_CHUNK 4096

struct serial_device {
    uv_loop_t *loop;
    const struct serial_port_config *cfg;
    const char *label; /* the port's "[serial.NAME] DEV <-> ADDR" */
    const struct serial_device_ops *ops;
    void *ctx;
    int fd;        /* -1 while missing */
    bool pollable; /* fd works with epoll (else: timer-driven writes) */
    uv_poll_t poll;
    bool poll_init, poll_closing, freeing;
    int poll_events;
    int open_error;   /* last open() errno, logged once */
    bool modem_lines; /* TIOCMGET works */
    uv_timer_t retry; /* reopen while missing; busy printer */
    int handles;      /* open handles, for the free */
    void (*on_freed)(void *arg);
    void *freed_arg;
};

static void on_poll(uv_poll_t *handle, int status, int events);

static bool is_printer(const struct serial_device *d)
{
    return d->cfg->kind == SERIAL_KIND_PRINTER;
}

int serial_device_fd(const struct serial_device *d) { return d->fd; }

bool serial_device_has_modem_lines(const struct serial_device *d)
{
    return d->fd >= 0 && d->modem_lines;
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct serial_device *d = handle->data;

    if (handle == (uv_handle_t *)&d->poll)
        d->poll_closing = false;
    if (--d->handles > 0 || !d->freeing)
        return;
    d->on_freed(d->freed_arg);
    free(d);
}

/* Reached from a failed open, a lost device and the printer's busy retry:
 * the timer's meaning follows whether the device is open. */
static void on_retry(uv_timer_t *timer)
{
    struct serial_device *d = timer->data;

    if (d->fd < 0)
        serial_device_open(d);
    else
        serial_device_write(d);
}

static void retry_open_later(struct serial_device *d)
{
    uv_timer_start(&d->retry, on_retry, DEVICE_RETRY_MS, DEVICE_RETRY_MS);
}

static void device_missing(struct serial_device *d, int err)
{
    if (err != d->open_error) {
        if (err == ENOENT)
            log_info("%s: %s is missing; waiting for it to appear", d->label,
                     d->cfg->device);
        else if (err == ENOTTY)
            log_warn("%s: %s is not a tty (kind = printer for a write-only "
                     "device); retrying every %d ms",
                     d->label, d->cfg->device, DEVICE_RETRY_MS);
        else
            log_warn("%s: cannot open %s: %s; retrying every %d ms", d->label,
                     d->cfg->device, strerror(err), DEVICE_RETRY_MS);
        d->open_error = err;
    }
    if (!uv_is_active((uv_handle_t *)&d->retry))
        retry_open_later(d);
}

/* Watches the fd with epoll if it can (not parport lp, not a file). */
static int device_watch(struct serial_device *d)
{
    int rc = uv_poll_init(d->loop, &d->poll, d->fd);

    if (rc == 0) {
        d->poll.data = d;
        d->poll_init = true;
        d->pollable = true;
        d->handles++;
        return 0;
    }
    if (rc == UV_EPERM) {
        d->pollable = false;
        return 0;
    }
    return rc;
}

void serial_device_open(struct serial_device *d)
{
    if (d->fd >= 0 || d->freeing)
        return;
    if (d->poll_closing) { /* the last fd's watcher is not gone yet */
        retry_open_later(d);
        return;
    }
    int fd = serial_tty_open(d->cfg->device, is_printer(d));
    if (fd < 0) {
        device_missing(d, -fd);
        return;
    }
    d->fd = fd;
    int rc = device_watch(d);
    if (rc < 0) {
        close(fd);
        d->fd = -1;
        device_missing(d, -rc);
        return;
    }
    d->modem_lines = !is_printer(d) && serial_tty_get_modem(fd) >= 0;
    d->poll_events = 0;
    d->open_error = 0;
    uv_timer_stop(&d->retry);
    d->ops->on_open(d->ctx, fd);
    serial_device_update(d);
}

/* Lets go of the fd: when the device vanished, and when the port stops
 * (flush_output: the unsent tail is dropped rather than waited for). */
static void device_close(struct serial_device *d, bool flush_output)
{
    if (d->fd < 0)
        return;
    uv_timer_stop(&d->retry);
    if (d->poll_init) {
        /* uv_close() takes the fd out of epoll at once, so closing it
         * right after is safe. */
        uv_close((uv_handle_t *)&d->poll, on_handle_closed);
        d->poll_init = false;
        d->poll_closing = true;
    }
    /* close() waits for unsent output (up to 30 s on a flow-controlled
     * UART): drop it when we are leaving anyway. */
    if (flush_output && !is_printer(d))
        serial_tty_flush(d->fd, SERIAL_FLUSH_OUTPUT);
    if (!is_printer(d))
        serial_tty_release(d->fd);
    close(d->fd);
    d->fd = -1;
    d->poll_events = 0;
    d->modem_lines = false;
}

static void device_lost(struct serial_device *d, const char *why)
{
    device_close(d, false);
    /* ENOENT is what the next attempts will see: already said. */
    d->open_error = ENOENT;
    retry_open_later(d);
    d->ops->on_lost(d->ctx, why);
}

/* read() or write() returned n: true if the device is still usable. A
 * read of 0 is a hung-up tty's end of file. */
static bool device_io_ok(struct serial_device *d, ssize_t n, const char *op)
{
    char why[128];
    bool eof = n == 0 && op[0] == 'r';

    if (n > 0 || (n == 0 && !eof) ||
        (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return true;
    if (eof)
        snprintf(why, sizeof(why), "%s: hung up", op);
    else
        snprintf(why, sizeof(why), "%s: %s", op, strerror(errno));
    device_lost(d, why);
    return false;
}

void serial_device_write(struct serial_device *d)
{
    const uint8_t *data = NULL;
    size_t len = 0;

    if (d->fd < 0)
        return;
    d->ops->write_data(d->ctx, &data, &len);
    if (len) {
        ssize_t n = write(d->fd, data, len);
        if (!device_io_ok(d, n, "write"))
            return;
        if (n > 0)
            d->ops->write_done(d->ctx, (size_t)n);
    }
    serial_device_update(d);
}

static void device_read(struct serial_device *d)
{
    uint8_t sink[DISCARD_CHUNK];
    uint8_t *buf = NULL;
    size_t room = 0;

    d->ops->read_room(d->ctx, &buf, &room);
    if (!buf) { /* nobody listens */
        ssize_t n = read(d->fd, sink, sizeof(sink));
        if (device_io_ok(d, n, "read") && n > 0)
            log_debug("%s: no client: %zd bytes from %s dropped", d->label, n,
                      d->cfg->device);
        return;
    }
    if (room < TTY_READ_MIN)
        return;
    ssize_t n = read(d->fd, buf, room);
    if (device_io_ok(d, n, "read") && n > 0)
        d->ops->read_done(d->ctx, buf, (size_t)n);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct serial_device *d = handle->data;

    if (status < 0) {
        /* libuv reports POLLERR this way (and stops the handle) */
        device_lost(d, status == UV_EBADF ? "error condition"
                                          : uv_strerror(status));
        return;
    }
    if ((events & UV_PRIORITIZED) && serial_tty_hung_up(d->fd)) {
        device_lost(d, "hung up");
        return;
    }
    if (events & UV_WRITABLE)
        serial_device_write(d);
    if (d->fd >= 0 && (events & UV_READABLE))
        device_read(d);
    if (d->fd >= 0)
        serial_device_update(d);
}

/* Watches for what the device side can do now: read when there is room
 * (or nobody listens), write when data waits, and always hang-ups (epoll
 * reports them with any event set; POLLPRI keeps the watcher armed while
 * backpressure stops reading). */
void serial_device_update(struct serial_device *d)
{
    const uint8_t *data = NULL;
    uint8_t *buf = NULL;
    size_t pending = 0, room = 0;
    int events = UV_PRIORITIZED;

    if (d->fd < 0)
        return;
    d->ops->write_data(d->ctx, &data, &pending);
    if (!d->pollable) {
        if (pending && !uv_is_active((uv_handle_t *)&d->retry))
            uv_timer_start(&d->retry, on_retry, PRINTER_RETRY_MS, 0);
        return;
    }
    if (!is_printer(d)) {
        d->ops->read_room(d->ctx, &buf, &room);
        if (!buf || room >= TTY_READ_MIN)
            events |= UV_READABLE;
    }
    if (pending)
        events |= UV_WRITABLE;
    if (events != d->poll_events) {
        uv_poll_start(&d->poll, events, on_poll);
        d->poll_events = events;
    }
}

void serial_device_rebind(struct serial_device *d,
                          const struct serial_port_config *cfg)
{
    d->cfg = cfg;
}

struct serial_device *serial_device_new(uv_loop_t *loop,
                                        const struct serial_port_config *cfg,
                                        const char *label,
                                        const struct serial_device_ops *ops,
                                        void *ctx)
{
    struct serial_device *d = calloc(1, sizeof(*d));

    if (!d)
        return NULL;
    d->loop = loop;
    d->cfg = cfg;
    d->label = label;
    d->ops = ops;
    d->ctx = ctx;
    d->fd = -1;
    uv_timer_init(loop, &d->retry);
    d->retry.data = d;
    d->handles = 1;
    return d;
}

void serial_device_free(struct serial_device *d, bool flush_output,
                        void (*on_freed)(void *arg), void *arg)
{
    d->freeing = true;
    d->on_freed = on_freed;
    d->freed_arg = arg;
    device_close(d, flush_output);
    uv_close((uv_handle_t *)&d->retry, on_handle_closed);
}
