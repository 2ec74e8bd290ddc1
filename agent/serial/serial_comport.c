/* SPDX-License-Identifier: MIT */
/* A client's RFC 2217 Com Port Control session: its requests carried out on
 * the port and answered (clients wait for every answer), and modem/line
 * state notifications as its masks ask. */
#include "serial_comport.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "version.h"

/* Our RFC 2217 signature, and how much of a client's is logged. */
#define SIGNATURE_MAX 96
#define ANSWER_MAX (5 + 2 * (1 + SIGNATURE_MAX))
/* Notifications wait while less than this answer room is free. */
#define NOTIFY_ROOM 256

static void answer(struct serial_comport *cp, uint8_t cmd, const uint8_t *value,
                   size_t len)
{
    uint8_t bytes[ANSWER_MAX];
    size_t n = rfc2217_answer(bytes, sizeof(bytes), cmd, value, len);

    if (!n || !cp->client_ops->answer(cp->client_ctx, bytes, n))
        log_debug("%s: client %s: RFC 2217 answer %u dropped", cp->label,
                  cp->client, cmd);
}

static void answer_byte(struct serial_comport *cp, uint8_t cmd, uint8_t value)
{
    answer(cp, cmd, &value, 1);
}

static uint8_t modemstate_now(const struct serial_comport *cp)
{
    int bits = cp->port_ops->modem_bits(cp->port);

    return rfc2217_modemstate(bits < 0 ? 0 : bits, cp->modemstate);
}

/* Sends NOTIFY-MODEMSTATE when a line the client watches changed, or
 * always (forced: its poll, or the session's first report, without which
 * pyserial cannot read CTS/DSR/RI/CD at all). */
static void notify_modemstate(struct serial_comport *cp, bool forced)
{
    uint8_t now = modemstate_now(cp);
    uint8_t changed = (uint8_t)((now ^ cp->modemstate) & 0xf0);

    if (forced || (changed & cp->modemstate_mask))
        answer_byte(cp, RFC2217_NOTIFY_MODEMSTATE, now & cp->modemstate_mask);
    cp->modemstate = now & 0xf0;
}

static void notify_linestate(struct serial_comport *cp, bool forced)
{
    uint8_t now = cp->port_ops->linestate(cp->port);

    if (forced || ((now ^ cp->linestate) & cp->linestate_mask))
        answer_byte(cp, RFC2217_NOTIFY_LINESTATE, now & cp->linestate_mask);
    cp->linestate = now;
}

void serial_comport_poll(struct serial_comport *cp)
{
    if (!cp->active)
        return;
    /* no room now: the next tick reports the change */
    if (cp->client_ops->answer_room(cp->client_ctx) >= NOTIFY_ROOM) {
        notify_modemstate(cp, false);
        notify_linestate(cp, false);
        cp->client_ops->flush(cp->client_ctx);
    }
}

/* Polls only while someone listens for something this device can show. */
static void poll_update(struct serial_comport *cp)
{
    bool modem = cp->port_ops->modem_bits(cp->port) >= 0;
    bool want =
        cp->active && ((cp->modemstate_mask && modem) || cp->linestate_mask);

    cp->client_ops->poll(cp->client_ctx, want);
}

void serial_comport_start(struct serial_comport *cp)
{
    cp->active = true;
    cp->modemstate_mask = 0xff; /* RFC 2217 defaults */
    cp->linestate_mask = 0;
    cp->modemstate = 0;
    notify_modemstate(cp, true);
    poll_update(cp);
}

void serial_comport_device_changed(struct serial_comport *cp)
{
    if (cp->active) {
        notify_modemstate(cp, false);
        cp->client_ops->flush(cp->client_ctx);
    }
    poll_update(cp);
}

void serial_comport_stop(struct serial_comport *cp)
{
    if (cp->active)
        cp->client_ops->poll(cp->client_ctx, false);
    cp->active = false;
}

