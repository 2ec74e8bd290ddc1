/* SPDX-License-Identifier: MIT */
/* What TLS costs the connection module itself: one process, a net_conn
 * dialing a guarded net_listener over loopback, CHUNK-byte writes until
 * TOTAL bytes arrived; CPU (both ends) per GiB, plain or TLS with one
 * cipher suite. Run by bench/tls/net.py, which compares the variants.
 *   net_bench PORT CHUNK TOTAL_MIB [CERTDIR SUITE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "log.h"
#include "net_conn.h"
#include "net_listener.h"
#include "net_tls.h"
#include "tls_config.h"

static uint8_t payload[1 << 20];
static size_t chunk, total, sent, received;
static struct net_conn *writer, *reader;
static struct net_listener *listener;
static uv_loop_t *loop;

static void release_none(void *ctx, void *base, size_t len)
{
    (void)ctx;
    (void)base;
    (void)len;
}

static void fill(void)
{
    while (sent < total && !net_conn_congested(writer)) {
        size_t n = total - sent < chunk ? total - sent : chunk;
        net_conn_queue(writer, payload, n, release_none, NULL);
        sent += n;
    }
    net_conn_flush(writer);
}

static void on_drained(void *o, struct net_conn *c)
{
    (void)o;
    (void)c;
    fill();
}

static void on_connected(void *o, struct net_conn *c, int status)
{
    (void)o;
    (void)c;
    if (status < 0) {
        fprintf(stderr, "connect: %s: %s\n", uv_strerror(status),
                net_conn_tls_error(c) ? net_conn_tls_error(c) : "");
        exit(1);
    }
    fill();
}

static void on_data(void *o, struct net_conn *c, const uint8_t *d, size_t n)
{
    (void)o;
    (void)c;
    (void)d;
    received += n;
    if (received >= total) {
        net_conn_close(writer, false);
        net_conn_close(reader, false);
        net_listener_close(listener);
    }
}

static const struct net_conn_ops writer_ops = {.on_connected = on_connected,
                                               .on_drained = on_drained};
static const struct net_conn_ops reader_ops = {.on_data = on_data};

static void on_accept(void *ctx, struct net_conn *c)
{
    (void)ctx;
    reader = c;
    net_conn_set_owner(c, &reader_ops, NULL);
    net_conn_read_start(c);
}

static struct net_tls_ctx *ctx_for(const char *dir, const char *suite,
                                   const char *name, bool server)
{
    static char paths[3][512];
    struct tls_config t = {.enabled = true};
    char err[NET_TLS_ERR_MAX];

    snprintf(paths[0], sizeof(paths[0]), "%s/ca.pem", dir);
    snprintf(paths[1], sizeof(paths[1]), "%s/%s.pem", dir, name);
    snprintf(paths[2], sizeof(paths[2]), "%s/%s-key.pem", dir, name);
    t.ca = paths[0];
    t.cert = paths[1];
    t.key = paths[2];
    t.ciphersuites = (char *)suite;
    struct net_tls_ctx *ctx = net_tls_ctx_new(&t, server, err, sizeof(err));
    if (!ctx) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return ctx;
}

int main(int argc, char **argv)
{
    struct endpoint ep = {0};
    struct net_guard g;
    struct net_tls_ctx *server = NULL, *client = NULL;
    struct rusage ru;
    char why[300];

    if (argc != 4 && argc != 6) {
        fprintf(stderr, "usage: net_bench PORT CHUNK TOTAL_MIB [DIR SUITE]\n");
        return 2;
    }
    log_set_level(LOG_WARNING);
    chunk = strtoul(argv[2], NULL, 10);
    total = strtoul(argv[3], NULL, 10) << 20;
    if (chunk == 0 || chunk > sizeof(payload))
        return 2;
    memset(payload, 0x5a, sizeof(payload));
    snprintf(ep.tcp.host, sizeof(ep.tcp.host), "127.0.0.1");
    ep.tcp.port = (uint16_t)atoi(argv[1]);
    loop = uv_default_loop();
    listener =
        net_listener_open(loop, &ep, 4, 0, on_accept, NULL, why, sizeof(why));
    if (!listener) {
        fprintf(stderr, "%s\n", why);
        return 1;
    }
    if (argc == 6) {
        server = ctx_for(argv[4], argv[5], "relay", true);
        client = ctx_for(argv[4], argv[5], "desk-17", false);
    }
    net_guard_init(&g, "bench");
    g.tls = server;
    net_listener_set_guard(listener, &g);
    writer = net_conn_connect(loop, &ep, 5000, &writer_ops, NULL);
    net_conn_set_water(writer, 1 << 20, 1 << 19);
    if (getenv("UNSENT_LIMIT")) /* what usb_transport sets */
        net_conn_set_unsent_limit(writer, atoi(getenv("UNSENT_LIMIT")));
    if (client)
        net_conn_start_tls(writer, client, "127.0.0.1");
    uv_run(loop, UV_RUN_DEFAULT);
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("%zu %.3f\n", received, cpu / ((double)received / (1 << 30)));
    net_tls_ctx_unref(server);
    net_tls_ctx_unref(client);
    return received >= total ? 0 : 1;
}
