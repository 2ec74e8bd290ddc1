#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Added latency per transfer, as a security key feels it: 64-byte HID
report round trips (CTAPHID packet size) on a real kernel USB stack. A
FIDO HID gadget on dummy_hcd in the thin-client VM (tests/thinclient)
echoes every output report as an input report (hidrtt echo); the VDI
guest times write-report -> read-echo on the redirected device's hidraw
(hidrtt ping). Through upstream usbredirect, redir-agent raw, redir-agent
lz4 through redir-relay, and usbredirect again (the A/A spread), on

  loopback  the rig as it is (QEMU user networking to the host)
  100mbit   + bench/link/delayproxy on the host: 1 ms RTT (0.5 ms each
            way); a 64-byte exchange is bound by the delay, not the rate

Prints p50/p90/p99 microseconds per round trip and the ratios against
usbredirect (mean of A1 and A2); what the agent adds = its p50 - the
baseline's p50.

    bench/link/latency.py [--count 1000] [--profiles loopback,100mbit]
Uses $REDIR_AGENT, else a release build in build-rel/.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build-rel")
sys.path.insert(0, os.path.join(ROOT, "tests", "thinclient"))
sys.path.insert(0, os.path.join(ROOT, "tests", "relay"))
from thinclient import ThinClient, VdiGuest, fido_gadget, harness  # noqa: E402
import linkprofile  # noqa: E402,F401  (same directory)

STATS = ("rtt_p50", "rtt_p90", "rtt_p99", "rtt_mean", "rtt_min")


