/* One redirected USB device: its libusb device, usbredirhost, peer connection
 * and state. */
#include "usb_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbredirhost.h>

#include "log.h"
#include "peer_conn.h"
#include "usb_mask_device.h"
#include "usb_redirector.h"
#include "usbredir_hello.h"
#include "version.h"

#define CONNECT_TIMEOUT_MS 10000 /* a SYN to a dead host would wait minutes */
/* A running QEMU sends its hello at once; a paused one only once resumed.
 * The device stays the host's meanwhile, so this only bounds how long a
 * silent peer keeps a connection. */
#define HELLO_TIMEOUT_MS 10000
/* The relay answers once it reached QEMU, which it allows 10 s itself. */
#define RELAY_HANDSHAKE_TIMEOUT_MS 20000
#define STABLE_SESSION_MS                                                      \
    10000 /* ran this long: next failure starts backoff over */
/* Backpressure: stop reading guest requests while this much is unsent
 * (about 0.7 s of a 100 Mbit link), resume below the low mark. */
#define OUT_HIGH_WATER (8u << 20)
#define OUT_LOW_WATER (2u << 20)

static const struct peer_conn_ops session_conn_ops;
static const struct usb_mask_ops session_mask_ops;
static void session_start_relay(struct usb_session *s);

static void session_attempt(struct usb_session *s);
static void session_fail(struct usb_session *s, bool graceful);

const char *usb_session_state_name(enum usb_session_state state)
{
    static const char *const names[] = {
        [SESSION_WAIT_SLOT] = "waiting-for-slot",
        [SESSION_CONNECTING] = "connecting",
        [SESSION_WAIT_PEER] = "waiting-for-peer",
        [SESSION_RELAY] = "relay-handshake",
        [SESSION_HELLO] = "waiting-for-hello",
        [SESSION_RUNNING] = "redirected",
        [SESSION_BACKOFF] = "retrying",
        [SESSION_CLOSING] = "closing",
        [SESSION_REJECTED] = "rejected-by-peer",
    };
    return names[state];
}

#define RATE_WINDOW_MS 1000

/* Called from both data directions as bytes are counted. */
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

uint64_t usb_rate_get(const struct usb_rate *rate, uint64_t now_ms)
{
    return now_ms - rate->window_start_ms > 2 * RATE_WINDOW_MS
               ? 0
               : rate->bytes_per_s;
}

struct usb_session *usb_session_new(struct usb_redirector *r,
                                    libusb_device *dev, const char *name,
                                    enum usb_access access)
{
    struct usb_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->r = r;
    s->dev = libusb_ref_device(dev);
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->state = SESSION_WAIT_SLOT;
    s->access = access;
    s->device_present = true;
    uv_timer_init(r->loop, &s->timer);
    s->timer.data = s;
    backoff_init(&s->backoff, r->cfg->reconnect_min_ms,
                 r->cfg->reconnect_max_ms);
    return s;
}

static void on_session_timer_closed(uv_handle_t *handle)
{
    struct usb_session *s = handle->data;
    struct usb_redirector *r = s->r;

    libusb_unref_device(s->dev);
    free(s);
    usb_redirector_session_closed(r);
}

/* Called once the session holds no connection and no usbredirhost. */
static void session_free(struct usb_session *s)
{
    uv_timer_stop(&s->timer);
    usb_redirector_forget(s->r, s);
    uv_close((uv_handle_t *)&s->timer, on_session_timer_closed);
}

/* ---- usbredirhost callbacks ---- */

static void host_log(void *priv, int level, const char *msg)
{
    struct usb_session *s = priv;
    /* usbredir's errors are often fallout of an unplug: report them as
     * warnings, and its warnings as info. */
    static const int map[] = {LOG_WARNING, LOG_WARNING, LOG_INFO,
                              LOG_DEBUG,   LOG_DEBUG,   LOG_DEBUG};
    int lvl = (level >= 0 && level <= 5) ? map[level] : LOG_DEBUG;
    log_msg(lvl, "%s: usbredir: %s", s->name, msg);
}

/* Called from usbredirhost_read_guest_data() only: hands over the chunk
 * that on_peer_data() is processing. */
