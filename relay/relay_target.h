/* SPDX-License-Identifier: MIT */
/* One target: the QEMU chardev an agent's device goes to, reached by
 * connecting to it or by waiting for QEMU to dial in. */
#ifndef REDIR_RELAY_TARGET_H
#define REDIR_RELAY_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net_conn.h"
#include "relay_config.h"

/* QEMU's usbredir hello is ~80 bytes; a listen-mode chardev that waits
 * for an agent may send this much before we stop reading it. */
#define RELAY_TARGET_PENDING_MAX (16 * 1024)

struct relay_target;
struct serial_target;

/* Listen mode: QEMU dialed in for the target's holder. c has no owner
 * yet; data is what QEMU sent meanwhile (malloc'ed, the callee frees
 * it). */
typedef void (*relay_chardev_ready_fn)(void *holder, struct net_conn *c,
                                       uint8_t *data, size_t len);

/* A new target: resolved (connect mode) or listening (listen mode) when
 * ready; a failure is logged. NULL only when out of memory. */
struct relay_target *relay_target_open(uv_loop_t *loop,
                                       const struct relay_target_config *cfg);

/* Stops listening, drops a waiting QEMU connection and frees the target
 * (once its listener has closed). Its holder must have let go first. */
void relay_target_close(struct relay_target *t);

/* True if cfg describes the same chardev the same way (a reload keeps
 * the target and its session); then relay_target_rebind() moves it to
 * cfg. */
bool relay_target_same(const struct relay_target *t,
                       const struct relay_target_config *cfg);
void relay_target_rebind(struct relay_target *t,
                         const struct relay_target_config *cfg);

bool relay_target_ready(const struct relay_target *t);
const struct relay_target_config *
relay_target_config(const struct relay_target *t);
const char *relay_target_name(const struct relay_target *t);
const char *relay_target_chardev(const struct relay_target *t);
enum target_mode relay_target_mode(const struct relay_target *t);
/* kind = serial: its tty and the agent's port's state; else NULL. */
const struct serial_target *relay_target_serial(const struct relay_target *t);

/* Who holds the target (a session), or NULL; holding it makes the
 * target hand a QEMU that dials in to ready(holder, ...). */
void *relay_target_holder(const struct relay_target *t);
void relay_target_hold(struct relay_target *t, void *holder,
                       relay_chardev_ready_fn ready);
void relay_target_let_go(struct relay_target *t, void *holder);

/* Connect mode: starts connecting to QEMU; ops report the outcome to
 * owner. NULL if out of memory. */
struct net_conn *relay_target_connect(struct relay_target *t,
                                      const struct net_conn_ops *ops,
                                      void *owner);

/* Listen mode: if QEMU is connected already, hands it to the holder now;
 * otherwise that happens when QEMU dials in. */
void relay_target_offer_pending(struct relay_target *t);

#endif
