/* SPDX-License-Identifier: MIT */
/* Telnet (RFC 854/855) as a serial bridge speaks it: an incremental decoder
 * that separates data from commands, option negotiation, and the encoders.
 * Pure state machines, no I/O. */
#include "telnet.h"

#include <string.h>

enum decoder_state {
    ST_DATA,
    ST_IAC,    /* IAC seen */
    ST_VERB,   /* IAC WILL/WONT/DO/DONT seen, option next */
    ST_SB_OPT, /* IAC SB seen, option next */
    ST_SB,     /* inside a subnegotiation */
    ST_SB_IAC, /* IAC inside a subnegotiation */
};

void telnet_decoder_init(struct telnet_decoder *d)
{
    memset(d, 0, sizeof(*d));
    d->state = ST_DATA;
}

static void sb_append(struct telnet_decoder *d, uint8_t byte)
{
    if (d->sb_len < sizeof(d->sb))
        d->sb[d->sb_len++] = byte;
    else
        d->sb_truncated = true;
}

/* The byte after an IAC (outside a subnegotiation). Returns true when it
 * completed a command in *ev. */
static bool after_iac(struct telnet_decoder *d, uint8_t byte,
                      struct telnet_event *ev)
{
    d->state = ST_DATA;
    d->after_cr = false;
    switch (byte) {
    case TELNET_WILL:
    case TELNET_WONT:
    case TELNET_DO:
    case TELNET_DONT:
        d->verb = byte;
        d->state = ST_VERB;
        return false;
    case TELNET_SB: d->state = ST_SB_OPT; return false;
    case TELNET_SE: return false; /* stray: no subnegotiation was open */
    default:
        ev->kind = TELNET_EV_COMMAND;
        ev->verb = byte;
        return true;
    }
}

/* Copies a run of plain data (no IAC) from in to out. */
static size_t data_run(struct telnet_decoder *d, const uint8_t *in, size_t len,
                       uint8_t *out, size_t *o)
{
    const uint8_t *iac = memchr(in, TELNET_IAC, len);
    size_t run = iac ? (size_t)(iac - in) : len;

    if (!d->strip_cr_nul) {
        if (out + *o != in)
            memmove(out + *o, in, run);
        *o += run;
        return run;
    }
    for (size_t i = 0; i < run; i++) {
        bool drop = d->after_cr && in[i] == 0;
        d->after_cr = in[i] == '\r';
        if (!drop)
            out[(*o)++] = in[i];
    }
    return run;
}

size_t telnet_decode(struct telnet_decoder *d, const uint8_t *in, size_t in_len,
                     uint8_t *out, size_t *out_len, struct telnet_event *ev)
{
    size_t i = 0, o = 0;

    memset(ev, 0, sizeof(*ev));
    while (i < in_len) {
        uint8_t byte = in[i];

        switch (d->state) {
        case ST_DATA:
            if (byte != TELNET_IAC) {
                i += data_run(d, in + i, in_len - i, out, &o);
                continue;
            }
            d->state = ST_IAC;
            break;
        case ST_IAC:
            if (byte == TELNET_IAC) {
                out[o++] = TELNET_IAC;
                d->state = ST_DATA;
                d->after_cr = false;
            } else if (after_iac(d, byte, ev)) {
                i++;
                goto done;
            }
            break;
        case ST_VERB:
            d->state = ST_DATA;
            ev->kind = TELNET_EV_NEGOTIATE;
            ev->verb = d->verb;
            ev->option = byte;
            i++;
            goto done;
        case ST_SB_OPT:
            if (byte == TELNET_IAC) { /* no option: drop the SB */
                d->state = ST_IAC;
                break;
            }
            d->sb_option = byte;
            d->sb_len = 0;
            d->sb_truncated = false;
            d->state = ST_SB;
            break;
        case ST_SB:
            if (byte == TELNET_IAC)
                d->state = ST_SB_IAC;
            else
                sb_append(d, byte);
            break;
        case ST_SB_IAC:
            if (byte == TELNET_IAC) {
                sb_append(d, TELNET_IAC);
                d->state = ST_SB;
            } else if (byte == TELNET_SE) {
                d->state = ST_DATA;
                ev->kind = TELNET_EV_SUBNEG;
                ev->option = d->sb_option;
                ev->data = d->sb;
                ev->len = d->sb_len;
                ev->truncated = d->sb_truncated;
                i++;
                goto done;
            } else if (after_iac(d, byte, ev)) {
                /* IAC <command> inside SB: the peer gave up on the
                 * subnegotiation; it is dropped and the command taken. */
                i++;
                goto done;
            }
            break;
        }
        i++;
    }
done:
    *out_len = o;
    return i;
}

