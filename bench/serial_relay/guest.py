#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Serial through redir-relay against the direct bridge as a VM's application
sees it: a Linux guest under QEMU (tests/guest/linuxguest.py) opens its
COM2/COM3, one per path, in the same boot:
  * direct (ttyS1): QEMU -chardev socket -> redir-agent [serial] listen,
    mode = raw -> the port;
  * relay (ttyS2):  QEMU -chardev serial,path= the relay's serial target
    (a pty) -> redir-relay -> redir-agent connect = RELAY/TARGET (RFC 2217
    over the relay session, shared secret) -> the port;
  * pty (ttyS3):    QEMU -chardev serial,path= a pty whose master is the
    port itself: no relay, no agent. The relay path starts with such a
    pty; this one shows what that pty alone costs QEMU (relay/pty is what
    the relay and agent add beyond it).
Each port is a pty whose master the bench holds (the thin client's
adapter), as in bench.py. QEMU's emulated 16550 sits between the guest's
application and both paths.

The guest runs guest_serial (guest_serial.c, built static here) per phase,
alternating the paths: guest -> port (the guest writes SIZE KiB; the bench
times from its go byte to the last byte at the port), port -> guest (the
bench writes SIZE KiB after a go byte from the guest; the guest times from
sending that to the last byte it reads), and 1-byte round trips from the
guest (the bench echoes at the port; the guest times them with
CLOCK_MONOTONIC). CRC-32 and byte counts are checked both ways. Printed per
round with the ratios relay/direct (goals: throughput >= 0.8x, RTT <= 1.5x),
then each process's read/write system calls and CPU per KiB (from /proc).

    bench/serial_relay/guest.py [--size KiB] [--rtt N] [--rounds R]
                                [--rx-trig 1|4|8|14] [--pin] [--line BAUD]

--line BAUD measures what a user behind a real adapter gets: the guest
opens its ports at BAUD and the bench moves bytes at each port no faster
than a BAUD 8N1 wire (a pty has no line rate of its own). A 16550 in QEMU
goes no faster than 115200 (its base_baud), and through the relay the port
follows the guest's setting, so that is the fastest line a relay target's
guest can ask for.

