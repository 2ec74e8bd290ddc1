#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""access=ro, seen by a Linux guest: the disk is reported write-protected,
reads work and match the image, a write fails at once (the kernel refuses
it; a raw SCSI WRITE pushed with SG_IO gets CHECK CONDITION, DATA PROTECT /
WRITE PROTECTED) with no USB reset, and the image is byte-for-byte
unchanged."""
import masked_disk
from masked_disk import harness

SCRIPT = r"""
dev=$(wait_disk 60) || fail "no USB disk appeared within 60 s"
# sd re-reads the write-protect flag on every open of a removable disk
# (sd_open -> sd_revalidate_disk clears the read-only bit, then sets it from
# MODE SENSE), so a read racing the partition scan's open can see 0 for the
# length of one MODE SENSE round trip: poll until the flag settles.
_t=50
while [ "$(cat /sys/block/$dev/ro)" != 1 ] && [ $_t -gt 0 ]; do
    usleep 100000; _t=$((_t - 1))
done
result ro "$(cat /sys/block/$dev/ro)"
result wp_msgs "$(dmesg | grep -c 'Write Protect is on')"
t0=$(now)
dd if=/dev/$dev of=/tmp/disk.img bs=1M iflag=direct 2>/tmp/dd.err \
    || { cat /tmp/dd.err; fail "reading /dev/$dev failed"; }
result read_mib_s "$(mib_per_s $(disk_bytes $dev) $(elapsed $t0))"
result read_sha256 "$(sha256sum /tmp/disk.img | cut -d' ' -f1)"
rm -f /tmp/disk.img
t0=$(now)
dd if=/dev/zero of=/dev/$dev bs=4096 count=1 seek=100 oflag=direct \
    2>/tmp/w.err && result dd_write ok || result dd_write failed
result dd_write_s "$(elapsed $t0)"
result dd_write_err "$(head -n1 /tmp/w.err)"
t0=$(now)
result sg_write "$(/bin/scsi_cmd /dev/$dev write10 2048 2>&1)"
result sg_write_s "$(elapsed $t0)"
result sg_read "$(/bin/scsi_cmd /dev/$dev read10 1 2>&1)"
"""


def test(td):
    res, before, after, log = masked_disk.run(td, "ro", SCRIPT)
    assert res["ro"] == "1", f"guest does not see a read-only disk: {res.results}"
    assert int(res["wp_msgs"]) >= 1, res.dmesg()
    assert res["read_sha256"] == masked_disk.sha256(before), "reads differ"
    assert res["dd_write"] == "failed", res.results
    assert float(res["dd_write_s"]) < 2, res["dd_write_s"]
    sg = masked_disk.sense(res["sg_write"])
    assert sg["status"] == 2 and (sg["key"], sg["asc"], sg["ascq"]) == (7, 0x27, 0), \
        f"SCSI WRITE not refused as write-protected: {res['sg_write']}"
    assert float(res["sg_write_s"]) < 2, res["sg_write_s"]
    rd = masked_disk.sense(res["sg_read"])
    assert rd["status"] == 0 and rd["key"] == 0, f"READ failed: {res['sg_read']}"
    assert res["rig.usb_resets"] == "0", f"USB resets:\n{res.dmesg()}"
    assert after == before, "the image changed"
    print(f"ro: guest read {res['read_mib_s']} MiB/s; dd write refused in "
          f"{res['dd_write_s']} s ({res['dd_write_err']}); SG_IO WRITE(10): "
          f"{res['sg_write']}")


harness.main(test)
