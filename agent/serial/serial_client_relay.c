/* SPDX-License-Identifier: MIT */
/* A serial client that dialed redir-relay (connect = HOST:PORT/TARGET):
 * the relay handshake (the same secret or certificates as USB), after
 * which the connection carries RFC 2217 from the relay's serial target. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "relay_proto.h"
#include "relay_secret.h"
#include "serial_client_int.h"

/* The relay answers within its own handshake timeout; a relay that never
 * does is given up on after this, then dialed again with backoff. */
#define RELAY_HANDSHAKE_TIMEOUT_MS 10000

void serial_client__relay_free(struct serial_client *c)
{
    if (!c->relay_hs)
        return;
    relay_client_free(c->relay_hs); /* wipes the secret */
    free(c->relay_hs);
    c->relay_hs = NULL;
}

static void relay_failed(struct serial_client *c, const char *what,
                         const char *why)
{
    char text[RELAY_ERR_MAX + 64];

    snprintf(text, sizeof(text), "relay %s: %s", what, why);
    serial_client__relay_free(c);
    uv_timer_stop(&c->idle_timer);
    c->p.ops->on_dialed(c->p.port, c, text);
}

static void relay_send(struct serial_client *c)
{
    if (!c->relay_hs->out_len)
        return;
    net_conn_queue_copy(c->conn, c->relay_hs->out, c->relay_hs->out_len);
    relay_client_output_sent(c->relay_hs);
    net_conn_flush(c->conn);
}

static void on_handshake_timeout(uv_timer_t *timer)
{
    struct serial_client *c = timer->data;

    if (c->relay_hs)
        relay_failed(c, "handshake", "no answer in time");
}

void serial_client__relay_start(struct serial_client *c)
{
    const struct serial_port_config *cfg = c->p.cfg;
    uint8_t secret[RELAY_SECRET_MAX];
    size_t secret_len = 0;
    char err[RELAY_ERR_MAX], host[RELAY_ID_MAX + 1] = "";
    const char *id = cfg->agent_id;

    if (cfg->relay_secret_file &&
        relay_secret_load(cfg->relay_secret_file, secret, &secret_len, err) <
            0) {
        c->p.ops->on_dialed(c->p.port, c, err);
        return;
    }
    if (!id) {
        gethostname(host, sizeof(host) - 1);
        id = host;
    }
    c->relay_hs = calloc(1, sizeof(*c->relay_hs));
    int rc = !c->relay_hs ? -1
                          : relay_client_init(c->relay_hs, id, cfg->target,
                                              secret_len ? secret : NULL,
                                              secret_len, cfg->lz4);
    memset(secret, 0, sizeof(secret));
    if (rc < 0) {
        relay_failed(c, "handshake",
                     c->relay_hs ? c->relay_hs->error : "out of memory");
        return;
    }
    uv_timer_start(&c->idle_timer, on_handshake_timeout,
                   RELAY_HANDSHAKE_TIMEOUT_MS, 0);
    net_conn_read_start(c->conn);
}

void serial_client__relay_data(struct serial_client *c, size_t n)
{
    uint8_t *data = c->to_tty.data + c->to_tty.tail;
    size_t used = 0;
    int rc = relay_client_feed(c->relay_hs, data, n, &used);

    relay_send(c);
    if (rc == RELAY_HS_NEED_MORE)
        return;
    if (rc == RELAY_HS_REFUSED) {
        relay_failed(c, "refused us", c->relay_hs->reason);
        return;
    }
    if (rc != RELAY_HS_DONE) {
        relay_failed(c, "handshake", c->relay_hs->error);
        return;
    }
    if (c->p.cfg->lz4)
        log_info("%s: the relay %s lz4", c->p.label,
                 c->relay_hs->lz4 ? "agreed to" : "declined");
    /* what came with the answer is the target's first RFC 2217 bytes
     * (framed with lz4): kept for the decoders, which start with the
     * session */
    if (c->relay_hs->lz4) {
        if (serial_client__lz4_start(c, data + used, n - used) < 0) {
            relay_failed(c, "handshake", "out of memory");
            return;
        }
    } else {
        memmove(data, data + used, n - used);
        c->undecoded = c->to_tty.tail;
        c->undecoded_end = c->to_tty.tail + (n - used);
    }
    serial_client__relay_free(c);
    uv_timer_stop(&c->idle_timer);
    net_conn_read_stop(c->conn);
    c->phase = CLIENT_OPEN;
    c->p.ops->on_dialed(c->p.port, c, NULL);
}
