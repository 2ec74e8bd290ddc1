/* SPDX-License-Identifier: MIT */
/* Unit tests of redir-relay's config: every mistake with its FILE:LINE
 * message, and the shipped sample. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../unit/check.h"
#include "relay_config.h"

static char dir[] = "/tmp/relay-config-XXXXXX";
static char conf_path[64], secret_path[64], open_secret_path[64];

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

/* Loads text (with @S@ replaced by the secret file's path). */
static int load(const char *text, struct relay_config *cfg, char *err)
{
    char buf[16384], *out = buf;

    for (const char *p = text; *p;) {
        if (strncmp(p, "@S@", 3) == 0) {
            out += sprintf(out, "%s", secret_path);
            p += 3;
        } else if (strncmp(p, "@W@", 3) == 0) {
            out += sprintf(out, "%s", open_secret_path);
            p += 3;
        } else {
            *out++ = *p++;
        }
    }
    *out = '\0';
    write_file(conf_path, buf, 0644);
    return relay_config_load(conf_path, cfg, err, RELAY_CONFIG_ERR_MAX);
}

static void expect_error(const char *text, int line, const char *what)
{
    struct relay_config cfg;
    char err[RELAY_CONFIG_ERR_MAX], prefix[96];

    snprintf(prefix, sizeof(prefix), "%s:%d: ", conf_path, line);
    int rc = load(text, &cfg, err);
    CHECK(rc < 0 && strncmp(err, prefix, strlen(prefix)) == 0 &&
              strstr(err, what),
          "expected '%s%s', got '%s' for:\n%s", prefix, what,
          rc < 0 ? err : "OK", text);
    relay_config_free(&cfg);
}

#define RELAY "[relay]\nlisten = 0.0.0.0:7300\nsecret_file = @S@\n"

