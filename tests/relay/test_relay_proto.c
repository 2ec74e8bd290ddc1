/* SPDX-License-Identifier: MIT */
/* Unit tests of the agent<->relay handshake (both sides, every refusal,
 * truncated input at every byte, garbage) and of the secret file loader. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "../unit/check.h"
#include "relay_proto.h"
#include "relay_secret.h"

static const uint8_t secret[] = "0123456789abcdef-the-shared-secret";
#define SECRET_LEN (sizeof(secret) - 1)

struct pair {
    struct relay_client c;
    struct relay_server s;
    uint8_t hello[RELAY_MSG_MAX], auth[RELAY_MSG_MAX];
    size_t hello_len, auth_len;
};

/* Both sides up to the server's RELAY_HS_AUTH. */
static void pair_start(struct pair *p, const char *id, const char *target,
                       bool want_lz4)
{
    size_t used;

    CHECK(relay_client_init(&p->c, id, target, secret, SECRET_LEN, want_lz4) ==
              0,
          "client init: %s", p->c.error);
    CHECK(relay_server_init(&p->s, RELAY_CAP_LZ4) == 0, "server init");
    memcpy(p->hello, p->s.out, p->s.out_len);
    p->hello_len = p->s.out_len;
    relay_server_output_sent(&p->s);
    CHECK(relay_client_feed(&p->c, p->hello, p->hello_len, &used) ==
                  RELAY_HS_NEED_MORE &&
              used == p->hello_len,
          "client on hello: %s", p->c.error);
    CHECK(p->c.out_len > 0, "no AUTH queued");
    memcpy(p->auth, p->c.out, p->c.out_len);
    p->auth_len = p->c.out_len;
    relay_client_output_sent(&p->c);
}

/* Server's RESULT to the client; returns the client's verdict. */
static int pair_finish(struct pair *p, const uint8_t *extra, size_t extra_len,
                       size_t *consumed)
{
    uint8_t buf[RELAY_MSG_MAX + 64];

    memcpy(buf, p->s.out, p->s.out_len);
    if (extra_len)
        memcpy(buf + p->s.out_len, extra, extra_len);
    int rc = relay_client_feed(&p->c, buf, p->s.out_len + extra_len, consumed);
    CHECK(*consumed == p->s.out_len || rc == RELAY_HS_ERROR,
          "consumed %zu of a %zu-byte result", *consumed, p->s.out_len);
    return rc;
}

static void test_good_path(bool want_lz4)
{
    struct pair p;
    size_t used;

    pair_start(&p, "thin-client-7", "vm1.usb0", want_lz4);
    CHECK(relay_server_feed(&p.s, p.auth, p.auth_len, &used) == RELAY_HS_AUTH,
          "server: %s", p.s.error);
    CHECK(used == p.auth_len, "server consumed %zu of %zu", used, p.auth_len);
    CHECK(strcmp(p.s.agent_id, "thin-client-7") == 0, "id %s", p.s.agent_id);
    CHECK(strcmp(p.s.target, "vm1.usb0") == 0, "target %s", p.s.target);
    CHECK(p.s.version == RELAY_PROTO_VERSION, "version");
    CHECK(relay_server_verify(&p.s, secret, SECRET_LEN), "good MAC refused");
    relay_server_accept(&p.s, secret, SECRET_LEN);
    CHECK(p.s.caps == (want_lz4 ? RELAY_CAP_LZ4 : 0u), "server caps %x",
          p.s.caps);

    const uint8_t stream[] = "\x01\x02stream bytes";
    int rc = pair_finish(&p, stream, sizeof(stream), &used);
    CHECK(rc == RELAY_HS_DONE, "client: %d %s", rc, p.c.error);
    CHECK(p.c.lz4 == want_lz4, "lz4 %d", p.c.lz4);
    CHECK(relay_client_feed(&p.c, stream, 1, &used) == RELAY_HS_ERROR,
          "feeding after DONE");
    relay_client_free(&p.c);
}

