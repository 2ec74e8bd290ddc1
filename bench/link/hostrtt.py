#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Added latency per transfer on the host, no VM: 64-byte bulk OUT then
64-byte bulk IN round trips on the emulated vendor loopback device
(tests/fixture usbemu, kind loopback, under umockdev's preload), timed by
bench/link/hostrtt.c with CLOCK_MONOTONIC, in one run:

  device alone      hostrtt direct: libusb's synchronous bulk transfers under
                    the same preload (the emulated device + libusb by
                    themselves); run first and last
  usbredirect       upstream usbredirect --to the peer (A1, and A2 last)
  agent             redir-agent (release build) raw, connect = the peer
  agent, poll shim  the same agent with bench/link/hostrtt_pollshim.c
                    preloaded: the emulated device's node serviced on every
                    loop iteration instead of on the agent's 1 ms timer for
                    nodes epoll refuses (only emulated nodes are such)

For the redirectors, hostrtt peer plays QEMU (libusbredirparser, QEMU's
capabilities, TCP_NODELAY on 127.0.0.1) and times bulk_packet OUT -> reply,
bulk_packet IN -> reply. Prints min/p50/p90/p99 microseconds, what each
redirector adds over the device alone (min, p50, p99), ratios against
usbredirect (mean of A1 and A2) and the A/A spread; per round trip the
redirector's CPU time and context switches (/proc, over the timed run) and
its system calls (strace -f on separate, untimed round trips). Every process
of the run gets a timer slack of 1 ns (see PR_SET_TIMERSLACK below).

    bench/link/hostrtt.py [--count 2000] [--warmup 200] [--strace 300]
                          [--timer-slack-ns 1]
Uses $REDIR_AGENT and $REDIR_USBEMU, else a release build in build-bench/.
"""
import argparse
import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build-bench")
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import harness  # noqa: E402

STATS = ("rtt_p50", "rtt_p90", "rtt_p99", "rtt_mean", "rtt_min")
REPLY_S = 120  # startup, handshake, warm-up; a hang, not a slow host
SLOWEST_RTT_S = 0.05  # mean round trip seen under a load average of 24
# umockdev's preload sleeps 0 ns in every emulated ioctl: the timer slack
# (50 us by default) makes that 50-100 us, several times per transfer, which
# a real usbfs ioctl never costs and a single-threaded loop (the agent) pays
# inline. 1 ns for every process of the run (inherited across exec) by
# default; --timer-slack-ns 0 leaves the default.
PR_SET_TIMERSLACK = 29
CC = ["gcc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror"]


def pkg(*names):
    return subprocess.run(["pkg-config", "--cflags", "--libs", *names],
                          check=True, capture_output=True,
                          text=True).stdout.split()


def build_release(*targets):
    """The release build in build-bench (configured if needed): targets,
    or everything."""
    if not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", ROOT, "-B", BUILD,
                        "-DCMAKE_BUILD_TYPE=Release", "-DREDIR_SANITIZE=OFF"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "-j", str(os.cpu_count())] +
                   [a for t in targets for a in ("--target", t)],
                   check=True, stdout=subprocess.DEVNULL)


def build_hostrtt(work):
    """hostrtt.c built into work (dynamically linked)."""
    exe = os.path.join(work, "hostrtt")
    subprocess.run(CC + [os.path.join(HERE, "hostrtt.c"), "-o", exe] +
                   pkg("libusb-1.0", "libusbredirparser-0.5"), check=True)
    return exe


def build(work):
    if not os.environ.get("REDIR_AGENT"):
        build_release()
        os.environ["REDIR_AGENT"] = os.path.join(BUILD, "agent", "redir-agent")
        os.environ["REDIR_USBEMU"] = os.path.join(BUILD, "tests", "fixture",
                                                  "usbemu")
    exe = build_hostrtt(work)
    shim = os.path.join(work, "hostrtt_pollshim.so")
    subprocess.run(CC + ["-shared", "-fPIC",
                         os.path.join(HERE, "hostrtt_pollshim.c"), "-o",
                         shim] + pkg("libuv") + ["-ldl"], check=True)
    return exe, shim


def parse_results(lines):
    res = {}
    for line in lines:
        if line.startswith("RESULT: "):
            k, v = line[8:].split("=")
            res[k] = float(v)
    return res


class Peer:
    """hostrtt peer: listens, handshakes, warms up, then times on 'go'."""

    def __init__(self, exe, count, warmup, log):
        self.p = subprocess.Popen([exe, "peer", str(count), str(warmup)],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=open(log, "w"), text=True, bufsize=1)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.port = int(self.wait("LISTENING")[-1].split()[1])

    def _read(self):
        for line in self.p.stdout:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def wait(self, word, timeout=REPLY_S):
        """Lines up to and including the one starting with `word`."""
        lines, deadline = [], time.monotonic() + timeout
        while True:
            try:
                left = deadline - time.monotonic()
                line = self.q.get(timeout=max(0.1, left))
            except queue.Empty:
                raise harness.ProcessFailed(f"hostrtt peer: no {word}")
            if line is None:
                raise harness.ProcessFailed(
                    f"hostrtt peer exited (rc={self.p.wait()}) before {word}")
            lines.append(line)
            if line.startswith(word):
                return lines

    def send(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def close(self):
        self.p.stdin.close()
        self.p.wait(10)


class Redirector:
    """usbredirect or redir-agent, dialing the peer, under the preload."""

    def __init__(self, td, fx, kind, port, shim, label):
        env = harness.preload_env(fx.umockdev_dir, asan=False)
        slug = label.replace(" ", "-").replace(",", "")
        self.log = td.file(f"{slug}.log")
        if kind == "usbredirect":
            argv = ["usbredirect", "--device", "1209:100b", "--to",
                    f"127.0.0.1:{port}"]
        else:
            conf = td.write(f"{slug}.conf", (
                f"[usb]\nconnect = 127.0.0.1:{port}\n[agent]\n"
                f"control_socket = {td.file(slug + '.sock')}\n"))
            argv = [os.environ["REDIR_AGENT"], "-f", "-c", conf]
            if kind == "agent-shim":
                env["LD_PRELOAD"] = shim + " " + env["LD_PRELOAD"]
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                  stdout=open(self.log, "w"),
                                  stderr=subprocess.STDOUT)
        self.pid = self.p.pid

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)


def counters(pid):
    """(CPU seconds, voluntary, involuntary context switches), all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    vol = invol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches"):
                    vol += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    invol += int(line.split()[1])
    return cpu, vol, invol


def strace_count(td, pid, peer, n, label):
    """System calls per round trip over n untimed round trips: {name: n}.
    Only calls made between "count" and "COUNTED" count: the ones made while
    strace attaches or stops (spinning, or the agent's emulation timer) are
    not the round trips'."""
    out = td.file(f"strace-{label.replace(' ', '-').replace(',', '')}.txt")
    argv = ["strace", "-f", "-ttt", "-o", out]
    for tid in os.listdir(f"/proc/{pid}/task"):
        argv += ["-p", tid]
    st = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached by then (it prints nothing we could wait on)
    t0 = time.time()
    peer.send(f"count {n}")
    peer.wait("COUNTED", REPLY_S + n * SLOWEST_RTT_S * 10)  # traced
    t1 = time.time()
    st.send_signal(signal.SIGINT)
    st.wait(30)
    calls = {"total": 0}
    with open(out) as f:
        for line in f:
            name, ts = syscall_of(line)
            if name and t0 <= ts <= t1:
                calls[name] = calls.get(name, 0) + 1 / n
                calls["total"] += 1 / n
    return calls


def syscall_of(line):
    """(name, time) of a strace -f -ttt line that starts a call, else
    (None, 0): '[pid] 1733.123 name(args...' ('<... resumed>', signals
    and exits are not calls)."""
    parts = line.split(None, 1)
    if parts and parts[0].isdigit():  # the thread id
        parts = parts[1].split(None, 1) if len(parts) > 1 else []
    if len(parts) < 2:
        return None, 0
    try:
        ts = float(parts[0])
    except ValueError:
        return None, 0
    name = parts[1].split("(", 1)[0]
    return (name, ts) if name.isidentifier() else (None, 0)


def run_direct(exe, fx, args):
    env = harness.preload_env(fx.umockdev_dir, asan=False)
    r = subprocess.run([exe, "direct", str(args.count), str(args.warmup)],
                       env=env, capture_output=True, text=True,
                       timeout=REPLY_S)
    if r.returncode != 0:
        raise harness.ProcessFailed(f"hostrtt direct: {r.stderr}")
    return parse_results(r.stdout.splitlines())


def run_redirector(td, exe, shim, fx, kind, label, args):
    peer = Peer(exe, args.count, args.warmup,
                td.file(f"peer-{label.replace(' ', '-')}.log"))
    red = Redirector(td, fx, kind, peer.port, shim, label)
    try:
        peer.wait("READY")
        c0 = counters(red.pid)
        peer.send("go")
        res = parse_results(peer.wait(
            "DONE", REPLY_S + args.count * SLOWEST_RTT_S))
        c1 = counters(red.pid)
        res["cpu_us"] = (c1[0] - c0[0]) * 1e6 / args.count
        res["vcsw"] = (c1[1] - c0[1]) / args.count
        res["icsw"] = (c1[2] - c0[2]) / args.count
        if args.strace:
            res["sys"] = strace_count(td, red.pid, peer, args.strace, label)
        peer.close()
    finally:
        red.stop()
        if peer.p.poll() is None:
            peer.p.kill()
    return res


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def row(r, dev, base):
    """A run's min/p50/p90/p99 and, against the device alone (dev) and the
    baseline (base; None for the device itself), what it adds and its
    ratios: the columns every round-trip table starts with."""
    out = (f"{r['rtt_min']:6.0f} {r['rtt_p50']:7.0f} {r['rtt_p90']:7.0f} "
           f"{r['rtt_p99']:8.0f} ")
    if base is None:
        return out
    return out + (f"{r['rtt_min'] - dev['rtt_min']:+7.0f} "
                  f"{r['rtt_p50'] - dev['rtt_p50']:+8.0f} "
                  f"{r['rtt_p99'] - dev['rtt_p99']:+8.0f} "
                  f"{r['rtt_p50'] / base['rtt_p50']:6.2f} "
                  f"{r['rtt_p99'] / base['rtt_p99']:6.2f} ")


def print_table(runs, order, args, load0, load1):
    d1, d2 = runs["device alone 1"], runs["device alone 2"]
    a1, a2 = runs["usbredirect A1"], runs["usbredirect A2"]
    dev = {k: (d1[k] + d2[k]) / 2 for k in STATS}
    base = {k: (a1[k] + a2[k]) / 2 for k in STATS}
    print(f"\n== 64-byte bulk OUT + bulk IN round trips on the emulated "
          f"loopback, {args.count} per variant, microseconds\n"
          f"   load average {load0} before, {load1} after "
          f"({os.cpu_count()} CPUs), timer slack "
          f"{args.timer_slack_ns or 'the default'} ns")
    print(f"  {'variant':17} {'min':>6} {'p50':>7} {'p90':>7} {'p99':>8} "
          f"{'add min':>7} {'add p50':>8} {'add p99':>8} {'p50 xA':>6} "
          f"{'p99 xA':>6} {'CPU/rt':>6} {'csw/rt':>6}")
    for label, _ in order:
        r = runs[label]
        redir = "cpu_us" in r
        print(f"  {label:17} " + row(r, dev, base if redir else None) +
              (f"{r['cpu_us']:6.0f} {r['vcsw'] + r['icsw']:6.1f}"
               if redir else ""))
    def spread(x, y, mean, k):
        return abs(x[k] - y[k]) / mean[k] * 100

    print(f"  A/A spread (usbredirect A1 vs A2): p50 "
          f"{spread(a1, a2, base, 'rtt_p50'):.1f} %, p99 "
          f"{spread(a1, a2, base, 'rtt_p99'):.1f} %; device alone 1 vs 2: "
          f"p50 {spread(d1, d2, dev, 'rtt_p50'):.1f} %")
    for label in ("agent", "agent, poll shim"):
        r = runs[label]
        add = [r[k] - dev[k] for k in ("rtt_p50", "rtt_p99")]
        badd = [base[k] - dev[k] for k in ("rtt_p50", "rtt_p99")]
        print(f"  {label} / usbredirect: round trip min "
              f"{r['rtt_min'] / base['rtt_min']:.2f}, p50 "
              f"{r['rtt_p50'] / base['rtt_p50']:.2f}, p99 "
              f"{r['rtt_p99'] / base['rtt_p99']:.2f}; added p50 "
              f"{add[0] / badd[0]:.2f}, p99 {add[1] / badd[1]:.2f}")
    if args.strace:
        print(f"\n  system calls per round trip (strace -f, {args.strace}"
              " untimed round trips; spinning shows as many cheap calls):")
        for label, _ in order:
            sys_ = runs[label].get("sys")
            if sys_ is not None:
                top = sorted(((k, v) for k, v in sys_.items()
                              if k != "total"), key=lambda kv: -kv[1])
                total = sys_.get("total", sum(v for _, v in top))
                print(f"  {label:17} {total:8.1f}  " + ", ".join(
                    f"{k} {v:.1f}" for k, v in top if v >= 0.05))


def set_timer_slack(ns):
    """Inherited by every process started from here, across exec."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_TIMERSLACK)")


def bench(td, args):
    exe, shim = build(td.path)
    if args.timer_slack_ns:
        set_timer_slack(args.timer_slack_ns)
    fx = harness.Fixture(td).start()
    fx.add("loopback")
    order = [("device alone 1", "direct"), ("usbredirect A1", "usbredirect"),
             ("agent", "agent"), ("agent, poll shim", "agent-shim"),
             ("usbredirect A2", "usbredirect"), ("device alone 2", "direct")]
    load0 = loadavg()
    runs = {}
    for label, kind in order:
        if kind == "direct":
            runs[label] = run_direct(exe, fx, args)
        else:
            runs[label] = run_redirector(td, exe, shim, fx, kind, label, args)
        print_run(label, runs[label])
    print_table(runs, order, args, load0, loadavg())
    fx.stop()


def print_run(label, r):
    print(f"  {label}: " + ", ".join(
        f"{k[4:]} {r[k]:.1f}" for k in STATS) + " us", flush=True)


def round_trip_args(doc):
    """The options every round-trip bench takes (doc: its docstring)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    return ap


def main():
    ap = round_trip_args(__doc__)
    ap.add_argument("--strace", type=int, default=300,
                    help="untimed round trips under strace (0: none)")
    ap.add_argument("--timer-slack-ns", type=int, default=1,
                    help="timer slack for every process of the run (0: "
                    "the system's, 50 us)")
    args = ap.parse_args()
    harness.main(lambda td: bench(td, args), name="bench_link_hostrtt")


if __name__ == "__main__":
    main()
