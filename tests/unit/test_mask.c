/* SPDX-License-Identifier: MIT */
/* Unit tests of bulk access masking: usbredir streams built byte by byte,
 * checked packet by packet. */
#include <stdlib.h>
#include <string.h>
#include <usbredirproto.h>

#include "check.h"
#include "scsi_bot.h"
#include "usb_mask.h"

#define OUT_EP 0x02
#define IN_EP 0x81
#define OTHER_OUT 0x03
#define OTHER_IN 0x84

struct capture {
    uint8_t fwd[1 << 16];
    size_t fwd_len;
    uint8_t *replies[64];
    size_t reply_len[64];
    size_t n_replies;
};

static int cap_forward(void *ctx, const uint8_t *d, size_t n)
{
    struct capture *c = ctx;
    if (c->fwd_len + n <= sizeof(c->fwd))
        memcpy(c->fwd + c->fwd_len, d, n);
    c->fwd_len += n;
    return 0;
}

static void cap_reply(void *ctx, uint8_t *p, size_t n)
{
    struct capture *c = ctx;
    if (c->n_replies < 64) {
        c->replies[c->n_replies] = p;
        c->reply_len[c->n_replies++] = n;
    } else {
        free(p);
    }
}

static const struct usb_mask_ops ops = {cap_forward, cap_reply};

static void capture_reset(struct capture *c)
{
    for (size_t i = 0; i < c->n_replies; i++)
        free(c->replies[i]);
    memset(c, 0, sizeof(*c));
}

/* ---- packet builders ---- */

struct stream {
    uint8_t b[1 << 16];
    size_t len;
    bool ids64, bulk32;
};

static void put32(struct stream *s, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        s->b[s->len++] = (uint8_t)(v >> (8 * i));
}

static void put16(struct stream *s, uint16_t v)
{
    s->b[s->len++] = (uint8_t)v;
    s->b[s->len++] = (uint8_t)(v >> 8);
}

static void hello(struct stream *s, bool ids64, bool bulk32)
{
    uint32_t caps = (ids64 ? 1u << usb_redir_cap_64bits_ids : 0) |
                    (bulk32 ? 1u << usb_redir_cap_32bits_bulk_length : 0);
    put32(s, usb_redir_hello);
    put32(s, 64 + 4);
    put32(s, 0);
    memset(s->b + s->len, 0, 64);
    memcpy(s->b + s->len, "test guest", 10);
    s->len += 64;
    put32(s, caps);
    s->ids64 = ids64;
    s->bulk32 = bulk32;
}

static void header(struct stream *s, uint32_t type, uint32_t len, uint64_t id)
{
    put32(s, type);
    put32(s, len);
    put32(s, (uint32_t)id);
    if (s->ids64)
        put32(s, (uint32_t)(id >> 32));
}

static void bulk(struct stream *s, uint64_t id, uint8_t ep, uint32_t length,
                 const uint8_t *data, size_t data_len)
{
    size_t blen = s->bulk32 ? 10 : 8;
    header(s, usb_redir_bulk_packet, (uint32_t)(blen + data_len), id);
    s->b[s->len++] = ep;
    s->b[s->len++] = 0;
    put16(s, (uint16_t)length);
    put32(s, 0);
    if (s->bulk32)
        put16(s, (uint16_t)(length >> 16));
    if (data_len)
        memcpy(s->b + s->len, data, data_len);
    s->len += data_len;
}

static void cbw(struct stream *s, uint64_t id, uint32_t tag, uint32_t len,
                bool in, uint8_t op, uint8_t cdb4)
{
    uint8_t c[31] = {0x55, 0x53, 0x42, 0x43};
    memcpy(c + 4, &tag, 4);
    memcpy(c + 8, &len, 4);
    c[12] = in ? 0x80 : 0;
    c[14] = 10;
    c[15] = op;
    c[19] = cdb4;
    bulk(s, id, OUT_EP, 31, c, sizeof(c));
}

