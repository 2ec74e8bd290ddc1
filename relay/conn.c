/* One stream socket of the relay (an agent, or a QEMU chardev over TCP or a
 * unix socket): shared read buffer, batched writes with a count of what is
 * queued, lingering close. */
#include "conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_tcp.h"

#define CONN_LINGER_MS 1000 /* a peer that takes neither data nor a FIN */

struct write_req {
    uv_write_t req;
    struct conn *c;
    size_t bytes;
    unsigned nbufs;
    uv_buf_t bufs[];
};

static void conn_report_gone(struct conn *c, int status);

static void on_handle_closed(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    if (--c->handles_open == 0)
        free(c);
}

/* Closes both handles; the conn is freed when the last has closed. */
static void conn_close_now(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->linger))
        uv_close((uv_handle_t *)&c->linger, on_handle_closed);
    if (!uv_is_closing(&c->u.handle))
        uv_close(&c->u.handle, on_handle_closed);
}

static struct conn *conn_new(uv_loop_t *loop, bool is_unix, uint8_t *read_buf)
{
    struct conn *c = calloc(1, sizeof(*c));
    int rc;

    if (!c)
        return NULL;
    rc = is_unix ? uv_pipe_init(loop, &c->u.pipe, 0)
                 : uv_tcp_init(loop, &c->u.tcp);
    if (rc < 0) {
        free(c);
        return NULL;
    }
    uv_timer_init(loop, &c->linger);
    c->u.handle.data = c->linger.data = c;
    c->handles_open = 2;
    c->read_buf = read_buf;
    c->high_water = SIZE_MAX;
    return c;
}

/* No Nagle (usbredir is request/response), and a dead peer is noticed
 * without anyone waiting minutes. */
static void conn_tune_tcp(struct conn *c)
{
    if (c->u.handle.type == UV_TCP)
        net_tcp_tune(&c->u.tcp, &net_tcp_ride_out_outages);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;

    c->connecting = false;
    if (c->closing)
        return;
    if (status == 0)
        conn_tune_tcp(c);
    c->ops->on_connected(c->owner, c, status);
}

struct conn *conn_connect_tcp(uv_loop_t *loop, const struct sockaddr *addr,
                              const char *name, uint8_t *read_buf,
                              const struct conn_ops *ops, void *owner)
{
    struct conn *c = conn_new(loop, false, read_buf);
    if (!c)
        return NULL;
    conn_set_owner(c, ops, owner);
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->connect_req.data = c;
    c->connecting = true;
    int rc = uv_tcp_connect(&c->connect_req, &c->u.tcp, addr, on_connect);
    if (rc < 0) {
        c->connecting = false;
        c->closing = true;
        conn_close_now(c);
        return NULL;
    }
    return c;
}

struct conn *conn_connect_unix(uv_loop_t *loop, const char *path,
                               uint8_t *read_buf, const struct conn_ops *ops,
                               void *owner)
{
    struct conn *c = conn_new(loop, true, read_buf);
    if (!c)
        return NULL;
    conn_set_owner(c, ops, owner);
    snprintf(c->name, sizeof(c->name), "unix:%s", path);
    c->connect_req.data = c;
    c->connecting = true;
    /* reports failures through on_connect too */
    uv_pipe_connect(&c->connect_req, &c->u.pipe, path, on_connect);
    return c;
}

static void conn_name_from_peer(struct conn *c)
{
    if (c->u.handle.type == UV_TCP)
        net_tcp_peer_name(&c->u.tcp, c->name, sizeof(c->name));
    else
        snprintf(c->name, sizeof(c->name), "unix peer");
}

struct conn *conn_accept(uv_stream_t *listener, uint8_t *read_buf)
{
    struct conn *c =
        conn_new(listener->loop, listener->type == UV_NAMED_PIPE, read_buf);

    if (!c)
        return NULL;
    if (uv_accept(listener, &c->u.stream) < 0) {
        c->closing = true;
        conn_close_now(c);
        return NULL;
    }
    conn_tune_tcp(c);
    conn_name_from_peer(c);
    return c;
}

void conn_set_owner(struct conn *c, const struct conn_ops *ops, void *owner)
{
    c->ops = ops;
    c->owner = owner;
}

