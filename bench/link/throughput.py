#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Throughput on shaped links (bench/link/linkprofile.py): a Linux guest
(TCG) reads and writes two redirected emulated disks, (1) an ext2 image of
real files (/usr/share/doc, /usr/bin: the bench/lz4 image) and (2) random
bytes, through (a) upstream usbredirect straight to QEMU, (b) redir-agent
raw straight to QEMU, (c) redir-agent with lz4 through redir-relay, and
(a) again (the A/A spread). Everything crosses the same link: veth with
tbf, and the delaying proxy.

Per redirector, one guest boot, REPS repetitions of:
  files     mount the ext2 disk read-only, cat every file (guest defaults:
            max_sectors 240, readahead 128 KiB); bytes = the files' sizes
  fs-read   dd the ext2 disk, bs=1M iflag=direct, max_sectors 2048
  rnd-read  dd READ_MIB of the random disk, same
  fs-write  dd WRITE_MIB of real-file bytes to the random disk (oflag=direct)
  rnd-write dd WRITE_MIB of random bytes to the random disk
MB/s (10^6 bytes/s, like link rates) measured in the guest; printed with
the ratio against usbredirect (mean of its two runs) and against the link.

    bench/link/throughput.py [--profiles 100mbit,1gbe,wan,loopback]
                             [--reps 2] [--fs-mib 64] [--read-mib 32]
                             [--write-mib 16] [--only usbredirect,raw,lz4]
Needs root (network namespaces). Uses a release build in build-rel/.
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build-rel")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "bench", "lz4"))
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "relay"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import linkprofile  # noqa: E402

MB = 1e6
MIB = 1 << 20

SCRIPT = r"""
n=0
while :; do
    c=0
    for b in /sys/block/sd*; do
        [ -e "$b/size" ] && [ "$(cat $b/size)" != 0 ] && [ -e /dev/${b##*/} ] && c=$((c+1))
    done
    [ $c -ge 2 ] && break
    n=$((n+1)); [ $n -gt 1200 ] && fail "disks missing"
    sleep 0.1
done
for b in /sys/block/sd*; do
    s=$(cat $b/size)
    [ "$s" = @FS_SECTORS@ ] && fs=${b##*/}
    [ "$s" = @RND_SECTORS@ ] && rnd=${b##*/}
done
[ -n "$fs" ] && [ -n "$rnd" ] || fail "cannot tell the disks apart"
mkdir -p /mnt
sleep 1
echo "BENCH-START"
mbs() { awk -v b=$1 -v s=$2 'BEGIN { printf "%.3f", (s > 0 ? b / s / 1e6 : 0) }'; }
for r in $(seq 1 @REPS@); do
    for d in $fs $rnd; do echo 240 > /sys/block/$d/device/max_sectors; done
    sync; echo 3 > /proc/sys/vm/drop_caches
    mount -t ext2 -o ro /dev/$fs /mnt || fail "mount"
    t0=$(now); find /mnt -type f -exec cat {} + > /dev/null || fail "cat"
    result files$r "$(mbs @FILE_BYTES@ $(elapsed $t0))"
    umount /mnt
    for d in $fs $rnd; do echo 2048 > /sys/block/$d/device/max_sectors; done
    t0=$(now); dd if=/dev/$fs of=/dev/null bs=1M iflag=direct 2>/dev/null || fail "read fs"
    result fs-read$r "$(mbs @FS_BYTES@ $(elapsed $t0))"
    t0=$(now); dd if=/dev/$rnd of=/dev/null bs=1M count=@READ_MIB@ iflag=direct 2>/dev/null || fail "read rnd"
    result rnd-read$r "$(mbs @READ_BYTES@ $(elapsed $t0))"
    t0=$(now); dd if=/data/fsdata.bin of=/dev/$rnd bs=1M seek=@READ_MIB@ oflag=direct conv=fsync 2>/dev/null || fail "write fs"
    result fs-write$r "$(mbs @WRITE_BYTES@ $(elapsed $t0))"
    t0=$(now); dd if=/data/rnd.bin of=/dev/$rnd bs=1M seek=@READ_MIB@ oflag=direct conv=fsync 2>/dev/null || fail "write rnd"
    result rnd-write$r "$(mbs @WRITE_BYTES@ $(elapsed $t0))"
done
echo "BENCH-END"
"""

WORKLOADS = ["files", "fs-read", "rnd-read", "fs-write", "rnd-write"]


