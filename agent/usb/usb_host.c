/* SPDX-License-Identifier: MIT */
/* The device side of a session: the peer's usbredir stream judged (hello),
 * the device handed to usbredirhost once it said hello, everything the peer
 * sends passed through the access mask, what usbredirhost answers counted
 * and sent on. */
#include "usb_host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbredirhost.h>

#include "log.h"
#include "usb_counters.h"
#include "usb_device.h"
#include "usb_mask.h"
#include "usb_mask_device.h"
#include "usb_transport.h"
#include "usbredir_hello.h"
#include "usbredir_stream.h"
#include "version.h"

enum host_phase {
    HOST_HELLO,   /* judging the peer's first bytes */
    HOST_RUNNING, /* usbredirhost has the device */
    HOST_STOPPED, /* device given back; output goes nowhere */
};

struct usb_host {
    struct usb_host_params p;
    const struct usb_host_ops *ops;
    void *owner;
    enum host_phase phase;
    struct usbredirhost *host;
    bool in_flush;

    /* the peer's hello header, held until it is judged */
    uint8_t hello[USBREDIR_HELLO_HEADER_LEN];
    size_t hello_len;

    /* the chunk usbredirhost's read callback hands over */
    const uint8_t *in_data;
    size_t in_len, in_pos;

    /* guest -> host: walked once, by the mask (ro/wo) or by the counter */
    struct usb_mask *mask;    /* NULL: read-write */
    uint64_t refusals_logged; /* of the mask's refusals */
    uint64_t refusal_log_ms;  /* when they were last logged */
    struct usbredir_stream framing;
};

static const struct usb_mask_ops host_mask_ops;

struct usb_host *usb_host_new(const struct usb_host_params *p,
                              const struct usb_host_ops *ops, void *owner)
{
    struct usb_host *h = calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    h->p = *p;
    h->ops = ops;
    h->owner = owner;
    h->phase = HOST_HELLO;
    usbredir_stream_init(&h->framing);
    return h;
}

/* ---- usbredirhost callbacks ---- */

static void host_log(void *priv, int level, const char *msg)
{
    struct usb_host *h = priv;
    /* usbredir's errors are often fallout of an unplug: report them as
     * warnings, and its warnings as info. */
    static const int map[] = {LOG_WARNING, LOG_WARNING, LOG_INFO,
                              LOG_DEBUG,   LOG_DEBUG,   LOG_DEBUG};
    int lvl = (level >= 0 && level <= 5) ? map[level] : LOG_DEBUG;
    log_msg(lvl, "%s: usbredir: %s", h->p.name, msg);
}

/* Called from usbredirhost_read_guest_data() only: hands over the chunk
 * that host_feed_usbredirhost() is processing. */
static int host_read(void *priv, uint8_t *data, int count)
{
    struct usb_host *h = priv;
    size_t avail = h->in_len - h->in_pos;
    size_t n = (size_t)count < avail ? (size_t)count : avail;

    memcpy(data, h->in_data + h->in_pos, n);
    h->in_pos += n;
    return (int)n;
}

static void release_host_buffer(void *ctx, void *base, size_t len)
{
    struct usb_host *h = ctx;
    (void)len;
    usbredirhost_free_write_buffer(h->host, base);
}

/* Called from usbredirhost_write_guest_data() only (see host_flush): takes
 * ownership of one packet, counted and patched by the mask on the way. */
static int host_write(void *priv, uint8_t *data, int count)
{
    struct usb_host *h = priv;

    if (!h->host)
        return 0; /* still inside usbredirhost_open: keep it queued */
    if (h->phase == HOST_STOPPED) {
        usbredirhost_free_write_buffer(h->host, data);
        return count; /* nobody to send to any more */
    }
    if (h->mask)
        usb_mask_to_guest(h->mask, data, (size_t)count);
    usb_counters_to_peer(h->p.counters, (uint64_t)count, 1, uv_now(h->p.loop));
    usb_transport_send(h->p.out, data, (size_t)count, release_host_buffer, h);
    return count;
}

static uint64_t host_buffered_output(void *priv)
{
    struct usb_host *h = priv;
    return usb_transport_queued(h->p.out);
}

/* Called from usbredirhost whenever it queued packets (libusb transfer
 * callbacks, set_device, read processing) and by the host itself. */
