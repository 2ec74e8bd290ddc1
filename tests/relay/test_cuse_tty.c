/* SPDX-License-Identifier: MIT */
/* Unit tests of the CUSE tty's ioctls (relay/cuse_tty.c): the retry that
 * names each argument's size, short and missing arguments, unknown
 * commands, what each setting, modem line and BREAK changes; the state
 * a restarted relay takes back. */
#include <asm/termios.h> /* the kernel ABI: TIOCM_*, termios2 */
#include <errno.h>
#include <string.h>

#include "../unit/check.h"
#include "cuse_tty.h"

static struct cuse_tty_result r;

/* One ioctl the way the kernel delivers it after the retry. */
static void call(struct cuse_tty *t, unsigned cmd, uintptr_t arg,
                 const void *in, size_t in_len, size_t out_cap)
{
    struct cuse_tty_call c = {.cmd = cmd,
                              .arg = arg,
                              .in = in,
                              .in_len = in_len,
                              .out_cap = out_cap,
                              .input_queue = 123,
                              .output_queue = 7};
    cuse_tty_ioctl(t, &c, &r);
}

static void get_termios2(struct cuse_tty *t, struct termios2 *out)
{
    call(t, TCGETS2, 0, NULL, 0, sizeof(*out));
    memcpy(out, r.out, sizeof(*out));
}

static void test_retry(struct cuse_tty *t)
{
    /* the first, unrestricted call carries no argument: name its size */
    call(t, TCGETS, 0x1000, NULL, 0, 0);
    CHECK(r.verdict == CUSE_TTY_RETRY && r.out_len == sizeof(struct termios) &&
              r.in_len == 0,
          "TCGETS retry %d %zu", r.verdict, r.out_len);
    call(t, TCSETS, 0x1000, NULL, 0, 0);
    CHECK(r.verdict == CUSE_TTY_RETRY && r.in_len == sizeof(struct termios) &&
              r.out_len == 0,
          "TCSETS retry");
    call(t, TCSETS2, 0x1000, NULL, 0, 0);
    CHECK(r.verdict == CUSE_TTY_RETRY && r.in_len == sizeof(struct termios2),
          "TCSETS2 retry");
    call(t, TIOCMSET, 0x1000, NULL, 0, 0);
    CHECK(r.verdict == CUSE_TTY_RETRY && r.in_len == sizeof(int), "TIOCMSET");
    call(t, FIONREAD, 0x1000, NULL, 0, 0);
    CHECK(r.verdict == CUSE_TTY_RETRY && r.out_len == sizeof(int), "FIONREAD");
    /* integer arguments need none */
    call(t, TCSBRK, 1, NULL, 0, 0);
    CHECK(r.verdict == CUSE_TTY_REPLY && r.changed == 0, "tcdrain");
    CHECK(r.in_len <= CUSE_TTY_ARG_MAX, "sizes in bounds");
}

static void test_bad_arguments(struct cuse_tty *t)
{
    uint8_t buf[CUSE_TTY_ARG_MAX] = {0};
    struct termios2 before, after;

    get_termios2(t, &before);
    call(t, TCSETS, 0, buf, 10, 0); /* short: no retry loop, no change */
    CHECK(r.verdict == CUSE_TTY_ERROR && r.error == EINVAL, "short TCSETS");
    call(t, TCSETS2, 0, buf, sizeof(struct termios), 0);
    CHECK(r.verdict == CUSE_TTY_ERROR && r.error == EINVAL, "short TCSETS2");
    get_termios2(t, &after);
    CHECK(memcmp(&before, &after, sizeof(before)) == 0, "changed anyway");
    call(t, TCGETS, 0, NULL, 0, 4);
    CHECK(r.verdict == CUSE_TTY_ERROR && r.error == EINVAL, "short TCGETS");
    call(t, TIOCMGET, 0, NULL, 0, 2);
    CHECK(r.verdict == CUSE_TTY_ERROR && r.error == EINVAL, "short TIOCMGET");
    call(t, TIOCMSET, 0, NULL, 0, 4); /* out room instead of an argument */
    CHECK(r.verdict == CUSE_TTY_ERROR && r.error == EINVAL, "TIOCMSET no in");
    call(t, TCFLSH, 7, NULL, 0, 0);
    CHECK(r.verdict == CUSE_TTY_ERROR && r.error == EINVAL, "TCFLSH 7");
    const unsigned unknown[] = {
        TIOCSTI, TIOCSCTTY, TIOCGSERIAL, TCXONC, TIOCMIWAIT, 0xdeadbeef, 0};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        call(t, unknown[i], 0, buf, sizeof(buf), sizeof(buf));
        CHECK(r.verdict == CUSE_TTY_ERROR && r.error == ENOTTY,
              "ioctl 0x%x: %d", unknown[i], r.verdict);
    }
}

