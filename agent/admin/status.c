/* SPDX-License-Identifier: MIT */
/* What "redir-agent status" shows: devices, sessions, peers, counters, rates,
 * serial ports; as a table or as JSON. */
#include "status.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "strbuf.h"
#include "version.h"

#define PRODUCT_COLUMN 20

static const char *mode_name(enum usb_peer_mode mode)
{
    return mode == USB_PEER_CONNECT  ? "connect"
           : mode == USB_PEER_LISTEN ? "listen"
                                     : "off";
}

static const char *decision_text(const struct usb_device_status *d, char *buf,
                                 size_t len)
{
    if (!d->redirect)
        return "local";
    snprintf(buf, len, "redirect %s", usb_access_name(d->access));
    return buf;
}

/* 1536 -> "1.5K"; short enough for a table column. */
static const char *human_bytes(uint64_t n, char *buf, size_t len)
{
    static const char units[] = "BKMGT";
    double v = (double)n;
    int u = 0;

    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, u ? "%.1f%c" : "%.0f%c", v, units[u]);
    return buf;
}

static const char *human_duration(uint64_t ms, char *buf, size_t len)
{
    uint64_t s = ms / 1000;
    if (s < 3600)
        snprintf(buf, len, "%um%02us", (unsigned)(s / 60), (unsigned)(s % 60));
    else
        snprintf(buf, len, "%uh%02um", (unsigned)(s / 3600),
                 (unsigned)(s / 60 % 60));
    return buf;
}

static void json_string_or_null(struct strbuf *out, const char *s)
{
    if (s)
        strbuf_json_string(out, s);
    else
        strbuf_printf(out, "null");
}

static void render_session_json(const struct usb_session_status *s,
                                struct strbuf *out)
{
    strbuf_printf(out, "{\"state\": ");
    strbuf_json_string(out, usb_session_state_name(s->state));
    strbuf_printf(out, ", \"slot\": ");
    if (s->slot)
        strbuf_printf(out, "%u", s->slot);
    else
        strbuf_printf(out, "null");
    strbuf_printf(out, ", \"transport\": \"%s\", \"wire_bytes_to_peer\": %llu",
                  s->transport, (unsigned long long)s->wire_bytes_to_peer);
    strbuf_printf(out, ", \"peer\": ");
    json_string_or_null(out, s->peer);
    strbuf_printf(
        out,
        ", \"redirected_for_s\": %llu, \"bytes_to_peer\": %llu, "
        "\"bytes_from_peer\": %llu, \"packets_to_peer\": %llu, "
        "\"packets_from_peer\": %llu, \"rate_to_peer_bytes_per_s\": %llu, "
        "\"rate_from_peer_bytes_per_s\": %llu}",
        (unsigned long long)(s->redirected_for_ms / 1000),
        (unsigned long long)s->bytes_to_peer,
        (unsigned long long)s->bytes_from_peer,
        (unsigned long long)s->packets_to_peer,
        (unsigned long long)s->packets_from_peer,
        (unsigned long long)s->rate_to_peer,
        (unsigned long long)s->rate_from_peer);
}

static void render_device_json(const struct usb_device_status *d,
                               struct strbuf *out)
{
    char buf[32];

    strbuf_printf(out, "{\"port\": ");
    strbuf_json_string(out, d->port);
    strbuf_printf(out, ", \"vid\": \"%04x\", \"pid\": \"%04x\", \"product\": ",
                  d->vid, d->pid);
    strbuf_json_string(out, d->product);
    strbuf_printf(out, ", \"serial\": ");
    strbuf_json_string(out, d->serial);
    strbuf_printf(out, ", \"decision\": ");
    strbuf_json_string(out, decision_text(d, buf, sizeof(buf)));
    strbuf_printf(out, ", \"reason\": ");
    strbuf_json_string(out, d->reason);
    strbuf_printf(out, ", \"session\": ");
    if (d->has_session)
        render_session_json(&d->session, out);
    else
        strbuf_printf(out, "null");
    strbuf_printf(out, "}");
}

static void render_serial_json(const struct serial_port_status *p,
                               struct strbuf *out)
{
    strbuf_printf(out, "{\"name\": ");
    strbuf_json_string(out, p->name);
    strbuf_printf(out, ", \"device\": ");
    strbuf_json_string(out, p->device);
    strbuf_printf(out,
                  ", \"kind\": \"%s\", \"mode\": \"%s\", "
                  "\"device_open\": %s, \"line\": ",
                  p->kind, p->mode, p->device_open ? "true" : "false");
    strbuf_json_string(out, p->line);
    strbuf_printf(out, ", \"dtr\": %s, \"rts\": %s, \"client\": ",
                  p->dtr ? "true" : "false", p->rts ? "true" : "false");
    json_string_or_null(out, p->client);
    strbuf_printf(
        out, ", \"bytes_from_client\": %llu, \"bytes_to_client\": %llu}",
        (unsigned long long)p->bytes_in, (unsigned long long)p->bytes_out);
}

