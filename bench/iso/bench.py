#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark of isochronous redirection: upstream usbredirect vs redir-agent
redirecting the emulated UVC webcam (usbemu "webcam", 320x240 YUYV at
15 fps, 2.3 MB/s) into one VDI VM (the Linux-guest rig with a control
channel), through tests/guest/isodev.LinkShaper.

Per redirector, in this order: usbredirect (A1), the agent, usbredirect
again (A2); the baseline runs twice to show the A/A spread.  Each:
  * free link, --seconds: frames per second the guest's uvc_capture
    received whole and correct, the redirector's CPU seconds (utime +
    stime, /proc/PID/stat) per second of video;
  * link limited to half the stream's rate, --seconds: frames delivered,
    the longest gap between frames, the longest second without one, the
    latency added (arrival minus the frame's camera time, beyond the best
    seen), the redirector's peak RSS (VmRSS sampled every 0.1 s over the
    whole run);
  * USB resets in the guest log.
Printed as ratios against the mean of A1 and A2.

Usage: bench/iso/bench.py [--seconds 10] [--rounds 1]
Uses $REDIR_AGENT / $REDIR_USBEMU / $REDIR_GUEST_UVC_CAPTURE, else builds
them (release, no sanitizers) in build-rel/.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for sub in ("thinclient", "guest", "e2e"):
    sys.path.insert(0, os.path.join(ROOT, "tests", sub))
from thinclient import VdiGuest, harness  # noqa: E402
from harness import Agent, Fixture, free_port  # noqa: E402
import isodev  # noqa: E402

BUILD = os.path.join(ROOT, "build-rel")
TARGETS = {"REDIR_AGENT": ("redir-agent", "agent"),
           "REDIR_USBEMU": ("usbemu", "tests/fixture"),
           "REDIR_GUEST_UVC_CAPTURE": ("guest_uvc_capture", "tests/guest"),
           "REDIR_GUEST_PCM_IO": ("guest_pcm_io", "tests/guest")}


