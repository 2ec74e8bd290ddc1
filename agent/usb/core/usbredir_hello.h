/* SPDX-License-Identifier: MIT */
/* Early sanity check of a peer's first usbredir packet, before usbredirhost
 * sees it. */
#ifndef REDIR_USBREDIR_HELLO_H
#define REDIR_USBREDIR_HELLO_H

#include <stddef.h>
#include <stdint.h>

/* The hello header is always the 12-byte form: 64-bit ids are only
 * negotiated by the hello itself. */
#define USBREDIR_HELLO_HEADER_LEN 12
#define USBREDIR_HELLO_VERSION_LEN 64
/* Room for 32 capability words; usbredir 0.13 uses one. Anything longer is
 * not a usbredir peer. */
#define USBREDIR_HELLO_MAX_LEN (USBREDIR_HELLO_VERSION_LEN + 4 * 32)

enum usbredir_hello_result {
    USBREDIR_HELLO_BAD = -1,
    USBREDIR_HELLO_NEED_MORE = 0,
    USBREDIR_HELLO_OK = 1,
};

/* Looks at the first len bytes received from a peer. Returns OK once the
 * header of a plausible hello is seen, NEED_MORE before that, BAD (with a
 * reason in *why) for anything that cannot be a usbredir peer. */
enum usbredir_hello_result usbredir_hello_check(const uint8_t *data, size_t len,
                                                const char **why);

#endif
