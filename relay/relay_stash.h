/* SPDX-License-Identifier: MIT */
/* Agent bytes on their way to a chardev that may not take them all: lz4
 * frames decoded while the chardev has room, the rest of the
 * read kept (one read at most) until the chardev drained. No I/O. */
#ifndef REDIR_RELAY_STASH_H
#define REDIR_RELAY_STASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream_codec.h"

struct relay_stash {
    uint8_t *data; /* NULL: empty */
    size_t len, off;
};

/* The sink (struct codec_sink): the chardev. Its full() is looked at
 * between frames, so the chardev's queue overshoots its mark by one frame
 * (64 KiB) at most. */

enum relay_stash_result {
    RELAY_STASH_ERROR = -1, /* a corrupt frame (dec->error), or no memory */
    RELAY_STASH_DONE = 0,   /* everything went to the sink */
    RELAY_STASH_KEPT = 1,   /* the sink is full: the rest waits here */
};

/* New bytes from the agent; the stash must be empty (the caller stops
 * reading while it is not). */
enum relay_stash_result relay_stash_feed(struct relay_stash *st,
                                         struct codec_decoder *dec,
                                         const uint8_t *data, size_t len,
                                         const struct codec_sink *sink);

/* The sink drained: decodes what was kept, as far as it takes it. */
enum relay_stash_result relay_stash_resume(struct relay_stash *st,
                                           struct codec_decoder *dec,
                                           const struct codec_sink *sink);

bool relay_stash_empty(const struct relay_stash *st);
void relay_stash_free(struct relay_stash *st);

#endif