static int host_read(void *priv, uint8_t *data, int count)
{
    struct usb_session *s = priv;
    size_t avail = s->in_len - s->in_pos;
    size_t n = (size_t)count < avail ? (size_t)count : avail;

    memcpy(data, s->in_data + s->in_pos, n);
    s->in_pos += n;
    return (int)n;
}

/* Called from usbredirhost_write_guest_data() only (see session_flush):
 * takes ownership of one packet; it is sent with the rest of the batch. */
static int host_write(void *priv, uint8_t *data, int count)
{
    struct usb_session *s = priv;

    if (!s->host)
        return 0; /* still inside usbredirhost_open: keep it queued */
    if (!s->conn) {
        usbredirhost_free_write_buffer(s->host, data);
        return count; /* nobody to send to any more */
    }
    if (s->batch_len == USB_SESSION_MAX_BATCH)
        return 0; /* sent after this batch; session_flush loops */
    if (s->masking)
        usb_mask_to_guest(&s->mask, data, (size_t)count);
    s->batch[s->batch_len++] = uv_buf_init((char *)data, (unsigned)count);
    return count;
}

static uint64_t host_buffered_output(void *priv)
{
    struct usb_session *s = priv;
    return s->queued_bytes;
}

static void on_batch_written(void *ctx, uv_buf_t *bufs, unsigned nbufs,
                             int status)
{
    struct usb_session *s = ctx;
    (void)status; /* failures reach the session through on_peer_gone */

    for (unsigned i = 0; i < nbufs; i++) {
        s->queued_bytes -= bufs[i].len;
        usbredirhost_free_write_buffer(s->host, (uint8_t *)bufs[i].base);
    }
    if (s->reading_paused && s->queued_bytes < OUT_LOW_WATER && s->conn &&
        s->state == SESSION_RUNNING) {
        s->reading_paused = false;
        peer_conn_read_start(s->conn);
    }
}

static void session_apply_backpressure(struct usb_session *s)
{
    if (!s->reading_paused && s->queued_bytes > OUT_HIGH_WATER) {
        s->reading_paused = true;
        peer_conn_read_stop(s->conn);
        log_debug("%s: peer is slow, pausing requests", s->name);
    }
}

static void on_own_written(void *ctx, uv_buf_t *bufs, unsigned nbufs,
                           int status)
{
    struct usb_session *s = ctx;
    (void)status; /* failures reach the session through on_peer_gone */

    for (unsigned i = 0; i < nbufs; i++) {
        s->queued_bytes -= bufs[i].len;
        free(bufs[i].base);
    }
    if (s->reading_paused && s->queued_bytes < OUT_LOW_WATER && s->conn &&
        s->state == SESSION_RUNNING) {
        s->reading_paused = false;
        peer_conn_read_start(s->conn);
    }
}

/* Sends a malloc'ed buffer of ours (relay handshake, mask replies, lz4
 * frames); it is freed once written. Called from many places. */
static void session_write_own(struct usb_session *s, uint8_t *data, size_t len)
{
    uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);

    if (!s->conn || peer_conn_write(s->conn, &buf, 1, on_own_written, s) < 0) {
        free(data);
        return;
    }
    s->queued_bytes += len;
    s->wire_bytes_to_peer += len;
    session_apply_backpressure(s);
}

static void emit_frame(void *ctx, uint8_t *frame, size_t len)
{
    session_write_own(ctx, frame, len);
}

/* Encodes what usbredirhost handed over into lz4 frames. Small packets are
 * gathered first so frames carry enough to compress. */
static void session_submit_encoded(struct usb_session *s)
{
    struct relay_link *l = &s->link;
    size_t staged = 0;

    for (unsigned i = 0; i < s->batch_len; i++) {
        const uint8_t *p = (const uint8_t *)s->batch[i].base;
        size_t n = s->batch[i].len;
        if (staged + n > sizeof(l->stage) && staged) {
            codec_encode(&l->enc, l->stage, staged, l->compress, emit_frame, s);
            staged = 0;
        }
        if (n >= sizeof(l->stage)) {
            codec_encode(&l->enc, p, n, l->compress, emit_frame, s);
        } else {
            memcpy(l->stage + staged, p, n);
            staged += n;
        }
        usbredirhost_free_write_buffer(s->host, (uint8_t *)s->batch[i].base);
    }
    if (staged)
        codec_encode(&l->enc, l->stage, staged, l->compress, emit_frame, s);
    s->batch_len = 0;
}

