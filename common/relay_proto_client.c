/* SPDX-License-Identifier: MIT */
/* The relay handshake, agent side: answers the relay's HELLO with AUTH
 * (the MAC over both), then checks its RESULT and the relay's proof that
 * it knows the secret. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "relay_proto.h"
#include "relay_proto_int.h"

static int client_fail(struct relay_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int client_fail(struct relay_client *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    c->state = RELAY_CLIENT_FINISHED;
    return RELAY_HS_ERROR;
}

int relay_client_init(struct relay_client *c, const char *agent_id,
                      const char *target, const uint8_t *secret,
                      size_t secret_len, bool want_lz4)
{
    memset(c, 0, sizeof(*c));
    c->want_lz4 = want_lz4;
    if (!relay_proto__name_ok((const uint8_t *)agent_id, strlen(agent_id),
                              RELAY_ID_MAX, relay_proto__id_char_ok))
        return client_fail(c,
                           "agent id must be 1 to %d visible ASCII "
                           "characters",
                           RELAY_ID_MAX);
    if (!relay_proto__name_ok((const uint8_t *)target, strlen(target),
                              RELAY_TARGET_MAX, relay_proto__target_char_ok))
        return client_fail(c,
                           "target must be 1 to %d characters of "
                           "A-Z a-z 0-9 . _ -",
                           RELAY_TARGET_MAX);
    if (secret_len &&
        (secret_len < RELAY_SECRET_MIN || secret_len > RELAY_SECRET_MAX))
        return client_fail(c, "secret must be %d to %d bytes long",
                           RELAY_SECRET_MIN, RELAY_SECRET_MAX);
    if (sodium_init() < 0)
        return client_fail(c, "libsodium cannot be initialized");
    strcpy(c->agent_id, agent_id);
    strcpy(c->target, target);
    if (secret_len)
        memcpy(c->secret, secret, secret_len);
    c->secret_len = secret_len;
    randombytes_buf(c->nonce, sizeof(c->nonce));
    c->state = RELAY_CLIENT_WAIT_HELLO;
    return 0;
}

/* Queues AUTH in answer to the HELLO in c->msg. */
static int client_on_hello(struct relay_client *c)
{
    struct reader r;
    struct writer w;
    size_t nonce_len;

    relay_proto__reader_init(&r, c->msg);
    uint8_t min_version = relay_proto__get_u8(&r, "HELLO: versions");
    uint8_t max_version = relay_proto__get_u8(&r, "HELLO: versions");
    relay_proto__get_u32(&r, "HELLO: capabilities");
    relay_proto__get_str(&r, RELAY_NONCE_LEN, &nonce_len, "HELLO: nonce");
    if (r.bad || nonce_len != RELAY_NONCE_LEN || min_version > max_version)
        return client_fail(c, "malformed relay hello (%s)",
                           r.bad ? r.bad : "bad nonce or versions");
    /* A v1 relay cannot prove it knows the secret: talking to it would
     * hand the devices to whoever answers on its address. */
    if (max_version < RELAY_PROTO_VERSION)
        return client_fail(c,
                           "the relay speaks protocol version %u, which cannot "
                           "prove it is the real relay; upgrade redir-relay",
                           max_version);
    memcpy(c->hello, c->msg, c->msg_have);
    c->hello_len = c->msg_have;

    size_t mac_len = c->secret_len ? RELAY_MAC_LEN : 0;
    relay_proto__msg_begin(&w, c->out, TYPE_AUTH);
    relay_proto__put_u8(&w, RELAY_PROTO_VERSION);
    relay_proto__put_u32(&w, c->want_lz4 ? RELAY_CAP_LZ4 : 0);
    relay_proto__put_str(&w, c->agent_id, strlen(c->agent_id));
    relay_proto__put_str(&w, c->target, strlen(c->target));
    relay_proto__put_str(&w, c->nonce, sizeof(c->nonce));
    size_t prefix = w.len;
    uint8_t mac[RELAY_MAC_LEN];
    w.len += 1 + mac_len; /* body length must be final before MAC */
    relay_proto__msg_end(&w);
    relay_proto__compute_mac(mac, c->secret, c->secret_len, c->hello,
                             c->hello_len, c->out, prefix);
    w.len = prefix;
    relay_proto__put_str(&w, mac, mac_len);
    c->out_len = w.len;
    memcpy(c->auth, c->out, w.len);
    c->auth_len = w.len;
    c->state = RELAY_CLIENT_WAIT_RESULT;
    return RELAY_HS_NEED_MORE;
}

