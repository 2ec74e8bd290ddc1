/* SPDX-License-Identifier: MIT */
/* The bytes between an attached agent and its chardev: lz4 frames on the
 * agent's side (when agreed), backpressure both ways (the side whose peer
 * does not drain is not read), byte counters. */
#ifndef REDIR_RELAY_PUMP_H
#define REDIR_RELAY_PUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_conn;
struct relay_pump;

/* The pump ended: a side closed or failed, or the agent's stream is broken
 * (why, ready to log). */
typedef void (*relay_pump_done_fn)(void *owner, const char *why);

struct relay_pump_counters {
    uint64_t from_agent, to_chardev, from_chardev, to_agent; /* bytes */
    uint64_t agent_pauses, chardev_pauses; /* backpressure: reads stopped */
};

/* Takes both connections (the agent's may have queued handshake bytes)
 * and starts reading. buffer: bytes queued toward one side before its
 * other side is paused. NULL if out of memory. done may free the pump
 * (relay_pump_free) from inside any pump call. */
struct relay_pump *relay_pump_start(struct net_conn *agent,
                                    struct net_conn *chardev, bool lz4,
                                    uint32_t buffer, relay_pump_done_fn done,
                                    void *owner);

/* What the chardev sent before the pump started: on to the agent. */
void relay_pump_from_chardev(struct relay_pump *p, const uint8_t *data,
                             size_t len);

/* Closes both connections gracefully and frees the pump. */
void relay_pump_free(struct relay_pump *p);

const struct relay_pump_counters *
relay_pump_counters(const struct relay_pump *p);

#endif