static void test_lz4_not_offered(void)
{
    struct pair p;
    size_t used;

    relay_client_init(&p.c, "a", "t", secret, SECRET_LEN, true);
    relay_server_init(&p.s, 0); /* a relay without lz4 */
    relay_client_feed(&p.c, p.s.out, p.s.out_len, &used);
    relay_server_feed(&p.s, p.c.out, p.c.out_len, &used);
    relay_server_accept(&p.s, secret, SECRET_LEN);
    CHECK(relay_client_feed(&p.c, p.s.out, p.s.out_len, &used) ==
                  RELAY_HS_DONE &&
              !p.c.lz4,
          "lz4 agreed though not offered");
    relay_client_free(&p.c);
}

static void test_wrong_secret(void)
{
    struct pair p;
    size_t used;
    static const uint8_t other[] = "0123456789abcdef-another-secret!!!";

    pair_start(&p, "tc", "vm1", true);
    relay_server_feed(&p.s, p.auth, p.auth_len, &used);
    CHECK(!relay_server_verify(&p.s, other, sizeof(other) - 1),
          "wrong secret accepted");
    CHECK(!relay_server_verify(&p.s, secret, SECRET_LEN - 1),
          "a prefix of the secret accepted");
    relay_server_result(&p.s, RELAY_REFUSED_AUTH, "authentication failed");
    int rc = pair_finish(&p, NULL, 0, &used);
    CHECK(rc == RELAY_HS_REFUSED && p.c.status == RELAY_REFUSED_AUTH,
          "client: %d", rc);
    CHECK(strcmp(p.c.reason, "not authenticated: authentication failed") == 0,
          "reason '%s'", p.c.reason);
    relay_client_free(&p.c);
}

/* The MAC covers the target and the nonce: a changed target or an AUTH
 * replayed to another connection fails. */
static void test_mac_binding(void)
{
    struct pair p, q;
    size_t used;

    pair_start(&p, "tc", "vm1", false);
    uint8_t *t = memmem(p.auth, p.auth_len, "vm1", 3);
    CHECK(t != NULL, "target not in AUTH");
    t[2] = '2';
    relay_server_feed(&p.s, p.auth, p.auth_len, &used);
    CHECK(strcmp(p.s.target, "vm2") == 0 &&
              !relay_server_verify(&p.s, secret, SECRET_LEN),
          "changed target accepted");

    pair_start(&p, "tc", "vm1", false);
    pair_start(&q, "tc", "vm1", false);
    relay_server_feed(&q.s, p.auth, p.auth_len, &used);
    CHECK(!relay_server_verify(&q.s, secret, SECRET_LEN), "replay accepted");
    relay_client_free(&p.c);
    relay_client_free(&q.c);
}

static void test_unknown_target(void)
{
    struct pair p;
    size_t used;

    pair_start(&p, "tc", "vm9", false);
    relay_server_feed(&p.s, p.auth, p.auth_len, &used);
    /* the relay's lookup decides; the handshake carries its verdict */
    relay_server_result(&p.s, RELAY_REFUSED_TARGET, "no target 'vm9'\n\x01");
    CHECK(pair_finish(&p, NULL, 0, &used) == RELAY_HS_REFUSED &&
              p.c.status == RELAY_REFUSED_TARGET,
          "unknown target not refused");
    CHECK(strcmp(p.c.reason, "unknown target: no target 'vm9'??") == 0,
          "reason '%s'", p.c.reason);
    relay_client_free(&p.c);
}

