/* SPDX-License-Identifier: MIT */
/* A listening TCP or unix socket that hands each accepted connection to its
 * owner as a net_conn, once its guard let it in. */
#include "net_listener.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "glob_list.h"
#include "list.h"
#include "log.h"
#include "log_limit.h"
#include "net_conn.h"
#include "net_tls.h"

/* A connection in its TLS handshake, not yet the owner's. */
struct guarded_conn {
    struct list_node node;
    struct net_listener *l;
    struct net_conn *c;
    struct sockaddr_storage addr;
    bool counted; /* in l->admit */
};

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
    struct net_guard guard;
    struct net_admit admit;
    struct list_node handshaking; /* struct guarded_conn */
    struct log_limit refusals;
    char name[ENDPOINT_STR_MAX];
};

void net_guard_init(struct net_guard *g, const char *what)
{
    memset(g, 0, sizeof(*g));
    g->allow_any = true;
    snprintf(g->what, sizeof(g->what), "%.*s", NET_GUARD_NAME_MAX - 1, what);
}

/* One line per new reason, then a count at most once a minute: a flood
 * must not become a flood of log lines. */
static void guard_log_refusal(struct net_listener *l, const char *peer,
                              const char *reason)
{
    char more[LOG_LIMIT_SUFFIX_MAX];
    unsigned repeats;

    if (log_limit_check(&l->refusals, reason, uv_now(l->u.handle.loop),
                        &repeats))
        log_warn("%s: connection from %s refused: %s%s", l->guard.what, peer,
                 reason, log_limit_suffix(repeats, more, sizeof(more)));
}

static void guarded_free(struct guarded_conn *g)
{
    if (g->counted)
        net_admit_leave(&g->l->admit, (struct sockaddr *)&g->addr);
    list_remove(&g->node);
    free(g);
}

static void on_guarded_closed(void *owner, struct net_conn *c)
{
    (void)c;
    free(owner);
}

static const struct net_conn_ops guarded_closing_ops = {
    .on_closed = on_guarded_closed,
};

/* The handshake is over: hand the connection over, or refuse it. */
static void on_guarded_connected(void *owner, struct net_conn *c, int status)
{
    struct guarded_conn *g = owner;
    struct net_listener *l = g->l;
    const char *who = net_conn_peer_identity(c);
    char reason[NET_TLS_ERR_MAX + 64];

    if (g->counted)
        net_admit_leave(&l->admit, (struct sockaddr *)&g->addr);
    g->counted = false;
    list_remove(&g->node);
    if (status == 0 && !glob_list_match(l->guard.peer_glob, who))
        snprintf(reason, sizeof(reason),
                 "certificate of \"%s\" is not allowed here (tls_peer_name "
                 "= %s)",
                 who ? who : "", l->guard.peer_glob);
    else if (status == 0) {
        free(g);
        net_conn_set_owner(c, NULL, NULL);
        l->accept(l->ctx, c);
        return;
    } else
        snprintf(reason, sizeof(reason), "TLS handshake failed: %s",
                 net_conn_tls_error(c) ? net_conn_tls_error(c)
                                       : uv_strerror(status));
    guard_log_refusal(l, net_conn_name(c), reason);
    net_conn_set_owner(c, &guarded_closing_ops, g);
    net_conn_close(c, false);
}

static const struct net_conn_ops guarded_ops = {
    .on_connected = on_guarded_connected,
    .on_closed = on_guarded_closed,
};

/* Starts the TLS handshake of an accepted connection under the limits. */
static void guard_start_tls(struct net_listener *l, struct net_conn *c,
                            const struct sockaddr_storage *addr)
{
    struct guarded_conn *g = calloc(1, sizeof(*g));
    enum net_admit_verdict v;

    if (!g) {
        net_conn_close(c, false);
        return;
    }
    g->l = l;
    g->c = c;
    g->addr = *addr;
    v = net_admit_enter(&l->admit, (const struct sockaddr *)addr);
    if (v != NET_ADMIT_OK) {
        free(g);
        guard_log_refusal(l, net_conn_name(c), net_admit_verdict_name(v));
        net_conn_close(c, false);
        return;
    }
    g->counted = true;
    list_add(&l->handshaking, &g->node);
    net_conn_set_owner(c, &guarded_ops, g);
    if (net_conn_start_tls(c, l->guard.tls, NULL) < 0) {
        guarded_free(g);
        net_conn_set_owner(c, NULL, NULL);
        net_conn_close(c, false);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct net_listener *l = server->data;
    struct sockaddr_storage addr;
    struct net_conn *c;

    if (status < 0) {
        log_warn("accepting on %s: %s", l->name, uv_strerror(status));
        return;
    }
    c = net_conn_accept(server);
    if (!c)
        return;
    bool tcp = net_conn_peer_addr(c, &addr) == 0;
    if (tcp && !l->guard.allow_any &&
        !cidr_list_match(&l->guard.allow, (struct sockaddr *)&addr)) {
        guard_log_refusal(l, net_conn_name(c), "address not in allow");
        net_conn_close(c, false);
        return;
    }
    if (l->guard.tls)
        guard_start_tls(l, c, &addr);
    else
        l->accept(l->ctx, c);
}

void net_listener_set_guard(struct net_listener *l, const struct net_guard *g)
{
    struct net_tls_ctx *old = l->guard.tls;

    l->guard = *g;
    if (l->guard.tls)
        net_tls_ctx_ref(l->guard.tls);
    if (old) /* handshakes under way hold their own reference */
        net_tls_ctx_unref(old);
    net_admit_set_limits(&l->admit, &g->limits);
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

/* uv_pipe_bind says EACCES when the socket's directory does not exist:
 * name the directory, which is what the admin has to create. */
static void unix_explain_dir(struct net_listener *l, char *why, size_t why_len)
{
    char dir[sizeof(l->ep.path)];
    char *slash;
    struct stat st;

    snprintf(dir, sizeof(dir), "%s", l->ep.path);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    if (stat(dir, &st) < 0 && errno == ENOENT)
        snprintf(why, why_len,
                 "cannot listen on %s: directory %s does not exist", l->name,
                 dir);
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
    if (rc == UV_EACCES) /* libuv reports a missing directory so too */
        unix_explain_dir(l, why, why_len);
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

static void on_closed_free(uv_handle_t *handle)
{
    struct net_listener *l = handle->data;

    net_admit_free(&l->admit);
    free(l);
}

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
    net_guard_init(&l->guard, l->name);
    net_admit_init(&l->admit, &l->guard.limits);
    list_init(&l->handshaking);
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
    while (!list_empty(&l->handshaking)) {
        struct guarded_conn *g =
            list_entry(l->handshaking.next, struct guarded_conn, node);
        struct net_conn *c = g->c;
        guarded_free(g);
        net_conn_set_owner(c, NULL, NULL);
        net_conn_close(c, false);
    }
    if (l->guard.tls)
        net_tls_ctx_unref(l->guard.tls);
    l->guard.tls = NULL;
    if (l->ep.is_unix)
        unlink(l->ep.path);
    uv_close(&l->u.handle, on_closed_free);
}

const char *net_listener_name(const struct net_listener *l) { return l->name; }
