/* SPDX-License-Identifier: MIT */
/* TLS 1.3 contexts for net_conn: OpenSSL, certificates both ways, a CRL,
 * the peer's name checked. The connections use them over memory BIOs, so
 * libuv keeps the sockets and the owners see plaintext only. */
#ifndef REDIR_NET_TLS_H
#define REDIR_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls_config.h"

#define NET_TLS_ERR_MAX 512

struct net_tls_ctx;

/* A context for one role: server (accepts, asks the client for its
 * certificate) or client (dials, checks the server's name). Reads the
 * files now (the key must be a secure file). NULL with why in err. */
struct net_tls_ctx *net_tls_ctx_new(const struct tls_config *cfg, bool server,
                                    char *err, size_t err_len);

/* Connections hold a reference while they use it: a reload can make a new
 * context while old connections finish on theirs. */
void net_tls_ctx_ref(struct net_tls_ctx *ctx);
void net_tls_ctx_unref(struct net_tls_ctx *ctx);

/* How long a connection may take for its handshake (default 10 s). */
void net_tls_ctx_set_handshake_timeout(struct net_tls_ctx *ctx, uint32_t ms);

/* The configured peer name, or NULL (use the host dialed). */
const char *net_tls_ctx_peer_name(const struct net_tls_ctx *ctx);

#endif
