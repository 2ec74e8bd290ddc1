/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the access mask on hostile guest streams and host
 * packets, with an oracle that re-reads everything the mask forwarded to
 * the device and aborts on anything the access forbids. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <usbredirproto.h>

#include "byteorder.h"
#include "scsi_bot.h"
#include "usb_mask.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STORAGE_OUT 0x02
#define STORAGE_IN 0x81
#define STORAGE_IFACE 0
#define OTHER_IFACE 1
#define CONFIG 1
#define BULK32_HEADER 10

/* The oracle: an independent reading of the forwarded byte stream. */
struct oracle {
    enum usb_access access;
    uint8_t buf[1 << 16];
    size_t len;         /* forwarded bytes not yet parsed */
    bool hello_done;    /* the guest's hello went by */
    bool ids64, bulk32; /* from it (the host offers both) */
    uint64_t data_out;  /* wo: data-OUT bytes a forwarded write may send */
};

static struct oracle oracle;
static size_t forwarded; /* bytes the mask handed on, in all */

static void violation(const char *what, uint32_t type)
{
    fprintf(stderr, "mask oracle: %s forwarded under %s (packet type %u)\n",
            what, oracle.access == USB_ACCESS_RO ? "ro" : "wo", type);
    abort();
}

static bool ro(void) { return oracle.access == USB_ACCESS_RO; }

/* A bulk OUT on the storage endpoint: a forwarded write's data (wo), or a
 * CBW that must be valid and allowed. */
static void check_storage_out(const uint8_t *d, size_t n)
{
    struct bot_cbw cbw;
    const char *why;
    enum scsi_dir dir = SCSI_DIR_NONE;

    if (!ro() && oracle.data_out >= n) {
        oracle.data_out -= n;
        return;
    }
    if (bot_cbw_parse(d, n, BOT_MAX_LUN, &cbw, &why) != BOT_CBW_OK)
        violation("a bulk OUT that is no valid CBW", usb_redir_bulk_packet);
    if (scsi_command_verdict(cbw.cdb, ro(), &dir) != SCSI_ALLOW)
        violation("a CBW off the allowlist", usb_redir_bulk_packet);
    if (cbw.data_length && !cbw.data_in) {
        if (ro())
            violation("a CBW with a data-OUT stage", usb_redir_bulk_packet);
        oracle.data_out = cbw.data_length;
    } else {
        oracle.data_out = 0;
    }
}

static void check_bulk(const uint8_t *th, const uint8_t *d, size_t n)
{
    uint8_t ep = th[0] & 0x8f;

    if (read_le32(th + 4) != 0)
        violation("a bulk stream packet", usb_redir_bulk_packet);
    if (ep == STORAGE_OUT) {
        check_storage_out(d, n);
        return;
    }
    if (ep == STORAGE_IN)
        return; /* the mask answers refused commands' IN requests itself */
    if (ro() ? !(ep & 0x80) : (ep & 0x80))
        violation("a bulk transfer in the forbidden direction",
                  usb_redir_bulk_packet);
}

static void check_control(const uint8_t *th)
{
    uint8_t type = th[2], request = th[1];
    uint16_t length = read_le16(th + 8);

    if ((type & 0x60) == 0x40 || (type & 0x60) == 0x60)
        violation("a vendor or reserved control request",
                  usb_redir_control_packet);
    if ((type & 0x60) == 0 &&
        (request == 5 || request == 7 || request == 9 || request == 11))
        violation("SET_ADDRESS/DESCRIPTOR/CONFIGURATION/INTERFACE",
                  usb_redir_control_packet);
    if (ro() && !(type & 0x80) && length)
        violation("a control request with a data-OUT stage",
                  usb_redir_control_packet);
    if (!ro() && (type & 0x60) == 0x20 && (type & 0x80) && length &&
        request != BOT_REQUEST_GET_MAX_LUN)
        violation("a class request returning data", usb_redir_control_packet);
}

static void check_packet(uint32_t type, const uint8_t *p, size_t n)
{
    size_t blen = oracle.bulk32 ? BULK32_HEADER : 8;

    switch (type) {
    case usb_redir_bulk_packet:
        if (n >= blen)
            check_bulk(p, p + blen, n - blen);
        break;
    case usb_redir_control_packet:
        if (n >= 10)
            check_control(p);
        break;
    case usb_redir_interrupt_packet:
    case usb_redir_iso_packet:
        if (n >= 1 && (ro() ? !(p[0] & 0x80) : (p[0] & 0x80)))
            violation("an interrupt/iso transfer in the forbidden direction",
                      type);
        break;
    case usb_redir_start_interrupt_receiving:
    case usb_redir_start_bulk_receiving:
        if (!ro())
            violation("receiving under wo", type);
        if (n >= 9 && type == usb_redir_start_bulk_receiving &&
            (p[8] & 0x8f) == STORAGE_IN)
            violation("receiving on the storage endpoint", type);
        break;
    case usb_redir_start_iso_stream:
        if (n >= 1 && (ro() ? !(p[0] & 0x80) : (p[0] & 0x80)))
            violation("an iso stream in the forbidden direction", type);
        break;
    case usb_redir_alloc_bulk_streams: violation("bulk streams", type); break;
    case usb_redir_set_configuration:
        if (n >= 1 && p[0] != CONFIG)
            violation("another configuration", type);
        break;
    case usb_redir_set_alt_setting:
        if (n >= 2 && (p[0] > OTHER_IFACE || (p[0] == STORAGE_IFACE && p[1])))
            violation("an altsetting not analysed", type);
        break;
    default: break;
    }
}

