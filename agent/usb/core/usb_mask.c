/* SPDX-License-Identifier: MIT */
/* Read-only and write-only access on the usbredir byte stream: the guest's
 * packets framed once (header, type header), handed to the verdicts of
 * usb_mask_bot.c and usb_mask_rules.c, forwarded or answered; what the
 * device answers read for the state the verdicts need. */
#include "byteorder.h"
#include "usb_mask_int.h"

#include <stdlib.h>
#include <string.h>
#include <usbredirproto.h>

#include "usbredir_stream.h"

#define HELLO_VERSION_LEN 64
#define BULK_HEADER_16 8 /* without the 32-bit length capability */
#define GET_MAX_LUN_TYPE 0xa1

/* usbredirhost always offers both capabilities; until its hello has gone
 * by, assume it did. */
bool usb_mask__ids_64(const struct usb_mask *m)
{
    return m->guest_64bit_ids && (!m->host_hello_seen || m->host_64bit_ids);
}

bool usb_mask__bulk_32(const struct usb_mask *m)
{
    return m->guest_bulk32 && (!m->host_hello_seen || m->host_bulk32);
}

static size_t header_len(const struct usb_mask *m)
{
    if (!m->guest_hello_seen)
        return USBREDIR_HEADER_32; /* a hello always has the short form */
    return usb_mask__ids_64(m) ? USBREDIR_HEADER_64 : USBREDIR_HEADER_32;
}

/* The type header the verdicts read, per packet type; 0: forwarded as is
 * (usbredirhost only answers those: hello, get_*, stop_*, cancel, ...). */
static size_t type_header_len(const struct usb_mask *m, uint32_t type)
{
    switch (type) {
    case usb_redir_control_packet:
        return sizeof(struct usb_redir_control_packet_header);
    case usb_redir_bulk_packet:
        return usb_mask__bulk_32(m)
                   ? sizeof(struct usb_redir_bulk_packet_header)
                   : BULK_HEADER_16;
    case usb_redir_iso_packet:
        return sizeof(struct usb_redir_iso_packet_header);
    case usb_redir_interrupt_packet:
        return sizeof(struct usb_redir_interrupt_packet_header);
    case usb_redir_set_configuration:
        return sizeof(struct usb_redir_set_configuration_header);
    case usb_redir_set_alt_setting:
        return sizeof(struct usb_redir_set_alt_setting_header);
    case usb_redir_start_iso_stream:
        return sizeof(struct usb_redir_start_iso_stream_header);
    case usb_redir_start_interrupt_receiving:
        return sizeof(struct usb_redir_start_interrupt_receiving_header);
    case usb_redir_alloc_bulk_streams:
        return sizeof(struct usb_redir_alloc_bulk_streams_header);
    case usb_redir_start_bulk_receiving:
        return sizeof(struct usb_redir_start_bulk_receiving_header);
    default: return 0;
    }
}

struct usb_mask *usb_mask_new(const struct usb_mask_config *cfg,
                              const struct usb_mask_ops *ops, void *ctx)
{
    struct usb_mask *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    m->cfg = *cfg;
    m->ops = ops;
    m->ctx = ctx;
    m->phase = PH_HEADER;
    m->want = USBREDIR_HEADER_32;
    return m;
}

void usb_mask_free(struct usb_mask *m) { free(m); }

const char *usb_mask_error(const struct usb_mask *m) { return m->error; }

void usb_mask_stats(const struct usb_mask *m, struct usb_mask_stats *out)
{
    *out = m->stats;
}

const uint8_t *usb_mask__type_header(const struct usb_mask *m)
{
    return m->buf + m->header_len;
}

/* ---- packets for the guest ---- */

void usb_mask__reply(struct usb_mask *m, uint32_t type, const void *th,
                     size_t th_len, const uint8_t *data, size_t data_len)
{
    size_t hlen = usb_mask__ids_64(m) ? USBREDIR_HEADER_64 : USBREDIR_HEADER_32;
    uint8_t *p = malloc(hlen + th_len + data_len);

    if (!p)
        return; /* the guest times out the request: as an unplug would */
    put_le32(p, type);
    put_le32(p + 4, (uint32_t)(th_len + data_len));
    put_le32(p + 8, (uint32_t)m->id);
    if (hlen == USBREDIR_HEADER_64)
        put_le32(p + 12, (uint32_t)(m->id >> 32));
    memcpy(p + hlen, th, th_len);
    if (data_len)
        memcpy(p + hlen + th_len, data, data_len);
    m->ops->reply(m->ctx, p, hlen + th_len + data_len);
}

