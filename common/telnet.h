/* SPDX-License-Identifier: MIT */
/* Telnet (RFC 854/855) as a serial bridge speaks it: an incremental decoder
 * that separates data from commands, option negotiation, and the encoders.
 * Pure state machines, no I/O. */
#ifndef REDIR_TELNET_H
#define REDIR_TELNET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    TELNET_SE = 240,
    TELNET_NOP = 241,
    TELNET_DM = 242,
    TELNET_BRK = 243,
    TELNET_IP = 244,
    TELNET_AO = 245,
    TELNET_AYT = 246,
    TELNET_EC = 247,
    TELNET_EL = 248,
    TELNET_GA = 249,
    TELNET_SB = 250,
    TELNET_WILL = 251,
    TELNET_WONT = 252,
    TELNET_DO = 253,
    TELNET_DONT = 254,
    TELNET_IAC = 255,
};

enum {
    TELNET_OPT_BINARY = 0,
    TELNET_OPT_ECHO = 1,
    TELNET_OPT_SGA = 3,
    TELNET_OPT_COM_PORT = 44, /* RFC 2217 */
};

/* Longest subnegotiation kept: RFC 2217 requests are at most 5 bytes, a
 * client's signature is a product string. Longer ones are cut (and
 * flagged), never a reason to buffer without bound. */
#define TELNET_SB_MAX 256

enum telnet_event_kind {
    TELNET_EV_NONE,      /* input ran out */
    TELNET_EV_NEGOTIATE, /* IAC WILL/WONT/DO/DONT option */
    TELNET_EV_COMMAND,   /* IAC BRK, IAC AYT, ... */
    TELNET_EV_SUBNEG,    /* IAC SB option ... IAC SE */
};

struct telnet_event {
    enum telnet_event_kind kind;
    uint8_t verb;        /* NEGOTIATE: WILL..DONT; COMMAND: the command */
    uint8_t option;      /* NEGOTIATE, SUBNEG */
    const uint8_t *data; /* SUBNEG: payload after the option, IACs undone;
                            valid until the next telnet_decode() */
    size_t len;
    bool truncated; /* SUBNEG payload was longer than TELNET_SB_MAX */
};

struct telnet_decoder {
    uint8_t state;
    uint8_t verb;
    bool strip_cr_nul; /* peer refused BINARY: its CR NUL means CR */
    bool after_cr;
    bool sb_has_option;
    bool sb_truncated;
    uint8_t sb_option;
    size_t sb_len;
    uint8_t sb[TELNET_SB_MAX];
};

void telnet_decoder_init(struct telnet_decoder *d);

/* Decodes in[0..in_len). Data bytes are written to out, which may be in
 * itself (the output never overtakes the input). Stops right after the
 * first complete command so the caller can act on it (and make room for
 * the answer) before decoding on. Returns the input bytes consumed; sets
 * *out_len to the data bytes written and *ev to the command, or to
 * TELNET_EV_NONE when the input ran out. Sequences may span calls. */
size_t telnet_decode(struct telnet_decoder *d, const uint8_t *in, size_t in_len,
                     uint8_t *out, size_t *out_len, struct telnet_event *ev);

/* Who may enable which option, and what is on: the RFC 1143 rules in
 * their simple form (no queue: we never change our mind mid-way). Only
 * options below 64 can be enabled; any other is refused. */
struct telnet_options {
    uint64_t us_allowed, him_allowed; /* we accept to enable these */
    uint64_t us_on, him_on;
    uint64_t us_asked, him_asked; /* we sent WILL / DO, no answer yet */
};

#define TELNET_OPTION_BIT(opt) (UINT64_C(1) << (opt))

/* Answers a received WILL/WONT/DO/DONT: writes the 3-byte reply (IAC verb
 * option) to reply and returns 3, or returns 0 when no reply is due (an
 * acknowledgement, or a request for a state already in force: answering
 * those would loop). */
size_t telnet_negotiate(struct telnet_options *o, uint8_t verb, uint8_t option,
                        uint8_t reply[3]);

/* Offers WILL option (us) or asks DO option (him); returns 3 with the
 * bytes, or 0 if already on or asked. */
size_t telnet_offer(struct telnet_options *o, uint8_t verb, uint8_t option,
                    uint8_t out[3]);

bool telnet_us(const struct telnet_options *o, uint8_t option);
bool telnet_him(const struct telnet_options *o, uint8_t option);

/* Doubles every IAC (0xff) of buf[0..len) in place; buf must have room for
 * len plus the number of 0xff bytes (2 * len always suffices). Returns the
 * new length. */
size_t telnet_escape_inplace(uint8_t *buf, size_t len);

/* Writes IAC SB option payload IAC SE with the payload's IACs doubled.
 * Returns the length, or 0 if it does not fit in cap. */
size_t telnet_subneg(uint8_t *out, size_t cap, uint8_t option,
                     const uint8_t *payload, size_t len);

#endif
