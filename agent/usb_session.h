/* One redirected USB device: its libusb device, usbredirhost, peer connection
 * and state. */
#ifndef REDIR_USB_SESSION_H
#define REDIR_USB_SESSION_H

#include <libusb.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "backoff.h"
#include "relay_link.h"
#include "usb_mask.h"
#include "usb_rules.h"
#include "usbredir_stream.h"

struct usb_redirector;
struct usb_slot;
struct peer_conn;
struct usbredirhost;

enum usb_session_state {
    SESSION_WAIT_SLOT,  /* allowed, every slot is busy */
    SESSION_CONNECTING, /* connect mode: dialing the slot's peer */
    SESSION_WAIT_PEER,  /* listen mode: waiting for the peer to dial in */
    SESSION_RELAY,      /* connected to redir-relay: handshake */
    SESSION_HELLO,      /* connected; device still the host's until the
                           peer's usbredir hello arrives */
    SESSION_RUNNING,    /* usbredirhost is redirecting the device */
    SESSION_BACKOFF,    /* waiting before the next attempt */
    SESSION_CLOSING,    /* connection closing; next state decided after */
    SESSION_REJECTED,   /* the peer's filter refused it: kept until replug */
};

#define USB_SESSION_NAME_MAX 192

/* Throughput over the last second or so, updated as bytes flow. */
struct usb_rate {
    uint64_t window_start_ms;
    uint64_t window_bytes; /* counter value at window start */
    uint64_t bytes_per_s;  /* of the last full window */
};
#define USB_SESSION_MAX_BATCH 64 /* usbredir packets per writev */

struct usb_session {
    struct usb_session *next;
    struct usb_redirector *r;
    libusb_device *dev; /* referenced while the session lives */
    char name[USB_SESSION_NAME_MAX];
    enum usb_session_state state;
    enum usb_access access;
    bool device_present; /* false once libusb reported it left */
    bool rejected;       /* the peer's filter refused the device */
    bool withdrawn;      /* a reloaded policy no longer allows it */
    struct usb_slot *slot;

    struct peer_conn *conn;
    struct usbredirhost *host;
    uv_timer_t timer; /* backoff, or the peer's hello deadline */
    struct backoff backoff;
    uint64_t running_since_ms;
    unsigned failed_attempts;

    /* Input: the chunk being fed to usbredirhost by its read callback. */
    const uint8_t *in_data;
    size_t in_len, in_pos;
    size_t hello_bytes; /* bytes of the peer's hello header seen so far */
    uint8_t hello_header[12];
    bool hello_ok;
    bool reading_paused; /* backpressure: peer not draining our writes */

    /* Output: packets handed over by usbredirhost, sent as one writev. */
    uv_buf_t batch[USB_SESSION_MAX_BATCH];
    unsigned batch_len;
    bool in_flush, flush_deferred;
    uint64_t queued_bytes; /* accepted by us, not yet written to the socket */

    bool relay; /* the slot is a redir-relay target */
    struct relay_link link;
    bool masking; /* access is ro/wo: the stream goes via mask */
    struct usb_mask mask;
    struct usbredir_stream from_peer; /* packet boundaries, for counters */
    uint64_t bytes_from_peer, bytes_to_peer; /* on the wire / usbredir */
    uint64_t wire_bytes_to_peer;             /* after lz4, if any */
    uint64_t packets_to_peer;
    struct usb_rate rate_from_peer, rate_to_peer;
};

struct usb_session *usb_session_new(struct usb_redirector *r,
                                    libusb_device *dev, const char *name,
                                    enum usb_access access);

/* The redirector gave the session a slot: dial out, or wait for the peer. */
void usb_session_take_slot(struct usb_session *s, struct usb_slot *slot);

/* Listen mode: a peer connected to the session's slot. Takes ownership. */
void usb_session_peer_arrived(struct usb_session *s, struct peer_conn *c);

/* libusb reported the device gone. May free the session. */
void usb_session_device_left(struct usb_session *s);

/* Agent shutdown: hand the device back, close, free. */
void usb_session_shutdown(struct usb_session *s);

/* A reloaded policy keeps the device local now: end the session. Only for
 * sessions not redirecting yet (see usb_session_is_redirecting). */
void usb_session_withdraw(struct usb_session *s);

/* True from the first connection attempt's success until the end: such
 * sessions keep their decision across a reload. */
bool usb_session_is_redirecting(const struct usb_session *s);

/* Current throughput in bytes per second (0 when idle). */
uint64_t usb_rate_get(const struct usb_rate *rate, uint64_t now_ms);

const char *usb_session_state_name(enum usb_session_state state);

#endif
