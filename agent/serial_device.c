/* The device side of a serial port: opening (and reopening) the tty or
 * printer, moving bytes between it and the client's buffers under uv_poll,
 * and noticing when it vanishes. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "serial_port.h"
#include "serial_tty.h"

/* Read and dropped while no client is connected: whatever a device says
 * then is stale by the time someone listens. */
#define DISCARD_CHUNK 4096

static void device_lost(struct serial_port *p, const char *why);

static bool is_printer(const struct serial_port *p)
{
    return p->cfg->kind == SERIAL_KIND_PRINTER;
}

static void on_poll_closed(uv_handle_t *handle)
{
    struct serial_port *p = handle->data;

    p->poll_closing = false;
    serial_bridge_release(p->bridge);
}

/* Reached from a failed open, a lost device and the printer's busy
 * retry: the timer's meaning follows whether the device is open. */
static void on_retry(uv_timer_t *timer)
{
    struct serial_port *p = timer->data;

    if (p->fd < 0)
        serial_device_open(p);
    else
        serial_device_write(p);
}

static void retry_open_later(struct serial_port *p)
{
    uv_timer_start(&p->retry_timer, on_retry, SERIAL_DEVICE_RETRY_MS,
                   SERIAL_DEVICE_RETRY_MS);
}

static void device_missing(struct serial_port *p, int err)
{
    if (err != p->open_error) {
        if (err == ENOENT)
            log_info("%s: %s is missing; waiting for it to appear", p->label,
                     p->cfg->device);
        else if (err == ENOTTY)
            log_warn("%s: %s is not a tty (kind = printer for a write-only "
                     "device); retrying every %d ms",
                     p->label, p->cfg->device, SERIAL_DEVICE_RETRY_MS);
        else
            log_warn("%s: cannot open %s: %s; retrying every %d ms", p->label,
                     p->cfg->device, strerror(err), SERIAL_DEVICE_RETRY_MS);
        p->open_error = err;
    }
    if (!uv_is_active((uv_handle_t *)&p->retry_timer))
        retry_open_later(p);
}

/* A fresh tty: the line and modem outputs as last wished for, and
 * nothing left over from before (stale input would reach the client as
 * if just received). */
static void device_configure(struct serial_port *p)
{
    char line[SERIAL_LINE_TEXT_MAX];
    int rc = serial_tty_set_line(p->fd, &p->line);

    if (rc < 0)
        log_warn("%s: cannot set %s on %s: %s", p->label,
                 serial_line_str(&p->line, line, sizeof(line)), p->cfg->device,
                 strerror(-rc));
    /* open() raised DTR and RTS; lower what the client had lowered. */
    if (!p->control.dtr)
        serial_tty_set_modem(p->fd, SERIAL_DTR, false);
    if (!p->control.rts)
        serial_tty_set_modem(p->fd, SERIAL_RTS, false);
    p->control.brk = false;
    p->modem_lines = serial_tty_get_modem(p->fd) >= 0;
    p->line_errors.valid = false; /* a new device counts from zero */
    serial_tty_flush(p->fd, SERIAL_FLUSH_INPUT);
}

static void on_poll(uv_poll_t *handle, int status, int events);

/* Tries the device's path: at start-up and then every
 * SERIAL_DEVICE_RETRY_MS while it is missing. */
void serial_device_open(struct serial_port *p)
{
    if (p->fd >= 0 || p->stopping)
        return;
    if (p->poll_closing) { /* the last fd's watcher is not gone yet */
        retry_open_later(p);
        return;
    }
    int fd = serial_tty_open(p->cfg->device, is_printer(p));
    if (fd < 0) {
        device_missing(p, -fd);
        return;
    }
    p->fd = fd;
    if (!is_printer(p))
        device_configure(p);
    int rc = uv_poll_init(p->loop, &p->poll, fd);
    if (rc == 0) {
        p->poll.data = p;
        p->poll_init = true;
        p->pollable = true;
        serial_bridge_hold(p->bridge);
    } else if (rc == UV_EPERM) {
        p->pollable = false; /* epoll refuses it (parport lp, a file) */
    } else {
        close(fd);
        p->fd = -1;
        device_missing(p, -rc);
        return;
    }
    p->poll_events = 0;
    p->open_error = 0;
    uv_timer_stop(&p->retry_timer);
    serial_port_device_back(p);
    serial_device_update(p);
}

/* Lets go of the fd: when the device vanished, and when the bridge stops
 * (flush_output: the unsent tail is dropped rather than waited for). */
void serial_device_close(struct serial_port *p, bool flush_output)
{
    if (p->fd < 0)
        return;
    uv_timer_stop(&p->retry_timer);
    uv_timer_stop(&p->break_timer);
    if (p->poll_init) {
        /* uv_close() takes the fd out of epoll at once, so closing it
         * right after is safe. */
        uv_close((uv_handle_t *)&p->poll, on_poll_closed);
        p->poll_init = false;
        p->poll_closing = true;
    }
    /* close() waits for unsent output (up to 30 s on a flow-controlled
     * UART): drop it when we are leaving anyway. */
    if (flush_output && !is_printer(p))
        serial_tty_flush(p->fd, SERIAL_FLUSH_OUTPUT);
    close(p->fd);
    p->fd = -1;
    p->poll_events = 0;
    p->modem_lines = false;
}

