/* SPDX-License-Identifier: MIT */
/* One byte stream (TCP or unix socket), the only kind of connection the agent
 * and the relay use: its lifetime, accepting, reading (with a liveness check
 * while paused) and the graceful close. Dialing and writing have files of
 * their own (net_conn_dial.c, net_conn_write.c). */
#include "net_conn_int.h"

#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_tcp.h"

#define DEFAULT_LINGER_MS 1000 /* a peer that takes neither data nor a FIN */
/* While reading is stopped and nothing is written, libuv watches nothing
 * on the socket: a reset would go unnoticed without this check. */
#define STALL_CHECK_MS 1000

static uint8_t shared_read_buf[NET_CONN_READ_BUF];
/* Connections closed gracefully and waiting, until they are freed: at
 * exit they are ended (net_conn_end_lingering). */
static struct list_node lingering = {&lingering, &lingering};

static void conn_stall_check_update(struct net_conn *c);

uint8_t *net__read_buf(void) { return shared_read_buf; }

/* ---- lifetime ---- */

void net__free(struct net_conn *c)
{
    list_remove(&c->lingering);
    net__tls_free(c);
    free(c);
}

/* The owner hears on_closed once nothing of its is referenced any more:
 * no batch waits and no write is in flight. */
void net__tell_closed(struct net_conn *c)
{
    if (c->closed_told || c->phase != PHASE_CLOSING || c->writes || c->batch)
        return;
    c->closed_told = true;
    if (c->ops && c->ops->on_closed)
        c->ops->on_closed(c->owner, c);
    c->ops = NULL;
}

static void on_handle_closed(uv_handle_t *handle)
{
    struct net_conn *c = handle->data;

    if (--c->handles_open > 0 || c->resolving)
        return;
    net__tell_closed(c);
    net__free(c);
}

void net__close_handles(struct net_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->timer)) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    }
    if (c->stream_init && !uv_is_closing(&c->u.handle))
        uv_close(&c->u.handle, on_handle_closed);
}

struct net_conn *net__new(uv_loop_t *loop)
{
    struct net_conn *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 1;
    c->high_water = SIZE_MAX;
    c->low_water = SIZE_MAX;
    c->linger_ms = DEFAULT_LINGER_MS;
    c->keepalive = &net_tcp_ride_out_outages;
    c->kind = &net__socket_kind;
    list_init(&c->lingering);
    return c;
}

int net__init_stream(struct net_conn *c, uv_loop_t *loop, bool is_unix)
{
    int rc = is_unix ? uv_pipe_init(loop, &c->u.pipe, 0)
                     : uv_tcp_init(loop, &c->u.tcp);
    if (rc < 0)
        return rc;
    c->u.handle.data = c;
    c->stream_init = true;
    c->handles_open++;
    return 0;
}

/* No Nagle (request/response protocols) and the outage bounds. */
void net__tune(struct net_conn *c)
{
    if (c->stream_init && c->u.handle.type == UV_TCP) {
        net_tcp_tune(&c->u.tcp, c->keepalive);
        if (c->unsent_limit)
            net_tcp_unsent_limit(&c->u.tcp, c->unsent_limit);
    }
}

void net_conn_set_unsent_limit(struct net_conn *c, int bytes)
{
    c->unsent_limit = bytes;
    net__tune(c);
}

void net_conn_set_owner(struct net_conn *c, const struct net_conn_ops *ops,
                        void *owner)
{
    c->ops = ops;
    c->owner = owner;
}

void net_conn_set_keepalive(struct net_conn *c,
                            const struct net_tcp_keepalive *ka)
{
    c->keepalive = ka;
    if (c->phase == PHASE_OPEN)
        net__tune(c);
}

void net_conn_set_linger(struct net_conn *c, uint32_t ms) { c->linger_ms = ms; }

const char *net_conn_name(const struct net_conn *c) { return c->name; }

int net_conn_peer_addr(const struct net_conn *c, struct sockaddr_storage *ss)
{
    int len = sizeof(*ss);

    memset(ss, 0, sizeof(*ss));
    if (!c->stream_init || c->u.handle.type != UV_TCP)
        return UV_ENOTSUP;
    return uv_tcp_getpeername(&c->u.tcp, (struct sockaddr *)ss, &len);
}

/* The socket's descriptor, for getsockopt (SO_PEERCRED on a unix
 * socket); -1 if there is none yet. */
int net_conn_fileno(const struct net_conn *c)
{
    uv_os_fd_t fd;

    if (!c->stream_init || uv_fileno(&c->u.handle, &fd) < 0)
        return -1;
    return fd;
}

/* ---- failure ---- */

/* The stream ended or failed: the owner hears of it once, unless it has
 * closed the connection already. After an end of stream writes still go
 * out (a half-closed peer). */
