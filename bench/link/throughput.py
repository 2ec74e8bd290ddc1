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
                             [--workloads files,fs-read,...]
                             [--base DIR]  # lz4-base: DIR/redir-{agent,relay}
--only also takes raw-relay (the relay's hop without lz4), tls, and the
*-base variants (raw-base, lz4-base, tls-base: binaries of another build,
for before/after in one run).
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

# One round in the guest: a prologue, then the chosen workloads in order.
ROUND_HEAD = r"""
fs=@FS@; rnd=@RND@
mkdir -p /mnt
mbs() { awk -v b=$1 -v s=$2 'BEGIN { printf "%.3f", (s > 0 ? b / s / 1e6 : 0) }'; }
sleep 1
"""
ROUND_PARTS = {
    "files": r"""
for d in $fs $rnd; do echo 240 > /sys/block/$d/device/max_sectors; done
sync; echo 3 > /proc/sys/vm/drop_caches
mount -t ext2 -o ro /dev/$fs /mnt || exit 1
t0=$(now); find /mnt/doc -type f -exec cat {} + > /dev/null || exit 1
echo "files $(mbs @FILE_BYTES@ $(elapsed $t0))"
umount /mnt
""",
    "fs-read": r"""
for d in $fs $rnd; do echo 2048 > /sys/block/$d/device/max_sectors; done
t0=$(now); dd if=/dev/$fs of=/dev/null bs=1M iflag=direct 2>/dev/null || exit 1
echo "fs-read $(mbs @FS_BYTES@ $(elapsed $t0))"
""",
    "rnd-read": r"""
for d in $fs $rnd; do echo 2048 > /sys/block/$d/device/max_sectors; done
t0=$(now); dd if=/dev/$rnd of=/dev/null bs=1M count=@READ_MIB@ iflag=direct 2>/dev/null || exit 1
echo "rnd-read $(mbs @READ_BYTES@ $(elapsed $t0))"
""",
    "fs-write": r"""
for d in $fs $rnd; do echo 2048 > /sys/block/$d/device/max_sectors; done
t0=$(now); dd if=/data/fsdata.bin of=/dev/$rnd bs=1M seek=@READ_MIB@ oflag=direct conv=fsync 2>/dev/null || exit 1
echo "fs-write $(mbs @WRITE_BYTES@ $(elapsed $t0))"
""",
    "rnd-write": r"""
for d in $fs $rnd; do echo 2048 > /sys/block/$d/device/max_sectors; done
t0=$(now); dd if=/data/rnd.bin of=/dev/$rnd bs=1M seek=@READ_MIB@ oflag=direct conv=fsync 2>/dev/null || exit 1
echo "rnd-write $(mbs @WRITE_BYTES@ $(elapsed $t0))"
""",
}

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


# Redirectors: label -> (agent transport or None for usbredirect, through
# the relay, TLS on the agent-relay leg, binaries: "new" from build-rel or
# "base" from --base).
VARIANTS = {
    "usbredirect": ("usbredirect", None, False, False, "new"),
    "raw": ("agent raw", "raw", False, False, "new"),
    "raw-base": ("agent raw (base)", "raw", False, False, "base"),
    "raw-relay": ("agent raw+relay", "raw", True, False, "new"),
    "lz4": ("agent lz4+relay", "lz4", True, False, "new"),
    "lz4-base": ("lz4+relay (base)", "lz4", True, False, "base"),
    "tls": ("lz4+relay+TLS", "lz4", True, True, "new"),
    "tls-base": ("lz4+TLS (base)", "lz4", True, True, "base"),
}


def binary(which, args, name):
    if which == "base":
        return os.path.join(args.base, name)
    return os.environ["REDIR_AGENT" if name == "redir-agent" else
                      "REDIR_RELAY"]


def run_variant(td, link, vdi, qports, variant, data, args, label, certs):
    """One round of one redirector in the running VDI guest."""
    import harness
    import relayharness
    fs, file_bytes, rnd_img, fsdata, rnd_blob = data
    _, transport, via_relay, tls, which = VARIANTS[variant]
    # usbredirect takes one device by VID:PID (its BUS-DEV form picked the
    # same emulated disk twice): one emulated-device process per disk
    fxs = []
    for i, img in enumerate((fs, rnd_img)):
        if i == 0 or variant == "usbredirect":
            fxs.append(harness.Fixture(td, name=f"usbemu-{label}-{i}").start())
        fxs[-1].add("disk", img)
    fx = fxs[0]
    pids, procs, relay = [], [], None
    common = "rule = allow class=08 access=rw\nreconnect_max_ms = 300\n"
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
    elif not via_relay:
        addr = link.expose(qports)
        agent = harness.Agent(td, fx, name=f"agent-{label}",
                              wrapper=link.tc_prefix(),
                              path=binary(which, args, "redir-agent"))
        agent.start("[usb]\nconnect = " + ", ".join(
            f"{addr[q][0]}:{addr[q][1]}" for q in qports) + "\n" + common)
        procs.append(agent)
        pids.append(agent.pid)
    else:
        relay = relayharness.Relay(td, name=f"relay-{label}",
                                   path=link.wrapper(
                                       "hv", binary(which, args, "redir-relay"),
                                       f"hv-relay-{which}"))
        text = relay.config({f"t{i}": f"127.0.0.1:{q}"
                             for i, q in enumerate(qports)}, log_level="info")
        keys = ""
        if tls:
            text = text.replace("[relay]\n", "[relay]\n" +
                                certs.tls_keys("relay"), 1)
            # the relay's config keeps its secret: with both, it asks both
            keys = (certs.tls_keys("desk-17", peer_name="relay.example") +
                    f"relay_secret_file = {relay.secret_path}\n")
        else:
            keys = f"relay_secret_file = {relay.secret_path}\n"
        relay.start(text)
        relay.wait_ready()
        host, port = link.expose([relay.port])[relay.port]
        agent = harness.Agent(td, fx, name=f"agent-{label}",
                              wrapper=link.tc_prefix(),
                              path=binary(which, args, "redir-agent"))
        agent.start(f"[usb]\nconnect = {host}:{port}/t0, {host}:{port}/t1\n"
                    f"transport = {transport}\n{keys}agent_id = bench\n" +
                    common)
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
    rcpu0 = cpu_seconds(relay.pid) if relay else 0
    script = ROUND_HEAD + "".join(ROUND_PARTS[w] for w in args.workloads)
    out = vdi.sh(subst(script, values), timeout=3600)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    rcpu = cpu_seconds(relay.pid) - rcpu0 if relay else 0
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
    res["relay_cpu"] = rcpu
    return res


def mean(xs):
    return sum(xs) / len(xs)


def ratio_table(rounds, labels, base, workloads, link=None):
    """Mean ratio against base in the same round, min-max over rounds."""
    print(f"  {'x ' + base:22}" + "".join(f"{w:>22}" for w in workloads))
    for label in labels:
        cells = ""
        for w in workloads:
            x = [r[label][w] / r[base][w] for r in rounds]
            cells += f"{mean(x):.2f} ({min(x):.2f}-{max(x):.2f})".rjust(22)
        print(f"  {label:22}{cells}")


def report(link, rounds, labels, workloads):
    """rounds: [{label: {workload: MB/s}}]: MB/s, then ratios per round
    against the first redirector (and agent raw), min-max over rounds."""
    print(f"\n== {link.describe()}; {len(rounds)} rounds, interleaved")
    print(f"  {'MB/s mean (min-max)':22}" + "".join(f"{w:>22}"
                                                    for w in workloads) +
          "   agent+relay CPU s")
    for label in labels:
        cells = ""
        for w in workloads:
            v = [r[label][w] for r in rounds]
            lk = (f" {mean(v) / link.link_mb_s:.2f}L" if link.link_mb_s
                  else "")
            cells += f"{mean(v):.2f}({min(v):.2f}-{max(v):.2f}){lk}".rjust(22)
        cpu = mean([r[label]["cpu"] + r[label]["relay_cpu"] for r in rounds])
        print(f"  {label:22}{cells}   {cpu:.1f}")
    print("  (L: fraction of the link rate)")
    ratio_table(rounds, labels, labels[0], workloads)
    if "agent raw" in labels and labels[0] != "agent raw":
        ratio_table(rounds, labels, "agent raw", workloads)
    for label in labels:
        print(f"  {label} per round: " + ", ".join(
            f"{w} " + "/".join(f"{r[label][w]:.2f}" for r in rounds)
            for w in workloads))
    print("  (x BASE: mean ratio to BASE in the same round, min-max over "
          "rounds)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", default="100mbit,1gbe,wan")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fs-mib", type=int, default=64)
    ap.add_argument("--read-mib", type=int, default=32)
    ap.add_argument("--write-mib", type=int, default=16)
    ap.add_argument("--only", default="usbredirect,raw,lz4",
                    help="redirectors, in this order (the first is the "
                    "baseline): " + ",".join(VARIANTS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--base", help="directory with the redir-agent and "
                    "redir-relay of the *-base variants")
    args = ap.parse_args()
    args.workloads = args.workloads.split(",")
    only = args.only.split(",")
    if any(v.endswith("-base") for v in only) and not args.base:
        ap.error("the *-base variants need --base DIR")
    build()
    import harness

    def bench(td):
        from thinclient import VdiGuest
        certs = None
        if any(VARIANTS[v][3] for v in only):
            sys.path.insert(0, os.path.join(ROOT, "tests", "tls"))
            import tlsharness
            certs = tlsharness.certs(td)
        data = make_data(td.path, args.fs_mib, args.read_mib, args.write_mib)
        print(f"ext2 image {args.fs_mib} MiB, {data[1] / MIB:.1f} MiB of files "
              f"under /doc read by 'files'; random disk "
              f"{args.read_mib + args.write_mib} MiB; writes {args.write_mib} "
              f"MiB each; {args.rounds} rounds", flush=True)
        labels = [VARIANTS[v][0] for v in only]
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
                    # rotate the order each round: no redirector always
                    # runs right after the same other one
                    order = only[r % len(only):] + only[:r % len(only)]
                    for variant in order:
                        label = VARIANTS[variant][0]
                        t0 = time.monotonic()
                        res[label] = run_variant(
                            td, link, vdi, qports, variant, data, args,
                            f"{prof}-{variant}-{r}", certs)
                        print(f"  {prof} round {r + 1} {label}: " + ", ".join(
                            f"{w} {res[label][w]:.2f}"
                            for w in args.workloads) +
                            f" MB/s, CPU agent {res[label]['cpu']:.1f} s "
                            f"relay {res[label]['relay_cpu']:.1f} s "
                            f"({time.monotonic() - t0:.0f} s)", flush=True)
                    rounds.append(res)
                vdi.poweroff()
                report(link, rounds, labels, args.workloads)
            finally:
                link.close()

    harness.main(bench, name="bench_link_throughput")


if __name__ == "__main__":
    main()
