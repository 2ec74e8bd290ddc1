/* SPDX-License-Identifier: MIT */
/* Serial line settings (speed, framing, flow control): parsed from the
 * config, changed by RFC 2217 clients, turned into a raw-mode termios2. */
#include "serial_line.h"

#include <asm/termbits.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_util.h"

static const struct {
    uint32_t baud;
    tcflag_t code;
} standard_rates[] = {
    {50, B50},           {75, B75},           {110, B110},
    {134, B134},         {150, B150},         {200, B200},
    {300, B300},         {600, B600},         {1200, B1200},
    {1800, B1800},       {2400, B2400},       {4800, B4800},
    {9600, B9600},       {19200, B19200},     {38400, B38400},
    {57600, B57600},     {115200, B115200},   {230400, B230400},
    {460800, B460800},   {500000, B500000},   {576000, B576000},
    {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
    {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000},
    {3000000, B3000000}, {3500000, B3500000}, {4000000, B4000000},
};

static const char parity_letters[] = {
    [SERIAL_PARITY_NONE] = 'N',  [SERIAL_PARITY_ODD] = 'O',
    [SERIAL_PARITY_EVEN] = 'E',  [SERIAL_PARITY_MARK] = 'M',
    [SERIAL_PARITY_SPACE] = 'S',
};

bool serial_line_equal(const struct serial_line *a, const struct serial_line *b)
{
    return a->baud == b->baud && a->data_bits == b->data_bits &&
           a->parity == b->parity && a->stop == b->stop &&
           a->flow_out == b->flow_out && a->flow_in == b->flow_in;
}

void serial_line_default(struct serial_line *l)
{
    l->baud = 9600;
    l->data_bits = 8;
    l->parity = SERIAL_PARITY_NONE;
    l->stop = SERIAL_STOP_1;
    l->flow_out = SERIAL_FLOW_NONE;
    l->flow_in = SERIAL_FLOW_NONE;
}

static int parse_baud(const char *text, size_t len, uint32_t *baud)
{
    char digits[16];

    if (len == 0 || len >= sizeof(digits))
        return -1;
    memcpy(digits, text, len);
    digits[len] = '\0';
    return config_parse_u32(digits, SERIAL_BAUD_MIN, SERIAL_BAUD_MAX, baud);
}

/* "8N1", "7E2", "5N1.5" */
static int parse_framing(const char *text, size_t len, struct serial_line *l)
{
    const char *p;

    if (len < 3 || text[0] < '5' || text[0] > '8')
        return -1;
    p = memchr(parity_letters, toupper((unsigned char)text[1]),
               sizeof(parity_letters));
    if (!p)
        return -1;
    if (len == 3 && text[2] == '1')
        l->stop = SERIAL_STOP_1;
    else if (len == 3 && text[2] == '2')
        l->stop = SERIAL_STOP_2;
    else if (len == 5 && memcmp(text + 2, "1.5", 3) == 0)
        l->stop = SERIAL_STOP_1_5;
    else
        return -1;
    l->data_bits = (uint8_t)(text[0] - '0');
    l->parity = (enum serial_parity)(p - parity_letters);
    return 0;
}

int serial_line_parse(const char *text, struct serial_line *l, char *why,
                      size_t why_len)
{
    struct serial_line parsed = *l;
    const char *p = text + strspn(text, " \t");
    size_t baud_len = strcspn(p, " \t");
    const char *framing = p + baud_len + strspn(p + baud_len, " \t");
    size_t framing_len = strcspn(framing, " \t");

    if (parse_baud(p, baud_len, &parsed.baud) < 0) {
        snprintf(why, why_len,
                 "'%s': speed must be a number from %d to %d (e.g. 9600 8N1)",
                 text, SERIAL_BAUD_MIN, SERIAL_BAUD_MAX);
        return -1;
    }
    if (framing_len && parse_framing(framing, framing_len, &parsed) < 0) {
        snprintf(why, why_len,
                 "'%s': framing must be data bits 5-8, parity N/E/O/M/S, "
                 "stop bits 1/1.5/2 (e.g. 8N1)",
                 text);
        return -1;
    }
    if (framing[framing_len + strspn(framing + framing_len, " \t")]) {
        snprintf(why, why_len, "'%s': expected SPEED [FRAMING], e.g. 9600 8N1",
                 text);
        return -1;
    }
    *l = parsed;
    return 0;
}

static const char *const flow_names[] = {
    [SERIAL_FLOW_NONE] = "none",
    [SERIAL_FLOW_XONXOFF] = "xonxoff",
    [SERIAL_FLOW_RTSCTS] = "rtscts",
};

int serial_flow_parse(const char *text, enum serial_flow *flow)
{
    for (size_t i = 0; i < sizeof(flow_names) / sizeof(flow_names[0]); i++) {
        if (strcasecmp(text, flow_names[i]) == 0) {
            *flow = (enum serial_flow)i;
            return 0;
        }
    }
    return -1;
}

const char *serial_flow_name(enum serial_flow flow)
{
    return (unsigned)flow < sizeof(flow_names) / sizeof(flow_names[0])
               ? flow_names[flow]
               : "?";
}

const char *serial_parity_name(enum serial_parity parity)
{
    static const char *const names[] = {[SERIAL_PARITY_NONE] = "none",
                                        [SERIAL_PARITY_ODD] = "odd",
                                        [SERIAL_PARITY_EVEN] = "even",
                                        [SERIAL_PARITY_MARK] = "mark",
                                        [SERIAL_PARITY_SPACE] = "space"};

    return (unsigned)parity < sizeof(names) / sizeof(names[0]) ? names[parity]
                                                               : "?";
}

const char *serial_stop_name(enum serial_stop stop)
{
    static const char *const names[] = {[SERIAL_STOP_1] = "1",
                                        [SERIAL_STOP_2] = "2",
                                        [SERIAL_STOP_1_5] = "1.5"};

    return (unsigned)stop < sizeof(names) / sizeof(names[0]) ? names[stop]
                                                             : "?";
}

const char *serial_line_str(const struct serial_line *l, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%u %u%c%s", (unsigned)l->baud,
                     (unsigned)l->data_bits, parity_letters[l->parity],
                     serial_stop_name(l->stop));

    if (n < 0 || (size_t)n >= len)
        return buf;
    if (l->flow_out == l->flow_in && l->flow_out != SERIAL_FLOW_NONE)
        snprintf(buf + n, len - (size_t)n, " %s", flow_names[l->flow_out]);
    else if (l->flow_out != l->flow_in)
        snprintf(buf + n, len - (size_t)n, " out:%s in:%s",
                 flow_names[l->flow_out], flow_names[l->flow_in]);
    return buf;
}