static void set_cflag(struct cuse_tty *t, unsigned cmd, tcflag_t cflag,
                      uint32_t speed)
{
    struct termios2 tio;

    get_termios2(t, &tio);
    tio.c_cflag = (tio.c_cflag & ~(CBAUD | CSIZE | PARENB | PARODD | CMSPAR |
                                   CSTOPB | CIBAUD)) |
                  cflag;
    tio.c_ospeed = tio.c_ispeed = speed;
    call(t, cmd, 0, &tio,
         cmd == TCSETS || cmd == TCSETSW || cmd == TCSETSF
             ? sizeof(struct termios)
             : sizeof(struct termios2),
         0);
}

static void test_line(struct cuse_tty *t)
{
    struct serial_line l;

    cuse_tty_line(t, &l);
    CHECK(l.baud == 9600 && l.data_bits == 8 &&
              l.parity == SERIAL_PARITY_NONE && l.stop == SERIAL_STOP_1,
          "starts at 9600 8N1: %u %u", l.baud, l.data_bits);
    /* glibc's tcsetattr: TCSETS, the speed only as a Bnnn code */
    set_cflag(t, TCSETS, B9600 | CS7 | PARENB | CSTOPB, 0);
    cuse_tty_line(t, &l);
    CHECK(r.verdict == CUSE_TTY_REPLY && (r.changed & CUSE_TTY_CHANGED_LINE) &&
              l.baud == 9600 && l.data_bits == 7 &&
              l.parity == SERIAL_PARITY_EVEN && l.stop == SERIAL_STOP_2,
          "9600 7E2: %u %u %d %d", l.baud, l.data_bits, l.parity, l.stop);
    set_cflag(t, TCSETSW, B9600 | CS7 | PARENB | CSTOPB, 0);
    CHECK(r.verdict == CUSE_TTY_REPLY && r.changed == 0, "same again");
    set_cflag(t, TCSETS, B115200 | CS8, 0);
    cuse_tty_line(t, &l);
    CHECK(l.baud == 115200 && l.data_bits == 8 &&
              l.parity == SERIAL_PARITY_NONE,
          "115200 8N1: %u", l.baud);
    /* TCSETS2 with BOTHER: any speed, and mark/space parity */
    set_cflag(t, TCSETS2, BOTHER | CS8 | PARENB | CMSPAR | PARODD, 250000);
    cuse_tty_line(t, &l);
    CHECK(l.baud == 250000 && l.parity == SERIAL_PARITY_MARK, "BOTHER mark");
    set_cflag(t, TCSETS2, B4000000 | CS5 | PARENB | CMSPAR | CSTOPB, 0);
    cuse_tty_line(t, &l);
    CHECK(l.baud == 4000000 && l.data_bits == 5 &&
              l.parity == SERIAL_PARITY_SPACE && l.stop == SERIAL_STOP_1_5,
          "4M 5S1.5: %u", l.baud);
    set_cflag(t, TCSETSF, B1200 | CS8, 0);
    CHECK(r.changed == (CUSE_TTY_CHANGED_LINE | CUSE_TTY_FLUSH_IN), "TCSETSF");
    /* TCGETS reads back what was set, c_ospeed filled */
    struct termios2 tio;
    get_termios2(t, &tio);
    CHECK((tio.c_cflag & CBAUD) == B1200 && tio.c_ospeed == 1200 &&
              tio.c_ispeed == 1200,
          "read back %u", tio.c_ospeed);
}

