/* SPDX-License-Identifier: MIT */
/* The local control socket: one request line per connection, answered by the
 * agent and closed; or, for "events", kept open for a stream of lines. Each
 * request comes with the peer's credentials. */
#include "control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "endpoint.h"
#include "log.h"
#include "log_limit.h"
#include "net_conn.h"
#include "net_listener.h"
#include "strbuf.h"

#define CONTROL_MAX_CLIENTS 8          /* admins and scripts, not a crowd */
#define CONTROL_MAX_SUBSCRIBERS 16     /* tray applets, a broker */
#define CONTROL_CLIENT_TIMEOUT_MS 2000 /* a client that says nothing */
/* Events a subscriber has not read: past this it is cut off (a stuck
 * applet must not grow the agent). */
#define CONTROL_SUBSCRIBER_BACKLOG (256 * 1024)

struct control_client {
    struct control_client *next;
    struct control_server *server; /* NULL once the server stopped */
    struct net_conn *conn;
    uv_timer_t timer;
    char request[CONTROL_REQUEST_MAX + 2];
    size_t len;
    bool done;
    bool subscribed;
    int handles; /* the connection and the timer: freed when both closed */
};

struct control_server {
    uv_loop_t *loop;
    struct net_listener *listener;
    control_handler handler;
    void *ctx;
    unsigned clients, subscribers;
    struct control_client *client_list;
    struct log_limit cut_off;
};

static const struct net_conn_ops client_ops;

static void client_handle_closed(struct control_client *cl)
{
    if (--cl->handles == 0)
        free(cl);
}

static void on_timer_closed(uv_handle_t *handle)
{
    client_handle_closed(handle->data);
}

/* At once, not when the connection is gone: the agent's last walk over
 * the loop must not find the timer still open. */
static void client_close_timer(struct control_client *cl)
{
    if (!uv_is_closing((uv_handle_t *)&cl->timer))
        uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
}

static void client_unlink(struct control_client *cl)
{
    struct control_server *c = cl->server;

    if (!c)
        return;
    for (struct control_client **pp = &c->client_list; *pp; pp = &(*pp)->next)
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    if (cl->subscribed)
        c->subscribers--;
    else
        c->clients--;
    cl->server = NULL;
}

/* graceful: the reply queued goes out first. */
static void client_close(struct control_client *cl, bool graceful)
{
    if (cl->done)
        return;
    cl->done = true;
    client_unlink(cl);
    client_close_timer(cl);
    net_conn_close(cl->conn, graceful);
}

/* A last word to a client that broke the rules, then the door. */
static void client_refuse(struct control_client *cl, const char *why)
{
    char line[CONTROL_WHY_MAX + 16];
    int n = snprintf(line, sizeof(line), "error: %s\n", why);

    net_conn_queue_copy(cl->conn, line, (size_t)n);
    client_close(cl, true);
}

static void on_conn_closed(void *owner, struct net_conn *conn)
{
    struct control_client *cl = owner;
    (void)conn;
    cl->done = true;
    client_unlink(cl);
    client_close_timer(cl);
    client_handle_closed(cl);
}

/* Who is on the other end: SO_PEERCRED, and SO_PEERGROUPS where the
 * kernel has it (4.13). Unknown: nobody, which may only read. */
static void client_peer(struct control_client *cl, struct control_peer *peer)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int fd = net_conn_fileno(cl->conn);

    memset(peer, 0, sizeof(*peer));
    peer->uid = (uid_t)-1;
    peer->gid = (gid_t)-1;
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return;
    peer->uid = cred.uid;
    peer->gid = cred.gid;
#ifdef SO_PEERGROUPS
    len = sizeof(peer->groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, peer->groups, &len) == 0)
        peer->n_groups = len / sizeof(gid_t);
#endif
}

/* Answers one request line; the connection closes after the reply unless
 * it subscribed to events. */
static void client_answer(struct control_client *cl)
{
    struct control_server *c = cl->server;
    struct strbuf reply = {0};
    struct control_peer peer;

    client_peer(cl, &peer);
    enum control_outcome out = c->handler(c->ctx, cl->request, &peer, &reply);
    if (out == CONTROL_SUBSCRIBE && c->subscribers >= CONTROL_MAX_SUBSCRIBERS) {
        strbuf_free(&reply);
        client_refuse(cl, "too many event subscribers");
        return;
    }
    if (!reply.failed && reply.data)
        net_conn_queue(cl->conn, reply.data, reply.len, NULL, NULL);
    else
        strbuf_free(&reply);
    if (out == CONTROL_SUBSCRIBE) {
        uv_timer_stop(&cl->timer);
        cl->subscribed = true;
        c->clients--;
        c->subscribers++;
        net_conn_flush(cl->conn);
        return;
    }
    client_close(cl, true);
}

