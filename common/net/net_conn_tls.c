/* SPDX-License-Identifier: MIT */
/* TLS on a connection: OpenSSL over two memory BIOs. Ciphertext read from
 * the socket goes into one, what OpenSSL writes comes out of the other and
 * is queued like any write; the owner queues and reads plaintext and never
 * knows. */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_conn_int.h"
#include "net_tls_int.h"

#define IDENTITY_MAX 256

/* A plaintext write made before the handshake finished. */
struct held_write {
    struct held_write *next;
    void *base;
    size_t len;
    net_release_fn release;
    void *ctx;
};

struct net_tls_session {
    SSL *ssl;
    struct held_write *held, **held_tail;
    BIO *rbio, *wbio; /* owned by ssl */
    struct net_tls_ctx *ctx;
    char error[NET_TLS_ERR_MAX];
    char identity[IDENTITY_MAX];
};

/* One byte buffer for decrypted reads of owners without their own. */
static uint8_t plain_buf[NET_CONN_READ_BUF];

bool net_conn_is_tls(const struct net_conn *c) { return c->tls != NULL; }

const char *net_conn_tls_error(const struct net_conn *c)
{
    return c->tls && c->tls->error[0] ? c->tls->error : NULL;
}

const char *net_conn_peer_identity(const struct net_conn *c)
{
    return c->tls && c->tls->identity[0] ? c->tls->identity : NULL;
}

/* The owner's plaintext buffer, released like without TLS: once the
 * ciphertext made of it was written (or dropped), never from inside
 * net_conn_queue(). */
struct owner_buf {
    net_release_fn release;
    void *ctx;
    void *base;
    size_t len;
};

static void owner_buf_release(struct owner_buf *o)
{
    if (o->release)
        o->release(o->ctx, o->base, o->len);
    else
        free(o->base);
    free(o);
}

static void release_cipher(void *ctx, void *base, size_t len)
{
    (void)len;
    free(base);
    if (ctx)
        owner_buf_release(ctx);
}

/* What OpenSSL wrote goes out like any other write; owner (may be NULL)
 * rides on the last piece. Returns false if owner was not attached. */
static bool tls_collect(struct net_conn *c, struct owner_buf *owner)
{
    size_t pending;

    while ((pending = BIO_ctrl_pending(c->tls->wbio)) > 0) {
        uint8_t *buf = malloc(pending);
        if (!buf) {
            net__fail_later(c, UV_ENOMEM);
            return false;
        }
        int n = BIO_read(c->tls->wbio, buf, (int)pending);
        if (n <= 0) {
            free(buf);
            return false;
        }
        bool last = BIO_ctrl_pending(c->tls->wbio) == 0;
        net__queue_raw(c, buf, (size_t)n, release_cipher, last ? owner : NULL);
        if (last && owner)
            return true;
    }
    return false;
}

/* Why the handshake or a read failed, for the log. */
static void tls_note_error(struct net_conn *c)
{
    struct net_tls_session *t = c->tls;
    long verify = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_get_error();
    char reason[256] = "protocol error";

    if (t->error[0])
        return;
    if (verify != X509_V_OK)
        snprintf(t->error, sizeof(t->error), "certificate: %s",
                 X509_verify_cert_error_string(verify));
    else if (e) {
        ERR_error_string_n(e, reason, sizeof(reason));
        snprintf(t->error, sizeof(t->error), "%s", reason);
    } else
        snprintf(t->error, sizeof(t->error), "%s", reason);
    ERR_clear_error();
}

static void tls_note_identity(struct net_tls_session *t)
{
    X509 *peer = SSL_get0_peer_certificate(t->ssl);

    if (peer &&
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
                                  t->identity, sizeof(t->identity)) < 0)
        t->identity[0] = '\0';
}

static void on_handshake_timeout(uv_timer_t *timer)
{
    struct net_conn *c = timer->data;

    if (c->phase == PHASE_HANDSHAKE) {
        snprintf(c->tls->error, sizeof(c->tls->error),
                 "no TLS handshake within %.1f s",
                 net__tls_handshake_timeout(c->tls->ctx) / 1000.0);
        net__connected(c, UV_ETIMEDOUT);
    }
}

