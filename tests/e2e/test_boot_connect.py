#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""connect mode: the agent dials QEMU's usb-redir chardev; SeaBIOS boots the
redirected emulated disk; the HID boot keyboard stays local."""
import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    fx.add("disk", img)
    fx.add("keyboard")
    port = free_port()
    # Not paused: a paused QEMU sends no usbredir hello. SeaBIOS waits up to
    # 3 s for USB devices, and the agent connects within its backoff.
    qemu = Qemu(td, slots=[("server", port)], paused=False,
                usb_attach_wait_ms=3000)
    qemu.start()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 300\n")
    agent.wait_log(r'1209:4b42 "Emulated Keyboard" at 1-\d+: stays local '
                   r'\(default policy: HID boot keyboard\)')
    agent.wait_log(r'1209:0d15 "Emulated Disk" at 1-\d+: redirected rw to '
                   rf'127\.0\.0\.1:{port} \(slot 1\)')
    devices = qemu.wait_usb_devices(1)
    assert devices[0]["speed"] == 480, devices
    qemu.wait_stderr(r"attaching high speed device 1209:0d15")
    qemu.wait_boot(timeout=60)
    assert "1209:4b42" not in qemu.stderr_text(), "the keyboard reached QEMU"
    agent.stop()


harness.main(test)
