/* SPDX-License-Identifier: MIT */
/* Early sanity check of a peer's first usbredir packet, before usbredirhost
 * sees it. */
#include "usbredir_hello.h"
#include "byteorder.h"

#include <usbredirproto.h>

enum usbredir_hello_result usbredir_hello_check(const uint8_t *data, size_t len,
                                                const char **why)
{
    static const uint8_t hello_type[4] = {usb_redir_hello, 0, 0, 0};

    /* Judge the type as soon as its bytes arrive: garbage is rejected even
     * when the peer sends fewer than 12 bytes and then waits. */
    for (size_t i = 0; i < len && i < 4; i++) {
        if (data[i] != hello_type[i]) {
            *why = "first packet is not a usbredir hello";
            return USBREDIR_HELLO_BAD;
        }
    }
    if (len < USBREDIR_HELLO_HEADER_LEN)
        return USBREDIR_HELLO_NEED_MORE;

    uint32_t length = read_le32(data + 4);
    if (length < USBREDIR_HELLO_VERSION_LEN ||
        length > USBREDIR_HELLO_MAX_LEN ||
        (length - USBREDIR_HELLO_VERSION_LEN) % 4 != 0) {
        *why = "usbredir hello has an invalid length";
        return USBREDIR_HELLO_BAD;
    }
    return USBREDIR_HELLO_OK;
}
