#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Unplug -> the peer gets a device disconnect and QEMU detaches; replug ->
redirected and attached again, with nobody touching the agent."""
import re

import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    port = free_port()
    qemu = Qemu(td, slots=[("server", port)], paused=False)
    qemu.start()
    qemu.wait_listening(port)
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 500\n")
    for round_ in range(3):
        dev_id, busport = fx.add("disk", img)
        qemu.wait_usb_devices(1)
        at = agent.log_offset()
        fx.remove(dev_id)
        agent.wait_log(rf'"Emulated Disk" at {busport}: unplugged; detaching it '
                       r'from peer', start_offset=at)
        qemu.wait_usb_devices(0)
    attaches = re.findall(r"attaching high speed device 1209:0d15",
                          qemu.stderr_text())
    assert len(attaches) == 3, attaches
    assert agent.alive()
    agent.stop()


harness.main(test)
