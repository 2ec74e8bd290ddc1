/* SPDX-License-Identifier: MIT */
/* Serial line settings (speed, framing, flow control): parsed from the
 * config, changed by RFC 2217 clients, turned into a raw-mode termios2. */
#ifndef REDIR_SERIAL_LINE_H
#define REDIR_SERIAL_LINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_BAUD_MIN 50       /* the slowest rate termios has a name for */
#define SERIAL_BAUD_MAX 20000000 /* fastest USB-serial chips: 12-20 Mbaud */
#define SERIAL_LINE_TEXT_MAX 48  /* "4000000 8N1.5 rtscts/xonxoff" and more */

enum serial_parity {
    SERIAL_PARITY_NONE,
    SERIAL_PARITY_ODD,
    SERIAL_PARITY_EVEN,
    SERIAL_PARITY_MARK,
    SERIAL_PARITY_SPACE,
};

enum serial_stop {
    SERIAL_STOP_1,
    SERIAL_STOP_2,
    SERIAL_STOP_1_5, /* a UART sends 1.5 stop bits for CSTOPB with 5 bits */
};

enum serial_flow {
    SERIAL_FLOW_NONE,
    SERIAL_FLOW_XONXOFF,
    SERIAL_FLOW_RTSCTS,
};

struct serial_line {
    uint32_t baud;
    uint8_t data_bits; /* 5..8 */
    enum serial_parity parity;
    enum serial_stop stop;
    enum serial_flow flow_out; /* the device may pause us: IXON or CTS */
    enum serial_flow flow_in;  /* we may pause the device: IXOFF or RTS */
};

/* 9600 8N1, no flow control. */
void serial_line_default(struct serial_line *l);

/* Parses "BAUD" or "BAUD DPS" (data bits 5-8, parity N/E/O/M/S, stop bits
 * 1/1.5/2), e.g. "9600 8N1", "115200 7E2". Flow control is left as is.
 * Returns 0, or -1 with the reason in why. */
int serial_line_parse(const char *text, struct serial_line *l, char *why,
                      size_t why_len);

bool serial_line_equal(const struct serial_line *a,
                       const struct serial_line *b);

/* "none" | "rtscts" | "xonxoff" -> both directions; -1 if unknown. */
int serial_flow_parse(const char *text, enum serial_flow *flow);
const char *serial_flow_name(enum serial_flow flow);

/* For metrics labels: "none", "odd", ...; "1", "2", "1.5". */
const char *serial_parity_name(enum serial_parity parity);
const char *serial_stop_name(enum serial_stop stop);

/* For logs: "115200 8N1", "9600 7E2 rtscts". */
const char *serial_line_str(const struct serial_line *l, char *buf, size_t len);

/* Puts t into raw, 8-bit clean mode with l's speed, framing and flow
 * control. Flags unrelated to those (HUPCL, the line discipline) are kept.
 * Standard speeds use their Bnnn code, which every driver knows; others
 * BOTHER with c_ispeed/c_ospeed. Defined in terms of <asm/termbits.h>,
 * which must not meet glibc's <termios.h> in one file. */
struct termios2;
void serial_line_to_termios2(const struct serial_line *l, struct termios2 *t);

/* What t says of the line: its output speed (c_ospeed, which the kernel
 * fills for Bnnn speeds too), framing and flow control. */
void serial_line_from_termios2(const struct termios2 *t, struct serial_line *l);

#endif
