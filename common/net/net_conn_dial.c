/* SPDX-License-Identifier: MIT */
/* Dialing a connection: a TCP name resolved asynchronously, a resolved
 * address, or a unix socket; bounded by a timeout. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>

#include "net_conn_int.h"

/* Connected: with TLS the handshake follows (the connect timeout still
 * bounds it), without it the owner hears at once. */
static void on_connect(uv_connect_t *req, int status)
{
    struct net_conn *c = req->data;

    if (c->phase != PHASE_CONNECTING)
        return;
    if (status < 0 || !c->tls) {
        net__connected(c, status);
        return;
    }
    net__tune(c);
    c->phase = PHASE_HANDSHAKE;
    net__tls_start(c);
}

static void on_connect_timeout(uv_timer_t *timer)
{
    struct net_conn *c = timer->data;
    if (c->phase == PHASE_RESOLVING || c->phase == PHASE_CONNECTING ||
        c->phase == PHASE_HANDSHAKE)
        net__connected(c, UV_ETIMEDOUT);
}

static int conn_start_connect(struct net_conn *c, uv_loop_t *loop,
                              const struct sockaddr *addr)
{
    int rc = net__init_stream(c, loop, false);

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
            net__tell_closed(c);
            net__free(c);
        }
        return;
    }
    if (status == 0)
        status = conn_start_connect(c, req->loop, res->ai_addr);
    uv_freeaddrinfo(res);
    if (status < 0)
        net__connected(c, status);
}

static struct net_conn *conn_dial_unix(uv_loop_t *loop, const char *path,
                                       const struct net_conn_ops *ops,
                                       void *owner)
{
    struct net_conn *c = net__new(loop);

    if (!c)
        return NULL;
    net_conn_set_owner(c, ops, owner);
    snprintf(c->name, sizeof(c->name), "%s%s", ENDPOINT_UNIX_PREFIX, path);
    if (net__init_stream(c, loop, true) < 0) {
        c->phase = PHASE_CLOSING;
        net__close_handles(c);
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
    struct net_conn *c = net__new(loop);
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
        net__close_handles(c);
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
    struct net_conn *c = net__new(loop);

    if (!c)
        return NULL;
    net_conn_set_owner(c, ops, owner);
    snprintf(c->name, sizeof(c->name), "%s", name);
    if (conn_start_connect(c, loop, addr) < 0) {
        c->phase = PHASE_CLOSING;
        c->ops = NULL;
        net__close_handles(c);
        return NULL;
    }
    if (timeout_ms)
        uv_timer_start(&c->timer, on_connect_timeout, timeout_ms, 0);
    return c;
}
