#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Serial bridge benchmark: redir-agent against ser2net 4.3 (its default
config and a tuned one), on the same pseudo-terminal harness, in one run.

For each bridge: a pty stands in for the serial device (the harness holds
the master), a raw TCP client connects, and we measure
  * throughput network -> device and device -> network (MB/s),
  * 1-byte round trips client -> device -> client (p50/p99, microseconds),
  * the bridge's CPU seconds for each direction (/proc/PID/stat).
Then ratios of redir-agent to each ser2net setup are printed.

    bench/serial/bench.py [--size MiB] [--rounds N]

Builds redir-agent in build-bench (release, no sanitizers); with
$REDIR_AGENT set, benchmarks that binary instead.
"""

import argparse
import ctypes
import os
import select
import signal
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build-bench")
AGENT = os.environ.get("REDIR_AGENT") or os.path.join(BUILD, "agent",
                                                      "redir-agent")
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHUNK = 65536


def build_agent():
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DREDIR_SANITIZE=OFF",
                    "-DCMAKE_BUILD_TYPE=Release", "-DREDIR_BUILD_TESTS=OFF"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "--target", "redir-agent",
                    "-j", str(os.cpu_count() or 2)],
                   check=True, stdout=subprocess.DEVNULL)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # utime + stime


def die_with_parent():
    """In the child: SIGTERM when the bench goes, however it goes."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG


