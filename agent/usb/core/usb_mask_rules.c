/* SPDX-License-Identifier: MIT */
/* The access mask's verdicts on everything but the storage endpoints:
 * control requests, configurations and altsettings, and every transfer
 * direction and kind. Refused packets get the answer a device that said
 * no would give (a stall), so the guest moves on. */
#include "byteorder.h"
#include "usb_mask_int.h"

#include <string.h>
#include <usbredirproto.h>

#define REQ_TYPE_MASK 0x60
#define REQ_TYPE_STANDARD 0x00
#define REQ_TYPE_CLASS 0x20
#define REQ_RECIPIENT_MASK 0x1f
#define REQ_RECIPIENT_DEVICE 0
#define REQ_RECIPIENT_INTERFACE 1
#define REQ_RECIPIENT_ENDPOINT 2
#define REQ_DIR_IN 0x80

/* Standard requests (USB 2.0 9.4) */
#define STD_GET_STATUS 0
#define STD_CLEAR_FEATURE 1
#define STD_SET_FEATURE 3
#define STD_GET_DESCRIPTOR 6
#define STD_GET_CONFIGURATION 8
#define STD_GET_INTERFACE 10
#define STD_SYNCH_FRAME 12
#define FEATURE_ENDPOINT_HALT 0
#define FEATURE_DEVICE_REMOTE_WAKEUP 1

static bool is_ro(const struct usb_mask *m)
{
    return m->cfg.access == USB_ACCESS_RO;
}

static void refused(struct usb_mask *m) { m->stats.refused_packets++; }

/* ---- control requests ---- */

/* Standard requests: reading descriptors and state, and clearing or
 * setting an endpoint halt (recovery) or remote wakeup. Not allowed:
 * SET_ADDRESS, SET_DESCRIPTOR (writes the device's descriptors), and the
 * raw SET_CONFIGURATION and SET_INTERFACE: usbredirhost passes those to
 * the device unchecked and loses track of the configuration (the guest's
 * own switches come as usbredir packets, checked below). */
static bool standard_allowed(uint8_t type, uint8_t request, uint16_t value,
                             uint16_t length)
{
    uint8_t recipient = type & REQ_RECIPIENT_MASK;

    switch (request) {
    case STD_GET_STATUS:
    case STD_GET_DESCRIPTOR:
    case STD_GET_CONFIGURATION:
    case STD_GET_INTERFACE:
    case STD_SYNCH_FRAME: return type & REQ_DIR_IN;
    case STD_CLEAR_FEATURE:
    case STD_SET_FEATURE:
        return length == 0 && ((recipient == REQ_RECIPIENT_ENDPOINT &&
                                value == FEATURE_ENDPOINT_HALT) ||
                               (recipient == REQ_RECIPIENT_DEVICE &&
                                value == FEATURE_DEVICE_REMOTE_WAKEUP));
    default: return false;
    }
}

/* Class requests. To the storage interface only the Bulk-Only reset (the
 * guest's reset recovery) and GET MAX LUN. To other interfaces (HID on a
 * composite device...): under ro those without a data-OUT stage, under wo
 * none that returns data. */
static bool class_allowed(const struct usb_mask *m, uint8_t type,
                          uint8_t request, uint16_t index, uint16_t length)
{
    bool in = type & REQ_DIR_IN;
    bool storage = (type & REQ_RECIPIENT_MASK) == REQ_RECIPIENT_INTERFACE &&
                   (index & 0xff) == m->cfg.storage_interface;

    if (storage)
        return (request == BOT_REQUEST_RESET && !in && length == 0) ||
               (request == BOT_REQUEST_GET_MAX_LUN && in);
    return is_ro(m) ? in || length == 0 : !in || length == 0;
}

int usb_mask__control(struct usb_mask *m)
{
    const uint8_t *th = usb_mask__type_header(m);
    uint8_t request = th[1], type = th[2];
    uint16_t value = read_le16(th + 4), index = read_le16(th + 6);
    uint16_t length = read_le16(th + 8);
    bool allowed;

    if ((th[0] & ~EP_IN) != 0) /* control packets address endpoint 0 */
        allowed = false;
    else if ((type & REQ_TYPE_MASK) == REQ_TYPE_STANDARD)
        allowed = standard_allowed(type, request, value, length);
    else if ((type & REQ_TYPE_MASK) == REQ_TYPE_CLASS)
        allowed = class_allowed(m, type, request, index, length);
    else /* vendor requests write flash, read memory, ... */
        allowed = false;
    if (allowed) {
        if ((type & REQ_TYPE_MASK) == REQ_TYPE_CLASS &&
            request == BOT_REQUEST_RESET && !(type & REQ_DIR_IN))
            usb_mask__bot_reset(m);
        return usb_mask__forward_packet(m);
    }
    refused(m);
    uint8_t answer[sizeof(struct usb_redir_control_packet_header)];
    memcpy(answer, th, sizeof(answer));
    answer[3] = usb_redir_stall;
    put_le16(answer + 8, 0);
    usb_mask__reply(m, usb_redir_control_packet, answer, sizeof(answer), NULL,
                    0);
    usb_mask__skip_packet(m);
    return 0;
}

/* ---- configurations and altsettings ---- */

static int set_configuration(struct usb_mask *m)
{
    const uint8_t *th = usb_mask__type_header(m);
    uint8_t answer[2] = {usb_redir_stall, m->cfg.configuration};

    if (th[0] == m->cfg.configuration)
        return usb_mask__forward_packet(m);
    refused(m);
    usb_mask__reply(m, usb_redir_configuration_status, answer, sizeof(answer),
                    NULL, 0);
    usb_mask__skip_packet(m);
    return 0;
}

