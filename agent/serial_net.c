/* The network side of a serial port: the listening socket or the dialer,
 * and each client's connection: reading into its buffer for the device,
 * sending what the device said, closing gracefully. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net_tcp.h"
#include "serial_port.h"

#define LISTEN_BACKLOG 8 /* one client at a time; a few racing is plenty */
/* A client behind a dead network is noticed within ~25 s, and one that
 * stopped acknowledging within 30 s: serial clients reconnect and replace
 * their stale session (replace_client). */
static const struct net_tcp_keepalive serial_keepalive = {
    .idle_s = 10,
    .interval_s = 5,
    .count = 3,
    .user_timeout_ms = 30000,
};

static void client_release(struct serial_client *c)
{
    if (--c->pending > 0)
        return;
    struct serial_bridge *b = c->bridge;
    free(c);
    serial_bridge_release(b);
}

static void on_client_handle_closed(uv_handle_t *handle)
{
    client_release(handle->data);
}

static void client_close_handles(struct serial_client *c)
{
    uv_timer_stop(&c->timer);
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->stall_timer))
        uv_close((uv_handle_t *)&c->stall_timer, on_client_handle_closed);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_client_handle_closed);
}

static struct serial_client *client_new(struct serial_port *p)
{
    struct serial_client *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    c->bridge = p->bridge;
    c->loop = p->loop;
    uv_timer_init(p->loop, &c->timer);
    uv_timer_init(p->loop, &c->stall_timer);
    uv_tcp_init(p->loop, &c->tcp);
    c->timer.data = c;
    c->stall_timer.data = c;
    c->tcp.data = c;
    c->write_req.data = c;
    c->shutdown_req.data = c;
    c->resolve_req.data = c;
    c->connect_req.data = c;
    c->pending = 3; /* the three handles */
    c->to_tty.data = c->to_tty_mem;
    c->to_net.data = c->to_net_mem;
    telnet_decoder_init(&c->decoder);
    serial_bridge_hold(p->bridge);
    return c;
}

/* No Nagle (1-byte round trips), keepalive and a user timeout (a dead
 * peer must not hold the port forever). */
static void client_tune_socket(struct serial_client *c)
{
    net_tcp_tune(&c->tcp, &serial_keepalive);
}

static void client_name_from_peer(struct serial_client *c)
{
    net_tcp_peer_name(&c->tcp, c->name, sizeof(c->name));
}

/* ---- sending: telnet answers first, then the device's data ---- */

static unsigned pending_bufs(struct serial_client *c, uv_buf_t bufs[2])
{
    unsigned n = 0;

    if (c->ctl_len)
        bufs[n++] = uv_buf_init((char *)c->ctl, (unsigned)c->ctl_len);
    if (serial_buf_len(&c->to_net))
        bufs[n++] = uv_buf_init((char *)c->to_net.data + c->to_net.head,
                                (unsigned)serial_buf_len(&c->to_net));
    return n;
}

/* ctl answer bytes and data bytes left the buffers */
static void consume(struct serial_client *c, size_t ctl, size_t data)
{
    if (ctl) {
        memmove(c->ctl, c->ctl + ctl, c->ctl_len - ctl);
        c->ctl_len -= ctl;
    }
    c->to_net.head += data;
    c->bytes_out += data;
    if (c->to_net.head == c->to_net.tail && !c->writing)
        c->to_net.head = c->to_net.tail = 0;
}

static void on_written(uv_write_t *req, int status);

/* Puts everything pending in flight: answers queued later must not be
 * mistaken for part of this write, hence the two counts. */
static int client_write(struct serial_client *c, uv_buf_t *bufs, unsigned n)
{
    int rc =
        uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, n, on_written);
    if (rc == 0) {
        c->writing = true;
        c->writing_ctl = c->ctl_len;
        c->writing_data = serial_buf_len(&c->to_net);
    }
    return rc;
}

static void client_failed(struct serial_client *c, int status)
{
    serial_port_client_gone(c->port, uv_strerror(status), false);
}

/* Sends what is pending: at once if the socket takes it (the common,
 * low-latency case costs one writev and no callback), else one uv_write
 * in flight, whose completion sends what piled up meanwhile. Reached from
 * the device side, the telnet session and write completions. */
