#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""access=wo, seen by a Linux guest: the disk attaches (INQUIRY, READ
CAPACITY, MODE SENSE work), reads of the medium fail at once with DATA
PROTECT / ACCESS DENIED and no USB reset, and writes land in the image."""
import hashlib

import masked_disk
from masked_disk import harness

BLOCK_INDEX = 1234
NEW_BLOCK = hashlib.shake_128(b"redir-agent wo block").digest(4096)

SCRIPT = r"""
dev=$(wait_disk 60) || fail "no USB disk appeared within 60 s"
result size_bytes "$(disk_bytes $dev)"
t0=$(now)
dd if=/dev/$dev of=/dev/null bs=4096 count=1 skip=5 iflag=direct \
    2>/tmp/r.err && result dd_read ok || result dd_read failed
result dd_read_s "$(elapsed $t0)"
result sg_read "$(/bin/scsi_cmd /dev/$dev read10 7 2>&1)"
dd if=/data/block.bin of=/dev/$dev bs=4096 seek=@BLOCK@ count=1 \
    oflag=direct conv=notrunc,fsync 2>/tmp/w.err \
    && result dd_write ok || { cat /tmp/w.err; result dd_write failed; }
"""


def test(td):
    res, before, after, log = masked_disk.run(
        td, "wo", SCRIPT.replace("@BLOCK@", str(BLOCK_INDEX)),
        files={"/data/block.bin": NEW_BLOCK})
    assert int(res["size_bytes"]) == masked_disk.DISK_MIB << 20, res.results
    assert res["dd_read"] == "failed", res.results
    assert float(res["dd_read_s"]) < 2, res["dd_read_s"]
    sg = masked_disk.sense(res["sg_read"])
    assert sg["status"] == 2 and (sg["key"], sg["asc"], sg["ascq"]) == (7, 0x20, 2), \
        f"SCSI READ not refused: {res['sg_read']}"
    assert res["dd_write"] == "ok", res.results
    off = BLOCK_INDEX * 4096
    assert after[off:off + 4096] == NEW_BLOCK, "the write did not land"
    assert after[:off] == before[:off] and after[off + 4096:] == before[off + 4096:]
    assert res["rig.usb_resets"] == "0", f"USB resets:\n{res.dmesg()}"
    print(f"wo: read refused in {res['dd_read_s']} s ({res['sg_read']}); "
          f"4 KiB write landed; guest I/O errors logged: {res['rig.io_errors']}")


harness.main(test)