static void test_errors(void)
{
    expect_error(RELAY, 1, "no [target.NAME] section");
    /* serial targets */
    expect_error(RELAY "[target.a]\nkind = tty\n", 5,
                 "kind: 'tty' is not chardev or serial");
    expect_error(RELAY "[target.a]\nkind = serial\n", 4,
                 "kind = serial needs path");
    expect_error(RELAY "[target.a]\nkind = serial\npath = rel\n", 6,
                 "path: 'rel' is not an absolute path");
    expect_error(RELAY "[target.a]\nkind = serial\npath = /p\nqemu = h:1\n", 7,
                 "qemu, mode and tls are for kind = chardev");
    expect_error(RELAY "[target.a]\nkind = serial\nmode = listen\npath = /p\n",
                 6, "qemu, mode and tls are for kind = chardev");
    expect_error(RELAY "[target.a]\nqemu = h:1\npath = /p\n", 6,
                 "path: only for kind = serial");
    expect_error(RELAY "[target.a]\nkind = serial\npath = /p\n"
                       "[target.b]\nkind = serial\npath = /p\n",
                 9,
                 "[target.b] path: tty /p is also the chardev of [target.a]");
    expect_error(RELAY "[target.a]\nkind = serial\nkind = serial\n", 6,
                 "kind: set twice");
    expect_error(RELAY "[target.a]\nkind = serial\npath = /p\ntty = usb\n", 7,
                 "[target.a] tty: 'usb' is not auto, cuse or pty");
    expect_error(RELAY "[target.a]\nkind = serial\npath = /p\ntty = cuse\n"
                       "tty = pty\n",
                 8, "tty: set twice (first on line 7)");
    expect_error(RELAY "[target...]\nkind = serial\npath = /p\n", 4,
                 "[target...]: a serial target's name names its device");
    expect_error(RELAY "[target.a]\nqemu = h:1\ntty = cuse\n", 6,
                 "[target.a] tty: only for kind = serial");
    expect_error("[relay]\nsecret_file = @S@\n[target.a]\nqemu = h:1\n", 1,
                 "[relay] listen = HOST:PORT is missing");
    expect_error("[relay]\nlisten = 0.0.0.0:7300\n[target.a]\nqemu = h:1\n", 1,
                 "secret_file = PATH is missing");
    expect_error(RELAY "[target.a]\nmode = listen\n", 4,
                 "[target.a]: qemu = HOST:PORT | unix:/PATH is missing");
    expect_error(RELAY "[target.a]\nqemu = h:1\nqemu = h:2\n", 6,
                 "qemu: set twice (first on line 5)");
    expect_error(RELAY "[target.a]\nqemu = h:99999\n", 5,
                 "[target.a] qemu: 'h:99999': port must be a number");
    expect_error(RELAY "[target.a]\nqemu = unix:relative\n", 5,
                 "is not an absolute path");
    expect_error(RELAY "[target.a]\nqemu = h:1\nmode = server\n", 6,
                 "mode: 'server' is not connect or listen");
    expect_error(RELAY "[target.a]\nqemu = h:1\ncolour = blue\n", 6,
                 "[target.a]: unknown key 'colour'");
    expect_error(RELAY "[target.a/b]\nqemu = h:1\n", 4,
                 "a target name is 1 to 64 characters");
    expect_error(RELAY "[target.]\nqemu = h:1\n", 4,
                 "a target name is 1 to 64 characters");
    expect_error(RELAY "[target.a]\nqemu = h:1\n[target.a]\nqemu = h:2\n", 6,
                 "[target.a] appears twice (first on line 4)");
    expect_error(RELAY "[target.a]\nqemu = h:1\n[target.b]\nqemu = h:1\n", 7,
                 "[target.b] qemu: h:1 is also the chardev of [target.a] "
                 "(line 5)");
    expect_error(RELAY "[target.a]\nqemu = 0.0.0.0:7300\nmode = listen\n", 5,
                 "0.0.0.0:7300 is where agents connect");
    expect_error(RELAY "[target.a]\nqemu = h:1\n[serial]\n", 6,
                 "unknown section [serial]");
    expect_error(RELAY "listen = 1.2.3.4:5\n[target.a]\nqemu = h:1\n", 4,
                 "[relay] listen: set twice (first on line 2)");
    expect_error("[relay]\nlisten = nope\n", 2, "expected HOST:PORT");
    expect_error("[relay]\nsecret_file = relative\n", 2,
                 "'relative' is not an absolute path");
    expect_error("[relay]\nmax_sessions = 0\n", 2,
                 "max_sessions: '0' is not a number from 1 to 65536");
    expect_error("[relay]\nsession_buffer = 1K\n", 2,
                 "session_buffer: '1K' is not a size from 64K to 64M");
    expect_error("[relay]\nsession_buffer = 99999999999999999999\n", 2,
                 "is not a size");
    expect_error("[relay]\nlog_level = chatty\n", 2, "'chatty' is not one of");
    expect_error("[relay]\nlisten =\n", 2, "[relay] listen: empty value");
    expect_error("[relay]\ncolour = blue\n", 2,
                 "[relay]: unknown key 'colour'");
    expect_error("listen = 1.2.3.4:5\n", 1, "outside of a section");
    expect_error("just garbage\n", 1, "syntax error");
    expect_error("[relay]\n[relay]\n", 2, "[relay] appears twice");
    expect_error("[relay]\nlisten = 0.0.0.0:1\nsecret_file = @W@\n"
                 "[target.a]\nqemu = h:1\n",
                 3, "readable or writable by others");
    expect_error("[relay]\nlisten = 0.0.0.0:1\nsecret_file = /nonexistent/s\n"
                 "[target.a]\nqemu = h:1\n",
                 3, "[relay] secret_file: /nonexistent/s: cannot open");
}

#define TLS_KEYS "tls_ca = /c.pem\ntls_cert = /r.pem\ntls_key = /k.pem\n"

