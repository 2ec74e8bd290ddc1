/* SPDX-License-Identifier: MIT */
/* The tty a CUSE serial target emulates: termios, modem lines, and the
 * tty ioctls as a CUSE server receives them. Pure state, no I/O. Kept
 * apart from glibc's <termios.h>: the kernel's structures are the ABI. */
#include "cuse_tty.h"

#include <asm/ioctls.h>
#include <asm/termbits.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* struct winsize: four unsigned shorts (the ABI on every architecture). */
#define WINSIZE_LEN 8

struct cuse_tty {
    struct termios2 t;
    uint8_t winsize[WINSIZE_LEN];
    int lines; /* TIOCM_* */
    unsigned opens;
};

/* The Bnnn codes the kernel's tty_termios_baud_rate() knows. */
static const uint32_t low_rates[] = {0,    50,   75,    110,  134,  150,
                                     200,  300,  600,   1200, 1800, 2400,
                                     4800, 9600, 19200, 38400};
static const uint32_t high_rates[] = {
    0,       57600,   115200,  230400,  460800,  500000,  576000,  921600,
    1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000};

static uint32_t code_rate(tcflag_t code, uint32_t other)
{
    if (code == BOTHER)
        return other;
    if (code & CBAUDEX)
        return high_rates[code & 0xf];
    return low_rates[code & 0xf];
}

/* c_ospeed/c_ispeed as the kernel fills them after TCSETS(2). */
static void fill_speeds(struct termios2 *t, bool have_speeds)
{
    uint32_t out = have_speeds ? t->c_ospeed : 0;
    uint32_t in = have_speeds ? t->c_ispeed : 0;
    tcflag_t icode = (t->c_cflag >> IBSHIFT) & CBAUD;

    t->c_ospeed = code_rate(t->c_cflag & CBAUD, out);
    /* CIBAUD 0: the input speed is the output speed */
    t->c_ispeed = icode ? code_rate(icode, in) : t->c_ospeed;
}

struct cuse_tty *cuse_tty_new(void)
{
    struct cuse_tty *t = calloc(1, sizeof(*t));
    struct serial_line l;

    if (!t)
        return NULL;
    serial_line_default(&l);
    serial_line_to_termios2(&l, &t->t);
    t->t.c_cflag |= HUPCL;
    t->t.c_cc[VINTR] = 3;
    t->t.c_cc[VQUIT] = 28;
    t->t.c_cc[VERASE] = 127;
    t->t.c_cc[VKILL] = 21;
    t->t.c_cc[VEOF] = 4;
    t->t.c_cc[VSTART] = 17;
    t->t.c_cc[VSTOP] = 19;
    t->t.c_cc[VSUSP] = 26;
    return t;
}

void cuse_tty_free(struct cuse_tty *t) { free(t); }

void cuse_tty_line(const struct cuse_tty *t, struct serial_line *l)
{
    serial_line_from_termios2(&t->t, l);
}

int cuse_tty_modem(const struct cuse_tty *t) { return t->lines; }

/* Names the layout of a saved state: a relay of another build whose
 * struct differs must not take it (bump with any change to the struct). */
#define STATE_TAG 0x31544352u /* "RCT1" */
#define STATE_LEN (sizeof(uint32_t) + sizeof(struct cuse_tty))
/* Opens a restored state may count: no program holds this many, and a
 * count past it is not one we wrote. */
#define STATE_OPENS_MAX 65536
_Static_assert(STATE_LEN <= CUSE_TTY_STATE_MAX, "CUSE_TTY_STATE_MAX");

size_t cuse_tty_save(const struct cuse_tty *t, uint8_t *buf, size_t cap)
{
    uint32_t tag = STATE_TAG;

    if (cap < STATE_LEN)
        return 0;
    memcpy(buf, &tag, sizeof(tag));
    memcpy(buf + sizeof(tag), t, sizeof(*t));
    return STATE_LEN;
}

