/* SPDX-License-Identifier: MIT */
/* USB mass storage Bulk-Only Transport and the SCSI commands access masking
 * must know. */
#ifndef REDIR_SCSI_BOT_H
#define REDIR_SCSI_BOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOT_CBW_LEN 31
#define BOT_CSW_LEN 13
#define BOT_CBW_SIGNATURE 0x43425355u /* "USBC" */
#define BOT_CSW_SIGNATURE 0x53425355u /* "USBS" */
#define BOT_CSW_PASSED 0
#define BOT_CSW_FAILED 1
#define BOT_FLAG_DATA_IN 0x80

#define SCSI_REQUEST_SENSE 0x03
#define SCSI_MODE_SENSE_6 0x1a
#define SCSI_MODE_SENSE_10 0x5a
#define SCSI_SENSE_FIXED_LEN 18
#define SCSI_SENSE_DATA_PROTECT 0x07

struct bot_cbw {
    uint32_t tag;
    uint32_t data_length;
    bool data_in;
    uint8_t lun;
    uint8_t cdb_len;
    uint8_t cdb[16];
};

/* Parses a 31-byte CBW; false if it is not one (the device will judge). */
bool bot_cbw_parse(const uint8_t *data, size_t len, struct bot_cbw *cbw);

void bot_csw_build(uint8_t out[BOT_CSW_LEN], uint32_t tag, uint32_t residue,
                   uint8_t status);

/* Commands that change the medium or the device's stored state. */
bool scsi_is_write_command(uint8_t opcode);
/* Commands that return (or compare against) the medium's data. */
bool scsi_is_read_command(uint8_t opcode);

/* Fixed-format sense data, current error. */
void scsi_sense_build(uint8_t out[SCSI_SENSE_FIXED_LEN], uint8_t key,
                      uint8_t asc, uint8_t ascq);

/* Sets the write-protect bit (WP, bit 7 of the device-specific parameter)
 * in a MODE SENSE(6) or (10) reply. Returns true if the reply was long
 * enough to carry it. */
bool scsi_mode_sense_set_wp(uint8_t opcode, uint8_t *data, size_t len);

#endif
