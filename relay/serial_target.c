/* SPDX-License-Identifier: MIT */
/* A serial target: the tty QEMU opens with -chardev serial,path=... (a
 * CUSE device or a pty, see serial_tty_backend.h), and an RFC 2217 client
 * toward the agent that carries the guest's data, line settings, modem lines
 * and BREAK over the session, through an in-process connection pair to
 * the session's pump. */
#include "serial_target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net_conn.h"
#include "rfc2217.h"
#include "serial_line.h"
#include "serial_target_port.h"
#include "serial_tty_backend.h"
#include "telnet.h"

/* The guest's output is escaped in chunks of this much (IACs doubled). */
#define ESCAPE_CHUNK 16384
/* Toward the agent: the guest is not read while this much is unsent (a
 * slow link holds the guest's UART, as a real line would). */
#define TO_AGENT_MAX (256 * 1024)
/* Toward the guest: one read of the agent's connection must always fit. */
#define TO_TTY_SIZE (2 * NET_CONN_READ_BUF)
/* An RFC 2217 request: IAC SB 44 cmd value(<= 4, IACs doubled) IAC SE. */
#define REQUEST_MAX 16
/* When the relay restarted and took its tty back (a pty in systemd's fd
 * store), the guest's output waits this long for the first agent before
 * it counts as stale and is dropped: agents redial within their backoff,
 * and the guest may have written while no relay ran. */
#define START_GRACE_MS 5000

struct serial_target {
    uv_loop_t *loop;
    char name[RELAY_TARGET_MAX + 1]; /* a reload may free the config */
    char path[ENDPOINT_STR_MAX];
    const struct serial_tty_backend *be;
    struct serial_tty *tty;
    struct net_conn *conn; /* our end of the session's chardev, or NULL */
    struct telnet_decoder dec;
    struct telnet_options opts;
    struct serial_line line;         /* what the agent was last told */
    bool told;                       /* line is valid for this session */
    struct serial_target_port *port; /* its state, for status and logs */
    uv_timer_t grace;                /* START_GRACE_MS after the start */
    bool in_grace;
    uint8_t to_tty[TO_TTY_SIZE];
    size_t head, tail; /* [head, tail): for the guest, not written yet */
};

static void target_update(struct serial_target *st);

const char *serial_target_path(const struct serial_target *st)
{
    return st->path;
}

void serial_target_status(const struct serial_target *st,
                          struct serial_target_status *out)
{
    out->attached = st->conn != NULL;
    st->be->line(st->tty, &out->line);
    out->framing_seen = st->be->sees & SERIAL_TTY_SEES_FRAMING;
    out->modem = serial_target_port_modem_lines(st->port);
    for (int k = 0; k < SERIAL_LINE_ERROR_KINDS; k++)
        out->line_errors[k] = serial_target_port_errors(st->port, k);
}

/* ---- toward the agent: RFC 2217 requests ---- */

static void send_request(struct serial_target *st, uint8_t cmd,
                         const uint8_t *value, size_t len)
{
    uint8_t payload[1 + 4], out[REQUEST_MAX];

    payload[0] = cmd;
    memcpy(payload + 1, value, len);
    size_t n =
        telnet_subneg(out, sizeof(out), TELNET_OPT_COM_PORT, payload, 1 + len);
    if (n)
        net_conn_queue_copy(st->conn, out, n);
}

static void send_control(struct serial_target *st,
                         enum rfc2217_control_target what,
                         const struct serial_control *ctl)
{
    uint8_t v = rfc2217_control_value(what, &st->line, ctl);

    send_request(st, RFC2217_SET_CONTROL, &v, 1);
}

static void send_flow(struct serial_target *st)
{
    struct serial_control ctl = {0};

    send_control(st, RFC2217_CTL_FLOW_OUT, &ctl);
    send_control(st, RFC2217_CTL_FLOW_IN, &ctl);
}

static void send_value(struct serial_target *st, uint8_t cmd,
                       const struct serial_line *now)
{
    uint8_t v[4];
    size_t n = rfc2217_line_value(cmd, now, v);

    send_request(st, cmd, v, n);
}

/* The guest's settings, as far as the tty shows them: a pty hides data
 * bits and parity (the agent's port then keeps its own). */