static void session_submit_batch(struct usb_session *s)
{
    uint64_t bytes = 0;

    if (!s->batch_len)
        return;
    for (unsigned i = 0; i < s->batch_len; i++)
        bytes += s->batch[i].len;
    s->bytes_to_peer += bytes;
    s->packets_to_peer += s->batch_len;
    usb_rate_update(&s->rate_to_peer, s->bytes_to_peer, uv_now(s->r->loop));
    if (s->relay && s->link.lz4) {
        session_submit_encoded(s);
        return;
    }
    s->queued_bytes += bytes;
    s->wire_bytes_to_peer += bytes;
    if (peer_conn_write(s->conn, s->batch, s->batch_len, on_batch_written, s) <
        0)
        on_batch_written(s, s->batch, s->batch_len, UV_ECANCELED);
    s->batch_len = 0;
    session_apply_backpressure(s);
}

/* Called from usbredirhost whenever it queued packets (libusb transfer
 * callbacks, set_device, read processing) and by the session itself. */
static void session_flush(struct usb_session *s)
{
    if (!s->host) {
        s->flush_deferred = true;
        return;
    }
    if (s->in_flush)
        return;
    s->in_flush = true;
    do {
        usbredirhost_write_guest_data(s->host);
        if (s->conn)
            session_submit_batch(s);
    } while (s->conn && usbredirhost_has_data_to_write(s->host));
    s->in_flush = false;
}

static void host_flush(void *priv) { session_flush(priv); }

/* ---- lifecycle ---- */

static void session_reset_streams(struct usb_session *s)
{
    s->in_data = NULL;
    s->in_len = s->in_pos = 0;
    s->hello_bytes = 0;
    s->hello_ok = false;
    s->reading_paused = false;
    s->batch_len = 0;
    s->flush_deferred = false;
    s->queued_bytes = 0;
    usbredir_stream_init(&s->from_peer);
}

/* Logs a failed attempt: a warning for the first of a streak, debug for
 * the repeats, so a peer that is down for an hour is not an hour of logs. */
static void session_log_failure(struct usb_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void session_log_failure(struct usb_session *s, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->failed_attempts++ == 0)
        log_warn("%s: %s; retrying every %u ms at most", s->name, msg,
                 s->r->cfg->reconnect_max_ms);
    else
        log_debug("%s: %s (attempt %u)", s->name, msg, s->failed_attempts);
}

static void on_retry_timer(uv_timer_t *timer) { session_attempt(timer->data); }

static void session_schedule_retry(struct usb_session *s)
{
    uint32_t delay = backoff_next(&s->backoff, (uint32_t)random());

    s->state = SESSION_BACKOFF;
    log_debug("%s: next attempt in %u ms", s->name, delay);
    uv_timer_start(&s->timer, on_retry_timer, delay, 0);
}

/* The connection is closed and usbredirhost gone: decide what comes next.
 * Called from the connection's close callback and from session_fail(). */
static void session_after_close(struct usb_session *s)
{
    struct usb_redirector *r = s->r;

    s->conn = NULL;
    if (s->host) {
        usbredirhost_close(s->host);
        s->host = NULL;
    }
    if (s->relay) {
        relay_link_free(&s->link);
        s->relay = false;
    }
    session_reset_streams(s);
    if (s->running_since_ms &&
        uv_now(r->loop) - s->running_since_ms >= STABLE_SESSION_MS)
        backoff_reset(&s->backoff);
    s->running_since_ms = 0;

    if (r->stopping || !s->device_present || s->withdrawn) {
        session_free(s);
    } else if (s->rejected) {
        s->state = SESSION_REJECTED;
        usb_redirector_release_slot(r, s);
    } else if (r->cfg->usb_mode == USB_PEER_CONNECT) {
        session_schedule_retry(s);
    } else {
        session_attempt(s);
    }
}

/* Hands the device back to the host and closes the connection; the next
 * state is chosen when the close completed. graceful: let the peer see
 * the device disconnect before the connection goes. */