class Bridge:
    """One bridge process serving one pty on one TCP port."""

    def __init__(self, kind, workdir):
        self.kind = kind
        self.workdir = workdir
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slave = slave                 # kept open, as a device would be
        # a link of this run's, not /dev/pts/N: a bridge left running by
        # an aborted run must never open a later pty that got the number
        # (it would read some of its bytes: a "stall" in whoever owns it)
        self.device = os.path.join(workdir, f"{kind}.tty")
        os.symlink(os.ttyname(slave), self.device)
        os.set_blocking(self.master, False)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = None

    def start(self):
        log = open(os.path.join(self.workdir, f"{self.kind}.log"), "wb")
        if self.kind == "redir-agent":
            conf = os.path.join(self.workdir, "agent.ini")
            with open(conf, "w") as f:
                f.write(f"[agent]\nlog_level = notice\n"
                        f"control_socket = {self.workdir}/agent.sock\n"
                        f"[serial.bench]\ndevice = {self.device}\n"
                        f"listen = 127.0.0.1:{self.port}\nmode = raw\n"
                        f"line = 115200 8N1\n")
            args = [AGENT, "-f", "-c", conf]
        else:
            tuned = self.kind == "ser2net-tuned"
            conf = os.path.join(self.workdir, f"{self.kind}.yaml")
            with open(conf, "w") as f:
                f.write(f"connection: &bench\n"
                        f"  accepter: tcp,127.0.0.1,{self.port}\n"
                        f"  connector: serialdev,{self.device},115200n81,local\n"
                        f"  options:\n    kickolduser: true\n")
                if tuned:
                    f.write("    chardelay: false\n"
                            f"    dev-to-net-bufsize: {CHUNK}\n"
                            f"    net-to-dev-bufsize: {CHUNK}\n")
            args = ["ser2net", "-n", "-u", "-d", "-c", conf]
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} did not start")
                time.sleep(0.05)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.3)                    # let it settle (termios, flush)
        self.drain_master()

    def drain_master(self):
        while select.select([self.master], [], [], 0.05)[0]:
            try:
                os.read(self.master, 1 << 20)
            except BlockingIOError:
                break

    def stop(self):
        self.sock.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.master)
        os.close(self.slave)

    # -- measurements ----------------------------------------------------

    def round_trips(self, rounds):
        """Client sends one byte, the device echoes it, the client gets it."""
        times = []
        for i in range(rounds):
            b = bytes([i & 0x7f])
            t0 = time.perf_counter()
            self.sock.sendall(b)
            while not select.select([self.master], [], [], 5)[0]:
                raise RuntimeError("no byte at the device")
            got = os.read(self.master, 1)
            os.write(self.master, got)
            if self.sock.recv(1) != b:
                raise RuntimeError("echo mismatch")
            times.append(time.perf_counter() - t0)
        return times

    def net_to_dev(self, size):
        """size bytes client -> device; returns (seconds, bridge CPU s)."""
        block = bytes(range(256)) * (CHUNK // 256)

        def send():
            left = size
            while left > 0:
                n = min(left, CHUNK)
                self.sock.sendall(block[:n])
                left -= n
        cpu0 = cpu_seconds(self.proc.pid)
        t0 = time.perf_counter()
        sender = threading.Thread(target=send)
        sender.start()
        got = 0
        while got < size:
            if not select.select([self.master], [], [], 10)[0]:
                raise RuntimeError(f"{self.kind}: stalled at {got} bytes")
            try:
                got += len(os.read(self.master, 1 << 20))
            except BlockingIOError:
                pass
        elapsed = time.perf_counter() - t0
        sender.join()
        return elapsed, cpu_seconds(self.proc.pid) - cpu0

    def dev_to_net(self, size):
        """size bytes device -> client; returns (seconds, bridge CPU s)."""
        block = bytes(range(256)) * (CHUNK // 256)

        def write():
            left = size
            while left > 0:
                select.select([], [self.master], [], 10)
                try:
                    left -= os.write(self.master, block[:min(left, CHUNK)])
                except BlockingIOError:
                    pass
        buf = bytearray(1 << 20)
        cpu0 = cpu_seconds(self.proc.pid)
        t0 = time.perf_counter()
        writer = threading.Thread(target=write)
        writer.start()
        got = 0
        self.sock.settimeout(10)
        while got < size:
            n = self.sock.recv_into(buf)
            if n == 0:
                raise RuntimeError(f"{self.kind}: closed at {got} bytes")
            got += n
        elapsed = time.perf_counter() - t0
        writer.join()
        return elapsed, cpu_seconds(self.proc.pid) - cpu0


def measure(kind, size, rounds, workdir):
    b = Bridge(kind, workdir)
    b.start()
    try:
        b.round_trips(50)                  # warm-up
        rtt = sorted(b.round_trips(rounds))
        up_s, up_cpu = b.net_to_dev(size)
        down_s, down_cpu = b.dev_to_net(size)
    finally:
        b.stop()
    mb = size / 1e6
    return dict(up=mb / up_s, down=mb / down_s, up_cpu=up_cpu,
                down_cpu=down_cpu, p50=statistics.median(rtt) * 1e6,
                p99=rtt[int(len(rtt) * 0.99) - 1] * 1e6)


def ratio(a, b):
    return f"{a / b:.3g}x" if b else "inf"


def median_results(runs):
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=64,
                    help="MiB per throughput direction (default 64)")
    ap.add_argument("--rounds", type=int, default=1000,
                    help="1-byte round trips per run (default 1000)")
    ap.add_argument("--runs", type=int, default=3,
                    help="runs of every bridge, interleaved; medians are "
                         "reported (default 3)")
    args = ap.parse_args()
    if not shutil.which("ser2net"):
        sys.exit("ser2net is not installed (apt-get install ser2net)")
    if not os.environ.get("REDIR_AGENT"):
        build_agent()
    size = args.size << 20
    kinds = ["ser2net-default", "ser2net-tuned", "redir-agent"]
    runs = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="serial-bench-") as workdir:
        for run in range(args.runs):
            # a different order each run: drifts of a shared machine do not
            # always hit the same bridge
            for kind in kinds[run % 3:] + kinds[:run % 3]:
                print(f"run {run + 1}/{args.runs}: {kind} ...",
                      file=sys.stderr, flush=True)
                runs[kind].append(measure(kind, size, args.rounds, workdir))
    results = {k: median_results(v) for k, v in runs.items()}

    print(f"\n{args.size} MiB each way, {args.rounds} round trips, raw TCP, "
          f"pty device, {os.cpu_count()} CPUs; medians of {args.runs} runs\n")
    head = (f"{'bridge':<16} {'net->dev MB/s':>13} {'dev->net MB/s':>13} "
            f"{'RTT p50 us':>10} {'RTT p99 us':>10} {'CPU s net->dev':>14} "
            f"{'CPU s dev->net':>14}")
    print(head)
    print("-" * len(head))
    for kind, r in results.items():
        print(f"{kind:<16} {r['up']:>13.1f} {r['down']:>13.1f} "
              f"{r['p50']:>10.0f} {r['p99']:>10.0f} {r['up_cpu']:>14.2f} "
              f"{r['down_cpu']:>14.2f}")
    a = results["redir-agent"]
    print("\nredir-agent / ser2net (throughput: higher is better; latency and "
          "CPU: lower is better)")
    for base in ("ser2net-default", "ser2net-tuned"):
        s = results[base]
        print(f"  vs {base:<16} net->dev {ratio(a['up'], s['up'])}, "
              f"dev->net {ratio(a['down'], s['down'])}, "
              f"RTT p50 {ratio(a['p50'], s['p50'])}, "
              f"p99 {ratio(a['p99'], s['p99'])}, "
              f"CPU net->dev {ratio(a['up_cpu'], s['up_cpu'])}, "
              f"dev->net {ratio(a['down_cpu'], s['down_cpu'])}")


if __name__ == "__main__":
    main()