static void send_line(struct serial_target *st, const struct serial_line *now)
{
    char text[SERIAL_LINE_TEXT_MAX];
    bool all = !st->told;
    bool framing = st->be->sees & SERIAL_TTY_SEES_FRAMING;

    if (all || now->baud != st->line.baud)
        send_value(st, RFC2217_SET_BAUDRATE, now);
    if (framing && (all || now->data_bits != st->line.data_bits))
        send_value(st, RFC2217_SET_DATASIZE, now);
    if (framing && (all || now->parity != st->line.parity))
        send_value(st, RFC2217_SET_PARITY, now);
    if (all || now->stop != st->line.stop)
        send_value(st, RFC2217_SET_STOPSIZE, now);
    bool flow = all || now->flow_in != st->line.flow_in ||
                now->flow_out != st->line.flow_out;
    st->line = *now;
    st->told = true;
    if (flow)
        send_flow(st);
    net_conn_flush(st->conn);
    log_info("target %s: the guest set %s (%s go to the agent)", st->name,
             serial_line_str(now, text, sizeof(text)),
             framing ? "all of it" : "speed, stop bits and flow control");
}

static bool line_changed(const struct serial_target *st,
                         const struct serial_line *now)
{
    if (!st->told)
        return true;
    if (st->be->sees & SERIAL_TTY_SEES_FRAMING)
        return !serial_line_equal(now, &st->line);
    return now->baud != st->line.baud || now->stop != st->line.stop ||
           now->flow_in != st->line.flow_in ||
           now->flow_out != st->line.flow_out;
}

/* ---- what the guest did (the tty's events) ---- */

static void on_guest_line(void *owner, const struct serial_line *now)
{
    struct serial_target *st = owner;

    if (st->conn && line_changed(st, now))
        send_line(st, now);
}

static void on_guest_control(void *owner, enum rfc2217_control_target what,
                             bool on)
{
    struct serial_target *st = owner;
    struct serial_control ctl = {.dtr = on, .rts = on, .brk = on};

    log_info("target %s: the guest set %s %s", st->name,
             what == RFC2217_CTL_DTR   ? "DTR"
             : what == RFC2217_CTL_RTS ? "RTS"
                                       : "BREAK",
             on ? "on" : "off");
    if (!st->conn)
        return;
    send_control(st, what, &ctl);
    net_conn_flush(st->conn);
}

static void on_guest_purge(void *owner, uint8_t what)
{
    struct serial_target *st = owner;

    if (what & RFC2217_PURGE_RX) /* unread bytes from the agent's port */
        st->head = st->tail = 0;
    if (!st->conn)
        return;
    send_request(st, RFC2217_PURGE_DATA, &what, 1);
    net_conn_flush(st->conn);
}

/* With no agent the guest's output is dropped (stale later), so all of
 * it is taken; else only while the session is not backed up. */
static size_t on_guest_room(void *owner)
{
    struct serial_target *st = owner;
    size_t queued;

    if (!st->conn)
        return st->in_grace ? 0 : SIZE_MAX;
    queued = net_conn_queued(st->conn);
    return queued >= TO_AGENT_MAX ? 0 : TO_AGENT_MAX - queued;
}

static void on_guest_data(void *owner, const uint8_t *p, size_t n)
{
    struct serial_target *st = owner;

    if (!st->conn)
        return;
    while (n) { /* escaped in the buffer that is queued: one copy */
        size_t chunk = n < ESCAPE_CHUNK ? n : ESCAPE_CHUNK;
        uint8_t *out = malloc(2 * chunk);
        if (!out) {
            log_err("target %s: out of memory: the guest's output dropped",
                    st->name);
            break;
        }
        memcpy(out, p, chunk);
        size_t len = telnet_escape_inplace(out, chunk);
        net_conn_queue(st->conn, out, len, NULL, NULL);
        p += chunk;
        n -= chunk;
    }
    net_conn_flush(st->conn);
}

static void tty_flush(struct serial_target *st)
{
    if (st->head == st->tail)
        return;
    st->head +=
        st->be->write(st->tty, st->to_tty + st->head, st->tail - st->head);
    if (st->head == st->tail)
        st->head = st->tail = 0;
}

static void on_guest_writable(void *owner)
{
    struct serial_target *st = owner;

    tty_flush(st);
    target_update(st);
}

static const struct serial_tty_events tty_events = {
    .line = on_guest_line,
    .control = on_guest_control,
    .purge = on_guest_purge,
    .room = on_guest_room,
    .data = on_guest_data,
    .writable = on_guest_writable,
};

/* ---- the agent's data and answers ---- */

