/* SPDX-License-Identifier: MIT */
/* USB mass storage Bulk-Only Transport and SCSI as access masking needs
 * them: strict CBW checks, CSWs, sense data, and the allowlists of commands
 * a read-only or write-only disk serves. */
#include "scsi_bot.h"
#include "byteorder.h"

#include <string.h>

#define WP_BIT 0x80
#define MODE6_DEVICE_SPECIFIC 2  /* byte of the MODE SENSE(6) header */
#define MODE10_DEVICE_SPECIFIC 3 /* byte of the MODE SENSE(10) header */
#define CBW_MAX_CDB 16
#define CBW_FLAGS_RESERVED 0x7f
#define CBW_LUN_RESERVED 0xf0
#define CBW_CBLENGTH_RESERVED 0xe0
#define SERVICE_ACTION_IN_16 0x9e
#define SA_READ_CAPACITY_16 0x10
#define VERIFY_BYTCHK 0x02 /* VERIFY(10/12/16) byte 1: compare data sent */

/* The CDB length an opcode's group defines (SPC-4 4.2.5.1): a shorter
 * bCBWCBLength would leave the device reading bytes the guest did not
 * declare. Groups 3 and 6/7 (reserved, vendor) have no fixed length. */
static uint8_t cdb_group_length(uint8_t opcode)
{
    static const uint8_t by_group[8] = {6, 10, 10, 0, 16, 12, 0, 0};
    return by_group[opcode >> 5];
}

enum bot_cbw_check bot_cbw_parse(const uint8_t *data, size_t len,
                                 uint8_t max_lun, struct bot_cbw *cbw,
                                 const char **why)
{
    if (len != BOT_CBW_LEN || read_le32(data) != BOT_CBW_SIGNATURE) {
        *why = len != BOT_CBW_LEN ? "not 31 bytes" : "no CBW signature";
        return BOT_CBW_INVALID;
    }
    cbw->tag = read_le32(data + 4);
    cbw->data_length = read_le32(data + 8);
    cbw->data_in = data[12] & BOT_FLAG_DATA_IN;
    cbw->lun = data[13] & 0x0f;
    cbw->cdb_len = data[14] & 0x1f;
    memcpy(cbw->cdb, data + 15, CBW_MAX_CDB);
    *why = (data[12] & CBW_FLAGS_RESERVED)      ? "reserved flag bits set"
           : (data[13] & CBW_LUN_RESERVED)      ? "reserved LUN bits set"
           : (data[14] & CBW_CBLENGTH_RESERVED) ? "reserved length bits set"
           : cbw->lun > max_lun                 ? "LUN beyond the device's"
           : cbw->cdb_len < 1 || cbw->cdb_len > CBW_MAX_CDB
               ? "command block length not 1..16"
           : cbw->cdb_len < cdb_group_length(cbw->cdb[0])
               ? "command block shorter than its opcode"
               : NULL;
    return *why ? BOT_CBW_NOT_MEANINGFUL : BOT_CBW_OK;
}

void bot_csw_build(uint8_t out[BOT_CSW_LEN], uint32_t tag, uint32_t residue,
                   uint8_t status)
{
    put_le32(out, BOT_CSW_SIGNATURE);
    put_le32(out + 4, tag);
    put_le32(out + 8, residue);
    out[12] = status;
}

bool bot_is_csw(const uint8_t *data, size_t len)
{
    return len == BOT_CSW_LEN && read_le32(data) == BOT_CSW_SIGNATURE;
}

/* ---- the allowlists ---- */

struct scsi_command {
    uint8_t opcode;
    enum scsi_dir dir;
    bool ro, wo; /* allowed under read-only / write-only access */
    bool writes; /* refused under ro as DATA PROTECT (a write) */
};

/* Everything not listed is refused with ILLEGAL REQUEST: a device that
 * does not know a command answers just so, and the guest moves on. Only
 * what a write-protected disk (or CD/DVD drive) serves is listed; each
 * entry says why it is safe. "writes": refused under ro with DATA PROTECT
 * (the guest then knows the medium is write-protected, not broken). */