/* Parses whole packets off the forwarded bytes. */
static void oracle_parse(void)
{
    size_t off = 0;

    for (;;) {
        size_t hlen = oracle.hello_done && oracle.ids64 ? 16 : 12;
        if (oracle.len - off < hlen)
            break;
        uint32_t type = read_le32(oracle.buf + off);
        uint32_t length = read_le32(oracle.buf + off + 4);
        if (oracle.len - off < hlen + length)
            break;
        const uint8_t *p = oracle.buf + off + hlen;
        if (!oracle.hello_done) {
            uint32_t caps = length >= 68 ? read_le32(p + 64) : 0;
            oracle.ids64 = caps & (1u << usb_redir_cap_64bits_ids);
            oracle.bulk32 = caps & (1u << usb_redir_cap_32bits_bulk_length);
            oracle.hello_done = true;
        } else {
            check_packet(type, p, length);
        }
        off += hlen + length;
    }
    memmove(oracle.buf, oracle.buf + off, oracle.len - off);
    oracle.len -= off;
}

static int fwd(void *ctx, const uint8_t *d, size_t n)
{
    (void)ctx;
    forwarded += n;
    if (n > sizeof(oracle.buf) - oracle.len)
        return -1; /* longer than the oracle keeps: stop this input */
    memcpy(oracle.buf + oracle.len, d, n);
    oracle.len += n;
    oracle_parse();
    return 0;
}

static void reply(void *ctx, uint8_t *p, size_t n)
{
    (void)ctx;
    (void)n;
    free(p);
}

static const struct usb_mask_ops ops = {fwd, reply};

/* usbredirhost's hello: both capabilities, as it always offers them. */
static void host_hello(struct usb_mask *m)
{
    uint8_t h[12 + 64 + 4] = {0};

    put_le32(h, usb_redir_hello);
    put_le32(h + 4, 68);
    put_le32(h + 12 + 64, 1u << usb_redir_cap_64bits_ids |
                              1u << usb_redir_cap_32bits_bulk_length);
    usb_mask_to_guest(m, h, sizeof(h));
}

/* A cheap stick: Bulk-Only on 0x02/0x81 (altsetting 0 only), a vendor
 * interface 1 with interrupt pipes, and more bulk endpoints 3 and 4. */
static struct usb_mask_config stick(enum usb_access access)
{
    return (struct usb_mask_config){
        .access = access,
        .storage_out_ep = STORAGE_OUT,
        .storage_in_ep = STORAGE_IN,
        .bulk_out_eps = 1u << 2 | 1u << 3,
        .bulk_in_eps = 1u << 1 | 1u << 4,
        .configuration = CONFIG,
        .storage_interface = STORAGE_IFACE,
        .alts = {1u << 0, 1u << 0},
    };
}

/* Byte 0: access (ro or wo) and the chunk size; then chunks of the guest
 * stream, every 7th one offered as a host packet instead. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t host_packet[4096];

    if (size < 2)
        return 0;
    enum usb_access access = data[0] & 1 ? USB_ACCESS_WO : USB_ACCESS_RO;
    struct usb_mask_config cfg = stick(access);
    size_t chunk = (size_t)(data[1] % 64) + 1, fed = 0;
    struct usb_mask *m = usb_mask_new(&cfg, &ops, NULL);

    if (!m)
        return 0;
    memset(&oracle, 0, sizeof(oracle));
    forwarded = 0;
    oracle.access = access;
    host_hello(m);
    data += 2;
    size -= 2;
    for (size_t off = 0, i = 0; off < size; off += chunk, i++) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (i % 7 == 6 && n <= sizeof(host_packet)) {
            memcpy(host_packet, data + off, n);
            usb_mask_to_guest(m, host_packet, n);
            continue;
        }
        fed += n;
        if (usb_mask_from_guest(m, data + off, n) < 0)
            break;
    }
    usb_mask_free(m);
    if (forwarded > fed)
        abort(); /* the mask never invents bytes for the device */
    return 0;
}
