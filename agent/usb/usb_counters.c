/* SPDX-License-Identifier: MIT */
/* A session's byte and packet counters and current rates, as "status"
 * shows them. */
#include "usb_counters.h"

#define RATE_WINDOW_MS 1000

static void usb_rate_update(struct usb_rate *rate, uint64_t counter,
                            uint64_t now_ms)
{
    uint64_t elapsed = now_ms - rate->window_start_ms;

    if (elapsed < RATE_WINDOW_MS)
        return;
    rate->bytes_per_s = elapsed < 2 * RATE_WINDOW_MS
                            ? (counter - rate->window_bytes) * 1000 / elapsed
                            : 0; /* a gap: the link was idle */
    rate->window_start_ms = now_ms;
    rate->window_bytes = counter;
}

uint64_t usb_counters_rate(const struct usb_rate *rate, uint64_t now_ms)
{
    return now_ms - rate->window_start_ms > 2 * RATE_WINDOW_MS
               ? 0
               : rate->bytes_per_s;
}

void usb_counters_from_peer(struct usb_counters *c, uint64_t len,
                            uint64_t now_ms)
{
    c->bytes_from_peer += len;
    usb_rate_update(&c->rate_from_peer, c->bytes_from_peer, now_ms);
}

void usb_counters_to_peer(struct usb_counters *c, uint64_t len,
                          uint64_t packets, uint64_t now_ms)
{
    c->bytes_to_peer += len;
    c->packets_to_peer += packets;
    usb_rate_update(&c->rate_to_peer, c->bytes_to_peer, now_ms);
}
