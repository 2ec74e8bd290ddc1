/* A session's link to redir-relay: the handshake, then lz4 frames or raw bytes
 * both ways. */
#ifndef REDIR_RELAY_LINK_H
#define REDIR_RELAY_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay_proto.h"
#include "stream_codec.h"

struct agent_config;

struct relay_link {
    struct relay_client hs;
    bool handshaking;
    bool lz4;      /* agreed by the relay: frames both ways */
    bool compress; /* lz4, and the device is not isochronous */
    struct codec_encoder enc;
    struct codec_decoder dec;
    uint8_t stage[CODEC_MAX_CHUNK]; /* small packets gathered per frame */
};

/* Loads the secret and prepares the handshake for target. Returns 0, or
 * -1 with why in err (RELAY_ERR_MAX bytes). */
int relay_link_init(struct relay_link *l, const struct agent_config *cfg,
                    const char *target, char *err);
void relay_link_free(struct relay_link *l);

#endif
