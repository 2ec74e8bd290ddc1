/* SPDX-License-Identifier: MIT */
/* The relay's Prometheus metrics ([relay] metrics_listen): sessions by
 * state, handshakes accepted and refused by reason, bytes raw and on the
 * wire each way, the compression ratio, backpressure pauses, QEMU connect
 * failures; per serial target, its agent, the guest's line settings and
 * the agent's port's modem lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics_http.h"
#include "relay.h"
#include "relay_proto.h"
#include "relay_pump.h"
#include "relay_target.h"
#include "rfc2217.h"
#include "serial_target.h"
#include "strbuf.h"

static void head(struct strbuf *out, const char *name, const char *type,
                 const char *help)
{
    strbuf_printf(out, "# HELP redir_relay_%s %s\n# TYPE redir_relay_%s %s\n",
                  name, help, name, type);
}

static void one(struct strbuf *out, const char *name, const char *type,
                const char *help, uint64_t v)
{
    head(out, name, type, help);
    strbuf_printf(out, "redir_relay_%s %llu\n", name, (unsigned long long)v);
}

/* Live sessions by state, and their counters added to the ended ones'. */
static void render_sessions(struct relay *r, struct relay_stats *t,
                            struct strbuf *out)
{
    static const char *const states[] = {"handshake", "attaching", "pumping"};
    unsigned n[3] = {0};

    for (struct list_node *i = r->sessions.next; i != &r->sessions;
         i = i->next) {
        const struct relay_session *s = relay_session_from_node(i);
        const char *st = relay_session_state_name(s);
        for (int k = 0; k < 3; k++)
            n[k] += strcmp(st, states[k]) == 0;
        const struct relay_pump_counters *c = relay_session_counters(s);
        if (!c)
            continue;
        t->from_agent += c->from_agent;
        t->to_chardev += c->to_chardev;
        t->from_chardev += c->from_chardev;
        t->to_agent += c->to_agent;
        t->agent_pauses += c->agent_pauses;
        t->chardev_pauses += c->chardev_pauses;
    }
    head(out, "sessions", "gauge", "Agent connections, by state.");
    for (int k = 0; k < 3; k++)
        strbuf_printf(out, "redir_relay_sessions{state=\"%s\"} %u\n", states[k],
                      n[k]);
}

static void render_refusals(const struct relay_stats *t, struct strbuf *out)
{
    static const char *const reasons[RELAY_STATS_STATUSES] = {
        [RELAY_REFUSED_AUTH] = "auth",
        [RELAY_REFUSED_TARGET] = "target",
        [RELAY_REFUSED_VERSION] = "version",
        [RELAY_REFUSED_MALFORMED] = "malformed",
        [RELAY_REFUSED_BUSY] = "busy",
        [RELAY_REFUSED_UNAVAILABLE] = "unavailable",
    };

    one(out, "handshakes_accepted_total", "counter",
        "Agent handshakes accepted (the pump started).", t->accepted);
    head(out, "handshakes_refused_total", "counter",
         "Agent handshakes refused, by reason.");
    for (int k = 0; k < RELAY_STATS_STATUSES; k++)
        if (reasons[k])
            strbuf_printf(out,
                          "redir_relay_handshakes_refused_total{reason=\"%s\"}"
                          " %llu\n",
                          reasons[k], (unsigned long long)t->refused[k]);
}

/* The i-th target's serial side, NULL for a chardev target. */
static const struct serial_target *serial_at(const struct relay *r, size_t i)
{
    return r->targets && r->targets[i] ? relay_target_serial(r->targets[i])
                                       : NULL;
}

static void render_line(const char *name, const struct serial_target_status *s,
                        struct strbuf *out)
{
    const struct serial_line *l = &s->line;
    char bits[4];

    snprintf(bits, sizeof(bits), "%u", l->data_bits);
    strbuf_printf(out,
                  "redir_relay_serial_line_info{target=\"%s\",speed=\"%u\","
                  "data_bits=\"%s\",parity=\"%s\",stop_bits=\"%s\"} 1\n",
                  name, l->baud, s->framing_seen ? bits : "unknown",
                  s->framing_seen ? serial_parity_name(l->parity) : "unknown",
                  serial_stop_name(l->stop));
}

static void render_modem(const char *name, int lines, struct strbuf *out)
{
    static const struct {
        const char *name;
        int bit;
    } line[] = {{"cts", RFC2217_MODEM_CTS},
                {"dsr", RFC2217_MODEM_DSR},
                {"ri", RFC2217_MODEM_RI},
                {"cd", RFC2217_MODEM_CD}};

    for (size_t k = 0; k < sizeof(line) / sizeof(line[0]); k++)
        strbuf_printf(out,
                      "redir_relay_serial_port_modem_line{target=\"%s\","
                      "line=\"%s\"} %d\n",
                      name, line[k].name, !!(lines & line[k].bit));
}

/* The families of per-serial-target series. */
static void render_errors(const char *name, const uint64_t *n,
                          struct strbuf *out)
{
    static const char *const kind[] = {"break", "framing", "parity", "overrun"};

    for (size_t k = 0; k < sizeof(kind) / sizeof(kind[0]); k++)
        strbuf_printf(out,
                      "redir_relay_serial_port_line_errors_total{target="
                      "\"%s\",kind=\"%s\"} %llu\n",
                      name, kind[k], (unsigned long long)n[k]);
}

