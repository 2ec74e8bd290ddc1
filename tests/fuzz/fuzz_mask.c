/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the access mask on hostile guest streams and host packets.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usb_mask.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t forwarded;

static int fwd(void *ctx, const uint8_t *d, size_t n)
{
    (void)ctx;
    (void)d;
    forwarded += n;
    return 0;
}

static void reply(void *ctx, uint8_t *p, size_t n)
{
    (void)ctx;
    (void)n;
    free(p);
}

static const struct usb_mask_ops ops = {fwd, reply};

/* Byte 0: access and split; then chunks of the guest stream, with every
 * 7th chunk offered as a host packet instead. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct usb_mask m;
    struct usb_mask_config cfg = {0};
    static uint8_t host_packet[4096];

    if (size < 2)
        return 0;
    cfg.access = (enum usb_access)(data[0] % 3);
    cfg.storage_out_ep = 0x02;
    cfg.storage_in_ep = 0x81;
    cfg.bulk_out_eps = 0x000c;
    cfg.bulk_in_eps = 0x0012;
    size_t chunk = (size_t)(data[1] % 64) + 1;
    data += 2;
    size -= 2;
    forwarded = 0;
    usb_mask_init(&m, &cfg, &ops, NULL);
    size_t fed = 0;
    for (size_t off = 0, i = 0; off < size; off += chunk, i++) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (i % 7 == 6 && n <= sizeof(host_packet)) {
            memcpy(host_packet, data + off, n);
            usb_mask_to_guest(&m, host_packet, n);
            continue;
        }
        fed += n;
        if (usb_mask_from_guest(&m, data + off, n) < 0)
            break;
    }
    if (forwarded > fed)
        abort(); /* the mask never invents bytes for the host */
    return 0;
}
