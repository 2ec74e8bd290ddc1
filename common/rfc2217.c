/* SPDX-License-Identifier: MIT */
/* RFC 2217 (Telnet Com Port Control): the requests a client sends, their
 * meaning for a serial line, and the values the server reports back.
 * Pure functions, no I/O. */
#include "rfc2217.h"

#include <sys/ioctl.h>

#include "telnet.h"

int rfc2217_parse(const uint8_t *p, size_t len, struct rfc2217_request *req)
{
    *req = (struct rfc2217_request){0};
    if (len < 1)
        return -1;
    req->cmd = p[0];
    p++;
    len--;
    switch (req->cmd) {
    case RFC2217_SIGNATURE:
        req->text = p;
        req->text_len = len;
        return 0;
    case RFC2217_SET_BAUDRATE:
        if (len < 4)
            return -1;
        req->value = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                     (uint32_t)p[2] << 8 | p[3];
        req->has_value = true;
        return 0;
    case RFC2217_NOTIFY_LINESTATE:
    case RFC2217_NOTIFY_MODEMSTATE:
    case RFC2217_FLOWCONTROL_SUSPEND:
    case RFC2217_FLOWCONTROL_RESUME:
        req->has_value = len > 0;
        req->value = len ? p[0] : 0;
        return 0;
    case RFC2217_SET_DATASIZE:
    case RFC2217_SET_PARITY:
    case RFC2217_SET_STOPSIZE:
    case RFC2217_SET_CONTROL:
    case RFC2217_SET_LINESTATE_MASK:
    case RFC2217_SET_MODEMSTATE_MASK:
    case RFC2217_PURGE_DATA:
        if (len < 1)
            return -1;
        req->value = p[0];
        req->has_value = true;
        return 0;
    default: return -1;
    }
}

bool rfc2217_line_request(const struct rfc2217_request *req,
                          struct serial_line *line)
{
    uint32_t v = req->value;

    if (v == 0)
        return false; /* a query */
    switch (req->cmd) {
    case RFC2217_SET_BAUDRATE:
        if (v < SERIAL_BAUD_MIN || v > SERIAL_BAUD_MAX)
            return false;
        line->baud = v;
        return true;
    case RFC2217_SET_DATASIZE:
        if (v < 5 || v > 8)
            return false;
        line->data_bits = (uint8_t)v;
        return true;
    case RFC2217_SET_PARITY:
        if (v > 5)
            return false;
        /* 1 NONE, 2 ODD, 3 EVEN, 4 MARK, 5 SPACE: ours, shifted by one */
        line->parity = (enum serial_parity)(v - 1);
        return true;
    case RFC2217_SET_STOPSIZE:
        if (v > 3)
            return false;
        line->stop = v == 1   ? SERIAL_STOP_1
                     : v == 2 ? SERIAL_STOP_2
                              : SERIAL_STOP_1_5;
        return true;
    default: return false;
    }
}

size_t rfc2217_line_value(uint8_t cmd, const struct serial_line *line,
                          uint8_t out[4])
{
    switch (cmd) {
    case RFC2217_SET_BAUDRATE:
        out[0] = (uint8_t)(line->baud >> 24);
        out[1] = (uint8_t)(line->baud >> 16);
        out[2] = (uint8_t)(line->baud >> 8);
        out[3] = (uint8_t)line->baud;
        return 4;
    case RFC2217_SET_DATASIZE: out[0] = line->data_bits; return 1;
    case RFC2217_SET_PARITY: out[0] = (uint8_t)(line->parity + 1); return 1;
    case RFC2217_SET_STOPSIZE:
        out[0] = line->stop == SERIAL_STOP_1   ? 1
                 : line->stop == SERIAL_STOP_2 ? 2
                                               : 3;
        return 1;
    default: out[0] = 0; return 1;
    }
}

/* Values 1-3 set "outbound/both": both directions, which is what a
 * client that never sends the inbound values (13-16) means; those then
 * change the inbound direction alone. 0 and 13 are queries. */