static void test_version_mismatch(void)
{
    struct pair p;
    size_t used;

    pair_start(&p, "tc", "vm1", false);
    p.auth[RELAY_MSG_HEADER] = RELAY_PROTO_VERSION + 1;
    CHECK(relay_server_feed(&p.s, p.auth, p.auth_len, &used) ==
                  RELAY_HS_ERROR &&
              p.s.status == RELAY_REFUSED_VERSION,
          "version %d accepted", RELAY_PROTO_VERSION + 1);
    CHECK(strstr(p.s.error, "protocol version 3, this relay versions 1 to 2"),
          "error '%s'", p.s.error);
    CHECK(pair_finish(&p, NULL, 0, &used) == RELAY_HS_REFUSED &&
              p.c.status == RELAY_REFUSED_VERSION &&
              strncmp(p.c.reason, "version mismatch: ", 18) == 0,
          "client reason '%s'", p.c.reason);

    /* A relay hello that excludes our version is still answered, so the
     * relay can say why. */
    relay_client_init(&p.c, "tc", "vm1", secret, SECRET_LEN, false);
    relay_server_init(&p.s, 0);
    p.s.out[RELAY_MSG_HEADER] = 5;     /* min */
    p.s.out[RELAY_MSG_HEADER + 1] = 6; /* max */
    CHECK(relay_client_feed(&p.c, p.s.out, p.s.out_len, &used) ==
                  RELAY_HS_NEED_MORE &&
              p.c.out_len > 0,
          "client gave up on a newer relay: %s", p.c.error);
    relay_client_free(&p.c);

    /* Attack: an old relay, or one pretending to be, that cannot prove it
     * knows the secret. The agent does not even send its MAC. */
    relay_client_init(&p.c, "tc", "vm1", secret, SECRET_LEN, false);
    relay_server_init(&p.s, 0);
    p.s.out[RELAY_MSG_HEADER] = 1;     /* min */
    p.s.out[RELAY_MSG_HEADER + 1] = 1; /* max */
    CHECK(relay_client_feed(&p.c, p.s.out, p.s.out_len, &used) ==
                  RELAY_HS_ERROR &&
              p.c.out_len == 0 && strstr(p.c.error, "upgrade redir-relay"),
          "a v1 relay was answered: '%s'", p.c.error);
    relay_client_free(&p.c);
}

/* Attack: a spoofed relay (DNS, ARP, a stolen address) that does not know
 * the secret answers "ok" to get the user's devices. Version 2 makes the
 * relay prove the secret in its RESULT; without a good PROOF the agent
 * never starts the stream. */
static void test_relay_must_prove(void)
{
    static const uint8_t other[] = "0123456789abcdef-the-wrong-secret!";
    struct pair p;
    size_t used;

    pair_start(&p, "tc", "vm1", false);
    relay_server_feed(&p.s, p.auth, p.auth_len, &used);
    relay_server_result(&p.s, RELAY_OK, NULL); /* no PROOF at all */
    CHECK(pair_finish(&p, NULL, 0, &used) == RELAY_HS_ERROR &&
              strstr(p.c.error, "did not prove"),
          "accepted without a proof: '%s'", p.c.error);
    relay_client_free(&p.c);

    pair_start(&p, "tc", "vm1", false);
    relay_server_feed(&p.s, p.auth, p.auth_len, &used);
    relay_server_accept(&p.s, other, sizeof(other) - 1);
    CHECK(pair_finish(&p, NULL, 0, &used) == RELAY_HS_ERROR &&
              strstr(p.c.error, "did not prove"),
          "accepted a proof of another secret: '%s'", p.c.error);
    relay_client_free(&p.c);

    /* a PROOF replayed from another connection: the agent's nonce differs */
    struct pair q;
    pair_start(&p, "tc", "vm1", false);
    pair_start(&q, "tc", "vm1", false);
    relay_server_feed(&p.s, p.auth, p.auth_len, &used);
    relay_server_accept(&p.s, secret, SECRET_LEN);
    size_t n = p.s.out_len;
    CHECK(relay_client_feed(&q.c, p.s.out, n, &used) == RELAY_HS_ERROR,
          "a replayed PROOF accepted");
    relay_client_free(&p.c);
    relay_client_free(&q.c);
}

/* TLS with certificates both ways: no secret, no MAC, no PROOF; the relay
 * cannot take a missing MAC for a good one. */
static void test_certificate_mode(void)
{
    struct relay_client c;
    struct relay_server s;
    size_t used;

    CHECK(relay_client_init(&c, "tc", "vm1", NULL, 0, true) == 0,
          "no-secret init: %s", c.error);
    relay_server_init(&s, RELAY_CAP_LZ4);
    relay_client_feed(&c, s.out, s.out_len, &used);
    CHECK(relay_server_feed(&s, c.out, c.out_len, &used) == RELAY_HS_AUTH &&
              !s.has_mac,
          "AUTH without MAC: %s", s.error);
    CHECK(!relay_server_verify(&s, secret, SECRET_LEN),
          "a missing MAC verified");
    relay_server_result(&s, RELAY_OK, NULL);
    CHECK(relay_client_feed(&c, s.out, s.out_len, &used) == RELAY_HS_DONE &&
              c.lz4,
          "certificate mode: %s", c.error);
    relay_client_free(&c);
}

/* An agent of version 1 (before the relay had to prove itself) still
 * gets in with the secret, and its RESULT has the v1 layout. */
