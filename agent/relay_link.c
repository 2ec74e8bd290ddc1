/* A session's link to redir-relay: the handshake, then lz4 frames or raw bytes
 * both ways. */
#include "relay_link.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "relay_secret.h"

#define HOSTNAME_MAX 64

/* The secret is read on every connection: a rotated key applies without a
 * restart, and it is wiped from memory as soon as the handshake has it. */
int relay_link_init(struct relay_link *l, const struct agent_config *cfg,
                    const char *target, char *err)
{
    uint8_t secret[RELAY_SECRET_MAX];
    size_t secret_len = 0;
    char host[HOSTNAME_MAX] = "thin-client";
    const char *id = cfg->agent_id;

    memset(l, 0, sizeof(*l));
    if (relay_secret_load(cfg->relay_secret_file, secret, &secret_len, err) < 0)
        return -1;
    if (!id) {
        gethostname(host, sizeof(host) - 1);
        id = host;
    }
    int rc = relay_client_init(&l->hs, id, target, secret, secret_len,
                               cfg->usb_transport == USB_TRANSPORT_LZ4);
    sodium_memzero(secret, sizeof(secret));
    if (rc < 0) {
        snprintf(err, RELAY_ERR_MAX, "%s", l->hs.error);
        relay_client_free(&l->hs);
        return -1;
    }
    l->handshaking = true;
    codec_encoder_init(&l->enc);
    codec_decoder_init(&l->dec);
    return 0;
}

void relay_link_free(struct relay_link *l)
{
    relay_client_free(&l->hs);
    codec_encoder_free(&l->enc);
    codec_decoder_free(&l->dec);
}
