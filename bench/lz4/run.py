#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""LZ4 transport benchmark: the stream codec (common/stream_codec.c) against
the lz4 command line's own benchmark (lz4 -b1), on the same data in the
same run. Data: (1) text (C headers from /usr/include), (2) an ext2
filesystem image of real files (/usr/share/doc, binaries from /usr/bin,
free space), (3) random bytes. Prints bytes on the wire vs raw, throughput
and CPU per GiB on the encoding (agent) and decoding (relay) side, and what
LZ4 streaming would change. With --relay, also the CPU a running
redir-relay spends per GiB it pumps (use a build without sanitizers).
About a minute; not part of ctest.

    bench/lz4/run.py [--keep DIR] [--relay PATH/redir-relay]
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MIB = 1 << 20


def sh(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          **kw).stdout


def make_text(path, size=32 * MIB):
    with open(path, "wb") as out:
        left = size
        for h in sorted(glob.glob("/usr/include/**/*.h", recursive=True)):
            with open(h, "rb") as f:
                data = f.read(left)
            out.write(data)
            left -= len(data)
            if left <= 0:
                break


def make_fs_image(path, work, size_mib=64):
    """ext2 image: ~24 MiB of /usr/share/doc (text and .gz), ~16 MiB of
    binaries from /usr/bin, the rest free."""
    stage = os.path.join(work, "stage")
    os.makedirs(os.path.join(stage, "bin"))
    total = 0
    for d in sorted(os.listdir("/usr/share/doc")):
        src = os.path.join("/usr/share/doc", d)
        if total > 24 * MIB or not os.path.isdir(src):
            continue
        dst = os.path.join(stage, "doc", d)
        shutil.copytree(src, dst, symlinks=True, ignore_dangling_symlinks=True)
        total += sum(os.path.getsize(os.path.join(r, f))
                     for r, _, fs in os.walk(dst) for f in fs
                     if not os.path.islink(os.path.join(r, f)))
    total = 0
    for b in sorted(os.listdir("/usr/bin")):
        src = os.path.join("/usr/bin", b)
        if os.path.islink(src) or not os.path.isfile(src):
            continue
        n = os.path.getsize(src)
        if n > MIB or total + n > 16 * MIB:
            continue
        shutil.copy(src, os.path.join(stage, "bin", b))
        total += n
    sh("mke2fs", "-q", "-F", "-t", "ext2", "-b", "4096", "-d", stage, path,
       f"{size_mib}M")
    shutil.rmtree(stage)


def make_random(path, size=32 * MIB):
    with open(path, "wb") as f:
        f.write(os.urandom(size))


def build(work):
    exe = os.path.join(work, "lz4_bench")
    sh("cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Wall", "-Werror",
       "-I", os.path.join(ROOT, "common"), os.path.join(HERE, "lz4_bench.c"),
       os.path.join(ROOT, "common", "stream_codec.c"), "-llz4", "-o", exe)
    return exe


def lz4_cli(path, *opts):
    """(ratio, compress MB/s, decompress MB/s) from lz4 -b1."""
    out = subprocess.run(["lz4", "-b1", "-i1", *opts, path],
                         capture_output=True, text=True).stderr
    last = re.findall(r"\(\s*([\d.]+)\),\s*([\d.]+) MB/s\s*,\s*([\d.]+) MB/s",
                      out.replace("\r", "\n"))
    if not last:
        raise RuntimeError(f"cannot parse lz4 -b1 output: {out[-300:]!r}")
    return tuple(float(x) for x in last[-1])


def ours(exe, path):
    res = {}
    for line in sh(exe, path).splitlines():
        k, v = line.split()
        res[k] = float(v)
    return res


def option(name):
    if name in sys.argv[1:-1]:
        return sys.argv[sys.argv.index(name) + 1]
    return None


def main():
    keep = option("--keep")
    relay = option("--relay")
    work = keep or tempfile.mkdtemp(prefix="lz4bench-")
    os.makedirs(work, exist_ok=True)
    try:
        exe = build(work)
        data = [("text", os.path.join(work, "text.bin"), make_text),
                ("fs image", os.path.join(work, "fs.img"),
                 lambda p: make_fs_image(p, work)),
                ("random", os.path.join(work, "random.bin"), make_random)]
        print(f"lz4 CLI: {sh('lz4', '--version').strip()}; cpu: "
              f"{os.cpu_count()} cores")
        for name, path, make in data:
            if not os.path.exists(path):
                make(path)
            report(name, path, exe)
        if relay:
            import relay_cpu
            print("\n== redir-relay pumping 1 GiB, CPU of the relay process "
                  "(s/GiB of usbredir bytes)")
            for name, path, _ in data:
                relay_cpu.report(relay, name, path, work)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def report(name, path, exe):
    r = ours(exe, path)
    size = r["size"]
    cli = lz4_cli(path)
    cli64 = lz4_cli(path, "-B65536")
    print(f"\n== {name}: {size / MIB:.0f} MiB")
    print(f"  {'':34} {'wire/raw':>9} {'ratio':>6} {'enc MB/s':>9} "
          f"{'dec MB/s':>9} {'enc CPU s/GiB':>14} {'dec CPU s/GiB':>14}")
    for label, key in (("codec, 64 KiB calls", "codec64k"),
                       ("codec, 4 KiB calls", "codec4k")):
        wire = r[f"{key}.wire"]
        # raw frames are handed over in place: no decoding to time
        dec = f"{r[f'{key}.decode_mbs']:9.0f}" if r[f"{key}.frames_lz4"] \
            else f"{'in place':>9}"
        print(f"  {label:34} {wire / size:9.3f} {size / wire:6.3f} "
              f"{r[f'{key}.encode_mbs']:9.0f} {dec} "
              f"{r[f'{key}.encode_cpu_s_per_gib']:14.3f} "
              f"{r[f'{key}.decode_cpu_s_per_gib']:14.3f}")
    for label, (ratio, c, d) in (("lz4 -b1 (default blocks)", cli),
                                 ("lz4 -b1 -B65536 (64 KiB blocks)", cli64)):
        print(f"  {label:34} {1 / ratio:9.3f} {ratio:6.3f} {c:9.0f} {d:9.0f} "
              f"{1073.74 / c:14.3f} {1073.74 / d:14.3f}")
    for label, key in (("LZ4 streaming, 64 KiB chunks", "stream64k"),
                       ("LZ4 streaming, 4 KiB chunks", "stream4k"),
                       ("LZ4 streaming, 512 B chunks", "stream512")):
        wire = r[f"{key}.wire"]
        print(f"  {label:34} {wire / size:9.3f} {size / wire:6.3f}")
    ratio64, c64, d64 = cli64
    dec = f"{r['codec64k.decode_mbs'] / d64:.2f}x" \
        if r["codec64k.frames_lz4"] else "in place"
    print(f"  codec vs lz4 -b1 -B65536: encode "
          f"{r['codec64k.encode_mbs'] / c64:.2f}x, decode {dec}, wire "
          f"{(size / r['codec64k.wire']) / ratio64:.3f}x its ratio; "
          f"streaming would save "
          f"{100 * (1 - r['stream64k.wire'] / r['codec64k.wire']):.1f} % of "
          f"the wire at 64 KiB, "
          f"{100 * (1 - r['stream4k.wire'] / r['codec4k.wire']):.1f} % at "
          f"4 KiB")


if __name__ == "__main__":
    main()
