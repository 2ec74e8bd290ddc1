/* SPDX-License-Identifier: MIT */
/* USB mass storage Bulk-Only Transport and SCSI as access masking needs
 * them: strict CBW checks, CSWs, sense data, and the allowlists of commands
 * a read-only or write-only disk serves. */
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
#define BOT_CSW_PHASE_ERROR 2
#define BOT_FLAG_DATA_IN 0x80
#define BOT_MAX_LUN 15

/* Class requests of the Bulk-Only interface. */
#define BOT_REQUEST_RESET 0xff
#define BOT_REQUEST_GET_MAX_LUN 0xfe

#define SCSI_REQUEST_SENSE 0x03
#define SCSI_MODE_SENSE_6 0x1a
#define SCSI_MODE_SENSE_10 0x5a
#define SCSI_SENSE_FIXED_LEN 18
#define SCSI_SENSE_ILLEGAL_REQUEST 0x05
#define SCSI_SENSE_DATA_PROTECT 0x07

struct bot_cbw {
    uint32_t tag;
    uint32_t data_length;
    bool data_in;
    uint8_t lun;
    uint8_t cdb_len;
    uint8_t cdb[16];
};

enum bot_cbw_check {
    BOT_CBW_OK,
    BOT_CBW_INVALID,        /* not 31 bytes, or no CBW signature */
    BOT_CBW_NOT_MEANINGFUL, /* reserved bits, LUN, CDB length */
};

/* Parses a CBW strictly (Bulk-Only 6.2): exactly 31 bytes, the signature,
 * no reserved bit set, LUN <= max_lun, bCBWCBLength 1..16 and at least the
 * length of its opcode's command group. *why says what is wrong. */
enum bot_cbw_check bot_cbw_parse(const uint8_t *data, size_t len,
                                 uint8_t max_lun, struct bot_cbw *cbw,
                                 const char **why);

void bot_csw_build(uint8_t out[BOT_CSW_LEN], uint32_t tag, uint32_t residue,
                   uint8_t status);

/* True if data is a CSW (13 bytes, signature). */
bool bot_is_csw(const uint8_t *data, size_t len);

enum scsi_dir {
    SCSI_DIR_NONE, /* no data phase */
    SCSI_DIR_IN,   /* device to host */
    SCSI_DIR_OUT,  /* host to device */
};

/* What a masked disk does with a command. */
enum scsi_verdict {
    SCSI_ALLOW,          /* forwarded to the device */
    SCSI_REFUSE_PROTECT, /* refused as a write-protected (ro) or read-
                            protected (wo) disk refuses: DATA PROTECT */
    SCSI_REFUSE_ILLEGAL, /* not on the allowlist: ILLEGAL REQUEST,
                            INVALID COMMAND OPERATION CODE */
};

/* The verdict on cdb under read-only (ro) or write-only access, and the
 * direction of its data phase when allowed. */
enum scsi_verdict scsi_command_verdict(const uint8_t *cdb, bool ro,
                                       enum scsi_dir *dir);

/* Fixed-format sense data, current error. */
void scsi_sense_build(uint8_t out[SCSI_SENSE_FIXED_LEN], uint8_t key,
                      uint8_t asc, uint8_t ascq);

/* Sets the write-protect bit (WP, bit 7 of the device-specific parameter)
 * in a MODE SENSE(6) or (10) reply. Returns true if the reply was long
 * enough to carry it. */
bool scsi_mode_sense_set_wp(uint8_t opcode, uint8_t *data, size_t len);

#endif
