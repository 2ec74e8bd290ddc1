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

void net__socket_flush(struct net_conn *c)
{
    struct write_batch *b;

    if (c->tls && c->phase == PHASE_OPEN)
        net__tls_seal(c);
    b = c->batch;
    if (!b)
        return;
    c->batch = NULL;
    int rc = uv_write(&b->req, &c->u.stream, b->bufs, b->n, on_written);
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
