/* SPDX-License-Identifier: MIT */
/* Writing on a connection: buffers gathered into one writev, released
 * through their owner's callback once the kernel has them, and high/low
 * water backpressure. */
#include <stdlib.h>
#include <string.h>

#include "net_conn_int.h"

/* Spare write requests kept for the next flush: a busy connection would
 * otherwise malloc and free one per writev, which also moves the heap's
 * top (brk) up and down between the big payload buffers. One loop, one
 * thread: a plain list. */
#define SPARE_BATCHES 16

static struct write_batch *spare[SPARE_BATCHES];
static unsigned n_spare;

static struct write_batch *batch_get(void)
{
    return n_spare ? spare[--n_spare] : malloc(sizeof(struct write_batch));
}

static void batch_put(struct write_batch *b)
{
    if (n_spare < SPARE_BATCHES)
        spare[n_spare++] = b;
    else
        free(b);
}

void net_conn_set_water(struct net_conn *c, size_t high, size_t low)
{
    c->high_water = high;
    c->low_water = low < high ? low : high;
}

size_t net_conn_queued(const struct net_conn *c) { return c->queued; }

bool net_conn_congested(const struct net_conn *c) { return c->congested; }

void net__release(net_release_fn release, void *ctx, void *base, size_t len)
{
    if (release)
        release(ctx, base, len);
    else
        free(base);
}

void net__batch_release(struct write_batch *b)
{
    for (unsigned i = 0; i < b->n; i++)
        net__release(b->owners[i].release, b->owners[i].ctx, b->bufs[i].base,
                     b->bufs[i].len);
    batch_put(b);
}

void net__drop_batch(struct net_conn *c)
{
    struct write_batch *b = c->batch;

    if (!b)
        return;
    c->batch = NULL;
    c->queued -= b->bytes;
    net__batch_release(b);
}

static void on_written(uv_write_t *req, int status)
{
    struct write_batch *b = (struct write_batch *)req;
    struct net_conn *c = b->c;

    c->writes--;
    c->queued -= b->bytes;
    net__batch_release(b);
    if (c->phase == PHASE_CLOSING) {
        net__tell_closed(c);
        return;
    }
    if (status < 0) {
        net__report_gone(c, status);
        return;
    }
    if (c->congested && c->queued <= c->low_water) {
        c->congested = false;
        if (c->ops && c->ops->on_drained)
            c->ops->on_drained(c->owner, c);
    }
}

void net_conn_flush(struct net_conn *c) { c->kind->flush(c); }

void net_conn_set_sync_release(struct net_conn *c, bool on)
{
    c->sync_release = on;
}

/* What the kernel takes of b at once, when the owner allows releases
 * inside its flush and nothing is in flight (ordering): 0 otherwise, or
 * when the socket is full or failing (uv_write then waits or reports). */
static size_t socket_write_now(struct net_conn *c, struct write_batch *b)
{
    int n;

    if (!c->sync_release || c->tls || c->writes || c->phase != PHASE_OPEN)
        return 0;
    n = uv_try_write(&c->u.stream, b->bufs, b->n);
    return n > 0 ? (size_t)n : 0;
}

/* b's bytes from `done` on, as buffers for uv_write (which copies the
 * array; b keeps the original buffers for their release). */
static unsigned rest_of(const struct write_batch *b, size_t done,
                        uv_buf_t rest[BATCH_MAX])
{
    unsigned k = 0;

    for (unsigned i = 0; i < b->n; i++) {
        size_t len = b->bufs[i].len;
        if (done >= len) {
            done -= len;
            continue;
        }
        rest[k++] = uv_buf_init(b->bufs[i].base + done, (unsigned)(len - done));
        done = 0;
    }
    return k;
}

/* From net_conn_flush (the owner), net__queue_raw (a full batch) and the
 * TLS and closing paths. */
void net__socket_flush(struct net_conn *c)
{
    struct write_batch *b;
    uv_buf_t rest[BATCH_MAX];
    size_t done;

    if (c->tls && c->phase == PHASE_OPEN)
        net__tls_seal(c);
    b = c->batch;
    if (!b)
        return;
    c->batch = NULL;
    done = socket_write_now(c, b);
    if (done == b->bytes) {
        c->writes++; /* on_written's accounting, without a request */
        on_written(&b->req, 0);
        return;
    }
    unsigned n = rest_of(b, done, rest);
    int rc = uv_write(&b->req, &c->u.stream, rest, n, on_written);
    if (rc == 0) {
        c->writes++;
        return;
    }
    c->queued -= b->bytes;
    net__batch_release(b);
    net__fail_later(c, rc);
}

void net_conn_queue(struct net_conn *c, void *base, size_t len,
                    net_release_fn release, void *ctx)
{
    bool usable = !c->failed && !c->write_error;

    if (c->tls && usable && c->phase <= PHASE_OPEN)
        net__tls_hold(c, base, len, release, ctx); /* sealed at the flush */
    else
        net__queue_raw(c, base, len, release, ctx);
}

void net__queue_raw(struct net_conn *c, void *base, size_t len,
                    net_release_fn release, void *ctx)
{
    struct write_batch *b = c->batch;
    bool open = c->phase == PHASE_OPEN || c->phase == PHASE_HANDSHAKE;

    if (!open || c->failed || c->write_error) {
        net__release(release, ctx, base, len);
        return;
    }
    if (b && b->n == BATCH_MAX) {
        net_conn_flush(c);
        b = NULL;
    }
    if (!b) {
        b = batch_get();
        if (!b) {
            net__release(release, ctx, base, len);
            net__fail_later(c, UV_ENOMEM);
            return;
        }
        b->c = c;
        b->n = 0;
        b->bytes = 0;
        c->batch = b;
    }
    b->bufs[b->n] = uv_buf_init(base, (unsigned)len);
    b->owners[b->n] = (struct queued_buf){release, ctx};
    b->n++;
    b->bytes += len;
    c->queued += len;
    if (c->queued >= c->high_water)
        c->congested = true;
}

bool net_conn_queue_copy(struct net_conn *c, const void *data, size_t len)
{
    void *copy = malloc(len ? len : 1);

    if (!copy)
        return false;
    memcpy(copy, data, len);
    net_conn_queue(c, copy, len, NULL, NULL);
    return true;
}
