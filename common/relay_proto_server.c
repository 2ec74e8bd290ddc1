/* SPDX-License-Identifier: MIT */
/* The relay handshake, relay side: sends HELLO with a nonce, reads the
 * agent's AUTH, lets the caller verify the MAC and decide, and sends the
 * RESULT (with the proof of the secret). */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "relay_proto.h"
#include "relay_proto_int.h"

static int server_refuse(struct relay_server *s, int status, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

static int server_refuse(struct relay_server *s, int status, const char *fmt,
                         ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
    s->status = status;
    relay_server_result(s, status, s->error);
    return RELAY_HS_ERROR;
}

int relay_server_init(struct relay_server *s, uint32_t caps_offered)
{
    struct writer w;
    uint8_t nonce[RELAY_NONCE_LEN];

    memset(s, 0, sizeof(*s));
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(nonce, sizeof(nonce));
    s->caps_offered = caps_offered;
    relay_proto__msg_begin(&w, s->hello, TYPE_HELLO);
    relay_proto__put_u8(&w, RELAY_PROTO_MIN_VERSION);
    relay_proto__put_u8(&w, RELAY_PROTO_VERSION);
    relay_proto__put_u32(&w, caps_offered);
    relay_proto__put_str(&w, nonce, sizeof(nonce));
    s->hello_len = relay_proto__msg_end(&w);
    memcpy(s->out, s->hello, s->hello_len);
    s->out_len = s->hello_len;
    s->state = RELAY_SERVER_WAIT_AUTH;
    return 0;
}

/* Parses the AUTH in s->msg after its version was accepted. */
static int server_parse_auth(struct relay_server *s, struct reader *r)
{
    size_t id_len, target_len, nonce_len = RELAY_NONCE_LEN, mac_len;

    s->caps_wanted = relay_proto__get_u32(r, "capabilities");
    const uint8_t *id =
        relay_proto__get_str(r, RELAY_ID_MAX, &id_len, "agent id");
    const uint8_t *target =
        relay_proto__get_str(r, RELAY_TARGET_MAX, &target_len, "target");
    if (s->version >= 2)
        relay_proto__get_str(r, RELAY_NONCE_LEN, &nonce_len, "agent nonce");
    s->mac_offset = (size_t)(r->p - s->msg);
    relay_proto__get_str(r, RELAY_MAC_LEN, &mac_len, "MAC");
    if (r->bad)
        return server_refuse(s, RELAY_REFUSED_MALFORMED,
                             "AUTH: %s missing or too long", r->bad);
    if (r->left || nonce_len != RELAY_NONCE_LEN ||
        (mac_len != RELAY_MAC_LEN && !(s->version >= 2 && mac_len == 0)))
        return server_refuse(s, RELAY_REFUSED_MALFORMED, "AUTH: %s",
                             r->left ? "trailing bytes"
                             : nonce_len != RELAY_NONCE_LEN
                                 ? "short nonce"
                                 : "MAC of the wrong length");
    s->has_mac = mac_len == RELAY_MAC_LEN;
    if (!relay_proto__name_ok(id, id_len, RELAY_ID_MAX,
                              relay_proto__id_char_ok))
        return server_refuse(s, RELAY_REFUSED_MALFORMED,
                             "AUTH: agent id empty or not visible ASCII");
    if (!relay_proto__name_ok(target, target_len, RELAY_TARGET_MAX,
                              relay_proto__target_char_ok))
        return server_refuse(s, RELAY_REFUSED_MALFORMED,
                             "AUTH: target empty or not [A-Za-z0-9._-]");
    memcpy(s->agent_id, id, id_len);
    s->agent_id[id_len] = '\0';
    memcpy(s->target, target, target_len);
    s->target[target_len] = '\0';
    s->state = RELAY_SERVER_DECIDE;
    return RELAY_HS_AUTH;
}

static int server_on_message(struct relay_server *s)
{
    struct reader r;

    if (s->msg[RELAY_MAGIC_LEN] != TYPE_AUTH)
        return server_refuse(s, RELAY_REFUSED_MALFORMED,
                             "expected AUTH, got message type 0x%02x",
                             s->msg[RELAY_MAGIC_LEN]);
    relay_proto__reader_init(&r, s->msg);
    s->version = relay_proto__get_u8(&r, "version");
    if (r.bad)
        return server_refuse(s, RELAY_REFUSED_MALFORMED, "AUTH: empty");
    if (s->version < RELAY_PROTO_MIN_VERSION ||
        s->version > RELAY_PROTO_VERSION)
        return server_refuse(s, RELAY_REFUSED_VERSION,
                             "agent speaks protocol version %u, this relay "
                             "versions %u to %u",
                             s->version, RELAY_PROTO_MIN_VERSION,
                             RELAY_PROTO_VERSION);
    return server_parse_auth(s, &r);
}

int relay_server_feed(struct relay_server *s, const uint8_t *data, size_t len,
                      size_t *consumed)
{
    const char *why;

    *consumed = 0;
    if (s->state != RELAY_SERVER_WAIT_AUTH) {
        if (s->state == RELAY_SERVER_FINISHED)
            return RELAY_HS_ERROR;
        return server_refuse(s, RELAY_REFUSED_MALFORMED,
                             "data before the relay's answer");
    }
    if (len == 0)
        return RELAY_HS_NEED_MORE;
    int rc = relay_proto__msg_gather(s->msg, &s->msg_have, data, len, consumed,
                                     &why);
    if (rc < 0)
        return server_refuse(s, RELAY_REFUSED_MALFORMED, "%s", why);
    if (rc == 0)
        return RELAY_HS_NEED_MORE;
    return server_on_message(s);
}

bool relay_server_verify(const struct relay_server *s, const uint8_t *secret,
                         size_t secret_len)
{
    uint8_t mac[RELAY_MAC_LEN];

    if (s->state != RELAY_SERVER_DECIDE || !s->has_mac)
        return false;
    relay_proto__compute_mac(mac, secret, secret_len, s->hello, s->hello_len,
                             s->msg, s->mac_offset);
    return sodium_memcmp(mac, s->msg + s->mac_offset + 1, RELAY_MAC_LEN) == 0;
}

/* v2 RESULTs end with a PROOF field: empty, or the proof of the secret. */
static void server_send_result(struct relay_server *s, int status,
                               const char *text, const uint8_t *secret,
                               size_t secret_len)
{
    struct writer w;

    s->caps = status == RELAY_OK ? s->caps_wanted & s->caps_offered : 0;
    relay_proto__begin_result(&w, s->out, status, s->caps, text);
    if (s->version >= 2 && status == RELAY_OK && secret_len) {
        uint8_t proof[RELAY_MAC_LEN];
        size_t prefix = w.len;
        w.len += 1 + RELAY_MAC_LEN;
        relay_proto__msg_end(&w); /* the PROOF covers the final body length */
        relay_proto__compute_proof(proof, secret, secret_len, s->hello,
                                   s->hello_len, s->msg, s->msg_have, s->out,
                                   prefix);
        w.len = prefix;
        relay_proto__put_str(&w, proof, RELAY_MAC_LEN);
    } else if (s->version >= 2) {
        relay_proto__put_str(&w, NULL, 0);
    }
    s->out_len = relay_proto__msg_end(&w);
    s->state = RELAY_SERVER_FINISHED;
}

void relay_server_result(struct relay_server *s, int status, const char *text)
{
    server_send_result(s, status, text, NULL, 0);
}

void relay_server_accept(struct relay_server *s, const uint8_t *secret,
                         size_t secret_len)
{
    server_send_result(s, RELAY_OK, NULL, secret, secret_len);
}

void relay_server_output_sent(struct relay_server *s) { s->out_len = 0; }
