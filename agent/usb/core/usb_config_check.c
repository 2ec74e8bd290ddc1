/* SPDX-License-Identifier: MIT */
/* The [usb] section read as a whole, once every key is in: the settings
 * that only make sense together (relay targets, lz4 and the secret; who
 * may connect to a listener; the reconnect bounds) and the filter. */
#include <sodium.h>
#include <usbredirfilter.h>

#include "config_util.h"
#include "relay_proto.h"
#include "relay_secret.h"
#include "usb_config.h"

/* The secret is re-read at each connection (so it can be rotated), but a
 * missing or unsafe file is a config error now, not a surprise when a
 * device is plugged in. */
static int check_secret(const struct usb_config *u,
                        const struct usb_config_lines *lines,
                        struct config_parse *p)
{
    uint8_t secret[RELAY_SECRET_MAX];
    size_t len;
    char why[RELAY_ERR_MAX];
    int rc = relay_secret_load(u->relay_secret_file, secret, &len, why);

    sodium_memzero(secret, sizeof(secret));
    if (rc < 0)
        config_error_at(p, lines->secret, "[usb] relay_secret_file: %s", why);
    return rc;
}

/* Relay targets, lz4 and the relay secret only make sense together. */
static int check_relay(const struct usb_config *u,
                       const struct usb_config_lines *lines,
                       struct config_parse *p)
{
    size_t relay = 0;

    for (size_t i = 0; i < u->nslots; i++)
        relay += u->slots[i].target[0] != '\0';
    if (relay && u->mode == USB_PEER_LISTEN) {
        config_error_at(p, lines->mode,
                        "[usb] listen: relay targets (HOST:PORT/TARGET) "
                        "need connect: agents dial the relay");
        return -1;
    }
    if (relay && relay != u->nslots) {
        config_error_at(p, lines->mode,
                        "[usb] connect: mix of relay targets "
                        "(HOST:PORT/TARGET) and QEMU chardevs (HOST:PORT); "
                        "use one kind");
        return -1;
    }
    if (relay && !u->relay_secret_file && !u->tls.enabled) {
        config_error_at(p, lines->mode,
                        "[usb] connect: relay targets need [usb] "
                        "relay_secret_file or tls = yes");
        return -1;
    }
    if (relay && u->relay_secret_file && check_secret(u, lines, p) < 0)
        return -1;
    if (u->transport == USB_TRANSPORT_LZ4 && !relay) {
        config_error_at(p, lines->transport,
                        "[usb] transport: lz4 needs redir-relay (connect = "
                        "HOST:PORT/TARGET); QEMU only speaks raw usbredir");
        return -1;
    }
    return 0;
}

/* A listener on an address others can reach must say whom it lets in:
 * usbredir from anyone is a device handed to anyone. */
static int check_listen(const struct usb_config *u,
                        const struct usb_config_lines *lines,
                        struct config_parse *p)
{
    char addr[HOSTPORT_HOST_MAX + 8];

    if (lines->allow && u->mode != USB_PEER_LISTEN) {
        config_error_at(p, lines->allow,
                        "[usb] allow: only for listen (who may connect)");
        return -1;
    }
    if (u->mode != USB_PEER_LISTEN || u->tls.enabled || lines->allow)
        return 0;
    for (size_t i = 0; i < u->nslots; i++) {
        if (cidr_host_is_loopback(u->slots[i].addr.host))
            continue;
        hostport_str(&u->slots[i].addr, addr, sizeof(addr));
        config_error_at(p, lines->mode,
                        "[usb] listen: %s takes a connection from anyone who "
                        "can reach this machine; set allow = the "
                        "hypervisors' addresses (or allow = any), or tls = "
                        "yes with certificates",
                        addr);
        return -1;
    }
    return 0;
}

int usb_config_finish(struct usb_config *u,
                      const struct usb_config_lines *lines,
                      struct config_parse *p)
{
    if (check_relay(u, lines, p) < 0 ||
        tls_config_finish(&u->tls, p, "usb", lines->mode) < 0 ||
        check_listen(u, lines, p) < 0)
        return -1;
    if (u->reconnect_min_ms > u->reconnect_max_ms) {
        config_error_at(p, lines->reconnect,
                        "[usb] reconnect_min_ms (%u) is larger than "
                        "reconnect_max_ms (%u)",
                        u->reconnect_min_ms, u->reconnect_max_ms);
        return -1;
    }
    if (u->filter_text && usbredirfilter_string_to_rules(
                              u->filter_text, ",", "|", &u->filter_rules,
                              &u->filter_count) != 0) {
        config_error(p, "[usb] filter: cannot be parsed");
        return -1;
    }
    return 0;
}
