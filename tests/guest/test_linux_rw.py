#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""rw: a Linux guest reads the whole redirected emulated disk (its SHA-256
matches the image's), writes a 4 KiB block, and the block lands in the
fixture's image file at that offset while the rest stays unchanged.

Real agent, real usbemu, real QEMU; prints the guest-measured read
throughput.  REDIR_GUEST_DISK_MIB sets the disk size (default 64).
"""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from linuxguest import LinuxGuest, harness, proc_cpu_seconds  # noqa: E402
from harness import Agent, Fixture, diskimage, free_port  # noqa: E402

DISK_MIB = int(os.environ.get("REDIR_GUEST_DISK_MIB", "64"))
BLOCK = 4096
BLOCK_INDEX = 2503                  # in 4 KiB blocks: offset 10252288
OFFSET = BLOCK * BLOCK_INDEX
NEW_BLOCK = hashlib.shake_128(b"redir-agent linux rw block").digest(BLOCK)

GUEST_SCRIPT = r"""
dev=$(wait_disk 60) || fail "no USB disk appeared within 60 s"
result dev "$dev"
result disk_seen_uptime "$(now)"
bytes=$(disk_bytes "$dev")
result disk_bytes "$bytes"
result ro "$(cat /sys/block/$dev/ro)"
result max_sectors "$(cat /sys/block/$dev/device/max_sectors 2>/dev/null)"

t0=$(now)
dd if=/dev/$dev of=/tmp/disk.img bs=1M iflag=direct 2>/tmp/dd.err \
    || { cat /tmp/dd.err; fail "reading /dev/$dev failed"; }
t1=$(now)
result read_s "$(elapsed $t0 $t1)"
result read_mib_s "$(mib_per_s $bytes $(elapsed $t0 $t1))"
result read_size "$(stat -c %s /tmp/disk.img)"
t2=$(now)
result read_sha256 "$(sha256sum /tmp/disk.img | cut -d' ' -f1)"
result sha_s "$(elapsed $t2)"
rm -f /tmp/disk.img

t0=$(now)
dd if=/data/block.bin of=/dev/$dev bs=4096 seek=@BLOCK_INDEX@ count=1 \
    oflag=direct conv=notrunc,fsync 2>/tmp/dd.err \
    || { cat /tmp/dd.err; fail "writing /dev/$dev failed"; }
result write_s "$(elapsed $t0)"
result write done
result readback_sha256 "$(dd if=/dev/$dev bs=4096 skip=@BLOCK_INDEX@ count=1 \
    iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
"""


def test(td):
    img = td.file("disk.img")
    t = time.monotonic()
    image_sha = diskimage.make_disk_image(img, DISK_MIB)
    with open(img, "rb") as f:
        original = f.read()
    print(f"disk image: {DISK_MIB} MiB, sha256 {image_sha[:16]}..., made in "
          f"{time.monotonic() - t:.2f}s", flush=True)

    fx = Fixture(td).start()
    fx.add("disk", img)
    port = free_port()
    guest = LinuxGuest(td, GUEST_SCRIPT.replace("@BLOCK_INDEX@", str(BLOCK_INDEX)),
                       slots=[("server", port)],
                       files={"/data/block.bin": NEW_BLOCK})
    guest.start()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 300\n")
    agent.wait_log(r'1209:0d15 "Emulated Disk" at 1-\d+: redirected (rw )?to '
                   rf'127\.0\.0\.1:{port} \(slot 1\)', timeout=30)
    res = guest.wait_done(timeout=150).require_ok()
    agent_cpu = proc_cpu_seconds(agent.pid)

    # Reads: the whole disk, bit for bit.
    assert int(res["disk_bytes"]) == DISK_MIB << 20, res.results
    assert int(res["read_size"]) == DISK_MIB << 20, res.results
    assert res["read_sha256"] == image_sha, \
        f"guest read sha256 {res['read_sha256']} != image {image_sha}"
    # Write: landed at the offset, nothing else touched.
    assert res["write"] == "done", res.results
    assert res["readback_sha256"] == hashlib.sha256(NEW_BLOCK).hexdigest(), \
        "guest read back something else than it wrote"
    with open(img, "rb") as f:
        after = f.read()
    assert len(after) == len(original), (len(after), len(original))
    got = after[OFFSET:OFFSET + BLOCK]
    assert got == NEW_BLOCK, \
        f"block at {OFFSET} not written to the image (starts {got[:24]!r})"
    if after[:OFFSET] != original[:OFFSET] or \
            after[OFFSET + BLOCK:] != original[OFFSET + BLOCK:]:
        diff = next(i for i in range(len(after))
                    if not OFFSET <= i < OFFSET + BLOCK and after[i] != original[i])
        raise AssertionError(f"image changed outside the written block, first "
                             f"at byte {diff} (LBA {diff // 512})")
    assert res["rig.usb_resets"] == "0", f"guest saw USB resets:\n{res.tail()}"
    assert res["rig.io_errors"] == "0", f"guest saw I/O errors:\n{res.tail()}"

    agent.stop()
    print(f"guest read {DISK_MIB} MiB in {res['read_s']} s: "
          f"{res['read_mib_s']} MiB/s (guest-measured, max_sectors "
          f"{res['max_sectors']}); sha256 in guest {res['sha_s']} s; "
          f"4 KiB write {res['write_s']} s")
    print(f"boot to GUEST-START {res.boot_s:.1f}s, disk seen at guest uptime "
          f"{res['disk_seen_uptime']}s, GUEST-DONE {res.total_s:.1f}s; "
          f"agent CPU {agent_cpu:.2f}s; accel {' '.join(guest.accel_args)}")


harness.main(test)
