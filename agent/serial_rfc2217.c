/* A client's RFC 2217 Com Port Control: its requests carried out on the
 * device and answered (clients wait for every answer), and modem/line
 * state notifications as its masks ask. */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "serial_port.h"
#include "serial_tty.h"
#include "version.h"

#define ANSWER_MAX (5 + 2 * (1 + SERIAL_SIGNATURE_MAX))

static void answer(struct serial_client *c, uint8_t cmd, const uint8_t *value,
                   size_t len)
{
    uint8_t bytes[ANSWER_MAX];
    size_t n = rfc2217_answer(bytes, sizeof(bytes), cmd, value, len);

    if (!n || !serial_net_queue_ctl(c, bytes, n))
        log_debug("%s: client %s: RFC 2217 answer %u dropped", c->port->label,
                  c->name, cmd);
}

static void answer_byte(struct serial_client *c, uint8_t cmd, uint8_t value)
{
    answer(c, cmd, &value, 1);
}

static uint8_t modemstate_now(const struct serial_port *p, uint8_t previous)
{
    int bits = p->fd >= 0 && p->modem_lines ? serial_tty_get_modem(p->fd) : 0;

    return rfc2217_modemstate(bits < 0 ? 0 : bits, previous);
}

/* Sends NOTIFY-MODEMSTATE when a line the client watches changed, or
 * always (forced: its poll, or the session's first report, without which
 * pyserial cannot read CTS/DSR/RI/CD at all). */
static void notify_modemstate(struct serial_client *c, bool forced)
{
    uint8_t now = modemstate_now(c->port, c->modemstate);
    uint8_t changed = (uint8_t)((now ^ c->modemstate) & 0xf0);

    if (forced || (changed & c->modemstate_mask))
        answer_byte(c, RFC2217_NOTIFY_MODEMSTATE, now & c->modemstate_mask);
    c->modemstate = now & 0xf0;
}

static void notify_linestate(struct serial_client *c, bool forced)
{
    struct serial_port *p = c->port;
    uint8_t now = p->fd >= 0 ? serial_tty_linestate(p->fd, &p->line_errors) : 0;

    if (forced || ((now ^ c->linestate) & c->linestate_mask))
        answer_byte(c, RFC2217_NOTIFY_LINESTATE, now & c->linestate_mask);
    c->linestate = now;
}

static void status_timer_update(struct serial_port *p);

static void on_status_poll(uv_timer_t *timer)
{
    struct serial_port *p = timer->data;
    struct serial_client *c = serial_port_client(p);

    if (!c || !c->com_port)
        return;
    /* no room now: the next tick reports the change */
    if (SERIAL_CTL_SIZE - c->ctl_len >= SERIAL_CTL_ROOM) {
        notify_modemstate(c, false);
        notify_linestate(c, false);
        serial_net_flush(c);
    }
}

/* Polls only while someone listens for something this device can show. */
static void status_timer_update(struct serial_port *p)
{
    struct serial_client *c = serial_port_client(p);
    bool want = c && c->com_port && p->fd >= 0 &&
                ((c->modemstate_mask && p->modem_lines) || c->linestate_mask);

    if (!want)
        uv_timer_stop(&p->status_timer);
    else if (!uv_is_active((uv_handle_t *)&p->status_timer))
        uv_timer_start(&p->status_timer, on_status_poll, SERIAL_STATUS_POLL_MS,
                       SERIAL_STATUS_POLL_MS);
}

void serial_rfc2217_start(struct serial_client *c)
{
    c->com_port = true;
    c->modemstate_mask = 0xff; /* RFC 2217 defaults */
    c->linestate_mask = 0;
    c->modemstate = 0;
    notify_modemstate(c, true);
    status_timer_update(c->port);
}

/* The device vanished or came back: the modem lines the client sees
 * follow (all down while it is away). */
void serial_rfc2217_device_changed(struct serial_port *p)
{
    struct serial_client *c = serial_port_client(p);

    if (c && c->com_port) {
        notify_modemstate(c, false);
        serial_net_flush(c);
    }
    status_timer_update(p);
}

void serial_rfc2217_stop(struct serial_port *p)
{
    uv_timer_stop(&p->status_timer);
}

