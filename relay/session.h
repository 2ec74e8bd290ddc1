/* One agent connection: handshake, attaching to its target's QEMU, then
 * pumping bytes both ways through the codec with backpressure. */
#ifndef REDIR_RELAY_SESSION_H
#define REDIR_RELAY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "conn.h"
#include "relay_proto.h"
#include "stream_codec.h"

#define SESSION_HANDSHAKE_TIMEOUT_MS 10000 /* hello to AUTH, generous */
#define SESSION_QEMU_TIMEOUT_MS 10000      /* connect, or QEMU to dial in */

struct relay;
struct target;

enum session_state {
    SESSION_HANDSHAKE, /* hello sent, waiting for AUTH */
    SESSION_ATTACHING, /* accepted, getting a QEMU connection */
    SESSION_PUMPING,
    SESSION_CLOSED, /* waiting for its timer to close, then freed */
};

struct session {
    struct session *prev, *next; /* relay's list */
    struct relay *relay;
    struct target *target; /* held from ATTACHING on */
    struct conn *agent, *qemu;
    uv_timer_t timer;        /* handshake, then QEMU timeout */
    struct relay_server *hs; /* during the handshake only */
    enum session_state state;
    bool lz4;
    bool agent_paused, qemu_paused;  /* reading stopped: backpressure */
    char agent_id[RELAY_ID_MAX + 1]; /* "" until the AUTH */
    char peer[CONN_NAME_MAX];        /* the agent's address */
    uint8_t *stash; /* agent bytes read but not decoded yet (backpressure) */
    size_t stash_len, stash_off;
    struct codec_encoder enc; /* QEMU -> agent */
    struct codec_decoder dec; /* agent -> QEMU */
    uint64_t started_ms;
    uint64_t from_agent, to_qemu, from_qemu, to_agent; /* bytes */
};

/* Takes an accepted agent connection: sends the hello, starts the
 * handshake timer. */
void session_start(struct relay *r, struct conn *agent);

/* Listen mode: the target's QEMU connection is here (with bytes QEMU
 * already sent, which the session frees). Called by the target, either
 * at once from target_offer_pending() or when QEMU dials in. */
void session_qemu_ready(struct session *s, struct conn *qemu, uint8_t *data,
                        size_t len);

/* Ends the session (logged with why); from the relay (shutdown), the
 * target (a replacement) and the session itself. */
void session_close(struct session *s, const char *why);

#endif