/* The client checks the server's name (or address) in its certificate. */
static int tls_set_peer_name(SSL *ssl, const char *name)
{
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    unsigned char ip[16];

    if (!name || !*name)
        return 0;
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : -1;
    SSL_set_tlsext_host_name(ssl, name);
    return X509_VERIFY_PARAM_set1_host(vp, name, 0) == 1 ? 0 : -1;
}

int net_conn_start_tls(struct net_conn *c, struct net_tls_ctx *ctx,
                       const char *peer_name)
{
    struct net_tls_session *t = calloc(1, sizeof(*t));

    if (!t || !(t->ssl = net__tls_ssl_new(ctx))) {
        free(t);
        return UV_ENOMEM;
    }
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        SSL_free(t->ssl);
        free(t);
        return UV_ENOMEM;
    }
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    t->ctx = ctx;
    t->held_tail = &t->held;
    net_tls_ctx_ref(ctx);
    c->tls = t;
    if (net__tls_ssl_is_server(ctx))
        SSL_set_accept_state(t->ssl);
    else {
        SSL_set_connect_state(t->ssl);
        if (tls_set_peer_name(t->ssl, peer_name) < 0)
            return UV_EINVAL;
    }
    if (c->phase == PHASE_OPEN) { /* accepted: the handshake starts now */
        c->phase = PHASE_HANDSHAKE;
        uv_timer_start(&c->timer, on_handshake_timeout,
                       net__tls_handshake_timeout(ctx), 0);
        return net__tls_start(c);
    }
    return 0; /* dialing: starts once connected */
}

void net__tls_lost(struct net_conn *c, int status)
{
    snprintf(c->tls->error, sizeof(c->tls->error),
             "%s during the TLS handshake",
             status == UV_EOF ? "closed" : uv_strerror(status));
    net__connected(c, status);
}

static void on_read_kick(uv_timer_t *timer) { net__tls_deliver(timer->data); }

/* Starts the handshake; the socket is read until it is done (after that
 * only while the owner reads). */
int net__tls_start(struct net_conn *c)
{
    net__read_raw(c, true);
    if (c->phase != PHASE_HANDSHAKE) {
        c->phase = PHASE_HANDSHAKE;
        if (!uv_is_active((uv_handle_t *)&c->timer))
            uv_timer_start(&c->timer, on_handshake_timeout,
                           net__tls_handshake_timeout(c->tls->ctx), 0);
    }
    net__tls_input(c, NULL, 0);
    return 0;
}

