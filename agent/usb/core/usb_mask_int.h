/* SPDX-License-Identifier: MIT */
/* What the files of the access mask share: its state and the usb_mask__
 * functions one part calls in another. Not for other modules. */
#ifndef REDIR_USB_MASK_INT_H
#define REDIR_USB_MASK_INT_H

#include "scsi_bot.h"
#include "usb_mask.h"

#define MASK_HEADER_MAX 16      /* usbredir header with a 64-bit id */
#define MASK_TYPE_HEADER_MAX 10 /* the longest type header we read */
#define EP_IN 0x80
/* usbfs and usbredirhost take an endpoint address modulo the direction
 * bit and the number; bits 4-6 are ignored, so 0x12 is endpoint 2. */
#define EP_ADDRESS(ep) ((ep)&0x8f)
#define EP_NUMBER(ep) ((ep)&0x0f)

enum mask_phase {
    PH_HEADER,      /* reading the usbredir header */
    PH_TYPE_HEADER, /* reading the type header of the packet */
    PH_PEEK,        /* reading what may be a CBW */
    PH_FORWARD,     /* passing payload bytes to usbredirhost */
    PH_SKIP,        /* dropping payload bytes of a refused packet */
};

enum bot_state {
    BOT_IDLE,       /* next OUT packet on the storage endpoint is a CBW */
    BOT_PASS,       /* a forwarded command waits for its data or CSW */
    BOT_DATA_OUT,   /* wo: its data-OUT stage is being forwarded */
    BOT_REFUSE_OUT, /* consuming the data-OUT stage of a refused command */
    BOT_REFUSE_IN,  /* answering the data-IN stage of a refused command */
    BOT_REFUSE_CSW, /* answering its CSW */
    BOT_SENSE_DATA, /* answering our REQUEST SENSE data */
    BOT_SENSE_CSW,  /* answering its CSW */
    BOT_STALLED,    /* an invalid CBW: stalled until reset recovery */
};

struct usb_mask {
    struct usb_mask_config cfg;
    const struct usb_mask_ops *ops;
    void *ctx;

    /* negotiated from both hellos */
    bool guest_hello_seen, host_hello_seen;
    bool guest_64bit_ids, host_64bit_ids;
    bool guest_bulk32, host_bulk32;

    /* guest -> host parsing: the packet being read */
    enum mask_phase phase;
    uint8_t buf[MASK_HEADER_MAX + MASK_TYPE_HEADER_MAX + BOT_CBW_LEN];
    size_t have, want; /* bytes in buf, bytes needed for this phase */
    size_t header_len; /* of the current packet */
    size_t type_len;   /* of its type header */
    uint32_t type;
    uint64_t id;
    uint64_t remaining; /* payload bytes still to forward or skip */
    uint8_t hello_caps[4];
    size_t hello_payload_seen;

    /* Bulk-Only storage, as the guest sees it */
    enum bot_state bot;
    uint8_t max_lun;      /* from the device's GET MAX LUN answer */
    uint32_t bot_tag;     /* of the command being answered by us */
    uint32_t bot_residue; /* of the refused command */
    uint64_t bot_left;    /* data-OUT bytes still to consume or forward */
    uint8_t csw_status;   /* of the refused command */
    uint8_t sense_key, sense_asc, sense_ascq;
    bool sense_pending; /* next REQUEST SENSE is ours to answer */
    uint32_t sense_alloc;
    uint8_t mode_sense_opcode; /* a MODE SENSE is in flight */
    bool patch_armed;          /* its data IN request not seen yet */
    uint64_t patch_id;         /* id of the IN request whose reply to patch */
    bool patch_pending;

    uint8_t alt[USB_MASK_MAX_INTERFACES]; /* current altsettings */
    struct usb_mask_stats stats;
    const char *error; /* set once the peer's stream is malformed */
};

/* usb_mask.c: sizes, the packet in hand, and replies */
bool usb_mask__ids_64(const struct usb_mask *m);
bool usb_mask__bulk_32(const struct usb_mask *m);
const uint8_t *usb_mask__type_header(const struct usb_mask *m);
int usb_mask__forward_packet(struct usb_mask *m);
void usb_mask__skip_packet(struct usb_mask *m);
void usb_mask__peek(struct usb_mask *m, size_t len);
/* Answers the packet in hand with a packet of type carrying type header
 * th and data, with the same id. */
void usb_mask__reply(struct usb_mask *m, uint32_t type, const void *th,
                     size_t th_len, const uint8_t *data, size_t data_len);
void usb_mask__reply_bulk(struct usb_mask *m, uint8_t ep, uint8_t status,
                          uint32_t length, const uint8_t *data, size_t n);

/* usb_mask_bot.c: the storage endpoints */
int usb_mask__bot_out(struct usb_mask *m, uint8_t ep, uint32_t data_len);
int usb_mask__bot_cbw(struct usb_mask *m);
int usb_mask__bot_in(struct usb_mask *m, uint8_t ep, uint32_t length);
void usb_mask__bot_reset(struct usb_mask *m);
void usb_mask__bot_to_guest(struct usb_mask *m, uint8_t ep, uint8_t status,
                            uint8_t *data, size_t len, uint64_t id);

/* usb_mask_rules.c: verdicts on everything but storage transfers */
int usb_mask__control(struct usb_mask *m);
int usb_mask__transfer(struct usb_mask *m);

#endif