enum serial_family {
    SERIAL_ATTACHED,
    SERIAL_LINE,
    SERIAL_MODEM,
    SERIAL_ERRORS,
    SERIAL_FAMILIES
};

/* A serial target's state, read once per scrape for all families (a pty
 * target's line is an ioctl). */
struct serial_row {
    const char *name;
    struct serial_target_status s;
};

/* One family's series, one or more per serial target (no family without
 * a series: none without serial targets, no modem lines unreported). */
static void render_serial_family(const struct serial_row *rows, size_t n,
                                 enum serial_family which, struct strbuf *out)
{
    static const char *const names[SERIAL_FAMILIES] = {
        "agent_attached", "line_info", "port_modem_line",
        "port_line_errors_total"};
    static const char *const type[SERIAL_FAMILIES] = {"gauge", "gauge", "gauge",
                                                      "counter"};
    static const char *const help[SERIAL_FAMILIES] = {
        "1 while an agent's session carries the serial target's port.",
        "The guest's line settings as the serial target's tty shows them "
        "(a pty hides data bits and parity: unknown).",
        "The agent's port's modem inputs as it last reported them (no "
        "series until it does in a session).",
        "Line errors (break, framing, parity, overrun) the agent's port "
        "reported since the relay started; one report may stand for "
        "several errors between two polls of the port."};
    bool headed = false;

    for (size_t i = 0; i < n; i++) {
        const struct serial_target_status s = rows[i].s;
        if (which == SERIAL_MODEM && s.modem < 0)
            continue;
        if (!headed)
            strbuf_printf(out,
                          "# HELP redir_relay_serial_%s %s\n"
                          "# TYPE redir_relay_serial_%s %s\n",
                          names[which], help[which], names[which], type[which]);
        headed = true;
        const char *name = rows[i].name;
        if (which == SERIAL_ATTACHED)
            strbuf_printf(out,
                          "redir_relay_serial_agent_attached{target=\"%s\"} "
                          "%d\n",
                          name, s.attached);
        else if (which == SERIAL_LINE)
            render_line(name, &s, out);
        else if (which == SERIAL_MODEM)
            render_modem(name, s.modem, out);
        else
            render_errors(name, s.line_errors, out);
    }
}

static void render_serial(struct relay *r, struct strbuf *out)
{
    size_t n = 0;
    struct serial_row *rows =
        calloc(r->cfg->n_targets ? r->cfg->n_targets : 1, sizeof(*rows));

    if (!rows)
        return; /* out of memory: the scrape goes without them */
    for (size_t i = 0; i < r->cfg->n_targets; i++) {
        const struct serial_target *st = serial_at(r, i);
        if (!st)
            continue;
        rows[n].name = relay_target_name(r->targets[i]);
        serial_target_status(st, &rows[n++].s);
    }
    for (int which = 0; which < SERIAL_FAMILIES; which++)
        render_serial_family(rows, n, (enum serial_family)which, out);
    free(rows);
}

static void render(void *ctx, struct strbuf *out)
{
    struct relay *r = ctx;
    struct relay_stats t = r->stats;

    render_sessions(r, &t, out);
    render_refusals(&t, out);
    head(out, "bytes_total", "counter",
         "Bytes through the relay: wire (agent side, maybe lz4) and raw "
         "usbredir (QEMU side), each way.");
    strbuf_printf(
        out,
        "redir_relay_bytes_total{side=\"agent\",direction=\"in\"} "
        "%llu\n"
        "redir_relay_bytes_total{side=\"agent\",direction=\"out\"} "
        "%llu\n"
        "redir_relay_bytes_total{side=\"qemu\",direction=\"in\"} "
        "%llu\n"
        "redir_relay_bytes_total{side=\"qemu\",direction=\"out\"} "
        "%llu\n",
        (unsigned long long)t.from_agent, (unsigned long long)t.to_agent,
        (unsigned long long)t.from_chardev, (unsigned long long)t.to_chardev);
    uint64_t raw = t.to_chardev + t.from_chardev;
    uint64_t wire = t.from_agent + t.to_agent;
    head(out, "compression_ratio", "gauge",
         "Raw usbredir bytes per wire byte, both ways, since start (1 "
         "without lz4 or traffic).");
    strbuf_printf(out, "redir_relay_compression_ratio %.4f\n",
                  wire ? (double)raw / (double)wire : 1.0);
    head(out, "backpressure_pauses_total", "counter",
         "Times reading one side stopped because the other did not drain.");
    strbuf_printf(out,
                  "redir_relay_backpressure_pauses_total{paused=\"agent\"} "
                  "%llu\n"
                  "redir_relay_backpressure_pauses_total{paused=\"qemu\"} "
                  "%llu\n",
                  (unsigned long long)t.agent_pauses,
                  (unsigned long long)t.chardev_pauses);
    one(out, "qemu_connect_failures_total", "counter",
        "Failed connections to QEMU chardevs.", t.qemu_connect_failures);
    render_serial(r, out);
}

int relay_metrics_start(struct relay *r)
{
    if (!r->cfg->metrics)
        return 0;
    r->metrics = metrics_http_start(r->loop, &r->cfg->metrics_addr, render, r);
    return r->metrics ? 0 : -1;
}

void relay_metrics_stop(struct relay *r)
{
    if (r->metrics)
        metrics_http_stop(r->metrics);
    r->metrics = NULL;
}
