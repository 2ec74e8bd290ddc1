#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark: the agent's RSS, peak RSS and CPU per GiB while a Linux guest reads 8 redirected emulated disks at once, against upstream usbredirect (one process per disk) in the same run.

Usage: bench/agent_streaming.py [--disks 8] [--disk-mib 64] [--passes 2]
                                [--one-passes 4] [--variants agent,usbredirect]

One Linux guest (tests/guest/linuxguest.py; TCG here, 1 vCPU) with DISKS
usb-redir slots on a 15-port xHCI (all devices at 480 Mb/s, no hub), and
DISKS emulated disks (usbemu under the umockdev preload), redirected by
  * agent: one redir-agent (release build) with DISKS connect slots, all
    disks in one usbemu;
  * usbredirect: upstream usbredirect 0.13, one process per disk, each
    disk in its own usbemu (usbredirect picks a device by VID:PID only).
The guest script runs these phases, each announced on its console:
  idle      all disks attached and seen by the guest, nothing read;
  one       the first disk read ONE_PASSES times (dd bs=1M iflag=direct,
            1 MiB SCSI commands): one device streaming, the others idle;
  after-one a few seconds of nothing;
  all       every disk read PASSES times, all disks in parallel;
  after-all a few seconds of nothing (the "after traffic" figure is the
            last sample of it).
The host samples VmRSS and RssAnon of the redirector (summed over the
usbredirect processes) every 0.1 s, resets VmHWM (clear_refs 5) when a
streaming phase starts and reads it when it ends, and reads utime+stime
(/proc/PID/stat) at each phase change. CPU per GiB is the whole
streaming phase's CPU (it starts STREAM_DELAY_S before the first read);
"above the idle rate" subtracts the idle phase's CPU rate over the same
wall time (agent only): under umockdev the agent polls each emulated
device's fd every millisecond (epoll refuses its regular-file node), a
cost a real usbfs device does not have. usbredirect spins here (each
idle process takes what CPU it gets): its CPU per GiB is mostly that
spinning, and it slows the guest, so the CPU ratio overstates what it
would be on real devices (bench/thinclient measures those). Bytes moved
are the guest's dd record counts (checked against what was asked) and,
for the agent, its Prometheus counter
redir_agent_usb_bytes_total{direction="to_peer"} (usbredir framing
included). The resident [heap] (glibc's main arena) is read before the
first and after the last streaming phase.

Prints one table per variant and the ratios agent / usbredirect, and the
load average before and after: the machine is shared, TCG makes the guest
the throughput bottleneck; RSS and CPU per GiB are the figures that count.
Needs a release build in build-bench/ (built if missing, as usb_disk.py).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build-bench")
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

SAMPLE_S = 0.1        # RSS sampling period: several samples per second of dd
IDLE_S = 4            # the idle phase: long enough for a stable median
AFTER_S = 5           # "a few seconds after the guest stops reading"
# The guest waits this long after announcing a streaming phase: the host
# (polling the console every 50 ms) has taken its CPU and byte counts and
# reset VmHWM before the first read; the phase's RSS samples start then.
STREAM_DELAY_S = 1
MIB = 1 << 20
BYTES_TO_PEER = 'redir_agent_usb_bytes_total{direction="to_peer"}'

# Busybox ash in the guest. 1 MiB SCSI commands (max_sectors 2048): the
# kernel's default 120 KiB makes every redirector wait on QEMU's
# per-command cost under TCG (see usb_disk.py).
SCRIPT = r"""
n=@DISKS@
t=1800
while :; do
    disks=""
    for b in /sys/block/sd*; do
        [ -e "$b/size" ] && [ "$(cat $b/size)" = @SECTORS@ ] && \
            [ -b /dev/${b##*/} ] && disks="$disks ${b##*/}"
    done
    [ $(echo $disks | wc -w) -ge $n ] && break
    t=$((t - 1)); [ $t -gt 0 ] || fail "only $disks of $n disks"
    usleep 100000
done
for d in $disks; do echo 2048 > /sys/block/$d/device/max_sectors; done
first=$(echo $disks | cut -d' ' -f1)
mibs() { awk '/records in/ { split($1, a, "+"); s += a[1] } END { print s + 0 }' "$@"; }
echo "PHASE idle"
sleep @IDLE@
echo "PHASE one"
sleep @DELAY@
t0=$(now)
for i in $(seq 1 @ONE_PASSES@); do
    dd if=/dev/$first of=/dev/null bs=1M iflag=direct 2>>/tmp/one.dd || fail "dd $first"
done
result one_s $(elapsed $t0)
result one_mib $(mibs /tmp/one.dd)
echo "PHASE after-one"
sleep @AFTER@
echo "PHASE all"
sleep @DELAY@
t0=$(now)
pids=""
for d in $disks; do
    ( for i in $(seq 1 @PASSES@); do
          dd if=/dev/$d of=/dev/null bs=1M iflag=direct 2>>/tmp/all.$d.dd || exit 1
      done ) &
    pids="$pids $!"
done
for p in $pids; do wait $p || fail "a parallel dd failed"; done
result all_s $(elapsed $t0)
result all_mib $(mibs /tmp/all.*.dd)
echo "PHASE after-all"
sleep @AFTER@
echo "PHASE end"
"""


def build():
    # always configured: another bench may have made build-bench without
    # the tests (and the emulated-device fixture this one needs)
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD,
                    "-DCMAKE_BUILD_TYPE=Release", "-DREDIR_SANITIZE=OFF",
                    "-DREDIR_BUILD_TESTS=ON"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j", str(os.cpu_count())],
                   check=True, stdout=subprocess.DEVNULL)
    os.environ["REDIR_AGENT"] = os.path.join(BUILD, "agent", "redir-agent")
    os.environ["REDIR_USBEMU"] = os.path.join(BUILD, "tests", "fixture",
                                              "usbemu")
    os.environ.setdefault("REDIR_GUEST_CACHE",
                          os.path.join(BUILD, "guest-cache"))


