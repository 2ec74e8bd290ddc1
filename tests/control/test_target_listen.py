#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""`target` on an agent in USB listen mode ([usb] listen: the VMs' QEMU
dials the agent, so QEMU decides where devices go): `target` with no
argument shows where the agent listens, in words and as JSON; `target
LIST`, `target --clear` are refused with the reason (exit 1, JSON
{"ok": false, ...}), and the refusal changes nothing: the disk QEMU
dialed for stays in that VM, and the listener still takes QEMU back after
it restarts."""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))
import harness  # noqa: E402
from harness import Agent, Fixture, Qemu, diskimage, free_port  # noqa: E402

WHY = ("this agent listens ([usb] listen): the VMs dial it, so their QEMU "
       "decides where devices go; target needs [usb] connect (or no [usb] "
       "connect/listen at all)")


def run(agent, fx, *args):
    return subprocess.run([agent.path, *args, "--socket", agent.control_socket],
                          capture_output=True, text=True, timeout=20,
                          env=harness.preload_env(fx.umockdev_dir))


def refused(agent, fx, *args):
    r = run(agent, fx, *args)
    assert r.returncode == 1 and WHY in r.stdout + r.stderr, r
    j = run(agent, fx, *args, "--json")
    assert j.returncode == 1, j
    assert json.loads(j.stdout) == {"ok": False, "error": WHY}, j


def redirected(agent, qemu, at):
    agent.wait_log(r'"Emulated Disk" at 1-\d+: redirected rw to 127\.0\.0\.1:'
                   r'\d+ \(slot 1\)', start_offset=at)
    qemu.wait_usb_devices(1)


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    port, other = free_port(), free_port()
    agent = Agent(td, fx)
    agent.start(f"[usb]\nlisten = 127.0.0.1:{port}\n")
    agent.wait_log(rf"slot 1: listening on 127\.0\.0\.1:{port}")
    fx.add("disk", img)
    at = agent.log_offset()
    qemu = Qemu(td, slots=[("client", port)], paused=False,
                usb_attach_wait_ms=3000)
    qemu.start()
    redirected(agent, qemu, at)

    shown = run(agent, fx, "target")
    assert shown.returncode == 0, shown
    assert shown.stdout == (f"listening on: 127.0.0.1:{port} (from "
                            f"{agent.config_path})\n"), shown
    j = json.loads(run(agent, fx, "target", "--json").stdout)
    assert j == {"mode": "listen", "source": "config",
                 "targets": [f"127.0.0.1:{port}"]}, j

    at = agent.log_offset()
    refused(agent, fx, "target", f"127.0.0.1:{other}")
    refused(agent, fx, "target", f"127.0.0.1:{other}, 127.0.0.1:{port}")
    refused(agent, fx, "target", "--clear")
    print(f"refused: {WHY}")

    # nothing moved: same listener, the disk still in the VM, no session
    # ended; `target` still shows the file's listen address
    assert json.loads(run(agent, fx, "target", "--json").stdout) == j
    st = json.loads(run(agent, fx, "status", "--json").stdout)
    assert [s["endpoint"] for s in st["usb"]["slots"]] == \
        [f"127.0.0.1:{port}"], st["usb"]["slots"]
    assert qemu.info_usb() != [], "the disk left the VM"
    log = agent.log_text(at)
    for word in ("handing the device back", "redirected", "USB targets"):
        assert word not in log, (word, log)

    # and the listener still works: QEMU restarted dials in again
    qemu.kill()
    at = agent.log_offset()
    qemu2 = Qemu(td, slots=[("client", port)], paused=False,
                 usb_attach_wait_ms=3000, name="qemu-again")
    qemu2.start()
    redirected(agent, qemu2, at)
    agent.stop()


harness.main(test)
