/* SPDX-License-Identifier: MIT */
/* The access mask on the storage endpoints: every CBW checked strictly and
 * judged by the access's allowlist, refused commands answered as a
 * write-protected disk answers them, invalid ones as the Bulk-Only spec
 * says (a stall until reset recovery), and the forwarded command followed
 * until its CSW so nothing but a CBW ever reaches the device as one. */
#include "byteorder.h"
#include "usb_mask_int.h"

#include <string.h>
#include <usbredirproto.h>

#define ASC_WRITE_PROTECTED 0x27, 0x00
#define ASC_ACCESS_DENIED 0x20, 0x02 /* NO ACCESS RIGHTS */
#define ASC_INVALID_OPCODE 0x20, 0x00

static bool is_ro(const struct usb_mask *m)
{
    return m->cfg.access == USB_ACCESS_RO;
}

void usb_mask__bot_reset(struct usb_mask *m)
{
    m->bot = BOT_IDLE;
    m->bot_left = 0;
    m->sense_pending = false;
    m->patch_armed = m->patch_pending = false;
}

static void reply_out_taken(struct usb_mask *m, uint8_t ep, uint32_t length)
{
    usb_mask__reply_bulk(m, ep, usb_redir_success, length, NULL, 0);
}

static void reply_csw(struct usb_mask *m, uint8_t ep, uint32_t residue,
                      uint8_t status)
{
    uint8_t csw[BOT_CSW_LEN];

    bot_csw_build(csw, m->bot_tag, residue, status);
    usb_mask__reply_bulk(m, ep, usb_redir_success, sizeof(csw), csw,
                         sizeof(csw));
}

static void set_sense(struct usb_mask *m, uint8_t key, uint8_t asc,
                      uint8_t ascq)
{
    m->sense_key = key;
    m->sense_asc = asc;
    m->sense_ascq = ascq;
}

/* A command the device never sees: its data stages are consumed or
 * answered empty, its CSW says status (failed, or phase error). */
static void refuse_command(struct usb_mask *m, const struct bot_cbw *cbw,
                           uint8_t status)
{
    m->stats.refused_commands++;
    m->bot_tag = cbw->tag;
    m->bot_residue = cbw->data_length;
    m->csw_status = status;
    if (cbw->data_length == 0)
        m->bot = BOT_REFUSE_CSW;
    else if (cbw->data_in)
        m->bot = BOT_REFUSE_IN;
    else {
        m->bot = BOT_REFUSE_OUT;
        m->bot_left = cbw->data_length;
    }
}

/* Not exactly a valid CBW: a device stalls both bulk pipes until the host's
 * reset recovery (Bulk-Only 6.6.1); the guest's driver does just that. */
static int stall_until_reset(struct usb_mask *m, uint8_t ep)
{
    m->stats.refused_commands++;
    m->bot = BOT_STALLED;
    m->sense_pending = false;
    usb_mask__reply_bulk(m, ep, usb_redir_stall, 0, NULL, 0);
    usb_mask__skip_packet(m);
    return 0;
}

/* REQUEST SENSE after one of our refusals: the answer is ours. */
static int answer_request_sense(struct usb_mask *m, const struct bot_cbw *cbw,
                                uint8_t ep)
{
    reply_out_taken(m, ep, BOT_CBW_LEN);
    m->bot_tag = cbw->tag;
    m->sense_alloc =
        cbw->cdb[4] < cbw->data_length ? cbw->cdb[4] : cbw->data_length;
    m->bot_residue = cbw->data_length;
    m->bot = cbw->data_length && cbw->data_in ? BOT_SENSE_DATA : BOT_SENSE_CSW;
    usb_mask__skip_packet(m);
    return 0;
}

/* An allowed opcode with a data stage the wrong way round (a READ that
 * would send data, an INQUIRY with OUT data): the device would be handed
 * bytes it must not see. A phase error, as the spec has it. */
static bool direction_ok(const struct bot_cbw *cbw, enum scsi_dir dir)
{
    if (cbw->data_length == 0)
        return true;
    return dir == (cbw->data_in ? SCSI_DIR_IN : SCSI_DIR_OUT);
}

