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
/* Plaintext is sealed at the owner's flush, small writes gathered into
 * records of up to this much: a record per usbredir header would cost a
 * record's overhead and a cipher call for a dozen bytes. */
#define STAGE_SIZE 16384
/* Sealed early when this much is pending: the owner's buffers are held
 * until their ciphertext is written anyway, this bounds the gap. */
#define PENDING_MAX_BYTES (256 * 1024)
#define PENDING_MAX_BUFS 64

/* A plaintext write waiting for the handshake or the owner's flush. */
struct held_write {
    struct held_write *next;
    void *base;
    size_t len;
    net_release_fn release;
    void *ctx;
};

struct net_tls_session {
    SSL *ssl;
    struct held_write *held, **held_tail; /* pending plaintext */
    size_t held_bytes;
    unsigned held_n;
    BIO *rbio, *wbio; /* owned by ssl */
    struct net_tls_ctx *ctx;
    char error[NET_TLS_ERR_MAX];
    char identity[IDENTITY_MAX];
};

/* One byte buffer for decrypted reads of owners without their own. */
static uint8_t plain_buf[NET_CONN_READ_BUF];
/* Where small writes are gathered into one record; used within one call
 * (one loop, one thread), so one serves every connection. */
static uint8_t stage[STAGE_SIZE];

bool net_conn_is_tls(const struct net_conn *c) { return c->tls != NULL; }

const char *net_conn_tls_error(const struct net_conn *c)
{
    return c->tls && c->tls->error[0] ? c->tls->error : NULL;
}

const char *net_conn_peer_identity(const struct net_conn *c)
{
    return c->tls && c->tls->identity[0] ? c->tls->identity : NULL;
}

/* A sealed list of plaintext writes, released like without TLS: once the
 * ciphertext made of them was written (or dropped), never from inside
 * net_conn_queue(). */
static void release_held_list(void *ctx, void *base, size_t len)
{
    struct held_write *h = ctx, *next;
    (void)base;
    (void)len;

    for (; h; h = next) {
        next = h->next;
        net__release(h->release, h->ctx, h->base, h->len);
        free(h);
    }
}

/* Ciphertext buffers are kept for the next writes: a malloc and free of
 * ~64 KiB per flush would move the heap's top (brk) up and down and fault
 * in fresh pages each time, which cost more than the cipher itself. One
 * loop, one thread: a plain list, shared by every connection. */
#define CIPHER_BUF_SIZE (4 * (16384 + 256)) /* four full records */
#define CIPHER_SPARES 16

static void *cipher_spare[CIPHER_SPARES];
static unsigned n_cipher_spare;

static uint8_t *cipher_get(void)
{
    return n_cipher_spare ? cipher_spare[--n_cipher_spare]
                          : malloc(CIPHER_BUF_SIZE);
}

static void release_cipher(void *ctx, void *base, size_t len)
{
    (void)ctx;
    (void)len;
    if (base && n_cipher_spare < CIPHER_SPARES)
        cipher_spare[n_cipher_spare++] = base;
    else
        free(base);
}

/* What OpenSSL wrote goes out like any other write. */
static void tls_collect(struct net_conn *c)
{
    size_t pending;

    while ((pending = BIO_ctrl_pending(c->tls->wbio)) > 0) {
        uint8_t *buf = cipher_get();
        if (!buf) {
            net__fail_later(c, UV_ENOMEM);
            return;
        }
        if (pending > CIPHER_BUF_SIZE)
            pending = CIPHER_BUF_SIZE;
        int n = BIO_read(c->tls->wbio, buf, (int)pending);
        if (n <= 0) {
            release_cipher(NULL, buf, 0);
            return;
        }
        net__queue_raw(c, buf, (size_t)n, release_cipher, NULL);
    }
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
    if (!c->kind->tls) /* a pair: both ends in this process, nothing to hide */
        return UV_ENOTSUP;
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

    tls_collect(c);
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
        tls_collect(c); /* post-handshake messages, key updates */
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
    if (c->phase == PHASE_OPEN)
        net_conn_flush(c);
}

/* The owner started reading again: what is decrypted already comes from
 * the loop, not from inside its call. */
void net__tls_kick(struct net_conn *c)
{
    if (net__tls_has_pending(c))
        uv_timer_start(&c->timer, on_read_kick, 0, 0);
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

/* Encrypts len bytes; false after a failure (noted). */
static bool tls_write(struct net_conn *c, const void *data, size_t len)
{
    if (SSL_write(c->tls->ssl, data, (int)len) > 0)
        return true;
    tls_note_error(c);
    net__fail_later(c, UV_EPROTO);
    return false;
}

void net__tls_seal(struct net_conn *c)
{
    struct net_tls_session *t = c->tls;
    struct held_write *list = t->held;
    size_t staged = 0;
    bool ok = true;

    if (!list)
        return;
    t->held = NULL;
    t->held_tail = &t->held;
    c->queued -= t->held_bytes; /* counted again as ciphertext */
    t->held_bytes = 0;
    t->held_n = 0;
    for (struct held_write *h = list; h && ok; h = h->next) {
        const uint8_t *p = h->base;
        size_t left = h->len;
        if (staged == 0 && left >= STAGE_SIZE) { /* large: as it is */
            ok = tls_write(c, p, left);
            continue;
        }
        while (left && ok) {
            size_t n = left < STAGE_SIZE - staged ? left : STAGE_SIZE - staged;
            memcpy(stage + staged, p, n);
            staged += n;
            p += n;
            left -= n;
            if (staged == STAGE_SIZE) {
                ok = tls_write(c, stage, staged);
                staged = 0;
            }
        }
    }
    if (ok && staged)
        tls_write(c, stage, staged);
    tls_collect(c);
    net__queue_raw(c, NULL, 0, release_held_list, list);
}

void net__tls_hold(struct net_conn *c, void *base, size_t len,
                   net_release_fn release, void *ctx)
{
    struct net_tls_session *t = c->tls;
    struct held_write *h = malloc(sizeof(*h));

    if (!h) {
        net__release(release, ctx, base, len);
        net__fail_later(c, UV_ENOMEM);
        return;
    }
    *h = (struct held_write){NULL, base, len, release, ctx};
    *t->held_tail = h;
    t->held_tail = &h->next;
    t->held_bytes += len;
    t->held_n++;
    c->queued += len;
    if (c->queued >= c->high_water)
        c->congested = true;
    if (c->phase == PHASE_OPEN &&
        (t->held_n >= PENDING_MAX_BUFS || t->held_bytes >= PENDING_MAX_BYTES))
        net__tls_seal(c);
}

void net__tls_release_held(struct net_conn *c, bool send)
{
    struct net_tls_session *t = c->tls;
    struct held_write *list = t->held;

    if (send && !c->failed) {
        net__tls_seal(c);
        return;
    }
    t->held = NULL;
    t->held_tail = &t->held;
    c->queued -= t->held_bytes;
    t->held_bytes = 0;
    t->held_n = 0;
    release_held_list(list, NULL, 0);
}

void net__tls_shutdown(struct net_conn *c)
{
    if (c->tls && SSL_is_init_finished(c->tls->ssl)) {
        net__tls_seal(c); /* what the owner wrote goes before the end */
        SSL_shutdown(c->tls->ssl); /* our close_notify */
        tls_collect(c);
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
