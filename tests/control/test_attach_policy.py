#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""attach against the policy and against the VM, with a real QEMU whose
usb-redir filter refuses the loopback device: a disk a deny rule keeps
local is not redirected by `attach` (refused, naming the rule), is by
`attach --force`, and `detach` gives it back; the loopback the VM's filter
refused shows as a "rejected" event, and `attach` says the VM refused it
instead of offering it again. Every step is in the events stream."""
import os

import controlharness as ch
from controlharness import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port

RULE = "rule = deny vid=1209 pid=0d15"


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    port = free_port()
    qemu = Qemu(td, slots=[("server", port)], paused=False,
                usbredir_filter="-1:0x1209:0x100b:-1:0|-1:-1:-1:-1:1")
    qemu.start()
    qemu.wait_listening(port)
    agent = Agent(td, fx)
    agent.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 300\n"
                f"{RULE}\n")
    harness.wait_for(lambda: os.path.exists(agent.control_socket), 20,
                     "the control socket")
    ev = ch.Events(agent, fx)

    # the VM's filter refuses the loopback: a "rejected" event, and
    # attach will not offer it again
    _, loop = fx.add("loopback")
    ev.wait("decision", port=loop, redirect=True)
    e = ev.wait("rejected", port=loop)
    print(f"rejected event: {e}")
    ch.refused(agent, fx, "attach", loop,
               why="the VM's usbredir filter refused it; replug it to offer "
                   "it again")

    # the deny rule keeps the disk local: attach says so, --force overrides
    at = ev.mark()
    _, disk = fx.add("disk", img)
    d = ev.wait("decision", at, port=disk, redirect=False)
    assert d["reason"] == "rule 1: vid=1209 pid=0d15", d
    answer = ch.refused(agent, fx, "attach", "1209:0d15",
                        why="the policy keeps it local")
    assert d["reason"] in answer["error"], (d, answer)
    assert "attach --force overrides" in answer["error"], answer
    assert qemu.info_usb() == [], "a refused attach redirected the disk"

    out = ch.ok(agent, fx, "attach", "1209:0d15", "--force")
    assert "attached" in out and "attach --force over" in out, out
    ev.wait("attached", at, port=disk)
    ev.wait("redirected", at, port=disk)
    qemu.wait_usb_devices(1)
    agent.wait_log(r"attached by the control socket \(forced against the "
                   r"policy\)")

    at = ev.mark()
    ch.ok(agent, fx, "detach", disk)
    ev.wait("detached", at, port=disk)
    qemu.wait_usb_devices(0)
    # held local now: a plain attach still meets the deny rule
    ch.refused(agent, fx, "attach", disk, why="the policy keeps it local")
    ev.close()
    agent.stop()


harness.main(test)