static void render_json(const struct agent_status *st, struct strbuf *out)
{
    const struct usb_status *u = &st->usb;

    strbuf_printf(out,
                  "{\"version\": \"%s\", \"pid\": %d, \"uptime_s\": %llu, "
                  "\"config\": ",
                  REDIR_VERSION, (int)getpid(),
                  (unsigned long long)st->uptime_ms / 1000);
    strbuf_json_string(out, st->config_path);
    strbuf_printf(out, ", \"usb\": {\"mode\": \"%s\", \"slots\": [",
                  mode_name(st->usb_running ? u->mode : USB_PEER_NONE));
    for (size_t i = 0; st->usb_running && i < u->n_slots; i++) {
        strbuf_printf(out, "%s{\"slot\": %u, \"endpoint\": ", i ? ", " : "",
                      u->slots[i].index);
        strbuf_json_string(out, u->slots[i].endpoint);
        strbuf_printf(out, ", \"busy\": %s}",
                      u->slots[i].busy ? "true" : "false");
    }
    strbuf_printf(out, "], \"devices\": [");
    for (size_t i = 0; st->usb_running && i < u->n_devices; i++) {
        render_device_json(&u->devices[i], out);
        if (i + 1 < u->n_devices)
            strbuf_printf(out, ", ");
    }
    strbuf_printf(out, "]}, \"serial\": [");
    for (size_t i = 0; i < st->n_serial; i++) {
        render_serial_json(&st->serial[i], out);
        if (i + 1 < st->n_serial)
            strbuf_printf(out, ", ");
    }
    strbuf_printf(out, "]}\n");
}

static void render_table_row(const struct usb_device_status *d,
                             struct strbuf *out)
{
    const struct usb_session_status *s = &d->session;
    char vidpid[10], dec[16], slot[12], out_b[16], in_b[16], out_r[16],
        in_r[16], up[16];

    snprintf(vidpid, sizeof(vidpid), "%04x:%04x", d->vid, d->pid);
    strbuf_printf(out, "%-8s %-9s %-*.*s %-11s ", d->port, vidpid,
                  PRODUCT_COLUMN, PRODUCT_COLUMN, d->product,
                  decision_text(d, dec, sizeof(dec)));
    if (!d->has_session) {
        strbuf_printf(out, "%-16s -\n", "-");
    } else {
        strbuf_printf(
            out, "%-16s %-5s %-21s %-7s %6s/%-6s %6s/%-6s %llu/%llu\n",
            usb_session_state_name(s->state),
            s->slot ? (snprintf(slot, sizeof(slot), "%u", s->slot), slot) : "-",
            s->peer ? s->peer : "-",
            s->redirected_for_ms
                ? human_duration(s->redirected_for_ms, up, sizeof(up))
                : "-",
            human_bytes(s->bytes_to_peer, out_b, sizeof(out_b)),
            human_bytes(s->bytes_from_peer, in_b, sizeof(in_b)),
            human_bytes(s->rate_to_peer, out_r, sizeof(out_r)),
            human_bytes(s->rate_from_peer, in_r, sizeof(in_r)),
            (unsigned long long)s->packets_to_peer,
            (unsigned long long)s->packets_from_peer);
    }
    strbuf_printf(out, "         why: %s\n", d->reason);
}

static void render_serial_table(const struct agent_status *st,
                                struct strbuf *out)
{
    char in_b[16], out_b[16];

    if (!st->n_serial)
        return;
    strbuf_printf(out, "\n%-12s %-24s %-8s %-18s %-21s %s\n", "SERIAL",
                  "DEVICE", "MODE", "LINE", "CLIENT", "BYTES IN/OUT");
    for (size_t i = 0; i < st->n_serial; i++) {
        const struct serial_port_status *p = &st->serial[i];
        strbuf_printf(out, "%-12s %-24s %-8s %-18s %-21s %s/%s\n", p->name,
                      p->device, p->mode,
                      p->device_open ? p->line : "(missing)",
                      p->client ? p->client : "-",
                      human_bytes(p->bytes_in, in_b, sizeof(in_b)),
                      human_bytes(p->bytes_out, out_b, sizeof(out_b)));
    }
}

static void render_table(const struct agent_status *st, struct strbuf *out)
{
    const struct usb_status *u = &st->usb;
    char up[16];

    strbuf_printf(out, "redir-agent %s, pid %d, up %s, config %s\n",
                  REDIR_VERSION, (int)getpid(),
                  human_duration(st->uptime_ms, up, sizeof(up)),
                  st->config_path);
    if (st->usb_running && u->mode != USB_PEER_NONE)
        strbuf_printf(out, "USB: %s mode", mode_name(u->mode));
    else
        strbuf_printf(out, "USB: off");
    for (size_t i = 0; st->usb_running && i < u->n_slots; i++)
        strbuf_printf(out, "%s slot %u %s (%s)", i ? "," : ";",
                      u->slots[i].index, u->slots[i].endpoint,
                      u->slots[i].busy ? "busy" : "free");
    strbuf_printf(out,
                  "\n\n%-8s %-9s %-*s %-11s %-16s %-5s %-21s %-7s "
                  "%-13s %-13s %s\n",
                  "PORT", "VID:PID", PRODUCT_COLUMN, "PRODUCT", "DECISION",
                  "STATE", "SLOT", "PEER", "UP", "BYTES OUT/IN", "RATE OUT/IN",
                  "PACKETS OUT/IN");
    for (size_t i = 0; st->usb_running && i < u->n_devices; i++)
        render_table_row(&u->devices[i], out);
    render_serial_table(st, out);
}

void status_render(const struct agent_status *st, bool json, struct strbuf *out)
{
    if (json)
        render_json(st, out);
    else
        render_table(st, out);
}
