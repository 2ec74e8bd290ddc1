#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark on a real kernel USB stack: upstream usbredirect vs
redir-agent (rw, ro) redirecting a configfs mass-storage gadget from the
thin-client VM into the VDI VM (tests/thinclient).

In one thin-client VM boot and one VDI VM boot, each redirector in turn
(usbredirect, agent rw, agent ro, usbredirect again: the baseline runs
twice to show the A/A spread) takes the gadget disk from usb-storage and
gives it to the VDI guest, which reads the whole disk READS times
(dd bs=1M iflag=direct, timed in the guest).  Measured:
  * the VDI guest's read throughput (MiB/s, mean of the reads);
  * the redirector's CPU seconds (utime + stime from /proc/PID/stat inside
    the thin-client VM) per GiB read, and split into user and system time;
  * its CPU use while connected and idle (3 s before the reads), in % of
    one vCPU.
Printed as ratios against the mean of the two baseline runs, with the
baseline's A/A spread (|A1 - A2| / mean).

Usage: bench/thinclient/bench.py [--disk-mib 64] [--reads 2] [--rounds 1]
                                 [--max-sectors 2048] [--smp 1]
Uses $REDIR_AGENT, else builds a release agent in build-rel/.
--max-sectors 0 keeps the VDI guest kernel's default (240 sectors = 120 KiB
per SCSI command); 2048 (1 MiB per command) measures the redirectors
instead of the per-command round trip.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "thinclient"))
from thinclient import ThinClient, VdiGuest, disk_gadget, harness  # noqa: E402

BUILD = os.path.join(ROOT, "build-rel")


def build():
    if os.environ.get("REDIR_AGENT"):
        return os.environ["REDIR_AGENT"]
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", BUILD,
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DREDIR_SANITIZE=OFF"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j", str(os.cpu_count()),
                    "--target", "redir-agent"], check=True, stdout=subprocess.DEVNULL)
    os.environ.setdefault("REDIR_GUEST_CACHE", os.path.join(BUILD, "guest-cache"))
    return os.path.join(BUILD, "agent", "redir-agent")


class Run:
    def __init__(self, label, kind):
        self.label, self.kind = label, kind
        self.mib_s = []
        self.cpu_s = 0.0
        self.user_s = self.sys_s = 0.0
        self.idle_cpu_pct = []
        self.gib = 0.0
        self.attach_s = None

    @property
    def mean(self):
        return sum(self.mib_s) / len(self.mib_s)

    @property
    def cpu_per_gib(self):
        return self.cpu_s / self.gib


def cpu(tc, pid):
    """(utime, stime) of a thin-client process, seconds (USER_HZ 100)."""
    f = tc.sh(f"cat /proc/{pid}/stat").rsplit(")", 1)[1].split()
    return int(f[11]) / 100.0, int(f[12]) / 100.0


def measure(tc, vdi, run, port, args, n):
    if run.kind == "usbredirect":
        red = tc.start_agent(None, name=f"usbredirect-{n}", argv=[
            "/usr/bin/usbredirect", "--device", "1209:7d15",
            "--to", f"10.0.2.2:{port}"])
    else:
        access = run.kind.split("-")[1]
        red = tc.start_agent(f"[usb]\nconnect = 10.0.2.2:{port}\n"
                             f"rule = allow class=08 access={access}\n",
                             name=f"{run.kind}-{n}")
    t0 = time.monotonic()
    dev = vdi.sh("wait_disk 60", timeout=70).strip()
    run.attach_s = time.monotonic() - t0
    if args.max_sectors:
        vdi.sh(f"echo {args.max_sectors} > /sys/block/{dev}/device/max_sectors")
    vdi.sh("sleep 1")                       # the guest's own probing settles
    # connected and idle: what the redirector costs doing nothing
    u0, s0 = cpu(tc, red.pid)
    t_idle = time.monotonic()
    time.sleep(3)
    u1, s1 = cpu(tc, red.pid)
    run.idle_cpu_pct.append((u1 + s1 - u0 - s0) / (time.monotonic() - t_idle) * 100)
    cpu0 = tc.cpu_seconds(red.pid)
    uu0, ss0 = cpu(tc, red.pid)
    out = vdi.sh(f"b=$(disk_bytes {dev}); for i in $(seq {args.reads}); do "
                 f"t0=$(now); dd if=/dev/{dev} of=/dev/null bs=1M iflag=direct "
                 f"2>/dev/null || exit 1; mib_per_s $b $(elapsed $t0); echo; done",
                 timeout=60 + args.reads * args.disk_mib)
    run.cpu_s += tc.cpu_seconds(red.pid) - cpu0
    uu1, ss1 = cpu(tc, red.pid)
    run.user_s += uu1 - uu0
    run.sys_s += ss1 - ss0
    run.mib_s += [float(x) for x in out.split()]
    run.gib += args.reads * args.disk_mib / 1024
    red.stop(timeout=15, expect_rc=None, sig=signal.SIGTERM)
    vdi.sh("wait_until 20 eval '! ls -d /sys/block/sd* >/dev/null 2>&1'", timeout=30)
    tc.wait_drivers("1209:7d15", {"1.0": "usb-storage"}, 20)


