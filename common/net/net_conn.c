/* SPDX-License-Identifier: MIT */
/* One byte stream (TCP or unix socket), the only kind of connection the agent
 * and the relay use: connect or accept, reads handed to the owner, writes
 * gathered into one writev, backpressure, keepalive, graceful close. */
#include "net_conn.h"

#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_tcp.h"

#define DEFAULT_LINGER_MS 1000 /* a peer that takes neither data nor a FIN */
/* While reading is stopped and nothing is written, libuv watches nothing
 * on the socket: a reset would go unnoticed without this check. */
#define STALL_CHECK_MS 1000
/* Buffers gathered into one writev. A write request is allocated for the
 * first buffer queued and submitted by the flush: an idle connection
 * holds no batch memory. */
#define BATCH_MAX 64

enum conn_phase {
    PHASE_RESOLVING,
    PHASE_CONNECTING,
    PHASE_OPEN,
    PHASE_CLOSING, /* net_conn_close() was called */
};

struct queued_buf {
    net_release_fn release;
    void *ctx;
};

/* One writev: the libuv request, its buffers and who releases them. */
struct write_batch {
    uv_write_t req;
    struct net_conn *c;
    size_t bytes;
    unsigned n;
    uv_buf_t bufs[BATCH_MAX];
    struct queued_buf owners[BATCH_MAX];
};

struct net_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    uv_timer_t timer; /* connect timeout, stall check, linger */
    uv_getaddrinfo_t resolve_req;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    enum conn_phase phase;
    bool stream_init; /* u is initialized and must be closed */
    bool resolving;   /* resolve_req in flight */
    bool reading;     /* the owner wants reads */
    bool gone;        /* on_gone was reported (or is not wanted) */
    bool eof;         /* the peer finished sending: no more reads */
    bool failed;      /* the connection failed: writes are dropped */
    bool congested;   /* queued reached high water */
    bool closed_told; /* on_closed was called */
    int handles_open; /* closing handles not yet called back */
    int write_error;  /* a batch failed to submit; reported from the loop */
    unsigned writes;  /* batches in flight */
    size_t queued;    /* bytes batched or in flight */
    size_t high_water, low_water;
    uint32_t linger_ms;
    const struct net_tcp_keepalive *keepalive;
    struct write_batch *batch; /* being filled, not submitted yet */
    const struct net_conn_ops *ops;
    void *owner;
    char name[NET_CONN_NAME_MAX];
};

static uint8_t shared_read_buf[NET_CONN_READ_BUF];

static void conn_stall_check_update(struct net_conn *c);
static void conn_close_handles(struct net_conn *c);

/* ---- lifetime ---- */

static void conn_free(struct net_conn *c) { free(c); }

/* The owner hears on_closed once nothing of its is referenced any more:
 * no batch waits and no write is in flight. */
static void conn_tell_closed(struct net_conn *c)
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
    conn_tell_closed(c);
    conn_free(c);
}

static void conn_close_handles(struct net_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->timer)) {
        uv_timer_stop(&c->timer);
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    }
    if (c->stream_init && !uv_is_closing(&c->u.handle))
        uv_close(&c->u.handle, on_handle_closed);
}

static struct net_conn *conn_new(uv_loop_t *loop)
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
    return c;
}

static int conn_init_stream(struct net_conn *c, uv_loop_t *loop, bool is_unix)
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
static void conn_tune(struct net_conn *c)
{
    if (c->stream_init && c->u.handle.type == UV_TCP)
        net_tcp_tune(&c->u.tcp, c->keepalive);
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
        conn_tune(c);
}

void net_conn_set_water(struct net_conn *c, size_t high, size_t low)
{
    c->high_water = high;
    c->low_water = low < high ? low : high;
}

void net_conn_set_linger(struct net_conn *c, uint32_t ms) { c->linger_ms = ms; }

const char *net_conn_name(const struct net_conn *c) { return c->name; }

size_t net_conn_queued(const struct net_conn *c) { return c->queued; }