static void session_fail(struct usb_session *s, bool graceful)
{
    uv_timer_stop(&s->timer);
    s->state = SESSION_CLOSING;
    if (s->host) {
        /* Releases the interfaces and reattaches kernel drivers now; queues
         * a device_disconnect for the peer. */
        usbredirhost_set_device(s->host, NULL);
        if (graceful)
            session_flush(s);
    }
    if (s->conn)
        peer_conn_close(s->conn, graceful);
    else
        session_after_close(s);
}

static void on_hello_timeout(uv_timer_t *timer)
{
    struct usb_session *s = timer->data;
    if (s->state == SESSION_RELAY)
        session_log_failure(s,
                            "relay %s did not finish the handshake "
                            "within %d s",
                            peer_conn_name(s->conn),
                            RELAY_HANDSHAKE_TIMEOUT_MS / 1000);
    else
        session_log_failure(s, "peer %s sent no usbredir hello within %d s",
                            peer_conn_name(s->conn), HELLO_TIMEOUT_MS / 1000);
    session_fail(s, false);
}

/* Sends what the handshake has for the relay. */
static void session_send_handshake(struct usb_session *s)
{
    struct relay_client *hs = &s->link.hs;
    uint8_t *copy;

    if (!hs->out_len)
        return;
    copy = malloc(hs->out_len);
    if (copy) {
        memcpy(copy, hs->out, hs->out_len);
        session_write_own(s, copy, hs->out_len);
    }
    relay_client_output_sent(hs);
}

/* Connected to redir-relay: prove who we are before anything else. */
static void session_start_relay(struct usb_session *s)
{
    const char *target = s->r->cfg->usb_slot_targets[s->slot->index - 1];
    char err[RELAY_ERR_MAX];

    if (relay_link_init(&s->link, s->r->cfg, target, err) < 0) {
        session_log_failure(s, "relay %s: %s", s->slot->name, err);
        session_fail(s, false);
        return;
    }
    s->relay = true;
    s->link.compress = !usb_device_is_isochronous(s->dev);
    s->state = SESSION_RELAY;
    uv_timer_start(&s->timer, on_hello_timeout, RELAY_HANDSHAKE_TIMEOUT_MS, 0);
    log_msg(s->failed_attempts ? LOG_DEBUG : LOG_INFO,
            "%s: connected to relay %s (slot %u, target %s); handshake",
            s->name, peer_conn_name(s->conn), s->slot->index, target);
    session_send_handshake(s);
}

/* Connected to a peer: wait for its hello before touching the device. */
static void session_start(struct usb_session *s, struct peer_conn *c)
{
    s->conn = c;
    peer_conn_set_owner(c, &session_conn_ops, s);
    session_reset_streams(s);
    uv_timer_start(&s->timer, on_hello_timeout, HELLO_TIMEOUT_MS, 0);
    peer_conn_read_start(c);
    if (s->r->cfg->usb_slot_targets[s->slot->index - 1][0]) {
        session_start_relay(s);
        return;
    }
    s->state = SESSION_HELLO;
    log_msg(s->failed_attempts ? LOG_DEBUG : LOG_INFO,
            "%s: connected to %s (slot %u); waiting for its usbredir hello",
            s->name, peer_conn_name(c), s->slot->index);
}

/* The peer said hello: take the device from the host and start usbredir.
 * Returns -1 if that failed (the session is failing then). */