static const struct scsi_command commands[] = {
    /* state queries, no data: the sd driver's probe and polling */
    {0x00, SCSI_DIR_NONE, true, true, false}, /* TEST UNIT READY */
    {0x03, SCSI_DIR_IN, true, true, false},   /* REQUEST SENSE */
    {0x12, SCSI_DIR_IN, true, true, false},   /* INQUIRY: identity */
    /* parameters read back (MODE SENSE gets the WP bit under ro) */
    {0x1a, SCSI_DIR_IN, true, true, false}, /* MODE SENSE(6) */
    {0x5a, SCSI_DIR_IN, true, true, false}, /* MODE SENSE(10) */
    {0x4d, SCSI_DIR_IN, true, true, false}, /* LOG SENSE: counters */
    /* size of the medium, needed to mount it either way */
    {0x23, SCSI_DIR_IN, true, true, false}, /* READ FORMAT CAPACITIES */
    {0x25, SCSI_DIR_IN, true, true, false}, /* READ CAPACITY(10) */
    {0xa0, SCSI_DIR_IN, true, true, false}, /* REPORT LUNS */
    /* power and lock, no data, no medium change: eject, spin-down */
    {0x1b, SCSI_DIR_NONE, true, true, false}, /* START STOP UNIT */
    {0x1e, SCSI_DIR_NONE, true, true, false}, /* PREVENT ALLOW MEDIUM REM. */
    /* flushes what was written: nothing under ro, needed under wo */
    {0x35, SCSI_DIR_NONE, true, true, false}, /* SYNCHRONIZE CACHE(10) */
    {0x91, SCSI_DIR_NONE, true, true, false}, /* SYNCHRONIZE CACHE(16) */
    /* the medium's data: ro only */
    {0x08, SCSI_DIR_IN, true, false, false}, /* READ(6) */
    {0x28, SCSI_DIR_IN, true, false, false}, /* READ(10) */
    {0xa8, SCSI_DIR_IN, true, false, false}, /* READ(12) */
    {0x88, SCSI_DIR_IN, true, false, false}, /* READ(16) */
    /* VERIFY compares the medium with itself (or, with BYTCHK, with data
     * sent: refused below), reporting only status: ro only, since under
     * wo a comparison reveals the medium bit by bit */
    {0x2f, SCSI_DIR_NONE, true, false, false}, /* VERIFY(10) */
    {0xaf, SCSI_DIR_NONE, true, false, false}, /* VERIFY(12) */
    {0x8f, SCSI_DIR_NONE, true, false, false}, /* VERIFY(16) */
    /* CD/DVD drives (MMC): what reading a disc needs; their answers are
     * the disc's structure or content: ro only. Not listed, although
     * harmless on a drive: MMC opcodes a disk (SBC) reads as writes,
     * since the mask does not know which the device is. 0x42 READ
     * SUB-CHANNEL is UNMAP on a disk, 0x51 READ DISC INFORMATION is
     * XPWRITE(10); a data disc is read without either (audio position and
     * writer state), and a drive answers their refusal as "not
     * supported". */
    {0x43, SCSI_DIR_IN, true, false, false}, /* READ TOC/PMA/ATIP */
    {0x44, SCSI_DIR_IN, true, false, false}, /* READ HEADER */
    {0x52, SCSI_DIR_IN, true, false, false}, /* READ TRACK INFORMATION */
    {0xad, SCSI_DIR_IN, true, false, false}, /* READ DISC STRUCTURE */
    {0xbe, SCSI_DIR_IN, true, false, false}, /* READ CD */
    {0xb9, SCSI_DIR_IN, true, false, false}, /* READ CD MSF */
    /* drive features and events (media change): neither reads nor writes */
    {0x46, SCSI_DIR_IN, true, true, false}, /* GET CONFIGURATION */
    {0x4a, SCSI_DIR_IN, true, true, false}, /* GET EVENT STATUS NOTIF. */
    {0xbd, SCSI_DIR_IN, true, true, false}, /* MECHANISM STATUS */
    /* writes: wo only; under ro refused as a write-protected disk does */
    {0x0a, SCSI_DIR_OUT, false, true, true}, /* WRITE(6) */
    {0x2a, SCSI_DIR_OUT, false, true, true}, /* WRITE(10) */
    {0xaa, SCSI_DIR_OUT, false, true, true}, /* WRITE(12) */
    {0x8a, SCSI_DIR_OUT, false, true, true}, /* WRITE(16) */
    /* WRITE AND VERIFY checks what was just written: no medium data back */
    {0x2e, SCSI_DIR_OUT, false, true, true}, /* WRITE AND VERIFY(10) */
    {0xae, SCSI_DIR_OUT, false, true, true}, /* WRITE AND VERIFY(12) */
    {0x8e, SCSI_DIR_OUT, false, true, true}, /* WRITE AND VERIFY(16) */
    /* other writes of the medium or of stored state, refused under both
     * (wo keeps to plain writes) but under ro with DATA PROTECT */
    {0x04, SCSI_DIR_OUT, false, false, true}, /* FORMAT UNIT */
    {0x15, SCSI_DIR_OUT, false, false, true}, /* MODE SELECT(6) */
    {0x55, SCSI_DIR_OUT, false, false, true}, /* MODE SELECT(10) */
    {0x3b, SCSI_DIR_OUT, false, false, true}, /* WRITE BUFFER: firmware */
    {0x3f, SCSI_DIR_OUT, false, false, true}, /* WRITE LONG(10) */
    {0x41, SCSI_DIR_OUT, false, false, true}, /* WRITE SAME(10) */
    {0x93, SCSI_DIR_OUT, false, false, true}, /* WRITE SAME(16) */
    {0x42, SCSI_DIR_OUT, false, false, true}, /* UNMAP */
    {0x48, SCSI_DIR_OUT, false, false, true}, /* SANITIZE */
    {0x89, SCSI_DIR_OUT, false, false, true}, /* COMPARE AND WRITE */
    {0x9c, SCSI_DIR_OUT, false, false, true}, /* WRITE ATOMIC(16) */
};