/* An accepting RESULT: with a secret, the relay must have proved it. */
static bool client_proof_ok(const struct relay_client *c, const uint8_t *proof,
                            size_t proof_len, size_t proof_offset)
{
    uint8_t want[RELAY_MAC_LEN];

    if (c->secret_len == 0)
        return true; /* TLS: the relay's certificate proved it */
    if (!proof || proof_len != RELAY_MAC_LEN)
        return false;
    relay_proto__compute_proof(want, c->secret, c->secret_len, c->hello,
                               c->hello_len, c->auth, c->auth_len, c->msg,
                               proof_offset);
    return sodium_memcmp(want, proof, RELAY_MAC_LEN) == 0;
}

static int client_on_result(struct relay_client *c)
{
    struct reader r;
    size_t text_len, proof_len = 0;
    const uint8_t *proof = NULL;

    relay_proto__reader_init(&r, c->msg);
    uint8_t status = relay_proto__get_u8(&r, "RESULT: status");
    uint32_t caps = relay_proto__get_u32(&r, "RESULT: capabilities");
    const uint8_t *text =
        relay_proto__get_str(&r, RELAY_TEXT_MAX, &text_len, "RESULT: text");
    size_t proof_offset = (size_t)(r.p - c->msg);
    if (!r.bad && r.left) /* v2; an early refusal has the v1 layout */
        proof = relay_proto__get_str(&r, RELAY_MAC_LEN, &proof_len,
                                     "RESULT: proof");
    if (r.bad || r.left)
        return client_fail(c, "malformed relay result (%s)",
                           r.bad ? r.bad : "trailing bytes");
    c->state = RELAY_CLIENT_FINISHED;
    if (status != RELAY_OK) {
        char clean[RELAY_TEXT_MAX + 1];
        relay_proto__copy_printable(clean, sizeof(clean), text, text_len,
                                    RELAY_TEXT_MAX);
        c->status = status;
        snprintf(c->reason, sizeof(c->reason), "%s%s%s",
                 relay_status_name(status), *clean ? ": " : "", clean);
        return RELAY_HS_REFUSED;
    }
    if (c->hello_len == 0)
        return client_fail(c, "relay accepted before its hello");
    if (!client_proof_ok(c, proof, proof_len, proof_offset))
        return client_fail(c, "the relay did not prove that it knows the "
                              "secret: not the real relay (wrong secret "
                              "there, or an impostor)");
    if (caps & ~(uint32_t)(c->want_lz4 ? RELAY_CAP_LZ4 : 0))
        return client_fail(c,
                           "relay agreed to capabilities 0x%x that were "
                           "not asked for",
                           caps);
    c->caps = caps;
    c->lz4 = caps & RELAY_CAP_LZ4;
    return RELAY_HS_DONE;
}

static int client_on_message(struct relay_client *c)
{
    uint8_t type = c->msg[RELAY_MAGIC_LEN];

    if (type == TYPE_RESULT)
        return client_on_result(c);
    if (type == TYPE_HELLO && c->state == RELAY_CLIENT_WAIT_HELLO)
        return client_on_hello(c);
    return client_fail(c, "unexpected handshake message type 0x%02x", type);
}

int relay_client_feed(struct relay_client *c, const uint8_t *data, size_t len,
                      size_t *consumed)
{
    *consumed = 0;
    if (c->state == RELAY_CLIENT_FINISHED) {
        if (!c->error[0])
            client_fail(c, "handshake already over");
        return RELAY_HS_ERROR;
    }
    while (*consumed < len) {
        const char *why;
        size_t used;
        int rc = relay_proto__msg_gather(c->msg, &c->msg_have, data + *consumed,
                                         len - *consumed, &used, &why);
        *consumed += used;
        if (rc < 0)
            return client_fail(c, "%s", why);
        if (rc == 0)
            break;
        rc = client_on_message(c);
        c->msg_have = 0;
        if (rc != RELAY_HS_NEED_MORE)
            return rc;
    }
    return RELAY_HS_NEED_MORE;
}

void relay_client_output_sent(struct relay_client *c) { c->out_len = 0; }

void relay_client_free(struct relay_client *c)
{
    sodium_memzero(c->secret, sizeof(c->secret));
    c->secret_len = 0;
}