static int session_claim_device(struct usb_session *s)
{
    struct usb_redirector *r = s->r;
    struct peer_conn *c = s->conn;
    libusb_device_handle *handle;

    s->masking = s->access != USB_ACCESS_RW;
    if (s->masking) {
        struct usb_mask_config mc;
        usb_mask_config_from_device(s->dev, s->access, &mc);
        usb_mask_init(&s->mask, &mc, &session_mask_ops, s);
    }
    int rc = libusb_open(s->dev, &handle);
    if (rc < 0) {
        log_warn("%s: cannot open the device: %s", s->name,
                 libusb_error_name(rc));
        if (rc == LIBUSB_ERROR_NO_DEVICE)
            s->device_present = false; /* the LEFT event is on its way */
        session_fail(s, false);
        return -1;
    }
    /* usbredirhost takes ownership of handle, and closes it on failure. */
    struct usbredirhost *host = usbredirhost_open_full(
        r->ctx, handle, host_log, host_read, host_write, host_flush, NULL, NULL,
        NULL, NULL, s, "redir-agent " REDIR_VERSION, r->cfg->usbredir_debug,
        usbredirhost_fl_write_cb_owns_buffer);
    if (!host) {
        log_warn("%s: cannot take the device from the host (claiming its "
                 "interfaces failed)",
                 s->name);
        session_fail(s, false);
        return -1;
    }
    s->host = host;
    usbredirhost_set_buffered_output_size_cb(host, host_buffered_output);
    s->state = SESSION_RUNNING;
    s->running_since_ms = uv_now(r->loop);
    char attempts[48] = "";
    if (s->failed_attempts)
        snprintf(attempts, sizeof(attempts), " after %u failed attempts",
                 s->failed_attempts);
    log_info("%s: redirected %s to %s (slot %u)%s", s->name,
             usb_access_name(s->access), peer_conn_name(c), s->slot->index,
             attempts);
    s->failed_attempts = 0;
    session_flush(s);
    return 0;
}

/* Called from the retry timer, when a slot is taken, and after a close. */
static void session_attempt(struct usb_session *s)
{
    struct usb_redirector *r = s->r;
    struct usb_slot *slot = s->slot;

    if (r->cfg->usb_mode == USB_PEER_CONNECT) {
        s->state = SESSION_CONNECTING;
        s->conn = peer_conn_connect(r->loop, &slot->addr, CONNECT_TIMEOUT_MS,
                                    &session_conn_ops, s);
        if (!s->conn) {
            log_warn("%s: cannot start connecting to %s", s->name, slot->name);
            session_schedule_retry(s);
        }
        return;
    }
    if (slot->parked) {
        struct peer_conn *c = slot->parked;
        slot->parked = NULL;
        session_start(s, c);
        return;
    }
    s->state = SESSION_WAIT_PEER;
    log_info("%s: waiting for the peer to connect to %s (slot %u)", s->name,
             slot->name, slot->index);
}

/* ---- connection callbacks ---- */

static void on_peer_connected(void *owner, struct peer_conn *c, int status)
{
    struct usb_session *s = owner;

    if (status == 0) {
        session_start(s, c);
        return;
    }
    session_log_failure(s, "cannot connect to %s: %s", s->slot->name,
                        uv_strerror(status));
    session_fail(s, false);
}

/* Judges the first bytes of the peer; keeps them in hello_header until the
 * header is complete. Returns false if the session failed. */
static bool session_check_hello(struct usb_session *s, const uint8_t *data,
                                size_t len)
{
    const char *why = NULL;
    size_t want = sizeof(s->hello_header) - s->hello_bytes;
    size_t n = len < want ? len : want;

    memcpy(s->hello_header + s->hello_bytes, data, n);
    s->hello_bytes += n;
    enum usbredir_hello_result res =
        usbredir_hello_check(s->hello_header, s->hello_bytes, &why);
    if (res == USBREDIR_HELLO_BAD) {
        session_log_failure(s, "peer %s is not a usbredir peer (%s)",
                            peer_conn_name(s->conn), why);
        session_fail(s, false);
        return false;
    }
    s->hello_ok = res == USBREDIR_HELLO_OK;
    return true;
}

/* Hands bytes from the peer to usbredirhost. Returns -1 if the session
 * failed. Called directly, or by the mask for what it lets through. */
static int session_feed_host(struct usb_session *s, const uint8_t *data,
                             size_t len)
{
    s->in_data = data;
    s->in_len = len;
    s->in_pos = 0;
    int rc = usbredirhost_read_guest_data(s->host);
    s->in_data = NULL;
    switch (rc) {
    case 0: return 0;
    case usbredirhost_read_device_rejected:
        log_notice("%s: peer %s refused the device (its filter); not offering "
                   "it again until it is replugged",
                   s->name, peer_conn_name(s->conn));
        s->rejected = true;
        session_fail(s, true);
        return -1;
    case usbredirhost_read_device_lost:
        log_notice("%s: device lost while redirected", s->name);
        session_fail(s, true);
        return -1;
    default:
        log_warn("%s: malformed usbredir data from peer %s; disconnecting",
                 s->name, peer_conn_name(s->conn));
        session_fail(s, false);
        return -1;
    }
}