static const struct scsi_command *find_command(uint8_t opcode)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].opcode == opcode)
            return &commands[i];
    return NULL;
}

/* READ CAPACITY(16) hides behind SERVICE ACTION IN(16), whose other
 * service actions (GET LBA STATUS, ...) are not on the list. */
static bool is_read_capacity_16(const uint8_t *cdb)
{
    return cdb[0] == SERVICE_ACTION_IN_16 &&
           (cdb[1] & 0x1f) == SA_READ_CAPACITY_16;
}

enum scsi_verdict scsi_command_verdict(const uint8_t *cdb, bool ro,
                                       enum scsi_dir *dir)
{
    const struct scsi_command *c = find_command(cdb[0]);
    bool verify = cdb[0] == 0x2f || cdb[0] == 0xaf || cdb[0] == 0x8f;

    if (is_read_capacity_16(cdb)) {
        *dir = SCSI_DIR_IN;
        return SCSI_ALLOW;
    }
    if (!c)
        return SCSI_REFUSE_ILLEGAL;
    *dir = c->dir;
    if (verify && (cdb[1] & VERIFY_BYTCHK)) /* sends data to compare */
        return ro ? SCSI_REFUSE_ILLEGAL : SCSI_REFUSE_PROTECT;
    if (ro ? c->ro : c->wo)
        return SCSI_ALLOW;
    if (ro)
        return c->writes ? SCSI_REFUSE_PROTECT : SCSI_REFUSE_ILLEGAL;
    return c->ro && !c->writes ? SCSI_REFUSE_PROTECT : SCSI_REFUSE_ILLEGAL;
}

void scsi_sense_build(uint8_t out[SCSI_SENSE_FIXED_LEN], uint8_t key,
                      uint8_t asc, uint8_t ascq)
{
    memset(out, 0, SCSI_SENSE_FIXED_LEN);
    out[0] = 0x70; /* current error, fixed format */
    out[2] = key;
    out[7] = SCSI_SENSE_FIXED_LEN - 8; /* additional sense length */
    out[12] = asc;
    out[13] = ascq;
}

bool scsi_mode_sense_set_wp(uint8_t opcode, uint8_t *data, size_t len)
{
    size_t at = opcode == SCSI_MODE_SENSE_6 ? MODE6_DEVICE_SPECIFIC
                                            : MODE10_DEVICE_SPECIFIC;
    if (len <= at)
        return false;
    data[at] |= WP_BIT;
    return true;
}