static void test_modem(struct cuse_tty *t)
{
    int bits = TIOCM_DTR, got;

    CHECK(cuse_tty_modem(t) == 0, "lines low before any open");
    CHECK(cuse_tty_opened(t) && cuse_tty_modem(t) == (TIOCM_DTR | TIOCM_RTS),
          "first open raises DTR and RTS");
    CHECK(!cuse_tty_opened(t), "second open: no change");
    call(t, TIOCMSET, 0, &bits, sizeof(bits), 0);
    CHECK((r.changed & CUSE_TTY_CHANGED_MODEM) &&
              cuse_tty_modem(t) == TIOCM_DTR,
          "TIOCMSET DTR");
    bits = TIOCM_DTR;
    call(t, TIOCMBIC, 0, &bits, sizeof(bits), 0);
    CHECK(cuse_tty_modem(t) == 0, "TIOCMBIC");
    bits = TIOCM_RTS | TIOCM_CTS; /* an input cannot be set */
    call(t, TIOCMBIS, 0, &bits, sizeof(bits), 0);
    CHECK(cuse_tty_modem(t) == TIOCM_RTS, "TIOCMBIS");
    call(t, TIOCMBIS, 0, &bits, sizeof(bits), 0);
    CHECK(r.changed == 0, "no change, nothing to forward");
    cuse_tty_set_inputs(t, TIOCM_CTS | TIOCM_DSR | TIOCM_DTR);
    call(t, TIOCMGET, 0, NULL, 0, sizeof(int));
    memcpy(&got, r.out, sizeof(got));
    CHECK(r.out_len == sizeof(int) &&
              got == (TIOCM_RTS | TIOCM_CTS | TIOCM_DSR),
          "TIOCMGET 0x%x", got);
    CHECK(!cuse_tty_closed(t), "one opener left");
    CHECK(cuse_tty_closed(t) && !(cuse_tty_modem(t) & TIOCM_RTS),
          "last close drops the outputs (HUPCL)");
    CHECK(!cuse_tty_closed(t), "close without open");
}

static void test_break_flush_queues(struct cuse_tty *t)
{
    int n;

    call(t, TCSBRK, 0, NULL, 0, 0);
    CHECK(r.changed == CUSE_TTY_BREAK_TIMED && r.break_ms == 250, "TCSBRK 0");
    call(t, TCSBRKP, 1, NULL, 0, 0); /* glibc's tcsendbreak(fd, 1) */
    CHECK(r.changed == CUSE_TTY_BREAK_TIMED && r.break_ms == 100, "TCSBRKP 1");
    call(t, TCSBRKP, (uintptr_t)-1, NULL, 0, 0);
    CHECK(r.break_ms == CUSE_TTY_BREAK_MAX_MS, "capped: %u", r.break_ms);
    call(t, TIOCSBRK, 0, NULL, 0, 0);
    CHECK(r.changed == CUSE_TTY_BREAK_ON, "TIOCSBRK");
    call(t, TIOCCBRK, 0, NULL, 0, 0);
    CHECK(r.changed == CUSE_TTY_BREAK_OFF, "TIOCCBRK");
    call(t, TCFLSH, TCIOFLUSH, NULL, 0, 0);
    CHECK(r.changed == (CUSE_TTY_FLUSH_IN | CUSE_TTY_FLUSH_OUT), "TCIOFLUSH");
    call(t, FIONREAD, 0, NULL, 0, sizeof(int));
    memcpy(&n, r.out, sizeof(n));
    CHECK(n == 123, "FIONREAD %d", n);
    call(t, TIOCOUTQ, 0, NULL, 0, sizeof(int));
    memcpy(&n, r.out, sizeof(n));
    CHECK(n == 7, "TIOCOUTQ %d", n);
    unsigned short ws[4] = {24, 80, 0, 0}, back[4];
    call(t, TIOCSWINSZ, 0, ws, sizeof(ws), 0);
    call(t, TIOCGWINSZ, 0, NULL, 0, sizeof(back));
    memcpy(back, r.out, sizeof(back));
    CHECK(r.out_len == sizeof(back) && back[0] == 24 && back[1] == 80,
          "window size");
}