static void host_flush(void *priv)
{
    struct usb_host *h = priv;

    if (!h->host)
        return; /* inside usbredirhost_open: host_claim flushes after */
    if (h->in_flush)
        return;
    h->in_flush = true;
    do {
        usbredirhost_write_guest_data(h->host);
    } while (h->phase != HOST_STOPPED &&
             usbredirhost_has_data_to_write(h->host));
    h->in_flush = false;
    if (h->phase != HOST_STOPPED)
        usb_transport_flush(h->p.out);
}

/* ---- the device ---- */

/* The peer said hello: take the device from the host and start usbredir.
 * Returns -1 if that failed (the host reported why). */
static int host_claim(struct usb_host *h)
{
    libusb_device_handle *handle;

    if (h->p.access != USB_ACCESS_RW) {
        struct usb_mask_config mc;
        usb_mask_device_config(h->p.dev, h->p.access, &mc);
        h->mask = usb_mask_new(&mc, &host_mask_ops, h);
        if (!h->mask) {
            log_err("%s: out of memory", h->p.name);
            h->ops->on_failed(h->owner, USB_HOST_ERROR, NULL);
            return -1;
        }
    }
    int rc = libusb_open(h->p.dev, &handle);
    if (rc < 0) {
        log_warn("%s: cannot open the device: %s", h->p.name,
                 libusb_error_name(rc));
        h->ops->on_failed(h->owner,
                          rc == LIBUSB_ERROR_NO_DEVICE ? USB_HOST_DEVICE_GONE
                                                       : USB_HOST_ERROR,
                          NULL);
        return -1;
    }
    /* usbredirhost takes ownership of handle, and closes it on failure. */
    h->host = usbredirhost_open_full(
        h->p.ctx, handle, host_log, host_read, host_write, host_flush, NULL,
        NULL, NULL, NULL, h, "redir-agent " REDIR_VERSION, h->p.usbredir_debug,
        usbredirhost_fl_write_cb_owns_buffer);
    if (!h->host) {
        log_warn("%s: cannot take the device from the host (claiming its "
                 "interfaces failed)",
                 h->p.name);
        h->ops->on_failed(h->owner, USB_HOST_ERROR, NULL);
        return -1;
    }
    usbredirhost_set_buffered_output_size_cb(h->host, host_buffered_output);
    h->phase = HOST_RUNNING;
    h->ops->on_claimed(h->owner);
    if (h->phase != HOST_RUNNING)
        return -1;
    host_flush(h);
    return 0;
}

/* Hands bytes to usbredirhost. Returns -1 if the host failed. Called
 * directly, or by the mask for what it lets through. */
static int host_feed_usbredirhost(struct usb_host *h, const uint8_t *data,
                                  size_t len)
{
    h->in_data = data;
    h->in_len = len;
    h->in_pos = 0;
    int rc = usbredirhost_read_guest_data(h->host);
    h->in_data = NULL;
    switch (rc) {
    case 0: return 0;
    case usbredirhost_read_device_rejected:
        log_notice("%s: peer %s refused the device (its filter); not offering "
                   "it again until it is replugged",
                   h->p.name, h->p.peer);
        h->ops->on_failed(h->owner, USB_HOST_REJECTED, NULL);
        return -1;
    case usbredirhost_read_device_lost:
        log_notice("%s: device lost while redirected", h->p.name);
        h->ops->on_failed(h->owner, USB_HOST_DEVICE_GONE, NULL);
        return -1;
    default:
        log_warn("%s: malformed usbredir data from peer %s; disconnecting",
                 h->p.name, h->p.peer);
        h->ops->on_failed(h->owner, USB_HOST_ERROR, NULL);
        return -1;
    }
}

static int mask_forward(void *ctx, const uint8_t *data, size_t len)
{
    return host_feed_usbredirhost(ctx, data, len);
}

/* The mask answers the guest for the device: a packet of our own. */
static void mask_reply(void *ctx, uint8_t *packet, size_t len)
{
    struct usb_host *h = ctx;

    usb_counters_to_peer(h->p.counters, len, 1, uv_now(h->p.loop));
    usb_transport_send(h->p.out, packet, len, NULL, NULL);
}

