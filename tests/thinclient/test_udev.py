#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig, test 5: hotplug with and without a udev daemon.

One thin-client boot, first without udevd, then with systemd-udevd
started in the VM, then with udevd stopped again (it leaves its control
socket file /run/udev/control behind, which libudev takes for a running
udevd); a VDI VM takes the redirected disk.  In each mode:
  * the agent says once in its log which hotplug mechanism it uses:
    "hotplug: kernel uevents (no udev daemon running)" without udevd,
    "hotplug: udev (...)" with it, "hotplug: kernel uevents (no udev
    daemon running; /run/udev/control is left over)" after it;
  * a disk plugged before the start is redirected (initial enumeration);
  * unplug (UDC unbound): the agent logs the departure, the VDI guest
    loses the disk;
  * replug: the agent logs the arrival and redirects the disk again, the
    VDI guest sees it (time from the UDC bind to the agent's decision and
    to "redirected", by the VM's clock and the agent's log stamps);
  * the same for a local device (boot keyboard + mouse, never opened by
    the agent): its unplug is logged and it leaves `redir-agent status`,
    its replug is logged ("stays local") and it is listed again.

Debian's libusb takes hotplug events from udev (the udev daemon's netlink
group), so without udevd it never sees a replugged device; the agent then
listens to the kernel's uevents itself (NETLINK_KOBJECT_UEVENT, group 1).
All failures are collected and reported together.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import (ThinClient, VdiGuest, disk_gadget,  # noqa: E402
                        harness, kbd_mouse_gadget)

DISK = r'1209:7d15 "Rig Disk" at \S+: '
KBD = r'1209:7b42 "Rig Keyboard Mouse" at \S+: '
MECHANISM = {"no-udevd": r"(?m)^.* hotplug: kernel uevents \(no udev daemon running\)$",
             "udevd": r"(?m)^.* hotplug: udev \(.*$",
             "udevd-stopped": r"(?m)^.* hotplug: kernel uevents \(no udev daemon "
                              r"running; /run/udev/control is left over\)$"}


def check_once(agent):
    lines = re.findall(r"(?m)^.* hotplug: (?:udev|kernel|none).*$",
                       agent.fetch_log())
    assert len(lines) == 1, f"hotplug mechanism lines: {lines}"


def run_mode(tc, vdi, disk, kbd, port, mode, failures):
    def expect(what, fn):
        t0 = time.monotonic()
        try:
            fn()
            print(f"  {mode}: {what}: ok ({time.monotonic() - t0:.2f}s)")
            return True
        except (AssertionError, TimeoutError, harness.ProcessFailed) as e:
            first = str(e).splitlines()[0]
            failures.append(f"{mode}: {what}: {first}")
            print(f"  {mode}: {what}: FAILED: {first}")
            return False

    agent = tc.start_agent(f"[agent]\nlog_level = debug\n[usb]\n"
                           f"connect = 10.0.2.2:{port}\nreconnect_max_ms = 500\n",
                           name=f"agent-{mode}")
    agent.wait_log(DISK + r"redirected rw to", 30)
    vdi.sh("wait_disk 30", timeout=40)
    expect("logs its hotplug mechanism",
           lambda: agent.wait_log(MECHANISM[mode], timeout=1))
    expect("logs it once", lambda: check_once(agent))
    off = agent.log_offset()
    tc.unplug(disk)
    expect("sees the departure",
           lambda: agent.wait_log(DISK + r"unplugged", 10, start_offset=off))
    expect("VDI guest loses the disk", lambda: vdi.sh(
        "wait_until 10 eval '! ls -d /sys/block/sd* >/dev/null 2>&1'", timeout=20))
    off = agent.log_offset()
    t_plug = tc.plug(disk)
    ok = expect("sees the arrival and redirects it",
                lambda: agent.wait_log(DISK + r"redirected rw to", 15,
                                       start_offset=off))
    if ok:
        t_dec = agent.log_stamp(DISK + r"redirect rw ", off) - t_plug
        t_red = agent.log_stamp(DISK + r"redirected rw to", off) - t_plug
        print(f"  {mode}: UDC bound -> decision {t_dec:.3f}s, "
              f"-> redirected {t_red:.3f}s")
        if mode != "udevd":        # the listener's own debug lines
            t_add = agent.log_stamp(r"hotplug: uevent add ", off) - t_plug
            t_bind = agent.log_stamp(r"hotplug: uevent bind ", off) - t_plug
            print(f"  {mode}: uevent add at {t_add:.3f}s, bind at "
                  f"{t_bind:.3f}s; bind -> redirected {t_red - t_bind:.3f}s")
        expect("VDI guest sees the disk again",
               lambda: vdi.sh("wait_disk 30", timeout=40))
    # a local device: never opened, so only hotplug events tell
    off2 = agent.log_offset()
    tc.unplug(kbd)
    expect("sees a local device's departure",
           lambda: agent.wait_log(KBD + r"unplugged", 10, start_offset=off2))
    expect("status drops the unplugged local device",
           lambda: harness.wait_for(lambda: "1209:7b42" not in agent.devices(), 5,
                                    "1209:7b42 gone from status"))
    tc.plug(kbd)
    expect("sees a local device's arrival",
           lambda: agent.wait_log(KBD + r"stays local", 10, start_offset=off2))
    m = re.search(MECHANISM[mode], agent.fetch_log())
    print(f"  {mode}: mechanism line: {m.group(0).strip() if m else None!r}")
    agent.stop()
    tc.wait_drivers(disk, {"1.0": "usb-storage"})
    if not ok:
        print(f"  {mode}: agent log after the replug:\n" +
              "\n".join("    " + l for l in agent.log_text(off).splitlines()
                        if "1d6b:0002" not in l))


def test(td):
    t_start = time.monotonic()
    tc = ThinClient(td, udev=False).start()
    disk = tc.add_gadget(disk_gadget(size_mib=8))
    kbd = tc.add_gadget(kbd_mouse_gadget())
    tc.wait_drivers(disk, {"1.0": "usb-storage"})
    port = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port)]).start()
    failures = []
    assert tc.run("pidof systemd-udevd")[0] != 0, "udevd runs"
    run_mode(tc, vdi, disk, kbd, port, "no-udevd", failures)
    tc.start_udevd()
    run_mode(tc, vdi, disk, kbd, port, "udevd", failures)
    tc.stop_udevd()
    if tc.run("test -S /run/udev/control")[0] == 0:
        run_mode(tc, vdi, disk, kbd, port, "udevd-stopped", failures)
    else:
        print("  udevd removed /run/udev/control: the left-over case is "
              "not tested")
    vdi.poweroff()
    tc.stop()
    print(f"total {time.monotonic() - t_start:.1f}s")
    assert not failures, "missing:\n  " + "\n  ".join(failures)


harness.main(test)
