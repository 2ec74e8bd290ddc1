#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""connect mode: QEMU killed and started again -> the agent hands the
device back, reconnects with backoff, and QEMU boots from it again."""
import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    fx.add("disk", img)
    port = free_port()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 300\n")
    agent.wait_log(rf"cannot connect to 127\.0\.0\.1:{port}: connection refused")

    for run in ("first", "restarted"):
        at = agent.log_offset()
        qemu = Qemu(td, slots=[("server", port)], paused=False,
                    usb_attach_wait_ms=3000,
                    name=f"qemu-{run}")
        qemu.start()
        agent.wait_log(r'"Emulated Disk" at 1-1: redirected rw to 127\.0\.0\.1:'
                       rf'{port} \(slot 1\)',
                       start_offset=at)
        qemu.wait_usb_devices(1)
        qemu.wait_boot(timeout=60)
        if run == "first":
            at = agent.log_offset()
            qemu.kill()
            agent.wait_log(r'"Emulated Disk" at 1-1: (peer .* closed the '
                           r'connection|connection to peer .* lost)',
                           start_offset=at)
    assert agent.alive()
    agent.stop()


harness.main(test)
