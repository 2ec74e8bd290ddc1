/* SPDX-License-Identifier: MIT */
/* What the connection module's TLS part needs of a context (net_tls.c): an
 * SSL object and the role. Not for other modules. */
#ifndef REDIR_NET_TLS_INT_H
#define REDIR_NET_TLS_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>

#include "net_tls.h"

SSL *net__tls_ssl_new(struct net_tls_ctx *ctx);
bool net__tls_ssl_is_server(const struct net_tls_ctx *ctx);

#endif
