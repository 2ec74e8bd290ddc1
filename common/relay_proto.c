/* SPDX-License-Identifier: MIT */
/* The agent<->relay handshake: versions, capabilities, target and an
 * HMAC-SHA256 challenge-response, before any stream byte. */
#include "relay_proto.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TYPE_HELLO 'H'
#define TYPE_AUTH 'A'
#define TYPE_RESULT 'R'

/* ---- bytes in and out ---- */

struct writer {
    uint8_t *buf;
    size_t len;
};

static void put_u8(struct writer *w, uint8_t v) { w->buf[w->len++] = v; }

static void put_u32(struct writer *w, uint32_t v)
{
    for (int shift = 24; shift >= 0; shift -= 8)
        put_u8(w, (uint8_t)(v >> shift));
}

static void put_str(struct writer *w, const void *p, size_t len)
{
    put_u8(w, (uint8_t)len);
    if (len)
        memcpy(w->buf + w->len, p, len);
    w->len += len;
}

/* Starts a message; msg_end() fills in its body length. Callers only
 * write bounded fields, well under RELAY_BODY_MAX. */
static void msg_begin(struct writer *w, uint8_t *buf, uint8_t type)
{
    w->buf = buf;
    w->len = 0;
    memcpy(buf, RELAY_MAGIC, RELAY_MAGIC_LEN);
    w->len = RELAY_MAGIC_LEN;
    put_u8(w, type);
    w->len += 2;
}

static size_t msg_end(struct writer *w)
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

struct reader {
    const uint8_t *p;
    size_t left;
    const char *bad; /* first problem */
};

static uint8_t get_u8(struct reader *r, const char *what)
{
    if (r->left < 1) {
        if (!r->bad)
            r->bad = what;
        return 0;
    }
    r->left--;
    return *r->p++;
}

static uint32_t get_u32(struct reader *r, const char *what)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | get_u8(r, what);
    return v;
}