static void on_data(void *owner, struct net_conn *conn, const uint8_t *data,
                    size_t len)
{
    struct control_client *cl = owner;
    (void)conn;

    if (cl->done || cl->subscribed)
        return; /* a subscriber has nothing more to say */
    if (len > CONTROL_REQUEST_MAX + 1 - cl->len) {
        char why[64];
        snprintf(why, sizeof(why), "request longer than %d bytes",
                 CONTROL_REQUEST_MAX);
        client_refuse(cl, why);
        return;
    }
    memcpy(cl->request + cl->len, data, len);
    cl->len += len;
    cl->request[cl->len] = '\0';
    if (memchr(cl->request, '\0', cl->len)) {
        client_refuse(cl, "request contains a NUL byte");
        return;
    }
    char *nl = strchr(cl->request, '\n');
    if (nl) {
        *nl = '\0';
        if (nl > cl->request && nl[-1] == '\r')
            nl[-1] = '\0';
        client_answer(cl);
    }
}

static void on_gone(void *owner, struct net_conn *conn, int status)
{
    (void)conn;
    (void)status;
    client_close(owner, false);
}

static const struct net_conn_ops client_ops = {
    .on_data = on_data,
    .on_gone = on_gone,
    .on_closed = on_conn_closed,
};

static void on_client_timeout(uv_timer_t *timer)
{
    char why[96];

    snprintf(why, sizeof(why), "no complete request line within %d ms",
             CONTROL_CLIENT_TIMEOUT_MS);
    client_refuse(timer->data, why);
}

static void on_accept(void *ctx, struct net_conn *conn)
{
    struct control_server *c = ctx;
    struct control_client *cl = calloc(1, sizeof(*cl));

    if (!cl || c->clients >= CONTROL_MAX_CLIENTS) {
        free(cl);
        net_conn_close(conn, false);
        return;
    }
    cl->server = c;
    cl->conn = conn;
    cl->handles = 2;
    cl->next = c->client_list;
    c->client_list = cl;
    c->clients++;
    uv_timer_init(c->loop, &cl->timer);
    cl->timer.data = cl;
    uv_timer_start(&cl->timer, on_client_timeout, CONTROL_CLIENT_TIMEOUT_MS, 0);
    net_conn_set_owner(conn, &client_ops, cl);
    net_conn_read_start(conn);
}

void control_broadcast(struct control_server *c, const char *line, size_t len)
{
    struct control_client *cl, *next;
    char more[LOG_LIMIT_SUFFIX_MAX];
    unsigned repeats;

    for (cl = c->client_list; cl; cl = next) {
        next = cl->next;
        if (!cl->subscribed)
            continue;
        if (net_conn_queued(cl->conn) > CONTROL_SUBSCRIBER_BACKLOG) {
            if (log_limit_check(&c->cut_off, "slow subscriber", uv_now(c->loop),
                                &repeats))
                log_warn("control socket: an events subscriber has not "
                         "read %d KiB of events; hanging up on it%s",
                         CONTROL_SUBSCRIBER_BACKLOG / 1024,
                         log_limit_suffix(repeats, more, sizeof(more)));
            client_close(cl, false);
            continue;
        }
        net_conn_queue_copy(cl->conn, line, len);
        net_conn_flush(cl->conn);
    }
}

size_t control_subscribers(const struct control_server *c)
{
    return c->subscribers;
}

struct control_server *control_start(uv_loop_t *loop, const char *path,
                                     const struct control_socket_opts *opts,
                                     control_handler handler, void *ctx)
{
    struct control_server *c = calloc(1, sizeof(*c));
    struct endpoint ep = {.is_unix = true};
    char why[ENDPOINT_STR_MAX + 128];

    if (!c) {
        log_err("control socket %s: out of memory", path);
        return NULL;
    }
    c->loop = loop;
    c->handler = handler;
    c->ctx = ctx;
    snprintf(ep.path, sizeof(ep.path), "%s", path);
    c->listener = net_listener_open(loop, &ep, CONTROL_MAX_CLIENTS, opts->mode,
                                    on_accept, c, why, sizeof(why));
    if (!c->listener) {
        if (strstr(why, "in use by another program"))
            log_err("control socket %s: another redir-agent is running", path);
        else
            log_err("control socket %s", why);
        free(c);
        return NULL;
    }
    if (opts->group != (gid_t)-1 && chown(path, (uid_t)-1, opts->group) < 0) {
        log_err("control socket %s: cannot give it group %u: %s", path,
                (unsigned)opts->group, strerror(errno));
        net_listener_close(c->listener);
        free(c);
        return NULL;
    }
    log_debug("control socket listening on %s (mode %04o)", path, opts->mode);
    return c;
}

void control_stop(struct control_server *c)
{
    while (c->client_list)
        client_close(c->client_list, false);
    net_listener_close(c->listener);
    free(c);
}
