/* SPDX-License-Identifier: MIT */
/* TLS 1.3 contexts for net_conn: OpenSSL, certificates both ways, a CRL,
 * the peer's name checked. The connections use them over memory BIOs, so
 * libuv keeps the sockets and the owners see plaintext only. */
#include "net_tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net_tls_int.h"
#include "secure_file.h"

#define PATH_MAX_LEN 4096
/* A peer that connects and says nothing must not hold a handshake slot
 * for long; a TLS 1.3 handshake is two round trips. */
#define HANDSHAKE_TIMEOUT_DEFAULT_MS 10000

struct net_tls_ctx {
    SSL_CTX *ssl;
    bool server;
    unsigned refs;
    uint32_t handshake_timeout_ms;
    char *peer_name;
};

/* OpenSSL's reason for the last failure, and its queue cleared. */
static void ssl_error(char *err, size_t len, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown error";

    if (e)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(err, len, "%s%s%s: %s", path ? path : "", path ? ": " : "", what,
             reason);
}

static int resolve(const char *path, char *out, char *err, size_t err_len)
{
    return secure_file_path(path, out, PATH_MAX_LEN, err, err_len);
}

/* The private key, from a file checked to be ours alone. */
static int load_key(SSL_CTX *ssl, const char *path, char *err, size_t len)
{
    char real[PATH_MAX_LEN];

    if (resolve(path, real, err, len) < 0)
        return -1;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        snprintf(err, len, "%s: cannot open the key", path);
        return -1;
    }
    if (secure_file_check(fd, path, err, len) < 0) {
        close(fd);
        return -1;
    }
    BIO *b = BIO_new_fd(fd, BIO_CLOSE);
    EVP_PKEY *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (!key || SSL_CTX_use_PrivateKey(ssl, key) != 1 ||
        SSL_CTX_check_private_key(ssl) != 1) {
        EVP_PKEY_free(key);
        ssl_error(err, len, "not a key for the certificate", path);
        return -1;
    }
    EVP_PKEY_free(key);
    return 0;
}

static int load_certs(SSL_CTX *ssl, const struct tls_config *cfg, char *err,
                      size_t len)
{
    char ca[PATH_MAX_LEN], cert[PATH_MAX_LEN];

    if (resolve(cfg->ca, ca, err, len) < 0 ||
        resolve(cfg->cert, cert, err, len) < 0)
        return -1;
    if (SSL_CTX_load_verify_locations(ssl, ca, NULL) != 1) {
        ssl_error(err, len, "cannot load the CA", cfg->ca);
        return -1;
    }
    if (SSL_CTX_use_certificate_chain_file(ssl, cert) != 1) {
        ssl_error(err, len, "cannot load the certificate", cfg->cert);
        return -1;
    }
    return load_key(ssl, cfg->key, err, len);
}

/* A revoked peer fails verification like any other bad certificate. */
static int load_crl(SSL_CTX *ssl, const char *path, char *err, size_t len)
{
    char real[PATH_MAX_LEN];
    X509_STORE *store = SSL_CTX_get_cert_store(ssl);
    X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());

    if (resolve(path, real, err, len) < 0)
        return -1;
    if (!lookup || X509_load_crl_file(lookup, real, X509_FILETYPE_PEM) < 1) {
        ssl_error(err, len, "cannot load the CRL", path);
        return -1;
    }
    X509_STORE_set_flags(store,
                         X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return 0;
}

static int setup(SSL_CTX *ssl, const struct tls_config *cfg, bool server,
                 char *err, size_t len)
{
    SSL_CTX_set_min_proto_version(ssl, TLS1_3_VERSION);
    /* Tickets and renegotiation are of no use to long-lived streams and
     * cost memory per connection; released buffers keep idle ones small. */
    SSL_CTX_set_num_tickets(ssl, 0);
    SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    if (cfg->ciphersuites &&
        SSL_CTX_set_ciphersuites(ssl, cfg->ciphersuites) != 1) {
        ssl_error(err, len, "unknown TLS 1.3 ciphersuites", NULL);
        return -1;
    }
    if (load_certs(ssl, cfg, err, len) < 0 ||
        (cfg->crl && load_crl(ssl, cfg->crl, err, len) < 0))
        return -1;
    /* Both ends authenticate: a server asks for the client's certificate
     * and refuses a client without one. */
    SSL_CTX_set_verify(
        ssl, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        NULL);
    return 0;
}

struct net_tls_ctx *net_tls_ctx_new(const struct tls_config *cfg, bool server,
                                    char *err, size_t err_len)
{
    struct net_tls_ctx *ctx = calloc(1, sizeof(*ctx));

    if (!ctx) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    ctx->refs = 1;
    ctx->server = server;
    ctx->handshake_timeout_ms = HANDSHAKE_TIMEOUT_DEFAULT_MS;
    ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (cfg->peer_name)
        ctx->peer_name = strdup(cfg->peer_name);
    if (!ctx->ssl || (cfg->peer_name && !ctx->peer_name)) {
        snprintf(err, err_len, "out of memory");
        net_tls_ctx_unref(ctx);
        return NULL;
    }
    if (setup(ctx->ssl, cfg, server, err, err_len) < 0) {
        net_tls_ctx_unref(ctx);
        return NULL;
    }
    return ctx;
}

void net_tls_ctx_ref(struct net_tls_ctx *ctx) { ctx->refs++; }

void net_tls_ctx_unref(struct net_tls_ctx *ctx)
{
    if (!ctx || --ctx->refs > 0)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx->peer_name);
    free(ctx);
}

const char *net_tls_ctx_peer_name(const struct net_tls_ctx *ctx)
{
    return ctx->peer_name;
}

void net_tls_ctx_set_handshake_timeout(struct net_tls_ctx *ctx, uint32_t ms)
{
    ctx->handshake_timeout_ms = ms;
}

uint32_t net__tls_handshake_timeout(const struct net_tls_ctx *ctx)
{
    return ctx->handshake_timeout_ms;
}

int net__tls_verify_chain(struct net_tls_ctx *ctx, X509 *leaf,
                          STACK_OF(X509) * chain, char *why, size_t len)
{
    X509_STORE_CTX *sctx = X509_STORE_CTX_new();
    int rc = -1;

    if (!sctx || X509_STORE_CTX_init(sctx, SSL_CTX_get_cert_store(ctx->ssl),
                                     leaf, chain) != 1) {
        snprintf(why, len, "out of memory");
        X509_STORE_CTX_free(sctx);
        return -1;
    }
    /* the role the peer had: a server checks client certificates */
    X509_STORE_CTX_set_purpose(sctx, ctx->server ? X509_PURPOSE_SSL_CLIENT
                                                 : X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(sctx) == 1)
        rc = 0;
    else
        snprintf(why, len, "certificate: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
    X509_STORE_CTX_free(sctx);
    ERR_clear_error();
    return rc;
}

SSL *net__tls_ssl_new(struct net_tls_ctx *ctx) { return SSL_new(ctx->ssl); }

bool net__tls_ssl_is_server(const struct net_tls_ctx *ctx)
{
    return ctx->server;
}
