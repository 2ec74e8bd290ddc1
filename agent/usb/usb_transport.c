/* SPDX-License-Identifier: MIT */
/* A session's byte stream to its peer: a chardev (raw usbredir) or
 * redir-relay (handshake, then lz4 frames or raw bytes). The one place that
 * knows the relay's framing. */
#include "usb_transport.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay_proto.h"
#include "relay_secret.h"
#include "stream_codec.h"
#include "usb_counters.h"
#include "usb_heap.h"

/* Backpressure: stop reading guest requests while this much is unsent
 * (about 0.7 s of a 100 Mbit link), resume below the low mark. */
#define OUT_HIGH_WATER (8u << 20)
#define OUT_LOW_WATER (2u << 20)
/* What the kernel may hold unsent: without a limit its send buffer takes
 * up to 4 MiB, which usbredirhost cannot see, so a webcam on a slow link
 * lagged ~4 s instead of dropping late packets (bench/iso: 4.3 s -> 1.4 s
 * with 128 KiB). Unacknowledged data in flight is not limited by it. */
#define UNSENT_LIMIT (128 * 1024)
#define HOSTNAME_MAX 64

enum transport_phase {
    PHASE_DIALING,
    PHASE_OPEN,      /* a chardev, or the relay before start_relay */
    PHASE_HANDSHAKE, /* relay: hello sent, waiting for its answer */
    PHASE_STREAM,    /* usbredir bytes both ways */
    PHASE_CLOSED,
};

struct usb_transport {
    struct net_conn *conn;
    uv_loop_t *loop;
    enum transport_phase phase;
    enum usb_transport_kind kind;
    bool want_read;          /* the session reads */
    bool congested;          /* paused reading: the peer does not drain */
    bool compress;           /* lz4 frames: compress what we send */
    struct relay_client *hs; /* during the handshake only */
    struct codec_encoder enc;
    struct codec_decoder dec;
    uint8_t *stage; /* lz4: small packets gathered into one frame */
    size_t staged;
    struct usb_counters *counters;
    const struct usb_transport_ops *ops;
    void *owner;
};

static const struct net_conn_ops transport_conn_ops;

static struct usb_transport *transport_new(struct usb_counters *counters,
                                           const struct usb_transport_ops *ops,
                                           void *owner)
{
    struct usb_transport *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->counters = counters;
    t->ops = ops;
    t->owner = owner;
    t->kind = USB_TRANSPORT_DIRECT;
    codec_encoder_init(&t->enc);
    codec_decoder_init(&t->dec);
    return t;
}

/* Dialed or accepted, a transport's connection is tuned the same way. */
static void transport_conn_tune(struct net_conn *c)
{
    net_conn_set_water(c, OUT_HIGH_WATER, OUT_LOW_WATER);
    net_conn_set_unsent_limit(c, UNSENT_LIMIT);
    net_conn_set_sync_release(c, true); /* releases free usbredirhost's
                                           buffers, nothing more */
}

static void transport_conn_setup(struct usb_transport *t, struct net_conn *c)
{
    t->conn = c;
    net_conn_set_owner(c, &transport_conn_ops, t);
    transport_conn_tune(c);
}

struct usb_transport *
usb_transport_dial(uv_loop_t *loop, const struct endpoint *to,
                   struct net_tls_ctx *tls, const char *peer_name,
                   uint32_t timeout_ms, struct usb_counters *counters,
                   const struct usb_transport_ops *ops, void *owner)
{
    struct usb_transport *t = transport_new(counters, ops, owner);

    if (!t)
        return NULL;
    t->loop = loop;
    t->phase = PHASE_DIALING;
    t->conn = net_conn_connect(loop, to, timeout_ms, &transport_conn_ops, t);
    if (!t->conn) {
        free(t);
        return NULL;
    }
    transport_conn_tune(t->conn);
    if (tls && net_conn_start_tls(t->conn, tls, peer_name) < 0) {
        net_conn_set_owner(t->conn, NULL, NULL);
        net_conn_close(t->conn, false);
        free(t);
        return NULL;
    }
    return t;
}

struct usb_transport *usb_transport_adopt(uv_loop_t *loop, struct net_conn *c,
                                          struct usb_counters *counters,
                                          const struct usb_transport_ops *ops,
                                          void *owner)
{
    struct usb_transport *t = transport_new(counters, ops, owner);

    if (!t) {
        net_conn_close(c, false);
        return NULL;
    }
    t->loop = loop;
    transport_conn_setup(t, c);
    t->phase = PHASE_OPEN;
    return t;
}

const char *usb_transport_peer(const struct usb_transport *t)
{
    return net_conn_name(t->conn);
}

const char *usb_transport_error_detail(const struct usb_transport *t)
{
    return net_conn_tls_error(t->conn);
}

