/* SPDX-License-Identifier: MIT */
/* The agent<->relay handshake: versions, capabilities, target and an
 * HMAC-SHA256 challenge-response, before any stream byte. This file: what
 * both sides use (message framing, fields, name checks, the MACs, status
 * names, the early refusal); the agent's side is in relay_proto_client.c,
 * the relay's in relay_proto_server.c. */
#include "relay_proto.h"

#include <sodium.h>
#include <string.h>

#include "relay_proto_int.h"

/* ---- bytes in and out ---- */

void relay_proto__put_u8(struct writer *w, uint8_t v) { w->buf[w->len++] = v; }

void relay_proto__put_u32(struct writer *w, uint32_t v)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        relay_proto__put_u8(w, (uint8_t)(v >> shift));
}

void relay_proto__put_str(struct writer *w, const void *p, size_t len)
{
    relay_proto__put_u8(w, (uint8_t)len);
    if (len)
        memcpy(w->buf + w->len, p, len);
    w->len += len;
}

/* Starts a message; relay_proto__msg_end() fills in its body length. Callers
 * only write bounded fields, well under RELAY_BODY_MAX. */
void relay_proto__msg_begin(struct writer *w, uint8_t *buf, uint8_t type)
{
    w->buf = buf;
    w->len = 0;
    memcpy(buf, RELAY_MAGIC, RELAY_MAGIC_LEN);
    w->len = RELAY_MAGIC_LEN;
    relay_proto__put_u8(w, type);
    w->len += 2;
}

size_t relay_proto__msg_end(struct writer *w)
{
    size_t body = w->len - RELAY_MSG_HEADER;
    w->buf[RELAY_MAGIC_LEN + 1] = (uint8_t)(body >> 8);
    w->buf[RELAY_MAGIC_LEN + 2] = (uint8_t)body;
    return w->len;
}

static size_t msg_body_len(const uint8_t *msg)
{
    return (size_t)msg[RELAY_MAGIC_LEN + 1] << 8 | msg[RELAY_MAGIC_LEN + 2];
}

uint8_t relay_proto__get_u8(struct reader *r, const char *what)
{
    if (r->left < 1) {
        if (!r->bad)
            r->bad = what;
        return 0;
    }
    r->left--;
    return *r->p++;
}

uint32_t relay_proto__get_u32(struct reader *r, const char *what)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | relay_proto__get_u8(r, what);
    return v;
}

/* A STR field of at most max bytes; NULL (and r->bad) if it does not fit. */
const uint8_t *relay_proto__get_str(struct reader *r, size_t max, size_t *len,
                                    const char *what)
{
    *len = relay_proto__get_u8(r, what);
    if (r->bad || *len > max || *len > r->left) {
        if (!r->bad)
            r->bad = what;
        *len = 0;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += *len;
    r->left -= *len;
    return p;
}

void relay_proto__reader_init(struct reader *r, const uint8_t *msg)
{
    r->p = msg + RELAY_MSG_HEADER;
    r->left = msg_body_len(msg);
    r->bad = NULL;
}

/* Gathers one message into msg (RELAY_MSG_MAX bytes) as bytes arrive,
 * checking the magic and the length as soon as they are there. Returns 1
 * when complete, 0 when all of data was taken and more is needed, -1 with
 * *why. *used: bytes taken from data. */
int relay_proto__msg_gather(uint8_t *msg, size_t *have, const uint8_t *data,
                            size_t len, size_t *used, const char **why)
{
    *used = 0;
    while (*have < RELAY_MSG_HEADER && *used < len) {
        uint8_t b = data[(*used)++];
        if (*have < RELAY_MAGIC_LEN && b != (uint8_t)RELAY_MAGIC[*have]) {
            *why = "no RDRL magic: the peer does not speak the relay "
                   "protocol";
            return -1;
        }
        msg[(*have)++] = b;
    }
    if (*have < RELAY_MSG_HEADER)
        return 0;
    size_t total = RELAY_MSG_HEADER + msg_body_len(msg);
    if (total > RELAY_MSG_MAX) {
        *why = "handshake message longer than the protocol allows";
        return -1;
    }
    size_t n = len - *used < total - *have ? len - *used : total - *have;
    memcpy(msg + *have, data + *used, n);
    *have += n;
    *used += n;
    return *have == total;
}

bool relay_proto__id_char_ok(uint8_t c) { return c > ' ' && c < 0x7f; }

bool relay_proto__target_char_ok(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Checks an agent id or target, on both sides. */
bool relay_proto__name_ok(const uint8_t *p, size_t len, size_t max,
                          bool (*char_ok)(uint8_t))
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!char_ok(p[i]))
            return false;
    return true;
}