/* The agent's RFC 2217 answers and notifications: its port's state. */
static void agent_subneg(struct serial_target *st, const struct telnet_event *e)
{
    if (e->option != TELNET_OPT_COM_PORT || e->len < 2)
        return;
    if (e->data[0] == RFC2217_SERVER(RFC2217_NOTIFY_MODEMSTATE)) {
        int before = serial_target_port_modem_lines(st->port);

        serial_target_port_modem(st->port, e->data[1]);
        int lines = serial_target_port_modem_lines(st->port);
        if (lines != before)
            st->be->inputs(st->tty, (uint8_t)lines);
    } else if (e->data[0] == RFC2217_SERVER(RFC2217_NOTIFY_LINESTATE)) {
        serial_target_port_linestate(st->port, e->data[1]);
    }
}

static void agent_event(struct serial_target *st, const struct telnet_event *e)
{
    uint8_t reply[3];

    if (e->kind == TELNET_EV_NEGOTIATE &&
        telnet_negotiate(&st->opts, e->verb, e->option, reply))
        net_conn_queue_copy(st->conn, reply, sizeof(reply));
    else if (e->kind == TELNET_EV_SUBNEG)
        agent_subneg(st, e);
}

static void on_agent_data(void *owner, struct net_conn *c, const uint8_t *data,
                          size_t len)
{
    struct serial_target *st = owner;
    (void)c;

    if (TO_TTY_SIZE - st->tail < len) { /* update_read keeps room for one */
        memmove(st->to_tty, st->to_tty + st->head, st->tail - st->head);
        st->tail -= st->head;
        st->head = 0;
    }
    while (len) {
        struct telnet_event e;
        size_t out;
        size_t used =
            telnet_decode(&st->dec, data, len, st->to_tty + st->tail, &out, &e);
        st->tail += out;
        data += used;
        len -= used;
        if (e.kind != TELNET_EV_NONE)
            agent_event(st, &e);
    }
    net_conn_flush(st->conn);
    tty_flush(st);
    target_update(st);
}

static void detach(struct serial_target *st)
{
    if (!st->conn)
        return;
    net_conn_close(st->conn, false);
    st->conn = NULL;
    /* to_tty keeps what the port sent before the end: the guest still
     * reads it, before whatever a next session brings */
    /* no port behind the tty now: the guest's TIOCMGET reads its modem
     * inputs (CTS, DSR, CD, RI) off, as with a cable pulled, not the last
     * agent's lines */
    if (serial_target_port_modem_lines(st->port) > 0)
        st->be->inputs(st->tty, 0);
    serial_target_port_forget(st->port);
    target_update(st);
}

static void on_agent_gone(void *owner, struct net_conn *c, int status)
{
    struct serial_target *st = owner;
    (void)c;
    log_debug("target %s: session ended (%s)", st->name,
              status == UV_EOF ? "closed" : uv_strerror(status));
    detach(st);
}

static void on_agent_drained(void *owner, struct net_conn *c)
{
    (void)c;
    target_update(owner);
}

static const struct net_conn_ops agent_side_ops = {
    .on_data = on_agent_data,
    .on_gone = on_agent_gone,
    .on_drained = on_agent_drained,
};

/* The tty may hand out the guest's output again (room grew); the agent's
 * side is read while the guest's side has room for a whole read. */
static void target_update(struct serial_target *st)
{
    st->be->resume(st->tty);
    if (!st->conn)
        return;
    if (TO_TTY_SIZE - (st->tail - st->head) >= NET_CONN_READ_BUF)
        net_conn_read_start(st->conn);
    else
        net_conn_read_stop(st->conn);
}

/* ---- sessions ---- */

/* The guest's whole state for a new session: its line settings and, when
 * the tty shows them, DTR and RTS (a new agent connection or a replugged
 * port starts from them). */
static void send_state(struct serial_target *st)
{
    struct serial_line now;
    int outputs = st->be->outputs(st->tty);

    /* the port's line errors too (RFC 2217's default mask is none): for
     * the log and the metrics; the agent polls its port for modem lines
     * already, the same poll serves these */
    uint8_t errors = RFC2217_LINE_ERRORS;

    st->told = false;
    send_request(st, RFC2217_SET_LINESTATE_MASK, &errors, 1);
    st->be->line(st->tty, &now);
    send_line(st, &now);
    if (outputs < 0)
        return;
    struct serial_control ctl = {.dtr = outputs & SERIAL_TTY_DTR,
                                 .rts = outputs & SERIAL_TTY_RTS};
    send_control(st, RFC2217_CTL_DTR, &ctl);
    send_control(st, RFC2217_CTL_RTS, &ctl);
}

