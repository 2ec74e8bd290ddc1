/* SPDX-License-Identifier: MIT */
/* Synthetic agents for the relay's load test: N agents (handshake through
 * common/relay_proto, half lz4, half raw) against N fake QEMU chardevs
 * (unix sockets that greet and echo), in phases driven by stdin:
 *
 *   relay_load PORT SECRET_FILE SOCKET_DIR N BYTES
 *   -> "ESTABLISHED n ms"  (every session attached and greeted; waits for a
 *                           line on stdin)
 *   -> "ECHOED n ms"       (BYTES sent by each agent came back intact;
 *                           waits for a line)
 *   -> closes everything, "DONE", exit 0; any failure: "FAILED why", 1.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "relay_proto.h"
#include "relay_secret.h"
#include "stream_codec.h"

#define MAX_CONNECTING 100 /* handshakes in flight: stay under backlogs */
#define GREETING_LEN 8     /* "Q%06d\n", like usb-redir's hello */
#define TIMEOUT_MS 120000

struct fake_qemu {
    uv_pipe_t listener;
    uv_pipe_t conn;
    bool connected;
    char greeting[16]; /* GREETING_LEN bytes used */
};

struct agent {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    struct relay_client hs;
    bool lz4, attached, greeted;
    struct codec_encoder enc;
    struct codec_decoder dec;
    size_t greeting_have, echo_have;
    int index;
};

static struct {
    uv_loop_t *loop;
    int port, n, next_connect, connecting, attached, echoed;
    size_t bytes;
    uint8_t *payload;
    uint8_t secret[RELAY_SECRET_MAX];
    size_t secret_len;
    struct fake_qemu *qemu;
    struct agent *agents;
    uv_pipe_t input;
    uv_timer_t timeout;
    int phase; /* 0 connecting, 1 echoing, 2 closing */
    uint64_t phase_start;
    uint8_t read_buf[65536];
} L;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;
    printf("FAILED ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    exit(1);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init((char *)L.read_buf, sizeof(L.read_buf));
}

static void on_write_free(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

enum buf_use { BUF_COPY, BUF_OWNED, BUF_STATIC };

/* Writes data: a copy, or the buffer itself (freed after, or static). */
static void write_buf(uv_stream_t *s, const uint8_t *data, size_t len,
                      enum buf_use use)
{
    uv_write_t *req = malloc(sizeof(*req));
    uint8_t *copy = use == BUF_COPY ? malloc(len) : (uint8_t *)data;
    if (use == BUF_COPY)
        memcpy(copy, data, len);
    req->data = use == BUF_STATIC ? NULL : copy;
    uv_buf_t b = uv_buf_init((char *)copy, (unsigned)len);
    if (uv_write(req, s, &b, 1, on_write_free) < 0)
        fail("write: connection gone");
}

/* ---- fake QEMU: greet, then echo ---- */

static void qemu_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n > 0)
        write_buf(s, L.read_buf, (size_t)n, BUF_COPY);
    else if (n < 0 && L.phase < 2)
        fail("fake QEMU %s: relay hung up (%s)",
             ((struct fake_qemu *)s->data)->greeting, uv_strerror((int)n));
    else if (n < 0)
        uv_read_stop(s);
}

static void qemu_on_connection(uv_stream_t *listener, int status)
{
    struct fake_qemu *q = listener->data;

    if (status < 0 || q->connected)
        fail("fake QEMU: unexpected connection (%d)", status);
    uv_pipe_init(L.loop, &q->conn, 0);
    q->conn.data = q;
    if (uv_accept(listener, (uv_stream_t *)&q->conn) < 0)
        fail("fake QEMU: accept");
    q->connected = true;
    write_buf((uv_stream_t *)&q->conn, (uint8_t *)q->greeting, GREETING_LEN,
              BUF_COPY);
    uv_read_start((uv_stream_t *)&q->conn, on_alloc, qemu_on_read);
}

static void qemu_listen(struct fake_qemu *q, const char *dir, int i)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/q%d", dir, i);
    snprintf(q->greeting, sizeof(q->greeting), "Q%06d\n", i % 1000000);
    uv_pipe_init(L.loop, &q->listener, 0);
    q->listener.data = q;
    if (uv_pipe_bind(&q->listener, path) < 0 ||
        uv_listen((uv_stream_t *)&q->listener, 4, qemu_on_connection) < 0)
        fail("cannot listen on %s", path);
}