static int mask_forward(void *ctx, const uint8_t *data, size_t len)
{
    return session_feed_host(ctx, data, len);
}

/* The mask answers the guest for the device: a packet of our own. */
static void mask_reply(void *ctx, uint8_t *packet, size_t len)
{
    struct usb_session *s = ctx;

    s->bytes_to_peer += len;
    s->packets_to_peer++;
    if (s->relay && s->link.lz4) {
        codec_encode(&s->link.enc, packet, len, s->link.compress, emit_frame,
                     s);
        free(packet);
        return;
    }
    session_write_own(s, packet, len);
}

static const struct usb_mask_ops session_mask_ops = {
    .forward = mask_forward,
    .reply = mask_reply,
};

/* One chunk from the peer, through the mask when access is restricted.
 * Returns -1 if the session failed. */
static int session_feed(struct usb_session *s, const uint8_t *data, size_t len)
{
    int rc;

    if (!s->masking) {
        rc = session_feed_host(s, data, len);
    } else {
        rc = usb_mask_from_guest(&s->mask, data, len);
        if (rc < 0 && s->mask.error) {
            log_warn("%s: malformed usbredir data from peer %s (%s); "
                     "disconnecting",
                     s->name, peer_conn_name(s->conn), s->mask.error);
            session_fail(s, false);
        }
    }
    if (rc == 0)
        session_flush(s);
    return rc;
}

/* First bytes from the peer: once its hello header is judged good, claim
 * the device, then feed what was held back and this chunk. */
static void session_on_hello_data(struct usb_session *s, const uint8_t *data,
                                  size_t len)
{
    size_t held = s->hello_bytes; /* bytes of earlier chunks, not fed yet */

    if (!session_check_hello(s, data, len) || !s->hello_ok)
        return;
    uv_timer_stop(&s->timer);
    if (session_claim_device(s) < 0)
        return;
    if (held && session_feed(s, s->hello_header, held) < 0)
        return;
    session_feed(s, data, len);
}

/* usbredir bytes from the peer, after any lz4 framing. Returns -1 once the
 * session stopped taking them. */
static int session_on_stream_data(struct usb_session *s, const uint8_t *data,
                                  size_t len)
{
    usbredir_stream_feed(&s->from_peer, data, len); /* counts packets */
    if (s->state == SESSION_HELLO)
        session_on_hello_data(s, data, len);
    else if (s->state == SESSION_RUNNING)
        session_feed(s, data, len);
    return s->state == SESSION_HELLO || s->state == SESSION_RUNNING ? 0 : -1;
}

static int deliver_decoded(void *ctx, const uint8_t *data, size_t len)
{
    return session_on_stream_data(ctx, data, len);
}

/* Bytes off the socket once any handshake is over. */
static void session_on_wire_data(struct usb_session *s, const uint8_t *data,
                                 size_t len)
{
    if (!(s->relay && s->link.lz4)) {
        session_on_stream_data(s, data, len);
        return;
    }
    if (codec_decode(&s->link.dec, data, len, deliver_decoded, s) < 0 &&
        s->link.dec.error) {
        log_warn("%s: corrupt lz4 frame from relay %s (%s); disconnecting",
                 s->name, peer_conn_name(s->conn), s->link.dec.error);
        session_fail(s, false);
    }
}

static void session_on_relay_data(struct usb_session *s, const uint8_t *data,
                                  size_t len)
{
    struct relay_client *hs = &s->link.hs;
    size_t consumed = 0;
    int rc = relay_client_feed(hs, data, len, &consumed);

    session_send_handshake(s);
    if (rc == RELAY_HS_NEED_MORE)
        return;
    if (rc != RELAY_HS_DONE) {
        session_log_failure(s, "relay %s %s: %s", peer_conn_name(s->conn),
                            rc == RELAY_HS_REFUSED ? "refused us" : "failed",
                            rc == RELAY_HS_REFUSED ? hs->reason : hs->error);
        session_fail(s, false);
        return;
    }
    s->link.handshaking = false;
    s->link.lz4 = hs->lz4;
    s->link.compress = s->link.compress && hs->lz4;
    s->state = SESSION_HELLO;
    uv_timer_start(&s->timer, on_hello_timeout, HELLO_TIMEOUT_MS, 0);
    log_msg(s->failed_attempts ? LOG_DEBUG : LOG_INFO,
            "%s: relay %s accepted us (%s); waiting for the VM's usbredir "
            "hello",
            s->name, peer_conn_name(s->conn),
            !hs->lz4           ? "raw"
            : s->link.compress ? "lz4"
                               : "lz4, not compressing"
                                 " isochronous data");
    if (consumed < len)
        session_on_wire_data(s, data + consumed, len - consumed);
}