def bench(td, args, agent):
    t_start = time.monotonic()
    tc = ThinClient(td, agent=agent, usbredirect=True, smp=args.smp).start()
    tc.add_gadget(disk_gadget(size_mib=args.disk_mib))
    tc.wait_drivers("1209:7d15", {"1.0": "usb-storage"})
    sd = tc.block_devs("1209:7d15")[0]
    local = tc.sh(f"t0=$(now); dd if=/dev/{sd} of=/dev/null bs=1M iflag=direct "
                  f"2>/dev/null; elapsed $t0").strip()
    local_mib_s = args.disk_mib / max(float(local), 0.01)
    port = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port)], verbose=False,
                   smp=args.smp).start()
    runs = {}
    order = [("usbredirect A1", "usbredirect"), ("agent rw", "agent-rw"),
             ("agent ro", "agent-ro"), ("usbredirect A2", "usbredirect")]
    n = 0
    for r in range(args.rounds):
        for label, kind in order:
            run = runs.setdefault(label, Run(label, kind))
            n += 1
            measure(tc, vdi, run, port, args, n)
            print(f"  round {r + 1} {label:15s} {run.mib_s[-args.reads:]} MiB/s, "
                  f"attach {run.attach_s:.1f}s", flush=True)
    vdi.poweroff()
    tc.stop()

    a1, a2 = runs["usbredirect A1"], runs["usbredirect A2"]
    base_tp = (a1.mean + a2.mean) / 2
    base_cpu = (a1.cpu_per_gib + a2.cpu_per_gib) / 2
    spread_tp = abs(a1.mean - a2.mean) / base_tp
    spread_cpu = abs(a1.cpu_per_gib - a2.cpu_per_gib) / base_cpu if base_cpu else 0
    ms = f"max_sectors {args.max_sectors}" if args.max_sectors else \
        "max_sectors default (240)"
    print(f"\nthin-client VM rig: {args.disk_mib} MiB gadget disk, {args.reads} "
          f"reads x {args.rounds} round(s) per redirector, VDI guest {ms}, "
          f"smp {args.smp}, {' '.join(tc.accel_args)}")
    print(f"(thin client's own usb-storage read, no redirection: "
          f"{local_mib_s:.1f} MiB/s)")
    print(f"{'redirector':16s} {'VDI read MiB/s':>15s} {'ratio':>7s} "
          f"{'CPU s/GiB':>10s} {'ratio':>7s} {'user/sys s/GiB':>15s} "
          f"{'idle CPU %':>11s}")
    for label in [o[0] for o in order]:
        run = runs[label]
        idle = sum(run.idle_cpu_pct) / len(run.idle_cpu_pct)
        print(f"{label:16s} {run.mean:15.1f} {run.mean / base_tp:7.2f} "
              f"{run.cpu_per_gib:10.2f} "
              f"{(run.cpu_per_gib / base_cpu if base_cpu else 0):7.2f} "
              f"{run.user_s / run.gib:7.1f}/{run.sys_s / run.gib:<7.1f} "
              f"{idle:11.1f}")
    print(f"A/A spread of the baseline: throughput {spread_tp * 100:.1f} %, "
          f"CPU {spread_cpu * 100:.1f} %")
    print(f"wall time {time.monotonic() - t_start:.0f}s (thin client boot "
          f"{tc.boot_s:.1f}s, VDI boot {vdi.boot_s:.1f}s)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--disk-mib", type=int, default=64)
    p.add_argument("--reads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--max-sectors", type=int, default=2048)
    p.add_argument("--smp", type=int, default=1)
    args = p.parse_args()
    agent = build()
    harness.main(lambda td: bench(td, args, agent), name="bench_thinclient")


if __name__ == "__main__":
    main()