bool cuse_tty_restore(struct cuse_tty *t, const uint8_t *buf, size_t len)
{
    const int lines = CUSE_TTY_DTR | CUSE_TTY_RTS | CUSE_TTY_CTS |
                      CUSE_TTY_DSR | CUSE_TTY_CD | CUSE_TTY_RI;
    struct cuse_tty saved;
    uint32_t tag;

    if (len != STATE_LEN)
        return false;
    memcpy(&tag, buf, sizeof(tag));
    memcpy(&saved, buf + sizeof(tag), sizeof(saved));
    if (tag != STATE_TAG || (saved.lines & ~lines) ||
        saved.opens > STATE_OPENS_MAX)
        return false;
    *t = saved; /* any termios is one a caller could have set */
    return true;
}

void cuse_tty_set_inputs(struct cuse_tty *t, int bits)
{
    const int inputs = CUSE_TTY_CTS | CUSE_TTY_DSR | CUSE_TTY_CD | CUSE_TTY_RI;

    t->lines = (t->lines & ~inputs) | (bits & inputs);
}

static bool set_outputs(struct cuse_tty *t, int bits)
{
    const int outputs = CUSE_TTY_DTR | CUSE_TTY_RTS;
    int now = (t->lines & ~outputs) | (bits & outputs);
    bool changed = now != t->lines;

    t->lines = now;
    return changed;
}

bool cuse_tty_opened(struct cuse_tty *t)
{
    if (t->opens++)
        return false;
    return set_outputs(t, CUSE_TTY_DTR | CUSE_TTY_RTS);
}

bool cuse_tty_closed(struct cuse_tty *t)
{
    if (!t->opens || --t->opens || !(t->t.c_cflag & HUPCL))
        return false;
    return set_outputs(t, 0);
}

/* ---- one ioctl ---- */

static void fail(struct cuse_tty_result *r, int error)
{
    r->verdict = CUSE_TTY_ERROR;
    r->error = error;
}

/* The argument the caller points at, copied in: true when it is here,
 * else r says retry (first, unrestricted call) or EINVAL (too short). */
static bool have_in(const struct cuse_tty_call *c, size_t len,
                    struct cuse_tty_result *r)
{
    if (c->in_len >= len && c->in)
        return true;
    if (c->in_len == 0 && c->out_cap == 0) {
        r->verdict = CUSE_TTY_RETRY;
        r->in_len = len;
        r->out_len = 0;
    } else {
        fail(r, EINVAL);
    }
    return false;
}

/* Room to copy out len bytes: as have_in. */
static bool have_out(const struct cuse_tty_call *c, size_t len,
                     struct cuse_tty_result *r)
{
    if (c->out_cap >= len)
        return true;
    if (c->out_cap == 0 && c->in_len == 0) {
        r->verdict = CUSE_TTY_RETRY;
        r->in_len = 0;
        r->out_len = len;
    } else {
        fail(r, EINVAL);
    }
    return false;
}

static void reply_out(struct cuse_tty_result *r, const void *p, size_t len)
{
    memcpy(r->out, p, len);
    r->out_len = len;
}

static void reply_int(const struct cuse_tty_call *c, struct cuse_tty_result *r,
                      int v)
{
    if (have_out(c, sizeof(v), r))
        reply_out(r, &v, sizeof(v));
}

static void set_termios(struct cuse_tty *t, const struct cuse_tty_call *c,
                        size_t len, bool flush, struct cuse_tty_result *r)
{
    struct termios2 now = t->t;
    struct serial_line before, after;

    if (!have_in(c, len, r))
        return;
    memcpy(&now, c->in, len); /* a struct termios is termios2's prefix */
    fill_speeds(&now, len == sizeof(struct termios2));
    serial_line_from_termios2(&t->t, &before);
    serial_line_from_termios2(&now, &after);
    t->t = now;
    if (!serial_line_equal(&before, &after))
        r->changed |= CUSE_TTY_CHANGED_LINE;
    if (flush)
        r->changed |= CUSE_TTY_FLUSH_IN;
}

static void modem_ioctl(struct cuse_tty *t, const struct cuse_tty_call *c,
                        struct cuse_tty_result *r)
{
    int bits;

    if (!have_in(c, sizeof(bits), r))
        return;
    memcpy(&bits, c->in, sizeof(bits));
    if (c->cmd == TIOCMBIS)
        bits |= t->lines;
    else if (c->cmd == TIOCMBIC)
        bits = t->lines & ~bits;
    if (set_outputs(t, bits))
        r->changed |= CUSE_TTY_CHANGED_MODEM;
}

