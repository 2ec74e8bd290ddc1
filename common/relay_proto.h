/* SPDX-License-Identifier: MIT */
/* The agent<->relay handshake: versions, capabilities, target and an
 * HMAC-SHA256 challenge-response, before any stream byte. */
#ifndef REDIR_RELAY_PROTO_H
#define REDIR_RELAY_PROTO_H

/*
 * Three messages, each:  "RDRL"  TYPE:u8  BODYLEN:u16be  BODY
 * Integers are big endian; STR is LEN:u8 then LEN bytes.
 *
 *   relay -> agent  HELLO  'H'  MIN_VERSION:u8 MAX_VERSION:u8 CAPS:u32
 *                               NONCE:STR (RELAY_NONCE_LEN random bytes)
 *   agent -> relay  AUTH   'A'  VERSION:u8 CAPS:u32 AGENT_ID:STR
 *                               TARGET:STR [v2: AGENT_NONCE:STR]
 *                               MAC:STR (RELAY_MAC_LEN bytes; v2: or none)
 *   relay -> agent  RESULT 'R'  STATUS:u8 CAPS:u32 TEXT:STR
 *                               [v2: PROOF:STR (RELAY_MAC_LEN bytes or none)]
 *
 * MAC = HMAC-SHA256(secret, the whole HELLO || the AUTH up to, not
 * including, its MAC field): it covers the relay's nonce, version,
 * capabilities, agent id, target (and in v2 the agent's nonce); the secret
 * never travels. Version 2 makes the proof mutual: an accepting RESULT
 * carries PROOF = HMAC-SHA256(secret, RELAY_PROOF_LABEL || HELLO || the
 * whole AUTH || the RESULT up to its PROOF field), fresh through the
 * agent's nonce, so a relay that does not know the secret cannot accept an
 * agent (and get its devices). The label keeps a PROOF from ever being a
 * valid MAC. Over TLS with certificates both ways the agent may send no
 * MAC (its certificate is its proof) and the relay no PROOF.
 *
 * CAPS in AUTH is what the agent wants, in RESULT what was agreed (wanted
 * and offered). STATUS is enum relay_status; TEXT says why in words. After
 * a RESULT with STATUS 0 the stream starts: raw usbredir, or stream_codec
 * frames both ways when RELAY_CAP_LZ4 was agreed. After a refusal the
 * relay closes the connection. A relay that refuses before its hello (its
 * session limit) sends only a RESULT (v1 layout).
 *
 * The HELLO layout is fixed for all versions (bytes after NONCE are
 * ignored); AUTH starts with its version so a relay can refuse a version
 * it does not know before parsing the rest. A v2 relay still accepts v1
 * agents (whose RESULT has no PROOF); a v2 agent refuses a v1 relay.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELAY_PROTO_VERSION 2     /* what this build speaks */
#define RELAY_PROTO_MIN_VERSION 1 /* the oldest agent a relay accepts */
#define RELAY_PROOF_LABEL "RDRL relay proof v2"
#define RELAY_MAGIC "RDRL"
#define RELAY_MAGIC_LEN 4
#define RELAY_MSG_HEADER 7 /* magic, type, body length */
/* Largest body of v2: a RESULT with the longest text and a PROOF, 239
 * bytes. */
#define RELAY_BODY_MAX 256
#define RELAY_MSG_MAX (RELAY_MSG_HEADER + RELAY_BODY_MAX)
#define RELAY_NONCE_LEN 32    /* fresh per connection: replays fail */
#define RELAY_MAC_LEN 32      /* HMAC-SHA256 */
#define RELAY_ID_MAX 64       /* agent id: a host name, visible ASCII */
#define RELAY_TARGET_MAX 64   /* target name: [A-Za-z0-9._-] */
#define RELAY_TEXT_MAX 200    /* the reason a relay gives, printable ASCII */
#define RELAY_SECRET_MIN 16   /* shorter is guessable */
#define RELAY_SECRET_MAX 1024 /* HMAC hashes longer keys; longer is a typo */
#define RELAY_ERR_MAX 256
#define RELAY_HELLO_LEN (RELAY_MSG_HEADER + 2 + 4 + 1 + RELAY_NONCE_LEN)