/* The host's hello, as usbredirhost would send it. */
static void host_hello(struct usb_mask *m, bool ids64, bool bulk32)
{
    struct stream h = {0};
    hello(&h, ids64, bulk32);
    usb_mask_to_guest(m, h.b, h.len);
}

/* ---- reply checks ---- */

struct reply {
    uint32_t type;
    uint64_t id;
    uint8_t ep, status;
    uint32_t length;
    const uint8_t *data;
    size_t data_len;
};

static struct reply parse_reply(const struct capture *c, size_t i, bool ids64,
                                bool bulk32)
{
    const uint8_t *p = c->replies[i];
    size_t h = ids64 ? 16 : 12, b = bulk32 ? 10 : 8;
    struct reply r;
    memcpy(&r.type, p, 4);
    uint32_t lo, hi = 0;
    memcpy(&lo, p + 8, 4);
    if (ids64)
        memcpy(&hi, p + 12, 4);
    r.id = (uint64_t)hi << 32 | lo;
    r.ep = p[h];
    r.status = p[h + 1];
    r.length = (uint32_t)p[h + 2] | (uint32_t)p[h + 3] << 8;
    if (bulk32)
        r.length |= ((uint32_t)p[h + 8] | (uint32_t)p[h + 9] << 8) << 16;
    r.data = p + h + b;
    r.data_len = c->reply_len[i] - h - b;
    return r;
}

static void feed(struct usb_mask *m, const struct stream *s, size_t from,
                 bool bytewise)
{
    if (!bytewise) {
        CHECK(usb_mask_from_guest(m, s->b + from, s->len - from) == 0, "%s",
              usb_mask_error(m) ? usb_mask_error(m) : "forward failed");
        return;
    }
    for (size_t i = from; i < s->len; i++)
        CHECK(usb_mask_from_guest(m, s->b + i, 1) == 0, "byte %zu: %s", i,
              usb_mask_error(m) ? usb_mask_error(m) : "");
}

static struct usb_mask_config storage(enum usb_access access)
{
    return (struct usb_mask_config){.access = access,
                                    .storage_out_ep = OUT_EP,
                                    .storage_in_ep = IN_EP,
                                    .bulk_out_eps = 1u << 2 | 1u << 3,
                                    .bulk_in_eps = 1u << 1 | 1u << 4,
                                    .configuration = 1,
                                    .storage_interface = 0,
                                    .alts = {1}};
}

/* ro: a WRITE(10) with its data is refused like a write-protected disk. */
static void test_ro_write(bool ids64, bool bulk32, bool bytewise)
{
    static struct capture c;
    struct usb_mask *m = NULL;
    struct usb_mask_config cfg = storage(USB_ACCESS_RO);
    struct stream s = {0};
    uint8_t data[4096];

    capture_reset(&c);
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    hello(&s, ids64, bulk32);
    host_hello(m, true, true);
    size_t hello_len = s.len;
    cbw(&s, 10, 0xabc, 8192, false, 0x2a, 0);
    memset(data, 0xee, sizeof(data));
    bulk(&s, 11, OUT_EP, 4096, data, 4096);
    bulk(&s, 12, OUT_EP, 4096, data, 4096);
    bulk(&s, 13, IN_EP, 13, NULL, 0);       /* CSW */
    cbw(&s, 14, 0xabd, 18, true, 0x03, 18); /* REQUEST SENSE */
    bulk(&s, 15, IN_EP, 18, NULL, 0);
    bulk(&s, 16, IN_EP, 13, NULL, 0);
    feed(m, &s, 0, bytewise);

    CHECK(c.fwd_len == hello_len, "only the hello reaches the host, got %zu",
          c.fwd_len);
    CHECK(c.n_replies == 7, "%zu replies", c.n_replies);
    if (c.n_replies != 7) {
        usb_mask_free(m);
        return;
    }
    struct reply r = parse_reply(&c, 0, ids64, bulk32);
    CHECK(r.id == 10 && r.ep == OUT_EP && r.status == usb_redir_success &&
              r.length == 31 && r.data_len == 0,
          "CBW taken: id %llu len %u", (unsigned long long)r.id, r.length);
    r = parse_reply(&c, 2, ids64, bulk32);
    CHECK(r.id == 12 && r.length == 4096, "data taken");
    r = parse_reply(&c, 3, ids64, bulk32);
    CHECK(r.id == 13 && r.data_len == 13 && r.data[12] == 1, "CSW failed");
    CHECK(r.data_len == 13 && r.data[4] == 0xbc && r.data[5] == 0x0a &&
              r.data[9] == 0x20,
          "CSW tag and residue 8192");
    r = parse_reply(&c, 5, ids64, bulk32);
    CHECK(r.id == 15 && r.data_len == 18 && r.data[2] == 7 &&
              r.data[12] == 0x27 && r.data[13] == 0,
          "sense DATA PROTECT / WRITE PROTECTED");
    r = parse_reply(&c, 6, ids64, bulk32);
    CHECK(r.data_len == 13 && r.data[12] == 0 && r.data[4] == 0xbd,
          "REQUEST SENSE CSW passed");
    struct usb_mask_stats st;
    usb_mask_stats(m, &st);
    CHECK(st.refused_commands == 1, "refused %llu",
          (unsigned long long)st.refused_commands);
    usb_mask_free(m);
}