/* The transport-security keys: identities need certificates. */
static void test_security_errors(void)
{
    expect_error("[relay]\nlisten = 0.0.0.0:7300\ntls = yes\n"
                 "[target.a]\nqemu = h:1\n",
                 3, "[relay] tls = yes needs tls_ca");
    expect_error(RELAY "[target.a]\nqemu = h:1\nagents = desk-*\n", 4,
                 "[target.a] agents: needs tls = yes in [relay]");
    expect_error(RELAY "deny_agents = desk-9\n[target.a]\nqemu = h:1\n", 4,
                 "[relay] deny_agents: needs tls = yes");
    expect_error(RELAY "deny_agents = desk 9\n", 4, "not visible ASCII");
    expect_error(RELAY "allow = 10.0.0.0/33\n", 4, "[relay] allow:");
    expect_error(RELAY "metrics_listen = :9471\n", 4,
                 "[relay] metrics_listen: ");
    expect_error(RELAY "handshake_timeout = 0\n", 4,
                 "not a number of seconds from 1 to 60");
    expect_error(RELAY "handshakes_max = none\n", 4,
                 "[relay] handshakes_max: 'none' is not a number");
    expect_error(RELAY "tls_key = relative.pem\n", 4,
                 "not an absolute path (or credential:NAME)");
    expect_error(RELAY "[target.a]\nqemu = unix:/q\ntls = yes\n" TLS_KEYS, 6,
                 "the chardev is a unix socket");
}

static void test_security_good(void)
{
    struct relay_config cfg;
    char err[RELAY_CONFIG_ERR_MAX];

    /* certificates only: no secret file needed */
    int rc =
        load("[relay]\nlisten = 0.0.0.0:7300\ntls = yes\n" TLS_KEYS
             "tls_crl = credential:crl\ndeny_agents = lost-*, desk-3\n"
             "allow = 10.0.0.0/8, ::1\nhandshakes_max = 100\n"
             "handshakes_per_source = 100\nhandshake_timeout = 2\n"
             "[target.a]\nqemu = h:1\nagents = desk-*\ntls = yes\n" TLS_KEYS
             "tls_peer_name = qemu.example\n",
             &cfg, err);
    CHECK(rc == 0, "security config: %s", err);
    CHECK(cfg.tls.enabled && cfg.secret_len == 0 && !cfg.allow_any &&
              cfg.allow.n == 2 && cfg.handshakes.max_pending == 100 &&
              cfg.handshakes.per_source == 100 &&
              cfg.handshake_timeout_ms == 2000 &&
              strcmp(cfg.deny_agents, "lost-*, desk-3") == 0 &&
              strcmp(cfg.tls.crl, "credential:crl") == 0,
          "relay security values");
    CHECK(cfg.n_targets == 1 && strcmp(cfg.targets[0].agents, "desk-*") == 0 &&
              cfg.targets[0].tls.enabled &&
              strcmp(cfg.targets[0].tls.peer_name, "qemu.example") == 0,
          "target security values");
    relay_config_free(&cfg);

    rc = load(RELAY "[target.a]\nqemu = h:1\n", &cfg, err);
    CHECK(rc == 0 && cfg.allow_any && cfg.handshakes.max_pending == 64 &&
              cfg.handshakes.per_source == 8 &&
              cfg.handshake_timeout_ms == 5000 && !cfg.tls.enabled,
          "security defaults: %s", err);
    relay_config_free(&cfg);
    /* an unauthenticated endpoint: a bare port stays on loopback */
    rc = load(RELAY "metrics_listen = 9471\n[target.a]\nqemu = h:1\n", &cfg,
              err);
    CHECK(rc == 0 && cfg.metrics &&
              strcmp(cfg.metrics_addr.host, "127.0.0.1") == 0 &&
              cfg.metrics_addr.port == 9471,
          "metrics_listen = PORT: %s", err);
    relay_config_free(&cfg);
}