def build():
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", BUILD,
                        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        "-DREDIR_SANITIZE=OFF"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j", str(os.cpu_count())],
                   check=True, stdout=subprocess.DEVNULL)
    os.environ["REDIR_AGENT"] = os.path.join(BUILD, "agent", "redir-agent")
    os.environ["REDIR_RELAY"] = os.path.join(BUILD, "relay", "redir-relay")
    os.environ["REDIR_USBEMU"] = os.path.join(BUILD, "tests", "fixture",
                                              "usbemu")
    os.environ.setdefault("REDIR_GUEST_CACHE",
                          os.path.join(BUILD, "guest-cache"))


def make_data(work, fs_mib, read_mib, write_mib):
    """The ext2 image (and its files' total size), the random disk, and
    the two blobs the guest writes."""
    import run as lz4run
    fs = os.path.join(work, "fs.img")
    lz4run.make_fs_image(fs, work, fs_mib)
    out = subprocess.run(["debugfs", "-R", "ls -lR /", fs], capture_output=True,
                         text=True).stdout
    # file bytes: sum the sizes of regular files (debugfs has no recursive
    # ls on bookworm: walk with dumpe2fs-free fallback below)
    file_bytes = 0
    stage = os.path.join(work, "stage-count")
    if os.path.exists(stage):
        shutil.rmtree(stage)
    os.mkdir(stage)
    subprocess.run(["debugfs", "-R", f"rdump / {stage}", fs],
                   capture_output=True, check=True)
    blob = bytearray()
    for r, _, files in sorted(os.walk(stage)):
        for f in sorted(files):
            p = os.path.join(r, f)
            if os.path.isfile(p) and not os.path.islink(p):
                file_bytes += os.path.getsize(p)
                if len(blob) < write_mib * MIB:
                    with open(p, "rb") as fh:
                        blob += fh.read()
    shutil.rmtree(stage)
    del out
    fsdata = bytes(blob[:write_mib * MIB])
    rng = random.Random(1)
    rnd_img = os.path.join(work, "rnd.img")
    with open(rnd_img, "wb") as f:
        f.write(os.urandom((read_mib + write_mib) * MIB))
    rnd_blob = rng.randbytes(write_mib * MIB)
    return fs, file_bytes, rnd_img, fsdata, rnd_blob


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_variant(td, link, variant, data, args, label):
    import harness
    import relayharness
    from linuxguest import LinuxGuest
    fs, file_bytes, rnd_img, fsdata, rnd_blob = data
    # usbredirect takes one device by VID:PID (its BUS-DEV form picked the
    # same emulated disk twice): one emulated-device process per disk
    fxs = []
    for i, img in enumerate((fs, rnd_img)):
        if i == 0 or variant == "usbredirect":
            fxs.append(harness.Fixture(td, name=f"usbemu-{label}-{i}").start())
        fxs[-1].add("disk", img)
    fx = fxs[0]
    qports = [harness.free_port(), harness.free_port()]
    os.environ["REDIR_QEMU"] = link.wrapper("hv", "qemu-system-x86_64")
    script = SCRIPT
    for k, v in {"FS_SECTORS": os.path.getsize(fs) // 512,
                 "RND_SECTORS": os.path.getsize(rnd_img) // 512,
                 "FILE_BYTES": file_bytes, "FS_BYTES": os.path.getsize(fs),
                 "READ_MIB": args.read_mib,
                 "READ_BYTES": args.read_mib * MIB,
                 "WRITE_BYTES": len(fsdata), "REPS": args.reps}.items():
        script = script.replace(f"@{k}@", str(v))
    guest = LinuxGuest(td, script, slots=[("server", p) for p in qports],
                       name=f"guest-{label}", memory=512, verbose=False,
                       modules=("ext4", "crc32c_generic"),
                       files={"/data/fsdata.bin": fsdata,
                              "/data/rnd.bin": rnd_blob})
    guest.start()
    pids, procs, relay = [], [], None
    if variant == "usbredirect":
        addr = link.expose(qports)
        for i, (f, qp) in enumerate(zip(fxs, qports)):
            env = harness.preload_env(f.umockdev_dir, asan=False)
            host, port = addr[qp]
            p = subprocess.Popen(
                [*link.tc_prefix(), "usbredirect", "--device", "1209:0d15",
                 "--to", f"{host}:{port}"], env=env,
                stdout=open(td.file(f"usbredirect-{label}-{i}.log"), "w"),
                stderr=subprocess.STDOUT)
            procs.append(p)
            pids.append(p.pid)
    elif variant == "raw":
        addr = link.expose(qports)
        agent = harness.Agent(td, fx, name=f"agent-{label}",
                              wrapper=link.tc_prefix())
        agent.start("[usb]\nconnect = " + ", ".join(
            f"{addr[q][0]}:{addr[q][1]}" for q in qports) +
            "\nrule = allow class=08 access=rw\nreconnect_max_ms = 300\n")
        procs.append(agent)
        pids.append(agent.pid)
    else:
        relay = relayharness.Relay(td, name=f"relay-{label}",
                                   path=link.wrapper("hv", os.environ[
                                       "REDIR_RELAY"], "hv-relay"))
        relay.start(relay.config({f"t{i}": f"127.0.0.1:{q}"
                                  for i, q in enumerate(qports)},
                                 log_level="info"))
        relay.wait_ready()
        host, port = link.expose([relay.port])[relay.port]
        agent = harness.Agent(td, fx, name=f"agent-{label}",
                              wrapper=link.tc_prefix())
        agent.start(f"[usb]\nconnect = {host}:{port}/t0, {host}:{port}/t1\n"
                    f"transport = lz4\nrelay_secret_file = {relay.secret_path}\n"
                    "agent_id = bench\nrule = allow class=08 access=rw\n"
                    "reconnect_max_ms = 300\n")
        procs.append(agent)
        pids.append(agent.pid)
    guest.wait_serial(r"BENCH-START", 180)
    cpu0 = sum(cpu_seconds(p) for p in pids)
    guest.wait_serial(r"BENCH-END", 3600)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    res = guest.wait_done(timeout=120).require_ok()
    for p in procs:
        if isinstance(p, subprocess.Popen):
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        else:
            p.stop(timeout=10, expect_rc=None)
    if relay:
        relay.stop(timeout=10)
    link.stop_proxies()
    for f in fxs:
        f.stop()
    out = {w: [res.float(f"{w}{r}") for r in range(1, args.reps + 1)]
           for w in WORKLOADS}
    out["cpu"] = cpu
    return out


