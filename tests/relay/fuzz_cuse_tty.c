/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the CUSE tty's ioctl handling (relay/cuse_tty.c) fed
 * any command, integer argument and copied-in bytes of any length, as a
 * hostile or buggy program opening the relay's tty could send them. The
 * answers must stay within the sizes offered and the state readable; a
 * saved state read back (a restarted relay) is taken only as written. */
#include <asm/ioctls.h>
#include <asm/termbits.h> /* struct termios2, for TCGETS2 and kin */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cuse_tty.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Mostly the tty ioctls (0x54xx, and the _IOC-encoded termios2 ones),
 * where the handled commands live; else any 32 bits of the input. */
static unsigned int command(const uint8_t *p)
{
    static const unsigned int encoded[] = {TCGETS2, TCSETS2, TCSETSW2,
                                           TCSETSF2};
    uint32_t raw;

    memcpy(&raw, p, sizeof(raw));
    if (p[0] < 0x80)
        return 0x5400u | p[0];
    if (p[0] < 0xc0)
        return encoded[p[0] % 4];
    return raw;
}

static void one_call(struct cuse_tty *t, const uint8_t *p, size_t n)
{
    struct cuse_tty_call c = {0};
    struct cuse_tty_result r;
    char text[SERIAL_LINE_TEXT_MAX];
    struct serial_line l;

    c.cmd = command(p);
    memcpy(&c.arg, p + 4, sizeof(uint32_t));
    c.in_len = p[8] % (CUSE_TTY_ARG_MAX + 8);
    c.out_cap = p[9] % (CUSE_TTY_ARG_MAX + 8);
    c.input_queue = p[10];
    if (c.in_len > n)
        c.in_len = n;
    uint8_t *in = c.in_len ? malloc(c.in_len) : NULL;
    if (in)
        memcpy(in, p + 12, c.in_len);
    c.in = in;
    cuse_tty_ioctl(t, &c, &r);
    if (r.verdict == CUSE_TTY_RETRY &&
        (c.in_len || c.out_cap || r.in_len > CUSE_TTY_ARG_MAX ||
         r.out_len > CUSE_TTY_ARG_MAX || (r.in_len == 0 && r.out_len == 0)))
        abort(); /* a retry must ask for something, once, and not too much */
    if (r.verdict == CUSE_TTY_REPLY && r.out_len > c.out_cap)
        abort();
    if ((r.changed & CUSE_TTY_BREAK_TIMED) &&
        (r.break_ms == 0 || r.break_ms > CUSE_TTY_BREAK_MAX_MS))
        abort();
    free(in);
    cuse_tty_line(t, &l);
    serial_line_str(&l, text, sizeof(text));
    if (p[11] & 1)
        cuse_tty_opened(t);
    if (p[11] & 2)
        cuse_tty_closed(t);
    cuse_tty_set_inputs(t, p[11] << 3);
}

/* A state as a restarted relay reads it from the fd store (written by
 * any run, or by anyone who could put an fd there). The oracle: taken
 * whole or not at all (what was taken saves back to the same bytes), and
 * never with a modem line this tty does not have. Any termios is one an
 * ioctl could set, so that part is not judged. */
static void restore(struct cuse_tty *t, const uint8_t *p, size_t n)
{
    const int lines = CUSE_TTY_DTR | CUSE_TTY_RTS | CUSE_TTY_CTS | CUSE_TTY_CD |
                      CUSE_TTY_RI | CUSE_TTY_DSR;
    uint8_t back[CUSE_TTY_STATE_MAX];

    if (!cuse_tty_restore(t, p, n))
        return;
    if (cuse_tty_modem(t) & ~lines)
        abort();
    if (cuse_tty_save(t, back, sizeof(back)) != n || memcmp(back, p, n) != 0)
        abort();
}

/* An optional state first (a first byte of 0xff, a length byte, that many
 * bytes), then records of 12 header bytes and what follows as the
 * argument. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cuse_tty *t = cuse_tty_new();

    if (!t)
        return 0;
    if (size >= 2 && data[0] == 0xff) {
        size_t n = data[1] < size - 2 ? data[1] : size - 2;
        restore(t, data + 2, n);
        data += 2 + n;
        size -= 2 + n;
    }
    while (size >= 12) {
        size_t rest = size - 12;
        one_call(t, data, rest);
        size_t used = 12 + (data[8] % (CUSE_TTY_ARG_MAX + 8) < rest
                                ? data[8] % (CUSE_TTY_ARG_MAX + 8)
                                : rest);
        data += used;
        size -= used;
    }
    cuse_tty_free(t);
    return 0;
}
