/* SPDX-License-Identifier: MIT */
/* The local control socket: one request line per connection, answered by the
 * agent and closed. */
#include "control.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "log.h"
#include "net_conn.h"
#include "net_listener.h"
#include "strbuf.h"

#define CONTROL_MAX_CLIENTS 8          /* admins and scripts, not a crowd */
#define CONTROL_REQUEST_MAX 128        /* "status json\n" and friends */
#define CONTROL_CLIENT_TIMEOUT_MS 2000 /* a client that says nothing */
#define CONTROL_SOCKET_MODE 0660       /* root and the socket's group */

struct control_client {
    struct control_client *next;
    struct control_server *server; /* NULL once the server stopped */
    struct net_conn *conn;
    uv_timer_t timer;
    char request[CONTROL_REQUEST_MAX];
    size_t len;
    bool done;
};

struct control_server {
    uv_loop_t *loop;
    struct net_listener *listener;
    control_handler handler;
    void *ctx;
    unsigned clients;
    struct control_client *client_list;
};

static const struct net_conn_ops client_ops;

static void on_timer_closed(uv_handle_t *handle) { free(handle->data); }

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
    net_conn_close(cl->conn, graceful);
}

static void on_conn_closed(void *owner, struct net_conn *conn)
{
    struct control_client *cl = owner;
    (void)conn;
    uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
}

/* Answers one request line; the connection closes after the reply. */
static void client_answer(struct control_client *cl)
{
    struct strbuf reply = {0};

    cl->server->handler(cl->server->ctx, cl->request, &reply);
    if (!reply.failed && reply.data)
        net_conn_queue(cl->conn, reply.data, reply.len, NULL, NULL);
    else
        strbuf_free(&reply);
    client_close(cl, true);
}

static void on_data(void *owner, struct net_conn *conn, const uint8_t *data,
                    size_t len)
{
    struct control_client *cl = owner;
    (void)conn;

    if (cl->done)
        return;
    if (len > sizeof(cl->request) - 1 - cl->len) {
        client_close(cl, false); /* no request is this long */
        return;
    }
    memcpy(cl->request + cl->len, data, len);
    cl->len += len;
    cl->request[cl->len] = '\0';
    char *nl = strchr(cl->request, '\n');
    if (nl) {
        *nl = '\0';
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
    client_close(timer->data, false);
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
    cl->next = c->client_list;
    c->client_list = cl;
    c->clients++;
    uv_timer_init(c->loop, &cl->timer);
    cl->timer.data = cl;
    uv_timer_start(&cl->timer, on_client_timeout, CONTROL_CLIENT_TIMEOUT_MS, 0);
    net_conn_set_owner(conn, &client_ops, cl);
    net_conn_read_start(conn);
}

struct control_server *control_start(uv_loop_t *loop, const char *path,
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
    c->listener =
        net_listener_open(loop, &ep, CONTROL_MAX_CLIENTS, CONTROL_SOCKET_MODE,
                          on_accept, c, why, sizeof(why));
    if (!c->listener) {
        if (strstr(why, "in use by another program"))
            log_err("control socket %s: another redir-agent is running", path);
        else
            log_err("control socket %s", why);
        free(c);
        return NULL;
    }
    log_debug("control socket listening on %s", path);
    return c;
}

void control_stop(struct control_server *c)
{
    while (c->client_list)
        client_close(c->client_list, false);
    net_listener_close(c->listener);
    free(c);
}