/* ro: reads pass untouched, MODE SENSE replies get the WP bit. */
static void test_ro_read_and_mode_sense(void)
{
    static struct capture c;
    struct usb_mask *m = NULL;
    struct usb_mask_config cfg = storage(USB_ACCESS_RO);
    struct stream s = {0};

    capture_reset(&c);
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    hello(&s, true, true);
    host_hello(m, true, true);
    cbw(&s, 20, 1, 512, true, 0x28, 0); /* READ(10) */
    bulk(&s, 21, IN_EP, 512, NULL, 0);
    bulk(&s, 22, IN_EP, 13, NULL, 0);
    cbw(&s, 23, 2, 192, true, 0x1a, 192); /* MODE SENSE(6) */
    bulk(&s, 24, IN_EP, 192, NULL, 0);
    feed(m, &s, 0, false);
    CHECK(c.fwd_len == s.len && memcmp(c.fwd, s.b, s.len) == 0,
          "everything forwarded unchanged (%zu of %zu)", c.fwd_len, s.len);
    CHECK(c.n_replies == 0, "no replies");

    /* The device's MODE SENSE(6) reply, as usbredirhost sends it. */
    struct stream r = {.ids64 = true, .bulk32 = true};
    uint8_t mode[4] = {3, 0, 0x00, 0};
    bulk(&r, 24, IN_EP, 4, mode, 4);
    usb_mask_to_guest(m, r.b, r.len);
    CHECK(r.b[r.len - 2] == 0x80, "WP bit set: %02x", r.b[r.len - 2]);
    /* Another reply with another id is left alone. */
    struct stream r2 = {.ids64 = true, .bulk32 = true};
    bulk(&r2, 25, IN_EP, 4, mode, 4);
    usb_mask_to_guest(m, r2.b, r2.len);
    CHECK(r2.b[r2.len - 2] == 0, "other reply untouched");
    usb_mask_free(m);
}