bool net_conn_congested(const struct net_conn *c) { return c->congested; }

/* ---- failure ---- */

/* The stream ended or failed: the owner hears of it once, unless it has
 * closed the connection already. After an end of stream writes still go
 * out (a half-closed peer). */
static void conn_report_gone(struct net_conn *c, int status)
{
    if (status == UV_EOF)
        c->eof = true;
    else
        c->failed = true;
    if (c->gone || c->phase != PHASE_OPEN)
        return;
    c->gone = true;
    c->reading = false;
    uv_read_stop(&c->u.stream);
    conn_stall_check_update(c);
    if (c->ops && c->ops->on_gone)
        c->ops->on_gone(c->owner, c, status);
}

static void on_write_failed(uv_timer_t *timer)
{
    struct net_conn *c = timer->data;
    conn_report_gone(c, c->write_error);
}

/* A batch that could not even be submitted: the owner hears of it from
 * the loop, not from inside its own call to queue or flush. */
static void conn_fail_later(struct net_conn *c, int status)
{
    if (c->write_error || c->phase != PHASE_OPEN)
        return;
    c->write_error = status;
    uv_timer_start(&c->timer, on_write_failed, 0, 0);
}

/* ---- connecting ---- */

static void conn_report_connected(struct net_conn *c, int status)
{
    uv_timer_stop(&c->timer);
    if (status == 0) {
        c->phase = PHASE_OPEN;
        conn_tune(c);
    } else {
        c->gone = c->failed = true; /* a failed dial reports nothing more */
    }
    if (c->ops && c->ops->on_connected)
        c->ops->on_connected(c->owner, c, status);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct net_conn *c = req->data;

    if (c->phase == PHASE_CONNECTING)
        conn_report_connected(c, status);
}

static void on_connect_timeout(uv_timer_t *timer)
{
    struct net_conn *c = timer->data;
    if (c->phase == PHASE_RESOLVING || c->phase == PHASE_CONNECTING)
        conn_report_connected(c, UV_ETIMEDOUT);
}

static int conn_start_connect(struct net_conn *c, uv_loop_t *loop,
                              const struct sockaddr *addr)
{
    int rc = conn_init_stream(c, loop, false);

    if (rc < 0)
        return rc;
    c->phase = PHASE_CONNECTING;
    c->connect_req.data = c;
    return uv_tcp_connect(&c->connect_req, &c->u.tcp, addr, on_connect);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct net_conn *c = req->data;

    c->resolving = false;
    if (c->phase != PHASE_RESOLVING) { /* closed meanwhile */
        if (res)
            uv_freeaddrinfo(res);
        if (c->handles_open == 0) {
            conn_tell_closed(c);
            conn_free(c);
        }
        return;
    }
    if (status == 0)
        status = conn_start_connect(c, req->loop, res->ai_addr);
    uv_freeaddrinfo(res);
    if (status < 0)
        conn_report_connected(c, status);
}

static struct net_conn *conn_dial_unix(uv_loop_t *loop, const char *path,
                                       const struct net_conn_ops *ops,
                                       void *owner)
{
    struct net_conn *c = conn_new(loop);

    if (!c)
        return NULL;
    net_conn_set_owner(c, ops, owner);
    snprintf(c->name, sizeof(c->name), "%s%s", ENDPOINT_UNIX_PREFIX, path);
    if (conn_init_stream(c, loop, true) < 0) {
        c->phase = PHASE_CLOSING;
        conn_close_handles(c);
        return NULL;
    }
    c->phase = PHASE_CONNECTING;
    c->connect_req.data = c;
    /* failures arrive through on_connect too */
    uv_pipe_connect(&c->connect_req, &c->u.pipe, path, on_connect);
    return c;
}