void net__report_gone(struct net_conn *c, int status)
{
    if (status == UV_EOF)
        c->eof = true;
    else
        c->failed = true;
    if (c->gone || c->phase != PHASE_OPEN)
        return;
    c->gone = true;
    c->reading = false;
    c->kind->stop_delivery(c);
    c->kind->watch_stall(c);
    if (c->ops && c->ops->on_gone)
        c->ops->on_gone(c->owner, c, status);
}

static void on_write_failed(uv_timer_t *timer)
{
    struct net_conn *c = timer->data;
    net__report_gone(c, c->write_error);
}

/* A batch that could not even be submitted: the owner hears of it from
 * the loop, not from inside its own call to queue or flush. */
void net__fail_later(struct net_conn *c, int status)
{
    if (c->write_error || c->phase != PHASE_OPEN)
        return;
    c->write_error = status;
    uv_timer_start(&c->timer, on_write_failed, 0, 0);
}

struct net_conn *net_conn_accept(uv_stream_t *listener)
{
    bool is_unix = listener->type == UV_NAMED_PIPE;
    struct net_conn *c = net__new(listener->loop);

    if (!c)
        return NULL;
    if (net__init_stream(c, listener->loop, is_unix) < 0 ||
        uv_accept(listener, &c->u.stream) < 0) {
        c->phase = PHASE_CLOSING;
        net__close_handles(c);
        return NULL;
    }
    c->phase = PHASE_OPEN;
    net__tune(c);
    if (is_unix)
        snprintf(c->name, sizeof(c->name), "unix peer");
    else
        net_tcp_peer_name(&c->u.tcp, c->name, sizeof(c->name));
    return c;
}

struct net_conn *net_conn_adopt(uv_loop_t *loop, int fd, const char *name)
{
    struct net_conn *c = net__new(loop);

    if (!c)
        return NULL;
    if (net__init_stream(c, loop, true) < 0 ||
        uv_pipe_open(&c->u.pipe, fd) < 0) {
        close(fd);
        c->phase = PHASE_CLOSING;
        net__close_handles(c);
        return NULL;
    }
    c->phase = PHASE_OPEN;
    snprintf(c->name, sizeof(c->name), "%s", name);
    return c;
}

/* ---- connected ---- */

