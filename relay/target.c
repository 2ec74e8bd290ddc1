/* One target: the QEMU chardev an agent's device goes to, reached by
 * connecting to it or by waiting for QEMU to dial in. */
#include "target.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "relay.h"
#include "session.h"

#define LISTEN_BACKLOG 4 /* one QEMU per chardev, plus its retries */

static int target_resolve(struct target *t, struct sockaddr_storage *out,
                          int flags)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = flags};
    struct addrinfo *res;
    char port[8];

    snprintf(port, sizeof(port), "%u", t->cfg->qemu.tcp.port);
    int rc = getaddrinfo(t->cfg->qemu.tcp.host, port, &hints, &res);
    if (rc != 0) {
        log_err("target %s: cannot resolve %s: %s", t->cfg->name, t->addr_name,
                gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

/* Hangs up on a QEMU that waits for an agent, forgets what it sent. */
static void target_drop_pending(struct target *t)
{
    if (t->pending)
        conn_close(t->pending, false);
    t->pending = NULL;
    free(t->pending_data);
    t->pending_data = NULL;
    t->pending_len = 0;
}

static void pending_on_data(void *owner, struct conn *c, const uint8_t *data,
                            size_t len)
{
    struct target *t = owner;
    uint8_t *grown = NULL;
    (void)c;

    if (t->pending_len + len > TARGET_PENDING_MAX) {
        log_warn("target %s: QEMU on %s sent over %d bytes with no agent "
                 "attached; closing it (not a usb-redir chardev?)",
                 t->cfg->name, t->addr_name, TARGET_PENDING_MAX);
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

static void pending_on_gone(void *owner, struct conn *c, int status)
{
    struct target *t = owner;
    (void)c;
    log_info("target %s: QEMU disconnected while waiting for an agent (%s)",
             t->cfg->name, status == UV_EOF ? "closed" : uv_strerror(status));
    target_drop_pending(t);
}

static const struct conn_ops pending_ops = {
    .on_data = pending_on_data,
    .on_gone = pending_on_gone,
};

/* Hands the waiting QEMU connection to the session that waits for it. */
void target_offer_pending(struct target *t)
{
    struct conn *c = t->pending;
    uint8_t *data = t->pending_data;
    size_t len = t->pending_len;

    if (!c || !t->session)
        return;
    t->pending = NULL;
    t->pending_data = NULL;
    t->pending_len = 0;
    session_qemu_ready(t->session, c, data, len);
}

static void on_qemu_connection(uv_stream_t *listener, int status)
{
    struct target *t = listener->data;
    struct conn *c;

    if (status < 0) {
        log_warn("target %s: accepting QEMU: %s", t->cfg->name,
                 uv_strerror(status));
        return;
    }
    c = conn_accept(listener, t->relay->read_buf);
    if (!c)
        return;
    if (t->pending || (t->session && t->session->qemu)) {
        log_warn("target %s: refusing a second QEMU connection on %s",
                 t->cfg->name, t->addr_name);
        conn_close(c, false);
        return;
    }
    log_info("target %s: QEMU connected on %s", t->cfg->name, t->addr_name);
    t->pending = c;
    conn_set_owner(c, &pending_ops, t);
    conn_read_start(c);
    target_offer_pending(t);
}

/* A stale socket file left by a crash is removed; a live one is not. */
static int target_unix_prepare(struct target *t)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool used;

    if (fd < 0)
        return 0;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", t->cfg->qemu.path);
    used = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    if (used) {
        log_err("target %s: %s is in use by another program", t->cfg->name,
                t->addr_name);
        return -1;
    }
    unlink(t->cfg->qemu.path);
    return 0;
}

static int target_listen(struct target *t)
{
    uv_loop_t *loop = t->relay->loop;
    int rc;

    if (t->cfg->qemu.is_unix) {
        if (target_unix_prepare(t) < 0)
            return -1;
        uv_pipe_init(loop, &t->listener.pipe, 0);
        t->listener.handle.data = t;
        t->listening = true;
        rc = uv_pipe_bind(&t->listener.pipe, t->cfg->qemu.path);
    } else {
        if (target_resolve(t, &t->addr, AI_PASSIVE) < 0)
            return -1;
        uv_tcp_init(loop, &t->listener.tcp);
        t->listener.handle.data = t;
        t->listening = true;
        rc = uv_tcp_bind(&t->listener.tcp, (struct sockaddr *)&t->addr, 0);
    }
    if (rc == 0)
        rc = uv_listen(&t->listener.stream, LISTEN_BACKLOG, on_qemu_connection);
    if (rc < 0) {
        log_err("target %s: cannot listen on %s: %s", t->cfg->name,
                t->addr_name, uv_strerror(rc));
        return -1;
    }
    log_info("target %s: waiting for QEMU on %s", t->cfg->name, t->addr_name);
    return 0;
}

struct target *target_open(struct relay *r,
                           const struct relay_target_config *cfg)
{
    struct target *t = calloc(1, sizeof(*t));

    if (!t) {
        log_err("target %s: out of memory", cfg->name);
        return NULL;
    }
    t->cfg = cfg;
    t->relay = r;
    chardev_addr_str(&cfg->qemu, t->addr_name, sizeof(t->addr_name));
    if (cfg->mode == TARGET_LISTEN)
        t->ready = target_listen(t) == 0;
    else if (cfg->qemu.is_unix)
        t->ready = true;
    else /* once: a blocking lookup per connection would stall the loop;
            QEMU chardevs are local or on fixed hosts */
        t->ready = target_resolve(t, &t->addr, 0) == 0;
    return t;
}

static void on_listener_closed(uv_handle_t *handle) { free(handle->data); }

void target_close(struct target *t)
{
    target_drop_pending(t);
    if (!t->listening) {
        free(t);
        return;
    }
    t->listening = false;
    if (t->cfg->qemu.is_unix)
        unlink(t->cfg->qemu.path);
    uv_close(&t->listener.handle, on_listener_closed);
}

bool target_same(const struct target *t, const struct relay_target_config *cfg)
{
    char addr[sizeof(t->addr_name)];

    return strcmp(t->cfg->name, cfg->name) == 0 && t->cfg->mode == cfg->mode &&
           strcmp(t->addr_name,
                  chardev_addr_str(&cfg->qemu, addr, sizeof(addr))) == 0;
}

struct conn *target_connect(struct target *t, const struct conn_ops *ops,
                            void *owner)
{
    uint8_t *buf = t->relay->read_buf;

    if (t->cfg->qemu.is_unix)
        return conn_connect_unix(t->relay->loop, t->cfg->qemu.path, buf, ops,
                                 owner);
    return conn_connect_tcp(t->relay->loop, (struct sockaddr *)&t->addr,
                            t->addr_name, buf, ops, owner);
}
