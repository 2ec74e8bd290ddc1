/* SPDX-License-Identifier: MIT */
/* Unit tests of the telnet layer: decoding (whole, split, in place,
 * malformed), option negotiation, escaping. */
#include <stdlib.h>
#include <string.h>

#include "../unit/check.h"
#include "telnet.h"

#define IAC 255

/* Decodes in (split into pieces of at most step bytes) into out, collecting
 * the events' kinds/verbs as text like "N251/44 C243 S44:len". */
static size_t decode_all(struct telnet_decoder *d, const uint8_t *in,
                         size_t len, size_t step, uint8_t *out, char *events,
                         size_t events_len)
{
    size_t out_len = 0;

    events[0] = '\0';
    for (size_t pos = 0; pos < len;) {
        size_t piece = len - pos < step ? len - pos : step;
        size_t used = 0;
        while (used < piece) {
            struct telnet_event ev;
            size_t n;
            used += telnet_decode(d, in + pos + used, piece - used,
                                  out + out_len, &n, &ev);
            out_len += n;
            char one[64] = "";
            if (ev.kind == TELNET_EV_NEGOTIATE)
                snprintf(one, sizeof(one), "N%u/%u ", ev.verb, ev.option);
            else if (ev.kind == TELNET_EV_COMMAND)
                snprintf(one, sizeof(one), "C%u ", ev.verb);
            else if (ev.kind == TELNET_EV_SUBNEG)
                snprintf(one, sizeof(one), "S%u:%zu%s ", ev.option, ev.len,
                         ev.truncated ? "!" : "");
            strncat(events, one, events_len - strlen(events) - 1);
        }
        pos += piece;
    }
    return out_len;
}

static void check_decode(const char *what, const uint8_t *in, size_t len,
                         const uint8_t *want, size_t want_len,
                         const char *want_events)
{
    static const size_t steps[] = {1, 2, 3, 7, 1 << 20};

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct telnet_decoder d;
        uint8_t out[512];
        char events[512];

        telnet_decoder_init(&d);
        size_t n =
            decode_all(&d, in, len, steps[i], out, events, sizeof(events));
        CHECK(n == want_len && (n == 0 || memcmp(out, want, n) == 0),
              "%s (step %zu): data differs (%zu bytes, want %zu)", what,
              steps[i], n, want_len);
        CHECK(strcmp(events, want_events) == 0,
              "%s (step %zu): events '%s', want '%s'", what, steps[i], events,
              want_events);
    }
}

static void test_decode(void)
{
    const uint8_t plain[] = {'a', 0, 'b', '\r', 0, 0xfe};
    check_decode("plain data", plain, sizeof(plain), plain, sizeof(plain), "");

    const uint8_t escaped[] = {1, IAC, IAC, 2, IAC, IAC, IAC, IAC};
    const uint8_t unescaped[] = {1, IAC, 2, IAC, IAC};
    check_decode("IAC IAC", escaped, sizeof(escaped), unescaped,
                 sizeof(unescaped), "");

    const uint8_t nego[] = {'x', IAC, 251, 44, 'y', IAC, 254, 0};
    check_decode("negotiation", nego, sizeof(nego), (const uint8_t *)"xy", 2,
                 "N251/44 N254/0 ");

    const uint8_t cmds[] = {IAC, 243, 'a', IAC, 241, IAC, 246};
    check_decode("commands", cmds, sizeof(cmds), (const uint8_t *)"a", 1,
                 "C243 C241 C246 ");

    const uint8_t sb[] = {'<', IAC,  250,  44,  1,   0,  IAC,
                          IAC, 0x25, 0x80, IAC, 240, '>'};
    check_decode("subnegotiation", sb, sizeof(sb), (const uint8_t *)"<>", 2,
                 "S44:5 ");
}

static void test_decode_subneg_payload(void)
{
    const uint8_t sb[] = {IAC, 250, 44, 1, 0, IAC, IAC, 0x25, 0x80, IAC, 240};
    struct telnet_decoder d;
    struct telnet_event ev;
    uint8_t out[16];
    size_t n;

    telnet_decoder_init(&d);
    size_t used = telnet_decode(&d, sb, sizeof(sb), out, &n, &ev);
    const uint8_t want[] = {1, 0, IAC, 0x25, 0x80};
    CHECK(used == sizeof(sb) && n == 0, "whole SB consumed, no data");
    CHECK(ev.kind == TELNET_EV_SUBNEG && ev.option == 44 && ev.len == 5 &&
              memcmp(ev.data, want, 5) == 0,
          "SB payload with IAC undone");
}