static int refuse(struct usb_mask *m, const struct bot_cbw *cbw, uint8_t ep,
                  enum scsi_verdict verdict)
{
    if (verdict == SCSI_REFUSE_ILLEGAL)
        set_sense(m, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
    else if (is_ro(m))
        set_sense(m, SCSI_SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
    else
        set_sense(m, SCSI_SENSE_DATA_PROTECT, ASC_ACCESS_DENIED);
    reply_out_taken(m, ep, BOT_CBW_LEN);
    refuse_command(m, cbw, BOT_CSW_FAILED);
    usb_mask__skip_packet(m);
    return 0;
}

static int forward_command(struct usb_mask *m, const struct bot_cbw *cbw)
{
    uint8_t op = cbw->cdb[0];

    if (!cbw->data_in && cbw->data_length) {
        m->bot = BOT_DATA_OUT; /* wo only: ro allows no data-OUT */
        m->bot_left = cbw->data_length;
    } else {
        m->bot = BOT_PASS;
    }
    if (is_ro(m) && cbw->data_in && cbw->data_length &&
        (op == SCSI_MODE_SENSE_6 || op == SCSI_MODE_SENSE_10)) {
        m->mode_sense_opcode = op;
        m->patch_armed = true; /* its data IN request comes next */
    }
    return usb_mask__forward_packet(m);
}

/* A 31-byte OUT packet on the storage endpoint, where a CBW must be. */
int usb_mask__bot_cbw(struct usb_mask *m)
{
    const uint8_t *data = m->buf + m->header_len + m->type_len;
    uint8_t ep = m->buf[m->header_len];
    struct bot_cbw cbw;
    const char *why;
    enum scsi_dir dir = SCSI_DIR_NONE;

    if (bot_cbw_parse(data, BOT_CBW_LEN, m->max_lun, &cbw, &why) != BOT_CBW_OK)
        return stall_until_reset(m, ep);
    if (m->sense_pending && cbw.cdb[0] == SCSI_REQUEST_SENSE)
        return answer_request_sense(m, &cbw, ep);
    m->sense_pending = false;
    enum scsi_verdict verdict = scsi_command_verdict(cbw.cdb, is_ro(m), &dir);
    if (verdict != SCSI_ALLOW)
        return refuse(m, &cbw, ep, verdict);
    if (!direction_ok(&cbw, dir)) {
        reply_out_taken(m, ep, BOT_CBW_LEN);
        refuse_command(m, &cbw, BOT_CSW_PHASE_ERROR);
        usb_mask__skip_packet(m);
        return 0;
    }
    return forward_command(m, &cbw);
}

/* Data-OUT of a refused command: taken, as far as the guest can tell. */
static int consume_refused_out(struct usb_mask *m, uint8_t ep,
                               uint32_t data_len)
{
    reply_out_taken(m, ep, data_len);
    m->bot_left = data_len < m->bot_left ? m->bot_left - data_len : 0;
    if (m->bot_left == 0)
        m->bot = BOT_REFUSE_CSW;
    usb_mask__skip_packet(m);
    return 0;
}

/* Data-OUT of a forwarded write (wo). More than the CBW declared would
 * reach a device already done with its data stage, which a cheap one
 * takes as its next CBW: stalled instead. */
static int forward_data_out(struct usb_mask *m, uint8_t ep, uint32_t data_len)
{
    if (data_len > m->bot_left)
        return stall_until_reset(m, ep);
    m->bot_left -= data_len;
    if (m->bot_left == 0)
        m->bot = BOT_PASS;
    return usb_mask__forward_packet(m);
}

int usb_mask__bot_out(struct usb_mask *m, uint8_t ep, uint32_t data_len)
{
    switch (m->bot) {
    case BOT_STALLED:
        usb_mask__reply_bulk(m, ep, usb_redir_stall, 0, NULL, 0);
        usb_mask__skip_packet(m);
        return 0;
    case BOT_REFUSE_OUT: return consume_refused_out(m, ep, data_len);
    case BOT_DATA_OUT: return forward_data_out(m, ep, data_len);
    default:
        /* anywhere else an OUT packet is a CBW, or the guest is lying */
        if (data_len != BOT_CBW_LEN)
            return stall_until_reset(m, ep);
        usb_mask__peek(m, BOT_CBW_LEN);
        return 0;
    }
}

/* An IN request while we answer for the device; false if it is the
 * device's to answer. */
static bool answer_storage_in(struct usb_mask *m, uint8_t ep, uint32_t length)
{
    uint8_t sense[SCSI_SENSE_FIXED_LEN];
    size_t n;

    switch (m->bot) {
    case BOT_REFUSE_IN:
        usb_mask__reply_bulk(m, ep, usb_redir_success, 0, NULL, 0);
        m->bot = BOT_REFUSE_CSW;
        return true;
    case BOT_REFUSE_OUT: /* the guest cut its data stage short */
    case BOT_REFUSE_CSW:
        reply_csw(m, ep,
                  m->bot == BOT_REFUSE_OUT ? (uint32_t)m->bot_left
                                           : m->bot_residue,
                  m->csw_status);
        m->bot = BOT_IDLE;
        m->sense_pending = m->csw_status == BOT_CSW_FAILED;
        return true;
    case BOT_SENSE_DATA:
        scsi_sense_build(sense, m->sense_key, m->sense_asc, m->sense_ascq);
        n = m->sense_alloc < sizeof(sense) ? m->sense_alloc : sizeof(sense);
        n = n < length ? n : length;
        usb_mask__reply_bulk(m, ep, usb_redir_success, (uint32_t)n, sense, n);
        m->bot_residue -= (uint32_t)n;
        m->bot = BOT_SENSE_CSW;
        return true;
    case BOT_SENSE_CSW:
        reply_csw(m, ep, m->bot_residue, BOT_CSW_PASSED);
        m->bot = BOT_IDLE;
        m->sense_pending = false;
        return true;
    default: return false;
    }
}

int usb_mask__bot_in(struct usb_mask *m, uint8_t ep, uint32_t length)
{
    if (answer_storage_in(m, ep, length)) {
        usb_mask__skip_packet(m);
        return 0;
    }
    /* Only a forwarded command's data and CSW are the device's to send;
     * an IN request with none in flight (or in the middle of a data-OUT
     * stage) is one a device in that state stalls. */
    if (m->bot != BOT_PASS) {
        m->stats.refused_packets++;
        usb_mask__reply_bulk(m, ep, usb_redir_stall, 0, NULL, 0);
        usb_mask__skip_packet(m);
        return 0;
    }
    if (m->patch_armed) {
        m->patch_armed = false;
        m->patch_pending = true;
        m->patch_id = m->id;
    }
    return usb_mask__forward_packet(m);
}

/* A bulk packet the device sent on a storage endpoint: its CSW ends the
 * command; a stalled data-OUT stage is over; MODE SENSE gets WP (ro). */
void usb_mask__bot_to_guest(struct usb_mask *m, uint8_t ep, uint8_t status,
                            uint8_t *data, size_t len, uint64_t id)
{
    ep = EP_ADDRESS(ep);
    if (m->cfg.storage_out_ep && ep == EP_ADDRESS(m->cfg.storage_out_ep)) {
        if (m->bot == BOT_DATA_OUT && status != usb_redir_success) {
            m->bot = BOT_PASS;
            m->bot_left = 0;
        }
        return;
    }
    if (!m->cfg.storage_in_ep || ep != EP_ADDRESS(m->cfg.storage_in_ep))
        return;
    if (m->patch_pending && id == m->patch_id) {
        m->patch_pending = false;
        scsi_mode_sense_set_wp(m->mode_sense_opcode, data, len);
    }
    if (m->bot == BOT_PASS && status == usb_redir_success &&
        bot_is_csw(data, len))
        m->bot = BOT_IDLE;
}