/* wo: READ refused (short data, failed CSW, ACCESS DENIED), WRITE passes. */
static void test_wo(void)
{
    static struct capture c;
    struct usb_mask *m = NULL;
    struct usb_mask_config cfg = storage(USB_ACCESS_WO);
    struct stream s = {0};
    uint8_t data[512] = {1};

    capture_reset(&c);
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    hello(&s, true, true);
    host_hello(m, true, true);
    size_t hello_len = s.len;
    cbw(&s, 30, 7, 512, true, 0x28, 0);
    bulk(&s, 31, IN_EP, 512, NULL, 0);
    bulk(&s, 32, IN_EP, 13, NULL, 0);
    cbw(&s, 33, 8, 18, true, 0x03, 18);
    bulk(&s, 34, IN_EP, 18, NULL, 0);
    bulk(&s, 35, IN_EP, 13, NULL, 0);
    size_t before_write = s.len;
    cbw(&s, 36, 9, 512, false, 0x2a, 0);
    bulk(&s, 37, OUT_EP, 512, data, 512);
    feed(m, &s, 0, false);
    CHECK(c.fwd_len == hello_len + (s.len - before_write),
          "hello and the write forwarded: %zu", c.fwd_len);
    CHECK(c.n_replies == 6, "%zu replies", c.n_replies);
    if (c.n_replies != 6) {
        usb_mask_free(m);
        return;
    }
    struct reply r = parse_reply(&c, 1, true, true);
    CHECK(r.id == 31 && r.data_len == 0 && r.status == 0, "short data");
    r = parse_reply(&c, 2, true, true);
    CHECK(r.data[12] == 1 && r.data[9] == 0x02, "CSW failed, residue 512");
    r = parse_reply(&c, 4, true, true);
    CHECK(r.data[2] == 7 && r.data[12] == 0x20 && r.data[13] == 0x02,
          "ACCESS DENIED");
    usb_mask_free(m);
}

/* Generic bulk endpoints: ro stalls OUT, wo stalls IN; others pass. */
static void test_generic(void)
{
    static struct capture c;
    struct usb_mask *m = NULL;
    struct usb_mask_config cfg = {.access = USB_ACCESS_RO,
                                  .bulk_out_eps = 1u << 3,
                                  .bulk_in_eps = 1u << 4,
                                  .configuration = 1,
                                  .storage_interface = 0xff};
    struct stream s = {0};
    uint8_t data[64] = {0};

    capture_reset(&c);
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    hello(&s, true, true);
    host_hello(m, true, true);
    size_t hello_len = s.len;
    bulk(&s, 40, OTHER_OUT, 64, data, 64);
    size_t in_at = s.len;
    bulk(&s, 41, OTHER_IN, 64, NULL, 0);
    feed(m, &s, 0, false);
    CHECK(c.n_replies == 1, "one stall");
    if (c.n_replies == 1) {
        struct reply r = parse_reply(&c, 0, true, true);
        CHECK(r.id == 40 && r.status == usb_redir_stall, "stall");
    }
    CHECK(c.fwd_len == hello_len + (s.len - in_at), "IN request forwarded");

    capture_reset(&c);
    cfg.access = USB_ACCESS_WO;
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    struct stream w = {0};
    hello(&w, true, true);
    host_hello(m, true, true);
    bulk(&w, 42, OTHER_OUT, 64, data, 64);
    bulk(&w, 43, OTHER_IN, 64, NULL, 0);
    feed(m, &w, 0, false);
    CHECK(c.n_replies == 1 && parse_reply(&c, 0, true, true).id == 43,
          "wo stalls the IN request");
    usb_mask_free(m);
}