static void signature(struct serial_client *c,
                      const struct rfc2217_request *req)
{
    char text[SERIAL_SIGNATURE_MAX];
    int n;

    if (req->text_len) {
        /* the client introduces itself; it expects nothing back */
        char shown[SERIAL_SIGNATURE_MAX];
        size_t len = req->text_len < sizeof(shown) - 1 ? req->text_len
                                                       : sizeof(shown) - 1;
        for (size_t i = 0; i < len; i++)
            shown[i] = req->text[i] >= 0x20 && req->text[i] < 0x7f
                           ? (char)req->text[i]
                           : '?';
        shown[len] = '\0';
        log_info("%s: client %s is \"%s\"", c->port->label, c->name, shown);
        return;
    }
    n = snprintf(text, sizeof(text), "redir-agent %s serial.%s", REDIR_VERSION,
                 c->port->cfg->name);
    if (n > 0)
        answer(c, RFC2217_SIGNATURE, (const uint8_t *)text,
               (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

/* SET-BAUDRATE/DATASIZE/PARITY/STOPSIZE: the answer is the value in
 * effect, which is the request's unless it was invalid or refused. */
static void set_line(struct serial_client *c, const struct rfc2217_request *req)
{
    struct serial_port *p = c->port;
    struct serial_line want = p->line;
    uint8_t value[4];

    if (rfc2217_line_request(req, &want))
        serial_port_set_line(p, &want);
    answer(c, req->cmd, value, rfc2217_line_value(req->cmd, &p->line, value));
}

static void set_control(struct serial_client *c,
                        const struct rfc2217_request *req)
{
    struct serial_port *p = c->port;
    struct serial_line line = p->line;
    struct serial_control ctl = p->control;
    bool changed;
    enum rfc2217_control_target target =
        rfc2217_control_request((uint8_t)req->value, &line, &ctl, &changed);

    if (target == RFC2217_CTL_UNKNOWN)
        log_debug("%s: client %s: SET-CONTROL %u unknown", p->label, c->name,
                  req->value);
    if (changed &&
        (target == RFC2217_CTL_FLOW_OUT || target == RFC2217_CTL_FLOW_IN))
        serial_port_set_line(p, &line);
    else if (changed)
        serial_port_set_control(p, target, &ctl);
    answer_byte(c, RFC2217_SET_CONTROL,
                rfc2217_control_value(target, &p->line, &p->control));
}

static void set_mask(struct serial_client *c, const struct rfc2217_request *req)
{
    uint8_t mask = (uint8_t)req->value;

    if (req->cmd == RFC2217_SET_LINESTATE_MASK)
        c->linestate_mask = mask;
    else
        c->modemstate_mask = mask;
    answer_byte(c, req->cmd, mask);
    status_timer_update(c->port);
}

/* Carries out one IAC SB COM-PORT-OPTION ... IAC SE from the client. */
void serial_rfc2217_request(struct serial_client *c,
                            const struct telnet_event *ev)
{
    struct rfc2217_request req;

    if (rfc2217_parse(ev->data, ev->len, &req) < 0) {
        log_debug("%s: client %s: malformed RFC 2217 request (%zu bytes) "
                  "ignored",
                  c->port->label, c->name, ev->len);
        return;
    }
    log_debug("%s: client %s: RFC 2217 request %u value %u", c->port->label,
              c->name, req.cmd, req.value);
    switch (req.cmd) {
    case RFC2217_SIGNATURE: signature(c, &req); break;
    case RFC2217_SET_BAUDRATE:
    case RFC2217_SET_DATASIZE:
    case RFC2217_SET_PARITY:
    case RFC2217_SET_STOPSIZE: set_line(c, &req); break;
    case RFC2217_SET_CONTROL: set_control(c, &req); break;
    case RFC2217_NOTIFY_LINESTATE: notify_linestate(c, true); break;
    case RFC2217_NOTIFY_MODEMSTATE: notify_modemstate(c, true); break;
    /* SUSPEND asks us to send nothing, answers included, until RESUME;
     * RFC 2217 defines no answer to either. */
    case RFC2217_FLOWCONTROL_SUSPEND: c->suspended = true; break;
    case RFC2217_FLOWCONTROL_RESUME: c->suspended = false; break;
    case RFC2217_SET_LINESTATE_MASK:
    case RFC2217_SET_MODEMSTATE_MASK: set_mask(c, &req); break;
    case RFC2217_PURGE_DATA:
        if (req.value >= RFC2217_PURGE_RX && req.value <= RFC2217_PURGE_BOTH)
            serial_port_purge(c->port, (uint8_t)req.value);
        answer_byte(c, RFC2217_PURGE_DATA, (uint8_t)req.value);
        break;
    default: break;
    }
}