/* A STR field of at most max bytes; NULL (and r->bad) if it does not fit. */
static const uint8_t *get_str(struct reader *r, size_t max, size_t *len,
                              const char *what)
{
    *len = get_u8(r, what);
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

static void reader_init(struct reader *r, const uint8_t *msg)
{
    r->p = msg + RELAY_MSG_HEADER;
    r->left = msg_body_len(msg);
    r->bad = NULL;
}

/* Gathers one message into msg (RELAY_MSG_MAX bytes) as bytes arrive,
 * checking the magic and the length as soon as they are there. Returns 1
 * when complete, 0 when all of data was taken and more is needed, -1 with
 * *why. *used: bytes taken from data. */
static int msg_gather(uint8_t *msg, size_t *have, const uint8_t *data,
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

static bool id_char_ok(uint8_t c) { return c > ' ' && c < 0x7f; }

static bool target_char_ok(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Checks an agent id or target, on both sides. */
static bool name_ok(const uint8_t *p, size_t len, size_t max,
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
static void compute_mac(uint8_t mac[RELAY_MAC_LEN], const uint8_t *secret,
                        size_t secret_len, const uint8_t *hello,
                        size_t hello_len, const uint8_t *auth, size_t auth_len)
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
static void compute_proof(uint8_t mac[RELAY_MAC_LEN], const uint8_t *secret,
                          size_t secret_len, const uint8_t *hello,
                          size_t hello_len, const uint8_t *auth,
                          size_t auth_len, const uint8_t *result,
                          size_t result_len)
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
static void copy_printable(char *out, size_t out_len, const uint8_t *text,
                           size_t len, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < len && i < max && n + 1 < out_len; i++)
        out[n++] = text[i] >= ' ' && text[i] < 0x7f ? (char)text[i] : '?';
    out[n] = '\0';
}

/* A RESULT message up to, not including, a v2 PROOF, for the relay's
 * answer and for the early refusal; w is left open for the PROOF. */
static void begin_result(struct writer *w, uint8_t *out, int status,
                         uint32_t caps, const char *text)
{
    char clean[RELAY_TEXT_MAX + 1];

    text = text ? text : "";
    copy_printable(clean, sizeof(clean), (const uint8_t *)text, strlen(text),
                   RELAY_TEXT_MAX);
    msg_begin(w, out, TYPE_RESULT);
    put_u8(w, (uint8_t)status);
    put_u32(w, caps);
    put_str(w, clean, strlen(clean));
}

size_t relay_refusal_message(uint8_t *out, int status, const char *text)
{
    struct writer w;

    begin_result(&w, out, status, 0, text);
    return msg_end(&w);
}

/* ---- agent side ---- */

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
    if (!name_ok((const uint8_t *)agent_id, strlen(agent_id), RELAY_ID_MAX,
                 id_char_ok))
        return client_fail(c,
                           "agent id must be 1 to %d visible ASCII "
                           "characters",
                           RELAY_ID_MAX);
    if (!name_ok((const uint8_t *)target, strlen(target), RELAY_TARGET_MAX,
                 target_char_ok))
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

    reader_init(&r, c->msg);
    uint8_t min_version = get_u8(&r, "HELLO: versions");
    uint8_t max_version = get_u8(&r, "HELLO: versions");
    get_u32(&r, "HELLO: capabilities");
    get_str(&r, RELAY_NONCE_LEN, &nonce_len, "HELLO: nonce");
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
    msg_begin(&w, c->out, TYPE_AUTH);
    put_u8(&w, RELAY_PROTO_VERSION);
    put_u32(&w, c->want_lz4 ? RELAY_CAP_LZ4 : 0);
    put_str(&w, c->agent_id, strlen(c->agent_id));
    put_str(&w, c->target, strlen(c->target));
    put_str(&w, c->nonce, sizeof(c->nonce));
    size_t prefix = w.len;
    uint8_t mac[RELAY_MAC_LEN];
    w.len += 1 + mac_len; /* body length must be final before MAC */
    msg_end(&w);
    compute_mac(mac, c->secret, c->secret_len, c->hello, c->hello_len, c->out,
                prefix);
    w.len = prefix;
    put_str(&w, mac, mac_len);
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
    compute_proof(want, c->secret, c->secret_len, c->hello, c->hello_len,
                  c->auth, c->auth_len, c->msg, proof_offset);
    return sodium_memcmp(want, proof, RELAY_MAC_LEN) == 0;
}

static int client_on_result(struct relay_client *c)
{
    struct reader r;
    size_t text_len, proof_len = 0;
    const uint8_t *proof = NULL;

    reader_init(&r, c->msg);
    uint8_t status = get_u8(&r, "RESULT: status");
    uint32_t caps = get_u32(&r, "RESULT: capabilities");
    const uint8_t *text =
        get_str(&r, RELAY_TEXT_MAX, &text_len, "RESULT: text");
    size_t proof_offset = (size_t)(r.p - c->msg);
    if (!r.bad && r.left) /* v2; an early refusal has the v1 layout */
        proof = get_str(&r, RELAY_MAC_LEN, &proof_len, "RESULT: proof");
    if (r.bad || r.left)
        return client_fail(c, "malformed relay result (%s)",
                           r.bad ? r.bad : "trailing bytes");
    c->state = RELAY_CLIENT_FINISHED;
    if (status != RELAY_OK) {
        char clean[RELAY_TEXT_MAX + 1];
        copy_printable(clean, sizeof(clean), text, text_len, RELAY_TEXT_MAX);
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
        int rc = msg_gather(c->msg, &c->msg_have, data + *consumed,
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

/* ---- relay side ---- */

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
    msg_begin(&w, s->hello, TYPE_HELLO);
    put_u8(&w, RELAY_PROTO_MIN_VERSION);
    put_u8(&w, RELAY_PROTO_VERSION);
    put_u32(&w, caps_offered);
    put_str(&w, nonce, sizeof(nonce));
    s->hello_len = msg_end(&w);
    memcpy(s->out, s->hello, s->hello_len);
    s->out_len = s->hello_len;
    s->state = RELAY_SERVER_WAIT_AUTH;
    return 0;
}

/* Parses the AUTH in s->msg after its version was accepted. */
static int server_parse_auth(struct relay_server *s, struct reader *r)
{
    size_t id_len, target_len, nonce_len = RELAY_NONCE_LEN, mac_len;

    s->caps_wanted = get_u32(r, "capabilities");
    const uint8_t *id = get_str(r, RELAY_ID_MAX, &id_len, "agent id");
    const uint8_t *target = get_str(r, RELAY_TARGET_MAX, &target_len, "target");
    if (s->version >= 2)
        get_str(r, RELAY_NONCE_LEN, &nonce_len, "agent nonce");
    s->mac_offset = (size_t)(r->p - s->msg);
    get_str(r, RELAY_MAC_LEN, &mac_len, "MAC");
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
    if (!name_ok(id, id_len, RELAY_ID_MAX, id_char_ok))
        return server_refuse(s, RELAY_REFUSED_MALFORMED,
                             "AUTH: agent id empty or not visible ASCII");
    if (!name_ok(target, target_len, RELAY_TARGET_MAX, target_char_ok))
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
    reader_init(&r, s->msg);
    s->version = get_u8(&r, "version");
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
    int rc = msg_gather(s->msg, &s->msg_have, data, len, consumed, &why);
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
    compute_mac(mac, secret, secret_len, s->hello, s->hello_len, s->msg,
                s->mac_offset);
    return sodium_memcmp(mac, s->msg + s->mac_offset + 1, RELAY_MAC_LEN) == 0;
}

/* v2 RESULTs end with a PROOF field: empty, or the proof of the secret. */
static void server_send_result(struct relay_server *s, int status,
                               const char *text, const uint8_t *secret,
                               size_t secret_len)
{
    struct writer w;

    s->caps = status == RELAY_OK ? s->caps_wanted & s->caps_offered : 0;
    begin_result(&w, s->out, status, s->caps, text);
    if (s->version >= 2 && status == RELAY_OK && secret_len) {
        uint8_t proof[RELAY_MAC_LEN];
        size_t prefix = w.len;
        w.len += 1 + RELAY_MAC_LEN;
        msg_end(&w); /* the PROOF covers the final body length */
        compute_proof(proof, secret, secret_len, s->hello, s->hello_len, s->msg,
                      s->msg_have, s->out, prefix);
        w.len = prefix;
        put_str(&w, proof, RELAY_MAC_LEN);
    } else if (s->version >= 2) {
        put_str(&w, NULL, 0);
    }
    s->out_len = msg_end(&w);
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
