#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark: size and memory of the packaged redir-agent and redir-relay on amd64, arm64 and armhf; agent RSS with 8 emulated USB devices redirected.

Usage: bench/rss.py [--debs DIR] [--settle SECONDS]

Measures the binaries shipped in the .debs (built with
packaging/build-deb.sh into DIR, default build-bench/debs; -O2, hardened,
stripped):

  * size: the stripped file, and what gets loaded (sum of PT_LOAD file
    sizes; arm64 files carry 64 KiB segment alignment padding);
  * idle RSS: the agent with 8 connect slots and no USB device, the relay
    with 8 targets and no session, each after SETTLE seconds. amd64 runs
    natively. arm64 and armhf run under qemu-user (no ARM hardware here):
    qemu-aarch64/qemu-arm's own RSS (translator, code cache, its libraries)
    says nothing about the target, so the guest is put at a known base
    (-B) and only pages inside the guest's address space are counted, from
    /proc/PID/smaps. That is what the ARM process itself has resident
    (its libraries' pages included, as for the native figure); qemu's
    total is printed too;
  * 8 devices (amd64 only: the emulated devices are an amd64 umockdev
    preload): usbemu with 4 disks and 4 loopbacks, QEMU with 8 usb-redir
    slots (xHCI with 15 ports), the agent under the umockdev preload.
    RSS idle under the preload, then once all 8 are attached in QEMU, then
    after a guest reset made SeaBIOS enumerate all 8 and boot from a disk;
    VmHWM is the peak.
"""
import argparse
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

ARCHES = {  # arch: (qemu-user emulator or None for native, ELF machine)
    "amd64": (None, "X86-64"),
    "arm64": ("qemu-aarch64", "AArch64"),
    "armhf": ("qemu-arm", "ARM"),
}
GUEST_BASE = 0x4000000000  # qemu-user -B: the guest's 4 GiB window
GUEST_SPAN = 0x100000000
GUEST_RESERVE = {"qemu-aarch64": ["-R", hex(GUEST_SPAN)], "qemu-arm": []}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kib(n):
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.2f} MiB"


def mib_kb(kb):
    return f"{kb / 1024:.1f} MiB"


# --------------------------------------------------------------------------
# The packaged binaries
# --------------------------------------------------------------------------

def build_debs(out):
    for arch in ARCHES:
        print(f"building the {arch} .debs ...", flush=True)
        subprocess.run([os.path.join(ROOT, "packaging", "build-deb.sh"), arch,
                        out], check=True, stdout=subprocess.DEVNULL)


def extract(out, arch, package, dest):
    debs = glob.glob(os.path.join(out, arch, f"{package}_*_{arch}.deb"))
    if not debs:
        return None
    d = os.path.join(dest, f"{package}-{arch}")
    subprocess.run(["dpkg-deb", "-x", debs[0], d], check=True)
    return os.path.join(d, "usr", "sbin", package)


def loaded_size(path):
    """Sum of the PT_LOAD segments' file sizes."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True,
                         text=True, check=True).stdout
    total = 0
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            total += int(f[4], 16)
    return total


# --------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------

def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_anon(pid):
    """(VmRSS, RssAnon) in kB: all resident pages, and the private ones
    (heap, stacks; not the shared libraries' pages)."""
    return status_kb(pid, "VmRSS"), status_kb(pid, "RssAnon")


def guest_rss_kb(pid):
    """Resident kB of the mappings inside the qemu-user guest window."""
    total, start = 0, None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-[0-9a-f]+ ", line)
            if m:
                start = int(m.group(1), 16)
            elif line.startswith("Rss:") and \
                    GUEST_BASE <= start < GUEST_BASE + GUEST_SPAN:
                total += int(line.split()[1])
    return total


def run_idle(binary, emulator, config, log, settle, ready):
    """Starts `binary -f -c config`, waits for `ready` in its log and
    `settle` s; returns (rss kB, qemu total kB or None)."""
    cmd = [binary, "-f", "-c", config]
    if emulator:
        cmd = [emulator, "-B", hex(GUEST_BASE), *GUEST_RESERVE[emulator], *cmd]
    with open(log, "w") as lf:
        p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while ready not in open(log).read():
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(cmd)} did not start:\n"
                                   f"{open(log).read()}")
            time.sleep(0.05)
        time.sleep(settle)
        if emulator:
            return guest_rss_kb(p.pid), status_kb(p.pid, "VmRSS")
        return status_kb(p.pid, "VmRSS"), status_kb(p.pid, "RssAnon")
    finally:
        p.terminate()
        p.wait(10)


