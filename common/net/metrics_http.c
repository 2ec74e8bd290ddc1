/* SPDX-License-Identifier: MIT */
/* A Prometheus text endpoint: GET /metrics over HTTP/1.x on a TCP listener,
 * answered from the owner's render callback, one request per connection. */
#include "metrics_http.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "http_request.h"
#include "log.h"
#include "net_conn.h"
#include "net_listener.h"
#include "strbuf.h"

#define METRICS_MAX_CLIENTS 4 /* a Prometheus server or two, and a human */
#define METRICS_CLIENT_TIMEOUT_MS 5000 /* a client that sends no request */
#define METRICS_BACKLOG 4

struct metrics_client {
    struct metrics_client *next;
    struct metrics_http *server; /* NULL once the server stopped */
    struct net_conn *conn;
    uv_timer_t timer;
    char head[HTTP_HEAD_MAX];
    size_t len;
    bool done;
    int handles; /* the connection and the timer */
};

struct metrics_http {
    uv_loop_t *loop;
    struct net_listener *listener;
    metrics_render_fn render;
    void *ctx;
    unsigned clients;
    struct metrics_client *list;
};

static void client_handle_closed(struct metrics_client *cl)
{
    if (--cl->handles == 0)
        free(cl);
}

static void on_timer_closed(uv_handle_t *h) { client_handle_closed(h->data); }

static void client_close(struct metrics_client *cl, bool graceful)
{
    struct metrics_http *m = cl->server;

    if (cl->done)
        return;
    cl->done = true;
    if (m) {
        for (struct metrics_client **pp = &m->list; *pp; pp = &(*pp)->next)
            if (*pp == cl) {
                *pp = cl->next;
                break;
            }
        m->clients--;
        cl->server = NULL;
    }
    uv_close((uv_handle_t *)&cl->timer, on_timer_closed);
    net_conn_close(cl->conn, graceful);
}

static void respond(struct metrics_client *cl, const char *status,
                    const char *type, struct strbuf *body)
{
    struct strbuf out = {0};

    strbuf_printf(&out,
                  "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n%.*s",
                  status, type, body->len, (int)body->len,
                  body->data ? body->data : "");
    if (!out.failed && out.data)
        net_conn_queue(cl->conn, out.data, out.len, NULL, NULL);
    else
        strbuf_free(&out);
    client_close(cl, true);
}

static void answer(struct metrics_client *cl, const struct http_request *req)
{
    struct strbuf body = {0};

    if (strcmp(req->path, "/metrics") != 0) {
        strbuf_printf(&body, "only /metrics is here\n");
        respond(cl, "404 Not Found", "text/plain", &body);
    } else if (strcmp(req->method, "GET") != 0) {
        strbuf_printf(&body, "only GET\n");
        respond(cl, "405 Method Not Allowed", "text/plain", &body);
    } else {
        cl->server->render(cl->server->ctx, &body);
        respond(cl, body.failed ? "500 Internal Server Error" : "200 OK",
                "text/plain; version=0.0.4; charset=utf-8", &body);
    }
    strbuf_free(&body);
}

static void on_data(void *owner, struct net_conn *conn, const uint8_t *data,
                    size_t len)
{
    struct metrics_client *cl = owner;
    struct http_request req;
    (void)conn;

    if (cl->done || !cl->server)
        return;
    if (len > sizeof(cl->head) - cl->len) {
        client_close(cl, false); /* no scrape request is this long */
        return;
    }
    memcpy(cl->head + cl->len, data, len);
    cl->len += len;
    int rc = http_request_parse(cl->head, cl->len, &req);
    if (rc < 0) {
        struct strbuf body = {0};
        strbuf_printf(&body, "not an HTTP/1.x request\n");
        respond(cl, "400 Bad Request", "text/plain", &body);
        strbuf_free(&body);
    } else if (rc > 0) {
        answer(cl, &req);
    }
}

static void on_gone(void *owner, struct net_conn *conn, int status)
{
    (void)conn;
    (void)status;
    client_close(owner, false);
}

static void on_conn_closed(void *owner, struct net_conn *conn)
{
    (void)conn;
    client_handle_closed(owner);
}

static const struct net_conn_ops client_ops = {
    .on_data = on_data,
    .on_gone = on_gone,
    .on_closed = on_conn_closed,
};

static void on_timeout(uv_timer_t *t) { client_close(t->data, false); }

static void on_accept(void *ctx, struct net_conn *conn)
{
    struct metrics_http *m = ctx;
    struct metrics_client *cl = calloc(1, sizeof(*cl));

    if (!cl || m->clients >= METRICS_MAX_CLIENTS) {
        free(cl);
        net_conn_close(conn, false);
        return;
    }
    cl->server = m;
    cl->conn = conn;
    cl->handles = 2;
    cl->next = m->list;
    m->list = cl;
    m->clients++;
    uv_timer_init(m->loop, &cl->timer);
    cl->timer.data = cl;
    uv_timer_start(&cl->timer, on_timeout, METRICS_CLIENT_TIMEOUT_MS, 0);
    net_conn_set_owner(conn, &client_ops, cl);
    net_conn_read_start(conn);
}

struct metrics_http *metrics_http_start(uv_loop_t *loop,
                                        const struct hostport *addr,
                                        metrics_render_fn render, void *ctx)
{
    struct metrics_http *m = calloc(1, sizeof(*m));
    struct endpoint ep = {.tcp = *addr};
    char why[ENDPOINT_STR_MAX + 128], name[ENDPOINT_STR_MAX];

    if (!m) {
        log_err("metrics: out of memory");
        return NULL;
    }
    m->loop = loop;
    m->render = render;
    m->ctx = ctx;
    m->listener = net_listener_open(loop, &ep, METRICS_BACKLOG, 0, on_accept, m,
                                    why, sizeof(why));
    if (!m->listener) {
        log_err("metrics: %s", why);
        free(m);
        return NULL;
    }
    log_info("metrics: Prometheus endpoint on http://%s/metrics",
             endpoint_str(&ep, name, sizeof(name)));
    return m;
}

void metrics_http_stop(struct metrics_http *m)
{
    while (m->list)
        client_close(m->list, false);
    net_listener_close(m->listener);
    free(m);
}