void serial_net_flush(struct serial_client *c)
{
    uv_buf_t bufs[2];
    unsigned n;

    if (c->phase != CLIENT_OPEN || c->writing || c->suspended)
        return;
    n = pending_bufs(c, bufs);
    if (n == 0)
        return;
    int rc = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    if (rc < 0 && rc != UV_EAGAIN) {
        client_failed(c, rc);
        return;
    }
    if (rc > 0) {
        size_t ctl = (size_t)rc < c->ctl_len ? (size_t)rc : c->ctl_len;
        consume(c, ctl, (size_t)rc - ctl);
        serial_net_touch(c);
    }
    n = pending_bufs(c, bufs);
    if (n && (rc = client_write(c, bufs, n)) < 0) {
        client_failed(c, rc);
        return;
    }
    serial_device_update(c->port);
}

/* ---- closing ---- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    client_close_handles(req->data);
}

/* CLOSING: hand over what is left, then shut down (bounded by the
 * timer). */
static void client_drain(struct serial_client *c)
{
    uv_buf_t bufs[2];
    unsigned n;

    if (c->writing)
        return; /* on_written comes back here */
    n = pending_bufs(c, bufs);
    if (n && client_write(c, bufs, n) == 0)
        return;
    if (n ||
        uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
        client_close_handles(c);
}

static void on_close_deadline(uv_timer_t *timer)
{
    client_close_handles(timer->data); /* the peer does not take our data */
}

/* Ends the connection; the caller has already let go of it (the port no
 * longer points here). graceful: pending data goes out first, for at most
 * SERIAL_CLOSE_FLUSH_MS. Reached from the port's policy, failed dials and
 * stop. */
void serial_net_close(struct serial_client *c, bool graceful)
{
    bool was_open = c->phase == CLIENT_OPEN;

    if (c->phase == CLIENT_CLOSING)
        return;
    c->phase = CLIENT_CLOSING;
    c->port = NULL;
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->resolve_req);
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    uv_timer_stop(&c->timer);
    if (!graceful || !was_open) {
        client_close_handles(c);
        return;
    }
    uv_timer_start(&c->timer, on_close_deadline, SERIAL_CLOSE_FLUSH_MS, 0);
    client_drain(c);
}

/* ---- receiving ---- */

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static size_t to_tty_room(const struct serial_client *c)
{
    return SERIAL_BUF_SIZE - serial_buf_len(&c->to_tty);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct serial_client *c = handle->data;
    struct serial_buf *b = &c->to_tty;
    (void)suggested;

    if (c->undecoded != c->undecoded_end) {
        *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
        return;
    }
    if (b->head == b->tail) {
        b->head = b->tail = 0;
    } else if (SERIAL_BUF_SIZE - b->tail < SERIAL_NET_READ_MIN) {
        memmove(b->data, b->data + b->head, serial_buf_len(b));
        b->tail -= b->head;
        b->head = 0;
    }
    c->undecoded = c->undecoded_end = b->tail;
    *buf = uv_buf_init((char *)b->data + b->tail,
                       (unsigned)(SERIAL_BUF_SIZE - b->tail));
}

/* A reset peer shows as POLLERR/POLLHUP; one that only finished sending
 * (POLLRDHUP) still gets what the device says. */
static void on_stall_check(uv_timer_t *timer)
{
    struct serial_client *c = timer->data;
    struct pollfd pfd = {.events = 0};
    int err = 0;
    socklen_t len = sizeof(err);

    if (c->phase != CLIENT_OPEN ||
        uv_fileno((uv_handle_t *)&c->tcp, &pfd.fd) < 0)
        return;
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & (POLLERR | POLLHUP)))
        return;
    getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    client_failed(c, err ? -err : UV_ECONNRESET);
}

/* Reading stops while the device has a buffer's worth to take, or the
 * telnet decoder waits for room for its answers; meanwhile the socket's
 * health is checked on a timer. */
void serial_net_update_read(struct serial_client *c)
{
    bool open = c->phase == CLIENT_OPEN && !c->eof;
    bool want = open && c->undecoded == c->undecoded_end &&
                to_tty_room(c) >= SERIAL_NET_READ_MIN;

    if (want != c->reading) {
        if (want)
            want =
                uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0;
        else
            uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = want;
    }
    if (open && !want)
        uv_timer_start(&c->stall_timer, on_stall_check, SERIAL_STALL_CHECK_MS,
                       SERIAL_STALL_CHECK_MS);
    else
        uv_timer_stop(&c->stall_timer);
}