static void signature(struct serial_comport *cp,
                      const struct rfc2217_request *req)
{
    char text[SIGNATURE_MAX];
    int n;

    if (req->text_len) {
        /* the client introduces itself; it expects nothing back */
        char shown[SIGNATURE_MAX];
        size_t len = req->text_len < sizeof(shown) - 1 ? req->text_len
                                                       : sizeof(shown) - 1;
        for (size_t i = 0; i < len; i++)
            shown[i] = req->text[i] >= 0x20 && req->text[i] < 0x7f
                           ? (char)req->text[i]
                           : '?';
        shown[len] = '\0';
        log_info("%s: client %s is \"%s\"", cp->label, cp->client, shown);
        return;
    }
    n = snprintf(text, sizeof(text), "redir-agent %s serial.%s", REDIR_VERSION,
                 cp->port_name);
    if (n > 0)
        answer(cp, RFC2217_SIGNATURE, (const uint8_t *)text,
               (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
}

/* SET-BAUDRATE/DATASIZE/PARITY/STOPSIZE: the answer is the value in
 * effect, which is the request's unless it was invalid or refused. */
static void set_line(struct serial_comport *cp,
                     const struct rfc2217_request *req)
{
    struct serial_line want = *cp->port_ops->line(cp->port);
    uint8_t value[4];

    if (rfc2217_line_request(req, &want))
        cp->port_ops->set_line(cp->port, &want);
    answer(cp, req->cmd, value,
           rfc2217_line_value(req->cmd, cp->port_ops->line(cp->port), value));
}

static void set_control(struct serial_comport *cp,
                        const struct rfc2217_request *req)
{
    struct serial_line line = *cp->port_ops->line(cp->port);
    struct serial_control ctl = *cp->port_ops->control(cp->port);
    bool changed;
    enum rfc2217_control_target target =
        rfc2217_control_request((uint8_t)req->value, &line, &ctl, &changed);

    if (target == RFC2217_CTL_UNKNOWN)
        log_debug("%s: client %s: SET-CONTROL %u unknown", cp->label,
                  cp->client, req->value);
    if (changed &&
        (target == RFC2217_CTL_FLOW_OUT || target == RFC2217_CTL_FLOW_IN))
        cp->port_ops->set_line(cp->port, &line);
    else if (changed)
        cp->port_ops->set_control(cp->port, target, &ctl);
    answer_byte(cp, RFC2217_SET_CONTROL,
                rfc2217_control_value(target, cp->port_ops->line(cp->port),
                                      cp->port_ops->control(cp->port)));
}

static void set_mask(struct serial_comport *cp,
                     const struct rfc2217_request *req)
{
    uint8_t mask = (uint8_t)req->value;

    if (req->cmd == RFC2217_SET_LINESTATE_MASK)
        cp->linestate_mask = mask;
    else
        cp->modemstate_mask = mask;
    answer_byte(cp, req->cmd, mask);
    poll_update(cp);
}

static void purge(struct serial_comport *cp, const struct rfc2217_request *req)
{
    if (req->value >= RFC2217_PURGE_RX && req->value <= RFC2217_PURGE_BOTH) {
        cp->port_ops->purge(cp->port, (uint8_t)req->value);
        cp->client_ops->purge(cp->client_ctx, (uint8_t)req->value);
    }
    answer_byte(cp, RFC2217_PURGE_DATA, (uint8_t)req->value);
}

void serial_comport_request(struct serial_comport *cp, const uint8_t *data,
                            size_t len)
{
    struct rfc2217_request req;

    if (rfc2217_parse(data, len, &req) < 0) {
        log_debug("%s: client %s: malformed RFC 2217 request (%zu bytes) "
                  "ignored",
                  cp->label, cp->client, len);
        return;
    }
    log_debug("%s: client %s: RFC 2217 request %u value %u", cp->label,
              cp->client, req.cmd, req.value);
    switch (req.cmd) {
    case RFC2217_SIGNATURE: signature(cp, &req); break;
    case RFC2217_SET_BAUDRATE:
    case RFC2217_SET_DATASIZE:
    case RFC2217_SET_PARITY:
    case RFC2217_SET_STOPSIZE: set_line(cp, &req); break;
    case RFC2217_SET_CONTROL: set_control(cp, &req); break;
    case RFC2217_NOTIFY_LINESTATE: notify_linestate(cp, true); break;
    case RFC2217_NOTIFY_MODEMSTATE: notify_modemstate(cp, true); break;
    /* SUSPEND asks us to send nothing, answers included, until RESUME;
     * RFC 2217 defines no answer to either. */
    case RFC2217_FLOWCONTROL_SUSPEND: cp->suspended = true; break;
    case RFC2217_FLOWCONTROL_RESUME: cp->suspended = false; break;
    case RFC2217_SET_LINESTATE_MASK:
    case RFC2217_SET_MODEMSTATE_MASK: set_mask(cp, &req); break;
    case RFC2217_PURGE_DATA: purge(cp, &req); break;
    default: break;
    }
}
