#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Runtime control as a VDI client uses it, against two real QEMU VMs: a
user logs in (target VM A) and their disk appears in A; another user logs in
(target VM B) and the disk moves to B without a replug; detach gives it back
to the desk, attach sends it again; the keyboard stays local unless
--force (and allow_force = no refuses that); target --clear and --reset;
the events stream shows each step; refused commands say why (bad lists,
unknown devices, a user who may not change state). Prints the time from
"target" to the device in the new VM."""
import json
import os
import time

import harness
from agentctl import Events, ok, run
from harness import Agent, Fixture, Qemu, diskimage, free_port, wait_for

NOBODY = 65534


def refused(agent, fx, *args, why, rc=1, **kw):
    r = run(agent, fx, *args, **kw)
    assert r.returncode == rc, r
    assert why in r.stderr + r.stdout, (why, r)
    return r


def device(agent, fx, port):
    st = json.loads(ok(agent, fx, "status", "--json"))
    return next(d for d in st["usb"]["devices"] if d["port"] == port)


def retarget(agent, fx, ev, vm, port, busport):
    """target -> the device in vm; seconds until the agent reports it
    redirected and until QEMU lists it."""
    at = ev.mark()
    t0 = time.monotonic()
    out = ok(agent, fx, "target", f"127.0.0.1:{port}")
    assert f"targets: 127.0.0.1:{port}" in out, out
    ev.wait("redirected", at, port=busport, peer=f"127.0.0.1:{port}")
    t_agent = time.monotonic() - t0
    wait_for(lambda: len(vm.info_usb()) == 1, 20, "the disk in the new VM",
             0.02)
    return t_agent, time.monotonic() - t0


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    os.chmod(td.path, 0o755)  # a user without rights reaches the socket
    fx = Fixture(td).start()
    port_a, port_b = free_port(), free_port()
    vm_a = Qemu(td, slots=[("server", port_a)], paused=False, name="vm-a")
    vm_b = Qemu(td, slots=[("server", port_b)], paused=False, name="vm-b")
    for vm, port in ((vm_a, port_a), (vm_b, port_b)):
        vm.start()
        vm.wait_listening(port)
    agent = Agent(td, fx)
    # no peers in the file: the VDI client sets them at login
    agent.start("[usb]\nreconnect_max_ms = 500\n")
    agent.wait_log(r"USB redirection is off")
    ev = Events(agent, fx)
    assert "targets: none" in ok(agent, fx, "target"), "no targets at start"

    _, kbd = fx.add("keyboard")
    _, disk = fx.add("disk", img)

    # user 1 logs in: VM A (USB starts: the devices are seen now)
    t_a = retarget(agent, fx, ev, vm_a, port_a, disk)
    ev.wait("arrived", port=disk)
    ev.wait("decision", port=kbd, redirect=False)
    shown = json.loads(ok(agent, fx, "target", "--json"))
    assert shown == {"mode": "connect", "source": "control",
                     "targets": [f"127.0.0.1:{port_a}"]}, shown

    # user 2 logs in: the disk moves to VM B without a replug
    t_b = retarget(agent, fx, ev, vm_b, port_b, disk)
    vm_a.wait_usb_devices(0)
    ev.wait("redirected", port=disk, reconnect=True)
    print(f"target -> redirected by the agent: {t_b[0]*1000:.0f} ms; "
          f"-> listed by QEMU: {t_b[1]*1000:.0f} ms "
          f"(first target, agent started: {t_a[1]*1000:.0f} ms)")

    # detach: back to the desk, kept local
    at = ev.mark()
    out = ok(agent, fx, "detach", disk)
    assert "detached" in out, out
    vm_b.wait_usb_devices(0)
    ev.wait("detached", at, port=disk)
    ev.wait("decision", at, port=disk, redirect=False)
    d = device(agent, fx, disk)
    assert d["decision"] == "local" and "detached" in d["reason"], d
    time.sleep(1)  # no retry takes it back
    assert vm_b.info_usb() == [], "a detached disk went back to the VM"
    assert "already detached" in ok(agent, fx, "detach", "1209:0d15")
    at = ev.mark()
    ok(agent, fx, "attach", "1209:0d15", "--json")
    vm_b.wait_usb_devices(1)
    ev.wait("attached", at, port=disk)
    ev.wait("redirected", at, port=disk)

    # the keyboard: policy first, --force over it, allow_force = no
    refused(agent, fx, "attach", kbd, why="the policy keeps it local "
            "(default policy: HID boot keyboard); attach --force overrides")
    r = json.loads(refused(agent, fx, "attach", kbd, "--json",
                           why='"ok":false').stdout)
    assert "HID boot keyboard" in r["error"], r
    with open(agent.config_path, "a") as f:
        f.write("allow_force = no\n")
    assert "reloaded" in ok(agent, fx, "reload")
    refused(agent, fx, "attach", kbd, "--force",
            why="attach --force is not allowed here ([agent] allow_force = "
                "no)")

    # bad requests say why, and change nothing
    refused(agent, fx, "target", "vm-b", why="vm-b")
    refused(agent, fx, "target", "127.0.0.1:1/vm1", why="relay targets need")
    refused(agent, fx, "detach", "9-9", why="no USB device at 9-9")
    refused(agent, fx, "detach", "sda", why="neither a port")
    refused(agent, fx, "frobnicate", why="unexpected argument", rc=2)
    assert f"127.0.0.1:{port_b}" in ok(agent, fx, "target")

    # a user outside root/the agent/the control group: reads, no changes
    st = run(agent, fx, "status", "--json", uid=NOBODY)
    assert st.returncode == 0, st
    refused(agent, fx, "target", "--clear", uid=NOBODY,
            why="target clear changes the agent's state: only root may "
                "(you are uid 65534")
    agent.wait_log(r"control socket: refused target clear from uid 65534")
    assert vm_b.info_usb(), "a refused --clear moved the disk"

    # a VM that is not there: one "error" event per reason, not per retry
    dead = free_port()
    at = ev.mark()
    ok(agent, fx, "target", f"127.0.0.1:{dead}")
    e = ev.wait("error", at, port=disk)
    assert "connection refused" in e["detail"], e
    time.sleep(1.5)  # several retries (reconnect_max_ms = 500)
    assert [x["event"] for x in ev.lines[at:]].count("error") == 1, \
        ev.lines[at:]
    retarget(agent, fx, ev, vm_b, port_b, disk)

    # logout: no peers, devices stay with the host; reset: the file's
    at = ev.mark()
    ok(agent, fx, "target", "--clear")
    vm_b.wait_usb_devices(0)
    assert "targets: none (cleared at run time)" in ok(agent, fx, "target")
    assert device(agent, fx, disk)["session"]["state"] == "waiting-for-slot"
    fx.remove(next(i for i, d in fx.devices.items() if d["busport"] == disk))
    ev.wait("left", port=disk)
    ok(agent, fx, "target", "--reset")
    assert "targets: none (none in the config file)" in ok(agent, fx, "target")

    kinds = [e["event"] for e in ev.lines]
    for k in ("arrived", "decision", "redirected", "detached", "attached",
              "left"):
        assert k in kinds, (k, kinds)
    agent.stop()
    ev.proc.wait(timeout=10)


harness.main(test)
