/* SPDX-License-Identifier: MIT */
/* One target: the QEMU chardev an agent's device goes to, reached by
 * connecting to it or by waiting for QEMU to dial in. */
#include "relay_target.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "net_listener.h"
#include "net_tls.h"
#include "serial_target.h"

#define LISTEN_BACKLOG 4 /* one QEMU per chardev, plus its retries */

struct relay_target {
    const struct relay_target_config *cfg; /* in the relay's config */
    uv_loop_t *loop;
    bool ready; /* started: resolved, or listening */
    char addr_name[ENDPOINT_STR_MAX];
    struct sockaddr_storage addr;  /* TCP chardev, resolved at start */
    struct net_listener *listener; /* listen mode */
    struct net_tls_ctx *tls;       /* the QEMU leg speaks TLS */
    struct net_conn *pending;      /* listen mode: QEMU dialed in, no agent */
    uint8_t *pending_data;         /* what it sent meanwhile */
    size_t pending_len;
    void *holder;  /* the session holding the target */
    bool attached; /* listen mode: the holder has QEMU's connection */
    struct serial_target *serial; /* kind = serial: the pty */
    relay_chardev_ready_fn ready_fn;
};

bool relay_target_ready(const struct relay_target *t) { return t->ready; }

const struct relay_target_config *
relay_target_config(const struct relay_target *t)
{
    return t->cfg;
}

const char *relay_target_name(const struct relay_target *t)
{
    return t->cfg->name;
}

const char *relay_target_chardev(const struct relay_target *t)
{
    return t->addr_name;
}

enum target_mode relay_target_mode(const struct relay_target *t)
{
    return t->cfg->mode;
}

const struct serial_target *relay_target_serial(const struct relay_target *t)
{
    return t->serial;
}

void *relay_target_holder(const struct relay_target *t) { return t->holder; }

void relay_target_hold(struct relay_target *t, void *holder,
                       relay_chardev_ready_fn ready)
{
    t->holder = holder;
    t->ready_fn = ready;
}

void relay_target_let_go(struct relay_target *t, void *holder)
{
    if (t->holder == holder) {
        t->holder = NULL;
        t->ready_fn = NULL;
        t->attached = false;
    }
}

/* Once: a blocking lookup per connection would stall the loop, and QEMU
 * chardevs are local or on fixed hosts. */
static int target_resolve(struct relay_target *t)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    char port[8];

    snprintf(port, sizeof(port), "%u", t->cfg->chardev.tcp.port);
    int rc = getaddrinfo(t->cfg->chardev.tcp.host, port, &hints, &res);
    if (rc != 0) {
        log_err("target %s: cannot resolve %s: %s", t->cfg->name, t->addr_name,
                gai_strerror(rc));
        return -1;
    }
    memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* Hangs up on a QEMU that waits for an agent, forgets what it sent. */
static void target_drop_pending(struct relay_target *t)
{
    if (t->pending)
        net_conn_close(t->pending, false);
    t->pending = NULL;
    free(t->pending_data);
    t->pending_data = NULL;
    t->pending_len = 0;
}

static void pending_on_data(void *owner, struct net_conn *c,
                            const uint8_t *data, size_t len)
{
    struct relay_target *t = owner;
    uint8_t *grown = NULL;
    (void)c;

    if (t->pending_len + len > RELAY_TARGET_PENDING_MAX) {
        log_warn("target %s: QEMU on %s sent over %d bytes with no agent "
                 "attached; closing it (not a usb-redir chardev?)",
                 t->cfg->name, t->addr_name, RELAY_TARGET_PENDING_MAX);
    } else {
        grown = realloc(t->pending_data, t->pending_len + len);
    }
    if (!grown) {
        target_drop_pending(t);
        return;
    }
    memcpy(grown + t->pending_len, data, len);
    t->pending_data = grown;
    t->pending_len += len;
}

static void pending_on_gone(void *owner, struct net_conn *c, int status)
{
    struct relay_target *t = owner;
    (void)c;
    log_info("target %s: QEMU disconnected while waiting for an agent (%s)",
             t->cfg->name, status == UV_EOF ? "closed" : uv_strerror(status));
    target_drop_pending(t);
}

static const struct net_conn_ops pending_ops = {
    .on_data = pending_on_data,
    .on_gone = pending_on_gone,
};

void relay_target_offer_pending(struct relay_target *t)
{
    struct net_conn *c = t->pending;
    uint8_t *data = t->pending_data;
    size_t len = t->pending_len;

    if (!c && t->holder && t->serial && !t->attached) /* the pty "dials in" */
        c = serial_target_attach(t->serial);
    if (!c || !t->holder)
        return;
    t->pending = NULL;
    t->pending_data = NULL;
    t->pending_len = 0;
    net_conn_read_stop(c);
    net_conn_set_owner(c, NULL, NULL);
    t->attached = true;
    t->ready_fn(t->holder, c, data, len);
}

