/* SPDX-License-Identifier: MIT */
/* Unit tests of the serial option layer: line settings text, their
 * termios2 form, RFC 2217 requests (parse, line, SET-CONTROL, masks,
 * modem state) and the answers' bytes. */
#include <asm/termbits.h>
#include <string.h>
#include <sys/ioctl.h>

#include "../unit/check.h"
#include "rfc2217.h"
#include "serial_line.h"
#include "telnet.h"

static void test_line_parse(void)
{
    struct serial_line l;
    char why[256], text[SERIAL_LINE_TEXT_MAX];

    serial_line_default(&l);
    CHECK(strcmp(serial_line_str(&l, text, sizeof(text)), "9600 8N1") == 0,
          "default is 9600 8N1, got %s", text);
    CHECK(serial_line_parse("115200 7E2", &l, why, sizeof(why)) == 0 &&
              l.baud == 115200 && l.data_bits == 7 &&
              l.parity == SERIAL_PARITY_EVEN && l.stop == SERIAL_STOP_2,
          "115200 7E2");
    CHECK(serial_line_parse(" 250000 ", &l, why, sizeof(why)) == 0 &&
              l.baud == 250000 && l.data_bits == 7,
          "speed alone keeps the framing");
    CHECK(serial_line_parse("300 5m1.5", &l, why, sizeof(why)) == 0 &&
              l.parity == SERIAL_PARITY_MARK && l.stop == SERIAL_STOP_1_5 &&
              l.data_bits == 5,
          "5M1.5, lower case parity");
    CHECK(serial_line_parse("1200 8S1", &l, why, sizeof(why)) == 0 &&
              l.parity == SERIAL_PARITY_SPACE,
          "space parity");
    l.flow_in = l.flow_out = SERIAL_FLOW_RTSCTS;
    CHECK(strcmp(serial_line_str(&l, text, sizeof(text)), "1200 8S1 rtscts") ==
              0,
          "format with flow: %s", text);

    const char *bad[] = {"",          "fast",     "49 8N1",   "20000001",
                         "9600 9N1",  "9600 8X1", "9600 8N3", "9600 8N1 x",
                         "9600 8N1.", "-9600",    "9600 4N1", "9600 8N"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct serial_line before = l;
        CHECK(serial_line_parse(bad[i], &l, why, sizeof(why)) == -1 &&
                  memcmp(&before, &l, sizeof(l)) == 0,
              "'%s' refused, line untouched", bad[i]);
    }

    enum serial_flow f;
    CHECK(serial_flow_parse("XonXoff", &f) == 0 && f == SERIAL_FLOW_XONXOFF,
          "flow names");
    CHECK(serial_flow_parse("dsrdtr", &f) == -1, "unknown flow refused");
}

static struct termios2 termios_of(const char *text, enum serial_flow out,
                                  enum serial_flow in)
{
    struct serial_line l;
    struct termios2 t;
    char why[128];

    memset(&t, 0, sizeof(t));
    /* cooked-mode leftovers the raw mode must clear */
    t.c_iflag = ICRNL | IXON | ISTRIP | BRKINT;
    t.c_oflag = OPOST | ONLCR;
    t.c_lflag = ICANON | ECHO | ISIG | IEXTEN;
    t.c_cflag = HUPCL | CS7 | PARENB | B38400;
    serial_line_default(&l);
    serial_line_parse(text, &l, why, sizeof(why));
    l.flow_out = out;
    l.flow_in = in;
    serial_line_to_termios2(&l, &t);
    return t;
}

