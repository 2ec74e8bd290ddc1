/* One TCP connection to a usbredir peer: resolve, connect or accept, read,
 * batched writes, close. */
#include "peer_conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "net_tcp.h"

#define CLOSE_FLUSH_TIMEOUT_MS 1000 /* bounded wait for a peer to take data */

enum conn_phase { CONN_RESOLVING, CONN_CONNECTING, CONN_OPEN, CONN_CLOSING };

struct peer_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* connect timeout, then close-flush timeout */
    uv_getaddrinfo_t resolve_req;
    uv_connect_t connect_req;
    uv_shutdown_t shutdown_req;
    enum conn_phase phase;
    bool tcp_open;      /* tcp handle initialized, must be closed */
    bool resolving;     /* resolve_req in flight */
    bool gone_reported; /* on_gone is called once */
    int handles_open;   /* handles not yet closed */
    const struct peer_conn_ops *ops;
    void *owner;
    char name[HOSTPORT_HOST_MAX + 8];
    struct hostport target;
    uint8_t read_buf[PEER_CONN_READ_BUF];
};

struct write_req {
    uv_write_t req;
    peer_conn_write_done done;
    void *ctx;
    unsigned nbufs;
    uv_buf_t bufs[];
};

static void conn_finish_close(struct peer_conn *c);

static void on_handle_closed(uv_handle_t *handle)
{
    struct peer_conn *c = handle->data;
    if (--c->handles_open == 0 && !c->resolving)
        conn_finish_close(c);
}

static void conn_finish_close(struct peer_conn *c)
{
    if (c->ops && c->ops->on_closed)
        c->ops->on_closed(c->owner, c);
    free(c);
}

static void conn_close_handles(struct peer_conn *c)
{
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static struct peer_conn *conn_new(uv_loop_t *loop)
{
    struct peer_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 1;
    return c;
}

static int conn_init_tcp(struct peer_conn *c, uv_loop_t *loop)
{
    int rc = uv_tcp_init(loop, &c->tcp);
    if (rc < 0)
        return rc;
    c->tcp.data = c;
    c->tcp_open = true;
    c->handles_open++;
    return 0;
}

/* No Nagle (usbredir is request/response) and the outage bounds. */
static void conn_tune_socket(struct peer_conn *c)
{
    net_tcp_tune(&c->tcp, &net_tcp_ride_out_outages);
}

static void conn_report_connected(struct peer_conn *c, int status)
{
    uv_timer_stop(&c->timer);
    if (status == 0) {
        c->phase = CONN_OPEN;
        conn_tune_socket(c);
    }
    if (c->ops && c->ops->on_connected)
        c->ops->on_connected(c->owner, c, status);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct peer_conn *c = req->data;
    if (c->phase == CONN_CLOSING)
        return;
    conn_report_connected(c, status);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct peer_conn *c = req->data;

    c->resolving = false;
    if (c->phase == CONN_CLOSING) {
        uv_freeaddrinfo(res);
        if (c->handles_open == 0)
            conn_finish_close(c);
        return;
    }
    if (status == 0)
        status = conn_init_tcp(c, req->loop);
    if (status == 0) {
        c->phase = CONN_CONNECTING;
        c->connect_req.data = c;
        status =
            uv_tcp_connect(&c->connect_req, &c->tcp, res->ai_addr, on_connect);
    }
    uv_freeaddrinfo(res);
    if (status < 0)
        conn_report_connected(c, status);
}

static void on_connect_timeout(uv_timer_t *timer)
{
    conn_report_connected(timer->data, UV_ETIMEDOUT);
}

struct peer_conn *peer_conn_connect(uv_loop_t *loop, const struct hostport *to,
                                    uint32_t timeout_ms,
                                    const struct peer_conn_ops *ops,
                                    void *owner)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_protocol = IPPROTO_TCP};
    char port[8];
    struct peer_conn *c = conn_new(loop);

    if (!c)
        return NULL;
    c->ops = ops;
    c->owner = owner;
    c->target = *to;
    hostport_str(to, c->name, sizeof(c->name));
    snprintf(port, sizeof(port), "%u", to->port);
    c->phase = CONN_RESOLVING;
    c->resolve_req.data = c;
    c->resolving = true;
    int rc = uv_getaddrinfo(loop, &c->resolve_req, on_resolved, to->host, port,
                            &hints);
    if (rc < 0) {
        c->resolving = false;
        c->phase = CONN_CLOSING;
        c->ops = NULL;
        conn_close_handles(c);
        return NULL;
    }
    uv_timer_start(&c->timer, on_connect_timeout, timeout_ms, 0);
    return c;
}