/* ---- agents ---- */

static void phase_done(const char *what, int count)
{
    printf("%s %d %llu\n", what, count,
           (unsigned long long)(uv_now(L.loop) - L.phase_start));
    fflush(stdout);
}

static void start_connects(void);

static void agent_emit(void *ctx, uint8_t *frame, size_t len)
{
    struct agent *a = ctx;
    write_buf((uv_stream_t *)&a->tcp, frame, len, BUF_OWNED);
}

static void agent_send_payload(struct agent *a)
{
    if (!a->lz4) {
        write_buf((uv_stream_t *)&a->tcp, L.payload, L.bytes, BUF_STATIC);
        return;
    }
    if (codec_encode(&a->enc, L.payload, L.bytes, true, agent_emit, a) < 0)
        fail("encode");
}

/* Checks what the relay delivers: the greeting, then the echo. */
static int agent_deliver(void *ctx, const uint8_t *data, size_t len)
{
    struct agent *a = ctx;
    const char *greeting = L.qemu[a->index].greeting;

    while (len && a->greeting_have < GREETING_LEN) {
        if (*data != (uint8_t)greeting[a->greeting_have++])
            fail("agent %d: wrong greeting", a->index);
        data++;
        len--;
    }
    if (a->greeting_have == GREETING_LEN && !a->greeted) {
        a->greeted = true;
        if (++L.attached == L.n)
            phase_done("ESTABLISHED", L.attached);
    }
    if (a->echo_have + len > L.bytes ||
        memcmp(L.payload + a->echo_have, data, len) != 0)
        fail("agent %d: echo differs at byte %zu", a->index, a->echo_have);
    a->echo_have += len;
    if (len && a->echo_have == L.bytes && ++L.echoed == L.n)
        phase_done("ECHOED", L.echoed);
    return 0;
}

static void agent_stream(struct agent *a, const uint8_t *data, size_t len)
{
    if (!a->lz4) {
        agent_deliver(a, data, len);
        return;
    }
    if (codec_decode(&a->dec, data, len, agent_deliver, a) < 0)
        fail("agent %d: bad frames from the relay: %s", a->index,
             a->dec.error ? a->dec.error : "?");
}

static void agent_handshake(struct agent *a, const uint8_t *data, size_t len)
{
    size_t used;
    int rc = relay_client_feed(&a->hs, data, len, &used);

    if (a->hs.out_len) {
        write_buf((uv_stream_t *)&a->tcp, a->hs.out, a->hs.out_len, BUF_COPY);
        relay_client_output_sent(&a->hs);
    }
    if (rc == RELAY_HS_NEED_MORE)
        return;
    if (rc == RELAY_HS_REFUSED)
        fail("agent %d refused: %s", a->index, a->hs.reason);
    if (rc == RELAY_HS_ERROR)
        fail("agent %d: handshake: %s", a->index, a->hs.error);
    if (a->hs.lz4 != a->lz4)
        fail("agent %d: lz4 %d, wanted %d", a->index, a->hs.lz4, a->lz4);
    a->attached = true;
    L.connecting--;
    start_connects();
    if (used < len)
        agent_stream(a, data + used, len - used);
}

static void agent_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct agent *a = s->data;
    (void)buf;

    if (n < 0) {
        if (L.phase < 2)
            fail("agent %d: relay hung up (%s)", a->index, uv_strerror((int)n));
        uv_read_stop(s);
        return;
    }
    if (a->attached)
        agent_stream(a, L.read_buf, (size_t)n);
    else
        agent_handshake(a, L.read_buf, (size_t)n);
}

static void agent_on_connect(uv_connect_t *req, int status)
{
    struct agent *a = req->data;

    if (status < 0)
        fail("agent %d: connect: %s", a->index, uv_strerror(status));
    uv_read_start((uv_stream_t *)&a->tcp, on_alloc, agent_on_read);
}

