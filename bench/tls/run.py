#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Benchmark: what TLS costs through redir-relay. A Linux guest reads a
redirected emulated USB disk with dd; the device goes agent -> relay ->
QEMU over loopback, raw usbredir (no lz4, so that only TLS differs):
  plain        shared secret, no encryption (the baseline)
  aes-gcm      TLS 1.3, TLS_AES_128_GCM_SHA256 on both ends
  chacha20     TLS 1.3, TLS_CHACHA20_POLY1305_SHA256 on both ends
Variants are interleaved round by round (same run, same disk image).
Prints the guest's MiB/s and the CPU seconds per GiB of the agent and of
the relay, each as a ratio against plain. Goal: TLS costs <= 15% CPU per
GiB and <= 5% throughput.

Usage: bench/tls/run.py [--disk-mib N] [--rounds N] [--reads N]
Needs a release build (build-bench/, made if missing, as bench/usb_disk.py)."""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "tls"))
sys.path.insert(0, os.path.join(ROOT, "tests", "relay"))
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import usb_disk  # noqa: E402

SUITES = {"aes-gcm": "TLS_AES_128_GCM_SHA256",
          "chacha20": "TLS_CHACHA20_POLY1305_SHA256"}
VARIANTS = ["plain", "aes-gcm", "chacha20"]


def keys(certs, name, variant):
    if variant == "plain":
        return None
    return certs.tls_keys(name) + f"tls_ciphersuites = {SUITES[variant]}\n"


def run_variant(td, certs, variant, img, disk_mib, reads, n):
    import harness
    import relayharness
    from linuxguest import LinuxGuest, proc_cpu_seconds
    tag = f"{variant}-{n}"
    fx = harness.Fixture(td, name=f"usbemu-{tag}").start()
    fx.add("disk", img)
    qport = harness.free_port()
    guest = LinuxGuest(td, usb_disk.SCRIPT.replace("@ROUNDS@", str(reads)),
                       slots=[("server", qport)], name=f"guest-{tag}",
                       verbose=False)
    guest.start()
    relay = relayharness.Relay(td, name=f"relay-{tag}",
                               path=os.path.join(usb_disk.BUILD, "relay",
                                                 "redir-relay"))
    rkeys = keys(certs, "relay", variant) or \
        f"secret_file = {relay.secret_path}\n"
    relay.start(f"[relay]\nlisten = 127.0.0.1:{relay.port}\nlog_level = "
                f"notice\n{rkeys}\n[target.vm]\nqemu = 127.0.0.1:{qport}\n")
    relay.wait_ready()
    akeys = keys(certs, "desk-17", variant) or \
        f"relay_secret_file = {relay.secret_path}\n"
    agent = harness.Agent(td, fx, name=f"agent-{tag}")
    agent.start(f"[agent]\nlog_level = notice\n[usb]\n"
                f"connect = 127.0.0.1:{relay.port}/vm\ntransport = raw\n"
                f"reconnect_max_ms = 300\n{akeys}")
    guest.wait_serial(r"BENCH-START", 180)
    cpu_a, cpu_r = proc_cpu_seconds(agent.pid), proc_cpu_seconds(relay.pid)
    guest.wait_serial(r"BENCH-END", 900)
    cpu_a = proc_cpu_seconds(agent.pid) - cpu_a
    cpu_r = proc_cpu_seconds(relay.pid) - cpu_r
    res = guest.wait_done(timeout=120).require_ok()
    agent.stop()
    relay.stop()
    fx.stop()
    speeds = [res.float(f"round{i}") for i in range(1, reads + 1)]
    gib = disk_mib * reads / 1024
    return {"mib_s": statistics.mean(speeds), "agent": cpu_a / gib,
            "relay": cpu_r / gib}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--disk-mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2,
                    help="guest boots per variant, interleaved")
    ap.add_argument("--reads", type=int, default=3,
                    help="whole-disk reads per boot")
    args = ap.parse_args()
    usb_disk.build()
    os.environ["REDIR_RELAY"] = os.path.join(usb_disk.BUILD, "relay",
                                             "redir-relay")
    import harness
    import diskimage
    import tlsharness
    results = {v: [] for v in VARIANTS}

    def bench(td):
        certs = tlsharness.certs(td)
        img = td.file("disk.img")
        diskimage.make_disk_image(img, args.disk_mib)
        for n in range(args.rounds):
            for v in VARIANTS:
                r = run_variant(td, certs, v, img, args.disk_mib, args.reads,
                                n)
                results[v].append(r)
                print(f"round {n + 1} {v:9} {r['mib_s']:6.1f} MiB/s  agent "
                      f"{r['agent']:5.2f}  relay {r['relay']:5.2f} CPU s/GiB",
                      flush=True)
        report(results, args)

    harness.main(bench, name="bench_tls")


def report(results, args):
    base = {k: statistics.mean(r[k] for r in results["plain"])
            for k in ("mib_s", "agent", "relay")}
    print(f"\nthrough the relay, {args.disk_mib} MiB x {args.reads} reads x "
          f"{args.rounds} boots per variant (mean; ratio against plain, "
          f"min-max over the boots)")
    print("| variant | guest MiB/s | agent CPU s/GiB | relay CPU s/GiB |")
    print("|---|---|---|---|")
    for v in VARIANTS:
        cells = []
        for k in ("mib_s", "agent", "relay"):
            vals = [r[k] for r in results[v]]
            mean = statistics.mean(vals)
            cells.append(f"{mean:.2f} ({mean / base[k]:.2f}x, "
                         f"{min(vals) / base[k]:.2f}-{max(vals) / base[k]:.2f})")
        print(f"| {v} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
