/* SPDX-License-Identifier: MIT */
/* A serial target's tty: a pty whose slave QEMU opens with -chardev
 * serial,path=..., the guest's line settings read from it as QEMU applies
 * them, and an RFC 2217 client toward the agent that carries both. */
#include "serial_target.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net_conn.h"
#include "rfc2217.h"
#include "serial_line.h"
#include "serial_pty.h"
#include "telnet.h"

/* One read of the guest's output (plus the packet-mode status byte); its
 * telnet escaping may double it in place. */
#define PTY_READ_MAX 16384
/* Toward the agent: the guest is not read while this much is unsent (a
 * slow link holds the guest's UART, as a real line would). */
#define TO_AGENT_MAX (256 * 1024)
/* Toward the guest: one read of the agent's connection must always fit. */
#define TO_PTY_SIZE (2 * NET_CONN_READ_BUF)
/* An RFC 2217 request: IAC SB 44 cmd value(<= 4, IACs doubled) IAC SE. */
#define REQUEST_MAX 16

struct serial_target {
    uv_loop_t *loop;
    char name[RELAY_TARGET_MAX + 1]; /* a reload may free the config */
    char path[ENDPOINT_STR_MAX];
    int master, slave; /* slave kept open: QEMU closing it is no hang-up */
    uv_poll_t poll;
    int poll_events;
    struct net_conn *conn; /* our end of the session's chardev, or NULL */
    struct telnet_decoder dec;
    struct telnet_options opts;
    struct serial_line line;       /* what the agent was last told */
    bool told;                     /* line is valid for this session */
    bool unseen_logged;            /* "a pty hides data bits and parity" */
    uint8_t modemstate, linestate; /* the agent's port, last reported */
    uint8_t to_pty[TO_PTY_SIZE];
    size_t head, tail; /* [head, tail): for the guest, not written yet */
    uint8_t rbuf[2 * PTY_READ_MAX + 1];
};

static void target_update(struct serial_target *st);

const char *serial_target_path(const struct serial_target *st)
{
    return st->path;
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

static void send_flow(struct serial_target *st)
{
    struct serial_control ctl = {0};
    uint8_t v = rfc2217_control_value(RFC2217_CTL_FLOW_OUT, &st->line, &ctl);

    send_request(st, RFC2217_SET_CONTROL, &v, 1);
    v = rfc2217_control_value(RFC2217_CTL_FLOW_IN, &st->line, &ctl);
    send_request(st, RFC2217_SET_CONTROL, &v, 1);
}

/* The guest's settings as the pty shows them: its speed, stop bits and
 * flow control. A pty forces CS8 and clears PARENB, so data bits and
 * parity are never asked of the agent: its port keeps its own. */
static void send_line(struct serial_target *st, const struct serial_line *now)
{
    uint8_t v[4];
    char text[SERIAL_LINE_TEXT_MAX];
    bool all = !st->told;

    if (!st->conn)
        return;
    if (all || now->baud != st->line.baud) {
        size_t n = rfc2217_line_value(RFC2217_SET_BAUDRATE, now, v);
        send_request(st, RFC2217_SET_BAUDRATE, v, n);
    }
    if (all || now->stop != st->line.stop) {
        size_t n = rfc2217_line_value(RFC2217_SET_STOPSIZE, now, v);
        send_request(st, RFC2217_SET_STOPSIZE, v, n);
    }
    bool flow = all || now->flow_in != st->line.flow_in ||
                now->flow_out != st->line.flow_out;
    st->line = *now;
    st->told = true;
    if (flow)
        send_flow(st);
    net_conn_flush(st->conn);
    log_info("target %s: the guest set %s (speed, stop bits and flow "
             "control go to the agent)",
             st->name, serial_line_str(now, text, sizeof(text)));
}

/* TIOCPKT_IOCTL: QEMU (the guest's UART model) called tcsetattr. */
static void guest_changed_line(struct serial_target *st)
{
    struct serial_line now;

    if (serial_pty_line(st->master, &now) < 0)
        return;
    if (!st->unseen_logged) {
        log_notice("target %s: %s is a pty: the guest's speed, stop bits "
                   "and flow control reach the agent; its data bits, "
                   "parity, modem lines (DTR/RTS) and BREAK do not (the pty "
                   "driver forces 8 bits without parity and has no modem "
                   "lines): the agent's port keeps its configured framing",
                   st->name, st->path);
        st->unseen_logged = true;
    }
    if (st->told && now.baud == st->line.baud && now.stop == st->line.stop &&
        now.flow_in == st->line.flow_in && now.flow_out == st->line.flow_out)
        return;
    send_line(st, &now);
}

/* ---- the guest's output ---- */

static void pty_read(struct serial_target *st)
{
    ssize_t n = read(st->master, st->rbuf, PTY_READ_MAX + 1);

    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO)
            log_warn("target %s: reading the pty: %s", st->name,
                     strerror(errno));
        return;
    }
    if (st->rbuf[0] != TIOCPKT_DATA) { /* a status byte alone */
        if (st->rbuf[0] & TIOCPKT_IOCTL)
            guest_changed_line(st);
        return;
    }
    if (!st->conn || n == 1)
        return; /* no agent: what the guest says now is stale later */
    size_t len = telnet_escape_inplace(st->rbuf + 1, (size_t)n - 1);
    net_conn_queue_copy(st->conn, st->rbuf + 1, len);
    net_conn_flush(st->conn);
}

/* ---- the agent's data and answers ---- */

static void pty_write(struct serial_target *st)
{
    if (st->head == st->tail)
        return;
    ssize_t n = write(st->master, st->to_pty + st->head, st->tail - st->head);
    if (n > 0)
        st->head += (size_t)n;
    if (st->head == st->tail)
        st->head = st->tail = 0;
}

