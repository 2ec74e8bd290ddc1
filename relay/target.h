/* One target: the QEMU chardev an agent's device goes to, reached by
 * connecting to it or by waiting for QEMU to dial in. */
#ifndef REDIR_RELAY_TARGET_H
#define REDIR_RELAY_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "conn.h"
#include "relay_config.h"

/* QEMU's usbredir hello is ~80 bytes; a listen-mode chardev that waits
 * for an agent may send this much before we stop reading it. */
#define TARGET_PENDING_MAX (16 * 1024)

struct relay;
struct session;

struct target {
    const struct relay_target_config *cfg; /* in the relay's current config */
    struct relay *relay;
    bool ready; /* started: resolved, or listening */
    char addr_name[RELAY_UNIX_PATH_MAX + 8]; /* for logs */
    struct sockaddr_storage addr; /* TCP chardev, resolved at start */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } listener; /* listen mode */
    bool listening;
    struct conn *pending;  /* listen mode: QEMU dialed in, no agent yet */
    uint8_t *pending_data; /* what it sent meanwhile */
    size_t pending_len;
    struct session *session; /* the agent session holding the target */
};

/* A new target: resolved (connect mode) or listening (listen mode) when
 * t->ready; a failure is logged. NULL only when out of memory. */
struct target *target_open(struct relay *r,
                           const struct relay_target_config *cfg);

/* Stops listening, drops a waiting QEMU connection and frees the target
 * (once its listener has closed). Its session must be closed first. */
void target_close(struct target *t);

/* True if cfg describes the same chardev the same way (a reload keeps the
 * target and its session). */
bool target_same(const struct target *t, const struct relay_target_config *cfg);

/* Connect mode: starts connecting to QEMU for s; s's qemu ops report
 * the outcome. NULL if out of memory. */
struct conn *target_connect(struct target *t, const struct conn_ops *ops,
                            void *owner);

/* Listen mode: if QEMU is already connected, hands the connection and
 * what it sent to session_qemu_ready(); otherwise that happens when QEMU
 * dials in. */
void target_offer_pending(struct target *t);

#endif
