#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Device policy and admin tools, end to end: rules decide (keyboard stays
local and never reaches QEMU, storage is redirected read-only, a rule keeps
the loopback local); --list-devices is a dry run; status (table and JSON)
shows the sessions; SIGHUP with a bad config keeps the old one, with a good
one redirects the loopback it now allows."""
import json
import re
import signal
import subprocess

import harness
from harness import Agent, Fixture, Qemu, diskimage, free_port, wait_for


def agent_cmd(agent, fx, *args):
    return subprocess.run([agent.path, *args], capture_output=True, text=True,
                          timeout=20, env=harness.preload_env(fx.umockdev_dir))


def status_json(agent, fx):
    r = agent_cmd(agent, fx, "status", "--json", "-c", agent.config_path)
    assert r.returncode == 0, r
    return json.loads(r.stdout)


def device(status, port):
    return next(d for d in status["usb"]["devices"] if d["port"] == port)


def test(td):
    img = td.file("disk.img")
    diskimage.make_disk_image(img, 16)
    fx = Fixture(td).start()
    _, disk_port = fx.add("disk", img)
    _, kbd_port = fx.add("keyboard")
    _, loop_port = fx.add("loopback")
    ports = [free_port(), free_port()]
    endpoints = ", ".join(f"127.0.0.1:{p}" for p in ports)
    rules = ("rule = deny vid=1209 pid=100b   ; the loopback stays local\n"
             "rule = allow class=08 access=ro ; storage, read-only\n")
    config = f"[usb]\nconnect = {endpoints}\n{rules}"

    agent = Agent(td, fx)
    # Dry run first: the same config, nothing started, nothing touched.
    with open(agent.config_path, "w") as f:
        f.write(config)
    r = agent_cmd(agent, fx, "--list-devices", "-c", agent.config_path)
    assert r.returncode == 0, r
    out = r.stdout
    assert "4 USB devices" in out, out
    assert re.search(rf'{disk_port}  1209:0d15  "Emulated Disk" serial "RDA0D15'
                     r'\w+"\n    device class 00:00:00, bcdDevice 0100\n'
                     r'    interface 0: 08:06:50\n'
                     r'    => redirect ro \(rule 2: class=08\)', out), out
    assert re.search(rf'{kbd_port}  1209:4b42 .*\n.*\n    interface 0: 03:01:01'
                     r'\n    => stays local \(default policy: HID boot '
                     r'keyboard\)', out), out
    assert f"=> stays local (rule 1: vid=1209 pid=100b)" in out, out
    assert "=> stays local (hubs are never redirected)" in out, out

    qemu = Qemu(td, slots=[("server", p) for p in ports], paused=False)
    qemu.start()
    for p in ports:
        qemu.wait_listening(p)
    agent.start(config)
    agent.wait_log(rf'1209:0d15 "Emulated Disk" at {disk_port}: redirect ro '
                   r'\(rule 2: class=08\)')
    agent.wait_log(rf'1209:4b42 "Emulated Keyboard" at {kbd_port}: stays local'
                   r' \(default policy: HID boot keyboard\)')
    qemu.wait_usb_devices(1)

    st = wait_for(lambda: (lambda s: s if device(s, disk_port)["session"]
                           ["packets_from_peer"] > 0 else None)(
                               status_json(agent, fx)), 20, "disk traffic")
    disk = device(st, disk_port)
    assert disk["decision"] == "redirect ro", disk
    s = disk["session"]
    assert s["state"] == "redirected" and s["slot"] in (1, 2), s
    assert s["peer"].startswith("127.0.0.1:"), s
    assert s["bytes_to_peer"] > 0 and s["packets_to_peer"] > 0, s
    assert device(st, kbd_port)["session"] is None
    assert device(st, loop_port)["decision"] == "local"
    assert st["uptime_s"] >= 0 and st["usb"]["mode"] == "connect"

    table = agent_cmd(agent, fx, "status", "-c", agent.config_path)
    assert table.returncode == 0, table
    assert re.search(r"PORT +VID:PID +PRODUCT +DECISION +STATE", table.stdout)
    assert re.search(rf"{disk_port} +1209:0d15 Emulated Disk +redirect ro "
                     r"+redirected", table.stdout), table.stdout

    # SIGHUP with a broken config: refused with FILE:LINE, old rules stay.
    at = agent.log_offset()
    with open(agent.config_path, "a") as f:
        f.write("[usb]\nrule = allow vid=12345\n")
    agent.signal(signal.SIGHUP)
    agent.wait_log(rf"SIGHUP: {re.escape(agent.config_path)}:\d+: \[usb\] rule: "
                   r"'vid=12345': vid expects 4 hex digits or \*; keeping the "
                   r"current configuration", start_offset=at)
    assert device(status_json(agent, fx), loop_port)["decision"] == "local"

    # SIGHUP with a good config: the loopback, not redirected yet, now is.
    at = agent.log_offset()
    agent.start_config = f"[usb]\nconnect = {endpoints}\nrule = allow class=08 " \
                         "access=ro\n"
    with open(agent.config_path, "w") as f:
        f.write(agent.start_config +
                f"[agent]\ncontrol_socket = {agent.control_socket}\n")
    agent.signal(signal.SIGHUP)
    agent.wait_log(r"SIGHUP: configuration reloaded", start_offset=at)
    agent.wait_log(rf'1209:100b "Emulated Loopback" at {loop_port}: redirect rw'
                   r' \(default policy\)', start_offset=at)
    qemu.wait_usb_devices(2)
    assert "1209:4b42" not in qemu.stderr_text(), "the keyboard reached QEMU"
    agent.stop()


harness.main(test)