static void test_decode_malformed(void)
{
    /* stray SE, IAC + unknown command, SE without SB */
    const uint8_t stray[] = {'a', IAC, 240, 'b', IAC, 17, 'c'};
    check_decode("stray SE and odd command", stray, sizeof(stray),
                 (const uint8_t *)"abc", 3, "C17 ");

    /* a subnegotiation abandoned by a new command: the command counts */
    const uint8_t abandoned[] = {IAC, 250, 44, 1, 2, IAC, 253, 3, 'z'};
    check_decode("SB abandoned by IAC DO", abandoned, sizeof(abandoned),
                 (const uint8_t *)"z", 1, "N253/3 ");

    /* a subnegotiation restarted by another IAC SB */
    const uint8_t restarted[] = {IAC, 250, 44, 9, IAC, 250, 44, 7, IAC, 240};
    check_decode("SB restarted", restarted, sizeof(restarted), NULL, 0,
                 "S44:1 ");

    /* subnegotiation without an option: dropped, the stream goes on */
    const uint8_t empty[] = {IAC, 250, IAC, 240, 'q', IAC, 240};
    check_decode("SB without option", empty, sizeof(empty),
                 (const uint8_t *)"q", 1, "");

    /* oversized subnegotiation: cut and flagged, stream stays in sync */
    uint8_t big[TELNET_SB_MAX + 64];
    size_t n = 0;
    big[n++] = IAC;
    big[n++] = 250;
    big[n++] = 44;
    while (n < sizeof(big) - 3)
        big[n++] = 'x';
    big[n++] = IAC;
    big[n++] = 240;
    big[n++] = 'k';
    char want[32];
    snprintf(want, sizeof(want), "S44:%d! ", TELNET_SB_MAX);
    check_decode("oversized SB", big, n, (const uint8_t *)"k", 1, want);

    /* input ending inside sequences: nothing invented */
    const uint8_t cut[] = {'a', IAC};
    check_decode("ends after IAC", cut, sizeof(cut), (const uint8_t *)"a", 1,
                 "");
    const uint8_t cut2[] = {IAC, 250, 44, 1, 2, 3};
    check_decode("ends inside SB", cut2, sizeof(cut2), NULL, 0, "");
    const uint8_t cut3[] = {IAC, 251};
    check_decode("ends after WILL", cut3, sizeof(cut3), NULL, 0, "");
}

static void test_decode_cr_nul(void)
{
    const uint8_t in[] = {'a', '\r', 0, 'b', '\r', '\n', 0, '\r'};
    const uint8_t stripped[] = {'a', '\r', 'b', '\r', '\n', 0, '\r'};
    struct telnet_decoder d;
    struct telnet_event ev;
    uint8_t out[16];
    size_t n, total = 0;

    telnet_decoder_init(&d);
    d.strip_cr_nul = true;
    /* split right between CR and NUL */
    telnet_decode(&d, in, 2, out, &n, &ev);
    total = n;
    telnet_decode(&d, in + 2, sizeof(in) - 2, out + total, &n, &ev);
    total += n;
    CHECK(total == sizeof(stripped) && memcmp(out, stripped, total) == 0,
          "CR NUL becomes CR when the peer refused BINARY");

    telnet_decoder_init(&d);
    telnet_decode(&d, in, sizeof(in), out, &n, &ev);
    CHECK(n == sizeof(in) && memcmp(out, in, n) == 0,
          "binary peers keep CR NUL");
}

static void test_decode_in_place(void)
{
    uint8_t buf[64];
    const uint8_t in[] = {1, IAC, IAC, 2, IAC, 251, 0, 3, IAC, IAC, 4};
    const uint8_t want[] = {1, IAC, 2, 3, IAC, 4};
    struct telnet_decoder d;
    struct telnet_event ev;
    size_t pos = 0, out = 0, n;

    memcpy(buf, in, sizeof(in));
    telnet_decoder_init(&d);
    while (pos < sizeof(in)) {
        pos +=
            telnet_decode(&d, buf + pos, sizeof(in) - pos, buf + out, &n, &ev);
        out += n;
    }
    CHECK(out == sizeof(want) && memcmp(buf, want, out) == 0,
          "decoding in place gives the same data");
}

static size_t negotiate(struct telnet_options *o, uint8_t verb, uint8_t opt,
                        uint8_t reply[3])
{
    return telnet_negotiate(o, verb, opt, reply);
}

