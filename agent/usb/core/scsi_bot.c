/* SPDX-License-Identifier: MIT */
/* USB mass storage Bulk-Only Transport and the SCSI commands access masking
 * must know. */
#include "scsi_bot.h"
#include "byteorder.h"

#include <string.h>

#define WP_BIT 0x80
#define MODE6_DEVICE_SPECIFIC 2  /* byte of the MODE SENSE(6) header */
#define MODE10_DEVICE_SPECIFIC 3 /* byte of the MODE SENSE(10) header */
#define CBW_MAX_CDB 16

bool bot_cbw_parse(const uint8_t *data, size_t len, struct bot_cbw *cbw)
{
    if (len != BOT_CBW_LEN || read_le32(data) != BOT_CBW_SIGNATURE)
        return false;
    cbw->tag = read_le32(data + 4);
    cbw->data_length = read_le32(data + 8);
    cbw->data_in = data[12] & BOT_FLAG_DATA_IN;
    cbw->lun = data[13] & 0x0f;
    cbw->cdb_len = data[14] & 0x1f;
    if (cbw->cdb_len < 1 || cbw->cdb_len > CBW_MAX_CDB)
        return false;
    memcpy(cbw->cdb, data + 15, CBW_MAX_CDB);
    return true;
}

void bot_csw_build(uint8_t out[BOT_CSW_LEN], uint32_t tag, uint32_t residue,
                   uint8_t status)
{
    put_le32(out, BOT_CSW_SIGNATURE);
    put_le32(out + 4, tag);
    put_le32(out + 8, residue);
    out[12] = status;
}

bool scsi_is_write_command(uint8_t opcode)
{
    switch (opcode) {
    case 0x04: /* FORMAT UNIT */
    case 0x0a: /* WRITE(6) */
    case 0x15: /* MODE SELECT(6): changes stored device parameters */
    case 0x2a: /* WRITE(10) */
    case 0x2e: /* WRITE AND VERIFY(10) */
    case 0x3b: /* WRITE BUFFER: can carry firmware */
    case 0x3f: /* WRITE LONG(10) */
    case 0x41: /* WRITE SAME(10) */
    case 0x42: /* UNMAP */
    case 0x55: /* MODE SELECT(10) */
    case 0x89: /* COMPARE AND WRITE */
    case 0x8a: /* WRITE(16) */
    case 0x8e: /* WRITE AND VERIFY(16) */
    case 0x93: /* WRITE SAME(16) */
    case 0x9c: /* WRITE ATOMIC(16) */
    case 0xaa: /* WRITE(12) */
    case 0xae: /* WRITE AND VERIFY(12) */ return true;
    default:
        /* SYNCHRONIZE CACHE (0x35, 0x91) is allowed: with no write ever
         * reaching the device it only flushes nothing. */
        return false;
    }
}

bool scsi_is_read_command(uint8_t opcode)
{
    switch (opcode) {
    case 0x08: /* READ(6) */
    case 0x28: /* READ(10) */
    case 0x2f: /* VERIFY(10): with BYTCHK it compares against the medium */
    case 0x3c: /* READ BUFFER */
    case 0x3e: /* READ LONG(10) */
    case 0x88: /* READ(16) */
    case 0x8f: /* VERIFY(16) */
    case 0xa8: /* READ(12) */
    case 0xaf: /* VERIFY(12) */ return true;
    default: return false;
    }
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