const char *usb_transport_peer_identity(const struct usb_transport *t)
{
    return net_conn_peer_identity(t->conn);
}

enum usb_transport_kind usb_transport_kind(const struct usb_transport *t)
{
    return t->kind;
}

const char *usb_transport_kind_name(enum usb_transport_kind kind)
{
    return kind == USB_TRANSPORT_RELAY_LZ4   ? "relay-lz4"
           : kind == USB_TRANSPORT_RELAY_RAW ? "relay-raw"
                                             : "raw";
}

size_t usb_transport_queued(const struct usb_transport *t)
{
    return net_conn_queued(t->conn);
}

/* ---- sending ---- */

static void queue_own(struct usb_transport *t, void *data, size_t len)
{
    t->counters->wire_bytes_to_peer += len;
    net_conn_queue(t->conn, data, len, NULL, NULL);
}

static void emit_frame(void *ctx, uint8_t *frame, size_t len)
{
    queue_own(ctx, frame, len);
}

static void encode(struct usb_transport *t, const uint8_t *data, size_t len)
{
    codec_encode(&t->enc, data, len, t->compress, emit_frame, t);
}

static void encode_staged(struct usb_transport *t)
{
    if (t->staged)
        encode(t, t->stage, t->staged);
    t->staged = 0;
}

/* lz4: small packets are gathered first so frames carry enough to
 * compress; the caller's buffer is released at once. */
static void send_encoded(struct usb_transport *t, void *data, size_t len)
{
    if (t->staged + len > CODEC_MAX_CHUNK)
        encode_staged(t);
    if (len >= CODEC_MAX_CHUNK)
        encode(t, data, len);
    else {
        memcpy(t->stage + t->staged, data, len);
        t->staged += len;
    }
}

/* Called for every packet usbredirhost and the mask send. */
void usb_transport_send(struct usb_transport *t, void *data, size_t len,
                        net_release_fn release, void *ctx)
{
    if (t->kind != USB_TRANSPORT_RELAY_LZ4 || t->phase != PHASE_STREAM) {
        t->counters->wire_bytes_to_peer += len;
        net_conn_queue(t->conn, data, len, release, ctx);
        return;
    }
    send_encoded(t, data, len);
    if (release)
        release(ctx, data, len);
    else
        free(data);
}

void usb_transport_flush(struct usb_transport *t)
{
    if (t->phase == PHASE_CLOSED)
        return;
    encode_staged(t);
    net_conn_flush(t->conn);
    usb_heap_traffic(t->loop); /* a store of the loop time */
    if (!t->congested && net_conn_congested(t->conn)) {
        t->congested = true;
        net_conn_read_stop(t->conn);
    }
}

/* ---- receiving ---- */