/* HMAC-SHA256(secret, hello || auth_prefix): the proof in AUTH. */
void relay_proto__compute_mac(uint8_t mac[RELAY_MAC_LEN], const uint8_t *secret,
                              size_t secret_len, const uint8_t *hello,
                              size_t hello_len, const uint8_t *auth,
                              size_t auth_len)
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, hello, hello_len);
    crypto_auth_hmacsha256_update(&st, auth, auth_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

/* The relay's PROOF: HMAC-SHA256(secret, label || hello || auth ||
 * result_prefix). The label keeps it from ever equalling an agent's MAC. */
void relay_proto__compute_proof(uint8_t mac[RELAY_MAC_LEN],
                                const uint8_t *secret, size_t secret_len,
                                const uint8_t *hello, size_t hello_len,
                                const uint8_t *auth, size_t auth_len,
                                const uint8_t *result, size_t result_len)
{
    crypto_auth_hmacsha256_state st;

    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)RELAY_PROOF_LABEL,
                                  sizeof(RELAY_PROOF_LABEL) - 1);
    crypto_auth_hmacsha256_update(&st, hello, hello_len);
    crypto_auth_hmacsha256_update(&st, auth, auth_len);
    crypto_auth_hmacsha256_update(&st, result, result_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

const char *relay_status_name(int status)
{
    switch (status) {
    case RELAY_OK: return "ok";
    case RELAY_REFUSED_AUTH: return "not authenticated";
    case RELAY_REFUSED_TARGET: return "unknown target";
    case RELAY_REFUSED_VERSION: return "version mismatch";
    case RELAY_REFUSED_MALFORMED: return "malformed handshake";
    case RELAY_REFUSED_BUSY: return "busy";
    case RELAY_REFUSED_UNAVAILABLE: return "target unavailable";
    default: return "refused";
    }
}

/* Copies text into out, printable ASCII only, at most max characters. */
void relay_proto__copy_printable(char *out, size_t out_len, const uint8_t *text,
                                 size_t len, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < len && i < max && n + 1 < out_len; i++)
        out[n++] = text[i] >= ' ' && text[i] < 0x7f ? (char)text[i] : '?';
    out[n] = '\0';
}

/* A RESULT message up to, not including, a v2 PROOF, for the relay's
 * answer and for the early refusal; w is left open for the PROOF. */
void relay_proto__begin_result(struct writer *w, uint8_t *out, int status,
                               uint32_t caps, const char *text)
{
    char clean[RELAY_TEXT_MAX + 1];

    text = text ? text : "";
    relay_proto__copy_printable(clean, sizeof(clean), (const uint8_t *)text,
                                strlen(text), RELAY_TEXT_MAX);
    relay_proto__msg_begin(w, out, TYPE_RESULT);
    relay_proto__put_u8(w, (uint8_t)status);
    relay_proto__put_u32(w, caps);
    relay_proto__put_str(w, clean, strlen(clean));
}

size_t relay_refusal_message(uint8_t *out, int status, const char *text)
{
    struct writer w;

    relay_proto__begin_result(&w, out, status, 0, text);
    return relay_proto__msg_end(&w);
}
