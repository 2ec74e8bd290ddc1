/* SPDX-License-Identifier: MIT */
/* Unit tests of config loading: every bad-config case gives its FILE:LINE
 * message. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <usbredirfilter.h>

#include "check.h"
#include "config.h"
#include "usb_rules.h"

static char path[256];

static int load(const char *text, struct agent_config *cfg, char *err,
                size_t err_len)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    return config_load(path, cfg, err, err_len);
}

/* Loads text and checks that it fails with "PATH:LINE: <expect...>". */
static void expect_error(const char *text, int line, const char *expect)
{
    struct agent_config cfg;
    char err[CONFIG_ERR_MAX], want[CONFIG_ERR_MAX];
    int rc = load(text, &cfg, err, sizeof(err));

    snprintf(want, sizeof(want), "%s:%d: ", path, line);
    CHECK(rc == -1, "config should be refused: %s", text);
    CHECK(strncmp(err, want, strlen(want)) == 0, "'%s' should start with '%s'",
          err, want);
    CHECK(strstr(err, expect) != NULL, "'%s' should mention '%s'", err, expect);
    config_free(&cfg);
}

static void test_bad_configs(void)
{
    expect_error(
        "[usb]\nconnect = 127.0.0.1:4000\nlisten = 127.0.0.1:4001\n", 3,
        "'connect' and 'listen' are exclusive (the other is set on line 2)");
    expect_error("[usb]\nconnect = 127.0.0.1:0\n", 2, "port must be a number");
    expect_error("[usb]\nconnect = 127.0.0.1:65536\n", 2,
                 "port must be a number");
    expect_error("[usb]\nconnect = 127.0.0.1:40x0\n", 2,
                 "port must be a number");
    expect_error("[usb]\nconnect = 127.0.0.1\n", 2, "expected HOST:PORT");
    expect_error("[usb]\nconnect = :4000\n", 2, "missing or too long host");
    expect_error("[usb]\nconnect = [::1:4000\n", 2, "expected [IPv6]:PORT");
    expect_error("[usb]\nconnect = ho$t:4000\n", 2,
                 "invalid character in host");
    expect_error("[usb]\nconnect = 127.0.0.1:4000,,\n", 2, "[usb] connect");
    expect_error("[usb]\nconnect =\n", 2, "empty value");
    expect_error("[usb]\nconnect = a:1\nconnect = b:2\n", 3,
                 "set twice (first on line 2)");
    expect_error("; comment\n[usbx]\n", 2, "unknown section [usbx]");
    expect_error("[usb]\n\n[nope]\nkey = 1\n", 3, "unknown section [nope]");
    expect_error("[usb]\nconect = 127.0.0.1:4000\n", 2, "unknown key 'conect'");
    /* Headers are checked even without keys, however long. */
    expect_error("[serial.a-name-that-is-far-too-long-for-a-serial-port-x]\n",
                 1, "[serial.a-name-that-is-far-too-long");
    char header[200];
    memset(header, 'x', sizeof(header));
    header[0] = '[';
    memcpy(header + sizeof(header) - 3, "]\n", 3);
    expect_error(header, 1, "section name too long");
    expect_error("[agent]\nlog_level = loud\n", 2, "'loud' is not one of");
    expect_error("[usb]\nfilter = 0x03,-1,-1\n", 2,
                 "not a valid usbredirfilter");
    expect_error("[usb]\nfilter = 0x03,-1,-1,-1,2\n", 2,
                 "not a valid usbredirfilter");
    expect_error("[usb]\nfilter = 0x103,-1,-1,-1,0\n", 2,
                 "not a valid usbredirfilter");
    expect_error("[usb]\nreconnect_min_ms = -5\n", 2,
                 "not a number of milliseconds");
    expect_error(
        "[usb]\nreconnect_min_ms = 5000\nreconnect_max_ms = 100\n", 3,
        "reconnect_min_ms (5000) is larger than reconnect_max_ms (100)");
    expect_error("[usb]\nusbredir_debug = 6\n", 2, "not a level from 0 to 5");
    expect_error("[usb]\nthis line has no equals sign\n", 2, "syntax error");
    expect_error("[usb]\nrule = allow vid=1050\nrule = allow vendor=1\n", 3,
                 "[usb] rule: 'vendor': unknown matcher");
    expect_error("[usb]\nrule = allow pid=1\nrule = allow interface=3:1:1\n", 3,
                 "[usb] rule: 'interface=3:1:1': interface expects");
    expect_error("[usb]\ntransport = zstd\n", 2,
                 "[usb] transport: 'zstd' is not raw or lz4");
    expect_error("[usb]\nconnect = 127.0.0.1:4000\ntransport = lz4\n", 3,
                 "[usb] transport: lz4 needs redir-relay");
    expect_error("[usb]\nconnect = relay:7000/vm 1\n", 2,
                 "'vm 1': a relay target is 1 to 63 letters");
    expect_error("[usb]\nconnect = relay:7000/\n", 2, "a relay target is");
    expect_error("[usb]\nconnect = relay:7000/vm1\n", 2,
                 "relay targets need [usb] relay_secret_file or tls = yes");
    expect_error("[usb]\nrelay_secret_file = /k\n"
                 "connect = relay:7000/vm1, 127.0.0.1:4000\n",
                 3, "mix of relay targets");
    expect_error("[usb]\nrelay_secret_file = /k\nlisten = 0.0.0.0:7000/vm1\n",
                 3, "relay targets (HOST:PORT/TARGET) need connect");
    expect_error("[usb]\nrelay_secret_file = key\n", 2, "not an absolute");
    expect_error("[usb]\nrule = maybe vid=1050\n", 2,
                 "[usb] rule: 'maybe': a rule starts with allow or deny");
    expect_error("[usb]\nrule = deny class=08 access=ro\n", 2,
                 "access= only makes sense on allow rules");
    expect_error("[agent]\ncontrol_socket = run/agent.sock\n", 2,
                 "[agent] control_socket: 'run/agent.sock' is not an absolute");
    expect_error("[usb\n", 1, "syntax error");
    expect_error("[agent]\ncontrol_group = no-such-group-here\n", 2,
                 "[agent] control_group: no group 'no-such-group-here'");
    expect_error("[agent]\ncontrol_group = root\ncontrol_group = root\n", 3,
                 "control_group: set twice (first on line 2)");
    expect_error("[agent]\nmetrics_listen = 94700\n", 2,
                 "[agent] metrics_listen: '94700': port must be a number");
    expect_error("[agent]\nmetrics_listen = :9470\n", 2,
                 "[agent] metrics_listen: ");
    expect_error("[agent]\nallow_force = maybe\n", 2,
                 "[agent] allow_force: 'maybe' is not yes or no");

    char longline[400];
    memset(longline, 'x', sizeof(longline));
    memcpy(longline, "[usb]\nfilter = ", 15);
    longline[sizeof(longline) - 2] = '\n';
    longline[sizeof(longline) - 1] = '\0';
    expect_error(longline, 2, "line longer than");
}