#define RELAY_CAP_LZ4 (1u << 0) /* stream_codec framing both ways */

/* STATUS in RESULT */
enum relay_status {
    RELAY_OK = 0,
    RELAY_REFUSED_AUTH = 1,        /* wrong secret, certificate not allowed */
    RELAY_REFUSED_TARGET = 2,      /* unknown target */
    RELAY_REFUSED_VERSION = 3,     /* version mismatch */
    RELAY_REFUSED_MALFORMED = 4,   /* garbage, bad field */
    RELAY_REFUSED_BUSY = 5,        /* target in use, relay full */
    RELAY_REFUSED_UNAVAILABLE = 6, /* QEMU unreachable, relay stopping */
};

/* Short name of a status ("wrong secret", ...); any value is accepted. */
const char *relay_status_name(int status);

/* Return values of the feed functions. */
enum relay_hs_result {
    RELAY_HS_NEED_MORE = 0,
    RELAY_HS_DONE = 1,    /* client: accepted, stream follows */
    RELAY_HS_REFUSED = 2, /* client: the relay said no */
    RELAY_HS_AUTH = 3,    /* server: an AUTH arrived, decide */
    RELAY_HS_ERROR = -1,
};

/* ---- agent side ---- */

enum relay_client_state {
    RELAY_CLIENT_WAIT_HELLO,
    RELAY_CLIENT_WAIT_RESULT,
    RELAY_CLIENT_FINISHED,
};

struct relay_client {
    /* results */
    bool lz4;                   /* after RELAY_HS_DONE: lz4 was agreed */
    uint32_t caps;              /* after RELAY_HS_DONE: agreed caps */
    int status;                 /* after RELAY_HS_REFUSED: enum relay_status */
    char reason[RELAY_ERR_MAX]; /* after RELAY_HS_REFUSED: "unknown
                                   target: <the relay's text>" */
    char error[RELAY_ERR_MAX];  /* after RELAY_HS_ERROR or a failed init */
    uint8_t out[RELAY_MSG_MAX]; /* bytes to send to the relay */
    size_t out_len;
    /* private */
    enum relay_client_state state;
    bool want_lz4;
    uint8_t msg[RELAY_MSG_MAX]; /* the message being received */
    size_t msg_have;
    uint8_t hello[RELAY_MSG_MAX]; /* kept for the MAC */
    size_t hello_len;
    char agent_id[RELAY_ID_MAX + 1];
    char target[RELAY_TARGET_MAX + 1];
    uint8_t secret[RELAY_SECRET_MAX];
    size_t secret_len; /* 0: no secret, TLS certificates authenticate */
    uint8_t nonce[RELAY_NONCE_LEN];
    uint8_t auth[RELAY_MSG_MAX]; /* what we sent, for the relay's PROOF */
    size_t auth_len;
};

/* Returns 0, or -1 with c->error: id or target empty, too long or with
 * characters outside their sets, secret shorter than RELAY_SECRET_MIN or
 * longer than RELAY_SECRET_MAX, or libsodium unusable. The secret is
 * copied (and wiped by relay_client_free). No secret (NULL, 0) only over
 * TLS with certificates both ways: no MAC is sent and no PROOF wanted.
 * With a secret an accepting RESULT must carry the relay's PROOF. */
int relay_client_init(struct relay_client *c, const char *agent_id,
                      const char *target, const uint8_t *secret,
                      size_t secret_len, bool want_lz4);

