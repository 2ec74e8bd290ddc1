#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig, test 6: after a crash (NOT REGISTERED: the agent does
not give driverless devices back at start yet).

 1. The agent redirects a disk (usbfs holds it) and is killed with
    SIGKILL.  The kernel drops the usbfs claim when the process dies, but
    does not rebind usb-storage: the disk stays driverless, no /dev/sdX
    (measured over OBSERVE_S).  The VDI guest loses the disk.
 2. A restarted agent whose policy keeps the disk local must give every
    device it finds without a driver back to the host's drivers
    (usb-storage bound, /dev/sdX back, within 5 s), and not redirect it.
    Today it leaves it driverless: this is what fails.
 3. Only a replug brings usb-storage back without that (measured).

The issue text for this test is cut off after "A restarted agent gives
back to the host's drivers every device it finds without a driver and
will not redirect..."; step 2 checks the part that is spelled out.
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


def test(td):
    t_start = time.monotonic()
    failures = []
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

    # 1. SIGKILL
    t0 = time.monotonic()
    rc = agent.kill()
    assert rc == 137, rc
    drv = tc.wait_drivers(disk, lambda d: d.get("1.0") != "usbfs", 5)
    t_claim = time.monotonic() - t0
    vdi.sh("wait_until 10 eval '! ls -d /sys/block/sd* >/dev/null 2>&1'", timeout=20)
    samples = []
    t1 = time.monotonic()
    while time.monotonic() - t1 < OBSERVE_S:
        samples.append((tc.if_drivers(disk), tc.block_devs(disk)))
        time.sleep(0.5)
    driverless = all(d == {"1.0": None} and not b for d, b in samples)
    print(f"SIGKILL: usbfs claim dropped after {t_claim:.2f}s ({drv}); "
          f"driverless for the next {OBSERVE_S}s: {driverless} "
          f"({len(samples)} samples, last {samples[-1]})")
    assert driverless, f"the kernel rebound the disk by itself: {samples}"

    # 2. a restarted agent that keeps the disk local gives it back
    agent2 = tc.start_agent(cfg + "rule = deny class=08\n", name="agent-restarted")
    agent2.wait_log(DISK + r"stays local", 20)
    t0 = time.monotonic()
    try:
        harness.wait_for(lambda: local_ok(tc, disk), 5,
                         "usb-storage bound and /dev/sdX back")
        print(f"restarted agent: usb-storage back after "
              f"{time.monotonic() - t0:.2f}s")
    except TimeoutError as e:
        failures.append(f"restarted agent (policy: local) did not give the "
                        f"driverless disk back: {e}; drivers "
                        f"{tc.if_drivers(disk)}, block {tc.block_devs(disk)}")
    st = agent2.devices()["1209:7d15"]
    if st["session"] is not None:
        failures.append(f"restarted agent redirects the disk: {st}")
    agent2.stop()

    # 3. a replug brings it back
    if not local_ok(tc, disk):
        t0 = time.monotonic()
        tc.unplug(disk)
        tc.plug(disk)
        harness.wait_for(lambda: local_ok(tc, disk), 10, "usb-storage after replug")
        print(f"replug: usb-storage back after {time.monotonic() - t0:.2f}s")
    vdi.poweroff()
    tc.stop()
    print(f"total {time.monotonic() - t_start:.1f}s")
    assert not failures, "\n".join(failures)


harness.main(test)
