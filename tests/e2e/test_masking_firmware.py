#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Access masking against QEMU's firmware: with access=ro the disk still
boots (reads pass through the mask, the device is untouched); with
access=wo the firmware's read of the boot sector is refused at once and it
reports the disk unreadable instead of hanging."""
import hashlib

import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run(td, access):
    img = td.file(f"disk-{access}.img")
    diskimage.make_disk_image(img, 16)
    before = sha256(img)
    fx = Fixture(td, name=f"usbemu-{access}").start()
    fx.add("disk", img)
    port = free_port()
    qemu = Qemu(td, slots=[("server", port)], paused=False,
                usb_attach_wait_ms=3000, name=f"qemu-{access}")
    qemu.start()
    agent = Agent(td, fx, name=f"agent-{access}")
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\n"
                f"rule = allow class=08 access={access}\n")
    agent.wait_log(rf'"Emulated Disk" at 1-1: redirected {access} to')
    if access == "ro":
        qemu.wait_boot(timeout=60)
    else:
        harness.wait_for(lambda: "Boot failed: could not read the boot disk"
                         in qemu.debugcon_text(), 60,
                         "the firmware giving up on the unreadable disk")
        assert diskimage.DEFAULT_MESSAGE not in qemu.debugcon_text()
    agent.stop()
    qemu.stop()
    fx.stop()
    assert sha256(img) == before, "the disk changed"


def test(td):
    run(td, "ro")
    run(td, "wo")


harness.main(test)