static struct net_conn *conn_dial_name(uv_loop_t *loop,
                                       const struct hostport *hp,
                                       const struct net_conn_ops *ops,
                                       void *owner)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP};
    struct net_conn *c = conn_new(loop);
    char port[8];

    if (!c)
        return NULL;
    net_conn_set_owner(c, ops, owner);
    hostport_str(hp, c->name, sizeof(c->name));
    snprintf(port, sizeof(port), "%u", hp->port);
    c->phase = PHASE_RESOLVING;
    c->resolve_req.data = c;
    if (uv_getaddrinfo(loop, &c->resolve_req, on_resolved, hp->host, port,
                       &hints) < 0) {
        c->phase = PHASE_CLOSING;
        c->ops = NULL;
        conn_close_handles(c);
        return NULL;
    }
    c->resolving = true;
    return c;
}

struct net_conn *net_conn_connect(uv_loop_t *loop, const struct endpoint *ep,
                                  uint32_t timeout_ms,
                                  const struct net_conn_ops *ops, void *owner)
{
    struct net_conn *c = ep->is_unix
                             ? conn_dial_unix(loop, ep->path, ops, owner)
                             : conn_dial_name(loop, &ep->tcp, ops, owner);

    if (c && timeout_ms)
        uv_timer_start(&c->timer, on_connect_timeout, timeout_ms, 0);
    return c;
}

struct net_conn *net_conn_connect_addr(uv_loop_t *loop,
                                       const struct sockaddr *addr,
                                       const char *name, uint32_t timeout_ms,
                                       const struct net_conn_ops *ops,
                                       void *owner)
{
    struct net_conn *c = conn_new(loop);

    if (!c)
        return NULL;
    net_conn_set_owner(c, ops, owner);
    snprintf(c->name, sizeof(c->name), "%s", name);
    if (conn_start_connect(c, loop, addr) < 0) {
        c->phase = PHASE_CLOSING;
        c->ops = NULL;
        conn_close_handles(c);
        return NULL;
    }
    if (timeout_ms)
        uv_timer_start(&c->timer, on_connect_timeout, timeout_ms, 0);
    return c;
}

struct net_conn *net_conn_accept(uv_stream_t *listener)
{
    bool is_unix = listener->type == UV_NAMED_PIPE;
    struct net_conn *c = conn_new(listener->loop);

    if (!c)
        return NULL;
    if (conn_init_stream(c, listener->loop, is_unix) < 0 ||
        uv_accept(listener, &c->u.stream) < 0) {
        c->phase = PHASE_CLOSING;
        conn_close_handles(c);
        return NULL;
    }
    c->phase = PHASE_OPEN;
    conn_tune(c);
    if (is_unix)
        snprintf(c->name, sizeof(c->name), "unix peer");
    else
        net_tcp_peer_name(&c->u.tcp, c->name, sizeof(c->name));
    return c;
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct net_conn *c = handle->data;
    (void)suggested;

    if (c->phase == PHASE_OPEN && c->ops && c->ops->on_alloc)
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
            conn_close_handles(c);
        return;
    }
    if (nread == UV_ENOBUFS) { /* the owner has no room now */
        uv_read_stop(stream);
        c->reading = false;
        conn_stall_check_update(c);
        return;
    }
    if (nread < 0) {
        conn_report_gone(c, (int)nread);
        return;
    }
    if (c->ops && c->ops->on_data)
        c->ops->on_data(c->owner, c, (const uint8_t *)buf->base, (size_t)nread);
}

void net_conn_read_start(struct net_conn *c)
{
    if (c->phase != PHASE_OPEN || c->gone || c->reading)
        return; /* after on_gone nothing is read */
    if (uv_read_start(&c->u.stream, on_alloc, on_read) == 0)
        c->reading = true;
    conn_stall_check_update(c);
}

void net_conn_read_stop(struct net_conn *c)
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
    conn_report_gone(c, err ? -err : UV_ECONNRESET);
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

/* ---- writing ---- */

static void batch_release(struct write_batch *b)
{
    for (unsigned i = 0; i < b->n; i++) {
        if (b->owners[i].release)
            b->owners[i].release(b->owners[i].ctx, b->bufs[i].base,
                                 b->bufs[i].len);
        else
            free(b->bufs[i].base);
    }
    free(b);
}

