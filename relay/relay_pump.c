/* SPDX-License-Identifier: MIT */
/* The bytes between an attached agent and its chardev: lz4 frames on the
 * agent's side (when agreed), backpressure both ways (the side whose peer
 * does not drain is not read), byte counters. */
#include "relay_pump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_conn.h"
#include "relay_stash.h"
#include "stream_codec.h"

struct relay_pump {
    struct net_conn *agent, *chardev;
    bool lz4;
    bool done;                         /* reported; nothing more happens */
    bool agent_paused, chardev_paused; /* reading stopped: backpressure */
    struct relay_stash stash; /* agent bytes the chardev could not take */
    struct codec_sink sink;   /* the chardev, for the stash */
    struct codec_encoder enc; /* chardev -> agent */
    struct codec_decoder dec; /* agent -> chardev */
    uint8_t *fill;            /* raw pieces gathered for the chardev */
    size_t fill_len;
    struct relay_pump_counters n;
    relay_pump_done_fn on_done;
    void *owner;
};

static const struct net_conn_ops agent_ops, chardev_ops;

const struct relay_pump_counters *
relay_pump_counters(const struct relay_pump *p)
{
    return &p->n;
}

static void pump_done(struct relay_pump *p, const char *why)
{
    if (p->done)
        return;
    p->done = true;
    p->on_done(p->owner, why);
}

/* ---- chardev -> agent ---- */

static void emit_to_agent(void *ctx, uint8_t *frame, size_t len)
{
    struct relay_pump *p = ctx;
    p->n.to_agent += len;
    net_conn_queue(p->agent, frame, len, NULL, NULL);
}

static void pump_to_agent(struct relay_pump *p, const uint8_t *data, size_t len)
{
    p->n.from_chardev += len;
    if (p->lz4) {
        if (codec_encode(&p->enc, data, len, true, emit_to_agent, p) < 0) {
            pump_done(p, "out of memory");
            return;
        }
    } else {
        if (!net_conn_queue_copy(p->agent, data, len)) {
            pump_done(p, "out of memory");
            return;
        }
        p->n.to_agent += len;
    }
    net_conn_flush(p->agent);
    if (net_conn_congested(p->agent) && !p->chardev_paused) {
        p->chardev_paused = true;
        p->n.chardev_pauses++;
        net_conn_read_stop(p->chardev);
    }
}

/* ---- agent -> chardev ---- */

/* Raw pieces toward the chardev are gathered into blocks of FILL_BLOCK
 * bytes, and written blocks are kept for reuse (at most SPARE_BLOCKS for
 * the whole process, 1 MiB): a fresh 64 KiB malloc per read moved the
 * heap's top and faulted its pages in again (relay CPU per GiB of random
 * data through lz4 went from 1.8 s in 1 KiB copies to 4.5 s in one
 * malloc'ed copy per read). A session keeps no block between reads. */
#define FILL_BLOCK CODEC_MAX_CHUNK
#define SPARE_BLOCKS 16
/* Smaller pieces (interactive traffic, thousands of sessions at once) are
 * copied into a buffer of their own size: a 64 KiB block for each would
 * multiply the memory in flight. */
#define FILL_MIN (16u * 1024)

static uint8_t *spare_blocks[SPARE_BLOCKS];
static size_t n_spare_blocks;

static void release_block(void *ctx, void *base, size_t len)
{
    (void)ctx;
    (void)len;
    if (n_spare_blocks < SPARE_BLOCKS)
        spare_blocks[n_spare_blocks++] = base;
    else
        free(base);
}

static uint8_t *get_block(void)
{
    if (n_spare_blocks > 0)
        return spare_blocks[--n_spare_blocks];
    return malloc(FILL_BLOCK);
}

/* The gathered raw bytes go to the chardev's queue (before a flush). */
static void pump_queue_fill(struct relay_pump *p)
{
    if (!p->fill)
        return;
    net_conn_queue(p->chardev, p->fill, p->fill_len, release_block, NULL);
    p->fill = NULL;
    p->fill_len = 0;
}

static int deliver_to_chardev(void *ctx, const uint8_t *data, size_t len)
{
    struct relay_pump *p = ctx;

    p->n.to_chardev += len;
    if (!p->fill && len < FILL_MIN) /* a small read: a copy of its size */
        return net_conn_queue_copy(p->chardev, data, len) ? 0 : -1;
    while (len > 0) {
        if (!p->fill && !(p->fill = get_block()))
            return -1;
        size_t n = FILL_BLOCK - p->fill_len;
        n = n < len ? n : len;
        memcpy(p->fill + p->fill_len, data, n);
        p->fill_len += n;
        data += n;
        len -= n;
        if (p->fill_len == FILL_BLOCK)
            pump_queue_fill(p);
    }
    return 0;
}

/* A decoded lz4 block: queued as it is, freed once written. */
static int take_to_chardev(void *ctx, uint8_t *block, size_t len)
{
    struct relay_pump *p = ctx;

    pump_queue_fill(p); /* bytes stay in order */
    net_conn_queue(p->chardev, block, len, NULL, NULL);
    p->n.to_chardev += len;
    return 0;
}

