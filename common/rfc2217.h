/* SPDX-License-Identifier: MIT */
/* RFC 2217 (Telnet Com Port Control): the requests a client sends, their
 * meaning for a serial line, and the values the server reports back.
 * Pure functions, no I/O. */
#ifndef REDIR_RFC2217_H
#define REDIR_RFC2217_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serial_line.h"

enum rfc2217_command {
    RFC2217_SIGNATURE = 0,
    RFC2217_SET_BAUDRATE = 1,
    RFC2217_SET_DATASIZE = 2,
    RFC2217_SET_PARITY = 3,
    RFC2217_SET_STOPSIZE = 4,
    RFC2217_SET_CONTROL = 5,
    RFC2217_NOTIFY_LINESTATE = 6,
    RFC2217_NOTIFY_MODEMSTATE = 7,
    RFC2217_FLOWCONTROL_SUSPEND = 8,
    RFC2217_FLOWCONTROL_RESUME = 9,
    RFC2217_SET_LINESTATE_MASK = 10,
    RFC2217_SET_MODEMSTATE_MASK = 11,
    RFC2217_PURGE_DATA = 12,
};

/* The server answers command c with c + 100. */
#define RFC2217_SERVER(cmd) ((uint8_t)((cmd) + 100))

enum {                       /* PURGE-DATA values */
       RFC2217_PURGE_RX = 1, /* from the device, not yet sent to the client */
       RFC2217_PURGE_TX = 2, /* from the client, not yet sent to the device */
       RFC2217_PURGE_BOTH = 3,
};

enum { /* NOTIFY-MODEMSTATE bits */
       RFC2217_MODEM_CD = 0x80,
       RFC2217_MODEM_RI = 0x40,
       RFC2217_MODEM_DSR = 0x20,
       RFC2217_MODEM_CTS = 0x10,
       RFC2217_MODEM_DELTA_CD = 0x08,
       RFC2217_MODEM_RI_TRAILING = 0x04,
       RFC2217_MODEM_DELTA_DSR = 0x02,
       RFC2217_MODEM_DELTA_CTS = 0x01,
};

enum { /* NOTIFY-LINESTATE bits this server can observe (not timeouts) */
       RFC2217_LINE_SHIFT_EMPTY = 0x40,
       RFC2217_LINE_HOLDING_EMPTY = 0x20,
       RFC2217_LINE_BREAK = 0x10,
       RFC2217_LINE_FRAMING = 0x08,
       RFC2217_LINE_PARITY = 0x04,
       RFC2217_LINE_OVERRUN = 0x02,
       RFC2217_LINE_DATA_READY = 0x01,
       /* the port's receive errors, which a LINESTATE-MASK asks for */
       RFC2217_LINE_ERRORS = RFC2217_LINE_BREAK | RFC2217_LINE_FRAMING |
                             RFC2217_LINE_PARITY | RFC2217_LINE_OVERRUN,
};

/* A parsed client request: IAC SB COM-PORT-OPTION cmd value... IAC SE. */
struct rfc2217_request {
    uint8_t cmd;
    uint32_t value;      /* SET-BAUDRATE: 32 bits; others: 1 byte */
    bool has_value;      /* NOTIFY-* and SIGNATURE may come without */
    const uint8_t *text; /* SIGNATURE: the client's text, may be empty */
    size_t text_len;
};

/* Parses the payload after the option byte. Returns 0, or -1 if the
 * command is unknown or its value too short (the caller logs and drops
 * it: there is no sensible answer). Longer values are accepted, the
 * extra bytes ignored (some clients pad SET-BAUDRATE). */
int rfc2217_parse(const uint8_t *p, size_t len, struct rfc2217_request *req);

/* SET-BAUDRATE/DATASIZE/PARITY/STOPSIZE: applies a set request to *line.
 * Returns true if line changed its wish (a valid value, not a query, 0);
 * invalid values leave it alone, the answer then reports what is in
 * effect. */
bool rfc2217_line_request(const struct rfc2217_request *req,
                          struct serial_line *line);

/* The answer's value for a SET-BAUDRATE/DATASIZE/PARITY/STOPSIZE request
 * given the line in effect: 4 bytes (baud, network order) or 1. */
size_t rfc2217_line_value(uint8_t cmd, const struct serial_line *line,
                          uint8_t out[4]);

/* What a SET-CONTROL value is about. */
enum rfc2217_control_target {
    RFC2217_CTL_FLOW_OUT, /* 0-3, 17, 19 */
    RFC2217_CTL_BREAK,    /* 4-6 */
    RFC2217_CTL_DTR,      /* 7-9 */
    RFC2217_CTL_RTS,      /* 10-12 */
    RFC2217_CTL_FLOW_IN,  /* 13-16, 18 */
    RFC2217_CTL_UNKNOWN,
};

/* The modem-control outputs as the client last set them. */
struct serial_control {
    bool dtr, rts, brk;
};

/* Applies SET-CONTROL value v to line (flow) or ctl (DTR/RTS/BREAK).
 * Returns what it is about; *changed is true when it asked for a change.
 * Flow values 1-3 ("outbound/both") set both directions, 14-16 inbound
 * only. Queries, unknown values and flow modes Linux lacks (DCD, DSR, DTR
 * flow control) change nothing. */
enum rfc2217_control_target rfc2217_control_request(uint8_t v,
                                                    struct serial_line *line,
                                                    struct serial_control *ctl,
                                                    bool *changed);

/* The SET-CONTROL answer reporting target's state in effect. */
uint8_t rfc2217_control_value(enum rfc2217_control_target target,
                              const struct serial_line *line,
                              const struct serial_control *ctl);

/* NOTIFY-MODEMSTATE value from TIOCM_* bits and the bits last reported
 * (for the delta bits). */
uint8_t rfc2217_modemstate(int tiocm, uint8_t previous);

/* Writes IAC SB COM-PORT-OPTION SERVER(cmd) value IAC SE, IACs doubled.
 * Returns its length, or 0 if cap is too small. */
size_t rfc2217_answer(uint8_t *out, size_t cap, uint8_t cmd,
                      const uint8_t *value, size_t len);

#endif
