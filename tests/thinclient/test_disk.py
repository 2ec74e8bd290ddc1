#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig, test 1: a disk taken from usb-storage and given back.

One thin-client VM boot serves every phase; the VDI VM (Linux-guest rig
with a control channel) is booted twice, because phase 4 kills it.

 1. rw: usb-storage is bound and /dev/sdX exists on the thin client before
    the agent starts.  The agent redirects the disk (interface now held by
    usbfs, /dev/sdX gone); the VDI guest reads all of it (SHA-256 equal to
    the backing file's, computed in the thin client) and writes a 4 KiB
    block, which lands in the gadget's backing file at that offset and
    nowhere else.
 2. SIGTERM: the agent exits 0 and usb-storage is bound again, /dev/sdX
    back; the VDI guest sees the disk go.
 3. ro: a new agent with `rule = allow class=08 access=ro`: the VDI guest
    sees a write-protected disk, reads match, a write is refused; the
    backing file is unchanged.
 4. VDI QEMU killed (SIGKILL): the agent hands the disk back (usb-storage
    rebound); a new VDI VM on the same port gets it again.
 5. Unplug mid-read (UDC unbound while the VDI guest reads in a loop): the
    VDI guest sees the detach, its reads end with errors; replug: the agent
    redirects the disk again (udevd runs in the thin client) and the VDI
    guest sees it.
 6. detach: `redir-agent detach BUS-PORT` gives the disk back to the thin
    client (usb-storage bound, /dev/sdX there) and the VDI guest sees it
    go; it stays local (no retry takes it); `redir-agent attach VID:PID`
    redirects it again.

Prints the time of each hand-back / redirect.
"""
import hashlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import ThinClient, VdiGuest, disk_gadget, harness  # noqa: E402

DISK_MIB = 16
BLOCK = 4096
BLOCK_INDEX = 1234
NEW_BLOCK = hashlib.shake_128(b"thin-client rig disk block").digest(BLOCK)
DISK_RX = r'1209:7d15 "Rig Disk" at (\S+): '


def wait_vdi_disk(vdi, timeout=30):
    """Name of the sd* disk in the VDI guest."""
    return vdi.sh(f"wait_disk {timeout}", timeout=timeout + 10).strip()


def wait_vdi_no_disk(vdi, timeout=20):
    vdi.sh(f"wait_until {timeout} sh -c '! ls -d /sys/block/sd* >/dev/null 2>&1'",
           timeout=timeout + 10)


def wait_local(tc, disk, timeout=20):
    """usb-storage bound on the thin client and /dev/sdX there: seconds."""
    t0 = time.monotonic()
    tc.wait_drivers(disk, {"1.0": "usb-storage"}, timeout)
    tc.sh(f"wait_until {timeout} eval 'd=$(block_of $(usb_dev 1209 7d15)) && "
          f"test -n \"$d\" && test -b /dev/$d'")
    return time.monotonic() - t0


def assert_redirected(tc, disk):
    """The kernel driver is detached: usbfs holds the interface (the VDI
    guest's resets may unbind it for a moment), no /dev/sdX."""
    tc.wait_drivers(disk, {"1.0": "usbfs"}, timeout=5)
    assert tc.block_devs(disk) == [], tc.block_devs(disk)


def agent_cmd(tc, agent, *args):
    rc, out = tc.run("ASAN_OPTIONS=detect_leaks=0 redir-agent " +
                     " ".join(args) + f" --socket {agent.control_socket} 2>&1")
    assert rc == 0, f"redir-agent {' '.join(args)}: rc {rc}: {out}"
    return out


def check_detach(tc, agent, vdi, disk, timings):
    """detach: back on the thin client and kept there; attach: redirected
    again."""
    port = tc.usb_dev(disk)
    off = agent.log_offset()
    t0 = time.monotonic()
    out = agent_cmd(tc, agent, "detach", port)
    assert "detached" in out, out
    wait_local(tc, disk)
    timings["detach -> /dev/sdX back"] = time.monotonic() - t0
    wait_vdi_no_disk(vdi)
    sd = tc.block_devs(disk)
    time.sleep(2)  # no retry (reconnect_max_ms = 500) takes it back
    assert tc.if_drivers(disk) == {"1.0": "usb-storage"}, tc.if_drivers(disk)
    assert tc.block_devs(disk) == sd, (sd, tc.block_devs(disk))
    tc.sh(f"dd if=/dev/{sd[0]} of=/dev/null bs=1M count=1 iflag=direct "
          f"2>/dev/null")
    st = agent.status()
    d = next(x for x in st["usb"]["devices"] if x["port"] == port)
    assert d["decision"] == "local" and "detached" in d["reason"], d
    t0 = time.monotonic()
    out = agent_cmd(tc, agent, "attach", "1209:7d15")
    assert "attached" in out, out
    agent.wait_log(DISK_RX + r"redirected ro to", 30, start_offset=off)
    assert_redirected(tc, disk)
    wait_vdi_disk(vdi)
    timings["attach -> VDI disk"] = time.monotonic() - t0
    print(f"detach: disk back on the thin client as {sd}, kept local; "
          f"attach: in the VDI guest again")


def test(td):
    t_start = time.monotonic()
    timings = {}
    tc = ThinClient(td).start()
    disk = tc.add_gadget(disk_gadget(size_mib=DISK_MIB))
    timings["local at start"] = wait_local(tc, disk)
    sd = tc.block_devs(disk)
    img_sha = tc.sh("sha256sum /tmp/disk.img | cut -d' ' -f1").strip()
    tc.put_file("/tmp/block.bin", NEW_BLOCK)
    tc.sh(f"cp /tmp/disk.img /tmp/disk.exp && dd if=/tmp/block.bin of=/tmp/disk.exp "
          f"bs={BLOCK} seek={BLOCK_INDEX} conv=notrunc 2>/dev/null")
    local = tc.sh(f"t0=$(now); dd if=/dev/{sd[0]} of=/dev/null bs=1M iflag=direct "
                  f"2>/dev/null; elapsed $t0").strip()
    print(f"thin client: disk {DISK_MIB} MiB bound to usb-storage as {sd}, "
          f"sha256 {img_sha[:16]}..., local read {local} s")

    port = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port)], name="vdi1",
                   files={"/data/block.bin": NEW_BLOCK}).start()
    cfg = (f"[agent]\nlog_level = debug\n[usb]\nconnect = 10.0.2.2:{port}\n"
           f"reconnect_min_ms = 100\nreconnect_max_ms = 500\n")

    # 1. rw
    t0 = time.monotonic()
    agent = tc.start_agent(cfg)
    m = agent.wait_log(DISK_RX + rf"redirected rw to 10\.0\.2\.2:{port}", 30)
    timings["redirect rw"] = time.monotonic() - t0
    assert_redirected(tc, disk)
    dev = wait_vdi_disk(vdi)
    out = vdi.sh(f"t0=$(now); dd if=/dev/{dev} bs=1M iflag=direct 2>/dev/null "
                 f"| sha256sum | cut -d' ' -f1; elapsed $t0", timeout=120).split()
    assert out[0] == img_sha, f"VDI read sha256 {out[0]} != thin client's {img_sha}"
    print(f"rw: VDI guest read {DISK_MIB} MiB in {out[1]} s, checksum equal")
    vdi.sh(f"dd if=/data/block.bin of=/dev/{dev} bs={BLOCK} seek={BLOCK_INDEX} "
           f"count=1 oflag=direct conv=notrunc,fsync 2>&1")
    back = vdi.sh(f"dd if=/dev/{dev} bs={BLOCK} skip={BLOCK_INDEX} count=1 "
                  f"iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1").strip()
    assert back == hashlib.sha256(NEW_BLOCK).hexdigest(), "VDI read back another block"
    rc, out = tc.run("cmp /tmp/disk.img /tmp/disk.exp")
    assert rc == 0, f"backing file differs from the expected image: {out}"
    resets = int(vdi.sh("dmesg | grep -c 'reset .*USB device' || true"))
    assert resets == 0, f"the VDI guest reset the disk {resets} times"

    # 2. SIGTERM: handed back
    t0 = time.monotonic()
    agent.stop(timeout=10)
    timings["SIGTERM -> usb-storage back"] = wait_local(tc, disk)
    wait_vdi_no_disk(vdi)
    agent.wait_log(DISK_RX + r"handing the device back to the host")

    # 3. ro
    img_sha = tc.sh("sha256sum /tmp/disk.img | cut -d' ' -f1").strip()
    t0 = time.monotonic()
    agent = tc.start_agent(cfg + "rule = allow class=08 access=ro\n", name="agent-ro")
    agent.wait_log(DISK_RX + rf"redirected ro to 10\.0\.2\.2:{port}", 30)
    timings["redirect ro"] = time.monotonic() - t0
    assert_redirected(tc, disk)
    dev = wait_vdi_disk(vdi)
    ro = vdi.sh(f"cat /sys/block/{dev}/ro; dmesg | grep -c 'Write Protect is on'").split()
    assert ro[0] == "1" and int(ro[1]) >= 1, f"VDI guest does not see write protect: {ro}"
    sha = vdi.sh(f"dd if=/dev/{dev} bs=1M iflag=direct 2>/dev/null | sha256sum "
                 f"| cut -d' ' -f1", timeout=120).strip()
    assert sha == img_sha, "ro read differs"
    rc, out = vdi.run(f"dd if=/dev/zero of=/dev/{dev} bs=4096 count=1 seek=10 "
                      f"oflag=direct 2>&1")
    assert rc != 0, f"write to a ro disk succeeded: {out}"
    assert tc.sh("sha256sum /tmp/disk.img | cut -d' ' -f1").strip() == img_sha
    print(f"ro: write protect seen, write refused ({out.strip()[:80]})")

    # 4. VDI QEMU killed: handed back; a new VDI gets it again
    off = agent.log_offset()
    t0 = time.monotonic()
    vdi.kill()
    timings["VDI killed -> usb-storage back"] = wait_local(tc, disk)
    agent.wait_log(DISK_RX + r"(peer .* closed the connection|connection to peer)",
                   start_offset=off)
    vdi = VdiGuest(td, slots=[("server", port)], name="vdi2").start()
    t0 = time.monotonic()
    agent.wait_log(DISK_RX + r"redirected ro to", 30, start_offset=off)
    timings["new VDI -> redirected"] = time.monotonic() - t0
    dev = wait_vdi_disk(vdi)
    assert_redirected(tc, disk)

    # 5. unplug mid-read, replug
    vdi.sh(f"bg /tmp/rd.log sh -c 'n=0; while dd if=/dev/{dev} of=/dev/null bs=64k "
           f"iflag=direct 2>/dev/null; do n=$((n+1)); echo pass $n; done; "
           f"echo READ-ENDED'")
    vdi.sh("wait_until 30 grep -q 'pass 1' /tmp/rd.log", timeout=40)
    off = agent.log_offset()
    tc.unplug(disk)
    agent.wait_log(DISK_RX + r"unplugged; detaching it from peer", start_offset=off)
    wait_vdi_no_disk(vdi)
    vdi.sh("wait_until 20 grep -q READ-ENDED /tmp/rd.log")
    disc = vdi.sh("dmesg | grep -c 'USB disconnect' || true").strip()
    assert int(disc) >= 1, "VDI guest logged no USB disconnect"
    t0 = time.monotonic()
    tc.plug(disk)
    agent.wait_log(DISK_RX + r"redirected ro to", 30, start_offset=off)
    timings["replug -> redirected"] = time.monotonic() - t0
    dev = wait_vdi_disk(vdi)
    timings["replug -> VDI disk"] = time.monotonic() - t0
    assert_redirected(tc, disk)
    sha = vdi.sh(f"dd if=/dev/{dev} bs=1M iflag=direct 2>/dev/null | sha256sum "
                 f"| cut -d' ' -f1", timeout=120).strip()
    assert sha == img_sha, "read after replug differs"

    # 6. detach, attach
    check_detach(tc, agent, vdi, disk, timings)

    agent.stop(timeout=10)
    wait_local(tc, disk)
    vdi.poweroff()
    debug_timer = [a.name for a in tc.agents
                   if "cannot be watched by epoll" in a.fetch_log()]
    assert not debug_timer, f"1 ms emulation timer armed in {debug_timer}"
    tc.stop()
    print("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    print(f"thin client boot {tc.boot_s:.2f}s, VDI boots {vdi.boot_s:.2f}s; "
          f"total {time.monotonic() - t_start:.1f}s")


harness.main(test)
