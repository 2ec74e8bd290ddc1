/* SPDX-License-Identifier: MIT */
/* What the connection module's TLS part needs of a context (net_tls.c): an
 * SSL object and the role. Not for other modules. */
#ifndef REDIR_NET_TLS_INT_H
#define REDIR_NET_TLS_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "net_tls.h"

SSL *net__tls_ssl_new(struct net_tls_ctx *ctx);
bool net__tls_ssl_is_server(const struct net_tls_ctx *ctx);
uint32_t net__tls_handshake_timeout(const struct net_tls_ctx *ctx);
/* Verifies a peer's certificate (and the chain it sent) against ctx's CA
 * and CRL now: for connections made under an older context. */
int net__tls_verify_chain(struct net_tls_ctx *ctx, X509 *leaf,
                          STACK_OF(X509) * chain, char *why, size_t len);

#endif