/* The peer finished sending: the session ends once the device took all
 * of it (a print job must not lose its tail). */
void serial_net_check_eof(struct serial_client *c)
{
    if (c->phase == CLIENT_OPEN && c->eof && c->to_tty.head == c->to_tty.tail &&
        c->undecoded == c->undecoded_end)
        serial_port_client_gone(c->port, "closed by peer", true);
}

/* Decodes the client's telnet input and sends the answers, until all is
 * decoded, or a write in flight will call back here once the answers
 * made room (the socket took everything: decode on at once). */
static void pump_input(struct serial_client *c)
{
    do {
        serial_telnet_input(c);
        if (c->phase != CLIENT_OPEN)
            return;
        serial_net_flush(c);
        if (c->phase != CLIENT_OPEN)
            return;
    } while (c->undecoded != c->undecoded_end && !c->writing);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct serial_client *c = stream->data;
    struct serial_port *p = c->port;
    (void)buf;

    if (c->phase != CLIENT_OPEN || nread == 0)
        return;
    if (nread == UV_ENOBUFS) {
        serial_net_update_read(c);
        return;
    }
    if (nread == UV_EOF) {
        c->eof = true;
        serial_net_update_read(c);
        serial_net_check_eof(c);
        return;
    }
    if (nread < 0) {
        client_failed(c, (int)nread);
        return;
    }
    c->bytes_in += (size_t)nread;
    serial_net_touch(c);
    if (p->cfg->mode == SERIAL_MODE_RAW) {
        c->to_tty.tail += (size_t)nread;
    } else {
        c->undecoded_end = c->undecoded + (size_t)nread;
        pump_input(c);
        if (c->phase != CLIENT_OPEN)
            return;
    }
    serial_device_write(p);
    if (c->phase == CLIENT_OPEN)
        serial_net_update_read(c);
}

static void on_written(uv_write_t *req, int status)
{
    struct serial_client *c = req->data;
    struct serial_port *p = c->port;

    c->writing = false;
    if (c->phase == CLIENT_CLOSING) {
        if (status < 0)
            client_close_handles(c);
        else {
            consume(c, c->writing_ctl, c->writing_data);
            client_drain(c);
        }
        return;
    }
    if (status < 0) {
        client_failed(c, status);
        return;
    }
    consume(c, c->writing_ctl, c->writing_data);
    serial_net_touch(c);
    if (c->undecoded != c->undecoded_end) { /* it waited for answer room */
        pump_input(c);
        if (c->phase != CLIENT_OPEN)
            return;
        serial_device_write(p);
        if (c->phase != CLIENT_OPEN)
            return;
        serial_net_update_read(c);
    }
    serial_net_flush(c);
    if (c->phase != CLIENT_OPEN)
        return;
    /* the device may be read again: the buffer has room */
    serial_device_update(p);
    serial_net_check_eof(c);
}

static void on_idle_check(uv_timer_t *timer)
{
    struct serial_client *c = timer->data;
    uint64_t limit = (uint64_t)c->port->cfg->idle_timeout_s * 1000;
    uint64_t quiet = uv_now(c->loop) - c->active_ms;
    char why[64];

    if (quiet < limit) {
        uv_timer_start(&c->timer, on_idle_check, limit - quiet, 0);
        return;
    }
    snprintf(why, sizeof(why), "idle for %u s", c->port->cfg->idle_timeout_s);
    serial_port_client_gone(c->port, why, true);
}

void serial_net_touch(struct serial_client *c)
{
    c->active_ms = uv_now(c->loop);
}

/* The port took the client: start moving bytes. */
void serial_net_start(struct serial_client *c, uint32_t idle_timeout_s)
{
    c->phase = CLIENT_OPEN;
    c->since_ms = c->active_ms = uv_now(c->loop);
    uv_timer_stop(&c->timer);
    if (idle_timeout_s)
        uv_timer_start(&c->timer, on_idle_check,
                       (uint64_t)idle_timeout_s * 1000, 0);
    serial_net_update_read(c);
}

bool serial_net_queue_ctl(struct serial_client *c, const uint8_t *bytes,
                          size_t len)
{
    if (len > SERIAL_CTL_SIZE - c->ctl_len)
        return false;
    memcpy(c->ctl + c->ctl_len, bytes, len);
    c->ctl_len += len;
    return true;
}