void usb_mask__reply_bulk(struct usb_mask *m, uint8_t ep, uint8_t status,
                          uint32_t length, const uint8_t *data, size_t n)
{
    uint8_t th[sizeof(struct usb_redir_bulk_packet_header)];
    size_t th_len = usb_mask__bulk_32(m) ? sizeof(th) : BULK_HEADER_16;

    th[0] = ep;
    th[1] = status;
    put_le16(th + 2, (uint16_t)length);
    put_le32(th + 4, 0); /* stream id */
    put_le16(th + 8, (uint16_t)(length >> 16));
    usb_mask__reply(m, usb_redir_bulk_packet, th, th_len, data, n);
}

/* ---- guest -> host: framing ---- */

static size_t payload_consumed(const struct usb_mask *m)
{
    return m->have - m->header_len;
}

static void packet_done(struct usb_mask *m)
{
    m->stats.packets++;
    if (!m->guest_hello_seen) {
        uint32_t caps = m->hello_payload_seen >= HELLO_VERSION_LEN + 4
                            ? read_le32(m->hello_caps)
                            : 0;
        m->guest_64bit_ids = caps & (1u << usb_redir_cap_64bits_ids);
        m->guest_bulk32 = caps & (1u << usb_redir_cap_32bits_bulk_length);
        m->guest_hello_seen = true;
    }
    m->phase = PH_HEADER;
    m->have = 0;
    m->want = header_len(m);
}

/* Passes the buffered part of the packet on, then streams the rest. */
int usb_mask__forward_packet(struct usb_mask *m)
{
    if (m->ops->forward(m->ctx, m->buf, m->have) < 0)
        return -1;
    m->remaining -= payload_consumed(m);
    if (m->remaining == 0)
        packet_done(m);
    else
        m->phase = PH_FORWARD;
    return 0;
}

void usb_mask__skip_packet(struct usb_mask *m)
{
    m->remaining -= payload_consumed(m);
    if (m->remaining == 0)
        packet_done(m);
    else
        m->phase = PH_SKIP;
}

void usb_mask__peek(struct usb_mask *m, size_t len)
{
    m->phase = PH_PEEK;
    m->want = m->have + len;
}

/* The type header is in: the packet's verdict. */
static int handle_type_header(struct usb_mask *m)
{
    switch (m->type) {
    case usb_redir_control_packet: return usb_mask__control(m);
    default: return usb_mask__transfer(m);
    }
}

static int handle_header(struct usb_mask *m)
{
    const uint8_t *h = m->buf;
    uint32_t length = read_le32(h + 4);

    m->header_len = m->have;
    m->type = read_le32(h);
    m->id = read_le32(h + 8);
    if (m->header_len == USBREDIR_HEADER_64)
        m->id |= (uint64_t)read_le32(h + 12) << 32;
    if (length > USBREDIR_MAX_PACKET) {
        m->error = "packet length over the usbredir maximum";
        return -1;
    }
    if (!m->guest_hello_seen && m->type != usb_redir_hello) {
        m->error = "first packet is not a hello";
        return -1;
    }
    m->remaining = length;
    if (m->type == usb_redir_reset)
        usb_mask__bot_reset(m);
    m->type_len = m->guest_hello_seen ? type_header_len(m, m->type) : 0;
    if (m->type_len == 0)
        return usb_mask__forward_packet(m);
    if (length < m->type_len) {
        m->error = "packet shorter than its header";
        return -1;
    }
    m->phase = PH_TYPE_HEADER;
    m->want = m->have + m->type_len;
    return 0;
}

static int step(struct usb_mask *m)
{
    switch (m->phase) {
    case PH_HEADER: return handle_header(m);
    case PH_TYPE_HEADER: return handle_type_header(m);
    default: return usb_mask__bot_cbw(m);
    }
}