static void tls_handshake(struct net_conn *c)
{
    int rc = SSL_do_handshake(c->tls->ssl);

    tls_collect(c, NULL);
    net_conn_flush(c);
    if (rc == 1) {
        tls_note_identity(c->tls);
        net__connected(c, 0);
        return;
    }
    int e = SSL_get_error(c->tls->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return;
    tls_note_error(c);
    net__connected(c, UV_EPROTO);
}

void net__tls_input(struct net_conn *c, const uint8_t *data, size_t len)
{
    if (len && BIO_write(c->tls->rbio, data, (int)len) != (int)len) {
        net__fail_later(c, UV_ENOMEM);
        return;
    }
    if (c->phase == PHASE_HANDSHAKE)
        tls_handshake(c);
    else if (c->phase == PHASE_OPEN)
        net__tls_deliver(c);
}

bool net__tls_has_pending(const struct net_conn *c)
{
    return c->tls &&
           (SSL_pending(c->tls->ssl) > 0 || BIO_ctrl_pending(c->tls->rbio) > 0);
}

/* Where the next plaintext goes: the owner's buffer, or the shared one.
 * A zero-length one stops reading until the owner starts it again. */
static uv_buf_t plain_room(struct net_conn *c)
{
    uv_buf_t buf = uv_buf_init((char *)plain_buf, sizeof(plain_buf));

    if (c->ops && c->ops->on_alloc)
        c->ops->on_alloc(c->owner, c, &buf);
    return buf;
}

/* Decrypts and hands over plaintext while the owner reads. */
void net__tls_deliver(struct net_conn *c)
{
    while (c->phase == PHASE_OPEN && c->reading && !c->gone) {
        uv_buf_t buf = plain_room(c);
        if (!buf.base || buf.len == 0) {
            net_conn_read_stop(c);
            return;
        }
        int n = SSL_read(c->tls->ssl, buf.base, (int)buf.len);
        tls_collect(c, NULL); /* post-handshake messages, key updates */
        if (n > 0) {
            if (c->ops && c->ops->on_data)
                c->ops->on_data(c->owner, c, (const uint8_t *)buf.base,
                                (size_t)n);
            continue;
        }
        int e = SSL_get_error(c->tls->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
            net__report_gone(c, UV_EOF);
            break;
        }
        tls_note_error(c);
        net__report_gone(c, UV_EPROTO);
        break;
    }
    if (c->phase == PHASE_OPEN && c->batch)
        net_conn_flush(c);
}

/* The owner started reading again: what is decrypted already comes from
 * the loop, not from inside its call. */
void net__tls_kick(struct net_conn *c)
{
    if (net__tls_has_pending(c))
        uv_timer_start(&c->timer, on_read_kick, 0, 0);
}

void net__tls_encrypt(struct net_conn *c, void *base, size_t len,
                      net_release_fn release, void *ctx)
{
    struct owner_buf *o = malloc(sizeof(*o));
    int n = o && len ? SSL_write(c->tls->ssl, base, (int)len) : 0;

    if (!o) {
        if (release)
            release(ctx, base, len);
        else
            free(base);
        net__fail_later(c, UV_ENOMEM);
        return;
    }
    *o = (struct owner_buf){release, ctx, base, len};
    if (len && n <= 0) {
        tls_note_error(c);
        net__fail_later(c, UV_EPROTO);
    }
    if (!tls_collect(c, o)) /* nothing written: an empty buffer, a failure */
        net__queue_raw(c, NULL, 0, release_cipher, o);
}

int net_conn_tls_recheck(const struct net_conn *c, struct net_tls_ctx *ctx,
                         char *why, size_t len)
{
    X509 *leaf;

    if (!c->tls || !(leaf = SSL_get0_peer_certificate(c->tls->ssl))) {
        snprintf(why, len, "no certificate");
        return -1;
    }
    return net__tls_verify_chain(
        ctx, leaf, SSL_get_peer_cert_chain(c->tls->ssl), why, len);
}

void net__tls_hold(struct net_conn *c, void *base, size_t len,
                   net_release_fn release, void *ctx)
{
    struct held_write *h = malloc(sizeof(*h));

    if (!h) {
        if (release)
            release(ctx, base, len);
        else
            free(base);
        net__fail_later(c, UV_ENOMEM);
        return;
    }
    *h = (struct held_write){NULL, base, len, release, ctx};
    *c->tls->held_tail = h;
    c->tls->held_tail = &h->next;
}

void net__tls_release_held(struct net_conn *c, bool send)
{
    struct held_write *h = c->tls->held, *next;

    c->tls->held = NULL;
    c->tls->held_tail = &c->tls->held;
    for (; h; h = next) {
        next = h->next;
        if (send && !c->failed)
            net__tls_encrypt(c, h->base, h->len, h->release, h->ctx);
        else if (h->release)
            h->release(h->ctx, h->base, h->len);
        else
            free(h->base);
        free(h);
    }
}

void net__tls_shutdown(struct net_conn *c)
{
    if (c->tls && SSL_is_init_finished(c->tls->ssl)) {
        SSL_shutdown(c->tls->ssl); /* our close_notify */
        tls_collect(c, NULL);
    }
}

void net__tls_free(struct net_conn *c)
{
    if (!c->tls)
        return;
    net__tls_release_held(c, false);
    SSL_free(c->tls->ssl);
    net_tls_ctx_unref(c->tls->ctx);
    free(c->tls);
    c->tls = NULL;
}