static void test_v1_agent(void)
{
    struct relay_server s;
    uint8_t auth[RELAY_MSG_MAX], mac[RELAY_MAC_LEN];
    size_t n = 0, used;
    crypto_auth_hmacsha256_state st;

    relay_server_init(&s, 0);
    memcpy(auth, RELAY_MAGIC "A\0\0", 7);
    n = 7;
    auth[n++] = 1;                   /* version */
    memcpy(auth + n, "\0\0\0\0", 4); /* caps */
    n += 4;
    auth[n++] = 2;
    memcpy(auth + n, "tc", 2);
    n += 2;
    auth[n++] = 3;
    memcpy(auth + n, "vm1", 3);
    n += 3;
    size_t body = n - 7 + 1 + RELAY_MAC_LEN;
    auth[5] = (uint8_t)(body >> 8);
    auth[6] = (uint8_t)body;
    crypto_auth_hmacsha256_init(&st, secret, SECRET_LEN);
    crypto_auth_hmacsha256_update(&st, s.out, s.out_len);
    crypto_auth_hmacsha256_update(&st, auth, n);
    crypto_auth_hmacsha256_final(&st, mac);
    auth[n++] = RELAY_MAC_LEN;
    memcpy(auth + n, mac, RELAY_MAC_LEN);
    n += RELAY_MAC_LEN;
    CHECK(relay_server_feed(&s, auth, n, &used) == RELAY_HS_AUTH &&
              s.version == 1 && relay_server_verify(&s, secret, SECRET_LEN),
          "v1 AUTH: %s", s.error);
    relay_server_accept(&s, secret, SECRET_LEN);
    /* v1 RESULT: status, caps, empty text, nothing after */
    CHECK(s.out_len == RELAY_MSG_HEADER + 1 + 4 + 1 && s.out[7] == RELAY_OK,
          "v1 RESULT of %zu bytes", s.out_len);
}

/* Every prefix of a message wants more; the byte-by-byte feed ends the
 * same as the whole. */
static void test_truncated(void)
{
    struct pair p;
    size_t used;

    pair_start(&p, "tc", "vm1", true);
    for (size_t n = 0; n < p.hello_len; n++) {
        struct relay_client c;
        relay_client_init(&c, "tc", "vm1", secret, SECRET_LEN, true);
        CHECK(relay_client_feed(&c, p.hello, n, &used) == RELAY_HS_NEED_MORE &&
                  c.out_len == 0 && used == n,
              "hello cut at %zu", n);
        relay_client_free(&c);
    }
    for (size_t n = 0; n < p.auth_len; n++) {
        struct relay_server s = p.s;
        s.msg_have = 0;
        CHECK(relay_server_feed(&s, p.auth, n, &used) == RELAY_HS_NEED_MORE,
              "AUTH cut at %zu", n);
    }
    int rc = RELAY_HS_NEED_MORE;
    for (size_t i = 0; i < p.auth_len; i++) {
        CHECK(rc == RELAY_HS_NEED_MORE, "AUTH finished early at %zu", i);
        rc = relay_server_feed(&p.s, p.auth + i, 1, &used);
    }
    CHECK(rc == RELAY_HS_AUTH && relay_server_verify(&p.s, secret, SECRET_LEN),
          "AUTH byte by byte: %d %s", rc, p.s.error);
    relay_server_accept(&p.s, secret, SECRET_LEN);
    uint8_t result[RELAY_MSG_MAX];
    size_t result_len = p.s.out_len;
    memcpy(result, p.s.out, result_len);
    for (size_t i = 0; i < result_len; i++) {
        rc = relay_client_feed(&p.c, result + i, 1, &used);
        CHECK(rc == (i + 1 < result_len ? RELAY_HS_NEED_MORE : RELAY_HS_DONE),
              "RESULT byte %zu: %d", i, rc);
    }
    CHECK(p.c.lz4, "lz4 lost byte by byte");
    relay_client_free(&p.c);
}

static void expect_server_error(const char *what, const uint8_t *data,
                                size_t len, int status)
{
    struct relay_server s;
    size_t used;

    relay_server_init(&s, RELAY_CAP_LZ4);
    relay_server_output_sent(&s);
    int rc = relay_server_feed(&s, data, len, &used);
    CHECK(rc == RELAY_HS_ERROR && s.status == status && s.out_len > 0,
          "%s: rc %d status %d", what, rc, s.status);
    CHECK(s.error[0], "%s: no error text", what);
}