static void conn_drop_batch(struct net_conn *c)
{
    struct write_batch *b = c->batch;

    if (!b)
        return;
    c->batch = NULL;
    c->queued -= b->bytes;
    batch_release(b);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_batch *b = (struct write_batch *)req;
    struct net_conn *c = b->c;

    c->writes--;
    c->queued -= b->bytes;
    batch_release(b);
    if (c->phase == PHASE_CLOSING) {
        conn_tell_closed(c);
        return;
    }
    if (status < 0) {
        conn_report_gone(c, status);
        return;
    }
    if (c->congested && c->queued <= c->low_water) {
        c->congested = false;
        if (c->ops && c->ops->on_drained)
            c->ops->on_drained(c->owner, c);
    }
}

void net_conn_flush(struct net_conn *c)
{
    struct write_batch *b = c->batch;

    if (!b)
        return;
    c->batch = NULL;
    int rc = uv_write(&b->req, &c->u.stream, b->bufs, b->n, on_written);
    if (rc == 0) {
        c->writes++;
        return;
    }
    c->queued -= b->bytes;
    batch_release(b);
    conn_fail_later(c, rc);
}

void net_conn_queue(struct net_conn *c, void *base, size_t len,
                    net_release_fn release, void *ctx)
{
    struct write_batch *b = c->batch;

    if (c->phase != PHASE_OPEN || c->failed || c->write_error) {
        if (release)
            release(ctx, base, len);
        else
            free(base);
        return;
    }
    if (b && b->n == BATCH_MAX) {
        net_conn_flush(c);
        b = NULL;
    }
    if (!b) {
        b = malloc(sizeof(*b));
        if (!b) {
            if (release)
                release(ctx, base, len);
            else
                free(base);
            conn_fail_later(c, UV_ENOMEM);
            return;
        }
        b->c = c;
        b->n = 0;
        b->bytes = 0;
        c->batch = b;
    }
    b->bufs[b->n] = uv_buf_init(base, (unsigned)len);
    b->owners[b->n] = (struct queued_buf){release, ctx};
    b->n++;
    b->bytes += len;
    c->queued += len;
    if (c->queued >= c->high_water)
        c->congested = true;
}

bool net_conn_queue_copy(struct net_conn *c, const void *data, size_t len)
{
    void *copy = malloc(len ? len : 1);

    if (!copy)
        return false;
    memcpy(copy, data, len);
    net_conn_queue(c, copy, len, NULL, NULL);
    return true;
}

/* ---- closing ---- */

static void on_linger_timeout(uv_timer_t *timer)
{
    conn_close_handles(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct net_conn *c = req->data;

    conn_tell_closed(c);
    if (status < 0 || c->eof || c->failed) /* nothing more to wait for */
        conn_close_handles(c);
}

void net_conn_close(struct net_conn *c, bool graceful)
{
    enum conn_phase was = c->phase;

    if (was == PHASE_CLOSING)
        return;
    c->phase = PHASE_CLOSING;
    uv_timer_stop(&c->timer);
    if (was == PHASE_RESOLVING) {
        uv_cancel((uv_req_t *)&c->resolve_req);
        conn_close_handles(c);
        return;
    }
    if (graceful && was == PHASE_OPEN && !c->write_error && !c->failed)
        net_conn_flush(c);
    else
        conn_drop_batch(c);
    if (!graceful || was != PHASE_OPEN || c->write_error || c->failed ||
        uv_is_closing(&c->u.handle)) {
        conn_close_handles(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, &c->u.stream, on_shutdown) < 0) {
        conn_close_handles(c);
        return;
    }
    uv_timer_start(&c->timer, on_linger_timeout, c->linger_ms, 0);
    if (!c->eof) /* read and drop until the peer's FIN */
        uv_read_start(&c->u.stream, on_alloc, on_read);
    else
        uv_read_stop(&c->u.stream);
}
