/* SPDX-License-Identifier: MIT */
/* Reconnect delays: exponential backoff with jitter. */
#ifndef REDIR_BACKOFF_H
#define REDIR_BACKOFF_H

#include <stdint.h>

struct backoff {
    uint32_t min_ms;
    uint32_t max_ms;
    uint32_t next_ms; /* un-jittered delay of the next attempt */
};

void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms);
void backoff_reset(struct backoff *b);

/* Returns the delay before the next attempt and doubles the following one.
 * random is any 32-bit random value; the result is jittered by +-25 % so
 * that many clients cut off together do not reconnect in lockstep. */
uint32_t backoff_next(struct backoff *b, uint32_t random);

#endif
