#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The built-in demo: an emulated USB disk is redirected by redir-agent into
a QEMU VM whose firmware boots from it; prints what the VM sees."""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
import harness  # noqa: E402
from harness import Agent, Fixture, Qemu, diskimage, free_port  # noqa: E402


def say(text):
    print(f"==> {text}", flush=True)


def show(title, lines):
    print(f"\n--- {title} ---")
    for line in lines:
        print(f"    {line}")


def demo(td):
    img = td.file("usb-disk.img")
    diskimage.make_disk_image(img, 16)
    say("emulating a USB disk (16 MiB, with a boot sector) and a USB keyboard")
    fx = Fixture(td).start()
    fx.add("disk", img)
    fx.add("keyboard")

    port = free_port()
    say(f"starting a QEMU VM with a usb-redir chardev on 127.0.0.1:{port}")
    qemu = Qemu(td, slots=[("server", port)], paused=False,
                usb_attach_wait_ms=3000)
    qemu.start()

    config = f"[usb]\nconnect = 127.0.0.1:{port}\n"
    say(f"starting redir-agent with:\n{config}")
    agent = Agent(td, fx)
    agent.start(config)
    agent.wait_log(r"redirected rw to")
    seconds = qemu.wait_boot(timeout=90)
    say(f"the VM booted from the redirected disk in {seconds:.1f} s")

    show("redir-agent log", agent.log_text().splitlines())
    show("VM: QEMU monitor 'info usb'",
         qemu.hmp("info usb").strip().splitlines())
    show("VM: QEMU usb-redir",
         [l for l in qemu.stderr_text().splitlines()
          if not l.startswith("#") and re.search(r"usb-redir|usbredirparser", l)])
    show("VM: firmware (SeaBIOS) log, USB and boot lines",
         [l for l in qemu.debugcon_text().splitlines()
          if re.search(r"USB MSC|XHCI port|Booting|REDIR-AGENT-DEMO", l)])

    say("SIGTERM to the agent: the disk goes back to the host")
    agent.stop()
    qemu.wait_usb_devices(0)
    show("redir-agent log, shutdown",
         agent.log_text().splitlines()[-3:])
    say("demo finished: the VM saw the thin client's USB disk and booted it")


if __name__ == "__main__":
    os.environ.setdefault("REDIR_QEMU_ACCEL", "tcg")
    harness.main(demo, name="demo")