void conn_set_high_water(struct conn *c, size_t bytes)
{
    c->high_water = bytes;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    (void)suggested;
    /* Every read is consumed before the next one: one buffer for all. */
    *buf = uv_buf_init((char *)c->read_buf, CONN_READ_BUF);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    (void)buf;

    if (nread == 0)
        return;
    if (c->closing) { /* lingering: discard, close at the peer's FIN */
        if (nread < 0)
            conn_close_now(c);
        return;
    }
    if (nread < 0)
        conn_report_gone(c, (int)nread);
    else
        c->ops->on_data(c->owner, c, c->read_buf, (size_t)nread);
}

void conn_read_start(struct conn *c)
{
    if (!c->closing && !c->gone)
        uv_read_start(&c->u.stream, on_alloc, on_read);
}

void conn_read_stop(struct conn *c)
{
    if (!c->closing)
        uv_read_stop(&c->u.stream);
}

/* The stream ended or failed (read, write or queueing): tell the owner
 * once, unless it closed the conn already. */
static void conn_report_gone(struct conn *c, int status)
{
    if (c->gone || c->closing)
        return;
    c->gone = true;
    uv_read_stop(&c->u.stream);
    c->ops->on_gone(c->owner, c, status);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct conn *c = w->c;

    for (unsigned i = 0; i < w->nbufs; i++)
        free(w->bufs[i].base);
    c->queued -= w->bytes;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        conn_report_gone(c, status);
        return;
    }
    if (c->congested && c->queued <= c->high_water / 2) {
        c->congested = false;
        if (c->ops->on_drained)
            c->ops->on_drained(c->owner, c);
    }
}

static void on_write_failed(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    conn_report_gone(c, c->write_error);
}

/* A write that could not even be queued: the owner hears of it from the
 * loop, not from inside its own call to conn_queue() or conn_flush(). */
static void conn_fail_later(struct conn *c, int status)
{
    if (c->write_error || c->closing)
        return;
    c->write_error = status;
    uv_timer_start(&c->linger, on_write_failed, 0, 0);
}

void conn_flush(struct conn *c)
{
    unsigned n = c->nbatch;
    size_t bytes = 0;
    int rc = UV_ENOMEM;

    if (n == 0)
        return;
    c->nbatch = 0;
    for (unsigned i = 0; i < n; i++)
        bytes += c->batch[i].len;
    struct write_req *w = malloc(sizeof(*w) + n * sizeof(uv_buf_t));
    if (w) {
        w->c = c;
        w->bytes = bytes;
        w->nbufs = n;
        memcpy(w->bufs, c->batch, n * sizeof(uv_buf_t));
        rc = uv_write(&w->req, &c->u.stream, w->bufs, n, on_written);
        if (rc == 0)
            return;
        free(w);
    }
    for (unsigned i = 0; i < n; i++) /* dropped: the conn is failing */
        free(c->batch[i].base);
    c->queued -= bytes;
    conn_fail_later(c, rc);
}

void conn_queue(struct conn *c, uint8_t *buf, size_t len)
{
    if (c->closing || c->gone || c->write_error) {
        free(buf);
        return;
    }
    if (c->nbatch == CONN_BATCH_MAX)
        conn_flush(c);
    c->batch[c->nbatch++] = uv_buf_init((char *)buf, (unsigned)len);
    c->queued += len;
    if (c->queued >= c->high_water)
        c->congested = true;
}

bool conn_queue_copy(struct conn *c, const uint8_t *data, size_t len)
{
    uint8_t *buf = malloc(len);
    if (!buf)
        return false;
    memcpy(buf, data, len);
    conn_queue(c, buf, len);
    return true;
}

bool conn_congested(const struct conn *c) { return c->congested; }

static void on_linger_timeout(uv_timer_t *timer)
{
    conn_close_now(timer->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    if (status < 0)
        conn_close_now(c);
}

void conn_close(struct conn *c, bool graceful)
{
    if (c->closing)
        return;
    c->closing = true; /* from here on no callback reaches the owner */
    c->ops = NULL;
    conn_flush(c);
    if (!graceful || c->connecting || c->gone || uv_is_closing(&c->u.handle)) {
        conn_close_now(c);
        return;
    }
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, &c->u.stream, on_shutdown) < 0) {
        conn_close_now(c);
        return;
    }
    uv_timer_start(&c->linger, on_linger_timeout, CONN_LINGER_MS, 0);
    uv_read_start(&c->u.stream, on_alloc, on_read);
}