static const struct usb_mask_ops host_mask_ops = {
    .forward = mask_forward,
    .reply = mask_reply,
};

/* A guest that keeps trying what its access forbids should not fill the
 * log: the first refusal is logged at once, more at most this often. */
#define REFUSAL_LOG_INTERVAL_MS 60000

static void log_refusals(struct usb_host *h, const struct usb_mask_stats *st)
{
    uint64_t total = st->refused_commands + st->refused_packets;
    uint64_t now = uv_now(h->p.loop);

    if (total == h->refusals_logged ||
        (h->refusals_logged &&
         now - h->refusal_log_ms < REFUSAL_LOG_INTERVAL_MS))
        return;
    log_notice("%s: refused what %s access does not allow: %llu commands, "
               "%llu transfers or requests from peer %s so far",
               h->p.name, usb_access_name(h->p.access),
               (unsigned long long)st->refused_commands,
               (unsigned long long)st->refused_packets, h->p.peer);
    h->refusals_logged = total;
    h->refusal_log_ms = now;
}

/* One chunk from the peer, through the mask when access is restricted. */
static int host_feed_running(struct usb_host *h, const uint8_t *data,
                             size_t len)
{
    int rc;

    if (!h->mask) {
        usbredir_stream_feed(&h->framing, data, len); /* counts packets */
        h->p.counters->packets_from_peer = h->framing.packets;
        rc = host_feed_usbredirhost(h, data, len);
    } else {
        struct usb_mask_stats st;
        rc = usb_mask_from_guest(h->mask, data, len);
        usb_mask_stats(h->mask, &st);
        h->p.counters->packets_from_peer = st.packets;
        log_refusals(h, &st);
        if (rc < 0 && usb_mask_error(h->mask)) {
            log_warn("%s: malformed usbredir data from peer %s (%s); "
                     "disconnecting",
                     h->p.name, h->p.peer, usb_mask_error(h->mask));
            h->ops->on_failed(h->owner, USB_HOST_ERROR, NULL);
        }
    }
    if (rc == 0 && h->phase == HOST_RUNNING)
        host_flush(h);
    return h->phase == HOST_RUNNING ? 0 : -1;
}

/* Judges the first bytes of the peer, held until the header is complete;
 * once it is good, claims the device and feeds what was held. */
static int host_feed_hello(struct usb_host *h, const uint8_t *data, size_t len)
{
    size_t held = h->hello_len;
    size_t want = sizeof(h->hello) - held;
    size_t n = len < want ? len : want;
    const char *why = NULL;

    memcpy(h->hello + held, data, n);
    h->hello_len += n;
    enum usbredir_hello_result res =
        usbredir_hello_check(h->hello, h->hello_len, &why);
    if (res == USBREDIR_HELLO_BAD) {
        h->ops->on_failed(h->owner, USB_HOST_PEER_FAILED, why);
        return -1;
    }
    if (res == USBREDIR_HELLO_NEED_MORE)
        return 0;
    if (host_claim(h) < 0)
        return -1;
    if (held && host_feed_running(h, h->hello, held) < 0)
        return -1;
    return host_feed_running(h, data, len);
}

int usb_host_feed(struct usb_host *h, const uint8_t *data, size_t len)
{
    switch (h->phase) {
    case HOST_HELLO: return host_feed_hello(h, data, len);
    case HOST_RUNNING: return host_feed_running(h, data, len);
    default: return -1;
    }
}

void usb_host_stop(struct usb_host *h, bool graceful)
{
    bool was_running = h->phase == HOST_RUNNING;

    if (h->phase == HOST_STOPPED)
        return;
    h->phase = HOST_STOPPED;
    if (!was_running || !h->host)
        return;
    /* Releases the interfaces and reattaches kernel drivers now; queues a
     * device_disconnect for the peer, which a graceful stop sends. */
    if (graceful)
        h->phase = HOST_RUNNING;
    usbredirhost_set_device(h->host, NULL);
    if (graceful) {
        host_flush(h);
        h->phase = HOST_STOPPED;
    }
}

void usb_host_free(struct usb_host *h)
{
    if (h->host)
        usbredirhost_close(h->host);
    if (h->mask)
        usb_mask_free(h->mask);
    free(h);
}