static void test_malformed(void)
{
    static struct capture c;
    struct usb_mask *m = NULL;
    struct usb_mask_config cfg = storage(USB_ACCESS_RO);
    struct stream s = {0};

    capture_reset(&c);
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    header(&s, usb_redir_bulk_packet, 10, 1);
    CHECK(usb_mask_from_guest(m, s.b, s.len) < 0 && usb_mask_error(m) &&
              strstr(usb_mask_error(m), "not a hello"),
          "non-hello first packet refused");

    capture_reset(&c);
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    s = (struct stream){0};
    hello(&s, true, true);
    header(&s, usb_redir_bulk_packet, 0x7fffffff, 2);
    CHECK(usb_mask_from_guest(m, s.b, s.len) < 0 && usb_mask_error(m) &&
              strstr(usb_mask_error(m), "maximum"),
          "huge length refused");

    capture_reset(&c);
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    s = (struct stream){0};
    hello(&s, true, true);
    header(&s, usb_redir_bulk_packet, 3, 3); /* shorter than its header */
    s.len += 3;
    CHECK(usb_mask_from_guest(m, s.b, s.len) < 0 && usb_mask_error(m) &&
              strstr(usb_mask_error(m), "shorter"),
          "short bulk refused");

    /* A truncated CBW just waits for more. */
    capture_reset(&c);
    usb_mask_free(m);
    m = usb_mask_new(&cfg, &ops, &c);
    s = (struct stream){0};
    hello(&s, true, true);
    size_t hello_len = s.len;
    cbw(&s, 4, 1, 512, false, 0x2a, 0);
    CHECK(usb_mask_from_guest(m, s.b, s.len - 5) == 0, "partial");
    CHECK(c.fwd_len == hello_len && c.n_replies == 0, "nothing decided yet");
    capture_reset(&c);
    usb_mask_free(m);
}

static void control(struct stream *s, uint64_t id, uint8_t type, uint8_t req,
                    uint16_t value, uint16_t index, uint16_t length)
{
    header(s, usb_redir_control_packet, 10 + (type & 0x80 ? 0 : length), id);
    s->b[s->len++] = type & 0x80;
    s->b[s->len++] = req;
    s->b[s->len++] = type;
    s->b[s->len++] = 0;
    put16(s, value);
    put16(s, index);
    put16(s, length);
    if (!(type & 0x80)) {
        memset(s->b + s->len, 0xee, length);
        s->len += length;
    }
}

/* Attack: a WRITE(10) whose bCBWCBLength is 0 (cheap sticks ignore the
 * field). Not a meaningful CBW: a stall, and stalls on both pipes until
 * the guest's reset recovery; after it, reads work again. */
static void test_ro_invalid_cbw(void)
{
    static struct capture c;
    struct usb_mask *m = NULL;
    struct usb_mask_config cfg = storage(USB_ACCESS_RO);
    struct stream s = {0};

    capture_reset(&c);
    m = usb_mask_new(&cfg, &ops, &c);
    hello(&s, true, true);
    host_hello(m, true, true);
    size_t hello_len = s.len;
    uint8_t bad[31] = {0x55, 0x53, 0x42, 0x43, 1, 0, 0, 0,
                       0,    2,    0,    0,    0, 0, 0, 0x2a};
    bulk(&s, 50, OUT_EP, 31, bad, sizeof(bad));
    bulk(&s, 51, IN_EP, 13, NULL, 0);
    size_t before_reset = s.len;
    control(&s, 52, 0x21, 0xff, 0, 0, 0); /* Bulk-Only reset */
    cbw(&s, 53, 7, 512, true, 0x28, 0);
    feed(m, &s, 0, false);
    CHECK(c.n_replies == 2, "%zu replies", c.n_replies);
    for (size_t i = 0; i < c.n_replies && i < 2; i++)
        CHECK(parse_reply(&c, i, true, true).status == usb_redir_stall,
              "reply %zu is a stall", i);
    CHECK(c.fwd_len == hello_len + (s.len - before_reset),
          "the reset and the read reach the device, nothing before: %zu",
          c.fwd_len);
    usb_mask_free(m);
}

/* Attacks that are not SCSI: a vendor control request with data, another
 * configuration, bulk receiving on the storage endpoint, bulk streams, a
 * raw SET_INTERFACE. Each gets a stall-status answer; nothing is
 * forwarded. */
