/* SPDX-License-Identifier: MIT */
/* A session's byte stream to its peer: a chardev (raw usbredir) or
 * redir-relay (handshake, then lz4 frames or raw bytes). The one place that
 * knows the relay's framing. */
#ifndef REDIR_USB_TRANSPORT_H
#define REDIR_USB_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net_conn.h"

struct net_tls_ctx;
struct usb_counters;
struct usb_transport;

/* What the transport tells its session; every callback gets the owner.
 * After usb_transport_close() only on_closed follows. */
struct usb_transport_ops {
    /* usb_transport_dial(): connected (0) or not (a libuv error) */
    void (*on_open)(void *owner, int status);
    /* the relay accepted us (relay transports only) */
    void (*on_ready)(void *owner);
    /* usbredir bytes from the peer, valid during the call */
    void (*on_data)(void *owner, const uint8_t *data, size_t len);
    /* the peer closed (UV_EOF) or the connection failed */
    void (*on_gone)(void *owner, int status);
    /* the relay refused us (refused) or sent something broken: why,
     * ready to log */
    void (*on_failed)(void *owner, const char *why, bool refused);
    /* after usb_transport_close(): nothing of the owner is referenced */
    void (*on_closed)(void *owner);
};

/* How to talk to a relay target. */
struct usb_relay_params {
    const char *target;
    const char *secret_file; /* NULL: none (TLS certificates) */
    const char *agent_id;    /* NULL: the host name */
    bool lz4;                /* ask for lz4 frames */
    bool compress;           /* and compress what we send (not isochronous) */
};

enum usb_transport_kind {
    USB_TRANSPORT_DIRECT,    /* a chardev: raw usbredir */
    USB_TRANSPORT_RELAY_RAW, /* redir-relay, raw after the handshake */
    USB_TRANSPORT_RELAY_LZ4, /* redir-relay, lz4 frames both ways */
};

/* Dials host:port, with TLS when tls is not NULL (the server's
 * certificate must carry peer_name); on_open reports the outcome, handshake
 * included, within timeout_ms. The counters (owned by the caller) count
 * bytes on the wire. NULL if it could not start. */
struct usb_transport *
usb_transport_dial(uv_loop_t *loop, const struct endpoint *to,
                   struct net_tls_ctx *tls, const char *peer_name,
                   uint32_t timeout_ms, struct usb_counters *counters,
                   const struct usb_transport_ops *ops, void *owner);

/* Why the connection failed beyond the libuv error (TLS: "certificate:
 * ..."), or NULL. */
const char *usb_transport_error_detail(const struct usb_transport *t);

/* The peer's verified certificate name (TLS), or NULL. */
const char *usb_transport_peer_identity(const struct usb_transport *t);

/* Takes an accepted connection (listen mode). NULL if out of memory (the
 * connection is closed then). */
struct usb_transport *usb_transport_adopt(uv_loop_t *loop, struct net_conn *c,
                                          struct usb_counters *counters,
                                          const struct usb_transport_ops *ops,
                                          void *owner);

/* Connected to a relay: loads the secret and sends our hello; on_ready or
 * on_failed follows. Returns 0, or -1 with why in err. */
int usb_transport_start_relay(struct usb_transport *t,
                              const struct usb_relay_params *p, char *err,
                              size_t err_len);

/* Reading the peer; paused on its own while the peer does not take what
 * we send (high water), resumed once it drained. */
void usb_transport_read_start(struct usb_transport *t);

/* Queues usbredir bytes for the peer; release(ctx, data, len) once they
 * are sent (or copied into a frame, or dropped). Sent at the flush. */
void usb_transport_send(struct usb_transport *t, void *data, size_t len,
                        net_release_fn release, void *ctx);
void usb_transport_flush(struct usb_transport *t);

/* Bytes accepted and not yet taken by the kernel. */
size_t usb_transport_queued(const struct usb_transport *t);

/* graceful: what is queued goes out first. on_closed follows; the
 * transport frees itself. */
void usb_transport_close(struct usb_transport *t, bool graceful);

const char *usb_transport_peer(const struct usb_transport *t);
enum usb_transport_kind usb_transport_kind(const struct usb_transport *t);
const char *usb_transport_kind_name(enum usb_transport_kind kind);

#endif
