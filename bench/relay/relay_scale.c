/* SPDX-License-Identifier: MIT */
/* One shard of the relay scale benchmark: synthetic agents (half lz4, half
 * raw) for targets tFIRST..tFIRST+N-1 and the fake QEMU chardevs behind
 * them (unix sockets that greet, then echo), driven by stdin lines:
 *
 *   relay_scale PORT SECRET_FILE SOCKET_DIR FIRST N BYTES
 *   -> "ESTABLISHED n ms"   every session attached and greeted
 *   "go"  -> "ECHOED n ms"  each agent sent BYTES; all came back intact
 *   "close" -> "DONE"       everything closed; exit 0
 *   any failure: "FAILED why", exit 1.
 *
 * A fake chardev closes its listening socket once the relay connected: two
 * files per session, so a few shards (processes) drive 10,000 sessions
 * under a 20,000 file limit. tests/relay/test_relay_load.py runs one shard. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "relay_proto.h"
#include "relay_secret.h"
#include "stream_codec.h"

#define MAX_CONNECTING 64 /* handshakes in flight: stay under backlogs */
#define GREETING_LEN 8    /* "Q%06d\n", like usb-redir's hello */
#define TIMEOUT_MS 600000

struct fake_qemu {
    uv_pipe_t listener;
    uv_pipe_t conn;
    bool connected, listener_closed;
    char greeting[16]; /* GREETING_LEN bytes used */
};

struct agent {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    struct relay_client hs;
    bool lz4, attached, greeted;
    struct codec_encoder enc;
    struct codec_decoder dec;
    size_t greeting_have, echo_have, echo_want;
    int index;
};

static struct {
    uv_loop_t *loop;
    int port, first, n, next_connect, connecting, attached, echoed;
    size_t bytes;
    uint8_t *payload;
    uint8_t secret[RELAY_SECRET_MAX];
    size_t secret_len;
    struct fake_qemu *qemu;
    struct agent *agents;
    uv_pipe_t input;
    uv_timer_t timeout;
    int phase;    /* 0 connecting, 1 attached, 2 closing */
    bool echoing; /* a "go" round not echoed yet */
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

static void write_buf(uv_stream_t *s, const uint8_t *data, size_t len,
                      enum buf_use use)
{
    uv_write_t *req = malloc(sizeof(*req));
    uint8_t *copy = use == BUF_COPY ? malloc(len) : (uint8_t *)data;
    if (!req || !copy)
        fail("out of memory");
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
    q->listener_closed = true; /* one connection per run: free the file */
    uv_close((uv_handle_t *)&q->listener, NULL);
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
    a->echo_want += L.bytes;
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
            fail("agent %d: wrong greeting", L.first + a->index);
        data++;
        len--;
    }
    if (a->greeting_have == GREETING_LEN && !a->greeted) {
        a->greeted = true;
        if (++L.attached == L.n) {
            L.phase = 1;
            uv_timer_stop(&L.timeout);
            phase_done("ESTABLISHED", L.attached);
        }
    }
    while (len) {
        size_t off = a->echo_have % L.bytes;
        size_t n = L.bytes - off < len ? L.bytes - off : len;
        if (a->echo_have + n > a->echo_want ||
            memcmp(L.payload + off, data, n) != 0)
            fail("agent %d: echo differs at byte %zu", L.first + a->index,
                 a->echo_have);
        a->echo_have += n;
        data += n;
        len -= n;
        if (a->echo_have == a->echo_want && ++L.echoed == L.n) {
            L.echoing = false;
            uv_timer_stop(&L.timeout);
            phase_done("ECHOED", L.echoed);
        }
    }
    return 0;
}

static void agent_stream(struct agent *a, const uint8_t *data, size_t len)
{
    if (!a->lz4) {
        agent_deliver(a, data, len);
        return;
    }
    if (codec_decode(&a->dec, data, len, agent_deliver, a) < 0)
        fail("agent %d: bad frames from the relay: %s", L.first + a->index,
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
        fail("agent %d refused: %s", L.first + a->index, a->hs.reason);
    if (rc == RELAY_HS_ERROR)
        fail("agent %d: handshake: %s", L.first + a->index, a->hs.error);
    a->attached = true;
    relay_client_free(&a->hs);
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
            fail("agent %d: relay hung up (%s)", L.first + a->index,
                 uv_strerror((int)n));
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
        fail("agent %d: connect: %s", L.first + a->index, uv_strerror(status));
    uv_read_start((uv_stream_t *)&a->tcp, on_alloc, agent_on_read);
}

static void agent_connect(struct agent *a, int i)
{
    struct sockaddr_in sin;
    char id[32], target[32];
    int global = L.first + i;

    a->index = i;
    a->lz4 = global % 2 == 0;
    snprintf(id, sizeof(id), "scale-agent-%d", global);
    snprintf(target, sizeof(target), "t%d", global);
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
        fail("connect %d", global);
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
        if (L.qemu[i].connected)
            uv_close((uv_handle_t *)&L.qemu[i].conn, NULL);
        if (!L.qemu[i].listener_closed)
            uv_close((uv_handle_t *)&L.qemu[i].listener, NULL);
    }
    uv_close((uv_handle_t *)&L.input, NULL);
    uv_close((uv_handle_t *)&L.timeout, NULL);
}

static void on_timeout(uv_timer_t *t);

static void on_input(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)s;
    if (n < 0)
        fail("stdin closed in phase %d", L.phase);
    if (L.phase != 1 || L.echoing)
        return; /* early line: ignored */
    L.phase_start = uv_now(L.loop);
    if (n >= 2 && memcmp(buf->base, "go", 2) == 0) {
        L.echoed = 0;
        L.echoing = true;
        uv_timer_start(&L.timeout, on_timeout, TIMEOUT_MS, 0);
        for (int i = 0; i < L.n; i++)
            agent_send_payload(&L.agents[i]);
    } else {
        close_all();
    }
}

static void on_input_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char line[64];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(line, sizeof(line));
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
        rl.rlim_cur = rl.rlim_max; /* within the hard limit, never above */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    char err[RELAY_ERR_MAX];

    if (argc != 7) {
        fprintf(stderr, "usage: relay_scale PORT SECRET_FILE SOCKET_DIR FIRST "
                        "N BYTES\n");
        return 2;
    }
    L.port = atoi(argv[1]);
    L.first = atoi(argv[4]);
    L.n = atoi(argv[5]);
    L.bytes = (size_t)atol(argv[6]);
    if (L.n <= 0 || L.bytes == 0)
        fail("N and BYTES must be positive");
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
        qemu_listen(&L.qemu[i], argv[3], L.first + i);
    uv_pipe_init(L.loop, &L.input, 0);
    uv_pipe_open(&L.input, 0);
    uv_read_start((uv_stream_t *)&L.input, on_input_alloc, on_input);
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