/* TCSBRK: 0 breaks for 250 ms, anything else only drains (tcdrain()).
 * TCSBRKP: N deciseconds, 0 as TCSBRK 0. */
static void break_ioctl(const struct cuse_tty_call *c,
                        struct cuse_tty_result *r)
{
    uintptr_t ms = CUSE_TTY_BREAK_MS;

    if (c->cmd == TCSBRK && c->arg != 0)
        return; /* tcdrain: what the guest wrote is already queued on */
    if (c->cmd == TCSBRKP && c->arg != 0)
        ms = c->arg <= CUSE_TTY_BREAK_MAX_MS / 100 ? c->arg * 100
                                                   : CUSE_TTY_BREAK_MAX_MS;
    r->changed |= CUSE_TTY_BREAK_TIMED;
    r->break_ms = (unsigned)ms;
}

static void flush_ioctl(const struct cuse_tty_call *c,
                        struct cuse_tty_result *r)
{
    switch (c->arg) {
    case TCIFLUSH: r->changed |= CUSE_TTY_FLUSH_IN; break;
    case TCOFLUSH: r->changed |= CUSE_TTY_FLUSH_OUT; break;
    case TCIOFLUSH: r->changed |= CUSE_TTY_FLUSH_IN | CUSE_TTY_FLUSH_OUT; break;
    default: fail(r, EINVAL);
    }
}

static void winsize_ioctl(struct cuse_tty *t, const struct cuse_tty_call *c,
                          struct cuse_tty_result *r)
{
    if (c->cmd == TIOCGWINSZ) {
        if (have_out(c, WINSIZE_LEN, r))
            reply_out(r, t->winsize, WINSIZE_LEN);
    } else if (have_in(c, WINSIZE_LEN, r)) {
        memcpy(t->winsize, c->in, WINSIZE_LEN);
    }
}

static size_t clamp_int(size_t n)
{
    return n > (size_t)0x7fffffff ? 0x7fffffff : n;
}

void cuse_tty_ioctl(struct cuse_tty *t, const struct cuse_tty_call *c,
                    struct cuse_tty_result *r)
{
    memset(r, 0, sizeof(*r));
    switch (c->cmd) {
    case TCGETS:
        if (have_out(c, sizeof(struct termios), r))
            reply_out(r, &t->t, sizeof(struct termios));
        break;
    case TCGETS2:
        if (have_out(c, sizeof(struct termios2), r))
            reply_out(r, &t->t, sizeof(struct termios2));
        break;
    case TCSETS:
    case TCSETSW:
    case TCSETSF:
        set_termios(t, c, sizeof(struct termios), c->cmd == TCSETSF, r);
        break;
    case TCSETS2:
    case TCSETSW2:
    case TCSETSF2:
        set_termios(t, c, sizeof(struct termios2), c->cmd == TCSETSF2, r);
        break;
    case TIOCMGET: reply_int(c, r, t->lines); break;
    case TIOCMSET:
    case TIOCMBIS:
    case TIOCMBIC: modem_ioctl(t, c, r); break;
    case TCSBRK:
    case TCSBRKP: break_ioctl(c, r); break;
    case TIOCSBRK: r->changed |= CUSE_TTY_BREAK_ON; break;
    case TIOCCBRK: r->changed |= CUSE_TTY_BREAK_OFF; break;
    case TCFLSH: flush_ioctl(c, r); break;
    case FIONREAD: reply_int(c, r, (int)clamp_int(c->input_queue)); break;
    case TIOCOUTQ: reply_int(c, r, (int)clamp_int(c->output_queue)); break;
    case TIOCGWINSZ:
    case TIOCSWINSZ: winsize_ioctl(t, c, r); break;
    default: fail(r, ENOTTY);
    }
}

bool cuse_tty_only_reads(unsigned int cmd)
{
    switch (cmd) {
    case TCGETS:
    case TCGETS2:
    case TIOCMGET:
    case FIONREAD:
    case TIOCOUTQ:
    case TIOCGWINSZ: return true;
    default: return false;
    }
}

bool cuse_tty_drains(unsigned int cmd)
{
    switch (cmd) {
    case TCSETSW:
    case TCSETSF:
    case TCSETSW2:
    case TCSETSF2:
    case TCSBRK:
    case TCSBRKP: return true;
    default: return false;
    }
}