static void expect_client_error(const char *what, const uint8_t *data,
                                size_t len)
{
    struct relay_client c;
    size_t used;

    relay_client_init(&c, "tc", "vm1", secret, SECRET_LEN, true);
    int rc = relay_client_feed(&c, data, len, &used);
    CHECK(rc == RELAY_HS_ERROR && c.error[0], "%s: rc %d", what, rc);
    relay_client_free(&c);
}

static void test_garbage(void)
{
    struct pair p;
    uint8_t buf[RELAY_MSG_MAX];
    size_t used;

    /* usbredir's hello: a relay pointed at QEMU, or QEMU at the relay */
    const uint8_t usbredir[] = {0, 0, 0, 0, 68, 0, 0, 0, 0, 0, 0, 0};
    expect_client_error("usbredir hello", usbredir, sizeof(usbredir));
    expect_server_error("usbredir hello", usbredir, sizeof(usbredir),
                        RELAY_REFUSED_MALFORMED);
    expect_server_error("http", (const uint8_t *)"GET / HTTP/1.1\r\n", 16,
                        RELAY_REFUSED_MALFORMED);
    const uint8_t too_long[] = {'R', 'D', 'R', 'L', 'A', 0xff, 0xff};
    expect_server_error("huge body", too_long, sizeof(too_long),
                        RELAY_REFUSED_MALFORMED);
    expect_client_error("huge body", too_long, sizeof(too_long));
    const uint8_t empty_auth[] = {'R', 'D', 'R', 'L', 'A', 0, 0};
    expect_server_error("empty AUTH", empty_auth, sizeof(empty_auth),
                        RELAY_REFUSED_MALFORMED);
    const uint8_t hello_type[] = {'R', 'D', 'R', 'L', 'H', 0, 0};
    expect_server_error("HELLO to the relay", hello_type, sizeof(hello_type),
                        RELAY_REFUSED_MALFORMED);

    /* AUTH fields: each one broken in turn. */
    pair_start(&p, "tc", "vm1", false);
    memcpy(buf, p.auth, p.auth_len);
    buf[RELAY_MSG_HEADER + 5] = 200; /* id longer than the message */
    expect_server_error("id length", buf, p.auth_len, RELAY_REFUSED_MALFORMED);
    memcpy(buf, p.auth, p.auth_len);
    buf[RELAY_MSG_HEADER + 6] = ' '; /* "tc" -> " c" */
    expect_server_error("space in id", buf, p.auth_len,
                        RELAY_REFUSED_MALFORMED);
    memcpy(buf, p.auth, p.auth_len);
    buf[RELAY_MSG_HEADER + 9] = '/'; /* "vm1" -> "/m1" */
    expect_server_error("slash in target", buf, p.auth_len,
                        RELAY_REFUSED_MALFORMED);
    memcpy(buf, p.auth, p.auth_len);
    buf[RELAY_MAGIC_LEN + 2]++; /* one trailing byte */
    buf[p.auth_len] = 0;
    expect_server_error("trailing byte", buf, p.auth_len + 1,
                        RELAY_REFUSED_MALFORMED);

    /* a RESULT with an agreement but no hello before it */
    struct relay_server s;
    relay_server_init(&s, RELAY_CAP_LZ4);
    relay_server_result(&s, RELAY_OK, NULL);
    expect_client_error("RESULT ok without hello", s.out, s.out_len);

    /* an agreement to what was not asked for */
    pair_start(&p, "tc", "vm1", false);
    relay_server_feed(&p.s, p.auth, p.auth_len, &used);
    p.s.caps_wanted = RELAY_CAP_LZ4;
    relay_server_accept(&p.s, secret, SECRET_LEN);
    CHECK(relay_client_feed(&p.c, p.s.out, p.s.out_len, &used) ==
              RELAY_HS_ERROR,
          "capability not asked for accepted");
    relay_client_free(&p.c);
}

