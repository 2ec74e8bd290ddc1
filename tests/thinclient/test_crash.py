#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig, test 6: after a crash.

 1. The agent redirects a disk (usbfs holds it) and is killed with
    SIGKILL.  The kernel drops the usbfs claim when the process dies, but
    does not rebind usb-storage: the disk stays driverless, no /dev/sdX
    (measured over OBSERVE_S).  The VDI guest loses the disk.
 2. A restarted agent whose policy keeps the disk local gives every device
    it finds without a driver back to the host's drivers: it logs "given
    back to usb-storage", usb-storage is bound and /dev/sdX is back within
    5 s of its start (measured), and the disk is not redirected.
 3. Killed again while redirecting: an agent restarted with the default
    policy simply redirects the driverless disk again, and the VDI guest
    gets it.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import ThinClient, VdiGuest, disk_gadget, harness  # noqa: E402

DISK = r'1209:7d15 "Rig Disk" at \S+: '
OBSERVE_S = 5


def local_ok(tc, disk):
    return (tc.if_drivers(disk) == {"1.0": "usb-storage"} and
            bool(tc.block_devs(disk)))


def kill_redirecting(tc, vdi, disk, agent):
    """SIGKILL an agent that redirects the disk; the disk is left
    driverless. Returns the seconds until the usbfs claim was gone."""
    t0 = time.monotonic()
    rc = agent.kill()
    assert rc == 137, rc
    tc.wait_drivers(disk, lambda d: d.get("1.0") != "usbfs", 5)
    t_claim = time.monotonic() - t0
    vdi.sh("wait_until 10 eval '! ls -d /sys/block/sd* >/dev/null 2>&1'",
           timeout=20)
    return t_claim


def test(td):
    t_start = time.monotonic()
    tc = ThinClient(td).start()
    disk = tc.add_gadget(disk_gadget(size_mib=8))
    tc.wait_drivers(disk, {"1.0": "usb-storage"})
    port = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port)]).start()
    cfg = f"[agent]\nlog_level = debug\n[usb]\nconnect = 10.0.2.2:{port}\n"
    agent = tc.start_agent(cfg)
    agent.wait_log(DISK + r"redirected rw to", 30)
    vdi.sh("wait_disk 30", timeout=40)
    tc.wait_drivers(disk, {"1.0": "usbfs"})

    # 1. SIGKILL: the kernel leaves the disk driverless
    t_claim = kill_redirecting(tc, vdi, disk, agent)
    samples = []
    t1 = time.monotonic()
    while time.monotonic() - t1 < OBSERVE_S:
        samples.append((tc.if_drivers(disk), tc.block_devs(disk)))
        time.sleep(0.5)
    driverless = all(d == {"1.0": None} and not b for d, b in samples)
    print(f"SIGKILL: usbfs claim dropped after {t_claim:.2f}s; driverless "
          f"for the next {OBSERVE_S}s: {driverless} ({len(samples)} samples, "
          f"last {samples[-1]})")
    assert driverless, f"the kernel rebound the disk by itself: {samples}"

    # 2. a restarted agent that keeps the disk local gives it back
    t0 = time.monotonic()
    agent2 = tc.start_agent(cfg + "rule = deny class=08\n",
                            name="agent-restarted")
    agent2.wait_log(DISK + r"stays local", 20)
    t_local = time.monotonic() - t0
    agent2.wait_log(DISK + r"interface 0 had no driver .*; given back to "
                    r"usb-storage", 5)
    harness.wait_for(lambda: local_ok(tc, disk), 5,
                     "usb-storage bound and /dev/sdX back")
    t_back = time.monotonic() - t0
    t_log = (agent2.log_stamp(r"interface 0 had no driver") -
             agent2.log_stamp(r"redir-agent \S+ starting with"))
    print(f"restarted agent (policy: local): decision {t_local:.2f}s after "
          f"start_agent, usb-storage and /dev/{tc.block_devs(disk)[0]} back "
          f"{t_back:.2f}s after start_agent; the agent's log: given back "
          f"{t_log:.3f}s after its first line")
    st = agent2.devices()["1209:7d15"]
    assert st["session"] is None, f"restarted agent redirects the disk: {st}"
    agent2.stop()
    assert local_ok(tc, disk), "the disk lost its driver at the agent's stop"

    # 3. killed while redirecting, restarted with the default policy: the
    # driverless disk is redirected as usual
    agent3 = tc.start_agent(cfg, name="agent-3")
    agent3.wait_log(DISK + r"redirected rw to", 30)
    vdi.sh("wait_disk 30", timeout=40)
    kill_redirecting(tc, vdi, disk, agent3)
    t0 = time.monotonic()
    agent4 = tc.start_agent(cfg, name="agent-4")
    agent4.wait_log(DISK + r"redirected rw to", 30)
    vdi.sh("wait_disk 30", timeout=40)
    print(f"restarted agent (policy: redirect): redirected again "
          f"{time.monotonic() - t0:.2f}s after its start")
    assert "had no driver" not in agent4.fetch_log(), \
        "a redirected device was given to the host's drivers"
    agent4.stop()
    tc.wait_drivers(disk, {"1.0": "usb-storage"})
    vdi.poweroff()
    tc.stop()
    print(f"total {time.monotonic() - t_start:.1f}s")


harness.main(test)
