#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Throughput on shaped links (bench/link/linkprofile.py): a Linux guest
(TCG) reads and writes two redirected emulated disks, (1) an ext2 image of
real files (/usr/share/doc, /usr/bin: the bench/lz4 image) and (2) random
bytes, through (a) upstream usbredirect straight to QEMU, (b) redir-agent
raw straight to QEMU, (c) redir-agent with lz4 through redir-relay, and
Everything crosses the same link: veth with tbf, and the delaying proxy.

One VDI guest boot per profile (tests/thinclient VdiGuest, driven over its
control channel); ROUNDS rounds, each running every redirector in turn
(interleaved, so load drift on a shared machine hits all of them), each:
  files     mount the ext2 disk read-only, cat every file under /doc
            (text and .gz; guest defaults: max_sectors 240, readahead
            128 KiB); bytes = those files' sizes
  fs-read   dd the ext2 disk, bs=1M iflag=direct, max_sectors 2048
  rnd-read  dd READ_MIB of the random disk, same
  fs-write  dd WRITE_MIB of real-file bytes to the random disk (oflag=direct)
  rnd-write dd WRITE_MIB of random bytes to the random disk
MB/s (10^6 bytes/s, like link rates) measured in the guest; printed with
the ratio against usbredirect in the same round (mean, min-max over the
rounds) and against the link rate.

    bench/link/throughput.py [--profiles 100mbit,1gbe,wan,loopback]
                             [--rounds 2] [--fs-mib 64] [--read-mib 32]
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
sys.path.insert(0, os.path.join(ROOT, "tests", "thinclient"))
sys.path.insert(0, os.path.join(ROOT, "tests", "relay"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import linkprofile  # noqa: E402

MB = 1e6
MIB = 1 << 20

# Run in the VDI guest (tests/thinclient VdiGuest: a control channel, so
# one boot serves every redirector, interleaved round by round).
WAIT_DISKS = r"""
n=0
while :; do
    c=0
    for b in /sys/block/sd*; do
        [ -e "$b/size" ] && [ "$(cat $b/size)" != 0 ] && [ -e /dev/${b##*/} ] && c=$((c+1))
    done
    [ $c -ge 2 ] && break
    n=$((n+1)); [ $n -gt 1200 ] && { echo "disks missing"; exit 1; }
    usleep 100000
done
for b in /sys/block/sd*; do
    s=$(cat $b/size)
    [ "$s" = @FS_SECTORS@ ] && fs=${b##*/}
    [ "$s" = @RND_SECTORS@ ] && rnd=${b##*/}
done
echo "$fs $rnd"
"""

ONE_ROUND = r"""
fs=@FS@; rnd=@RND@
mkdir -p /mnt
mbs() { awk -v b=$1 -v s=$2 'BEGIN { printf "%.3f", (s > 0 ? b / s / 1e6 : 0) }'; }
sleep 1
for d in $fs $rnd; do echo 240 > /sys/block/$d/device/max_sectors; done
sync; echo 3 > /proc/sys/vm/drop_caches
mount -t ext2 -o ro /dev/$fs /mnt || exit 1
t0=$(now); find /mnt/doc -type f -exec cat {} + > /dev/null || exit 1
echo "files $(mbs @FILE_BYTES@ $(elapsed $t0))"
umount /mnt
for d in $fs $rnd; do echo 2048 > /sys/block/$d/device/max_sectors; done
t0=$(now); dd if=/dev/$fs of=/dev/null bs=1M iflag=direct 2>/dev/null || exit 1
echo "fs-read $(mbs @FS_BYTES@ $(elapsed $t0))"
t0=$(now); dd if=/dev/$rnd of=/dev/null bs=1M count=@READ_MIB@ iflag=direct 2>/dev/null || exit 1
echo "rnd-read $(mbs @READ_BYTES@ $(elapsed $t0))"
t0=$(now); dd if=/data/fsdata.bin of=/dev/$rnd bs=1M seek=@READ_MIB@ oflag=direct conv=fsync 2>/dev/null || exit 1
echo "fs-write $(mbs @WRITE_BYTES@ $(elapsed $t0))"
t0=$(now); dd if=/data/rnd.bin of=/dev/$rnd bs=1M seek=@READ_MIB@ oflag=direct conv=fsync 2>/dev/null || exit 1
echo "rnd-write $(mbs @WRITE_BYTES@ $(elapsed $t0))"
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
    for r, _, files in sorted(os.walk(os.path.join(stage, "doc"))):
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


def subst(text, values):
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    return text


def run_variant(td, link, vdi, qports, variant, data, args, label):
    """One round of one redirector in the running VDI guest."""
    import harness
    import relayharness
    fs, file_bytes, rnd_img, fsdata, rnd_blob = data
    # usbredirect takes one device by VID:PID (its BUS-DEV form picked the
    # same emulated disk twice): one emulated-device process per disk
    fxs = []
    for i, img in enumerate((fs, rnd_img)):
        if i == 0 or variant == "usbredirect":
            fxs.append(harness.Fixture(td, name=f"usbemu-{label}-{i}").start())
        fxs[-1].add("disk", img)
    fx = fxs[0]
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
    values = {"FS_SECTORS": os.path.getsize(fs) // 512,
              "RND_SECTORS": os.path.getsize(rnd_img) // 512,
              "FILE_BYTES": file_bytes, "FS_BYTES": os.path.getsize(fs),
              "READ_MIB": args.read_mib, "READ_BYTES": args.read_mib * MIB,
              "WRITE_BYTES": len(fsdata)}
    fsdev, rnddev = vdi.sh(subst(WAIT_DISKS, values), timeout=180).split()
    values.update(FS=fsdev, RND=rnddev)
    cpu0 = sum(cpu_seconds(p) for p in pids)
    out = vdi.sh(subst(ONE_ROUND, values), timeout=3600)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
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
    vdi.sh("wait_until 30 eval '! ls -d /sys/block/sd* >/dev/null 2>&1'",
           timeout=40)
    res = {}
    for line in out.splitlines():
        k, v = line.split()
        res[k] = float(v)
    res["cpu"] = cpu
    return res


def mean(xs):
    return sum(xs) / len(xs)


def report(link, rounds, labels):
    """rounds: [{label: {workload: MB/s}}]; ratios per round against that
    round's usbredirect, then min-max over the rounds."""
    print(f"\n== {link.describe()}; {len(rounds)} rounds, interleaved")
    print(f"  {'':16}" + "".join(f"{w:>26}" for w in WORKLOADS))
    print(f"  {'redirector':16}" + "".join(
        f"{'MB/s  x usbredirect  x link':>26}" for _ in WORKLOADS))
    for label in labels:
        cells = ""
        for w in WORKLOADS:
            v = [r[label][w] for r in rounds]
            x = [r[label][w] / r["usbredirect"][w] for r in rounds]
            lk = f"{mean(v) / link.link_mb_s:.2f}" if link.link_mb_s else "-"
            cells += (f"{mean(v):6.2f} {mean(x):4.2f}({min(x):.2f}-"
                      f"{max(x):.2f}) {lk:>4}").rjust(26)
        print(f"  {label:16}{cells}")
    if "agent raw" in labels and "agent lz4+relay" in labels:
        print("  lz4+relay / agent raw, per round: " + ", ".join(
            f"{w} " + "/".join(f"{r['agent lz4+relay'][w] / r['agent raw'][w]:.2f}"
                               for r in rounds) for w in WORKLOADS))
    print("  (x usbredirect: mean ratio to usbredirect in the same round, "
          "min-max over rounds)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="100mbit,1gbe,wan")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fs-mib", type=int, default=64)
    ap.add_argument("--read-mib", type=int, default=32)
    ap.add_argument("--write-mib", type=int, default=16)
    ap.add_argument("--only", default="usbredirect,raw,lz4")
    args = ap.parse_args()
    build()
    import harness

    def bench(td):
        from thinclient import VdiGuest
        data = make_data(td.path, args.fs_mib, args.read_mib, args.write_mib)
        print(f"ext2 image {args.fs_mib} MiB, {data[1] / MIB:.1f} MiB of files "
              f"under /doc read by 'files'; random disk "
              f"{args.read_mib + args.write_mib} MiB; writes {args.write_mib} "
              f"MiB each; {args.rounds} rounds", flush=True)
        only = args.only.split(",")
        order = [("usbredirect", "usbredirect"), ("agent raw", "raw"),
                 ("agent lz4+relay", "lz4")]
        order = [o for o in order if o[1] in only]
        for prof in args.profiles.split(","):
            link = linkprofile.Link(prof)
            try:
                os.environ["REDIR_QEMU"] = link.wrapper(
                    "hv", "qemu-system-x86_64")
                qports = [harness.free_port(), harness.free_port()]
                vdi = VdiGuest(td, slots=[("server", p) for p in qports],
                               name=f"vdi-{prof}", memory=512, verbose=False,
                               modules=("ext4", "crc32c_generic"),
                               files={"/data/fsdata.bin": data[3],
                                      "/data/rnd.bin": data[4]}).start()
                rounds = []
                for r in range(args.rounds):
                    res = {}
                    for label, variant in order:
                        t0 = time.monotonic()
                        res[label] = run_variant(
                            td, link, vdi, qports, variant, data, args,
                            f"{prof}-{variant}-{r}")
                        print(f"  {prof} round {r + 1} {label}: " + ", ".join(
                            f"{w} {res[label][w]:.2f}" for w in WORKLOADS) +
                            f" MB/s ({time.monotonic() - t0:.0f} s)",
                            flush=True)
                    rounds.append(res)
                vdi.poweroff()
                if "usbredirect" in only:
                    report(link, rounds, [o[0] for o in order])
            finally:
                link.close()

    harness.main(bench, name="bench_link_throughput")


if __name__ == "__main__":
    main()