static void test_refusal_before_hello(void)
{
    struct relay_client c;
    uint8_t msg[RELAY_MSG_MAX];
    size_t used, n = relay_refusal_message(msg, RELAY_REFUSED_BUSY, "full");

    relay_client_init(&c, "tc", "vm1", secret, SECRET_LEN, true);
    CHECK(relay_client_feed(&c, msg, n, &used) == RELAY_HS_REFUSED &&
              c.status == RELAY_REFUSED_BUSY &&
              strcmp(c.reason, "busy: full") == 0,
          "refusal before hello: '%s'", c.reason);
    relay_client_free(&c);
}

static void test_client_init(void)
{
    struct relay_client c;
    char long_name[RELAY_ID_MAX + 2];

    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    CHECK(relay_client_init(&c, "", "vm1", secret, SECRET_LEN, 0) < 0,
          "empty id");
    CHECK(relay_client_init(&c, "a b", "vm1", secret, SECRET_LEN, 0) < 0,
          "space in id");
    CHECK(relay_client_init(&c, long_name, "vm1", secret, SECRET_LEN, 0) < 0,
          "long id");
    CHECK(relay_client_init(&c, "tc", "vm/1", secret, SECRET_LEN, 0) < 0,
          "slash in target");
    CHECK(relay_client_init(&c, "tc", "vm1", secret, 15, 0) < 0 &&
              strstr(c.error, "16"),
          "short secret: %s", c.error);
    CHECK(relay_client_init(&c, "tc@host", "a-b_c.9", secret, SECRET_LEN, 0) ==
              0,
          "good names refused: %s", c.error);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text),
          "writing %s", path);
    fchmod(fd, mode);
    close(fd);
}

static void test_secret_file(void)
{
    char dir[] = "/tmp/relay-secret-XXXXXX", path[64], err[RELAY_ERR_MAX];
    uint8_t buf[RELAY_SECRET_MAX];
    size_t len;
    char big[RELAY_SECRET_MAX + 10];

    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof(path), "%s/s", dir);
    write_file(path, "0123456789abcdefXYZ\n", 0600);
    CHECK(relay_secret_load(path, buf, &len, err) == 0 && len == 19 &&
              memcmp(buf, "0123456789abcdefXYZ", 19) == 0,
          "good secret: %s", err);
    write_file(path, "0123456789abcdef\r\n", 0600);
    CHECK(relay_secret_load(path, buf, &len, err) == 0 && len == 16,
          "CRLF secret: %s", err);
    write_file(path, "0123456789abcdef\n", 0644);
    CHECK(relay_secret_load(path, buf, &len, err) < 0 &&
              strstr(err, "readable or writable by others") &&
              strstr(err, "chmod 600"),
          "world-readable secret: %s", err);
    write_file(path, "0123456789abcdef\n", 0640);
    CHECK(relay_secret_load(path, buf, &len, err) < 0 &&
              strstr(err, "readable or writable by others"),
          "group-readable secret: %s", err);
    write_file(path, "0123456789abcde\n", 0600);
    CHECK(relay_secret_load(path, buf, &len, err) < 0 &&
              strstr(err, "16 to 1024 bytes"),
          "short secret: %s", err);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_file(path, big, 0600);
    CHECK(relay_secret_load(path, buf, &len, err) < 0 &&
              strstr(err, "16 to 1024 bytes"),
          "long secret: %s", err);
    big[RELAY_SECRET_MAX] = '\n';
    big[RELAY_SECRET_MAX + 1] = '\0';
    write_file(path, big, 0600);
    CHECK(relay_secret_load(path, buf, &len, err) == 0 &&
              len == RELAY_SECRET_MAX,
          "longest secret: %s", err);
    unlink(path);
    CHECK(relay_secret_load(path, buf, &len, err) < 0 &&
              strstr(err, "cannot open"),
          "missing file: %s", err);
    CHECK(relay_secret_load(dir, buf, &len, err) < 0 &&
              strstr(err, "not a regular file"),
          "directory: %s", err);
    rmdir(dir);
}

int main(void)
{
    test_good_path(true);
    test_good_path(false);
    test_lz4_not_offered();
    test_wrong_secret();
    test_mac_binding();
    test_unknown_target();
    test_version_mismatch();
    test_relay_must_prove();
    test_certificate_mode();
    test_v1_agent();
    test_truncated();
    test_garbage();
    test_refusal_before_hello();
    test_client_init();
    test_secret_file();
    return check_summary();
}