def build():
    if all(os.environ.get(k) for k in TARGETS):
        return
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", BUILD,
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DREDIR_SANITIZE=OFF"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j", str(os.cpu_count()),
                    "--target", *(t for t, _ in TARGETS.values())],
                   check=True, stdout=subprocess.DEVNULL)
    for env, (name, sub) in TARGETS.items():
        os.environ.setdefault(env, os.path.join(BUILD, sub, name))
    os.environ.setdefault("REDIR_GUEST_CACHE", os.path.join(BUILD, "guest-cache"))


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssPeak(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.peak = max(self.peak, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.1)


class Redirector:
    """usbredirect or the agent, under the umockdev preload."""

    def __init__(self, td, fx, kind, port, n):
        self.kind, self.td, self.fx, self.port, self.n = kind, td, fx, port, n
        self.proc = self.agent = None

    def start(self):
        if self.kind == "agent":
            self.agent = Agent(self.td, self.fx, name=f"agent{self.n}")
            self.agent.start(f"[usb]\nconnect = 127.0.0.1:{self.port}\n" + os.environ.get("BENCH_AGENT_EXTRA", ""))
            self.pid = self.agent.pid
        else:
            log = open(self.td.file(f"usbredirect{self.n}.log"), "ab")
            self.proc = subprocess.Popen(
                ["usbredirect", "--device", isodev.WEBCAM, "--to",
                 f"127.0.0.1:{self.port}"], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT,
                env=harness.preload_env(self.fx.umockdev_dir, asan=False))
            self.pid = self.proc.pid

    def stop(self):
        if self.agent:
            self.agent.stop(timeout=10)
        else:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def capture(vdi, secs):
    out = vdi.sh(f"uvc_capture /dev/video0 320 240 {secs} 15",
                 timeout=secs + 60)
    return dict(re.findall(r"RESULT: (\w+)=(\S*)", out))


def resets(vdi):
    return int(vdi.sh("dmesg | grep -c 'reset .*USB device' || true").strip())


def measure(td, fx, vdi, link, kind, n, secs):
    r = {"label": kind if kind == "agent" else f"usbredirect A{n}"}
    red = Redirector(td, fx, kind, link.port, n)
    red.start()
    rss = RssPeak(red.pid)
    rss.start()
    vdi.sh("wait_for 60 test -c /dev/video0 && sleep 1", timeout=90)
    before = resets(vdi)
    c0, t0 = proc_cpu(red.pid), time.monotonic()
    free = capture(vdi, secs)
    r["cpu_per_s"] = (proc_cpu(red.pid) - c0) / (time.monotonic() - t0)
    r["fps"] = float(free["video_fps"])
    r["bad"] = int(free["video_bad_pattern"])
    link.set_rate(isodev.QVGA_BYTES_S // 2)
    lim = capture(vdi, secs)
    link.set_rate(None)
    per_s = [int(x) for x in lim["video_per_s"].split(",") if x]
    lags = [float(x) for x in lim["video_lag_per_s"].split(",") if x]
    r["lim_frames"] = int(lim["video_frames"])
    r["lim_gap"] = float(lim["video_max_gap_s"])
    r["lim_zero_s"] = max((len(z) for z in "".join(
        "0" if c == 0 else " " for c in per_s).split()), default=0)
    r["lim_lag"] = max(lags) if lags else 0.0
    r["lim_bad"] = int(lim["video_bad_pattern"])
    r["resets"] = resets(vdi) - before
    rss.stop = True
    red.stop()
    link.drop()
    r["rss_kib"] = rss.peak
    vdi.sh("wait_for 30 eval '! test -c /dev/video0'", timeout=60)
    return r


def main(td, args):
    fx = Fixture(td).start()
    fx.add("webcam")
    qport = free_port()
    link = isodev.LinkShaper(qport).start()
    vdi = VdiGuest(td, slots=[("server", qport)], modules=isodev.GUEST_MODULES,
                   files={"/rig/iso.sh": isodev.GUEST_LIB,
                          **isodev.guest_tools()}).start()
    vdi.sh("cat /rig/iso.sh >> /rig/vdi.sh")
    runs = []
    for rnd in range(args.rounds):
        for kind, n in (("usbredirect", 1), ("agent", 0), ("usbredirect", 2)):
            r = measure(td, fx, vdi, link, kind, n, args.seconds)
            r["round"] = rnd + 1
            runs.append(r)
            print(r, flush=True)
    vdi.poweroff()
    report(runs)


def report(runs):
    base = [r for r in runs if r["label"].startswith("usbredirect")]

    def mean(k):
        return sum(r[k] for r in base) / len(base)
    keys = ("fps", "cpu_per_s", "lim_frames", "lim_gap", "lim_lag", "rss_kib")
    print("| redirector | fps | ratio | CPU s per s of video | ratio | "
          "limited: frames | longest gap s | longest 0-frame second | added "
          "latency s | peak RSS MiB | resets |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['label']} | {r['fps']:.2f} | {r['fps'] / mean('fps'):.2f} | "
              f"{r['cpu_per_s']:.3f} | {r['cpu_per_s'] / mean('cpu_per_s'):.2f} | "
              f"{r['lim_frames']} | {r['lim_gap']:.2f} | {r['lim_zero_s']} | "
              f"{r['lim_lag']:.2f} | {r['rss_kib'] / 1024:.1f} | {r['resets']} |")
    if len(base) >= 2:
        spread = {k: abs(base[0][k] - base[1][k]) / max(mean(k), 1e-9) * 100
                  for k in keys}
        print("A/A spread: " + ", ".join(f"{k} {v:.0f} %" for k, v in spread.items()))
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    a = ap.parse_args()
    build()
    harness.main(lambda td: main(td, a), name="bench_iso")
