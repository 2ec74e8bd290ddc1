/* SPDX-License-Identifier: MIT */
/* A session's byte and packet counters and current rates, as "status"
 * shows them. */
#ifndef REDIR_USB_COUNTERS_H
#define REDIR_USB_COUNTERS_H

#include <stdint.h>

/* Throughput over the last second or so, updated as bytes flow. */
struct usb_rate {
    uint64_t window_start_ms;
    uint64_t window_bytes; /* counter value at window start */
    uint64_t bytes_per_s;  /* of the last full window */
};

struct usb_counters {
    uint64_t bytes_from_peer;    /* on the wire (lz4 frames, if any) */
    uint64_t bytes_to_peer;      /* usbredir bytes */
    uint64_t wire_bytes_to_peer; /* on the wire */
    uint64_t packets_to_peer, packets_from_peer;
    struct usb_rate rate_from_peer, rate_to_peer;
};

/* Counts len bytes more in one direction. Called from both data paths. */
void usb_counters_from_peer(struct usb_counters *c, uint64_t len,
                            uint64_t now_ms);
void usb_counters_to_peer(struct usb_counters *c, uint64_t len,
                          uint64_t packets, uint64_t now_ms);

/* Current throughput in bytes per second (0 when idle). */
uint64_t usb_counters_rate(const struct usb_rate *rate, uint64_t now_ms);

#endif
