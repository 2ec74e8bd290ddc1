/* SPDX-License-Identifier: MIT */
/* Read-only and write-only access on the usbredir byte stream between the
 * peer and usbredirhost: only what the access allows reaches the device. */
#ifndef REDIR_USB_MASK_H
#define REDIR_USB_MASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usb_rules.h"

/* usbredirhost (which has no per-packet hook) only ever sees what the mask
 * forwards; refused packets are answered by the mask itself, so the guest
 * gets a clean status at once and the device never sees them.
 *
 * Everything is an allowlist. Mass storage (Bulk-Only, SCSI): every CBW is
 * checked strictly (a CBW that is not exactly valid is answered as the
 * Bulk-Only spec says a device must: a stall until reset recovery);
 * commands not on the allowlist of the access are refused as a
 * write-protected disk refuses them (CSW failed; the next REQUEST SENSE
 * says DATA PROTECT or ILLEGAL REQUEST), and MODE SENSE replies get the
 * write-protect bit under ro. Under ro no data-OUT stage ever reaches the
 * device; under wo no command that returns the medium's data does. Other
 * paths: under ro every OUT transfer (bulk, interrupt, isochronous) and
 * every control request with a data-OUT stage is refused except the
 * Bulk-Only reset; under wo every IN transfer (bulk, bulk receiving,
 * interrupt receiving, isochronous) except the storage interface's
 * replies; vendor control requests and bulk streams under both; only the
 * analysed configuration and the Bulk-Only alternate settings of the
 * storage interface can be selected. */

#define USB_MASK_MAX_INTERFACES 32 /* usbredir's own limit per device */

struct usb_mask_config {
    enum usb_access access;
    uint8_t storage_out_ep; /* Bulk-Only endpoints, 0 if none */
    uint8_t storage_in_ep;
    uint16_t bulk_out_eps;     /* bit n: OUT endpoint n is bulk */
    uint16_t bulk_in_eps;      /* bit n: IN endpoint 0x80|n is bulk */
    uint8_t configuration;     /* the analysed bConfigurationValue */
    uint8_t storage_interface; /* its bInterfaceNumber, 0xff if none */
    /* bit a of alts[i]: altsetting a of interface i may be selected
     * (for the storage interface: only its Bulk-Only ones) */
    uint32_t alts[USB_MASK_MAX_INTERFACES];
};

struct usb_mask_ops {
    /* Bytes for usbredirhost, in stream order. Returns -1 to stop (the
     * session failed while handling them). */
    int (*forward)(void *ctx, const uint8_t *data, size_t len);
    /* A whole packet for the guest (malloc'ed; the callee owns it). */
    void (*reply)(void *ctx, uint8_t *packet, size_t len);
};

struct usb_mask_stats {
    uint64_t packets;          /* complete packets from the guest */
    uint64_t refused_commands; /* SCSI commands and invalid CBWs */
    uint64_t refused_packets;  /* transfers and requests */
};

struct usb_mask;

/* NULL if out of memory. */
struct usb_mask *usb_mask_new(const struct usb_mask_config *cfg,
                              const struct usb_mask_ops *ops, void *ctx);
void usb_mask_free(struct usb_mask *m);

/* Bytes from the guest. Returns 0, or -1 (usb_mask_error() says why if
 * the stream is malformed). */
int usb_mask_from_guest(struct usb_mask *m, const uint8_t *data, size_t len);

/* One whole packet usbredirhost sends the guest; patched in place. */
void usb_mask_to_guest(struct usb_mask *m, uint8_t *packet, size_t len);

/* Why the guest's stream is malformed, or NULL. */
const char *usb_mask_error(const struct usb_mask *m);

void usb_mask_stats(const struct usb_mask *m, struct usb_mask_stats *out);

#endif