/* Keeps the capability word of the guest's hello as it streams by. */
static void capture_hello(struct usb_mask *m, const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++, m->hello_payload_seen++) {
        size_t at = m->hello_payload_seen;
        if (at >= HELLO_VERSION_LEN && at < HELLO_VERSION_LEN + 4)
            m->hello_caps[at - HELLO_VERSION_LEN] = data[i];
    }
}

/* Payload bytes of the packet in hand: forwarded or dropped. */
static int pass_payload(struct usb_mask *m, const uint8_t *data, size_t n)
{
    if (m->phase == PH_FORWARD) {
        if (!m->guest_hello_seen)
            capture_hello(m, data, n);
        if (m->ops->forward(m->ctx, data, n) < 0)
            return -1;
    }
    m->remaining -= n;
    if (m->remaining == 0)
        packet_done(m);
    return 0;
}

int usb_mask_from_guest(struct usb_mask *m, const uint8_t *data, size_t len)
{
    while (len && !m->error) {
        if (m->phase == PH_FORWARD || m->phase == PH_SKIP) {
            size_t n = m->remaining < len ? (size_t)m->remaining : len;
            if (pass_payload(m, data, n) < 0)
                return -1;
            data += n;
            len -= n;
            continue;
        }
        size_t n = m->want - m->have;
        n = n < len ? n : len;
        memcpy(m->buf + m->have, data, n);
        m->have += n;
        data += n;
        len -= n;
        if (m->have == m->want && step(m) < 0)
            return -1;
    }
    return m->error ? -1 : 0;
}

/* ---- host -> guest: what the device answered ---- */

static void host_hello(struct usb_mask *m, const uint8_t *packet, size_t len)
{
    uint32_t caps =
        len >= USBREDIR_HEADER_32 + HELLO_VERSION_LEN + 4
            ? read_le32(packet + USBREDIR_HEADER_32 + HELLO_VERSION_LEN)
            : 0;

    m->host_64bit_ids = caps & (1u << usb_redir_cap_64bits_ids);
    m->host_bulk32 = caps & (1u << usb_redir_cap_32bits_bulk_length);
    m->host_hello_seen = true;
}

/* GET MAX LUN bounds the LUNs a CBW may name; an altsetting switch that
 * went through is the current one. */
static void host_control(struct usb_mask *m, const uint8_t *th, size_t n,
                         const uint8_t *data, size_t data_len)
{
    if (n < sizeof(struct usb_redir_control_packet_header))
        return;
    if (th[2] == GET_MAX_LUN_TYPE && th[1] == BOT_REQUEST_GET_MAX_LUN &&
        th[3] == usb_redir_success && data_len >= 1)
        m->max_lun = data[0] <= BOT_MAX_LUN ? data[0] : BOT_MAX_LUN;
}

void usb_mask_to_guest(struct usb_mask *m, uint8_t *packet, size_t len)
{
    size_t hlen = usb_mask__ids_64(m) ? USBREDIR_HEADER_64 : USBREDIR_HEADER_32;

    if (!m->host_hello_seen) {
        host_hello(m, packet, len);
        return;
    }
    if (len < hlen)
        return;
    uint32_t type = read_le32(packet);
    uint64_t id = read_le32(packet + 8);
    if (hlen == USBREDIR_HEADER_64)
        id |= (uint64_t)read_le32(packet + 12) << 32;
    uint8_t *th = packet + hlen;
    size_t rest = len - hlen;
    size_t blen = usb_mask__bulk_32(m) ? 10 : BULK_HEADER_16;
    if (type == usb_redir_bulk_packet && rest >= blen)
        usb_mask__bot_to_guest(m, th[0], th[1], th + blen, rest - blen, id);
    else if (type == usb_redir_control_packet)
        host_control(m, th, rest, th + 10, rest > 10 ? rest - 10 : 0);
    else if (type == usb_redir_alt_setting_status && rest >= 3 &&
             th[0] == usb_redir_success && th[1] < USB_MASK_MAX_INTERFACES)
        m->alt[th[1]] = th[2];
}