static void test_ro_other_paths(void)
{
    static struct capture c;
    struct usb_mask *m = NULL;
    struct usb_mask_config cfg = storage(USB_ACCESS_RO);
    struct stream s = {0};

    capture_reset(&c);
    m = usb_mask_new(&cfg, &ops, &c);
    hello(&s, true, true);
    host_hello(m, true, true);
    size_t hello_len = s.len;
    control(&s, 60, 0x40, 1, 0, 0, 64); /* vendor, data OUT */
    control(&s, 61, 0x01, 11, 1, 0, 0); /* raw SET_INTERFACE */
    header(&s, usb_redir_set_configuration, 1, 62);
    s.b[s.len++] = 2;
    header(&s, usb_redir_start_bulk_receiving, 10, 63);
    put32(&s, 0);
    put32(&s, 512);
    s.b[s.len++] = IN_EP;
    s.b[s.len++] = 4;
    header(&s, usb_redir_alloc_bulk_streams, 8, 64);
    put32(&s, 0x6);
    put32(&s, 4);
    feed(m, &s, 0, true);
    CHECK(c.fwd_len == hello_len, "nothing but the hello forwarded: %zu",
          c.fwd_len);
    CHECK(c.n_replies == 5, "%zu replies", c.n_replies);
    struct usb_mask_stats st;
    usb_mask_stats(m, &st);
    CHECK(st.refused_packets == 5, "%llu refused",
          (unsigned long long)st.refused_packets);
    usb_mask_free(m);
}

/* An allowed opcode the wrong way round (READ(10) with a data-OUT stage)
 * would hand the device bytes: a phase error, the data consumed. */
static void test_ro_phase_error(void)
{
    static struct capture c;
    struct usb_mask *m = NULL;
    struct usb_mask_config cfg = storage(USB_ACCESS_RO);
    struct stream s = {0};
    uint8_t data[512] = {0};

    capture_reset(&c);
    m = usb_mask_new(&cfg, &ops, &c);
    hello(&s, true, true);
    host_hello(m, true, true);
    size_t hello_len = s.len;
    cbw(&s, 70, 9, 512, false, 0x28, 0);
    bulk(&s, 71, OUT_EP, 512, data, 512);
    bulk(&s, 72, IN_EP, 13, NULL, 0);
    feed(m, &s, 0, false);
    CHECK(c.fwd_len == hello_len, "nothing forwarded");
    CHECK(c.n_replies == 3, "%zu replies", c.n_replies);
    if (c.n_replies == 3) {
        struct reply r = parse_reply(&c, 2, true, true);
        CHECK(r.data_len == 13 && r.data[12] == 2, "CSW phase error");
    }
    usb_mask_free(m);
}

/* Attack: an opcode that is a harmless MMC query on a CD drive and a
 * write on a disk (0x42 UNMAP, 0x51 XPWRITE(10)) must not pass under ro as
 * the query; every opcode the allowlist lets through under ro must be one
 * with no data-OUT stage. */
static void test_ro_opcode_collisions(void)
{
    uint8_t cdb[16] = {0};
    enum scsi_dir dir;

    cdb[0] = 0x42;
    CHECK(scsi_command_verdict(cdb, true, &dir) == SCSI_REFUSE_PROTECT,
          "0x42 (UNMAP on a disk) under ro");
    cdb[0] = 0x51;
    CHECK(scsi_command_verdict(cdb, true, &dir) != SCSI_ALLOW,
          "0x51 (XPWRITE(10) on a disk) under ro");
    for (unsigned op = 0; op < 256; op++) {
        cdb[0] = (uint8_t)op;
        dir = SCSI_DIR_NONE;
        if (scsi_command_verdict(cdb, true, &dir) == SCSI_ALLOW)
            CHECK(dir != SCSI_DIR_OUT,
                  "opcode 0x%02x allowed under ro "
                  "with a data-OUT stage",
                  op);
    }
}

int main(void)
{
    test_ro_opcode_collisions();
    for (int ids = 0; ids < 2; ids++)
        for (int b32 = 0; b32 < 2; b32++)
            for (int bytewise = 0; bytewise < 2; bytewise++)
                test_ro_write(ids, b32, bytewise);
    test_ro_read_and_mode_sense();
    test_wo();
    test_generic();
    test_malformed();
    test_ro_invalid_cbw();
    test_ro_other_paths();
    test_ro_phase_error();
    return check_summary();
}