static void test_negotiation(void)
{
    struct telnet_options o = {0};
    uint8_t r[3];

    o.us_allowed = o.him_allowed = TELNET_OPTION_BIT(TELNET_OPT_BINARY) |
                                   TELNET_OPTION_BIT(TELNET_OPT_COM_PORT);
    /* client asks us: we agree once, then stay quiet */
    CHECK(negotiate(&o, TELNET_DO, 0, r) == 3 && r[1] == TELNET_WILL &&
              r[2] == 0,
          "DO BINARY -> WILL BINARY");
    CHECK(negotiate(&o, TELNET_DO, 0, r) == 0, "repeated DO: no answer");
    CHECK(telnet_us(&o, 0), "BINARY on for us");
    /* client offers COM-PORT-OPTION */
    CHECK(negotiate(&o, TELNET_WILL, 44, r) == 3 && r[1] == TELNET_DO &&
              r[2] == 44,
          "WILL COM-PORT -> DO COM-PORT");
    CHECK(telnet_him(&o, 44), "COM-PORT on for the client");
    /* unknown options are refused, disabled ones acknowledged once */
    CHECK(negotiate(&o, TELNET_DO, 1, r) == 3 && r[1] == TELNET_WONT,
          "DO ECHO -> WONT ECHO");
    CHECK(negotiate(&o, TELNET_WILL, 200, r) == 3 && r[1] == TELNET_DONT &&
              r[2] == 200,
          "WILL 200 -> DONT 200");
    CHECK(negotiate(&o, TELNET_WONT, 200, r) == 0, "WONT of an off option");
    CHECK(negotiate(&o, TELNET_DONT, 0, r) == 3 && r[1] == TELNET_WONT,
          "DONT BINARY turns it off with WONT");
    CHECK(!telnet_us(&o, 0), "BINARY off for us");
    CHECK(negotiate(&o, TELNET_DONT, 0, r) == 0, "second DONT: no answer");

    /* our own offers: the answer is an acknowledgement, not a request */
    struct telnet_options q = {0};
    q.us_allowed = q.him_allowed = TELNET_OPTION_BIT(TELNET_OPT_BINARY);
    CHECK(telnet_offer(&q, TELNET_WILL, 0, r) == 3 && r[1] == TELNET_WILL,
          "offer WILL BINARY");
    CHECK(telnet_offer(&q, TELNET_WILL, 0, r) == 0, "no second offer");
    CHECK(telnet_offer(&q, TELNET_DO, 0, r) == 3 && r[1] == TELNET_DO,
          "ask DO BINARY");
    CHECK(negotiate(&q, TELNET_DO, 0, r) == 0 && telnet_us(&q, 0),
          "DO acknowledges our WILL silently");
    CHECK(negotiate(&q, TELNET_WONT, 0, r) == 0 && !telnet_him(&q, 0),
          "WONT refuses our DO silently");
    CHECK(negotiate(&q, TELNET_WILL, 0, r) == 3 && r[1] == TELNET_DO,
          "a later WILL is a new request");
    CHECK(telnet_offer(&q, TELNET_WILL, 200, r) == 0,
          "options >= 64 are never offered");
}

static void test_escape(void)
{
    uint8_t buf[16] = {IAC, 1, IAC, IAC, 2};
    const uint8_t want[] = {IAC, IAC, 1, IAC, IAC, IAC, IAC, 2};

    CHECK(telnet_escape_inplace(buf, 5) == sizeof(want) &&
              memcmp(buf, want, sizeof(want)) == 0,
          "IACs doubled in place");
    uint8_t none[] = {1, 2, 3};
    CHECK(telnet_escape_inplace(none, 3) == 3, "nothing to escape");

    uint8_t out[32];
    const uint8_t payload[] = {111, IAC};
    size_t n = telnet_subneg(out, sizeof(out), 44, payload, 2);
    const uint8_t sb[] = {IAC, 250, 44, 111, IAC, IAC, IAC, 240};
    CHECK(n == sizeof(sb) && memcmp(out, sb, n) == 0,
          "subnegotiation with an escaped 255");
    CHECK(telnet_subneg(out, 6, 44, payload, 2) == 0, "too small: 0");
}

/* escape(x) then decode gives x back, for random data */
static void test_roundtrip(void)
{
    uint8_t data[4096], wire[8192], back[8192];
    struct telnet_decoder d;
    struct telnet_event ev;
    size_t n, pos = 0, out = 0;

    srand(7);
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(rand() % 4 == 0 ? IAC : rand());
    memcpy(wire, data, sizeof(data));
    size_t len = telnet_escape_inplace(wire, sizeof(data));
    telnet_decoder_init(&d);
    while (pos < len) {
        pos += telnet_decode(&d, wire + pos, len - pos, back + out, &n, &ev);
        out += n;
        CHECK(ev.kind == TELNET_EV_NONE, "no command in escaped data");
    }
    CHECK(out == sizeof(data) && memcmp(back, data, out) == 0,
          "escape + decode round trip");
}

int main(void)
{
    test_decode();
    test_decode_subneg_payload();
    test_decode_malformed();
    test_decode_cr_nul();
    test_decode_in_place();
    test_negotiation();
    test_escape();
    test_roundtrip();
    return check_summary();
}