static void test_good(void)
{
    struct relay_config cfg;
    char err[RELAY_CONFIG_ERR_MAX];

    int rc = load("[relay]\nlisten = [::1]:7300\nsecret_file = @S@\n"
                  "log_level = debug\nmax_sessions = 10\n"
                  "session_buffer = 2M\n"
                  "[target.zz]\nqemu = unix:/run/q.sock\nmode = listen\n"
                  "[target.aa]\nqemu = 10.0.0.1:4000\n"
                  "[target.s1]\nkind = serial\npath = /run/s1\n"
                  "[target.s2]\nkind = serial\npath = /run/s2\ntty = cuse\n"
                  "[target.s3]\nkind = serial\npath = /run/s3\ntty = pty\n",
                  &cfg, err);
    CHECK(rc == 0, "good config: %s", err);
    CHECK(cfg.max_sessions == 10 && cfg.session_buffer == 2 * 1024 * 1024,
          "limits %u %u", cfg.max_sessions, cfg.session_buffer);
    CHECK(cfg.n_targets == 5 && strcmp(cfg.targets[0].name, "aa") == 0,
          "targets not sorted");
    const struct relay_target_config *s1 = relay_config_target(&cfg, "s1"),
                                     *s2 = relay_config_target(&cfg, "s2"),
                                     *s3 = relay_config_target(&cfg, "s3");
    CHECK(s1 && s2 && s3 && s1->serial_tty == RELAY_SERIAL_TTY_AUTO &&
              s2->serial_tty == RELAY_SERIAL_TTY_CUSE &&
              s3->serial_tty == RELAY_SERIAL_TTY_PTY &&
              strcmp(s2->pty_path, "/run/s2") == 0,
          "serial targets' tty");
    const struct relay_target_config *t = relay_config_target(&cfg, "zz");
    CHECK(t && t->mode == TARGET_LISTEN && t->chardev.is_unix &&
              strcmp(t->chardev.path, "/run/q.sock") == 0,
          "target zz");
    CHECK(relay_config_target(&cfg, "nope") == NULL, "unknown target found");
    CHECK(cfg.secret_len == 20 &&
              memcmp(cfg.secret, "a-good-secret-123456", 20) == 0,
          "secret %zu", cfg.secret_len);
    relay_config_free(&cfg);
}

/* The sample config, with its secret_file pointed at a test file. */
static void test_sample(void)
{
    struct relay_config cfg;
    char err[RELAY_CONFIG_ERR_MAX], text[12288];
    FILE *f = fopen(SAMPLE_CONFIG, "r");
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

    CHECK(f != NULL, "cannot read %s", SAMPLE_CONFIG);
    if (f)
        fclose(f);
    text[n] = '\0';
    char *s = strstr(text, "/etc/redir-relay.secret\n\n");
    CHECK(s != NULL, "sample has no secret_file line");
    if (!s)
        return;
    memmove(s + 3, s + strlen("/etc/redir-relay.secret"),
            strlen(s) - strlen("/etc/redir-relay.secret") + 1);
    memcpy(s, "@S@", 3);
    CHECK(load(text, &cfg, err) == 0, "sample: %s", err);
    CHECK(cfg.n_targets == 1 && cfg.max_sessions == 4096 &&
              cfg.session_buffer == 512 * 1024,
          "sample values");
    relay_config_free(&cfg);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    snprintf(conf_path, sizeof(conf_path), "%s/relay.ini", dir);
    snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
    snprintf(open_secret_path, sizeof(open_secret_path), "%s/open", dir);
    write_file(secret_path, "a-good-secret-123456\n", 0600);
    write_file(open_secret_path, "a-good-secret-123456\n", 0644);
    test_errors();
    test_security_errors();
    test_good();
    test_security_good();
    test_sample();
    unlink(conf_path);
    unlink(secret_path);
    unlink(open_secret_path);
    rmdir(dir);
    return check_summary();
}