# --------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------

from rss import status_kb  # noqa: E402  (bench/rss.py: /proc/PID/status)


def cpu_s(pids):
    from linuxguest import proc_cpu_seconds
    return sum(proc_cpu_seconds(p) for p in pids)


def heap_kb(pids):
    """Resident kB of the [heap] mappings (brk: glibc's main arena)."""
    total = 0
    for p in pids:
        in_heap = False
        with open(f"/proc/{p}/smaps") as f:
            for line in f:
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    in_heap = line.rstrip().endswith("[heap]")
                elif in_heap and line.startswith("Rss:"):
                    total += int(line.split()[1])
    return total


def reset_hwm(pids):
    """clear_refs 5: VmHWM restarts from the current RSS (Linux >= 4.0)."""
    for p in pids:
        with open(f"/proc/{p}/clear_refs", "w") as f:
            f.write("5")


class Sampler(threading.Thread):
    """(time, summed VmRSS kB, summed RssAnon kB) every SAMPLE_S."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = list(pids)
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                rss = sum(status_kb(p, "VmRSS") for p in self.pids)
                anon = sum(status_kb(p, "RssAnon") for p in self.pids)
            except OSError:
                return
            self.samples.append((time.monotonic(), rss, anon))
            self.halt.wait(SAMPLE_S)

    def between(self, t0, t1):
        return [s for s in self.samples if t0 <= s[0] < t1]


# --------------------------------------------------------------------------
# The guest: 8 slots on a 15-port xHCI
# --------------------------------------------------------------------------

def guest_class():
    from linuxguest import GuestQemu, LinuxGuest

    class GuestQemu15(GuestQemu):
        # qemu-xhci has 4 ports by default, and QEMU puts a full-speed hub
        # on the last free one: 15 ports keep every disk at 480 Mb/s.
        def command_line(self):
            return [("qemu-xhci,id=xhci,p2=15,p3=15"
                     if a == "qemu-xhci,id=xhci" else a)
                    for a in super().command_line()]

    class Guest15(LinuxGuest):
        def start(self):
            if not hasattr(self, "initrd_path"):
                self.prepare()
            self.qemu = GuestQemu15(
                self.testdir, slots=self.slots, paused=False, name=self.name,
                memory=self.memory, accel_args=self.accel_args,
                debug=self.debug, extra_args=self.command_args())
            self.qemu.start()
            return self

    return Guest15


# --------------------------------------------------------------------------
# Redirectors
# --------------------------------------------------------------------------

class AgentSide:
    """One redir-agent, all disks in one usbemu, metrics for the bytes."""

    def __init__(self, td, imgs, ports):
        self.td, self.imgs, self.ports = td, imgs, ports
        self.fx = harness.Fixture(td, name="usbemu-agent").start()
        self.mport = harness.free_port()
        self.agent = harness.Agent(td, self.fx, name="agent")
        self.agent.start(
            f"[agent]\nmetrics_listen = 127.0.0.1:{self.mport}\n"
            "[usb]\nconnect = " +
            ", ".join(f"127.0.0.1:{p}" for p in ports) +
            "\nrule = allow class=08 access=rw\nreconnect_max_ms = 300\n")
        self.agent.wait_log(r"starting with")
        self.pids = [self.agent.pid]

    def no_device_rss(self):
        time.sleep(2)
        return status_kb(self.agent.pid, "VmRSS"), \
            status_kb(self.agent.pid, "RssAnon")

    def attach(self):
        for img in self.imgs:
            self.fx.add("disk", img)

    def bytes_to_peer(self):
        import prom
        status, _, text = prom.get(self.mport)
        if status != 200:
            raise RuntimeError(f"agent metrics: HTTP {status}")
        return prom.samples(text)[BYTES_TO_PEER]

    def check(self):
        n = len(re.findall(r": redirected rw to", self.agent.log_text()))
        if n < len(self.imgs):
            raise RuntimeError(f"the agent redirected {n} of "
                               f"{len(self.imgs)} disks")

    def stop(self):
        self.agent.stop(timeout=10, expect_rc=None)
        self.fx.stop()


class UsbredirectSide:
    """One usbredirect and one usbemu per disk (usbredirect 0.13 picks a
    device by VID:PID; its BUS-DEV form picked one disk twice here)."""

    def __init__(self, td, imgs, ports):
        self.fxs, self.procs = [], []
        for i, img in enumerate(imgs):
            fx = harness.Fixture(td, name=f"usbemu-ur{i}").start()
            fx.add("disk", img)
            self.fxs.append(fx)
        for i, (fx, port) in enumerate(zip(self.fxs, ports)):
            env = harness.preload_env(fx.umockdev_dir, asan=False)
            self.procs.append(subprocess.Popen(
                ["usbredirect", "--device", "1209:0d15", "--to",
                 f"127.0.0.1:{port}"], env=env,
                stdout=open(td.file(f"usbredirect{i}.log"), "w"),
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        self.pids = [p.pid for p in self.procs]

    def no_device_rss(self):
        return None

    def attach(self):
        pass

    def bytes_to_peer(self):
        return None

    def check(self):
        dead = [i for i, p in enumerate(self.procs) if p.poll() is not None]
        if dead:
            raise RuntimeError(f"usbredirect {dead} exited")

    def stop(self):
        for p in self.procs:
            p.terminate()
            p.wait(10)
        for fx in self.fxs:
            fx.stop()


# --------------------------------------------------------------------------
# One variant
# --------------------------------------------------------------------------

PHASES = ("idle", "one", "after-one", "all", "after-all", "end")


def run_variant(td, variant, imgs, sectors, args):
    ports = [harness.free_port() for _ in imgs]
    script = SCRIPT
    for k, v in dict(DISKS=len(imgs), SECTORS=sectors, IDLE=IDLE_S,
                     AFTER=args.after_s, DELAY=STREAM_DELAY_S,
                     ONE_PASSES=args.one_passes, PASSES=args.passes).items():
        script = script.replace(f"@{k}@", str(v))
    guest = guest_class()(td, script, slots=[("server", p) for p in ports],
                          name=f"guest-{variant}", verbose=False)
    guest.start()
    for p in ports:
        guest.qemu.wait_listening(p)
    side = (AgentSide if variant == "agent" else UsbredirectSide)(
        td, imgs, ports)
    fig = {"load0": os.getloadavg(), "no_device": side.no_device_rss()}
    side.attach()
    sampler = Sampler(side.pids)
    sampler.start()
    marks = {}
    rx = re.compile(r"^PHASE (\S+)", re.MULTILINE)
    deadline = time.monotonic() + args.timeout
    while "end" not in marks:
        for name in rx.findall(guest.serial_text()):
            if name in marks:
                continue
            marks[name] = {"t": time.monotonic(), "cpu": cpu_s(side.pids),
                           "bytes": side.bytes_to_peer()}
            if name in ("one", "all"):
                reset_hwm(side.pids)
            if name in ("one", "end"):
                marks[name]["heap"] = heap_kb(side.pids)
            if name in ("after-one", "after-all"):
                marks[name]["hwm"] = sum(status_kb(p, "VmHWM")
                                         for p in side.pids)
        if "GUEST-DONE" in guest.serial_text() and "end" not in marks:
            guest.wait_done(10).require_ok()
            raise RuntimeError("guest finished without PHASE end")
        guest._check_alive("before PHASE end")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out; phases seen: {list(marks)}")
        time.sleep(0.05)
    sampler.halt.set()
    sampler.join()
    side.check()  # before the guest powers off: usbredirect exits then
    res = guest.wait_done(timeout=60).require_ok()
    side.stop()
    fig["load1"] = os.getloadavg()
    fig["after_s"] = args.after_s
    fig["heap"] = (marks["one"]["heap"], marks["end"]["heap"])
    fig.update(summarize(sampler, marks, res, imgs, args))
    return fig


def summarize(sampler, marks, res, imgs, args):
    """Per-phase RSS (median, max, last), CPU per GiB, bytes."""
    out = {}
    for a, b in zip(PHASES, PHASES[1:]):
        t0 = marks[a]["t"] + (STREAM_DELAY_S if a in ("one", "all") else 0)
        s = sampler.between(t0, marks[b]["t"])
        if not s:
            raise RuntimeError(f"no RSS sample in phase {a}")
        rss = [x[1] for x in s]
        out[a] = {"median": statistics.median(rss), "max": max(rss),
                  "first": rss[0], "last": rss[-1], "anon_last": s[-1][2],
                  "anon_median": statistics.median(x[2] for x in s),
                  "n": len(s), "secs": marks[b]["t"] - marks[a]["t"]}
    idle_s = marks["one"]["t"] - marks["idle"]["t"]
    out["idle"]["cpu_pct"] = 100 * (marks["one"]["cpu"] -
                                    marks["idle"]["cpu"]) / idle_s
    disk_mib = os.path.getsize(imgs[0]) // MIB
    for phase, after, want in (
            ("one", "after-one", disk_mib * args.one_passes),
            ("all", "after-all", disk_mib * args.passes * len(imgs))):
        got = int(res[f"{phase}_mib"])
        if got != want:
            raise RuntimeError(f"phase {phase}: the guest read {got} MiB, "
                               f"expected {want}")
        p = out[phase]
        p["mib"] = got
        p["guest_s"] = float(res[f"{phase}_s"])
        p["cpu"] = marks[after]["cpu"] - marks[phase]["cpu"]
        p["cpu_per_gib"] = p["cpu"] / (got / 1024)
        # what the traffic added to the idle cost (servicing the emulated
        # devices, usbredirect's spinning) over the phase's wall time
        wall = marks[after]["t"] - marks[phase]["t"]
        idle_cpu = out["idle"]["cpu_pct"] / 100 * wall
        p["net_cpu_per_gib"] = (p["cpu"] - idle_cpu) / (got / 1024)
        p["hwm"] = marks[after]["hwm"]
        b0, b1 = marks[phase]["bytes"], marks[after]["bytes"]
        p["wire_mib"] = None if b0 is None else (b1 - b0) / MIB
    return out


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def mib(kb):
    return f"{kb / 1024:.2f}"


def print_variant(name, f, ndisks):
    idle = f["idle"]["median"]
    after_s = f["after_s"]
    print(f"\n{name}: load average {f['load0'][0]:.2f} before, "
          f"{f['load1'][0]:.2f} after (1 min)")
    if f["no_device"]:
        print(f"  no device yet (under the preload): RSS "
              f"{mib(f['no_device'][0])} MiB, anon {mib(f['no_device'][1])}")
    print(f"  {'phase':34} {'RSS MiB':>8} {'anon':>7} {'+ vs idle':>10}")
    rows = [
        ("idle, all attached (median)", idle, f["idle"]["anon_median"]),
        ("one streaming: median", f["one"]["median"], None),
        ("one streaming: max sample", f["one"]["max"], None),
        ("one streaming: VmHWM", f["one"]["hwm"], None),
        (f"{after_s} s after one", f["after-one"]["last"],
         f["after-one"]["anon_last"]),
        (f"{ndisks} streaming: median", f["all"]["median"], None),
        (f"{ndisks} streaming: max sample", f["all"]["max"], None),
        (f"{ndisks} streaming: VmHWM", f["all"]["hwm"], None),
        (f"right after {ndisks} (first sample)", f["after-all"]["first"],
         None),
        (f"{after_s} s after {ndisks}", f["after-all"]["last"],
         f["after-all"]["anon_last"]),
    ]
    for label, kb, anon in rows:
        a = mib(anon) if anon is not None else ""
        print(f"  {label:34} {mib(kb):>8} {a:>7} {(kb - idle) / 1024:>+10.2f}")
    for phase, label in (("one", "one disk"), ("all", f"{ndisks} disks")):
        p = f[phase]
        wire = (f", agent sent {p['wire_mib']:.1f} MiB to QEMU"
                if p["wire_mib"] is not None else "")
        print(f"  {label}: {p['mib']} MiB read by the guest in "
              f"{p['guest_s']:.1f} s ({p['mib'] / p['guest_s']:.1f} MiB/s)"
              f"{wire}; CPU {p['cpu']:.2f} s = {p['cpu_per_gib']:.2f} s/GiB" +
              (f", {p['net_cpu_per_gib']:.2f} s/GiB above the idle rate"
               if name == "agent" else ""))
    print(f"  [heap] resident: {mib(f['heap'][0])} MiB idle, "
          f"{mib(f['heap'][1])} MiB {after_s} s after {ndisks}")
    print(f"  CPU while idle, all attached: {f['idle']['cpu_pct']:.1f} % "
          "of one core")
    inc1 = (f["one"]["hwm"] - idle) / 1024
    inc8 = (f["all"]["hwm"] - idle) / 1024 / ndisks
    print(f"  peak increment per streaming device: one {inc1:.2f} MiB, "
          f"{ndisks} at once {inc8:.2f} MiB each")


def print_ratios(a, u, ndisks):
    print(f"\nagent / usbredirect ({ndisks} processes summed), same run:")
    after_s = a["after_s"]
    rows = [
        ("RSS idle, all attached", a["idle"]["median"], u["idle"]["median"]),
        ("anon idle", a["idle"]["anon_median"], u["idle"]["anon_median"]),
        (f"RSS median, {ndisks} streaming", a["all"]["median"],
         u["all"]["median"]),
        (f"VmHWM, {ndisks} streaming", a["all"]["hwm"], u["all"]["hwm"]),
        (f"RSS {after_s} s after", a["after-all"]["last"],
         u["after-all"]["last"]),
        ("CPU % of a core, idle", a["idle"]["cpu_pct"],
         u["idle"]["cpu_pct"]),
        ("CPU s/GiB, one streaming", a["one"]["cpu_per_gib"],
         u["one"]["cpu_per_gib"]),
        (f"CPU s/GiB, {ndisks} streaming", a["all"]["cpu_per_gib"],
         u["all"]["cpu_per_gib"]),
        ("guest MiB/s, one", a["one"]["mib"] / a["one"]["guest_s"],
         u["one"]["mib"] / u["one"]["guest_s"]),
        (f"guest MiB/s, {ndisks}", a["all"]["mib"] / a["all"]["guest_s"],
         u["all"]["mib"] / u["all"]["guest_s"]),
    ]
    print(f"  {'':32} {'agent':>9} {'usbredir':>9} {'ratio':>7}")
    for label, x, y in rows:
        if label.startswith(("RSS", "anon", "VmHWM")):
            xs, ys = mib(x) + " M", mib(y) + " M"
        else:
            xs, ys = f"{x:.2f}", f"{y:.2f}"
        ratio = f"{x / y:>6.2f}x" if y else "     -"
        print(f"  {label:32} {xs:>9} {ys:>9} {ratio}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--disks", type=int, default=8)
    ap.add_argument("--disk-mib", type=int, default=64)
    ap.add_argument("--passes", type=int, default=2,
                    help="reads of every disk in the parallel phase")
    ap.add_argument("--one-passes", type=int, default=4,
                    help="reads of the first disk in the one-device phase")
    ap.add_argument("--after-s", type=int, default=AFTER_S,
                    help="seconds of nothing after each streaming phase")
    ap.add_argument("--variants", default="agent,usbredirect")
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()
    build()
    global harness
    import harness as h
    harness = h
    from harness import diskimage
    import shutil

    def bench(td):
        print(f"{os.cpu_count()} CPUs, no KVM: the guest runs under TCG and "
              f"is the throughput bottleneck; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        first = td.file("disk0.img")
        diskimage.make_disk_image(first, args.disk_mib)
        imgs = [first]
        for i in range(1, args.disks):
            imgs.append(td.file(f"disk{i}.img"))
            shutil.copyfile(first, imgs[-1])
        sectors = os.path.getsize(first) // 512
        figs = {}
        for v in args.variants.split(","):
            figs[v] = run_variant(td, v, imgs, sectors, args)
            print_variant(v, figs[v], args.disks)
            sys.stdout.flush()
        if "agent" in figs and "usbredirect" in figs:
            print_ratios(figs["agent"], figs["usbredirect"], args.disks)

    harness.main(bench, name="bench_agent_streaming")


if __name__ == "__main__":
    main()
