/* A client's telnet session (telnet and rfc2217 modes): the options we
 * offer, decoding its input in place, answering negotiations and
 * commands. Com Port Control requests go on to serial_rfc2217.c. */
#include "log.h"
#include "serial_port.h"

#define AYT_ANSWER "\r\n[redir-agent: yes]\r\n"

static void queue(struct serial_client *c, const uint8_t *bytes, size_t len)
{
    if (len && !serial_net_queue_ctl(c, bytes, len))
        log_debug("%s: client %s: telnet answer dropped (client suspended "
                  "output and keeps asking)",
                  c->port->label, c->name);
}

/* BINARY both ways keeps the stream 8-bit clean; SGA because a serial
 * line has no half-duplex turns. COM-PORT-OPTION is the client's to
 * offer (RFC 2217: it sends WILL), we only accept it. */
void serial_telnet_start(struct serial_client *c)
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

    if (c->port->cfg->mode == SERIAL_MODE_RFC2217)
        allowed |= TELNET_OPTION_BIT(TELNET_OPT_COM_PORT);
    c->options.us_allowed = allowed;
    c->options.him_allowed = allowed;
    for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++)
        queue(
            c, bytes,
            telnet_offer(&c->options, offers[i].verb, offers[i].option, bytes));
}

static void on_negotiate(struct serial_client *c, const struct telnet_event *ev)
{
    uint8_t reply[3];

    queue(c, reply, telnet_negotiate(&c->options, ev->verb, ev->option, reply));
    if (ev->option == TELNET_OPT_BINARY &&
        (ev->verb == TELNET_WILL || ev->verb == TELNET_WONT)) {
        /* RFC 854: without BINARY the peer sends a bare CR as CR NUL */
        c->decoder.strip_cr_nul = ev->verb == TELNET_WONT;
        c->decoder.after_cr = false;
    }
    if (ev->option == TELNET_OPT_COM_PORT && !c->com_port &&
        (telnet_him(&c->options, TELNET_OPT_COM_PORT) ||
         telnet_us(&c->options, TELNET_OPT_COM_PORT)))
        serial_rfc2217_start(c);
}

static void on_command(struct serial_client *c, uint8_t command)
{
    switch (command) {
    case TELNET_BRK: serial_port_telnet_break(c->port); break;
    case TELNET_AYT:
        queue(c, (const uint8_t *)AYT_ANSWER, sizeof(AYT_ANSWER) - 1);
        break;
    default: break; /* NOP, GA, DM, IP, AO, EC, EL mean nothing here */
    }
}

static void on_event(struct serial_client *c, const struct telnet_event *ev)
{
    switch (ev->kind) {
    case TELNET_EV_NEGOTIATE: on_negotiate(c, ev); break;
    case TELNET_EV_COMMAND: on_command(c, ev->verb); break;
    case TELNET_EV_SUBNEG:
        if (ev->option == TELNET_OPT_COM_PORT &&
            c->port->cfg->mode == SERIAL_MODE_RFC2217)
            serial_rfc2217_request(c, ev);
        else
            log_debug("%s: client %s: subnegotiation of option %u ignored",
                      c->port->label, c->name, ev->option);
        break;
    default: break;
    }
}

/* Decodes [undecoded, undecoded_end) of to_tty in place: data lands at
 * its tail, commands are answered. Stops, leaving the rest for later,
 * while answers have no room (the socket is backed up); a suspended
 * client's answers are dropped instead, or its RESUME would never be
 * read. Reached from socket reads and write completions. */
void serial_telnet_input(struct serial_client *c)
{
    struct serial_buf *b = &c->to_tty;

    while (c->undecoded < c->undecoded_end) {
        struct telnet_event ev;
        size_t out;

        if (!c->suspended && SERIAL_CTL_SIZE - c->ctl_len < SERIAL_CTL_ROOM)
            return;
        c->undecoded += telnet_decode(&c->decoder, b->data + c->undecoded,
                                      c->undecoded_end - c->undecoded,
                                      b->data + b->tail, &out, &ev);
        b->tail += out;
        if (ev.kind != TELNET_EV_NONE) {
            on_event(c, &ev);
            if (c->phase != CLIENT_OPEN)
                return;
        }
    }
    c->undecoded = c->undecoded_end = b->tail;
}
