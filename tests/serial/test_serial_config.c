/* SPDX-License-Identifier: MIT */
/* Unit tests of [serial.NAME] sections through config_load(): every key's
 * errors with FILE:LINE, defaults, and the documented sample section. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../unit/check.h"
#include "config.h"
#include "serial_config.h"

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

#define DEV "[serial.a]\ndevice = /dev/ttyUSB0\n"
#define DEV_LISTEN DEV "listen = 127.0.0.1:7000\n"

static void test_key_errors(void)
{
    expect_error("[serial.]\n", 1, "NAME must be 1 to 32 letters");
    expect_error("[serial.a b]\n", 1, "NAME must be");
    expect_error("[serial.abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop"
                 "qrstuvwxyz]\ndevice = /dev/x\n",
                 1, "NAME must be 1 to 32"); /* on its header line */
    expect_error("[serial.a]\n[serial.b]\n[serial.a]\n", 3,
                 "[serial.a]: section repeated (first on line 1)");
    expect_error(DEV "devise = x\n", 3, "[serial.a]: unknown key 'devise'");
    expect_error("[serial.a]\ndevice =\n", 2, "[serial.a] device: empty value");
    expect_error("[serial.a]\ndevice = ttyUSB0\n", 2,
                 "[serial.a] device: 'ttyUSB0' is not an absolute path");
    expect_error(DEV "device = /dev/ttyS0\n", 3,
                 "[serial.a] device: set twice (first on line 2)");
    expect_error(DEV "listen = 127.0.0.1\n", 3,
                 "[serial.a] listen: '127.0.0.1': expected HOST:PORT");
    /* connect through a relay */
    expect_error(DEV "connect = 10.0.0.1:7300/bad name\n", 3,
                 "connect: relay target 'bad name' is not");
    expect_error(DEV "connect = 10.0.0.1:7300/vm1\n", 3,
                 "needs relay_secret_file = /PATH or tls = yes");
    expect_error(DEV "connect = 10.0.0.1:7300/vm1\nrelay_secret_file = /s\n"
                     "mode = raw\n",
                 5, "mode: a relay target speaks rfc2217");
    expect_error(DEV_LISTEN "relay_secret_file = /s\n", 4,
                 "relay_secret_file: only with connect = HOST:PORT/TARGET");
    expect_error(DEV "connect = h:1/vm\nrelay_secret_file = rel\n", 4,
                 "relay_secret_file: 'rel' is not an absolute path");
    expect_error(DEV "connect = h:1/vm\nrelay_secret_file = /s\n"
                     "agent_id = a b\n",
                 5, "agent_id: 'a b' has characters other than visible");
    expect_error(DEV "connect = 10.0.0.1:0\n", 3,
                 "[serial.a] connect: '10.0.0.1:0': port must be a number");
    expect_error(DEV_LISTEN "connect = 10.0.0.1:7000\n", 4,
                 "[serial.a] connect: 'connect' and 'listen' are exclusive "
                 "(the other is set on line 3)");
    expect_error(DEV_LISTEN "mode = ser2net\n", 4,
                 "[serial.a] mode: 'ser2net' is not one of raw, telnet, "
                 "rfc2217");
    expect_error(DEV_LISTEN "kind = modem\n", 4,
                 "[serial.a] kind: 'modem' is not one of auto, tty, printer");
    expect_error(DEV_LISTEN "line = 9600 8Q1\n", 4,
                 "[serial.a] line: '9600 8Q1': framing must be");
    expect_error(DEV_LISTEN "line = fast\n", 4,
                 "[serial.a] line: 'fast': speed must be a number from 50");
    expect_error(DEV_LISTEN "flow = dsrdtr\n", 4,
                 "[serial.a] flow: 'dsrdtr' is not one of none, rtscts, "
                 "xonxoff");
    expect_error(DEV_LISTEN "replace_client = maybe\n", 4,
                 "[serial.a] replace_client: 'maybe' is not yes or no");
    expect_error(DEV_LISTEN "idle_timeout = -1\n", 4,
                 "[serial.a] idle_timeout: '-1' is not a number of seconds");
    expect_error(DEV_LISTEN "idle_timeout = 604801\n", 4,
                 "[serial.a] idle_timeout: '604801'");
    expect_error(DEV_LISTEN "on_device_loss = wait\n", 4,
                 "[serial.a] on_device_loss: 'wait' is not close or keep");
    expect_error(DEV_LISTEN "reconnect_min_ms = 0\n", 4,
                 "[serial.a] reconnect_min_ms: '0' is not a number of "
                 "milliseconds");
    expect_error(DEV "connect = h:1\nreconnect_min_ms = 900\n"
                     "reconnect_max_ms = 800\n",
                 5,
                 "reconnect_min_ms (900) is larger than reconnect_max_ms "
                 "(800)");
}