static void on_qemu_connection(void *ctx, struct net_conn *c)
{
    struct relay_target *t = ctx;

    if (t->pending || t->attached) {
        log_warn("target %s: refusing a second QEMU connection on %s",
                 t->cfg->name, t->addr_name);
        net_conn_close(c, false);
        return;
    }
    log_info("target %s: QEMU connected on %s", t->cfg->name, t->addr_name);
    t->pending = c;
    net_conn_set_owner(c, &pending_ops, t);
    net_conn_read_start(c);
    relay_target_offer_pending(t);
}

/* Listen mode with TLS: QEMU's certificate is checked before it counts. */
static void target_guard(struct relay_target *t)
{
    struct net_guard g;
    char what[RELAY_TARGET_MAX + 32];

    snprintf(what, sizeof(what), "target %s: QEMU chardev", t->cfg->name);
    net_guard_init(&g, what);
    g.tls = t->tls;
    if (t->cfg->tls.peer_name)
        snprintf(g.peer_glob, sizeof(g.peer_glob), "%s", t->cfg->tls.peer_name);
    net_listener_set_guard(t->listener, &g);
}

static int target_listen(struct relay_target *t)
{
    char why[ENDPOINT_STR_MAX + 128];

    t->listener = net_listener_open(t->loop, &t->cfg->chardev, LISTEN_BACKLOG,
                                    0, on_qemu_connection, t, why, sizeof(why));
    if (!t->listener) {
        log_err("target %s: %s", t->cfg->name, why);
        return -1;
    }
    target_guard(t);
    log_info("target %s: waiting for QEMU on %s", t->cfg->name, t->addr_name);
    return 0;
}

/* QEMU's tls-creds-x509 chardev: the relay is its client in connect mode,
 * its server in listen mode. */
static int target_tls(struct relay_target *t)
{
    char err[NET_TLS_ERR_MAX];

    t->tls = net_tls_ctx_new(&t->cfg->tls, t->cfg->mode == TARGET_LISTEN, err,
                             sizeof(err));
    if (!t->tls) {
        log_err("target %s: TLS: %s", t->cfg->name, err);
        return -1;
    }
    return 0;
}

struct relay_target *relay_target_open(uv_loop_t *loop,
                                       const struct relay_target_config *cfg)
{
    struct relay_target *t = calloc(1, sizeof(*t));

    if (!t) {
        log_err("target %s: out of memory", cfg->name);
        return NULL;
    }
    t->cfg = cfg;
    t->loop = loop;
    endpoint_str(&cfg->chardev, t->addr_name, sizeof(t->addr_name));
    if (cfg->kind == TARGET_KIND_SERIAL) {
        snprintf(t->addr_name, sizeof(t->addr_name), "tty %s", cfg->pty_path);
        t->serial = serial_target_open(loop, cfg);
        t->ready = t->serial != NULL;
        return t;
    }
    if (cfg->tls.enabled && target_tls(t) < 0)
        return t; /* not ready */
    if (cfg->mode == TARGET_LISTEN)
        t->ready = target_listen(t) == 0;
    else
        t->ready = cfg->chardev.is_unix || target_resolve(t) == 0;
    return t;
}

void relay_target_close(struct relay_target *t)
{
    target_drop_pending(t);
    if (t->serial)
        serial_target_close(t->serial);
    if (t->listener)
        net_listener_close(t->listener);
    net_tls_ctx_unref(t->tls);
    free(t);
}

bool relay_target_same(const struct relay_target *t,
                       const struct relay_target_config *cfg)
{
    if (t->cfg->kind != cfg->kind)
        return false;
    if (cfg->kind == TARGET_KIND_SERIAL)
        return strcmp(t->cfg->name, cfg->name) == 0 &&
               strcmp(t->cfg->pty_path, cfg->pty_path) == 0 &&
               t->cfg->serial_tty == cfg->serial_tty;
    return strcmp(t->cfg->name, cfg->name) == 0 && t->cfg->mode == cfg->mode &&
           endpoint_equal(&t->cfg->chardev, &cfg->chardev) &&
           tls_config_equal(&t->cfg->tls, &cfg->tls);
}

void relay_target_rebind(struct relay_target *t,
                         const struct relay_target_config *cfg)
{
    struct net_tls_ctx *old = t->tls;

    t->cfg = cfg;
    if (!old)
        return;
    /* the same files, maybe new contents (a CRL): new connections use
     * them; one that does not load keeps the old */
    if (target_tls(t) < 0) {
        t->tls = old;
        return;
    }
    net_tls_ctx_unref(old);
    if (t->listener)
        target_guard(t);
}

struct net_conn *relay_target_connect(struct relay_target *t,
                                      const struct net_conn_ops *ops,
                                      void *owner)
{
    struct net_conn *c;
    const char *peer = t->cfg->tls.peer_name ? t->cfg->tls.peer_name
                                             : t->cfg->chardev.tcp.host;

    if (t->cfg->chardev.is_unix)
        return net_conn_connect(t->loop, &t->cfg->chardev, 0, ops, owner);
    c = net_conn_connect_addr(t->loop, (struct sockaddr *)&t->addr,
                              t->addr_name, 0, ops, owner);
    if (c && t->tls && net_conn_start_tls(c, t->tls, peer) < 0) {
        net_conn_close(c, false);
        return NULL;
    }
    return c;
}
