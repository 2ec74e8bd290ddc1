/* SPDX-License-Identifier: MIT */
/* A client's telnet session (telnet and rfc2217 modes): the options we
 * offer, its input decoded in place, negotiations and commands answered.
 * Com Port Control subnegotiations go on to its comport session. */
#include "serial_telnet.h"

#include "log.h"

#define AYT_ANSWER "\r\n[redir-agent: yes]\r\n"

static void queue(struct serial_telnet *t, const uint8_t *bytes, size_t len)
{
    if (len && !t->ops->answer(t->ctx, bytes, len))
        log_debug("%s: client %s: telnet answer dropped (client suspended "
                  "output and keeps asking)",
                  t->label, t->client);
}

/* BINARY both ways keeps the stream 8-bit clean; SGA because a serial
 * line has no half-duplex turns. COM-PORT-OPTION is the client's to
 * offer (RFC 2217: it sends WILL), we only accept it. */
void serial_telnet_start(struct serial_telnet *t, enum serial_mode mode,
                         const struct serial_telnet_ops *ops, void *ctx)
{
    static const struct {
        uint8_t verb, option;
    } offers[] = {
        {TELNET_WILL, TELNET_OPT_BINARY},
        {TELNET_DO, TELNET_OPT_BINARY},
        {TELNET_WILL, TELNET_OPT_SGA},
        {TELNET_DO, TELNET_OPT_SGA},
    };
    uint64_t allowed = TELNET_OPTION_BIT(TELNET_OPT_BINARY) |
                       TELNET_OPTION_BIT(TELNET_OPT_SGA);
    uint8_t bytes[3];

    t->mode = mode;
    t->ops = ops;
    t->ctx = ctx;
    telnet_decoder_init(&t->decoder);
    if (mode == SERIAL_MODE_RFC2217)
        allowed |= TELNET_OPTION_BIT(TELNET_OPT_COM_PORT);
    t->options.us_allowed = allowed;
    t->options.him_allowed = allowed;
    for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++)
        queue(
            t, bytes,
            telnet_offer(&t->options, offers[i].verb, offers[i].option, bytes));
}

static void on_negotiate(struct serial_telnet *t, const struct telnet_event *ev)
{
    uint8_t reply[3];

    queue(t, reply, telnet_negotiate(&t->options, ev->verb, ev->option, reply));
    if (ev->option == TELNET_OPT_BINARY &&
        (ev->verb == TELNET_WILL || ev->verb == TELNET_WONT)) {
        /* RFC 854: without BINARY the peer sends a bare CR as CR NUL */
        t->decoder.strip_cr_nul = ev->verb == TELNET_WONT;
        t->decoder.after_cr = false;
    }
    if (ev->option == TELNET_OPT_COM_PORT && !t->comport.active &&
        (telnet_him(&t->options, TELNET_OPT_COM_PORT) ||
         telnet_us(&t->options, TELNET_OPT_COM_PORT)))
        serial_comport_start(&t->comport);
}

static void on_command(struct serial_telnet *t, uint8_t command)
{
    switch (command) {
    case TELNET_BRK: t->ops->brk(t->ctx); break;
    case TELNET_AYT:
        queue(t, (const uint8_t *)AYT_ANSWER, sizeof(AYT_ANSWER) - 1);
        break;
    default: break; /* NOP, GA, DM, IP, AO, EC, EL mean nothing here */
    }
}

static void on_event(struct serial_telnet *t, const struct telnet_event *ev)
{
    switch (ev->kind) {
    case TELNET_EV_NEGOTIATE: on_negotiate(t, ev); break;
    case TELNET_EV_COMMAND: on_command(t, ev->verb); break;
    case TELNET_EV_SUBNEG:
        if (ev->option == TELNET_OPT_COM_PORT && t->mode == SERIAL_MODE_RFC2217)
            serial_comport_request(&t->comport, ev->data, ev->len);
        else
            log_debug("%s: client %s: subnegotiation of option %u ignored",
                      t->label, t->client, ev->option);
        break;
    default: break;
    }
}

void serial_telnet_input(struct serial_telnet *t, uint8_t *buf, size_t *from,
                         size_t to, size_t *tail)
{
    while (*from < to) {
        struct telnet_event ev;
        size_t out;

        if (!t->comport.suspended &&
            t->ops->answer_room(t->ctx) < SERIAL_TELNET_ANSWER_ROOM)
            return;
        *from += telnet_decode(&t->decoder, buf + *from, to - *from,
                               buf + *tail, &out, &ev);
        *tail += out;
        if (ev.kind != TELNET_EV_NONE)
            on_event(t, &ev);
    }
}
