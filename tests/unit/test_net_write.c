/* SPDX-License-Identifier: MIT */
/* Writing on a socket connection (common/net/net_conn_write.c): with
 * net_conn_set_sync_release() a write the kernel takes whole completes
 * inside net_conn_flush (its buffer released there), a partial one sends
 * the rest later through libuv, in order, and every buffer is released
 * exactly once with the pointer and length it was queued with; without
 * it, nothing is released inside the flush. A real socketpair, the
 * other end read by the test. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "net_conn.h"

#define CHUNK 65536 /* one queued buffer */
#define CHUNKS 48   /* 3 MiB: far more than the socket buffers */
#define SMALL_SNDBUF 4096

struct released {
    void *base[CHUNKS + 1];
    size_t len[CHUNKS + 1];
    unsigned n;
};

static void on_release(void *ctx, void *base, size_t len)
{
    struct released *r = ctx;

    if (r->n < CHUNKS + 1) {
        r->base[r->n] = base;
        r->len[r->n] = len;
    }
    r->n++;
    free(base);
}

static uint8_t byte_at(size_t i) { return (uint8_t)(i * 131 + i / 251); }

static struct net_conn *adopt(uv_loop_t *loop, int *peer, bool sync)
{
    int sv[2];
    struct net_conn *c;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    int small = SMALL_SNDBUF;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    c = net_conn_adopt(loop, sv[0], "test");
    CHECK(c != NULL, "adopt");
    net_conn_set_sync_release(c, sync);
    *peer = sv[1];
    return c;
}

static void *chunk(size_t off, size_t len)
{
    uint8_t *p = malloc(len);
    for (size_t i = 0; i < len; i++)
        p[i] = byte_at(off + i);
    return p;
}

/* One small write on an empty socket: released inside the flush only
 * when the owner allows it. */
static void test_small(uv_loop_t *loop, bool sync)
{
    struct released r = {0};
    int peer;
    struct net_conn *c = adopt(loop, &peer, sync);
    uint8_t got[100];

    void *p = chunk(0, sizeof(got));
    net_conn_queue(c, p, sizeof(got), on_release, &r);
    net_conn_flush(c);
    CHECK(r.n == (sync ? 1u : 0u), "sync %d: %u released in the flush", sync,
          r.n);
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(r.n == 1 && r.base[0] == p && r.len[0] == sizeof(got),
          "released once, as queued");
    CHECK(read(peer, got, sizeof(got)) == (ssize_t)sizeof(got), "read");
    CHECK(got[0] == byte_at(0) && got[99] == byte_at(99), "bytes");
    net_conn_close(c, false);
    uv_run(loop, UV_RUN_NOWAIT);
    close(peer);
}

/* More than the socket holds: what the kernel took at once, the rest
 * through libuv as the test reads, in order, each buffer released once. */
static void test_partial(uv_loop_t *loop)
{
    struct released r = {0};
    int peer;
    struct net_conn *c = adopt(loop, &peer, true);
    size_t total = (size_t)CHUNK * CHUNKS, got = 0;
    uint8_t buf[CHUNK];
    void *queued[CHUNKS];
    bool in_order = true;

    for (unsigned i = 0; i < CHUNKS; i++) {
        queued[i] = chunk((size_t)i * CHUNK, CHUNK);
        net_conn_queue(c, queued[i], CHUNK, on_release, &r);
    }
    net_conn_flush(c);
    CHECK(r.n < CHUNKS, "all %u released though the socket is full", r.n);
    for (int spins = 0; got < total && spins < 1000000; spins++) {
        ssize_t n = read(peer, buf, sizeof(buf));
        for (ssize_t i = 0; i < n; i++)
            in_order &= buf[i] == byte_at(got + (size_t)i);
        if (n > 0)
            got += (size_t)n;
        uv_run(loop, UV_RUN_NOWAIT);
    }
    CHECK(got == total, "%zu of %zu bytes", got, total);
    CHECK(in_order, "bytes out of order or changed");
    uv_run(loop, UV_RUN_NOWAIT);
    CHECK(r.n == CHUNKS, "%u releases for %d buffers", r.n, CHUNKS);
    bool as_queued = r.n == CHUNKS;
    for (unsigned i = 0; as_queued && i < CHUNKS; i++)
        as_queued = r.base[i] == queued[i] && r.len[i] == CHUNK;
    CHECK(as_queued, "a release with another pointer or length");
    CHECK(net_conn_queued(c) == 0, "%zu still counted queued",
          net_conn_queued(c));
    net_conn_close(c, false);
    uv_run(loop, UV_RUN_NOWAIT);
    close(peer);
}

int main(void)
{
    uv_loop_t loop;

    uv_loop_init(&loop);
    test_small(&loop, true);
    test_small(&loop, false);
    test_partial(&loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0, "handles left open");
    return check_summary();
}
