/* SPDX-License-Identifier: MIT */
/* Bulk access masking on the usbredir byte stream between the peer and
 * usbredirhost. */
#include "usb_mask.h"
#include "byteorder.h"

#include <stdlib.h>
#include <string.h>
#include <usbredirproto.h>

#include "usbredir_stream.h"

enum mask_phase {
    PH_HEADER,      /* reading the usbredir header */
    PH_BULK_HEADER, /* reading a bulk packet's type header */
    PH_CBW,         /* reading what may be a CBW */
    PH_FORWARD,     /* passing payload bytes to usbredirhost */
    PH_SKIP,        /* dropping payload bytes of a refused packet */
};

#define BULK_HEADER_32                                                         \
    10 /* endpoint, status, length, stream_id, length_high                     \
        */
#define BULK_HEADER_16 8
#define HELLO_VERSION_LEN 64
#define EP_IN 0x80
#define EP_NUMBER(ep) ((ep)&0x0f)

/* usbredirhost always offers both capabilities; until its hello has gone
 * by, assume it did. */
static bool ids_64(const struct usb_mask *m)
{
    return m->guest_64bit_ids && (!m->host_hello_seen || m->host_64bit_ids);
}

static bool bulk_32(const struct usb_mask *m)
{
    return m->guest_bulk32 && (!m->host_hello_seen || m->host_bulk32);
}

static size_t header_len(const struct usb_mask *m)
{
    if (!m->guest_hello_seen)
        return USBREDIR_HEADER_32; /* a hello always has the short form */
    return ids_64(m) ? USBREDIR_HEADER_64 : USBREDIR_HEADER_32;
}

static size_t bulk_header_len(const struct usb_mask *m)
{
    return bulk_32(m) ? BULK_HEADER_32 : BULK_HEADER_16;
}

void usb_mask_init(struct usb_mask *m, const struct usb_mask_config *cfg,
                   const struct usb_mask_ops *ops, void *ctx)
{
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    m->ops = ops;
    m->ctx = ctx;
    m->phase = PH_HEADER;
    m->want = USBREDIR_HEADER_32;
}

/* ---- packets for the guest ---- */

static void reply_bulk(struct usb_mask *m, uint8_t status, uint32_t length,
                       const uint8_t *data, size_t data_len)
{
    size_t hlen = ids_64(m) ? USBREDIR_HEADER_64 : USBREDIR_HEADER_32;
    size_t blen = bulk_header_len(m);
    uint8_t *p = malloc(hlen + blen + data_len);

    if (!p)
        return; /* the guest times out the request: as an unplug would */
    put_le32(p, usb_redir_bulk_packet);
    put_le32(p + 4, (uint32_t)(blen + data_len));
    put_le32(p + 8, (uint32_t)m->id);
    if (hlen == USBREDIR_HEADER_64)
        put_le32(p + 12, (uint32_t)(m->id >> 32));
    uint8_t *b = p + hlen;
    b[0] = m->endpoint;
    b[1] = status;
    put_le16(b + 2, (uint16_t)length);
    put_le32(b + 4, 0); /* stream id */
    if (blen == BULK_HEADER_32)
        put_le16(b + 8, (uint16_t)(length >> 16));
    if (data_len)
        memcpy(b + blen, data, data_len);
    m->ops->reply(m->ctx, p, hlen + blen + data_len);
}

/* An OUT transfer the guest believes the device took. */
static void reply_out_taken(struct usb_mask *m, uint32_t length)
{
    reply_bulk(m, usb_redir_success, length, NULL, 0);
}

static void reply_in_data(struct usb_mask *m, const uint8_t *data, size_t len)
{
    reply_bulk(m, usb_redir_success, (uint32_t)len, data, len);
}

static void reply_csw(struct usb_mask *m, uint32_t residue, uint8_t status)
{
    uint8_t csw[BOT_CSW_LEN];
    bot_csw_build(csw, m->bot_tag, residue, status);
    reply_in_data(m, csw, sizeof(csw));
}

/* ---- guest -> host parsing ---- */

static size_t payload_consumed(const struct usb_mask *m)
{
    return m->have - m->header_len;
}

