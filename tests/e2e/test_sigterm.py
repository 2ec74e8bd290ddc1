#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""SIGTERM: every device is handed back to the host and the agent exits 0
within 2 s. Proof of release: QEMU sees the detach, and a new agent can take
the device and boot QEMU from it again."""
import signal
import time

import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    fx.add("disk", img)
    fx.add("loopback")
    ports = [free_port(), free_port()]
    qemu = Qemu(td, slots=[("server", p) for p in ports], paused=False)
    qemu.start()
    for p in ports:
        qemu.wait_listening(p)
    config = ("[usb]\nconnect = " +
              ", ".join(f"127.0.0.1:{p}" for p in ports) + "\n")
    agent = Agent(td, fx)
    agent.start(config)
    qemu.wait_usb_devices(2)

    t0 = time.monotonic()
    agent.signal(signal.SIGTERM)
    rc = agent.wait_exit(5)
    took = time.monotonic() - t0
    assert rc == 0, f"exit code {rc}"
    assert took < 2.0, f"took {took:.2f}s to exit"
    log = agent.log_text()
    assert log.count("handing the device back to the host") == 2, log
    assert "exited cleanly" in log
    qemu.wait_usb_devices(0)

    second = Agent(td, fx, name="agent2")
    second.start(config)
    second.wait_log(r'"Emulated Disk" at 1-1: redirected')
    qemu.wait_usb_devices(2)
    second.stop()


harness.main(test)