static void test_section_errors(void)
{
    expect_error("[usb]\n\n[serial.a]\nlisten = 127.0.0.1:7000\n", 3,
                 "[serial.a]: no 'device' set");
    expect_error("\n" DEV "mode = raw\n", 2,
                 "[serial.a]: set 'listen' or 'connect'");
    expect_error(DEV_LISTEN "[serial.b]\ndevice = /dev/ttyUSB0\n"
                            "listen = 127.0.0.1:7001\n",
                 5,
                 "[serial.b] device: /dev/ttyUSB0 is already used by "
                 "[serial.a] (line 2)");
    expect_error(DEV_LISTEN "[serial.b]\ndevice = /dev/ttyUSB1\n"
                            "listen = 127.0.0.1:7000\n",
                 6,
                 "[serial.b] listen: 127.0.0.1:7000 is already used by "
                 "[serial.a] (line 3)");
    expect_error(DEV_LISTEN "[usb]\nlisten = 127.0.0.1:7000\n", 3,
                 "127.0.0.1:7000 is already a [usb] listen slot");
    expect_error("[serial.p]\ndevice = /dev/usb/lp0\nlisten = :1\n", 3,
                 "missing or too long host");
    expect_error("[serial.p]\ndevice = /dev/usb/lp0\nlisten = h:9100\n"
                 "mode = rfc2217\n",
                 4,
                 "[serial.p] mode: rfc2217 needs a tty; /dev/usb/lp0 is a "
                 "printer");
    expect_error("[serial.p]\ndevice = /dev/lp1\nline = 9600\n"
                 "listen = h:9100\n",
                 3, "[serial.p] line: /dev/lp1 is a printer: it has no line");
    expect_error("[serial.p]\ndevice = /dev/zebra\nkind = printer\n"
                 "listen = h:9100\nflow = rtscts\n",
                 5, "[serial.p] flow: /dev/zebra is a printer");
}

/* A listener others can reach must say whom it lets in (attack: anyone on
 * the network takes the port, sends BREAK, toggles DTR). */
static void test_security(void)
{
    expect_error("[serial.p]\ndevice = /dev/ttyS0\nlisten = 0.0.0.0:7000\n", 3,
                 "[serial.p] listen: 0.0.0.0:7000 takes a connection from "
                 "anyone");
    expect_error("[serial.p]\ndevice = /dev/ttyS0\nconnect = h:7000\n"
                 "allow = 10.0.0.0/8\n",
                 4, "[serial.p] allow: only for listen");
    expect_error("[serial.p]\ndevice = /dev/ttyS0\nlisten = h:7000\n"
                 "allow = 300.0.0.0/8\n",
                 4, "[serial.p] allow:");
    expect_error("[serial.p]\ndevice = /dev/ttyS0\nlisten = h:7000\n"
                 "tls = yes\ntls_ca = /ca.pem\n",
                 4, "[serial.p] tls = yes needs tls_cert");
}

