/* SPDX-License-Identifier: MIT */
/* Reconnect delays: exponential backoff with jitter. */
#include "backoff.h"

void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms)
{
    b->min_ms = min_ms ? min_ms : 1;
    b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
    b->next_ms = b->min_ms;
}

void backoff_reset(struct backoff *b) { b->next_ms = b->min_ms; }

uint32_t backoff_next(struct backoff *b, uint32_t random)
{
    uint64_t base = b->next_ms;
    /* jitter in [-base/4, +base/4] */
    uint64_t span = base / 2 + 1;
    uint64_t delay = base - base / 4 + random % span;

    b->next_ms = (base * 2 > b->max_ms) ? b->max_ms : (uint32_t)(base * 2);
    if (delay > b->max_ms + b->max_ms / 4)
        delay = b->max_ms;
    return delay ? (uint32_t)delay : 1;
}
