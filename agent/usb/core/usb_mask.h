/* SPDX-License-Identifier: MIT */
/* Bulk access masking on the usbredir byte stream between the peer and
 * usbredirhost. */
#ifndef REDIR_USB_MASK_H
#define REDIR_USB_MASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scsi_bot.h"
#include "usb_rules.h"

/* usbredirhost (which has no per-packet hook) only ever sees what the mask
 * forwards; refused packets are answered by the mask itself, so the guest
 * gets a clean status at once and the device never sees them.
 *
 * Mass storage (Bulk-Only, SCSI): under ro, write-type commands are refused
 * the way a write-protected disk refuses them: the CBW is taken, the data
 * phase consumed, the CSW reports failure, and the next REQUEST SENSE
 * returns DATA PROTECT / WRITE PROTECTED (07/27/00); MODE SENSE replies get
 * the write-protect bit. Under wo, reads of the medium are refused alike
 * with DATA PROTECT / ACCESS DENIED (07/20/02). Other bulk endpoints: under
 * ro bulk OUT packets, under wo bulk IN requests, are answered with a
 * stall. */

struct usb_mask_config {
    enum usb_access access;
    uint8_t storage_out_ep; /* Bulk-Only interface endpoints, 0 if none */
    uint8_t storage_in_ep;
    uint16_t bulk_out_eps; /* bit n: OUT endpoint n is bulk */
    uint16_t bulk_in_eps;  /* bit n: IN endpoint 0x80|n is bulk */
};

struct usb_mask_ops {
    /* Bytes for usbredirhost, in stream order. Returns -1 to stop (the
     * session failed while handling them). */
    int (*forward)(void *ctx, const uint8_t *data, size_t len);
    /* A whole packet for the guest (malloc'ed; the callee owns it). */
    void (*reply)(void *ctx, uint8_t *packet, size_t len);
};

enum bot_state {
    BOT_IDLE,       /* next OUT packet on the storage endpoint is a CBW */
    BOT_PASS,       /* a forwarded command is in progress */
    BOT_REFUSE_OUT, /* consuming the data phase of a refused command */
    BOT_REFUSE_IN,  /* answering the data phase of a refused command */
    BOT_REFUSE_CSW, /* answering its CSW */
    BOT_SENSE_DATA, /* answering our REQUEST SENSE data */
    BOT_SENSE_CSW,  /* answering its CSW */
};

#define USB_MASK_HEADER_MAX 16      /* usbredir header with a 64-bit id */
#define USB_MASK_TYPE_HEADER_MAX 10 /* bulk header with 32-bit length */

struct usb_mask {
    struct usb_mask_config cfg;
    const struct usb_mask_ops *ops;
    void *ctx;

    /* negotiated from both hellos */
    bool guest_hello_seen, host_hello_seen;
    bool guest_64bit_ids, host_64bit_ids;
    bool guest_bulk32, host_bulk32;

    /* guest -> host parsing: the packet being read */
    int phase;
    uint8_t buf[USB_MASK_HEADER_MAX + USB_MASK_TYPE_HEADER_MAX + BOT_CBW_LEN];
    size_t have, want; /* bytes in buf, bytes needed for this phase */
    size_t header_len; /* of the current packet */
    uint32_t type;
    uint64_t id;
    uint64_t remaining; /* payload bytes still to forward or skip */
    uint8_t hello_caps[4];
    size_t hello_payload_seen;
    uint8_t endpoint;
    uint32_t bulk_length; /* from the bulk header */

    /* Bulk-Only storage, as the guest sees it */
    enum bot_state bot;
    uint32_t bot_tag;
    uint32_t bot_residue; /* of the refused command */
    uint64_t bot_left;    /* data-out bytes still to consume */
    uint8_t sense_key, sense_asc, sense_ascq;
    bool sense_pending; /* next REQUEST SENSE is ours to answer */
    uint32_t sense_alloc;
    uint8_t mode_sense_opcode; /* a MODE SENSE is in flight */
    bool patch_armed;          /* its data IN request not seen yet */
    uint64_t patch_id;         /* id of the IN request whose reply to patch */
    bool patch_pending;

    uint64_t packets; /* complete packets from the guest */
    uint64_t refused_commands, refused_packets;
    const char *error; /* set once the peer's stream is malformed */
};

void usb_mask_init(struct usb_mask *m, const struct usb_mask_config *cfg,
                   const struct usb_mask_ops *ops, void *ctx);

/* Bytes from the guest. Returns 0, or -1 (m->error set if malformed). */
int usb_mask_from_guest(struct usb_mask *m, const uint8_t *data, size_t len);

/* One whole packet usbredirhost sends the guest; patched in place. */
void usb_mask_to_guest(struct usb_mask *m, uint8_t *packet, size_t len);

#endif