void net__connected(struct net_conn *c, int status)
{
    uv_timer_stop(&c->timer);
    if (status == 0) {
        c->phase = PHASE_OPEN;
        net__tune(c);
        if (c->tls && !c->reading) /* the handshake read; the owner may not */
            net__read_raw(c, false);
    } else {
        c->gone = c->failed = true; /* a failed dial reports nothing more */
    }
    if (c->tls)
        net__tls_release_held(c, status == 0);
    if (c->ops && c->ops->on_connected)
        c->ops->on_connected(c->owner, c, status);
    if (status == 0 && c->tls && c->reading && c->phase == PHASE_OPEN)
        net__tls_kick(c); /* application data that came with the handshake */
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct net_conn *c = handle->data;
    (void)suggested;

    /* with TLS what arrives is ciphertext: the owner's buffer takes the
     * decrypted bytes (net_conn_tls.c) */
    if (c->phase == PHASE_OPEN && !c->tls && c->ops && c->ops->on_alloc)
        c->ops->on_alloc(c->owner, c, buf);
    else
        *buf = uv_buf_init((char *)shared_read_buf, sizeof(shared_read_buf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct net_conn *c = stream->data;

    if (nread == 0)
        return;
    if (c->phase == PHASE_CLOSING) { /* lingering: discard, close at FIN */
        if (nread < 0)
            net__close_handles(c);
        return;
    }
    if (nread == UV_ENOBUFS) { /* the owner has no room now */
        uv_read_stop(stream);
        c->reading = false;
        conn_stall_check_update(c);
        return;
    }
    if (nread < 0 && c->phase == PHASE_HANDSHAKE) {
        net__tls_lost(c, (int)nread);
        return;
    }
    if (nread < 0) {
        net__report_gone(c, (int)nread);
        return;
    }
    if (c->tls)
        net__tls_input(c, (const uint8_t *)buf->base, (size_t)nread);
    else if (c->ops && c->ops->on_data)
        c->ops->on_data(c->owner, c, (const uint8_t *)buf->base, (size_t)nread);
}

void net__read_raw(struct net_conn *c, bool on)
{
    if (on)
        uv_read_start(&c->u.stream, on_alloc, on_read);
    else
        uv_read_stop(&c->u.stream);
}

void net_conn_read_start(struct net_conn *c) { c->kind->read(c, true); }

void net_conn_read_stop(struct net_conn *c) { c->kind->read(c, false); }

static void socket_read_start(struct net_conn *c)
{
    if (c->phase == PHASE_HANDSHAKE && c->tls && !c->gone) {
        c->reading = true; /* reads already run; plaintext once it is done */
        return;
    }
    if (c->phase != PHASE_OPEN || c->gone || c->reading)
        return; /* after on_gone nothing is read */
    if (uv_read_start(&c->u.stream, on_alloc, on_read) == 0)
        c->reading = true;
    conn_stall_check_update(c);
    if (c->tls)
        net__tls_kick(c);
}

static void socket_read_stop(struct net_conn *c)
{
    if (c->phase != PHASE_OPEN || !c->reading)
        return;
    uv_read_stop(&c->u.stream);
    c->reading = false;
    conn_stall_check_update(c);
}

/* A reset peer shows as POLLERR/POLLHUP on the socket. */
static void on_stall_check(uv_timer_t *timer)
{
    struct net_conn *c = timer->data;
    struct pollfd pfd = {.events = 0};
    int err = 0;
    socklen_t len = sizeof(err);

    if (c->phase != PHASE_OPEN || c->reading || c->writes || c->failed ||
        uv_fileno(&c->u.handle, &pfd.fd) < 0)
        return;
    if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & (POLLERR | POLLHUP)))
        return;
    getsockopt(pfd.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    net__report_gone(c, err ? -err : UV_ECONNRESET);
}

/* Checks run only while reading is stopped on a live connection: an idle
 * connection that reads costs no wakeup. */
static void conn_stall_check_update(struct net_conn *c)
{
    bool want =
        c->phase == PHASE_OPEN && !c->reading && !c->failed && !c->write_error;

    if (want && !uv_is_active((uv_handle_t *)&c->timer))
        uv_timer_start(&c->timer, on_stall_check, STALL_CHECK_MS,
                       STALL_CHECK_MS);
    else if (!want && c->phase == PHASE_OPEN && !c->write_error)
        uv_timer_stop(&c->timer);
}

/* ---- closing ---- */

static void on_linger_timeout(uv_timer_t *timer)
{
    net__close_handles(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct net_conn *c = req->data;

    net__tell_closed(c);
    if (status < 0 || c->eof || c->failed) /* nothing more to wait for */
        net__close_handles(c);
}

void net_conn_close(struct net_conn *c, bool graceful)
{
    c->kind->close(c, graceful);
}

static void socket_close(struct net_conn *c, bool graceful)
{
    enum conn_phase was = c->phase;

    if (was == PHASE_CLOSING)
        return;
    c->phase = PHASE_CLOSING;
    uv_timer_stop(&c->timer);
    if (was == PHASE_RESOLVING) {
        uv_cancel((uv_req_t *)&c->resolve_req);
        net__close_handles(c);
        return;
    }
    if (graceful && was == PHASE_OPEN && !c->write_error && !c->failed) {
        c->phase = PHASE_OPEN; /* our close_notify still goes out */
        net__tls_shutdown(c);
        c->phase = PHASE_CLOSING;
        net_conn_flush(c);
    } else {
        net__drop_batch(c);
        if (c->tls)
            net__tls_release_held(c, false);
    }
    if (!graceful || was != PHASE_OPEN || c->write_error || c->failed ||
        uv_is_closing(&c->u.handle)) {
        net__close_handles(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, &c->u.stream, on_shutdown) < 0) {
        net__close_handles(c);
        return;
    }
    uv_timer_start(&c->timer, on_linger_timeout, c->linger_ms, 0);
    net__lingers(c);
    if (!c->eof) /* read and drop until the peer's FIN */
        uv_read_start(&c->u.stream, on_alloc, on_read);
    else
        uv_read_stop(&c->u.stream);
}

void net__lingers(struct net_conn *c)
{
    if (list_empty(&c->lingering))
        list_add(&lingering, &c->lingering);
}

void net_conn_end_lingering(void)
{
    for (struct list_node *n = lingering.next; n != &lingering; n = n->next) {
        struct net_conn *c = list_entry(n, struct net_conn, lingering);
        c->kind->end_linger(c); /* freed later, in a close callback */
    }
}

/* ---- the socket kind ---- */

/* Closing handles twice is harmless: net__close_handles skips those that
 * are closing already. */
static void socket_end_linger(struct net_conn *c) { net__close_handles(c); }

static void socket_read(struct net_conn *c, bool on)
{
    if (on)
        socket_read_start(c);
    else
        socket_read_stop(c);
}

static void socket_stop_delivery(struct net_conn *c)
{
    uv_read_stop(&c->u.stream);
}

const struct net__kind net__socket_kind = {
    .read = socket_read,
    .flush = net__socket_flush,
    .close = socket_close,
    .stop_delivery = socket_stop_delivery,
    .watch_stall = conn_stall_check_update,
    .end_linger = socket_end_linger,
    .tls = true,
};
