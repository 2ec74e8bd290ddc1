/* SPDX-License-Identifier: MIT */
/* net_conn_pair(): bytes in order both ways, reads of at most
 * NET_CONN_READ_BUF, paused reading holds bytes (water marks, on_drained),
 * a graceful close delivers what was queued before EOF, an abrupt one
 * reports EOF at once, a paused end learns of the close, no TLS, and an
 * idle pair leaves the loop with nothing to do. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check.h"
#include "net_conn.h"

/* Bytes sent in the bulk case: several full reads and batches. */
#define BULK (3 * NET_CONN_READ_BUF + 1234)

struct end {
    struct net_conn *c;
    uint8_t *got;
    size_t len, max_read, reads;
    int gone; /* 0, or the status on_gone reported */
    int drained, closed;
    bool bad_order;
};

static void on_data(void *owner, struct net_conn *c, const uint8_t *data,
                    size_t n)
{
    struct end *e = owner;
    (void)c;

    e->got = realloc(e->got, e->len + n);
    memcpy(e->got + e->len, data, n);
    if (e->gone)
        e->bad_order = true; /* bytes after EOF */
    e->len += n;
    e->reads++;
    if (n > e->max_read)
        e->max_read = n;
}

static void on_gone(void *owner, struct net_conn *c, int status)
{
    struct end *e = owner;
    (void)c;
    e->gone = status;
}

static void on_drained(void *owner, struct net_conn *c)
{
    struct end *e = owner;
    (void)c;
    e->drained++;
}

static void on_closed(void *owner, struct net_conn *c)
{
    struct end *e = owner;
    (void)c;
    e->closed++;
}

static const struct net_conn_ops ops = {
    .on_data = on_data,
    .on_gone = on_gone,
    .on_drained = on_drained,
    .on_closed = on_closed,
};

static void make(uv_loop_t *loop, struct end *a, struct end *b)
{
    struct net_conn *ends[2];

    memset(a, 0, sizeof(*a));
    memset(b, 0, sizeof(*b));
    CHECK(net_conn_pair(loop, "pair", ends) == 0, "pair");
    a->c = ends[0];
    b->c = ends[1];
    net_conn_set_owner(a->c, &ops, a);
    net_conn_set_owner(b->c, &ops, b);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131 + seed + (i >> 9));
    return p;
}

static void test_bulk(uv_loop_t *loop)
{
    struct end a, b;
    uint8_t *data = pattern(BULK, 7);

    make(loop, &a, &b);
    net_conn_read_start(b.c);
    net_conn_read_start(a.c);
    for (size_t off = 0; off < BULK; off += 1000) /* many small buffers */
        net_conn_queue_copy(a.c, data + off,
                            BULK - off < 1000 ? BULK - off : 1000);
    net_conn_flush(a.c);
    net_conn_queue_copy(b.c, "back", 4);
    net_conn_flush(b.c);
    CHECK(b.len == 0, "nothing before the loop turns");
    uv_run(loop, UV_RUN_NOWAIT);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(b.len == BULK && !memcmp(b.got, data, BULK), "bulk: %zu", b.len);
    CHECK(b.max_read <= NET_CONN_READ_BUF, "read of %zu", b.max_read);
    CHECK(b.reads < BULK / 1000, "small writes gathered: %zu reads", b.reads);
    CHECK(a.len == 4 && !memcmp(a.got, "back", 4), "other way");
    CHECK(net_conn_queued(a.c) == 0, "queued %zu", net_conn_queued(a.c));
    CHECK(net_conn_start_tls(a.c, NULL, NULL) == UV_ENOTSUP, "no TLS");
    CHECK(net_conn_fileno(a.c) == -1, "no descriptor");
    net_conn_close(a.c, true);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(b.gone == UV_EOF, "EOF after a close: %d", b.gone);
    net_conn_close(b.c, true);
    uv_run(loop, UV_RUN_DEFAULT); /* returns: nothing active is left */
    CHECK(a.closed == 1 && b.closed == 1, "closed %d %d", a.closed, b.closed);
    free(a.got);
    free(b.got);
    free(data);
}

/* Paused reading holds bytes: the writer congests at high water and
 * hears on_drained at low water once the reader takes them. */
static void test_backpressure(uv_loop_t *loop)
{
    struct end a, b;
    uint8_t *data = pattern(BULK, 3);

    make(loop, &a, &b);
    net_conn_set_water(a.c, 100000, 50000);
    net_conn_queue_copy(a.c, data, BULK);
    net_conn_flush(a.c);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(b.len == 0 && net_conn_queued(a.c) == BULK, "held while paused");
    CHECK(net_conn_congested(a.c), "congested");
    net_conn_read_start(b.c);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(b.len == BULK && !memcmp(b.got, data, BULK), "delivered");
    CHECK(a.drained == 1 && !net_conn_congested(a.c), "drained %d", a.drained);
    /* a graceful close while the reader is paused: delivered, then EOF */
    net_conn_read_stop(b.c);
    net_conn_queue_copy(a.c, "tail", 4);
    net_conn_close(a.c, true);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(b.len == BULK && !b.gone, "paused: nothing yet");
    net_conn_read_start(b.c);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(b.len == BULK + 4 && !memcmp(b.got + BULK, "tail", 4), "tail");
    CHECK(b.gone == UV_EOF && !b.bad_order, "then EOF: %d", b.gone);
    net_conn_close(b.c, false);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(a.closed == 1 && b.closed == 1, "closed %d %d", a.closed, b.closed);
    free(a.got);
    free(b.got);
    free(data);
}

/* An abrupt close drops what was queued; a paused other end still learns
 * of it (after PAIR_PEER_LOST_MS); its writes after that are dropped. */
static void test_abrupt(uv_loop_t *loop)
{
    struct end a, b;

    make(loop, &a, &b);
    net_conn_queue_copy(a.c, "lost", 4);
    net_conn_flush(a.c);
    net_conn_close(a.c, false);
    net_conn_queue_copy(b.c, "nobody", 6);
    net_conn_flush(b.c);
    CHECK(net_conn_queued(b.c) == 0, "dropped");
    uv_run(loop, UV_RUN_DEFAULT); /* the timer tells b */
    CHECK(b.len == 0 && b.gone == UV_EOF, "EOF while paused: %d", b.gone);
    CHECK(a.closed == 1, "closed");
    net_conn_close(b.c, true);
    uv_run(loop, UV_RUN_DEFAULT);
    CHECK(b.closed == 1, "closed");
    free(a.got);
    free(b.got);
}

int main(void)
{
    uv_loop_t loop;

    uv_loop_init(&loop);
    test_bulk(&loop);
    test_backpressure(&loop);
    test_abrupt(&loop);
    CHECK(uv_loop_close(&loop) == 0, "every handle closed");
    return check_summary();
}