static void test_termios(void)
{
    struct termios2 t =
        termios_of("9600 8N1", SERIAL_FLOW_NONE, SERIAL_FLOW_NONE);
    CHECK((t.c_cflag & CBAUD) == B9600 && t.c_ospeed == 9600 &&
              t.c_ispeed == 9600,
          "standard speed uses its code");
    CHECK((t.c_cflag & CSIZE) == CS8 && !(t.c_cflag & (PARENB | CSTOPB)),
          "8N1");
    CHECK((t.c_cflag & (CREAD | CLOCAL | HUPCL)) == (CREAD | CLOCAL | HUPCL),
          "CREAD, CLOCAL set, HUPCL kept");
    CHECK(!(t.c_iflag & (ICRNL | IXON | ISTRIP | BRKINT | INPCK)) &&
              !(t.c_oflag & OPOST) &&
              !(t.c_lflag & (ICANON | ECHO | ISIG | IEXTEN)),
          "raw mode");
    CHECK(t.c_cc[VMIN] == 1 && t.c_cc[VTIME] == 0, "VMIN 1");
    CHECK(!(t.c_cflag & CIBAUD), "input speed follows output");

    t = termios_of("250000 7O2", SERIAL_FLOW_NONE, SERIAL_FLOW_NONE);
    CHECK((t.c_cflag & CBAUD) == BOTHER && t.c_ospeed == 250000,
          "non-standard speed uses BOTHER");
    CHECK((t.c_cflag & CSIZE) == CS7 &&
              (t.c_cflag & (PARENB | PARODD | CSTOPB)) ==
                  (PARENB | PARODD | CSTOPB) &&
              (t.c_iflag & INPCK),
          "7O2 with input parity check");
    t = termios_of("9600 6E1", SERIAL_FLOW_NONE, SERIAL_FLOW_NONE);
    CHECK((t.c_cflag & CSIZE) == CS6 &&
              (t.c_cflag & (PARENB | PARODD | CMSPAR)) == PARENB,
          "6E1");
    t = termios_of("9600 5M1.5", SERIAL_FLOW_NONE, SERIAL_FLOW_NONE);
    CHECK((t.c_cflag & CSIZE) == CS5 &&
              (t.c_cflag & (PARENB | PARODD | CMSPAR | CSTOPB)) ==
                  (PARENB | PARODD | CMSPAR | CSTOPB),
          "5M1.5: mark parity, CSTOPB");
    t = termios_of("9600 8S1", SERIAL_FLOW_NONE, SERIAL_FLOW_NONE);
    CHECK((t.c_cflag & (PARENB | PARODD | CMSPAR)) == (PARENB | CMSPAR),
          "space parity");

    t = termios_of("9600", SERIAL_FLOW_RTSCTS, SERIAL_FLOW_RTSCTS);
    CHECK((t.c_cflag & CRTSCTS) && !(t.c_iflag & (IXON | IXOFF)), "rtscts");
    t = termios_of("9600", SERIAL_FLOW_XONXOFF, SERIAL_FLOW_XONXOFF);
    CHECK(!(t.c_cflag & CRTSCTS) &&
              (t.c_iflag & (IXON | IXOFF)) == (IXON | IXOFF),
          "xonxoff both ways");
    t = termios_of("9600", SERIAL_FLOW_NONE, SERIAL_FLOW_XONXOFF);
    CHECK((t.c_iflag & (IXON | IXOFF)) == IXOFF, "inbound xonxoff only");
}

static int parse(const uint8_t *p, size_t len, struct rfc2217_request *r)
{
    return rfc2217_parse(p, len, r);
}

static void test_parse(void)
{
    struct rfc2217_request r;
    const uint8_t baud[] = {1, 0x00, 0x03, 0xd0, 0x90};
    const uint8_t padded[] = {1, 0, 0, 0x25, 0x80, 0, 0, 0, 0};
    const uint8_t sig[] = {0, 'p', 'y'};

    CHECK(parse(baud, sizeof(baud), &r) == 0 && r.cmd == 1 && r.value == 250000,
          "SET-BAUDRATE 250000");
    CHECK(parse(padded, sizeof(padded), &r) == 0 && r.value == 9600,
          "padded SET-BAUDRATE accepted");
    CHECK(parse(baud, 4, &r) == -1, "short SET-BAUDRATE refused");
    CHECK(parse(sig, sizeof(sig), &r) == 0 && r.text_len == 2 &&
              memcmp(r.text, "py", 2) == 0,
          "signature text");
    CHECK(parse(sig, 1, &r) == 0 && r.text_len == 0, "signature request");
    CHECK(parse((const uint8_t[]){7}, 1, &r) == 0 && !r.has_value,
          "NOTIFY-MODEMSTATE poll without value");
    CHECK(parse((const uint8_t[]){2}, 1, &r) == -1, "SET-DATASIZE w/o value");
    CHECK(parse((const uint8_t[]){13, 1}, 2, &r) == -1, "command 13 unknown");
    CHECK(parse((const uint8_t[]){105, 1}, 2, &r) == -1,
          "server commands are not requests");
    CHECK(parse(NULL, 0, &r) == -1, "empty payload");
}

