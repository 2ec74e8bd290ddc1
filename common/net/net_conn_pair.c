/* SPDX-License-Identifier: MIT */
/* net_conn_pair(): two connection ends inside one process, no socket: a
 * flush hands the batch to the other end, whose uv_idle gives it to its
 * owner at the end of the loop turn (two system calls and a wakeup fewer
 * per chunk than a socketpair). */
#include <stdio.h>
#include <string.h>

#include "net_conn_int.h"

/* Reads handed out per idle pass before other handles get their turn. */
#define PAIR_READS_PER_PASS 16
/* An end whose owner does not read learns of the other end's close after
 * this long (as a socket's stall check notices a hang-up). */
#define PAIR_PEER_LOST_MS 1000

static void pair_idle(uv_idle_t *h);
static void pair_flush(struct net_conn *c);

/* Something waits for c's owner (bytes or the other end's EOF). */
static void pair_kick(struct net_conn *c)
{
    if (c->phase == PHASE_OPEN && c->reading && !c->gone &&
        (c->in_head || c->peer_closed))
        uv_idle_start(&c->u.idle, pair_idle);
}

static int pair_end_init(struct net_conn *c, uv_loop_t *loop, const char *name)
{
    int rc = uv_idle_init(loop, &c->u.idle);

    if (rc < 0)
        return rc;
    c->u.handle.data = c;
    c->stream_init = true;
    c->handles_open++;
    c->kind = &net__pair_kind;
    c->phase = PHASE_OPEN;
    snprintf(c->name, sizeof(c->name), "%s", name);
    return 0;
}

int net_conn_pair(uv_loop_t *loop, const char *name, struct net_conn *ends[2])
{
    struct net_conn *a = net__new(loop), *b = net__new(loop);
    int rc = a && b ? 0 : UV_ENOMEM;

    if (rc == 0)
        rc = pair_end_init(a, loop, name);
    if (rc == 0)
        rc = pair_end_init(b, loop, name);
    if (rc < 0) {
        for (int i = 0; i < 2; i++) {
            struct net_conn *c = i ? b : a;
            if (c) {
                c->phase = PHASE_CLOSING;
                net__close_handles(c);
            }
        }
        return rc;
    }
    a->peer = b;
    b->peer = a;
    ends[0] = a;
    ends[1] = b;
    return 0;
}

/* ---- the other end's batches ---- */

static void pair_batch_done(struct write_batch *b)
{
    struct net_conn *w = b->c;

    w->writes--;
    w->queued -= b->bytes;
    net__batch_release(b);
}

/* Drops what waits for c (c closed, or its writer is gone). */
static void pair_drop_in(struct net_conn *c)
{
    while (c->in_head) {
        struct write_batch *b = c->in_head;
        c->in_head = b->next;
        pair_batch_done(b);
    }
    c->in_tail = NULL;
    c->in_idx = 0;
    c->in_off = 0;
}

/* Copies up to cap waiting bytes to dst; emptied batches go back to
 * their writer. */
static size_t pair_take(struct net_conn *c, uint8_t *dst, size_t cap)
{
    size_t got = 0;

    while (c->in_head && got < cap) {
        struct write_batch *b = c->in_head;
        uv_buf_t *buf = &b->bufs[c->in_idx];
        size_t n = buf->len - c->in_off;
        n = n < cap - got ? n : cap - got;
        memcpy(dst + got, buf->base + c->in_off, n);
        got += n;
        c->in_off += n;
        b->bytes -= n;
        b->c->queued -= n;
        if (c->in_off == buf->len) {
            c->in_off = 0;
            c->in_idx++;
        }
        if (c->in_idx == b->n) {
            c->in_idx = 0;
            c->in_head = b->next;
            if (!c->in_head)
                c->in_tail = NULL;
            pair_batch_done(b);
        }
    }
    return got;
}

/* ---- the end of an end ---- */

static void on_peer_lost(uv_timer_t *timer)
{
    struct net_conn *c = timer->data;

    if (c->phase == PHASE_OPEN && !c->gone)
        net__report_gone(c, c->in_head ? UV_ECONNRESET : UV_EOF);
}

/* c is closed and nothing of its waits at the other end any more (or the
 * linger ran out): the other end reads EOF, c frees itself. */