static void offer_options(struct serial_target *st)
{
    uint8_t out[3];

    telnet_decoder_init(&st->dec);
    st->opts = (struct telnet_options){
        .us_allowed = TELNET_OPTION_BIT(TELNET_OPT_BINARY) |
                      TELNET_OPTION_BIT(TELNET_OPT_SGA) |
                      TELNET_OPTION_BIT(TELNET_OPT_COM_PORT),
        .him_allowed = TELNET_OPTION_BIT(TELNET_OPT_BINARY) |
                       TELNET_OPTION_BIT(TELNET_OPT_SGA),
    };
    /* the agent's serial bridge is the access server, we its client */
    if (telnet_offer(&st->opts, TELNET_WILL, TELNET_OPT_COM_PORT, out))
        net_conn_queue_copy(st->conn, out, 3);
    if (telnet_offer(&st->opts, TELNET_WILL, TELNET_OPT_BINARY, out))
        net_conn_queue_copy(st->conn, out, 3);
    if (telnet_offer(&st->opts, TELNET_DO, TELNET_OPT_BINARY, out))
        net_conn_queue_copy(st->conn, out, 3);
}

struct net_conn *serial_target_attach(struct serial_target *st)
{
    struct net_conn *ends[2];

    detach(st); /* a session that ended without our noticing yet */
    if (net_conn_pair(st->loop, st->path, ends) < 0)
        return NULL;
    st->in_grace = false; /* the agent came: later gaps drop as usual */
    uv_timer_stop(&st->grace);
    st->conn = ends[1];
    net_conn_set_owner(st->conn, &agent_side_ops, st);
    net_conn_set_water(st->conn, TO_AGENT_MAX, TO_AGENT_MAX / 2);
    offer_options(st);
    send_state(st);
    net_conn_flush(st->conn);
    target_update(st);
    return ends[0];
}

/* ---- the tty ---- */

/* No agent came in time: what the guest writes from now on is stale. */
static void on_grace_over(uv_timer_t *t)
{
    struct serial_target *st = t->data;

    st->in_grace = false;
    target_update(st);
}

/* tty = auto: CUSE where /dev/cuse opens, else a pty (said once). */
static const struct serial_tty_backend *choose(enum relay_serial_tty tty)
{
    static bool said;

    if (tty == RELAY_SERIAL_TTY_CUSE)
        return &serial_tty_cuse;
    if (tty == RELAY_SERIAL_TTY_PTY)
        return &serial_tty_pty;
    if (serial_cuse_available())
        return &serial_tty_cuse;
    if (!said)
        log_notice("serial targets: /dev/cuse does not open (%s): their "
                   "ttys are ptys, which cannot show the guest's data bits, "
                   "parity, modem lines or BREAK (load cuse.ko for those)",
                   strerror(errno));
    said = true;
    return &serial_tty_pty;
}

struct serial_target *serial_target_open(uv_loop_t *loop,
                                         const struct relay_target_config *cfg)
{
    struct serial_target *st = calloc(1, sizeof(*st));

    if (!st) {
        log_err("target %s: out of memory", cfg->name);
        return NULL;
    }
    st->loop = loop;
    snprintf(st->name, sizeof(st->name), "%s", cfg->name);
    snprintf(st->path, sizeof(st->path), "%s", cfg->pty_path);
    st->be = choose(cfg->serial_tty);
    st->in_grace = true; /* before open: the tty asks for room at once */
    st->port = serial_target_port_new(loop, st->name);
    if (st->port)
        st->tty = st->be->open(loop, st->name, st->path, &tty_events, st);
    if (!st->tty) {
        if (!st->port)
            log_err("target %s: out of memory", st->name);
        serial_target_port_free(st->port);
        free(st);
        return NULL;
    }
    uv_timer_init(loop, &st->grace);
    st->grace.data = st;
    uv_unref((uv_handle_t *)&st->grace); /* no reason to keep the loop up */
    if (st->be->kept(st->tty))
        uv_timer_start(&st->grace, on_grace_over, START_GRACE_MS, 0);
    else
        on_grace_over(&st->grace); /* a new tty: nothing written before us */
    return st;
}

static void on_grace_closed(uv_handle_t *h) { free(h->data); }

void serial_target_close(struct serial_target *st)
{
    detach(st);
    st->be->close(st->tty);
    serial_target_port_free(st->port);
    uv_close((uv_handle_t *)&st->grace, on_grace_closed);
}