/* The agent's RFC 2217 answers and notifications: its port's state. */
static void agent_subneg(struct serial_target *st, const struct telnet_event *e)
{
    if (e->option != TELNET_OPT_COM_PORT || e->len < 2)
        return;
    if (e->data[0] == RFC2217_SERVER(RFC2217_NOTIFY_MODEMSTATE) &&
        e->data[1] != st->modemstate) {
        st->modemstate = e->data[1];
        log_debug("target %s: the agent's port: modem state 0x%02x", st->name,
                  st->modemstate);
    } else if (e->data[0] == RFC2217_SERVER(RFC2217_NOTIFY_LINESTATE) &&
               (e->data[1] & 0x1e) != (st->linestate & 0x1e)) {
        st->linestate = e->data[1];
        if (st->linestate & 0x1e) /* break, framing, parity, overrun */
            log_info("target %s: the agent's port reports line state 0x%02x",
                     st->name, st->linestate);
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

    if (TO_PTY_SIZE - st->tail < len) { /* update_read keeps room for one */
        memmove(st->to_pty, st->to_pty + st->head, st->tail - st->head);
        st->tail -= st->head;
        st->head = 0;
    }
    while (len) {
        struct telnet_event e;
        size_t out;
        size_t used =
            telnet_decode(&st->dec, data, len, st->to_pty + st->tail, &out, &e);
        st->tail += out;
        data += used;
        len -= used;
        if (e.kind != TELNET_EV_NONE)
            agent_event(st, &e);
    }
    net_conn_flush(st->conn);
    pty_write(st);
    target_update(st);
}

static void detach(struct serial_target *st)
{
    if (!st->conn)
        return;
    net_conn_close(st->conn, false);
    st->conn = NULL;
    st->head = st->tail = 0;
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

/* ---- watching the pty ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct serial_target *st = h->data;

    if (status < 0) {
        log_warn("target %s: the pty: %s", st->name, uv_strerror(status));
        return;
    }
    if (events & UV_WRITABLE)
        pty_write(st);
    if (events & UV_READABLE)
        pty_read(st);
    target_update(st);
}

/* Reads the guest unless the agent's side is backed up (a status byte
 * waits in the pty meanwhile: nothing is lost); writes while data waits;
 * reads the agent while the guest's side has room for a whole read. */
static void target_update(struct serial_target *st)
{
    bool backed_up = st->conn && net_conn_queued(st->conn) >= TO_AGENT_MAX;
    int events = (backed_up ? 0 : UV_READABLE) |
                 (st->head != st->tail ? UV_WRITABLE : 0);

    if (events != st->poll_events) {
        uv_poll_start(&st->poll, events, on_poll);
        st->poll_events = events;
    }
    if (!st->conn)
        return;
    if (TO_PTY_SIZE - (st->tail - st->head) >= NET_CONN_READ_BUF)
        net_conn_read_start(st->conn);
    else
        net_conn_read_stop(st->conn);
}

/* ---- sessions ---- */

struct net_conn *serial_target_attach(struct serial_target *st)
{
    int sv[2];
    uint8_t out[3];

    detach(st); /* a session that ended without our noticing yet */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return NULL;
    struct net_conn *theirs = net_conn_adopt(st->loop, sv[0], st->path);
    st->conn = net_conn_adopt(st->loop, sv[1], st->path);
    if (!theirs || !st->conn) {
        if (theirs)
            net_conn_close(theirs, false);
        if (st->conn)
            net_conn_close(st->conn, false);
        st->conn = NULL;
        return NULL;
    }
    net_conn_set_owner(st->conn, &agent_side_ops, st);
    net_conn_set_water(st->conn, TO_AGENT_MAX, TO_AGENT_MAX / 2);
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
    /* the last settings the guest chose, again: a new agent connection
     * or a replugged port starts from them */
    st->told = false;
    guest_changed_line(st);
    net_conn_flush(st->conn);
    target_update(st);
    return theirs;
}

/* ---- the pty ---- */

/* path -> the slave, replaced atomically (QEMU may be opening it). */
static int pty_link(struct serial_target *st, const char *slave_name)
{
    char tmp[sizeof(st->path) + 8];

    snprintf(tmp, sizeof(tmp), "%s.new", st->path);
    unlink(tmp);
    if (symlink(slave_name, tmp) < 0 || rename(tmp, st->path) < 0) {
        int err = errno;
        unlink(tmp);
        return -err;
    }
    return 0;
}

static int pty_open(struct serial_target *st)
{
    char name[64];
    int rc = serial_pty_open(&st->master, &st->slave, name, sizeof(name));

    if (rc == 0)
        rc = pty_link(st, name);
    if (rc == 0)
        rc = uv_poll_init(st->loop, &st->poll, st->master);
    if (rc < 0)
        return rc;
    log_info("target %s: serial pty %s linked at %s", st->name, name, st->path);
    return 0;
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
    st->master = st->slave = -1;
    snprintf(st->path, sizeof(st->path), "%s", cfg->pty_path);
    int rc = pty_open(st);
    if (rc < 0) {
        log_err("target %s: cannot create the pty at %s: %s", cfg->name,
                st->path, strerror(-rc));
        if (st->master >= 0)
            close(st->master);
        if (st->slave >= 0)
            close(st->slave);
        free(st);
        return NULL;
    }
    st->poll.data = st;
    target_update(st);
    return st;
}

static void on_poll_closed(uv_handle_t *h)
{
    struct serial_target *st = h->data;

    close(st->master);
    close(st->slave);
    free(st);
}

void serial_target_close(struct serial_target *st)
{
    detach(st);
    unlink(st->path);
    uv_close((uv_handle_t *)&st->poll, on_poll_closed);
}
