#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Bulk-Only disk throughput without a guest: a scripted usbredir peer
(tests/e2e/usbredirpeer.py, playing QEMU) issues READ(10) / WRITE(10)
commands of CMD_KIB each, one at a time like Linux's usb-storage, to an
emulated disk behind the agent, raw straight to the peer or lz4 through
redir-relay, on a link profile (bench/link/linkprofile.py). No TCG guest in
the loop: what it measures is the redirector path itself, quickly enough
to compare code changes (bench/link/throughput.py is the guest-measured
figure).

    bench/link/bulk.py [--profile 100mbit] [--rounds 3] [--mib 32]
                       [--cmd-kib 1024] [--only raw,raw-relay,lz4]
                       [--base DIR]   # DIR/redir-agent, DIR/redir-relay
Prints MB/s per redirector, data (fs image / random) and direction, the
mean ratio to agent raw in the same round and its min-max. Needs root.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "bench", "lz4"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, os.path.join(ROOT, "tests", "relay"))

MB = 1e6
MIB = 1 << 20
BLOCK = 512


def peer_main(port, mib, cmd_kib, write_file):
    """In the hypervisor's namespace: accept the agent (or the relay), then
    read the disk's first MIB MiB (or write write_file's bytes there);
    prints "MB/s"."""
    import usbredirpeer as ur
    listener = ur.Listener(port)
    print("LISTENING", flush=True)
    peer = listener.accept(timeout=60)
    peer.timeout = 60
    peer.handshake(timeout=30)
    disk = ur.BulkOnly(peer)
    blocks = cmd_kib * 1024 // BLOCK
    data = open(write_file, "rb").read() if write_file else None
    t0 = time.monotonic()
    for lba in range(0, mib * MIB // BLOCK, blocks):
        if data is None:
            r = disk.read10(lba, blocks)
            ok = r.csw is not None and r.csw.status == 0
        else:
            off = lba * BLOCK
            r = disk.write10(lba, data[off:off + blocks * BLOCK])
            ok = r.csw is not None and r.csw.status == 0
        if not ok:
            print(f"FAILED at lba {lba}: {r.steps}", flush=True)
            sys.exit(1)
    print(f"{mib * MIB / (time.monotonic() - t0) / MB:.3f}", flush=True)
    peer.close()


VARIANTS = {  # label, transport (None: straight to the peer), binaries
    "raw": ("agent raw", None, "new"),
    "raw-relay": ("agent raw+relay", "raw", "new"),
    "lz4": ("agent lz4+relay", "lz4", "new"),
    "lz4-base": ("lz4+relay (base)", "lz4", "base"),
}


relay_cpu = []


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(td, link, variant, image, write_file, args, label):
    import harness
    import relayharness
    _, transport, which = VARIANTS[variant]
    bins = {n: (os.path.join(args.base, n) if which == "base" else
                os.path.join(args.build, d, n))
            for n, d in (("redir-agent", "agent"), ("redir-relay", "relay"))}
    fx = harness.Fixture(td, name=f"usbemu-{label}").start()
    fx.add("disk", image)
    port = harness.free_port()
    hv = (["nsenter", f"--net=/run/netns/{link.hv_ns}", "--"]
          if link.hv_ns else [])
    peer = subprocess.Popen(
        hv + [sys.executable, __file__, "--peer", str(port), "--mib",
         str(args.mib), "--cmd-kib", str(args.cmd_kib)] +
        (["--write-file", write_file] if write_file else []),
        stdout=subprocess.PIPE, text=True)
    assert peer.stdout.readline().strip() == "LISTENING"
    relay = None
    common = "rule = allow class=08 access=rw\nreconnect_max_ms = 300\n"
    if transport is None:
        host, hport = link.expose([port])[port]
        conf = f"[usb]\nconnect = {host}:{hport}\n" + common
    else:
        relay = relayharness.Relay(td, name=f"relay-{label}", path=link.wrapper(
            "hv", bins["redir-relay"], f"hv-relay-{which}"))
        relay.start(relay.config({"t0": f"127.0.0.1:{port}"},
                                 log_level="info"))
        relay.wait_ready()
        host, rport = link.expose([relay.port])[relay.port]
        conf = (f"[usb]\nconnect = {host}:{rport}/t0\ntransport = "
                f"{transport}\nrelay_secret_file = {relay.secret_path}\n"
                "agent_id = bench\n" + common)
    agent = harness.Agent(td, fx, name=f"agent-{label}",
                          wrapper=link.tc_prefix(), path=bins["redir-agent"])
    agent.start(conf)
    out = peer.stdout.readline().strip()
    peer.wait(60)
    if relay:  # relay CPU seconds per GiB of payload, session included
        relay_cpu.append(cpu_seconds(relay.pid) / (args.mib / 1024))
    agent.stop(timeout=10, expect_rc=None)
    if relay:
        relay.stop(timeout=10)
    link.stop_proxies()
    fx.stop()
    try:
        return float(out)
    except ValueError:
        raise RuntimeError(f"{label}: {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", type=int)
    ap.add_argument("--write-file")
    ap.add_argument("--profile", default="100mbit")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mib", type=int, default=32)
    ap.add_argument("--cmd-kib", type=int, default=1024)
    ap.add_argument("--only", default="raw,raw-relay,lz4")
    ap.add_argument("--work", default="fs-read,rnd-read,fs-write,rnd-write")
    ap.add_argument("--base")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rel"))
    args = ap.parse_args()
    if args.peer:
        return peer_main(args.peer, args.mib, args.cmd_kib, args.write_file)
    os.environ.setdefault("REDIR_USBEMU", os.path.join(
        args.build, "tests", "fixture", "usbemu"))
    import harness
    import linkprofile
    import run as lz4run

    def bench(td):
        fs = td.file("fs.img")
        lz4run.make_fs_image(fs, td.path, max(64, args.mib))
        rnd = td.file("rnd.img")
        with open(rnd, "wb") as f:
            f.write(os.urandom(args.mib * MIB))
        scratch = td.file("scratch.img")
        with open(scratch, "wb") as f:
            f.truncate(args.mib * MIB)
        works = args.work.split(",")
        only = args.only.split(",")
        link = linkprofile.Link(args.profile)
        rounds = []
        try:
            for r in range(args.rounds):
                res = {}
                for v in only[r % len(only):] + only[:r % len(only)]:
                    for w in works:
                        data, way = w.split("-")
                        src = fs if data == "fs" else rnd
                        img, wf = (src, None) if way == "read" else \
                            (scratch, src)
                        res[(v, w)] = run_one(td, link, v, img, wf, args,
                                              f"{v}-{w}-{r}")
                    cpu = (f"; relay CPU s/GiB " + "/".join(
                        f"{c:.1f}" for c in relay_cpu)) if relay_cpu else ""
                    relay_cpu.clear()
                    print(f"  round {r + 1} {v}: " + ", ".join(
                        f"{w} {res[(v, w)]:.2f}" for w in works) + cpu,
                        flush=True)
                rounds.append(res)
        finally:
            link.close()
        print(f"== {link.describe()}; {args.rounds} rounds, {args.mib} MiB, "
              f"{args.cmd_kib} KiB commands; MB/s mean (min-max), "
              f"x {VARIANTS[only[0]][0]} in the same round")
        for v in only:
            cells = ""
            for w in works:
                x = [rr[(v, w)] for rr in rounds]
                q = [rr[(v, w)] / rr[(only[0], w)] for rr in rounds]
                cells += (f"  {w} {sum(x) / len(x):.2f} ({min(x):.2f}-"
                          f"{max(x):.2f}) {sum(q) / len(q):.2f}x ("
                          f"{min(q):.2f}-{max(q):.2f})")
            print(f"  {VARIANTS[v][0]:18}{cells}", flush=True)

    harness.main(bench, name="bench_link_bulk")


if __name__ == "__main__":
    main()