/* Feeds bytes from the relay. Returns RELAY_HS_NEED_MORE; RELAY_HS_DONE
 * (*consumed = bytes that belonged to the handshake, the rest of the input
 * is stream data; c->lz4 says if lz4 was agreed); RELAY_HS_REFUSED
 * (c->status, c->reason: the relay's reason); or RELAY_HS_ERROR
 * (c->error: not a relay, malformed message, the relay agreed to
 * something not asked for). After any call, pending output (bytes to send
 * to the relay) is in c->out / c->out_len; the caller sends it and then
 * calls relay_client_output_sent(c). Once finished, feeding more returns
 * RELAY_HS_ERROR. A timeout is the caller's job. */
int relay_client_feed(struct relay_client *c, const uint8_t *data, size_t len,
                      size_t *consumed);
void relay_client_output_sent(struct relay_client *c);
void relay_client_free(struct relay_client *c);

/* ---- relay side ---- */

enum relay_server_state {
    RELAY_SERVER_WAIT_AUTH,
    RELAY_SERVER_DECIDE, /* AUTH parsed: verify, then relay_server_result */
    RELAY_SERVER_FINISHED,
};

struct relay_server {
    /* after RELAY_HS_AUTH */
    uint8_t version; /* the agent's protocol version */
    bool has_mac;    /* false: a v2 agent with no secret (TLS) */
    uint32_t caps_wanted;
    char agent_id[RELAY_ID_MAX + 1];   /* checked: visible ASCII */
    char target[RELAY_TARGET_MAX + 1]; /* checked: [A-Za-z0-9._-] */
    /* after RELAY_HS_ERROR: the status to refuse with (malformed or
     * version) and why; a RESULT saying so is already in out */
    int status;
    char error[RELAY_ERR_MAX];
    uint32_t caps;              /* agreed, once relay_server_result said ok */
    uint8_t out[RELAY_MSG_MAX]; /* bytes to send to the agent */
    size_t out_len;
    /* private */
    enum relay_server_state state;
    uint32_t caps_offered;
    uint8_t hello[RELAY_HELLO_LEN]; /* what we sent, for the MAC */
    size_t hello_len;
    uint8_t msg[RELAY_MSG_MAX]; /* the AUTH being received */
    size_t msg_have;
    size_t mac_offset; /* of the MAC field in msg */
};

/* Starts a handshake: a fresh nonce, the HELLO in s->out. Returns 0, or
 * -1 if libsodium cannot be initialized. */
int relay_server_init(struct relay_server *s, uint32_t caps_offered);

/* Feeds bytes from the agent. Returns RELAY_HS_NEED_MORE; RELAY_HS_AUTH
 * (*consumed bytes were the AUTH; fields above are set; the agent sends
 * nothing else until it has the RESULT, so the rest is a protocol error);
 * or RELAY_HS_ERROR (s->status, s->error; the refusal is queued in
 * s->out: send it, then close). */
int relay_server_feed(struct relay_server *s, const uint8_t *data, size_t len,
                      size_t *consumed);

/* After RELAY_HS_AUTH: true if the agent proved it knows the secret (false
 * if it sent no MAC). Constant time. */
bool relay_server_verify(const struct relay_server *s, const uint8_t *secret,
                         size_t secret_len);

/* Queues the RESULT in s->out: status RELAY_OK agrees to the capabilities
 * both sides have (s->caps) without a PROOF (a v1 agent, or TLS without a
 * secret), anything else refuses; text (may be NULL) is cut to
 * RELAY_TEXT_MAX printable characters. */
void relay_server_result(struct relay_server *s, int status, const char *text);

/* Accepts with the PROOF that this relay knows secret (v2 agents; a v1
 * agent gets a plain RESULT). */
void relay_server_accept(struct relay_server *s, const uint8_t *secret,
                         size_t secret_len);

/* A RESULT refusing a connection before any hello (session limit), into
 * out (RELAY_MSG_MAX bytes); returns its length. */
size_t relay_refusal_message(uint8_t *out, int status, const char *text);

void relay_server_output_sent(struct relay_server *s);

#endif