def mean(xs):
    return sum(xs) / len(xs)


def report(link, results, order):
    base = {}
    a_runs = [results[k] for k in order if k.startswith("usbredirect")]
    print(f"\n== {link.describe()}")
    for w in WORKLOADS:
        base[w] = mean([mean(r[w]) for r in a_runs])
    hdr = f"  {'redirector':14}" + "".join(f"{w:>22}" for w in WORKLOADS)
    print(hdr)
    print("  " + " " * 14 + "".join(f"{'MB/s (min-max) xA  xL':>22}"
                                    for _ in WORKLOADS))
    for k in order:
        r = results[k]
        cells = ""
        for w in WORKLOADS:
            m = mean(r[w])
            vs_link = f"{m / link.link_mb_s:.2f}" if link.link_mb_s else "-"
            cells += (f"{m:7.2f}({min(r[w]):.1f}-{max(r[w]):.1f})"
                      f"{m / base[w]:5.2f}{vs_link:>5}").rjust(22)
        print(f"  {k:14}{cells}")
    if len(a_runs) == 2:
        spread = "  A/A spread (usbredirect A1 vs A2): " + ", ".join(
            f"{w} {abs(mean(a_runs[0][w]) - mean(a_runs[1][w])) / base[w] * 100:.1f} %"
            for w in WORKLOADS)
        print(spread)
    print("  xA: ratio to usbredirect (mean of A1, A2); xL: ratio to the "
          "link rate", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="100mbit,1gbe,wan")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--fs-mib", type=int, default=64)
    ap.add_argument("--read-mib", type=int, default=32)
    ap.add_argument("--write-mib", type=int, default=16)
    ap.add_argument("--only", default="usbredirect,raw,lz4")
    args = ap.parse_args()
    build()
    import harness

    def bench(td):
        data = make_data(td.path, args.fs_mib, args.read_mib, args.write_mib)
        print(f"ext2 image {args.fs_mib} MiB with {data[1] / MIB:.1f} MiB of "
              f"files; random disk {args.read_mib + args.write_mib} MiB; "
              f"writes {args.write_mib} MiB each; {args.reps} reps per boot",
              flush=True)
        only = args.only.split(",")
        order = [("usbredirect A1", "usbredirect"), ("agent raw", "raw"),
                 ("agent lz4+relay", "lz4"), ("usbredirect A2", "usbredirect")]
        order = [o for o in order if o[1] in only]
        for prof in args.profiles.split(","):
            link = linkprofile.Link(prof)
            try:
                results = {}
                for label, variant in order:
                    t0 = time.monotonic()
                    results[label] = run_variant(
                        td, link, variant, data, args,
                        f"{prof}-{label.split()[0]}-{len(results)}")
                    print(f"  {prof} {label}: " + ", ".join(
                        f"{w} {mean(results[label][w]):.2f}" for w in WORKLOADS)
                        + f" MB/s ({time.monotonic() - t0:.0f} s)", flush=True)
                if any(o[1] == "usbredirect" for o in order):
                    report(link, results, [o[0] for o in order])
            finally:
                link.close()

    harness.main(bench, name="bench_link_throughput")


if __name__ == "__main__":
    main()