Builds redir-agent and redir-relay in build-bench (release, no sanitizers)
like bench.py; $REDIR_AGENT / $REDIR_RELAY override the binaries. Needs
the Linux-guest rig's kernel and busybox (scripts/install-test-deps.sh).
$REDIR_KEEP_TESTDIR=1 keeps the logs.
"""

import argparse
import os
import select
import socket
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                "tests", "guest"))
import bench  # noqa: E402  (bench/serial_relay/bench.py: ports, agents)
import linuxguest  # noqa: E402
from linuxguest import harness  # noqa: E402

GO = b"G"            # guest_serial.c GO_BYTE
STALL_S = 60         # no byte for this long: the phase failed
BOOT_S = 600         # TCG boot on a loaded 2-core host
LINE_TICK_S = 0.005  # --line: the port side's longest nap (58 B at 115200)
PATHS = (("direct", "/dev/ttyS1"), ("relay", "/dev/ttyS2"),
         ("pty", "/dev/ttyS3"))
PHASES_PER_ROUND = 3 * len(PATHS)  # tx, rx, rtt on each path


def build_helper(out):
    subprocess.run(["cc", "-O2", "-static", "-Wall", "-Wextra", "-Werror",
                    os.path.join(HERE, "guest_serial.c"), "-o", out],
                   check=True)
    return out


def new_port(td):
    """bench.Port: from a59d543 on it takes the run's directory (its link
    to the pty lives there); before, nothing."""
    try:
        return bench.Port(td.path)
    except TypeError:
        return bench.Port()


class Rig:
    """The two paths' host side: agents, relay, ports."""

    def __init__(self, td):
        self.td = td
        self.procs = []
        self.ports = {name: new_port(td) for name, _ in PATHS}

    def start(self, name, cmd):
        proc = bench.start(cmd, open(self.td.file(f"{name}.log"), "wb"))
        self.procs.append((name, proc))
        return proc

    def direct(self):
        tcp = bench.free_port()
        port = self.ports["direct"]
        conf = bench.agent_conf(self.td.path, port,
                                f"listen = 127.0.0.1:{tcp}\nmode = raw\n")
        self.start("direct-agent", [bench.AGENT, "-f", "-c", conf])

        def listening():
            try:
                with socket.create_connection(("127.0.0.1", tcp), 1):
                    return True
            except OSError:
                return False
        bench.wait_for("the direct agent's listener", listening)
        time.sleep(0.3)   # the agent drops the probe connection
        return ["-chardev", f"socket,id=direct,host=127.0.0.1,port={tcp}",
                "-device", "isa-serial,chardev=direct,index=1"]

    def relay(self):
        rport = bench.free_port()
        secret = self.td.file("relay.secret")
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, os.urandom(24).hex().encode() + b"\n")
        os.close(fd)
        com = self.td.file("com")
        rconf = self.td.write(
            "relay.ini", f"[relay]\nlisten = 127.0.0.1:{rport}\n"
            f"secret_file = {secret}\nlog_level = info\n[target.com]\n"
            f"kind = serial\npath = {com}\n")
        self.start("relay", [bench.RELAY, "-f", "-c", rconf])
        bench.wait_for("the relay's pty", lambda: os.path.islink(com))
        conf = bench.agent_conf(self.td.path, self.ports["relay"],
                                f"connect = 127.0.0.1:{rport}/com\n"
                                f"relay_secret_file = {secret}\n")
        self.start("relay-agent", [bench.AGENT, "-f", "-c", conf])
        rlog = self.td.file("relay.log")
        bench.wait_for("the agent to attach",
                       lambda: "attached to target" in open(rlog).read())
        return ["-chardev", f"serial,id=relay,path={com}",
                "-device", "isa-serial,chardev=relay,index=2"]

    def pty(self):
        """QEMU opens the port's own pty: the bench is its other end."""
        return ["-chardev", f"serial,id=pty,path={self.ports['pty'].device}",
                "-device", "isa-serial,chardev=pty,index=3"]

    def stop(self):
        for _, proc in self.procs:
            bench.stop(proc)


def plan(rounds):
    """[(seq, mode, path)]: per round tx, rx, rtt, each on both paths, the
    order of the paths swapped every round."""
    out = []
    for r in range(rounds):
        paths = PATHS if r % 2 == 0 else PATHS[::-1]
        for mode in ("tx", "rx", "rtt"):
            for name, _ in paths:
                out.append((len(out) + 1, mode, name))
    return out


def guest_script(phases, size, rtt_rounds, rx_trig, baud):
    devs = dict(PATHS)
    lines = [
        "for d in " + " ".join(dev for _, dev in PATHS) + "; do",
        '    [ -e $d ] || fail "no $d"',
        f'    stty -F $d {baud} raw -echo clocal -crtscts || fail "stty $d"',
        "    t=/sys/class/tty/${d#/dev/}/rx_trig_bytes",
        f'    [ -z "{rx_trig}" ] || echo {rx_trig} > $t || fail "$t"',
        '    result rx_trig_${d#/dev/} "$(cat $t)"',
        "done",
        'result clocksource "$(cat /sys/devices/system/clocksource/'
        'clocksource0/current_clocksource)"',
        'result uarts "$(dmesg | grep -o \'ttyS[0-9] at I/O 0x[0-9a-f]* '
        '(irq = [0-9]*, base_baud = [0-9]*) is a [0-9A-Z]*\' | '
        'tr \'\\n\' \';\')"']
    for seq, mode, name in phases:
        n = rtt_rounds if mode == "rtt" else size
        lines.append(f"guest_serial {seq} {mode} {devs[name]} {n} || "
                     f"fail 'phase {seq} {mode} {name}'")
    return "\n".join(lines) + "\n"


def fields(text):
    return {k: v for k, v in (f.split(":", 1) for f in text.split())}


def read_exact(fd, n, line=None):
    """n bytes from fd, no faster than line (a Line) if given."""
    got = bytearray()
    while len(got) < n:
        want = n - len(got) if line is None else \
            min(line.room(len(got)), n - len(got))
        if not want:
            continue
        if not select.select([fd], [], [], STALL_S)[0]:
            raise RuntimeError(f"port: {len(got)}/{n} bytes, then silence")
        try:
            got += os.read(fd, want)
        except BlockingIOError:
            continue
    return bytes(got)