/* PURGE-DATA: drop what the device said that was not sent yet (what is
 * in flight is the kernel's by now). */
void serial_net_purge_output(struct serial_client *c)
{
    struct serial_buf *b = &c->to_net;

    b->tail = b->head + (c->writing ? c->writing_data : 0);
}

/* ---- listen mode ---- */

/* Binds and listens before any libuv handle exists, so a port that is
 * already taken fails the start-up with nothing to undo. Returns the
 * socket or -1 after logging. */
int serial_net_bind(const struct serial_port_config *cfg, const char *label)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port[8];
    int one = 1, fd, rc;

    snprintf(port, sizeof(port), "%u", cfg->addr.port);
    rc = getaddrinfo(cfg->addr.host, port, &hints, &res);
    if (rc != 0) {
        log_err("%s: cannot resolve %s: %s", label, cfg->addr.host,
                gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
            listen(fd, LISTEN_BACKLOG) < 0) {
            rc = errno;
            close(fd);
            fd = -1;
            errno = rc;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        log_err("%s: cannot listen: %s", label, strerror(errno));
    return fd;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct serial_port *p = server->data;
    struct serial_client *c;

    if (status < 0) {
        log_warn("%s: accepting failed: %s", p->label, uv_strerror(status));
        return;
    }
    c = client_new(p);
    if (!c) {
        log_err("%s: out of memory for a client", p->label);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        serial_net_close(c, false);
        return;
    }
    client_tune_socket(c);
    client_name_from_peer(c);
    serial_port_client_ready(p, c);
}

/* Adopts the socket serial_net_bind() made. */
int serial_net_listen(struct serial_port *p, int fd)
{
    int rc;

    uv_tcp_init(p->loop, &p->listener);
    p->listener.data = p;
    p->listener_init = true;
    serial_bridge_hold(p->bridge);
    rc = uv_tcp_open(&p->listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&p->listener, LISTEN_BACKLOG,
                       on_connection);
    if (rc < 0) {
        log_err("%s: cannot listen: %s", p->label, uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- connect mode ---- */

static void dial_failed(struct serial_client *c, const char *why)
{
    struct serial_port *p = c->port;

    p->dialing = NULL;
    serial_net_close(c, false);
    serial_port_dial_failed(p, why);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct serial_client *c = req->data;
    struct serial_port *p = c->port;

    if (c->phase != CLIENT_CONNECTING)
        return; /* closed meanwhile */
    if (status < 0) {
        dial_failed(c, uv_strerror(status));
        return;
    }
    uv_timer_stop(&c->timer);
    client_tune_socket(c);
    p->dialing = NULL;
    serial_port_client_ready(p, c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct serial_client *c = req->data;

    c->resolving = false;
    if (c->phase == CLIENT_CONNECTING) {
        if (status == 0)
            status = uv_tcp_connect(&c->connect_req, &c->tcp, res->ai_addr,
                                    on_connected);
        if (status < 0)
            dial_failed(c, uv_strerror(status));
    }
    uv_freeaddrinfo(res);
    client_release(c);
}

static void on_connect_timeout(uv_timer_t *timer)
{
    dial_failed(timer->data, "timed out");
}

/* One attempt; the outcome reaches serial_port_client_ready() or
 * serial_port_dial_failed(). */
void serial_net_dial(struct serial_port *p)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP};
    struct serial_client *c;
    char port[8];

    if (p->dialing || p->client || p->stopping)
        return;
    c = client_new(p);
    if (!c) {
        serial_port_dial_failed(p, "out of memory");
        return;
    }
    c->phase = CLIENT_CONNECTING;
    c->port = p;
    p->dialing = c;
    hostport_str(&p->cfg->addr, c->name, sizeof(c->name));
    snprintf(port, sizeof(port), "%u", p->cfg->addr.port);
    int rc = uv_getaddrinfo(p->loop, &c->resolve_req, on_resolved,
                            p->cfg->addr.host, port, &hints);
    if (rc < 0) {
        dial_failed(c, uv_strerror(rc));
        return;
    }
    c->resolving = true;
    c->pending++;
    uv_timer_start(&c->timer, on_connect_timeout, SERIAL_CONNECT_TIMEOUT_MS, 0);
}
