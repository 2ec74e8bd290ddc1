/* SPDX-License-Identifier: MIT */
/* What the files of the relay handshake share: message framing, the
 * field readers and writers, name checks and the two MACs. Not for other
 * modules. relay_proto.c: these; relay_proto_client.c: the agent side;
 * relay_proto_server.c: the relay side. */
#ifndef REDIR_RELAY_PROTO_INT_H
#define REDIR_RELAY_PROTO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relay_proto.h"

#define TYPE_HELLO 'H'
#define TYPE_AUTH 'A'
#define TYPE_RESULT 'R'

/* Builds a message in a caller's buffer of RELAY_MSG_MAX bytes. */
struct writer {
    uint8_t *buf;
    size_t len;
};

/* Reads the body of a gathered message; the first problem is kept. */
struct reader {
    const uint8_t *p;
    size_t left;
    const char *bad; /* first problem */
};

void relay_proto__put_u8(struct writer *w, uint8_t v);
void relay_proto__put_u32(struct writer *w, uint32_t v);
/* A STR field: a length byte, then len bytes. */
void relay_proto__put_str(struct writer *w, const void *p, size_t len);
/* Starts a message; relay_proto__msg_end() fills in its body length and
 * returns the message's length. Callers only write bounded fields, well
 * under RELAY_BODY_MAX. */
void relay_proto__msg_begin(struct writer *w, uint8_t *buf, uint8_t type);
size_t relay_proto__msg_end(struct writer *w);

void relay_proto__reader_init(struct reader *r, const uint8_t *msg);
/* A missing field reads as 0 and sets r->bad to what. */
uint8_t relay_proto__get_u8(struct reader *r, const char *what);
uint32_t relay_proto__get_u32(struct reader *r, const char *what);
/* A STR field of at most max bytes; NULL (and r->bad) if it does not fit. */
const uint8_t *relay_proto__get_str(struct reader *r, size_t max, size_t *len,
                                    const char *what);

/* Gathers one message into msg (RELAY_MSG_MAX bytes) as bytes arrive,
 * checking the magic and the length as soon as they are there. Returns 1
 * when complete, 0 when all of data was taken and more is needed, -1 with
 * *why. *used: bytes taken from data. */
int relay_proto__msg_gather(uint8_t *msg, size_t *have, const uint8_t *data,
                            size_t len, size_t *used, const char **why);

/* Checks an agent id (char_ok: relay_proto__id_char_ok) or target
 * (relay_proto__target_char_ok), on both sides. */
bool relay_proto__id_char_ok(uint8_t c);
bool relay_proto__target_char_ok(uint8_t c);
bool relay_proto__name_ok(const uint8_t *p, size_t len, size_t max,
                          bool (*char_ok)(uint8_t));

/* HMAC-SHA256(secret, hello || auth_prefix): the proof in AUTH. */
void relay_proto__compute_mac(uint8_t mac[RELAY_MAC_LEN], const uint8_t *secret,
                              size_t secret_len, const uint8_t *hello,
                              size_t hello_len, const uint8_t *auth,
                              size_t auth_len);
/* The relay's PROOF: HMAC-SHA256(secret, label || hello || auth ||
 * result_prefix). The label keeps it from ever equalling an agent's MAC. */
void relay_proto__compute_proof(uint8_t mac[RELAY_MAC_LEN],
                                const uint8_t *secret, size_t secret_len,
                                const uint8_t *hello, size_t hello_len,
                                const uint8_t *auth, size_t auth_len,
                                const uint8_t *result, size_t result_len);

/* Copies text into out, printable ASCII only, at most max characters. */
void relay_proto__copy_printable(char *out, size_t out_len, const uint8_t *text,
                                 size_t len, size_t max);
/* A RESULT message up to, not including, a v2 PROOF, for the relay's
 * answer and for the early refusal; w is left open for the PROOF. */
void relay_proto__begin_result(struct writer *w, uint8_t *out, int status,
                               uint32_t caps, const char *text);

#endif