static void test_line_requests(void)
{
    struct serial_line l;
    struct rfc2217_request r = {0};
    uint8_t v[4];

    serial_line_default(&l);
    r.cmd = RFC2217_SET_BAUDRATE;
    r.value = 0;
    CHECK(!rfc2217_line_request(&r, &l) && l.baud == 9600, "baud query");
    CHECK(rfc2217_line_value(r.cmd, &l, v) == 4 && v[0] == 0 && v[1] == 0 &&
              v[2] == 0x25 && v[3] == 0x80,
          "baud answer is 4 bytes, network order");
    r.value = 250000;
    CHECK(rfc2217_line_request(&r, &l) && l.baud == 250000, "set 250000");
    r.value = 10;
    CHECK(!rfc2217_line_request(&r, &l) && l.baud == 250000,
          "too slow: refused, answer keeps 250000");

    r.cmd = RFC2217_SET_DATASIZE;
    r.value = 7;
    CHECK(rfc2217_line_request(&r, &l) && l.data_bits == 7, "data size 7");
    r.value = 9;
    CHECK(!rfc2217_line_request(&r, &l) && l.data_bits == 7, "9 refused");
    CHECK(rfc2217_line_value(r.cmd, &l, v) == 1 && v[0] == 7, "answer 7");

    static const enum serial_parity parities[] = {
        SERIAL_PARITY_NONE, SERIAL_PARITY_ODD, SERIAL_PARITY_EVEN,
        SERIAL_PARITY_MARK, SERIAL_PARITY_SPACE};
    r.cmd = RFC2217_SET_PARITY;
    for (uint32_t code = 1; code <= 5; code++) {
        r.value = code;
        CHECK(rfc2217_line_request(&r, &l) && l.parity == parities[code - 1] &&
                  rfc2217_line_value(r.cmd, &l, v) == 1 && v[0] == code,
              "parity %u", code);
    }
    r.value = 6;
    CHECK(!rfc2217_line_request(&r, &l), "parity 6 refused");

    r.cmd = RFC2217_SET_STOPSIZE;
    r.value = 2;
    CHECK(rfc2217_line_request(&r, &l) && l.stop == SERIAL_STOP_2, "stop 2");
    r.value = 3;
    CHECK(rfc2217_line_request(&r, &l) && l.stop == SERIAL_STOP_1_5 &&
              rfc2217_line_value(r.cmd, &l, v) == 1 && v[0] == 3,
          "stop 1.5");
    r.value = 4;
    CHECK(!rfc2217_line_request(&r, &l), "stop 4 refused");
}

static void test_control(void)
{
    struct serial_line l;
    struct serial_control ctl = {.dtr = true, .rts = true};
    bool changed;

    serial_line_default(&l);
    CHECK(rfc2217_control_request(3, &l, &ctl, &changed) ==
                  RFC2217_CTL_FLOW_OUT &&
              changed && l.flow_out == SERIAL_FLOW_RTSCTS &&
              l.flow_in == SERIAL_FLOW_RTSCTS,
          "3: hardware flow control, outbound/both");
    CHECK(rfc2217_control_value(RFC2217_CTL_FLOW_OUT, &l, &ctl) == 3,
          "answer 3");
    CHECK(rfc2217_control_request(0, &l, &ctl, &changed) ==
                  RFC2217_CTL_FLOW_OUT &&
              !changed,
          "0: query");
    CHECK(rfc2217_control_request(15, &l, &ctl, &changed) ==
                  RFC2217_CTL_FLOW_IN &&
              changed && l.flow_in == SERIAL_FLOW_XONXOFF &&
              l.flow_out == SERIAL_FLOW_RTSCTS &&
              rfc2217_control_value(RFC2217_CTL_FLOW_IN, &l, &ctl) == 15,
          "15: xonxoff inbound only");
    CHECK(rfc2217_control_request(13, &l, &ctl, &changed) ==
                  RFC2217_CTL_FLOW_IN &&
              !changed &&
              rfc2217_control_value(RFC2217_CTL_FLOW_IN, &l, &ctl) == 15,
          "13: inbound query");
    CHECK(rfc2217_control_request(17, &l, &ctl, &changed) ==
                  RFC2217_CTL_FLOW_OUT &&
              !changed && l.flow_out == SERIAL_FLOW_RTSCTS,
          "17 (DCD flow): unsupported, answer shows what is in effect");
    CHECK(rfc2217_control_request(18, &l, &ctl, &changed) ==
                  RFC2217_CTL_FLOW_IN &&
              !changed,
          "18 (DTR flow): unsupported");
    CHECK(rfc2217_control_request(9, &l, &ctl, &changed) == RFC2217_CTL_DTR &&
              changed && !ctl.dtr &&
              rfc2217_control_value(RFC2217_CTL_DTR, &l, &ctl) == 9,
          "9: DTR off");
    CHECK(rfc2217_control_request(9, &l, &ctl, &changed) == RFC2217_CTL_DTR &&
              !changed,
          "DTR off again: no change");
    CHECK(rfc2217_control_request(7, &l, &ctl, &changed) == RFC2217_CTL_DTR &&
              rfc2217_control_value(RFC2217_CTL_DTR, &l, &ctl) == 9,
          "7: DTR query answers 9");
    CHECK(rfc2217_control_request(12, &l, &ctl, &changed) == RFC2217_CTL_RTS &&
              !ctl.rts &&
              rfc2217_control_value(RFC2217_CTL_RTS, &l, &ctl) == 12,
          "12: RTS off");
    CHECK(rfc2217_control_request(5, &l, &ctl, &changed) == RFC2217_CTL_BREAK &&
              ctl.brk &&
              rfc2217_control_value(RFC2217_CTL_BREAK, &l, &ctl) == 5,
          "5: BREAK on");
    CHECK(rfc2217_control_request(4, &l, &ctl, &changed) == RFC2217_CTL_BREAK &&
              rfc2217_control_value(RFC2217_CTL_BREAK, &l, &ctl) == 5,
          "4: BREAK query");
    CHECK(rfc2217_control_request(6, &l, &ctl, &changed) == RFC2217_CTL_BREAK &&
              !ctl.brk,
          "6: BREAK off");
    CHECK(rfc2217_control_request(1, &l, &ctl, &changed) ==
                  RFC2217_CTL_FLOW_OUT &&
              l.flow_out == SERIAL_FLOW_NONE && l.flow_in == SERIAL_FLOW_NONE,
          "1: no flow control either way");
    CHECK(rfc2217_control_request(42, &l, &ctl, &changed) ==
                  RFC2217_CTL_UNKNOWN &&
              !changed,
          "42: unknown");
}