static void test_good(void)
{
    struct agent_config cfg;
    char err[CONFIG_ERR_MAX];
    int rc = load("[serial.scale]\n"
                  "device = /dev/serial/by-id/usb-FTDI_x-if00-port0\n"
                  "listen = 0.0.0.0:7000\nallow = 10.1.0.0/16\n"
                  "mode = RFC2217\n"
                  "line = 115200 7E2\nflow = rtscts\n"
                  "replace_client = no\nidle_timeout = 600\n"
                  "on_device_loss = keep\n"
                  "[serial.printer]\ndevice = /dev/usb/lp0\n"
                  "connect = [::1]:9100\nmode = raw\n"
                  "reconnect_min_ms = 50\nreconnect_max_ms = 60000\n"
                  "[serial.label]\ndevice = /dev/zebra\nkind = printer\n"
                  "listen = 127.0.0.1:9101\n"
                  "[serial.console]\ndevice = /dev/ttyS0\n"
                  "listen = 127.0.0.1:7001\n",
                  &cfg, err, sizeof(err));

    CHECK(rc == 0, "good config refused: %s", err);
    if (rc != 0)
        return;
    CHECK(cfg.serial.n_ports == 4, "%zu ports", cfg.serial.n_ports);
    const struct serial_port_config *s = &cfg.serial.ports[0];
    CHECK(strcmp(s->name, "scale") == 0 && s->line == 1, "name and line");
    CHECK(s->kind == SERIAL_KIND_TTY && s->mode == SERIAL_MODE_RFC2217 &&
              s->peer == SERIAL_PEER_LISTEN && s->addr.port == 7000,
          "scale: tty rfc2217 listen");
    CHECK(s->settings.baud == 115200 && s->settings.data_bits == 7 &&
              s->settings.parity == SERIAL_PARITY_EVEN &&
              s->settings.stop == SERIAL_STOP_2 &&
              s->settings.flow_in == SERIAL_FLOW_RTSCTS &&
              s->settings.flow_out == SERIAL_FLOW_RTSCTS,
          "scale: line");
    CHECK(!s->replace_client && s->idle_timeout_s == 600 &&
              s->on_device_loss == SERIAL_LOSS_KEEP,
          "scale: session keys");
    s = &cfg.serial.ports[1];
    CHECK(s->kind == SERIAL_KIND_PRINTER && s->peer == SERIAL_PEER_CONNECT &&
              strcmp(s->addr.host, "::1") == 0 && s->reconnect_min_ms == 50 &&
              s->reconnect_max_ms == 60000,
          "printer: detected by name, connect mode, backoff");
    s = &cfg.serial.ports[2];
    CHECK(s->kind == SERIAL_KIND_PRINTER, "kind = printer");
    s = &cfg.serial.ports[3];
    CHECK(s->kind == SERIAL_KIND_TTY && s->mode == SERIAL_MODE_RAW &&
              s->settings.baud == 9600 && s->settings.data_bits == 8 &&
              s->settings.parity == SERIAL_PARITY_NONE &&
              s->settings.flow_out == SERIAL_FLOW_NONE && !s->replace_client &&
              !s->tls.enabled && !s->allow_any && s->allow.n == 0 &&
              s->idle_timeout_s == 0 && s->on_device_loss == SERIAL_LOSS_CLOSE,
          "defaults");
    config_free(&cfg);
    CHECK(cfg.serial.ports == NULL && cfg.serial.n_ports == 0, "freed");
}

static void test_sample_section(void)
{
    struct agent_config cfg;
    char err[CONFIG_ERR_MAX];
    int rc = config_load(SAMPLE_SERIAL_CONFIG, &cfg, err, sizeof(err));

    CHECK(rc == 0, "conf/serial-keys.ini refused: %s", err);
    CHECK(rc != 0 || cfg.serial.n_ports >= 1, "no [serial.*] in the sample");
    config_free(&cfg);
}

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/redir-test-serial-config-%d.ini",
             (int)getpid());
    test_key_errors();
    test_section_errors();
    test_security();
    test_good();
    test_sample_section();
    unlink(path);
    return check_summary();
}
