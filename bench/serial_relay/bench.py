#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Serial through redir-relay against the direct bridge, in one run.

Both carry the same bytes to the same kind of port (a pty whose master the
bench holds, standing in for the thin client's adapter):
  * direct: a raw TCP client (what a VM's RFC 2217/TCP serial client is)
    -> redir-agent [serial] listen, mode = raw -> the port;
  * relay:  the relay's serial target pty, opened as QEMU's
    -chardev serial,path= would -> redir-relay -> redir-agent
    [serial] connect = RELAY/TARGET (RFC 2217 over the relay session,
    shared secret) -> the port.
Measured: throughput VM side -> port and port -> VM side (MB/s, SIZE MiB
each), and 1-byte round trips VM side -> port -> VM side (the bench
echoes at the port; p50/p99 in microseconds). Printed with the ratios
relay/direct (goals: throughput >= 0.8x, RTT <= 1.5x).

    bench/serial_relay/bench.py [--size MiB] [--rounds N]

Builds redir-agent and redir-relay in build-bench (release, no
sanitizers); $REDIR_AGENT / $REDIR_RELAY override the binaries.
"""

import argparse
import ctypes
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import termios
import tty

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build-bench")
AGENT = os.environ.get("REDIR_AGENT") or os.path.join(BUILD, "agent",
                                                      "redir-agent")
RELAY = os.environ.get("REDIR_RELAY") or os.path.join(BUILD, "relay",
                                                      "redir-relay")
CHUNK = 65536


def build():
    subprocess.run(["cmake", "-S", ROOT, "-B", BUILD, "-DREDIR_SANITIZE=OFF",
                    "-DCMAKE_BUILD_TYPE=Release", "-DREDIR_BUILD_TESTS=OFF"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "--target", "redir-agent",
                    "redir-relay", "-j", "2"],
                   check=True, stdout=subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, fn, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    sys.exit(f"bench: timed out waiting for {what}")


class Port:
    """The thin client's adapter: a pty; the bench holds the master."""

    def __init__(self, wd):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        # a link of this run's, not /dev/pts/N: an agent left running by an
        # aborted run must never open a later pty that got the number
        self.device = os.path.join(wd, f"port-{self.master}.tty")
        os.symlink(os.ttyname(self.slave), self.device)


def die_with_parent():
    """In the child: SIGTERM when the bench goes, however it goes."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PDEATHSIG


def start(cmd, log):
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)


def agent_conf(wd, port, section):
    path = os.path.join(wd, f"agent-{port.master}.ini")
    with open(path, "w") as f:
        f.write(f"[agent]\nlog_level = notice\ncontrol_socket = "
                f"{wd}/agent-{port.master}.sock\n[serial.bench]\n"
                f"device = {port.device}\nline = 115200 8N1\n{section}")
    return path


class Direct:
    name = "direct"

    def __init__(self, wd):
        self.port = Port(wd)
        tcp = free_port()
        conf = agent_conf(wd, self.port,
                          f"listen = 127.0.0.1:{tcp}\nmode = raw\n")
        self.procs = [start([AGENT, "-f", "-c", conf],
                            open(os.path.join(wd, "direct.log"), "wb"))]

        def dial():
            try:
                return socket.create_connection(("127.0.0.1", tcp), 1)
            except OSError:
                return None
        self.sock = wait_for("the agent's listener", dial)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.fd = self.sock.fileno()
        time.sleep(0.3)   # the agent takes the client


class PtyAlone:
    """One pty with nothing behind it: what the relay path's VM-side pty
    costs by itself (written at the slave as QEMU would, read and echoed
    at the master)."""
    name = "pty"

    def __init__(self, wd):
        self.port = Port(wd)
        self.fd = self.port.slave
        os.set_blocking(self.fd, False)
        self.procs = []


class ViaRelay:
    name = "relay"

    def __init__(self, wd):
        self.port = Port(wd)
        rport = free_port()
        secret = os.path.join(wd, "relay.secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, os.urandom(24).hex().encode() + b"\n")
        os.close(fd)
        path = os.path.join(wd, "com")
        rconf = os.path.join(wd, "relay.ini")
        with open(rconf, "w") as f:
            f.write(f"[relay]\nlisten = 127.0.0.1:{rport}\nsecret_file = "
                    f"{secret}\nlog_level = info\n[target.com]\n"
                    f"kind = serial\npath = {path}\n")
        rlog = os.path.join(wd, "relay.log")
        # $BENCH_RELAY_WRAP (e.g. "strace -f -c -o FILE"): run the relay
        # under it, to count its system calls during the run
        wrap = os.environ.get("BENCH_RELAY_WRAP", "").split()
        self.procs = [start(wrap + [RELAY, "-f", "-c", rconf],
                            open(rlog, "wb"))]
        wait_for("the relay's pty", lambda: os.path.islink(path))
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        # the line a guest sets (guest.py: stty 115200), as QEMU applies
        # it: the relay paces its reads of a stream to the guest's speed
        attr = termios.tcgetattr(self.fd)
        attr[4] = attr[5] = termios.B115200
        termios.tcsetattr(self.fd, termios.TCSANOW, attr)
        conf = agent_conf(wd, self.port,
                          f"connect = 127.0.0.1:{rport}/com\n"
                          f"relay_secret_file = {secret}\n")
        self.procs.append(start([AGENT, "-f", "-c", conf],
                                open(os.path.join(wd, "relay-agent.log"),
                                     "wb")))
        wait_for("the agent to attach",
                 lambda: "attached to target" in open(rlog).read())
        time.sleep(0.5)   # the RFC 2217 negotiation and settings


def write_some(fd, data, off):
    try:
        return off + os.write(fd, data[off:off + CHUNK])
    except BlockingIOError:
        return off


def read_some(fd, got):
    try:
        return got + len(os.read(fd, CHUNK))
    except BlockingIOError:
        return got


def throughput(src, dst, size):
    data = os.urandom(size)
    sent = got = 0
    t0 = time.monotonic()
    while got < size:
        w = [src] if sent < size else []
        r, w, _ = select.select([dst], w, [], 5)
        if not r and not w:
            sys.exit(f"bench: stalled at {got}/{size}")
        if w:
            sent = write_some(src, data, sent)
        if r:
            got = read_some(dst, got)
    return size / (time.monotonic() - t0) / 1e6


def drain(fd):
    while select.select([fd], [], [], 0.2)[0]:
        if read_some(fd, 0) == 0:
            break


def rtt(vm, port, rounds):
    """One byte VM side -> port, echoed by the bench at the port."""
    out = []
    for i in range(rounds):
        b = bytes([i & 0xff])
        t0 = time.perf_counter()
        os.write(vm, b)
        select.select([port], [], [])
        os.read(port, 1)
        os.write(port, b)
        select.select([vm], [], [])
        os.read(vm, 1)
        out.append((time.perf_counter() - t0) * 1e6)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]


def stop(proc):
    """Terminates proc and, under $BENCH_RELAY_WRAP, what the wrapper runs
    first (strace detaches on SIGTERM and would wait for the relay)."""
    try:
        with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
            children = [int(pid) for pid in f.read().split()]
    except OSError:
        children = []
    if os.environ.get("BENCH_RELAY_WRAP"):
        for pid in children:
            os.kill(pid, 15)
    proc.terminate()
    proc.wait()


def cpu_seconds(pid):
    """User + system CPU a process has used so far (less noisy on a shared
    machine than wall-clock rates)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def construct(cls, wd):
    """cls(wd), its processes stopped if it fails half-way: a redir-agent
    left running would keep reopening its /dev/pts/N and read the ptys
    later runs get under that number."""
    started = []
    real_start = globals()["start"]

    def tracked(cmd, log):
        proc = real_start(cmd, log)
        started.append(proc)
        return proc
    globals()["start"] = tracked
    try:
        return cls(wd)
    except BaseException:
        for proc in started:
            stop(proc)
        raise
    finally:
        globals()["start"] = real_start


def run(path, size, rounds):
    with tempfile.TemporaryDirectory(prefix="bench-serial-relay-") as wd:
        res = {}
        for cls in (Direct, PtyAlone, ViaRelay):
            p = construct(cls, wd)
            try:
                r = {"to_port": throughput(p.fd, p.port.master, size),
                     "from_port": throughput(p.port.master, p.fd, size)}
                drain(p.fd)
                drain(p.port.master)
                r["rtt"] = rtt(p.fd, p.port.master, rounds)
                r["cpu"] = [cpu_seconds(proc.pid) for proc in p.procs]
                res[p.name] = r
            finally:
                for proc in p.procs:
                    stop(proc)
        return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=16, help="MiB per direction")
    ap.add_argument("--rounds", type=int, default=2000)
    a = ap.parse_args()
    if not os.environ.get("REDIR_AGENT") or not os.environ.get("REDIR_RELAY"):
        build()
    res = run(ROOT, a.size << 20, a.rounds)
    d, r, t = res["direct"], res["relay"], res["pty"]
    print(f"{'':8} {'VM->port MB/s':>14} {'port->VM MB/s':>14} "
          f"{'RTT p50 us':>11} {'RTT p99 us':>11}")
    for name in ("direct", "pty", "relay"):
        x = res[name]
        print(f"{name:8} {x['to_port']:14.1f} {x['from_port']:14.1f} "
              f"{x['rtt'][0]:11.0f} {x['rtt'][1]:11.0f}")
    print(f"{'ratio':8} {r['to_port'] / d['to_port']:13.2f}x "
          f"{r['from_port'] / d['from_port']:13.2f}x "
          f"{r['rtt'][0] / d['rtt'][0]:10.2f}x "
          f"{r['rtt'][1] / d['rtt'][1]:10.2f}x"
          "   (relay / direct; goals: >= 0.8x, RTT <= 1.5x)")
    print(f"{'pty/dir':8} {t['to_port'] / d['to_port']:13.2f}x "
          f"{t['from_port'] / d['from_port']:13.2f}x "
          f"{t['rtt'][0] / d['rtt'][0]:10.2f}x "
          f"{t['rtt'][1] / d['rtt'][1]:10.2f}x"
          "   (the VM-side pty alone / direct)")
    print(f"CPU for the whole run (s): direct agent {d['cpu'][0]:.2f}; "
          f"relay {r['cpu'][0]:.2f}, its agent {r['cpu'][1]:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
