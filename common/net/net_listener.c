/* SPDX-License-Identifier: MIT */
/* A listening TCP or unix socket that hands each accepted connection to its
 * owner as a net_conn. */
#include "net_listener.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "net_conn.h"

struct net_listener {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    struct endpoint ep;
    net_accept_fn accept;
    void *ctx;
    char name[ENDPOINT_STR_MAX];
};

static void on_connection(uv_stream_t *server, int status)
{
    struct net_listener *l = server->data;
    struct net_conn *c;

    if (status < 0) {
        log_warn("accepting on %s: %s", l->name, uv_strerror(status));
        return;
    }
    c = net_conn_accept(server);
    if (c)
        l->accept(l->ctx, c);
}

/* True if a live program answers on the unix socket at path. */
static bool unix_socket_in_use(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool used;

    if (fd < 0)
        return false;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    used = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    return used;
}

static int listen_unix(struct net_listener *l, uv_loop_t *loop, unsigned mode,
                       char *why, size_t why_len)
{
    if (unix_socket_in_use(l->ep.path)) {
        snprintf(why, why_len, "%s is in use by another program", l->name);
        return -1;
    }
    unlink(l->ep.path); /* a stale file left by a crash */
    uv_pipe_init(loop, &l->u.pipe, 0);
    l->u.handle.data = l;
    mode_t old = mode ? umask(0777 & ~mode) : 0;
    int rc = uv_pipe_bind(&l->u.pipe, l->ep.path);
    if (mode)
        umask(old);
    return rc;
}

static int listen_tcp(struct net_listener *l, uv_loop_t *loop, char *why,
                      size_t why_len)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char port[8];

    snprintf(port, sizeof(port), "%u", l->ep.tcp.port);
    int rc = getaddrinfo(l->ep.tcp.host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, why_len, "cannot resolve %s: %s", l->ep.tcp.host,
                 gai_strerror(rc));
        return -1;
    }
    uv_tcp_init(loop, &l->u.tcp);
    l->u.handle.data = l;
    rc = uv_tcp_bind(&l->u.tcp, res->ai_addr, 0);
    freeaddrinfo(res);
    return rc;
}

static void on_closed_free(uv_handle_t *handle) { free(handle->data); }

struct net_listener *net_listener_open(uv_loop_t *loop,
                                       const struct endpoint *ep, int backlog,
                                       unsigned unix_mode, net_accept_fn accept,
                                       void *ctx, char *why, size_t why_len)
{
    struct net_listener *l = calloc(1, sizeof(*l));
    int rc;

    if (!l) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }
    l->ep = *ep;
    l->accept = accept;
    l->ctx = ctx;
    endpoint_str(ep, l->name, sizeof(l->name));
    why[0] = '\0';
    rc = ep->is_unix ? listen_unix(l, loop, unix_mode, why, why_len)
                     : listen_tcp(l, loop, why, why_len);
    if (rc == 0)
        rc = uv_listen(&l->u.stream, backlog, on_connection);
    if (rc == 0)
        return l;
    if (!why[0])
        snprintf(why, why_len, "cannot listen on %s: %s", l->name,
                 uv_strerror(rc));
    if (l->u.handle.data) /* the handle exists */
        uv_close(&l->u.handle, on_closed_free);
    else
        free(l);
    return NULL;
}

void net_listener_close(struct net_listener *l)
{
    if (l->ep.is_unix)
        unlink(l->ep.path);
    uv_close(&l->u.handle, on_closed_free);
}

const char *net_listener_name(const struct net_listener *l) { return l->name; }