def write_exact(fd, data, line=None):
    """All of data to fd, no faster than line (a Line) if given."""
    off = 0
    while off < len(data):
        room = bench.CHUNK if line is None else line.room(off)
        if not room:
            continue
        if not select.select([], [fd], [], STALL_S)[1]:
            raise RuntimeError(f"port: wrote {off}/{len(data)}, then stuck")
        try:
            off += os.write(fd, data[off:off + room])
        except BlockingIOError:
            continue


class Line:
    """What a UART at `baud` 8N1 lets through since start(): the port side
    of --line. A pty has no line rate; the bench reads and writes its
    master no faster than the wire would, so a path's queues fill and its
    backpressure works as in front of a real adapter."""

    def __init__(self, baud):
        self.rate = baud / 10   # bytes/s: start, 8 data bits, stop
        self.t0 = time.monotonic()

    def room(self, done):
        """Bytes the line may move now, having moved `done`: a 16-byte
        FIFO's worth ahead, as a 16550 or an FTDI chip holds."""
        room = int((time.monotonic() - self.t0) * self.rate) + 16 - done
        if room <= 0:
            time.sleep(min(LINE_TICK_S, (1 - room) / self.rate))
        return max(room, 0)


def host_tx(fd, n, baud):
    """The guest writes n bytes after the go byte: read them at the port,
    timed from the go byte to the last (as the guest times port -> guest:
    one-way latency and the guest's start, under a millisecond, count).
    baud: read no faster than such a line (None: as fast as they come)."""
    t0 = time.monotonic()
    os.write(fd, GO)
    data = read_exact(fd, n, Line(baud) if baud else None)
    return {"crc": zlib.crc32(data), "rate": n / (time.monotonic() - t0)}


def host_rx(fd, n, baud):
    """Write n random bytes into the port for the guest to read, once the
    guest answered our go byte with its own (no faster than a line at
    baud, if given)."""
    data = os.urandom(n)
    os.write(fd, GO)
    while read_exact(fd, 1) != GO:
        pass
    write_exact(fd, data, Line(baud) if baud else None)
    return {"crc": zlib.crc32(data)}


def host_rtt(fd, rounds):
    """Echo `rounds` bytes at the port after the go byte."""
    os.write(fd, GO)
    for _ in range(rounds):
        data = read_exact(fd, 1)
        write_exact(fd, data)
    return {}


def io_counts(pid):
    """(CPU seconds, read + write system calls) of a process so far: the
    calls do not depend on the load."""
    with open(f"/proc/{pid}/io") as f:
        io = dict(line.split(": ") for line in f.read().splitlines())
    return bench.cpu_seconds(pid), int(io["syscr"]) + int(io["syscw"])


def counts(pids):
    return {name: io_counts(pid) for name, pid in pids.items()}


def run_phase(guest, master, seq, mode, a, pids):
    """One phase on one path: the bench's side of it, the guest's figures
    checked and converted, and what each process spent on it."""
    size, rtt_rounds = a.size << 10, a.rtt
    guest.wait_serial(rf"^BENCH-READY {seq} ", BOOT_S if seq == 1 else 120)
    bench.drain(master)   # the guest sends nothing before our go byte
    before = counts(pids)
    if mode == "tx":
        host = host_tx(master, size, a.line)
    elif mode == "rx":
        host = host_rx(master, size, a.line)
    else:
        host = host_rtt(master, rtt_rounds)
    # the whole line: the console file can end in the middle of one
    m = guest.wait_serial(rf"^RESULT: bench{seq}=(.*)\n", 120)
    after = counts(pids)
    units = rtt_rounds if mode == "rtt" else size / 1024
    cost = {n: tuple((a - b) / units for a, b in zip(after[n], before[n]))
            for n in pids}
    g = fields(m.group(1))
    if "crc" in g and int(g["crc"], 16) != host["crc"]:
        raise RuntimeError(f"phase {seq} {mode}: CRC-32 guest {g['crc']}, "
                           f"port {host['crc']:08x} ({g})")
    if mode == "tx":
        return {"to_port": host["rate"] / 1e3, "cost_tx": cost,
                "guest_write": size / (int(g["drain_ns"]) / 1e9) / 1e3}
    if mode == "rx":
        span = int(g["span_ns"]) / 1e9
        return {"from_port": size / span / 1e3,
                "cost_rx": cost}
    return {"p50": int(g["p50_ns"]) / 1e3, "p99": int(g["p99_ns"]) / 1e3,
            "min": int(g["min_ns"]) / 1e3, "cost_rtt": cost}


