#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Thin-client rig: a webcam on the real kernel USB stack.  Gadgets cannot
stream isochronous data here (README: "Isochronous devices"), so the
camera is plugged in from outside: usbemu's emulated UVC webcam on the host
is passed by upstream usbredirect (the rig's "cable", not under test) to a
usb-redir device on a second xHCI of the thin-client VM.  To the thin
client's kernel it is a real high-speed webcam: uvcvideo binds it, usbfs
carries its isochronous URBs, and the agent under test redirects it to the
VDI VM like any camera plugged into a thin client.

Checks: uvcvideo is bound on the thin client before the agent starts; the
agent redirects the camera rw and usbfs holds both interfaces; in the VDI
guest uvcvideo binds it and uvc_capture receives YUYV 320x240 frames and
MJPEG 640x480 frames whose size, header and every byte of the pattern are
right (frames pieced from two or truncated, from packets lost when the TCG
thin client falls behind, are counted: fewer than the whole ones); sequence
numbers increase; no
USB reset in the VDI guest; SIGTERM gives the camera back to uvcvideo on
the thin client.  Frame rates and the agent's CPU are printed, not
asserted (bench/iso measures).
"""
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from thinclient import ThinClient, VdiGuest, harness  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "guest"))
import isodev  # noqa: E402

CAM = "1209:7c4a"
SECONDS = 4
MODES = (("yuyv", "320 240", 15), ("mjpeg", "640 480", 15))


def camera_cable(td, fx, port):
    """usbredirect on the host: the emulated camera into the thin client."""
    log = open(td.file("cable-usbredirect.log"), "ab")
    return subprocess.Popen(
        ["usbredirect", "--device", CAM, "--to", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env=harness.preload_env(fx.umockdev_dir, asan=False))


def capture(vdi, fmt, size, fps):
    out = vdi.sh(f"uvc_capture /dev/video0 {size} {SECONDS} {fps} {fmt}",
                 timeout=SECONDS + 60)
    res = dict(re.findall(r"RESULT: video_(\w+)=(\S*)", out))
    good = int(res["frames"])
    broken = int(res["bad_pattern"]) + int(res["truncated"])
    assert good >= 3, f"{fmt}: {good} good frames:\n{out}"
    assert res["bad_size"] == "0", f"{fmt}: wrong sizes:\n{out}"
    # Broken = pieced from two or truncated: packets lost, never retried.
    # The ASan agent takes the TCG thin client's whole vCPU and, with other
    # VMs running, loses many; most frames must still arrive whole.
    assert broken <= good, f"{fmt}: {broken} broken frames:\n{out}"
    assert int(res["last_seq"]) > int(res["first_seq"]), out
    print(f"{fmt} {size}: {good} frames in {SECONDS} s ({res['fps']} fps), "
          f"{res['missing_seq']} sequence numbers missing, {broken} broken, "
          f"longest gap {res['max_gap_s']} s, per second {res['per_s']}")


def test(td):
    fx = harness.Fixture(td).start()
    fx.add("webcam")
    camport = harness.free_port()
    tc = ThinClient(td, modules=("xhci_pci", "uvcvideo"), extra_args=[
        "-device", "qemu-xhci,id=txhci",
        "-chardev", f"socket,id=cam,host=127.0.0.1,port={camport},"
        "server=on,wait=off",
        "-device", "usb-redir,chardev=cam,bus=txhci.0"]).start()
    cable = camera_cable(td, fx, camport)
    try:
        tc.wait_drivers(CAM, lambda d: d and set(d.values()) == {"uvcvideo"}, 40)
        port = harness.free_port()
        vdi = VdiGuest(td, slots=[("server", port)], modules=isodev.GUEST_MODULES,
                       files={"/rig/iso.sh": isodev.GUEST_LIB,
                              **isodev.guest_tools()}).start()
        vdi.sh("cat /rig/iso.sh >> /rig/vdi.sh")
        agent = tc.start_agent(f"[usb]\nconnect = 10.0.2.2:{port}\n")
        agent.wait_log(r'1209:7c4a "Emulated Webcam" at \S+: redirected rw to', 60)
        tc.wait_drivers(CAM, lambda d: d and set(d.values()) == {"usbfs"}, 30)
        vdi.sh("wait_for 60 test -c /dev/video0", timeout=90)
        cpu0 = tc.cpu_seconds(agent.pid)
        for fmt, size, fps in MODES:
            capture(vdi, fmt, size, fps)
        cpu = tc.cpu_seconds(agent.pid) - cpu0
        resets = int(vdi.sh("dmesg | grep -c 'reset .*USB device' || true"))
        assert resets == 0, f"{resets} USB resets in the VDI guest"
        agent.stop()
        tc.wait_drivers(CAM, lambda d: d and set(d.values()) == {"uvcvideo"}, 30)
        print(f"agent CPU {cpu:.1f} s over {len(MODES) * SECONDS} s of video "
              f"(inside the TCG thin client, this build)")
        vdi.poweroff()
    finally:
        cable.send_signal(signal.SIGINT)
        try:
            cable.wait(10)
        except subprocess.TimeoutExpired:
            cable.kill()
    tc.stop()


harness.main(test)