static void conn_name_from_peer(struct peer_conn *c)
{
    net_tcp_peer_name(&c->tcp, c->name, sizeof(c->name));
}

struct peer_conn *peer_conn_accept(uv_stream_t *listener)
{
    struct peer_conn *c = conn_new(listener->loop);

    if (!c)
        return NULL;
    if (conn_init_tcp(c, listener->loop) < 0 ||
        uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        c->phase = CONN_CLOSING;
        conn_close_handles(c);
        return NULL;
    }
    c->phase = CONN_OPEN;
    conn_tune_socket(c);
    conn_name_from_peer(c);
    return c;
}

void peer_conn_set_owner(struct peer_conn *c, const struct peer_conn_ops *ops,
                         void *owner)
{
    c->ops = ops;
    c->owner = owner;
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct peer_conn *c = handle->data;
    (void)suggested;
    /* Data is consumed synchronously in on_read, so one buffer suffices. */
    *buf = uv_buf_init((char *)c->read_buf, sizeof(c->read_buf));
}

static void conn_report_gone(struct peer_conn *c, int status)
{
    if (c->gone_reported || c->phase != CONN_OPEN)
        return;
    c->gone_reported = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->ops && c->ops->on_gone)
        c->ops->on_gone(c->owner, c, status);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct peer_conn *c = stream->data;
    (void)buf;

    if (c->phase != CONN_OPEN || nread == 0)
        return;
    if (nread < 0) {
        conn_report_gone(c, (int)nread);
        return;
    }
    if (c->ops && c->ops->on_data)
        c->ops->on_data(c->owner, c, c->read_buf, (size_t)nread);
}

int peer_conn_read_start(struct peer_conn *c)
{
    return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void peer_conn_read_stop(struct peer_conn *c)
{
    uv_read_stop((uv_stream_t *)&c->tcp);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct peer_conn *c = req->handle->data;

    w->done(w->ctx, w->bufs, w->nbufs, status);
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        conn_report_gone(c, status);
}

int peer_conn_write(struct peer_conn *c, uv_buf_t *bufs, unsigned nbufs,
                    peer_conn_write_done done, void *ctx)
{
    struct write_req *w;

    if (c->phase != CONN_OPEN)
        return UV_ENOTCONN;
    w = malloc(sizeof(*w) + nbufs * sizeof(uv_buf_t));
    if (!w)
        return UV_ENOMEM;
    w->done = done;
    w->ctx = ctx;
    w->nbufs = nbufs;
    memcpy(w->bufs, bufs, nbufs * sizeof(uv_buf_t));
    int rc =
        uv_write(&w->req, (uv_stream_t *)&c->tcp, w->bufs, nbufs, on_written);
    if (rc < 0)
        free(w);
    return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct peer_conn *c = req->data;
    (void)status;
    conn_close_handles(c);
}

static void on_flush_timeout(uv_timer_t *timer)
{
    struct peer_conn *c = timer->data;
    /* The peer does not take our last bytes: give up on them. */
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

void peer_conn_close(struct peer_conn *c, bool graceful)
{
    enum conn_phase was = c->phase;

    if (was == CONN_CLOSING)
        return;
    c->phase = CONN_CLOSING;
    if (was == CONN_RESOLVING) {
        uv_cancel((uv_req_t *)&c->resolve_req);
        conn_close_handles(c);
        return;
    }
    if (graceful && was == CONN_OPEN) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->shutdown_req.data = c;
        if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp,
                        on_shutdown) == 0) {
            uv_timer_start(&c->timer, on_flush_timeout, CLOSE_FLUSH_TIMEOUT_MS,
                           0);
            return;
        }
    }
    conn_close_handles(c);
}

const char *peer_conn_name(const struct peer_conn *c) { return c->name; }