def build(work):
    if not os.environ.get("REDIR_AGENT"):
        if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
            subprocess.run(["cmake", "-S", ROOT, "-B", BUILD,
                            "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                            "-DREDIR_SANITIZE=OFF"], check=True,
                           stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", BUILD, "-j", str(os.cpu_count())],
                       check=True, stdout=subprocess.DEVNULL)
        os.environ["REDIR_AGENT"] = os.path.join(BUILD, "agent", "redir-agent")
        os.environ["REDIR_RELAY"] = os.path.join(BUILD, "relay", "redir-relay")
    os.environ.setdefault("REDIR_GUEST_CACHE",
                          os.path.join(BUILD, "guest-cache"))
    exe = os.path.join(work, "hidrtt")
    subprocess.run(["gcc", "-O2", "-static", "-std=c11", "-Wall", "-Wextra",
                    "-Werror", os.path.join(HERE, "hidrtt.c"), "-o", exe],
                   check=True)
    with open(exe, "rb") as f:
        return f.read()


class Proxy:
    def __init__(self, work, rtt_us, upstream_port):
        exe = linkprofile.build_proxy(work)
        self.port = harness.free_port()
        self.p = subprocess.Popen(
            [exe, str(rtt_us // 2), "127.0.0.1", "127.0.0.1",
             f"{self.port}:{upstream_port}"], stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "READY"

    def stop(self):
        self.p.terminate()
        self.p.wait(5)


def measure(td, tc, vdi, fido, variant, prof, port, args, n, relay_port):
    rtt_us = 1000 if prof == "100mbit" else 0
    proxy = None
    target = port if variant != "lz4" else relay_port
    if rtt_us:
        proxy = Proxy(td.path, rtt_us, target)
        target = proxy.port
    if variant == "usbredirect":
        red = tc.start_agent(None, name=f"usbredirect-{n}", argv=[
            "/usr/bin/usbredirect", "--device", fido.vidpid,
            "--to", f"10.0.2.2:{target}"])
    elif variant == "raw":
        red = tc.start_agent(f"[usb]\nconnect = 10.0.2.2:{target}\n",
                             name=f"agent-raw-{n}")
    else:
        red = tc.start_agent(
            f"[usb]\nconnect = 10.0.2.2:{target}/t0\ntransport = lz4\n"
            "relay_secret_file = /tmp/relay.secret\nagent_id = bench\n",
            name=f"agent-lz4-{n}")
    h = vdi.sh("wait_until 60 eval 'test -n \"$(hidraw_of 1209 7F1D)\"' && "
               "hidraw_of 1209 7F1D", timeout=70).strip()
    vdi.sh("sleep 1")
    out = vdi.sh(f"/usr/bin/hidrtt ping /dev/{h} {args.count} 50",
                 timeout=60 + args.count)
    res = {}
    for line in out.splitlines():
        if line.startswith("RESULT: "):
            k, v = line[8:].split("=")
            res[k] = float(v)
    red.stop(timeout=15, expect_rc=None, sig=signal.SIGTERM)
    vdi.sh("wait_until 20 eval 'test -z \"$(hidraw_of 1209 7F1D)\"'",
           timeout=30)
    tc.wait_drivers(fido, {"1.0": "usbhid"}, 20)
    if proxy:
        proxy.stop()
    return res


def bench(td, args):
    import relayharness
    hidrtt = build(td.path)
    tc = ThinClient(td, usbredirect=True,
                    files={"/usr/bin/hidrtt": (hidrtt, 0o755)}).start()
    fido = tc.add_gadget(fido_gadget())
    tc.wait_drivers(fido, {"1.0": "usbhid"})
    tc.sh(f"bg /tmp/echo.log /usr/bin/hidrtt echo {fido.nodes['fido']} "
          ">/dev/null")
    port = harness.free_port()
    vdi = VdiGuest(td, slots=[("server", port)],
                   modules=("usbhid", "hid_generic"),
                   files={"/usr/bin/hidrtt": (hidrtt, 0o755)},
                   verbose=False).start()
    relay = relayharness.Relay(td)
    relay.start(relay.config({"t0": f"127.0.0.1:{port}"}, log_level="info"))
    relay.wait_ready()
    # the thin client dials 10.0.2.2 (the host's loopback): listen there
    tc.put_file("/tmp/relay.secret", relay.secret + b"\n", 0o600)
    order = [("usbredirect A1", "usbredirect"), ("agent raw", "raw"),
             ("agent lz4+relay", "lz4"), ("usbredirect A2", "usbredirect")]
    n = 0
    for prof in args.profiles.split(","):
        runs = {}
        for label, variant in order:
            n += 1
            runs[label] = measure(td, tc, vdi, fido, variant, prof, port,
                                  args, n, relay.port)
            print(f"  {prof} {label}: " + ", ".join(
                f"{k[4:]} {runs[label][k]:.0f}" for k in STATS) + " us",
                flush=True)
        a1, a2 = runs["usbredirect A1"], runs["usbredirect A2"]
        base = {k: (a1[k] + a2[k]) / 2 for k in STATS}
        print(f"\n== {prof}: 64-byte HID report round trips, {args.count} "
              f"per redirector, microseconds")
        print(f"  {'redirector':16} {'p50':>7} {'p90':>7} {'p99':>7} "
              f"{'mean':>7} {'p50 xA':>7} {'p99 xA':>7} {'adds p50':>9}")
        for label, _ in order:
            r = runs[label]
            print(f"  {label:16} {r['rtt_p50']:7.0f} {r['rtt_p90']:7.0f} "
                  f"{r['rtt_p99']:7.0f} {r['rtt_mean']:7.0f} "
                  f"{r['rtt_p50'] / base['rtt_p50']:7.2f} "
                  f"{r['rtt_p99'] / base['rtt_p99']:7.2f} "
                  f"{r['rtt_p50'] - base['rtt_p50']:+9.0f}")
        print(f"  A/A spread: p50 "
              f"{abs(a1['rtt_p50'] - a2['rtt_p50']) / base['rtt_p50'] * 100:.1f}"
              f" %, p99 "
              f"{abs(a1['rtt_p99'] - a2['rtt_p99']) / base['rtt_p99'] * 100:.1f}"
              " %", flush=True)
    relay.stop()
    vdi.poweroff()
    tc.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--profiles", default="loopback,100mbit")
    args = ap.parse_args()
    harness.main(lambda td: bench(td, args), name="bench_link_latency")


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
