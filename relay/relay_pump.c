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
    struct relay_stash stash;     /* agent bytes the chardev could not take */
    struct relay_stash_sink sink; /* the chardev, for the stash */
    struct codec_encoder enc;     /* chardev -> agent */
    struct codec_decoder dec;     /* agent -> chardev */
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

static int deliver_to_chardev(void *ctx, const uint8_t *data, size_t len)
{
    struct relay_pump *p = ctx;

    if (!net_conn_queue_copy(p->chardev, data, len))
        return -1;
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
    p->sink = (struct relay_stash_sink){deliver_to_chardev, chardev_full, p};
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
    codec_encoder_free(&p->enc);
    codec_decoder_free(&p->dec);
    free(p);
}