/* [usb] transport security: a listener open to anyone is an error (the
 * attack: whoever connects first gets the device), TLS needs its files. */
static void test_usb_security(void)
{
    struct agent_config cfg;
    char err[CONFIG_ERR_MAX];

    expect_error("[usb]\nlisten = 0.0.0.0:4000\n", 2,
                 "[usb] listen: 0.0.0.0:4000 takes a connection from anyone");
    expect_error("[usb]\nlisten = 127.0.0.1:4000, [::]:4001\n", 2,
                 "[::]:4001 takes a connection from anyone");
    expect_error("[usb]\nconnect = 10.0.0.1:4000\nallow = 10.0.0.0/8\n", 3,
                 "[usb] allow: only for listen");
    expect_error("[usb]\nlisten = 0.0.0.0:4000\nallow = 10.0.0.0/40\n", 3,
                 "[usb] allow:");
    expect_error("[usb]\nconnect = 10.0.0.1:4000\ntls = yes\n", 3,
                 "[usb] tls = yes needs tls_ca");
    expect_error("[usb]\nreplace_peer = maybe\n", 2,
                 "[usb] replace_peer: 'maybe' is not yes or no");

    int rc = load("[usb]\nlisten = 0.0.0.0:4000\nallow = 10.1.2.0/24, ::1\n"
                  "replace_peer = yes\n",
                  &cfg, err, sizeof(err));
    CHECK(rc == 0 && cfg.usb.allow.n == 2 && !cfg.usb.allow_any &&
              cfg.usb.replace_peer,
          "allow config: %s", err);
    config_free(&cfg);
    rc = load("[usb]\nlisten = 127.0.0.1:4000\n", &cfg, err, sizeof(err));
    CHECK(rc == 0 && !cfg.usb.replace_peer, "loopback listen: %s", err);
    config_free(&cfg);
    /* an unauthenticated endpoint: a bare port stays on loopback */
    rc = load("[agent]\nmetrics_listen = 9470\n", &cfg, err, sizeof(err));
    CHECK(rc == 0 && cfg.metrics &&
              strcmp(cfg.metrics_addr.host, "127.0.0.1") == 0 &&
              cfg.metrics_addr.port == 9470,
          "metrics_listen = PORT: %s", err);
    config_free(&cfg);
    /* certificates instead of the secret for a relay */
    rc = load("[usb]\nconnect = relay:7300/vm1\ntls = yes\n"
              "tls_ca = /ca.pem\ntls_cert = /c.pem\ntls_key = credential:k\n"
              "tls_peer_name = relay.example\n",
              &cfg, err, sizeof(err));
    CHECK(rc == 0 && cfg.usb.tls.enabled && !cfg.usb.relay_secret_file &&
              strcmp(cfg.usb.tls.key, "credential:k") == 0,
          "tls relay config: %s", err);
    config_free(&cfg);
}