static void on_peer_data(void *owner, struct peer_conn *c, const uint8_t *data,
                         size_t len)
{
    struct usb_session *s = owner;
    (void)c;

    s->bytes_from_peer += len;
    usb_rate_update(&s->rate_from_peer, s->bytes_from_peer, uv_now(s->r->loop));
    if (s->state == SESSION_RELAY)
        session_on_relay_data(s, data, len);
    else
        session_on_wire_data(s, data, len);
}

static void on_peer_gone(void *owner, struct peer_conn *c, int status)
{
    struct usb_session *s = owner;

    if (s->state != SESSION_RUNNING && s->state != SESSION_HELLO)
        return;
    if (s->state == SESSION_HELLO) {
        session_log_failure(s,
                            "peer %s closed the connection before its "
                            "hello: %s",
                            peer_conn_name(c), uv_strerror(status));
        session_fail(s, false);
        return;
    }
    if (status == UV_EOF)
        log_notice("%s: peer %s closed the connection", s->name,
                   peer_conn_name(c));
    else
        log_notice("%s: connection to peer %s lost: %s", s->name,
                   peer_conn_name(c), uv_strerror(status));
    session_fail(s, false);
}

static void on_peer_closed(void *owner, struct peer_conn *c)
{
    struct usb_session *s = owner;
    (void)c;
    session_after_close(s);
}

static const struct peer_conn_ops session_conn_ops = {
    .on_connected = on_peer_connected,
    .on_data = on_peer_data,
    .on_gone = on_peer_gone,
    .on_closed = on_peer_closed,
};

/* ---- entry points from the redirector ---- */

void usb_session_take_slot(struct usb_session *s, struct usb_slot *slot)
{
    s->slot = slot;
    slot->session = s;
    backoff_reset(&s->backoff);
    session_attempt(s);
}

void usb_session_peer_arrived(struct usb_session *s, struct peer_conn *c)
{
    if (s->state == SESSION_WAIT_PEER) {
        session_start(s, c);
        return;
    }
    /* A new connection while one is running: the peer restarted and the
     * old connection is stale. Switch once the old one is closed. */
    if (s->slot->parked)
        peer_conn_close(s->slot->parked, false);
    s->slot->parked = c;
    if (s->state == SESSION_RUNNING || s->state == SESSION_HELLO) {
        log_notice("%s: peer reconnected from %s; replacing the old connection",
                   s->name, peer_conn_name(c));
        session_fail(s, false);
    }
}

/* Called from the redirector for a hotplug LEFT event and at shutdown. */
static void session_end(struct usb_session *s)
{
    switch (s->state) {
    case SESSION_RUNNING: session_fail(s, true); break;
    case SESSION_CONNECTING: session_fail(s, false); break;
    case SESSION_CLOSING: break; /* session_after_close frees it */
    default: session_free(s); break;
    }
}

void usb_session_device_left(struct usb_session *s)
{
    s->device_present = false;
    if (s->state == SESSION_RUNNING)
        log_info("%s: unplugged; detaching it from peer %s", s->name,
                 peer_conn_name(s->conn));
    else
        log_info("%s: unplugged", s->name);
    session_end(s);
}

bool usb_session_is_redirecting(const struct usb_session *s)
{
    return s->state == SESSION_HELLO || s->state == SESSION_RUNNING ||
           s->state == SESSION_CLOSING;
}

void usb_session_withdraw(struct usb_session *s)
{
    s->withdrawn = true;
    session_end(s);
}

void usb_session_shutdown(struct usb_session *s)
{
    if (s->state == SESSION_RUNNING)
        log_info("%s: handing the device back to the host", s->name);
    session_end(s);
}