static void test_modemstate(void)
{
    uint8_t s = rfc2217_modemstate(TIOCM_CD | TIOCM_CTS, 0);

    CHECK(s == (RFC2217_MODEM_CD | RFC2217_MODEM_CTS | RFC2217_MODEM_DELTA_CD |
                RFC2217_MODEM_DELTA_CTS),
          "CD and CTS came up: 0x%02x", s);
    s = rfc2217_modemstate(TIOCM_CD | TIOCM_CTS, s & 0xf0);
    CHECK(s == (RFC2217_MODEM_CD | RFC2217_MODEM_CTS), "no change: no deltas");
    s = rfc2217_modemstate(TIOCM_DSR, RFC2217_MODEM_RI | RFC2217_MODEM_CD);
    CHECK(s == (RFC2217_MODEM_DSR | RFC2217_MODEM_DELTA_DSR |
                RFC2217_MODEM_DELTA_CD | RFC2217_MODEM_RI_TRAILING),
          "RI trailing edge, CD dropped, DSR up: 0x%02x", s);
}

static void test_answer(void)
{
    uint8_t out[32];
    const uint8_t baud[] = {0, 0, 0x25, 0x80};
    const uint8_t want[] = {255, 250, 44, 101, 0, 0, 0x25, 0x80, 255, 240};
    size_t n = rfc2217_answer(out, sizeof(out), RFC2217_SET_BAUDRATE, baud, 4);

    CHECK(n == sizeof(want) && memcmp(out, want, n) == 0,
          "SET-BAUDRATE answer bytes");
    const uint8_t mask = 255;
    const uint8_t want_mask[] = {255, 250, 44, 111, 255, 255, 255, 240};
    n = rfc2217_answer(out, sizeof(out), RFC2217_SET_MODEMSTATE_MASK, &mask, 1);
    CHECK(n == sizeof(want_mask) && memcmp(out, want_mask, n) == 0,
          "mask 255 is escaped");
    CHECK(rfc2217_answer(out, 8, RFC2217_SET_BAUDRATE, baud, 4) == 0,
          "no room: 0");
}

/* What the relay reads back from a pty's termios is what was set: every
 * speed, size, parity, stop and flow combination survives the round trip
 * (1.5 stop bits is CSTOPB with 5 data bits). */
static void test_from_termios(void)
{
    static const uint32_t bauds[] = {50, 9600, 115200, 250000, 4000000};
    static const enum serial_flow flows[] = {
        SERIAL_FLOW_NONE, SERIAL_FLOW_XONXOFF, SERIAL_FLOW_RTSCTS};

    for (size_t b = 0; b < sizeof(bauds) / sizeof(bauds[0]); b++)
        for (uint8_t bits = 5; bits <= 8; bits++)
            for (int par = SERIAL_PARITY_NONE; par <= SERIAL_PARITY_SPACE;
                 par++)
                for (int stop = 0; stop < 2; stop++)
                    for (size_t f = 0; f < 3; f++) {
                        struct serial_line l = {
                            .baud = bauds[b],
                            .data_bits = bits,
                            .parity = (enum serial_parity)par,
                            .stop = stop == 0   ? SERIAL_STOP_1
                                    : bits == 5 ? SERIAL_STOP_1_5
                                                : SERIAL_STOP_2,
                            .flow_out = flows[f],
                            .flow_in = flows[f],
                        };
                        struct termios2 t;
                        struct serial_line back;
                        memset(&t, 0, sizeof(t));
                        serial_line_to_termios2(&l, &t);
                        serial_line_from_termios2(&t, &back);
                        CHECK(serial_line_equal(&l, &back),
                              "round trip of %u %u par %d stop %d flow %zu",
                              l.baud, bits, par, stop, f);
                    }
}

int main(void)
{
    test_line_parse();
    test_termios();
    test_from_termios();
    test_parse();
    test_line_requests();
    test_control();
    test_modemstate();
    test_answer();
    return check_summary();
}
