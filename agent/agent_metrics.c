/* SPDX-License-Identifier: MIT */
/* The agent's Prometheus metrics ([agent] metrics_listen): devices by
 * decision, sessions by state, redirects, reconnects, failures, bytes, serial
 * ports and clients, rendered from the subsystems' snapshots. */
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "metrics_http.h"
#include "serial_bridge.h"
#include "strbuf.h"
#include "usb_redirector.h"

#define SESSION_STATES (SESSION_REJECTED + 1)

static void metric_head(struct strbuf *out, const char *name, const char *type,
                        const char *help)
{
    strbuf_printf(out, "# HELP redir_agent_%s %s\n# TYPE redir_agent_%s %s\n",
                  name, help, name, type);
}

static void metric_u64(struct strbuf *out, const char *name, const char *type,
                       const char *help, uint64_t v)
{
    metric_head(out, name, type, help);
    strbuf_printf(out, "redir_agent_%s %llu\n", name, (unsigned long long)v);
}

/* c: the totals of sessions that ended, added to the live ones' bytes. */
static void render_devices(const struct usb_status *st,
                           const struct usb_redirector_counters *c,
                           struct strbuf *out)
{
    unsigned redirect = 0, states[SESSION_STATES] = {0};
    uint64_t to = c->bytes_to_peer, from = c->bytes_from_peer;
    uint64_t wire = c->wire_bytes_to_peer;

    for (size_t i = 0; i < st->n_devices; i++) {
        const struct usb_device_status *d = &st->devices[i];
        redirect += d->redirect;
        if (!d->has_session)
            continue;
        states[d->session.state]++;
        to += d->session.bytes_to_peer;
        from += d->session.bytes_from_peer;
        wire += d->session.wire_bytes_to_peer;
    }
    metric_head(out, "usb_devices", "gauge",
                "USB devices present, by the policy's decision.");
    strbuf_printf(out,
                  "redir_agent_usb_devices{decision=\"redirect\"} %u\n"
                  "redir_agent_usb_devices{decision=\"local\"} %zu\n",
                  redirect, st->n_devices - redirect);
    metric_head(out, "usb_sessions", "gauge",
                "USB sessions (devices to be redirected), by state.");
    for (int s = 0; s < SESSION_STATES; s++)
        strbuf_printf(out, "redir_agent_usb_sessions{state=\"%s\"} %u\n",
                      usb_session_state_name((enum usb_session_state)s),
                      states[s]);
    metric_u64(out, "usb_slots", "gauge", "USB slots (peers) configured.",
               st->n_slots);
    metric_head(out, "usb_bytes_total", "counter",
                "usbredir bytes exchanged with peers (before compression).");
    strbuf_printf(out,
                  "redir_agent_usb_bytes_total{direction=\"to_peer\"} %llu\n"
                  "redir_agent_usb_bytes_total{direction=\"from_peer\"} "
                  "%llu\n",
                  (unsigned long long)to, (unsigned long long)from);
    metric_u64(out, "usb_wire_bytes_to_peer_total", "counter",
               "Bytes sent to peers on the wire (after lz4 framing).", wire);
}

static void render_usb(struct agent *a, struct strbuf *out)
{
    struct usb_status st;
    struct usb_redirector_counters c = {0};

    memset(&st, 0, sizeof(st));
    metric_u64(out, "usb_running", "gauge",
               "1 while USB redirection runs (peers set).", a->usb != NULL);
    if (a->usb) {
        usb_redirector_status(a->usb, &st);
        c = *usb_redirector_counters(a->usb);
    }
    render_devices(&st, &c, out);
    usb_status_free(&st);
    metric_u64(out, "usb_redirects_total", "counter",
               "Times a peer took a device.", c.redirected);
    metric_u64(out, "usb_reconnects_total", "counter",
               "Redirects of a device that had been redirected before.",
               c.reconnects);
    metric_u64(out, "usb_failures_total", "counter",
               "Attempts that failed with a new reason.", c.failures);
    metric_u64(out, "usb_rejected_total", "counter",
               "Devices a VM's usbredir filter refused.", c.rejected);
    metric_u64(out, "usb_disconnects_total", "counter",
               "Redirected devices whose peer went away.", c.disconnects);
    metric_u64(out, "usb_detached_total", "counter",
               "Devices detached over the control socket.", c.detached);
}

static void render_serial(struct agent *a, struct strbuf *out)
{
    struct serial_port_status ports[SERIAL_CONFIG_MAX_PORTS];
    size_t n = a->serial ? serial_bridge_status(a->serial, ports,
                                                SERIAL_CONFIG_MAX_PORTS)
                         : 0;
    unsigned open = 0, clients = 0;

    for (size_t i = 0; i < n && i < SERIAL_CONFIG_MAX_PORTS; i++) {
        open += ports[i].device_open;
        clients += ports[i].client != NULL;
    }
    metric_u64(out, "serial_ports", "gauge", "[serial.*] ports configured.", n);
    metric_u64(out, "serial_devices_open", "gauge",
               "Serial and printer devices open.", open);
    metric_u64(out, "serial_clients", "gauge",
               "Serial ports with a network client connected.", clients);
    metric_head(out, "serial_client_bytes", "gauge",
                "Bytes of each port's current client session.");
    for (size_t i = 0; i < n && i < SERIAL_CONFIG_MAX_PORTS; i++)
        strbuf_printf(out,
                      "redir_agent_serial_client_bytes{port=\"%s\","
                      "direction=\"from_client\"} %llu\n"
                      "redir_agent_serial_client_bytes{port=\"%s\","
                      "direction=\"to_client\"} %llu\n",
                      ports[i].name, (unsigned long long)ports[i].bytes_in,
                      ports[i].name, (unsigned long long)ports[i].bytes_out);
}

static void render(void *ctx, struct strbuf *out)
{
    struct agent *a = ctx;

    metric_u64(out, "uptime_seconds", "gauge",
               "Seconds since the agent "
               "started.",
               (uv_now(a->loop) - a->started_ms) / 1000);
    render_usb(a, out);
    render_serial(a, out);
}

int agent_metrics_start(struct agent *a)
{
    if (!a->cfg->metrics)
        return 0;
    a->metrics = metrics_http_start(a->loop, &a->cfg->metrics_addr, render, a);
    return a->metrics ? 0 : -1;
}

void agent_metrics_stop(struct agent *a)
{
    if (a->metrics)
        metrics_http_stop(a->metrics);
    a->metrics = NULL;
}