def idle_figures(binaries, tmp, settle):
    agent_conf = os.path.join(tmp, "agent.ini")
    with open(agent_conf, "w") as f:
        f.write("[agent]\ncontrol_socket = %s\n[usb]\nconnect = %s\n" % (
            os.path.join(tmp, "agent.sock"),
            ", ".join(f"127.0.0.1:{free_port()}" for _ in range(8))))
    secret = os.path.join(tmp, "relay.secret")
    with open(secret, "w") as f:
        f.write("0123456789abcdef0123456789abcdef\n")
    os.chmod(secret, 0o600)
    relay_conf = os.path.join(tmp, "relay.ini")
    with open(relay_conf, "w") as f:
        f.write(f"[relay]\nlisten = 127.0.0.1:{free_port()}\n"
                f"secret_file = {secret}\n")
        for i in range(8):
            f.write(f"[target.vm{i}]\nqemu = 127.0.0.1:{free_port()}\n")
    rows = []
    for arch, (emulator, _) in ARCHES.items():
        for name, conf, ready in (
                ("redir-agent", agent_conf, "starting with"),
                ("redir-relay", relay_conf, "listening for agents")):
            binary = binaries.get((arch, name))
            if not binary:
                continue
            log = os.path.join(tmp, f"{name}-{arch}.log")
            rss, qemu_total = run_idle(binary, emulator, conf, log, settle,
                                       ready)
            rows.append((arch, name, rss, qemu_total))
    return rows


def eight_devices(agent_binary, tmp, settle):
    """RSS figures of the amd64 agent with 8 emulated devices."""
    import harness
    from harness import Agent, Fixture, Qemu, diskimage

    class Qemu8(Qemu):
        # qemu-xhci has 4 ports by default, and QEMU puts a full-speed hub
        # on the last free port: 15 ports keep all 8 devices at 480 Mb/s.
        def command_line(self):
            return [("qemu-xhci,id=xhci,p2=15,p3=15"
                     if a == "qemu-xhci,id=xhci" else a)
                    for a in super().command_line()]

    td = harness.TestDir("rss")
    figures = {}
    try:
        fx = Fixture(td).start()
        ports = [free_port() for _ in range(8)]
        qemu = Qemu8(td, slots=[("server", p) for p in ports], paused=False,
                     usb_attach_wait_ms=2000)
        qemu.start()
        for p in ports:
            qemu.wait_listening(p)
        agent = Agent(td, fx, path=agent_binary)
        agent.start("[usb]\nconnect = " +
                    ", ".join(f"127.0.0.1:{p}" for p in ports) + "\n")
        agent.wait_log(r"starting with")
        time.sleep(settle)
        figures["idle under the umockdev preload"] = rss_anon(agent.pid)
        for i in range(4):
            img = td.file(f"disk{i}.img")
            diskimage.make_disk_image(img, 16)
            fx.add("disk", img)
            fx.add("loopback")
        qemu.wait_usb_devices(8, timeout=60)
        time.sleep(settle)
        figures["8 devices attached in QEMU"] = rss_anon(agent.pid)
        qemu.hmp("system_reset")
        qemu.cont_at = time.monotonic()
        qemu.wait_boot(timeout=120)
        time.sleep(settle)
        figures["8 devices, after SeaBIOS enumerated them and booted"] = \
            rss_anon(agent.pid)
        figures["peak (VmHWM)"] = (status_kb(agent.pid, "VmHWM"), None)
        redirected = len(re.findall(r": redirected rw to", agent.log_text()))
        if redirected < 8:
            raise RuntimeError(f"only {redirected} devices redirected")
        agent.stop()
        qemu.stop()
        fx.stop()
        td.cleanup(True)
    finally:
        harness._cleanup_all()
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debs", default=os.path.join(ROOT, "build-bench",
                                                   "debs"))
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds to wait before each sample")
    args = ap.parse_args()

    build_debs(args.debs)
    tmp = tempfile.mkdtemp(prefix="rss-")
    try:
        binaries = {}
        for arch in ARCHES:
            for name in ("redir-agent", "redir-relay"):
                b = extract(args.debs, arch, name, tmp)
                if b:
                    binaries[(arch, name)] = b

        print("\nStripped binaries (the files in the .debs; loaded = sum of "
              "PT_LOAD segments):")
        print(f"  {'arch':6} {'binary':12} {'file':>11} {'loaded':>11}")
        for (arch, name), b in sorted(binaries.items()):
            print(f"  {arch:6} {name:12} {kib(os.path.getsize(b)):>11} "
                  f"{kib(loaded_size(b)):>11}")

        print(f"\nIdle RSS after {args.settle:g} s (agent: 8 connect slots, "
              "no USB device; relay: 8 targets, no session):")
        for arch, name, rss, other in idle_figures(binaries, tmp,
                                                   args.settle):
            how = (f"native ({mib_kb(other)} of it anonymous)"
                   if arch == "amd64" else
                   f"qemu-user, guest pages only (qemu in all: "
                   f"{mib_kb(other)})")
            print(f"  {arch:6} {name:12} {mib_kb(rss):>9}   {how}")

        print("\nredir-agent amd64 with 8 emulated devices (4 disks, "
              "4 loopbacks), under the umockdev preload:")
        print(f"  {'RSS':>9} {'anon':>9}")
        for what, (rss, anon) in eight_devices(
                binaries[("amd64", "redir-agent")], tmp,
                args.settle).items():
            anon = mib_kb(anon) if anon is not None else ""
            print(f"  {mib_kb(rss):>9} {anon:>9}  {what}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
