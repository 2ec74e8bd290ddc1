/* SPDX-License-Identifier: MIT */
/* The tty a CUSE serial target emulates, as pure state: its termios, the
 * modem lines, and what each tty ioctl (as the kernel hands it to a CUSE
 * server: command, integer argument, copied-in bytes) asks, answers and
 * changes. No I/O, no FUSE: the fuzzer and unit test drive it directly. */
#ifndef REDIR_CUSE_TTY_H
#define REDIR_CUSE_TTY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "serial_line.h"

/* The largest argument any handled ioctl reads or writes: a termios2
 * (44 bytes on every Linux architecture we build for) with headroom. */
#define CUSE_TTY_ARG_MAX 64
/* TCSBRK 0 and TCSBRKP 0: how long the kernel's tty layer breaks. */
#define CUSE_TTY_BREAK_MS 250
/* TCSBRKP N breaks for N deciseconds; the kernel caps nothing, we cap
 * at 10 s so a bad argument cannot hold the line in BREAK for hours. */
#define CUSE_TTY_BREAK_MAX_MS 10000

/* The modem lines, as TIOCM_* bits (the same values on every Linux). */
enum {
    CUSE_TTY_DTR = 0x002,
    CUSE_TTY_RTS = 0x004,
    CUSE_TTY_CTS = 0x020,
    CUSE_TTY_CD = 0x040,
    CUSE_TTY_RI = 0x080,
    CUSE_TTY_DSR = 0x100,
};

struct cuse_tty;

enum cuse_tty_verdict {
    CUSE_TTY_REPLY, /* ret, and out_len bytes of out for the caller */
    CUSE_TTY_RETRY, /* ask the kernel again with in_len/out_len at arg */
    CUSE_TTY_ERROR, /* fail with error (an errno value) */
};

/* What the ioctl changed, for the owner to forward. */
enum {
    CUSE_TTY_CHANGED_LINE = 1 << 0,  /* speed, framing or flow control */
    CUSE_TTY_CHANGED_MODEM = 1 << 1, /* DTR or RTS */
    CUSE_TTY_BREAK_ON = 1 << 2,      /* TIOCSBRK */
    CUSE_TTY_BREAK_OFF = 1 << 3,     /* TIOCCBRK */
    CUSE_TTY_BREAK_TIMED = 1 << 4,   /* TCSBRK(P): break for break_ms */
    CUSE_TTY_FLUSH_IN = 1 << 5,      /* drop what waits for the reader */
    CUSE_TTY_FLUSH_OUT = 1 << 6,     /* drop what the writer queued */
};

struct cuse_tty_call {
    unsigned int cmd;
    uintptr_t arg;       /* the caller's integer argument (or pointer) */
    const void *in;      /* copied-in bytes (after a retry) */
    size_t in_len;       /* how many */
    size_t out_cap;      /* how many may be copied out (after a retry) */
    size_t input_queue;  /* bytes waiting for the reader (FIONREAD) */
    size_t output_queue; /* bytes written, not yet sent on (TIOCOUTQ) */
};

struct cuse_tty_result {
    enum cuse_tty_verdict verdict;
    int error;
    int ret;
    size_t in_len, out_len; /* RETRY: the sizes to ask; REPLY: out_len */
    uint8_t out[CUSE_TTY_ARG_MAX];
    unsigned changed;
    unsigned break_ms;
};

/* A tty in raw mode at 9600 8N1, DTR and RTS low (nobody has it open). */
struct cuse_tty *cuse_tty_new(void);
void cuse_tty_free(struct cuse_tty *t);

/* One ioctl. Unknown commands fail with ENOTTY, a short argument with
 * EINVAL (EFAULT is the kernel's, for a bad pointer). */
void cuse_tty_ioctl(struct cuse_tty *t, const struct cuse_tty_call *c,
                    struct cuse_tty_result *r);

/* The line settings the termios says (the speed from c_ospeed for BOTHER,
 * else from the Bnnn code). */
void cuse_tty_line(const struct cuse_tty *t, struct serial_line *l);

/* The modem lines: DTR and RTS as the opener set them, CTS/DSR/CD/RI as
 * the far port last reported. */
int cuse_tty_modem(const struct cuse_tty *t);

/* First open raises DTR and RTS; last close drops them when HUPCL is set
 * (a real tty does both). Returns true if the lines changed. */
bool cuse_tty_opened(struct cuse_tty *t);
bool cuse_tty_closed(struct cuse_tty *t);

/* The far port's inputs (CUSE_TTY_CTS | DSR | CD | RI). */
void cuse_tty_set_inputs(struct cuse_tty *t, int bits);

/* The most bytes cuse_tty_save writes: what a restarted relay needs to
 * give the guest's open file its tty back (termios, window size, DTR/RTS,
 * how many have it open). */
#define CUSE_TTY_STATE_MAX 128

/* Writes t's state to buf (cap bytes); returns its length, 0 if cap is too
 * small. The layout is this build's: a tag names it. */
size_t cuse_tty_save(const struct cuse_tty *t, uint8_t *buf, size_t cap);

/* Takes back what cuse_tty_save wrote, possibly by another run or build
 * of the relay: false (t unchanged) unless the tag and length are this
 * build's and the contents sane. */
bool cuse_tty_restore(struct cuse_tty *t, const uint8_t *buf, size_t len);

/* Whether cmd only reads the tty (TCGETS, TIOCMGET, FIONREAD, ...):
 * nothing a restarted relay would need can have changed. */
bool cuse_tty_only_reads(unsigned int cmd);

/* Whether cmd waits for the output written before it (tcdrain(),
 * TCSETSW, TCSETSF and their termios2 forms, TCSBRK(P)): what the owner
 * holds back for the agent goes on first. */
bool cuse_tty_drains(unsigned int cmd);

#endif