static void transport_fail(struct usb_transport *t, bool refused,
                           const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* refused: the relay said no (an expected answer, retried quietly);
 * otherwise its stream is broken. */
static void transport_fail(struct usb_transport *t, bool refused,
                           const char *fmt, ...)
{
    char why[RELAY_ERR_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    net_conn_read_stop(t->conn);
    t->want_read = false;
    t->ops->on_failed(t->owner, why, refused);
}

static int deliver_decoded(void *ctx, const uint8_t *data, size_t len)
{
    struct usb_transport *t = ctx;

    t->ops->on_data(t->owner, data, len);
    return t->phase == PHASE_STREAM && t->want_read ? 0 : -1;
}

/* Stream bytes off the socket: lz4 frames are unpacked. */
static void receive_stream(struct usb_transport *t, const uint8_t *data,
                           size_t len)
{
    if (t->kind != USB_TRANSPORT_RELAY_LZ4) {
        t->ops->on_data(t->owner, data, len);
        return;
    }
    if (codec_decode(&t->dec, data, len, deliver_decoded, t) < 0 &&
        t->dec.error)
        transport_fail(t, false, "corrupt lz4 frame from relay %s (%s)",
                       net_conn_name(t->conn), t->dec.error);
}

/* Sends what the handshake queued (our hello, our AUTH). */
static void send_handshake(struct usb_transport *t)
{
    if (t->hs->out_len == 0)
        return;
    if (net_conn_queue_copy(t->conn, t->hs->out, t->hs->out_len))
        t->counters->wire_bytes_to_peer += t->hs->out_len;
    relay_client_output_sent(t->hs);
    net_conn_flush(t->conn);
}

static void handshake_done(struct usb_transport *t)
{
    bool lz4 = t->hs->lz4;

    relay_client_free(t->hs);
    free(t->hs);
    t->hs = NULL;
    t->phase = PHASE_STREAM;
    t->kind = lz4 ? USB_TRANSPORT_RELAY_LZ4 : USB_TRANSPORT_RELAY_RAW;
    t->compress = t->compress && lz4;
    if (lz4 && !(t->stage = malloc(CODEC_MAX_CHUNK))) {
        transport_fail(t, false, "out of memory");
        return;
    }
    t->ops->on_ready(t->owner);
}

static void receive_handshake(struct usb_transport *t, const uint8_t *data,
                              size_t len)
{
    size_t consumed = 0;
    int rc = relay_client_feed(t->hs, data, len, &consumed);

    send_handshake(t);
    if (rc == RELAY_HS_NEED_MORE)
        return;
    if (rc == RELAY_HS_REFUSED) {
        transport_fail(t, true, "relay %s refused us: %s",
                       net_conn_name(t->conn), t->hs->reason);
        return;
    }
    if (rc != RELAY_HS_DONE) {
        transport_fail(t, true, "relay %s failed: %s", net_conn_name(t->conn),
                       t->hs->error);
        return;
    }
    handshake_done(t);
    if (t->phase == PHASE_STREAM && t->want_read && consumed < len)
        receive_stream(t, data + consumed, len - consumed);
}

static void on_conn_data(void *owner, struct net_conn *c, const uint8_t *data,
                         size_t len)
{
    struct usb_transport *t = owner;
    (void)c;

    usb_counters_from_peer(t->counters, len, uv_now(t->loop));
    if (t->phase == PHASE_HANDSHAKE)
        receive_handshake(t, data, len);
    else if (t->phase == PHASE_STREAM || t->phase == PHASE_OPEN)
        receive_stream(t, data, len);
}

/* ---- connection events ---- */

static void on_conn_connected(void *owner, struct net_conn *c, int status)
{
    struct usb_transport *t = owner;
    (void)c;

    if (status == 0)
        t->phase = PHASE_OPEN;
    t->ops->on_open(t->owner, status);
}

static void on_conn_drained(void *owner, struct net_conn *c)
{
    struct usb_transport *t = owner;

    t->congested = false;
    if (t->want_read)
        net_conn_read_start(c);
}

static void on_conn_gone(void *owner, struct net_conn *c, int status)
{
    struct usb_transport *t = owner;
    (void)c;
    t->ops->on_gone(t->owner, status);
}

static void on_conn_closed(void *owner, struct net_conn *c)
{
    struct usb_transport *t = owner;
    (void)c;

    t->ops->on_closed(t->owner);
    free(t->stage);
    free(t);
}

static const struct net_conn_ops transport_conn_ops = {
    .on_connected = on_conn_connected,
    .on_data = on_conn_data,
    .on_drained = on_conn_drained,
    .on_gone = on_conn_gone,
    .on_closed = on_conn_closed,
};

/* ---- control ---- */

void usb_transport_read_start(struct usb_transport *t)
{
    t->want_read = true;
    if (!t->congested)
        net_conn_read_start(t->conn);
}

/* The secret is read on every connection: a rotated key applies without a
 * restart, and it is wiped from memory as soon as the handshake has it. */
int usb_transport_start_relay(struct usb_transport *t,
                              const struct usb_relay_params *p, char *err,
                              size_t err_len)
{
    uint8_t secret[RELAY_SECRET_MAX];
    size_t secret_len = 0;
    char host[HOSTNAME_MAX] = "thin-client", why[RELAY_ERR_MAX];
    const char *id = p->agent_id;

    if (p->secret_file &&
        relay_secret_load(p->secret_file, secret, &secret_len, why) < 0) {
        snprintf(err, err_len, "%s", why);
        return -1;
    }
    if (!id) {
        gethostname(host, sizeof(host) - 1);
        id = host;
    }
    t->hs = calloc(1, sizeof(*t->hs));
    int rc = t->hs ? relay_client_init(t->hs, id, p->target, secret, secret_len,
                                       p->lz4)
                   : -1;
    sodium_memzero(secret, sizeof(secret));
    if (rc < 0) {
        snprintf(err, err_len, "%s", t->hs ? t->hs->error : "out of memory");
        if (t->hs)
            relay_client_free(t->hs);
        free(t->hs);
        t->hs = NULL;
        return -1;
    }
    t->compress = p->compress;
    t->kind = USB_TRANSPORT_RELAY_RAW;
    t->phase = PHASE_HANDSHAKE;
    send_handshake(t);
    return 0;
}

void usb_transport_close(struct usb_transport *t, bool graceful)
{
    if (t->phase == PHASE_CLOSED)
        return;
    if (graceful)
        encode_staged(t);
    t->phase = PHASE_CLOSED;
    t->want_read = false;
    if (t->hs) {
        relay_client_free(t->hs);
        free(t->hs);
        t->hs = NULL;
    }
    codec_encoder_free(&t->enc);
    codec_decoder_free(&t->dec);
    net_conn_close(t->conn, graceful);
}
