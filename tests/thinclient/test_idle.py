#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig, test 7: an idle agent sleeps, with udevd and without
(then the agent listens to the kernel's uevents itself).

The agent (log_level = debug) redirects one disk into the VDI guest, which
then leaves it alone, and keeps a boot keyboard + mouse local.  Over 10 s
its threads make no voluntary context switch (/proc/PID/task/*/status in
the thin client: every wake-up from epoll_wait is one), and it never arms
its 1 ms timer for file descriptors epoll cannot watch: real usbfs nodes
can be epolled (the debug line "cannot be watched by epoll; servicing it
every 1 ms" is absent).  Under umockdev the same agent arms that timer.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import (ThinClient, VdiGuest, disk_gadget,  # noqa: E402
                        harness, kbd_mouse_gadget)

WINDOW_S = 10


def settle(tc, vdi, disk, kbd, agent):
    """The disk redirected and read once by the VDI guest, the keyboard
    local; then a pause for the guest's scan and the agent to settle."""
    agent.wait_log(r'"Rig Disk" at \S+: redirected rw to', 30)
    agent.wait_log(r'"Rig Keyboard Mouse" at \S+: stays local')
    dev = vdi.sh("wait_disk 30", timeout=40).strip()
    vdi.sh(f"dd if=/dev/{dev} of=/dev/null bs=1M count=1 iflag=direct 2>/dev/null")
    tc.wait_drivers(disk, {"1.0": "usbfs"})
    assert tc.if_drivers(kbd) == {"1.0": "usbhid", "1.1": "usbhid"}
    # the agent gives the heap back once, 2 s after the last USB traffic
    # (agent/usb/usb_heap.c): that wakeup comes before the window
    time.sleep(4)


def measure(tc, agent, mode):
    """Context switches of the agent's threads over WINDOW_S, measured in
    one command inside the VM."""
    p = agent.pid
    out = tc.sh(f"sw() {{ cat /proc/{p}/task/*/status | awk -F: "
                f"'/^voluntary_ctxt_switches/ {{v += $2}} "
                f"/^nonvoluntary_ctxt_switches/ {{n += $2}} "
                f"END {{ print v, n }}'; }}\n"
                f"c0=$(cut -d' ' -f14,15 /proc/{p}/stat); a=$(sw); t0=$(now)\n"
                f"sleep {WINDOW_S}\n"
                f"b=$(sw); t1=$(now); c1=$(cut -d' ' -f14,15 /proc/{p}/stat)\n"
                f"echo $a $b $(elapsed $t0 $t1) $c0 $c1 "
                f"$(ls /proc/{p}/task | wc -l)", timeout=WINDOW_S + 20).split()
    v0, n0, v1, n1 = map(int, out[:4])
    secs = float(out[4])
    ticks = (int(out[7]) + int(out[8])) - (int(out[5]) + int(out[6]))
    threads = int(out[9])
    vol, invol = v1 - v0, n1 - n0
    log = agent.fetch_log()
    st = agent.devices()
    assert st["1209:7d15"]["session"]["state"] == "redirected", st["1209:7d15"]
    print(f"{mode}: idle agent over {secs:.2f} s ({threads} threads): {vol} "
          f"voluntary, {invol} involuntary context switches, {ticks} CPU ticks")
    assert "cannot be watched by epoll" not in log, \
        "the 1 ms emulation timer was armed on real usbfs"
    assert vol == 0, f"{mode}: {vol} wakeups in {secs:.1f} s ({vol / secs:.2f}/s)"


def test(td):
    t_start = time.monotonic()
    tc = ThinClient(td).start()
    disk = tc.add_gadget(disk_gadget(size_mib=8))
    kbd = tc.add_gadget(kbd_mouse_gadget())
    port = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port)]).start()
    cfg = f"[agent]\nlog_level = debug\n[usb]\nconnect = 10.0.2.2:{port}\n"
    agent = tc.start_agent(cfg)
    settle(tc, vdi, disk, kbd, agent)
    measure(tc, agent, "udevd")
    agent.stop()

    # without udevd the agent listens to the kernel's uevents itself: a
    # socket under uv_poll, no timer
    tc.stop_udevd()
    vdi.sh("wait_until 10 eval '! ls -d /sys/block/sd* >/dev/null 2>&1'",
           timeout=20)
    agent = tc.start_agent(cfg, name="agent-no-udevd")
    agent.wait_log(r"hotplug: kernel uevents")
    settle(tc, vdi, disk, kbd, agent)
    measure(tc, agent, "no udevd")
    agent.stop()
    vdi.poweroff()
    tc.stop()
    print(f"thin client boot {tc.boot_s:.2f}s; total {time.monotonic() - t_start:.1f}s")


harness.main(test)