static void pair_finish(struct net_conn *c)
{
    struct net_conn *p = c->peer;

    if (c->pair_done)
        return;
    c->pair_done = true;
    c->peer = NULL;
    uv_timer_stop(&c->timer);
    pair_drop_in(c);
    if (p) {
        p->peer = NULL;
        pair_drop_in(p); /* ours, if the linger ran out */
        p->peer_closed = true;
        if (p->phase == PHASE_CLOSING) {
            pair_finish(p);
        } else if (!p->gone) {
            pair_kick(p);
            if (!p->reading)
                uv_timer_start(&p->timer, on_peer_lost, PAIR_PEER_LOST_MS, 0);
        }
    }
    net__close_handles(c);
}

/* w's bytes were read: a closing w may finish, a congested one drain. */
static void pair_written(struct net_conn *w)
{
    if (!w)
        return;
    if (w->phase == PHASE_CLOSING) {
        if (!w->writes)
            pair_finish(w);
        return;
    }
    if (w->congested && w->queued <= w->low_water) {
        w->congested = false;
        if (w->ops && w->ops->on_drained)
            w->ops->on_drained(w->owner, w);
    }
}

static void on_linger_timeout(uv_timer_t *timer) { pair_finish(timer->data); }

static void pair_close(struct net_conn *c, bool graceful)
{
    if (c->phase == PHASE_CLOSING)
        return;
    c->phase = PHASE_CLOSING;
    c->reading = false;
    uv_timer_stop(&c->timer);
    uv_idle_stop(&c->u.idle);
    pair_drop_in(c); /* a closed socket discards what arrives, too */
    if (c->peer)
        pair_written(c->peer);
    if (graceful && c->peer && !c->failed && !c->write_error)
        pair_flush(c);
    else
        net__drop_batch(c);
    if (c->writes && c->peer) {
        uv_timer_start(&c->timer, on_linger_timeout, c->linger_ms, 0);
        net__lingers(c);
        return;
    }
    pair_finish(c);
}

/* ---- reading and writing ---- */

static void pair_read(struct net_conn *c, bool on)
{
    if (c->phase != PHASE_OPEN || c->gone || c->reading == on)
        return;
    c->reading = on;
    if (on) {
        uv_timer_stop(&c->timer); /* a lost peer is told as EOF now */
        pair_kick(c);
    } else {
        uv_idle_stop(&c->u.idle);
    }
}

static void pair_flush(struct net_conn *c)
{
    struct write_batch *b = c->batch;
    struct net_conn *p = c->peer;

    if (!b)
        return;
    c->batch = NULL;
    if (!p || p->phase != PHASE_OPEN || c->failed) { /* nobody reads it */
        c->queued -= b->bytes;
        net__batch_release(b);
        return;
    }
    b->next = NULL;
    if (p->in_tail)
        p->in_tail->next = b;
    else
        p->in_head = b;
    p->in_tail = b;
    c->writes++;
    pair_kick(p);
}

/* Where the next read lands: the owner's buffer or the shared one. */
static uv_buf_t pair_buf(struct net_conn *c)
{
    uv_buf_t buf = uv_buf_init((char *)net__read_buf(), NET_CONN_READ_BUF);

    if (c->ops && c->ops->on_alloc)
        c->ops->on_alloc(c->owner, c, &buf);
    return buf;
}

static void pair_idle(uv_idle_t *h)
{
    struct net_conn *c = h->data;

    uv_idle_stop(h);
    for (int i = 0; i < PAIR_READS_PER_PASS; i++) {
        if (c->phase != PHASE_OPEN || !c->reading || c->gone)
            return;
        if (!c->in_head) {
            if (c->peer_closed)
                net__report_gone(c, UV_EOF);
            return;
        }
        uv_buf_t buf = pair_buf(c);
        if (!buf.len) { /* the owner has no room now */
            c->reading = false;
            return;
        }
        size_t n = pair_take(c, (uint8_t *)buf.base, buf.len);
        pair_written(c->peer);
        if (c->phase == PHASE_OPEN && c->ops && c->ops->on_data)
            c->ops->on_data(c->owner, c, (const uint8_t *)buf.base, n);
    }
    pair_kick(c);
}

/* ---- the pair kind ---- */

static void pair_stop_delivery(struct net_conn *c) { uv_idle_stop(&c->u.idle); }

/* No socket to check: the other end says when it is gone. */
static void pair_watch_stall(struct net_conn *c) { (void)c; }

const struct net__kind net__pair_kind = {
    .read = pair_read,
    .flush = pair_flush,
    .close = pair_close,
    .stop_delivery = pair_stop_delivery,
    .watch_stall = pair_watch_stall,
    .end_linger = pair_finish,
    .tls = false,
};