def print_round(r, res, baud):
    print(f"round {r + 1}: {'':7} {'guest->port kB/s':>17} "
          f"{'port->guest kB/s':>17} {'RTT p50 us':>11} {'RTT p99 us':>11}"
          f" {'RTT min us':>11}")
    for name, _ in PATHS:
        x = res[name]
        print(f"{'':9}{name:7} {x['to_port']:17.1f} {x['from_port']:17.1f} "
              f"{x['p50']:11.0f} {x['p99']:11.0f} {x['min']:11.0f}")
    v = res["relay"]
    for base in ("direct", "pty"):
        d = res[base]
        print(f"{'':9}{'ratio':7} {v['to_port'] / d['to_port']:16.2f}x "
              f"{v['from_port'] / d['from_port']:16.2f}x "
              f"{v['p50'] / d['p50']:10.2f}x {v['p99'] / d['p99']:10.2f}x "
              f"{v['min'] / d['min']:10.2f}x   (relay / {base})")
    own = ", ".join(f"{name} {res[name]['guest_write']:.1f}"
                    for name, _ in PATHS)
    paced = "the ports at" if baud else "a real"
    print(f"{'':9}guest's own write()+tcdrain() rate (kB/s): {own}; {paced} "
          f"{baud or 115200} 8N1 line carries {(baud or 115200) / 10e3:.2f} "
          "kB/s", flush=True)