static void agent_connect(struct agent *a, int i)
{
    struct sockaddr_in sin;
    char id[32], target[32];

    a->index = i;
    a->lz4 = i % 2 == 0;
    snprintf(id, sizeof(id), "load-agent-%d", i);
    snprintf(target, sizeof(target), "t%d", i);
    if (relay_client_init(&a->hs, id, target, L.secret, L.secret_len, a->lz4) <
        0)
        fail("client init: %s", a->hs.error);
    codec_encoder_init(&a->enc);
    codec_decoder_init(&a->dec);
    uv_tcp_init(L.loop, &a->tcp);
    a->tcp.data = a->connect_req.data = a;
    uv_ip4_addr("127.0.0.1", L.port, &sin);
    if (uv_tcp_connect(&a->connect_req, &a->tcp, (struct sockaddr *)&sin,
                       agent_on_connect) < 0)
        fail("connect %d", i);
}

static void start_connects(void)
{
    while (L.connecting < MAX_CONNECTING && L.next_connect < L.n) {
        L.connecting++;
        agent_connect(&L.agents[L.next_connect], L.next_connect);
        L.next_connect++;
    }
}

/* ---- phases ---- */

static void close_all(void)
{
    L.phase = 2;
    for (int i = 0; i < L.n; i++) {
        uv_close((uv_handle_t *)&L.agents[i].tcp, NULL);
        codec_decoder_free(&L.agents[i].dec);
        relay_client_free(&L.agents[i].hs);
        if (L.qemu[i].connected)
            uv_close((uv_handle_t *)&L.qemu[i].conn, NULL);
        uv_close((uv_handle_t *)&L.qemu[i].listener, NULL);
    }
    uv_close((uv_handle_t *)&L.input, NULL);
    uv_close((uv_handle_t *)&L.timeout, NULL);
}

static void on_input(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)s;
    (void)buf;
    if (n < 0 || (L.phase == 0 && L.attached < L.n) ||
        (L.phase == 1 && L.echoed < L.n)) {
        if (n < 0)
            fail("stdin closed in phase %d", L.phase);
        return; /* early line: ignored */
    }
    L.phase_start = uv_now(L.loop);
    if (L.phase == 0) {
        L.phase = 1;
        for (int i = 0; i < L.n; i++)
            agent_send_payload(&L.agents[i]);
    } else {
        close_all();
    }
}

static void on_timeout(uv_timer_t *t)
{
    (void)t;
    fail("timed out in phase %d: %d attached, %d echoed of %d", L.phase,
         L.attached, L.echoed, L.n);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    char err[RELAY_ERR_MAX];

    if (argc != 6) {
        fprintf(stderr, "usage: relay_load PORT SECRET_FILE SOCKET_DIR N "
                        "BYTES\n");
        return 2;
    }
    L.port = atoi(argv[1]);
    L.n = atoi(argv[4]);
    L.bytes = (size_t)atol(argv[5]);
    if (relay_secret_load(argv[2], L.secret, &L.secret_len, err) < 0)
        fail("%s", err);
    raise_fd_limit();
    L.loop = uv_default_loop();
    L.payload = malloc(L.bytes);
    for (size_t i = 0; i < L.bytes; i++) /* compressible, not trivially */
        L.payload[i] = (uint8_t)("usbredir bulk packet\n"[(i * 7 / 3) % 21] ^
                                 ((i >> 12) & 1));
    L.qemu = calloc((size_t)L.n, sizeof(*L.qemu));
    L.agents = calloc((size_t)L.n, sizeof(*L.agents));
    for (int i = 0; i < L.n; i++)
        qemu_listen(&L.qemu[i], argv[3], i);
    uv_pipe_init(L.loop, &L.input, 0);
    uv_pipe_open(&L.input, 0);
    uv_read_start((uv_stream_t *)&L.input, on_alloc, on_input);
    uv_timer_init(L.loop, &L.timeout);
    uv_timer_start(&L.timeout, on_timeout, TIMEOUT_MS, 0);
    L.phase_start = uv_now(L.loop);
    start_connects();
    uv_run(L.loop, UV_RUN_DEFAULT);
    uv_loop_close(L.loop);
    free(L.qemu);
    free(L.agents);
    free(L.payload);
    printf("DONE\n");
    return 0;
}