static bool chardev_full(void *ctx)
{
    struct relay_pump *p = ctx;
    return net_conn_congested(p->chardev);
}

static void pump_decode_failed(struct relay_pump *p)
{
    char why[128];

    snprintf(why, sizeof(why), "bad lz4 stream from the agent: %s",
             p->dec.error ? p->dec.error : "out of memory");
    pump_done(p, why);
}

/* Stops reading the agent while the chardev's queue is full. */
static void pump_pause_agent(struct relay_pump *p)
{
    if (!p->agent_paused) {
        p->agent_paused = true;
        p->n.agent_pauses++;
        net_conn_read_stop(p->agent);
    }
}

static void pump_to_chardev(struct relay_pump *p, const uint8_t *data,
                            size_t len)
{
    p->n.from_agent += len;
    if (!p->lz4) {
        if (deliver_to_chardev(p, data, len) < 0) {
            pump_done(p, "out of memory");
            return;
        }
        pump_queue_fill(p);
        net_conn_flush(p->chardev);
        if (net_conn_congested(p->chardev))
            pump_pause_agent(p);
        return;
    }
    enum relay_stash_result rc =
        relay_stash_feed(&p->stash, &p->dec, data, len, &p->sink);
    if (rc == RELAY_STASH_ERROR) {
        pump_decode_failed(p);
        return;
    }
    pump_queue_fill(p);
    net_conn_flush(p->chardev);
    if (rc == RELAY_STASH_KEPT) /* the chardev is behind: read no more */
        pump_pause_agent(p);
}

/* ---- connection events ---- */

static void on_chardev_drained(void *owner, struct net_conn *c)
{
    struct relay_pump *p = owner;
    (void)c;

    enum relay_stash_result rc =
        relay_stash_resume(&p->stash, &p->dec, &p->sink);
    if (rc == RELAY_STASH_ERROR) {
        pump_decode_failed(p);
        return;
    }
    pump_queue_fill(p);
    net_conn_flush(p->chardev);
    if (rc == RELAY_STASH_KEPT)
        return; /* congested again */
    if (p->agent_paused && !net_conn_congested(p->chardev)) {
        p->agent_paused = false;
        net_conn_read_start(p->agent);
    }
}

static void on_agent_drained(void *owner, struct net_conn *c)
{
    struct relay_pump *p = owner;
    (void)c;

    if (p->chardev_paused) {
        p->chardev_paused = false;
        net_conn_read_start(p->chardev);
    }
}

static void on_agent_data(void *owner, struct net_conn *c, const uint8_t *data,
                          size_t len)
{
    (void)c;
    pump_to_chardev(owner, data, len);
}

static void on_chardev_data(void *owner, struct net_conn *c,
                            const uint8_t *data, size_t len)
{
    (void)c;
    pump_to_agent(owner, data, len);
}

static void on_agent_gone(void *owner, struct net_conn *c, int status)
{
    char why[128];
    (void)c;

    snprintf(why, sizeof(why), "agent connection %s",
             status == UV_EOF ? "closed" : uv_strerror(status));
    pump_done(owner, why);
}

static void on_chardev_gone(void *owner, struct net_conn *c, int status)
{
    char why[128];
    (void)c;

    snprintf(why, sizeof(why), "QEMU %s",
             status == UV_EOF ? "closed the chardev connection"
                              : uv_strerror(status));
    pump_done(owner, why);
}

static const struct net_conn_ops agent_ops = {
    .on_data = on_agent_data,
    .on_gone = on_agent_gone,
    .on_drained = on_agent_drained,
};

static const struct net_conn_ops chardev_ops = {
    .on_data = on_chardev_data,
    .on_gone = on_chardev_gone,
    .on_drained = on_chardev_drained,
};

struct relay_pump *relay_pump_start(struct net_conn *agent,
                                    struct net_conn *chardev, bool lz4,
                                    uint32_t buffer, relay_pump_done_fn done,
                                    void *owner)
{
    struct relay_pump *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->agent = agent;
    p->chardev = chardev;
    p->lz4 = lz4;
    p->on_done = done;
    p->owner = owner;
    p->sink = (struct codec_sink){deliver_to_chardev, chardev_full, p,
                                  take_to_chardev};
    codec_encoder_init(&p->enc);
    codec_decoder_init(&p->dec);
    net_conn_set_owner(agent, &agent_ops, p);
    net_conn_set_owner(chardev, &chardev_ops, p);
    net_conn_set_water(agent, buffer, buffer / 2);
    net_conn_set_water(chardev, buffer, buffer / 2);
    net_conn_read_start(chardev);
    net_conn_read_start(agent);
    return p;
}

void relay_pump_from_chardev(struct relay_pump *p, const uint8_t *data,
                             size_t len)
{
    if (len)
        pump_to_agent(p, data, len);
}

void relay_pump_free(struct relay_pump *p)
{
    net_conn_close(p->agent, true);
    net_conn_close(p->chardev, true);
    relay_stash_free(&p->stash);
    free(p->fill);
    codec_encoder_free(&p->enc);
    codec_decoder_free(&p->dec);
    free(p);
}