bool telnet_us(const struct telnet_options *o, uint8_t option)
{
    return option < 64 && (o->us_on & TELNET_OPTION_BIT(option));
}

bool telnet_him(const struct telnet_options *o, uint8_t option)
{
    return option < 64 && (o->him_on & TELNET_OPTION_BIT(option));
}

static size_t put3(uint8_t out[3], uint8_t verb, uint8_t option)
{
    out[0] = TELNET_IAC;
    out[1] = verb;
    out[2] = option;
    return 3;
}

/* One side of an option: *on, *asked and whether it may be enabled. */
static size_t negotiate_side(uint64_t *on, uint64_t *asked, uint64_t allowed,
                             bool enable, uint8_t yes, uint8_t no,
                             uint8_t option, uint8_t reply[3])
{
    uint64_t bit = option < 64 ? TELNET_OPTION_BIT(option) : 0;
    bool was_asked = *asked & bit;

    *asked &= ~bit;
    if (enable) {
        if (*on & bit)
            return 0;
        if (!(allowed & bit))
            return put3(reply, no, option);
        *on |= bit;
        return was_asked ? 0 : put3(reply, yes, option);
    }
    if (!(*on & bit))
        return 0; /* refusal of our offer, or already off */
    *on &= ~bit;
    return put3(reply, no, option);
}

size_t telnet_negotiate(struct telnet_options *o, uint8_t verb, uint8_t option,
                        uint8_t reply[3])
{
    switch (verb) {
    case TELNET_WILL:
    case TELNET_WONT:
        return negotiate_side(&o->him_on, &o->him_asked, o->him_allowed,
                              verb == TELNET_WILL, TELNET_DO, TELNET_DONT,
                              option, reply);
    case TELNET_DO:
    case TELNET_DONT:
        return negotiate_side(&o->us_on, &o->us_asked, o->us_allowed,
                              verb == TELNET_DO, TELNET_WILL, TELNET_WONT,
                              option, reply);
    default: return 0;
    }
}

size_t telnet_offer(struct telnet_options *o, uint8_t verb, uint8_t option,
                    uint8_t out[3])
{
    uint64_t bit = option < 64 ? TELNET_OPTION_BIT(option) : 0;
    uint64_t *on = verb == TELNET_WILL ? &o->us_on : &o->him_on;
    uint64_t *asked = verb == TELNET_WILL ? &o->us_asked : &o->him_asked;

    if (!bit || ((*on | *asked) & bit))
        return 0;
    *asked |= bit;
    return put3(out, verb, option);
}

size_t telnet_escape_inplace(uint8_t *buf, size_t len)
{
    size_t count = 0;

    for (const uint8_t *p = buf, *end = buf + len;
         (p = memchr(p, TELNET_IAC, (size_t)(end - p))) != NULL; p++)
        count++;
    if (count == 0)
        return len;
    /* Back to front, so no byte is overwritten before it moved. */
    for (size_t src = len, dst = len + count; src > 0;) {
        uint8_t byte = buf[--src];
        buf[--dst] = byte;
        if (byte == TELNET_IAC)
            buf[--dst] = TELNET_IAC;
    }
    return len + count;
}

size_t telnet_subneg(uint8_t *out, size_t cap, uint8_t option,
                     const uint8_t *payload, size_t len)
{
    size_t n = 0;

    if (cap < 5 + 2 * len)
        return 0;
    out[n++] = TELNET_IAC;
    out[n++] = TELNET_SB;
    out[n++] = option;
    for (size_t i = 0; i < len; i++) {
        out[n++] = payload[i];
        if (payload[i] == TELNET_IAC)
            out[n++] = TELNET_IAC;
    }
    out[n++] = TELNET_IAC;
    out[n++] = TELNET_SE;
    return n;
}
