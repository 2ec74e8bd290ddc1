#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""listen mode: QEMU's chardev dials the agent (reconnect=1); SeaBIOS boots
the redirected disk; QEMU restarted -> the device comes back by itself."""
import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    port = free_port()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nlisten = 127.0.0.1:{port}\n")
    agent.wait_log(rf"slot 1: listening on 127\.0\.0\.1:{port}")
    fx.add("disk", img)
    agent.wait_log(r'"Emulated Disk" at 1-\d+: waiting for the peer to connect')

    for run in ("first", "restarted"):
        at = agent.log_offset()
        qemu = Qemu(td, slots=[("client", port)], paused=False,
                    usb_attach_wait_ms=3000,
                    name=f"qemu-{run}")
        qemu.start()
        agent.wait_log(r'"Emulated Disk" at 1-\d+: redirected rw to 127\.0\.0\.1:'
                       r'\d+ \(slot 1\)', start_offset=at)
        qemu.wait_usb_devices(1)
        qemu.wait_boot(timeout=60)
        if run == "first":
            qemu.kill()
            agent.wait_log(r'"Emulated Disk" at 1-\d+: (peer .* closed the '
                           r'connection|connection to peer .* lost)',
                           start_offset=at)
    agent.stop()


harness.main(test)