static tcflag_t speed_code(uint32_t baud)
{
    for (size_t i = 0; i < sizeof(standard_rates) / sizeof(standard_rates[0]);
         i++)
        if (standard_rates[i].baud == baud)
            return standard_rates[i].code;
    return BOTHER;
}

static tcflag_t size_flag(uint8_t data_bits)
{
    switch (data_bits) {
    case 5: return CS5;
    case 6: return CS6;
    case 7: return CS7;
    default: return CS8;
    }
}

static tcflag_t parity_flags(enum serial_parity parity)
{
    switch (parity) {
    case SERIAL_PARITY_ODD: return PARENB | PARODD;
    case SERIAL_PARITY_EVEN: return PARENB;
    case SERIAL_PARITY_MARK: return PARENB | CMSPAR | PARODD;
    case SERIAL_PARITY_SPACE: return PARENB | CMSPAR;
    default: return 0;
    }
}

void serial_line_to_termios2(const struct serial_line *l, struct termios2 *t)
{
    /* cfmakeraw(), plus no input parity marking and no software flow
     * control unless asked: every byte passes through untouched. */
    t->c_iflag &=
        ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL |
                    IXON | IXOFF | IXANY | INPCK | IUCLC | IMAXBEL);
    t->c_oflag &= ~(tcflag_t)OPOST;
    t->c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t->c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CMSPAR | CSTOPB |
                              CRTSCTS | CBAUD | CIBAUD);
    /* CLOCAL: a missing carrier must neither block us nor hang us up. */
    t->c_cflag |= CREAD | CLOCAL | size_flag(l->data_bits) |
                  parity_flags(l->parity) | speed_code(l->baud);
    if (l->parity != SERIAL_PARITY_NONE)
        t->c_iflag |= INPCK;
    if (l->stop != SERIAL_STOP_1)
        t->c_cflag |= CSTOPB;
    if (l->flow_out == SERIAL_FLOW_XONXOFF)
        t->c_iflag |= IXON;
    if (l->flow_in == SERIAL_FLOW_XONXOFF)
        t->c_iflag |= IXOFF;
    if (l->flow_out == SERIAL_FLOW_RTSCTS || l->flow_in == SERIAL_FLOW_RTSCTS)
        t->c_cflag |= CRTSCTS;
    /* CIBAUD left at 0: the input speed follows the output speed. */
    t->c_ispeed = l->baud;
    t->c_ospeed = l->baud;
    t->c_cc[VMIN] = 1;
    t->c_cc[VTIME] = 0;
}

void serial_line_from_termios2(const struct termios2 *t, struct serial_line *l)
{
    static const uint8_t sizes[] = {5, 6, 7, 8}; /* CS5..CS8 >> 4 */
    tcflag_t c = t->c_cflag;

    l->baud = t->c_ospeed;
    l->data_bits = sizes[(c & CSIZE) >> 4];
    if (!(c & PARENB))
        l->parity = SERIAL_PARITY_NONE;
    else if (c & CMSPAR)
        l->parity = c & PARODD ? SERIAL_PARITY_MARK : SERIAL_PARITY_SPACE;
    else
        l->parity = c & PARODD ? SERIAL_PARITY_ODD : SERIAL_PARITY_EVEN;
    l->stop = !(c & CSTOPB)       ? SERIAL_STOP_1
              : l->data_bits == 5 ? SERIAL_STOP_1_5
                                  : SERIAL_STOP_2;
    l->flow_out = c & CRTSCTS         ? SERIAL_FLOW_RTSCTS
                  : t->c_iflag & IXON ? SERIAL_FLOW_XONXOFF
                                      : SERIAL_FLOW_NONE;
    l->flow_in = c & CRTSCTS          ? SERIAL_FLOW_RTSCTS
                 : t->c_iflag & IXOFF ? SERIAL_FLOW_XONXOFF
                                      : SERIAL_FLOW_NONE;
}
