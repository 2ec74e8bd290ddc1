/* SPDX-License-Identifier: MIT */
/* Agent bytes on their way to a chardev that may not take them all: lz4
 * frames decoded while the chardev has room, the rest of the
 * read kept (one read at most) until the chardev drained. No I/O. */
#include "relay_stash.h"

#include <stdlib.h>
#include <string.h>

/* Decodes until the sink is full, frame by frame (no slices: a read's
 * frames are decoded from the read buffer itself and lz4 blocks go to the
 * sink whole); returns the bytes taken, or SIZE_MAX on a corrupt stream. */
static size_t decode_some(struct codec_decoder *dec, const uint8_t *data,
                          size_t len, const struct codec_sink *sink)
{
    size_t used;

    if (codec_decode_to(dec, data, len, sink, &used) < 0)
        return SIZE_MAX;
    return used;
}

enum relay_stash_result relay_stash_feed(struct relay_stash *st,
                                         struct codec_decoder *dec,
                                         const uint8_t *data, size_t len,
                                         const struct codec_sink *sink)
{
    if (st->data) /* the caller read while it should not have */
        return RELAY_STASH_ERROR;
    size_t used = decode_some(dec, data, len, sink);
    if (used == SIZE_MAX)
        return RELAY_STASH_ERROR;
    if (used == len)
        return RELAY_STASH_DONE;
    st->data = malloc(len - used);
    if (!st->data)
        return RELAY_STASH_ERROR;
    memcpy(st->data, data + used, len - used);
    st->len = len - used;
    st->off = 0;
    return RELAY_STASH_KEPT;
}

enum relay_stash_result relay_stash_resume(struct relay_stash *st,
                                           struct codec_decoder *dec,
                                           const struct codec_sink *sink)
{
    if (!st->data)
        return RELAY_STASH_DONE;
    size_t used = decode_some(dec, st->data + st->off, st->len - st->off, sink);
    if (used == SIZE_MAX)
        return RELAY_STASH_ERROR;
    st->off += used;
    if (st->off < st->len)
        return RELAY_STASH_KEPT; /* full again */
    relay_stash_free(st);
    return RELAY_STASH_DONE;
}

bool relay_stash_empty(const struct relay_stash *st) { return !st->data; }

void relay_stash_free(struct relay_stash *st)
{
    free(st->data);
    *st = (struct relay_stash){NULL, 0, 0};
}
