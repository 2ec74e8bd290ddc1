/* SPDX-License-Identifier: MIT */
/* scsi_cmd: sends one SCSI READ(10) or WRITE(10) with SG_IO and prints the
 * outcome; runs inside the test guest. */
#include <fcntl.h>
#include <scsi/sg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define BLOCK 512
#define TIMEOUT_MS 20000 /* a refused command must come back long before */

int main(int argc, char **argv)
{
    unsigned char cdb[10] = {0}, sense[32] = {0}, data[BLOCK];
    struct sg_io_hdr io;

    if (argc != 4 ||
        (strcmp(argv[2], "read10") != 0 && strcmp(argv[2], "write10") != 0)) {
        fprintf(stderr, "usage: scsi_cmd DEVICE read10|write10 LBA\n");
        return 2;
    }
    int write = argv[2][0] == 'w';
    unsigned long lba = strtoul(argv[3], NULL, 0);
    /* Read-only open: root may send any command (CAP_SYS_RAWIO), and a
     * write-protected disk cannot be opened for writing at all. */
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) {
        perror(argv[1]);
        return 1;
    }
    memset(data, 0x5a, sizeof(data));
    cdb[0] = write ? 0x2a : 0x28;
    cdb[2] = (unsigned char)(lba >> 24);
    cdb[3] = (unsigned char)(lba >> 16);
    cdb[4] = (unsigned char)(lba >> 8);
    cdb[5] = (unsigned char)lba;
    cdb[8] = 1; /* one block */
    memset(&io, 0, sizeof(io));
    io.interface_id = 'S';
    io.dxfer_direction = write ? SG_DXFER_TO_DEV : SG_DXFER_FROM_DEV;
    io.cmd_len = sizeof(cdb);
    io.cmdp = cdb;
    io.dxfer_len = sizeof(data);
    io.dxferp = data;
    io.mx_sb_len = sizeof(sense);
    io.sbp = sense;
    io.timeout = TIMEOUT_MS;
    if (ioctl(fd, SG_IO, &io) < 0) {
        perror("SG_IO");
        return 1;
    }
    printf("status=%d host=%d driver=%d key=%d asc=%d ascq=%d ms=%u\n",
           io.status, io.host_status, io.driver_status, sense[2] & 0x0f,
           sense[12], sense[13], io.duration);
    close(fd);
    return 0;
}