def pin(pid, cpu):
    """Every thread of pid onto one CPU."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def measure(td, a):
    rig = Rig(td)
    try:
        qemu_args = rig.direct() + rig.relay() + rig.pty()
        time.sleep(0.5)   # the relay path's RFC 2217 negotiation
        phases = plan(a.rounds)
        helper = build_helper(td.file("guest_serial"))
        with open(helper, "rb") as f:
            files = {"/bin/guest_serial": (f.read(), 0o755)}
        guest = linuxguest.LinuxGuest(
            td, guest_script(phases, a.size << 10, a.rtt, a.rx_trig or "",
                         a.line or 115200),
            cmdline=[f"8250.nr_uarts={len(PATHS) + 1}"], files=files, extra_args=qemu_args)
        guest.start()
        if a.pin:  # QEMU alone on CPU 0, the rest (and this bench) on 1
            pin(guest.qemu.proc.pid, 0)
            for pid in [0] + [p.pid for _, p in rig.procs]:
                pin(pid or os.getpid(), 1)
        load0 = os.getloadavg()[0]
        try:
            results = collect(guest, rig, phases, a)
            res = guest.wait_done(timeout=120).require_ok()
        finally:
            guest.stop()
        trig = ", ".join(f"{dev[5:]} {res.get('rx_trig_' + dev[5:])}"
                         for _, dev in PATHS)
        print(f"guest clocksource {res.get('clocksource')}; UARTs: "
              f"{res.get('uarts', '').rstrip(';')}; receive FIFO trigger "
              f"(bytes): {trig}")
        cpu = ", ".join(f"{n} {bench.cpu_seconds(p.pid):.2f}"
                        for n, p in rig.procs)
        print(f"CPU for the whole run (s): {cpu}")
        print(f"load average: {load0:.2f} at the guest's start, "
              f"{os.getloadavg()[0]:.2f} at the end")
        return results
    finally:
        rig.stop()


def collect(guest, rig, phases, a):
    results = [{name: {} for name, _ in PATHS} for _ in range(a.rounds)]
    procs = dict((n, p.pid) for n, p in rig.procs)
    pids = {"direct": {"qemu": guest.qemu.proc.pid,
                       "agent": procs["direct-agent"]},
            "relay": {"qemu": guest.qemu.proc.pid, "relay": procs["relay"],
                      "agent": procs["relay-agent"]},
            "pty": {"qemu": guest.qemu.proc.pid}}
    for seq, mode, name in phases:
        r = (seq - 1) // PHASES_PER_ROUND
        results[r][name].update(run_phase(guest, rig.ports[name].master, seq,
                                          mode, a, pids[name]))
        if seq % PHASES_PER_ROUND == 0:
            print_round(r, results[r], a.line)
    return results


def print_costs(results):
    """Per KiB moved (or per round trip), the mean over the rounds."""
    print("read/write system calls (/proc/PID/io syscr+syscw: read, write, "
          "readv, writev...; not QEMU's\nsocket chardev's sendmsg/recvmsg) "
          "and CPU ms, per KiB moved or per round trip, mean of the rounds:")
    print(f"{'':20} {'QEMU calls':>10} {'QEMU ms':>8} {'relay calls':>11} "
          f"{'relay ms':>8} {'agent calls':>11} {'agent ms':>8}")
    for mode, label in (("tx", "guest->port"), ("rx", "port->guest"),
                        ("rtt", "round trip")):
        for name, _ in PATHS:
            costs = [r[name][f"cost_{mode}"] for r in results]
            row = f"{label + ' ' + name:20}"
            for proc, width in (("qemu", 10), ("relay", 11), ("agent", 11)):
                if proc not in costs[0]:
                    row += f" {'-':>{width}} {'-':>8}"
                    continue
                calls = sum(c[proc][1] for c in costs) / len(costs)
                ms = sum(c[proc][0] for c in costs) / len(costs) * 1e3
                row += f" {calls:{width}.1f} {ms:8.3f}"
            print(row)


def summary(results):
    """The spread of each ratio over the rounds."""
    keys = (("to_port", "guest->port"), ("from_port", "port->guest"),
            ("p50", "RTT p50"), ("p99", "RTT p99"))
    for base in ("direct", "pty"):
        parts = []
        for key, label in keys:
            ratios = [r["relay"][key] / r[base][key] for r in results]
            parts.append(f"{label} {min(ratios):.2f}-{max(ratios):.2f}x")
        print(f"relay/{base} over {len(results)} rounds: " + ", ".join(parts))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512,
                    help="KiB per direction and path")
    ap.add_argument("--rtt", type=int, default=500, help="round trips")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of all phases in the one boot")
    ap.add_argument("--rx-trig", type=int, choices=(1, 4, 8, 14),
                    help="the guest's 16550 receive FIFO trigger level "
                    "(sysfs rx_trig_bytes; the kernel's default: 8)")
    ap.add_argument("--pin", action="store_true",
                    help="QEMU's threads on CPU 0, relay, agents and the "
                    "bench on CPU 1 (a hypervisor whose relay does not take "
                    "the vCPU's core)")
    ap.add_argument("--line", type=int, metavar="BAUD",
                    help="the guest opens its ports at BAUD (at most "
                    "115200, its 16550's base rate) and each port moves "
                    "bytes no faster than a BAUD 8N1 line: what a user "
                    "behind a real adapter gets (default: the guest at "
                    "115200, the ports as fast as the paths go)")
    a = ap.parse_args()
    if a.line is not None and not 50 <= a.line <= 115200:
        ap.error("--line: 50-115200 (a 16550 in QEMU: base_baud 115200)")
    if min(a.size, a.rtt, a.rounds) < 1 or a.size > 64 << 10:
        ap.error("--size (1-65536 KiB; guest_serial.c MAX_BYTES), --rtt and "
                 "--rounds must be at least 1")
    if not os.environ.get("REDIR_AGENT") or not os.environ.get("REDIR_RELAY"):
        bench.build()
    td = harness.TestDir("bench-serial-guest")
    ok = False
    try:
        results = measure(td, a)
        print_costs(results)
        summary(results)
        ok = True
    finally:
        td.cleanup(ok)
        if not ok:
            print(f"logs kept in {td.path}", file=sys.stderr)


if __name__ == "__main__":
    main()
