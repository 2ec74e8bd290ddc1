#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A network outage between the thin client and the hypervisor: the agent
runs in its own network namespace, QEMU beyond a veth pair. The link goes
down for 35 s; the session rides it out on the same connection (no
teardown, no reconnect), and afterwards an unplug still reaches QEMU."""
import os
import subprocess
import time

import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, text=True)


class Namespace:
    """A netns with one veth link to the root namespace (10.213.N.0/24)."""

    def __init__(self):
        n = os.getpid() % 200 + 20
        self.name = f"rda{os.getpid()}"
        self.outer, self.inner = f"rdo{n}", f"rdi{n}"
        self.host_ip, self.agent_ip = f"10.213.{n}.1", f"10.213.{n}.2"

    def __enter__(self):
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "add", self.outer, "type", "veth", "peer", "name",
           self.inner)
        sh("ip", "link", "set", self.inner, "netns", self.name)
        sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.outer)
        sh("ip", "link", "set", self.outer, "up")
        self.run("ip", "addr", "add", f"{self.agent_ip}/24", "dev", self.inner)
        self.run("ip", "link", "set", self.inner, "up")
        self.run("ip", "link", "set", "lo", "up")
        return self

    def run(self, *args):
        sh("ip", "netns", "exec", self.name, *args)

    def link(self, up):
        self.run("ip", "link", "set", self.inner, "up" if up else "down")

    def __exit__(self, *exc):
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    with Namespace() as ns:
        fx = Fixture(td).start()
        dev_id, busport = fx.add("disk", img)
        port = free_port()
        qemu = Qemu(td, slots=[("server", port)], paused=False,
                    host=ns.host_ip)
        qemu.start()
        qemu.wait_listening(port)
        agent = Agent(td, fx, wrapper=["ip", "netns", "exec", ns.name])
        agent.start(f"[usb]\nconnect = {ns.host_ip}:{port}\n")
        agent.wait_log(rf'"Emulated Disk" at {busport}: redirected rw to '
                       rf'{ns.host_ip}:{port}')
        qemu.wait_usb_devices(1)

        at = agent.log_offset()
        ns.link(False)
        time.sleep(35)  # longer than a 25 s keepalive would allow
        ns.link(True)
        time.sleep(1)
        qemu.wait_usb_devices(1)
        fx.remove(dev_id)  # the disconnect must travel the old connection
        qemu.wait_usb_devices(0, timeout=30)
        after = agent.log_text(at)
        assert "lost" not in after and "closed the connection" not in after \
            and "connected to" not in after, after
        agent.stop()


harness.main(test)
