/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the telnet decoder (whole, in pieces, in place), option
 * negotiation, and RFC 2217 requests and answers on what it decodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rfc2217.h"
#include "telnet.h"

#define MAX_INPUT 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct decoded {
    uint8_t out[MAX_INPUT];
    size_t len;
    unsigned events;
    uint32_t event_sum; /* order-sensitive digest of the events */
};

static void note_event(struct decoded *r, const struct telnet_event *ev)
{
    if (ev->kind == TELNET_EV_NONE)
        return;
    r->events++;
    r->event_sum = r->event_sum * 31 + ev->kind * 7 + ev->verb + ev->option;
    for (size_t i = 0; ev->kind == TELNET_EV_SUBNEG && i < ev->len; i++)
        r->event_sum = r->event_sum * 131 + ev->data[i];
}

/* A SUBNEG for COM-PORT-OPTION: what the server would do and answer. */
static void serve(const struct telnet_event *ev)
{
    struct rfc2217_request req;
    struct serial_line line;
    struct serial_control ctl = {0};
    uint8_t value[4], wire[64];
    bool changed;

    if (ev->option != TELNET_OPT_COM_PORT ||
        rfc2217_parse(ev->data, ev->len, &req) < 0)
        return;
    serial_line_default(&line);
    rfc2217_line_request(&req, &line);
    if (line.baud < SERIAL_BAUD_MIN || line.baud > SERIAL_BAUD_MAX ||
        line.data_bits < 5 || line.data_bits > 8)
        abort();
    size_t n = rfc2217_line_value(req.cmd, &line, value);
    enum rfc2217_control_target t =
        rfc2217_control_request((uint8_t)req.value, &line, &ctl, &changed);
    value[0] = rfc2217_control_value(t, &line, &ctl);
    size_t w = rfc2217_answer(wire, sizeof(wire), req.cmd, value, n);
    if (w == 0)
        abort();
    /* our own answer decodes to exactly that subnegotiation */
    struct telnet_decoder d;
    struct telnet_event back;
    uint8_t out[64];
    size_t out_len;
    telnet_decoder_init(&d);
    size_t used = telnet_decode(&d, wire, w, out, &out_len, &back);
    if (used != w || out_len != 0 || back.kind != TELNET_EV_SUBNEG ||
        back.len != n + 1 || back.data[0] != RFC2217_SERVER(req.cmd) ||
        memcmp(back.data + 1, value, n) != 0)
        abort();
}

static void negotiate(struct telnet_options *o, const struct telnet_event *ev)
{
    uint8_t reply[3];
    size_t n = telnet_negotiate(o, ev->verb, ev->option, reply);

    if (n != 0 && (n != 3 || reply[0] != TELNET_IAC || reply[2] != ev->option))
        abort();
    /* the same word twice about an allowed option: the second one never
     * gets an answer (or two telnets would loop forever) */
    bool his = ev->verb == TELNET_WILL || ev->verb == TELNET_WONT;
    bool allowed = ev->option < 64 && ((his ? o->him_allowed : o->us_allowed) &
                                       TELNET_OPTION_BIT(ev->option));
    if (allowed && telnet_negotiate(o, ev->verb, ev->option, reply) != 0)
        abort();
}

/* Decodes in pieces whose sizes come from seed, into out (in place when
 * out is the input). */
static void decode(const uint8_t *in, size_t size, uint8_t *work, unsigned seed,
                   struct decoded *r)
{
    struct telnet_decoder d;
    struct telnet_options o = {
        .us_allowed =
            TELNET_OPTION_BIT(0) | TELNET_OPTION_BIT(3) | TELNET_OPTION_BIT(44),
        .him_allowed = TELNET_OPTION_BIT(0) | TELNET_OPTION_BIT(44),
    };
    size_t pos = 0;

    memset(r, 0, sizeof(*r));
    memcpy(work, in, size);
    telnet_decoder_init(&d);
    while (pos < size) {
        size_t piece = seed ? 1 + (seed = seed * 1103515245 + 12345) % 9 : size;
        if (piece > size - pos)
            piece = size - pos;
        size_t end = pos + piece;
        while (pos < end) {
            struct telnet_event ev;
            size_t n;
            size_t used = telnet_decode(&d, work + pos, end - pos,
                                        work + r->len, &n, &ev);
            if (used == 0 || n > used || r->len + n > pos + used)
                abort();
            pos += used;
            r->len += n;
            note_event(r, &ev);
            if (ev.kind == TELNET_EV_SUBNEG)
                serve(&ev);
            else if (ev.kind == TELNET_EV_NEGOTIATE)
                negotiate(&o, &ev);
        }
    }
    memcpy(r->out, work, r->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t work[2 * MAX_INPUT];
    static struct decoded whole, pieces;

    if (size > MAX_INPUT)
        return 0;
    decode(data, size, work, 0, &whole);
    decode(data, size, work, size ? data[0] | 1u : 1, &pieces);
    if (whole.len != pieces.len || whole.events != pieces.events ||
        whole.event_sum != pieces.event_sum ||
        memcmp(whole.out, pieces.out, whole.len) != 0)
        abort();

    /* escaping any data and decoding it gives it back, with no command */
    struct telnet_decoder d;
    struct telnet_event ev;
    size_t len, n, pos = 0, out = 0;
    memcpy(work, data, size);
    len = telnet_escape_inplace(work, size);
    telnet_decoder_init(&d);
    while (pos < len) {
        pos += telnet_decode(&d, work + pos, len - pos, work + out, &n, &ev);
        out += n;
        if (ev.kind != TELNET_EV_NONE)
            abort();
    }
    if (out != size || memcmp(work, data, size) != 0)
        abort();
    return 0;
}