static enum rfc2217_control_target
control_flow(uint8_t v, struct serial_line *line, bool *changed)
{
    static const enum serial_flow modes[] = {
        SERIAL_FLOW_NONE, SERIAL_FLOW_XONXOFF, SERIAL_FLOW_RTSCTS};
    bool inbound = v >= 13 && v <= 16;
    int index = inbound ? v - 14 : v - 1;

    if (index < 0)
        return inbound ? RFC2217_CTL_FLOW_IN : RFC2217_CTL_FLOW_OUT;
    *changed = line->flow_in != modes[index] ||
               (!inbound && line->flow_out != modes[index]);
    line->flow_in = modes[index];
    if (!inbound)
        line->flow_out = modes[index];
    return inbound ? RFC2217_CTL_FLOW_IN : RFC2217_CTL_FLOW_OUT;
}

static void control_bool(bool *state, bool on, bool *changed)
{
    *changed = *state != on;
    *state = on;
}

enum rfc2217_control_target rfc2217_control_request(uint8_t v,
                                                    struct serial_line *line,
                                                    struct serial_control *ctl,
                                                    bool *changed)
{
    *changed = false;
    if (v <= 3)
        return control_flow(v, line, changed);
    if (v >= 13 && v <= 16)
        return control_flow(v, line, changed);
    switch (v) {
    case 17: /* DCD flow control */
    case 19: /* DSR flow control */ return RFC2217_CTL_FLOW_OUT;
    case 18: /* DTR flow control */ return RFC2217_CTL_FLOW_IN;
    case 4: return RFC2217_CTL_BREAK;
    case 5:
    case 6: control_bool(&ctl->brk, v == 5, changed); return RFC2217_CTL_BREAK;
    case 7: return RFC2217_CTL_DTR;
    case 8:
    case 9: control_bool(&ctl->dtr, v == 8, changed); return RFC2217_CTL_DTR;
    case 10: return RFC2217_CTL_RTS;
    case 11:
    case 12: control_bool(&ctl->rts, v == 11, changed); return RFC2217_CTL_RTS;
    default: return RFC2217_CTL_UNKNOWN;
    }
}

uint8_t rfc2217_control_value(enum rfc2217_control_target target,
                              const struct serial_line *line,
                              const struct serial_control *ctl)
{
    switch (target) {
    case RFC2217_CTL_BREAK: return ctl->brk ? 5 : 6;
    case RFC2217_CTL_DTR: return ctl->dtr ? 8 : 9;
    case RFC2217_CTL_RTS: return ctl->rts ? 11 : 12;
    case RFC2217_CTL_FLOW_IN: return (uint8_t)(14 + line->flow_in);
    default: return (uint8_t)(1 + line->flow_out);
    }
}

uint8_t rfc2217_modemstate(int tiocm, uint8_t previous)
{
    uint8_t now = (tiocm & TIOCM_CD ? RFC2217_MODEM_CD : 0) |
                  (tiocm & TIOCM_RI ? RFC2217_MODEM_RI : 0) |
                  (tiocm & TIOCM_DSR ? RFC2217_MODEM_DSR : 0) |
                  (tiocm & TIOCM_CTS ? RFC2217_MODEM_CTS : 0);
    uint8_t changed = (uint8_t)((now ^ previous) & 0xf0);

    if (changed & RFC2217_MODEM_CD)
        now |= RFC2217_MODEM_DELTA_CD;
    if (changed & RFC2217_MODEM_DSR)
        now |= RFC2217_MODEM_DELTA_DSR;
    if (changed & RFC2217_MODEM_CTS)
        now |= RFC2217_MODEM_DELTA_CTS;
    if ((previous & RFC2217_MODEM_RI) && !(now & RFC2217_MODEM_RI))
        now |= RFC2217_MODEM_RI_TRAILING;
    return now;
}

size_t rfc2217_answer(uint8_t *out, size_t cap, uint8_t cmd,
                      const uint8_t *value, size_t len)
{
    uint8_t payload[1 + TELNET_SB_MAX];

    if (len >= sizeof(payload))
        return 0;
    payload[0] = RFC2217_SERVER(cmd);
    for (size_t i = 0; i < len; i++)
        payload[1 + i] = value[i];
    return telnet_subneg(out, cap, TELNET_OPT_COM_PORT, payload, len + 1);
}