static void packet_done(struct usb_mask *m)
{
    m->packets++;
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
static int forward_packet(struct usb_mask *m)
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

static void skip_packet(struct usb_mask *m)
{
    m->remaining -= payload_consumed(m);
    if (m->remaining == 0)
        packet_done(m);
    else
        m->phase = PH_SKIP;
}

static void refuse_command(struct usb_mask *m, const struct bot_cbw *cbw)
{
    m->refused_commands++;
    m->bot_tag = cbw->tag;
    m->bot_residue = cbw->data_length;
    if (m->cfg.access == USB_ACCESS_RO) {
        m->sense_key = SCSI_SENSE_DATA_PROTECT; /* WRITE PROTECTED */
        m->sense_asc = 0x27;
        m->sense_ascq = 0x00;
    } else {
        m->sense_key = SCSI_SENSE_DATA_PROTECT; /* ACCESS DENIED */
        m->sense_asc = 0x20;
        m->sense_ascq = 0x02;
    }
    if (cbw->data_length == 0)
        m->bot = BOT_REFUSE_CSW;
    else if (cbw->data_in)
        m->bot = BOT_REFUSE_IN;
    else {
        m->bot = BOT_REFUSE_OUT;
        m->bot_left = cbw->data_length;
    }
}

static bool command_refused(const struct usb_mask *m, uint8_t opcode)
{
    return (m->cfg.access == USB_ACCESS_RO && scsi_is_write_command(opcode)) ||
           (m->cfg.access == USB_ACCESS_WO && scsi_is_read_command(opcode));
}

/* A 31-byte OUT packet on the storage endpoint: a CBW, if it says so. */
static int handle_cbw(struct usb_mask *m)
{
    struct bot_cbw cbw;
    const uint8_t *data = m->buf + m->header_len + bulk_header_len(m);

    if (!bot_cbw_parse(data, BOT_CBW_LEN, &cbw))
        return forward_packet(m); /* the device will judge it */
    uint8_t op = cbw.cdb[0];
    if (m->sense_pending && op == SCSI_REQUEST_SENSE) {
        reply_out_taken(m, BOT_CBW_LEN);
        m->bot_tag = cbw.tag;
        m->sense_alloc =
            cbw.cdb[4] < cbw.data_length ? cbw.cdb[4] : cbw.data_length;
        m->bot_residue = cbw.data_length;
        m->bot = cbw.data_length ? BOT_SENSE_DATA : BOT_SENSE_CSW;
        skip_packet(m);
        return 0;
    }
    m->sense_pending = false;
    m->bot = BOT_IDLE;
    if (command_refused(m, op)) {
        reply_out_taken(m, BOT_CBW_LEN);
        refuse_command(m, &cbw);
        skip_packet(m);
        return 0;
    }
    if (m->cfg.access == USB_ACCESS_RO && cbw.data_in && cbw.data_length &&
        (op == SCSI_MODE_SENSE_6 || op == SCSI_MODE_SENSE_10)) {
        m->mode_sense_opcode = op;
        m->patch_armed = true; /* its data IN request comes next */
    }
    return forward_packet(m);
}

/* Data-out of a refused command: take it, tell the guest it went. */
static void consume_refused_out(struct usb_mask *m, uint32_t data_len)
{
    reply_out_taken(m, data_len);
    m->bot_left = data_len < m->bot_left ? m->bot_left - data_len : 0;
    if (m->bot_left == 0)
        m->bot = BOT_REFUSE_CSW;
    skip_packet(m);
}

/* An IN request on the storage endpoint while we answer for the device. */
static bool answer_storage_in(struct usb_mask *m)
{
    uint8_t sense[SCSI_SENSE_FIXED_LEN];
    size_t n;

    switch (m->bot) {
    case BOT_REFUSE_IN:
        reply_in_data(m, NULL, 0); /* short: no data */
        m->bot = BOT_REFUSE_CSW;
        return true;
    case BOT_REFUSE_OUT: /* the guest cut its data phase short */
    case BOT_REFUSE_CSW:
        reply_csw(m,
                  m->bot == BOT_REFUSE_OUT ? (uint32_t)m->bot_left
                                           : m->bot_residue,
                  BOT_CSW_FAILED);
        m->bot = BOT_IDLE;
        m->sense_pending = true;
        return true;
    case BOT_SENSE_DATA:
        scsi_sense_build(sense, m->sense_key, m->sense_asc, m->sense_ascq);
        n = m->sense_alloc < sizeof(sense) ? m->sense_alloc : sizeof(sense);
        n = n < m->bulk_length ? n : m->bulk_length;
        reply_in_data(m, sense, n);
        m->bot_residue -= (uint32_t)n;
        m->bot = BOT_SENSE_CSW;
        return true;
    case BOT_SENSE_CSW:
        reply_csw(m, m->bot_residue, BOT_CSW_PASSED);
        m->bot = BOT_IDLE;
        m->sense_pending = false;
        return true;
    default: return false;
    }
}

static int handle_bulk(struct usb_mask *m)
{
    const uint8_t *b = m->buf + m->header_len;
    size_t blen = bulk_header_len(m);
    uint32_t data_len = (uint32_t)(m->remaining - blen);
    uint8_t ep = b[0];
    bool storage_out = m->cfg.storage_out_ep && ep == m->cfg.storage_out_ep;
    bool storage_in = m->cfg.storage_in_ep && ep == m->cfg.storage_in_ep;

    m->endpoint = ep;
    m->bulk_length = (uint32_t)b[2] | (uint32_t)b[3] << 8;
    if (blen == BULK_HEADER_32)
        m->bulk_length |= ((uint32_t)b[8] | (uint32_t)b[9] << 8) << 16;

    if (storage_out && m->bot == BOT_REFUSE_OUT) {
        consume_refused_out(m, data_len);
        return 0;
    }
    if (storage_out && data_len == BOT_CBW_LEN) {
        m->phase = PH_CBW;
        m->want = m->have + BOT_CBW_LEN;
        return 0;
    }
    if (storage_in && answer_storage_in(m)) {
        skip_packet(m);
        return 0;
    }
    if (storage_in && m->patch_armed) {
        m->patch_armed = false;
        m->patch_pending = true;
        m->patch_id = m->id;
    }
    bool is_in = ep & EP_IN;
    bool drop = !storage_in && !storage_out &&
                ((!is_in && m->cfg.access == USB_ACCESS_RO &&
                  (m->cfg.bulk_out_eps & (1u << EP_NUMBER(ep)))) ||
                 (is_in && m->cfg.access == USB_ACCESS_WO &&
                  (m->cfg.bulk_in_eps & (1u << EP_NUMBER(ep)))));
    if (drop) {
        m->refused_packets++;
        reply_bulk(m, usb_redir_stall, 0, NULL, 0);
        skip_packet(m);
        return 0;
    }
    return forward_packet(m);
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
    if (m->type == usb_redir_reset) {
        m->bot = BOT_IDLE;
        m->sense_pending = false;
    }
    if (m->type == usb_redir_bulk_packet && m->cfg.access != USB_ACCESS_RW) {
        if (length < bulk_header_len(m)) {
            m->error = "bulk packet shorter than its header";
            return -1;
        }
        m->phase = PH_BULK_HEADER;
        m->want = m->have + bulk_header_len(m);
        return 0;
    }
    return forward_packet(m);
}

static int step(struct usb_mask *m)
{
    switch (m->phase) {
    case PH_HEADER: return handle_header(m);
    case PH_BULK_HEADER: return handle_bulk(m);
    default: return handle_cbw(m);
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

int usb_mask_from_guest(struct usb_mask *m, const uint8_t *data, size_t len)
{
    while (len && !m->error) {
        if (m->phase == PH_FORWARD || m->phase == PH_SKIP) {
            size_t n = m->remaining < len ? (size_t)m->remaining : len;
            if (m->phase == PH_FORWARD) {
                if (!m->guest_hello_seen)
                    capture_hello(m, data, n);
                if (m->ops->forward(m->ctx, data, n) < 0)
                    return -1;
            }
            m->remaining -= n;
            data += n;
            len -= n;
            if (m->remaining == 0)
                packet_done(m);
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

/* ---- host -> guest ---- */

void usb_mask_to_guest(struct usb_mask *m, uint8_t *packet, size_t len)
{
    if (!m->host_hello_seen) {
        uint32_t caps =
            len >= USBREDIR_HEADER_32 + HELLO_VERSION_LEN + 4
                ? read_le32(packet + USBREDIR_HEADER_32 + HELLO_VERSION_LEN)
                : 0;
        m->host_64bit_ids = caps & (1u << usb_redir_cap_64bits_ids);
        m->host_bulk32 = caps & (1u << usb_redir_cap_32bits_bulk_length);
        m->host_hello_seen = true;
        return;
    }
    size_t hlen = ids_64(m) ? USBREDIR_HEADER_64 : USBREDIR_HEADER_32;
    size_t blen = bulk_header_len(m);
    if (!m->patch_pending || len < hlen + blen ||
        read_le32(packet) != usb_redir_bulk_packet)
        return;
    uint64_t id = read_le32(packet + 8);
    if (hlen == USBREDIR_HEADER_64)
        id |= (uint64_t)read_le32(packet + 12) << 32;
    if (id != m->patch_id)
        return;
    m->patch_pending = false;
    scsi_mode_sense_set_wp(m->mode_sense_opcode, packet + hlen + blen,
                           len - hlen - blen);
}