static void test_good_config(void)
{
    struct agent_config cfg;
    char err[CONFIG_ERR_MAX];
    int rc = load("; sample\n[agent]\nlog_level = debug\n"
                  "[usb]\nconnect = 10.0.0.1:4000, [::1]:4001 ,host.example:5\n"
                  "filter = 0x03,-1,-1,-1,0   ; keep HID local\n"
                  "filter = -1,-1,-1,-1,1\n"
                  "reconnect_min_ms = 50\nreconnect_max_ms = 2000\n",
                  &cfg, err, sizeof(err));

    CHECK(rc == 0, "good config refused: %s", err);
    CHECK(cfg.usb.mode == USB_PEER_CONNECT, "mode %d", cfg.usb.mode);
    CHECK(cfg.usb.nslots == 3, "%zu slots", cfg.usb.nslots);
    CHECK(strcmp(cfg.usb.slots[1].addr.host, "::1") == 0 &&
              cfg.usb.slots[1].addr.port == 4001,
          "slot 2 is %s:%u", cfg.usb.slots[1].addr.host,
          cfg.usb.slots[1].addr.port);
    CHECK(strcmp(cfg.usb.slots[2].addr.host, "host.example") == 0,
          "slot 3 host");
    CHECK(cfg.usb.filter_count == 2, "%d filter rules", cfg.usb.filter_count);
    CHECK(cfg.usb.filter_text &&
              strcmp(cfg.usb.filter_text, "0x03,-1,-1,-1,0|-1,-1,-1,-1,1") == 0,
          "filter text %s", cfg.usb.filter_text);
    CHECK(cfg.usb.reconnect_min_ms == 50 && cfg.usb.reconnect_max_ms == 2000,
          "backoff");
    CHECK(cfg.log_level == 7, "log level %d", cfg.log_level);
    CHECK(strcmp(cfg.control_socket, CONFIG_DEFAULT_CONTROL_SOCKET) == 0, "%s",
          cfg.control_socket);
    config_free(&cfg);

    rc = load("[usb]\nrule = deny interface=03:01:01 ; keyboards\n"
              "rule = allow vid=1050\nrule = allow class=08 access=ro\n"
              "[agent]\ncontrol_socket = /tmp/x.sock\n",
              &cfg, err, sizeof(err));
    CHECK(rc == 0 && cfg.usb.n_rules == 3, "rules: %s", err);
    CHECK(rc == 0 && strcmp(cfg.usb.rules[2].text, "class=08") == 0, "rule 3");
    CHECK(rc == 0 && strcmp(cfg.control_socket, "/tmp/x.sock") == 0, "socket");
    config_free(&cfg);

    char secret[300], text[1024];
    snprintf(secret, sizeof(secret), "%s.secret", path);
    FILE *sf = fopen(secret, "w");
    fputs("0123456789abcdef0123\n", sf);
    fclose(sf);
    chmod(secret, 0600);
    snprintf(text, sizeof(text),
             "[usb]\nconnect = relay.example:7000/vm42-usb0, "
             "relay.example:7000/vm42-usb1\ntransport = lz4\n"
             "relay_secret_file = %s\nagent_id = desk-17\n",
             secret);
    rc = load(text, &cfg, err, sizeof(err));
    CHECK(rc == 0, "relay config refused: %s", err);
    CHECK(rc == 0 && cfg.usb.transport == USB_TRANSPORT_LZ4 &&
              strcmp(cfg.usb.slots[1].target, "vm42-usb1") == 0 &&
              strcmp(cfg.usb.slots[1].addr.host, "relay.example") == 0 &&
              cfg.usb.slots[1].addr.port == 7000 &&
              strcmp(cfg.usb.agent_id, "desk-17") == 0,
          "relay slots");
    config_free(&cfg);

    /* The secret file is checked when the config is loaded. */
    snprintf(text, sizeof(text),
             "[usb]\nconnect = r:7000/vm1\nrelay_secret_file = %s.none\n",
             secret);
    rc = load(text, &cfg, err, sizeof(err));
    CHECK(rc < 0 && strstr(err, ":3: [usb] relay_secret_file: ") != NULL,
          "missing secret: %s", err);
    config_free(&cfg);
    chmod(secret, 0644);
    snprintf(text, sizeof(text),
             "[usb]\nconnect = r:7000/vm1\nrelay_secret_file = %s\n", secret);
    rc = load(text, &cfg, err, sizeof(err));
    CHECK(rc < 0 && strstr(err, ":3: [usb] relay_secret_file: ") != NULL,
          "world-readable secret: %s", err);
    config_free(&cfg);
    unlink(secret);

    rc = load("", &cfg, err, sizeof(err));
    CHECK(rc == 0 && cfg.usb.mode == USB_PEER_NONE, "empty config: %s", err);
    config_free(&cfg);
}

static void test_missing_file(void)
{
    struct agent_config cfg;
    char err[CONFIG_ERR_MAX];
    int rc =
        config_load("/nonexistent/redir-agent.ini", &cfg, err, sizeof(err));

    CHECK(rc == -1, "missing file accepted");
    CHECK(strcmp(err, "/nonexistent/redir-agent.ini: cannot open: No such file "
                      "or directory") == 0,
          "%s", err);
    config_free(&cfg);
}

static void test_sample_config(void)
{
    struct agent_config cfg;
    char err[CONFIG_ERR_MAX];
    int rc = config_load(SAMPLE_CONFIG, &cfg, err, sizeof(err));

    CHECK(rc == 0, "the shipped sample config is refused: %s", err);
    config_free(&cfg);
}

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/redir-test-config-%d.ini",
             (int)getpid());
    test_bad_configs();
    test_usb_security();
    test_good_config();
    test_missing_file();
    test_sample_config();
    unlink(path);
    return check_summary();
}
