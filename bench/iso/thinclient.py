#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark of isochronous redirection on the thin-client rig's real
kernel USB stack: upstream usbredirect vs redir-agent, both inside the
thin-client VM, redirecting a webcam that uvcvideo had bound there.

The camera is usbemu's emulated webcam on the host, plugged into the thin
client by upstream usbredirect through a usb-redir device on a second xHCI
(tests/thinclient/test_webcam.py); the redirector under test reaches the
VDI VM at 10.0.2.2 through isodev.LinkShaper.  Per redirector, in this
order: usbredirect (A1), the agent, usbredirect (A2); each: YUYV 320x240
at 15 fps for --seconds on a free link (frames per second delivered whole,
the redirector's CPU seconds per second of video from /proc/PID/stat in
the thin client), then --seconds with the link limited to half the
stream's rate (frames, longest gap, added latency), then the redirector's
VmRSS and the guest's USB resets.

Usage: bench/iso/thinclient.py [--seconds 10]
Uses the release build in build-rel/ (see bench.py).
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
from bench import ROOT  # noqa: E402,F401
from thinclient import ThinClient, VdiGuest, harness  # noqa: E402
from harness import Fixture, free_port  # noqa: E402
import isodev  # noqa: E402

CAM = "1209:7c4a"


def start(tc, kind, port):
    if kind == "agent":
        return tc.start_agent(f"[usb]\nconnect = 10.0.2.2:{port}\n",
                              name="agent", asan_options="")
    return tc.start_agent(None, name="usbredirect", argv=[
        "/usr/bin/usbredirect", "--device", CAM, "--to", f"10.0.2.2:{port}"])


def capture(vdi, secs):
    out = vdi.sh(f"uvc_capture /dev/video0 320 240 {secs} 15", timeout=secs + 90)
    return dict(re.findall(r"RESULT: (\w+)=(\S*)", out))


def measure(tc, vdi, link, kind, n, secs):
    r = {"label": "agent" if kind == "agent" else f"usbredirect A{n}"}
    red = start(tc, kind, link.port)
    vdi.sh("wait_for 90 test -c /dev/video0 && sleep 1", timeout=120)
    before = int(vdi.sh("dmesg | grep -c 'reset .*USB device' || true"))
    c0, t0 = tc.cpu_seconds(red.pid), time.monotonic()
    free = capture(vdi, secs)
    r["cpu_per_s"] = (tc.cpu_seconds(red.pid) - c0) / (time.monotonic() - t0)
    r["fps"] = float(free["video_fps"])
    link.set_rate(isodev.QVGA_BYTES_S // 2)
    lim = capture(vdi, secs)
    link.set_rate(None)
    lags = [float(x) for x in lim["video_lag_per_s"].split(",") if x]
    r["lim_frames"] = int(lim["video_frames"])
    r["lim_gap"] = float(lim["video_max_gap_s"])
    r["lim_lag"] = max(lags) if lags else 0.0
    r["rss_kib"] = int(tc.proc_status(red.pid)["VmRSS"].split()[0])
    r["resets"] = int(vdi.sh("dmesg | grep -c 'reset .*USB device' || true")) - before
    red.stop(expect_rc=None)
    link.drop()
    vdi.sh("wait_for 60 eval '! test -c /dev/video0'", timeout=90)
    return r


def main(td, args):
    fx = Fixture(td).start()
    fx.add("webcam")
    camport, qport = free_port(), free_port()
    tc = ThinClient(td, usbredirect=True, modules=("xhci_pci", "uvcvideo"),
                    extra_args=["-device", "qemu-xhci,id=txhci", "-chardev",
                                f"socket,id=cam,host=127.0.0.1,port={camport},"
                                "server=on,wait=off",
                                "-device", "usb-redir,chardev=cam,bus=txhci.0"])
    tc.start()
    cable = subprocess.Popen(
        ["usbredirect", "--device", CAM, "--to", f"127.0.0.1:{camport}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=harness.preload_env(fx.umockdev_dir, asan=False))
    try:
        tc.wait_drivers(CAM, lambda d: d and set(d.values()) == {"uvcvideo"}, 60)
        link = isodev.LinkShaper(qport).start()
        vdi = VdiGuest(td, slots=[("server", qport)], modules=isodev.GUEST_MODULES,
                       files={"/rig/iso.sh": isodev.GUEST_LIB,
                              **isodev.guest_tools()}).start()
        vdi.sh("cat /rig/iso.sh >> /rig/vdi.sh")
        runs = []
        for kind, n in (("usbredirect", 1), ("agent", 0), ("usbredirect", 2)):
            r = measure(tc, vdi, link, kind, n, args.seconds)
            runs.append(r)
            print(r, flush=True)
        vdi.poweroff()
    finally:
        cable.send_signal(signal.SIGINT)
        cable.wait(10)
    tc.stop()
    report(runs)


def report(runs):
    base = [r for r in runs if r["label"].startswith("usbredirect")]

    def mean(k):
        return sum(r[k] for r in base) / len(base)
    print("| redirector (in the thin client) | fps | ratio | CPU s per s of "
          "video | ratio | limited: frames | longest gap s | added latency s "
          "| RSS MiB | resets |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['label']} | {r['fps']:.2f} | {r['fps'] / mean('fps'):.2f} | "
              f"{r['cpu_per_s']:.3f} | {r['cpu_per_s'] / mean('cpu_per_s'):.2f} | "
              f"{r['lim_frames']} | {r['lim_gap']:.2f} | {r['lim_lag']:.2f} | "
              f"{r['rss_kib'] / 1024:.1f} | {r['resets']} |")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    bench.build()
    harness.main(lambda td: main(td, a), name="bench_iso_thinclient")