static void device_lost(struct serial_port *p, const char *why)
{
    serial_device_close(p, false);
    /* ENOENT is what the next attempts will see: already said. */
    p->open_error = ENOENT;
    retry_open_later(p);
    serial_port_device_lost(p, why);
}

/* read() or write() returned n: true if the device is still usable. A
 * read of 0 is a hung-up tty's end of file. */
static bool device_io_ok(struct serial_port *p, ssize_t n, const char *op)
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
    device_lost(p, why);
    return false;
}

/* Bytes the device can take now; the rest waits for POLLOUT. */
void serial_device_write(struct serial_port *p)
{
    struct serial_client *c = serial_port_client(p);
    struct serial_buf *b;

    if (!c || p->fd < 0)
        return;
    b = &c->to_tty;
    if (b->head < b->tail) {
        ssize_t n = write(p->fd, b->data + b->head, b->tail - b->head);
        if (!device_io_ok(p, n, "write"))
            return;
        if (n > 0)
            b->head += (size_t)n;
    }
    if (b->head == b->tail && c->undecoded == c->undecoded_end) {
        b->head = b->tail = 0;
        c->undecoded = c->undecoded_end = 0;
    }
    serial_net_update_read(c);
    serial_net_check_eof(c);
    serial_device_update(p);
}

static void discard_input(struct serial_port *p)
{
    uint8_t sink[DISCARD_CHUNK];
    ssize_t n = read(p->fd, sink, sizeof(sink));

    if (device_io_ok(p, n, "read") && n > 0)
        log_debug("%s: no client: %zd bytes from %s dropped", p->label, n,
                  p->cfg->device);
}

/* How much one read may bring into c's to_net buffer: its free room, and
 * the room that moving pending bytes down would give (not while a write
 * in flight points into it); in telnet modes half, as every byte may be
 * an IAC that doubles. */
static size_t read_size(const struct serial_port *p,
                        const struct serial_client *c)
{
    size_t room = SERIAL_BUF_SIZE - c->to_net.tail;

    if (!c->writing)
        room += c->to_net.head;
    return p->cfg->mode == SERIAL_MODE_RAW ? room : room / 2;
}

static void device_read(struct serial_port *p)
{
    struct serial_client *c = serial_port_client(p);
    struct serial_buf *b;

    if (!c) {
        discard_input(p);
        return;
    }
    b = &c->to_net;
    size_t want = read_size(p, c);
    if (want < SERIAL_TTY_READ_MIN)
        return;
    if (!c->writing && b->head > 0) {
        memmove(b->data, b->data + b->head, b->tail - b->head);
        b->tail -= b->head;
        b->head = 0;
    }
    ssize_t n = read(p->fd, b->data + b->tail, want);
    if (!device_io_ok(p, n, "read") || n <= 0)
        return;
    if (p->cfg->mode == SERIAL_MODE_RAW)
        b->tail += (size_t)n;
    else
        b->tail += telnet_escape_inplace(b->data + b->tail, (size_t)n);
    serial_net_touch(c);
    serial_net_flush(c);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct serial_port *p = handle->data;

    if (status < 0) {
        /* libuv reports POLLERR this way (and stops the handle) */
        device_lost(p, status == UV_EBADF ? "error condition"
                                          : uv_strerror(status));
        return;
    }
    if ((events & UV_PRIORITIZED) && serial_tty_hung_up(p->fd)) {
        device_lost(p, "hung up");
        return;
    }
    if (events & UV_WRITABLE)
        serial_device_write(p);
    if (p->fd >= 0 && (events & UV_READABLE))
        device_read(p);
    if (p->fd >= 0)
        serial_device_update(p);
}

/* Watches for what the device side can do now: read when there is room
 * (or no client), write when data waits, and always hang-ups (epoll
 * reports them with any event set; POLLPRI keeps the watcher armed while
 * backpressure stops reading). Called after every change of the buffers. */
void serial_device_update(struct serial_port *p)
{
    struct serial_client *c = serial_port_client(p);
    bool want_write = c && c->to_tty.head < c->to_tty.tail;
    int events = UV_PRIORITIZED;

    if (p->fd < 0)
        return;
    if (!p->pollable) {
        if (want_write && !uv_is_active((uv_handle_t *)&p->retry_timer))
            uv_timer_start(&p->retry_timer, on_retry, SERIAL_PRINTER_RETRY_MS,
                           0);
        return;
    }
    if (!is_printer(p) && (!c || read_size(p, c) >= SERIAL_TTY_READ_MIN))
        events |= UV_READABLE;
    if (want_write)
        events |= UV_WRITABLE;
    if (events != p->poll_events) {
        uv_poll_start(&p->poll, events, on_poll);
        p->poll_events = events;
    }
}

void serial_device_init(struct serial_port *p)
{
    p->fd = -1;
    uv_timer_init(p->loop, &p->retry_timer);
    p->retry_timer.data = p;
    serial_bridge_hold(p->bridge);
}