static int set_alt_setting(struct usb_mask *m)
{
    const uint8_t *th = usb_mask__type_header(m);
    uint8_t iface = th[0], alt = th[1];

    if (iface < USB_MASK_MAX_INTERFACES && alt < 32 &&
        (m->cfg.alts[iface] & (1u << alt)))
        return usb_mask__forward_packet(m);
    refused(m);
    uint8_t answer[3] = {usb_redir_stall, iface,
                         iface < USB_MASK_MAX_INTERFACES ? m->alt[iface] : 0};
    usb_mask__reply(m, usb_redir_alt_setting_status, answer, sizeof(answer),
                    NULL, 0);
    usb_mask__skip_packet(m);
    return 0;
}

/* ---- transfers ---- */

/* A transfer in the direction the access forbids: ro no OUT, wo no IN. */
static bool forbidden_direction(const struct usb_mask *m, uint8_t ep)
{
    return is_ro(m) ? !(ep & EP_IN) : (ep & EP_IN);
}

static bool is_storage_ep(const struct usb_mask *m, uint8_t ep)
{
    ep = EP_ADDRESS(ep);
    return (m->cfg.storage_out_ep && ep == EP_ADDRESS(m->cfg.storage_out_ep)) ||
           (m->cfg.storage_in_ep && ep == EP_ADDRESS(m->cfg.storage_in_ep));
}

static int bulk(struct usb_mask *m)
{
    const uint8_t *th = usb_mask__type_header(m);
    uint8_t ep = EP_ADDRESS(th[0]);
    uint32_t length = read_le16(th + 2), stream = read_le32(th + 4);
    uint32_t data_len = (uint32_t)(m->remaining - m->type_len);

    if (usb_mask__bulk_32(m))
        length |= (uint32_t)read_le16(th + 8) << 16;
    if (is_storage_ep(m, ep) && stream == 0)
        return ep & EP_IN ? usb_mask__bot_in(m, ep, length)
                          : usb_mask__bot_out(m, ep, data_len);
    /* streams belong to UAS, which is never masked: refused as well */
    if (stream == 0 && !forbidden_direction(m, ep))
        return usb_mask__forward_packet(m);
    refused(m);
    usb_mask__reply_bulk(m, th[0], usb_redir_stall, 0, NULL, 0);
    usb_mask__skip_packet(m);
    return 0;
}

/* Interrupt OUT packets (interrupt IN comes by receiving, below). */
static int interrupt(struct usb_mask *m)
{
    const uint8_t *th = usb_mask__type_header(m);
    uint8_t answer[4] = {th[0], usb_redir_stall, 0, 0};

    if (!forbidden_direction(m, th[0]))
        return usb_mask__forward_packet(m);
    refused(m);
    usb_mask__reply(m, usb_redir_interrupt_packet, answer, sizeof(answer), NULL,
                    0);
    usb_mask__skip_packet(m);
    return 0;
}

/* Isochronous OUT data needs no answer: a refused stream never started. */
static int iso(struct usb_mask *m)
{
    const uint8_t *th = usb_mask__type_header(m);

    if (!forbidden_direction(m, th[0]))
        return usb_mask__forward_packet(m);
    refused(m);
    usb_mask__skip_packet(m);
    return 0;
}

/* Starting a stream or receiving in a forbidden direction, receiving on
 * the storage endpoints (the mask must see each IN request there), bulk
 * streams: answered with a status packet saying stall. */
static int start(struct usb_mask *m, bool allowed, uint32_t status_type,
                 const uint8_t *answer, size_t answer_len)
{
    if (allowed)
        return usb_mask__forward_packet(m);
    refused(m);
    usb_mask__reply(m, status_type, answer, answer_len, NULL, 0);
    usb_mask__skip_packet(m);
    return 0;
}

int usb_mask__transfer(struct usb_mask *m)
{
    const uint8_t *th = usb_mask__type_header(m);
    uint8_t status[10] = {usb_redir_stall, th[0]};

    switch (m->type) {
    case usb_redir_bulk_packet: return bulk(m);
    case usb_redir_interrupt_packet: return interrupt(m);
    case usb_redir_iso_packet: return iso(m);
    case usb_redir_set_configuration: return set_configuration(m);
    case usb_redir_set_alt_setting: return set_alt_setting(m);
    case usb_redir_start_iso_stream:
        return start(m, !forbidden_direction(m, th[0]),
                     usb_redir_iso_stream_status, status, 2);
    case usb_redir_start_interrupt_receiving: /* receiving is IN: ro only */
        return start(m, (th[0] & EP_IN) && !forbidden_direction(m, th[0]),
                     usb_redir_interrupt_receiving_status, status, 2);
    case usb_redir_alloc_bulk_streams:
        memcpy(status, th, 4); /* endpoints; no_streams 0 */
        memset(status + 4, 0, 4);
        status[8] = usb_redir_stall;
        return start(m, false, usb_redir_bulk_streams_status, status, 9);
    case usb_redir_start_bulk_receiving:
        memcpy(status, th, 4); /* stream id */
        status[4] = th[8];
        status[5] = usb_redir_stall;
        /* receiving is IN: ro only, and never on the storage endpoint */
        return start(m,
                     (th[8] & EP_IN) && !is_storage_ep(m, th[8]) &&
                         !forbidden_direction(m, th[8]),
                     usb_redir_bulk_receiving_status, status, 6);
    default: return usb_mask__forward_packet(m);
    }
}
