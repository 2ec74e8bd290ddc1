#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Two devices on two slots at once; a third waits for a slot and takes the
one that frees up when a device is unplugged."""
import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    ports = [free_port(), free_port()]
    qemu = Qemu(td, slots=[("server", p) for p in ports], paused=False)
    qemu.start()
    for p in ports:
        qemu.wait_listening(p)
    agent = Agent(td, fx)
    agent.start("[usb]\nconnect = " +
                ", ".join(f"127.0.0.1:{p}" for p in ports) + "\n")
    fx.add("disk", img)
    loop1, _ = fx.add("loopback")
    devices = qemu.wait_usb_devices(2)
    assert {d["speed"] for d in devices} == {480}, devices
    qemu.wait_stderr(r"attaching high speed device 1209:0d15")
    qemu.wait_stderr(r"attaching high speed device 1209:100b")

    at = agent.log_offset()
    fx.add("loopback")
    agent.wait_log(r'1209:100b "Emulated Loopback" at 1-3: all 2 slots are '
                   r'busy; waiting for one to free up', start_offset=at)
    fx.remove(loop1)
    agent.wait_log(r'1209:100b "Emulated Loopback" at 1-2: unplugged',
                   start_offset=at)
    agent.wait_log(r'1209:100b "Emulated Loopback" at 1-3: redirected rw to '
                   r'127\.0\.0\.1:\d+ \(slot \d\)', start_offset=at)
    qemu.wait_usb_devices(2)
    agent.stop()


harness.main(test)