/* What makes the relay send the guest's held-back bytes first. */
static void test_drains(void)
{
    CHECK(cuse_tty_drains(TCSBRK) && cuse_tty_drains(TCSBRKP), "tcdrain");
    CHECK(cuse_tty_drains(TCSETSW) && cuse_tty_drains(TCSETSF) &&
              cuse_tty_drains(TCSETSW2) && cuse_tty_drains(TCSETSF2),
          "TCSETSW/TCSETSF wait for the output");
    CHECK(!cuse_tty_drains(TCSETS) && !cuse_tty_drains(TCSETS2) &&
              !cuse_tty_drains(TIOCMGET) && !cuse_tty_drains(TCGETS),
          "what QEMU polls or sets at once does not");
    /* what a restarted relay needs is saved after any other ioctl */
    CHECK(cuse_tty_only_reads(TIOCMGET) && cuse_tty_only_reads(TCGETS) &&
              cuse_tty_only_reads(TCGETS2) && cuse_tty_only_reads(FIONREAD),
          "getters only read");
    CHECK(!cuse_tty_only_reads(TCSETS) && !cuse_tty_only_reads(TIOCMSET) &&
              !cuse_tty_only_reads(TIOCMBIS) && !cuse_tty_only_reads(0x1234),
          "setters, and what is not known, may change the tty");
}

/* A restarted relay takes the state back (cuse_keep.c): the same line,
 * lines and opens; anything not written by this build is refused. Attack:
 * a stale or foreign fd-store entry must not become the guest's tty. */
static void test_save_restore(void)
{
    struct cuse_tty *a = cuse_tty_new(), *b = cuse_tty_new();
    uint8_t buf[CUSE_TTY_STATE_MAX], copy[CUSE_TTY_STATE_MAX];
    struct serial_line la, lb;
    size_t n;

    CHECK(a && b, "cuse_tty_new");
    if (!a || !b)
        return;
    cuse_tty_opened(a);
    set_cflag(a, TCSETS, B9600 | CS7 | PARENB | CSTOPB, 0);
    CHECK(cuse_tty_save(a, buf, 8) == 0, "too small a buffer: nothing");
    n = cuse_tty_save(a, buf, sizeof(buf));
    CHECK(n > 0 && n <= CUSE_TTY_STATE_MAX, "saved %zu bytes", n);
    CHECK(!cuse_tty_restore(b, buf, n - 1), "a short state is refused");
    memcpy(copy, buf, n);
    copy[0] ^= 1;
    CHECK(!cuse_tty_restore(b, copy, n), "another layout's tag is refused");
    memcpy(copy, buf, n);
    memset(copy + n - 4, 0xff, 4); /* the open count: absurd */
    CHECK(!cuse_tty_restore(b, copy, n), "an absurd open count is refused");
    cuse_tty_line(b, &lb);
    CHECK(lb.data_bits == 8 && cuse_tty_modem(b) == 0, "refused: unchanged");
    CHECK(cuse_tty_restore(b, buf, n), "this build's state is taken");
    cuse_tty_line(a, &la);
    cuse_tty_line(b, &lb);
    CHECK(lb.baud == 9600 && lb.data_bits == 7 &&
              lb.parity == SERIAL_PARITY_EVEN && lb.stop == SERIAL_STOP_2,
          "9600 7E2 back: %u %u", lb.baud, lb.data_bits);
    CHECK(cuse_tty_modem(b) == (TIOCM_DTR | TIOCM_RTS), "DTR/RTS back");
    CHECK(cuse_tty_closed(b) && cuse_tty_modem(b) == 0,
          "the open count back: the last close drops DTR/RTS");
    cuse_tty_free(a);
    cuse_tty_free(b);
}

int main(void)
{
    struct cuse_tty *t = cuse_tty_new();

    CHECK(t != NULL, "cuse_tty_new");
    if (!t)
        return 1;
    test_retry(t);
    test_bad_arguments(t);
    test_line(t);
    test_modem(t);
    test_break_flush_queues(t);
    test_drains();
    test_save_restore();
    cuse_tty_free(t);
    return check_summary();
}
