#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark: a Linux guest reads a redirected emulated USB disk through
(a) upstream usbredirect, (b) redir-agent rw, (c) redir-agent ro, all in
one run on the same disk image. Prints guest-measured read throughput and
redirector CPU seconds per GiB, as ratios against (a).

Usage: bench/usb_disk.py [--disk-mib N] [--rounds N] [--other-agent PATH]
--other-agent adds that redir-agent binary (e.g. an older release build)
as "other rw" and "other ro", in the same run.
Needs a release build: cmake -S . -B build-bench -DREDIR_SANITIZE=OFF &&
cmake --build build-bench (the script builds it if missing)."""
import argparse
import os
import subprocess
import sys

OTHER_AGENT = None
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-bench")
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

# The guest kernel's default of 120 KiB per SCSI command makes every
# redirector hit the same ~3.5 ms-per-command ceiling of QEMU under TCG;
# 1 MiB commands measure the redirector instead.
SCRIPT = r"""
dev=$(wait_disk 60) || fail "no USB disk"
echo 2048 > /sys/block/$dev/device/max_sectors
bytes=$(disk_bytes $dev)
echo "BENCH-START"
sleep 1
for i in $(seq 1 @ROUNDS@); do
    t0=$(now)
    dd if=/dev/$dev of=/dev/null bs=1M iflag=direct 2>/dev/null || fail "read"
    result round$i "$(mib_per_s $bytes $(elapsed $t0))"
done
echo "BENCH-END"
sleep 1
"""


def build():
    if not os.path.exists(os.path.join(BUILD, "agent", "redir-agent")):
        subprocess.run(["cmake", "-S", ROOT, "-B", BUILD,
                        "-DCMAKE_BUILD_TYPE=Release", "-DREDIR_SANITIZE=OFF"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j", str(os.cpu_count())],
                   check=True, stdout=subprocess.DEVNULL)
    os.environ["REDIR_AGENT"] = os.path.join(BUILD, "agent", "redir-agent")
    os.environ["REDIR_USBEMU"] = os.path.join(BUILD, "tests", "fixture",
                                              "usbemu")
    os.environ.setdefault("REDIR_GUEST_CACHE", os.path.join(BUILD, "guest-cache"))


class Usbredirect(object):
    """Upstream usbredirect 0.13 on the same emulated device."""

    def __init__(self, td, fx, port):
        self.log = td.file("usbredirect.log")
        env = harness.preload_env(fx.umockdev_dir, asan=False)
        self.proc = subprocess.Popen(
            ["usbredirect", "--device", "1209:0d15", "--to",
             f"127.0.0.1:{port}"], env=env, stdout=open(self.log, "w"),
            stderr=subprocess.STDOUT)
        self.pid = self.proc.pid

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def run_variant(td, variant, img, disk_mib, rounds):
    from linuxguest import LinuxGuest, proc_cpu_seconds
    fx = harness.Fixture(td, name=f"usbemu-{variant}").start()
    fx.add("disk", img)
    port = harness.free_port()
    guest = LinuxGuest(td, SCRIPT.replace("@ROUNDS@", str(rounds)),
                       slots=[("server", port)], name=f"guest-{variant}",
                       verbose=False)
    guest.start()
    if variant == "usbredirect":
        red = Usbredirect(td, fx, port)
    else:
        access = variant.split()[-1]
        path = OTHER_AGENT if variant.startswith("other") else None
        red = harness.Agent(td, fx, path=path,
                            name=f"agent-{variant.replace(' ', '-')}")
        red.start(f"[usb]\nconnect = 127.0.0.1:{port}\nreconnect_max_ms = 300\n"
                  f"rule = allow class=08 access={access}\n")
    guest.wait_serial(r"BENCH-START", 120)
    cpu0 = proc_cpu_seconds(red.pid)
    guest.wait_serial(r"BENCH-END", 600)
    cpu = proc_cpu_seconds(red.pid) - cpu0
    res = guest.wait_done(timeout=120).require_ok()
    red.stop()
    fx.stop()
    speeds = [res.float(f"round{i}") for i in range(1, rounds + 1)]
    gib = disk_mib * rounds / 1024
    return {"mib_s": sum(speeds) / len(speeds), "best": max(speeds),
            "cpu_per_gib": cpu / gib}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--disk-mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--other-agent")
    args = ap.parse_args()
    global OTHER_AGENT
    OTHER_AGENT = args.other_agent
    build()
    global harness
    import harness as h
    harness = h
    from harness import diskimage

    def bench(td):
        img = td.file("disk.img")
        diskimage.make_disk_image(img, args.disk_mib)
        results = {}
        variants = ["usbredirect", "redir-agent rw", "redir-agent ro"]
        if OTHER_AGENT:
            variants += ["other rw", "other ro"]
        for variant in variants:
            results[variant] = run_variant(td, variant, img, args.disk_mib,
                                           args.rounds)
            print(f"{variant:16s} {results[variant]['mib_s']:7.1f} MiB/s "
                  f"(best {results[variant]['best']:.1f}), "
                  f"{results[variant]['cpu_per_gib']:6.2f} CPU s/GiB",
                  flush=True)
        base = results["usbredirect"]
        print(f"\nguest read of a {args.disk_mib} MiB disk x{args.rounds}, "
              "ratios against upstream usbredirect (same disk, same run):")
        print(f"{'':16s} {'throughput':>12s} {'CPU per GiB':>12s}")
        for variant, r in results.items():
            print(f"{variant:16s} {r['mib_s'] / base['mib_s']:11.2f}x "
                  f"{r['cpu_per_gib'] / base['cpu_per_gib']:11.2f}x")

    harness.main(bench, name="bench_usb_disk")


if __name__ == "__main__":
    main()
