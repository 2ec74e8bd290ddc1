/* What "redir-agent status" shows: devices, sessions, peers, counters, rates.
 */
#include "status.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "peer_conn.h"
#include "strbuf.h"
#include "usb_session.h"
#include "version.h"

#define PRODUCT_COLUMN 20

static const char *mode_name(enum usb_peer_mode mode)
{
    return mode == USB_PEER_CONNECT  ? "connect"
           : mode == USB_PEER_LISTEN ? "listen"
                                     : "off";
}

static const char *decision_text(const struct usb_device_entry *e, char *buf,
                                 size_t len)
{
    if (!e->decision.redirect)
        return "local";
    snprintf(buf, len, "redirect %s", usb_access_name(e->decision.access));
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

static void render_session_json(const struct agent *a,
                                const struct usb_session *s, struct strbuf *out)
{
    uint64_t now = uv_now(a->loop);

    strbuf_printf(out, "{\"state\": ");
    strbuf_json_string(out, usb_session_state_name(s->state));
    strbuf_printf(out, ", \"slot\": ");
    if (s->slot)
        strbuf_printf(out, "%u", s->slot->index);
    else
        strbuf_printf(out, "null");
    strbuf_printf(out, ", \"transport\": \"%s\", \"wire_bytes_to_peer\": %llu",
                  !s->relay     ? "raw"
                  : s->link.lz4 ? "relay-lz4"
                                : "relay-raw",
                  (unsigned long long)s->wire_bytes_to_peer);
    strbuf_printf(out, ", \"peer\": ");
    if (s->conn && s->state != SESSION_CONNECTING)
        strbuf_json_string(out, peer_conn_name(s->conn));
    else
        strbuf_printf(out, "null");
    strbuf_printf(
        out,
        ", \"redirected_for_s\": %llu, \"bytes_to_peer\": %llu, "
        "\"bytes_from_peer\": %llu, \"packets_to_peer\": %llu, "
        "\"packets_from_peer\": %llu, \"rate_to_peer_bytes_per_s\": %llu, "
        "\"rate_from_peer_bytes_per_s\": %llu}",
        (unsigned long long)(s->running_since_ms
                                 ? (now - s->running_since_ms) / 1000
                                 : 0),
        (unsigned long long)s->bytes_to_peer,
        (unsigned long long)s->bytes_from_peer,
        (unsigned long long)s->packets_to_peer,
        (unsigned long long)s->from_peer.packets,
        (unsigned long long)usb_rate_get(&s->rate_to_peer, now),
        (unsigned long long)usb_rate_get(&s->rate_from_peer, now));
}

static void render_device_json(const struct agent *a,
                               const struct usb_device_entry *e,
                               struct strbuf *out)
{
    char buf[32];

    strbuf_printf(out, "{\"port\": ");
    strbuf_json_string(out, e->port);
    strbuf_printf(out, ", \"vid\": \"%04x\", \"pid\": \"%04x\", \"product\": ",
                  e->info.vid, e->info.pid);
    strbuf_json_string(out, e->product);
    strbuf_printf(out, ", \"serial\": ");
    strbuf_json_string(out, e->serial);
    strbuf_printf(out, ", \"decision\": ");
    strbuf_json_string(out, decision_text(e, buf, sizeof(buf)));
    strbuf_printf(out, ", \"reason\": ");
    strbuf_json_string(out, e->decision.reason);
    strbuf_printf(out, ", \"session\": ");
    if (e->session)
        render_session_json(a, e->session, out);
    else
        strbuf_printf(out, "null");
    strbuf_printf(out, "}");
}

static void render_json(const struct agent *a, struct strbuf *out)
{
    const struct usb_redirector *r = &a->usb;

    strbuf_printf(out,
                  "{\"version\": \"%s\", \"pid\": %d, \"uptime_s\": %llu, "
                  "\"config\": ",
                  REDIR_VERSION, (int)getpid(),
                  (unsigned long long)(uv_now(a->loop) - a->started_ms) / 1000);
    strbuf_json_string(out, a->cfg.path);
    strbuf_printf(out, ", \"usb\": {\"mode\": \"%s\", \"slots\": [",
                  mode_name(a->cfg.usb_mode));
    for (size_t i = 0; a->usb_running && i < r->nslots; i++) {
        const struct usb_slot *slot = &r->slots[i];
        strbuf_printf(out, "%s{\"slot\": %u, \"endpoint\": ", i ? ", " : "",
                      slot->index);
        strbuf_json_string(out, slot->name);
        strbuf_printf(out, ", \"busy\": %s}", slot->session ? "true" : "false");
    }
    strbuf_printf(out, "], \"devices\": [");
    for (const struct usb_device_entry *e = a->usb_running ? r->devices : NULL;
         e; e = e->next) {
        render_device_json(a, e, out);
        if (e->next)
            strbuf_printf(out, ", ");
    }
    strbuf_printf(out, "]}}\n");
}

static void render_table_row(const struct agent *a,
                             const struct usb_device_entry *e,
                             struct strbuf *out)
{
    const struct usb_session *s = e->session;
    uint64_t now = uv_now(a->loop);
    char vidpid[10], dec[16], slot[8], out_b[16], in_b[16], out_r[16], in_r[16],
        up[16];

    snprintf(vidpid, sizeof(vidpid), "%04x:%04x", e->info.vid, e->info.pid);
    strbuf_printf(out, "%-8s %-9s %-*.*s %-11s ", e->port, vidpid,
                  PRODUCT_COLUMN, PRODUCT_COLUMN, e->product,
                  decision_text(e, dec, sizeof(dec)));
    if (!s) {
        strbuf_printf(out, "%-16s -\n", "-");
    } else {
        strbuf_printf(
            out, "%-16s %-5s %-21s %-7s %6s/%-6s %6s/%-6s %llu/%llu\n",
            usb_session_state_name(s->state),
            s->slot ? (snprintf(slot, sizeof(slot), "%u", s->slot->index), slot)
                    : "-",
            s->conn && s->state != SESSION_CONNECTING ? peer_conn_name(s->conn)
                                                      : "-",
            s->running_since_ms
                ? human_duration(now - s->running_since_ms, up, sizeof(up))
                : "-",
            human_bytes(s->bytes_to_peer, out_b, sizeof(out_b)),
            human_bytes(s->bytes_from_peer, in_b, sizeof(in_b)),
            human_bytes(usb_rate_get(&s->rate_to_peer, now), out_r,
                        sizeof(out_r)),
            human_bytes(usb_rate_get(&s->rate_from_peer, now), in_r,
                        sizeof(in_r)),
            (unsigned long long)s->packets_to_peer,
            (unsigned long long)s->from_peer.packets);
    }
    strbuf_printf(out, "         why: %s\n", e->decision.reason);
}

static void render_table(const struct agent *a, struct strbuf *out)
{
    const struct usb_redirector *r = &a->usb;
    char up[16];

    strbuf_printf(
        out, "redir-agent %s, pid %d, up %s, config %s\n", REDIR_VERSION,
        (int)getpid(),
        human_duration(uv_now(a->loop) - a->started_ms, up, sizeof(up)),
        a->cfg.path);
    strbuf_printf(out, "USB: %s mode", mode_name(a->cfg.usb_mode));
    for (size_t i = 0; a->usb_running && i < r->nslots; i++)
        strbuf_printf(out, "%s slot %u %s (%s)", i ? "," : ";",
                      r->slots[i].index, r->slots[i].name,
                      r->slots[i].session ? "busy" : "free");
    strbuf_printf(out,
                  "\n\n%-8s %-9s %-*s %-11s %-16s %-5s %-21s %-7s "
                  "%-13s %-13s %s\n",
                  "PORT", "VID:PID", PRODUCT_COLUMN, "PRODUCT", "DECISION",
                  "STATE", "SLOT", "PEER", "UP", "BYTES OUT/IN", "RATE OUT/IN",
                  "PACKETS OUT/IN");
    for (const struct usb_device_entry *e = a->usb_running ? r->devices : NULL;
         e; e = e->next)
        render_table_row(a, e, out);
}

void status_render(const struct agent *a, bool json, struct strbuf *out)
{
    if (json)
        render_json(a, out);
    else
        render_table(a, out);
}
